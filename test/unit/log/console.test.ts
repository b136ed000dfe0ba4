// The console's account of events: one line per event, an exit told with what follows from it.
import { afterEach, describe, expect, it } from "vitest";
import { ConsoleReport } from "../../../init/log/console";
import { initLog } from "../../../init/log/init-log";

function report(): { console: ConsoleReport; lines: string[] } {
  const lines: string[] = [];
  return { console: new ConsoleReport((text) => lines.push(text.replace(/\n$/, ""))), lines };
}

describe("console lines", () => {
  afterEach(() => {
    initLog.eventLines = false;
  });

  it("print nothing, and mark nothing, when nobody reads a console (JSON on stderr by default)", () => {
    initLog.eventLines = false;
    const { console, lines } = report();
    expect(console.event("a", "ready", "ready in 5 ms")).toBe(false);
    console.endStep();
    expect(lines).toEqual([]);
  });

  it("tell a stop in one line: the exit goes with the `stopped` of the same step", () => {
    initLog.eventLines = true;
    const { console, lines } = report();
    expect(console.event("a", "stopping", "stopping")).toBe(false);
    console.endStep();
    expect(console.event("a", "exited", "exited with code 0 after 2.0 s")).toBe(true);
    expect(console.event("a", "stopped", "stopped")).toBe(true);
    console.endStep();
    expect(lines).toEqual(["starter-init: [ STOP ] a stopped: exited with code 0 after 2.0 s"]);
  });

  it("tell a crash and its restart in one line, a failure with its cause", () => {
    initLog.eventLines = true;
    const { console, lines } = report();
    console.event("a", "exited", "killed by SIGKILL after 3.0 s");
    console.event("a", "restarting", "restarting in 500 ms");
    console.event("b", "exited", "exited with code 1 after 10 ms");
    console.event("b", "failed", "failed: burst");
    console.endStep();
    expect(lines).toEqual([
      "starter-init: [ EXIT ] a killed by SIGKILL after 3.0 s; restarting in 500 ms",
      "starter-init: [FAILED] b exited with code 1 after 10 ms; failed: burst",
    ]);
  });

  it("give an exit nothing followed from (a restart asked for) its own line at the end of the step", () => {
    initLog.eventLines = true;
    const { console, lines } = report();
    console.event("a", "exited", "exited with code 0 after 1.0 s");
    expect(console.event("a", "starting", "starting")).toBe(false);
    console.endStep();
    expect(lines).toEqual(["starter-init: [ EXIT ] a exited with code 0 after 1.0 s"]);
  });

  it("tell the supervisor's own events, and nothing for kinds without a mark", () => {
    initLog.eventLines = true;
    const { console, lines } = report();
    console.event(null, "boot", "boot: levels 1..3");
    expect(console.event(null, "config-reloaded", "config reloaded")).toBe(false);
    console.event(null, "boot-complete", "boot complete");
    expect(lines).toEqual(["starter-init: [ BOOT ] boot: levels 1..3", "starter-init: [ BOOT ] boot complete"]);
  });
});
