// The only loader of the native addon (native/src/*.cc); its types are native/index.d.ts.
//
// Where the addon comes from, in order:
//  1. a `starter_native.node` file beside the executable (packagers may ship it that way);
//  2. inside a single-executable application: the copy embedded as a SEA asset, written to the first
//     writable place that allows exec (a SEA cannot dlopen from memory), dlopen'ed and unlinked;
//  3. outside a SEA (development, `node dist/starter-init.cjs`): the node-gyp build output.
// A read-only root and a VM before anything is mounted are both normal here: the candidate list
// ends with `/dev` (a tmpfs in containers, exec allowed) and `/` (the initramfs root is writable).

import fs from "node:fs";
import path from "node:path";
import type { NativeModule } from "../native/index";

export type {
  NativeModule,
  SpawnOptions,
  SpawnResult,
  SpawnError,
  NativeError,
  MountOptions,
  PeerCred,
  StdioSpec,
  SocketAddress,
  ListenQueue,
} from "../native/index";

const ADDON_FILE = "starter_native.node";

/** Places tried, in order, for the extracted addon. STARTER_INIT_TMPDIR comes first when set. */
function extractionDirs(): string[] {
  const dirs = ["/run", "/tmp", "/dev/shm", "/dev", "/"];
  const fromEnv = process.env.STARTER_INIT_TMPDIR;
  return fromEnv ? [fromEnv, ...dirs] : dirs;
}

function dlopen(file: string): NativeModule {
  const module = { exports: {} as NativeModule };
  process.dlopen(module, file);
  return module.exports;
}

function seaAsset(): ArrayBuffer | null {
  let sea: { isSea(): boolean; getRawAsset(key: string): ArrayBuffer };
  try {
    // A plain require: the bundle is CommonJS, and inside the startup snapshot node:module (and with
    // it createRequire) is not to be used.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    sea = require("node:sea") as typeof sea;
  } catch {
    return null;
  }
  return sea.isSea() ? sea.getRawAsset(ADDON_FILE) : null;
}

/** Writes the embedded addon to a file, dlopens it and unlinks it; tries each directory in turn. */
function loadEmbedded(asset: ArrayBuffer): NativeModule {
  const failures: string[] = [];
  for (const dir of extractionDirs()) {
    const file = path.join(dir, `.starter-init-${process.pid}-${Date.now()}.node`);
    try {
      fs.writeFileSync(file, new Uint8Array(asset), { mode: 0o500, flag: "wx" });
    } catch (err) {
      failures.push(`${dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      continue;
    }
    try {
      return dlopen(file);
    } catch (err) {
      // A noexec mount fails here ("failed to map segment from shared object").
      failures.push(`${dir}: ${(err as Error).message.split("\n")[0]}`);
    } finally {
      // The mapping stays valid; the name goes at once (one unlink, no stat as rmSync would make).
      try {
        fs.unlinkSync(file);
      } catch {
        // Gone already.
      }
    }
  }
  throw new Error(`cannot load the embedded native addon; tried ${failures.join("; ")}`);
}

function load(): NativeModule {
  const beside = path.join(path.dirname(process.execPath), ADDON_FILE);
  if (fs.existsSync(beside) && path.basename(process.execPath) !== "node") return dlopen(beside);
  const asset = seaAsset();
  if (asset) return loadEmbedded(asset);
  // Development: the bundle lives in dist/, the build output in native/build/Release/.
  for (const candidate of [path.join(__dirname, ADDON_FILE), path.join(__dirname, "..", "native", "build", "Release", ADDON_FILE)]) {
    if (fs.existsSync(candidate)) return dlopen(candidate);
  }
  throw new Error(`native addon ${ADDON_FILE} not found beside ${process.execPath} nor embedded`);
}

let loaded: NativeModule | null = null;

/** The addon, loaded on first use. */
export function native(): NativeModule {
  loaded ??= load();
  return loaded;
}
