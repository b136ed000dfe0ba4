// The systemd notification module's pure parts: what it takes from the environment, and its one
// status line. (The datagrams themselves, in order, are tested against a receiver in
// test/integration/systemd.test.ts.)

import { describe, expect, it } from "vitest";
import pino from "pino";
import { statusLine, takeSystemdEnvironment } from "../../../init/runtime/notify";
import { createSupervisor, step, type Supervisor, type SupervisorEvent } from "../../../init/core/supervisor";
import { startLiveness } from "../../../init/core/liveness";
import { settings, spec } from "../core/fixtures";

function quietLog() {
  const lines: string[] = [];
  const log = pino({ level: "debug" }, { write: (line: string) => lines.push(line) });
  return { log, lines };
}

describe("takeSystemdEnvironment", () => {
  it("takes NOTIFY_SOCKET and half of WATCHDOG_USEC, and removes all three variables", () => {
    const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: "/run/systemd/notify", WATCHDOG_USEC: "30000000", WATCHDOG_PID: "42", PATH: "/bin" };
    expect(takeSystemdEnvironment(env, quietLog().log, 42)).toEqual({ socket: "/run/systemd/notify", watchdogIntervalMs: 15_000 });
    expect(env).toEqual({ PATH: "/bin" });
  });

  it("accepts an abstract name; no watchdog without WATCHDOG_USEC, or when WATCHDOG_PID names another process", () => {
    expect(takeSystemdEnvironment({ NOTIFY_SOCKET: "@sd-notify" }, quietLog().log)).toEqual({ socket: "@sd-notify", watchdogIntervalMs: null });
    expect(takeSystemdEnvironment({ NOTIFY_SOCKET: "/n", WATCHDOG_USEC: "1000000", WATCHDOG_PID: "7" }, quietLog().log, 8)?.watchdogIntervalMs).toBeNull();
  });

  it("warns about what it cannot use, and still removes the variables", () => {
    const { log, lines } = quietLog();
    const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: "vsock:2:1234", WATCHDOG_USEC: "1000" };
    expect(takeSystemdEnvironment(env, log)).toBeNull();
    expect(env).toEqual({});
    expect(lines.join("")).toContain("only a Unix socket path or an @abstract name is supported");
    const bad = quietLog();
    expect(takeSystemdEnvironment({ NOTIFY_SOCKET: "/n", WATCHDOG_USEC: "soon" }, bad.log)).toEqual({ socket: "/n", watchdogIntervalMs: null });
    expect(bad.lines.join("")).toContain("WATCHDOG_USEC=soon: not a number of microseconds");
  });

  it("is null without NOTIFY_SOCKET (WATCHDOG_* alone are removed too)", () => {
    const env: NodeJS.ProcessEnv = { WATCHDOG_USEC: "1000000" };
    expect(takeSystemdEnvironment(env, quietLog().log)).toBeNull();
    expect(env).toEqual({});
  });
});

describe("statusLine", () => {
  const run = (sup: Supervisor, ...events: SupervisorEvent[]) => events.reduce((current, event) => step(current, event).sup, sup);

  it("counts ready servers of all, then the others by state; booting and stopping say so", () => {
    let sup = createSupervisor({ settings: settings(), servers: [spec("A"), spec("B"), spec("C", { autostart: false })] }, 0);
    sup = run(sup, { type: "boot", now: 0 });
    expect(statusLine(sup)).toBe("booting: 0 of 3 servers ready, 2 starting, 1 stopped");
    sup = run(sup, { type: "server", name: "A", event: { type: "spawned", now: 1, pid: 10 } }, { type: "server", name: "A", event: { type: "ready", now: 2 } });
    expect(statusLine(sup)).toBe("booting: 1 of 3 servers ready, 1 starting, 1 stopped");
    sup = run(sup, { type: "server", name: "B", event: { type: "spawned", now: 1, pid: 11 } }, { type: "server", name: "B", event: { type: "ready", now: 3 } });
    expect(sup.phase).toBe("running");
    expect(statusLine(sup)).toBe("2 of 3 servers ready, 1 stopped");
    sup = run(sup, { type: "shutdown", now: 4 });
    expect(statusLine(sup)).toBe("stopping: 2 of 3 servers still running");
  });

  it("counts a ready server that does not answer its liveness ping as unresponsive", () => {
    let sup = createSupervisor({ settings: settings(), servers: [spec("A"), spec("B")] }, 0);
    sup = run(sup, { type: "boot", now: 0 });
    for (const [name, pid] of [
      ["A", 10],
      ["B", 11],
    ] as const) {
      sup = run(sup, { type: "server", name, event: { type: "spawned", now: 1, pid } }, { type: "server", name, event: { type: "ready", now: 2 } });
    }
    const b = sup.servers.get("B")!;
    sup.servers.set("B", { ...b, liveness: { ...startLiveness(2), state: "unresponsive", failures: 2 } });
    expect(statusLine(sup)).toBe("1 of 2 servers ready, 1 unresponsive");
  });

  it("says server for one", () => {
    const sup = createSupervisor({ settings: settings(), servers: [spec("A")] }, 0);
    expect(statusLine(run(sup, { type: "boot", now: 0 }))).toBe("booting: 0 of 1 server ready, 1 starting");
  });
});
