// The restart decision: what happens after a server's process ended (or never got going) while it
// was wanted up. Pure arithmetic over the RestartPolicy; server.ts applies the verdict.

import type { RestartPolicy } from "./types";

/** Why a process ended while it was wanted up. */
export type FailureCause =
  | "exited" // exit(2) with a code (0 is not a failure under on-failure)
  | "killed-by-signal"
  | "exec-failed" // the spawn never reached a running program
  | "start-timeout" // not ready within startTimeoutMs (we stopped it)
  | "readiness-failed" // the readiness probe gave up (we stopped it)
  | "unresponsive" // ready, then its admin device stopped answering ping (we aborted it: onUnresponsive restart)
  | "pre-start-failed" // preStart could not run, or exited non-zero
  | "pre-start-timeout" // preStart did not finish within preStartTimeoutMs (we stopped it)
  | "watchdog" // ready, then no sd_notify WATCHDOG=1 within its period (we aborted it)
  | "oom-killed" // the kernel's OOM killer ended it (its cgroup's memory.max)
  | "no-main-process"; // forking: the launcher exited 0 but no daemon was found (pidFile, cgroup)

export interface Termination {
  cause: FailureCause;
  code: number | null;
  signal: number | null;
  /** How long the process ran, spawn to exit; null when it never ran. */
  uptimeMs: number | null;
}

export type RestartDecision =
  | { action: "restart"; delayMs: number }
  /** A clean exit that the policy does not restart: the server is simply stopped. */
  | { action: "stay-stopped" }
  /** A failure that is not restarted: the server is failed for this reason. */
  | { action: "give-up"; reason: "policy" | "min-uptime" | "burst-limit" };

export interface RestartHistory {
  now: number;
  /** Consecutive failed runs since the server last stayed ready resetAfterMs. */
  streak: number;
  /** Times of recent starts (see pruneStartHistory). */
  startHistory: readonly number[];
}

/** A clean exit is exit code 0; everything else (a signal, a timeout, exec failing) is a failure. */
export function isFailure(termination: Termination): boolean {
  return !(termination.cause === "exited" && termination.code === 0);
}

/** The delay before restart number streak + 1: initial · factor^streak, capped at maxDelayMs. */
export function backoffDelay(policy: Pick<RestartPolicy, "initialDelayMs" | "factor" | "maxDelayMs">, streak: number): number {
  const delay = policy.initialDelayMs * policy.factor ** streak;
  return Math.min(policy.maxDelayMs, Number.isFinite(delay) ? delay : policy.maxDelayMs);
}

/** How many of the recorded starts fall within the burst window that ends at `at`. */
export function startsInWindow(history: readonly number[], windowMs: number, at: number): number {
  return history.filter((t) => t > at - windowMs && t <= at).length;
}

/** Drops starts too old to matter for the burst limit, so the history stays bounded. */
export function pruneStartHistory(history: readonly number[], policy: RestartPolicy, now: number): number[] {
  return history.filter((t) => t > now - policy.burstWindowMs);
}

export function decideRestart(policy: RestartPolicy, termination: Termination, history: RestartHistory): RestartDecision {
  const failure = isFailure(termination);
  if (policy.mode === "never" || (policy.mode === "on-failure" && !failure)) {
    return failure ? { action: "give-up", reason: "policy" } : { action: "stay-stopped" };
  }
  // The Starter's AutoRestartDuration: a server that did not run longer than this is left down.
  if (policy.minUptimeForRestartMs > 0 && (termination.uptimeMs ?? 0) <= policy.minUptimeForRestartMs) {
    return { action: "give-up", reason: "min-uptime" };
  }
  const delayMs = backoffDelay(policy, history.streak);
  // The restart would be one more start at now + delay; more than burstCount in the window is too many.
  // A burstCount of 0 means no limit.
  const restartAt = history.now + delayMs;
  if (policy.burstCount > 0 && startsInWindow(history.startHistory, policy.burstWindowMs, restartAt) + 1 > policy.burstCount) {
    return { action: "give-up", reason: "burst-limit" };
  }
  return { action: "restart", delayMs };
}
