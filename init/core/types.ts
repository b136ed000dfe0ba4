// The supervisor's data model: what a loaded, validated configuration resolves to. config/ produces
// these; core/ (pure) and runtime/ consume them. Times are milliseconds everywhere in core/.

/** How readiness of a started server is recognised. */
export type ReadinessProbe =
  | { kind: "none" } // ready as soon as exec succeeded
  | { kind: "log"; pattern: string; regex: boolean; stream: "stdout" | "stderr" | "both" }
  | { kind: "notify"; fd: number } // s6/dinit: a newline written on fd N
  | { kind: "sd_notify" } // READY=1 datagram on $NOTIFY_SOCKET
  | { kind: "tcp"; host: string; port: number; intervalMs: number }
  | { kind: "file"; path: string; intervalMs: number }
  | { kind: "exec"; argv: string[]; intervalMs: number; timeoutMs: number }
  /** The Starter's check: the admin device dserver/<Server>/<instance> answers ping (after the ready line). */
  | { kind: "tango"; target: TangoTarget; intervalMs: number };

/**
 * Where a server's admin device answers: found through the database of the server's own TANGO_HOST
 * (DbImportDevice), or at a fixed endpoint (a server run with -nodb -ORBendPoint giop:tcp:host:port).
 */
export type TangoTarget = { via: "database" } | { via: "endpoint"; host: string; port: number };

/** The Starter's ping thread: a ready server's admin device is pinged every intervalMs. */
export interface LivenessSpec {
  intervalMs: number;
  /** A ping not answered within this counts as failed. */
  timeoutMs: number;
  /** This many failed pings in a row make the server unresponsive (the Starter's MOVING). */
  failures: number;
  /** "report" (the Starter's way) or "restart": SIGABRT, SIGKILL after stopTimeout, then the restart policy. */
  onUnresponsive: "report" | "restart";
  target: TangoTarget;
}

export interface RestartPolicy {
  /** "on-failure": restart after a non-zero exit or a signal death; "always": after any exit; "never". */
  mode: "on-failure" | "always" | "never";
  initialDelayMs: number;
  factor: number;
  maxDelayMs: number;
  /** More than burstCount starts within burstWindowMs → the server is failed (others unaffected). */
  burstCount: number;
  burstWindowMs: number;
  /** The backoff delay resets to initialDelayMs once the server has stayed ready this long. */
  resetAfterMs: number;
  /** Starter's AutoRestartDuration (0 = off): when > 0, restart only servers that ran longer than this. */
  minUptimeForRestartMs: number;
}

export interface LogSettings {
  /** Per-server log file path, or null for no file. */
  file: string | null;
  maxBytes: number;
  keep: number;
  /** Mirror each line to the console with a "Server/instance" prefix. */
  console: boolean;
  /** Lines longer than this are cut with a marker. */
  maxLineBytes: number;
}

export interface RlimitSetting {
  resource: string;
  soft: number; // -1 = unlimited
  hard: number;
}

export interface ServerSpec {
  /** "Server/instance" (Tango) or a plain name; unique. */
  name: string;
  /** Absolute path of the binary (resolved through the search path by config/). */
  file: string;
  /** Full argv, argv[0] included: [binary, instance?, ...extra args]. */
  argv: string[];
  /** Complete environment, merged global + per server. */
  env: Record<string, string>;
  cwd: string | null;
  uid: number | null;
  gid: number | null;
  umask: number | null;
  rlimits: RlimitSetting[];
  /** Startup level, 1-based. Level 0 = known but not started automatically (Starter semantics). */
  level: number;
  /** Names this server must wait for (ready) before it starts; also stopped after it. */
  requires: string[];
  /** Ordering only: if these are also being started, start after they are ready. */
  after: string[];
  /** Starts alone: no other server is starting while it starts. */
  exclusive: boolean;
  readiness: ReadinessProbe;
  /** Periodic ping of the admin device while ready; null (or absent): none. */
  liveness?: LivenessSpec | null;
  startTimeoutMs: number;
  restart: RestartPolicy;
  /** Signal number sent to the process group to stop it. */
  stopSignal: number;
  stopTimeoutMs: number;
  /** Optional commands run before start / after stop (argv form). */
  preStart: string[] | null;
  postStop: string[] | null;
  /** How long preStart may run before it is stopped and the start counts as failed. */
  preStartTimeoutMs: number;
  /** How long postStop may run before it is stopped (the shutdown deadline bounds it too). */
  postStopTimeoutMs: number;
  /**
   * Upstart's failsafe jobs: started this long after its run began at the latest, whatever the levels
   * and dependencies before it do; a failed dependency never keeps it down. Null: an ordinary server.
   */
  failsafeMs: number | null;
  log: LogSettings;
  /** Whether it starts at boot (Starter's StartServersAtStartup, or per server `autostart`). */
  autostart: boolean;

  // ---- socket activation (absent: none, eager) ----
  /** Sockets the init creates before any server and passes as fds 3, 4, … (sd_listen_fds). */
  sockets?: SocketSpec[];
  /** eager: started when its turn comes; lazy: at the first connection; accept: one instance per connection. */
  activation?: Activation;
  /** lazy: stopped again (and listened for) after this long without a connection; null: never. */
  idleStopMs?: number | null;
  /** accept: at most this many instances at once (further connections wait in the backlog). */
  maxInstances?: number;
  /** readiness: socket: what requires it may start as soon as its sockets exist, not once it is ready. */
  readyOnSockets?: boolean;
  /**
   * systemd's Type=: "simple" (the default), the spawned process is the server; "forking", it forks the
   * server (a daemon) and exits 0, and the daemon's main process is then found (pidFile, else its cgroup).
   */
  type?: "simple" | "forking";
  /** forking: the file the daemon writes its pid to; null (or absent): its cgroup tells. */
  pidFile?: string | null;
  /** sd_notify keep-alives (WATCHDOG=1) expected at least this often once ready; null (or absent): none. */
  watchdogMs?: number | null;
  /** cgroup v2 limits, keyed by the kernel's file name (memory.max, cpu.weight, …), valued as written to it. */
  limits?: Record<string, string>;
}

/** How a server with sockets is started: see ServerSpec.activation. */
export type Activation = "eager" | "lazy" | "accept";

export type SocketKind = "tcp" | "tcp6" | "udp" | "unix" | "unix-dgram";

/** A socket the init listens on for a server (config `sockets:`). */
export interface SocketSpec {
  /** As written in the config: "tcp:127.0.0.1:8080", "unix:/run/x.sock". */
  listen: string;
  kind: SocketKind;
  /** tcp, tcp6, udp: the IP address to bind ("0.0.0.0" / "::" for every one) and the port; null for unix kinds. */
  host: string | null;
  port: number | null;
  /** unix, unix-dgram: the socket file; null otherwise. */
  path: string | null;
  /** Its name in LISTEN_FDNAMES. */
  name: string;
  /** listen(2)'s backlog (stream kinds). */
  backlog: number;
  /** unix kinds: the socket file's mode and owner; null: as created (umask, root). */
  mode: number | null;
  uid: number | null;
  gid: number | null;
  /** SO_REUSEPORT, so that the server may bind the same address itself too. */
  reusePort: boolean;
}

export interface Settings {
  /** "parallel" (default) or Starter-compatible "sequential". */
  startMode: "parallel" | "sequential";
  /** Pause between two forks within a level (InterStartupServerWait; sequential default 500). */
  interServerWaitMs: number;
  /** Pause after a level is done before the next starts (InterStartupLevelWait). */
  interLevelWaitMs: number;
  /** Highest level started at boot (NbStartupLevels). */
  maxLevel: number;
  /** Global shutdown deadline; fits inside docker stop's 10 s by default. */
  shutdownTimeoutMs: number;
  /** Control socket path. */
  controlSocket: string;
  /** Directory for Starter-compatible log names (LogFileHome), or null. */
  logHome: string | null;
  /** The read-only HTTP listener (init/http/), absent when off. The core does not read it. */
  http?: HttpSettings;
  /** cgroup v2 for the servers: false (none), or the directory the init owns; absent: found by itself. The core does not read it. */
  cgroup?: string | false;
}

export interface HttpSettings {
  /** Address to bind; the host is 127.0.0.1 unless the config names another. */
  listen: { host: string; port: number };
}

export interface SupervisorConfig {
  settings: Settings;
  servers: ServerSpec[];
  /** The file this came from (for messages). */
  source: string;
}
