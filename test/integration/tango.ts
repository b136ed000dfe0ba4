// Talking to real Tango device servers as a client would: Debian's python3 with PyTango.

import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

export const PYTHON = "/usr/bin/python3";
export const TANGO_TEST = "/usr/lib/tango/TangoTest";

/** The no-database URL of TangoTest device n on a port. */
export function deviceUrl(port: number, n: number, host = "127.0.0.1"): string {
  return `tango://${host}:${port}/sys/tg_test/${n}#dbase=no`;
}

const PING_SCRIPT = `
import json, sys, tango
out = {}
for url in sys.argv[1:]:
    try:
        proxy = tango.DeviceProxy(url)
        proxy.set_timeout_millis(3000)
        out[url] = {"ok": True, "us": proxy.ping(), "state": str(proxy.state())}
    except Exception as e:
        out[url] = {"ok": False, "error": " ".join(str(e).split())[:300] or type(e).__name__}
print(json.dumps(out))
`;

export interface PingResult {
  ok: boolean;
  us?: number;
  state?: string;
  error?: string;
}

/** Pings each device once (no retry) and reports per URL. */
export function ping(urls: string[]): Promise<Record<string, PingResult>> {
  return new Promise((resolve, reject) => {
    execFile(PYTHON, ["-c", PING_SCRIPT, ...urls], { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`ping failed: ${err.message}\n${stderr}`));
      resolve(JSON.parse(stdout) as Record<string, PingResult>);
    });
  });
}

/** Writes a config of n TangoTest servers spread over levels (level of server i: levels[i]). */
export function tangoConfig(options: { file: string; basePort: number; levels: number[]; socket: string; extraSettings?: string[]; serverExtra?: string[] }): {
  urls: string[];
  names: string[];
} {
  const lines = [
    "settings:",
    `  searchPath: [${path.dirname(TANGO_TEST)}]`,
    `  controlSocket: ${options.socket}`,
    ...(options.extraSettings ?? []).map((line) => `  ${line}`),
    "  defaults:",
    "    stopTimeout: 5s",
    "    log: {console: false}",
    "servers:",
  ];
  const urls: string[] = [];
  const names: string[] = [];
  options.levels.forEach((level, index) => {
    const n = index + 1;
    const port = options.basePort + n;
    const name = `TangoTest/t${String(n).padStart(2, "0")}`;
    names.push(name);
    urls.push(deviceUrl(port, n));
    lines.push(`  - name: ${name}`, `    level: ${level}`, `    args: -nodb -dlist sys/tg_test/${n} -ORBendPoint giop:tcp:127.0.0.1:${port}`);
    for (const extra of options.serverExtra ?? []) lines.push(`    ${extra}`);
  });
  fs.writeFileSync(options.file, `${lines.join("\n")}\n`);
  return { urls, names };
}

/** Pids of live processes whose command line contains `needle` (excluding zombies). */
export function pidsMatching(needle: string): number[] {
  const found: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").replace(/\0/g, " ");
      if (cmdline.includes(needle)) {
        const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
        if (stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z") found.push(Number(entry));
      }
    } catch {
      // Gone while we looked.
    }
  }
  return found;
}
