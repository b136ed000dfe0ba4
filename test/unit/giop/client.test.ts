// The GIOP client over real sockets, against peers that replay the captured replies of Debian's
// DataBaseds and TangoTest (byte for byte, with the request id of each request) or misbehave on
// purpose: a reply cut short, a length field far beyond any bound, silence, a LOCATION_FORWARD, a
// CloseConnection, something that is not GIOP.

import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { GiopClient } from "../../../init/giop/client";
import { CdrWriter } from "../../../init/giop/cdr";
import { DevFailed, SystemException } from "../../../init/giop/errors";
import { writeIor } from "../../../init/giop/ior";
import { commandInout, DATABASE_KEY, deviceAt, ping, tangoArg, TangoDatabase } from "../../../init/giop/tango";
import { capture, fakePeer, replaying, splitMessages, withRequestId, type FakePeer } from "./captures";

const peers: FakePeer[] = [];
const clients: GiopClient[] = [];

function client(options: ConstructorParameters<typeof GiopClient>[0] = {}): GiopClient {
  const made = new GiopClient(options);
  clients.push(made);
  return made;
}

async function peer(made: Promise<FakePeer>): Promise<FakePeer> {
  const started = await made;
  peers.push(started);
  return started;
}

afterEach(async () => {
  for (const made of clients.splice(0)) made.close();
  await Promise.all(peers.splice(0).map((p) => p.close()));
});

const database = (port: number) => ({ host: "127.0.0.1", port, key: DATABASE_KEY });

/** A port nothing listens on. */
async function deadPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A Reply of LOCATION_FORWARD to 127.0.0.1:port. */
function forwardTo(requestId: number, port: number): Buffer {
  const writer = new CdrWriter(true);
  writer.bytes(Buffer.from("GIOP\x01\x02\x01\x01", "latin1"));
  writer.ulong(0);
  writer.ulong(requestId);
  writer.ulong(3); // LOCATION_FORWARD
  writer.ulong(0); // no service contexts
  writer.align(8);
  writeIor(writer, "IDL:Tango/Device_5:1.0", database(port));
  const bytes = writer.toBuffer();
  bytes.writeUInt32LE(bytes.length - 12, 8);
  return bytes;
}

describe("replies as the real servers sent them", () => {
  it("DataBaseds: a command's answer, a DevFailed, OBJECT_NOT_EXIST", async () => {
    const servers = await peer(replaying(capture("host-servers-info")));
    const answer = await commandInout(client(), database(servers.port), "DbGetHostServersInfo", tangoArg("DevString", "rechost"));
    expect(answer.value).toEqual(capture("host-servers-info").outcome.ok);

    const unknown = await peer(replaying(capture("import-device-unknown")));
    const failed = await commandInout(client(), database(unknown.port), "DbImportDevice", tangoArg("DevString", "no/such/device")).catch((err: unknown) => err);
    expect(failed).toBeInstanceOf(DevFailed);
    expect((failed as DevFailed).errors[0].reason).toBe("DB_DeviceNotDefined");

    const nothing = await peer(replaying(capture("unknown-object")));
    await expect(ping(client(), database(nothing.port))).rejects.toMatchObject({ code: "OBJECT_NOT_EXIST", details: { remote: true } });
  });

  it("a reply in fragments is joined (the 1000 strings TangoTest sent back)", async () => {
    const c = capture("command-fragmented");
    const fragments = await peer(replaying(c));
    const answer = await commandInout(
      client(),
      deviceAt("127.0.0.1", fragments.port, "sys/tg_test/rec"),
      "DevVarStringArray",
      tangoArg("DevVarStringArray", []),
    );
    expect(answer.value).toEqual(c.outcome.ok);
    expect((answer.value as string[]).length).toBe(1000);
  });

  it("fragments arriving a byte at a time, and several replies in one chunk, are cut where the headers say", async () => {
    const c = capture("command-fragmented");
    const slow = await peer(
      fakePeer((_, id, socket) => {
        const bytes = withRequestId(c.received, id);
        let at = 0;
        const drip = () => {
          if (socket.destroyed) return;
          socket.write(bytes.subarray(at, at + 997));
          at += 997;
          if (at < bytes.length) setImmediate(drip);
        };
        drip();
        return null;
      }),
    );
    const answer = await commandInout(client(), deviceAt("127.0.0.1", slow.port, "x"), "DevVarStringArray", tangoArg("DevVarStringArray", []));
    expect((answer.value as string[]).at(-1)).toBe("string 999");
  });

  it("one connection per endpoint, reused by every request; several requests in flight on it", async () => {
    const replay = await peer(replaying(capture("database-ping")));
    const shared = client();
    await ping(shared, database(replay.port));
    await ping(shared, database(replay.port));
    await Promise.all([1, 2, 3, 4].map(() => ping(shared, database(replay.port))));
    expect(replay.connections).toBe(1);
    expect(replay.requests).toHaveLength(6);
    expect(shared.endpoints).toEqual([`127.0.0.1:${replay.port}`]);
  });
});

describe("what goes wrong on the way", () => {
  it("nothing listening: TRANSIENT with ECONNREFUSED", async () => {
    const port = await deadPort();
    await expect(ping(client(), database(port))).rejects.toMatchObject({ code: "TRANSIENT", details: { errno: "ECONNREFUSED", completed: "no" } });
  });

  it("a peer that never answers: TIMEOUT after the reply timeout, and the connection is dropped", async () => {
    const silent = await peer(fakePeer(() => null));
    const quiet = client();
    const started = Date.now();
    await expect(ping(quiet, database(silent.port), { timeoutMs: 300 })).rejects.toMatchObject({
      code: "TIMEOUT",
      message: `no reply from 127.0.0.1:${silent.port} within 300 ms`,
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(quiet.endpoints).toEqual([]);
    // The next request opens a fresh connection.
    await expect(ping(quiet, database(silent.port), { timeoutMs: 100 })).rejects.toMatchObject({ code: "TIMEOUT" });
    expect(silent.connections).toBe(2);
  });

  it("a reply that arrives after its timeout is dropped; the next request gets its own reply", async () => {
    const c = capture("database-ping");
    let calls = 0;
    const late = await peer(
      fakePeer((_, id, socket) => {
        calls += 1;
        if (calls === 1) setTimeout(() => socket.write(withRequestId(c.received, id)), 300);
        else return withRequestId(c.received, id);
        return null;
      }),
    );
    const shared = client();
    const first = ping(shared, database(late.port), { timeoutMs: 100 });
    const second = ping(shared, database(late.port), { timeoutMs: 2000 });
    await expect(first).rejects.toMatchObject({ code: "TIMEOUT" });
    await expect(second).resolves.toBeTypeOf("number");
  });

  it("a reply cut short, then the connection closed: COMM_FAILURE", async () => {
    const c = capture("host-servers-info");
    const cut = await peer(
      fakePeer((_, id, socket) => {
        socket.end(withRequestId(c.received, id).subarray(0, 60));
        return null;
      }),
    );
    await expect(commandInout(client(), database(cut.port), "DbGetHostServersInfo", tangoArg("DevString", "x"))).rejects.toMatchObject({
      code: "COMM_FAILURE",
      message: expect.stringMatching(/closed the connection without answering/),
    });
  });

  it("a truncated body inside a whole message: MARSHAL for that request only; the connection goes on", async () => {
    const c = capture("host-servers-info");
    let calls = 0;
    const broken = await peer(
      fakePeer((_, id) => {
        calls += 1;
        const reply = withRequestId(c.received, id);
        if (calls > 1) return reply;
        const truncated = Buffer.from(reply.subarray(0, 100));
        truncated.writeUInt32LE(100 - 12, 8);
        return truncated;
      }),
    );
    const shared = client();
    const call = () => commandInout(shared, database(broken.port), "DbGetHostServersInfo", tangoArg("DevString", "x"));
    await expect(call()).rejects.toMatchObject({ code: "MARSHAL", message: expect.stringMatching(/does not fit|truncated/) });
    await expect(call()).resolves.toMatchObject({ value: capture("host-servers-info").outcome.ok });
    expect(broken.connections).toBe(1);
  });

  it("a length field far beyond the bound: MARSHAL at once, nothing buffered, the connection closed", async () => {
    const c = capture("database-ping");
    const hostile = await peer(
      fakePeer((_, id) => {
        const reply = withRequestId(c.received, id);
        reply.writeUInt32LE(0xfffffff0, 8);
        return reply;
      }),
    );
    const bounded = client({ maxMessageBytes: 1024 * 1024 });
    const started = Date.now();
    await expect(ping(bounded, database(hostile.port), { timeoutMs: 5000 })).rejects.toMatchObject({
      code: "MARSHAL",
      message: `127.0.0.1:${hostile.port} sent a message of 4294967292 bytes, above the bound of 1048576`,
    });
    expect(Date.now() - started).toBeLessThan(4000);
    expect(bounded.endpoints).toEqual([]);
  });

  it("fragments adding up to more than the bound end the connection", async () => {
    const c = capture("command-fragmented");
    const many = await peer(replaying(c));
    const bounded = client({ maxMessageBytes: 12_000 });
    await expect(commandInout(bounded, deviceAt("127.0.0.1", many.port, "x"), "DevVarStringArray", tangoArg("DevVarStringArray", []))).rejects.toMatchObject({
      code: "MARSHAL",
      message: expect.stringMatching(/fragmented reply of more than 12000 bytes/),
    });
  });

  it("a peer that is not a CORBA server: COMM_FAILURE", async () => {
    const http = await peer(fakePeer(() => Buffer.from("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")));
    await expect(ping(client(), database(http.port))).rejects.toMatchObject({ code: "COMM_FAILURE", message: expect.stringMatching(/does not speak GIOP/) });
  });

  it("MessageError from the server: COMM_FAILURE", async () => {
    const refusing = await peer(fakePeer(() => Buffer.from("GIOP\x01\x02\x01\x06\x00\x00\x00\x00", "latin1")));
    await expect(ping(client(), database(refusing.port))).rejects.toMatchObject({ code: "COMM_FAILURE", message: expect.stringMatching(/MessageError/) });
  });

  it("CloseConnection before answering: the request is sent again on a new connection", async () => {
    const c = capture("database-ping");
    const closing = await peer(
      fakePeer((_, id, socket) => {
        if (closing.connections === 1) {
          socket.end(Buffer.from("GIOP\x01\x02\x01\x05\x00\x00\x00\x00", "latin1"));
          return null;
        }
        return withRequestId(c.received, id);
      }),
    );
    await expect(ping(client(), database(closing.port))).resolves.toBeTypeOf("number");
    expect(closing.connections).toBe(2);
  });

  it("LOCATION_FORWARD is followed to the object's new address; a forward loop ends", async () => {
    const target = await peer(replaying(capture("database-ping")));
    const forwarding = await peer(fakePeer((_, id) => forwardTo(id, target.port)));
    await expect(ping(client(), database(forwarding.port))).resolves.toBeTypeOf("number");
    expect(target.requests).toHaveLength(1);
    expect(target.requests[0].toString("latin1")).toContain("\x08\x00\x00\x00database");

    let loop: FakePeer | null = null;
    loop = await peer(fakePeer((_, id) => forwardTo(id, loop!.port)));
    await expect(ping(client({ maxForwards: 3 }), database(loop.port))).rejects.toMatchObject({ code: "IMP_LIMIT" });
    expect(loop.requests).toHaveLength(4);
  });
});

describe("the database through TANGO_HOST", () => {
  it("the first entry dead: the second answers, and is asked first from then on", async () => {
    const dead = await deadPort();
    const alive = await peer(replaying(capture("host-servers-info")));
    const db = new TangoDatabase(client(), [
      { host: "127.0.0.1", port: dead },
      { host: "127.0.0.1", port: alive.port },
    ]);
    expect(await db.hostServersInfo("rechost")).toEqual(capture("host-servers-info").outcome.ok);
    expect(db.answering.port).toBe(alive.port);
    await db.hostServersInfo("rechost");
    expect(alive.requests).toHaveLength(2);
    expect(db.tangoHost).toBe(`127.0.0.1:${dead},127.0.0.1:${alive.port}`);
  });

  it("a DevFailed is an answer: the next entry is not asked", async () => {
    const failing = await peer(replaying(capture("import-device-unknown")));
    const other = await peer(replaying(capture("import-device")));
    const db = new TangoDatabase(client(), [
      { host: "127.0.0.1", port: failing.port },
      { host: "127.0.0.1", port: other.port },
    ]);
    await expect(db.importDevice("no/such/device")).rejects.toBeInstanceOf(DevFailed);
    expect(other.requests).toHaveLength(0);
  });

  it("none answers: one error naming each entry", async () => {
    const [a, b] = [await deadPort(), await deadPort()];
    const db = new TangoDatabase(client(), [
      { host: "127.0.0.1", port: a },
      { host: "127.0.0.1", port: b },
    ]);
    const error = (await db.hostServersInfo("x").catch((err: unknown) => err)) as SystemException;
    expect(error).toBeInstanceOf(SystemException);
    expect(error.code).toBe("TRANSIENT");
    expect(error.message).toBe(
      `no database of TANGO_HOST answers (127.0.0.1:${a}: cannot connect to 127.0.0.1:${a}: connection refused; 127.0.0.1:${b}: cannot connect to 127.0.0.1:${b}: connection refused)`,
    );
  });

  it("DbImportDevice: exported or not, the IOR's address, the pid", async () => {
    const exported = await peer(replaying(capture("import-device")));
    const db = new TangoDatabase(client(), [{ host: "127.0.0.1", port: exported.port }]);
    const { address, imported } = await db.deviceAddress("dserver/DataBaseds/2");
    expect(imported).toMatchObject({ name: "dserver/databaseds/2", server: "DataBaseds/2", exported: true, version: "5" });
    expect(imported.pid).toBeGreaterThan(0);
    expect(address.key.toString()).toBe("dserver/databaseds/2");

    const notRunning = await peer(replaying(capture("import-device-not-exported")));
    const other = new TangoDatabase(client(), [{ host: "127.0.0.1", port: notRunning.port }]);
    await expect(other.deviceAddress("dserver/TangoTest/rec1")).rejects.toMatchObject({ code: "API_DeviceNotExported" });
  });

  it("the messages of a capture replayed are those the server sent (a check of the replay itself)", () => {
    const c = capture("command-fragmented");
    expect(splitMessages(withRequestId(c.received, 9)).every((m) => m.readUInt32LE(12) === 9)).toBe(true);
  });
});
