// Kernel modules a VM's root carries for its init: those named in /etc/modules (Debian's list of
// modules to load at boot, one a line) and in the kernel word starter.modules=a,b, found under
// /lib/modules/<release>/ and loaded with finit_module, each after the modules its .modinfo says it
// depends on. A VM needs them when its kernel builds a driver as a module (Debian's watchdog drivers:
// ib700wdt, i6300esb) and has no udev to load it.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { native } from "../native";

export interface ModuleOutcome {
  loaded: string[];
  /** "name (why)" for each that did not load. */
  failed: string[];
}

/** Module names are the same with "-" and "_". */
function canonical(name: string): string {
  return name.replace(/-/g, "_");
}

/** The names to load: /etc/modules (comments and blank lines aside), then starter.modules=. */
export function modulesToLoad(etcModules: string | null, kernelWord: string | undefined): string[] {
  const names = [...(etcModules ?? "").split("\n").map((line) => line.replace(/#.*/, "").trim().split(/\s+/)[0]), ...(kernelWord ?? "").split(",")].filter(
    (name) => name !== undefined && name !== "",
  );
  return [...new Set(names.map(canonical))];
}

/** Every .ko file under dir, by module name. */
function moduleFiles(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (at: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(at, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const full = path.join(at, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith(".ko")) files.set(canonical(entry.name.slice(0, -3)), full);
    }
  };
  walk(dir);
  return files;
}

/** The depends= field of a module file's .modinfo (NUL-separated key=value strings). */
export function moduleDepends(contents: Buffer): string[] {
  const at = contents.indexOf("\0depends=");
  if (at < 0) return [];
  const start = at + "\0depends=".length;
  const end = contents.indexOf(0, start);
  return contents
    .subarray(start, end < 0 ? contents.length : end)
    .toString("latin1")
    .split(",")
    .filter(Boolean)
    .map(canonical);
}

export function loadModules(names: readonly string[], root = path.join("/lib/modules", os.release())): ModuleOutcome {
  const outcome: ModuleOutcome = { loaded: [], failed: [] };
  if (names.length === 0) return outcome;
  const files = moduleFiles(root);
  const done = new Set<string>();
  const load = (name: string, chain: string[]): boolean => {
    if (done.has(name)) return true;
    done.add(name);
    const file = files.get(name);
    if (!file) {
      outcome.failed.push(`${name} (not in ${root})`);
      return false;
    }
    for (const dependency of moduleDepends(fs.readFileSync(file))) {
      if (chain.includes(dependency)) continue;
      if (!load(dependency, [...chain, name])) {
        outcome.failed.push(`${name} (needs ${dependency})`);
        return false;
      }
    }
    try {
      native().loadModule(file);
      outcome.loaded.push(name);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      // Built in, or loaded already: there all the same.
      if (code === "EEXIST") return true;
      outcome.failed.push(`${name} (${code})`);
      return false;
    }
    return true;
  };
  for (const name of names) load(name, []);
  return outcome;
}
