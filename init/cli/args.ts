// Command-line grammar (yargs). The same binary is the init, the supervisor and its client:
//
//   starter-init [options] -- cmd args…   run cmd as the main program (tini / dumb-init mode)
//   starter-init [run] [options]           supervise the servers of a config file
//   starter-init plan [--config FILE]      print the start order and exact commands; start nothing
//
// Parsing never exits the process: errors come back as a UsageError for main.ts to report.

import yargs, { type Argv } from "yargs";
import { isLogLevel, LOG_LEVELS, type LogFormat, type LogLevel } from "../log/logger";

declare const STARTER_INIT_VERSION: string;
export const VERSION = typeof STARTER_INIT_VERSION === "string" ? STARTER_INIT_VERSION : "0.0.0-dev";

export const DEFAULT_CONFIG = "/etc/starter-init/config.yaml";

export interface CommonOptions {
  logLevel: LogLevel | null;
  logFormat: LogFormat | null;
  mount: boolean;
}

export type Invocation =
  | ({ mode: "main-program"; command: string; args: string[]; forwardToGroup: boolean; graceMs: number; expectedExitCodes: number[]; config: string | null } & CommonOptions)
  | ({ mode: "supervisor"; config: string; configGiven: boolean } & CommonOptions)
  | ({ mode: "plan"; config: string; json: boolean } & CommonOptions)
  | { mode: "help"; text: string }
  | { mode: "version"; text: string };

export class UsageError extends Error {
  constructor(
    message: string,
    readonly help: string,
  ) {
    super(message);
    this.name = "UsageError";
  }
}

function commonOptions<T>(parser: Argv<T>) {
  return parser
    .option("log-level", { type: "string", choices: LOG_LEVELS as unknown as string[], describe: "level of the init's own log (env STARTER_LOG_LEVEL, kernel starter.loglevel=)" })
    .option("log-format", { type: "string", choices: ["pretty", "json"], describe: "pretty on a TTY, JSON otherwise, unless set" })
    .option("mount", { type: "boolean", default: true, describe: "as PID 1, mount /proc, /sys, /dev, … when missing (--no-mount to skip)" })
    .option("config", { alias: "c", type: "string", describe: `config file (default ${DEFAULT_CONFIG}, env STARTER_CONFIG)` })
    .option("group", { alias: "g", type: "boolean", default: false, describe: "-- mode: forward signals to the main program's whole process group" })
    .option("grace", { alias: "t", type: "number", default: 5, describe: "-- mode: seconds leftover processes get between SIGTERM and SIGKILL" })
    .option("expect-exit", { alias: "e", type: "number", array: true, default: [] as number[], describe: "-- mode: exit code reported as 0 (repeatable), e.g. 143" })
    .option("json", { type: "boolean", default: false, describe: "machine-readable output (plan)" });
}

function buildParser(args: string[]) {
  return commonOptions(yargs(args))
    .scriptName("starter-init")
    .usage("$0 [options] -- command [args…]\n$0 [run] [options]\n$0 <command> [options]")
    .command("run", "supervise the servers of the config file (the default)")
    .command("plan", "print the start order and the exact command of each server; start nothing")
    .parserConfiguration({ "populate--": true, "strip-aliased": true })
    .strictCommands()
    .strictOptions()
    .help(false)
    .version(false)
    .exitProcess(false)
    .fail((message, error) => {
      throw error ?? new UsageError(message, "");
    })
    .wrap(Math.min(100, process.stdout.columns ?? 100));
}

export async function helpText(): Promise<string> {
  return buildParser([]).getHelp();
}

export async function parseArgs(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Invocation> {
  if (args.includes("--help") || args.includes("-h")) return { mode: "help", text: await helpText() };
  if (args.includes("--version") || args.includes("-V")) return { mode: "version", text: VERSION };

  let parsed: Record<string, unknown>;
  try {
    parsed = buildParser(args).parseSync() as Record<string, unknown>;
  } catch (err) {
    throw new UsageError((err as Error).message, await helpText());
  }
  const positional = (parsed._ as (string | number)[]).map(String);
  const rest = (parsed["--"] as string[] | undefined) ?? [];
  const logLevel = typeof parsed.logLevel === "string" && isLogLevel(parsed.logLevel) ? parsed.logLevel : null;
  const common: CommonOptions = {
    logLevel,
    logFormat: (parsed.logFormat as LogFormat | undefined) ?? null,
    mount: parsed.mount !== false,
  };
  const configGiven = typeof parsed.config === "string" || typeof env.STARTER_CONFIG === "string";
  const config = (parsed.config as string | undefined) ?? env.STARTER_CONFIG ?? DEFAULT_CONFIG;
  const help = await helpText();

  if (args.includes("--")) {
    if (positional.length > 0) throw new UsageError(`unexpected argument "${positional[0]}" before --`, help);
    if (rest.length === 0) throw new UsageError("nothing to run after --", help);
    const grace = Number(parsed.grace);
    if (!Number.isFinite(grace) || grace < 0) throw new UsageError(`--grace: expected a number of seconds ≥ 0, got ${String(parsed.grace)}`, help);
    const expected = (parsed.expectExit as number[]).map(Number);
    const badCode = expected.find((code) => !Number.isInteger(code) || code < 0 || code > 255);
    if (badCode !== undefined) throw new UsageError(`--expect-exit: expected an exit code 0..255, got ${badCode}`, help);
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
  const command = positional[0] ?? "run";
  if (positional.length > 1) throw new UsageError(`unexpected argument "${positional[1]}"`, help);
  if (command === "plan") return { mode: "plan", config, json: parsed.json === true, ...common };
  return { mode: "supervisor", config, configGiven, ...common };
}
