// Workload 9: a Tango fleet on Docker Swarm (rootfs/swarm/fleet.yaml), 3 hosts × 4 TangoTest and the
// database service, as the swarm test deploys it. Per run, on a fresh stack (and a fresh database
// volume): `docker stack deploy` → every one of the 12 devices answers a PyTango read through the
// database (the client in a container on the stack's overlay network), with where the time goes —
// the containers started, DataBaseds ready, each host's init has read its servers from the
// database; then `docker kill` of one host → its 4 devices answer again; `docker stack rm` → every
// container of the stack gone. No anchor: the Tango Starter has no orchestrator of its own to
// compare with.

import fs from "node:fs";
import path from "node:path";
import { BINARY, now } from "../lib/common.mjs";
import {
  NEEDED,
  buildFleetImages,
  deployFleet,
  docker,
  dockerOk,
  fleetServers,
  followContainer,
  holdSwarm,
  readUntilAnswered,
  releaseSwarm,
  removeFleet,
  serviceContainers,
  startClient,
} from "../../fixtures/swarm/fleet.mjs";

const SECTION = "9. A Tango fleet on Docker Swarm: 3 hosts × 4 TangoTest, one database service";
const SIZE = 3;
const TAG = `bench-${process.pid}`;
const DB_IMAGE = `starter-init-bench/tango-db:${TAG}`;
const HOST_IMAGE = `starter-init-bench/tango-host:${TAG}`;

/** The time (epoch ms) of the first JSON log record of a container that matches. */
async function firstRecordTime(id, match) {
  return recordTime((await docker(["logs", id])).stderr, match);
}

/** The time of the first JSON log record in the text that matches. */
function recordTime(stderr, match) {
  for (const line of stderr.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const record = JSON.parse(line);
      if (match(record)) return record.time;
    } catch {}
  }
  return undefined;
}

async function startedAt(id) {
  return Date.parse((await dockerOk(["inspect", "-f", "{{.State.StartedAt}}", id])).trim());
}

async function waitFor(what, probe, timeoutMs) {
  const deadline = now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** One deploy → 12 answering → kill → answering again → stack rm. */
async function fleetOnce(ctx, run) {
  const stack = `sibench-${process.pid}-${run}`;
  const servers = fleetServers(SIZE);
  const devices = servers.flatMap((s) => s.devices);
  let client = null;
  let deployed = false;
  try {
    const t0 = now();
    await deployFleet({ stack, size: SIZE, dbImage: DB_IMAGE, hostImage: HOST_IMAGE });
    deployed = true;
    client = await startClient(stack, DB_IMAGE, `starter-init-bench=${process.pid}`);
    const answers = await readUntilAnswered(client, devices, ctx.timeouts.boot);
    const failed = devices.filter((d) => !answers[d]?.ok);
    if (failed.length) throw new Error(`${failed.length} device(s) never answered: ${failed.join(", ")}: ${answers[failed[0]]?.error}`);
    const marks = { all: Math.max(...devices.map((d) => answers[d].t)) - t0 };

    const hosts = await serviceContainers(stack, "tango-host");
    const [database] = await serviceContainers(stack, "tango-db");
    marks.containers = Math.max(...(await Promise.all([...hosts, database].map((c) => startedAt(c.id))))) - t0;
    marks.database = (await firstRecordTime(database.id, (r) => r.server === "DataBaseds/2" && r.kind === "ready")) - t0;
    const reads = await Promise.all(hosts.map((h) => firstRecordTime(h.id, (r) => r.source === "tango" && r.state === "up")));
    marks.hostsRead = Math.max(...reads) - t0;

    const victim = hosts.find((h) => h.slot === 2);
    const killedAt = now();
    await dockerOk(["kill", victim.id]);
    const mine = servers.filter((s) => s.slot === 2).flatMap((s) => s.devices);
    await waitFor("a new tango-host-2", async () => (await serviceContainers(stack, "tango-host")).find((h) => h.slot === 2 && h.id !== victim.id), 120_000);
    const again = await readUntilAnswered(client, mine, ctx.timeouts.boot);
    if (!mine.every((d) => again[d]?.ok)) throw new Error(`tango-host-2's devices did not answer again after docker kill`);
    marks.kill = Math.max(...mine.map((d) => again[d].t)) - killedAt;

    await docker(["rm", "-f", client]);
    client = null;
    // What each init logged on its way out (its SIGTERM, its last server stopped), and when the
    // database's init exited, apart from Swarm's removal of the containers.
    const followed = (await serviceContainers(stack, "tango-host")).map((c) => followContainer(c.id));
    const databaseExited = docker(["wait", database.id], 120_000).then(() => now());
    const removing = now();
    marks.remove = (await removeFleet(stack)).goneMs;
    deployed = false;
    const logs = await Promise.all(followed.map((f) => f.done));
    const times = (kind) => logs.map(({ stderr }) => recordTime(stderr, (r) => r.kind === kind) - removing);
    marks.signalled = Math.max(...times("shutdown"));
    marks.hostsStopped = Math.max(...times("shutdown-complete"));
    marks.databaseStopped = (await databaseExited) - removing;
    return marks;
  } finally {
    if (client) await docker(["rm", "-f", client]);
    if (deployed) await removeFleet(stack);
  }
}

export async function swarm(ctx) {
  const missing = NEEDED.filter((file) => !fs.existsSync(file));
  if (missing.length) {
    ctx.results.skip(SECTION, "docker stack deploy →", "all of it", `skipped: missing ${missing.join(", ")}`);
    return;
  }
  if ((await docker(["info"])).code !== 0) {
    ctx.results.skip(SECTION, "docker stack deploy →", "all of it", "skipped: no Docker engine answers");
    return;
  }
  ctx.progress("swarm: building the fleet's images (rootfs/swarm/build.sh)");
  const binary = path.join(ctx.tmp, "swarm-starter-init");
  fs.copyFileSync(BINARY, binary);
  fs.chmodSync(binary, 0o755);
  await buildFleetImages({ binary, dbImage: DB_IMAGE, hostImage: HOST_IMAGE });
  const keys = [
    ["containers", "every container started (4)"],
    ["database", "DataBaseds ready (MariaDB, registration of 12 servers, DataBaseds)"],
    ["hostsRead", "every host's init has read its servers through TANGO_HOST"],
    ["all", `all ${SIZE * 4} devices answer a read through the database`],
  ];
  const values = Object.fromEntries([...keys.map(([k]) => k), "kill", "signalled", "hostsStopped", "databaseStopped", "remove"].map((k) => [k, []]));
  const errors = [];
  try {
    await holdSwarm();
    for (let r = 0; r < ctx.runs.swarm; r++) {
      ctx.progress(`swarm: deploy ${r + 1}/${ctx.runs.swarm}`);
      try {
        const marks = await fleetOnce(ctx, r);
        for (const [k, v] of Object.entries(marks)) if (Number.isFinite(v)) values[k].push(v);
      } catch (err) {
        errors.push(err.message.split("\n")[0]);
        console.error(`  swarm run ${r + 1}: ${err.message}`);
      }
    }
  } finally {
    await releaseSwarm().catch((err) => console.error(`  swarm: leaving swarm mode: ${err.message}`));
    await docker(["rmi", "-f", DB_IMAGE, HOST_IMAGE]);
  }
  for (const [k, label] of keys)
    ctx.results.add({ section: SECTION, group: "docker stack deploy →", label, values: values[k], unit: "ms", errors: k === "all" ? errors : undefined });
  ctx.results.add({
    section: SECTION,
    group: "docker kill of one host →",
    label: "its 4 devices answer again (Swarm's new task)",
    values: values.kill,
    unit: "ms",
  });
  const removal = [
    ["signalled", "every host's init has its SIGTERM (its shutdown begins)"],
    ["hostsStopped", "every host has stopped its 4 servers, level 2 then level 1"],
    ["databaseStopped", "the database's init has exited (after the hosts' servers unexported, at most 10 s)"],
    ["remove", "every container of the stack gone (Swarm's removal)"],
  ];
  for (const [k, label] of removal) ctx.results.add({ section: SECTION, group: "docker stack rm →", label, values: values[k], unit: "ms" });
  ctx.results.note(
    SECTION,
    "One-node swarm on this machine's engine (`docker swarm init --advertise-addr 127.0.0.1`, turned off again if it was off); images FROM scratch built by rootfs/swarm/build.sh (not timed). The hosts start with the database: until it answers, each host's init retries (0.5 s doubling up to 2 s, tango-host.yaml), so that wait is part of the figure. The client is this machine's PyTango in the network namespace of a container on the stack's overlay network; it reads each device again every 0.1 s until it answers. The machine was shared with other work: indicative.",
  );
}
