// The init as PID 1 of a qemu microVM with cgroup v2 (mounted in stage 1, controllers enabled) and
// an ib700 hardware watchdog (its module loaded by the init from the initramfs): per-server cgroups,
// an OOM kill, a real daemon under type: forking, and the watchdog's reset of a wedged init. Two boots
// (TCG is slow): one checks everything the init does while healthy and ends with a halt that must not
// be followed by a reset; the other wedges the init and must be reset.
//
// What is asserted is read from the serial console: the init's own lines and the "check: …" lines of
// the one-shot test/fixtures/vm/cgroups-check.sh.

import { beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { ROOT } from "../integration/helpers";
import { bootVm as bootQemu, expectLine, lineIndex, QEMU, type Boot, type ConsoleLine } from "./vm-console";

const FIXTURES = path.join(ROOT, "test", "fixtures", "vm");
const INITRD = path.join(ROOT, "build", "qemu", "test", "initramfs-cgroups.cpio");
/** qemu is killed after this long at most (boot.sh --timeout). */
const BOOT_TIMEOUT_S = 240;
const TEST_TIMEOUT_MS = (BOOT_TIMEOUT_S + 30) * 1000;
/** The hardware watchdog's timeout asked with starter.watchdog= (ib700 takes 0 to 30 s). */
const WATCHDOG_S = 10;

/**
 * Boots with a watchdog device and without -no-reboot (a reset boots the kernel again); stopWhen is
 * asked after each console line and ends qemu when it says so: after the milliseconds it returns
 * (0: at once), or never (null).
 */
function bootVm(kernel: string, words: string[], stopWhen: (lines: ConsoleLine[]) => number | null, options: { verbose?: boolean } = {}): Promise<Boot> {
  const bootOptions = ["--memory", "768", "--watchdog", "ib700", "--reboot", ...(options.verbose ? ["--verbose"] : [])];
  return bootQemu({ kernel, initrd: INITRD, timeoutS: BOOT_TIMEOUT_S, options: bootOptions, words, stopWhen });
}

function seconds(boot: Boot, from: number, to: number): number {
  return (boot.lines[to].at - boot.lines[from].at) / 1000;
}

describe("microVM with cgroup v2 and a hardware watchdog", () => {
  let kernel: string;

  beforeAll(() => {
    kernel = execFileSync("bash", [path.join(QEMU, "kernel.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
    execFileSync(
      "bash",
      [
        path.join(QEMU, "initramfs.sh"),
        "--config",
        path.join(FIXTURES, "cgroups.yaml"),
        "--configs",
        FIXTURES,
        "--with",
        "busybox",
        "--with",
        "rsync",
        "--load",
        "ib700wdt",
        "--out",
        INITRD,
      ],
      { stdio: ["ignore", "ignore", "inherit"] },
    );
  }, 300_000);

  it(
    "servers in cgroups: a double fork stopped completely, an OOM kill reported and restarted, memory in status, rsync --daemon tracked, its crash seen, its stop complete; a halt is not followed by a watchdog reset",
    async () => {
      // Once halted, the VM is watched for two watchdog periods more: a reset would boot the kernel again.
      // loglevel=3: the kernel's own OOM reports (KERN_ERR) would cut the status lines on the console
      // at random; "System halted" (KERN_EMERG) still shows.
      const boot = await bootVm(kernel, [`starter.watchdog=${WATCHDOG_S}`, "loglevel=3"], (lines) =>
        lines.at(-1)?.text.includes("reboot: System halted") ? 2 * WATCHDOG_S * 1000 : null,
      );
      const figures = ["[ BOOT ] stage 1", "boot complete", "check: halting", "reboot: System halted"].map((mark) => {
        const index = lineIndex(boot, mark);
        return `${mark} ${index < 0 ? "-" : `${(boot.lines[index].at / 1000).toFixed(1)} s`}`;
      });
      console.log(`vm cgroups: ${figures.join(", ")}`);

      // Stage 1: cgroup2 mounted, the watchdog's module loaded, the watchdog armed and the tree set up.
      expectLine(boot, /\[ BOOT \] stage 1 \(vm\): .*cgroup2/);
      expectLine(boot, /\[ BOOT \] stage 1: loaded .*\bib700wdt\b/);
      expectLine(boot, new RegExp(`\\[ BOOT \\] hardware watchdog .*: ${WATCHDOG_S} s, petted every 3\\.3 s`));
      expectLine(boot, "check: controllers cpu io memory pids");
      expectLine(boot, "check: init in 0::/init, oom_score_adj -1000; a server's 0");
      expectLine(boot, "check: hog memory.max 25165824 pids.max 16 cpu.weight 50");

      // status shows each server's memory, CPU time and processes.
      const header = expectLine(boot, /check: status \| SERVER .* MEM +CPU +PROCS/);
      expectLine(boot, /check: status \| rsyncd +ready .* \d+\.\d MiB +\d+\.\d\d s +1 /, header);
      expectLine(boot, /check: status \| doublefork +ready .* \d+\.\d MiB +\d+\.\d\d s +2 /, header);

      // The double fork: two processes in its cgroup, none alive after the stop.
      expectLine(boot, /check: doublefork processes: \d+ \d+$/);
      expectLine(boot, "check: doublefork after stop: alive [] cgroup []");

      // The OOM kill: reported as such by the init, and restarted.
      expectLine(boot, /\[ EXIT \] hog killed by the OOM killer after [\d.]+ m?s; restarting in 2000 ms/);
      const oom = expectLine(boot, "check: hog oom-killed");
      expectLine(boot, /\[ {2}OK {2}\] hog ready in/, lineIndex(boot, "[ EXIT ] hog killed by the OOM killer"));
      expect(oom).toBeGreaterThan(0);
      expectLine(boot, /check: status \| hog +\w+ .* killed by SIGKILL \(oom-killed\)/, oom);

      // rsync --daemon: its daemon found in its cgroup, its crash seen and restarted, its stop complete.
      const main = expectLine(boot, /check: rsyncd main (\d+) cgroup \[(\d+)\]$/);
      const [, pid, member] = /check: rsyncd main (\d+) cgroup \[(\d+)\]$/.exec(boot.lines[main].text)!;
      expect(pid).toBe(member);
      expectLine(boot, /\[ EXIT \] rsyncd killed by SIGSEGV after [\d.]+ m?s; restarting in/);
      const again = expectLine(boot, /check: rsyncd after SIGSEGV: main (\d+)$/);
      expect(/main (\d+)$/.exec(boot.lines[again].text)![1]).not.toBe(pid);
      expectLine(boot, /check: rsyncd with a client: cgroup \[\d+ \d+\]$/);
      expectLine(boot, "check: rsyncd after stop: alive [] rsync []");

      // The halt: servers stopped, the watchdog disarmed, and no reset for two of its periods after.
      const halting = expectLine(boot, "check: halting");
      const disarmed = expectLine(boot, "[ STOP ] hardware watchdog IB700 WDT disarmed (magic close)", halting);
      expectLine(boot, "reboot: System halted", disarmed);
      // (ib700wdt also stops itself at the kernel's halt; a close without the magic "V" would be told.)
      expect(boot.text).not.toContain("WDT device closed unexpectedly");
      expect(boot.stopped, "qemu still running two watchdog periods after the halt").toBe(true);
      expect(boot.lines.filter((line) => line.text.includes("[ BOOT ] stage 1 (vm)"))).toHaveLength(1);
      expect(boot.text).not.toMatch(/Kernel panic|check: .* not /);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "an init whose event loop is wedged (starter.debug.wedge) stops petting the watchdog: the VM resets within its timeout",
    async () => {
      const boot = await bootVm(
        kernel,
        [`starter.watchdog=${WATCHDOG_S}`, "starter.debug.wedge=5", "starter.config=/etc/starter-init/vm/wedge.yaml"],
        // The second boot of the kernel is the reset's proof: stop there.
        (lines) => (lines.filter((line) => line.text.includes("Linux version")).length >= 2 ? 0 : null),
        { verbose: true },
      );
      const armed = expectLine(boot, new RegExp(`\\[ BOOT \\] hardware watchdog .*: ${WATCHDOG_S} s`));
      const wedged = expectLine(boot, "[DEBUG ] starter.debug.wedge: blocking the event loop for good", armed);
      const rebooted = expectLine(boot, "Linux version", wedged);
      const after = seconds(boot, wedged, rebooted);
      console.log(`vm wedge: reset ${after.toFixed(1)} s after the wedge (watchdog ${WATCHDOG_S} s)`);
      // The last pet came at most a third of the timeout before the wedge; qemu under TCG adds its delay.
      expect(after).toBeGreaterThan(WATCHDOG_S * (2 / 3) - 1);
      expect(after).toBeLessThan(WATCHDOG_S + 5);
      // Nothing else restarted it: no panic, no power-off, no reboot asked of the kernel.
      expect(boot.text).not.toMatch(/Kernel panic|reboot: (Power down|Restarting system|System halted)/);
    },
    TEST_TIMEOUT_MS,
  );
});
