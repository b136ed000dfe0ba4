// The server machine's runs in a cgroup (a run is over when its main process has ended and its cgroup is
// empty), `type: forking` daemons (a launcher, then a main process the runtime finds), OOM kills as an
// exit reason, and the watchdog's keep-alives (a machine beside the table, like liveness pings).

import { describe, expect, it } from "vitest";
import { createServer, step, type Server, type ServerEvent } from "../../../init/core/server";
import type { ServerSpec } from "../../../init/core/types";
import { policy, run, spec } from "./fixtures";

const CGROUP = "/sys/fs/cgroup/servers/d";

const plain = (overrides: Partial<ServerSpec> = {}) => spec("d", { readiness: { kind: "none" }, ...overrides });

function readyIn(cgroup: string | null, overrides: Partial<ServerSpec> = {}): Server {
  return run(createServer(plain(overrides)), [
    { type: "start", now: 0 },
    { type: "spawned", now: 0, pid: 100, cgroup },
  ]).server;
}

const timer = (server: Server, name: keyof Server["timers"], now: number): ServerEvent => ({ type: "timer", now, timer: name, id: server.timers[name]! });

describe("a run in a cgroup", () => {
  it("is signalled and killed as a whole: the stop signal, then SIGKILL to every process of the cgroup", () => {
    let { server, effects } = run(readyIn(CGROUP), [{ type: "stop", now: 1000 }]);
    expect(effects).toEqual(["cancel stable", "log stopping", "signal-cgroup 15", "arm stop-timeout@6000"]);
    ({ server, effects } = run(server, [timer(server, "stop-timeout", 6000)]));
    expect(effects).toEqual(["log stop-timeout", "signal-cgroup 9", "arm stop-timeout@11000"]);
    // The main process ends; one of its children lingers a moment more: not stopped until the cgroup is empty.
    ({ server } = run(server, [{ type: "exited", now: 6001, pid: 100, code: null, signal: 9 }]));
    expect([server.state, server.pid, server.populated]).toEqual(["stopping", null, true]);
    ({ server, effects } = run(server, [{ type: "cgroup-empty", now: 6002 }]));
    expect([server.state, server.reason, effects]).toEqual(["stopped", "stop-timeout", ["cancel stop-timeout", "log stopped"]]);
  });

  it("whatever comes first, the main process's exit or the empty cgroup, the run ends with the later one", () => {
    const { server, ignored } = run(readyIn(CGROUP), [
      { type: "stop", now: 1000 },
      { type: "cgroup-empty", now: 1001 },
      { type: "exited", now: 1002, pid: 100, code: null, signal: 15 },
    ]);
    expect(ignored).toEqual([null, null, null]);
    expect([server.state, server.reason, server.populated]).toEqual(["stopped", "stop-requested", false]);
  });

  it("a main process that ends by itself leaves its cgroup's processes to be stopped; the restart waits for them", () => {
    let { server, effects } = run(readyIn(CGROUP), [{ type: "exited", now: 1000, pid: 100, code: 1, signal: null }]);
    expect(effects).toEqual(["log exited", "cancel stable", "log remains", "signal-cgroup 15", "arm stop-timeout@6000"]);
    expect([server.state, server.desired, server.reason]).toEqual(["stopping", "up", "exited"]);
    ({ server, effects } = run(server, [{ type: "cgroup-empty", now: 1500 }]));
    expect([server.state, server.reason, server.lastExit?.code]).toEqual(["backoff", "exited", 1]);
    expect(effects).toEqual(["cancel stop-timeout", "arm backoff@2500", "log restarting"]);
  });

  it("a stop asked while the leftovers are stopped cancels the restart", () => {
    const { server } = run(readyIn(CGROUP), [
      { type: "exited", now: 1000, pid: 100, code: 1, signal: null },
      { type: "stop", now: 1100 },
      { type: "cgroup-empty", now: 1200 },
    ]);
    expect([server.state, server.desired]).toEqual(["stopped", "down"]);
  });

  it("processes that survive SIGKILL are given up a stop timeout later: failed (kill-timeout), still marked populated", () => {
    let { server } = run(readyIn(CGROUP), [{ type: "exited", now: 1000, pid: 100, code: 0, signal: null }]);
    ({ server } = run(server, [timer(server, "stop-timeout", 6000)]));
    const { server: after, effects } = run(server, [timer(server, "stop-timeout", 11000)]);
    expect(effects).toEqual(["log kill-timeout", "log failed"]);
    expect([after.state, after.reason, after.populated]).toEqual(["failed", "kill-timeout", true]);
    // Its cgroup emptying later is noted, nothing more.
    expect(run(after, [{ type: "cgroup-empty", now: 12_000 }]).server.populated).toBe(false);
  });

  it("without a cgroup the process group is signalled, and the exit ends the run, as before", () => {
    const { server, effects } = run(readyIn(null), [
      { type: "stop", now: 1000 },
      { type: "exited", now: 1100, pid: 100, code: null, signal: 15 },
    ]);
    expect(effects).toContain("signal 15 100");
    expect(server.state).toBe("stopped");
    expect(run(server, [{ type: "cgroup-empty", now: 1200 }]).ignored).toEqual(["no process left in a cgroup"]);
  });
});

describe("an OOM kill", () => {
  it("is the exit's reason and a failure the restart policy judges", () => {
    const { server, effects } = run(readyIn(CGROUP), [
      { type: "exited", now: 1000, pid: 100, code: null, signal: 9, oomKilled: true },
      { type: "cgroup-empty", now: 1000 },
    ]);
    expect(server.lastExit).toMatchObject({ signal: 9, reason: "oom-killed" });
    expect([server.state, server.reason]).toEqual(["backoff", "oom-killed"]);
    expect(effects).toContain("log restarting");
  });

  it("is not claimed for a process that exited with a code", () => {
    const { server } = run(readyIn(null), [{ type: "exited", now: 1000, pid: 100, code: 1, signal: null, oomKilled: true }]);
    expect(server.lastExit?.reason).toBe("exited");
  });
});

describe("type: forking", () => {
  const forking = (overrides: Partial<ServerSpec> = {}) => plain({ type: "forking", ...overrides });
  const launched = (cgroup: string | null, overrides: Partial<ServerSpec> = {}) =>
    run(createServer(forking(overrides)), [
      { type: "start", now: 0 },
      { type: "spawned", now: 0, pid: 100, cgroup },
    ]);

  it("the launcher's exit 0 is the start of the search for its daemon; the daemon found is the server", () => {
    let { server, effects } = launched(CGROUP, { pidFile: "/run/d.pid" });
    expect([server.state, server.daemon, effects]).toEqual(["starting", "launching", ["log starting", "spawn", "arm start-timeout@30000", "log started"]]);
    ({ server, effects } = run(server, [{ type: "exited", now: 50, pid: 100, code: 0, signal: null }]));
    expect([server.state, server.pid, server.daemon, effects]).toEqual(["starting", null, "seeking", ["log main-pid", "find-main-pid cgroup pidFile"]]);
    ({ server, effects } = run(server, [{ type: "main-pid", now: 60, pid: 150 }]));
    // readiness none: ready once the daemon is known.
    expect([server.state, server.pid, server.daemon]).toEqual(["ready", 150, "found"]);
    expect(effects).toEqual(["log main-pid", "cancel start-timeout", "arm stable@10060", "log ready"]);
  });

  it("a probe starts only once the daemon is found, for the daemon", () => {
    let { server, effects } = launched(CGROUP, { readiness: { kind: "tcp", host: "127.0.0.1", port: 873, intervalMs: 100 } });
    expect(effects).not.toContain("probe 100");
    ({ server, effects } = run(server, [
      { type: "exited", now: 50, pid: 100, code: 0, signal: null },
      { type: "main-pid", now: 60, pid: 150 },
    ]));
    expect(effects.slice(-1)).toEqual(["probe 150"]);
    expect(run(server, [{ type: "ready", now: 70 }]).server.state).toBe("ready");
  });

  it("the daemon's end (its exit, its cgroup empty) is a crash judged by the restart policy", () => {
    const found = run(launched(CGROUP).server, [
      { type: "exited", now: 50, pid: 100, code: 0, signal: null },
      { type: "main-pid", now: 60, pid: 150 },
    ]).server;
    const { server } = run(found, [
      { type: "exited", now: 5000, pid: 150, code: null, signal: 11 },
      { type: "cgroup-empty", now: 5000 },
    ]);
    expect([server.state, server.reason, server.lastExit?.signal]).toEqual(["backoff", "killed-by-signal", 11]);
  });

  it("a launcher that fails is a failed start; with processes left, they are stopped first", () => {
    const { server, effects } = run(launched(CGROUP).server, [{ type: "exited", now: 50, pid: 100, code: 2, signal: null }]);
    expect(effects).toContain("signal-cgroup 15");
    expect(run(server, [{ type: "cgroup-empty", now: 60 }]).server).toMatchObject({ state: "backoff", reason: "exited" });
  });

  it("no daemon found: with processes in its cgroup they are stopped and the start fails as no-main-process", () => {
    const seeking = run(launched(CGROUP).server, [{ type: "exited", now: 50, pid: 100, code: 0, signal: null }]).server;
    const stopping = run(seeking, [{ type: "main-pid", now: 60, pid: null, error: "2 processes, none a child of the init" }]);
    expect(stopping.effects).toEqual(["log main-pid", "cancel start-timeout", "signal-cgroup 15", "arm stop-timeout@5060"]);
    const { server } = run(stopping.server, [{ type: "cgroup-empty", now: 70 }]);
    expect([server.state, server.reason, server.lastExit?.reason]).toEqual(["backoff", "no-main-process", "no-main-process"]);
  });

  it("no daemon found and nothing left: judged at once; a daemon never found is given up at the start timeout", () => {
    const seeking = run(launched(null, { restart: { ...policy, mode: "never" } }).server, [
      { type: "exited", now: 50, pid: 100, code: 0, signal: null },
    ]).server;
    expect(run(seeking, [{ type: "main-pid", now: 60, pid: null, error: "no pidFile and no cgroup" }]).server).toMatchObject({
      state: "failed",
      reason: "no-main-process",
    });
    const { server, effects } = run(seeking, [timer(seeking, "start-timeout", 30_000)]);
    expect([server.state, server.reason, effects]).toEqual(["failed", "start-timeout", ["log start-timeout", "log failed"]]);
  });
});

describe("the watchdog (WATCHDOG=1 keep-alives)", () => {
  const watched = (overrides: Partial<ServerSpec> = {}) => readyIn(null, { watchdogMs: 10_000, ...overrides });

  it("starts when the server is ready: a period after ready, or after the last keep-alive, it looks again", () => {
    let server = watched();
    expect(server.watchdog).toEqual({ lastAt: 0, pets: 0 });
    let effects: string[];
    ({ server, effects } = run(server, [
      { type: "keep-alive", now: 4000 },
      { type: "keep-alive", now: 8000 },
    ]));
    // Keep-alives change no timer: they only move the period's start.
    expect([effects, server.watchdog]).toEqual([[], { lastAt: 8000, pets: 2 }]);
    ({ server, effects } = run(server, [timer(server, "watchdog", 10_000)]));
    expect([server.state, effects]).toEqual(["ready", ["arm watchdog@18000"]]);
  });

  it("a missed period aborts it (SIGABRT), KILL follows a stop timeout later, and the restart policy judges it as watchdog", () => {
    let server = watched();
    let effects: string[];
    ({ server, effects } = run(server, [timer(server, "watchdog", 10_000)]));
    expect([server.state, server.reason, effects]).toEqual([
      "stopping",
      "watchdog",
      ["cancel stable", "log watchdog", "signal 6 100", "arm stop-timeout@15000"],
    ]);
    ({ server, effects } = run(server, [timer(server, "stop-timeout", 15_000)]));
    expect(effects).toEqual(["log stop-timeout", "kill 100", "arm stop-timeout@20000"]);
    ({ server } = run(server, [{ type: "exited", now: 15_001, pid: 100, code: null, signal: 9 }]));
    expect([server.state, server.reason]).toEqual(["backoff", "watchdog"]);
  });

  it("an abort that ends the server before KILL is judged as watchdog too", () => {
    let server = watched();
    ({ server } = run(server, [timer(server, "watchdog", 10_000), { type: "exited", now: 10_100, pid: 100, code: null, signal: 6 }]));
    expect([server.state, server.reason, server.lastExit?.signal]).toEqual(["backoff", "watchdog", 6]);
  });

  it("WATCHDOG=trigger aborts it at once", () => {
    const { server, effects } = run(watched(), [{ type: "keep-alive", now: 100, trigger: true }]);
    expect([server.state, server.reason]).toEqual(["stopping", "watchdog"]);
    expect(effects).toContain("signal 6 100");
  });

  it("keep-alives count only while ready with a watchdog", () => {
    const starting = run(createServer(spec("d", { watchdogMs: 10_000 })), [
      { type: "start", now: 0 },
      { type: "spawned", now: 0, pid: 100 },
    ]).server;
    expect(step(starting, { type: "keep-alive", now: 10 }).ignored).toBe("no watchdog running");
    expect(step(readyIn(null), { type: "keep-alive", now: 10 }).ignored).toBe("no watchdog running");
    const stopping = run(watched(), [{ type: "stop", now: 10 }]).server;
    expect(stopping.watchdog).toBeNull();
    expect(step(stopping, { type: "keep-alive", now: 20, trigger: true }).ignored).toBe("no watchdog running");
  });
});
