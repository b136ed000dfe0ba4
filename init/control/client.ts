// The client side of the control protocol (protocol.ts): connect to the init's socket, send
// requests, receive answers and streamed events. Used by the CLI; loads neither the addon nor the
// config machinery, so a client starts as fast as the binary does.

import net from "node:net";
import {
  encode,
  LineReader,
  PROTOCOL_VERSION,
  type CommandInput,
  type CommandName,
  type Message,
  type ProtocolError,
  type RequestId,
  type Response,
} from "./protocol";

/** Why a client could not get an answer (as opposed to an error answer from the init). */
export type ClientFailure = "unreachable" | "permission" | "protocol" | "timeout" | "closed";

export class ClientError extends Error {
  constructor(
    readonly kind: ClientFailure,
    message: string,
  ) {
    super(message);
    this.name = "ClientError";
  }
}

/** An error answer from the init. */
export class RemoteError extends Error {
  readonly code: ProtocolError["code"];
  readonly details: unknown;

  constructor(error: ProtocolError) {
    super(error.message);
    this.name = "RemoteError";
    this.code = error.code;
    this.details = error.details;
  }
}

/** Answers are far larger than requests (a status of many servers, a long log tail) but still bounded. */
const MAX_ANSWER_BYTES = 256 * 1024 * 1024;

interface Pending {
  resolve: (result: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout | null;
}

export interface RequestOptions {
  /** Rejects with a ClientError("timeout") when no answer came in time; none by default. */
  timeoutMs?: number;
  /** Events streamed for this request (after or before its answer). */
  onEvent?: (event: string, data: unknown) => void;
}

export class ControlClient {
  private nextId = 1;
  private readonly pending = new Map<RequestId, Pending>();
  private readonly streams = new Map<RequestId, (event: string, data: unknown) => void>();
  private readonly reader = new LineReader(MAX_ANSWER_BYTES);
  private closed = false;
  private closeWaiters: (() => void)[] = [];
  /** An error answer not tied to a request (a refused peer): every request fails with it. */
  private refusal: RemoteError | null = null;

  private constructor(
    private readonly socket: net.Socket,
    readonly path: string,
  ) {
    socket.on("data", (chunk: Buffer) => this.receive(chunk));
    socket.on("error", () => {});
    socket.on("close", () => {
      this.closed = true;
      this.rejectAll(this.refusal ?? new ClientError("closed", `the init closed the connection on ${path} before answering`));
      for (const waiter of this.closeWaiters.splice(0)) waiter();
    });
  }

  static connect(path: string, timeoutMs = 5000): Promise<ControlClient> {
    const deadline = Date.now() + timeoutMs;
    return new Promise((resolve, reject) => {
      const attempt = () => {
        const socket = net.createConnection(path);
        const timer = setTimeout(
          () => {
            socket.destroy();
            reject(new ClientError("timeout", `no answer from ${path} within ${timeoutMs} ms`));
          },
          Math.max(0, deadline - Date.now()),
        );
        socket.once("connect", () => {
          clearTimeout(timer);
          resolve(new ControlClient(socket, path));
        });
        socket.once("error", (err: NodeJS.ErrnoException) => {
          clearTimeout(timer);
          // A Unix socket whose accept queue is full refuses a non-blocking connect with EAGAIN
          // (many clients at once, a busy init): that is "try again", not "no init".
          if (err.code === "EAGAIN" && Date.now() + CONNECT_RETRY_MS < deadline) setTimeout(attempt, CONNECT_RETRY_MS);
          else reject(connectError(path, err));
        });
      };
      attempt();
    });
  }

  /** The init closed this connection because it re-executes itself: connecting again in a moment works. */
  get closedForReexec(): boolean {
    return this.refusal?.code === "closing";
  }

  /** The init turned this connection away because it has too many: trying again later may work. */
  get refusedAsBusy(): boolean {
    return this.refusal?.code === "busy";
  }

  request<C extends CommandName>(cmd: C, args: CommandInput<C>, options: RequestOptions = {}): Promise<unknown> {
    if (this.refusal) return Promise.reject(this.refusal);
    if (this.closed) return Promise.reject(new ClientError("closed", `the connection to ${this.path} is closed`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer =
        options.timeoutMs === undefined
          ? null
          : setTimeout(() => {
              this.pending.delete(id);
              reject(new ClientError("timeout", `no answer to ${cmd} within ${Math.round(options.timeoutMs! / 100) / 10} s`));
            }, options.timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      if (options.onEvent) this.streams.set(id, options.onEvent);
      this.socket.write(encode({ v: PROTOCOL_VERSION, id, cmd, args }));
    });
  }

  /** Resolves true when the init closes the connection, false after timeoutMs. */
  waitForClose(timeoutMs: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.closeWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }

  private receive(chunk: Buffer): void {
    for (const line of this.reader.push(chunk)) this.dispatch(line);
    if (this.reader.overflowed) this.abort(new ClientError("protocol", "an answer from the init is too large"));
  }

  private dispatch(line: string): void {
    let message: Message;
    try {
      message = JSON.parse(line) as Message;
    } catch {
      return this.abort(new ClientError("protocol", "the init sent something that is not JSON"));
    }
    if ("event" in message) {
      this.streams.get(message.id)?.(message.event, message.data);
      return;
    }
    const response = message as Response;
    if (response.id === null) {
      if (!response.ok) {
        this.refusal = new RemoteError(response.error);
        this.rejectAll(this.refusal);
      }
      return;
    }
    const pending = this.pending.get(response.id);
    if (!pending) return;
    this.pending.delete(response.id);
    if (pending.timer) clearTimeout(pending.timer);
    if (response.ok) pending.resolve(response.result);
    else pending.reject(new RemoteError(response.error));
  }

  private abort(error: ClientError): void {
    this.rejectAll(error);
    this.socket.destroy();
  }

  /** Fails every request still waiting for its answer. */
  private rejectAll(error: Error): void {
    for (const [id, pending] of this.pending) {
      if (pending.timer) clearTimeout(pending.timer);
      pending.reject(error);
      this.pending.delete(id);
    }
  }
}

const CONNECT_RETRY_MS = 25;
/** How long a client keeps connecting again after the init closed it for a reexec. */
export const REEXEC_RETRY_MS = 30_000;
/** The pause before connecting again to an init that was busy or not there yet. */
const RETRY_PAUSE_MS = 100;

export interface RetryOptions {
  /** Epoch ms after which a failure is final. */
  until: number;
  /** Also connect again while no init answers on the socket (it may be starting). */
  retryUnreachable?: boolean;
}

/**
 * Connects, runs `use` with the client, and closes it. While the init turns the connection away as
 * busy (it does so before taking any request, so connecting again is safe) — and, on request, while
 * no init answers — it connects again, until `until`.
 */
export async function withClient<T>(path: string, use: (client: ControlClient) => Promise<T>, options: RetryOptions): Promise<T> {
  let until = options.until;
  for (;;) {
    let client: ControlClient | null = null;
    try {
      client = await ControlClient.connect(path);
      return await use(client);
    } catch (err) {
      // An init that re-executes itself closes every connection and is back within moments.
      if (client?.closedForReexec) until = Math.max(until, Date.now() + REEXEC_RETRY_MS);
      const again = client?.refusedAsBusy || client?.closedForReexec || (options.retryUnreachable && err instanceof ClientError && err.kind === "unreachable");
      if (!again || Date.now() + RETRY_PAUSE_MS > until) throw err;
    } finally {
      client?.close();
    }
    await new Promise((resolve) => setTimeout(resolve, RETRY_PAUSE_MS));
  }
}

function connectError(path: string, err: NodeJS.ErrnoException): ClientError {
  switch (err.code) {
    case "ENOENT":
      return new ClientError(
        "unreachable",
        `no init answers on ${path}: there is no such socket (is starter-init running? --socket PATH or STARTER_SOCKET names another)`,
      );
    case "ECONNREFUSED":
      return new ClientError("unreachable", `no init answers on ${path}: connection refused (the init that made it is gone)`);
    case "EACCES":
    case "EPERM":
      return new ClientError("permission", `permission denied on ${path}: only root may use the control socket`);
    case "ENOTSOCK":
      return new ClientError("unreachable", `${path} is not a socket`);
    default:
      return new ClientError("unreachable", `cannot connect to ${path}: ${err.code ?? err.message}`);
  }
}
