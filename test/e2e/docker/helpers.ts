// Images built from the assembled root with the top-level Dockerfile, containers started through
// testcontainers, and what testcontainers lacks (exit codes, `docker kill -s`, health, split logs)
// through the docker CLI of Debian's docker.io.

import "./env";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { GenericContainer, Wait, type StartedTestContainer, type WaitStrategy } from "testcontainers";
import { BINARY, logRecords, ROOT, run, sleep, type CommandResult } from "../../integration/helpers";
import { deviceUrl, ping as pingTango, PYTHON, type PingResult } from "../../integration/tango";

export { BINARY, deviceUrl, logRecords, pingTango, PYTHON, ROOT, run, sleep, type CommandResult, type PingResult };

export const ASSEMBLE = path.join(ROOT, "rootfs", "assemble.sh");
export const DOCKERFILE = path.join(ROOT, "Dockerfile");

export function docker(args: string[], timeoutMs = 120_000): Promise<CommandResult> {
  return run("docker", args, { timeoutMs });
}

export async function dockerOk(args: string[], timeoutMs?: number): Promise<string> {
  const result = await docker(args, timeoutMs);
  if (result.code !== 0) throw new Error(`docker ${args.join(" ")} exited ${result.code}:\n${result.stderr}`);
  return result.stdout;
}

/**
 * A private copy of dist/starter-init that runs (its --help names it: a bare node binary caught
 * half-way through a rebuild does not), so every image of a test run holds the same binary even
 * when a rebuild replaces dist/ meanwhile.
 */
export async function snapshotBinary(dir: string): Promise<string> {
  const copy = path.join(dir, "starter-init");
  let last = "";
  for (let attempt = 0; attempt < 10; attempt++) {
    fs.copyFileSync(BINARY, copy);
    fs.chmodSync(copy, 0o755);
    const probe = await run(copy, ["--help"], { timeoutMs: 30_000 }).catch((err: Error) => ({ code: -1, stdout: "", stderr: err.message, ms: 0 }));
    if (probe.code === 0 && probe.stdout.includes("starter-init")) return copy;
    last = `exit ${probe.code}: ${probe.stdout.slice(0, 200)}${probe.stderr.slice(0, 500)}`;
    await sleep(3000);
  }
  throw new Error(`${BINARY} does not run as starter-init (--help): ${last}`);
}

export interface ImageOptions {
  /** The init binary (default dist/starter-init). */
  binary?: string;
  /** assemble.sh payloads: busybox, tango. */
  with?: string[];
  /** Baked at /etc/starter-init/config.yaml. */
  config?: string;
}

/**
 * Assembles a root with rootfs/assemble.sh and builds it with the top-level Dockerfile. The context
 * is a directory holding the Dockerfile and the root in `root/` (build arg ROOTFS=root), so the image
 * holds the root and nothing else.
 */
export async function buildImage(tag: string, options: ImageOptions = {}): Promise<string> {
  const context = fs.mkdtempSync(path.join(os.tmpdir(), "starter-init-docker-"));
  try {
    const args = ["--out", path.join(context, "root"), "--binary", options.binary ?? BINARY];
    for (const payload of options.with ?? []) args.push("--with", payload);
    if (options.config) args.push("--config", options.config);
    const assembled = await run("bash", [ASSEMBLE, ...args], { timeoutMs: 120_000 });
    if (assembled.code !== 0) throw new Error(`assemble.sh failed (${assembled.code}):\n${assembled.stdout}${assembled.stderr}`);
    fs.copyFileSync(DOCKERFILE, path.join(context, "Dockerfile"));
    await withoutUmask(() => GenericContainer.fromDockerfile(context, "Dockerfile").withBuildArgs({ ROOTFS: "root" }).build(tag, { deleteOnExit: false }));
    return tag;
  } finally {
    fs.rmSync(context, { recursive: true, force: true });
  }
}

let umaskHolders = 0;
let savedUmask = 0;
/**
 * testcontainers packs the build context with tar-fs, which applies the process umask to every mode
 * it archives: /tmp's 1777 would reach the image as 1755 (measured), and a non-root user could not
 * write there. The umask is 0 while a build is under way (counted: builds may overlap).
 */
async function withoutUmask<T>(job: () => Promise<T>): Promise<T> {
  if (umaskHolders++ === 0) savedUmask = process.umask(0);
  try {
    return await job();
  } finally {
    if (--umaskHolders === 0) process.umask(savedUmask);
  }
}

/** Size in bytes the engine reports for an image (what `docker image ls` shows, rounded there). */
export async function imageSize(tag: string): Promise<number> {
  return Number((await dockerOk(["image", "inspect", "-f", "{{.Size}}", tag])).trim());
}

/** A wait strategy that does not wait: for containers that exit by themselves, or are watched by hand. */
class NoWait implements WaitStrategy {
  private timeout = 60_000;
  private set = false;
  async waitUntilReady(): Promise<void> {}
  withStartupTimeout(ms: number): this {
    this.timeout = ms;
    this.set = true;
    return this;
  }
  isStartupTimeoutSet(): boolean {
    return this.set;
  }
  getStartupTimeout(): number {
    return this.timeout;
  }
}

export const noWait = (): WaitStrategy => new NoWait();
export const untilLog = (text: string | RegExp): WaitStrategy => Wait.forLogMessage(text);

/** Label of every container the tests start: what removeAllStarted() removes. */
export const TEST_LABEL = "starter-init-e2e";

/** GenericContainer plus the `docker run` options testcontainers has no method for. */
export class StarterContainer extends GenericContainer {
  constructor(image: string) {
    super(image);
    this.withWaitStrategy(noWait()).withLabels({ [TEST_LABEL]: String(process.pid) });
  }

  /** `-p 127.0.0.1:P:P` for each port: the same number inside and outside, on the loopback only. */
  withLoopbackPorts(...ports: number[]): this {
    for (const port of ports) {
      this.createOpts.ExposedPorts = { ...this.createOpts.ExposedPorts, [`${port}/tcp`]: {} };
      this.hostConfig.PortBindings = { ...this.hostConfig.PortBindings, [`${port}/tcp`]: [{ HostIp: "127.0.0.1", HostPort: String(port) }] };
    }
    return this;
  }

  /** `docker run --init`: the engine's docker-init (tini) is PID 1. */
  withDockerInit(): this {
    this.hostConfig.Init = true;
    return this;
  }

  /** `docker run --read-only`. */
  withReadOnlyRoot(): this {
    this.hostConfig.ReadonlyRootfs = true;
    return this;
  }
}

export interface ContainerState {
  Status: string;
  Running: boolean;
  ExitCode: number;
  OOMKilled: boolean;
  StartedAt: string;
  FinishedAt: string;
  Health?: { Status: string; FailingStreak: number; Log: { ExitCode: number; Output: string; Start: string; End: string }[] };
}

export async function state(id: string): Promise<ContainerState> {
  return JSON.parse(await dockerOk(["inspect", "-f", "{{json .State}}", id])) as ContainerState;
}

/** Waits for the container to exit; its exit code. */
export async function waitExit(id: string, timeoutMs = 30_000): Promise<number> {
  const result = await docker(["wait", id], timeoutMs);
  if (result.code !== 0) throw new Error(`docker wait ${id}: ${result.stderr}`);
  return Number(result.stdout.trim());
}

export async function logs(id: string): Promise<{ stdout: string; stderr: string }> {
  const result = await docker(["logs", id]);
  return { stdout: result.stdout, stderr: result.stderr };
}

export async function remove(id: string): Promise<void> {
  await docker(["rm", "-f", "-v", id]);
}

/** Removes every container this test process started, also those whose start failed half-way. */
export async function removeAllStarted(): Promise<void> {
  const ids = (await dockerOk(["ps", "-aq", "--filter", `label=${TEST_LABEL}=${process.pid}`])).split(/\s+/).filter(Boolean);
  if (ids.length) await docker(["rm", "-f", "-v", ...ids]);
}

/** Polls until the health status is `want`; the time it took from the container's start. */
export async function waitForHealth(id: string, want: "healthy" | "unhealthy", timeoutMs: number): Promise<ContainerState> {
  const deadline = Date.now() + timeoutMs;
  let last: ContainerState | undefined;
  while (Date.now() < deadline) {
    last = await state(id);
    if (last.Health?.Status === want) return last;
    if (!last.Running) break;
    await sleep(100);
  }
  throw new Error(`container ${id.slice(0, 12)} not ${want}: ${JSON.stringify(last?.Health ?? last)}`);
}

/** Runs `image command…` to its end: exit code, split output, wall time; the container is removed. */
export async function runToExit(container: StarterContainer, timeoutMs = 30_000): Promise<CommandResult & { id: string }> {
  const started = Date.now();
  const running = await container.start();
  const id = running.getId();
  try {
    const code = await waitExit(id, timeoutMs);
    const ms = Date.now() - started;
    const output = await logs(id);
    return { id, code, ms, ...output };
  } finally {
    await remove(id);
  }
}

export interface ProcessEntry {
  pid: number;
  ppid: number;
  state: string;
  uid: number;
  comm: string;
  args: string;
}

/** Every process of the container, from its /proc and busybox ps (three commands, whatever the count). */
export async function processes(container: StartedTestContainer): Promise<ProcessEntry[]> {
  const script = "cat /proc/[0-9]*/stat 2>/dev/null; echo ---; grep -H '^Uid:' /proc/[0-9]*/status 2>/dev/null; echo ---; ps -o pid,args";
  const result = await container.exec(["sh", "-c", script]);
  if (result.exitCode !== 0) throw new Error(`listing processes failed: ${result.output}`);
  const [stats, uids, table] = result.stdout.split("\n---\n");
  const uidOf = new Map<number, number>();
  for (const line of uids.split("\n")) {
    const match = /^\/proc\/(\d+)\/status:Uid:\s+(\d+)/.exec(line);
    if (match) uidOf.set(Number(match[1]), Number(match[2]));
  }
  const argsOf = new Map<number, string>();
  for (const line of table.split("\n").slice(1)) {
    const match = /^\s*(\d+)\s+(.*)$/.exec(line);
    if (match) argsOf.set(Number(match[1]), match[2].trim());
  }
  return stats.split("\n").flatMap((line) => {
    const match = /^(\d+) \((.*)\) (\S) (\d+) /.exec(line);
    if (!match) return [];
    const pid = Number(match[1]);
    return [{ pid, comm: match[2], state: match[3], ppid: Number(match[4]), uid: uidOf.get(pid) ?? -1, args: argsOf.get(pid) ?? "" }];
  });
}

/** The process ids whose command line contains `needle`, zombies left out. */
export async function pidsOf(container: StartedTestContainer, needle: string): Promise<number[]> {
  return (await processes(container)).filter((p) => p.state !== "Z" && p.args.includes(needle)).map((p) => p.pid);
}

/** Pings until every device answers or the time is up; the last answers. */
export async function pingUntilAll(urls: string[], timeoutMs: number): Promise<Record<string, PingResult>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answers = await pingTango(urls);
    if (Object.values(answers).every((a) => a.ok) || Date.now() > deadline) return answers;
    await sleep(250);
  }
}

/** Polls `probe` until it returns a value that is not undefined. */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ""}`);
}
