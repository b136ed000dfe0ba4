// Text for a person: durations, tables, colours (only when asked or on a TTY without NO_COLOR).

import type { LastExit, ServerStatus } from "../control/protocol";

export interface Style {
  green(text: string): string;
  red(text: string): string;
  yellow(text: string): string;
  dim(text: string): string;
  bold(text: string): string;
}

const plain: Style = { green: (t) => t, red: (t) => t, yellow: (t) => t, dim: (t) => t, bold: (t) => t };

function sgr(code: string): (text: string) => string {
  return (text) => `\x1b[${code}m${text}\x1b[0m`;
}

const coloured: Style = { green: sgr("32"), red: sgr("31"), yellow: sgr("33"), dim: sgr("2"), bold: sgr("1") };

export function styleFor(color: boolean | null, stream: NodeJS.WriteStream = process.stdout, env: NodeJS.ProcessEnv = process.env): Style {
  const on = color ?? (stream.isTTY === true && !env.NO_COLOR && env.TERM !== "dumb");
  return on ? coloured : plain;
}

/** "85 ms", "1.2 s", "42 s", "3m 05s", "2h 03m", "3d 04h". */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "-";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.round(s)} s`;
  const pad = (n: number) => String(n).padStart(2, "0");
  const total = Math.floor(s);
  if (total < 3600) return `${Math.floor(total / 60)}m ${pad(total % 60)}s`;
  if (total < 86400) return `${Math.floor(total / 3600)}h ${pad(Math.floor((total % 3600) / 60))}m`;
  return `${Math.floor(total / 86400)}d ${pad(Math.floor((total % 86400) / 3600))}h`;
}

/** "exited with code 1", "killed by SIGKILL", "exec failed: ENOENT", with the reason when it adds to it. */
export function describeLastExit(exit: LastExit | null): string {
  if (!exit) return "-";
  let how: string;
  if (exit.errno !== null) how = `exec failed: ${exit.errno}`;
  else if (exit.signal !== null) how = `killed by ${exit.signal}`;
  else if (exit.code !== null) how = `exited ${exit.code}`;
  else how = exit.reason;
  const why = exit.reason === "exited" || exit.reason === "killed-by-signal" || exit.reason === "exec-failed" ? "" : ` (${exit.reason})`;
  return `${how}${why}, ${duration(exit.agoMs)} ago`;
}

export function stateWord(server: Pick<ServerStatus, "state" | "pin"> & Partial<Pick<ServerStatus, "hook" | "hookPid">>, style: Style): string {
  const hook = server.hook ? `${server.hook === "pre-start" ? "preStart" : "postStop"}${server.hookPid ? ` pid ${server.hookPid}` : ""}` : null;
  const notes = [hook, server.pin ? `pinned ${server.pin}` : null].filter((note) => note !== null);
  const text = notes.length ? `${server.state} (${notes.join(", ")})` : server.state;
  switch (server.state) {
    case "ready":
    case "listening":
      return style.green(text);
    case "failed":
      return style.red(text);
    case "starting":
    case "stopping":
    case "backoff":
    case "unresponsive":
      return style.yellow(text);
    default:
      return text;
  }
}

const ANSI = /\x1b\[[0-9;]*m/g;

/** Characters a terminal shows: colour codes do not count. */
export function visibleLength(text: string): number {
  return [...text.replace(ANSI, "")].length;
}

/** Columns padded to their widest cell; the last column is not padded. */
export function table(header: string[], rows: string[][], style: Style): string {
  const widths = header.map((title, column) => Math.max(visibleLength(title), ...rows.map((row) => visibleLength(row[column] ?? ""))));
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell + " ".repeat(widths[column] - visibleLength(cell))))
      .join("  ")
      .trimEnd();
  return [style.bold(line(header)), ...rows.map(line)].join("\n");
}

export function statusTable(servers: ServerStatus[], style: Style): string {
  // Memory, CPU time and processes come from the servers' cgroups: the columns are there when one has them.
  const cgroups = servers.some((s) => s.resources);
  const rows = servers.map((s) => [
    s.name,
    stateWord(s, style),
    s.starter,
    s.pid !== null ? String(s.pid) : s.instances?.length ? `${s.instances.length} inst.` : "-",
    String(s.level),
    duration(s.uptimeMs),
    String(s.restarts),
    duration(s.timeToReadyMs),
    describePing(s.ping),
    ...(cgroups ? describeResources(s.resources ?? null) : []),
    describeLastExit(s.lastExit),
  ]);
  const cgroupColumns = cgroups ? ["MEM", "CPU", "PROCS"] : [];
  return table(["SERVER", "STATE", "STARTER", "PID", "LEVEL", "UPTIME", "RESTARTS", "READY IN", "PING", ...cgroupColumns, "LAST EXIT"], rows, style);
}

/** "12.3 MiB" (or "12.3/256 MiB" under a memory.max), "1.25 s" of CPU, the process count. */
export function describeResources(resources: ServerStatus["resources"]): string[] {
  if (!resources) return ["-", "-", "-"];
  const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
  const limit = resources.memoryMax !== null && /^\d+$/.test(resources.memoryMax) ? `/${Math.round(Number(resources.memoryMax) / 1024 / 1024)}` : "";
  const memory = resources.memoryBytes === null ? "-" : `${mib(resources.memoryBytes)}${limit} MiB`;
  const cpu = resources.cpuSeconds === null ? "-" : `${resources.cpuSeconds.toFixed(2)} s`;
  return [memory, cpu, String(resources.processes)];
}

/** The sockets the init holds for the servers (socket activation): each with its fd, queue and activations. */
export function socketsTable(servers: ServerStatus[], style: Style): string | null {
  const rows = servers.flatMap((s) =>
    (s.sockets ?? []).map((socket) => [
      s.name,
      String(socket.fd),
      socket.listen,
      socket.name,
      socket.queued === null ? "-" : socket.backlog === null ? `${socket.queued} B` : `${socket.queued}/${socket.backlog}`,
      String(socket.activations),
      [s.activation === "eager" ? null : s.activation, socket.watched ? "watched" : null].filter((word) => word !== null).join(", ") || "-",
    ]),
  );
  if (rows.length === 0) return null;
  return table(["SERVER", "FD", "LISTEN", "NAME", "QUEUED", "ACTIVATIONS", "MODE"], rows, style);
}

/** The last ping's round trip ("0.42 ms"), or how many failed in a row ("2 failed"); "-" without a check. */
export function describePing(ping: ServerStatus["ping"]): string {
  if (!ping) return "-";
  if (ping.failures > 0) return `${ping.failures} failed`;
  if (ping.lastRttMs === null) return "…";
  return ping.lastRttMs < 10 ? `${ping.lastRttMs.toFixed(2)} ms` : duration(ping.lastRttMs);
}
