// The engine's socket effects over a fake world: sockets handed over as fds 3, 4, … with the
// sd_listen_fds variables, kept across restarts, watched while a lazy or accept server listens,
// accepted for accept instances, checked for idleStop, changed by a reload (or not, when a bind
// fails) — and every scenario ends with nothing left open, watched or running.

import { describe, expect, it } from "vitest";
import type { ServerSpec } from "../../../init/core/types";
import { socket } from "../core/activation-situations";
import { policy, settings, spec } from "../core/fixtures";
import { fakeEngine, FakeSystem, random } from "./fake-system";
import { expectNothingLeft } from "./leaks";

const plain = (name: string, overrides: Partial<ServerSpec> = {}) => spec(name, { readiness: { kind: "none" }, ...overrides });

function shutdown(setup: ReturnType<typeof fakeEngine>): void {
  setup.engine.dispatch({ type: "shutdown", now: setup.system.now() });
  setup.system.advance(60_000);
  expect(setup.engine.shutdownComplete).toBe(true);
}

describe("sockets handed to a server", () => {
  it("fds 3, 4, … in config order with LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID (set by the spawn); a restarted server gets the same ones", () => {
    const web = plain("web", {
      sockets: [socket("tcp:8080"), socket("unix:/run/web.sock", { name: "admin" })],
      readyOnSockets: true,
      env: { LISTEN_FDS: "9", LISTEN_PID: "1", KEEP: "1" },
      restart: { ...policy, initialDelayMs: 100 },
    });
    const other = plain("other", { env: { LISTEN_FDS: "2", LISTEN_FDNAMES: "x" } });
    const setup = fakeEngine([web, other], settings());
    const { engine, system } = setup;
    const fds = engine.sockets.fdsOf("web");
    expect(fds.map((fd) => system.fds.get(fd))).toEqual(["listening socket tcp:8080", "listening socket unix:/run/web.sock"]);
    engine.dispatch({ type: "boot", now: 0 });
    const first = system.process("web")!;
    expect(first.request).toMatchObject({ listenFds: fds, listenPid: true });
    expect(first.request.env).toMatchObject({ LISTEN_FDS: "2", LISTEN_FDNAMES: "web:admin", KEEP: "1" });
    expect(first.request.env).not.toHaveProperty("LISTEN_PID");
    // A server without sockets gets none of the variables, whatever its environment held.
    expect(system.process("other")!.request).toMatchObject({ listenFds: [], listenPid: false });
    expect(system.process("other")!.request.env).not.toHaveProperty("LISTEN_FDS");
    // A connection arrives while it is down: it waits in the backlog of the socket the init keeps.
    first.end(null, 9);
    system.connect("tcp:8080");
    system.advance(100);
    const second = system.process("web")!;
    expect(second.pid).not.toBe(first.pid);
    expect(second.request.listenFds).toEqual(fds);
    expect(engine.sockets.describe("web")[0]).toMatchObject({ fd: 3, queued: 1, backlog: 128, activations: 0, watched: false });
    system.serverAccepts("tcp:8080");
    shutdown(setup);
    expectNothingLeft(engine, system);
  });
});

describe("lazy servers", () => {
  const lazy = plain("lazy", {
    sockets: [socket("tcp:8080"), socket("udp:5353", { name: "dns" })],
    activation: "lazy",
    readyOnSockets: true,
    idleStopMs: 5000,
  });

  it("no process until a connection; the connection starts it, its socket counts the activation; a clean exit listens again", () => {
    const setup = fakeEngine([lazy], settings());
    const { engine, system } = setup;
    engine.dispatch({ type: "boot", now: 0 });
    system.advance(1000);
    expect([...system.processes.values()]).toEqual([]);
    expect(engine.resources()).toMatchObject({ listeningSockets: 2, socketWatchers: 2 });
    system.connect("udp:5353");
    system.settle();
    const process = system.process("lazy")!;
    expect(process.request.listenFds).toEqual(engine.sockets.fdsOf("lazy"));
    expect(engine.resources().socketWatchers).toBe(0);
    expect(engine.sockets.describe("lazy").map((s) => s.activations)).toEqual([0, 1]);
    system.serverAccepts("udp:5353");
    process.end(0);
    system.settle();
    expect(engine.sup.servers.get("lazy")!.state).toBe("listening");
    expect(engine.resources().socketWatchers).toBe(2);
    shutdown(setup);
    expectNothingLeft(engine, system);
  });

  it("idleStop: checked every second; an open connection keeps it; a quiet idleStop stops it, and it listens again", () => {
    const setup = fakeEngine([lazy], settings());
    const { engine, system } = setup;
    engine.dispatch({ type: "boot", now: 0 });
    const listener = system.connect("tcp:8080");
    system.settle();
    system.serverAccepts("tcp:8080");
    expect(engine.sup.servers.get("lazy")!.state).toBe("ready");
    // The connection stays open for 8 s: the server is kept.
    system.advance(8000);
    expect(engine.sup.servers.get("lazy")!.state).toBe("ready");
    listener.open = 0;
    system.advance(4000);
    expect(engine.sup.servers.get("lazy")!.state).toBe("ready");
    system.advance(1000);
    // Quiet since 8 s, stopped at 13 s; it exits on TERM and listens again.
    expect(system.kills.map((k) => [k.at, k.signal])).toEqual([[13_000, 15]]);
    system.settle();
    expect([engine.sup.servers.get("lazy")!.state, engine.sup.servers.get("lazy")!.reason]).toEqual(["listening", "idle-stop"]);
    shutdown(setup);
    expectNothingLeft(engine, system);
  });
});

describe("accept servers", () => {
  const echo = plain("echo", { sockets: [socket("tcp:7")], activation: "accept", maxInstances: 2, readyOnSockets: true });

  it("one instance per connection on fds 0 and 1 (and fd 3, LISTEN_FDS=1); at most maxInstances; the rest wait; every connection is served", () => {
    const setup = fakeEngine([echo], settings());
    const { engine, system } = setup;
    let most = 0;
    system.onSpawn = (process) => {
      const running = [...system.processes.values()].filter((p) => p.alive && p.owner.role === "instance").length;
      most = Math.max(most, running);
      process.endAt(system.now() + 100, 0);
    };
    engine.dispatch({ type: "boot", now: 0 });
    for (let i = 0; i < 5; i++) system.connect("tcp:7");
    system.settle();
    const instances = () => [...system.processes.values()].filter((p) => p.owner.role === "instance");
    expect(instances()).toHaveLength(2);
    const [first] = instances();
    expect(first.request).toMatchObject({ stdin: expect.any(Number), listenFds: [first.request.stdin], listenPid: true, stderr: "pipe", setsid: true });
    expect(first.request.stdout).toBe(first.request.stdin);
    expect(first.request.env).toMatchObject({ LISTEN_FDS: "1", LISTEN_FDNAMES: "connection" });
    // The init's copy of each connection is closed once the instance has it.
    expect([...system.fds.values()].filter((what) => what.startsWith("connection"))).toEqual([]);
    expect(engine.resources().socketWatchers).toBe(0);
    expect(engine.sockets.describe("echo")[0].queued).toBe(3);
    system.advance(1000);
    expect(instances()).toHaveLength(5);
    expect(most).toBe(2);
    expect(engine.sockets.describe("echo")[0]).toMatchObject({ queued: 0, activations: 5, watched: true });
    expect(engine.sup.servers.get("echo")!.activations).toBe(5);
    shutdown(setup);
    expectNothingLeft(engine, system);
  });

  it("a shutdown stops the running instances (TERM, then KILL after the stop timeout) and closes the sockets", () => {
    const setup = fakeEngine([{ ...echo, stopTimeoutMs: 1000 }], settings());
    const { engine, system } = setup;
    system.onSignal = () => {}; // the instances ignore TERM
    engine.dispatch({ type: "boot", now: 0 });
    system.connect("tcp:7");
    system.connect("tcp:7");
    system.settle();
    engine.dispatch({ type: "shutdown", now: system.now() });
    system.advance(999);
    expect(system.kills.map((k) => k.signal)).toEqual([15, 15]);
    system.advance(1);
    system.settle();
    expect(system.kills.map((k) => k.signal)).toEqual([15, 15, 9, 9]);
    expect(engine.shutdownComplete).toBe(true);
    expectNothingLeft(engine, system);
  });
});

describe("a reload's sockets", () => {
  const web = plain("web", { sockets: [socket("tcp:8080"), socket("tcp:8081")], readyOnSockets: true });

  it("keeps unchanged sockets (the same fd), opens new ones, closes removed ones; a socket may move to another server", () => {
    const setup = fakeEngine([web], settings());
    const { engine, system } = setup;
    engine.dispatch({ type: "boot", now: 0 });
    const [fd8080, fd8081] = engine.sockets.fdsOf("web");
    const next = [plain("web", { sockets: [socket("tcp:8081", { backlog: 16 }), socket("tcp:9000")] }), plain("api", { sockets: [socket("tcp:8080")] })];
    const change = engine.sockets.prepare(next);
    expect(change.problems).toEqual([]);
    expect(change.commit()).toEqual([]);
    expect(engine.sockets.fdsOf("web")[0]).toBe(fd8081);
    expect(engine.sockets.fdsOf("api")).toEqual([fd8080]);
    expect(system.listeners.get(fd8081)!.backlog).toBe(16);
    expect([...system.fds.values()].filter((what) => what.startsWith("listening")).sort()).toEqual([
      "listening socket tcp:8080",
      "listening socket tcp:8081",
      "listening socket tcp:9000",
    ]);
    engine.dispatch({ type: "config-reloaded", now: system.now(), servers: next });
    system.settle();
    expect(system.process("web")!.request.listenFds).toEqual(engine.sockets.fdsOf("web"));
    shutdown(setup);
    expectNothingLeft(engine, system);
  });

  it("a socket that cannot be bound refuses the whole change: what was opened for it is closed, nothing else changes", () => {
    const system = new FakeSystem();
    const setup = fakeEngine([web], settings(), system);
    const { engine } = setup;
    engine.dispatch({ type: "boot", now: 0 });
    const before = [...system.fds.entries()];
    system.bindError = (s) => (s.listen === "unix:/missing/x.sock" ? "ENOENT" : s.listen === "tcp:9001" ? "EADDRINUSE" : null);
    const change = engine.sockets.prepare([
      plain("web", { sockets: [socket("tcp:8080"), socket("tcp:9000")] }),
      plain("b", { sockets: [socket("tcp:9001"), socket("unix:/missing/x.sock")] }),
    ]);
    expect(change.problems).toEqual([
      { server: "b", socket: 0, message: "tcp:9001: cannot bind: the address is in use (another program listens there)" },
      { server: "b", socket: 1, message: "unix:/missing/x.sock: cannot bind: directory /missing does not exist" },
    ]);
    expect([...system.fds.entries()]).toEqual(before);
    expect(engine.sockets.fdsOf("web")).toHaveLength(2);
    shutdown(setup);
    expectNothingLeft(engine, system);
  });

  it("a dry run's sockets are closed again by abort", () => {
    const setup = fakeEngine([web], settings());
    const { engine, system } = setup;
    const before = [...system.fds.entries()];
    const change = engine.sockets.prepare([plain("web", { sockets: [socket("tcp:7000")] })]);
    expect(system.fds.size).toBe(before.length + 1);
    change.abort();
    expect([...system.fds.entries()]).toEqual(before);
    shutdown(setup);
    expectNothingLeft(engine, system);
  });

  it("a listening server whose sockets changed is watched on the new ones", () => {
    const lazy = plain("lazy", { sockets: [socket("tcp:8080")], activation: "lazy", readyOnSockets: true });
    const setup = fakeEngine([lazy], settings());
    const { engine, system } = setup;
    engine.dispatch({ type: "boot", now: 0 });
    const next = [{ ...lazy, sockets: [socket("tcp:8090")] }];
    engine.sockets.prepare(next).commit();
    engine.dispatch({ type: "config-reloaded", now: 0, servers: next });
    expect(engine.sockets.describe("lazy")).toMatchObject([{ listen: "tcp:8090", watched: true }]);
    system.connect("tcp:8090");
    system.settle();
    expect(system.process("lazy")).toBeDefined();
    system.serverAccepts("tcp:8090");
    shutdown(setup);
    expectNothingLeft(engine, system);
  });
});

describe("a random walk with socket activation", () => {
  const fleet: ServerSpec[] = [
    plain("db", { sockets: [socket("tcp:5432")], readyOnSockets: true, restart: { ...policy, initialDelayMs: 50, burstCount: 0 } }),
    plain("lazy", { sockets: [socket("tcp:8080"), socket("udp:53")], activation: "lazy", readyOnSockets: true, idleStopMs: 700, requires: ["db"] }),
    plain("echo", { sockets: [socket("unix:/run/echo.sock")], activation: "accept", maxInstances: 3, readyOnSockets: true, stopTimeoutMs: 300 }),
    plain("app", { requires: ["lazy", "echo"], level: 2 }),
  ];
  const addresses = ["tcp:5432", "tcp:8080", "udp:53", "unix:/run/echo.sock"];

  it.each([1, 2, 3, 4])("seed %i: never more than maxInstances, watched only while listening, and nothing left", (seed) => {
    const next = random(seed);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)];
    const system = new FakeSystem();
    system.onSignal = (process, signal) => {
      if (next() < 0.8) process.endAt(system.now() + Math.floor(next() * 200), null, signal);
    };
    system.onSpawn = (process) => {
      if (process.owner.role === "instance") process.endAt(system.now() + Math.floor(next() * 300), pick([0, 0, 1]));
      else if (next() < 0.3) process.endAt(system.now() + Math.floor(next() * 1500), pick([0, 1]));
    };
    const setup = fakeEngine(fleet, settings({ shutdownTimeoutMs: 3000 }), system);
    const { engine } = setup;
    const violations: string[] = [];
    engine.onEvent((event) => {
      for (const server of engine.sup.servers.values()) {
        const watched = engine.sockets.of(server.spec.name).some((s) => s.watcher !== null);
        if (watched && server.state !== "listening") violations.push(`${server.spec.name} watched in ${server.state} after ${event.type}`);
        if (server.instances.length + server.pendingInstances > 3) violations.push(`${server.spec.name}: ${server.instances.length} instances`);
      }
      const alive = [...system.processes.values()].filter((p) => p.alive && p.owner.role === "instance").length;
      if (alive > 3) violations.push(`${alive} instances alive`);
    });
    engine.dispatch({ type: "boot", now: 0 });
    for (let i = 0; i < 300; i++) {
      system.advance(Math.floor(next() * 200));
      const now = system.now();
      const roll = next();
      if (roll < 0.4) {
        const address = pick(addresses);
        system.connect(address);
        // A running server takes connections itself (the init does only while it listens).
        const owner = engine.sockets.entries().find((s) => s.spec.listen === address)!;
        const server = engine.sup.servers.get(owner.server)!;
        if (server.pid !== null && system.listeners.get(owner.fd)!.queued > 0) system.serverAccepts(address);
      } else if (roll < 0.6) {
        const victim = pick([...system.processes.values()].filter((p) => p.alive));
        if (victim) system.kill(victim.pid, 9);
      } else if (roll < 0.85) {
        engine.serverEvent(
          pick(fleet).name,
          pick([
            { type: "start", now },
            { type: "stop", now },
            { type: "restart", now },
            { type: "kill", now },
          ]),
        );
      } else {
        const changed = fleet.map((s) => (next() < 0.3 ? { ...s, env: { GENERATION: String(i) } } : s));
        const change = engine.sockets.prepare(changed);
        change.commit();
        engine.dispatch({ type: "config-reloaded", now, servers: changed });
      }
      for (const listener of system.listeners.values()) listener.open = 0;
    }
    engine.dispatch({ type: "shutdown", now: system.now() });
    system.advance(3000 + 5000);
    expect(engine.sup.phase).toBe("stopped");
    expect(violations).toEqual([]);
    expect(engine.sup.servers.get("echo")!.activations).toBeGreaterThan(5);
    expect(engine.sup.servers.get("lazy")!.activations).toBeGreaterThan(1);
    expectNothingLeft(engine, system, { listeners: 1 });
  });
});
