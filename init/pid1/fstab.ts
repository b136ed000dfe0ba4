// What /etc/fstab names, mounted by a VM's init in stage 1 after the early filesystems and the
// kernel modules (as busybox init's `mount -a` or systemd's fstab units would): e.g. the microVM's
// read-only payload image, `/dev/vda /usr erofs ro 0 0`.
//
// Fields: device, mount point, type, options (`defaults`, `ro`, `rw`, `nosuid`, `nodev`, `noexec`,
// `noatime`, `relatime`, `noauto`; anything else goes to the filesystem as its data), dump, pass.
// Swap and `noauto` entries are left alone, as is a mount point that is mounted already. A device
// that is not there yet (its driver still probing the disk it just found) is waited for, briefly.

import fs from "node:fs";
import { native } from "../native";
import { mountPoints } from "./mounts";

/** How long a device named in /etc/fstab may take to appear (a disk found while modules load). */
const DEVICE_WAIT_MS = 5000;
const POLL_MS = 2;

export interface FstabEntry {
  source: string;
  target: string;
  type: string;
  flags: string[];
  data: string;
  noauto: boolean;
  line: number;
}

export interface FstabMount {
  target: string;
  result: "mounted" | "present" | "failed";
  detail?: string;
}

const FLAG_OPTIONS: Record<string, string | null> = {
  defaults: null,
  rw: null,
  auto: null,
  ro: "rdonly",
  nosuid: "nosuid",
  nodev: "nodev",
  noexec: "noexec",
  noatime: "noatime",
  relatime: "relatime",
  nodiratime: "nodiratime",
};

/** fstab text → entries, with the octal escapes of fields undone (`\040` is a space). */
export function parseFstab(text: string): FstabEntry[] {
  const unescape = (field: string) => field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
  const entries: FstabEntry[] = [];
  text.split("\n").forEach((raw, index) => {
    const fields = raw.replace(/#.*/, "").trim().split(/\s+/).filter(Boolean);
    if (fields.length < 3 || fields[2] === "swap") return;
    const flags: string[] = [];
    const data: string[] = [];
    let noauto = false;
    for (const option of (fields[3] ?? "defaults").split(",")) {
      if (option === "noauto") noauto = true;
      else if (option in FLAG_OPTIONS) {
        const flag = FLAG_OPTIONS[option];
        if (flag) flags.push(flag);
      } else data.push(option);
    }
    entries.push({ source: unescape(fields[0]), target: unescape(fields[1]), type: fields[2], flags, data: data.join(","), noauto, line: index + 1 });
  });
  return entries;
}

/** Blocks until `file` exists or `ms` have passed (stage 1 runs before anything else: nothing waits on it). */
function waitForFile(file: string, ms: number): boolean {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + ms;
  while (!fs.existsSync(file)) {
    if (Date.now() >= deadline) return false;
    Atomics.wait(pause, 0, 0, POLL_MS);
  }
  return true;
}

/** Mounts every entry of /etc/fstab that is not mounted yet; nothing when the file is absent. */
export function mountFstab(file = "/etc/fstab"): FstabMount[] {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    return [];
  }
  const outcomes: FstabMount[] = [];
  const mounted = (() => {
    try {
      return mountPoints(fs.readFileSync("/proc/self/mountinfo", "utf8"));
    } catch {
      return new Set<string>();
    }
  })();
  for (const entry of parseFstab(text)) {
    if (entry.noauto) continue;
    if (mounted.has(entry.target)) {
      outcomes.push({ target: entry.target, result: "present" });
      continue;
    }
    if (entry.source.startsWith("/dev/") && !waitForFile(entry.source, DEVICE_WAIT_MS)) {
      outcomes.push({ target: entry.target, result: "failed", detail: `${entry.source} did not appear (${file}:${entry.line})` });
      continue;
    }
    try {
      fs.mkdirSync(entry.target, { recursive: true });
      native().mount({ source: entry.source, target: entry.target, type: entry.type, flags: entry.flags, data: entry.data });
      outcomes.push({ target: entry.target, result: "mounted", detail: `${entry.type} ${entry.source}` });
    } catch (err) {
      outcomes.push({ target: entry.target, result: "failed", detail: `${(err as NodeJS.ErrnoException).code ?? String(err)} (${file}:${entry.line})` });
    }
  }
  return outcomes;
}
