// sources.tango.device: the Tango Starter device as a server of the file (config/starter-device.ts).

import { describe, expect, it } from "vitest";
import { ConfigError, parseConfigWithSources } from "../../../init/config/loader";
import { INSTALLED_DEVICE_SCRIPT } from "../../../init/config/starter-device";
import { executables, fakeSystem } from "./fake-system";

/** The source needs a database to read: TANGO_HOST in the init's environment. */
const ENV = { PATH: "/usr/bin:/bin", TANGO_HOST: "db:10000" };

function load(lines: string[], deps = fakeSystem({ env: ENV })) {
  return parseConfigWithSources(lines.join("\n"), "etc/starter.yaml", deps);
}

function errorOf(lines: string[], deps = fakeSystem({ env: ENV })): string {
  try {
    load(lines, deps);
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  throw new Error("the config loaded");
}

const system = [
  "settings:",
  "  controlSocket: /run/init/control.sock",
  "  searchPath: [/usr/lib/tango]",
  "  env: {TANGO_HOST: db:10000}",
  "servers:",
  "  - name: mariadb",
  "    binary: /usr/local/bin/web-ui",
  "    level: 1",
  "  - name: DataBaseds/2",
  "    binary: /usr/local/bin/web-ui",
  "    level: 2",
  "    requires: [mariadb]",
  "  - name: TangoTest/t1",
  "    level: 3",
];

describe("sources.tango.device", () => {
  it("runs the Starter device of the source's host first, after the servers the source waits for, at their level", () => {
    const { config, tango } = load([...system, "sources:", "  tango:", "    host: ctl01", "    waitFor: [DataBaseds/2]", "    device: true"]);
    expect(tango?.host).toBe("ctl01");
    const device = config.servers[0];
    expect(device).toMatchObject({
      name: "Starter/ctl01",
      file: "/usr/bin/python3",
      // The embedded script, written beside the control socket at start (none is installed here).
      argv: ["/usr/bin/python3", "/run/init/starter-init/starter-device.py", "ctl01"],
      level: 2,
      requires: ["DataBaseds/2"],
      readiness: { kind: "log", pattern: "Ready to accept request" },
      autostart: true,
    });
    expect(device.env).toMatchObject({ STARTER_CONTROL_SOCKET: "/run/init/control.sock", TANGO_HOST: "db:10000", PYTHONUNBUFFERED: "1" });
    expect(config.servers.map((spec) => spec.name)).toEqual(["Starter/ctl01", "mariadb", "DataBaseds/2", "TangoTest/t1"]);
  });

  it("without waitFor, the device starts with level 1 and requires nothing", () => {
    const { config } = load(["settings: {}", "sources:", "  tango:", "    host: ctl01", "    device: true"]);
    expect(config.servers).toHaveLength(1);
    expect(config.servers[0]).toMatchObject({ name: "Starter/ctl01", level: 1, requires: [] });
    expect(config.settings.maxLevel).toBe(1);
  });

  it("uses the installed script when there is one, or STARTER_DEVICE_SCRIPT", () => {
    const installed = fakeSystem({
      env: ENV,
      executableStatus: (path) => (executables.has(path) ? "executable" : path === INSTALLED_DEVICE_SCRIPT ? "not-executable" : "missing"),
    });
    const lines = ["sources:", "  tango:", "    host: h", "    device: true"];
    expect(load(lines, installed).config.servers[0].argv).toEqual(["/usr/bin/python3", INSTALLED_DEVICE_SCRIPT, "h"]);
    const fromEnv = fakeSystem({ env: { ...ENV, STARTER_DEVICE_SCRIPT: "/srv/device.py" } });
    expect(load(lines, fromEnv).config.servers[0].argv).toEqual(["/usr/bin/python3", "/srv/device.py", "h"]);
  });

  it("is off by default and with device: false", () => {
    expect(load(["sources:", "  tango: {host: h}"]).config.servers).toEqual([]);
    expect(load(["sources:", "  tango: {host: h, device: false}"]).config.servers).toEqual([]);
  });

  it("a Starter/<host> entry of the file replaces the device", () => {
    const { config } = load(["servers:", "  - name: Starter/h", "    binary: /usr/local/bin/web-ui", "sources:", "  tango: {host: h, device: true}"]);
    expect(config.servers).toHaveLength(1);
    expect(config.servers[0].file).toBe("/usr/local/bin/web-ui");
  });

  it("reports a bad value and a missing python3 at the key", () => {
    expect(errorOf(["sources:", "  tango:", "    device: yes please"])).toContain(
      'etc/starter.yaml:3:5: sources.tango.device: expected true or false, got "yes please"',
    );
    const noPython = fakeSystem({ env: ENV, executableStatus: () => "missing" });
    expect(errorOf(["sources:", "  tango:", "    host: h", "    device: true"], noPython)).toContain(
      "etc/starter.yaml:4:5: sources.tango.device: the Starter device runs with /usr/bin/python3 and PyTango (Debian's python3-tango); /usr/bin/python3 is missing",
    );
  });
});

describe("the database's servers restart as the Starter's AutoRestartDuration says", () => {
  const read = (properties: Record<string, string[]>) => ({
    host: "h",
    starterDevice: "tango/admin/h",
    database: "mysql://tango@db:3306/tango",
    readAt: 0,
    servers: [{ name: "TangoTest/t1", mode: "1", level: "1" }],
    properties: { StartDsPath: ["/usr/lib/tango"], ...properties },
    classProperties: {},
    answeredBy: "db:10000",
  });
  const restartOf = (lines: string[], properties: Record<string, string[]>) => {
    const { tango } = load(lines);
    return tango!.compose(read(properties)).config.servers.find((spec) => spec.name === "TangoTest/t1")!.restart;
  };

  it("not at all when it is 0 or unset (the Starter's default)", () => {
    expect(restartOf(["sources:", "  tango: {host: h}"], {}).mode).toBe("never");
    expect(restartOf(["sources:", "  tango: {host: h}"], { AutoRestartDuration: ["0"] }).mode).toBe("never");
  });

  it("after a crash of a server that ran longer than it, when it is above 0", () => {
    expect(restartOf(["sources:", "  tango: {host: h}"], { AutoRestartDuration: ["2"] })).toMatchObject({ mode: "on-failure", minUptimeForRestartMs: 120_000 });
  });

  it("as the file says when the file sets a restart mode", () => {
    expect(restartOf(["settings:", "  defaults: {restart: always}", "sources:", "  tango: {host: h}"], {}).mode).toBe("always");
    expect(restartOf(["sources:", "  tango:", "    host: h", "    servers: [{name: TangoTest/*, restart: on-failure}]"], {}).mode).toBe("on-failure");
  });
});
