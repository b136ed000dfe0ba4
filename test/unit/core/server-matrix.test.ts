// Every cell of the server machine's table: each situation (a state, with the variants that change
// its behaviour: a hook running, a pending spawn, a stop for a restart, SIGKILL sent, postStop after a
// crash) × each event column, with the exact outcome. Then a walk over every state the machine can
// reach: each one either waits for nothing (stopped, failed, ready) or has a timer armed.

import { describe, expect, it } from "vitest";
import { createServer, isAtRest, step, type Column as AnyColumn, type Server, type ServerEvent } from "../../../init/core/server";
import { effectText, spec } from "./fixtures";
import {
  CGROUP,
  S,
  backoff,
  daemonFound,
  failed,
  launcher,
  postStop,
  postStopCrash,
  postStopTimedOut,
  preStart,
  preStartPending,
  ready,
  readyCgroup,
  readyWatchdog,
  remainsCrash,
  remainsStop,
  seeking,
  situations,
  starting,
  startingCgroup,
  startingPending,
  stopped,
  stopping,
  stoppingCgroup,
  stoppingKilled,
  stoppingPending,
  stoppingPreStart,
  stoppingRestart,
} from "./situations";

/** The columns of this table; those of socket activation are in server-activation.test.ts. */
type Column = Exclude<AnyColumn, "socket-activity" | "instance-spawned" | "instance-spawn-failed" | "instance-exited" | "idle" | "idle-check">;

const NOW = 20_000;
type Situation = keyof typeof situations;

const COLUMNS: Column[] = [
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

/** The event of a column, as sent to a server in this situation (timers carry its armed id, if any; hook-exited its hook's pid). */
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
    case "cgroup-empty":
      return { type: column, now };
    case "main-pid":
      return { type: "main-pid", now, pid: 250 };
    case "spawned":
      return { type: "spawned", now, pid: 200 };
    case "spawn-failed":
      return { type: "spawn-failed", now, errno: "ENOENT", syscall: "execve" };
    case "probe-failed":
      return { type: "probe-failed", now, message: "connection refused" };
    case "exited":
      return { type: "exited", now, pid: 100, code: 1, signal: null };
    case "hook-spawned":
      return { type: "hook-spawned", now, pid: 210 };
    case "hook-spawn-failed":
      return { type: "hook-spawn-failed", now, errno: "ENOENT", syscall: "execve" };
    case "hook-exited":
      return { type: "hook-exited", now, pid: server.hookPid ?? 90, code: 0, signal: null };
    case "pre-start-timeout":
    case "start-timeout":
    case "stop-timeout":
    case "post-stop-timeout":
    case "backoff":
    case "stable":
    case "watchdog":
      return { type: "timer", now, timer: column, id: server.timers[column] ?? 999 };
    case "pin-started":
      return { type: "pin", now, pin: "started" };
    case "pin-stopped":
      return { type: "pin", now, pin: "stopped" };
    case "dependency-failed":
      return { type: "dependency-failed", now, dependency: "sys/database/2" };
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

const START = ["log starting", "run-pre-start", "arm pre-start-timeout@40000"];
const STRAY = ["kill 200", "log unexpected"];
const STRAY_HOOK = ["kill 210", "log unexpected"];
const SIGTERM_100 = ["signal 15 100", "arm stop-timeout@25000"];

const expected: Record<Situation, Record<Column, Outcome>> = {
  stopped: {
    start: to("starting", "up", "start-requested", ...START),
    stop: ignored("already stopped"),
    restart: to("starting", "up", "restart-requested", ...START),
    spawned: to("stopped", "down", "initial", ...STRAY),
    "spawn-failed": ignored("no spawn pending"),
    ready: ignored("no process"),
    "probe-failed": ignored("no process"),
    exited: ignored("no process"),
    "hook-spawned": to("stopped", "down", "initial", ...STRAY_HOOK),
    "hook-spawn-failed": ignored("no hook spawn pending"),
    "hook-exited": ignored("no hook running"),
    "pre-start-timeout": ignored("stale pre-start-timeout timer"),
    "start-timeout": ignored("stale start-timeout timer"),
    "stop-timeout": ignored("stale stop-timeout timer"),
    "post-stop-timeout": ignored("stale post-stop-timeout timer"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("starting", "up", "start-requested", "log pin", ...START),
    "pin-stopped": to("stopped", "down", "initial", "log pin"),
    unpin: ignored("not pinned"),
    "stop-queued": ignored("already stopped"),
    kill: ignored("no process"),
    "dependency-failed": to("failed", "up", "dependency-failed", "log failed"),
    "cgroup-empty": ignored("no process left in a cgroup"),
    "main-pid": ignored("no main process looked for"),
    watchdog: ignored("stale watchdog timer"),
  },
  "starting (preStart spawn pending)": {
    start: ignored("already starting"),
    stop: to("stopping", "down", "stop-requested", "cancel pre-start-timeout", "log stopping", "arm stop-timeout@25000"),
    restart: to("stopping", "up", "restart-requested", "cancel pre-start-timeout", "log stopping", "arm stop-timeout@25000"),
    spawned: to("starting", "up", "start-requested", ...STRAY),
    "spawn-failed": ignored("no spawn pending"),
    ready: ignored("ready before spawned"),
    "probe-failed": ignored("probe failed before spawned"),
    exited: ignored("exit of pid 100, not ours"),
    "hook-spawned": to("starting", "up", "start-requested", "log pre-start"),
    "hook-spawn-failed": to("backoff", "up", "pre-start-failed", "log pre-start-failed", "cancel pre-start-timeout", "arm backoff@21000", "log restarting"),
    "hook-exited": ignored("exit of pid 90, not our hook"),
    "pre-start-timeout": to("backoff", "up", "pre-start-timeout", "log pre-start-timeout", "arm backoff@21000", "log restarting"),
    "start-timeout": ignored("stale start-timeout timer"),
    "stop-timeout": ignored("stale stop-timeout timer"),
    "post-stop-timeout": ignored("stale post-stop-timeout timer"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("starting", "up", "start-requested", "log pin"),
    "pin-stopped": to("stopping", "down", "stop-requested", "log pin", "cancel pre-start-timeout", "log stopping", "arm stop-timeout@25000"),
    unpin: ignored("not pinned"),
    "stop-queued": to("starting", "down", "start-requested"),
    kill: to("stopping", "down", "hard-kill", "cancel pre-start-timeout", "log killing", "arm stop-timeout@25000"),
    "dependency-failed": ignored("already started"),
    "cgroup-empty": ignored("no process left in a cgroup"),
    "main-pid": ignored("no main process looked for"),
    watchdog: ignored("stale watchdog timer"),
  },
  "starting (preStart running)": {
    start: ignored("already starting"),
    stop: to("stopping", "down", "stop-requested", "cancel pre-start-timeout", "log stopping", "signal 15 90", "arm stop-timeout@25000"),
    restart: to("stopping", "up", "restart-requested", "cancel pre-start-timeout", "log stopping", "signal 15 90", "arm stop-timeout@25000"),
    spawned: to("starting", "up", "start-requested", ...STRAY),
    "spawn-failed": ignored("no spawn pending"),
    ready: ignored("ready before spawned"),
    "probe-failed": ignored("probe failed before spawned"),
    exited: ignored("exit of pid 100, not ours"),
    "hook-spawned": to("starting", "up", "start-requested", ...STRAY_HOOK),
    "hook-spawn-failed": ignored("no hook spawn pending"),
    "hook-exited": to("starting", "up", "start-requested", "cancel pre-start-timeout", "log pre-start", "spawn", "arm start-timeout@50000"),
    "pre-start-timeout": to("stopping", "up", "pre-start-timeout", "log pre-start-timeout", "signal 15 90", "arm stop-timeout@25000"),
    "start-timeout": ignored("stale start-timeout timer"),
    "stop-timeout": ignored("stale stop-timeout timer"),
    "post-stop-timeout": ignored("stale post-stop-timeout timer"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("starting", "up", "start-requested", "log pin"),
    "pin-stopped": to("stopping", "down", "stop-requested", "log pin", "cancel pre-start-timeout", "log stopping", "signal 15 90", "arm stop-timeout@25000"),
    unpin: ignored("not pinned"),
    "stop-queued": to("starting", "down", "start-requested"),
    kill: to("stopping", "down", "hard-kill", "cancel pre-start-timeout", "log killing", "kill 90", "arm stop-timeout@25000"),
    "dependency-failed": ignored("already started"),
    "cgroup-empty": ignored("no process left in a cgroup"),
    "main-pid": ignored("no main process looked for"),
    watchdog: ignored("stale watchdog timer"),
  },
  "starting (spawn pending)": {
    start: ignored("already starting"),
    stop: to("stopping", "down", "stop-requested", "cancel start-timeout", "log stopping", "arm stop-timeout@25000"),
    restart: to("stopping", "up", "restart-requested", "cancel start-timeout", "log stopping", "arm stop-timeout@25000"),
    spawned: to("starting", "up", "start-requested", "log started", "probe 200"),
    "spawn-failed": to("backoff", "up", "exec-failed", "log exec-failed", "cancel start-timeout", "arm backoff@21000", "log restarting"),
    ready: ignored("ready before spawned"),
    "probe-failed": ignored("probe failed before spawned"),
    exited: ignored("exit of pid 100, not ours"),
    "hook-spawned": to("starting", "up", "start-requested", ...STRAY_HOOK),
    "hook-spawn-failed": ignored("no hook spawn pending"),
    "hook-exited": ignored("exit of pid 90, not our hook"),
    "pre-start-timeout": ignored("stale pre-start-timeout timer"),
    "start-timeout": to("backoff", "up", "start-timeout", "log start-timeout", "arm backoff@21000", "log restarting"),
    "stop-timeout": ignored("stale stop-timeout timer"),
    "post-stop-timeout": ignored("stale post-stop-timeout timer"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("starting", "up", "start-requested", "log pin"),
    "pin-stopped": to("stopping", "down", "stop-requested", "log pin", "cancel start-timeout", "log stopping", "arm stop-timeout@25000"),
    unpin: ignored("not pinned"),
    "stop-queued": to("starting", "down", "start-requested"),
    kill: to("stopping", "down", "hard-kill", "cancel start-timeout", "log killing", "arm stop-timeout@25000"),
    "dependency-failed": ignored("already started"),
    "cgroup-empty": ignored("no process left in a cgroup"),
    "main-pid": ignored("no main process looked for"),
    watchdog: ignored("stale watchdog timer"),
  },
  starting: {
    start: ignored("already starting"),
    stop: to("stopping", "down", "stop-requested", "cancel start-timeout", "stop-probe", "log stopping", ...SIGTERM_100),
    restart: to("stopping", "up", "restart-requested", "cancel start-timeout", "stop-probe", "log stopping", ...SIGTERM_100),
    spawned: to("starting", "up", "start-requested", ...STRAY),
    "spawn-failed": ignored("already spawned"),
    ready: to("ready", "up", "ready", "cancel start-timeout", "arm stable@30000", "log ready"),
    "probe-failed": to("stopping", "up", "readiness-failed", "log readiness-failed", "cancel start-timeout", ...SIGTERM_100),
    exited: to("stopping", "up", "exited", "log exited", "cancel start-timeout", "stop-probe", "run-post-stop 1/-", "arm post-stop-timeout@24000"),
    "hook-spawned": to("starting", "up", "start-requested", ...STRAY_HOOK),
    "hook-spawn-failed": ignored("no hook spawn pending"),
    "hook-exited": ignored("exit of pid 90, not our hook"),
    "pre-start-timeout": ignored("stale pre-start-timeout timer"),
    "start-timeout": to("stopping", "up", "start-timeout", "log start-timeout", "stop-probe", ...SIGTERM_100),
    "stop-timeout": ignored("stale stop-timeout timer"),
    "post-stop-timeout": ignored("stale post-stop-timeout timer"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("starting", "up", "start-requested", "log pin"),
    "pin-stopped": to("stopping", "down", "stop-requested", "log pin", "cancel start-timeout", "stop-probe", "log stopping", ...SIGTERM_100),
    unpin: ignored("not pinned"),
    "stop-queued": to("starting", "down", "start-requested"),
    kill: to("stopping", "down", "hard-kill", "cancel start-timeout", "stop-probe", "log killing", "kill 100", "arm stop-timeout@25000"),
    "dependency-failed": ignored("already started"),
    "cgroup-empty": ignored("no process left in a cgroup"),
    "main-pid": ignored("no main process looked for"),
    watchdog: ignored("stale watchdog timer"),
  },
  ready: {
    start: ignored("already ready"),
    stop: to("stopping", "down", "stop-requested", "cancel stable", "log stopping", ...SIGTERM_100),
    restart: to("stopping", "up", "restart-requested", "cancel stable", "log stopping", ...SIGTERM_100),
    spawned: to("ready", "up", "ready", ...STRAY),
    "spawn-failed": ignored("no spawn pending"),
    ready: ignored("already ready"),
    "probe-failed": ignored("already ready"),
    exited: to("stopping", "up", "exited", "log exited", "cancel stable", "run-post-stop 1/-", "arm post-stop-timeout@24000"),
    "hook-spawned": to("ready", "up", "ready", ...STRAY_HOOK),
    "hook-spawn-failed": ignored("no hook spawn pending"),
    "hook-exited": ignored("no hook running"),
    "pre-start-timeout": ignored("stale pre-start-timeout timer"),
    "start-timeout": ignored("stale start-timeout timer"),
    "stop-timeout": ignored("stale stop-timeout timer"),
    "post-stop-timeout": ignored("stale post-stop-timeout timer"),
    backoff: ignored("stale backoff timer"),
    stable: to("ready", "up", "ready", "log backoff-reset"),
    "pin-started": to("ready", "up", "ready", "log pin"),
    "pin-stopped": to("stopping", "down", "stop-requested", "log pin", "cancel stable", "log stopping", ...SIGTERM_100),
    unpin: ignored("not pinned"),
    "stop-queued": to("ready", "down", "ready"),
    kill: to("stopping", "down", "hard-kill", "cancel stable", "log killing", "kill 100", "arm stop-timeout@25000"),
    "dependency-failed": ignored("already started"),
    "cgroup-empty": ignored("no process left in a cgroup"),
    "main-pid": ignored("no main process looked for"),
    watchdog: ignored("stale watchdog timer"),
  },
  stopping: {
    start: to("stopping", "up", "stop-requested"),
    stop: ignored("already stopping"),
    restart: to("stopping", "up", "stop-requested"),
    spawned: to("stopping", "down", "stop-requested", ...STRAY),
    "spawn-failed": ignored("already spawned"),
    ready: ignored("stopping"),
    "probe-failed": ignored("stopping"),
    exited: to("stopping", "down", "stop-requested", "log exited", "cancel stop-timeout", "run-post-stop 1/-", "arm post-stop-timeout@24000"),
    "hook-spawned": to("stopping", "down", "stop-requested", ...STRAY_HOOK),
    "hook-spawn-failed": ignored("no hook spawn pending"),
    "hook-exited": ignored("exit of pid 90, not our hook"),
    "pre-start-timeout": ignored("stale pre-start-timeout timer"),
    "start-timeout": ignored("stale start-timeout timer"),
    "stop-timeout": to("stopping", "down", "stop-timeout", "log stop-timeout", "kill 100", "arm stop-timeout@25000"),
    "post-stop-timeout": ignored("stale post-stop-timeout timer"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("stopping", "up", "stop-requested", "log pin"),
    "pin-stopped": to("stopping", "down", "stop-requested", "log pin"),
    unpin: ignored("not pinned"),
    "stop-queued": ignored("already stopping"),
    kill: to("stopping", "down", "hard-kill", "log killing", "kill 100", "arm stop-timeout@25000"),
    "dependency-failed": ignored("already started"),
    "cgroup-empty": ignored("no process left in a cgroup"),
    "main-pid": ignored("no main process looked for"),
    watchdog: ignored("stale watchdog timer"),
  },
  "stopping (for a restart)": {
    start: ignored("will start again once stopped"),
    stop: to("stopping", "down", "stop-requested"),
    restart: ignored("will start again once stopped"),
    spawned: to("stopping", "up", "restart-requested", ...STRAY),
    "spawn-failed": ignored("already spawned"),
    ready: ignored("stopping"),
    "probe-failed": ignored("stopping"),
    exited: to("stopping", "up", "restart-requested", "log exited", "cancel stop-timeout", "run-post-stop 1/-", "arm post-stop-timeout@24000"),
    "hook-spawned": to("stopping", "up", "restart-requested", ...STRAY_HOOK),
    "hook-spawn-failed": ignored("no hook spawn pending"),
    "hook-exited": ignored("exit of pid 90, not our hook"),
    "pre-start-timeout": ignored("stale pre-start-timeout timer"),
    "start-timeout": ignored("stale start-timeout timer"),
    "stop-timeout": to("stopping", "up", "stop-timeout", "log stop-timeout", "kill 100", "arm stop-timeout@25000"),
    "post-stop-timeout": ignored("stale post-stop-timeout timer"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("stopping", "up", "restart-requested", "log pin"),
    "pin-stopped": to("stopping", "down", "stop-requested", "log pin"),
    unpin: ignored("not pinned"),
    "stop-queued": to("stopping", "down", "stop-requested"),
    kill: to("stopping", "down", "hard-kill", "log killing", "kill 100", "arm stop-timeout@25000"),
    "dependency-failed": ignored("already started"),
    "cgroup-empty": ignored("no process left in a cgroup"),
    "main-pid": ignored("no main process looked for"),
    watchdog: ignored("stale watchdog timer"),
  },
  "stopping (spawn pending)": {
    start: to("stopping", "up", "stop-requested"),
    stop: ignored("already stopping"),
    restart: to("stopping", "up", "stop-requested"),
    spawned: to("stopping", "down", "stop-requested", "log started", "signal 15 200", "arm stop-timeout@25000"),
    "spawn-failed": to("stopped", "down", "stop-requested", "log exec-failed", "cancel stop-timeout", "log stopped"),
    ready: ignored("stopping"),
    "probe-failed": ignored("stopping"),
    exited: ignored("exit of pid 100, not ours"),
    "hook-spawned": to("stopping", "down", "stop-requested", ...STRAY_HOOK),
    "hook-spawn-failed": ignored("no hook spawn pending"),
    "hook-exited": ignored("exit of pid 90, not our hook"),
    "pre-start-timeout": ignored("stale pre-start-timeout timer"),
    "start-timeout": ignored("stale start-timeout timer"),
    "stop-timeout": to("stopped", "down", "stop-requested", "log stop-timeout", "log stopped"),
    "post-stop-timeout": ignored("stale post-stop-timeout timer"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("stopping", "up", "stop-requested", "log pin"),
    "pin-stopped": to("stopping", "down", "stop-requested", "log pin"),
    unpin: ignored("not pinned"),
    "stop-queued": ignored("already stopping"),
    kill: to("stopping", "down", "hard-kill", "log killing", "arm stop-timeout@25000"),
    "dependency-failed": ignored("already started"),
    "cgroup-empty": ignored("no process left in a cgroup"),
    "main-pid": ignored("no main process looked for"),
    watchdog: ignored("stale watchdog timer"),
  },
  "stopping (preStart)": {
    start: to("stopping", "up", "stop-requested"),
    stop: ignored("already stopping"),
    restart: to("stopping", "up", "stop-requested"),
    spawned: to("stopping", "down", "stop-requested", ...STRAY),
    "spawn-failed": ignored("no spawn pending"),
    ready: ignored("stopping"),
    "probe-failed": ignored("stopping"),
    exited: ignored("exit of pid 100, not ours"),
    "hook-spawned": to("stopping", "down", "stop-requested", ...STRAY_HOOK),
    "hook-spawn-failed": ignored("no hook spawn pending"),
    "hook-exited": to("stopped", "down", "stop-requested", "log pre-start", "cancel stop-timeout", "log stopped"),
    "pre-start-timeout": ignored("stale pre-start-timeout timer"),
    "start-timeout": ignored("stale start-timeout timer"),
    "stop-timeout": to("stopping", "down", "stop-requested", "log stop-timeout", "kill 90", "arm stop-timeout@25000"),
    "post-stop-timeout": ignored("stale post-stop-timeout timer"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("stopping", "up", "stop-requested", "log pin"),
    "pin-stopped": to("stopping", "down", "stop-requested", "log pin"),
    unpin: ignored("not pinned"),
    "stop-queued": ignored("already stopping"),
    kill: to("stopping", "down", "hard-kill", "log killing", "kill 90", "arm stop-timeout@25000"),
    "dependency-failed": ignored("already started"),
    "cgroup-empty": ignored("no process left in a cgroup"),
    "main-pid": ignored("no main process looked for"),
    watchdog: ignored("stale watchdog timer"),
  },
  "stopping (killed)": {
    start: to("stopping", "up", "hard-kill"),
    stop: ignored("already stopping"),
    restart: to("stopping", "up", "hard-kill"),
    spawned: to("stopping", "down", "hard-kill", ...STRAY),
    "spawn-failed": ignored("already spawned"),
    ready: ignored("stopping"),
    "probe-failed": ignored("stopping"),
    exited: to("stopping", "down", "hard-kill", "log exited", "cancel stop-timeout", "run-post-stop 1/-", "arm post-stop-timeout@24000"),
    "hook-spawned": to("stopping", "down", "hard-kill", ...STRAY_HOOK),
    "hook-spawn-failed": ignored("no hook spawn pending"),
    "hook-exited": ignored("exit of pid 90, not our hook"),
    "pre-start-timeout": ignored("stale pre-start-timeout timer"),
    "start-timeout": ignored("stale start-timeout timer"),
    "stop-timeout": to("failed", "down", "kill-timeout", "log kill-timeout", "log failed"),
    "post-stop-timeout": ignored("stale post-stop-timeout timer"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("stopping", "up", "hard-kill", "log pin"),
    "pin-stopped": to("stopping", "down", "hard-kill", "log pin"),
    unpin: ignored("not pinned"),
    "stop-queued": ignored("already stopping"),
    kill: ignored("already killed"),
    "dependency-failed": ignored("already started"),
    "cgroup-empty": ignored("no process left in a cgroup"),
    "main-pid": ignored("no main process looked for"),
    watchdog: ignored("stale watchdog timer"),
  },
  "stopping (postStop)": {
    start: to("stopping", "up", "stop-requested"),
    stop: ignored("already stopping"),
    restart: to("stopping", "up", "stop-requested"),
    spawned: to("stopping", "down", "stop-requested", ...STRAY),
    "spawn-failed": ignored("no spawn pending"),
    ready: ignored("stopping"),
    "probe-failed": ignored("stopping"),
    exited: ignored("exit of pid 100, not ours"),
    "hook-spawned": to("stopping", "down", "stop-requested", ...STRAY_HOOK),
    "hook-spawn-failed": ignored("no hook spawn pending"),
    "hook-exited": to("stopped", "down", "stop-requested", "log post-stop", "cancel post-stop-timeout", "log stopped"),
    "pre-start-timeout": ignored("stale pre-start-timeout timer"),
    "start-timeout": ignored("stale start-timeout timer"),
    "stop-timeout": ignored("stale stop-timeout timer"),
    "post-stop-timeout": to("stopping", "down", "post-stop-timeout", "log post-stop-timeout", "signal 15 110", "arm stop-timeout@25000"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("stopping", "up", "stop-requested", "log pin"),
    "pin-stopped": to("stopping", "down", "stop-requested", "log pin"),
    unpin: ignored("not pinned"),
    "stop-queued": ignored("already stopping"),
    kill: to("stopping", "down", "hard-kill", "cancel post-stop-timeout", "log killing", "kill 110", "arm stop-timeout@25000"),
    "dependency-failed": ignored("already started"),
    "cgroup-empty": ignored("no process left in a cgroup"),
    "main-pid": ignored("no main process looked for"),
    watchdog: ignored("stale watchdog timer"),
  },
  "stopping (postStop after a crash)": {
    start: to("stopping", "up", "exited"),
    stop: to("stopping", "down", "exited"),
    restart: to("stopping", "up", "exited"),
    spawned: to("stopping", "up", "exited", ...STRAY),
    "spawn-failed": ignored("no spawn pending"),
    ready: ignored("stopping"),
    "probe-failed": ignored("stopping"),
    exited: ignored("exit of pid 100, not ours"),
    "hook-spawned": to("stopping", "up", "exited", ...STRAY_HOOK),
    "hook-spawn-failed": ignored("no hook spawn pending"),
    "hook-exited": to("backoff", "up", "exited", "log post-stop", "cancel post-stop-timeout", "arm backoff@21000", "log restarting"),
    "pre-start-timeout": ignored("stale pre-start-timeout timer"),
    "start-timeout": ignored("stale start-timeout timer"),
    "stop-timeout": ignored("stale stop-timeout timer"),
    "post-stop-timeout": to("stopping", "up", "post-stop-timeout", "log post-stop-timeout", "signal 15 110", "arm stop-timeout@25000"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("stopping", "up", "exited", "log pin"),
    "pin-stopped": to("stopping", "down", "exited", "log pin"),
    unpin: ignored("not pinned"),
    "stop-queued": to("stopping", "down", "exited"),
    kill: to("stopping", "down", "hard-kill", "cancel post-stop-timeout", "log killing", "kill 110", "arm stop-timeout@25000"),
    "dependency-failed": ignored("already started"),
    "cgroup-empty": ignored("no process left in a cgroup"),
    "main-pid": ignored("no main process looked for"),
    watchdog: ignored("stale watchdog timer"),
  },
  "stopping (postStop timed out)": {
    start: to("stopping", "up", "post-stop-timeout"),
    stop: ignored("already stopping"),
    restart: to("stopping", "up", "post-stop-timeout"),
    spawned: to("stopping", "down", "post-stop-timeout", ...STRAY),
    "spawn-failed": ignored("no spawn pending"),
    ready: ignored("stopping"),
    "probe-failed": ignored("stopping"),
    exited: ignored("exit of pid 100, not ours"),
    "hook-spawned": to("stopping", "down", "post-stop-timeout", ...STRAY_HOOK),
    "hook-spawn-failed": ignored("no hook spawn pending"),
    "hook-exited": to("stopped", "down", "post-stop-timeout", "log post-stop", "cancel stop-timeout", "log stopped"),
    "pre-start-timeout": ignored("stale pre-start-timeout timer"),
    "start-timeout": ignored("stale start-timeout timer"),
    "stop-timeout": to("stopping", "down", "post-stop-timeout", "log stop-timeout", "kill 110", "arm stop-timeout@25000"),
    "post-stop-timeout": ignored("stale post-stop-timeout timer"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("stopping", "up", "post-stop-timeout", "log pin"),
    "pin-stopped": to("stopping", "down", "post-stop-timeout", "log pin"),
    unpin: ignored("not pinned"),
    "stop-queued": ignored("already stopping"),
    kill: to("stopping", "down", "hard-kill", "log killing", "kill 110", "arm stop-timeout@25000"),
    "dependency-failed": ignored("already started"),
    "cgroup-empty": ignored("no process left in a cgroup"),
    "main-pid": ignored("no main process looked for"),
    watchdog: ignored("stale watchdog timer"),
  },
  backoff: {
    start: to("starting", "up", "start-requested", "cancel backoff", ...START),
    stop: to("stopped", "down", "stop-requested", "cancel backoff", "log stopped"),
    restart: to("starting", "up", "restart-requested", "cancel backoff", ...START),
    spawned: to("backoff", "up", "exited", ...STRAY),
    "spawn-failed": ignored("no spawn pending"),
    ready: ignored("no process"),
    "probe-failed": ignored("no process"),
    exited: ignored("no process"),
    "hook-spawned": to("backoff", "up", "exited", ...STRAY_HOOK),
    "hook-spawn-failed": ignored("no hook spawn pending"),
    "hook-exited": ignored("no hook running"),
    "pre-start-timeout": ignored("stale pre-start-timeout timer"),
    "start-timeout": ignored("stale start-timeout timer"),
    "stop-timeout": ignored("stale stop-timeout timer"),
    "post-stop-timeout": ignored("stale post-stop-timeout timer"),
    backoff: to("starting", "up", "auto-restart", ...START),
    stable: ignored("stale stable timer"),
    "pin-started": to("starting", "up", "start-requested", "log pin", "cancel backoff", ...START),
    "pin-stopped": to("stopped", "down", "stop-requested", "log pin", "cancel backoff", "log stopped"),
    unpin: ignored("not pinned"),
    "stop-queued": to("stopped", "down", "stop-requested", "cancel backoff", "log stopped"),
    kill: to("stopped", "down", "hard-kill", "cancel backoff", "log stopped"),
    "dependency-failed": ignored("already started"),
    "cgroup-empty": ignored("no process left in a cgroup"),
    "main-pid": ignored("no main process looked for"),
    watchdog: ignored("stale watchdog timer"),
  },
  failed: {
    start: to("starting", "up", "start-requested", ...START),
    stop: to("failed", "down", "burst-limit"),
    restart: to("starting", "up", "restart-requested", ...START),
    spawned: to("failed", "up", "burst-limit", ...STRAY),
    "spawn-failed": ignored("no spawn pending"),
    ready: ignored("no process"),
    "probe-failed": ignored("no process"),
    exited: ignored("no process"),
    "hook-spawned": to("failed", "up", "burst-limit", ...STRAY_HOOK),
    "hook-spawn-failed": ignored("no hook spawn pending"),
    "hook-exited": ignored("no hook running"),
    "pre-start-timeout": ignored("stale pre-start-timeout timer"),
    "start-timeout": ignored("stale start-timeout timer"),
    "stop-timeout": ignored("stale stop-timeout timer"),
    "post-stop-timeout": ignored("stale post-stop-timeout timer"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("starting", "up", "start-requested", "log pin", ...START),
    "pin-stopped": to("failed", "down", "burst-limit", "log pin"),
    unpin: ignored("not pinned"),
    "stop-queued": to("failed", "down", "burst-limit"),
    kill: ignored("no process"),
    "dependency-failed": ignored("already failed"),
    "cgroup-empty": ignored("no process left in a cgroup"),
    "main-pid": ignored("no main process looked for"),
    watchdog: ignored("stale watchdog timer"),
  },
  "starting (cgroup)": {
    start: ignored("already starting"),
    stop: to("stopping", "down", "stop-requested", "cancel start-timeout", "stop-probe", "log stopping", "signal-cgroup 15", "arm stop-timeout@25000"),
    restart: to("stopping", "up", "restart-requested", "cancel start-timeout", "stop-probe", "log stopping", "signal-cgroup 15", "arm stop-timeout@25000"),
    spawned: to("starting", "up", "start-requested", "kill 200", "log unexpected"),
    "spawn-failed": ignored("already spawned"),
    ready: to("ready", "up", "ready", "cancel start-timeout", "arm stable@30000", "log ready"),
    "probe-failed": to("stopping", "up", "readiness-failed", "log readiness-failed", "cancel start-timeout", "signal-cgroup 15", "arm stop-timeout@25000"),
    exited: to("stopping", "up", "exited", "log exited", "cancel start-timeout", "stop-probe", "log remains", "signal-cgroup 15", "arm stop-timeout@25000"),
    "hook-spawned": to("starting", "up", "start-requested", "kill 210", "log unexpected"),
    "hook-spawn-failed": ignored("no hook spawn pending"),
    "hook-exited": ignored("exit of pid 90, not our hook"),
    "pre-start-timeout": ignored("stale pre-start-timeout timer"),
    "start-timeout": to("stopping", "up", "start-timeout", "log start-timeout", "stop-probe", "signal-cgroup 15", "arm stop-timeout@25000"),
    "stop-timeout": ignored("stale stop-timeout timer"),
    "post-stop-timeout": ignored("stale post-stop-timeout timer"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("starting", "up", "start-requested", "log pin"),
    "pin-stopped": to(
      "stopping",
      "down",
      "stop-requested",
      "log pin",
      "cancel start-timeout",
      "stop-probe",
      "log stopping",
      "signal-cgroup 15",
      "arm stop-timeout@25000",
    ),
    unpin: ignored("not pinned"),
    "stop-queued": to("starting", "down", "start-requested"),
    kill: to("stopping", "down", "hard-kill", "cancel start-timeout", "stop-probe", "log killing", "signal-cgroup 9", "arm stop-timeout@25000"),
    "dependency-failed": ignored("already started"),
    "cgroup-empty": to("starting", "up", "start-requested"),
    "main-pid": ignored("no main process looked for"),
    watchdog: ignored("stale watchdog timer"),
  },
  "ready (cgroup)": {
    start: ignored("already ready"),
    stop: to("stopping", "down", "stop-requested", "cancel stable", "log stopping", "signal-cgroup 15", "arm stop-timeout@25000"),
    restart: to("stopping", "up", "restart-requested", "cancel stable", "log stopping", "signal-cgroup 15", "arm stop-timeout@25000"),
    spawned: to("ready", "up", "ready", "kill 200", "log unexpected"),
    "spawn-failed": ignored("no spawn pending"),
    ready: ignored("already ready"),
    "probe-failed": ignored("already ready"),
    exited: to("stopping", "up", "exited", "log exited", "cancel stable", "log remains", "signal-cgroup 15", "arm stop-timeout@25000"),
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
    "pin-stopped": to("stopping", "down", "stop-requested", "log pin", "cancel stable", "log stopping", "signal-cgroup 15", "arm stop-timeout@25000"),
    unpin: ignored("not pinned"),
    "stop-queued": to("ready", "down", "ready"),
    kill: to("stopping", "down", "hard-kill", "cancel stable", "log killing", "signal-cgroup 9", "arm stop-timeout@25000"),
    "dependency-failed": ignored("already started"),
    "cgroup-empty": to("ready", "up", "ready"),
    "main-pid": ignored("no main process looked for"),
    watchdog: ignored("stale watchdog timer"),
  },
  "stopping (cgroup)": {
    start: to("stopping", "up", "stop-requested"),
    stop: ignored("already stopping"),
    restart: to("stopping", "up", "stop-requested"),
    spawned: to("stopping", "down", "stop-requested", "kill 200", "log unexpected"),
    "spawn-failed": ignored("already spawned"),
    ready: ignored("stopping"),
    "probe-failed": ignored("stopping"),
    exited: to("stopping", "down", "stop-requested", "log exited"),
    "hook-spawned": to("stopping", "down", "stop-requested", "kill 210", "log unexpected"),
    "hook-spawn-failed": ignored("no hook spawn pending"),
    "hook-exited": ignored("exit of pid 90, not our hook"),
    "pre-start-timeout": ignored("stale pre-start-timeout timer"),
    "start-timeout": ignored("stale start-timeout timer"),
    "stop-timeout": to("stopping", "down", "stop-timeout", "log stop-timeout", "signal-cgroup 9", "arm stop-timeout@25000"),
    "post-stop-timeout": ignored("stale post-stop-timeout timer"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("stopping", "up", "stop-requested", "log pin"),
    "pin-stopped": to("stopping", "down", "stop-requested", "log pin"),
    unpin: ignored("not pinned"),
    "stop-queued": ignored("already stopping"),
    kill: to("stopping", "down", "hard-kill", "log killing", "signal-cgroup 9", "arm stop-timeout@25000"),
    "dependency-failed": ignored("already started"),
    "cgroup-empty": to("stopping", "down", "stop-requested"),
    "main-pid": ignored("no main process looked for"),
    watchdog: ignored("stale watchdog timer"),
  },
  "stopping (remains after a crash)": {
    start: to("stopping", "up", "exited"),
    stop: to("stopping", "down", "stop-requested"),
    restart: to("stopping", "up", "exited"),
    spawned: to("stopping", "up", "exited", "kill 200", "log unexpected"),
    "spawn-failed": ignored("already spawned"),
    ready: ignored("stopping"),
    "probe-failed": ignored("stopping"),
    exited: ignored("exit of pid 100, not ours"),
    "hook-spawned": to("stopping", "up", "exited", "kill 210", "log unexpected"),
    "hook-spawn-failed": ignored("no hook spawn pending"),
    "hook-exited": ignored("exit of pid 90, not our hook"),
    "pre-start-timeout": ignored("stale pre-start-timeout timer"),
    "start-timeout": ignored("stale start-timeout timer"),
    "stop-timeout": to("stopping", "up", "stop-timeout", "log stop-timeout", "signal-cgroup 9", "arm stop-timeout@25000"),
    "post-stop-timeout": ignored("stale post-stop-timeout timer"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("stopping", "up", "exited", "log pin"),
    "pin-stopped": to("stopping", "down", "stop-requested", "log pin"),
    unpin: ignored("not pinned"),
    "stop-queued": to("stopping", "down", "stop-requested"),
    kill: to("stopping", "down", "hard-kill", "log killing", "signal-cgroup 9", "arm stop-timeout@25000"),
    "dependency-failed": ignored("already started"),
    "cgroup-empty": to("stopping", "up", "exited", "cancel stop-timeout", "run-post-stop 1/-", "arm post-stop-timeout@24000"),
    "main-pid": ignored("no main process looked for"),
    watchdog: ignored("stale watchdog timer"),
  },
  "stopping (remains of a stop)": {
    start: to("stopping", "up", "stop-requested"),
    stop: ignored("already stopping"),
    restart: to("stopping", "up", "stop-requested"),
    spawned: to("stopping", "down", "stop-requested", "kill 200", "log unexpected"),
    "spawn-failed": ignored("already spawned"),
    ready: ignored("stopping"),
    "probe-failed": ignored("stopping"),
    exited: ignored("exit of pid 100, not ours"),
    "hook-spawned": to("stopping", "down", "stop-requested", "kill 210", "log unexpected"),
    "hook-spawn-failed": ignored("no hook spawn pending"),
    "hook-exited": ignored("exit of pid 90, not our hook"),
    "pre-start-timeout": ignored("stale pre-start-timeout timer"),
    "start-timeout": ignored("stale start-timeout timer"),
    "stop-timeout": to("stopping", "down", "stop-timeout", "log stop-timeout", "signal-cgroup 9", "arm stop-timeout@25000"),
    "post-stop-timeout": ignored("stale post-stop-timeout timer"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("stopping", "up", "stop-requested", "log pin"),
    "pin-stopped": to("stopping", "down", "stop-requested", "log pin"),
    unpin: ignored("not pinned"),
    "stop-queued": ignored("already stopping"),
    kill: to("stopping", "down", "hard-kill", "log killing", "signal-cgroup 9", "arm stop-timeout@25000"),
    "dependency-failed": ignored("already started"),
    "cgroup-empty": to("stopping", "down", "stop-requested", "cancel stop-timeout", "run-post-stop -/15", "arm post-stop-timeout@24000"),
    "main-pid": ignored("no main process looked for"),
    watchdog: ignored("stale watchdog timer"),
  },
  "starting (forking: launcher)": {
    start: ignored("already starting"),
    stop: to("stopping", "down", "stop-requested", "cancel start-timeout", "log stopping", "signal-cgroup 15", "arm stop-timeout@25000"),
    restart: to("stopping", "up", "restart-requested", "cancel start-timeout", "log stopping", "signal-cgroup 15", "arm stop-timeout@25000"),
    spawned: to("starting", "up", "start-requested", "kill 200", "log unexpected"),
    "spawn-failed": ignored("already spawned"),
    ready: ignored("ready before its daemon is found"),
    "probe-failed": ignored("probe failed before its daemon is found"),
    exited: to("stopping", "up", "exited", "log exited", "cancel start-timeout", "log remains", "signal-cgroup 15", "arm stop-timeout@25000"),
    "hook-spawned": to("starting", "up", "start-requested", "kill 210", "log unexpected"),
    "hook-spawn-failed": ignored("no hook spawn pending"),
    "hook-exited": ignored("exit of pid 90, not our hook"),
    "pre-start-timeout": ignored("stale pre-start-timeout timer"),
    "start-timeout": to("stopping", "up", "start-timeout", "log start-timeout", "signal-cgroup 15", "arm stop-timeout@25000"),
    "stop-timeout": ignored("stale stop-timeout timer"),
    "post-stop-timeout": ignored("stale post-stop-timeout timer"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("starting", "up", "start-requested", "log pin"),
    "pin-stopped": to("stopping", "down", "stop-requested", "log pin", "cancel start-timeout", "log stopping", "signal-cgroup 15", "arm stop-timeout@25000"),
    unpin: ignored("not pinned"),
    "stop-queued": to("starting", "down", "start-requested"),
    kill: to("stopping", "down", "hard-kill", "cancel start-timeout", "log killing", "signal-cgroup 9", "arm stop-timeout@25000"),
    "dependency-failed": ignored("already started"),
    "cgroup-empty": to("starting", "up", "start-requested"),
    "main-pid": ignored("no main process looked for"),
    watchdog: ignored("stale watchdog timer"),
  },
  "starting (forking: seeking)": {
    start: ignored("already starting"),
    stop: to("stopping", "down", "stop-requested", "cancel start-timeout", "log stopping", "signal-cgroup 15", "arm stop-timeout@25000"),
    restart: to("stopping", "up", "restart-requested", "cancel start-timeout", "log stopping", "signal-cgroup 15", "arm stop-timeout@25000"),
    spawned: to("starting", "up", "start-requested", "kill 200", "log unexpected"),
    "spawn-failed": ignored("already spawned"),
    ready: ignored("ready before its daemon is found"),
    "probe-failed": ignored("probe failed before its daemon is found"),
    exited: ignored("exit of pid 100, not ours"),
    "hook-spawned": to("starting", "up", "start-requested", "kill 210", "log unexpected"),
    "hook-spawn-failed": ignored("no hook spawn pending"),
    "hook-exited": ignored("exit of pid 90, not our hook"),
    "pre-start-timeout": ignored("stale pre-start-timeout timer"),
    "start-timeout": to("stopping", "up", "start-timeout", "log start-timeout", "signal-cgroup 15", "arm stop-timeout@25000"),
    "stop-timeout": ignored("stale stop-timeout timer"),
    "post-stop-timeout": ignored("stale post-stop-timeout timer"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("starting", "up", "start-requested", "log pin"),
    "pin-stopped": to("stopping", "down", "stop-requested", "log pin", "cancel start-timeout", "log stopping", "signal-cgroup 15", "arm stop-timeout@25000"),
    unpin: ignored("not pinned"),
    "stop-queued": to("starting", "down", "start-requested"),
    kill: to("stopping", "down", "hard-kill", "cancel start-timeout", "log killing", "signal-cgroup 9", "arm stop-timeout@25000"),
    "dependency-failed": ignored("already started"),
    "cgroup-empty": to("starting", "up", "start-requested"),
    "main-pid": to("starting", "up", "start-requested", "log main-pid", "probe 250"),
    watchdog: ignored("stale watchdog timer"),
  },
  "starting (forking: daemon found)": {
    start: ignored("already starting"),
    stop: to("stopping", "down", "stop-requested", "cancel start-timeout", "stop-probe", "log stopping", "signal-cgroup 15", "arm stop-timeout@25000"),
    restart: to("stopping", "up", "restart-requested", "cancel start-timeout", "stop-probe", "log stopping", "signal-cgroup 15", "arm stop-timeout@25000"),
    spawned: to("starting", "up", "start-requested", "kill 200", "log unexpected"),
    "spawn-failed": ignored("already spawned"),
    ready: to("ready", "up", "ready", "cancel start-timeout", "arm stable@30000", "log ready"),
    "probe-failed": to("stopping", "up", "readiness-failed", "log readiness-failed", "cancel start-timeout", "signal-cgroup 15", "arm stop-timeout@25000"),
    exited: ignored("exit of pid 100, not ours"),
    "hook-spawned": to("starting", "up", "start-requested", "kill 210", "log unexpected"),
    "hook-spawn-failed": ignored("no hook spawn pending"),
    "hook-exited": ignored("exit of pid 90, not our hook"),
    "pre-start-timeout": ignored("stale pre-start-timeout timer"),
    "start-timeout": to("stopping", "up", "start-timeout", "log start-timeout", "stop-probe", "signal-cgroup 15", "arm stop-timeout@25000"),
    "stop-timeout": ignored("stale stop-timeout timer"),
    "post-stop-timeout": ignored("stale post-stop-timeout timer"),
    backoff: ignored("stale backoff timer"),
    stable: ignored("stale stable timer"),
    "pin-started": to("starting", "up", "start-requested", "log pin"),
    "pin-stopped": to(
      "stopping",
      "down",
      "stop-requested",
      "log pin",
      "cancel start-timeout",
      "stop-probe",
      "log stopping",
      "signal-cgroup 15",
      "arm stop-timeout@25000",
    ),
    unpin: ignored("not pinned"),
    "stop-queued": to("starting", "down", "start-requested"),
    kill: to("stopping", "down", "hard-kill", "cancel start-timeout", "stop-probe", "log killing", "signal-cgroup 9", "arm stop-timeout@25000"),
    "dependency-failed": ignored("already started"),
    "cgroup-empty": to("starting", "up", "start-requested"),
    "main-pid": ignored("no main process looked for"),
    watchdog: ignored("stale watchdog timer"),
  },
  "ready (watchdog)": {
    start: ignored("already ready"),
    stop: to("stopping", "down", "stop-requested", "cancel stable", "cancel watchdog", "log stopping", "signal 15 100", "arm stop-timeout@25000"),
    restart: to("stopping", "up", "restart-requested", "cancel stable", "cancel watchdog", "log stopping", "signal 15 100", "arm stop-timeout@25000"),
    spawned: to("ready", "up", "ready", "kill 200", "log unexpected"),
    "spawn-failed": ignored("no spawn pending"),
    ready: ignored("already ready"),
    "probe-failed": ignored("already ready"),
    exited: to("stopping", "up", "exited", "log exited", "cancel stable", "cancel watchdog", "run-post-stop 1/-", "arm post-stop-timeout@24000"),
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
      "cancel watchdog",
      "log stopping",
      "signal 15 100",
      "arm stop-timeout@25000",
    ),
    unpin: ignored("not pinned"),
    "stop-queued": to("ready", "down", "ready"),
    kill: to("stopping", "down", "hard-kill", "cancel stable", "cancel watchdog", "log killing", "kill 100", "arm stop-timeout@25000"),
    "dependency-failed": ignored("already started"),
    "cgroup-empty": ignored("no process left in a cgroup"),
    "main-pid": ignored("no main process looked for"),
    watchdog: to("stopping", "up", "watchdog", "cancel stable", "log watchdog", "signal 6 100", "arm stop-timeout@25000"),
  },
};

describe("server machine: the fixtures are the situations they claim to be", () => {
  it.each([
    ["stopped", stopped, "stopped", "down", null, null, null],
    ["starting (preStart spawn pending)", preStartPending, "starting", "up", null, "pre-start", null],
    ["starting (preStart running)", preStart, "starting", "up", null, "pre-start", 90],
    ["starting (spawn pending)", startingPending, "starting", "up", null, null, null],
    ["starting", starting, "starting", "up", 100, null, null],
    ["ready", ready, "ready", "up", 100, null, null],
    ["stopping", stopping, "stopping", "down", 100, null, null],
    ["stopping (for a restart)", stoppingRestart, "stopping", "up", 100, null, null],
    ["stopping (spawn pending)", stoppingPending, "stopping", "down", null, null, null],
    ["stopping (preStart)", stoppingPreStart, "stopping", "down", null, "pre-start", 90],
    ["stopping (killed)", stoppingKilled, "stopping", "down", 100, null, null],
    ["stopping (postStop)", postStop, "stopping", "down", null, "post-stop", 110],
    ["stopping (postStop after a crash)", postStopCrash, "stopping", "up", null, "post-stop", 110],
    ["stopping (postStop timed out)", postStopTimedOut, "stopping", "down", null, "post-stop", 110],
    ["backoff", backoff, "backoff", "up", null, null, null],
    ["failed", failed, "failed", "up", null, null, null],
    ["starting (cgroup)", startingCgroup, "starting", "up", 100, null, null],
    ["ready (cgroup)", readyCgroup, "ready", "up", 100, null, null],
    ["stopping (cgroup)", stoppingCgroup, "stopping", "down", 100, null, null],
    ["stopping (remains after a crash)", remainsCrash, "stopping", "up", null, null, null],
    ["stopping (remains of a stop)", remainsStop, "stopping", "down", null, null, null],
    ["starting (forking: launcher)", launcher, "starting", "up", 100, null, null],
    ["starting (forking: seeking)", seeking, "starting", "up", null, null, null],
    ["starting (forking: daemon found)", daemonFound, "starting", "up", 150, null, null],
    ["ready (watchdog)", readyWatchdog, "ready", "up", 100, null, null],
  ] as const)("%s", (_, server, state, desired, pid, hook, hookPid) => {
    expect([server.state, server.desired, server.pid, server.hook, server.hookPid]).toEqual([state, desired, pid, hook, hookPid]);
  });

  it("the cgroup situations have processes left in their cgroup; the forking ones are at their daemon's phase; the watchdog runs", () => {
    for (const server of [startingCgroup, readyCgroup, stoppingCgroup, remainsCrash, remainsStop, launcher, seeking, daemonFound]) {
      expect([server.cgroup, server.populated]).toEqual([CGROUP, true]);
    }
    expect([launcher.daemon, seeking.daemon, daemonFound.daemon, readyCgroup.daemon]).toEqual(["launching", "seeking", "found", null]);
    expect(remainsCrash.verdict).toEqual({ cause: "exited", code: 1, signal: null, uptimeMs: 590 });
    expect(readyWatchdog.watchdog).toEqual({ lastAt: 1500, pets: 0 });
    expect(Object.keys(readyWatchdog.timers).sort()).toEqual(["stable", "watchdog"]);
  });

  it("stopping (killed) has sent SIGKILL; postStop after a crash holds the verdict", () => {
    expect(stoppingKilled.killed).toBe(true);
    expect(postStopCrash.verdict).toEqual({ cause: "exited", code: 1, signal: null, uptimeMs: 590 });
  });

  it("failed is failed by the burst limit, its last preStart having failed", () => {
    expect([failed.reason, failed.lastExit?.reason, failed.lastExit?.code]).toEqual(["burst-limit", "pre-start-failed", 1]);
  });
});

describe("server machine: every situation × event", () => {
  const cells = Object.entries(expected).flatMap(([situation, row]) =>
    Object.entries(row).map(([column, outcome]) => ({ situation: situation as Situation, column: column as Column, outcome })),
  );

  it("covers 25 situations × 26 columns", () => {
    expect(cells).toHaveLength(25 * 26);
    for (const row of Object.values(expected)) expect(Object.keys(row)).toEqual(COLUMNS);
  });

  it.each(cells)("$situation × $column", ({ situation, column, outcome }) => {
    const before = situations[situation];
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
      effects: result.effects.map(effectText),
    }).toEqual(outcome);
  });
});

describe("server machine: every waiting state has a deadline", () => {
  /** What tells two servers apart for the walk: state, sub-state, what runs, what is wanted, what is armed. */
  function shape(server: Server): string {
    return JSON.stringify([
      server.state,
      server.desired,
      server.hook,
      server.hookPid !== null,
      server.pid !== null,
      server.killed,
      server.failure,
      server.verdict !== null,
      server.pin,
      Object.keys(server.timers).sort(),
      server.cgroup !== null,
      server.populated,
      server.daemon,
      server.watchdog !== null,
    ]);
  }

  /** Events that may come in a state: the requests, and the runtime's reports about what runs now. */
  function eventsFor(server: Server, now: number): ServerEvent[] {
    return COLUMNS.map((column) => {
      const event = eventFor(column, server);
      const at = { ...event, now } as ServerEvent;
      // Reports about the process or hook that exists, so that the walk gets past them.
      if (at.type === "exited") return { ...at, pid: server.pid ?? 100 };
      if (at.type === "spawned" && server.pid === null) return { ...at, pid: 300 };
      if (at.type === "hook-spawned" && server.hookPid === null) return { ...at, pid: 310 };
      return at;
    }).concat([
      { type: "exited", now, pid: server.pid ?? 100, code: 0, signal: null },
      { type: "exited", now, pid: server.pid ?? 100, code: null, signal: 9, oomKilled: true },
      { type: "hook-exited", now, pid: server.hookPid ?? 90, code: 1, signal: null },
      { type: "spawned", now, pid: 320, cgroup: "/sys/fs/cgroup/servers/x" },
      { type: "main-pid", now, pid: null, error: "no process in its cgroup" },
      { type: "keep-alive", now },
      { type: "keep-alive", now, trigger: true },
    ]);
  }

  const reached = new Map<string, Server>();
  const spec2 = spec("plain", { restart: { ...S.restart, mode: "always" } });
  const frontier: Server[] = [...Object.values(situations), createServer(spec2, 0)];
  let now = NOW;
  while (frontier.length > 0 && reached.size < 5000) {
    const server = frontier.pop()!;
    const key = shape(server) + server.spec.name;
    if (reached.has(key)) continue;
    reached.set(key, server);
    now += 10;
    for (const event of eventsFor(server, now)) {
      const result = step(server, event);
      if (result.ignored === null) frontier.push(result.server);
    }
  }

  it("walks the reachable states (every state and sub-state of the table)", () => {
    const kinds = new Set([...reached.values()].map((server) => `${server.state}/${server.hook ?? "-"}`));
    expect([...kinds].sort()).toEqual([
      "backoff/-",
      "failed/-",
      "ready/-",
      "starting/-",
      "starting/pre-start",
      "stopped/-",
      "stopping/-",
      "stopping/post-stop",
      "stopping/pre-start",
    ]);
    expect(reached.size).toBeGreaterThan(100);
  });

  it("each reached state is at rest (stopped, failed, ready) or has a timer armed", () => {
    const waitingForever = [...reached.values()].filter((server) => !isAtRest(server) && Object.keys(server.timers).length === 0);
    expect(waitingForever.map(shape)).toEqual([]);
  });
});
