// Which mappings the init unmaps after its start: the executable's read-only pages, and never a
// page that differs from the file (a writable mapping, or one with private copies such as RELRO).

import { describe, expect, it } from "vitest";
import { executableRanges } from "../../../init/runtime/memory";

const EXE = "/sbin/starter-init";

function mapping(range: string, perms: string, path: string, anonymousKb: number): string {
  return [
    `${range} ${perms} 00000000 fd:00 1234 ${path}`,
    "Size:               8192 kB",
    "Rss:                4096 kB",
    `Anonymous:          ${anonymousKb} kB`,
    "VmFlags: rd mr mw me",
  ].join("\n");
}

describe("executableRanges", () => {
  it("keeps read-only file mappings of the executable without private pages", () => {
    const smaps = [
      mapping("00400000-00b6f000", "r--p", EXE, 0),
      mapping("00b72000-025fe000", "r-xp", EXE, 0),
      mapping("05639000-0563a000", "r--p", EXE, 4), // RELRO: relocated, differs from the file
      mapping("0563a000-0565d000", "rw-p", EXE, 140),
      mapping("0d290000-0dac0000", "r--p", EXE, 0),
      mapping("7f0000000000-7f0000100000", "r-xp", "/usr/lib/x86_64-linux-gnu/libc.so.6", 0),
      mapping("7f0000200000-7f0000300000", "rw-p", "", 1024),
    ].join("\n");
    expect(executableRanges(smaps, EXE)).toEqual([
      { start: 0x400000, length: 0xb6f000 - 0x400000 },
      { start: 0xb72000, length: 0x25fe000 - 0xb72000 },
      { start: 0xd290000, length: 0xdac0000 - 0xd290000 },
    ]);
  });

  it("finds nothing for another file or an empty text", () => {
    expect(executableRanges(mapping("00400000-00500000", "r--p", "/usr/bin/node", 0), EXE)).toEqual([]);
    expect(executableRanges("", EXE)).toEqual([]);
  });
});
