// Signal numbers and names: a static table (os.constants.signals), no I/O.

import { constants } from "node:os";

// The first name of a number wins: SIGABRT rather than its alias SIGIOT, SIGIO rather than SIGPOLL.
const NAMES = new Map<number, string>();
for (const [name, number] of Object.entries(constants.signals)) if (!NAMES.has(number)) NAMES.set(number, name);

/**
 * The real-time signals a program may use. The kernel numbers them 32–64, and glibc (the only C
 * library the binary runs on) keeps 32 and 33 for its threads: SIGRTMIN is 34, SIGRTMAX 64.
 * native signalRange() reports the library's values; a test holds them equal to these.
 */
export const SIGRTMIN = 34;
export const SIGRTMAX = 64;

/** "SIGKILL" for 9, "SIGRTMIN+2" for 36; "signal 99" for a number without a name. */
export function signalName(signal: number): string {
  const name = NAMES.get(signal);
  if (name) return name;
  if (signal === SIGRTMIN) return "SIGRTMIN";
  if (signal === SIGRTMAX) return "SIGRTMAX";
  if (signal > SIGRTMIN && signal < SIGRTMAX) return `SIGRTMIN+${signal - SIGRTMIN}`;
  return `signal ${signal}`;
}

/**
 * Signals the init keeps or cannot catch, with the reason; every other one of 1–31 and
 * SIGRTMIN…SIGRTMAX is forwarded to the main program in `--` mode.
 */
export const NOT_FORWARDED: ReadonlyMap<number, string> = new Map([
  [constants.signals.SIGKILL, "cannot be caught"],
  [constants.signals.SIGSTOP, "cannot be caught"],
  [constants.signals.SIGCHLD, "the init's reaper needs it: it reports the exits of its own children"],
  [constants.signals.SIGSEGV, "a fault of the init itself (synchronous): it must crash the init, not travel"],
  [constants.signals.SIGBUS, "a fault of the init itself (synchronous)"],
  [constants.signals.SIGILL, "a fault of the init itself (synchronous)"],
  [constants.signals.SIGFPE, "a fault of the init itself (synchronous)"],
  [constants.signals.SIGSYS, "a fault of the init itself (synchronous)"],
  [constants.signals.SIGABRT, "the init's own abort()"],
  [constants.signals.SIGTRAP, "a debugger's breakpoint in the init"],
]);

/** Every signal `--` mode forwards, ascending: 1–31 without NOT_FORWARDED, then SIGRTMIN…SIGRTMAX. */
export const FORWARDED_SIGNALS: readonly number[] = [
  ...Array.from({ length: 31 }, (_, i) => i + 1).filter((signal) => !NOT_FORWARDED.has(signal)),
  ...Array.from({ length: SIGRTMAX - SIGRTMIN + 1 }, (_, i) => SIGRTMIN + i),
];

/**
 * A signal as people write it: a number ("15"), a name with or without SIG in any case ("TERM",
 * "sigterm"), or a real-time one ("RTMIN", "SIGRTMIN+3", "RTMAX-1"). Returns null when the text is
 * none of these or names no signal of 1–64 (0 only when allowZero).
 */
export function parseSignal(text: string, allowZero = false): number | null {
  const word = text.trim().toUpperCase();
  if (/^\d+$/.test(word)) {
    const number = Number(word);
    if (number === 0) return allowZero ? 0 : null;
    return number >= 1 && number <= SIGRTMAX && number !== 32 && number !== 33 ? number : null;
  }
  const name = word.startsWith("SIG") ? word : `SIG${word}`;
  const realTime = /^SIGRT(MIN|MAX)(?:([+-])(\d+))?$/.exec(name);
  if (realTime) {
    const base = realTime[1] === "MIN" ? SIGRTMIN : SIGRTMAX;
    const offset = realTime[3] === undefined ? 0 : Number(realTime[3]) * (realTime[2] === "+" ? 1 : -1);
    const number = base + offset;
    return number >= SIGRTMIN && number <= SIGRTMAX ? number : null;
  }
  const number = (constants.signals as Record<string, number | undefined>)[name];
  return number === undefined ? null : number;
}
