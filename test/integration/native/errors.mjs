// Failures: spawn stages reported through the exec-stage pipe, and errno errors of the other
// calls. Run inside `unshare --mount --uts --net` so that a call that wrongly succeeded could not
// touch the host.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { addon, childEnv, decodeStatus, errorOf, report, startReaper } from "./lib.mjs";

const reaper = startReaper();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "native-errors-"));
const plainFile = path.join(dir, "not-executable");
fs.writeFileSync(plainFile, "#!/bin/sh\nexit 0\n", { mode: 0o644 });
const privateDir = path.join(dir, "private");
fs.mkdirSync(privateDir, { mode: 0o700 });

const spawnError = (options) => errorOf(() => addon.spawn({ argv: ["x"], env: childEnv, ...options }));

const missing = spawnError({ file: path.join(dir, "missing") });
const notExecutable = spawnError({ file: plainFile });
const badCwd = spawnError({ file: "/bin/true", cwd: path.join(dir, "no-such-dir") });
// chdir happens after setuid: a directory only root may enter is refused to nobody.
const cwdAfterSetuid = spawnError({ file: "/bin/true", cwd: privateDir, uid: 65534, gid: 65534, groups: [] });
const badStdoutFd = spawnError({ file: "/bin/true", stdout: 987 });

// Every failed child still exits (127) through the reaper.
const failedPids = [missing, notExecutable, badCwd, cwdAfterSetuid, badStdoutFd].map((e) => e?.pid);
const failedExits = await Promise.all(failedPids.map(async (pid) => (typeof pid === "number" ? decodeStatus(await reaper.waitFor(pid)).code : null)));

const typeErrors = {
  stdinPipe: spawnError({ file: "/bin/true", stdin: "pipe" }),
  badStdio: spawnError({ file: "/bin/true", stdout: "bogus" }),
  notifyLow: spawnError({ file: "/bin/true", notifyFd: 2 }),
  badRlimit: spawnError({ file: "/bin/true", rlimits: [{ resource: "bogus", soft: 1, hard: 1 }] }),
  nulInArg: spawnError({ file: "/bin/true", argv: ["a\0b"] }),
  noFile: errorOf(() => addon.spawn({ argv: [], env: [] })),
  mountFlag: errorOf(() => addon.mount({ source: "none", target: dir, type: "tmpfs", flags: ["bogus"] })),
  umountFlag: errorOf(() => addon.umount(dir, ["bogus"])),
  rebootCommand: errorOf(() => addon.reboot("bogus")),
  watcherCallback: errorOf(() => new addon.FdWatcher(0, 42)),
};

// A plain file: neither a socket nor a pidfd (fd 0 may well be a socket under a test runner).
const fileFd = fs.openSync(plainFile, "r");
const syscalls = {
  mount: errorOf(() => addon.mount({ source: "none", target: path.join(dir, "nope", "x"), type: "tmpfs" })),
  umount: errorOf(() => addon.umount(path.join(dir, "nope"))),
  umountNotMounted: errorOf(() => addon.umount(dir)),
  sethostname: errorOf(() => addon.sethostname("h".repeat(300))),
  linkUp: errorOf(() => addon.linkUp("nosuchif0")),
  pidfdOpen: errorOf(() => addon.pidfdOpen(0x3ffffff)),
  pidfdSendSignal: errorOf(() => addon.pidfdSendSignal(fileFd, 0)),
  close: errorOf(() => addon.close(1_000_000)),
  dup2: errorOf(() => addon.dup2(1_000_000, 100)),
  peerCred: errorOf(() => addon.peerCred(fileFd)),
  recvDgram: errorOf(() => addon.recvDgram(fileFd)),
  setControllingTerminal: errorOf(() => addon.setControllingTerminal(1_000_000, false)),
  watcher: errorOf(() => new addon.FdWatcher(1_000_000, () => {})),
};

fs.closeSync(fileFd);
fs.rmSync(dir, { recursive: true, force: true });
report({
  missing,
  notExecutable,
  badCwd,
  cwdAfterSetuid,
  badStdoutFd,
  failedExits,
  typeErrors,
  syscalls,
  errorIsError: errorOf(() => addon.umount(dir)) !== null,
});
