// Tango Starter property names in `settings`, their units, and the defaults that depend on the mode.

import { describe, expect, it } from "vitest";
import { parseConfig } from "../../../init/config/loader";
import { fakeSystem } from "./fake-system";

const load = (lines: string[]) => parseConfig(lines.join("\n"), "etc/starter.yaml", fakeSystem());

describe("Starter properties", () => {
  it("map to the native settings with the Starter's units", () => {
    const config = load([
      "settings:",
      "  StartDsPath: /usr/lib/tango:/opt/tango/bin",
      "  StartServersAtStartup: false",
      "  InterStartupLevelWait: 2", // seconds
      "  InterStartupServerWait: 250", // milliseconds
      "  ServerStartupTimeout: 45", // seconds
      "  AutoRestartDuration: 2", // minutes
      "  KeepLogFiles: 5",
      "  LogFileHome: /var/tmp",
      "  NbStartupLevels: 4",
      "  EnableParallelStartup: false",
      "servers:",
      "  - name: TangoTest/t1",
      "    level: 4",
      "  - name: PowerSupply/ps1",
    ]);
    expect(config.settings).toEqual({
      startMode: "sequential",
      interServerWaitMs: 250,
      interLevelWaitMs: 2000,
      maxLevel: 4,
      shutdownTimeoutMs: 9000,
      controlSocket: "/run/starter-init.sock",
      logHome: "/var/tmp",
    });
    const [tangoTest, powerSupply] = config.servers;
    expect(tangoTest.file).toBe("/usr/lib/tango/TangoTest");
    expect(powerSupply.file).toBe("/opt/tango/bin/PowerSupply");
    expect(powerSupply.argv).toEqual(["/opt/tango/bin/PowerSupply", "ps1"]);
    expect(tangoTest.autostart).toBe(false);
    expect(tangoTest.startTimeoutMs).toBe(45_000);
    expect(tangoTest.restart.minUptimeForRestartMs).toBe(120_000);
    expect(tangoTest.log.keep).toBe(5);
    expect(tangoTest.log.file).toBe("/var/tmp/ds.log/TangoTest_t1.log");
    expect(powerSupply.log.file).toBe("/var/tmp/ds.log/PowerSupply_ps1.log");
  });

  it("take duration strings as written, and a StartDsPath list", () => {
    const config = load([
      "settings:",
      "  StartDsPath: [/opt/tango/bin]",
      "  InterStartupLevelWait: 1500ms",
      "  ServerStartupTimeout: 1m",
      "  AutoRestartDuration: 0",
      "  EnableParallelStartup: true",
      "servers:",
      "  - name: PowerSupply/ps1",
    ]);
    expect(config.settings.startMode).toBe("parallel");
    expect(config.settings.interLevelWaitMs).toBe(1500);
    expect(config.settings.interServerWaitMs).toBe(0);
    expect(config.servers[0].startTimeoutMs).toBe(60_000);
    expect(config.servers[0].restart.minUptimeForRestartMs).toBe(0);
    expect(config.servers[0].file).toBe("/opt/tango/bin/PowerSupply");
  });

  it("per-server values win over the defaults they set", () => {
    const config = load([
      "settings:",
      "  StartDsPath: /usr/lib/tango",
      "  StartServersAtStartup: false",
      "  ServerStartupTimeout: 45",
      "  KeepLogFiles: 5",
      "  LogFileHome: /var/tmp",
      "servers:",
      "  - name: TangoTest/t1",
      "    autostart: true",
      "    startTimeout: 10s",
      "    log: {keep: 1, file: false}",
    ]);
    expect(config.servers[0]).toMatchObject({ autostart: true, startTimeoutMs: 10_000, log: { keep: 1, file: null } });
  });
});

describe("settings defaults", () => {
  it("sequential mode reproduces the Starter's pauses: 500 ms between servers, 1 s between levels", () => {
    const config = load(["settings:", "  startMode: sequential"]);
    expect(config.settings).toEqual({
      startMode: "sequential",
      interServerWaitMs: 500,
      interLevelWaitMs: 1000,
      maxLevel: 1,
      shutdownTimeoutMs: 9000,
      controlSocket: "/run/starter-init.sock",
      logHome: null,
    });
    expect(config.servers).toEqual([]);
  });

  it("an empty file is a configuration without servers, in parallel mode", () => {
    const config = parseConfig("", "empty.yaml", fakeSystem());
    expect(config.settings.startMode).toBe("parallel");
    expect(config.settings.interServerWaitMs).toBe(0);
    expect(config.settings.interLevelWaitMs).toBe(0);
    expect(config.servers).toEqual([]);
  });

  it("without maxLevel, every configured level starts at boot", () => {
    const config = load(["settings: {searchPath: [/usr/lib/tango]}", "servers:", "  - {name: TangoTest/a, level: 7}", "  - {name: TangoTest/b, level: 0}"]);
    expect(config.settings.maxLevel).toBe(7);
  });

  it("without searchPath, servers are looked up in the init's PATH", () => {
    const config = parseConfig("servers:\n  - name: python3\n", "etc/starter.yaml", fakeSystem());
    expect(config.servers[0]).toMatchObject({ file: "/usr/bin/python3", argv: ["/usr/bin/python3"], readiness: { kind: "none" } });
  });
});
