// Servers with socket activation in each situation the table distinguishes (lazy and accept), built by
// the machine itself from a fresh server, for the matrix of server-activation.test.ts.

import { createServer } from "../../../init/core/server";
import type { SocketSpec } from "../../../init/core/types";
import { spec } from "./fixtures";
import { after, fire, situations } from "./situations";

export { after, fire };

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
export const coreSituations = situations;
