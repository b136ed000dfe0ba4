// A VM's hardware watchdog (/dev/watchdog: qemu's ib700 or i6300esb, a real board's): open, it resets
// the machine unless it is written to within its timeout. The init pets it from its event loop
// (runtime/hardware-watchdog.ts), so a stuck loop means no pets and a reset; stage 3 disarms it with
// the magic close (write "V", then close) just before a clean power-off, halt or reboot.

import fs from "node:fs";
import { native } from "../native";
import { consoleLine } from "../log/console";
import type { Logger } from "../log/logger";

export const WATCHDOG_DEVICE = "/dev/watchdog";

export class HardwareWatchdog {
  private closed = false;

  constructor(
    private readonly fd: number,
    /** The timeout the device took, in seconds. */
    readonly timeoutS: number,
    readonly identity: string,
    readonly magicClose: boolean,
  ) {}

  handover(): { fd: number; timeoutS: number; identity: string; magicClose: boolean } {
    return { fd: this.fd, timeoutS: this.timeoutS, identity: this.identity, magicClose: this.magicClose };
  }

  /** Any byte but "V" restarts the countdown. */
  pet(): void {
    if (!this.closed) fs.writeSync(this.fd, "\n");
  }

  /** The magic close: a driver that honours it stops counting; others go on and reset later. */
  disarm(): boolean {
    if (this.closed) return true;
    this.closed = true;
    try {
      fs.writeSync(this.fd, "V");
    } finally {
      fs.closeSync(this.fd);
    }
    return this.magicClose;
  }
}

/** The watchdog armed now, for stage 3 to disarm. */
let armed: HardwareWatchdog | null = null;

/** The watchdog armed now (a reexec hands its fd to the new init), or null. */
export function armedHardwareWatchdog(): { fd: number; timeoutS: number; identity: string; magicClose: boolean } | null {
  return armed ? armed.handover() : null;
}

/** In a re-executed init: the device the init before kept open, petted from here on. */
export function adoptHardwareWatchdog(saved: { fd: number; timeoutS: number; identity: string; magicClose: boolean }): HardwareWatchdog {
  armed = new HardwareWatchdog(saved.fd, saved.timeoutS, saved.identity, saved.magicClose);
  return armed;
}

/** Opens (and so arms) the device with this timeout; null when there is none. */
export function armHardwareWatchdog(timeoutS: number): HardwareWatchdog | null {
  let fd: number;
  try {
    fd = fs.openSync(WATCHDOG_DEVICE, "w");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
  try {
    let info = { identity: "watchdog", magicClose: false, settableTimeout: false };
    try {
      info = native().watchdogInfo(fd);
    } catch {
      // A driver without WDIOC_GETSUPPORT: nothing known of it.
    }
    const taken = info.settableTimeout ? native().watchdogSetTimeout(fd, timeoutS) : timeoutS;
    armed = new HardwareWatchdog(fd, taken, info.identity, info.magicClose);
    return armed;
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}

/** Stage 3, right before reboot(2): a clean power-off, halt or reboot must not be followed by a watchdog reset. */
export function disarmHardwareWatchdog(log: Logger): void {
  const watchdog = armed;
  if (!watchdog) return;
  armed = null;
  try {
    const disarmed = watchdog.disarm();
    const message = disarmed
      ? `hardware watchdog ${watchdog.identity} disarmed (magic close)`
      : `hardware watchdog ${watchdog.identity} has no magic close: it stays armed`;
    const onConsole = consoleLine(`[ STOP ] ${message}`);
    log[disarmed ? "info" : "warn"]({ ...(onConsole ? { onConsole } : {}) }, message);
  } catch (err) {
    log.warn({ code: (err as NodeJS.ErrnoException).code }, "disarming the hardware watchdog failed");
  }
}
