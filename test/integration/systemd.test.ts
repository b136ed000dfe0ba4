// The init under systemd: the built binary as a plain process (not PID 1) with NOTIFY_SOCKET set, and
// a receiver that plays systemd's end of the protocol (test/fixtures/systemd/notify-receiver.py). The
// datagrams are compared whole and in order across boot, a crash, reloads and stop; the watchdog's
// pings are checked for their period.

import { afterAll, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { BINARY, cleanEnv, run, tempDir, waitUntil } from "./helpers";

const RECEIVER = path.resolve(__dirname, "..", "fixtures", "systemd", "notify-receiver.py");

interface Datagram {
  at: number;
  data: string;
  pid: number | null;
}

interface Receiver {
  datagrams: Datagram[];
  /** Datagrams other than WATCHDOG=1, in order. */
  messages(): string[];
  stop(): void;
}

const started = new Set<ChildProcess>();
afterAll(() => {
  for (const child of started) child.kill("SIGKILL");
});

function track(child: ChildProcess): ChildProcess {
  started.add(child);
  child.once("close", () => started.delete(child));
  return child;
}

async function receive(address: string): Promise<Receiver> {
  const child = track(spawn("/usr/bin/python3", [RECEIVER, address], { stdio: ["ignore", "pipe", "inherit"] }));
  const datagrams: Datagram[] = [];
  let listening = false;
  let pending = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    pending += chunk.toString();
    const lines = pending.split("\n");
    pending = lines.pop()!;
    for (const line of lines) {
      const record = JSON.parse(line) as Datagram & { listening?: boolean };
      if (record.listening) listening = true;
      else datagrams.push(record);
    }
  });
  await waitUntil(() => listening, "the receiver is bound");
  return {
    datagrams,
    messages: () => datagrams.filter((d) => d.data !== "WATCHDOG=1").map((d) => d.data),
    stop: () => child.kill("SIGKILL"),
  };
}

function startInit(config: string, env: Record<string, string>): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = track(spawn(BINARY, ["run", "-c", config, "--log-format", "json"], { env: cleanEnv(env), stdio: ["ignore", "pipe", "pipe"] }));
  let output = "";
  child.stdout!.on("data", (chunk) => (output += chunk));
  child.stderr!.on("data", (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
  return { child, output: () => output, exited };
}

function writeConfig(file: string, dir: string, servers: string[]): void {
  const entries: Record<string, string> = {
    A: `  - name: A\n    binary: /bin/sleep\n    args: [1000]\n`,
    B: `  - name: B\n    binary: /bin/sleep\n    args: [1000]\n    readiness: { file: ${dir}/b.ready }\n`,
    C: `  - name: C\n    binary: /bin/sleep\n    args: [1000]\n`,
  };
  const settings = `settings:\n  controlSocket: ${dir}/control.sock\n  shutdownTimeout: 5s\n  defaults: { log: { console: false } }\n`;
  fs.writeFileSync(file, `${settings}servers:\n${servers.map((name) => entries[name]).join("")}`);
}

async function statusOf(dir: string): Promise<{ servers: { name: string; pid: number | null; state: string }[] }> {
  const result = await run(BINARY, ["--socket", `${dir}/control.sock`, "status", "--json"], { env: cleanEnv() });
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as { servers: { name: string; pid: number | null; state: string }[] };
}

describe("systemd notification protocol (NOTIFY_SOCKET)", () => {
  it("READY=1 after the boot, STATUS= lines, RELOADING=1 … READY=1 around reloads, STOPPING=1, WATCHDOG=1 every half of WATCHDOG_USEC", async () => {
    const dir = tempDir("systemd");
    const config = path.join(dir, "config.yaml");
    const socket = path.join(dir, "notify.sock");
    writeConfig(config, dir, ["A", "B"]);
    const receiver = await receive(socket);
    const init = startInit(config, { NOTIFY_SOCKET: socket, WATCHDOG_USEC: "1000000" });
    const initPid = init.child.pid!;
    const waitForMessages = (count: number, what: string) => waitUntil(() => receiver.messages().length >= count, what, 20_000);

    // Boot: A is ready at once, B once its file exists; READY=1 only then.
    await waitForMessages(2, "two status lines");
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(receiver.messages()).toEqual(["STATUS=booting: 0 of 2 servers ready, 2 starting", "STATUS=booting: 1 of 2 servers ready, 1 starting"]);
    fs.writeFileSync(path.join(dir, "b.ready"), "");
    await waitForMessages(3, "READY=1");

    // The init's variables are not the servers': a server speaking to systemd would be refused anyway.
    const status = await statusOf(dir);
    const serverA = status.servers.find((s) => s.name === "A")!;
    const environ = fs.readFileSync(`/proc/${serverA.pid}/environ`, "utf8").split("\0");
    expect(environ.filter((entry) => /^(NOTIFY_SOCKET|WATCHDOG_USEC|WATCHDOG_PID)=/.test(entry))).toEqual([]);

    // A crash: the line follows the server through backoff and its restart.
    process.kill(serverA.pid!, "SIGKILL");
    await waitForMessages(6, "the restart");

    // A reload that adds a server (SIGHUP), then one that is refused (the client; the config does not load).
    writeConfig(config, dir, ["A", "B", "C"]);
    process.kill(initPid, "SIGHUP");
    await waitForMessages(8, "the first reload");
    fs.writeFileSync(config, "settings: [\n");
    const refused = await run(BINARY, ["--socket", `${dir}/control.sock`, "reload"], { env: cleanEnv() });
    expect(refused.code).toBe(78);
    await waitForMessages(10, "the refused reload");
    // Idle for a while: only the watchdog speaks.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(receiver.messages()).toHaveLength(10);

    init.child.kill("SIGTERM");
    expect(await init.exited, init.output()).toBe(0);
    await waitForMessages(14, "the shutdown");
    await new Promise((resolve) => setTimeout(resolve, 300));
    receiver.stop();

    const messages = receiver.messages().map((m) => m.replace(/^MONOTONIC_USEC=\d+$/m, "MONOTONIC_USEC=<now>"));
    expect(messages).toEqual([
      "STATUS=booting: 0 of 2 servers ready, 2 starting",
      "STATUS=booting: 1 of 2 servers ready, 1 starting",
      "READY=1\nSTATUS=2 of 2 servers ready",
      "STATUS=1 of 2 servers ready, 1 backoff",
      "STATUS=1 of 2 servers ready, 1 starting",
      "STATUS=2 of 2 servers ready",
      "RELOADING=1\nMONOTONIC_USEC=<now>\nSTATUS=reloading the configuration",
      "READY=1\nSTATUS=3 of 3 servers ready",
      "RELOADING=1\nMONOTONIC_USEC=<now>\nSTATUS=reloading the configuration",
      "READY=1\nSTATUS=3 of 3 servers ready (reload refused: the config does not load)",
      "STOPPING=1\nSTATUS=stopping: 3 of 3 servers still running",
      "STATUS=stopping: 2 of 3 servers still running",
      "STATUS=stopping: 1 of 3 servers still running",
      "STATUS=every server has stopped",
    ]);

    // Every datagram comes from the init itself (systemd's NotifyAccess=main accepts only those).
    expect(new Set(receiver.datagrams.map((d) => d.pid))).toEqual(new Set([initPid]));
    // MONOTONIC_USEC is CLOCK_MONOTONIC, as systemd reads it: close to the receiver's clock.
    for (const datagram of receiver.datagrams.filter((d) => d.data.startsWith("RELOADING=1"))) {
      const sent = Number(/MONOTONIC_USEC=(\d+)/.exec(datagram.data)![1]);
      expect(Math.abs(datagram.at - sent)).toBeLessThan(2_000_000);
    }

    // WATCHDOG=1 every 500 ms (half of 1 s) from start to exit: the median gap says the period; the
    // count says none went missing for long (a loaded machine delays timers, never by seconds).
    const pings = receiver.datagrams.filter((d) => d.data === "WATCHDOG=1").map((d) => d.at / 1000);
    const gaps = pings.slice(1).map((at, i) => at - pings[i]);
    const median = [...gaps].sort((a, b) => a - b)[Math.floor(gaps.length / 2)];
    const spanMs = receiver.datagrams.at(-1)!.at / 1000 - receiver.datagrams[0].at / 1000;
    expect(median).toBeGreaterThan(400);
    expect(median).toBeLessThan(700);
    expect(pings.length).toBeGreaterThanOrEqual(Math.floor(spanMs / 500) - 2);
    expect(Math.max(...gaps)).toBeLessThan(1000);
  });

  it("an abstract NOTIFY_SOCKET (@name) works; WATCHDOG_PID of another process means no pings", async () => {
    const dir = tempDir("systemd-abstract");
    const config = path.join(dir, "config.yaml");
    writeConfig(config, dir, ["A"]);
    const address = `@starter-init-test-${process.pid}-${Date.now()}`;
    const receiver = await receive(address);
    const init = startInit(config, { NOTIFY_SOCKET: address, WATCHDOG_USEC: "200000", WATCHDOG_PID: "1" });
    await waitUntil(() => receiver.messages().includes("READY=1\nSTATUS=1 of 1 server ready"), "READY=1", 20_000);
    await new Promise((resolve) => setTimeout(resolve, 600));
    init.child.kill("SIGTERM");
    expect(await init.exited, init.output()).toBe(0);
    await waitUntil(() => receiver.messages().at(-1) === "STATUS=every server has stopped", "the last status", 10_000);
    receiver.stop();
    expect(receiver.messages()).toEqual([
      "STATUS=booting: 0 of 1 server ready, 1 starting",
      "READY=1\nSTATUS=1 of 1 server ready",
      "STOPPING=1\nSTATUS=stopping: 1 of 1 server still running",
      "STATUS=every server has stopped",
    ]);
    expect(receiver.datagrams.filter((d) => d.data === "WATCHDOG=1")).toEqual([]);
  });
});
