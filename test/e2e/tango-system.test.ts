// A whole Tango control system in one FROM scratch image, under starter-init as PID 1: MariaDB
// (level 1, ready when its TCP socket accepts), DataBaseds (level 2; its preStart registers the demo's
// servers in the database), then the TangoTest servers registered there for the container's host,
// from the `tango` source, read through DataBaseds at TANGO_HOST: only DataBaseds has MariaDB's
// credentials. A PyTango client on this machine reads an attribute of every device
// through the database (TANGO_HOST, not #dbase=no), and `docker stop` stops everything in reverse.
//
//   npx vitest run --config test/vitest.config.ts test/e2e/tango-system.test.ts
//
// Needs a running engine, the Debian packages of the tango-db payload (mariadb-server, tango-db) and
// of the others (busybox-static, tango-test, python3-tango), and dist/starter-init.
// STARTER_KEEP_IMAGES=1 keeps the image.

import { IMAGE_TAG } from "./docker/env";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StartedTestContainer } from "testcontainers";
import { DATABASEDS, MARIADBD, TANGO_DB_PY } from "../fixtures/tango-db/harness";
import {
  PYTHON,
  ROOT,
  StarterContainer,
  buildImage,
  docker,
  eventually,
  imageSize,
  logRecords,
  logs,
  remove,
  removeAllStarted,
  run,
  snapshotBinary,
  state,
  untilLog,
} from "./docker/helpers";

const IMAGE = `starter-init-e2e/tango-system:${IMAGE_TAG}`;
const CONFIG = path.join(ROOT, "test", "fixtures", "tango-db", "system.yaml");
const SERVERS_CONF = path.join(ROOT, "rootfs", "tango-db", "servers.conf");
const DOCKER_GRACE_MS = 10_000;
/** The config's levelOffset: database level L runs at level L + 2, above MariaDB (1) and DataBaseds (2). */
const LEVEL_OFFSET = 2;

interface Registered {
  name: string;
  level: number;
  mode: number;
  devices: string[];
}

/** The servers the image's setup step registers (rootfs/tango-db/servers.conf). */
function registered(): Registered[] {
  return fs
    .readFileSync(SERVERS_CONF, "utf8")
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter((words) => words[0] && !words[0].startsWith("#") && words[0] !== "property" && words[0] !== "free-property")
    .map(([name, , level, mode, devices]) => ({ name, level: Number(level), mode: Number(mode), devices: devices.split(",") }));
}

const SERVERS = registered();
const STARTED = SERVERS.filter((s) => s.mode === 1 && s.level > 0);
const KNOWN_ONLY = SERVERS.filter((s) => !STARTED.includes(s));
const missing = [MARIADBD, DATABASEDS, "/usr/bin/mariadb", "/usr/lib/tango/TangoTest", PYTHON].filter((file) => !fs.existsSync(file));

type LogRecord = Record<string, unknown>;

/** What Astor does with a host: find its Starter by class, read Servers, DevStop and DevStart a server. */
const ASTOR_VIEW = `
import json, sys, time, tango
args = json.loads(sys.argv[1])
db = tango.Database()
starters = [name.lower() for name in db.command_inout("DbMySqlSelect", 'SELECT name FROM device WHERE class="Starter"')[1]]
device = tango.DeviceProxy(args["device"])
def line():
    return [l for l in device.read_attribute("Servers").value if l.startswith(args["server"] + "\\t")][0]
def until(state):
    for _ in range(300):
        if line().split("\\t")[1] == state:
            return line()
        time.sleep(0.1)
    raise RuntimeError("%s never %s: %s" % (args["server"], state, line()))
for _ in range(300):
    try:
        device.ping()
        break
    except tango.DevFailed:
        time.sleep(0.2)
servers = list(device.read_attribute("Servers").value)
device.DevStop(args["server"])
after_stop = until("FAULT")
device.DevStart(args["server"])
after_start = until("ON")
print(json.dumps({"starters": starters, "servers": servers, "afterStop": after_stop, "afterStart": after_start}))
`;

/** Reads an attribute of each device with PyTango on this machine, through the database at tangoHost. */
async function readThroughDatabase(tangoHost: string, devices: string[]): Promise<Record<string, { ok: boolean; error?: string; value?: unknown }>> {
  const result = await run("env", [`TANGO_HOST=${tangoHost}`, PYTHON, TANGO_DB_PY, "read", JSON.stringify({ devices, attribute: "double_scalar" })], {
    timeoutMs: 60_000,
  });
  if (result.code !== 0) throw new Error(`PyTango read failed (${result.code}):\n${result.stderr}`);
  return JSON.parse(result.stdout) as Record<string, { ok: boolean; error?: string }>;
}

async function statusJson(container: StartedTestContainer): Promise<{
  servers: { name: string; state: string; level: number; pid: number | null; ping: { lastRttMs: number | null; answered: number } | null }[];
  sources?: { state: string; host: string; startedAtBoot: number | null; servers: number | null }[];
}> {
  const result = await container.exec(["/sbin/starter-init", "status", "--json"]);
  if (result.exitCode !== 0) throw new Error(`status failed: ${result.output}`);
  return JSON.parse(result.stdout);
}

/** Index in the log of the first record of `kind` for `server`. */
function indexOf(records: LogRecord[], server: string, kind: string): number {
  const index = records.findIndex((r) => r.server === server && r.kind === kind);
  expect(index, `a "${kind}" record for ${server}`).toBeGreaterThan(-1);
  return index;
}

describe("a whole Tango system image: MariaDB → DataBaseds → the database's servers", () => {
  let container: StartedTestContainer | null = null;

  beforeAll(async () => {
    if (missing.length) throw new Error(`missing: ${missing.join(", ")} (mariadb-server, tango-db, tango-test, python3-tango: test/prereqs.sh)`);
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "starter-init-tango-system-"));
    try {
      const binary = await snapshotBinary(scratch);
      const started = Date.now();
      await buildImage(IMAGE, { binary, with: ["busybox", "tango", "tango-db", "starter-device"], config: CONFIG });
      console.log(`image ${IMAGE}: ${((await imageSize(IMAGE)) / 1e6).toFixed(1)} MB, assembled and built in ${Date.now() - started} ms`);
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  }, 300_000);

  afterAll(async () => {
    await removeAllStarted();
    if (!process.env.STARTER_KEEP_IMAGES) await docker(["rmi", "-f", IMAGE]);
  });

  it("boots in order, every registered device answers through the database, docker stop stops in reverse", async () => {
    const begin = Date.now();
    container = await new StarterContainer(IMAGE)
      .withWaitStrategy(untilLog(/tango source: \d+ server\(s\) of host/))
      .withStartupTimeout(120_000)
      .start();
    const id = container.getId();
    const tangoHost = `${container.getIpAddress("bridge")}:10000`;

    // Every controlled server of the database is ready; the level-0 one is known, not started.
    const status = await eventually(
      "every registered server ready",
      async () => {
        const s = await statusJson(container!);
        return STARTED.every((server) => s.servers.find((x) => x.name === server.name)?.state === "ready") ? s : undefined;
      },
      60_000,
      250,
    );
    console.log(`docker run → every server of the database ready: ${Date.now() - begin} ms`);
    const hostName = (await container.exec(["hostname"])).stdout.trim();
    expect(status.sources?.[0]).toMatchObject({ state: "up", host: hostName, startedAtBoot: STARTED.length });
    for (const server of STARTED) expect(status.servers.find((s) => s.name === server.name)?.level, server.name).toBe(server.level + LEVEL_OFFSET);
    for (const server of KNOWN_ONLY) expect(status.servers.find((s) => s.name === server.name)?.state, server.name).toBe("stopped");
    expect(status.servers.filter((s) => s.name === "mariadb" || s.name === "DataBaseds/2").map((s) => s.state)).toEqual(["ready", "ready"]);

    // Only TANGO_HOST: no MySQL credentials in the init's environment, nor in its device servers'. The
    // Starter's per-server environment property reached demo1; the device servers answer the init's pings.
    const environOf = async (pid: number) => (await container!.exec(["cat", `/proc/${pid}/environ`])).stdout.split("\0").filter(Boolean);
    const initEnviron = await environOf(1);
    expect(initEnviron.filter((entry) => entry.startsWith("MYSQL_"))).toEqual([]);
    const demo1 = status.servers.find((s) => s.name === "TangoTest/demo1")!;
    const demo1Environ = await environOf(demo1.pid!);
    expect(demo1Environ).toEqual(expect.arrayContaining(["TANGO_HOST=127.0.0.1:10000", "DEMO_SITE=container"]));
    expect(demo1Environ.filter((entry) => entry.startsWith("MYSQL_"))).toEqual([]);
    const pinged = await eventually(
      "every device server answered a ping",
      async () => {
        const s = await statusJson(container!);
        return STARTED.every((server) => (s.servers.find((x) => x.name === server.name)?.ping?.answered ?? 0) > 0) ? s : undefined;
      },
      20_000,
      250,
    );
    for (const server of STARTED) expect(pinged.servers.find((s) => s.name === server.name)?.ping?.lastRttMs, server.name).toBeGreaterThan(0);

    // A client outside reads an attribute of every device through the database server.
    const reads = await readThroughDatabase(
      tangoHost,
      SERVERS.flatMap((s) => s.devices),
    );
    for (const server of STARTED) for (const device of server.devices) expect(reads[device], `${server.name} ${device}`).toMatchObject({ ok: true });
    for (const server of KNOWN_ONLY) for (const device of server.devices) expect(reads[device]?.ok, device).toBe(false);

    // Astor's view: the host's Starter device, found by its class, lists the database's servers and
    // stops and starts one of them (the init does it).
    const astor = await run(
      "env",
      [`TANGO_HOST=${tangoHost}`, PYTHON, "-c", ASTOR_VIEW, JSON.stringify({ device: `tango/admin/${hostName}`, server: STARTED[0].name })],
      { timeoutMs: 120_000 },
    );
    expect(astor.code, astor.stderr).toBe(0);
    const view = JSON.parse(astor.stdout) as { starters: string[]; servers: string[]; afterStop: string; afterStart: string };
    expect(view.starters).toContain(`tango/admin/${hostName}`);
    expect(view.servers).toEqual(
      SERVERS.map((s) => `${s.name}\t${STARTED.includes(s) ? "ON" : "FAULT"}\t${s.mode}\t${s.level}\t${STARTED.includes(s) ? 1 : 0}`),
    );
    expect(view.afterStop).toMatch(/\tFAULT\t/);
    expect(view.afterStart).toMatch(/\tON\t/);

    // The boot order, from the init's log: MariaDB ready → DataBaseds (after its registration step)
    // ready → the database's servers, level by level.
    const boot = logRecords((await logs(id)).stderr);
    const { stdout } = await logs(id);
    expect(stdout).toMatch(new RegExp(`DataBaseds/2 \\| register: ${SERVERS.length} server\\(s\\) for host ${hostName} in tango`));
    expect(indexOf(boot, "mariadb", "ready")).toBeLessThan(indexOf(boot, "DataBaseds/2", "started"));
    const databaseReady = indexOf(boot, "DataBaseds/2", "ready");
    for (const server of STARTED) expect(indexOf(boot, server.name, "started"), server.name).toBeGreaterThan(databaseReady);
    const levels = [...new Set(STARTED.map((s) => s.level))].sort((a, b) => a - b);
    for (let i = 1; i < levels.length; i++) {
      const lowerReady = Math.max(...STARTED.filter((s) => s.level === levels[i - 1]).map((s) => indexOf(boot, s.name, "ready")));
      for (const server of STARTED.filter((s) => s.level === levels[i])) expect(indexOf(boot, server.name, "started"), server.name).toBeGreaterThan(lowerReady);
    }

    // The setup step is idempotent: run again, it leaves the database as it was.
    const count = [
      "mariadb",
      "--no-defaults",
      "-h",
      "127.0.0.1",
      "-utango",
      "-ptango",
      "tango",
      "-N",
      "-e",
      "SELECT COUNT(*) FROM device; SELECT COUNT(*) FROM server; SELECT COUNT(*) FROM property_device",
    ];
    const before = (await container.exec(count)).stdout;
    const again = await container.exec([
      "env",
      "MYSQL_HOST=127.0.0.1:3306",
      "MYSQL_USER=tango",
      "MYSQL_PASSWORD=tango",
      "/usr/lib/tango-db/register.sh",
      "/etc/tango-db/servers.conf",
    ]);
    expect(again.exitCode, again.output).toBe(0);
    expect((await container.exec(count)).stdout).toBe(before);

    // docker stop: the database's servers (highest level first), then DataBaseds, then MariaDB.
    const stopBegin = Date.now();
    await container.stop({ timeout: DOCKER_GRACE_MS, remove: false });
    const stopMs = Date.now() - stopBegin;
    console.log(`docker stop of the Tango system: ${stopMs} ms`);
    const { ExitCode } = await state(id);
    const { stderr } = await logs(id);
    await remove(id);
    container = null;
    expect(ExitCode, stderr.slice(-3000)).toBe(0);
    expect(stopMs).toBeLessThan(DOCKER_GRACE_MS - 1000);
    const records = logRecords(stderr);
    const shutdown = records.slice(records.findIndex((r) => r.kind === "shutdown"));
    expect(shutdown.length).toBeGreaterThan(1);
    const lastDeviceServerStopped = Math.max(...STARTED.map((s) => indexOf(shutdown, s.name, "stopped")));
    expect(indexOf(shutdown, "DataBaseds/2", "stopping")).toBeGreaterThan(lastDeviceServerStopped);
    expect(indexOf(shutdown, "mariadb", "stopping")).toBeGreaterThan(indexOf(shutdown, "DataBaseds/2", "stopped"));
    for (let i = levels.length - 1; i > 0; i--) {
      const upperStopped = Math.max(...STARTED.filter((s) => s.level === levels[i]).map((s) => indexOf(shutdown, s.name, "stopped")));
      for (const server of STARTED.filter((s) => s.level === levels[i - 1]))
        expect(indexOf(shutdown, server.name, "stopping"), server.name).toBeGreaterThan(upperStopped);
    }
    const exits = shutdown.filter((r) => r.kind === "exited");
    expect(exits.map((r) => r.server).sort()).toEqual(["DataBaseds/2", "mariadb", `Starter/${hostName}`, ...STARTED.map((s) => s.name)].sort());
    // The Starter device stops after the servers of the database, before DataBaseds (which it requires).
    expect(indexOf(shutdown, `Starter/${hostName}`, "stopping")).toBeGreaterThan(lastDeviceServerStopped);
    expect(indexOf(shutdown, "DataBaseds/2", "stopping")).toBeGreaterThan(indexOf(shutdown, `Starter/${hostName}`, "stopped"));
    for (const exit of exits) expect(exit, String(exit.server)).toMatchObject({ signal: null, code: 0 });
    console.log(`the Tango system, docker run → docker stop done: ${Date.now() - begin} ms`);
  }, 240_000);
});
