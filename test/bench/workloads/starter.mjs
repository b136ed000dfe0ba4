// The real Tango Starter (Debian's tango-starter, /usr/lib/tango/Starter) on the same machine, as an
// anchor for workloads 1-3. Run last: it needs a Tango database (lib/tangodb.mjs) and takes minutes.
//
// Set-up, as Jive and Astor would do it: TangoTest/bench01… registered in the database (devices
// bench/tg_test/NN, controlled, with their startup levels) on the host "starterbench", and the
// Starter device tango/admin/starterbench with StartServersAtStartup=false (the start command is
// DevStartAll, through PyTango), LogFileHome in the bench's temporary directory. The Starter runs
// in its own UTS namespace (host name starterbench, which a private /etc/hosts bind-mounted in its
// own mount namespace resolves: a Tango server hangs when its host name does not resolve) and its
// own PID namespace with tini as PID 1 (the Starter double-forks its servers; tini reaps them, and
// killing the namespace takes everything down). Every registration is deleted at the end.
//
// Readiness: the Starter sends a server's stdout to /dev/null and its stderr to
// <LogFileHome>/ds.log/TangoTest_benchNN.log. StartDsPath is a directory holding a two-line
// TangoTest wrapper (`exec 1>&2; exec /usr/lib/tango/TangoTest "$@"`) so that "Ready to accept
// request" lands in that file: the bench pings a server once that line is there (as everywhere
// else, never earlier: TangoTest 9.3 segfaults when pinged while exporting). After the exec the
// process is /usr/lib/tango/TangoTest benchNN, as the Starter expects.

import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import {
  PYTHON,
  BENCH_DIR,
  TANGO_DIR,
  alive,
  childrenOf,
  cmdline,
  now,
  onAbort,
  processStartEpoch,
  sleep,
  spawnTracked,
  waitAllGone,
  waitExit,
  withTimeout,
} from "../lib/common.mjs";
import { TangoAgent, pingWhenAnnounced } from "../lib/tango.mjs";
import { tangoDatabase } from "../lib/tangodb.mjs";
import { CRASH_GROUP, SECTIONS, SHAPES, STARTER, repeat, stopGroup } from "./tango.mjs";

const STARTER_BINARY = path.join(TANGO_DIR, "Starter");
const TINI = "/usr/bin/tini";
const HOST = "starterbench";
const DEVICE = `tango/admin/${HOST}`;
const MAX_SERVERS = 30;

const serverName = (i) => `TangoTest/bench${String(i + 1).padStart(2, "0")}`;
const ALL_NAMES = [...Array.from({ length: MAX_SERVERS }, (_, i) => serverName(i)), `Starter/${HOST}`];

function skipAll(ctx, reason) {
  const text = `skipped: ${reason}`;
  for (const shape of SHAPES) ctx.results.skip(SECTIONS.boot, shape.title, STARTER.boot, text, { short: "Starter", anchor: true });
  ctx.results.skip(SECTIONS.crash, CRASH_GROUP, STARTER.moving, text, { short: "Starter", anchor: true });
  ctx.results.skip(SECTIONS.crash, CRASH_GROUP, STARTER.recovered, text, { short: "Starter", anchor: true });
  for (const n of [10, 30]) ctx.results.skip(SECTIONS.stop, stopGroup(n), STARTER.stop, text, { short: "Starter", anchor: true });
  console.error(`starter: ${text}`);
}

/** Debian's tango-starter, installed when missing (the bench says so first). */
export function ensureStarter(ctx) {
  if (fs.existsSync(STARTER_BINARY)) return true;
  ctx.progress("starter: installing Debian package tango-starter (the real Starter, an anchor of this bench)");
  spawnSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", "tango-starter"], {
    stdio: "inherit",
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    timeout: 600_000,
  });
  return fs.existsSync(STARTER_BINARY);
}

/** A synchronous deregistration for an interrupted bench. */
function deregisterSync(tangoHost) {
  spawnSync(PYTHON, [path.join(BENCH_DIR, "lib", "tango_agent.py")], {
    input: `${JSON.stringify({ id: 1, op: "db-delete", servers: ALL_NAMES })}\n`,
    env: { ...process.env, TANGO_HOST: tangoHost },
    timeout: 30_000,
    stdio: ["pipe", "ignore", "ignore"],
  });
}

class StarterRun {
  constructor(ctx, db, shape, { autoRestartMinutes }) {
    this.ctx = ctx;
    this.db = db;
    this.shape = shape;
    this.n = shape.levels.length;
    this.levels = [...new Set(shape.levels)].sort((a, b) => a - b);
    this.autoRestartMinutes = autoRestartMinutes;
    this.dir = path.join(ctx.tmp, `starter-${shape.key}`);
    this.logDir = path.join(this.dir, "logs", "ds.log");
    this.instances = shape.levels.map((_, i) => serverName(i).split("/")[1]);
  }

  logFile(i) {
    return path.join(this.logDir, `TangoTest_${this.instances[i]}.log`);
  }

  url(i) {
    return `tango://${this.db.tangoHost}/dserver/${serverName(i)}`;
  }

  async setUp(agents) {
    this.agent = agents.agent;
    this.poller = agents.poller;
    this.pinger = agents.pinger;
    const bin = path.join(this.dir, "bin");
    fs.mkdirSync(bin, { recursive: true });
    fs.mkdirSync(path.join(this.dir, "logs"), { recursive: true });
    fs.writeFileSync(
      path.join(bin, "TangoTest"),
      `#!/bin/sh\n# stdout to stderr, which the Starter writes to its log file\nexec 1>&2\nexec ${TANGO_DIR}/TangoTest "$@"\n`,
      { mode: 0o755 },
    );
    const hosts = path.join(this.dir, "hosts");
    fs.writeFileSync(hosts, `${fs.readFileSync("/etc/hosts", "utf8").trimEnd()}\n127.0.0.1 ${HOST}\n`);

    await this.agent.must("db-delete", { servers: ALL_NAMES });
    const servers = this.shape.levels.map((level, i) => ({
      name: serverName(i),
      class: "TangoTest",
      devices: [`bench/tg_test/${String(i + 1).padStart(2, "0")}`],
      host: HOST,
      mode: 1,
      level,
    }));
    await this.agent.must("db-register", { servers });
    await this.agent.must("db-register", { servers: [{ name: `Starter/${HOST}`, class: "Starter", devices: [DEVICE], host: HOST, mode: 0, level: 0 }] });
    await this.agent.must("db-properties", {
      device: DEVICE,
      properties: {
        StartDsPath: [bin],
        StartServersAtStartup: ["false"],
        LogFileHome: [path.join(this.dir, "logs")],
        AutoRestartDuration: [String(this.autoRestartMinutes)],
        InterStartupLevelWait: ["1"],
      },
    });

    let output = "";
    this.process = spawnTracked(
      "unshare",
      [
        "--pid",
        "--fork",
        "--mount-proc",
        "--kill-child",
        "--uts",
        "--",
        TINI,
        "--",
        "/bin/sh",
        "-c",
        `hostname ${HOST} && mount --bind ${hosts} /etc/hosts && exec ${STARTER_BINARY} ${HOST}`,
      ],
      { env: { ...process.env, TANGO_HOST: this.db.tangoHost }, stdio: ["ignore", "pipe", "pipe"], cwd: this.dir },
    );
    const keep = (chunk) => {
      output = (output + chunk).slice(-4000);
    };
    this.process.stdout.on("data", keep);
    this.process.stderr.on("data", keep);
    this.output = () => output;
    // Up when its Servers attribute lists every server, all FAULT (not running).
    await this.waitStates((states) => states.size === this.n && [...states.values()].every((s) => s === "FAULT"), 90_000, "the Starter to come up");
    for (let i = 0; i < 200 && !childrenOf(this.process.pid).length; i++) await sleep(10);
    this.tini = childrenOf(this.process.pid)[0];
  }

  /** { name: state } from the Starter's Servers attribute ("name\tstate\tcontrolled\tlevel\t…"). */
  async states(agent = this.poller) {
    const answer = await agent.request("read", { device: DEVICE, attribute: "Servers" }, 10_000);
    if (!answer.ok) return null;
    const states = new Map();
    for (const line of answer.value ?? []) {
      const [name, state] = line.split("\t");
      if (name.startsWith("TangoTest/bench")) states.set(name, state);
    }
    states.t = answer.t;
    return states;
  }

  async waitStates(predicate, timeoutMs, what) {
    const deadline = now() + timeoutMs;
    for (;;) {
      if (this.process.exitCode !== null) throw new Error(`the Starter ended while waiting for ${what}:\n${this.output().slice(-1500)}`);
      const states = await this.states();
      if (states && predicate(states)) return states;
      if (now() > deadline) throw new Error(`timed out waiting for ${what}; Servers: ${states ? JSON.stringify([...states]) : "no answer"}`);
      await sleep(100);
    }
  }

  /** Host pids of the bench servers (children of the namespace's tini), by index. */
  pids() {
    const found = new Map();
    for (const pid of childrenOf(this.tini)) {
      const argv = cmdline(pid);
      const i = this.instances.indexOf(argv[argv[0]?.endsWith("/sh") ? 2 : 1]);
      if (i >= 0 && alive(pid)) found.set(i, pid);
    }
    return found;
  }

  clearLogs() {
    if (!fs.existsSync(this.logDir)) return;
    for (const file of fs.readdirSync(this.logDir)) if (file.startsWith("TangoTest_")) fs.rmSync(path.join(this.logDir, file), { force: true });
  }

  readyInLog(i) {
    try {
      return fs.readFileSync(this.logFile(i), "utf8").includes("Ready to accept request");
    } catch {
      return false;
    }
  }

  /** DevStartAll for every level (as the Starter itself does at startup) → every server answered ping. */
  async boot() {
    this.clearLogs();
    const timeoutMs = this.n * 8000 + 60_000;
    const ping = pingWhenAnnounced(
      this.pinger,
      this.shape.levels.map((level, i) => ({ name: serverName(i), url: this.url(i) })),
      timeoutMs,
    );
    const forks = new Array(this.n).fill(NaN);
    const readies = new Array(this.n).fill(NaN);
    let allOn = NaN;
    const onAt = new Array(this.n).fill(NaN);
    let finished = false;
    const t0 = now();
    for (const level of this.levels) await this.agent.must("command", { device: DEVICE, command: "DevStartAll", arg: level });
    const watch = (async () => {
      let tick = 0;
      while (!finished) {
        for (let i = 0; i < this.n; i++) {
          if (Number.isNaN(readies[i]) && this.readyInLog(i)) {
            readies[i] = now() - t0;
            ping.announce(i);
          }
        }
        if (tick++ % 5 === 0) for (const [i, pid] of this.pids()) if (Number.isNaN(forks[i])) forks[i] = processStartEpoch(pid) - t0;
        await sleep(10);
      }
    })();
    const poll = (async () => {
      while (!finished && Number.isNaN(allOn)) {
        const states = await this.states();
        if (states) {
          this.shape.levels.forEach((_, i) => {
            if (Number.isNaN(onAt[i]) && states.get(serverName(i)) === "ON") onAt[i] = states.t;
          });
          if (states.size === this.n && [...states.values()].every((s) => s === "ON")) allOn = states.t - t0;
        }
        await sleep(100);
      }
    })();
    try {
      const { doneAt, pongs } = await ping.done;
      // The Starter's own view (its ping thread), for the record; DevStopAll needs every server ON.
      await withTimeout(
        (async () => {
          while (Number.isNaN(allOn)) await sleep(50);
        })(),
        60_000,
        "the Starter to report every server ON",
      ).catch(() => {});
      return {
        total: doneAt - t0,
        allOn,
        onAt,
        timeline: this.shape.levels.map((level, i) => ({ name: serverName(i), level, fork: forks[i], ready: readies[i], pong: pongs[i] - t0 })),
      };
    } finally {
      finished = true;
      await Promise.all([watch, poll]);
    }
  }

  /** Until the Starter shows ON every server that has a process (DevStopAll stops only those). */
  async settle(what) {
    await this.waitStates(
      (states) => {
        const running = this.pids();
        return this.instances.every((_, i) => (running.has(i) ? states.get(serverName(i)) === "ON" : true));
      },
      60_000,
      what,
    );
  }

  /** DevStopAll for every level, highest first → every server process gone. */
  async stop() {
    await this.settle("every running server ON before DevStopAll");
    const pids = [...this.pids().values()];
    if (pids.length < this.n) {
      // Servers the crash test left down (no auto-restart in --quick): stop the rest, untimed.
      for (const level of [...this.levels].reverse()) await this.agent.must("command", { device: DEVICE, command: "DevStopAll", arg: level });
      await waitAllGone(pids, 60_000).catch(() => {});
      await this.killServers();
      return { total: NaN, untimed: true };
    }
    const t0 = now();
    for (const level of [...this.levels].reverse()) await this.agent.must("command", { device: DEVICE, command: "DevStopAll", arg: level });
    let total;
    try {
      total = (await waitAllGone(pids, 60_000)) - t0;
    } finally {
      for (const pid of pids.filter(alive)) process.kill(pid, "SIGKILL");
      // DevStartAll starts only servers the Starter sees as FAULT.
      await this.waitStates((s) => [...s.values()].every((x) => x === "FAULT"), 60_000, "every server FAULT after the stop");
    }
    return { total };
  }

  /**
   * kill -9 of servers one after the other → the Starter's state leaves ON (MOVING or FAULT) → FAULT
   * → (AutoRestartDuration > 0 and the server ran longer than that) the restarted server answers ping.
   */
  async crash(kills, onAt) {
    const moving = [];
    const fault = [];
    const recovered = [];
    const errors = [];
    const restart = this.autoRestartMinutes > 0;
    for (let k = 0; k < Math.min(kills, this.n); k++) {
      const name = serverName(k);
      if (restart) {
        // The Starter restarts a server only if it had been ON for longer than AutoRestartDuration.
        // (whole seconds: "ran more than 60 s" needs 61 s on the Starter's clock)
        const waitMs = (Number.isFinite(onAt[k]) ? onAt[k] : now()) + this.autoRestartMinutes * 60_000 + 2500 - now();
        if (waitMs > 0) {
          this.ctx.progress(
            `starter crash: waiting ${(waitMs / 1000).toFixed(0)} s until ${name} has run ${this.autoRestartMinutes} min (AutoRestartDuration)`,
          );
          await sleep(waitMs);
        }
      }
      const pid = this.pids().get(k);
      if (!pid) {
        errors.push(`${name} not running before its kill`);
        continue;
      }
      const t0 = now();
      process.kill(pid, "SIGKILL");
      fs.rmSync(this.logFile(k), { force: true });
      let sawMoving = NaN;
      let sawFault = NaN;
      try {
        const deadline = t0 + 30_000;
        while (Number.isNaN(sawFault)) {
          const states = await this.states();
          const state = states?.get(name);
          if (state && state !== "ON" && Number.isNaN(sawMoving)) sawMoving = states.t - t0;
          if (state === "FAULT") sawFault = states.t - t0;
          if (now() > deadline) throw new Error(`the Starter did not report ${name} FAULT within 30 s`);
          if (restart && Number.isNaN(sawFault) && this.readyInLog(k)) break; // restarted before we saw FAULT
          await sleep(5);
        }
        moving.push(sawMoving);
        if (Number.isFinite(sawFault)) fault.push(sawFault);
        if (restart) {
          const deadlineRestart = t0 + 60_000;
          while (!this.readyInLog(k)) {
            if (now() > deadlineRestart) throw new Error(`the Starter did not restart ${name} within 60 s`);
            await sleep(10);
          }
          const pong = await this.pinger.ping(this.url(k));
          if (!pong.ok) throw new Error(`${name} does not answer ping after its restart: ${pong.error}`);
          recovered.push(pong.t - t0);
        }
      } catch (err) {
        errors.push(err.message.split("\n")[0]);
        if (/did not restart/.test(err.message)) {
          errors.push("no further kills: the Starter does not restart servers here");
          break;
        }
      }
    }
    await this.settle("the Starter to see the restarted servers ON").catch((err) => errors.push(err.message.split("\n")[0]));
    return { moving, fault, recovered, errors };
  }

  /** Cleanup after a failed stop: SIGKILL what is left, and wait for the Starter to see it. */
  async killServers() {
    for (const pid of this.pids().values()) process.kill(pid, "SIGKILL");
    await this.waitStates((s) => [...s.values()].every((x) => x === "FAULT"), 60_000, "every server FAULT after the kill").catch(() => {});
  }

  async tearDown() {
    if (this.process) {
      this.process.kill("SIGKILL");
      await waitExit(this.process, 10_000);
    }
    await this.agent?.request("db-delete", { servers: ALL_NAMES }, 60_000);
  }
}

export async function starter(ctx) {
  if (!fs.existsSync(TINI)) return skipAll(ctx, "tini is missing (apt-get install tini): it is PID 1 of the Starter's namespace");
  if (!ensureStarter(ctx)) return skipAll(ctx, "the Debian package tango-starter could not be installed");
  const db = await tangoDatabase(ctx, ctx.options.tangoHost).catch((err) => ({
    unavailable: `the private Tango database did not start: ${err.message.split("\n")[0]}`,
  }));
  if (db.unavailable) return skipAll(ctx, db.unavailable);
  ctx.results.note(SECTIONS.boot, `The Tango Starter ran with ${db.description}.`);
  const unregisterOnAbort = onAbort(() => deregisterSync(db.tangoHost));
  const env = { TANGO_HOST: db.tangoHost };
  const agents = {};
  try {
    [agents.agent, agents.poller, agents.pinger] = await Promise.all([TangoAgent.start(env), TangoAgent.start(env), TangoAgent.start(env)]);
    const starterRuns = ctx.runs.starterBoot;
    for (const shape of SHAPES) {
      const runs = starterRuns[shape.key] ?? 0;
      const group = shape.title;
      if (runs === 0) {
        ctx.results.skip(SECTIONS.boot, group, STARTER.boot, "not run in --quick (≈ 4.5 s per server)", { short: "Starter", anchor: true });
        if (shape.key === "30x1") ctx.results.skip(SECTIONS.stop, stopGroup(30), STARTER.stop, "not run in --quick", { short: "Starter", anchor: true });
        continue;
      }
      // The crash test runs after the last 10-server boot; in a full run with auto-restart on.
      const crashHere = shape.key === "10x1" && ctx.runs.starterKills > 0;
      const autoRestartMinutes = crashHere && !ctx.quick ? 1 : 0;
      const run = new StarterRun(ctx, db, shape, { autoRestartMinutes });
      const stops = [];
      const stopErrors = [];
      const allOn = [];
      let crash = null;
      try {
        ctx.progress(`starter ${shape.key}: registering ${shape.levels.length} servers, starting the Starter`);
        await run.setUp(agents);
        let attempt = 0;
        const boots = await repeat(runs, `Starter ${shape.key}`, async () => {
          // The crash test follows the first boot: once DevStopAll has stopped a server, the Starter
          // no longer restarts it after a crash (its "stopped" flag stays set; only DevStart clears
          // it, DevStartAll does not), whatever AutoRestartDuration says.
          const first = ++attempt === 1;
          ctx.progress(`starter ${shape.key}: DevStartAll (≈ ${(shape.levels.length * 4.5).toFixed(0)} s)`);
          const booted = await run.boot();
          allOn.push(booted.allOn);
          if (crashHere && first) {
            ctx.progress(
              `starter ${shape.key}: ${Math.min(ctx.runs.starterKills, 10)} kills${autoRestartMinutes ? " (AutoRestartDuration 1 min: each kill waits until that server has been ON a minute)" : ""}`,
            );
            crash = await run.crash(ctx.runs.starterKills, booted.onAt);
          }
          ctx.progress(`starter ${shape.key}: DevStopAll`);
          try {
            const stopped = await run.stop();
            if (!stopped.untimed) stops.push(stopped.total);
          } catch (err) {
            stopErrors.push(err.message.split("\n")[0]);
            console.error(`  Starter DevStopAll: ${err.message.split("\n")[0]}`);
            await run.killServers();
          }
          return booted;
        });
        ctx.results.add({
          section: SECTIONS.boot,
          group,
          label: STARTER.boot,
          short: "Starter",
          anchor: true,
          values: boots.values,
          unit: "ms",
          errors: boots.errors,
        });
        ctx.results.add({ section: SECTIONS.boot, group, label: "Tango Starter: reports every server ON (its own ping)", values: allOn, unit: "ms" });
        if (boots.median) ctx.timelines.add(shape.key, STARTER.boot, boots.median, shape.title);
        if (shape.key !== "10x5")
          ctx.results.add({
            section: SECTIONS.stop,
            group: stopGroup(shape.levels.length),
            label: STARTER.stop,
            short: "Starter",
            anchor: true,
            values: stops,
            unit: "ms",
            errors: stopErrors,
          });
        if (crashHere) {
          if (crash) {
            ctx.results.add({
              section: SECTIONS.crash,
              group: CRASH_GROUP,
              label: STARTER.moving,
              short: "Starter",
              anchor: true,
              values: crash.moving,
              unit: "ms",
              p99: true,
              errors: crash.errors,
            });
            ctx.results.add({ section: SECTIONS.crash, group: CRASH_GROUP, label: STARTER.fault, values: crash.fault, unit: "ms", p99: true });
            if (autoRestartMinutes)
              ctx.results.add({
                section: SECTIONS.crash,
                group: CRASH_GROUP,
                label: STARTER.recovered,
                short: "Starter",
                anchor: true,
                values: crash.recovered,
                unit: "ms",
                p99: true,
              });
            else
              ctx.results.skip(SECTIONS.crash, CRASH_GROUP, STARTER.recovered, "not measured in --quick (needs AutoRestartDuration ≥ 1 min of uptime first)", {
                short: "Starter",
                anchor: true,
              });
            ctx.results.note(
              SECTIONS.crash,
              `The Starter: ${crash.moving.length} kills, its Servers attribute read every ~5 ms; it notices a dead server only through its periodic process scan and ping thread. It restarts a crashed server only when AutoRestartDuration > 0 (minutes) and the server had been ON longer than that${autoRestartMinutes ? " (set to 1 here; each server was killed after running a minute)" : ""}. Measured after the Starter's first DevStartAll: once DevStopAll has stopped a server, the Starter never auto-restarts it again after a crash, even when DevStartAll started it anew (seen here; only DevStart clears its "stopped" mark).`,
            );
          } else {
            ctx.results.skip(SECTIONS.crash, CRASH_GROUP, STARTER.moving, "the Starter's boot failed", { short: "Starter", anchor: true });
          }
        }
      } catch (err) {
        console.error(`starter ${shape.key}: ${err.stack ?? err}\n${run.output?.().slice(-1500) ?? ""}`);
        ctx.results.skip(SECTIONS.boot, group, STARTER.boot, `failed: ${err.message.split("\n")[0]}`, { short: "Starter", anchor: true });
      } finally {
        await run.tearDown();
      }
    }
    ctx.results.note(
      SECTIONS.boot,
      "The Tango Starter: DevStartAll(level) for each level through PyTango on a running Starter, servers registered in the database as Astor does, StartDsPath holding a two-line wrapper that sends TangoTest's stdout to the Starter's log file so that the bench sees \"Ready to accept request\" (the servers then run as /usr/lib/tango/TangoTest benchNN, found by the Starter's process scan). The Starter forks one server, waits about 4 s, pings it, then forks the next; levels one after the other.",
    );
    ctx.results.note(
      SECTIONS.stop,
      "The Tango Starter: DevStopAll(level) for each level (highest first), which sends each running server's admin device the Kill command, one after the other.",
    );
  } finally {
    await agents.agent?.request("db-delete", { servers: ALL_NAMES }, 60_000);
    await Promise.all(Object.values(agents).map((a) => a.close()));
    unregisterOnAbort();
    await db.stop();
  }
}
