// The init as PID 1 of a real Linux kernel: a qemu microVM (TCG) booting an initramfs built from the
// assembled root, every assertion made on what the serial console shows.
//
// One initramfs serves the three boots: its /etc/starter-init/config.yaml is test/fixtures/vm/boot.yaml
// and the other fixtures are in /etc/starter-init/vm/, chosen with the kernel word starter.config=.

import { beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { ROOT } from "../integration/helpers";
import { bootVm as bootQemu, expectLine, lineIndex, QEMU, type Boot } from "./vm-console";

const FIXTURES = path.join(ROOT, "test", "fixtures", "vm");
const INITRD = path.join(ROOT, "build", "qemu", "test", "initramfs.cpio");
/** qemu is killed after this long (boot.sh --timeout); a boot takes 10–25 s here. */
const BOOT_TIMEOUT_S = 150;
const TEST_TIMEOUT_MS = (BOOT_TIMEOUT_S + 20) * 1000;

function bootVm(kernel: string, words: string[], options: { initrd?: string; memory?: number } = {}): Promise<Boot> {
  const memory = options.memory ? ["--memory", String(options.memory)] : [];
  return bootQemu({ kernel, initrd: options.initrd ?? INITRD, timeoutS: BOOT_TIMEOUT_S, options: memory, words });
}

/** A clean power-off initiated from inside: qemu exited 0 after the kernel's "Power down". */
function expectCleanPowerOff(boot: Boot): void {
  expect(boot.text).not.toMatch(/Kernel panic/);
  expect(boot.text).not.toMatch(/Attempted to kill init/);
  expect(boot.signal, boot.text).toBeNull();
  expect(boot.code, `qemu exit code (124: killed by the timeout); console:\n${boot.text}`).toBe(0);
  const syncing = expectLine(boot, "poweroff: syncing and calling reboot(2)");
  expectLine(boot, "reboot: Power down", syncing);
}

function report(what: string, boot: Boot, marks: Record<string, RegExp | string>): void {
  const figures = Object.entries(marks).map(([name, pattern]) => {
    const index = lineIndex(boot, pattern);
    return `${name} ${index < 0 ? "-" : `${(boot.lines[index].at / 1000).toFixed(2)} s`}`;
  });
  console.log(`vm ${what}: ${figures.join(", ")}, end ${(boot.lines.at(-1)!.at / 1000).toFixed(2)} s`);
}

const TANGO_LEVELS: Record<number, string[]> = {
  1: ["TangoTest/t01", "TangoTest/t02"],
  2: ["TangoTest/t03", "TangoTest/t04"],
  3: ["TangoTest/t05", "TangoTest/t06"],
};

describe("microVM: the init as PID 1 of a Linux kernel (qemu, TCG)", () => {
  let kernel: string;

  beforeAll(() => {
    kernel = execFileSync("bash", [path.join(QEMU, "kernel.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
    execFileSync("bash", [path.join(QEMU, "initramfs.sh"), "--config", path.join(FIXTURES, "boot.yaml"), "--configs", FIXTURES, "--out", INITRD], {
      stdio: ["ignore", "ignore", "inherit"],
    });
  }, 300_000);

  it(
    "boots TangoTest servers by levels, then powers off cleanly from inside",
    async () => {
      const boot = await bootVm(kernel, []);
      report("boot", boot, { "first init line": "stage 1 (vm)", "all ready": "boot complete", "power down": "reboot: Power down" });
      expectCleanPowerOff(boot);

      // Stage 1, as a one-shot at level 4 sees it: every early mount, the host name, lo up (the
      // servers below answer on 127.0.0.1 only when it is).
      const reportAt = expectLine(boot, /^report \| /);
      for (const [target, type] of [
        ["/proc", "proc"],
        ["/sys", "sysfs"],
        ["/dev", "devtmpfs"],
        ["/dev/pts", "devpts"],
        ["/dev/shm", "tmpfs"],
        ["/run", "tmpfs"],
        ["/tmp", "tmpfs"],
      ]) {
        expectLine(boot, new RegExp(`^report \\| \\S+ ${target.replace(/\//g, "\\/")} ${type} `));
      }
      expectLine(boot, "report | hostname=starter");
      // And the init's own account of stage 1 on the console, before anything else starts.
      const stage1 = expectLine(
        boot,
        /\[ BOOT \] stage 1 \(vm\): mounted \/proc \/sys \/dev \/dev\/pts \/dev\/shm \/run \/tmp, console on \/dev\/console, .*host name starter, lo up/,
      );
      expect(stage1).toBeLessThan(expectLine(boot, "[ BOOT ] boot: levels"));
      // The console says each thing once: the log's info records went to its file, not to the console.
      expect(boot.text).not.toContain("supervisor starting");

      // Every server ready, level after level, all before level 4 ran.
      const readyAt = new Map<string, number>();
      for (const names of Object.values(TANGO_LEVELS)) {
        for (const name of names) readyAt.set(name, expectLine(boot, new RegExp(`\\[  OK  \\] ${name} ready in \\d`)));
      }
      for (const level of [1, 2]) {
        const lastOfLevel = Math.max(...TANGO_LEVELS[level].map((name) => readyAt.get(name)!));
        const firstOfNext = Math.min(...TANGO_LEVELS[level + 1].map((name) => readyAt.get(name)!));
        expect(lastOfLevel, `level ${level} ready before level ${level + 1}`).toBeLessThan(firstOfNext);
      }
      expect(Math.max(...readyAt.values())).toBeLessThan(reportAt);
      const complete = expectLine(boot, "[ BOOT ] boot complete");

      // The power-off: asked from inside after the boot, servers stopped in reverse level order.
      const shutdown = expectLine(boot, /\[ STOP \] shutdown: stopping \d+ servers/, complete);
      const stoppedAt = new Map<string, number>();
      for (const names of Object.values(TANGO_LEVELS)) {
        for (const name of names) stoppedAt.set(name, expectLine(boot, `[ STOP ] ${name} stopped`, shutdown));
      }
      for (const level of [3, 2]) {
        const lastOfLevel = Math.max(...TANGO_LEVELS[level].map((name) => stoppedAt.get(name)!));
        const firstOfNext = Math.min(...TANGO_LEVELS[level - 1].map((name) => stoppedAt.get(name)!));
        expect(lastOfLevel, `level ${level} stopped before level ${level - 1}`).toBeLessThan(firstOfNext);
      }
      expectLine(boot, "every server has stopped", shutdown);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "reports a broken config with file:line and powers off (starter.onfailure=poweroff)",
    async () => {
      const boot = await bootVm(kernel, ["starter.config=/etc/starter-init/vm/broken.yaml", "starter.onfailure=poweroff"]);
      report("broken config", boot, { error: "config error", "power down": "reboot: Power down" });
      expectCleanPowerOff(boot);
      const error = expectLine(boot, "config error");
      expectLine(boot, /\/etc\/starter-init\/vm\/broken\.yaml:6:\d+: settings\.defaults\.stopTimeout: .*"5 parsecs"/, error);
      expectLine(boot, /\/etc\/starter-init\/vm\/broken\.yaml:12:\d+: servers\[0\]\.restrat: .*"restart"/, error);
      expect(boot.text).not.toContain("Ready to accept request");
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "restarts a server killed with SIGKILL inside the VM",
    async () => {
      const boot = await bootVm(kernel, ["starter.config=/etc/starter-init/vm/kill.yaml"]);
      report("kill -9", boot, { "first init line": "stage 1 (vm)", killed: "killer: kill -9", "ready again": "killer: TangoTest t01 runs again" });
      expectCleanPowerOff(boot);
      const firstReady = expectLine(boot, /\[ {2}OK {2}\] TangoTest\/t01 ready in \d/);
      const kill = expectLine(boot, /^killer \| killer: kill -9 \d+ \(TangoTest t01\)/, firstReady);
      // One line for the crash and what follows from it.
      const died = expectLine(boot, /\[ EXIT \] TangoTest\/t01 killed by SIGKILL after [\d.]+ m?s; restarting in \d/, kill);
      const restarting = died;
      const readyAgain = expectLine(boot, /\[ {2}OK {2}\] TangoTest\/t01 ready in \d/, restarting);
      // …and serves again: the one-shot connects to its port before it powers the VM off.
      expectLine(boot, "killer | killer: port 23001 accepts again", restarting);
      const shutdown = expectLine(boot, /\[ STOP \] shutdown: stopping \d+ servers/);
      expect(readyAgain).toBeLessThan(shutdown);
      // t02 was not touched: ready once, never restarted.
      expect(boot.lines.filter((line) => /\[ {2}OK {2}\] TangoTest\/t02 ready in/.test(line.text))).toHaveLength(1);
      expect(boot.text).not.toMatch(/TangoTest\/t02 (killed|restarting)/);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "a hanging preStart delays no other server and fails its own at its timeout; one that ignores TERM is ended at the shutdown deadline: clean power-off",
    async () => {
      const boot = await bootVm(kernel, ["starter.config=/etc/starter-init/vm/hang.yaml"]);
      report("hanging preStart", boot, {
        "first init line": "stage 1 (vm)",
        "t01 ready": "TangoTest/t01 ready in",
        "a failed": "a failed: pre-start-timeout",
        "power-off asked": "waiter: a settled",
        deadline: "shutdown deadline reached",
        "power down": "reboot: Power down",
      });
      expectCleanPowerOff(boot);
      const starting = expectLine(boot, "[ BOOT ] boot: levels");
      const ready = expectLine(boot, /\[ {2}OK {2}\] TangoTest\/t01 ready in \d/, starting);
      const timedOut = expectLine(boot, "[FAILED] a preStart did not finish within 2000 ms", starting);
      const failed = expectLine(boot, "[FAILED] a failed: pre-start-timeout", timedOut);
      // t01 did not wait for a's hook: it was forked (its ready time before its ready line) before the
      // hook timed out — under TCG on a busy host its own start may take longer than the 2 s hook.
      const [, amount, unit] = /ready in ([\d.]+) (ms|s)\b/.exec(boot.lines[ready].text) ?? [];
      const readyInMs = Number(amount) * (unit === "s" ? 1000 : 1);
      expect(boot.lines[ready].at - readyInMs).toBeLessThan(boot.lines[timedOut].at);
      // a failed at its timeout, not when the hook would have ended (30 s).
      const hookTime = (boot.lines[timedOut].at - boot.lines[starting].at) / 1000;
      // (Seen on the console: the boot line itself comes a little after the hook was forked.)
      expect(hookTime).toBeGreaterThanOrEqual(1.8);
      expect(hookTime).toBeLessThan(15);
      expect(boot.text).not.toMatch(/\] a started pid/);
      // The power-off: c's hook ignores TERM and is SIGKILLed at the 3 s deadline; nothing else waits.
      const shutdown = expectLine(boot, /\[ STOP \] shutdown: stopping \d+ servers/, failed);
      const deadline = expectLine(boot, "[ KILL ] shutdown deadline reached", shutdown);
      const powerDown = expectLine(boot, "reboot: Power down", deadline);
      const shutdownSeconds = (boot.lines[powerDown].at - boot.lines[shutdown].at) / 1000;
      expect(shutdownSeconds).toBeGreaterThanOrEqual(3);
      expect(shutdownSeconds).toBeLessThan(10);
    },
    TEST_TIMEOUT_MS,
  );
});

describe("microVM: a whole Tango system with the host's Starter device (sources.tango.device)", () => {
  const initrd = path.join(ROOT, "build", "qemu", "test", "initramfs-tango-system.cpio");
  let kernel: string;

  beforeAll(() => {
    kernel = execFileSync("bash", [path.join(QEMU, "kernel.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
    const payloads = ["busybox", "tango", "tango-db", "starter-device"].flatMap((payload) => ["--with", payload]);
    execFileSync(
      "bash",
      [path.join(QEMU, "initramfs.sh"), "--config", path.join(FIXTURES, "tango-system.yaml"), "--configs", FIXTURES, ...payloads, "--out", initrd],
      { stdio: ["ignore", "ignore", "inherit"] },
    );
  }, 300_000);

  it(
    "MariaDB, DataBaseds, the database's servers and tango/admin/starter; Astor's calls through the device stop and start a server",
    async () => {
      // The initramfs holds MariaDB, Python and PyTango (≈ 280 MiB): it unpacks into RAM.
      const boot = await bootVm(kernel, [], { initrd, memory: 2048 });
      report("tango system with the Starter device", boot, {
        "device ready": "Starter/starter ready in",
        "Astor's view": "astor: servers",
        "power down": "reboot: Power down",
      });
      expectCleanPowerOff(boot);
      expectLine(boot, "astor: starters ['tango/admin/starter']");
      expectLine(boot, "astor: servers TangoTest/demo1=ON TangoTest/demo2=ON TangoTest/demo3=ON TangoTest/demo4=ON TangoTest/spare=FAULT");
      const stop = expectLine(boot, "astor: DevStop TangoTest/demo1: FAULT");
      expectLine(boot, /\[ STOP \] TangoTest\/demo1 stopped/);
      expectLine(boot, "astor: DevStart TangoTest/demo1: ON", stop);
      expect(boot.text).not.toContain("astor: failed");
      // The device stops with the others, before DataBaseds.
      const shutdown = expectLine(boot, /\[ STOP \] shutdown: stopping \d+ servers/);
      const deviceStopped = expectLine(boot, "[ STOP ] Starter/starter stopped", shutdown);
      expect(deviceStopped).toBeLessThan(expectLine(boot, "[ STOP ] DataBaseds/2 stopped", shutdown));
    },
    TEST_TIMEOUT_MS * 2,
  );
});
