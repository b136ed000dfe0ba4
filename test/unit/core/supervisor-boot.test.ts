// Boot and start-all with a fake clock: which servers are forked at which time.

import { describe, expect, it } from "vitest";
import { bootPlan } from "../../../init/core/supervisor";
import { policy, settings, spec } from "./fixtures";
import { Sim } from "./sim";

const never = { ...policy, mode: "never" as const };

describe("parallel boot", () => {
  const specs = [spec("a"), spec("b"), spec("c"), spec("d", { level: 2 }), spec("e", { level: 2 })];
  const ready = { a: { readyAfterMs: 50 }, b: { readyAfterMs: 120 }, c: { readyAfterMs: 80 }, d: { readyAfterMs: 30 }, e: { readyAfterMs: 30 } };

  it("forks a level back to back; the next level after the slowest is ready + interLevelWait", () => {
    const sim = new Sim(specs, settings({ interLevelWaitMs: 1000 }), ready);
    sim.send({ type: "boot" });
    sim.runUntil(10_000);
    expect(sim.spawns()).toEqual([
      ["a", 0],
      ["b", 0],
      ["c", 0],
      ["d", 1120],
      ["e", 1120],
    ]);
    expect(sim.sup.phase).toBe("running");
    expect(
      sim
        .of("log")
        .filter((r) => r.effect.kind === "boot-complete")
        .map((r) => r.at),
    ).toEqual([1150]);
  });

  it("level 2 is not forked while one server of level 1 is still starting", () => {
    const sim = new Sim(specs, settings(), { ...ready, b: { readyAfterMs: 4000 } });
    sim.send({ type: "boot" });
    sim.runUntil(3999);
    expect(sim.spawns().map(([name]) => name)).toEqual(["a", "b", "c"]);
    expect(sim.sup.phase).toBe("booting");
    sim.runUntil(4000);
    expect(sim.spawns().slice(3)).toEqual([
      ["d", 4000],
      ["e", 4000],
    ]);
  });

  it("interServerWait spaces the forks of a level through timers", () => {
    const sim = new Sim(specs, settings({ interServerWaitMs: 100, interLevelWaitMs: 1000 }), ready);
    sim.send({ type: "boot" });
    sim.runUntil(10_000);
    // b is ready at 100 + 120, c at 200 + 80: level 2 opens at 280 + 1000.
    expect(sim.spawns()).toEqual([
      ["a", 0],
      ["b", 100],
      ["c", 200],
      ["d", 1280],
      ["e", 1380],
    ]);
    expect(
      sim
        .of("arm-timer")
        .filter((r) => r.effect.server === null)
        .map((r) => [r.effect.timer, r.at, r.effect.at]),
    ).toEqual([
      ["inter-server", 0, 100],
      ["inter-server", 100, 200],
      ["inter-level", 280, 1280],
      ["inter-server", 1280, 1380],
    ]);
  });

  it("a start timeout fails the server; its level is done once it has failed", () => {
    const sim = new Sim([spec("a", { startTimeoutMs: 3000, restart: never }), spec("b"), spec("c", { level: 2 })], settings(), { a: { readyAfterMs: null } });
    sim.send({ type: "boot" });
    sim.runUntil(10_000);
    expect(sim.spawns()).toEqual([
      ["a", 0],
      ["b", 0],
      // SIGTERM at 3000, exit 100 ms later: only then is it failed, and level 2 may start.
      ["c", 3100],
    ]);
    expect(sim.signals()).toEqual([["a", 15, 3000]]);
    expect(sim.state("a")).toEqual(["failed", "start-timeout"]);
    expect(sim.sup.phase).toBe("running");
  });

  it("a server that crashes while starting holds its level until it is ready or has failed", () => {
    const sim = new Sim([spec("a"), spec("b", { level: 2 })], settings(), { a: { readyAfterMs: 500, crashAfterMs: 100 } });
    sim.send({ type: "boot" });
    sim.runUntil(1000);
    // Crashed at 100, waiting in backoff: neither ready nor failed, so level 2 waits.
    expect(sim.spawns()).toEqual([["a", 0]]);
    sim.runUntil(10_000);
    // Restarted after 1 s and 2 s; the burst limit (3 starts) then fails it, and level 2 goes on.
    expect(sim.spawns()).toEqual([
      ["a", 0],
      ["a", 1100],
      ["a", 3200],
      ["b", 3300],
    ]);
    expect(sim.state("a")).toEqual(["failed", "burst-limit"]);
  });
});

describe("sequential boot (Starter-compatible)", () => {
  it("one at a time, interServerWait after each is ready, interLevelWait after each level", () => {
    const specs = [spec("a"), spec("b"), spec("c"), spec("d", { level: 2 }), spec("e", { level: 2 })];
    const sim = new Sim(specs, settings({ startMode: "sequential", interServerWaitMs: 500, interLevelWaitMs: 1000 }), {
      a: { readyAfterMs: 50 },
      b: { readyAfterMs: 120 },
      c: { readyAfterMs: 80 },
      d: { readyAfterMs: 30 },
      e: { readyAfterMs: 30 },
    });
    sim.send({ type: "boot" });
    sim.runUntil(20_000);
    expect(sim.spawns()).toEqual([
      ["a", 0],
      ["b", 550],
      ["c", 1170],
      ["d", 2250], // c ready at 1250; interLevelWait (1000) outlasts interServerWait (500)
      ["e", 2780],
    ]);
  });

  it("a failed server does not hold the sequence", () => {
    const sim = new Sim([spec("a", { restart: never }), spec("b")], settings({ startMode: "sequential", interServerWaitMs: 500 }), {
      a: { spawnFails: "ENOENT" },
    });
    sim.send({ type: "boot" });
    sim.runUntil(5000);
    expect(sim.spawns()).toEqual([
      ["a", 0],
      ["b", 500],
    ]);
    expect(sim.state("a")).toEqual(["failed", "exec-failed"]);
  });
});

describe("dependencies refine levels", () => {
  it("a server starts as soon as what it requires is ready, before its level", () => {
    const specs = [spec("db"), spec("slow"), spec("mid", { level: 2 }), spec("ds", { level: 3, requires: ["db"] })];
    const sim = new Sim(specs, settings(), { db: { readyAfterMs: 50 }, slow: { readyAfterMs: 5000 } });
    sim.send({ type: "boot" });
    sim.runUntil(20_000);
    expect(sim.spawns()).toEqual([
      ["db", 0],
      ["slow", 0],
      ["ds", 50],
      ["mid", 5000],
    ]);
  });

  it("a dependency at a higher level is started first", () => {
    const specs = [spec("a", { requires: ["c"] }), spec("b", { level: 2 }), spec("c", { level: 3 })];
    const sim = new Sim(specs, settings(), {});
    sim.send({ type: "boot" });
    sim.runUntil(20_000);
    expect(sim.spawns()).toEqual([
      ["b", 0],
      ["c", 50],
      ["a", 100],
    ]);
  });

  it("`after` waits for ordering only: a failed predecessor does not stop it", () => {
    const specs = [spec("a", { restart: never }), spec("b", { after: ["a"] })];
    const sim = new Sim(specs, settings(), { a: { readyAfterMs: null, exitAfterSignalMs: 10 } });
    sim.send({ type: "boot" });
    sim.runUntil(60_000);
    expect(sim.spawns()).toEqual([
      ["a", 0],
      // Start timeout at 30 s, exit 10 ms after SIGTERM: failed, so b may go.
      ["b", 30_010],
    ]);
  });

  it("dependency-failed: dependents are not started, the rest goes on", () => {
    const specs = [
      spec("db", { restart: never }),
      spec("ds", { level: 2, requires: ["db"] }),
      spec("gui", { level: 3, requires: ["ds"] }),
      spec("other", { level: 2 }),
    ];
    const sim = new Sim(specs, settings(), { db: { spawnFails: "ENOENT" } });
    sim.send({ type: "boot" });
    sim.runUntil(20_000);
    expect(sim.spawns()).toEqual([
      ["db", 0],
      ["other", 0],
    ]);
    expect([sim.state("db"), sim.state("ds"), sim.state("gui"), sim.state("other")]).toEqual([
      ["failed", "exec-failed"],
      ["failed", "dependency-failed"],
      ["failed", "dependency-failed"],
      ["ready", "ready"],
    ]);
    expect(sim.sup.phase).toBe("running");
  });

  it("a required server that is restarting is waited for until it gives up", () => {
    const specs = [spec("db", { restart: { ...policy, burstCount: 2 } }), spec("ds", { requires: ["db"] })];
    const sim = new Sim(specs, settings(), { db: { spawnFails: "ENOENT" } });
    sim.send({ type: "boot" });
    sim.runUntil(500);
    expect(sim.state("ds")).toEqual(["stopped", "initial"]);
    sim.runUntil(20_000);
    // Starts at 0 and 1000; a third would exceed burstCount 2.
    expect(sim.spawns()).toEqual([
      ["db", 0],
      ["db", 1000],
    ]);
    expect(sim.state("ds")).toEqual(["failed", "dependency-failed"]);
    expect(sim.state("db")).toEqual(["failed", "burst-limit"]);
  });

  it("a required server that is not started at boot fails its dependents", () => {
    const specs = [spec("db", { level: 0 }), spec("ds", { requires: ["db"] })];
    const sim = new Sim(specs, settings(), {});
    sim.send({ type: "boot" });
    sim.runUntil(1000);
    expect(sim.spawns()).toEqual([]);
    expect(sim.state("ds")).toEqual(["failed", "dependency-failed"]);
  });

  it("a required server already running is enough", () => {
    const specs = [spec("db", { level: 0 }), spec("ds", { requires: ["db"] })];
    const sim = new Sim(specs, settings(), {});
    sim.request("db", { type: "start" });
    sim.runUntil(100);
    sim.send({ type: "boot" });
    sim.runUntil(1000);
    expect(sim.spawns()).toEqual([
      ["db", 0],
      ["ds", 100],
    ]);
  });
});

describe("exclusive servers", () => {
  it("start alone: after what is starting is ready, and before anything else", () => {
    const specs = [spec("a"), spec("x", { exclusive: true }), spec("b"), spec("c", { level: 2 })];
    const sim = new Sim(specs, settings(), {});
    sim.send({ type: "boot" });
    sim.runUntil(10_000);
    expect(sim.spawns()).toEqual([
      ["a", 0],
      ["x", 50],
      ["b", 100],
      ["c", 150],
    ]);
  });

  it("plan shows the same stages", () => {
    const specs = [spec("a"), spec("x", { exclusive: true }), spec("b"), spec("c", { level: 2 })];
    expect(bootPlan(specs, settings())).toEqual([["a"], ["x"], ["b"], ["c"]]);
  });
});

describe("what boot starts", () => {
  const specs = [spec("l0", { level: 0 }), spec("l1"), spec("manual", { autostart: false }), spec("l5", { level: 5 }), spec("l6", { level: 6 })];

  it("not level 0, not autostart=false, not above maxLevel", () => {
    const sim = new Sim(specs, settings({ maxLevel: 5 }), {});
    sim.send({ type: "boot" });
    sim.runUntil(10_000);
    expect(sim.spawns().map(([name]) => name)).toEqual(["l1", "l5"]);
  });

  it("the boot event may lower maxLevel", () => {
    const sim = new Sim(specs, settings({ maxLevel: 5 }), {});
    sim.send({ type: "boot", maxLevel: 1 });
    sim.runUntil(10_000);
    expect(sim.spawns().map(([name]) => name)).toEqual(["l1"]);
  });

  it("an empty boot is complete at once", () => {
    const sim = new Sim([spec("l0", { level: 0 })], settings(), {});
    sim.send({ type: "boot" });
    expect(sim.sup.phase).toBe("running");
  });

  it("start-all of a level starts that level, autostart or not; start-all starts every level >= 1", () => {
    const sim = new Sim(specs, settings(), {});
    sim.send({ type: "start-all", level: 1 });
    sim.runUntil(1000);
    expect(sim.spawns().map(([name]) => name)).toEqual(["l1", "manual"]);
    sim.send({ type: "start-all" });
    sim.runUntil(2000);
    expect(sim.spawns().map(([name]) => name)).toEqual(["l1", "manual", "l5", "l6"]);
    expect(sim.sup.phase).toBe("stopped"); // start-all is not a boot
  });

  it("start-all of named servers (the Starter device's DevStartAll) keeps the level order across requests sent back to back", () => {
    const named = [spec("a1", { level: 1 }), spec("a2", { level: 1 }), spec("b", { level: 2 }), spec("c", { level: 3 })];
    const sim = new Sim(named, settings({ interLevelWaitMs: 50 }), { a2: { readyAfterMs: 300 } });
    sim.send({ type: "start-all", names: ["a1", "a2"] });
    sim.send({ type: "start-all", names: ["b"] });
    sim.runUntil(2000);
    // b waits for both servers of level 1 (a2 is ready at 300), then interLevelWaitMs; c was not asked for.
    expect(sim.spawns()).toEqual([
      ["a1", 0],
      ["a2", 0],
      ["b", 350],
    ]);
    sim.send({ type: "start-all", names: ["a1", "b"] });
    expect(sim.ignored.at(-1)?.why).toBe("nothing to start");
  });
});
