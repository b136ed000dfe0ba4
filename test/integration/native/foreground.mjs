// foreground: with setpgid and a terminal on stdin, the child's group becomes the terminal's
// foreground group. Run under `script` (util-linux), which gives this process a pseudo-terminal
// as its controlling terminal.
import fs from "node:fs";
import { addon, childEnv, procStatus, report, sleep, startReaper } from "./lib.mjs";

// Field 8 of /proc/<pid>/stat: the foreground process group of the process's terminal.
// Field 5 is the process group. `script` runs us through $SHELL -c: bash execs us (our group is our
// pid), dash forks (our group is the shell's), so compare with the group, not the pid.
const statFields = (pid) => {
  const text = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  return text.slice(text.lastIndexOf(")") + 2).split(" ");
};
const tpgidOf = (pid) => Number(statFields(pid)[5]);
const ownGroup = Number(statFields(process.pid)[2]);

const reaper = startReaper();
const ttyBefore = fs.readlinkSync("/proc/self/fd/0");
const tpgidBefore = tpgidOf(process.pid);

// Without foreground the terminal stays with us.
const background = addon.spawn({ file: "/bin/sleep", argv: ["sleep", "30"], env: childEnv, setpgid: true });
const tpgidWithBackground = tpgidOf(background.pid);
process.kill(background.pid, "SIGKILL");
await reaper.waitFor(background.pid);

const child = addon.spawn({ file: "/bin/sleep", argv: ["sleep", "30"], env: childEnv, setpgid: true, foreground: true });
await sleep(50);
const tpgidWithForeground = tpgidOf(child.pid);
// SIGTTOU was ignored only while taking the terminal.
const childSigIgn = procStatus(child.pid).SigIgn;
process.kill(child.pid, "SIGKILL");
await reaper.waitFor(child.pid);

report({
  isTty: ttyBefore.startsWith("/dev/pts/"),
  pid: process.pid,
  ownGroup,
  tpgidBefore,
  tpgidWithBackground,
  tpgidWithForeground,
  childPid: child.pid,
  childSigIgn,
});
