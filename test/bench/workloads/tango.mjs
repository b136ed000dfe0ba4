// Workloads 1-3 with real TangoTest servers, starter-init against forking by hand (the practical
// limit): boot (start command → every admin device answering a PyTango ping), crash (kill -9 → the
// supervisor knows, → the server answers ping again), stop (stop command → every process gone).
// Folded in from the former tango-boot.mjs.

import path from "node:path";
import { Control, alive, childrenOf, cmdline, log, now, sleep, startInit, waitAllGone, withTimeout } from "../lib/common.mjs";
import { forkByHand, pingWhenAnnounced, portBlock, tangoSet, writeInitConfig } from "../lib/tango.mjs";

/** Where rows go: the Starter workload (starter.mjs) adds its rows to the same groups. */
export const SECTIONS = {
  boot: "1. Boot: start command → every admin device answers a PyTango ping",
  crash: "2. Crash: kill -9 of a running server",
  stop: "3. Stop: stop command → every server process gone",
};
export const CRASH_GROUP = "kill -9 → supervisor knows / → server answers ping again";
export const stopGroup = (n) => `stop ${n} TangoTest (one level)`;
export const STARTER = {
  boot: "Tango Starter",
  moving: "Tango Starter: state leaves ON",
  fault: "Tango Starter: reports FAULT",
  recovered: "Tango Starter: answers ping again",
  stop: "Tango Starter DevStopAll",
};

/** The three boot shapes of the issue. */
export const SHAPES = [
  { key: "10x1", title: "10 TangoTest, one level", levels: Array(10).fill(1) },
  { key: "30x1", title: "30 TangoTest, one level", levels: Array(30).fill(1) },
  { key: "10x5", title: "10 TangoTest over 5 levels", levels: [1, 1, 2, 2, 3, 3, 4, 4, 5, 5] },
];

const MODES = {
  parallel: { label: "starter-init parallel", settings: [] },
  sequential: { label: "starter-init sequential (Starter spacing)", settings: ["startMode: sequential"] },
};

/** Host pids of the init's TangoTest children, by instance name. */
function serverPids(initPid) {
  const byInstance = new Map();
  for (const pid of childrenOf(initPid)) {
    const argv = cmdline(pid);
    if (argv[0]?.endsWith("/TangoTest") && alive(pid)) byInstance.set(argv[1], pid);
  }
  return byInstance;
}

/**
 * Fork and ready times from the init's own boot timeline (the control socket's `timeline`): the
 * fork is stamped just before spawning, while the log record "started" may be written a little
 * later (after the other forks of the same level). Its clock is the init's monotonic one: the
 * offset to ours comes from the "ready" log records, each written when readiness was seen.
 */
async function preciseTimeline(dir, init, index, t0, forks, readies) {
  let control;
  try {
    control = await Control.connect(path.join(dir, "control.sock"), 2000);
    const timeline = await control.request("timeline", {}, 5000);
    const readyLog = new Map(init.records.filter((r) => r.kind === "ready").map((r) => [r.server, r.time]));
    const offsets = timeline.entries.filter((e) => e.readyAt !== null && readyLog.has(e.name)).map((e) => readyLog.get(e.name) - e.readyAt);
    if (offsets.length === 0) return;
    const offset = Math.min(...offsets);
    for (const entry of timeline.entries) {
      const i = index.get(entry.name);
      if (i === undefined) continue;
      if (entry.forkAt !== null) forks[i] = entry.forkAt + offset - t0;
      if (entry.readyAt !== null) readies[i] = entry.readyAt + offset - t0;
    }
  } catch (err) {
    log("timeline", err.message);
  } finally {
    control?.close();
  }
}

/** One boot under starter-init: spawn → every server answered ping. Times are ms after the spawn. */
async function bootInit(ctx, shape, mode, binary = undefined) {
  const set = tangoSet({ levels: shape.levels, base: await portBlock(shape.levels.length) });
  const config = writeInitConfig(path.join(ctx.tmp, `boot-${mode}-${shape.key}`), set, { settings: MODES[mode].settings });
  const index = new Map(set.map((s, i) => [s.name, i]));
  const ping = pingWhenAnnounced(ctx.pinger, set, ctx.timeouts.boot);
  const t0 = now();
  const init = startInit(["-c", config], { binary });
  const forks = new Array(set.length).fill(NaN);
  const readies = new Array(set.length).fill(NaN);
  init.onRecord((record) => {
    const i = index.get(record.server);
    if (i === undefined) return;
    if (record.kind === "started" && Number.isNaN(forks[i])) forks[i] = record.time - t0;
    if (record.kind === "ready" && Number.isNaN(readies[i])) {
      readies[i] = record.time - t0;
      ping.announce(i);
    }
  });
  try {
    const { doneAt, pongs } = await ping.done.catch((err) => {
      throw new Error(`${err.message}${init.trouble() ? ` (init: ${init.trouble()})` : ""}`);
    });
    await preciseTimeline(path.dirname(config), init, index, t0, forks, readies);
    return {
      total: doneAt - t0,
      timeline: set.map((s, i) => ({ name: s.name, level: s.level, fork: forks[i], ready: readies[i], pong: pongs[i] - t0 })),
    };
  } finally {
    await init.kill();
  }
}

/** The same servers forked by hand all at once. */
async function bootByHand(ctx, shape) {
  const set = tangoSet({ levels: shape.levels, base: await portBlock(shape.levels.length), prefix: "h" });
  const ping = pingWhenAnnounced(ctx.pinger, set, ctx.timeouts.boot);
  const readies = new Array(set.length).fill(NaN);
  const t0 = now();
  const hand = forkByHand(set, (i, t) => {
    readies[i] = t - t0;
    ping.announce(i);
  });
  try {
    const { doneAt, pongs } = await ping.done;
    return {
      total: doneAt - t0,
      timeline: set.map((s, i) => ({ name: s.name, level: 1, fork: hand.children[i].forkAt - t0, ready: readies[i], pong: pongs[i] - t0 })),
    };
  } finally {
    await hand.kill();
  }
}

function summarize(runs, errors) {
  const sorted = [...runs].sort((a, b) => a.total - b.total);
  return { values: runs.map((r) => r.total), median: sorted[Math.floor((sorted.length - 1) / 2)], errors, runs };
}

/** Runs `once` n times; returns the totals and the run with the median total. Failures are counted. */
async function repeat(n, what, once) {
  const runs = [];
  const errors = [];
  for (let r = 0; r < n; r++) {
    try {
      const result = await once();
      runs.push(result);
      log(what, `run ${r + 1}: ${result.total.toFixed(0)} ms`);
    } catch (err) {
      errors.push(err.message.split("\n")[0]);
      console.error(`  ${what}: run ${r + 1} failed: ${err.message.split("\n")[0]}`);
    }
  }
  return summarize(runs, errors);
}

/**
 * Runs every contender round-robin (run 1 of each, then run 2 of each, …) so that a burst of load on
 * the shared machine hits all of them alike. contenders: [{ key, runs, once }]; returns key → summary.
 */
async function interleave(ctx, what, contenders) {
  const collected = new Map(contenders.map((c) => [c.key, { runs: [], errors: [] }]));
  const rounds = Math.max(...contenders.map((c) => c.runs));
  for (let r = 0; r < rounds; r++) {
    ctx.progress(`${what}: round ${r + 1}/${rounds}`);
    for (const c of contenders) {
      if (r >= c.runs) continue;
      const into = collected.get(c.key);
      try {
        const result = await c.once();
        into.runs.push(result);
        log(what, c.key, `run ${r + 1}: ${result.total.toFixed(0)} ms`);
      } catch (err) {
        into.errors.push(err.message.split("\n")[0]);
        console.error(`  ${what} ${c.key}: run ${r + 1} failed: ${err.message.split("\n")[0]}`);
      }
    }
  }
  return new Map([...collected].map(([key, { runs, errors }]) => [key, summarize(runs, errors)]));
}

export async function boot(ctx) {
  const section = SECTIONS.boot;
  for (const shape of SHAPES) {
    const group = shape.title;
    const before = ctx.baseline ? `${ctx.baseline.label} parallel` : null;
    const results = await interleave(ctx, `boot ${shape.key}`, [
      { key: "parallel", runs: ctx.runs.boot, once: () => bootInit(ctx, shape, "parallel") },
      ...(before ? [{ key: "before", runs: ctx.runs.boot, once: () => bootInit(ctx, shape, "parallel", ctx.baseline.binary) }] : []),
      { key: "sequential", runs: ctx.runs.bootSequential, once: () => bootInit(ctx, shape, "sequential") },
      { key: "hand", runs: ctx.runs.boot, once: () => bootByHand(ctx, shape) },
    ]);
    for (const mode of ["parallel", "sequential"]) {
      const result = results.get(mode);
      ctx.results.add({
        section,
        group,
        label: MODES[mode].label,
        values: result.values,
        unit: "ms",
        compare: ["forked by hand", STARTER.boot, ...(before && mode === "parallel" ? [before] : [])],
        errors: result.errors,
      });
      if (result.median) ctx.timelines.add(shape.key, MODES[mode].label, result.median, shape.title);
    }
    if (before) {
      const result = results.get("before");
      ctx.results.add({ section, group, label: before, short: ctx.baseline.label, anchor: true, values: result.values, unit: "ms", errors: result.errors });
    }
    const hand = results.get("hand");
    ctx.results.add({ section, group, label: "forked by hand", short: "by hand", anchor: true, values: hand.values, unit: "ms", errors: hand.errors });
    if (hand.median) ctx.timelines.add(shape.key, "forked by hand", hand.median, shape.title);
  }
  ctx.results.note(
    section,
    "Measured from spawning the command (starter-init: the init's own start, ~0.1 s, included; the Starter: DevStartAll on a running Starter) until the last admin device `dserver/TangoTest/<inst>` answered a ping from PyTango. Each server is pinged once it announced readiness (TangoTest 9.3 segfaults when pinged while still exporting). starter-init sequential uses the Starter's spacing (500 ms between servers, 1 s between levels) but waits for readiness, not for a fixed 4 s.",
  );
}

// ---- crash --------------------------------------------------------------------------------------

export async function crash(ctx) {
  const section = SECTIONS.crash;
  const shape = SHAPES[0];
  const set = tangoSet({ levels: shape.levels, base: await portBlock(shape.levels.length), prefix: "c" });
  // A constant, immediate restart so that every kill measures the same path (the default policy
  // waits 500 ms before the first restart, doubling for each further crash within a minute).
  const config = writeInitConfig(path.join(ctx.tmp, "crash"), set, { defaults: ["restart: {initialDelay: 0, factor: 1, burst: {count: 10000, window: 1m}}"] });
  const init = startInit(["-c", config]);
  const detected = [];
  const recovered = [];
  const errors = [];
  try {
    await init.waitRecord((r) => r.kind === "boot-complete", ctx.timeouts.boot, "boot-complete");
    const initPid = await init.pid();
    ctx.progress(`crash: ${ctx.runs.kills} kills`);
    for (let k = 0; k < ctx.runs.kills; k++) {
      const server = set[k % set.length];
      const pid = serverPids(initPid).get(server.instance);
      if (!pid) {
        errors.push(`${server.name} not running before kill ${k + 1}`);
        await sleep(500);
        continue;
      }
      const exitsBefore = init.records.filter((r) => r.server === server.name && r.kind === "exited").length;
      const readiesBefore = init.records.filter((r) => r.server === server.name && r.kind === "ready").length;
      const nth = (kind, count) => (r) =>
        r.server === server.name && r.kind === kind && init.records.filter((x) => x.server === server.name && x.kind === kind).indexOf(r) === count;
      const t0 = now();
      process.kill(pid, "SIGKILL");
      try {
        const exited = await init.waitRecord(nth("exited", exitsBefore), 10_000, `${server.name} exit`);
        detected.push(Math.max(0, exited.time - t0));
        await init.waitRecord(nth("ready", readiesBefore), 30_000, `${server.name} ready again`);
        const pong = await ctx.pinger.ping(server.url);
        if (!pong.ok) throw new Error(`${server.name} no ping after restart: ${pong.error}`);
        recovered.push(pong.t - t0);
      } catch (err) {
        errors.push(err.message.split("\n")[0]);
      }
      await sleep(30);
    }
  } finally {
    await init.kill();
  }
  const group = CRASH_GROUP;
  ctx.results.add({
    section,
    group,
    label: "starter-init: exit known (log record)",
    values: detected,
    unit: "ms",
    p99: true,
    compare: [STARTER.moving],
    errors,
  });
  ctx.results.add({ section, group, label: "starter-init: answers ping again", values: recovered, unit: "ms", p99: true, compare: [STARTER.recovered] });
  ctx.results.note(
    section,
    `${ctx.runs.kills} kills over 10 servers; "exit known" is the time of the init's \`exited\` record (1 ms resolution) after the bench's kill(2); restart policy \`initialDelay: 0\` (the default 500 ms first backoff would add 500 ms).`,
  );
}

// ---- stop ---------------------------------------------------------------------------------------

/**
 * A TangoTest acts on SIGTERM only at a 2 s tick counted from its own start (measured: stopped 0,
 * 0.5, 1, 1.5 s after readiness it exits 2.0, 1.5, 1.0, 0.5 s later). So every contender is stopped
 * the same time after its last server became ready, or the phase of that tick would decide.
 */
const STOP_AFTER_READY_MS = 500;

async function bootForStop(ctx, set, dir, settings) {
  const config = writeInitConfig(dir, set, { settings });
  const init = startInit(["-c", config]);
  try {
    await init.waitRecord((r) => r.kind === "boot-complete", ctx.timeouts.boot, "boot-complete");
    const initPid = await init.pid();
    const pids = [...serverPids(initPid).values()];
    if (pids.length !== set.length) throw new Error(`${pids.length} of ${set.length} servers running after boot (init: ${init.trouble()})`);
    const control = await Control.connect(path.join(dir, "control.sock"));
    const lastReady = Math.max(...init.records.filter((r) => r.kind === "ready").map((r) => r.time));
    await sleep(lastReady + STOP_AFTER_READY_MS - now());
    return { init, pids, control };
  } catch (err) {
    await init.kill();
    throw err;
  }
}

async function stopInit(ctx, n, mode, how) {
  const set = tangoSet({ levels: Array(n).fill(1), base: await portBlock(n), prefix: "s" });
  const dir = path.join(ctx.tmp, `stop-${mode}-${how}-${n}`);
  const { init, pids, control } = await bootForStop(ctx, set, dir, MODES[mode].settings);
  try {
    const t0 = now();
    if (how === "stop-all") {
      await control.request("stop-all", { wait: false });
    } else {
      for (const server of set) await control.request("stop", { servers: [server.name], wait: true, timeoutMs: 30_000 });
    }
    const gone = await waitAllGone(pids, ctx.timeouts.stop);
    // Servers that did not exit on SIGTERM within their stop timeout (5 s) and got SIGKILL.
    await sleep(50);
    const killed = init.records.filter((r) => r.kind === "stop-timeout" && r.time >= t0 - 1).length;
    return { total: gone - t0, killed };
  } finally {
    control.close();
    await init.kill();
  }
}

async function stopByHand(ctx, n) {
  const set = tangoSet({ levels: Array(n).fill(1), base: await portBlock(n), prefix: "k" });
  let ready = 0;
  let lastReady = 0;
  let allReady;
  const readyPromise = new Promise((resolve) => (allReady = resolve));
  const hand = forkByHand(set, (i, t) => {
    lastReady = Math.max(lastReady, t);
    if (++ready === n) allReady();
  });
  try {
    await withTimeout(readyPromise, ctx.timeouts.boot, "servers forked by hand to be ready");
    await sleep(lastReady + STOP_AFTER_READY_MS - now());
    const pids = hand.children.map((c) => c.pid);
    const t0 = now();
    for (const child of hand.children) child.kill("SIGTERM");
    const gone = await waitAllGone(pids, ctx.timeouts.stop);
    return { total: gone - t0 };
  } finally {
    await hand.kill();
  }
}

export async function stop(ctx) {
  const section = SECTIONS.stop;
  const killed = [];
  const countKilled = (result, what) => {
    const k = result.runs.reduce((sum, r) => sum + (r.killed ?? 0), 0);
    if (k) killed.push(`${what}: ${k} server(s) in ${result.runs.length} run(s)`);
  };
  for (const n of [10, 30]) {
    const group = stopGroup(n);
    const contenders = [
      { key: "parallel", runs: ctx.runs.stop, once: () => stopInit(ctx, n, "parallel", "stop-all") },
      { key: "sequential", runs: ctx.runs.stop, once: () => stopInit(ctx, n, "sequential", "stop-all") },
      { key: "hand", runs: ctx.runs.stop, once: () => stopByHand(ctx, n) },
    ];
    if (n === 10) contenders.push({ key: "one-by-one", runs: ctx.runs.stopOneByOne, once: () => stopInit(ctx, n, "parallel", "one-by-one") });
    const results = await interleave(ctx, `stop ${n}`, contenders);
    for (const mode of ["parallel", "sequential"]) {
      const result = results.get(mode);
      countKilled(result, `stop-all ${n} (${mode} config)`);
      ctx.results.add({
        section,
        group,
        label: `starter-init stop-all (${mode} config)`,
        values: result.values,
        unit: "ms",
        compare: ["SIGTERM to all by hand", STARTER.stop],
        errors: result.errors,
      });
    }
    if (results.has("one-by-one")) {
      const result = results.get("one-by-one");
      countKilled(result, `stop one by one ${n}`);
      // For scale only (what stopping one at a time costs): not a mode of starter-init's stop-all.
      ctx.results.add({
        section,
        group,
        label: "(for scale) `stop` one server after the other, each awaited",
        values: result.values,
        unit: "ms",
        errors: result.errors,
      });
    }
    const hand = results.get("hand");
    ctx.results.add({ section, group, label: "SIGTERM to all by hand", short: "by hand", anchor: true, values: hand.values, unit: "ms", errors: hand.errors });
  }
  if (killed.length) {
    ctx.results.note(
      section,
      `TangoTest servers that did not exit within the 5 s stop timeout after SIGTERM and were SIGKILLed by starter-init: ${killed.join("; ")}.`,
    );
  }
  ctx.results.note(
    section,
    `starter-init: a \`stop-all\` request on the control socket (connection opened beforehand), then every server pid polled every 2 ms until gone; stop-all signals a whole level at once whatever the start mode, so the parallel and sequential configs stop alike. TangoTest acts on SIGTERM (and on the Kill command) only at a 2 s tick counted from its start, so how long a stop takes is mostly the phase of that tick: starter-init and the by-hand anchor are stopped ${STOP_AFTER_READY_MS} ms after their last server became ready (the same phase: ≈ 1.5 s to go). In the sequential config the servers became ready 0.5 s apart, so their ticks are spread and the last to come decides (≈ 0.4 s more, the servers' doing, not the init's); the Starter is stopped once it reports every server ON, its servers forked ≈ 4 s apart.`,
  );
}

export { repeat };
