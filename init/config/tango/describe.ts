// The `tango` source's report for a person (`plan --source tango`).

import type { TangoReport } from "./compose";

export function describeTangoReport(report: TangoReport): string[] {
  const lines = [`tango source: host ${report.host}, ${report.database}, Starter device ${report.starterDevice}`];
  const width = Math.max(0, ...report.servers.map((server) => server.name.length));
  if (report.servers.length === 0) lines.push("  no server of this host in the database (a server is listed once it has run on the host)");
  for (const server of report.servers) {
    const from = `mode ${server.mode.trim() || "-"}, level ${server.level.trim() || "-"}`;
    const here = server.skipped ? "left out" : server.startLevel > 0 ? `starts at level ${server.startLevel}` : "not started";
    lines.push(`  ${server.name.padEnd(width)}  ${from} → ${here}${server.note ? ` (${server.note})` : ""}`);
    const pad = " ".repeat(width + 4);
    if (server.args) lines.push(`${pad}arguments from property ${server.args.property}: ${server.args.values.map((value) => JSON.stringify(value)).join(" ")}`);
    if (server.env) lines.push(`${pad}environment from property ${server.env.property}: ${server.env.values.map((value) => JSON.stringify(value)).join(" ")}`);
  }
  const applied = Object.entries(report.applied);
  if (applied.length) lines.push(`  Starter properties applied: ${applied.map(([name, values]) => `${name}=${values.join(",")}`).join(", ")}`);
  if (report.shadowed.length) lines.push(`  Starter properties the config file overrides: ${report.shadowed.join(", ")}`);
  for (const { name, why } of report.ignored) lines.push(`  property ${name} ignored: ${why}`);
  for (const warning of report.warnings) lines.push(`  warning: ${warning}`);
  return lines;
}
