// The control socket and the CLI end to end: the built binary as PID 1 of a PID namespace supervising
// fake servers (test/fixtures/control/fake-server.sh), driven by the same binary as a client. Every
// assertion is about an effect: states, processes that exist or not (/proc), exit codes.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { BINARY, cleanEnv, sleep, waitUntil } from "./helpers";
import { alive, hostPid, rawConnect, startInit, waitForStatus, type Init, type ServerFixture } from "../fixtures/control/harness";

const NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"];

function stateOf(status: Awaited<ReturnType<Init["status"]>>, name: string): string {
  return status.servers.find((s) => s.name === name)?.state ?? "absent";
}

describe("requests and their effects", () => {
  let init: Init;
  let flag: string;
  beforeAll(async () => {
    flag = path.join(fs.mkdtempSync("/tmp/starter-init-flag-"), "go");
    init = await startInit("ctl-actions", [
      { name: "Fake/alpha", level: 1, logFile: "{dir}/alpha.log" },
      { name: "Fake/beta", level: 1, args: ["--delay", "0.2"] },
      { name: "Fake/gamma", level: 2 },
      { name: "Fake/delta", level: 2 },
      { name: "Fake/slow", level: 3, args: ["--wait-file", flag], autostart: false },
      { name: "Fake/broken", level: 3, args: ["--exit", "3"], autostart: false, restart: "never" },
      { name: "Fake/crash", level: 3, args: ["--exit", "4"], restart: "never" },
    ]);
  });
  afterAll(async () => {
    await init?.stop();
  });

  it("status lists every server with its state, Starter state, pid and level; --json and globs too", async () => {
    const status = await waitForStatus(init, (s) => s.init.phase === "running", "the boot is complete");
    expect(status.init.pid).toBe(1);
    expect(status.init.role).toBe("container");
    const byName = new Map(status.servers.map((s) => [s.name, s]));
    for (const name of ["Fake/alpha", "Fake/beta", "Fake/gamma", "Fake/delta"]) {
      expect(byName.get(name)?.state, name).toBe("ready");
      expect(byName.get(name)?.starter, name).toBe("ON");
      expect(alive(hostPid(init, byName.get(name)!.pid!)), name).toBe(true);
    }
    expect(byName.get("Fake/slow")?.state).toBe("stopped");
    expect(byName.get("Fake/slow")?.starter).toBe("FAULT");
    expect(byName.get("Fake/crash")?.state).toBe("failed");
    expect(byName.get("Fake/crash")?.lastExit).toMatchObject({ code: 4, reason: "exited" });
    expect(byName.get("Fake/beta")!.timeToReadyMs).toBeGreaterThanOrEqual(150);

    const table = await init.cli(["status"]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/SERVER\s+STATE\s+STARTER\s+PID\s+LEVEL\s+UPTIME\s+RESTARTS\s+READY IN\s+PING\s+LAST EXIT/);
    expect(table.stdout).toMatch(/Fake\/gamma\s+ready\s+ON\s+\d+\s+2\s/);
    expect(table.stdout).not.toContain("\x1b["); // no colours when stdout is not a TTY

    const glob = await init.cli(["status", "--json", "Fake/[gd]*"]);
    expect(JSON.parse(glob.stdout).servers.map((s: { name: string }) => s.name)).toEqual(["Fake/gamma", "Fake/delta"]);
    const missing = await init.cli(["status", "Fake/nope"]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('no server matches "Fake/nope"');
  });

  it("stop ends the process and waits for it; start brings a new one up and waits until ready", async () => {
    const before = await init.server("Fake/gamma");
    const oldHost = hostPid(init, before.pid!);
    const stop = await init.cli(["stop", "Fake/gamma"]);
    expect(stop.code, stop.stderr).toBe(0);
    expect(stop.stdout).toMatch(/Fake\/gamma\s+stopped/);
    expect(alive(oldHost)).toBe(false);
    const stopped = await init.server("Fake/gamma");
    expect(stopped.state).toBe("stopped");
    expect(stopped.pid).toBeNull();

    const start = await init.cli(["start", "Fake/gamma"]);
    expect(start.code, start.stderr).toBe(0);
    expect(start.stdout).toMatch(/Fake\/gamma\s+ready in \d+ ms \(pid \d+\)/);
    const started = await init.server("Fake/gamma");
    expect(started.state).toBe("ready");
    expect(alive(hostPid(init, started.pid!))).toBe(true);
  });

  it("restart replaces the process of every server a glob matches; kill SIGKILLs", async () => {
    const before = (await init.status()).servers.filter((s) => s.level === 2);
    const restart = await init.cli(["restart", "Fake/[gd]*"]);
    expect(restart.code, restart.stderr).toBe(0);
    const after = (await init.status()).servers.filter((s) => s.level === 2);
    for (const [i, server] of after.entries()) {
      expect(server.state).toBe("ready");
      expect(server.pid).not.toBe(before[i].pid);
      expect(alive(hostPid(init, server.pid!))).toBe(true);
      expect(server.lastExit?.reason).toBe("restart-requested");
    }

    const victim = await init.server("Fake/delta");
    const kill = await init.cli(["kill", "Fake/delta"]);
    expect(kill.code, kill.stderr).toBe(0);
    const killed = await init.server("Fake/delta");
    expect(killed.state).toBe("stopped");
    expect(killed.lastExit?.signal).toBe("SIGKILL");
    expect(alive(hostPid(init, victim.pid!))).toBe(false);
  });

  it("a start that fails exits 1 with the reason; --no-wait returns at once; --timeout exits 4", async () => {
    const broken = await init.cli(["start", "Fake/broken"]);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toMatch(/Fake\/broken\s+.*exited with code 3/);
    expect((await init.server("Fake/broken")).state).toBe("failed");
    // A failed server is still wanted up; stopping it means it is not expected to run any more.
    expect((await init.cli(["stop", "Fake/broken"])).code).toBe(0);

    const noWait = await init.cli(["start", "--no-wait", "Fake/slow"]);
    expect(noWait.code, noWait.stderr).toBe(0);
    expect(noWait.stdout).toContain("start requested");
    expect((await init.server("Fake/slow")).state).toBe("starting");

    const timedOut = await init.cli(["start", "--timeout", "0.5", "Fake/slow"]);
    expect(timedOut.code).toBe(4);
    expect(timedOut.stdout).toMatch(/Fake\/slow\s+still starting/);
    const stop = await init.cli(["stop", "Fake/slow"]);
    expect(stop.code, stop.stderr).toBe(0);
  });

  it("stop-all / start-all by level, and the Starter's names for them", async () => {
    await init.cli(["start", "Fake/delta"]);
    const stopAll = await init.cli(["stop-all", "--level", "2"]);
    expect(stopAll.code, stopAll.stderr).toBe(0);
    let status = await init.status();
    expect(stateOf(status, "Fake/gamma")).toBe("stopped");
    expect(stateOf(status, "Fake/delta")).toBe("stopped");
    expect(stateOf(status, "Fake/alpha")).toBe("ready");

    const stopped = await init.cli(["DevGetStopServers"]);
    expect(stopped.stdout.trim().split("\n")).toEqual(expect.arrayContaining(["Fake/gamma", "Fake/delta"]));
    expect(stopped.stdout).not.toContain("Fake/alpha");

    const startAll = await init.cli(["DevStartAll", "2"]);
    expect(startAll.code, startAll.stderr).toBe(0);
    status = await init.status();
    expect(stateOf(status, "Fake/gamma")).toBe("ready");
    expect(stateOf(status, "Fake/delta")).toBe("ready");

    const running = await init.cli(["DevGetRunningServers", "true"]);
    expect(running.stdout.trim().split("\n").sort()).toEqual(["Fake/alpha", "Fake/beta", "Fake/delta", "Fake/gamma"]);

    expect((await init.cli(["DevStopAll", "2"])).code).toBe(0);
    expect(stateOf(await init.status(), "Fake/gamma")).toBe("stopped");
    const again = await init.cli(["start-all", "--level", "2"]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/Fake\/gamma\s+ready/);
    expect((await init.cli(["start-all", "--level", "2"])).stdout).toContain("nothing to start at level 2");

    // DevStop, DevStart and HardKillServer are start, stop and kill.
    expect((await init.cli(["DevStop", "Fake/gamma"])).code).toBe(0);
    expect(stateOf(await init.status(), "Fake/gamma")).toBe("stopped");
    expect((await init.cli(["DevStart", "Fake/gamma"])).code).toBe(0);
    expect(stateOf(await init.status(), "Fake/gamma")).toBe("ready");
    expect((await init.cli(["HardKillServer", "Fake/gamma"])).code).toBe(0);
    expect((await init.server("Fake/gamma")).lastExit?.signal).toBe("SIGKILL");
    expect((await init.cli(["start", "Fake/gamma"])).code).toBe(0);
  });

  it("pin holds a server: pinned stopped refuses start, pinned started refuses stop and survives stop-all", async () => {
    const pin = await init.cli(["pin", "Fake/gamma", "--stopped"]);
    expect(pin.code, pin.stderr).toBe(0);
    await waitForStatus(init, (s) => stateOf(s, "Fake/gamma") === "stopped", "gamma stopped by its pin");
    expect((await init.server("Fake/gamma")).pin).toBe("stopped");
    const refused = await init.cli(["start", "Fake/gamma"]);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toContain("pinned stopped");
    expect(stateOf(await init.status(), "Fake/gamma")).toBe("stopped");

    expect((await init.cli(["pin", "Fake/gamma", "--started"])).code).toBe(0);
    await waitForStatus(init, (s) => stateOf(s, "Fake/gamma") === "ready", "gamma started by its pin");
    const pid = (await init.server("Fake/gamma")).pid;
    expect((await init.cli(["stop", "Fake/gamma"])).code).toBe(1);
    expect((await init.cli(["stop-all", "--level", "2"])).code).toBe(0);
    const gamma = await init.server("Fake/gamma");
    expect(gamma.state).toBe("ready");
    expect(gamma.pid).toBe(pid);

    expect((await init.cli(["unpin", "Fake/gamma"])).code).toBe(0);
    expect((await init.server("Fake/gamma")).pin).toBeNull();
    expect((await init.cli(["stop", "Fake/gamma"])).code).toBe(0);
    expect((await init.cli(["pin", "Fake/gamma"])).code).toBe(2); // neither --started nor --stopped
    await init.cli(["start-all", "--level", "2"]);
  });

  it("logs prints the last lines (from the file or from memory) and -f follows new ones", async () => {
    // beta has no log file: lines kept in memory.
    const memory = await init.cli(["logs", "Fake/beta", "-n", "2"]);
    expect(memory.code, memory.stderr).toBe(0);
    const lines = memory.stdout.trim().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/Z Ready to accept request$/);

    const follower = spawn(BINARY, ["--socket", init.socket, "logs", "-f", "-n", "0", "Fake/beta"], { env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let followed = "";
    follower.stdout.on("data", (chunk) => (followed += chunk));
    await sleep(300);
    expect((await init.cli(["restart", "Fake/beta"])).code).toBe(0);
    await waitUntil(() => followed.includes("Ready to accept request"), "the follower sees the new ready line", 5000);
    expect(followed).toContain("beta: stopping");
    expect(followed).toMatch(/beta: starting \(pid \d+\)/);
    const exited = new Promise((resolve) => follower.on("close", resolve));
    follower.kill("SIGINT");
    await exited;

    const missing = await init.cli(["logs", "Fake/nope"]);
    expect(missing.code).toBe(3);
  });

  it("logs reads a server's log file, with the init's own notes", async () => {
    const file = path.join(init.dir, "alpha.log");
    expect((await init.cli(["restart", "Fake/alpha"])).code).toBe(0);
    const result = await init.cli(["logs", "Fake/alpha", "-n", "3"]);
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.trim().split("\n");
    expect(lines).toHaveLength(3);
    // The server's ready line, then the init's note about it, as in the file.
    expect(lines[1]).toMatch(/Z Ready to accept request$/);
    expect(lines[2]).toMatch(/Z \[starter-init\] ready in \d+ ms$/);
    expect(fs.readFileSync(file, "utf8").trimEnd().endsWith(lines.join("\n"))).toBe(true);
    const all = await init.cli(["logs", "Fake/alpha", "-n", "1000"]);
    expect(all.stdout).toContain("alpha: stopping");
    expect(all.stdout).toMatch(/\[starter-init\] started pid \d+: .*fake-server\.sh alpha/);
  });

  it("ready is non-zero until the last server is ready, then 0", async () => {
    // crash failed at boot and is still wanted: never ready, and --wait does not wait for it.
    const failed = await init.cli(["ready", "--wait", "10"]);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toContain("Fake/crash (failed)");
    expect(failed.ms).toBeLessThan(5000);
    expect((await init.cli(["stop", "Fake/crash"])).code).toBe(0);
    expect((await init.cli(["ready"])).code).toBe(0);

    const start = await init.cli(["start", "--no-wait", "Fake/slow"]);
    expect(start.code).toBe(0);
    const notReady = await init.cli(["ready"]);
    expect(notReady.code).toBe(1);
    expect(notReady.stdout).toContain("Fake/slow (starting)");
    const waited = await init.cli(["ready", "--wait", "0.3"]);
    expect(waited.code).toBe(1);
    expect(waited.ms).toBeGreaterThanOrEqual(250);

    const wait = init.cli(["ready", "--wait", "10"]);
    await sleep(200);
    fs.writeFileSync(flag, "");
    const flipped = await wait;
    expect(flipped.code, flipped.stdout + flipped.stderr).toBe(0);
    expect(flipped.stdout.trim()).toBe("ready");
    expect((await init.cli(["ready"])).code).toBe(0);
    expect((await init.server("Fake/slow")).state).toBe("ready");
  });

  it("analyze blame sorts the boot by time to ready; analyze plot is SVG with one bar per server", async () => {
    const blame = await init.cli(["analyze", "blame"]);
    expect(blame.code, blame.stderr).toBe(0);
    expect(blame.stdout).toMatch(/boot complete after .*; 5 server\(s\) started during the boot, 2 after it/);
    const rowsOf = (text: string) =>
      text
        .split("\n")
        .filter((line) => /Fake\//.test(line))
        .map((line) => /(Fake\/\w+)/.exec(line)![1]);
    const rows = rowsOf(blame.stdout);

    type Entry = { name: string; outcome: string; forkAt: number; readyAt: number | null; duringBoot: boolean };
    const timeline = JSON.parse((await init.cli(["analyze", "blame", "--all", "--json"])).stdout) as { entries: Entry[] };
    const byName = new Map(timeline.entries.map((e) => [e.name, e]));
    expect([...byName.keys()].sort()).toEqual(["Fake/alpha", "Fake/beta", "Fake/broken", "Fake/crash", "Fake/delta", "Fake/gamma", "Fake/slow"]);
    expect(
      timeline.entries
        .filter((e) => e.duringBoot)
        .map((e) => e.name)
        .sort(),
    ).toEqual(["Fake/alpha", "Fake/beta", "Fake/crash", "Fake/delta", "Fake/gamma"]);
    // beta waits 200 ms before its ready line; crash and broken failed; the first start of slow was cancelled.
    expect(byName.get("Fake/beta")!.readyAt! - byName.get("Fake/beta")!.forkAt).toBeGreaterThanOrEqual(200);
    expect(byName.get("Fake/crash")!.outcome).toBe("failed");
    expect(byName.get("Fake/broken")!.outcome).toBe("failed");
    expect(byName.get("Fake/slow")!.outcome).toBe("cancelled");
    // Ready ones first, slowest first; then the failed one.
    const took = (name: string) => byName.get(name)!.readyAt! - byName.get(name)!.forkAt;
    expect(rows).toHaveLength(5);
    expect(rows.slice(0, 4).map((name) => byName.get(name)!.outcome)).toEqual(["ready", "ready", "ready", "ready"]);
    for (let i = 1; i < 4; i++) expect(took(rows[i - 1])).toBeGreaterThanOrEqual(took(rows[i]) - 1);
    expect(rows[4]).toBe("Fake/crash");
    expect(rowsOf((await init.cli(["analyze", "blame", "--all"])).stdout).slice(4)).toEqual(["Fake/broken", "Fake/crash", "Fake/slow"]);

    const isSvg = (text: string) =>
      execFileSync("/usr/bin/python3", ["-c", "import sys, xml.etree.ElementTree as E; print(E.parse(sys.stdin).getroot().tag)"], { input: text })
        .toString()
        .trim();
    const bars = (text: string) => text.match(/<rect class="bar[ "][^>]*>/g) ?? [];
    const plot = await init.cli(["analyze", "plot"]);
    expect(plot.code, plot.stderr).toBe(0);
    // Well-formed XML whose root is an SVG element (Python's XML parser is strict).
    expect(isSvg(plot.stdout)).toBe("{http://www.w3.org/2000/svg}svg");
    const bootBars = bars(plot.stdout);
    expect(bootBars).toHaveLength(5);
    for (const name of ["Fake/alpha", "Fake/beta", "Fake/gamma", "Fake/delta", "Fake/crash"]) {
      expect(
        bootBars.filter((bar) => bar.includes(`data-server="${name}"`)),
        name,
      ).toHaveLength(1);
    }
    expect(bootBars.find((bar) => bar.includes('data-server="Fake/crash"'))).toContain('class="bar failed"');
    expect(bootBars.filter((bar) => bar.includes("failed"))).toHaveLength(1);
    for (const level of [1, 2, 3]) expect(plot.stdout).toContain(`>L${level}<`);

    const all = await init.cli(["analyze", "plot", "--all"]);
    expect(isSvg(all.stdout)).toBe("{http://www.w3.org/2000/svg}svg");
    expect(bars(all.stdout)).toHaveLength(7);
  });
});

describe("reload", () => {
  let init: Init;
  const servers: ServerFixture[] = [
    { name: "Fake/keep", level: 1 },
    { name: "Fake/change", level: 1 },
    { name: "Fake/remove", level: 2 },
  ];
  beforeAll(async () => {
    init = await startInit("ctl-reload", servers);
    await waitForStatus(init, (s) => s.init.phase === "running", "the boot is complete");
  });
  afterAll(async () => {
    await init?.stop();
  });

  it("starts the new server, stops the removed one, restarts the changed one, leaves the others' pids", async () => {
    const before = await init.status();
    const pid = (name: string) => before.servers.find((s) => s.name === name)!.pid!;
    const removedHost = hostPid(init, pid("Fake/remove"));
    const changedHost = hostPid(init, pid("Fake/change"));

    init.writeConfig([
      { name: "Fake/keep", level: 1 },
      { name: "Fake/change", level: 1, args: ["--delay", "0.1"] },
      { name: "Fake/new", level: 2 },
    ]);
    const dry = await init.cli(["reload", "--dry-run"]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain("1 added, 1 removed, 1 changed, 1 unchanged");
    expect(dry.stdout).toMatch(/\+ Fake\/new/);
    expect(dry.stdout).toMatch(/- Fake\/remove/);
    expect(dry.stdout).toMatch(/~ Fake\/change/);
    expect((await init.status()).servers.map((s) => s.pid)).toEqual(before.servers.map((s) => s.pid));

    const reload = await init.cli(["reload"]);
    expect(reload.code, reload.stdout + reload.stderr).toBe(0);
    expect(reload.stdout).toMatch(/\+ Fake\/new\s+ready/);
    expect(reload.stdout).toMatch(/- Fake\/remove\s+removed/);
    expect(reload.stdout).toMatch(/~ Fake\/change\s+ready/);

    const after = await init.status();
    const names = after.servers.map((s) => s.name);
    expect(names.sort()).toEqual(["Fake/change", "Fake/keep", "Fake/new"]);
    const now = new Map(after.servers.map((s) => [s.name, s]));
    expect(now.get("Fake/keep")!.pid).toBe(pid("Fake/keep"));
    expect(now.get("Fake/change")!.pid).not.toBe(pid("Fake/change"));
    expect(now.get("Fake/change")!.state).toBe("ready");
    expect(now.get("Fake/new")!.state).toBe("ready");
    expect(alive(hostPid(init, now.get("Fake/new")!.pid!))).toBe(true);
    expect(alive(removedHost)).toBe(false);
    expect(alive(changedHost)).toBe(false);
  });

  it("refuses a config that does not load (exit 78) and changes nothing", async () => {
    const before = await init.status();
    fs.writeFileSync(init.config, "settings: [unclosed\n");
    const reload = await init.cli(["reload"]);
    expect(reload.code).toBe(78);
    expect(reload.stderr).toContain(init.config);
    expect((await init.status()).servers.map((s) => [s.name, s.pid])).toEqual(before.servers.map((s) => [s.name, s.pid]));
  });

  it("a server whose log settings change is still heard by logs and logs -f", async () => {
    const follower = spawn(BINARY, ["--socket", init.socket, "logs", "-f", "-n", "0", "Fake/change"], { env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let followed = "";
    follower.stdout.on("data", (chunk) => (followed += chunk));
    try {
      await sleep(300);
      // A log file now: the restarted server writes through a new output.
      init.writeConfig([
        { name: "Fake/keep", level: 1 },
        { name: "Fake/change", level: 1, args: ["--delay", "0.1"], logFile: "{dir}/change.log" },
        { name: "Fake/new", level: 2 },
      ]);
      const reload = await init.cli(["reload"]);
      expect(reload.code, reload.stdout + reload.stderr).toBe(0);
      expect(reload.stdout).toMatch(/~ Fake\/change\s+ready/);
      const pid = (await init.server("Fake/change")).pid;
      const tail = await init.cli(["logs", "Fake/change", "-n", "5"]);
      expect(tail.code, tail.stderr).toBe(0);
      expect(tail.stdout).toContain(`change: starting (pid ${pid})`);
      await waitUntil(() => followed.includes(`change: starting (pid ${pid})`), "the follower sees the restarted server", 5000);
    } finally {
      follower.kill("SIGKILL");
    }
  });
});

describe("who may connect, and clients that misbehave", () => {
  let init: Init;
  beforeAll(async () => {
    init = await startInit("ctl-robust", [{ name: "Fake/one" }, { name: "Fake/two", level: 2 }]);
    await waitForStatus(init, (s) => s.init.phase === "running", "the boot is complete");
  });
  afterAll(async () => {
    await init?.stop();
  });

  it("creates the socket 0600 and refuses a non-root client", async () => {
    const stat = fs.statSync(init.socket);
    expect(stat.isSocket()).toBe(true);
    expect(stat.mode & 0o777).toBe(0o600);
    const denied = await init.cli(["status"], { prefix: NOBODY });
    expect(denied.code).toBe(6);
    expect(denied.stderr).toContain("permission denied");
  });

  it("checks the peer's credentials even when the socket's mode lets anyone connect", async () => {
    fs.chmodSync(init.socket, 0o666);
    try {
      const denied = await init.cli(["status"], { prefix: NOBODY });
      expect(denied.code).toBe(6);
      expect(denied.stderr).toContain("only root may use the control socket (you are uid 65534)");
      const stop = await init.cli(["stop", "Fake/one"], { prefix: NOBODY });
      expect(stop.code).toBe(6);
      expect((await init.server("Fake/one")).state).toBe("ready");
    } finally {
      fs.chmodSync(init.socket, 0o600);
    }
  });

  it("answers malformed requests and unknown versions with errors, and keeps serving", async () => {
    const raw = await rawConnect(init.socket);
    raw.socket.write("this is not json\n");
    const answer = JSON.parse((await raw.firstLine)!);
    expect(answer).toMatchObject({ v: 1, id: null, ok: false, error: { code: "bad-request" } });
    raw.socket.write(`${JSON.stringify({ v: 99, id: 5, cmd: "status", args: {} })}\n`);
    raw.socket.write(`${JSON.stringify({ v: 1, id: 6, cmd: "frobnicate", args: {} })}\n`);
    raw.socket.write(`${JSON.stringify({ v: 1, id: 7, cmd: "start", args: { servers: "Fake/one" } })}\n`);
    raw.socket.write(`${JSON.stringify({ v: 1, id: 8, cmd: "status", args: {} })}\n`);
    await waitUntil(() => raw.received().trim().split("\n").length >= 5, "five answers", 5000);
    const answers = raw
      .received()
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    const byId = new Map(answers.map((a) => [a.id, a]));
    expect(byId.get(5)).toMatchObject({ ok: false, error: { code: "unsupported-version", details: { supported: [1] } } });
    expect(byId.get(6)).toMatchObject({ ok: false, error: { code: "unknown-command" } });
    expect(byId.get(7)).toMatchObject({ ok: false, error: { code: "bad-request" } });
    expect(byId.get(8)).toMatchObject({ ok: true });
    expect(byId.get(8).result.servers).toHaveLength(2);
    raw.socket.destroy();
  });

  it("a 10 MiB message, a silent client and a slow one are dropped while status still answers promptly", async () => {
    const huge = await rawConnect(init.socket);
    const silent = await rawConnect(init.socket);
    const slow = await rawConnect(init.socket);
    slow.socket.write('{"v":1,"id":1,"cmd":"sta');
    huge.socket.write(Buffer.alloc(10 * 1024 * 1024, "x"));

    const started = Date.now();
    const status = await init.cli(["status", "--json"]);
    const statusMs = Date.now() - started;
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout).servers).toHaveLength(2);
    expect(statusMs).toBeLessThan(3000);

    const tooLarge = JSON.parse((await huge.firstLine)!);
    expect(tooLarge).toMatchObject({ ok: false, error: { code: "too-large" } });
    await huge.closed;
    // The idle and request timeouts are 1 s here (STARTER_CONTROL_IDLE_TIMEOUT=1).
    expect(await silent.closed).toBeLessThan(5000);
    expect(await slow.firstLine).toContain("request-timeout");
    await slow.closed;
    // Still alive and answering.
    expect((await init.cli(["ready"])).code).toBe(0);
  });

  it("serves many clients at once", async () => {
    const results = await Promise.all(Array.from({ length: 20 }, () => init.cli(["status", "--json"])));
    // The message names what a failing client said, should one fail.
    expect(
      results.map((r) => r.code),
      results
        .filter((r) => r.code !== 0)
        .map((r) => r.stderr)
        .join("\n"),
    ).toEqual(results.map(() => 0));
    const connections = await Promise.all(Array.from({ length: 40 }, () => rawConnect(init.socket)));
    for (const [i, c] of connections.entries()) c.socket.write(`${JSON.stringify({ v: 1, id: i, cmd: "hello", args: {} })}\n`);
    const answers = await Promise.all(connections.map((c) => c.firstLine));
    expect(answers.every((line) => line !== null && JSON.parse(line).ok === true)).toBe(true);
    for (const c of connections) c.socket.destroy();
  });

  it("turns connections past 64 away as busy; a client tries again until there is room", async () => {
    const connections = await Promise.all(Array.from({ length: 70 }, () => rawConnect(init.socket)));
    const hello = (c: (typeof connections)[number], id: number) => c.socket.write(`${JSON.stringify({ v: 1, id, cmd: "hello", args: {} })}\n`);
    for (const [i, c] of connections.entries()) hello(c, i);
    const answers = (await Promise.all(connections.map((c) => c.firstLine))).map((line) => JSON.parse(line!));
    const busy = answers.filter((a) => a.ok === false);
    expect(busy.length).toBeGreaterThanOrEqual(6);
    for (const answer of busy) expect(answer.error).toMatchObject({ code: "busy", message: expect.stringContaining("too many connections (64)") });
    expect(answers.filter((a) => a.ok === true).length).toBeLessThanOrEqual(64);

    // Keep the accepted ones busy past the 1 s idle timeout of this init, then let them go: the
    // client is turned away meanwhile and gets its answer once there is room.
    const accepted = connections.filter((_, i) => answers[i].ok === true);
    const keepAlive = setInterval(() => accepted.forEach((c, i) => hello(c, 1000 + i)), 200);
    const client = init.cli(["status", "--json"]);
    await sleep(1500);
    clearInterval(keepAlive);
    for (const c of connections) c.socket.destroy();
    const status = await client;
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout).servers).toHaveLength(2);
    console.log(`a client turned away as busy got its answer after ${status.ms} ms`);
  });

  it("status round trip on an open connection (measured)", async () => {
    const raw = await rawConnect(init.socket);
    const times: number[] = [];
    for (let i = 0; i < 50; i++) {
      const before = raw.received().length;
      const started = process.hrtime.bigint();
      raw.socket.write(`${JSON.stringify({ v: 1, id: i, cmd: "status", args: {} })}\n`);
      await waitUntilFast(() => raw.received().indexOf("\n", before) !== -1);
      times.push(Number(process.hrtime.bigint() - started) / 1e6);
    }
    raw.socket.destroy();
    times.sort((a, b) => a - b);
    console.log(`status round trip: median ${times[25].toFixed(2)} ms, max ${times[49].toFixed(2)} ms`);
    expect(times[25]).toBeLessThan(100);
  });
});

function waitUntilFast(condition: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const check = () => (condition() ? resolve() : setImmediate(check));
    check();
  });
}

describe("an allowed group", () => {
  let init: Init;
  const GROUP = 4242;
  beforeAll(async () => {
    init = await startInit("ctl-group", [{ name: "Fake/one" }], { env: { STARTER_CONTROL_GROUP: String(GROUP) } });
  });
  afterAll(async () => {
    await init?.stop();
  });

  it("makes the socket 0660 for that group and lets its members in, nobody else", async () => {
    // The group and mode are set just after listen(); the socket file exists a moment before.
    await init.process.waitFor("control socket listening");
    const stat = fs.statSync(init.socket);
    expect(stat.mode & 0o777).toBe(0o660);
    expect(stat.gid).toBe(GROUP);
    const member = await init.cli(["status"], { prefix: ["setpriv", "--reuid=65534", `--regid=${GROUP}`, "--clear-groups"] });
    expect(member.code, member.stderr).toBe(0);
    expect(member.stdout).toContain("Fake/one");
    // A supplementary group is read from /proc/<pid>/status: seen for clients in the init's PID
    // namespace (docker exec); from outside, the peer's pid is 0 and only its primary group counts.
    const initPid = await init.process.initPid();
    const inside = ["nsenter", "-t", String(initPid), "-p", "--", "setpriv", "--reuid=65534", "--regid=65534", `--groups=${GROUP}`];
    const supplementary = await init.cli(["status"], { prefix: inside });
    expect(supplementary.code, supplementary.stderr).toBe(0);
    const outside = await init.cli(["status"], { prefix: ["setpriv", "--reuid=65534", "--regid=65534", `--groups=${GROUP}`] });
    expect(outside.code).toBe(6);
    const other = await init.cli(["status"], { prefix: NOBODY });
    expect(other.code).toBe(6);
  });
});

describe("shutdown and power commands", () => {
  it("poweroff, reboot and halt are refused in a container; shutdown stops everything and the init exits 0", async () => {
    const init = await startInit("ctl-shutdown", [{ name: "Fake/one" }, { name: "Fake/two", level: 2 }]);
    try {
      const status = await waitForStatus(init, (s) => s.init.phase === "running", "the boot is complete");
      const hosts = status.servers.map((s) => hostPid(init, s.pid!));
      expect(hosts.every(alive)).toBe(true);
      for (const word of ["poweroff", "reboot", "halt"]) {
        const refused = await init.cli([word]);
        expect(refused.code, word).toBe(1);
        expect(refused.stderr, word).toContain("is for the init of a VM");
      }
      expect((await init.status()).init.phase).toBe("running");

      const shutdown = await init.cli(["shutdown"]);
      expect(shutdown.code, shutdown.stderr).toBe(0);
      expect(shutdown.stdout).toContain("the init has finished");
      const result = await init.process.result;
      expect(result.code).toBe(0);
      expect(hosts.some(alive)).toBe(false);
      expect(fs.existsSync(init.socket)).toBe(false);
      const gone = await init.cli(["status"]);
      expect(gone.code).toBe(5);
    } finally {
      await init.stop();
    }
  });
});
