// Keeps trying the Tango database until it answers, and says where it stands.
//
// States: waiting (for the file's servers named in waitFor to be ready, waitForTimeout at most), connecting (first attempt
// under way), up (the last read succeeded), down (the last attempt failed: the next one comes after an
// exponential backoff, initialDelay doubling up to maxDelay). A successful background attempt hands
// its snapshot to onSnapshot and stops trying: the database is read again only on request (reload).
// A failed reload read keeps what the last successful read found, and tries again in the background.

import { backoffDelay } from "../../core/restart";
import { bootServers, type TangoReport } from "./compose";
import { TangoReadError, type TangoSnapshot } from "./read";
import type { TangoSource } from "./source";

export type TangoSourceState = "waiting" | "connecting" | "up" | "down";

/** The source as `status` shows it (control protocol: StatusResult.sources). */
export interface TangoSourceStatus {
  name: "tango";
  state: TangoSourceState;
  /** The database, without the password. */
  database: string;
  host: string;
  /** waitFor servers not ready yet (state waiting). */
  waitingFor: string[];
  /** Failed attempts since the last success. */
  failures: number;
  lastError: string | null;
  lastErrorCode: string | null;
  /** When the next attempt comes (state down), from now. */
  nextAttemptInMs: number | null;
  /** Since the last successful read; null: never read. */
  lastReadAgoMs: number | null;
  /** Since the state last changed. */
  sinceMs: number;
  /** Servers of the host in the last successful read, and how many of them start at boot. */
  servers: number | null;
  startedAtBoot: number | null;
  /** One line for a person. */
  message: string;
  /** What the last read gave (servers, properties applied and ignored, warnings). */
  report: TangoReport | null;
}

export interface WatcherHooks {
  onSnapshot(snapshot: TangoSnapshot): void;
  /** Each state change (for the log and the console). */
  onChange?(status: TangoSourceStatus, previous: TangoSourceState): void;
  /** onSnapshot threw. */
  onError?(err: unknown): void;
}

export class TangoSourceWatcher {
  private state: TangoSourceState = "waiting";
  private since = Date.now();
  private waitingFor: string[];
  private failures = 0;
  private lastError: TangoReadError | null = null;
  private nextAttemptAt: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** Ends the wait for waitFor servers that do not get ready. */
  private waitDeadline: NodeJS.Timeout | null = null;
  private inFlight: Promise<TangoSnapshot | null> | null = null;
  private closed = false;
  private lastSnapshot: TangoSnapshot | null = null;
  private lastReport: TangoReport | null = null;

  constructor(
    readonly source: TangoSource,
    private readonly hooks: WatcherHooks,
  ) {
    this.waitingFor = [...source.settings.waitFor];
    if (this.waitingFor.length > 0) {
      this.waitDeadline = setTimeout(() => {
        this.waitDeadline = null;
        if (this.closed || this.state !== "waiting") return;
        this.waitingFor = [];
        this.attempt();
      }, source.settings.waitForTimeoutMs);
    }
  }

  /** A fingerprint of what this watcher reads, to tell whether a reloaded file changed it. */
  static key(source: TangoSource): string {
    const { settings } = source;
    return JSON.stringify([source.connection, source.host, settings.waitFor, settings.waitForTimeoutMs, settings.connectTimeoutMs, settings.retry]);
  }

  /** Updates what it waits for; with nothing left, the first attempt starts. */
  setWaitingFor(names: string[]): void {
    if (this.closed || this.state !== "waiting") return;
    this.waitingFor = names;
    if (names.length === 0) this.attempt();
  }

  get snapshot(): TangoSnapshot | null {
    return this.lastSnapshot;
  }

  /** Still waiting for the servers named in waitFor (no attempt made yet). */
  get waiting(): boolean {
    return this.state === "waiting" && !this.closed;
  }

  /** What compose() said about the last snapshot applied. */
  setReport(report: TangoReport | null): void {
    this.lastReport = report;
  }

  /**
   * Reads now (reload). Resolves with the snapshot, or null when the database does not answer (then it
   * keeps trying in the background) or the source still waits for its servers.
   */
  async refresh(): Promise<TangoSnapshot | null> {
    if (this.closed || this.state === "waiting") return null;
    this.cancelTimer();
    return this.run(false);
  }

  close(): void {
    this.closed = true;
    this.cancelTimer();
    this.endWait();
  }

  private endWait(): void {
    if (this.waitDeadline) clearTimeout(this.waitDeadline);
    this.waitDeadline = null;
  }

  status(): TangoSourceStatus {
    const now = Date.now();
    const report = this.lastReport;
    return {
      name: "tango",
      state: this.state,
      database: this.source.connection.display,
      host: this.source.host,
      waitingFor: this.state === "waiting" ? [...this.waitingFor] : [],
      failures: this.failures,
      lastError: this.lastError?.message ?? null,
      lastErrorCode: this.lastError?.code ?? null,
      nextAttemptInMs: this.nextAttemptAt === null ? null : Math.max(0, this.nextAttemptAt - now),
      lastReadAgoMs: this.lastSnapshot ? now - this.lastSnapshot.readAt : null,
      sinceMs: now - this.since,
      servers: report ? report.servers.length : null,
      startedAtBoot: report ? bootServers(report).length : null,
      message: this.describe(now),
      report,
    };
  }

  private describe(now: number): string {
    const servers = this.lastReport
      ? `${this.lastReport.servers.length} server(s) of host ${this.source.host}, ${bootServers(this.lastReport).length} started at boot`
      : null;
    switch (this.state) {
      case "waiting":
        return `waiting for ${this.waitingFor.join(", ")} to be ready before reading ${this.source.connection.display} (${Math.round(this.source.settings.waitForTimeoutMs / 1000)} s at most)`;
      case "connecting":
        return `reading ${this.source.connection.display}`;
      case "up":
        return `${servers ?? "read"}; read ${Math.round((now - (this.lastSnapshot?.readAt ?? now)) / 1000)} s ago`;
      case "down": {
        const next = this.nextAttemptAt === null ? "" : `; next attempt in ${Math.ceil(Math.max(0, this.nextAttemptAt - now) / 1000)} s`;
        const kept = this.lastSnapshot
          ? `; keeping the ${this.lastReport?.servers.length ?? 0} server(s) read ${Math.round((now - this.lastSnapshot.readAt) / 1000)} s ago`
          : "; nothing from the database runs until it answers (the file's servers do)";
        return `database not answering: ${this.lastError?.message ?? "?"} (${this.failures} failed attempt(s))${next}${kept}`;
      }
    }
  }

  private setState(state: TangoSourceState): void {
    if (state === this.state) return;
    const previous = this.state;
    this.state = state;
    this.since = Date.now();
    this.hooks.onChange?.(this.status(), previous);
  }

  private cancelTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.nextAttemptAt = null;
  }

  /** A background attempt: hands a snapshot to onSnapshot. */
  private attempt(): void {
    if (this.closed) return;
    this.cancelTimer();
    void this.run(true);
  }

  private run(background: boolean): Promise<TangoSnapshot | null> {
    if (this.inFlight) return this.inFlight;
    this.endWait();
    if (this.state === "waiting") this.setState("connecting");
    const attempt = this.source
      .read()
      .then((snapshot) => {
        this.inFlight = null;
        if (this.closed) return null;
        this.failures = 0;
        this.lastError = null;
        this.lastSnapshot = snapshot;
        // Applied by onSnapshot (background) or by the caller (reload) before anyone asks for status.
        this.setState("up");
        if (background) {
          try {
            this.hooks.onSnapshot(snapshot);
          } catch (err) {
            // A bug in applying it is not the database's failure: it is not retried as one.
            this.hooks.onError?.(err);
          }
        }
        return snapshot;
      })
      .catch((err: unknown) => {
        this.inFlight = null;
        if (this.closed) return null;
        this.failures++;
        this.lastError = err instanceof TangoReadError ? err : new TangoReadError((err as Error).message ?? String(err), "EUNKNOWN");
        // The database is retried as a crashing server is restarted: doubling delays up to a cap.
        const delay = backoffDelay({ ...this.source.settings.retry, factor: 2 }, this.failures - 1);
        this.nextAttemptAt = Date.now() + delay;
        this.timer = setTimeout(() => this.attempt(), delay);
        const previous = this.state;
        this.state = "down";
        if (previous !== "down") this.since = Date.now();
        // Every failure is reported (with its retry time), not only the change to "down".
        this.hooks.onChange?.(this.status(), previous);
        return null;
      });
    this.inFlight = attempt;
    return attempt;
  }
}
