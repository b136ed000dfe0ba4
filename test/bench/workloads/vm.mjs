// Workload 7: the init as PID 1 of a qemu microVM (TCG), with the microVM scripts of qemu/ (used as
// they are): qemu/kernel.sh fetches and caches the kernel, qemu/initramfs.sh builds an initramfs
// (and its payload disk) around test/bench/vm-boot.yaml (ten TangoTest at one level, then a one-shot
// that powers the VM off), qemu/boot.sh boots it. Timed from qemu's start, on its console. With
// --baseline REF the "before" is built and booted with REF's own qemu/ scripts, boots alternating.

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { BENCH_DIR, ROOT, now, spawnTracked } from "../lib/common.mjs";

const QEMU_DIR = path.join(ROOT, "qemu");
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;
const KERNEL_LINE = /^\[\s*\d+\.\d+\]/;
const SERVERS = 10;

function bootOnce(kernel, initrd, qemuDir = QEMU_DIR) {
  return new Promise((resolve, reject) => {
    const started = now();
    const child = spawnTracked("bash", [path.join(qemuDir, "boot.sh"), "--kernel", kernel, "--initrd", initrd, "--timeout", "240"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const marks = {};
    const tail = [];
    let ready = 0;
    let partial = "";
    const take = (chunk) => {
      const at = now() - started;
      const parts = (partial + chunk.toString("utf8")).split("\n");
      partial = parts.pop();
      for (const raw of parts) {
        const text = raw.replace(ANSI, "").replace(/\r/g, "");
        tail.push(text);
        if (tail.length > 40) tail.shift();
        if (text.trim() && !KERNEL_LINE.test(text)) marks.firstInitLine ??= at;
        if (/\[ {2}OK {2}\] TangoTest\/\S+ ready in/.test(text) && ++ready === SERVERS) marks.allReady = at;
        if (/\[ STOP \] shutdown: stopping/.test(text)) marks.shutdownStart ??= at;
        if (/reboot: Power down/.test(text)) marks.powerDown ??= at;
        if (/Kernel panic/.test(text)) marks.panic ??= at;
      }
    };
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    child.on("error", reject);
    child.on("close", (code) => {
      const exit = now() - started;
      if (code !== 0 || marks.panic !== undefined || marks.allReady === undefined) {
        reject(
          new Error(`qemu exited ${code} (${ready}/${SERVERS} ready${marks.panic !== undefined ? ", kernel panic" : ""}); console tail:\n${tail.join("\n")}`),
        );
      } else resolve({ ...marks, exit });
    });
  });
}

export async function vm(ctx) {
  const section = "7. VM: qemu microVM (TCG, no KVM), the init as PID 1, 10 TangoTest";
  const missing = ["boot.sh", "kernel.sh", "initramfs.sh"].filter((f) => !fs.existsSync(path.join(QEMU_DIR, f)));
  if (missing.length) {
    ctx.results.skip(section, "qemu start →", "all of it", `skipped: the microVM scripts are missing (qemu/${missing.join(", qemu/")})`);
    return;
  }
  let kernel;
  let initrd;
  try {
    ctx.progress("vm: kernel (qemu/kernel.sh, cached under build/qemu/kernel/)");
    kernel = execFileSync("bash", [path.join(QEMU_DIR, "kernel.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 600_000 })
      .trim()
      .split("\n")
      .at(-1);
    ctx.progress("vm: initramfs (qemu/initramfs.sh with test/bench/vm-boot.yaml)");
    initrd = path.join(ctx.tmp, "vm", "initramfs.cpio");
    execFileSync("bash", [path.join(QEMU_DIR, "initramfs.sh"), "--config", path.join(BENCH_DIR, "vm-boot.yaml"), "--out", initrd], {
      stdio: ["ignore", "ignore", "pipe"],
      timeout: 600_000,
    });
  } catch (err) {
    const why = String(err.stderr ?? err.message)
      .trim()
      .split("\n")
      .slice(-3)
      .join(" ");
    ctx.results.skip(section, "qemu start →", "all of it", `skipped: could not prepare the VM: ${why}`);
    return;
  }
  // The "before": the baseline revision's own image and boot script (a baseline given as a file has
  // no qemu/ scripts of its own: no "before" rows then).
  let before = null;
  if (ctx.baseline?.tree) {
    try {
      ctx.progress(`vm: initramfs of ${ctx.baseline.label} (its own qemu/initramfs.sh)`);
      const beforeQemu = path.join(ctx.baseline.tree, "qemu");
      const beforeInitrd = path.join(ctx.tmp, "vm-before", "initramfs.cpio");
      execFileSync(
        "bash",
        [path.join(beforeQemu, "initramfs.sh"), "--binary", ctx.baseline.binary, "--config", path.join(BENCH_DIR, "vm-boot.yaml"), "--out", beforeInitrd],
        {
          stdio: ["ignore", "ignore", "pipe"],
          timeout: 600_000,
        },
      );
      before = { qemu: beforeQemu, initrd: beforeInitrd, values: {}, shutdown: [], errors: [] };
    } catch (err) {
      ctx.results.note(
        "7. VM: qemu microVM (TCG, no KVM), the init as PID 1, 10 TangoTest",
        `${ctx.baseline.label}: no VM image (${String(err.message).split("\n")[0]})`,
      );
    }
  }
  const keys = [
    ["firstInitLine", "first line from the init"],
    ["allReady", `all ${SERVERS} servers ready`],
    ["shutdownStart", "power-off asked (a one-shot at level 2)"],
    ["exit", "qemu exited (powered off)"],
  ];
  const values = Object.fromEntries(keys.map(([k]) => [k, []]));
  const shutdown = [];
  const errors = [];
  if (before) for (const [k] of keys) before.values[k] = [];
  for (let r = 0; r < ctx.runs.vm; r++) {
    for (const contender of before ? ["now", "before"] : ["now"]) {
      ctx.progress(`vm: boot ${r + 1}/${ctx.runs.vm}${contender === "before" ? ` (${ctx.baseline.label})` : ""}`);
      const into = contender === "before" ? before : { values, shutdown, errors };
      try {
        const marks = contender === "before" ? await bootOnce(kernel, before.initrd, before.qemu) : await bootOnce(kernel, initrd);
        for (const [k] of keys) if (marks[k] !== undefined) into.values[k].push(marks[k]);
        if (marks.shutdownStart !== undefined) into.shutdown.push(marks.exit - marks.shutdownStart);
      } catch (err) {
        into.errors.push(err.message.split("\n")[0]);
        console.error(`  vm boot ${r + 1}${contender === "before" ? " (before)" : ""}: ${err.message}`);
      }
    }
  }
  const group = "qemu start →";
  for (const [k, label] of keys) {
    ctx.results.add({
      section,
      group,
      label,
      values: values[k],
      unit: "ms",
      errors: k === "exit" ? errors : undefined,
      compare: before ? [`${label}: before`] : undefined,
    });
    if (before)
      ctx.results.add({
        section,
        group,
        label: `${label}: before`,
        short: "before",
        anchor: true,
        values: before.values[k],
        unit: "ms",
        errors: k === "exit" ? before.errors : undefined,
      });
  }
  const shutdownLabel = "qemu exited (10 servers stopped, sync, power-off)";
  ctx.results.add({
    section,
    group: "power-off asked →",
    label: shutdownLabel,
    values: shutdown,
    unit: "ms",
    compare: before ? [`${shutdownLabel}: before`] : undefined,
  });
  if (before)
    ctx.results.add({
      section,
      group: "power-off asked →",
      label: `${shutdownLabel}: before`,
      short: "before",
      anchor: true,
      values: before.shutdown,
      unit: "ms",
    });
  const size = (file) => fs.statSync(file).size / 2 ** 20;
  const disk = path.join(path.dirname(initrd), "payload.erofs");
  const image = fs.existsSync(disk)
    ? `a ${size(initrd).toFixed(0)} MiB initramfs and a ${size(disk).toFixed(0)} MiB erofs payload disk`
    : `a ${size(initrd).toFixed(0)} MiB initramfs`;
  ctx.results.note(
    section,
    `qemu ${qemuVersion()} \`-M microvm -cpu max -smp 2 -m 1024\` (qemu/boot.sh), Debian's kernel, ${image}${before ? `; before (${ctx.baseline.label}, its own qemu/ scripts): a ${size(before.initrd).toFixed(0)} MiB initramfs` : ""}. No anchor: the Starter cannot be PID 1, and tini does not boot servers. TCG emulates the CPU, so the servers start several times slower than on the host.`,
  );
  fs.rmSync(path.dirname(initrd), { recursive: true, force: true });
  if (before) fs.rmSync(path.dirname(before.initrd), { recursive: true, force: true });
}

function qemuVersion() {
  try {
    return /version ([\d.]+)/.exec(execFileSync("qemu-system-x86_64", ["--version"], { encoding: "utf8" }))?.[1] ?? "?";
  } catch {
    return "?";
  }
}
