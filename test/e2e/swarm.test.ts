// A Tango fleet on Docker Swarm (rootfs/swarm/fleet.yaml): one database service (MariaDB +
// DataBaseds under starter-init, whose registration step registers 4 TangoTest for each of the host
// names tango-host-1..3) and a tango-host service of 3 replicas, each a container with starter-init
// as PID 1 and its own host name (tango-host-{{.Task.Slot}}), reading its servers through
// TANGO_HOST. A PyTango client in a container on the stack's overlay network reads every device
// through the database, and scrapes every host's metrics as a Prometheus there would (tasks.tango-host);
// `docker kill` of one host → Swarm starts a new one and its servers answer
// again; `docker stack rm` → every host stops its servers by level, highest first, each exiting 0.
//
//   npx vitest run --config test/vitest.config.ts test/e2e/swarm.test.ts
//
// Needs a running engine (swarm mode is turned on for the test and off again if it was off), the
// Debian packages of the images (mariadb-server, tango-db, tango-test, busybox-static), python3-tango
// and nsenter (util-linux), and dist/starter-init. STARTER_KEEP_IMAGES=1 keeps the images.

import { IMAGE_TAG } from "./docker/env";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  NEEDED,
  buildFleetImages,
  deployFleet,
  docker,
  dockerOk,
  fleetServers,
  followContainer,
  holdSwarm,
  httpGetEach,
  readUntilAnswered,
  releaseSwarm,
  removeFleet,
  serviceContainers,
  stackContainers,
  startClient,
  tangoDb,
  type FleetContainer,
} from "../fixtures/swarm/fleet.mjs";
import { TEST_LABEL, eventually, logRecords, snapshotBinary } from "./docker/helpers";

const SIZE = 3;
const DB_IMAGE = `starter-init-e2e/tango-db:${IMAGE_TAG}`;
const HOST_IMAGE = `starter-init-e2e/tango-host:${IMAGE_TAG}`;
/** Unique per run: two checkouts (or two runs) on one engine never share a stack. */
const STACK = `sie2e-${IMAGE_TAG.replace(/[^a-zA-Z0-9]/g, "").slice(0, 12)}-${process.pid}`;
const SERVERS = fleetServers(SIZE);
const DEVICES = SERVERS.flatMap((s) => s.devices);
const missing = NEEDED.filter((file) => !fs.existsSync(file));

type LogRecord = Record<string, unknown>;

interface HostStatus {
  servers: { name: string; state: string; level: number; pid: number | null }[];
  sources?: { state: string; host: string; servers: number | null }[];
}

async function hostStatus(id: string): Promise<HostStatus> {
  return JSON.parse(await dockerOk(["exec", id, "/sbin/starter-init", "status", "--json"])) as HostStatus;
}

/** The running host containers once there is one per slot 1..SIZE. */
async function hostsBySlot(): Promise<Map<number, FleetContainer>> {
  return eventually(
    `${SIZE} running tango-host containers`,
    async () => {
      const hosts = await serviceContainers(STACK, "tango-host");
      const bySlot = new Map(hosts.map((h) => [h.slot, h]));
      return hosts.length === SIZE && bySlot.size === SIZE ? bySlot : undefined;
    },
    120_000,
    250,
  );
}

/** Index of the first record of `kind` for `server`. */
function indexOf(records: LogRecord[], server: string, kind: string): number {
  const index = records.findIndex((r) => r.server === server && r.kind === kind);
  expect(index, `a "${kind}" record for ${server}`).toBeGreaterThan(-1);
  return index;
}

describe("a Tango fleet on Docker Swarm: a database service and 3 hosts under starter-init", () => {
  let client: string | null = null;
  let deployed = false;

  beforeAll(async () => {
    if (missing.length)
      throw new Error(`missing: ${missing.join(", ")} (mariadb-server, tango-db, tango-test, busybox-static, python3-tango: test/prereqs.sh)`);
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "starter-init-swarm-"));
    try {
      const started = Date.now();
      await buildFleetImages({ binary: await snapshotBinary(scratch), dbImage: DB_IMAGE, hostImage: HOST_IMAGE });
      console.log(`images ${DB_IMAGE} and ${HOST_IMAGE} built in ${Date.now() - started} ms`);
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
    await holdSwarm();
  }, 300_000);

  afterAll(async () => {
    if (client) await docker(["rm", "-f", client]);
    if (deployed) await removeFleet(STACK);
    const { left } = await releaseSwarm();
    console.log(left ? "swarm mode turned off again (it was off before)" : "swarm mode left on (it was on before, or another run holds it)");
    if (!process.env.STARTER_KEEP_IMAGES) await docker(["rmi", "-f", DB_IMAGE, HOST_IMAGE]);
  }, 180_000);

  it("deploys: each host reads its 4 servers from the shared database, and a client reads all 12 devices through it", async () => {
    const begin = Date.now();
    await deployFleet({ stack: STACK, size: SIZE, dbImage: DB_IMAGE, hostImage: HOST_IMAGE });
    deployed = true;
    client = await startClient(STACK, DB_IMAGE, `${TEST_LABEL}=${process.pid}`);

    const answers = await readUntilAnswered(client, DEVICES, 150_000);
    const last = Math.max(...Object.values(answers).map((a) => a.t ?? Infinity));
    console.log(`docker stack deploy → all ${DEVICES.length} devices answer through the database: ${Math.round(last - begin)} ms`);
    for (const device of DEVICES) expect(answers[device], device).toMatchObject({ ok: true, state: "RUNNING" });

    // Each host is its own Tango host: its name from its slot, its servers the database's for that
    // name, read through TANGO_HOST (the init has no MySQL credentials), all ready.
    const hosts = await hostsBySlot();
    for (const [slot, host] of hosts) {
      const name = `tango-host-${slot}`;
      expect((await dockerOk(["exec", host.id, "/sbin/starter-init", "status"])).split("\n")[0]).toContain("pid 1 (container)");
      const status = await hostStatus(host.id);
      expect(status.sources?.[0]).toMatchObject({ state: "up", host: name, servers: 4 });
      const mine = SERVERS.filter((s) => s.host === name);
      expect(status.servers.map((s) => s.name).sort()).toEqual(mine.map((s) => s.name).sort());
      for (const server of mine)
        expect(
          status.servers.find((s) => s.name === server.name),
          server.name,
        ).toMatchObject({ state: "ready", level: server.level });
      const env = JSON.parse(await dockerOk(["inspect", "-f", "{{json .Config.Env}}", host.id])) as string[];
      expect(env).toContain("TANGO_HOST=tango-db:10000");
      expect(env.filter((entry) => entry.startsWith("MYSQL_"))).toEqual([]);
    }

    // A Prometheus on the network finds every host as tasks.tango-host and scrapes its metrics:
    // each of the 12 servers is up on one of them; the database's init answers its readiness probe.
    const scrapes = Object.values(await httpGetEach(client, "tasks.tango-host", 9150, "/metrics"));
    expect(scrapes.map((s) => s.status)).toEqual([200, 200, 200]);
    for (const server of SERVERS) expect(scrapes.filter((s) => s.body.includes(`starter_server_up{server="${server.name}"} 1`)).length, server.name).toBe(1);
    expect(Object.values(await httpGetEach(client, "tasks.tango-db", 9150, "/readyz")).map((s) => s.status)).toEqual([200]);

    // The shared database knows every host's servers (what the Starter of each host would ask).
    for (let slot = 1; slot <= SIZE; slot++) {
      const host = `tango-host-${slot}`;
      const { info } = (await tangoDb(client, "host-info", { host })) as { info: string[] };
      const names = [];
      for (let i = 0; i + 2 < info.length; i += 3) names.push(info[i].toLowerCase());
      expect(names.sort(), host).toEqual(
        SERVERS.filter((s) => s.host === host)
          .map((s) => s.name.toLowerCase())
          .sort(),
      );
    }
  }, 240_000);

  it("docker kill of one host: Swarm starts a new one, which starts the same servers, and they answer again", async () => {
    const before = await hostsBySlot();
    const victim = before.get(2)!;
    const others = [...before.values()].filter((h) => h !== victim);
    const pidsBefore = new Map(await Promise.all(others.map(async (h) => [h.id, (await hostStatus(h.id)).servers.map((s) => s.pid)] as const)));

    const killedAt = Date.now();
    await dockerOk(["kill", victim.id]);
    const replacement = await eventually(
      "a new container for slot 2",
      async () => (await serviceContainers(STACK, "tango-host")).find((h) => h.slot === 2 && h.id !== victim.id),
      120_000,
      250,
    );
    const mine = SERVERS.filter((s) => s.host === "tango-host-2");
    const answers = await readUntilAnswered(
      client!,
      mine.flatMap((s) => s.devices),
      120_000,
    );
    const last = Math.max(...Object.values(answers).map((a) => a.t ?? Infinity));
    console.log(`docker kill of tango-host-2 → its ${mine.length} devices answer again: ${Math.round(last - killedAt)} ms`);
    for (const server of mine) for (const device of server.devices) expect(answers[device], device).toMatchObject({ ok: true });

    // The killed container died by SIGKILL; the new one is the same host, with the same servers.
    expect(JSON.parse(await dockerOk(["inspect", "-f", "{{json .State.ExitCode}}", victim.id]))).toBe(137);
    expect((await dockerOk(["exec", replacement.id, "/sbin/starter-init", "status"])).split("\n")[0]).toContain("pid 1 (container)");
    const status = await hostStatus(replacement.id);
    expect(status.sources?.[0]).toMatchObject({ state: "up", host: "tango-host-2", servers: 4 });
    for (const server of mine) expect(status.servers.find((s) => s.name === server.name)?.state, server.name).toBe("ready");
    // The other hosts were not touched.
    for (const host of others)
      expect(
        (await hostStatus(host.id)).servers.map((s) => s.pid),
        host.name,
      ).toEqual(pidsBefore.get(host.id));
  }, 240_000);

  it("docker stack rm: every host stops its servers by level, highest first, each exiting 0; the database last", async () => {
    const hosts = [...(await hostsBySlot()).values()];
    const [database] = await serviceContainers(STACK, "tango-db");
    const followed = new Map([...hosts, database].map((c) => [c.name, followContainer(c.id)]));
    // The client leaves the network first: Swarm removes the stack's network with the stack.
    await docker(["rm", "-f", client!]);
    client = null;

    const { goneMs } = await removeFleet(STACK);
    deployed = false;
    console.log(`docker stack rm → every container of the stack gone: ${goneMs} ms`);
    expect(await stackContainers(STACK)).toEqual([]);
    expect((await docker(["volume", "inspect", `${STACK}_tango-db-data`])).code).not.toBe(0);

    const levels = [...new Set(SERVERS.map((s) => s.level))].sort((a, b) => b - a);
    for (const host of hosts) {
      const { stdout, stderr, exitCode } = await followed.get(host.name)!.done;
      expect(exitCode, `${host.name}: ${stderr.slice(-2000)}`).toBe(0);
      const name = `tango-host-${host.slot}`;
      const mine = SERVERS.filter((s) => s.host === name);
      const records = logRecords(stderr);
      const shutdown = records.slice(records.findIndex((r) => r.kind === "shutdown"));
      expect(shutdown.length, name).toBeGreaterThan(1);
      // Level by level from the highest: nothing of a lower level is signalled before every server
      // of the level above has exited.
      for (let i = 1; i < levels.length; i++) {
        const upperStopped = Math.max(...mine.filter((s) => s.level === levels[i - 1]).map((s) => indexOf(shutdown, s.name, "stopped")));
        for (const server of mine.filter((s) => s.level === levels[i]))
          expect(indexOf(shutdown, server.name, "stopping"), server.name).toBeGreaterThan(upperStopped);
      }
      const exits = shutdown.filter((r) => r.kind === "exited");
      expect(exits.map((r) => r.server).sort(), name).toEqual(mine.map((s) => s.name).sort());
      for (const exit of exits) expect(exit, String(exit.server)).toMatchObject({ code: 0, signal: null, reason: "stop-requested" });
      // Without a terminal the console lines stay off and the JSON log on stderr says it.
      expect(
        shutdown.some((r) => r.kind === "shutdown-complete"),
        name,
      ).toBe(true);
      expect(stdout, name).toMatch(/\| Ready to accept request/);
    }

    // The database stayed up until the hosts' servers had unexported themselves, then stopped in order.
    const db = await followed.get(database.name)!.done;
    expect(db.exitCode, db.stderr.slice(-2000)).toBe(0);
    expect(db.stdout).toMatch(/drain \| drain: no device server exported any more after/);
    const records = logRecords(db.stderr);
    const shutdown = records.slice(records.findIndex((r) => r.kind === "shutdown"));
    expect(indexOf(shutdown, "DataBaseds/2", "stopping")).toBeGreaterThan(indexOf(shutdown, "drain", "stopped"));
    expect(indexOf(shutdown, "mariadb", "stopping")).toBeGreaterThan(indexOf(shutdown, "DataBaseds/2", "stopped"));
    for (const exit of shutdown.filter((r) => r.kind === "exited")) expect(exit, String(exit.server)).toMatchObject({ code: 0, signal: null });
  }, 240_000);
});
