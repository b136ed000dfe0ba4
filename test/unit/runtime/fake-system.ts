// A fake world for the real engine (dinit's bp_sys swapped for a test double): a clock whose timers
// fire only when the test moves it, processes that are records (they write, exit and get signalled
// when the test or a behaviour says so), pipes, fds and readiness probes that are counted, so that
// every scenario can end by asserting that nothing was left behind.

import { EventEmitter } from "node:events";
import pino from "pino";
import { Engine, type EngineSystem, type ProcessOwner, type SpawnedChild, type TimerHandle } from "../../../init/runtime/engine";
import { createSupervisor } from "../../../init/core/supervisor";
import type { ReadinessProbe, ServerSpec, Settings, SocketSpec } from "../../../init/core/types";
import type { HeldSocket, WatchHandle } from "../../../init/runtime/sockets";
import type { Listener } from "../../../init/process/listen";
import type { CgroupControl, CgroupStats, Closable } from "../../../init/process/cgroup";
import type { Logger } from "../../../init/log/logger";
import { ConsoleReport } from "../../../init/log/console";
import type { PipeReader } from "../../../init/log/server-output";
import type { ExitRecord } from "../../../init/process/exit";
import { startProbe as realStartProbe, type ProbeCallbacks, type ProbeContext, type RunningProbe } from "../../../init/process/readiness";
import { StartError, type SpawnRequest } from "../../../init/process/spawn";

interface Scheduled {
  at: number;
  seq: number;
  /** Engine timers are what the leak check counts; world events are the fake's own doings. */
  kind: "timer" | "world";
  fire: () => void;
}

export class FakeProcess {
  alive = true;
  exit: { code: number | null; signal: number | null } | null = null;
  readonly signals: number[] = [];
  /** Its parent: the init (1) for what the engine spawned, and for orphans. */
  parent = 1;
  /** The cgroup it runs in (the spawn request's, inherited by what it forks). */
  cgroup: string | null = null;

  constructor(
    readonly system: FakeSystem,
    readonly pid: number,
    readonly request: SpawnRequest,
    readonly owner: ProcessOwner,
    readonly startedAt: number,
    readonly pipes: { stdout: FakePipe | null; stderr: FakePipe | null; notify: FakePipe | null },
    public onExit: (exit: ExitRecord) => void,
  ) {}

  /** A child of it (a daemon, a worker), in its cgroup; its exit reaches only who watches it (watchExit). */
  fork(): FakeProcess {
    const child = new FakeProcess(
      this.system,
      this.system.newPid(),
      this.request,
      this.owner,
      this.system.now(),
      { stdout: null, stderr: null, notify: null },
      () => {},
    );
    child.parent = this.pid;
    child.cgroup = this.cgroup;
    this.system.processes.set(child.pid, child);
    this.system.cgroupsFake?.join(child);
    return child;
  }

  /** Writes to its stdout (or stderr): the engine's reader sees it as one chunk. */
  write(text: string, stream: "stdout" | "stderr" = "stdout"): void {
    if (!this.alive) throw new Error(`pid ${this.pid} is not alive`);
    const pipe = this.pipes[stream] ?? this.pipes.stdout;
    pipe?.write(Buffer.from(text));
  }

  /** Ends now: its pipes' write ends close, and the reaper reports it. */
  end(code: number | null, signal: number | null = null): void {
    if (!this.alive) return;
    this.alive = false;
    this.exit = { code, signal };
    for (const pipe of Object.values(this.pipes)) pipe?.closeWriter();
    // Its children go to the init, as orphans do.
    for (const other of this.system.processes.values()) if (other.alive && other.parent === this.pid) other.parent = 1;
    this.system.cgroupsFake?.leave(this);
    const exit = { pid: this.pid, code, signal, signalName: null, coreDumped: false, status: 0 };
    if (this.system.reaperPaused) this.system.zombies.set(this.pid, exit);
    else this.onExit(exit);
  }

  /** Ends at a time of the fake clock; a later call replaces the end planned before (a signal overtakes a crash). */
  endAt(at: number, code: number | null, signal: number | null = null): void {
    const planned = {};
    this.plannedEnd = planned;
    this.system.at(at, () => {
      if (this.plannedEnd === planned) this.end(code, signal);
    });
  }

  private plannedEnd: object | null = null;
}

/** One pipe: the process holds the write end, the engine reads the other (fd). */
export class FakePipe {
  writerOpen = true;
  reader: FakeReader | null = null;
  private readonly pending: Buffer[] = [];

  constructor(
    readonly system: FakeSystem,
    readonly fd: number,
  ) {}

  write(chunk: Buffer): void {
    if (this.reader && !this.reader.paused) this.reader.emit("data", chunk);
    else this.pending.push(chunk);
  }

  /** What waited in the pipe, to its reader now (and its end, when the writer is gone). */
  flush(): void {
    for (const chunk of this.pending.splice(0)) this.reader?.emit("data", chunk);
    if (!this.writerOpen && this.reader) this.system.at(this.system.now(), () => this.reader?.eof());
  }

  closeWriter(): void {
    this.writerOpen = false;
    // EOF reaches the reader on the event loop, after the exit was reported (as a real pipe's does, or later).
    if (this.reader && !this.reader.paused) this.system.at(this.system.now(), () => this.reader?.eof());
  }

  open(): FakeReader {
    if (this.reader) throw new Error(`fd ${this.fd} opened twice`);
    const reader = new FakeReader(this);
    this.reader = reader;
    this.system.readers.add(reader);
    for (const chunk of this.pending.splice(0)) this.system.at(this.system.now(), () => reader.emit("data", chunk));
    if (!this.writerOpen) this.system.at(this.system.now(), () => reader.eof());
    return reader;
  }
}

export class FakeReader extends EventEmitter implements PipeReader {
  destroyed = false;
  /** Paused (a reexec under way): writes stay in the pipe. */
  paused = false;

  constructor(readonly pipe: FakePipe) {
    super();
  }

  /** Stops reading: what the process writes from now on stays in the pipe (as in a kernel pipe). */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.pipe.flush();
  }

  /** Nothing read ahead is ever held here: the fake delivers each write as it happens. */
  read(): Buffer | null {
    return null;
  }

  eof(): void {
    this.destroy();
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.pipe.system.closeFd(this.pipe.fd);
    this.pipe.system.readers.delete(this);
    this.pipe.reader = null;
    this.emit("close");
  }
}

/** A readiness probe the test (or a behaviour) decides: ready(), fail(). */
export class FakeProbe implements RunningProbe {
  cancelled = false;
  settled = false;

  constructor(
    readonly system: FakeSystem,
    readonly probe: ReadinessProbe,
    readonly context: ProbeContext,
    private readonly callbacks: ProbeCallbacks,
  ) {
    system.probes.add(this);
  }

  ready(): void {
    if (this.end()) this.callbacks.onReady();
  }

  fail(message: string): void {
    if (this.end()) this.callbacks.onFailed(message);
  }

  cancel(): void {
    this.cancelled = true;
    this.end();
  }

  /** Like the real probes: it closes the notify pipe it was given when it ends. */
  private end(): boolean {
    if (this.settled) return false;
    this.settled = true;
    this.system.probes.delete(this);
    if (this.context.notifyFd >= 0) this.system.closeFd(this.context.notifyFd);
    return !this.cancelled;
  }
}

/** A listening socket of the fake world: connections wait in its queue until accepted (by the init or its server). */
export class FakeListener {
  queued = 0;
  /** Connections accepted and still open (what idleStop's check looks for). */
  open = 0;
  readonly watchers = new Set<FakeWatch>();
  backlog: number;

  constructor(
    readonly spec: SocketSpec,
    readonly fd: number,
  ) {
    this.backlog = spec.backlog;
  }
}

interface FakeWatch {
  listener: FakeListener;
  onReadable: () => void;
}

export class FakeSystem implements EngineSystem {
  private time = 0;
  private seq = 0;
  private scheduled: Scheduled[] = [];
  private nextPid = 100;
  private nextFd = 10;
  readonly processes = new Map<number, FakeProcess>();
  /** Open fds and what each is. */
  readonly fds = new Map<number, string>();
  readonly readers = new Set<FakeReader>();
  readonly probes = new Set<FakeProbe>();
  readonly files = new Set<string>();
  /** Every kill(2), in order. */
  readonly kills: { at: number; pid: number; signal: number }[] = [];
  /** Listening sockets by fd, and the watches on them. */
  readonly listeners = new Map<number, FakeListener>();
  readonly watches = new Set<FakeWatch>();
  /** The errno a socket's bind fails with (null: it binds). */
  bindError: (socket: SocketSpec) => string | null = () => null;

  /** The errno a spawn fails with (null: it succeeds). */
  spawnError: (request: SpawnRequest, owner: ProcessOwner) => string | null = () => null;
  /** Called for each new process: a behaviour schedules what it does. */
  onSpawn: (process: FakeProcess) => void = () => {};
  /** What a process does with a signal other than SIGKILL: by default it exits of it at once. */
  onSignal: (process: FakeProcess, signal: number) => void = (process, signal) => process.endAt(this.time, null, signal);
  /** Probes other than log (which runs for real on the server's output) are decided by this, or by the test. */
  onProbe: (probe: FakeProbe) => void = () => {};
  /** The sd_notify probe runs for real, on what the test sends with notify(). */
  realSdNotify = false;
  /** cgroup v2, when the test gives the world one (withCgroups()); null: tracked by process group. */
  cgroups: CgroupControl | null = null;
  cgroupsFake: FakeCgroups | null = null;
  /** Readers of datagram sockets (sd_notify), by fd. */
  readonly datagramReaders = new Map<number, (text: string) => void>();
  /** Pid files the daemons wrote. */
  readonly pidFiles = new Map<string, number>();
  /** Exits of processes not spawned by the engine, waited for (daemons). */
  readonly exitWatches = new Set<FakeProcess>();

  withCgroups(): FakeCgroups {
    this.cgroupsFake = new FakeCgroups(this);
    this.cgroups = this.cgroupsFake;
    return this.cgroupsFake;
  }

  newPid(): number {
    return this.nextPid++;
  }

  now(): number {
    return this.time;
  }

  setTimer(delayMs: number, fire: () => void): TimerHandle {
    const item: Scheduled = { at: this.time + delayMs, seq: this.seq++, kind: "timer", fire };
    this.scheduled.push(item);
    return item;
  }

  clearTimer(handle: TimerHandle): void {
    this.scheduled = this.scheduled.filter((item) => item !== handle);
  }

  /** Schedules something of the world (a process's doing) at a time. */
  at(at: number, fire: () => void): void {
    this.scheduled.push({ at, seq: this.seq++, kind: "world", fire });
  }

  /** Runs everything due up to `until` in time order (what runs may schedule more), then sets the clock there. */
  advanceTo(until: number): void {
    for (;;) {
      this.scheduled.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.scheduled[0];
      if (next === undefined || next.at > until) break;
      this.scheduled.shift();
      this.time = Math.max(this.time, next.at);
      next.fire();
    }
    this.time = Math.max(this.time, until);
  }

  advance(ms: number): void {
    this.advanceTo(this.time + ms);
  }

  /** Runs what is due now (EOFs, exits scheduled for now) without moving the clock. */
  settle(): void {
    this.advanceTo(this.time);
  }

  spawn(request: SpawnRequest, owner: ProcessOwner, onExit: (exit: ExitRecord) => void): SpawnedChild {
    const errno = this.spawnError(request, owner);
    if (errno !== null) throw new StartError(`${request.command}: execve failed: ${errno}`, errno, "execve", errno === "ENOENT" ? 127 : 126);
    const pid = this.nextPid++;
    const pipe = (what: string) => {
      const fd = this.openFd(`${what} of pid ${pid}`);
      return new FakePipe(this, fd);
    };
    const pipes = {
      stdout: request.stdout === "pipe" ? pipe("stdout") : null,
      stderr: request.stderr === "pipe" ? pipe("stderr") : null,
      notify: request.notifyFd !== undefined ? pipe("notify pipe") : null,
    };
    const process = new FakeProcess(this, pid, request, owner, this.time, pipes, onExit);
    this.processes.set(pid, process);
    if (request.cgroup !== undefined) {
      process.cgroup = request.cgroup;
      this.cgroupsFake?.join(process);
    }
    this.onSpawn(process);
    return { pid, stdoutFd: pipes.stdout?.fd ?? -1, stderrFd: pipes.stderr?.fd ?? -1, notifyFd: pipes.notify?.fd ?? -1 };
  }

  /** Exits held while the reaper is paused (a reexec under way): told to whoever adopts the pid. */
  reaperPaused = false;
  readonly zombies = new Map<number, ExitRecord>();

  /**
   * The init execs itself: what lived in its process (timers, pipe readers, probes, watches) is gone,
   * while fds, processes and what they write stay (output waits in the pipes for the next reader).
   */
  exec(): void {
    this.scheduled = this.scheduled.filter((item) => item.kind !== "timer");
    for (const reader of this.readers) reader.pipe.reader = null;
    this.readers.clear();
    this.probes.clear();
    this.datagramReaders.clear();
    this.exitWatches.clear();
    this.cgroupsFake?.watches.clear();
    for (const watch of this.watches) watch.listener.watchers.delete(watch);
    this.watches.clear();
  }

  adopt(pid: number, onExit: (exit: ExitRecord) => void): boolean {
    const zombie = this.zombies.get(pid);
    if (zombie) {
      this.zombies.delete(pid);
      this.at(this.time, () => onExit(zombie));
      return true;
    }
    const process = this.processes.get(pid);
    if (!process?.alive) return false;
    process.onExit = onExit;
    return true;
  }

  kill(pid: number, signal: number): void {
    const targets = pid < 0 ? [...this.processes.values()].filter((p) => p.alive && p.pid === -pid) : [this.processes.get(pid)].filter((p) => p?.alive);
    if (targets.length === 0) throw Object.assign(new Error("kill ESRCH"), { code: "ESRCH", syscall: "kill" });
    this.kills.push({ at: this.time, pid, signal });
    for (const target of targets) {
      target!.signals.push(signal);
      if (signal === 9) target!.endAt(this.time, null, 9);
      else this.onSignal(target!, signal);
    }
  }

  bindDatagram(path: string): number {
    this.files.add(path);
    return this.openFd(`datagram socket ${path}`);
  }

  close(fd: number): void {
    if (!this.fds.has(fd)) throw Object.assign(new Error(`close EBADF ${fd}`), { code: "EBADF", syscall: "close" });
    this.closeFd(fd);
  }

  makeDirectory(): void {}

  removeFile(path: string): void {
    this.files.delete(path);
  }

  openPipe = (fd: number): PipeReader => {
    const pipe = this.pipeOf(fd);
    if (!pipe) throw new Error(`fd ${fd} is not a pipe of a fake process`);
    return pipe.open();
  };

  startProbe(probe: ReadinessProbe, context: ProbeContext, callbacks: ProbeCallbacks): RunningProbe {
    // The log probe only listens to the server's output: the real one runs (sd_notify's too when asked:
    // it only listens to the messages the engine reads).
    if (probe.kind === "log" || (probe.kind === "sd_notify" && this.realSdNotify)) return realStartProbe(probe, context, callbacks);
    const fake = new FakeProbe(this, probe, context, callbacks);
    this.onProbe(fake);
    return fake;
  }

  closeFd(fd: number): void {
    this.fds.delete(fd);
  }

  // ---- listening sockets ----------------------------------------------------------------------

  openListener(socket: SocketSpec): Listener {
    const errno = this.bindError(socket);
    if (errno !== null) throw Object.assign(new Error(`bind ${errno}`), { code: errno, syscall: "bind" });
    const fd = this.openFd(`listening socket ${socket.listen}`);
    this.listeners.set(fd, new FakeListener(socket, fd));
    if (socket.path !== null) this.files.add(socket.path);
    return { fd, inode: 100_000 + fd };
  }

  updateListener(socket: SocketSpec, fd: number): void {
    this.listener(fd).backlog = socket.backlog;
  }

  closeListener(socket: SocketSpec, fd: number): void {
    const listener = this.listener(fd);
    if (listener.watchers.size > 0) throw new Error(`fd ${fd} closed while watched`);
    this.listeners.delete(fd);
    this.close(fd);
    if (socket.path !== null) this.files.delete(socket.path);
  }

  watchReadable(fd: number, onReadable: () => void): WatchHandle {
    const watch: FakeWatch = { listener: this.listener(fd), onReadable };
    watch.listener.watchers.add(watch);
    this.watches.add(watch);
    this.poll(watch.listener);
    return watch;
  }

  stopWatching(handle: WatchHandle): void {
    const watch = handle as FakeWatch;
    watch.listener.watchers.delete(watch);
    this.watches.delete(watch);
  }

  accept(fd: number): number | null {
    const listener = this.listener(fd);
    if (listener.queued === 0) return null;
    listener.queued -= 1;
    return this.openFd(`connection on ${listener.spec.listen}`);
  }

  listenQueue(_socket: SocketSpec, fd: number): { queued: number; backlog: number | null } {
    const listener = this.listener(fd);
    return { queued: listener.queued, backlog: listener.backlog };
  }

  socketsBusy(sockets: readonly HeldSocket[]): boolean {
    return sockets.some(({ fd }) => this.listener(fd).queued > 0 || this.listener(fd).open > 0);
  }

  /** A client connects to the socket listening at `listen`: it waits in the queue; a watch fires on the event loop. */
  connect(listen: string): FakeListener {
    const listener = [...this.listeners.values()].find((candidate) => candidate.spec.listen === listen);
    if (!listener) throw new Error(`nothing listens at ${listen}: ECONNREFUSED`);
    listener.queued += 1;
    this.poll(listener);
    return listener;
  }

  /** The server's process takes a waiting connection (as its own accept would). */
  serverAccepts(listen: string): void {
    const listener = [...this.listeners.values()].find((candidate) => candidate.spec.listen === listen)!;
    if (listener.queued === 0) throw new Error(`no connection waits at ${listen}`);
    listener.queued -= 1;
    listener.open += 1;
  }

  /** Level-triggered, like uv_poll: while a connection waits, a watch fires again on each turn of the loop. */
  private poll(listener: FakeListener): void {
    this.at(this.time, () => {
      if (listener.queued === 0) return;
      const watches = [...listener.watchers];
      for (const watch of watches) if (listener.watchers.has(watch)) watch.onReadable();
      if (listener.watchers.size > 0 && listener.queued > 0) this.poll(listener);
    });
  }

  private listener(fd: number): FakeListener {
    const listener = this.listeners.get(fd);
    if (!listener) throw Object.assign(new Error(`fd ${fd} is not a listening socket`), { code: "EBADF" });
    return listener;
  }

  watchDatagrams(fd: number, onDatagram: (text: string) => void): Closable {
    if (!this.fds.has(fd)) throw new Error(`fd ${fd} is not open`);
    this.datagramReaders.set(fd, onDatagram);
    return { close: () => this.datagramReaders.delete(fd) };
  }

  /** A datagram to the sd_notify socket bound at path (the server's NOTIFY_SOCKET). */
  notify(path: string | undefined, text: string): void {
    const fd = [...this.fds].find(([, what]) => what === `datagram socket ${path}`)?.[0];
    const reader = fd === undefined ? undefined : this.datagramReaders.get(fd);
    if (!reader) throw new Error(`nobody reads ${path}`);
    reader(text);
  }

  readPidFile(file: string): number | null {
    return this.pidFiles.get(file) ?? null;
  }

  parentOf(pid: number): number | null {
    const process = this.processes.get(pid);
    return process?.alive ? process.parent : null;
  }

  watchExit(pid: number, onExit: (exit: { code: number | null; signal: number | null }) => void): Closable | null {
    const process = this.processes.get(pid);
    if (!process?.alive) return null;
    this.exitWatches.add(process);
    process.onExit = (exit) => {
      this.exitWatches.delete(process);
      onExit({ code: exit.code, signal: exit.signal });
    };
    return {
      close: () => {
        this.exitWatches.delete(process);
        process.onExit = () => {};
      },
    };
  }

  /** The live process of a server (role "server"), or of one of its hooks. */
  process(server: string, role: ProcessOwner["role"] = "server"): FakeProcess | undefined {
    return [...this.processes.values()].find((p) => p.alive && p.owner.server === server && p.owner.role === role);
  }

  probe(server: string): FakeProbe | undefined {
    return [...this.probes].find((p) => p.context.name === server);
  }

  /** Engine timers still armed. */
  get armedTimers(): number {
    return this.scheduled.filter((item) => item.kind === "timer").length;
  }

  /** What is left open or alive: each must be empty (or zero) at the end of a scenario. */
  leftovers(): Record<string, unknown> {
    return {
      timers: this.armedTimers,
      fds: [...this.fds.values()],
      readers: this.readers.size,
      probes: this.probes.size,
      processes: [...this.processes.values()].filter((p) => p.alive).map((p) => `${p.owner.server} ${p.owner.role} pid ${p.pid}`),
      files: [...this.files],
      watches: this.watches.size,
      datagramReaders: this.datagramReaders.size,
      exitWatches: this.exitWatches.size,
      cgroupWatches: this.cgroupsFake?.watches.size ?? 0,
    };
  }

  private openFd(what: string): number {
    const fd = this.nextFd++;
    this.fds.set(fd, what);
    return fd;
  }

  private pipeOf(fd: number): FakePipe | undefined {
    for (const process of this.processes.values()) {
      for (const pipe of Object.values(process.pipes)) if (pipe?.fd === fd) return pipe;
    }
    return undefined;
  }
}

/** cgroup v2 as records: which processes are in which cgroup, watches that fire when one empties. */
export class FakeCgroups implements CgroupControl {
  readonly base = "/sys/fs/cgroup/servers";
  readonly controllers = ["cpu", "memory", "pids", "io"];
  readonly members = new Map<string, Set<FakeProcess>>();
  readonly limits = new Map<string, Record<string, string>>();
  readonly watches = new Set<{ cgroup: string; onEmpty: () => void }>();
  /** OOM kills counted per cgroup (the test sets them, as the kernel would). */
  readonly oom = new Map<string, number>();
  /** Limits the kernel refuses here (a controller not enabled). */
  refuse = new Set<string>();
  /** Every kill of a whole cgroup, and every signal to one. */
  readonly signalled: { at: number; cgroup: string; signal: number }[] = [];

  constructor(readonly system: FakeSystem) {}

  join(process: FakeProcess): void {
    if (process.cgroup === null) return;
    let set = this.members.get(process.cgroup);
    if (!set) this.members.set(process.cgroup, (set = new Set()));
    set.add(process);
  }

  leave(process: FakeProcess): void {
    if (process.cgroup === null) return;
    const set = this.members.get(process.cgroup);
    set?.delete(process);
    if (set?.size === 0) this.emptied(process.cgroup);
  }

  private emptied(cgroup: string): void {
    for (const watch of [...this.watches]) {
      if (watch.cgroup !== cgroup) continue;
      this.watches.delete(watch);
      this.system.at(this.system.now(), watch.onEmpty);
    }
  }

  prepare(name: string, limits: Readonly<Record<string, string>>): { path: string; refused: string[] } {
    const cgroup = `${this.base}/${name.replace(/\//g, "@")}`;
    if ((this.members.get(cgroup)?.size ?? 0) > 0) throw new Error(`${cgroup} still has processes`);
    this.members.set(cgroup, new Set());
    this.oom.delete(cgroup);
    this.limits.set(cgroup, Object.fromEntries(Object.entries(limits).filter(([key]) => !this.refuse.has(key))));
    return { path: cgroup, refused: Object.keys(limits).filter((key) => this.refuse.has(key)) };
  }

  watch(cgroup: string, onEmpty: () => void): Closable {
    const watch = { cgroup, onEmpty };
    this.watches.add(watch);
    if ((this.members.get(cgroup)?.size ?? 0) === 0) this.emptied(cgroup);
    return { close: () => this.watches.delete(watch) };
  }

  pids(cgroup: string): number[] {
    return [...(this.members.get(cgroup) ?? [])].map((p) => p.pid);
  }

  signal(cgroup: string, signal: number): number {
    this.signalled.push({ at: this.system.now(), cgroup, signal });
    const targets = [...(this.members.get(cgroup) ?? [])];
    for (const target of targets) {
      target.signals.push(signal);
      this.system.onSignal(target, signal);
    }
    return targets.length;
  }

  kill(cgroup: string): void {
    this.signalled.push({ at: this.system.now(), cgroup, signal: 9 });
    for (const target of [...(this.members.get(cgroup) ?? [])]) {
      target.signals.push(9);
      target.endAt(this.system.now(), null, 9);
    }
  }

  stats(cgroup: string): CgroupStats {
    const processes = this.members.get(cgroup)?.size ?? 0;
    return {
      memoryBytes: processes * 1024 * 1024,
      memoryMax: this.limits.get(cgroup)?.["memory.max"] ?? "max",
      cpuUsec: 1500,
      processes,
      oomKills: this.oom.get(cgroup) ?? 0,
    };
  }

  oomKills(cgroup: string): number {
    return this.oom.get(cgroup) ?? 0;
  }

  remove(cgroup: string): void {
    if ((this.members.get(cgroup)?.size ?? 0) === 0) this.members.delete(cgroup);
  }
}

/** A real pino logger whose records are kept in memory. */
export function memoryLogger(): { log: Logger; records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = [];
  const log = pino({ level: "debug", base: null, timestamp: false }, { write: (line: string) => records.push(JSON.parse(line) as Record<string, unknown>) });
  return { log, records };
}

/** The real engine over a fake world. */
export function fakeEngine(specs: ServerSpec[], settings: Settings, system = new FakeSystem()) {
  const { log, records } = memoryLogger();
  const progress: string[] = [];
  const report = new ConsoleReport(
    (text) => progress.push(text.trimEnd()),
    () => true,
  );
  const engine = new Engine(createSupervisor({ settings, servers: specs }, system.now()), log, report, "/run/test", system);
  // As stage 2 does before the boot: the servers' sockets exist before any server starts.
  const sockets = engine.sockets.prepare(specs);
  if (sockets.problems.length > 0) throw new Error(`sockets: ${sockets.problems.map((p) => p.message).join("; ")}`);
  sockets.commit();
  return { engine, system, records, progress };
}

/** A tiny deterministic generator (mulberry32) for the random walks: the same walk on every run. */
export function random(seed: number): () => number {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
