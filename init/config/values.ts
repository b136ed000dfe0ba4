// Parsers for the small value languages of the configuration: durations, byte sizes, signals, umasks,
// command lines and readiness shorthands. Each returns the parsed value, or a string saying what was
// expected; the schema turns that string into an error at the field.

import { constants } from "node:os";
import type { ReadinessProbe } from "../core/types";

/** A parse result: the value, or what was expected instead. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; expected: string };

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const expected = <T>(what: string): Parsed<T> => ({ ok: false, expected: what });

const durationUnitsMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export const durationExpectation = 'a duration: milliseconds as a number, or a string like "500ms", "2s", "1m" or "1m30s"';

/**
 * A number of milliseconds, or "500ms", "2s", "1.5s", "1m", "1h", "1m30s" → milliseconds (rounded).
 * A string of digits alone has no unit and is refused rather than guessed.
 */
export function parseDuration(value: string | number): Parsed<number> {
  if (typeof value === "number") return Number.isFinite(value) && value >= 0 ? ok(Math.round(value)) : expected(durationExpectation);
  const compact = value.trim();
  if (!/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(compact)) return expected(durationExpectation);
  let total = 0;
  for (const [, amount, unit] of compact.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) total += Number(amount) * durationUnitsMs[unit];
  return ok(Math.round(total));
}

const sizeUnits: Record<string, number> = {
  B: 1,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  kB: 1000,
  KB: 1000,
  MB: 1000 ** 2,
  GB: 1000 ** 3,
};

export const byteSizeExpectation = 'a size: bytes as a number, or a string like "512KiB", "10MiB" or "1GB"';

/** A number of bytes, or "10MiB" → 10485760; binary (KiB, MiB, GiB) and decimal (kB, MB, GB) units. */
export function parseByteSize(value: string | number): Parsed<number> {
  if (typeof value === "number") return Number.isInteger(value) && value > 0 ? ok(value) : expected(byteSizeExpectation);
  const match = /^(\d+(?:\.\d+)?)\s*([A-Za-z]+)$/.exec(value.trim());
  const unit = match ? sizeUnits[match[2]] : undefined;
  const bytes = match && unit !== undefined ? Math.round(Number(match[1]) * unit) : 0;
  return bytes > 0 ? ok(bytes) : expected(byteSizeExpectation);
}

/** Linux signal numbers go up to SIGRTMAX = 64. */
const highestSignal = 64;

export const signalExpectation = `a signal name like "TERM" or "SIGTERM", or a number between 1 and ${highestSignal}`;

/** "SIGTERM", "TERM", "term" or 15 → 15. Names come from os.constants.signals, so only real signals pass. */
export function parseSignal(value: string | number): Parsed<number> {
  if (typeof value === "number") {
    return Number.isInteger(value) && value >= 1 && value <= highestSignal ? ok(value) : expected(signalExpectation);
  }
  const upper = value.trim().toUpperCase();
  const name = (upper.startsWith("SIG") ? upper : `SIG${upper}`) as keyof typeof constants.signals;
  const number = Object.hasOwn(constants.signals, name) ? constants.signals[name] : undefined;
  return number === undefined ? expected(signalExpectation) : ok(number);
}

export const umaskExpectation = 'a umask: an octal string like "022" or "0027", or a number from 0 to 0o777';

/** "022", "0o027" or a number (YAML reads an unquoted 022 as octal here, see the loader) → the mask. */
export function parseUmask(value: string | number): Parsed<number> {
  if (typeof value === "number") {
    return Number.isInteger(value) && value >= 0 && value <= 0o777 ? ok(value) : expected(umaskExpectation);
  }
  const match = /^(?:0o)?([0-7]{1,4})$/.exec(value.trim());
  const mask = match ? parseInt(match[1], 8) : NaN;
  return mask <= 0o777 ? ok(mask) : expected(umaskExpectation);
}

/** Characters a shell would give a meaning this simple splitter does not reproduce. */
const shellSyntax = /[|&;<>()$`*?[\]{}~#]/;

/**
 * Splits a command line into words the way a POSIX shell does for simple cases: blanks separate words,
 * single quotes keep everything literally, double quotes keep everything but `\"` and `\\`, a backslash
 * outside quotes escapes the next character. Pipes, redirections, variables, globs and the like are
 * refused rather than passed on literally: for those, give a list such as ["/bin/sh", "-c", "…"].
 */
export function splitCommandLine(text: string): Parsed<string[]> {
  const refuse = (why: string) => expected<string[]>(`a simple command line (${why}); for anything more, give a list such as ["/bin/sh", "-c", "..."]`);
  const words: string[] = [];
  let word: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (char === " " || char === "\t" || char === "\n") {
      if (word !== null) words.push(word);
      word = null;
    } else if (char === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) return refuse("a single quote is not closed");
      word = (word ?? "") + text.slice(i + 1, end);
      i = end;
    } else if (char === '"') {
      let quoted = "";
      for (i++; i < text.length && text[i] !== '"'; i++) {
        if (text[i] === "\\" && (text[i + 1] === '"' || text[i + 1] === "\\")) i++;
        else if (text[i] === "$" || text[i] === "`") return refuse(`"${text[i]}" inside double quotes`);
        quoted += text[i];
      }
      if (i >= text.length) return refuse("a double quote is not closed");
      word = (word ?? "") + quoted;
    } else if (char === "\\") {
      if (i + 1 >= text.length) return refuse("it ends with a backslash");
      word = (word ?? "") + text[++i];
    } else if (shellSyntax.test(char)) {
      return refuse(`shell syntax "${char}"`);
    } else {
      word = (word ?? "") + char;
    }
  }
  if (word !== null) words.push(word);
  return words.length > 0 ? ok(words) : refuse("it is empty");
}

/** Default polling intervals of the probes that poll. */
export const probeDefaults = { tcpIntervalMs: 100, fileIntervalMs: 100, execIntervalMs: 500, execTimeoutMs: 5000, tangoIntervalMs: 200 };

export const probeShorthandExpectation =
  'a readiness probe: "none", "log:<text>", "log:/<regex>/", "notify:<fd>", "sd_notify", "tcp:[host:]port", "file:<absolute path>", "exec:<command>", "tango" or "tango:[host:]port"';

/** A log pattern written /like this/ is a regular expression; otherwise it is plain text to find in a line. */
export function logProbe(pattern: string, regex: boolean | undefined, stream: "stdout" | "stderr" | "both"): Parsed<ReadinessProbe> {
  const slashed = /^\/(.+)\/$/.exec(pattern);
  const isRegex = regex ?? slashed !== null;
  const text = isRegex && slashed ? slashed[1] : pattern;
  if (text === "") return expected("a non-empty log text to wait for");
  if (isRegex) {
    try {
      new RegExp(text);
    } catch (error) {
      return expected(`a valid regular expression (${(error as Error).message})`);
    }
  }
  return ok({ kind: "log", pattern: text, regex: isRegex, stream });
}

/** "3" → 3; fds 0-2 are the server's stdio and cannot carry notifications. */
export function parseNotifyFd(text: string | number): Parsed<number> {
  const fd = typeof text === "number" ? text : /^\d+$/.test(text.trim()) ? Number(text) : NaN;
  return Number.isInteger(fd) && fd >= 3 && fd <= 1023 ? ok(fd) : expected("a file descriptor number between 3 and 1023");
}

/** "12345", "127.0.0.1:12345" or "[::1]:12345"; the host defaults to 127.0.0.1. */
export function parseTcpAddress(text: string | number): Parsed<{ host: string; port: number }> {
  const match = /^(?:(\[[0-9A-Fa-f:.]+\]|[^\s:[\]]+):)?(\d+)$/.exec(String(text).trim());
  const port = match ? Number(match[2]) : NaN;
  if (!match || !(port >= 1 && port <= 65535)) return expected('an address "[host:]port" with a port between 1 and 65535');
  return ok({ host: match[1]?.replace(/^\[(.*)\]$/, "$1") ?? "127.0.0.1", port });
}

export const listenExpectation = 'an address "[host:]port": the host is 127.0.0.1 unless written (e.g. "0.0.0.0:9150" for every interface)';

/**
 * Where the HTTP listener binds. A port alone binds 127.0.0.1: every interface only when written so
 * (":9150", which means every interface to some programs, is refused rather than guessed).
 */
export function parseListenAddress(text: string | number): Parsed<{ host: string; port: number }> {
  const parsed = parseTcpAddress(text);
  return parsed.ok ? parsed : expected(listenExpectation);
}

export function parseProbeFile(path: string): Parsed<string> {
  return path.startsWith("/") ? ok(path) : expected("an absolute path of the file whose existence means ready");
}

/**
 * "none", "log:Ready to accept request", "notify:3", "sd_notify", "tcp:127.0.0.1:12345", "file:/run/x.ready", "exec:check --quick",
 * "tango" (the admin device through the database), "tango:127.0.0.1:12345" (at a fixed endpoint, without a database).
 */
export function parseProbeShorthand(text: string): Parsed<ReadinessProbe> {
  const trimmed = text.trim();
  if (trimmed === "none") return ok({ kind: "none" });
  if (trimmed === "sd_notify") return ok({ kind: "sd_notify" });
  if (trimmed === "tango") return ok({ kind: "tango", target: { via: "database" }, intervalMs: probeDefaults.tangoIntervalMs });
  const colon = trimmed.indexOf(":");
  const kind = colon < 0 ? trimmed : trimmed.slice(0, colon);
  const argument = colon < 0 ? "" : trimmed.slice(colon + 1);
  const within = <T>(parsed: Parsed<T>, probe: (value: T) => ReadinessProbe): Parsed<ReadinessProbe> =>
    parsed.ok ? ok(probe(parsed.value)) : expected(`${kind}: ${parsed.expected}`);
  switch (colon < 0 ? "" : kind) {
    case "log":
      // The text after "log:" is kept as written: the Tango line is "Ready to accept request".
      return within(logProbe(text.slice(text.indexOf(":") + 1), undefined, "both"), (probe) => probe);
    case "notify":
      return within(parseNotifyFd(argument), (fd) => ({ kind: "notify", fd }));
    case "tcp":
      return within(parseTcpAddress(argument), (address) => ({ kind: "tcp", ...address, intervalMs: probeDefaults.tcpIntervalMs }));
    case "file":
      return within(parseProbeFile(argument.trim()), (path) => ({ kind: "file", path, intervalMs: probeDefaults.fileIntervalMs }));
    case "tango":
      return within(parseTcpAddress(argument), (address) => ({
        kind: "tango",
        target: { via: "endpoint", ...address },
        intervalMs: probeDefaults.tangoIntervalMs,
      }));
    case "exec":
      return within(splitCommandLine(argument), (argv) => ({
        kind: "exec",
        argv,
        intervalMs: probeDefaults.execIntervalMs,
        timeoutMs: probeDefaults.execTimeoutMs,
      }));
    default:
      return expected(probeShorthandExpectation);
  }
}

/** Resource names setrlimit(2) knows, without the RLIMIT_ prefix, lower case. */
const rlimitNames = [
  "as",
  "core",
  "cpu",
  "data",
  "fsize",
  "locks",
  "memlock",
  "msgqueue",
  "nice",
  "nofile",
  "nproc",
  "rss",
  "rtprio",
  "rttime",
  "sigpending",
  "stack",
] as const;

/** "nofile", "NOFILE" or "RLIMIT_NOFILE" → "nofile". */
export function parseRlimitName(text: string): Parsed<string> {
  const name = text
    .trim()
    .toLowerCase()
    .replace(/^rlimit_/, "");
  return (rlimitNames as readonly string[]).includes(name) ? ok(name) : expected(`a resource limit name: ${rlimitNames.join(", ")} (optionally with RLIMIT_)`);
}

/** Edit distance counting a swap of two neighbours as one edit (typos like "levle"), for suggestions. */
function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      rows[i][j] = Math.min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) rows[i][j] = Math.min(rows[i][j], rows[i - 2][j - 2] + 1);
    }
  }
  return rows[a.length][b.length];
}

/** The known word closest to `word` when it is close enough to be a likely typo. */
export function closestWord(word: string, known: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  let best: { word: string; distance: number } | undefined;
  for (const candidate of known) {
    const distance = candidate.toLowerCase() === lower ? 0 : editDistance(lower, candidate.toLowerCase()) + 0.5;
    if (!best || distance < best.distance) best = { word: candidate, distance };
  }
  const tolerance = Math.max(1, Math.floor(word.length / 4)) + 0.5;
  return best && best.distance <= tolerance ? best.word : undefined;
}

// ---- cgroup v2 limits ---------------------------------------------------------------------------

/** What each cgroup file of `limits:` takes: a size, a count, a weight, or cpu.max's quota and period. */
const cgroupLimitKinds = {
  "memory.min": "size",
  "memory.low": "size",
  "memory.high": "size",
  "memory.max": "size",
  "memory.swap.max": "size",
  "pids.max": "count",
  "cpu.weight": "weight",
  "io.weight": "weight",
  "cpu.max": "quota",
} as const;

export const cgroupLimitNames = Object.keys(cgroupLimitKinds);

const limitExpectations = {
  size: `a size (bytes, or a string like "256MiB"), or "max"`,
  count: `a positive integer, or "max"`,
  weight: "an integer from 1 to 10000 (100 is the kernel's default)",
  quota: `"max", "<quota> <period>" in microseconds (like "50000 100000"), or a share of one CPU like "50%"`,
} as const;

/**
 * The value written to a cgroup file of `limits:`, keyed by the kernel's own file name: sizes in the
 * config's units become bytes, "max" stays, cpu.max also takes a share of one CPU ("150%" → 150000 100000).
 */
export function parseCgroupLimit(name: string, value: string | number): Parsed<string> {
  if (!Object.hasOwn(cgroupLimitKinds, name)) {
    const suggestion = closestWord(name, cgroupLimitNames);
    return expected(`a cgroup file: ${cgroupLimitNames.join(", ")}${suggestion ? ` (did you mean ${JSON.stringify(suggestion)}?)` : ""}`);
  }
  const kind = cgroupLimitKinds[name as keyof typeof cgroupLimitKinds];
  const text = String(value).trim();
  const fail = expected<string>(limitExpectations[kind]);
  switch (kind) {
    case "size": {
      if (text === "max") return ok(text);
      // No memory at all (memory.swap.max: 0 turns swap off) is a size here, unlike elsewhere.
      if (/^0+(\.0+)?\s*[A-Za-z]*$/.test(text)) {
        const unit = text.replace(/^[0.]+\s*/, "");
        return unit === "" || parseByteSize(`1${unit}`).ok ? ok("0") : fail;
      }
      const bytes = parseByteSize(typeof value === "number" ? value : text);
      return bytes.ok ? ok(String(bytes.value)) : fail;
    }
    case "count":
      return text === "max" || (/^\d+$/.test(text) && Number(text) > 0) ? ok(text) : fail;
    case "weight":
      return /^\d+$/.test(text) && Number(text) >= 1 && Number(text) <= 10_000 ? ok(text) : fail;
    case "quota": {
      const percent = /^(\d+(?:\.\d+)?)%$/.exec(text);
      if (percent) {
        const quota = Math.round(Number(percent[1]) * 1000);
        return quota >= 1000 ? ok(`${quota} 100000`) : fail;
      }
      const match = /^(max|\d+)(?:\s+(\d+))?$/.exec(text);
      // The kernel takes quotas and periods from 1 ms to 1 s (the period), the quota at least 1 ms.
      if (!match || (match[1] !== "max" && Number(match[1]) < 1000) || (match[2] !== undefined && (Number(match[2]) < 1000 || Number(match[2]) > 1_000_000))) {
        return fail;
      }
      return ok(match[2] === undefined ? match[1] : `${match[1]} ${match[2]}`);
    }
  }
}
