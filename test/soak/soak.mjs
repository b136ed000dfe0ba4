#!/usr/bin/env node
// The chaos soak: the built binary as PID 1 of a fresh PID namespace supervising 50 servers of every
// kind (slow to get ready, flapping, TERM-ignoring, log flooders, orphan makers, hooks that hang,
// servers that fork, every readiness probe) while faults are injected at random for a given time:
// kill -9, start/stop/restart/pin/unpin (over the control protocol and with the real CLI), reloads
// that add, remove and change servers, stop-all/start-all, control-socket abuse (malformed, huge,
// slow, many clients), orphan storms, SIGHUP bursts. Invariants are checked all along:
//   - every state and pid the init reports agrees with /proc (a process for each pid it reports; no
//     process group of a server it reports without one), the same disagreement seen twice in a row;
//   - no zombie child of the init lives longer than 100 ms;
//   - the init's fds, its armed timers, RSS and heap show no upward trend;
//   - every control request is answered within 1 s;
//   - no bug in the init's log (an event or effect that threw, an unhandled rejection…);
//   - at the end SIGTERM finishes within shutdownTimeout + 1 s, with exit code 0, and nothing is left.
// It prints the faults injected, the violations (must be 0), RSS and fds at start and end with their
// slope, and the latency of control requests and CLI calls.
//
//   node test/soak/soak.mjs [--minutes 2] [--seed N] [--json]     (npm run soak -- --minutes 60)

import { execFile, spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..", "..");
const BINARY = path.join(ROOT, "dist", "starter-init");
const SERVER = path.join(HERE, "server.sh");

const SHUTDOWN_TIMEOUT_MS = 5000;
const ANSWER_LIMIT_MS = 1000;
const ZOMBIE_LIMIT_MS = 100;
// What must not grow. fds, timers and handles follow the number of running servers (two pipes and a
// timer or two each), so what is judged is what is left besides them: fds other than the servers'
// output pipes, Node timers other than the engine's, handles other than both.
const TREND_LIMITS = { otherFds: 10, otherTimers: 10, otherHandles: 10, rssMiB: 48, heapMiB: 32 };

// ---- arguments, randomness ----------------------------------------------------------------------

function option(name, fallback) {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 && process.argv[index + 1] !== undefined ? process.argv[index + 1] : fallback;
}
const minutes = Number(option("minutes", "2"));
const seed = Number(option("seed", String(Date.now() % 100000)));
const asJson = process.argv.includes("--json");
if (!(minutes > 0)) {
  console.error("soak: --minutes takes a positive number");
  process.exit(2);
}
if (!fs.existsSync(BINARY)) {
  console.error(`soak: ${BINARY} is missing: npm run build first`);
  process.exit(2);
}

/** mulberry32: a run can be repeated with --seed. */
let state = seed;
function random() {
  state = (state + 0x6d2b79f5) | 0;
  let t = Math.imul(state ^ (state >>> 15), 1 | state);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (items) => items[Math.floor(random() * items.length)];
const between = (low, high) => low + Math.floor(random() * (high - low));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- the fleet -----------------------------------------------------------------------------------

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "starter-init-soak-"));
const socketPath = path.join(dir, "control.sock");
const configPath = path.join(dir, "config.yaml");

function server(name, kind, extra = {}) {
  const args = Array.isArray(extra.args) ? extra.args : [];
  delete extra.args;
  return { name, binary: SERVER, args: [kind, ...args], readiness: "log:ready", env: { SOAK_SERVER: name }, ...extra };
}

const hooks = (percent) => ({
  preStart: [SERVER, "hook", String(percent)],
  preStartTimeout: "1500ms",
  postStop: [SERVER, "hook", String(percent)],
  postStopTimeout: "1s",
});
const flapping = { restart: { mode: "on-failure", initialDelay: "200ms", maxDelay: "2s", burst: { count: 100000, window: "1m" }, resetAfter: "1s" } };

function baseFleet() {
  const fleet = [];
  for (let i = 0; i < 10; i++)
    fleet.push(server(`steady-${i}`, "steady", { level: (i % 3) + 1, ...(i >= 3 && i < 6 ? { requires: [`steady-${i - 3}`] } : {}) }));
  for (let i = 0; i < 6; i++) fleet.push(server(`slow-${i}`, "slow", { level: (i % 2) + 1, startTimeout: "10s" }));
  for (let i = 0; i < 5; i++) fleet.push(server(`flapper-${i}`, "flapper", { level: 2, ...flapping }));
  for (let i = 0; i < 4; i++) fleet.push(server(`stubborn-${i}`, "stubborn", { level: 1, stopTimeout: "1s" }));
  for (let i = 0; i < 3; i++)
    fleet.push(server(`flooder-${i}`, "flooder", { level: 2, log: { file: path.join(dir, "logs", `flooder-${i}.log`), maxSize: "1MiB", keep: 2 } }));
  for (let i = 0; i < 3; i++) fleet.push(server(`orphaner-${i}`, "orphaner", { level: 1 }));
  for (let i = 0; i < 5; i++) fleet.push(server(`hanger-${i}`, "steady", { level: 2, ...hooks(30), ...flapping }));
  for (let i = 0; i < 4; i++) fleet.push(server(`forker-${i}`, "forker", { level: 3, stopTimeout: "2s" }));
  for (let i = 0; i < 3; i++) fleet.push(server(`notify-${i}`, "notify", { level: 1, readiness: { notify: 3 } }));
  for (let i = 0; i < 2; i++) {
    const file = path.join(dir, `touched-${i}`);
    fleet.push(server(`file-${i}`, "touch", { level: 2, args: [file], readiness: { file, interval: "100ms" } }));
  }
  for (let i = 0; i < 2; i++) {
    const file = path.join(dir, `probed-${i}`);
    fleet.push(server(`exec-${i}`, "touch", { level: 3, args: [file], readiness: { exec: ["/bin/test", "-e", file], interval: "200ms" } }));
  }
  fleet.push(server("sdnotify-0", "sdnotify", { level: 1, readiness: "sd_notify" }));
  fleet.push(server("crasher-0", "crasher", { level: 1 }));
  fleet.push(server("console-0", "steady", { level: 3, failsafe: "3s", requires: ["slow-0"] }));
  return fleet;
}

const base = baseFleet();
const extras = Array.from({ length: 5 }, (_, i) =>
  server(`extra-${i}`, pick(["steady", "slow", "flapper"]), { level: (i % 3) + 1, startTimeout: "10s", ...flapping }),
);
let generation = 0;
let current = base;

function writeConfig(servers) {
  const document = {
    settings: {
      controlSocket: socketPath,
      shutdownTimeout: `${SHUTDOWN_TIMEOUT_MS}ms`,
      defaults: { log: { console: false }, startTimeout: "5s" },
    },
    servers,
  };
  // JSON is YAML.
  fs.writeFileSync(`${configPath}.tmp`, JSON.stringify(document, null, 1));
  fs.renameSync(`${configPath}.tmp`, configPath);
  current = servers;
}

// ---- the init ------------------------------------------------------------------------------------

writeConfig(base);
const startedAt = Date.now();
const unshare = spawn("unshare", ["--pid", "--fork", "--mount-proc", "--kill-child", BINARY, "--log-format", "json", "-c", configPath], {
  stdio: ["ignore", "pipe", "pipe"],
  env: Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("NODE_") && !key.startsWith("VITEST") && !key.startsWith("STARTER_"))),
});
// An interrupted soak takes its init with it (unshare --kill-child ends the namespace).
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.once(signal, () => {
    unshare.kill("SIGKILL");
    process.exit(130);
  });
}
let exited = null;
const exitedPromise = new Promise((resolve) => unshare.on("close", (code, signal) => resolve((exited = { code, signal, at: Date.now() }))));
unshare.stdout.resume();
const logTail = [];
let logBuffer = "";
const bugs = [];
const BUG_MESSAGES = [
  "handling an event failed",
  "effect failed",
  "an event listener failed",
  "exit handling failed",
  "reload failed",
  "uncaught exception",
  "unhandled promise rejection",
];
unshare.stderr.on("data", (chunk) => {
  logBuffer += chunk;
  let newline;
  while ((newline = logBuffer.indexOf("\n")) >= 0) {
    const line = logBuffer.slice(0, newline);
    logBuffer = logBuffer.slice(newline + 1);
    logTail.push(line);
    if (logTail.length > 400) logTail.shift();
    if (line.startsWith("{")) {
      try {
        const record = JSON.parse(line);
        if (BUG_MESSAGES.some((text) => String(record.msg).includes(text))) bugs.push(line.slice(0, 2000));
      } catch {
        // A partial or foreign line.
      }
    }
  }
});

function childrenOf(pid) {
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

async function findInit() {
  for (let i = 0; i < 500; i++) {
    const [pid] = childrenOf(unshare.pid);
    if (pid) return pid;
    await sleep(10);
  }
  throw new Error("the init did not start");
}
const initPid = await findInit();
/** The namespace's own /proc (pids as the init sees them), through the init's mount namespace. */
const nsProc = `/proc/${initPid}/root/proc`;

// ---- /proc of the namespace ---------------------------------------------------------------------

/** Every process of the namespace: state, ppid, pgid, start time, and the soak server it belongs to (its environment). */
function scan({ withMarker = true } = {}) {
  const processes = new Map();
  let entries;
  try {
    entries = fs.readdirSync(nsProc);
  } catch {
    return processes;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    try {
      // When it was read: `before` the read began, `after` it ended (the state held somewhere between).
      const before = performance.now();
      const stat = fs.readFileSync(`${nsProc}/${pid}/stat`, "utf8");
      const after = performance.now();
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const info = { pid, state: fields[0], ppid: Number(fields[1]), pgid: Number(fields[2]), start: fields[19], marker: null, before, after };
      if (withMarker && info.state !== "Z") {
        try {
          const env = fs.readFileSync(`${nsProc}/${pid}/environ`, "utf8");
          const match = /(?:^|\0)SOAK_SERVER=([^\0]*)/.exec(env);
          info.marker = match ? match[1] : null;
        } catch {
          // Gone, or exec'ing.
        }
      }
      processes.set(pid, info);
    } catch {
      // Ended while we looked.
    }
  }
  return processes;
}

/** The host pid of a pid of the namespace (for kill from outside). */
function hostPidOf(nsPid) {
  const frontier = [initPid];
  while (frontier.length) {
    for (const child of childrenOf(frontier.pop())) {
      try {
        const line = fs
          .readFileSync(`/proc/${child}/status`, "utf8")
          .split("\n")
          .find((l) => l.startsWith("NSpid:"));
        const ids = line.split(/\s+/).slice(1).map(Number);
        if (ids[ids.length - 1] === nsPid) return child;
      } catch {
        // Gone.
      }
      frontier.push(child);
    }
  }
  return null;
}

// ---- the scheduler's share ----------------------------------------------------------------------

/**
 * Milliseconds a thread has spent runnable but waiting for a CPU (/proc/PID/schedstat, run_delay).
 * On a loaded machine (the tests share 2 cores) a process may wait a long time for the scheduler:
 * that is not the init's doing, so what the init is judged on is time less its wait (and, for
 * answers, less the soak's own wait to read them).
 */
function runDelayMs(pid = "self") {
  try {
    return Number(fs.readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[1]) / 1e6;
  } catch {
    return 0;
  }
}

/** run_delay of each thread of a process (a signal may be handled by any of them). */
function threadDelaysMs(pid) {
  const delays = new Map();
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) delays.set(tid, runDelayMs(`${pid}/task/${tid}`));
  } catch {
    // Gone.
  }
  return delays;
}

/** The longest any thread waited for a CPU between two readings of threadDelaysMs. */
function longestWaitMs(from, to) {
  let longest = 0;
  for (const [tid, delay] of to) longest = Math.max(longest, delay - (from.get(tid) ?? delay));
  return longest;
}

// ---- the control protocol ------------------------------------------------------------------------

const latencies = { control: [], controlJudged: [], cli: [] };
const violations = [];
function violation(what) {
  violations.push({ atS: Math.round((Date.now() - startedAt) / 100) / 10, what });
  if (!asJson) console.log(`VIOLATION ${what}`);
}

let nextId = 1;
/** One request on a fresh connection; retried while the init turns connections away as busy. Resolves with the result. */
async function request(cmd, args = {}, { measure = true } = {}) {
  const started = Date.now();
  const waited = runDelayMs(initPid) + runDelayMs();
  for (let attempt = 0; ; attempt++) {
    const answer = await new Promise((resolve) => {
      const socket = net.createConnection(socketPath);
      let data = "";
      const timer = setTimeout(() => {
        socket.destroy();
        resolve({ error: { code: "timeout", message: "no answer within 10 s" } });
      }, 10_000);
      socket.on("connect", () => socket.write(`${JSON.stringify({ v: 1, id: nextId++, cmd, args })}\n`));
      socket.on("data", (chunk) => {
        data += chunk;
        const newline = data.indexOf("\n");
        if (newline < 0) return;
        clearTimeout(timer);
        socket.destroy();
        try {
          resolve(JSON.parse(data.slice(0, newline)));
        } catch {
          resolve({ error: { code: "garbled", message: data.slice(0, 200) } });
        }
      });
      socket.on("error", (err) => {
        clearTimeout(timer);
        resolve({ error: { code: err.code ?? "error", message: err.message } });
      });
    });
    const busy = answer.error?.code === "busy" || answer.error?.code === "EAGAIN";
    if (busy && attempt < 200) {
      await sleep(20);
      continue;
    }
    const ms = Date.now() - started;
    if (measure) {
      const judged = Math.max(0, ms - (runDelayMs(initPid) + runDelayMs() - waited));
      latencies.control.push(ms);
      latencies.controlJudged.push(judged);
      if (judged > ANSWER_LIMIT_MS) violation(`${cmd} answered after ${ms} ms (${Math.round(judged)} ms besides waiting for a CPU)`);
    }
    if (answer.error) throw new Error(`${cmd}: ${answer.error.code}: ${answer.error.message}`);
    return answer.result;
  }
}

function cli(args) {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(BINARY, ["--socket", socketPath, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      const ms = Date.now() - started;
      latencies.cli.push(ms);
      const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
      // 0 done, 1 refused or failed, 3 no such server (a reload removed it): answers. The rest are not.
      if (![0, 1, 3].includes(code)) violation(`starter-init ${args.join(" ")} exited ${code}: ${(stderr || stdout).trim().slice(0, 300)}`);
      resolve(code);
    });
  });
}

// ---- invariants ----------------------------------------------------------------------------------

const NO_PROCESS = new Set(["stopped", "failed", "backoff"]);
let suspects = new Map();

/** Reported state and pids against /proc: a disagreement counts when the next look (400 ms later) still sees it. */
async function checkAgreement() {
  const before = await request("status", {}, { measure: false });
  const processes = scan();
  const after = await request("status", {}, { measure: false });
  const again = new Map(after.servers.map((s) => [s.name, s]));
  const found = new Map();
  for (const s of before.servers) {
    const later = again.get(s.name);
    // Moved on between the two looks: not comparable.
    if (!later || later.state !== s.state || later.pid !== s.pid || later.hookPid !== s.hookPid) continue;
    const expect = (pid, what) => {
      const p = processes.get(pid);
      if (!p) return found.set(`${s.name}:${what}:${pid}:gone`, `${s.name} is ${s.state} with ${what} pid ${pid}, which does not exist`);
      if (p.state === "Z") return found.set(`${s.name}:${what}:${pid}:zombie`, `${s.name} is ${s.state} with ${what} pid ${pid}, a zombie`);
      if (p.marker !== null && p.marker !== s.name) found.set(`${s.name}:${what}:${pid}:other`, `${s.name} reports pid ${pid}, which is ${p.marker}'s`);
    };
    if (s.pid !== null) expect(s.pid, "its");
    if (s.hookPid !== null && s.hookPid !== undefined) expect(s.hookPid, "hook");
    if (NO_PROCESS.has(s.state)) {
      // A process group of its own (the server, or a hook) still alive while it reports none.
      for (const p of processes.values()) {
        if (p.marker === s.name && p.pgid === p.pid && p.state !== "Z")
          found.set(`${s.name}:leader:${p.pid}`, `${s.name} is ${s.state} but its process group ${p.pid} lives`);
      }
    }
  }
  const confirmed = [...found].filter(([key]) => suspects.has(key));
  for (const [, what] of confirmed) violation(what);
  // Suspects are looked at again soon; a confirmed one is not reported twice.
  suspects = new Map([...found].filter(([key]) => !suspects.has(key)));
  return suspects.size;
}

const zombies = new Map();
let zombieSamples = 0;
let oldestZombieMs = 0;
let oldestZombieJudgedMs = 0;
/** Zombies kept past the limit while the init was copying itself in a fork (see inFork). */
const heldByFork = { count: 0, longestMs: 0 };
/** Times at which the init was seen inside a fork. */
const forkSeen = [];
/**
 * Stretches during which the soak itself did not look (it waited for a CPU longer than WATCH_GAP_MS
 * between two looks): a fork then may go unseen, so a zombie kept over such a stretch is neither
 * blamed on the init nor cleared; it is counted apart.
 */
const WATCH_GAP_MS = 50;
const watchGaps = [];
let lastLook = null;
let watchGapCount = 0;
const unwatched = { count: 0, longestMs: 0 };

/**
 * Whether the init's main thread is inside a spawn's clone window: the addon blocks every signal
 * around it (the child must not run the init's handlers). SIGCHLD no longer waits for that thread
 * (the reaper has a thread of its own), so a zombie kept then is still counted apart, but none is
 * expected.
 */
function inFork() {
  try {
    const line = fs
      .readFileSync(`/proc/${initPid}/task/${initPid}/status`, "utf8")
      .split("\n")
      .find((l) => l.startsWith("SigBlk:"));
    const blocked = BigInt(`0x${line.split(/\s+/)[1]}`);
    // SIGCHLD (17) and SIGTERM (15) blocked together: only the fork window does that.
    return (blocked & (1n << 16n)) !== 0n && (blocked & (1n << 14n)) !== 0n;
  } catch {
    return false;
  }
}

function sampleZombies() {
  zombieSamples++;
  const initWaited = threadDelaysMs(initPid);
  const look = performance.now();
  if (lastLook !== null && look - lastLook > WATCH_GAP_MS) {
    watchGaps.push([lastLook, look]);
    watchGapCount++;
    if (watchGaps.length > 200) watchGaps.shift();
  }
  lastLook = look;
  if (inFork()) {
    forkSeen.push(look);
    if (forkSeen.length > 200) forkSeen.shift();
  }
  const seen = new Set();
  for (const p of scan({ withMarker: false }).values()) {
    if (p.state !== "Z" || p.ppid !== 1) continue;
    const key = `${p.pid}:${p.start}`;
    seen.add(key);
    const first = zombies.get(key);
    if (first === undefined) zombies.set(key, { at: p.after, initWaited, reported: false });
    else {
      // A zombie at least from the end of the first read to the start of this one (the soak's own
      // waits for a CPU while it reads do not count).
      const age = p.before - first.at;
      // The init reaps in its SIGCHLD handler, as soon as the thread the signal went to runs: its
      // wait for a CPU meanwhile is the scheduler's, not the init's.
      const judged = age - longestWaitMs(first.initWaited, initWaited);
      oldestZombieMs = Math.max(oldestZombieMs, age);
      if (judged > ZOMBIE_LIMIT_MS && !first.reported && forkSeen.some((t) => t >= first.at - ZOMBIE_LIMIT_MS && t <= p.before)) {
        first.reported = true;
        heldByFork.count++;
        heldByFork.longestMs = Math.max(heldByFork.longestMs, Math.round(judged));
        continue;
      }
      if (judged > ZOMBIE_LIMIT_MS && !first.reported && watchGaps.some(([from, to]) => to >= first.at && from <= p.before)) {
        first.reported = true;
        unwatched.count++;
        unwatched.longestMs = Math.max(unwatched.longestMs, Math.round(judged));
        continue;
      }
      if (!first.reported) oldestZombieJudgedMs = Math.max(oldestZombieJudgedMs, judged);
      if (judged > ZOMBIE_LIMIT_MS && !first.reported) {
        first.reported = true;
        violation(
          `zombie pid ${p.pid} (child of the init) still unreaped after ${Math.round(age)} ms (${Math.round(judged)} ms besides the init waiting for a CPU)`,
        );
      }
    }
  }
  for (const key of zombies.keys()) if (!seen.has(key)) zombies.delete(key);
}

const samples = [];
async function sampleResources() {
  let fds;
  try {
    fds = fs.readdirSync(`/proc/${initPid}/fd`).length;
  } catch {
    return;
  }
  const status = await request("status", {}, { measure: false });
  const resources = status.init.resources;
  samples.push({
    t: (Date.now() - startedAt) / 1000,
    fds,
    timers: resources.engine.timers,
    nodeTimers: resources.active.Timeout ?? 0,
    rssMiB: resources.rssBytes / 1048576,
    heapMiB: resources.heapUsedBytes / 1048576,
    heapTotalMiB: resources.heapTotalBytes / 1048576,
    externalMiB: resources.externalBytes / 1048576,
    handles: Object.values(resources.active).reduce((a, b) => a + b, 0),
    otherFds: fds - resources.engine.outputPipes,
    otherTimers: (resources.active.Timeout ?? 0) - resources.engine.timers,
    otherHandles: Object.values(resources.active).reduce((a, b) => a + b, 0) - resources.engine.outputPipes - (resources.active.Timeout ?? 0),
    pipes: resources.engine.outputPipes,
    running: status.servers.filter((s) => s.pid !== null).length,
  });
}

// ---- faults --------------------------------------------------------------------------------------

const faults = {};
const count = (kind) => (faults[kind] = (faults[kind] ?? 0) + 1);
const names = () => current.map((s) => s.name);

async function killNine() {
  const status = await request("status");
  const victim = pick(status.servers.filter((s) => s.pid !== null));
  if (!victim) return;
  const host = hostPidOf(victim.pid);
  if (host === null) return;
  try {
    process.kill(host, "SIGKILL");
    count("kill -9");
  } catch {
    // Gone already.
  }
}

async function controlRequest() {
  const name = pick(names());
  const kind = pick(["start", "stop", "restart", "kill", "pin", "unpin", "pin"]);
  const viaCli = random() < 0.2;
  count(`${kind}${viaCli ? " (cli)" : ""}`);
  if (viaCli) {
    if (kind === "pin") await cli(["pin", name, random() < 0.5 ? "--started" : "--stopped"]);
    else if (kind === "unpin") await cli(["unpin", name]);
    else await cli([kind, name, "--no-wait"]);
    return;
  }
  try {
    if (kind === "pin") await request("pin", { server: name, pin: random() < 0.5 ? "started" : "stopped" });
    else if (kind === "unpin") await request("unpin", { server: name });
    else await request(kind, { servers: [name], wait: false });
  } catch (err) {
    // A server a reload just removed is not found: an answer all the same.
    if (!/not-found|refused/.test(err.message)) violation(`${kind} ${name}: ${err.message}`);
  }
}

async function bulk() {
  const level = random() < 0.5 ? undefined : between(1, 4);
  const kind = pick(["start-all", "stop-all", "start-all", "start-all"]);
  count(kind);
  await request(kind, { ...(level === undefined ? {} : { level }), wait: false });
}

async function reload() {
  generation++;
  const kept = base.filter(() => random() < 0.9);
  // Servers others require stay: removing one is a config error (the reload would be refused).
  for (const s of base) if (!kept.includes(s) && base.some((o) => kept.includes(o) && o.requires?.includes(s.name))) kept.push(s);
  const changed = kept.map((s) => (random() < 0.1 ? { ...s, env: { ...s.env, GENERATION: String(generation) } } : s));
  const added = extras.filter(() => random() < 0.5);
  writeConfig([...changed, ...added]);
  if (random() < 0.5) {
    count("reload (SIGHUP)");
    process.kill(initPid, "SIGHUP");
  } else {
    count("reload (control)");
    const result = await request("reload", { wait: false });
    if (!result || result.dryRun !== false) violation(`reload answered ${JSON.stringify(result).slice(0, 200)}`);
  }
}

/** What an operator does after a while: unpin everything, start everything (faults keep most servers down otherwise). */
async function heal() {
  count("heal (unpin all, start-all)");
  const status = await request("status");
  for (const s of status.servers.filter((server) => server.pin !== null)) {
    try {
      await request("unpin", { server: s.name });
    } catch (err) {
      // Status still lists a server a reload is removing (until it has stopped); requests no longer find it.
      if (!/not-found/.test(err.message)) throw err;
    }
  }
  await request("start-all", { wait: false });
}

async function hupBurst() {
  count("SIGHUP burst");
  for (let i = 0; i < 20; i++) process.kill(initPid, "SIGHUP");
}

async function orphanStorm() {
  // A reload may have removed every orphaner for now: then "no server matches" is the answer.
  const status = await request("status", { servers: ["orphaner-*"] }).catch((err) => {
    if (/not-found/.test(err.message)) return { servers: [] };
    throw err;
  });
  const orphaner = pick(status.servers.filter((s) => s.pid !== null));
  if (!orphaner) return;
  const host = hostPidOf(orphaner.pid);
  if (host === null) return;
  try {
    process.kill(host, "SIGUSR1");
    count("orphan storm");
  } catch {
    // Gone.
  }
}

/** Raw connections: malformed lines, a huge one, a slow writer, many at once. Then the init must still answer at once. */
async function abuse() {
  const kind = pick(["malformed", "huge", "slow", "many", "silent"]);
  count(`socket abuse: ${kind}`);
  const connect = () =>
    new Promise((resolve) => {
      const socket = net.createConnection(socketPath);
      socket.on("error", () => resolve(null));
      socket.on("connect", () => resolve(socket));
      socket.resume();
    });
  switch (kind) {
    case "malformed": {
      const socket = await connect();
      socket?.write('not json\n{}\n[1,2]\n{"v":1,"id":1,"cmd":"nope"}\n{"v":99,"id":2,"cmd":"status"}\n\u0000\u0001\n');
      await sleep(200);
      socket?.destroy();
      break;
    }
    case "huge": {
      const socket = await connect();
      socket?.write(Buffer.alloc(2 * 1024 * 1024, 0x61));
      await sleep(300);
      socket?.destroy();
      break;
    }
    case "slow": {
      const socket = await connect();
      const line = `${JSON.stringify({ v: 1, id: 7, cmd: "status", args: {} })}\n`;
      for (const char of line) {
        if (!socket || socket.destroyed) break;
        socket.write(char);
        await sleep(40);
      }
      await sleep(200);
      socket?.destroy();
      break;
    }
    case "many": {
      const sockets = await Promise.all(Array.from({ length: 150 }, connect));
      for (const socket of sockets) socket?.write(`${JSON.stringify({ v: 1, id: 1, cmd: "status", args: {} })}\n`);
      await sleep(300);
      for (const socket of sockets) socket?.destroy();
      break;
    }
    case "silent": {
      const socket = await connect();
      await sleep(1000);
      socket?.destroy();
      break;
    }
  }
  await request("hello");
}

const FAULTS = [
  [killNine, 5],
  [controlRequest, 8],
  [bulk, 1],
  [reload, 2],
  [hupBurst, 0.5],
  [orphanStorm, 1],
  [abuse, 2],
  [heal, 0.5],
];
const weightTotal = FAULTS.reduce((sum, [, weight]) => sum + weight, 0);
function pickFault() {
  let r = random() * weightTotal;
  for (const [fault, weight] of FAULTS) if ((r -= weight) < 0) return fault;
  return FAULTS[0][0];
}

// ---- the run -------------------------------------------------------------------------------------

function log(text) {
  if (!asJson) console.log(`[${((Date.now() - startedAt) / 1000).toFixed(0).padStart(5)} s] ${text}`);
}

async function waitForAnswer() {
  for (let i = 0; i < 600; i++) {
    try {
      return await request("hello", {}, { measure: false });
    } catch {
      await sleep(50);
    }
  }
  throw new Error("the init's control socket never answered");
}

let running = true;
const loops = [];
function every(ms, task) {
  loops.push(
    (async () => {
      while (running) {
        const started = Date.now();
        try {
          await task();
        } catch (err) {
          if (running) violation(`${task.name}: ${err.message}`);
        }
        await sleep(Math.max(0, ms - (Date.now() - started)));
      }
    })(),
  );
}

log(`soak: ${minutes} min, seed ${seed}, ${base.length} servers, init pid ${initPid} (host), files in ${dir}`);
await waitForAnswer();
// Let the boot run (some servers are slow, one fails for good) before faults begin.
await sleep(8000);
await sampleResources();
const endAt = Date.now() + minutes * 60_000;

every(25, async () => sampleZombies());
every(2000, checkAgreement);
every(5000, sampleResources);
every(0, async () => {
  await sleep(between(100, 400));
  if (Date.now() < endAt - 5000) await pickFault()();
});
let lastReport = Date.now();
while (Date.now() < endAt) {
  await sleep(1000);
  if (exited) {
    violation(`the init exited during the run: ${JSON.stringify(exited)}`);
    break;
  }
  if (Date.now() - lastReport >= 60_000) {
    lastReport = Date.now();
    const last = samples[samples.length - 1];
    log(
      `faults ${Object.values(faults).reduce((a, b) => a + b, 0)}, violations ${violations.length}, fds ${last?.fds}, rss ${last?.rssMiB.toFixed(1)} MiB, running ${last?.running}`,
    );
  }
}
running = false;
await Promise.all(loops);

// Quiet: the last faults settle; the same checks once more.
await sleep(3000);
await checkAgreement();
await sleep(500);
await checkAgreement();
await sampleResources();

// ---- the end: SIGTERM -----------------------------------------------------------------------------

const beforeStop = await request("status", {}, { measure: false });
const sigtermAt = Date.now();
process.kill(initPid, "SIGTERM");
const timeout = setTimeout(() => unshare.kill("SIGKILL"), SHUTDOWN_TIMEOUT_MS + 20_000);
await exitedPromise;
clearTimeout(timeout);
const shutdownMs = exited.at - sigtermAt;
if (exited.code !== 0) violation(`the init exited with ${JSON.stringify(exited)} after SIGTERM`);
if (shutdownMs > SHUTDOWN_TIMEOUT_MS + 1000) violation(`SIGTERM took ${shutdownMs} ms (shutdownTimeout ${SHUTDOWN_TIMEOUT_MS} ms + 1 s)`);
if (!logTail.some((line) => line.includes("every server has stopped"))) violation("the init's log does not say that every server stopped");
// Nothing of the soak is left anywhere on the machine.
const leftover = fs
  .readdirSync("/proc")
  .filter((entry) => /^\d+$/.test(entry))
  .filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/environ`, "utf8").includes(`SOAK_SERVER=`) && fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(SERVER);
    } catch {
      return false;
    }
  });
if (leftover.length) violation(`processes of the soak left after the init exited: ${leftover.join(", ")}`);
for (const bug of bugs) violation(`the init logged a bug: ${bug}`);

// ---- figures -------------------------------------------------------------------------------------

function percentile(values, p) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
function median(values) {
  return percentile(values, 50);
}
/** Least-squares slope of key over time, per hour. */
function slopePerHour(points, key) {
  if (points.length < 2) return 0;
  const n = points.length;
  const mt = points.reduce((s, p) => s + p.t, 0) / n;
  const mv = points.reduce((s, p) => s + p[key], 0) / n;
  const num = points.reduce((s, p) => s + (p.t - mt) * (p[key] - mv), 0);
  const den = points.reduce((s, p) => s + (p.t - mt) ** 2, 0);
  return den === 0 ? 0 : (num / den) * 3600;
}
// The trend is judged after a warm-up (the first quarter, at least a minute): median of the last third
// against the median of the first third of what follows.
const warm = samples.filter((s) => s.t >= Math.max(60, (minutes * 60) / 4));
const third = Math.max(1, Math.floor(warm.length / 3));
const trend = {};
for (const key of Object.keys(TREND_LIMITS)) {
  const growth = warm.length >= 3 ? median(warm.slice(-third).map((s) => s[key])) - median(warm.slice(0, third).map((s) => s[key])) : 0;
  trend[key] = { growth: Math.round(growth * 10) / 10, slopePerHour: Math.round(slopePerHour(warm, key) * 10) / 10 };
  if (growth > TREND_LIMITS[key]) violation(`${key} grew by ${growth.toFixed(1)} over the run (limit ${TREND_LIMITS[key]})`);
}

const first = samples[0];
const last = samples[samples.length - 1];
if (process.argv.includes("--samples")) fs.writeFileSync(option("samples", "soak-samples.json"), JSON.stringify(samples));
const summary = {
  minutes,
  seed,
  servers: base.length,
  faults: Object.values(faults).reduce((a, b) => a + b, 0),
  faultsByKind: faults,
  violations: violations.length,
  violationList: violations.slice(0, 50),
  rssMiB: { start: Math.round(first.rssMiB * 10) / 10, end: Math.round(last.rssMiB * 10) / 10, slopePerHour: trend.rssMiB.slopePerHour },
  heapMiB: { start: Math.round(first.heapMiB * 10) / 10, end: Math.round(last.heapMiB * 10) / 10, slopePerHour: trend.heapMiB.slopePerHour },
  fds: { start: first.fds, end: last.fds, slopePerHour: Math.round(slopePerHour(warm, "fds") * 10) / 10 },
  timers: { start: first.timers, end: last.timers, slopePerHour: Math.round(slopePerHour(warm, "timers") * 10) / 10 },
  trend,
  controlRequests: latencies.control.length,
  controlLatencyMs: { p50: median(latencies.control), p99: percentile(latencies.control, 99), max: percentile(latencies.control, 100) },
  controlLatencyJudgedMs: { p99: Math.round(percentile(latencies.controlJudged, 99)), max: Math.round(percentile(latencies.controlJudged, 100)) },
  cliCalls: latencies.cli.length,
  cliLatencyMs: { p50: median(latencies.cli), p99: percentile(latencies.cli, 99), max: percentile(latencies.cli, 100) },
  zombieSamples,
  oldestZombieMs: Math.round(oldestZombieMs),
  oldestZombieJudgedMs: Math.round(oldestZombieJudgedMs),
  zombiesHeldByFork: heldByFork,
  zombiesUnwatched: unwatched,
  watchGaps: watchGapCount,
  restartsAtEnd: beforeStop.servers.reduce((sum, s) => sum + s.restarts, 0),
  shutdownMs,
  loadAverage: os.loadavg().map((l) => Math.round(l * 10) / 10),
};
if (asJson) {
  console.log(JSON.stringify(summary));
} else {
  console.log("");
  console.log(`soak: ${minutes} min (seed ${seed}) with ${summary.servers} servers, load average ${summary.loadAverage.join(" ")}`);
  console.log(`faults injected: ${summary.faults}`);
  for (const [kind, n] of Object.entries(faults).sort()) console.log(`  ${kind.padEnd(24)} ${n}`);
  console.log(`invariant violations: ${summary.violations}`);
  for (const v of summary.violationList) console.log(`  at ${v.atS} s: ${v.what}`);
  console.log(
    `RSS: ${summary.rssMiB.start} MiB at start, ${summary.rssMiB.end} MiB at end, slope ${summary.rssMiB.slopePerHour} MiB/h (heap ${summary.heapMiB.start} → ${summary.heapMiB.end} MiB)`,
  );
  console.log(
    `fds: ${summary.fds.start} at start, ${summary.fds.end} at end, slope ${summary.fds.slopePerHour}/h; armed timers ${summary.timers.start} → ${summary.timers.end}`,
  );
  console.log(
    `besides the servers' pipes and timers (judged): ${Object.entries(trend)
      .map(([key, t]) => `${key} ${t.growth >= 0 ? "+" : ""}${t.growth} (${t.slopePerHour}/h)`)
      .join(", ")}`,
  );
  console.log(
    `control requests: ${summary.controlRequests}, p50 ${summary.controlLatencyMs.p50} ms, p99 ${summary.controlLatencyMs.p99} ms, max ${summary.controlLatencyMs.max} ms` +
      ` (besides waiting for a CPU: p99 ${summary.controlLatencyJudgedMs.p99} ms, max ${summary.controlLatencyJudgedMs.max} ms)`,
  );
  console.log(
    `CLI calls (the binary as a client, its start included): ${summary.cliCalls}, p50 ${summary.cliLatencyMs.p50} ms, p99 ${summary.cliLatencyMs.p99} ms`,
  );
  console.log(
    `zombies: ${zombieSamples} samples, oldest seen ${summary.oldestZombieMs} ms (${summary.oldestZombieJudgedMs} ms besides the init waiting for a CPU or forking); restarts ${summary.restartsAtEnd}; SIGTERM → exit ${shutdownMs} ms`,
  );
  console.log(
    `zombies held past ${ZOMBIE_LIMIT_MS} ms while the init's main thread was in a spawn's clone window: ${heldByFork.count}, longest ${heldByFork.longestMs} ms`,
  );
  console.log(
    `zombies past ${ZOMBIE_LIMIT_MS} ms while the soak itself could not look (a gap over ${WATCH_GAP_MS} ms between its looks): ${unwatched.count}, longest ${unwatched.longestMs} ms`,
  );
}
if (violations.length === 0) fs.rmSync(dir, { recursive: true, force: true });
else if (!asJson) console.log(`the init's last log lines are in ${path.join(dir, "init.log")}`);
if (violations.length) fs.writeFileSync(path.join(dir, "init.log"), logTail.join("\n"));
process.exit(violations.length === 0 ? 0 : 1);
