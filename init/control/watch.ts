// A subscription to what the supervisor does (the `watch` command): the answer is the status of the
// servers, then the init pushes an event the moment something changes, with no polling on either
// side. The Tango Starter device (init/starter-device/) is its first client: its change events on
// State and Servers leave when these do.
//
// Events, on the watch request's id, after its answer:
//   "servers"  {changed: [ServerStatus…], removed: [name…]}   one per supervisor step that changed what
//              a client sees of a server (state, pid, desired state, pin, reason, level, restarts…)
//   "phase"    {phase}                                         booting → running → shutting-down
//   "sources"  [SourceStatus…]                                 after each new configuration (a reload,
//              the Tango database read or read again)
//
// Finding what changed is cheap: the core replaces a server's object only when a step changed it, so
// each step costs one identity check per server, and a status is built only for the servers it
// touched. A client that does not read is dropped by the connection (maxBufferedBytes).

import { monotonicNow } from "../runtime/engine";
import type { RunningSupervisor } from "../runtime/supervisor";
import { starterStateOf, type Server } from "../core/server";
import type { SupervisorEvent } from "../core/supervisor";
import type { RequestContext } from "./commands";
import { globToRegExp, isGlob, statusOf } from "./describe";
import type { PhaseEvent, ServersChangedEvent, ServerStatus, SourcesEvent } from "./protocol";

/**
 * What a client sees of a server; the times that grow by themselves (uptime, since) and the liveness
 * pings' counts (a step every few seconds for each server) are left out.
 */
function visible(server: Server): string {
  const exit = server.lastExit;
  return [
    server.state,
    // A ready server whose admin device stopped answering ping is MOVING for the Starter.
    starterStateOf(server),
    server.pid,
    server.desired,
    server.pin,
    server.reason,
    server.spec.level,
    server.spec.autostart,
    server.restarts,
    server.spec.log.file,
    exit === null ? "" : `${exit.at}`,
  ].join("\u0000");
}

export class Watch {
  /** The server objects last looked at, and what was last sent of each. */
  private readonly seen = new Map<string, { server: Server; visible: string }>();
  private phase: string;
  private readonly matchers: ((name: string) => boolean)[];
  /** Events that happened before the answer went out: they follow it. */
  private held: [string, unknown][] | null = [];
  private readonly unsubscribe: () => void;
  private closed = false;

  constructor(
    private readonly running: RunningSupervisor,
    patterns: string[],
    private readonly context: RequestContext,
  ) {
    this.matchers = patterns.map((pattern) => {
      const glob = isGlob(pattern) ? globToRegExp(pattern) : null;
      return (name: string) => (glob ? glob.test(name) : name === pattern);
    });
    this.phase = running.engine.sup.phase;
    this.unsubscribe = running.engine.onEvent((event) => this.observe(event));
    context.afterAnswer(() => {
      const held = this.held ?? [];
      this.held = null;
      for (const [name, data] of held) this.context.send(name, data);
    });
  }

  /** The status of the watched servers now, which later events are relative to. */
  baseline(): ServerStatus[] {
    const now = monotonicNow();
    const statuses: ServerStatus[] = [];
    for (const server of this.running.engine.sup.servers.values()) {
      const name = server.spec.name;
      if (!this.wanted(name)) continue;
      this.seen.set(name, { server, visible: visible(server) });
      statuses.push(statusOf(server, now));
    }
    return statuses;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
  }

  private wanted(name: string): boolean {
    return this.matchers.length === 0 || this.matchers.some((matches) => matches(name));
  }

  /** Called by the engine after each step: inside its loop, so nothing may escape. */
  private observe(event: SupervisorEvent): void {
    if (this.closed) return;
    try {
      const sup = this.running.engine.sup;
      const now = monotonicNow();
      const changed: ServerStatus[] = [];
      for (const server of sup.servers.values()) {
        const name = server.spec.name;
        const last = this.seen.get(name);
        if (last?.server === server || !this.wanted(name)) continue;
        const shown = visible(server);
        this.seen.set(name, { server, visible: shown });
        if (last?.visible !== shown) changed.push(statusOf(server, now));
      }
      const removed = [...this.seen.keys()].filter((name) => !sup.servers.has(name));
      for (const name of removed) this.seen.delete(name);
      if (changed.length || removed.length) this.emit("servers", { changed, removed } satisfies ServersChangedEvent);
      if (sup.phase !== this.phase) {
        this.phase = sup.phase;
        this.emit("phase", { phase: sup.phase } satisfies PhaseEvent);
      }
      if (event.type === "config-reloaded") this.emit("sources", (this.running.sources?.() ?? []) satisfies SourcesEvent);
    } catch (err) {
      this.close();
      this.context.send("error", { message: `watch ended: ${(err as Error).message}` });
    }
  }

  private emit(name: string, data: unknown): void {
    if (this.held) this.held.push([name, data]);
    else this.context.send(name, data);
  }
}
