// The supervisor with real Tango servers (Debian's TangoTest, -nodb), the built binary as PID 1 of a
// PID namespace, and a real client (PyTango) pinging the devices.

import { describe, expect, it } from "vitest";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { BINARY, cleanEnv, logRecords, run, sleep, startAsPid1, tempDir, waitUntil, type Pid1Process } from "./helpers";
import { pidsMatching, ping, TANGO_TEST, tangoConfig } from "./tango";

type Record_ = ReturnType<typeof logRecords>[number];

function recordsOf(init: Pid1Process): Record_[] {
  return logRecords(init.stderr());
}

function timeOf(records: Record_[], server: string, kind: string): number {
  const record = records.find((r) => r.server === server && r.kind === kind);
  if (!record) throw new Error(`no ${kind} record for ${server}`);
  return record.time as number;
}

function allPinged(result: Awaited<ReturnType<typeof ping>>): string[] {
  return Object.entries(result)
    .filter(([, r]) => !r.ok)
    .map(([url, r]) => `${url}: ${r.error}`);
}

describe("10 TangoTest servers over 3 levels (parallel)", () => {
  const dir = tempDir("tango10");
  const levels = [1, 1, 1, 2, 2, 2, 3, 3, 3, 3];
  const { urls, names } = tangoConfig({ file: path.join(dir, "config.yaml"), basePort: 24100, levels, socket: path.join(dir, "control.sock") });
  const levelOf = new Map(names.map((name, i) => [name, levels[i]]));

  it("boots by levels, every device answers ping when ready, a killed one comes back, SIGTERM stops all in reverse", async () => {
    const init = startAsPid1(["--log-format", "json", "-c", path.join(dir, "config.yaml")]);
    try {
      await init.waitFor('"kind":"boot-complete"', 30_000);
      // Ready means a client can use it: no retry here.
      expect(allPinged(await ping(urls))).toEqual([]);

      const records = recordsOf(init);
      for (const name of names) {
        const level = levelOf.get(name)!;
        if (level === 1) continue;
        const lowerReady = names.filter((other) => levelOf.get(other) === level - 1).map((other) => timeOf(records, other, "ready"));
        expect(timeOf(records, name, "started"), `${name} started before level ${level - 1} was ready`).toBeGreaterThanOrEqual(Math.max(...lowerReady));
      }

      // kill -9 one server: it is restarted and answers again; the others keep their pids.
      const victim = names[4];
      const pidsBefore = new Map(names.map((name, i) => [name, pidsMatching(`sys/tg_test/${i + 1} `)]));
      const [victimPid] = pidsBefore.get(victim)!;
      expect(victimPid).toBeGreaterThan(0);
      process.kill(victimPid, "SIGKILL");
      await waitUntil(() => recordsOf(init).filter((r) => r.server === victim && r.kind === "ready").length >= 2, `${victim} is ready again`);
      expect(allPinged(await ping([urls[4]]))).toEqual([]);
      const afterRecords = recordsOf(init);
      const exit = afterRecords.find((r) => r.server === victim && r.kind === "exited");
      expect(exit?.signal).toBe("SIGKILL");
      for (const [i, name] of names.entries()) {
        const now = pidsMatching(`sys/tg_test/${i + 1} `);
        if (name === victim) expect(now).not.toEqual([victimPid]);
        else expect(now, name).toEqual(pidsBefore.get(name));
      }

      // SIGTERM: levels stop in reverse order, nothing is left, exit code 0.
      await init.signal("SIGTERM");
      const result = await init.result;
      expect(result.code, result.stderr.slice(-2000)).toBe(0);
      const final = recordsOf(init);
      for (const level of [3, 2]) {
        const stoppedAt = names
          .filter((n) => levelOf.get(n) === level)
          .map((n) => final.filter((r) => r.server === n && r.kind === "stopped").at(-1)!.time as number);
        const lowerStopping = names
          .filter((n) => levelOf.get(n) === level - 1)
          .map((n) => final.filter((r) => r.server === n && r.kind === "stopping").at(-1)!.time as number);
        expect(Math.min(...lowerStopping), `level ${level - 1} signalled before level ${level} stopped`).toBeGreaterThanOrEqual(Math.max(...stoppedAt));
      }
      expect(pidsMatching("giop:tcp:127.0.0.1:241")).toEqual([]);
    } finally {
      init.unshare.kill("SIGKILL");
    }
  }, 90_000);
});

describe("sequential mode (Starter-compatible)", () => {
  it("starts one server at a time, interServerWait apart, interLevelWait between levels", async () => {
    const dir = tempDir("tango-seq");
    const levels = [1, 1, 2, 2];
    const { urls, names } = tangoConfig({
      file: path.join(dir, "config.yaml"),
      basePort: 24200,
      levels,
      socket: path.join(dir, "control.sock"),
      extraSettings: ["startMode: sequential", "interServerWait: 500ms", "interLevelWait: 1s"],
    });
    const init = startAsPid1(["--log-format", "json", "-c", path.join(dir, "config.yaml")]);
    try {
      await init.waitFor('"kind":"boot-complete"', 30_000);
      expect(allPinged(await ping(urls))).toEqual([]);
      const records = recordsOf(init);
      const started = names.map((n) => timeOf(records, n, "started"));
      const ready = names.map((n) => timeOf(records, n, "ready"));
      // Within a level: the next fork waits for the previous server to be ready, then 500 ms.
      expect(started[1] - ready[0]).toBeGreaterThanOrEqual(500 - 5);
      expect(started[3] - ready[2]).toBeGreaterThanOrEqual(500 - 5);
      // Between levels: at least the inter-level wait after the last of the level is ready.
      expect(started[2] - ready[1]).toBeGreaterThanOrEqual(1000 - 5);
      // And never two at once.
      for (let i = 1; i < names.length; i++) expect(started[i]).toBeGreaterThan(ready[i - 1]);
      await init.signal("SIGTERM");
      expect((await init.result).code).toBe(0);
    } finally {
      init.unshare.kill("SIGKILL");
    }
  }, 60_000);
});

describe("the Starter's ping without a database (readiness tango:host:port, liveness)", () => {
  it("ready when the admin device answers, pinged while it runs; a hung one is unresponsive, then ready again; a wrong endpoint never gets ready", async () => {
    const dir = tempDir("tango-ping");
    const socket = path.join(dir, "control.sock");
    const [port, wrong] = [await freePort(), await freePort()];
    const file = path.join(dir, "config.yaml");
    fs.writeFileSync(
      file,
      [
        "settings:",
        `  controlSocket: ${socket}`,
        "  defaults: {log: {console: false}, stopTimeout: 5s}",
        "servers:",
        "  - name: TangoTest/ep1",
        `    binary: ${TANGO_TEST}`,
        `    args: -nodb -dlist it/ep/1 -ORBendPoint giop:tcp:127.0.0.1:${port}`,
        `    readiness: tango:127.0.0.1:${port}`,
        "    liveness: {interval: 500ms, timeout: 300ms}",
        "  - name: TangoTest/ep2",
        `    binary: ${TANGO_TEST}`,
        `    args: -nodb -dlist it/ep/2 -ORBendPoint giop:tcp:127.0.0.1:${await freePort()}`,
        `    readiness: tango:127.0.0.1:${wrong}`,
        "    startTimeout: 3s",
        "    restart: never",
        "",
      ].join("\n"),
    );
    const init = startAsPid1(["--log-format", "json", "-c", file]);
    const status = async () => {
      const result = await run(BINARY, ["status", "--json", "--socket", socket], { env: cleanEnv() });
      return JSON.parse(result.stdout) as {
        servers: { name: string; state: string; starter: string; ping: { answered: number; lastRttMs: number | null } | null }[];
      };
    };
    const until = async (what: string, check: (s: Awaited<ReturnType<typeof status>>) => boolean, timeoutMs = 20_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const s = await status().catch(() => null);
        if (s && check(s)) return s;
        if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}: ${JSON.stringify(s)}`);
        await sleep(100);
      }
    };
    const ep = (s: Awaited<ReturnType<typeof status>>, name: string) => s.servers.find((x) => x.name === name)!;
    let stopped: number | null = null;
    try {
      await until("ep1 pinged", (s) => (ep(s, "TangoTest/ep1").ping?.answered ?? 0) >= 2);
      // Ready by the Starter's check (TangoTest 9.3 survived it: the probe waits for its ready line).
      expect(recordsOf(init).find((r) => r.server === "TangoTest/ep1" && r.kind === "ready")).toBeDefined();
      expect(init.stdout() + init.stderr()).not.toContain("Segmentation");
      const failed = await until("ep2 failed", (s) => ep(s, "TangoTest/ep2").state === "failed");
      expect(ep(failed, "TangoTest/ep2")).toMatchObject({ state: "failed", ping: null });
      expect(recordsOf(init).find((r) => r.server === "TangoTest/ep2" && r.kind === "start-timeout")).toBeDefined();

      [stopped] = pidsMatching(`it/ep/1 `);
      process.kill(stopped, "SIGSTOP");
      const hung = await until("ep1 unresponsive", (s) => ep(s, "TangoTest/ep1").state === "unresponsive");
      expect(ep(hung, "TangoTest/ep1").starter).toBe("MOVING");
      process.kill(stopped, "SIGCONT");
      stopped = null;
      await until("ep1 ready again", (s) => ep(s, "TangoTest/ep1").state === "ready" && ep(s, "TangoTest/ep1").starter === "ON");

      await init.signal("SIGTERM");
      expect((await init.result).code).toBe(0);
    } finally {
      if (stopped !== null) process.kill(stopped, "SIGCONT");
      init.unshare.kill("SIGKILL");
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

/** A port of 127.0.0.1 nothing listens on now. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
