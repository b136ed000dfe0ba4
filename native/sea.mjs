#!/usr/bin/env node
// Packs the init into one executable: dist/starter-init, a Node single-executable application (SEA)
// whose main is a V8 startup snapshot, with the addon embedded as an asset. Run by `npm run build`
// after node-gyp has built the addon.
//
// Steps (the recipe in the design notes, §7):
//  1. esbuild bundles init/main.ts into one CommonJS file (a SEA's main must be CJS), whitespace and
//     comments left out (the source is part of the snapshot: every byte is read at every start);
//  2. `node --experimental-sea-config` with "useSnapshot" runs the bundle once, here, and writes the
//     heap it leaves (every module evaluated, the start path compiled: init/snapshot.ts) into the
//     blob. At each start Node deserializes that heap and calls the main function it names;
//  3. a copy of node is stripped BEFORE injection (stripping afterwards corrupts the binary);
//  4. postject injects the blob and flips the SEA fuse.
//
// `STARTER_SEA_SNAPSHOT=0 npm run build:sea` builds the former kind (no snapshot, a code cache of the
// bundle), for comparison.
//
// For the tests of `reexec` (an in-place upgrade to another build): STARTER_SEA_OUT=FILE writes the
// binary there instead of dist/starter-init, STARTER_BUILD_VERSION=V gives it another version string,
// and STARTER_BUILD_STATE_FORMAT=N makes it write (and read up to) reexec state format N.
//
// A snapshot only loads where V8 sees the CPU features it saw when it was made (they are part of
// V8's cached-data tag, like its version and flags): elsewhere Node exits with code 14 before the
// init runs. So the binary is made for the CPU it is built on, and
//
//   node native/sea.mjs --for-qemu FILE
//
// makes one for qemu's emulated CPU (TCG, `-cpu max`: the microVM of qemu/): the snapshot is built
// under `qemu-x86_64 -cpu max` (qemu-user), which shows V8 the same CPU. The addon is copied beside
// FILE (the VM's init then loads it from there).

import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const dist = path.join(root, "dist");
const addon = path.join(root, "native", "build", "Release", "starter_native.node");
const deviceScript = path.join(root, "init", "starter-device", "starter_device.py");
const bundle = process.env.STARTER_SEA_OUT ? `${path.resolve(process.env.STARTER_SEA_OUT)}.cjs` : path.join(dist, "starter-init.cjs");
const forQemu = process.argv[2] === "--for-qemu";
if (forQemu && !process.argv[3]) {
  console.error("sea: --for-qemu needs the path of the binary to make");
  process.exit(2);
}
const binary = forQemu
  ? path.resolve(process.argv[3])
  : process.env.STARTER_SEA_OUT
    ? path.resolve(process.env.STARTER_SEA_OUT)
    : path.join(dist, "starter-init");
const blob = `${binary}.sea-prep.blob`;
const seaConfig = `${binary}.sea-config.json`;
const FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";
const useSnapshot = process.env.STARTER_SEA_SNAPSHOT !== "0";
/** Marks the build's environment; must never turn up in the snapshot (snapshotEnv). */
const CANARY = "starter-init-snapshot-canary";

/**
 * Built-in modules that Node does not yet list as verified inside a snapshot, but that the bundle
 * loads while its modules are evaluated, and why that is safe here. Node warns about each; any other
 * warning fails the build (a new module may bring state that a snapshot would freeze).
 */
const SNAPSHOT_BUILTINS_ALLOWED = new Map([
  ["module", "yargs makes a require() with createRequire for config files it is never asked to read"],
  ["tty", "isatty() is called at run time only; the module itself holds no state"],
  ["worker_threads", "pino's transports (never used: the init logs synchronously to fd 2)"],
  ["perf_hooks", "performance.now(); Node re-bases the time origin after deserialization"],
]);

function run(file, args) {
  execFileSync(file, args, { stdio: "inherit", cwd: root });
}

if (!fs.existsSync(addon)) {
  console.error(`sea: ${path.relative(root, addon)} is missing; run "npm run build:addon" first`);
  process.exit(1);
}
fs.mkdirSync(dist, { recursive: true });

// Intl.Segmenter wraps an ICU object that V8 cannot put into a startup snapshot, and string-width
// (yargs' and cliui's copies) creates one when its module is evaluated: create it on first use, and
// keep none while the snapshot is built (yargs measures its help text while it parses a command).
const lazySegmenter = {
  name: "lazy-intl-segmenter",
  setup(builder) {
    builder.onLoad({ filter: /[\\/]string-width[\\/]index\.js$/ }, async (args) => {
      const source = await fs.promises.readFile(args.path, "utf8");
      const patched = source.replace(
        "const segmenter = new Intl.Segmenter();",
        [
          "let segmenterInstance;",
          "const segmenter = { segment: (text) => require('node:v8').startupSnapshot.isBuildingSnapshot()",
          "  ? new Intl.Segmenter().segment(text) : (segmenterInstance ??= new Intl.Segmenter()).segment(text) };",
        ].join("\n"),
      );
      if (patched === source) throw new Error(`${args.path} no longer creates its Intl.Segmenter as expected: update the lazy-intl-segmenter plugin`);
      return { contents: patched, loader: "js" };
    });
  },
};

const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));
const common = { bundle: true, platform: "node", target: "node20", format: "cjs", legalComments: "none", logLevel: "warning", minifyWhitespace: true };
await build({
  ...common,
  entryPoints: [path.join(root, "init", "main.ts")],
  outfile: bundle,
  plugins: [lazySegmenter],
  // yargs is ESM and reads import.meta.url, which a CommonJS bundle lacks.
  define: {
    STARTER_INIT_VERSION: JSON.stringify(process.env.STARTER_BUILD_VERSION || pkg.version),
    ...(process.env.STARTER_BUILD_STATE_FORMAT ? { STARTER_STATE_FORMAT: String(Number(process.env.STARTER_BUILD_STATE_FORMAT)) } : {}),
    "import.meta.url": "importMetaUrl",
  },
  banner: { js: 'const importMetaUrl = require("node:url").pathToFileURL(__filename).href;' },
});

fs.writeFileSync(
  seaConfig,
  JSON.stringify(
    {
      main: bundle,
      output: blob,
      disableExperimentalSEAWarning: true,
      ...(useSnapshot ? { useSnapshot: true } : { useCodeCache: true }),
      // The Tango Starter device (PyTango), written out at start when no copy is installed.
      assets: { "starter_native.node": addon, "starter_device.py": deviceScript },
    },
    null,
    2,
  ),
);
// With useSnapshot, this runs the bundle (init/snapshot.ts says what it prepares).
const prepare = forQemu ? ["qemu-x86_64", "-cpu", "max", process.execPath] : [process.execPath];
const prepared = spawnSync(prepare[0], [...prepare.slice(1), "--experimental-sea-config", seaConfig], { cwd: root, encoding: "utf8", env: snapshotEnv() });
process.stdout.write(prepared.stdout);
const unexpected = unexpectedWarnings(prepared.stderr);
if (prepared.error) {
  console.error(`sea: cannot run ${prepare[0]}: ${prepared.error.message}${forQemu ? " (apt-get install qemu-user)" : ""}`);
  process.exit(1);
}
if (prepared.status !== 0 || unexpected.length) {
  process.stderr.write(prepared.stderr);
  if (unexpected.length) console.error(`sea: the snapshot loads built-in modules not known to be safe in it: ${unexpected.join(", ")}`);
  process.exit(1);
}

if (useSnapshot && fs.readFileSync(blob).includes(CANARY)) {
  console.error(`sea: the snapshot holds a value of the build's environment (${CANARY}): a module keeps what it read while it was evaluated`);
  process.exit(1);
}

fs.rmSync(binary, { force: true });
fs.copyFileSync(process.execPath, binary);
fs.chmodSync(binary, 0o755);
run("strip", ["--strip-all", binary]);
renameNodeOptions(binary);
run(path.join(root, "node_modules", ".bin", "postject"), [binary, "NODE_SEA_BLOB", blob, "--sentinel-fuse", FUSE]);
fs.rmSync(blob);
fs.rmSync(seaConfig);
if (forQemu) fs.copyFileSync(addon, path.join(path.dirname(binary), "starter_native.node"));
const size = fs.statSync(binary).size;
const kind = !useSnapshot ? "code cache, no snapshot" : forQemu ? "startup snapshot for qemu's TCG CPU" : "startup snapshot";
console.log(`sea: built ${path.relative(root, binary)} (${(size / 1048576).toFixed(1)} MiB, ${kind})`);

/**
 * The copy of node reads its options from STARTER_NODE instead of NODE_OPTIONS. An init must not be
 * steered by the NODE_OPTIONS its container sets for the application (`--require`, `--inspect`, …),
 * and a startup snapshot refuses to load under V8 flags other than those it was built with (Node
 * exits with code 14 before any of the init runs). The name is one C string in the executable's
 * read-only data, replaced by one of the same length; anything but exactly one occurrence fails the
 * build.
 */
function renameNodeOptions(file) {
  const name = Buffer.from("NODE_OPTIONS\0");
  const data = fs.readFileSync(file);
  // Node's own V8 snapshot holds the name too, as a string with its length (12) in the 4 bytes before
  // it: those stay as they are. The C string is the one after a NUL that is not such a length.
  const found = [];
  for (let at = data.indexOf(name); at >= 0; at = data.indexOf(name, at + 1)) {
    if (data[at - 1] === 0 && data.readUInt32LE(at - 4) !== 12) found.push(at);
  }
  if (found.length !== 1) {
    console.error(`sea: expected the C string "NODE_OPTIONS" once in ${path.relative(root, file)}, found it ${found.length} times; cannot rename it`);
    process.exit(1);
  }
  Buffer.from("STARTER_NODE").copy(data, found[0]);
  fs.writeFileSync(file, data);
}

/**
 * The environment of the snapshot build: PATH, and markers where a process finds its home, its
 * temporary directory and its configuration. None may end up in the snapshot: anything the bundle
 * keeps of its environment while it is evaluated would be what every start sees (see CANARY).
 */
function snapshotEnv() {
  return {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: `/nonexistent/${CANARY}`,
    TMPDIR: `/nonexistent/${CANARY}`,
    STARTER_CONFIG: `/nonexistent/${CANARY}`,
  };
}

/** Built-in modules Node warned about that are not in SNAPSHOT_BUILTINS_ALLOWED. */
function unexpectedWarnings(stderr) {
  const names = [...stderr.matchAll(/built-in module "(?:node:)?([^"]+)" works in user snapshot/g)].map((m) => m[1]);
  return [...new Set(names)].filter((name) => !SNAPSHOT_BUILTINS_ALLOWED.has(name));
}
