// The per-server state machine, s6/dinit style: one explicit table of states × events.
//
// step(server, event) -> { server, effects, ignored } is pure: time comes in with every event, and
// everything that touches the world (spawning, signals, timers, probes, hooks, log lines) goes out
// as plain-data effects for the runtime to execute. The runtime feeds back what happened
// (spawned, spawn-failed, ready, probe-failed, exited, timer) as further events.
//
// Desired state ("up" / "down") is kept apart from the current state, as dinit does: a stop
// request while starting is an ordinary event (the process is signalled and the server goes to
// stopping), and a start request while stopping only flips `desired`, so the server starts again
// once the old process is gone.

import { recordPing, startLiveness, type Liveness } from "./liveness";
import { signalName } from "./signals";
import type { LivenessSpec, ReadinessProbe, ServerSpec } from "./types";
import { decideRestart, pruneStartHistory, type FailureCause, type Termination } from "./restart";

export type ServerState = "stopped" | "starting" | "ready" | "stopping" | "backoff" | "failed";
export type DesiredState = "up" | "down";
/** The Starter's word for a state: it reports every server without a process as FAULT. */
export type StarterState = "ON" | "MOVING" | "FAULT";
/** A pinned server gets no automatic start (pinned stopped) or stop (pinned started). */
export type Pin = "started" | "stopped" | null;

/** Why a server is in its current state (and, in ExitRecord, why its process ended). */
export type StateReason =
  | "initial" // never started
  | "start-requested"
  | "restart-requested"
  | "auto-restart" // the backoff delay elapsed
  | "ready"
  | "stop-requested"
  | "stop-timeout" // it did not stop within stopTimeoutMs and was SIGKILLed
  | "hard-kill" // a kill request (or the shutdown deadline) SIGKILLed it
  | FailureCause
  | "burst-limit"
  | "min-uptime" // the Starter's AutoRestartDuration: it did not run long enough to be restarted
  | "dependency-failed";

export type ServerTimer = "start-timeout" | "stop-timeout" | "backoff" | "stable";

export interface ExitRecord {
  at: number;
  code: number | null;
  signal: number | null;
  /** The errno name when the spawn failed (e.g. "ENOENT"). */
  errno: string | null;
  reason: StateReason;
  /** Spawn to exit; null when the process never ran. */
  uptimeMs: number | null;
}

export interface Server {
  spec: ServerSpec;
  state: ServerState;
  desired: DesiredState;
  reason: StateReason;
  /** When the current state was entered. */
  since: number;
  pin: Pin;
  /** The running process (also its process group); null while a spawn is pending or without a process. */
  pid: number | null;
  startedAt: number | null;
  readyAt: number | null;
  /** Automatic restarts (after a backoff) since the supervisor started. */
  restarts: number;
  /** Consecutive failed runs since the server last stayed ready resetAfterMs: drives the backoff delay. */
  streak: number;
  /** Recent start times, for the burst limit. */
  startHistory: number[];
  lastExit: ExitRecord | null;
  /** While stopping: the failure that made us stop it (start-timeout, readiness-failed), so its exit is judged as one. */
  failure: FailureCause | null;
  /** While stopping: SIGKILL has been sent (or will be, as soon as the pending spawn reports its pid). */
  killed: boolean;
  /** A readiness probe is running (started at spawn, ended by the runtime when it reports). */
  probing: boolean;
  /** While ready with a liveness check: what its pings say (core/liveness.ts); null otherwise. */
  liveness: Liveness | null;
  /** Armed timers and their ids; a timer event whose id differs is stale. */
  timers: Partial<Record<ServerTimer, number>>;
  nextTimerId: number;
}

export type ServerEvent =
  | { type: "start"; now: number }
  /** force: a stop that a pin does not refuse (shutdown, removal from the config). */
  | { type: "stop"; now: number; force?: boolean }
  | { type: "restart"; now: number }
  | { type: "spawned"; now: number; pid: number }
  | { type: "spawn-failed"; now: number; errno: string; syscall?: string }
  | { type: "ready"; now: number }
  | { type: "probe-failed"; now: number; message: string }
  | { type: "exited"; now: number; pid: number; code: number | null; signal: number | null }
  | { type: "timer"; now: number; timer: ServerTimer; id: number }
  | { type: "pin"; now: number; pin: "started" | "stopped" }
  | { type: "unpin"; now: number }
  /** Desired becomes down without acting yet: a stop will follow (shutdown order); no more restarts. */
  | { type: "stop-queued"; now: number }
  /** SIGKILL now (Starter's HardKillServer; the shutdown deadline). */
  | { type: "kill"; now: number }
  /** Sent by the supervisor to a server it was going to start whose required server failed. */
  | { type: "dependency-failed"; now: number; dependency: string }
  /** A liveness ping of process `pid` ended: answered in rttMs, or not (rttMs null, with why). */
  | { type: "ping"; now: number; pid: number; rttMs: number | null; error?: string };

export type LogLevel = "debug" | "info" | "warn" | "error";
export type ServerLogKind =
  | "starting"
  | "started"
  | "ready"
  | "exited"
  | "exec-failed"
  | "restarting"
  | "stopping"
  | "stopped"
  | "failed"
  | "start-timeout"
  | "readiness-failed"
  | "stop-timeout"
  | "killing"
  | "backoff-reset"
  | "pin"
  | "unresponsive"
  | "responsive"
  | "unexpected";

/**
 * What the runtime must do. Effects of one step are executed in order; in particular a
 * run-pre-start must have finished before the spawn that follows it (a failing pre-start is
 * reported as spawn-failed). Timers are identified by (server, timer, id).
 */
export type ServerEffect =
  | { type: "run-pre-start"; server: string; argv: string[] }
  | { type: "spawn"; server: string; spec: ServerSpec }
  | { type: "start-probe"; server: string; pid: number; probe: ReadinessProbe }
  | { type: "stop-probe"; server: string }
  /** Ping the admin device of `pid` as the spec says, reporting each outcome as a `ping` event, until stop-liveness. */
  | { type: "start-liveness"; server: string; pid: number; liveness: LivenessSpec }
  | { type: "stop-liveness"; server: string }
  /** kill(-pid, signal): the signal goes to the server's process group. */
  | { type: "signal"; server: string; pid: number; signal: number }
  /** kill(-pid, SIGKILL). */
  | { type: "kill"; server: string; pid: number }
  | { type: "run-post-stop"; server: string; argv: string[]; code: number | null; signal: number | null }
  | { type: "arm-timer"; server: string; timer: ServerTimer; id: number; at: number }
  | { type: "cancel-timer"; server: string; timer: ServerTimer; id: number }
  | { type: "log"; server: string; level: LogLevel; kind: ServerLogKind; message: string };

export interface ServerStep {
  server: Server;
  effects: ServerEffect[];
  /** Set when the event changed nothing: why it was ignored (for a debug log). */
  ignored: string | null;
}

/** A duration for a person: "85 ms" below ten seconds, "12.3 s" above. */
export function formatMs(ms: number): string {
  return ms < 10_000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

export function createServer(spec: ServerSpec, now = 0): Server {
  return {
    spec,
    state: "stopped",
    desired: "down",
    reason: "initial",
    since: now,
    pin: null,
    pid: null,
    startedAt: null,
    readyAt: null,
    restarts: 0,
    streak: 0,
    startHistory: [],
    lastExit: null,
    failure: null,
    killed: false,
    probing: false,
    liveness: null,
    timers: {},
    nextTimerId: 1,
  };
}

export function starterState(state: ServerState): StarterState {
  switch (state) {
    case "ready":
      return "ON";
    case "starting":
    case "stopping":
      return "MOVING";
    case "stopped":
    case "backoff":
    case "failed":
      return "FAULT";
  }
}

/** The Starter's word for a server: a ready one whose admin device does not answer ping is MOVING. */
export function starterStateOf(server: Server): StarterState {
  return server.state === "ready" && server.liveness?.state === "unresponsive" ? "MOVING" : starterState(server.state);
}

/** "exited with code 1", "killed by SIGKILL", "exec failed: ENOENT", or the reason alone. */
export function describeServerExit(exit: ExitRecord): string {
  if (exit.errno !== null) return `exec failed: ${exit.errno}`;
  if (exit.signal !== null) return `killed by ${signalName(exit.signal)}`;
  if (exit.code !== null) return `exited with code ${exit.code}`;
  return exit.reason;
}

/** Stopped or failed: no process and no restart coming. */
export function isDown(server: Server): boolean {
  return server.state === "stopped" || server.state === "failed";
}

/** No process, and none about to be spawned. */
export function hasNoProcess(server: Server): boolean {
  return server.state === "stopped" || server.state === "failed" || server.state === "backoff";
}

// ---- one step ---------------------------------------------------------------------------------

/** The column of the table an event falls in: timers by kind, pins by direction. */
export type Column = Exclude<ServerEvent["type"], "timer" | "pin" | "ping"> | ServerTimer | "pin-started" | "pin-stopped";

function columnOf(event: Exclude<ServerEvent, { type: "ping" }>): Column {
  if (event.type === "timer") return event.timer;
  if (event.type === "pin") return event.pin === "started" ? "pin-started" : "pin-stopped";
  return event.type;
}

type EventOf<C extends Column> = C extends ServerTimer
  ? Extract<ServerEvent, { type: "timer" }>
  : C extends "pin-started" | "pin-stopped"
    ? Extract<ServerEvent, { type: "pin" }>
    : Extract<ServerEvent, { type: C }>;
type Cell<C extends Column> = (t: Transition, event: EventOf<C>) => void;
type Row = { [C in Column]: Cell<C> };

export function step(server: Server, event: ServerEvent): ServerStep {
  const t = new Transition({ ...server, timers: { ...server.timers } }, event.now);
  // Liveness is a machine of its own beside the table, as pins are a policy over it.
  if (event.type === "ping") return pinged(t, server, event);
  const refused = refusal(server, event);
  if (refused !== null) return { server, effects: [], ignored: refused };
  if (event.type === "timer") {
    if (server.timers[event.timer] !== event.id) return { server, effects: [], ignored: `stale ${event.timer} timer` };
    delete t.s.timers[event.timer];
  }
  const cell = table[server.state][columnOf(event)] as Cell<Column>;
  cell(t, event as never);
  if (t.ignored !== null) return { server, effects: [], ignored: t.ignored };
  return { server: t.s, effects: t.effects, ignored: null };
}

/** Pins are a policy over requests, the same in every state, so they are checked before the table. */
function refusal(server: Server, event: ServerEvent): string | null {
  if (event.type === "stop" && !event.force && server.pin === "started") return "pinned started: unpin it to stop it";
  if ((event.type === "start" || event.type === "restart") && server.pin === "stopped") {
    return "pinned stopped: unpin it to start it";
  }
  return null;
}

/** Which timers may stay armed in each state; entering a state cancels the others. */
const timersOf: Record<ServerState, readonly ServerTimer[]> = {
  stopped: [],
  starting: ["start-timeout"],
  ready: ["stable"],
  stopping: ["stop-timeout"],
  backoff: ["backoff"],
  failed: [],
};

/** A mutable draft of one step: the server copy, the effects so far, and helpers the cells share. */
class Transition {
  readonly effects: ServerEffect[] = [];
  ignored: string | null = null;

  constructor(
    readonly s: Server,
    readonly now: number,
  ) {}

  get name(): string {
    return this.s.spec.name;
  }

  ignore(why: string): void {
    this.ignored = why;
  }

  emit(effect: ServerEffect): void {
    this.effects.push(effect);
  }

  log(level: LogLevel, kind: ServerLogKind, message: string): void {
    this.emit({ type: "log", server: this.name, level, kind, message });
  }

  arm(timer: ServerTimer, delayMs: number): void {
    const id = this.s.nextTimerId++;
    this.s.timers[timer] = id;
    this.emit({ type: "arm-timer", server: this.name, timer, id, at: this.now + delayMs });
  }

  cancel(timer: ServerTimer): void {
    const id = this.s.timers[timer];
    if (id === undefined) return;
    delete this.s.timers[timer];
    this.emit({ type: "cancel-timer", server: this.name, timer, id });
  }

  /** Enters a state: cancels the timers that do not belong there and ends a probe left running. */
  go(state: ServerState, reason: StateReason): void {
    for (const timer of Object.keys(this.s.timers) as ServerTimer[]) {
      if (!timersOf[state].includes(timer)) this.cancel(timer);
    }
    if (this.s.probing && state !== "starting") {
      this.s.probing = false;
      this.emit({ type: "stop-probe", server: this.name });
    }
    if (this.s.liveness !== null && state !== "ready") {
      this.s.liveness = null;
      this.emit({ type: "stop-liveness", server: this.name });
    }
    if (state !== this.s.state) this.s.since = this.now;
    this.s.state = state;
    this.s.reason = reason;
  }
}

// ---- actions shared by several cells ----------------------------------------------------------

function beginStart(t: Transition, reason: StateReason): void {
  const { s, now } = t;
  t.go("starting", reason);
  s.desired = "up";
  s.pid = null;
  s.startedAt = null;
  s.readyAt = null;
  s.failure = null;
  s.killed = false;
  s.startHistory = pruneStartHistory([...s.startHistory, now], s.spec.restart, now);
  t.log("info", "starting", reason === "auto-restart" ? `restarting (restart ${s.restarts})` : "starting");
  if (s.spec.preStart) t.emit({ type: "run-pre-start", server: t.name, argv: s.spec.preStart });
  t.emit({ type: "spawn", server: t.name, spec: s.spec });
  t.arm("start-timeout", s.spec.startTimeoutMs);
}

/** An operator's (or the supervisor's) start from rest: the backoff and the burst count begin anew. */
function freshStart(t: Transition, reason: StateReason): void {
  t.s.streak = 0;
  t.s.startHistory = [];
  beginStart(t, reason);
}

/** Signals the process (if it exists yet) and waits in stopping; a pending spawn is signalled when it reports. */
function beginStop(t: Transition, desired: DesiredState, reason: StateReason): void {
  const { s } = t;
  t.go("stopping", reason);
  s.desired = desired;
  s.failure = null;
  s.killed = false;
  t.log("info", "stopping", reason === "restart-requested" ? "restarting: stopping" : "stopping");
  if (s.pid !== null) signalStop(t);
}

function signalStop(t: Transition): void {
  t.emit({ type: "signal", server: t.name, pid: t.s.pid!, signal: t.s.spec.stopSignal });
  t.arm("stop-timeout", t.s.spec.stopTimeoutMs);
}

/** The start went wrong while the process runs: stop it, and judge its exit as this failure. */
function failStart(t: Transition, cause: "start-timeout" | "readiness-failed", message: string): void {
  t.log("warn", cause, message);
  t.go("stopping", cause);
  t.s.failure = cause;
  signalStop(t);
}

function hardKill(t: Transition): void {
  const { s } = t;
  t.go("stopping", "hard-kill");
  s.desired = "down";
  s.failure = null;
  s.killed = true;
  t.cancel("stop-timeout");
  t.log("warn", "killing", "SIGKILL");
  if (s.pid !== null) t.emit({ type: "kill", server: t.name, pid: s.pid });
}

function becomeReady(t: Transition): void {
  const { s, now } = t;
  s.readyAt = now;
  t.go("ready", "ready");
  t.arm("stable", s.spec.restart.resetAfterMs);
  t.log("info", "ready", `ready in ${formatMs(now - (s.startedAt ?? now))}`);
  if (s.spec.liveness && s.pid !== null) {
    s.liveness = startLiveness(now);
    t.emit({ type: "start-liveness", server: t.name, pid: s.pid, liveness: s.spec.liveness });
  }
}

/** A liveness ping's outcome: counted; an unresponsive server is reported, and aborted when the spec says so. */
function pinged(t: Transition, server: Server, event: Extract<ServerEvent, { type: "ping" }>): ServerStep {
  const spec = server.spec.liveness;
  if (server.state !== "ready" || server.liveness === null || !spec || event.pid !== server.pid) {
    return { server, effects: [], ignored: "no liveness check of this process" };
  }
  const outcome = event.rttMs === null ? { ok: false as const, error: event.error ?? "no answer" } : { ok: true as const, rttMs: event.rttMs };
  const { liveness, change } = recordPing(server.liveness, spec, event.now, outcome);
  t.s.liveness = liveness;
  if (change === "responsive") t.log("info", "responsive", `answers ping again (${formatRtt(event.rttMs ?? 0)})`);
  if (change === "unresponsive") {
    t.log("warn", "unresponsive", `unresponsive (MOVING): ${liveness.failures} ping(s) in a row failed: ${liveness.lastError}`);
    // SIGABRT leaves a core to look at; the stop timeout then brings SIGKILL, and the exit is judged
    // by the restart policy as a failure.
    if (spec.onUnresponsive === "restart") {
      t.go("stopping", "unresponsive");
      t.s.failure = "unresponsive";
      t.log("warn", "stopping", "aborting it (SIGABRT), as onUnresponsive: restart says");
      t.emit({ type: "signal", server: t.name, pid: t.s.pid!, signal: SIGABRT });
      t.arm("stop-timeout", t.s.spec.stopTimeoutMs);
    }
  }
  return { server: t.s, effects: t.effects, ignored: null };
}

const SIGABRT = 6;

/** A ping's round trip for a person: "0.42 ms". */
export function formatRtt(ms: number): string {
  return ms < 10 ? `${ms.toFixed(2)} ms` : formatMs(ms);
}

/** Records a finished process, runs postStop and returns what the restart decision needs. */
function recordExit(t: Transition, event: Extract<ServerEvent, { type: "exited" }>, reason: StateReason, level: LogLevel): Termination {
  const { s, now } = t;
  const uptimeMs = s.startedAt === null ? null : now - s.startedAt;
  s.lastExit = { at: now, code: event.code, signal: event.signal, errno: null, reason, uptimeMs };
  s.pid = null;
  t.log(level, "exited", `${describeServerExit(s.lastExit)} after ${formatMs(uptimeMs ?? 0)}`);
  if (s.spec.postStop) {
    t.emit({ type: "run-post-stop", server: t.name, argv: s.spec.postStop, code: event.code, signal: event.signal });
  }
  const cause: FailureCause = event.signal !== null ? "killed-by-signal" : "exited";
  return { cause, code: event.code, signal: event.signal, uptimeMs };
}

/** The process is gone while the server was wanted up: restart after a backoff, stay stopped, or fail. */
function judge(t: Transition, termination: Termination): void {
  const { s, now } = t;
  const decision = decideRestart(s.spec.restart, termination, { now, streak: s.streak, startHistory: s.startHistory });
  switch (decision.action) {
    case "restart":
      s.streak += 1;
      t.go("backoff", termination.cause);
      t.arm("backoff", decision.delayMs);
      t.log("info", "restarting", `restarting in ${formatMs(decision.delayMs)}`);
      return;
    case "stay-stopped":
      t.go("stopped", termination.cause);
      t.log("info", "stopped", "stopped (clean exit, not restarted)");
      return;
    case "give-up": {
      const reason = decision.reason === "policy" ? termination.cause : decision.reason;
      t.go("failed", reason);
      t.log("error", "failed", `failed: ${reason}`);
      return;
    }
  }
}

function exitWhileRunning(t: Transition, event: Extract<ServerEvent, { type: "exited" }>): void {
  if (event.pid !== t.s.pid) return t.ignore(`exit of pid ${event.pid}, not ours`);
  const clean = event.signal === null && event.code === 0;
  const termination = recordExit(t, event, event.signal !== null ? "killed-by-signal" : "exited", clean ? "info" : "warn");
  if (t.s.desired === "down") {
    t.go("stopped", termination.cause);
    t.log("info", "stopped", "stopped");
  } else {
    judge(t, termination);
  }
}

function exitWhileStopping(t: Transition, event: Extract<ServerEvent, { type: "exited" }>): void {
  const { s } = t;
  if (event.pid !== s.pid) return t.ignore(`exit of pid ${event.pid}, not ours`);
  const termination = recordExit(t, event, s.reason, "info");
  if (s.desired === "down") {
    t.go("stopped", s.reason);
    t.log("info", "stopped", "stopped");
  } else if (s.failure !== null) {
    judge(t, { ...termination, cause: s.failure });
  } else {
    beginStart(t, "restart-requested");
  }
}

function spawnFailed(t: Transition, event: Extract<ServerEvent, { type: "spawn-failed" }>): void {
  const { s, now } = t;
  s.lastExit = { at: now, code: null, signal: null, errno: event.errno, reason: "exec-failed", uptimeMs: null };
  t.log("error", "exec-failed", `exec failed: ${event.errno}${event.syscall ? ` (${event.syscall})` : ""}`);
  if (s.state === "stopping") {
    // Nothing ran, so there is nothing to stop: settle as the stop (or restart) asked.
    if (s.desired === "up") return beginStart(t, "restart-requested");
    t.go("stopped", s.reason);
    t.log("info", "stopped", "stopped");
    return;
  }
  judge(t, { cause: "exec-failed", code: null, signal: null, uptimeMs: null });
}

/** A spawn reported where none is pending: a process we do not track, so it is killed at once. */
function strayProcess(t: Transition, event: Extract<ServerEvent, { type: "spawned" }>): void {
  t.emit({ type: "kill", server: t.name, pid: event.pid });
  t.log("warn", "unexpected", `unexpected spawned pid ${event.pid} in ${t.s.state}: killed`);
}

function pin(t: Transition, event: Extract<ServerEvent, { type: "pin" }>): void {
  t.s.pin = event.pin;
  t.log("info", "pin", `pinned ${event.pin}`);
}

// The cells below act on the request as if it came unpinned: setting the pin first is what makes the
// guard in step() refuse later requests that go against it.
// A request the row ignores still leaves the pin changed, which is a change worth keeping.
function pinAndStart(row: () => Row): Cell<"pin-started"> {
  return (t, event) => {
    const changed = t.s.pin !== event.pin;
    pin(t, event);
    row().start(t, { type: "start", now: event.now });
    if (changed) t.ignored = null;
  };
}
function pinAndStop(row: () => Row): Cell<"pin-stopped"> {
  return (t, event) => {
    const changed = t.s.pin !== event.pin;
    pin(t, event);
    row().stop(t, { type: "stop", now: event.now, force: true });
    if (changed) t.ignored = null;
  };
}

function unpin(t: Transition): void {
  if (t.s.pin === null) return t.ignore("not pinned");
  t.s.pin = null;
  t.log("info", "pin", "unpinned");
}

function ignore(why: string): (t: Transition) => void {
  return (t) => t.ignore(why);
}

/**
 * Sets desired without acting on the process; ignored when it already was. Wanting down also drops
 * a pending failure verdict (a stopping server that was to be judged and restarted now just stops).
 */
function want(desired: DesiredState, alreadyWhy: string): (t: Transition) => void {
  return (t) => {
    const { s } = t;
    if (s.desired === desired && (desired === "up" || s.failure === null)) return t.ignore(alreadyWhy);
    s.desired = desired;
    if (desired === "down") s.failure = null;
  };
}

// Timers that cannot be armed in a state: step() already drops their events as stale (their id
// does not match), so these cells only document that.
const notArmed = ignore("timer not armed in this state");
const noProcess = ignore("no process");

// ---- the table --------------------------------------------------------------------------------

const stopped: Row = {
  start: (t) => freshStart(t, "start-requested"),
  stop: want("down", "already stopped"),
  restart: (t) => freshStart(t, "restart-requested"),
  spawned: strayProcess,
  "spawn-failed": ignore("no spawn pending"),
  ready: noProcess,
  "probe-failed": noProcess,
  exited: noProcess,
  "start-timeout": notArmed,
  "stop-timeout": notArmed,
  backoff: notArmed,
  stable: notArmed,
  "pin-started": pinAndStart(() => stopped),
  "pin-stopped": pinAndStop(() => stopped),
  unpin,
  "stop-queued": want("down", "already stopped"),
  kill: noProcess,
  "dependency-failed": (t, event) => {
    t.go("failed", "dependency-failed");
    t.s.desired = "up";
    t.log("error", "failed", `not started: ${event.dependency} failed`);
  },
};

const starting: Row = {
  start: ignore("already starting"),
  stop: (t) => beginStop(t, "down", "stop-requested"),
  restart: (t) => beginStop(t, "up", "restart-requested"),
  spawned: (t, event) => {
    const { s, now } = t;
    if (s.pid !== null) return strayProcess(t, event);
    s.pid = event.pid;
    s.startedAt = now;
    t.log("info", "started", `started pid ${event.pid}`);
    if (s.spec.readiness.kind === "none") return becomeReady(t);
    s.probing = true;
    t.emit({ type: "start-probe", server: t.name, pid: event.pid, probe: s.spec.readiness });
  },
  "spawn-failed": (t, event) => {
    if (t.s.pid !== null) return t.ignore("already spawned");
    spawnFailed(t, event);
  },
  ready: (t) => {
    if (t.s.pid === null) return t.ignore("ready before spawned");
    t.s.probing = false; // the probe reported, so the runtime has ended it
    becomeReady(t);
  },
  "probe-failed": (t, event) => {
    if (t.s.pid === null) return t.ignore("probe failed before spawned");
    t.s.probing = false;
    failStart(t, "readiness-failed", `readiness probe failed: ${event.message}`);
  },
  exited: exitWhileRunning,
  "start-timeout": (t) => {
    const { s, now } = t;
    if (s.pid !== null) return failStart(t, "start-timeout", `not ready after ${formatMs(s.spec.startTimeoutMs)}`);
    // The spawn never reported: give up on it (a late `spawned` is killed as a stray).
    s.lastExit = { at: now, code: null, signal: null, errno: null, reason: "start-timeout", uptimeMs: null };
    t.log("warn", "start-timeout", `spawn not reported after ${formatMs(s.spec.startTimeoutMs)}`);
    judge(t, { cause: "start-timeout", code: null, signal: null, uptimeMs: null });
  },
  "stop-timeout": notArmed,
  backoff: notArmed,
  stable: notArmed,
  "pin-started": pinAndStart(() => starting),
  "pin-stopped": pinAndStop(() => starting),
  unpin,
  "stop-queued": want("down", "already wanted down"),
  kill: hardKill,
  "dependency-failed": ignore("already started"),
};

const ready: Row = {
  start: ignore("already ready"),
  stop: (t) => beginStop(t, "down", "stop-requested"),
  restart: (t) => beginStop(t, "up", "restart-requested"),
  spawned: strayProcess,
  "spawn-failed": ignore("no spawn pending"),
  ready: ignore("already ready"),
  "probe-failed": ignore("already ready"),
  exited: exitWhileRunning,
  "start-timeout": notArmed,
  "stop-timeout": notArmed,
  backoff: notArmed,
  stable: (t) => {
    // It stayed ready long enough: the next failure is treated as a first one again.
    t.s.streak = 0;
    t.log("debug", "backoff-reset", `stable for ${t.s.spec.restart.resetAfterMs} ms: backoff reset`);
  },
  "pin-started": pinAndStart(() => ready),
  "pin-stopped": pinAndStop(() => ready),
  unpin,
  "stop-queued": want("down", "already wanted down"),
  kill: hardKill,
  "dependency-failed": ignore("already started"),
};

const stopping: Row = {
  start: want("up", "will start again once stopped"),
  stop: (t) => {
    const { s } = t;
    if (s.desired === "down" && s.failure === null) return t.ignore("already stopping");
    s.desired = "down";
    s.failure = null;
    if (!s.killed) s.reason = "stop-requested";
  },
  restart: want("up", "will start again once stopped"),
  spawned: (t, event) => {
    const { s, now } = t;
    if (s.pid !== null) return strayProcess(t, event);
    // The spawn was still pending when the stop came: stop the process now that it exists.
    s.pid = event.pid;
    s.startedAt = now;
    t.log("info", "started", `started pid ${event.pid} while stopping`);
    if (s.killed) t.emit({ type: "kill", server: t.name, pid: event.pid });
    else signalStop(t);
  },
  "spawn-failed": (t, event) => {
    if (t.s.pid !== null) return t.ignore("already spawned");
    spawnFailed(t, event);
  },
  ready: ignore("stopping"),
  "probe-failed": ignore("stopping"),
  exited: exitWhileStopping,
  "start-timeout": notArmed,
  "stop-timeout": (t) => {
    const { s } = t;
    s.killed = true;
    s.reason = "stop-timeout";
    t.log("warn", "stop-timeout", `did not stop within ${s.spec.stopTimeoutMs} ms: SIGKILL`);
    t.emit({ type: "kill", server: t.name, pid: s.pid! });
  },
  backoff: notArmed,
  stable: notArmed,
  "pin-started": pinAndStart(() => stopping),
  "pin-stopped": pinAndStop(() => stopping),
  unpin,
  "stop-queued": (t) => stopping.stop(t, { type: "stop", now: t.now }),
  kill: (t) => {
    if (t.s.killed) return t.ignore("already killed");
    hardKill(t);
  },
  "dependency-failed": ignore("already started"),
};

const backoff: Row = {
  start: (t) => beginStart(t, "start-requested"),
  stop: (t) => {
    t.go("stopped", "stop-requested");
    t.s.desired = "down";
    t.log("info", "stopped", "stopped (restart cancelled)");
  },
  restart: (t) => beginStart(t, "restart-requested"),
  spawned: strayProcess,
  "spawn-failed": ignore("no spawn pending"),
  ready: noProcess,
  "probe-failed": noProcess,
  exited: noProcess,
  "start-timeout": notArmed,
  "stop-timeout": notArmed,
  backoff: (t) => {
    t.s.restarts += 1;
    beginStart(t, "auto-restart");
  },
  stable: notArmed,
  "pin-started": pinAndStart(() => backoff),
  "pin-stopped": pinAndStop(() => backoff),
  unpin,
  "stop-queued": (t) => backoff.stop(t, { type: "stop", now: t.now }),
  kill: (t) => {
    t.go("stopped", "hard-kill");
    t.s.desired = "down";
    t.log("info", "stopped", "stopped (restart cancelled)");
  },
  "dependency-failed": ignore("already started"),
};

const failed: Row = {
  start: (t) => freshStart(t, "start-requested"),
  stop: want("down", "already not running"),
  restart: (t) => freshStart(t, "restart-requested"),
  spawned: strayProcess,
  "spawn-failed": ignore("no spawn pending"),
  ready: noProcess,
  "probe-failed": noProcess,
  exited: noProcess,
  "start-timeout": notArmed,
  "stop-timeout": notArmed,
  backoff: notArmed,
  stable: notArmed,
  "pin-started": pinAndStart(() => failed),
  "pin-stopped": pinAndStop(() => failed),
  unpin,
  "stop-queued": want("down", "already not running"),
  kill: noProcess,
  "dependency-failed": ignore("already failed"),
};

const table: Record<ServerState, Row> = { stopped, starting, ready, stopping, backoff, failed };
