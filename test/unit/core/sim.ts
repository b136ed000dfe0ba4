// The supervisor on the real engine (runtime/engine.ts) over a fake world with a fake clock: spawns
// get pids, servers get ready after a set delay, signals make them exit, hooks run and end, timers
// fire at their time. Every effect is recorded with the time its step ran.

import type { SupervisorEffect, SupervisorEvent, Supervisor } from "../../../init/core/supervisor";
import type { ServerEvent } from "../../../init/core/server";
import type { ServerSpec, Settings } from "../../../init/core/types";
import type { Engine } from "../../../init/runtime/engine";
import { fakeEngine, type FakeProcess, type FakeSystem } from "../runtime/fake-system";

export interface Behaviour {
  /** Readiness delay after the spawn; null: never ready. */
  readyAfterMs?: number | null;
  /** How long the process takes to exit after its stop signal; null: it ignores it. */
  exitAfterSignalMs?: number | null;
  /** The spawn fails with this errno. */
  spawnFails?: string;
  /** The process exits with code 1 this long after it was spawned. */
  crashAfterMs?: number;
  /** How long its preStart and postStop run (0 by default); null: they hang. */
  hookMs?: number | null;
  /** The exit code of its hooks (0 by default). */
  hookCode?: number;
}

export interface Recorded {
  at: number;
  effect: SupervisorEffect;
}

export class Sim {
  readonly engine: Engine;
  readonly system: FakeSystem;
  readonly recorded: Recorded[] = [];
  readonly ignored: { at: number; event: SupervisorEvent; why: string }[] = [];

  constructor(
    specs: ServerSpec[],
    settings: Settings,
    private readonly behaviours: Record<string, Behaviour> = {},
  ) {
    const { engine, system } = fakeEngine(specs, settings);
    this.engine = engine;
    this.system = system;
    system.spawnError = (_, owner) => (owner.role === "server" ? (this.behaviour(owner.server).spawnFails ?? null) : null);
    system.onSpawn = (process) => this.behave(process);
    system.onSignal = (process, signal) => {
      const delay = process.owner.role === "server" ? this.behaviour(process.owner.server).exitAfterSignalMs : 0;
      if (delay !== null) process.endAt(this.now + (delay ?? 100), null, signal);
    };
    system.onProbe = (probe) => {
      const delay = this.behaviour(probe.context.name).readyAfterMs;
      if (delay !== null) system.at(this.now + (delay ?? 50), () => probe.ready());
    };
    engine.onEvent((event, result) => {
      if (result.ignored !== null) this.ignored.push({ at: this.now, event, why: result.ignored });
      for (const effect of result.effects) this.recorded.push({ at: this.now, effect });
    });
  }

  get sup(): Supervisor {
    return this.engine.sup;
  }

  get now(): number {
    return this.system.now();
  }

  /** Applies an event now (its `now` is filled in). */
  send(event: DistributiveOmit<Exclude<SupervisorEvent, { type: "server" }>, "now">): void {
    this.engine.dispatch({ ...event, now: this.now } as SupervisorEvent);
  }

  request(name: string, event: DistributiveOmit<ServerEvent, "now">): void {
    this.engine.serverEvent(name, { ...event, now: this.now } as ServerEvent);
  }

  /** Runs everything scheduled up to and including `until`, then sets the clock there. */
  runUntil(until: number): void {
    this.system.advanceTo(until);
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

  private behaviour(name: string): Behaviour {
    return this.behaviours[name] ?? {};
  }

  /** What a new process does: a server crashes or gets ready after its delays, a hook ends after hookMs. */
  private behave(process: FakeProcess): void {
    const behaviour = this.behaviour(process.owner.server);
    if (process.owner.role !== "server") {
      if (behaviour.hookMs !== null) process.endAt(this.now + (behaviour.hookMs ?? 0), behaviour.hookCode ?? 0);
      return;
    }
    if (behaviour.crashAfterMs !== undefined) process.endAt(this.now + behaviour.crashAfterMs, 1);
    const readiness = this.sup.servers.get(process.owner.server)?.spec.readiness;
    const delay = behaviour.readyAfterMs;
    if (readiness?.kind === "log" && delay !== null) {
      this.system.at(this.now + (delay ?? 50), () => {
        if (process.alive) process.write(`${readiness.pattern}\n`);
      });
    }
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
