// CORBA's Common Data Representation (CDR), the encoding of GIOP: primitive types aligned on their
// size relative to a base (the start of the GIOP message, or of an encapsulation), in the byte order
// the sender chose. The reader checks every length against what is left of its buffer before it
// reads or allocates anything: a broken or hostile peer gets a MARSHAL error, never a huge buffer.

import { marshal } from "./errors";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Strings travel as bytes: without a codeset negotiation GIOP's default is ISO-8859-1, and Tango's
 * database hands back whatever bytes MySQL holds (often UTF-8). Valid UTF-8 is read as UTF-8, anything
 * else as ISO-8859-1, so no byte is lost either way.
 */
export function decodeText(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
  }
}

/** Writes CDR into a growing buffer; position 0 is `origin` bytes past the alignment base. */
export class CdrWriter {
  private buffer: Buffer;
  private length = 0;

  constructor(
    readonly littleEndian = true,
    private readonly origin = 0,
  ) {
    this.buffer = Buffer.alloc(256);
  }

  get position(): number {
    return this.length;
  }

  private reserve(bytes: number): number {
    const at = this.length;
    if (at + bytes > this.buffer.length) {
      const grown = Buffer.alloc(Math.max(this.buffer.length * 2, at + bytes));
      this.buffer.copy(grown, 0, 0, at);
      this.buffer = grown;
    }
    this.length += bytes;
    return at;
  }

  /** Pads with zeros up to the next multiple of `size` from the base. */
  align(size: number): void {
    const misalign = (this.origin + this.length) % size;
    if (misalign !== 0) this.reserve(size - misalign);
  }

  octet(value: number): void {
    this.buffer[this.reserve(1)] = value & 0xff;
  }

  boolean(value: boolean): void {
    this.octet(value ? 1 : 0);
  }

  short(value: number): void {
    this.align(2);
    const at = this.reserve(2);
    if (this.littleEndian) this.buffer.writeInt16LE(value, at);
    else this.buffer.writeInt16BE(value, at);
  }

  ushort(value: number): void {
    this.align(2);
    const at = this.reserve(2);
    if (this.littleEndian) this.buffer.writeUInt16LE(value, at);
    else this.buffer.writeUInt16BE(value, at);
  }

  long(value: number): void {
    this.align(4);
    const at = this.reserve(4);
    if (this.littleEndian) this.buffer.writeInt32LE(value, at);
    else this.buffer.writeInt32BE(value, at);
  }

  ulong(value: number): void {
    this.align(4);
    const at = this.reserve(4);
    if (this.littleEndian) this.buffer.writeUInt32LE(value >>> 0, at);
    else this.buffer.writeUInt32BE(value >>> 0, at);
  }

  longlong(value: bigint): void {
    this.align(8);
    const at = this.reserve(8);
    if (this.littleEndian) this.buffer.writeBigInt64LE(value, at);
    else this.buffer.writeBigInt64BE(value, at);
  }

  ulonglong(value: bigint): void {
    this.align(8);
    const at = this.reserve(8);
    if (this.littleEndian) this.buffer.writeBigUInt64LE(value, at);
    else this.buffer.writeBigUInt64BE(value, at);
  }

  float(value: number): void {
    this.align(4);
    const at = this.reserve(4);
    if (this.littleEndian) this.buffer.writeFloatLE(value, at);
    else this.buffer.writeFloatBE(value, at);
  }

  double(value: number): void {
    this.align(8);
    const at = this.reserve(8);
    if (this.littleEndian) this.buffer.writeDoubleLE(value, at);
    else this.buffer.writeDoubleBE(value, at);
  }

  /** A string: its length with the terminating NUL, the bytes (UTF-8), the NUL. */
  string(value: string): void {
    const bytes = Buffer.from(value, "utf8");
    this.ulong(bytes.length + 1);
    this.bytes(bytes);
    this.octet(0);
  }

  /** sequence<octet>: a length, then the bytes. */
  octets(value: Uint8Array): void {
    this.ulong(value.length);
    this.bytes(value);
  }

  /** Raw bytes, no length. */
  bytes(value: Uint8Array): void {
    const at = this.reserve(value.length);
    this.buffer.set(value, at);
  }

  /** An encapsulation: a length, then a byte-order octet and `write`'s content aligned from that octet. */
  encapsulation(write: (inner: CdrWriter) => void): void {
    const inner = new CdrWriter(this.littleEndian, 0);
    inner.boolean(this.littleEndian);
    write(inner);
    this.octets(inner.toBuffer());
  }

  /** Overwrites a ulong written earlier (a length known only at the end). */
  patchUlong(at: number, value: number): void {
    if (this.littleEndian) this.buffer.writeUInt32LE(value >>> 0, at);
    else this.buffer.writeUInt32BE(value >>> 0, at);
  }

  toBuffer(): Buffer {
    return this.buffer.subarray(0, this.length);
  }
}

/**
 * Reads CDR from buffer[start, end). Alignment is counted from `base` (the message start, or an
 * encapsulation's byte-order octet). Every read past `end` is a MARSHAL error.
 */
export class CdrReader {
  private pos: number;

  constructor(
    readonly buffer: Buffer,
    readonly littleEndian: boolean,
    start = 0,
    readonly end = buffer.length,
    private readonly base = start,
  ) {
    this.pos = start;
  }

  /** Absolute position in the buffer (TypeCode indirections are counted in it). */
  get position(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(bytes: number, what: string): number {
    if (bytes > this.end - this.pos) throw marshal(`truncated: ${what} needs ${bytes} byte(s), ${this.end - this.pos} left`);
    const at = this.pos;
    this.pos += bytes;
    return at;
  }

  align(size: number): void {
    const misalign = (this.pos - this.base) % size;
    if (misalign !== 0) this.need(size - misalign, "padding");
  }

  octet(): number {
    return this.buffer[this.need(1, "an octet")];
  }

  boolean(): boolean {
    return this.octet() !== 0;
  }

  short(): number {
    this.align(2);
    const at = this.need(2, "a short");
    return this.littleEndian ? this.buffer.readInt16LE(at) : this.buffer.readInt16BE(at);
  }

  ushort(): number {
    this.align(2);
    const at = this.need(2, "an unsigned short");
    return this.littleEndian ? this.buffer.readUInt16LE(at) : this.buffer.readUInt16BE(at);
  }

  long(): number {
    this.align(4);
    const at = this.need(4, "a long");
    return this.littleEndian ? this.buffer.readInt32LE(at) : this.buffer.readInt32BE(at);
  }

  ulong(): number {
    this.align(4);
    const at = this.need(4, "an unsigned long");
    return this.littleEndian ? this.buffer.readUInt32LE(at) : this.buffer.readUInt32BE(at);
  }

  longlong(): bigint {
    this.align(8);
    const at = this.need(8, "a long long");
    return this.littleEndian ? this.buffer.readBigInt64LE(at) : this.buffer.readBigInt64BE(at);
  }

  ulonglong(): bigint {
    this.align(8);
    const at = this.need(8, "an unsigned long long");
    return this.littleEndian ? this.buffer.readBigUInt64LE(at) : this.buffer.readBigUInt64BE(at);
  }

  float(): number {
    this.align(4);
    const at = this.need(4, "a float");
    return this.littleEndian ? this.buffer.readFloatLE(at) : this.buffer.readFloatBE(at);
  }

  double(): number {
    this.align(8);
    const at = this.need(8, "a double");
    return this.littleEndian ? this.buffer.readDoubleLE(at) : this.buffer.readDoubleBE(at);
  }

  /** A string: a length (NUL included) no longer than what is left, then the bytes and a NUL. */
  string(): string {
    const length = this.ulong();
    if (length === 0) throw marshal("a string of length 0 (it must at least hold its NUL)");
    const at = this.need(length, `a string of ${length} byte(s)`);
    if (this.buffer[at + length - 1] !== 0) throw marshal("a string without its terminating NUL");
    return decodeText(this.buffer.subarray(at, at + length - 1));
  }

  /**
   * The length of a sequence whose elements take at least `minBytes` each: checked against what is
   * left before the caller allocates anything for it.
   */
  sequenceLength(minBytes: number, what = "a sequence"): number {
    const length = this.ulong();
    if (length * Math.max(minBytes, 1) > this.end - this.pos) {
      throw marshal(`${what} of ${length} element(s) does not fit in the ${this.end - this.pos} byte(s) left`);
    }
    return length;
  }

  /** sequence<octet>, as a view into the buffer (no copy). */
  octets(): Buffer {
    const length = this.sequenceLength(1, "a sequence<octet>");
    const at = this.need(length, "octets");
    return this.buffer.subarray(at, at + length);
  }

  /** An encapsulation: a reader over its content, in the byte order its first octet gives. */
  encapsulation(): CdrReader {
    const length = this.sequenceLength(1, "an encapsulation");
    if (length < 1) throw marshal("an empty encapsulation (no byte-order octet)");
    const at = this.need(length, "an encapsulation");
    const littleEndian = (this.buffer[at] & 1) === 1;
    const inner = new CdrReader(this.buffer, littleEndian, at, at + length, at);
    inner.pos = at + 1;
    return inner;
  }

  skip(bytes: number): void {
    this.need(bytes, `${bytes} byte(s)`);
  }
}
