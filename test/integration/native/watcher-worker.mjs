// A worker ends with FdWatchers still open (ref'd and unref'd) and one closed just before: the
// environment's teardown must close them and wait for libuv's close callbacks before the addon
// can be unloaded with the worker (a late callback into unloaded code crashes the process).
//
// The main thread does not load the addon (no lib.mjs): only then is it unloaded with the worker.
import { Worker } from "node:worker_threads";

const workerCode = `
  const { createRequire } = require("node:module");
  const { workerData } = require("node:worker_threads");
  const addon = createRequire(workerData.base)("../../../native/build/Release/starter_native.node");
  const env = ["PATH=/usr/bin:/bin"];
  const child = () => addon.spawn({ file: "/bin/sh", argv: ["sh", "-c", "sleep 0.2; echo x"], env, stdout: "pipe" });
  const open = new addon.FdWatcher(child().stdoutFd, () => {});
  const unrefd = new addon.FdWatcher(child().stdoutFd, () => {});
  unrefd.unref();
  const closed = new addon.FdWatcher(child().stdoutFd, () => {});
  closed.close();
  setTimeout(() => process.exit(7), 50);
`;
const exits = [];
for (let i = 0; i < 3; i++) {
  const worker = new Worker(workerCode, { eval: true, workerData: { base: import.meta.url } });
  exits.push(await new Promise((resolve) => worker.on("exit", resolve)));
}
// Give any stray close callback the chance to run (and crash) before reporting.
await new Promise((resolve) => setTimeout(resolve, 500));
process.stdout.write(`${JSON.stringify({ exits })}\n`);
