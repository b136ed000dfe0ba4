// The GIOP 1.2 / CDR codec against byte captures of real exchanges with Debian's DataBaseds and
// TangoTest (test/fixtures/giop/captures.json): the requests it writes are those the servers
// answered, and the replies decode to what the servers said. Then what a broken or hostile peer may
// send: truncated messages, lengths beyond what is there, nesting without end.

import { describe, expect, it } from "vitest";
import { CdrReader, CdrWriter } from "../../../init/giop/cdr";
import { DevFailed, SystemException } from "../../../init/giop/errors";
import { iiopAddress, parseIor, stringifyIor } from "../../../init/giop/ior";
import { decodeReply, encodeRequest, readHeader } from "../../../init/giop/messages";
import { DATABASE_KEY, parseProperties, parseTangoHost, tangoArg, TangoTypes } from "../../../init/giop/tango";
import { readAny, readTypeCode, writeAny, writeTypeCode } from "../../../init/giop/typecode";
import { capture, captures, splitMessages } from "./captures";

/** The request of a capture, as the client writes it. */
function requestOf(name: string): Buffer {
  const c = capture(name);
  const sent = c.sent;
  const header = readHeader(sent);
  const reader = new CdrReader(sent, header.littleEndian, 12, 12 + header.size, 0);
  reader.ulong(); // request id
  reader.skip(4); // response flags + reserved
  reader.short(); // KeyAddr
  const key = Buffer.from(reader.octets());
  const operation = reader.string();
  reader.ulong(); // service contexts
  if (operation === "ping") return encodeRequest({ requestId: 1, key, operation });
  if (reader.remaining > 0) reader.align(8);
  const command = reader.string();
  const argin = readAny(reader);
  return encodeRequest({
    requestId: 1,
    key,
    operation,
    writeArguments: (writer) => {
      writer.string(command);
      writeAny(writer, argin);
    },
  });
}

function decoded(name: string) {
  const [message] = splitMessages(capture(name).received);
  return decodeReply(message, readHeader(message));
}

describe("requests, as the real servers answered them", () => {
  it("every captured request is what the encoder writes, byte for byte", () => {
    const requests = captures.filter((c) => c.name !== "command-fragmented");
    expect(requests.length).toBeGreaterThan(15);
    for (const c of requests) expect(requestOf(c.name).toString("hex"), c.name).toBe(c.sent.toString("hex"));
  });

  it("a request: GIOP 1.2, little endian, KeyAddr target, response expected, arguments aligned to 8", () => {
    const message = encodeRequest({
      requestId: 7,
      key: DATABASE_KEY,
      operation: "command_inout",
      writeArguments: (writer) => {
        writer.string("DbGetHostServersInfo");
        writeAny(writer, tangoArg("DevString", "ctl01"));
      },
    });
    expect(message.subarray(0, 8).toString("latin1")).toBe("GIOP\x01\x02\x01\x00");
    expect(message.readUInt32LE(8)).toBe(message.length - 12);
    expect(message.readUInt32LE(12)).toBe(7);
    expect(message[16]).toBe(3);
    expect(message.readInt16LE(20)).toBe(0);
    const at = message.indexOf("DbGetHostServersInfo") - 4;
    expect(at % 8).toBe(0);
  });
});

describe("replies of DataBaseds", () => {
  it("ping: NO_EXCEPTION with an empty body", () => {
    const reply = decoded("database-ping");
    expect(reply).toMatchObject({ requestId: 1, status: "ok" });
    expect(reply.status === "ok" && reply.body.remaining).toBe(0);
  });

  it("an object key it does not know: the system exception OBJECT_NOT_EXIST", () => {
    const reply = decoded("unknown-object");
    expect(reply.status).toBe("error");
    const error = (reply as { error: SystemException }).error;
    expect(error).toBeInstanceOf(SystemException);
    expect(error).toMatchObject({ code: "OBJECT_NOT_EXIST", details: { completed: "no", remote: true, minor: 0x4f4d0001 } });
  });

  it("command_inout answers: DevVarStringArray as a list of strings, DevVarLongStringArray as {lvalue, svalue}", () => {
    for (const name of [
      "host-servers-info",
      "device-property-list",
      "device-property",
      "class-property-list",
      "class-property",
      "import-device",
      "import-device-not-exported",
    ]) {
      const reply = decoded(name);
      if (reply.status !== "ok") throw new Error(`${name}: ${reply.status}`);
      const any = readAny(reply.body);
      expect(any.value, name).toEqual(capture(name).outcome.ok);
      expect(reply.body.remaining, name).toBe(0);
    }
    const servers = readAny((decoded("host-servers-info") as { body: CdrReader }).body);
    expect(servers.type).toEqual(TangoTypes.DevVarStringArray);
    expect(servers.value).toEqual(["TangoTest/rec1", "1", "1", "TangoTest/rec2", "1", "2", "TangoTest/rec3", "0", "0"]);
    const imported = readAny((decoded("import-device") as { body: CdrReader }).body);
    expect(imported.type).toEqual(TangoTypes.DevVarLongStringArray);
  });

  it("a property list, with a property that does not exist (name, 0, ' ')", () => {
    const any = readAny((decoded("device-property") as { body: CdrReader }).body);
    expect(parseProperties(any.value as string[], "DbGetDeviceProperty")).toEqual({
      InterStartupLevelWait: ["2"],
      StartDsPath: ["/usr/lib/tango"],
      TangoTest_rec1: ["-v4", "--with space"],
      TangoTest_rec1_env: ["SITE=elettra"],
    });
    expect(() => parseProperties(["dev", "2", "A", "1"], "x")).toThrow(/not \[object, count/);
  });

  it("DevFailed: the user exception with its error stack", () => {
    const reply = decoded("import-device-unknown");
    const error = (reply as { error: DevFailed }).error;
    expect(error).toBeInstanceOf(DevFailed);
    expect(error.errors).toEqual([
      { reason: "DB_DeviceNotDefined", severity: "ERR", desc: "device no/such/device not defined in the database !", origin: "DataBase::ImportDevice()" },
    ]);
    expect(error.code).toBe("DB_DeviceNotDefined");
  });

  it("the IOR of an imported device: host, port and object key of its IIOP profile", () => {
    const { svalue, lvalue } = capture("import-device").outcome.ok as { svalue: string[]; lvalue: number[] };
    expect(lvalue[0]).toBe(1);
    const ior = parseIor(svalue[1]);
    expect(ior.typeId).toBe("IDL:Tango/Device_5:1.0");
    expect(iiopAddress(ior)).toMatchObject({ host: "127.0.0.1", key: Buffer.from("dserver/databaseds/2") });
    expect(ior.iiop!.version).toBe("1.2");
  });
});

describe("replies of TangoTest", () => {
  it("every command type it answered decodes to the value sent (DevVoid, DevString, DevLong, arrays)", () => {
    for (const name of ["command-void", "command-string", "command-long", "command-string-array", "command-long-string-array", "command-status"]) {
      const reply = decoded(name);
      if (reply.status !== "ok") throw new Error(`${name}: ${reply.status}`);
      expect(readAny(reply.body).value, name).toEqual(capture(name).outcome.ok);
    }
    expect(capture("command-string").outcome.ok).toBe("héllo");
  });

  it("State: a DevState enum, read as its member name", () => {
    const any = readAny((decoded("command-state") as { body: CdrReader }).body);
    expect(any.type).toEqual(TangoTypes.DevState);
    expect(any.value).toBe("RUNNING");
  });

  it("a command it does not have: DevFailed API_CommandNotFound", () => {
    const error = (decoded("command-not-found") as { error: DevFailed }).error;
    expect(error.errors[0]).toMatchObject({ reason: "API_CommandNotFound", severity: "ERR" });
  });

  it("a big reply comes as a Reply with the more-fragments flag, then Fragments carrying its request id", () => {
    const messages = splitMessages(capture("command-fragmented").received);
    expect(messages.length).toBeGreaterThan(1);
    expect(readHeader(messages[0])).toMatchObject({ type: 1, moreFragments: true });
    for (const fragment of messages.slice(1, -1)) expect(readHeader(fragment)).toMatchObject({ type: 7, moreFragments: true });
    expect(readHeader(messages.at(-1)!)).toMatchObject({ type: 7, moreFragments: false });
  });
});

describe("what a broken or hostile peer sends", () => {
  it("a truncated reply (the header's size says less than the body needs) is MARSHAL, not a crash", () => {
    const [message] = splitMessages(capture("host-servers-info").received);
    for (const cut of [16, 20, 40, 100, message.length - 1]) {
      const truncated = Buffer.from(message.subarray(0, cut));
      truncated.writeUInt32LE(cut - 12, 8);
      const header = readHeader(truncated);
      expect(() => {
        const reply = decodeReply(truncated, header);
        if (reply.status === "ok") readAny(reply.body);
      }, `cut at ${cut}`).toThrow(SystemException);
    }
  });

  it("a sequence length beyond what is left is refused before anything is allocated", () => {
    const writer = new CdrWriter(true);
    writeTypeCode(writer, TangoTypes.DevVarStringArray);
    writer.ulong(0xfffffff0); // 4 billion strings, in a 100-byte message
    const bytes = writer.toBuffer();
    expect(() => readAny(new CdrReader(bytes, true))).toThrow(/sequence of 4294967280 element\(s\) does not fit/);
    const string = new CdrWriter(true);
    string.ulong(0x7fffffff);
    expect(() => new CdrReader(string.toBuffer(), true).string()).toThrow(/truncated: a string of 2147483647 byte\(s\)/);
    const profiles = new CdrWriter(true);
    profiles.boolean(true);
    profiles.string("IDL:x:1.0");
    profiles.ulong(1e9);
    expect(() => parseIor(`IOR:${profiles.toBuffer().toString("hex")}`)).toThrow(/IOR profiles of 1000000000/);
  });

  it("TypeCodes: nesting without end, an indirection to nowhere, an unsupported kind", () => {
    const deep = new CdrWriter(true);
    const nest = (writer: CdrWriter, depth: number): void => {
      writer.ulong(19); // tk_sequence
      writer.encapsulation((inner) => {
        if (depth === 0) inner.ulong(3);
        else nest(inner, depth - 1);
        inner.ulong(0);
      });
    };
    nest(deep, 40);
    expect(() => readTypeCode(new CdrReader(deep.toBuffer(), true))).toThrow(/nested deeper than 32/);
    const indirection = new CdrWriter(true);
    indirection.ulong(0xffffffff);
    indirection.long(-100);
    expect(() => readTypeCode(new CdrReader(indirection.toBuffer(), true))).toThrow(/indirection/);
    const objref = new CdrWriter(true);
    objref.ulong(14);
    expect(() => readTypeCode(new CdrReader(objref.toBuffer(), true))).toThrow(/kind objref is not supported/);
  });

  it("not GIOP at all: COMM_FAILURE", () => {
    expect(() => readHeader(Buffer.from("HTTP/1.1 400 Bad Request\r\n"))).toThrow(expect.objectContaining({ code: "COMM_FAILURE" }));
  });

  it("a stringified IOR that is not one: INV_OBJREF", () => {
    expect(() => parseIor("nada")).toThrow(expect.objectContaining({ code: "INV_OBJREF" }));
    expect(() => parseIor("IOR:0g")).toThrow(expect.objectContaining({ code: "INV_OBJREF" }));
    const address = { host: "ctl01", port: 12345, key: Buffer.from("dserver/tangotest/t1") };
    expect(iiopAddress(parseIor(stringifyIor("IDL:Tango/Device_5:1.0", address)))).toEqual(address);
  });
});

describe("TANGO_HOST", () => {
  it("one database or several (redundant databases), IPv6 in brackets", () => {
    expect(parseTangoHost("db:10000")).toEqual([{ host: "db", port: 10000 }]);
    expect(parseTangoHost("db1:10000, db2:20000")).toEqual([
      { host: "db1", port: 10000 },
      { host: "db2", port: 20000 },
    ]);
    expect(parseTangoHost("[::1]:10000")).toEqual([{ host: "::1", port: 10000 }]);
  });

  it("an entry that is not host:port is an error naming it", () => {
    expect(() => parseTangoHost("db")).toThrow('TANGO_HOST entry "db" is not host:port');
    expect(() => parseTangoHost("db:10000,db2:99999")).toThrow('TANGO_HOST entry "db2:99999" is not host:port');
    expect(() => parseTangoHost(" ")).toThrow("TANGO_HOST is empty");
  });
});
