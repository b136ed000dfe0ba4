// The reaper under load: 200 supervised children exiting together (codes i % 256) while a shell
// creates 2000 orphans that come to this process (child subreaper). Also: children that exited
// before reaperStart() are collected by it.
import fs from "node:fs";
import { addon, childEnv, decodeStatus, report, sleep, startReaper, zombiesOf } from "./lib.mjs";

const CHILDREN = 200;
const ORPHANS = 2000;

addon.setChildSubreaper();

// Zombies from before the handler existed: their SIGCHLD went nowhere.
const early = [];
for (let i = 0; i < 3; i++) {
  early.push(addon.spawn({ file: "/bin/sh", argv: ["sh", "-c", `exit ${40 + i}`], env: childEnv }).pid);
}
await sleep(300);
const earlyZombies = zombiesOf(process.pid).filter((pid) => early.includes(pid)).length;

const reaper = startReaper();

// Who takes SIGCHLD now: not this (main) thread, which blocks it, but the reaper's own thread.
const SIGCHLD_BIT = 1n << 16n;
const SIGTERM_BIT = 1n << 14n;
const threads = fs.readdirSync("/proc/self/task").map((tid) => {
  const status = fs.readFileSync(`/proc/self/task/${tid}/status`, "utf8");
  const field = (name) =>
    status
      .split("\n")
      .find((line) => line.startsWith(`${name}:`))
      .split(/\s+/)[1];
  return { tid: Number(tid), name: field("Name"), blocked: BigInt(`0x${field("SigBlk")}`) };
});
const main = threads.find((thread) => thread.tid === process.pid);
const reaperThreads = threads.filter((thread) => thread.name === "reaper");
const sigchldThreads = {
  mainBlocksSigchld: (main.blocked & SIGCHLD_BIT) !== 0n,
  reaperThreads: reaperThreads.length,
  reaperTakesOnlySigchld: reaperThreads.every((thread) => (thread.blocked & SIGCHLD_BIT) === 0n && (thread.blocked & SIGTERM_BIT) !== 0n),
};
const codeOf = (status) => (status === null ? null : decodeStatus(status).code);
const earlyCodes = (await reaper.waitAll(early)).map(codeOf);

const storm = addon.spawn({
  file: "/bin/sh",
  argv: ["sh", "-c", `for i in $(seq ${ORPHANS}); do (true &) ; done`],
  env: childEnv,
});
const children = [];
for (let i = 0; i < CHILDREN; i++) {
  const { pid } = addon.spawn({
    file: "/bin/sh",
    argv: ["sh", "-c", 'sleep 0.3; exit "$1"', "sh", String(i % 256)],
    env: childEnv,
  });
  children.push(pid);
}

const [stormStatus] = await reaper.waitAll([storm.pid]);
const statuses = await reaper.waitAll(children);
const wrongCodes = statuses.map((status, i) => ({ i, code: codeOf(status) })).filter(({ i, code }) => code !== i % 256);

// Orphans still running when the shell ended arrive a little later.
const known = new Set([...children, storm.pid, ...early]);
const orphanCount = () => [...reaper.exits.keys()].filter((pid) => !known.has(pid)).length;
for (let waited = 0; orphanCount() < ORPHANS && waited < 10000; waited += 50) await sleep(50);
await sleep(200);

report({
  sigchldThreads,
  earlyZombies,
  earlyCodes,
  stormCode: codeOf(stormStatus),
  wrongCodes,
  orphans: orphanCount(),
  zombiesLeft: zombiesOf(process.pid).length,
  ...reaper.stats(),
});
