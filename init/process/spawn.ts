// The init's one way to start a process: the addon's fork/exec, registered with the reaper before
// anything else can run, so no exit is ever missed or stolen.

import fs from "node:fs";
import path from "node:path";
import { native, type SpawnOptions, type SpawnError, type StdioSpec } from "../native";
import { reaper } from "./reaper";
import type { ExitRecord } from "./exit";

export interface SpawnRequest {
  /** A path, or a name looked up in PATH (of `env`, else of the init). */
  command: string;
  /** Arguments after argv[0]. */
  args: string[];
  /** argv[0]; defaults to `command` as given. */
  argv0?: string;
  env: Record<string, string | undefined>;
  cwd?: string | null;
  uid?: number | null;
  gid?: number | null;
  groups?: number[];
  umask?: number | null;
  rlimits?: SpawnOptions["rlimits"];
  setsid?: boolean;
  setpgid?: boolean;
  foreground?: boolean;
  controllingTerminal?: boolean;
  stdin?: StdioSpec;
  stdout?: StdioSpec;
  stderr?: StdioSpec | "stdout";
  notifyFd?: number;
  /** Socket activation: fds placed at 3, 4, … in the child; listenPid sets LISTEN_PID to the child's own pid. */
  listenFds?: number[];
  listenPid?: boolean;
  /** A cgroup v2 directory the child joins before it runs (it and all it forks stay there). */
  cgroup?: string;
  /** Variables the child sets to its own pid (WATCHDOG_PID). */
  pidEnv?: string[];
}

export interface Child {
  pid: number;
  stdoutFd: number;
  stderrFd: number;
  notifyFd: number;
  /** Settles once, when the reaper collects the process. */
  exited: Promise<ExitRecord>;
}

/** Why a process could not be started; `exitCode` follows the shell: 127 not found, 126 not executable. */
export class StartError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly syscall: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = "StartError";
  }
}

/**
 * Variables that steer the Node runtime inside this SEA (STARTER_NODE is its NODE_OPTIONS: see
 * native/sea.mjs); a server must not inherit them.
 */
export function scrubEnvironment(env: Record<string, string | undefined>): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined || key.startsWith("NODE_") || key === "UV_THREADPOOL_SIZE" || key === "STARTER_NODE") continue;
    out.push(`${key}=${value}`);
  }
  return out;
}

/** The search path when none is set (a kernel starts PID 1 without PATH). */
export const STANDARD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * Finds an executable the way execvp does: a name with a slash is used as is; otherwise each PATH
 * entry is tried. When only non-executable matches exist, the first is returned so that exec fails
 * with EACCES (126) rather than ENOENT (127), as a shell would report.
 */
export function resolveCommand(command: string, searchPath: string | undefined): string {
  if (command.includes("/")) return command;
  let firstDenied: string | null = null;
  for (const dir of (searchPath ?? STANDARD_PATH).split(":")) {
    const candidate = path.join(dir || ".", command);
    try {
      const stat = fs.statSync(candidate);
      if (!stat.isFile()) continue;
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EACCES") firstDenied ??= candidate;
    }
  }
  return firstDenied ?? command;
}

/** The OOM score children get instead of the init's own (-1000 once stage 1 set it); null: inherited. */
let childOomScoreAdj: number | null = null;

/** Children start with this OOM score (the one the init itself was started with). */
export function giveChildrenOomScore(score: number): void {
  childOomScoreAdj = score;
}

/** Where a child starts when its request names no directory; null: the init's own. */
let defaultCwd: string | null = null;

/** Children that name no directory start in `dir` (the init itself moves to /). */
/** Where children without a cwd of their own start (a re-executed init keeps it). */
export function childrenDirectory(): string | null {
  return defaultCwd;
}

export function startChildrenIn(dir: string): void {
  defaultCwd = dir;
}

export function spawnChild(request: SpawnRequest): Child {
  const file = resolveCommand(request.command, request.env.PATH ?? process.env.PATH);
  const options: SpawnOptions = {
    file,
    argv: [request.argv0 ?? request.command, ...request.args],
    env: scrubEnvironment(request.env),
    stdin: request.stdin ?? "inherit",
    stdout: request.stdout ?? "inherit",
    stderr: request.stderr ?? "inherit",
  };
  const cwd = request.cwd ?? defaultCwd;
  if (cwd != null) options.cwd = cwd;
  if (request.uid != null) options.uid = request.uid;
  if (request.gid != null) options.gid = request.gid;
  if (request.groups) options.groups = request.groups;
  if (request.umask != null) options.umask = request.umask;
  if (request.rlimits?.length) options.rlimits = request.rlimits;
  if (request.setsid) options.setsid = true;
  if (request.setpgid) options.setpgid = true;
  if (request.foreground) options.foreground = true;
  if (request.controllingTerminal) options.controllingTerminal = true;
  if (request.notifyFd !== undefined) options.notifyFd = request.notifyFd;
  if (request.listenFds?.length) options.listenFds = request.listenFds;
  // LISTEN_PID and WATCHDOG_PID: the child's own pid, which only the child knows before exec.
  const pidEnv = [...(request.listenPid ? ["LISTEN_PID"] : []), ...(request.pidEnv ?? [])];
  if (pidEnv.length) options.pidEnv = pidEnv;
  if (childOomScoreAdj !== null) options.oomScoreAdj = childOomScoreAdj;

  let result;
  let cgroupFd: number | null = null;
  try {
    if (request.cgroup !== undefined) {
      cgroupFd = fs.openSync(path.join(request.cgroup, "cgroup.procs"), "w");
      options.cgroupFd = cgroupFd;
    }
    result = native().spawn(options);
  } catch (err) {
    const failure = err as SpawnError;
    if (typeof failure.pid === "number") reaper.discard(failure.pid);
    const notFound = failure.code === "ENOENT" && failure.syscall === "execve";
    throw new StartError(
      `${request.command}: ${failure.syscall ?? "spawn"} failed: ${failure.code ?? failure.message}`,
      failure.code ?? "UNKNOWN",
      failure.syscall ?? "spawn",
      notFound ? 127 : 126,
    );
  } finally {
    if (cgroupFd !== null) fs.closeSync(cgroupFd);
  }
  const exited = new Promise<ExitRecord>((resolve) => reaper.watch(result.pid, resolve));
  return { ...result, exited };
}
