// Workload 7: the init as PID 1 of a qemu microVM (TCG), with the microVM scripts of qemu/ (used as
// they are): qemu/kernel.sh fetches and caches the kernel, qemu/initramfs.sh builds an initramfs
// around test/bench/vm-boot.yaml (ten TangoTest at one level, then a one-shot that powers the VM off),
// qemu/boot.sh boots it. Timed from qemu's start, on its console.

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { BENCH_DIR, ROOT, now, spawnTracked } from "../lib/common.mjs";

const QEMU_DIR = path.join(ROOT, "qemu");
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;
const KERNEL_LINE = /^\[\s*\d+\.\d+\]/;
const SERVERS = 10;

function bootOnce(kernel, initrd) {
  return new Promise((resolve, reject) => {
    const started = now();
    const child = spawnTracked("bash", [path.join(QEMU_DIR, "boot.sh"), "--kernel", kernel, "--initrd", initrd, "--timeout", "240"], {
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
  const keys = [
    ["firstInitLine", "first line from the init"],
    ["allReady", `all ${SERVERS} servers ready`],
    ["shutdownStart", "power-off asked (a one-shot at level 2)"],
    ["exit", "qemu exited (powered off)"],
  ];
  const values = Object.fromEntries(keys.map(([k]) => [k, []]));
  const shutdown = [];
  const errors = [];
  for (let r = 0; r < ctx.runs.vm; r++) {
    ctx.progress(`vm: boot ${r + 1}/${ctx.runs.vm}`);
    try {
      const marks = await bootOnce(kernel, initrd);
      for (const [k] of keys) if (marks[k] !== undefined) values[k].push(marks[k]);
      if (marks.shutdownStart !== undefined) shutdown.push(marks.exit - marks.shutdownStart);
    } catch (err) {
      errors.push(err.message.split("\n")[0]);
      console.error(`  vm boot ${r + 1}: ${err.message}`);
    }
  }
  const group = "qemu start →";
  for (const [k, label] of keys) ctx.results.add({ section, group, label, values: values[k], unit: "ms", errors: k === "exit" ? errors : undefined });
  ctx.results.add({ section, group: "power-off asked →", label: "qemu exited (10 servers stopped, sync, power-off)", values: shutdown, unit: "ms" });
  const size = fs.statSync(initrd).size / 2 ** 20;
  ctx.results.note(
    section,
    `qemu ${qemuVersion()} \`-M microvm -cpu max -smp 2 -m 1024\` (qemu/boot.sh), Debian's kernel, an uncompressed ${size.toFixed(0)} MiB initramfs. No anchor: the Starter cannot be PID 1, and tini does not boot servers. TCG emulates the CPU, so the servers start several times slower than on the host.`,
  );
  fs.rmSync(path.dirname(initrd), { recursive: true, force: true });
}

function qemuVersion() {
  try {
    return /version ([\d.]+)/.exec(execFileSync("qemu-system-x86_64", ["--version"], { encoding: "utf8" }))?.[1] ?? "?";
  } catch {
    return "?";
  }
}
