// The `--` mode as a drop-in for tini / dumb-init, with the built binary as PID 1 of a new PID
// namespace. Every assertion is about an outcome: exit codes, what the child saw, what was left.

import { describe, expect, it } from "vitest";
import fs from "node:fs";
import path from "node:path";
import { BINARY, cleanEnv, logRecords, runAsPid1, startAsPid1, tempDir } from "./helpers";

const PYTHON = "/usr/bin/python3";

/** Runs `jobs` with at most `width` in flight. */
async function inBatches<T, R>(items: T[], width: number, job: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) {
        const index = next++;
        results[index] = await job(items[index]);
      }
    }),
  );
  return results;
}

describe("the binary", () => {
  it("is one ELF executable that prints its version with nothing beside it", async () => {
    const dir = tempDir("alone");
    const copy = path.join(dir, "starter-init");
    fs.copyFileSync(BINARY, copy);
    fs.chmodSync(copy, 0o755);
    const result = await runAsPid1(["--", "true"], { binary: copy });
    expect(result.code).toBe(0);
    const header = Buffer.alloc(4);
    const fd = fs.openSync(copy, "r");
    fs.readSync(fd, header, 0, 4, 0);
    fs.closeSync(fd);
    expect(header.toString("latin1")).toBe("\x7fELF");
    expect(fs.readdirSync(dir)).toEqual(["starter-init"]);
  });
});

describe("the start-up snapshot", () => {
  it("starts with this run's environment, arguments, pid and clock, not the build's", async () => {
    // The binary begins from a heap made at build time (init/snapshot.ts): whatever it reads must be
    // read again at each start. The stage 1 record tells the init's pid and how long after its exec
    // it got there; the log level comes from this run's environment, the words from this argv.
    const result = await runAsPid1(["--log-format", "json", "--", "sh", "-c", 'echo "argv:$0:$1"', "one", "two"], {
      env: cleanEnv({ STARTER_LOG_LEVEL: "debug", HOME: "/run-home" }),
    });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("argv:one:two");
    const stage1 = logRecords(result.stderr).find((record) => typeof record.msg === "string" && record.msg.startsWith("stage 1 ("));
    expect(stage1, result.stderr).toBeDefined();
    expect(stage1!.level).toBe(20); // debug: STARTER_LOG_LEVEL of this run
    expect(stage1!.pid).toBe(1);
    expect(stage1!.upMs).toBeGreaterThanOrEqual(0);
    expect(stage1!.upMs).toBeLessThan(30_000); // counted from this start, not from the build
    expect(Math.abs((stage1!.time as number) - Date.now())).toBeLessThan(60_000);
  });
});

describe("-- mode exit codes", () => {
  it("passes every exit code 0..255 through", async () => {
    const codes = Array.from({ length: 256 }, (_, i) => i);
    const results = await inBatches(codes, 6, (code) => runAsPid1(["--", "sh", "-c", `exit ${code}`]));
    expect(results.map((r) => r.code)).toEqual(codes);
  }, 240_000);

  it("reports death by signal n as 128+n", async () => {
    for (const [name, number] of [
      ["HUP", 1],
      ["INT", 2],
      ["QUIT", 3],
      ["KILL", 9],
      ["SEGV", 11],
      ["TERM", 15],
      ["USR1", 10],
    ] as const) {
      // sh as a child of the init is not PID 1, so its own default dispositions apply.
      const result = await runAsPid1(["--", "sh", "-c", `kill -${name} $$`]);
      expect(result.code, name).toBe(128 + number);
    }
  });

  it("answers 127 for a missing command and 126 for a file that is not executable", async () => {
    const missing = await runAsPid1(["--", "/nonexistent/program"]);
    expect(missing.code).toBe(127);
    expect(missing.stderr).toContain("ENOENT");
    const missingOnPath = await runAsPid1(["--", "no-such-command-anywhere"]);
    expect(missingOnPath.code).toBe(127);

    const dir = tempDir("noexec");
    const file = path.join(dir, "script.sh");
    fs.writeFileSync(file, "#!/bin/sh\nexit 0\n", { mode: 0o644 });
    const notExecutable = await runAsPid1(["--", file]);
    expect(notExecutable.code).toBe(126);
    expect(notExecutable.stderr).toContain("EACCES");
  });

  it("maps expected exit codes to 0 with -e", async () => {
    expect((await runAsPid1(["-e", "143", "--", "sh", "-c", "kill -TERM $$"])).code).toBe(0);
    expect((await runAsPid1(["-e", "143", "--", "sh", "-c", "exit 3"])).code).toBe(3);
  });

  it("refuses bad usage with exit code 2 and a message naming the problem", async () => {
    const result = await runAsPid1(["--grace", "-1", "--", "true"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("--grace");
    const nothing = await runAsPid1(["--"]);
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toContain("nothing to run");
  });
});

describe("-- mode signals", () => {
  const forwarded = ["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH"] as const;

  for (const [index, signal] of forwarded.entries()) {
    it(`forwards ${signal} to the main program, whose exit code wins`, async () => {
      const code = 60 + index;
      const init = startAsPid1(["--", "sh", "-c", `trap 'exit ${code}' ${signal.slice(3)}; echo trapped; while :; do sleep 0.05; done`]);
      await init.waitFor("trapped");
      await init.signal(signal);
      const result = await init.result;
      expect(result.code).toBe(code);
    });
  }

  it("forwards to the whole process group with -g", async () => {
    const dir = tempDir("group");
    const marker = path.join(dir, "grandchild-got-usr1");
    // Each shell says it is ready once its own trap is set: a signal before that would kill it.
    const script = `(trap 'touch ${marker}; exit 0' USR1; echo sub-ready; while :; do sleep 0.05; done) & trap 'wait; exit 9' USR1; echo ready; while :; do sleep 0.05; done`;
    const init = startAsPid1(["-g", "--", "sh", "-c", script]);
    await init.waitFor("sub-ready");
    await init.waitFor(/^ready$/m);
    await init.signal("SIGUSR1");
    const result = await init.result;
    expect(result.code).toBe(9);
    expect(fs.existsSync(marker)).toBe(true);
  });

  it("starts the main program with default dispositions and an empty signal mask", async () => {
    // cat installs no handler of its own (grep does: a SIGSEGV handler for stack overflows).
    const result = await runAsPid1(["--", "cat", "/proc/self/status"]);
    expect(result.code).toBe(0);
    expect(
      result.stdout
        .split("\n")
        .filter((line) => /^Sig(Blk|Ign|Cgt):/.test(line))
        .sort(),
    ).toEqual(["SigBlk:\t0000000000000000", "SigCgt:\t0000000000000000", "SigIgn:\t0000000000000000"]);
  });
});

describe("-- mode argv and environment", () => {
  it("passes argv and the environment unchanged, without NODE_OPTIONS", async () => {
    // NODE_OPTIONS with a V8 flag is also what the init itself must not read: its startup snapshot
    // would refuse to load (native/sea.mjs renames the variable its Node reads to STARTER_NODE).
    // Numbers stay strings exactly as given (a CLI parser must not touch the main program's words).
    const args = ["plain", "with space", "", "$HOME", "*", "quote'\"", "--flag", "ünïcode", "1000", "0x10", "-1", "1e3", "007"];
    const env = cleanEnv({ STARTER_TEST_VALUE: "a=b c\td", NODE_OPTIONS: "--max-old-space-size=64", NODE_DEBUG: "net", STARTER_NODE: "--no-warnings" });
    const program = "import sys, os, json; print(json.dumps({'argv': sys.argv[1:], 'env': dict(os.environ)}))";
    const result = await runAsPid1(["--", PYTHON, "-c", program, ...args], { env });
    expect(result.code).toBe(0);
    const seen = JSON.parse(result.stdout) as { argv: string[]; env: Record<string, string> };
    expect(seen.argv).toEqual(args);
    const expected = Object.fromEntries(Object.entries(env).filter(([key]) => !key.startsWith("NODE_") && key !== "STARTER_NODE"));
    expect(seen.env).toEqual(expected);
  });
});

describe("-- mode reaping and leftovers", () => {
  it("leaves zero zombies after a 2000-orphan storm", async () => {
    // The main program makes 2000 orphans (each subshell's child outlives its parent), then waits
    // until no zombie is left in the namespace and prints how many it saw at the end.
    const script = [
      "i=0; while [ $i -lt 2000 ]; do (sleep 0.01 &) ; i=$((i+1)); done",
      "n=0; while :; do z=$(grep -l '^State:.Z' /proc/[0-9]*/status 2>/dev/null | wc -l); [ $z -eq 0 ] && break; n=$((n+1)); [ $n -gt 200 ] && break; sleep 0.05; done",
      "echo zombies=$z",
    ].join("\n");
    const result = await runAsPid1(["--", "sh", "-c", script]);
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe("zombies=0");
  }, 120_000);

  it("exits as soon as the main program exits when nothing is left", async () => {
    const result = await runAsPid1(["--", "sh", "-c", "exit 4"]);
    expect(result.code).toBe(4);
    expect(result.durationMs).toBeLessThan(5000);
  });

  it("gives a leftover grandchild that traps TERM its grace period, then exits with the main code", async () => {
    const dir = tempDir("grace");
    const log = path.join(dir, "log");
    const script = `(trap 'echo term >> ${log}; sleep 0.5; echo done >> ${log}; exit 0' TERM; echo up >> ${log}; while :; do sleep 0.05; done) & while [ ! -s ${log} ]; do sleep 0.02; done; exit 3`;
    const result = await runAsPid1(["--grace", "5", "--", "sh", "-c", script]);
    expect(result.code).toBe(3);
    expect(fs.readFileSync(log, "utf8").split("\n").filter(Boolean)).toEqual(["up", "term", "done"]);
  });

  it("SIGKILLs a leftover that ignores TERM once the grace period is over", async () => {
    const dir = tempDir("kill");
    const pidFile = path.join(dir, "pid");
    const script = `(trap '' TERM; echo $(sh -c 'echo $PPID') > ${pidFile}; while :; do sleep 0.05; done) & while [ ! -s ${pidFile} ]; do sleep 0.02; done; exit 0`;
    const started = Date.now();
    const result = await runAsPid1(["--grace", "1", "--log-level", "info", "--log-format", "json", "--", "sh", "-c", script]);
    expect(result.code).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(result.stderr).toContain("sent SIGKILL");
  });
});
