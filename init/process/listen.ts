// The kernel side of socket activation: creating a server's listening socket one syscall at a time
// through the addon, what a reload may change of one kept open, its accept queue, and whether a
// connection is open on it. runtime/sockets.ts decides when; this does it.

import fs from "node:fs";
import path from "node:path";
import { native, type ListenQueue, type SocketAddress } from "../native";
import type { SocketSpec } from "../core/types";

/** A unix socket's file mode when the config gives none: anyone may connect, as systemd's SocketMode default. */
export const DEFAULT_SOCKET_MODE = 0o666;

/** A listening socket the init holds: its fd, and its inode (what sock_diag and /proc/net name it by). */
export interface Listener {
  fd: number;
  inode: number;
}

function isIpv6(socket: SocketSpec): boolean {
  return socket.kind === "tcp6" || (socket.host?.includes(":") ?? false);
}

export function addressOf(socket: SocketSpec): SocketAddress {
  if (socket.path !== null) return { family: "unix", path: socket.path };
  return { family: isIpv6(socket) ? "inet6" : "inet", host: socket.host ?? "0.0.0.0", port: socket.port ?? 0 };
}

function typeOf(socket: SocketSpec): "stream" | "dgram" {
  return socket.kind === "udp" || socket.kind === "unix-dgram" ? "dgram" : "stream";
}

function errnoError(code: string, syscall: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code, syscall });
}

/**
 * A socket file left at a unix path: removed when nothing listens behind it any more (a connect is
 * refused), as a stale file of an earlier run would be; a live one is in use, and a file that is no
 * socket is not ours to remove.
 */
function clearStaleSocketFile(socket: SocketSpec, file: string): void {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(file);
  } catch {
    return; // nothing there (or its directory is missing: bind says so)
  }
  if (!stat.isSocket()) throw errnoError("EEXIST", "bind", `${file} exists and is not a socket`);
  const probe = native().socketOpen("unix", typeOf(socket));
  try {
    native().socketConnect(probe, { family: "unix", path: file });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return; // gone meanwhile
    if (code !== "ECONNREFUSED") throw err;
    fs.rmSync(file, { force: true });
    return;
  } finally {
    native().close(probe);
  }
  throw errnoError("EADDRINUSE", "bind", `${file}: another program listens there`);
}

/**
 * socket, setsockopt (SO_REUSEADDR for stream sockets, IPV6_V6ONLY for IPv6 ones, SO_REUSEPORT when
 * asked), bind, listen (stream), then a unix file's mode and owner. Throws an Error with `code` and
 * `syscall`; nothing is left open or created when it does.
 */
export function openListener(socket: SocketSpec): Listener {
  const address = addressOf(socket);
  if (socket.path !== null) clearStaleSocketFile(socket, socket.path);
  const fd = native().socketOpen(address.family, typeOf(socket));
  let bound = false;
  try {
    // A restarted init rebinds a port whose old connections linger in TIME_WAIT.
    if (typeOf(socket) === "stream" && address.family !== "unix") native().setSocketOption(fd, "reuseaddr", true);
    // tcp:8080 and tcp6:8080 side by side: an IPv6 socket takes IPv6 only.
    if (address.family === "inet6") native().setSocketOption(fd, "ipv6only", true);
    if (socket.reusePort) native().setSocketOption(fd, "reuseport", true);
    native().socketBind(fd, address);
    bound = true;
    if (typeOf(socket) === "stream") native().socketListen(fd, socket.backlog);
    if (socket.path !== null) {
      fs.chmodSync(socket.path, socket.mode ?? DEFAULT_SOCKET_MODE);
      if (socket.uid !== null || socket.gid !== null) fs.chownSync(socket.path, socket.uid ?? -1, socket.gid ?? -1);
    }
    return { fd, inode: fs.fstatSync(fd).ino };
  } catch (err) {
    native().close(fd);
    if (bound && socket.path !== null) fs.rmSync(socket.path, { force: true });
    throw err;
  }
}

/** What a reload may change of a socket kept open: the backlog (listen again), a unix file's mode and owner. */
export function updateListener(socket: SocketSpec, fd: number): void {
  if (typeOf(socket) === "stream") native().socketListen(fd, socket.backlog);
  if (socket.path !== null) {
    fs.chmodSync(socket.path, socket.mode ?? DEFAULT_SOCKET_MODE);
    if (socket.uid !== null || socket.gid !== null) fs.chownSync(socket.path, socket.uid ?? -1, socket.gid ?? -1);
  }
}

/** Closes it; a unix socket's file goes with it (the next bind would otherwise find a stale file). */
export function closeListener(socket: SocketSpec, fd: number): void {
  native().close(fd);
  if (socket.path !== null) fs.rmSync(socket.path, { force: true });
}

let diagFd: number | null = null;

/**
 * What waits at a socket: a stream socket's accept queue and its limit (TCP_INFO for tcp, a
 * sock_diag request for unix), or the bytes a datagram socket holds (SO_MEMINFO; no limit). Null when
 * the kernel does not say (sock_diag for unix sockets is a module that may be missing).
 */
export function listenQueue(socket: SocketSpec, fd: number, inode: number): { queued: number; backlog: number | null } | null {
  try {
    if (typeOf(socket) === "dgram") return { queued: native().socketReceiveMemory(fd), backlog: null };
    if (socket.path === null) {
      const { queued, backlog } = native().tcpListenQueue(fd);
      return { queued, backlog };
    }
    diagFd ??= native().sockDiagOpen();
    // The kernel answers a sock_diag request before sendto returns: the answer is there to read.
    native().unixDiagRequest(diagFd, inode);
    const answer: ListenQueue | null = native().unixDiagReply(diagFd);
    return answer;
  } catch {
    return null;
  }
}

/** /proc/net/tcp states of a connection that is open (neither listening, nor closed, nor TIME_WAIT). */
const OPEN_TCP_STATES = new Set(["01", "02", "03", "04", "05", "08", "09", "0B"]);

function readProc(file: string): string[] {
  try {
    return fs.readFileSync(file, "utf8").split("\n").slice(1);
  } catch {
    return [];
  }
}

/**
 * Whether a connection is open on, or waits at, any of these sockets: an accept queue or datagrams
 * waiting; a tcp connection whose local port is the socket's (/proc/net/tcp, tcp6); an accepted unix
 * connection on its path (/proc/net/unix names it by the path it was accepted on).
 */
export function socketsBusy(sockets: readonly { spec: SocketSpec; fd: number; inode: number }[]): boolean {
  for (const { spec, fd, inode } of sockets) {
    const queue = listenQueue(spec, fd, inode);
    if (queue !== null && queue.queued > 0) return true;
  }
  const tcpPorts = new Set(sockets.filter(({ spec }) => spec.kind === "tcp" || spec.kind === "tcp6").map(({ spec }) => spec.port));
  if (tcpPorts.size > 0) {
    for (const line of [...readProc("/proc/net/tcp"), ...readProc("/proc/net/tcp6")]) {
      // "  0: 0100007F:1F90 00000000:0000 0A …": the local address's port in hex, then the state.
      const fields = line.trim().split(/\s+/);
      if (fields.length < 4) continue;
      const port = parseInt(fields[1].slice(fields[1].lastIndexOf(":") + 1), 16);
      if (tcpPorts.has(port) && OPEN_TCP_STATES.has(fields[3])) return true;
    }
  }
  const paths = new Set(sockets.filter(({ spec }) => spec.kind === "unix").map(({ spec }) => spec.path));
  if (paths.size > 0) {
    for (const line of readProc("/proc/net/unix")) {
      // "Num RefCount Protocol Flags Type St Inode Path": St 03 is a connected socket.
      const fields = line.trim().split(/\s+/);
      if (fields.length >= 8 && fields[5] === "03" && paths.has(fields.slice(7).join(" "))) return true;
    }
  }
  return false;
}

/** The directory a unix socket's file goes in (for messages). */
export function socketDirectory(socket: SocketSpec): string | null {
  return socket.path === null ? null : path.dirname(socket.path);
}
