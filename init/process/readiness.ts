// Readiness probes: how the supervisor learns that a started server is ready to serve.
// Each probe calls onReady once, or onFailed with a reason; cancel() stops it at any time.
// The start timeout belongs to the core state machine, not to the probes.

import fs from "node:fs";
import net from "node:net";
import type { ReadinessProbe } from "../core/types";
import type { ServerOutput } from "../log/server-output";
import { spawnChild, StartError } from "./spawn";
import { adminDeviceOf, describePingError, isPermanent, pingAdmin } from "./tango";

/** What every Tango server (C++, Python, Java) prints once it has exported its devices. */
export const TANGO_READY_LINE = "Ready to accept request";
/** How long one ping of the tango probe may take. */
const TANGO_PROBE_TIMEOUT_MS = 1000;

export interface ProbeContext {
  name: string;
  pid: number;
  output: ServerOutput;
  /** Parent end of the notification pipe (notify probe), or -1. */
  notifyFd: number;
  /** The messages of the server's sd_notify socket (the runtime reads it), or null without one. */
  notifications: NotifyChannel | null;
  env: Record<string, string>;
}

/** sd_notify messages as the runtime reads them from a server's socket: each one's lines, "KEY=value". */
export interface NotifyChannel {
  /** Calls listener with the assignments of each message until the returned function is called. */
  subscribe(listener: (fields: ReadonlyMap<string, string>) => void): () => void;
}

/** The assignments of an sd_notify datagram: newline-separated KEY=value lines. */
export function parseNotifyMessage(datagram: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of datagram.split("\n")) {
    const equals = line.indexOf("=");
    if (equals > 0) fields.set(line.slice(0, equals).trim(), line.slice(equals + 1).trim());
  }
  return fields;
}

export interface ProbeCallbacks {
  onReady(): void;
  onFailed(reason: string): void;
}

export interface RunningProbe {
  cancel(): void;
}

/** Calls `attempt` every intervalMs until it reports true; attempt may be async. */
function poll(intervalMs: number, attempt: () => Promise<boolean> | boolean, callbacks: ProbeCallbacks): RunningProbe {
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  const tick = async () => {
    if (stopped) return;
    let ok: boolean;
    try {
      ok = await attempt();
    } catch {
      ok = false;
    }
    if (stopped) return;
    if (ok) {
      stopped = true;
      callbacks.onReady();
      return;
    }
    timer = setTimeout(() => void tick(), intervalMs);
  };
  void tick();
  return {
    cancel() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}

function tcpAccepts(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

function execSucceeds(argv: string[], env: Record<string, string>, timeoutMs: number): Promise<boolean> {
  let child;
  try {
    child = spawnChild({ command: argv[0], args: argv.slice(1), env, stdin: "null", stdout: "null", stderr: "null", setpgid: true });
  } catch (err) {
    if (err instanceof StartError) return Promise.resolve(false);
    throw err;
  }
  const pid = child.pid;
  const timer = setTimeout(() => {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }, timeoutMs);
  return child.exited.then((exit) => {
    clearTimeout(timer);
    return exit.code === 0;
  });
}

/** Matches "READY=1" among the newline-separated assignments of an sd_notify datagram. */
export function sdNotifySaysReady(datagram: string): boolean {
  return parseNotifyMessage(datagram).get("READY") === "1";
}

export function startProbe(probe: ReadinessProbe, context: ProbeContext, callbacks: ProbeCallbacks): RunningProbe {
  switch (probe.kind) {
    case "none":
      queueMicrotask(() => callbacks.onReady());
      return { cancel() {} };

    case "log": {
      const matcher = probe.regex ? new RegExp(probe.pattern) : null;
      const unsubscribe = context.output.onLine((line, stream) => {
        if (probe.stream !== "both" && probe.stream !== stream) return;
        if (matcher ? matcher.test(line) : line.includes(probe.pattern)) {
          unsubscribe();
          callbacks.onReady();
        }
      });
      return { cancel: () => unsubscribe() };
    }

    case "notify": {
      // s6/dinit: the server writes a newline on fd N when it is ready, then usually closes it.
      const socket = new net.Socket({ fd: context.notifyFd, readable: true, writable: false });
      let settled = false;
      socket.on("data", (chunk: Buffer) => {
        if (!settled && chunk.includes(10)) {
          settled = true;
          socket.destroy();
          callbacks.onReady();
        }
      });
      socket.on("close", () => {
        if (!settled) {
          settled = true;
          callbacks.onFailed(`closed fd ${probe.fd} without writing a newline`);
        }
      });
      socket.on("error", () => socket.destroy());
      return {
        cancel() {
          settled = true;
          socket.destroy();
        },
      };
    }

    case "sd_notify": {
      // The runtime reads the socket (a watchdog's keep-alives come on it too) and passes each message on.
      if (context.notifications === null) {
        queueMicrotask(() => callbacks.onFailed("no sd_notify socket could be bound"));
        return { cancel() {} };
      }
      let settled = false;
      const unsubscribe = context.notifications.subscribe((fields) => {
        if (settled || fields.get("READY") !== "1") return;
        settled = true;
        unsubscribe();
        callbacks.onReady();
      });
      return {
        cancel() {
          settled = true;
          unsubscribe();
        },
      };
    }

    case "tcp":
      return poll(probe.intervalMs, () => tcpAccepts(probe.host, probe.port, Math.max(probe.intervalMs, 1000)), callbacks);

    case "file":
      return poll(probe.intervalMs, () => fs.existsSync(probe.path), callbacks);

    case "exec":
      return poll(probe.intervalMs, () => execSucceeds(probe.argv, context.env, probe.timeoutMs), callbacks);

    case "tango": {
      // The Starter's check, made safe: a Tango 9.3 server pinged while it still exports its devices
      // may crash (TangoTest does), so the admin device is pinged only once the server has printed
      // its ready line — by then every device is exported and its IOR is in the database.
      let running: RunningProbe | null = null;
      let cancelled = false;
      let lastError = "";
      const unsubscribe = context.output.onLine((line) => {
        if (!line.includes(TANGO_READY_LINE) || running || cancelled) return;
        unsubscribe();
        running = poll(
          probe.intervalMs,
          async () => {
            try {
              await pingAdmin(context.name, context.pid, probe.target, context.env, TANGO_PROBE_TIMEOUT_MS);
              return true;
            } catch (err) {
              if (isPermanent(err)) {
                running?.cancel();
                cancelled = true;
                callbacks.onFailed(`${adminDeviceOf(context.name)}: ${describePingError(err)}`);
              } else if (describePingError(err) !== lastError) {
                lastError = describePingError(err);
                context.output.note(`ping of ${adminDeviceOf(context.name)} failed, trying again: ${lastError}`);
              }
              return false;
            }
          },
          { onReady: () => !cancelled && callbacks.onReady(), onFailed: callbacks.onFailed },
        );
      });
      return {
        cancel() {
          cancelled = true;
          unsubscribe();
          running?.cancel();
        },
      };
    }
  }
}
