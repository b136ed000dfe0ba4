// The Tango source's waits end: a source that waits for servers of the file (waitFor) reads the
// database after waitForTimeout at the latest, when they never get ready.

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { TangoSourceWatcher } from "../../../init/config/tango/watcher";
import { tangoSourceSettings } from "../../../init/config/tango/schema";
import type { TangoSource } from "../../../init/config/tango/source";
import type { TangoSnapshot } from "../../../init/config/tango/read";

function source(waitFor: string[], read: () => Promise<TangoSnapshot>): TangoSource {
  return {
    settings: tangoSourceSettings({ waitFor, waitForTimeout: 5000 }),
    connection: { display: "mysql://tango@db:3306/tango" } as TangoSource["connection"],
    host: "host1",
    read,
    compose: () => {
      throw new Error("not used");
    },
  };
}

const snapshot: TangoSnapshot = {
  host: "host1",
  starterDevice: "tango/admin/host1",
  servers: [],
  properties: {},
  classProperties: {},
  readAt: 0,
  database: "db",
  answeredBy: "db:10000",
};

describe("the Tango source's wait for its servers", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("reads once the servers it waits for are ready", async () => {
    const read = vi.fn(() => Promise.resolve(snapshot));
    const onSnapshot = vi.fn();
    const watcher = new TangoSourceWatcher(source(["DataBaseds/2"], read), { onSnapshot });
    expect(watcher.waiting).toBe(true);
    expect(watcher.status().message).toContain("5 s at most");
    watcher.setWaitingFor([]);
    await vi.runOnlyPendingTimersAsync();
    expect(read).toHaveBeenCalledTimes(1);
    expect(onSnapshot).toHaveBeenCalledWith(snapshot);
    // The deadline went with the wait: nothing else is armed.
    expect(vi.getTimerCount()).toBe(0);
    watcher.close();
  });

  it("reads anyway at waitForTimeout when they never get ready", async () => {
    const read = vi.fn(() => Promise.resolve(snapshot));
    const watcher = new TangoSourceWatcher(source(["DataBaseds/2"], read), { onSnapshot: () => {} });
    await vi.advanceTimersByTimeAsync(4999);
    expect(read).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(read).toHaveBeenCalledTimes(1);
    expect(watcher.status().state).toBe("up");
    watcher.close();
  });

  it("close ends the wait and its deadline", () => {
    const read = vi.fn(() => Promise.resolve(snapshot));
    const watcher = new TangoSourceWatcher(source(["DataBaseds/2"], read), { onSnapshot: () => {} });
    watcher.close();
    expect(vi.getTimerCount()).toBe(0);
  });
});
