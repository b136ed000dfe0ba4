// One TCP connection to one GIOP endpoint: requests go out as they come, replies are matched to them
// by request id (several may be in flight), each with its own reply timeout. The byte stream is cut
// into messages by their headers; a message longer than maxMessageBytes (or fragments adding up to
// more) ends the connection before anything that size is buffered, as does anything that is not GIOP.
//
// Failures, as CORBA names them: no connection (refused, unreachable, connect timeout) is TRANSIENT;
// a connection lost while a request waits is COMM_FAILURE; no reply in time is TIMEOUT. A request
// that timed out is forgotten (a late reply is dropped); when nothing else waits on the connection
// it is closed, so the next request starts on a fresh one. A CloseConnection from the server means
// it did not process what was pending: those requests fail as TRANSIENT and may be sent again.

import net from "node:net";
import { SystemException } from "./errors";
import { decodeReply, encodeMessageError, HEADER_BYTES, MessageType, readHeader, requestIdOf, type Header, type Reply } from "./messages";

export interface ConnectionOptions {
  connectTimeoutMs: number;
  /** The largest message (header included, fragments joined) accepted. */
  maxMessageBytes: number;
}

interface Pending {
  resolve(reply: Reply): void;
  reject(error: SystemException): void;
  timer: NodeJS.Timeout;
}

/** A reply being joined from its fragments. */
interface Assembly {
  parts: Buffer[];
  bytes: number;
}

/** A TRANSIENT failure that happened before the server processed the request: sending it again is safe. */
export class NotProcessed extends SystemException {
  constructor(message: string) {
    super("TRANSIENT", message, { completed: "no" });
  }
}

export class GiopConnection {
  private readonly socket: net.Socket;
  private connected = false;
  private closed = false;
  private readonly pending = new Map<number, Pending>();
  private readonly assemblies = new Map<number, Assembly>();
  private chunks: Buffer[] = [];
  private buffered = 0;
  private connectTimer: NodeJS.Timeout | null;

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly options: ConnectionOptions,
    /** Called once, when the connection is closed for any reason (the client forgets it). */
    private readonly onClosed: (connection: GiopConnection) => void,
  ) {
    this.socket = net.connect({ host, port });
    this.socket.setNoDelay(true);
    this.connectTimer = setTimeout(() => {
      this.fail(new NotProcessed(`no connection to ${this.where} within ${options.connectTimeoutMs} ms`), "ETIMEDOUT");
    }, options.connectTimeoutMs);
    this.connectTimer.unref();
    this.socket.once("connect", () => {
      this.connected = true;
      if (this.connectTimer) clearTimeout(this.connectTimer);
      this.connectTimer = null;
    });
    this.socket.on("data", (chunk: Buffer) => this.receive(chunk));
    this.socket.on("error", (err: NodeJS.ErrnoException) => {
      if (this.connected) this.fail(new SystemException("COMM_FAILURE", `connection to ${this.where} lost: ${err.message}`, { errno: err.code }));
      else this.fail(new NotProcessed(`cannot connect to ${this.where}: ${describeErrno(err)}`), err.code);
    });
    this.socket.on("close", () => {
      this.fail(
        this.connected
          ? new SystemException("COMM_FAILURE", `${this.where} closed the connection without answering`, { completed: "maybe" })
          : new NotProcessed(`cannot connect to ${this.where}`),
      );
    });
  }

  get where(): string {
    return `${this.host.includes(":") ? `[${this.host}]` : this.host}:${this.port}`;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Sends a whole Request message; resolves with its Reply, or rejects with a SystemException. */
  send(requestId: number, message: Buffer, timeoutMs: number): Promise<Reply> {
    if (this.closed) return Promise.reject(new NotProcessed(`the connection to ${this.where} is closed`));
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => this.timeout(requestId, timeoutMs), timeoutMs);
      timer.unref();
      this.pending.set(requestId, { resolve, reject, timer });
      // A connection with a request in flight keeps the process alive; an idle one does not.
      this.socket.ref();
      this.socket.write(message);
    });
  }

  close(): void {
    this.fail(new NotProcessed(`the connection to ${this.where} was closed by the client`));
  }

  private timeout(requestId: number, timeoutMs: number): void {
    const pending = this.pending.get(requestId);
    if (!pending) return;
    this.pending.delete(requestId);
    this.assemblies.delete(requestId);
    pending.reject(new SystemException("TIMEOUT", `no reply from ${this.where} within ${timeoutMs} ms`, { completed: "maybe" }));
    if (this.pending.size === 0) this.close();
  }

  private settle(requestId: number, outcome: { reply: Reply } | { error: SystemException }): void {
    const pending = this.pending.get(requestId);
    if (!pending) return; // timed out already: a late reply is dropped
    this.pending.delete(requestId);
    clearTimeout(pending.timer);
    if ("reply" in outcome) pending.resolve(outcome.reply);
    else pending.reject(outcome.error);
    if (this.pending.size === 0 && !this.closed) this.socket.unref();
  }

  /** Ends the connection: every pending request fails with `error`. */
  private fail(error: SystemException, errno?: string): void {
    if (this.closed) return;
    this.closed = true;
    if (this.connectTimer) clearTimeout(this.connectTimer);
    if (errno && error.details.errno === undefined) Object.assign(error.details, { errno });
    this.socket.destroy();
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      this.pending.delete(id);
      pending.reject(error);
    }
    this.chunks = [];
    this.buffered = 0;
    this.assemblies.clear();
    this.onClosed(this);
  }

  /** The peer broke the protocol: tell it (MessageError), and end the connection. */
  private protocolError(error: SystemException): void {
    if (this.closed) return;
    this.socket.write(encodeMessageError());
    this.fail(error);
  }

  private receive(chunk: Buffer): void {
    if (this.closed) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    while (!this.closed && this.buffered >= HEADER_BYTES) {
      const head = this.take(HEADER_BYTES, false);
      let header: Header;
      try {
        header = readHeader(head);
      } catch (err) {
        return this.protocolError(err as SystemException);
      }
      if (header.major !== 1) return this.protocolError(new SystemException("COMM_FAILURE", `GIOP version ${header.major}.${header.minor} from ${this.where}`));
      const total = HEADER_BYTES + header.size;
      if (total > this.options.maxMessageBytes) {
        return this.protocolError(
          new SystemException("MARSHAL", `${this.where} sent a message of ${total} bytes, above the bound of ${this.options.maxMessageBytes}`, {
            completed: "maybe",
          }),
        );
      }
      if (this.buffered < total) return;
      this.handle(this.take(total, true), header);
    }
  }

  /** The first `bytes` buffered bytes, joined; consumed when `consume`. */
  private take(bytes: number, consume: boolean): Buffer {
    if (this.chunks[0].length < bytes) this.chunks = [Buffer.concat(this.chunks)];
    const first = this.chunks[0];
    const taken = first.subarray(0, bytes);
    if (consume) {
      if (first.length === bytes) this.chunks.shift();
      else this.chunks[0] = first.subarray(bytes);
      this.buffered -= bytes;
    }
    return taken;
  }

  private handle(message: Buffer, header: Header): void {
    switch (header.type) {
      case MessageType.Reply:
        return this.reply(message, header);
      case MessageType.Fragment:
        return this.fragment(message, header);
      case MessageType.CloseConnection:
        return this.fail(new NotProcessed(`${this.where} closed the connection (CloseConnection) before answering`));
      case MessageType.MessageError:
        return this.fail(new SystemException("COMM_FAILURE", `${this.where} could not read our message (MessageError)`, { completed: "no" }));
      case MessageType.LocateReply:
      case MessageType.Request:
      case MessageType.LocateRequest:
      case MessageType.CancelRequest:
        return; // Not asked for (we send no LocateRequest and offer no bidirectional GIOP): dropped.
      default:
        return this.protocolError(new SystemException("COMM_FAILURE", `unknown GIOP message type ${header.type} from ${this.where}`));
    }
  }

  private reply(message: Buffer, header: Header): void {
    let requestId: number;
    try {
      requestId = requestIdOf(message, header);
    } catch (err) {
      return this.protocolError(err as SystemException);
    }
    if (header.moreFragments) {
      // Copied: the chunk it came in may be reused for what follows.
      if (this.pending.has(requestId)) this.assemblies.set(requestId, { parts: [Buffer.from(message)], bytes: message.length });
      return;
    }
    this.deliver(requestId, message, header);
  }

  private fragment(message: Buffer, header: Header): void {
    if (header.minor < 2) return; // GIOP 1.1 fragments carry no request id: we never ask for them.
    let requestId: number;
    try {
      requestId = requestIdOf(message, header);
    } catch (err) {
      return this.protocolError(err as SystemException);
    }
    const assembly = this.assemblies.get(requestId);
    if (!assembly) return; // a fragment of a reply nobody waits for (it timed out)
    // GIOP 1.2 fragment data starts after the 4-byte request id, at offset 16: 8-aligned, so the
    // parts join into one message with the alignment of a message sent whole.
    const data = message.subarray(HEADER_BYTES + 4);
    if (assembly.bytes + data.length > this.options.maxMessageBytes) {
      return this.protocolError(
        new SystemException("MARSHAL", `${this.where} sent a fragmented reply of more than ${this.options.maxMessageBytes} bytes`, { completed: "maybe" }),
      );
    }
    assembly.parts.push(Buffer.from(data));
    assembly.bytes += data.length;
    if (header.moreFragments) return;
    this.assemblies.delete(requestId);
    const whole = Buffer.concat(assembly.parts, assembly.bytes);
    const first = readHeader(whole);
    if (first.littleEndian) whole.writeUInt32LE(assembly.bytes - HEADER_BYTES, 8);
    else whole.writeUInt32BE(assembly.bytes - HEADER_BYTES, 8);
    this.deliver(requestId, whole, { ...first, moreFragments: false, size: assembly.bytes - HEADER_BYTES });
  }

  private deliver(requestId: number, message: Buffer, header: Header): void {
    if (!this.pending.has(requestId)) return;
    try {
      this.settle(requestId, { reply: decodeReply(message, header) });
    } catch (err) {
      // The framing is intact (the size was known): only this request fails.
      this.settle(requestId, { error: err as SystemException });
    }
  }
}

function describeErrno(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case "ECONNREFUSED":
      return "connection refused";
    case "EHOSTUNREACH":
      return "host unreachable";
    case "ENETUNREACH":
      return "network unreachable";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "host name not resolved";
    default:
      return err.message;
  }
}
