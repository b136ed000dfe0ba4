// Kernel modules a VM's init loads in stage 1, before it mounts what /etc/fstab names: a kernel
// like Debian's has the drivers of a virtio disk and of its filesystem as modules, and there is no
// udev or modprobe to load them.
//
// Which: the names in /etc/modules (one per line, `#` comments: Debian's format), and those the caller
// adds (the kernel word starter.modules=a,b). How: each after
// the modules it depends on, as /lib/modules/<release>/modules.dep lists them (depmod's format:
// `path: dependency-path …`, paths relative to that directory), with finit_module(2). A module that
// is loaded already, or built into the kernel, is not an error.

import fs from "node:fs";
import path from "node:path";
import { native } from "../native";

export interface ModuleLoad {
  loaded: string[];
  failed: { module: string; code: string }[];
}

/** Module name of a modules.dep path: file name without .ko (and compression suffix), `-` as `_`. */
export function moduleName(file: string): string {
  return path
    .basename(file)
    .replace(/\.ko(\.[a-z0-9]+)?$/, "")
    .replace(/-/g, "_");
}

/** modules.dep text → name → {path, dependency paths}. */
export function parseModulesDep(text: string): Map<string, { path: string; deps: string[] }> {
  const modules = new Map<string, { path: string; deps: string[] }>();
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const file = line.slice(0, colon).trim();
    modules.set(moduleName(file), {
      path: file,
      deps: line
        .slice(colon + 1)
        .trim()
        .split(/\s+/)
        .filter(Boolean),
    });
  }
  return modules;
}

/** Names listed in an /etc/modules text. */
export function parseModulesList(text: string): string[] {
  return text
    .split("\n")
    .map((line) => line.replace(/#.*/, "").trim())
    .filter(Boolean)
    .map((name) => name.split(/\s+/)[0].replace(/-/g, "_"));
}

/**
 * Module files to load for `wanted`, dependencies first, each once. depmod lists a module's whole
 * closure, the modules it needs last; loading that list from its end keeps the order right. A name
 * modules.dep does not know is reported as missing.
 */
export function loadOrder(wanted: string[], dep: Map<string, { path: string; deps: string[] }>): { files: string[]; missing: string[] } {
  const files: string[] = [];
  const missing: string[] = [];
  for (const name of wanted) {
    const entry = dep.get(name);
    if (!entry) {
      missing.push(name);
      continue;
    }
    for (const file of [...entry.deps].reverse().concat(entry.path)) {
      if (!files.includes(file)) files.push(file);
    }
  }
  return { files, missing };
}

/**
 * The running kernel's release, as uname(2) tells it. Not os.release(): Node's os module reads it once,
 * when the module is evaluated, and in the single executable that was at build time, on another
 * machine (init/snapshot.ts).
 */
function kernelRelease(): string {
  return fs.readFileSync("/proc/sys/kernel/osrelease", "utf8").trim();
}

/** Loads what /etc/modules names, and `extra`; nothing when both are absent or empty. */
export function loadModules(root = "/", release?: string, extra: readonly string[] = []): ModuleLoad {
  const outcome: ModuleLoad = { loaded: [], failed: [] };
  let listed: string[] = [];
  try {
    listed = parseModulesList(fs.readFileSync(path.join(root, "etc/modules"), "utf8"));
  } catch {
    // No /etc/modules: only the extra names.
  }
  const wanted = [...new Set([...listed, ...parseModulesList(extra.join("\n"))])];
  if (wanted.length === 0) return outcome;
  let base: string;
  try {
    base = path.join(root, "lib/modules", release ?? kernelRelease());
  } catch (err) {
    outcome.failed.push(...wanted.map((module) => ({ module, code: `kernel release unknown (${(err as NodeJS.ErrnoException).code ?? "?"})` })));
    return outcome;
  }
  let dep: Map<string, { path: string; deps: string[] }>;
  try {
    dep = parseModulesDep(fs.readFileSync(path.join(base, "modules.dep"), "utf8"));
  } catch (err) {
    outcome.failed.push(...wanted.map((module) => ({ module, code: `no modules.dep (${(err as NodeJS.ErrnoException).code ?? "?"})` })));
    return outcome;
  }
  const { files, missing } = loadOrder(wanted, dep);
  for (const module of missing) outcome.failed.push({ module, code: "not in modules.dep" });
  for (const file of files) {
    try {
      native().finitModule(path.join(base, file));
      outcome.loaded.push(moduleName(file));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      if (code === "EEXIST") continue;
      outcome.failed.push({ module: moduleName(file), code });
    }
  }
  return outcome;
}
