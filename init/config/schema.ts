// The configuration file's schema (zod 4). The loader validates each section with it and maps every
// issue back to a line and column of the YAML file.
//
// Layout of the file (see test/fixtures/config/demo.yaml for a complete example):
//
//   settings:            global settings; every key optional
//     startMode, interServerWait, interLevelWait, maxLevel, shutdownTimeout, controlSocket, logHome,
//     searchPath, env, http (listen: the read-only HTTP listener, off unless given), cgroup (false, or the
//     cgroup v2 directory the init owns; found by itself by default),
//     defaults:          per-server defaults: readiness, liveness, restart, stopSignal, stopTimeout, startTimeout,
//                        preStartTimeout, postStopTimeout, log (maxSize, keep, console, maxLine), autostart,
//                        watchdog, limits
//     …and the Tango Starter's property names (table below), so Starter settings can be pasted in.
//   servers:             list of servers (name, binary, args, env, cwd, user, group, umask, rlimits, level,
//                        requires, after, exclusive, autostart, failsafe, readiness, liveness, startTimeout,
//                        restart, stopSignal, stopTimeout, preStart, preStartTimeout, postStop,
//                        postStopTimeout, log; socket activation: sockets, activation, idleStop,
//                        maxInstances — config/sockets.ts; type (simple | forking), pidFile, watchdog,
//                        limits: cgroup v2 files such as memory.max, cpu.weight)
//   sources:             servers from elsewhere: `tango`, the Tango database (config/tango/schema.ts)
//   x-…:                 top-level keys starting with "x-" are ignored: a place for YAML anchors.
//
// Every mapping is strict: an unknown key is an error (with a "did you mean" when a known key is close).
// Durations are a number of milliseconds or a string like "500ms", "2s", "1m", "1m30s". Sizes are a
// number of bytes or a string like "10MiB". Paths are absolute.
//
// Tango Starter properties accepted in `settings`, and what they set. A Starter name and its native
// equivalent given together is an error naming both.
//
//   | Starter property                 | native key                  | unit of a bare number            |
//   |----------------------------------|-----------------------------|----------------------------------|
//   | StartDsPath                      | searchPath                  | list, or one string "a:b:c"      |
//   | StartServersAtStartup            | defaults.autostart          | boolean                          |
//   | InterStartupLevelWait            | interLevelWait              | seconds (as in the Starter)      |
//   | InterStartupServerWait           | interServerWait             | milliseconds (parallel-startup   |
//   |                                  |                             | branch of the Starter)           |
//   | ServerStartupTimeout             | defaults.startTimeout       | seconds (as in the Starter)      |
//   | AutoRestartDuration              | defaults.restart.minUptime  | minutes (as in the Starter);     |
//   |                                  |                             | 0 = off                          |
//   | KeepLogFiles                     | defaults.log.keep           | count                            |
//   | LogFileHome                      | logHome                     | absolute path                    |
//   | NbStartupLevels                  | maxLevel                    | count                            |
//   | EnableParallelStartup            | startMode                   | true = parallel, false = sequential |
//
// A Starter duration may also be written as a duration string ("2s"), which then means what it says.

import * as z from "zod";
import type { LivenessSpec, LogSettings, ReadinessProbe, RestartPolicy, RlimitSetting } from "../core/types";
import { describeValue, type FieldPath, type FieldProblem } from "./errors";
import { activationSchema, socketEntrySchema, type ReadinessInput } from "./sockets";
import {
  byteSizeExpectation,
  durationExpectation,
  listenExpectation,
  logProbe,
  parseByteSize,
  cgroupLimitNames,
  parseCgroupLimit,
  parseDuration,
  parseListenAddress,
  parseNotifyFd,
  parseProbeFile,
  parseProbeShorthand,
  parseRlimitName,
  parseSignal,
  parseTcpAddress,
  parseUmask,
  probeDefaults,
  probeShorthandExpectation,
  signalExpectation,
  splitCommandLine,
  umaskExpectation,
  type Parsed,
} from "./values";

/** The highest startup level a server may have when no maxLevel (NbStartupLevels) is set. */
export const levelCeiling = 1000;

function gotValue(input: unknown): string {
  return input === undefined ? "but it is missing" : `got ${describeValue(input)}`;
}

/** An error function for a schema: "expected <what>, got <value>". */
function expecting(what: string) {
  return (issue: { input?: unknown }) => `expected ${what}, ${gotValue(issue.input)}`;
}

const typeNames: Record<string, string> = {
  string: "a string",
  number: "a number",
  int: "an integer",
  boolean: "true or false",
  object: "a mapping",
  record: "a mapping",
  array: "a list",
  null: "an empty value",
};

/** Messages for the issues no schema words itself; passed to every parse by the loader. */
export const issueMessage: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case "invalid_type":
      return `expected ${typeNames[issue.expected] ?? issue.expected}, ${gotValue(issue.input)}`;
    case "invalid_value":
      return `expected ${issue.values.length === 1 ? "" : "one of "}${issue.values.map((value) => JSON.stringify(value)).join(", ")}, ${gotValue(issue.input)}`;
    case "too_small":
      return issue.origin === "array"
        ? `expected at least ${issue.minimum} item${issue.minimum === 1 ? "" : "s"}`
        : `expected ${issue.inclusive ? "at least" : "more than"} ${issue.minimum}, ${gotValue(issue.input)}`;
    case "too_big":
      return `expected ${issue.inclusive ? "at most" : "less than"} ${issue.maximum}, ${gotValue(issue.input)}`;
    default:
      return undefined;
  }
};

/** A transform step running a values.ts parser, whose expectation becomes the field's error. */
function via<I, T>(parse: (input: I) => Parsed<T>) {
  return (input: I, ctx: z.core.$RefinementCtx<I>): T => {
    const parsed = parse(input);
    if (parsed.ok) return parsed.value;
    ctx.addIssue({ code: "custom", message: `expected ${parsed.expected}, ${gotValue(input)}`, input });
    return z.NEVER;
  };
}

/** A string, or a number or boolean YAML read from an unquoted word (env values, arguments). */
const text = z.union([z.string(), z.number(), z.boolean()], { error: expecting("a string") }).transform(String);

const absolutePath = z.string({ error: expecting("an absolute path") }).refine((path) => path.startsWith("/"), { error: expecting("an absolute path") });

const durationMs = z.union([z.number(), z.string()], { error: expecting(durationExpectation) }).transform(via(parseDuration));

/** A Starter duration: a bare number is in the Starter's unit; a duration string means what it says. */
function starterDurationMs(unitMs: number, unitName: string) {
  const what = `${unitName} as a number, or a duration string like "2s"`;
  return z.union([z.number(), z.string()], { error: expecting(what) }).transform(
    via((value: number | string): Parsed<number> => {
      const parsed = parseDuration(typeof value === "number" ? value * unitMs : value);
      return parsed.ok ? parsed : { ok: false, expected: what };
    }),
  );
}

const byteSize = z.union([z.number(), z.string()], { error: expecting(byteSizeExpectation) }).transform(via(parseByteSize));

const signalNumber = z.union([z.string(), z.number()], { error: expecting(signalExpectation) }).transform(via(parseSignal));

const umask = z.union([z.string(), z.number()], { error: expecting(umaskExpectation) }).transform(via(parseUmask));

function count(minimum: number) {
  const what = `an integer of at least ${minimum}`;
  return z.int({ error: expecting(what) }).min(minimum, { error: expecting(what) });
}

/** A command: a list of words, or one string split the way a shell would split a simple command line. */
const commandWords = z.union([z.string().transform(via(splitCommandLine)), z.array(text)], {
  error: expecting('a command: a list of words, or a string like "mkdir -p /var/tmp/x"'),
});
const command = commandWords.refine((words) => words.length > 0, { error: "expected a command, got an empty list" });

/** One name or a list of names (dependencies); whether they exist is checked after the schema. */
const nameList = z.union([z.string().transform((name) => [name]), z.array(z.string())], {
  error: expecting("a server name or a list of server names"),
});

/** Directories to find binaries in: a list, or one string of directories separated by ":" (StartDsPath). */
const searchPath = z.union(
  [
    z.array(absolutePath),
    z.string().transform(
      via((joined: string): Parsed<string[]> => {
        const dirs = joined.split(":").filter((dir) => dir !== "");
        return dirs.length > 0 && dirs.every((dir) => dir.startsWith("/"))
          ? { ok: true, value: dirs }
          : { ok: false, expected: 'absolute directories separated by ":"' };
      }),
    ),
  ],
  { error: expecting('a list of absolute directories, or one string "dir:dir"') },
);

const envName = z.string().regex(/^[^=\0]+$/, { error: expecting('an environment variable name (no "=")') });

/** Environment variables; an empty value (`NAME:` or `NAME: null`) removes an inherited variable. */
const environment = z.record(
  envName,
  z
    .union([z.string(), z.number(), z.boolean(), z.null()], { error: expecting("a string, or nothing to unset the variable") })
    .transform((value) => (value === null ? null : String(value))),
);

/** A user or group: a name, or a numeric id. */
const principalExpectation = "a name or a numeric id";
const principal = z.union([z.string().min(1, { error: expecting(principalExpectation) }), z.int().min(0, { error: expecting(principalExpectation) })], {
  error: expecting(principalExpectation),
});

/** A resource limit value: -1 stands for unlimited. */
const limitExpectation = 'a non-negative integer or "unlimited"';
const limitValue = z.union([z.int().min(0, { error: expecting(limitExpectation) }), z.literal("unlimited").transform(() => -1)], {
  error: expecting(limitExpectation),
});

/** cgroup v2 limits, keyed by the kernel's file name; values checked and converted by parseCgroupLimit. */
const cgroupLimits = z
  .record(z.string(), z.union([z.string(), z.number()], { error: expecting("a limit value") }))
  .transform((limits, ctx): Record<string, string> => {
    const out: Record<string, string> = {};
    for (const [key, value] of Object.entries(limits)) {
      const parsed = parseCgroupLimit(key, value);
      if (parsed.ok) out[key] = parsed.value;
      else
        ctx.addIssue({
          code: "custom",
          path: [key],
          message: `expected ${parsed.expected}, got ${JSON.stringify(cgroupLimitNames.includes(key) ? value : key)}`,
        });
    }
    return out;
  });

/** A watchdog period (sd_notify WATCHDOG=1), or false for none. */
const watchdogPeriod = z.union([z.literal(false).transform(() => null), durationMs.refine((ms) => ms > 0, { error: expecting("a period above 0") })], {
  error: expecting('a period like "10s", or false'),
});

const rlimits = z
  .record(
    z.string(),
    z.union([limitValue.transform((value) => ({ soft: value, hard: value })), z.strictObject({ soft: limitValue, hard: limitValue })], {
      error: expecting('a limit (a number or "unlimited"), or {soft, hard}'),
    }),
  )
  .transform((limits, ctx): RlimitSetting[] => {
    const settings: RlimitSetting[] = [];
    for (const [key, { soft, hard }] of Object.entries(limits)) {
      const name = parseRlimitName(key);
      if (!name.ok) {
        ctx.addIssue({ code: "custom", path: [key], message: `expected ${name.expected}, got ${JSON.stringify(key)}` });
      } else if (hard !== -1 && (soft === -1 || soft > hard)) {
        ctx.addIssue({ code: "custom", path: [key], message: `the soft limit (${soft === -1 ? "unlimited" : soft}) is above the hard limit (${hard})` });
      } else {
        settings.push({ resource: name.value, soft, hard });
      }
    }
    return settings;
  });

// Readiness: a shorthand string, or a mapping with exactly one probe kind and that kind's options.
const probeKinds = ["log", "notify", "sd_notify", "tcp", "file", "exec", "tango"] as const;
/** Which probe kinds each option applies to. */
const probeOptions = { regex: ["log"], stream: ["log"], interval: ["tcp", "file", "exec", "tango"], timeout: ["exec"] } as const;

const readinessMapping = z
  .strictObject({
    log: z.string().optional(),
    regex: z.boolean().optional(),
    stream: z.enum(["stdout", "stderr", "both"]).optional(),
    notify: z.union([z.int(), z.string()], { error: expecting("a file descriptor number") }).optional(),
    sd_notify: z.literal(true).optional(),
    tcp: z.union([z.string(), z.int()], { error: expecting('an address "[host:]port"') }).optional(),
    file: z.string().optional(),
    exec: command.optional(),
    /** true: the admin device through the database; "[host:]port": at that endpoint (a server run with -nodb). */
    tango: z.union([z.literal(true), z.string(), z.int()], { error: expecting('true, or an address "[host:]port"') }).optional(),
    interval: durationMs.optional(),
    timeout: durationMs.optional(),
    /** Socket activation: whether dependents need only the server's sockets (true, the default with sockets) or its probe. */
    socket: z.boolean().optional(),
  })
  .transform((probe, ctx): ReadinessInput => {
    // Unknown keys do not stop zod from running this; their error says enough.
    if (ctx.issues.length > 0) return z.NEVER;
    const kinds = probeKinds.filter((kind) => probe[kind] !== undefined);
    // `socket:` alone: no probe of its own (ready once it runs).
    if (kinds.length === 0 && probe.socket !== undefined) return { kind: "none", socket: probe.socket };
    if (kinds.length !== 1) {
      ctx.addIssue({
        code: "custom",
        path: kinds.length > 1 ? [kinds[1]] : [],
        message: kinds.length > 1 ? `expected one probe kind, got both ${kinds[0]} and ${kinds[1]}` : `expected one probe kind: ${probeKinds.join(", ")}`,
      });
      return z.NEVER;
    }
    const [kind] = kinds;
    for (const [option, appliesTo] of Object.entries(probeOptions)) {
      if (probe[option as keyof typeof probeOptions] !== undefined && !(appliesTo as readonly string[]).includes(kind)) {
        ctx.addIssue({ code: "custom", path: [option], message: `${option} applies to a ${appliesTo.join(" or ")} probe, not to ${kind}` });
      }
    }
    const parsed: Parsed<ReadinessProbe> = (() => {
      const intervalMs = probe.interval;
      switch (kind) {
        case "log":
          return logProbe(probe.log!, probe.regex, probe.stream ?? "both");
        case "notify":
          return mapParsed(parseNotifyFd(probe.notify!), (fd) => ({ kind: "notify", fd }));
        case "sd_notify":
          return { ok: true, value: { kind: "sd_notify" } };
        case "tcp":
          return mapParsed(parseTcpAddress(probe.tcp!), (address) => ({ kind: "tcp", ...address, intervalMs: intervalMs ?? probeDefaults.tcpIntervalMs }));
        case "file":
          return mapParsed(parseProbeFile(probe.file!), (path) => ({ kind: "file", path, intervalMs: intervalMs ?? probeDefaults.fileIntervalMs }));
        case "exec":
          return {
            ok: true,
            value: {
              kind: "exec",
              argv: probe.exec!,
              intervalMs: intervalMs ?? probeDefaults.execIntervalMs,
              timeoutMs: probe.timeout ?? probeDefaults.execTimeoutMs,
            },
          };
        case "tango": {
          const interval = intervalMs ?? probeDefaults.tangoIntervalMs;
          if (probe.tango === true) return { ok: true, value: { kind: "tango", target: { via: "database" }, intervalMs: interval } };
          return mapParsed(parseTcpAddress(probe.tango!), (address) => ({ kind: "tango", target: { via: "endpoint", ...address }, intervalMs: interval }));
        }
      }
    })();
    if (parsed.ok) return probe.socket === undefined ? parsed.value : { ...parsed.value, socket: probe.socket };
    ctx.addIssue({ code: "custom", path: [kind], message: `expected ${parsed.expected}, ${gotValue(probe[kind])}` });
    return z.NEVER;
  });

function mapParsed<T, U>(parsed: Parsed<T>, map: (value: T) => U): Parsed<U> {
  return parsed.ok ? { ok: true, value: map(parsed.value) } : parsed;
}

/**
 * Liveness (the Starter's ping thread): false turns it off, true or a mapping turns it on; the
 * mapping's fields override the defaults (every 2 s, 1 s to answer, 2 failures in a row, report).
 */
const liveness = z.union(
  [
    z.literal(false).transform(() => null),
    z.literal(true).transform((): LivenessInput => ({})),
    z
      .strictObject({
        interval: durationMs.optional(),
        timeout: durationMs.optional(),
        failures: count(1).optional(),
        onUnresponsive: z.enum(["report", "restart"]).optional(),
      })
      .transform((fields): LivenessInput => ({
        intervalMs: fields.interval,
        timeoutMs: fields.timeout,
        failures: fields.failures,
        onUnresponsive: fields.onUnresponsive,
      })),
  ],
  { error: expecting('true, false, or a mapping {interval, timeout, failures, onUnresponsive: "report" | "restart"}') },
);

/** A liveness mapping as written: what it sets (the rest comes from the defaults). */
export type LivenessInput = Partial<Omit<LivenessSpec, "target">>;

const readiness = z.union(
  [
    // Socket activation: ready for its dependents once its sockets exist, and for itself once it runs.
    z.literal("socket").transform((): ReadinessInput => ({ kind: "none", socket: true })),
    z.string().transform(via(parseProbeShorthand)),
    readinessMapping,
  ],
  {
    error: expecting(`${probeShorthandExpectation}, "socket", or a mapping like {log: "Ready to accept request", stream: stdout}`),
  },
);

// Restart: a mode alone, or a mapping of the policy's fields; missing fields come from the defaults.
const restartMode = z.enum(["on-failure", "always", "never"]);
const restart = z.union(
  [
    restartMode.transform((mode): Partial<RestartPolicy> => ({ mode })),
    z
      .strictObject({
        mode: restartMode.optional(),
        initialDelay: durationMs.optional(),
        factor: z.number().min(1).optional(),
        maxDelay: durationMs.optional(),
        burst: z.strictObject({ count: count(1).optional(), window: durationMs.optional() }).optional(),
        resetAfter: durationMs.optional(),
        minUptime: durationMs.optional(),
      })
      .transform((policy): Partial<RestartPolicy> => ({
        mode: policy.mode,
        initialDelayMs: policy.initialDelay,
        factor: policy.factor,
        maxDelayMs: policy.maxDelay,
        burstCount: policy.burst?.count,
        burstWindowMs: policy.burst?.window,
        resetAfterMs: policy.resetAfter,
        minUptimeForRestartMs: policy.minUptime,
      })),
  ],
  { error: expecting('a restart mode ("on-failure", "always", "never") or a mapping {mode, initialDelay, factor, maxDelay, burst, resetAfter, minUptime}') },
);

// Log settings; `file` exists only per server (a shared default file would mix servers).
const logFields = {
  maxSize: byteSize.optional(),
  keep: count(0).optional(),
  console: z.boolean().optional(),
  maxLine: byteSize.optional(),
};
type LogFieldsOutput = z.output<z.ZodObject<typeof logFields>>;
const logSettings = (fields: LogFieldsOutput): Partial<LogSettings> => ({
  maxBytes: fields.maxSize,
  keep: fields.keep,
  console: fields.console,
  maxLineBytes: fields.maxLine,
});
const defaultLog = z.strictObject(logFields).transform(logSettings);
const serverLog = z
  .strictObject({ ...logFields, file: z.union([absolutePath, z.literal(false)], { error: expecting("an absolute path, or false for no file") }).optional() })
  .transform((fields): Partial<LogSettings> => ({ ...logSettings(fields), file: fields.file === false ? null : fields.file }));

const serverDefaults = z.strictObject({
  readiness: readiness.optional(),
  liveness: liveness.optional(),
  restart: restart.optional(),
  stopSignal: signalNumber.optional(),
  stopTimeout: durationMs.optional(),
  startTimeout: durationMs.optional(),
  preStartTimeout: durationMs.optional(),
  postStopTimeout: durationMs.optional(),
  log: defaultLog.optional(),
  autostart: z.boolean().optional(),
  watchdog: watchdogPeriod.optional(),
  limits: cgroupLimits.optional(),
});

const levelCount = z
  .int({ error: expecting(`an integer between 1 and ${levelCeiling}`) })
  .min(1, { error: expecting(`an integer between 1 and ${levelCeiling}`) })
  .max(levelCeiling, { error: expecting(`an integer between 1 and ${levelCeiling}`) });

/** Starter property names and the native key each stands for (see the table at the top). */
export const starterProperties = [
  { starter: "StartDsPath", native: ["searchPath"] },
  { starter: "StartServersAtStartup", native: ["defaults", "autostart"] },
  { starter: "InterStartupLevelWait", native: ["interLevelWait"] },
  { starter: "InterStartupServerWait", native: ["interServerWait"] },
  { starter: "ServerStartupTimeout", native: ["defaults", "startTimeout"] },
  { starter: "AutoRestartDuration", native: ["defaults", "restart", "minUptime"] },
  { starter: "KeepLogFiles", native: ["defaults", "log", "keep"] },
  { starter: "LogFileHome", native: ["logHome"] },
  { starter: "NbStartupLevels", native: ["maxLevel"] },
  { starter: "EnableParallelStartup", native: ["startMode"] },
] as const;

/** Whether a raw (not yet validated) YAML mapping has a value at `path`. */
export function hasPath(raw: unknown, path: readonly string[]): boolean {
  let node = raw;
  for (const key of path) {
    if (node === null || typeof node !== "object" || !Object.hasOwn(node, key)) return false;
    node = (node as Record<string, unknown>)[key];
  }
  return true;
}

/**
 * Starter properties given together with their native key, found in the raw `settings` mapping (before
 * the schema converts anything). Each is reported at the Starter key, naming both.
 */
export function findStarterConflicts(rawSettings: unknown): FieldProblem[] {
  const has = (path: readonly string[]) => hasPath(rawSettings, path);
  return starterProperties
    .filter(({ starter, native }) => has([starter]) && has(native))
    .map(({ starter, native }) => ({
      path: ["settings", starter],
      message: `${starter} (Starter property) and ${native.join(".")} set the same thing; give only one of them`,
    }));
}

/** The read-only HTTP listener (metrics, probes, status): off unless `listen` is given. */
const httpSettings = z.strictObject({
  listen: z.union([z.string(), z.number()], { error: expecting(listenExpectation) }).transform(via(parseListenAddress)),
});

/** The `settings` section. Its output has the Starter properties folded into the native fields. */
export const settingsSchema = z
  .strictObject({
    startMode: z.enum(["parallel", "sequential"]).optional(),
    interServerWait: durationMs.optional(),
    interLevelWait: durationMs.optional(),
    maxLevel: levelCount.optional(),
    shutdownTimeout: durationMs.optional(),
    controlSocket: absolutePath.optional(),
    logHome: absolutePath.optional(),
    cgroup: z
      .union([z.literal(false), absolutePath], { error: expecting("false, or the absolute path of a cgroup v2 directory for the init to own") })
      .optional(),
    searchPath: searchPath.optional(),
    env: environment.optional(),
    defaults: serverDefaults.optional(),
    http: httpSettings.optional(),

    StartDsPath: searchPath.optional(),
    StartServersAtStartup: z.boolean().optional(),
    InterStartupLevelWait: starterDurationMs(1000, "seconds").optional(),
    InterStartupServerWait: durationMs.optional(),
    ServerStartupTimeout: starterDurationMs(1000, "seconds").optional(),
    AutoRestartDuration: starterDurationMs(60_000, "minutes").optional(),
    KeepLogFiles: count(0).optional(),
    LogFileHome: absolutePath.optional(),
    NbStartupLevels: levelCount.optional(),
    EnableParallelStartup: z.boolean().optional(),
  })
  .transform((settings) => {
    const defaults = settings.defaults ?? {};
    const startModeFromStarter = settings.EnableParallelStartup === undefined ? undefined : settings.EnableParallelStartup ? "parallel" : "sequential";
    const maxLevelKey = settings.maxLevel !== undefined ? "maxLevel" : settings.NbStartupLevels !== undefined ? "NbStartupLevels" : undefined;
    return {
      startMode: settings.startMode ?? startModeFromStarter,
      interServerWaitMs: settings.interServerWait ?? settings.InterStartupServerWait,
      interLevelWaitMs: settings.interLevelWait ?? settings.InterStartupLevelWait,
      /** Set explicitly (and then a bound for server levels), with the key it came from. */
      maxLevel: maxLevelKey === undefined ? undefined : { value: (settings.maxLevel ?? settings.NbStartupLevels)!, key: maxLevelKey },
      shutdownTimeoutMs: settings.shutdownTimeout,
      controlSocket: settings.controlSocket,
      logHome: settings.logHome ?? settings.LogFileHome,
      cgroup: settings.cgroup,
      searchPath: settings.searchPath ?? settings.StartDsPath,
      env: settings.env ?? {},
      http: settings.http,
      defaults: {
        readiness: defaults.readiness,
        liveness: defaults.liveness,
        restart: { ...defaults.restart, minUptimeForRestartMs: defaults.restart?.minUptimeForRestartMs ?? settings.AutoRestartDuration },
        stopSignal: defaults.stopSignal,
        stopTimeoutMs: defaults.stopTimeout,
        startTimeoutMs: defaults.startTimeout ?? settings.ServerStartupTimeout,
        preStartTimeoutMs: defaults.preStartTimeout,
        postStopTimeoutMs: defaults.postStopTimeout,
        log: { ...defaults.log, keep: defaults.log?.keep ?? settings.KeepLogFiles },
        autostart: defaults.autostart ?? settings.StartServersAtStartup,
        watchdogMs: defaults.watchdog,
        limits: defaults.limits,
      },
    };
  });

export type SettingsInput = z.output<typeof settingsSchema>;

const serverNameExpectation = 'a name: "Server/instance" (Tango style) or a plain name, without spaces';

/**
 * One entry of `servers`. The level bound depends on the settings: maxLevel (NbStartupLevels) when it is
 * given, else levelCeiling; `boundKey` names where the bound came from, for the message.
 */
export function makeServerSchema(levelBound: { max: number; boundKey?: string }) {
  const levelExpectation = `an integer between 0 and ${levelBound.max}${levelBound.boundKey ? ` (settings.${levelBound.boundKey})` : ""}`;
  return z.strictObject({
    name: z.string({ error: expecting(serverNameExpectation) }).regex(/^[^\s/-][^\s/]*(\/[^\s/]+)?$/, { error: expecting(serverNameExpectation) }),
    binary: z
      .string({ error: expecting("an absolute path, or a bare name to look up in searchPath") })
      .regex(/^(\/.*[^/]|[^/]+)$/, { error: expecting("an absolute path, or a bare name to look up in searchPath") })
      .optional(),
    args: commandWords.optional(),
    env: environment.optional(),
    cwd: absolutePath.optional(),
    user: principal.optional(),
    group: principal.optional(),
    umask: umask.optional(),
    rlimits: rlimits.optional(),
    level: z
      .int({ error: expecting(levelExpectation) })
      .min(0, { error: expecting(levelExpectation) })
      .max(levelBound.max, { error: expecting(levelExpectation) })
      .optional(),
    requires: nameList.optional(),
    after: nameList.optional(),
    exclusive: z.boolean().optional(),
    autostart: z.boolean().optional(),
    failsafe: durationMs.optional(),
    readiness: readiness.optional(),
    liveness: liveness.optional(),
    startTimeout: durationMs.optional(),
    restart: restart.optional(),
    stopSignal: signalNumber.optional(),
    stopTimeout: durationMs.optional(),
    preStart: command.optional(),
    preStartTimeout: durationMs.optional(),
    postStop: command.optional(),
    postStopTimeout: durationMs.optional(),
    log: serverLog.optional(),
    // socket activation (config/sockets.ts)
    sockets: z.array(socketEntrySchema, { error: expecting("a list of sockets") }).optional(),
    activation: activationSchema.optional(),
    idleStop: durationMs.optional(),
    maxInstances: count(1).optional(),
    // a process in a cgroup (type, pidFile, watchdog, limits)
    type: z.enum(["simple", "forking"]).optional(),
    pidFile: absolutePath.optional(),
    watchdog: watchdogPeriod.optional(),
    limits: cgroupLimits.optional(),
  });
}

export type ServerInput = z.output<ReturnType<typeof makeServerSchema>>;

/** The file's top level; its sections are validated on their own so that all their errors show. */
export const configFileOutline = z.strictObject({
  settings: z.unknown().optional(),
  servers: z.array(z.unknown()).optional(),
  /** Where else servers come from (the Tango database): config/tango/schema.ts. */
  sources: z.unknown().optional(),
});

/** Unwraps optional/default/pipe/union layers down to the schemas that actually hold values. */
function valueSchemas(schema: z.core.$ZodType): z.core.$ZodType[] {
  if (schema instanceof z.ZodOptional || schema instanceof z.ZodNullable || schema instanceof z.ZodDefault) return valueSchemas(schema.unwrap());
  if (schema instanceof z.ZodPipe) return [...valueSchemas(schema.in), ...valueSchemas(schema.out)];
  if (schema instanceof z.ZodUnion) return schema.options.flatMap(valueSchemas);
  return [schema];
}

/** The keys a mapping at `path` inside `schema` may have (for "did you mean" suggestions). */
export function knownKeysAt(schema: z.core.$ZodType, path: FieldPath): string[] {
  let schemas = valueSchemas(schema);
  for (const key of path) {
    schemas = schemas.flatMap((candidate) => {
      if (candidate instanceof z.ZodObject && typeof key === "string" && Object.hasOwn(candidate.shape, key)) return valueSchemas(candidate.shape[key]);
      if (candidate instanceof z.ZodArray && typeof key === "number") return valueSchemas(candidate.element);
      if (candidate instanceof z.ZodRecord) return valueSchemas(candidate.valueType);
      return [];
    });
  }
  return [...new Set(schemas.flatMap((candidate) => (candidate instanceof z.ZodObject ? Object.keys(candidate.shape) : [])))];
}
