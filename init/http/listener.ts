// The read-only HTTP listener, off unless `settings.http.listen` is set: what Prometheus scrapes and
// what Kubernetes or Docker probe without starting a client process each time.
//
//   GET /metrics   Prometheus exposition format (metrics.ts)
//   GET /healthz   200 "ok" whenever the init's event loop answers (a liveness probe)
//   GET /readyz    200 when `starter-init ready` holds, else 503; the body is its JSON
//   GET /status    the JSON of `starter-init status --json`
// HEAD is answered like GET without the body; any other method on these paths is 405 (with Allow),
// any other path 404. Nothing here changes the supervisor: control stays on the control socket.
//
// The supervisor must not notice a client: connections are capped, a request's headers and the whole
// request must arrive within a bound, idle keep-alive connections are closed, a connection serves a
// bounded number of requests, a client that does not read its answers is dropped, and a burst of
// /metrics or /status requests shares one computation (pipelined requests all arrive in one tick: each
// computed on its own, a thousand of them held the loop for over a second). A port alone binds
// 127.0.0.1 (config/values.ts).
//
// Registered with the supervisor (attachToSupervisor) when this module is imported; a reload that
// changes the address moves the listener (the new address is bound before the old one is closed).

import http from "node:http";
import { performance } from "node:perf_hooks";
import { controlConnections } from "../control/server";
import { readiness, statusResult } from "../control/commands";
import type { HttpSettings } from "../core/types";
import type { Logger } from "../log/logger";
import { reaper } from "../process/reaper";
import { attachToSupervisor, type RunningSupervisor } from "../runtime/supervisor";
import type { SupervisorMetrics } from "./metrics";

const HTTP_LIMITS = {
  /** Connections at once; more are closed as they arrive. */
  maxConnections: 256,
  /** A request's headers must be complete within this (slow clients, slowloris). */
  headersTimeoutMs: 10_000,
  /** The whole request must be received within this. */
  requestTimeoutMs: 10_000,
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: 5_000,
  /** A connection with no traffic at all is closed after this (a client that never reads, too). */
  idleTimeoutMs: 30_000,
  /** Requests on one connection; past it the connection closes, and requests already pipelined get 503. */
  maxRequestsPerSocket: 32,
  /** Answers queued for a client that does not read them; past this it is dropped. */
  maxBufferedBytes: 1024 * 1024,
  /**
   * /metrics and /status are computed at most once in this window and the answer shared: a burst of
   * requests (many clients, or one pipelining many) costs the loop one computation, not one each.
   */
  reuseWindowMs: 250,
} as const;

const ALLOWED_METHODS = "GET, HEAD";

type Answer = { status: number; type: string; body: string; headers?: Record<string, string> };
type Route = () => Answer | Promise<Answer>;

/** A route whose answer is reused for requests within HTTP_LIMITS.reuseWindowMs of its computation. */
function shared(route: Route): Route {
  let last: { at: number; answer: Promise<Answer> } | null = null;
  return () => {
    const now = performance.now();
    if (last === null || now - last.at >= HTTP_LIMITS.reuseWindowMs) {
      const answer = new Promise<Answer>((resolve) => resolve(route()));
      last = { at: now, answer };
      // A failed computation is not kept for the next requests.
      answer.catch(() => {
        if (last?.answer === answer) last = null;
      });
    }
    return last.answer;
  };
}

/** Orphans reaped since start: the one place the metrics read the reaper's count. */
function orphansReaped(): number {
  return reaper.orphansReaped;
}

function describeAddress(listen: HttpSettings["listen"]): string {
  return listen.host.includes(":") ? `[${listen.host}]:${listen.port}` : `${listen.host}:${listen.port}`;
}

function json(status: number, value: unknown): Answer {
  return { status, type: "application/json; charset=utf-8", body: `${JSON.stringify(value, null, 2)}\n` };
}

class HttpListener {
  private server: http.Server | null = null;
  private bound: string | null = null;
  private metrics: SupervisorMetrics | null = null;
  private readonly routes: Record<string, Route>;

  constructor(
    private readonly running: RunningSupervisor,
    private readonly log: Logger,
  ) {
    const socketPath = () => running.config().settings.controlSocket;
    this.routes = {
      "/metrics": shared(async () => {
        const metrics = await this.loadMetrics();
        return { status: 200, type: metrics.contentType, body: await metrics.text() };
      }),
      "/healthz": () => ({ status: 200, type: "text/plain; charset=utf-8", body: "ok\n" }),
      "/readyz": () => {
        const result = readiness(running);
        return json(result.ready ? 200 : 503, result);
      },
      "/status": shared(() => json(200, statusResult(running, socketPath()))),
    };
  }

  /** Listens where the settings say (or stops listening when they say nothing). Never throws. */
  async apply(settings: HttpSettings | undefined): Promise<void> {
    const wanted = settings ? describeAddress(settings.listen) : null;
    if (wanted === this.bound) return;
    let next: http.Server | null = null;
    if (settings) {
      // The metrics start before the first request, so that the boot's times to ready are recorded.
      await this.loadMetrics();
      try {
        next = await this.listen(settings.listen);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        this.log.error({ address: wanted, code }, `HTTP listener: cannot listen on ${wanted} (${code ?? (err as Error).message})`);
        return;
      }
    }
    this.close();
    this.server = next;
    this.bound = wanted;
    if (wanted) this.log.info({ address: wanted }, `HTTP listener on http://${wanted} (/metrics, /healthz, /readyz, /status)`);
  }

  close(): void {
    if (!this.server) return;
    this.server.close();
    this.server.closeAllConnections();
    this.server = null;
    this.bound = null;
  }

  private async loadMetrics(): Promise<SupervisorMetrics> {
    if (!this.metrics) {
      // Loaded on first use: prom-client is not evaluated in an init without a listener.
      const { SupervisorMetrics } = await import("./metrics");
      this.metrics ??= new SupervisorMetrics({ running: this.running, orphansReaped, controlConnections }, () => this.running.config().settings.controlSocket);
    }
    return this.metrics;
  }

  private listen(listen: HttpSettings["listen"]): Promise<http.Server> {
    const server = http.createServer({
      headersTimeout: HTTP_LIMITS.headersTimeoutMs,
      requestTimeout: HTTP_LIMITS.requestTimeoutMs,
      keepAliveTimeout: HTTP_LIMITS.keepAliveTimeoutMs,
      connectionsCheckingInterval: 1000,
    });
    server.maxConnections = HTTP_LIMITS.maxConnections;
    server.maxRequestsPerSocket = HTTP_LIMITS.maxRequestsPerSocket;
    server.setTimeout(HTTP_LIMITS.idleTimeoutMs);
    server.on("request", (request: http.IncomingMessage, response: http.ServerResponse) => this.answer(request, response));
    server.on("clientError", (_err, socket) => socket.destroy());
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host: listen.host, port: listen.port }, () => {
        server.off("error", reject);
        server.on("error", (err) => this.log.error({ err }, "HTTP listener error"));
        resolve(server);
      });
    });
  }

  private answer(request: http.IncomingMessage, response: http.ServerResponse): void {
    const path = (request.url ?? "/").split("?")[0];
    const route = Object.hasOwn(this.routes, path) ? this.routes[path] : undefined;
    const head = request.method === "HEAD";
    if (request.socket.writableLength > HTTP_LIMITS.maxBufferedBytes) {
      this.log.debug("HTTP listener: a client does not read its answers; dropped");
      request.socket.destroy();
      return;
    }
    const reply = (answer: Answer) => {
      if (response.headersSent || response.destroyed) return;
      const body = Buffer.from(answer.body);
      response.writeHead(answer.status, { "Content-Type": answer.type, "Content-Length": body.length, "Cache-Control": "no-store", ...answer.headers });
      response.end(head ? undefined : body);
    };
    if (!route) {
      reply({ status: 404, type: "text/plain; charset=utf-8", body: "not found; the paths are /metrics, /healthz, /readyz and /status\n" });
      return;
    }
    if (request.method !== "GET" && !head) {
      reply({ status: 405, type: "text/plain; charset=utf-8", body: "method not allowed: this listener is read-only\n", headers: { Allow: ALLOWED_METHODS } });
      return;
    }
    new Promise<Answer>((resolve) => resolve(route())).then(reply).catch((err: unknown) => {
      this.log.error({ err, path }, "HTTP listener: a request failed");
      reply({ status: 500, type: "text/plain; charset=utf-8", body: "internal error\n" });
    });
  }
}

attachToSupervisor(async (running, log) => {
  const listener = new HttpListener(running, log);
  await listener.apply(running.config().settings.http);
  running.engine.onEvent((event) => {
    if (event.type !== "config-reloaded" || !event.settings) return;
    listener.apply(event.settings.http).catch((err: unknown) => log.error({ err }, "HTTP listener: applying the reloaded settings failed"));
  });
});
