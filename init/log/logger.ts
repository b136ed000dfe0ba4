// The init's own log: pino, written synchronously to stderr (the console in a VM).
//
// PID 1 must never block for long or throw because its log cannot be written (a closed console, a
// full non-blocking pipe): the destination retries EAGAIN a few times, then drops the line.
// Pretty (human) output on a TTY, JSON otherwise; `--log-format` overrides.

import fs from "node:fs";
import tty from "node:tty";
import pino, { type Logger } from "pino";
import { prettyFactory } from "pino-pretty";

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

export function createLogger(options: { level: LogLevel; format?: LogFormat; name?: string; write?: (text: string) => void }): Logger {
  const write = options.write ?? writeStderr;
  const format = options.format ?? (tty.isatty(STDERR) ? "pretty" : "json");
  const pretty =
    format === "pretty"
      ? prettyFactory({
          colorize: tty.isatty(STDERR),
          translateTime: "HH:MM:ss.l",
          // One line per record, the server's name first: a console is read by a person.
          singleLine: true,
          messageFormat: "{if server}{server} {end}{msg}",
          ignore: "pid,hostname,name,server,kind,state,startupLevel",
        })
      : null;
  const destination = {
    write(line: string) {
      write(pretty ? pretty(line) : line);
    },
  };
  return pino({ level: options.level, name: options.name ?? "starter-init", base: { pid: process.pid } }, destination);
}
