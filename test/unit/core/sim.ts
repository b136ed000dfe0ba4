// A fake runtime with a fake clock: executes the supervisor's effects the way the real runtime
// would (spawns get pids, probes fire after a set delay, signals make processes exit, timers fire
// at their time) and records every effect with the time it was emitted.

import { step, createSupervisor, type Supervisor, type SupervisorEffect, type SupervisorEvent } from "../../../init/core/supervisor";
import type { ServerEvent } from "../../../init/core/server";
import type { ServerSpec, Settings } from "../../../init/core/types";

export interface Behaviour {
  /** Readiness delay after the probe starts; null: never ready. */
  readyAfterMs?: number | null;
  /** How long the process takes to exit after its stop signal; null: it ignores it. */
  exitAfterSignalMs?: number | null;
  /** The spawn fails with this errno. */
  spawnFails?: string;
  /** The process exits with code 1 this long after it was spawned. */
  crashAfterMs?: number;
}

interface Scheduled {
  at: number;
  seq: number;
  key: string | null;
  event: SupervisorEvent;
}

export interface Recorded {
  at: number;
  effect: SupervisorEffect;
}

export class Sim {
  sup: Supervisor;
  now = 0;
  readonly recorded: Recorded[] = [];
  readonly ignored: { at: number; event: SupervisorEvent; why: string }[] = [];
  private queue: Scheduled[] = [];
  private seq = 0;
  private nextPid = 100;

  constructor(
    specs: ServerSpec[],
    settings: Settings,
    private readonly behaviours: Record<string, Behaviour> = {},
  ) {
    this.sup = createSupervisor({ settings, servers: specs });
  }

  /** Applies an event now (its `now` is filled in), then executes the effects. */
  send(event: DistributiveOmit<Exclude<SupervisorEvent, { type: "server" }>, "now">): void {
    this.apply({ ...event, now: this.now } as SupervisorEvent);
  }

  request(name: string, event: DistributiveOmit<ServerEvent, "now">): void {
    this.apply({ type: "server", name, event: { ...event, now: this.now } as ServerEvent });
  }

  /** Runs everything scheduled up to and including `until`, then sets the clock there. */
  runUntil(until: number): void {
    for (;;) {
      this.queue.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.queue[0];
      if (next === undefined || next.at > until) break;
      this.queue.shift();
      this.now = next.at;
      this.apply(next.event);
    }
    this.now = until;
  }

  /** Times at which each server was spawned, in order. */
  spawns(): [string, number][] {
    return this.of("spawn").map(({ at, effect }) => [effect.server, at]);
  }

  signals(): [string, number, number][] {
    return this.of("signal").map(({ at, effect }) => [effect.server, effect.signal, at]);
  }

  kills(): [string, number][] {
    return this.of("kill").map(({ at, effect }) => [effect.server, at]);
  }

  of<T extends SupervisorEffect["type"]>(type: T): { at: number; effect: Extract<SupervisorEffect, { type: T }> }[] {
    return this.recorded.filter((r) => r.effect.type === type) as { at: number; effect: Extract<SupervisorEffect, { type: T }> }[];
  }

  state(name: string): [string, string] {
    const server = this.sup.servers.get(name);
    if (server === undefined) throw new Error(`no server ${name}`);
    return [server.state, server.reason];
  }

  private apply(event: SupervisorEvent): void {
    const result = step(this.sup, event);
    this.sup = result.sup;
    if (result.ignored !== null) this.ignored.push({ at: this.now, event, why: result.ignored });
    for (const effect of result.effects) {
      this.recorded.push({ at: this.now, effect });
      this.execute(effect);
    }
  }

  private execute(effect: SupervisorEffect): void {
    const now = this.now;
    switch (effect.type) {
      case "spawn": {
        const behaviour = this.behaviours[effect.server] ?? {};
        if (behaviour.spawnFails !== undefined) {
          this.toServer(effect.server, now, { type: "spawn-failed", now, errno: behaviour.spawnFails });
          return;
        }
        const pid = this.nextPid++;
        this.toServer(effect.server, now, { type: "spawned", now, pid });
        if (behaviour.crashAfterMs !== undefined) {
          const at = now + behaviour.crashAfterMs;
          this.schedule(at, `exit:${pid}`, this.serverEvent(effect.server, { type: "exited", now: at, pid, code: 1, signal: null }));
        }
        return;
      }
      case "start-probe": {
        const delay = this.behaviours[effect.server]?.readyAfterMs;
        if (delay === null) return;
        const at = now + (delay ?? 50);
        this.schedule(at, `probe:${effect.server}`, this.serverEvent(effect.server, { type: "ready", now: at }));
        return;
      }
      case "stop-probe":
        this.cancel(`probe:${effect.server}`);
        return;
      case "signal": {
        const delay = this.behaviours[effect.server]?.exitAfterSignalMs;
        if (delay === null) return;
        const at = now + (delay ?? 100);
        this.cancel(`exit:${effect.pid}`);
        this.schedule(
          at,
          `exit:${effect.pid}`,
          this.serverEvent(effect.server, { type: "exited", now: at, pid: effect.pid, code: null, signal: effect.signal }),
        );
        return;
      }
      case "kill":
        this.cancel(`exit:${effect.pid}`);
        this.schedule(now, `exit:${effect.pid}`, this.serverEvent(effect.server, { type: "exited", now, pid: effect.pid, code: null, signal: 9 }));
        return;
      case "arm-timer": {
        const key = `timer:${effect.server ?? "*"}:${effect.timer}:${effect.id}`;
        const event: SupervisorEvent =
          effect.server === null
            ? { type: "timer", now: effect.at, timer: effect.timer, id: effect.id }
            : this.serverEvent(effect.server, { type: "timer", now: effect.at, timer: effect.timer, id: effect.id });
        this.schedule(effect.at, key, event);
        return;
      }
      case "cancel-timer":
        this.cancel(`timer:${effect.server ?? "*"}:${effect.timer}:${effect.id}`);
        return;
      case "run-pre-start":
      case "run-post-stop":
      case "log":
      case "shutdown-complete":
        return;
    }
  }

  private toServer(name: string, at: number, event: ServerEvent): void {
    this.schedule(at, null, this.serverEvent(name, event));
  }

  private serverEvent(name: string, event: ServerEvent): SupervisorEvent {
    return { type: "server", name, event };
  }

  private schedule(at: number, key: string | null, event: SupervisorEvent): void {
    this.queue.push({ at, seq: this.seq++, key, event });
  }

  private cancel(key: string): void {
    this.queue = this.queue.filter((item) => item.key !== key);
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
