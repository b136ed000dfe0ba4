// The CLI's own behaviour: help, completion, usage errors and their exit codes, finding the socket,
// and what a client says when no init answers. The binary runs as a plain process here except where
// PID 1 matters.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { runAsPid1, tempDir } from "./helpers";
import { runBinary, startInit, waitForStatus, type Init } from "../fixtures/control/harness";

describe("help and completion", () => {
  it("lists every command, the Starter's names and the exit codes", async () => {
    const help = await runBinary(["--help"]);
    expect(help.code).toBe(0);
    for (const word of [
      "status",
      "start",
      "stop",
      "restart",
      "kill",
      "start-all",
      "stop-all",
      "pin",
      "unpin",
      "logs",
      "reload",
      "plan",
      "ready",
      "shutdown",
      "poweroff",
      "reboot",
      "halt",
      "analyze",
      "completion",
      "DevStart",
      "DevStop",
      "DevStartAll",
      "DevStopAll",
      "HardKillServer",
      "DevGetRunningServers",
      "DevGetStopServers",
    ]) {
      expect(help.stdout, word).toMatch(new RegExp(`\\b${word}\\b`));
    }
    expect(help.stdout).toContain("Exit codes: 0 ok, 1 failed, 2 usage, 3 no such server");
  });

  it("has help for each command", async () => {
    for (const command of ["status", "start", "stop-all", "pin", "logs", "reload", "ready", "analyze", "shutdown"]) {
      const help = await runBinary([command, "--help"]);
      expect(help.code, command).toBe(0);
      expect(help.stdout, command).toContain(`starter-init ${command}`);
      expect(help.stdout, command).toContain("--socket");
    }
    expect((await runBinary(["logs", "--help"])).stdout).toMatch(/-f, --follow/);
    expect((await runBinary(["ready", "--help"])).stdout).toMatch(/-w, --wait/);
  });

  it("prints a completion script and completes command names and options", async () => {
    const script = await runBinary(["completion"]);
    expect(script.code).toBe(0);
    expect(script.stdout).toContain("--get-yargs-completions");
    const words = await runBinary(["--get-yargs-completions", "starter-init", "st"]);
    expect(words.stdout.split("\n")).toEqual(expect.arrayContaining(["status", "start", "stop", "start-all", "stop-all"]));
    const options = await runBinary(["--get-yargs-completions", "starter-init", "logs", "--"]);
    expect(options.stdout.split("\n")).toEqual(expect.arrayContaining(["--follow", "--lines", "--socket"]));
  });

  it("keeps -- mode arguments for the program, --help included", async () => {
    const result = await runAsPid1(["--", "sh", "-c", 'echo "args: $*"', "sh", "--help", "status"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("args: --help status");
  });
});

describe("usage errors", () => {
  it("exits 2 with a message for bad arguments", async () => {
    const cases: [string[], RegExp][] = [
      [["start"], /Not enough non-option arguments/],
      [["pin", "x"], /exactly one of --started and --stopped/],
      [["start-all", "--level", "-1"], /--level: expected a level/],
      [["DevStartAll", "abc"], /level: expected a level/],
      [["logs", "x", "-n", "1.5"], /--lines: expected a count/],
      [["start", "--timeout", "0", "x"], /--timeout: expected a number of seconds > 0/],
      [["analyze", "nonsense"], /Invalid values/],
      [["status", "--bogus"], /unknown option --bogus/],
      [["frobnicate"], /unknown command "frobnicate"; to run a program under the init, put -- before it: starter-init -- frobnicate/],
      [["-x", "--", "true"], /unknown option -x/],
      [["-gq", "--", "true"], /unknown option -q/],
    ];
    for (const [args, message] of cases) {
      const result = await runBinary(args);
      expect(result.code, args.join(" ")).toBe(2);
      expect(result.stderr, args.join(" ")).toMatch(message);
    }
  });

  it("refuses a client command as PID 1 of a container", async () => {
    const result = await runAsPid1(["status"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('"status" is a client command');
  });
});

describe("no init", () => {
  it("status and ready exit 5 with a clear message when no init answers", async () => {
    const dir = tempDir("cli-none");
    const socket = path.join(dir, "none.sock");
    const status = await runBinary(["--socket", socket, "status"]);
    expect(status.code).toBe(5);
    expect(status.stderr).toContain(`no init answers on ${socket}`);
    const ready = await runBinary(["ready", "--wait", "0.3"], { env: { STARTER_SOCKET: socket } });
    expect(ready.code).toBe(5);
    expect(ready.ms).toBeGreaterThanOrEqual(250);
    expect(ready.stderr).toContain("no init answers");

    // A socket file nobody listens on any more (its init was killed): refused at once, not a hang.
    execFileSync("/usr/bin/python3", ["-c", "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", socket]);
    expect(fs.statSync(socket).isSocket()).toBe(true);
    const refused = await runBinary(["--socket", socket, "status"]);
    expect(refused.stderr).toContain("connection refused");
    expect((await runBinary(["--socket", socket, "status"])).code).toBe(5);
  });
});

describe("finding the socket", () => {
  let init: Init;
  beforeAll(async () => {
    init = await startInit("cli-socket", [{ name: "Fake/one" }]);
    await waitForStatus(init, (s) => s.init.phase === "running", "the boot is complete");
  });
  afterAll(async () => {
    await init?.stop();
  });

  it("from --socket, STARTER_SOCKET, or the controlSocket of the config file (-c / STARTER_CONFIG)", async () => {
    expect((await init.cli(["status"])).code).toBe(0);
    expect((await runBinary(["status"], { env: { STARTER_SOCKET: init.socket } })).code).toBe(0);
    expect((await runBinary(["status", "-c", init.config])).code).toBe(0);
    const fromEnv = await runBinary(["status", "--json"], { env: { STARTER_CONFIG: init.config } });
    expect(fromEnv.code).toBe(0);
    expect(JSON.parse(fromEnv.stdout).init.socket).toBe(init.socket);
  });

  it("colours only when asked or on a TTY", async () => {
    const plain = await init.cli(["status"]);
    expect(plain.stdout).not.toContain("\x1b[");
    const coloured = await init.cli(["status", "--color"]);
    expect(coloured.stdout).toContain("\x1b[32mready\x1b[0m");
  });
});
