// `starter-init reexec`: the built binary as PID 1 of a PID namespace, running 8 real TangoTest device
// servers and 2 log flooders, is replaced in place — by the same binary, then by a rebuilt one with
// another version string — and every server keeps running: same pids, the same status, every
// flooder line written once and whole; a server killed -9 while the exec happens is seen and
// restarted; connected control clients are told and connect again. Then what must be refused is
// (a downgrade, binaries that are not a starter-init), and a forced downgrade restarts the servers.
//
// Ports: 28000 + STARTER_TEST_PORT_OFFSET and up (8 of them).

import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BINARY, ROOT, logRecords, run, sleep, startAsPid1, tempDir, waitUntil, type Pid1Process } from "./helpers";
import { deviceUrl, pidsMatching, ping, PYTHON, TANGO_TEST } from "./tango";
import type { HelloResult, StatusResult } from "../../init/control/protocol";

/**
 * The Starter device's own control client (init/starter-device/starter_device.py): subscribed with
 * `watch`, it must connect and subscribe again by itself after a reexec.
 */
const DEVICE_CLIENT = `
import importlib.util, sys, threading, time
spec = importlib.util.spec_from_file_location("starter_device", sys.argv[1])
device = importlib.util.module_from_spec(spec)
spec.loader.exec_module(device)
again = threading.Event()
def lost():
    print("lost", flush=True)
client = None
def subscribe_again():
    snapshot = client.request("watch", {}, timeout=10.0)
    print("subscribed again: %d servers" % len(snapshot["servers"]), flush=True)
    again.set()
client = device.ControlClient(sys.argv[2], lambda name, data: None, lost, subscribe_again)
print("subscribed: %d servers" % len(client.request("watch", {}, timeout=10.0)["servers"]), flush=True)
again.wait(60)
print("hello after: %s" % client.request("hello", {}, timeout=10.0)["reexec"]["generation"], flush=True)
`;

const BASE_PORT = 28000 + Number(process.env.STARTER_TEST_PORT_OFFSET ?? 0);
const TANGO_SERVERS = 8;
const NEXT_VERSION = "0.1.0-reexec-test";

/** Numbered lines, each written in two pieces (two write(2)s): an exec finds lines begun in the pipes. */
const FLOODER = `
import sys, time
out = sys.stdout.buffer
i = 0
while True:
    for _ in range(20):
        i += 1
        out.write(b"n:%d:" % i)
        out.flush()
        out.write(b"x" * 40 + b"\\n")
        out.flush()
    time.sleep(0.005)
`;

function writeConfig(dir: string): { config: string; socket: string; urls: string[]; tango: string[]; floods: string[] } {
  const socket = path.join(dir, "control.sock");
  const flooder = path.join(dir, "flood.py");
  fs.writeFileSync(flooder, FLOODER);
  const lines = [
    "settings:",
    `  searchPath: [${path.dirname(TANGO_TEST)}]`,
    `  controlSocket: ${socket}`,
    "  defaults:",
    "    stopTimeout: 5s",
    "    log: {console: false}",
    "servers:",
  ];
  const urls: string[] = [];
  const tango: string[] = [];
  for (let n = 1; n <= TANGO_SERVERS; n++) {
    const name = `TangoTest/r${n}`;
    tango.push(name);
    urls.push(deviceUrl(BASE_PORT + n, n));
    lines.push(`  - name: ${name}`, `    level: ${1 + (n % 3)}`, `    args: -nodb -dlist sys/tg_test/${n} -ORBendPoint giop:tcp:127.0.0.1:${BASE_PORT + n}`);
  }
  const floods = ["flood1", "flood2"];
  for (const name of floods) {
    lines.push(
      `  - name: ${name}`,
      `    binary: ${PYTHON}`,
      `    args: [-u, ${flooder}]`,
      "    readiness: none",
      `    log: {file: ${path.join(dir, `${name}.log`)}, maxSize: 1GiB, console: false}`,
    );
  }
  const config = path.join(dir, "config.yaml");
  fs.writeFileSync(config, `${lines.join("\n")}\n`);
  return { config, socket, urls, tango, floods };
}

async function cli(socket: string, args: string[], timeoutMs = 60_000) {
  return run(BINARY, [...args, "--socket", socket], { timeoutMs });
}

async function status(socket: string): Promise<StatusResult> {
  const result = await cli(socket, ["status", "--json"]);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as StatusResult;
}

async function hello(socket: string): Promise<HelloResult> {
  const client = await RawClient.connect(socket);
  try {
    return (await client.ask("hello")) as HelloResult;
  } finally {
    client.close();
  }
}

/** A copy without the keys whose values are times since something (they move on while the test runs). */
function withoutAges(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutAges);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key]) => !/(ago|since)Ms$/i.test(key))
      .map(([key, item]) => [key, withoutAges(item)]),
  );
}

/** status without what must change across a reexec: the init's version and uptime, the servers' uptimes. */
function comparable(result: StatusResult, except: string[] = []): unknown {
  return withoutAges(comparableStatus(result, except));
}

function comparableStatus(result: StatusResult, except: string[]): unknown {
  const { init, servers, ...rest } = result as StatusResult & { init: Record<string, unknown> };
  const { version: _version, uptimeMs: _uptime, resources: _resources, reexec: _reexec, ...initRest } = init;
  return {
    ...rest,
    init: initRest,
    servers: servers
      .filter((server) => !except.includes(server.name))
      .map((server) => {
        const { uptimeMs: _u, sinceMs: _s, cgroup: _c, ...kept } = server as unknown as Record<string, unknown>;
        return kept;
      }),
  };
}

/** A control client on a plain socket: what every message is, and whether the connection closed. */
class RawClient {
  readonly messages: Record<string, unknown>[] = [];
  closed = false;
  private buffer = "";
  private nextId = 1;

  private constructor(private readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.buffer += chunk.toString();
      for (let newline = this.buffer.indexOf("\n"); newline >= 0; newline = this.buffer.indexOf("\n")) {
        this.messages.push(JSON.parse(this.buffer.slice(0, newline)) as Record<string, unknown>);
        this.buffer = this.buffer.slice(newline + 1);
      }
    });
    socket.on("close", () => (this.closed = true));
    socket.on("error", () => {});
  }

  static connect(file: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection(file, () => resolve(new RawClient(socket)));
      socket.once("error", reject);
    });
  }

  async ask(cmd: string, args: Record<string, unknown> = {}): Promise<unknown> {
    const id = this.nextId++;
    this.socket.write(`${JSON.stringify({ v: 1, id, cmd, args })}\n`);
    await waitUntil(() => this.messages.some((m) => m.id === id), `an answer to ${cmd}`);
    const answer = this.messages.find((m) => m.id === id)!;
    if (answer.ok !== true) throw new Error(JSON.stringify(answer.error));
    return answer.result;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Every flooder line of a log file, in order: "n:<i>:" and 40 x's; anything else is a split or a mix. */
function floodNumbers(file: string): { numbers: number[]; malformed: string[] } {
  const numbers: number[] = [];
  const malformed: string[] = [];
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    if (line === "" || line.includes(" [starter-init] ")) continue;
    const match = /^\S+ n:(\d+):x{40}$/.exec(line);
    if (match) numbers.push(Number(match[1]));
    else malformed.push(line);
  }
  return { numbers, malformed };
}

function expectEveryLineOnce(file: string): number {
  const { numbers, malformed } = floodNumbers(file);
  expect(malformed.slice(0, 5), `${file}: lines split or mixed`).toEqual([]);
  expect(numbers.length).toBeGreaterThan(1000);
  const wrong = numbers.filter((n, i) => n !== i + 1);
  expect(wrong.slice(0, 5), `${file}: a line lost or written twice`).toEqual([]);
  return numbers.length;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("reexec with 10 servers running", () => {
  const dir = tempDir("reexec");
  const { config, socket, urls, tango, floods } = writeConfig(dir);
  const next = path.join(dir, "next", "starter-init");
  let init: Pid1Process;

  beforeAll(async () => {
    // The rebuilt binary: another version string, and a newer state format (so that going back is a downgrade).
    const built = await run(process.execPath, [path.join(ROOT, "native", "sea.mjs")], {
      env: { ...process.env, STARTER_SEA_OUT: next, STARTER_BUILD_VERSION: NEXT_VERSION, STARTER_BUILD_STATE_FORMAT: "2" },
      timeoutMs: 300_000,
    });
    expect(built.code, built.stderr).toBe(0);
    init = startAsPid1(["--log-format", "json", "-c", config]);
    await init.waitFor('"kind":"boot-complete"', 60_000);
  }, 360_000);

  afterAll(() => {
    init?.unshare.kill("SIGKILL");
  });

  it("replaces itself with the same binary: same pids and status, no flooder line lost, a server killed meanwhile restarted, clients told", async () => {
    expect(Object.values(await ping(urls)).filter((r) => !r.ok)).toEqual([]);
    const before = await status(socket);
    expect(before.servers.every((server) => server.state === "ready")).toBe(true);
    const victim = tango[2];
    // Its pid as the host sees it (status shows the namespace's).
    const [victimPid] = pidsMatching("sys/tg_test/3 ");
    expect(victimPid).toBeGreaterThan(1);

    // A client that stays connected, and one that follows a log.
    const watcher = await RawClient.connect(socket);
    await watcher.ask("hello");
    const follower = spawn(BINARY, ["logs", "flood1", "--follow", "--socket", socket], { stdio: ["ignore", "pipe", "pipe"] });
    let followed = "";
    follower.stdout.on("data", (chunk: Buffer) => (followed += chunk.toString()));
    const device = spawn(PYTHON, ["-c", DEVICE_CLIENT, path.join(ROOT, "init", "starter-device", "starter_device.py"), socket], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let deviceOutput = "";
    device.stdout.on("data", (chunk: Buffer) => (deviceOutput += chunk.toString()));
    device.stderr.on("data", (chunk: Buffer) => (deviceOutput += chunk.toString()));
    await waitUntil(() => deviceOutput.includes("subscribed: 10 servers"), `the device client subscribes (${deviceOutput})`);

    await sleep(500);
    const execing = init.waitFor("re-executing", 30_000).then(() => process.kill(victimPid, "SIGKILL"));
    const result = await cli(socket, ["reexec"]);
    await execing;
    expect(result.code, result.stderr + result.stdout).toBe(0);
    expect(result.stdout).toMatch(/re-executed 0\.1\.0 → 0\.1\.0 in [\d.]+ ms \(pid 1\); servers' output unread for [\d.]+ ms/);

    // The connected client was told why, then closed; it connects again.
    await waitUntil(() => watcher.closed, "the connected client is closed");
    expect(watcher.messages.at(-1)).toMatchObject({ id: null, ok: false, error: { code: "closing" } });
    const again = await hello(socket);
    expect(again).toMatchObject({ pid: 1, version: "0.1.0", reexec: { generation: 1, from: "0.1.0", to: "0.1.0", lastFailure: null } });

    // The killed server is seen and restarted; every other keeps its pid and its status.
    await waitUntil(() => recordsOf(init).some((r) => r.server === victim && r.kind === "exited" && r.signal === "SIGKILL"), `${victim}'s kill is seen`);
    await waitUntil(() => recordsOf(init).filter((r) => r.server === victim && r.kind === "ready").length >= 2, `${victim} is ready again`, 30_000);
    const after = await status(socket);
    expect(comparable(after, [victim])).toEqual(comparable(before, [victim]));
    const restarted = after.servers.find((server) => server.name === victim)!;
    expect(restarted.pid).not.toBe(before.servers.find((server) => server.name === victim)!.pid);
    expect(restarted.state).toBe("ready");
    expect(restarted.restarts).toBe(1);
    expect(pidsMatching("sys/tg_test/3 ")).not.toEqual([victimPid]);
    expect(Object.values(await ping(urls)).filter((r) => !r.ok)).toEqual([]);

    // The follower went on, through its own reconnection, with lines newer than those before the exec.
    const seenBefore = Math.max(0, ...floodNumbers(path.join(dir, "flood1.log")).numbers);
    await waitUntil(() => [...followed.matchAll(/n:(\d+):/g)].some((m) => Number(m[1]) > seenBefore), "logs --follow goes on after the reexec");
    expect(follower.exitCode).toBeNull();
    follower.kill("SIGTERM");
    // The Starter device's client: told, connected and subscribed again, never "lost" (it would exit and be restarted).
    await waitUntil(() => deviceOutput.includes("hello after: 1"), `the device client is back (${deviceOutput})`);
    expect(deviceOutput).toContain("Starter: connected again to starter-init after its reexec");
    expect(deviceOutput).toContain("subscribed again: 10 servers");
    expect(deviceOutput).not.toContain("lost");
    for (const name of floods) expectEveryLineOnce(path.join(dir, `${name}.log`));
  }, 120_000);

  it("replaces itself with a rebuilt binary of another version: status equal but for version and uptime", async () => {
    const before = await status(socket);
    const result = await cli(socket, ["reexec", "--binary", next]);
    expect(result.code, result.stderr + result.stdout).toBe(0);
    expect(result.stdout).toContain(`re-executed 0.1.0 → ${NEXT_VERSION}`);
    const after = await status(socket);
    expect(after.init.version).toBe(NEXT_VERSION);
    expect(comparable(after)).toEqual(comparable(before));
    expect((await hello(socket)).reexec).toMatchObject({ generation: 2, from: "0.1.0", to: NEXT_VERSION });
    expect(Object.values(await ping(urls)).filter((r) => !r.ok)).toEqual([]);
    for (const name of floods) expectEveryLineOnce(path.join(dir, `${name}.log`));
  }, 120_000);

  it("re-executes its own executable on SIGRTMIN+1 (the way from a VM's console: kill -35 1)", async () => {
    const before = await status(socket);
    const hostPid = await init.initPid();
    const sent = await run("/bin/kill", ["-s", "RTMIN+1", String(hostPid)]);
    expect(sent.code, sent.stderr).toBe(0);
    await waitUntil(() => recordsOf(init).filter((r) => typeof r.msg === "string" && r.msg.startsWith("re-executed:")).length >= 3, "the third reexec", 60_000);
    const info = await hello(socket);
    expect(info).toMatchObject({ version: NEXT_VERSION, reexec: { generation: 3, from: NEXT_VERSION, to: NEXT_VERSION } });
    expect(comparable(await status(socket))).toEqual(comparable(before));
  }, 120_000);

  it("refuses what cannot take over, saying why, and goes on unchanged", async () => {
    const before = await status(socket);
    const script = path.join(dir, "not-an-init.sh");
    fs.writeFileSync(script, "#!/bin/sh\necho hello\n", { mode: 0o755 });
    const plain = path.join(dir, "not-executable");
    fs.copyFileSync(BINARY, plain);
    fs.chmodSync(plain, 0o644);
    // An ELF header of another machine (aarch64, e_machine 183).
    const foreign = path.join(dir, "foreign");
    const header = Buffer.alloc(64);
    header.writeUInt32BE(0x7f454c46, 0);
    header[4] = 2;
    header[5] = 1;
    header.writeUInt16LE(2, 16);
    header.writeUInt16LE(183, 18);
    fs.writeFileSync(foreign, header, { mode: 0o755 });
    const cases: [string[], RegExp][] = [
      [["--binary", path.join(dir, "missing")], /no such file/],
      [["--binary", plain], /not executable/],
      [["--binary", foreign], /another architecture \(ELF machine 183/],
      [["--binary", script], /not an ELF executable/],
      [["--binary", "/usr/bin/true"], /not a starter-init that can take over/],
      // Back to the first build: it reads an older state format (a downgrade), refused without --force.
      [["--binary", BINARY], /reads state format 1, older than this init's 2 .* a downgrade would restart every server; reexec --force/],
    ];
    for (const [args, why] of cases) {
      const result = await cli(socket, ["reexec", ...args]);
      expect(result.code, args.join(" ")).not.toBe(0);
      expect(result.stderr, args.join(" ")).toMatch(why);
    }
    // A failure after the checks, with everything handed over already (the state file cannot be
    // written: a directory stands where it goes): the init takes everything back and goes on.
    const blocker = path.join(dir, "starter-init", "reexec-state.1.json");
    fs.mkdirSync(blocker, { recursive: true });
    const failed = await cli(socket, ["reexec"]);
    fs.rmSync(blocker, { recursive: true });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/reexec failed, the init goes on unchanged: before the exec: EISDIR/);
    await sleep(500);
    const after = await status(socket);
    expect(comparable(after)).toEqual(comparable(before));
    expect(after.init.reexec).toMatchObject({ generation: 3, lastFailure: expect.stringContaining("EISDIR") });
    for (const name of floods) expectEveryLineOnce(path.join(dir, `${name}.log`));
  }, 120_000);

  it("downgrades when forced: the state is saved, the old servers are stopped and every server starts afresh", async () => {
    const before = await status(socket);
    const oldPids = before.servers.map((server) => server.pid!);
    const oldHostPids = [...tango.keys()].flatMap((i) => pidsMatching(`sys/tg_test/${i + 1} `));
    expect(oldHostPids).toHaveLength(TANGO_SERVERS);
    const result = await cli(socket, ["reexec", "--binary", BINARY, "--force"], 120_000);
    // The init comes back, not as a re-executed one: it boots afresh.
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("a downgrade: it stopped the servers and booted afresh");
    await init.waitFor("not readable here", 60_000);
    await waitUntil(() => recordsOf(init).filter((r) => r.kind === "boot-complete").length >= 2, "the fresh boot completes", 60_000);
    const warning = recordsOf(init).find((r) => typeof r.msg === "string" && r.msg.includes("not readable here"))!;
    expect(String(warning.msg)).toContain("state format 2 (written by 0.1.0-reexec-test) is newer than this build reads (1)");
    expect(fs.existsSync(String(warning.savedTo))).toBe(true);
    expect(JSON.parse(fs.readFileSync(String(warning.savedTo), "utf8"))).toMatchObject({ format: 2, writer: NEXT_VERSION });
    expect(oldHostPids.filter(alive)).toEqual([]);
    const after = await status(socket);
    expect(after.init.version).toBe("0.1.0");
    expect(after.servers.every((server) => server.state === "ready" && !oldPids.includes(server.pid!))).toBe(true);
    expect(Object.values(await ping(urls)).filter((r) => !r.ok)).toEqual([]);

    await init.signal("SIGTERM");
    const end = await init.result;
    expect(end.code, end.stderr.slice(-2000)).toBe(0);
  }, 180_000);
});

function recordsOf(init: Pid1Process): Record<string, unknown>[] {
  return logRecords(init.stderr());
}
