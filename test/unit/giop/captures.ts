// The recorded exchanges (test/fixtures/giop/captures.json, made by record.mjs against Debian's
// DataBaseds and TangoTest) and a peer that replays them over a real socket.

import fs from "node:fs";
import net from "node:net";
import path from "node:path";

export interface Capture {
  name: string;
  about: string;
  peer: "DataBaseds" | "TangoTest";
  sent: Buffer;
  received: Buffer;
  outcome: { ok?: unknown; error?: string; message?: string };
}

const FILE = path.join(__dirname, "..", "..", "fixtures", "giop", "captures.json");

const raw = JSON.parse(fs.readFileSync(FILE, "utf8")) as {
  captures: { name: string; about: string; peer: Capture["peer"]; sent: string; received: string; outcome: Capture["outcome"] }[];
};

export const captures: Capture[] = raw.captures.map((c) => ({ ...c, sent: Buffer.from(c.sent, "hex"), received: Buffer.from(c.received, "hex") }));

export function capture(name: string): Capture {
  const found = captures.find((c) => c.name === name);
  if (!found) throw new Error(`no capture ${name}`);
  return found;
}

/** The GIOP messages in a byte stream (each with its header). */
export function splitMessages(bytes: Buffer): Buffer[] {
  const messages: Buffer[] = [];
  for (let at = 0; at + 12 <= bytes.length;) {
    const size = (bytes[at + 6] & 1) === 1 ? bytes.readUInt32LE(at + 8) : bytes.readUInt32BE(at + 8);
    messages.push(bytes.subarray(at, at + 12 + size));
    at += 12 + size;
  }
  return messages;
}

/** The bytes with the request id of every message (at offset 12) set to `id`. */
export function withRequestId(bytes: Buffer, id: number): Buffer {
  const copy = Buffer.from(bytes);
  let at = 0;
  for (const message of splitMessages(bytes)) {
    copy.writeUInt32LE(id, at + 12);
    at += message.length;
  }
  return copy;
}

export interface FakePeer {
  port: number;
  /** Connections accepted so far. */
  connections: number;
  /** Requests read so far (whole messages). */
  requests: Buffer[];
  close(): Promise<void>;
}

/**
 * A GIOP peer on 127.0.0.1: for each whole request it reads, `answer` gives the bytes to write back
 * (null: write nothing). The request id of the request is passed along.
 */
export async function fakePeer(answer: (request: Buffer, requestId: number, socket: net.Socket) => Buffer | null): Promise<FakePeer> {
  const sockets = new Set<net.Socket>();
  const peer: FakePeer = {
    port: 0,
    connections: 0,
    requests: [],
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  const server = net.createServer((socket) => {
    peer.connections += 1;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    let pending = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 12) {
        const size = pending.readUInt32LE(8);
        if (pending.length < 12 + size) return;
        const request = pending.subarray(0, 12 + size);
        pending = pending.subarray(12 + size);
        if (request[7] !== 0) continue; // only Requests are answered
        peer.requests.push(request);
        const reply = answer(request, request.readUInt32LE(12), socket);
        if (reply && !socket.destroyed) socket.write(reply);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  peer.port = (server.address() as net.AddressInfo).port;
  return peer;
}

/** A peer that answers every request with the capture's reply. */
export function replaying(c: Capture): Promise<FakePeer> {
  return fakePeer((_, id) => withRequestId(c.received, id));
}
