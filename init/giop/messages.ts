// GIOP 1.2 messages: the 12-byte header, the Request a client sends, and what comes back — a Reply
// (with its status: no exception, a user exception, a system exception, a LOCATION_FORWARD), a
// CloseConnection, a MessageError, or the Fragments of a reply too big for one message.
//
//   header   "GIOP" | major 1 | minor 2 | flags (bit 0: little endian, bit 1: more fragments) | type | body size (ulong)
//   Request  request_id | response_flags (3: a reply is wanted) | 3 reserved | target (short 0 = KeyAddr, sequence<octet> key)
//            | operation (string) | service contexts (sequence) | arguments, aligned to 8
//   Reply    request_id | reply_status | service contexts | body, aligned to 8
//
// Alignment in a message counts from the first byte of its header.

import { CdrReader, CdrWriter } from "./cdr";
import { DevFailed, marshal, SystemException, UserException, type CompletionStatus, type DevError } from "./errors";
import { readIor, type Ior } from "./ior";

export const HEADER_BYTES = 12;
const MAGIC = Buffer.from("GIOP", "latin1");

export const MessageType = {
  Request: 0,
  Reply: 1,
  CancelRequest: 2,
  LocateRequest: 3,
  LocateReply: 4,
  CloseConnection: 5,
  MessageError: 6,
  Fragment: 7,
} as const;

export const ReplyStatus = {
  NO_EXCEPTION: 0,
  USER_EXCEPTION: 1,
  SYSTEM_EXCEPTION: 2,
  LOCATION_FORWARD: 3,
  LOCATION_FORWARD_PERM: 4,
  NEEDS_ADDRESSING_MODE: 5,
} as const;

export interface Header {
  major: number;
  minor: number;
  littleEndian: boolean;
  moreFragments: boolean;
  type: number;
  /** Bytes after the header. */
  size: number;
}

/**
 * The header at the start of `bytes` (which holds at least 12). Not GIOP → COMM_FAILURE: the peer is
 * not a CORBA server (or the stream lost its framing), nothing more can be read from it.
 */
export function readHeader(bytes: Buffer): Header {
  if (!bytes.subarray(0, 4).equals(MAGIC)) {
    throw new SystemException("COMM_FAILURE", `the peer does not speak GIOP (got ${JSON.stringify(bytes.subarray(0, 4).toString("latin1"))})`);
  }
  const flags = bytes[6];
  const littleEndian = (flags & 1) === 1;
  return {
    major: bytes[4],
    minor: bytes[5],
    littleEndian,
    moreFragments: (flags & 2) === 2,
    type: bytes[7],
    size: littleEndian ? bytes.readUInt32LE(8) : bytes.readUInt32BE(8),
  };
}

function writeHeader(writer: CdrWriter, type: number): number {
  writer.bytes(MAGIC);
  writer.octet(1);
  writer.octet(2);
  writer.octet(writer.littleEndian ? 1 : 0);
  writer.octet(type);
  const sizeAt = writer.position;
  writer.ulong(0);
  return sizeAt;
}

export interface RequestMessage {
  requestId: number;
  key: Uint8Array;
  operation: string;
  /** Writes the arguments (already aligned to 8 from the message start); none when absent. */
  writeArguments?: (writer: CdrWriter) => void;
  /** false: a oneway request (no reply). */
  responseExpected?: boolean;
}

export function encodeRequest(request: RequestMessage): Buffer {
  const writer = new CdrWriter(true, 0);
  const sizeAt = writeHeader(writer, MessageType.Request);
  writer.ulong(request.requestId);
  writer.octet(request.responseExpected === false ? 0 : 3);
  writer.octet(0);
  writer.octet(0);
  writer.octet(0);
  writer.short(0); // KeyAddr
  writer.octets(request.key);
  writer.string(request.operation);
  writer.ulong(0); // no service contexts
  if (request.writeArguments) {
    writer.align(8);
    request.writeArguments(writer);
  }
  writer.patchUlong(sizeAt, writer.position - HEADER_BYTES);
  return writer.toBuffer();
}

/** A MessageError (a client answers one it cannot read with it, then closes). */
export function encodeMessageError(): Buffer {
  const writer = new CdrWriter(true, 0);
  writeHeader(writer, MessageType.MessageError);
  return writer.toBuffer();
}

/** What a Reply says, decoded as far as its status; the body reader is positioned at the result. */
export type Reply =
  | { requestId: number; status: "ok"; body: CdrReader }
  | { requestId: number; status: "forward"; ior: Ior; permanent: boolean }
  | { requestId: number; status: "error"; error: SystemException | DevFailed | UserException };

/** The request id of a Reply or Fragment (the first ulong of its body), to route it before decoding the rest. */
export function requestIdOf(message: Buffer, header: Header): number {
  if (header.size < 4) throw marshal("a reply too short to hold its request id");
  return header.littleEndian ? message.readUInt32LE(HEADER_BYTES) : message.readUInt32BE(HEADER_BYTES);
}

function readServiceContexts(reader: CdrReader): void {
  const count = reader.sequenceLength(8, "service contexts");
  for (let i = 0; i < count; i++) {
    reader.ulong();
    reader.octets();
  }
}

const COMPLETION: CompletionStatus[] = ["yes", "no", "maybe"];

/** The body of a SYSTEM_EXCEPTION reply: "IDL:omg.org/CORBA/OBJECT_NOT_EXIST:1.0", minor, completed. */
export function readSystemException(reader: CdrReader): SystemException {
  const id = reader.string();
  const minor = reader.ulong();
  const completed = COMPLETION[reader.ulong()] ?? "maybe";
  const name = /^IDL:omg\.org\/CORBA\/([A-Za-z_]+):\d+\.\d+$/.exec(id)?.[1] ?? id;
  const minorText = `minor 0x${minor.toString(16)}`;
  return new SystemException(name, `the server raised CORBA::${name} (${minorText}, completed ${completed})`, { minor, completed, remote: true });
}

const DEV_FAILED_ID = "IDL:Tango/DevFailed:1.0";
const SEVERITIES = ["WARN", "ERR", "PANIC"] as const;

/** The body of a USER_EXCEPTION reply: Tango::DevFailed with its error stack, or another exception by id. */
export function readUserException(reader: CdrReader): DevFailed | UserException {
  const id = reader.string();
  if (id !== DEV_FAILED_ID) return new UserException(id);
  // A DevError is at least three empty strings and a severity.
  const count = reader.sequenceLength(19, "the DevFailed error stack");
  const errors: DevError[] = [];
  for (let i = 0; i < count; i++) {
    const reason = reader.string();
    const severity = reader.ulong();
    const desc = reader.string();
    const origin = reader.string();
    errors.push({ reason, severity: SEVERITIES[severity] ?? severity, desc, origin });
  }
  return new DevFailed(errors);
}

/** Decodes a whole Reply message (header included, fragments already joined). */
export function decodeReply(message: Buffer, header: Header): Reply {
  if (header.major !== 1 || header.minor !== 2) {
    throw new SystemException("COMM_FAILURE", `a GIOP ${header.major}.${header.minor} reply to a GIOP 1.2 request`);
  }
  const reader = new CdrReader(message, header.littleEndian, HEADER_BYTES, HEADER_BYTES + header.size, 0);
  const requestId = reader.ulong();
  const status = reader.ulong();
  readServiceContexts(reader);
  // The body is aligned to 8 when there is one; an empty body may stop before the padding.
  if (reader.remaining > 0) reader.align(8);
  switch (status) {
    case ReplyStatus.NO_EXCEPTION:
      return { requestId, status: "ok", body: reader };
    case ReplyStatus.USER_EXCEPTION:
      return { requestId, status: "error", error: readUserException(reader) };
    case ReplyStatus.SYSTEM_EXCEPTION:
      return { requestId, status: "error", error: readSystemException(reader) };
    case ReplyStatus.LOCATION_FORWARD:
    case ReplyStatus.LOCATION_FORWARD_PERM:
      return { requestId, status: "forward", ior: readIor(reader), permanent: status === ReplyStatus.LOCATION_FORWARD_PERM };
    case ReplyStatus.NEEDS_ADDRESSING_MODE:
      return { requestId, status: "error", error: new SystemException("NO_IMPLEMENT", "the server wants another addressing mode than an object key") };
    default:
      throw marshal(`unknown reply status ${status}`);
  }
}
