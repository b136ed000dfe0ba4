// Workload 5: an orphan storm. The init's main program forks a spawner that forks N children (each
// exits at once) and then exits itself: all N become orphans of PID 1 at that moment, most of them
// already zombies. Measured: from the spawner's exit to the moment the init has no child left but
// the main program (every zombie reaped), polling the init's children in /proc every 1 ms.

import readline from "node:readline";
import { childrenOf, cleanEnv, INITS, now, sleep, spawnTracked, waitExit, withTimeout } from "../lib/common.mjs";
import fs from "node:fs";

const STORM = `
import os, signal, sys, time
n = int(sys.argv[1])
r, w = os.pipe()
spawner = os.fork()
if spawner == 0:
    os.close(r)
    for i in range(n):
        if os.fork() == 0:
            os._exit(0)
    os._exit(0)
os.close(w)
os.waitpid(spawner, 0)
print("orphaned %.3f %d" % (time.time() * 1000, os.getpid()), flush=True)
signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
while True:
    signal.pause()
`;

async function storm(init, n) {
  const child = spawnTracked("unshare", ["--pid", "--fork", "--mount-proc", "--kill-child", ...init.argv, "/usr/bin/python3", "-c", STORM, String(n)], {
    stdio: ["ignore", "pipe", "pipe"],
    env: cleanEnv(),
  });
  let stderr = "";
  child.stderr.on("data", (d) => {
    if (stderr.length < 4096) stderr += d;
  });
  try {
    const line = await withTimeout(
      new Promise((resolve, reject) => {
        readline.createInterface({ input: child.stdout }).once("line", resolve);
        child.once("exit", (code) => reject(new Error(`${init.label} ended (${code}) before the storm: ${stderr}`)));
      }),
      120_000,
      `${n} orphans under ${init.label}`,
    );
    const t0 = Number(line.split(" ")[1]);
    const initPid = childrenOf(child.pid)[0];
    let left = 0;
    let polls = 0;
    for (;;) {
      const children = childrenOf(initPid);
      left = children.length;
      polls++;
      if (left <= 1) break;
      if (now() - t0 > 60_000) throw new Error(`${left - 1} orphans still not reaped after 60 s under ${init.label}`);
      await sleep(1);
    }
    return { total: now() - t0, polls };
  } finally {
    child.kill("SIGKILL");
    await waitExit(child, 10_000);
  }
}

export async function reaping(ctx) {
  const n = ctx.runs.orphans;
  const section = `5. Reaping: ${n.toLocaleString("en")} orphans → zero zombies left`;
  const before = ctx.baseline ? { label: ctx.baseline.label, argv: [ctx.baseline.binary, "--"], before: true } : null;
  const inits = [INITS[0], ...(before ? [before] : []), ...INITS.slice(1)].filter((i) => fs.existsSync(i.argv[0]));
  const values = new Map(inits.map((i) => [i.label, []]));
  const errors = new Map(inits.map((i) => [i.label, []]));
  for (let r = 0; r < ctx.runs.reaping; r++) {
    for (const init of inits) {
      ctx.progress(`reaping: ${n} orphans under ${init.label} (run ${r + 1}/${ctx.runs.reaping})`);
      try {
        values.get(init.label).push((await storm(init, n)).total);
      } catch (err) {
        errors.get(init.label).push(err.message.split("\n")[0]);
      }
    }
  }
  for (const init of inits) {
    ctx.results.add({
      section,
      group: "spawner exits → the init has reaped every orphan",
      label: init.label,
      anchor: init.anchor || init.before,
      values: values.get(init.label),
      unit: "ms",
      compare: init.anchor || init.before ? undefined : ["tini", "dumb-init", ...(before ? [before.label] : [])],
      errors: errors.get(init.label),
    });
  }
  ctx.results.note(
    section,
    `The init's main program (python) forks a spawner that forks ${n.toLocaleString("en")} children that exit at once, and exits: they all become orphans of PID 1 at once, most already zombies. Timed from the spawner's exit (as the main program saw it) until PID 1 has no child but the main program (\`/proc/<init>/task/*/children\` polled about every 1–2 ms).`,
  );
}
