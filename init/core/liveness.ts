// Liveness: the Starter's ping thread as a small machine beside the server's own. While a server is
// ready, the runtime pings its admin device every intervalMs and reports each outcome; this module
// counts them. `failures` pings in a row without an answer make the server unresponsive (the
// Starter's MOVING: the process is there, its device does not answer); one answered ping makes it
// responsive again. Pure: time comes in with each outcome. What is done about an unresponsive server
// (nothing but a report, or an abort and the restart policy) is server.ts's business.

import type { LivenessSpec } from "./types";

export type LivenessState = "responsive" | "unresponsive";

export interface Liveness {
  state: LivenessState;
  /** Failed pings in a row. */
  failures: number;
  /** When the state was last entered (or the check began). */
  since: number;
  /** When the last outcome came in; null before the first. */
  lastPingAt: number | null;
  /** Round trip of the last answered ping, in milliseconds. */
  lastRttMs: number | null;
  /** Why the last failed ping failed (kept until one is answered). */
  lastError: string | null;
  /** Pings answered and failed since the check began. */
  answered: number;
  failed: number;
}

export type PingOutcome = { ok: true; rttMs: number } | { ok: false; error: string };

export function startLiveness(now: number): Liveness {
  return { state: "responsive", failures: 0, since: now, lastPingAt: null, lastRttMs: null, lastError: null, answered: 0, failed: 0 };
}

/** Counts one ping; `change` says when the state flipped with it. */
export function recordPing(
  liveness: Liveness,
  spec: Pick<LivenessSpec, "failures">,
  now: number,
  outcome: PingOutcome,
): { liveness: Liveness; change: LivenessState | null } {
  if (outcome.ok) {
    const next: Liveness = {
      ...liveness,
      failures: 0,
      lastPingAt: now,
      lastRttMs: outcome.rttMs,
      lastError: null,
      answered: liveness.answered + 1,
    };
    if (liveness.state === "responsive") return { liveness: next, change: null };
    return { liveness: { ...next, state: "responsive", since: now }, change: "responsive" };
  }
  const failures = liveness.failures + 1;
  const next: Liveness = { ...liveness, failures, lastPingAt: now, lastError: outcome.error, failed: liveness.failed + 1 };
  if (liveness.state === "responsive" && failures >= spec.failures) return { liveness: { ...next, state: "unresponsive", since: now }, change: "unresponsive" };
  return { liveness: next, change: null };
}
