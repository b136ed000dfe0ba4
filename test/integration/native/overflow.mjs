// The reaper never loses an exit when its pipe is full: it leaves the child a zombie, and
// reaperKick() after a drain collects it. The pipe is shrunk to one page (F_SETPIPE_SZ from a
// perl child that gets the read end as stdin) and 600 children exit while nobody drains: more
// than a page holds (512 records), so the handler must stop reaping.
import { addon, childEnv, childrenOf, decodeStatus, report, sleep, startReaper, zombiesOf } from "./lib.mjs";

const CHILDREN = 600;
const F_SETPIPE_SZ = 1031;

const fd = addon.reaperStart();
const shrink = addon.spawn({
  file: "/usr/bin/perl",
  argv: ["perl", "-e", `fcntl(STDIN, ${F_SETPIPE_SZ}, 4096) or exit 3`],
  env: childEnv,
  stdin: fd,
});
const pids = [];
for (let i = 0; i < CHILDREN; i++) {
  pids.push(addon.spawn({ file: "/bin/sh", argv: ["sh", "-c", 'exit "$1"', "sh", String(i % 256)], env: childEnv }).pid);
}
// Let every child exit while the pipe is not drained.
for (let waited = 0; waited < 20000; waited += 50) {
  await sleep(50);
  if (childrenOf(process.pid).every((child) => child.state === "Z")) break;
}
const zombies = zombiesOf(process.pid).length;

// Now drain (startReaper watches the same pipe and kicks after each drain).
const reaper = startReaper();
const [shrinkStatus] = await reaper.waitAll([shrink.pid]);
const statuses = await reaper.waitAll(pids);
const missing = statuses.filter((status) => status === null).length;
const wrong = statuses.filter((status, i) => status !== null && decodeStatus(status).code !== i % 256).length;

report({
  shrinkCode: shrinkStatus === null ? null : decodeStatus(shrinkStatus).code,
  zombiesWhileFull: zombies,
  missing,
  wrong,
  zombiesLeft: zombiesOf(process.pid).length,
  ...reaper.stats(),
});
