// The init under systemd (or any service manager speaking the sd_notify protocol): when NOTIFY_SOCKET
// is set, the supervisor tells its manager what it is doing, one datagram of "KEY=value" lines each:
//
//   STATUS=booting: 1 of 3 servers ready, 2 starting     whenever that line changes
//   READY=1 + STATUS=…                                   once the boot is complete (every server of the
//                                                        boot ready or failed for good)
//   RELOADING=1 + MONOTONIC_USEC=… + STATUS=…            when a reload (SIGHUP, `starter-init reload`) begins
//   READY=1 + STATUS=…                                   once it has been applied (or refused: the running
//                                                        config stays)
//   STOPPING=1 + STATUS=…                                when the shutdown begins
//   WATCHDOG=1                                           every half of WATCHDOG_USEC, when the manager asks
//
// The variables are taken out of the init's environment first (sd_notify's unset_environment), so no
// server inherits them: a manager accepts messages from its main process only (NotifyAccess=main).
// Sending never blocks the loop (a non-blocking socket) and never throws into the supervisor: a
// datagram the manager cannot take is logged and dropped, as sd_notify() would return an error.

import type { Logger } from "../log/logger";
import { native } from "../native";
import { hasNoProcess, type Server, type ServerState } from "../core/server";
import type { Supervisor } from "../core/supervisor";
import type { ReloadOutcome, RunningSupervisor } from "./supervisor";

export interface SystemdTarget {
  /** NOTIFY_SOCKET: a socket path, or "@name" for the abstract namespace. */
  socket: string;
  /** Every how many milliseconds WATCHDOG=1 is sent (half of WATCHDOG_USEC); null for no watchdog. */
  watchdogIntervalMs: number | null;
}

/**
 * Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID and removes them from `env` (so that no server
 * inherits them); null when there is no manager to notify. Called before the config is loaded: the
 * servers' environment is built from `env`.
 */
export function takeSystemdEnvironment(env: NodeJS.ProcessEnv, log: Logger, pid = process.pid): SystemdTarget | null {
  const { NOTIFY_SOCKET: socket, WATCHDOG_USEC: usec, WATCHDOG_PID: watchdogPid } = env;
  delete env.NOTIFY_SOCKET;
  delete env.WATCHDOG_USEC;
  delete env.WATCHDOG_PID;
  if (!socket) return null;
  if (!socket.startsWith("/") && !socket.startsWith("@")) {
    log.warn({ socket }, `NOTIFY_SOCKET=${socket}: only a Unix socket path or an @abstract name is supported; not notifying`);
    return null;
  }
  let watchdogIntervalMs: number | null = null;
  if (usec !== undefined) {
    const micros = /^\d+$/.test(usec) ? Number(usec) : NaN;
    if (!(micros > 0)) log.warn({ usec }, `WATCHDOG_USEC=${usec}: not a number of microseconds; no watchdog pings`);
    // WATCHDOG_PID names the process the watchdog is meant for: another one's is not ours to keep.
    else if (watchdogPid === undefined || Number(watchdogPid) === pid) watchdogIntervalMs = Math.max(1, Math.floor(micros / 2000));
  }
  return { socket, watchdogIntervalMs };
}

/** States other than ready, in the order the status line lists them. */
const OTHER_STATES: ReportedState[] = ["listening", "unresponsive", "starting", "stopping", "backoff", "failed", "stopped"];

/** A server's state as `status` reports it: a ready server that does not answer its liveness ping is unresponsive. */
type ReportedState = ServerState | "unresponsive";
function reportedState(server: Server): ReportedState {
  return server.state === "ready" && server.liveness?.state === "unresponsive" ? "unresponsive" : server.state;
}

/** The one line of STATUS=: how many servers are ready of how many, and where the others are. */
export function statusLine(sup: Supervisor): string {
  const servers = [...sup.servers.values()].filter((server) => !sup.removing.has(server.spec.name));
  const noun = servers.length === 1 ? "server" : "servers";
  if (sup.phase === "shutting-down") {
    const running = [...sup.servers.values()].filter((server) => !hasNoProcess(server)).length;
    return `stopping: ${running} of ${sup.servers.size} ${sup.servers.size === 1 ? "server" : "servers"} still running`;
  }
  if (sup.phase === "stopped") return "every server has stopped";
  const counts = new Map<ReportedState, number>();
  for (const server of servers) counts.set(reportedState(server), (counts.get(reportedState(server)) ?? 0) + 1);
  const others = OTHER_STATES.filter((state) => counts.has(state)).map((state) => `${counts.get(state)} ${state}`);
  const line = `${counts.get("ready") ?? 0} of ${servers.length} ${noun} ready${others.length ? `, ${others.join(", ")}` : ""}`;
  return sup.phase === "booting" ? `booting: ${line}` : line;
}

/** CLOCK_MONOTONIC in microseconds (libuv's hrtime reads that clock): what RELOADING=1 carries. */
function monotonicMicros(): bigint {
  return process.hrtime.bigint() / 1000n;
}

type DatagramSender = (message: string) => void;

export class SystemdNotifier {
  private fd: number | null = null;
  private lastStatus: string | null = null;
  private booted = false;
  private readySent = false;
  private stoppingSent = false;
  /** Reloads under way, and whether RELOADING=1 went out for them (then READY=1 closes them). */
  private reloads = 0;
  private reloadAnnounced = false;
  private failures = 0;

  constructor(
    readonly target: SystemdTarget,
    private readonly log: Logger,
    send?: DatagramSender,
  ) {
    if (send) this.transmit = send;
  }

  /** Follows a running supervisor: its events, its reloads; starts the watchdog pings. */
  follow(running: RunningSupervisor): void {
    const { engine } = running;
    engine.onEvent(() => this.guard(() => this.update(engine.sup)));
    running.onReload((phase, outcome) => this.guard(() => (phase === "begin" ? this.reloadBegins() : this.reloadEnds(engine.sup, outcome!))));
    const interval = this.target.watchdogIntervalMs;
    if (interval !== null) {
      // Unref'd: the pings prove the loop turns; they must not be what keeps it turning.
      setInterval(() => this.send("WATCHDOG=1"), interval).unref();
    }
    this.log.info({ socket: this.target.socket, watchdogIntervalMs: interval }, `notifying the service manager on ${this.target.socket}`);
  }

  /** After each event: READY=1 at the end of the boot, STOPPING=1 at the start of the shutdown, STATUS= when it changed. */
  private update(sup: Supervisor): void {
    if (sup.phase === "stopped" && !this.booted) return;
    this.booted = true;
    const fields: string[] = [];
    if (sup.phase === "running" && !this.readySent && !this.stoppingSent) {
      this.readySent = true;
      fields.push("READY=1");
    }
    if ((sup.phase === "shutting-down" || sup.phase === "stopped") && !this.stoppingSent) {
      this.stoppingSent = true;
      fields.push("STOPPING=1");
    }
    // During a reload the line waits for READY=1, which carries it.
    if (this.reloadAnnounced && fields.length === 0) return;
    const status = statusLine(sup);
    if (status !== this.lastStatus) fields.push(`STATUS=${status}`);
    this.lastStatus = status;
    if (fields.length) this.send(fields.join("\n"));
  }

  private reloadBegins(): void {
    this.reloads++;
    // A reload during the boot (no READY=1 yet) or the shutdown is not announced: READY=1 would lie.
    if (this.reloads > 1 || !this.readySent || this.stoppingSent) return;
    this.reloadAnnounced = true;
    this.lastStatus = "reloading the configuration";
    this.send(`RELOADING=1\nMONOTONIC_USEC=${monotonicMicros()}\nSTATUS=${this.lastStatus}`);
  }

  private reloadEnds(sup: Supervisor, outcome: ReloadOutcome): void {
    this.reloads = Math.max(0, this.reloads - 1);
    if (this.reloads > 0 || !this.reloadAnnounced) return;
    this.reloadAnnounced = false;
    if (this.stoppingSent) return;
    const line = statusLine(sup);
    // A refused reload says so until the next change of the line.
    this.lastStatus = outcome.ok ? line : `${line} (reload refused: the config does not load)`;
    this.send(`READY=1\nSTATUS=${this.lastStatus}`);
  }

  private send(message: string): void {
    try {
      this.transmit(message);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // The first failure is worth a warning (a wrong socket, a manager gone); the rest only clutter.
      const level = this.failures++ === 0 && code !== "EAGAIN" ? "warn" : "debug";
      this.log[level]({ socket: this.target.socket, code }, `cannot notify the service manager (${code ?? String(err)}); going on`);
    }
  }

  private transmit: DatagramSender = (message) => {
    this.fd ??= native().unixDgramSocket();
    native().sendDgram(this.fd, this.target.socket, Buffer.from(message));
  };

  /** Called from the engine's step loop: nothing may escape from here. */
  private guard(action: () => void): void {
    try {
      action();
    } catch (err) {
      this.log.error({ err }, "systemd notification failed");
    }
  }
}
