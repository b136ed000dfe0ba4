// The Prometheus metrics of GET /metrics, written by prom-client (the exposition format is its job).
//
// Per server (label `server`): its state (one series per state, 1 for the current one), up, restarts,
// the last exit's code and signal, uptime, the last liveness ping's round trip and failures in a row,
// its cgroup's memory, CPU time and processes, and the time from exec to ready as a histogram. For the
// init: servers per state, whether `ready` holds, its phase, orphans reaped, reloads, control
// connections; and prom-client's default process metrics (RSS, CPU, open fds, event-loop lag, heap).
//
// Most values are read at scrape time from the same rows `status --json` shows (statusResult), so a
// field the status gains becomes a per-server gauge with one more entry in SERVER_GAUGES. Only what
// happens between scrapes is recorded as it happens: each time to ready, each reload.
//
// Loaded only when the HTTP listener is configured: prom-client and its timers cost nothing otherwise.

import { constants } from "node:os";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { readiness, statusResult } from "../control/commands";
import type { ServerStateName, ServerStatus } from "../control/protocol";
import type { SupervisorPhase } from "../core/supervisor";
import { INIT_VERSION } from "../version";
import type { RunningSupervisor } from "../runtime/supervisor";

/** The states `status` reports: the core's, and `unresponsive` for a ready server that does not answer its liveness ping. */
const STATES: readonly ServerStateName[] = ["stopped", "starting", "ready", "unresponsive", "stopping", "backoff", "failed", "listening"];
const PHASES: readonly SupervisorPhase[] = ["stopped", "booting", "running", "shutting-down"];

/** Exec to ready of a Tango server: tens of milliseconds alone, seconds on a loaded host or with a database. */
const TIME_TO_READY_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/**
 * prom-client samples the event-loop delay on a timer of this period (its default). Its min, mean and
 * percentile gauges include the period itself (an idle loop shows about 0.010 s); the sampling costs
 * about 0.2 % of a core, measured idle. A longer period would wake an idle init less often but shift
 * every one of those gauges by as much, against what dashboards made for prom-client expect.
 */
const EVENT_LOOP_SAMPLE_MS = 10;

/** What the metrics read besides the supervisor: counters kept by other modules. */
export interface MetricSources {
  running: RunningSupervisor;
  /** Orphans (processes the init did not start) reaped since start. */
  orphansReaped: () => number;
  /** Control-socket connections open now and accepted since start. */
  controlConnections: () => { open: number; accepted: number };
}

interface ServerGauge {
  name: string;
  help: string;
  /** The value for a server's status row; null leaves the series out (unknown, or not applicable). */
  value: (row: ServerStatus) => number | null;
}

function signalNumber(name: string | null): number | null {
  if (name === null) return null;
  return (constants.signals as Record<string, number | undefined>)[name] ?? null;
}

/** Per-server gauges fed from the status rows; a new status field is one more entry here. */
const SERVER_GAUGES: ServerGauge[] = [
  {
    name: "starter_server_up",
    help: "1 when the server is ready and, with a liveness check, answers it (Starter state ON), else 0.",
    value: (row) => (row.state === "ready" ? 1 : 0),
  },
  {
    name: "starter_server_last_exit_code",
    help: "Exit code of the server's last process; 128+n after death by signal n (the shell's convention). Absent before any exit.",
    value: (row) => {
      const exit = row.lastExit;
      if (!exit) return null;
      if (exit.code !== null) return exit.code;
      const signal = signalNumber(exit.signal);
      return signal === null ? null : 128 + signal;
    },
  },
  {
    name: "starter_server_last_exit_signal",
    help: "Number of the signal that ended the server's last process; 0 when it exited by itself. Absent before any exit.",
    value: (row) => (row.lastExit ? (signalNumber(row.lastExit.signal) ?? 0) : null),
  },
  {
    name: "starter_server_uptime_seconds",
    help: "How long the server's current process has been running. Absent without a process.",
    value: (row) => (row.uptimeMs === null ? null : row.uptimeMs / 1000),
  },
  { name: "starter_server_level", help: "The server's startup level (0: not started at boot).", value: (row) => row.level },
  {
    name: "starter_server_ping_round_trip_seconds",
    help: "Round trip of the last answered liveness ping of the server's admin device (the Starter's ping). Absent without a liveness check, or before an answer.",
    value: (row) => (row.ping?.lastRttMs == null ? null : row.ping.lastRttMs / 1000),
  },
  {
    name: "starter_server_ping_failures",
    help: "Liveness pings failed in a row (the server is unresponsive past the check's limit). Absent without a liveness check.",
    value: (row) => row.ping?.failures ?? null,
  },
  {
    name: "starter_server_memory_bytes",
    help: "Memory of every process of the server's cgroup (memory.current). Absent without cgroup v2, or without processes.",
    value: (row) => row.resources?.memoryBytes ?? null,
  },
  {
    name: "starter_server_cpu_seconds",
    help: "CPU time used by the processes of the server's cgroup in this run (cpu.stat usage_usec). Absent without cgroup v2, or without processes.",
    value: (row) => row.resources?.cpuSeconds ?? null,
  },
  {
    name: "starter_server_processes",
    help: "Processes in the server's cgroup. Absent without cgroup v2, or without processes.",
    value: (row) => row.resources?.processes ?? null,
  },
];

export class SupervisorMetrics {
  readonly registry = new Registry();
  private readonly serverGauges: { gauge: Gauge<"server">; value: ServerGauge["value"] }[];
  private readonly serverState: Gauge<"server" | "state">;
  private readonly restarts: Counter<"server">;
  private readonly timeToReady: Histogram<"server">;
  private readonly servers: Gauge<"state">;
  private readonly ready: Gauge;
  private readonly phase: Gauge<"phase">;
  private readonly orphans: Counter;
  private readonly reloads: Counter<"result">;
  private readonly controlOpen: Gauge;
  private readonly controlAccepted: Counter;
  /** When each server's readiness was last observed, so that each ready is counted once. */
  private readonly observedReadyAt = new Map<string, number>();
  private readonly unsubscribe: (() => void)[] = [];

  constructor(
    private readonly sources: MetricSources,
    private readonly socketPath: () => string,
  ) {
    const registers = [this.registry];
    this.serverGauges = SERVER_GAUGES.map((entry) => ({
      gauge: new Gauge({ name: entry.name, help: entry.help, labelNames: ["server"], registers }),
      value: entry.value,
    }));
    this.serverState = new Gauge({
      name: "starter_server_state",
      help: "1 for the server's current state (stopped, starting, ready, unresponsive, stopping, backoff, failed), 0 for the others.",
      labelNames: ["server", "state"],
      registers,
    });
    this.restarts = new Counter({
      name: "starter_server_restarts_total",
      help: "Automatic restarts of the server since the init started.",
      labelNames: ["server"],
      registers,
    });
    this.timeToReady = new Histogram({
      name: "starter_server_time_to_ready_seconds",
      help: "Time from the server's exec to its readiness, each time it became ready.",
      labelNames: ["server"],
      buckets: TIME_TO_READY_BUCKETS,
      registers,
    });
    this.servers = new Gauge({ name: "starter_servers", help: "Servers in each state.", labelNames: ["state"], registers });
    this.ready = new Gauge({
      name: "starter_ready",
      help: "1 when `starter-init ready` holds (boot complete, every server that should run ready).",
      registers,
    });
    this.phase = new Gauge({ name: "starter_phase", help: "1 for the supervisor's current phase, 0 for the others.", labelNames: ["phase"], registers });
    this.orphans = new Counter({ name: "starter_orphans_reaped_total", help: "Processes the init did not start, reaped since it started.", registers });
    this.reloads = new Counter({
      name: "starter_reloads_total",
      help: "Configuration reloads (SIGHUP, `starter-init reload`): applied, or refused because the config does not load.",
      labelNames: ["result"],
      registers,
    });
    this.controlOpen = new Gauge({ name: "starter_control_connections", help: "Connections to the control socket open now.", registers });
    this.controlAccepted = new Counter({
      name: "starter_control_connections_total",
      help: "Connections to the control socket accepted since start.",
      registers,
    });
    const info = new Gauge({
      name: "starter_info",
      help: "The init's version and role (vm, container, subreaper); always 1.",
      labelNames: ["version", "role"],
      registers,
    });
    info.set({ version: INIT_VERSION, role: sources.running.role }, 1);
    this.reloads.inc({ result: "applied" }, 0);
    this.reloads.inc({ result: "refused" }, 0);
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });

    const { engine } = sources.running;
    this.unsubscribe.push(
      engine.onEvent((event) => {
        if (event.type === "server") this.observeReady(event.name);
      }),
      sources.running.onReload((phase, outcome) => {
        if (phase === "end") this.reloads.inc({ result: outcome?.ok ? "applied" : "refused" });
      }),
    );
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text: the values of this moment. */
  async text(): Promise<string> {
    this.refresh();
    return this.registry.metrics();
  }

  close(): void {
    for (const unsubscribe of this.unsubscribe.splice(0)) unsubscribe();
  }

  /** Called inside the engine's step loop: reads the server, never throws. */
  private observeReady(name: string): void {
    try {
      const server = this.sources.running.engine.sup.servers.get(name);
      if (!server || server.state !== "ready" || server.readyAt === null || server.startedAt === null) return;
      if (this.observedReadyAt.get(name) === server.readyAt) return;
      this.observedReadyAt.set(name, server.readyAt);
      this.timeToReady.observe({ server: name }, Math.max(0, server.readyAt - server.startedAt) / 1000);
    } catch {
      // A metric must never disturb supervision.
    }
  }

  private refresh(): void {
    const { running } = this.sources;
    const rows = statusResult(running, this.socketPath()).servers;
    for (const { gauge, value } of this.serverGauges) {
      gauge.reset();
      for (const row of rows) {
        const number = value(row);
        if (number !== null) gauge.set({ server: row.name }, number);
      }
    }
    this.serverState.reset();
    this.restarts.reset();
    const perState = new Map<ServerStateName, number>(STATES.map((state) => [state, 0]));
    for (const row of rows) {
      for (const state of STATES) this.serverState.set({ server: row.name, state }, row.state === state ? 1 : 0);
      this.restarts.inc({ server: row.name }, row.restarts);
      perState.set(row.state, perState.get(row.state)! + 1);
    }
    for (const [state, count] of perState) this.servers.set({ state }, count);
    // A server removed by a reload takes its histogram along.
    const names = new Set(rows.map((row) => row.name));
    for (const name of this.observedReadyAt.keys()) {
      if (names.has(name)) continue;
      this.observedReadyAt.delete(name);
      this.timeToReady.remove({ server: name });
    }
    const phase = running.engine.sup.phase;
    for (const candidate of PHASES) this.phase.set({ phase: candidate }, candidate === phase ? 1 : 0);
    this.ready.set(readiness(running).ready ? 1 : 0);
    this.orphans.reset();
    this.orphans.inc(this.sources.orphansReaped());
    const control = this.sources.controlConnections();
    this.controlOpen.set(control.open);
    this.controlAccepted.reset();
    this.controlAccepted.inc(control.accepted);
  }
}
