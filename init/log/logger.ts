// The init's own log (pino; where it goes is init-log.ts) and the writes every output uses.
//
// PID 1 must never block for long or throw because something cannot be written (a closed console, a
// full non-blocking pipe): writes retry EAGAIN a few times, then drop what is left.

import fs from "node:fs";
import type { Logger } from "pino";

export type { Logger };
export type LogFormat = "pretty" | "json";
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const STDERR = 2;
const EAGAIN_RETRIES = 50;

/** Writes a whole string to fd 2; never throws. */
export function writeStderr(text: string): void {
  writeAll(STDERR, text);
}

/** Writes a whole string to an fd, retrying short writes and EAGAIN briefly; never throws. */
export function writeAll(fd: number, text: string | Uint8Array): boolean {
  let buffer = typeof text === "string" ? Buffer.from(text) : text;
  let retries = 0;
  while (buffer.length > 0) {
    try {
      const written = fs.writeSync(fd, buffer);
      buffer = buffer.subarray(written);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EAGAIN" && retries++ < EAGAIN_RETRIES) continue;
      return false;
    }
  }
  return true;
}

export function isLogLevel(value: unknown): value is LogLevel {
  return typeof value === "string" && (LOG_LEVELS as readonly string[]).includes(value);
}
