// A ref'd watcher is the only thing keeping this process alive until data arrives ("ref"), and an
// unref'd one does not keep it alive at all ("unref"). No reaper here: nothing else is on the loop.
import fs from "node:fs";
import { addon, childEnv } from "./lib.mjs";

const mode = process.argv[2];
const child = addon.spawn({
  file: "/bin/sh",
  argv: ["sh", "-c", mode === "ref" ? "sleep 0.5; echo late-data" : "sleep 30"],
  env: childEnv,
  stdout: "pipe",
});
const started = Date.now();
let received = "";
const watcher = new addon.FdWatcher(child.stdoutFd, () => {
  const buffer = Buffer.alloc(64);
  received += buffer.subarray(0, fs.readSync(child.stdoutFd, buffer, 0, 64, null)).toString();
  watcher.close();
});
if (mode === "unref") {
  watcher.unref();
} else {
  // unref then ref again: ends ref'd.
  watcher.unref();
  watcher.ref();
}
process.on("exit", () => {
  if (mode === "unref") process.kill(child.pid, "SIGKILL");
  process.stdout.write(`${JSON.stringify({ mode, received, elapsedMs: Date.now() - started })}\n`);
});
