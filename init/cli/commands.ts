// The client commands of the CLI: their grammar (yargs builders) and what each parses into. Running
// them is client.ts's job; this file only says what was asked.
//
// The Tango Starter's command names are accepted as well: DevStart, DevStop, HardKillServer (aliases of
// start, stop, kill), DevStartAll [level], DevStopAll [level], DevGetRunningServers, DevGetStopServers.

import path from "node:path";
import type { Argv } from "yargs";

export type ActionName = "start" | "stop" | "restart" | "kill";

export type ClientRequest =
  | { kind: "status"; servers: string[]; json: boolean }
  | { kind: "action"; action: ActionName; servers: string[]; wait: boolean; timeoutMs: number; json: boolean }
  | { kind: "all"; action: "start-all" | "stop-all"; level: number | undefined; wait: boolean; timeoutMs: number; json: boolean }
  | { kind: "list"; which: "running" | "stopped" }
  | { kind: "pin"; server: string; pin: "started" | "stopped" }
  | { kind: "unpin"; server: string }
  | { kind: "logs"; server: string; lines: number; follow: boolean }
  | { kind: "reload"; dryRun: boolean; wait: boolean; timeoutMs: number; json: boolean }
  | { kind: "ready"; waitMs: number; json: boolean }
  | { kind: "shutdown"; action: "default" | "poweroff" | "reboot" | "halt"; wait: boolean; timeoutMs: number }
  | { kind: "analyze"; what: "blame" | "plot"; all: boolean; json: boolean }
  | { kind: "reexec"; binary: string | null; force: boolean; timeoutMs: number; json: boolean };

export interface ClientInvocation {
  mode: "client";
  /** The command word as typed (an alias stays an alias, for messages). */
  command: string;
  /** --socket, else STARTER_SOCKET; null: found from the config file, else the default. */
  socket: string | null;
  /** --config, else STARTER_CONFIG; null: the default config file. */
  config: string | null;
  /** --color / --no-color; null: colours only on a TTY (and without NO_COLOR). */
  color: boolean | null;
  request: ClientRequest;
}

type AnyArgv = Argv<Record<string, unknown>>;
type Parsed = Record<string, unknown>;

interface ClientCommand {
  /** The command word and its aliases. */
  names: string[];
  /** yargs command string: name, positionals, aliases. */
  usage: string | string[];
  describe: string;
  builder: (y: AnyArgv) => AnyArgv;
  request: (parsed: Parsed, word: string) => ClientRequest;
}

export const DEFAULT_WAIT_TIMEOUT_S = 120;

/** Options every client command has. */
export function clientOptions<T>(parser: Argv<T>): AnyArgv {
  return (parser as unknown as AnyArgv)
    .option("socket", {
      type: "string",
      describe: "the init's control socket (env STARTER_SOCKET; default: controlSocket of the config file, else /run/starter-init.sock)",
    })
    .option("config", { alias: "c", type: "string", describe: "config file whose settings.controlSocket names the socket (env STARTER_CONFIG)" })
    .option("color", { type: "boolean", describe: "colours (default: only on a TTY, and not when NO_COLOR is set)" });
}

function json(y: AnyArgv): AnyArgv {
  return y.option("json", { type: "boolean", default: false, describe: "machine-readable output (JSON)" });
}

function waiting(y: AnyArgv): AnyArgv {
  return y
    .option("wait", { type: "boolean", default: true, describe: "wait for the outcome (--no-wait: return once the request is taken)" })
    .option("timeout", { type: "number", default: DEFAULT_WAIT_TIMEOUT_S, describe: "seconds to wait for the outcome" });
}

function seconds(value: unknown, option: string, allowZero = false): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || (!allowZero && n === 0))
    throw new Error(`${option}: expected a number of seconds${allowZero ? " ≥ 0" : " > 0"}, got ${String(value)}`);
  return Math.round(n * 1000);
}

function levelOf(value: unknown, option: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${option}: expected a level (an integer ≥ 0), got ${String(value)}`);
  return n;
}

function names(value: unknown): string[] {
  return (Array.isArray(value) ? value : value === undefined ? [] : [value]).map(String);
}

const serversPositional = (y: AnyArgv) =>
  y.positional("servers", { type: "string", array: true, describe: "server names or glob patterns (quote them: 'TangoTest/*')" });

function action(name: ActionName, describe: string, aliases: string[]): ClientCommand {
  return {
    names: [name, ...aliases],
    usage: [`${name} <servers..>`, ...aliases],
    describe,
    builder: (y) => json(waiting(serversPositional(y))),
    request: (p) => ({
      kind: "action",
      action: name,
      servers: names(p.servers),
      wait: p.wait !== false,
      timeoutMs: seconds(p.timeout, "--timeout"),
      json: p.json === true,
    }),
  };
}

function all(name: "start-all" | "stop-all", starter: string, describe: string): ClientCommand[] {
  const what = name === "start-all" ? "start" : "stop";
  return [
    {
      names: [name],
      usage: name,
      describe,
      builder: (y) => json(waiting(y.option("level", { alias: "l", type: "number", describe: `only the servers of this level (default: every level)` }))),
      request: (p) => ({
        kind: "all",
        action: name,
        level: levelOf(p.level, "--level"),
        wait: p.wait !== false,
        timeoutMs: seconds(p.timeout, "--timeout"),
        json: p.json === true,
      }),
    },
    {
      names: [starter],
      usage: `${starter} [level]`,
      describe: `the Starter's ${starter}: ${what} the servers of a level (all levels without one)`,
      builder: (y) => json(waiting(y.positional("level", { type: "string", describe: "a startup level" }))),
      request: (p) => ({
        kind: "all",
        action: name,
        level: levelOf(p.level, "level"),
        wait: p.wait !== false,
        timeoutMs: seconds(p.timeout, "--timeout"),
        json: p.json === true,
      }),
    },
  ];
}

export const CLIENT_COMMANDS: ClientCommand[] = [
  {
    names: ["status"],
    usage: "status [servers..]",
    describe: "state of every server (or of those named / matching a glob): a table, or --json",
    builder: (y) => json(serversPositional(y)),
    request: (p) => ({ kind: "status", servers: names(p.servers), json: p.json === true }),
  },
  action("start", "start servers and wait until they are ready", ["DevStart"]),
  action("stop", "stop servers (stop signal, SIGKILL after their stop timeout) and wait until they are gone", ["DevStop"]),
  action("restart", "stop and start servers again; wait until they are ready", []),
  action("kill", "SIGKILL servers now (the Starter's HardKillServer)", ["HardKillServer"]),
  ...all("start-all", "DevStartAll", "start every server of a level (--level N) or of every level, in level order"),
  ...all("stop-all", "DevStopAll", "stop every server of a level (--level N) or all, in reverse level order"),
  {
    names: ["DevGetRunningServers"],
    usage: "DevGetRunningServers [all]",
    describe: "the Starter's DevGetRunningServers: names of the servers that are ON (ready), one per line",
    builder: (y) => y.positional("all", { type: "string", describe: "accepted for the Starter's sake; every server is controlled here" }),
    request: () => ({ kind: "list", which: "running" }),
  },
  {
    names: ["DevGetStopServers"],
    usage: "DevGetStopServers [all]",
    describe: "the Starter's DevGetStopServers: names of the servers that are FAULT (no process), one per line",
    builder: (y) => y.positional("all", { type: "string", describe: "accepted for the Starter's sake; every server is controlled here" }),
    request: () => ({ kind: "list", which: "stopped" }),
  },
  {
    names: ["pin"],
    usage: "pin <server>",
    describe: "hold a server started (--started) or stopped (--stopped): no automatic restart or stop while pinned",
    builder: (y) =>
      y
        .positional("server", { type: "string", describe: "a server name" })
        .option("started", { type: "boolean", describe: "start it if needed and keep it so" })
        .option("stopped", { type: "boolean", describe: "stop it if needed and keep it so" }),
    request: (p) => {
      if ((p.started === true) === (p.stopped === true)) throw new Error("pin: give exactly one of --started and --stopped");
      return { kind: "pin", server: String(p.server), pin: p.started === true ? "started" : "stopped" };
    },
  },
  {
    names: ["unpin"],
    usage: "unpin <server>",
    describe: "release a pin: the server is supervised as usual again",
    builder: (y) => y.positional("server", { type: "string", describe: "a server name" }),
    request: (p) => ({ kind: "unpin", server: String(p.server) }),
  },
  {
    names: ["logs"],
    usage: "logs <server>",
    describe: "the last lines of a server's output (its log file, or what the init kept); -f to follow",
    builder: (y) =>
      y
        .positional("server", { type: "string", describe: "a server name" })
        .option("lines", { alias: "n", type: "number", default: 20, describe: "how many lines" })
        .option("follow", { alias: "f", type: "boolean", default: false, describe: "then print new lines as they come (until interrupted)" }),
    request: (p) => {
      const lines = Number(p.lines);
      if (!Number.isInteger(lines) || lines < 0) throw new Error(`--lines: expected a count ≥ 0, got ${String(p.lines)}`);
      return { kind: "logs", server: String(p.server), lines, follow: p.follow === true };
    },
  },
  {
    names: ["reload"],
    usage: "reload",
    describe: "re-read the config file and apply the difference: start added servers, stop removed ones, restart changed ones",
    builder: (y) => json(waiting(y.option("dry-run", { type: "boolean", default: false, describe: "only print what would change" }))),
    request: (p) => ({ kind: "reload", dryRun: p.dryRun === true, wait: p.wait !== false, timeoutMs: seconds(p.timeout, "--timeout"), json: p.json === true }),
  },
  {
    names: ["ready"],
    usage: "ready",
    describe: "exit 0 when every server that should run is ready, 1 otherwise (HEALTHCHECK, Kubernetes exec probes)",
    builder: (y) =>
      json(y.option("wait", { alias: "w", type: "number", default: 0, describe: "wait up to this many seconds for readiness (and for the init to answer)" })),
    request: (p) => ({ kind: "ready", waitMs: seconds(p.wait, "--wait", true), json: p.json === true }),
  },
  {
    names: ["shutdown"],
    usage: "shutdown",
    describe: "stop every server in order, then exit (container) or power off (VM)",
    builder: (y) => waiting(y),
    request: (p) => ({ kind: "shutdown", action: "default", wait: p.wait !== false, timeoutMs: seconds(p.timeout, "--timeout") }),
  },
  ...(["poweroff", "reboot", "halt"] as const).map((word): ClientCommand => ({
    names: [word],
    usage: word,
    describe: `VM only: stop every server in order, then ${word === "reboot" ? "restart the machine" : word === "halt" ? "halt the machine" : "power off"}`,
    builder: (y) => waiting(y),
    request: (p) => ({ kind: "shutdown", action: word, wait: p.wait !== false, timeoutMs: seconds(p.timeout, "--timeout") }),
  })),
  {
    names: ["reexec"],
    usage: "reexec",
    describe: "replace the running init with a new binary (default: its own executable), every server kept running",
    builder: (y) =>
      json(
        y
          .option("binary", { type: "string", describe: "the binary to run (a path; relative to this directory)" })
          .option("force", { type: "boolean", default: false, describe: "also a binary that cannot read this init's state (a downgrade: the servers restart)" })
          .option("timeout", { type: "number", default: 60, describe: "seconds to wait for the new init to answer" }),
      ),
    request: (p) => ({
      kind: "reexec",
      binary: typeof p.binary === "string" ? path.resolve(p.binary) : null,
      force: p.force === true,
      timeoutMs: seconds(p.timeout, "--timeout"),
      json: p.json === true,
    }),
  },
  {
    names: ["analyze"],
    usage: "analyze <what>",
    describe: "the boot: blame (servers by time to ready) or plot (an SVG timeline: starter-init analyze plot > boot.svg)",
    builder: (y) =>
      json(
        y
          .positional("what", { choices: ["blame", "plot"], describe: "blame or plot" })
          .option("all", { type: "boolean", default: false, describe: "also the servers first started after the boot (start, start-all, reload)" }),
      ),
    request: (p) => ({ kind: "analyze", what: p.what === "plot" ? "plot" : "blame", all: p.all === true, json: p.json === true }),
  },
];

export function clientInvocation(command: ClientCommand, parsed: Parsed, env: NodeJS.ProcessEnv): ClientInvocation {
  const word = String((parsed._ as unknown[])[0]);
  const extra = (parsed._ as unknown[]).slice(1);
  if (extra.length) throw new Error(`unexpected argument "${String(extra[0])}"`);
  return {
    mode: "client",
    command: word,
    socket: (parsed.socket as string | undefined) ?? env.STARTER_SOCKET ?? null,
    config: (parsed.config as string | undefined) ?? env.STARTER_CONFIG ?? null,
    color: typeof parsed.color === "boolean" ? parsed.color : null,
    request: command.request(parsed, word),
  };
}
