#!/usr/bin/env node
// Benchmark: 10 real TangoTest servers over 3 levels. Prints, from one run on this machine:
//  - time from the init's start to every device answering a PyTango ping: starter-init parallel,
//    starter-init sequential (Starter-compatible spacing), and the same 10 forked by hand at once;
//  - crash-to-detected latency: kill -9 of a server → the supervisor's "exited" record.
// Usage: node test/bench/tango-boot.mjs [--runs N] [--kills N]

import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const binary = path.join(root, "dist", "starter-init");
const TANGO_TEST = "/usr/lib/tango/TangoTest";
const PYTHON = "/usr/bin/python3";
const args = process.argv.slice(2);
const runs = Number(args[args.indexOf("--runs") + 1]) || 3;
const kills = Number(args[args.indexOf("--kills") + 1]) || 20;
const LEVELS = [1, 1, 1, 2, 2, 2, 3, 3, 3, 3];
const MEASURE_TIMEOUT_MS = 30_000;

// Everything this script starts dies with it, even on an error or ctrl-c: a TangoTest left holding
// its port makes the next run's server on that port crash at start.
const started = new Set();
function track(child) {
  started.add(child);
  child.once("exit", () => started.delete(child));
  return child;
}
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(130));
process.on("exit", () => {
  for (const child of started) child.kill("SIGKILL");
});

// A pinger that starts before the thing measured (importing PyTango takes ~0.3 s), waits for
// "go <t0>", then pings each device as soon as it is announced ("ping <url>") and prints the time
// since t0 when all have answered. Devices are pinged only once announced ready: TangoTest 9.3
// segfaults when a request arrives while it is still exporting its device (seen in this benchmark).
const PINGER = `
import sys, time, tango
urls = set(sys.argv[1:])
print("ready", flush=True)
t0 = float(sys.stdin.readline().split()[1])
answered = set()
for line in sys.stdin:
    url = line.split()[1]
    for attempt in range(200):
        try:
            proxy = tango.DeviceProxy(url)
            proxy.set_timeout_millis(1000)
            proxy.ping()
            answered.add(url)
            break
        except Exception as error:
            if attempt == 0 or attempt == 199:
                print("ping %s failed: %s" % (url, str(error).splitlines()[2:4]), file=sys.stderr, flush=True)
            time.sleep(0.01)
    if answered == urls:
        break
print("done %.1f" % (time.time() * 1000 - t0), flush=True)
`;

function urlsFor(basePort) {
  return LEVELS.map((_, i) => `tango://127.0.0.1:${basePort + i + 1}/sys/tg_test/${i + 1}#dbase=no`);
}

function writeConfig(dir, basePort, extraSettings = []) {
  const lines = ["settings:", "  searchPath: [/usr/lib/tango]", `  controlSocket: ${path.join(dir, "control.sock")}`, ...extraSettings.map((l) => `  ${l}`), "  defaults:", "    log: {console: false}", "servers:"];
  LEVELS.forEach((level, i) => {
    lines.push(`  - name: TangoTest/b${i + 1}`, `    level: ${level}`, `    args: -nodb -dlist sys/tg_test/${i + 1} -ORBendPoint giop:tcp:127.0.0.1:${basePort + i + 1}`);
  });
  const file = path.join(dir, "config.yaml");
  fs.writeFileSync(file, lines.join("\n") + "\n");
  return file;
}

function startPinger(urls) {
  const pinger = track(spawn(PYTHON, ["-c", PINGER, ...urls], { stdio: ["pipe", "pipe", "inherit"] }));
  const lines = readline.createInterface({ input: pinger.stdout });
  const next = () => new Promise((resolve) => lines.once("line", resolve));
  return { pinger, next };
}

async function measure(urls, startWorkload) {
  const { pinger, next } = startPinger(urls);
  await next(); // "ready": tango imported
  const t0 = Date.now();
  pinger.stdin.write(`go ${t0}\n`);
  const workload = startWorkload((index) => {
    pinger.stdin.write(`ping ${urls[index]}\n`);
  });
  let timer;
  const done = await Promise.race([next(), new Promise((resolve) => (timer = setTimeout(() => resolve(null), MEASURE_TIMEOUT_MS)))]);
  clearTimeout(timer);
  pinger.kill();
  await workload.stop();
  if (done === null) {
    console.error(`  (a run timed out after ${MEASURE_TIMEOUT_MS} ms: a server never became ready; left out)`);
    return null;
  }
  return Number(done.split(" ")[1]);
}

function waitExit(child) {
  return new Promise((resolve) => (child.exitCode !== null ? resolve() : child.once("exit", resolve)));
}

/** The init's JSON log announces each server's readiness. */
function initWorkload(config) {
  return (announce) => {
    const child = track(spawn("unshare", ["--pid", "--fork", "--mount-proc", "--kill-child", binary, "--log-format", "json", "-c", config], { stdio: ["ignore", "ignore", "pipe"] }));
    readline.createInterface({ input: child.stderr }).on("line", (line) => {
      const match = /"server":"TangoTest\/b(\d+)","kind":"ready"/.exec(line);
      if (match) announce(Number(match[1]) - 1);
    });
    return { stop: () => stopInit(child) };
  };
}

/** SIGTERM to the init itself (unshare does not forward signals), then wait for it to end. */
async function stopInit(unshare) {
  const init = fs
    .readdirSync(`/proc/${unshare.pid}/task`)
    .flatMap((tid) => fs.readFileSync(`/proc/${unshare.pid}/task/${tid}/children`, "utf8").trim().split(/\s+/))
    .filter(Boolean)[0];
  if (init) process.kill(Number(init), "SIGTERM");
  else unshare.kill("SIGKILL");
  await waitExit(unshare);
}

/** Each TangoTest announces itself with "Ready to accept request" on stdout. */
function byHandWorkload(basePort) {
  return (announce) => {
    const children = LEVELS.map((_, i) => {
      const child = track(spawn(TANGO_TEST, [`h${i + 1}`, "-nodb", "-dlist", `sys/tg_test/${i + 1}`, "-ORBendPoint", `giop:tcp:127.0.0.1:${basePort + i + 1}`], { stdio: ["ignore", "pipe", "ignore"] }));
      readline.createInterface({ input: child.stdout }).on("line", (line) => {
        if (line.includes("Ready to accept request")) announce(i);
      });
      return child;
    });
    return {
      async stop() {
        for (const child of children) child.kill("SIGKILL");
        await Promise.all(children.map(waitExit));
      },
    };
  };
}

function stats(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { median: at(0.5), min: sorted[0], max: sorted.at(-1), p99: at(0.99) };
}

const fmt = (ms) => `${ms.toFixed(ms < 10 ? 2 : 0)} ms`;

async function crashLatency(dir, basePort) {
  const config = writeConfig(dir, basePort);
  const child = track(spawn("unshare", ["--pid", "--fork", "--mount-proc", "--kill-child", binary, "--log-format", "json", "-c", config], { stdio: ["ignore", "ignore", "pipe"] }));
  const records = [];
  const waiters = [];
  readline.createInterface({ input: child.stderr }).on("line", (line) => {
    if (!line.startsWith("{")) return;
    const record = JSON.parse(line);
    records.push(record);
    for (const waiter of [...waiters]) waiter(record);
  });
  const waitRecord = (predicate, timeoutMs = 30_000) =>
    new Promise((resolve, reject) => {
      const found = records.find(predicate);
      if (found) return resolve(found);
      const timer = setTimeout(() => reject(new Error("timeout")), timeoutMs);
      const waiter = (record) => {
        if (!predicate(record)) return;
        clearTimeout(timer);
        waiters.splice(waiters.indexOf(waiter), 1);
        resolve(record);
      };
      waiters.push(waiter);
    });
  await waitRecord((r) => r.kind === "boot-complete");
  const detected = [];
  const recovered = [];
  for (let k = 0; k < kills; k++) {
    const n = (k % LEVELS.length) + 1;
    const name = `TangoTest/b${n}`;
    const readyCount = records.filter((r) => r.server === name && r.kind === "ready").length;
    const pid = findPid(`sys/tg_test/${n} `);
    const exitsBefore = records.filter((r) => r.server === name && r.kind === "exited").length;
    const t0 = Date.now();
    process.kill(pid, "SIGKILL");
    const exited = await waitRecord((r) => r.server === name && r.kind === "exited" && records.filter((x) => x.server === name && x.kind === "exited").indexOf(r) === exitsBefore);
    detected.push(exited.time - t0);
    const ready = await waitRecord((r) => r.server === name && r.kind === "ready" && records.filter((x) => x.server === name && x.kind === "ready").indexOf(r) === readyCount);
    recovered.push(ready.time - t0);
  }
  await stopInit(child);
  return { detected, recovered };
}

function findPid(needle) {
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").replace(/\0/g, " ");
      if (cmdline.includes(needle) && cmdline.includes("-ORBendPoint")) return Number(entry);
    } catch {}
  }
  throw new Error(`no process for ${needle}`);
}

async function main() {
  if (!fs.existsSync(binary)) throw new Error("dist/starter-init is missing: npm run build");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "starter-bench-"));
  console.log(`# 10 TangoTest servers over 3 levels — ${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} cores, ${os.cpus()[0].model}`);
  console.log(`runs per workload: ${runs}; kills: ${kills}\n`);
  const results = { parallel: [], sequential: [], byHand: [] };
  let port = 25000;
  for (let run = 0; run < runs; run++) {
    for (const [key, make] of [
      ["parallel", (p) => initWorkload(writeConfig(dir, p))],
      ["sequential", (p) => initWorkload(writeConfig(dir, p, ["startMode: sequential"]))],
      ["byHand", (p) => byHandWorkload(p)],
    ]) {
      port += 20;
      const value = await measure(urlsFor(port), make(port));
      if (value !== null) results[key].push(value);
    }
  }
  const hand = stats(results.byHand).median;
  console.log("| boot to all 10 answering ping | median | min | max | vs by hand |");
  console.log("|---|---|---|---|---|");
  for (const [key, label] of [["parallel", "starter-init parallel"], ["sequential", "starter-init sequential (Starter spacing: 500 ms, 1 s/level)"], ["byHand", "forked by hand, all at once"]]) {
    const s = stats(results[key]);
    console.log(`| ${label} | ${fmt(s.median)} | ${fmt(s.min)} | ${fmt(s.max)} | ${(s.median / hand).toFixed(2)}× |`);
  }
  const crash = await crashLatency(dir, (port += 20));
  const d = stats(crash.detected);
  const r = stats(crash.recovered);
  console.log(`\n| kill -9 → (${kills} kills) | median | p99 | min | max |`);
  console.log("|---|---|---|---|---|");
  console.log(`| supervisor records the exit | ${fmt(d.median)} | ${fmt(d.p99)} | ${fmt(d.min)} | ${fmt(d.max)} |`);
  console.log(`| server ready again (backoff 500 ms included) | ${fmt(r.median)} | ${fmt(r.p99)} | ${fmt(r.min)} | ${fmt(r.max)} |`);
  console.log("\n(The real Starter, measured on this kind of machine: 10 servers at one level up after 40.2–40.8 s; a SIGKILL seen after 0.56–1.97 s.)");
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
