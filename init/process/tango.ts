// A supervised Tango server's admin device, dserver/<Server>/<instance>, over the GIOP client: where
// it answers (from the database of the server's own TANGO_HOST, or at a fixed endpoint) and its ping.
// The readiness probe `tango` and the liveness checks both go through here, on the process's one GIOP
// client, so each server's admin device has one connection, reused by every ping.

import { sharedGiopClient } from "../giop/client";
import { DevFailed, SystemException } from "../giop/errors";
import type { ObjectAddress } from "../giop/ior";
import { deviceAt, parseTangoHost, ping, TangoDatabase } from "../giop/tango";
import type { TangoTarget } from "../core/types";

/** "TangoTest/t1" → "dserver/TangoTest/t1": the admin device every Tango server exports. */
export function adminDeviceOf(server: string): string {
  return `dserver/${server}`;
}

/** One database client per TANGO_HOST value, so the entry that answered last is asked first. */
const databases = new Map<string, TangoDatabase>();

export function databaseOf(tangoHost: string, timeoutMs: number): TangoDatabase {
  const key = `${tangoHost}\0${timeoutMs}`;
  let database = databases.get(key);
  if (!database) {
    database = new TangoDatabase(sharedGiopClient(), parseTangoHost(tangoHost), { timeoutMs, connectTimeoutMs: timeoutMs });
    databases.set(key, database);
  }
  return database;
}

/** The last address found for each server, with the process it belongs to: a process's IOR does not change. */
const addresses = new Map<string, { pid: number; address: ObjectAddress }>();

/**
 * Where the admin device of `server` (process `pid`) answers. Through the database: DbImportDevice,
 * once per process (the IOR a server exports stays the same while it runs).
 */
export async function adminAddress(
  server: string,
  pid: number,
  target: TangoTarget,
  env: Readonly<Record<string, string>>,
  timeoutMs: number,
): Promise<ObjectAddress> {
  const device = adminDeviceOf(server);
  if (target.via === "endpoint") return deviceAt(target.host, target.port, device);
  const known = addresses.get(server);
  if (known?.pid === pid) return known.address;
  const tangoHost = env.TANGO_HOST;
  if (!tangoHost) throw new SystemException("INV_OBJREF", "no TANGO_HOST in the server's environment to find its admin device with");
  const { address } = await databaseOf(tangoHost, timeoutMs).deviceAddress(device);
  addresses.set(server, { pid, address });
  return address;
}

/** Pings the admin device of `server`; resolves with the round trip in milliseconds. */
export async function pingAdmin(server: string, pid: number, target: TangoTarget, env: Readonly<Record<string, string>>, timeoutMs: number): Promise<number> {
  const address = await adminAddress(server, pid, target, env, timeoutMs);
  return ping(sharedGiopClient(), address, { timeoutMs, connectTimeoutMs: timeoutMs });
}

/** Whether a failure means the device will not be found however long one waits (not in the database at all). */
export function isPermanent(err: unknown): boolean {
  return (err instanceof DevFailed && err.code === "DB_DeviceNotDefined") || (err instanceof SystemException && err.code === "INV_OBJREF");
}

/** A failure in one line: "TIMEOUT: no reply from 127.0.0.1:12345 within 1000 ms". */
export function describePingError(err: unknown): string {
  if (err instanceof SystemException) return `${err.code}: ${err.message}`;
  return (err as Error).message ?? String(err);
}
