// Stage 1 mounts: the early filesystems a minimal root lacks, each only when it is not mounted yet.
//
// One table, one loop. A failed mount is never fatal: Docker without CAP_SYS_ADMIN answers EPERM,
// and a read-only root cannot create a missing mount point. Stage 1 reports the failures.

import fs from "node:fs";
import { native } from "../native";
import type { Logger } from "../log/logger";

export interface MountEntry {
  target: string;
  type: string;
  source: string;
  flags: string[];
  data: string;
  /**
   * Mount only over an empty (or missing) directory: /run and /tmp of a container image may carry
   * content that a tmpfs would hide.
   */
  onlyIfEmpty: boolean;
}

export const EARLY_MOUNTS: readonly MountEntry[] = [
  { target: "/proc", type: "proc", source: "proc", flags: ["nosuid", "nodev", "noexec", "relatime"], data: "", onlyIfEmpty: false },
  { target: "/sys", type: "sysfs", source: "sysfs", flags: ["nosuid", "nodev", "noexec", "relatime"], data: "", onlyIfEmpty: false },
  { target: "/dev", type: "devtmpfs", source: "devtmpfs", flags: ["nosuid", "relatime"], data: "mode=0755", onlyIfEmpty: false },
  { target: "/dev/pts", type: "devpts", source: "devpts", flags: ["nosuid", "noexec", "relatime"], data: "ptmxmode=666,gid=5,mode=620", onlyIfEmpty: false },
  { target: "/dev/shm", type: "tmpfs", source: "shm", flags: ["nosuid", "nodev", "relatime"], data: "mode=1777", onlyIfEmpty: false },
  { target: "/run", type: "tmpfs", source: "tmpfs", flags: ["nosuid", "nodev", "relatime"], data: "mode=0755", onlyIfEmpty: true },
  { target: "/tmp", type: "tmpfs", source: "tmpfs", flags: ["nosuid", "nodev", "relatime"], data: "mode=1777", onlyIfEmpty: true },
];

/** Mount points listed in a mountinfo text (field 5, with the kernel's octal escapes undone). */
export function mountPoints(mountinfo: string): Set<string> {
  const points = new Set<string>();
  for (const line of mountinfo.split("\n")) {
    const field = line.split(" ")[4];
    if (field) points.add(field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))));
  }
  return points;
}

function readMountPoints(): Set<string> {
  try {
    return mountPoints(fs.readFileSync("/proc/self/mountinfo", "utf8"));
  } catch {
    // Before /proc is mounted nothing is known to be mounted; mount(2) then answers EBUSY for
    // anything that was, which the loop treats as "already there".
    return new Set();
  }
}

function isEmptyDir(dir: string): boolean {
  try {
    return fs.readdirSync(dir).length === 0;
  } catch {
    return true;
  }
}

export interface MountOutcome {
  target: string;
  result: "mounted" | "present" | "skipped" | "failed";
  detail?: string;
}

export function mountEarlyFilesystems(log: Logger, table: readonly MountEntry[] = EARLY_MOUNTS): MountOutcome[] {
  const outcomes: MountOutcome[] = [];
  let mounted: Set<string> | null = null;
  for (const entry of table) {
    // Read again after each mount: /proc itself is the first entry, and later checks need it.
    mounted ??= readMountPoints();
    if (mounted.has(entry.target)) {
      outcomes.push({ target: entry.target, result: "present" });
      continue;
    }
    if (entry.onlyIfEmpty && !isEmptyDir(entry.target)) {
      outcomes.push({ target: entry.target, result: "skipped", detail: "not empty" });
      continue;
    }
    try {
      fs.mkdirSync(entry.target, { recursive: true });
      native().mount({ source: entry.source, target: entry.target, type: entry.type, flags: entry.flags, data: entry.data });
      mounted = null;
      outcomes.push({ target: entry.target, result: "mounted" });
      log.debug({ target: entry.target, type: entry.type }, "mounted");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      if (code === "EBUSY") {
        outcomes.push({ target: entry.target, result: "present" });
        continue;
      }
      outcomes.push({ target: entry.target, result: "failed", detail: code });
      log.debug({ target: entry.target, type: entry.type, code }, `cannot mount ${entry.target} (${code})`);
    }
  }
  linkPtmx(log);
  return outcomes;
}

/** /dev/ptmx must reach the devpts instance's ptmx when /dev is not a devtmpfs that has it. */
function linkPtmx(log: Logger): void {
  try {
    fs.lstatSync("/dev/ptmx");
    return;
  } catch {
    // Missing: create the link below.
  }
  try {
    fs.symlinkSync("pts/ptmx", "/dev/ptmx");
  } catch (err) {
    log.debug({ code: (err as NodeJS.ErrnoException).code }, "cannot link /dev/ptmx");
  }
}
