// Rules of the codebase that a reviewer would otherwise have to remember.

import { describe, expect, it } from "vitest";
import fs from "node:fs";
import path from "node:path";

const INIT = path.resolve(__dirname, "..", "..", "init");

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    return entry.isDirectory() ? sources(file) : entry.name.endsWith(".ts") ? [file] : [];
  });
}

describe("seams", () => {
  it("nothing in init/ mentions child_process: one reaper owns every exit", () => {
    const offenders = sources(INIT).filter((file) => fs.readFileSync(file, "utf8").includes("child_process"));
    expect(offenders).toEqual([]);
  });

  it("only init/native.ts loads the addon", () => {
    const loaders = sources(INIT).filter((file) => /process\.dlopen|\.node["']\)/.test(fs.readFileSync(file, "utf8")));
    expect(loaders.map((file) => path.relative(INIT, file))).toEqual(["native.ts"]);
  });
});
