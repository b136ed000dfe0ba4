// Reading the Tango database as the Starter does: through the database server (DataBaseds) at
// TANGO_HOST, over GIOP (init/giop), with the commands the Starter itself sends:
//
// - DbGetHostServersInfo(host): the servers of a host, [name, mode, level, …] — a server is on a
//   host's list once its admin device dserver/… was exported from that host (it ran there once);
//   mode and level are what DbPutServerInfo wrote (Astor), " " when the server has no server info.
// - the properties of the Starter device tango/admin/<short host> (DbGetDevicePropertyList, then
//   DbGetDeviceProperty): StartDsPath, InterStartupLevelWait, …, and the per-server ones
//   (<Server>_<instance>: arguments; <Server>_<instance>_env: environment).
// - the properties of the class Starter (DbGetClassPropertyList, DbGetClassProperty): Tango's
//   defaults for every Starter device (NbStartupLevels is often set there).
//
// The addresses of the servers' admin devices (DbImportDevice) are read when they are pinged, once
// each process has exported its own (process/tango.ts), not here: at read time they are stale.

import { sharedGiopClient } from "../../giop/client";
import { DevFailed, SystemException } from "../../giop/errors";
import { formatTangoHost, TangoDatabase } from "../../giop/tango";
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
  /** Property name → values of the Starter device (a Tango property is a list of strings). */
  properties: Record<string, string[]>;
  /** Properties of the class Starter: under the device's own, as in Tango. */
  classProperties: Record<string, string[]>;
  /** Wall-clock time of the read (ms since the epoch). */
  readAt: number;
  /** The database: tango://<TANGO_HOST>. */
  database: string;
  /** The TANGO_HOST entry that answered. */
  answeredBy: string;
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

/** The Starter's device name for a host: tango/admin/<short host name>. */
export function starterDeviceOf(host: string): string {
  return `tango/admin/${host.split(".")[0]}`;
}

/** What went wrong, in words a Tango site's administrator reads, with a short code. */
function describeError(err: unknown, connection: TangoConnection, timeoutMs: number): TangoReadError {
  if (err instanceof TangoReadError) return err;
  const where = connection.tangoHost;
  if (err instanceof DevFailed) return new TangoReadError(`the database server at ${where} answered with an error: ${err.message}`, err.code);
  if (!(err instanceof SystemException)) return new TangoReadError((err as Error).message ?? String(err), "EUNKNOWN");
  const errno = err.details.errno;
  if (connection.entries.length > 1 && err.message.startsWith("no database of TANGO_HOST answers")) return new TangoReadError(err.message, errno ?? err.code);
  switch (err.code) {
    case "TRANSIENT":
      return new TangoReadError(
        errno === "ECONNREFUSED" ? `no database server answers at ${where} (connection refused)` : `no database server answers at ${where} (${err.message})`,
        errno ?? err.code,
      );
    case "TIMEOUT":
      return new TangoReadError(`the database server at ${where} did not answer within ${timeoutMs} ms`, err.code);
    case "OBJECT_NOT_EXIST":
      return new TangoReadError(`${where} answers GIOP but exports no Tango database (no object "database": not a DataBaseds?)`, err.code);
    default:
      return new TangoReadError(`the database server at ${where}: ${err.message}`, err.code);
  }
}

/** One database client per TANGO_HOST: redundant databases are asked in the order of the last answer. */
const databases = new Map<string, TangoDatabase>();

function databaseOf(connection: TangoConnection, timeoutMs: number): TangoDatabase {
  const key = `${connection.tangoHost}\0${timeoutMs}`;
  let database = databases.get(key);
  if (!database) {
    database = new TangoDatabase(sharedGiopClient(), connection.entries, { timeoutMs, connectTimeoutMs: timeoutMs });
    databases.set(key, database);
  }
  return database;
}

/**
 * Reads a host's servers and its Starter's properties. Rejects with a TangoReadError (connection refused,
 * a database server that does not answer in time, an error it answered) — each call is bounded by timeoutMs.
 */
export async function readTangoHost(connection: TangoConnection, host: string, timeoutMs: number): Promise<TangoSnapshot> {
  const database = databaseOf(connection, timeoutMs);
  try {
    const info = await database.hostServersInfo(host);
    if (info.length % 3 !== 0) throw new TangoReadError(`DbGetHostServersInfo answered ${info.length} strings, not name, mode, level triples`, "MARSHAL");
    const servers: HostServer[] = [];
    for (let at = 0; at < info.length; at += 3) servers.push({ name: info[at], mode: info[at + 1], level: info[at + 2] });
    const starterDevice = starterDeviceOf(host);
    const properties = await database.deviceProperties(starterDevice);
    const classProperties = await database.classProperties("Starter");
    return {
      host,
      starterDevice,
      servers,
      properties,
      classProperties,
      readAt: Date.now(),
      database: connection.display,
      answeredBy: formatTangoHost([database.answering]),
    };
  } catch (err) {
    throw describeError(err, connection, timeoutMs);
  }
}

/** The snapshot's servers flattened as DbGetHostServersInfo answers: [name, mode, level, name, …]. */
export function asHostServersInfo(snapshot: Pick<TangoSnapshot, "servers">): string[] {
  return snapshot.servers.flatMap((server) => [server.name, server.mode, server.level]);
}
