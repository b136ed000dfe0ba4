// The control protocol's subscription (`watch`), `refresh-sources`, and start-all / stop-all of named
// servers: the built binary as PID 1 of a PID namespace supervising fake servers, a raw client on the
// socket. These are what the Tango Starter device (init/starter-device/) is made of.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sleep } from "./helpers";
import { rawConnect, startInit, waitForStatus, type Init, type RawConnection } from "../fixtures/control/harness";

interface Message {
  id: number | null;
  ok?: boolean;
  result?: Record<string, unknown>;
  error?: { code: string; message: string };
  event?: string;
  data?: unknown;
}

interface ServerStatus {
  name: string;
  state: string;
  starter: string;
  pid: number | null;
  desired: string;
}

/** A raw client: requests by id, every message kept in order. */
async function client(socket: string): Promise<{ raw: RawConnection; messages: () => Message[]; request: (id: number, cmd: string, args?: object) => void }> {
  const raw = await rawConnect(socket);
  return {
    raw,
    messages: () =>
      raw
        .received()
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Message),
    request: (id, cmd, args = {}) => raw.socket.write(`${JSON.stringify({ v: 1, id, cmd, args })}\n`),
  };
}

async function until<T>(what: string, check: () => T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(20);
  }
}

/** The states a server went through in the "servers" events of a watch, in order. */
function statesOf(messages: Message[], id: number, name: string): string[] {
  return messages
    .filter((m) => m.id === id && m.event === "servers")
    .flatMap((m) => (m.data as { changed: ServerStatus[] }).changed.filter((s) => s.name === name).map((s) => s.state));
}

describe("watch: the status, then an event the moment a server changes", () => {
  let init: Init;
  beforeAll(async () => {
    init = await startInit("ctl-watch", [
      { name: "Fake/one", level: 1 },
      { name: "Fake/two", level: 2 },
      { name: "Fake/three", level: 3, autostart: false },
      { name: "Fake/four", level: 3, autostart: false },
    ]);
    await waitForStatus(init, (s) => s.init.phase === "running", "the boot is complete");
  });
  afterAll(async () => {
    await init?.stop();
  });

  it("answers with every server, then pushes each change of the servers watched, after the answer, past the idle timeout", async () => {
    const watcher = await client(init.socket);
    watcher.request(1, "watch");
    const answer = await until("the watch's answer", () => watcher.messages().find((m) => m.id === 1 && m.ok !== undefined));
    expect(watcher.messages()[0]).toEqual(answer);
    const servers = answer.result!.servers as ServerStatus[];
    expect(servers.map((s) => [s.name, s.state, s.starter])).toEqual([
      ["Fake/one", "ready", "ON"],
      ["Fake/two", "ready", "ON"],
      ["Fake/three", "stopped", "FAULT"],
      ["Fake/four", "stopped", "FAULT"],
    ]);
    expect(answer.result!.init).toMatchObject({ phase: "running" });

    // The harness's idle timeout is 1 s: a subscription is not idle.
    await sleep(2500);
    expect(watcher.raw.socket.destroyed).toBe(false);

    expect((await init.cli(["stop", "Fake/one"])).code).toBe(0);
    expect((await init.cli(["start", "Fake/one"])).code).toBe(0);
    const states = await until("Fake/one stopped and ready again", () => {
      const seen = statesOf(watcher.messages(), 1, "Fake/one");
      return seen.at(-1) === "ready" && seen.includes("stopped") ? seen : undefined;
    });
    // Starting twice: without a pid, then with the pid of the process just spawned.
    expect(states.filter((state, i) => state !== states[i - 1])).toEqual(["stopping", "stopped", "starting", "ready"]);
    // Only the server that changed is in the events.
    expect(statesOf(watcher.messages(), 1, "Fake/two")).toEqual([]);
    const last = watcher
      .messages()
      .filter((m) => m.event === "servers")
      .at(-1)!.data as { changed: ServerStatus[] };
    expect(last.changed[0]).toMatchObject({ name: "Fake/one", starter: "ON", desired: "up" });
    expect(last.changed[0].pid).toBeGreaterThan(1);
    watcher.raw.socket.destroy();
  });

  it("watches only the servers named (globs too)", async () => {
    const watcher = await client(init.socket);
    watcher.request(7, "watch", { servers: ["Fake/t*"] });
    const answer = await until("the answer", () => watcher.messages().find((m) => m.id === 7 && m.ok !== undefined));
    expect((answer.result!.servers as ServerStatus[]).map((s) => s.name)).toEqual(["Fake/two", "Fake/three"]);
    expect((await init.cli(["restart", "Fake/one", "Fake/two"])).code).toBe(0);
    await until("Fake/two ready again", () => (statesOf(watcher.messages(), 7, "Fake/two").at(-1) === "ready" ? true : undefined));
    expect(statesOf(watcher.messages(), 7, "Fake/one")).toEqual([]);
    watcher.raw.socket.destroy();
  });

  it("start-all and stop-all of named servers: only those, levels in order", async () => {
    const watcher = await client(init.socket);
    watcher.request(1, "watch");
    await until("the answer", () => watcher.messages().find((m) => m.id === 1 && m.ok !== undefined));
    watcher.request(2, "start-all", { servers: ["Fake/three"], wait: true, timeoutMs: 10_000 });
    const started = await until("start-all answered", () => watcher.messages().find((m) => m.id === 2 && m.ok !== undefined));
    expect(started.result).toMatchObject({ outcomes: [{ name: "Fake/three", ok: true, state: "ready" }] });
    let status = await init.status();
    expect(status.servers.find((s) => s.name === "Fake/four")!.state).toBe("stopped");
    watcher.request(3, "stop-all", { servers: ["Fake/three", "Fake/one"], wait: true, timeoutMs: 10_000 });
    await until("stop-all answered", () => watcher.messages().find((m) => m.id === 3 && m.ok !== undefined));
    status = await init.status();
    expect(status.servers.map((s) => [s.name, s.state])).toEqual([
      ["Fake/one", "stopped"],
      ["Fake/two", "ready"],
      ["Fake/three", "stopped"],
      ["Fake/four", "stopped"],
    ]);
    // Reverse level order: one (level 1) was asked to stop in the step where three (level 3) had
    // stopped, not before (an event lists the servers one step changed, in config order).
    const events = watcher.messages().filter((m) => m.id === 1 && m.event === "servers");
    const stepOf = (name: string, state: string) =>
      events.findIndex((m) => (m.data as { changed: ServerStatus[] }).changed.some((s) => s.name === name && s.state === state));
    expect(stepOf("Fake/three", "stopping")).toBeGreaterThanOrEqual(0);
    expect(stepOf("Fake/three", "stopped")).toBeLessThanOrEqual(stepOf("Fake/one", "stopping"));
    expect(stepOf("Fake/three", "stopping")).toBeLessThan(stepOf("Fake/one", "stopping"));
    expect((await init.cli(["start", "Fake/one"])).code).toBe(0);
    watcher.raw.socket.destroy();
  });

  it("refresh-sources without a source changes nothing; a reload's removal is an event, and so are its sources", async () => {
    const watcher = await client(init.socket);
    watcher.request(1, "watch");
    await until("the answer", () => watcher.messages().find((m) => m.id === 1 && m.ok !== undefined));
    watcher.request(2, "refresh-sources");
    const refreshed = await until("refresh-sources answered", () => watcher.messages().find((m) => m.id === 2 && m.ok !== undefined));
    expect(refreshed.result).toEqual({ added: [], removed: [], changed: [], unchanged: ["Fake/one", "Fake/two", "Fake/three", "Fake/four"], notes: [] });

    init.writeConfig([
      { name: "Fake/one", level: 1 },
      { name: "Fake/two", level: 2 },
      { name: "Fake/three", level: 3, autostart: false },
    ]);
    expect((await init.cli(["reload"])).code).toBe(0);
    await until("Fake/four removed", () =>
      watcher.messages().some((m) => m.id === 1 && m.event === "servers" && (m.data as { removed: string[] }).removed.includes("Fake/four")) ? true : undefined,
    );
    expect(watcher.messages().some((m) => m.id === 1 && m.event === "sources")).toBe(true);
    watcher.raw.socket.destroy();
  });

  it("the shutdown is a phase event, then every server stopping", async () => {
    const watcher = await client(init.socket);
    watcher.request(1, "watch");
    await until("the answer", () => watcher.messages().find((m) => m.id === 1 && m.ok !== undefined));
    await init.process.signal("SIGTERM");
    await until("the shutting-down phase", () =>
      watcher.messages().some((m) => m.event === "phase" && (m.data as { phase: string }).phase === "shutting-down") ? true : undefined,
    );
    await until("Fake/one stopped", () => (statesOf(watcher.messages(), 1, "Fake/one").includes("stopped") ? true : undefined));
    await init.process.result;
  });
});
