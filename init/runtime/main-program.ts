// `starter-init [options] -- cmd args…`: a drop-in for tini / dumb-init.
//
// The command runs as the main program in its own process group (the terminal's foreground group
// when there is one); signals are forwarded to it (or to its whole group with --group); every orphan
// is reaped; when it exits, whatever is left gets TERM → grace → KILL, and the init exits with the
// main program's code (128+n after death by signal n; 127 / 126 when it could not be started).

import type { Logger } from "../log/logger";
import { writeStderr } from "../log/logger";
import { describeExit, shellExitCode, type ExitRecord } from "../process/exit";
import { spawnChild, StartError, type Child } from "../process/spawn";
import { installSignalHandlers, type HandledSignal } from "../pid1/signals";
import { endLeftovers } from "../pid1/stage3";

export interface MainProgramOptions {
  command: string;
  args: string[];
  /** Forward signals to the main program's whole process group (tini -g). */
  forwardToGroup: boolean;
  /** Grace period for processes left after the main program exits. */
  graceMs: number;
  /** Exit codes reported as 0 (tini -e), e.g. 143 after a clean `docker stop`. */
  expectedExitCodes: number[];
}

/** Runs the main program to its end and cleans up after it; resolves to the init's exit code. */
export async function runMainProgram(log: Logger, options: MainProgramOptions): Promise<number> {
  let child: Child | null = null;
  let mainExited = false;
  const early: HandledSignal[] = [];
  const forward = (signal: HandledSignal) => {
    if (mainExited) {
      // Handlers stay installed to the end: without one, a signal would kill a non-PID-1 init.
      log.debug({ signal }, "ignored: the main program has exited");
      return;
    }
    if (!child) {
      early.push(signal);
      return;
    }
    const target = options.forwardToGroup ? -child.pid : child.pid;
    try {
      process.kill(target, signal);
      log.debug({ signal, target }, "forwarded");
    } catch (err) {
      // ESRCH: it is exiting already; its exit will arrive through the reaper.
      log.debug({ signal, code: (err as NodeJS.ErrnoException).code }, "forwarding failed");
    }
  };
  installSignalHandlers(forward);

  try {
    child = spawnChild({
      command: options.command,
      args: options.args,
      env: process.env,
      setpgid: true,
      foreground: true,
    });
  } catch (err) {
    mainExited = true;
    if (!(err instanceof StartError)) throw err;
    writeStderr(`starter-init: cannot run ${options.command}: ${err.code} (${err.syscall})\n`);
    log.error({ command: options.command, code: err.code, syscall: err.syscall }, "main program could not start");
    await endLeftovers(log, options.graceMs);
    return err.exitCode;
  }
  log.debug({ pid: child.pid, command: options.command }, "main program started");
  for (const signal of early.splice(0)) forward(signal);

  const exit: ExitRecord = await child.exited;
  mainExited = true;
  log.info({ pid: exit.pid, code: exit.code, signal: exit.signalName }, `main program ${describeExit(exit)}`);
  await endLeftovers(log, options.graceMs);
  const code = shellExitCode(exit);
  return options.expectedExitCodes.includes(code) ? 0 : code;
}
