// The GIOP client: one connection per endpoint (host:port), reused by every request to it, opened on
// first use and forgotten once closed. invoke() sends a Request and returns the reader of its result,
// or throws what the server answered (a DevFailed, a system exception) or what went wrong on the way
// (TRANSIENT, COMM_FAILURE, TIMEOUT, MARSHAL). A LOCATION_FORWARD is followed, a few times at most; a
// request the server closed the connection on without processing it is sent once more.

import type { CdrReader, CdrWriter } from "./cdr";
import { GiopConnection, NotProcessed } from "./connection";
import { SystemException } from "./errors";
import { iiopAddress, type ObjectAddress } from "./ior";
import { encodeRequest } from "./messages";

export interface ClientOptions {
  /** How long a connection may take to open (default 3 s). */
  connectTimeoutMs?: number;
  /** How long a reply may take (default 3 s: Tango's default client timeout). */
  replyTimeoutMs?: number;
  /** The largest message accepted (default 16 MiB). */
  maxMessageBytes?: number;
  /** LOCATION_FORWARDs followed for one request (default 5). */
  maxForwards?: number;
}

export interface InvokeOptions {
  timeoutMs?: number;
  connectTimeoutMs?: number;
}

const DEFAULTS = { connectTimeoutMs: 3000, replyTimeoutMs: 3000, maxMessageBytes: 16 * 1024 * 1024, maxForwards: 5 };

export class GiopClient {
  private readonly options: Required<ClientOptions>;
  private readonly connections = new Map<string, GiopConnection>();
  private nextRequestId = 1;

  constructor(options: ClientOptions = {}) {
    this.options = { ...DEFAULTS, ...options };
  }

  /** Calls `operation` on the object at `address`; resolves with a reader positioned at its result. */
  async invoke(address: ObjectAddress, operation: string, writeArguments?: (writer: CdrWriter) => void, options: InvokeOptions = {}): Promise<CdrReader> {
    let target = address;
    let resent = false;
    for (let forwards = 0; ;) {
      const requestId = this.nextRequestId;
      this.nextRequestId = (this.nextRequestId + 1) >>> 0 || 1;
      const message = encodeRequest({ requestId, key: target.key, operation, writeArguments });
      let reply;
      try {
        reply = await this.connection(target, options).send(requestId, message, options.timeoutMs ?? this.options.replyTimeoutMs);
      } catch (err) {
        // Closed by the server with our request unprocessed (an idle connection it was closing): once more.
        if (err instanceof NotProcessed && !resent && /CloseConnection/.test(err.message)) {
          resent = true;
          continue;
        }
        throw err;
      }
      if (reply.status === "ok") return reply.body;
      if (reply.status === "error") throw reply.error;
      forwards += 1;
      if (forwards > this.options.maxForwards) {
        throw new SystemException("IMP_LIMIT", `more than ${this.options.maxForwards} LOCATION_FORWARD replies for ${operation}`, { completed: "no" });
      }
      target = iiopAddress(reply.ior, "the LOCATION_FORWARD reference");
    }
  }

  /** Closes every connection (pending requests fail). */
  close(): void {
    for (const connection of [...this.connections.values()]) connection.close();
    this.connections.clear();
  }

  /** Open connections, by "host:port" (status and tests). */
  get endpoints(): string[] {
    return [...this.connections.keys()];
  }

  private connection(address: ObjectAddress, options: InvokeOptions): GiopConnection {
    const key = `${address.host.toLowerCase()}:${address.port}`;
    let connection = this.connections.get(key);
    if (!connection || connection.isClosed) {
      connection = new GiopConnection(
        address.host,
        address.port,
        { connectTimeoutMs: options.connectTimeoutMs ?? this.options.connectTimeoutMs, maxMessageBytes: this.options.maxMessageBytes },
        (closed) => {
          if (this.connections.get(key) === closed) this.connections.delete(key);
        },
      );
      this.connections.set(key, connection);
    }
    return connection;
  }
}

let shared: GiopClient | null = null;

/** The process's client: the `tango` source, readiness probes and liveness pings share its connections. */
export function sharedGiopClient(): GiopClient {
  shared ??= new GiopClient();
  return shared;
}
