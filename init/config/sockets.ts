// Per-server `sockets:`, `activation:`, `idleStop:`, `maxInstances:` and `readiness: socket`: their
// schema, and their resolution into the ServerSpec fields of socket activation, with the checks that
// need a whole server (accept mode's limits, the notify fd above the sockets) or the whole file (two
// servers on one address). Whether an address can be bound is only known when the init binds it
// (runtime/sockets.ts); its errors are placed in the file the same way (ConfigWithSources.placeSocket).

import net from "node:net";
import * as z from "zod";
import type { Activation, ReadinessProbe, ServerSpec, SocketKind, SocketSpec } from "../core/types";
import type { FieldPath, FieldProblem } from "./errors";
import type { Parsed } from "./values";
import { DEFAULT_MAX_INSTANCES } from "../core/server";

/** listen(2)'s backlog when none is given: the kernel's SOMAXCONN (it caps larger values to net.core.somaxconn). */
export const DEFAULT_BACKLOG = 4096;

export const listenExpectation =
  'a socket address: "tcp:[host:]port", "tcp6:[host:]port", "udp:[host:]port", "unix:/absolute/path" or "unix-dgram:/absolute/path"';

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const expected = <T>(what: string): Parsed<T> => ({ ok: false, expected: what });

export type ListenAddress = Pick<SocketSpec, "kind" | "host" | "port" | "path">;

/** sun_path holds 108 bytes with the terminating NUL. */
const MAX_UNIX_PATH = 107;

/**
 * "tcp:8080" (every IPv4 address), "tcp:127.0.0.1:8080", "tcp:[::1]:8080", "tcp6:8080" (every IPv6
 * address), "udp:…" likewise, "unix:/run/x.sock", "unix-dgram:/run/x.sock". Hosts are IP literals:
 * the init binds before any name service can be trusted to answer.
 */
export function parseListen(text: string): Parsed<ListenAddress> {
  const colon = text.indexOf(":");
  const kind = colon < 0 ? "" : text.slice(0, colon);
  const rest = colon < 0 ? "" : text.slice(colon + 1);
  switch (kind) {
    case "unix":
    case "unix-dgram": {
      if (!rest.startsWith("/")) return expected(`${kind}: an absolute path`);
      if (Buffer.byteLength(rest) > MAX_UNIX_PATH) return expected(`${kind}: a path of at most ${MAX_UNIX_PATH} bytes (the kernel's limit)`);
      return ok({ kind, host: null, port: null, path: rest });
    }
    case "tcp":
    case "tcp6":
    case "udp": {
      const match = /^(?:(\[[0-9A-Fa-f:.]+\]|[0-9.]+):)?(\d+)$/.exec(rest);
      const port = match ? Number(match[2]) : NaN;
      if (!match || !(port >= 1 && port <= 65535)) return expected(`${kind}: "[host:]port" with an IP address as host and a port between 1 and 65535`);
      const written = match[1]?.replace(/^\[(.*)\]$/, "$1");
      const host = written ?? (kind === "tcp6" ? "::" : "0.0.0.0");
      const family = net.isIP(host);
      if (family === 0) return expected(`${kind}: an IP address as host, got ${JSON.stringify(written)}`);
      if (kind === "tcp6" && family !== 6) return expected(`tcp6: an IPv6 address in brackets as host, like "tcp6:[::1]:${port}"`);
      return ok({ kind: kind as SocketKind, host, port, path: null });
    }
    default:
      return expected(listenExpectation);
  }
}

/** Whether the socket speaks IPv6 (tcp6, or a tcp / udp socket on an IPv6 address). */
export function isIpv6(socket: Pick<SocketSpec, "kind" | "host">): boolean {
  return socket.kind === "tcp6" || (socket.host !== null && net.isIPv6(socket.host));
}

export function isStream(kind: SocketKind): boolean {
  return kind === "tcp" || kind === "tcp6" || kind === "unix";
}

export function isUnix(kind: SocketKind): boolean {
  return kind === "unix" || kind === "unix-dgram";
}

/**
 * What two sockets must not share: the transport and address ("tcp 0.0.0.0:80"; tcp6 is tcp on an
 * IPv6 address), or the path.
 */
export function addressKey(socket: ListenAddress): string {
  if (socket.path !== null) return `unix ${socket.path}`;
  const transport = socket.kind === "udp" ? "udp" : "tcp";
  return `${transport} ${isIpv6(socket) ? `[${socket.host}]` : socket.host}:${socket.port}`;
}

export const fdNameExpectation = 'a name for LISTEN_FDNAMES: 1 to 255 printable ASCII characters, without ":"';

/** sd_listen_fds_with_names(3): printable ASCII, no ":" (the separator of LISTEN_FDNAMES), at most 255. */
export function isValidFdName(name: string): boolean {
  return /^[\x20-\x39\x3b-\x7e]{1,255}$/.test(name);
}

const socketMode = z.union([z.string(), z.int()], { error: () => 'expected a file mode: an octal string like "0660"' }).transform((value, ctx) => {
  const mode = typeof value === "number" ? value : /^(?:0o)?[0-7]{1,4}$/.test(value.trim()) ? parseInt(value.trim().replace(/^0o/, ""), 8) : NaN;
  if (Number.isInteger(mode) && mode >= 0 && mode <= 0o7777) return mode;
  ctx.addIssue({ code: "custom", message: `expected a file mode: an octal string like "0660", got ${JSON.stringify(value)}`, input: value });
  return z.NEVER;
});

const principal = z.union([z.string().min(1), z.int().min(0)], { error: () => "expected a name or a numeric id" });

/** One entry of `sockets:` as written: the address alone, or a mapping with its options. */
export const socketEntrySchema = z.union(
  [
    z.string().transform((listen) => ({ listen, written: "string" as const })),
    z
      .strictObject({
        listen: z.string({ error: () => `expected ${listenExpectation}` }),
        name: z.string({ error: () => `expected ${fdNameExpectation}` }).optional(),
        backlog: z
          .int({ error: () => "expected an integer of at least 1" })
          .min(1, { error: () => "expected an integer of at least 1" })
          .optional(),
        mode: socketMode.optional(),
        owner: principal.optional(),
        group: principal.optional(),
        reusePort: z.boolean().optional(),
      })
      .transform((entry) => ({ ...entry, written: "mapping" as const })),
  ],
  { error: () => `expected ${listenExpectation}, or a mapping {listen, name, backlog, mode, owner, group, reusePort}` },
);

export type SocketEntryInput = z.output<typeof socketEntrySchema>;

export const activationSchema = z.enum(["eager", "lazy", "accept"]);

/** What the server schema gives for socket activation. */
export interface ActivationInput {
  sockets?: SocketEntryInput[];
  activation?: Activation;
  idleStop?: number;
  maxInstances?: number;
  preStart?: unknown;
  postStop?: unknown;
  liveness?: unknown;
}

/** A readiness as parsed: the probe, and `socket` when `readiness: socket` or a mapping's `socket:` said so. */
export type ReadinessInput = ReadinessProbe & { socket?: boolean };

/** What resolution needs from the rest of the resolver. */
export interface ActivationContext {
  serverName: string;
  /** The probe the server will have, and whether the file gave one (or `socket:`) itself. */
  readiness: ReadinessInput;
  readinessGiven: boolean;
  /** A user or group by name or id: its id, or null when /etc/passwd (/etc/group) has no such name. */
  findUser(value: string | number): number | null;
  findGroup(value: string | number): number | null;
}

/** The ServerSpec fields of socket activation; absent (undefined) for a server without any of it. */
export type ActivationFields = Pick<ServerSpec, "sockets" | "activation" | "idleStopMs" | "maxInstances" | "readyOnSockets">;

/** Resolves a server's sockets and activation, pushing problems at their fields (`at` is the server's path). */
export function resolveActivation(input: ActivationInput, context: ActivationContext, at: FieldPath, problems: FieldProblem[]): ActivationFields {
  const sockets: SocketSpec[] = [];
  const lookUp = (value: string | number, find: (value: string | number) => number | null, what: string, file: string, path: FieldPath): number | null => {
    const id = find(value);
    if (id === null) problems.push({ path, message: `${what} ${JSON.stringify(value)} not found in ${file}` });
    return id;
  };
  (input.sockets ?? []).forEach((entry, index) => {
    const where = [...at, "sockets", index];
    const address = parseListen(entry.listen);
    if (!address.ok) {
      problems.push({
        path: entry.written === "mapping" ? [...where, "listen"] : where,
        message: `expected ${address.expected}, got ${JSON.stringify(entry.listen)}`,
      });
      return;
    }
    const options: Partial<Extract<SocketEntryInput, { written: "mapping" }>> = entry.written === "mapping" ? entry : {};
    const name = options.name ?? context.serverName;
    if (!isValidFdName(name)) {
      problems.push({
        path: options.name === undefined ? [...at, "name"] : [...where, "name"],
        message: `expected ${fdNameExpectation}, got ${JSON.stringify(name)}`,
      });
    }
    const unix = isUnix(address.value.kind);
    for (const key of ["mode", "owner", "group"] as const) {
      if (options[key] !== undefined && !unix)
        problems.push({ path: [...where, key], message: `${key} applies to unix and unix-dgram sockets (a file), not to ${address.value.kind}` });
    }
    if (options.reusePort !== undefined && unix) problems.push({ path: [...where, "reusePort"], message: "reusePort applies to tcp, tcp6 and udp sockets" });
    if (options.backlog !== undefined && !isStream(address.value.kind)) {
      problems.push({ path: [...where, "backlog"], message: `backlog applies to stream sockets (tcp, tcp6, unix), not to ${address.value.kind}` });
    }
    sockets.push({
      listen: entry.listen,
      ...address.value,
      name,
      backlog: options.backlog ?? DEFAULT_BACKLOG,
      mode: options.mode ?? null,
      uid: options.owner === undefined ? null : lookUp(options.owner, context.findUser, "user", "/etc/passwd", [...where, "owner"]),
      gid: options.group === undefined ? null : lookUp(options.group, context.findGroup, "group", "/etc/group", [...where, "group"]),
      reusePort: options.reusePort ?? false,
    });
  });
  // Two sockets of one server on one address cannot both be bound.
  const seen = new Map<string, number>();
  (input.sockets ?? []).forEach((entry, index) => {
    const address = parseListen(entry.listen);
    if (!address.ok) return;
    const key = addressKey(address.value);
    const first = seen.get(key);
    if (first === undefined) seen.set(key, index);
    else problems.push({ path: [...at, "sockets", index], message: `${entry.listen}: sockets[${first}] of this server has that address already` });
  });

  const activation = input.activation ?? "eager";
  const count = input.sockets?.length ?? 0;
  if (activation !== "eager" && count === 0) problems.push({ path: [...at, "activation"], message: `activation: ${activation} needs sockets: to listen on` });
  if (input.idleStop !== undefined && activation !== "lazy") problems.push({ path: [...at, "idleStop"], message: "idleStop applies to activation: lazy" });
  if (input.maxInstances !== undefined && activation !== "accept")
    problems.push({ path: [...at, "maxInstances"], message: "maxInstances applies to activation: accept" });
  if (activation === "accept") {
    (input.sockets ?? []).forEach((entry, index) => {
      const address = parseListen(entry.listen);
      if (address.ok && !isStream(address.value.kind)) {
        problems.push({
          path: [...at, "sockets", index],
          message: `activation: accept takes connections: ${address.value.kind} is not a stream socket (tcp, tcp6, unix)`,
        });
      }
    });
    for (const key of ["preStart", "postStop", "liveness"] as const) {
      if (input[key] !== undefined)
        problems.push({ path: [...at, key], message: `${key} does not apply to activation: accept (one short-lived instance per connection)` });
    }
    if (context.readinessGiven && context.readiness.kind !== "none") {
      problems.push({ path: [...at, "readiness"], message: "readiness does not apply to activation: accept: it serves once its sockets exist" });
    }
  }
  const { readiness } = context;
  if (readiness.kind === "notify" && readiness.fd < 3 + count) {
    problems.push({
      path: [...at, "readiness"],
      message: `notify fd ${readiness.fd} is one of the sockets' fds (3 to ${2 + count}): use ${3 + count} or above`,
    });
  }
  if (readiness.socket === true && count === 0)
    problems.push({ path: [...at, "readiness"], message: "readiness: socket needs sockets: (the server is ready for its dependents once they exist)" });
  if (count === 0 && activation === "eager" && input.idleStop === undefined && input.maxInstances === undefined) return {};
  return {
    sockets,
    activation,
    ...(activation === "lazy" ? { idleStopMs: input.idleStop ?? null } : {}),
    ...(activation === "accept" ? { maxInstances: input.maxInstances ?? DEFAULT_MAX_INSTANCES } : {}),
    // By default its dependents need only its sockets; `socket: false` (or a probe mapping saying so) waits for its probe.
    readyOnSockets: count > 0 && readiness.socket !== false,
  };
}

/** One server's sockets as the file-wide check sees them. */
export interface SocketsOfEntry {
  index: number;
  sockets: readonly { listen: string }[];
}

/** Two servers on one address: reported at the later one, naming the first. */
export function checkSharedAddresses(entries: readonly SocketsOfEntry[]): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const owner = new Map<string, { index: number; socket: number }>();
  for (const { index, sockets } of entries) {
    sockets.forEach((entry, socket) => {
      const address = parseListen(entry.listen);
      if (!address.ok) return;
      const key = addressKey(address.value);
      const first = owner.get(key);
      if (first === undefined) owner.set(key, { index, socket });
      else if (first.index !== index) {
        problems.push({
          path: ["servers", index, "sockets", socket],
          message: `${entry.listen}: servers[${first.index}].sockets[${first.socket}] listens there already`,
        });
      }
    });
  }
  return problems;
}
