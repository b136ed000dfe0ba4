// The reaper under load: 200 supervised children exiting together (codes i % 256) while a shell
// creates 2000 orphans that come to this process (child subreaper). Also: children that exited
// before reaperStart() are collected by it.
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
  earlyZombies,
  earlyCodes,
  stormCode: codeOf(stormStatus),
  wrongCodes,
  orphans: orphanCount(),
  zombiesLeft: zombiesOf(process.pid).length,
  ...reaper.stats(),
});
