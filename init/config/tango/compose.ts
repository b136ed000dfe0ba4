// From what the Tango database says about this host to servers and settings of the supervisor, on top
// of the configuration file.
//
// Servers: every server of DbGetHostServersInfo is known. A controlled one (mode 1) with a level ≥ 1
// starts at boot at that level (plus `levelOffset`); a level-0 or not controlled one is known but not
// started (level 0), as in the Starter — `start` still starts it by hand. Entries of
// `sources.tango.servers` whose name (or glob) matches are merged over it, in file order. A server the
// file's own `servers:` list also names is the file's: the database entry is left out.
//
// Per server (the Starter's args-forward): the property `<Server>_<instance>` of the Starter device
// (the server's name with "/" made "_", compared without regard to case, as Tango names are) holds
// arguments appended to the server's argv, one value each; `<Server>_<instance>_env` holds
// `NAME=value` lines added to its environment (under what the file sets for it). A database server
// reads the database at the source's TANGO_HOST unless its environment says otherwise, and its
// readiness is `tango` (its admin device answers ping) unless the file chooses another.
//
// Settings: the Starter's properties of `tango/admin/<host>` (StartDsPath, InterStartupLevelWait, …),
// over those of the class Starter, are a layer under the file's `settings`: a property applies unless the file sets it (or its native
// equivalent). Properties that set per-server defaults (StartDsPath, ServerStartupTimeout,
// AutoRestartDuration, KeepLogFiles, LogFileHome, StartServersAtStartup) apply to the servers of the
// database only, so the file's own servers are the same whether the database answers or not. The
// global ones (InterStartupLevelWait, InterStartupServerWait, EnableParallelStartup) apply to the
// supervisor. NbStartupLevels: database levels above it are not started.
//
// Problems with one database server (a binary not found, a bad override) are warnings for the source's
// status, never errors of the file: the rest runs.

import type { ServerSpec, SupervisorConfig } from "../../core/types";
import { formatFieldPath } from "../errors";
import { mergeEnvironment, resolveConfig, type ResolveDeps, type ServerEntry } from "../resolve";
import { hasPath, issueMessage, settingsSchema, starterProperties, type ServerInput, type SettingsInput } from "../schema";
import type { HostServer, TangoSnapshot } from "./read";
import { overrideSchema, type TangoSourceSettings } from "./schema";
import { probeDefaults } from "../values";

/** Starter properties that have no equivalent here (known, so they are not reported as unknown). */
const unusedProperties = new Set(["WaitForDriverStartup", "MovingMaxDuration", "UseEvents", "StartingTime", "ServerStartupTimeoutDefault"]);
/** Class properties every Starter class has in a Tango database (access control), nothing for us. */
const tangoClassProperties = new Set(["AllowedAccessCmd"]);

/** A per-server property of the Starter device: its name as stored, and its values. */
export interface ForwardedProperty {
  property: string;
  values: string[];
}

export interface TangoServerReport {
  name: string;
  /** As the database gave them (" " when the server has no row in the `server` table). */
  mode: string;
  level: string;
  controlled: boolean;
  /** Level it has here; 0: known but not started at boot. */
  startLevel: number;
  /** Why it is not started, or where it came from, for a person. */
  note: string | null;
  /** Left out (a problem, or the file defines it). */
  skipped: boolean;
  /** Arguments from the property <Server>_<instance> (args-forward), appended to argv. */
  args: ForwardedProperty | null;
  /** Environment from the property <Server>_<instance>_env (NAME=value lines). */
  env: ForwardedProperty | null;
}

export interface TangoReport {
  host: string;
  starterDevice: string;
  database: string;
  readAt: number;
  servers: TangoServerReport[];
  /** Starter properties applied, with their values. */
  applied: Record<string, string[]>;
  /** Starter properties the file's settings override. */
  shadowed: string[];
  /** Properties not used, and why. */
  ignored: { name: string; why: string }[];
  warnings: string[];
}

/** The database's servers started at boot (controlled, level ≥ 1, not left out by an override). */
export function bootServers(report: TangoReport): TangoServerReport[] {
  return report.servers.filter((s) => !s.skipped && s.startLevel > 0);
}

export interface ComposeInput {
  source: TangoSourceSettings;
  /** The TANGO_HOST the source read: the database servers' own unless their environment names one. */
  tangoHost: string;
  /** The file's `settings` mapping as written (before the schema). */
  rawSettings: unknown;
  /** The file's servers, validated. */
  entries: readonly ServerEntry[];
  /** The configuration of the file alone. */
  fileConfig: SupervisorConfig;
  fileName: string;
  deps: ResolveDeps;
}

/** `*` matches any run of characters, `?` one: "TangoTest/*", "*\/t0?". */
export function globMatches(pattern: string, name: string): boolean {
  if (!/[*?]/.test(pattern)) return pattern === name;
  const source = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${source}$`).test(name);
}

/** A property's strings as the YAML value the Starter key takes. */
function propertyValue(name: string, values: string[]): unknown {
  if (name === "StartDsPath")
    return values
      .flatMap((value) => value.split(":"))
      .map((dir) => dir.trim())
      .filter(Boolean);
  const text = (values[0] ?? "").trim();
  if (/^(true|false)$/i.test(text)) return text.toLowerCase() === "true";
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  return text;
}

/** "TangoTest/t1" → "tangotest_t1": the name of its args-forward property, compared in lower case. */
function forwardName(server: string): string {
  return server.replace("/", "_").toLowerCase();
}

/**
 * The per-server properties among the Starter device's: `<Server>_<instance>` (arguments) and
 * `<Server>_<instance>_env` (environment), for the servers of the host. A name that could be both
 * (a server "A/b_env" beside a server "A/b") is the arguments of the first and a warning.
 */
function forwardedProperties(
  properties: Record<string, string[]>,
  servers: readonly HostServer[],
  report: TangoReport,
): { byServer: Map<string, { args?: ForwardedProperty; env?: ForwardedProperty }>; used: Set<string> } {
  const serverOf = new Map(servers.map((server) => [forwardName(server.name), server.name]));
  const byServer = new Map<string, { args?: ForwardedProperty; env?: ForwardedProperty }>();
  const used = new Set<string>();
  const entry = (server: string) => {
    let found = byServer.get(server);
    if (!found) byServer.set(server, (found = {}));
    return found;
  };
  for (const [property, values] of Object.entries(properties)) {
    const lower = property.toLowerCase();
    const argsOf = serverOf.get(lower);
    const envOf = lower.endsWith("_env") ? serverOf.get(lower.slice(0, -4)) : undefined;
    if (argsOf !== undefined) {
      entry(argsOf).args = { property, values };
      used.add(property);
      if (envOf !== undefined) report.warnings.push(`property ${property}: the arguments of ${argsOf}, not the environment of ${envOf}`);
    } else if (envOf !== undefined) {
      entry(envOf).env = { property, values };
      used.add(property);
    }
  }
  return { byServer, used };
}

/** NAME=value lines of an environment property; a line that is not one is a warning. */
function environmentLines(forwarded: ForwardedProperty, server: string, report: TangoReport): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of forwarded.values) {
    if (line.trim() === "") continue;
    const equals = line.indexOf("=");
    const name = equals > 0 ? line.slice(0, equals).trim() : "";
    if (name === "" || /[\s\0]/.test(name)) {
      report.warnings.push(`${server}: property ${forwarded.property}: ${JSON.stringify(line)} is not NAME=value; left out`);
      continue;
    }
    env[name] = line.slice(equals + 1);
  }
  return env;
}

/** Starter properties → raw settings (a layer under the file's), with what was shadowed or refused. */
function starterLayer(
  properties: Record<string, string[]>,
  rawSettings: unknown,
  report: TangoReport,
): { layer: Record<string, unknown>; nbStartupLevels: number | undefined } {
  const layer: Record<string, unknown> = {};
  let nbStartupLevels: number | undefined;
  for (const [name, values] of Object.entries(properties)) {
    const known = starterProperties.find((entry) => entry.starter === name);
    if (!known) {
      report.ignored.push({ name, why: unusedProperties.has(name) ? "no equivalent in starter-init" : "not a Starter property starter-init knows" });
      continue;
    }
    if (hasPath(rawSettings, [known.starter]) || hasPath(rawSettings, known.native)) {
      report.shadowed.push(name);
      continue;
    }
    const value = propertyValue(name, values);
    const parsed = settingsSchema.safeParse({ [name]: value }, { error: issueMessage, reportInput: true });
    if (!parsed.success) {
      report.ignored.push({ name, why: `${JSON.stringify(values.join(","))}: ${parsed.error.issues[0]?.message ?? "not valid"}` });
      continue;
    }
    report.applied[name] = values;
    if (name === "NbStartupLevels") nbStartupLevels = value as number;
    else layer[name] = value;
  }
  return { layer, nbStartupLevels };
}

/** Fields of an override that it sets (its name is a pattern, not the server's name). */
function setFields(override: ServerInput): Partial<ServerInput> {
  return Object.fromEntries(Object.entries(override).filter(([key, value]) => key !== "name" && value !== undefined));
}

/** The database's servers (and settings) on top of the file's configuration. */
export function composeTango(input: ComposeInput, snapshot: TangoSnapshot): { config: SupervisorConfig; report: TangoReport } {
  const report: TangoReport = {
    host: snapshot.host,
    starterDevice: snapshot.starterDevice,
    database: snapshot.database,
    readAt: snapshot.readAt,
    servers: [],
    applied: {},
    shadowed: [],
    ignored: [],
    warnings: [],
  };
  const { source } = input;
  const forwarded = forwardedProperties(snapshot.properties, snapshot.servers, report);
  // Tango's property inheritance: the device's own over its class's.
  const classProperties = Object.fromEntries(Object.entries(snapshot.classProperties ?? {}).filter(([name]) => !tangoClassProperties.has(name)));
  const starterProperties = Object.fromEntries(Object.entries({ ...classProperties, ...snapshot.properties }).filter(([name]) => !forwarded.used.has(name)));
  const { layer, nbStartupLevels } = starterLayer(starterProperties, input.rawSettings, report);

  // The file's settings over the Starter's: what the database servers are resolved with.
  const fileSettings = (input.rawSettings ?? {}) as Record<string, unknown>;
  const merged = settingsSchema.safeParse({ ...layer, ...fileSettings }, { error: issueMessage, reportInput: true });
  let settings: SettingsInput | undefined = merged.success ? merged.data : undefined;
  if (!settings) {
    report.warnings.push(`the Starter properties do not combine with the file's settings (${merged.error?.issues[0]?.message}); ignoring them`);
    const fileOnly = settingsSchema.safeParse(fileSettings, { error: issueMessage });
    settings = fileOnly.success ? fileOnly.data : undefined;
    report.applied = {};
  }
  if (!settings) return { config: input.fileConfig, report };

  const fileNames = new Set(input.fileConfig.servers.map((spec) => spec.name));
  const dbEntries: ServerEntry[] = [];
  const reports = new Map<number, TangoServerReport>();
  // The servers' environment already names a database (the init's, or settings.env): theirs stands.
  const inheritedTangoHost = mergeEnvironment(input.deps.env, settings.env).TANGO_HOST;
  const defaults: { readiness: boolean; env: Record<string, string> } = {
    readiness: settings.defaults.readiness === undefined,
    env: inheritedTangoHost === undefined ? { TANGO_HOST: input.tangoHost } : {},
  };
  // As with the Starter, a crashed server of the database is restarted only when AutoRestartDuration
  // (a minimum uptime) is above 0, unless the file sets a restart mode (in defaults or an override).
  const restart = settings.defaults.restart;
  const noRestart = restart?.mode === undefined && !((restart?.minUptimeForRestartMs ?? 0) > 0);
  for (const server of snapshot.servers) {
    const properties = forwarded.byServer.get(server.name) ?? {};
    const env = properties.env ? environmentLines(properties.env, server.name, report) : {};
    const entry = serverEntry(server, {
      fileNames,
      nbStartupLevels,
      source,
      noRestart,
      index: input.entries.length + dbEntries.length,
      forwarded: properties,
      env: { ...defaults.env, ...env },
      tangoReadiness: defaults.readiness,
    });
    report.servers.push(entry.report);
    if (!entry.input) continue;
    reports.set(entry.index, entry.report);
    dbEntries.push({ index: entry.index, rawName: server.name, input: entry.input });
  }

  const { config, problems } = resolveConfig(settings, [...input.entries, ...dbEntries], input.fileName, input.deps);
  for (const problem of problems) {
    const index = problem.path[1];
    if (problem.path[0] !== "servers" || typeof index !== "number" || !reports.has(index)) continue;
    const server = reports.get(index)!;
    const field = formatFieldPath(problem.path.slice(2));
    const text = `${field && field !== "name" ? `${field}: ` : ""}${problem.message}`;
    // A server that does not start at boot only needs it when started by hand: a note, not a warning.
    if (server.startLevel > 0) report.warnings.push(`${server.name}: ${text}`);
    else server.note = server.note ? `${server.note}; ${text}` : text;
  }
  const dbNames = new Set(dbEntries.map((entry) => entry.rawName));
  const dbSpecs: ServerSpec[] = config.servers.filter((spec) => dbNames.has(spec.name));
  for (const spec of dbSpecs) {
    const entry = report.servers.find((server) => server.name === spec.name);
    if (entry && !spec.autostart && entry.startLevel > 0) {
      entry.startLevel = 0;
      entry.note = "not started at boot (StartServersAtStartup or autostart is false)";
    }
  }
  const servers = [...input.fileConfig.servers, ...dbSpecs];
  return {
    config: {
      settings: {
        ...config.settings,
        // The file's servers were resolved against the file's settings: keep what only they decide.
        controlSocket: input.fileConfig.settings.controlSocket,
        shutdownTimeoutMs: input.fileConfig.settings.shutdownTimeoutMs,
        maxLevel: settings.maxLevel?.value ?? Math.max(1, ...servers.map((spec) => spec.level)),
      },
      servers,
      source: input.fileConfig.source,
    },
    report,
  };
}

function serverEntry(
  server: HostServer,
  context: {
    fileNames: Set<string>;
    nbStartupLevels: number | undefined;
    source: TangoSourceSettings;
    /** No restart after a crash (AutoRestartDuration 0 or unset, no restart mode in the file). */
    noRestart: boolean;
    index: number;
    forwarded: { args?: ForwardedProperty; env?: ForwardedProperty };
    /** Environment from the database (TANGO_HOST, the _env property): under the file's. */
    env: Record<string, string>;
    /** No readiness in the file's defaults: a database server's is `tango`. */
    tangoReadiness: boolean;
  },
): { index: number; input: ServerInput | undefined; report: TangoServerReport } {
  const mode = Number.parseInt(server.mode.trim(), 10);
  const level = Number.parseInt(server.level.trim(), 10);
  const controlled = mode === 1;
  const report: TangoServerReport = {
    name: server.name,
    mode: server.mode,
    level: server.level,
    controlled,
    startLevel: 0,
    note: null,
    skipped: false,
    args: context.forwarded.args ?? null,
    env: context.forwarded.env ?? null,
  };
  if (context.fileNames.has(server.name)) {
    report.skipped = true;
    report.note = "defined in the config file: the file's entry is used";
    return { index: context.index, input: undefined, report };
  }
  const named = overrideSchema.safeParse({ name: server.name }, { error: issueMessage, reportInput: true });
  if (!named.success) {
    report.skipped = true;
    report.note = `left out: ${named.error.issues[0]?.message ?? "not a server name"}`;
    return { index: context.index, input: undefined, report };
  }
  let startLevel = 0;
  if (!controlled) report.note = "not controlled (mode 0): known, not started";
  else if (!(level >= 1)) report.note = "level 0: known, not started";
  else if (context.nbStartupLevels !== undefined && level > context.nbStartupLevels)
    report.note = `level ${level} above NbStartupLevels (${context.nbStartupLevels}): not started`;
  else startLevel = level + context.source.levelOffset;

  let input: ServerInput = { name: server.name, level: startLevel, ...(context.noRestart ? { restart: { mode: "never" } } : {}) };
  if (context.forwarded.args) input.args = context.forwarded.args.values;
  const matching = context.source.overrides.filter((override) => globMatches(override.name, server.name));
  for (const override of matching) input = { ...input, ...setFields(override), name: server.name };
  // What the database gives the environment lies under what the file's overrides give it.
  if (Object.keys(context.env).length > 0) input.env = { ...context.env, ...(input.env ?? {}) };
  if (input.readiness === undefined && context.tangoReadiness) {
    input.readiness = { kind: "tango", target: { via: "database" }, intervalMs: probeDefaults.tangoIntervalMs };
  }
  if (matching.length > 0 && input.level !== startLevel) report.note = `level ${input.level} from the config file's sources.tango.servers`;
  report.startLevel = input.level ?? 0;
  return { index: context.index, input, report };
}
