import { describe, expect, it } from "vitest";
import { FORWARDED_SIGNALS, NOT_FORWARDED, parseSignal, signalName, SIGRTMAX, SIGRTMIN } from "../../../init/core/signals";

describe("signal names and numbers", () => {
  it("reads numbers, names in any case with or without SIG, and RTMIN±n / RTMAX±n", () => {
    expect(parseSignal("15")).toBe(15);
    expect(parseSignal("TERM")).toBe(15);
    expect(parseSignal("sigterm")).toBe(15);
    expect(parseSignal(" SIGusr1 ")).toBe(10);
    expect(parseSignal("RTMIN")).toBe(SIGRTMIN);
    expect(parseSignal("SIGRTMIN+3")).toBe(SIGRTMIN + 3);
    expect(parseSignal("rtmax-2")).toBe(SIGRTMAX - 2);
    expect(parseSignal("64")).toBe(64);
  });

  it("refuses what names no signal: 0 unless asked for, glibc's 32 and 33, beyond 64, RTMIN beyond RTMAX, nonsense", () => {
    expect(parseSignal("0")).toBeNull();
    expect(parseSignal("0", true)).toBe(0);
    expect(parseSignal("32")).toBeNull();
    expect(parseSignal("33")).toBeNull();
    expect(parseSignal("65")).toBeNull();
    expect(parseSignal("RTMIN+31")).toBeNull();
    expect(parseSignal("RTMAX+1")).toBeNull();
    expect(parseSignal("NOPE")).toBeNull();
    expect(parseSignal("-1")).toBeNull();
    expect(parseSignal("")).toBeNull();
  });

  it("names real-time signals as people write them", () => {
    expect(signalName(9)).toBe("SIGKILL");
    expect(signalName(SIGRTMIN)).toBe("SIGRTMIN");
    expect(signalName(SIGRTMIN + 1)).toBe("SIGRTMIN+1");
    expect(signalName(SIGRTMAX)).toBe("SIGRTMAX");
    expect(signalName(99)).toBe("signal 99");
  });

  it("forwards every catchable signal but the ones an init keeps, each named with a reason", () => {
    expect(FORWARDED_SIGNALS).toHaveLength(31 - NOT_FORWARDED.size + (SIGRTMAX - SIGRTMIN + 1));
    for (const signal of NOT_FORWARDED.keys()) expect(FORWARDED_SIGNALS).not.toContain(signal);
    expect([...NOT_FORWARDED.keys()].map(signalName).sort()).toEqual(
      ["SIGABRT", "SIGBUS", "SIGCHLD", "SIGFPE", "SIGILL", "SIGKILL", "SIGSEGV", "SIGSTOP", "SIGSYS", "SIGTRAP"].sort(),
    );
  });
});
