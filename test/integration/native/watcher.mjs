// FdWatcher: fires on readability, close() is idempotent and safe inside the callback, a watcher
// nobody holds survives garbage collection, callbacks run their microtasks, a throwing callback
// becomes an uncaught exception, and an fd can be watched only once at a time.
// Run with --expose-gc.
import fs from "node:fs";
import { addon, childEnv, errorOf, report, sleep, startReaper } from "./lib.mjs";

const reaper = startReaper();
const pipeFrom = (script) => addon.spawn({ file: "/bin/sh", argv: ["sh", "-c", script], env: childEnv, stdout: "pipe" });
const readChunk = (fd) => {
  const buffer = Buffer.alloc(256);
  try {
    return buffer.subarray(0, fs.readSync(fd, buffer, 0, buffer.length, null)).toString();
  } catch (e) {
    if (e.code === "EAGAIN") return "";
    throw e;
  }
};

// Fires on data, closes itself from inside the callback, then a second close() is harmless.
const first = pipeFrom("sleep 0.1; echo ping; sleep 0.3; echo late");
let calls = 0;
let firstText = "";
let watcher;
await new Promise((resolve) => {
  watcher = new addon.FdWatcher(first.stdoutFd, () => {
    calls++;
    firstText += readChunk(first.stdoutFd);
    watcher.close();
    resolve();
  });
});
const secondCloseError = errorOf(() => watcher.close());
const refAfterClose = errorOf(() => {
  watcher.ref();
  watcher.unref();
});
await reaper.waitFor(first.pid); // "late" was written after close: no further call
const callsAfterClose = calls;
addon.close(first.stdoutFd);

// Watching the same fd twice at once is refused by libuv.
const dup = pipeFrom("sleep 0.3");
const holder = new addon.FdWatcher(dup.stdoutFd, () => {});
const twice = errorOf(() => new addon.FdWatcher(dup.stdoutFd, () => {}));
holder.close();
// Once closed, the fd can be watched again.
const again = errorOf(() => new addon.FdWatcher(dup.stdoutFd, () => {}).close());
await reaper.waitFor(dup.pid);
addon.close(dup.stdoutFd);

// Not stored anywhere and garbage collected meanwhile: still fires (it holds itself while open).
const unheld = pipeFrom("sleep 0.3; echo unheld");
let unheldText = "";
const unheldDone = new Promise((resolve) => {
  new addon.FdWatcher(unheld.stdoutFd, function () {
    unheldText += readChunk(unheld.stdoutFd);
    this.close();
    resolve();
  });
});
for (let i = 0; i < 5; i++) {
  globalThis.gc();
  await sleep(20);
}
await unheldDone;
addon.close(unheld.stdoutFd);

// MakeCallback semantics: microtasks queued in the callback run before the next macrotask.
const order = [];
const ordered = pipeFrom("echo x");
await new Promise((resolve) => {
  const w = new addon.FdWatcher(ordered.stdoutFd, () => {
    w.close();
    setImmediate(() => {
      order.push("immediate");
      resolve();
    });
    queueMicrotask(() => order.push("microtask"));
    process.nextTick(() => order.push("nextTick"));
  });
});
addon.close(ordered.stdoutFd);

// A throwing callback reaches process 'uncaughtException'.
const throwing = pipeFrom("echo x");
const uncaught = await new Promise((resolve) => {
  process.once("uncaughtException", (e) => resolve(e.message));
  const w = new addon.FdWatcher(throwing.stdoutFd, () => {
    w.close();
    throw new Error("boom from callback");
  });
});
addon.close(throwing.stdoutFd);

report({
  firstText,
  callsAfterClose,
  secondCloseError,
  refAfterClose,
  twice,
  again,
  unheldText,
  order,
  uncaught,
});
