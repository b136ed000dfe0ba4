// Running the built binary as PID 1 of a fresh PID namespace, and watching it from outside.

import { execFile, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export const ROOT = path.resolve(__dirname, "..", "..");
export const BINARY = path.join(ROOT, "dist", "starter-init");

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a program to its end; never rejects on a non-zero exit (the caller asserts), only when it cannot run or times out. */
export function run(file: string, args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CommandResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    execFile(file, args, { env: options.env ?? process.env, timeout: options.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && typeof (err as NodeJS.ErrnoException).code !== "number") return reject(new Error(`${file} ${args.join(" ")}: ${err.message}\n${stderr}`));
      resolve({ code: err ? Number((err as NodeJS.ErrnoException).code) : 0, stdout, stderr, ms: Date.now() - started });
    });
  });
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  durationMs: number;
}

export interface Pid1Process {
  /** The unshare process (parent of the init). */
  unshare: ChildProcess;
  /** Resolves with the init's outcome (unshare passes the init's exit code through). */
  result: Promise<RunResult>;
  stdout(): string;
  stderr(): string;
  /** Host pid of the init (PID 1 inside the namespace), once it exists. */
  initPid(): Promise<number>;
  /** Sends a signal to the init. */
  signal(signal: NodeJS.Signals): Promise<void>;
  /** Resolves when stdout+stderr contain text (or matches), rejects after timeoutMs. */
  waitFor(text: string | RegExp, timeoutMs?: number): Promise<void>;
}

export interface Pid1Options {
  env?: Record<string, string | undefined>;
  /** Extra unshare flags, e.g. ["--mount", "--propagation", "private"]. */
  unshareArgs?: string[];
  /** Replaces the binary path (e.g. inside another root). */
  binary?: string;
  cwd?: string;
}

/** Every unshare still running, so a failed or timed-out test leaves no init behind. */
const running = new Set<ChildProcess>();

/** Kills (SIGKILL) every init a test started and has not seen end; --kill-child takes the rest. */
export function killStartedInits(): void {
  for (const child of running) child.kill("SIGKILL");
  running.clear();
}

/** Starts `binary args…` as PID 1 of a new PID namespace with its own /proc. */
export function startAsPid1(args: string[], options: Pid1Options = {}): Pid1Process {
  const started = Date.now();
  const unshare = spawn("unshare", ["--pid", "--fork", "--mount-proc", "--kill-child", ...(options.unshareArgs ?? []), options.binary ?? BINARY, ...args], {
    env: options.env ?? cleanEnv(),
    cwd: options.cwd ?? ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(unshare);
  unshare.once("close", () => running.delete(unshare));
  let stdout = "";
  let stderr = "";
  const watchers = new Set<() => void>();
  unshare.stdout!.on("data", (chunk) => {
    stdout += chunk;
    for (const watcher of watchers) watcher();
  });
  unshare.stderr!.on("data", (chunk) => {
    stderr += chunk;
    for (const watcher of watchers) watcher();
  });
  const result = new Promise<RunResult>((resolve) => {
    unshare.on("close", (code, signal) => resolve({ code, signal, stdout, stderr, durationMs: Date.now() - started }));
  });

  const initPid = async () => {
    for (let i = 0; i < 400; i++) {
      const children = readChildren(unshare.pid!);
      if (children.length) return children[0];
      await sleep(10);
    }
    throw new Error("the init did not start");
  };
  return {
    unshare,
    result,
    stdout: () => stdout,
    stderr: () => stderr,
    initPid,
    async signal(signal) {
      process.kill(await initPid(), signal);
    },
    waitFor(text, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const matches = () => (typeof text === "string" ? (stdout + stderr).includes(text) : text.test(stdout + stderr));
        if (matches()) return resolve();
        const timer = setTimeout(() => {
          watchers.delete(check);
          reject(new Error(`timed out waiting for ${String(text)}; output so far:\n${stdout}\n${stderr}`));
        }, timeoutMs);
        const check = () => {
          if (!matches()) return;
          clearTimeout(timer);
          watchers.delete(check);
          resolve();
        };
        watchers.add(check);
        unshare.on("close", () => {
          if (watchers.has(check)) {
            watchers.delete(check);
            clearTimeout(timer);
            if (matches()) resolve();
            else reject(new Error(`exited before ${String(text)}; output:\n${stdout}\n${stderr}`));
          }
        });
      });
    },
  };
}

/** Runs the binary as PID 1 to its end. */
export function runAsPid1(args: string[], options: Pid1Options = {}): Promise<RunResult> {
  return startAsPid1(args, options).result;
}

export function readChildren(pid: number): number[] {
  try {
    return fs
      .readdirSync(`/proc/${pid}/task`)
      .flatMap((tid) => fs.readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim().split(/\s+/))
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** The test runner's environment without variables that would change the init's behaviour. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined || key.startsWith("NODE_") || key.startsWith("VITEST") || key.startsWith("STARTER_")) continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `starter-init-${prefix}-`));
}

/** JSON lines of the init's pino log (non-JSON lines are skipped). */
export function logRecords(text: string): Record<string, unknown>[] {
  return text
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}

/** Polls until `condition` holds; rejects with `what` after timeoutMs. */
export async function waitUntil(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(20);
  }
}
