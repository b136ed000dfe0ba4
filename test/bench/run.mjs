#!/usr/bin/env node
// `npm run bench`: starter-init side by side with its anchors — the real Tango Starter, tini,
// dumb-init and forking by hand — on this machine, in one run. Prints a markdown table (median, min,
// max, ours ÷ anchor) and writes it with an SVG chart of the boot timelines to test/bench/results/.
//
//   node test/bench/run.mjs [--quick] [--only LIST] [--skip LIST] [--out DIR] [--no-write] [--json]
//
//   --quick      fewer runs and kills, the Starter only for 10 servers (≈ 4 min instead of ≈ 15)
//   --only LIST  comma-separated workloads: overhead,reaping,scale,boot,crash,stop,vm,starter,wire,device,swarm,sockets,reexec
//   --skip LIST  the same, left out
//   --out DIR    where results.md and boot-timelines.svg go (default test/bench/results)
//   --no-write   print only
//   --json       also write results.json (every measured value) next to results.md
//   --tango-host HOST:PORT   the Tango database for the Starter workloads (default 127.0.0.1:10000,
//                else a private one started by the bench when MariaDB and tango-db are installed)
//   --baseline REF|FILE      also measure starter-init as built from git revision REF (built once
//                into build/bench-baseline/), or the binary FILE, side by side: the "before" rows
//
// Prerequisites (test/prereqs.sh bench installs them): util-linux (unshare), tini, dumb-init,
// tango-test, python3-tango, qemu-system-x86, qemu-user, erofs-utils, cpio, busybox-static; for the
// Starter workloads also tango-starter (installed here when missing) and a Tango database (see
// README-section.md); for the swarm workload a Docker engine, mariadb-server and tango-db (all in the
// bench profile); for the sockets workload gunicorn.

import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { BENCH_DIR, BINARY, installCleanup, killTracked, loadAverage, machine, now, onAbort, pidsWhere } from "./lib/common.mjs";
import { Results, Timelines, timelineSvg } from "./lib/report.mjs";
import { TangoAgent } from "./lib/tango.mjs";
import { baselineBinary } from "./lib/baseline.mjs";

const WORKLOADS = ["overhead", "reaping", "scale", "boot", "crash", "stop", "vm", "starter", "wire", "device", "swarm", "sockets", "reexec"];

function parseArgs(argv) {
  const options = {
    quick: false,
    only: null,
    skip: new Set(),
    out: path.join(BENCH_DIR, "results"),
    write: true,
    json: false,
    tangoHost: null,
    baseline: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const list = () =>
      new Set(
        argv[++i]
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean),
      );
    if (arg === "--quick") options.quick = true;
    else if (arg === "--only") options.only = list();
    else if (arg === "--skip") options.skip = list();
    else if (arg === "--out") options.out = path.resolve(argv[++i]);
    else if (arg === "--no-write") options.write = false;
    else if (arg === "--json") options.json = true;
    else if (arg === "--tango-host") options.tangoHost = argv[++i];
    else if (arg === "--baseline") options.baseline = argv[++i];
    else if (arg === "-h" || arg === "--help") {
      console.log(
        fs
          .readFileSync(new URL(import.meta.url), "utf8")
          .split("\n")
          .slice(1, 23)
          .map((l) => l.replace(/^\/\/ ?/, ""))
          .join("\n"),
      );
      process.exit(0);
    } else {
      console.error(`bench: unknown argument ${arg} (--help)`);
      process.exit(2);
    }
  }
  for (const name of [...(options.only ?? []), ...options.skip]) {
    if (!WORKLOADS.includes(name)) {
      console.error(`bench: unknown workload ${name} (${WORKLOADS.join(", ")})`);
      process.exit(2);
    }
  }
  return options;
}

const RUNS = {
  full: {
    boot: 5,
    bootSequential: 3,
    kills: 60,
    stop: 3,
    stopOneByOne: 2,
    overhead: 20,
    rss: 3,
    reaping: 3,
    orphans: 10_000,
    scale: 3,
    scaleSizes: [10, 100, 1000],
    statusRequests: 30,
    vm: 3,
    starterBoot: { "10x1": 3, "30x1": 1, "10x5": 2 },
    starterKills: 10,
    wirePings: 2000,
    wireStatusMs: 10_000,
    wireReads: 30,
    wirePlan: 5,
    deviceKills: 30,
    swarm: 3,
    sockets: 3,
  },
  quick: {
    boot: 2,
    bootSequential: 1,
    kills: 20,
    stop: 1,
    stopOneByOne: 1,
    overhead: 5,
    rss: 1,
    reaping: 1,
    orphans: 10_000,
    scale: 1,
    scaleSizes: [10, 100, 1000],
    statusRequests: 10,
    vm: 1,
    starterBoot: { "10x1": 2, "30x1": 0, "10x5": 0 },
    starterKills: 3,
    wirePings: 300,
    wireStatusMs: 4000,
    wireReads: 10,
    wirePlan: 2,
    deviceKills: 10,
    swarm: 1,
    sockets: 1,
  },
};

/**
 * The bench runs in a private mount namespace whose /etc/hosts also names every address of this
 * machine. TangoTest looks up the name of each local address when it starts; on a machine whose DNS
 * server drops one of 30 simultaneous queries now and then, that cost 5 s (the resolver's timeout)
 * to whichever contender it hit. Every contender sees the same file; nothing outside changes.
 */
function reexecWithPrivateHosts() {
  const addresses = spawnSync("ip", ["-o", "addr", "show"], { encoding: "utf8" }).stdout ?? "";
  const ips = [...addresses.matchAll(/\sinet6?\s+([0-9a-f.:]+)\//g)].map((m) => m[1]).filter((ip) => ip !== "127.0.0.1" && ip !== "::1");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "starter-bench-hosts-"));
  const hosts = path.join(dir, "hosts");
  const name = os.hostname();
  fs.writeFileSync(
    hosts,
    `${fs.readFileSync("/etc/hosts", "utf8").trimEnd()}\n# starter-init bench: this machine's own addresses\n${ips.map((ip) => `${ip} ${name}`).join("\n")}\n`,
  );
  const child = spawn(
    "unshare",
    [
      "--mount",
      "--propagation",
      "private",
      "--",
      "/bin/sh",
      "-c",
      'mount --bind "$0" /etc/hosts && exec "$@"',
      hosts,
      process.execPath,
      fileURLToPath(import.meta.url),
      ...process.argv.slice(2),
    ],
    {
      stdio: "inherit",
      env: { ...process.env, STARTER_BENCH_NS: "1" },
    },
  );
  // unshare execs the shell, which execs node: child.pid is the bench itself.
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => child.kill(signal));
  child.on("exit", (code, signal) => {
    fs.rmSync(dir, { recursive: true, force: true });
    process.exit(code ?? 128 + (os.constants.signals[signal] ?? 1));
  });
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  installCleanup();
  const selected = WORKLOADS.filter((w) => (options.only ? options.only.has(w) : true) && !options.skip.has(w));
  const runs = options.quick ? RUNS.quick : RUNS.full;
  if (!fs.existsSync(BINARY)) {
    console.error(`bench: ${BINARY} is missing: npm run build (npm run bench builds it first)`);
    process.exit(1);
  }
  if (process.getuid?.() !== 0) {
    console.error("bench: run as root (PID namespaces, UTS namespaces for the Starter, mounts)");
    process.exit(1);
  }
  const info = machine();
  const loadBefore = loadAverage();
  const started = now();
  console.log(`# starter-init benchmarks — ${info.date}`);
  console.log(`${info.cpu}, ${info.memory}, ${info.kernel}, ${info.distro}; Node ${info.node}; Tango ${info.tango}`);
  console.log(`${options.quick ? "quick" : "full"} run: ${selected.join(", ")}; load average before: ${loadBefore}\n`);

  let baseline = null;
  if (options.baseline) {
    const built = baselineBinary(options.baseline);
    baseline = { binary: built.binary, tree: built.tree, label: `starter-init before (${built.label})` };
    console.log(`baseline: ${baseline.label}: ${path.relative(process.cwd(), built.binary)}\n`);
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "starter-bench-"));
  onAbort(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const results = new Results();
  const timelines = new Timelines();
  const ctx = {
    quick: options.quick,
    runs,
    tmp,
    results,
    timelines,
    options,
    baseline,
    timeouts: { boot: 120_000, stop: 30_000 },
    pinger: null,
    progress: (message) => console.error(`[${((now() - started) / 1000).toFixed(0).padStart(4)} s] ${message}`),
  };
  const loads = [];
  try {
    if (selected.some((w) => ["boot", "crash", "stop"].includes(w))) ctx.pinger = await TangoAgent.start();
    for (const name of selected) {
      const before = loadAverage();
      ctx.progress(`== ${name} (load ${before})`);
      try {
        const module = await import(`./workloads/${name === "boot" || name === "crash" || name === "stop" ? "tango" : name}.mjs`);
        await module[name](ctx);
      } catch (err) {
        console.error(`bench: workload ${name} failed: ${err.stack ?? err}`);
        results.note("Failures", `workload ${name} failed: ${String(err.message ?? err).split("\n")[0]}`);
      }
      loads.push(`${name} ${before}`);
    }
  } finally {
    await ctx.pinger?.close();
    killTracked();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const leftovers = pidsWhere(
    (argv) => argv.some((a) => a.includes("starter-bench-")) || (argv[0]?.endsWith("TangoTest") && /^(b|h|c|s|k|r|wp|bench)\d\d$/.test(argv[1] ?? "")),
  );
  const loadAfter = loadAverage();
  const minutes = (now() - started) / 60_000;

  const header = [
    `Run ${info.date} on ${info.cpu}, ${info.memory}, ${info.kernel} (${info.distro}); Node ${info.node}; Debian Tango ${info.tango}.`,
    `${options.quick ? "Quick" : "Full"} run, ${minutes.toFixed(1)} min. Load average (1, 5, 15 min) before: ${loadBefore}; after: ${loadAfter}; at the start of each workload: ${loads.join("; ")}.`,
    "The machine was shared with other test runs: compare within a row group (same run, same minutes), not across machines.",
  ];
  const table = results.markdown();
  const errors = results.errors();
  const markdown = [
    "# starter-init benchmark results",
    "",
    ...header,
    "",
    "Produced by `npm run bench` (`test/bench/run.mjs`); the chart of the boot timelines is [boot-timelines.svg](boot-timelines.svg).",
    "",
    table,
    ...(errors.length ? ["### Failed runs", "", ...errors.map((e) => `- ${e}`), ""] : []),
  ].join("\n");
  console.log(`\n${header.join("\n")}\n\n${table}`);
  if (errors.length) console.log(`Failed runs:\n${errors.map((e) => `  ${e}`).join("\n")}`);
  if (leftovers.length) console.log(`\nWARNING: processes left behind: ${leftovers.join(" ")}`);

  if (options.write) {
    fs.mkdirSync(options.out, { recursive: true });
    fs.writeFileSync(path.join(options.out, "results.md"), markdown);
    if (options.json)
      fs.writeFileSync(
        path.join(options.out, "results.json"),
        `${JSON.stringify({ machine: info, quick: options.quick, loadBefore, loadAfter, loads, results }, null, 1)}\n`,
      );
    if (timelines.shapes.size) {
      const svg = timelineSvg(timelines, {
        shapes: ["10x1", "10x5"],
        subtitle: `${info.date}, ${info.cpu}, load ${loadBefore} → ${loadAfter}; median run of each contender`,
      });
      fs.writeFileSync(path.join(options.out, "boot-timelines.svg"), svg);
    }
    console.log(
      `\nwritten: ${path.relative(process.cwd(), options.out) || "."}/results.md${options.json ? ", results.json" : ""}${timelines.shapes.size ? ", boot-timelines.svg" : ""}`,
    );
  }
}

if (!process.env.STARTER_BENCH_NS && process.getuid?.() === 0) reexecWithPrivateHosts();
else
  main().catch((err) => {
    console.error(err);
    killTracked();
    process.exit(1);
  });
