#!/usr/bin/env node
// Benchmark: what the init costs. In one run, side by side with tini and dumb-init (Debian packages):
//  - wall time of `<init> -- true` as PID 1 of a new PID namespace;
//  - start to first child: from spawning the init to its child's first instruction (`date +%s%N`);
//  - idle RSS of the init with one sleeping child;
//  - the binary's size.
// Usage: node test/bench/overhead.mjs [--runs N]

import { execFileSync, spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const binary = path.join(root, "dist", "starter-init");
const args = process.argv.slice(2);
const runs = Number(args[args.indexOf("--runs") + 1]) || 20;

const inits = [
  ["starter-init", [binary, "--"]],
  ["tini", ["/usr/bin/tini", "--"]],
  ["dumb-init", ["/usr/bin/dumb-init"]],
].filter(([, argv]) => fs.existsSync(argv[0]));

function nowNs() {
  return process.hrtime.bigint();
}

/** Wall-clock nanoseconds since the epoch, comparable with `date +%s%N` in a child. */
function epochNs() {
  return BigInt(Date.now()) * 1_000_000n + (nowNs() % 1_000_000n);
}

function stats(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return { median: sorted[Math.floor(sorted.length / 2)], min: sorted[0], max: sorted.at(-1) };
}

function wallTime(argv) {
  const started = nowNs();
  const result = spawnSync("unshare", ["--pid", "--fork", "--mount-proc", ...argv, "true"], { stdio: "ignore" });
  if (result.status !== 0) throw new Error(`${argv[0]} -- true exited ${result.status}`);
  return Number(nowNs() - started) / 1e6;
}

function startToChild(argv) {
  const before = epochNs();
  const out = execFileSync("unshare", ["--pid", "--fork", "--mount-proc", ...argv, "date", "+%s%N"], { encoding: "utf8" });
  return Number(BigInt(out.trim()) - before) / 1e6;
}

async function idleRssKiB(argv) {
  const child = spawn("unshare", ["--pid", "--fork", "--mount-proc", "--kill-child", ...argv, "sleep", "30"], { stdio: "ignore" });
  await new Promise((resolve) => setTimeout(resolve, 1500));
  if (child.exitCode !== null) throw new Error(`${argv[0]} ended early (${child.exitCode})`);
  const init = fs.readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, "utf8").trim().split(" ")[0];
  const rss = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${init}/status`, "utf8"))[1]);
  child.kill("SIGKILL");
  return rss;
}

const fmt = (ms) => `${ms.toFixed(1)} ms`;
console.log(`# init overhead — ${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} cores, load ${os.loadavg()[0].toFixed(1)}; ${runs} runs each`);
console.log(`starter-init binary: ${(fs.statSync(binary).size / 1048576).toFixed(1)} MiB, one file\n`);
console.log("| init | `-- true` wall (median, min–max) | start → first child (median, min–max) | idle RSS |");
console.log("|---|---|---|---|");
const anchor = {};
for (const [name, argv] of inits) {
  const wall = [];
  const first = [];
  for (let i = 0; i < runs; i++) {
    wall.push(wallTime(argv));
    first.push(startToChild(argv));
  }
  const w = stats(wall);
  const f = stats(first);
  const rss = await idleRssKiB(argv);
  anchor[name] = { wall: w.median, first: f.median, rss };
  console.log(`| ${name} | ${fmt(w.median)} (${fmt(w.min)}–${fmt(w.max)}) | ${fmt(f.median)} (${fmt(f.min)}–${fmt(f.max)}) | ${(rss / 1024).toFixed(1)} MiB |`);
}
if (anchor.tini && anchor["starter-init"]) {
  const ours = anchor["starter-init"];
  console.log(`\nstarter-init / tini: wall ${(ours.wall / anchor.tini.wall).toFixed(1)}×, start→child ${(ours.first / anchor.tini.first).toFixed(1)}×, RSS ${(ours.rss / anchor.tini.rss).toFixed(0)}×`);
}
