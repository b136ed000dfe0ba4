// Shared by every workload: paths, timing, statistics, /proc, processes that are always cleaned up,
// the init as PID 1 of a fresh PID namespace, and a client of its control socket.

import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

export const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const ROOT = path.resolve(BENCH_DIR, "..", "..");
export const BINARY = path.join(ROOT, "dist", "starter-init");

/** The inits compared by the -- mode workloads: ours, and Debian's tini and dumb-init as anchors. */
export const INITS = [
  { label: "starter-init", argv: [BINARY, "--"] },
  { label: "tini", argv: ["/usr/bin/tini", "--"], anchor: true },
  { label: "dumb-init", argv: ["/usr/bin/dumb-init"], anchor: true },
];
export const TANGO_DIR = "/usr/lib/tango";
export const TANGO_TEST = path.join(TANGO_DIR, "TangoTest");
/** Debian's python3, which has PyTango (not another python on PATH). */
export const PYTHON = "/usr/bin/python3";

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Wall-clock milliseconds since the epoch with sub-millisecond resolution (comparable with Date.now()). */
export const now = () => performance.timeOrigin + performance.now();

export function log(...parts) {
  if (process.env.BENCH_DEBUG) console.error("[bench]", ...parts);
}

/** Rejects with a message naming `what` when the promise takes longer than ms. */
export function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${(ms / 1000).toFixed(0)} s: ${what}`)), ms);
    }),
  ]);
}

// ---- statistics ---------------------------------------------------------------------------------

export function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo);
}

export function stats(values) {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  return {
    n: sorted.length,
    median: quantile(sorted, 0.5),
    min: sorted[0] ?? NaN,
    max: sorted.at(-1) ?? NaN,
    p99: quantile(sorted, 0.99),
  };
}

/** Least-squares slope of log(y) over log(x): y grows like x^slope. */
export function logLogSlope(points) {
  const pts = points.filter(([x, y]) => x > 0 && y > 0);
  if (pts.length < 2) return NaN;
  const xs = pts.map(([x]) => Math.log(x));
  const ys = pts.map(([, y]) => Math.log(y));
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let num = 0;
  let den = 0;
  for (let i = 0; i < xs.length; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return num / den;
}

// ---- /proc --------------------------------------------------------------------------------------

export function childrenOf(pid) {
  try {
    return fs
      .readdirSync(`/proc/${pid}/task`)
      .flatMap((tid) => {
        try {
          return fs.readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim().split(/\s+/);
        } catch {
          return [];
        }
      })
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** The state letter of a process (R, S, Z, …), or null when it is gone. */
export function procState(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0];
  } catch {
    return null;
  }
}

/** True while the process exists and is not a zombie. */
export function alive(pid) {
  const state = procState(pid);
  return state !== null && state !== "Z";
}

/** Resident anonymous (private) memory: VmRSS without the pages of mapped files such as the binary. */
export function anonKiB(pid) {
  try {
    return Number(/RssAnon:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))[1]);
  } catch {
    return NaN;
  }
}

export function rssKiB(pid) {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))[1]);
  } catch {
    return NaN;
  }
}

export function cmdline(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  } catch {
    return [];
  }
}

/** Live (not zombie) pids whose argv satisfies the predicate. */
export function pidsWhere(predicate) {
  const found = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = cmdline(entry);
    if (argv.length && predicate(argv) && alive(entry)) found.push(Number(entry));
  }
  return found;
}

/** Polls until none of the pids is alive; resolves with the time it saw that. */
export async function waitAllGone(pids, timeoutMs, intervalMs = 2) {
  const deadline = now() + timeoutMs;
  let left = [...pids];
  for (;;) {
    left = left.filter(alive);
    if (left.length === 0) return now();
    if (now() > deadline) throw new Error(`${left.length} process(es) still alive after ${timeoutMs} ms: ${left.join(" ")}`);
    await sleep(intervalMs);
  }
}

/** Epoch milliseconds at which a process started (from /proc/PID/stat: 10 ms resolution). */
let bootEpochMs = null;
export function processStartEpoch(pid) {
  if (bootEpochMs === null) {
    // Date.now() - uptime, the largest over a few samples (uptime has 10 ms steps).
    let best = -Infinity;
    for (let i = 0; i < 5; i++) {
      const uptime = Number(fs.readFileSync("/proc/uptime", "utf8").split(" ")[0]);
      best = Math.max(best, now() - uptime * 1000);
    }
    bootEpochMs = best;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[19]); // field 22 overall: starttime
    return bootEpochMs + (ticks * 1000) / clockTicks();
  } catch {
    return NaN;
  }
}

let ticksPerSecond = null;
function clockTicks() {
  if (ticksPerSecond === null) {
    const out = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
    ticksPerSecond = Number(out.stdout.trim()) || 100;
  }
  return ticksPerSecond;
}

// ---- processes that never outlive the bench -----------------------------------------------------

const tracked = new Set();
const syncCleanups = new Set();

/** spawn() whose child is SIGKILLed when the bench ends in any way. */
export function spawnTracked(file, args, options = {}) {
  const child = spawn(file, args, options);
  tracked.add(child);
  child.once("exit", () => tracked.delete(child));
  child.once("error", () => tracked.delete(child));
  return child;
}

/** A synchronous cleanup run when the bench is interrupted or dies (e.g. DB deregistration). */
export function onAbort(fn) {
  syncCleanups.add(fn);
  return () => syncCleanups.delete(fn);
}

export function killTracked() {
  for (const child of tracked) {
    try {
      child.kill("SIGKILL");
    } catch {}
  }
  tracked.clear();
}

let installed = false;
export function installCleanup() {
  if (installed) return;
  installed = true;
  const abort = (code) => {
    killTracked();
    for (const fn of syncCleanups) {
      try {
        fn();
      } catch {}
    }
    syncCleanups.clear();
    process.exit(code);
  };
  process.on("SIGINT", () => abort(130));
  process.on("SIGTERM", () => abort(143));
  process.on("SIGHUP", () => abort(129));
  process.on("exit", () => killTracked());
}

export function waitExit(child, timeoutMs = Infinity) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = Number.isFinite(timeoutMs) ? setTimeout(() => resolve(false), timeoutMs) : null;
    child.once("exit", () => {
      if (timer) clearTimeout(timer);
      resolve(true);
    });
  });
}

// ---- the init as PID 1 of a fresh PID namespace ------------------------------------------------

/** The environment for an init: none of NODE_* / STARTER_* of the bench's own. */
export function cleanEnv(extra = {}) {
  const env = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith("NODE_") || key.startsWith("STARTER_") || key.startsWith("npm_")) continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

/**
 * Starts `starter-init args…` (JSON log on stderr) as PID 1 of a new PID namespace. `unshare
 * --kill-child` takes the whole namespace down when unshare dies, so a SIGKILL to unshare is always
 * a complete cleanup.
 */
export function startInit(args, { env, unshareArgs = [], binary = BINARY } = {}) {
  const startedAt = now();
  const unshare = spawnTracked("unshare", ["--pid", "--fork", "--mount-proc", "--kill-child", ...unshareArgs, binary, "--log-format", "json", ...args], {
    env: env ?? cleanEnv(),
    stdio: ["ignore", "pipe", "pipe"],
  });
  const records = [];
  const listeners = new Set();
  let stdout = "";
  let other = "";
  unshare.stdout.on("data", (chunk) => {
    if (stdout.length < 1 << 20) stdout += chunk;
  });
  readline.createInterface({ input: unshare.stderr }).on("line", (line) => {
    if (!line.startsWith("{")) {
      if (other.length < 1 << 16) other += `${line}\n`;
      return;
    }
    let record;
    try {
      record = JSON.parse(line);
    } catch {
      return;
    }
    record.seenAt = now();
    records.push(record);
    for (const listener of [...listeners]) listener(record);
  });
  let initPid = null;
  const exitWaiters = new Set();
  unshare.once("exit", () => {
    for (const waiter of [...exitWaiters]) waiter();
    exitWaiters.clear();
  });
  const handle = {
    unshare,
    startedAt,
    records,
    stdout: () => stdout,
    otherOutput: () => other,
    onRecord(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    /** Resolves with the first record (already seen or to come) that satisfies the predicate. */
    waitRecord(predicate, timeoutMs = 30_000, what = "a log record") {
      const found = records.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          listeners.delete(listener);
          exitWaiters.delete(onExit);
          reject(new Error(`timed out waiting for ${what}; init output:\n${other.slice(-2000)}`));
        }, timeoutMs);
        const onExit = () => {
          if (!listeners.has(listener)) return;
          clearTimeout(timer);
          listeners.delete(listener);
          reject(new Error(`the init ended before ${what}; its output:\n${other.slice(-2000)}`));
        };
        const listener = (record) => {
          if (!predicate(record)) return;
          clearTimeout(timer);
          listeners.delete(listener);
          exitWaiters.delete(onExit);
          resolve(record);
        };
        listeners.add(listener);
        if (unshare.exitCode !== null || unshare.signalCode !== null) onExit();
        else exitWaiters.add(onExit);
      });
    },
    /** What went wrong with servers so far (exits, failures), for error messages. */
    trouble() {
      return records
        .filter((r) => ["exited", "failed", "exec-failed", "start-timeout", "readiness-failed", "stop-timeout"].includes(r.kind))
        .slice(0, 6)
        .map((r) => `${r.server ?? ""} ${r.msg}`)
        .join("; ");
    },
    /** Host pid of the init (PID 1 inside). */
    async pid() {
      for (let i = 0; initPid === null && i < 500; i++) {
        const children = childrenOf(unshare.pid);
        if (children.length) initPid = children[0];
        else await sleep(5);
      }
      if (initPid === null) throw new Error("the init did not start");
      return initPid;
    },
    /** SIGTERM to the init itself (unshare does not forward signals); SIGKILL after timeoutMs. */
    async stop(timeoutMs = 15_000) {
      if (unshare.exitCode !== null || unshare.signalCode !== null) return;
      const children = childrenOf(unshare.pid);
      if (children.length) {
        try {
          process.kill(children[0], "SIGTERM");
        } catch {}
        if (await waitExit(unshare, timeoutMs)) return;
      }
      unshare.kill("SIGKILL");
      await waitExit(unshare, 5000);
    },
    /** SIGKILL: the kernel kills everything in the namespace. */
    async kill() {
      if (unshare.exitCode !== null || unshare.signalCode !== null) return;
      unshare.kill("SIGKILL");
      await waitExit(unshare, 5000);
    },
  };
  return handle;
}

// ---- control socket -----------------------------------------------------------------------------

/** A connection to the init's control socket speaking protocol v1 (init/control/protocol.ts). */
export class Control {
  static async connect(socketPath, timeoutMs = 10_000) {
    const deadline = now() + timeoutMs;
    for (;;) {
      try {
        const socket = await new Promise((resolve, reject) => {
          const s = net.createConnection(socketPath);
          s.once("connect", () => resolve(s));
          s.once("error", reject);
        });
        return new Control(socket);
      } catch (err) {
        if (now() > deadline) throw new Error(`cannot connect to ${socketPath}: ${err.message}`, { cause: err });
        await sleep(20);
      }
    }
  }

  constructor(socket) {
    this.socket = socket;
    this.nextId = 1;
    this.pending = new Map();
    let buffer = "";
    socket.on("data", (chunk) => {
      buffer += chunk;
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        if (!line.trim()) continue;
        const message = JSON.parse(line);
        const waiter = this.pending.get(message.id);
        if (!waiter || message.event) continue;
        this.pending.delete(message.id);
        if (message.ok) waiter.resolve(message.result);
        else waiter.reject(new Error(`${message.error.code}: ${message.error.message}`));
      }
    });
    const fail = () => {
      for (const waiter of this.pending.values()) waiter.reject(new Error("control connection closed"));
      this.pending.clear();
    };
    socket.on("close", fail);
    socket.on("error", fail);
  }

  request(cmd, args = {}, timeoutMs = 60_000) {
    const id = this.nextId++;
    return withTimeout(
      new Promise((resolve, reject) => {
        this.pending.set(id, { resolve, reject });
        this.socket.write(`${JSON.stringify({ v: 1, id, cmd, args })}\n`);
      }),
      timeoutMs,
      `control ${cmd}`,
    );
  }

  close() {
    this.socket.destroy();
  }
}

// ---- the machine --------------------------------------------------------------------------------

export function machine() {
  const cpus = os.cpus();
  let tango = "?";
  const dpkg = spawnSync("dpkg-query", ["-W", "-f=${Version}", "tango-test"], { encoding: "utf8" });
  if (dpkg.status === 0) tango = dpkg.stdout.trim();
  let distro = "";
  try {
    distro = /PRETTY_NAME="([^"]+)"/.exec(fs.readFileSync("/etc/os-release", "utf8"))?.[1] ?? "";
  } catch {}
  return {
    date: new Date().toISOString().replace("T", " ").slice(0, 16) + " UTC",
    cpu: `${cpus.length} × ${cpus[0]?.model ?? "?"}`.replace(/\s+/g, " "),
    memory: `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`,
    kernel: `${os.type()} ${os.release()}`,
    distro,
    node: process.version,
    tango,
  };
}

export function loadAverage() {
  return os
    .loadavg()
    .map((v) => v.toFixed(2))
    .join(" ");
}

/** Whether something accepts TCP connections on host:port now (at most a second to tell). */
export function portOpen(port, host = "127.0.0.1") {
  return new Promise((resolve) => {
    const socket = net.connect(port, host);
    socket.setTimeout(1000, () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
