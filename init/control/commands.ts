// What each control command does to the running supervisor, and how its outcome is awaited.
//
// Requests become the core's own events (start, stop, restart, kill, pin, unpin, start-all,
// stop-all, shutdown, a reload); nothing here decides anything the state machine decides. Before an
// event is dispatched, the pure step() is run on the current state to learn whether the machine
// would refuse it and why ("pinned stopped: unpin it to start it"): the same answer the engine gets.
// Waiting for an outcome listens to the engine's events and looks at each target server after every
// step: no polling, no timers besides the caller's timeout.

import { describeServerExit, formatMs, isDown, type Server, type ServerEvent } from "../core/server";
import { needsRestart, startAllTargets, step, stopAllTargets, type Supervisor } from "../core/supervisor";
import { monotonicNow } from "../runtime/engine";
import type { RunningSupervisor } from "../runtime/supervisor";
import { describeFailure, globToRegExp, isGlob, statusOf } from "./describe";
import { describeRecord, initLog } from "../log/init-log";
import { tailFile, type LogTaps } from "./logs";
import {
  INIT_VERSION,
  PROTOCOL_VERSION,
  SUPPORTED_VERSIONS,
  type ActionResult,
  type CommandArgs,
  type ErrorCode,
  type HelloResult,
  type InitInfo,
  type LogLineEvent,
  type LogsResult,
  type Outcome,
  type ReadyResult,
  type ReexecResult,
  type RefreshResult,
  type ReloadResult,
  type ServerStatus,
  type ShutdownResult,
  type StatusResult,
  type TimelineResult,
} from "./protocol";
import type { BootTimeline } from "./timeline";
import { ReexecError, type CheckedBinary } from "../runtime/reexec";
import { STATE_FORMAT } from "../core/state";
import { Watch } from "./watch";

/** `logs starter-init` (or the Starter's DevReadLog name, `Starter`) reads the init's own log. */
const INIT_LOG_NAMES = ["starter-init", "Starter"];

export class ControlError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

/** What a command may do with the connection it came on. */
export interface RequestContext {
  /** Sends an event tied to this request (streams). */
  send(event: string, data: unknown): void;
  /** Called once when the connection goes away. */
  onClose(listener: () => void): void;
  /** The connection stays open after the answer (streams; shutdown: the client waits for the close). */
  keepOpen(): void;
  /** Called once the answer has been sent (a stream's events follow its answer). */
  afterAnswer(listener: () => void): void;
}

/** A verdict on one server: null while it is still on its way. */
type Verdict = { ok: boolean; message: string } | null;
type Judge = (server: Server | undefined, sup: Supervisor) => Verdict;

type ActionKind = "start" | "stop" | "restart" | "kill";

export class Commands {
  constructor(
    private readonly running: RunningSupervisor,
    private readonly timeline: BootTimeline,
    private readonly logs: LogTaps,
    private readonly socketPath: string,
  ) {}

  private get sup(): Supervisor {
    return this.running.engine.sup;
  }

  hello(): HelloResult {
    const reexec = this.running.reexecInfo();
    return {
      protocol: PROTOCOL_VERSION,
      supported: SUPPORTED_VERSIONS,
      version: INIT_VERSION,
      pid: process.pid,
      role: this.running.role,
      ...(reexec ? { reexec } : {}),
    };
  }

  /**
   * Checks the binary, answers, then execs it (the connection closes with the exec). An exec that
   * fails is told on the open connection as a `reexec-failed` event; the init goes on unchanged.
   */
  async reexec(args: CommandArgs<"reexec">, context: RequestContext): Promise<ReexecResult> {
    const requestedAt = Date.now();
    let binary: CheckedBinary;
    try {
      binary = await this.running.checkReexec(args.binary ?? null, args.force);
    } catch (err) {
      if (err instanceof ReexecError) throw new ControlError(err.kind === "busy" ? "busy" : "reexec-failed", err.message, { kind: err.kind });
      throw err;
    }
    context.keepOpen();
    context.afterAnswer(() =>
      setImmediate(() => {
        this.running.execReexec(binary, requestedAt).catch((err: unknown) => context.send("reexec-failed", { message: (err as Error).message }));
      }),
    );
    return {
      binary: binary.file,
      from: INIT_VERSION,
      to: binary.version,
      stateFormat: binary.stateFormat,
      downgrade: binary.stateFormat < STATE_FORMAT,
      pid: process.pid,
    };
  }

  status(args: CommandArgs<"status">): StatusResult {
    return statusResult(this.running, this.socketPath, args.servers.length ? this.match(args.servers) : undefined);
  }

  /** Names in config order for names and glob patterns; a pattern matching nothing is an error. */
  private match(patterns: string[]): string[] {
    const all = [...this.sup.servers.keys()].filter((name) => !this.sup.removing.has(name));
    const wanted = new Set<string>();
    const missing: string[] = [];
    for (const pattern of patterns) {
      const glob = isGlob(pattern) ? globToRegExp(pattern) : null;
      const found = all.filter((name) => (glob ? glob.test(name) : name === pattern));
      if (found.length === 0) missing.push(pattern);
      for (const name of found) wanted.add(name);
    }
    if (missing.length) {
      throw new ControlError("not-found", `no server matches ${missing.map((p) => JSON.stringify(p)).join(", ")}`, { missing, servers: all });
    }
    return all.filter((name) => wanted.has(name));
  }

  private one(pattern: string): string {
    const names = this.match([pattern]);
    if (names.length > 1) throw new ControlError("bad-request", `${JSON.stringify(pattern)} matches ${names.length} servers; name one`, { matches: names });
    return names[0];
  }

  // ---- start / stop / restart / kill ---------------------------------------------------------

  async action(kind: ActionKind, args: CommandArgs<"start">, context: RequestContext): Promise<ActionResult> {
    const names = this.match(args.servers);
    if (this.sup.phase === "shutting-down" && kind !== "stop" && kind !== "kill") throw new ControlError("refused", "the init is shutting down");
    const now = monotonicNow();
    const judges = new Map<string, Judge>();
    // Outcomes known at once: refused by the machine, or already where the request would take it.
    const known = new Map<string, Outcome>();
    for (const name of names) {
      const before = this.sup.servers.get(name)!;
      const event = { type: kind, now } as ServerEvent;
      const why = this.refusal(name, event);
      const judge = JUDGES[kind](before);
      if (why !== null && !IGNORED_AS_DONE[kind].some((text) => why.startsWith(text))) {
        known.set(name, this.outcome(name, false, why));
        continue;
      }
      if (why !== null && judge(before, this.sup)?.ok) {
        const already =
          before.state === "ready"
            ? `already ready (pid ${before.pid})`
            : before.state === "listening"
              ? "already listening: a connection starts it"
              : `not running (${before.state})`;
        known.set(name, this.outcome(name, true, already));
        continue;
      }
      if (why === null) this.running.engine.serverEvent(name, event);
      judges.set(name, judge);
    }
    if (!args.wait) {
      const outcomes = names.map((name) => known.get(name) ?? this.outcome(name, true, `${kind} requested`));
      return { waited: false, timedOut: false, outcomes };
    }
    const { outcomes, timedOut } = await this.waitFor(judges, args.timeoutMs, context);
    return { waited: true, timedOut, outcomes: names.map((name) => known.get(name) ?? outcomes.get(name)!) };
  }

  /** Why the machine would ignore this event for this server now, or null when it would act. */
  private refusal(name: string, event: ServerEvent): string | null {
    return step(this.sup, { type: "server", name, event }).ignored;
  }

  private outcome(name: string, ok: boolean, message: string, pending = false): Outcome {
    const server = this.sup.servers.get(name);
    return { name, ok, pending, state: server?.state ?? "removed", pid: server?.pid ?? null, message };
  }

  /**
   * Resolves when every judge has a verdict, or at the timeout (the rest are reported pending), or
   * when the client went away (nobody to answer).
   */
  private async waitFor(
    judges: Map<string, Judge>,
    timeoutMs: number,
    context: RequestContext,
  ): Promise<{ outcomes: Map<string, Outcome>; timedOut: boolean }> {
    const outcomes = new Map<string, Outcome>();
    const check = (): boolean => {
      for (const [name, judge] of judges) {
        if (outcomes.has(name)) continue;
        const verdict = judge(this.sup.servers.get(name), this.sup);
        if (verdict !== null) outcomes.set(name, this.outcome(name, verdict.ok, verdict.message));
      }
      return outcomes.size === judges.size;
    };
    if (check()) return { outcomes, timedOut: false };
    const timedOut = await this.until(check, timeoutMs, context);
    for (const name of judges.keys()) {
      if (!outcomes.has(name))
        outcomes.set(name, this.outcome(name, false, `still ${this.sup.servers.get(name)?.state ?? "removed"} after ${formatMs(timeoutMs)}`, true));
    }
    return { outcomes, timedOut };
  }

  /**
   * Resolves after an engine event that makes `settled` true (or throw), when the client went away
   * (nobody to answer), or at the timeout: true only in that last case.
   */
  private until(settled: () => boolean, timeoutMs: number, context: RequestContext): Promise<boolean> {
    return new Promise((resolve) => {
      let done = false;
      const finish = (timedOut: boolean) => {
        if (done) return;
        done = true;
        unsubscribe();
        clearTimeout(timer);
        resolve(timedOut);
      };
      const unsubscribe = this.running.engine.onEvent(() => {
        try {
          if (settled()) finish(false);
        } catch {
          finish(false);
        }
      });
      const timer = setTimeout(() => finish(true), timeoutMs);
      context.onClose(() => finish(false));
    });
  }

  // ---- start-all / stop-all ------------------------------------------------------------------

  async startAll(args: CommandArgs<"start-all">, context: RequestContext): Promise<ActionResult> {
    if (this.sup.phase === "shutting-down") throw new ControlError("refused", "the init is shutting down");
    const names = args.servers && this.match(args.servers);
    const targets = startAllTargets(this.sup, args.level, names);
    if (targets.length === 0) return { waited: args.wait, timedOut: false, outcomes: [] };
    this.running.engine.dispatch({ type: "start-all", now: monotonicNow(), level: args.level, names });
    return this.settle(targets, launchJudge, args, context, "start requested");
  }

  async stopAll(args: CommandArgs<"stop-all">, context: RequestContext): Promise<ActionResult> {
    const names = args.servers && this.match(args.servers);
    const { running: targets, queued } = stopAllTargets(this.sup, args.level, names);
    if (targets.length === 0 && queued.length === 0) return { waited: args.wait, timedOut: false, outcomes: [] };
    this.running.engine.dispatch({ type: "stop-all", now: monotonicNow(), level: args.level, names });
    return this.settle(targets, stopAllJudge, args, context, "stop requested");
  }

  private async settle(
    targets: string[],
    judge: Judge,
    args: { wait: boolean; timeoutMs: number },
    context: RequestContext,
    requested: string,
  ): Promise<ActionResult> {
    if (!args.wait) return { waited: false, timedOut: false, outcomes: targets.map((name) => this.outcome(name, true, requested)) };
    const { outcomes, timedOut } = await this.waitFor(new Map(targets.map((name) => [name, judge])), args.timeoutMs, context);
    return { waited: true, timedOut, outcomes: targets.map((name) => outcomes.get(name)!) };
  }

  // ---- pins ----------------------------------------------------------------------------------

  pin(args: CommandArgs<"pin">): ActionResult {
    const name = this.one(args.server);
    const event: ServerEvent = { type: "pin", now: monotonicNow(), pin: args.pin };
    const why = this.refusal(name, event);
    if (this.sup.phase === "shutting-down" && args.pin === "started") throw new ControlError("refused", "the init is shutting down");
    if (why === null) this.running.engine.serverEvent(name, event);
    // Pinning started also starts it, pinning stopped also stops it: report where it is heading.
    return { waited: false, timedOut: false, outcomes: [this.outcome(name, true, why === null ? `pinned ${args.pin}` : `already pinned ${args.pin}`)] };
  }

  unpin(args: CommandArgs<"unpin">): ActionResult {
    const name = this.one(args.server);
    const event: ServerEvent = { type: "unpin", now: monotonicNow() };
    const why = this.refusal(name, event);
    if (why === null) this.running.engine.serverEvent(name, event);
    return { waited: false, timedOut: false, outcomes: [this.outcome(name, true, why === null ? "unpinned" : "was not pinned")] };
  }

  // ---- logs ----------------------------------------------------------------------------------

  async logLines(args: CommandArgs<"logs">, context: RequestContext): Promise<LogsResult> {
    if (INIT_LOG_NAMES.includes(args.server) && !this.sup.servers.has(args.server)) return this.initLogLines(args, context);
    const name = this.one(args.server);
    const file = this.sup.servers.get(name)!.spec.log.file;
    let lines: string[];
    let source: LogsResult["source"] = "memory";
    if (file !== null) {
      try {
        lines = await tailFile(file, args.lines);
        source = "file";
      } catch {
        lines = this.logs.memory(name, args.lines);
      }
    } else {
      lines = this.logs.memory(name, args.lines);
    }
    if (args.follow) {
      context.keepOpen();
      const stop = this.logs.follow(name, (event: LogLineEvent) => context.send("line", event));
      context.onClose(stop);
    }
    return { server: name, source, file, lines, follow: args.follow };
  }

  /** The init's own log: its file (rotated copy included), as text; following, each new record. */
  private async initLogLines(args: CommandArgs<"logs">, context: RequestContext): Promise<LogsResult> {
    const file = initLog.filePath;
    const lines = file === null ? [] : await tailFile(file, args.lines).catch(() => []);
    if (args.follow) {
      context.keepOpen();
      const stop = initLog.onLine((line) => context.send("line", { line: describeRecord(line), stream: "stderr" } satisfies LogLineEvent));
      context.onClose(stop);
    }
    return { server: INIT_LOG_NAMES[0], source: "file", file, lines: lines.map(describeRecord), follow: args.follow };
  }

  // ---- reload --------------------------------------------------------------------------------

  async reload(args: CommandArgs<"reload">, context: RequestContext): Promise<ReloadResult> {
    if (this.sup.phase === "shutting-down") throw new ControlError("refused", "the init is shutting down");
    const before = new Map(this.sup.servers);
    const outcome = await this.running.reload(args.dryRun);
    const config = this.running.config().source;
    if (!outcome.ok) throw new ControlError("config", outcome.error ?? "the config does not load", { config });
    const base = {
      dryRun: args.dryRun,
      config,
      added: outcome.added,
      removed: outcome.removed,
      changed: outcome.changed,
      unchanged: outcome.unchanged,
      ...(outcome.notes?.length ? { notes: outcome.notes } : {}),
    };
    if (args.dryRun) return { ...base, waited: false, timedOut: false, outcomes: [] };

    const judges = new Map<string, Judge>();
    for (const name of outcome.removed) judges.set(name, (server) => (server === undefined ? { ok: true, message: "removed" } : null));
    for (const name of outcome.added) judges.set(name, addedJudge);
    for (const name of outcome.changed) {
      const old = before.get(name);
      const spec = this.sup.servers.get(name)?.spec;
      const restarts =
        old !== undefined && (old.state === "starting" || old.state === "ready") && old.pin === null && spec !== undefined && needsRestart(old.spec, spec);
      judges.set(name, restarts ? restartJudge(old) : () => ({ ok: true, message: "changed; the next start uses the new config" }));
    }
    const targets = [...judges.keys()];
    if (!args.wait) return { ...base, waited: false, timedOut: false, outcomes: targets.map((name) => this.outcome(name, true, "applying")) };
    const { outcomes, timedOut } = await this.waitFor(judges, args.timeoutMs, context);
    return { ...base, waited: true, timedOut, outcomes: targets.map((name) => outcomes.get(name)!) };
  }

  // ---- ready ---------------------------------------------------------------------------------

  private readiness(): ReadyResult {
    return readiness(this.running);
  }

  /** Not ready, and nothing will change that by itself: what is missing has failed or exited for good. */
  private hopeless(result: ReadyResult): boolean {
    return !result.ready && result.phase === "running" && result.waiting.every((w) => w.state === "failed" || w.state === "stopped");
  }

  async ready(args: CommandArgs<"ready">, context: RequestContext): Promise<ReadyResult> {
    const settled = (result: ReadyResult) => result.ready || this.hopeless(result);
    const now = this.readiness();
    if (args.waitMs === 0 || settled(now)) return now;
    await this.until(() => settled(this.readiness()), args.waitMs, context);
    return this.readiness();
  }

  // ---- shutdown, timeline --------------------------------------------------------------------

  shutdown(args: CommandArgs<"shutdown">, context: RequestContext): ShutdownResult {
    const role = this.running.role;
    if (args.action !== "default" && role !== "vm") {
      const where = role === "container" ? "PID 1 of a container" : "a supervisor that is not PID 1";
      throw new ControlError("not-a-vm", `${args.action} is for the init of a VM; this one is ${where}: use "shutdown" (or stop the container)`, { role });
    }
    const action: ShutdownResult["action"] =
      args.action === "default" ? (role === "vm" ? "poweroff" : "exit") : args.action === "reboot" ? "restart" : args.action;
    context.keepOpen();
    // Answer first: the shutdown may end this process soon after.
    setImmediate(() => this.running.shutdown(action));
    return { action, role };
  }

  timelineResult(): TimelineResult {
    return this.timeline.snapshot(this.sup, monotonicNow());
  }

  // ---- watch, refresh-sources ----------------------------------------------------------------

  watch(args: CommandArgs<"watch">, context: RequestContext): StatusResult {
    context.keepOpen();
    const watch = new Watch(this.running, args.servers, context);
    context.onClose(() => watch.close());
    return { ...statusResult(this.running, this.socketPath, []), servers: watch.baseline() };
  }

  async refreshSources(args: CommandArgs<"refresh-sources">): Promise<RefreshResult> {
    if (this.sup.phase === "shutting-down") throw new ControlError("refused", "the init is shutting down");
    const outcome = await this.running.refreshSources(args.startAdded);
    if (!outcome.ok) throw new ControlError("config", outcome.error ?? "the sources could not be read");
    return { added: outcome.added, removed: outcome.removed, changed: outcome.changed, unchanged: outcome.unchanged, notes: outcome.notes ?? [] };
  }
}

/** The answer of `status` (also the HTTP listener's /status): every server, or the names given, in config order. */
export function statusResult(running: RunningSupervisor, socketPath: string, names?: string[]): StatusResult {
  const sup = running.engine.sup;
  const now = monotonicNow();
  const sources = running.sources?.() ?? [];
  const init: InitInfo = {
    protocol: PROTOCOL_VERSION,
    version: INIT_VERSION,
    pid: process.pid,
    role: running.role,
    phase: sup.phase,
    // Since the init's first start: a reexec does not end its uptime.
    uptimeMs: Math.max(0, Date.now() - running.startedAt),
    config: running.config().source,
    socket: socketPath,
    resources: initResources(running),
    ...(running.reexecInfo() ? { reexec: running.reexecInfo()! } : {}),
  };
  const servers = (names ?? [...sup.servers.keys()]).map((name) =>
    withSockets(statusOf(sup.servers.get(name)!, now, running.engine.cgroupStats(name)), running),
  );
  return { init, servers, ...(sources.length ? { sources } : {}) };
}

/** Socket activation's part of a server's status: its sockets as the init holds them, their queues, its activations. */
function withSockets(status: ServerStatus, running: RunningSupervisor): ServerStatus {
  const server = running.engine.sup.servers.get(status.name);
  if (!server?.spec.sockets?.length) return status;
  return {
    ...status,
    activation: server.spec.activation ?? "eager",
    activations: server.activations,
    instances: server.instances,
    sockets: running.engine.sockets.describe(status.name),
  };
}

/** What the init holds now: the soak watches these for leaks. */
function initResources(running: RunningSupervisor): InitInfo["resources"] {
  const active: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) active[kind] = (active[kind] ?? 0) + 1;
  const memory = process.memoryUsage();
  return {
    rssBytes: memory.rss,
    heapUsedBytes: memory.heapUsed,
    heapTotalBytes: memory.heapTotal,
    externalBytes: memory.external,
    active,
    engine: running.engine.resources(),
  };
}

/**
 * The rule of `ready` (also the HTTP listener's /readyz): the boot is complete and every server that
 * should run is ready, and every source has been read at least once.
 */
export function readiness(running: RunningSupervisor): ReadyResult {
  const sup = running.engine.sup;
  const waiting: ReadyResult["waiting"] = [];
  for (const server of sup.servers.values()) {
    const name = server.spec.name;
    if (sup.removing.has(name)) continue;
    const shouldRun = (server.desired === "up" && server.pin !== "stopped") || sup.launch.queue.includes(name) || sup.launch.unsettled.has(name);
    // A listening server (socket activation) serves: its first connection starts it.
    if (shouldRun && server.state !== "ready" && server.state !== "listening") waiting.push({ name, state: server.state, reason: server.reason });
    // Ready but hung (its admin device does not answer ping): not ready for a health check either.
    else if (shouldRun && server.liveness?.state === "unresponsive")
      waiting.push({ name, state: "unresponsive", reason: `${server.liveness.failures} ping(s) failed: ${server.liveness.lastError}` });
  }
  // A source never read yet (the Tango database has not answered): its servers are not even known.
  for (const source of running.sources?.() ?? []) {
    if (source.lastReadAgoMs === null) waiting.push({ name: `sources.${source.name}`, state: "starting", reason: source.message });
  }
  return { ready: sup.phase === "running" && waiting.length === 0, phase: sup.phase, waiting };
}

/** Requests the machine ignores because the server is already where it was asked to go (or going there). */
const IGNORED_AS_DONE: Record<ActionKind, string[]> = {
  start: ["already", "will start again"],
  stop: ["already"],
  restart: ["will start again"],
  kill: ["no process", "already killed"],
};

const startJudge: Judge = (server) => {
  if (server === undefined) return { ok: false, message: "removed from the configuration" };
  switch (server.state) {
    case "ready":
      return { ok: true, message: readyMessage(server) };
    case "listening":
      return { ok: true, message: "listening: a connection starts it" };
    case "starting":
    case "stopping":
      return null;
    case "backoff":
      return { ok: false, message: `${describeFailure(server)}; restarting` };
    default:
      return {
        ok: false,
        message:
          server.state === "stopped" && server.reason === "exited" ? `stopped: ${describeFailure(server)}` : `${server.state}: ${describeFailure(server)}`,
      };
  }
};

const stopJudge: Judge = (server) => {
  if (server === undefined) return { ok: true, message: "removed" };
  if (isDown(server)) return { ok: true, message: stoppedMessage(server) };
  if (server.state === "stopping") return null;
  return { ok: false, message: `${server.state} again (started by another request)` };
};

const JUDGES: Record<ActionKind, (before: Server) => Judge> = {
  start: () => startJudge,
  stop: () => stopJudge,
  kill: () => stopJudge,
  restart: (before) => restartJudge(before),
};

/** Ready with another process than before (or failed on the way). */
function restartJudge(before: Server): Judge {
  return (server, sup) => {
    if (server === undefined) return { ok: false, message: "removed from the configuration" };
    if (server.state === "ready" && (server.pid !== before.pid || server.startedAt !== before.startedAt)) return { ok: true, message: readyMessage(server) };
    if (server.state === "ready" || server.state === "starting" || server.state === "stopping") return null;
    return startJudge(server, sup);
  };
}

/** A member of a start-all run: settled once ready, or once it is neither queued nor on its first attempt. */
const launchJudge: Judge = (server, sup) => {
  if (server === undefined) return { ok: false, message: "removed from the configuration" };
  if (server.state === "ready") return { ok: true, message: readyMessage(server) };
  const name = server.spec.name;
  if (sup.launch.queue.includes(name) || sup.launch.unsettled.has(name)) return null;
  return startJudge(server, sup);
};

/** An added server: started like a start-all member, or left alone when it does not start at boot. */
const addedJudge: Judge = (server, sup) => {
  if (server !== undefined && server.state === "stopped" && server.reason === "initial" && !sup.launch.queue.includes(server.spec.name)) {
    return { ok: true, message: "added; not started (autostart off, or a level above maxLevel)" };
  }
  return launchJudge(server, sup);
};

const stopAllJudge: Judge = (server, sup) => {
  if (server === undefined) return { ok: true, message: "removed" };
  if (isDown(server)) return { ok: true, message: stoppedMessage(server) };
  if (server.state === "stopping" || sup.stop.queue.includes(server.spec.name)) return null;
  if (server.pin === "started") return { ok: false, message: "pinned started" };
  return { ok: false, message: `${server.state} again (started by another request)` };
};

function readyMessage(server: Server): string {
  const time = server.readyAt !== null && server.startedAt !== null ? ` in ${formatMs(server.readyAt - server.startedAt)}` : "";
  return `ready${time} (pid ${server.pid})`;
}

function stoppedMessage(server: Server): string {
  const exit = server.lastExit;
  if (!exit || server.reason === "initial") return server.state;
  const how = `${describeServerExit(exit)}${exit.uptimeMs !== null ? ` after ${formatMs(exit.uptimeMs)}` : ""}`;
  return server.state === "failed" ? `not running (failed: ${how})` : `${server.state} (${how})`;
}
