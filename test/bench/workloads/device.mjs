// Workload 8: what Astor sees. kill -9 of a server → the change event on the host Starter's Servers
// and State attributes reaches a subscribed PyTango client: starter-init's Starter device
// (sources.tango.device: true; the init pushes each change to the device, which pushes the Tango
// event) side by side with Debian's real Starter (a 2 s process scan and ping thread, attributes
// polled every second).
//
// Both serve the host "devbench" of a private Tango database (MariaDB + DataBaseds, started here),
// in their own UTS, mount and PID namespaces, with three TangoTest servers at level 1. A PyTango
// listener (its own process) subscribes to change events on State and Servers and stamps each event
// with the wall clock when its callback runs; the bench stamps the kill with the same clock. Between
// kills the server is started again with DevStart through PyTango, and the next kill waits until the
// host is ON again (every server ON, the Starter done with its start). The init's own restart is off
// for these servers (restart: never), so both are restarted the same way.

import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { BINARY, PYTHON, TANGO_DIR, childrenOf, cmdline, alive, cleanEnv, now, sleep, spawnTracked, stats, waitExit } from "../lib/common.mjs";
import { TangoAgent } from "../lib/tango.mjs";
import { tangoDatabase } from "../lib/tangodb.mjs";
import { SECTIONS } from "./tango.mjs";
import { ensureStarter } from "./starter.mjs";

const HOST = "devbench";
const DEVICE = `tango/admin/${HOST}`;
const TINI = "/usr/bin/tini";
const STARTER_BINARY = path.join(TANGO_DIR, "Starter");
const COUNT = 3;
const serverName = (i) => `TangoTest/devb${String(i + 1).padStart(2, "0")}`;
const ALL_NAMES = [...Array.from({ length: COUNT }, (_, i) => serverName(i)), `Starter/${HOST}`];

export const DEVICE_GROUP = "kill -9 → change event at a subscribed PyTango client (Astor's view)";
const LABELS = {
  initServers: "starter-init device: Servers event",
  initState: "starter-init device: State event",
  starterServers: "Tango Starter: Servers event",
  starterState: "Tango Starter: State event",
};

const LISTENER = `
import json, sys, time, tango
device = tango.DeviceProxy(sys.argv[1])
def callback(event):
    at = time.time() * 1000
    if event.err:
        return
    value = event.attr_value.value
    value = str(value) if isinstance(value, tango._tango.DevState) else list(value or [])
    print(json.dumps({"t": at, "attr": event.attr_name.rsplit("/", 1)[-1].lower(), "value": value}), flush=True)
while True:
    try:
        for attr in ("State", "Servers"):
            device.subscribe_event(attr, tango.EventType.CHANGE_EVENT, callback)
        break
    except tango.DevFailed:
        time.sleep(0.2)
print(json.dumps({"subscribed": True}), flush=True)
sys.stdin.read()
`;

/** The PyTango listener: every change event of State and Servers, stamped when it arrived. */
async function startListener(tangoHost) {
  const child = spawnTracked(PYTHON, ["-c", LISTENER, DEVICE], { env: cleanEnv({ TANGO_HOST: tangoHost }), stdio: ["pipe", "pipe", "pipe"] });
  const events = [];
  let subscribed;
  const ready = new Promise((resolve) => (subscribed = resolve));
  let stderr = "";
  child.stderr.on("data", (chunk) => (stderr = (stderr + chunk).slice(-4000)));
  readline.createInterface({ input: child.stdout }).on("line", (line) => {
    try {
      const message = JSON.parse(line);
      if (message.subscribed) subscribed();
      else events.push(message);
    } catch {}
  });
  await Promise.race([ready, sleep(60_000).then(() => Promise.reject(new Error(`the event listener did not subscribe: ${stderr}`)))]);
  return {
    events,
    async close() {
      child.stdin.end();
      if (!(await waitExit(child, 3000))) child.kill("SIGKILL");
    },
  };
}

/** Host pids of the TangoTest servers under a process (the namespace's PID 1), by index. */
function serverPids(parent) {
  const found = new Map();
  for (const pid of childrenOf(parent)) {
    const argv = cmdline(pid);
    if (!argv[0]?.endsWith("TangoTest")) continue;
    const index = Array.from({ length: COUNT }, (_, i) => serverName(i).split("/")[1]).indexOf(argv[1]);
    if (index >= 0 && alive(pid)) found.set(index, pid);
  }
  return found;
}

/** The host is ON and every server ON, as the device says (read through PyTango). */
async function waitHostOn(agent, timeoutMs, what) {
  const deadline = now() + timeoutMs;
  for (;;) {
    const state = await agent.request("read", { device: DEVICE, attribute: "State" }, 10_000);
    const servers = await agent.request("read", { device: DEVICE, attribute: "Servers" }, 10_000);
    const lines = (servers.value ?? []).filter((line) => line.startsWith("TangoTest/devb"));
    // The agent sends a DevState as its number (ON is 0).
    if (state.ok && (state.value === 0 || state.value === "ON") && lines.length === COUNT && lines.every((line) => line.split("\t")[1] === "ON")) return;
    if (now() > deadline)
      throw new Error(`timed out waiting until ${what}: State ${state.value ?? state.error}, Servers ${JSON.stringify(servers.value ?? servers.error)}`);
    await sleep(100);
  }
}

/**
 * The kills: each one waits for the host ON, kills a server, and takes the first Servers event showing
 * that server not ON and the first State event leaving ON, both after the kill; then DevStart.
 */
async function killLoop(ctx, { agent, listener, parentPid, kills, label }) {
  const servers = [];
  const states = [];
  const errors = [];
  for (let k = 0; k < kills; k++) {
    const index = k % COUNT;
    const name = serverName(index);
    try {
      await waitHostOn(agent, 60_000, `${label}: the host ON before kill ${k + 1}`);
      const pid = serverPids(parentPid()).get(index);
      if (!pid) throw new Error(`${name} has no process before kill ${k + 1}`);
      const seen = listener.events.length;
      const t0 = now();
      process.kill(pid, "SIGKILL");
      const deadline = t0 + 30_000;
      let serversAt = NaN;
      let stateAt = NaN;
      while ((Number.isNaN(serversAt) || Number.isNaN(stateAt)) && now() < deadline) {
        for (const event of listener.events.slice(seen)) {
          if (event.t < t0) continue;
          if (event.attr === "servers" && Number.isNaN(serversAt) && event.value.some((line) => line.startsWith(`${name}\t`) && line.split("\t")[1] !== "ON"))
            serversAt = event.t;
          if (event.attr === "state" && Number.isNaN(stateAt) && event.value !== "ON") stateAt = event.t;
        }
        await sleep(2);
      }
      if (Number.isNaN(serversAt)) throw new Error(`no Servers event showing ${name} down within 30 s of its kill`);
      servers.push(serversAt - t0);
      if (Number.isFinite(stateAt)) states.push(stateAt - t0);
      else errors.push(`kill ${k + 1}: no State event within 30 s`);
      // Started again as an operator would, once it is known down.
      for (let attempt = 0; ; attempt++) {
        const answer = await agent.request("command", { device: DEVICE, command: "DevStart", arg: name }, 10_000);
        if (answer.ok) break;
        if (attempt > 100) throw new Error(`DevStart ${name}: ${answer.error}`);
        await sleep(100);
      }
    } catch (err) {
      errors.push(`kill ${k + 1}: ${err.message.split("\n")[0]}`);
      if (errors.length > 5) break;
    }
    if (k % 10 === 9) ctx.progress(`device ${label}: ${k + 1} kills`);
  }
  return { servers, states, errors };
}

/** The registration both contenders run with. */
async function register(agent, logHome) {
  await agent.must("db-delete", { servers: ALL_NAMES });
  const servers = Array.from({ length: COUNT }, (_, i) => ({
    name: serverName(i),
    class: "TangoTest",
    devices: [`devbench/tg/${i + 1}`],
    host: HOST,
    mode: 1,
    level: 1,
  }));
  await agent.must("db-register", { servers });
  await agent.must("db-register", { servers: [{ name: `Starter/${HOST}`, class: "Starter", devices: [DEVICE], host: HOST, mode: 0, level: 0 }] });
  fs.mkdirSync(path.join(logHome, "ds.log"), { recursive: true });
  await agent.must("db-properties", {
    device: DEVICE,
    properties: { StartDsPath: [TANGO_DIR], StartServersAtStartup: ["false"], LogFileHome: [logHome], AutoRestartDuration: ["0"] },
  });
}

/** unshare with a UTS namespace named HOST and a private /etc/hosts that names it; `command` is exec'ed by a shell. */
function namespaced(dir, command, env, pid1 = []) {
  const hosts = path.join(dir, "hosts");
  fs.writeFileSync(hosts, `${fs.readFileSync("/etc/hosts", "utf8").trimEnd()}\n127.0.0.1 ${HOST}\n`);
  return spawnTracked(
    "unshare",
    [
      "--pid",
      "--fork",
      "--mount-proc",
      "--kill-child",
      "--uts",
      "--",
      ...pid1,
      "/bin/sh",
      "-c",
      `hostname ${HOST} && mount --bind ${hosts} /etc/hosts && exec ${command}`,
    ],
    { env: cleanEnv(env), stdio: ["ignore", "ignore", "ignore"], cwd: dir },
  );
}

async function withListener(tangoHost, fn) {
  const listener = await startListener(tangoHost);
  try {
    return await fn(listener);
  } finally {
    await listener.close();
  }
}

export async function device(ctx) {
  const kills = ctx.runs.deviceKills;
  const skip = (reason) => {
    for (const label of Object.values(LABELS))
      ctx.results.skip(SECTIONS.crash, DEVICE_GROUP, label, `skipped: ${reason}`, label.startsWith("Tango") ? { short: "Starter", anchor: true } : {});
    console.error(`device: skipped: ${reason}`);
  };
  if (!fs.existsSync(TINI)) return skip("tini is missing (it is PID 1 of the Starter's namespace)");
  if (!ensureStarter(ctx)) return skip("the Debian package tango-starter could not be installed");
  const db = await tangoDatabase(ctx, null, { privateOnly: true, name: "tango-db-device" }).catch((err) => ({ unavailable: err.message.split("\n")[0] }));
  if (db.unavailable) return skip(db.unavailable);
  const env = { TANGO_HOST: db.tangoHost };
  const agent = await TangoAgent.start(env);
  const results = {};
  try {
    // Debian's Starter.
    {
      const dir = fs.mkdtempSync(path.join(ctx.tmp, "device-starter-"));
      await register(agent, path.join(dir, "logs"));
      ctx.progress(`device: the real Starter, ${kills} kills (≈ 8 s each: its detection, then DevStart and its 4 s start wait)`);
      const starter = namespaced(dir, `${STARTER_BINARY} ${HOST}`, env, [TINI, "--"]);
      try {
        const tini = async () => {
          for (let i = 0; i < 200 && !childrenOf(starter.pid).length; i++) await sleep(10);
          return childrenOf(starter.pid)[0];
        };
        const tiniPid = await tini();
        await waitServersKnown(agent);
        await agent.must("command", { device: DEVICE, command: "DevStartAll", arg: 1 });
        await waitHostOn(agent, 120_000, "the Starter's servers ON");
        results.starter = await withListener(db.tangoHost, (listener) => killLoop(ctx, { agent, listener, parentPid: () => tiniPid, kills, label: "Starter" }));
      } finally {
        starter.kill("SIGKILL");
        await waitExit(starter, 10_000);
      }
    }
    // starter-init with its device.
    {
      const dir = fs.mkdtempSync(path.join(ctx.tmp, "device-init-"));
      await register(agent, path.join(dir, "logs"));
      const config = path.join(dir, "config.yaml");
      const settingsEnv = env;
      fs.writeFileSync(
        config,
        [
          "settings:",
          `  controlSocket: ${path.join(dir, "control.sock")}`,
          "  defaults: {log: {console: false}}",
          "  env:",
          ...Object.entries(settingsEnv).map(([key, value]) => `    ${key}: "${value}"`),
          "sources:",
          "  tango:",
          "    device: true",
          "    servers:",
          "      - name: TangoTest/*",
          "        restart: never      # restarted by DevStart, as under the Starter",
          "",
        ].join("\n"),
      );
      ctx.progress(`device: starter-init's device, ${kills} kills`);
      const init = namespaced(dir, `${BINARY} run --log-format json -c ${config}`, {});
      try {
        await waitServersKnown(agent);
        await agent.must("command", { device: DEVICE, command: "DevStartAll", arg: 1 });
        await waitHostOn(agent, 60_000, "the device's servers ON");
        results.init = await withListener(db.tangoHost, (listener) =>
          killLoop(ctx, { agent, listener, parentPid: () => childrenOf(init.pid)[0], kills, label: "starter-init" }),
        );
      } finally {
        init.kill("SIGKILL");
        await waitExit(init, 10_000);
      }
    }
  } catch (err) {
    console.error(`device: ${err.stack ?? err}`);
    ctx.results.note(SECTIONS.crash, `Workload device failed: ${err.message.split("\n")[0]}`);
  } finally {
    await agent.request("db-delete", { servers: ALL_NAMES }, 60_000);
    await agent.close();
    await db.stop();
  }
  const row = (label, values, errors, compare) =>
    ctx.results.add({
      section: SECTIONS.crash,
      group: DEVICE_GROUP,
      label,
      values: values ?? [],
      unit: "ms",
      p99: true,
      errors,
      ...(compare ? { compare: [compare] } : { anchor: true, short: "Starter" }),
    });
  row(LABELS.initServers, results.init?.servers, results.init?.errors, LABELS.starterServers);
  row(LABELS.initState, results.init?.states, [], LABELS.starterState);
  row(LABELS.starterServers, results.starter?.servers, results.starter?.errors, null);
  row(LABELS.starterState, results.starter?.states, [], null);
  const summary = (r) => (r ? `median ${stats(r.servers).median.toFixed(1)} ms, p99 ${stats(r.servers).p99.toFixed(1)} ms` : "not measured");
  ctx.results.note(
    SECTIONS.crash,
    `Astor's view (workload device): a PyTango client subscribed to change events on the host Starter's State and Servers; each event is stamped when the client's callback runs, the kill just before kill(2), with the same wall clock. starter-init's device (${summary(results.init)}) pushes the event when the init reports the exit; Debian's Starter (${summary(results.starter)}) notices a dead server through its 2 s process scan and ping thread and polls its attributes every second. ${kills} kills each, three TangoTest servers at one level, ${db.description}.`,
  );
}

/** The device (either one) lists the registered servers. */
async function waitServersKnown(agent) {
  const deadline = now() + 90_000;
  for (;;) {
    const servers = await agent.request("read", { device: DEVICE, attribute: "Servers" }, 10_000);
    if (servers.ok && (servers.value ?? []).filter((line) => line.startsWith("TangoTest/devb")).length === COUNT) return;
    if (now() > deadline) throw new Error(`${DEVICE} does not list its servers: ${JSON.stringify(servers.value ?? servers.error)}`);
    await sleep(200);
  }
}
