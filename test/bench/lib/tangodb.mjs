// The Tango database the Starter needs: the one answering on 127.0.0.1:10000 (or --tango-host) when
// there is one; otherwise a private one for the bench — MariaDB on its own data directory (made by
// rootfs/tango-db/make-datadir.sh, the schema Debian's tango-db installs) and port, with Debian's
// DataBaseds in front of it — started here and stopped at the end. Nothing of this machine's own
// MariaDB or Tango is touched.

import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { cleanEnv, now, portOpen, sleep, spawnTracked, waitExit } from "./common.mjs";
import { DATABASEDS, databasedsArgs, MAKE_DATADIR, MARIADBD, mariadbArgs, TANGO_SCHEMA } from "../../fixtures/tango-db/programs.mjs";
import { TangoAgent } from "./tango.mjs";

async function waitPort(port, timeoutMs, child, what) {
  const deadline = now() + timeoutMs;
  while (!(await portOpen(port))) {
    if (child && (child.exitCode !== null || child.signalCode !== null)) throw new Error(`${what} ended (${child.exitCode ?? child.signalCode})`);
    if (now() > deadline) throw new Error(`${what} does not accept connections on ${port}`);
    await sleep(100);
  }
}

async function freePort(from) {
  for (let port = from; port < from + 200; port++) if (!(await portOpen(port))) return port;
  throw new Error(`no free port from ${from}`);
}

/** Whether a Tango database answers at host:port (a DataBaseds, asked through PyTango). */
async function answers(tangoHost) {
  const [host, port] = tangoHost.split(":");
  if (!(await portOpen(Number(port), host))) return null;
  const agent = await TangoAgent.start({ TANGO_HOST: tangoHost });
  try {
    const answer = await agent.request("db-check", {}, 20_000);
    return answer.ok ? answer.name : null;
  } finally {
    await agent.close();
  }
}

/** What a private database needs that is missing, as "file (package)". */
function missingForPrivate() {
  return [
    [MARIADBD, "mariadb-server"],
    [DATABASEDS, "tango-db"],
    [TANGO_SCHEMA, "tango-db"],
    [MAKE_DATADIR, "rootfs/tango-db/make-datadir.sh of this repository"],
  ]
    .filter(([file]) => !fs.existsSync(file))
    .map(([file, what]) => `${file} (${what})`);
}

/**
 * Finds or starts a Tango database. Resolves with { tangoHost, description, stop() } or
 * { unavailable: reason }. privateOnly: always a private one, in the directory `name` of the run's.
 */
export async function tangoDatabase(ctx, requested, { privateOnly = false, name = "tango-db" } = {}) {
  const candidates = privateOnly ? [] : requested ? [requested] : ["127.0.0.1:10000"];
  for (const candidate of candidates) {
    const found = await answers(candidate).catch(() => null);
    if (found) return { tangoHost: candidate, description: `the Tango database on ${candidate} (${found})`, stop: async () => {} };
    if (requested) return { unavailable: `no Tango database answers on ${requested}` };
  }
  const missing = missingForPrivate();
  if (missing.length) {
    return { unavailable: `no Tango database answers on 127.0.0.1:10000, and a private one cannot be started here: missing ${missing.join(", ")}` };
  }
  ctx.progress("starter: no Tango database on 127.0.0.1:10000; starting a private one (MariaDB + DataBaseds)");
  const dir = path.join(ctx.tmp, name);
  const datadir = path.join(dir, "data");
  fs.mkdirSync(dir, { recursive: true });
  await new Promise((resolve, reject) =>
    execFile("bash", [MAKE_DATADIR, datadir, "--user", "tango", "--password", "tango"], { timeout: 180_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`make-datadir.sh: ${stderr || err.message}`)) : resolve(),
    ),
  );
  const sqlPort = await freePort(3390);
  const mariadb = spawnTracked(MARIADBD, mariadbArgs(datadir, sqlPort), { stdio: ["ignore", "ignore", "ignore"] });
  let databaseds = null;
  const stop = async () => {
    for (const child of [databaseds, mariadb]) {
      if (!child || child.exitCode !== null || child.signalCode !== null) continue;
      child.kill("SIGTERM");
      if (!(await waitExit(child, 15_000))) child.kill("SIGKILL");
    }
  };
  try {
    await waitPort(sqlPort, 60_000, mariadb, "mariadbd");
    const tangoPort = await freePort(10190);
    const tangoHost = `127.0.0.1:${tangoPort}`;
    databaseds = spawnTracked(DATABASEDS, databasedsArgs(tangoPort), {
      stdio: ["ignore", "ignore", "ignore"],
      env: cleanEnv({ TANGO_HOST: tangoHost, MYSQL_USER: "tango", MYSQL_PASSWORD: "tango", MYSQL_HOST: `127.0.0.1:${sqlPort}`, MYSQL_DATABASE: "tango" }),
    });
    await waitPort(tangoPort, 60_000, databaseds, "DataBaseds");
    for (let i = 0; i < 50 && !(await answers(tangoHost).catch(() => null)); i++) await sleep(200);
    return {
      tangoHost,
      description: `a private Tango database started by the bench (MariaDB on 127.0.0.1:${sqlPort}, DataBaseds on ${tangoHost})${privateOnly ? "" : ", since none answered on 127.0.0.1:10000"}`,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
