// Workload 13: an in-place upgrade. The init (PID 1 of a PID namespace) runs 8 TangoTest servers and 2
// flooders, each flooder writing a line with its own clock about every millisecond; `reexec` replaces
// the init with its own binary, again and again. Measured for each exec:
//  - wall time: from the request to the moment the new init answers `hello` as the re-executed one
//    (what `starter-init reexec` waits for), as the client sees it; and the init's own figure (request
//    to the new init's taking over, its `execMs`);
//  - output unread: the init's own figure (its last read of the servers' pipes before the exec to its
//    first after, `unreadMs`), and as a server sees it: the longest a flooder line waited between its
//    write and its arrival in the log file (the log file's time stamp is when the init read it).
// Every flooder line is checked too: none lost, none twice, none split.

import fs from "node:fs";
import path from "node:path";
import { Control, now, PYTHON, sleep, startInit, TANGO_DIR } from "../lib/common.mjs";
import { portBlock } from "../lib/tango.mjs";

const SECTION = "13. Reexec: the init replaced in place, 10 servers running";
const TANGO_SERVERS = 8;

const FLOODER = `
import sys, time
out = sys.stdout
i = 0
while True:
    i += 1
    out.write("n:%d:%.3f\\n" % (i, time.time() * 1000))
    out.flush()
    time.sleep(0.001)
`;

function writeConfig(dir, base) {
  fs.mkdirSync(dir, { recursive: true });
  const flooder = path.join(dir, "flood.py");
  fs.writeFileSync(flooder, FLOODER);
  const lines = [
    "settings:",
    `  searchPath: [${TANGO_DIR}]`,
    `  controlSocket: ${path.join(dir, "control.sock")}`,
    "  defaults:",
    "    stopTimeout: 5s",
    "    log: {console: false}",
    "servers:",
  ];
  for (let n = 1; n <= TANGO_SERVERS; n++) {
    lines.push(`  - name: TangoTest/x${String(n).padStart(2, "0")}`, `    args: -nodb -dlist sys/tg_test/${n} -ORBendPoint giop:tcp:127.0.0.1:${base + n}`);
  }
  for (const name of ["flood1", "flood2"]) {
    lines.push(
      `  - name: ${name}`,
      `    binary: ${PYTHON}`,
      `    args: [-u, ${flooder}]`,
      "    readiness: none",
      `    log: {file: ${path.join(dir, `${name}.log`)}, maxSize: 1GiB, console: false}`,
    );
  }
  fs.writeFileSync(path.join(dir, "config.yaml"), `${lines.join("\n")}\n`);
  return { config: path.join(dir, "config.yaml"), socket: path.join(dir, "control.sock") };
}

/** Each flooder line: its number, when it was written (flooder's clock) and when the init read it (log stamp); and what is wrong. */
function readFlood(file) {
  const lines = [];
  const problems = [];
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    if (line === "" || line.includes(" [starter-init] ")) continue;
    const match = /^(\S+) n:(\d+):([\d.]+)$/.exec(line);
    if (!match) {
      problems.push(`malformed: ${line.slice(0, 80)}`);
      continue;
    }
    lines.push({ n: Number(match[2]), writtenAt: Number(match[3]), readAt: Date.parse(match[1]) });
  }
  lines.forEach((line, i) => {
    if (line.n !== i + 1 && problems.length < 5) problems.push(`line ${i + 1} is number ${line.n}`);
  });
  return { lines, problems };
}

async function helloOf(socket) {
  const control = await Control.connect(socket, 30_000);
  try {
    return await control.request("hello", {}, 10_000);
  } finally {
    control.close();
  }
}

export async function reexec(ctx) {
  const runs = ctx.options.quick ? 3 : 8;
  const dir = path.join(ctx.tmp, "reexec");
  const base = await portBlock(TANGO_SERVERS);
  const { config, socket } = writeConfig(dir, base);
  const init = startInit(["-c", config]);
  const wall = [];
  const execMs = [];
  const unreadMs = [];
  const waited = [];
  const errors = [];
  try {
    await init.waitRecord((r) => r.kind === "boot-complete", ctx.timeouts.boot, "the boot");
    await sleep(1000);
    for (let run = 0; run < runs; run++) {
      ctx.progress(`reexec: run ${run + 1}/${runs}`);
      const before = await helloOf(socket);
      const control = await Control.connect(socket);
      const started = now();
      const startedWall = Date.now();
      try {
        await control.request("reexec", {}, 60_000);
      } finally {
        control.close();
      }
      let after = null;
      while (now() - started < 60_000) {
        try {
          const hello = await helloOf(socket);
          if ((hello.reexec?.generation ?? 0) > (before.reexec?.generation ?? 0)) {
            after = hello;
            break;
          }
        } catch {
          // Between the two inits: connect again.
        }
        await sleep(2);
      }
      if (!after) {
        errors.push(`run ${run + 1}: the new init did not answer within 60 s`);
        break;
      }
      wall.push(now() - started);
      execMs.push(after.reexec.execMs);
      unreadMs.push(after.reexec.unreadMs);
      // Let the flooders write on a while, then the longest wait of a line written around the exec.
      await sleep(1500);
      for (const name of ["flood1", "flood2"]) {
        const { lines } = readFlood(path.join(dir, `${name}.log`));
        const around = lines.filter((line) => line.writtenAt >= startedWall - 1000 && line.writtenAt <= startedWall + 10_000);
        if (around.length) waited.push(Math.max(...around.map((line) => line.readAt - line.writtenAt)));
      }
    }
    for (const name of ["flood1", "flood2"]) {
      const { lines, problems } = readFlood(path.join(dir, `${name}.log`));
      if (problems.length) errors.push(`${name}: ${problems.join("; ")}`);
      ctx.results.note(
        SECTION,
        `${name}: ${lines.length.toLocaleString("en")} lines across ${wall.length} execs, ${problems.length ? problems.join("; ") : "none lost, none twice, none split"}.`,
      );
    }
  } finally {
    await init.stop();
  }
  const row = (group, label, values, extra = {}) => ctx.results.add({ section: SECTION, group, label, values, unit: "ms", errors, ...extra });
  row("wall time of one exec", "request → the new init answers (client)", wall);
  row("wall time of one exec", "request → the new init has taken over (init's execMs)", execMs);
  row("longest time a server's output went unread", "the init's last read → its first after (unreadMs)", unreadMs);
  row("longest time a server's output went unread", "a flooder line written → read (log time stamp)", waited);
  ctx.results.note(
    SECTION,
    `${TANGO_SERVERS} TangoTest servers and 2 flooders (python, one line about every millisecond with its own clock) under the init as PID 1 of a PID namespace; \`reexec\` to the init's own binary ${runs} times. The exec's cost is mostly a new Node's start (the binary's V8 snapshot deserialized) and the \`--reexec-check\` run of the binary before it; output is unread from the hand-over to the new init's first read. Log time stamps have millisecond resolution.`,
  );
}
