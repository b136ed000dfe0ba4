// starter-init as a drop-in for tini and dumb-init, with the built binary as PID 1 of a PID namespace:
// every catchable signal, -r rewriting, job control in a pseudo-terminal, the working directories,
// -p, and a quiet start. Where tini or dumb-init (Debian's) has the feature, the same steps run
// against it and the outcomes are compared.

import { describe, expect, it } from "vitest";
import fs from "node:fs";
import path from "node:path";
import { FORWARDED_SIGNALS, SIGRTMAX, SIGRTMIN } from "../../init/core/signals";
import { tangoConfig } from "./tango";
import { BINARY, ROOT, cleanEnv, readChildren, run, startAsPid1, tempDir, waitUntil, type Pid1Process } from "./helpers";

const PYTHON = "/usr/bin/python3";
const FIXTURES = path.join(ROOT, "test", "fixtures", "signals");
const REPORT = path.join(FIXTURES, "report.py");
const TINI = "/usr/bin/tini";
const DUMB_INIT = "/usr/bin/dumb-init";
const JOB_CONTROL = new Set([20, 21, 22]);
/** Ports of the console test's six TangoTest servers; STARTER_TEST_PORT_OFFSET moves them. */
const CONSOLE_BASE_PORT = 25600 + Number(process.env.STARTER_TEST_PORT_OFFSET ?? 0);

interface Init {
  name: string;
  binary: string;
  /** Words between the binary and the program. */
  words: (flags: string[]) => string[];
}

const STARTER: Init = { name: "starter-init", binary: BINARY, words: (flags) => [...flags, "--"] };
const TINI_INIT: Init = { name: "tini", binary: TINI, words: (flags) => [...flags, "--"] };
const DUMB: Init = { name: "dumb-init", binary: DUMB_INIT, words: (flags) => flags };

/** Starts report.py under an init as PID 1: it catches `catches`, exits 0 after `count` reports. */
function startReporter(init: Init, flags: string[], count: number, catches: readonly number[]): Pid1Process {
  return startAsPid1([...init.words(flags), PYTHON, REPORT, String(count), ...catches.map(String)], { binary: init.binary });
}

const reports = (running: Pid1Process) => [...running.stdout().matchAll(/^got (\d+)$/gm)].map((match) => Number(match[1]));

/**
 * Sends each signal to the init, one at a time, and waits (up to waitMs) until the program reported
 * one more; returns what it reported, in order.
 */
async function sendEach(running: Pid1Process, signals: readonly number[], waitMs = 5000): Promise<number[]> {
  await running.waitFor(/^ready$/m);
  const pid = await running.initPid();
  for (const signal of signals) {
    const before = reports(running).length;
    process.kill(pid, signal);
    await waitUntil(() => reports(running).length > before, `a report after signal ${signal}`, waitMs).catch(() => undefined);
  }
  return reports(running);
}

/** State letter of /proc/<pid>/stat ("T" when stopped). */
function stateOf(pid: number): string {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
}

describe("every catchable signal reaches the main program", () => {
  it("the list: 1–31 but KILL, STOP, CHLD and the synchronous faults, then SIGRTMIN…SIGRTMAX", () => {
    expect(FORWARDED_SIGNALS.filter((s) => s < 32)).toEqual([1, 2, 3, 10, 12, 13, 14, 15, 16, 18, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30]);
    expect(FORWARDED_SIGNALS.filter((s) => s >= 32)).toEqual(Array.from({ length: 31 }, (_, i) => 34 + i));
  });

  for (const flags of [[], ["-g"]]) {
    it(`exactly once each, in order${flags.length ? ` with ${flags.join(" ")}` : ""} (${FORWARDED_SIGNALS.length} signals)`, async () => {
      const init = startReporter(STARTER, flags, FORWARDED_SIGNALS.length, FORWARDED_SIGNALS);
      const got = await sendEach(init, FORWARDED_SIGNALS);
      const result = await init.result;
      expect(got).toEqual(FORWARDED_SIGNALS);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toBe("");
    }, 120_000);
  }

  it("the same as tini and dumb-init deliver, for every signal all three forward (job control aside)", async () => {
    const common = FORWARDED_SIGNALS.filter((s) => !JOB_CONTROL.has(s));
    const outcomes = await Promise.all(
      [STARTER, TINI_INIT, DUMB].map(async (init) => {
        const running = startReporter(init, [], common.length, common);
        const got = await sendEach(running, common);
        return { init: init.name, got, code: (await running.result).code };
      }),
    );
    for (const outcome of outcomes) expect(outcome, outcome.init).toEqual({ init: outcome.init, got: common, code: 0 });
  }, 180_000);

  it("a program that leaves SIGTSTP at its default is stopped by it and resumed by SIGCONT, as under tini and dumb-init", async () => {
    for (const init of [STARTER, TINI_INIT, DUMB]) {
      // The program catches only SIGCONT: a stop it did not ask to handle must still stop it.
      const running = startReporter(init, [], 1, [18]);
      await running.waitFor(/^ready$/m);
      const initPid = await running.initPid();
      const [programPid] = readChildren(initPid);
      process.kill(initPid, "SIGTSTP");
      await waitUntil(() => stateOf(programPid) === "T", `${init.name}: the program stops`, 5000);
      process.kill(initPid, "SIGCONT");
      const result = await running.result;
      expect({ init: init.name, got: reports(running), code: result.code }).toEqual({ init: init.name, got: [18], code: 0 });
    }
  }, 60_000);
});

describe("-r FROM:TO rewrites a signal before it is forwarded (dumb-init's -r)", () => {
  const cases: { flags: string[]; send: number[]; catches: number[]; expected: number[]; dumbInit: boolean }[] = [
    // Docker's TERM as nginx's graceful QUIT.
    { flags: ["-r", "15:3"], send: [15], catches: [3, 15], expected: [3], dumbInit: true },
    // To 0: dropped; the next signal shows nothing else arrived.
    { flags: ["-r", "15:0"], send: [15, 10], catches: [10, 15], expected: [10], dumbInit: true },
    // The lowest and highest numbers dumb-init takes (1–31).
    { flags: ["-r", "1:31", "-r", "30:1"], send: [1, 30], catches: [1, 30, 31], expected: [31, 1], dumbInit: true },
    // …and the real-time range, which only starter-init rewrites.
    { flags: ["-r", "1:64", "-r", "64:1", "-r", "34:64"], send: [1, 64, 34], catches: [1, 34, 64], expected: [64, 1, 64], dumbInit: false },
    // Names, in any case, with or without SIG; RTMIN±n / RTMAX±n.
    {
      flags: ["-r", "TERM:QUIT", "--rewrite", "sigusr1:SIGUSR2", "-r", "RTMAX-1:0", "-r", "SIGRTMIN+2:RTMIN"],
      send: [15, SIGRTMAX - 1, 10, SIGRTMIN + 2],
      catches: [3, 10, 12, 15, SIGRTMIN, SIGRTMAX - 1],
      expected: [3, 12, SIGRTMIN],
      dumbInit: false,
    },
  ];

  for (const c of cases) {
    it(`${c.flags.join(" ")}: ${c.send.join(", ")} arrive as ${c.expected.join(", ")}${c.dumbInit ? " (as with dumb-init)" : ""}`, async () => {
      for (const init of c.dumbInit ? [STARTER, DUMB] : [STARTER]) {
        const running = startReporter(init, c.flags, c.expected.length, c.catches);
        const got = await sendEach(running, c.send, 1500);
        const result = await running.result;
        expect({ init: init.name, got, code: result.code }).toEqual({ init: init.name, got: c.expected, code: 0 });
      }
    }, 60_000);
  }

  it("refuses what it cannot do, naming it", async () => {
    for (const [flags, message] of [
      [["-r", "9:15"], /SIGKILL is never forwarded \(cannot be caught\)/],
      [["-r", "17:15"], /SIGCHLD is never forwarded/],
      [["-r", "15"], /expected FROM:TO/],
      [["-r", "15:99"], /"99" is not a signal/],
      [["-p", "SIGNOPE"], /--pdeath-signal: "SIGNOPE" is not a signal/],
      [["-c", "-g"], /-c \(--single-child\) and -g \(--group\) contradict/],
      [["-l"], /unknown option -l/],
    ] as const) {
      const result = await run(BINARY, [...flags, "--", "true"], { env: cleanEnv() });
      expect(result.code, flags.join(" ")).toBe(2);
      expect(result.stderr, flags.join(" ")).toMatch(message);
    }
  });
});

describe("job control in a pseudo-terminal (an interactive bash runs the init as a job)", () => {
  const jobControl = async (words: string[]) => {
    const result = await run(PYTHON, [path.join(FIXTURES, "job_control.py"), ...words], { timeoutMs: 120_000, env: cleanEnv() });
    const outcome = JSON.parse(result.stdout) as Record<string, unknown>;
    const transcript = String(outcome.transcript);
    delete outcome.transcript;
    return { outcome, transcript };
  };
  const expected = { prompt: true, started: true, stopped: true, resumed: true, ended: true, code: 130 };

  for (const flags of [[], ["-c"]]) {
    it(`Ctrl-Z stops the job, fg resumes it (SIGCONT reaches the program), Ctrl-C ends it${flags.length ? ` (${flags.join(" ")})` : ""}: as with dumb-init`, async () => {
      const [ours, theirs] = await Promise.all([jobControl([BINARY, ...flags, "--"]), jobControl([DUMB_INIT, ...flags])]);
      expect(ours.outcome, ours.transcript).toEqual(expected);
      expect(theirs.outcome, theirs.transcript).toEqual(expected);
    }, 150_000);
  }
  it("as the session leader of a terminal (docker run -it): the program takes the terminal, Ctrl-C reaches it directly, the hand-over's SIGHUP/SIGCONT stay with the init: as dumb-init", async () => {
    const program = [
      "trap 'echo GOT-HUP' HUP; trap 'echo GOT-CONT' CONT; trap 'echo GOT-INT; exit 3' INT",
      // /dev/tty opens only for a process whose controlling terminal it is.
      ": < /dev/tty && echo HAS-TERMINAL",
      "echo CHILD-UP; while :; do sleep 0.1; done",
    ].join("; ");
    // Ctrl-C is typed once the program is up (and, for the init, once it has logged the kernel's
    // SIGCONT: under load its event loop may not have read the signal pipe yet when the program is up).
    const onTerminal = async (words: string[], waitFor: string[]) => {
      const waits = waitFor.flatMap((text) => ["--expect", text, "--type", ""]);
      const result = await run(
        PYTHON,
        [path.join(FIXTURES, "pty_run.py"), ...waits, "--expect", "CHILD-UP", "--type", "\\x03", "--timeout", "30", "--", ...words, "sh", "-c", program],
        {
          timeoutMs: 60_000,
          env: cleanEnv(),
        },
      );
      return JSON.parse(result.stdout) as { output: string; status: number | null };
    };
    const [ours, theirs] = await Promise.all([
      onTerminal([BINARY, "-v", "--log-format", "json", "--"], ['"signal":"SIGCONT"']),
      onTerminal([DUMB_INIT, "-v"], []),
    ]);
    for (const [name, outcome] of [
      ["starter-init", ours],
      ["dumb-init", theirs],
    ] as const) {
      expect(outcome.status, `${name}:\n${outcome.output}`).toBe(3);
      // The terminal echoes ^C on the line where GOT-INT then appears.
      const said = outcome.output.split("\n").flatMap((line) => /^(?:\^C)?(HAS-TERMINAL|GOT-\w+)$/.exec(line)?.slice(1) ?? []);
      expect(said, name).toEqual(["HAS-TERMINAL", "GOT-INT"]);
    }
    // The init saw the kernel's SIGHUP and SIGCONT (sent when it gave the terminal up) and kept them;
    // it forwarded nothing: Ctrl-C went from the terminal to the program.
    expect(ours.output).toMatch(/"signal":"SIGHUP".*raised by the kernel for the init's own doing/);
    expect(ours.output).toMatch(/"signal":"SIGCONT".*raised by the kernel for the init's own doing/);
    expect(ours.output).not.toContain('"msg":"forwarded"');
  }, 90_000);
});

describe("working directories", () => {
  it("the program runs in the caller's directory; the init itself is in / (as dumb-init; tini keeps the caller's)", async () => {
    const dir = tempDir("cwd");
    const outcomes: Record<string, { init: string; program: string }> = {};
    for (const init of [STARTER, DUMB, TINI_INIT]) {
      const running = startAsPid1([...init.words([]), "sh", "-c", "echo ready; exec sleep 30"], { binary: init.binary, cwd: dir });
      await running.waitFor("ready");
      const initPid = await running.initPid();
      const [programPid] = readChildren(initPid);
      // An init leaves the directory once the program is started, which may be a moment after the program talks.
      const initCwd = () => fs.readlinkSync(`/proc/${initPid}/cwd`);
      if (init !== TINI_INIT) await waitUntil(() => initCwd() !== dir, `${init.name} leaves ${dir}`, 5000).catch(() => undefined);
      outcomes[init.name] = { init: initCwd(), program: fs.readlinkSync(`/proc/${programPid}/cwd`) };
      running.unshare.kill("SIGKILL");
      await running.result;
    }
    expect(outcomes).toEqual({
      "starter-init": { init: "/", program: dir },
      "dumb-init": { init: "/", program: dir },
      tini: { init: dir, program: dir },
    });
  });
});

describe("-p SIGNAL: the init gets SIGNAL when its parent dies (tini's -p)", () => {
  it("and forwards it to the program, as tini does", async () => {
    for (const init of [STARTER, TINI_INIT]) {
      const running = startReporter(init, ["-p", "SIGUSR1"], 1, [10]);
      await running.waitFor(/^ready$/m);
      // unshare is the init's parent: it dies, the init gets SIGUSR1 and passes it on.
      running.unshare.kill("SIGKILL");
      await waitUntil(() => reports(running).length > 0, `${init.name}: the program reports`, 10_000);
      expect({ init: init.name, got: reports(running) }).toEqual({ init: init.name, got: [10] });
    }
  });
});

describe("a quiet start", () => {
  const unprivileged = ["--user", "--map-root-user"];

  it("`-- true` in an unprivileged user + PID namespace prints nothing on stderr (as tini and dumb-init)", async () => {
    for (const init of [STARTER, TINI_INIT, DUMB]) {
      const result = await startAsPid1([...init.words([]), "true"], { binary: init.binary, unshareArgs: unprivileged }).result;
      expect({ init: init.name, code: result.code, stderr: result.stderr, stdout: result.stdout }).toEqual({
        init: init.name,
        code: 0,
        stderr: "",
        stdout: "",
      });
    }
    // As a user without privileges on the host as well.
    const nobody = await run(
      "setpriv",
      ["--reuid=65534", "--regid=65534", "--clear-groups", "unshare", "--pid", "--fork", "--mount-proc", ...unprivileged, BINARY, "--", "true"],
      {
        env: cleanEnv(),
      },
    );
    expect({ code: nobody.code, stderr: nobody.stderr }).toEqual({ code: 0, stderr: "" });
  });

  it("with -v it tells what it did, what was refused among it", async () => {
    const result = await startAsPid1(["-v", "--log-format", "json", "--", "true"], { unshareArgs: unprivileged }).result;
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/"refused":\["setting oom_score_adj \(EACCES\)"\]/);
    expect(result.stderr).toContain("main program started");
  });

  it("-w warns of each orphan reaped (tini's -w)", async () => {
    const result = await startAsPid1(["-w", "--log-format", "json", "--", "sh", "-c", "sh -c 'sleep 0.2 &'; sleep 0.5"]).result;
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/"level":40,.*"msg":"reaped orphan pid \d+ \(exited with 0\)"/);
  });
});

describe("a supervisor on a console says each thing once", () => {
  it("six TangoTest servers over three levels: one console line per server event on boot and on shutdown", async () => {
    const dir = tempDir("console");
    const config = path.join(dir, "config.yaml");
    const { names } = tangoConfig({ file: config, basePort: CONSOLE_BASE_PORT, levels: [1, 1, 2, 2, 3, 3], socket: path.join(dir, "control.sock") });
    // On a pseudo-terminal, as a VM's console or `docker run -t` is; SIGTERM once the boot is complete.
    const result = await run(
      PYTHON,
      [
        path.join(FIXTURES, "pty_run.py"),
        "--expect",
        "boot complete",
        "--signal",
        "SIGTERM",
        "--timeout",
        "90",
        "--",
        "unshare",
        "--pid",
        "--fork",
        "--mount-proc",
        "--kill-child",
        BINARY,
        "--config",
        config,
      ],
      { timeoutMs: 120_000, env: cleanEnv() },
    );
    const { output, status } = JSON.parse(result.stdout) as { output: string; status: number | null };
    expect(status, output).toBe(0);
    const lines = output.split("\n").filter(Boolean);
    // Nothing but progress lines: the log's records (info and below) went to the file only.
    expect(
      lines.filter((line) => !line.startsWith("starter-init: [")),
      output,
    ).toEqual([]);
    for (const name of names) {
      const about = lines.filter((line) => line.includes(`] ${name} `));
      expect(about, output).toEqual([
        expect.stringMatching(new RegExp(`^starter-init: \\[  OK  \\] ${name} ready in \\d+ ms$`)),
        expect.stringMatching(new RegExp(`^starter-init: \\[ STOP \\] ${name} stopped: exited with code 0 after [\\d.]+ m?s$`)),
      ]);
    }
    // The supervisor's own events, once each.
    for (const event of [
      "[ BOOT ] boot: levels 1..3",
      "[ BOOT ] boot complete",
      "[ STOP ] shutdown: stopping 6 servers",
      "[ STOP ] every server has stopped",
    ]) {
      expect(
        lines.filter((line) => line === `starter-init: ${event}`),
        event,
      ).toHaveLength(1);
    }
    expect(lines).toHaveLength(names.length * 2 + 4);
    // Everything is in the file, as JSON records.
    const file = fs.readFileSync(path.join(dir, "starter-init", "starter-init.log"), "utf8");
    for (const kind of ["starting", "started", "ready", "stopping", "exited", "stopped"]) {
      expect(
        file.split("\n").filter((line) => line.includes(`"kind":"${kind}"`)),
        kind,
      ).toHaveLength(names.length);
    }
  }, 150_000);

  it("`logs starter-init` reads the init's own log file", async () => {
    const dir = tempDir("initlog");
    const config = path.join(dir, "config.yaml");
    const socket = path.join(dir, "control.sock");
    fs.writeFileSync(
      config,
      [
        "settings:",
        `  controlSocket: ${socket}`,
        `  logHome: ${dir}`,
        "servers:",
        "  - {name: sleeper, binary: /bin/sleep, args: '30', readiness: none, log: {console: false}}",
      ].join("\n"),
    );
    const running = startAsPid1(["--log-format", "json", "--config", config]);
    try {
      await running.waitFor('"kind":"boot-complete"');
      const logs = await run(BINARY, ["logs", "starter-init", "--socket", socket, "-n", "50"], { env: cleanEnv() });
      expect(logs.code, logs.stderr).toBe(0);
      expect(logs.stdout).toMatch(/^\S+Z INFO {2}sleeper ready in \d+ ms$/m);
      expect(logs.stdout).toMatch(/INFO {2}boot complete$/m);
      expect(fs.existsSync(path.join(dir, "starter-init.log"))).toBe(true);
    } finally {
      await running.signal("SIGTERM");
    }
    expect((await running.result).code).toBe(0);
  });
});
