// Credentials, umask and resource limits as the child sees them.
import { addon, childEnv, readAll, report, startReaper } from "./lib.mjs";

const reaper = startReaper();
const catProc = async (file, options) => {
  const child = addon.spawn({ file: "/bin/cat", argv: ["cat", file], env: childEnv, stdout: "pipe", ...options });
  const text = await readAll(child.stdoutFd);
  await reaper.waitFor(child.pid);
  return text;
};
const field = (text, name) => new RegExp(`^${name}:\\s*(.*)$`, "m").exec(text)?.[1].trim().split(/\s+/);
const limit = (text, name) => new RegExp(`^${name}\\s+(\\S+)\\s+(\\S+)`, "m").exec(text)?.slice(1, 3);

const status = await catProc("/proc/self/status", { umask: 0o027, uid: 65534, gid: 65533, groups: [100, 200] });
const limits = await catProc("/proc/self/limits", {
  rlimits: [
    { resource: "nofile", soft: 1000, hard: 2000 },
    { resource: "core", soft: -1, hard: -1 },
    { resource: "nproc", soft: 500, hard: 600 },
  ],
});
const defaults = await catProc("/proc/self/status", {});

report({
  umask: field(status, "Umask"),
  uid: field(status, "Uid"),
  gid: field(status, "Gid"),
  groups: field(status, "Groups"),
  nofile: limit(limits, "Max open files"),
  core: limit(limits, "Max core file size"),
  nproc: limit(limits, "Max processes"),
  defaultUid: field(defaults, "Uid"),
  defaultUmask: field(defaults, "Umask"),
  ownUmask: process.umask().toString(8).padStart(4, "0"),
});
