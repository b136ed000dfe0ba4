// The small value languages: durations, sizes, signals, umasks, command lines, probe shorthands.

import { describe, expect, it } from "vitest";
import {
  closestWord,
  parseByteSize,
  parseCgroupLimit,
  parseDuration,
  parseProbeShorthand,
  parseRlimitName,
  parseSignal,
  parseUmask,
  splitCommandLine,
} from "../../../init/config/values";

const valueOf = <T>(parsed: { ok: true; value: T } | { ok: false; expected: string }) => (parsed.ok ? parsed.value : `refused: ${parsed.expected}`);
const refused = (parsed: { ok: boolean }) => !parsed.ok;

describe("durations", () => {
  it("read numbers as milliseconds and strings with units", () => {
    expect([250, "500ms", "2s", "1.5s", "1m", "1h", "1m30s", "0s"].map((value) => valueOf(parseDuration(value)))).toEqual([
      250, 500, 2000, 1500, 60_000, 3_600_000, 90_000, 0,
    ]);
  });
  it("refuse negative numbers, unknown units and bare digit strings", () => {
    expect([-1, Infinity, "500", "2 secs", "1d", "s", ""].map((value) => refused(parseDuration(value)))).toEqual([true, true, true, true, true, true, true]);
  });
});

describe("sizes", () => {
  it("read binary and decimal units", () => {
    expect(["10MiB", "512KiB", "1GiB", "1GB", "5 MB", "100B", 4096].map((value) => valueOf(parseByteSize(value)))).toEqual([
      10 * 1024 ** 2,
      512 * 1024,
      1024 ** 3,
      1e9,
      5e6,
      100,
      4096,
    ]);
  });
  it("refuse unknown units and zero", () => {
    expect(["10mb", "10", "0KiB", 0, 1.5].map((value) => refused(parseByteSize(value)))).toEqual([true, true, true, true, true]);
  });
});

describe("signals", () => {
  it("accept names with or without SIG, in any case, and numbers", () => {
    expect(["SIGTERM", "TERM", "term", "SIGINT", "KILL", "USR1", 9].map((value) => valueOf(parseSignal(value)))).toEqual([15, 15, 15, 2, 9, 10, 9]);
  });
  it("refuse unknown names and out-of-range numbers", () => {
    expect(["SIGFOO", "", 0, 65, 1.5].map((value) => refused(parseSignal(value)))).toEqual([true, true, true, true, true]);
  });
});

describe("umasks", () => {
  it("read octal strings and numbers", () => {
    expect(["022", "0027", "0o077", "7", 0o022].map((value) => valueOf(parseUmask(value)))).toEqual([0o022, 0o027, 0o077, 0o7, 0o022]);
  });
  it("refuse non-octal digits and values above 0o777", () => {
    expect(["089", "1777", "u=rwx", 512, -1].map((value) => refused(parseUmask(value)))).toEqual([true, true, true, true, true]);
  });
});

describe("command lines", () => {
  it("split like a shell for simple cases", () => {
    expect(valueOf(splitCommandLine(`mkdir -p '/var/tmp/a b' "say \\"hi\\"" c\\ d ''`))).toEqual(["mkdir", "-p", "/var/tmp/a b", 'say "hi"', "c d", ""]);
  });
  it("refuse shell syntax they do not reproduce", () => {
    expect(valueOf(splitCommandLine("echo $HOME"))).toBe(
      'refused: a simple command line (shell syntax "$"); for anything more, give a list such as ["/bin/sh", "-c", "..."]',
    );
    expect(["a | b", "a > f", "a; b", "ls *.log", "'open", '"open', "   "].map((text) => refused(splitCommandLine(text)))).toEqual([
      true,
      true,
      true,
      true,
      true,
      true,
      true,
    ]);
  });
});

describe("readiness shorthands", () => {
  it("read every probe kind", () => {
    expect(
      [
        "none",
        "sd_notify",
        "log:Ready to accept request",
        "log:/^Ready .* request$/",
        "notify:3",
        "tcp:12345",
        "tcp:10.0.0.1:80",
        "tcp:[::1]:8080",
        "file:/run/x.ready",
        "exec:curl -fs http://127.0.0.1:8080/health",
      ].map((text) => valueOf(parseProbeShorthand(text))),
    ).toEqual([
      { kind: "none" },
      { kind: "sd_notify" },
      { kind: "log", pattern: "Ready to accept request", regex: false, stream: "both" },
      { kind: "log", pattern: "^Ready .* request$", regex: true, stream: "both" },
      { kind: "notify", fd: 3 },
      { kind: "tcp", host: "127.0.0.1", port: 12345, intervalMs: 100 },
      { kind: "tcp", host: "10.0.0.1", port: 80, intervalMs: 100 },
      { kind: "tcp", host: "::1", port: 8080, intervalMs: 100 },
      { kind: "file", path: "/run/x.ready", intervalMs: 100 },
      { kind: "exec", argv: ["curl", "-fs", "http://127.0.0.1:8080/health"], intervalMs: 500, timeoutMs: 5000 },
    ]);
  });
  it("refuse unknown kinds and bad arguments", () => {
    expect(["ready", "log:", "notify:2", "tcp:0", "tcp:host:", "file:relative", "exec:", "none:1"].map((text) => refused(parseProbeShorthand(text)))).toEqual([
      true,
      true,
      true,
      true,
      true,
      true,
      true,
      true,
    ]);
  });
});

describe("names", () => {
  it("resource limits with or without RLIMIT_", () => {
    expect(["nofile", "NOFILE", "RLIMIT_CORE"].map((name) => valueOf(parseRlimitName(name)))).toEqual(["nofile", "nofile", "core"]);
    expect(refused(parseRlimitName("files"))).toBe(true);
  });
  it("suggestions only for close words", () => {
    expect(closestWord("levle", ["level", "name"])).toBe("level");
    expect(closestWord("startmode", ["startMode", "maxLevel"])).toBe("startMode");
    expect(closestWord("colour", ["level", "name", "env"])).toBeUndefined();
  });
});

describe("cgroup limits", () => {
  it("sizes to bytes (0 included), counts and weights as written, cpu.max as quota and period or a share of one CPU", () => {
    expect(
      [
        ["memory.max", "1GiB"],
        ["memory.max", 4096],
        ["memory.swap.max", "0"],
        ["memory.high", "max"],
        ["pids.max", 64],
        ["cpu.weight", "10000"],
        ["cpu.max", "max 100000"],
        ["cpu.max", "25%"],
        ["cpu.max", 20000],
      ].map(([name, value]) => valueOf(parseCgroupLimit(name as string, value))),
    ).toEqual(["1073741824", "4096", "0", "max", "64", "10000", "max 100000", "25000 100000", "20000"]);
  });

  it("refuse what the kernel would refuse", () => {
    for (const [name, value] of [
      ["memory.max", "-1"],
      ["pids.max", 0],
      ["cpu.weight", 10001],
      ["io.weight", "1.5"],
      ["cpu.max", "0.5%"],
      ["cpu.max", "50000 2000000"],
      ["cpu.shares", 10],
    ] as const) {
      expect(refused(parseCgroupLimit(name, value)), `${name}: ${value}`).toBe(true);
    }
  });
});
