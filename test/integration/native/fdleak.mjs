// No descriptor leaks: the parent's fds are the same before and after many spawns, successful
// (with every kind of pipe) and failed.
import { addon, childEnv, openFds, readAll, report, startReaper } from "./lib.mjs";

const reaper = startReaper();
const spawnAndDrain = async () => {
  const child = addon.spawn({
    file: "/bin/sh",
    argv: ["sh", "-c", "echo out; echo err >&2; echo n >&4"],
    env: childEnv,
    stdin: "null",
    stdout: "pipe",
    stderr: "pipe",
    notifyFd: 4,
  });
  await Promise.all([readAll(child.stdoutFd), readAll(child.stderrFd), readAll(child.notifyFd)]);
  await reaper.waitFor(child.pid);
};

// The first net.Socket makes Node open a descriptor of its own once (libuv): warm up first.
await spawnAndDrain();
const before = openFds();
for (let i = 0; i < 100; i++) await spawnAndDrain();
let failures = 0;
for (let i = 0; i < 50; i++) {
  try {
    addon.spawn({ file: "/nonexistent", argv: ["x"], env: childEnv, stdout: "pipe", stderr: "pipe", notifyFd: 4 });
  } catch (e) {
    failures++;
    await reaper.waitFor(e.pid);
  }
}

const after = openFds();
report({ before, after, failures });
