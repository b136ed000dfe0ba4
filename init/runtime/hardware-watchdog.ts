// A VM's init pets the hardware watchdog from its event loop: a third of the timeout apart, so that
// one late timer does not reset the machine but a loop stuck for the whole timeout does. Kernel words:
//   starter.watchdog=<seconds>      the timeout asked of the device (default 30; "off": leave it closed)
//   starter.debug.wedge=<seconds>   debug only: that long after the watchdog is armed, the init blocks
//                                   its own event loop for good (the VM test of the reset)

import { consoleLine } from "../log/console";
import type { Logger } from "../log/logger";
import { adoptHardwareWatchdog, armHardwareWatchdog, WATCHDOG_DEVICE, type HardwareWatchdog } from "../pid1/watchdog";

const DEFAULT_TIMEOUT_S = 30;
/** The device appears a moment after its driver module is loaded (devtmpfs makes the node). */
const OPEN_TRIES = 20;
const OPEN_RETRY_MS = 100;

export function startHardwareWatchdog(log: Logger, kernel: ReadonlyMap<string, string>): void {
  const word = kernel.get("watchdog");
  if (word === "off") return;
  const timeoutS = word !== undefined && /^\d+$/.test(word) && Number(word) > 0 ? Number(word) : DEFAULT_TIMEOUT_S;
  if (word !== undefined && timeoutS === DEFAULT_TIMEOUT_S && word !== String(DEFAULT_TIMEOUT_S)) {
    log.warn(`starter.watchdog=${word}: not a number of seconds; ${DEFAULT_TIMEOUT_S} s`);
  }
  let tries = 0;
  const open = () => {
    let watchdog: HardwareWatchdog | null;
    try {
      watchdog = armHardwareWatchdog(timeoutS);
    } catch (err) {
      log.warn({ code: (err as NodeJS.ErrnoException).code }, `cannot arm the hardware watchdog ${WATCHDOG_DEVICE}; going on without`);
      return;
    }
    if (watchdog === null) {
      if (++tries < OPEN_TRIES) setTimeout(open, OPEN_RETRY_MS).unref();
      else log.debug(`no hardware watchdog (${WATCHDOG_DEVICE})`);
      return;
    }
    pet(log, watchdog);
    wedgeWhenAsked(log, kernel);
  };
  open();
}

/** In a re-executed init: the device the one before kept open across the exec, petted at once and from then on. */
export function resumeHardwareWatchdog(log: Logger, saved: { fd: number; timeoutS: number; identity: string; magicClose: boolean }): void {
  const watchdog = adoptHardwareWatchdog(saved);
  try {
    watchdog.pet();
  } catch (err) {
    log.error({ code: (err as NodeJS.ErrnoException).code }, "petting the hardware watchdog failed");
  }
  pet(log, watchdog, true);
}

function pet(log: Logger, watchdog: HardwareWatchdog, resumed = false): void {
  const everyMs = Math.max(200, (watchdog.timeoutS * 1000) / 3);
  const message = `hardware watchdog ${watchdog.identity}: ${watchdog.timeoutS} s, petted every ${(everyMs / 1000).toFixed(1)} s${watchdog.magicClose ? "" : " (no magic close: a power-off leaves it armed)"}${resumed ? " (kept open across the reexec)" : ""}`;
  // The console heard of it at the boot; a re-executed init tells its log only.
  const onConsole = !resumed && consoleLine(`[ BOOT ] ${message}`);
  log.info({ timeoutS: watchdog.timeoutS, ...(onConsole ? { onConsole } : {}) }, message);
  // Unref'd: the watchdog does not keep the init alive; the reaper does.
  setInterval(() => {
    try {
      watchdog.pet();
    } catch (err) {
      log.error({ code: (err as NodeJS.ErrnoException).code }, "petting the hardware watchdog failed");
    }
  }, everyMs).unref();
}

/** Debug only (starter.debug.wedge=<seconds>): block the event loop for good, as a bug might, to see the watchdog reset the VM. */
function wedgeWhenAsked(log: Logger, kernel: ReadonlyMap<string, string>): void {
  const word = kernel.get("debug.wedge");
  if (word === undefined || !/^\d+$/.test(word)) return;
  setTimeout(
    () => {
      const message = "starter.debug.wedge: blocking the event loop for good (the hardware watchdog should reset the VM)";
      const onConsole = consoleLine(`[DEBUG ] ${message}`);
      log.warn({ ...(onConsole ? { onConsole } : {}) }, message);
      for (;;) {
        // Nothing: a loop that never yields, as a wedged init's would.
      }
    },
    Number(word) * 1000,
  ).unref();
}
