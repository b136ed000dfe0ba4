// Every listening socket the init holds for its servers (socket activation), in one place: its fd,
// its inode, its spec, the server it belongs to (it is fd 3 + index there), whether it is watched,
// and how many connections it brought. A re-executed init (issue 17) hands this table over as it is.
//
// The init creates them when stage 2 starts, before any server is forked, and keeps its copies open:
// a server that crashes and restarts gets the same sockets back, and connections that arrive
// meanwhile wait in the backlog. A reload keeps every socket whose address and kind did not change
// (the same fd, even if it moves to another server) and opens the new ones before anything changes:
// when one cannot be bound, the reload is refused and what was opened for it is closed again.

import type { ServerSpec, SocketSpec } from "../core/types";
import type { Listener } from "../process/listen";

export type WatchHandle = unknown;

/** What the table does to the world (a part of EngineSystem). */
export interface SocketSystem {
  /** Creates a listening socket as the spec says; throws an Error with `code` and `syscall`. */
  openListener(socket: SocketSpec): Listener;
  /** What a reload may change of a socket kept open: backlog, a unix file's mode and owner. */
  updateListener(socket: SocketSpec, fd: number): void;
  /** Closes it (a unix socket's file is removed). */
  closeListener(socket: SocketSpec, fd: number): void;
  /** Calls onReadable each time a connection or datagram waits (level-triggered), until stopWatching. */
  watchReadable(fd: number, onReadable: () => void): WatchHandle;
  stopWatching(handle: WatchHandle): void;
  /** A stream socket's accept queue, or a datagram socket's bytes waiting; null when unknown. */
  listenQueue(socket: SocketSpec, fd: number, inode: number): { queued: number; backlog: number | null } | null;
}

export interface HeldSocket {
  server: string;
  /** Its position among the server's sockets: the server gets it as fd 3 + index. */
  index: number;
  spec: SocketSpec;
  fd: number;
  inode: number;
  /** Connections (or datagrams) on it that started the server or one of its instances. */
  activations: number;
  watcher: WatchHandle | null;
}

/** A socket that could not be opened: placed in the config file by the caller. */
export interface SocketProblem {
  server: string;
  socket: number;
  message: string;
}

/** A reload's sockets, opened and checked; nothing of the running table has changed yet. */
export interface SocketChange {
  problems: SocketProblem[];
  /** Makes it the table: closes what is no longer configured, applies what changed of kept sockets. Returns what failed then. */
  commit(): SocketProblem[];
  /** Closes what was opened for it. */
  abort(): void;
}

/** What a socket's entry in `status` shows. */
export interface SocketStatus {
  listen: string;
  /** Its name in LISTEN_FDNAMES. */
  name: string;
  /** The fd the server gets it as. */
  fd: number;
  /** Connections waiting to be accepted (stream), or bytes waiting (datagram); null when the kernel does not say. */
  queued: number | null;
  /** The accept queue's limit (stream); null for datagram sockets. */
  backlog: number | null;
  /** Connections on it that started the server or an instance. */
  activations: number;
  /** The init watches it for a connection now (the server listens: lazy, or accept). */
  watched: boolean;
}

/** Sockets that may stay the same socket: same address, same kind, same SO_REUSEPORT (set before bind). */
function compatibility(socket: SocketSpec): string {
  return JSON.stringify([socket.kind, socket.host, socket.port, socket.path, socket.reusePort]);
}

/** Sockets that cannot both be bound. */
function address(socket: SocketSpec): string {
  return socket.path ?? `${socket.kind === "udp" ? "udp" : "tcp"} ${socket.host}:${socket.port}`;
}

/** A failed bind in words for the config error: what the person can do about it. */
export function describeSocketError(socket: SocketSpec, err: unknown): string {
  const { code, syscall, message } = err as NodeJS.ErrnoException;
  const prefix = `${socket.listen}: cannot ${syscall === "listen" ? "listen" : "bind"}`;
  switch (code) {
    case "EADDRINUSE":
      return socket.path !== null
        ? `${prefix}: ${socket.path} is in use: another program listens there`
        : `${prefix}: the address is in use (another program listens there)`;
    case "ENOENT":
      return `${prefix}: directory ${socket.path?.slice(0, socket.path.lastIndexOf("/")) || "/"} does not exist`;
    case "ENOTDIR":
      return `${prefix}: a part of ${socket.path} is not a directory`;
    case "EEXIST":
      return `${prefix}: ${socket.path} exists and is not a socket`;
    case "EACCES":
      return socket.path !== null
        ? `${prefix}: permission denied creating ${socket.path}`
        : `${prefix}: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)`;
    case "EADDRNOTAVAIL":
      return `${prefix}: ${socket.host} is not an address of this machine`;
    case "EAFNOSUPPORT":
      return `${prefix}: IPv6 is not available here`;
    default:
      return `${prefix}: ${syscall ?? "socket"} failed: ${code ?? message}`;
  }
}

export class SocketTable {
  /** In config order: server by server, each server's sockets in their order. */
  private held: HeldSocket[] = [];

  constructor(private readonly system: SocketSystem) {}

  /** Every socket held, for the status, the leak checks, and a re-executed init. */
  entries(): readonly HeldSocket[] {
    return this.held;
  }

  of(server: string): HeldSocket[] {
    return this.held.filter((socket) => socket.server === server);
  }

  /** The fds a server gets as 3, 4, …, and their LISTEN_FDNAMES. */
  fdsOf(server: string): number[] {
    return this.of(server).map((socket) => socket.fd);
  }

  /** In a re-executed init: the sockets the one before held (same fds), none watched yet. */
  adopt(entries: readonly Omit<HeldSocket, "watcher">[]): void {
    this.held = entries.map((entry) => ({ ...entry, watcher: null }));
  }

  get watchers(): number {
    return this.held.filter((socket) => socket.watcher !== null).length;
  }

  /** Opens the sockets of a configuration; with the table empty, this is the boot's. */
  prepare(servers: readonly ServerSpec[]): SocketChange {
    const next: HeldSocket[] = [];
    const opened: HeldSocket[] = [];
    const kept = new Set<HeldSocket>();
    // A socket whose address is held with another kind or SO_REUSEPORT: bound once the old one is closed.
    const rebound: { server: string; index: number; spec: SocketSpec }[] = [];
    const problems: SocketProblem[] = [];
    for (const server of servers) {
      (server.sockets ?? []).forEach((spec, index) => {
        const same = this.held.find((held) => !kept.has(held) && compatibility(held.spec) === compatibility(spec));
        if (same) {
          kept.add(same);
          next.push({ ...same, server: server.name, index, spec });
          return;
        }
        if (this.held.some((held) => !kept.has(held) && address(held.spec) === address(spec))) {
          rebound.push({ server: server.name, index, spec });
          return;
        }
        try {
          const listener = this.system.openListener(spec);
          const socket: HeldSocket = { server: server.name, index, spec, ...listener, activations: 0, watcher: null };
          opened.push(socket);
          next.push(socket);
        } catch (err) {
          problems.push({ server: server.name, socket: index, message: describeSocketError(spec, err) });
        }
      });
    }
    const abort = () => {
      for (const socket of opened) this.closeQuietly(socket);
    };
    if (problems.length > 0) {
      abort();
      return { problems, commit: () => [], abort: () => {} };
    }
    return {
      problems,
      abort,
      commit: () => {
        const late: SocketProblem[] = [];
        for (const held of this.held) {
          if (!kept.has(held)) this.closeQuietly(held);
        }
        for (const socket of next) {
          const before = this.held.find((held) => held.fd === socket.fd && kept.has(held));
          if (!before) continue;
          // A kept socket that moved (another server, another position) is watched anew by its server.
          if (before.server !== socket.server || before.index !== socket.index) this.stopWatcher(socket);
          if (
            before.spec.backlog !== socket.spec.backlog ||
            before.spec.mode !== socket.spec.mode ||
            before.spec.uid !== socket.spec.uid ||
            before.spec.gid !== socket.spec.gid
          ) {
            try {
              this.system.updateListener(socket.spec, socket.fd);
            } catch (err) {
              late.push({ server: socket.server, socket: socket.index, message: describeSocketError(socket.spec, err) });
            }
          }
        }
        for (const { server, index, spec } of rebound) {
          try {
            next.push({ server, index, spec, ...this.system.openListener(spec), activations: 0, watcher: null });
          } catch (err) {
            late.push({ server, socket: index, message: describeSocketError(spec, err) });
          }
        }
        // Server by server, each in its sockets' order (fd 3 + index).
        const order = new Map(servers.map((server, position) => [server.name, position]));
        this.held = next.sort((a, b) => (order.get(a.server) ?? 0) - (order.get(b.server) ?? 0) || a.index - b.index);
        return late;
      },
    };
  }

  /** Watches a server's sockets: onReadable(index) while a connection or datagram waits on socket index. */
  watch(server: string, onReadable: (index: number) => void): void {
    for (const socket of this.of(server)) {
      this.stopWatcher(socket);
      socket.watcher = this.system.watchReadable(socket.fd, () => onReadable(socket.index));
    }
  }

  unwatch(server: string): void {
    for (const socket of this.of(server)) this.stopWatcher(socket);
  }

  countActivation(server: string, index: number): void {
    const socket = this.held.find((held) => held.server === server && held.index === index);
    if (socket) socket.activations += 1;
  }

  describe(server: string): SocketStatus[] {
    return this.of(server).map((socket) => {
      const queue = this.system.listenQueue(socket.spec, socket.fd, socket.inode);
      return {
        listen: socket.spec.listen,
        name: socket.spec.name,
        fd: 3 + socket.index,
        queued: queue?.queued ?? null,
        backlog: queue === null ? (socket.spec.kind === "udp" || socket.spec.kind === "unix-dgram" ? null : socket.spec.backlog) : queue.backlog,
        activations: socket.activations,
        watched: socket.watcher !== null,
      };
    });
  }

  /** Closes every socket (the supervisor has stopped): a unix socket's file is removed. */
  closeAll(): void {
    for (const socket of this.held) this.closeQuietly(socket);
    this.held = [];
  }

  private stopWatcher(socket: HeldSocket): void {
    if (socket.watcher === null) return;
    this.system.stopWatching(socket.watcher);
    socket.watcher = null;
  }

  private closeQuietly(socket: HeldSocket): void {
    this.stopWatcher(socket);
    try {
      this.system.closeListener(socket.spec, socket.fd);
    } catch {
      // Already closed.
    }
  }
}
