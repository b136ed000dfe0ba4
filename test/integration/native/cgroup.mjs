// spawn's cgroupFd, pidEnv and oomScoreAdj; inotify on cgroup.events; getxattr; finitModule and the
// watchdog ioctls' errors. The cgroup cases run in a cgroup v2 directory made under the path given
// as the first argument (this host's unified hierarchy), or are skipped without one.
import fs from "node:fs";
import path from "node:path";
import { addon, childEnv, decodeStatus, errorOf, report, sleep, startReaper } from "./lib.mjs";

const reaper = startReaper();
const result = {};

// The child writes its own pid into each pidEnv variable, whatever value it had.
const out = addon.spawn({
  file: "/bin/sh",
  argv: ["sh", "-c", 'echo "$$ $WATCHDOG_PID $OTHER"'],
  env: [...childEnv, "WATCHDOG_PID=stale", "OTHER=x"],
  pidEnv: ["WATCHDOG_PID", "MISSING_PID"],
  stdout: "pipe",
});
await reaper.waitFor(out.pid);
const [shellPid, watchdogPid, other] = fs.readFileSync(out.stdoutFd, "utf8").trim().split(" ");
fs.closeSync(out.stdoutFd);
result.pidEnv = { matches: shellPid === watchdogPid && Number(shellPid) === out.pid, other };

// oomScoreAdj: raising one's score is always allowed.
const scored = addon.spawn({ file: "/bin/sleep", argv: ["sleep", "30"], env: childEnv, oomScoreAdj: 500 });
result.oomScore = Number(fs.readFileSync(`/proc/${scored.pid}/oom_score_adj`, "utf8"));
process.kill(scored.pid, "SIGKILL");
await reaper.waitFor(scored.pid);

const parent = process.argv[2];
if (parent && fs.existsSync(parent)) {
  const dir = path.join(parent, `starter-native-${process.pid}`);
  fs.mkdirSync(dir);
  try {
    const procs = fs.openSync(path.join(dir, "cgroup.procs"), "w");
    const child = addon.spawn({ file: "/bin/sh", argv: ["sh", "-c", "sleep 30 & exec sleep 30"], env: childEnv, cgroupFd: procs });
    fs.closeSync(procs);
    await sleep(200);
    const members = fs.readFileSync(path.join(dir, "cgroup.procs"), "utf8").trim().split("\n").map(Number);
    result.cgroup = { childInIt: members.includes(child.pid), members: members.length };

    // inotify on cgroup.events, through an FdWatcher: readable once the cgroup empties.
    const inotify = addon.inotifyInit();
    addon.inotifyAddWatch(inotify, path.join(dir, "cgroup.events"));
    const emptied = new Promise((resolve) => {
      const watcher = new addon.FdWatcher(inotify, () => {
        const events = fs.readFileSync(path.join(dir, "cgroup.events"), "utf8");
        try {
          fs.readSync(inotify, Buffer.alloc(4096));
        } catch {
          // EAGAIN
        }
        if (/populated 0/.test(events)) {
          watcher.close();
          resolve(events);
        }
      });
    });
    fs.writeFileSync(path.join(dir, "cgroup.kill"), "1");
    result.events = (await Promise.race([emptied, sleep(5000).then(() => "timeout")])).split("\n")[0];
    addon.close(inotify);
    result.childExit = decodeStatus(await reaper.waitFor(child.pid));
    // A cgroup.procs that refuses the child: the spawn fails at the "cgroup" stage.
    const refusing = fs.openSync(path.join(dir, "cgroup.events"), "r");
    result.badCgroup = errorOf(() => addon.spawn({ file: "/bin/true", argv: ["true"], env: childEnv, cgroupFd: refusing }));
    fs.closeSync(refusing);
    if (result.badCgroup?.pid) await reaper.waitFor(result.badCgroup.pid);
    result.xattr = addon.getxattr(dir, "trusted.delegate");
  } finally {
    fs.rmdirSync(dir);
  }
}

result.errors = {
  finitModule: errorOf(() => addon.finitModule("/nonexistent.ko")),
  watchdogSetTimeout: errorOf(() => addon.watchdogSetTimeout(0, 10)),
  watchdogInfo: errorOf(() => addon.watchdogInfo(0)),
  inotifyAddWatch: errorOf(() => addon.inotifyAddWatch(0, "/nonexistent")),
  getxattr: errorOf(() => addon.getxattr("/nonexistent", "user.x")),
};
report(result);
