// The supervisor as plain JSON, for an in-place upgrade (`starter-init reexec`): the running init
// writes its state, execs the new binary, and the new one reads it back (runtime/reexec.ts does the
// I/O). Restoring is a data operation and nothing more: no process is looked at here.
//
// The format is versioned by one number. A reader takes every format up to its own (a field an older
// writer did not know gets the value a new server starts with); a newer format is refused as a whole,
// because this reader cannot tell what its fields mean (a downgrade: runtime/reexec.ts then saves the
// state to a file and adopts the children it can name without it).

import { createServer, type Server } from "./server";
import type { LaunchRun, StopRun, Supervisor } from "./supervisor";

// Set by the bundler only for the tests of a downgrade (native/sea.mjs, STARTER_BUILD_STATE_FORMAT).
declare const STARTER_STATE_FORMAT: number;

/** The format this build writes and the newest it reads. */
export const STATE_FORMAT = typeof STARTER_STATE_FORMAT === "number" ? STARTER_STATE_FORMAT : 1;

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** JSON with Map, Set and the infinities kept: {"$map": [[k, v], …]}, {"$set": […]}, {"$number": "-Infinity"}. */
export function encodeValue(value: unknown): Json {
  if (value === null || value === undefined) return null;
  if (typeof value === "number") return Number.isFinite(value) ? value : { $number: String(value) };
  if (typeof value === "string" || typeof value === "boolean") return value;
  if (value instanceof Map) return { $map: [...value.entries()].map(([key, item]) => [encodeValue(key), encodeValue(item)]) };
  if (value instanceof Set) return { $set: [...value].map(encodeValue) };
  if (Array.isArray(value)) return value.map(encodeValue);
  if (typeof value === "object") {
    const out: { [key: string]: Json } = {};
    for (const [key, item] of Object.entries(value)) if (item !== undefined) out[key] = encodeValue(item);
    return out;
  }
  throw new TypeError(`cannot encode a ${typeof value}`);
}

export function decodeValue(json: Json): unknown {
  if (json === null || typeof json !== "object") return json;
  if (Array.isArray(json)) return json.map(decodeValue);
  const keys = Object.keys(json);
  if (keys.length === 1) {
    const [key] = keys;
    const inner = json[key];
    if (key === "$map" && Array.isArray(inner))
      return new Map(inner.map((pair) => (Array.isArray(pair) ? [decodeValue(pair[0]), decodeValue(pair[1])] : [null, null])));
    if (key === "$set" && Array.isArray(inner)) return new Set(inner.map(decodeValue));
    if (key === "$number" && typeof inner === "string") return Number(inner);
  }
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(json)) out[key] = decodeValue(item);
  return out;
}

export class StateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StateError";
  }
}

/** The header every state carries: who wrote it, in which format. */
export interface StateHeader {
  format: number;
  writer: string;
}

/** Whether this build can read a state: "ok", or why not ("newer": a downgrade). */
export function readableFormat(header: unknown): { ok: true; header: StateHeader } | { ok: false; newer: boolean; why: string } {
  if (typeof header !== "object" || header === null) return { ok: false, newer: false, why: "the state is not a JSON object" };
  const { format, writer } = header as Record<string, unknown>;
  if (typeof format !== "number" || !Number.isInteger(format) || format < 1) return { ok: false, newer: false, why: "the state has no format number" };
  const by = typeof writer === "string" ? writer : "an unknown version";
  if (format > STATE_FORMAT) {
    return { ok: false, newer: true, why: `state format ${format} (written by ${by}) is newer than this build reads (${STATE_FORMAT})` };
  }
  return { ok: true, header: { format, writer: by } };
}

export function encodeSupervisor(sup: Supervisor): Json {
  return encodeValue(sup);
}

/**
 * The supervisor of a state (format ≤ STATE_FORMAT). Each server is its saved record over a new one
 * of its spec, so that a field the writer did not have starts as it would for a new server.
 */
export function decodeSupervisor(json: Json): Supervisor {
  const raw = decodeValue(json) as Partial<Supervisor> | null;
  if (!raw || typeof raw !== "object" || !(raw.servers instanceof Map) || !raw.settings) throw new StateError("the state holds no supervisor");
  const servers = new Map<string, Server>();
  for (const [name, saved] of raw.servers) servers.set(String(name), restoreServer(saved));
  const launch = raw.launch as LaunchRun | undefined;
  const stop = raw.stop as StopRun | undefined;
  if (!launch || !stop) throw new StateError("the state holds no launch or stop run");
  return {
    phase: raw.phase ?? "running",
    settings: raw.settings,
    servers,
    removing: raw.removing instanceof Set ? raw.removing : new Set(),
    launch,
    stop,
    timers: raw.timers ?? {},
    nextTimerId: raw.nextTimerId ?? 1,
  };
}

/** One server record from a state: its fields over those of a new server with its spec. */
export function restoreServer(saved: unknown): Server {
  const record = saved as Partial<Server> | null;
  if (!record || typeof record !== "object" || !record.spec || typeof record.spec.name !== "string") throw new StateError("a server of the state has no spec");
  const fresh = createServer(record.spec, record.since ?? 0);
  const restored: Server = { ...fresh };
  for (const key of Object.keys(fresh) as (keyof Server)[]) {
    if (record[key] !== undefined) (restored as unknown as Record<string, unknown>)[key] = record[key];
  }
  return restored;
}

/**
 * Every process a supervisor waits for, by pid: each server's own (or its daemon), its hook, its
 * accept instances. A re-executed init claims each of them from its reaper.
 */
export function processesOf(sup: Supervisor): { server: string; pid: number; role: "server" | "hook" | "instance" }[] {
  const out: { server: string; pid: number; role: "server" | "hook" | "instance" }[] = [];
  for (const server of sup.servers.values()) {
    const name = server.spec.name;
    if (server.pid !== null) out.push({ server: name, pid: server.pid, role: "server" });
    if (server.hookPid !== null) out.push({ server: name, pid: server.hookPid, role: "hook" });
    for (const pid of server.instances) out.push({ server: name, pid, role: "instance" });
  }
  return out;
}
