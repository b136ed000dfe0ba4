// signalPipe / signalCatch / signalRange / setParentDeathSignal / releaseControllingTerminal, and
// spawn's controllingTerminal. Each delivery becomes a 16-byte record {signo, si_code, si_pid,
// si_uid}; real-time signals queue (one record per delivery), standard ones may merge.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { addon, childEnv, errorOf, report, sleep, startReaper } from "./lib.mjs";

const reaper = startReaper();
const fd = addon.signalPipe();
const sameFd = addon.signalPipe() === fd;
const flags = fs.readFileSync(`/proc/self/fdinfo/${fd}`, "utf8");
const nonBlocking = (parseInt(/^flags:\s+(\d+)/m.exec(flags)[1], 8) & 0o4000) !== 0;

const records = [];
const drain = () => {
  const chunk = Buffer.alloc(4096);
  for (;;) {
    let n;
    try {
      n = fs.readSync(fd, chunk, 0, chunk.length, null);
    } catch (e) {
      if (e.code === "EAGAIN") return;
      throw e;
    }
    for (let offset = 0; offset + 16 <= n; offset += 16) {
      records.push({
        signo: chunk.readInt32LE(offset),
        code: chunk.readInt32LE(offset + 4),
        pid: chunk.readInt32LE(offset + 8),
        uid: chunk.readInt32LE(offset + 12),
      });
    }
  }
};

const range = addon.signalRange();
for (const signal of [10, 12, range.min, range.max]) addon.signalCatch(signal);
process.kill(process.pid, "SIGUSR1");
// Three deliveries of a real-time signal queue: three records.
for (let i = 0; i < 3; i++) process.kill(process.pid, range.min);
process.kill(process.pid, range.max);
await sleep(100);
drain();

// A write to a pipe nobody reads: the kernel raises SIGPIPE at the writer, naming the writer itself
// as the sender (how the init tells a signal for its own doing from one somebody sent).
addon.signalCatch(13);
const fifo = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "native-signals-")), "fifo");
const mkfifo = addon.spawn({ file: "/usr/bin/mkfifo", argv: ["mkfifo", fifo], env: childEnv });
await reaper.waitFor(mkfifo.pid);
const readEnd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
const writeEnd = fs.openSync(fifo, fs.constants.O_WRONLY);
fs.closeSync(readEnd);
const brokenPipe = errorOf(() => fs.writeSync(writeEnd, "x"));
fs.closeSync(writeEnd);
fs.rmSync(path.dirname(fifo), { recursive: true });
await sleep(50);
drain();

const sender = addon.spawn({ file: "/bin/sh", argv: ["sh", "-c", `kill -USR2 ${process.pid}`], env: childEnv });
await reaper.waitFor(sender.pid);
await sleep(50);
drain();

const rejected = {
  kill: errorOf(() => addon.signalCatch(9)),
  stop: errorOf(() => addon.signalCatch(19)),
  glibc32: errorOf(() => addon.signalCatch(32)),
  zero: errorOf(() => addon.signalCatch(0)),
};

// The parent-death signal: set, cleared, a number out of range rejected.
const deathSignal = {
  set: errorOf(() => addon.setParentDeathSignal(15)),
  clear: errorOf(() => addon.setParentDeathSignal(0)),
  bad: errorOf(() => addon.setParentDeathSignal(65)),
};

// No controlling terminal here (vitest runs us without one).
const noTerminal = errorOf(() => addon.releaseControllingTerminal(0));

// controllingTerminal without a terminal on stdin is no error.
const child = addon.spawn({ file: "/bin/true", argv: ["true"], env: childEnv, setsid: true, controllingTerminal: true, stdin: "null" });
const childExit = await reaper.waitFor(child.pid);

report({
  pid: process.pid,
  uid: process.getuid(),
  brokenPipe: brokenPipe?.code,
  sameFd,
  nonBlocking,
  range,
  records,
  senderPid: sender.pid,
  rejected,
  deathSignal,
  noTerminal,
  childExit,
});
