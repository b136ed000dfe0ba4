// Command-line grammar (yargs). The same binary is the init, the supervisor and its client:
//
//   starter-init [options] -- cmd args…   run cmd as the main program (tini / dumb-init mode)
//   starter-init [run] [options]           supervise the servers of a config file
//   starter-init plan [--config FILE]      print the start order and exact commands; start nothing
//   starter-init <command> …               a client of the running init (status, start, stop, …;
//                                          see commands.ts), over its control socket
//
// Parsing never exits the process: errors come back as a UsageError for main.ts to report, and
// help, completion scripts and completions come back as text to print.

import path from "node:path";
import yargs, { type Argv } from "yargs";
import { NOT_FORWARDED, parseSignal, signalName } from "../core/signals";
import { isLogLevel, LOG_LEVELS, type LogFormat, type LogLevel } from "../log/logger";
import type { MainProgramOptions } from "../runtime/main-program";
import { INIT_VERSION } from "../version";
import { CLIENT_COMMANDS, clientInvocation, clientOptions, type ClientInvocation } from "./commands";

const VERSION = INIT_VERSION;
export const DEFAULT_CONFIG = "/etc/starter-init/config.yaml";

export interface CommonOptions {
  logLevel: LogLevel | null;
  logFormat: LogFormat | null;
  mount: boolean;
}

export type { ClientInvocation, ClientRequest } from "./commands";

export type Invocation =
  | ({ mode: "main-program"; config: string | null } & MainProgramOptions & CommonOptions)
  | ({ mode: "supervisor"; config: string; configGiven: boolean } & CommonOptions)
  | ({ mode: "plan"; config: string; json: boolean; source: "tango" | null } & CommonOptions)
  | ClientInvocation
  | { mode: "help"; text: string }
  | { mode: "version"; text: string };

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * The supervisor's options: at the top level (no command), and again for `run` and `plan`. Before a
 * `--`, -c is dumb-init's --single-child; elsewhere it stays the short form of --config.
 */
function commonOptions<T>(parser: Argv<T>, global = false, mainProgram = false) {
  return parser
    .option("log-level", {
      type: "string",
      global,
      choices: LOG_LEVELS as unknown as string[],
      describe: "level of the init's own log (env STARTER_LOG_LEVEL, kernel starter.loglevel=)",
    })
    .option("log-format", { type: "string", global, choices: ["pretty", "json"], describe: "pretty on a TTY, JSON otherwise, unless set" })
    .option("mount", { type: "boolean", global, default: true, describe: "as PID 1, mount /proc, /sys, /dev, … when missing (--no-mount to skip)" })
    .option("config", {
      ...(mainProgram ? {} : { alias: "c" }),
      type: "string",
      global,
      describe: `config file (default ${DEFAULT_CONFIG}, env STARTER_CONFIG)`,
    })
    .option("group", {
      alias: "g",
      type: "boolean",
      global,
      default: false,
      describe: "-- mode: forward signals to the main program's whole process group (tini -g; env TINI_KILL_PROCESS_GROUP)",
    })
    .option("single-child", {
      ...(mainProgram ? { alias: "c" } : {}),
      type: "boolean",
      global,
      default: false,
      describe: "-- mode (-c before the --): the main program stays in the init's session and process group (dumb-init -c; env DUMB_INIT_SETSID=0)",
    })
    .option("rewrite", {
      alias: "r",
      type: "string",
      global,
      array: true,
      default: [] as string[],
      describe: "-- mode: FROM:TO forwards signal FROM as TO, numbers or names; TO 0 drops it (dumb-init -r; repeatable)",
    })
    .option("pdeath-signal", { alias: "p", type: "string", global, describe: "-- mode: signal the init gets when its parent dies, e.g. SIGKILL (tini -p)" })
    .option("subreaper", { alias: "s", type: "boolean", global, default: false, describe: "accepted for tini -s: the init always is a subreaper (or PID 1)" })
    .option("warn-on-reap", { alias: "w", type: "boolean", global, default: false, describe: "-- mode: a warning for each orphan reaped (tini -w)" })
    .option("verbose", { alias: "v", type: "count", global, describe: "log level debug; -vv: trace (dumb-init -v; env DUMB_INIT_DEBUG=1, TINI_VERBOSITY)" })
    .option("grace", { alias: "t", type: "number", global, default: 5, describe: "-- mode: seconds leftover processes get between SIGTERM and SIGKILL" })
    .option("expect-exit", {
      alias: "e",
      type: "number",
      global,
      array: true,
      default: [] as number[],
      describe: "-- mode: exit code reported as 0 (repeatable), e.g. 143",
    })
    .option("json", { type: "boolean", global, default: false, describe: "machine-readable output (plan)" });
}

function buildParser(args: string[], mainProgram: boolean) {
  let parser = commonOptions(yargs(args), false, mainProgram)
    .scriptName("starter-init")
    .usage(
      [
        "$0 [options] -- command [args…]   run a program as PID 1 (tini mode)",
        "$0 [run] [options]                supervise the servers of the config file",
        "$0 <command> [options]            talk to the running init over its control socket",
      ].join("\n"),
    )
    .command("run", "supervise the servers of the config file (the default)", (y) => commonOptions(y))
    .command("plan", "print the start order and the exact command of each server; start nothing", (y) =>
      commonOptions(y).option("source", {
        type: "string",
        choices: ["tango"],
        describe: "also read the config's sources.tango (the Tango database) and plan its servers",
      }),
    );
  for (const command of CLIENT_COMMANDS) {
    parser = parser.command(command.usage, command.describe, (y) => command.builder(clientOptions(y))) as typeof parser;
  }
  return parser
    .completion("completion", "print a bash/zsh completion script (starter-init completion >> ~/.bashrc)")
    .epilogue("Exit codes: 0 ok, 1 failed, 2 usage, 3 no such server, 4 timed out, 5 no init answers, 6 permission denied, 7 protocol error, 78 config error.")
    .parserConfiguration({ "populate--": true, "strip-aliased": true })
    .strictCommands()
    .strictOptions()
    .help()
    .alias("help", "h")
    .version(false)
    .exitProcess(false)
    .fail((message, error) => {
      throw error ?? new UsageError(message);
    })
    .wrap(Math.min(100, process.stdout.columns ?? 100));
}

/** Words before a `--` (what the init itself parses; what follows belongs to the main program). */
function ownWords(args: string[]): string[] {
  const end = args.indexOf("--");
  return end === -1 ? args : args.slice(0, end);
}

/** "-r" for a one-letter option yargs reports as "r", "--rewrite" for "rewrite". */
function optionWord(name: string): string {
  return name.length === 1 ? `-${name}` : `--${name}`;
}

/** yargs' "Unknown argument(s): x" and "Unknown command(s): y" as messages that name what was typed. */
function usageMessage(message: string, own: string[]): string {
  const command = /^Unknown commands?: (.*)$/.exec(message);
  if (command) {
    const words = command[1].split(", ");
    return `unknown command "${words[0]}"; to run a program under the init, put -- before it: starter-init -- ${words.join(" ")}`;
  }
  const unknown = /^Unknown arguments?: (.*)$/.exec(message);
  if (!unknown) return message;
  const names = unknown[1].split(", ");
  // yargs lists a stray word (not typed as an option) among the unknown arguments too.
  const typedAsOption = (name: string) =>
    own.some(
      (word) => word.startsWith("-") && (word.replace(/^--?/, "").split("=")[0] === name || (name.length === 1 && /^-[^-]/.test(word) && word.includes(name))),
    );
  const options = names.filter(typedAsOption);
  if (options.length === 0) return `unexpected argument "${names[0]}"`;
  return `unknown option${options.length > 1 ? "s" : ""} ${options.map(optionWord).join(", ")}`;
}

/** -r FROM:TO as dumb-init takes it, with names too; a FROM the init does not forward is refused. */
function parseRewrite(text: string): [number, number] {
  const match = /^([^:]+):([^:]+)$/.exec(text);
  if (!match) throw new UsageError(`--rewrite: expected FROM:TO (signal numbers or names, e.g. 15:3 or TERM:QUIT), got "${text}"`);
  const from = parseSignal(match[1]);
  const to = parseSignal(match[2], true);
  if (from === null) throw new UsageError(`--rewrite ${text}: "${match[1]}" is not a signal (1–31, RTMIN…RTMAX, a number or a name)`);
  if (to === null) throw new UsageError(`--rewrite ${text}: "${match[2]}" is not a signal (0 to drop, 1–31, RTMIN…RTMAX, a number or a name)`);
  const kept = NOT_FORWARDED.get(from);
  if (kept) throw new UsageError(`--rewrite ${text}: ${signalName(from)} is never forwarded (${kept})`);
  return [from, to];
}

/** tini's TINI_VERBOSITY (0 fatal only … 4 trace) as a log level. */
function tiniVerbosity(value: string | undefined): LogLevel | null {
  if (value === undefined || !/^\d+$/.test(value)) return null;
  return (["fatal", "warn", "info", "debug", "trace"] as const)[Math.min(4, Number(value))];
}

/** Variables of tini and dumb-init that change what `-- cmd` means: the parser reads them. */
const MAIN_PROGRAM_ENV = ["DUMB_INIT_DEBUG", "DUMB_INIT_SETSID", "TINI_KILL_PROCESS_GROUP", "TINI_VERBOSITY"];

/**
 * `starter-init -- cmd args…` with no option of the init's own (and none of tini's and dumb-init's
 * variables): what the parser below makes of it, without building the parser (the most common way a
 * container runs the init, and the start that must be quickest). null for anything else. A unit test
 * holds it equal to the parser's answer.
 */
export function bareMainProgram(args: string[], env: NodeJS.ProcessEnv = process.env): Invocation | null {
  if (args[0] !== "--" || args.length < 2 || MAIN_PROGRAM_ENV.some((name) => env[name] !== undefined)) return null;
  return {
    mode: "main-program",
    command: args[1],
    args: args.slice(2),
    forwardToGroup: false,
    singleChild: false,
    rewrites: [],
    parentDeathSignal: null,
    warnOnReap: false,
    graceMs: 5000, // --grace's default
    expectedExitCodes: [],
    config: typeof env.STARTER_CONFIG === "string" ? path.resolve(env.STARTER_CONFIG) : null,
    logLevel: null,
    logFormat: null,
    mount: true,
  };
}

/**
 * No argument at all: the supervisor with every default (how a VM's kernel and most containers
 * start the init). What the parser below makes of it, without building the parser; a unit test holds
 * them equal.
 */
export function bareSupervisor(args: string[], env: NodeJS.ProcessEnv = process.env): Invocation | null {
  if (args.length !== 0) return null;
  const configGiven = typeof env.STARTER_CONFIG === "string";
  return { mode: "supervisor", config: path.resolve(env.STARTER_CONFIG ?? DEFAULT_CONFIG), configGiven, logLevel: null, logFormat: null, mount: true };
}

export async function parseArgs(args: string[], env: NodeJS.ProcessEnv = process.env, pid = process.pid): Promise<Invocation> {
  const bare = bareMainProgram(args, env) ?? bareSupervisor(args, env);
  if (bare) return bare;
  // A shell asking for completions may be completing a "--" word: that is no main program.
  const mainProgram = args.includes("--") && args[0] !== "--get-yargs-completions";
  const own = mainProgram ? ownWords(args) : args;
  if (own.includes("--version") || own.includes("-V")) return { mode: "version", text: VERSION };

  let parsed: Record<string, unknown>;
  let output = "";
  try {
    // Before a `--` only the init's own words are parsed: the main program's belong to it.
    const words = mainProgram ? own : args;
    parsed = (await buildParser(words, mainProgram).parse(words, {}, (_err: unknown, _argv: unknown, text: string) => {
      output = text;
    })) as Record<string, unknown>;
  } catch (err) {
    throw new UsageError(usageMessage((err as Error).message, own));
  }
  // --help, `completion`, and the completions a shell asks for: text to print.
  if (output) return { mode: "help", text: output.replace(/\n+$/, "") };

  const positional = (parsed._ as (string | number)[]).map(String);
  // The main program's words are taken as given: yargs would turn "1000" into a number.
  const separator = args.indexOf("--");
  const rest = separator === -1 ? [] : args.slice(separator + 1);
  const command = positional[0];
  const client = CLIENT_COMMANDS.find((candidate) => candidate.names.includes(command ?? ""));
  if (client) {
    if (pid === 1) {
      throw new UsageError(`"${command}" is a client command; as PID 1 the init supervises (run the client beside it, e.g. docker exec)`);
    }
    if (rest.length) throw new UsageError(`unexpected "--" after ${command}`);
    try {
      return clientInvocation(client, parsed, env);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }

  const verbose = Number(parsed.verbose ?? 0) || (mainProgram && env.DUMB_INIT_DEBUG === "1" ? 1 : 0);
  const logLevel =
    typeof parsed.logLevel === "string" && isLogLevel(parsed.logLevel)
      ? parsed.logLevel
      : verbose > 0
        ? verbose > 1
          ? "trace"
          : "debug"
        : mainProgram
          ? tiniVerbosity(env.TINI_VERBOSITY)
          : null;
  const common: CommonOptions = {
    logLevel,
    logFormat: (parsed.logFormat as LogFormat | undefined) ?? null,
    mount: parsed.mount !== false,
  };
  const configGiven = typeof parsed.config === "string" || typeof env.STARTER_CONFIG === "string";
  // Absolute: the init leaves its working directory for / once it runs.
  const config = path.resolve((parsed.config as string | undefined) ?? env.STARTER_CONFIG ?? DEFAULT_CONFIG);

  if (mainProgram) {
    if (positional.length > 0) throw new UsageError(`unexpected argument "${positional[0]}" before --`);
    if (rest.length === 0) throw new UsageError("nothing to run after --");
    const singleChild = parsed.singleChild === true || env.DUMB_INIT_SETSID === "0";
    const forwardToGroup = parsed.group === true || env.TINI_KILL_PROCESS_GROUP !== undefined;
    if (singleChild && forwardToGroup) {
      throw new UsageError("-c (--single-child) and -g (--group) contradict: with -c the main program shares the init's process group");
    }
    const rewrites = (parsed.rewrite as string[]).map(parseRewrite);
    let parentDeathSignal: number | null = null;
    if (typeof parsed.pdeathSignal === "string") {
      parentDeathSignal = parseSignal(parsed.pdeathSignal);
      if (parentDeathSignal === null) throw new UsageError(`--pdeath-signal: "${parsed.pdeathSignal}" is not a signal (a number or a name, e.g. SIGKILL)`);
    }
    const grace = Number(parsed.grace);
    if (!Number.isFinite(grace) || grace < 0) throw new UsageError(`--grace: expected a number of seconds ≥ 0, got ${String(parsed.grace)}`);
    const expected = (parsed.expectExit as number[]).map(Number);
    const badCode = expected.find((code) => !Number.isInteger(code) || code < 0 || code > 255);
    if (badCode !== undefined) throw new UsageError(`--expect-exit: expected an exit code 0..255, got ${badCode}`);
    return {
      mode: "main-program",
      command: rest[0],
      args: rest.slice(1),
      forwardToGroup,
      singleChild,
      rewrites,
      parentDeathSignal,
      warnOnReap: parsed.warnOnReap === true,
      graceMs: Math.round(grace * 1000),
      expectedExitCodes: expected,
      config: configGiven ? config : null,
      ...common,
    };
  }
  const mode = command ?? "run";
  if (mode !== "run" && mode !== "plan") {
    throw new UsageError(`unknown command "${mode}"; to run a program under the init, put -- before it: starter-init -- ${positional.join(" ")}`);
  }
  const onlyHere = (["singleChild", "rewrite", "pdeathSignal", "warnOnReap"] as const).find((key) =>
    Array.isArray(parsed[key]) ? (parsed[key] as unknown[]).length > 0 : parsed[key] !== undefined && parsed[key] !== false,
  );
  if (onlyHere)
    throw new UsageError(`--${onlyHere.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} applies to a main program: starter-init [options] -- command`);
  if (positional.length > 1) throw new UsageError(`unexpected argument "${positional[1]}"`);
  if (mode === "plan") return { mode: "plan", config, json: parsed.json === true, source: parsed.source === "tango" ? "tango" : null, ...common };
  return { mode: "supervisor", config, configGiven, ...common };
}
