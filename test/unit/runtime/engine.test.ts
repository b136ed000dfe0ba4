// The real engine (runtime/engine.ts) over a fake world: what it does with processes, pipes, probes,
// sockets and timers, and that each scenario leaves none of them behind. Then a long random walk of
// requests and faults with the invariants checked after every event.

import { describe, expect, it } from "vitest";
import { isAtRest } from "../../../init/core/server";
import type { ServerSpec } from "../../../init/core/types";
import { policy, settings, spec } from "../core/fixtures";
import { fakeEngine, FakeSystem, random } from "./fake-system";
import { expectNothingLeft } from "./leaks";

const plain = (name: string, overrides: Partial<ServerSpec> = {}) => spec(name, { readiness: { kind: "none" }, ...overrides });

function shutdown(setup: ReturnType<typeof fakeEngine>, untilMs = 60_000): void {
  setup.engine.dispatch({ type: "shutdown", now: setup.system.now() });
  setup.system.advance(untilMs);
  expect(setup.engine.sup.phase).toBe("stopped");
  expect(setup.engine.shutdownComplete).toBe(true);
}

describe("the engine over a fake world", () => {
  it("boots, gets a log-probed server ready from its output, shuts down, and leaves nothing", () => {
    const setup = fakeEngine([spec("TangoTest/t1"), plain("sleeper")], settings());
    const { engine, system } = setup;
    engine.dispatch({ type: "boot", now: 0 });
    const tango = system.process("TangoTest/t1")!;
    expect(tango.request).toMatchObject({ argv0: "/usr/lib/tango/TangoTest", args: ["t1"], setsid: true, stdout: "pipe", stderr: "pipe" });
    system.advance(10);
    tango.write("Ready to accept request\n");
    expect(engine.sup.servers.get("TangoTest/t1")!.state).toBe("ready");
    // The log probe's listener is gone once it matched.
    expect(engine.resources().lineListeners).toBe(2);
    shutdown(setup);
    expect(system.kills.map((k) => k.signal)).toEqual([15, 15]);
    expectNothingLeft(engine, system);
  });

  it("executes the effects of one step without waiting: a hanging preStart does not hold another server's spawn", () => {
    const setup = fakeEngine(
      [spec("a", { preStart: ["/bin/sleep", "30"], preStartTimeoutMs: 2000, restart: { ...policy, mode: "never" } }), plain("b")],
      settings(),
    );
    const { engine, system } = setup;
    engine.dispatch({ type: "boot", now: 0 });
    expect([...system.processes.values()].map((p) => `${p.owner.server} ${p.owner.role}`)).toEqual(["a pre-start", "b server"]);
    expect(engine.sup.servers.get("b")!.state).toBe("ready");
    expect(engine.sup.servers.get("a")!.hookPid).toBe(system.process("a", "pre-start")!.pid);
    system.advance(2000);
    // TERM to the hook's process group; it ends; a failed for good.
    expect(system.kills).toEqual([{ at: 2000, pid: -system.processes.values().next().value!.pid, signal: 15 }]);
    expect(engine.sup.servers.get("a")!.state).toBe("failed");
    shutdown(setup);
    expectNothingLeft(engine, system);
  });

  it("gives preStart and postStop the server's output, environment and a session; postStop learns how the server ended", () => {
    const setup = fakeEngine([plain("a", { preStart: ["/bin/prep", "x"], postStop: ["/bin/cleanup"], env: { K: "v" }, cwd: "/srv" })], settings());
    const { engine, system } = setup;
    const lines: string[] = [];
    const stop = engine.onOutput((server, line) => lines.push(`${server}: ${line}`));
    engine.dispatch({ type: "boot", now: 0 });
    const pre = system.process("a", "pre-start")!;
    expect(pre.request).toMatchObject({ command: "/bin/prep", args: ["x"], env: { K: "v" }, cwd: "/srv", setsid: true, stdout: "pipe", stderr: "stdout" });
    pre.write("preparing\n");
    pre.end(0);
    const server = system.process("a")!;
    server.end(3);
    const post = system.process("a", "post-stop")!;
    expect(post.request.env).toMatchObject({ K: "v", SERVER_NAME: "a", EXIT_STATUS: "3", EXIT_SIGNAL: "" });
    post.write("cleaning\n");
    post.end(0);
    system.settle();
    expect(lines).toEqual(["a: preparing", "a: cleaning"]);
    expect(engine.sup.servers.get("a")!.state).toBe("backoff");
    stop();
    shutdown(setup);
    expectNothingLeft(engine, system);
  });

  it("reports a preStart that cannot start as hook-spawn-failed, and a server that cannot start as spawn-failed", () => {
    const setup = fakeEngine(
      [plain("a", { preStart: ["/nope"], restart: { ...policy, mode: "never" } }), plain("b", { restart: { ...policy, mode: "never" } })],
      settings(),
    );
    const { engine, system } = setup;
    system.spawnError = (request) => (request.command === "/nope" || request.command === "/usr/lib/tango/b" ? "ENOENT" : null);
    engine.dispatch({ type: "boot", now: 0 });
    expect([engine.sup.servers.get("a")!.reason, engine.sup.servers.get("a")!.lastExit?.errno]).toEqual(["pre-start-failed", "ENOENT"]);
    expect([engine.sup.servers.get("b")!.reason, engine.sup.servers.get("b")!.lastExit?.errno]).toEqual(["exec-failed", "ENOENT"]);
    expect(setup.progress.filter((line) => line.includes("FAILED")).length).toBeGreaterThanOrEqual(2);
    shutdown(setup);
    expectNothingLeft(engine, system);
  });

  it("closes the sd_notify socket when the probe reports, not at the next start (restarts leak nothing)", () => {
    const setup = fakeEngine(
      [spec("n", { readiness: { kind: "sd_notify" }, restart: { ...policy, initialDelayMs: 100, maxDelayMs: 100, burstCount: 0 } })],
      settings(),
    );
    const { engine, system } = setup;
    engine.dispatch({ type: "boot", now: 0 });
    expect(system.process("n")!.request.env.NOTIFY_SOCKET).toBe("/run/test/notify-n.sock");
    expect([...system.fds.values()]).toContain("datagram socket /run/test/notify-n.sock");
    system.probe("n")!.ready();
    expect([...system.fds.values()].filter((what) => what.startsWith("datagram"))).toEqual([]);
    for (let i = 0; i < 5; i++) {
      system.process("n")!.end(1);
      system.advance(200);
      system.probe("n")!.ready();
    }
    expect(engine.resources()).toMatchObject({ notifySockets: 0, probes: 0 });
    shutdown(setup);
    expectNothingLeft(engine, system);
  });

  it("closes a notify pipe no probe took (the process was stopped before its probe started)", () => {
    const setup = fakeEngine([spec("n", { readiness: { kind: "notify", fd: 3 } })], settings());
    const { engine, system } = setup;
    // The stop arrives in the same drain as the boot, before `spawned` is handled: no probe ever starts.
    engine.onEvent((event) => {
      if (event.type === "boot") engine.serverEvent("n", { type: "stop", now: 0 });
    });
    engine.dispatch({ type: "boot", now: 0 });
    system.advance(1000);
    expect(engine.sup.servers.get("n")!.state).toBe("stopped");
    expectNothingLeft(engine, system, { listeners: 1 });
  });

  it("a probe of an earlier process reports nothing about the current one", () => {
    const setup = fakeEngine([spec("p", { readiness: { kind: "tcp", host: "127.0.0.1", port: 1, intervalMs: 100 } })], settings());
    const { engine, system } = setup;
    engine.dispatch({ type: "boot", now: 0 });
    const first = system.probe("p")!;
    engine.serverEvent("p", { type: "restart", now: system.now() });
    system.settle();
    expect(first.cancelled).toBe(true);
    first.ready(); // too late: cancelled
    expect(engine.sup.servers.get("p")!.state).toBe("starting");
    system.probe("p")!.ready();
    expect(engine.sup.servers.get("p")!.state).toBe("ready");
    shutdown(setup);
    expectNothingLeft(engine, system);
  });

  it("forgets a server removed by a reload once it has stopped: its output and pipes are closed", () => {
    const setup = fakeEngine([plain("keep"), plain("gone")], settings());
    const { engine, system } = setup;
    engine.dispatch({ type: "boot", now: 0 });
    expect(engine.resources().servers).toBe(2);
    engine.dispatch({ type: "config-reloaded", now: system.now(), servers: [plain("keep")] });
    system.advance(1000);
    expect(engine.sup.servers.has("gone")).toBe(false);
    expect(engine.resources().servers).toBe(1);
    expect(engine.output("gone")).toBeNull();
    shutdown(setup);
    expectNothingLeft(engine, system);
  });

  it("keeps only the pipes of live writers: the output of earlier runs is not kept", () => {
    const setup = fakeEngine([plain("crasher", { restart: { ...policy, burstCount: 0, initialDelayMs: 10, maxDelayMs: 10 } })], settings());
    const { engine, system } = setup;
    engine.dispatch({ type: "boot", now: 0 });
    for (let i = 0; i < 20; i++) {
      system.process("crasher")!.end(1);
      system.advance(20);
    }
    expect(engine.resources().outputPipes).toBe(2);
    shutdown(setup);
    expectNothingLeft(engine, system);
  });

  it("a listener that throws is logged; the events queued behind it are handled at once", () => {
    const setup = fakeEngine([plain("a"), plain("b")], settings());
    const { engine, system, records } = setup;
    const stop = engine.onEvent(() => {
      throw new Error("listener bug");
    });
    engine.dispatch({ type: "boot", now: 0 });
    // Both spawned (queued behind the boot step) and ready without another dispatch.
    expect([...engine.sup.servers.values()].map((s) => s.state)).toEqual(["ready", "ready"]);
    expect(records.some((r) => r.msg === "an event listener failed")).toBe(true);
    stop();
    shutdown(setup);
    expectNothingLeft(engine, system);
  });

  it("the shutdown deadline ends what ignores TERM, postStop included, and no postStop starts after it", () => {
    const setup = fakeEngine(
      [plain("stubborn", { postStop: ["/bin/cleanup"], stopTimeoutMs: 60_000 }), plain("hooked", { postStop: ["/bin/cleanup"], postStopTimeoutMs: 60_000 })],
      settings({ shutdownTimeoutMs: 3000 }),
    );
    const { engine, system } = setup;
    system.onSignal = (process, signal) => {
      if (process.owner.server === "hooked" && process.owner.role === "server") process.endAt(system.now() + 10, null, signal);
    };
    engine.dispatch({ type: "boot", now: 0 });
    engine.dispatch({ type: "shutdown", now: 0 });
    system.advance(2999);
    expect(system.process("hooked", "post-stop")?.alive).toBe(true);
    system.advance(1);
    system.settle();
    expect(engine.sup.phase).toBe("stopped");
    expect([...system.processes.values()].filter((p) => p.owner.role === "post-stop").map((p) => p.owner.server)).toEqual(["hooked"]);
    expectNothingLeft(engine, system);
  });
});

describe("a random walk of requests and faults", () => {
  const fleet: ServerSpec[] = [
    spec("db", { level: 1, readiness: { kind: "tcp", host: "127.0.0.1", port: 1, intervalMs: 100 }, startTimeoutMs: 3000 }),
    spec("TangoTest/t1", { level: 2, requires: ["db"], preStart: ["/bin/prep"], preStartTimeoutMs: 1000, postStop: ["/bin/cleanup"], postStopTimeoutMs: 800 }),
    plain("flapper", { level: 2, restart: { ...policy, initialDelayMs: 50, burstCount: 0 } }),
    spec("notify", { level: 2, readiness: { kind: "notify", fd: 3 }, stopTimeoutMs: 500 }),
    spec("sd", { level: 3, readiness: { kind: "sd_notify" }, after: ["flapper"] }),
    plain("console", { level: 3, failsafeMs: 2000, postStop: ["/bin/cleanup"] }),
    plain("excl", { level: 3, exclusive: true, stopTimeoutMs: 300 }),
  ];

  it.each([1, 2, 3, 4, 5, 6])("seed %i: every waiting server has a timer, the engine's timers match the core's, and nothing is left", (seed) =>
    walk(seed, false),
  );

  // The same with cgroups: servers fork children (some ignore TERM) that stay in their cgroup, a daemon
  // forks its main process and exits, OOM kills come; nothing may be left either.
  it.each([7, 8, 9])("seed %i, in cgroups with forks and daemons: the same, and no cgroup watch or daemon search left", (seed) => walk(seed, true));

  function walk(seed: number, cgroups: boolean): void {
    const next = random(seed);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)];
    const system = new FakeSystem();
    const fake = cgroups ? system.withCgroups() : null;
    const stubborn = new Set<number>();
    // Processes: some ignore TERM, some hang in their hooks, some take a while to end.
    system.onSignal = (process, signal) => {
      if (next() < 0.2 || stubborn.has(process.pid)) return;
      process.endAt(system.now() + Math.floor(next() * 400), null, signal);
    };
    system.onSpawn = (process) => {
      if (process.owner.role !== "server") {
        if (next() < 0.7) process.endAt(system.now() + Math.floor(next() * 600), next() < 0.8 ? 0 : 1);
        return;
      }
      if (fake && next() < 0.4) {
        const child = process.fork();
        if (next() < 0.5) stubborn.add(child.pid);
        if (next() < 0.5) child.endAt(system.now() + Math.floor(next() * 3000), 0);
      }
      if (fake && process.request.cgroup && next() < 0.1) {
        system.at(system.now() + Math.floor(next() * 2000), () => {
          if (!process.alive) return;
          fake.oom.set(process.request.cgroup!, 1);
          process.end(null, 9);
        });
      }
      if (process.owner.server === "daemon") {
        const daemon = process.fork();
        if (next() < 0.8) system.pidFiles.set("/run/daemon.pid", daemon.pid);
        if (next() < 0.3) daemon.endAt(system.now() + Math.floor(next() * 2000), null, 11);
        process.endAt(system.now() + Math.floor(next() * 100), next() < 0.9 ? 0 : 1);
        return;
      }
      if (process.owner.server === "TangoTest/t1" && next() < 0.8)
        system.at(system.now() + 50, () => process.alive && process.write("Ready to accept request\n"));
      if (next() < 0.3) process.endAt(system.now() + Math.floor(next() * 2000), pick([0, 1, 2]));
    };
    system.onProbe = (probe) => {
      if (next() < 0.8) system.at(system.now() + Math.floor(next() * 500), () => (next() < 0.9 ? probe.ready() : probe.fail("refused")));
    };
    system.spawnError = () => (next() < 0.05 ? "ENOENT" : null);
    const servers = cgroups ? [...fleet, plain("daemon", { level: 2, type: "forking", pidFile: "/run/daemon.pid", startTimeoutMs: 1000 })] : fleet;
    const setup = fakeEngine(servers, settings({ shutdownTimeoutMs: 4000, interLevelWaitMs: 100 }), system);
    const { engine } = setup;
    const violations: string[] = [];
    let deadlinePassed = false;
    const seen = new Set<string>();
    engine.onEvent((event, result) => {
      const sup = engine.sup;
      for (const server of sup.servers.values()) {
        if (server.state === "stopping" && server.pid === null && server.hook === null && server.populated) seen.add("remains");
        if (server.daemon === "found" && server.state === "ready") seen.add("daemon ready");
        if (server.lastExit?.reason === "oom-killed") seen.add("oom");
      }
      if (result.effects.some((effect) => effect.type === "log" && effect.kind === "shutdown-deadline")) deadlinePassed = true;
      for (const server of sup.servers.values()) {
        if (!isAtRest(server) && Object.keys(server.timers).length === 0)
          violations.push(`${server.spec.name} waits in ${server.state} without a timer after ${event.type}`);
      }
      const coreTimers = [...sup.servers.values()].reduce((n, s) => n + Object.keys(s.timers).length, 0) + Object.keys(sup.timers).length;
      if (engine.resources().timers !== coreTimers) violations.push(`engine timers ${engine.resources().timers} ≠ core timers ${coreTimers}`);
      // After the deadline, what is left waits for SIGKILL with each server's own timer (checked above).
      if (sup.phase === "shutting-down" && sup.timers["shutdown-deadline"] === undefined && !deadlinePassed)
        violations.push("shutting down without a deadline");
    });
    engine.dispatch({ type: "boot", now: 0 });
    const names = servers.map((s) => s.name);
    for (let i = 0; i < 400; i++) {
      system.advance(Math.floor(next() * 300));
      const name = pick(names);
      const now = system.now();
      switch (pick(["request", "request", "fault", "fault", "bulk", "reload"] as const)) {
        case "request":
          engine.serverEvent(
            name,
            pick([
              { type: "start", now },
              { type: "stop", now },
              { type: "restart", now },
              { type: "kill", now },
              { type: "pin", now, pin: pick(["started", "stopped"] as const) },
              { type: "unpin", now },
            ]),
          );
          break;
        case "fault": {
          const victim = pick([...system.processes.values()].filter((p) => p.alive));
          if (victim) system.kill(victim.pid, 9);
          break;
        }
        case "bulk":
          engine.dispatch(
            pick([
              { type: "start-all", now },
              { type: "stop-all", now },
              { type: "stop-all", now, level: 2 },
            ]),
          );
          break;
        case "reload": {
          const kept = servers.filter((s) => next() < 0.8 || s.name === "db");
          const changed = kept.map((s) => (next() < 0.2 ? { ...s, env: { ...s.env, GENERATION: String(i) } } : s));
          engine.dispatch({ type: "config-reloaded", now, servers: changed });
          break;
        }
      }
    }
    engine.dispatch({ type: "shutdown", now: system.now() });
    // Bounded: the deadline (4 s) plus a kill wait (a stop timeout) at most.
    system.advance(4000 + 5000);
    expect(engine.sup.phase).toBe("stopped");
    expect(violations).toEqual([]);
    for (const server of engine.sup.servers.values())
      expect([server.spec.name, server.state]).toEqual([server.spec.name, expect.stringMatching(/^(stopped|failed)$/)]);
    // The walk made sure of what it claims: processes were killed, hooks ran, servers got ready.
    expect(system.kills.length).toBeGreaterThan(50);
    expect([...system.processes.values()].some((p) => p.owner.role === "post-stop")).toBe(true);
    if (fake) {
      expect(fake.signalled.filter((entry) => entry.signal === 9).length).toBeGreaterThan(5);
      expect([...seen].sort()).toEqual(["daemon ready", "oom", "remains"]);
    }
    expectNothingLeft(engine, system, { listeners: 1 });
  }
});
