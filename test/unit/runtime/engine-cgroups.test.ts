// The real engine over a fake world with cgroup v2: servers in cgroups of their own (stopped and killed
// as a whole, gone only once empty, limits written, OOM kills reported), forking daemons (pidFile or
// cgroup), and watchdogs (sd_notify WATCHDOG=1 read from the server's socket). Each scenario ends
// with nothing left: no process, fd, timer, watch or reader.

import { describe, expect, it } from "vitest";
import type { ServerSpec } from "../../../init/core/types";
import { policy, settings, spec } from "../core/fixtures";
import { fakeEngine, FakeSystem, type FakeProcess } from "./fake-system";
import { expectNothingLeft } from "./leaks";

const plain = (name: string, overrides: Partial<ServerSpec> = {}) => spec(name, { readiness: { kind: "none" }, ...overrides });
const CG = (name: string) => `/sys/fs/cgroup/servers/${name.replace("/", "@")}`;

function shutdown(setup: ReturnType<typeof fakeEngine>): void {
  setup.engine.dispatch({ type: "shutdown", now: setup.system.now() });
  setup.system.advance(60_000);
  expect(setup.engine.sup.phase).toBe("stopped");
}

function withCgroups() {
  const system = new FakeSystem();
  const cgroups = system.withCgroups();
  return { system, cgroups };
}

describe("servers in cgroups of their own", () => {
  it("a double fork that left the process group is stopped with its server; the server is stopped once its cgroup is empty", () => {
    const { system, cgroups } = withCgroups();
    const setup = fakeEngine([plain("TangoTest/t1")], settings(), system);
    const { engine } = setup;
    let grandchild: FakeProcess | null = null;
    system.onSpawn = (process) => {
      // It forks a child that forks again and exits: the grandchild is an orphan with a session of its own.
      const child = process.fork();
      grandchild = child.fork();
      child.end(0);
    };
    // The grandchild ignores TERM.
    system.onSignal = (process, signal) => {
      if (process !== grandchild) process.endAt(system.now(), null, signal);
    };
    engine.dispatch({ type: "boot", now: 0 });
    const server = system.process("TangoTest/t1")!;
    expect(server.request.cgroup).toBe(CG("TangoTest/t1"));
    expect(engine.sup.servers.get("TangoTest/t1")).toMatchObject({ state: "ready", cgroup: CG("TangoTest/t1"), populated: true });
    expect(cgroups.pids(CG("TangoTest/t1"))).toEqual([server.pid, grandchild!.pid]);
    expect(engine.cgroupStats("TangoTest/t1")).toMatchObject({ processes: 2, memoryBytes: 2 * 1024 * 1024 });

    engine.serverEvent("TangoTest/t1", { type: "stop", now: system.now() });
    system.settle();
    // TERM went to every process of the cgroup; the server ended, its grandchild did not: still stopping.
    expect(cgroups.signalled).toEqual([{ at: 0, cgroup: CG("TangoTest/t1"), signal: 15 }]);
    expect([server.alive, grandchild!.alive, engine.sup.servers.get("TangoTest/t1")!.state]).toEqual([false, true, "stopping"]);
    system.advance(5000);
    // SIGKILL to the whole cgroup at the stop timeout; then it is empty, and the server stopped.
    expect(cgroups.signalled.at(-1)).toEqual({ at: 5000, cgroup: CG("TangoTest/t1"), signal: 9 });
    expect(grandchild!.alive).toBe(false);
    expect(engine.sup.servers.get("TangoTest/t1")).toMatchObject({ state: "stopped", reason: "stop-timeout", populated: false });
    expect(engine.cgroupStats("TangoTest/t1")).toBeNull();
    shutdown(setup);
    expectNothingLeft(engine, system);
  });

  it("writes each server's limits to its cgroup; a refused one is a warning; without cgroup v2 the engine says nothing (the supervisor did)", () => {
    const { system, cgroups } = withCgroups();
    cgroups.refuse.add("io.weight");
    const limits = { "memory.max": "268435456", "cpu.weight": "50", "io.weight": "50" };
    const setup = fakeEngine([plain("a", { limits })], settings(), system);
    setup.engine.dispatch({ type: "boot", now: 0 });
    expect(cgroups.limits.get(CG("a"))).toEqual({ "memory.max": "268435456", "cpu.weight": "50" });
    expect(setup.records.filter((r) => r.level === 40).map((r) => r.msg)).toEqual(["a: limits not applied: io.weight"]);
    shutdown(setup);
    expectNothingLeft(setup.engine, system);

    const bare = fakeEngine([plain("a", { limits })], settings());
    bare.engine.dispatch({ type: "boot", now: 0 });
    bare.system.process("a")!.end(1);
    bare.system.advance(2000);
    expect(bare.system.process("a")!.request.cgroup).toBeUndefined();
    expect(bare.records.filter((r) => String(r.msg).includes("limits"))).toEqual([]);
    shutdown(bare);
    expectNothingLeft(bare.engine, bare.system);
  });

  it("reports an OOM kill as the exit's reason, and the restart policy restarts it in a fresh cgroup", () => {
    const { system, cgroups } = withCgroups();
    const setup = fakeEngine([plain("hog", { limits: { "memory.max": "33554432" }, restart: { ...policy, initialDelayMs: 100 } })], settings(), system);
    const { engine } = setup;
    engine.dispatch({ type: "boot", now: 0 });
    const first = system.process("hog")!;
    system.advance(1000);
    cgroups.oom.set(CG("hog"), 1);
    first.end(null, 9);
    system.settle();
    const server = engine.sup.servers.get("hog")!;
    expect([server.state, server.reason, server.lastExit?.reason]).toEqual(["backoff", "oom-killed", "oom-killed"]);
    expect(setup.progress).toContain("starter-init: [ EXIT ] hog killed by the OOM killer after 1000 ms; restarting in 100 ms");
    system.advance(100);
    expect(system.process("hog")!.pid).not.toBe(first.pid);
    expect(cgroups.oomKills(CG("hog"))).toBe(0);
    shutdown(setup);
    expectNothingLeft(engine, system);
  });
});

describe("type: forking", () => {
  it("a daemon that writes its pidFile late is found once it has; its crash is seen; its stop is complete", () => {
    const { system, cgroups } = withCgroups();
    const setup = fakeEngine(
      [plain("rsyncd", { type: "forking", pidFile: "/run/rsyncd.pid", restart: { ...policy, initialDelayMs: 100 } })],
      settings(),
      system,
    );
    const { engine } = setup;
    const daemons: FakeProcess[] = [];
    system.onSpawn = (launcher) => {
      const daemon = launcher.fork();
      daemons.push(daemon);
      system.at(system.now() + 10, () => launcher.end(0));
      system.at(system.now() + 200, () => system.pidFiles.set("/run/rsyncd.pid", daemon.pid));
    };
    engine.dispatch({ type: "boot", now: 0 });
    system.advance(100);
    expect(engine.sup.servers.get("rsyncd")).toMatchObject({ state: "starting", daemon: "seeking", pid: null });
    expect(engine.resources().mainPidSearches).toBe(1);
    system.advance(150);
    expect(engine.sup.servers.get("rsyncd")).toMatchObject({ state: "ready", daemon: "found", pid: daemons[0].pid });
    // The crash: the daemon dies by a signal, its cgroup empties, the restart policy restarts it.
    system.pidFiles.delete("/run/rsyncd.pid");
    daemons[0].end(null, 11);
    system.settle();
    expect(engine.sup.servers.get("rsyncd")).toMatchObject({ state: "backoff", reason: "killed-by-signal" });
    system.advance(400);
    expect(engine.sup.servers.get("rsyncd")).toMatchObject({ state: "ready", pid: daemons[1].pid });
    // A worker it forked, then the stop: every process of the cgroup is gone.
    const worker = daemons[1].fork();
    engine.serverEvent("rsyncd", { type: "stop", now: system.now() });
    system.settle();
    expect([daemons[1].alive, worker.alive, cgroups.pids(CG("rsyncd"))]).toEqual([false, false, []]);
    expect(engine.sup.servers.get("rsyncd")!.state).toBe("stopped");
    shutdown(setup);
    expectNothingLeft(engine, system);
  });

  it("without a pidFile the daemon is the process of its cgroup whose parent is outside it", () => {
    const { system } = withCgroups();
    const setup = fakeEngine([plain("d", { type: "forking" })], settings(), system);
    let daemon: FakeProcess | null = null;
    system.onSpawn = (launcher) => {
      daemon = launcher.fork();
      daemon.fork(); // a worker: its parent is in the cgroup
      launcher.endAt(system.now(), 0);
    };
    setup.engine.dispatch({ type: "boot", now: 0 });
    system.settle();
    expect(setup.engine.sup.servers.get("d")).toMatchObject({ state: "ready", pid: daemon!.pid });
    shutdown(setup);
    expectNothingLeft(setup.engine, system);
  });

  it("a launcher that exits 0 leaving nothing fails the start as no-main-process", () => {
    const { system } = withCgroups();
    const setup = fakeEngine([plain("d", { type: "forking", restart: { ...policy, mode: "never" } })], settings(), system);
    system.onSpawn = (launcher) => launcher.endAt(system.now() + 5, 0);
    setup.engine.dispatch({ type: "boot", now: 0 });
    system.advance(100);
    expect(setup.engine.sup.servers.get("d")).toMatchObject({ state: "failed", reason: "no-main-process" });
    expect(setup.records.some((r) => r.msg === "no main process: no process left in its cgroup")).toBe(true);
    shutdown(setup);
    expectNothingLeft(setup.engine, system);
  });

  it("without cgroups it needs a pidFile: the daemon's exit is claimed, and its end seen", () => {
    const system = new FakeSystem();
    const setup = fakeEngine([plain("d", { type: "forking", pidFile: "/run/d.pid", restart: { ...policy, mode: "never" } })], settings(), system);
    let daemon: FakeProcess | null = null;
    system.onSpawn = (launcher) => {
      daemon = launcher.fork();
      system.pidFiles.set("/run/d.pid", daemon.pid);
      launcher.endAt(system.now(), 0);
    };
    setup.engine.dispatch({ type: "boot", now: 0 });
    system.settle();
    expect(setup.engine.sup.servers.get("d")).toMatchObject({ state: "ready", pid: daemon!.pid });
    daemon!.end(3);
    system.settle();
    expect(setup.engine.sup.servers.get("d")).toMatchObject({ state: "failed", reason: "exited" });
    expect(setup.engine.sup.servers.get("d")!.lastExit?.code).toBe(3);
    shutdown(setup);
    expectNothingLeft(setup.engine, system);
  });
});

describe("watchdogs", () => {
  it("WATCHDOG_USEC and WATCHDOG_PID for the server; keep-alives on its socket keep it up; missing ones abort it; the restart policy restarts it", () => {
    const system = new FakeSystem();
    system.realSdNotify = true;
    const setup = fakeEngine(
      [spec("w", { readiness: { kind: "sd_notify" }, watchdogMs: 1000, stopTimeoutMs: 500, restart: { ...policy, initialDelayMs: 100 } })],
      settings(),
      system,
    );
    const { engine } = setup;
    // It ignores SIGABRT (a core dump that takes long): KILL comes a stop timeout later.
    system.onSignal = (process, signal) => {
      if (signal !== 6) process.endAt(system.now(), null, signal);
    };
    engine.dispatch({ type: "boot", now: 0 });
    const first = system.process("w")!;
    expect(first.request.env).toMatchObject({ NOTIFY_SOCKET: "/run/test/notify-w.sock", WATCHDOG_USEC: "1000000" });
    expect(first.request.pidEnv).toEqual(["WATCHDOG_PID"]);
    system.notify(first.request.env.NOTIFY_SOCKET, "READY=1\nSTATUS=serving");
    expect(engine.sup.servers.get("w")!.state).toBe("ready");
    // The socket stays open for the keep-alives.
    expect(engine.resources().notifySockets).toBe(1);
    for (let i = 0; i < 6; i++) {
      system.advance(500);
      system.notify(first.request.env.NOTIFY_SOCKET, "WATCHDOG=1");
    }
    expect(engine.sup.servers.get("w")).toMatchObject({ state: "ready", watchdog: { lastAt: 3000, pets: 6 } });
    // It stops sending: a period after the last keep-alive, SIGABRT; KILL a stop timeout later.
    system.advance(1000);
    expect(system.kills.map((k) => [k.at, k.signal])).toEqual([[4000, 6]]);
    expect(setup.progress).toContain("starter-init: [ KILL ] w no WATCHDOG=1 within 1000 ms: aborting it (SIGABRT)");
    system.advance(500);
    expect(first.alive).toBe(false);
    expect(engine.sup.servers.get("w")).toMatchObject({ state: "backoff", reason: "watchdog" });
    expect(engine.resources().notifySockets).toBe(0);
    system.advance(100);
    const second = system.process("w")!;
    expect(second.pid).not.toBe(first.pid);
    system.notify(second.request.env.NOTIFY_SOCKET, "READY=1");
    system.notify(second.request.env.NOTIFY_SOCKET, "WATCHDOG=trigger");
    expect(engine.sup.servers.get("w")).toMatchObject({ state: "stopping", reason: "watchdog" });
    shutdown(setup);
    expectNothingLeft(engine, system);
  });
});
