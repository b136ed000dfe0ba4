// The read-only HTTP listener end to end: the built binary as PID 1 of a PID namespace (the host's
// network) with settings.http.listen, scraped by a real Prometheus (Debian's), probed like Kubernetes
// would, and flooded with connections and slow clients while the supervisor is watched.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { run, sleep, tempDir, waitUntil } from "./helpers";
import { alive, hostPid, rawConnect, startInit, waitForStatus, type Init } from "../fixtures/control/harness";
import { TANGO_TEST } from "./tango";

const PROMETHEUS = "/usr/bin/prometheus";
const PROMTOOL = "/usr/bin/promtool";

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  ms: number;
}

/** A port nobody listens on now (the kernel's choice), so that two checkouts never collide. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function request(port: number, urlPath: string, method = "GET", host = "127.0.0.1"): Promise<Reply> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, path: urlPath, method, agent: false, timeout: 10_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body, ms: Date.now() - started }));
    });
    req.on("timeout", () => req.destroy(new Error(`${method} ${urlPath}: no answer within 10 s`)));
    req.on("error", reject);
    req.end();
  });
}

/** The listening TCP sockets of the host whose port is `port`, as "address:port" (from ss). */
async function listeners(port: number): Promise<string[]> {
  const result = await run("ss", ["-Hltn", `sport = :${port}`]);
  return result.stdout
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((line) => line.trim().split(/\s+/)[3]);
}

/** A control-socket status request on a raw connection: how long until its answer arrived. */
async function controlStatusMs(socket: string): Promise<number> {
  const connection = await rawConnect(socket);
  const started = Date.now();
  connection.socket.write(`${JSON.stringify({ v: 1, id: 1, cmd: "status", args: {} })}\n`);
  const line = await connection.firstLine;
  const ms = Date.now() - started;
  connection.socket.destroy();
  expect(JSON.parse(line!)).toMatchObject({ id: 1, ok: true });
  return ms;
}

describe("HTTP listener: routes, address, reload", () => {
  let init: Init;
  let port: number;
  let flag: string;
  beforeAll(async () => {
    port = await freePort();
    flag = path.join(tempDir("http-flag"), "go");
    init = await startInit("http-routes", [{ name: "Fake/alpha" }, { name: "Fake/beta", args: ["--wait-file", flag] }], {
      settings: { http: { listen: port } },
    });
    await init.process.waitFor("HTTP listener on");
  });
  afterAll(async () => {
    await init?.stop();
  });

  it("a port alone binds 127.0.0.1 only: no other address of the host answers", async () => {
    expect(await listeners(port)).toEqual([`127.0.0.1:${port}`]);
    const other = Object.values(os.networkInterfaces())
      .flat()
      .find((address) => address && address.family === "IPv4" && !address.internal);
    if (other) await expect(request(port, "/healthz", "GET", other.address)).rejects.toThrow(/ECONNREFUSED/);
  });

  it("/readyz follows the rule of `ready` (503 while booting, then 200); /healthz is 200 all along", async () => {
    const booting = await request(port, "/readyz");
    expect(booting.status).toBe(503);
    expect(JSON.parse(booting.body)).toMatchObject({ ready: false, phase: "booting", waiting: [{ name: "Fake/beta", state: "starting" }] });
    const cli = await init.cli(["ready", "--json"]);
    expect(JSON.parse(cli.stdout)).toEqual(JSON.parse(booting.body));
    const health = await request(port, "/healthz");
    expect([health.status, health.body, health.headers["content-type"]]).toEqual([200, "ok\n", "text/plain; charset=utf-8"]);

    fs.writeFileSync(flag, "");
    await waitForStatus(init, (s) => s.init.phase === "running", "the boot is complete");
    const ready = await request(port, "/readyz");
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toEqual({ ready: true, phase: "running", waiting: [] });
  });

  it("/status is the JSON of `status --json`", async () => {
    const reply = await request(port, "/status");
    expect(reply.status).toBe(200);
    expect(reply.headers["content-type"]).toBe("application/json; charset=utf-8");
    const cli = await init.status();
    // Times and the init's own resources (memory, handles: the second request is one more client)
    // move between the two requests; everything else is the same document.
    const stable = (document: unknown) =>
      JSON.parse(JSON.stringify(document), (key: string, value: unknown) =>
        ["uptimeMs", "sinceMs", "agoMs", "resources"].includes(key) ? 0 : value,
      ) as unknown;
    expect(stable(JSON.parse(reply.body))).toEqual(stable(cli));
    expect(cli.servers.map((s) => s.name)).toEqual(["Fake/alpha", "Fake/beta"]);
  });

  it("/metrics is the Prometheus text format; promtool finds nothing to say about the init's own metrics", async () => {
    const reply = await request(port, "/metrics");
    expect(reply.status).toBe(200);
    expect(reply.headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8");
    for (const line of [
      'starter_server_up{server="Fake/alpha"} 1',
      'starter_server_state{server="Fake/beta",state="ready"} 1',
      'starter_server_state{server="Fake/beta",state="starting"} 0',
      'starter_server_restarts_total{server="Fake/alpha"} 0',
      'starter_servers{state="ready"} 2',
      "starter_ready 1",
      'starter_phase{phase="running"} 1',
      'starter_info{version="0.1.0",role="container"} 1',
      'starter_server_time_to_ready_seconds_count{server="Fake/alpha"} 1',
    ]) {
      expect(reply.body.split("\n")).toContain(line);
    }
    expect(reply.body).toMatch(/^process_resident_memory_bytes \d+$/m);
    expect(reply.body).toMatch(/^nodejs_eventloop_lag_seconds [\d.e-]+$/m);
    expect(reply.body).toMatch(/^starter_control_connections_total \d+$/m);
    expect(reply.body).toMatch(/^starter_orphans_reaped_total \d+$/m);

    const lint = await new Promise<{ code: number | null; output: string }>((resolve) => {
      const promtool = spawn(PROMTOOL, ["check", "metrics"], { stdio: ["pipe", "pipe", "pipe"] });
      let output = "";
      promtool.stdout.on("data", (chunk) => (output += chunk));
      promtool.stderr.on("data", (chunk) => (output += chunk));
      promtool.on("close", (code) => resolve({ code, output }));
      promtool.stdin.end(reply.body);
    });
    // prom-client's own process metrics draw remarks (gauges named *_total); the init's draw none.
    const remarks = lint.output.split("\n").filter(Boolean);
    expect(remarks.filter((remark) => !/^nodejs_active_(handles|requests|resources)_total /.test(remark))).toEqual([]);
    expect(remarks.length).toBeLessThanOrEqual(3);
  });

  it("read-only: any other method is 405 with Allow; an unknown path is 404; HEAD has headers only", async () => {
    for (const method of ["POST", "PUT", "DELETE", "PATCH"]) {
      const reply = await request(port, "/status", method);
      expect([method, reply.status, reply.headers.allow]).toEqual([method, 405, "GET, HEAD"]);
    }
    for (const unknown of ["/", "/metrics/", "/status/Fake", "/start", "/../etc/passwd"]) {
      expect([unknown, (await request(port, unknown)).status]).toEqual([unknown, 404]);
    }
    expect((await request(port, "/nope", "POST")).status).toBe(404);
    const head = await request(port, "/metrics", "HEAD");
    expect(head.status).toBe(200);
    expect(head.body).toBe("");
    expect(Number(head.headers["content-length"])).toBeGreaterThan(1000);
    // Nothing was done to the servers by any of it.
    expect((await init.status()).servers.map((s) => [s.name, s.state, s.restarts])).toEqual([
      ["Fake/alpha", "ready", 0],
      ["Fake/beta", "ready", 0],
    ]);
  });

  it("a connection serves at most 32 requests: requests pipelined past that get 503", async () => {
    const socket = net.connect(port, "127.0.0.1");
    let data = "";
    socket.on("data", (chunk) => (data += chunk));
    socket.write("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".repeat(40));
    const codes = () => data.match(/^HTTP\/1\.1 \d+/gm) ?? [];
    await waitUntil(() => codes().length >= 40, "40 answers", 10_000);
    socket.destroy();
    expect(codes().filter((code) => code.endsWith("200"))).toHaveLength(32);
    expect(codes().filter((code) => code.endsWith("503"))).toHaveLength(8);
  });

  it("a reload that changes settings.http.listen moves the listener", async () => {
    const next = await freePort();
    const document = JSON.parse(fs.readFileSync(init.config, "utf8")) as { settings: Record<string, unknown> };
    document.settings.http = { listen: `127.0.0.1:${next}` };
    fs.writeFileSync(init.config, JSON.stringify(document));
    const reload = await init.cli(["reload"]);
    expect(reload.code, reload.stderr).toBe(0);
    await init.process.waitFor(`HTTP listener on http://127.0.0.1:${next}`);
    expect((await request(next, "/healthz")).status).toBe(200);
    await expect(request(port, "/healthz")).rejects.toThrow(/ECONNREFUSED/);
    // An answer of /metrics is shared for 250 ms: the one after the reload may still be the one before.
    await sleep(300);
    expect((await request(next, "/metrics")).body).toContain('starter_reloads_total{result="applied"} 1');
    port = next;
  });
});

describe("HTTP listener: the Starter's ping of a real TangoTest", () => {
  let init: Init;
  afterAll(async () => {
    await init?.stop();
  });

  it("the last ping's round trip and failures in a row are per-server gauges; a hung server is unresponsive, not up", async () => {
    const [port, tangoPort] = [await freePort(), await freePort()];
    init = await startInit(
      "http-ping",
      [
        {
          name: "TangoTest/hp1",
          binary: TANGO_TEST,
          args: ["-nodb", "-dlist", "it/hp/1", "-ORBendPoint", `giop:tcp:127.0.0.1:${tangoPort}`],
          readiness: `tango:127.0.0.1:${tangoPort}`,
          liveness: { interval: "300ms", timeout: "300ms" },
        },
      ],
      { settings: { http: { listen: port } } },
    );
    await init.process.waitFor("HTTP listener on");
    const metric = async (name: string): Promise<number | null> => {
      const line = (await request(port, "/metrics")).body.split("\n").find((l) => l.startsWith(`${name}{server="TangoTest/hp1"`) || l.startsWith(`${name} `));
      return line === undefined ? null : Number(line.slice(line.lastIndexOf(" ") + 1));
    };
    const until = async (what: string, check: () => Promise<boolean>) => {
      const deadline = Date.now() + 20_000;
      while (!(await check())) {
        if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}; metrics:\n${(await request(port, "/metrics")).body}`);
        await sleep(300);
      }
    };
    await until("a ping answered", async () => ((await metric("starter_server_ping_round_trip_seconds")) ?? 0) > 0);
    const rtt = (await metric("starter_server_ping_round_trip_seconds"))!;
    expect(rtt).toBeGreaterThan(0);
    expect(rtt).toBeLessThan(0.3);
    expect(await metric("starter_server_ping_failures")).toBe(0);
    expect(await metric("starter_server_up")).toBe(1);

    const server = await init.server("TangoTest/hp1");
    const pid = hostPid(init, server.pid!)!;
    process.kill(pid, "SIGSTOP");
    try {
      await until("unresponsive", async () =>
        (await request(port, "/metrics")).body.includes('starter_server_state{server="TangoTest/hp1",state="unresponsive"} 1'),
      );
      expect(await metric("starter_server_up")).toBe(0);
      expect(await metric("starter_server_ping_failures")).toBeGreaterThanOrEqual(2);
      expect((await request(port, "/metrics")).body).toContain('starter_servers{state="unresponsive"} 1');
      expect((await request(port, "/readyz")).status).toBe(503);
    } finally {
      process.kill(pid, "SIGCONT");
    }
    await until("up again", async () => (await metric("starter_server_up")) === 1);
    expect(await metric("starter_server_ping_failures")).toBe(0);
  });
});

describe("HTTP listener under a real Prometheus", () => {
  let init: Init;
  let prometheus: ChildProcess | null = null;
  afterAll(async () => {
    prometheus?.kill("SIGKILL");
    await init?.stop();
  });

  it("Prometheus scrapes /metrics; a PromQL query returns a server's restart count after two kill -9s", async () => {
    const port = await freePort();
    init = await startInit("http-prometheus", [{ name: "Fake/alpha" }, { name: "Fake/beta" }], {
      settings: { http: { listen: port }, defaults: { log: { console: false }, restart: { initialDelay: "100ms" } } },
    });
    await waitForStatus(init, (s) => s.init.phase === "running", "the boot is complete");

    const dir = tempDir("prometheus");
    const webPort = await freePort();
    fs.writeFileSync(
      path.join(dir, "prometheus.yml"),
      [
        "global:",
        "  scrape_interval: 1s",
        "  scrape_timeout: 1s",
        "scrape_configs:",
        "  - job_name: starter-init",
        "    static_configs:",
        `      - targets: ["127.0.0.1:${port}"]`,
      ].join("\n"),
    );
    prometheus = spawn(
      PROMETHEUS,
      [
        `--config.file=${path.join(dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${path.join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${webPort}`,
        "--log.level=warn",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let prometheusLog = "";
    prometheus.stderr!.on("data", (chunk) => (prometheusLog += chunk));

    const query = async (promql: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> => {
      const reply = await request(webPort, `/api/v1/query?query=${encodeURIComponent(promql)}`);
      const answer = JSON.parse(reply.body) as { status: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
      expect(answer.status).toBe("success");
      return answer.data.result;
    };
    const waitForValue = async (promql: string, value: string, what: string) => {
      const deadline = Date.now() + 45_000;
      let last: unknown = null;
      while (Date.now() < deadline) {
        try {
          const result = await query(promql);
          last = result;
          if (result.length === 1 && result[0].value[1] === value) return result[0];
        } catch (err) {
          last = err;
        }
        await sleep(500);
      }
      throw new Error(`timed out waiting until ${what}: ${promql} is ${JSON.stringify(last)}\nprometheus:\n${prometheusLog}`);
    };

    // The target is up, and its series are there before anything happens.
    await waitForValue(`up{job="starter-init"}`, "1", "Prometheus scrapes the init");
    await waitForValue(`starter_server_restarts_total{server="Fake/alpha"}`, "0", "the first scrape of the restarts");

    for (const expected of [1, 2]) {
      const before = await init.server("Fake/alpha");
      const victim = hostPid(init, before.pid!);
      process.kill(victim!, "SIGKILL");
      await waitUntil(() => !alive(victim), "the server is dead");
      await waitForStatus(init, (s) => s.servers.some((x) => x.name === "Fake/alpha" && x.state === "ready" && x.restarts === expected), `restart ${expected}`);
    }
    const restarts = await waitForValue(`starter_server_restarts_total{server="Fake/alpha"}`, "2", "Prometheus sees two restarts");
    expect(restarts.metric).toMatchObject({ job: "starter-init", instance: `127.0.0.1:${port}`, server: "Fake/alpha" });
    // The rest follows from the same scrapes: the other server untouched, the last exit a SIGKILL, three
    // times to ready (the boot and two restarts), every server up.
    expect((await query(`starter_server_restarts_total{server="Fake/beta"}`))[0].value[1]).toBe("0");
    await waitForValue(`starter_server_last_exit_signal{server="Fake/alpha"}`, "9", "the last exit's signal");
    await waitForValue(`starter_server_last_exit_code{server="Fake/alpha"}`, "137", "the last exit's code");
    await waitForValue(`starter_server_time_to_ready_seconds_count{server="Fake/alpha"}`, "3", "three times to ready");
    await waitForValue(`sum(starter_server_up)`, "2", "both servers up again");
  });
});

describe("HTTP listener under load", () => {
  let init: Init;
  const sockets: net.Socket[] = [];
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await init?.stop();
  });

  it("200 simultaneous connections and slow clients do not disturb supervision; slow clients are dropped in bounded time", async () => {
    const port = await freePort();
    init = await startInit("http-load", [{ name: "Fake/alpha" }, { name: "Fake/beta" }], {
      settings: { http: { listen: port }, defaults: { log: { console: false }, restart: { initialDelay: "100ms" } } },
    });
    await waitForStatus(init, (s) => s.init.phase === "running", "the boot is complete");

    // 200 connections open at once, each then asking for /metrics on its own connection.
    const connect = () =>
      new Promise<net.Socket>((resolve, reject) => {
        const socket = net.connect(port, "127.0.0.1", () => resolve(socket));
        socket.once("error", reject);
        sockets.push(socket);
      });
    const crowd = await Promise.all(Array.from({ length: 200 }, connect));
    const answers = await Promise.all(
      crowd.map(
        (socket) =>
          new Promise<string>((resolve) => {
            let data = "";
            socket.on("data", (chunk) => {
              data += chunk;
              if (data.includes("starter_info")) resolve(data.split("\r\n")[0]);
            });
            socket.on("close", () => resolve(data.split("\r\n")[0] || "closed"));
            socket.write("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
          }),
      ),
    );
    expect(answers.filter((line) => line !== "HTTP/1.1 200 OK")).toEqual([]);

    // Slow clients: headers a byte at a time, and readers that never read a large answer.
    const slowWriters = await Promise.all(Array.from({ length: 20 }, connect));
    const dribble = setInterval(() => {
      for (const socket of slowWriters) if (!socket.destroyed) socket.write("X");
    }, 200);
    for (const socket of slowWriters) socket.write("GET /status HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    const slowWritersClosed = slowWriters.map((socket) => new Promise<number>((resolve) => socket.once("close", () => resolve(Date.now()))));
    const dribbleStarted = Date.now();
    const slowReaders = await Promise.all(Array.from({ length: 20 }, connect));
    for (const socket of slowReaders) {
      socket.pause();
      for (let i = 0; i < 50; i++) socket.write("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    }

    // Meanwhile: the control socket and the listener answer within 1 s, and a crash is handled.
    const controlMs: number[] = [];
    const httpMs: number[] = [];
    for (let i = 0; i < 5; i++) {
      controlMs.push(await controlStatusMs(init.socket));
      httpMs.push((await request(port, "/status")).ms);
      await sleep(200);
    }
    expect(Math.max(...controlMs), `control status: ${controlMs.join(", ")} ms`).toBeLessThan(1000);
    expect(Math.max(...httpMs), `HTTP status: ${httpMs.join(", ")} ms`).toBeLessThan(1000);
    const before = await init.server("Fake/alpha");
    const victim = hostPid(init, before.pid!);
    process.kill(victim!, "SIGKILL");
    const restarted = await waitForStatus(
      init,
      (s) => s.servers.some((x) => x.name === "Fake/alpha" && x.state === "ready" && x.restarts === 1),
      "the restart",
    );
    expect(restarted.servers.find((s) => s.name === "Fake/beta")?.restarts).toBe(0);

    // Headers that never end are cut at the headers timeout (10 s), not kept.
    const closedAt = await Promise.all(slowWritersClosed);
    clearInterval(dribble);
    for (const at of closedAt) {
      expect(at - dribbleStarted).toBeGreaterThan(5_000);
      expect(at - dribbleStarted).toBeLessThan(25_000);
    }
    expect((await request(port, "/healthz")).status).toBe(200);
  }, 90_000);
});
