// Workload 6: scale. N supervised `sleep` processes at one level (readiness: exec succeeded), for N =
// 10, 100, 1000: time from spawning the init to the boot being complete (all started), latency of a
// `status` request on the control socket (and of the `starter-init status --json` command), and the
// init's RSS per server. How each grows with N is reported as the slope of log(value) over log(N)
// (1 = linear). Anchor for "all started": a Python loop of posix_spawn as PID 1 of a namespace.

import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { spawnSync } from "node:child_process";
import { BINARY, Control, logLogSlope, now, rssKiB, sleep, spawnTracked, startInit, stats, waitExit, withTimeout } from "../lib/common.mjs";
import { formatValue } from "../lib/report.mjs";

function writeSleepConfig(dir, n) {
  fs.mkdirSync(dir, { recursive: true });
  const lines = [
    "settings:",
    `  controlSocket: ${path.join(dir, "control.sock")}`,
    "  defaults:",
    "    log: {console: false}",
    "    readiness: none",
    "servers:",
  ];
  for (let i = 1; i <= n; i++) lines.push(`  - name: sleep${String(i).padStart(4, "0")}`, "    binary: /bin/sleep", "    args: [100000]");
  const file = path.join(dir, "config.yaml");
  fs.writeFileSync(file, `${lines.join("\n")}\n`);
  return file;
}

async function scaleOnce(ctx, n, statusRequests, binary = BINARY) {
  const dir = path.join(ctx.tmp, `scale-${n}`);
  const config = writeSleepConfig(dir, n);
  const t0 = now();
  const init = startInit(["-c", config], { binary });
  try {
    const complete = await init.waitRecord((r) => r.kind === "boot-complete", 300_000, "boot-complete");
    const started = complete.time - t0;
    const control = await Control.connect(path.join(dir, "control.sock"));
    const latencies = [];
    try {
      const first = await control.request("status", {});
      if (first.servers.length !== n || first.servers.some((s) => s.state !== "ready"))
        throw new Error(`status: ${first.servers.filter((s) => s.state === "ready").length} of ${n} ready`);
      for (let i = 0; i < statusRequests; i++) {
        const t = now();
        await control.request("status", {});
        latencies.push(now() - t);
      }
    } finally {
      control.close();
    }
    // The command a person types (a second Node process: its own start is most of it).
    const cli = [];
    for (let i = 0; i < 3; i++) {
      const t = now();
      const out = spawnSync(binary, ["status", "--json", "--socket", path.join(dir, "control.sock")], {
        stdio: ["ignore", "pipe", "ignore"],
        maxBuffer: 64 << 20,
      });
      if (out.status !== 0) throw new Error(`starter-init status exited ${out.status}`);
      cli.push(now() - t);
    }
    await sleep(1000);
    const rss = rssKiB(await init.pid());
    return { started, status: stats(latencies).median, cli: stats(cli).median, rss };
  } finally {
    await init.kill();
  }
}

/** The anchor: Python as PID 1 of a namespace posix_spawn()s n sleeps in a loop. */
async function byHandOnce(n) {
  const code = `import os\nfor i in range(${n}):\n    os.posix_spawn("/bin/sleep", ["sleep", "100000"], os.environ)\nprint("done", flush=True)\nos.read(0, 1)\n`;
  const t0 = now();
  const child = spawnTracked("unshare", ["--pid", "--fork", "--mount-proc", "--kill-child", "/usr/bin/python3", "-c", code], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  try {
    await withTimeout(new Promise((resolve) => readline.createInterface({ input: child.stdout }).once("line", resolve)), 120_000, `${n} sleeps by hand`);
    return now() - t0;
  } finally {
    child.kill("SIGKILL");
    await waitExit(child, 10_000);
  }
}

export async function scale(ctx) {
  const section = "6. Scale: N supervised `sleep` processes";
  const sizes = ctx.runs.scaleSizes;
  const zeroRss = [];
  // RSS with no server at all, the base for "per server".
  {
    const dir = path.join(ctx.tmp, "scale-0");
    fs.mkdirSync(dir, { recursive: true });
    const config = path.join(dir, "config.yaml");
    fs.writeFileSync(config, `settings:\n  controlSocket: ${path.join(dir, "control.sock")}\nservers: []\n`);
    const init = startInit(["-c", config]);
    try {
      await Control.connect(path.join(dir, "control.sock"));
      await sleep(1500);
      zeroRss.push(rssKiB(await init.pid()));
    } finally {
      await init.kill();
    }
  }
  const measured = new Map(sizes.map((n) => [n, { started: [], status: [], cli: [], rss: [], hand: [], before: [] }]));
  for (let r = 0; r < ctx.runs.scale; r++) {
    for (const n of sizes) {
      ctx.progress(`scale: ${n} sleeps (run ${r + 1}/${ctx.runs.scale})`);
      const m = measured.get(n);
      try {
        const once = await scaleOnce(ctx, n, ctx.runs.statusRequests);
        m.started.push(once.started);
        m.status.push(once.status);
        m.cli.push(once.cli);
        m.rss.push(once.rss);
      } catch (err) {
        console.error(`  scale ${n}: ${err.message.split("\n")[0]}`);
        (m.errors ??= []).push(err.message.split("\n")[0]);
      }
      if (ctx.baseline) {
        try {
          m.before.push((await scaleOnce(ctx, n, 1, ctx.baseline.binary)).started);
        } catch (err) {
          console.error(`  scale ${n} (${ctx.baseline.label}): ${err.message.split("\n")[0]}`);
        }
      }
      try {
        m.hand.push(await byHandOnce(n));
      } catch (err) {
        console.error(`  scale ${n} by hand: ${err.message.split("\n")[0]}`);
      }
    }
  }
  const base = stats(zeroRss).median;
  for (const n of sizes) {
    const m = measured.get(n);
    const group = `N = ${n}`;
    ctx.results.add({
      section,
      group,
      label: "starter-init: spawn → all N started (boot complete)",
      values: m.started,
      unit: "ms",
      compare: ["posix_spawn loop (Python as PID 1)", ...(ctx.baseline ? [`${ctx.baseline.label}: all N started`] : [])],
      errors: m.errors,
    });
    if (ctx.baseline) {
      ctx.results.add({
        section,
        group,
        label: `${ctx.baseline.label}: all N started`,
        short: ctx.baseline.label,
        anchor: true,
        values: m.before,
        unit: "ms",
      });
    }
    ctx.results.add({ section, group, label: "posix_spawn loop (Python as PID 1)", short: "spawn loop", anchor: true, values: m.hand, unit: "ms" });
    ctx.results.add({ section, group, label: "`status` request on the control socket (round trip)", values: m.status, unit: "ms" });
    ctx.results.add({ section, group, label: "`starter-init status --json` command (a new process)", values: m.cli, unit: "ms" });
    ctx.results.add({
      section,
      group,
      label: "init RSS per server: (RSS − RSS with 0 servers) / N",
      values: m.rss.map((kib) => (kib - base) / n),
      unit: "KiB",
    });
  }
  // How each grows: slope of log(value) over log(N), and the cost of one more server (N0 → N1).
  const medianOf = (key, n, f = (v) => v) => stats(measured.get(n)[key].map(f)).median;
  const first = sizes[0];
  const last = sizes.at(-1);
  const growth = [
    ["all started", "started", (v) => v, "ms"],
    ["posix_spawn loop", "hand", (v) => v, "ms"],
    ["status round trip", "status", (v) => v, "ms"],
    ["status command", "cli", (v) => v, "ms"],
    ["init RSS above the empty init", "rss", (v) => (v - base) / 1024, "MiB"],
  ];
  const lines = [
    `| growth with N | median at N = ${sizes.join(", ")} | slope of log–log | per extra server (N = ${first} → ${last}) |`,
    "|---|---:|---:|---:|",
  ];
  for (const [label, key, f, unit] of growth) {
    const points = sizes.map((n) => [n, medianOf(key, n, f)]);
    const slope = logLogSlope(points);
    const marginal = (points.at(-1)[1] - points[0][1]) / (last - first);
    const perServer = unit === "MiB" ? `${(marginal * 1024).toFixed(1)} KiB` : formatValue(marginal, "ms");
    lines.push(`| ${label} | ${points.map(([, v]) => formatValue(v, unit)).join(" → ")} | ${Number.isFinite(slope) ? slope.toFixed(2) : "–"} | ${perServer} |`);
  }
  ctx.results.extra(section, lines);
  ctx.results.note(
    section,
    `Growth: the slope of log(median) over log(N) (1.0 = linear, 0 = flat; a fixed start-up cost pulls it below 1) and the marginal cost of one more server between N = ${first} and ${last}. RSS of the init with no server: ${(base / 1024).toFixed(1)} MiB.`,
  );
}
