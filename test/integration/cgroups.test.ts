// Cgroups, daemons and watchdogs with the real binary as PID 1 of a PID namespace, on this host.
//
// This host is cgroup v1 (hybrid): the init finds no cgroup v2 of its own and says so in one line.
// Its unified hierarchy (/sys/fs/cgroup/unified, no controllers) is writable by root, though, so
// settings.cgroup can hand the init a directory there: the cgroup code runs for real (the child
// joining before exec, cgroup.events watched, cgroup.kill), only limits and OOM kills need the
// controllers a VM has (test/e2e/vm.test.ts).

import { afterAll, describe, expect, it } from "vitest";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { BINARY, logRecords, run, startAsPid1, tempDir, waitUntil, type Pid1Process } from "./helpers";
import { PYTHON } from "./tango";

const UNIFIED = "/sys/fs/cgroup/unified";
const unifiedWritable = (() => {
  try {
    fs.accessSync(path.join(UNIFIED, "cgroup.procs"), fs.constants.W_OK);
    return fs.readFileSync("/proc/self/mountinfo", "utf8").includes(` ${UNIFIED} `) && process.getuid?.() === 0;
  } catch {
    return false;
  }
})();
const pureV2 = fs.existsSync("/sys/fs/cgroup/cgroup.controllers");

function writeConfig(dir: string, body: string, settings = ""): string {
  const file = path.join(dir, "config.yaml");
  fs.writeFileSync(file, `settings:\n  controlSocket: ${path.join(dir, "control.sock")}\n${settings}${body}`);
  return file;
}

function records(init: Pid1Process, server?: string, kind?: string) {
  return logRecords(init.stderr()).filter((r) => (server === undefined || r.server === server) && (kind === undefined || r.kind === kind));
}

async function status(
  dir: string,
): Promise<{ servers: { name: string; state: string; pid: number | null; restarts: number; resources?: { processes: number; cgroup: string } }[] }> {
  const result = await run(BINARY, ["status", "--json", "--socket", path.join(dir, "control.sock")]);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as never;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !fs.readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z ");
  } catch {
    return false;
  }
}

/** The host's pid of the process that is nsPid in the init's PID namespace (status and pid files speak the namespace's). */
function hostPid(initHostPid: number, nsPid: number): number {
  const namespace = fs.readlinkSync(`/proc/${initHostPid}/ns/pid`);
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const nspid = /^NSpid:\s+(.*)$/m.exec(fs.readFileSync(`/proc/${entry}/status`, "utf8"))?.[1].split(/\s+/);
      if (nspid && nspid.length >= 2 && Number(nspid.at(-1)) === nsPid && fs.readlinkSync(`/proc/${entry}/ns/pid`) === namespace) return Number(entry);
    } catch {
      // Gone meanwhile.
    }
  }
  throw new Error(`no process ${nsPid} in the init's namespace`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function rsyncConfig(dir: string, port: number, pidFile: boolean): string {
  const file = path.join(dir, "rsyncd.conf");
  fs.writeFileSync(file, `${pidFile ? `pid file = ${dir}/rsyncd.pid\n` : ""}port = ${port}\naddress = 127.0.0.1\nuse chroot = no\n[tmp]\npath = ${dir}\n`);
  return file;
}

async function stopInit(init: Pid1Process): Promise<number | null> {
  await init.signal("SIGTERM");
  return (await init.result).code;
}

describe.skipIf(pureV2)("without a writable cgroup v2 (a cgroup v1 or hybrid host)", () => {
  it("says so in one info line, with the servers whose limits are not applied; servers run as before", async () => {
    const dir = tempDir("nocgroup");
    const config = writeConfig(
      dir,
      `servers:
  - name: limited
    binary: /bin/sleep
    args: ["1000"]
    limits: {memory.max: 64MiB, pids.max: 10}
  - name: plain
    binary: /bin/sleep
    args: ["1000"]
`,
    );
    const init = startAsPid1(["--log-format", "json", "-c", config]);
    try {
      await init.waitFor('"kind":"boot-complete"');
      const lines = logRecords(init.stderr()).filter((r) => /cgroup v2/.test(String(r.msg)));
      expect(lines.map((r) => [r.level, r.msg])).toEqual([
        [
          30,
          "no writable cgroup v2 (no cgroup2 on /sys/fs/cgroup (a cgroup v1 or hybrid host)): servers are tracked by their process group; the limits of 1 server(s) are not applied",
        ],
      ]);
      const { servers } = await status(dir);
      expect(servers.map((s) => [s.name, s.state, "resources" in s])).toEqual([
        ["limited", "ready", false],
        ["plain", "ready", false],
      ]);
      expect(await stopInit(init)).toBe(0);
    } finally {
      init.unshare.kill("SIGKILL");
    }
  });
});

describe.skipIf(!unifiedWritable)("a cgroup v2 directory given by settings.cgroup (this host's unified hierarchy)", () => {
  const tree = path.join(UNIFIED, `starter-test-${process.env.STARTER_TEST_TAG ?? "local"}-${process.pid}`);
  afterAll(() => {
    // What the init made: its servers' cgroups (removed at its shutdown), servers/, init/, the tree.
    for (const dir of [path.join(tree, "servers"), path.join(tree, "init"), tree]) {
      if (!fs.existsSync(dir)) continue;
      for (const entry of fs.readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) fs.rmdirSync(path.join(dir, entry.name));
      fs.rmdirSync(dir);
    }
  });

  it("a double fork that escaped the process group is stopped completely; a forking daemon (rsync) found in its cgroup, its crash seen, its stop complete", async () => {
    const dir = tempDir("cgroup");
    const port = await freePort();
    const config = writeConfig(
      dir,
      `servers:
  - name: doublefork
    binary: /bin/sh
    args: ["-c", "(setsid sleep 1001 &); exec sleep 1000"]
  - name: rsyncd
    binary: /usr/bin/rsync
    args: ["--daemon", "--config=${rsyncConfig(dir, port, false)}"]
    type: forking
    readiness: "tcp:${port}"
`,
      `  cgroup: ${tree}\n  defaults: {stopTimeout: 3s, restart: {mode: on-failure, initialDelay: 200ms}}\n`,
    );
    const init = startAsPid1(["--log-format", "json", "-c", config]);
    try {
      await init.waitFor('"kind":"boot-complete"');
      expect(
        records(init)
          .filter((r) => /^cgroup v2/.test(String(r.msg)))
          .map((r) => r.msg),
      ).toEqual([`cgroup v2: servers in ${tree}/servers/ (controllers: none)`]);
      // The init itself moved into init/; each server is in servers/<name>.
      expect(
        fs
          .readFileSync(path.join(tree, "init", "cgroup.procs"), "utf8")
          .trim()
          .split("\n"),
      ).toContain(String(await init.initPid()));
      const before = await status(dir);
      const doublefork = before.servers.find((s) => s.name === "doublefork")!;
      expect(doublefork.resources).toMatchObject({ cgroup: path.join(tree, "servers", "doublefork"), processes: 2 });
      const members = fs
        .readFileSync(path.join(tree, "servers", "doublefork", "cgroup.procs"), "utf8")
        .trim()
        .split("\n")
        .map(Number);
      expect(members).toHaveLength(2);
      // The rsync daemon is found in its cgroup: its launcher exited 0, the daemon is the server's pid.
      const rsync = before.servers.find((s) => s.name === "rsyncd")!;
      expect(rsync.state).toBe("ready");
      expect(records(init, "rsyncd", "main-pid").map((r) => r.msg)).toEqual([`main process pid ${rsync.pid}`]);
      const initHost = await init.initPid();
      expect(fs.readFileSync(path.join(tree, "servers", "rsyncd", "cgroup.procs"), "utf8").trim()).toBe(String(hostPid(initHost, rsync.pid!)));

      // The stop reaches the escaped grandchild too.
      const stopped = await run(BINARY, ["stop", "doublefork", "--socket", path.join(dir, "control.sock")]);
      expect(stopped.code, stopped.stderr).toBe(0);
      await waitUntil(() => members.every((pid) => !alive(pid)), "no process of doublefork left", 10_000);
      expect(fs.readFileSync(path.join(tree, "servers", "doublefork", "cgroup.procs"), "utf8")).toBe("");

      // The daemon crashes: seen, restarted.
      process.kill(hostPid(initHost, rsync.pid!), "SIGSEGV");
      await init.waitFor(/"server":"rsyncd","kind":"exited".*killed by SIGSEGV/);
      await waitUntil(() => records(init, "rsyncd", "ready").length === 2, "rsyncd ready again", 15_000);
      const after = (await status(dir)).servers.find((s) => s.name === "rsyncd")!;
      expect([after.state, after.restarts, after.pid === rsync.pid]).toEqual(["ready", 1, false]);
      // A client connected: the daemon forked a child for it. The stop ends both.
      const client = net.connect(port, "127.0.0.1");
      await new Promise((resolve) => client.once("data", resolve));
      await waitUntil(
        () =>
          fs
            .readFileSync(path.join(tree, "servers", "rsyncd", "cgroup.procs"), "utf8")
            .trim()
            .split("\n").length === 2,
        "a connection child",
        5000,
      );
      const daemonPids = fs
        .readFileSync(path.join(tree, "servers", "rsyncd", "cgroup.procs"), "utf8")
        .trim()
        .split("\n")
        .map(Number);
      expect((await run(BINARY, ["stop", "rsyncd", "--socket", path.join(dir, "control.sock")])).code).toBe(0);
      client.destroy();
      await waitUntil(() => daemonPids.every((pid) => !alive(pid)), "no process of rsyncd left", 10_000);
      expect(await stopInit(init)).toBe(0);
      // The servers' cgroups are removed at the end.
      expect(fs.existsSync(path.join(tree, "servers", "rsyncd"))).toBe(false);
    } finally {
      init.unshare.kill("SIGKILL");
    }
  });
});

describe("type: forking with a pidFile, without a cgroup", () => {
  it("the daemon named by its pidFile is the server: its crash is seen and it is restarted; its stop ends it", async () => {
    const dir = tempDir("forking");
    const port = await freePort();
    const config = writeConfig(
      dir,
      `servers:
  - name: rsyncd
    binary: /usr/bin/rsync
    args: ["--daemon", "--config=${rsyncConfig(dir, port, true)}"]
    type: forking
    pidFile: ${dir}/rsyncd.pid
    readiness: "tcp:${port}"
    restart: {mode: on-failure, initialDelay: 200ms}
`,
      "  cgroup: false\n",
    );
    const init = startAsPid1(["--log-format", "json", "-c", config]);
    try {
      await init.waitFor('"kind":"boot-complete"');
      const first = (await status(dir)).servers[0];
      expect(first.pid).toBe(Number(fs.readFileSync(path.join(dir, "rsyncd.pid"), "utf8")));
      const initHost = await init.initPid();
      process.kill(hostPid(initHost, first.pid!), "SIGKILL");
      await init.waitFor(/"server":"rsyncd","kind":"exited".*killed by SIGKILL/);
      await waitUntil(() => records(init, "rsyncd", "ready").length === 2, "rsyncd ready again", 15_000);
      const second = (await status(dir)).servers[0];
      expect([second.state, second.restarts]).toEqual(["ready", 1]);
      const daemon = hostPid(initHost, second.pid!);
      expect((await run(BINARY, ["stop", "rsyncd", "--socket", path.join(dir, "control.sock")])).code).toBe(0);
      await waitUntil(() => !alive(daemon), "the daemon gone", 10_000);
      expect(await stopInit(init)).toBe(0);
    } finally {
      init.unshare.kill("SIGKILL");
    }
  });
});

describe("a server's watchdog (sd_notify WATCHDOG=1)", () => {
  it("gets WATCHDOG_USEC and its own WATCHDOG_PID; a missed period aborts it (SIGABRT), KILL after the stop timeout, then the restart policy", async () => {
    const dir = tempDir("watchdog");
    const script = path.join(dir, "server.py");
    // Ready, four keep-alives, then silence; it ignores SIGABRT on its second run (KILL must follow).
    fs.writeFileSync(
      script,
      `import os, signal, socket, sys, time
run = int(open(sys.argv[1]).read()) if os.path.exists(sys.argv[1]) else 0
open(sys.argv[1], "w").write(str(run + 1))
if run == 1:
    signal.signal(signal.SIGABRT, signal.SIG_IGN)
print("env", os.environ["WATCHDOG_USEC"], os.environ["WATCHDOG_PID"] == str(os.getpid()), flush=True)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])
for _ in range(4):
    time.sleep(0.25)
    s.sendto(b"WATCHDOG=1", os.environ["NOTIFY_SOCKET"])
time.sleep(1000)
`,
    );
    const config = writeConfig(
      dir,
      `servers:
  - name: watched
    binary: ${PYTHON}
    args: [${script}, ${path.join(dir, "runs")}]
    readiness: sd_notify
    watchdog: 1s
    stopTimeout: 1s
    restart: {mode: on-failure, initialDelay: 100ms}
`,
    );
    const init = startAsPid1(["--log-format", "json", "-c", config]);
    try {
      await waitUntil(() => records(init, "watched", "exited").length >= 2, "two aborted runs", 30_000);
      await waitUntil(() => records(init, "watched", "restarting").length >= 2, "two restarts", 10_000);
      expect(init.stdout()).toContain("watched | env 1000000 True");
      const aborts = records(init, "watched", "watchdog");
      expect(aborts.map((r) => r.msg)).toEqual(["no WATCHDOG=1 within 1000 ms: aborting it (SIGABRT)", "no WATCHDOG=1 within 1000 ms: aborting it (SIGABRT)"]);
      const exits = records(init, "watched", "exited");
      // The first run dies of its SIGABRT; the second ignores it and is SIGKILLed a stop timeout later.
      expect(exits.map((r) => [r.signal, r.reason])).toEqual([
        ["SIGABRT", "watchdog"],
        ["SIGKILL", "stop-timeout"],
      ]);
      expect(records(init, "watched", "restarting").length).toBeGreaterThanOrEqual(2);
      expect(records(init, "watched", "restarting")[0].reason).toBe("watchdog");
      // Four keep-alives 250 ms apart, then a period of silence: the abort comes after about 2 s, not before.
      const readyAt = Number(records(init, "watched", "ready")[0].time);
      expect(Number(aborts[0].time) - readyAt).toBeGreaterThanOrEqual(1900);
      expect(await stopInit(init)).toBe(0);
    } finally {
      init.unshare.kill("SIGKILL");
    }
  });
});
