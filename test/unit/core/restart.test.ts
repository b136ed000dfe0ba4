import { describe, expect, it } from "vitest";
import { backoffDelay, decideRestart, isFailure, pruneStartHistory, startsInWindow, type Termination } from "../../../init/core/restart";
import type { RestartPolicy } from "../../../init/core/types";
import { policy } from "./fixtures";

const crash: Termination = { cause: "exited", code: 1, signal: null, uptimeMs: 5000 };
const clean: Termination = { cause: "exited", code: 0, signal: null, uptimeMs: 5000 };
const first = { now: 10_000, streak: 0, startHistory: [5000] };

function withPolicy(overrides: Partial<RestartPolicy>): RestartPolicy {
  return { ...policy, ...overrides };
}

describe("isFailure", () => {
  it.each([
    [clean, false],
    [crash, true],
    [{ cause: "killed-by-signal", code: null, signal: 9, uptimeMs: 10 }, true],
    [{ cause: "exec-failed", code: null, signal: null, uptimeMs: null }, true],
    [{ cause: "start-timeout", code: null, signal: 15, uptimeMs: 30_000 }, true],
    [{ cause: "readiness-failed", code: 0, signal: null, uptimeMs: 100 }, true],
  ] as [Termination, boolean][])("%o → %s", (termination, failure) => {
    expect(isFailure(termination)).toBe(failure);
  });
});

describe("restart policy modes", () => {
  it.each([
    ["on-failure", crash, { action: "restart", delayMs: 1000 }],
    ["on-failure", clean, { action: "stay-stopped" }],
    ["always", crash, { action: "restart", delayMs: 1000 }],
    ["always", clean, { action: "restart", delayMs: 1000 }],
    ["never", crash, { action: "give-up", reason: "policy" }],
    ["never", clean, { action: "stay-stopped" }],
  ] as const)("%s after %o", (mode, termination, decision) => {
    expect(decideRestart(withPolicy({ mode }), termination, first)).toEqual(decision);
  });
});

describe("exponential backoff", () => {
  it("doubles from the initial delay up to the cap", () => {
    const p = withPolicy({ initialDelayMs: 500, factor: 2, maxDelayMs: 5000 });
    expect([0, 1, 2, 3, 4, 5, 50, 5000].map((streak) => backoffDelay(p, streak))).toEqual([500, 1000, 2000, 4000, 5000, 5000, 5000, 5000]);
  });

  it("uses the streak of consecutive failures", () => {
    const decision = decideRestart(policy, crash, { now: 10_000, streak: 3, startHistory: [] });
    expect(decision).toEqual({ action: "restart", delayMs: 8000 });
  });

  it("a factor of 1 gives a constant delay", () => {
    expect(backoffDelay(withPolicy({ factor: 1 }), 7)).toBe(1000);
  });
});

describe("burst limit", () => {
  it("allows burstCount starts within the window", () => {
    // Two recorded starts; the restart at 10_000 + 1000 would be the third: allowed with burstCount 3.
    const decision = decideRestart(policy, crash, { now: 10_000, streak: 0, startHistory: [1000, 9000] });
    expect(decision).toEqual({ action: "restart", delayMs: 1000 });
  });

  it("fails the server when one more start would be more than burstCount", () => {
    const decision = decideRestart(policy, crash, { now: 10_000, streak: 0, startHistory: [1000, 5000, 9000] });
    expect(decision).toEqual({ action: "give-up", reason: "burst-limit" });
  });

  it("counts only the starts inside the window that ends at the restart time", () => {
    // The window ends at 70_000 + 1000: the start at 1000 is outside it (71_000 - 60_000 = 11_000).
    const decision = decideRestart(policy, crash, { now: 70_000, streak: 0, startHistory: [1000, 20_000, 60_000] });
    expect(decision).toEqual({ action: "restart", delayMs: 1000 });
  });

  it("a burstCount of 0 means no limit", () => {
    const decision = decideRestart(withPolicy({ burstCount: 0 }), crash, {
      now: 10_000,
      streak: 0,
      startHistory: [1, 2, 3, 4, 5, 6, 7, 8, 9],
    });
    expect(decision).toEqual({ action: "restart", delayMs: 1000 });
  });

  it("startsInWindow and pruneStartHistory agree on the window edges", () => {
    expect(startsInWindow([0, 1000, 2000, 3000], 2000, 3000)).toBe(2); // (1000, 3000]
    expect(pruneStartHistory([0, 1000, 2000, 3000], withPolicy({ burstWindowMs: 2000 }), 3000)).toEqual([2000, 3000]);
  });
});

describe("minUptimeForRestartMs (the Starter's AutoRestartDuration)", () => {
  const p = withPolicy({ minUptimeForRestartMs: 60_000 });

  it("does not restart a server that ran for less", () => {
    expect(decideRestart(p, { ...crash, uptimeMs: 59_999 }, first)).toEqual({ action: "give-up", reason: "min-uptime" });
  });

  it("does not restart a server that ran exactly that long (it must run longer)", () => {
    expect(decideRestart(p, { ...crash, uptimeMs: 60_000 }, first)).toEqual({ action: "give-up", reason: "min-uptime" });
  });

  it("restarts a server that ran longer", () => {
    expect(decideRestart(p, { ...crash, uptimeMs: 60_001 }, first)).toEqual({ action: "restart", delayMs: 1000 });
  });

  it("never restarts a server that never ran", () => {
    expect(decideRestart(p, { cause: "exec-failed", code: null, signal: null, uptimeMs: null }, first)).toEqual({
      action: "give-up",
      reason: "min-uptime",
    });
  });

  it("is off at 0", () => {
    expect(decideRestart(policy, { ...crash, uptimeMs: 1 }, first)).toEqual({ action: "restart", delayMs: 1000 });
  });
});
