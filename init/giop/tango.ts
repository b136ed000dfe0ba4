// Tango over the GIOP client: TANGO_HOST, the database device, command_inout and ping.
//
// A Tango device is a CORBA object of interface Tango::Device: `ping()` and `any command_inout(in
// string command, in any argin) raises (DevFailed)` are in every IDL version of it. The database
// device is exported by DataBaseds under the object key "database" on the TANGO_HOST port (the
// address every Tango client starts from); any other device is found through the database
// (DbImportDevice gives its IOR) or, without a database, at a fixed -ORBendPoint under its name.
// TANGO_HOST may list several databases ("h1:10000,h2:10000", redundant databases): they are tried
// in turn, the last one that answered first.

import type { GiopClient, InvokeOptions } from "./client";
import { DevFailed, SystemException } from "./errors";
import { iiopAddress, parseIor, type ObjectAddress } from "./ior";
import { readAny, writeAny, type Any, type AnyValue, type TypeCode } from "./typecode";

// ---- Tango's command types as TypeCodes ----------------------------------------------------------

function alias(name: string, content: TypeCode): TypeCode {
  return { kind: "alias", id: `IDL:Tango/${name}:1.0`, name, content };
}

const DevVarLongArray = alias("DevVarLongArray", { kind: "sequence", element: { kind: "long" }, bound: 0 });
const DevVarStringArray = alias("DevVarStringArray", { kind: "sequence", element: { kind: "string", bound: 0 }, bound: 0 });

/** The TypeCodes of the Tango types used here, as omniORB writes them. */
export const TangoTypes = {
  DevVoid: { kind: "null" },
  DevString: { kind: "string", bound: 0 },
  DevLong: { kind: "long" },
  DevVarStringArray,
  DevVarLongStringArray: {
    kind: "struct",
    id: "IDL:Tango/DevVarLongStringArray:1.0",
    name: "DevVarLongStringArray",
    members: [
      { name: "lvalue", type: DevVarLongArray },
      { name: "svalue", type: DevVarStringArray },
    ],
  },
  DevState: {
    kind: "enum",
    id: "IDL:Tango/DevState:1.0",
    name: "DevState",
    members: ["ON", "OFF", "CLOSE", "OPEN", "INSERT", "EXTRACT", "MOVING", "STANDBY", "FAULT", "INIT", "RUNNING", "ALARM", "DISABLE", "UNKNOWN"],
  },
} satisfies Record<string, TypeCode>;

export type TangoTypeName = keyof typeof TangoTypes;

/** An argument of command_inout: a Tango type and its value. */
export function tangoArg(type: TangoTypeName, value: AnyValue = null): Any {
  return { type: TangoTypes[type], value };
}

/** The answer of a command as a list of strings (DevVarStringArray), or MARSHAL when it is something else. */
export function asStrings(any: Any, what: string): string[] {
  const value = any.value;
  if (!Array.isArray(value) || !value.every((item) => typeof item === "string")) {
    throw new SystemException("MARSHAL", `${what} answered ${describeType(any.type)}, not a list of strings`);
  }
  return value as string[];
}

/** The answer of a command as DevVarLongStringArray. */
export function asLongStrings(any: Any, what: string): { lvalue: number[]; svalue: string[] } {
  const value = any.value as { lvalue?: unknown; svalue?: unknown } | null;
  const lvalue = value?.lvalue;
  const svalue = value?.svalue;
  if (!Array.isArray(lvalue) || !Array.isArray(svalue) || !lvalue.every((n) => typeof n === "number") || !svalue.every((s) => typeof s === "string")) {
    throw new SystemException("MARSHAL", `${what} answered ${describeType(any.type)}, not a DevVarLongStringArray`);
  }
  return { lvalue: lvalue as number[], svalue: svalue as string[] };
}

function describeType(type: TypeCode): string {
  return "name" in type ? type.name : type.kind;
}

// ---- devices ------------------------------------------------------------------------------------

/** command_inout(command, argin) on the device at `address`: its answer. */
export async function commandInout(client: GiopClient, address: ObjectAddress, command: string, argin: Any, options?: InvokeOptions): Promise<Any> {
  const reader = await client.invoke(
    address,
    "command_inout",
    (writer) => {
      writer.string(command);
      writeAny(writer, argin);
    },
    options,
  );
  return readAny(reader);
}

/** ping() on the device at `address`; resolves with the round trip in milliseconds. */
export async function ping(client: GiopClient, address: ObjectAddress, options?: InvokeOptions): Promise<number> {
  const started = performance.now();
  await client.invoke(address, "ping", undefined, options);
  return performance.now() - started;
}

/** A device served without a database (-nodb -ORBendPoint giop:tcp:host:port): its object key is its name, in lower case. */
export function deviceAt(host: string, port: number, device: string): ObjectAddress {
  return { host, port, key: Buffer.from(device.toLowerCase(), "latin1") };
}

// ---- TANGO_HOST and the database ----------------------------------------------------------------

export interface TangoHostEntry {
  host: string;
  port: number;
}

/** Object key of the database device on the TANGO_HOST port. */
export const DATABASE_KEY = Buffer.from("database", "latin1");

/**
 * "host:port" or several separated by commas (redundant databases); "[::1]:10000" for IPv6. Throws
 * INV_OBJREF naming the entry that is not host:port.
 */
export function parseTangoHost(text: string): TangoHostEntry[] {
  const entries = text
    .split(",")
    .map((entry) => entry.trim())
    .filter(Boolean);
  if (entries.length === 0) throw new SystemException("INV_OBJREF", "TANGO_HOST is empty (expected host:port)");
  return entries.map((entry) => {
    const match = /^(\[[^\]]+\]|[^:[\]]+):(\d{1,5})$/.exec(entry);
    const port = match ? Number(match[2]) : NaN;
    if (!match || port < 1 || port > 65535) throw new SystemException("INV_OBJREF", `TANGO_HOST entry ${JSON.stringify(entry)} is not host:port`);
    return { host: match[1].replace(/^\[(.*)\]$/, "$1"), port };
  });
}

export function formatTangoHost(entries: readonly TangoHostEntry[]): string {
  return entries.map((entry) => `${entry.host.includes(":") ? `[${entry.host}]` : entry.host}:${entry.port}`).join(",");
}

/** A device as the database knows it (DbImportDevice). */
export interface ImportedDevice {
  name: string;
  ior: string;
  version: string;
  server: string;
  host: string;
  exported: boolean;
  /** The process that exported it last, as it saw its own pid. */
  pid: number;
}

export class TangoDatabase {
  /** The entry to try first: the last one that answered. */
  private preferred = 0;

  constructor(
    private readonly client: GiopClient,
    readonly entries: readonly TangoHostEntry[],
    private readonly options: InvokeOptions = {},
  ) {
    if (entries.length === 0) throw new SystemException("INV_OBJREF", "no TANGO_HOST entry");
  }

  /** "h1:10000,h2:10000" */
  get tangoHost(): string {
    return formatTangoHost(this.entries);
  }

  /** The entry that answered last. */
  get answering(): TangoHostEntry {
    return this.entries[this.preferred];
  }

  /**
   * command_inout on the database device, trying each TANGO_HOST entry in turn while they fail to
   * answer (a DevFailed is an answer: it is thrown at once).
   */
  async command(command: string, argin: Any): Promise<Any> {
    const failures: string[] = [];
    let last: SystemException | null = null;
    for (let attempt = 0; attempt < this.entries.length; attempt++) {
      const index = (this.preferred + attempt) % this.entries.length;
      const entry = this.entries[index];
      try {
        const answer = await commandInout(this.client, { host: entry.host, port: entry.port, key: DATABASE_KEY }, command, argin, this.options);
        this.preferred = index;
        return answer;
      } catch (err) {
        if (!(err instanceof SystemException)) throw err;
        last = err;
        failures.push(`${formatTangoHost([entry])}: ${err.message}`);
      }
    }
    if (this.entries.length === 1) throw last!;
    throw new SystemException(last!.exception, `no database of TANGO_HOST answers (${failures.join("; ")})`, last!.details);
  }

  async strings(command: string, argin: Any): Promise<string[]> {
    return asStrings(await this.command(command, argin), command);
  }

  /** DbGetHostServersInfo(host): [server, mode, level, server, mode, level, …], as the Starter reads it. */
  hostServersInfo(host: string): Promise<string[]> {
    return this.strings("DbGetHostServersInfo", tangoArg("DevString", host));
  }

  /** Every property of a device (DbGetDevicePropertyList, then DbGetDeviceProperty). */
  async deviceProperties(device: string): Promise<Record<string, string[]>> {
    const names = await this.strings("DbGetDevicePropertyList", tangoArg("DevVarStringArray", [device, "*"]));
    if (names.length === 0) return {};
    return parseProperties(await this.strings("DbGetDeviceProperty", tangoArg("DevVarStringArray", [device, ...names])), "DbGetDeviceProperty");
  }

  /** Every property of a class (DbGetClassPropertyList, then DbGetClassProperty). */
  async classProperties(className: string): Promise<Record<string, string[]>> {
    const names = await this.strings("DbGetClassPropertyList", tangoArg("DevString", className));
    if (names.length === 0) return {};
    return parseProperties(await this.strings("DbGetClassProperty", tangoArg("DevVarStringArray", [className, ...names])), "DbGetClassProperty");
  }

  /** DbImportDevice(name): where the device was exported, and by which process. */
  async importDevice(name: string): Promise<ImportedDevice> {
    const { lvalue, svalue } = asLongStrings(await this.command("DbImportDevice", tangoArg("DevString", name)), "DbImportDevice");
    return {
      name: svalue[0] ?? name,
      ior: svalue[1] ?? "",
      version: svalue[2] ?? "",
      server: svalue[3] ?? "",
      host: svalue[4] ?? "",
      exported: lvalue[0] === 1,
      pid: lvalue[1] ?? 0,
    };
  }

  /** The address of an exported device, from its IOR in the database. */
  async deviceAddress(name: string): Promise<{ address: ObjectAddress; imported: ImportedDevice }> {
    const imported = await this.importDevice(name);
    if (!imported.exported)
      throw new DevFailed([{ reason: "API_DeviceNotExported", severity: "ERR", desc: `${name} is not exported`, origin: "importDevice" }]);
    return { address: iiopAddress(parseIor(imported.ior), `the IOR of ${name}`), imported };
  }
}

/**
 * The answer of DbGetDeviceProperty / DbGetClassProperty: [object, count, name, n, value × n, name, n, …].
 * A property that does not exist comes with n = 0 and a " " in place of its values.
 */
export function parseProperties(answer: string[], what: string): Record<string, string[]> {
  const bad = () => new SystemException("MARSHAL", `${what} answered a list that is not [object, count, name, n, values…]`);
  const count = Number(answer[1]);
  if (!Number.isInteger(count) || count < 0) throw bad();
  const properties: Record<string, string[]> = {};
  let at = 2;
  for (let i = 0; i < count; i++) {
    const name = answer[at];
    const n = Number(answer[at + 1]);
    if (name === undefined || !Number.isInteger(n) || n < 0 || at + 2 + n > answer.length) throw bad();
    if (n > 0) properties[name] = answer.slice(at + 2, at + 2 + n);
    at += 2 + n;
    // DataBaseds follows "name, 0" with one " " (a property name is never blank).
    if (n === 0 && answer[at] === " ") at += 1;
  }
  return properties;
}
