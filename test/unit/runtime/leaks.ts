// The end of every engine scenario: nothing the engine opened or armed is left.

import { expect } from "vitest";
import type { Engine } from "../../../init/runtime/engine";
import type { FakeSystem } from "./fake-system";

/**
 * No timer, fd, pipe reader, probe, process, socket file, datagram reader, cgroup watch or daemon watch
 * left; the engine holds nothing but its servers' idle outputs.
 */
export function expectNothingLeft(engine: Engine, system: FakeSystem, { listeners = 0 } = {}): void {
  system.settle();
  expect(system.leftovers()).toEqual({
    timers: 0,
    fds: [],
    readers: 0,
    probes: 0,
    processes: [],
    files: [],
    datagramReaders: 0,
    exitWatches: 0,
    cgroupWatches: 0,
    watches: 0,
  });
  const resources = engine.resources();
  expect({ ...resources, servers: undefined, lineListeners: undefined }).toEqual({
    timers: 0,
    probes: 0,
    notifySockets: 0,
    notifyPipes: 0,
    outputPipes: 0,
    stepListeners: listeners,
    outputListeners: 0,
    cgroupWatches: 0,
    mainPidSearches: 0,
    daemonWatches: 0,
    notifyReaders: 0,
    servers: undefined,
    lineListeners: undefined,
    listeningSockets: 0,
    socketWatchers: 0,
  });
  // Each output keeps one listener: the engine's own, which forwards its lines.
  expect(resources.lineListeners).toBe(resources.servers);
}
