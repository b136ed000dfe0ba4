// `starter-init [options] -- cmd args…`: a drop-in for tini / dumb-init.
//
// The command runs as the main program in a session of its own, as dumb-init runs it: the init gives
// up its controlling terminal and the program takes it when nobody else holds it (`docker run -it`),
// so Ctrl-C and Ctrl-Z reach it directly; under a shell the terminal stays the shell's and its keys
// reach the init, which forwards them. With -c it stays in the init's own process group instead.
//
// Every signal that can be caught is forwarded (to the program's whole group with -g), after the
// -r rewrites; the ones an init must keep are listed in core/signals.ts. Signals the kernel raised at
// the init for its own doing (a write to a closed pipe, giving up the terminal) are not forwarded.
// Job control as in dumb-init: SIGTSTP, SIGTTIN and SIGTTOU are forwarded, then the init stops
// itself, so the shell that started it sees the job stop; SIGCONT resumes it and is forwarded.
//
// The program starts in the caller's working directory; the init then moves to / so that it keeps no
// directory or mount busy. Every orphan is reaped; when the program exits, whatever is left gets
// TERM → grace → KILL, and the init exits with the program's code (128+n after death by signal n;
// 127 / 126 when it could not be started).

import { constants } from "node:os";
import { FORWARDED_SIGNALS, signalName } from "../core/signals";
import type { Logger } from "../log/logger";
import { writeStderr } from "../log/logger";
import { native } from "../native";
import { describeExit, shellExitCode, type ExitRecord } from "../process/exit";
import { reaper } from "../process/reaper";
import { spawnChild, StartError, type Child } from "../process/spawn";
import { leaveWorkingDirectory } from "../pid1/environment";
import { catchSignals, handlesSignal, processGroupMembers, readCaughtSignals, type CaughtSignal } from "../pid1/signals";
import { endLeftovers } from "../pid1/stage3";

const { SIGTSTP, SIGTTIN, SIGTTOU, SIGSTOP } = constants.signals;
const JOB_CONTROL = new Set<number>([SIGTSTP, SIGTTIN, SIGTTOU]);

export interface MainProgramOptions {
  command: string;
  args: string[];
  /** Forward signals to the main program's whole process group (tini -g). */
  forwardToGroup: boolean;
  /** Keep the main program in the init's session and process group (dumb-init -c). */
  singleChild: boolean;
  /** FROM → TO before forwarding (dumb-init -r); TO 0 drops FROM. Later pairs win. */
  rewrites: [number, number][];
  /** PR_SET_PDEATHSIG for the init (tini -p), or null. */
  parentDeathSignal: number | null;
  /** A warning for every orphan reaped (tini -w). */
  warnOnReap: boolean;
  /** Grace period for processes left after the main program exits. */
  graceMs: number;
  /** Exit codes reported as 0 (tini -e), e.g. 143 after a clean `docker stop`. */
  expectedExitCodes: number[];
}

function errorCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? String(err);
}

/**
 * Catches every forwarded signal at once, before the init has parsed its arguments: what arrives
 * while it starts waits in the addon's pipe and is forwarded once the program runs. (The ~50 ms
 * before Node runs the init's first line cannot be covered: a signal then meets Node's defaults.)
 */
export function catchForwardedSignals(): void {
  catchSignals(FORWARDED_SIGNALS);
}

/** Runs the main program to its end and cleans up after it; resolves to the init's exit code. */
export async function runMainProgram(log: Logger, options: MainProgramOptions): Promise<number> {
  const rewrites = new Map(options.rewrites);
  let child: Child | null = null;
  let mainExited = false;
  const early: CaughtSignal[] = [];

  if (options.parentDeathSignal !== null) {
    try {
      native().setParentDeathSignal(options.parentDeathSignal);
    } catch (err) {
      log.warn({ code: errorCode(err) }, `cannot set the parent-death signal (${errorCode(err)})`);
    }
  }
  if (options.warnOnReap) {
    reaper.onOrphan = (exit) => log.warn({ orphan: exit.pid }, `reaped orphan pid ${exit.pid} (${describeExit(exit)})`);
  }

  /** kill(2) to one pid or group; ESRCH means it is exiting already (its exit comes through the reaper). */
  const send = (target: number, signal: number) => {
    try {
      process.kill(target, signal);
      log.debug({ signal: signalName(signal), target }, "forwarded");
    } catch (err) {
      log.debug({ signal: signalName(signal), target, code: errorCode(err) }, "forwarding failed");
    }
  };

  /**
   * A job-control stop as the kernel would deliver it in an ordinary job. The program's own session
   * is an orphaned process group, in which the kernel drops SIGTSTP/SIGTTIN/SIGTTOU for a process
   * that leaves them at their default: such a process gets SIGSTOP (dumb-init sends SIGSTOP to every
   * one); a process that handles or ignores the signal gets the signal itself.
   */
  const sendStop = (main: Child, signal: number) => {
    const targets = options.forwardToGroup ? processGroupMembers(main.pid) : [main.pid];
    for (const pid of targets) send(pid, handlesSignal(pid, signal) ? signal : SIGSTOP);
  };

  const forward = (caught: CaughtSignal) => {
    const { signal } = caught;
    if (caught.pid === process.pid) {
      // SIGPIPE or SIGXFSZ after one of the init's own writes, SIGHUP and SIGCONT after it gave up the terminal.
      log.debug({ signal: signalName(signal), code: caught.code }, "raised by the kernel for the init's own doing: not forwarded");
      return;
    }
    if (mainExited) {
      log.debug({ signal: signalName(signal) }, "ignored: the main program has exited");
      return;
    }
    if (!child) {
      early.push(caught);
      return;
    }
    const to = rewrites.get(signal) ?? signal;
    if (to === 0) {
      log.debug({ signal: signalName(signal) }, "dropped (rewritten to 0)");
      return;
    }
    if (to !== signal) log.debug({ signal: signalName(signal), to: signalName(to) }, "rewritten");
    if (JOB_CONTROL.has(signal) && !rewrites.has(signal) && !options.singleChild) sendStop(child, signal);
    else send(options.forwardToGroup ? -child.pid : child.pid, to);
    if (JOB_CONTROL.has(signal)) stopSelf(log);
  };
  catchSignals(FORWARDED_SIGNALS);
  readCaughtSignals(forward);

  if (!options.singleChild) {
    // Leave the terminal to the program (dumb-init's TIOCNOTTY): as a session leader (docker run -it)
    // the init frees it for the program's session; otherwise the init only stops being tied to it.
    try {
      native().releaseControllingTerminal(0);
      log.debug("gave up the controlling terminal");
    } catch (err) {
      log.debug({ code: errorCode(err) }, "no controlling terminal to give up");
    }
  }

  try {
    child = spawnChild({
      command: options.command,
      args: options.args,
      env: process.env,
      ...(options.singleChild ? {} : { setsid: true, controllingTerminal: true }),
    });
  } catch (err) {
    mainExited = true;
    if (!(err instanceof StartError)) throw err;
    writeStderr(`starter-init: cannot run ${options.command}: ${err.code} (${err.syscall})\n`);
    log.error({ command: options.command, code: err.code, syscall: err.syscall }, "main program could not start");
    await endLeftovers(log, options.graceMs);
    return err.exitCode;
  } finally {
    // The program has its directory; the init keeps none busy.
    leaveWorkingDirectory(log);
  }
  log.debug({ pid: child.pid, command: options.command }, "main program started");
  for (const caught of early.splice(0)) forward(caught);

  const exit: ExitRecord = await child.exited;
  mainExited = true;
  log.info({ pid: exit.pid, code: exit.code, signal: exit.signalName }, `main program ${describeExit(exit)}`);
  await endLeftovers(log, options.graceMs);
  const code = shellExitCode(exit);
  return options.expectedExitCodes.includes(code) ? 0 : code;
}

/**
 * After a job-control signal the init stops too, so that the shell that started it sees the job
 * stop and can resume it with SIGCONT. PID 1 of a namespace cannot be stopped by its own signal
 * (the kernel ignores it), so it does not try.
 */
function stopSelf(log: Logger): void {
  if (process.pid === 1) return;
  log.debug("stopping until SIGCONT");
  process.kill(process.pid, "SIGSTOP");
}
