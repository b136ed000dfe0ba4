// The control socket: a Unix stream socket the CLI (and scripts, probes) talk to. See protocol.ts
// for the messages.
//
// Who may connect: the socket file is created with mode 0600 (the umask is narrowed around bind(),
// so it never exists with wider permissions), and every peer's credentials are checked with
// SO_PEERCRED: root and the init's own user are allowed. STARTER_CONTROL_GROUP (a group name or
// id) also allows that group: the socket is then made 0660 and given to the group, and a peer is
// allowed when its primary or a supplementary group is the one named.
//
// The supervisor must never stall or fail because of a client: requests are bounded in size, a
// started request line must be finished within 5 s, a connection with nothing going on is closed
// after the idle timeout (STARTER_CONTROL_IDLE_TIMEOUT seconds, default 30; a shorter one also
// shortens the 5 s), connections are capped, a client that does not read its answers is dropped,
// and every handler runs behind a catch.
//
// Registered with the supervisor (attachToSupervisor) when this module is imported.

import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { asId, parseAccounts } from "../config/resolve";
import type { Logger } from "../log/logger";
import { native } from "../native";
import { attachToSupervisor, type RunningSupervisor } from "../runtime/supervisor";
import { encodeValue, partOf, type ReexecPart } from "../runtime/reexec";
import { Commands, ControlError, type RequestContext } from "./commands";
import { LogTaps } from "./logs";
import {
  encode,
  LineReader,
  MAX_REQUEST_BYTES,
  parseRequest,
  PROTOCOL_VERSION,
  type Message,
  type ParsedRequest,
  type ProtocolError,
  type RequestId,
} from "./protocol";
import { BootTimeline } from "./timeline";
// The Starter device's script is written out with the control socket, before the boot.
import "./device-script";

export interface ControlServerOptions {
  path: string;
  /** A group whose members may use the socket besides root, or null. */
  allowedGroup: number | null;
  idleTimeoutMs: number;
  requestTimeoutMs: number;
  maxConnections: number;
  /** Requests answered concurrently on one connection. */
  maxInFlight: number;
  maxRequestBytes: number;
  /** Answers and events queued for a client that does not read; past this it is dropped. */
  maxBufferedBytes: number;
  /** Malformed requests tolerated on one connection before it is closed. */
  maxBadRequests: number;
}

/** How long a refused or idle-closed connection is drained before it is destroyed. */
const DRAIN_MS = 1000;

const DEFAULTS: Omit<ControlServerOptions, "path" | "allowedGroup"> = {
  idleTimeoutMs: 30_000,
  requestTimeoutMs: 5_000,
  maxConnections: 64,
  maxInFlight: 16,
  maxRequestBytes: MAX_REQUEST_BYTES,
  maxBufferedBytes: 8 * 1024 * 1024,
  maxBadRequests: 10,
};

/** Resolves a group name or number through /etc/group; null when it cannot. */
export function resolveGroup(value: string, groupFile = "/etc/group"): number | null {
  const id = asId(value);
  if (id !== undefined) return id;
  try {
    return parseAccounts(fs.readFileSync(groupFile, "utf8")).find((group) => group.name === value)?.id ?? null;
  } catch {
    // No /etc/group: only numbers work.
    return null;
  }
}

export function optionsFromEnvironment(socketPath: string, env: NodeJS.ProcessEnv, log: Logger): ControlServerOptions {
  let allowedGroup: number | null = null;
  const group = env.STARTER_CONTROL_GROUP?.trim();
  if (group) {
    allowedGroup = resolveGroup(group);
    if (allowedGroup === null) log.warn({ group }, `STARTER_CONTROL_GROUP=${group}: no such group; only root may use the control socket`);
  }
  const idle = Number(env.STARTER_CONTROL_IDLE_TIMEOUT);
  const idleTimeoutMs = Number.isFinite(idle) && idle > 0 ? Math.round(idle * 1000) : DEFAULTS.idleTimeoutMs;
  // A shorter idle timeout also shortens the time a started request line may take.
  return { ...DEFAULTS, path: socketPath, allowedGroup, idleTimeoutMs, requestTimeoutMs: Math.min(DEFAULTS.requestTimeoutMs, idleTimeoutMs) };
}

/** Groups of a process (its supplementary groups) from /proc; empty when unknown. */
function groupsOf(pid: number): number[] {
  if (pid <= 0) return [];
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const line = /^Groups:\s*(.*)$/m.exec(status);
    return line ? line[1].trim().split(/\s+/).filter(Boolean).map(Number) : [];
  } catch {
    return [];
  }
}

function socketFd(socket: net.Socket): number | null {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === "number" && fd >= 0 ? fd : null;
}

/** Whether something answers on a Unix socket path (a live init), within a short time. */
function answers(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createConnection(file);
    const done = (live: boolean) => {
      clearTimeout(timer);
      probe.destroy();
      resolve(live);
    };
    const timer = setTimeout(() => done(false), 500);
    probe.once("connect", () => done(true));
    probe.once("error", () => done(false));
  });
}

export class ControlServer {
  private server: net.Server | null = null;
  private readonly connections = new Set<Connection>();
  readonly commands: Commands;
  private readonly timeline = new BootTimeline();
  private readonly taps: LogTaps;
  private owned = false;
  /** Connections accepted since start (the metrics read it). */
  accepted = 0;

  constructor(
    running: RunningSupervisor,
    readonly log: Logger,
    readonly options: ControlServerOptions,
  ) {
    this.taps = new LogTaps(running.engine);
    this.commands = new Commands(running, this.timeline, this.taps, options.path);
    running.engine.onEvent((event) => {
      // Called inside the engine's step loop: nothing may escape from here.
      try {
        this.timeline.observe(event, running.engine.sup);
      } catch (err) {
        log.error({ err }, "control: recording an event failed");
      }
    });
  }

  /** What a re-executed init takes over: the listening socket (same fd) and the boot timeline. */
  reexecPart(): ReexecPart {
    return {
      name: "control",
      capture: () => {
        const fd = (this.server as unknown as { _handle?: { fd?: number } } | null)?._handle?.fd ?? -1;
        return { data: encodeValue({ fd, path: this.options.path, timeline: this.timeline.save() }), fds: fd >= 0 ? [fd] : [] };
      },
      beforeExec: (why) => {
        for (const connection of this.connections) connection.closeFor(why);
      },
    };
  }

  /** In a re-executed init: listens on the socket the one before listened on (clients that connected meanwhile wait in its queue). */
  async adopt(saved: { fd: number; path: string; timeline: ReturnType<BootTimeline["save"]> }): Promise<void> {
    this.timeline.restore(saved.timeline);
    const server = net.createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ fd: saved.fd }, () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.owned = true;
    server.on("error", (err) => this.log.error({ err }, "control socket error"));
    process.once("exit", () => this.removeFile());
    this.log.info({ socket: saved.path, fd: saved.fd }, `control socket taken over (${saved.path})`);
  }

  async start(): Promise<void> {
    const file = this.options.path;
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
    await this.removeStale(file);
    const server = net.createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      // bind() happens inside listen(), synchronously: the socket file is born 0600.
      const umask = process.umask(0o177);
      try {
        server.listen(file, () => {
          server.off("error", reject);
          resolve();
        });
      } finally {
        process.umask(umask);
      }
    });
    this.owned = true;
    server.on("error", (err) => this.log.error({ err }, "control socket error"));
    const group = this.options.allowedGroup;
    if (group !== null) {
      fs.chownSync(file, process.getuid?.() ?? 0, group);
      fs.chmodSync(file, 0o660);
    } else {
      fs.chmodSync(file, 0o600);
    }
    process.once("exit", () => this.removeFile());
    this.log.info({ socket: file, group }, `control socket listening on ${file}`);
  }

  /** A socket file left by an init that is gone is removed; a live one, or another file, is left alone. */
  private async removeStale(file: string): Promise<void> {
    let stat: fs.Stats;
    try {
      stat = fs.lstatSync(file);
    } catch {
      return;
    }
    if (!stat.isSocket()) throw new Error(`${file} exists and is not a socket; not replacing it`);
    if (await answers(file)) throw new Error(`another process answers on ${file}; not replacing its socket`);
    fs.rmSync(file, { force: true });
    this.log.info({ socket: file }, "removed a stale control socket");
  }

  private removeFile(): void {
    if (!this.owned) return;
    try {
      fs.rmSync(this.options.path, { force: true });
    } catch {
      // Read-only by now, or gone.
    }
  }

  /** Connections open now and accepted since start. */
  connectionCounts(): { open: number; accepted: number } {
    return { open: this.connections.size, accepted: this.accepted };
  }

  close(): void {
    this.server?.close();
    for (const connection of this.connections) connection.destroy();
    this.removeFile();
    this.owned = false;
  }

  private accept(socket: net.Socket): void {
    socket.on("error", () => socket.destroy());
    if (this.connections.size >= this.options.maxConnections) {
      refuse(socket, { code: "busy", message: `too many connections (${this.options.maxConnections}); try again` });
      return;
    }
    const peer = this.authorise(socket);
    if (!peer.ok) {
      this.log.warn({ peer: peer.who }, `control: refused a client (${peer.who})`);
      refuse(socket, { code: "permission-denied", message: peer.message });
      return;
    }
    const connection = new Connection(socket, this, peer.who);
    this.connections.add(connection);
    this.accepted++;
    socket.once("close", () => this.connections.delete(connection));
  }

  private authorise(socket: net.Socket): { ok: true; who: string } | { ok: false; who: string; message: string } {
    const fd = socketFd(socket);
    let cred: { pid: number; uid: number; gid: number };
    try {
      if (fd === null) throw new Error("no file descriptor");
      cred = native().peerCred(fd);
    } catch (err) {
      return { ok: false, who: "unknown peer", message: `cannot check the client's credentials (${(err as Error).message})` };
    }
    const who = `pid ${cred.pid}, uid ${cred.uid}, gid ${cred.gid}`;
    if (cred.uid === 0 || cred.uid === process.getuid?.()) return { ok: true, who };
    const group = this.options.allowedGroup;
    if (group !== null && (cred.gid === group || groupsOf(cred.pid).includes(group))) return { ok: true, who };
    const also = group === null ? "" : ` and members of group ${group}`;
    return { ok: false, who, message: `permission denied: only root${also} may use the control socket (you are uid ${cred.uid})` };
  }

  execute(request: ParsedRequest, context: RequestContext): unknown {
    const commands = this.commands;
    switch (request.cmd) {
      case "hello":
        return commands.hello();
      case "status":
        return commands.status(request.args);
      case "start":
      case "stop":
      case "restart":
      case "kill":
        return commands.action(request.cmd, request.args, context);
      case "start-all":
        return commands.startAll(request.args, context);
      case "stop-all":
        return commands.stopAll(request.args, context);
      case "pin":
        return commands.pin(request.args);
      case "unpin":
        return commands.unpin(request.args);
      case "logs":
        return commands.logLines(request.args, context);
      case "reload":
        return commands.reload(request.args, context);
      case "reexec":
        return commands.reexec(request.args, context);
      case "ready":
        return commands.ready(request.args, context);
      case "shutdown":
        return commands.shutdown(request.args, context);
      case "timeline":
        return commands.timelineResult();
      case "watch":
        return commands.watch(request.args, context);
      case "refresh-sources":
        return commands.refreshSources(request.args);
    }
  }
}

/**
 * Answers with one error and closes. What the client still sends is read and dropped for a moment
 * (never kept): closing with unread data would reset the connection, and a client whose request
 * write fails that way never reads the answer that explains why.
 */
function refuse(socket: net.Socket, error: ProtocolError, id: RequestId | null = null): void {
  socket.removeAllListeners("data");
  socket.on("data", () => {});
  socket.resume();
  socket.end(encode({ v: PROTOCOL_VERSION, id, ok: false, error }));
  setTimeout(() => socket.destroy(), DRAIN_MS).unref();
}

class Connection {
  private readonly reader: LineReader;
  private inFlight = 0;
  private held = false;
  private closing = false;
  private badRequests = 0;
  private timer: NodeJS.Timeout | null = null;
  private partialSince = 0;
  private readonly closeListeners: (() => void)[] = [];

  constructor(
    private readonly socket: net.Socket,
    private readonly owner: ControlServer,
    private readonly who: string,
  ) {
    this.reader = new LineReader(owner.options.maxRequestBytes);
    socket.on("data", (chunk: Buffer) => this.receive(chunk));
    socket.once("close", () => {
      this.closing = true;
      this.clearTimer();
      for (const listener of this.closeListeners.splice(0)) {
        try {
          listener();
        } catch {
          // A request's cleanup must not stop the others'.
        }
      }
    });
    this.arm();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Tells the client why the connection closes (a reexec: connect again), and closes it. */
  closeFor(message: string): void {
    if (this.closing) return;
    this.send({ v: PROTOCOL_VERSION, id: null, ok: false, error: { code: "closing", message } });
    this.closing = true;
    this.clearTimer();
    this.socket.end();
  }

  private receive(chunk: Buffer): void {
    if (this.closing) return;
    const lines = this.reader.push(chunk);
    for (const line of lines) {
      if (this.closing) return;
      this.handle(line);
    }
    if (this.reader.overflowed) {
      this.fail(null, { code: "too-large", message: `a request is at most ${this.owner.options.maxRequestBytes} bytes` });
      return;
    }
    this.arm();
  }

  private handle(line: string): void {
    const parsed = parseRequest(line);
    if (!parsed.ok) {
      this.owner.log.debug({ peer: this.who, error: parsed.error.code }, "control: bad request");
      if (++this.badRequests >= this.owner.options.maxBadRequests) return this.fail(parsed.id, parsed.error);
      this.send({ v: PROTOCOL_VERSION, id: parsed.id, ok: false, error: parsed.error });
      return;
    }
    const { request } = parsed;
    if (this.inFlight >= this.owner.options.maxInFlight) {
      this.send({
        v: PROTOCOL_VERSION,
        id: request.id,
        ok: false,
        error: { code: "busy", message: `at most ${this.owner.options.maxInFlight} requests at once on a connection` },
      });
      return;
    }
    this.inFlight++;
    this.owner.log.debug({ peer: this.who, cmd: request.cmd, id: request.id }, "control: request");
    const answered: (() => void)[] = [];
    const context: RequestContext = {
      send: (event, data) => this.send({ v: PROTOCOL_VERSION, id: request.id, event, data }),
      afterAnswer: (listener) => answered.push(listener),
      onClose: (listener) => {
        if (this.closing) listener();
        else this.closeListeners.push(listener);
      },
      keepOpen: () => {
        this.held = true;
      },
    };
    new Promise((resolve) => resolve(this.owner.execute(request, context)))
      .then(
        (result) => {
          this.send({ v: PROTOCOL_VERSION, id: request.id, ok: true, result });
          for (const listener of answered) listener();
        },
        (err: unknown) => this.send({ v: PROTOCOL_VERSION, id: request.id, ok: false, error: this.describe(err, request.cmd) }),
      )
      .finally(() => {
        this.inFlight--;
        this.arm();
      });
  }

  private describe(err: unknown, cmd: string): ProtocolError {
    if (err instanceof ControlError) return { code: err.code, message: err.message, details: err.details };
    this.owner.log.error({ err, cmd }, "control: a request failed");
    return { code: "internal", message: `${cmd} failed: ${(err as Error)?.message ?? String(err)}` };
  }

  private send(message: Message): void {
    const socket = this.socket;
    if (socket.destroyed || !socket.writable) return;
    if (socket.writableLength > this.owner.options.maxBufferedBytes) {
      this.owner.log.warn({ peer: this.who }, "control: a client does not read its answers; dropped");
      socket.destroy();
      return;
    }
    socket.write(encode(message));
  }

  /** Answers with an error and closes, keeping nothing more of what the client sends. */
  private fail(id: RequestId | null, error: ProtocolError): void {
    if (this.closing) return;
    this.closing = true;
    this.clearTimer();
    this.owner.log.debug({ peer: this.who, error: error.code }, "control: closing a connection");
    refuse(this.socket, error, id);
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** One timer at a time: finishing a started line, or idling with nothing going on. */
  private arm(): void {
    this.clearTimer();
    if (this.closing) return;
    const { requestTimeoutMs, idleTimeoutMs } = this.owner.options;
    if (this.reader.pending > 0) {
      this.partialSince ||= Date.now();
      const left = Math.max(0, requestTimeoutMs - (Date.now() - this.partialSince));
      this.timer = setTimeout(() => this.fail(null, { code: "request-timeout", message: `a request must be sent within ${requestTimeoutMs} ms` }), left);
      return;
    }
    this.partialSince = 0;
    if (this.inFlight > 0 || this.held) return;
    this.timer = setTimeout(() => {
      this.owner.log.debug({ peer: this.who }, "control: idle connection closed");
      this.closing = true;
      this.socket.end();
      setTimeout(() => this.socket.destroy(), DRAIN_MS).unref();
    }, idleTimeoutMs);
  }
}

/** The control server of this process, once started. */
let current: ControlServer | null = null;

/** Control connections open now and accepted since start (for the metrics of init/http/). */
export function controlConnections(): { open: number; accepted: number } {
  return current?.connectionCounts() ?? { open: 0, accepted: 0 };
}

attachToSupervisor(async (running, log) => {
  const server = new ControlServer(running, log, optionsFromEnvironment(running.config().settings.controlSocket, process.env, log));
  const saved = running.resumed ? (partOf(running.resumed, "control") as Parameters<ControlServer["adopt"]>[0] | undefined) : undefined;
  if (saved && saved.fd >= 0) {
    try {
      await server.adopt(saved);
    } catch (err) {
      log.error({ err }, "cannot take over the control socket; opening it anew");
      await server.start();
    }
  } else {
    await server.start();
  }
  running.reexecParts.push(server.reexecPart());
  current = server;
});
