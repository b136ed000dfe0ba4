// Words for a person about a server's facts: shared by the answers of the control server.

import { describeServerExit, formatMs, starterStateOf, type Server } from "../core/server";
import { signalName } from "../core/signals";
import type { CgroupStats } from "../process/cgroup";
import type { LastExit, PingStatus, ServerResources, ServerStatus, WatchdogStatus } from "./protocol";

/** Why a server that should have started is not running: its reason, with the exit when it tells more. */
export function describeFailure(server: Server): string {
  const exit = server.lastExit;
  switch (server.reason) {
    case "start-timeout":
      return `not ready within ${formatMs(server.spec.startTimeoutMs)}`;
    case "pre-start-timeout":
      return `preStart did not finish within ${formatMs(server.spec.preStartTimeoutMs)}`;
    case "pre-start-failed":
      return `preStart failed${exit ? ` (${describeServerExit(exit)})` : ""}`;
    case "kill-timeout":
      return "still alive after SIGKILL (no longer waited for)";
    case "readiness-failed":
      return "readiness probe failed";
    case "watchdog":
      return `no WATCHDOG=1 within ${formatMs(server.spec.watchdogMs ?? 0)} (aborted)`;
    case "oom-killed":
      return "killed by the OOM killer (its cgroup's memory.max)";
    case "no-main-process":
      return "its launcher exited but no daemon was found (pidFile, cgroup)";
    case "dependency-failed":
      return "a server it requires failed";
    case "burst-limit":
      return `restarted too often${exit ? ` (last: ${describeServerExit(exit)})` : ""}`;
    case "min-uptime":
      return `ran too briefly to be restarted${exit ? ` (${describeServerExit(exit)})` : ""}`;
    default:
      return exit ? describeServerExit(exit) : server.reason;
  }
}

export function lastExitOf(server: Server, now: number): LastExit | null {
  const exit = server.lastExit;
  if (!exit) return null;
  return {
    code: exit.code,
    signal: exit.signal === null ? null : signalName(exit.signal),
    errno: exit.errno,
    reason: exit.reason,
    uptimeMs: exit.uptimeMs === null ? null : Math.round(exit.uptimeMs),
    agoMs: Math.max(0, Math.round(now - exit.at)),
  };
}

/** A server's cgroup numbers as status shows them. */
export function resourcesOf(stats: (CgroupStats & { path: string }) | null): ServerResources | null {
  if (!stats) return null;
  return {
    cgroup: stats.path,
    memoryBytes: stats.memoryBytes,
    memoryMax: stats.memoryMax,
    cpuSeconds: stats.cpuUsec === null ? null : Math.round(stats.cpuUsec / 1000) / 1000,
    processes: stats.processes,
    oomKills: stats.oomKills,
  };
}

function watchdogOf(server: Server, now: number): WatchdogStatus | null {
  if (!server.watchdog || !server.spec.watchdogMs) return null;
  return { periodMs: server.spec.watchdogMs, lastAgoMs: Math.max(0, Math.round(now - server.watchdog.lastAt)), keepAlives: server.watchdog.pets };
}

/** stats: its cgroup's numbers when it has one (the engine reads them), else null. */
export function statusOf(server: Server, now: number, stats: (CgroupStats & { path: string }) | null = null): ServerStatus {
  const running = server.pid !== null && server.startedAt !== null;
  return {
    name: server.spec.name,
    state: server.state === "ready" && server.liveness?.state === "unresponsive" ? "unresponsive" : server.state,
    starter: starterStateOf(server),
    desired: server.desired,
    pin: server.pin,
    reason: server.reason,
    pid: server.pid,
    level: server.spec.level,
    autostart: server.spec.autostart,
    uptimeMs: running ? Math.max(0, Math.round(now - server.startedAt!)) : null,
    timeToReadyMs: running && server.readyAt !== null && server.readyAt >= server.startedAt! ? Math.round(server.readyAt - server.startedAt!) : null,
    sinceMs: Math.max(0, Math.round(now - server.since)),
    restarts: server.restarts,
    lastExit: lastExitOf(server, now),
    logFile: server.spec.log.file,
    ping: pingOf(server, now),
    hook: server.hook,
    hookPid: server.hookPid,
    ...withValue("resources", resourcesOf(stats)),
    ...withValue("watchdog", watchdogOf(server, now)),
  };
}

/** A field that only some servers have is left out where it has no value: rows stay as short as they were. */
function withValue<K extends string, V>(key: K, value: V | null): Partial<Record<K, V>> {
  return value === null ? {} : ({ [key]: value } as Record<K, V>);
}
export function pingOf(server: Server, now: number): PingStatus | null {
  const liveness = server.liveness;
  const spec = server.spec.liveness;
  if (!liveness || !spec) return null;
  return {
    state: liveness.state,
    lastRttMs: liveness.lastRttMs === null ? null : Math.round(liveness.lastRttMs * 1000) / 1000,
    lastPingAgoMs: liveness.lastPingAt === null ? null : Math.max(0, Math.round(now - liveness.lastPingAt)),
    failures: liveness.failures,
    lastError: liveness.lastError,
    answered: liveness.answered,
    failed: liveness.failed,
    intervalMs: spec.intervalMs,
    onUnresponsive: spec.onUnresponsive,
  };
}

/** Turns "TangoTest/*" into a whole-name regex: `*` any run of characters, `?` one, `[…]` a class. */
export function globToRegExp(pattern: string): RegExp {
  let source = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "*") source += ".*";
    else if (c === "?") source += ".";
    else if (c === "[") {
      const close = pattern.indexOf("]", i + 2);
      if (close === -1) {
        source += "\\[";
        continue;
      }
      let body = pattern.slice(i + 1, close);
      if (body.startsWith("!")) body = `^${body.slice(1)}`;
      source += `[${body.replace(/\\/g, "\\\\")}]`;
      i = close;
    } else source += c.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  return new RegExp(`^${source}$`, "s");
}

export function isGlob(pattern: string): boolean {
  return /[*?[]/.test(pattern);
}
