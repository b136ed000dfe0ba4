#!/usr/bin/env node
// Boots the VM test image several times and prints the median time from qemu's start to: the first
// line the init prints, every server ready, the power-off request, and qemu's exit; plus the
// initramfs size. The image's default config is test/fixtures/vm/boot.yaml (six TangoTest servers
// over three levels, then a one-shot that powers the VM off from inside).
//
//   node qemu/measure.mjs [--runs N] [--initrd FILE] [--no-disk] [--json] [-- boot.sh options and kernel words]
//
// Builds build/qemu/measure/initramfs.cpio and its payload disk (qemu/initramfs.sh) unless --initrd
// is given; --no-disk builds the single-cpio image instead. Also prints how long the init took from
// its exec to its first line (the "(up N ms)" of its stage 1 line), i.e. Node's own start under TCG.

import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const top = path.resolve(here, "..");
const argv = process.argv.slice(2);
let runs = 5;
let initrd = "";
let json = false;
let noDisk = false;
const extra = [];
for (let i = 0; i < argv.length; i++) {
  const arg = argv[i];
  if (arg === "--runs") runs = Number(argv[++i]);
  else if (arg === "--initrd") initrd = path.resolve(argv[++i]);
  else if (arg === "--json") json = true;
  else if (arg === "--no-disk") noDisk = true;
  else if (arg === "--") {
    extra.push(...argv.slice(i + 1));
    break;
  } else {
    console.error(`measure: unknown argument ${arg}`);
    process.exit(2);
  }
}
if (!Number.isInteger(runs) || runs < 1) {
  console.error("measure: --runs needs a positive integer");
  process.exit(2);
}

const kernel = execFileSync("bash", [path.join(here, "kernel.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
if (!initrd) {
  initrd = path.join(top, "build", "qemu", "measure", "initramfs.cpio");
  const fixtures = path.join(top, "test", "fixtures", "vm");
  const layout = noDisk ? ["--no-disk"] : [];
  execFileSync("bash", [path.join(here, "initramfs.sh"), "--config", path.join(fixtures, "boot.yaml"), "--configs", fixtures, "--out", initrd, ...layout], {
    stdio: ["ignore", "ignore", "inherit"],
  });
}

const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;
const KERNEL_LINE = /^\[\s*\d+\.\d+\]/;

function bootOnce() {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn("bash", [path.join(here, "boot.sh"), "--kernel", kernel, "--initrd", initrd, "--timeout", "180", ...extra], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const marks = {};
    const lines = [];
    let partial = "";
    const mark = (name, at) => {
      if (marks[name] === undefined) marks[name] = at;
    };
    const take = (chunk) => {
      const at = performance.now() - started;
      const parts = (partial + chunk.toString("utf8")).split("\n");
      partial = parts.pop();
      for (const raw of parts) {
        const text = raw.replace(ANSI, "").replace(/\r/g, "");
        lines.push(text);
        if (text.trim() && !KERNEL_LINE.test(text)) mark("firstInitLine", at);
        const up = /stage 1 \(vm\).*\(up (\d+) ms\)/.exec(text);
        if (up) mark("initUp", Number(up[1]));
        if (/\[ {2}OK {2}\] TangoTest\/\S+ ready in/.test(text)) marks.allReady = at;
        if (/\[ STOP \] shutdown: stopping/.test(text)) mark("shutdownStart", at);
        if (/reboot: Power down/.test(text)) mark("powerDown", at);
        if (/Kernel panic/.test(text)) mark("panic", at);
      }
    };
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, exit: performance.now() - started, ...marks, lines }));
  });
}

function median(values) {
  const sorted = values.filter((value) => value !== undefined).sort((a, b) => a - b);
  if (sorted.length === 0) return undefined;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

const seconds = (ms) => (ms === undefined ? "-" : (ms / 1000).toFixed(2));
const results = [];
for (let run = 1; run <= runs; run++) {
  const result = await bootOnce();
  results.push(result);
  const failed = result.code !== 0 || result.panic !== undefined;
  console.error(
    `run ${run}: first init line ${seconds(result.firstInitLine)} s, all ready ${seconds(result.allReady)} s, ` +
      `shutdown ${seconds(result.shutdownStart)} s, power down ${seconds(result.powerDown)} s, qemu exit ${seconds(result.exit)} s (code ${result.code})` +
      (failed ? " FAILED" : ""),
  );
  if (failed) console.error(result.lines.slice(-30).join("\n"));
}

const keys = ["firstInitLine", "initUp", "allReady", "shutdownStart", "powerDown", "exit"];
const summary = Object.fromEntries(keys.map((key) => [key, median(results.map((result) => result[key]))]));
const shutdownToExit = median(results.map((result) => (result.shutdownStart === undefined ? undefined : result.exit - result.shutdownStart)));
const size = fs.statSync(initrd).size;
const diskFile = path.join(path.dirname(initrd), "payload.erofs");
const disk = fs.existsSync(diskFile) ? fs.statSync(diskFile).size : 0;
const context = `${os.cpus().length} host cores, load ${os.loadavg()[0].toFixed(2)}, ${runs} runs`;
if (json) {
  console.log(JSON.stringify({ runs, medianMs: summary, shutdownToExitMs: shutdownToExit, initramfsBytes: size, diskBytes: disk, context }, null, 2));
} else {
  console.log(`median of ${runs} boots (${context}), seconds from qemu start:`);
  console.log(`  first init line   ${seconds(summary.firstInitLine)}   (of which the init's own start, exec → that line: ${seconds(summary.initUp)})`);
  console.log(`  all servers ready ${seconds(summary.allReady)}`);
  console.log(`  power-off asked   ${seconds(summary.shutdownStart)}`);
  console.log(`  "Power down"      ${seconds(summary.powerDown)}`);
  console.log(`  qemu exited       ${seconds(summary.exit)}   (power-off asked → exit: ${seconds(shutdownToExit)})`);
  console.log(
    `initramfs ${(size / 1048576).toFixed(1)} MiB (${size} bytes, uncompressed newc)${disk ? `, payload disk ${(disk / 1048576).toFixed(1)} MiB (erofs)` : ""}`,
  );
}
