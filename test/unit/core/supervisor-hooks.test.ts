// Hooks, failsafe servers and deadlines across the whole supervisor, on the real engine with a fake
// world (sim.ts): one server's hook never delays another's fork, probe or timer; a failsafe server
// starts on time whatever holds its level; every wait ends.

import { describe, expect, it } from "vitest";
import { settings, spec, policy } from "./fixtures";
import { Sim } from "./sim";
import { expectNothingLeft } from "../runtime/leaks";

const never = { ...policy, mode: "never" as const };

describe("a preStart that hangs", () => {
  // The case of the issue: a's preStart sleeps, its start timeout is 2 s; b, same level, has no hook.
  const specs = [spec("a", { preStart: ["/bin/sleep", "30"], startTimeoutMs: 2000, preStartTimeoutMs: 2000, restart: never }), spec("b")];

  it("does not delay b's fork, probe or readiness; a fails with pre-start-timeout at its timeout and the hook is stopped", () => {
    const sim = new Sim(specs, settings({ shutdownTimeoutMs: 3000 }), { a: { hookMs: null } });
    sim.send({ type: "boot" });
    expect(sim.spawns()).toEqual([["b", 0]]);
    expect(sim.system.process("a", "pre-start")?.alive).toBe(true);
    sim.runUntil(1000);
    expect(sim.state("b")).toEqual(["ready", "ready"]);
    expect(sim.state("a")).toEqual(["starting", "start-requested"]);
    sim.runUntil(2000);
    expect(sim.signals()).toEqual([["a", 15, 2000]]);
    expect(sim.state("a")).toEqual(["failed", "pre-start-timeout"]);
    expect(sim.system.process("a", "pre-start")).toBeUndefined();
    expect(sim.sup.phase).toBe("running");
    sim.send({ type: "shutdown" });
    sim.runUntil(2500);
    expect(sim.sup.phase).toBe("stopped");
    expectNothingLeft(sim.engine, sim.system, { listeners: 1 });
  });

  it("a shutdown while it runs stops it (TERM, then KILL after the grace) within the shutdown deadline", () => {
    const stubborn = [spec("a", { preStart: ["/bin/sleep", "30"], preStartTimeoutMs: 60_000, stopTimeoutMs: 1000 }), spec("b")];
    const sim = new Sim(stubborn, settings({ shutdownTimeoutMs: 3000 }), { a: { hookMs: null } });
    // The hook ignores TERM.
    sim.system.onSignal = (process, signal) => {
      if (process.owner.role === "server") process.endAt(sim.now + 100, null, signal);
    };
    sim.send({ type: "boot" });
    sim.runUntil(500);
    sim.send({ type: "shutdown" });
    sim.runUntil(10_000);
    const hook = [...sim.system.processes.values()].find((p) => p.owner.role === "pre-start")!;
    expect(hook.signals).toEqual([15, 9]);
    expect(sim.of("shutdown-complete").map((r) => r.at)).toEqual([1500]);
    expectNothingLeft(sim.engine, sim.system, { listeners: 1 });
  });
});

describe("postStop", () => {
  it("runs after each exit; a restart after a crash waits for it, and its own run gets its own timeout", () => {
    const sim = new Sim([spec("a", { postStop: ["/bin/cleanup"], postStopTimeoutMs: 1000 })], settings(), { a: { crashAfterMs: 500, hookMs: 200 } });
    sim.send({ type: "boot" });
    sim.runUntil(600);
    expect(sim.state("a")).toEqual(["stopping", "exited"]);
    expect(sim.sup.servers.get("a")!.hook).toBe("post-stop");
    sim.runUntil(700);
    // postStop ended at 700: the backoff (1 s) counts from there.
    expect(sim.state("a")).toEqual(["backoff", "exited"]);
    sim.runUntil(1700);
    expect(sim.spawns()).toEqual([
      ["a", 0],
      ["a", 1700],
    ]);
  });

  it("a postStop that hangs through a shutdown is killed at the shutdown deadline; nothing is left", () => {
    const sim = new Sim(
      [spec("a", { postStop: ["/bin/cleanup"], postStopTimeoutMs: 60_000 }), spec("b", { level: 2 })],
      settings({ shutdownTimeoutMs: 3000 }),
      {
        a: { hookMs: null },
      },
    );
    sim.system.onSignal = (process, signal) => {
      if (process.owner.role === "server") process.endAt(sim.now + 100, null, signal);
    };
    sim.send({ type: "boot" });
    sim.runUntil(1000);
    sim.send({ type: "shutdown" });
    sim.runUntil(20_000);
    expect(sim.of("shutdown-complete").map((r) => r.at)).toEqual([4000]);
    const hook = [...sim.system.processes.values()].find((p) => p.owner.role === "post-stop")!;
    expect(hook.signals).toEqual([9]);
    expectNothingLeft(sim.engine, sim.system, { listeners: 1 });
  });
});

describe("failsafe servers", () => {
  it("start at their failsafe time while the level before them is held by a server that never gets ready", () => {
    const specs = [
      spec("stuck", { startTimeoutMs: 60_000 }),
      spec("console", { level: 2, failsafeMs: 5000 }),
      spec("app", { level: 2 }),
      spec("late", { level: 3, failsafeMs: 5000 }),
    ];
    const sim = new Sim(specs, settings(), { stuck: { readyAfterMs: null } });
    sim.send({ type: "boot" });
    sim.runUntil(4999);
    expect(sim.spawns()).toEqual([["stuck", 0]]);
    sim.runUntil(5100);
    // Both failsafe servers at 5 s (the level of "late" is behind app, which waits for stuck).
    expect(sim.spawns()).toEqual([
      ["stuck", 0],
      ["console", 5000],
      ["late", 5000],
    ]);
    expect(sim.state("console")).toEqual(["ready", "ready"]);
    expect(sim.state("app")).toEqual(["stopped", "initial"]);
  });

  it("is not kept down by a dependency that failed, and waits for its gates until its time otherwise", () => {
    const specs = [spec("db", { restart: never }), spec("ui", { requires: ["db"], failsafeMs: 30_000 }), spec("ds", { requires: ["db"] })];
    const sim = new Sim(specs, settings(), { db: { spawnFails: "ENOENT" } });
    sim.send({ type: "boot" });
    sim.runUntil(100);
    expect(sim.state("db")).toEqual(["failed", "exec-failed"]);
    expect(sim.state("ds")).toEqual(["failed", "dependency-failed"]);
    expect(sim.state("ui")).toEqual(["ready", "ready"]);
  });

  it("with a dependency that gets ready in time, starts after it as usual", () => {
    const specs = [spec("db"), spec("ui", { requires: ["db"], failsafeMs: 30_000 })];
    const sim = new Sim(specs, settings(), { db: { readyAfterMs: 2000 } });
    sim.send({ type: "boot" });
    sim.runUntil(3000);
    expect(sim.spawns()).toEqual([
      ["db", 0],
      ["ui", 2000],
    ]);
    // Its failsafe timer went with it.
    expect(sim.sup.timers.failsafe).toBeUndefined();
  });

  it("in sequential mode, goes past the one-at-a-time gate at its time", () => {
    const specs = [spec("stuck", { startTimeoutMs: 60_000 }), spec("next"), spec("console", { failsafeMs: 3000 })];
    const sim = new Sim(specs, settings({ startMode: "sequential", interServerWaitMs: 500 }), { stuck: { readyAfterMs: null } });
    sim.send({ type: "boot" });
    sim.runUntil(4000);
    expect(sim.spawns()).toEqual([
      ["stuck", 0],
      ["console", 3000],
    ]);
  });
});
