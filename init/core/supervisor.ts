// The whole supervisor as one pure machine: step(sup, event) -> { sup, effects, ignored }.
//
// It owns the per-server machines (server.ts) and decides *when* each is asked to start or stop:
// - a launch run starts a set of servers (boot, start-all, servers added by a reload) in the order
//   graph.ts gives: level barriers plus interLevelWaitMs, explicit dependencies, exclusive servers,
//   interServerWaitMs spacing, and in sequential mode one server at a time; a failsafe server goes
//   at its failsafe time at the latest, past every one of those gates;
// - a stop run stops a set (stop-all, shutdown) in the reverse order: a server is signalled once
//   everything that must stop before it has no process left, so a level is signalled all at once.
// Events for one server (requests, and what the runtime observed) are routed to its machine by name.

import { isDeepStrictEqual } from "node:util";
import type { ServerSpec, Settings } from "./types";
import {
  createServer,
  hasNoProcess,
  isDown,
  servesDependents,
  step as stepServer,
  type LogLevel,
  type Server,
  type ServerEffect,
  type ServerEvent,
} from "./server";
import { bootSet, planStages, startOrder, startRules, stopOrder, stopRules, type StartRule } from "./graph";

export type SupervisorPhase = "stopped" | "booting" | "running" | "shutting-down";
export type SupervisorTimer = "inter-server" | "inter-level" | "failsafe" | "shutdown-deadline";

export interface LaunchRun {
  /** Servers waiting for their turn, in start order. */
  queue: string[];
  /** Every server taking part in the run: the start rules are computed over them. */
  members: Set<string>;
  /** Started in this run and not settled yet: neither ready, nor failed, nor stopped. */
  unsettled: Set<string>;
  /** For each level whose barrier has been passed: when its servers may start. */
  levelOpensAt: Map<number, number>;
  /** No fork before this: interServerWaitMs spacing (sequential: counted from the previous settling). */
  nextForkAt: number;
  /** Failsafe servers still queued, and when each starts at the latest (its failsafeMs after it joined the run). */
  failsafeAt: Map<string, number>;
  /**
   * startRules over the members, kept because they are quadratic in the members and change only
   * when the members or the specs do (launch, reload); every event of a large boot would
   * otherwise compute them again.
   */
  rules: Map<string, StartRule>;
}

export interface StopRun {
  /** Servers not signalled yet, in stop order. */
  queue: string[];
  members: Set<string>;
  /** Stops that a pin does not refuse (shutdown). */
  force: boolean;
  /** stopRules over the members, kept for the same reason as LaunchRun.rules. */
  rules: Map<string, string[]>;
}

export interface Supervisor {
  phase: SupervisorPhase;
  settings: Settings;
  /** In config order; a server removed by a reload stays (at the end) until it has stopped. */
  servers: Map<string, Server>;
  removing: Set<string>;
  launch: LaunchRun;
  stop: StopRun;
  timers: Partial<Record<SupervisorTimer, { id: number; at: number }>>;
  nextTimerId: number;
}

export type SupervisorEvent =
  /** Start what starts at boot: autostart servers of levels 1..maxLevel (default settings.maxLevel). */
  | { type: "boot"; now: number; maxLevel?: number }
  /** The Starter's DevStartAll: every server of a level, or of every level >= 1 (autostart not considered). */
  | { type: "start-all"; now: number; level?: number; names?: string[] }
  /** The Starter's DevStopAll: every server of a level, or all; pinned-started servers are left alone. */
  | { type: "stop-all"; now: number; level?: number; names?: string[] }
  | { type: "shutdown"; now: number }
  /**
   * A new configuration. Servers it adds that start at boot are started, unless startAdded is false
   * (the Starter's UpdateServersInfo: a newly registered server waits for a start request).
   */
  | { type: "config-reloaded"; now: number; servers: ServerSpec[]; settings?: Settings; startAdded?: boolean }
  | { type: "timer"; now: number; timer: SupervisorTimer; id: number }
  | { type: "server"; name: string; event: ServerEvent };

export type SupervisorLogKind =
  "boot" | "boot-complete" | "start-all" | "stop-all" | "shutdown" | "shutdown-deadline" | "shutdown-complete" | "config-reloaded" | "removed" | "pinned";

/** Server effects pass through unchanged; supervisor timers and log lines have `server: null`. */
export type SupervisorEffect =
  | ServerEffect
  | { type: "arm-timer"; server: null; timer: SupervisorTimer; id: number; at: number }
  | { type: "cancel-timer"; server: null; timer: SupervisorTimer; id: number }
  | { type: "log"; server: null; level: LogLevel; kind: SupervisorLogKind; message: string }
  /** Every server has stopped after a shutdown request: stage 3 may go on. */
  | { type: "shutdown-complete" };

export interface SupervisorStep {
  sup: Supervisor;
  effects: SupervisorEffect[];
  /** Set when the event changed nothing: why it was ignored. */
  ignored: string | null;
}

export interface ConfigDiff {
  added: ServerSpec[];
  removed: ServerSpec[];
  /** The new specs of servers whose spec differs. */
  changed: ServerSpec[];
  unchanged: ServerSpec[];
}

export function createSupervisor(config: { settings: Settings; servers: readonly ServerSpec[] }, now = 0): Supervisor {
  return {
    phase: "stopped",
    settings: config.settings,
    servers: new Map(config.servers.map((spec) => [spec.name, createServer(spec, now)])),
    removing: new Set(),
    launch: emptyLaunch(Number.NEGATIVE_INFINITY),
    stop: emptyStop(),
    timers: {},
    nextTimerId: 1,
  };
}

/** The boot plan (what `plan` prints): stages of servers forked together. */
export function bootPlan(specs: readonly ServerSpec[], settings: Settings, maxLevel = settings.maxLevel): string[][] {
  return planStages(specs, bootSet(specs, maxLevel), settings.startMode);
}

export function diffConfig(before: readonly ServerSpec[], after: readonly ServerSpec[]): ConfigDiff {
  const old = new Map(before.map((spec) => [spec.name, spec]));
  const names = new Set(after.map((spec) => spec.name));
  const diff: ConfigDiff = { added: [], removed: before.filter((spec) => !names.has(spec.name)), changed: [], unchanged: [] };
  for (const spec of after) {
    const previous = old.get(spec.name);
    if (previous === undefined) diff.added.push(spec);
    else if (isDeepStrictEqual(previous, spec)) diff.unchanged.push(spec);
    else diff.changed.push(spec);
  }
  return diff;
}

/**
 * Fields of a spec that only steer later decisions (when to start, whether to restart, how to stop):
 * a change to them alone leaves a running process as it is. Any other change (argv, environment,
 * user, limits, readiness, log, hooks) reaches the process only through a restart.
 */
const SCHEDULING_FIELDS: ReadonlySet<keyof ServerSpec> = new Set([
  "level",
  "autostart",
  "requires",
  "after",
  "exclusive",
  "restart",
  "startTimeoutMs",
  "stopSignal",
  "stopTimeoutMs",
  // socket activation
  "readyOnSockets",
  "idleStopMs",
  "maxInstances",
] as const);

/** Whether a running server must be restarted for a changed spec to take effect. */
export function needsRestart(before: ServerSpec, after: ServerSpec): boolean {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)] as (keyof ServerSpec)[]);
  return [...keys].some((key) => !SCHEDULING_FIELDS.has(key) && !isDeepStrictEqual(before[key], after[key]));
}

/** When an event happened (a server's events carry their own time). */
export function eventTime(event: SupervisorEvent): number {
  return event.type === "server" ? event.event.now : event.now;
}

export function step(sup: Supervisor, event: SupervisorEvent): SupervisorStep {
  const draft = new Draft(copy(sup), eventTime(event));
  const ignored = draft.handle(event);
  if (ignored !== null) return { sup, effects: [], ignored };
  draft.settle();
  return { sup: draft.sup, effects: draft.effects, ignored: null };
}

// ---- the draft of one step --------------------------------------------------------------------

class Draft {
  readonly effects: SupervisorEffect[] = [];
  /** The launch queue as a set, for the queue array it was made from (every change makes a new array). */
  private queuedNames: { of: string[]; names: Set<string> } | null = null;

  constructor(
    readonly sup: Supervisor,
    readonly now: number,
  ) {}

  /** Applies one event; returns why it was ignored, or null. */
  handle(event: SupervisorEvent): string | null {
    const { sup } = this;
    if (sup.phase === "shutting-down" && event.type !== "timer" && event.type !== "server") return "shutting down";
    switch (event.type) {
      case "boot": {
        const maxLevel = event.maxLevel ?? sup.settings.maxLevel;
        sup.phase = "booting";
        this.log("info", "boot", `boot: levels 1..${maxLevel}`);
        this.launch(this.startable([...bootSet(this.specs(), maxLevel)]));
        return null;
      }
      case "start-all": {
        const level = event.level;
        const names = startAllTargets(sup, level, event.names);
        if (names.length === 0) return "nothing to start";
        this.log("info", "start-all", `start-all ${level ?? "levels"}: ${names.length} servers`);
        this.launch(names);
        return null;
      }
      case "stop-all": {
        const { running, queued } = stopAllTargets(sup, event.level, event.names);
        if (running.length === 0 && queued.length === 0) return "nothing to stop";
        this.log("info", "stop-all", `stop-all ${event.level ?? "levels"}: ${running.length} servers`);
        for (const name of queued) this.dropFromLaunch(name);
        this.stopInOrder(running, false);
        return null;
      }
      case "shutdown":
        this.shutdown();
        return null;
      case "config-reloaded":
        this.reload(event.servers, event.settings, event.startAdded ?? true);
        return null;
      case "timer":
        return this.timer(event.timer, event.id);
      case "server": {
        if (!sup.servers.has(event.name)) return `unknown server ${event.name}`;
        const kind = event.event.type;
        const starts = kind === "start" || kind === "restart" || (event.event.type === "pin" && event.event.pin === "started");
        if (sup.phase === "shutting-down" && starts) return "shutting down";
        return this.route(event.name, event.event);
      }
    }
  }

  /** After the event: start and stop what may go now, then move the phase on. */
  settle(): void {
    let wake: Wake;
    for (;;) {
      const launched = this.launchPass();
      const stopped = this.stopPass();
      wake = launched.wake;
      if (!launched.changed && !stopped) break;
    }
    this.syncTimer("inter-server", wake.fork);
    this.syncTimer("inter-level", wake.level);
    this.syncTimer("failsafe", wake.failsafe);
    this.finishRuns();
  }

  // ---- starting ----------------------------------------------------------------------------

  private launch(names: string[]): void {
    const run = this.sup.launch;
    for (const name of names) {
      run.members.add(name);
      this.dropFromStop(name);
      const failsafeMs = this.sup.servers.get(name)?.spec.failsafeMs ?? null;
      if (failsafeMs !== null && !run.failsafeAt.has(name)) run.failsafeAt.set(name, this.now + failsafeMs);
    }
    const queued = new Set([...run.queue, ...names]);
    run.queue = startOrder(this.specs(), run.members).filter((name) => queued.has(name));
    this.refreshRules();
  }

  /** Computes the runs' start and stop rules again: their members or the specs changed. */
  private refreshRules(): void {
    const specs = this.specs();
    this.sup.launch.rules = startRules(specs, this.sup.launch.members);
    this.sup.stop.rules = stopRules(specs, this.sup.stop.members);
  }

  /**
   * One pass over the launch queue: starts every server whose turn it is. A failsafe server whose
   * time has come starts whatever holds the others back.
   */
  private launchPass(): { changed: boolean; wake: Wake } {
    const { sup, now } = this;
    const run = sup.launch;
    const wake: Wake = {};
    if (run.queue.length === 0) return { changed: false, wake };
    const sequential = sup.settings.startMode === "sequential";
    const rules = run.rules;
    this.openLevels(rules);
    let changed = false;
    // Set once a gate (exclusive, sequential, spacing) holds the rest of the queue back, in order.
    let held = false;
    for (const name of [...run.queue]) {
      const server = sup.servers.get(name);
      if (server === undefined || !hasNoProcess(server)) {
        // Removed, or started by a request meanwhile (observe() tracks that one as unsettled).
        this.dropFromLaunch(name);
        changed = true;
        continue;
      }
      const failsafeAt = run.failsafeAt.get(name);
      if (failsafeAt === undefined || now < failsafeAt) {
        const rule = rules.get(name)!;
        const required = this.requirements(rule);
        if (required.failed !== undefined && failsafeAt === undefined) {
          this.dropFromLaunch(name);
          this.route(name, { type: "dependency-failed", now, dependency: required.failed });
          changed = true;
          continue;
        }
        // Until its time, a failsafe server waits for its gates like any other; a failed dependency
        // is one it no longer waits for.
        if (failsafeAt !== undefined) wake.failsafe = Math.min(wake.failsafe ?? failsafeAt, failsafeAt);
        if (required.waiting || !rule.after.every((n) => this.settledInRun(n))) continue;
        if (rule.levelBarrier !== null) {
          const opensAt = run.levelOpensAt.get(server.spec.level);
          if (opensAt === undefined) continue;
          if (now < opensAt) {
            wake.level = Math.min(wake.level ?? opensAt, opensAt);
            continue;
          }
        }
        // Its turn has come; the gates below hold it and the rest of the queue back, in order.
        if (held) continue;
        if (this.exclusiveBlocks(server) || (sequential && run.unsettled.size > 0)) {
          held = true;
          continue;
        }
        if (now < run.nextForkAt) {
          wake.fork = run.nextForkAt;
          held = true;
          continue;
        }
      }
      this.dropFromLaunch(name);
      run.unsettled.add(name);
      // Sequential mode counts the wait from the moment this one settles (see observe()).
      if (!sequential) run.nextForkAt = now + sup.settings.interServerWaitMs;
      this.route(name, { type: "start", now });
      changed = true;
    }
    return { changed, wake };
  }

  /** Records when each level's barrier is passed: its servers may start interLevelWaitMs later. */
  private openLevels(rules: Map<string, StartRule>): void {
    const run = this.sup.launch;
    // A barrier is the same for every server of a level (the members of lower levels): one check a level.
    const stillClosed = new Set<number>();
    for (const name of run.queue) {
      const barrier = rules.get(name)?.levelBarrier;
      const level = this.sup.servers.get(name)?.spec.level;
      if (barrier == null || level === undefined || run.levelOpensAt.has(level) || stillClosed.has(level)) continue;
      if (!barrier.every((n) => this.settledInRun(n))) {
        stillClosed.add(level);
        continue;
      }
      // The lowest level waits for nothing, so it does not wait interLevelWaitMs either.
      run.levelOpensAt.set(level, this.now + (barrier.length > 0 ? this.sup.settings.interLevelWaitMs : 0));
    }
  }

  /**
   * A required server must be ready (or serve already through the init's sockets: servesDependents);
   * it is waited for while it may still get there (`waiting`), else it `failed`.
   */
  private requirements(rule: StartRule): { failed?: string; waiting: boolean } {
    let waiting = false;
    let failed: string | undefined;
    for (const name of [...rule.requires, ...rule.externalRequires]) {
      const dependency = this.sup.servers.get(name);
      if (dependency !== undefined && servesDependents(dependency)) continue;
      const mayGetThere =
        dependency !== undefined &&
        (this.isQueued(name) ||
          dependency.state === "starting" ||
          dependency.state === "backoff" ||
          (dependency.state === "stopping" && dependency.desired === "up"));
      if (mayGetThere) waiting = true;
      else failed ??= name;
    }
    return { failed, waiting };
  }

  /**
   * Ordering (after, level barriers) waits until a member is neither queued nor on its first attempt,
   * or, started, already serves through the init's sockets (readiness: socket, listening).
   */
  private settledInRun(name: string): boolean {
    if (this.isQueued(name)) return false;
    if (!this.sup.launch.unsettled.has(name)) return true;
    const server = this.sup.servers.get(name);
    return server !== undefined && servesDependents(server);
  }

  /** Whether a server waits in the launch queue: asked for every member of a level barrier, so not a linear search. */
  private isQueued(name: string): boolean {
    const queue = this.sup.launch.queue;
    if (this.queuedNames?.of !== queue) this.queuedNames = { of: queue, names: new Set(queue) };
    return this.queuedNames.names.has(name);
  }

  /** Nothing else starts while an exclusive server starts, and an exclusive one starts alone. */
  private exclusiveBlocks(server: Server): boolean {
    const starting = [...this.sup.servers.values()].filter((s) => s.state === "starting");
    return starting.some((s) => s.spec.exclusive) || (server.spec.exclusive && starting.length > 0);
  }

  private dropFromLaunch(name: string): void {
    this.sup.launch.queue = this.sup.launch.queue.filter((n) => n !== name);
    this.sup.launch.failsafeAt.delete(name);
  }

  private startable(names: string[]): string[] {
    return startable(this.sup, names);
  }

  // ---- stopping ----------------------------------------------------------------------------

  private stopInOrder(names: string[], force: boolean): void {
    const run = this.sup.stop;
    for (const name of names) run.members.add(name);
    run.force ||= force;
    const queued = new Set([...run.queue, ...names]);
    run.queue = stopOrder(this.specs(), run.members).filter((name) => queued.has(name));
    this.refreshRules();
  }

  /** One pass over the stop queue: signals every server whose dependents have no process left. */
  private stopPass(): boolean {
    const run = this.sup.stop;
    if (run.queue.length === 0) return false;
    const stopFirst = run.rules;
    let changed = false;
    for (const name of [...run.queue]) {
      const waiting = (stopFirst.get(name) ?? []).some((n) => {
        const other = this.sup.servers.get(n);
        return other !== undefined && !hasNoProcess(other);
      });
      if (waiting) continue;
      this.dropFromStop(name);
      if (this.sup.servers.has(name)) this.route(name, { type: "stop", now: this.now, force: run.force });
      changed = true;
    }
    return changed;
  }

  private dropFromStop(name: string): void {
    this.sup.stop.queue = this.sup.stop.queue.filter((n) => n !== name);
  }

  private shutdown(): void {
    const { sup, now } = this;
    sup.phase = "shutting-down";
    sup.launch = emptyLaunch(sup.launch.nextForkAt);
    // Desired down everywhere first, so that nothing restarts while it waits for its turn to stop.
    for (const name of sup.servers.keys()) this.route(name, { type: "stop-queued", now });
    const running = [...sup.servers.keys()].filter((name) => !isDown(sup.servers.get(name)!));
    this.log("info", "shutdown", `shutdown: stopping ${running.length} servers`);
    this.stopInOrder(running, true);
    if (running.length > 0) this.syncTimer("shutdown-deadline", now + sup.settings.shutdownTimeoutMs);
  }

  // ---- timers, reload ----------------------------------------------------------------------

  private timer(timer: SupervisorTimer, id: number): string | null {
    const { sup, now } = this;
    if (sup.timers[timer]?.id !== id) return `stale ${timer} timer`;
    delete sup.timers[timer];
    if (timer === "shutdown-deadline") {
      const left = [...sup.servers.values()].filter((server) => !hasNoProcess(server));
      this.log("warn", "shutdown-deadline", `shutdown deadline reached: SIGKILL to ${left.length} servers`);
      sup.stop.queue = [];
      // final: no postStop starts after the deadline (a running one is killed with its server).
      for (const server of left) this.route(server.spec.name, { type: "kill", now, final: true });
    }
    // The inter-server, inter-level and failsafe timers only wake the launch pass that settle() runs.
    return null;
  }

  private reload(specs: ServerSpec[], settings: Settings | undefined, startAdded: boolean): void {
    const { sup, now } = this;
    const diff = diffConfig(this.specs(), specs);
    if (settings !== undefined) sup.settings = settings;
    const previous = sup.servers;
    sup.servers = new Map(
      specs.map((spec) => {
        const server = previous.get(spec.name);
        return [spec.name, server === undefined ? createServer(spec, now) : { ...server, spec }];
      }),
    );
    for (const spec of specs) sup.removing.delete(spec.name);
    this.log("info", "config-reloaded", `config reloaded: ${diff.added.length} added, ${diff.removed.length} removed, ${diff.changed.length} changed`);

    for (const spec of diff.removed) {
      const server = previous.get(spec.name)!;
      this.dropFromLaunch(spec.name);
      this.sup.launch.members.delete(spec.name);
      this.dropFromStop(spec.name);
      this.sup.stop.members.delete(spec.name);
      if (isDown(server)) continue; // nothing to stop: it is simply gone
      sup.servers.set(spec.name, server);
      sup.removing.add(spec.name);
      this.route(spec.name, { type: "stop", now, force: true });
    }
    for (const spec of diff.changed) {
      const server = sup.servers.get(spec.name)!;
      // The next start uses the new spec; a listening one (socket activation) listens anew, or starts.
      if (server.state !== "starting" && server.state !== "ready" && server.state !== "listening") continue;
      if (!needsRestart(previous.get(spec.name)!.spec, spec)) continue; // only later decisions change
      if (server.pin !== null) {
        this.log("info", "pinned", `${spec.name} changed but is pinned: not restarted`);
        continue;
      }
      this.route(spec.name, { type: "restart", now });
    }
    if (startAdded && (sup.phase === "booting" || sup.phase === "running")) {
      const wanted = bootSet(diff.added, sup.settings.maxLevel);
      this.launch(this.startable(diff.added.map((spec) => spec.name).filter((name) => wanted.has(name))));
    }
    // Specs changed and removed servers left the runs.
    this.refreshRules();
  }

  // ---- shared ------------------------------------------------------------------------------

  /** Steps one server's machine and keeps the runs' bookkeeping in line with its new state. */
  private route(name: string, event: ServerEvent): string | null {
    const result = stepServer(this.sup.servers.get(name)!, event);
    this.sup.servers.set(name, result.server);
    this.effects.push(...result.effects);
    this.observe(name, result.server);
    return result.ignored;
  }

  private observe(name: string, server: Server): void {
    const { sup, now } = this;
    const run = sup.launch;
    if (this.isQueued(name) && server.state === "starting") {
      this.dropFromLaunch(name);
      run.unsettled.add(name);
    }
    if (run.unsettled.has(name) && (server.state === "ready" || server.state === "listening" || isDown(server))) {
      // Settled: ready (or listening), failed for good, or stopped. A server that crashed and waits in backoff (or
      // is being stopped to be restarted) is still on its way: the level is done only when each of
      // its servers is ready or has failed (design §4).
      run.unsettled.delete(name);
      if (sup.settings.startMode === "sequential") run.nextForkAt = now + sup.settings.interServerWaitMs;
    }
    if (sup.removing.has(name) && isDown(server)) {
      sup.servers.delete(name);
      sup.removing.delete(name);
      this.log("info", "removed", `${name} removed from the configuration`);
    }
  }

  private finishRuns(): void {
    const { sup } = this;
    const launch = sup.launch;
    if (launch.queue.length === 0 && launch.unsettled.size === 0) {
      if (launch.members.size > 0) sup.launch = emptyLaunch(launch.nextForkAt);
      if (sup.phase === "booting") {
        sup.phase = "running";
        this.log("info", "boot-complete", "boot complete");
      }
    }
    const stop = sup.stop;
    const stopDone =
      stop.queue.length === 0 &&
      [...stop.members].every((n) => {
        const server = sup.servers.get(n);
        return server === undefined || hasNoProcess(server);
      });
    if (stopDone && stop.members.size > 0) sup.stop = emptyStop();
    if (sup.phase === "shutting-down" && stopDone && [...sup.servers.values()].every(isDown)) {
      this.syncTimer("shutdown-deadline", undefined);
      sup.phase = "stopped";
      this.log("info", "shutdown-complete", "every server has stopped");
      this.effects.push({ type: "shutdown-complete" });
    }
  }

  /** Keeps a supervisor timer armed at `at`, or cancelled when `at` is undefined. */
  private syncTimer(timer: SupervisorTimer, at: number | undefined): void {
    const armed = this.sup.timers[timer];
    if (armed !== undefined && armed.at === at) return;
    if (armed !== undefined) {
      delete this.sup.timers[timer];
      this.effects.push({ type: "cancel-timer", server: null, timer, id: armed.id });
    }
    if (at === undefined) return;
    const id = this.sup.nextTimerId++;
    this.sup.timers[timer] = { id, at };
    this.effects.push({ type: "arm-timer", server: null, timer, id, at });
  }

  private log(level: LogLevel, kind: SupervisorLogKind, message: string): void {
    this.effects.push({ type: "log", server: null, level, kind, message });
  }

  private specs(): ServerSpec[] {
    return [...this.sup.servers.values()].map((server) => server.spec);
  }
}

/** Servers a start request can act on: no process now, not pinned stopped, not being removed. */
function startable(sup: Supervisor, names: string[]): string[] {
  return names.filter((name) => {
    const server = sup.servers.get(name);
    return server !== undefined && hasNoProcess(server) && server.pin !== "stopped" && !sup.removing.has(name);
  });
}

/** The servers of a level (of every level when undefined), or of those named, that are not being removed. */
function namesAt(sup: Supervisor, level: number | undefined, names?: readonly string[]): string[] {
  return [...sup.servers.values()]
    .filter((server) => level === undefined || server.spec.level === level)
    .filter((server) => names === undefined || names.includes(server.spec.name))
    .filter((server) => !sup.removing.has(server.spec.name))
    .map((server) => server.spec.name);
}

/**
 * What start-all acts on: the startable servers of a level (level 0 is never started in bulk), or
 * those named (the Starter device's DevStartAll: one level of its own numbering). Starting them in one
 * launch run keeps the level order across requests that come back to back.
 */
export function startAllTargets(sup: Supervisor, level: number | undefined, names?: readonly string[]): string[] {
  return startable(
    sup,
    namesAt(sup, level, names).filter((name) => sup.servers.get(name)!.spec.level >= 1),
  );
}

/** What stop-all acts on: the servers with a process or a restart coming (not pinned started), and those still queued to start. */
export function stopAllTargets(sup: Supervisor, level: number | undefined, only?: readonly string[]): { running: string[]; queued: string[] } {
  const names = namesAt(sup, level, only);
  return {
    running: names.filter((name) => {
      const server = sup.servers.get(name)!;
      return !isDown(server) && server.pin !== "started";
    }),
    queued: sup.launch.queue.filter((name) => names.includes(name)),
  };
}

interface Wake {
  fork?: number;
  level?: number;
  failsafe?: number;
}

function emptyLaunch(nextForkAt: number): LaunchRun {
  return { queue: [], members: new Set(), unsettled: new Set(), levelOpensAt: new Map(), nextForkAt, failsafeAt: new Map(), rules: new Map() };
}

function emptyStop(): StopRun {
  return { queue: [], members: new Set(), force: false, rules: new Map() };
}

/** A copy deep enough that the draft can change it without touching the caller's value. */
function copy(sup: Supervisor): Supervisor {
  return {
    ...sup,
    servers: new Map(sup.servers),
    removing: new Set(sup.removing),
    launch: {
      ...sup.launch,
      queue: [...sup.launch.queue],
      members: new Set(sup.launch.members),
      unsettled: new Set(sup.launch.unsettled),
      levelOpensAt: new Map(sup.launch.levelOpensAt),
      failsafeAt: new Map(sup.launch.failsafeAt),
    },
    stop: { ...sup.stop, queue: [...sup.stop.queue], members: new Set(sup.stop.members) },
    timers: { ...sup.timers },
  };
}
