// Integration tests of the native addon (native/src). The addon installs a SIGCHLD handler and
// reaps with waitpid(-1), so it is never loaded in the vitest worker: every case runs a script of
// test/integration/native/ in its own node process (some inside private namespaces made with
// unshare) and checks the JSON line the script prints last.
import { execFile } from "node:child_process";
import { existsSync, readlinkSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { SIGRTMAX, SIGRTMIN } from "../../init/core/signals";

const here = path.dirname(fileURLToPath(import.meta.url));
const scriptDir = path.join(here, "native");
const addonPath = path.resolve(here, "../../native/build/Release/starter_native.node");

// Namespaces of this process: scripts that must run in private ones compare against them.
const hostNamespaces = {
  HOST_MNT_NS: readlinkSync("/proc/self/ns/mnt"),
  HOST_UTS_NS: readlinkSync("/proc/self/ns/uts"),
  HOST_NET_NS: readlinkSync("/proc/self/ns/net"),
  HOST_PID_NS: readlinkSync("/proc/self/ns/pid"),
};

interface RunResult {
  stdout: string;
  stderr: string;
  code: number | null;
  signal: string | null;
  // The script's result line, parsed; its shape is the script's own.
  json: any;
}

interface RunOptions {
  args?: string[];
  // Command put before node, e.g. ["unshare", "--mount"].
  wrapper?: string[];
  nodeArgs?: string[];
  timeoutMs?: number;
  // Run under script(1), which gives the command a pseudo-terminal as controlling terminal.
  withTerminal?: boolean;
}

const shellQuote = (word: string) => `'${word.replaceAll("'", "'\\''")}'`;

function run(script: string, options: RunOptions = {}): Promise<RunResult> {
  const nodeCommand = [process.execPath, ...(options.nodeArgs ?? []), path.join(scriptDir, script), ...(options.args ?? [])];
  const command = options.withTerminal
    ? ["script", "--quiet", "--return", "--command", nodeCommand.map(shellQuote).join(" "), "/dev/null"]
    : [...(options.wrapper ?? []), ...nodeCommand];
  return new Promise((resolve) => {
    execFile(
      command[0],
      command.slice(1),
      { env: { ...process.env, ...hostNamespaces }, timeout: options.timeoutMs ?? 30_000, killSignal: "SIGKILL" },
      (error, stdout, stderr) => {
        const lines = stdout.split("\n").filter((line) => line.trim() !== "");
        let json: any;
        try {
          json = JSON.parse(lines[lines.length - 1] ?? "null");
        } catch {
          json = null;
        }
        const failure = error as (Error & { code?: number | string; signal?: string | null }) | null;
        resolve({
          stdout,
          stderr,
          code: failure ? (typeof failure.code === "number" ? failure.code : null) : 0,
          signal: failure?.signal ?? null,
          json,
        });
      },
    );
  });
}

/** Runs a script that must exit 0 and returns its result line. */
async function result(script: string, options: RunOptions = {}): Promise<any> {
  const outcome = await run(script, options);
  expect(outcome.stderr).not.toMatch(/Error|Warning/);
  expect({ code: outcome.code, signal: outcome.signal }).toEqual({ code: 0, signal: null });
  expect(outcome.json).not.toBeNull();
  expect(outcome.json.refused).toBeUndefined();
  return outcome.json;
}

const nativeError = (code: string, syscall: string, errno: number) => expect.objectContaining({ name: "Error", code, syscall, errno });
const typeError = expect.objectContaining({ name: "TypeError" });

describe("native addon", () => {
  beforeAll(() => {
    expect(existsSync(addonPath), `build the addon first: npx node-gyp rebuild --directory native`).toBe(true);
  });

  it("reaps 200 concurrent children with their true exit codes during a 2000-orphan storm", async () => {
    const r = await result("storm.mjs", { timeoutMs: 60_000 });
    // SIGCHLD goes to the reaper's own thread, never waiting for a busy or sleeping main thread.
    expect(r.sigchldThreads).toEqual({ mainBlocksSigchld: true, reaperThreads: 1, reaperTakesOnlySigchld: true });
    // Children that exited before reaperStart() were zombies and are collected by it.
    expect(r.earlyZombies).toBe(3);
    expect(r.earlyCodes).toEqual([40, 41, 42]);
    expect(r.stormCode).toBe(0);
    expect(r.wrongCodes).toEqual([]);
    expect(r.orphans).toBe(2000);
    expect(r.zombiesLeft).toBe(0);
    // One record per exit: 3 early + the storm shell + 200 children + 2000 orphans.
    expect(r.records).toBe(2204);
    expect(r.duplicates).toBe(0);
    expect(r.leftoverBytes).toBe(0);
  }, 90_000);

  it("reports spawn failures by stage, and errno errors with code / syscall / errno", async () => {
    const r = await result("errors.mjs", { wrapper: ["unshare", "--mount", "--uts", "--net", "--propagation", "private"] });
    expect(r.missing).toEqual(nativeError("ENOENT", "execve", 2));
    expect(r.notExecutable).toEqual(nativeError("EACCES", "execve", 13));
    expect(r.badCwd).toEqual(nativeError("ENOENT", "chdir", 2));
    expect(r.cwdAfterSetuid).toEqual(nativeError("EACCES", "chdir", 13));
    expect(r.badStdoutFd).toEqual(nativeError("EBADF", "dup2", 9));
    for (const e of [r.missing, r.notExecutable, r.badCwd, r.cwdAfterSetuid, r.badStdoutFd]) {
      expect(e.pid).toBeGreaterThan(0);
    }
    expect(r.missing.message).toBe("ENOENT: no such file or directory, execve");
    // The failed children exit 127, and that exit arrives through the reaper.
    expect(r.failedExits).toEqual([127, 127, 127, 127, 127]);

    for (const [name, e] of Object.entries(r.typeErrors)) {
      expect(e, name).toEqual(typeError);
    }

    expect(r.syscalls).toEqual({
      mount: nativeError("ENOENT", "mount", 2),
      umount: nativeError("ENOENT", "umount2", 2),
      umountNotMounted: nativeError("EINVAL", "umount2", 22),
      sethostname: nativeError("EINVAL", "sethostname", 22),
      linkUp: nativeError("ENODEV", "ioctl", 19),
      pidfdOpen: nativeError("ESRCH", "pidfd_open", 3),
      pidfdSendSignal: nativeError("EBADF", "pidfd_send_signal", 9),
      close: nativeError("EBADF", "close", 9),
      dup2: nativeError("EBADF", "dup2", 9),
      peerCred: nativeError("ENOTSOCK", "getsockopt", 88),
      recvDgram: nativeError("ENOTSOCK", "recv", 88),
      setControllingTerminal: nativeError("EBADF", "ioctl", 9),
      watcher: nativeError("EBADF", "uv_poll_init", 9),
    });
  });

  it("wires stdio: pipes, merged stderr, /dev/null, fd numbers, inherit, notifyFd, nothing else", async () => {
    const outcome = await run("stdio.mjs");
    expect({ code: outcome.code, signal: outcome.signal }).toEqual({ code: 0, signal: null });
    const r = outcome.json;
    expect(r.pipeOut).toBe("hello\n");
    expect(r.echo).toEqual({ stderrFd: -1, notifyFd: -1 });
    expect(r.mergedOut).toBe("out\nerr\nout2\n");
    expect(r.mergedStderrFd).toBe(-1);
    expect(r.splitOut).toBe("out\n");
    expect(r.splitErr).toBe("err\n");
    expect(r.catOut).toBe("");
    expect(r.catCode).toBe(0);
    expect(r.fileText).toBe("one\ntwo\n");
    expect(r.notifyResult).toEqual({ stdoutFd: -1, stderrFd: -1, text: "ready\n" });
    // ls's own directory handle is fd 3; everything of the parent is gone.
    expect(r.lsFds).toEqual(["0", "1", "2", "3"]);
    expect(r.lsNotifyFds).toEqual(["0", "1", "2", "3", "7"]);
    expect(r.parentEnds).toEqual([
      { nonblock: true, cloexec: true },
      { nonblock: true, cloexec: true },
      { nonblock: true, cloexec: true },
    ]);
    // stdout: 2 / stderr: 1 swaps the streams (the dup2 ordering trap would put both on stderr).
    expect(outcome.stdout).toContain("to-parent-stdout\n");
    expect(outcome.stdout).not.toContain("to-parent-stderr");
    expect(outcome.stderr).toContain("to-parent-stderr\n");
    expect(outcome.stderr).not.toContain("to-parent-stdout");
    // "inherit" reaches the script's own stdout although Node marks fds 0-2 close-on-exec.
    expect(outcome.stdout).toContain("inherited-stdout-line\n");
  });

  it("starts children with default signal dispositions, an empty mask, and the asked-for session", async () => {
    const r = await result("process.mjs");
    // Sanity: the parent (Node) does ignore and catch signals, so the check below can fail.
    expect(r.parentSignals.SigIgn).not.toBe("0000000000000000");
    expect(r.childSignals).toEqual({ SigIgn: "0000000000000000", SigBlk: "0000000000000000", SigCgt: "0000000000000000" });
    expect(r.plain.pgrp).toBe(r.own.pgrp);
    expect(r.plain.session).toBe(r.own.session);
    expect(r.setsid.pgrp).toBe(r.setsid.pid);
    expect(r.setsid.session).toBe(r.setsid.pid);
    expect(r.setpgid.pgrp).toBe(r.setpgid.pid);
    expect(r.setpgid.session).toBe(r.own.session);
    expect(r.pidfd).toEqual({ aliveBeforeSignal: true, watcherFired: 1, exit: { code: null, signal: 9 } });
  });

  it("foreground hands the terminal on stdin to the child's new process group", async () => {
    const r = await result("foreground.mjs", { withTerminal: true });
    expect(r.isTty).toBe(true);
    expect(r.tpgidBefore).toBe(r.ownGroup);
    expect(r.tpgidWithBackground).toBe(r.ownGroup);
    expect(r.tpgidWithForeground).toBe(r.childPid);
    expect(r.childSigIgn).toBe("0000000000000000");
  });

  it("applies umask, rlimits, groups, gid and uid", async () => {
    const r = await result("creds.mjs");
    expect(r.umask).toEqual(["0027"]);
    expect(r.uid).toEqual(["65534", "65534", "65534", "65534"]);
    expect(r.gid).toEqual(["65533", "65533", "65533", "65533"]);
    expect(r.groups).toEqual(["100", "200"]);
    expect(r.nofile).toEqual(["1000", "2000"]);
    expect(r.core).toEqual(["unlimited", "unlimited"]);
    expect(r.nproc).toEqual(["500", "600"]);
    // Without options the child keeps the parent's.
    expect(r.defaultUid).toEqual(["0", "0", "0", "0"]);
    expect(r.defaultUmask).toEqual([r.ownUmask]);
  });

  it("spawn: pidEnv gets the child's own pid, oomScoreAdj its score, cgroupFd its cgroup (before exec); inotify hears cgroup.events; errors", async () => {
    const unified = "/sys/fs/cgroup/unified";
    const cgroupParent = existsSync(`${unified}/cgroup.procs`) ? unified : "";
    const r = await result("cgroup.mjs", { args: [cgroupParent] });
    expect(r.pidEnv).toEqual({ matches: true, other: "x" });
    expect(r.oomScore).toBe(500);
    if (cgroupParent) {
      // The shell and the sleep it forked are both in the cgroup; cgroup.kill ends both, inotify tells.
      expect(r.cgroup).toEqual({ childInIt: true, members: 2 });
      expect(r.events).toBe("populated 0");
      expect(r.childExit).toEqual({ code: null, signal: 9 });
      expect(r.badCgroup).toEqual(nativeError("EBADF", "cgroup", 9));
      expect(r.xattr).toBeNull();
    }
    expect(r.errors).toEqual({
      finitModule: nativeError("ENOENT", "open", 2),
      watchdogSetTimeout: nativeError("ENOTTY", "ioctl", 25),
      watchdogInfo: nativeError("ENOTTY", "ioctl", 25),
      inotifyAddWatch: nativeError("EINVAL", "inotify_add_watch", 22),
      getxattr: nativeError("ENOENT", "getxattr", 2),
    });
  });

  it("leaks no descriptor over 100 spawns with pipes and 50 failed spawns", async () => {
    const r = await result("fdleak.mjs");
    expect(r.failures).toBe(50);
    expect(r.after).toEqual(r.before);
  });

  it("never loses an exit when the reaper pipe is full: zombies wait for reaperKick()", async () => {
    const r = await result("overflow.mjs", { timeoutMs: 60_000 });
    expect(r.shrinkCode).toBe(0);
    // A one-page pipe holds 512 records at most: most of the 600 children had to stay zombies.
    expect(r.zombiesWhileFull).toBeGreaterThan(88);
    expect(r.missing).toBe(0);
    expect(r.wrong).toBe(0);
    expect(r.zombiesLeft).toBe(0);
    expect(r.records).toBe(601);
    expect(r.duplicates).toBe(0);
  }, 90_000);

  it("FdWatcher fires, closes safely (twice, inside the callback), survives GC, runs microtasks", async () => {
    const r = await result("watcher.mjs", { nodeArgs: ["--expose-gc"] });
    expect(r.firstText).toBe("ping\n");
    expect(r.callsAfterClose).toBe(1);
    expect(r.secondCloseError).toBeNull();
    expect(r.refAfterClose).toBeNull();
    expect(r.twice).toEqual(nativeError("EEXIST", "uv_poll_init", 17));
    expect(r.again).toBeNull();
    expect(r.unheldText).toBe("unheld\n");
    expect(r.order).toEqual(["nextTick", "microtask", "immediate"]);
    expect(r.uncaught).toBe("boom from callback");
  });

  it("FdWatcher ref keeps the loop alive until data arrives; unref does not", async () => {
    const ref = await result("watcher-ref.mjs", { args: ["ref"] });
    expect(ref.received).toBe("late-data\n");
    expect(ref.elapsedMs).toBeGreaterThanOrEqual(400);
    const unref = await result("watcher-ref.mjs", { args: ["unref"] });
    expect(unref.received).toBe("");
    expect(unref.elapsedMs).toBeLessThan(5000);
  });

  it("FdWatchers left open in an ending worker are closed before the addon is unloaded", async () => {
    const outcome = await run("watcher-worker.mjs");
    expect({ code: outcome.code, signal: outcome.signal }).toEqual({ code: 0, signal: null });
    expect(outcome.json).toEqual({ exits: [7, 7, 7] });
  });

  it("peerCred gives the connecting process; unix datagram sockets bind, recv and report EAGAIN as null", async () => {
    const r = await result("socket.mjs");
    expect(r.peer).toEqual(r.expected);
    expect(r.peer.uid).toBe(process.getuid?.());
    expect(r.isSocket).toBe(true);
    expect(r.nonblock).toBe(true);
    expect(r.cloexec).toBe(true);
    expect(r.emptyRecv).toBeNull();
    expect(r.senderCode).toBe(0);
    expect(r.first.isBuffer).toBe(true);
    expect(r.first.text).toMatch(/READY=1$/);
    expect(r.second).toMatch(/STATUS=up$/);
    expect(r.third).toBeNull();
  });

  it("sendDgram sends one datagram to a socket path or an abstract name (@…); errors carry code and syscall", async () => {
    const r = await result("socket.mjs");
    expect(r.send.nonblock).toBe(true);
    expect(r.send.cloexec).toBe(true);
    expect(r.send.sentBytes).toBe("READY=1\nSTATUS=two lines".length);
    expect(r.send.received).toBe("READY=1\nSTATUS=two lines");
    expect(r.send.refused).toEqual(nativeError("ECONNREFUSED", "sendto", 111));
    expect(r.send.missing).toEqual(nativeError("ENOENT", "sendto", 2));
    expect(r.send.notBuffer).toBe("TypeError");
    expect(r.send.abstractSent).toBe(10);
    expect(r.send.pythonCode).toBe(0);
    expect(r.send.abstractReceived).toBe("WATCHDOG=1");
  });

  it("mounts, remounts and unmounts with named flags (private mount namespace)", async () => {
    const r = await result("mount.mjs", { wrapper: ["unshare", "--mount", "--propagation", "private"] });
    expect(r.mounted.type).toBe("tmpfs");
    expect(r.mounted.options).toEqual(expect.arrayContaining(["rw", "nosuid", "nodev", "noexec"]));
    expect(r.mounted.superOptions).toEqual(expect.arrayContaining(["mode=700", "size=1024k"]));
    expect(r.remounted.options).toContain("ro");
    expect(r.writeAfterRemount).toBe("EROFS");
    expect(r.afterUmount).toBeNull();
    expect(r.umountAgain).toEqual(nativeError("EINVAL", "umount2", 22));
  });

  it("sets the host name, brings lo up, setsid, dup2, close (private uts / net / mount namespaces)", async () => {
    const r = await result("system.mjs", {
      wrapper: ["unshare", "--uts", "--net", "--mount", "--propagation", "private"],
    });
    expect(r.hostname).toBe("starter-native-test");
    expect(r.loUpBefore).toBe(false);
    expect(r.loUpAfter).toBe(true);
    expect(r.linkUpAgain).toBeNull();
    expect(r.sid).toBe(r.pid);
    expect(r.setsidAgain).toEqual(nativeError("EPERM", "setsid", 1));
    expect(r.notATerminal).toEqual(nativeError("ENOTTY", "ioctl", 25));
    expect(r.sameFile).toBe(true);
    expect(r.closeAgain).toEqual(nativeError("EBADF", "close", 9));
  });

  it("catches signals into a self-pipe with who sent them; SIGRTMIN/SIGRTMAX as the core assumes; PDEATHSIG; TIOCNOTTY", async () => {
    const r = await result("signals.mjs");
    expect(r.sameFd).toBe(true);
    expect(r.nonBlocking).toBe(true);
    expect(r.range).toEqual({ min: SIGRTMIN, max: SIGRTMAX });
    const self = { code: 0, pid: r.pid, uid: r.uid };
    expect(r.records).toEqual([
      { signo: 10, ...self },
      // Real-time signals queue: one record per delivery.
      { signo: SIGRTMIN, ...self },
      { signo: SIGRTMIN, ...self },
      { signo: SIGRTMIN, ...self },
      { signo: SIGRTMAX, ...self },
      // The kernel's SIGPIPE after the write names the writer itself.
      { signo: 13, ...self },
      { signo: 12, code: 0, pid: r.senderPid, uid: r.uid },
    ]);
    expect(r.brokenPipe).toBe("EPIPE");
    expect(r.rejected.kill).toEqual(nativeError("EINVAL", "sigaction", 22));
    expect(r.rejected.stop).toEqual(nativeError("EINVAL", "sigaction", 22));
    expect(r.rejected.glibc32).toEqual(nativeError("EINVAL", "sigaction", 22));
    expect(r.rejected.zero).toEqual(typeError);
    expect(r.deathSignal.set).toBeNull();
    expect(r.deathSignal.clear).toBeNull();
    expect(r.deathSignal.bad).toEqual(typeError);
    expect(r.noTerminal).toEqual(nativeError("ENOTTY", "ioctl", 25));
    expect(r.childExit).toBe(0);
  });

  it.each([
    ["poweroff", "SIGINT"],
    ["halt", "SIGINT"],
    ["restart", "SIGHUP"],
  ])("reboot(%s) in a PID namespace ends it as %s; cad-off / cad-on give EINVAL there", async (command, signal) => {
    const outcome = await run("reboot.mjs", { args: [command], wrapper: ["unshare", "--pid", "--fork"] });
    expect(outcome.json).toEqual({
      command,
      cadOff: nativeError("EINVAL", "reboot", 22),
      cadOn: nativeError("EINVAL", "reboot", 22),
    });
    // unshare re-raises the signal its child (the namespace's init) died of.
    expect(outcome.signal).toBe(signal);
  });
});

describe("native addon: listening sockets of socket activation", () => {
  it("socket, setsockopt, bind, listen, accept4, connect and getsockname, one call each; the accept queues; errors with code and syscall", async () => {
    const r = await result("listen.mjs");
    // Non-blocking and close-on-exec (O_NONBLOCK 04000, O_CLOEXEC 02000000); an accepted connection is blocking.
    expect(r.tcpFlags & 0o4000).toBe(0o4000);
    expect(r.tcpFlags & 0o2000000).toBe(0o2000000);
    expect(r.acceptedFlags & 0o4000).toBe(0);
    expect(r.tcpName).toEqual({ family: "inet", host: "127.0.0.1", port: expect.any(Number) });
    expect(r.tcp6Name).toEqual({ family: "inet6", host: "::1", port: r.tcpName.port });
    expect([r.emptyQueue, r.twoQueued, r.afterAccept]).toEqual([
      { listening: true, queued: 0, backlog: 7 },
      { listening: true, queued: 2, backlog: 7 },
      { listening: true, queued: 1, backlog: 7 },
    ]);
    expect(r.nothingToAccept).toBeNull();
    expect([r.unixEmpty, r.unixQueued, r.noAnswer]).toEqual([{ queued: 0, backlog: 5 }, { queued: 1, backlog: 5 }, null]);
    expect(r.connectLive).toBeNull();
    expect(r.udpEmpty).toBe(0);
    expect(r.udpWaiting).toBeGreaterThan(0);
    expect(r.errors.inUse).toEqual(nativeError("EADDRINUSE", "bind", 98));
    expect(r.errors.missingDirectory).toEqual(nativeError("ENOENT", "bind", 2));
    expect(r.errors.refused).toEqual(nativeError("ENOENT", "connect", 2));
    for (const key of ["badHost", "badFamily", "badOption"]) expect(r.errors[key], key).toEqual(typeError);
  });

  it("spawn places listenFds at 3, 4, … (sources inside the target range too) and sets LISTEN_PID to the child's own pid", async () => {
    const { spawn } = await result("listen.mjs");
    expect(spawn.code).toBe(0);
    expect([spawn.shellPid, spawn.listenPid, spawn.listenCount]).toEqual([spawn.pid, spawn.pid, 25]);
    expect(spawn.links.slice(0, 4)).toEqual([spawn.expected[3], spawn.expected[4], spawn.expected[5], spawn.expected[6]]);
    // fd 27 is the last socket, 28 the notify pipe above them, and nothing else is inherited.
    expect(spawn.links.slice(4)).toEqual([spawn.expected[6], expect.stringMatching(/^pipe:/), "none"]);
  });

  it("refuses a notify fd among the listen fds", async () => {
    const r = await result("listen.mjs");
    expect(r.notifyBelow).toEqual(expect.objectContaining({ name: "TypeError", message: "notifyFd must be above the listenFds (3 + their count)" }));
  });
});
