// Resolution details: environment, accounts, probes and commands, restart policies, YAML specifics.

import { describe, expect, it } from "vitest";
import { parseConfig } from "../../../init/config/loader";
import { fakeSystem } from "./fake-system";

const load = (lines: string[], overrides = {}) => parseConfig(lines.join("\n"), "etc/starter.yaml", fakeSystem(overrides));
const onlyServer = (lines: string[], overrides = {}) => load(["settings: {searchPath: [/usr/lib/tango]}", "servers:", ...lines], overrides).servers[0];

describe("environment", () => {
  it("layers: built-in, the init's own (without NODE_*), settings.env, server env; empty removes", () => {
    const config = load(
      [
        "settings:",
        "  searchPath: [/usr/lib/tango]",
        "  env: {TANGO_HOST: 'db:10000', HOME: , LEVEL: 3, DEBUG: true}",
        "servers:",
        "  - name: TangoTest/t1",
        "    env: {PYTHONUNBUFFERED: '0', TANGO_HOST: 'other:10000'}",
      ],
      { env: { PATH: "/usr/bin", HOME: "/root", NODE_OPTIONS: "--inspect", NODE_PATH: "/x", LANG: "C.UTF-8" } },
    );
    expect(config.servers[0].env).toEqual({
      PYTHONUNBUFFERED: "0",
      PATH: "/usr/bin",
      LANG: "C.UTF-8",
      TANGO_HOST: "other:10000",
      LEVEL: "3",
      DEBUG: "true",
    });
  });

  it("an init started without PATH gives servers the standard one", () => {
    expect(onlyServer(["  - name: TangoTest/t1"], { env: {} }).env).toEqual({
      PYTHONUNBUFFERED: "1",
      PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    });
  });
});

describe("accounts", () => {
  it("a user name brings its primary group; a group may be given by name or number", () => {
    const config = load([
      "settings: {searchPath: [/usr/lib/tango]}",
      "servers:",
      "  - {name: TangoTest/a, user: tango}",
      "  - {name: TangoTest/b, user: tango, group: dialout}",
      "  - {name: TangoTest/c, user: '0', group: 5}",
      "  - {name: TangoTest/d, group: tango}",
    ]);
    expect(config.servers.map(({ uid, gid }) => [uid, gid])).toEqual([
      [1000, 1001],
      [1000, 20],
      [0, 5],
      [null, 1001],
    ]);
  });

  it("/etc/passwd and /etc/group are read only when needed", () => {
    const unreadable = () => {
      throw new Error("must not be read");
    };
    expect(onlyServer(["  - name: TangoTest/t1"], { readPasswd: unreadable, readGroup: unreadable })).toMatchObject({ uid: null, gid: null });
  });
});

describe("probes, commands and policies", () => {
  it("readiness mappings, and helper commands looked up in searchPath then PATH", () => {
    const config = load([
      "settings: {searchPath: [/usr/lib/tango]}",
      "servers:",
      "  - name: TangoTest/a",
      "    readiness: {exec: curl -fs http://127.0.0.1/, interval: 1s, timeout: 2s}",
      "    postStop: [/bin/mkdir, /tmp/x]",
      "  - name: TangoTest/b",
      "    readiness: {notify: 4}",
      "  - name: TangoTest/c",
      "    readiness: {file: /run/c.ready, interval: 50}",
      "  - name: TangoTest/d",
      "    readiness: {sd_notify: true}",
      "  - name: TangoTest/e",
      "    readiness: {log: '/Ready/', regex: false, stream: stderr}",
      "  - name: TangoTest/f",
      "    readiness: {tcp: 10000}",
    ]);
    expect(config.servers.map((server) => server.readiness)).toEqual([
      { kind: "exec", argv: ["/usr/bin/curl", "-fs", "http://127.0.0.1/"], intervalMs: 1000, timeoutMs: 2000 },
      { kind: "notify", fd: 4 },
      { kind: "file", path: "/run/c.ready", intervalMs: 50 },
      { kind: "sd_notify" },
      { kind: "log", pattern: "/Ready/", regex: false, stream: "stderr" },
      { kind: "tcp", host: "127.0.0.1", port: 10000, intervalMs: 100 },
    ]);
    expect(config.servers[0].postStop).toEqual(["/bin/mkdir", "/tmp/x"]);
  });

  it("a missing helper command names where it was searched", () => {
    expect(() => load(["settings: {searchPath: [/usr/lib/tango]}", "servers:", "  - name: TangoTest/a", "    preStart: setup-db --init"])).toThrow(
      "etc/starter.yaml:4:5: servers[0].preStart: setup-db not found in /usr/lib/tango:/usr/bin:/bin",
    );
  });

  it("restart: a mode alone keeps the other fields; a mapping overrides field by field", () => {
    const config = load([
      "settings:",
      "  searchPath: [/usr/lib/tango]",
      "  defaults: {restart: {maxDelay: 10s, burst: {count: 2}}}",
      "servers:",
      "  - {name: TangoTest/a, restart: never}",
      "  - {name: TangoTest/b, restart: {factor: 1.5, burst: {window: 30s}, minUptime: 1m}}",
    ]);
    expect(config.servers.map((server) => server.restart)).toEqual([
      {
        mode: "never",
        initialDelayMs: 500,
        factor: 2,
        maxDelayMs: 10_000,
        burstCount: 2,
        burstWindowMs: 60_000,
        resetAfterMs: 60_000,
        minUptimeForRestartMs: 0,
      },
      {
        mode: "on-failure",
        initialDelayMs: 500,
        factor: 1.5,
        maxDelayMs: 10_000,
        burstCount: 2,
        burstWindowMs: 30_000,
        resetAfterMs: 60_000,
        minUptimeForRestartMs: 60_000,
      },
    ]);
  });

  it("an unquoted leading-zero umask is octal, as in YAML 1.1; quoted strings and 0o numbers too", () => {
    const config = load([
      "settings: {searchPath: [/usr/lib/tango]}",
      "servers:",
      "  - {name: TangoTest/a, umask: 022}",
      "  - {name: TangoTest/b, umask: '0027'}",
      "  - {name: TangoTest/c, umask: 0o077}",
      "  - {name: TangoTest/d, umask: 0}",
    ]);
    expect(config.servers.map((server) => server.umask)).toEqual([0o022, 0o027, 0o077, 0]);
  });

  it("a plain name: binary defaults to the name, argv has no instance, readiness none, log file without instance", () => {
    const config = load(["settings: {logHome: /var/log/tango}", "servers:", "  - name: python3", "    args: [-m, http.server, 8000]"]);
    expect(config.servers[0]).toMatchObject({
      file: "/usr/bin/python3",
      argv: ["/usr/bin/python3", "-m", "http.server", "8000"],
      readiness: { kind: "none" },
      log: { file: "/var/log/tango/ds.log/python3.log" },
    });
  });

  it("defaults.readiness applies to every server that gives none", () => {
    const config = load(["settings: {searchPath: [/usr/lib/tango], defaults: {readiness: 'notify:3'}}", "servers:", "  - name: TangoTest/a"]);
    expect(config.servers[0].readiness).toEqual({ kind: "notify", fd: 3 });
  });
});

describe("the Starter's check: readiness tango and liveness", () => {
  const problems = (lines: string[]): string[] => {
    try {
      load(lines);
    } catch (err) {
      return (err as { problems: { line: number; column: number; path: string; message: string }[] }).problems.map(
        (p) => `${p.line}:${p.column}: ${p.path}: ${p.message}`,
      );
    }
    throw new Error("the config loaded");
  };

  it("readiness tango: through the database of the server's TANGO_HOST, or at a fixed endpoint; liveness on by default with it", () => {
    const config = load([
      "settings: {searchPath: [/usr/lib/tango], env: {TANGO_HOST: 'db:10000'}}",
      "servers:",
      "  - {name: TangoTest/a, readiness: tango}",
      "  - {name: TangoTest/b, readiness: 'tango:127.0.0.1:12345'}",
      "  - {name: TangoTest/c, readiness: {tango: 12346, interval: 50ms}, liveness: {interval: 500ms, failures: 3, onUnresponsive: restart}}",
      "  - {name: TangoTest/d, readiness: tango, liveness: false}",
      "  - {name: TangoTest/e, liveness: {timeout: 300ms}}",
      "  - {name: TangoTest/f}",
    ]);
    const [a, b, c, d, e, f] = config.servers;
    expect(a.readiness).toEqual({ kind: "tango", target: { via: "database" }, intervalMs: 200 });
    expect(a.liveness).toEqual({ intervalMs: 2000, timeoutMs: 1000, failures: 2, onUnresponsive: "report", target: { via: "database" } });
    expect(b.readiness).toEqual({ kind: "tango", target: { via: "endpoint", host: "127.0.0.1", port: 12345 }, intervalMs: 200 });
    expect(b.liveness?.target).toEqual({ via: "endpoint", host: "127.0.0.1", port: 12345 });
    expect(c.readiness).toMatchObject({ intervalMs: 50, target: { port: 12346 } });
    expect(c.liveness).toEqual({
      intervalMs: 500,
      timeoutMs: 1000,
      failures: 3,
      onUnresponsive: "restart",
      target: { via: "endpoint", host: "127.0.0.1", port: 12346 },
    });
    expect(d.liveness).toBeNull();
    // Its own liveness turns it on for a server whose readiness is the log line: through the database.
    expect(e.readiness.kind).toBe("log");
    expect(e.liveness).toMatchObject({ timeoutMs: 300, target: { via: "database" } });
    expect(f.liveness).toBeNull();
  });

  it("defaults.liveness shapes the checks of the servers that have one, or turns them all off", () => {
    const shaped = load([
      "settings: {searchPath: [/usr/lib/tango], env: {TANGO_HOST: 'db:10000'}, defaults: {readiness: tango, liveness: {onUnresponsive: restart}}}",
      "servers:",
      "  - {name: TangoTest/a}",
      "  - {name: TangoTest/b, liveness: {failures: 5}}",
      "  - {name: web, binary: /usr/local/bin/web-ui, readiness: none}",
    ]);
    expect(shaped.servers.map((s) => s.liveness && [s.liveness.onUnresponsive, s.liveness.failures])).toEqual([["restart", 2], ["restart", 5], null]);
    const off = load([
      "settings: {searchPath: [/usr/lib/tango], env: {TANGO_HOST: 'db:10000'}, defaults: {liveness: false}}",
      "servers:",
      "  - {name: TangoTest/a, readiness: tango}",
    ]);
    expect(off.servers[0].liveness).toBeNull();
  });

  it("a check of dserver/<Server>/<instance> needs a Tango name, and through the database a TANGO_HOST", () => {
    expect(
      problems([
        "settings: {searchPath: [/usr/lib/tango, /usr/local/bin]}",
        "servers:",
        "  - {name: TangoTest/a, readiness: tango}",
        "  - {name: web-ui, readiness: 'tango:12345'}",
        "  - {name: TangoTest/b, liveness: true}",
        "  - {name: TangoTest/c, readiness: 'tango:12345', liveness: {failures: 0}}",
        "  - {name: TangoTest/d, readiness: {tango: yes}}",
      ]),
    ).toEqual([
      "3:25: servers[0].readiness: readiness tango finds the admin device through the Tango database, but the server has no TANGO_HOST (settings.env, its env or the init's environment); or give the endpoint: tango:[host:]port",
      "4:20: servers[1].readiness: readiness tango pings the admin device dserver/<Server>/<instance>: the server's name must be Server/instance",
      "5:25: servers[2].liveness: liveness finds the admin device through the Tango database, but the server has no TANGO_HOST (settings.env, its env or the init's environment); or give the endpoint: tango:[host:]port",
      "6:62: servers[3].liveness.failures: expected an integer of at least 1, got 0",
      '7:37: servers[4].readiness.tango: expected an address "[host:]port" with a port between 1 and 65535, got "yes"',
    ]);
  });
});

describe("cgroup limits, forking daemons, watchdogs", () => {
  const problems = (lines: string[]): string[] => {
    try {
      load(lines);
    } catch (err) {
      return (err as { problems: { line: number; column: number; path: string; message: string }[] }).problems.map(
        (p) => `${p.line}:${p.column}: ${p.path}: ${p.message}`,
      );
    }
    throw new Error("the config loaded");
  };

  it("limits keyed by the kernel's file names, sizes in the config's units; defaults merged key by key", () => {
    const config = load([
      "settings:",
      "  searchPath: [/usr/lib/tango]",
      "  defaults: {limits: {pids.max: 100, memory.high: 200MiB}, watchdog: 30s}",
      "servers:",
      "  - name: TangoTest/a",
      "    limits: {memory.max: 256MiB, memory.high: max, cpu.weight: 50, cpu.max: '50000 100000', io.weight: 50}",
      "  - {name: TangoTest/b, limits: {cpu.max: 150%, memory.swap.max: 0B}, watchdog: false}",
      "  - {name: TangoTest/c, type: forking, pidFile: /run/c.pid, watchdog: 10s}",
    ]);
    expect(config.servers.map((s) => [s.limits, s.watchdogMs, s.type, s.pidFile])).toEqual([
      [
        { "pids.max": "100", "memory.high": "max", "memory.max": "268435456", "cpu.weight": "50", "cpu.max": "50000 100000", "io.weight": "50" },
        30_000,
        undefined,
        undefined,
      ],
      [{ "pids.max": "100", "memory.high": "209715200", "cpu.max": "150000 100000", "memory.swap.max": "0" }, undefined, undefined, undefined],
      [{ "pids.max": "100", "memory.high": "209715200" }, 10_000, "forking", "/run/c.pid"],
    ]);
  });

  it("a plain server's spec has none of these fields", () => {
    const spec = onlyServer(["  - name: TangoTest/t1"]);
    expect(["type", "pidFile", "watchdogMs", "limits"].filter((key) => key in spec)).toEqual([]);
  });

  it("unknown cgroup files, bad values and a pidFile without type forking are errors at their field", () => {
    expect(
      problems([
        "settings: {searchPath: [/usr/lib/tango]}",
        "servers:",
        "  - {name: TangoTest/a, limits: {memory.maxx: 1GiB}}",
        "  - {name: TangoTest/b, limits: {cpu.weight: 0, pids.max: -1, cpu.max: '100 100000', memory.max: lots}}",
        "  - {name: TangoTest/c, pidFile: /run/c.pid, watchdog: 0s, type: daemon}",
        "  - {name: TangoTest/d, pidFile: /run/d.pid}",
      ]),
    ).toEqual([
      '3:34: servers[0].limits["memory.maxx"]: expected a cgroup file: memory.min, memory.low, memory.high, memory.max, memory.swap.max, pids.max, cpu.weight, io.weight, cpu.max (did you mean "memory.max"?), got "memory.maxx"',
      '4:34: servers[1].limits["cpu.weight"]: expected an integer from 1 to 10000 (100 is the kernel\'s default), got 0',
      '4:49: servers[1].limits["pids.max"]: expected a positive integer, or "max", got -1',
      '4:63: servers[1].limits["cpu.max"]: expected "max", "<quota> <period>" in microseconds (like "50000 100000"), or a share of one CPU like "50%", got "100 100000"',
      '4:86: servers[1].limits["memory.max"]: expected a size (bytes, or a string like "256MiB"), or "max", got "lots"',
      "5:46: servers[2].watchdog: expected a period above 0, got 0",
      '5:60: servers[2].type: expected one of "simple", "forking", got "daemon"',
      "6:25: servers[3].pidFile: pidFile applies to type: forking (a daemon's pid file)",
    ]);
  });
});
