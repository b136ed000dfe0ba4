// A cgroup v2 directory of its own for every server, wherever the init can have one: a VM (stage 1
// mounts cgroup2), a container with a private, writable cgroup namespace, a service of a manager that
// delegated its cgroup (systemd's Delegate=yes), or a directory the config names (settings.cgroup).
//
// The tree the init owns: <own>/init holds the init itself (and whatever it runs that is no server),
// <own>/servers/<name> each server ("TangoTest/t01" → "TangoTest@t01", systemd's instance notation).
// A cgroup with processes cannot hand controllers to its children (cgroup v2's "no internal
// processes" rule), which is why the init moves out of <own> first.
//
// Everything here is a plain file operation on cgroupfs but three things Node lacks (the addon's
// inotify, getxattr and spawn's cgroupFd): cgroup.events is watched with inotify through the
// addon's FdWatcher, which calls back when the kernel flips "populated".

import fs from "node:fs";
import path from "node:path";
import { native } from "../native";

/** What the engine does with servers' cgroups (the kernel's here, a fake in the unit tests). */
export interface CgroupControl {
  /** Where the server cgroups are. */
  readonly base: string;
  /** Controllers enabled for the servers (cpu, memory, pids, io: those the kernel has). */
  readonly controllers: readonly string[];
  /** Makes the server's cgroup anew (empty, its counters at zero) and writes its limits; returns its path and the limits that did not apply. */
  prepare(name: string, limits: Readonly<Record<string, string>>): { path: string; refused: string[] };
  /** Calls onEmpty once, when no process is left in the cgroup (never synchronously); close() stops watching. */
  watch(cgroup: string, onEmpty: () => void): Closable;
  /** The processes in it. */
  pids(cgroup: string): number[];
  /** kill(2) of each process in it; returns how many got it. */
  signal(cgroup: string, signal: number): number;
  /** SIGKILL to every process at once: cgroup.kill, else freeze, kill each, thaw. */
  kill(cgroup: string): void;
  /** Memory, CPU time and processes of it, for status; null where a controller is missing. */
  stats(cgroup: string): CgroupStats;
  /** How many of its processes the OOM killer ended (memory.events oom_kill). */
  oomKills(cgroup: string): number;
  /** Removes it (empty cgroups only); errors are ignored. */
  remove(cgroup: string): void;
}

export interface Closable {
  close(): void;
}

export interface CgroupStats {
  memoryBytes: number | null;
  /** memory.max as the kernel shows it ("max", or bytes). */
  memoryMax: string | null;
  cpuUsec: number | null;
  processes: number;
  oomKills: number | null;
}

/** The controllers the init hands to its servers when the kernel has them. */
const WANTED_CONTROLLERS = ["cpu", "memory", "pids", "io"];

/** The cgroup directory of a server: "/" is not allowed in a cgroup name, "@" is systemd's instance mark. */
export function cgroupName(server: string): string {
  return server.replace(/\//g, "@");
}

function readText(file: string): string {
  return fs.readFileSync(file, "utf8");
}

/** "key value" lines (cgroup.events, memory.events, cpu.stat) as numbers. */
export function keyedNumbers(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split("\n")) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value !== undefined && /^\d+$/.test(value)) values.set(key, Number(value));
  }
  return values;
}

function tryNumber(read: () => number | null): number | null {
  try {
    return read();
  } catch {
    return null;
  }
}

/** The kernel's cgroup v2 under a base directory the init owns. */
export class KernelCgroups implements CgroupControl {
  constructor(
    readonly base: string,
    readonly controllers: readonly string[],
  ) {}

  prepare(name: string, limits: Readonly<Record<string, string>>): { path: string; refused: string[] } {
    const dir = path.join(this.base, cgroupName(name));
    // A fresh directory: the counters (memory.events' oom_kill above all) start at zero for this run.
    this.remove(dir);
    fs.mkdirSync(dir, { recursive: true });
    const refused: string[] = [];
    for (const [file, value] of Object.entries(limits)) {
      try {
        fs.writeFileSync(path.join(dir, file), value);
      } catch (err) {
        refused.push(`${file} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
      }
    }
    return { path: dir, refused };
  }

  watch(cgroup: string, onEmpty: () => void): Closable {
    const fd = native().inotifyInit();
    let closed = false;
    let watcher: InstanceType<ReturnType<typeof native>["FdWatcher"]> | null = null;
    const close = () => {
      if (closed) return;
      closed = true;
      watcher?.close();
      native().close(fd);
    };
    const check = () => {
      if (closed) return;
      drain(fd);
      if (this.populated(cgroup)) return;
      close();
      onEmpty();
    };
    try {
      native().inotifyAddWatch(fd, path.join(cgroup, "cgroup.events"));
      watcher = new (native().FdWatcher)(fd, check);
    } catch (err) {
      close();
      throw err;
    }
    // It may have emptied before the watch was set.
    setImmediate(check);
    return { close };
  }

  /** cgroup.events says populated 1; a cgroup gone (removed) has nothing in it. */
  private populated(cgroup: string): boolean {
    try {
      return keyedNumbers(readText(path.join(cgroup, "cgroup.events"))).get("populated") === 1;
    } catch {
      return false;
    }
  }

  pids(cgroup: string): number[] {
    try {
      return readText(path.join(cgroup, "cgroup.procs"))
        .split("\n")
        .filter((line) => /^\d+$/.test(line))
        .map(Number);
    } catch {
      return [];
    }
  }

  signal(cgroup: string, signal: number): number {
    let count = 0;
    for (const pid of this.pids(cgroup)) {
      try {
        process.kill(pid, signal);
        count++;
      } catch {
        // Gone meanwhile.
      }
    }
    return count;
  }

  kill(cgroup: string): void {
    try {
      fs.writeFileSync(path.join(cgroup, "cgroup.kill"), "1");
      return;
    } catch (err) {
      // Kernels before 5.14 have no cgroup.kill: freeze, so nothing forks while each one is killed.
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    const freeze = path.join(cgroup, "cgroup.freeze");
    const frozen = tryWrite(freeze, "1");
    try {
      this.signal(cgroup, 9);
    } finally {
      // SIGKILL reaches frozen processes; they die as soon as they thaw.
      if (frozen) tryWrite(freeze, "0");
    }
  }

  stats(cgroup: string): CgroupStats {
    const read = (file: string) => readText(path.join(cgroup, file)).trim();
    return {
      memoryBytes: tryNumber(() => Number(read("memory.current"))),
      memoryMax: (() => {
        try {
          return read("memory.max");
        } catch {
          return null;
        }
      })(),
      cpuUsec: tryNumber(() => keyedNumbers(read("cpu.stat")).get("usage_usec") ?? null),
      processes: this.pids(cgroup).length,
      oomKills: tryNumber(() => this.oomKills(cgroup)),
    };
  }

  oomKills(cgroup: string): number {
    try {
      return keyedNumbers(readText(path.join(cgroup, "memory.events"))).get("oom_kill") ?? 0;
    } catch {
      return 0;
    }
  }

  remove(cgroup: string): void {
    try {
      fs.rmdirSync(cgroup);
    } catch {
      // Missing, or still populated (a process stuck in the kernel): the next mkdir finds it.
    }
  }
}

function tryWrite(file: string, value: string): boolean {
  try {
    fs.writeFileSync(file, value);
    return true;
  } catch {
    return false;
  }
}

/** Reads an inotify fd empty: its events only say "look again". */
function drain(fd: number): void {
  const buffer = Buffer.alloc(4096);
  for (;;) {
    try {
      if (fs.readSync(fd, buffer) <= 0) return;
    } catch {
      return; // EAGAIN: empty
    }
  }
}

// ---- where the init's tree is ----------------------------------------------------------------

export interface CgroupMount {
  /** Where cgroup2 is mounted, and which cgroup of the hierarchy is its root. */
  mountPoint: string;
  root: string;
}

/** The cgroup2 mounts of a mountinfo text (fields: 4 root, 5 mount point; the type after " - "). */
export function cgroup2Mounts(mountinfo: string): CgroupMount[] {
  const mounts: CgroupMount[] = [];
  for (const line of mountinfo.split("\n")) {
    const [before, after] = line.split(" - ");
    if (!after?.startsWith("cgroup2 ")) continue;
    const fields = before.split(" ");
    const unescape = (text: string) => text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
    mounts.push({ root: unescape(fields[3]), mountPoint: unescape(fields[4]) });
  }
  return mounts;
}

/** The process's cgroup v2 path from /proc/self/cgroup ("0::/path"), or null. */
export function ownCgroupPath(procCgroup: string): string | null {
  const line = procCgroup.split("\n").find((entry) => entry.startsWith("0::"));
  return line === undefined ? null : line.slice(3) || "/";
}

export type CgroupSetting = { kind: "auto" } | { kind: "off" } | { kind: "path"; path: string };

export type CgroupSetup = { ok: true; control: KernelCgroups; note: string } | { ok: false; why: string };

/**
 * Finds the cgroup the init may own and sets its tree up: the init moves into <own>/init, the
 * controllers are enabled for <own>/servers. role: what the init is (design §1); only a VM's, a
 * container's with its own cgroup namespace, a delegated service's, or a named directory is taken.
 */
export function setUpCgroups(role: "vm" | "container" | "subreaper", setting: CgroupSetting): CgroupSetup {
  if (setting.kind === "off") return { ok: false, why: "settings.cgroup is false" };
  let own: string;
  if (setting.kind === "path") {
    own = setting.path;
  } else {
    let mountinfo: string;
    let procCgroup: string;
    try {
      mountinfo = readText("/proc/self/mountinfo");
      procCgroup = readText("/proc/self/cgroup");
    } catch (err) {
      return { ok: false, why: `cannot read /proc (${(err as NodeJS.ErrnoException).code})` };
    }
    const mount = cgroup2Mounts(mountinfo).find((m) => m.mountPoint === "/sys/fs/cgroup");
    if (!mount) return { ok: false, why: "no cgroup2 on /sys/fs/cgroup (a cgroup v1 or hybrid host)" };
    const ownPath = ownCgroupPath(procCgroup);
    if (ownPath === null) return { ok: false, why: "no cgroup v2 line in /proc/self/cgroup" };
    const relative =
      mount.root === "/" ? ownPath : ownPath.startsWith(`${mount.root}/`) || ownPath === mount.root ? ownPath.slice(mount.root.length) || "/" : null;
    if (relative === null) return { ok: false, why: `its cgroup ${ownPath} is outside the mounted hierarchy` };
    own = path.join(mount.mountPoint, relative);
    if (role === "container" && ownPath !== "/") return { ok: false, why: `no private cgroup namespace (its cgroup is ${ownPath})` };
    if (role === "subreaper" && !isDelegated(own)) return { ok: false, why: `${own} is not delegated to it (systemd: Delegate=yes)` };
  }
  try {
    return setUpTree(own);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    return { ok: false, why: `${own} is not writable (${code})` };
  }
}

/** systemd marks a cgroup it delegates with the extended attribute trusted.delegate (user.delegate for user managers). */
function isDelegated(dir: string): boolean {
  for (const name of ["trusted.delegate", "user.delegate"]) {
    try {
      if (native().getxattr(dir, name) === "1") return true;
    } catch {
      // Not supported here, or not allowed: not delegated as far as we can tell.
    }
  }
  return false;
}

function setUpTree(own: string): CgroupSetup {
  fs.mkdirSync(own, { recursive: true });
  const initDir = path.join(own, "init");
  fs.mkdirSync(initDir, { recursive: true });
  // The init first (its failure means the tree is not ours to use), then whatever else is there:
  // kernel threads of a VM's root cgroup cannot move, and need not.
  fs.writeFileSync(path.join(initDir, "cgroup.procs"), String(process.pid));
  const ownProcs = path.join(own, "cgroup.procs");
  for (const pid of new KernelCgroups(own, []).pids(own)) tryWrite(path.join(initDir, "cgroup.procs"), String(pid));
  const available = readText(path.join(own, "cgroup.controllers")).trim().split(/\s+/).filter(Boolean);
  const wanted = WANTED_CONTROLLERS.filter((controller) => available.includes(controller));
  const enabled = wanted.filter((controller) => tryWrite(path.join(own, "cgroup.subtree_control"), `+${controller}`));
  const servers = path.join(own, "servers");
  fs.mkdirSync(servers, { recursive: true });
  const handed = enabled.filter((controller) => tryWrite(path.join(servers, "cgroup.subtree_control"), `+${controller}`));
  const left = fs.existsSync(ownProcs) ? new KernelCgroups(own, []).pids(own).length : 0;
  const note = `cgroup v2: servers in ${servers}/ (controllers: ${handed.join(" ") || "none"}${left > 0 ? `; ${left} process(es) could not leave ${own}` : ""})`;
  return { ok: true, control: new KernelCgroups(servers, handed), note };
}

/** cgroup2 on /sys/fs/cgroup, for a VM's stage 1 (nsdelegate: cgroup namespaces below are delegation boundaries). */
export function mountCgroup2(): void {
  fs.mkdirSync("/sys/fs/cgroup", { recursive: true });
  native().mount({ source: "cgroup2", target: "/sys/fs/cgroup", type: "cgroup2", flags: ["nosuid", "nodev", "noexec", "relatime"], data: "nsdelegate" });
}
