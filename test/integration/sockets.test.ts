// Socket activation with the built binary as PID 1 and real Debian programs: gunicorn (a tiny WSGI
// app) and dbus-daemon (--address=systemd:) get their sockets through LISTEN_FDS and answer clients;
// 200 requests while gunicorn is killed -9 five times are all answered; a lazy server has no process
// until its first connection; a server that requires a socket-activated one starts with it; accept
// mode serves 50 simultaneous connections with never more than maxInstances instances; and bad
// sockets are config errors at their file:line, at boot and at reload, changing nothing.
//
// Ports: 27000 + STARTER_TEST_PORT_OFFSET and up (20 of them), so that checkouts testing at once do
// not collide.

import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { BINARY, cleanEnv, killStartedInits, logRecords, readChildren, run, sleep, startAsPid1, tempDir, waitUntil, type Pid1Process } from "./helpers";

const BASE_PORT = 27000 + Number(process.env.STARTER_TEST_PORT_OFFSET ?? 0);
const GUNICORN = "/usr/bin/gunicorn";

afterEach(() => killStartedInits());

const APP = `import os
def app(environ, start_response):
    body = ("hello from %d\\n" % os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
`;

interface Setup {
  dir: string;
  config: string;
  control: string;
}

function setup(name: string, servers: string): Setup {
  const dir = tempDir(`sockets-${name}`);
  fs.writeFileSync(path.join(dir, "app.py"), APP);
  const control = path.join(dir, "control.sock");
  const config = path.join(dir, "config.yaml");
  fs.writeFileSync(config, `settings:\n  controlSocket: ${control}\nservers:\n${servers.replaceAll("$DIR", dir)}`);
  return { dir, config, control };
}

/** gunicorn serving app.py of $DIR with one worker, on the sockets the init gives it (no --bind). */
function gunicornArgs(extra = ""): string {
  return `    binary: ${GUNICORN}\n    args: [--chdir, $DIR, --workers, "1", "app:app"]\n${extra}`;
}

function cli(s: Setup, args: string[]) {
  return run(BINARY, [...args, "--socket", s.control], { env: cleanEnv() });
}

async function statusOf(s: Setup): Promise<{ servers: Record<string, any>[] }> {
  const result = await cli(s, ["status", "--json"]);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout);
}

type Outcome = "answered" | "refused" | "reset" | "other";

/** One HTTP request on a new connection: how it ended. */
function request(port: number, timeoutMs = 30_000): Promise<{ outcome: Outcome; body: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = http.get({ host: "127.0.0.1", port, path: "/", agent: false, timeout: timeoutMs }, (res) => {
      let body = "";
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () =>
        resolve({ outcome: res.statusCode === 200 && body.startsWith("hello") ? "answered" : "other", body, ms: performance.now() - started }),
      );
      res.on("error", () => resolve({ outcome: "reset", body, ms: performance.now() - started }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (err: NodeJS.ErrnoException) => {
      const outcome: Outcome = err.code === "ECONNREFUSED" ? "refused" : err.code === "ECONNRESET" || err.message === "socket hang up" ? "reset" : "other";
      resolve({ outcome, body: err.message, ms: performance.now() - started });
    });
  });
}

function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
  } catch {
    return "";
  }
}

function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Host pids of the init's children whose command line contains `needle`. */
async function childrenMatching(init: Pid1Process, needle: string): Promise<number[]> {
  return readChildren(await init.initPid()).filter((pid) => cmdline(pid).includes(needle));
}

/** "file:line:column" of the first line of the config that contains `text`, at the column where `text` starts. */
function placeOf(config: string, text: string): string {
  const lines = fs.readFileSync(config, "utf8").split("\n");
  const line = lines.findIndex((candidate) => candidate.includes(text));
  return `${config}:${line + 1}:${lines[line].indexOf(text) + 1}`;
}

function records(init: Pid1Process, server?: string, kind?: string) {
  return logRecords(init.stderr()).filter((r) => (server === undefined || r.server === server) && (kind === undefined || r.kind === kind));
}

async function stop(init: Pid1Process): Promise<number | null> {
  await init.signal("SIGTERM");
  return (await init.result).code;
}

describe("real programs get their sockets through LISTEN_FDS", () => {
  it("gunicorn serves a WSGI app on the socket the init made (it binds nothing itself)", async () => {
    const port = BASE_PORT;
    const s = setup("gunicorn", `  - name: web\n${gunicornArgs(`    sockets: [tcp:127.0.0.1:${port}]\n`)}`);
    const init = startAsPid1(["--log-format", "json", "-c", s.config]);
    await init.waitFor('"kind":"boot-complete"');
    const answer = await request(port);
    expect(answer.outcome, answer.body).toBe("answered");
    // gunicorn says where it listens: the init's socket (fd 3), not its own default 127.0.0.1:8000.
    // gunicorn says where it listens: on the init's socket; without LISTEN_FDS (or with a LISTEN_PID
    // that is not its own) it would have bound its default, 127.0.0.1:8000.
    const [master] = await childrenMatching(init, "gunicorn");
    await init.waitFor(`Listening at: http://127.0.0.1:${port} (`);
    expect(init.stdout() + init.stderr()).not.toContain("127.0.0.1:8000");
    expect(fs.readFileSync(`/proc/${master}/net/tcp`, "utf8")).not.toMatch(/:1F40 00000000:0000 0A/);
    const status = await statusOf(s);
    expect(status.servers[0].sockets).toEqual([
      { listen: `tcp:127.0.0.1:${port}`, name: "web", fd: 3, queued: 0, backlog: expect.any(Number), activations: 0, watched: false },
    ]);
    expect(await stop(init)).toBe(0);
  });

  it("dbus-daemon --address=systemd: takes a unix socket from the init and answers dbus-send", async () => {
    const s = setup(
      "dbus",
      `  - name: bus\n    binary: /usr/bin/dbus-daemon\n    args: [--nofork, --nopidfile, --config-file=$DIR/bus.conf, "--address=systemd:"]\n    sockets: [unix:$DIR/bus.sock]\n`,
    );
    fs.writeFileSync(
      path.join(s.dir, "bus.conf"),
      `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <!-- Never used: the address given on the command line (systemd:) replaces it. -->
  <listen>unix:path=${s.dir}/never-used.sock</listen>
  <auth>EXTERNAL</auth>
  <policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy>
</busconfig>
`,
    );
    const init = startAsPid1(["--log-format", "json", "-c", s.config]);
    await init.waitFor('"kind":"boot-complete"');
    const address = `unix:path=${s.dir}/bus.sock`;
    // The socket exists before dbus-daemon runs: a client that comes early waits in its backlog.
    const reply = await run(
      "dbus-send",
      [`--bus=${address}`, "--print-reply", "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus.GetId"],
      { timeoutMs: 20_000 },
    );
    expect(reply.code, reply.stderr).toBe(0);
    expect(reply.stdout).toMatch(/string "[0-9a-f]{32}"/);
    expect(fs.existsSync(path.join(s.dir, "never-used.sock"))).toBe(false);
    expect(fs.statSync(path.join(s.dir, "bus.sock")).mode & 0o777).toBe(0o666);
    expect(await stop(init)).toBe(0);
    // The init removes its socket file when it is done.
    expect(fs.existsSync(path.join(s.dir, "bus.sock"))).toBe(false);
  });
});

describe("no connection lost across restarts", () => {
  it("200 requests in a loop while gunicorn is killed -9 five times: 200 answered, 0 refused or reset", async () => {
    const port = BASE_PORT + 1;
    const s = setup(
      "kill-loop",
      `  - name: web\n${gunicornArgs(`    sockets: [tcp:127.0.0.1:${port}]\n    restart: {initialDelay: 100ms, factor: 1, burst: {count: 50, window: 1m}}\n`)}`,
    );
    const init = startAsPid1(["--log-format", "json", "-c", s.config]);
    await init.waitFor("Booting worker");
    const counts: Record<Outcome, number> = { answered: 0, refused: 0, reset: 0, other: 0 };
    const killAt = new Set([20, 60, 100, 140, 180]);
    const killed: number[] = [];
    const masters = new Set<number>();
    for (let i = 0; i < 200; i++) {
      if (killAt.has(i)) {
        const [master] = await childrenMatching(init, "gunicorn");
        const group = [master, ...readChildren(master)];
        // The whole process group: the master and its worker, everything that held the socket but the init.
        process.kill(-master, "SIGKILL");
        killed.push(master);
        // The next request goes out once they are dead: it arrives while nothing serves the port.
        await waitUntil(() => group.every((pid) => !alive(pid)), `gunicorn ${master} dead`, 10_000);
      }
      const { outcome, body } = await request(port);
      counts[outcome] += 1;
      if (outcome === "answered") masters.add(Number(/hello from (\d+)/.exec(body)?.[1]));
    }
    expect(counts).toEqual({ answered: 200, refused: 0, reset: 0, other: 0 });
    expect(killed).toHaveLength(5);
    // Six gunicorns (workers) answered: the first and one after each kill.
    expect(masters.size).toBe(6);
    expect(records(init, "web", "exited").filter((r) => r.signal === "SIGKILL")).toHaveLength(5);
    expect(await stop(init)).toBe(0);
  }, 180_000);
});

describe("lazy activation", () => {
  it("no process before the first connection; the first connection is answered; idleStop stops it and it listens again", async () => {
    const port = BASE_PORT + 2;
    const s = setup("lazy", `  - name: web\n${gunicornArgs(`    sockets: [tcp:127.0.0.1:${port}]\n    activation: lazy\n    idleStop: 2s\n`)}`);
    const init = startAsPid1(["--log-format", "json", "-c", s.config]);
    await init.waitFor('"kind":"boot-complete"');
    await sleep(500);
    expect(await childrenMatching(init, "gunicorn")).toEqual([]);
    let status = await statusOf(s);
    expect(status.servers[0]).toMatchObject({ state: "listening", pid: null, activations: 0, sockets: [{ watched: true, queued: 0 }] });
    const first = await request(port);
    expect(first.outcome, first.body).toBe("answered");
    expect((await childrenMatching(init, "gunicorn")).length).toBe(1);
    status = await statusOf(s);
    expect(status.servers[0]).toMatchObject({ state: "ready", activations: 1, sockets: [{ activations: 1, watched: false }] });
    // Quiet for 2 s: stopped, listening again; the next connection starts it again.
    await init.waitFor('"kind":"idle-stop"', 15_000);
    await waitUntil(() => records(init, "web", "listening").length === 2, "listening again");
    expect((await request(port)).outcome).toBe("answered");
    expect(records(init, "web", "activated")).toHaveLength(2);
    expect(await stop(init)).toBe(0);
  }, 60_000);
});

describe("ordering", () => {
  it("a server that requires a socket-activated one starts in the same stage, before it is ready, and is answered through the backlog", async () => {
    const port = BASE_PORT + 3;
    const s = setup(
      "requires",
      `  - name: web\n${gunicornArgs(`    sockets: [tcp:127.0.0.1:${port}]\n    readiness: "log:Booting worker"\n`)}` +
        `  - name: client\n    binary: /usr/bin/python3\n    args: [-c, "import urllib.request as u; print('got', u.urlopen('http://127.0.0.1:${port}/', timeout=30).read().decode().strip(), flush=True); import time; time.sleep(1000)"]\n    requires: web\n    readiness: "log:got hello"\n`,
    );
    const init = startAsPid1(["--log-format", "json", "-c", s.config]);
    await init.waitFor('"kind":"boot-complete"', 30_000);
    const at = (server: string, kind: string) => records(init, server, kind)[0]?.time as number;
    // Forked together (the same step), the client before gunicorn printed its ready line.
    expect(at("client", "starting")).toBeLessThanOrEqual(at("web", "started"));
    expect(at("client", "started")).toBeLessThan(at("web", "ready"));
    expect(at("client", "ready")).toBeGreaterThanOrEqual(at("web", "ready"));
    const plan = await run(BINARY, ["plan", "-c", s.config], { env: cleanEnv() });
    expect(plan.stdout).toContain("stage 1: forked together");
    expect(plan.stdout).not.toContain("stage 2");
    expect(plan.stdout).toContain(`fd 3 tcp:127.0.0.1:${port}  (name web, backlog 4096)`);
    expect(await stop(init)).toBe(0);
  }, 60_000);
});

describe("accept mode", () => {
  it("50 simultaneous connections: every one answered, never more than maxInstances instances at once", async () => {
    const port = BASE_PORT + 4;
    const s = setup("accept", `  - name: echo\n    binary: $DIR/echo.sh\n    sockets: [tcp:127.0.0.1:${port}]\n    activation: accept\n    maxInstances: 5\n`);
    // Each instance: its connection on stdin and stdout; start and end marks appended to a shared file.
    fs.writeFileSync(
      path.join(s.dir, "echo.sh"),
      `#!/bin/sh\necho "start $$" >> ${s.dir}/instances.log\nread line\nsleep 0.1\necho "hello $line from $$ fds=$LISTEN_FDS"\necho "end $$" >> ${s.dir}/instances.log\n`,
      { mode: 0o755 },
    );
    const init = startAsPid1(["--log-format", "json", "-c", s.config]);
    await init.waitFor('"kind":"boot-complete"');
    const most = { instances: 0 };
    const sampler = setInterval(() => {
      void childrenMatching(init, "echo.sh").then((pids) => (most.instances = Math.max(most.instances, pids.filter(alive).length)));
    }, 10);
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) => {
        return new Promise<string>((resolve) => {
          const socket = net.connect(port, "127.0.0.1", () => socket.write(`c${i}\n`));
          let data = "";
          socket.setTimeout(60_000, () => socket.destroy());
          socket.on("data", (chunk) => (data += chunk));
          socket.on("close", () => resolve(data.trim()));
          socket.on("error", () => resolve(`error ${data}`));
        });
      }),
    );
    clearInterval(sampler);
    expect(answers.filter((a, i) => new RegExp(`^hello c${i} from \\d+ fds=1$`).test(a))).toHaveLength(50);
    // The marks' order: never more than 5 between a start and its end.
    let running = 0;
    let most5 = 0;
    const marks = fs.readFileSync(path.join(s.dir, "instances.log"), "utf8").trim().split("\n");
    for (const mark of marks) {
      running += mark.startsWith("start") ? 1 : -1;
      most5 = Math.max(most5, running);
    }
    expect(marks).toHaveLength(100);
    expect(most5).toBeLessThanOrEqual(5);
    expect(most5).toBeGreaterThan(1);
    expect(most.instances).toBeLessThanOrEqual(5);
    const status = await statusOf(s);
    expect(status.servers[0]).toMatchObject({ state: "listening", activation: "accept", activations: 50, sockets: [{ activations: 50, watched: true }] });
    expect(await stop(init)).toBe(0);
  }, 90_000);
});

describe("bad sockets are config errors", () => {
  it("a port in use or a missing directory at boot: file:line, exit 78 (EX_CONFIG), no server started", async () => {
    const port = BASE_PORT + 5;
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(port, "127.0.0.1", resolve));
    try {
      const s = setup(
        "in-use",
        `  - name: sleeper\n    binary: /bin/sleep\n    args: ["1000"]\n  - name: web\n${gunicornArgs(`    sockets:\n      - tcp:127.0.0.1:${port}\n      - unix:$DIR/missing/web.sock\n`)}`,
      );
      const result = await startAsPid1(["--log-format", "json", "-c", s.config]).result;
      expect(result.code).toBe(78);
      expect(result.stderr).toContain(
        `${placeOf(s.config, `tcp:127.0.0.1:${port}`)}: servers[1].sockets[0]: tcp:127.0.0.1:${port}: cannot bind: the address is in use (another program listens there)`,
      );
      expect(result.stderr).toContain(
        `${placeOf(s.config, "unix:")}: servers[1].sockets[1]: unix:${s.dir}/missing/web.sock: cannot bind: directory ${s.dir}/missing does not exist`,
      );
      expect(logRecords(result.stderr).filter((r) => r.kind === "started")).toEqual([]);
    } finally {
      squatter.close();
    }
  });

  it("at reload: refused with file:line, and nothing changes (the same process, the same socket)", async () => {
    const port = BASE_PORT + 6;
    const taken = BASE_PORT + 7;
    const s = setup("reload", `  - name: web\n${gunicornArgs(`    sockets: [tcp:127.0.0.1:${port}]\n`)}`);
    const init = startAsPid1(["--log-format", "json", "-c", s.config]);
    await init.waitFor("Booting worker");
    const before = await statusOf(s);
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(taken, "127.0.0.1", resolve));
    try {
      fs.appendFileSync(s.config, `  - name: other\n${gunicornArgs(`    sockets: [tcp:127.0.0.1:${taken}]\n`)}`.replaceAll("$DIR", s.dir));
      const reload = await cli(s, ["reload"]);
      expect(reload.code).not.toBe(0);
      expect(reload.stdout + reload.stderr).toContain(
        `${placeOf(s.config, `tcp:127.0.0.1:${taken}`)}: servers[1].sockets[0]: tcp:127.0.0.1:${taken}: cannot bind: the address is in use`,
      );
      const after = await statusOf(s);
      expect(after.servers.map((server) => server.name)).toEqual(["web"]);
      expect(after.servers[0].pid).toBe(before.servers[0].pid);
      expect((await request(port)).outcome).toBe("answered");
    } finally {
      squatter.close();
    }
    // Once the port is free, the same reload goes through.
    const reload = await cli(s, ["reload"]);
    expect(reload.code, reload.stdout + reload.stderr).toBe(0);
    await waitUntil(() => records(init, "other", "started").length === 1, "other started");
    expect((await request(taken)).outcome).toBe("answered");
    expect(await stop(init)).toBe(0);
  }, 60_000);

  it("status shows connections waiting in a stopped server's socket", async () => {
    const port = BASE_PORT + 8;
    const s = setup("queue", `  - name: web\n${gunicornArgs(`    sockets: [tcp:127.0.0.1:${port}]\n`)}`);
    const init = startAsPid1(["--log-format", "json", "-c", s.config]);
    await init.waitFor("Booting worker");
    expect((await cli(s, ["stop", "web"])).code).toBe(0);
    const clients = [0, 1, 2].map(() => net.connect(port, "127.0.0.1").on("error", () => {}));
    await Promise.all(clients.map((c) => new Promise((resolve) => c.on("connect", resolve))));
    await sleep(100);
    const status = await statusOf(s);
    // gunicorn called listen(2) again on it with its own backlog, 2048: the queue is the kernel's word.
    expect(status.servers[0].sockets[0]).toMatchObject({ queued: 3, backlog: 2048 });
    const text = await cli(s, ["status"]);
    expect(text.stdout).toMatch(new RegExp(`web\\s+3\\s+tcp:127.0.0.1:${port}\\s+web\\s+3/2048\\s+0\\s+-`));
    // They are served once it starts again.
    const served = clients.map(
      (c) =>
        new Promise<string>((resolve) => {
          let data = "";
          c.on("data", (chunk) => (data += chunk));
          c.on("close", () => resolve(data));
          c.write("GET / HTTP/1.0\r\n\r\n");
        }),
    );
    expect((await cli(s, ["start", "web"])).code).toBe(0);
    expect((await Promise.all(served)).every((reply) => reply.includes("hello from"))).toBe(true);
    for (const c of clients) c.destroy();
    expect(await stop(init)).toBe(0);
  }, 60_000);
});
