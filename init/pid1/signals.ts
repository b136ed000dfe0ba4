// The signals an init answers. Node delivers them on the event loop (libuv's own self-pipe), so a
// handler here may do anything. SIGCHLD is not among them: the addon's reaper owns it.
//
// As PID 1 the kernel drops every signal without a handler, so each one listed here must have one,
// and one with no meaning in the current mode is logged and ignored rather than left to kill us.
//
// The supervisor answers the few signals listed here through process.on(). The `--` mode forwards
// every signal it can (see catchSignals below): it catches them in the addon, because Node cannot
// name the real-time signals and libuv does not say who sent a signal.

import fs from "node:fs";
import net from "node:net";
import { native } from "../native";

export const HANDLED_SIGNALS = [
  "SIGTERM",
  "SIGINT",
  "SIGHUP",
  "SIGQUIT",
  "SIGUSR1",
  "SIGUSR2",
  "SIGWINCH",
  "SIGPWR",
] as const satisfies readonly NodeJS.Signals[];

export type HandledSignal = (typeof HANDLED_SIGNALS)[number];

export function installSignalHandlers(onSignal: (signal: HandledSignal) => void): () => void {
  const handlers = HANDLED_SIGNALS.map((signal) => {
    const handler = () => onSignal(signal);
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  return () => {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  };
}

// ---- `--` mode: every forwarded signal, through the addon -------------------------------------

/** One delivery, as the addon's handler saw it (siginfo). */
export interface CaughtSignal {
  signal: number;
  /** si_code: SI_USER (0) for kill(2), SI_KERNEL (0x80) for the terminal and the kernel, SI_QUEUE (-1), … */
  code: number;
  /** Sender's pid as seen from the init's PID namespace; 0 when it lives outside (docker kill) or is the kernel. */
  pid: number;
  uid: number;
}

const RECORD_BYTES = 16;

/**
 * Catches each of `signals` with the addon's handler: from now on every delivery waits in the pipe
 * until readCaughtSignals() reads it, so the init can catch them first thing and read them once it
 * is ready to act. The handlers replace Node's and libuv's for these signals for the rest of the
 * process's life: nothing else may process.on() one of them afterwards (libuv would take it back).
 * Node's TTY stdout registers SIGWINCH when first touched, so it is touched here, before.
 */
export function catchSignals(signals: readonly number[]): void {
  void process.stdout;
  void process.stderr;
  native().signalPipe();
  for (const signal of signals) native().signalCatch(signal);
}

/** Calls onSignal for every delivery of a caught signal (those waiting first), on the event loop. */
export function readCaughtSignals(onSignal: (caught: CaughtSignal) => void): void {
  const fd = native().signalPipe();
  const socket = new net.Socket({ fd, readable: true, writable: false });
  // The reaper keeps the loop alive; this pipe alone must not.
  socket.unref();
  let pending = Buffer.alloc(0);
  socket.on("data", (chunk: Buffer) => {
    const data = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    const whole = data.length - (data.length % RECORD_BYTES);
    for (let offset = 0; offset < whole; offset += RECORD_BYTES) {
      onSignal({
        signal: data.readInt32LE(offset),
        code: data.readInt32LE(offset + 4),
        pid: data.readInt32LE(offset + 8),
        uid: data.readInt32LE(offset + 12),
      });
    }
    pending = Buffer.from(data.subarray(whole));
  });
}

/** Signal masks of /proc/<pid>/status: which signals the process catches and which it ignores. */
function dispositionMasks(pid: number): { caught: bigint; ignored: bigint } | null {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const mask = (field: string) => BigInt(`0x${new RegExp(`^${field}:\\s*([0-9a-f]+)$`, "m").exec(status)?.[1] ?? "0"}`);
    return { caught: mask("SigCgt"), ignored: mask("SigIgn") };
  } catch {
    return null;
  }
}

/** True when the process has a handler for the signal or ignores it (its default action will not run). */
export function handlesSignal(pid: number, signal: number): boolean {
  const masks = dispositionMasks(pid);
  if (!masks) return false;
  const bit = 1n << BigInt(signal - 1);
  return ((masks.caught | masks.ignored) & bit) !== 0n;
}

/** Live members of a process group, from /proc/<pid>/stat (field 5). */
export function processGroupMembers(pgid: number): number[] {
  let entries: string[];
  try {
    entries = fs.readdirSync("/proc");
  } catch {
    return [];
  }
  const members: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (fields[0] !== "Z" && Number(fields[2]) === pgid) members.push(Number(entry));
    } catch {
      // Gone while we looked.
    }
  }
  return members;
}
