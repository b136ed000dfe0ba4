// The child's process state: signal dispositions and mask, session / process group, pidfds.
import { addon, childEnv, decodeStatus, procStat, procStatus, report, startReaper } from "./lib.mjs";

const reaper = startReaper();
const sleeper = (options = {}) => addon.spawn({ file: "/bin/sleep", argv: ["sleep", "30"], env: childEnv, ...options });
const signalsOf = (pid) => {
  const status = procStatus(pid);
  return { SigIgn: status.SigIgn, SigBlk: status.SigBlk, SigCgt: status.SigCgt };
};
const killAndWait = async (pid) => {
  process.kill(pid, "SIGKILL");
  return decodeStatus(await reaper.waitFor(pid));
};

// Node ignores SIGPIPE and SIGXFSZ and catches others; spawn blocks every signal around fork.
// The program must start with none of that.
const parentSignals = signalsOf(process.pid);
const plain = sleeper();
const childSignals = signalsOf(plain.pid);
const plainStat = procStat(plain.pid);
await killAndWait(plain.pid);

const own = procStat(process.pid);

const withSetsid = sleeper({ setsid: true });
const setsidStat = procStat(withSetsid.pid);
await killAndWait(withSetsid.pid);

// foreground without a terminal on stdin is not an error.
const withPgid = sleeper({ setpgid: true, foreground: true, stdin: "null" });
const setpgidStat = procStat(withPgid.pid);
await killAndWait(withPgid.pid);

// pidfd: the watcher fires when the process exits; pidfd_send_signal kills it.
const target = sleeper();
const pidfd = addon.pidfdOpen(target.pid);
let watcherFired = 0;
const exited = new Promise((resolve) => {
  const watcher = new addon.FdWatcher(pidfd, () => {
    watcherFired++;
    watcher.close();
    resolve();
  });
});
const aliveBeforeSignal = procStat(target.pid).state !== "Z";
addon.pidfdSendSignal(pidfd, 9);
await exited;
const pidfdExit = decodeStatus(await reaper.waitFor(target.pid));
addon.close(pidfd);

report({
  parentSignals,
  childSignals,
  plain: { pid: plain.pid, pgrp: plainStat.pgrp, session: plainStat.session },
  own: { pid: process.pid, pgrp: own.pgrp, session: own.session },
  setsid: { pid: withSetsid.pid, pgrp: setsidStat.pgrp, session: setsidStat.session },
  setpgid: { pid: withPgid.pid, pgrp: setpgidStat.pgrp, session: setpgidStat.session },
  pidfd: { aliveBeforeSignal, watcherFired, exit: pidfdExit },
});
