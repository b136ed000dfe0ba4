// starter-init: chooses the mode and wires the modules together; no logic of its own.

import { parseArgs, UsageError, type Invocation } from "./cli/args";
import { runClient } from "./cli/client";
import "./control/server"; // registers the control socket with the supervisor
import { createLogger, isLogLevel, writeStderr, type LogLevel, type Logger } from "./log/logger";
import { detectRole } from "./pid1/environment";
import { stage1 } from "./pid1/stage1";
import { finish } from "./pid1/stage3";
import { reaper } from "./process/reaper";
import { runMainProgram } from "./runtime/main-program";
import { runSupervisor, printPlan } from "./runtime/supervisor";

const EXIT_USAGE = 2;

function logLevelFor(invocation: Exclude<Invocation, { mode: "help" | "version" | "client" }>, kernel?: Map<string, string>): LogLevel {
  if (invocation.logLevel) return invocation.logLevel;
  const fromEnv = process.env.STARTER_LOG_LEVEL;
  if (isLogLevel(fromEnv)) return fromEnv;
  const fromKernel = kernel?.get("loglevel");
  if (isLogLevel(fromKernel)) return fromKernel;
  // The `--` mode is as quiet as tini unless asked; the supervisor tells what it does.
  return invocation.mode === "main-program" ? "warn" : "info";
}

/** A bug must not take PID 1 down (a VM's kernel would panic): log it and keep serving. */
function keepAliveOnErrors(log: Logger): void {
  process.on("uncaughtException", (err) => log.fatal({ err }, "uncaught exception; the init keeps running"));
  process.on("unhandledRejection", (err) => log.fatal({ err }, "unhandled promise rejection; the init keeps running"));
}

async function main(): Promise<void> {
  let invocation: Invocation;
  try {
    invocation = await parseArgs(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    if (detectRole() === "vm") {
      // A VM's kernel passes stray command-line words to init: never refuse to boot over them.
      writeStderr(`starter-init: ${err.message}; ignoring the arguments\n`);
      invocation = await parseArgs([]);
    } else {
      writeStderr(`starter-init: ${err.message}\nTry "starter-init --help".\n`);
      process.exit(EXIT_USAGE);
    }
  }
  if (invocation.mode === "help" || invocation.mode === "version") {
    process.stdout.write(`${invocation.text}\n`);
    return;
  }
  if (invocation.mode === "client") {
    process.exitCode = await runClient(invocation);
    return;
  }

  const log = createLogger({ level: logLevelFor(invocation), format: invocation.logFormat ?? undefined });
  keepAliveOnErrors(log);
  if (invocation.mode === "plan") {
    process.exitCode = printPlan(log, invocation);
    return;
  }

  const { role, kernel } = stage1(log, { mount: invocation.mount });
  log.level = logLevelFor(invocation, kernel);
  reaper.start();

  if (invocation.mode === "main-program") {
    const code = await runMainProgram(log, invocation);
    finish(log, role, code);
    return;
  }
  await runSupervisor(log, { role, kernel, invocation });
}

main().catch((err) => {
  writeStderr(`starter-init: ${(err as Error).stack ?? String(err)}\n`);
  // A VM's PID 1 must not exit (the kernel would panic): stay, so the console shows what went wrong.
  // Anywhere else a failure this early is fatal and must say so with a non-zero code.
  if (detectRole() === "vm") setInterval(() => {}, 1 << 30);
  else process.exit(1);
});
