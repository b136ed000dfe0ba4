// starter-init: chooses the mode and wires the modules together; no logic of its own.

import { parseArgs, UsageError, type Invocation } from "./cli/args";
import { createInitLogger, initLog } from "./log/init-log";
import { isLogLevel, writeStderr, type LogLevel, type Logger } from "./log/logger";
import { detectRole } from "./pid1/environment";
import { stage1 } from "./pid1/stage1";
import { finish } from "./pid1/stage3";
import { reaper } from "./process/reaper";
import { resumeHardwareWatchdog, startHardwareWatchdog } from "./runtime/hardware-watchdog";
import { CHECK_ARG, RESUME_ARG } from "./runtime/reexec-args";
import type { ResumeInput } from "./runtime/reexec";
import { catchForwardedSignals, runMainProgram } from "./runtime/main-program";
import { releaseStartupMemoryLater } from "./runtime/memory";
import { buildingSnapshot, prepareSnapshot } from "./snapshot";

// The supervisor, its config loader and control socket, and the client are loaded only by the
// modes that use them: the `--` mode starts its main program without paying for them.
const supervisorModule = () => import("./runtime/supervisor");
const controlServerModule = () => import("./control/server");
const httpListenerModule = () => import("./http/listener");
const clientModule = () => import("./cli/client");
const reexecModule = () => import("./runtime/reexec");

const EXIT_USAGE = 2;

/** The level asked for (--log-level, -v, STARTER_LOG_LEVEL, starter.loglevel=), or null. */
function askedLogLevel(invocation: Exclude<Invocation, { mode: "help" | "version" | "client" }>, kernel?: Map<string, string>): LogLevel | null {
  if (invocation.logLevel) return invocation.logLevel;
  const fromEnv = process.env.STARTER_LOG_LEVEL;
  if (isLogLevel(fromEnv)) return fromEnv;
  const fromKernel = kernel?.get("loglevel");
  return isLogLevel(fromKernel) ? fromKernel : null;
}

function logLevelFor(invocation: Exclude<Invocation, { mode: "help" | "version" | "client" }>): LogLevel {
  const asked = askedLogLevel(invocation);
  if (asked) return asked;
  // The `--` mode is as quiet as tini unless asked; the supervisor tells what it does.
  return invocation.mode === "main-program" ? "warn" : "info";
}

/** A bug must not take PID 1 down (a VM's kernel would panic): log it and keep serving. */
function keepAliveOnErrors(log: Logger): void {
  process.on("uncaughtException", (err) => log.fatal({ err }, "uncaught exception; the init keeps running"));
  process.on("unhandledRejection", (err) => log.fatal({ err }, "unhandled promise rejection; the init keeps running"));
}

async function main(): Promise<void> {
  // `--` mode: catch every signal to forward before anything else (what comes meanwhile waits).
  if (process.argv.slice(2).includes("--") && process.argv[2] !== "--get-yargs-completions") catchForwardedSignals();
  // An in-place upgrade: the running init asks a binary whether it can take over, then execs it to resume.
  if (process.argv[2] === CHECK_ARG) {
    process.stdout.write(`${(await reexecModule()).checkAnswer()}\n`);
    return;
  }
  let argv = process.argv.slice(2);
  let resume: ResumeInput | null = null;
  if (process.argv[2] === RESUME_ARG) {
    try {
      resume = (await reexecModule()).readResumeState(Number(process.argv[3]));
      argv = resume.kind === "state" ? resume.state.argv : resume.frozen.argv;
    } catch (err) {
      writeStderr(`starter-init: the state of the init before cannot be read (${(err as Error).message}); booting afresh\n`);
      argv = [];
    }
  }
  let invocation: Invocation;
  try {
    invocation = await parseArgs(argv);
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
    // A VM's PID 1 that returned here would panic the kernel: boot as if nothing had been asked.
    if (detectRole() !== "vm") return;
    invocation = await parseArgs([]);
    if (invocation.mode === "help" || invocation.mode === "version") return;
  }
  if (invocation.mode === "client") {
    process.exitCode = await (await clientModule()).runClient(invocation);
    return;
  }

  const log = createInitLogger({
    level: logLevelFor(invocation),
    levelAsked: askedLogLevel(invocation) !== null,
    format: invocation.logFormat ?? undefined,
    fileLater: invocation.mode === "supervisor",
  });
  keepAliveOnErrors(log);
  if (invocation.mode === "plan") {
    process.exitCode = await (await supervisorModule()).printPlan(log, invocation);
    return;
  }

  const { role, kernel } = stage1(log, {
    mount: invocation.mount,
    quiet: invocation.mode === "main-program" || resume !== null,
    resumed: resume !== null,
    onKernelWords: (words) => {
      const asked = askedLogLevel(invocation, words);
      if (!asked) return;
      log.level = asked;
      initLog.levelAsked();
    },
  });
  reaper.start();
  // What runs from here on may run for long: what only the start needed is given back soon.
  releaseStartupMemoryLater(log);
  // The device the init before kept open across the exec is petted on; never opened twice.
  const handedWatchdog = resume?.kind === "state" ? resume.state.watchdog : resume?.kind === "downgrade" ? resume.frozen.watchdog : null;
  if (handedWatchdog) resumeHardwareWatchdog(log, handedWatchdog);
  else if (role === "vm") startHardwareWatchdog(log, kernel);
  if (resume?.kind === "downgrade") await (await reexecModule()).stopChildrenOf(resume.frozen, log);

  if (invocation.mode === "main-program") {
    const code = await runMainProgram(log, invocation);
    finish(log, role, code);
    return;
  }
  const { runSupervisor } = await supervisorModule();
  await controlServerModule(); // registers the control socket with the supervisor
  await httpListenerModule(); // registers the HTTP listener (off unless settings.http.listen)
  await runSupervisor(log, {
    role,
    kernel,
    invocation,
    argv,
    resume: resume?.kind === "state" ? resume : null,
    downgrade: resume?.kind === "downgrade" ? resume : null,
  });
}

function start(): void {
  main().catch((err) => {
    writeStderr(`starter-init: ${(err as Error).stack ?? String(err)}\n`);
    // A VM's PID 1 must not exit (the kernel would panic): stay, so the console shows what went wrong.
    // Anywhere else a failure this early is fatal and must say so with a non-zero code.
    if (detectRole() === "vm") setInterval(() => {}, 1 << 30);
    else process.exit(1);
  });
}

// The single executable starts from a V8 startup snapshot of this bundle (native/sea.mjs): there this
// file is evaluated once, at build time, and start() runs at every start (init/snapshot.ts). Under
// plain node (development) it simply runs. The HTTP listener's module is evaluated at run time:
// node:http is not among the built-in modules Node lets a snapshot hold.
if (buildingSnapshot()) prepareSnapshot(start, () => [supervisorModule(), controlServerModule(), clientModule()]);
else start();
