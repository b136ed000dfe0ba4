// An in-place upgrade: `starter-init reexec [--binary PATH]` replaces the running init with a new
// binary, every server kept running (Upstart's state passing on re-exec).
//
// The old init checks the binary first (a regular, executable ELF file of this machine's kind that
// answers `--reexec-check` as a starter-init, and reads this init's state format), so that an exec
// that cannot work is refused while nothing has changed. Then, in one go: its reaper stops reaping
// (children that exit now stay zombies for the new reaper), the servers' output is no longer read
// (whole lines written out; the line begun on each pipe goes into the state), the state is written
// as JSON into an unlinked file whose fd stays open, every fd the new init needs loses close-on-exec,
// connected control clients are told and closed, and execve() runs the new binary with
// `--resume-state-fd N`. An execve that fails leaves everything as it was: reaping and reading go on.
//
// The new init reads the state, continues the old one's monotonic clock, adopts the supervisor and
// every fd, claims every child from its reaper (an exit during the exec is a zombie its reaper
// collected at start, and is told now), and re-arms timers, probes, pings and watches.
//
// The state's top-level keys `format`, `writer`, `argv`, `children`, `fds` and `watchdog` mean the same
// in every format (the frozen part): a build that cannot read the rest (a downgrade: a newer format)
// still stops the children it names in order, closes those fds, keeps petting the watchdog, saves
// the state to a file, and boots afresh.

import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { native } from "../native";
import type { Logger } from "../log/logger";
import { reaper } from "../process/reaper";
import { childrenDirectory, spawnChild, StartError } from "../process/spawn";
import { decodeSupervisor, decodeValue, encodeSupervisor, encodeValue, processesOf, readableFormat, STATE_FORMAT, type Json } from "../core/state";
import type { Supervisor } from "../core/supervisor";
import { INIT_VERSION } from "../version";
import { clockReading, continueClock, Engine, monotonicNow, type CapturedEngine } from "./engine";
import type { HeldSocket } from "./sockets";
import { armedHardwareWatchdog } from "../pid1/watchdog";

import { CHECK_ARG, RESUME_ARG } from "./reexec-args";

export { CHECK_ARG, RESUME_ARG };
/** How long `--reexec-check` may take (a VM under TCG starts a binary in about 2 s). */
const CHECK_TIMEOUT_MS = 20_000;
/** Where a state the new init cannot read is saved, when the runtime directory is not known. */
const FALLBACK_STATE_DIR = "/run/starter-init";

/** What `--reexec-check` prints: one JSON line. */
export interface CheckAnswer {
  starterInit: true;
  version: string;
  /** The newest state format this binary reads. */
  stateFormat: number;
  arch: string;
}

export function checkAnswer(): string {
  const answer: CheckAnswer = { starterInit: true, version: INIT_VERSION, stateFormat: STATE_FORMAT, arch: process.arch };
  return JSON.stringify(answer);
}

/** The frozen part of every state (see the file comment). */
export interface FrozenState {
  format: number;
  writer: string;
  /** The init's arguments as it was first started: a re-executed init parses them again. */
  argv: string[];
  /** Every process the supervisor waits for, with how to stop it. */
  children: { server: string; pid: number; stopSignal: number; stopTimeoutMs: number }[];
  /** Every fd handed over besides 0-2 (listening, control, notify, output): closed by a reader that cannot use them. */
  fds: number[];
  /** The hardware watchdog (a VM's), kept open across the exec. */
  watchdog: { fd: number; timeoutS: number; identity: string; magicClose: boolean } | null;
  /** The init's runtime directory: where a state that cannot be read is saved. */
  runtimeDir: string;
}

/** The whole state of format 1. */
export interface ReexecState extends FrozenState {
  clock: { now: number; monotonicNs: string };
  /** Wall clock of the write, and of the first start of the init (its uptime goes on). */
  writtenAt: number;
  startedAt: number;
  /** How many execs this init has been through, this one counted. */
  generation: number;
  from: string;
  /** On the core's clock: when the servers' output was last read before the exec. */
  unreadSince: number;
  requestedAt: number;
  configFile: string;
  /** The config running (the file composed with the sources), as its servers and settings are in the supervisor. */
  source: string;
  childrenDirectory: string | null;
  systemd: Json;
  supervisor: Json;
  engine: CapturedEngine;
  sockets: Omit<HeldSocket, "watcher">[];
  /** Parts of other modules (the control socket, the Tango source), by name. */
  parts: Record<string, Json>;
}

/** What another module hands over: data, and the fds it needs kept open. */
export interface ReexecPart {
  name: string;
  capture(): { data: Json; fds: number[] };
  /** The last moment before execve (the control socket tells its clients and closes them). */
  beforeExec?(why: string): void;
  /** The exec failed: back to as before capture(). */
  abort?(): void;
}

export class ReexecError extends Error {
  constructor(
    message: string,
    /** "binary": the binary does not qualify; "downgrade": it cannot read this state (--force execs anyway); "exec": execve failed. */
    readonly kind: "binary" | "downgrade" | "exec" | "busy",
  ) {
    super(message);
    this.name = "ReexecError";
  }
}

/** A binary that passed the checks. */
export interface CheckedBinary {
  file: string;
  version: string;
  stateFormat: number;
}

/** The ELF machine (e_machine) of a file, or why it is not an ELF executable. */
function elfMachine(file: string): number | string {
  const header = Buffer.alloc(20);
  let fd: number;
  try {
    fd = fs.openSync(file, "r");
  } catch (err) {
    return `cannot open it (${(err as NodeJS.ErrnoException).code})`;
  }
  try {
    const bytes = fs.readSync(fd, header, 0, header.length, 0);
    if (bytes < header.length || header.readUInt32BE(0) !== 0x7f454c46) return "it is not an ELF executable";
    return header[5] === 2 ? header.readUInt16BE(18) : header.readUInt16LE(18);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Checks that file can replace this init: a regular executable ELF file for this machine that
 * answers `--reexec-check` as a starter-init, reading this init's state format (unless force).
 */
export async function checkBinary(file: string, force: boolean): Promise<CheckedBinary> {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (err) {
    throw new ReexecError(`${file}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (err as Error).message}`, "binary");
  }
  if (!stat.isFile()) throw new ReexecError(`${file}: not a regular file`, "binary");
  try {
    fs.accessSync(file, fs.constants.X_OK);
  } catch {
    throw new ReexecError(`${file}: not executable`, "binary");
  }
  const machine = elfMachine(file);
  if (typeof machine === "string") throw new ReexecError(`${file}: ${machine}`, "binary");
  const own = elfMachine("/proc/self/exe");
  if (typeof own === "number" && own !== machine) {
    throw new ReexecError(`${file}: built for another architecture (ELF machine ${machine}; this init's is ${own})`, "binary");
  }
  const answer = await askBinary(file);
  if (answer.stateFormat < STATE_FORMAT && !force) {
    throw new ReexecError(
      `${file} (${answer.version}) reads state format ${answer.stateFormat}, older than this init's ${STATE_FORMAT} (${INIT_VERSION}): a downgrade ` +
        `would restart every server; reexec --force does it anyway`,
      "downgrade",
    );
  }
  return { file, version: answer.version, stateFormat: answer.stateFormat };
}

/** Runs `file --reexec-check` (through the init's own spawn and reaper) and reads its answer. */
async function askBinary(file: string): Promise<CheckAnswer> {
  let child;
  try {
    child = spawnChild({ command: file, args: [CHECK_ARG], env: { ...process.env }, stdin: "null", stdout: "pipe", stderr: "stdout", setsid: true });
  } catch (err) {
    if (err instanceof StartError) throw new ReexecError(`${file}: ${err.message}`, "binary");
    throw err;
  }
  const output: Buffer[] = [];
  const pipe = new net.Socket({ fd: child.stdoutFd, readable: true, writable: false });
  pipe.on("data", (chunk: Buffer) => output.push(chunk));
  pipe.on("error", () => pipe.destroy());
  const closed = new Promise<void>((resolve) => pipe.once("close", () => resolve()));
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), CHECK_TIMEOUT_MS);
  });
  const exit = await Promise.race([child.exited, timedOut]);
  clearTimeout(timer);
  if (exit === "timeout") {
    try {
      process.kill(-child.pid, 9);
    } catch {
      // Gone meanwhile.
    }
    pipe.destroy();
    throw new ReexecError(`${file} ${CHECK_ARG}: no answer within ${CHECK_TIMEOUT_MS / 1000} s`, "binary");
  }
  await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 1000))]);
  pipe.destroy();
  const text = Buffer.concat(output).toString("utf8").trim();
  const line = text.split("\n").find((candidate) => candidate.startsWith("{"));
  let answer: Partial<CheckAnswer> | null;
  try {
    answer = line ? (JSON.parse(line) as Partial<CheckAnswer>) : null;
  } catch {
    answer = null;
  }
  if (exit.code !== 0 || !answer || answer.starterInit !== true || typeof answer.version !== "string" || typeof answer.stateFormat !== "number") {
    const said = text.length > 200 ? `${text.slice(0, 200)}…` : text;
    const how = exit.code === null ? `was killed by ${exit.signalName ?? exit.signal}` : `exited with code ${exit.code}`;
    throw new ReexecError(`${file} is not a starter-init that can take over (${CHECK_ARG} ${how}${said ? `: ${JSON.stringify(said)}` : ""})`, "binary");
  }
  return answer as CheckAnswer;
}

/** What the exec needs of the running supervisor. */
export interface ReexecContext {
  engine: Engine;
  configFile: string;
  source: string;
  startedAt: number;
  generation: number;
  /** The arguments the init was first started with. */
  argv: string[];
  systemd: Json;
  parts: readonly ReexecPart[];
  runtimeDir: string;
  log: Logger;
}

/** Builds the state; the servers' output is no longer read once this returns (see Engine.capture). */
function captureState(context: ReexecContext, binary: CheckedBinary, requestedAt: number): { state: ReexecState; fds: number[]; partFds: number[] } {
  const { engine } = context;
  const captured = engine.capture();
  const unreadSince = monotonicNow();
  const parts: Record<string, Json> = {};
  const partFds: number[] = [];
  for (const part of context.parts) {
    const { data, fds } = part.capture();
    parts[part.name] = data;
    partFds.push(...fds);
  }
  const sockets = engine.sockets.entries().map(({ watcher: _watcher, ...entry }) => entry);
  const watchdog = armedHardwareWatchdog();
  const fds = [...Engine.fdsOf(captured), ...sockets.map((socket) => socket.fd), ...partFds];
  const sup = engine.sup;
  const state: ReexecState = {
    format: STATE_FORMAT,
    writer: INIT_VERSION,
    argv: context.argv,
    children: processesOf(sup).map(({ server, pid }) => {
      const spec = sup.servers.get(server)!.spec;
      return { server, pid, stopSignal: spec.stopSignal, stopTimeoutMs: spec.stopTimeoutMs };
    }),
    fds,
    watchdog,
    runtimeDir: context.runtimeDir,
    clock: clockReading(),
    writtenAt: Date.now(),
    startedAt: context.startedAt,
    generation: context.generation + 1,
    from: INIT_VERSION,
    unreadSince,
    requestedAt,
    configFile: context.configFile,
    source: context.source,
    childrenDirectory: childrenDirectory(),
    systemd: context.systemd,
    supervisor: encodeSupervisor(sup),
    engine: captured,
    sockets,
    parts,
  };
  if (binary.stateFormat < STATE_FORMAT) context.log.warn(`${binary.file} reads state format ${binary.stateFormat} only: it will restart the servers`);
  return { state, fds: watchdog ? [...fds, watchdog.fd] : fds, partFds };
}

/** Writes the state into a file that is unlinked at once; returns an fd open for reading at its start. */
function stateFd(runtimeDir: string, text: string): number {
  fs.mkdirSync(runtimeDir, { recursive: true, mode: 0o755 });
  const file = path.join(runtimeDir, `reexec-state.${process.pid}.json`);
  fs.writeFileSync(file, text, { mode: 0o600 });
  try {
    return fs.openSync(file, "r");
  } finally {
    fs.rmSync(file, { force: true });
  }
}

/**
 * Replaces this process with binary (checked by checkBinary). Returns only when execve failed, by
 * throwing a ReexecError, with everything as it was before.
 */
export async function execInit(context: ReexecContext, binary: CheckedBinary, requestedAt: number): Promise<never> {
  const { engine, log } = context;
  reaper.pause();
  let fd = -1;
  let kept: number[] = [];
  let captured = false;
  try {
    // Exits reaped before the pause reach the supervisor first (their listeners run as promise jobs).
    await new Promise((resolve) => setImmediate(resolve));
    const { state, fds } = captureState(context, binary, requestedAt);
    captured = true;
    fd = stateFd(context.runtimeDir, JSON.stringify(state));
    kept = [0, 1, 2, fd, ...fds];
    for (const each of kept) native().fdSetCloexec(each, false);
    const why = `the init is re-executing (${INIT_VERSION} → ${binary.version}); connect again in a moment`;
    for (const part of context.parts) part.beforeExec?.(why);
    log.info({ binary: binary.file, version: binary.version, fds: kept.length }, `re-executing ${binary.file} (${binary.version})`);
    const env = Object.entries(process.env)
      .filter((entry): entry is [string, string] => entry[1] !== undefined)
      .map(([key, value]) => `${key}=${value}`);
    native().execve(binary.file, [binary.file, RESUME_ARG, String(fd)], env);
  } catch (err) {
    for (const each of kept) {
      try {
        native().fdSetCloexec(each, true);
      } catch {
        // Closed meanwhile.
      }
    }
    if (fd >= 0) fs.closeSync(fd);
    reaper.resume();
    if (captured) {
      engine.resumeAfterFailedExec();
      for (const part of context.parts) part.abort?.();
    }
    const { code, syscall } = err as NodeJS.ErrnoException;
    const message = syscall === "execve" ? `execve ${binary.file}: ${code ?? (err as Error).message}` : `before the exec: ${(err as Error).message}`;
    log.error({ binary: binary.file, code }, `reexec failed, the init goes on unchanged: ${message}`);
    throw new ReexecError(message, "exec");
  }
  // execve returned without an error: cannot happen.
  throw new ReexecError("execve returned", "exec");
}

// ---- the new init's side ------------------------------------------------------------------

/** A state read back: whole (this build reads its format), or only its frozen part (a downgrade). */
export type ResumeInput =
  { kind: "state"; state: ReexecState; readMs: number } | { kind: "downgrade"; frozen: FrozenState; why: string; savedTo: string | null };

/** Reads the state from fd (and closes it). Throws when there is nothing usable at all. */
export function readResumeState(fd: number): ResumeInput {
  const started = performance.now();
  let text: string;
  try {
    text = fs.readFileSync(fd, "utf8");
  } finally {
    try {
      fs.closeSync(fd);
    } catch {
      // Not open: the read failed.
    }
  }
  const raw = JSON.parse(text) as Partial<ReexecState>;
  const readable = readableFormat(raw);
  if (readable.ok && raw.clock && raw.supervisor && raw.engine) {
    continueClock(raw.clock);
    return { kind: "state", state: raw as ReexecState, readMs: performance.now() - started };
  }
  const why = readable.ok ? "the state lacks its supervisor" : readable.why;
  const frozen = frozenPart(raw);
  return { kind: "downgrade", frozen, why, savedTo: saveState(text, frozen.runtimeDir) };
}

/** The frozen part of a state, checked field by field (a bad field is left out, never guessed). */
function frozenPart(raw: Partial<ReexecState>): FrozenState {
  const ints = (value: unknown) => (Array.isArray(value) ? value.filter((item): item is number => Number.isInteger(item) && item >= 0) : []);
  const children = Array.isArray(raw.children)
    ? raw.children.filter((child) => child && Number.isInteger(child.pid) && child.pid > 1 && typeof child.server === "string")
    : [];
  const watchdog = raw.watchdog && Number.isInteger(raw.watchdog.fd) && raw.watchdog.fd > 2 ? raw.watchdog : null;
  return {
    format: Number(raw.format),
    writer: String(raw.writer),
    argv: Array.isArray(raw.argv) ? raw.argv.map(String) : [],
    children: children.map((child) => ({
      server: child.server,
      pid: child.pid,
      stopSignal: Number.isInteger(child.stopSignal) ? child.stopSignal : 15,
      stopTimeoutMs: Number.isFinite(child.stopTimeoutMs) ? child.stopTimeoutMs : 10_000,
    })),
    fds: ints(raw.fds).filter((fd) => fd > 2),
    watchdog,
    runtimeDir: typeof raw.runtimeDir === "string" && raw.runtimeDir.startsWith("/") ? raw.runtimeDir : FALLBACK_STATE_DIR,
  };
}

/** Saves a state this build cannot read, for a person (or a newer build) to look at; null when it cannot be saved. */
function saveState(text: string, runtimeDir: string): string | null {
  for (const dir of [runtimeDir, FALLBACK_STATE_DIR, "/tmp", "/"]) {
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
      const file = path.join(dir, `reexec-state-unread.${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
      fs.writeFileSync(file, text, { mode: 0o600 });
      return file;
    } catch {
      // Next place.
    }
  }
  return null;
}

/**
 * A downgrade: the children the state names are stopped in order (their stop signal to the process
 * group, SIGKILL after their stop timeout) and reaped, the fds it names are closed; then the init boots
 * afresh. Never a child lost: whatever else is left is our child and the reaper collects it.
 */
export async function stopChildrenOf(frozen: FrozenState, log: Logger): Promise<void> {
  for (const fd of frozen.fds) {
    try {
      native().close(fd);
    } catch {
      // Not open.
    }
  }
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === "EPERM";
    }
  };
  const send = (pid: number, signal: number) => {
    try {
      process.kill(-pid, signal);
    } catch {
      try {
        process.kill(pid, signal);
      } catch {
        // Gone.
      }
    }
  };
  const children = frozen.children.filter((child) => alive(child.pid));
  if (children.length === 0) return;
  log.warn({ children: children.length }, `stopping the ${children.length} process(es) of the state it cannot read; the servers start again afresh`);
  for (const child of children) send(child.pid, child.stopSignal);
  const started = Date.now();
  const deadline = Math.max(...children.map((child) => child.stopTimeoutMs));
  let killed = false;
  while (children.some((child) => alive(child.pid))) {
    if (!killed && Date.now() - started >= deadline) {
      for (const child of children) if (alive(child.pid)) send(child.pid, 9);
      killed = true;
    }
    if (killed && Date.now() - started >= deadline + 5000) {
      log.error("processes of the old state did not end after SIGKILL; booting anyway");
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The supervisor of a state (its own format), and the part of another module by name. */
export function supervisorOf(state: ReexecState): Supervisor {
  return decodeSupervisor(state.supervisor);
}

export function partOf(state: ReexecState, name: string): unknown {
  const data = state.parts[name];
  return data === undefined ? undefined : decodeValue(data);
}

export { encodeValue };
