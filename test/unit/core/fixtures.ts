// Builders for specs and settings, and a compact text form of effects for exact assertions.

import type { RestartPolicy, ServerSpec, Settings } from "../../../init/core/types";
import { step, type Server, type ServerEffect, type ServerEvent } from "../../../init/core/server";
import type { SupervisorEffect } from "../../../init/core/supervisor";

export const policy: RestartPolicy = {
  mode: "on-failure",
  initialDelayMs: 1000,
  factor: 2,
  maxDelayMs: 60_000,
  burstCount: 3,
  burstWindowMs: 60_000,
  resetAfterMs: 10_000,
  minUptimeForRestartMs: 0,
};

export function spec(name: string, overrides: Partial<ServerSpec> = {}): ServerSpec {
  const [server = name, instance] = name.split("/");
  return {
    name,
    file: `/usr/lib/tango/${server}`,
    argv: instance === undefined ? [`/usr/lib/tango/${server}`] : [`/usr/lib/tango/${server}`, instance],
    env: {},
    cwd: null,
    uid: null,
    gid: null,
    umask: null,
    rlimits: [],
    level: 1,
    requires: [],
    after: [],
    exclusive: false,
    readiness: { kind: "log", pattern: "Ready to accept request", regex: false, stream: "both" },
    startTimeoutMs: 30_000,
    restart: policy,
    stopSignal: 15,
    stopTimeoutMs: 5000,
    preStart: null,
    postStop: null,
    preStartTimeoutMs: 20_000,
    postStopTimeoutMs: 4000,
    failsafeMs: null,
    log: { file: null, maxBytes: 1_000_000, keep: 3, console: false, maxLineBytes: 4096 },
    autostart: true,
    ...overrides,
  };
}

export function settings(overrides: Partial<Settings> = {}): Settings {
  return {
    startMode: "parallel",
    interServerWaitMs: 0,
    interLevelWaitMs: 0,
    maxLevel: 5,
    shutdownTimeoutMs: 10_000,
    controlSocket: "/run/starter-init.sock",
    logHome: null,
    ...overrides,
  };
}

/** One effect as a short line: what it does and to what, without ids. */
export function effectText(effect: ServerEffect | SupervisorEffect): string {
  switch (effect.type) {
    case "run-pre-start":
      return "run-pre-start";
    case "spawn":
      return "spawn";
    case "start-probe":
      return `probe ${effect.pid}`;
    case "stop-probe":
      return "stop-probe";
    case "start-liveness":
      return `liveness ${effect.pid}`;
    case "stop-liveness":
      return "stop-liveness";
    case "signal":
      return `signal ${effect.signal} ${effect.pid}`;
    case "kill":
      return `kill ${effect.pid}`;
    case "run-post-stop":
      return `run-post-stop ${effect.code ?? "-"}/${effect.signal ?? "-"}`;
    case "signal-cgroup":
      return `signal-cgroup ${effect.signal}`;
    case "find-main-pid":
      return `find-main-pid${effect.cgroup === null ? "" : " cgroup"}${effect.pidFile === null ? "" : " pidFile"}`;
    case "arm-timer":
      return `arm ${effect.timer}@${effect.at}`;
    case "cancel-timer":
      return `cancel ${effect.timer}`;
    case "log":
      return `log ${effect.kind}`;
    case "shutdown-complete":
      return "shutdown-complete";
    case "watch-sockets":
      return "watch";
    case "unwatch-sockets":
      return "unwatch";
    case "spawn-instance":
      return `spawn-instance ${effect.socket}`;
    case "check-idle":
      return "check-idle";
  }
}

/** Feeds events one by one; returns the final server, every effect in order as text, and why each was ignored (or null). */
export function run(server: Server, events: ServerEvent[]): { server: Server; effects: string[]; ignored: (string | null)[] } {
  const effects: string[] = [];
  const ignored: (string | null)[] = [];
  for (const event of events) {
    const result = step(server, event);
    server = result.server;
    effects.push(...result.effects.map(effectText));
    ignored.push(result.ignored);
  }
  return { server, effects, ignored };
}
