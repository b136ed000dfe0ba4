// Sequences through the server machine: the facts it records and the paths that span several cells.

import { describe, expect, it } from "vitest";
import { createServer, starterState, step, type Server, type ServerEvent } from "../../../init/core/server";
import type { ServerSpec } from "../../../init/core/types";
import { effectText, policy, run, spec } from "./fixtures";

function timerId(server: Server, timer: keyof Server["timers"]): number {
  const id = server.timers[timer];
  if (id === undefined) throw new Error(`${timer} not armed`);
  return id;
}

function started(s: ServerSpec, now = 1000, pid = 100): Server {
  return run(createServer(s), [
    { type: "start", now },
    { type: "spawned", now, pid },
  ]).server;
}

function readyServer(s: ServerSpec, now = 1000, pid = 100, readyAt = now + 50): Server {
  return step(started(s, now, pid), { type: "ready", now: readyAt }).server;
}

describe("facts the CLI shows", () => {
  it("records pid, start, time to ready, and the last exit", () => {
    let server = readyServer(spec("a", { postStop: ["/bin/cleanup"] }), 1000, 4242, 1087);
    expect([server.pid, server.startedAt, server.readyAt, server.readyAt! - server.startedAt!]).toEqual([4242, 1000, 1087, 87]);
    const result = run(server, [
      { type: "stop", now: 5000 },
      { type: "exited", now: 6800, pid: 4242, code: null, signal: 15 },
      { type: "hook-spawned", now: 6800, pid: 4300 },
      { type: "hook-exited", now: 6900, pid: 4300, code: 0, signal: null },
    ]);
    server = result.server;
    expect(server.state).toBe("stopped");
    expect(server.pid).toBeNull();
    expect(server.lastExit).toEqual({ at: 6800, code: null, signal: 15, errno: null, reason: "stop-requested", uptimeMs: 5800 });
    expect(result.effects).toContain("run-post-stop -/15");
    expect(server.since).toBe(6900);
  });

  it("logs readable lines", () => {
    let server = createServer(spec("a"));
    const lines: string[] = [];
    for (const event of [
      { type: "start", now: 0 },
      { type: "spawned", now: 0, pid: 7 },
      { type: "ready", now: 48 },
      { type: "exited", now: 1000, pid: 7, code: 3, signal: null },
    ] satisfies ServerEvent[]) {
      const result = step(server, event);
      server = result.server;
      lines.push(...result.effects.flatMap((e) => (e.type === "log" ? [e.message] : [])));
    }
    expect(lines).toEqual(["starting", "started pid 7", "ready in 48 ms", "exited with code 3 after 1000 ms", "restarting in 1000 ms"]);
  });

  it("maps each state to the Starter's word", () => {
    expect((["stopped", "starting", "ready", "stopping", "backoff", "failed"] as const).map((s) => [s, starterState(s)])).toEqual([
      ["stopped", "FAULT"],
      ["starting", "MOVING"],
      ["ready", "ON"],
      ["stopping", "MOVING"],
      ["backoff", "FAULT"],
      ["failed", "FAULT"],
    ]);
  });
});

describe("readiness", () => {
  it("a server without a probe is ready when the spawn succeeds", () => {
    const result = run(createServer(spec("a", { readiness: { kind: "none" } })), [
      { type: "start", now: 10 },
      { type: "spawned", now: 12, pid: 5 },
    ]);
    expect(result.server.state).toBe("ready");
    expect(result.server.readyAt).toBe(12);
    expect(result.effects).not.toContain("probe 5");
  });

  it("a probe is started with the spawned pid and its kind", () => {
    const s = spec("a", { readiness: { kind: "tcp", host: "127.0.0.1", port: 10000, intervalMs: 100 } });
    const result = step(step(createServer(s), { type: "start", now: 0 }).server, { type: "spawned", now: 1, pid: 9 });
    expect(result.effects).toContainEqual({ type: "start-probe", server: "a", pid: 9, probe: s.readiness });
  });

  it("start timeout: stop signal, then judged as a failure when it exits", () => {
    let server = started(spec("a"), 0, 100);
    const result = run(server, [
      { type: "timer", now: 30_000, timer: "start-timeout", id: timerId(server, "start-timeout") },
      { type: "exited", now: 30_400, pid: 100, code: null, signal: 15 },
    ]);
    server = result.server;
    expect(server.state).toBe("backoff");
    expect(server.reason).toBe("start-timeout");
    expect(server.lastExit?.reason).toBe("start-timeout");
    expect(result.effects).toEqual([
      "log start-timeout",
      "stop-probe",
      "signal 15 100",
      "arm stop-timeout@35000",
      "log exited",
      "cancel stop-timeout",
      "arm backoff@31400",
      "log restarting",
    ]);
  });

  it("start timeout with a stubborn process: SIGKILL after the stop timeout, then backoff", () => {
    let server = started(spec("a", { stopTimeoutMs: 2000 }), 0, 100);
    server = step(server, { type: "timer", now: 30_000, timer: "start-timeout", id: timerId(server, "start-timeout") }).server;
    const result = run(server, [
      { type: "timer", now: 32_000, timer: "stop-timeout", id: timerId(server, "stop-timeout") },
      { type: "exited", now: 32_001, pid: 100, code: null, signal: 9 },
    ]);
    expect(result.effects.slice(0, 2)).toEqual(["log stop-timeout", "kill 100"]);
    expect([result.server.state, result.server.reason, result.server.lastExit?.reason]).toEqual(["backoff", "start-timeout", "stop-timeout"]);
  });
});

describe("stopping", () => {
  it("stop while starting: signalled, then stopped when the exit arrives", () => {
    const result = run(started(spec("a"), 0, 100), [
      { type: "stop", now: 10 },
      { type: "exited", now: 20, pid: 100, code: 0, signal: null },
    ]);
    expect([result.server.state, result.server.desired, result.server.reason]).toEqual(["stopped", "down", "stop-requested"]);
  });

  it("stop while the spawn is pending: the process is signalled as soon as it reports", () => {
    const result = run(createServer(spec("a")), [
      { type: "start", now: 0 },
      { type: "stop", now: 1 },
      { type: "spawned", now: 2, pid: 77 },
      { type: "exited", now: 3, pid: 77, code: null, signal: 15 },
    ]);
    expect(result.effects).toContain("signal 15 77");
    expect(result.server.state).toBe("stopped");
  });

  it("kill while the spawn is pending: SIGKILL as soon as it reports", () => {
    const result = run(createServer(spec("a")), [
      { type: "start", now: 0 },
      { type: "kill", now: 1 },
      { type: "spawned", now: 2, pid: 77 },
      { type: "exited", now: 3, pid: 77, code: null, signal: 9 },
    ]);
    expect(result.effects).toContain("kill 77");
    expect(result.effects).not.toContain("signal 15 77");
    expect([result.server.state, result.server.reason]).toEqual(["stopped", "hard-kill"]);
  });

  it("SIGKILL after the stop timeout; stopped with reason stop-timeout", () => {
    let server = readyServer(spec("a", { stopSignal: 2, stopTimeoutMs: 3000 }), 0, 100);
    server = step(server, { type: "stop", now: 1000 }).server;
    const result = run(server, [
      { type: "timer", now: 4000, timer: "stop-timeout", id: timerId(server, "stop-timeout") },
      { type: "exited", now: 4001, pid: 100, code: null, signal: 9 },
    ]);
    expect(result.effects).toEqual(["log stop-timeout", "kill 100", "arm stop-timeout@7000", "log exited", "cancel stop-timeout", "log stopped"]);
    expect([result.server.state, result.server.reason, result.server.lastExit?.reason]).toEqual(["stopped", "stop-timeout", "stop-timeout"]);
  });

  it("the stop signal comes from the spec", () => {
    const result = step(readyServer(spec("a", { stopSignal: 2 })), { type: "stop", now: 2000 });
    expect(result.effects.map(effectText)).toContain("signal 2 100");
  });

  it("restart: stop, then a new start once the old process has exited", () => {
    const result = run(readyServer(spec("a"), 0, 100), [
      { type: "restart", now: 1000 },
      { type: "exited", now: 1500, pid: 100, code: null, signal: 15 },
      { type: "spawned", now: 1501, pid: 101 },
    ]);
    expect([result.server.state, result.server.pid, result.server.reason]).toEqual(["starting", 101, "restart-requested"]);
    expect(result.server.restarts).toBe(0); // only automatic restarts are counted
  });

  it("a start request while stopping brings the server back up after the exit", () => {
    const result = run(readyServer(spec("a"), 0, 100), [
      { type: "stop", now: 1000 },
      { type: "start", now: 1100 },
      { type: "exited", now: 1500, pid: 100, code: null, signal: 15 },
    ]);
    expect([result.server.state, result.server.desired]).toEqual(["starting", "up"]);
  });

  it("a stop request while stopping for a start timeout cancels the restart", () => {
    let server = started(spec("a"), 0, 100);
    server = step(server, { type: "timer", now: 30_000, timer: "start-timeout", id: timerId(server, "start-timeout") }).server;
    const result = run(server, [
      { type: "stop", now: 30_001 },
      { type: "exited", now: 30_100, pid: 100, code: null, signal: 15 },
    ]);
    expect([result.server.state, result.server.reason]).toEqual(["stopped", "stop-requested"]);
  });

  it("stop-queued: the exit is not restarted", () => {
    const result = run(readyServer(spec("a"), 0, 100), [
      { type: "stop-queued", now: 1000 },
      { type: "exited", now: 1001, pid: 100, code: 1, signal: null },
    ]);
    expect([result.server.state, result.server.reason]).toEqual(["stopped", "exited"]);
  });
});

describe("odd events", () => {
  it("an exit of another pid is ignored", () => {
    const result = step(readyServer(spec("a"), 0, 100), { type: "exited", now: 10, pid: 99, code: 0, signal: null });
    expect([result.ignored, result.server.state]).toEqual(["exit of pid 99, not ours", "ready"]);
  });

  it("a timer from an earlier attempt is stale", () => {
    let server = started(spec("a"), 0, 100);
    const oldStartTimeout = timerId(server, "start-timeout");
    server = step(server, { type: "exited", now: 100, pid: 100, code: 1, signal: null }).server;
    server = step(server, { type: "timer", now: 1100, timer: "backoff", id: timerId(server, "backoff") }).server;
    expect(server.state).toBe("starting");
    expect(timerId(server, "start-timeout")).not.toBe(oldStartTimeout);
    const result = step(server, { type: "timer", now: 30_000, timer: "start-timeout", id: oldStartTimeout });
    expect(result.ignored).toBe("stale start-timeout timer");
  });

  it("a late spawn after a start timeout without a pid is killed as a stray", () => {
    let server = step(createServer(spec("a")), { type: "start", now: 0 }).server;
    server = step(server, { type: "timer", now: 30_000, timer: "start-timeout", id: timerId(server, "start-timeout") }).server;
    expect(server.state).toBe("backoff");
    const result = step(server, { type: "spawned", now: 30_001, pid: 55 });
    expect(result.effects.map(effectText)).toEqual(["kill 55", "log unexpected"]);
  });

  it("spawn failure records the errno", () => {
    const result = run(createServer(spec("a")), [
      { type: "start", now: 0 },
      { type: "spawn-failed", now: 1, errno: "ENOENT", syscall: "execve" },
    ]);
    expect(result.server.lastExit).toEqual({ at: 1, code: null, signal: null, errno: "ENOENT", reason: "exec-failed", uptimeMs: null });
    expect(result.server.state).toBe("backoff");
  });
});

describe("restart policy through the machine", () => {
  /** A crash at `now`; returns the server and the backoff delay it armed (null when none). */
  function crash(server: Server, now: number): { server: Server; delay: number | null } {
    const result = step(server, { type: "exited", now, pid: server.pid!, code: 1, signal: null });
    const arm = result.effects.find((e) => e.type === "arm-timer" && e.timer === "backoff");
    return { server: result.server, delay: arm?.type === "arm-timer" ? arm.at - now : null };
  }
  function restartAt(server: Server, now: number, pid: number): Server {
    server = step(server, { type: "timer", now, timer: "backoff", id: timerId(server, "backoff") }).server;
    return step(server, { type: "spawned", now, pid }).server;
  }

  it("the delay grows 1 s, 2 s, 4 s and counts restarts", () => {
    let server = started(spec("a", { restart: { ...policy, burstCount: 0 } }), 0, 1);
    const delays: (number | null)[] = [];
    let now = 0;
    for (let pid = 2; pid <= 4; pid++) {
      now += 100;
      const crashed = crash(server, now);
      delays.push(crashed.delay);
      now += crashed.delay!;
      server = restartAt(crashed.server, now, pid);
    }
    expect(delays).toEqual([1000, 2000, 4000]);
    expect(server.restarts).toBe(3);
  });

  it("the delay starts again from the initial one once the server stayed ready resetAfterMs", () => {
    let server = started(spec("a", { restart: { ...policy, burstCount: 0 } }), 0, 1);
    server = restartAt(crash(server, 100).server, 1100, 2);
    const second = crash(server, 1200);
    expect(second.delay).toBe(2000);
    server = restartAt(second.server, 3200, 3);
    server = step(server, { type: "ready", now: 3300 }).server;
    // A crash before the stable timer fires continues the streak.
    expect(crash(server, 3400).delay).toBe(4000);
    // Staying ready resetAfterMs (10 s) resets it.
    server = step(server, { type: "timer", now: 13_300, timer: "stable", id: timerId(server, "stable") }).server;
    expect(server.streak).toBe(0);
    expect(crash(server, 20_000).delay).toBe(1000);
  });

  it("burst limit: the server is failed; a start request begins a fresh count", () => {
    let server = started(spec("a"), 0, 1);
    server = restartAt(crash(server, 100).server, 1100, 2);
    server = restartAt(crash(server, 1200).server, 3200, 3);
    const third = crash(server, 3300);
    expect(third.delay).toBeNull();
    server = third.server;
    expect([server.state, server.reason, server.restarts]).toEqual(["failed", "burst-limit", 2]);
    server = step(server, { type: "start", now: 4000 }).server;
    expect([server.state, server.streak, server.startHistory]).toEqual(["starting", 0, [4000]]);
  });

  it("a clean exit under on-failure leaves the server stopped", () => {
    const server = step(readyServer(spec("a"), 0, 1), { type: "exited", now: 500, pid: 1, code: 0, signal: null }).server;
    expect([server.state, server.reason, server.desired]).toEqual(["stopped", "exited", "up"]);
  });

  it("policy never: a crash fails the server with the crash as its reason", () => {
    const s = spec("a", { restart: { ...policy, mode: "never" } });
    const server = step(readyServer(s, 0, 1), { type: "exited", now: 500, pid: 1, code: null, signal: 11 }).server;
    expect([server.state, server.reason]).toEqual(["failed", "killed-by-signal"]);
  });

  it("minUptime: a short run is not restarted, a long one is", () => {
    const s = spec("a", { restart: { ...policy, minUptimeForRestartMs: 60_000 } });
    const short = step(readyServer(s, 0, 1), { type: "exited", now: 30_000, pid: 1, code: 1, signal: null }).server;
    const long = step(readyServer(s, 0, 1), { type: "exited", now: 90_000, pid: 1, code: 1, signal: null }).server;
    expect([short.state, short.reason]).toEqual(["failed", "min-uptime"]);
    expect([long.state, long.reason]).toEqual(["backoff", "exited"]);
  });
});

describe("pins", () => {
  it("pinned started refuses stop but not a forced stop", () => {
    const server = step(readyServer(spec("a")), { type: "pin", now: 2000, pin: "started" }).server;
    expect(step(server, { type: "stop", now: 2001 }).ignored).toBe("pinned started: unpin it to stop it");
    expect(step(server, { type: "stop", now: 2001, force: true }).server.state).toBe("stopping");
  });

  it("pinned started still restarts after a crash (it is meant to be up)", () => {
    const server = step(readyServer(spec("a"), 0, 1), { type: "pin", now: 100, pin: "started" }).server;
    expect(step(server, { type: "exited", now: 200, pid: 1, code: 1, signal: null }).server.state).toBe("backoff");
  });

  it("pinned stopped refuses start and restart until unpinned", () => {
    let server = step(createServer(spec("a")), { type: "pin", now: 0, pin: "stopped" }).server;
    expect(step(server, { type: "start", now: 1 }).ignored).toBe("pinned stopped: unpin it to start it");
    expect(step(server, { type: "restart", now: 1 }).ignored).toBe("pinned stopped: unpin it to start it");
    server = step(server, { type: "unpin", now: 2 }).server;
    expect(step(server, { type: "start", now: 3 }).server.state).toBe("starting");
  });

  it("pin stopped on a running server stops it; pin started on a stopped one starts it", () => {
    expect(step(readyServer(spec("a")), { type: "pin", now: 5000, pin: "stopped" }).server.state).toBe("stopping");
    expect(step(createServer(spec("a")), { type: "pin", now: 0, pin: "started" }).server.state).toBe("starting");
  });
});

describe("hooks", () => {
  const hooked = (overrides: Partial<ServerSpec> = {}) =>
    spec("a", { preStart: ["/bin/prep"], postStop: ["/bin/cleanup"], preStartTimeoutMs: 2000, postStopTimeoutMs: 3000, stopTimeoutMs: 1000, ...overrides });
  const never = { ...policy, mode: "never" as const };
  /** Started at 0 (preStart pid 50, done at 0), the server's pid 100, ready at 50. */
  const readyHooked = (s: ServerSpec) =>
    run(createServer(s), [
      { type: "start", now: 0 },
      { type: "hook-spawned", now: 0, pid: 50 },
      { type: "hook-exited", now: 0, pid: 50, code: 0, signal: null },
      { type: "spawned", now: 0, pid: 100 },
      { type: "ready", now: 50 },
    ]).server;

  it("preStart runs first, its own process with its own timeout; the server is spawned when it exits 0", () => {
    const result = run(createServer(hooked()), [
      { type: "start", now: 0 },
      { type: "hook-spawned", now: 0, pid: 50 },
      { type: "hook-exited", now: 300, pid: 50, code: 0, signal: null },
      { type: "spawned", now: 300, pid: 51 },
    ]);
    expect(result.effects).toEqual([
      "log starting",
      "run-pre-start",
      "arm pre-start-timeout@2000",
      "log pre-start",
      "cancel pre-start-timeout",
      "log pre-start",
      "spawn",
      "arm start-timeout@30300",
      "log started",
      "probe 51",
    ]);
    expect([result.server.state, result.server.pid, result.server.hook, result.server.startedAt]).toEqual(["starting", 51, null, 300]);
  });

  it("a preStart that fails is a failed start: judged by the restart policy, with its exit recorded", () => {
    let server = run(createServer(hooked()), [
      { type: "start", now: 0 },
      { type: "hook-spawned", now: 0, pid: 50 },
      { type: "hook-exited", now: 10, pid: 50, code: 4, signal: null },
    ]).server;
    expect([server.state, server.reason, server.lastExit]).toEqual([
      "backoff",
      "pre-start-failed",
      { at: 10, code: 4, signal: null, errno: null, reason: "pre-start-failed", uptimeMs: null },
    ]);
    server = run(createServer(hooked({ restart: never })), [
      { type: "start", now: 0 },
      { type: "hook-spawn-failed", now: 0, errno: "ENOENT" },
    ]).server;
    expect([server.state, server.reason, server.lastExit?.errno]).toEqual(["failed", "pre-start-failed", "ENOENT"]);
  });

  it("a preStart that hangs: TERM to its group at preStartTimeout, KILL after the grace, then the start has failed with pre-start-timeout", () => {
    let server = run(createServer(hooked({ restart: never })), [
      { type: "start", now: 0 },
      { type: "hook-spawned", now: 0, pid: 50 },
    ]).server;
    let result = run(server, [{ type: "timer", now: 2000, timer: "pre-start-timeout", id: timerId(server, "pre-start-timeout") }]);
    expect(result.effects).toEqual(["log pre-start-timeout", "signal 15 50", "arm stop-timeout@3000"]);
    server = result.server;
    expect([server.state, server.reason, server.hookPid]).toEqual(["stopping", "pre-start-timeout", 50]);
    result = run(server, [
      { type: "timer", now: 3000, timer: "stop-timeout", id: timerId(server, "stop-timeout") },
      { type: "hook-exited", now: 3001, pid: 50, code: null, signal: 9 },
    ]);
    expect(result.effects).toEqual(["log stop-timeout", "kill 50", "arm stop-timeout@4000", "log pre-start", "cancel stop-timeout", "log failed"]);
    expect([result.server.state, result.server.reason, result.server.hook, result.server.lastExit?.signal]).toEqual(["failed", "pre-start-timeout", null, 9]);
  });

  it("a stop while preStart runs stops preStart (SIGTERM to its group, whatever the server's stop signal)", () => {
    const result = run(createServer(hooked({ stopSignal: 2 })), [
      { type: "start", now: 0 },
      { type: "hook-spawned", now: 0, pid: 50 },
      { type: "stop", now: 100 },
      { type: "hook-exited", now: 150, pid: 50, code: null, signal: 15 },
    ]);
    expect(result.effects).toContain("signal 15 50");
    expect(result.effects).not.toContain("spawn");
    expect([result.server.state, result.server.reason]).toEqual(["stopped", "stop-requested"]);
  });

  it("after a crash, postStop runs first and the restart verdict waits for it", () => {
    let server = readyHooked(hooked());
    server = step(server, { type: "exited", now: 5000, pid: 100, code: 1, signal: null }).server;
    expect([server.state, server.hook, server.desired, server.verdict?.cause]).toEqual(["stopping", "post-stop", "up", "exited"]);
    const result = run(server, [
      { type: "hook-spawned", now: 5000, pid: 60 },
      { type: "hook-exited", now: 5200, pid: 60, code: 0, signal: null },
    ]);
    expect([result.server.state, result.server.reason]).toEqual(["backoff", "exited"]);
    expect(result.effects).toContain("arm backoff@6200");
  });

  it("a restart request while postStop runs after a crash starts right after it, without the backoff", () => {
    let server = readyHooked(hooked());
    server = run(server, [
      { type: "exited", now: 5000, pid: 100, code: 1, signal: null },
      { type: "hook-spawned", now: 5000, pid: 60 },
      { type: "restart", now: 5100 },
      { type: "hook-exited", now: 5200, pid: 60, code: 0, signal: null },
    ]).server;
    expect([server.state, server.reason, server.hook]).toEqual(["starting", "restart-requested", "pre-start"]);
  });

  it("a postStop that hangs is stopped at postStopTimeout like a server; the server then settles", () => {
    let server = run(readyHooked(hooked()), [
      { type: "stop", now: 1000 },
      { type: "exited", now: 1100, pid: 100, code: null, signal: 15 },
      { type: "hook-spawned", now: 1100, pid: 60 },
    ]).server;
    let result = run(server, [{ type: "timer", now: 4100, timer: "post-stop-timeout", id: timerId(server, "post-stop-timeout") }]);
    expect(result.effects).toEqual(["log post-stop-timeout", "signal 15 60", "arm stop-timeout@5100"]);
    server = result.server;
    result = run(server, [
      { type: "timer", now: 5100, timer: "stop-timeout", id: timerId(server, "stop-timeout") },
      { type: "hook-exited", now: 5101, pid: 60, code: null, signal: 9 },
    ]);
    expect([result.server.state, result.server.reason]).toEqual(["stopped", "post-stop-timeout"]);
  });

  it("the shutdown deadline (a final kill) ends postStop, and no postStop starts after it", () => {
    let server = run(readyHooked(hooked()), [
      { type: "stop", now: 1000 },
      { type: "kill", now: 1500, final: true },
    ]).server;
    expect(server.final).toBe(true);
    const result = run(server, [{ type: "exited", now: 1501, pid: 100, code: null, signal: 9 }]);
    expect(result.effects).not.toContain("run-post-stop -/9");
    expect(result.server.state).toBe("stopped");
    // A postStop already running is killed with the rest.
    server = run(readyHooked(hooked()), [
      { type: "stop", now: 1000 },
      { type: "exited", now: 1100, pid: 100, code: null, signal: 15 },
      { type: "hook-spawned", now: 1100, pid: 60 },
    ]).server;
    expect(run(server, [{ type: "kill", now: 1200, final: true }]).effects).toContain("kill 60");
  });

  it("a process that survives SIGKILL is waited for a stop timeout more, then given up (failed, kill-timeout)", () => {
    let server = step(readyServer(spec("a", { stopTimeoutMs: 1000 }), 0, 100), { type: "kill", now: 500 }).server;
    const result = run(server, [{ type: "timer", now: 1500, timer: "stop-timeout", id: timerId(server, "stop-timeout") }]);
    server = result.server;
    expect([server.state, server.reason, server.pid]).toEqual(["failed", "kill-timeout", null]);
    // If it ever ends, that is not news any more.
    expect(step(server, { type: "exited", now: 9000, pid: 100, code: null, signal: 9 }).ignored).toBe("no process");
  });

  it("a stop while the spawn is pending gives the spawn up at the stop timeout", () => {
    const server = run(createServer(spec("a", { stopTimeoutMs: 1000 })), [
      { type: "start", now: 0 },
      { type: "stop", now: 10 },
    ]).server;
    const result = run(server, [
      { type: "timer", now: 1010, timer: "stop-timeout", id: timerId(server, "stop-timeout") },
      { type: "spawned", now: 2000, pid: 77 },
    ]);
    expect([result.server.state, result.server.pid]).toEqual(["stopped", null]);
    expect(result.effects).toContain("kill 77");
  });
});
