// The init in a real Docker engine: images built FROM scratch by the top-level Dockerfile from roots
// assembled by rootfs/assemble.sh, started through testcontainers; `docker kill -s`, exit codes and
// health through the docker CLI. Every test asserts an outcome that a broken init would change.
//
//   npx vitest run --config test/vitest.config.ts test/e2e/docker.test.ts
//
// Needs a running engine and the Debian packages of test/prereqs.sh (busybox-static, tango-test,
// python3-tango), and dist/starter-init (npm run build). STARTER_KEEP_IMAGES=1 keeps the images.

import { IMAGE_TAG } from "./docker/env";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parse } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StartedTestContainer } from "testcontainers";
import {
  ROOT,
  StarterContainer,
  buildImage,
  deviceUrl,
  docker,
  dockerOk,
  eventually,
  imageSize,
  logRecords,
  logs,
  pidsOf,
  pingTango,
  pingUntilAll,
  type PingResult,
  processes,
  remove,
  removeAllStarted,
  runToExit,
  snapshotBinary,
  state,
  untilLog,
  waitForHealth,
} from "./docker/helpers";

const CMD_IMAGE = `starter-init-e2e/cmd:${IMAGE_TAG}`;
const DEMO_IMAGE = `starter-init-e2e/demo:${IMAGE_TAG}`;
const DEMO_CONFIG = path.join(ROOT, "test", "fixtures", "docker", "demo.yaml");
/** docker stop's default grace period. */
const DOCKER_GRACE_MS = 10_000;

interface DemoServer {
  name: string;
  level: number;
  port: number;
  url: string;
}

/** The servers of the demo config: names, levels, and the URL a client outside uses. */
function demoServers(): DemoServer[] {
  const config = parse(fs.readFileSync(DEMO_CONFIG, "utf8")) as { servers: { name: string; level: number; args: string }[] };
  return config.servers.map((server) => {
    const port = Number(/giop:tcp:0\.0\.0\.0:(\d+)/.exec(server.args)![1]);
    const device = Number(/-dlist sys\/tg_test\/(\d+)/.exec(server.args)![1]);
    return { name: server.name, level: server.level, port, url: deviceUrl(port, device) };
  });
}

const SERVERS = demoServers();
const PORTS = SERVERS.map((s) => s.port);
const URLS = SERVERS.map((s) => s.url);
const LEVELS = [...new Set(SERVERS.map((s) => s.level))].sort((a, b) => a - b);

const started = new Set<string>();
/** Starts a container and remembers it (no Ryuk here: afterAll removes what is left). */
async function start(container: StarterContainer): Promise<StartedTestContainer> {
  const running = await container.start();
  started.add(running.getId());
  return running;
}

function expectAllAnswered(answers: Record<string, PingResult>, urls = URLS): void {
  for (const url of urls) expect(answers[url]?.ok, `${url}: ${JSON.stringify(answers[url])}`).toBe(true);
}

/** Stops like `docker stop` (SIGTERM, SIGKILL after the grace); exit code and time taken. */
async function dockerStop(container: StartedTestContainer): Promise<{ code: number; ms: number; stdout: string; stderr: string }> {
  const begin = Date.now();
  await container.stop({ timeout: DOCKER_GRACE_MS, remove: false });
  const ms = Date.now() - begin;
  const { ExitCode } = await state(container.getId());
  const output = await logs(container.getId());
  await remove(container.getId());
  started.delete(container.getId());
  return { code: ExitCode, ms, ...output };
}

function demoContainer(): StarterContainer {
  return new StarterContainer(DEMO_IMAGE)
    .withLoopbackPorts(...PORTS)
    .withWaitStrategy(untilLog(/boot complete/))
    .withStartupTimeout(60_000) as StarterContainer;
}

type LogRecord = Record<string, unknown>;

/** Index (in log order) of the records of one kind for the servers of one level. */
function indexesOf(records: LogRecord[], kind: string, level: number): number[] {
  const names = new Set(SERVERS.filter((s) => s.level === level).map((s) => s.name));
  return records.flatMap((r, i) => (r.kind === kind && names.has(String(r.server)) ? [i] : []));
}

/** Level L+1 (shutdown: L-1) begins only after every server of the level before it is done. */
function expectLevelOrder(records: LogRecord[], order: number[], begin: string, done: string): void {
  for (let i = 1; i < order.length; i++) {
    const previousDone = indexesOf(records, done, order[i - 1]);
    const nextBegins = indexesOf(records, begin, order[i]);
    expect(previousDone.length, `"${done}" records of level ${order[i - 1]}`).toBe(SERVERS.filter((s) => s.level === order[i - 1]).length);
    expect(nextBegins.length, `"${begin}" records of level ${order[i]}`).toBe(SERVERS.filter((s) => s.level === order[i]).length);
    expect(Math.min(...nextBegins), `level ${order[i]} began before level ${order[i - 1]} was done`).toBeGreaterThan(Math.max(...previousDone));
  }
}

/** Boots the demo under extra options, checks every server answers, stops it: exit 0 in time. */
async function bootPingStop(container: StarterContainer, check?: (running: StartedTestContainer) => Promise<void>) {
  const running = await start(container);
  let failure: unknown = null;
  try {
    expectAllAnswered(await pingUntilAll(URLS, 10_000));
    await check?.(running);
  } catch (err) {
    failure = err;
  }
  const stopped = await dockerStop(running);
  if (failure) throw failure;
  expect(stopped.code, `exit code; log:\n${stopped.stderr.slice(-3000)}`).toBe(0);
  expect(stopped.ms).toBeLessThan(DOCKER_GRACE_MS - 1000);
  return stopped;
}

/** The shutdown part of the log: levels in reverse order, every server exited by itself. */
function expectOrderedShutdown(stderr: string): void {
  const records = logRecords(stderr);
  const shutdownAt = records.findIndex((r) => r.kind === "shutdown");
  expect(shutdownAt, "a shutdown record").toBeGreaterThan(-1);
  const shutdown = records.slice(shutdownAt);
  expectLevelOrder(shutdown, [...LEVELS].reverse(), "stopping", "stopped");
  const exits = shutdown.filter((r) => r.kind === "exited");
  expect(exits.map((r) => r.server).sort()).toEqual(SERVERS.map((s) => s.name).sort());
  for (const exit of exits) expect(exit, String(exit.server)).toMatchObject({ signal: null, code: 0 });
}

beforeAll(async () => {
  // Two images from the same Dockerfile: the init with busybox (for `-- cmd` and docker exec), and
  // the demo (busybox + TangoTest + the config).
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "starter-init-e2e-"));
  try {
    const binary = await snapshotBinary(scratch);
    await Promise.all([
      buildImage(CMD_IMAGE, { binary, with: ["busybox"] }),
      buildImage(DEMO_IMAGE, { binary, with: ["busybox", "tango"], config: DEMO_CONFIG }),
    ]);
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  const sizes = await Promise.all([imageSize(CMD_IMAGE), imageSize(DEMO_IMAGE)]);
  console.log(`image sizes: ${CMD_IMAGE} ${(sizes[0] / 1e6).toFixed(1)} MB, ${DEMO_IMAGE} ${(sizes[1] / 1e6).toFixed(1)} MB`);
}, 180_000);

afterAll(async () => {
  await removeAllStarted();
  if (!process.env.STARTER_KEEP_IMAGES) await docker(["rmi", "-f", CMD_IMAGE, DEMO_IMAGE]);
});

describe("the image", () => {
  it("has the init as ENTRYPOINT, STOPSIGNAL SIGTERM, a HEALTHCHECK running `starter-init ready`, nothing but the root", async () => {
    const config = JSON.parse(await dockerOk(["image", "inspect", "-f", "{{json .Config}}", DEMO_IMAGE])) as {
      Entrypoint: string[];
      StopSignal: string;
      Healthcheck: { Test: string[] };
    };
    expect(config.Entrypoint).toEqual(["/sbin/starter-init"]);
    expect(config.StopSignal).toBe("SIGTERM");
    expect(config.Healthcheck.Test).toEqual(["CMD", "/sbin/starter-init", "ready"]);
    // Nothing but the root: no Dockerfile, no build directory; modes kept (/tmp stays 1777).
    const listing = await runToExit(new StarterContainer(CMD_IMAGE).withCommand(["--", "sh", "-c", "ls -a /; stat -c 'tmp=%a' /tmp"]));
    expect(listing.code, listing.stderr).toBe(0);
    const entries = listing.stdout.split(/\s+/).filter(Boolean);
    expect(entries).toEqual(expect.arrayContaining(["sbin", "etc", "lib64", "tmp", "tmp=1777"]));
    expect(entries.filter((e) => /docker/i.test(e) && e !== ".dockerenv")).toEqual([]);
  });
});

describe("-- cmd mode (init + busybox)", () => {
  it("exits with the main program's code: n, 127 missing, 126 not executable, 128+n killed; numeric arguments pass", async () => {
    const cases: [string[], number][] = [
      [["sh", "-c", "exit 7"], 7],
      [["/nonexistent/program"], 127],
      [["/etc/passwd"], 126],
      [["sh", "-c", "kill -KILL $$"], 137],
      [["sh", "-c", "echo to-stdout; echo to-stderr >&2"], 0],
      // Numeric arguments must reach the program as they are (CMD ["sleep", "1000"]).
      [["sh", "-c", 'exit "$0"', "12"], 12],
    ];
    const results = await Promise.all(cases.map(([command]) => runToExit(new StarterContainer(CMD_IMAGE).withCommand(["--", ...command]))));
    expect(results.map((r) => r.code)).toEqual(cases.map(([, code]) => code));
    expect(results[4].stdout).toContain("to-stdout");
    expect(results[4].stderr).toContain("to-stderr");
  });

  it("docker stop: SIGTERM reaches the main program, whose exit code becomes the container's", async () => {
    const running = await start(
      new StarterContainer(CMD_IMAGE)
        .withCommand(["--", "sh", "-c", "trap 'echo got TERM; exit 42' TERM; echo armed; while :; do sleep 0.1; done"])
        .withWaitStrategy(untilLog("armed")),
    );
    const stopped = await dockerStop(running);
    expect(stopped.stdout).toContain("got TERM");
    expect(stopped.code).toBe(42);
    expect(stopped.ms).toBeLessThan(3000);
  });

  it("docker stop of a program without a handler: 143 at once, not SIGKILL after the grace", async () => {
    const running = await start(new StarterContainer(CMD_IMAGE).withCommand(["--", "sleep", "inf"]));
    // The program runs once the init catches signals (a SIGTERM during Node's own start-up would be lost).
    await eventually("sleep runs", async () => ((await processes(running)).some((p) => p.args.startsWith("sleep")) ? true : undefined), 10_000);
    const stopped = await dockerStop(running);
    expect(stopped.code).toBe(143);
    expect(stopped.ms).toBeLessThan(3000);
    console.log(`docker stop, -- sleep: ${stopped.ms} ms`);
  });

  it("prints nothing of its own for `-- true` without CAP_SYS_ADMIN / CAP_SYS_RESOURCE (as tini)", async () => {
    const result = await runToExit(new StarterContainer(CMD_IMAGE).withCommand(["--", "true"]));
    expect({ code: result.code, stdout: result.stdout, stderr: result.stderr }).toEqual({ code: 0, stdout: "", stderr: "" });
  });

  it("docker kill -s forwards USR1, HUP, WINCH, ALRM, URG, a real-time signal to the main program and keeps running; INT ends it", async () => {
    const script = [
      'for s in USR1 USR2 HUP WINCH ALRM URG 37; do trap "echo got $s" $s; done',
      "trap 'echo got INT; exit 3' INT",
      "echo armed",
      "while :; do sleep 0.1; done",
    ].join("; ");
    const running = await start(new StarterContainer(CMD_IMAGE).withCommand(["--", "sh", "-c", script]).withWaitStrategy(untilLog("armed")));
    const id = running.getId();
    for (const signal of ["USR1", "HUP", "WINCH", "USR2", "ALRM", "URG", "37"]) {
      await dockerOk(["kill", "-s", signal, id]);
      await eventually(`"got ${signal}"`, async () => ((await logs(id)).stdout.includes(`got ${signal}`) ? true : undefined), 5000);
    }
    expect((await state(id)).Running).toBe(true);
    await dockerOk(["kill", "-s", "INT", id]);
    await eventually("exit", async () => ((await state(id)).Running ? undefined : true), 5000);
    expect((await state(id)).ExitCode).toBe(3);
    expect((await logs(id)).stdout).toContain("got INT");
    await remove(id);
    started.delete(id);
  });

  it("--read-only with no tmpfs at all: the addon is extracted to /dev (a tmpfs that allows exec)", async () => {
    const result = await runToExit(
      new StarterContainer(CMD_IMAGE).withReadOnlyRoot().withCommand(["--", "sh", "-c", "touch /probe 2>/dev/null && echo writable || echo read-only"]),
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("read-only");
  });

  it("as a non-root user (--user 1000:1000)", async () => {
    const result = await runToExit(
      new StarterContainer(CMD_IMAGE)
        .withUser("1000:1000")
        .withCommand(["--", "sh", "-c", "echo uid=$(id -u) init=$(grep ^Uid: /proc/1/status | tr -s '\\t ' ' ' | cut -d' ' -f2); exit 9"]),
    );
    expect(result.code, result.stderr).toBe(9);
    expect(result.stdout).toContain("uid=1000 init=1000");
  });

  it("docker run --init: under docker-init (tini) it is not PID 1 but still adopts orphans (subreaper)", async () => {
    // The main program leaves an orphan (a grandchild whose parent exited) and reports who adopted it.
    const script = [
      'o=$(sh -c "sleep 5 >/dev/null 2>&1 & echo \\$!")',
      "sleep 0.3",
      'echo "pid1=$(cat /proc/1/comm) parent=$PPID orphan-ppid=$(grep ^PPid: /proc/$o/status | tr -dc 0-9)"',
      "exit 5",
    ].join("; ");
    const result = await runToExit(new StarterContainer(CMD_IMAGE).withDockerInit().withCommand(["--", "sh", "-c", script]));
    expect(result.code, result.stderr).toBe(5);
    const match = /pid1=(\S+) parent=(\d+) orphan-ppid=(\d+)/.exec(result.stdout);
    expect(match, result.stdout).not.toBeNull();
    expect(match![1]).toMatch(/init/); // docker-init (tini)
    expect(match![2]).not.toBe("1"); // starter-init runs under it
    expect(match![3]).toBe(match![2]); // the orphan went to starter-init, not to PID 1
  });
});

describe(`the demo image: ${SERVERS.length} TangoTest servers over levels ${LEVELS.join(", ")}`, () => {
  let demo: StartedTestContainer;
  let startedAt = 0;

  beforeAll(async () => {
    startedAt = Date.now();
    demo = await start(demoContainer());
    console.log(`docker run → boot complete (as seen by the test): ${Date.now() - startedAt} ms`);
  }, 90_000);

  afterAll(async () => {
    if (demo && started.has(demo.getId())) await remove(demo.getId());
  });

  it("boots level by level without CAP_SYS_ADMIN: one info line says what was refused, every server ready", async () => {
    const { stderr } = await logs(demo.getId());
    const records = logRecords(stderr);
    expect(
      records
        .filter((r) => r.kind === "ready")
        .map((r) => r.server)
        .sort(),
    ).toEqual(SERVERS.map((s) => s.name).sort());
    expectLevelOrder(records, LEVELS, "starting", "ready");
    expect(records.some((r) => r.pid === 1)).toBe(true);
    // An unprivileged container refuses mounts and oom_score_adj as a matter of course: one info line, no warning.
    const refusals = records.filter((r) => Array.isArray(r.refused));
    expect(refusals, "one line for what was refused").toHaveLength(1);
    expect(refusals[0]).toMatchObject({ level: 30, refused: ["mounting /run /tmp (EPERM)", "setting oom_score_adj (EACCES)"] });
    expect(records.filter((r) => (r.level as number) >= 40)).toEqual([]);
  });

  it("every server answers a PyTango ping from outside the container", async () => {
    expectAllAnswered(await pingUntilAll(URLS, 10_000));
  });

  it("a zombie storm inside the container leaves no zombie", async () => {
    const count = 1000;
    const zombies = async () => (await processes(demo)).filter((p) => p.state === "Z");
    // Each `&` leaves a zombie under sh, and `exec sleep` never reaps them. Once they are all there,
    // the sleep is killed: the zombies go to PID 1, which must reap them all.
    const storm = demo.exec(["sh", "-c", `for i in $(seq ${count}); do /bin/true & done; exec sleep 60`]);
    const during = await eventually(
      `${count} zombies under the storm`,
      async () => {
        const found = await zombies();
        return found.length >= count ? found : undefined;
      },
      20_000,
      250,
    );
    const parents = [...new Set(during.map((p) => p.ppid))];
    expect(parents.length, "one parent: the storm's sleep").toBe(1);
    expect(parents[0]).not.toBe(1);
    expect((await demo.exec(["kill", String(parents[0])])).exitCode).toBe(0);
    await storm;
    const left = await eventually(
      "no zombie",
      async () => {
        const found = await zombies();
        return found.length === 0 ? found : undefined;
      },
      5000,
    );
    expect(left).toEqual([]);
  });

  it("a server killed with SIGKILL is restarted: a new pid that answers ping", async () => {
    const victim = SERVERS.find((s) => s.level === LEVELS[LEVELS.length > 1 ? 1 : 0])!;
    const needle = `TangoTest ${victim.name.split("/")[1]} `;
    const [before] = await pidsOf(demo, needle);
    expect(before, `a pid for ${victim.name}`).toBeGreaterThan(1);
    const killed = await demo.exec(["kill", "-9", String(before)]);
    expect(killed.exitCode).toBe(0);
    const after = await eventually(
      "a new pid",
      async () => {
        const [pid] = await pidsOf(demo, needle);
        return pid !== undefined && pid !== before ? pid : undefined;
      },
      15_000,
    );
    expect(after).not.toBe(before);
    expectAllAnswered(await pingUntilAll([victim.url], 10_000), [victim.url]);
    const records = logRecords((await logs(demo.getId())).stderr);
    expect(records.some((r) => r.server === victim.name && r.kind === "exited" && r.signal === "SIGKILL")).toBe(true);
  });

  it("becomes healthy: the HEALTHCHECK's `starter-init ready` passes", async () => {
    const healthy = await waitForHealth(demo.getId(), "healthy", 30_000);
    const firstPass = healthy.Health!.Log.find((entry) => entry.ExitCode === 0)!;
    console.log(`container start → first passing health check: ${Date.parse(firstPass.End) - Date.parse(healthy.StartedAt)} ms`);
  });

  it("docker stop: ordered shutdown (levels in reverse order), exit code 0, well within the grace", async () => {
    const stopped = await dockerStop(demo);
    console.log(`docker stop, demo: ${stopped.ms} ms`);
    expect(stopped.code, stopped.stderr.slice(-3000)).toBe(0);
    expect(stopped.ms).toBeLessThan(DOCKER_GRACE_MS - 1000);
    expectOrderedShutdown(stopped.stderr);
  });
});

describe("the demo image under other docker run options", () => {
  // What --read-only needs: /run writable for the control socket (exec: a non-root init extracts its
  // addon there, /dev being root's), /tmp writable for omniORB and Tango (/tmp/omni-<user>).
  const readOnlyTmpfs = { "/run": "rw,exec", "/tmp": "rw" };

  it("--read-only with --tmpfs /run:exec --tmpfs /tmp: boots, healthy, clean stop", async () => {
    await bootPingStop(demoContainer().withReadOnlyRoot().withTmpFs(readOnlyTmpfs), async (running) => {
      const probe = await running.exec(["sh", "-c", "touch /probe 2>/dev/null && echo writable || echo read-only"]);
      expect(probe.stdout).toContain("read-only");
      await waitForHealth(running.getId(), "healthy", 30_000);
    });
  });

  it("as a non-root user (--user 1000:1000): init and servers run as that user; healthy", async () => {
    await bootPingStop(demoContainer().withUser("1000:1000"), async (running) => {
      const all = await processes(running);
      const servers = all.filter((p) => p.args.startsWith("/usr/lib/tango/TangoTest"));
      expect(servers.length).toBe(SERVERS.length);
      expect(new Set([...servers, all.find((p) => p.pid === 1)!].map((p) => p.uid))).toEqual(new Set([1000]));
      const records = logRecords((await logs(running.getId())).stderr);
      // Not root: the mounts are refused, and said so in one info line.
      expect(
        records.some((r) => r.level === 30 && Array.isArray(r.refused) && (r.refused as string[]).some((what) => what.startsWith("mounting "))),
        "mounts skipped, said in one info line",
      ).toBe(true);
      await waitForHealth(running.getId(), "healthy", 30_000);
    });
  });

  it("--read-only as a non-root user, with the same two tmpfs: boots, healthy, clean stop", async () => {
    await bootPingStop(demoContainer().withReadOnlyRoot().withUser("1000:1000").withTmpFs(readOnlyTmpfs), async (running) => {
      await waitForHealth(running.getId(), "healthy", 30_000);
    });
  });

  it("docker run --init: docker-init is PID 1; docker stop still shuts down in order, exit 0", async () => {
    const stopped = await bootPingStop(demoContainer().withDockerInit(), async (running) => {
      const all = await processes(running);
      expect(all.find((p) => p.pid === 1)?.comm).toMatch(/init/);
      const init = all.find((p) => p.args.startsWith("/sbin/starter-init"));
      expect(init?.pid).not.toBe(1);
      expect(init?.ppid).toBe(1);
    });
    expectOrderedShutdown(stopped.stderr);
  });
});

describe("the engine's view", () => {
  it("pings fail once the demo is gone (the ping can fail)", async () => {
    const answers = await pingTango([URLS[0]]);
    expect(answers[URLS[0]].ok).toBe(false);
  });
});
