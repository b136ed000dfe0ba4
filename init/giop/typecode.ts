// CORBA TypeCodes and the values of an `any`: what Tango's command_inout carries (its argument and
// its answer are anys). The kinds Tango's command types use are supported — the primitives, string,
// sequence, array, alias, struct and enum — with indirections (a TypeCode that refers to one met
// earlier in the same message). Decoding is bounded: nesting depth, and every sequence length
// against the bytes left.

import type { CdrReader, CdrWriter } from "./cdr";
import { marshal } from "./errors";

type Primitive = "null" | "void" | "short" | "long" | "ushort" | "ulong" | "float" | "double" | "boolean" | "char" | "octet" | "longlong" | "ulonglong";

export type TypeCode =
  | { kind: Primitive }
  | { kind: "string"; bound: number }
  | { kind: "sequence"; element: TypeCode; bound: number }
  | { kind: "array"; element: TypeCode; length: number }
  | { kind: "alias"; id: string; name: string; content: TypeCode }
  | { kind: "struct"; id: string; name: string; members: { name: string; type: TypeCode }[] }
  | { kind: "enum"; id: string; name: string; members: string[] };

/** A decoded value: numbers, bigints (long long), strings, booleans, arrays, objects (struct), enum member names, null. */
export type AnyValue = null | number | bigint | string | boolean | AnyValue[] | { [member: string]: AnyValue };

export interface Any {
  type: TypeCode;
  value: AnyValue;
}

/** TCKind numbers (CORBA 3, 15.3.5.1). */
const KIND_NUMBERS = {
  null: 0,
  void: 1,
  short: 2,
  long: 3,
  ushort: 4,
  ulong: 5,
  float: 6,
  double: 7,
  boolean: 8,
  char: 9,
  octet: 10,
  struct: 15,
  enum: 17,
  string: 18,
  sequence: 19,
  array: 20,
  alias: 21,
  longlong: 23,
  ulonglong: 24,
} as const;
const KIND_NAMES = new Map<number, keyof typeof KIND_NUMBERS>(Object.entries(KIND_NUMBERS).map(([name, value]) => [value, name as keyof typeof KIND_NUMBERS]));
/** Names of the kinds we do not decode, for the error message. */
const OTHER_KINDS: Record<number, string> = {
  11: "any",
  12: "TypeCode",
  13: "Principal",
  14: "objref",
  16: "union",
  22: "except",
  25: "longdouble",
  26: "wchar",
  27: "wstring",
  28: "fixed",
  29: "value",
  30: "value_box",
  31: "native",
  32: "abstract_interface",
  33: "local_interface",
};
const INDIRECTION = 0xffffffff;
/** TypeCodes and values nested deeper than this are refused (Tango's go three levels deep). */
export const MAX_DEPTH = 32;

const PRIMITIVE_SIZES: Record<Primitive, number> = {
  null: 0,
  void: 0,
  short: 2,
  long: 4,
  ushort: 2,
  ulong: 4,
  float: 4,
  double: 8,
  boolean: 1,
  char: 1,
  octet: 1,
  longlong: 8,
  ulonglong: 8,
};

/** The fewest bytes a value of this type takes on the wire (padding aside): bounds sequence lengths. */
function minimumSize(type: TypeCode, depth = 0): number {
  if (depth > MAX_DEPTH) return 1;
  switch (type.kind) {
    case "string":
      return 5;
    case "sequence":
    case "enum":
      return 4;
    case "array":
      return type.length * minimumSize(type.element, depth + 1);
    case "alias":
      return minimumSize(type.content, depth + 1);
    case "struct":
      return type.members.reduce((sum, member) => sum + minimumSize(member.type, depth + 1), 0);
    default:
      return PRIMITIVE_SIZES[type.kind];
  }
}

// ---- TypeCodes --------------------------------------------------------------------------------

/** Reads a TypeCode; `seen` maps absolute positions of TypeCodes already read (for indirections). */
export function readTypeCode(reader: CdrReader, seen = new Map<number, TypeCode>(), depth = 0): TypeCode {
  if (depth > MAX_DEPTH) throw marshal(`TypeCode nested deeper than ${MAX_DEPTH}`);
  reader.align(4);
  const at = reader.position;
  const number = reader.ulong();
  if (number === INDIRECTION) {
    const offset = reader.long();
    // The offset counts from the position of the offset itself, which is at + 4.
    const target = seen.get(at + 4 + offset);
    if (!target) throw marshal(`TypeCode indirection to ${at + 4 + offset}, where no TypeCode was read (recursive types are not supported)`);
    return target;
  }
  const kind = KIND_NAMES.get(number);
  if (kind === undefined) throw marshal(`TypeCode kind ${OTHER_KINDS[number] ?? number} is not supported`);
  let type: TypeCode;
  switch (kind) {
    case "string":
      type = { kind, bound: reader.ulong() };
      break;
    case "sequence":
    case "array": {
      const inner = reader.encapsulation();
      const element = readTypeCode(inner, seen, depth + 1);
      const count = inner.ulong();
      type = kind === "sequence" ? { kind, element, bound: count } : { kind, element, length: count };
      break;
    }
    case "alias": {
      const inner = reader.encapsulation();
      const id = inner.string();
      const name = inner.string();
      type = { kind, id, name, content: readTypeCode(inner, seen, depth + 1) };
      break;
    }
    case "struct": {
      const inner = reader.encapsulation();
      const id = inner.string();
      const name = inner.string();
      // A member is at least a name (5 bytes) and a kind (4).
      const count = inner.sequenceLength(9, "struct members");
      const members: { name: string; type: TypeCode }[] = [];
      for (let i = 0; i < count; i++) members.push({ name: inner.string(), type: readTypeCode(inner, seen, depth + 1) });
      type = { kind, id, name, members };
      break;
    }
    case "enum": {
      const inner = reader.encapsulation();
      const id = inner.string();
      const name = inner.string();
      const count = inner.sequenceLength(5, "enum members");
      const members: string[] = [];
      for (let i = 0; i < count; i++) members.push(inner.string());
      type = { kind, id, name, members };
      break;
    }
    default:
      type = { kind };
  }
  seen.set(at, type);
  return type;
}

export function writeTypeCode(writer: CdrWriter, type: TypeCode): void {
  writer.ulong(KIND_NUMBERS[type.kind]);
  switch (type.kind) {
    case "string":
      writer.ulong(type.bound);
      return;
    case "sequence":
    case "array":
      writer.encapsulation((inner) => {
        writeTypeCode(inner, type.element);
        inner.ulong(type.kind === "sequence" ? type.bound : type.length);
      });
      return;
    case "alias":
      writer.encapsulation((inner) => {
        inner.string(type.id);
        inner.string(type.name);
        writeTypeCode(inner, type.content);
      });
      return;
    case "struct":
      writer.encapsulation((inner) => {
        inner.string(type.id);
        inner.string(type.name);
        inner.ulong(type.members.length);
        for (const member of type.members) {
          inner.string(member.name);
          writeTypeCode(inner, member.type);
        }
      });
      return;
    case "enum":
      writer.encapsulation((inner) => {
        inner.string(type.id);
        inner.string(type.name);
        inner.ulong(type.members.length);
        for (const member of type.members) inner.string(member);
      });
      return;
    default:
      return;
  }
}

// ---- values -----------------------------------------------------------------------------------

export function readValue(reader: CdrReader, type: TypeCode, depth = 0): AnyValue {
  if (depth > MAX_DEPTH) throw marshal(`value nested deeper than ${MAX_DEPTH}`);
  switch (type.kind) {
    case "null":
    case "void":
      return null;
    case "short":
      return reader.short();
    case "long":
      return reader.long();
    case "ushort":
      return reader.ushort();
    case "ulong":
      return reader.ulong();
    case "float":
      return reader.float();
    case "double":
      return reader.double();
    case "boolean":
      return reader.boolean();
    case "char":
      return String.fromCharCode(reader.octet());
    case "octet":
      return reader.octet();
    case "longlong":
      return reader.longlong();
    case "ulonglong":
      return reader.ulonglong();
    case "string": {
      const text = reader.string();
      if (type.bound > 0 && Buffer.byteLength(text) > type.bound) throw marshal(`a string longer than its bound ${type.bound}`);
      return text;
    }
    case "sequence": {
      const length = reader.sequenceLength(minimumSize(type.element), "a sequence");
      if (type.bound > 0 && length > type.bound) throw marshal(`a sequence of ${length} above its bound ${type.bound}`);
      const items: AnyValue[] = [];
      for (let i = 0; i < length; i++) items.push(readValue(reader, type.element, depth + 1));
      return items;
    }
    case "array": {
      if (type.length * Math.max(1, minimumSize(type.element)) > reader.remaining) throw marshal(`an array of ${type.length} does not fit`);
      const items: AnyValue[] = [];
      for (let i = 0; i < type.length; i++) items.push(readValue(reader, type.element, depth + 1));
      return items;
    }
    case "alias":
      return readValue(reader, type.content, depth + 1);
    case "struct": {
      const value: { [member: string]: AnyValue } = {};
      for (const member of type.members) value[member.name] = readValue(reader, member.type, depth + 1);
      return value;
    }
    case "enum": {
      const index = reader.ulong();
      if (index >= type.members.length) throw marshal(`enum ${type.name} value ${index} out of range (${type.members.length} members)`);
      return type.members[index];
    }
  }
}

function mismatch(type: TypeCode, value: unknown): Error {
  return new TypeError(`cannot encode ${JSON.stringify(value)} as ${type.kind}`);
}

export function writeValue(writer: CdrWriter, type: TypeCode, value: AnyValue): void {
  const number = () => {
    if (typeof value !== "number") throw mismatch(type, value);
    return value;
  };
  switch (type.kind) {
    case "null":
    case "void":
      return;
    case "short":
      return writer.short(number());
    case "long":
      return writer.long(number());
    case "ushort":
      return writer.ushort(number());
    case "ulong":
      return writer.ulong(number());
    case "float":
      return writer.float(number());
    case "double":
      return writer.double(number());
    case "boolean":
      return writer.boolean(Boolean(value));
    case "char":
      if (typeof value !== "string") throw mismatch(type, value);
      return writer.octet(value.charCodeAt(0));
    case "octet":
      return writer.octet(number());
    case "longlong":
    case "ulonglong": {
      const big = typeof value === "bigint" ? value : BigInt(number());
      return type.kind === "longlong" ? writer.longlong(big) : writer.ulonglong(big);
    }
    case "string":
      if (typeof value !== "string") throw mismatch(type, value);
      return writer.string(value);
    case "sequence":
    case "array":
      if (!Array.isArray(value)) throw mismatch(type, value);
      if (type.kind === "sequence") writer.ulong(value.length);
      else if (value.length !== type.length) throw mismatch(type, value);
      for (const item of value) writeValue(writer, type.element, item);
      return;
    case "alias":
      return writeValue(writer, type.content, value);
    case "struct":
      if (value === null || typeof value !== "object" || Array.isArray(value)) throw mismatch(type, value);
      for (const member of type.members) writeValue(writer, member.type, value[member.name] ?? null);
      return;
    case "enum": {
      const index = typeof value === "number" ? value : type.members.indexOf(String(value));
      if (index < 0 || index >= type.members.length) throw mismatch(type, value);
      return writer.ulong(index);
    }
  }
}

export function readAny(reader: CdrReader): Any {
  const type = readTypeCode(reader);
  return { type, value: readValue(reader, type) };
}

export function writeAny(writer: CdrWriter, any: Any): void {
  writeTypeCode(writer, any.type);
  writeValue(writer, any.type, any.value);
}
