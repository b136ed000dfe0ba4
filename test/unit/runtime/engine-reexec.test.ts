// A reexec over the fake world: the real engine hands everything over (capture), the state goes
// through JSON as it does through the state file, the fake process "execs" (its timers, readers,
// probes and watches are gone; fds, processes and pipe contents stay), and a new engine adopts it all.

import { describe, expect, it } from "vitest";
import { decodeSupervisor, encodeSupervisor } from "../../../init/core/state";
import type { ServerSpec } from "../../../init/core/types";
import { ConsoleReport } from "../../../init/log/console";
import { Engine, type CapturedEngine } from "../../../init/runtime/engine";
import type { HeldSocket } from "../../../init/runtime/sockets";
import { policy, settings, spec } from "../core/fixtures";
import { socket } from "../core/activation-situations";
import { fakeEngine, FakeSystem, memoryLogger } from "./fake-system";
import { expectNothingLeft } from "./leaks";

const plain = (name: string, overrides: Partial<ServerSpec> = {}) => spec(name, { readiness: { kind: "none" }, ...overrides });

interface Handover {
  sup: unknown;
  engine: CapturedEngine;
  sockets: Omit<HeldSocket, "watcher">[];
}

/** The old engine's side: the reaper paused, everything captured, the state through JSON. */
function capture(engine: Engine, system: FakeSystem): Handover {
  system.reaperPaused = true;
  const state = {
    sup: encodeSupervisor(engine.sup),
    engine: engine.capture(),
    sockets: engine.sockets.entries().map(({ watcher: _watcher, ...entry }) => entry),
  };
  return JSON.parse(JSON.stringify(state)) as Handover;
}

/** The exec and the new engine's side. */
function resume(state: Handover, system: FakeSystem): { engine: Engine; lost: number[]; lines: string[]; stopListening: () => void } {
  system.exec();
  system.reaperPaused = false;
  const { log } = memoryLogger();
  const engine = new Engine(
    decodeSupervisor(state.sup as never),
    log,
    new ConsoleReport(
      () => {},
      () => false,
    ),
    "/run/test",
    system,
  );
  engine.sockets.adopt(state.sockets);
  const lines: string[] = [];
  const stopListening = engine.onOutput((server, line) => lines.push(`${server}: ${line}`));
  const lost = engine.adopt(state.engine);
  return { engine, lost, lines, stopListening };
}

function shutdown(engine: Engine, system: FakeSystem, stopListening: () => void = () => {}): void {
  stopListening();
  engine.dispatch({ type: "shutdown", now: system.now() });
  system.advance(60_000);
  expect(engine.sup.phase).toBe("stopped");
}

describe("reexec: the engine hands over and takes over", () => {
  it("keeps every process, joins the line begun before the exec, re-arms probes and timers, and tells an exit of meanwhile", () => {
    const setup = fakeEngine([spec("TangoTest/t1"), plain("a"), plain("c", { restart: { ...policy, initialDelayMs: 1000 } })], settings());
    const { engine, system } = setup;
    const before: string[] = [];
    const stopBefore = engine.onOutput((server, line) => before.push(`${server}: ${line}`));
    engine.dispatch({ type: "boot", now: 0 });
    const t1 = system.process("TangoTest/t1")!;
    const a = system.process("a")!;
    const c = system.process("c")!;
    system.advance(10);
    c.end(1);
    system.settle();
    expect(engine.sup.servers.get("c")!.state).toBe("backoff");
    a.write("first\nhello wor");
    system.advance(90);

    const state = capture(engine, system);
    stopBefore();
    expect(state.engine.timers.map((timer) => `${timer.server} ${timer.timer} ${timer.at}`)).toContain("c backoff 1010");
    expect(state.engine.servers.find((server) => server.name === "a")!.pipes.map((pipe) => Buffer.from(pipe.partial, "base64").toString())).toContain(
      "hello wor",
    );
    // While the exec happens: output waits in the pipes, a server is killed, another gets ready.
    a.write("ld\nsecond\n");
    t1.write("Ready to accept request\n");
    a.end(null, 9);
    system.advance(5);

    const next = resume(state, system);
    expect(next.lost).toEqual([]);
    expect(next.engine.sup.servers.get("TangoTest/t1")!.pid).toBe(t1.pid);
    system.settle();
    expect(before).toEqual(["a: first"]);
    expect(next.lines.filter((line) => line.startsWith("a: "))).toEqual(["a: hello world", "a: second"]);
    expect(next.lines.filter((line) => line.startsWith("TangoTest/t1: "))).toEqual(["TangoTest/t1: Ready to accept request"]);
    expect(next.engine.sup.servers.get("TangoTest/t1")!.state).toBe("ready");
    const killed = next.engine.sup.servers.get("a")!;
    expect(killed.state).toBe("backoff");
    expect(killed.lastExit).toMatchObject({ signal: 9 });
    // c's backoff ends when the old init said it would.
    system.advanceTo(1009);
    expect(next.engine.sup.servers.get("c")!.state).toBe("backoff");
    system.advanceTo(1010);
    expect(next.engine.sup.servers.get("c")!.state).toBe("ready");
    expect(system.process("c")!.pid).not.toBe(c.pid);

    shutdown(next.engine, system, next.stopListening);
    expectNothingLeft(next.engine, system);
  });

  it("tells an exit nobody can report any more (lost) as an end with no status, and judges it as a crash", () => {
    const setup = fakeEngine([plain("a", { restart: { ...policy, mode: "never" } })], settings());
    const { engine, system } = setup;
    engine.dispatch({ type: "boot", now: 0 });
    const a = system.process("a")!;
    const state = capture(engine, system);
    // Reaped by something else while the exec happened: neither alive nor a zombie of ours.
    a.alive = false;
    const next = resume(state, system);
    expect(next.lost).toEqual([a.pid]);
    system.settle();
    const server = next.engine.sup.servers.get("a")!;
    expect(server.pid).toBeNull();
    expect(server.lastExit).toMatchObject({ code: null, signal: null });
    shutdown(next.engine, system);
  });

  it("takes over a hook in flight: a preStart that ends after the exec lets its server start", () => {
    const setup = fakeEngine([plain("a", { preStart: ["/bin/prep"] })], settings());
    const { engine, system } = setup;
    engine.dispatch({ type: "boot", now: 0 });
    const hook = system.process("a", "pre-start")!;
    const state = capture(engine, system);
    hook.end(0);
    const next = resume(state, system);
    system.settle();
    expect(next.engine.sup.servers.get("a")!.state).toBe("ready");
    shutdown(next.engine, system, next.stopListening);
    expectNothingLeft(next.engine, system);
  });

  it("keeps a lazy server's sockets and watches them again: a connection after the exec starts it on the same fds", () => {
    const lazy = plain("lazy", { sockets: [socket("tcp:8080")], activation: "lazy", readyOnSockets: true });
    const setup = fakeEngine([lazy], settings());
    const { engine, system } = setup;
    engine.dispatch({ type: "boot", now: 0 });
    system.advance(100);
    const fds = engine.sockets.fdsOf("lazy");
    const state = capture(engine, system);
    const next = resume(state, system);
    expect(next.engine.sup.servers.get("lazy")!.state).toBe("listening");
    expect(next.engine.resources()).toMatchObject({ listeningSockets: 1, socketWatchers: 1 });
    system.connect("tcp:8080");
    system.settle();
    expect(system.process("lazy")!.request.listenFds).toEqual(fds);
    system.serverAccepts("tcp:8080");
    shutdown(next.engine, system, next.stopListening);
    expectNothingLeft(next.engine, system);
  });

  it("keeps a server's sd_notify socket: its keep-alives after the exec count, and a missed period still aborts it", () => {
    const system = new FakeSystem();
    system.realSdNotify = true;
    const setup = fakeEngine(
      [spec("w", { readiness: { kind: "sd_notify" }, watchdogMs: 1000, stopTimeoutMs: 500, restart: { ...policy, mode: "never" } })],
      settings(),
      system,
    );
    const { engine } = setup;
    engine.dispatch({ type: "boot", now: 0 });
    const w = system.process("w")!;
    const socketPath = w.request.env.NOTIFY_SOCKET;
    system.notify(socketPath, "READY=1");
    system.advance(800);
    const state = capture(engine, system);
    system.advance(100);
    const next = resume(state, system);
    system.notify(socketPath, "WATCHDOG=1");
    // The keep-alive at 900 ms moved the period on: nothing at 1800 ms.
    system.advanceTo(1800);
    expect(next.engine.sup.servers.get("w")!.state).toBe("ready");
    // None since: aborted a period after the last one.
    system.advanceTo(1900);
    expect(system.kills.map((kill) => [kill.at, kill.signal])).toEqual([[1900, 6]]);
    shutdown(next.engine, system, next.stopListening);
    expectNothingLeft(next.engine, system);
  });

  it("watches a server's cgroup again: its end after the exec waits for the cgroup to be empty, as before", () => {
    const system = new FakeSystem();
    const cgroups = system.withCgroups();
    const setup = fakeEngine([plain("s", { restart: { ...policy, mode: "never" } })], settings(), system);
    const { engine } = setup;
    let worker: ReturnType<FakeSystem["processes"]["get"]> = undefined;
    system.onSpawn = (process) => {
      worker = process.fork();
    };
    // The worker ignores TERM: only the cgroup's SIGKILL ends it.
    system.onSignal = (process, signal) => {
      if (process !== worker) process.endAt(system.now(), null, signal);
    };
    engine.dispatch({ type: "boot", now: 0 });
    const main = system.process("s")!;
    const state = capture(engine, system);
    const next = resume(state, system);
    expect(next.engine.resources().cgroupWatches).toBe(1);
    main.end(0);
    system.settle();
    // Its worker is left in the cgroup: the run is not over until the cgroup is empty.
    expect(next.engine.sup.servers.get("s")!.state).toBe("stopping");
    expect(worker!.alive).toBe(true);
    system.advance(5000);
    expect(worker!.alive).toBe(false);
    system.settle();
    expect(next.engine.sup.servers.get("s")!.state).toBe("stopped");
    expect(cgroups.pids(next.engine.sup.servers.get("s")!.cgroup!)).toEqual([]);
    shutdown(next.engine, system, next.stopListening);
    expectNothingLeft(next.engine, system);
  });

  it("goes on reading when the exec fails: nothing is lost, nothing written twice", () => {
    const setup = fakeEngine([plain("a")], settings());
    const { engine, system } = setup;
    const lines: string[] = [];
    const stopListening = engine.onOutput((_server, line) => lines.push(line));
    engine.dispatch({ type: "boot", now: 0 });
    const a = system.process("a")!;
    a.write("one\ntw");
    engine.capture();
    a.write("o\nthree\n");
    system.settle();
    expect(lines).toEqual(["one"]);
    engine.resumeAfterFailedExec();
    system.settle();
    expect(lines).toEqual(["one", "two", "three"]);
    shutdown(engine, system, stopListening);
    expectNothingLeft(engine, system);
  });
});
