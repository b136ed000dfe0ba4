// A qemu microVM booted through qemu/boot.sh, its serial console captured line by line with the time
// each line came (the e2e VM tests assert on what the console shows).

import { spawn } from "node:child_process";
import path from "node:path";
import { expect } from "vitest";
import { ROOT } from "../integration/helpers";

export const QEMU = path.join(ROOT, "qemu");

export interface ConsoleLine {
  /** Milliseconds since qemu was started. */
  at: number;
  text: string;
}

export interface Boot {
  code: number | null;
  signal: NodeJS.Signals | null;
  lines: ConsoleLine[];
  /** The whole console, without colours and carriage returns. */
  text: string;
  /** Whether the test ended qemu (stopWhen), rather than qemu ending by itself. */
  stopped: boolean;
}

export interface BootOptions {
  kernel: string;
  initrd: string;
  /** qemu is killed after this long at most (boot.sh --timeout). */
  timeoutS: number;
  /** More boot.sh options (--memory, --watchdog, …). */
  options?: string[];
  /** Kernel command-line words. */
  words?: string[];
  /**
   * Asked after each console line: ends qemu after the milliseconds it returns (0: at once), or never
   * (null, or no stopWhen).
   */
  stopWhen?: (lines: ConsoleLine[]) => number | null;
}

const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;
const clean = (text: string) => text.replace(ANSI, "").replace(/\r/g, "");

export function bootVm({ kernel, initrd, timeoutS, options = [], words = [], stopWhen }: BootOptions): Promise<Boot> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const args = ["--kernel", kernel, "--initrd", initrd, ...options, "--timeout", String(timeoutS), "--", ...words];
    const child = spawn("bash", [path.join(QEMU, "boot.sh"), ...args], { stdio: ["ignore", "pipe", "pipe"] });
    const lines: ConsoleLine[] = [];
    let partial = "";
    let stopped = false;
    let stopping: NodeJS.Timeout | null = null;
    const take = (chunk: Buffer) => {
      const at = performance.now() - started;
      const parts = (partial + chunk.toString("utf8")).split("\n");
      partial = parts.pop()!;
      for (const part of parts) lines.push({ at, text: clean(part) });
      const after = stopping === null && stopWhen ? stopWhen(lines) : null;
      if (after === null) return;
      stopping = setTimeout(() => {
        stopped = true;
        child.kill("SIGTERM");
      }, after);
    };
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (stopping !== null) clearTimeout(stopping);
      if (partial) lines.push({ at: performance.now() - started, text: clean(partial) });
      resolve({ code, signal, lines, stopped, text: lines.map((line) => line.text).join("\n") });
    });
  });
}

/** Index of the first console line matching, at or after `from`; -1 when none. */
export function lineIndex(boot: Boot, pattern: RegExp | string, from = 0): number {
  for (let i = from; i < boot.lines.length; i++) {
    const text = boot.lines[i].text;
    if (typeof pattern === "string" ? text.includes(pattern) : pattern.test(text)) return i;
  }
  return -1;
}

export function expectLine(boot: Boot, pattern: RegExp | string, from = 0): number {
  const index = lineIndex(boot, pattern, from);
  expect(index, `console line ${String(pattern)} (after line ${from}) in:\n${boot.text}`).toBeGreaterThanOrEqual(0);
  return index;
}
