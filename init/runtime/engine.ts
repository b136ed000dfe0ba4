// The engine drives the pure supervisor (core/supervisor.ts): it feeds events in, one at a time from
// a queue, and executes the effects that come out through process/ and log/. Nothing here decides
// *what* to do; it only does it and reports back what happened as further events.
//
// Events that effects produce (spawned, exited, ready, timer…) are queued and handled after the
// current step's effects have all run, so every step sees the world in the order things happened.
// No effect waits for another: a hook is a process like any other, whose end comes back as an event.
//
// Everything the engine does to the world goes through an EngineSystem (dinit's bp_sys idea): the
// kernel's below, fakes in the unit tests, which run this very engine with no process at all.

import fs from "node:fs";
import path from "node:path";
import { isDeepStrictEqual } from "node:util";
import { performance } from "node:perf_hooks";
import type { ConsoleReport } from "../log/console";
import type { Logger } from "../log/logger";
import { openPipe, ServerOutput, type CapturedPipe, type OutputStream, type PipeOpener } from "../log/server-output";
import { native } from "../native";
import { describeExit, signalName, type ExitRecord } from "../process/exit";
import { parseNotifyMessage, startProbe, type NotifyChannel, type ProbeCallbacks, type ProbeContext, type RunningProbe } from "../process/readiness";
import { spawnChild, StartError, type Child, type SpawnRequest } from "../process/spawn";
import { reaper } from "../process/reaper";
import type { CgroupControl, CgroupStats, Closable } from "../process/cgroup";
import { step, type Supervisor, type SupervisorEffect, type SupervisorEvent, type SupervisorStep, type SupervisorTimer } from "../core/supervisor";
import { hasNoProcess, type Hook, type ServerEvent, type ServerTimer } from "../core/server";
import { processesOf } from "../core/state";
import type { ReadinessProbe, ServerSpec } from "../core/types";
import { LivenessRunner } from "./liveness";
import { closeListener, listenQueue, openListener, socketsBusy, updateListener } from "../process/listen";
import { SocketTable, type HeldSocket, type SocketSystem } from "./sockets";

/** How often a forking server's pidFile is looked at until its daemon has written it. */
const MAIN_PID_POLL_MS = 50;

/** Added to performance.now() (which counts from this process's start): a re-executed init goes on with the clock of the one before. */
let clockOffset = 0;

/** Monotonic milliseconds: the core's clock. */
export function monotonicNow(): number {
  return performance.now() + clockOffset;
}

/** The core's clock now, with CLOCK_MONOTONIC beside it: what a re-executed init goes on from. */
export function clockReading(): { now: number; monotonicNs: string } {
  return { now: monotonicNow(), monotonicNs: process.hrtime.bigint().toString() };
}

/** In a re-executed init: monotonicNow() goes on from the reading the one before took (plus the time since, by CLOCK_MONOTONIC). */
export function continueClock(reading: { now: number; monotonicNs: string }): void {
  const elapsedMs = Number(process.hrtime.bigint() - BigInt(reading.monotonicNs)) / 1e6;
  clockOffset = reading.now + elapsedMs - performance.now();
}

export type OutputListener = (server: string, line: string, stream: OutputStream, at: string) => void;
/** Called after each handled event, with what the step did (the control socket waits for outcomes this way). */
export type StepListener = (event: SupervisorEvent, result: SupervisorStep) => void;

export type TimerHandle = unknown;
/** A started process as the engine sees it: its pid and the parent ends of its pipes (-1: none). */
export type SpawnedChild = Omit<Child, "exited">;
/** Whose process it is: a server's own, one of its hooks, or an accept instance (for messages, and for the fakes of the tests). */
export interface ProcessOwner {
  server: string;
  role: "server" | Hook | "instance";
}

/** Everything the engine does to the world (the listening sockets of socket activation: SocketSystem). */
export interface EngineSystem extends SocketSystem {
  /** Monotonic milliseconds. */
  now(): number;
  setTimer(delayMs: number, fire: () => void): TimerHandle;
  clearTimer(handle: TimerHandle): void;
  /** fork/exec; throws a StartError. onExit is called once, when the reaper collects the process. */
  spawn(request: SpawnRequest, owner: ProcessOwner, onExit: (exit: ExitRecord) => void): SpawnedChild;
  /** kill(2), process.kill's way: a negative pid is a process group; throws (ESRCH) when nothing is there. */
  kill(pid: number, signal: number): void;
  /** A bound AF_UNIX datagram socket at path (sd_notify); throws with an errno code. */
  bindDatagram(path: string): number;
  close(fd: number): void;
  makeDirectory(path: string): void;
  removeFile(path: string): void;
  /** A reader on the parent's end of a pipe; destroying it closes the fd. */
  openPipe: PipeOpener;
  startProbe(probe: ReadinessProbe, context: ProbeContext, callbacks: ProbeCallbacks): RunningProbe;
  /** accept4 on a listening socket: a connection (blocking, close-on-exec), or null when none waits. */
  accept(fd: number): number | null;
  /** Whether a connection is open on, or waits at, any of these sockets (idleStop). */
  socketsBusy(sockets: readonly HeldSocket[]): boolean;
  // ---- cgroups, daemons, sd_notify messages ----
  /** The servers' cgroups; null without a writable cgroup v2 (servers are tracked by process group). */
  readonly cgroups: CgroupControl | null;
  /** Calls onDatagram with each datagram that arrives on a bound datagram socket, until close(). */
  watchDatagrams(fd: number, onDatagram: (text: string) => void): Closable;
  /** The pid written in a pid file; null while it is missing or holds no pid. */
  readPidFile(file: string): number | null;
  /** The parent of a process; null when it is gone. */
  parentOf(pid: number): number | null;
  /**
   * Calls onExit once when a process we did not spawn ends (a daemon): its exit through the reaper when
   * it is our child (a launcher's orphan comes to us), else with no status once it is gone. Null when
   * it is gone already.
   */
  watchExit(pid: number, onExit: (exit: { code: number | null; signal: number | null }) => void): Closable | null;
  /**
   * A child the init before a reexec spawned: onExit is called once with its exit (at once if the
   * reaper collected it already as an orphan). False when it is neither alive nor reaped lately.
   */
  adopt(pid: number, onExit: (exit: ExitRecord) => void): boolean;
}

/** The kernel, through process/ and the addon: what the init runs with. */
export function kernelSystem(cgroups: CgroupControl | null = null): EngineSystem {
  return {
    now: monotonicNow,
    setTimer: (delayMs, fire) => setTimeout(fire, delayMs),
    clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout),
    spawn(request, _owner, onExit) {
      const { exited, ...child } = spawnChild(request);
      // onExit is the engine's own and does not throw.
      void exited.then(onExit);
      return child;
    },
    kill: (pid, signal) => process.kill(pid, signal),
    bindDatagram: (file) => native().unixDgramBind(file),
    close: (fd) => native().close(fd),
    makeDirectory: (dir) => fs.mkdirSync(dir, { recursive: true, mode: 0o755 }),
    removeFile: (file) => fs.rmSync(file, { force: true }),
    openPipe,
    startProbe,
    openListener,
    updateListener,
    closeListener,
    listenQueue,
    watchReadable: (fd, onReadable) => new (native().FdWatcher)(fd, onReadable),
    stopWatching: (handle) => (handle as InstanceType<ReturnType<typeof native>["FdWatcher"]>).close(),
    accept: (fd) => native().socketAccept(fd),
    socketsBusy,
    cgroups,
    watchDatagrams(fd, onDatagram) {
      let open = true;
      const watcher = new (native().FdWatcher)(fd, () => {
        // A datagram's handler may close the socket (READY=1 ends the sd_notify probe, which closes
        // it): nothing more is read then.
        while (open) {
          const datagram = native().recvDgram(fd);
          if (!datagram) return;
          onDatagram(datagram.toString("utf8"));
        }
      });
      return {
        close: () => {
          open = false;
          watcher.close();
        },
      };
    },
    readPidFile(file) {
      try {
        const text = fs.readFileSync(file, "utf8").trim();
        return /^\d+$/.test(text) && Number(text) > 0 ? Number(text) : null;
      } catch {
        return null;
      }
    },
    parentOf(pid) {
      try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
        return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      } catch {
        return null;
      }
    },
    adopt: (pid, onExit) => reaper.claim(pid, onExit),
    watchExit(pid, onExit) {
      const parent = this.parentOf(pid);
      if (parent === process.pid || parent === null) {
        const listener = (exit: ExitRecord) => onExit({ code: exit.code, signal: exit.signal });
        return reaper.claim(pid, listener) ? { close: () => reaper.unwatch(pid, listener) } : null;
      }
      // Not our child (its launcher's own child, still alive): a pidfd says when it is gone, not how.
      let pidfd: number;
      try {
        pidfd = native().pidfdOpen(pid);
      } catch {
        return null;
      }
      const watcher = new (native().FdWatcher)(pidfd, () => {
        close();
        onExit({ code: null, signal: null });
      });
      const close = () => {
        watcher.close();
        native().close(pidfd);
      };
      return { close };
    },
  };
}

/** What the engine holds open right now: the leak checks of the tests and the soak read it. */
export interface EngineResources {
  timers: number;
  probes: number;
  notifySockets: number;
  /** notify pipes (s6 readiness) not handed to a probe yet. */
  notifyPipes: number;
  /** Output pipes being drained, over every server. */
  outputPipes: number;
  /** Line listeners on the servers' outputs (log probes, log taps). */
  lineListeners: number;
  stepListeners: number;
  outputListeners: number;
  /** Servers with runtime state (an output, maybe a probe). */
  servers: number;
  /** Listening sockets held for the servers (socket activation), and those watched for a connection. */
  listeningSockets: number;
  socketWatchers: number;
  /** cgroup.events watches, daemon searches, daemons' exits waited for, sd_notify readers. */
  cgroupWatches: number;
  mainPidSearches: number;
  daemonWatches: number;
  notifyReaders: number;
}

interface ServerRuntime {
  output: ServerOutput;
  probe: RunningProbe | null;
  /**
   * sd_notify socket, bound per server while it starts (readiness sd_notify) or runs (a watchdog): its
   * reader, and who listens to its messages (the sd_notify probe).
   */
  notifySocket: { fd: number; path: string; reader: Closable; listeners: Set<(fields: ReadonlyMap<string, string>) => void> } | null;
  /** The parent end of the notify pipe of the current process, until a probe takes it; -1: none. */
  notifyFd: number;
  /** The notify pipe the running probe took (it closes it): a reexec hands it on. */
  probeNotifyFd: number;
  /** The current process: the one spawned, or the daemon found (forking). */
  pid: number | null;
  /** Counts spawns: a probe of an earlier run reports nothing. */
  run: number;
  /** forking: pid is the launcher's, whose exit 0 ends nothing. */
  launcher: boolean;
  /** The run has a watchdog: its sd_notify socket stays open after readiness, for the keep-alives. */
  watchdog: boolean;
  /** The run's cgroup and its cgroup.events watch (until it is empty). */
  cgroup: { path: string; watch: Closable | null } | null;
  /** forking: the search for the daemon's main process, polling until found. */
  search: TimerHandle | null;
  /** forking: the exit of the daemon found, waited for. */
  daemonWatch: Closable | null;
}

type TimerKey = string;

/** An armed timer, as a re-executed init arms it again (its time on the core's clock). */
export interface ArmedTimer {
  server: string | null;
  timer: ServerTimer | SupervisorTimer;
  id: number;
  at: number;
}

/** What the engine holds for one server that a re-executed init takes over: fds and where each run stands. */
export interface CapturedServer {
  name: string;
  pid: number | null;
  run: number;
  launcher: boolean;
  watchdog: boolean;
  cgroup: string | null;
  notifyFd: number;
  probeNotifyFd: number;
  notifySocket: { fd: number; path: string } | null;
  /** forking: the daemon whose exit is waited for. */
  daemon: number | null;
  pipes: CapturedPipe[];
}

/** The engine's part of a reexec state (the supervisor's own is core/state.ts's). */
export interface CapturedEngine {
  timers: ArmedTimer[];
  servers: CapturedServer[];
}

function timerKey(server: string | null, timer: ServerTimer | SupervisorTimer): TimerKey {
  return `${server ?? ""}\0${timer}`;
}

export class Engine {
  sup: Supervisor;
  private readonly queue: SupervisorEvent[] = [];
  private draining = false;
  private readonly timers = new Map<TimerKey, { handle: TimerHandle } & ArmedTimer>();
  private readonly servers = new Map<string, ServerRuntime>();
  private readonly shutdownWaiters: (() => void)[] = [];
  private readonly listeners = new Set<StepListener>();
  private readonly outputListeners = new Set<OutputListener>();
  /** The ping loops of ready servers with a liveness check. */
  private readonly liveness = new LivenessRunner(
    (name, event) => this.serverEvent(name, event),
    () => this.system.now(),
  );
  /** Set once a shutdown completed. */
  shutdownComplete = false;
  /** Every listening socket held for the servers (socket activation). */
  readonly sockets: SocketTable;

  constructor(
    sup: Supervisor,
    private readonly log: Logger,
    /** Lines for a person on the console: boot progress, failures, shutdown steps. */
    private readonly progress: ConsoleReport,
    private readonly runtimeDir: string,
    private readonly system: EngineSystem = kernelSystem(),
    /** The sockets opened before the engine existed (stage 2 binds them with the config's loading). */
    sockets?: SocketTable,
  ) {
    this.sup = sup;
    this.sockets = sockets ?? new SocketTable(system);
  }

  /**
   * Queues an event; handles the queue unless already doing so. An event whose handling throws (a
   * bug) is logged and the queue goes on: nothing queued behind it waits for the next dispatch.
   */
  dispatch(event: SupervisorEvent): void {
    this.queue.push(event);
    if (this.draining) return;
    this.draining = true;
    try {
      for (let next = this.queue.shift(); next; next = this.queue.shift()) {
        try {
          this.handle(next);
        } catch (err) {
          this.log.error({ err, event: describeEvent(next) }, "handling an event failed");
        }
      }
    } finally {
      this.draining = false;
    }
  }

  /** Routes an event to one server's machine. */
  serverEvent(name: string, event: ServerEvent): void {
    this.dispatch({ type: "server", name, event });
  }

  /** Called after each handled event; a listener that throws is logged and the others still run. */
  onEvent(listener: StepListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Every line any server writes, whichever ServerOutput carries it now (a reload may replace one). */
  onOutput(listener: OutputListener): () => void {
    this.outputListeners.add(listener);
    return () => this.outputListeners.delete(listener);
  }

  /** Resolves once a shutdown has completed. */
  whenShutdownComplete(): Promise<void> {
    if (this.shutdownComplete) return Promise.resolve();
    return new Promise((resolve) => this.shutdownWaiters.push(resolve));
  }

  output(name: string): ServerOutput | null {
    return this.servers.get(name)?.output ?? null;
  }

  resources(): EngineResources {
    const runtimes = [...this.servers.values()];
    return {
      timers: this.timers.size,
      probes: runtimes.filter((r) => r.probe !== null).length,
      notifySockets: runtimes.filter((r) => r.notifySocket !== null).length,
      cgroupWatches: runtimes.filter((r) => r.cgroup?.watch).length,
      mainPidSearches: runtimes.filter((r) => r.search !== null).length,
      daemonWatches: runtimes.filter((r) => r.daemonWatch !== null).length,
      notifyReaders: runtimes.filter((r) => r.notifySocket !== null).length,
      notifyPipes: runtimes.filter((r) => r.notifyFd >= 0).length,
      outputPipes: runtimes.reduce((sum, r) => sum + r.output.openPipes, 0),
      lineListeners: runtimes.reduce((sum, r) => sum + r.output.lineListeners, 0),
      stepListeners: this.listeners.size,
      outputListeners: this.outputListeners.size,
      servers: this.servers.size,
      listeningSockets: this.sockets.entries().length,
      socketWatchers: this.sockets.watchers,
    };
  }

  private handle(event: SupervisorEvent): void {
    const result = step(this.sup, event);
    this.sup = result.sup;
    if (result.ignored) this.log.debug({ event: describeEvent(event), why: result.ignored }, "event ignored");
    this.execute(result.effects);
    this.releaseEnded(event, result.effects);
    if (event.type === "config-reloaded" || result.effects.some((effect) => effect.type === "log" && effect.kind === "removed")) this.forgetRemoved();
    this.progress.endStep();
    for (const listener of this.listeners) {
      try {
        listener(event, result);
      } catch (err) {
        this.log.error({ err, event: describeEvent(event) }, "an event listener failed");
      }
    }
  }

  private execute(effects: SupervisorEffect[]): void {
    for (const effect of effects) {
      try {
        this.executeOne(effect);
      } catch (err) {
        this.log.error({ err, effect: effect.type }, "effect failed");
      }
    }
  }

  private executeOne(effect: SupervisorEffect): void {
    switch (effect.type) {
      case "spawn":
        return this.spawn(effect.spec);
      case "start-probe":
        return this.startProbe(effect.server, effect.pid);
      case "stop-probe":
        return this.stopProbe(effect.server);
      case "start-liveness":
        return this.liveness.start(effect.server, effect.pid, effect.liveness, this.sup.servers.get(effect.server)?.spec.env ?? {});
      case "stop-liveness":
        return this.liveness.stop(effect.server);
      case "signal":
        return this.signal(effect.pid, effect.signal);
      case "kill":
        return this.signal(effect.pid, 9);
      case "signal-cgroup":
        return this.signalCgroup(effect.server, effect.cgroup, effect.signal);
      case "find-main-pid":
        return this.searchMainPid(effect.server, effect.cgroup, effect.pidFile);
      case "run-pre-start":
        return this.runHook(effect.server, effect.argv, null);
      case "run-post-stop":
        return this.runHook(effect.server, effect.argv, { code: effect.code, signal: effect.signal });
      case "arm-timer":
        return this.armTimer(effect.server, effect.timer, effect.id, effect.at);
      case "cancel-timer":
        return this.cancelTimer(effect.server, effect.timer);
      case "log":
        return this.writeLog(effect);
      case "shutdown-complete":
        // The servers' cgroups are empty now: the init leaves no directory of its own behind.
        for (const runtime of this.servers.values()) if (runtime.cgroup) this.system.cgroups?.remove(runtime.cgroup.path);
        this.shutdownComplete = true;
        // Every server has stopped: nothing is left to hand the sockets to.
        this.sockets.closeAll();
        for (const resolve of this.shutdownWaiters.splice(0)) resolve();
        return;
      case "watch-sockets":
        return this.watchSockets(effect.server);
      case "unwatch-sockets":
        return this.sockets.unwatch(effect.server);
      case "spawn-instance":
        return this.spawnInstance(effect.server, effect.socket);
      case "check-idle":
        return this.serverEvent(effect.server, { type: "idle-check", now: this.system.now(), busy: this.system.socketsBusy(this.sockets.of(effect.server)) });
    }
  }

  private runtimeFor(spec: ServerSpec): ServerRuntime {
    let runtime = this.servers.get(spec.name);
    if (!runtime) {
      runtime = {
        output: this.newOutput(spec),
        probe: null,
        notifySocket: null,
        notifyFd: -1,
        probeNotifyFd: -1,
        pid: null,
        run: 0,
        launcher: false,
        watchdog: false,
        cgroup: null,
        search: null,
        daemonWatch: null,
      };
      this.servers.set(spec.name, runtime);
    } else if (runtime.pid === null && !isDeepStrictEqual(runtime.output.settings, spec.log)) {
      // A reload changed where or how this server logs: its next process writes with the new settings.
      runtime.output.close();
      runtime.output = this.newOutput(spec);
    }
    return runtime;
  }

  private newOutput(spec: ServerSpec): ServerOutput {
    const output = new ServerOutput(spec.name, spec.log, this.system.openPipe);
    output.onLine((line, stream, at) => {
      for (const listener of this.outputListeners) listener(spec.name, line, stream, at);
    });
    return output;
  }

  /** Servers gone from the supervisor (removed by a reload, once stopped): their output and sockets are closed. */
  private forgetRemoved(): void {
    for (const [name, runtime] of this.servers) {
      if (this.sup.servers.has(name)) continue;
      this.releaseRun(runtime);
      if (runtime.cgroup) this.system.cgroups?.remove(runtime.cgroup.path);
      runtime.output.close();
      this.servers.delete(name);
    }
  }

  /**
   * After a step: a server left with no process and no run under way holds nothing any more (its
   * sd_notify reader, cgroup watch, daemon search); a search the core no longer waits for ends.
   */
  private releaseEnded(event: SupervisorEvent, effects: SupervisorEffect[]): void {
    const names = new Set<string>();
    if (event.type === "server") names.add(event.name);
    for (const effect of effects) if ("server" in effect && effect.server !== null) names.add(effect.server);
    for (const name of names) {
      const runtime = this.servers.get(name);
      const server = this.sup.servers.get(name);
      if (!runtime || !server) continue;
      if (hasNoProcess(server)) this.releaseRun(runtime);
      else if (runtime.search !== null && (server.state !== "starting" || server.daemon !== "seeking")) this.endSearch(runtime);
    }
  }

  private spawn(spec: ServerSpec): void {
    const runtime = this.runtimeFor(spec);
    this.releaseRun(runtime);
    runtime.run += 1;
    runtime.watchdog = Boolean(spec.watchdogMs);
    const env = { ...spec.env };
    const listenFds = this.listenEnvironment(spec.name, env);
    if (spec.readiness.kind === "sd_notify" || spec.watchdogMs) {
      runtime.notifySocket = this.bindNotifySocket(spec.name, runtime);
      if (runtime.notifySocket) env.NOTIFY_SOCKET = runtime.notifySocket.path;
    }
    // systemd's watchdog variables: the period, and (set by the child itself) the pid it is meant for.
    if (spec.watchdogMs) env.WATCHDOG_USEC = String(spec.watchdogMs * 1000);
    const cgroup = this.prepareCgroup(spec);
    const now = this.system.now();
    let child: SpawnedChild;
    try {
      child = this.system.spawn(
        {
          ...serverProcess(spec, env),
          stdin: "null",
          stdout: "pipe",
          stderr: "pipe",
          notifyFd: spec.readiness.kind === "notify" ? spec.readiness.fd : undefined,
          listenFds,
          listenPid: listenFds.length > 0,
          cgroup: cgroup ?? undefined,
          pidEnv: spec.watchdogMs ? ["WATCHDOG_PID"] : undefined,
        },
        { server: spec.name, role: "server" },
        (exit) => this.serverExited(spec.name, runtime, exit),
      );
    } catch (err) {
      this.releaseRun(runtime);
      if (!(err instanceof StartError)) throw err;
      runtime.output.note(`cannot start: ${err.message}`);
      this.serverEvent(spec.name, { type: "spawn-failed", now, errno: err.code, syscall: err.syscall });
      return;
    }
    runtime.pid = child.pid;
    runtime.launcher = spec.type === "forking";
    runtime.notifyFd = child.notifyFd;
    runtime.output.attach(child.stdoutFd, "stdout");
    runtime.output.attach(child.stderrFd, "stderr");
    runtime.output.note(`started pid ${child.pid}: ${spec.argv.join(" ")}`);
    this.serverEvent(spec.name, { type: "spawned", now, pid: child.pid, ...(cgroup ? { cgroup } : {}) });
    // Watched once the core knows the process is there: an empty cgroup reported earlier would be lost.
    if (cgroup) this.watchCgroup(spec.name, runtime, cgroup);
  }

  /** The server's cgroup made anew with its limits, or null (no cgroup v2 here, or it could not be made). */
  private prepareCgroup(spec: ServerSpec): string | null {
    const cgroups = this.system.cgroups;
    const limits = spec.limits ?? {};
    // Without cgroups, the supervisor said so once (with the servers whose limits are not applied).
    if (!cgroups) return null;
    try {
      const { path: dir, refused } = cgroups.prepare(spec.name, limits);
      if (refused.length > 0) this.log.warn({ server: spec.name, refused }, `${spec.name}: limits not applied: ${refused.join(", ")}`);
      return dir;
    } catch (err) {
      this.log.warn(
        { server: spec.name, code: (err as NodeJS.ErrnoException).code },
        `${spec.name}: no cgroup of its own (${(err as Error).message}); tracked by its process group`,
      );
      return null;
    }
  }

  private watchCgroup(name: string, runtime: ServerRuntime, dir: string): void {
    const entry: { path: string; watch: Closable | null } = { path: dir, watch: null };
    runtime.cgroup = entry;
    try {
      entry.watch = this.system.cgroups!.watch(dir, () => {
        entry.watch = null;
        // A report about an earlier run's cgroup says nothing about the current one.
        if (runtime.cgroup !== entry || this.servers.get(name) !== runtime) return;
        this.serverEvent(name, { type: "cgroup-empty", now: this.system.now() });
      });
    } catch (err) {
      this.log.error({ err, server: name }, "cannot watch its cgroup: its end is seen by its main process only");
      this.serverEvent(name, { type: "cgroup-empty", now: this.system.now() });
    }
  }

  private signalCgroup(name: string, cgroup: string, signal: number): void {
    const cgroups = this.system.cgroups;
    if (!cgroups) return;
    try {
      if (signal === 9) cgroups.kill(cgroup);
      else cgroups.signal(cgroup, signal);
    } catch (err) {
      this.log.warn({ server: name, code: (err as NodeJS.ErrnoException).code, signal }, "signalling its cgroup failed");
    }
  }

  /** Memory, CPU and processes of a server's cgroup while it has processes, for status; null without. */
  cgroupStats(name: string): (CgroupStats & { path: string }) | null {
    const server = this.sup.servers.get(name);
    const cgroups = this.system.cgroups;
    if (!cgroups || !server?.cgroup || !server.populated) return null;
    try {
      return { path: server.cgroup, ...cgroups.stats(server.cgroup) };
    } catch {
      return null;
    }
  }

  /** The controllers servers get, or null without cgroups (status and metrics say so). */
  get cgroupBase(): { base: string; controllers: readonly string[] } | null {
    const cgroups = this.system.cgroups;
    return cgroups ? { base: cgroups.base, controllers: cgroups.controllers } : null;
  }

  // ---- socket activation ------------------------------------------------------------------------

  /**
   * sd_listen_fds: the server's sockets go to fds 3, 4, …, named in LISTEN_FDNAMES; LISTEN_PID is set
   * by the spawn to the child's own pid. A server without sockets gets none of these variables (the
   * init's own, from a manager that activated it, are not the server's).
   */
  private listenEnvironment(name: string, env: Record<string, string>): number[] {
    for (const key of SD_LISTEN_VARIABLES) delete env[key];
    const held = this.sockets.of(name);
    if (held.length === 0) return [];
    env.LISTEN_FDS = String(held.length);
    env.LISTEN_FDNAMES = held.map((socket) => socket.spec.name).join(":");
    return held.map((socket) => socket.fd);
  }

  /** Each connection or datagram on a watched socket is socket-activity; one that started something is counted on its socket. */
  private watchSockets(name: string): void {
    this.sockets.watch(name, (index) => {
      const before = this.sup.servers.get(name)?.activations ?? 0;
      this.serverEvent(name, { type: "socket-activity", now: this.system.now(), socket: index });
      if ((this.sup.servers.get(name)?.activations ?? 0) > before) this.sockets.countActivation(name, index);
    });
  }

  /**
   * accept (inetd's nowait): one connection, and an instance of the server with it on fds 0 and 1 (and
   * as fd 3 with LISTEN_FDS=1, as systemd's Accept=yes passes it); its stderr goes to the server's log.
   * The init's copy of the connection is closed once the instance has it.
   */
  private spawnInstance(name: string, index: number): void {
    const spec = this.sup.servers.get(name)?.spec;
    const socket = this.sockets.of(name)[index];
    if (!spec) return;
    const now = this.system.now();
    const failed = (errno: string, syscall: string) => this.serverEvent(name, { type: "instance-spawn-failed", now, errno, syscall });
    if (!socket) return failed("EBADF", "accept4");
    let connection: number | null;
    try {
      connection = this.system.accept(socket.fd);
    } catch (err) {
      const { code, syscall } = err as NodeJS.ErrnoException;
      return failed(code ?? "EIO", syscall ?? "accept4");
    }
    if (connection === null) return failed("EAGAIN", "accept4");
    const runtime = this.runtimeFor(spec);
    const env = { ...withoutListenVariables(spec.env), LISTEN_FDS: "1", LISTEN_FDNAMES: "connection" };
    let child: SpawnedChild;
    try {
      child = this.system.spawn(
        {
          ...serverProcess(spec, env),
          stdin: connection,
          stdout: connection,
          stderr: "pipe",
          listenFds: [connection],
          listenPid: true,
        },
        { server: name, role: "instance" },
        (exit) => this.instanceExited(name, exit),
      );
    } catch (err) {
      if (!(err instanceof StartError)) throw err;
      runtime.output.note(`instance cannot start: ${err.message}`);
      return failed(err.code, err.syscall);
    } finally {
      this.closeQuietly(connection);
    }
    runtime.output.attach(child.stderrFd, "stderr");
    this.serverEvent(name, { type: "instance-spawned", now, pid: child.pid });
  }

  private serverExited(name: string, runtime: ServerRuntime, exit: ExitRecord): void {
    try {
      const current = this.servers.get(name) === runtime;
      if (current) runtime.output.note(`pid ${exit.pid} ${describeExit(exit)}`);
      let oomKilled = false;
      if (runtime.pid === exit.pid) {
        runtime.pid = null;
        oomKilled = exit.signal === 9 && this.oomKilledIn(runtime);
        // A launcher's exit ends nothing of the run; the main process's ends what no probe took.
        if (runtime.launcher) runtime.launcher = false;
        else {
          this.endMainProcess(runtime);
          // Alone in its cgroup, it left it empty: said first, so that its exit ends the run at once.
          if (current) this.reportEmptyCgroup(name, runtime);
        }
      }
      this.serverEvent(name, {
        type: "exited",
        now: this.system.now(),
        pid: exit.pid,
        code: exit.code,
        signal: exit.signal,
        ...(oomKilled ? { oomKilled } : {}),
      });
    } catch (err) {
      this.log.error({ err, server: name }, "exit handling failed");
    }
  }

  private reportEmptyCgroup(name: string, runtime: ServerRuntime): void {
    const cgroup = runtime.cgroup;
    if (!cgroup?.watch || !this.system.cgroups || this.system.cgroups.pids(cgroup.path).length > 0) return;
    cgroup.watch.close();
    cgroup.watch = null;
    this.serverEvent(name, { type: "cgroup-empty", now: this.system.now() });
  }

  /** The OOM killer ended a process of the run's cgroup (its counter starts at zero with the run). */
  private oomKilledIn(runtime: ServerRuntime): boolean {
    if (!runtime.cgroup || !this.system.cgroups) return false;
    try {
      return this.system.cgroups.oomKills(runtime.cgroup.path) > 0;
    } catch {
      return false;
    }
  }

  /** The main process is gone: what no probe took, and the sd_notify socket (nothing can send on it now), are closed. */
  private endMainProcess(runtime: ServerRuntime): void {
    if (runtime.probe === null) this.endProbe(runtime);
    this.closeNotifySocket(runtime);
  }

  // ---- forking: the daemon's main process ----------------------------------------------------

  /** MAIN PID: the pidFile (once it names a live process), else the one process of the cgroup whose parent is outside it. */
  private searchMainPid(name: string, cgroup: string | null, pidFile: string | null): void {
    const runtime = this.servers.get(name);
    if (!runtime) return;
    this.endSearch(runtime);
    const attempt = () => {
      runtime.search = null;
      const found = this.findMainPid(cgroup, pidFile);
      if (found === "wait") {
        runtime.search = this.system.setTimer(MAIN_PID_POLL_MS, attempt);
        return;
      }
      const now = this.system.now();
      if (typeof found === "string") return this.serverEvent(name, { type: "main-pid", now, pid: null, error: found });
      // Its exit is waited for before the core hears of it, so that it cannot be missed.
      const watch = this.system.watchExit(found, (exit) => {
        if (runtime.daemonWatch !== watch) return;
        runtime.daemonWatch = null;
        this.serverExited(name, runtime, { pid: found, code: exit.code, signal: exit.signal, signalName: null, coreDumped: false, status: 0 });
      });
      if (watch === null) return this.serverEvent(name, { type: "main-pid", now, pid: null, error: `pid ${found} ended before it could be watched` });
      runtime.daemonWatch = watch;
      runtime.pid = found;
      runtime.output.note(`main process pid ${found}`);
      this.serverEvent(name, { type: "main-pid", now, pid: found });
    };
    attempt();
  }

  /** A pid, "wait" (the pidFile is not written yet), or why there is none. */
  private findMainPid(cgroup: string | null, pidFile: string | null): number | "wait" | string {
    const members = cgroup && this.system.cgroups ? this.system.cgroups.pids(cgroup) : null;
    if (pidFile !== null) {
      const pid = this.system.readPidFile(pidFile);
      if (pid !== null && this.system.parentOf(pid) !== null) {
        if (members !== null && !members.includes(pid)) return `pid ${pid} of ${pidFile} is not in its cgroup`;
        return pid;
      }
      // Not written yet: wait, while something of it runs (without a cgroup, until the start timeout).
      if (members === null || members.length > 0) return "wait";
      return `its cgroup is empty and ${pidFile} names no live process`;
    }
    if (members === null) return "no pidFile, and no cgroup to find it in";
    if (members.length === 0) return "no process left in its cgroup";
    // The daemon was left to the init by its launcher: its parent is outside the cgroup.
    const roots = members.filter((pid) => {
      const parent = this.system.parentOf(pid);
      return parent !== null && !members.includes(parent);
    });
    if (roots.length === 0) return "no process in its cgroup";
    return Math.min(...roots);
  }

  private endSearch(runtime: ServerRuntime): void {
    if (runtime.search !== null) this.system.clearTimer(runtime.search);
    runtime.search = null;
  }

  // ---- sd_notify -------------------------------------------------------------------------------

  private bindNotifySocket(name: string, runtime: ServerRuntime): ServerRuntime["notifySocket"] {
    const file = path.join(this.runtimeDir, `notify-${name.replace(/[^A-Za-z0-9_.-]/g, "_")}.sock`);
    let fd: number;
    try {
      this.system.makeDirectory(this.runtimeDir);
      fd = this.system.bindDatagram(file);
    } catch (err) {
      this.log.error({ server: name, code: (err as NodeJS.ErrnoException).code, file }, "cannot bind the sd_notify socket");
      return null;
    }
    const listeners = new Set<(fields: ReadonlyMap<string, string>) => void>();
    const reader = this.system.watchDatagrams(fd, (text) => this.notified(name, runtime, text));
    return { fd, path: file, reader, listeners };
  }

  /** One sd_notify message: its listeners (the sd_notify probe) hear it; WATCHDOG=1 is a keep-alive for the core. */
  private notified(name: string, runtime: ServerRuntime, text: string): void {
    const fields = parseNotifyMessage(text);
    for (const listener of [...(runtime.notifySocket?.listeners ?? [])]) listener(fields);
    const watchdog = fields.get("WATCHDOG");
    if (watchdog === "1" || watchdog === "trigger") {
      this.serverEvent(name, { type: "keep-alive", now: this.system.now(), ...(watchdog === "trigger" ? { trigger: true } : {}) });
    }
  }

  private notifications(runtime: ServerRuntime): NotifyChannel | null {
    const socket = runtime.notifySocket;
    if (!socket) return null;
    return {
      subscribe(listener) {
        socket.listeners.add(listener);
        return () => socket.listeners.delete(listener);
      },
    };
  }

  private startProbe(name: string, pid: number): void {
    const server = this.sup.servers.get(name);
    const runtime = this.servers.get(name);
    if (!server || !runtime) return;
    runtime.probe?.cancel();
    const run = runtime.run;
    const report = (event: ServerEvent) => {
      // A probe of an earlier run reports nothing about the current one.
      if (runtime.run !== run || runtime.pid !== pid) return;
      // It has ended: what it held (the sd_notify socket) is closed now, not at the next start.
      this.endProbe(runtime);
      this.serverEvent(name, event);
    };
    const notifyFd = runtime.notifyFd;
    // The probe owns the notify pipe from here on and closes it when it ends.
    runtime.notifyFd = -1;
    runtime.probeNotifyFd = notifyFd;
    runtime.probe = this.system.startProbe(
      server.spec.readiness,
      { name, pid, output: runtime.output, notifyFd, notifications: this.notifications(runtime), env: server.spec.env },
      {
        onReady: () => report({ type: "ready", now: this.system.now() }),
        onFailed: (message) => report({ type: "probe-failed", now: this.system.now(), message }),
      },
    );
  }

  private stopProbe(name: string): void {
    const runtime = this.servers.get(name);
    if (runtime) this.endProbe(runtime);
  }

  /**
   * Ends the probe and closes what readiness needed: a notify pipe no probe took, and the sd_notify
   * socket unless a watchdog's keep-alives still come on it.
   */
  private endProbe(runtime: ServerRuntime): void {
    const probe = runtime.probe;
    runtime.probe = null;
    runtime.probeNotifyFd = -1;
    probe?.cancel();
    if (!runtime.watchdog || runtime.pid === null) this.closeNotifySocket(runtime);
    if (runtime.notifyFd >= 0) {
      this.closeQuietly(runtime.notifyFd);
      runtime.notifyFd = -1;
    }
  }

  private closeNotifySocket(runtime: ServerRuntime): void {
    if (!runtime.notifySocket) return;
    const { fd, path: file, reader } = runtime.notifySocket;
    runtime.notifySocket = null;
    reader.close();
    this.closeQuietly(fd);
    try {
      this.system.removeFile(file);
    } catch {
      // Already gone.
    }
  }

  /** Everything a run holds: its probe and sockets, its cgroup watch, a daemon search or watch. */
  private releaseRun(runtime: ServerRuntime): void {
    this.endProbe(runtime);
    this.closeNotifySocket(runtime);
    this.endSearch(runtime);
    runtime.daemonWatch?.close();
    runtime.daemonWatch = null;
    runtime.cgroup?.watch?.close();
    if (runtime.cgroup) runtime.cgroup.watch = null;
    runtime.launcher = false;
  }

  private closeQuietly(fd: number): void {
    try {
      this.system.close(fd);
    } catch {
      // Already closed.
    }
  }

  private signal(pid: number, signal: number): void {
    try {
      this.system.kill(-pid, signal);
    } catch (err) {
      // The group may be gone while the leader is a zombie not yet reaped: signal the pid itself.
      try {
        this.system.kill(pid, signal);
      } catch {
        this.log.debug({ pid, signal, code: (err as NodeJS.ErrnoException).code }, "signal not delivered");
      }
    }
  }

  /**
   * A preStart (ended: null) or postStop command: its own session, its output in the server's log.
   * It is reported like the server's own process: hook-spawned or hook-spawn-failed now, hook-exited later.
   */
  private runHook(name: string, argv: string[], ended: { code: number | null; signal: number | null } | null): void {
    const spec = this.sup.servers.get(name)?.spec;
    if (!spec) return;
    const what = ended === null ? "preStart" : "postStop";
    const env =
      ended === null
        ? spec.env
        : {
            ...spec.env,
            SERVER_NAME: name,
            EXIT_STATUS: ended.code === null ? "" : String(ended.code),
            EXIT_SIGNAL: ended.signal === null ? "" : signalName(ended.signal),
          };
    const runtime = this.runtimeFor(spec);
    const now = this.system.now();
    let child: SpawnedChild;
    try {
      child = this.system.spawn(
        { command: argv[0], args: argv.slice(1), env, cwd: spec.cwd, stdin: "null", stdout: "pipe", stderr: "stdout", setsid: true },
        { server: name, role: ended === null ? "pre-start" : "post-stop" },
        (exit) => this.hookExited(name, runtime, what, exit),
      );
    } catch (err) {
      if (!(err instanceof StartError)) throw err;
      runtime.output.note(`${what} cannot start: ${err.message}`);
      this.serverEvent(name, { type: "hook-spawn-failed", now, errno: err.code, syscall: err.syscall });
      return;
    }
    runtime.output.attach(child.stdoutFd, "stdout");
    runtime.output.note(`${what} started pid ${child.pid}: ${argv.join(" ")}`);
    this.serverEvent(name, { type: "hook-spawned", now, pid: child.pid });
  }

  private instanceExited(name: string, exit: ExitRecord): void {
    try {
      this.serverEvent(name, { type: "instance-exited", now: this.system.now(), pid: exit.pid, code: exit.code, signal: exit.signal });
    } catch (err) {
      this.log.error({ err, server: name }, "instance exit handling failed");
    }
  }

  private hookExited(name: string, runtime: ServerRuntime, what: string, exit: ExitRecord): void {
    try {
      if (this.servers.get(name) === runtime) runtime.output.note(`${what} pid ${exit.pid} ${describeExit(exit)}`);
      this.serverEvent(name, { type: "hook-exited", now: this.system.now(), pid: exit.pid, code: exit.code, signal: exit.signal });
    } catch (err) {
      this.log.error({ err, server: name }, `${what} exit handling failed`);
    }
  }

  // ---- reexec: handing everything over to a new init, and taking it over ----------------------

  /**
   * Before a reexec: stops reading the servers' output (whole lines written out, each pipe with the
   * line begun on it), and returns every fd and every armed timer the new init needs. Nothing is
   * closed: resumeAfterFailedExec() reads on if the exec fails.
   */
  capture(): CapturedEngine {
    const servers: CapturedServer[] = [];
    for (const [name, runtime] of this.servers) {
      servers.push({
        name,
        pid: runtime.pid,
        run: runtime.run,
        launcher: runtime.launcher,
        watchdog: runtime.watchdog,
        cgroup: runtime.cgroup?.path ?? null,
        notifyFd: runtime.notifyFd,
        probeNotifyFd: runtime.probe ? runtime.probeNotifyFd : -1,
        notifySocket: runtime.notifySocket ? { fd: runtime.notifySocket.fd, path: runtime.notifySocket.path } : null,
        daemon: runtime.daemonWatch !== null ? runtime.pid : null,
        pipes: runtime.output.capture(),
      });
    }
    const timers = [...this.timers.values()].map(({ server, timer, id, at }) => ({ server, timer, id, at }));
    return { timers, servers };
  }

  /** Every fd of a capture: what must stay open across the exec. */
  static fdsOf(captured: CapturedEngine): number[] {
    const fds: number[] = [];
    for (const server of captured.servers) {
      for (const pipe of server.pipes) fds.push(pipe.fd);
      if (server.notifyFd >= 0) fds.push(server.notifyFd);
      if (server.probeNotifyFd >= 0) fds.push(server.probeNotifyFd);
      if (server.notifySocket) fds.push(server.notifySocket.fd);
    }
    return fds;
  }

  /** The exec failed: everything goes on as before capture(). */
  resumeAfterFailedExec(): void {
    for (const runtime of this.servers.values()) runtime.output.resume();
  }

  /**
   * In a re-executed init, with the supervisor of the state: takes over what the old init held for
   * each server (output pipes with their begun lines, notify fds and sockets), claims every process
   * it waits for from the reaper (an exit during the exec comes now), and arms its timers, probes,
   * pings, cgroup watches and daemon searches again. Returns the pids whose exit was lost (neither
   * alive nor reaped: none unless something else reaped them), which the core hears of as exits.
   */
  adopt(captured: CapturedEngine): number[] {
    const lost: number[] = [];
    const saved = new Map(captured.servers.map((entry) => [entry.name, entry]));
    for (const [name, server] of this.sup.servers) {
      const entry = saved.get(name);
      if (!entry) continue;
      const runtime = this.runtimeFor(server.spec);
      runtime.pid = entry.pid;
      runtime.run = entry.run;
      runtime.launcher = entry.launcher;
      runtime.watchdog = entry.watchdog;
      runtime.notifyFd = entry.probeNotifyFd >= 0 ? entry.probeNotifyFd : entry.notifyFd;
      runtime.output.adopt(entry.pipes);
      if (entry.cgroup) runtime.cgroup = { path: entry.cgroup, watch: null };
      if (entry.notifySocket) {
        const { fd, path: file } = entry.notifySocket;
        const listeners = new Set<(fields: ReadonlyMap<string, string>) => void>();
        const reader = this.system.watchDatagrams(fd, (text) => this.notified(name, runtime, text));
        runtime.notifySocket = { fd, path: file, reader, listeners };
      }
    }
    for (const entry of captured.servers) {
      // A runtime of a server the state no longer has (cannot happen short of a bug): its fds are closed.
      if (this.sup.servers.has(entry.name)) continue;
      for (const fd of Engine.fdsOf({ timers: [], servers: [entry] })) this.closeQuietly(fd);
    }

    const exitLost = (pid: number): ExitRecord => ({ pid, code: null, signal: null, signalName: null, coreDumped: false, status: 0 });
    for (const { server: name, pid, role } of processesOf(this.sup)) {
      const runtime = this.servers.get(name);
      const server = this.sup.servers.get(name);
      if (!runtime || !server) continue;
      if (role === "server") {
        if (runtime.pid !== pid) runtime.pid = pid;
        if (saved.get(name)?.daemon === pid) {
          const watch = this.system.watchExit(pid, (exit) => {
            if (runtime.daemonWatch !== watch) return;
            runtime.daemonWatch = null;
            this.serverExited(name, runtime, { ...exitLost(pid), code: exit.code, signal: exit.signal });
          });
          runtime.daemonWatch = watch;
          if (watch === null) {
            lost.push(pid);
            this.serverExited(name, runtime, exitLost(pid));
          }
          continue;
        }
        if (!this.system.adopt(pid, (exit) => this.serverExited(name, runtime, exit))) {
          lost.push(pid);
          this.serverExited(name, runtime, exitLost(pid));
        }
      } else if (role === "hook") {
        const what = server.hook === "pre-start" ? "preStart" : "postStop";
        if (!this.system.adopt(pid, (exit) => this.hookExited(name, runtime, what, exit))) {
          lost.push(pid);
          this.hookExited(name, runtime, what, exitLost(pid));
        }
      } else if (!this.system.adopt(pid, (exit) => this.instanceExited(name, exit))) {
        lost.push(pid);
        this.instanceExited(name, exitLost(pid));
      }
    }
    // A forking server's launcher (its pid the runtime's, not yet the core's).
    for (const [name, runtime] of this.servers) {
      const server = this.sup.servers.get(name);
      if (!server || runtime.pid === null || !runtime.launcher || server.pid === runtime.pid) continue;
      const pid = runtime.pid;
      if (!this.system.adopt(pid, (exit) => this.serverExited(name, runtime, exit))) {
        lost.push(pid);
        this.serverExited(name, runtime, exitLost(pid));
      }
    }

    for (const { server, timer, id, at } of captured.timers) this.armTimer(server, timer, id, at);
    for (const [name, server] of this.sup.servers) {
      // A lazy server listens with no runtime of its own yet (it never ran).
      if (server.watching) this.watchSockets(name);
      const runtime = this.servers.get(name);
      if (!runtime) continue;
      if (server.probing && server.pid !== null) this.startProbe(name, server.pid);
      else if (runtime.notifyFd >= 0 && !server.probing && runtime.notifyFd === saved.get(name)?.probeNotifyFd) {
        this.closeQuietly(runtime.notifyFd);
        runtime.notifyFd = -1;
      }
      if (server.state === "ready" && server.liveness !== null && server.pid !== null && server.spec.liveness) {
        this.liveness.start(name, server.pid, server.spec.liveness, server.spec.env);
      }
      if (runtime.cgroup && server.populated) this.watchCgroup(name, runtime, runtime.cgroup.path);
      if (server.state === "starting" && server.daemon === "seeking") this.searchMainPid(name, server.cgroup, server.spec.pidFile ?? null);
    }
    return lost;
  }

  private armTimer(server: string | null, timer: ServerTimer | SupervisorTimer, id: number, at: number): void {
    this.cancelTimer(server, timer);
    const key = timerKey(server, timer);
    const delay = Math.max(0, at - this.system.now());
    const handle = this.system.setTimer(delay, () => {
      this.timers.delete(key);
      const now = Math.max(this.system.now(), at);
      if (server === null) this.dispatch({ type: "timer", now, timer: timer as SupervisorTimer, id });
      else this.serverEvent(server, { type: "timer", now, timer: timer as ServerTimer, id });
    });
    this.timers.set(key, { handle, server, timer, id, at });
  }

  private cancelTimer(server: string | null, timer: ServerTimer | SupervisorTimer): void {
    const key = timerKey(server, timer);
    const armed = this.timers.get(key);
    if (armed !== undefined) this.system.clearTimer(armed.handle);
    this.timers.delete(key);
  }

  /** Facts of the server's state after the step, so the JSON log can be read by programs too. */
  private logFields(name: string | null, kind: string): Record<string, unknown> {
    const server = name === null ? undefined : this.sup.servers.get(name);
    if (!server) return { kind };
    // "level" is pino's own key (the log level): the startup level goes under another name.
    const fields: Record<string, unknown> = { server: name, kind, state: server.state, startupLevel: server.spec.level };
    // "pid" is the init's own (pino's base): the server's process goes under another name.
    if (server.pid !== null) fields.serverPid = server.pid;
    if (server.hook !== null) fields.hook = server.hook;
    if (server.hookPid !== null) fields.hookPid = server.hookPid;
    if (kind === "ready" && server.readyAt !== null && server.startedAt !== null) fields.readyMs = Math.round(server.readyAt - server.startedAt);
    if ((kind === "exited" || kind === "failed" || kind === "exec-failed" || kind === "pre-start-failed") && server.lastExit) {
      fields.code = server.lastExit.code;
      fields.signal = server.lastExit.signal === null ? null : signalName(server.lastExit.signal);
      fields.reason = server.lastExit.reason;
    }
    if (kind === "failed" || kind === "restarting") fields.reason = server.reason;
    if ((kind === "unresponsive" || kind === "responsive") && server.liveness) {
      fields.pingFailures = server.liveness.failures;
      fields.pingRttMs = server.liveness.lastRttMs;
      fields.pingError = server.liveness.lastError;
    }
    return fields;
  }

  private writeLog(effect: Extract<SupervisorEffect, { type: "log" }>): void {
    const onConsole = this.progress.event(effect.server, effect.kind, effect.message);
    this.log[effect.level]({ ...this.logFields(effect.server, effect.kind), ...(onConsole ? { onConsole } : {}) }, effect.message);
    if (effect.server !== null) this.servers.get(effect.server)?.output.note(effect.message);
  }
}

/** The variables of sd_listen_fds(3). */
/** What every process of a server is run as: its program, arguments, environment, user and limits. */
function serverProcess(spec: ServerSpec, env: Record<string, string>) {
  return {
    command: spec.file,
    argv0: spec.argv[0],
    args: spec.argv.slice(1),
    env,
    cwd: spec.cwd,
    uid: spec.uid,
    gid: spec.gid,
    // Dropping to a user also drops the init's supplementary groups.
    groups: spec.uid !== null && spec.gid !== null ? [spec.gid] : undefined,
    umask: spec.umask,
    rlimits: spec.rlimits,
    // Its own session and process group: signals reach the server and everything it forked.
    setsid: true,
  };
}

const SD_LISTEN_VARIABLES = ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"];

/** An environment without the sd_listen_fds variables (a server's own are set by the spawn). */
function withoutListenVariables(env: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter(([key]) => !SD_LISTEN_VARIABLES.includes(key)));
}

function describeEvent(event: SupervisorEvent): string {
  return event.type === "server" ? `${event.name}:${event.event.type}` : event.type;
}
