// Ordering with sockets the init holds (readiness: socket, lazy and accept servers): what requires such
// a server, or waits for its level, starts in the same stage; its own probe still decides when it is
// ready, and the boot is complete only then. With a fake clock on the real engine.

import { describe, expect, it } from "vitest";
import { bootPlan } from "../../../init/core/supervisor";
import { planStages } from "../../../init/core/graph";
import { socket } from "./activation-situations";
import { settings, spec } from "./fixtures";
import { Sim } from "./sim";

const db = spec("db", { sockets: [socket("tcp:5432")], readyOnSockets: true });
const probedDb = spec("db", { sockets: [socket("tcp:5432")], readyOnSockets: false });
const app = spec("app", { requires: ["db"] });

describe("readiness: socket", () => {
  it("a server that requires one with readiness: socket is forked with it, long before it is ready", () => {
    const sim = new Sim([db, app], settings(), { db: { readyAfterMs: 3000 }, app: { readyAfterMs: 50 } });
    sim.send({ type: "boot" });
    sim.runUntil(10_000);
    expect(sim.spawns()).toEqual([
      ["db", 0],
      ["app", 0],
    ]);
    // Its own readiness is its probe's, and the boot waits for it.
    const readyAt = (name: string) => sim.of("log").find((r) => r.effect.server === name && r.effect.kind === "ready")?.at;
    expect([readyAt("app"), readyAt("db")]).toEqual([50, 3000]);
    expect(sim.of("log").find((r) => r.effect.kind === "boot-complete")?.at).toBe(3000);
  });

  it("without it (socket: false) the dependent waits for the probe, as before", () => {
    const sim = new Sim([probedDb, app], settings(), { db: { readyAfterMs: 3000 } });
    sim.send({ type: "boot" });
    sim.runUntil(10_000);
    expect(sim.spawns()).toEqual([
      ["db", 0],
      ["app", 3000],
    ]);
  });

  it("the next level opens as soon as a socket-ready server of the level below has started", () => {
    const upper = spec("web", { level: 2 });
    const sim = new Sim([db, upper], settings({ interLevelWaitMs: 0 }), { db: { readyAfterMs: 3000 } });
    sim.send({ type: "boot" });
    sim.runUntil(10_000);
    expect(sim.spawns()).toEqual([
      ["db", 0],
      ["web", 0],
    ]);
  });

  it("while it restarts after a crash, its dependents still count it as there (connections wait in its backlog)", () => {
    const late = spec("late", { requires: ["db"], autostart: false });
    const sim = new Sim([db, late], settings(), { db: { readyAfterMs: 100 } });
    sim.send({ type: "boot" });
    sim.runUntil(1000);
    sim.system.process("db")!.end(1);
    expect(sim.state("db")[0]).toBe("backoff");
    sim.request("late", { type: "start" });
    expect(sim.spawns().map(([name]) => name)).toEqual(["db", "late"]);
  });

  it("plan: the dependents of a socket-ready, lazy or accept server are in its stage", () => {
    const lazy = spec("lazy", { sockets: [socket("tcp:80")], activation: "lazy", readyOnSockets: true });
    const user = spec("user", { requires: ["lazy"] });
    const after = spec("after", { after: ["app"] });
    expect(bootPlan([db, app, lazy, user, after], settings())).toEqual([["db", "app", "lazy", "user"], ["after"]]);
    expect(planStages([probedDb, app], new Set(["db", "app"]), "parallel")).toEqual([["db"], ["app"]]);
  });
});

describe("lazy and accept servers at boot", () => {
  const lazy = spec("lazy", { sockets: [socket("tcp:8080")], activation: "lazy", readyOnSockets: true });
  const user = spec("user", { requires: ["lazy"] });

  it("a lazy server listens at boot (no process); what requires it starts; the boot completes", () => {
    const sim = new Sim([lazy, user], settings());
    sim.send({ type: "boot" });
    sim.runUntil(1000);
    expect(sim.spawns()).toEqual([["user", 0]]);
    expect(sim.state("lazy")).toEqual(["listening", "start-requested"]);
    expect(sim.sup.phase).toBe("running");
    // The first connection starts it.
    sim.system.connect("tcp:8080");
    sim.runUntil(1000);
    expect(sim.spawns()).toEqual([
      ["user", 0],
      ["lazy", 1000],
    ]);
  });

  it("stop-all stops listening; shutdown stops it too, with nothing left watched", () => {
    const sim = new Sim([lazy, user], settings());
    sim.send({ type: "boot" });
    sim.runUntil(100);
    sim.send({ type: "stop-all" });
    sim.runUntil(10_000);
    expect(sim.state("lazy")).toEqual(["stopped", "stop-requested"]);
    expect(sim.engine.resources().socketWatchers).toBe(0);
    sim.send({ type: "start-all" });
    sim.runUntil(20_000);
    expect(sim.state("lazy")[0]).toBe("listening");
    sim.send({ type: "shutdown" });
    sim.runUntil(40_000);
    expect(sim.sup.phase).toBe("stopped");
    expect(sim.engine.resources()).toMatchObject({ socketWatchers: 0, listeningSockets: 0 });
  });
});
