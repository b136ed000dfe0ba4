// Servers with socket activation in each situation the table distinguishes (lazy and accept), built by
// the machine itself from a fresh server, for the matrix of server-activation.test.ts.

import { createServer, step, type Server, type ServerEvent } from "../../../init/core/server";
import type { SocketSpec } from "../../../init/core/types";
import { spec } from "./fixtures";

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

export function socket(listen: string, overrides: Partial<SocketSpec> = {}): SocketSpec {
  const [kind, ...rest] = listen.split(":");
  const address = rest.join(":");
  const unix = kind === "unix" || kind === "unix-dgram";
  const port = unix ? null : Number(address.slice(address.lastIndexOf(":") + 1));
  const host = unix ? null : address.includes(":") ? address.slice(0, address.lastIndexOf(":")) : "0.0.0.0";
  return {
    listen,
    kind: kind as SocketSpec["kind"],
    host,
    port,
    path: unix ? address : null,
    name: "web",
    backlog: 128,
    mode: null,
    uid: null,
    gid: null,
    reusePort: false,
    ...overrides,
  };
}

export const LAZY = spec("web", {
  activation: "lazy",
  idleStopMs: 5000,
  sockets: [socket("tcp:8080")],
  readiness: { kind: "tcp", host: "127.0.0.1", port: 8080, intervalMs: 100 },
});
export const ACCEPT = spec("echo", { activation: "accept", maxInstances: 2, sockets: [socket("tcp:7")], readiness: { kind: "none" } });

const lazyListening = after(createServer(LAZY, 0), { type: "start", now: 1000 });
const activated = after(lazyListening, { type: "socket-activity", now: 1100, socket: 0 });
const lazyStarting = after(activated, { type: "spawned", now: 1100, pid: 100 });
const lazyReady = after(lazyStarting, { type: "ready", now: 1500 });
// Checked every second: quiet since it got ready, at 6500 it has been for idleStop (5 s).
const lazyIdleStopping = after(fire(lazyReady, "idle", 2500), { type: "idle-check", now: 6500, busy: false });

const acceptListening = after(createServer(ACCEPT, 0), { type: "start", now: 1000 });
const acceptPending = after(acceptListening, { type: "socket-activity", now: 1100, socket: 0 });
const acceptOne = after(acceptPending, { type: "instance-spawned", now: 1100, pid: 100 });
const acceptFull = after(acceptOne, { type: "socket-activity", now: 1200, socket: 0 }, { type: "instance-spawned", now: 1200, pid: 101 });
const acceptStopping = after(acceptFull, { type: "stop", now: 1300 });
const acceptKilled = fire(acceptStopping, "stop-timeout", 6300);

export const activationSituations = {
  "listening (lazy)": lazyListening,
  "starting (activated, spawn pending)": activated,
  "starting (activated)": lazyStarting,
  "ready (lazy, idleStop)": lazyReady,
  "stopping (idle)": lazyIdleStopping,
  "listening (accept)": acceptListening,
  "listening (accept, instance spawn pending)": acceptPending,
  "listening (accept, one instance)": acceptOne,
  "listening (accept, at maxInstances)": acceptFull,
  "stopping (accept instances)": acceptStopping,
  "stopping (accept instances killed)": acceptKilled,
};

// The situations of server-matrix.test.ts (servers without sockets), for the activation columns.
const S = spec("TangoTest/t1", { preStart: ["/bin/prep"], postStop: ["/bin/cleanup"] });
function failPreStart(server: Server, now: number, pid: number): Server {
  return after(server, { type: "hook-spawned", now, pid }, { type: "hook-exited", now: now + 100, pid, code: 1, signal: null });
}
const stopped = createServer(S, 0);
const preStartPending = after(stopped, { type: "start", now: 1000 });
const preStart = after(preStartPending, { type: "hook-spawned", now: 1000, pid: 90 });
const startingPending = after(preStart, { type: "hook-exited", now: 1010, pid: 90, code: 0, signal: null });
const starting = after(startingPending, { type: "spawned", now: 1010, pid: 100 });
const ready = after(starting, { type: "ready", now: 1500 });
const stopping = after(ready, { type: "stop", now: 1600 });
const stoppingRestart = after(ready, { type: "restart", now: 1600 });
const stoppingPending = after(startingPending, { type: "stop", now: 1100 });
const stoppingPreStart = after(preStart, { type: "stop", now: 1005 });
const stoppingKilled = after(ready, { type: "kill", now: 1600 });
const postStop = after(stopping, { type: "exited", now: 1700, pid: 100, code: null, signal: 15 }, { type: "hook-spawned", now: 1700, pid: 110 });
const postStopCrash = after(ready, { type: "exited", now: 1600, pid: 100, code: 1, signal: null }, { type: "hook-spawned", now: 1600, pid: 110 });
const postStopTimedOut = fire(postStop, "post-stop-timeout", 5700);
const backoff = after(postStopCrash, { type: "hook-exited", now: 1650, pid: 110, code: 0, signal: null });
const failed = failPreStart(fire(failPreStart(fire(failPreStart(preStartPending, 1000, 90), "backoff", 2100), 2100, 91), "backoff", 4200), 4200, 92);

export const coreSituations = {
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
};
