// Workload 4: what the init costs, side by side with tini and dumb-init (Debian packages), each as
// PID 1 of a new PID namespace. Folded in from the former overhead.mjs.
//  - wall time of `<init> -- true`;
//  - start to the child's first instruction (`date +%s%N` in the child);
//  - idle RSS of the init: `--` mode with one sleeping child, and supervising 0 and 30 TangoTest.

import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { anonKiB, BINARY, childrenOf, INITS, now, rssKiB, sleep, spawnTracked, startInit, waitExit } from "../lib/common.mjs";
import { portBlock, tangoSet, writeInitConfig } from "../lib/tango.mjs";

const NS = ["--pid", "--fork", "--mount-proc"];

function wallTime(argv) {
  const t0 = now();
  const result = spawnSync("unshare", [...NS, ...argv, "true"], { stdio: "ignore", timeout: 30_000 });
  if (result.status !== 0) throw new Error(`${argv[0]} -- true exited ${result.status}`);
  return now() - t0;
}

/** From spawning the init to the first instruction of its child (the child prints the time). */
function startToChild(argv) {
  const before = BigInt(Math.round(now() * 1000)) * 1000n;
  const out = execFileSync("unshare", [...NS, ...argv, "date", "+%s%N"], { encoding: "utf8", timeout: 30_000, stdio: ["ignore", "pipe", "ignore"] });
  return Number(BigInt(out.trim()) - before) / 1e6;
}

async function idleRss(argv) {
  const child = spawnTracked("unshare", [...NS, "--kill-child", ...argv, "sleep", "60"], { stdio: "ignore" });
  try {
    await sleep(1500);
    if (child.exitCode !== null) throw new Error(`${argv[0]} ended early (${child.exitCode})`);
    const init = childrenOf(child.pid)[0];
    return { rss: rssKiB(init) / 1024, anon: anonKiB(init) / 1024 };
  } finally {
    child.kill("SIGKILL");
    await waitExit(child, 5000);
  }
}

async function supervisorRss(ctx, n) {
  const dir = path.join(ctx.tmp, `rss-${n}`);
  let config;
  if (n === 0) {
    fs.mkdirSync(dir, { recursive: true });
    config = path.join(dir, "config.yaml");
    fs.writeFileSync(config, `settings:\n  controlSocket: ${path.join(dir, "control.sock")}\nservers: []\n`);
  } else {
    config = writeInitConfig(dir, tangoSet({ levels: Array(n).fill(1), base: await portBlock(n), prefix: "r" }));
  }
  const init = startInit(["-c", config]);
  try {
    await init.waitRecord((r) => r.kind === "boot-complete" || (n === 0 && r.msg?.includes("supervisor starting")), ctx.timeouts.boot, "boot-complete");
    await sleep(2000);
    const pid = await init.pid();
    return { rss: rssKiB(pid) / 1024, anon: anonKiB(pid) / 1024 };
  } finally {
    await init.kill();
  }
}

export async function overhead(ctx) {
  const section = "4. Overhead of the init itself";
  const inits = INITS.filter((i) => fs.existsSync(i.argv[0]));
  for (const missing of INITS.filter((i) => !fs.existsSync(i.argv[0])))
    ctx.results.note(section, `${missing.label} is not installed (${missing.argv[0]}): apt-get install ${missing.label}`);
  const compare = ["tini", "dumb-init"];
  const wall = new Map(inits.map((i) => [i.label, []]));
  const first = new Map(inits.map((i) => [i.label, []]));
  ctx.progress(`overhead: wall time and start → child ×${ctx.runs.overhead}`);
  // Interleaved, so that a burst of load on the shared machine hits every init alike.
  for (let r = 0; r < ctx.runs.overhead; r++) {
    for (const init of inits) {
      wall.get(init.label).push(wallTime(init.argv));
      first.get(init.label).push(startToChild(init.argv));
    }
  }
  for (const init of inits) {
    ctx.results.add({
      section,
      group: "`<init> -- true`: wall time, PID 1 of a new PID namespace",
      label: init.label,
      anchor: init.anchor,
      values: wall.get(init.label),
      unit: "ms",
      compare: init.anchor ? undefined : compare,
    });
  }
  for (const init of inits) {
    ctx.results.add({
      section,
      group: "spawn of the init → first instruction of its child",
      label: init.label,
      anchor: init.anchor,
      values: first.get(init.label),
      unit: "ms",
      compare: init.anchor ? undefined : compare,
    });
  }
  ctx.progress(`overhead: idle RSS ×${ctx.runs.rss}`);
  const measured = [];
  for (const init of inits) {
    const values = [];
    for (let r = 0; r < ctx.runs.rss; r++) values.push(await idleRss(init.argv));
    measured.push({ label: `${init.label} -- sleep`, short: init.label, anchor: init.anchor, values });
  }
  for (const n of [0, 30]) {
    const values = [];
    for (let r = 0; r < ctx.runs.rss; r++) values.push(await supervisorRss(ctx, n));
    measured.push({ label: `starter-init supervising ${n} TangoTest`, values });
  }
  for (const [key, group] of [
    ["rss", "idle RSS of the init (VmRSS)"],
    ["anon", "idle private memory of the init (RssAnon: VmRSS without the binary's file pages)"],
  ]) {
    for (const m of measured) {
      ctx.results.add({
        section,
        group,
        label: m.label,
        short: m.short,
        anchor: m.anchor,
        values: m.values.map((v) => v[key]),
        unit: "MiB",
        compare: m.anchor ? undefined : compare.map((c) => `${c} -- sleep`),
      });
    }
  }
  const size = fs.statSync(BINARY).size / 2 ** 20;
  ctx.results.note(
    section,
    `starter-init is one ${size.toFixed(0)} MiB file (Node ${process.version.slice(1)} runtime, the bundled init and its C++ addon); tini and dumb-init are small C programs. Wall times include \`unshare\` (the same for all); the runs are interleaved. Most of starter-init's RSS is pages of its own binary (Node's code and data), shared by every process running it and reclaimable; RssAnon is what each instance costs on its own.`,
  );
}
