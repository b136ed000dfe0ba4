// The single executable's V8 startup snapshot (native/sea.mjs builds it with "useSnapshot").
//
// At build time Node runs the bundle once; the heap it leaves is written into the executable, and
// every start deserializes that heap and calls the function named here instead of evaluating the
// bundle again. So yargs, pino, zod, yaml and every module of the init are evaluated once, at build
// time, and the pure parts of the start path (argument parsing, a log record, parsing and resolving a
// config, the supervisor's boot step, a control request) run once here so that their compiled code is
// in the snapshot too.
//
// What must not happen here, since the snapshot would freeze it: reading the environment, argv, the
// clock, the host or the file system into anything that outlives this function; opening files,
// sockets or timers; loading the addon. Each start reads all of that anew (process.env and argv are
// live again after deserialization, and performance.now() counts from the new start). Modules that
// read such things when they are evaluated keep the build machine's values: Node's os module
// (os.release(), os.type(), os.version(), os.machine()), pino's default `base` (pid, host name: the
// init passes its own), colorette's colour support (pino-pretty is told explicitly). Read those at
// run time from the system instead. native/sea.mjs fails the build when a marker it puts in the
// build's environment turns up in the snapshot.

import v8 from "node:v8";
import pino from "pino";
import { prettyFactory } from "pino-pretty";
import { parseArgs } from "./cli/args";

/** True while the snapshot is being built (never at a start). */
export function buildingSnapshot(): boolean {
  return v8.startupSnapshot?.isBuildingSnapshot() ?? false;
}

/**
 * Names `start` as what every start of the snapshot runs, then evaluates the lazily loaded modules
 * and warms the start path. Node writes the snapshot once the event loop is empty, that is after this
 * chain has run; a failure fails the build.
 */
export function prepareSnapshot(start: () => void, lazyModules: () => Promise<unknown>[]): void {
  v8.startupSnapshot.setDeserializeMainFunction(start);
  warmUp(lazyModules).catch((err: unknown) => {
    process.stderr.write(`starter-init snapshot: warming up failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}

/** A config that touches what most configs use: Tango servers, a plain program, probes, restarts, logs. */
const SAMPLE_CONFIG = `
settings:
  startMode: parallel
  searchPath: [/usr/lib/tango]
  interLevelWait: 1s
  controlSocket: /run/starter-init.sock
  defaults:
    stopTimeout: 5s
    startTimeout: 60s
    log: {console: true}
servers:
  - name: TangoTest/t01
    level: 1
    args: -nodb -dlist sys/tg_test/1 -ORBendPoint giop:tcp:127.0.0.1:12345
  - name: TangoTest/t02
    level: 2
    requires: [TangoTest/t01]
    env: {TANGO_LOG_LEVEL: "1"}
  - name: web
    binary: /bin/sh
    args: [-c, "exec sleep 1000"]
    level: 2
    readiness: none
    restart: {mode: on-failure, initialDelay: 500ms, factor: 2, maxDelay: 30s, burst: {count: 5, window: 1m}}
`;

async function warmUp(lazyModules: () => Promise<unknown>[]): Promise<void> {
  await Promise.all(lazyModules());
  const env = { PATH: "/usr/bin:/bin" };
  for (const argv of [
    ["--log-level", "info", "--", "true"],
    ["-c", "/etc/starter-init/config.yaml"],
    ["run", "--log-format", "json"],
    ["status", "--json"],
  ]) {
    await parseArgs(argv, env, 2);
  }
  // pino and pino-pretty as the init's log uses them (log/init-log.ts), into nothing: the init's own
  // log object is configured at run time only.
  const pretty = prettyFactory({ colorize: false, translateTime: "HH:MM:ss.l", singleLine: true, messageFormat: "{if server}{server} {end}{msg}" });
  const log = pino({ level: "debug", name: "starter-init", base: { pid: 0 } }, { write: (line: string) => pretty(line) });
  log.info({ server: "TangoTest/t01", kind: "ready" }, "warming up");
  log.debug("warming up");

  const { parseConfig } = await import("./config/loader");
  const config = parseConfig(SAMPLE_CONFIG, "snapshot.yaml", {
    executableStatus: () => "executable",
    readPasswd: () => "root:x:0:0:root:/root:/bin/sh\n",
    readGroup: () => "root:x:0:\n",
    env,
  });
  const { createSupervisor, step } = await import("./core/supervisor");
  step(createSupervisor(config, 0), { type: "boot", now: 0 });
  const { parseRequest } = await import("./control/protocol");
  parseRequest(JSON.stringify({ v: 1, id: 1, cmd: "status", args: {} }));
}
