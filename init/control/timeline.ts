// The boot timeline: for each server, its first start since the init began — when the start was
// decided, when the process was forked, when it got ready or gave up. `analyze blame` and
// `analyze plot` are drawn from it. Fed with the engine's events (Engine.onEvent), after each step.

import type { Server } from "../core/server";
import { eventTime, type Supervisor, type SupervisorEvent } from "../core/supervisor";
import { describeFailure } from "./describe";
import type { TimelineEntry, TimelineResult } from "./protocol";

/** A timeline entry whose times are still monotonic clock readings, not yet relative to the boot. */
type ClockedEntry = TimelineEntry;

const CANCELLING = new Set(["stop-requested", "restart-requested", "hard-kill"]);

export class BootTimeline {
  private bootAt: number | null = null;
  private bootCompleteAt: number | null = null;
  private readonly records = new Map<string, ClockedEntry>();

  /** What a re-executed init goes on from (its times are on the core's clock, which goes on too). */
  save(): { bootAt: number | null; bootCompleteAt: number | null; records: ClockedEntry[] } {
    return { bootAt: this.bootAt, bootCompleteAt: this.bootCompleteAt, records: [...this.records.values()] };
  }

  restore(saved: { bootAt: number | null; bootCompleteAt: number | null; records: ClockedEntry[] }): void {
    this.bootAt = saved.bootAt;
    this.bootCompleteAt = saved.bootCompleteAt;
    for (const record of saved.records) this.records.set(record.name, record);
  }

  observe(event: SupervisorEvent, sup: Supervisor): void {
    const now = eventTime(event);
    if (event.type === "boot" && this.bootAt === null) this.bootAt = now;
    if (this.bootAt !== null && this.bootCompleteAt === null && sup.phase === "running") this.bootCompleteAt = now;
    for (const server of sup.servers.values()) this.observeServer(server, now);
  }

  private observeServer(server: Server, now: number): void {
    const name = server.spec.name;
    let record = this.records.get(name);
    if (record === undefined) {
      const failedBeforeStart = server.state === "failed" && server.reason === "dependency-failed";
      if (server.state !== "starting" && !failedBeforeStart) return;
      this.bootAt ??= server.since;
      record = {
        name,
        level: server.spec.level,
        startAt: server.since,
        forkAt: null,
        readyAt: null,
        endAt: null,
        outcome: "starting",
        reason: null,
        duringBoot: this.bootCompleteAt === null,
      };
      this.records.set(name, record);
    }
    if (record.outcome !== "starting") return;
    if (record.forkAt === null && server.startedAt !== null && server.startedAt >= record.startAt) record.forkAt = server.startedAt;
    switch (server.state) {
      case "starting":
        return;
      case "ready":
        record.readyAt = server.readyAt ?? now;
        record.outcome = "ready";
        return;
      case "stopping":
        if (server.reason === "start-timeout" || server.reason === "readiness-failed" || server.reason === "pre-start-timeout") {
          return this.end(record, "failed", describeFailure(server), now);
        }
        if (CANCELLING.has(server.reason)) return this.end(record, "cancelled", server.reason, now);
        return;
      default:
        return this.end(record, CANCELLING.has(server.reason) ? "cancelled" : "failed", describeFailure(server), now);
    }
  }

  private end(record: ClockedEntry, outcome: "failed" | "cancelled", reason: string, now: number): void {
    record.outcome = outcome;
    record.reason = reason;
    record.endAt = now;
  }

  snapshot(sup: Supervisor, now: number): TimelineResult {
    const origin = this.bootAt ?? now;
    const at = (time: number | null) => (time === null ? null : Math.round((time - origin) * 10) / 10);
    const entries = [...this.records.values()]
      .map((record): TimelineEntry => ({
        ...record,
        startAt: at(record.startAt)!,
        forkAt: at(record.forkAt),
        readyAt: at(record.readyAt),
        endAt: at(record.endAt),
      }))
      .sort((a, b) => (a.forkAt ?? a.startAt) - (b.forkAt ?? b.startAt) || a.level - b.level);
    const notStarted = [...sup.servers.values()]
      .filter((server) => !this.records.has(server.spec.name))
      .map((server) => ({ name: server.spec.name, level: server.spec.level }));
    return { nowMs: at(now)!, bootCompleteMs: at(this.bootCompleteAt), entries, notStarted };
  }
}
