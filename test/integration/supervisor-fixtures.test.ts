// The supervisor with small fixture programs, for what Tango servers do not exercise: crash loops,
// stubborn servers, floods, every readiness probe, start timeouts, and a storm of short-lived
// children while orphans storm too.

import { describe, expect, it } from "vitest";
import fs from "node:fs";
import path from "node:path";
import { logRecords, startAsPid1, tempDir, waitUntil, type Pid1Process } from "./helpers";
import { PYTHON } from "./tango";

function writeConfig(dir: string, body: string): string {
  const file = path.join(dir, "config.yaml");
  fs.writeFileSync(file, `settings:\n  controlSocket: ${path.join(dir, "control.sock")}\n${body}`);
  return file;
}

function records(init: Pid1Process, server?: string, kind?: string) {
  return logRecords(init.stderr()).filter((r) => (server === undefined || r.server === server) && (kind === undefined || r.kind === kind));
}

async function stop(init: Pid1Process): Promise<number | null> {
  await init.signal("SIGTERM");
  return (await init.result).code;
}

describe("restart policy", () => {
  it("backs a crash loop off exponentially, then marks it failed at the burst limit; others unaffected", async () => {
    const dir = tempDir("crashloop");
    const config = writeConfig(
      dir,
      `servers:
  - name: crasher
    binary: /bin/sh
    args: [-c, "sleep 0.05; exit 3"]
    restart: {mode: on-failure, initialDelay: 100ms, factor: 2, maxDelay: 1s, burst: {count: 4, window: 30s}}
  - name: steady
    binary: /bin/sleep
    args: ["1000"]
`,
    );
    const init = startAsPid1(["--log-format", "json", "-c", config]);
    try {
      await init.waitFor('"server":"crasher","kind":"failed"', 20_000);
      const delays = records(init, "crasher", "restarting").map((r) => String(r.msg));
      expect(delays).toEqual(["restarting in 100 ms", "restarting in 200 ms", "restarting in 400 ms"]);
      expect(records(init, "crasher", "started")).toHaveLength(4);
      const failed = records(init, "crasher", "failed")[0];
      expect(failed.reason).toBe("burst-limit");
      expect(records(init, "crasher", "exited").every((r) => r.code === 3)).toBe(true);
      expect(records(init, "steady", "started")).toHaveLength(1);
      expect(records(init, "steady", "exited")).toHaveLength(0);
      expect(await stop(init)).toBe(0);
    } finally {
      init.unshare.kill("SIGKILL");
    }
  });
});

describe("stopping", () => {
  it("SIGKILLs a server that ignores TERM after its stop timeout", async () => {
    const dir = tempDir("stubborn");
    const config = writeConfig(
      dir,
      `servers:
  - name: stubborn
    binary: /bin/sh
    args: [-c, "trap '' TERM; echo up; while :; do sleep 0.1; done"]
    readiness: "log:up"
    stopTimeout: 1s
`,
    );
    const init = startAsPid1(["--log-format", "json", "-c", config]);
    try {
      await init.waitFor('"kind":"boot-complete"');
      const started = Date.now();
      expect(await stop(init)).toBe(0);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
      expect(records(init, "stubborn", "stop-timeout")).toHaveLength(1);
      expect(records(init, "stubborn", "exited")[0].signal).toBe("SIGKILL");
    } finally {
      init.unshare.kill("SIGKILL");
    }
  });
});

describe("output", () => {
  it("never blocks a server that floods stdout, and rotates its log by size", async () => {
    const dir = tempDir("flood");
    const logFile = path.join(dir, "logs", "flood.log");
    // 40 MB of output, then a line that makes it ready: it is only ready if nothing blocked it.
    const config = writeConfig(
      dir,
      `servers:
  - name: flood
    binary: /bin/sh
    args: [-c, "yes 0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz | head -c 40000000; echo flood-done; exec sleep 1000"]
    readiness: "log:flood-done"
    startTimeout: 60s
    log: {file: ${logFile}, maxSize: 1MiB, keep: 3, console: false}
`,
    );
    const init = startAsPid1(["--log-format", "json", "-c", config]);
    try {
      await init.waitFor('"server":"flood","kind":"ready"', 60_000);
      const files = fs.readdirSync(path.dirname(logFile)).sort();
      expect(files).toEqual(["flood.log", "flood.log.1", "flood.log.2", "flood.log.3"]);
      for (const file of files) expect(fs.statSync(path.join(path.dirname(logFile), file)).size).toBeLessThanOrEqual(1024 * 1024);
      // Lines are whole: every line of a rotated file is a timestamp and the full 73-byte pattern.
      const lines = fs.readFileSync(`${logFile}.1`, "utf8").trim().split("\n");
      expect(lines.every((line) => /^\S+ 0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz$/.test(line))).toBe(true);
      expect(fs.readFileSync(logFile, "utf8")).toContain("flood-done");
      expect(await stop(init)).toBe(0);
    } finally {
      init.unshare.kill("SIGKILL");
    }
  }, 90_000);

  it("mirrors lines to the console with the server's name, whole, and cuts overlong lines", async () => {
    const dir = tempDir("mirror");
    const config = writeConfig(
      dir,
      `servers:
  - name: talker-one
    binary: /bin/sh
    args: [-c, "i=0; while [ $i -lt 200 ]; do echo one-$i; i=$((i+1)); done; head -c 3000 /dev/zero | tr '\\\\0' x; echo; echo talked; exec sleep 1000"]
    readiness: "log:talked"
    log: {file: false, console: true, maxLine: 1000}
  - name: talker-two
    binary: /bin/sh
    args: [-c, "i=0; while [ $i -lt 200 ]; do echo two-$i; i=$((i+1)); done; echo talked; exec sleep 1000"]
    readiness: "log:talked"
    log: {file: false, console: true}
`,
    );
    const init = startAsPid1(["--log-format", "json", "-c", config]);
    try {
      // Server lines go to stdout and the init's own log to stderr: two pipes read apart, so wait
      // for each server's last line on stdout itself rather than for the log's boot-complete.
      await init.waitFor('"kind":"boot-complete"');
      await init.waitFor("talker-one | talked");
      await init.waitFor("talker-two | talked");
      const lines = init.stdout().split("\n");
      const mine = lines.filter((line) => line.startsWith("talker-"));
      expect(mine.filter((line) => /^talker-one \| one-\d+$/.test(line))).toHaveLength(200);
      expect(mine.filter((line) => /^talker-two \| two-\d+$/.test(line))).toHaveLength(200);
      const cut = mine.find((line) => line.startsWith("talker-one | xxx"))!;
      expect(cut).toBe(`talker-one | ${"x".repeat(1000)} …[line cut]`);
      // Nothing else: no line mixes two servers.
      expect(mine.every((line) => /^talker-(one|two) \| /.test(line) && !/(one|two)-\d+(one|two)-/.test(line))).toBe(true);
      expect(await stop(init)).toBe(0);
    } finally {
      init.unshare.kill("SIGKILL");
    }
  });
});

describe("readiness probes", () => {
  it("notify fd, sd_notify, tcp and file probes each make their server ready; a start timeout fails one", async () => {
    const dir = tempDir("probes");
    const marker = path.join(dir, "file-probe.ready");
    const sdNotify =
      "import socket, os, time; time.sleep(0.3); s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.connect(os.environ['NOTIFY_SOCKET']); s.send(b'STATUS=warming' + bytes([10]) + b'READY=1' + bytes([10])); time.sleep(1000)";
    const config = writeConfig(
      dir,
      `servers:
  - name: by-notify
    binary: /bin/sh
    args: [-c, "sleep 0.3; echo >&3; exec sleep 1000"]
    readiness: "notify:3"
  - name: by-sd-notify
    binary: ${PYTHON}
    args: [-c, "${sdNotify}"]
    readiness: sd_notify
  - name: by-tcp
    binary: ${PYTHON}
    args: [-c, "import socket, time; time.sleep(0.3); s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', 24377)); s.listen(); time.sleep(1000)"]
    readiness: {tcp: "127.0.0.1:24377", interval: 50ms}
  - name: by-file
    binary: /bin/sh
    args: [-c, "sleep 0.3; touch ${marker}; exec sleep 1000"]
    readiness: {file: ${marker}, interval: 50ms}
  - name: never-ready
    binary: /bin/sleep
    args: ["1000"]
    readiness: "log:this line never comes"
    startTimeout: 700ms
    restart: never
`,
    );
    const init = startAsPid1(["--log-format", "json", "-c", config]);
    try {
      await init.waitFor('"kind":"boot-complete"', 20_000);
      for (const name of ["by-notify", "by-sd-notify", "by-tcp", "by-file"]) {
        const ready = records(init, name, "ready");
        expect(ready, name).toHaveLength(1);
        // Each one signals after 0.3 s: ready earlier would mean the probe did not wait for it.
        expect(Number(ready[0].readyMs), name).toBeGreaterThanOrEqual(250);
      }
      // No bug logged: the sd_notify socket is closed by the READY=1 that ends its probe, and nothing is read from it after.
      expect(logRecords(init.stderr()).filter((r) => Number(r.level) >= 60)).toEqual([]);
      expect(records(init, "never-ready", "start-timeout")).toHaveLength(1);
      expect(records(init, "never-ready", "ready")).toHaveLength(0);
      await waitUntil(() => records(init, "never-ready", "failed").length === 1, "never-ready failed");
      expect(await stop(init)).toBe(0);
    } finally {
      init.unshare.kill("SIGKILL");
    }
  });
});

describe("the reaper under load", () => {
  it("reports the true exit code of 200 supervised children while 2000 orphans storm", async () => {
    const dir = tempDir("storm");
    const servers = Array.from(
      { length: 200 },
      (_, i) => `  - name: child-${i}
    binary: /bin/sh
    args: [-c, "sleep 0.$((${i} % 7)); exit ${i % 256}"]
    restart: never`,
    );
    const storm = `  - name: orphan-storm
    binary: /bin/sh
    args: [-c, "i=0; while [ $i -lt 2000 ]; do (sleep 0.01 &) ; i=$((i+1)); done; exec sleep 1000"]
    restart: never`;
    const config = writeConfig(dir, `  defaults:\n    log: {console: false}\nservers:\n${storm}\n${servers.join("\n")}\n`);
    const init = startAsPid1(["--log-format", "json", "-c", config]);
    try {
      await waitUntil(() => records(init, undefined, "exited").length >= 200, "200 children exited", 60_000);
      for (let i = 0; i < 200; i++) {
        const exited = records(init, `child-${i}`, "exited");
        expect(exited, `child-${i}`).toHaveLength(1);
        expect(exited[0].code, `child-${i}`).toBe(i % 256);
      }
      // Let the storm finish, then count zombies in the namespace.
      const initPid = await init.initPid();
      await waitUntil(() => zombiesUnder(initPid) === 0, "no zombies", 20_000);
      expect(await stop(init)).toBe(0);
    } finally {
      init.unshare.kill("SIGKILL");
    }
  }, 120_000);
});

/** Zombie processes among the descendants of pid (host view). */
function zombiesUnder(root: number): number {
  const childrenOf = new Map<number, number[]>();
  const state = new Map<number, string>();
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      state.set(Number(entry), fields[0]);
      const ppid = Number(fields[1]);
      childrenOf.set(ppid, [...(childrenOf.get(ppid) ?? []), Number(entry)]);
    } catch {
      // Gone.
    }
  }
  let zombies = 0;
  const frontier = [root];
  while (frontier.length) {
    for (const pid of childrenOf.get(frontier.pop()!) ?? []) {
      if (state.get(pid) === "Z") zombies++;
      frontier.push(pid);
    }
  }
  return zombies;
}

describe("hooks and plan", () => {
  it("runs preStart before the server and postStop after it, with the exit facts in its environment", async () => {
    const dir = tempDir("hooks");
    const trace = path.join(dir, "trace");
    const config = writeConfig(
      dir,
      `servers:
  - name: hooked
    binary: /bin/sh
    args: [-c, "echo server >> ${trace}; echo up; exec sleep 1000"]
    readiness: "log:up"
    preStart: [/bin/sh, -c, "echo pre >> ${trace}"]
    postStop: [/bin/sh, -c, "echo post $SERVER_NAME status=$EXIT_STATUS signal=$EXIT_SIGNAL >> ${trace}"]
`,
    );
    const init = startAsPid1(["--log-format", "json", "-c", config]);
    try {
      await init.waitFor('"kind":"boot-complete"');
      expect(await stop(init)).toBe(0);
      await waitUntil(() => fs.existsSync(trace) && fs.readFileSync(trace, "utf8").includes("post"), "postStop ran", 5000).catch(() => {});
      expect(fs.readFileSync(trace, "utf8").trim().split("\n")).toEqual(["pre", "server", "post hooked status= signal=SIGTERM"]);
    } finally {
      init.unshare.kill("SIGKILL");
    }
  });

  it("a failing preStart keeps the server from starting", async () => {
    const dir = tempDir("hooks-fail");
    const config = writeConfig(
      dir,
      `servers:
  - name: guarded
    binary: /bin/sleep
    args: ["1000"]
    preStart: [/bin/sh, -c, "exit 4"]
    restart: never
`,
    );
    const init = startAsPid1(["--log-format", "json", "-c", config]);
    try {
      await init.waitFor('"server":"guarded","kind":"failed"');
      expect(records(init, "guarded", "pre-start-failed")[0]).toMatchObject({ code: 4, reason: "pre-start-failed" });
      expect(records(init, "guarded", "failed")[0]).toMatchObject({ reason: "pre-start-failed" });
      expect(records(init, "guarded", "started")).toHaveLength(0);
      expect(await stop(init)).toBe(0);
    } finally {
      init.unshare.kill("SIGKILL");
    }
  });
});
