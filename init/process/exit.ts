// One exit record per process (execa's idea): how it ended, decoded once from the raw wait status.

import { signalName } from "../core/signals";

export interface ExitRecord {
  pid: number;
  /** Exit code when the process exited normally, else null. */
  code: number | null;
  /** Signal number when the process was killed by a signal, else null. */
  signal: number | null;
  /** "SIGKILL" etc., or null. */
  signalName: string | null;
  coreDumped: boolean;
  /** Raw wait status as returned by waitpid. */
  status: number;
}

export { signalName };

/** Decodes a raw wait status the way the WIF* macros do. */
export function decodeStatus(pid: number, status: number): ExitRecord {
  const termSignal = status & 0x7f;
  if (termSignal === 0) {
    return { pid, code: (status >> 8) & 0xff, signal: null, signalName: null, coreDumped: false, status };
  }
  return {
    pid,
    code: null,
    signal: termSignal,
    signalName: signalName(termSignal),
    coreDumped: (status & 0x80) !== 0,
    status,
  };
}

/** The shell convention (tini, dumb-init): the exit code, or 128 + the signal number. */
export function shellExitCode(exit: ExitRecord): number {
  return exit.code ?? 128 + (exit.signal ?? 0);
}

/** "exited with 3", "killed by SIGKILL (core dumped)". */
export function describeExit(exit: ExitRecord): string {
  if (exit.code !== null) return `exited with ${exit.code}`;
  return `killed by ${exit.signalName}${exit.coreDumped ? " (core dumped)" : ""}`;
}
