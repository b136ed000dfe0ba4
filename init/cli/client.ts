// Runs a client command: connects to the init's control socket, sends the request, prints the
// answer for a person (or as JSON), and returns the exit code (exit-codes.ts).

import fs from "node:fs";
import { parse as parseYaml } from "yaml";
import { ClientError, ControlClient, RemoteError, withClient } from "../control/client";
import {
  DEFAULT_SOCKET,
  type ActionResult,
  type CommandInput,
  type CommandName,
  type LogLineEvent,
  type LogsResult,
  type Outcome,
  type ReadyResult,
  type ReloadResult,
  type HelloResult,
  type ReexecResult,
  type ShutdownResult,
  type StatusResult,
  type TimelineResult,
} from "../control/protocol";
import { DEFAULT_CONFIG } from "./args";
import type { ClientInvocation, ClientRequest } from "./commands";
import { EXIT } from "./exit-codes";
import { duration, socketsTable, statusTable, styleFor, visibleLength, type Style } from "./format";
import { plotSvg } from "./plot";

/** Extra time the client gives the init beyond the wait it asked for. */
const ANSWER_MARGIN_MS = 10_000;
/** For requests that do not wait on servers. */
const QUICK_ANSWER_MS = 30_000;
/** How long a client keeps connecting again while the init turns it away as busy (too many connections). */
const BUSY_RETRY_MS = 5_000;

/** The socket: --socket / STARTER_SOCKET, else settings.controlSocket of the config file, else the default. */
export function socketPath(invocation: Pick<ClientInvocation, "socket" | "config">): string {
  if (invocation.socket) return invocation.socket;
  const file = invocation.config ?? DEFAULT_CONFIG;
  try {
    const document = parseYaml(fs.readFileSync(file, "utf8")) as { settings?: { controlSocket?: unknown } } | null;
    const fromConfig = document?.settings?.controlSocket;
    if (typeof fromConfig === "string" && fromConfig.startsWith("/")) return fromConfig;
  } catch {
    // No config here (a client outside the init's root): the default.
  }
  return DEFAULT_SOCKET;
}

class Output {
  constructor(readonly style: Style) {}

  out(text: string): void {
    process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
  }

  err(text: string): void {
    process.stderr.write(`starter-init: ${text}\n`);
  }

  json(value: unknown): void {
    this.out(JSON.stringify(value, null, 2));
  }
}

export async function runClient(invocation: ClientInvocation): Promise<number> {
  const style = styleFor(invocation.color);
  const io = new Output(style);
  const path = socketPath(invocation);
  const request = invocation.request;
  try {
    if (request.kind === "ready") return await ready(path, request, io);
    return await withClient(path, (client) => run(client, invocation, request, io), { until: Date.now() + BUSY_RETRY_MS });
  } catch (err) {
    return failure(err, io);
  }
}

function failure(err: unknown, io: Output): number {
  if (err instanceof RemoteError) {
    io.err(err.message);
    switch (err.code) {
      case "not-found":
        return EXIT.NOT_FOUND;
      case "permission-denied":
        return EXIT.DENIED;
      case "config":
        return EXIT.CONFIG;
      case "refused":
      case "not-a-vm":
      case "reexec-failed":
        return EXIT.FAILED;
      case "bad-request":
        return EXIT.USAGE;
      default:
        return EXIT.PROTOCOL;
    }
  }
  if (err instanceof ClientError) {
    io.err(err.message);
    switch (err.kind) {
      case "permission":
        return EXIT.DENIED;
      case "timeout":
        return EXIT.TIMEOUT;
      case "protocol":
        return EXIT.PROTOCOL;
      default:
        return EXIT.UNREACHABLE;
    }
  }
  io.err((err as Error)?.stack ?? String(err));
  return EXIT.FAILED;
}

function call<C extends CommandName>(client: ControlClient, cmd: C, args: CommandInput<C>, waitMs = 0): Promise<unknown> {
  return client.request(cmd, args, { timeoutMs: waitMs + (waitMs ? ANSWER_MARGIN_MS : QUICK_ANSWER_MS) });
}

async function run(client: ControlClient, invocation: ClientInvocation, request: Exclude<ClientRequest, { kind: "ready" }>, io: Output): Promise<number> {
  switch (request.kind) {
    case "status": {
      const result = (await call(client, "status", { servers: request.servers })) as StatusResult;
      if (request.json) io.json(result);
      else io.out(describeStatus(result, io.style));
      return EXIT.OK;
    }
    case "list": {
      const result = (await call(client, "status", {})) as StatusResult;
      const word = request.which === "running" ? "ON" : "FAULT";
      const names = result.servers.filter((s) => s.starter === word).map((s) => s.name);
      if (names.length) io.out(names.join("\n"));
      return EXIT.OK;
    }
    case "action": {
      const args = { servers: request.servers, wait: request.wait, timeoutMs: request.timeoutMs };
      const result = (await call(client, request.action, args, request.wait ? request.timeoutMs : 0)) as ActionResult;
      return report(result, request.json, io, `nothing to ${request.action}`);
    }
    case "all": {
      const args = { level: request.level, wait: request.wait, timeoutMs: request.timeoutMs };
      const result = (await call(client, request.action, args, request.wait ? request.timeoutMs : 0)) as ActionResult;
      const where = request.level === undefined ? "" : ` at level ${request.level}`;
      return report(result, request.json, io, request.action === "start-all" ? `nothing to start${where}` : `nothing to stop${where}`);
    }
    case "pin":
    case "unpin": {
      const result = (await (request.kind === "pin"
        ? call(client, "pin", { server: request.server, pin: request.pin })
        : call(client, "unpin", { server: request.server }))) as ActionResult;
      return report(result, false, io, "");
    }
    case "logs":
      return logs(client, request, io);
    case "reload": {
      const args = { dryRun: request.dryRun, wait: request.wait, timeoutMs: request.timeoutMs };
      const result = (await call(client, "reload", args, request.wait && !request.dryRun ? request.timeoutMs : 0)) as ReloadResult;
      if (request.json) io.json(result);
      else io.out(describeReload(result, io.style));
      return outcomeCode(result);
    }
    case "shutdown": {
      const result = (await call(client, "shutdown", { action: request.action })) as ShutdownResult;
      const what =
        result.action === "exit"
          ? "stopping every server, then exiting"
          : `stopping every server, then ${result.action === "restart" ? "rebooting" : result.action}`;
      io.out(`${invocation.command}: ${what}`);
      if (!request.wait) return EXIT.OK;
      if (await client.waitForClose(request.timeoutMs)) {
        io.out("the init has finished");
        return EXIT.OK;
      }
      io.err(`the init is still shutting down after ${duration(request.timeoutMs)}`);
      return EXIT.TIMEOUT;
    }
    case "reexec":
      return reexec(client, invocation, request, io);
    case "analyze": {
      const result = (await call(client, "timeline", {})) as TimelineResult;
      if (request.what === "plot") io.out(plotSvg(result, { all: request.all }));
      else if (request.json) io.json(request.all ? result : { ...result, entries: result.entries.filter((e) => e.duringBoot) });
      else io.out(describeBlame(result, request.all, io.style));
      return EXIT.OK;
    }
  }
}

function outcomeCode(result: ActionResult): number {
  if (result.timedOut) return EXIT.TIMEOUT;
  return result.outcomes.every((o) => o.ok) ? EXIT.OK : EXIT.FAILED;
}

function report(result: ActionResult, json: boolean, io: Output, nothing: string): number {
  if (json) io.json(result);
  else if (result.outcomes.length === 0) io.out(nothing);
  else io.out(describeOutcomes(result.outcomes, io.style));
  return outcomeCode(result);
}

function describeOutcomes(outcomes: Outcome[], style: Style, marks?: Map<string, string>): string {
  const width = Math.max(...outcomes.map((o) => o.name.length));
  return outcomes
    .map((o) => {
      const mark = marks?.get(o.name);
      const text = o.ok ? style.green(o.message) : o.pending ? style.yellow(o.message) : style.red(o.message);
      return `${mark ? `${mark} ` : ""}${o.name.padEnd(width)}  ${text}`;
    })
    .join("\n");
}

function describeStatus(result: StatusResult, style: Style): string {
  const init = result.init;
  const ready = result.servers.filter((s) => s.state === "ready").length;
  const listening = result.servers.filter((s) => s.state === "listening").length;
  const failed = result.servers.filter((s) => s.state === "failed").length;
  const reexec = init.reexec;
  const summary = [
    `starter-init ${init.version}, pid ${init.pid} (${init.role}), ${init.phase}, up ${duration(init.uptimeMs)}`,
    ...(reexec && reexec.generation > 0
      ? [`re-executed ${reexec.generation} time(s), last ${reexec.from} → ${reexec.to} in ${reexec.execMs} ms (output unread ${reexec.unreadMs} ms)`]
      : []),
    ...(reexec?.lastFailure ? [style.red(`last reexec failed: ${reexec.lastFailure}`)] : []),
    `${result.servers.length} server(s): ${ready} ready${listening ? `, ${listening} listening` : ""}${failed ? `, ${style.red(`${failed} failed`)}` : ""}; config ${init.config}`,
    ...(result.sources ?? []).map((source) => {
      const state = source.state === "down" ? style.red("DOWN") : source.state === "up" ? style.green("up") : style.yellow(source.state);
      return `source ${source.name} (host ${source.host}, ${source.database}): ${state}, ${source.message}`;
    }),
  ];
  if (result.servers.length === 0) return summary.join("\n");
  const sockets = socketsTable(result.servers, style);
  return `${summary.join("\n")}\n\n${statusTable(result.servers, style)}${sockets ? `\n\n${sockets}` : ""}`;
}

function describeReload(result: ReloadResult, style: Style): string {
  const counts = `${result.added.length} added, ${result.removed.length} removed, ${result.changed.length} changed, ${result.unchanged.length} unchanged`;
  const lines = [
    `${result.dryRun ? "would reload" : "reloaded"} ${result.config}: ${counts}`,
    ...(result.notes ?? []).map((note) => `  ${style.yellow(note)}`),
  ];
  if (result.dryRun) {
    const width = Math.max(0, ...[...result.added, ...result.removed, ...result.changed].map((name) => name.length));
    for (const name of result.added) lines.push(`  + ${name.padEnd(width)}  would start it (if it starts at boot)`);
    for (const name of result.removed) lines.push(`  - ${name.padEnd(width)}  would stop it and forget it`);
    for (const name of result.changed) lines.push(`  ~ ${name.padEnd(width)}  would restart it (if it runs)`);
    return lines.join("\n");
  }
  const marks = new Map<string, string>([
    ...result.added.map((n) => [n, "+"] as [string, string]),
    ...result.removed.map((n) => [n, "-"] as [string, string]),
    ...result.changed.map((n) => [n, "~"] as [string, string]),
  ]);
  if (result.outcomes.length) lines.push(describeOutcomes(result.outcomes, style, marks).replace(/^/gm, "  "));
  return lines.join("\n");
}

function describeBlame(result: TimelineResult, all: boolean, style: Style): string {
  const entries = result.entries.filter((e) => all || e.duringBoot);
  const later = result.entries.filter((e) => !e.duringBoot).length;
  // Ready ones slowest first (what to look at), then those still starting, failed, cancelled.
  const rows = entries.map((e) => {
    const fork = e.forkAt ?? e.startAt;
    if (e.outcome === "ready") return { group: 0, sort: e.readyAt! - fork, time: duration(e.readyAt! - fork), e, note: "" };
    if (e.outcome === "starting") return { group: 1, sort: 0, time: style.yellow("starting"), e, note: `for ${duration(result.nowMs - fork)}` };
    if (e.outcome === "failed") return { group: 2, sort: 0, time: style.red("failed"), e, note: e.reason ?? "" };
    return { group: 3, sort: 0, time: "cancelled", e, note: e.reason ?? "" };
  });
  rows.sort((a, b) => a.group - b.group || b.sort - a.sort || a.e.name.localeCompare(b.e.name));
  const timeWidth = Math.max(0, ...rows.map((r) => visibleLength(r.time)));
  const nameWidth = Math.max(0, ...rows.map((r) => r.e.name.length));
  const lines = rows.map((r) => {
    const time = " ".repeat(timeWidth - visibleLength(r.time)) + r.time;
    const note = [r.e.duringBoot ? "" : "after the boot", r.note].filter(Boolean).join("; ");
    return `${time}  ${r.e.name.padEnd(nameWidth)}  level ${r.e.level}${note ? `  ${note}` : ""}`.trimEnd();
  });
  const complete = result.bootCompleteMs === null ? "the boot is not complete" : `boot complete after ${duration(result.bootCompleteMs)}`;
  const counts = [`${entries.filter((e) => e.duringBoot).length} server(s) started during the boot`];
  if (later) counts.push(`${later} after it${all ? "" : " (--all shows them)"}`);
  if (result.notStarted.length) counts.push(`not started: ${result.notStarted.map((s) => s.name).join(", ")}`);
  lines.push("", `${complete}; ${counts.join(", ")}`);
  return lines.join("\n");
}

/**
 * `reexec`: asks for it, then waits for the connection to close (the exec) or for a `reexec-failed`
 * event (the init went on unchanged), and connects again until the new init answers.
 */
async function reexec(client: ControlClient, invocation: ClientInvocation, request: Extract<ClientRequest, { kind: "reexec" }>, io: Output): Promise<number> {
  const before = (await call(client, "hello", {})) as HelloResult;
  let failed: (message: string) => void = () => {};
  const failure = new Promise<string>((resolve) => (failed = resolve));
  const onEvent = (event: string, data: unknown) => {
    if (event === "reexec-failed") failed((data as { message: string }).message);
  };
  const started = Date.now();
  const result = (await client.request(
    "reexec",
    { ...(request.binary ? { binary: request.binary } : {}), force: request.force },
    { timeoutMs: 30_000, onEvent },
  )) as ReexecResult;
  if (!request.json) io.out(`re-executing ${result.binary}: ${result.from} → ${result.to}${result.downgrade ? " (a downgrade: the servers restart)" : ""}`);
  const outcome = await Promise.race([
    failure,
    client.waitForClose(request.timeoutMs).then((closed) => (closed ? null : "the init neither execed nor said why")),
  ]);
  if (outcome !== null) {
    io.err(`reexec failed, the init goes on unchanged: ${outcome}`);
    return EXIT.FAILED;
  }
  const deadline = started + request.timeoutMs;
  const path = client.path;
  for (;;) {
    let hello: HelloResult | null = null;
    try {
      hello = await withClient(path, (again) => again.request("hello", {}, { timeoutMs: 5000 }) as Promise<HelloResult>, {
        until: deadline,
        retryUnreachable: true,
      });
    } catch (err) {
      if (Date.now() >= deadline) throw err;
    }
    const generation = hello?.reexec?.generation ?? 0;
    if (result.downgrade && hello && hello.pid === before.pid && hello.version === result.to && !hello.reexec) {
      if (request.json) io.json({ ...result, hello });
      else io.out(`${invocation.command}: re-executed into ${hello.version} (pid ${hello.pid}), a downgrade: it stopped the servers and booted afresh`);
      return EXIT.OK;
    }
    if (hello && hello.pid === before.pid && generation > (before.reexec?.generation ?? 0)) {
      if (request.json) io.json({ ...result, hello });
      else
        io.out(
          `${invocation.command}: re-executed ${hello.reexec!.from} → ${hello.version} in ${hello.reexec!.execMs} ms (pid ${hello.pid}); ` +
            `servers' output unread for ${hello.reexec!.unreadMs} ms`,
        );
      return EXIT.OK;
    }
    if (hello?.reexec?.lastFailure && hello.reexec.generation === (before.reexec?.generation ?? 0)) {
      io.err(`reexec failed, the init goes on unchanged: ${hello.reexec.lastFailure}`);
      return EXIT.FAILED;
    }
    if (Date.now() >= deadline) {
      io.err(`the init did not come back from the reexec within ${duration(request.timeoutMs)}`);
      return EXIT.TIMEOUT;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** logs --follow requests already answered once: after a reconnect (a reexec) only new lines follow. */
const followedBefore = new WeakSet<object>();

async function logs(client: ControlClient, request: Extract<ClientRequest, { kind: "logs" }>, io: Output): Promise<number> {
  let closed: () => void = () => {};
  const done = new Promise<void>((resolve) => (closed = resolve));
  const onEvent = (event: string, data: unknown) => {
    if (event === "line") io.out((data as LogLineEvent).line);
  };
  const lines = followedBefore.has(request) ? 0 : request.lines;
  followedBefore.add(request);
  const result = (await client.request(
    "logs",
    { server: request.server, lines, follow: request.follow },
    { timeoutMs: QUICK_ANSWER_MS, onEvent },
  )) as LogsResult;
  if (result.lines.length) io.out(result.lines.join("\n"));
  if (!request.follow) return EXIT.OK;
  let stopped = false;
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const)
    process.once(signal, () => {
      stopped = true;
      closed();
    });
  void client.waitForClose(2 ** 31 - 1).then(() => closed());
  await done;
  // The init re-executes itself: follow on from the new one (the lines already shown are not shown again).
  if (!stopped && client.closedForReexec) throw new RemoteError({ code: "closing", message: "the init re-executes itself" });
  return EXIT.OK;
}

/** `ready`: one request, or (with --wait) retried until the init answers and says ready, or time is up. */
async function ready(path: string, request: Extract<ClientRequest, { kind: "ready" }>, io: Output): Promise<number> {
  const deadline = Date.now() + request.waitMs;
  const ask = async (client: ControlClient) => {
    const left = Math.max(0, deadline - Date.now());
    const result = (await client.request("ready", { waitMs: left }, { timeoutMs: left + ANSWER_MARGIN_MS })) as ReadyResult;
    if (request.json) io.json(result);
    else if (result.ready) io.out("ready");
    else {
      const waiting = result.waiting.map((w) => `${w.name} (${w.state})`).join(", ");
      io.out(`not ready: ${result.phase === "running" ? waiting || "?" : `the init is ${result.phase}${waiting ? `; waiting for ${waiting}` : ""}`}`);
    }
    return result.ready ? EXIT.OK : EXIT.FAILED;
  };
  return withClient(path, ask, { until: deadline, retryUnreachable: true });
}
