// The "before" of a before/after comparison: starter-init built from an earlier commit, measured
// side by side with the current build in the same run (`--baseline REF`).
//
// The commit's tree is exported (git archive) into build/bench-baseline/<commit>/, given this
// checkout's node_modules when its package-lock.json is the same (else `npm ci` there), and built with
// its own `npm run build`. The result is kept: a second run with the same commit builds nothing.

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { ROOT } from "./common.mjs";

/**
 * A binary file is used as it is; anything else is a git revision to build. `tree` is the built
 * revision's checkout (null for a file): the VM workload boots the "before" with its own qemu/ scripts.
 */
export function baselineBinary(refOrFile, progress = (m) => console.error(m)) {
  if (fs.existsSync(refOrFile) && fs.statSync(refOrFile).isFile()) return { binary: path.resolve(refOrFile), label: path.basename(refOrFile), tree: null };
  const git = (...args) => execFileSync("git", args, { cwd: ROOT, encoding: "utf8" }).trim();
  let commit;
  try {
    commit = git("rev-parse", "--verify", `${refOrFile}^{commit}`);
  } catch {
    throw new Error(`--baseline ${refOrFile}: neither a file nor a git revision`);
  }
  const short = commit.slice(0, 10);
  const dir = path.join(ROOT, "build", "bench-baseline", commit);
  const binary = path.join(dir, "dist", "starter-init");
  if (fs.existsSync(binary)) return { binary, label: short, tree: dir };

  progress(`baseline: building starter-init of ${short} in ${path.relative(ROOT, dir)}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  execFileSync("sh", ["-c", 'git archive "$1" | tar -x -C "$2"', "sh", commit, dir], { cwd: ROOT, stdio: "inherit" });
  const sameLock = fs.readFileSync(path.join(dir, "package-lock.json"), "utf8") === fs.readFileSync(path.join(ROOT, "package-lock.json"), "utf8");
  if (sameLock) fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"));
  else execFileSync("npm", ["ci", "--no-audit", "--no-fund"], { cwd: dir, stdio: "inherit" });
  execFileSync("npm", ["run", "build"], { cwd: dir, stdio: ["ignore", "ignore", "inherit"] });
  if (!fs.existsSync(binary)) throw new Error(`baseline: the build of ${short} made no dist/starter-init`);
  return { binary, label: short, tree: dir };
}
