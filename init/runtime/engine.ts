// The engine drives the pure supervisor (core/supervisor.ts): it feeds events in, one at a time from
// a queue, and executes the effects that come out through process/ and log/. Nothing here decides
// *what* to do; it only does it and reports back what happened as further events.
//
// Events that effects produce (spawned, exited, ready, timer…) are queued and handled after the
// current step's effects have all run, so every step sees the world in the order things happened.

import fs from "node:fs";
import path from "node:path";
import { isDeepStrictEqual } from "node:util";
import { performance } from "node:perf_hooks";
import type { ConsoleReport } from "../log/console";
import type { Logger } from "../log/logger";
import { ServerOutput, type OutputStream } from "../log/server-output";
import { native } from "../native";
import { describeExit, signalName } from "../process/exit";
import { startProbe, type RunningProbe } from "../process/readiness";
import { spawnChild, StartError, type Child } from "../process/spawn";
import { step, type Supervisor, type SupervisorEffect, type SupervisorEvent, type SupervisorTimer } from "../core/supervisor";
import type { ServerEvent, ServerTimer } from "../core/server";
import type { ServerSpec } from "../core/types";
import { LivenessRunner } from "./liveness";

/** Monotonic milliseconds: the core's clock. */
export function monotonicNow(): number {
  return performance.now();
}

export type OutputListener = (server: string, line: string, stream: OutputStream, at: string) => void;

interface ServerRuntime {
  output: ServerOutput;
  probe: RunningProbe | null;
  /** sd_notify socket (bound per server while it runs). */
  notifySocket: { fd: number; path: string } | null;
  notifyFd: number;
  pid: number | null;
}

type TimerKey = string;

function timerKey(server: string | null, timer: ServerTimer | SupervisorTimer): TimerKey {
  return `${server ?? ""}\0${timer}`;
}

export class Engine {
  sup: Supervisor;
  private readonly queue: SupervisorEvent[] = [];
  private draining = false;
  private readonly timers = new Map<TimerKey, NodeJS.Timeout>();
  private readonly servers = new Map<string, ServerRuntime>();
  private readonly shutdownWaiters: (() => void)[] = [];
  private readonly listeners = new Set<(event: SupervisorEvent) => void>();
  private readonly outputListeners = new Set<OutputListener>();
  /** postStop commands still running: a shutdown lets them finish before stage 3. */
  private readonly hooks = new Set<Promise<void>>();
  /** The ping loops of ready servers with a liveness check. */
  private readonly liveness = new LivenessRunner((name, event) => this.serverEvent(name, event), monotonicNow);
  /** Set once a shutdown completed. */
  shutdownComplete = false;

  constructor(
    sup: Supervisor,
    private readonly log: Logger,
    /** Lines for a person on the console: boot progress, failures, shutdown steps. */
    private readonly progress: ConsoleReport,
    private readonly runtimeDir: string,
  ) {
    this.sup = sup;
  }

  /** Queues an event; handles the queue unless already doing so. */
  dispatch(event: SupervisorEvent): void {
    this.queue.push(event);
    if (this.draining) return;
    this.draining = true;
    try {
      for (let next = this.queue.shift(); next; next = this.queue.shift()) this.handle(next);
    } finally {
      this.draining = false;
    }
  }

  /** Routes an event to one server's machine. */
  serverEvent(name: string, event: ServerEvent): void {
    this.dispatch({ type: "server", name, event });
  }

  /** Called after each handled event (the control socket waits for outcomes this way). */
  onEvent(listener: (event: SupervisorEvent) => void): () => void {
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

  /** Resolves when every running postStop command has ended, or after timeoutMs. */
  async hooksDone(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([Promise.all([...this.hooks]), timeout]);
    clearTimeout(timer);
  }

  output(name: string): ServerOutput | null {
    return this.servers.get(name)?.output ?? null;
  }

  private handle(event: SupervisorEvent): void {
    const result = step(this.sup, event);
    this.sup = result.sup;
    if (result.ignored) this.log.debug({ event: describeEvent(event), why: result.ignored }, "event ignored");
    this.execute(result.effects);
    this.progress.endStep();
    for (const listener of this.listeners) listener(event);
  }

  private execute(effects: SupervisorEffect[]): void {
    for (let index = 0; index < effects.length; index++) {
      const effect = effects[index];
      if (effect.type === "run-pre-start") {
        // The effects after a pre-start command wait for it: the spawn must not happen before it ends.
        const rest = effects.slice(index + 1);
        this.runPreStart(effect.server, effect.argv, rest);
        return;
      }
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
      case "run-post-stop":
        return this.runPostStop(effect.server, effect.argv, effect.code, effect.signal);
      case "arm-timer":
        return this.armTimer(effect.server, effect.timer, effect.id, effect.at);
      case "cancel-timer":
        return this.cancelTimer(effect.server, effect.timer);
      case "log":
        return this.writeLog(effect);
      case "shutdown-complete":
        this.shutdownComplete = true;
        for (const resolve of this.shutdownWaiters.splice(0)) resolve();
        return;
      case "run-pre-start":
        return; // Handled in execute().
    }
  }

  private runtimeFor(spec: ServerSpec): ServerRuntime {
    let runtime = this.servers.get(spec.name);
    if (!runtime) {
      runtime = { output: this.newOutput(spec), probe: null, notifySocket: null, notifyFd: -1, pid: null };
      this.servers.set(spec.name, runtime);
    } else if (runtime.pid === null && !isDeepStrictEqual(runtime.output.settings, spec.log)) {
      // A reload changed where or how this server logs: its next process writes with the new settings.
      runtime.output.close();
      runtime.output = this.newOutput(spec);
    }
    return runtime;
  }

  private newOutput(spec: ServerSpec): ServerOutput {
    const output = new ServerOutput(spec.name, spec.log);
    output.onLine((line, stream, at) => {
      for (const listener of this.outputListeners) listener(spec.name, line, stream, at);
    });
    return output;
  }

  private spawn(spec: ServerSpec): void {
    const runtime = this.runtimeFor(spec);
    const env = { ...spec.env };
    if (spec.readiness.kind === "sd_notify") {
      runtime.notifySocket = this.bindNotifySocket(spec.name);
      if (runtime.notifySocket) env.NOTIFY_SOCKET = runtime.notifySocket.path;
    }
    const now = monotonicNow();
    let child;
    try {
      child = spawnChild({
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
        stdin: "null",
        stdout: "pipe",
        stderr: "pipe",
        notifyFd: spec.readiness.kind === "notify" ? spec.readiness.fd : undefined,
      });
    } catch (err) {
      this.closeNotifySocket(runtime);
      if (!(err instanceof StartError)) throw err;
      runtime.output.note(`cannot start: ${err.message}`);
      this.serverEvent(spec.name, { type: "spawn-failed", now, errno: err.code, syscall: err.syscall });
      return;
    }
    runtime.pid = child.pid;
    runtime.notifyFd = child.notifyFd;
    runtime.output.attach(child.stdoutFd, "stdout");
    runtime.output.attach(child.stderrFd, "stderr");
    runtime.output.note(`started pid ${child.pid}: ${spec.argv.join(" ")}`);
    const pid = child.pid;
    child.exited
      .then((exit) => {
        runtime.output.note(`pid ${pid} ${describeExit(exit)}`);
        if (runtime.pid === pid) runtime.pid = null;
        this.serverEvent(spec.name, { type: "exited", now: monotonicNow(), pid, code: exit.code, signal: exit.signal });
      })
      .catch((err: unknown) => this.log.error({ err, server: spec.name }, "exit handling failed"));
    this.serverEvent(spec.name, { type: "spawned", now, pid });
  }

  private bindNotifySocket(name: string): { fd: number; path: string } | null {
    const file = path.join(this.runtimeDir, `notify-${name.replace(/[^A-Za-z0-9_.-]/g, "_")}.sock`);
    try {
      fs.mkdirSync(this.runtimeDir, { recursive: true, mode: 0o755 });
      return { fd: native().unixDgramBind(file), path: file };
    } catch (err) {
      this.log.error({ server: name, code: (err as NodeJS.ErrnoException).code, file }, "cannot bind the sd_notify socket");
      return null;
    }
  }

  private closeNotifySocket(runtime: ServerRuntime): void {
    if (!runtime.notifySocket) return;
    try {
      native().close(runtime.notifySocket.fd);
      fs.rmSync(runtime.notifySocket.path, { force: true });
    } catch {
      // Already closed.
    }
    runtime.notifySocket = null;
  }

  private startProbe(name: string, pid: number): void {
    const server = this.sup.servers.get(name);
    const runtime = this.servers.get(name);
    if (!server || !runtime) return;
    runtime.probe?.cancel();
    const report = (event: ServerEvent) => {
      // A probe of an earlier process reports nothing about the current one.
      if (runtime.pid === pid) this.serverEvent(name, event);
    };
    runtime.probe = startProbe(
      server.spec.readiness,
      { name, pid, output: runtime.output, notifyFd: runtime.notifyFd, notifySocketFd: runtime.notifySocket?.fd ?? -1, env: server.spec.env },
      {
        onReady: () => report({ type: "ready", now: monotonicNow() }),
        onFailed: (message) => report({ type: "probe-failed", now: monotonicNow(), message }),
      },
    );
  }

  private stopProbe(name: string): void {
    const runtime = this.servers.get(name);
    if (!runtime) return;
    runtime.probe?.cancel();
    runtime.probe = null;
    this.closeNotifySocket(runtime);
  }

  private signal(pid: number, signal: number): void {
    try {
      process.kill(-pid, signal);
    } catch (err) {
      // The group may be gone while the leader is a zombie not yet reaped: signal the pid itself.
      try {
        process.kill(pid, signal);
      } catch {
        this.log.debug({ pid, signal, code: (err as NodeJS.ErrnoException).code }, "signal not delivered");
      }
    }
  }

  private runPreStart(name: string, argv: string[], rest: SupervisorEffect[]): void {
    const spec = this.sup.servers.get(name)?.spec;
    const fail = (message: string, errno: string) => {
      this.log.warn({ server: name, argv }, `preStart of ${name} failed: ${message}`);
      this.serverEvent(name, { type: "spawn-failed", now: monotonicNow(), errno, syscall: "preStart" });
      this.execute(rest.filter((effect) => !(effect.type === "spawn" && effect.server === name)));
    };
    let child;
    try {
      child = this.spawnHook(spec, argv, spec?.env ?? {});
    } catch (err) {
      if (!(err instanceof StartError)) throw err;
      fail(err.message, err.code);
      return;
    }
    child.exited
      .then((exit) => {
        if (exit.code === 0) this.execute(rest);
        else fail(describeExit(exit), "EPRESTART");
      })
      .catch((err: unknown) => this.log.error({ err, server: name }, "preStart exit handling failed"));
  }

  private runPostStop(name: string, argv: string[], code: number | null, signal: number | null): void {
    const spec = this.sup.servers.get(name)?.spec;
    const env = {
      ...(spec?.env ?? {}),
      SERVER_NAME: name,
      EXIT_STATUS: code === null ? "" : String(code),
      EXIT_SIGNAL: signal === null ? "" : signalName(signal),
    };
    try {
      const child = this.spawnHook(spec, argv, env);
      const done = child.exited.then((exit) => {
        this.hooks.delete(done);
        if (exit.code !== 0) this.log.warn({ server: name }, `postStop of ${name} ${describeExit(exit)}`);
      });
      this.hooks.add(done);
    } catch (err) {
      this.log.warn({ server: name, err: (err as Error).message }, `postStop of ${name} could not start`);
    }
  }

  /** A preStart or postStop command: its own session, its output in the server's log. */
  private spawnHook(spec: ServerSpec | undefined, argv: string[], env: Record<string, string>): Child {
    const child = spawnChild({ command: argv[0], args: argv.slice(1), env, cwd: spec?.cwd, stdin: "null", stdout: "pipe", stderr: "stdout", setsid: true });
    if (spec) this.runtimeFor(spec).output.attach(child.stdoutFd, "stdout");
    return child;
  }

  private armTimer(server: string | null, timer: ServerTimer | SupervisorTimer, id: number, at: number): void {
    this.cancelTimer(server, timer);
    const key = timerKey(server, timer);
    const delay = Math.max(0, at - monotonicNow());
    const handle = setTimeout(() => {
      this.timers.delete(key);
      const now = Math.max(monotonicNow(), at);
      if (server === null) this.dispatch({ type: "timer", now, timer: timer as SupervisorTimer, id });
      else this.serverEvent(server, { type: "timer", now, timer: timer as ServerTimer, id });
    }, delay);
    this.timers.set(key, handle);
  }

  private cancelTimer(server: string | null, timer: ServerTimer | SupervisorTimer): void {
    const key = timerKey(server, timer);
    const handle = this.timers.get(key);
    if (handle) clearTimeout(handle);
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
    if (kind === "ready" && server.readyAt !== null && server.startedAt !== null) fields.readyMs = Math.round(server.readyAt - server.startedAt);
    if ((kind === "exited" || kind === "failed" || kind === "exec-failed") && server.lastExit) {
      fields.code = server.lastExit.code;
      fields.signal = server.lastExit.signal === null ? null : signalName(server.lastExit.signal);
      fields.reason = server.lastExit.reason;
    }
    if (kind === "failed") fields.reason = server.reason;
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

function describeEvent(event: SupervisorEvent): string {
  return event.type === "server" ? `${event.name}:${event.event.type}` : event.type;
}
