// Where the init runs: PID 1 of a VM, PID 1 of a container, or a plain process (subreaper).

import fs from "node:fs";
import type { Logger } from "../log/logger";

/** Inode of the root PID namespace (PROC_PID_INIT_INO in the kernel). */
const ROOT_PID_NAMESPACE = "pid:[4026531836]";

export type Role = "vm" | "container" | "subreaper";

/**
 * PID 1 in the root PID namespace is a VM's (or a machine's) init; PID 1 elsewhere is a container's.
 * `/.dockerenv` is not a reliable sign. Needs /proc: call after it is mounted.
 */
export function detectRole(pid = process.pid): Role {
  if (pid !== 1) return "subreaper";
  try {
    return fs.readlinkSync("/proc/self/ns/pid") === ROOT_PID_NAMESPACE ? "vm" : "container";
  } catch {
    // No /proc even after stage 1 tried to mount it: only a VM's first moments look like this.
    return "vm";
  }
}

/** `starter.key=value` words of the kernel command line (quotes are stripped by the kernel). */
export function kernelWords(cmdline?: string): Map<string, string> {
  let text = cmdline;
  if (text === undefined) {
    try {
      text = fs.readFileSync("/proc/cmdline", "utf8");
    } catch {
      return new Map();
    }
  }
  const words = new Map<string, string>();
  for (const word of text.trim().split(/\s+/)) {
    const match = /^starter\.([A-Za-z0-9_.-]+)=(.*)$/.exec(word);
    if (match) words.set(match[1].toLowerCase(), match[2]);
  }
  return words;
}

/**
 * Moves the init to / so that it keeps no directory or mount busy (an unmount, a volume), as
 * dumb-init does. Returns the directory it was in, or null when it could not be read.
 */
export function leaveWorkingDirectory(log: Logger): string | null {
  let previous: string | null = null;
  try {
    previous = process.cwd();
  } catch (err) {
    log.debug({ code: (err as NodeJS.ErrnoException).code }, "the working directory is gone");
  }
  try {
    process.chdir("/");
  } catch (err) {
    log.debug({ code: (err as NodeJS.ErrnoException).code }, "cannot change to /");
  }
  return previous;
}
