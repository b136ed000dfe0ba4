// The console's account of the supervisor, as systemd gives it: one line per event a person cares
// about (`[  OK  ] TangoTest/t01 ready in 52 ms`), beside the servers' own mirrored output. Lines
// go to stdout when a person reads the console, or a log format was chosen (init-log.ts decides);
// with JSON on stderr only because nobody reads it, the log records say the same and no line is printed.
//
// One event, one line: a process exit is told together with what follows from it in the same step
// (`stopped`, `restarting in …`, `failed`), not on a line of its own; the log record behind a line is
// marked `onConsole` so that stderr does not repeat it.

import { initLog } from "./init-log";
import { writeAll } from "./logger";

/** Which log kinds make a console line, and their mark. */
const MARKS: Partial<Record<string, string>> = {
  ready: "  OK  ",
  failed: "FAILED",
  "exec-failed": "FAILED",
  "pre-start-failed": "FAILED",
  "pre-start-timeout": "FAILED",
  "start-timeout": "FAILED",
  "readiness-failed": "FAILED",
  exited: " EXIT ",
  restarting: " EXIT ",
  stopped: " STOP ",
  "stop-timeout": " KILL ",
  killing: " KILL ",
  "post-stop-timeout": " KILL ",
  "kill-timeout": "FAILED",
  unresponsive: "MOVING",
  watchdog: " KILL ",
  remains: " STOP ",
  responsive: "  OK  ",
  boot: " BOOT ",
  "boot-complete": " BOOT ",
  shutdown: " STOP ",
  "shutdown-complete": " STOP ",
  "shutdown-deadline": " KILL ",
};

/** Writes a console line when a person reads the console; returns whether it did. */
export function consoleLine(text: string, write: (text: string) => void = (line) => writeAll(1, line)): boolean {
  if (!initLog.eventLines) return false;
  write(`starter-init: ${text}\n`);
  return true;
}

export class ConsoleReport {
  /** Exit messages waiting, per server, for the event of the same step that follows from them. */
  private readonly pendingExits = new Map<string, string>();

  /** enabled: whether a person reads the console (the unit tests of the engine say yes). */
  constructor(
    private readonly write: (text: string) => void = (text) => writeAll(1, text),
    private readonly enabled: () => boolean = () => initLog.eventLines,
  ) {}

  /** A line as it is (a source's progress, e.g. "[  OK  ] tango source: …"). */
  line(text: string): void {
    if (this.enabled()) this.write(`starter-init: ${text}\n`);
  }

  /**
   * A log effect of the supervisor. Returns true when the console tells it (now or at the end of the
   * step), so that the caller marks its log record `onConsole`.
   */
  event(server: string | null, kind: string, message: string): boolean {
    if (!this.enabled()) return false;
    if (kind === "exited" && server !== null) {
      this.pendingExits.set(server, message);
      return true;
    }
    const mark = MARKS[kind];
    if (!mark) return false;
    const exit = server === null ? undefined : this.pendingExits.get(server);
    let text = message;
    if (exit !== undefined) {
      this.pendingExits.delete(server!);
      text = kind === "stopped" ? `${message}: ${exit}` : `${exit}; ${message}`;
    }
    this.line(`[${mark}] ${server === null ? "" : `${server} `}${text}`);
    return true;
  }

  /** The end of one step: an exit nothing followed from (a restart asked for) gets its own line. */
  endStep(): void {
    for (const [server, exit] of this.pendingExits) this.line(`[${MARKS.exited}] ${server} ${exit}`);
    this.pendingExits.clear();
  }
}
