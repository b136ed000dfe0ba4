// The per-server state machine, s6/dinit style: one explicit table of states × events.
//
// step(server, event) -> { server, effects, ignored } is pure: time comes in with every event, and
// everything that touches the world (spawning, signals, timers, probes, hooks, log lines) goes out
// as plain-data effects for the runtime to execute. The runtime feeds back what happened
// (spawned, spawn-failed, ready, probe-failed, exited, hook-spawned, hook-exited, timer) as further
// events; the effects of one step never wait for each other.
//
// Desired state ("up" / "down") is kept apart from the current state, as dinit does: a stop
// request while starting is an ordinary event (the process is signalled and the server goes to
// stopping), and a start request while stopping only flips `desired`, so the server starts again
// once the old process is gone.
//
// The hooks are sub-states, as systemd's start-pre and stop-post are: preStart runs while the server
// is starting (before its own process is spawned), postStop while it is stopping (after its process
// ended, also after a crash: the restart verdict waits for it). A hook has its own pid, its own
// timeout and is stopped like the server (its process group, TERM, grace, KILL). Every state a
// server waits in has a timer armed; only stopped, failed and ready wait for nothing.
//
// A server the runtime put in a cgroup of its own (its `spawned` event names it) is signalled and
// killed as a whole (every process of the cgroup), and its run is over only when its main process has
// ended *and* its cgroup is empty (`cgroup-empty`): a main process that ends with processes left
// has those stopped like a server (stop signal, grace, KILL). A `forking` server's launcher exits 0
// and leaves a daemon whose main process the runtime finds (`main-pid`). A server with a watchdog is
// aborted (SIGABRT) when no keep-alive came for a period while it was ready.

import { recordPing, startLiveness, type Liveness } from "./liveness";
import { signalName } from "./signals";
import type { Activation, LivenessSpec, ReadinessProbe, ServerSpec } from "./types";
import { decideRestart, pruneStartHistory, type FailureCause, type Termination } from "./restart";

/** listening: socket activation (lazy or accept); no process of its own, the init watches its sockets. */
export type ServerState = "stopped" | "starting" | "ready" | "stopping" | "backoff" | "failed" | "listening";
export type DesiredState = "up" | "down";
/** The Starter's word for a state: it reports every server without a process as FAULT. */
export type StarterState = "ON" | "MOVING" | "FAULT";
/** A pinned server gets no automatic start (pinned stopped) or stop (pinned started). */
export type Pin = "started" | "stopped" | null;
/** A command run around the server's own process: preStart while starting, postStop while stopping. */
export type Hook = "pre-start" | "post-stop";

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
  | "dependency-failed"
  | "post-stop-timeout" // postStop did not finish within postStopTimeoutMs and was stopped
  | "kill-timeout" // still alive a stop timeout after SIGKILL (uninterruptible?): no longer waited for
  | "socket-activated" // a connection on its sockets started it (activation: lazy)
  | "idle-stop"; // no connection for idleStop: stopped, to start again at the next one

export type ServerTimer = "pre-start-timeout" | "start-timeout" | "stop-timeout" | "post-stop-timeout" | "backoff" | "stable" | "idle" | "watchdog";

/** forking: where the daemon of the current run is (null for a simple server, or before a spawn). */
export type DaemonPhase = "launching" | "seeking" | "found";

/** While ready with a watchdog: when the last keep-alive came (the start of the period), and how many came. */
export interface WatchdogState {
  lastAt: number;
  pets: number;
}

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
  /** While stopping: the failure that made us stop it (start-timeout, readiness-failed, pre-start-timeout), so its end is judged as one. */
  failure: FailureCause | null;
  /** While stopping: SIGKILL has been sent to the process waited for (or will be, as soon as its pending spawn reports its pid). */
  killed: boolean;
  /** A readiness probe is running (started at spawn, ended by the runtime when it reports). */
  probing: boolean;
  /** While ready with a liveness check: what its pings say (core/liveness.ts); null otherwise. */
  liveness: Liveness | null;
  /** The hook running now (preStart while starting, postStop while stopping), or null. */
  hook: Hook | null;
  /** The hook's process (and process group); null while its spawn is pending. */
  hookPid: number | null;
  /** While postStop runs after a crash: the restart verdict on the run, applied once postStop is done. */
  verdict: Termination | null;
  /** The shutdown deadline has passed: no postStop is started any more. */
  final: boolean;
  /** Armed timers and their ids; a timer event whose id differs is stale. */
  timers: Partial<Record<ServerTimer, number>>;
  nextTimerId: number;

  // ---- socket activation ----
  /** The runtime watches the server's sockets for a connection (listening: lazy, or accept below maxInstances). */
  watching: boolean;
  /** accept: the instances running, one per connection (each its own process group). */
  instances: number[];
  /** accept: instance spawns asked for (spawn-instance) and not reported yet. */
  pendingInstances: number;
  /** Connections that started it (lazy) or an instance (accept), since the supervisor started. */
  activations: number;
  /** lazy with idleStop, while ready: when a check last saw a connection (or when it became ready). */
  quietSince: number | null;
  // ---- cgroups, daemons, watchdog ----
  /** The cgroup the current run's processes are in (the runtime placed them), or null. */
  cgroup: string | null;
  /** Processes are left in that cgroup: from `spawned` until the runtime reports it empty. */
  populated: boolean;
  /** forking: launcher running, daemon being looked for, or found (then pid is the daemon's). */
  daemon: DaemonPhase | null;
  /** While ready with a watchdog (spec.watchdogMs): its keep-alives; null otherwise. */
  watchdog: WatchdogState | null;
}

export type ServerEvent =
  | { type: "start"; now: number }
  /** force: a stop that a pin does not refuse (shutdown, removal from the config). */
  | { type: "stop"; now: number; force?: boolean }
  | { type: "restart"; now: number }
  /** cgroup: the cgroup the runtime placed the process in (null or absent: none). */
  | { type: "spawned"; now: number; pid: number; cgroup?: string | null }
  | { type: "spawn-failed"; now: number; errno: string; syscall?: string }
  | { type: "ready"; now: number }
  | { type: "probe-failed"; now: number; message: string }
  /** oomKilled: the runtime saw its cgroup's OOM killer end it (memory.events). */
  | { type: "exited"; now: number; pid: number; code: number | null; signal: number | null; oomKilled?: boolean }
  /** The hook asked for by run-pre-start / run-post-stop runs as pid. */
  | { type: "hook-spawned"; now: number; pid: number }
  | { type: "hook-spawn-failed"; now: number; errno: string; syscall?: string }
  | { type: "hook-exited"; now: number; pid: number; code: number | null; signal: number | null }
  | { type: "timer"; now: number; timer: ServerTimer; id: number }
  | { type: "pin"; now: number; pin: "started" | "stopped" }
  | { type: "unpin"; now: number }
  /** Desired becomes down without acting yet: a stop will follow (shutdown order); no more restarts. */
  | { type: "stop-queued"; now: number }
  /** SIGKILL now (Starter's HardKillServer); final: the shutdown deadline, after which no postStop runs. */
  | { type: "kill"; now: number; final?: boolean }
  /** Sent by the supervisor to a server it was going to start whose required server failed. */
  | { type: "dependency-failed"; now: number; dependency: string }
  /** A liveness ping of process `pid` ended: answered in rttMs, or not (rttMs null, with why). */
  | { type: "ping"; now: number; pid: number; rttMs: number | null; error?: string }
  // ---- socket activation ----
  /** A connection (or datagram) waits on the server's socket number `socket` (0-based) while the runtime watches them. */
  | { type: "socket-activity"; now: number; socket: number }
  /** accept: the instance asked for by spawn-instance runs as pid (its connection on fds 0 and 1). */
  | { type: "instance-spawned"; now: number; pid: number }
  /** accept: no instance was started: nothing to accept (EAGAIN), or accept or the spawn failed. */
  | { type: "instance-spawn-failed"; now: number; errno: string; syscall?: string }
  | { type: "instance-exited"; now: number; pid: number; code: number | null; signal: number | null }
  /** The runtime's answer to check-idle: whether a connection is open on, or waits at, the server's sockets. */
  | { type: "idle-check"; now: number; busy: boolean }
  /** The run's cgroup has no process left (cgroup.events: populated 0). */
  | { type: "cgroup-empty"; now: number }
  /** forking: the daemon's main process, as the runtime found it (pidFile, cgroup); null: none, with why. */
  | { type: "main-pid"; now: number; pid: number | null; error?: string }
  /** sd_notify from the server: WATCHDOG=1 (a keep-alive), or WATCHDOG=trigger (abort it now). */
  | { type: "keep-alive"; now: number; trigger?: boolean };

export type LogLevel = "debug" | "info" | "warn" | "error";
export type ServerLogKind =
  | "starting"
  | "pre-start"
  | "pre-start-failed"
  | "pre-start-timeout"
  | "started"
  | "ready"
  | "exited"
  | "exec-failed"
  | "restarting"
  | "stopping"
  | "post-stop"
  | "post-stop-timeout"
  | "stopped"
  | "failed"
  | "start-timeout"
  | "readiness-failed"
  | "stop-timeout"
  | "killing"
  | "kill-timeout"
  | "backoff-reset"
  | "pin"
  | "unresponsive"
  | "responsive"
  | "unexpected"
  | "listening"
  | "activated"
  | "instance"
  | "idle-stop"
  | "main-pid" // forking: the launcher is done, the daemon looked for or found
  | "remains" // the main process is gone, processes of its cgroup are left
  | "watchdog"; // no keep-alive within the watchdog period

/**
 * What the runtime must do. The effects of one step are independent: the runtime executes them in
 * order without waiting for any of them (a hook is a process like the server; its end comes back as
 * hook-exited). Timers are identified by (server, timer, id). signal and kill reach a process group:
 * the server's or a hook's.
 */
export type ServerEffect =
  | { type: "run-pre-start"; server: string; argv: string[] }
  | { type: "spawn"; server: string; spec: ServerSpec }
  | { type: "start-probe"; server: string; pid: number; probe: ReadinessProbe }
  | { type: "stop-probe"; server: string }
  /** Ping the admin device of `pid` as the spec says, reporting each outcome as a `ping` event, until stop-liveness. */
  | { type: "start-liveness"; server: string; pid: number; liveness: LivenessSpec }
  | { type: "stop-liveness"; server: string }
  /** kill(-pid, signal): the signal goes to the process group. */
  | { type: "signal"; server: string; pid: number; signal: number }
  /** kill(-pid, SIGKILL). */
  | { type: "kill"; server: string; pid: number }
  | { type: "run-post-stop"; server: string; argv: string[]; code: number | null; signal: number | null }
  /** Every process of the cgroup gets the signal (SIGKILL: all at once, cgroup.kill). */
  | { type: "signal-cgroup"; server: string; cgroup: string; signal: number }
  /** forking: find the daemon's main process (the pidFile, else the cgroup) and report it as `main-pid`. */
  | { type: "find-main-pid"; server: string; cgroup: string | null; pidFile: string | null }
  | { type: "arm-timer"; server: string; timer: ServerTimer; id: number; at: number }
  | { type: "cancel-timer"; server: string; timer: ServerTimer; id: number }
  | { type: "log"; server: string; level: LogLevel; kind: ServerLogKind; message: string }
  // ---- socket activation ----
  /** Watch the server's listening sockets; each connection or datagram is reported as socket-activity until unwatch-sockets. */
  | { type: "watch-sockets"; server: string }
  | { type: "unwatch-sockets"; server: string }
  /** accept: accept one connection on socket number `socket` and start an instance with it on fds 0 and 1. */
  | { type: "spawn-instance"; server: string; socket: number }
  /** Look whether a connection is open on or waits at the server's sockets; answered by an idle-check event. */
  | { type: "check-idle"; server: string };

export interface ServerStep {
  server: Server;
  effects: ServerEffect[];
  /** Set when the event changed nothing: why it was ignored (for a debug log). */
  ignored: string | null;
}

/** Hooks are shell-like commands: they get SIGTERM whatever the server's own stop signal is. */
const HOOK_STOP_SIGNAL = 15;

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
    hook: null,
    hookPid: null,
    verdict: null,
    final: false,
    timers: {},
    nextTimerId: 1,
    watching: false,
    instances: [],
    pendingInstances: 0,
    activations: 0,
    quietSince: null,
    cgroup: null,
    populated: false,
    daemon: null,
    watchdog: null,
  };
}

export function starterState(state: ServerState): StarterState {
  switch (state) {
    case "ready":
    case "listening": // what it serves is there: a connection starts it
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
  if (exit.reason === "oom-killed") return "killed by the OOM killer";
  if (exit.signal !== null) return `killed by ${signalName(exit.signal)}`;
  if (exit.code !== null) return `exited with code ${exit.code}`;
  return exit.reason;
}

/** Stopped or failed: no process and no restart coming. */
export function isDown(server: Server): boolean {
  return server.state === "stopped" || server.state === "failed";
}

/** No process (neither the server's nor a hook's, nor an accept instance), and none about to be spawned. */
export function hasNoProcess(server: Server): boolean {
  if (server.state === "listening") return server.instances.length === 0 && server.pendingInstances === 0;
  return server.state === "stopped" || server.state === "failed" || server.state === "backoff";
}

/** States that wait for nothing: no timer needs to be armed in them. Every other state has a deadline. */
export function isAtRest(server: Server): boolean {
  return server.state === "stopped" || server.state === "failed" || server.state === "ready" || server.state === "listening";
}

/** The process the server waits on now: its hook's while one runs, else its own (null while a spawn is pending). */
export function currentPid(server: Server): number | null {
  return server.hook !== null ? server.hookPid : server.pid;
}

// ---- one step ---------------------------------------------------------------------------------

/** The column of the table an event falls in: timers by kind, pins by direction. */
export type Column = Exclude<ServerEvent["type"], "timer" | "pin" | "ping" | "keep-alive"> | ServerTimer | "pin-started" | "pin-stopped";

function columnOf(event: Exclude<ServerEvent, { type: "ping" | "keep-alive" }>): Column {
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
  // Liveness and the watchdog's keep-alives are machines of their own beside the table, as pins are a policy over it.
  if (event.type === "ping") return pinged(t, server, event);
  if (event.type === "keep-alive") return keptAlive(t, server, event);
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
  starting: ["pre-start-timeout", "start-timeout"],
  ready: ["stable", "idle", "watchdog"],
  stopping: ["stop-timeout", "post-stop-timeout"],
  backoff: ["backoff"],
  failed: [],
  listening: [],
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
    // Socket activation: its sockets are watched only while it listens.
    if (this.s.watching && state !== "listening") stopWatching(this);
    if (state !== "ready") this.s.watchdog = null;
    if (state !== this.s.state) this.s.since = this.now;
    this.s.state = state;
    this.s.reason = reason;
  }
}

// ---- actions shared by several cells ----------------------------------------------------------

function beginStart(t: Transition, reason: StateReason): void {
  const { s, now } = t;
  // A lazy or accept server listens: its own process (or an instance) starts at a connection.
  if (activationOf(s.spec) !== "eager" && reason !== "socket-activated") return listen(t, reason);
  t.go("starting", reason);
  s.desired = "up";
  s.pid = null;
  s.startedAt = null;
  s.readyAt = null;
  s.failure = null;
  s.killed = false;
  s.hook = null;
  s.hookPid = null;
  s.verdict = null;
  s.cgroup = null;
  s.populated = false;
  s.daemon = null;
  s.startHistory = pruneStartHistory([...s.startHistory, now], s.spec.restart, now);
  t.log("info", "starting", reason === "auto-restart" ? `restarting (restart ${s.restarts})` : "starting");
  if (s.spec.preStart) {
    // The server's own spawn waits for preStart's exit, which comes back as an event: nothing else waits.
    s.hook = "pre-start";
    t.emit({ type: "run-pre-start", server: t.name, argv: s.spec.preStart });
    t.arm("pre-start-timeout", s.spec.preStartTimeoutMs);
    return;
  }
  spawnServer(t);
}

/**
 * The server's spawn has been reported in this run: its process runs, or ended leaving processes in
 * its cgroup, or left a daemon looked for (a hook running is not the server's spawn).
 */
function spawnReported(s: Server): boolean {
  return s.pid !== null || (s.hook === null && s.startedAt !== null);
}

/** The process of a `spawned` event is in this cgroup (and so the run is, until it is empty). */
function joinCgroup(s: Server, event: Extract<ServerEvent, { type: "spawned" }>): void {
  s.cgroup = event.cgroup ?? null;
  s.populated = s.cgroup !== null;
}

function spawnServer(t: Transition): void {
  t.emit({ type: "spawn", server: t.name, spec: t.s.spec });
  t.arm("start-timeout", t.s.spec.startTimeoutMs);
}

/** An operator's (or the supervisor's) start from rest: the backoff and the burst count begin anew. */
function freshStart(t: Transition, reason: StateReason): void {
  t.s.streak = 0;
  t.s.startHistory = [];
  beginStart(t, reason);
}

/**
 * Signals the process waited on (the server's, or its preStart's) and waits in stopping. The stop
 * timeout is armed even while a spawn is pending: a spawn that never reports is given up then.
 */
function beginStop(t: Transition, desired: DesiredState, reason: StateReason): void {
  const { s } = t;
  t.go("stopping", reason);
  s.desired = desired;
  s.failure = null;
  s.verdict = null;
  s.killed = false;
  t.log("info", "stopping", reason === "restart-requested" ? "restarting: stopping" : "stopping");
  signalStop(t);
}

/**
 * TERM (the server's stop signal; SIGTERM for a hook) to what is waited on, if it exists yet, and the
 * grace before KILL: every process of the server's cgroup when it has one, else the process (group).
 */
function signalStop(t: Transition): void {
  const { s } = t;
  const pid = currentPid(s);
  if (waitsForCgroup(s)) t.emit({ type: "signal-cgroup", server: t.name, cgroup: s.cgroup!, signal: s.spec.stopSignal });
  else if (pid !== null) t.emit({ type: "signal", server: t.name, pid, signal: s.hook === null ? s.spec.stopSignal : HOOK_STOP_SIGNAL });
  for (const instance of s.instances) t.emit({ type: "signal", server: t.name, pid: instance, signal: s.spec.stopSignal });
  t.arm("stop-timeout", s.spec.stopTimeoutMs);
}

/** The server's own processes are waited for (no hook runs) and its cgroup still holds some. */
function waitsForCgroup(s: Server): boolean {
  return s.hook === null && s.cgroup !== null && s.populated;
}

/** SIGKILL to what is waited on: the whole cgroup, else the process (group); false when nothing exists yet. */
function killWaited(t: Transition): boolean {
  const { s } = t;
  const pid = currentPid(s);
  if (waitsForCgroup(s)) t.emit({ type: "signal-cgroup", server: t.name, cgroup: s.cgroup!, signal: SIGKILL });
  else if (pid !== null) t.emit({ type: "kill", server: t.name, pid });
  else return false;
  return true;
}

/** The start went wrong while a process runs (the server, or preStart): stop it, and judge its end as this failure. */
function failStart(t: Transition, cause: "start-timeout" | "readiness-failed" | "pre-start-timeout" | "no-main-process", message: string): void {
  t.log("warn", cause === "no-main-process" ? "main-pid" : cause, message);
  t.go("stopping", cause);
  t.s.failure = cause;
  signalStop(t);
}

function hardKill(t: Transition, final: boolean): void {
  const { s } = t;
  t.go("stopping", "hard-kill");
  s.desired = "down";
  s.failure = null;
  s.verdict = null;
  s.killed = true;
  if (final) s.final = true;
  t.cancel("post-stop-timeout");
  t.log("warn", "killing", "SIGKILL");
  killWaited(t);
  for (const instance of s.instances) t.emit({ type: "kill", server: t.name, pid: instance });
  // Even SIGKILL is waited for with a deadline: a process stuck in the kernel is given up then.
  t.arm("stop-timeout", s.spec.stopTimeoutMs);
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
  armIdleCheck(t, true);
  // The watchdog's period counts from ready: keep-alives sent while starting are not waited for.
  if (s.spec.watchdogMs) {
    s.watchdog = { lastAt: now, pets: 0 };
    t.arm("watchdog", s.spec.watchdogMs);
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
    if (spec.onUnresponsive === "restart") abort(t, "unresponsive", "stopping", "aborting it (SIGABRT), as onUnresponsive: restart says");
  }
  return { server: t.s, effects: t.effects, ignored: null };
}

/**
 * SIGABRT to a ready server that stopped answering (liveness) or sending keep-alives (watchdog): it
 * leaves a core to look at; the stop timeout then brings SIGKILL, and the exit is judged by the
 * restart policy as this failure.
 */
function abort(t: Transition, cause: "unresponsive" | "watchdog", kind: ServerLogKind, message: string): void {
  t.go("stopping", cause);
  t.s.failure = cause;
  t.log("warn", kind, message);
  t.emit({ type: "signal", server: t.name, pid: t.s.pid!, signal: SIGABRT });
  t.arm("stop-timeout", t.s.spec.stopTimeoutMs);
}

/** A keep-alive (WATCHDOG=1) moves the watchdog's period on; WATCHDOG=trigger aborts the server at once. */
function keptAlive(t: Transition, server: Server, event: Extract<ServerEvent, { type: "keep-alive" }>): ServerStep {
  if (server.state !== "ready" || server.watchdog === null || server.pid === null) return { server, effects: [], ignored: "no watchdog running" };
  if (event.trigger) {
    abort(t, "watchdog", "watchdog", "WATCHDOG=trigger: aborting it (SIGABRT)");
    return { server: t.s, effects: t.effects, ignored: null };
  }
  // No effect: the watchdog timer, when it fires, looks at when the last keep-alive came.
  t.s.watchdog = { lastAt: event.now, pets: server.watchdog.pets + 1 };
  return { server: t.s, effects: [], ignored: null };
}

const SIGABRT = 6;
const SIGKILL = 9;

/** A ping's round trip for a person: "0.42 ms". */
export function formatRtt(ms: number): string {
  return ms < 10 ? `${ms.toFixed(2)} ms` : formatMs(ms);
}

/** Records a finished process and returns what the restart decision needs. */
function recordExit(t: Transition, event: Extract<ServerEvent, { type: "exited" }>, reason: StateReason, level: LogLevel): Termination {
  const { s, now } = t;
  const uptimeMs = s.startedAt === null ? null : now - s.startedAt;
  const oomKilled = event.oomKilled === true && event.signal !== null;
  s.lastExit = { at: now, code: event.code, signal: event.signal, errno: null, reason: oomKilled ? "oom-killed" : reason, uptimeMs };
  s.pid = null;
  t.log(level, "exited", `${describeServerExit(s.lastExit)} after ${formatMs(uptimeMs ?? 0)}`);
  const cause: FailureCause = oomKilled ? "oom-killed" : event.signal !== null ? "killed-by-signal" : "exited";
  return { cause, code: event.code, signal: event.signal, uptimeMs };
}

/**
 * The server's process is gone: postStop runs now (in stopping) if there is one, and what comes next
 * waits for it; `verdict` is the restart decision's input when the server is still wanted up.
 */
function afterExit(t: Transition, event: { code: number | null; signal: number | null }, verdict: Termination | null): void {
  const { s } = t;
  s.verdict = s.desired === "up" ? verdict : null;
  if (s.spec.postStop === null || s.final) return settle(t);
  t.go("stopping", s.reason);
  t.cancel("stop-timeout");
  s.hook = "post-stop";
  s.hookPid = null;
  s.killed = false;
  t.emit({ type: "run-post-stop", server: t.name, argv: s.spec.postStop, code: event.code, signal: event.signal });
  t.arm("post-stop-timeout", s.spec.postStopTimeoutMs);
}

/** Nothing runs any more (no process, no hook): stopped when wanted down, else the verdict, else start again. */
function settle(t: Transition): void {
  const { s } = t;
  // A failed start whose process was given up (never reported, or unkillable) is still that failure.
  const verdict = s.verdict ?? (s.failure === null ? null : { cause: s.failure, code: null, signal: null, uptimeMs: null });
  s.hook = null;
  s.hookPid = null;
  s.killed = false;
  s.failure = null;
  s.verdict = null;
  // Instance spawns never reported are given up (a late one is killed as a stray).
  s.pendingInstances = 0;
  if (s.desired === "down") {
    t.go("stopped", s.reason);
    t.log("info", "stopped", "stopped");
  } else if (verdict !== null) {
    judge(t, verdict);
  } else {
    beginStart(t, s.reason === "idle-stop" ? "idle-stop" : "restart-requested");
  }
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
      // A lazy server that ended cleanly (its own idle exit, say) listens again: nothing failed.
      if (activationOf(s.spec) !== "eager") return listen(t, termination.cause);
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
  const { s } = t;
  if (event.pid !== s.pid) return t.ignore(`exit of pid ${event.pid}, not ours`);
  const clean = event.signal === null && event.code === 0;
  if (s.daemon === "launching" && clean) return launcherDone(t, event.pid);
  const termination = recordExit(t, event, event.signal !== null ? "killed-by-signal" : "exited", clean ? "info" : "warn");
  // Where it settles when wanted down (shutdown queued its stop): it ended by itself.
  s.reason = termination.cause;
  mainGone(t, event, termination);
}

function exitWhileStopping(t: Transition, event: Extract<ServerEvent, { type: "exited" }>): void {
  const { s } = t;
  if (s.hook !== null || event.pid !== s.pid) return t.ignore(`exit of pid ${event.pid}, not ours`);
  const termination = recordExit(t, event, s.reason, "info");
  // A failed start (start-timeout, readiness-failed) is judged as that failure; a restart request starts again.
  mainGone(t, event, s.failure === null ? null : { ...termination, cause: s.failure });
}

// ---- cgroups and daemons ----------------------------------------------------------------------

/**
 * The main process has ended. Without processes left in its cgroup the run is over; otherwise those
 * are stopped (as a stop would: the stop signal, KILL after the stop timeout) and the run is over
 * when the cgroup is empty, with this verdict.
 */
function mainGone(t: Transition, event: { code: number | null; signal: number | null }, verdict: Termination | null): void {
  const { s } = t;
  if (!waitsForCgroup(s)) return afterExit(t, event, verdict);
  s.verdict = s.desired === "up" ? verdict : null;
  // While stopping, the cgroup has had the stop signal (or SIGKILL) already, and the stop timeout runs.
  if (s.state === "stopping") return;
  t.go("stopping", s.reason);
  t.log("info", "remains", "its main process is gone: stopping the processes left in its cgroup");
  signalStop(t);
}

/** The cgroup is empty: after its main process, the run is over now; before it, its exit (to come) ends the run. */
function cgroupEmptied(t: Transition): void {
  const { s } = t;
  if (!s.populated) return t.ignore("no process left in a cgroup");
  s.populated = false;
  if (s.state !== "stopping" || s.hook !== null || s.pid !== null) return;
  // The processes left after the main one (or a daemon never found) are gone.
  t.cancel("stop-timeout");
  s.killed = false;
  const verdict = s.verdict ?? (s.failure === null ? null : { cause: s.failure, code: null, signal: null, uptimeMs: null });
  afterExit(t, runExit(s), verdict);
}

/** How the main process of the current run ended, if it did (postStop is told). */
function runExit(s: Server): { code: number | null; signal: number | null } {
  const exit = s.lastExit;
  return exit !== null && s.startedAt !== null && exit.at >= s.startedAt ? { code: exit.code, signal: exit.signal } : { code: null, signal: null };
}

/** forking: the launcher exited 0; the daemon it left is looked for (the start timeout still runs). */
function launcherDone(t: Transition, pid: number): void {
  const { s } = t;
  s.pid = null;
  s.daemon = "seeking";
  t.log("debug", "main-pid", `launcher pid ${pid} exited 0: looking for its daemon`);
  t.emit({ type: "find-main-pid", server: t.name, cgroup: s.cgroup, pidFile: s.spec.pidFile ?? null });
}

/** forking: the daemon's main process is known (the server's pid from now on), or there is none. */
function foundMainPid(t: Transition, event: Extract<ServerEvent, { type: "main-pid" }>): void {
  const { s, now } = t;
  if (s.daemon !== "seeking") return t.ignore("no main process looked for");
  if (event.pid === null) {
    const why = event.error ?? "none found";
    const uptimeMs = s.startedAt === null ? null : now - s.startedAt;
    s.lastExit = { at: now, code: null, signal: null, errno: null, reason: "no-main-process", uptimeMs };
    s.daemon = null;
    // What the launcher left without a recognisable main process is stopped, and judged as this failure.
    if (waitsForCgroup(s)) return failStart(t, "no-main-process", `no main process: ${why}`);
    t.log("warn", "main-pid", `no main process: ${why}`);
    return judge(t, { cause: "no-main-process", code: null, signal: null, uptimeMs });
  }
  s.pid = event.pid;
  s.daemon = "found";
  t.log("info", "main-pid", `main process pid ${event.pid}`);
  if (s.spec.readiness.kind === "none") return becomeReady(t);
  s.probing = true;
  t.emit({ type: "start-probe", server: t.name, pid: event.pid, probe: s.spec.readiness });
}

function spawnFailed(t: Transition, event: Extract<ServerEvent, { type: "spawn-failed" }>): void {
  const { s, now } = t;
  s.lastExit = { at: now, code: null, signal: null, errno: event.errno, reason: "exec-failed", uptimeMs: null };
  t.log("error", "exec-failed", `exec failed: ${event.errno}${event.syscall ? ` (${event.syscall})` : ""}`);
  // Nothing ran, so there is nothing to stop, and no postStop: settle as the stop (or restart) asked.
  if (s.state === "stopping") return settle(t);
  judge(t, { cause: "exec-failed", code: null, signal: null, uptimeMs: null });
}

/** preStart could not run, exited non-zero, or never reported: the start failed before the server existed. */
function preStartFailed(
  t: Transition,
  cause: "pre-start-failed" | "pre-start-timeout",
  exit: { code: number | null; signal: number | null; errno: string | null },
): void {
  const { s, now } = t;
  s.lastExit = { at: now, ...exit, reason: cause, uptimeMs: null };
  s.hook = null;
  s.hookPid = null;
  judge(t, { cause, code: exit.code, signal: exit.signal, uptimeMs: null });
}

/** A spawn reported where none is pending: a process we do not track, so it is killed at once. */
function strayProcess(t: Transition, event: Extract<ServerEvent, { type: "spawned" | "hook-spawned" }>): void {
  t.emit({ type: "kill", server: t.name, pid: event.pid });
  const what = event.type === "spawned" ? "spawned" : "hook";
  t.log("warn", "unexpected", `unexpected ${what} pid ${event.pid} in ${t.s.state}: killed`);
}

/** "exited with code 3", "killed by SIGTERM": a hook's end in words. */
function describeHookExit(event: Extract<ServerEvent, { type: "hook-exited" }>): string {
  return event.signal !== null ? `killed by ${signalName(event.signal)}` : `exited with code ${event.code}`;
}

function hookName(hook: Hook): string {
  return hook === "pre-start" ? "preStart" : "postStop";
}

function pin(t: Transition, event: Extract<ServerEvent, { type: "pin" }>): void {
  t.s.pin = event.pin;
  t.log("info", "pin", `pinned ${event.pin}`);
}

// The cells below act on the request as if it came unpinned: setting the pin first is what makes the
// guard in step() refuse later requests that go against it.
// A request the row ignores still leaves the pin changed, which is a change worth keeping.
function pinAndStart(row: () => Pick<Row, "start">): Cell<"pin-started"> {
  return (t, event) => {
    const changed = t.s.pin !== event.pin;
    pin(t, event);
    row().start(t, { type: "start", now: event.now });
    if (changed) t.ignored = null;
  };
}
function pinAndStop(row: () => Pick<Row, "stop">): Cell<"pin-stopped"> {
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
 * Wants the server down without acting on the process (a stop follows, or none is needed); ignored when
 * it already was. It also drops a pending verdict (a stopping server that was to be judged and
 * restarted now just stops).
 */
function wantDown(alreadyWhy: string): (t: Transition) => void {
  return (t) => {
    const { s } = t;
    if (s.desired === "down" && s.failure === null && s.verdict === null) return t.ignore(alreadyWhy);
    s.desired = "down";
    s.failure = null;
    s.verdict = null;
  };
}

/**
 * A start or restart request while stopping: the server starts again once nothing runs. After a
 * crash (postStop running, a verdict waiting), it starts right after postStop instead of backing off.
 */
function wantUp(t: Transition): void {
  const { s } = t;
  if (s.desired === "up" && s.verdict === null) return t.ignore("will start again once stopped");
  s.desired = "up";
  s.verdict = null;
}

// Timers that cannot be armed in a state: step() already drops their events as stale (their id
// does not match), so these cells only document that.
const notArmed = ignore("timer not armed in this state");
const noProcess = ignore("no process");
const noHook = ignore("no hook running");
const noHookSpawn = ignore("no hook spawn pending");
const notSeeking = ignore("no main process looked for");

// ---- the table --------------------------------------------------------------------------------

const stopped: BaseRow = {
  start: (t) => freshStart(t, "start-requested"),
  stop: wantDown("already stopped"),
  restart: (t) => freshStart(t, "restart-requested"),
  spawned: strayProcess,
  "spawn-failed": ignore("no spawn pending"),
  ready: noProcess,
  "probe-failed": noProcess,
  exited: noProcess,
  "hook-spawned": strayProcess,
  "hook-spawn-failed": noHookSpawn,
  "hook-exited": noHook,
  "pre-start-timeout": notArmed,
  "start-timeout": notArmed,
  "stop-timeout": notArmed,
  "post-stop-timeout": notArmed,
  backoff: notArmed,
  stable: notArmed,
  "pin-started": pinAndStart(() => stopped),
  "pin-stopped": pinAndStop(() => stopped),
  unpin,
  "stop-queued": wantDown("already stopped"),
  kill: noProcess,
  "dependency-failed": (t, event) => {
    t.go("failed", "dependency-failed");
    t.s.desired = "up";
    t.log("error", "failed", `not started: ${event.dependency} failed`);
  },
  "cgroup-empty": cgroupEmptied,
  "main-pid": notSeeking,
  watchdog: notArmed,
};

// Starting: preStart runs (hook "pre-start", pid null), then the server's spawn is pending (pid null),
// then the server runs and its readiness is probed.
const starting: BaseRow = {
  start: ignore("already starting"),
  stop: (t) => beginStop(t, "down", "stop-requested"),
  restart: (t) => beginStop(t, "up", "restart-requested"),
  spawned: (t, event) => {
    const { s, now } = t;
    if (s.pid !== null || s.hook !== null || s.daemon !== null) return strayProcess(t, event);
    s.pid = event.pid;
    s.startedAt = now;
    joinCgroup(s, event);
    if (s.spec.type === "forking") {
      // Its daemon is the server: readiness is looked at once the daemon is found.
      s.daemon = "launching";
      return t.log("info", "started", `started launcher pid ${event.pid}`);
    }
    t.log("info", "started", `started pid ${event.pid}`);
    if (s.spec.readiness.kind === "none") return becomeReady(t);
    s.probing = true;
    t.emit({ type: "start-probe", server: t.name, pid: event.pid, probe: s.spec.readiness });
  },
  "spawn-failed": (t, event) => {
    if (spawnReported(t.s)) return t.ignore("already spawned");
    if (t.s.hook !== null) return t.ignore("no spawn pending");
    spawnFailed(t, event);
  },
  ready: (t) => {
    if (t.s.pid === null || t.s.daemon === "launching") return t.ignore(t.s.daemon === null ? "ready before spawned" : "ready before its daemon is found");
    t.s.probing = false; // the probe reported, so the runtime has ended it
    becomeReady(t);
  },
  "probe-failed": (t, event) => {
    if (t.s.pid === null || t.s.daemon === "launching")
      return t.ignore(t.s.daemon === null ? "probe failed before spawned" : "probe failed before its daemon is found");
    t.s.probing = false;
    failStart(t, "readiness-failed", `readiness probe failed: ${event.message}`);
  },
  exited: exitWhileRunning,
  "hook-spawned": (t, event) => {
    const { s } = t;
    if (s.hook === null || s.hookPid !== null) return strayProcess(t, event);
    s.hookPid = event.pid;
    t.log("debug", "pre-start", `preStart started pid ${event.pid}`);
  },
  "hook-spawn-failed": (t, event) => {
    if (t.s.hook === null || t.s.hookPid !== null) return t.ignore("no hook spawn pending");
    t.log("error", "pre-start-failed", `preStart could not start: ${event.errno}`);
    preStartFailed(t, "pre-start-failed", { code: null, signal: null, errno: event.errno });
  },
  "hook-exited": (t, event) => {
    const { s } = t;
    if (s.hook === null || event.pid !== s.hookPid) return t.ignore(`exit of pid ${event.pid}, not our hook`);
    if (event.code === 0 && event.signal === null) {
      s.hook = null;
      s.hookPid = null;
      t.cancel("pre-start-timeout");
      t.log("debug", "pre-start", "preStart done");
      return spawnServer(t);
    }
    t.log("warn", "pre-start-failed", `preStart ${describeHookExit(event)}`);
    preStartFailed(t, "pre-start-failed", { code: event.code, signal: event.signal, errno: null });
  },
  "pre-start-timeout": (t) => {
    const { s } = t;
    const after = formatMs(s.spec.preStartTimeoutMs);
    if (s.hookPid !== null) return failStart(t, "pre-start-timeout", `preStart did not finish within ${after}`);
    // Its spawn never reported: give up on it (a late hook-spawned is killed as a stray).
    t.log("warn", "pre-start-timeout", `preStart spawn not reported after ${after}`);
    preStartFailed(t, "pre-start-timeout", { code: null, signal: null, errno: null });
  },
  "start-timeout": (t) => {
    const { s, now } = t;
    if (s.pid !== null || waitsForCgroup(s)) return failStart(t, "start-timeout", `not ready after ${formatMs(s.spec.startTimeoutMs)}`);
    // The spawn never reported (a late `spawned` is killed as a stray), or a daemon was looked for in
    // vain and nothing of it is left: give up on it.
    s.lastExit = { at: now, code: null, signal: null, errno: null, reason: "start-timeout", uptimeMs: null };
    const what = s.daemon === "seeking" ? "no main process found" : "spawn not reported";
    t.log("warn", "start-timeout", `${what} after ${formatMs(s.spec.startTimeoutMs)}`);
    judge(t, { cause: "start-timeout", code: null, signal: null, uptimeMs: null });
  },
  "stop-timeout": notArmed,
  "post-stop-timeout": notArmed,
  backoff: notArmed,
  stable: notArmed,
  "pin-started": pinAndStart(() => starting),
  "pin-stopped": pinAndStop(() => starting),
  unpin,
  "stop-queued": wantDown("already wanted down"),
  kill: (t, event) => hardKill(t, event.final === true),
  "dependency-failed": ignore("already started"),
  "cgroup-empty": cgroupEmptied,
  "main-pid": foundMainPid,
  watchdog: notArmed,
};

const ready: BaseRow = {
  start: ignore("already ready"),
  stop: (t) => beginStop(t, "down", "stop-requested"),
  restart: (t) => beginStop(t, "up", "restart-requested"),
  spawned: strayProcess,
  "spawn-failed": ignore("no spawn pending"),
  ready: ignore("already ready"),
  "probe-failed": ignore("already ready"),
  exited: exitWhileRunning,
  "hook-spawned": strayProcess,
  "hook-spawn-failed": noHookSpawn,
  "hook-exited": noHook,
  "pre-start-timeout": notArmed,
  "start-timeout": notArmed,
  "stop-timeout": notArmed,
  "post-stop-timeout": notArmed,
  backoff: notArmed,
  stable: (t) => {
    // It stayed ready long enough: the next failure is treated as a first one again.
    t.s.streak = 0;
    t.log("debug", "backoff-reset", `stable for ${t.s.spec.restart.resetAfterMs} ms: backoff reset`);
  },
  "pin-started": pinAndStart(() => ready),
  "pin-stopped": pinAndStop(() => ready),
  unpin,
  "stop-queued": wantDown("already wanted down"),
  kill: (t, event) => hardKill(t, event.final === true),
  "dependency-failed": ignore("already started"),
  "cgroup-empty": cgroupEmptied,
  "main-pid": notSeeking,
  watchdog: (t) => {
    const { s, now } = t;
    const periodMs = s.spec.watchdogMs ?? 0;
    if (s.watchdog === null || periodMs <= 0) return t.ignore("no watchdog running");
    // Keep-alives only move lastAt: the timer, armed for the first period, looks again when it fires.
    const due = s.watchdog.lastAt + periodMs;
    if (now < due) return t.arm("watchdog", due - now);
    abort(t, "watchdog", "watchdog", `no WATCHDOG=1 within ${formatMs(periodMs)}: aborting it (SIGABRT)`);
  },
};

// Stopping waits for one process: the server's (pid; null while its spawn is pending), a signalled
// preStart (hook "pre-start"), or postStop (hook "post-stop": it runs until post-stop-timeout, and
// is signalled then). stop-timeout is the grace before KILL, and after KILL the wait for the exit.
const stopping: BaseRow = {
  start: wantUp,
  stop: (t) => {
    const { s } = t;
    if (s.desired === "down" && s.failure === null && s.verdict === null) return t.ignore("already stopping");
    s.desired = "down";
    s.failure = null;
    s.verdict = null;
    if (!s.killed && s.hook !== "post-stop") s.reason = "stop-requested";
  },
  restart: wantUp,
  spawned: (t, event) => {
    const { s, now } = t;
    if (s.hook !== null || spawnReported(s)) return strayProcess(t, event);
    // The spawn was still pending when the stop came: stop the process now that it exists.
    s.pid = event.pid;
    s.startedAt = now;
    joinCgroup(s, event);
    t.log("info", "started", `started pid ${event.pid} while stopping`);
    if (s.killed) killWaited(t);
    else signalStop(t);
  },
  "spawn-failed": (t, event) => {
    if (spawnReported(t.s)) return t.ignore("already spawned");
    if (t.s.hook !== null) return t.ignore("no spawn pending");
    spawnFailed(t, event);
  },
  ready: ignore("stopping"),
  "probe-failed": ignore("stopping"),
  exited: exitWhileStopping,
  "hook-spawned": (t, event) => {
    const { s } = t;
    if (s.hook === null || s.hookPid !== null) return strayProcess(t, event);
    s.hookPid = event.pid;
    t.log("debug", s.hook, `${hookName(s.hook)} started pid ${event.pid}`);
    // A preStart whose spawn was pending when the stop came is stopped now; postStop just runs.
    if (s.killed) t.emit({ type: "kill", server: t.name, pid: event.pid });
    else if (s.hook === "pre-start") signalStop(t);
  },
  "hook-spawn-failed": (t, event) => {
    const { s } = t;
    if (s.hook === null || s.hookPid !== null) return t.ignore("no hook spawn pending");
    t.log("warn", s.hook === "pre-start" ? "pre-start-failed" : "post-stop", `${hookName(s.hook)} could not start: ${event.errno}`);
    settle(t);
  },
  "hook-exited": (t, event) => {
    const { s, now } = t;
    if (s.hook === null || event.pid !== s.hookPid) return t.ignore(`exit of pid ${event.pid}, not our hook`);
    if (s.hook === "pre-start" && s.failure !== null) {
      // preStart was stopped at its timeout: the start is judged as that failure.
      s.lastExit = { at: now, code: event.code, signal: event.signal, errno: null, reason: s.failure, uptimeMs: null };
      if (s.desired === "up") s.verdict = { cause: s.failure, code: event.code, signal: event.signal, uptimeMs: null };
    }
    const clean = event.code === 0 && event.signal === null;
    t.log(clean ? "info" : "warn", s.hook, `${hookName(s.hook)} ${describeHookExit(event)}`);
    settle(t);
  },
  "pre-start-timeout": notArmed,
  "start-timeout": notArmed,
  "stop-timeout": (t) => {
    const { s } = t;
    if (s.instances.length > 0) return instancesStopTimeout(t);
    const pid = currentPid(s);
    const what = s.hook === null ? "" : `${hookName(s.hook)} `;
    const cgroup = waitsForCgroup(s);
    if (pid === null && !cgroup) {
      // A spawn never reported: nothing to wait for any more (a late one is killed as a stray).
      t.log("warn", "stop-timeout", `${what}spawn not reported after ${formatMs(s.spec.stopTimeoutMs)}: given up`);
      return settle(t);
    }
    if (!s.killed) {
      s.killed = true;
      if (s.hook === null) s.reason = "stop-timeout";
      t.log("warn", "stop-timeout", `${what}did not stop within ${s.spec.stopTimeoutMs} ms: SIGKILL`);
      killWaited(t);
      t.arm("stop-timeout", s.spec.stopTimeoutMs);
      return;
    }
    // Still there after SIGKILL (stuck in the kernel): stop waiting for it rather than hang a shutdown.
    const who = pid === null ? "processes of its cgroup" : `pid ${pid}`;
    t.log("error", "kill-timeout", `${what}${who} still alive ${formatMs(s.spec.stopTimeoutMs)} after SIGKILL: no longer waited for`);
    if (s.hook !== null) return settle(t);
    s.pid = null;
    s.killed = false;
    s.failure = null;
    s.verdict = null;
    t.go("failed", "kill-timeout");
    t.log("error", "failed", "failed: kill-timeout");
  },
  "post-stop-timeout": (t) => {
    const { s } = t;
    t.log("warn", "post-stop-timeout", `postStop did not finish within ${formatMs(s.spec.postStopTimeoutMs)}`);
    s.reason = "post-stop-timeout";
    if (s.hookPid === null) return settle(t);
    signalStop(t);
  },
  backoff: notArmed,
  stable: notArmed,
  "pin-started": pinAndStart(() => stopping),
  "pin-stopped": pinAndStop(() => stopping),
  unpin,
  "stop-queued": (t) => stopping.stop(t, { type: "stop", now: t.now }),
  kill: (t, event) => {
    if (!t.s.killed) return hardKill(t, event.final === true);
    if (event.final !== true || t.s.final) return t.ignore("already killed");
    t.s.final = true; // already killed: only no postStop after it
  },
  "dependency-failed": ignore("already started"),
  "cgroup-empty": cgroupEmptied,
  "main-pid": notSeeking,
  watchdog: notArmed,
};

const backoff: BaseRow = {
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
  "hook-spawned": strayProcess,
  "hook-spawn-failed": noHookSpawn,
  "hook-exited": noHook,
  "pre-start-timeout": notArmed,
  "start-timeout": notArmed,
  "stop-timeout": notArmed,
  "post-stop-timeout": notArmed,
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
  "cgroup-empty": cgroupEmptied,
  "main-pid": notSeeking,
  watchdog: notArmed,
};

const failed: BaseRow = {
  start: (t) => freshStart(t, "start-requested"),
  stop: wantDown("already not running"),
  restart: (t) => freshStart(t, "restart-requested"),
  spawned: strayProcess,
  "spawn-failed": ignore("no spawn pending"),
  ready: noProcess,
  "probe-failed": noProcess,
  exited: noProcess,
  "hook-spawned": strayProcess,
  "hook-spawn-failed": noHookSpawn,
  "hook-exited": noHook,
  "pre-start-timeout": notArmed,
  "start-timeout": notArmed,
  "stop-timeout": notArmed,
  "post-stop-timeout": notArmed,
  backoff: notArmed,
  stable: notArmed,
  "pin-started": pinAndStart(() => failed),
  "pin-stopped": pinAndStop(() => failed),
  unpin,
  "stop-queued": wantDown("already not running"),
  kill: noProcess,
  "dependency-failed": ignore("already failed"),
  "cgroup-empty": cgroupEmptied,
  "main-pid": notSeeking,
  watchdog: notArmed,
};

// ---- socket activation: its columns in every row, and the listening state ----------------------
//
// A server with `activation: lazy` or `accept` listens instead of starting: the init watches its
// sockets (watch-sockets), and a connection (socket-activity) starts its process (lazy: it then runs
// as an eager server would, and listens again once it has stopped or exited) or one instance with the
// connection on fds 0 and 1 (accept: inetd's nowait, at most maxInstances at once; the others wait in
// the backlog, not watched, until an instance ends). A lazy server with idleStop is asked, while
// ready, whether a connection is open or waiting (check-idle, every IDLE_CHECK_MS at most); after
// idleStop without one it is stopped and listens again.

type ActivationColumn = "socket-activity" | "instance-spawned" | "instance-spawn-failed" | "instance-exited" | "idle" | "idle-check";
type BaseRow = Omit<Row, ActivationColumn>;

/** How often a lazy server with idleStop is checked for connections (or every idleStop, when shorter). */
export const IDLE_CHECK_MS = 1000;
/** accept without maxInstances. */
export const DEFAULT_MAX_INSTANCES = 64;

export function activationOf(spec: ServerSpec): Activation {
  return spec.activation ?? "eager";
}

function maxInstancesOf(spec: ServerSpec): number {
  return spec.maxInstances ?? DEFAULT_MAX_INSTANCES;
}

/**
 * Whether what requires this server may start now: it is ready; or it listens (its sockets are the
 * init's, a connection starts it); or, with readiness: socket, it is on its way up (starting, or
 * waiting to be restarted) and its sockets exist already: connections wait in their backlog.
 */
export function servesDependents(server: Server): boolean {
  switch (server.state) {
    case "ready":
    case "listening":
      return true;
    case "starting":
    case "backoff":
      return server.spec.readyOnSockets === true;
    case "stopping":
      return server.spec.readyOnSockets === true && server.desired === "up";
    default:
      return false;
  }
}

/** "tcp:8080" or "tcp:8080 and 2 more". */
function describeSockets(spec: ServerSpec): string {
  const sockets = spec.sockets ?? [];
  if (sockets.length === 0) return "no socket";
  return sockets.length === 1 ? sockets[0].listen : `${sockets[0].listen} and ${sockets.length - 1} more`;
}

/** Waits for a connection on the server's sockets: the lazy server's process, or accept's instances, start then. */
function listen(t: Transition, reason: StateReason): void {
  const { s } = t;
  t.go("listening", reason);
  s.desired = "up";
  s.pid = null;
  s.startedAt = null;
  s.readyAt = null;
  s.failure = null;
  s.killed = false;
  s.hook = null;
  s.hookPid = null;
  s.verdict = null;
  // Watched anew: a reload may have given it other sockets.
  if (s.watching) stopWatching(t);
  startWatching(t);
  const what = activationOf(s.spec) === "accept" ? `one instance per connection, ${maxInstancesOf(s.spec)} at most` : "the first connection starts it";
  t.log("info", "listening", `listening on ${describeSockets(s.spec)}: ${what}`);
}

function startWatching(t: Transition): void {
  t.s.watching = true;
  t.emit({ type: "watch-sockets", server: t.name });
}

function stopWatching(t: Transition): void {
  t.s.watching = false;
  t.emit({ type: "unwatch-sockets", server: t.name });
}

/** accept: watches the sockets again once an instance slot is free (and the server is still wanted up). */
function resumeAccepting(t: Transition): void {
  const { s } = t;
  if (s.state !== "listening" || s.watching || s.desired !== "up") return;
  if (s.instances.length + s.pendingInstances < maxInstancesOf(s.spec)) startWatching(t);
}

/** Stops a listening server: at once without instances, else through stopping, its instances signalled. */
function stopListening(t: Transition, desired: DesiredState, reason: StateReason): void {
  const { s } = t;
  if (s.instances.length === 0 && s.pendingInstances === 0) {
    t.go("stopped", reason);
    s.desired = desired;
    t.log("info", "stopped", "stopped listening");
    return;
  }
  beginStop(t, desired, reason);
}

/** A lazy server with idleStop, ready: the next check of its connections. */
function armIdleCheck(t: Transition, fromReady: boolean): void {
  const { s, now } = t;
  const idleStopMs = s.spec.idleStopMs ?? null;
  if (activationOf(s.spec) !== "lazy" || idleStopMs === null) return;
  if (fromReady) s.quietSince = now;
  t.arm("idle", Math.max(1, Math.min(IDLE_CHECK_MS, idleStopMs)));
}

/** stop-timeout of a stopping accept server: SIGKILL to every instance, then, still there, given up. */
function instancesStopTimeout(t: Transition): void {
  const { s } = t;
  if (!s.killed) {
    s.killed = true;
    s.reason = "stop-timeout";
    t.log("warn", "stop-timeout", `${s.instances.length} instance(s) did not stop within ${s.spec.stopTimeoutMs} ms: SIGKILL`);
    for (const pid of s.instances) t.emit({ type: "kill", server: t.name, pid });
    t.arm("stop-timeout", s.spec.stopTimeoutMs);
    return;
  }
  t.log("error", "kill-timeout", `instance(s) ${s.instances.join(", ")} still alive ${formatMs(s.spec.stopTimeoutMs)} after SIGKILL: no longer waited for`);
  s.instances = [];
  s.pendingInstances = 0;
  s.killed = false;
  s.failure = null;
  s.verdict = null;
  t.go("failed", "kill-timeout");
  t.log("error", "failed", "failed: kill-timeout");
}

function strayInstance(t: Transition, event: Extract<ServerEvent, { type: "instance-spawned" }>): void {
  t.emit({ type: "kill", server: t.name, pid: event.pid });
  t.log("warn", "unexpected", `unexpected instance pid ${event.pid} in ${t.s.state}: killed`);
}

const notListening = ignore("not listening");
const noInstanceSpawn = ignore("no instance spawn pending");
const noInstance = ignore("no instance running");
const noIdleCheck = ignore("no idle check asked");

/** The activation columns of a row where nothing listens and no instance runs. */
const quiet: Pick<Row, ActivationColumn> = {
  "socket-activity": notListening,
  "instance-spawned": strayInstance,
  "instance-spawn-failed": noInstanceSpawn,
  "instance-exited": noInstance,
  idle: notArmed,
  "idle-check": noIdleCheck,
};

const listening: Row = {
  start: ignore("already listening"),
  stop: (t) => stopListening(t, "down", "stop-requested"),
  restart: (t) => {
    // With instances: they are stopped, and it listens again. Without: it listens anew, or, made
    // eager by a reload, starts.
    if (t.s.instances.length > 0 || t.s.pendingInstances > 0) return stopListening(t, "up", "restart-requested");
    freshStart(t, "restart-requested");
  },
  spawned: strayProcess,
  "spawn-failed": ignore("no spawn pending"),
  ready: noProcess,
  "probe-failed": noProcess,
  exited: noProcess,
  "hook-spawned": strayProcess,
  "hook-spawn-failed": noHookSpawn,
  "hook-exited": noHook,
  "pre-start-timeout": notArmed,
  "start-timeout": notArmed,
  "stop-timeout": notArmed,
  "post-stop-timeout": notArmed,
  backoff: notArmed,
  stable: notArmed,
  "pin-started": pinAndStart(() => listening),
  "pin-stopped": pinAndStop(() => listening),
  unpin,
  "stop-queued": (t) => {
    const { s } = t;
    if (s.instances.length === 0 && s.pendingInstances === 0) return stopListening(t, "down", "stop-requested");
    // Its instances are stopped in the shutdown's order; no new one meanwhile.
    s.desired = "down";
    if (s.watching) stopWatching(t);
  },
  kill: (t, event) => {
    if (t.s.instances.length === 0 && t.s.pendingInstances === 0) {
      t.go("stopped", "hard-kill");
      t.s.desired = "down";
      t.log("info", "stopped", "stopped listening");
      return;
    }
    hardKill(t, event.final === true);
  },
  "dependency-failed": ignore("already started"),
  "socket-activity": (t, event) => {
    const { s } = t;
    if (s.desired === "down") return t.ignore("wanted down: no new instance");
    const on = s.spec.sockets?.[event.socket]?.listen ?? `socket ${event.socket}`;
    if (activationOf(s.spec) !== "accept") {
      s.activations += 1;
      t.log("info", "activated", `a connection on ${on}: starting`);
      return beginStart(t, "socket-activated");
    }
    const max = maxInstancesOf(s.spec);
    if (s.instances.length + s.pendingInstances >= max) return t.ignore(`${max} instances run: the connection waits in the backlog`);
    s.pendingInstances += 1;
    t.emit({ type: "spawn-instance", server: t.name, socket: event.socket });
    // At the limit: connections wait in the backlog, unwatched, until an instance ends.
    if (s.instances.length + s.pendingInstances >= max && s.watching) stopWatching(t);
  },
  "instance-spawned": (t, event) => {
    const { s } = t;
    if (s.pendingInstances === 0) return strayInstance(t, event);
    s.pendingInstances -= 1;
    s.instances = [...s.instances, event.pid];
    s.activations += 1;
    t.log("debug", "instance", `instance pid ${event.pid} for a connection (${s.instances.length} running)`);
  },
  "instance-spawn-failed": (t, event) => {
    const { s } = t;
    if (s.pendingInstances === 0) return t.ignore("no instance spawn pending");
    s.pendingInstances -= 1;
    if (event.errno === "EAGAIN") t.log("debug", "instance", "no connection was waiting any more");
    else t.log("warn", "instance", `instance could not start: ${event.errno}${event.syscall ? ` (${event.syscall})` : ""}`);
    resumeAccepting(t);
  },
  "instance-exited": (t, event) => {
    const { s } = t;
    if (!s.instances.includes(event.pid)) return t.ignore(`exit of pid ${event.pid}, not an instance`);
    s.instances = s.instances.filter((pid) => pid !== event.pid);
    const how = event.signal !== null ? `killed by ${signalName(event.signal)}` : `exited with code ${event.code}`;
    t.log("debug", "instance", `instance pid ${event.pid} ${how} (${s.instances.length} running)`);
    resumeAccepting(t);
  },
  idle: notArmed,
  "idle-check": noIdleCheck,
  // Its instances are not in a cgroup of their own; a lazy server's run ended before it listened again.
  "cgroup-empty": cgroupEmptied,
  "main-pid": notSeeking,
  watchdog: notArmed,
};

/** Stopping: an accept server's instances are stopped like a process (stop-timeout brings SIGKILL). */
const stoppingActivation: Pick<Row, ActivationColumn> = {
  ...quiet,
  "instance-spawned": (t, event) => {
    const { s } = t;
    if (s.pendingInstances === 0) return strayInstance(t, event);
    s.pendingInstances -= 1;
    s.instances = [...s.instances, event.pid];
    t.log("debug", "instance", `instance pid ${event.pid} started while stopping: stopping it`);
    t.emit(s.killed ? { type: "kill", server: t.name, pid: event.pid } : { type: "signal", server: t.name, pid: event.pid, signal: s.spec.stopSignal });
  },
  "instance-spawn-failed": (t) => {
    const { s } = t;
    if (s.pendingInstances === 0) return t.ignore("no instance spawn pending");
    s.pendingInstances -= 1;
    if (s.instances.length === 0 && s.pendingInstances === 0 && s.pid === null && s.hook === null) settle(t);
  },
  "instance-exited": (t, event) => {
    const { s } = t;
    if (!s.instances.includes(event.pid)) return t.ignore(`exit of pid ${event.pid}, not an instance`);
    s.instances = s.instances.filter((pid) => pid !== event.pid);
    t.log("debug", "instance", `instance pid ${event.pid} ended (${s.instances.length} left)`);
    if (s.instances.length === 0 && s.pendingInstances === 0 && s.pid === null && s.hook === null) settle(t);
  },
};

/** Ready: a lazy server with idleStop is checked for connections. */
const readyActivation: Pick<Row, ActivationColumn> = {
  ...quiet,
  idle: (t) => t.emit({ type: "check-idle", server: t.name }),
  "idle-check": (t, event) => {
    const { s, now } = t;
    const idleStopMs = s.spec.idleStopMs ?? null;
    if (activationOf(s.spec) !== "lazy" || idleStopMs === null || s.timers.idle !== undefined) return t.ignore("no idle check asked");
    if (event.busy || s.quietSince === null) s.quietSince = now;
    if (now - s.quietSince < idleStopMs) return armIdleCheck(t, false);
    t.log("info", "idle-stop", `no connection for ${formatMs(now - s.quietSince)}: stopping (the next connection starts it again)`);
    beginStop(t, "up", "idle-stop");
  },
};

/** While an accept server's instances stop, no spawn of its own is pending: what `spawned` reports is a stray. */
function unlessInstances<C extends Column>(cell: Cell<C>, withInstances: Cell<C>): Cell<C> {
  return (t, event) => (t.s.instances.length > 0 || t.s.pendingInstances > 0 ? withInstances(t, event) : cell(t, event));
}

const table: Record<ServerState, Row> = {
  stopped: { ...stopped, ...quiet },
  starting: { ...starting, ...quiet },
  ready: { ...ready, ...readyActivation },
  stopping: {
    ...stopping,
    ...stoppingActivation,
    spawned: unlessInstances(stopping.spawned, strayProcess),
    "spawn-failed": unlessInstances(stopping["spawn-failed"], ignore("no spawn pending")),
  },
  backoff: { ...backoff, ...quiet },
  failed: { ...failed, ...quiet },
  listening,
};
