// Reading the Tango database as the Starter does, straight from MariaDB/MySQL (mysql2):
//
// - the servers of a host: what DataBaseds answers to DbGetHostServersInfo(host). Its SQL, kept as it
//   is: the servers with a `dserver/…` device whose host is the host name (or starts with "host."), in
//   server order, each with mode and level from the `server` table (what DbPutServerInfo wrote, e.g.
//   from Astor), or " " and " " when it has no row there. A server is on a host's list once it has
//   been exported from that host (it ran there once), as for the Starter.
// - the properties of the Starter device `tango/admin/<host>` (StartDsPath, InterStartupLevelWait, …),
//   like DbGetDeviceProperty: every row of property_device for the device, in `count` order.
//
// One connection per read, closed at the end; nothing is cached here.

import type { Connection, RowDataPacket } from "mysql2/promise";
import type { TangoConnection } from "./connection";

/** One server of the host as DbGetHostServersInfo gives it: strings, " " for a missing value. */
export interface HostServer {
  name: string;
  mode: string;
  level: string;
}

export interface TangoSnapshot {
  /** The host name the servers were read for. */
  host: string;
  /** The Starter device whose properties were read. */
  starterDevice: string;
  servers: HostServer[];
  /** Property name → values (a Tango property is a list of strings). */
  properties: Record<string, string[]>;
  /** Wall-clock time of the read (ms since the epoch). */
  readAt: number;
  /** The database, without the password. */
  database: string;
}

/** An error of the database, with a short word for status lines. */
export class TangoReadError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = "TangoReadError";
  }
}

/** DataBaseds' replace_wildcard for a host name: `_` and `%` are literal, `*` is the wildcard. */
export function hostPattern(host: string): string {
  return host.replace(/[\\%_]/g, (char) => `\\${char}`).replace(/\*/g, "%");
}

const HOST_SERVERS_SQL = `
SELECT d.server AS name,
       (SELECT s.mode FROM server s WHERE LOWER(s.name) = LOWER(d.server) LIMIT 1) AS mode,
       (SELECT s.level FROM server s WHERE LOWER(s.name) = LOWER(d.server) LIMIT 1) AS level
  FROM (SELECT DISTINCT server FROM device
         WHERE (host LIKE ? OR host LIKE ?) AND name LIKE 'dserver/%') AS d
 ORDER BY d.server`;

const DEVICE_PROPERTIES_SQL = "SELECT name, value FROM property_device WHERE device = ? ORDER BY name, count";

/** The Starter's device name for a host: tango/admin/<short host name>. */
export function starterDeviceOf(host: string): string {
  return `tango/admin/${host.split(".")[0]}`;
}

function asText(value: unknown): string {
  if (value === null || value === undefined) return " ";
  return Buffer.isBuffer(value) ? value.toString("utf8") : String(value);
}

type Driver = typeof import("mysql2/promise");
let driver: Promise<Driver> | null = null;

/**
 * The driver, loaded on first use: an init without a `tango` source never loads it. mysql2 tries
 * `require("cardinal")` (an optional pretty-printer) as it loads; inside the single executable that
 * makes Node print a warning about require() and built-in modules. That one warning is dropped; any
 * other goes to the usual listeners.
 */
function loadDriver(): Promise<Driver> {
  driver ??= (async () => {
    const listeners = process.listeners("warning");
    const filter = (warning: Error) => {
      if (/single-executable applications only supports loading built-in modules/.test(warning.message)) return;
      for (const listener of listeners) listener(warning);
    };
    process.removeAllListeners("warning");
    process.on("warning", filter);
    try {
      return await import("mysql2/promise");
    } finally {
      // Node emits warnings on the next tick: restore the listeners after that.
      setImmediate(() => {
        process.off("warning", filter);
        for (const listener of listeners) process.on("warning", listener);
      });
    }
  })();
  return driver;
}

async function connect(connection: TangoConnection, timeoutMs: number): Promise<Connection> {
  const mysql = await loadDriver();
  const createConnection = (mysql as unknown as { default?: typeof mysql }).default?.createConnection ?? mysql.createConnection;
  return createConnection({
    ...(connection.socketPath !== null ? { socketPath: connection.socketPath } : { host: connection.host!, port: connection.port }),
    user: connection.user,
    password: connection.password,
    database: connection.database,
    connectTimeout: timeoutMs,
    // Tango's tables are latin1 or utf8 depending on the site; text comes back as JS strings.
    charset: "utf8mb4",
    supportBigNumbers: true,
  });
}

function describeError(err: unknown, connection: TangoConnection): TangoReadError {
  if (err instanceof TangoReadError) return err;
  const error = err as { code?: string; message?: string; errno?: number; sqlMessage?: string };
  const code = error.code ?? "EUNKNOWN";
  const text = (error.sqlMessage ?? error.message ?? String(err)).trim();
  const where = connection.socketPath ?? `${connection.host}:${connection.port}`;
  switch (code) {
    case "ECONNREFUSED":
      return new TangoReadError(`no database server answers at ${where} (connection refused)`, code);
    case "ENOENT":
      return new TangoReadError(`no database server answers at ${where} (no such socket)`, code);
    case "ETIMEDOUT":
      return new TangoReadError(`no answer from ${where} in time (${text})`, code);
    case "ER_NO_SUCH_TABLE":
      return new TangoReadError(`${connection.database} is not a Tango database: ${text}`, code);
    default:
      return new TangoReadError(`${text} (${code})`, code);
  }
}

/** Closes a connection without waiting on a server that may be gone. */
function close(conn: Connection | null): void {
  if (!conn) return;
  try {
    conn.destroy();
  } catch {
    // Already closed.
  }
}

/**
 * Reads a host's servers and its Starter's properties. Rejects with a TangoReadError (connection refused,
 * access denied, not a Tango database, timeout) — never hangs longer than about timeoutMs per step.
 */
export async function readTangoHost(connection: TangoConnection, host: string, timeoutMs: number): Promise<TangoSnapshot> {
  const held: { conn: Connection | null } = { conn: null };
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      close(held.conn);
      reject(new TangoReadError(`no answer from ${connection.socketPath ?? `${connection.host}:${connection.port}`} within ${timeoutMs} ms`, "ETIMEDOUT"));
    }, timeoutMs * 2);
  });
  const read = async (): Promise<TangoSnapshot> => {
    const conn = (held.conn = await connect(connection, timeoutMs));
    const pattern = hostPattern(host);
    const [serverRows] = await conn.query<RowDataPacket[]>({ sql: HOST_SERVERS_SQL, values: [pattern, `${pattern}.%`], timeout: timeoutMs });
    const starterDevice = starterDeviceOf(host);
    const [propertyRows] = await conn.query<RowDataPacket[]>({ sql: DEVICE_PROPERTIES_SQL, values: [starterDevice], timeout: timeoutMs });
    const properties: Record<string, string[]> = {};
    for (const row of propertyRows) (properties[asText(row.name)] ??= []).push(asText(row.value));
    return {
      host,
      starterDevice,
      servers: serverRows.map((row) => ({ name: asText(row.name), mode: asText(row.mode), level: asText(row.level) })),
      properties,
      readAt: Date.now(),
      database: connection.display,
    };
  };
  const reading = read();
  // However the race ends, the connection is closed once the read itself has ended.
  reading.then(
    () => held.conn?.end().catch(() => close(held.conn)),
    () => close(held.conn),
  );
  try {
    return await Promise.race([reading, deadline]);
  } catch (err) {
    throw describeError(err, connection);
  } finally {
    clearTimeout(timer);
  }
}

/** The snapshot's servers flattened as DbGetHostServersInfo answers: [name, mode, level, name, …]. */
export function asHostServersInfo(snapshot: Pick<TangoSnapshot, "servers">): string[] {
  return snapshot.servers.flatMap((server) => [server.name, server.mode, server.level]);
}
