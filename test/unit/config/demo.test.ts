// The demo configuration resolves to exactly these values.

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { RestartPolicy, ServerSpec } from "../../../init/core/types";
import { loadConfig } from "../../../init/config/loader";
import { fakeSystem } from "./fake-system";

const demoPath = fileURLToPath(new URL("../../fixtures/config/demo.yaml", import.meta.url));

const env = { PYTHONUNBUFFERED: "1", PATH: "/usr/bin:/bin", HOME: "/", TANGO_HOST: "tango-db:10000" };

const restart: RestartPolicy = {
  mode: "on-failure",
  initialDelayMs: 1000,
  factor: 2,
  maxDelayMs: 60_000,
  burstCount: 3,
  burstWindowMs: 120_000,
  resetAfterMs: 300_000,
  minUptimeForRestartMs: 0,
};

const tangoReady = { kind: "log", pattern: "Ready to accept request", regex: false, stream: "both" } as const;

const logDefaults = { maxBytes: 5 * 1024 * 1024, keep: 3, console: true, maxLineBytes: 16 * 1024 };

/** Fields the demo's servers share unless they say otherwise. */
const common = {
  cwd: null,
  uid: null,
  gid: null,
  umask: null,
  rlimits: [],
  requires: [],
  after: [],
  exclusive: false,
  startTimeoutMs: 30_000,
  restart,
  stopSignal: 15,
  stopTimeoutMs: 5000,
  preStart: null,
  postStop: null,
  preStartTimeoutMs: 30_000,
  postStopTimeoutMs: 5000,
  failsafeMs: null,
  autostart: true,
} satisfies Partial<ServerSpec>;

const expectedServers: ServerSpec[] = [
  {
    ...common,
    name: "TangoTest/t01",
    file: "/usr/lib/tango/TangoTest",
    argv: ["/usr/lib/tango/TangoTest", "t01", "-nodb", "-dlist", "sys/tg_test/1", "-ORBendPoint", "giop:tcp:127.0.0.1:12345"],
    env,
    level: 1,
    readiness: tangoReady,
    liveness: null,
    log: { ...logDefaults, file: "/var/tmp/ds.log/TangoTest_t01.log" },
  },
  {
    ...common,
    name: "TangoTest/t02",
    file: "/usr/lib/tango/TangoTest",
    argv: ["/usr/lib/tango/TangoTest", "t02", "-nodb", "-dlist", "sys/tg_test/2", "-ORBendPoint", "giop:tcp:127.0.0.1:12346"],
    env,
    uid: 1000,
    gid: 1001,
    umask: 0o022,
    rlimits: [
      { resource: "nofile", soft: 4096, hard: 4096 },
      { resource: "core", soft: 0, hard: -1 },
    ],
    level: 1,
    readiness: tangoReady,
    liveness: null,
    log: { ...logDefaults, file: "/var/tmp/ds.log/TangoTest_t02.log" },
  },
  {
    ...common,
    name: "PowerSupply/ps1",
    file: "/opt/tango/bin/PowerSupply.py",
    argv: ["/opt/tango/bin/PowerSupply.py", "ps1"],
    env: { ...env, PYTHONPATH: "/opt/tango/python" },
    level: 2,
    requires: ["TangoTest/t01"],
    readiness: { kind: "log", pattern: "Ready to accept requests?", regex: true, stream: "stdout" },
    liveness: null,
    stopSignal: 2,
    stopTimeoutMs: 3000,
    postStopTimeoutMs: 3000,
    failsafeMs: 60_000,
    log: { ...logDefaults, keep: 5, file: "/var/log/tango/ps1.log" },
  },
  {
    ...common,
    name: "web-ui",
    file: "/usr/local/bin/web-ui",
    argv: ["/usr/local/bin/web-ui", "--port", "8080"],
    env: { PATH: "/usr/bin:/bin", HOME: "/", TANGO_HOST: "tango-db:10000" },
    level: 3,
    after: ["PowerSupply/ps1"],
    readiness: { kind: "tcp", host: "127.0.0.1", port: 8080, intervalMs: 100 },
    liveness: null,
    restart: { ...restart, mode: "always" },
    preStart: ["/bin/mkdir", "-p", "/var/tmp/web-ui"],
    preStartTimeoutMs: 10_000,
    log: { ...logDefaults, file: "/var/tmp/ds.log/web-ui.log" },
    autostart: false,
  },
];

describe("the demo configuration", () => {
  const config = loadConfig(demoPath, fakeSystem({ readFile: (path) => readFileSync(path, "utf8") }));

  it("resolves the settings", () => {
    expect(config.settings).toEqual({
      startMode: "parallel",
      interServerWaitMs: 0,
      interLevelWaitMs: 200,
      maxLevel: 3,
      shutdownTimeoutMs: 9000,
      controlSocket: "/run/starter-init.sock",
      logHome: "/var/tmp",
    });
    expect(config.source).toBe(demoPath);
  });

  it("resolves every server exactly", () => {
    expect(config.servers).toEqual(expectedServers);
  });

  it("gives every server PYTHONUNBUFFERED=1 unless it removes it, and no NODE_* variable", () => {
    expect(config.servers.map((server) => server.env.PYTHONUNBUFFERED)).toEqual(["1", "1", "1", undefined]);
    expect(config.servers.some((server) => "NODE_OPTIONS" in server.env)).toBe(false);
  });
});
