// The typed boundary of the native addon (native/src/*.cc). Only init/native.ts loads it.
//
// Rules every call follows: one syscall, or one fork/exec; an options object (or plain numbers) in,
// numbers / fds / plain objects out; no policy. On failure a call throws an Error whose `code` is the
// errno name (e.g. "ENOENT", "EPERM") and whose `syscall` names the failing syscall; `errno` holds
// the positive errno number.

export interface NativeError extends Error {
  code: string;
  syscall: string;
  errno: number;
}

/** Where a child's standard stream comes from / goes to. */
export type StdioSpec =
  | "inherit" // keep the parent's fd 0/1/2 (dup2'ed onto itself, close-on-exec cleared)
  | "null" // /dev/null
  | "pipe" // a new pipe; the parent's end is returned (non-blocking, close-on-exec)
  | number; // an fd of the parent, dup2'ed into place

export interface RlimitSpec {
  /** Lower-case name without the RLIMIT_ prefix: "nofile", "core", "nproc", "memlock", "stack", "as", "cpu", "fsize", "data", "rss", "locks", "sigpending", "msgqueue", "nice", "rtprio", "rttime". */
  resource: string;
  /** -1 means RLIM_INFINITY. */
  soft: number;
  hard: number;
}

export interface SpawnOptions {
  /** Path handed to execve(2) as is: no PATH search happens in the addon. */
  file: string;
  /** argv, argv[0] included. */
  argv: string[];
  /** The complete environment as "KEY=value" strings. */
  env: string[];
  cwd?: string;
  uid?: number;
  gid?: number;
  /** Supplementary groups; set (setgroups) before gid/uid when given. */
  groups?: number[];
  umask?: number;
  rlimits?: RlimitSpec[];
  /** setsid() in the child: a new session and process group (pgid = pid). */
  setsid?: boolean;
  /** setpgid(0, 0) in the child (ignored when setsid is true). */
  setpgid?: boolean;
  /** With setpgid and a terminal on stdin: make the child's group the terminal's foreground group. */
  foreground?: boolean;
  /**
   * With setsid: make the terminal on stdin the new session's controlling terminal (ioctl TIOCSCTTY,
   * 0). Not a terminal, or one another session still holds: the child runs without one (no error).
   */
  controllingTerminal?: boolean;
  stdin?: StdioSpec; // default "inherit"; "pipe" is refused with a TypeError (SpawnResult has no stdin end)
  stdout?: StdioSpec; // default "inherit"
  /** "stdout" sends stderr to the same place as stdout (same pipe when stdout is "pipe"). */
  stderr?: StdioSpec | "stdout"; // default "inherit"
  /** When set: a pipe whose write end is placed at this fd number in the child (s6/dinit readiness notification); its read end is returned as notifyFd. */
  notifyFd?: number;
  /**
   * Socket activation (sd_listen_fds): fds of the parent placed at 3, 4, … in the child, in order
   * (close-on-exec cleared there). notifyFd, when set, must be at least 3 + their count (TypeError).
   */
  listenFds?: number[];
  /**
   * An fd of a cgroup's cgroup.procs (opened for writing by the caller, who closes it after): the child
   * writes "0" to it before anything else, so it and everything it forks run in that cgroup. A failure
   * is reported with syscall "cgroup".
   */
  cgroupFd?: number;
  /**
   * Environment variables the child sets to its own pid before exec, replacing any value given in env
   * (systemd's LISTEN_PID and WATCHDOG_PID: only the child knows its pid).
   */
  pidEnv?: string[];
  /** Written to the child's /proc/self/oom_score_adj before exec (best effort: no /proc, no change). */
  oomScoreAdj?: number;
}

export interface SpawnResult {
  pid: number;
  /** Parent ends of the pipes asked for; -1 when not asked for. Non-blocking, close-on-exec. */
  stdoutFd: number;
  stderrFd: number;
  notifyFd: number;
}

/**
 * Thrown by spawn() when the child could not reach execve or execve failed (reported through the
 * exec-stage error pipe). `syscall` names the failing stage ("execve", "chdir", "setuid", …).
 * The child has already exited (status 127): its exit will still arrive through the reaper, so
 * `pid` is given for the caller to recognise and discard it.
 */
export interface SpawnError extends NativeError {
  pid: number;
}

export interface MountOptions {
  source: string;
  target: string;
  /** Filesystem type ("proc", "sysfs", "devtmpfs", "devpts", "tmpfs", …); "" for remount / bind. */
  type: string;
  /** Names of MS_* flags, lower case without the prefix: "rdonly", "nosuid", "nodev", "noexec", "remount", "bind", "rec", "private", "relatime", "noatime". Unknown names throw a TypeError. */
  flags?: string[];
  /** Filesystem-specific data, e.g. "mode=0755". */
  data?: string;
}

/** A socket address: an IP literal and a port (no name lookup happens in the addon), or a Unix path. */
export type SocketAddress = { family: "inet" | "inet6"; host: string; port: number } | { family: "unix"; path: string };

/** What a listening socket holds: connections waiting to be accepted, and the limit (the backlog). */
export interface ListenQueue {
  queued: number;
  backlog: number;
}

export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
}

export interface NativeAddon {
  // ---- process creation and the reaper -------------------------------------------------------
  /** fork + exec with everything between them done in C++ (see SpawnOptions). */
  spawn(options: SpawnOptions): SpawnResult;

  /**
   * Installs the SIGCHLD handler (SA_RESTART | SA_NOCLDSTOP) and creates the self-pipe; returns the
   * pipe's read end (non-blocking, close-on-exec). Idempotent: a second call returns the same fd.
   * The handler reaps with waitpid and writes one 8-byte record per reaped child into the pipe, in
   * batches: int32 pid, int32 raw wait status, host byte order. It never reaps a child whose record
   * it cannot write (pipe full): that child stays a zombie, and the handler marks the reap deferred,
   * until reaperKick() is called after the pipe has been drained.
   */
  reaperStart(): number;
  /**
   * After a drain of the pipe: when the handler deferred zombies, runs its reap-into-pipe loop from
   * normal context (with SIGCHLD blocked in this thread) and returns true; otherwise returns false
   * at once, without a syscall.
   */
  reaperKick(): boolean;
  /**
   * SIGCHLD back to its default action, so that children that exit stay zombies, and waits for a
   * handler running on another thread to finish: every record reaped so far is in the pipe when it
   * returns. Before an execve of the init itself; the new init's reaperStart() reaps the zombies.
   */
  reaperPause(): void;
  /** The handler again after reaperPause() (the execve failed), and the zombies of meanwhile reaped. */
  reaperResume(): void;

  // ---- an in-place upgrade (reexec) -----------------------------------------------------------
  /** fcntl(F_SETFD): FD_CLOEXEC set (on) or cleared, so that the fd stays open across execve. */
  fdSetCloexec(fd: number, on: boolean): void;
  /** execve(file, argv, env), env as "KEY=value" strings: returns only by throwing (syscall "execve"). */
  execve(file: string, argv: string[], env: string[]): never;

  // ---- signals to forward ----------------------------------------------------------------------
  /**
   * Creates the self-pipe the handlers of signalCatch() write to; returns its read end (non-blocking,
   * close-on-exec). Idempotent: a second call returns the same fd.
   */
  signalPipe(): number;
  /**
   * sigaction(signal) with a handler that writes one 16-byte record per delivery into the pipe:
   * int32 signo, int32 si_code, int32 si_pid, int32 si_uid, host byte order. It replaces whatever
   * handler the signal had (libuv's too). EINVAL for SIGKILL, SIGSTOP and glibc's signals 32 and 33.
   */
  signalCatch(signal: number): void;
  /** SIGRTMIN and SIGRTMAX as the C library defines them at run time. */
  signalRange(): { min: number; max: number };
  /** prctl(PR_SET_PDEATHSIG, signal): the signal this process gets when its parent dies; 0 clears it. */
  setParentDeathSignal(signal: number): void;
  /** ioctl(fd, TIOCNOTTY): give up the controlling terminal (a session leader takes it from its whole session). */
  releaseControllingTerminal(fd: number): void;

  // ---- stage 1 / stage 3 syscalls -----------------------------------------------------------
  mount(options: MountOptions): void;
  /** umount2(target, flags); flags: "force", "detach", "expire". */
  umount(target: string, flags?: string[]): void;
  /** prctl(PR_SET_CHILD_SUBREAPER, 1). */
  setChildSubreaper(): void;
  /** reboot(2): "poweroff" | "restart" | "halt" | "cad-off" (ctrl-alt-del sends SIGINT to PID 1) | "cad-on". */
  reboot(command: "poweroff" | "restart" | "halt" | "cad-off" | "cad-on"): void;
  /** sync(2). */
  sync(): void;
  /** finit_module(2) of the module file at path (opened and closed here); EEXIST when it is loaded already. */
  finitModule(path: string, params?: string): void;
  sethostname(name: string): void;
  /** Sets IFF_UP on a network interface (SIOCGIFFLAGS + SIOCSIFFLAGS). */
  linkUp(ifname: string): void;
  /** dup2(oldfd, newfd) — used to put /dev/console on fds 0–2 of a VM's PID 1. */
  dup2(oldfd: number, newfd: number): void;
  /** setsid() for the init itself (VM console ownership). Returns the new session id. */
  setsid(): number;
  /** ioctl(fd, TIOCSCTTY, force) — make the terminal on fd the controlling terminal. */
  setControllingTerminal(fd: number, force: boolean): void;

  // ---- memory ---------------------------------------------------------------------------------
  /** madvise(address, length, MADV_DONTNEED | MADV_COLD | MADV_PAGEOUT) on a range of this process. */
  madvise(address: number, length: number, advice: "dontneed" | "cold" | "pageout"): void;
  /** malloc_trim(0): free memory of every malloc arena back to the system; true when some was. */
  mallocTrim(): boolean;

  // ---- sockets and descriptors ---------------------------------------------------------------
  /** getsockopt(fd, SOL_SOCKET, SO_PEERCRED). */
  peerCred(fd: number): PeerCred;
  /** pidfd_open(pid, 0); close-on-exec. */
  pidfdOpen(pid: number): number;
  /** pidfd_send_signal(pidfd, signal, NULL, 0). */
  pidfdSendSignal(pidfd: number, signal: number): void;
  /** socket(AF_UNIX, SOCK_DGRAM | NONBLOCK | CLOEXEC) bound to path (an existing file at path is unlinked first). */
  unixDgramBind(path: string): number;
  /** recv() of one datagram; null when none is waiting (EAGAIN). */
  recvDgram(fd: number): Buffer | null;
  /** socket(AF_UNIX, SOCK_DGRAM | NONBLOCK | CLOEXEC), unbound: the sending end for sendDgram. */
  unixDgramSocket(): number;
  /**
   * sendto(fd, data, MSG_NOSIGNAL, path) of one datagram; returns the bytes sent. A path starting
   * with "@" is an abstract address (systemd's NOTIFY_SOCKET notation). EAGAIN when the receiver's
   * queue is full (the socket is non-blocking).
   */
  sendDgram(fd: number, path: string, data: Buffer): number;
  /** close(2). */
  close(fd: number): void;

  // ---- listening sockets of socket activation ------------------------------------------------
  /** socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0). */
  socketOpen(family: "inet" | "inet6" | "unix", type: "stream" | "dgram"): number;
  /** setsockopt(2) of SO_REUSEADDR, SO_REUSEPORT or IPV6_V6ONLY, on or off. */
  setSocketOption(fd: number, option: "reuseaddr" | "reuseport" | "ipv6only", value: boolean): void;
  /** bind(2). A host must be an IP literal of the family (TypeError otherwise). */
  socketBind(fd: number, address: SocketAddress): void;
  /** listen(2). */
  socketListen(fd: number, backlog: number): void;
  /** accept4(fd, SOCK_CLOEXEC): a blocking connection, or null when none waits (EAGAIN). */
  socketAccept(fd: number): number | null;
  /** connect(2) (a non-blocking socket throws EINPROGRESS / EAGAIN like any errno). */
  socketConnect(fd: number, address: SocketAddress): void;
  /** getsockname(2). */
  socketName(fd: number): SocketAddress;
  /** getsockopt(TCP_INFO) of a TCP socket: for a listening one, its accept queue (ss's Recv-Q / Send-Q). */
  tcpListenQueue(fd: number): ListenQueue & { listening: boolean };
  /** getsockopt(SO_MEMINFO): bytes of kernel memory held by the receive queue (a datagram socket's Recv-Q). */
  socketReceiveMemory(fd: number): number;
  /** socket(AF_NETLINK, SOCK_DGRAM | NONBLOCK | CLOEXEC, NETLINK_SOCK_DIAG): for unixDiagRequest. */
  sockDiagOpen(): number;
  /** sendto(2) of a sock_diag request for the Unix socket with this inode (its queue lengths). */
  unixDiagRequest(fd: number, inode: number): void;
  /** recv(2) of the answer: a listening socket's accept queue, or null when no answer waits. */
  unixDiagReply(fd: number): ListenQueue | null;

  // ---- cgroup v2 and a VM's hardware watchdog --------------------------------------------------
  /** inotify_init1(IN_NONBLOCK | IN_CLOEXEC). */
  inotifyInit(): number;
  /** inotify_add_watch(fd, path, IN_MODIFY); returns the watch descriptor. */
  inotifyAddWatch(fd: number, path: string): number;
  /** getxattr(path, name) as a string; null when the file has no such attribute. */
  getxattr(path: string, name: string): string | null;
  /** ioctl(WDIOC_SETTIMEOUT): returns the timeout in seconds the device took. */
  watchdogSetTimeout(fd: number, seconds: number): number;
  /** ioctl(WDIOC_GETSUPPORT): the driver's identity, whether it honours the magic close, whether its timeout can be set. */
  watchdogInfo(fd: number): { identity: string; magicClose: boolean; settableTimeout: boolean };
}

/**
 * Watches an fd for readability on the libuv loop (uv_poll_t): for fds that net.Socket cannot wrap
 * (pidfds, datagram sockets). The callback runs on the main thread each time the fd is readable.
 * close() stops watching (it does not close the fd). An unref'd watcher does not keep the loop alive.
 */
export declare class FdWatcher {
  constructor(fd: number, onReadable: () => void);
  close(): void;
  ref(): void;
  unref(): void;
}

export interface NativeModule extends NativeAddon {
  FdWatcher: typeof FdWatcher;
}
