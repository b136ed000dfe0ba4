// Where the init's own log goes: pino, written synchronously to a sink with up to three outlets.
//
//  - stderr: JSON lines when no person reads it (a pipe, `docker logs` without -t, a journal), at
//    the log level; pretty lines on a console (a TTY), and there only from `warn` up unless a level
//    was asked for (--log-level, STARTER_LOG_LEVEL, starter.loglevel=): the console's account of
//    events is its event lines (log/console.ts), and a record an event line has told already
//    (marked `onConsole`) is not repeated there. Event lines are printed on a console, and when a
//    log format was chosen (--log-format: the log goes one way, the lines another, on purpose); not
//    when stderr is JSON only because nobody reads it, where the records tell every event already.
//  - a file (supervisor mode): every record as JSON at the log level, rotated by size, in the log
//    directory, for `starter-init logs starter-init` and the Starter's DevReadLog. Records logged
//    before the config named the directory are kept and written first.
//  - followers (`logs starter-init -f`).
//
// PID 1 must never block for long or throw because its log cannot be written: stderr writes retry
// EAGAIN briefly then drop the line, and the file drops what it cannot write.

import tty from "node:tty";
import pino from "pino";
import { prettyFactory } from "pino-pretty";
import { writeStderr, type LogFormat, type Logger, type LogLevel } from "./logger";
import { RotatingFile } from "./server-output";

const STDERR = 2;
/** Records kept for the file until the config says where it is. */
const EARLY_LINES = 1000;

const LEVEL_VALUES: Record<LogLevel, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };

export interface InitLogOptions {
  level: LogLevel;
  /** Given by --log-level / STARTER_LOG_LEVEL: a console then shows that level too. */
  levelAsked: boolean;
  format?: LogFormat;
  /** Supervisor mode: a file is attached once the config is loaded; keep early records for it. */
  fileLater: boolean;
}

type LineListener = (line: string) => void;

export class InitLog {
  /** A person reads stderr (pretty format): records from `warn` up, none an event line told. */
  console = false;
  /** Event lines go to stdout (log/console.ts). */
  eventLines = false;
  private pretty: ((line: string) => string) | null = null;
  /** Lowest level shown on stderr; null: whatever the logger's level is. */
  private stderrFloor: number | null = null;
  private file: RotatingFile | null = null;
  private early: string[] | null = null;
  private readonly listeners = new Set<LineListener>();

  configure(options: InitLogOptions): void {
    const format = options.format ?? (tty.isatty(STDERR) ? "pretty" : "json");
    this.console = format === "pretty";
    this.eventLines = this.console || options.format !== undefined;
    this.pretty = this.console
      ? prettyFactory({
          colorize: tty.isatty(STDERR),
          translateTime: "HH:MM:ss.l",
          // One line per record, the server's name first: a console is read by a person.
          singleLine: true,
          messageFormat: "{if server}{server} {end}{msg}",
          ignore: "pid,hostname,name,server,kind,state,startupLevel,onConsole",
        })
      : null;
    this.stderrFloor = this.console && !options.levelAsked ? LEVEL_VALUES.warn : null;
    this.early = options.fileLater ? [] : null;
  }

  /** A level asked for after start (starter.loglevel=): stderr follows it. */
  levelAsked(): void {
    this.stderrFloor = null;
  }

  /** pino's destination: one JSON line per record. */
  write(line: string): void {
    let record: { level?: number; onConsole?: boolean };
    try {
      record = JSON.parse(line) as typeof record;
    } catch {
      record = {};
    }
    if (this.file) this.file.write(line);
    else if (this.early) {
      this.early.push(line);
      if (this.early.length > EARLY_LINES) this.early.shift();
    }
    for (const listener of this.listeners) {
      try {
        listener(line);
      } catch {
        // A follower's trouble is its own.
      }
    }
    if (this.stderrFloor !== null && (record.level ?? 0) < this.stderrFloor) return;
    if (this.console && record.onConsole) return;
    writeStderr(this.pretty ? this.pretty(line) : line);
  }

  /** Sends every record from now on (and the ones kept since start) to a rotated file as well. */
  attachFile(file: string, maxBytes: number, keep: number): void {
    if (this.file?.file === file) return;
    this.file?.close();
    this.file = new RotatingFile(file, maxBytes, keep);
    for (const line of this.early?.splice(0) ?? []) this.file.write(line);
    this.early = null;
  }

  get filePath(): string | null {
    return this.file?.file ?? null;
  }

  onLine(listener: LineListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

const LEVEL_NAMES = new Map(Object.entries(LEVEL_VALUES).map(([name, value]) => [value, name.toUpperCase()]));

/** A record of the file as a line for a person: "2026-…Z INFO  TangoTest/t01 ready in 52 ms". */
export function describeRecord(line: string): string {
  try {
    const record = JSON.parse(line) as { time?: number; level?: number; server?: string; msg?: string };
    const time = typeof record.time === "number" ? new Date(record.time).toISOString() : "?";
    const level = (LEVEL_NAMES.get(record.level ?? 0) ?? String(record.level)).padEnd(5);
    return `${time} ${level} ${record.server ? `${record.server} ` : ""}${record.msg ?? ""}`;
  } catch {
    return line.replace(/\n$/, "");
  }
}

/** The init's one log. */
export const initLog = new InitLog();

export function createInitLogger(options: InitLogOptions & { name?: string }): Logger {
  initLog.configure(options);
  return pino({ level: options.level, name: options.name ?? "starter-init", base: { pid: process.pid } }, initLog);
}
