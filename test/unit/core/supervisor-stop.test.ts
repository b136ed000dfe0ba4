// Shutdown, stop-all, reloads and requests with a fake clock.

import { describe, expect, it } from "vitest";
import { createSupervisor, diffConfig, needsRestart, step } from "../../../init/core/supervisor";
import type { ServerSpec } from "../../../init/core/types";
import { policy, settings, spec } from "./fixtures";
import { Sim, type Behaviour } from "./sim";

const levels = [spec("a"), spec("b"), spec("c", { level: 2 }), spec("d", { level: 3 })];

/** Boots the servers (everything ready by 150 ms) and sets the clock to 1000. */
function booted(specs: ServerSpec[], behaviours: Record<string, Behaviour> = {}, shutdownTimeoutMs = 10_000): Sim {
  const sim = new Sim(specs, settings({ shutdownTimeoutMs }), behaviours);
  sim.send({ type: "boot" });
  sim.runUntil(1000);
  expect(sim.sup.phase).toBe("running");
  return sim;
}

function completions(sim: Sim): number[] {
  return sim.of("shutdown-complete").map((r) => r.at);
}

describe("shutdown", () => {
  it("stops levels in reverse order; a level is signalled all at once, the next once it has stopped", () => {
    const sim = booted(levels);
    sim.send({ type: "shutdown" });
    sim.runUntil(20_000);
    expect(sim.signals()).toEqual([
      ["d", 15, 1000],
      ["c", 15, 1100],
      ["b", 15, 1200],
      ["a", 15, 1200],
    ]);
    expect(sim.kills()).toEqual([]);
    expect(completions(sim)).toEqual([1300]);
    expect(sim.sup.phase).toBe("stopped");
    // The deadline timer was armed and then cancelled.
    const deadline = sim.recorded.flatMap(({ at, effect }) =>
      (effect.type === "arm-timer" || effect.type === "cancel-timer") && effect.timer === "shutdown-deadline" ? [[effect.type, at]] : [],
    );
    expect(deadline).toEqual([
      ["arm-timer", 1000],
      ["cancel-timer", 1300],
    ]);
  });

  it("dependents stop before their dependencies within a level", () => {
    const sim = booted([spec("db"), spec("ds", { requires: ["db"] }), spec("other")]);
    sim.send({ type: "shutdown" });
    sim.runUntil(20_000);
    expect(sim.signals()).toEqual([
      ["other", 15, 1000],
      ["ds", 15, 1000],
      ["db", 15, 1100],
    ]);
  });

  it("SIGKILL after a server's stop timeout; the lower level waits for it", () => {
    const specs = [spec("a"), spec("b"), spec("c", { level: 2, stopTimeoutMs: 2000 }), spec("d", { level: 3 })];
    const sim = booted(specs, { c: { exitAfterSignalMs: null } });
    sim.send({ type: "shutdown" });
    sim.runUntil(20_000);
    expect(sim.signals()).toEqual([
      ["d", 15, 1000],
      ["c", 15, 1100],
      ["b", 15, 3100],
      ["a", 15, 3100],
    ]);
    expect(sim.kills()).toEqual([["c", 3100]]);
    expect(completions(sim)).toEqual([3200]);
    expect(sim.state("c")).toEqual(["stopped", "stop-timeout"]);
  });

  it("the global deadline SIGKILLs everything left, signalled or not", () => {
    const specs = [spec("a"), spec("b"), spec("c", { level: 2, stopTimeoutMs: 60_000 }), spec("d", { level: 3 })];
    const sim = booted(specs, { c: { exitAfterSignalMs: null } }, 3000);
    sim.send({ type: "shutdown" });
    sim.runUntil(20_000);
    expect(sim.signals()).toEqual([
      ["d", 15, 1000],
      ["c", 15, 1100],
    ]);
    expect(sim.kills()).toEqual([
      ["a", 4000],
      ["b", 4000],
      ["c", 4000],
    ]);
    expect(completions(sim)).toEqual([4000]);
    expect(sim.state("a")).toEqual(["stopped", "hard-kill"]);
  });

  it("nothing is restarted while waiting for its turn to stop", () => {
    const sim = booted(levels, { d: { exitAfterSignalMs: 500 } });
    sim.send({ type: "shutdown" });
    sim.runUntil(1050);
    const pid = sim.sup.servers.get("a")!.pid!;
    sim.request("a", { type: "exited", pid, code: 1, signal: null });
    sim.runUntil(20_000);
    expect(sim.state("a")).toEqual(["stopped", "exited"]);
    expect(sim.spawns().filter(([, at]) => at >= 1000)).toEqual([]);
    expect(completions(sim)).toEqual([1700]);
  });

  it("a server in backoff is simply stopped", () => {
    const sim = booted([spec("a")]);
    sim.request("a", { type: "exited", pid: sim.sup.servers.get("a")!.pid!, code: 1, signal: null });
    expect(sim.state("a")[0]).toBe("backoff");
    sim.send({ type: "shutdown" });
    expect(sim.state("a")).toEqual(["stopped", "stop-requested"]);
    expect(completions(sim)).toEqual([1000]);
  });

  it("a server whose spawn is still pending is stopped once it reports", () => {
    const sim = new Sim([spec("a")], settings(), {});
    sim.send({ type: "boot" }); // the spawned event is queued, not delivered yet
    sim.send({ type: "shutdown" });
    sim.runUntil(1000);
    expect(sim.signals()).toEqual([["a", 15, 0]]);
    expect(completions(sim)).toEqual([100]);
  });

  it("with nothing running, shutdown completes at once", () => {
    const sim = new Sim([spec("a")], settings(), {});
    sim.send({ type: "shutdown" });
    expect(completions(sim)).toEqual([0]);
    expect(sim.of("arm-timer")).toEqual([]);
  });

  it("while shutting down, start requests and a second shutdown are refused", () => {
    const sim = booted(levels, { d: { exitAfterSignalMs: 500 } });
    sim.send({ type: "shutdown" });
    sim.send({ type: "shutdown" });
    sim.send({ type: "boot" });
    sim.request("a", { type: "restart" });
    expect(sim.ignored.map((i) => i.why)).toEqual(["shutting down", "shutting down", "shutting down"]);
  });

  it("a pinned-started server is stopped at shutdown too", () => {
    const sim = booted([spec("a")]);
    sim.request("a", { type: "pin", pin: "started" });
    sim.send({ type: "shutdown" });
    sim.runUntil(5000);
    expect(sim.signals()).toEqual([["a", 15, 1000]]);
    expect(completions(sim)).toEqual([1100]);
  });
});

describe("stop-all", () => {
  it("stops one level and leaves the others", () => {
    const sim = booted(levels);
    sim.send({ type: "stop-all", level: 1 });
    sim.runUntil(5000);
    expect(sim.signals()).toEqual([
      ["b", 15, 1000],
      ["a", 15, 1000],
    ]);
    expect([sim.state("a")[0], sim.state("c")[0], sim.state("d")[0]]).toEqual(["stopped", "ready", "ready"]);
    expect(sim.sup.phase).toBe("running");
    expect(sim.of("shutdown-complete")).toEqual([]);
  });

  it("stops every level in reverse order, leaving pinned-started servers alone", () => {
    const sim = booted(levels);
    sim.request("c", { type: "pin", pin: "started" });
    sim.send({ type: "stop-all" });
    sim.runUntil(5000);
    expect(sim.signals()).toEqual([
      ["d", 15, 1000],
      ["b", 15, 1100],
      ["a", 15, 1100],
    ]);
    expect(sim.state("c")[0]).toBe("ready");
  });

  it("removes queued servers from a boot in progress", () => {
    const sim = new Sim(levels, settings(), { a: { readyAfterMs: 5000 } });
    sim.send({ type: "boot" });
    sim.runUntil(100);
    sim.send({ type: "stop-all", level: 3 });
    sim.runUntil(20_000);
    expect(sim.spawns().map(([name]) => name)).toEqual(["a", "b", "c"]);
    expect(sim.sup.phase).toBe("running");
  });

  it("stops only the servers named, in reverse level order across requests sent back to back", () => {
    const sim = booted(levels);
    sim.send({ type: "stop-all", names: ["d"] });
    sim.send({ type: "stop-all", names: ["a"] });
    sim.runUntil(5000);
    expect(sim.signals()).toEqual([
      ["d", 15, 1000],
      ["a", 15, 1100],
    ]);
    expect([sim.state("b")[0], sim.state("c")[0]]).toEqual(["ready", "ready"]);
  });

  it("with nothing to stop, it is ignored", () => {
    const sim = new Sim(levels, settings(), {});
    sim.send({ type: "stop-all", level: 2 });
    expect(sim.ignored.map((i) => i.why)).toEqual(["nothing to stop"]);
  });
});

describe("requests by name", () => {
  it("start and stop of one server, whatever its level", () => {
    const sim = new Sim([spec("manual", { level: 0 })], settings(), {});
    sim.request("manual", { type: "start" });
    sim.runUntil(1000);
    expect(sim.state("manual")).toEqual(["ready", "ready"]);
    sim.request("manual", { type: "stop" });
    sim.runUntil(2000);
    expect(sim.state("manual")).toEqual(["stopped", "stop-requested"]);
  });

  it("an unknown server or a stale timer is ignored", () => {
    const sim = new Sim([spec("a")], settings(), {});
    sim.request("nope", { type: "start" });
    sim.send({ type: "timer", timer: "inter-level", id: 999 });
    expect(sim.ignored.map((i) => i.why)).toEqual(["unknown server nope", "stale inter-level timer"]);
  });

  it("step never changes the supervisor it is given", () => {
    const sup = createSupervisor({ settings: settings(), servers: levels });
    const before = structuredClone(sup);
    const result = step(sup, { type: "boot", now: 0 });
    expect(sup).toEqual(before);
    expect(result.sup).not.toBe(sup);
    expect(result.sup.phase).toBe("booting");
  });
});

describe("diffConfig", () => {
  it("sorts servers into added, removed, changed and unchanged", () => {
    const before = [spec("a"), spec("b"), spec("c")];
    const after = [spec("a"), spec("b", { argv: ["/usr/lib/tango/b", "-v4"] }), spec("d")];
    const diff = diffConfig(before, after);
    expect({
      added: diff.added.map((s) => s.name),
      removed: diff.removed.map((s) => s.name),
      changed: diff.changed.map((s) => s.name),
      unchanged: diff.unchanged.map((s) => s.name),
    }).toEqual({ added: ["d"], removed: ["c"], changed: ["b"], unchanged: ["a"] });
    expect(diff.changed[0]).toBe(after[1]);
  });

  it("compares by content, not by key order", () => {
    const a = spec("a", { env: { X: "1", Y: "2" } });
    const b = spec("a", { env: { Y: "2", X: "1" } });
    expect(diffConfig([a], [b]).unchanged).toEqual([b]);
    expect(diffConfig([a], [spec("a", { env: { X: "1" } })]).changed).toHaveLength(1);
  });
});

describe("config reload", () => {
  it("starts new servers, stops removed ones, restarts changed ones, leaves the rest alone", () => {
    const sim = booted([spec("a"), spec("b"), spec("c"), spec("p")]);
    sim.request("p", { type: "pin", pin: "started" });
    const changedB = spec("b", { argv: ["/usr/lib/tango/b", "-v4"] });
    sim.send({
      type: "config-reloaded",
      servers: [spec("a"), changedB, spec("p", { env: { X: "1" } }), spec("n"), spec("m", { level: 0 })],
    });
    sim.runUntil(5000);
    const since = (at: number) => (r: { at: number }) => r.at >= at;
    expect(sim.signals().filter(([, , at]) => at >= 1000)).toEqual([
      ["c", 15, 1000],
      ["b", 15, 1000],
    ]);
    expect(sim.spawns().filter(([, at]) => at >= 1000)).toEqual([
      ["n", 1000],
      ["b", 1100],
    ]);
    const respawn = sim
      .of("spawn")
      .filter(since(1000))
      .find((r) => r.effect.server === "b")!;
    expect(respawn.effect.spec.argv).toEqual(["/usr/lib/tango/b", "-v4"]);
    expect([...sim.sup.servers.keys()]).toEqual(["a", "b", "p", "n", "m"]);
    expect(sim.state("m")).toEqual(["stopped", "initial"]);
    expect(sim.state("p")).toEqual(["ready", "ready"]);
    expect(sim.sup.servers.get("p")!.spec.env).toEqual({ X: "1" });
    expect(
      sim
        .of("log")
        .filter(since(1000))
        .map((r) => r.effect.kind)
        .filter((k) => k === "pinned" || k === "removed"),
    ).toEqual(["pinned", "removed"]);
  });

  it("a change to when or how a server starts and stops leaves its running process alone; the new spec decides later", () => {
    const sim = booted([spec("a"), spec("b")]);
    const moved = spec("a", { level: 3, autostart: false, stopTimeoutMs: 1, restart: { ...policy, mode: "never" } });
    sim.send({ type: "config-reloaded", servers: [moved, spec("b")] });
    sim.runUntil(5000);
    expect(sim.signals().filter(([, , at]) => at >= 1000)).toEqual([]);
    expect(sim.state("a")).toEqual(["ready", "ready"]);
    expect(sim.sup.servers.get("a")!.spec).toBe(moved);
    expect(needsRestart(spec("a"), moved)).toBe(false);
    expect(needsRestart(spec("a"), spec("a", { argv: ["/usr/lib/tango/a", "-v"] }))).toBe(true);
    expect(needsRestart(spec("a"), spec("a", { log: { ...spec("a").log, file: "/var/log/a.log" } }))).toBe(true);
  });

  it("servers a reload adds wait for a start request when startAdded is false (the Starter's UpdateServersInfo)", () => {
    const sim = booted([spec("a")]);
    sim.send({ type: "config-reloaded", servers: [spec("a"), spec("n")], startAdded: false });
    sim.runUntil(5000);
    expect(sim.spawns().filter(([, at]) => at >= 1000)).toEqual([]);
    expect(sim.state("n")).toEqual(["stopped", "initial"]);
    sim.request("n", { type: "start" });
    sim.runUntil(6000);
    expect(sim.state("n")).toEqual(["ready", "ready"]);
  });

  it("a removed server that is not running is dropped at once", () => {
    const sim = new Sim([spec("a"), spec("b")], settings(), {});
    sim.send({ type: "config-reloaded", servers: [spec("a")] });
    expect([...sim.sup.servers.keys()]).toEqual(["a"]);
    expect(sim.of("signal")).toEqual([]);
  });

  it("new settings apply to later decisions", () => {
    const sim = new Sim([spec("a"), spec("b", { level: 2 })], settings(), {});
    sim.send({ type: "config-reloaded", servers: [spec("a"), spec("b", { level: 2 })], settings: settings({ interLevelWaitMs: 700 }) });
    sim.send({ type: "boot" });
    sim.runUntil(5000);
    expect(sim.spawns()).toEqual([
      ["a", 0],
      ["b", 750],
    ]);
  });
});
