// Workload 8: the init speaking Tango itself (init/giop), against PyTango on the same servers.
//  - ping round trip of an admin device: the init's GIOP client (the code the init runs, bundled for
//    node) against PyTango's DeviceProxy.ping() — both on one open connection, one ping at a time —
//    and what a running init reports in `status` (the liveness check's last round trip);
//  - reading this host's configuration with 30 servers through DataBaseds: what the `tango` source
//    reads (DbGetHostServersInfo, the Starter device's and class's properties), against the same
//    calls from PyTango; and `starter-init plan --source tango` as a whole (process start included).

import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";
import { BINARY, Control, ROOT, TANGO_TEST, cleanEnv, now, sleep, spawnTracked, startInit, waitExit, withTimeout } from "../lib/common.mjs";
import { TangoAgent, portBlock } from "../lib/tango.mjs";
import { tangoDatabase } from "../lib/tangodb.mjs";

const SECTION = "8. Speaking Tango: the init's GIOP client";
const PING_GROUP = "ping of an admin device (TangoTest, no database), one connection, one at a time";
const READ_GROUP = "this host's configuration, 30 servers, through DataBaseds";
const HOST = "wirebench";
const SERVERS = Array.from({ length: 30 }, (_, i) => `TangoTest/w${String(i + 1).padStart(2, "0")}`);

/** init/giop and the source's reader, bundled for plain node: the code the init runs. */
async function loadInitCode(ctx) {
  const dir = path.join(ctx.tmp, "wire");
  fs.mkdirSync(dir, { recursive: true });
  const entry = path.join(dir, "entry.ts");
  const init = path.join(ROOT, "init");
  fs.writeFileSync(
    entry,
    ["giop/client", "giop/tango", "config/tango/read", "config/tango/connection"].map((m) => `export * from ${JSON.stringify(path.join(init, m))};`).join("\n"),
  );
  const outfile = path.join(dir, "init-code.mjs");
  await build({ entryPoints: [entry], bundle: true, platform: "node", format: "esm", outfile, logLevel: "warning" });
  return import(pathToFileURL(outfile).href);
}

/** A TangoTest without a database on 127.0.0.1:port, ready. */
async function startTangoTest(instance, port) {
  const child = spawnTracked(TANGO_TEST, [instance, "-nodb", "-dlist", `bench/wire/${instance}`, "-ORBendPoint", `giop:tcp:127.0.0.1:${port}`], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  await withTimeout(
    new Promise((resolve, reject) => {
      readline.createInterface({ input: child.stdout }).on("line", (line) => line.includes("Ready to accept request") && resolve());
      child.once("exit", (code) => reject(new Error(`TangoTest ${instance} exited (${code})`)));
    }),
    30_000,
    `TangoTest ${instance} ready`,
  );
  return child;
}

async function pings(ctx, code) {
  const n = ctx.runs.wirePings;
  const [base] = [await portBlock(2)];
  const server = await startTangoTest("wp01", base + 1);
  const agent = await TangoAgent.start();
  try {
    const client = new code.GiopClient();
    const address = code.deviceAt("127.0.0.1", base + 1, "dserver/TangoTest/wp01");
    await code.ping(client, address);
    ctx.progress(`wire: ${n} pings from the init's client, ${n} from PyTango (interleaved in blocks of 100)`);
    const ours = [];
    const wall = [];
    const own = [];
    for (let done = 0; done < n; done += 100) {
      for (let i = 0; i < 100; i++) ours.push(await code.ping(client, address));
      const answer = await agent.must("ping-rtt", { url: `tango://127.0.0.1:${base + 1}/dserver/TangoTest/wp01#dbase=no`, n: 100 }, 60_000);
      wall.push(...answer.wall);
      own.push(...answer.own);
    }
    client.close();
    ctx.results.add({
      section: SECTION,
      group: PING_GROUP,
      label: "PyTango DeviceProxy.ping(), wall time in Python",
      short: "PyTango",
      anchor: true,
      values: wall,
      unit: "ms",
      p99: true,
    });
    ctx.results.add({ section: SECTION, group: PING_GROUP, label: "PyTango DeviceProxy.ping(), its own figure (C++)", values: own, unit: "ms", p99: true });
    ctx.results.add({
      section: SECTION,
      group: PING_GROUP,
      label: "starter-init GIOP client (init/giop, in node)",
      values: ours,
      unit: "ms",
      p99: true,
      compare: ["PyTango DeviceProxy.ping(), wall time in Python"],
    });
  } finally {
    await agent.close();
    server.kill("SIGKILL");
    await waitExit(server, 5000);
  }

  // What a running init measures and shows in `status`: its liveness check, every 200 ms here.
  const dir = path.join(ctx.tmp, "wire-init");
  fs.mkdirSync(dir, { recursive: true });
  const socket = path.join(dir, "control.sock");
  const config = path.join(dir, "config.yaml");
  const port = base + 2;
  fs.writeFileSync(
    config,
    [
      "settings:",
      `  controlSocket: ${socket}`,
      "  defaults: {log: {console: false}}",
      "servers:",
      "  - name: TangoTest/wp02",
      `    binary: ${TANGO_TEST}`,
      `    args: -nodb -dlist bench/wire/wp02 -ORBendPoint giop:tcp:127.0.0.1:${port}`,
      `    readiness: tango:127.0.0.1:${port}`,
      "    liveness: {interval: 200ms}",
      "",
    ].join("\n"),
  );
  const init = startInit(["-c", config]);
  try {
    await init.waitRecord((r) => r.kind === "ready" && r.server === "TangoTest/wp02", 30_000, "TangoTest/wp02 ready");
    const control = await Control.connect(socket);
    const samples = [];
    let last = null;
    const deadline = now() + ctx.runs.wireStatusMs;
    while (now() < deadline) {
      const status = await control.request("status", {});
      const ping = status.servers[0].ping;
      const key = ping && `${ping.answered}/${ping.failed}`;
      if (ping?.lastRttMs != null && key !== last) samples.push(ping.lastRttMs);
      last = key;
      await sleep(100);
    }
    control.close();
    ctx.results.add({
      section: SECTION,
      group: PING_GROUP,
      label: "a running init's liveness ping, as `status` shows it (every 200 ms)",
      values: samples,
      unit: "ms",
      p99: true,
    });
  } finally {
    await init.kill();
  }
}

async function reads(ctx, code) {
  const db = await tangoDatabase(ctx, ctx.options.tangoHost).catch((err) => ({
    unavailable: `the private Tango database did not start: ${err.message.split("\n")[0]}`,
  }));
  const labels = [
    "starter-init `tango` source read (init code, in node)",
    "PyTango: the same calls",
    "`starter-init plan --source tango` (process, 30 servers)",
  ];
  if (db.unavailable) {
    for (const label of labels) ctx.results.skip(SECTION, READ_GROUP, label, db.unavailable);
    return;
  }
  ctx.results.note(SECTION, `The database reads ran against ${db.description}.`);
  const env = { TANGO_HOST: db.tangoHost };
  const agent = await TangoAgent.start(env);
  try {
    await agent.request("db-delete", { servers: SERVERS }, 60_000);
    await agent.must(
      "db-register",
      { servers: SERVERS.map((name, i) => ({ name, class: "TangoTest", devices: [`bench/wire/${i + 1}`], host: HOST, mode: 1, level: 1 + (i % 5) })) },
      180_000,
    );
    const properties = { StartDsPath: ["/usr/lib/tango"], InterStartupLevelWait: ["1"], KeepLogFiles: ["3"] };
    for (const name of SERVERS) properties[`${name.replace("/", "_")}_env`] = ["SITE=bench"];
    await agent.must("db-properties", { device: `tango/admin/${HOST}`, properties }, 60_000);

    const n = ctx.runs.wireReads;
    const connection = code.resolveConnection(db.tangoHost, {}, {}).connection;
    const first = await code.readTangoHost(connection, HOST, 5000);
    if (first.servers.length < SERVERS.length) throw new Error(`read ${first.servers.length} servers of ${HOST}, expected ${SERVERS.length}`);
    ctx.progress(`wire: ${n} reads of ${HOST}'s configuration (${first.servers.length} servers, ${Object.keys(first.properties).length} properties)`);
    const ours = [];
    for (let i = 0; i < n; i++) {
      const t0 = now();
      await code.readTangoHost(connection, HOST, 5000);
      ours.push(now() - t0);
    }
    const theirs = await agent.must("db-read", { host: HOST, n }, 120_000);
    ctx.results.add({ section: SECTION, group: READ_GROUP, label: labels[1], short: "PyTango", anchor: true, values: theirs.times, unit: "ms" });
    ctx.results.add({ section: SECTION, group: READ_GROUP, label: labels[0], values: ours, unit: "ms", compare: [labels[1]] });

    const dir = path.join(ctx.tmp, "wire-plan");
    fs.mkdirSync(dir, { recursive: true });
    const config = path.join(dir, "config.yaml");
    fs.writeFileSync(config, `settings:\n  controlSocket: ${path.join(dir, "control.sock")}\nsources:\n  tango: {host: ${HOST}}\n`);
    const plans = [];
    for (let i = 0; i < ctx.runs.wirePlan; i++) {
      const t0 = now();
      const result = spawnSync(BINARY, ["plan", "--source", "tango", "--json", "-c", config], { env: cleanEnv(env), encoding: "utf8", timeout: 60_000 });
      plans.push(now() - t0);
      if (result.status !== 0) throw new Error(`plan --source tango exited ${result.status}: ${result.stderr}`);
    }
    ctx.results.add({ section: SECTION, group: READ_GROUP, label: labels[2], values: plans, unit: "ms" });
  } finally {
    await agent.request("db-delete", { servers: SERVERS }, 60_000);
    await agent.close();
    await db.stop();
  }
}

export async function wire(ctx) {
  const code = await loadInitCode(ctx);
  try {
    await pings(ctx, code);
  } catch (err) {
    ctx.results.note(SECTION, `ping measurements failed: ${String(err.message ?? err).split("\n")[0]}`);
  }
  try {
    await reads(ctx, code);
  } finally {
    code.sharedGiopClient().close();
  }
  ctx.results.note(
    SECTION,
    "Both clients keep one connection open and ping one at a time; the machine is shared with other work, so these figures are indicative.",
  );
}
