// The command line of the `--` mode: tini's and dumb-init's flags, and usage errors that name what
// was typed. Parsing does no I/O.
import { describe, expect, it } from "vitest";
import { bareMainProgram, bareSupervisor, parseArgs, UsageError } from "../../../init/cli/args";

const parse = (args: string[], env: NodeJS.ProcessEnv = {}) => parseArgs(args, env, 4242);

async function usageError(args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  try {
    await parse(args, env);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error(`${args.join(" ")} parsed`);
}

describe("-- mode flags", () => {
  it("defaults: no group, a session of its own, no rewrites, no parent-death signal", async () => {
    expect(await parse(["--", "prog", "-x", "1000"])).toMatchObject({
      mode: "main-program",
      command: "prog",
      args: ["-x", "1000"],
      forwardToGroup: false,
      singleChild: false,
      rewrites: [],
      parentDeathSignal: null,
      warnOnReap: false,
      logLevel: null,
    });
  });

  it("takes tini's -g -p -s -w -v and dumb-init's -c -r -v, grouped short flags too", async () => {
    expect(await parse(["-g", "-p", "SIGKILL", "-s", "-w", "-r", "15:3", "-r", "TERM:0", "--", "prog"])).toMatchObject({
      forwardToGroup: true,
      parentDeathSignal: 9,
      warnOnReap: true,
      rewrites: [
        [15, 3],
        [15, 0],
      ],
    });
    expect(await parse(["-cv", "--", "prog"])).toMatchObject({ singleChild: true, logLevel: "debug" });
    expect(await parse(["-vv", "--", "prog"])).toMatchObject({ logLevel: "trace" });
    expect(await parse(["--single-child", "--rewrite=RTMIN:RTMAX", "--pdeath-signal", "15", "--", "prog"])).toMatchObject({
      singleChild: true,
      rewrites: [[34, 64]],
      parentDeathSignal: 15,
    });
  });

  it("honours tini's and dumb-init's environment variables", async () => {
    expect(await parse(["--", "prog"], { TINI_KILL_PROCESS_GROUP: "1", TINI_VERBOSITY: "3" })).toMatchObject({ forwardToGroup: true, logLevel: "debug" });
    expect(await parse(["--", "prog"], { DUMB_INIT_SETSID: "0", DUMB_INIT_DEBUG: "1" })).toMatchObject({ singleChild: true, logLevel: "debug" });
  });

  it("-c is --config without a --, as before", async () => {
    expect(await parse(["-c", "conf.yaml"])).toMatchObject({ mode: "supervisor", configGiven: true, config: expect.stringMatching(/\/conf\.yaml$/) });
    expect(await parse(["plan", "-c", "/etc/x.yaml"])).toMatchObject({ mode: "plan", config: "/etc/x.yaml" });
  });

  it("names what it does not take", async () => {
    expect(await usageError(["-x", "--", "true"])).toBe("unknown option -x");
    expect(await usageError(["-gq", "--", "true"])).toBe("unknown option -q");
    expect(await usageError(["--frob", "--", "true"])).toBe("unknown option --frob");
    expect(await usageError(["sleep", "1"])).toBe('unknown command "sleep"; to run a program under the init, put -- before it: starter-init -- sleep 1');
    expect(await usageError(["-r", "15", "--", "x"])).toMatch(/expected FROM:TO/);
    expect(await usageError(["-r", "9:1", "--", "x"])).toMatch(/SIGKILL is never forwarded \(cannot be caught\)/);
    expect(await usageError(["-r", "15:33", "--", "x"])).toMatch(/"33" is not a signal/);
    expect(await usageError(["-p", "KILLME", "--", "x"])).toMatch(/--pdeath-signal: "KILLME" is not a signal/);
    expect(await usageError(["-c", "-g", "--", "x"])).toMatch(/contradict/);
    expect(await usageError(["-r", "15:3"])).toBe("--rewrite applies to a main program: starter-init [options] -- command");
    expect(await usageError(["--"])).toBe("nothing to run after --");
  });
});

// The fast paths of the parser (no yargs for the commonest starts) must answer what the parser answers.
describe("bareMainProgram", () => {
  it.each([
    [["--", "true"], {}],
    [["--", "sh", "-c", "exit 3"], {}],
    [["--", "app", "--port", "8080", "--", "x"], { STARTER_CONFIG: "/etc/app.yaml" }],
    [["--", "1000"], { PATH: "/bin" }],
    [["--", "prog"], { STARTER_CONFIG: "relative/config.yaml" }],
  ])("%j equals the parser's answer", async (argv, env) => {
    const fast = bareMainProgram(argv, env);
    expect(fast).not.toBeNull();
    // parseArgs takes the fast path itself: compare with the parser's own reading of the same words
    // after an option that changes nothing (--mount is the default).
    const parsed = await parseArgs(["--mount", ...argv], env, 2);
    expect(fast).toEqual(parsed);
  });

  it("leaves everything else to the parser, and tini's and dumb-init's variables", () => {
    for (const argv of [[], ["--"], ["-g", "--", "x"], ["run"], ["--help"], ["status"], ["x", "--", "y"]]) {
      expect(bareMainProgram(argv, {})).toBeNull();
    }
    for (const name of ["DUMB_INIT_DEBUG", "DUMB_INIT_SETSID", "TINI_KILL_PROCESS_GROUP", "TINI_VERBOSITY"]) {
      expect(bareMainProgram(["--", "x"], { [name]: "1" })).toBeNull();
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
