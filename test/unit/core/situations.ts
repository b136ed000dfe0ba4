// The server machine's situations (a state, with the variants that change its behaviour), each built
// by the machine itself from a fresh server: the rows of server-matrix.test.ts, and of the activation
// columns in server-activation.test.ts.

import { createServer, step, type Server, type ServerEvent } from "../../../init/core/server";
import { spec } from "./fixtures";

export const S = spec("TangoTest/t1", { preStart: ["/bin/prep"], postStop: ["/bin/cleanup"] });

export function after(server: Server, ...events: ServerEvent[]): Server {
  return events.reduce((s, event) => {
    const result = step(s, event);
    if (result.ignored !== null) throw new Error(`${event.type} ignored: ${result.ignored}`);
    return result.server;
  }, server);
}

export function fire(server: Server, timer: keyof Server["timers"], now: number): Server {
  return after(server, { type: "timer", now, timer, id: server.timers[timer]! });
}

/** preStart runs as pid and exits 1. */
export function failPreStart(server: Server, now: number, pid: number): Server {
  return after(server, { type: "hook-spawned", now, pid }, { type: "hook-exited", now: now + 100, pid, code: 1, signal: null });
}

export const stopped = createServer(S, 0);
export const preStartPending = after(stopped, { type: "start", now: 1000 });
export const preStart = after(preStartPending, { type: "hook-spawned", now: 1000, pid: 90 });
export const startingPending = after(preStart, { type: "hook-exited", now: 1010, pid: 90, code: 0, signal: null });
export const starting = after(startingPending, { type: "spawned", now: 1010, pid: 100 });
export const ready = after(starting, { type: "ready", now: 1500 });
export const stopping = after(ready, { type: "stop", now: 1600 });
export const stoppingRestart = after(ready, { type: "restart", now: 1600 });
export const stoppingPending = after(startingPending, { type: "stop", now: 1100 });
export const stoppingPreStart = after(preStart, { type: "stop", now: 1005 });
export const stoppingKilled = after(ready, { type: "kill", now: 1600 });
export const postStop = after(stopping, { type: "exited", now: 1700, pid: 100, code: null, signal: 15 }, { type: "hook-spawned", now: 1700, pid: 110 });
export const postStopCrash = after(ready, { type: "exited", now: 1600, pid: 100, code: 1, signal: null }, { type: "hook-spawned", now: 1600, pid: 110 });
export const postStopTimedOut = fire(postStop, "post-stop-timeout", 5700);
export const backoff = after(postStopCrash, { type: "hook-exited", now: 1650, pid: 110, code: 0, signal: null });
// Three failed preStarts in a row: a fourth start would be more than burstCount (3) within the window.
export const failed = failPreStart(fire(failPreStart(fire(failPreStart(preStartPending, 1000, 90), "backoff", 2100), 2100, 91), "backoff", 4200), 4200, 92);

// A run in a cgroup of its own; a main process gone with processes left in it.
export const CGROUP = "/sys/fs/cgroup/servers/TangoTest@t1";
export const startingCgroup = after(startingPending, { type: "spawned", now: 1010, pid: 100, cgroup: CGROUP });
export const readyCgroup = after(startingCgroup, { type: "ready", now: 1500 });
export const stoppingCgroup = after(readyCgroup, { type: "stop", now: 1600 });
export const remainsCrash = after(readyCgroup, { type: "exited", now: 1600, pid: 100, code: 1, signal: null });
export const remainsStop = after(stoppingCgroup, { type: "exited", now: 1700, pid: 100, code: null, signal: 15 });

/** A server of another spec, through its preStart to its spawn pending. */
function pendingOf(other: typeof S): Server {
  return after(
    createServer(other, 0),
    { type: "start", now: 1000 },
    { type: "hook-spawned", now: 1000, pid: 90 },
    { type: "hook-exited", now: 1010, pid: 90, code: 0, signal: null },
  );
}
// forking: the launcher runs, exits 0 leaving its daemon, whose main process is then found.
export const launcher = after(pendingOf({ ...S, type: "forking" }), { type: "spawned", now: 1010, pid: 100, cgroup: CGROUP });
export const seeking = after(launcher, { type: "exited", now: 1100, pid: 100, code: 0, signal: null });
export const daemonFound = after(seeking, { type: "main-pid", now: 1150, pid: 150 });
// A watchdog of 10 s, ready at 1500.
export const readyWatchdog = after(pendingOf({ ...S, watchdogMs: 10_000 }), { type: "spawned", now: 1010, pid: 100 }, { type: "ready", now: 1500 });

export const situations = {
  stopped,
  "starting (preStart spawn pending)": preStartPending,
  "starting (preStart running)": preStart,
  "starting (spawn pending)": startingPending,
  starting,
  ready,
  stopping,
  "stopping (for a restart)": stoppingRestart,
  "stopping (spawn pending)": stoppingPending,
  "stopping (preStart)": stoppingPreStart,
  "stopping (killed)": stoppingKilled,
  "stopping (postStop)": postStop,
  "stopping (postStop after a crash)": postStopCrash,
  "stopping (postStop timed out)": postStopTimedOut,
  backoff,
  failed,
  "starting (cgroup)": startingCgroup,
  "ready (cgroup)": readyCgroup,
  "stopping (cgroup)": stoppingCgroup,
  "stopping (remains after a crash)": remainsCrash,
  "stopping (remains of a stop)": remainsStop,
  "starting (forking: launcher)": launcher,
  "starting (forking: seeking)": seeking,
  "starting (forking: daemon found)": daemonFound,
  "ready (watchdog)": readyWatchdog,
};
