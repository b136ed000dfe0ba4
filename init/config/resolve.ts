// From validated sections to the supervisor's data model: defaults applied, environment merged,
// binaries found on the search path, users and groups looked up, and the checks that need the whole
// file (duplicate names, unknown dependencies, dependency cycles). Problems are returned with their
// field paths; the loader places them in the file.

import { constants } from "node:os";
import { DEFAULT_SOCKET } from "../control/protocol";
import { findCycles, type GraphNode } from "../core/graph";
import type { LivenessSpec, LogSettings, ReadinessProbe, RestartPolicy, ServerSpec, Settings, SupervisorConfig } from "../core/types";
import type { FieldPath, FieldProblem } from "./errors";
import type { ServerInput, SettingsInput } from "./schema";
import { STANDARD_PATH } from "../process/spawn";
import { closestWord } from "./values";
import { checkSharedAddresses, resolveActivation, type ReadinessInput } from "./sockets";

/** What resolution reads from the system; injectable so tests need no real files. */
export interface ResolveDeps {
  /** Whether a path names an executable regular file. */
  executableStatus(path: string): "executable" | "not-executable" | "missing";
  /** Text of /etc/passwd; read only when a user is given by name or needs its group. */
  readPasswd(): string;
  /** Text of /etc/group; read only when a group is given by name. */
  readGroup(): string;
  /** The init's own environment, inherited by every server (less NODE_* variables). */
  env: Readonly<Record<string, string | undefined>>;
}

/** One entry of `servers`: its raw name (for the checks across entries) and, when valid, its parsed form. */
export interface ServerEntry {
  index: number;
  rawName: string | undefined;
  input: ServerInput | undefined;
}

const defaultRestart: RestartPolicy = {
  mode: "on-failure",
  initialDelayMs: 500,
  factor: 2,
  maxDelayMs: 30_000,
  burstCount: 5,
  burstWindowMs: 60_000,
  resetAfterMs: 60_000,
  minUptimeForRestartMs: 0,
};

const defaultLog: Omit<LogSettings, "file"> = { maxBytes: 10 * 1024 * 1024, keep: 3, console: true, maxLineBytes: 16 * 1024 };

/** Tango device servers print this line once they serve requests. */
const tangoReadiness: ReadinessProbe = { kind: "log", pattern: "Ready to accept request", regex: false, stream: "both" };
const plainReadiness: ReadinessProbe = { kind: "none" };

/** The Starter's ping thread: every 2 s; a ping has 1 s to be answered; two failures in a row are MOVING. */
export const defaultLiveness: Omit<LivenessSpec, "target"> = { intervalMs: 2000, timeoutMs: 1000, failures: 2, onUnresponsive: "report" };

/**
 * Under every other environment layer: PyTango servers hold their ready line in a pipe buffer until
 * exit without PYTHONUNBUFFERED; PATH is what execvp assumes when a kernel-started init has none.
 */
const baseEnvironment: Record<string, string> = { PYTHONUNBUFFERED: "1", PATH: STANDARD_PATH };

/** Built-in values for everything the file leaves out. */
const builtinDefaults = {
  controlSocket: DEFAULT_SOCKET,
  /** Fits inside `docker stop`'s default 10 s grace period. */
  shutdownTimeoutMs: 9000,
  /** Parallel mode forks a level back to back; sequential mode reproduces the Starter's pauses. */
  waits: {
    parallel: { interServerWaitMs: 0, interLevelWaitMs: 0 },
    sequential: { interServerWaitMs: 500, interLevelWaitMs: 1000 },
  },
  level: 1,
  startTimeoutMs: 30_000,
  stopTimeoutMs: 5000,
  stopSignal: constants.signals.SIGTERM,
  autostart: true,
  restart: defaultRestart,
  log: defaultLog,
  tangoReadiness,
  plainReadiness,
  env: baseEnvironment,
};

/** Each key of `base`, taken from the first layer that defines it. */
function layered<T extends object>(base: T, ...layers: (Partial<T> | undefined)[]): T {
  const result = { ...base };
  for (const key of Object.keys(base) as (keyof T)[]) {
    for (const layer of layers) {
      if (layer?.[key] !== undefined) {
        result[key] = layer[key] as T[keyof T];
        break;
      }
    }
  }
  return result;
}

/** Environment layers merged in order; a null value removes the variable. */
export function mergeEnvironment(...layers: Readonly<Record<string, string | null | undefined>>[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const layer of layers) {
    for (const [name, value] of Object.entries(layer)) {
      if (value === null) delete env[name];
      else if (value !== undefined) env[name] = value;
    }
  }
  return env;
}

/** The init's environment as servers inherit it: NODE_* variables steer the init's own Node, not them. */
function inheritedEnvironment(env: ResolveDeps["env"]): Record<string, string | undefined> {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith("NODE_")));
}

export interface AccountEntry {
  name: string;
  id: number;
  groupId: number;
}

/** Lines "name:x:id:…" of /etc/passwd or /etc/group; groupId (the 4th field) means something in /etc/passwd only. */
export function parseAccounts(text: string): AccountEntry[] {
  return text.split("\n").flatMap((line) => {
    const fields = line.split(":");
    const id = Number(fields[2]);
    return fields.length >= 3 && fields[2] !== "" && Number.isInteger(id) ? [{ name: fields[0], id, groupId: Number(fields[3]) }] : [];
  });
}

/** Splits "Server/instance"; a plain name has no instance. */
function splitServerName(name: string): { server: string; instance: string | undefined } {
  const slash = name.indexOf("/");
  return slash < 0 ? { server: name, instance: undefined } : { server: name.slice(0, slash), instance: name.slice(slash + 1) };
}

/**
 * Resolves the validated sections into a SupervisorConfig. `settings` is undefined when the settings
 * section itself had errors; then only the checks that need no settings run, and the result is not used.
 */
export function resolveConfig(
  settings: SettingsInput | undefined,
  entries: readonly ServerEntry[],
  source: string,
  deps: ResolveDeps,
): { config: SupervisorConfig; problems: FieldProblem[] } {
  const problems: FieldProblem[] = [
    ...checkServerGraph(entries),
    ...checkSharedAddresses(entries.flatMap(({ index, input }) => (input?.sockets ? [{ index, sockets: input.sockets }] : []))),
  ];
  const servers: ServerSpec[] = [];
  if (settings) {
    const resolver = new ServerResolver(settings, deps, problems);
    for (const entry of entries) if (entry.input) servers.push(resolver.resolve(entry.input, ["servers", entry.index]));
  }
  const startMode = settings?.startMode ?? "parallel";
  const resolvedSettings: Settings = {
    startMode,
    interServerWaitMs: settings?.interServerWaitMs ?? builtinDefaults.waits[startMode].interServerWaitMs,
    interLevelWaitMs: settings?.interLevelWaitMs ?? builtinDefaults.waits[startMode].interLevelWaitMs,
    // Without an explicit maxLevel every configured level is started at boot.
    maxLevel: settings?.maxLevel?.value ?? Math.max(1, ...servers.map((server) => server.level)),
    shutdownTimeoutMs: settings?.shutdownTimeoutMs ?? builtinDefaults.shutdownTimeoutMs,
    controlSocket: settings?.controlSocket ?? builtinDefaults.controlSocket,
    logHome: settings?.logHome ?? null,
    ...(settings?.http ? { http: settings.http } : {}),
    ...(settings?.cgroup !== undefined ? { cgroup: settings.cgroup } : {}),
  };
  return { config: { settings: resolvedSettings, servers, source }, problems };
}

/** Resolves one server at a time against the settings, collecting problems. */
class ServerResolver {
  private passwd: AccountEntry[] | undefined;
  private groups: AccountEntry[] | undefined;
  private readonly globalEnv: Record<string, string>;

  constructor(
    private readonly settings: SettingsInput,
    private readonly deps: ResolveDeps,
    private readonly problems: FieldProblem[],
  ) {
    this.globalEnv = mergeEnvironment(builtinDefaults.env, inheritedEnvironment(deps.env), settings.env);
  }

  resolve(input: ServerInput, at: FieldPath): ServerSpec {
    const defaults = this.settings.defaults;
    const { server, instance } = splitServerName(input.name);
    const env = mergeEnvironment(this.globalEnv, input.env ?? {});
    const file = this.findBinary(input.binary ?? server, input.binary === undefined, at);
    const commandDirs = [...this.searchDirs(), ...(env.PATH ?? "").split(":").filter((dir) => dir.startsWith("/"))];
    const readinessInput: ReadinessInput =
      input.readiness ?? defaults.readiness ?? (instance === undefined ? builtinDefaults.plainReadiness : builtinDefaults.tangoReadiness);
    const activation = resolveActivation(
      input,
      {
        serverName: input.name,
        readiness: readinessInput,
        readinessGiven: input.readiness !== undefined,
        findUser: (value) => this.findId(value, "passwd"),
        findGroup: (value) => this.findId(value, "group"),
      },
      at,
      this.problems,
    );
    // `socket:` steers the dependents (readyOnSockets), not the probe; accept mode has no probe at all.
    const { socket: _socket, ...probe } = readinessInput;
    const readiness: ReadinessProbe = activation.activation === "accept" ? { kind: "none" } : probe;
    const { uid, gid } = this.findAccount(input.user, input.group, at);
    const startTimeoutMs = input.startTimeout ?? defaults.startTimeoutMs ?? builtinDefaults.startTimeoutMs;
    const stopTimeoutMs = input.stopTimeout ?? defaults.stopTimeoutMs ?? builtinDefaults.stopTimeoutMs;
    const log = layered(builtinDefaults.log, input.log, defaults.log);
    const logFile =
      input.log?.file !== undefined
        ? input.log.file
        : this.settings.logHome !== undefined
          ? `${this.settings.logHome}/ds.log/${instance === undefined ? server : `${server}_${instance}`}.log`
          : null;
    return {
      name: input.name,
      file,
      argv: [file, ...(instance === undefined ? [] : [instance]), ...(input.args ?? [])],
      env,
      cwd: input.cwd ?? null,
      uid,
      gid,
      umask: input.umask ?? null,
      rlimits: input.rlimits ?? [],
      level: input.level ?? builtinDefaults.level,
      requires: input.requires ?? [],
      after: input.after ?? [],
      exclusive: input.exclusive ?? false,
      readiness: readiness.kind === "exec" ? { ...readiness, argv: this.findCommand(readiness.argv, commandDirs, [...at, "readiness"]) } : readiness,
      liveness: this.liveness(input, readiness, { instance, env }, at),
      startTimeoutMs,
      restart: layered(builtinDefaults.restart, input.restart, defaults.restart),
      stopSignal: input.stopSignal ?? defaults.stopSignal ?? builtinDefaults.stopSignal,
      stopTimeoutMs,
      preStart: input.preStart ? this.findCommand(input.preStart, commandDirs, [...at, "preStart"]) : null,
      postStop: input.postStop ? this.findCommand(input.postStop, commandDirs, [...at, "postStop"]) : null,
      // A hook gets what its phase gets by default: preStart the start timeout, postStop the stop timeout.
      preStartTimeoutMs: input.preStartTimeout ?? defaults.preStartTimeoutMs ?? startTimeoutMs,
      postStopTimeoutMs: input.postStopTimeout ?? defaults.postStopTimeoutMs ?? stopTimeoutMs,
      failsafeMs: input.failsafe ?? null,
      log: { ...log, file: logFile },
      autostart: input.autostart ?? defaults.autostart ?? builtinDefaults.autostart,
      ...activation,
      ...this.processFields(input, at),
    };
  }

  /** A socket owner or group by name or id (config/sockets.ts); null when not found. */
  private findId(value: string | number, table: "passwd" | "group"): number | null {
    const id = asId(value);
    if (id !== undefined) return id;
    const entries = table === "passwd" ? (this.passwd ??= parseAccounts(this.deps.readPasswd())) : (this.groups ??= parseAccounts(this.deps.readGroup()));
    return entries.find((entry) => entry.name === value)?.id ?? null;
  }

  /**
   * type, pidFile, watchdog and cgroup limits: only what differs from a plain server is set, so a spec
   * without them reads (and compares, at a reload) as it always did.
   */
  private processFields(input: ServerInput, at: FieldPath): Pick<ServerSpec, "type" | "pidFile" | "watchdogMs" | "limits"> {
    const defaults = this.settings.defaults;
    const fields: Pick<ServerSpec, "type" | "pidFile" | "watchdogMs" | "limits"> = {};
    if (input.type === "forking") fields.type = "forking";
    if (input.pidFile !== undefined) {
      if (input.type === "forking") fields.pidFile = input.pidFile;
      else this.problems.push({ path: [...at, "pidFile"], message: "pidFile applies to type: forking (a daemon's pid file)" });
    }
    const watchdogMs = input.watchdog !== undefined ? input.watchdog : defaults.watchdogMs;
    if (watchdogMs != null) fields.watchdogMs = watchdogMs;
    const limits = { ...defaults.limits, ...input.limits };
    if (Object.keys(limits).length > 0) fields.limits = limits;
    return fields;
  }

  /**
   * The liveness check: on by default for servers whose readiness is `tango` (their admin device is
   * known to answer ping), off for others unless their own `liveness` turns it on. It pings where
   * the tango probe does; without one, through the database of the server's TANGO_HOST.
   */
  private liveness(
    input: ServerInput,
    readiness: ReadinessProbe,
    server: { instance: string | undefined; env: Record<string, string> },
    at: FieldPath,
  ): LivenessSpec | null {
    if (readiness.kind === "tango") this.checkTangoTarget(readiness.target.via === "database", server, [...at, "readiness"], "readiness tango");
    const own = input.liveness;
    const fromDefaults = this.settings.defaults.liveness;
    if (own === null || (own === undefined && (fromDefaults === null || readiness.kind !== "tango"))) return null;
    const spec = layered<Omit<LivenessSpec, "target">>(defaultLiveness, own, fromDefaults ?? undefined);
    if (readiness.kind === "tango") return { ...spec, target: readiness.target };
    this.checkTangoTarget(true, server, [...at, "liveness"], "liveness");
    return { ...spec, target: { via: "database" } };
  }

  /** A check of dserver/<Server>/<instance> needs a Tango name, and through the database a TANGO_HOST. */
  private checkTangoTarget(viaDatabase: boolean, server: { instance: string | undefined; env: Record<string, string> }, at: FieldPath, what: string): void {
    if (server.instance === undefined) {
      this.problems.push({ path: at, message: `${what} pings the admin device dserver/<Server>/<instance>: the server's name must be Server/instance` });
    } else if (viaDatabase && !server.env.TANGO_HOST) {
      this.problems.push({
        path: at,
        message: `${what} finds the admin device through the Tango database, but the server has no TANGO_HOST (settings.env, its env or the init's environment); or give the endpoint: tango:[host:]port`,
      });
    }
  }

  /** Where servers are looked up: searchPath (StartDsPath), else the init's PATH. */
  private searchDirs(): string[] {
    return this.settings.searchPath ?? (this.deps.env.PATH ?? STANDARD_PATH).split(":").filter((dir) => dir.startsWith("/"));
  }

  /** An absolute binary is checked as it is; a bare name is looked up in the search directories. */
  private findBinary(binary: string, fromName: boolean, at: FieldPath): string {
    const found = this.lookUp(binary, this.searchDirs());
    if (found.ok) return found.path;
    // A binary taken from the name is reported at the name: there is no binary key to point at.
    this.problems.push({ path: [...at, fromName ? "name" : "binary"], message: found.message });
    return binary;
  }

  /** Helper commands (preStart, postStop, exec probes) are ordinary tools: searchPath, then the server's PATH. */
  private findCommand(argv: string[], dirs: string[], at: FieldPath): string[] {
    const [program, ...rest] = argv;
    if (!program.startsWith("/") && program.includes("/")) {
      this.problems.push({ path: at, message: `expected an absolute path or a bare name as the command, got ${JSON.stringify(program)}` });
      return argv;
    }
    const found = this.lookUp(program, [...new Set(dirs)]);
    if (found.ok) return [found.path, ...rest];
    this.problems.push({ path: at, message: found.message });
    return argv;
  }

  private lookUp(program: string, dirs: string[]): { ok: true; path: string } | { ok: false; message: string } {
    if (program.startsWith("/")) {
      const status = this.deps.executableStatus(program);
      if (status === "executable") return { ok: true, path: program };
      return { ok: false, message: status === "missing" ? `${program} does not exist` : `${program} is not executable` };
    }
    let notExecutable: string | undefined;
    for (const dir of dirs) {
      const path = `${dir.replace(/\/+$/, "")}/${program}`;
      const status = this.deps.executableStatus(path);
      if (status === "executable") return { ok: true, path };
      if (status === "not-executable") notExecutable ??= path;
    }
    if (notExecutable) return { ok: false, message: `${notExecutable} is not executable (found looking up ${program} in ${dirs.join(":")})` };
    return { ok: false, message: `${program} not found in ${dirs.length > 0 ? dirs.join(":") : "an empty search path"}` };
  }

  /**
   * uid and gid from names or numbers. A user without a group takes its primary group from /etc/passwd;
   * when it has no entry there the group must be given, or the server would keep the init's group (root).
   */
  private findAccount(user: string | number | undefined, group: string | number | undefined, at: FieldPath): { uid: number | null; gid: number | null } {
    let uid: number | null = null;
    let gid: number | null = null;
    if (group !== undefined) {
      const groupId = asId(group);
      const entry = groupId === undefined ? (this.groups ??= parseAccounts(this.deps.readGroup())).find((g) => g.name === group) : undefined;
      if (groupId !== undefined) gid = groupId;
      else if (entry) gid = entry.id;
      else this.problems.push({ path: [...at, "group"], message: `group ${JSON.stringify(group)} not found in /etc/group` });
    }
    if (user !== undefined) {
      const userId = asId(user);
      const passwd = (this.passwd ??= parseAccounts(this.deps.readPasswd()));
      const entry = userId === undefined ? passwd.find((u) => u.name === user) : passwd.find((u) => u.id === userId);
      if (userId === undefined && !entry) {
        this.problems.push({ path: [...at, "user"], message: `user ${JSON.stringify(user)} not found in /etc/passwd` });
      } else {
        uid = userId ?? entry!.id;
        if (group === undefined) {
          if (entry && Number.isInteger(entry.groupId)) gid = entry.groupId;
          else this.problems.push({ path: [...at, "user"], message: `user ${uid} has no entry in /etc/passwd to take its group from; give group too` });
        }
      }
    }
    return { uid, gid };
  }
}

/** 1000 or "1000" → 1000; a name → undefined. */
export function asId(value: string | number): number | undefined {
  if (typeof value === "number") return value;
  return /^\d+$/.test(value) ? Number(value) : undefined;
}

/** Duplicate names, dependencies on unknown servers, dependency cycles. */
function checkServerGraph(entries: readonly ServerEntry[]): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const firstIndexOf = new Map<string, number>();
  for (const { index, rawName } of entries) {
    if (rawName === undefined) continue;
    const first = firstIndexOf.get(rawName);
    if (first === undefined) firstIndexOf.set(rawName, index);
    else problems.push({ path: ["servers", index, "name"], message: `duplicate name ${JSON.stringify(rawName)}: servers[${first}] has it already` });
  }
  const knownNames = [...firstIndexOf.keys()];
  const dependencies = new Map<string, { target: string; path: FieldPath }[]>();
  const graphNodes: GraphNode[] = [];
  for (const { index, input } of entries) {
    if (!input || firstIndexOf.get(input.name) !== index) continue;
    graphNodes.push({
      name: input.name,
      level: input.level ?? builtinDefaults.level,
      requires: input.requires ?? [],
      after: input.after ?? [],
      exclusive: input.exclusive ?? false,
      autostart: input.autostart ?? builtinDefaults.autostart,
    });
    const edges: { target: string; path: FieldPath }[] = [];
    for (const field of ["requires", "after"] as const) {
      (input[field] ?? []).forEach((target, position) => {
        const path = ["servers", index, field, position];
        if (firstIndexOf.has(target)) {
          edges.push({ target, path });
        } else {
          const suggestion = closestWord(target, knownNames);
          problems.push({ path, message: `unknown server ${JSON.stringify(target)}${suggestion ? `; did you mean ${JSON.stringify(suggestion)}?` : ""}` });
        }
      });
    }
    dependencies.set(input.name, edges);
  }
  // core/graph finds the cycles; each is reported at the dependency that leaves its first server.
  for (const cycle of findCycles(graphNodes)) {
    const edge = dependencies.get(cycle[0])!.find((candidate) => candidate.target === cycle[1])!;
    problems.push({ path: edge.path, message: `dependency cycle: ${cycle.join(" → ")}` });
  }
  return problems;
}
