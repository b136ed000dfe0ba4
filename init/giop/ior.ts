// Interoperable Object References: where an object lives. A stringified IOR ("IOR:" and the hex of a
// CDR encapsulation) holds a type id and tagged profiles; the IIOP profile (tag 0) gives the host, the
// port and the object key a request names. Tango keeps its devices' IORs in the database
// (DbImportDevice); a LOCATION_FORWARD reply carries one in CDR.

import { CdrReader, CdrWriter } from "./cdr";
import { marshal, SystemException } from "./errors";

/** Where a request goes: an IIOP endpoint and the object key there. */
export interface ObjectAddress {
  host: string;
  port: number;
  key: Buffer;
}

export interface Ior {
  typeId: string;
  /** The first IIOP profile; null when the IOR has none (a nil reference, or another transport). */
  iiop: (ObjectAddress & { version: string }) | null;
}

const TAG_INTERNET_IOP = 0;
/** A stringified IOR is at most this long: Tango's are about 300 hex digits; 64 KiB is plenty. */
const MAX_IOR_TEXT = 64 * 1024;

/** Reads an IOR (type id, then sequence<TaggedProfile>) at the reader's position. */
export function readIor(reader: CdrReader): Ior {
  const typeId = reader.string();
  // A profile is at least a tag and an empty encapsulation length.
  const count = reader.sequenceLength(8, "IOR profiles");
  let iiop: Ior["iiop"] = null;
  for (let i = 0; i < count; i++) {
    const tag = reader.ulong();
    const data = reader.encapsulation();
    if (tag !== TAG_INTERNET_IOP || iiop) continue;
    const major = data.octet();
    const minor = data.octet();
    const host = data.string();
    const port = data.ushort();
    const key = Buffer.from(data.octets());
    // Components (IIOP 1.1 and later: code sets, alternate addresses) are not needed.
    iiop = { version: `${major}.${minor}`, host, port, key };
  }
  return { typeId, iiop };
}

/** Parses "IOR:0123…" (case-insensitive hex). */
export function parseIor(text: string): Ior {
  const trimmed = text.trim();
  if (trimmed.length > MAX_IOR_TEXT) throw marshal(`an IOR of ${trimmed.length} characters (at most ${MAX_IOR_TEXT})`);
  if (!/^IOR:/i.test(trimmed)) throw new SystemException("INV_OBJREF", `not a stringified IOR: ${JSON.stringify(trimmed.slice(0, 40))}`);
  const hex = trimmed.slice(4);
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new SystemException("INV_OBJREF", "a stringified IOR with an odd length or a non-hex digit");
  const bytes = Buffer.from(hex, "hex");
  if (bytes.length < 1) throw new SystemException("INV_OBJREF", "an empty IOR");
  return readIor(new CdrReader(bytes, (bytes[0] & 1) === 1, 1, bytes.length, 0));
}

/** The IIOP address of an IOR, or INV_OBJREF naming why there is none. */
export function iiopAddress(ior: Ior, what = "the IOR"): ObjectAddress {
  if (!ior.iiop) throw new SystemException("INV_OBJREF", `${what} has no IIOP profile${ior.typeId ? ` (type ${ior.typeId})` : " (a nil reference)"}`);
  return { host: ior.iiop.host, port: ior.iiop.port, key: ior.iiop.key };
}

/** Writes an IOR with one IIOP 1.2 profile (tests, and a LOCATION_FORWARD of a fake peer). */
export function writeIor(writer: CdrWriter, typeId: string, address: ObjectAddress): void {
  writer.string(typeId);
  writer.ulong(1);
  writer.ulong(TAG_INTERNET_IOP);
  writer.encapsulation((profile) => {
    profile.octet(1);
    profile.octet(2);
    profile.string(address.host);
    profile.ushort(address.port);
    profile.octets(address.key);
    profile.ulong(0); // no components
  });
}

/** The stringified form of an IOR with one IIOP profile. */
export function stringifyIor(typeId: string, address: ObjectAddress): string {
  const writer = new CdrWriter(true);
  writer.boolean(true);
  writeIor(writer, typeId, address);
  return `IOR:${writer.toBuffer().toString("hex")}`;
}
