// Standard streams and descriptors of the child: pipes, merging, /dev/null, fd numbers (with the
// dup2 ordering trap), inheritance of the parent's 0-2, the notify pipe, and what else the child
// can see.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { addon, childEnv, decodeStatus, readAll, report, startReaper } from "./lib.mjs";

const reaper = startReaper();
const sh = (script, options = {}) => addon.spawn({ file: "/bin/sh", argv: ["sh", "-c", script], env: childEnv, ...options });
const exitCode = async (pid) => decodeStatus(await reaper.waitFor(pid)).code;

// stdout "pipe".
const echo = sh("echo hello", { stdout: "pipe" });
const pipeOut = await readAll(echo.stdoutFd);

// stderr "stdout": one pipe for both, no separate stderr fd.
const merged = sh("echo out; echo err >&2; echo out2", { stdout: "pipe", stderr: "stdout" });
const mergedOut = await readAll(merged.stdoutFd);

// Separate pipes.
const split = sh("echo out; echo err >&2", { stdout: "pipe", stderr: "pipe" });
const [splitOut, splitErr] = await Promise.all([readAll(split.stdoutFd), readAll(split.stderrFd)]);

// stdin "null": cat sees end-of-file at once.
const cat = addon.spawn({ file: "/bin/cat", argv: ["cat"], env: childEnv, stdin: "null", stdout: "pipe" });
const catOut = await readAll(cat.stdoutFd);
const catCode = await exitCode(cat.pid);

// A file fd of the parent as stdout, stderr merged into it.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "native-stdio-"));
const file = path.join(dir, "out.txt");
const fileFd = fs.openSync(file, "w");
const toFile = sh("echo one; echo two >&2", { stdout: fileFd, stderr: "stdout" });
await reaper.waitFor(toFile.pid);
fs.closeSync(fileFd);
const fileText = fs.readFileSync(file, "utf8");

// The dup2 ordering trap: stdout from the parent's fd 2 and stderr from its fd 1. Copied one
// after the other in place, both would end up on the parent's stderr. native.test.ts checks which
// of this script's streams each line reached.
const swapped = sh("echo to-parent-stderr; echo to-parent-stdout >&2", { stdout: 2, stderr: 1 });
await reaper.waitFor(swapped.pid);

// "inherit" (the default): Node marks 0-2 close-on-exec, yet the child writes to our stdout.
const inherited = sh("echo inherited-stdout-line");
await reaper.waitFor(inherited.pid);

// notifyFd: the write end sits at fd 5 in the child.
const notify = sh("echo ready >&5", { notifyFd: 5 });
const notifyText = await readAll(notify.notifyFd);
const notifyResult = { stdoutFd: notify.stdoutFd, stderrFd: notify.stderrFd, text: notifyText };

// The child sees 0, 1, 2 only (3 is ls's own handle on /proc/self/fd), or 0-2 and its notify fd.
const ls = addon.spawn({ file: "/bin/ls", argv: ["ls", "/proc/self/fd"], env: childEnv, stdout: "pipe" });
const lsFds = (await readAll(ls.stdoutFd)).split("\n").filter(Boolean);
const lsNotify = addon.spawn({
  file: "/bin/ls",
  argv: ["ls", "/proc/self/fd"],
  env: childEnv,
  stdout: "pipe",
  notifyFd: 7,
});
const lsNotifyFds = (await readAll(lsNotify.stdoutFd)).split("\n").filter(Boolean);
addon.close(lsNotify.notifyFd);

// The parent ends are non-blocking and close-on-exec (flags in /proc/self/fdinfo, octal).
const probe = sh("sleep 0.2", { stdout: "pipe", stderr: "pipe", notifyFd: 9 });
const flagsOf = (fd) => parseInt(/flags:\s*(\d+)/.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"))[1], 8);
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;
const parentEnds = [probe.stdoutFd, probe.stderrFd, probe.notifyFd].map((fd) => {
  const flags = flagsOf(fd);
  return { nonblock: (flags & O_NONBLOCK) !== 0, cloexec: (flags & O_CLOEXEC) !== 0 };
});
for (const fd of [probe.stdoutFd, probe.stderrFd, probe.notifyFd]) addon.close(fd);
await reaper.waitFor(probe.pid);

fs.rmSync(dir, { recursive: true, force: true });
report({
  pipeOut,
  echo: { stderrFd: echo.stderrFd, notifyFd: echo.notifyFd },
  mergedOut,
  mergedStderrFd: merged.stderrFd,
  splitOut,
  splitErr,
  catOut,
  catCode,
  fileText,
  notifyResult,
  lsFds,
  lsNotifyFds,
  parentEnds,
});
