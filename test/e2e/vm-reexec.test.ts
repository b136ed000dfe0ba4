// `reexec` inside the qemu microVM (TCG): the init, PID 1 of a real kernel with an armed hardware
// watchdog (ib700), replaces itself twice — `starter-init reexec`, then SIGRTMIN+1 as from the console —
// with two TangoTest servers and a flooder running; then the VM powers off cleanly. The kernel must
// never see PID 1 exit (no panic), the watchdog must never reset the VM, the servers keep their pids.
//
// What is asserted is read from the serial console: the init's own lines and the "check: …" lines of
// the one-shot test/fixtures/vm/reexec-check.sh.

import { beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { ROOT } from "../integration/helpers";
import { bootVm, expectLine, lineIndex, QEMU } from "./vm-console";

const FIXTURES = path.join(ROOT, "test", "fixtures", "vm");
const INITRD = path.join(ROOT, "build", "qemu", "test", "initramfs-reexec.cpio");
/** qemu is killed after this long at most (boot.sh --timeout). */
const BOOT_TIMEOUT_S = 300;
const TEST_TIMEOUT_MS = (BOOT_TIMEOUT_S + 30) * 1000;
/** The hardware watchdog's timeout (starter.watchdog=): a reexec under TCG must not go that long without a pet. */
const WATCHDOG_S = 10;

describe("microVM: reexec of PID 1", () => {
  let kernel: string;

  beforeAll(() => {
    kernel = execFileSync("bash", [path.join(QEMU, "kernel.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
    execFileSync(
      "bash",
      [path.join(QEMU, "initramfs.sh"), "--config", path.join(FIXTURES, "reexec.yaml"), "--configs", FIXTURES, "--load", "ib700wdt", "--out", INITRD],
      { stdio: ["ignore", "ignore", "inherit"] },
    );
  }, 300_000);

  it(
    "re-executes twice (the command, then SIGRTMIN+1) with every pid kept and the watchdog petted, then powers off cleanly",
    async () => {
      // With the ib700 watchdog and --reboot: a watchdog reset would boot the kernel again (stopped there).
      const boot = await bootVm({
        kernel,
        initrd: INITRD,
        timeoutS: BOOT_TIMEOUT_S,
        options: ["--memory", "1024", "--watchdog", "ib700", "--reboot"],
        words: [`starter.watchdog=${WATCHDOG_S}`],
        stopWhen: (lines) => (lines.filter((line) => line.text.includes("[ BOOT ] stage 1 (vm)")).length > 1 ? 0 : null),
      });
      const figures = ["[ BOOT ] stage 1 (vm)", "boot complete", "check: before", "check: after reexec", "check: after SIGRTMIN+1", "reboot: Power down"].map(
        (mark) => {
          const index = lineIndex(boot, mark);
          return `${mark} ${index < 0 ? "-" : `${(boot.lines[index].at / 1000).toFixed(1)} s`}`;
        },
      );
      console.log(`vm reexec: ${figures.join(", ")}`);

      expectLine(boot, new RegExp(`\\[ BOOT \\] hardware watchdog .*: ${WATCHDOG_S} s`));
      expect(boot.lines.filter((line) => line.text.includes("[ BOOT ] hardware watchdog"))).toHaveLength(1);
      const before = expectLine(boot, /check: before: TangoTest\/t01=\d+ TangoTest\/t02=\d+ flooder=\d+ checker=\d+ $/);
      // The command: checked, execed, and the new init answering with the same pid (1).
      // (The serial console may mangle the arrow between the versions.)
      expectLine(boot, /check: reexec \| reexec: re-executed 0\.1\.0 .+ 0\.1\.0 in [\d.]+ ms \(pid 1\); servers' output unread for [\d.]+ ms/, before);
      const first = expectLine(boot, /\[ {2}OK {2}\] re-executed: 0\.1\.0 → 0\.1\.0, 4 server\(s\) taken over/, before);
      expectLine(boot, "check: pids unchanged after reexec", first);
      // The console's way: SIGRTMIN+1.
      const second = expectLine(boot, /\[ {2}OK {2}\] re-executed: 0\.1\.0 → 0\.1\.0, 4 server\(s\) taken over/, first + 1);
      expectLine(boot, "check: after SIGRTMIN+1 (generation 2)", second);
      expectLine(boot, "check: pids unchanged after SIGRTMIN+1", second);
      const flood = expectLine(boot, /check: flooder lines (\d+), out of order 0, malformed 0/);
      expect(Number(/lines (\d+)/.exec(boot.lines[flood].text)![1])).toBeGreaterThan(100);

      // A clean power-off: the watchdog disarmed, no reset ever (one boot), no panic.
      const disarmed = expectLine(boot, "[ STOP ] hardware watchdog IB700 WDT disarmed (magic close)", flood);
      expectLine(boot, "reboot: Power down", disarmed);
      expect(boot.lines.filter((line) => line.text.includes("[ BOOT ] stage 1 (vm)"))).toHaveLength(1);
      expect(boot.text).not.toMatch(/Kernel panic|Attempted to kill init|WDT device closed unexpectedly/);
      expect(boot.stopped, "qemu was stopped: the VM booted again (a reset)").toBe(false);
      expect(boot.signal, boot.text).toBeNull();
      expect(boot.code, `qemu exit code (124: killed by the timeout); console:\n${boot.text}`).toBe(0);
    },
    TEST_TIMEOUT_MS,
  );
});
