// Real Tango servers and a real Tango client: TangoTest sets (config files, forked by hand), the
// PyTango agent (tango_agent.py) that pings devices and drives the Starter and the database.

import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { BENCH_DIR, PYTHON, TANGO_DIR, TANGO_TEST, cleanEnv, now, portOpen, spawnTracked, waitExit, withTimeout } from "./common.mjs";

const AGENT = path.join(BENCH_DIR, "lib", "tango_agent.py");

/** A long-lived PyTango client (one request at a time, answers in order). */
export class TangoAgent {
  static async start(env = {}) {
    const child = spawnTracked(PYTHON, ["-u", AGENT], { stdio: ["pipe", "pipe", "pipe"], env: cleanEnv(env) });
    const agent = new TangoAgent(child);
    await withTimeout(agent.ready, 30_000, "the PyTango agent to start");
    return agent;
  }

  constructor(child) {
    this.child = child;
    this.nextId = 1;
    this.pending = new Map();
    this.stderr = "";
    child.stderr.on("data", (chunk) => {
      if (this.stderr.length < 1 << 16) this.stderr += chunk;
    });
    let readyResolve;
    this.ready = new Promise((resolve) => (readyResolve = resolve));
    readline.createInterface({ input: child.stdout }).on("line", (line) => {
      let message;
      try {
        message = JSON.parse(line);
      } catch {
        return;
      }
      if (message.ready) return readyResolve();
      const waiter = this.pending.get(message.id);
      if (!waiter) return;
      this.pending.delete(message.id);
      waiter(message);
    });
    child.once("exit", (code, signal) => {
      for (const waiter of this.pending.values()) waiter({ ok: false, error: `agent ended (${code ?? signal}): ${this.stderr.slice(-500)}` });
      this.pending.clear();
    });
  }

  /** Sends a request; resolves with the answer (ok false on failure, never rejects). */
  request(op, args = {}, timeoutMs = 120_000) {
    const id = this.nextId++;
    const answer = new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.child.stdin.write(`${JSON.stringify({ id, op, ...args })}\n`);
    });
    return withTimeout(answer, timeoutMs, `PyTango ${op}`).catch((err) => ({ ok: false, error: err.message }));
  }

  /** Throws when the answer is not ok. */
  async must(op, args = {}, timeoutMs) {
    const answer = await this.request(op, args, timeoutMs);
    if (!answer.ok) throw new Error(`PyTango ${op} ${JSON.stringify(args).slice(0, 200)}: ${answer.error}`);
    return answer;
  }

  ping(url, options = {}) {
    return this.request("ping", { url, ...options });
  }

  async close() {
    this.child.stdin.end();
    if (!(await waitExit(this.child, 3000))) this.child.kill("SIGKILL");
  }
}

// ---- ports --------------------------------------------------------------------------------------

// Below the ephemeral range (32768-60999 here): a port there may be the local end of some outgoing
// connection at the moment a server wants to listen on it. Above the integration tests' ports.
const PORT_LOW = 28000;
const PORT_HIGH = 32700;
let nextBase = PORT_LOW + (process.pid % 20) * 100;

/** A base port such that base+1 … base+n accept nothing now (other test runs share this machine). */
export async function portBlock(n) {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = nextBase;
    nextBase += Math.ceil((n + 5) / 50) * 50;
    if (nextBase + n > PORT_HIGH) nextBase = PORT_LOW;
    const taken = await Promise.all(Array.from({ length: n }, (_, i) => portOpen(base + i + 1)));
    if (!taken.some(Boolean)) return base;
  }
  throw new Error(`no free block of ports in ${PORT_LOW}-${PORT_HIGH}`);
}

// ---- TangoTest sets -----------------------------------------------------------------------------

/** The instance name of server i (0-based) of a set: b01, b02, … */
export const instance = (prefix, i) => `${prefix}${String(i + 1).padStart(2, "0")}`;

/**
 * A set of n no-database TangoTest servers on 127.0.0.1:base+1…base+n. levels[i] is server i's level.
 * Each is pinged through its admin device dserver/TangoTest/<instance> (what the Starter pings).
 */
export function tangoSet({ levels, base, prefix = "b" }) {
  return levels.map((level, i) => {
    const inst = instance(prefix, i);
    const port = base + i + 1;
    return {
      name: `TangoTest/${inst}`,
      instance: inst,
      level,
      port,
      args: ["-nodb", "-dlist", `sys/tg_test/${inst}`, "-ORBendPoint", `giop:tcp:127.0.0.1:${port}`],
      url: `tango://127.0.0.1:${port}/dserver/TangoTest/${inst}#dbase=no`,
    };
  });
}

/** Writes a starter-init config for a set; returns its path. */
export function writeInitConfig(dir, set, { settings = [], defaults = [], serverExtra = [] } = {}) {
  fs.mkdirSync(dir, { recursive: true });
  const lines = [
    "settings:",
    `  searchPath: [${TANGO_DIR}]`,
    `  controlSocket: ${path.join(dir, "control.sock")}`,
    ...settings.map((l) => `  ${l}`),
    "  defaults:",
    "    log: {console: false}",
    ...defaults.map((l) => `    ${l}`),
    "servers:",
  ];
  for (const server of set) {
    lines.push(`  - name: ${server.name}`, `    level: ${server.level}`, `    args: ${server.args.join(" ")}`);
    for (const extra of serverExtra) lines.push(`    ${extra}`);
  }
  const file = path.join(dir, "config.yaml");
  fs.writeFileSync(file, `${lines.join("\n")}\n`);
  return file;
}

/**
 * Forks every server of the set at once, as a person would from a shell. announce(i, t) is called
 * when server i prints "Ready to accept request".
 */
export function forkByHand(set, announce) {
  const children = set.map((server, i) => {
    const forkAt = now();
    const child = spawnTracked(TANGO_TEST, [server.instance, ...server.args], { stdio: ["ignore", "pipe", "ignore"] });
    child.forkAt = forkAt;
    readline.createInterface({ input: child.stdout }).on("line", (line) => {
      if (line.includes("Ready to accept request")) announce(i, now());
    });
    child.stdout.on("error", () => {});
    return child;
  });
  return {
    children,
    async kill() {
      for (const child of children) child.kill("SIGKILL");
      await Promise.all(children.map((c) => waitExit(c, 5000)));
    },
  };
}

/**
 * Pings each server of the set once it is announced (announce(i) may be called more than once:
 * only the first counts). Resolves with { doneAt, pongs: [t per server] } when every server answered.
 */
export function pingWhenAnnounced(agent, set, timeoutMs) {
  const pongs = new Array(set.length).fill(NaN);
  const asked = new Set();
  let answered = 0;
  let resolveAll;
  let rejectAll;
  const all = new Promise((resolve, reject) => {
    resolveAll = resolve;
    rejectAll = reject;
  });
  const announce = (i) => {
    if (asked.has(i)) return;
    asked.add(i);
    agent.ping(set[i].url).then((answer) => {
      if (!answer.ok) return rejectAll(new Error(`${set[i].name} did not answer ping: ${answer.error}`));
      pongs[i] = answer.t;
      if (++answered === set.length) resolveAll({ doneAt: Math.max(...pongs), pongs });
    });
  };
  return { announce, done: withTimeout(all, timeoutMs, `every server of ${set.length} answering ping`) };
}
