// The Starter device's script (init/starter-device/starter_device.py) travels inside the binary, as
// the addon does: when no installed copy is there (config/starter-device.ts chooses the path), the
// embedded one is written to the init's runtime directory before the boot, so the device can run on a
// host that has nothing but the binary, python3 and PyTango. Outside a single executable (tests,
// `node dist/starter-init.cjs`) the file of the source tree is copied instead.
//
// A config that turns the device on by a reload is covered too: the file is written again after each
// new configuration (a first spawn that came before it fails and is retried by the restart policy).

import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { extractedDeviceScript } from "../config/starter-device";
import type { Logger } from "../log/logger";
import { attachToSupervisor, type RunningSupervisor } from "../runtime/supervisor";

const ASSET = "starter_device.py";
const requireHere = createRequire(__filename);

/** The script's text: the SEA asset, else the source tree's file; null when neither is there. */
function scriptText(): string | null {
  try {
    const sea = requireHere("node:sea") as { isSea(): boolean; getAsset(key: string, encoding: string): string };
    if (sea.isSea()) return sea.getAsset(ASSET, "utf8");
  } catch {
    // Not a single executable (or a Node without node:sea): the source tree has it.
  }
  for (const candidate of [path.join(__dirname, "..", "starter-device", ASSET), path.join(__dirname, "..", "init", "starter-device", ASSET)]) {
    try {
      return fs.readFileSync(candidate, "utf8");
    } catch {
      // Next candidate.
    }
  }
  return null;
}

/** Writes the script where the device's spec expects it, when a server of the config runs it from there. */
export function installDeviceScript(running: RunningSupervisor, log: Logger): void {
  const config = running.config();
  const file = extractedDeviceScript(config.settings.controlSocket);
  if (!config.servers.some((spec) => spec.argv.includes(file))) return;
  const text = scriptText();
  if (text === null) {
    log.error({ file }, "the Starter device's script is neither embedded nor in the source tree; the device cannot start");
    return;
  }
  try {
    if (fs.existsSync(file) && fs.readFileSync(file, "utf8") === text) return;
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
    // Written aside and renamed: a device starting meanwhile never reads half a script.
    const partial = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(partial, text, { mode: 0o644 });
    fs.renameSync(partial, file);
    log.debug({ file }, "Starter device script written");
  } catch (err) {
    log.error({ err, file }, `cannot write the Starter device's script to ${file}; the device cannot start`);
  }
}

attachToSupervisor((running, log) => {
  installDeviceScript(running, log);
  running.engine.onEvent((event) => {
    if (event.type === "config-reloaded") installDeviceScript(running, log);
  });
});
