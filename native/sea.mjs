#!/usr/bin/env node
// Packs the init into one executable: dist/starter-init, a Node single-executable application (SEA)
// with the addon embedded as an asset. Run by `npm run build` after node-gyp has built the addon.
//
// Steps (the recipe in the design notes, §7):
//  1. esbuild bundles init/main.ts into one CommonJS file (a SEA's main must be CJS);
//  2. `node --experimental-sea-config` turns it and the addon into a blob;
//  3. a copy of node is stripped BEFORE injection (stripping afterwards corrupts the binary);
//  4. postject injects the blob and flips the SEA fuse.

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const dist = path.join(root, "dist");
const addon = path.join(root, "native", "build", "Release", "starter_native.node");
const deviceScript = path.join(root, "init", "starter-device", "starter_device.py");
const bundle = path.join(dist, "starter-init.cjs");
const blob = path.join(dist, "sea-prep.blob");
const seaConfig = path.join(dist, "sea-config.json");
const binary = path.join(dist, "starter-init");
const FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";

function run(file, args) {
  execFileSync(file, args, { stdio: "inherit", cwd: root });
}

if (!fs.existsSync(addon)) {
  console.error(`sea: ${path.relative(root, addon)} is missing; run "npm run build:addon" first`);
  process.exit(1);
}
fs.mkdirSync(dist, { recursive: true });

const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));
await build({
  entryPoints: [path.join(root, "init", "main.ts")],
  bundle: true,
  platform: "node",
  target: "node20",
  format: "cjs",
  outfile: bundle,
  legalComments: "none",
  logLevel: "warning",
  // yargs is ESM and reads import.meta.url, which a CommonJS bundle lacks.
  define: { STARTER_INIT_VERSION: JSON.stringify(pkg.version), "import.meta.url": "importMetaUrl" },
  banner: { js: 'const importMetaUrl = require("node:url").pathToFileURL(__filename).href;' },
});

fs.writeFileSync(
  seaConfig,
  JSON.stringify(
    {
      main: bundle,
      output: blob,
      disableExperimentalSEAWarning: true,
      useCodeCache: true,
      // The Tango Starter device (PyTango), written out at start when no copy is installed.
      assets: { "starter_native.node": addon, "starter_device.py": deviceScript },
    },
    null,
    2,
  ),
);
run(process.execPath, ["--experimental-sea-config", seaConfig]);

fs.rmSync(binary, { force: true });
fs.copyFileSync(process.execPath, binary);
fs.chmodSync(binary, 0o755);
run("strip", ["--strip-all", binary]);
run(path.join(root, "node_modules", ".bin", "postject"), [binary, "NODE_SEA_BLOB", blob, "--sentinel-fuse", FUSE]);
fs.rmSync(blob);
fs.rmSync(seaConfig);
const size = fs.statSync(binary).size;
console.log(`sea: built dist/starter-init (${(size / 1048576).toFixed(1)} MiB)`);
