// Workload 10: socket activation, with Debian's gunicorn serving a tiny WSGI app under starter-init.
//  - a client sends 200 requests in a loop (one every 20 ms, a new connection each) while gunicorn is
//    killed -9 five times (its whole process group, and the next request only once it is dead): with
//    its socket held by the init (LISTEN_FDS), against gunicorn binding the port itself; how many
//    requests were refused or reset, and how long the request right after each kill took;
//  - lazy: the time from connect to answer of the first request, which starts gunicorn, against a
//    request to the gunicorn it started.

import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { alive, childrenOf, cmdline, now, sleep, startInit } from "../lib/common.mjs";
import { portBlock } from "../lib/tango.mjs";

const SECTION = "10. Socket activation: gunicorn (Debian) with its socket held by the init";
const GUNICORN = "/usr/bin/gunicorn";
const REQUESTS = 200;
const KILL_AT = new Set([20, 60, 100, 140, 180]);
const PACE_MS = 20;

const APP = `import os
def app(environ, start_response):
    body = ("hello from %d\\n" % os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
`;

/** One request on a new connection: "answered", "refused", "reset" or "other", and how long it took. */
function request(port, timeoutMs = 30_000) {
  const started = now();
  return new Promise((resolve) => {
    const req = http.get({ host: "127.0.0.1", port, path: "/", agent: false, timeout: timeoutMs }, (res) => {
      let body = "";
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => resolve({ outcome: res.statusCode === 200 && body.startsWith("hello") ? "answered" : "other", ms: now() - started }));
      res.on("error", () => resolve({ outcome: "reset", ms: now() - started }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (err) => {
      const outcome = err.code === "ECONNREFUSED" ? "refused" : err.code === "ECONNRESET" || err.message === "socket hang up" ? "reset" : "other";
      resolve({ outcome, ms: now() - started });
    });
  });
}

function writeConfig(dir, port, mode) {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "app.py"), APP);
  const common = [
    `    binary: ${GUNICORN}`,
    // Restarted at once, and never given up on: the kills are the test, not a crash loop.
    "    restart: {initialDelay: 100ms, factor: 1, burst: {count: 100, window: 1m}}",
  ];
  const lines =
    mode === "sockets"
      ? [...common, `    args: [--chdir, ${dir}, --workers, "1", "app:app"]`, `    sockets: [tcp:127.0.0.1:${port}]`]
      : mode === "own"
        ? [...common, `    args: [--chdir, ${dir}, --workers, "1", --bind, "127.0.0.1:${port}", "app:app"]`, '    readiness: "log:Booting worker"']
        : [...common, `    args: [--chdir, ${dir}, --workers, "1", "app:app"]`, `    sockets: [tcp:127.0.0.1:${port}]`, "    activation: lazy"];
  const config = path.join(dir, "config.yaml");
  fs.writeFileSync(config, ["settings:", `  controlSocket: ${path.join(dir, "control.sock")}`, "servers:", "  - name: web", ...lines, ""].join("\n"));
  return config;
}

async function gunicornMaster(init) {
  const pid = await init.pid();
  for (let i = 0; i < 3000; i++) {
    const master = childrenOf(pid).find((child) => cmdline(child).some((word) => word.includes("gunicorn")) && alive(child));
    if (master && childrenOf(master).some(alive)) return master;
    await sleep(5);
  }
  throw new Error("no gunicorn with a worker under the init");
}

/** The loop of one run: counts of each outcome, and the time of the request sent right after each kill. */
async function killLoop(ctx, mode, run, port) {
  const config = writeConfig(path.join(ctx.tmp, `sockets-${mode}-${run}`), port, mode);
  const init = startInit(["-c", config]);
  try {
    await init.waitRecord((r) => r.kind === "boot-complete", ctx.timeouts.boot, "boot-complete");
    await gunicornMaster(init);
    // Warm: the first request answered before the loop begins.
    for (let i = 0; i < 100 && (await request(port)).outcome !== "answered"; i++) await sleep(50);
    const counts = { answered: 0, refused: 0, reset: 0, other: 0 };
    const afterKill = [];
    let next = now();
    let justKilled = false;
    for (let i = 0; i < REQUESTS; i++) {
      if (KILL_AT.has(i)) {
        const master = await gunicornMaster(init);
        const group = [master, ...childrenOf(master)];
        process.kill(-master, "SIGKILL");
        while (group.some(alive)) await sleep(1);
        justKilled = true;
        next = now();
      }
      const wait = next - now();
      if (wait > 0) await sleep(wait);
      next += PACE_MS;
      const { outcome, ms } = await request(port);
      counts[outcome] += 1;
      if (justKilled) afterKill.push({ outcome, ms });
      justKilled = false;
    }
    return { counts, afterKill };
  } finally {
    await init.stop();
  }
}

/** Lazy: boot, then the first request's connect → answer (gunicorn starts on it), then a second one. */
async function lazyRun(ctx, run, port) {
  const config = writeConfig(path.join(ctx.tmp, `sockets-lazy-${run}`), port, "lazy");
  const init = startInit(["-c", config]);
  try {
    await init.waitRecord((r) => r.kind === "boot-complete", ctx.timeouts.boot, "boot-complete");
    await sleep(300);
    if (childrenOf(await init.pid()).length !== 0) throw new Error("a process runs before the first connection");
    const first = await request(port);
    const second = await request(port);
    if (first.outcome !== "answered" || second.outcome !== "answered") throw new Error(`lazy requests: ${first.outcome}, ${second.outcome}`);
    return { first: first.ms, second: second.ms };
  } finally {
    await init.stop();
  }
}

export async function sockets(ctx) {
  if (!fs.existsSync(GUNICORN)) {
    ctx.results.note(SECTION, "gunicorn is not installed: apt-get install --no-install-recommends gunicorn (test/prereqs.sh bench)");
    return;
  }
  const runs = ctx.runs.sockets ?? (ctx.quick ? 1 : 3);
  const base = await portBlock(3);
  const loopGroup = `${REQUESTS} requests, one every ${PACE_MS} ms, gunicorn killed -9 five times: requests refused or reset`;
  const afterGroup = "the request sent right after each kill (once gunicorn is dead): sent → answered, or → refused";
  const modes = [
    { mode: "sockets", label: "socket held by starter-init (LISTEN_FDS)", port: base + 1 },
    { mode: "own", label: "gunicorn binds the port itself (no socket activation)", port: base + 2, anchor: true },
  ];
  const measured = new Map(modes.map(({ mode }) => [mode, { failed: [], afterKill: [], totals: { answered: 0, refused: 0, reset: 0, other: 0 } }]));
  for (let run = 0; run < runs; run++) {
    // Interleaved, so that a burst of load on the shared machine hits both alike.
    for (const { mode, port } of modes) {
      ctx.progress(`sockets: kill loop, ${mode}, run ${run + 1}/${runs}`);
      const { counts, afterKill } = await killLoop(ctx, mode, run, port);
      const m = measured.get(mode);
      m.failed.push(counts.refused + counts.reset + counts.other);
      for (const key of Object.keys(counts)) m.totals[key] += counts[key];
      m.afterKill.push(...afterKill);
    }
  }
  for (const { mode, label, anchor } of modes) {
    const m = measured.get(mode);
    ctx.results.add({ section: SECTION, group: loopGroup, label, anchor, values: m.failed, unit: "count", compare: anchor ? undefined : [] });
  }
  for (const { mode, label, anchor } of modes) {
    const m = measured.get(mode);
    const failed = m.afterKill.filter((r) => r.outcome !== "answered").length;
    ctx.results.add({
      section: SECTION,
      group: afterGroup,
      label: `${label}${failed ? ` (${failed} of ${m.afterKill.length} not answered)` : ""}`,
      anchor,
      values: m.afterKill.map((r) => r.ms),
      unit: "ms",
    });
  }
  for (const { mode, label } of modes) {
    const t = measured.get(mode).totals;
    ctx.results.note(
      SECTION,
      `${label}: over ${runs} run(s) of ${REQUESTS}: ${t.answered} answered, ${t.refused} refused, ${t.reset} reset, ${t.other} other.`,
    );
  }
  ctx.results.note(
    SECTION,
    "Each kill is SIGKILL to gunicorn's process group (master and worker); the next request goes out once both are dead. A request in flight at the moment of a SIGKILL would be lost whatever holds the socket; this loop measures the requests that arrive while gunicorn is down or restarting. Restart policy: 100 ms, no backoff growth.",
  );

  const lazy = { first: [], second: [] };
  for (let run = 0; run < Math.max(runs, 3); run++) {
    ctx.progress(`sockets: lazy, run ${run + 1}`);
    const r = await lazyRun(ctx, run, base + 3);
    lazy.first.push(r.first);
    lazy.second.push(r.second);
  }
  const lazyGroup = "activation: lazy — no process until a connection";
  ctx.results.add({ section: SECTION, group: lazyGroup, label: "first request: connect → answer (gunicorn starts on it)", values: lazy.first, unit: "ms" });
  ctx.results.add({ section: SECTION, group: lazyGroup, label: "the next request, to the gunicorn it started", values: lazy.second, unit: "ms", anchor: true });
}
