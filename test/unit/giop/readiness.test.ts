// The readiness probe `tango` (process/readiness.ts) against peers that replay the captured replies
// of Debian's TangoTest and DataBaseds: it pings only once the server printed its ready line (a
// TangoTest 9.3 pinged while it still exports its devices may crash), and a device the database
// does not know fails it at once.

import { afterEach, describe, expect, it } from "vitest";
import type { ServerOutput } from "../../../init/log/server-output";
import { startProbe } from "../../../init/process/readiness";
import { sharedGiopClient } from "../../../init/giop/client";
import { capture, replaying, type FakePeer } from "./captures";

type Listener = (line: string, stream: "stdout" | "stderr", at: string) => void;

/** The part of a ServerOutput a probe uses: lines to listen to, notes it writes. */
function fakeOutput() {
  const listeners = new Set<Listener>();
  const notes: string[] = [];
  const output = {
    onLine(listener: Listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    note: (text: string) => notes.push(text),
  };
  return { output: output as unknown as ServerOutput, notes, say: (line: string) => [...listeners].forEach((l) => l(line, "stdout", "")) };
}

const peers: FakePeer[] = [];
afterEach(async () => {
  sharedGiopClient().close();
  await Promise.all(peers.splice(0).map((p) => p.close()));
});

function outcome() {
  let settle: (value: string) => void = () => {};
  const done = new Promise<string>((resolve) => (settle = resolve));
  return { done, callbacks: { onReady: () => settle("ready"), onFailed: (why: string) => settle(`failed: ${why}`) } };
}

describe("readiness tango", () => {
  it("pings the admin device only after the ready line, then is ready", async () => {
    const admin = await replaying(capture("admin-ping"));
    peers.push(admin);
    const { output, say } = fakeOutput();
    const { done, callbacks } = outcome();
    const probe = startProbe(
      { kind: "tango", target: { via: "endpoint", host: "127.0.0.1", port: admin.port }, intervalMs: 20 },
      { name: "TangoTest/rec", pid: 42, output, notifyFd: -1, notifications: null, env: {} },
      callbacks,
    );
    try {
      say("Blah: exporting devices");
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(admin.requests).toHaveLength(0);
      say("Ready to accept request");
      expect(await done).toBe("ready");
      expect(admin.requests).toHaveLength(1);
      expect(admin.requests[0].toString("latin1")).toContain("dserver/tangotest/rec");
    } finally {
      probe.cancel();
    }
  });

  it("through the database: a device it does not know fails the probe at once", async () => {
    const database = await replaying(capture("import-device-unknown"));
    peers.push(database);
    const { output, say } = fakeOutput();
    const { done, callbacks } = outcome();
    const probe = startProbe(
      { kind: "tango", target: { via: "database" }, intervalMs: 20 },
      { name: "TangoTest/nowhere", pid: 42, output, notifyFd: -1, notifications: null, env: { TANGO_HOST: `127.0.0.1:${database.port}` } },
      callbacks,
    );
    try {
      say("Ready to accept request");
      expect(await done).toBe("failed: dserver/TangoTest/nowhere: DB_DeviceNotDefined: device no/such/device not defined in the database !");
    } finally {
      probe.cancel();
    }
  });

  it("a device that does not answer yet is asked again, and the reason noted once in the server's log", async () => {
    const { output, say, notes } = fakeOutput();
    const { callbacks } = outcome();
    const probe = startProbe(
      { kind: "tango", target: { via: "endpoint", host: "127.0.0.1", port: 1 }, intervalMs: 20 },
      { name: "TangoTest/x", pid: 42, output, notifyFd: -1, notifications: null, env: {} },
      callbacks,
    );
    say("Ready to accept request");
    await new Promise((resolve) => setTimeout(resolve, 300));
    probe.cancel();
    expect(notes).toEqual([expect.stringMatching(/^ping of dserver\/TangoTest\/x failed, trying again: TRANSIENT: cannot connect to 127\.0\.0\.1:1/)]);
  });
});
