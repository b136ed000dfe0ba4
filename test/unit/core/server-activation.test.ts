// Socket activation in the server machine's table (core/server.ts): every new cell. The columns it
// adds (socket-activity, instance-*, the idle timer and idle-check) for every situation of
// server-matrix.test.ts, and every column for the situations of a lazy and of an accept server
// (listening, activated, ready with idleStop, stopping its instances). Then the sequences around
// them, the reachable states' deadlines, and when a server serves its dependents.

import { describe, expect, it } from "vitest";
import { createServer, isAtRest, servesDependents, step, type Column, type Server, type ServerEvent } from "../../../init/core/server";
import { effectText, spec } from "./fixtures";
import { ACCEPT, activationSituations, after, coreSituations, fire, LAZY, socket } from "./activation-situations";

const NOW = 20_000;

const CORE_COLUMNS: Column[] = [
  "start",
  "stop",
  "restart",
  "spawned",
  "spawn-failed",
  "ready",
  "probe-failed",
  "exited",
  "hook-spawned",
  "hook-spawn-failed",
  "hook-exited",
  "pre-start-timeout",
  "start-timeout",
  "stop-timeout",
  "post-stop-timeout",
  "backoff",
  "stable",
  "pin-started",
  "pin-stopped",
  "unpin",
  "stop-queued",
  "kill",
  "dependency-failed",
  "cgroup-empty",
  "main-pid",
  "watchdog",
];
const ACTIVATION_COLUMNS = ["socket-activity", "instance-spawned", "instance-spawn-failed", "instance-exited", "idle", "idle-check"] as const;
type ActivationColumn = (typeof ACTIVATION_COLUMNS)[number];
const ALL_COLUMNS: Column[] = [...CORE_COLUMNS, ...ACTIVATION_COLUMNS];

/** The event of a column for a server in this situation (as server-matrix.test.ts sends them; instance exits name its first instance). */
function eventFor(column: Column, server: Server): ServerEvent {
  const now = NOW;
  switch (column) {
    case "start":
    case "stop":
    case "restart":
    case "ready":
    case "unpin":
    case "stop-queued":
    case "kill":
      return { type: column, now };
    case "spawned":
      return { type: "spawned", now, pid: 200 };
    case "spawn-failed":
      return { type: "spawn-failed", now, errno: "ENOENT", syscall: "execve" };
    case "probe-failed":
      return { type: "probe-failed", now, message: "connection refused" };
    case "exited":
      return { type: "exited", now, pid: server.pid ?? 100, code: 1, signal: null };
    case "hook-spawned":
      return { type: "hook-spawned", now, pid: 210 };
    case "hook-spawn-failed":
      return { type: "hook-spawn-failed", now, errno: "ENOENT", syscall: "execve" };
    case "hook-exited":
      return { type: "hook-exited", now, pid: server.hookPid ?? 90, code: 0, signal: null };
    case "pin-started":
      return { type: "pin", now, pin: "started" };
    case "pin-stopped":
      return { type: "pin", now, pin: "stopped" };
    case "dependency-failed":
      return { type: "dependency-failed", now, dependency: "db" };
    case "cgroup-empty":
      return { type: column, now };
    case "main-pid":
      return { type: "main-pid", now, pid: 250 };
    case "socket-activity":
      return { type: "socket-activity", now, socket: 0 };
    case "instance-spawned":
      return { type: "instance-spawned", now, pid: 300 };
    case "instance-spawn-failed":
      return { type: "instance-spawn-failed", now, errno: "EMFILE", syscall: "accept4" };
    case "instance-exited":
      return { type: "instance-exited", now, pid: server.instances[0] ?? 100, code: 0, signal: null };
    case "idle-check":
      return { type: "idle-check", now, busy: false };
    case "pre-start-timeout":
    case "start-timeout":
    case "stop-timeout":
    case "post-stop-timeout":
    case "backoff":
    case "stable":
    case "idle":
    case "watchdog":
      return { type: "timer", now, timer: column, id: server.timers[column] ?? 999 };
  }
}

type Outcome = { ignored: string } | { state: Server["state"]; desired: Server["desired"]; reason: Server["reason"]; effects: string[] };
const ignored = (why: string): Outcome => ({ ignored: why });
const to = (state: Server["state"], desired: Server["desired"], reason: Server["reason"], ...effects: string[]): Outcome => ({
  state,
  desired,
  reason,
  effects,
});

const coreExpected: Record<keyof typeof coreSituations, Record<ActivationColumn, Outcome>> = {
  stopped: {
    "socket-activity": ignored("not listening"),
    "instance-spawned": to("stopped", "down", "initial", "kill 300", "log unexpected"),
    "instance-spawn-failed": ignored("no instance spawn pending"),
    "instance-exited": ignored("no instance running"),
    idle: ignored("stale idle timer"),
    "idle-check": ignored("no idle check asked"),
  },
  "starting (preStart spawn pending)": {
    "socket-activity": ignored("not listening"),
    "instance-spawned": to("starting", "up", "start-requested", "kill 300", "log unexpected"),
    "instance-spawn-failed": ignored("no instance spawn pending"),
    "instance-exited": ignored("no instance running"),
    idle: ignored("stale idle timer"),
    "idle-check": ignored("no idle check asked"),
  },
  "starting (preStart running)": {
    "socket-activity": ignored("not listening"),
    "instance-spawned": to("starting", "up", "start-requested", "kill 300", "log unexpected"),
    "instance-spawn-failed": ignored("no instance spawn pending"),
    "instance-exited": ignored("no instance running"),
    idle: ignored("stale idle timer"),
    "idle-check": ignored("no idle check asked"),
  },
  "starting (spawn pending)": {
    "socket-activity": ignored("not listening"),
    "instance-spawned": to("starting", "up", "start-requested", "kill 300", "log unexpected"),
    "instance-spawn-failed": ignored("no instance spawn pending"),
    "instance-exited": ignored("no instance running"),
    idle: ignored("stale idle timer"),
    "idle-check": ignored("no idle check asked"),
  },
  starting: {
    "socket-activity": ignored("not listening"),
    "instance-spawned": to("starting", "up", "start-requested", "kill 300", "log unexpected"),
    "instance-spawn-failed": ignored("no instance spawn pending"),
    "instance-exited": ignored("no instance running"),
    idle: ignored("stale idle timer"),
    "idle-check": ignored("no idle check asked"),
  },
  ready: {
    "socket-activity": ignored("not listening"),
    "instance-spawned": to("ready", "up", "ready", "kill 300", "log unexpected"),
    "instance-spawn-failed": ignored("no instance spawn pending"),
    "instance-exited": ignored("no instance running"),
    idle: ignored("stale idle timer"),
    "idle-check": ignored("no idle check asked"),
  },
  stopping: {
    "socket-activity": ignored("not listening"),
    "instance-spawned": to("stopping", "down", "stop-requested", "kill 300", "log unexpected"),
    "instance-spawn-failed": ignored("no instance spawn pending"),
    "instance-exited": ignored("exit of pid 100, not an instance"),
    idle: ignored("stale idle timer"),
    "idle-check": ignored("no idle check asked"),
  },
  "stopping (for a restart)": {
    "socket-activity": ignored("not listening"),
    "instance-spawned": to("stopping", "up", "restart-requested", "kill 300", "log unexpected"),
    "instance-spawn-failed": ignored("no instance spawn pending"),
    "instance-exited": ignored("exit of pid 100, not an instance"),
    idle: ignored("stale idle timer"),
    "idle-check": ignored("no idle check asked"),
  },
  "stopping (spawn pending)": {
    "socket-activity": ignored("not listening"),
    "instance-spawned": to("stopping", "down", "stop-requested", "kill 300", "log unexpected"),
    "instance-spawn-failed": ignored("no instance spawn pending"),
    "instance-exited": ignored("exit of pid 100, not an instance"),
    idle: ignored("stale idle timer"),
    "idle-check": ignored("no idle check asked"),
  },
  "stopping (preStart)": {
    "socket-activity": ignored("not listening"),
    "instance-spawned": to("stopping", "down", "stop-requested", "kill 300", "log unexpected"),
    "instance-spawn-failed": ignored("no instance spawn pending"),
    "instance-exited": ignored("exit of pid 100, not an instance"),
    idle: ignored("stale idle timer"),
    "idle-check": ignored("no idle check asked"),
  },
  "stopping (killed)": {
    "socket-activity": ignored("not listening"),
    "instance-spawned": to("stopping", "down", "hard-kill", "kill 300", "log unexpected"),
    "instance-spawn-failed": ignored("no instance spawn pending"),
    "instance-exited": ignored("exit of pid 100, not an instance"),
    idle: ignored("stale idle timer"),
    "idle-check": ignored("no idle check asked"),
  },
  "stopping (postStop)": {
    "socket-activity": ignored("not listening"),
    "instance-spawned": to("stopping", "down", "stop-requested", "kill 300", "log unexpected"),
    "instance-spawn-failed": ignored("no instance spawn pending"),
    "instance-exited": ignored("exit of pid 100, not an instance"),
    idle: ignored("stale idle timer"),
    "idle-check": ignored("no idle check asked"),
  },
  "stopping (postStop after a crash)": {
    "socket-activity": ignored("not listening"),
    "instance-spawned": to("stopping", "up", "exited", "kill 300", "log unexpected"),
    "instance-spawn-failed": ignored("no instance spawn pending"),
    "instance-exited": ignored("exit of pid 100, not an instance"),
    idle: ignored("stale idle timer"),
    "idle-check": ignored("no idle check asked"),
  },
  "stopping (postStop timed out)": {
    "socket-activity": ignored("not listening"),
    "instance-spawned": to("stopping", "down", "post-stop-timeout", "kill 300", "log unexpected"),
    "instance-spawn-failed": ignored("no instance spawn pending"),
    "instance-exited": ignored("exit of pid 100, not an instance"),
    idle: ignored("stale idle timer"),
    "idle-check": ignored("no idle check asked"),
  },
  backoff: {
    "socket-activity": ignored("not listening"),
    "instance-spawned": to("backoff", "up", "exited", "kill 300", "log unexpected"),
    "instance-spawn-failed": ignored("no instance spawn pending"),
    "instance-exited": ignored("no instance running"),
    idle: ignored("stale idle timer"),
    "idle-check": ignored("no idle check asked"),
  },
  failed: {
    "socket-activity": ignored("not listening"),
    "instance-spawned": to("failed", "up", "burst-limit", "kill 300", "log unexpected"),
    "instance-spawn-failed": ignored("no instance spawn pending"),
    "instance-exited": ignored("no instance running"),
    idle: ignored("stale idle timer"),
    "idle-check": ignored("no idle check asked"),
  },
  "starting (cgroup)": {
    "socket-activity": ignored("not listening"),
    "instance-spawned": to("starting", "up", "start-requested", "kill 300", "log unexpected"),
    "instance-spawn-failed": ignored("no instance spawn pending"),
    "instance-exited": ignored("no instance running"),
    idle: ignored("stale idle timer"),
    "idle-check": ignored("no idle check asked"),
  },
  "ready (cgroup)": {
    "socket-activity": ignored("not listening"),
    "instance-spawned": to("ready", "up", "ready", "kill 300", "log unexpected"),
    "instance-spawn-failed": ignored("no instance spawn pending"),
    "instance-exited": ignored("no instance running"),
    idle: ignored("stale idle timer"),
    "idle-check": ignored("no idle check asked"),
  },
  "stopping (cgroup)": {
    "socket-activity": ignored("not listening"),
    "instance-spawned": to("stopping", "down", "stop-requested", "kill 300", "log unexpected"),
    "instance-spawn-failed": ignored("no instance spawn pending"),
    "instance-exited": ignored("exit of pid 100, not an instance"),
    idle: ignored("stale idle timer"),
    "idle-check": ignored("no idle check asked"),
  },
  "stopping (remains after a crash)": {
    "socket-activity": ignored("not listening"),
    "instance-spawned": to("stopping", "up", "exited", "kill 300", "log unexpected"),
    "instance-spawn-failed": ignored("no instance spawn pending"),
    "instance-exited": ignored("exit of pid 100, not an instance"),
    idle: ignored("stale idle timer"),
    "idle-check": ignored("no idle check asked"),
  },
  "stopping (remains of a stop)": {
    "socket-activity": ignored("not listening"),
    "instance-spawned": to("stopping", "down", "stop-requested", "kill 300", "log unexpected"),
    "instance-spawn-failed": ignored("no instance spawn pending"),
    "instance-exited": ignored("exit of pid 100, not an instance"),
    idle: ignored("stale idle timer"),
    "idle-check": ignored("no idle check asked"),
  },
  "starting (forking: launcher)": {
    "socket-activity": ignored("not listening"),
    "instance-spawned": to("starting", "up", "start-requested", "kill 300", "log unexpected"),
    "instance-spawn-failed": ignored("no instance spawn pending"),
    "instance-exited": ignored("no instance running"),
    idle: ignored("stale idle timer"),
    "idle-check": ignored("no idle check asked"),
  },
  "starting (forking: seeking)": {
    "socket-activity": ignored("not listening"),
    "instance-spawned": to("starting", "up", "start-requested", "kill 300", "log unexpected"),
    "instance-spawn-failed": ignored("no instance spawn pending"),
    "instance-exited": ignored("no instance running"),
    idle: ignored("stale idle timer"),
    "idle-check": ignored("no idle check asked"),
  },
  "starting (forking: daemon found)": {
    "socket-activity": ignored("not listening"),
    "instance-spawned": to("starting", "up", "start-requested", "kill 300", "log unexpected"),
    "instance-spawn-failed": ignored("no instance spawn pending"),
    "instance-exited": ignored("no instance running"),
    idle: ignored("stale idle timer"),
    "idle-check": ignored("no idle check asked"),
  },
  "ready (watchdog)": {
    "socket-activity": ignored("not listening"),
    "instance-spawned": to("ready", "up", "ready", "kill 300", "log unexpected"),
    "instance-spawn-failed": ignored("no instance spawn pending"),
    "instance-exited": ignored("no instance running"),
    idle: ignored("stale idle timer"),
    "idle-check": ignored("no idle check asked"),
  },
};

const expected: Record<keyof typeof activationSituations, Record<Column, Outcome>> = {
  "listening (lazy)": {
    start: ignored("already listening"),
    stop: to("stopped", "down", "stop-requested", "unwatch", "log stopped"),
    restart: to("listening", "up", "restart-requested", "unwatch", "watch", "log listening"),
    spawned: to("listening", "up", "start-requested", "kill 200", "log unexpected"),
    "spawn-failed": ignored("no spawn pending"),
    ready: ignored("no process"),
    "probe-failed": ignored("no process"),
    exited: ignored("no process"),
    "hook-spawned": to("listening", "up", "start-requested", "kill 210", "log unexpected"),
    "hook-spawn-failed": ignored("no hook spawn pending"),
    "hook-exited": ignored("no hook running"),
    "pre-start-timeout": ignored("stale pre-start-timeout timer"),
    "start-timeout": ignored("stale start-timeout timer"),
    "stop-timeout": ignored("stale stop-timeout timer"),
    "post-stop-timeout": ignored("stale post-stop-timeout timer"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("listening", "up", "start-requested", "log pin"),
    "pin-stopped": to("stopped", "down", "stop-requested", "log pin", "unwatch", "log stopped"),
    unpin: ignored("not pinned"),
    "stop-queued": to("stopped", "down", "stop-requested", "unwatch", "log stopped"),
    kill: to("stopped", "down", "hard-kill", "unwatch", "log stopped"),
    "dependency-failed": ignored("already started"),
    "cgroup-empty": ignored("no process left in a cgroup"),
    "main-pid": ignored("no main process looked for"),
    watchdog: ignored("stale watchdog timer"),
    "socket-activity": to("starting", "up", "socket-activated", "log activated", "unwatch", "log starting", "spawn", "arm start-timeout@50000"),
    "instance-spawned": to("listening", "up", "start-requested", "kill 300", "log unexpected"),
    "instance-spawn-failed": ignored("no instance spawn pending"),
    "instance-exited": ignored("exit of pid 100, not an instance"),
    idle: ignored("stale idle timer"),
    "idle-check": ignored("no idle check asked"),
  },
  "starting (activated, spawn pending)": {
    start: ignored("already starting"),
    stop: to("stopping", "down", "stop-requested", "cancel start-timeout", "log stopping", "arm stop-timeout@25000"),
    restart: to("stopping", "up", "restart-requested", "cancel start-timeout", "log stopping", "arm stop-timeout@25000"),
    spawned: to("starting", "up", "socket-activated", "log started", "probe 200"),
    "spawn-failed": to("backoff", "up", "exec-failed", "log exec-failed", "cancel start-timeout", "arm backoff@21000", "log restarting"),
    ready: ignored("ready before spawned"),
    "probe-failed": ignored("probe failed before spawned"),
    exited: ignored("exit of pid 100, not ours"),
    "hook-spawned": to("starting", "up", "socket-activated", "kill 210", "log unexpected"),
    "hook-spawn-failed": ignored("no hook spawn pending"),
    "hook-exited": ignored("exit of pid 90, not our hook"),
    "pre-start-timeout": ignored("stale pre-start-timeout timer"),
    "start-timeout": to("backoff", "up", "start-timeout", "log start-timeout", "arm backoff@21000", "log restarting"),
    "stop-timeout": ignored("stale stop-timeout timer"),
    "post-stop-timeout": ignored("stale post-stop-timeout timer"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("starting", "up", "socket-activated", "log pin"),
    "pin-stopped": to("stopping", "down", "stop-requested", "log pin", "cancel start-timeout", "log stopping", "arm stop-timeout@25000"),
    unpin: ignored("not pinned"),
    "stop-queued": to("starting", "down", "socket-activated"),
    kill: to("stopping", "down", "hard-kill", "cancel start-timeout", "log killing", "arm stop-timeout@25000"),
    "dependency-failed": ignored("already started"),
    "cgroup-empty": ignored("no process left in a cgroup"),
    "main-pid": ignored("no main process looked for"),
    watchdog: ignored("stale watchdog timer"),
    "socket-activity": ignored("not listening"),
    "instance-spawned": to("starting", "up", "socket-activated", "kill 300", "log unexpected"),
    "instance-spawn-failed": ignored("no instance spawn pending"),
    "instance-exited": ignored("no instance running"),
    idle: ignored("stale idle timer"),
    "idle-check": ignored("no idle check asked"),
  },
  "starting (activated)": {
    start: ignored("already starting"),
    stop: to("stopping", "down", "stop-requested", "cancel start-timeout", "stop-probe", "log stopping", "signal 15 100", "arm stop-timeout@25000"),
    restart: to("stopping", "up", "restart-requested", "cancel start-timeout", "stop-probe", "log stopping", "signal 15 100", "arm stop-timeout@25000"),
    spawned: to("starting", "up", "socket-activated", "kill 200", "log unexpected"),
    "spawn-failed": ignored("already spawned"),
    ready: to("ready", "up", "ready", "cancel start-timeout", "arm stable@30000", "log ready", "arm idle@21000"),
    "probe-failed": to("stopping", "up", "readiness-failed", "log readiness-failed", "cancel start-timeout", "signal 15 100", "arm stop-timeout@25000"),
    exited: to("backoff", "up", "exited", "log exited", "cancel start-timeout", "stop-probe", "arm backoff@21000", "log restarting"),
    "hook-spawned": to("starting", "up", "socket-activated", "kill 210", "log unexpected"),
    "hook-spawn-failed": ignored("no hook spawn pending"),
    "hook-exited": ignored("exit of pid 90, not our hook"),
    "pre-start-timeout": ignored("stale pre-start-timeout timer"),
    "start-timeout": to("stopping", "up", "start-timeout", "log start-timeout", "stop-probe", "signal 15 100", "arm stop-timeout@25000"),
    "stop-timeout": ignored("stale stop-timeout timer"),
    "post-stop-timeout": ignored("stale post-stop-timeout timer"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("starting", "up", "socket-activated", "log pin"),
    "pin-stopped": to(
      "stopping",
      "down",
      "stop-requested",
      "log pin",
      "cancel start-timeout",
      "stop-probe",
      "log stopping",
      "signal 15 100",
      "arm stop-timeout@25000",
    ),
    unpin: ignored("not pinned"),
    "stop-queued": to("starting", "down", "socket-activated"),
    kill: to("stopping", "down", "hard-kill", "cancel start-timeout", "stop-probe", "log killing", "kill 100", "arm stop-timeout@25000"),
    "dependency-failed": ignored("already started"),
    "cgroup-empty": ignored("no process left in a cgroup"),
    "main-pid": ignored("no main process looked for"),
    watchdog: ignored("stale watchdog timer"),
    "socket-activity": ignored("not listening"),
    "instance-spawned": to("starting", "up", "socket-activated", "kill 300", "log unexpected"),
    "instance-spawn-failed": ignored("no instance spawn pending"),
    "instance-exited": ignored("no instance running"),
    idle: ignored("stale idle timer"),
    "idle-check": ignored("no idle check asked"),
  },
  "ready (lazy, idleStop)": {
    start: ignored("already ready"),
    stop: to("stopping", "down", "stop-requested", "cancel stable", "cancel idle", "log stopping", "signal 15 100", "arm stop-timeout@25000"),
    restart: to("stopping", "up", "restart-requested", "cancel stable", "cancel idle", "log stopping", "signal 15 100", "arm stop-timeout@25000"),
    spawned: to("ready", "up", "ready", "kill 200", "log unexpected"),
    "spawn-failed": ignored("no spawn pending"),
    ready: ignored("already ready"),
    "probe-failed": ignored("already ready"),
    exited: to("backoff", "up", "exited", "log exited", "cancel stable", "cancel idle", "arm backoff@21000", "log restarting"),
    "hook-spawned": to("ready", "up", "ready", "kill 210", "log unexpected"),
    "hook-spawn-failed": ignored("no hook spawn pending"),
    "hook-exited": ignored("no hook running"),
    "pre-start-timeout": ignored("stale pre-start-timeout timer"),
    "start-timeout": ignored("stale start-timeout timer"),
    "stop-timeout": ignored("stale stop-timeout timer"),
    "post-stop-timeout": ignored("stale post-stop-timeout timer"),
    backoff: ignored("stale backoff timer"),
    stable: to("ready", "up", "ready", "log backoff-reset"),
    "pin-started": to("ready", "up", "ready", "log pin"),
    "pin-stopped": to(
      "stopping",
      "down",
      "stop-requested",
      "log pin",
      "cancel stable",
      "cancel idle",
      "log stopping",
      "signal 15 100",
      "arm stop-timeout@25000",
    ),
    unpin: ignored("not pinned"),
    "stop-queued": to("ready", "down", "ready"),
    kill: to("stopping", "down", "hard-kill", "cancel stable", "cancel idle", "log killing", "kill 100", "arm stop-timeout@25000"),
    "dependency-failed": ignored("already started"),
    "cgroup-empty": ignored("no process left in a cgroup"),
    "main-pid": ignored("no main process looked for"),
    watchdog: ignored("stale watchdog timer"),
    "socket-activity": ignored("not listening"),
    "instance-spawned": to("ready", "up", "ready", "kill 300", "log unexpected"),
    "instance-spawn-failed": ignored("no instance spawn pending"),
    "instance-exited": ignored("no instance running"),
    idle: to("ready", "up", "ready", "check-idle"),
    "idle-check": ignored("no idle check asked"),
  },
  "stopping (idle)": {
    start: ignored("will start again once stopped"),
    stop: to("stopping", "down", "stop-requested"),
    restart: ignored("will start again once stopped"),
    spawned: to("stopping", "up", "idle-stop", "kill 200", "log unexpected"),
    "spawn-failed": ignored("already spawned"),
    ready: ignored("stopping"),
    "probe-failed": ignored("stopping"),
    exited: to("listening", "up", "idle-stop", "log exited", "cancel stop-timeout", "watch", "log listening"),
    "hook-spawned": to("stopping", "up", "idle-stop", "kill 210", "log unexpected"),
    "hook-spawn-failed": ignored("no hook spawn pending"),
    "hook-exited": ignored("exit of pid 90, not our hook"),
    "pre-start-timeout": ignored("stale pre-start-timeout timer"),
    "start-timeout": ignored("stale start-timeout timer"),
    "stop-timeout": to("stopping", "up", "stop-timeout", "log stop-timeout", "kill 100", "arm stop-timeout@25000"),
    "post-stop-timeout": ignored("stale post-stop-timeout timer"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("stopping", "up", "idle-stop", "log pin"),
    "pin-stopped": to("stopping", "down", "stop-requested", "log pin"),
    unpin: ignored("not pinned"),
    "stop-queued": to("stopping", "down", "stop-requested"),
    kill: to("stopping", "down", "hard-kill", "log killing", "kill 100", "arm stop-timeout@25000"),
    "dependency-failed": ignored("already started"),
    "cgroup-empty": ignored("no process left in a cgroup"),
    "main-pid": ignored("no main process looked for"),
    watchdog: ignored("stale watchdog timer"),
    "socket-activity": ignored("not listening"),
    "instance-spawned": to("stopping", "up", "idle-stop", "kill 300", "log unexpected"),
    "instance-spawn-failed": ignored("no instance spawn pending"),
    "instance-exited": ignored("exit of pid 100, not an instance"),
    idle: ignored("stale idle timer"),
    "idle-check": ignored("no idle check asked"),
  },
  "listening (accept)": {
    start: ignored("already listening"),
    stop: to("stopped", "down", "stop-requested", "unwatch", "log stopped"),
    restart: to("listening", "up", "restart-requested", "unwatch", "watch", "log listening"),
    spawned: to("listening", "up", "start-requested", "kill 200", "log unexpected"),
    "spawn-failed": ignored("no spawn pending"),
    ready: ignored("no process"),
    "probe-failed": ignored("no process"),
    exited: ignored("no process"),
    "hook-spawned": to("listening", "up", "start-requested", "kill 210", "log unexpected"),
    "hook-spawn-failed": ignored("no hook spawn pending"),
    "hook-exited": ignored("no hook running"),
    "pre-start-timeout": ignored("stale pre-start-timeout timer"),
    "start-timeout": ignored("stale start-timeout timer"),
    "stop-timeout": ignored("stale stop-timeout timer"),
    "post-stop-timeout": ignored("stale post-stop-timeout timer"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("listening", "up", "start-requested", "log pin"),
    "pin-stopped": to("stopped", "down", "stop-requested", "log pin", "unwatch", "log stopped"),
    unpin: ignored("not pinned"),
    "stop-queued": to("stopped", "down", "stop-requested", "unwatch", "log stopped"),
    kill: to("stopped", "down", "hard-kill", "unwatch", "log stopped"),
    "dependency-failed": ignored("already started"),
    "cgroup-empty": ignored("no process left in a cgroup"),
    "main-pid": ignored("no main process looked for"),
    watchdog: ignored("stale watchdog timer"),
    "socket-activity": to("listening", "up", "start-requested", "spawn-instance 0"),
    "instance-spawned": to("listening", "up", "start-requested", "kill 300", "log unexpected"),
    "instance-spawn-failed": ignored("no instance spawn pending"),
    "instance-exited": ignored("exit of pid 100, not an instance"),
    idle: ignored("stale idle timer"),
    "idle-check": ignored("no idle check asked"),
  },
  "listening (accept, instance spawn pending)": {
    start: ignored("already listening"),
    stop: to("stopping", "down", "stop-requested", "unwatch", "log stopping", "arm stop-timeout@25000"),
    restart: to("stopping", "up", "restart-requested", "unwatch", "log stopping", "arm stop-timeout@25000"),
    spawned: to("listening", "up", "start-requested", "kill 200", "log unexpected"),
    "spawn-failed": ignored("no spawn pending"),
    ready: ignored("no process"),
    "probe-failed": ignored("no process"),
    exited: ignored("no process"),
    "hook-spawned": to("listening", "up", "start-requested", "kill 210", "log unexpected"),
    "hook-spawn-failed": ignored("no hook spawn pending"),
    "hook-exited": ignored("no hook running"),
    "pre-start-timeout": ignored("stale pre-start-timeout timer"),
    "start-timeout": ignored("stale start-timeout timer"),
    "stop-timeout": ignored("stale stop-timeout timer"),
    "post-stop-timeout": ignored("stale post-stop-timeout timer"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("listening", "up", "start-requested", "log pin"),
    "pin-stopped": to("stopping", "down", "stop-requested", "log pin", "unwatch", "log stopping", "arm stop-timeout@25000"),
    unpin: ignored("not pinned"),
    "stop-queued": to("listening", "down", "start-requested", "unwatch"),
    kill: to("stopping", "down", "hard-kill", "unwatch", "log killing", "arm stop-timeout@25000"),
    "dependency-failed": ignored("already started"),
    "cgroup-empty": ignored("no process left in a cgroup"),
    "main-pid": ignored("no main process looked for"),
    watchdog: ignored("stale watchdog timer"),
    "socket-activity": to("listening", "up", "start-requested", "spawn-instance 0", "unwatch"),
    "instance-spawned": to("listening", "up", "start-requested", "log instance"),
    "instance-spawn-failed": to("listening", "up", "start-requested", "log instance"),
    "instance-exited": ignored("exit of pid 100, not an instance"),
    idle: ignored("stale idle timer"),
    "idle-check": ignored("no idle check asked"),
  },
  "listening (accept, one instance)": {
    start: ignored("already listening"),
    stop: to("stopping", "down", "stop-requested", "unwatch", "log stopping", "signal 15 100", "arm stop-timeout@25000"),
    restart: to("stopping", "up", "restart-requested", "unwatch", "log stopping", "signal 15 100", "arm stop-timeout@25000"),
    spawned: to("listening", "up", "start-requested", "kill 200", "log unexpected"),
    "spawn-failed": ignored("no spawn pending"),
    ready: ignored("no process"),
    "probe-failed": ignored("no process"),
    exited: ignored("no process"),
    "hook-spawned": to("listening", "up", "start-requested", "kill 210", "log unexpected"),
    "hook-spawn-failed": ignored("no hook spawn pending"),
    "hook-exited": ignored("no hook running"),
    "pre-start-timeout": ignored("stale pre-start-timeout timer"),
    "start-timeout": ignored("stale start-timeout timer"),
    "stop-timeout": ignored("stale stop-timeout timer"),
    "post-stop-timeout": ignored("stale post-stop-timeout timer"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("listening", "up", "start-requested", "log pin"),
    "pin-stopped": to("stopping", "down", "stop-requested", "log pin", "unwatch", "log stopping", "signal 15 100", "arm stop-timeout@25000"),
    unpin: ignored("not pinned"),
    "stop-queued": to("listening", "down", "start-requested", "unwatch"),
    kill: to("stopping", "down", "hard-kill", "unwatch", "log killing", "kill 100", "arm stop-timeout@25000"),
    "dependency-failed": ignored("already started"),
    "cgroup-empty": ignored("no process left in a cgroup"),
    "main-pid": ignored("no main process looked for"),
    watchdog: ignored("stale watchdog timer"),
    "socket-activity": to("listening", "up", "start-requested", "spawn-instance 0", "unwatch"),
    "instance-spawned": to("listening", "up", "start-requested", "kill 300", "log unexpected"),
    "instance-spawn-failed": ignored("no instance spawn pending"),
    "instance-exited": to("listening", "up", "start-requested", "log instance"),
    idle: ignored("stale idle timer"),
    "idle-check": ignored("no idle check asked"),
  },
  "listening (accept, at maxInstances)": {
    start: ignored("already listening"),
    stop: to("stopping", "down", "stop-requested", "log stopping", "signal 15 100", "signal 15 101", "arm stop-timeout@25000"),
    restart: to("stopping", "up", "restart-requested", "log stopping", "signal 15 100", "signal 15 101", "arm stop-timeout@25000"),
    spawned: to("listening", "up", "start-requested", "kill 200", "log unexpected"),
    "spawn-failed": ignored("no spawn pending"),
    ready: ignored("no process"),
    "probe-failed": ignored("no process"),
    exited: ignored("no process"),
    "hook-spawned": to("listening", "up", "start-requested", "kill 210", "log unexpected"),
    "hook-spawn-failed": ignored("no hook spawn pending"),
    "hook-exited": ignored("no hook running"),
    "pre-start-timeout": ignored("stale pre-start-timeout timer"),
    "start-timeout": ignored("stale start-timeout timer"),
    "stop-timeout": ignored("stale stop-timeout timer"),
    "post-stop-timeout": ignored("stale post-stop-timeout timer"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("listening", "up", "start-requested", "log pin"),
    "pin-stopped": to("stopping", "down", "stop-requested", "log pin", "log stopping", "signal 15 100", "signal 15 101", "arm stop-timeout@25000"),
    unpin: ignored("not pinned"),
    "stop-queued": to("listening", "down", "start-requested"),
    kill: to("stopping", "down", "hard-kill", "log killing", "kill 100", "kill 101", "arm stop-timeout@25000"),
    "dependency-failed": ignored("already started"),
    "cgroup-empty": ignored("no process left in a cgroup"),
    "main-pid": ignored("no main process looked for"),
    watchdog: ignored("stale watchdog timer"),
    "socket-activity": ignored("2 instances run: the connection waits in the backlog"),
    "instance-spawned": to("listening", "up", "start-requested", "kill 300", "log unexpected"),
    "instance-spawn-failed": ignored("no instance spawn pending"),
    "instance-exited": to("listening", "up", "start-requested", "log instance", "watch"),
    idle: ignored("stale idle timer"),
    "idle-check": ignored("no idle check asked"),
  },
  "stopping (accept instances)": {
    start: to("stopping", "up", "stop-requested"),
    stop: ignored("already stopping"),
    restart: to("stopping", "up", "stop-requested"),
    spawned: to("stopping", "down", "stop-requested", "kill 200", "log unexpected"),
    "spawn-failed": ignored("no spawn pending"),
    ready: ignored("stopping"),
    "probe-failed": ignored("stopping"),
    exited: ignored("exit of pid 100, not ours"),
    "hook-spawned": to("stopping", "down", "stop-requested", "kill 210", "log unexpected"),
    "hook-spawn-failed": ignored("no hook spawn pending"),
    "hook-exited": ignored("exit of pid 90, not our hook"),
    "pre-start-timeout": ignored("stale pre-start-timeout timer"),
    "start-timeout": ignored("stale start-timeout timer"),
    "stop-timeout": to("stopping", "down", "stop-timeout", "log stop-timeout", "kill 100", "kill 101", "arm stop-timeout@25000"),
    "post-stop-timeout": ignored("stale post-stop-timeout timer"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("stopping", "up", "stop-requested", "log pin"),
    "pin-stopped": to("stopping", "down", "stop-requested", "log pin"),
    unpin: ignored("not pinned"),
    "stop-queued": ignored("already stopping"),
    kill: to("stopping", "down", "hard-kill", "log killing", "kill 100", "kill 101", "arm stop-timeout@25000"),
    "dependency-failed": ignored("already started"),
    "cgroup-empty": ignored("no process left in a cgroup"),
    "main-pid": ignored("no main process looked for"),
    watchdog: ignored("stale watchdog timer"),
    "socket-activity": ignored("not listening"),
    "instance-spawned": to("stopping", "down", "stop-requested", "kill 300", "log unexpected"),
    "instance-spawn-failed": ignored("no instance spawn pending"),
    "instance-exited": to("stopping", "down", "stop-requested", "log instance"),
    idle: ignored("stale idle timer"),
    "idle-check": ignored("no idle check asked"),
  },
  "stopping (accept instances killed)": {
    start: to("stopping", "up", "stop-timeout"),
    stop: ignored("already stopping"),
    restart: to("stopping", "up", "stop-timeout"),
    spawned: to("stopping", "down", "stop-timeout", "kill 200", "log unexpected"),
    "spawn-failed": ignored("no spawn pending"),
    ready: ignored("stopping"),
    "probe-failed": ignored("stopping"),
    exited: ignored("exit of pid 100, not ours"),
    "hook-spawned": to("stopping", "down", "stop-timeout", "kill 210", "log unexpected"),
    "hook-spawn-failed": ignored("no hook spawn pending"),
    "hook-exited": ignored("exit of pid 90, not our hook"),
    "pre-start-timeout": ignored("stale pre-start-timeout timer"),
    "start-timeout": ignored("stale start-timeout timer"),
    "stop-timeout": to("failed", "down", "kill-timeout", "log kill-timeout", "log failed"),
    "post-stop-timeout": ignored("stale post-stop-timeout timer"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("stopping", "up", "stop-timeout", "log pin"),
    "pin-stopped": to("stopping", "down", "stop-timeout", "log pin"),
    unpin: ignored("not pinned"),
    "stop-queued": ignored("already stopping"),
    kill: ignored("already killed"),
    "dependency-failed": ignored("already started"),
    "cgroup-empty": ignored("no process left in a cgroup"),
    "main-pid": ignored("no main process looked for"),
    watchdog: ignored("stale watchdog timer"),
    "socket-activity": ignored("not listening"),
    "instance-spawned": to("stopping", "down", "stop-timeout", "kill 300", "log unexpected"),
    "instance-spawn-failed": ignored("no instance spawn pending"),
    "instance-exited": to("stopping", "down", "stop-timeout", "log instance"),
    idle: ignored("stale idle timer"),
    "idle-check": ignored("no idle check asked"),
  },
};

function check(before: Server, column: Column, outcome: Outcome): void {
  const frozen = structuredClone(before);
  const result = step(before, eventFor(column, before));
  expect(before).toEqual(frozen); // the input is never changed
  if ("ignored" in outcome) {
    expect(result.ignored).toBe(outcome.ignored);
    expect(result.effects).toEqual([]);
    expect(result.server).toBe(before);
    return;
  }
  expect(result.ignored).toBeNull();
  expect({
    state: result.server.state,
    desired: result.server.desired,
    reason: result.server.reason,
    effects: result.server && result.effects.map(effectText),
  }).toEqual(outcome);
}

describe("socket activation: the fixtures are the situations they claim to be", () => {
  it.each([
    ["listening (lazy)", "listening", "up", null, [], 0, true],
    ["starting (activated, spawn pending)", "starting", "up", null, [], 0, false],
    ["starting (activated)", "starting", "up", 100, [], 0, false],
    ["ready (lazy, idleStop)", "ready", "up", 100, [], 0, false],
    ["stopping (idle)", "stopping", "up", 100, [], 0, false],
    ["listening (accept)", "listening", "up", null, [], 0, true],
    ["listening (accept, instance spawn pending)", "listening", "up", null, [], 1, true],
    ["listening (accept, one instance)", "listening", "up", null, [100], 0, true],
    ["listening (accept, at maxInstances)", "listening", "up", null, [100, 101], 0, false],
    ["stopping (accept instances)", "stopping", "down", null, [100, 101], 0, false],
    ["stopping (accept instances killed)", "stopping", "down", null, [100, 101], 0, false],
  ] as const)("%s", (name, state, desired, pid, instances, pending, watching) => {
    const server = activationSituations[name];
    expect([server.state, server.desired, server.pid, server.instances, server.pendingInstances, server.watching]).toEqual([
      state,
      desired,
      pid,
      instances,
      pending,
      watching,
    ]);
  });

  it("ready with idleStop has its idle check armed; stopping (idle) stops it to listen again; killed instances got SIGKILL", () => {
    expect(Object.keys(activationSituations["ready (lazy, idleStop)"].timers).sort()).toEqual(["idle", "stable"]);
    expect([activationSituations["stopping (idle)"].reason, activationSituations["stopping (idle)"].desired]).toEqual(["idle-stop", "up"]);
    expect(activationSituations["stopping (accept instances killed)"].killed).toBe(true);
  });
});

describe("socket activation: every situation × event", () => {
  const coreCells = Object.entries(coreExpected).flatMap(([situation, row]) =>
    Object.entries(row).map(([column, outcome]) => ({ situation: situation as keyof typeof coreSituations, column: column as Column, outcome })),
  );
  const cells = Object.entries(expected).flatMap(([situation, row]) =>
    Object.entries(row).map(([column, outcome]) => ({ situation: situation as keyof typeof activationSituations, column: column as Column, outcome })),
  );

  it("covers 25 situations × 6 new columns and 11 situations × 32 columns", () => {
    expect(coreCells).toHaveLength(25 * 6);
    for (const row of Object.values(coreExpected)) expect(Object.keys(row)).toEqual([...ACTIVATION_COLUMNS]);
    expect(cells).toHaveLength(11 * 32);
    for (const row of Object.values(expected)) expect(Object.keys(row)).toEqual(ALL_COLUMNS);
  });

  it.each(coreCells)("$situation × $column", ({ situation, column, outcome }) => check(coreSituations[situation], column, outcome));
  it.each(cells)("$situation × $column", ({ situation, column, outcome }) => check(activationSituations[situation], column, outcome));
});

describe("socket activation: sequences", () => {
  const effects = (server: Server, event: ServerEvent) => step(server, event).effects.map(effectText);

  it("a lazy server with idleStop is checked every second while ready, and stopped after idleStop without a connection", () => {
    let server = activationSituations["ready (lazy, idleStop)"];
    expect(server.timers.idle).toBeDefined();
    expect(effects(server, { type: "timer", now: 2500, timer: "idle", id: server.timers.idle! })).toEqual(["check-idle"]);
    server = fire(server, "idle", 2500);
    // A connection seen: quiet from now on, checked again in a second.
    expect(effects(server, { type: "idle-check", now: 2500, busy: true })).toEqual(["arm idle@3500"]);
    server = after(server, { type: "idle-check", now: 2500, busy: true });
    expect(server.quietSince).toBe(2500);
    server = after(fire(server, "idle", 3500), { type: "idle-check", now: 3500, busy: false });
    expect([server.state, server.quietSince, Object.keys(server.timers).sort()]).toEqual(["ready", 2500, ["idle", "stable"]]);
    server = fire(server, "idle", 7500);
    expect(effects(server, { type: "idle-check", now: 7500, busy: false })).toEqual([
      "log idle-stop",
      "cancel stable",
      "log stopping",
      "signal 15 100",
      "arm stop-timeout@12500",
    ]);
    server = after(server, { type: "idle-check", now: 7500, busy: false }, { type: "exited", now: 7600, pid: 100, code: 0, signal: null });
    expect([server.state, server.reason, server.watching, server.activations]).toEqual(["listening", "idle-stop", true, 1]);
    // The next connection starts it again.
    server = after(server, { type: "socket-activity", now: 9000, socket: 0 });
    expect([server.state, server.reason, server.activations]).toEqual(["starting", "socket-activated", 2]);
  });

  it("a check asked for with an idleStop shorter than a second comes every idleStop", () => {
    const quick = { ...LAZY, idleStopMs: 300, readiness: { kind: "none" as const } };
    const server = after(createServer(quick, 0), { type: "start", now: 0 }, { type: "socket-activity", now: 10, socket: 0 });
    expect(effects(server, { type: "spawned", now: 20, pid: 7 })).toContain("arm idle@320");
  });

  it("a lazy server that exits cleanly listens again; one that crashes listens again after its backoff", () => {
    const ready = activationSituations["ready (lazy, idleStop)"];
    const clean = after(ready, { type: "exited", now: 3000, pid: 100, code: 0, signal: null });
    expect([clean.state, clean.reason, clean.watching]).toEqual(["listening", "exited", true]);
    const crashed = after(ready, { type: "exited", now: 3000, pid: 100, code: null, signal: 9 });
    expect([crashed.state, crashed.watching]).toEqual(["backoff", false]);
    expect(effects(crashed, { type: "timer", now: 4000, timer: "backoff", id: crashed.timers.backoff! })).toEqual(["watch", "log listening"]);
    // The burst limit still counts its starts: each activation is one.
    expect(crashed.startHistory).toEqual([1100]);
  });

  it("a lazy server in a cgroup listens again only once its cgroup is empty (what its process left is stopped first)", () => {
    const CGROUP = "/sys/fs/cgroup/servers/web";
    const activated = after(createServer(LAZY, 0), { type: "start", now: 1000 }, { type: "socket-activity", now: 1100, socket: 0 });
    const ready = after(activated, { type: "spawned", now: 1100, pid: 100, cgroup: CGROUP }, { type: "ready", now: 1500 });
    const exited = after(ready, { type: "exited", now: 3000, pid: 100, code: 0, signal: null });
    expect([exited.state, exited.watching, exited.populated]).toEqual(["stopping", false, true]);
    const emptied = after(exited, { type: "cgroup-empty", now: 3100 });
    expect([emptied.state, emptied.reason, emptied.watching, emptied.populated]).toEqual(["listening", "exited", true, false]);
  });

  it("a lazy server's preStart runs when a connection starts it, not when it begins to listen", () => {
    const hooked = { ...LAZY, preStart: ["/bin/prep"] };
    const listening = after(createServer(hooked, 0), { type: "start", now: 0 });
    expect(step(createServer(hooked, 0), { type: "start", now: 0 }).effects.map(effectText)).toEqual(["watch", "log listening"]);
    expect(effects(listening, { type: "socket-activity", now: 50, socket: 0 })).toEqual([
      "log activated",
      "unwatch",
      "log starting",
      "run-pre-start",
      "arm pre-start-timeout@20050",
    ]);
  });

  it("accept: nothing to accept (EAGAIN) leaves it listening; at maxInstances it stops watching until an instance ends", () => {
    const pending = activationSituations["listening (accept, instance spawn pending)"];
    const none = after(pending, { type: "instance-spawn-failed", now: 1200, errno: "EAGAIN", syscall: "accept4" });
    expect([none.pendingInstances, none.instances, none.watching, none.activations]).toEqual([0, [], true, 0]);
    const full = activationSituations["listening (accept, at maxInstances)"];
    expect(full.activations).toBe(2);
    const freed = after(full, { type: "instance-exited", now: 1300, pid: 101, code: 0, signal: null });
    expect([freed.instances, freed.watching]).toEqual([[100], true]);
    // A failed spawn at the limit frees its slot too.
    const atLimit = after(activationSituations["listening (accept, one instance)"], { type: "socket-activity", now: 1300, socket: 0 });
    expect([atLimit.pendingInstances, atLimit.watching]).toEqual([1, false]);
    const failedSpawn = after(atLimit, { type: "instance-spawn-failed", now: 1300, errno: "ENOENT", syscall: "execve" });
    expect([failedSpawn.pendingInstances, failedSpawn.watching]).toEqual([0, true]);
  });

  it("accept: a stop waits for every instance; a restart listens again once they are gone; a shutdown stops watching first", () => {
    const stopping = activationSituations["stopping (accept instances)"];
    const stopped = after(
      stopping,
      { type: "instance-exited", now: 1400, pid: 100, code: null, signal: 15 },
      { type: "instance-exited", now: 1400, pid: 101, code: null, signal: 15 },
    );
    expect([stopped.state, stopped.desired, Object.keys(stopped.timers)]).toEqual(["stopped", "down", []]);
    const restarting = after(activationSituations["listening (accept, one instance)"], { type: "restart", now: 1300 });
    expect([restarting.state, restarting.desired]).toEqual(["stopping", "up"]);
    const again = after(restarting, { type: "instance-exited", now: 1400, pid: 100, code: null, signal: 15 });
    expect([again.state, again.watching, again.instances]).toEqual(["listening", true, []]);
    const queued = after(activationSituations["listening (accept, one instance)"], { type: "stop-queued", now: 1300 });
    expect([queued.state, queued.desired, queued.watching]).toEqual(["listening", "down", false]);
    expect(step(queued, { type: "socket-activity", now: 1300, socket: 0 }).ignored).toBe("wanted down: no new instance");
  });

  it("accept: an instance spawned while its server stops is stopped at once (TERM, or KILL once killed)", () => {
    const pending = activationSituations["listening (accept, instance spawn pending)"];
    const stopping = after(pending, { type: "stop", now: 1200 });
    expect(effects(stopping, { type: "instance-spawned", now: 1210, pid: 300 })).toEqual(["log instance", "signal 15 300"]);
    const killed = after(pending, { type: "kill", now: 1200 });
    expect(effects(killed, { type: "instance-spawned", now: 1210, pid: 300 })).toEqual(["log instance", "kill 300"]);
    const gone = after(stopping, { type: "instance-spawn-failed", now: 1210, errno: "EAGAIN" });
    expect(gone.state).toBe("stopped");
  });

  it("a reload that makes a listening server eager starts it (the supervisor sends restart)", () => {
    const listening = activationSituations["listening (lazy)"];
    const eager = { ...listening, spec: { ...listening.spec, activation: "eager" as const } };
    expect(effects(eager, { type: "restart", now: 2000 })).toEqual(["unwatch", "log starting", "spawn", "arm start-timeout@32000"]);
  });
});

describe("socket activation: every waiting state has a deadline", () => {
  const reached = new Map<string, Server>();
  const frontier: Server[] = Object.values(activationSituations);
  let now = NOW;
  const shape = (server: Server) =>
    JSON.stringify([
      server.spec.name,
      server.state,
      server.desired,
      server.pid !== null,
      server.instances.length,
      server.pendingInstances,
      server.watching,
      server.killed,
      server.pin,
      Object.keys(server.timers).sort(),
    ]);
  while (frontier.length > 0 && reached.size < 5000) {
    const server = frontier.pop()!;
    const key = shape(server);
    if (reached.has(key)) continue;
    reached.set(key, server);
    now += 10;
    const events = ALL_COLUMNS.map((column) => ({ ...eventFor(column, server), now }) as ServerEvent).concat([
      { type: "exited", now, pid: server.pid ?? 100, code: 0, signal: null },
      { type: "instance-spawned", now, pid: 400 + reached.size },
      { type: "instance-spawn-failed", now, errno: "EAGAIN" },
      { type: "idle-check", now: now + 10_000, busy: false },
      { type: "idle-check", now, busy: true },
    ]);
    for (const event of events) {
      const result = step(server, event);
      if (result.ignored === null) frontier.push(result.server);
    }
  }

  it("walks the states a lazy and an accept server reach", () => {
    const kinds = new Set([...reached.values()].map((server) => `${server.spec.name} ${server.state}`));
    expect([...kinds].sort()).toEqual([
      "echo failed",
      "echo listening",
      "echo stopped",
      "echo stopping",
      "web backoff",
      "web failed",
      "web listening",
      "web ready",
      "web starting",
      "web stopped",
      "web stopping",
    ]);
    expect(reached.size).toBeGreaterThan(100);
  });

  it("each reached state is at rest (stopped, failed, ready, listening) or has a timer armed; only a listening server is watched", () => {
    const waitingForever = [...reached.values()].filter((server) => !isAtRest(server) && Object.keys(server.timers).length === 0);
    expect(waitingForever.map(shape)).toEqual([]);
    expect([...reached.values()].filter((server) => server.watching && server.state !== "listening").map(shape)).toEqual([]);
    // An accept server never runs more than maxInstances at once.
    expect(Math.max(...[...reached.values()].map((server) => server.instances.length + server.pendingInstances))).toBeLessThanOrEqual(ACCEPT.maxInstances!);
  });
});

describe("servesDependents: when what requires a server may start", () => {
  const plain = spec("db", { readiness: { kind: "none" } });
  const onSockets = { ...plain, sockets: [socket("tcp:5432")], readyOnSockets: true };
  const states = (s: typeof plain) => {
    const stopped = createServer(s, 0);
    const starting = after(stopped, { type: "start", now: 1 });
    const crashed = after(after(starting, { type: "spawned", now: 2, pid: 5 }), { type: "exited", now: 3, pid: 5, code: 1, signal: null });
    const restarting = after(after(starting, { type: "spawned", now: 2, pid: 5 }), { type: "restart", now: 3 });
    const stopping = after(after(starting, { type: "spawned", now: 2, pid: 5 }), { type: "stop", now: 3 });
    return { stopped, starting, ready: after(starting, { type: "spawned", now: 2, pid: 5 }), backoff: crashed, restarting, stopping };
  };

  it.each([
    ["ready", true, true],
    ["starting", false, true],
    ["backoff", false, true],
    ["restarting", false, true],
    ["stopping", false, false],
    ["stopped", false, false],
  ] as const)("%s: %s without readiness: socket, %s with it", (name, plainServes, socketServes) => {
    expect(servesDependents(states(plain)[name])).toBe(plainServes);
    expect(servesDependents(states(onSockets)[name])).toBe(socketServes);
  });

  it("a listening server serves its dependents: a connection starts it", () => {
    expect(servesDependents(activationSituations["listening (lazy)"])).toBe(true);
    expect(servesDependents(activationSituations["listening (accept, at maxInstances)"])).toBe(true);
  });
});
