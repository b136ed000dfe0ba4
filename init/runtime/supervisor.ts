// Stage 2 and the way into stage 3: load the config, boot the servers, answer signals, shut down.
//
// Signals (supervisor mode), container or plain process / VM:
//   SIGTERM, SIGPWR, SIGINT   ordered shutdown, exit 0 / ordered shutdown, power off (SIGINT is ctrl-alt-del)
//   SIGQUIT                   ordered shutdown, exit 0 / ordered shutdown, halt
//   SIGUSR1                   write every server's state to the log / halt (busybox halt)
//   SIGUSR2                   toggle debug logging / power off (busybox poweroff)
//   SIGHUP                    re-read the config and apply the difference
//   SIGWINCH                  ignored
// A config that cannot be loaded at boot is reported with file:line; a container's init exits 78
// (EX_CONFIG), a VM's follows starter.onfailure= (stay, the default; poweroff; reboot).

import path from "node:path";
import type { Invocation } from "../cli/args";
import { ConfigError, loadConfigWithSources, type ConfigWithSources } from "../config/loader";
import type { TangoReport } from "../config/tango/compose";
import { describeTangoReport } from "../config/tango/describe";
import { TangoSourceHub } from "../config/tango/hub";
import type { TangoSourceStatus } from "../config/tango/watcher";
import { createSupervisor, bootPlan, diffConfig, type Supervisor } from "../core/supervisor";
import { starterStateOf } from "../core/server";
import type { Settings, SupervisorConfig } from "../core/types";
import { ConsoleReport, consoleLine } from "../log/console";
import { initLog } from "../log/init-log";
import { writeAll, type Logger } from "../log/logger";
import { leaveWorkingDirectory, type Role } from "../pid1/environment";
import { startChildrenIn } from "../process/spawn";
import { catchSignals, installSignalHandlers, readCaughtSignals, type HandledSignal } from "../pid1/signals";
import { native } from "../native";
import { endLeftovers, finish, type PowerAction } from "../pid1/stage3";
import { EXIT } from "../cli/exit-codes";
import { Engine, kernelSystem, monotonicNow } from "./engine";
import { SocketTable, type SocketChange } from "./sockets";
import { setUpCgroups, type CgroupControl } from "../process/cgroup";
import { SystemdNotifier, takeSystemdEnvironment, type SystemdTarget } from "./notify";
import { checkBinary, encodeValue, execInit, partOf, ReexecError, supervisorOf, type CheckedBinary, type ReexecPart, type ReexecState } from "./reexec";
import type { TangoSnapshot } from "../config/tango/read";
import type { Json } from "../core/state";
import { INIT_VERSION } from "../version";

/** A config that does not load ends a container's init with EX_CONFIG, as `reload` and `plan` end. */
const EXIT_CONFIG = EXIT.CONFIG;
/** Grace for processes that are not supervised servers, after the servers have stopped. */
const LEFTOVER_GRACE_MS = 2000;
/** The init's own log file: its name in the log directory, and its rotation. */
const INIT_LOG_FILE = "starter-init.log";
const INIT_LOG_MAX_BYTES = 4 * 1024 * 1024;
const INIT_LOG_KEEP = 3;

export interface SupervisorContext {
  role: Role;
  kernel: Map<string, string>;
  invocation: Extract<Invocation, { mode: "supervisor" }>;
  /** The arguments the init was first started with (a re-executed init parses them again). */
  argv: string[];
  /** A re-executed init: the state of the one before, whose servers it takes over. */
  resume?: { state: ReexecState; readMs: number } | null;
  /** A re-executed init that could not read the state (a downgrade): why, and where it was saved. */
  downgrade?: { why: string; savedTo: string | null } | null;
}

/** The last reexec, as `hello` and `status` report it. */
export interface ReexecInfo {
  /** Execs this init has been through since its first start. */
  generation: number;
  from: string;
  to: string;
  /** Wall clock of the request, and how long it took until the new init had taken over. */
  at: number;
  execMs: number;
  /** The longest time a server's output went unread (from the old init's last read to the new one's first). */
  unreadMs: number;
  /** A reexec that failed since (the init went on unchanged): why. */
  lastFailure: string | null;
}

/** Hooks other modules (the control socket) attach to a running supervisor. */
export interface RunningSupervisor {
  engine: Engine;
  config: () => SupervisorConfig;
  reload: (dryRun: boolean) => Promise<ReloadOutcome>;
  /** Called when a reload that applies (not a dry run) begins, and when it ends with its outcome. */
  onReload: (listener: ReloadListener) => () => void;
  /**
   * Reads the sources again (the Tango database) with the file as it was last loaded, and applies
   * what changed; servers it adds start only when startAdded (the Starter's UpdateServersInfo: no).
   */
  refreshSources: (startAdded: boolean) => Promise<ReloadOutcome>;
  /** Where servers come from besides the file (the Tango database), and how that stands. */
  sources?: () => TangoSourceStatus[];
  shutdown: (action: PowerAction | "exit") => void;
  role: Role;
  startedAt: number;
  /** Checks a binary to replace this init with (null: its own executable): refuses what cannot work. */
  checkReexec: (binary: string | null, force: boolean) => Promise<CheckedBinary>;
  /** Replaces this init with a checked binary; returns only when that failed (a ReexecError), everything as before. */
  execReexec: (binary: CheckedBinary, requestedAt: number) => Promise<never>;
  /** What other modules (the control socket) hand over to a re-executed init. */
  reexecParts: ReexecPart[];
  /** In a re-executed init: the state it took over (for the parts of other modules). */
  resumed: ReexecState | null;
  reexecInfo: () => ReexecInfo | null;
}

export interface ReloadOutcome {
  ok: boolean;
  error?: string;
  added: string[];
  removed: string[];
  changed: string[];
  unchanged: string[];
  /** About the sources: a database that did not answer (its last read stands), warnings. */
  notes?: string[];
}

export type ReloadListener = (phase: "begin" | "end", outcome?: ReloadOutcome) => void;

type Attach = (running: RunningSupervisor, log: Logger) => void | Promise<void>;
const attachments: Attach[] = [];

/** Registers something to start with the supervisor (the control socket does this). */
export function attachToSupervisor(attach: Attach): void {
  attachments.push(attach);
}

/**
 * The log directory holds the init's own log: LogFileHome when the config names one, else the
 * runtime directory beside the control socket (/run/starter-init by default).
 */
function attachInitLogFile(settings: Settings): void {
  const dir = settings.logHome ?? path.join(path.dirname(settings.controlSocket), "starter-init");
  initLog.attachFile(path.join(dir, INIT_LOG_FILE), INIT_LOG_MAX_BYTES, INIT_LOG_KEEP);
}

function configPath(context: SupervisorContext): string {
  const fromKernel = context.kernel.get("config");
  return context.invocation.configGiven || !fromKernel ? context.invocation.config : fromKernel;
}

/** A config error (a ConfigError names file, line and field) for the person at the console. */
function reportConfigError(err: unknown): void {
  writeAll(2, `starter-init: config error:\n${(err as Error).message}\n`);
}

/**
 * What a signal asks of a VM's PID 1: busybox's poweroff sends SIGUSR2 and halt SIGUSR1, and
 * ctrl-alt-del arrives as SIGINT. A restart is only ever asked for explicitly (`starter-init reboot`).
 */
function vmPowerAction(signal: HandledSignal): PowerAction | null {
  switch (signal) {
    case "SIGTERM":
    case "SIGPWR":
    case "SIGINT":
    case "SIGUSR2":
      return "poweroff";
    case "SIGQUIT":
    case "SIGUSR1":
      return "halt";
    default:
      return null;
  }
}

/**
 * Opens the sockets a configuration's servers listen on (those already held and unchanged are kept).
 * One that cannot be bound is a config error at its place in the file, and then nothing has changed.
 */
function prepareSockets(sockets: SocketTable, loaded: ConfigWithSources, servers: SupervisorConfig["servers"]): SocketChange {
  const change = sockets.prepare(servers);
  if (change.problems.length === 0) return change;
  const place =
    loaded.placeSocket ??
    ((server: string, socket: number, message: string) => ({ file: loaded.config.source, line: 1, column: 1, path: `${server} sockets[${socket}]`, message }));
  throw new ConfigError(change.problems.map((problem) => place(problem.server, problem.socket, problem.message)));
}

/** Loads the config and creates its servers' sockets, as stage 2 begins: before any server is forked. */
function loadAndBind(file: string, sockets: SocketTable): ConfigWithSources {
  const loaded = loadConfigWithSources(file);
  prepareSockets(sockets, loaded, loaded.config.servers).commit();
  return loaded;
}

export async function runSupervisor(log: Logger, context: SupervisorContext): Promise<void> {
  // Before the config is read: the servers' environment must not carry the manager's variables.
  const systemd = takeSystemdEnvironment(process.env, log);
  // Servers without a cwd of their own start where the init was started; the init keeps no directory busy.
  const callerDirectory = leaveWorkingDirectory(log);
  if (callerDirectory !== null) startChildrenIn(callerDirectory);
  const file = context.resume ? context.resume.state.configFile : configPath(context);
  const sockets = new SocketTable(kernelSystem());
  if (context.resume) {
    const { state } = context.resume;
    if (state.childrenDirectory !== null) startChildrenIn(state.childrenDirectory);
    sockets.adopt(state.sockets);
    await supervise(log, context, file, resumedConfig(log, file, state), (state.systemd as SystemdTarget | null) ?? systemd, sockets);
    return;
  }
  if (context.downgrade) {
    const { why, savedTo } = context.downgrade;
    log.warn({ savedTo }, `re-executed, but the state is not readable here (${why}); saved to ${savedTo ?? "nowhere (no writable place)"}; booting afresh`);
  }
  let config: ConfigWithSources;
  try {
    config = loadAndBind(file, sockets);
  } catch (err) {
    reportConfigError(err);
    log.error({ file }, "cannot load the config");
    if (context.role !== "vm") {
      if (context.role === "container") await endLeftovers(log, LEFTOVER_GRACE_MS);
      process.exit(EXIT_CONFIG);
    }
    const onFailure = context.kernel.get("onfailure") ?? "stay";
    if (onFailure === "poweroff" || onFailure === "reboot") {
      finish(log, "vm", EXIT_CONFIG, onFailure === "reboot" ? "restart" : "poweroff");
    }
    // A VM that stays up waits for a config that loads: SIGHUP retries.
    config = await waitForLoadableConfig(log, file, sockets);
  }
  await supervise(log, context, file, config, systemd, sockets);
}

/**
 * The config a re-executed init runs with: the file as it loads now (for later reloads and the
 * sources) — but the servers and settings are the supervisor's of the state, so nothing changes
 * until a reload. A file that no longer loads leaves the state's alone (a reload says why).
 */
function resumedConfig(log: Logger, file: string, state: ReexecState): ConfigWithSources {
  try {
    return loadConfigWithSources(file);
  } catch (err) {
    log.warn({ file }, `the config does not load now (${(err as Error).message.split("\n")[0]}); running on with the state's`);
    const sup = supervisorOf(state);
    return { config: { settings: sup.settings, servers: [...sup.servers.values()].map((server) => server.spec), source: state.source }, tango: null };
  }
}

/** Stays alive (a VM's PID 1 must not exit; the reaper keeps the loop running) until SIGHUP finds a config that loads. */
function waitForLoadableConfig(log: Logger, file: string, sockets: SocketTable): Promise<ConfigWithSources> {
  log.error(`config ${file} does not load; staying up (reaping orphans) — fix the config and send SIGHUP, or power off`);
  return new Promise((resolve) => {
    const remove = installSignalHandlers((signal) => {
      const action = vmPowerAction(signal);
      if (action) return finish(log, "vm", 0, action);
      if (signal !== "SIGHUP") return;
      try {
        const config = loadAndBind(file, sockets);
        remove();
        resolve(config);
      } catch (err) {
        reportConfigError(err);
      }
    });
  });
}

async function supervise(
  log: Logger,
  context: SupervisorContext,
  file: string,
  initial: ConfigWithSources,
  systemd: SystemdTarget | null,
  sockets: SocketTable,
): Promise<void> {
  // The file alone until the Tango database (when the file names it) has answered; then the file with
  // the database's servers, applied like a reload.
  const consoleReport = new ConsoleReport();
  const sources = new TangoSourceHub(
    log,
    (line) => consoleReport.line(line),
    (next) => {
      if (!stopping) applyWithSockets(next);
    },
  );
  const resume = context.resume?.state ?? null;
  if (resume) sources.restoreSnapshot((partOf(resume, "tango") as TangoSnapshot | null | undefined) ?? null);
  let config = sources.use(initial);
  // The file as last loaded: what a refresh of the sources composes with.
  let loadedFile = initial;
  const resumedSup = resume ? supervisorOf(resume) : null;
  // A re-executed init runs what the one before ran (a reload applies the file's changes).
  if (resumedSup) config = { settings: resumedSup.settings, servers: [...resumedSup.servers.values()].map((server) => server.spec), source: resume!.source };
  attachInitLogFile(config.settings);
  const runtimeDir = path.dirname(config.settings.controlSocket);
  const cgroups = serverCgroups(log, context.role, config);
  const engine = new Engine(
    resumedSup ?? createSupervisor(config, monotonicNow()),
    log,
    consoleReport,
    path.join(runtimeDir, "starter-init"),
    kernelSystem(cgroups),
    sockets,
  );
  const maxLevelWord = Number(context.kernel.get("maxlevel"));
  let stopping: PowerAction | "exit" | null = null;

  const apply = (next: SupervisorConfig, startAdded = true) => {
    config = next;
    attachInitLogFile(next.settings);
    engine.dispatch({ type: "config-reloaded", now: monotonicNow(), servers: next.servers, settings: next.settings, startAdded });
  };

  /**
   * A configuration composed with the sources (the file's sockets, unchanged): its sockets are made
   * the table's first. One that cannot be bound (the file changed meanwhile?) leaves everything as it is.
   */
  const applyWithSockets = (next: SupervisorConfig, startAdded = true) => {
    let change: SocketChange;
    try {
      change = prepareSockets(engine.sockets, loadedFile, next.servers);
    } catch (err) {
      log.error(`servers from the sources not applied: ${(err as Error).message}`);
      return;
    }
    commitSockets(change);
    apply(next, startAdded);
  };

  /** Makes a prepared socket change the table's; what fails only now (a rebind, a chmod) is logged. */
  const commitSockets = (change: SocketChange) => {
    for (const problem of change.commit()) log.error({ server: problem.server, socket: problem.socket }, problem.message);
  };

  const outcomeOf = (next: SupervisorConfig, notes: string[]): ReloadOutcome => {
    const diff = diffConfig(config.servers, next.servers);
    return {
      ok: true,
      added: diff.added.map((s) => s.name),
      removed: diff.removed.map((s) => s.name),
      changed: diff.changed.map((s) => s.name),
      unchanged: diff.unchanged.map((s) => s.name),
      notes,
    };
  };

  const reloadListeners = new Set<ReloadListener>();
  const tellReload: ReloadListener = (phase, outcome) => {
    for (const listener of reloadListeners) {
      try {
        listener(phase, outcome);
      } catch (err) {
        log.error({ err }, "a reload listener failed");
      }
    }
  };

  // One reload at a time, in the order asked (a SIGHUP burst, the CLI, the Starter device's
  // UpdateServersInfo): a slow database read of an earlier one must not apply its older result after
  // a later one.
  let reloads: Promise<unknown> = Promise.resolve();
  const inTurn = <T>(job: () => Promise<T>): Promise<T> => {
    const turn = reloads.then(job);
    reloads = turn.catch(() => undefined);
    return turn;
  };
  // A request made while the same kind of reload waits its turn joins it: that one reads the file when
  // it starts, so it sees the latest.
  let waiting: { dryRun: boolean; outcome: Promise<ReloadOutcome> } | null = null;
  const reload = (dryRun: boolean): Promise<ReloadOutcome> => {
    if (waiting?.dryRun === dryRun) return waiting.outcome;
    const entry: { dryRun: boolean; outcome: Promise<ReloadOutcome> } = {
      dryRun,
      outcome: inTurn(() => {
        if (waiting === entry) waiting = null;
        return reloadNow(dryRun);
      }),
    };
    waiting = entry;
    return entry.outcome;
  };

  /** Never rejects: what goes wrong is the outcome (and logged), so a SIGHUP has nothing to lose. */
  const reloadNow = async (dryRun: boolean): Promise<ReloadOutcome> => {
    if (!dryRun) tellReload("begin");
    let outcome: ReloadOutcome;
    try {
      outcome = await reloadConfig(dryRun);
    } catch (err) {
      log.error({ err }, "reload failed; the running config stays");
      outcome = { ok: false, error: (err as Error).message, added: [], removed: [], changed: [], unchanged: [] };
    }
    if (!dryRun) tellReload("end", outcome);
    return outcome;
  };

  const reloadConfig = async (dryRun: boolean): Promise<ReloadOutcome> => {
    let loaded: ConfigWithSources;
    try {
      loaded = loadConfigWithSources(file);
    } catch (err) {
      const error = (err as Error).message;
      log.error({ file }, `reload refused; the running config stays:\n${error}`);
      return { ok: false, error, added: [], removed: [], changed: [], unchanged: [] };
    }
    const { config: next, notes } = await sources.prepare(loaded, dryRun);
    // New sockets are bound now, before anything changes; a dry run closes them again.
    let change: SocketChange;
    try {
      change = prepareSockets(engine.sockets, loaded, next.servers);
    } catch (err) {
      const error = (err as Error).message;
      log.error({ file }, `reload refused; the running config stays:\n${error}`);
      return { ok: false, error, added: [], removed: [], changed: [], unchanged: [] };
    }
    const outcome = outcomeOf(next, notes);
    if (!dryRun && !stopping) {
      loadedFile = loaded;
      commitSockets(change);
      apply(next);
    } else {
      change.abort();
    }
    return outcome;
  };

  const refreshSources = (startAdded: boolean): Promise<ReloadOutcome> =>
    inTurn(async () => {
      const { config: next, notes } = await sources.prepare(loadedFile, false);
      const outcome = outcomeOf(next, notes);
      if (!stopping) applyWithSockets(next, startAdded);
      return outcome;
    });

  const shutdown = (action: PowerAction | "exit") => {
    if (stopping) {
      log.info("shutdown already under way");
      return;
    }
    stopping = action;
    sources.close();
    engine.dispatch({ type: "shutdown", now: monotonicNow() });
  };

  installSignalHandlers((signal: HandledSignal) => {
    if (context.role === "vm") {
      const action = vmPowerAction(signal);
      if (action) return shutdown(action);
    }
    switch (signal) {
      case "SIGTERM":
      case "SIGPWR":
      case "SIGINT":
      case "SIGQUIT":
        return shutdown("exit");
      case "SIGHUP":
        // reload() never rejects; its outcome is logged.
        void reload(false);
        return;
      case "SIGUSR1":
        return logStatus(log, engine.sup);
      case "SIGUSR2":
        log.level = log.level === "debug" ? "info" : "debug";
        log.info(`log level now ${log.level}`);
        return;
      case "SIGWINCH":
        return;
    }
  });

  // ---- reexec ----------------------------------------------------------------------------------
  let reexecInfo: ReexecInfo | null = null;
  let reexecUnderWay = false;
  const reexecParts: ReexecPart[] = [{ name: "tango", capture: () => ({ data: encodeValue(sources.snapshot()), fds: [] }) }];
  const checkReexec = async (binary: string | null, force: boolean): Promise<CheckedBinary> => {
    if (stopping) throw new ReexecError("the init is shutting down", "busy");
    if (reexecUnderWay) throw new ReexecError("a reexec is under way already", "busy");
    reexecUnderWay = true;
    try {
      return await checkBinary(binary ?? process.execPath, force);
    } catch (err) {
      if (reexecInfo) reexecInfo.lastFailure = (err as Error).message;
      throw err;
    } finally {
      reexecUnderWay = false;
    }
  };
  const execReexec = async (binary: CheckedBinary, requestedAt: number): Promise<never> => {
    if (stopping) throw new ReexecError("the init is shutting down", "busy");
    if (reexecUnderWay) throw new ReexecError("a reexec is under way already", "busy");
    reexecUnderWay = true;
    try {
      return await execInit(
        {
          engine,
          configFile: file,
          source: config.source,
          startedAt: running.startedAt,
          generation: reexecInfo?.generation ?? 0,
          argv: context.argv,
          systemd: systemd as unknown as Json,
          parts: reexecParts,
          runtimeDir: path.join(runtimeDir, "starter-init"),
          log,
        },
        binary,
        requestedAt,
      );
    } catch (err) {
      reexecInfo = {
        ...(reexecInfo ?? { generation: 0, from: INIT_VERSION, to: INIT_VERSION, at: 0, execMs: 0, unreadMs: 0 }),
        lastFailure: (err as Error).message,
      };
      throw err;
    } finally {
      reexecUnderWay = false;
    }
  };

  // SIGRTMIN+1 (a shell at a VM's console: kill -35 1; docker kill --signal=SIGRTMIN+1): reexec the
  // init's own executable, as `starter-init reexec` does (a downgrade is refused, as without --force).
  catchSignals([reexecSignal()]);
  readCaughtSignals((caught) => {
    if (caught.signal !== reexecSignal()) return;
    log.info({ sender: caught.pid }, `SIGRTMIN+1: re-executing ${process.execPath}`);
    const requestedAt = Date.now();
    checkReexec(null, false)
      .then((binary) => execReexec(binary, requestedAt))
      .catch((err: unknown) => log.error(`SIGRTMIN+1: no reexec: ${(err as Error).message}`));
  });

  const running: RunningSupervisor = {
    engine,
    config: () => config,
    reload,
    onReload: (listener) => {
      reloadListeners.add(listener);
      return () => reloadListeners.delete(listener);
    },
    refreshSources,
    shutdown,
    role: context.role,
    startedAt: resume?.startedAt ?? Date.now(),
    sources: () => sources.status(),
    checkReexec,
    execReexec,
    reexecParts,
    resumed: resume,
    reexecInfo: () => reexecInfo,
  };
  if (systemd) new SystemdNotifier(systemd, log).follow(running);
  // A source that waits for servers of the file (waitFor) reads once they are ready.
  const checkSources = () => sources.check((name) => engine.sup.servers.get(name)?.state === "ready");
  engine.onEvent(checkSources);
  checkSources();
  for (const attach of attachments) {
    try {
      await attach(running, log);
    } catch (err) {
      log.error({ err }, "a supervisor attachment failed to start; going on without it");
    }
  }

  if (resume) {
    const lost = engine.adopt(resume.engine);
    const now = monotonicNow();
    reexecInfo = {
      generation: resume.generation,
      from: resume.from,
      to: INIT_VERSION,
      at: resume.requestedAt,
      execMs: Math.round((Date.now() - resume.requestedAt) * 10) / 10,
      unreadMs: Math.round((now - resume.unreadSince) * 10) / 10,
      lastFailure: null,
    };
    if (lost.length > 0) log.warn({ pids: lost }, `the exits of ${lost.length} process(es) were lost during the exec; counted as ended`);
    const message = `re-executed: ${resume.from} → ${INIT_VERSION}, ${engine.sup.servers.size} server(s) taken over; output unread for ${reexecInfo.unreadMs} ms`;
    const onConsole = consoleLine(`[  OK  ] ${message}`);
    log.info({ ...reexecInfo, readStateMs: context.resume!.readMs, ...(onConsole ? { onConsole } : {}) }, message);
  } else {
    log.info({ servers: config.servers.length, mode: config.settings.startMode, config: file }, "supervisor starting");
    engine.dispatch({ type: "boot", now: monotonicNow(), maxLevel: Number.isInteger(maxLevelWord) && maxLevelWord >= 0 ? maxLevelWord : undefined });
  }

  // postStop commands are part of the servers' stopping: done (or ended) by now.
  await engine.whenShutdownComplete();
  await endLeftovers(log, LEFTOVER_GRACE_MS);
  const action = stopping ?? "exit";
  log.info("all servers stopped");
  finish(log, context.role, 0, action === "exit" ? "poweroff" : action);
}

/**
 * The servers' cgroups, or null with one info line saying why not (servers are then tracked by their
 * process group, as always). settings.cgroup: false turns them off; a path names the directory to own.
 */
function serverCgroups(log: Logger, role: Role, config: SupervisorConfig): CgroupControl | null {
  const setting = config.settings.cgroup;
  const setup = setUpCgroups(role, setting === false ? { kind: "off" } : setting === undefined ? { kind: "auto" } : { kind: "path", path: setting });
  if (setup.ok) {
    log.info({ base: setup.control.base, controllers: setup.control.controllers }, setup.note);
    return setup.control;
  }
  const limited = config.servers.filter((spec) => Object.keys(spec.limits ?? {}).length > 0).length;
  const limits = limited > 0 ? `; the limits of ${limited} server(s) are not applied` : "";
  log.info({ why: setup.why }, `no writable cgroup v2 (${setup.why}): servers are tracked by their process group${limits}`);
  return null;
}

/** The signal that asks for a reexec: SIGRTMIN+1 (35 with glibc). */
export function reexecSignal(): number {
  return native().signalRange().min + 1;
}

function logStatus(log: Logger, sup: Supervisor): void {
  for (const server of sup.servers.values()) {
    log.info(
      {
        server: server.spec.name,
        state: server.state,
        starter: starterStateOf(server),
        pid: server.pid,
        restarts: server.restarts,
        reason: server.reason,
        pingRttMs: server.liveness?.lastRttMs ?? null,
      },
      `${server.spec.name}: ${server.state} (${starterStateOf(server)})`,
    );
  }
}

/**
 * `plan`: the start stages and the exact command of each server, without starting anything. With
 * `--source tango` the database is read first.
 */
export async function printPlan(log: Logger, invocation: Extract<Invocation, { mode: "plan" }>): Promise<number> {
  let loaded: ConfigWithSources;
  try {
    loaded = loadConfigWithSources(invocation.config);
  } catch (err) {
    reportConfigError(err);
    return EXIT_CONFIG;
  }
  const tango = loaded.tango;
  if (invocation.source !== "tango") return writePlan(log, invocation, loaded.config, null, tango !== null);
  if (!tango) {
    writeAll(2, `starter-init: ${invocation.config} has no sources.tango section to read\n`);
    return EXIT_CONFIG;
  }
  try {
    const { config, report } = tango.compose(await tango.read());
    return writePlan(log, invocation, config, report);
  } catch (err) {
    writeAll(2, `starter-init: tango source (${tango.connection.display}, host ${tango.host}): ${(err as Error).message}\n`);
    return 1;
  }
}

function writePlan(
  log: Logger,
  invocation: Extract<Invocation, { mode: "plan" }>,
  config: SupervisorConfig,
  tango: TangoReport | null,
  tangoUnread = false,
): number {
  const stages = bootPlan(config.servers, config.settings);
  const byName = new Map(config.servers.map((spec) => [spec.name, spec]));
  if (invocation.json) {
    const plan = { settings: config.settings, stages: stages.map((names) => names.map((name) => byName.get(name))), ...(tango ? { sources: { tango } } : {}) };
    writeAll(1, `${JSON.stringify(plan, null, 2)}\n`);
    return 0;
  }
  const lines: string[] = [
    `config ${invocation.config}: ${config.servers.length} server(s), ${config.settings.startMode} start, levels up to ${config.settings.maxLevel}`,
  ];
  stages.forEach((names, index) => {
    lines.push("", `stage ${index + 1}: ${names.length > 1 ? "forked together" : "alone"}`);
    for (const name of names) {
      const spec = byName.get(name)!;
      lines.push(`  ${name}  (level ${spec.level}, ready: ${describeProbe(spec)}${spec.readyOnSockets ? "; its dependents: once its sockets exist" : ""})`);
      lines.push(...describeActivation(spec));
      lines.push(`    exec ${[spec.file, ...spec.argv.slice(1)].map(shellQuote).join(" ")}`);
      const ownEnv = Object.entries(spec.env).filter(([key, value]) => process.env[key] !== value);
      for (const [key, value] of ownEnv) lines.push(`    env  ${key}=${shellQuote(value)}`);
      if (spec.cwd) lines.push(`    cwd  ${spec.cwd}`);
    }
  });
  const notStarted = config.servers.filter((spec) => !stages.some((names) => names.includes(spec.name)));
  if (notStarted.length) lines.push("", `not started at boot: ${notStarted.map((spec) => spec.name).join(", ")}`);
  if (tango) lines.push("", ...describeTangoReport(tango));
  else if (tangoUnread) lines.push("", "sources.tango: not read (plan --source tango reads the database)");
  writeAll(1, `${lines.join("\n")}\n`);
  log.debug("plan printed");
  return 0;
}

/** `plan`'s lines for socket activation: how it starts, and each socket with the fd the server gets it as. */
function describeActivation(spec: SupervisorConfig["servers"][number]): string[] {
  const lines: string[] = [];
  if (spec.activation === "lazy")
    lines.push(`    lazy: listens; the first connection starts it${spec.idleStopMs ? `, stopped after ${spec.idleStopMs} ms without one` : ""}`);
  if (spec.activation === "accept") lines.push(`    accept: one instance per connection (on fds 0 and 1), ${spec.maxInstances} at most at once`);
  (spec.sockets ?? []).forEach((socket, index) => {
    const options = [
      `name ${socket.name}`,
      socket.kind === "udp" || socket.kind === "unix-dgram" ? null : `backlog ${socket.backlog}`,
      socket.mode === null ? null : `mode 0${socket.mode.toString(8)}`,
      socket.uid === null && socket.gid === null ? null : `owner ${socket.uid ?? "-"}:${socket.gid ?? "-"}`,
      socket.reusePort ? "reusePort" : null,
    ].filter((option) => option !== null);
    lines.push(`    fd ${3 + index} ${socket.listen}  (${options.join(", ")})`);
  });
  return lines;
}

function describeProbe(spec: SupervisorConfig["servers"][number]): string {
  const probe = spec.readiness;
  switch (probe.kind) {
    case "log":
      return `log ${probe.regex ? `/${probe.pattern}/` : JSON.stringify(probe.pattern)}`;
    case "notify":
      return `newline on fd ${probe.fd}`;
    case "tcp":
      return `tcp ${probe.host}:${probe.port}`;
    case "file":
      return `file ${probe.path}`;
    case "exec":
      return `exec ${probe.argv.join(" ")}`;
    default:
      return probe.kind;
  }
}

function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`;
}
