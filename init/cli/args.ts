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

import yargs, { type Argv } from "yargs";
import { isLogLevel, LOG_LEVELS, type LogFormat, type LogLevel } from "../log/logger";
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
  | ({
      mode: "main-program";
      command: string;
      args: string[];
      forwardToGroup: boolean;
      graceMs: number;
      expectedExitCodes: number[];
      config: string | null;
    } & CommonOptions)
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

/** The supervisor's options: at the top level (no command), and again for `run` and `plan`. */
function commonOptions<T>(parser: Argv<T>, global = false) {
  return parser
    .option("log-level", {
      type: "string",
      global,
      choices: LOG_LEVELS as unknown as string[],
      describe: "level of the init's own log (env STARTER_LOG_LEVEL, kernel starter.loglevel=)",
    })
    .option("log-format", { type: "string", global, choices: ["pretty", "json"], describe: "pretty on a TTY, JSON otherwise, unless set" })
    .option("mount", { type: "boolean", global, default: true, describe: "as PID 1, mount /proc, /sys, /dev, … when missing (--no-mount to skip)" })
    .option("config", { alias: "c", type: "string", global, describe: `config file (default ${DEFAULT_CONFIG}, env STARTER_CONFIG)` })
    .option("group", { alias: "g", type: "boolean", global, default: false, describe: "-- mode: forward signals to the main program's whole process group" })
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

function buildParser(args: string[]) {
  let parser = commonOptions(yargs(args))
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

/**
 * `starter-init -- cmd args…` with no option of the init's own: what the parser below makes of it,
 * without building the parser (the most common way a container runs the init, and the start that
 * must be quickest). null for anything else. A unit test holds it equal to the parser's answer.
 */
export function bareMainProgram(args: string[], env: NodeJS.ProcessEnv = process.env): Invocation | null {
  if (args[0] !== "--" || args.length < 2) return null;
  return {
    mode: "main-program",
    command: args[1],
    args: args.slice(2),
    forwardToGroup: false,
    graceMs: 5000, // --grace's default
    expectedExitCodes: [],
    config: typeof env.STARTER_CONFIG === "string" ? env.STARTER_CONFIG : null,
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
  return { mode: "supervisor", config: env.STARTER_CONFIG ?? DEFAULT_CONFIG, configGiven, logLevel: null, logFormat: null, mount: true };
}

export async function parseArgs(args: string[], env: NodeJS.ProcessEnv = process.env, pid = process.pid): Promise<Invocation> {
  const bare = bareMainProgram(args, env) ?? bareSupervisor(args, env);
  if (bare) return bare;
  const own = ownWords(args);
  if (own.includes("--version") || own.includes("-V")) return { mode: "version", text: VERSION };

  let parsed: Record<string, unknown>;
  let output = "";
  try {
    parsed = (await buildParser(args).parse(args, {}, (_err: unknown, _argv: unknown, text: string) => {
      output = text;
    })) as Record<string, unknown>;
  } catch (err) {
    throw new UsageError((err as Error).message);
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

  const logLevel = typeof parsed.logLevel === "string" && isLogLevel(parsed.logLevel) ? parsed.logLevel : null;
  const common: CommonOptions = {
    logLevel,
    logFormat: (parsed.logFormat as LogFormat | undefined) ?? null,
    mount: parsed.mount !== false,
  };
  const configGiven = typeof parsed.config === "string" || typeof env.STARTER_CONFIG === "string";
  const config = (parsed.config as string | undefined) ?? env.STARTER_CONFIG ?? DEFAULT_CONFIG;

  if (args.includes("--")) {
    if (positional.length > 0) throw new UsageError(`unexpected argument "${positional[0]}" before --`);
    if (rest.length === 0) throw new UsageError("nothing to run after --");
    const grace = Number(parsed.grace);
    if (!Number.isFinite(grace) || grace < 0) throw new UsageError(`--grace: expected a number of seconds ≥ 0, got ${String(parsed.grace)}`);
    const expected = (parsed.expectExit as number[]).map(Number);
    const badCode = expected.find((code) => !Number.isInteger(code) || code < 0 || code > 255);
    if (badCode !== undefined) throw new UsageError(`--expect-exit: expected an exit code 0..255, got ${badCode}`);
    return {
      mode: "main-program",
      command: rest[0],
      args: rest.slice(1),
      forwardToGroup: parsed.group === true,
      graceMs: Math.round(grace * 1000),
      expectedExitCodes: expected,
      config: configGiven ? config : null,
      ...common,
    };
  }
  const mode = command ?? "run";
  if (positional.length > 1) throw new UsageError(`unexpected argument "${positional[1]}"`);
  if (mode === "plan") return { mode: "plan", config, json: parsed.json === true, source: parsed.source === "tango" ? "tango" : null, ...common };
  return { mode: "supervisor", config, configGiven, ...common };
}
