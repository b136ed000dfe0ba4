// Every wait of the init has a deadline, seen from outside with the built binary as PID 1: a preStart
// that hangs delays no other server and fails its own at its timeout; a shutdown ends on time
// whatever hangs; a failsafe server starts on time while the level before it never gets ready.

import { afterEach, describe, expect, it } from "vitest";
import fs from "node:fs";
import path from "node:path";
import { killStartedInits, logRecords, readChildren, startAsPid1, tempDir, type Pid1Process } from "./helpers";

afterEach(() => killStartedInits());

function writeConfig(dir: string, body: string): string {
  const file = path.join(dir, "config.yaml");
  fs.writeFileSync(file, `settings:\n  controlSocket: ${path.join(dir, "control.sock")}\n  shutdownTimeout: 3s\n${body}`);
  return file;
}

/** The init's log records of a server (and kind), with their time (ms) since the boot record. */
function records(init: Pid1Process, server?: string, kind?: string): (Record<string, unknown> & { ms: number })[] {
  const all = logRecords(init.stderr());
  const boot = all.find((r) => r.kind === "boot");
  const origin = typeof boot?.time === "number" ? boot.time : 0;
  return all
    .filter((r) => (server === undefined || r.server === server) && (kind === undefined || r.kind === kind))
    .map((r) => ({ ...r, ms: (r.time as number) - origin }));
}

/** Every descendant of a host pid, with its command line. */
function descendants(pid: number): { pid: number; cmdline: string }[] {
  const found: { pid: number; cmdline: string }[] = [];
  const frontier = [pid];
  while (frontier.length) {
    for (const child of readChildren(frontier.pop()!)) {
      let cmdline = "";
      try {
        cmdline = fs.readFileSync(`/proc/${child}/cmdline`, "utf8").replace(/\0/g, " ").trim();
      } catch {
        // Gone meanwhile.
      }
      found.push({ pid: child, cmdline });
      frontier.push(child);
    }
  }
  return found;
}

describe("a preStart that hangs", () => {
  it("delays nothing else: b ready within 1 s, a failed with pre-start-timeout at its timeout, the hook gone; SIGTERM (3 s deadline) ends the init within 4 s", async () => {
    const dir = tempDir("hanging-prestart");
    // The case as a user reported it: a's preStart sleeps 30 s, its start timeout is 2 s (preStartTimeout
    // defaults to it); b, same level, has no hook. `restart: never` so that a stays failed.
    const config = writeConfig(
      dir,
      `servers:
  - name: a
    binary: /bin/sleep
    args: ["1000"]
    preStart: [/bin/sleep, "30.4242"]
    startTimeout: 2s
    restart: never
  - name: b
    binary: /bin/sh
    args: [-c, "echo up; exec sleep 1000"]
    readiness: "log:up"
`,
    );
    const init = startAsPid1(["--log-format", "json", "-c", config]);
    await init.waitFor('"server":"b","kind":"ready"', 10_000);
    const initPid = await init.initPid();
    const hook = () => descendants(initPid).filter((p) => p.cmdline === "/bin/sleep 30.4242");
    expect(hook()).toHaveLength(1);
    const ready = records(init, "b", "ready")[0];
    expect(ready.ms).toBeLessThan(1000);

    await init.waitFor('"server":"a","kind":"failed"', 10_000);
    const timeout = records(init, "a", "pre-start-timeout")[0];
    const failed = records(init, "a", "failed")[0];
    expect(failed.reason).toBe("pre-start-timeout");
    // At its timeout (2 s after the boot), not when the hook would have ended (30 s). The log's wall
    // clock stamps the boot record a few ms after the monotonic instant the timer counts from.
    expect(timeout.ms).toBeGreaterThanOrEqual(1900);
    expect(timeout.ms).toBeLessThan(3000);
    expect(failed.ms - timeout.ms).toBeLessThan(1000);
    expect(records(init, "a", "started")).toHaveLength(0);
    expect(hook()).toEqual([]);

    const signalled = Date.now();
    await init.signal("SIGTERM");
    const result = await init.result;
    const took = Date.now() - signalled;
    console.log(`hanging preStart: b ready at ${ready.ms} ms, a pre-start-timeout at ${timeout.ms} ms, failed at ${failed.ms} ms; SIGTERM → exit ${took} ms`);
    expect(result.code).toBe(0);
    expect(took).toBeLessThan(4000);
  });

  it("a shutdown while a TERM-ignoring preStart runs ends at the 3 s deadline: the init exits within 4 s", async () => {
    const dir = tempDir("stubborn-prestart");
    const config = writeConfig(
      dir,
      `servers:
  - name: a
    binary: /bin/sleep
    args: ["1000"]
    preStart: [/bin/sh, -c, "trap '' TERM; sleep 30.4343"]
    preStartTimeout: 60s
    stopTimeout: 10s
  - name: b
    binary: /bin/sh
    args: [-c, "echo up; exec sleep 1000"]
    readiness: "log:up"
`,
    );
    const init = startAsPid1(["--log-format", "json", "-c", config]);
    await init.waitFor('"server":"b","kind":"ready"', 10_000);
    const signalled = Date.now();
    await init.signal("SIGTERM");
    const result = await init.result;
    const took = Date.now() - signalled;
    console.log(`TERM-ignoring preStart: SIGTERM → exit ${took} ms (deadline 3 s)`);
    expect(result.code).toBe(0);
    expect(took).toBeGreaterThanOrEqual(3000);
    expect(took).toBeLessThan(4000);
    expect(records(init, undefined, "shutdown-deadline")).toHaveLength(1);
    expect(records(init, "a", "killing")).toHaveLength(1);
    expect(records(init, undefined, "shutdown-complete")).toHaveLength(1);
  });
});

describe("a failsafe server", () => {
  it("starts on time while the level before it is held by a server that never gets ready", async () => {
    const dir = tempDir("failsafe");
    const config = writeConfig(
      dir,
      `servers:
  - name: stuck
    binary: /bin/sleep
    args: ["1000"]
    readiness: "log:never printed"
    startTimeout: 60s
  - name: console
    level: 2
    failsafe: 2s
    binary: /bin/sh
    args: [-c, "echo up; exec sleep 1000"]
    readiness: "log:up"
  - name: app
    level: 2
    binary: /bin/sleep
    args: ["1000"]
`,
    );
    const init = startAsPid1(["--log-format", "json", "-c", config]);
    await init.waitFor('"server":"console","kind":"ready"', 10_000);
    const started = records(init, "console", "started")[0];
    console.log(`failsafe: console started at ${started.ms} ms after the boot (failsafe 2 s)`);
    expect(started.ms).toBeGreaterThanOrEqual(2000);
    expect(started.ms).toBeLessThan(3000);
    // The level is still held: app waits for stuck, which is still starting.
    expect(records(init, "app", "starting")).toHaveLength(0);
    expect(records(init, "stuck", "ready")).toHaveLength(0);
    await init.signal("SIGTERM");
    expect((await init.result).code).toBe(0);
  });
});
