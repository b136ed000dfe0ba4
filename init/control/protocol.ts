// The control protocol between the running init and its clients (the CLI, scripts, probes).
//
// Transport: a Unix stream socket (settings.controlSocket, default /run/starter-init.sock).
// Framing: newline-delimited JSON, one message per line, UTF-8. JSON.stringify never emits a raw
// newline, so a line is always one whole message.
//
//   request   {"v":1,"id":7,"cmd":"status","args":{"servers":["TangoTest/*"]}}
//   response  {"v":1,"id":7,"ok":true,"result":{…}}
//             {"v":1,"id":7,"ok":false,"error":{"code":"not-found","message":"no server matches x"}}
//   event     {"v":1,"id":7,"event":"line","data":{…}}   (streams: `logs` with follow, `watch`)
//
// Every request carries the protocol version the client speaks (`v`); a version the init does not
// speak is answered with an `unsupported-version` error naming the versions it does. `id` (a number
// or a short string) is echoed in the answer and in the events of that request, so a client may send
// several requests on one connection without waiting. An error that cannot be tied to a request (a
// line that is not JSON, a refused peer) has `"id": null`.
//
// Limits (the init must never stall or die because of a client): a request line is at most
// MAX_REQUEST_BYTES (a longer one is answered with `too-large` and the connection closed without
// buffering the rest), a started line must be finished within a few seconds, a connection with
// nothing to do is closed after an idle timeout, and the number of connections is capped.

import * as z from "zod";
import type { TangoSourceStatus } from "../config/tango/watcher";
import type { EngineResources } from "../runtime/engine";
import type { SocketStatus } from "../runtime/sockets";
import type { ReexecInfo } from "../runtime/supervisor";

export const PROTOCOL_VERSION = 1;
export const SUPPORTED_VERSIONS: readonly number[] = [PROTOCOL_VERSION];
export const MAX_REQUEST_BYTES = 64 * 1024;
export const DEFAULT_SOCKET = "/run/starter-init.sock";

export type RequestId = number | string;

export const ERROR_CODES = [
  "bad-request", // not JSON, not a request, or arguments that do not fit the command
  "unsupported-version",
  "unknown-command",
  "too-large", // a request line over MAX_REQUEST_BYTES
  "request-timeout", // a request line not finished in time
  "permission-denied", // the peer is not allowed (SO_PEERCRED)
  "busy", // too many connections, or too many requests in flight on one
  "not-found", // no server matches a name or pattern
  "refused", // the supervisor refused the request (pinned, shutting down, …)
  "not-a-vm", // poweroff / reboot / halt outside a VM
  "config", // reload: the config file does not load
  "closing", // id null: the init closes every connection (a reexec): connect again in a moment
  "reexec-failed", // reexec: the binary does not qualify, or execve failed (the init goes on unchanged)
  "internal",
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ProtocolError {
  code: ErrorCode;
  message: string;
  details?: unknown;
}

export type Response = { v: number; id: RequestId; ok: true; result: unknown } | { v: number; id: RequestId | null; ok: false; error: ProtocolError };

export interface StreamEvent {
  v: number;
  id: RequestId;
  event: string;
  data: unknown;
}

export type Message = Response | StreamEvent;

// ---- requests ---------------------------------------------------------------------------------

const name = z.string().min(1).max(512);
const patterns = z.array(name).max(4096);
const waiting = {
  /** Wait for the outcome (ready, stopped, failed) before answering. */
  wait: z.boolean().default(true),
  /** How long to wait for it; the answer then reports what is still pending. */
  timeoutMs: z
    .int()
    .min(0)
    .max(7 * 24 * 3600 * 1000)
    .default(120_000),
};
const level = z.int().min(0).max(1_000_000).optional();

/** The arguments of each command. Unknown keys are errors, so typos do not pass silently. */
export const COMMANDS = {
  /** Who is there: protocol and init version, pid, role. */
  hello: z.strictObject({}),
  status: z.strictObject({ servers: patterns.default([]) }),
  start: z.strictObject({ servers: patterns.min(1), ...waiting }),
  stop: z.strictObject({ servers: patterns.min(1), ...waiting }),
  restart: z.strictObject({ servers: patterns.min(1), ...waiting }),
  kill: z.strictObject({ servers: patterns.min(1), ...waiting }),
  /** `servers`: only these (names or globs), still in level order (the Starter device's DevStartAll). */
  "start-all": z.strictObject({ level, servers: patterns.optional(), ...waiting }),
  "stop-all": z.strictObject({ level, servers: patterns.optional(), ...waiting }),
  pin: z.strictObject({ server: name, pin: z.enum(["started", "stopped"]) }),
  unpin: z.strictObject({ server: name }),
  logs: z.strictObject({ server: name, lines: z.int().min(0).max(100_000).default(20), follow: z.boolean().default(false) }),
  reload: z.strictObject({ dryRun: z.boolean().default(false), ...waiting }),
  ready: z.strictObject({
    waitMs: z
      .int()
      .min(0)
      .max(7 * 24 * 3600 * 1000)
      .default(0),
  }),
  /** "default": power off in a VM, exit in a container. The others are for a VM only. */
  shutdown: z.strictObject({ action: z.enum(["default", "poweroff", "reboot", "halt"]).default("default") }),
  timeline: z.strictObject({}),
  /**
   * A subscription: answered with the status of the servers (as `status`), then events on the same
   * id whenever something changes, until the client goes away (watch.ts).
   */
  watch: z.strictObject({ servers: patterns.default([]) }),
  /**
   * Reads the sources (the Tango database) again with the file as last loaded and applies what
   * changed: the Starter's UpdateServersInfo. Servers it adds start only with startAdded.
   */
  "refresh-sources": z.strictObject({ startAdded: z.boolean().default(false) }),
  /**
   * Replaces the running init with a binary (absent: its own executable), every server kept running.
   * Answered once the binary has passed its checks, just before the exec; the connection then closes.
   * force: exec a binary that cannot read this init's state (a downgrade: it restarts the servers).
   */
  reexec: z.strictObject({ binary: z.string().min(1).max(4096).startsWith("/").optional(), force: z.boolean().default(false) }),
} as const;

export type CommandName = keyof typeof COMMANDS;
export type CommandArgs<C extends CommandName> = z.output<(typeof COMMANDS)[C]>;
export type CommandInput<C extends CommandName> = z.input<(typeof COMMANDS)[C]>;

export function isCommandName(value: string): value is CommandName {
  return Object.hasOwn(COMMANDS, value);
}

const envelope = z.object({
  v: z.int(),
  id: z.union([z.int(), z.string().max(128)]),
  cmd: z.string().max(64),
  args: z.record(z.string(), z.unknown()).optional(),
});

export type ParsedRequest = { [C in CommandName]: { id: RequestId; cmd: C; args: CommandArgs<C> } }[CommandName];

/** Parses one request line; returns the request, or the error to answer with (and the id, if any). */
export function parseRequest(line: string): { ok: true; request: ParsedRequest } | { ok: false; id: RequestId | null; error: ProtocolError } {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return { ok: false, id: null, error: { code: "bad-request", message: "not a JSON message" } };
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return { ok: false, id: null, error: { code: "bad-request", message: "a request is a JSON object {v, id, cmd, args}" } };
  }
  const record = raw as Record<string, unknown>;
  const id = typeof record.id === "number" || (typeof record.id === "string" && record.id.length <= 128) ? record.id : null;
  // The version first: a newer client gets told which version to speak, whatever else it sent.
  if (typeof record.v !== "number" || !SUPPORTED_VERSIONS.includes(record.v)) {
    return {
      ok: false,
      id,
      error: {
        code: "unsupported-version",
        message: `this init speaks protocol version ${SUPPORTED_VERSIONS.join(", ")}; the request has ${JSON.stringify(record.v ?? null)}`,
        details: { supported: SUPPORTED_VERSIONS },
      },
    };
  }
  const parsed = envelope.safeParse(raw);
  if (!parsed.success) return { ok: false, id, error: { code: "bad-request", message: describeIssues(parsed.error) } };
  const { cmd } = parsed.data;
  if (!isCommandName(cmd)) {
    return {
      ok: false,
      id,
      error: { code: "unknown-command", message: `unknown command ${JSON.stringify(cmd)}`, details: { commands: Object.keys(COMMANDS) } },
    };
  }
  const args = COMMANDS[cmd].safeParse(parsed.data.args ?? {});
  if (!args.success) return { ok: false, id, error: { code: "bad-request", message: `${cmd}: ${describeIssues(args.error)}` } };
  return { ok: true, request: { id: parsed.data.id, cmd, args: args.data } as ParsedRequest };
}

function describeIssues(error: z.ZodError): string {
  return error.issues.map((issue) => (issue.path.length ? `${issue.path.join(".")}: ${issue.message}` : issue.message)).join("; ");
}

export function encode(message: Message | { v: number; id: RequestId; cmd: string; args: unknown }): string {
  return `${JSON.stringify(message)}\n`;
}

// ---- framing ----------------------------------------------------------------------------------

/**
 * Splits a byte stream into lines of at most maxBytes. Once a line grows past the limit the reader
 * is `overflowed` and keeps nothing more: the caller answers and closes.
 */
export class LineReader {
  private parts: Buffer[] = [];
  private bytes = 0;
  overflowed = false;

  constructor(private readonly maxBytes: number) {}

  /** Bytes of an unfinished line. */
  get pending(): number {
    return this.bytes;
  }

  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    if (this.overflowed) return lines;
    let start = 0;
    while (start < chunk.length) {
      const newline = chunk.indexOf(10, start);
      const end = newline === -1 ? chunk.length : newline;
      if (this.bytes + (end - start) > this.maxBytes) {
        this.overflowed = true;
        this.parts = [];
        this.bytes = 0;
        return lines;
      }
      if (end > start) {
        this.parts.push(chunk.subarray(start, end));
        this.bytes += end - start;
      }
      if (newline === -1) break;
      const line = Buffer.concat(this.parts, this.bytes).toString("utf8");
      this.parts = [];
      this.bytes = 0;
      if (line.trim() !== "") lines.push(line);
      start = newline + 1;
    }
    // Keep copies only of what stays: the chunk's memory is not pinned by a partial line.
    if (this.parts.length) this.parts = [Buffer.from(Buffer.concat(this.parts, this.bytes))];
    return lines;
  }
}

// ---- results (what each command answers) -------------------------------------------------------

/**
 * The supervisor's states, and "unresponsive": ready, but its admin device does not answer ping (liveness).
 * "listening": socket activation (lazy, accept): the init holds its sockets; a connection starts it.
 */
export type ServerStateName = "stopped" | "starting" | "ready" | "unresponsive" | "stopping" | "backoff" | "failed" | "listening";

export interface LastExit {
  code: number | null;
  /** "SIGKILL" etc. */
  signal: string | null;
  errno: string | null;
  reason: string;
  uptimeMs: number | null;
  /** How long ago it ended. */
  agoMs: number;
}

export interface ServerStatus {
  name: string;
  state: ServerStateName;
  /** The Tango Starter's word: ON / MOVING / FAULT. */
  starter: "ON" | "MOVING" | "FAULT";
  desired: "up" | "down";
  pin: "started" | "stopped" | null;
  reason: string;
  pid: number | null;
  level: number;
  autostart: boolean;
  /** Since the current process was forked. */
  uptimeMs: number | null;
  /** Fork to ready of the running process (null without one, or before it is ready). */
  timeToReadyMs: number | null;
  /** Time in the current state. */
  sinceMs: number;
  restarts: number;
  lastExit: LastExit | null;
  logFile: string | null;
  /** The liveness check of a ready server (its admin device's ping), or null without one. */
  ping: PingStatus | null;
  /** A hook running now (systemd's sub-state): preStart while starting, postStop while stopping; and its process. */
  hook: "pre-start" | "post-stop" | null;
  hookPid: number | null;
  // ---- socket activation (absent for a server without sockets; in `status`, not in watch events) ----
  activation?: "eager" | "lazy" | "accept";
  /** Connections that started it (lazy) or an instance (accept). */
  activations?: number;
  /** accept: the instances running now. */
  instances?: number[];
  sockets?: SocketStatus[];
  /** What its cgroup holds while it has processes (cgroup v2 only; absent or null otherwise). */
  resources?: ServerResources | null;
  /** Its watchdog while it is ready with one (sd_notify WATCHDOG=1); absent or null otherwise. */
  watchdog?: WatchdogStatus | null;
}

/** A listening socket the init holds for a server (socket activation). */
export type { SocketStatus } from "../runtime/sockets";

export interface ServerResources {
  /** The server's cgroup directory. */
  cgroup: string;
  /** memory.current, and memory.max as the kernel shows it ("max" or bytes). */
  memoryBytes: number | null;
  memoryMax: string | null;
  /** CPU time used by all its processes (cpu.stat usage_usec), in seconds. */
  cpuSeconds: number | null;
  /** Processes in its cgroup. */
  processes: number;
  /** Processes of its cgroup the OOM killer ended in this run. */
  oomKills: number | null;
}

export interface WatchdogStatus {
  periodMs: number;
  /** Since the last keep-alive (or since ready, before the first). */
  lastAgoMs: number;
  keepAlives: number;
}
export interface PingStatus {
  state: "responsive" | "unresponsive";
  /** Round trip of the last answered ping, in milliseconds (fractional); null before the first. */
  lastRttMs: number | null;
  /** Since the last ping ended; null before the first. */
  lastPingAgoMs: number | null;
  /** Failed pings in a row, and why the last one failed. */
  failures: number;
  lastError: string | null;
  /** Pings answered and failed since the server became ready. */
  answered: number;
  failed: number;
  /** The check's settings. */
  intervalMs: number;
  onUnresponsive: "report" | "restart";
}

export interface InitInfo {
  protocol: number;
  version: string;
  pid: number;
  role: "vm" | "container" | "subreaper";
  phase: "stopped" | "booting" | "running" | "shutting-down";
  uptimeMs: number;
  config: string;
  socket: string;
  /** What the init holds: for leak checks (the soak) and a person's curiosity. */
  resources?: InitResources;
  /** The last reexec (absent: never re-executed, nor tried). */
  reexec?: ReexecInfo;
}

export interface InitResources {
  rssBytes: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  /** Memory of Buffers and other objects outside the V8 heap. */
  externalBytes: number;
  /** Node's active resources by kind (Timeout, PipeWrap, TCPWrap, FSReqCallback…). */
  active: Record<string, number>;
  /** The engine's own: its armed timers, probes, sockets and pipes. */
  engine: EngineResources;
}

export interface StatusResult {
  init: InitInfo;
  servers: ServerStatus[];
  /** Where servers come from besides the config file (the Tango database), when the file has sources. */
  sources?: SourceStatus[];
}

/** A source of servers (config/tango/watcher.ts): waiting, connecting, up, or down with its last error. */
export type SourceStatus = TangoSourceStatus;

export interface Outcome {
  name: string;
  /** Got where it was asked to go (or, without waiting, the request was taken). */
  ok: boolean;
  /** Still on its way when the wait timed out. */
  pending: boolean;
  state: ServerStateName | "removed";
  pid: number | null;
  message: string;
}

export interface ActionResult {
  waited: boolean;
  timedOut: boolean;
  outcomes: Outcome[];
}

export interface ReloadResult extends ActionResult {
  dryRun: boolean;
  config: string;
  added: string[];
  removed: string[];
  changed: string[];
  unchanged: string[];
  /** About the sources: a database that did not answer (its last read stands), warnings. */
  notes?: string[];
}

export interface ReadyResult {
  ready: boolean;
  phase: InitInfo["phase"];
  /** Servers that should run and are not ready. */
  waiting: { name: string; state: ServerStateName; reason: string }[];
}

export interface LogsResult {
  server: string;
  /** "file": the server's log file (with its rotated copy); "memory": the lines the init kept. */
  source: "file" | "memory";
  file: string | null;
  lines: string[];
  follow: boolean;
}

export interface LogLineEvent {
  line: string;
  stream: "stdout" | "stderr";
}

export interface TimelineEntry {
  name: string;
  level: number;
  /** Milliseconds since the boot began: the start was decided, the process forked, it got ready / gave up. */
  startAt: number;
  forkAt: number | null;
  readyAt: number | null;
  endAt: number | null;
  outcome: "ready" | "failed" | "cancelled" | "starting";
  /** Why it failed or was cancelled. */
  reason: string | null;
  /** Forked before the boot was complete. */
  duringBoot: boolean;
}

export interface TimelineResult {
  /** Milliseconds since the boot began, now and when the boot completed. */
  nowMs: number;
  bootCompleteMs: number | null;
  entries: TimelineEntry[];
  /** Servers in the config that never started. */
  notStarted: { name: string; level: number }[];
}

/** `watch` event "servers": the servers whose status changed in one step of the supervisor, and those removed. */
export interface ServersChangedEvent {
  changed: ServerStatus[];
  removed: string[];
}

/** `watch` event "phase": the supervisor's phase changed. */
export interface PhaseEvent {
  phase: InitInfo["phase"];
}

/** `watch` event "sources": what the sources are and last read, after each new configuration. */
export type SourcesEvent = SourceStatus[];

export interface RefreshResult {
  added: string[];
  removed: string[];
  changed: string[];
  unchanged: string[];
  /** About the sources: a database that did not answer (its last read stands), warnings. */
  notes: string[];
}

export interface ShutdownResult {
  action: "exit" | "poweroff" | "restart" | "halt";
  role: InitInfo["role"];
}

export interface HelloResult {
  protocol: number;
  supported: readonly number[];
  version: string;
  pid: number;
  role: InitInfo["role"];
  /** The last reexec of this init (absent: never re-executed, nor tried). */
  reexec?: ReexecInfo;
}

/** The last reexec, as `hello` and `status` report it. */
export type { ReexecInfo } from "../runtime/supervisor";

export interface ReexecResult {
  binary: string;
  from: string;
  to: string;
  /** The state format the new binary reads; below this init's: a downgrade (the servers restart). */
  stateFormat: number;
  /** The binary cannot read this init's state: it stops the servers and boots afresh. */
  downgrade: boolean;
  pid: number;
}

/** The init's version (set by the build; "0.0.0-dev" when run from sources). */
export { INIT_VERSION } from "../version";
