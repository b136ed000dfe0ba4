// Workload 4: what the init costs, side by side with tini and dumb-init (Debian packages), each as
// PID 1 of a new PID namespace. Folded in from the former overhead.mjs.
//  - wall time of `<init> -- true`;
//  - start to the child's first instruction (`date +%s%N` in the child);
//  - idle RSS of the init: `--` mode with one sleeping child, and supervising 0 and 30 TangoTest.

import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { anonKiB, BINARY, childrenOf, cleanEnv, INITS, now, rssKiB, sleep, spawnTracked, startInit, waitExit } from "../lib/common.mjs";
import { portBlock, tangoSet, writeInitConfig } from "../lib/tango.mjs";

const NS = ["--pid", "--fork", "--mount-proc"];

function wallTime(argv) {
  const t0 = now();
  const result = spawnSync("unshare", [...NS, ...argv, "true"], { stdio: "ignore", timeout: 30_000, env: cleanEnv() });
  if (result.status !== 0) throw new Error(`${argv[0]} -- true exited ${result.status}`);
  return now() - t0;
}

/** From spawning the init to the first instruction of its child (the child prints the time). */
function startToChild(argv) {
  const before = BigInt(Math.round(now() * 1000)) * 1000n;
  const out = execFileSync("unshare", [...NS, ...argv, "date", "+%s%N"], {
    encoding: "utf8",
    timeout: 30_000,
    stdio: ["ignore", "pipe", "ignore"],
    env: cleanEnv(),
  });
  return Number(BigInt(out.trim()) - before) / 1e6;
}

async function idleRss(argv) {
  const child = spawnTracked("unshare", [...NS, "--kill-child", ...argv, "sleep", "60"], { stdio: "ignore", env: cleanEnv() });
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

async function supervisorRss(ctx, n, binary = BINARY) {
  const dir = path.join(ctx.tmp, `rss-${n}`);
  let config;
  if (n === 0) {
    fs.mkdirSync(dir, { recursive: true });
    config = path.join(dir, "config.yaml");
    fs.writeFileSync(config, `settings:\n  controlSocket: ${path.join(dir, "control.sock")}\nservers: []\n`);
  } else {
    config = writeInitConfig(dir, tangoSet({ levels: Array(n).fill(1), base: await portBlock(n), prefix: "r" }));
  }
  const init = startInit(["-c", config], { binary });
  try {
    await init.waitRecord((r) => r.kind === "boot-complete" || (n === 0 && r.msg?.includes("supervisor starting")), ctx.timeouts.boot, "boot-complete");
    await sleep(2000);
    const pid = await init.pid();
    return { rss: rssKiB(pid) / 1024, anon: anonKiB(pid) / 1024 };
  } finally {
    await init.kill();
  }
}

/** The inits of this run: ours, the baseline build (--baseline) when given, tini and dumb-init. */
function contenders(ctx) {
  const list = [INITS[0]];
  if (ctx.baseline) list.push({ label: ctx.baseline.label, argv: [ctx.baseline.binary, "--"], before: true });
  return [...list, ...INITS.slice(1)];
}

/** Node itself: the floor a Node single executable starts from (run as PID 1 the same way). */
const NODE_ANCHOR = { label: "node -e 0", argv: [process.execPath, "-e", "0"], anchor: true };

function nodeWall() {
  const t0 = now();
  const result = spawnSync("unshare", [...NS, ...NODE_ANCHOR.argv], { stdio: "ignore", timeout: 30_000, env: cleanEnv() });
  if (result.status !== 0) throw new Error(`node -e 0 exited ${result.status}`);
  return now() - t0;
}

export async function overhead(ctx) {
  const section = "4. Overhead of the init itself";
  const inits = contenders(ctx).filter((i) => fs.existsSync(i.argv[0]));
  for (const missing of INITS.filter((i) => !fs.existsSync(i.argv[0])))
    ctx.results.note(section, `${missing.label} is not installed (${missing.argv[0]}): apt-get install ${missing.label}`);
  const before = ctx.baseline?.label;
  const compare = [NODE_ANCHOR.label, "tini", "dumb-init", ...(before ? [before] : [])];
  const wall = new Map([...inits, NODE_ANCHOR].map((i) => [i.label, []]));
  const first = new Map(inits.map((i) => [i.label, []]));
  ctx.progress(`overhead: wall time and start → child ×${ctx.runs.overhead}`);
  // Interleaved, so that a burst of load on the shared machine hits every init alike.
  for (let r = 0; r < ctx.runs.overhead; r++) {
    wall.get(NODE_ANCHOR.label).push(nodeWall());
    for (const init of inits) {
      wall.get(init.label).push(wallTime(init.argv));
      first.get(init.label).push(startToChild(init.argv));
    }
  }
  const rowFor = (init) => ({ label: init.label, anchor: init.anchor || init.before, compare: init.anchor || init.before ? undefined : compare });
  for (const init of [...inits, NODE_ANCHOR]) {
    ctx.results.add({ section, group: "`<init> -- true`: wall time, PID 1 of a new PID namespace", ...rowFor(init), values: wall.get(init.label), unit: "ms" });
  }
  for (const init of inits) {
    ctx.results.add({ section, group: "spawn of the init → first instruction of its child", ...rowFor(init), values: first.get(init.label), unit: "ms" });
  }
  ctx.results.add({
    section,
    group: "spawn of the init → first instruction of its child",
    label: `${NODE_ANCHOR.label} (wall, for the goal: node -e 0 + 10 ms)`,
    short: NODE_ANCHOR.label,
    anchor: true,
    values: wall.get(NODE_ANCHOR.label),
    unit: "ms",
  });
  ctx.progress(`overhead: idle RSS ×${ctx.runs.rss}`);
  const measured = [];
  for (const init of inits) {
    const values = [];
    for (let r = 0; r < ctx.runs.rss; r++) values.push(await idleRss(init.argv));
    measured.push({ label: `${init.label} -- sleep`, short: init.label, anchor: init.anchor || init.before, values });
  }
  const supervisors = [{ label: "starter-init", binary: BINARY }, ...(ctx.baseline ? [{ label: before, binary: ctx.baseline.binary, before: true }] : [])];
  for (const n of [0, 30]) {
    for (const sup of supervisors) {
      const values = [];
      for (let r = 0; r < ctx.runs.rss; r++) values.push(await supervisorRss(ctx, n, sup.binary));
      measured.push({ label: `${sup.label} supervising ${n} TangoTest`, short: sup.label, anchor: sup.before, values, n });
    }
  }
  for (const [key, group] of [
    ["rss", "idle RSS of the init (VmRSS)"],
    ["anon", "idle private memory of the init (RssAnon: VmRSS without the binary's file pages)"],
  ]) {
    for (const m of measured) {
      const peers =
        m.n === undefined
          ? compare.filter((c) => c !== NODE_ANCHOR.label).map((c) => `${c} -- sleep`)
          : before
            ? [`${before} supervising ${m.n} TangoTest`]
            : [];
      ctx.results.add({
        section,
        group,
        label: m.label,
        short: m.short,
        anchor: m.anchor,
        values: m.values.map((v) => v[key]),
        unit: "MiB",
        compare: m.anchor ? undefined : peers,
      });
    }
  }
  const size = fs.statSync(BINARY).size / 2 ** 20;
  ctx.results.note(
    section,
    `starter-init is one ${size.toFixed(0)} MiB file (Node ${process.version.slice(1)} runtime, the bundled init and its C++ addon); tini and dumb-init are small C programs. Wall times include \`unshare\` (the same for all, \`node -e 0\` too), with no NODE_* variable set; the runs are interleaved. Most of starter-init's RSS is pages of its own binary (Node's code and data), shared by every process running it and reclaimable; RssAnon is what each instance costs on its own.${before ? ` "${before}" is the same init built from an earlier commit (\`--baseline\`), measured in the same run.` : ""}`,
  );
}
