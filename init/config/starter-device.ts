// `sources.tango.device: true`: the init runs, as one of its own servers, a Tango device server of
// class Starter (init/starter-device/starter_device.py, PyTango) so that Astor and scripts see and
// drive this host as they do a host of the Tango Starter. The device is a thin adapter to the control
// socket; everything it reports and does goes through the init.
//
// What the setting produces: a server `Starter/<host>` (host: the source's), run as
// `/usr/bin/python3 <script> <host>` with STARTER_CONTROL_SOCKET and the source's TANGO_HOST set, first
// in the file's order. It needs the Tango database, so it requires the servers the source waits for
// (sources.tango.waitFor) and sits at their level: it starts as soon as the database is up, before
// the database's servers start. Otherwise it is a server like the others (restarted when it crashes, stopped in order), and a
// `Starter/<host>` entry of the file's own `servers` replaces it entirely.
//
// The script: /usr/lib/starter-init/starter-device.py when installed (rootfs/assemble.sh puts it into
// images), else the copy embedded in the binary, written at start to the init's runtime directory
// beside the control socket (control/device-script.ts).

import path from "node:path";
import * as z from "zod";
import type { SupervisorConfig } from "../core/types";
import type { FieldProblem } from "./errors";
import { resolveConfig, type ResolveDeps } from "./resolve";
import type { SettingsInput } from "./schema";

export const INSTALLED_DEVICE_SCRIPT = "/usr/lib/starter-init/starter-device.py";
/** Debian's interpreter, the one python3-tango is built for. */
const PYTHON = "/usr/bin/python3";

export const starterDeviceSchema = z.boolean({ error: (issue) => `expected true or false, got ${JSON.stringify(issue.input)}` });

/** Where the embedded script is written when none is installed: the init's runtime directory. */
export function extractedDeviceScript(controlSocket: string): string {
  return path.join(path.dirname(controlSocket), "starter-init", "starter-device.py");
}

/** The script the device runs: STARTER_DEVICE_SCRIPT, the installed one, or the embedded copy written out. */
export function deviceScriptPath(controlSocket: string, deps: Pick<ResolveDeps, "env" | "executableStatus">): string {
  const fromEnv = deps.env.STARTER_DEVICE_SCRIPT;
  if (fromEnv) return fromEnv;
  return deps.executableStatus(INSTALLED_DEVICE_SCRIPT) !== "missing" ? INSTALLED_DEVICE_SCRIPT : extractedDeviceScript(controlSocket);
}

export interface StarterDeviceContext {
  /** The host whose Starter the device is (the tango source's). */
  host: string;
  /** The database the tango source reads: the device's too. */
  tangoHost: string;
  /** The servers the tango source waits for: the device needs the database too. */
  waitFor: readonly string[];
  settings: SettingsInput | undefined;
  fileName: string;
  deps: ResolveDeps;
}

const AT = ["sources", "tango", "device"] as const;

/** Adds the device to the file's servers (first), unless the file names `Starter/<host>` itself. */
export function addStarterDevice(config: SupervisorConfig, context: StarterDeviceContext, problems: FieldProblem[]): void {
  const name = `Starter/${context.host}`;
  if (!context.settings || config.servers.some((spec) => spec.name === name)) return;
  if (context.deps.executableStatus(PYTHON) !== "executable") {
    problems.push({ path: AT, message: `the Starter device runs with ${PYTHON} and PyTango (Debian's python3-tango); ${PYTHON} is missing` });
    return;
  }
  const script = deviceScriptPath(config.settings.controlSocket, context.deps);
  const gate = config.servers.filter((spec) => context.waitFor.includes(spec.name));
  const input = {
    name,
    binary: PYTHON,
    env: { STARTER_CONTROL_SOCKET: config.settings.controlSocket, TANGO_HOST: context.tangoHost },
    level: Math.max(1, ...gate.map((spec) => spec.level)),
  };
  const resolved = resolveConfig(context.settings, [{ index: 0, rawName: name, input }], context.fileName, context.deps);
  for (const problem of resolved.problems) problems.push({ path: AT, message: `${name}: ${problem.message}` });
  const spec = resolved.config.servers[0];
  if (!spec) return;
  // resolve() builds [binary, instance, …args]; the interpreter takes the script first.
  config.servers.unshift({ ...spec, argv: [PYTHON, script, context.host], requires: gate.map((s) => s.name) });
}
