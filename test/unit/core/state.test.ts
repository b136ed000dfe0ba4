// The supervisor as JSON for a reexec (core/state.ts): what goes in comes out, a record of an older
// writer gets the fields it lacked as a new server has them, and a newer format is refused.

import { describe, expect, it } from "vitest";
import { createServer } from "../../../init/core/server";
import {
  decodeSupervisor,
  decodeValue,
  encodeSupervisor,
  encodeValue,
  processesOf,
  readableFormat,
  restoreServer,
  STATE_FORMAT,
  StateError,
} from "../../../init/core/state";
import { createSupervisor, step, type Supervisor, type SupervisorEvent } from "../../../init/core/supervisor";
import { settings, spec } from "./fixtures";

function run(sup: Supervisor, events: SupervisorEvent[]): Supervisor {
  for (const event of events) sup = step(sup, event).sup;
  return sup;
}

describe("the reexec state of the core", () => {
  it("keeps Maps, Sets and the infinities through JSON", () => {
    const value = { map: new Map([["a", new Set([1, 2])]]), low: Number.NEGATIVE_INFINITY, high: Number.POSITIVE_INFINITY, list: [null, "x", true] };
    const through = decodeValue(JSON.parse(JSON.stringify(encodeValue(value))));
    expect(through).toEqual(value);
  });

  it("gives back the same supervisor after a boot, a start, a crash and a backoff", () => {
    const specs = [spec("TangoTest/t1"), spec("TangoTest/t2", { level: 2, requires: ["TangoTest/t1"] }), spec("Other/o1", { preStart: ["/bin/prep"] })];
    let sup = createSupervisor({ settings: settings(), servers: specs }, 0);
    sup = run(sup, [
      { type: "boot", now: 0 },
      { type: "server", name: "TangoTest/t1", event: { type: "spawned", now: 1, pid: 101 } },
      { type: "server", name: "Other/o1", event: { type: "hook-spawned", now: 1, pid: 102 } },
      { type: "server", name: "TangoTest/t1", event: { type: "ready", now: 50 } },
      { type: "server", name: "TangoTest/t2", event: { type: "spawned", now: 51, pid: 103 } },
      { type: "server", name: "TangoTest/t2", event: { type: "exited", now: 60, pid: 103, code: 1, signal: null } },
    ]);
    const through = decodeSupervisor(JSON.parse(JSON.stringify(encodeSupervisor(sup))));
    expect(through).toEqual(sup);
    expect(through.servers.get("TangoTest/t2")!.state).toBe("backoff");
    // The restored machine goes on as the original would.
    const event: SupervisorEvent = { type: "server", name: "TangoTest/t1", event: { type: "exited", now: 70, pid: 101, code: null, signal: 9 } };
    expect(step(through, event)).toEqual(step(sup, event));
    expect(processesOf(through)).toEqual([
      { server: "TangoTest/t1", pid: 101, role: "server" },
      { server: "Other/o1", pid: 102, role: "hook" },
    ]);
  });

  it("fills what an older writer did not know with a new server's values", () => {
    const full = createServer(spec("a"), 5);
    const { watchdog: _w, daemon: _d, populated: _p, ...older } = { ...full, state: "ready" as const, pid: 42 };
    const restored = restoreServer(JSON.parse(JSON.stringify(older)));
    expect(restored).toEqual({ ...full, state: "ready", pid: 42 });
    expect(() => restoreServer({ state: "ready" })).toThrow(StateError);
  });

  it("reads its own format and older ones, and refuses a newer one (a downgrade) saying whose it is", () => {
    expect(readableFormat({ format: STATE_FORMAT, writer: "0.1.0" })).toEqual({ ok: true, header: { format: STATE_FORMAT, writer: "0.1.0" } });
    expect(readableFormat({ format: STATE_FORMAT + 1, writer: "9.9.9" })).toEqual({
      ok: false,
      newer: true,
      why: `state format ${STATE_FORMAT + 1} (written by 9.9.9) is newer than this build reads (${STATE_FORMAT})`,
    });
    expect(readableFormat({ writer: "x" })).toMatchObject({ ok: false, newer: false });
    expect(readableFormat("no")).toMatchObject({ ok: false, newer: false });
    expect(() => decodeSupervisor({ servers: [] })).toThrow(StateError);
  });
});
