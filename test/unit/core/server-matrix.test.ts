// Every cell of the server machine's table: each situation (a state, with the variants that change
// its behaviour: a pending spawn, a stop for a restart) × each event column, with the exact outcome.

import { describe, expect, it } from "vitest";
import { createServer, step, type Column, type Server, type ServerEvent } from "../../../init/core/server";
import { effectText, spec } from "./fixtures";

const S = spec("TangoTest/t1", { preStart: ["/bin/prep"], postStop: ["/bin/cleanup"] });
const NOW = 20_000;

function after(server: Server, ...events: ServerEvent[]): Server {
  return events.reduce((s, event) => step(s, event).server, server);
}

const stopped = createServer(S, 0);
const startingPending = after(stopped, { type: "start", now: 1000 });
const starting = after(startingPending, { type: "spawned", now: 1000, pid: 100 });
const ready = after(starting, { type: "ready", now: 1500 });
const stopping = after(ready, { type: "stop", now: 1600 });
const stoppingRestart = after(ready, { type: "restart", now: 1600 });
const stoppingPending = after(startingPending, { type: "stop", now: 1100 });
const backoff = after(ready, { type: "exited", now: 1600, pid: 100, code: 1, signal: null });
// Three crashes in a row: a fourth start would be more than burstCount (3) within the window.
const failed = after(
  stopped,
  { type: "start", now: 1000 },
  { type: "spawned", now: 1000, pid: 100 },
  { type: "exited", now: 1100, pid: 100, code: 1, signal: null },
  { type: "timer", now: 2100, timer: "backoff", id: 2 },
  { type: "spawned", now: 2100, pid: 101 },
  { type: "exited", now: 2200, pid: 101, code: 1, signal: null },
  { type: "timer", now: 4200, timer: "backoff", id: 4 },
  { type: "spawned", now: 4200, pid: 102 },
  { type: "exited", now: 4300, pid: 102, code: 1, signal: null },
);

const situations = {
  stopped,
  "starting (spawn pending)": startingPending,
  starting,
  ready,
  stopping,
  "stopping (for a restart)": stoppingRestart,
  "stopping (spawn pending)": stoppingPending,
  backoff,
  failed,
};
type Situation = keyof typeof situations;

/** The event of a column, as sent to a server in this situation (timers carry its armed id, if any). */
function eventFor(column: Column, server: Server): ServerEvent {
  const now = NOW;
  switch (column) {
    case "start":
    case "stop":
    case "restart":
    case "ready":
    case "unpin":
    case "stop-queued":
    case "kill":
      return { type: column, now };
    case "spawned":
      return { type: "spawned", now, pid: 200 };
    case "spawn-failed":
      return { type: "spawn-failed", now, errno: "ENOENT", syscall: "execve" };
    case "probe-failed":
      return { type: "probe-failed", now, message: "connection refused" };
    case "exited":
      return { type: "exited", now, pid: 100, code: 1, signal: null };
    case "start-timeout":
    case "stop-timeout":
    case "backoff":
    case "stable":
      return { type: "timer", now, timer: column, id: server.timers[column] ?? 999 };
    case "pin-started":
      return { type: "pin", now, pin: "started" };
    case "pin-stopped":
      return { type: "pin", now, pin: "stopped" };
    case "dependency-failed":
      return { type: "dependency-failed", now, dependency: "sys/database/2" };
  }
}

type Outcome = { ignored: string } | { state: Server["state"]; desired: Server["desired"]; reason: Server["reason"]; effects: string[] };

const ignored = (why: string): Outcome => ({ ignored: why });
const to = (state: Server["state"], desired: Server["desired"], reason: Server["reason"], ...effects: string[]): Outcome => ({
  state,
  desired,
  reason,
  effects,
});

const START = ["log starting", "pre-start", "spawn", "arm start-timeout@50000"];
const STRAY = ["kill 200", "log unexpected"];
const SIGTERM_100 = ["signal 15 100", "arm stop-timeout@25000"];

const expected: Record<Situation, Record<Column, Outcome>> = {
  stopped: {
    start: to("starting", "up", "start-requested", ...START),
    stop: ignored("already stopped"),
    restart: to("starting", "up", "restart-requested", ...START),
    spawned: to("stopped", "down", "initial", ...STRAY),
    "spawn-failed": ignored("no spawn pending"),
    ready: ignored("no process"),
    "probe-failed": ignored("no process"),
    exited: ignored("no process"),
    "start-timeout": ignored("stale start-timeout timer"),
    "stop-timeout": ignored("stale stop-timeout timer"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("starting", "up", "start-requested", "log pin", ...START),
    "pin-stopped": to("stopped", "down", "initial", "log pin"),
    unpin: ignored("not pinned"),
    "stop-queued": ignored("already stopped"),
    kill: ignored("no process"),
    "dependency-failed": to("failed", "up", "dependency-failed", "log failed"),
  },
  "starting (spawn pending)": {
    start: ignored("already starting"),
    stop: to("stopping", "down", "stop-requested", "cancel start-timeout", "log stopping"),
    restart: to("stopping", "up", "restart-requested", "cancel start-timeout", "log stopping"),
    spawned: to("starting", "up", "start-requested", "log started", "probe 200"),
    "spawn-failed": to("backoff", "up", "exec-failed", "log exec-failed", "cancel start-timeout", "arm backoff@21000", "log restarting"),
    ready: ignored("ready before spawned"),
    "probe-failed": ignored("probe failed before spawned"),
    exited: ignored("exit of pid 100, not ours"),
    "start-timeout": to("backoff", "up", "start-timeout", "log start-timeout", "arm backoff@21000", "log restarting"),
    "stop-timeout": ignored("stale stop-timeout timer"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("starting", "up", "start-requested", "log pin"),
    "pin-stopped": to("stopping", "down", "stop-requested", "log pin", "cancel start-timeout", "log stopping"),
    unpin: ignored("not pinned"),
    "stop-queued": to("starting", "down", "start-requested"),
    kill: to("stopping", "down", "hard-kill", "cancel start-timeout", "log killing"),
    "dependency-failed": ignored("already started"),
  },
  starting: {
    start: ignored("already starting"),
    stop: to("stopping", "down", "stop-requested", "cancel start-timeout", "stop-probe", "log stopping", ...SIGTERM_100),
    restart: to("stopping", "up", "restart-requested", "cancel start-timeout", "stop-probe", "log stopping", ...SIGTERM_100),
    spawned: to("starting", "up", "start-requested", ...STRAY),
    "spawn-failed": ignored("already spawned"),
    ready: to("ready", "up", "ready", "cancel start-timeout", "arm stable@30000", "log ready"),
    "probe-failed": to("stopping", "up", "readiness-failed", "log readiness-failed", "cancel start-timeout", ...SIGTERM_100),
    exited: to("backoff", "up", "exited", "log exited", "post-stop 1/-", "cancel start-timeout", "stop-probe", "arm backoff@21000", "log restarting"),
    "start-timeout": to("stopping", "up", "start-timeout", "log start-timeout", "stop-probe", ...SIGTERM_100),
    "stop-timeout": ignored("stale stop-timeout timer"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("starting", "up", "start-requested", "log pin"),
    "pin-stopped": to("stopping", "down", "stop-requested", "log pin", "cancel start-timeout", "stop-probe", "log stopping", ...SIGTERM_100),
    unpin: ignored("not pinned"),
    "stop-queued": to("starting", "down", "start-requested"),
    kill: to("stopping", "down", "hard-kill", "cancel start-timeout", "stop-probe", "log killing", "kill 100"),
    "dependency-failed": ignored("already started"),
  },
  ready: {
    start: ignored("already ready"),
    stop: to("stopping", "down", "stop-requested", "cancel stable", "log stopping", ...SIGTERM_100),
    restart: to("stopping", "up", "restart-requested", "cancel stable", "log stopping", ...SIGTERM_100),
    spawned: to("ready", "up", "ready", ...STRAY),
    "spawn-failed": ignored("no spawn pending"),
    ready: ignored("already ready"),
    "probe-failed": ignored("already ready"),
    exited: to("backoff", "up", "exited", "log exited", "post-stop 1/-", "cancel stable", "arm backoff@21000", "log restarting"),
    "start-timeout": ignored("stale start-timeout timer"),
    "stop-timeout": ignored("stale stop-timeout timer"),
    backoff: ignored("stale backoff timer"),
    stable: to("ready", "up", "ready", "log backoff-reset"),
    "pin-started": to("ready", "up", "ready", "log pin"),
    "pin-stopped": to("stopping", "down", "stop-requested", "log pin", "cancel stable", "log stopping", ...SIGTERM_100),
    unpin: ignored("not pinned"),
    "stop-queued": to("ready", "down", "ready"),
    kill: to("stopping", "down", "hard-kill", "cancel stable", "log killing", "kill 100"),
    "dependency-failed": ignored("already started"),
  },
  stopping: {
    start: to("stopping", "up", "stop-requested"),
    stop: ignored("already stopping"),
    restart: to("stopping", "up", "stop-requested"),
    spawned: to("stopping", "down", "stop-requested", ...STRAY),
    "spawn-failed": ignored("already spawned"),
    ready: ignored("stopping"),
    "probe-failed": ignored("stopping"),
    exited: to("stopped", "down", "stop-requested", "log exited", "post-stop 1/-", "cancel stop-timeout", "log stopped"),
    "start-timeout": ignored("stale start-timeout timer"),
    "stop-timeout": to("stopping", "down", "stop-timeout", "log stop-timeout", "kill 100"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("stopping", "up", "stop-requested", "log pin"),
    "pin-stopped": to("stopping", "down", "stop-requested", "log pin"),
    unpin: ignored("not pinned"),
    "stop-queued": ignored("already stopping"),
    kill: to("stopping", "down", "hard-kill", "cancel stop-timeout", "log killing", "kill 100"),
    "dependency-failed": ignored("already started"),
  },
  "stopping (for a restart)": {
    start: ignored("will start again once stopped"),
    stop: to("stopping", "down", "stop-requested"),
    restart: ignored("will start again once stopped"),
    spawned: to("stopping", "up", "restart-requested", ...STRAY),
    "spawn-failed": ignored("already spawned"),
    ready: ignored("stopping"),
    "probe-failed": ignored("stopping"),
    exited: to("starting", "up", "restart-requested", "log exited", "post-stop 1/-", "cancel stop-timeout", ...START),
    "start-timeout": ignored("stale start-timeout timer"),
    "stop-timeout": to("stopping", "up", "stop-timeout", "log stop-timeout", "kill 100"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("stopping", "up", "restart-requested", "log pin"),
    "pin-stopped": to("stopping", "down", "stop-requested", "log pin"),
    unpin: ignored("not pinned"),
    "stop-queued": to("stopping", "down", "stop-requested"),
    kill: to("stopping", "down", "hard-kill", "cancel stop-timeout", "log killing", "kill 100"),
    "dependency-failed": ignored("already started"),
  },
  "stopping (spawn pending)": {
    start: to("stopping", "up", "stop-requested"),
    stop: ignored("already stopping"),
    restart: to("stopping", "up", "stop-requested"),
    spawned: to("stopping", "down", "stop-requested", "log started", "signal 15 200", "arm stop-timeout@25000"),
    "spawn-failed": to("stopped", "down", "stop-requested", "log exec-failed", "log stopped"),
    ready: ignored("stopping"),
    "probe-failed": ignored("stopping"),
    exited: ignored("exit of pid 100, not ours"),
    "start-timeout": ignored("stale start-timeout timer"),
    "stop-timeout": ignored("stale stop-timeout timer"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("stopping", "up", "stop-requested", "log pin"),
    "pin-stopped": to("stopping", "down", "stop-requested", "log pin"),
    unpin: ignored("not pinned"),
    "stop-queued": ignored("already stopping"),
    kill: to("stopping", "down", "hard-kill", "log killing"),
    "dependency-failed": ignored("already started"),
  },
  backoff: {
    start: to("starting", "up", "start-requested", "cancel backoff", ...START),
    stop: to("stopped", "down", "stop-requested", "cancel backoff", "log stopped"),
    restart: to("starting", "up", "restart-requested", "cancel backoff", ...START),
    spawned: to("backoff", "up", "exited", ...STRAY),
    "spawn-failed": ignored("no spawn pending"),
    ready: ignored("no process"),
    "probe-failed": ignored("no process"),
    exited: ignored("no process"),
    "start-timeout": ignored("stale start-timeout timer"),
    "stop-timeout": ignored("stale stop-timeout timer"),
    backoff: to("starting", "up", "auto-restart", ...START),
    stable: ignored("stale stable timer"),
    "pin-started": to("starting", "up", "start-requested", "log pin", "cancel backoff", ...START),
    "pin-stopped": to("stopped", "down", "stop-requested", "log pin", "cancel backoff", "log stopped"),
    unpin: ignored("not pinned"),
    "stop-queued": to("stopped", "down", "stop-requested", "cancel backoff", "log stopped"),
    kill: to("stopped", "down", "hard-kill", "cancel backoff", "log stopped"),
    "dependency-failed": ignored("already started"),
  },
  failed: {
    start: to("starting", "up", "start-requested", ...START),
    stop: to("failed", "down", "burst-limit"),
    restart: to("starting", "up", "restart-requested", ...START),
    spawned: to("failed", "up", "burst-limit", ...STRAY),
    "spawn-failed": ignored("no spawn pending"),
    ready: ignored("no process"),
    "probe-failed": ignored("no process"),
    exited: ignored("no process"),
    "start-timeout": ignored("stale start-timeout timer"),
    "stop-timeout": ignored("stale stop-timeout timer"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("starting", "up", "start-requested", "log pin", ...START),
    "pin-stopped": to("failed", "down", "burst-limit", "log pin"),
    unpin: ignored("not pinned"),
    "stop-queued": to("failed", "down", "burst-limit"),
    kill: ignored("no process"),
    "dependency-failed": ignored("already failed"),
  },
};

describe("server machine: the fixtures are the situations they claim to be", () => {
  it.each([
    ["stopped", stopped, "stopped", "down", null],
    ["starting (spawn pending)", startingPending, "starting", "up", null],
    ["starting", starting, "starting", "up", 100],
    ["ready", ready, "ready", "up", 100],
    ["stopping", stopping, "stopping", "down", 100],
    ["stopping (for a restart)", stoppingRestart, "stopping", "up", 100],
    ["stopping (spawn pending)", stoppingPending, "stopping", "down", null],
    ["backoff", backoff, "backoff", "up", null],
    ["failed", failed, "failed", "up", null],
  ] as const)("%s", (_, server, state, desired, pid) => {
    expect([server.state, server.desired, server.pid]).toEqual([state, desired, pid]);
  });

  it("failed is failed by the burst limit", () => {
    expect(failed.reason).toBe("burst-limit");
  });
});

describe("server machine: every situation × event", () => {
  const cells = Object.entries(expected).flatMap(([situation, row]) =>
    Object.entries(row).map(([column, outcome]) => ({ situation: situation as Situation, column: column as Column, outcome })),
  );

  it("covers 9 situations × 18 columns", () => {
    expect(cells).toHaveLength(9 * 18);
  });

  it.each(cells)("$situation × $column", ({ situation, column, outcome }) => {
    const before = situations[situation];
    const frozen = structuredClone(before);
    const result = step(before, eventFor(column, before));
    expect(before).toEqual(frozen); // the input is never changed
    if ("ignored" in outcome) {
      expect(result.ignored).toBe(outcome.ignored);
      expect(result.effects).toEqual([]);
      expect(result.server).toBe(before);
      return;
    }
    expect(result.ignored).toBeNull();
    expect({
      state: result.server.state,
      desired: result.server.desired,
      reason: result.server.reason,
      effects: result.effects.map(effectText),
    }).toEqual(outcome);
  });
});
