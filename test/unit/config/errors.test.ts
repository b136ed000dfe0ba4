// Bad configurations: each problem is reported at its file:line:column with its field path, and all
// problems of a file are reported together.

import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, parseConfig } from "../../../init/config/loader";
import { fakeSystem } from "./fake-system";

const file = "etc/starter.yaml";

/** The error thrown for a configuration given as lines; fails the test when none is thrown. */
function configError(lines: string[]): ConfigError {
  try {
    parseConfig(lines.join("\n"), file, fakeSystem());
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error("expected a ConfigError, but the configuration loaded");
}

/** The lines of the error's message: one formatted problem each. */
const reported = (lines: string[]) => configError(lines).message.split("\n");

describe("configuration errors", () => {
  it("a YAML syntax error keeps the yaml library's line and column", () => {
    expect(reported(["settings:", "  startMode: [parallel", "servers: []"])).toEqual([
      `${file}:3:1: Flow sequence in block collection must be sufficiently indented and end with a ]`,
    ]);
  });

  it("a key given twice is a YAML error at the second one", () => {
    expect(reported(["servers:", "  - name: TangoTest/t1", "    level: 1", "    level: 2"])).toEqual([`${file}:4:5: Map keys must be unique`]);
  });

  it("an unknown key is reported at the key, with the closest known key", () => {
    expect(
      reported([
        "settings:",
        "  startmode: parallel",
        "  InterStartupLevelwait: 2",
        "  MovingMaxDuration: 120",
        "  colour: blue",
        "servers:",
        "  - name: TangoTest/t1",
        "    levle: 2",
      ]),
    ).toEqual([
      `${file}:2:3: settings.startmode: unknown key "startmode"; did you mean "startMode"?`,
      `${file}:3:3: settings.InterStartupLevelwait: unknown key "InterStartupLevelwait"; did you mean "InterStartupLevelWait"?`,
      `${file}:4:3: settings.MovingMaxDuration: unknown key "MovingMaxDuration": a Starter property with no equivalent in starter-init`,
      `${file}:5:3: settings.colour: unknown key "colour"`,
      `${file}:8:5: servers[0].levle: unknown key "levle"; did you mean "level"?`,
    ]);
  });

  it("an unknown top-level key does not hide the problems of the sections", () => {
    expect(reported(["setting: {}", "servers:", "  - name: TangoTest/t1", "    level: x"])).toEqual([
      `${file}:1:1: setting: unknown key "setting"; did you mean "settings"?`,
      `${file}:4:5: servers[0].level: expected an integer between 0 and 1000, got "x"`,
    ]);
  });

  it("a value of the wrong type says what was expected, bounded by NbStartupLevels when it is set", () => {
    expect(
      reported([
        "settings:",
        "  NbStartupLevels: 5",
        "  StartDsPath: /usr/lib/tango",
        "servers:",
        "  - name: TangoTest/t1",
        "  - name: TangoTest/t2",
        "  - name: TangoTest/t3",
        "    level: high",
        "    exclusive: yes",
        "    args: {a: 1}",
      ]),
    ).toEqual([
      `${file}:8:5: servers[2].level: expected an integer between 0 and 5 (settings.NbStartupLevels), got "high"`,
      `${file}:9:5: servers[2].exclusive: expected true or false, got "yes"`,
      `${file}:10:5: servers[2].args: expected a command: a list of words, or a string like "mkdir -p /var/tmp/x", got a mapping`,
    ]);
  });

  it("nested values: a mapping form narrowed to its field, an environment name, a path", () => {
    expect(
      reported([
        "settings:",
        "  env: {'A=B': x}",
        "servers:",
        "  - name: python3",
        "    restart: {mode: sometimes}",
        "    restart2: always",
        "    cwd: relative/dir",
        "  - name: python3-b",
        "    binary: python3",
        "    restart: sometimes",
      ]),
    ).toEqual([
      `${file}:2:9: settings.env["A=B"]: expected an environment variable name (no "="), got "A=B"`,
      `${file}:5:15: servers[0].restart.mode: expected one of "on-failure", "always", "never", got "sometimes"`,
      `${file}:6:5: servers[0].restart2: unknown key "restart2"; did you mean "restart"?`,
      `${file}:7:5: servers[0].cwd: expected an absolute path, got "relative/dir"`,
      `${file}:10:5: servers[1].restart: expected a restart mode ("on-failure", "always", "never") or a mapping {mode, initialDelay, factor, maxDelay, burst, resetAfter, minUptime}, got "sometimes"`,
    ]);
  });

  it("a missing required key is reported at its mapping", () => {
    expect(reported(["servers:", "  - name: web-ui", "    binary: /usr/local/bin/web-ui", "  - level: 1", "  - 5"])).toEqual([
      `${file}:4:5: servers[1].name: expected a name: "Server/instance" (Tango style) or a plain name, without spaces, but it is missing`,
      `${file}:5:5: servers[2]: expected a mapping, got 5`,
    ]);
  });

  it("a duplicate name is reported at the second server", () => {
    expect(
      reported(["settings: {searchPath: [/usr/lib/tango]}", "servers:", "  - name: TangoTest/t1", "  - name: TangoTest/t2", "  - name: TangoTest/t1"]),
    ).toEqual([`${file}:5:5: servers[2].name: duplicate name "TangoTest/t1": servers[0] has it already`]);
  });

  it("a dependency on an unknown server names the closest known one", () => {
    expect(
      reported([
        "settings: {searchPath: [/usr/lib/tango]}",
        "servers:",
        "  - name: TangoTest/t1",
        "  - name: TangoTest/t3",
        "    requires: [TangoTest/t1, TangoTest/t2]",
        "    after: DataBaseds/2",
      ]),
    ).toEqual([
      `${file}:5:30: servers[1].requires[1]: unknown server "TangoTest/t2"; did you mean "TangoTest/t1"?`,
      `${file}:6:5: servers[1].after[0]: unknown server "DataBaseds/2"`,
    ]);
  });

  it("a dependency cycle is named in full, at the first server's dependency", () => {
    expect(
      reported([
        "settings: {searchPath: [/usr/lib/tango]}",
        "servers:",
        "  - name: TangoTest/a",
        "    requires: [TangoTest/b]",
        "  - name: TangoTest/b",
        "    after: [TangoTest/c]",
        "  - name: TangoTest/c",
        "    requires: [TangoTest/a]",
        "  - name: TangoTest/d",
        "    requires: TangoTest/d",
      ]),
    ).toEqual([
      `${file}:4:16: servers[0].requires[0]: dependency cycle: TangoTest/a → TangoTest/b → TangoTest/c → TangoTest/a`,
      `${file}:10:5: servers[3].requires[0]: dependency cycle: TangoTest/d → TangoTest/d`,
    ]);
  });

  it("a level out of range: above maxLevel when it is set, else above 1000, and never negative", () => {
    expect(
      reported([
        "settings: {maxLevel: 2, searchPath: [/usr/lib/tango]}",
        "servers:",
        "  - {name: TangoTest/t1, level: 3}",
        "  - {name: TangoTest/t2, level: -1}",
        "  - {name: TangoTest/t3, level: 1.5}",
      ]),
    ).toEqual([
      `${file}:3:26: servers[0].level: expected an integer between 0 and 2 (settings.maxLevel), got 3`,
      `${file}:4:26: servers[1].level: expected an integer between 0 and 2 (settings.maxLevel), got -1`,
      `${file}:5:26: servers[2].level: expected an integer between 0 and 2 (settings.maxLevel), got 1.5`,
    ]);
    expect(reported(["servers:", "  - {name: TangoTest/t1, level: 1001}"])).toEqual([
      `${file}:2:26: servers[0].level: expected an integer between 0 and 1000, got 1001`,
    ]);
    expect(reported(["settings: {maxLevel: 0}"])).toEqual([`${file}:1:12: settings.maxLevel: expected an integer between 1 and 1000, got 0`]);
  });

  it("a bad signal name or number", () => {
    expect(reported(["settings:", "  defaults:", "    stopSignal: SIGFOO", "servers:", "  - name: TangoTest/t1", "    stopSignal: 99"])).toEqual([
      `${file}:3:5: settings.defaults.stopSignal: expected a signal name like "TERM" or "SIGTERM", or a number between 1 and 64, got "SIGFOO"`,
      `${file}:6:5: servers[0].stopSignal: expected a signal name like "TERM" or "SIGTERM", or a number between 1 and 64, got 99`,
    ]);
  });

  it("a binary not found names what was searched", () => {
    expect(
      reported([
        "settings:",
        "  searchPath: [/usr/lib/tango, /usr/local/bin]",
        "servers:",
        "  - name: TangoTst/t1",
        "  - name: web",
        "    binary: /opt/web/bin/web",
      ]),
    ).toEqual([
      `${file}:4:5: servers[0].name: TangoTst not found in /usr/lib/tango:/usr/local/bin`,
      `${file}:6:5: servers[1].binary: /opt/web/bin/web does not exist`,
    ]);
  });

  it("a binary that is not executable", () => {
    expect(
      reported(["settings:", "  StartDsPath: /usr/lib/tango", "servers:", "  - name: Broken/1", "  - name: notes", "    binary: /opt/tango/bin/notes.txt"]),
    ).toEqual([
      `${file}:4:5: servers[0].name: /usr/lib/tango/Broken is not executable (found looking up Broken in /usr/lib/tango)`,
      `${file}:6:5: servers[1].binary: /opt/tango/bin/notes.txt is not executable`,
    ]);
  });

  it("a bad readiness probe, in shorthand or as a mapping", () => {
    expect(
      reported([
        "settings: {searchPath: [/usr/lib/tango]}",
        "servers:",
        "  - name: TangoTest/t1",
        "    readiness: tcp:99999",
        "  - name: TangoTest/t2",
        "    readiness: {log: Ready, tcp: 5}",
        "  - name: TangoTest/t3",
        "    readiness: {log: Ready, interval: 5s}",
        "  - name: TangoTest/t4",
        "    readiness: ready",
        "  - name: TangoTest/t5",
        "    readiness: {lg: Ready}",
        "  - name: TangoTest/t6",
        "    readiness: 'log:/[/'",
        "  - name: TangoTest/t7",
        "    readiness: {notify: 1}",
      ]),
    ).toEqual([
      `${file}:4:5: servers[0].readiness: expected tcp: an address "[host:]port" with a port between 1 and 65535, got "tcp:99999"`,
      `${file}:6:29: servers[1].readiness.tcp: expected one probe kind, got both log and tcp`,
      `${file}:8:29: servers[2].readiness.interval: interval applies to a tcp or file or exec or tango probe, not to log`,
      `${file}:10:5: servers[3].readiness: expected a readiness probe: "none", "log:<text>", "log:/<regex>/", "notify:<fd>", "sd_notify", "tcp:[host:]port", "file:<absolute path>", "exec:<command>", "tango" or "tango:[host:]port", got "ready"`,
      `${file}:12:17: servers[4].readiness.lg: unknown key "lg"; did you mean "log"?`,
      `${file}:14:5: servers[5].readiness: expected log: a valid regular expression (Invalid regular expression: /[/: Unterminated character class), got "log:/[/"`,
      `${file}:16:17: servers[6].readiness.notify: expected a file descriptor number between 3 and 1023, got 1`,
    ]);
  });

  it("a bad duration, in native and Starter form", () => {
    expect(
      reported([
        "settings:",
        "  interLevelWait: 2 secs",
        "  shutdownTimeout: -5",
        "  ServerStartupTimeout: soon",
        "  AutoRestartDuration: -1",
        "servers:",
        "  - name: TangoTest/t1",
        "    startTimeout: '30'",
      ]),
    ).toEqual([
      `${file}:2:3: settings.interLevelWait: expected a duration: milliseconds as a number, or a string like "500ms", "2s", "1m" or "1m30s", got "2 secs"`,
      `${file}:3:3: settings.shutdownTimeout: expected a duration: milliseconds as a number, or a string like "500ms", "2s", "1m" or "1m30s", got -5`,
      `${file}:4:3: settings.ServerStartupTimeout: expected seconds as a number, or a duration string like "2s", got "soon"`,
      `${file}:5:3: settings.AutoRestartDuration: expected minutes as a number, or a duration string like "2s", got -1`,
      `${file}:8:5: servers[0].startTimeout: expected a duration: milliseconds as a number, or a string like "500ms", "2s", "1m" or "1m30s", got "30"`,
    ]);
  });

  it("a key given both in Starter and native form names both", () => {
    expect(
      reported([
        "settings:",
        "  interLevelWait: 1s",
        "  InterStartupLevelWait: 2",
        "  defaults:",
        "    log: {keep: 3}",
        "  KeepLogFiles: 4",
        "  EnableParallelStartup: true",
        "  startMode: parallel",
      ]),
    ).toEqual([
      `${file}:3:3: settings.InterStartupLevelWait: InterStartupLevelWait (Starter property) and interLevelWait set the same thing; give only one of them`,
      `${file}:6:3: settings.KeepLogFiles: KeepLogFiles (Starter property) and defaults.log.keep set the same thing; give only one of them`,
      `${file}:7:3: settings.EnableParallelStartup: EnableParallelStartup (Starter property) and startMode set the same thing; give only one of them`,
    ]);
  });

  it("a bad umask or resource limit", () => {
    expect(
      reported([
        "settings: {searchPath: [/usr/lib/tango]}",
        "servers:",
        "  - name: TangoTest/t1",
        "    umask: '0999'",
        "    rlimits: {nofiles: 3, core: {soft: 5, hard: 2}}",
        "  - name: TangoTest/t2",
        "    umask: 0o1777",
      ]),
    ).toEqual([
      `${file}:4:5: servers[0].umask: expected a umask: an octal string like "022" or "0027", or a number from 0 to 0o777, got "0999"`,
      `${file}:5:15: servers[0].rlimits.nofiles: expected a resource limit name: as, core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack (optionally with RLIMIT_), got "nofiles"`,
      `${file}:5:27: servers[0].rlimits.core: the soft limit (5) is above the hard limit (2)`,
      `${file}:7:5: servers[1].umask: expected a umask: an octal string like "022" or "0027", or a number from 0 to 0o777, got 1023`,
    ]);
  });

  it("an unknown user or group, and a numeric user without a group", () => {
    expect(
      reported([
        "settings: {searchPath: [/usr/lib/tango]}",
        "servers:",
        "  - name: TangoTest/t1",
        "    user: nobody",
        "    group: staff",
        "  - name: TangoTest/t2",
        "    user: 1234",
      ]),
    ).toEqual([
      `${file}:4:5: servers[0].user: user "nobody" not found in /etc/passwd`,
      `${file}:5:5: servers[0].group: group "staff" not found in /etc/group`,
      `${file}:7:5: servers[1].user: user 1234 has no entry in /etc/passwd to take its group from; give group too`,
    ]);
  });

  it("a command line with shell syntax, and an empty command", () => {
    expect(reported(["servers:", "  - name: python3", "    preStart: echo hi | cat", "    postStop: []"])).toEqual([
      `${file}:3:5: servers[0].preStart: expected a simple command line (shell syntax "|"); for anything more, give a list such as ["/bin/sh", "-c", "..."], got "echo hi | cat"`,
      `${file}:4:5: servers[0].postStop: expected a command, got an empty list`,
    ]);
  });

  it("a key brought in by a YAML merge is reported where the anchor has it", () => {
    expect(reported(["x-common: &common", "  stopTimeout: soon", "servers:", "  - <<: *common", "    name: python3"])).toEqual([
      `${file}:2:3: servers[0].stopTimeout: expected a duration: milliseconds as a number, or a string like "500ms", "2s", "1m" or "1m30s", got "soon"`,
    ]);
  });

  it("reports every problem of the file together, in file order", () => {
    const error = configError([
      "settings:",
      "  searchPath: [/usr/lib/tango]",
      "servers:",
      "  - name: TangoTest/t1",
      "    colour: blue",
      "    stopSignal: TERMINATE",
      "  - name: Missing/m1",
      "    requires: [TangoTest/t9]",
      "  - name: TangoTest/t1",
    ]);
    expect(error.problems).toHaveLength(5);
    expect(error.message).toBe(
      [
        `${file}:5:5: servers[0].colour: unknown key "colour"`,
        `${file}:6:5: servers[0].stopSignal: expected a signal name like "TERM" or "SIGTERM", or a number between 1 and 64, got "TERMINATE"`,
        `${file}:7:5: servers[1].name: Missing not found in /usr/lib/tango`,
        `${file}:8:16: servers[1].requires[0]: unknown server "TangoTest/t9"; did you mean "TangoTest/t1"?`,
        `${file}:9:5: servers[2].name: duplicate name "TangoTest/t1": servers[0] has it already`,
      ].join("\n"),
    );
    expect(error).toMatchObject({ file, line: 5, column: 5, path: "servers[0].colour" });
    expect(error.problems[3]).toEqual({
      file,
      line: 8,
      column: 16,
      path: "servers[1].requires[0]",
      message: 'unknown server "TangoTest/t9"; did you mean "TangoTest/t1"?',
    });
  });

  it("a file that cannot be read is a ConfigError too", () => {
    expect(() => loadConfig("etc/none.yaml", fakeSystem())).toThrow(
      new ConfigError([
        { file: "etc/none.yaml", line: 1, column: 1, path: "", message: "cannot read the file: ENOENT: no such file or directory, open 'etc/none.yaml'" },
      ]),
    );
    expect(() => loadConfig("etc/none.yaml", fakeSystem())).toThrow(
      "etc/none.yaml:1:1: cannot read the file: ENOENT: no such file or directory, open 'etc/none.yaml'",
    );
  });

  it("an alias to an unknown anchor", () => {
    expect(reported(["servers:", "  - name: *nope"])).toEqual([`${file}:1:1: Unresolved alias (the anchor must be set before the alias): nope`]);
  });

  it("a document that is not a mapping", () => {
    expect(reported(["- a", "- b"])).toEqual([`${file}:1:1: expected a mapping, got a list`]);
  });

  it('settings.http.listen: a port alone binds 127.0.0.1; every interface only when written; ":port" is refused', () => {
    const listen = (value: string) => parseConfig(["settings:", "  http:", `    listen: ${value}`, "servers: []"].join("\n"), file, fakeSystem()).settings.http;
    expect(listen("9150")).toEqual({ listen: { host: "127.0.0.1", port: 9150 } });
    expect(listen('"0.0.0.0:9150"')).toEqual({ listen: { host: "0.0.0.0", port: 9150 } });
    expect(listen('"[::1]:9150"')).toEqual({ listen: { host: "::1", port: 9150 } });
    expect(parseConfig("servers: []", file, fakeSystem()).settings.http).toBeUndefined();
    expect(reported(["settings:", "  http:", '    listen: ":9150"', "    port: 1", "servers: []"])).toEqual([
      `${file}:3:5: settings.http.listen: expected an address "[host:]port": the host is 127.0.0.1 unless written (e.g. "0.0.0.0:9150" for every interface), got ":9150"`,
      `${file}:4:5: settings.http.port: unknown key "port"`,
    ]);
  });
});
