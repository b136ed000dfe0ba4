// starter-init's Tango device of class Starter (sources.tango.device: true) against Debian's real
// Starter (tango-starter): one private Tango database (MariaDB + DataBaseds), the same registered
// servers, the same PyTango client doing what Astor does (test/fixtures/starter-device/astor_client.py),
// run once against each. What the two answer must agree once what depends on timing is normalised;
// every normalisation below says what it hides and why.
//
// Then, with starter-init only: the device killed with -9 is restarted, the other servers keep their
// pids, and a subscribed client gets events again.
//
//   STARTER_TEST_PORT_OFFSET=200 npx vitest run --config test/vitest.config.ts test/integration/starter-device.test.ts
//
// Needs mariadb-server, tango-db, tango-test, python3-tango, tango-starter, tini, and dist/starter-init.

import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DatabaseServer, MariaDB, freshDatadir, killAll, missingTools, removeTemplate, tangoTests } from "../fixtures/tango-db/harness";
import {
  REAL_STARTER,
  TINI,
  eventually,
  runAstorClient,
  startInitAsHost,
  startRealStarter,
  writeDeviceConfig,
  type AstorRecord,
  type AstorStep,
} from "../fixtures/starter-device/harness";
import { PYTHON } from "./tango";
import { ROOT, cleanEnv, readChildren, run, tempDir, type Pid1Process } from "./helpers";

const PORT_OFFSET = Number(process.env.STARTER_TEST_PORT_OFFSET ?? 0);
const DB_PORT = 3316 + PORT_OFFSET;
const TANGO_PORT = 10100 + PORT_OFFSET;
/** The host both Starters serve (each runs in a UTS namespace with this name). */
const HOST = "sdiff";
const DEVICE = `tango/admin/${HOST}`;

/** sd1, sd2 at level 1 and sd3 at level 2, controlled; sd4 known but not controlled. */
const SERVERS = tangoTests(
  "sd",
  [
    { mode: 1, level: 1 },
    { mode: 1, level: 1 },
    { mode: 1, level: 2 },
    { mode: 0, level: 0 },
  ],
  HOST,
  "sdiff",
);
/** Registered by the client during the run (Astor's "Start New"). */
const NEW = { name: "TangoTest/sd5", class: "TangoTest", device: "sdiff/sd/5", level: 2 };
const CLIENT_ARGS = { host: HOST, levels: [1, 2], one: "TangoTest/sd1", uncontrolled: "TangoTest/sd4", new: NEW, timeout: 90, staysDownS: 5 };

const missing = [...missingTools(), ...[REAL_STARTER, TINI].filter((file) => !fs.existsSync(file)).map((file) => `${file} (tango-starter, tini)`)];

// ---- normalising what depends on timing ----------------------------------------------------------

type Json = unknown;

/** "dd/mm/yy   hh:mm:ss", the Starter's date format. */
const STARTER_DATE = /^\d\d\/\d\d\/\d\d {3}\d\d:\d\d:\d\d$/;

function stepsNamed(record: AstorRecord, name: string): AstorStep[] {
  return record.steps.filter((s) => s.step === name);
}

/**
 * One run's record with what depends on timing or on the run's directories taken out:
 * - times (`t`) of steps and events;
 * - the LogFileHome of the run (each run logs in a directory of its own) becomes <LogFileHome>;
 * - DevReadLog of a server: the file name and the date format of its header are compared, not what the
 *   server wrote (the Starter keeps a server's stderr only; starter-init keeps stdout and stderr, time-
 *   stamped, with its own notes);
 * - the Starter log: each line's date format, then the messages as a sorted list (servers of a level
 *   start one after the other under the Starter, together under starter-init);
 * - the statistics: the times become T (or -1), the lines a sorted list (same reason);
 * - change events: State as the set of values seen; Servers as each server's sequence of states with
 *   MOVING left out and repeats collapsed (the Starter sees a state only when its 1 s polling and 2 s
 *   ping happen to fall in it; starter-init reports every transition, MOVING included);
 * - DevReadLog's declared output type: ConstDevString for the Starter, DevString for the device
 *   (PyTango's high-level server API has no ConstDevString; clients receive a string either way).
 */
function normalise(record: AstorRecord, logHome: string): Json {
  const text = JSON.stringify(record.steps).split(logHome).join("<LogFileHome>");
  const steps = (JSON.parse(text) as AstorStep[]).map((step) => {
    const { t: _t, ...rest } = step;
    if (step.step === "interface") {
      const commands = rest.commands as { name: string; out: string }[];
      for (const command of commands) if (command.name === "DevReadLog") command.out = "DevString|ConstDevString";
    }
    if (step.step === "DevReadLog") {
      const result = rest.result as { ok: boolean; value?: string };
      const [file, date] = (result.value ?? "").split("\n");
      rest.result = { ok: result.ok, file, dateFormat: STARTER_DATE.test(date ?? "") };
    }
    if (step.step === "DevReadLog-Starter") {
      const lines = ((rest.result as { value?: string }).value ?? "").split("\n").filter(Boolean);
      rest.result = {
        datesOk: lines.every((line) => STARTER_DATE.test(line.split("\t")[0])),
        messages: lines.map((line) => line.split("\t").slice(1).join("\t")).sort(),
      };
    }
    if (step.step.startsWith("DevReadLog-Statistics")) {
      const lines = ((rest.result as { value?: string }).value ?? "").split("\n").filter(Boolean);
      rest.result = lines
        .map((line) => {
          const [name, state, startedAt, failedAt, auto] = line.split("\t");
          const time = (value: string) => (value === "-1" ? "-1" : /^\d+$/.test(value) ? "T" : value);
          return [name, state, time(startedAt), time(failedAt), auto].join("\t");
        })
        .sort();
    }
    return rest;
  });
  const stateValues = [...new Set(record.events.filter((e) => e.attr === "state").map((e) => String(e.value)))].sort();
  const perServer: Record<string, string[]> = {};
  const serverEvents = record.events.filter((e) => e.attr === "servers" && Array.isArray(e.value));
  for (const event of serverEvents) {
    for (const line of event.value as string[]) {
      const [name, state] = line.split("\t");
      const seen = (perServer[name] ??= []);
      if (state !== "MOVING" && seen.at(-1) !== state) seen.push(state);
    }
  }
  // A server that appears during the run ("Start New") is started at once: whether it is first seen
  // not running depends on when the Starter's ping thread (or the device's batching of the init's
  // events) first looks at it.
  const first = new Set(((serverEvents[0]?.value as string[] | undefined) ?? []).map((line) => line.split("\t")[0]));
  for (const [name, states] of Object.entries(perServer)) if (!first.has(name) && states[0] === "FAULT") states.shift();
  return { steps, events: { state: stateValues, servers: perServer } };
}

// ---- the test ------------------------------------------------------------------------------------

describe(`the Starter device against Debian's Starter (host ${HOST}, one Tango database)`, () => {
  const dir = tempDir("starter-device");
  let db: MariaDB;
  let database: DatabaseServer;
  const records: Record<string, { raw: AstorRecord; logHome: string }> = {};

  /** The host's registration as both runs start from it: the servers, the Starter, its properties. */
  async function resetRegistration(logHome: string): Promise<void> {
    // As on a host that ran its Starter before: the Starter creates ds.log only after it logged its
    // start ("Starter startup" would be lost), and never LogFileHome itself.
    fs.mkdirSync(path.join(logHome, "ds.log"), { recursive: true });
    await database.py("delete", { servers: [NEW.name] });
    await database.py("register", {
      servers: [...SERVERS, { name: `Starter/${HOST}`, class: "Starter", devices: [DEVICE], host: HOST, mode: 0, level: 0 }],
    });
    await database.py("properties", {
      device: DEVICE,
      properties: { StartDsPath: ["/usr/lib/tango"], StartServersAtStartup: ["false"], LogFileHome: [logHome] },
    });
  }

  beforeAll(async () => {
    if (missing.length) throw new Error(`missing: ${missing.join(", ")} (test/prereqs.sh installs them)`);
    db = new MariaDB(await freshDatadir(path.join(dir, "data")), DB_PORT);
    await db.start();
    database = new DatabaseServer(db, TANGO_PORT);
    await database.start();
  }, 180_000);

  afterAll(async () => {
    await database?.stop();
    await db?.stop();
    killAll();
    removeTemplate();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("Debian's Starter: the Astor client's run", async () => {
    const runDir = fs.mkdtempSync(path.join(dir, "starter-"));
    const logHome = path.join(runDir, "logs");
    await resetRegistration(logHome);
    const starter = startRealStarter(database, runDir, HOST);
    try {
      const raw = await runAstorClient(database.tangoHost, CLIENT_ARGS);
      expect(raw.failure, `${raw.failure}\nStarter output:\n${starter.output().slice(-3000)}`).toBeUndefined();
      records.starter = { raw, logHome };
    } finally {
      await starter.stop();
    }
  }, 400_000);

  it("starter-init's device: the same run; it answers as the Starter does", async () => {
    const runDir = fs.mkdtempSync(path.join(dir, "init-"));
    const logHome = path.join(runDir, "logs");
    await resetRegistration(logHome);
    const { file } = writeDeviceConfig(runDir, database);
    const init = startInitAsHost(runDir, HOST, file);
    try {
      const raw = await runAstorClient(database.tangoHost, CLIENT_ARGS);
      expect(raw.failure, `${raw.failure}\ninit output:\n${(init.stdout() + init.stderr()).slice(-4000)}`).toBeUndefined();
      records.init = { raw, logHome };
      await init.signal("SIGTERM");
      const result = await init.result;
      expect(result.code, result.stderr.slice(-3000)).toBe(0);
    } finally {
      init.unshare.kill("SIGKILL");
    }
    const { raw } = records.init;
    // Facts of the device's own run, beside the comparison: commands answer at once, a subscribed
    // client got events, "Start New" restarted nothing.
    for (const step of raw.steps) {
      const result = step.result as { within3s?: boolean } | undefined;
      if (result?.within3s !== undefined) expect(result.within3s, `${step.step} ${JSON.stringify(step)}`).toBe(true);
    }
    expect(raw.events.filter((e) => e.attr === "servers").length).toBeGreaterThan(5);
    expect(stepsNamed(raw, "StartNew")[0]).toMatchObject({ othersKeptPids: true, line: ["ON", "1", "2", "1"] });
    expect(stepsNamed(raw, "find")[0]).toMatchObject({ devices: [DEVICE] });
  }, 400_000);

  it("the two runs agree, once what depends on timing is normalised", () => {
    expect(records.starter, "the Starter's run").toBeDefined();
    expect(records.init, "the device's run").toBeDefined();
    // Both records, raw, for a person who wants to see what the normalisation took out.
    fs.mkdirSync(path.join(ROOT, "build"), { recursive: true });
    for (const [name, { raw }] of Object.entries(records))
      fs.writeFileSync(path.join(ROOT, "build", `starter-device-${name}.json`), JSON.stringify(raw, null, 1));
    const starter = normalise(records.starter.raw, records.starter.logHome);
    const init = normalise(records.init.raw, records.init.logHome);
    expect(init).toEqual(starter);
  });
});

describe("the Starter device under starter-init: its crash touches nothing else", () => {
  const dir = tempDir("starter-device-crash");
  let db: MariaDB;
  let database: DatabaseServer;
  let init: Pid1Process | null = null;

  beforeAll(async () => {
    if (missing.length) throw new Error(`missing: ${missing.join(", ")} (test/prereqs.sh installs them)`);
    db = new MariaDB(await freshDatadir(path.join(dir, "data")), DB_PORT);
    await db.start();
    database = new DatabaseServer(db, TANGO_PORT);
    await database.start();
    await database.py("register", { servers: SERVERS });
    await database.py("properties", { device: DEVICE, properties: { StartDsPath: ["/usr/lib/tango"], LogFileHome: [path.join(dir, "logs")] } });
  }, 180_000);

  afterAll(async () => {
    init?.unshare.kill("SIGKILL");
    await database?.stop();
    await db?.stop();
    killAll();
    removeTemplate();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Host pids of the init's children by their command line (the device: python3 …starter-device.py). */
  async function children(process: Pid1Process): Promise<Map<string, number>> {
    const found = new Map<string, number>();
    for (const pid of readChildren(await process.initPid())) {
      try {
        const argv = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
        found.set(argv[0].endsWith("python3") ? "device" : argv.slice(0, 2).join(" "), pid);
      } catch {
        // Gone meanwhile.
      }
    }
    return found;
  }

  it("kill -9 of the device: restarted, the servers keep their pids, a subscribed client gets events again", async () => {
    const { file } = writeDeviceConfig(dir, database);
    init = startInitAsHost(dir, HOST, file);
    const up = await eventually(
      "the device and the controlled servers run",
      async () => {
        const found = await children(init!);
        return found.has("device") && SERVERS.filter((s) => s.mode === 1).every((s) => found.has(`/usr/lib/tango/TangoTest ${s.name.split("/")[1]}`))
          ? found
          : undefined;
      },
      60_000,
    );
    // A client subscribed to Servers and State the whole time (stateless: it subscribes again by
    // itself when the device comes back): one JSON line per event it gets.
    const watcher = `
import json, sys, time, tango
d = tango.DeviceProxy("${DEVICE}")
def cb(ev):
    value = None
    if not ev.err:
        raw = ev.attr_value.value
        value = str(raw) if isinstance(raw, tango._tango.DevState) else list(raw or [])
    print(json.dumps({"t": time.time(), "attr": ev.attr_name.rsplit("/", 1)[-1].lower(), "err": bool(ev.err), "value": value}), flush=True)
for attr in ("State", "Servers"):
    d.subscribe_event(attr, tango.EventType.CHANGE_EVENT, cb, stateless=True)
print("subscribed", flush=True)
sys.stdin.read()
`;
    const client = spawn(PYTHON, ["-c", watcher], { env: cleanEnv({ TANGO_HOST: database.tangoHost }), stdio: ["pipe", "pipe", "pipe"] });
    let clientOut = "";
    client.stdout.on("data", (chunk: Buffer) => (clientOut += chunk.toString()));
    client.stderr.on("data", (chunk: Buffer) => (clientOut += chunk.toString()));
    const events = () =>
      clientOut
        .split("\n")
        .filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line) as { t: number; attr: string; err: boolean; value: unknown });
    try {
      await eventually("the client subscribed", () => (clientOut.includes("subscribed") ? true : undefined), 30_000);
      const killedAt = Date.now() / 1000;
      process.kill(up.get("device")!, "SIGKILL");
      const after = await eventually(
        "the device restarted",
        async () => {
          const found = await children(init!);
          return found.has("device") && found.get("device") !== up.get("device") ? found : undefined;
        },
        30_000,
      );
      // The servers did not move.
      for (const [name, pid] of up) if (name !== "device") expect(after.get(name), name).toBe(pid);
      // Once the new device serves, a change reaches the subscribed client: sd1 stopped through it.
      const stopOne = `
import time, tango
d = tango.DeviceProxy("${DEVICE}")
for _ in range(300):
    try:
        d.ping(); break
    except tango.DevFailed:
        time.sleep(0.1)
d.DevStop("TangoTest/sd1")
`;
      const stopped = await run(PYTHON, ["-c", stopOne], { env: cleanEnv({ TANGO_HOST: database.tangoHost }), timeoutMs: 60_000 });
      expect(stopped.code, stopped.stderr).toBe(0);
      const servers = (list: ReturnType<typeof events>) => list.filter((e) => e.attr === "servers" && !e.err && Array.isArray(e.value));
      await eventually(
        `an event of the restarted device showing sd1 stopping or stopped; client output:\n${clientOut.slice(-2000)}`,
        () =>
          servers(events()).some((e) => e.t > killedAt && (e.value as string[]).some((line) => /^TangoTest\/sd1\t(MOVING|FAULT)\t/.test(line)))
            ? true
            : undefined,
        60_000,
      );
      expect(
        servers(events()).some((e) => e.t < killedAt),
        "Servers events before the kill",
      ).toBe(true);
    } finally {
      client.kill("SIGKILL");
    }
  }, 180_000);
});
