// The running supervisor's side of the `tango` source: one watcher per source section, the last good
// read, and the configuration to run (the file alone until the database has answered once, then the
// file with the database's servers and Starter properties). The supervisor gives it a way to apply a
// new configuration; everything else about the source is here.

import type { SupervisorConfig } from "../../core/types";
import type { Logger } from "../../log/logger";
import type { ConfigWithSources } from "../loader";
import { bootServers, type TangoReport } from "./compose";
import type { TangoSnapshot } from "./read";
import { TangoSourceWatcher, type TangoSourceStatus } from "./watcher";

export interface PreparedConfig {
  config: SupervisorConfig;
  /** What a person should know about the sources (a database that did not answer, warnings). */
  notes: string[];
}

export class TangoSourceHub {
  private loaded: ConfigWithSources | null = null;
  private watcher: TangoSourceWatcher | null = null;
  private watcherKey = "";
  private closed = false;
  /** Whether a server of the file is ready (given by check()). */
  private isReady: (name: string) => boolean = () => false;
  /** The last read of any watcher: kept when a reloaded file changes where the source reads. */
  private lastSnapshot: TangoSnapshot | null = null;

  constructor(
    private readonly log: Logger,
    private readonly progress: (line: string) => void,
    /** Runs a new configuration (the database answered in the background). */
    private readonly apply: (config: SupervisorConfig) => void,
  ) {}

  /** Takes a loaded file: the configuration to run with it now. */
  use(loaded: ConfigWithSources): SupervisorConfig {
    this.track(loaded);
    return this.compose(this.current()).config;
  }

  /** Takes a loaded file and keeps a watcher on where its source reads (a new one when that changed). */
  private track(loaded: ConfigWithSources): void {
    this.loaded = loaded;
    if (!loaded.tango) {
      this.watcher?.close();
      this.watcher = null;
      this.watcherKey = "";
      this.lastSnapshot = null;
      return;
    }
    const key = TangoSourceWatcher.key(loaded.tango);
    if (!this.watcher || key !== this.watcherKey) {
      this.watcher?.close();
      this.watcherKey = key;
      this.watcher = new TangoSourceWatcher(loaded.tango, {
        onSnapshot: (snapshot) => this.applySnapshot(snapshot),
        onChange: (status) => this.reportChange(status),
        onError: (err) => this.log.error({ err, source: "tango" }, "tango source: applying what the database said failed"),
      });
      this.log.info(
        { source: "tango", database: loaded.tango.connection.display, host: loaded.tango.host, waitFor: loaded.tango.settings.waitFor },
        "tango source configured",
      );
    }
  }

  /** After each supervisor event: starts reading once the servers the source waits for are ready. */
  check(isReady: (name: string) => boolean): void {
    this.isReady = isReady;
    const watcher = this.watcher;
    if (!watcher || this.closed || !watcher.waiting) return;
    watcher.setWaitingFor(watcher.source.settings.waitFor.filter((name) => !isReady(name)));
  }

  /**
   * For a reload: the configuration of a newly loaded file, with a fresh read of the database. When
   * the database does not answer, the last read stands (nothing is stopped because the database is
   * down) and the watcher tries again in the background. A dry run changes nothing.
   */
  async prepare(loaded: ConfigWithSources, dryRun: boolean): Promise<PreparedConfig> {
    const notes: string[] = [];
    if (!loaded.tango) return { config: loaded.config, notes };
    let snapshot = this.current();
    if (dryRun) {
      try {
        snapshot = await loaded.tango.read();
      } catch (err) {
        notes.push(`tango source: ${(err as Error).message}; the servers of the last read are kept`);
      }
      const composed = snapshot ? loaded.tango.compose(snapshot) : { config: loaded.config, report: null };
      notes.push(...(composed.report?.warnings ?? []).map((warning) => `tango source: ${warning}`));
      return { config: composed.config, notes };
    }
    this.track(loaded);
    const watcher = this.watcher!;
    // A new watcher (the file changed where the source reads) may read at once.
    this.check(this.isReady);
    const fresh = await watcher.refresh();
    if (!fresh) notes.push(`tango source: ${watcher.status().message}`);
    const composed = this.compose(this.current());
    notes.push(...(composed.report?.warnings ?? []).map((warning) => `tango source: ${warning}`));
    return { config: composed.config, notes };
  }

  /** The last read of the database (a reexec carries it to the new init), or null. */
  snapshot(): TangoSnapshot | null {
    return this.loaded ? this.current() : this.lastSnapshot;
  }

  /** In a re-executed init, before use(): the read of the init before, used until the database answers again. */
  restoreSnapshot(snapshot: TangoSnapshot | null): void {
    this.lastSnapshot = snapshot;
  }

  status(): TangoSourceStatus[] {
    return this.watcher ? [this.watcher.status()] : [];
  }

  close(): void {
    this.closed = true;
    this.watcher?.close();
  }

  /** The last read: the watcher's, else the one before the file changed where the source reads. */
  private current(): TangoSnapshot | null {
    const snapshot = this.watcher?.snapshot ?? null;
    if (snapshot) this.lastSnapshot = snapshot;
    return snapshot ?? this.lastSnapshot;
  }

  private compose(snapshot: TangoSnapshot | null): { config: SupervisorConfig; report: TangoReport | null } {
    const loaded = this.loaded!;
    if (!loaded.tango || !snapshot) return { config: loaded.config, report: null };
    const composed = loaded.tango.compose(snapshot);
    this.watcher?.setReport(composed.report);
    for (const warning of composed.report.warnings) this.log.warn({ source: "tango" }, `tango source: ${warning}`);
    return composed;
  }

  private applySnapshot(snapshot: TangoSnapshot): void {
    if (this.closed) return;
    const { config, report } = this.compose(snapshot);
    if (report) {
      const started = bootServers(report);
      const known = report.servers.filter((s) => !s.skipped && s.startLevel === 0);
      this.log.info(
        {
          source: "tango",
          host: report.host,
          database: report.database,
          servers: report.servers.map((s) => ({ name: s.name, mode: s.mode, level: s.level, startLevel: s.startLevel })),
          applied: report.applied,
        },
        `tango source: ${report.servers.length} server(s) of host ${report.host}`,
      );
      this.progress(
        `[  OK  ] tango source: ${report.servers.length} server(s) of host ${report.host} from ${report.database}: ${started.length} started at boot` +
          (known.length ? `, ${known.length} known, not started (${known.map((s) => s.name).join(", ")})` : ""),
      );
    }
    this.apply(config);
  }

  private reportChange(status: TangoSourceStatus): void {
    if (this.closed) return;
    const fields = {
      source: "tango",
      state: status.state,
      database: status.database,
      host: status.host,
      code: status.lastErrorCode,
      failures: status.failures,
      nextAttemptInMs: status.nextAttemptInMs,
    };
    if (status.state === "down") {
      // The console line tells it: the record is marked so that the console's stderr does not repeat it.
      this.log.warn({ ...fields, onConsole: true }, `tango source: ${status.message}`);
      this.progress(`[ WAIT ] tango source: ${status.message}`);
    } else {
      this.log.info(fields, `tango source: ${status.message}`);
    }
  }
}
