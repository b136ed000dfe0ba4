// The `tango` source against a real Tango database: MariaDB with the schema of Debian's tango-db, and
// DataBaseds in front of it. Servers are registered through DataBaseds with PyTango as Jive and Astor
// do (DbAddServer, the first run on the host, DbPutServerInfo), Starter properties are put on
// tango/admin/<host> and the class Starter; the built binary, as PID 1 of a PID namespace, knows the
// database only by TANGO_HOST (no MYSQL_* in its environment: DataBaseds alone talks to MariaDB),
// runs the servers WITH the database (no -nodb) with the arguments and environment of their Starter
// properties, checks them with the Starter's ping, and a PyTango client reads their attributes
// through the database.
//
//   npx vitest run --config test/vitest.config.ts test/integration/tango-db.test.ts
//
// Needs mariadb-server, tango-db (its schema files and DataBaseds), tango-test, python3-tango, and
// dist/starter-init. The database is private to the test (its own data directory, MariaDB on
// 127.0.0.1:3316, DataBaseds on 127.0.0.1:10100, both moved by STARTER_TEST_PORT_OFFSET): this
// machine's MariaDB and Tango are not touched.

import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveConnection, type TangoConnection } from "../../init/config/tango/connection";
import { asHostServersInfo, readTangoHost } from "../../init/config/tango/read";
import { sharedGiopClient } from "../../init/giop/client";
import { parseIor } from "../../init/giop/ior";
import { parseTangoHost, TangoDatabase } from "../../init/giop/tango";
import {
  DatabaseServer,
  MariaDB,
  TANGO_TEST,
  deadPort,
  freshDatadir,
  killAll,
  missingTools,
  removeTemplate,
  run,
  shortHost,
  tangoTests,
  waitForPort,
  type DemoServer,
} from "../fixtures/tango-db/harness";
import { BINARY, cleanEnv, logRecords, readChildren, sleep, startAsPid1, tempDir, type Pid1Process } from "./helpers";

// STARTER_TEST_PORT_OFFSET moves both, so two checkouts can run these tests at once.
const PORT_OFFSET = Number(process.env.STARTER_TEST_PORT_OFFSET ?? 0);
const DB_PORT = 3316 + PORT_OFFSET;
const TANGO_PORT = 10100 + PORT_OFFSET;
const HOST = shortHost();
const missing = missingTools();

type StatusJson = {
  servers: {
    name: string;
    state: string;
    starter: string;
    level: number;
    pid: number | null;
    restarts: number;
    lastExit: { reason: string; signal: string | null } | null;
    ping: { state: string; lastRttMs: number | null; failures: number; answered: number } | null;
  }[];
  sources?: {
    name: string;
    state: string;
    failures: number;
    lastErrorCode: string | null;
    lastError: string | null;
    message: string;
    servers: number | null;
    startedAtBoot: number | null;
    lastReadAgoMs: number | null;
  }[];
};

/** The init's environment: the test runner's, TANGO_HOST, and nothing of MySQL. */
function initEnv(tangoHost: string): Record<string, string> {
  const env = cleanEnv({ TANGO_HOST: tangoHost });
  for (const name of Object.keys(env)) if (name.startsWith("MYSQL_")) delete env[name];
  return env;
}

/** The connection of the `tango` source to a TANGO_HOST. */
function connectionTo(tangoHost: string): TangoConnection {
  const resolved = resolveConnection(tangoHost, {}, {});
  if ("problem" in resolved) throw new Error(resolved.problem);
  return resolved.connection;
}

/** The pid a process has in its own (the init's) PID namespace: the last NSpid of its status. */
async function nsPid(pid: number): Promise<number> {
  const line = fs
    .readFileSync(`/proc/${pid}/status`, "utf8")
    .split("\n")
    .find((l) => l.startsWith("NSpid:"))!;
  return Number(line.split(/\s+/).at(-1));
}

/** NUL-separated /proc/<pid>/cmdline or environ, as a list. */
function procList(pid: number, file: "cmdline" | "environ"): string[] {
  return fs.readFileSync(`/proc/${pid}/${file}`, "utf8").split("\0").filter(Boolean);
}

/** Runs the binary as a client of an init. */
async function cli(socket: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(BINARY, [...args, "--socket", socket], { env: initEnv(`127.0.0.1:${TANGO_PORT}`), timeoutMs: 120_000 });
}

async function status(socket: string): Promise<StatusJson> {
  const result = await cli(socket, ["status", "--json"]);
  if (result.code !== 0) throw new Error(`status failed (${result.code}): ${result.stderr}`);
  return JSON.parse(result.stdout) as StatusJson;
}

/** Polls `status` until `check` holds; the last status. */
async function statusUntil(socket: string, what: string, check: (s: StatusJson) => boolean, timeoutMs = 30_000): Promise<StatusJson> {
  const deadline = Date.now() + timeoutMs;
  let last: StatusJson | undefined;
  for (;;) {
    try {
      last = await status(socket);
      if (check(last)) return last;
    } catch {
      // The init may not answer yet.
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}; last status: ${JSON.stringify(last, null, 2)?.slice(0, 4000)}`);
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
}

function stateOf(s: StatusJson, name: string): string | undefined {
  return s.servers.find((server) => server.name === name)?.state;
}

function recordsOf(init: Pid1Process) {
  return logRecords(init.stderr());
}

/**
 * Host pids of this init's children whose command line contains `needle`: only this init's servers,
 * whatever else runs TangoTest on the machine.
 */
async function childPids(init: Pid1Process, needle: string): Promise<number[]> {
  return readChildren(await init.initPid()).filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ").includes(needle);
    } catch {
      return false;
    }
  });
}

/** The config file: one server of the file's own, the source (TANGO_HOST comes from the init's environment). */
function writeConfig(dir: string, extraSource: string[] = [], overrides: string[] = []): { file: string; socket: string } {
  const socket = path.join(dir, "control.sock");
  const file = path.join(dir, "config.yaml");
  const lines = [
    "settings:",
    `  controlSocket: ${socket}`,
    "  defaults:",
    "    startTimeout: 25s       # shadows the database's ServerStartupTimeout",
    "    stopTimeout: 5s",
    "    log: {console: false}",
    "servers:",
    "  - name: file-only",
    "    binary: /bin/sleep",
    "    args: infinity",
    "    readiness: none",
    "    level: 1",
    "sources:",
    "  tango:",
    "    levelOffset: 1",
    "    servers:",
    "      - name: TangoTest/*",
    "        env: {IT_OVERRIDE: from-the-file}",
    ...overrides.map((line) => `      ${line}`),
    ...extraSource.map((line) => `    ${line}`),
  ];
  fs.writeFileSync(file, `${lines.join("\n")}\n`);
  return { file, socket };
}

/** dba1, dba2 at level 1, dba3 at level 2 (controlled); dba4 at level 0; dba5 not controlled. */
const SERVERS: DemoServer[] = tangoTests("dba", [
  { mode: 1, level: 1 },
  { mode: 1, level: 1 },
  { mode: 1, level: 2 },
  { mode: 1, level: 0 },
  { mode: 0, level: 2 },
]);
/** Registered for another host: never this host's. */
const ELSEWHERE: DemoServer[] = tangoTests("dbother", [{ mode: 1, level: 1 }], "elsewhere-host");
const STARTED = SERVERS.filter((s) => s.mode === 1 && s.level > 0);
const deviceOf = (name: string) => SERVERS.find((s) => s.name === name)!.devices[0];

describe(`the tango source with a real Tango database (host ${HOST})`, () => {
  const dir = tempDir("tango-db");
  const logHome = path.join(dir, "logs");
  const TANGO_HOST = `127.0.0.1:${TANGO_PORT}`;
  let db: MariaDB;
  let dbServer: DatabaseServer;
  /** The fixed endpoints dba1 gets through its args-forward property (first, then after a change). */
  let endpoints: number[] = [];
  /** A directory of the test's own under `dir` (removed with it). */
  const subdir = (name: string) => fs.mkdtempSync(path.join(dir, `${name}-`));
  const forwarded = (port: number) => ["-ORBendPoint", `giop:tcp:127.0.0.1:${port}`];

  beforeAll(async () => {
    if (missing.length) throw new Error(`missing: ${missing.join(", ")} (test/prereqs.sh installs them)`);
    db = new MariaDB(await freshDatadir(path.join(dir, "data")), DB_PORT);
    await db.start();
    dbServer = new DatabaseServer(db, TANGO_PORT);
    await dbServer.start();
    await dbServer.py("register", { servers: [...SERVERS, ...ELSEWHERE] });
    endpoints = [await deadPort(), await deadPort()];
    await dbServer.py("properties", {
      device: `tango/admin/${HOST}`,
      properties: {
        StartDsPath: ["/usr/lib/tango"],
        InterStartupLevelWait: ["1"],
        ServerStartupTimeout: ["20"],
        AutoRestartDuration: ["2"],
        KeepLogFiles: ["5"],
        LogFileHome: [logHome],
        WaitForDriverStartup: ["10"],
        // The Starter's args-forward, and its environment form.
        TangoTest_dba1: forwarded(endpoints[0]),
        TangoTest_dba1_env: ["IT_FROM_DB=elettra", "IT_OVERRIDE=from-the-db"],
      },
    });
    // Tango's property inheritance: the class's under the device's own.
    await dbServer.py("class-properties", { class: "Starter", properties: { NbStartupLevels: ["3"], KeepLogFiles: ["9"] } });
  }, 180_000);

  afterAll(async () => {
    sharedGiopClient().close();
    await dbServer?.stop();
    await db?.stop();
    killAll();
    removeTemplate();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("reads what DataBaseds answers to DbGetHostServersInfo for this host, and the Starter's device and class properties", async () => {
    const connection = connectionTo(TANGO_HOST);
    for (const host of [HOST, HOST.toUpperCase(), "elsewhere-host", "no-such-host"]) {
      const snapshot = await readTangoHost(connection, host, 5000);
      const { info } = await dbServer.py<{ info: string[] }>("host-info", { host });
      expect(asHostServersInfo(snapshot), `host ${host}`).toEqual(info);
    }
    const mine = await readTangoHost(connection, HOST, 5000);
    // What was registered, and DataBaseds itself (it exported its device from this host): no server table row.
    expect(mine.servers).toEqual(
      expect.arrayContaining([
        { name: "DataBaseds/2", mode: " ", level: " " },
        ...SERVERS.map((s) => ({ name: s.name, mode: String(s.mode), level: String(s.level) })),
      ]),
    );
    expect(mine.servers.map((s) => s.name)).not.toContain(ELSEWHERE[0].name);
    const { properties } = await dbServer.py<{ properties: Record<string, string[]> }>("device-properties", { device: `tango/admin/${HOST}` });
    expect(mine.properties).toEqual(properties);
    expect(mine.properties.LogFileHome).toEqual([logHome]);
    expect(mine.classProperties).toMatchObject({ NbStartupLevels: ["3"], KeepLogFiles: ["9"] });
    expect(mine).toMatchObject({ database: `tango://${TANGO_HOST}`, answeredBy: TANGO_HOST });
  });

  it("two TANGO_HOST entries, the first one dead: read from the second", async () => {
    const dead = await deadPort();
    const snapshot = await readTangoHost(connectionTo(`127.0.0.1:${dead},${TANGO_HOST}`), HOST, 3000);
    expect(snapshot.answeredBy).toBe(TANGO_HOST);
    expect(asHostServersInfo(snapshot)).toEqual((await dbServer.py<{ info: string[] }>("host-info", { host: HOST })).info);
  });

  it("nothing there, or something that is not a Tango database: a clear error, not a hang", async () => {
    const started = Date.now();
    const dead = await deadPort();
    await expect(readTangoHost(connectionTo(`127.0.0.1:${dead}`), HOST, 2000)).rejects.toMatchObject({
      code: "ECONNREFUSED",
      message: `no database server answers at 127.0.0.1:${dead} (connection refused)`,
    });
    // MariaDB's own port: it greets in the MySQL protocol.
    await expect(readTangoHost(connectionTo(`127.0.0.1:${DB_PORT}`), HOST, 2000)).rejects.toMatchObject({
      code: "COMM_FAILURE",
      message: expect.stringMatching(/does not speak GIOP/),
    });
    // A Tango device server without a database: GIOP, but no object "database".
    const port = await deadPort();
    const child = spawn(TANGO_TEST, ["nodb", "-nodb", "-dlist", "it/nodb/1", "-ORBendPoint", `giop:tcp:127.0.0.1:${port}`], { stdio: "ignore" });
    try {
      await waitForPort(port, 20_000);
      await expect(readTangoHost(connectionTo(`127.0.0.1:${port}`), HOST, 2000)).rejects.toMatchObject({ code: "OBJECT_NOT_EXIST" });
    } finally {
      child.kill("SIGKILL");
    }
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it("plan --source tango: levels (+ offset), Starter properties, the arguments and environment of each server's properties", async () => {
    const { file } = writeConfig(subdir("plan"));
    const result = await run(BINARY, ["plan", "--source", "tango", "--json", "-c", file], { env: initEnv(TANGO_HOST) });
    expect(result.code, result.stderr).toBe(0);
    const plan = JSON.parse(result.stdout) as {
      settings: Record<string, unknown>;
      stages: {
        name: string;
        level: number;
        file: string;
        argv: string[];
        env: Record<string, string>;
        readiness: { kind: string };
        liveness: { intervalMs: number; onUnresponsive: string } | null;
        startTimeoutMs: number;
        restart: { minUptimeForRestartMs: number };
        log: { keep: number; file: string | null };
      }[][];
      sources: {
        tango: {
          applied: Record<string, string[]>;
          shadowed: string[];
          ignored: { name: string }[];
          servers: { name: string; startLevel: number; args: { property: string; values: string[] } | null }[];
        };
      };
    };
    expect(plan.stages.map((stage) => stage.map((spec) => spec.name).sort())).toEqual([
      ["file-only"],
      ["TangoTest/dba1", "TangoTest/dba2"],
      ["TangoTest/dba3"],
    ]);
    expect(plan.settings).toMatchObject({ interLevelWaitMs: 1000, logHome, maxLevel: 3 });
    const a1 = plan.stages[1].find((spec) => spec.name === "TangoTest/dba1")!;
    expect(a1).toMatchObject({
      level: 2,
      file: "/usr/lib/tango/TangoTest",
      argv: ["/usr/lib/tango/TangoTest", "dba1", ...forwarded(endpoints[0])],
      startTimeoutMs: 25_000,
      readiness: { kind: "tango" },
      liveness: { intervalMs: 2000, onUnresponsive: "report" },
    });
    expect(a1.restart.minUptimeForRestartMs).toBe(120_000);
    expect(a1.log).toMatchObject({ keep: 5, file: `${logHome}/ds.log/TangoTest_dba1.log` });
    expect(a1.env).toMatchObject({ TANGO_HOST, IT_OVERRIDE: "from-the-file", IT_FROM_DB: "elettra" });
    for (const [name, value] of Object.entries(a1.env)) expect(name, `${name}=${value}`).not.toMatch(/^MYSQL_/);
    // The file's own server is resolved with the file's settings alone.
    expect(plan.stages[0][0].log).toMatchObject({ keep: 3, file: null });
    const tango = plan.sources.tango;
    expect(tango.applied).toMatchObject({ KeepLogFiles: ["5"], NbStartupLevels: ["3"] });
    expect(Object.keys(tango.applied).sort()).toEqual([
      "AutoRestartDuration",
      "InterStartupLevelWait",
      "KeepLogFiles",
      "LogFileHome",
      "NbStartupLevels",
      "StartDsPath",
    ]);
    expect(tango.shadowed).toEqual(["ServerStartupTimeout"]);
    expect(tango.ignored.map((i) => i.name)).toEqual(["WaitForDriverStartup"]);
    expect(tango.servers.find((s) => s.name === "TangoTest/dba1")!.args).toEqual({ property: "TangoTest_dba1", values: forwarded(endpoints[0]) });
    expect(
      tango.servers
        .filter((s) => s.startLevel === 0)
        .map((s) => s.name)
        .sort(),
    ).toEqual(["DataBaseds/2", "TangoTest/dba4", "TangoTest/dba5"]);

    const text = await run(BINARY, ["plan", "--source", "tango", "-c", file], { env: initEnv(TANGO_HOST) });
    expect(text.stdout).toContain(`    exec /usr/lib/tango/TangoTest dba1 -ORBendPoint giop:tcp:127.0.0.1:${endpoints[0]}\n`);
    expect(text.stdout).toContain("    env  IT_FROM_DB=elettra\n");
    expect(text.stdout).toContain(`arguments from property TangoTest_dba1: "-ORBendPoint" "giop:tcp:127.0.0.1:${endpoints[0]}"`);
    expect(text.stdout).toContain('environment from property TangoTest_dba1_env: "IT_FROM_DB=elettra" "IT_OVERRIDE=from-the-db"');
    expect(text.stdout).toContain("TangoTest/dba4  mode 1, level 0 → not started (level 0: known, not started)");
    expect(text.stdout).toContain("TangoTest/dba5  mode 0, level 2 → not started (not controlled (mode 0): known, not started)");
    const unread = await run(BINARY, ["plan", "-c", file], { env: initEnv(TANGO_HOST) });
    expect(unread.stdout).toContain("sources.tango: not read (plan --source tango reads the database)");
    expect(unread.stdout).not.toContain("TangoTest/dba1");

    // No database there: plan says so and fails.
    const dead = await deadPort();
    const down = await run(BINARY, ["plan", "--source", "tango", "-c", file], { env: initEnv(`127.0.0.1:${dead}`) });
    expect(down.code).toBe(1);
    expect(down.stderr).toBe(
      `starter-init: tango source (tango://127.0.0.1:${dead}, host ${HOST}): no database server answers at 127.0.0.1:${dead} (connection refused)\n`,
    );
  });

  it("as PID 1 with only TANGO_HOST: the database's servers run with their properties' arguments and environment, checked by ping; a changed property restarts that server alone", async () => {
    const runDir = subdir("run");
    const { file, socket } = writeConfig(runDir);
    const init = startAsPid1(["--log-format", "json", "-c", file], { env: initEnv(TANGO_HOST) });
    try {
      const up = await statusUntil(socket, "the database's servers are ready", (s) => STARTED.every((server) => stateOf(s, server.name) === "ready"));
      expect(up.sources?.[0]).toMatchObject({ name: "tango", state: "up", failures: 0, servers: SERVERS.length + 1, startedAtBoot: STARTED.length });
      for (const name of ["TangoTest/dba4", "TangoTest/dba5", "DataBaseds/2"]) expect(stateOf(up, name), name).toBe("stopped");
      expect(up.servers.find((s) => s.name === "TangoTest/dba3")!.level).toBe(3);
      // The init's environment: TANGO_HOST, no credentials of the database.
      const initEnviron = procList(await init.initPid(), "environ");
      expect(initEnviron).toContain(`TANGO_HOST=${TANGO_HOST}`);
      expect(initEnviron.filter((entry) => entry.startsWith("MYSQL_"))).toEqual([]);

      // args-forward and its environment form reached the process.
      const [a1] = await childPids(init, "TangoTest dba1 ");
      expect(procList(a1, "cmdline")).toEqual(["/usr/lib/tango/TangoTest", "dba1", ...forwarded(endpoints[0])]);
      const environ = procList(a1, "environ");
      expect(environ).toEqual(expect.arrayContaining([`TANGO_HOST=${TANGO_HOST}`, "IT_FROM_DB=elettra", "IT_OVERRIDE=from-the-file"]));
      expect(environ.filter((entry) => entry.startsWith("MYSQL_"))).toEqual([]);
      // ...and the server used them: its admin device was exported on that endpoint.
      const imported1 = await new TangoDatabase(sharedGiopClient(), parseTangoHost(TANGO_HOST)).importDevice("dserver/TangoTest/dba1");
      expect(imported1).toMatchObject({ exported: true, pid: await nsPid(a1) });
      expect(parseIor(imported1.ior).iiop).toMatchObject({ host: "127.0.0.1", port: endpoints[0] });

      // Readiness was the Starter's ping; the liveness check pings every 2 s and status shows the round trip.
      const pinged = await statusUntil(
        socket,
        "a ping answered",
        (s) => STARTED.every((server) => (s.servers.find((x) => x.name === server.name)?.ping?.answered ?? 0) > 0),
        15_000,
      );
      for (const server of STARTED) {
        const status = pinged.servers.find((s) => s.name === server.name)!;
        expect(status, server.name).toMatchObject({ state: "ready", starter: "ON", ping: { state: "responsive", failures: 0 } });
        expect(status.ping!.lastRttMs, server.name).toBeGreaterThan(0);
      }
      const table = await cli(socket, ["status"]);
      // The ping column: "0.59 ms", or "13 ms" when a loaded machine made it 10 ms or more.
      expect(table.stdout).toMatch(/TangoTest\/dba1\s+ready\s+ON\s+\d+\s+2\s+\S+( \S+)?\s+\d+\s+\S+ \S+\s+\d+(\.\d\d)? ms/);

      // A client reads through the database (TANGO_HOST, no #dbase=no): the started devices answer, the others do not.
      const reads = await dbServer.py<Record<string, { ok: boolean; error?: string }>>("read", {
        devices: SERVERS.map((s) => s.devices[0]),
        attribute: "double_scalar",
      });
      for (const server of STARTED) expect(reads[server.devices[0]], server.name).toMatchObject({ ok: true });
      for (const name of ["TangoTest/dba4", "TangoTest/dba5"]) expect(reads[deviceOf(name)].ok, name).toBe(false);

      // InterStartupLevelWait (1 s, from the database): level 3 forked at least 1 s after level 2 was ready.
      const records = recordsOf(init);
      const at = (name: string, kind: string) => records.find((r) => r.server === name && r.kind === kind)?.time as number;
      const level2Ready = Math.max(at("TangoTest/dba1", "ready"), at("TangoTest/dba2", "ready"));
      expect(at("TangoTest/dba3", "started") - level2Ready).toBeGreaterThanOrEqual(1000 - 5);
      // LogFileHome (from the database): the Starter's log names.
      expect(fs.readFileSync(path.join(logHome, "ds.log", "TangoTest_dba1.log"), "utf8")).toContain("Ready to accept request");
      expect(init.stdout()).toMatch(/tango source: \d+ server\(s\) of host .*: 3 started at boot, 3 known, not started/);

      // Level 0 is started by hand, as with the Starter's DevStart.
      const started = await cli(socket, ["start", "TangoTest/dba4"]);
      expect(started.code, started.stdout + started.stderr).toBe(0);
      expect(
        (await dbServer.py<Record<string, { ok: boolean }>>("read", { devices: [deviceOf("TangoTest/dba4")], attribute: "double_scalar" }))[
          deviceOf("TangoTest/dba4")
        ].ok,
      ).toBe(true);

      // The site changes dba1's arguments in the database: a reload restarts dba1, and nothing else.
      const before = new Map<string, number[]>();
      for (const server of STARTED) before.set(server.name, await childPids(init, `TangoTest ${server.name.split("/")[1]} `));
      await dbServer.py("properties", { device: `tango/admin/${HOST}`, properties: { TangoTest_dba1: forwarded(endpoints[1]) } });
      const changed = await cli(socket, ["reload", "--json"]);
      expect(changed.code, changed.stdout + changed.stderr).toBe(0);
      expect(JSON.parse(changed.stdout)).toMatchObject({ added: [], removed: [], changed: ["TangoTest/dba1"] });
      await statusUntil(socket, "dba1 ready again", (s) => stateOf(s, "TangoTest/dba1") === "ready");
      const [a1Again] = await childPids(init, "TangoTest dba1 ");
      expect(a1Again).not.toBe(a1);
      expect(procList(a1Again, "cmdline")).toEqual(["/usr/lib/tango/TangoTest", "dba1", ...forwarded(endpoints[1])]);
      for (const server of STARTED.filter((s) => s.name !== "TangoTest/dba1")) {
        expect(await childPids(init, `TangoTest ${server.name.split("/")[1]} `), server.name).toEqual(before.get(server.name));
      }

      // Astor adds a server and removes another; reload reads the database again.
      const added = tangoTests("dbb", [{ mode: 1, level: 1 }]);
      await dbServer.py("register", { servers: added });
      await dbServer.py("delete", { servers: ["TangoTest/dba2"] });
      expect(await childPids(init, "TangoTest dba2 ")).toHaveLength(1);
      const dry = await cli(socket, ["reload", "--dry-run", "--json"]);
      expect(dry.code, dry.stdout + dry.stderr).toBe(0);
      expect(JSON.parse(dry.stdout)).toMatchObject({ dryRun: true, added: ["TangoTest/dbb1"], removed: ["TangoTest/dba2"] });
      expect(stateOf(await status(socket), "TangoTest/dbb1")).toBeUndefined();
      const reloaded = await cli(socket, ["reload", "--json"]);
      expect(reloaded.code, reloaded.stdout + reloaded.stderr).toBe(0);
      const outcome = JSON.parse(reloaded.stdout) as { added: string[]; removed: string[]; outcomes: { name: string; ok: boolean }[] };
      expect(outcome.added).toEqual(["TangoTest/dbb1"]);
      expect(outcome.removed).toEqual(["TangoTest/dba2"]);
      expect(
        outcome.outcomes.every((o) => o.ok),
        JSON.stringify(outcome.outcomes),
      ).toBe(true);
      const after = await status(socket);
      expect(stateOf(after, "TangoTest/dbb1")).toBe("ready");
      expect(stateOf(after, "TangoTest/dba2")).toBeUndefined();
      expect(await childPids(init, "TangoTest dba2 ")).toEqual([]);
      expect((await dbServer.py<Record<string, { ok: boolean }>>("read", { devices: ["it/dbb/1"], attribute: "double_scalar" }))["it/dbb/1"].ok).toBe(true);

      await init.signal("SIGTERM");
      const result = await init.result;
      expect(result.code, result.stderr.slice(-3000)).toBe(0);
      // Reverse order: level 3 (a3) has stopped before level 2 (a1, b1) is signalled, and those before level 1.
      const final = recordsOf(init);
      const shutdownAt = final.findIndex((r) => r.kind === "shutdown");
      const after_ = final.slice(shutdownAt);
      const index = (name: string, kind: string) => after_.findIndex((r) => r.server === name && r.kind === kind);
      expect(index("TangoTest/dba3", "stopped")).toBeLessThan(index("TangoTest/dba1", "stopping"));
      expect(index("TangoTest/dba1", "stopped")).toBeLessThan(index("file-only", "stopping"));
      // Every server ended by itself on its stop signal (TangoTest exits 0 on SIGTERM).
      const exits = after_.filter((r) => r.kind === "exited" && String(r.server).startsWith("TangoTest/"));
      expect(exits.map((r) => r.server).sort()).toEqual(["TangoTest/dba1", "TangoTest/dba3", "TangoTest/dba4", "TangoTest/dbb1"]);
      for (const exit of exits) expect(exit, String(exit.server)).toMatchObject({ code: 0, signal: null });
    } finally {
      init.unshare.kill("SIGKILL");
      // Back to the registration and properties the other tests expect.
      await dbServer.py("delete", { servers: ["TangoTest/dbb1"] }).catch(() => undefined);
      await dbServer.py("register", { servers: SERVERS.filter((s) => s.name === "TangoTest/dba2") }).catch(() => undefined);
      await dbServer.py("properties", { device: `tango/admin/${HOST}`, properties: { TangoTest_dba1: forwarded(endpoints[0]) } }).catch(() => undefined);
    }
  }, 180_000);

  it("a hung server (SIGSTOP) is unresponsive (MOVING) within 3 ping periods and ready after SIGCONT; with onUnresponsive: restart it is restarted", async () => {
    const runDir = subdir("hung");
    const { file, socket } = writeConfig(
      runDir,
      [],
      [
        "- name: TangoTest/dba2",
        "  liveness: {onUnresponsive: restart}",
        "  stopTimeout: 2s",
        "  restart: {minUptime: 0}   # the database's AutoRestartDuration (2 min) would leave it failed",
      ],
    );
    const init = startAsPid1(["--log-format", "json", "-c", file], { env: initEnv(TANGO_HOST) });
    const stopped: number[] = [];
    try {
      await statusUntil(socket, "dba1 and dba2 answer ping", (s) =>
        ["TangoTest/dba1", "TangoTest/dba2"].every((name) => (s.servers.find((x) => x.name === name)?.ping?.answered ?? 0) > 0),
      );
      const [a1] = await childPids(init, "TangoTest dba1 ");
      const [a2] = await childPids(init, "TangoTest dba2 ");
      // status gives pids as the init sees them, in its PID namespace.
      const [a1Pid, a2Pid] = [await nsPid(a1), await nsPid(a2)];
      const stoppedAt = Date.now();
      for (const pid of [a1, a2]) {
        process.kill(pid, "SIGSTOP");
        stopped.push(pid);
      }
      const hung = await statusUntil(socket, "dba1 unresponsive", (s) => stateOf(s, "TangoTest/dba1") === "unresponsive", 20_000);
      const a1Status = hung.servers.find((s) => s.name === "TangoTest/dba1")!;
      expect(a1Status).toMatchObject({ state: "unresponsive", starter: "MOVING", pid: a1Pid, ping: { state: "unresponsive" } });
      expect(a1Status.ping!.failures).toBeGreaterThanOrEqual(2);
      // When the init saw it (its own log record), from the moment the process was stopped.
      const record = recordsOf(init).find((r) => r.server === "TangoTest/dba1" && r.kind === "unresponsive")!;
      const detectedMs = (record.time as number) - stoppedAt;
      console.log(`SIGSTOP → unresponsive (MOVING): ${detectedMs} ms (ping every 2000 ms, 1000 ms to answer, 2 failures)`);
      expect(detectedMs).toBeLessThanOrEqual(3 * 2000 + 1000);
      expect(init.stdout()).toContain("[MOVING] TangoTest/dba1 unresponsive (MOVING): 2 ping(s) in a row failed");
      const ready = await cli(socket, ["ready"]);
      expect(ready.code).toBe(1);
      expect(ready.stdout).toContain("TangoTest/dba1");

      process.kill(a1, "SIGCONT");
      const back = await statusUntil(socket, "dba1 ready again", (s) => stateOf(s, "TangoTest/dba1") === "ready", 15_000);
      expect(back.servers.find((s) => s.name === "TangoTest/dba1")).toMatchObject({ state: "ready", starter: "ON", pid: a1Pid, restarts: 0 });
      expect(init.stdout()).toContain("[  OK  ] TangoTest/dba1 answers ping again");

      // dba2 (onUnresponsive: restart): SIGABRT, still stopped, SIGKILL after 2 s, then a new process.
      const restarted = await statusUntil(
        socket,
        "dba2 restarted",
        (s) => {
          const a2Status = s.servers.find((x) => x.name === "TangoTest/dba2");
          return a2Status?.state === "ready" && a2Status.pid !== a2Pid;
        },
        40_000,
      );
      expect(restarted.servers.find((s) => s.name === "TangoTest/dba2")).toMatchObject({
        restarts: 1,
        lastExit: { signal: "SIGKILL" },
      });
      const records = recordsOf(init).filter((r) => r.server === "TangoTest/dba2");
      expect(records.find((r) => r.kind === "restarting")).toMatchObject({ state: "backoff" });
      expect(records.find((r) => r.kind === "stopping" && String(r.msg).includes("SIGABRT"))).toBeDefined();
      expect(records.map((r) => r.kind)).toEqual(expect.arrayContaining(["unresponsive", "stopping", "stop-timeout", "exited", "restarting", "ready"]));

      await init.signal("SIGTERM");
      expect((await init.result).code).toBe(0);
    } finally {
      for (const pid of stopped) {
        try {
          process.kill(pid, "SIGCONT");
        } catch {
          // Gone.
        }
      }
      init.unshare.kill("SIGKILL");
    }
  }, 120_000);

  it("database down at boot: the file's servers run, status says why, it retries, and recovers when the database is back", async () => {
    const runDir = subdir("down");
    const { file, socket } = writeConfig(runDir, ["connectTimeout: 1s", "retry: {initialDelay: 2s, maxDelay: 2s}"]);
    await dbServer.stop();
    await db.stop();
    const init = startAsPid1(["--log-format", "json", "-c", file], { env: initEnv(TANGO_HOST) });
    try {
      const down = await statusUntil(socket, "the source is down", (s) => s.sources?.[0]?.state === "down" && stateOf(s, "file-only") === "ready");
      const source = down.sources![0];
      expect(source).toMatchObject({ state: "down", lastErrorCode: "ECONNREFUSED", lastReadAgoMs: null, servers: null });
      expect(source.message).toMatch(
        new RegExp(
          `^database not answering: no database server answers at 127\\.0\\.0\\.1:${TANGO_PORT} \\(connection refused\\) \\(\\d+ failed attempt\\(s\\)\\); next attempt in \\d s; nothing from the database runs until it answers`,
        ),
      );
      expect(down.servers.map((s) => s.name)).toEqual(["file-only"]);
      // The human status says it too, and `ready` is not ready while the database's servers are unknown.
      const text = await cli(socket, ["status"]);
      expect(text.stdout).toMatch(new RegExp(`source tango \\(host .*, tango://127\\.0\\.0\\.1:${TANGO_PORT}\\): DOWN, database not answering`));
      const ready = await cli(socket, ["ready"]);
      expect(ready.code).toBe(1);
      expect(ready.stdout).toContain("sources.tango (starting)");

      // It keeps trying: the count of failed attempts grows. Just after one fails, the database comes back.
      const failures = source.failures;
      const again = await statusUntil(socket, "another failed attempt", (s) => (s.sources?.[0]?.failures ?? 0) > failures, 10_000);
      expect(again.sources![0].state).toBe("down");
      await db.start();
      await dbServer.start();
      const recovered = await statusUntil(
        socket,
        "recovered",
        (s) => s.sources?.[0]?.state === "up" && STARTED.every((server) => stateOf(s, server.name) === "ready"),
        30_000,
      );
      expect(recovered.sources![0]).toMatchObject({ failures: 0, lastError: null, startedAtBoot: STARTED.length });
      expect((await cli(socket, ["ready"])).code).toBe(0);
      const reads = await dbServer.py<Record<string, { ok: boolean }>>("read", { devices: STARTED.map((s) => s.devices[0]), attribute: "double_scalar" });
      for (const server of STARTED) expect(reads[server.devices[0]], server.name).toMatchObject({ ok: true });
      expect(init.stdout()).toContain("[ WAIT ] tango source: database not answering");

      // Down again: a reload keeps the servers of the last read (nothing is stopped because the
      // database is unreachable), says so, and the source recovers in the background. The servers
      // stay ready: their admin devices still answer ping (their addresses are known).
      const pids = new Map<string, number[]>();
      for (const server of STARTED) pids.set(server.name, await childPids(init, `TangoTest ${server.name.split("/")[1]} `));
      await dbServer.stop();
      await db.kill();
      const reloaded = await cli(socket, ["reload", "--json"]);
      expect(reloaded.code, reloaded.stderr).toBe(0);
      const outcome = JSON.parse(reloaded.stdout) as { added: string[]; removed: string[]; changed: string[]; notes?: string[] };
      expect(outcome).toMatchObject({ added: [], removed: [], changed: [] });
      expect(outcome.notes?.join("\n")).toMatch(/tango source: database not answering: .*keeping the \d+ server\(s\) read/);
      await sleep(4500);
      const stillDown = await status(socket);
      expect(stillDown.sources![0].state).toBe("down");
      for (const server of STARTED) {
        expect(stateOf(stillDown, server.name), server.name).toBe("ready");
        expect(pids.get(server.name), server.name).toHaveLength(1);
        expect(await childPids(init, `TangoTest ${server.name.split("/")[1]} `), server.name).toEqual(pids.get(server.name));
      }
      await db.start();
      await dbServer.start();
      await statusUntil(socket, "up again", (s) => s.sources?.[0]?.state === "up", 15_000);

      await init.signal("SIGTERM");
      expect((await init.result).code).toBe(0);
    } finally {
      init.unshare.kill("SIGKILL");
      if (!db.running) await db.start();
      await dbServer.start().catch(() => undefined);
    }
  }, 120_000);

  it("as PID 1 with two TANGO_HOST entries, the first one dead: everything is read from the second, the servers run with both", async () => {
    const dead = await deadPort();
    const tangoHost = `127.0.0.1:${dead},${TANGO_HOST}`;
    const { file, socket } = writeConfig(subdir("two"));
    const init = startAsPid1(["--log-format", "json", "-c", file], { env: initEnv(tangoHost) });
    try {
      const up = await statusUntil(socket, "the database's servers are ready", (s) => STARTED.every((server) => stateOf(s, server.name) === "ready"));
      expect(up.sources?.[0]).toMatchObject({ state: "up", database: `tango://${tangoHost}`, startedAtBoot: STARTED.length });
      const [a3] = await childPids(init, "TangoTest dba3 ");
      expect(procList(a3, "environ")).toContain(`TANGO_HOST=${tangoHost}`);
      await init.signal("SIGTERM");
      expect((await init.result).code).toBe(0);
    } finally {
      init.unshare.kill("SIGKILL");
    }
  }, 120_000);
});
