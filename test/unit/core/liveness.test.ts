// Liveness: the Starter's ping of a ready server's admin device, as a machine beside the server's own
// (core/liveness.ts, and the ping events server.ts handles before its table).

import { describe, expect, it } from "vitest";
import { recordPing, startLiveness } from "../../../init/core/liveness";
import { createServer, starterStateOf, step, type Server, type ServerEvent } from "../../../init/core/server";
import type { LivenessSpec } from "../../../init/core/types";
import { run, spec } from "./fixtures";

const liveness: LivenessSpec = { intervalMs: 2000, timeoutMs: 1000, failures: 2, onUnresponsive: "report", target: { via: "database" } };

function ready(onUnresponsive: LivenessSpec["onUnresponsive"] = "report", pid = 100): Server {
  return run(createServer(spec("TangoTest/t1", { liveness: { ...liveness, onUnresponsive } })), [
    { type: "start", now: 0 },
    { type: "spawned", now: 0, pid },
    { type: "ready", now: 50 },
  ]).server;
}

const ok = (now: number, rttMs = 0.4, pid = 100): ServerEvent => ({ type: "ping", now, pid, rttMs });
const fail = (now: number, pid = 100): ServerEvent => ({ type: "ping", now, pid, rttMs: null, error: "TIMEOUT: no reply within 1000 ms" });

describe("counting pings (core/liveness.ts)", () => {
  it("N failures in a row make it unresponsive; one answer makes it responsive again", () => {
    let state = startLiveness(0);
    const changes: (string | null)[] = [];
    for (const [now, outcome] of [
      [1, { ok: true, rttMs: 0.3 }],
      [2, { ok: false, error: "x" }],
      [3, { ok: true, rttMs: 0.5 }],
      [4, { ok: false, error: "y" }],
      [5, { ok: false, error: "z" }],
      [6, { ok: false, error: "z" }],
      [7, { ok: true, rttMs: 0.2 }],
    ] as const) {
      const next = recordPing(state, { failures: 2 }, now, outcome);
      state = next.liveness;
      changes.push(next.change);
    }
    expect(changes).toEqual([null, null, null, null, "unresponsive", null, "responsive"]);
    expect(state).toEqual({ state: "responsive", failures: 0, since: 7, lastPingAt: 7, lastRttMs: 0.2, lastError: null, answered: 3, failed: 4 });
  });
});

describe("a ready server's pings", () => {
  it("ready starts the check for its process; leaving ready stops it", () => {
    const { effects } = run(createServer(spec("TangoTest/t1", { liveness })), [
      { type: "start", now: 0 },
      { type: "spawned", now: 0, pid: 100 },
      { type: "ready", now: 50 },
      { type: "stop", now: 60 },
    ]);
    expect(effects).toEqual([
      "log starting",
      "spawn",
      "arm start-timeout@30000",
      "log started",
      "probe 100",
      "cancel start-timeout",
      "arm stable@10050",
      "log ready",
      "liveness 100",
      "cancel stable",
      "stop-liveness",
      "log stopping",
      "signal 15 100",
      "arm stop-timeout@5060",
    ]);
    expect(
      run(createServer(spec("TangoTest/t1")), [
        { type: "start", now: 0 },
        { type: "spawned", now: 0, pid: 1 },
        { type: "ready", now: 5 },
      ]).effects,
    ).not.toContain("liveness 1");
  });

  it("answered pings keep it ON with the last round trip; two failures make it unresponsive (MOVING) and say so", () => {
    const { server, effects, ignored } = run(ready(), [ok(2050, 0.42), fail(4050), fail(6050)]);
    expect(ignored).toEqual([null, null, null]);
    expect(server.state).toBe("ready");
    expect(server.liveness).toMatchObject({ state: "unresponsive", failures: 2, lastRttMs: 0.42, lastError: "TIMEOUT: no reply within 1000 ms" });
    expect(starterStateOf(server)).toBe("MOVING");
    expect(effects).toEqual(["log unresponsive"]);
    const said = step(run(ready(), [fail(4050)]).server, fail(6050)).effects[0];
    expect(said).toMatchObject({ level: "warn", message: "unresponsive (MOVING): 2 ping(s) in a row failed: TIMEOUT: no reply within 1000 ms" });
    const back = run(server, [ok(8050, 0.5)]);
    expect(back.server.liveness?.state).toBe("responsive");
    expect(starterStateOf(back.server)).toBe("ON");
    expect(back.effects).toEqual(["log responsive"]);
    expect(step(server, ok(8050, 0.5)).effects[0]).toMatchObject({ level: "info", message: "answers ping again (0.50 ms)" });
  });

  it("onUnresponsive restart: SIGABRT, SIGKILL after the stop timeout, then the restart policy judges it", () => {
    const { server, effects } = run(ready("restart"), [fail(2050), fail(4050)]);
    expect(server).toMatchObject({ state: "stopping", reason: "unresponsive", failure: "unresponsive", desired: "up", liveness: null });
    expect(effects.filter((e) => !e.startsWith("log"))).toEqual(["cancel stable", "stop-liveness", "signal 6 100", "arm stop-timeout@9050"]);
    const killed = run(server, [{ type: "timer", now: 9050, timer: "stop-timeout", id: server.timers["stop-timeout"]! }]);
    // SIGKILL, and a deadline for the kill itself (a process stuck in the kernel is reported, not waited for).
    expect(killed.effects.filter((e) => !e.startsWith("log"))).toEqual(["kill 100", "arm stop-timeout@14050"]);
    const exited = run(killed.server, [{ type: "exited", now: 9060, pid: 100, code: null, signal: 9 }]);
    expect(exited.server).toMatchObject({ state: "backoff", reason: "unresponsive" });
    expect(exited.effects.filter((e) => !e.startsWith("log"))).toEqual(["cancel stop-timeout", "arm backoff@10060"]);
  });

  it("a ping of another process, or of a server not ready, changes nothing", () => {
    expect(run(ready(), [ok(2050, 0.4, 999)]).ignored).toEqual(["no liveness check of this process"]);
    const starting = run(createServer(spec("TangoTest/t1", { liveness })), [{ type: "start", now: 0 }, { type: "spawned", now: 0, pid: 100 }, ok(10)]);
    expect(starting.ignored.at(-1)).toBe("no liveness check of this process");
    const stopped = ready("report");
    const gone = run(stopped, [{ type: "exited", now: 100, pid: 100, code: 1, signal: null }, fail(200)]);
    expect(gone.server.liveness).toBeNull();
    expect(gone.ignored.at(-1)).toBe("no liveness check of this process");
    expect(gone.effects).toContain("stop-liveness");
  });
});
