// The `tango` source without a database: the `sources:` section of the file (errors placed at
// file:line), TANGO_HOST from the file or the environment, and how a read of the database is
// combined with the file (levels, not-started servers, overrides, Starter properties under the
// file's settings, the per-server argument and environment properties). The database itself is in
// tango-db.test.ts.

import { describe, expect, it } from "vitest";
import { ConfigError, parseConfigWithSources, type ConfigDeps } from "../../init/config/loader";
import { globMatches } from "../../init/config/tango/compose";
import { resolveConnection } from "../../init/config/tango/connection";
import { starterDeviceOf, type TangoSnapshot } from "../../init/config/tango/read";

const executables = new Set(["/usr/lib/tango/TangoTest", "/opt/site/bin/PowerSupply", "/bin/sleep"]);

const deps: Partial<ConfigDeps> = {
  executableStatus: (path) => (executables.has(path) ? "executable" : "missing"),
  readPasswd: () => "root:x:0:0:root:/root:/bin/sh\n",
  readGroup: () => "root:x:0:\n",
  env: { PATH: "/usr/bin:/bin", HOME: "/" },
};

function load(text: string) {
  return parseConfigWithSources(text, "site.yaml", deps);
}

function problemsOf(text: string): string[] {
  try {
    load(text);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.line}:${p.column}: ${p.path}: ${p.message}`);
    throw err;
  }
  throw new Error("the config loaded");
}

function snapshot(overrides: Partial<TangoSnapshot> = {}): TangoSnapshot {
  return {
    host: "ctl01",
    starterDevice: "tango/admin/ctl01",
    database: "tango://db:10000",
    answeredBy: "db:10000",
    readAt: 1_000,
    servers: [],
    properties: {},
    classProperties: {},
    ...overrides,
  };
}

const FILE = `
settings:
  controlSocket: /run/test.sock
  env: {TANGO_HOST: "db:10000"}
servers:
  - name: web
    binary: /bin/sleep
    args: infinity
    level: 1
  - name: PowerSupply/ps1
    binary: /opt/site/bin/PowerSupply
    level: 2
sources:
  tango:
    host: ctl01
    levelOffset: 2
    servers:
      - name: TangoTest/*
        env: {FROM_GLOB: "yes"}
      - name: TangoTest/t2
        args: -v4
        env: {FROM_NAME: "yes"}
`;

describe("the sources section", () => {
  it("reports its mistakes at file:line with the field, all at once", () => {
    const problems = problemsOf(`
servers:
  - name: web
    binary: /bin/sleep
sources:
  tango:
    lvelOffset: 2
    url: mysql://tango:tango@db/tango
    waitFor: [DataBaseds/2]
    retry: {initialDelay: soon}
    tangoHost: db
`);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^7:5: sources\.tango\.lvelOffset: unknown key "lvelOffset"; did you mean "levelOffset"\?$/),
        expect.stringMatching(/^8:5: sources\.tango\.url: the tango source no longer reads MySQL: it asks the database server \(DataBaseds\) at TANGO_HOST/),
        expect.stringMatching(/^10:13: sources\.tango\.retry\.initialDelay: expected a duration/),
        '11:5: sources.tango.tangoHost: expected a TANGO_HOST "host:port", or several "host1:port1,host2:port2", got "db"',
      ]),
    );
    expect(problems).toHaveLength(4);
    // waitFor is checked once the section itself is valid.
    expect(
      problemsOf("settings: {env: {TANGO_HOST: 'db:10000'}}\nservers: [{name: web, binary: /bin/sleep}]\nsources:\n  tango:\n    waitFor: DataBaseds/2\n"),
    ).toEqual(['5:5: sources.tango.waitFor: unknown server "DataBaseds/2": waitFor names servers of the file\'s servers list']);
    expect(problemsOf("sources:\n  tangoo: {}\n")).toEqual(['2:3: sources.tangoo: unknown key "tangoo"; did you mean "tango"?']);
  });

  it("has no source without the section; the file's config is the same with or without one", () => {
    const without = load("servers: [{name: web, binary: /bin/sleep}]\n");
    expect(without.tango).toBeNull();
    const withSource = load("servers: [{name: web, binary: /bin/sleep}]\nsources: {tango: {tangoHost: 'db:10000'}}\n");
    expect(withSource.tango).not.toBeNull();
    expect(withSource.config).toEqual(without.config);
  });
});

describe("where the database is", () => {
  it("TANGO_HOST of settings.env, over the init's environment; no MySQL credentials anywhere", () => {
    const { tango } = load(FILE);
    expect(tango!.connection).toEqual({ tangoHost: "db:10000", entries: [{ host: "db", port: 10000 }], from: "settings.env", display: "tango://db:10000" });
    expect(tango!.host).toBe("ctl01");
    expect(resolveConnection(null, {}, { TANGO_HOST: "ctl:20000" })).toMatchObject({ connection: { tangoHost: "ctl:20000", from: "the init's environment" } });
  });

  it("sources.tango.tangoHost first; several databases; IPv6", () => {
    expect(resolveConnection("db1:10000, db2:10000", { TANGO_HOST: "x:1" }, {})).toMatchObject({
      connection: { tangoHost: "db1:10000,db2:10000", from: "sources.tango.tangoHost", display: "tango://db1:10000,db2:10000" },
    });
    expect(resolveConnection(null, { TANGO_HOST: "[::1]:10000" }, {})).toMatchObject({ connection: { entries: [{ host: "::1", port: 10000 }] } });
  });

  it("no TANGO_HOST, or one that is not host:port: an error of the file at sources.tango", () => {
    expect(problemsOf("servers: [{name: web, binary: /bin/sleep}]\nsources:\n  tango: {levelOffset: 1}\n")).toEqual([
      "3:3: sources.tango: no TANGO_HOST: the tango source reads the database through DataBaseds at TANGO_HOST; set it in the init's environment or settings.env, or give sources.tango.tangoHost",
    ]);
    expect(problemsOf("settings: {env: {TANGO_HOST: db}}\nsources:\n  tango: {}\n")).toEqual([
      '3:3: sources.tango: TANGO_HOST entry "db" is not host:port (TANGO_HOST from settings.env)',
    ]);
    expect(resolveConnection(null, { TANGO_HOST: null }, { TANGO_HOST: "db:10000" })).toEqual({
      problem: "settings.env unsets TANGO_HOST: the tango source needs it (or sources.tango.tangoHost)",
    });
  });

  it("the Starter device is tango/admin/<short name>", () => {
    expect(starterDeviceOf("ctl01.example.org")).toBe("tango/admin/ctl01");
  });
});

describe("a read of the database on top of the file", () => {
  const read = snapshot({
    servers: [
      { name: "DataBaseds/2", mode: " ", level: " " },
      { name: "PowerSupply/ps1", mode: "1", level: "1" },
      { name: "TangoTest/t1", mode: "1", level: "1" },
      { name: "TangoTest/t2", mode: "1", level: "2" },
      { name: "TangoTest/t3", mode: "1", level: "0" },
      { name: "TangoTest/t4", mode: "0", level: "3" },
      { name: "Missing/m1", mode: "1", level: "1" },
      { name: "Bad name/x", mode: "1", level: "1" },
    ],
    properties: {
      StartDsPath: ["/usr/lib/tango", "/opt/site/bin"],
      InterStartupLevelWait: ["2"],
      ServerStartupTimeout: ["soon"],
      AutoRestartDuration: ["1"],
      KeepLogFiles: ["7"],
      LogFileHome: ["/var/tmp/tango"],
      MovingMaxDuration: ["120"],
      Colour: ["blue"],
    },
  });
  const { tango, config: fileConfig } = load(FILE);
  const { config, report } = tango!.compose(read);
  const spec = (name: string) => config.servers.find((s) => s.name === name);

  it("controlled servers start at their level plus the offset; level 0 and mode 0 are known, not started", () => {
    expect(config.servers.map((s) => [s.name, s.level])).toEqual([
      ["web", 1],
      ["PowerSupply/ps1", 2],
      ["DataBaseds/2", 0],
      ["TangoTest/t1", 3],
      ["TangoTest/t2", 4],
      ["TangoTest/t3", 0],
      ["TangoTest/t4", 0],
      ["Missing/m1", 3],
    ]);
    expect(config.settings.maxLevel).toBe(4);
    expect(report.servers.find((s) => s.name === "TangoTest/t4")).toMatchObject({
      controlled: false,
      startLevel: 0,
      note: "not controlled (mode 0): known, not started",
    });
    expect(report.servers.find((s) => s.name === "TangoTest/t3")).toMatchObject({ controlled: true, startLevel: 0, note: "level 0: known, not started" });
  });

  it("the file's own definition of a server wins over the database's, and the file's servers are untouched", () => {
    expect(report.servers.find((s) => s.name === "PowerSupply/ps1")).toMatchObject({
      skipped: true,
      note: "defined in the config file: the file's entry is used",
    });
    for (const name of ["web", "PowerSupply/ps1"]) expect(spec(name)).toEqual(fileConfig.servers.find((s) => s.name === name));
    expect(spec("web")!.log).toMatchObject({ keep: 3, file: null });
  });

  it("Starter properties set the database servers' defaults: StartDsPath, AutoRestartDuration, KeepLogFiles, LogFileHome", () => {
    const t1 = spec("TangoTest/t1")!;
    expect(t1.file).toBe("/usr/lib/tango/TangoTest");
    expect(t1.argv).toEqual(["/usr/lib/tango/TangoTest", "t1"]);
    expect(t1.restart.minUptimeForRestartMs).toBe(60_000);
    expect(t1.log).toMatchObject({ keep: 7, file: "/var/tmp/tango/ds.log/TangoTest_t1.log" });
    // The Starter's check: its admin device answers ping, found through the database; then pinged every 2 s.
    expect(t1.readiness).toEqual({ kind: "tango", target: { via: "database" }, intervalMs: 200 });
    expect(t1.liveness).toEqual({ intervalMs: 2000, timeoutMs: 1000, failures: 2, onUnresponsive: "report", target: { via: "database" } });
    expect(t1.env).toMatchObject({ TANGO_HOST: "db:10000", FROM_GLOB: "yes" });
    // A value that does not parse is ignored with the reason; the default stays.
    expect(t1.startTimeoutMs).toBe(30_000);
    expect(report.ignored).toEqual(
      expect.arrayContaining([
        { name: "ServerStartupTimeout", why: expect.stringMatching(/^"soon": expected/) },
        { name: "MovingMaxDuration", why: "no equivalent in starter-init" },
        { name: "Colour", why: "not a Starter property starter-init knows" },
      ]),
    );
    expect(Object.keys(report.applied).sort()).toEqual(["AutoRestartDuration", "InterStartupLevelWait", "KeepLogFiles", "LogFileHome", "StartDsPath"]);
  });

  it("global Starter properties set the supervisor's settings; what only the file decides stays", () => {
    expect(config.settings).toMatchObject({ interLevelWaitMs: 2000, logHome: "/var/tmp/tango", controlSocket: "/run/test.sock", shutdownTimeoutMs: 9000 });
    expect(fileConfig.settings.interLevelWaitMs).toBe(0);
  });

  it("overrides merge in file order: a glob, then a name", () => {
    const t2 = spec("TangoTest/t2")!;
    expect(t2.argv).toEqual(["/usr/lib/tango/TangoTest", "t2", "-v4"]);
    expect(t2.env).toMatchObject({ FROM_NAME: "yes" });
    expect(t2.env.FROM_GLOB).toBeUndefined();
  });

  it("a server that cannot run is a warning of the source, not an error of the file; a bad name is left out", () => {
    expect(report.warnings).toEqual([expect.stringMatching(/^Missing\/m1: Missing not found in \/usr\/lib\/tango:\/opt\/site\/bin/)]);
    expect(report.servers.find((s) => s.name === "Bad name/x")).toMatchObject({ skipped: true, note: expect.stringMatching(/^left out: expected a name/) });
    // DataBaseds/2 is not started, so its missing binary is only a note.
    expect(report.servers.find((s) => s.name === "DataBaseds/2")!.note).toMatch(/DataBaseds not found/);
  });

  it("the file's settings shadow the Starter's properties, Starter name or native key alike", () => {
    const shadowing = FILE.replace("settings:\n", "settings:\n  interLevelWait: 500ms\n  KeepLogFiles: 2\n");
    const { tango: source } = load(shadowing);
    const { config: shadowed, report: why } = source!.compose(read);
    expect(shadowed.settings.interLevelWaitMs).toBe(500);
    expect(shadowed.servers.find((s) => s.name === "TangoTest/t1")!.log.keep).toBe(2);
    expect(why.shadowed.sort()).toEqual(["InterStartupLevelWait", "KeepLogFiles"]);
  });

  it("NbStartupLevels: database levels above it are known but not started", () => {
    const { config: bounded, report: why } = tango!.compose(snapshot({ servers: read.servers, properties: { ...read.properties, NbStartupLevels: ["1"] } }));
    expect(bounded.servers.find((s) => s.name === "TangoTest/t2")!.level).toBe(0);
    expect(why.servers.find((s) => s.name === "TangoTest/t2")!.note).toBe("level 2 above NbStartupLevels (1): not started");
    expect(bounded.servers.find((s) => s.name === "TangoTest/t1")!.level).toBe(3);
  });

  it("StartServersAtStartup false: the database's servers keep their levels but none starts at boot", () => {
    const { config: manual, report: why } = tango!.compose(
      snapshot({ servers: read.servers, properties: { ...read.properties, StartServersAtStartup: ["false"] } }),
    );
    const t1 = manual.servers.find((s) => s.name === "TangoTest/t1")!;
    expect(t1).toMatchObject({ level: 3, autostart: false });
    expect(why.servers.find((s) => s.name === "TangoTest/t1")).toMatchObject({
      startLevel: 0,
      note: "not started at boot (StartServersAtStartup or autostart is false)",
    });
    expect(manual.servers.find((s) => s.name === "web")!.autostart).toBe(true);
  });

  it("args-forward: <Server>_<instance> appends its values to argv, one argument each; <Server>_<instance>_env adds NAME=value", () => {
    const { config: forwarded, report: why } = tango!.compose(
      snapshot({
        servers: read.servers,
        properties: {
          ...read.properties,
          tangotest_T1: ["-v4", "-ORBendPoint giop:tcp::12345"],
          TangoTest_t1_env: ["SITE=elettra", "EMPTY=", "PATHS=a=b", "not a line"],
          TangoTest_t2_env: ["FROM_NAME=from-the-database", "ONLY_DB=yes"],
          Nobody_here: ["x"],
        },
      }),
    );
    const t1 = forwarded.servers.find((s) => s.name === "TangoTest/t1")!;
    expect(t1.argv).toEqual(["/usr/lib/tango/TangoTest", "t1", "-v4", "-ORBendPoint giop:tcp::12345"]);
    expect(t1.env).toMatchObject({ SITE: "elettra", EMPTY: "", PATHS: "a=b", FROM_GLOB: "yes", TANGO_HOST: "db:10000" });
    // The file's override sets FROM_NAME too: the file's value wins; its args replace the property's.
    const t2 = forwarded.servers.find((s) => s.name === "TangoTest/t2")!;
    expect(t2.env).toMatchObject({ FROM_NAME: "yes", ONLY_DB: "yes" });
    expect(why.servers.find((s) => s.name === "TangoTest/t1")).toMatchObject({
      args: { property: "tangotest_T1", values: ["-v4", "-ORBendPoint giop:tcp::12345"] },
      env: { property: "TangoTest_t1_env" },
    });
    expect(why.warnings).toContain('TangoTest/t1: property TangoTest_t1_env: "not a line" is not NAME=value; left out');
    expect(why.ignored).toContainEqual({ name: "Nobody_here", why: "not a Starter property starter-init knows" });
    expect(why.ignored.map((i) => i.name)).not.toContain("tangotest_T1");
  });

  it("class properties of Starter lie under the device's (Tango's inheritance); AllowedAccessCmd is Tango's own", () => {
    const { config: layered, report: why } = tango!.compose(
      snapshot({
        servers: read.servers,
        properties: { KeepLogFiles: ["7"] },
        classProperties: { KeepLogFiles: ["2"], NbStartupLevels: ["1"], AllowedAccessCmd: ["DevReadLog"] },
      }),
    );
    expect(layered.servers.find((s) => s.name === "TangoTest/t1")!.log.keep).toBe(7);
    expect(layered.servers.find((s) => s.name === "TangoTest/t2")!.level).toBe(0);
    expect(why.applied).toEqual({ KeepLogFiles: ["7"], NbStartupLevels: ["1"] });
    expect(why.ignored).toEqual([]);
  });

  it("TANGO_HOST: the database servers get the source's unless their environment has one; the file's readiness wins", () => {
    const fromKey = load(`
servers: [{name: web, binary: /bin/sleep}]
settings:
  defaults: {readiness: "log:Ready to accept request"}
sources:
  tango: {tangoHost: "db1:10000,db2:10000"}
`);
    const { config: composed } = fromKey.tango!.compose(snapshot({ servers: [{ name: "TangoTest/t1", mode: "1", level: "1" }] }));
    const t1 = composed.servers.find((s) => s.name === "TangoTest/t1")!;
    expect(t1.env.TANGO_HOST).toBe("db1:10000,db2:10000");
    expect(t1.readiness.kind).toBe("log");
    expect(t1.liveness).toBeNull();
    expect(composed.servers.find((s) => s.name === "web")!.env.TANGO_HOST).toBeUndefined();
  });

  it("globs: * any run of characters, ? one", () => {
    expect(globMatches("TangoTest/*", "TangoTest/t1")).toBe(true);
    expect(globMatches("*/t?", "TangoTest/t1")).toBe(true);
    expect(globMatches("*/t?", "TangoTest/t10")).toBe(false);
    expect(globMatches("TangoTest/t1", "TangoTest/t10")).toBe(false);
  });
});
