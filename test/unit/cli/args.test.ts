// The `--` fast path of the argument parser must answer exactly what the parser answers.

import { describe, expect, it } from "vitest";
import { bareMainProgram, bareSupervisor, parseArgs } from "../../../init/cli/args";

describe("bareMainProgram", () => {
  it.each([
    [["--", "true"], {}],
    [["--", "sh", "-c", "exit 3"], {}],
    [["--", "app", "--port", "8080", "--", "x"], { STARTER_CONFIG: "/etc/app.yaml" }],
    [["--", "1000"], { PATH: "/bin" }],
  ])("%j equals the parser's answer", async (argv, env) => {
    const fast = bareMainProgram(argv, env);
    expect(fast).not.toBeNull();
    // parseArgs takes the fast path itself: compare with the parser's own reading of the same words
    // after an option that changes nothing (--mount is the default).
    const parsed = await parseArgs(["--mount", ...argv], env, 2);
    expect(fast).toEqual(parsed);
  });

  it("leaves everything else to the parser", () => {
    for (const argv of [[], ["--"], ["-g", "--", "x"], ["run"], ["--help"], ["status"], ["x", "--", "y"]]) {
      expect(bareMainProgram(argv, {})).toBeNull();
    }
  });
});

describe("bareSupervisor", () => {
  it.each([[{}], [{ STARTER_CONFIG: "/etc/site.yaml" }]])("no argument with env %j equals the parser's answer", async (env) => {
    const fast = bareSupervisor([], env);
    expect(fast).not.toBeNull();
    expect(fast).toEqual(await parseArgs(["--mount"], env, 2));
  });

  it("leaves any argument to the parser", () => {
    for (const argv of [["run"], ["--"], ["-c", "x"], ["status"]]) expect(bareSupervisor(argv, {})).toBeNull();
  });
});
