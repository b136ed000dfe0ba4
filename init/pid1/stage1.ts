// Stage 1: the duties of an init before it runs anything (s6-linux-init's stage 1).
// Every step goes on when it fails: a VM's PID 1 must not die here. A refusal a container makes
// as a matter of course (EPERM for a mount without CAP_SYS_ADMIN, EACCES for oom_score_adj without
// CAP_SYS_RESOURCE, a read-only root) is no news: in `--` mode it is debug (`starter-init -- true`
// prints nothing, as tini), the supervisor says it in one info line; any other failure is a warning.

import fs from "node:fs";
import { native } from "../native";
import { consoleLine } from "../log/console";
import type { Logger } from "../log/logger";
import { detectRole, kernelWords, type Role } from "./environment";
import { mountFstab } from "./fstab";
import { loadModules } from "./kmod";
import { mountEarlyFilesystems, mountPoints } from "./mounts";
import { mountCgroup2 } from "../process/cgroup";
import { giveChildrenOomScore } from "../process/spawn";

export interface Stage1Options {
  /** Mount the early filesystems when PID 1 (`--no-mount` turns it off). */
  mount: boolean;
  /** `--` mode: expected refusals are debug rather than one info line. */
  quiet: boolean;
  /** A re-executed init (reexec): stage 1 was done by the first; what it finds done it says at debug only. */
  resumed?: boolean;
  /** Called with the kernel's starter.* words as soon as they can be read (VM only). */
  onKernelWords?: (words: Map<string, string>) => void;
}

export interface Stage1Result {
  role: Role;
  /** `starter.*` words of the kernel command line (VM only; empty elsewhere). */
  kernel: Map<string, string>;
}

/** What an unprivileged container or a read-only root refuses as a matter of course. */
const EXPECTED_REFUSALS = new Set(["EPERM", "EACCES", "EROFS"]);

/** Runs a step; a failure is a warning, or added to `refused` when it is an expected refusal. */
function attempt(log: Logger, what: string, step: () => void, refused?: string[]): boolean {
  try {
    step();
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    if (refused && EXPECTED_REFUSALS.has(code)) refused.push(`${what} (${code})`);
    else log.warn({ code }, `${what} failed (${code}); going on`);
    return false;
  }
}

/** Puts /dev/console on fds 0–2: the kernel gives PID 1 no stdio when the root lacks /dev/console. */
function attachConsole(): void {
  const fd = fs.openSync("/dev/console", fs.constants.O_RDWR | fs.constants.O_NOCTTY);
  for (const target of [0, 1, 2]) native().dup2(fd, target);
  if (fd > 2) fs.closeSync(fd);
}

function isMounted(target: string): boolean {
  const mountinfo = readOptional("/proc/self/mountinfo");
  return mountinfo !== null && mountPoints(mountinfo).has(target);
}

function readOptional(file: string): string | null {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return null;
  }
}

function hostnameFor(kernel: Map<string, string>): string | null {
  const fromKernel = kernel.get("hostname");
  if (fromKernel) return fromKernel;
  try {
    const name = fs.readFileSync("/etc/hostname", "utf8").trim();
    return name || null;
  } catch {
    return null;
  }
}

export function stage1(log: Logger, options: Stage1Options): Stage1Result {
  const isPid1 = process.pid === 1;
  const mounts = isPid1 && options.mount ? mountEarlyFilesystems(log) : [];
  const role = detectRole();
  const kernel = role === "vm" ? kernelWords() : new Map<string, string>();
  // starter.loglevel= is known only now that /proc is mounted: apply it before saying anything more.
  options.onKernelWords?.(kernel);

  const done: string[] = [];
  const refused: string[] = [];
  const mounted = mounts.filter((m) => m.result === "mounted").map((m) => m.target);
  if (mounted.length) done.push(`mounted ${mounted.join(" ")}`);
  const failed = mounts.filter((m) => m.result === "failed");
  const refusedMounts = failed.filter((m) => EXPECTED_REFUSALS.has(m.detail ?? ""));
  if (refusedMounts.length)
    refused.push(`mounting ${refusedMounts.map((m) => m.target).join(" ")} (${[...new Set(refusedMounts.map((m) => m.detail))].join(", ")})`);
  const otherFailures = failed.filter((m) => !EXPECTED_REFUSALS.has(m.detail ?? ""));
  if (otherFailures.length) {
    log.warn(
      { failed: otherFailures.map((f) => `${f.target}: ${f.detail}`) },
      `mounts skipped: ${otherFailures.map((f) => `${f.target} (${f.detail})`).join(", ")}; going on without them`,
    );
  }
  if (role === "vm") {
    if (attempt(log, "opening /dev/console", attachConsole)) done.push("console on /dev/console");
    // Ctrl-alt-del then arrives as SIGINT instead of an immediate reboot by the kernel.
    if (attempt(log, "disabling ctrl-alt-del", () => native().reboot("cad-off"))) done.push("ctrl-alt-del → SIGINT");
    const hostname = hostnameFor(kernel);
    if (hostname && attempt(log, `setting the host name to ${hostname}`, () => native().sethostname(hostname))) done.push(`host name ${hostname}`);
    // Tango servers and their clients talk over 127.0.0.1: without lo up, "network unreachable".
    if (attempt(log, "bringing lo up", () => native().linkUp("lo"))) done.push("lo up");
    // Each server gets a cgroup of its own (process/cgroup.ts): the unified hierarchy, where a VM has none.
    if (!isMounted("/sys/fs/cgroup") && attempt(log, "mounting cgroup2 on /sys/fs/cgroup", mountCgroup2)) done.push("cgroup2");
  }
  if (isPid1) {
    // The init must be the last process the OOM killer picks; what it runs keeps the score it was given
    // (at -1000 a server would never be an OOM victim: its cgroup's memory.max would hang it instead).
    const inherited = Number(readOptional("/proc/self/oom_score_adj") ?? "0") || 0;
    if (attempt(log, "setting oom_score_adj", () => fs.writeFileSync("/proc/self/oom_score_adj", "-1000"), refused)) {
      done.push("oom_score_adj -1000");
      giveChildrenOomScore(inherited);
    }
  } else {
    // Orphans of our descendants come to us rather than to the real PID 1, so we can reap and stop them.
    if (attempt(log, "becoming child subreaper", () => native().setChildSubreaper())) done.push("child subreaper");
  }
  if (refused.length) {
    log[options.quiet ? "debug" : "info"]({ refused }, `not privileged here: ${refused.join(", ")} refused; going on without`);
  }
  // A VM's console shows what stage 1 did; elsewhere it is routine.
  // upMs: how long after its exec the init got here (the cost of starting Node, seen from inside).
  const upMs = Math.round(performance.now());
  const summary = `stage 1 (${role}): ${done.join(", ") || "nothing to do"}`;
  const onConsole = role === "vm" && !options.resumed && consoleLine(`[ BOOT ] ${summary} (up ${upMs} ms)`);
  log[role === "vm" && !options.resumed ? "info" : "debug"]({ role, pid: process.pid, upMs, ...(onConsole ? { onConsole } : {}) }, summary);
  // Said first, done second: the console has its first line before the disk is probed.
  if (role === "vm" && !options.resumed) mountPayload(log, kernel.get("modules"));
  return { role, kernel };
}

/**
 * A VM's kernel modules (/etc/modules, and the kernel word starter.modules=a,b: drivers such as a
 * hardware watchdog's that no udev loads), then what /etc/fstab names, e.g. a payload disk.
 */
function mountPayload(log: Logger, moduleWord: string | undefined): void {
  const modules = loadModules("/", undefined, (moduleWord ?? "").split(","));
  const mounts = mountFstab();
  if (modules.loaded.length === 0 && modules.failed.length === 0 && mounts.length === 0) return;
  const done: string[] = [];
  if (modules.loaded.length) done.push(`loaded ${modules.loaded.join(" ")}`);
  for (const mount of mounts.filter((m) => m.result === "mounted")) done.push(`mounted ${mount.target} (${mount.detail})`);
  if (done.length) {
    const summary = `stage 1: ${done.join(", ")}`;
    const onConsole = consoleLine(`[ BOOT ] ${summary}`);
    log.info({ modules: modules.loaded, ...(onConsole ? { onConsole } : {}) }, summary);
  }
  for (const failure of modules.failed) log.error({ module: failure.module, code: failure.code }, `loading module ${failure.module} failed (${failure.code})`);
  for (const mount of mounts.filter((m) => m.result === "failed")) log.error({ target: mount.target }, `mounting ${mount.target} failed: ${mount.detail}`);
}
