// The Starter's ping thread, one loop per ready server with a liveness check: every intervalMs (start
// to start) its admin device is pinged, and the outcome — the round trip, or why it failed — goes to
// the core as a `ping` event, which counts it (core/liveness.ts). The loop runs from the core's
// start-liveness effect to its stop-liveness effect; a ping still under way then is forgotten.

import type { ServerEvent } from "../core/server";
import type { LivenessSpec } from "../core/types";
import { describePingError, pingAdmin } from "../process/tango";

type Report = (server: string, event: ServerEvent) => void;

interface Loop {
  pid: number;
  timer: NodeJS.Timeout | null;
  stopped: boolean;
}

export class LivenessRunner {
  private readonly loops = new Map<string, Loop>();

  constructor(
    private readonly report: Report,
    private readonly clock: () => number,
  ) {}

  start(server: string, pid: number, spec: LivenessSpec, env: Readonly<Record<string, string>>): void {
    this.stop(server);
    const loop: Loop = { pid, timer: null, stopped: false };
    this.loops.set(server, loop);
    const tick = async () => {
      loop.timer = null;
      const startedAt = this.clock();
      let event: ServerEvent;
      try {
        const rttMs = await pingAdmin(server, pid, spec.target, env, spec.timeoutMs);
        event = { type: "ping", now: this.clock(), pid, rttMs };
      } catch (err) {
        event = { type: "ping", now: this.clock(), pid, rttMs: null, error: describePingError(err) };
      }
      if (loop.stopped) return;
      // The next ping starts intervalMs after this one started (at once, if this one took longer).
      loop.timer = setTimeout(run, Math.max(0, startedAt + spec.intervalMs - this.clock()));
      this.report(server, event);
    };
    const run = () => void tick();
    // The readiness check has just seen the server answer: the first ping comes one interval later.
    loop.timer = setTimeout(run, spec.intervalMs);
  }

  stop(server: string): void {
    const loop = this.loops.get(server);
    if (!loop) return;
    loop.stopped = true;
    if (loop.timer) clearTimeout(loop.timer);
    this.loops.delete(server);
  }

  /** Servers with a loop running (tests, status). */
  get running(): string[] {
    return [...this.loops.keys()];
  }
}
