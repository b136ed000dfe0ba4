// Stage 3: after the supervised servers are stopped, end whatever is left and leave.
//
// Leftovers get SIGTERM, a grace period, then SIGKILL (what tini and dumb-init users miss). As PID 1
// that is kill(-1); as a subreaper it is every descendant found in /proc. A VM's PID 1 then syncs,
// remounts read-only and calls reboot(2); it never returns from here.

import fs from "node:fs";
import { performance } from "node:perf_hooks";
import { native } from "../native";
import { consoleLine } from "../log/console";
import type { Logger } from "../log/logger";
import { reaper } from "../process/reaper";
import type { Role } from "./environment";
import { mountPoints } from "./mounts";
import { disarmHardwareWatchdog } from "./watchdog";

const POLL_MS = 25;
const KILL_WAIT_MS = 3000;

/** Pids of every live descendant of `root`, from the ppid links in /proc (zombies excluded). */
export function descendants(root: number): number[] {
  const childrenOf = new Map<number, number[]>();
  let entries: string[];
  try {
    entries = fs.readdirSync("/proc");
  } catch {
    return [];
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      // The command name may contain spaces and parentheses: fields start after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (fields[0] === "Z") continue;
      const ppid = Number(fields[1]);
      const siblings = childrenOf.get(ppid);
      if (siblings) siblings.push(Number(entry));
      else childrenOf.set(ppid, [Number(entry)]);
    } catch {
      // The process ended while we looked.
    }
  }
  const found: number[] = [];
  const frontier = [root];
  while (frontier.length) {
    for (const pid of childrenOf.get(frontier.pop()!) ?? []) {
      found.push(pid);
      frontier.push(pid);
    }
  }
  return found;
}

function signalLeftovers(signal: NodeJS.Signals, isPid1: boolean): number {
  if (isPid1) {
    const left = descendants(1).length;
    if (left > 0) {
      try {
        process.kill(-1, signal);
      } catch {
        // ESRCH: nothing left to signal.
      }
    }
    return left;
  }
  const pids = descendants(process.pid);
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // Gone already.
    }
  }
  return pids.length;
}

/** Resolves true once no descendant is left, false at deadlineMs (monotonic: a clock step cannot stretch or cut the wait). */
function waitUntilNoneLeft(deadlineMs: number): Promise<boolean> {
  const root = process.pid;
  return new Promise((resolve) => {
    const check = () => {
      if (descendants(root).length === 0) return resolve(true);
      if (performance.now() >= deadlineMs) return resolve(false);
      setTimeout(check, POLL_MS);
    };
    check();
  });
}

/** TERM → grace → KILL for every process still alive besides the init. Resolves when none is left. */
export async function endLeftovers(log: Logger, graceMs: number): Promise<void> {
  const isPid1 = process.pid === 1;
  const termed = signalLeftovers("SIGTERM", isPid1);
  if (termed === 0) return;
  log.info({ count: termed, graceMs }, `sent SIGTERM to ${termed} leftover process(es)`);
  if (await waitUntilNoneLeft(performance.now() + graceMs)) return;
  const killed = signalLeftovers("SIGKILL", isPid1);
  log.warn({ count: killed }, `sent SIGKILL to ${killed} process(es) still alive after ${graceMs} ms`);
  if (!(await waitUntilNoneLeft(performance.now() + KILL_WAIT_MS))) {
    log.error({ left: descendants(process.pid) }, "processes survive SIGKILL (uninterruptible sleep?)");
  }
}

export type PowerAction = "poweroff" | "restart" | "halt";

/** Remounts every mount read-only, deepest first, so nothing is left dirty; errors are expected. */
function remountReadOnly(log: Logger): void {
  let targets: string[];
  try {
    targets = [...mountPoints(fs.readFileSync("/proc/self/mountinfo", "utf8"))].reverse();
  } catch {
    return;
  }
  for (const target of targets) {
    try {
      native().mount({ source: "", target, type: "", flags: ["remount", "rdonly"] });
    } catch (err) {
      log.debug({ target, code: (err as NodeJS.ErrnoException).code }, "remount read-only failed");
    }
  }
}

/**
 * The end of a VM's PID 1: sync, remount read-only, reboot(2). Returns only if reboot(2) failed, in
 * which case the caller keeps the process alive (exiting would panic the kernel).
 */
export function powerOff(log: Logger, action: PowerAction): void {
  const message = `${action}: syncing and calling reboot(2)`;
  const onConsole = consoleLine(`[ STOP ] ${message}`);
  log.info({ action, orphansReaped: reaper.orphansReaped, ...(onConsole ? { onConsole } : {}) }, message);
  try {
    native().sync();
  } catch (err) {
    log.warn({ code: (err as NodeJS.ErrnoException).code }, "sync failed");
  }
  remountReadOnly(log);
  // A clean end is no reason for the watchdog to reset the machine afterwards (halt leaves it running).
  disarmHardwareWatchdog(log);
  try {
    native().sync();
    native().reboot(action);
  } catch (err) {
    log.error({ code: (err as NodeJS.ErrnoException).code }, `reboot(2) failed; staying up`);
  }
}

/** What a role does at the very end: exit with a code, or (VM) power off and never return. */
export function finish(log: Logger, role: Role, exitCode: number, action: PowerAction = "poweroff"): void {
  if (role !== "vm") {
    process.exitCode = exitCode;
    // Exit now: a ref'd reaper socket would otherwise keep the loop alive.
    process.exit(exitCode);
  }
  powerOff(log, action);
  // Still here: reboot(2) failed. Keep reaping forever rather than panic the kernel.
}
