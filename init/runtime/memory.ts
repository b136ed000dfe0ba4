// Memory only the init's start needed, given back once it has started.
//
// The executable is ~90 MiB (node, the snapshot, the addon); a start reads tens of MiB of it
// (deserializing the snapshot, bootstrapping Node), and those pages then stay mapped, counted in the
// init's RSS, though the running init uses a fraction of them. A second after the start the init
// unmaps its executable's read-only file pages (madvise MADV_DONTNEED: their content stays in the
// page cache, and a page used again is mapped again on its next access, unchanged) and hands malloc's
// free memory back (malloc_trim). Writable or anonymous mappings are never touched: there the advice
// would discard data.

import fs from "node:fs";
import { native } from "../native";
import type { Logger } from "../log/logger";

const RELEASE_AFTER_MS = 1000;

export interface Range {
  start: number;
  length: number;
}

/**
 * Mappings of the file `exe` in a /proc/PID/smaps text that are read-only and hold no private copy
 * of any page: after relocation the loader makes part of the data segment read-only (RELRO), and
 * those pages differ from the file.
 */
export function executableRanges(smaps: string, exe: string): Range[] {
  const ranges: Range[] = [];
  let current: (Range & { keep: boolean }) | null = null;
  const close = () => {
    if (current?.keep) ranges.push({ start: current.start, length: current.length });
    current = null;
  };
  for (const line of smaps.split("\n")) {
    // A mapping's header: address perms offset dev inode pathname; then "Key: value" lines.
    const header = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \d+ *(.*)$/.exec(line);
    if (header) {
      close();
      const start = parseInt(header[1], 16);
      current = { start, length: parseInt(header[2], 16) - start, keep: header[4] === exe && header[3][1] !== "w" };
    } else if (current && /^Anonymous:\s+[1-9]/.test(line)) {
      current.keep = false;
    }
  }
  close();
  return ranges;
}

/** Unmaps those pages of the executable and trims malloc; returns the bytes advised. */
export function releaseStartupMemory(): number {
  const exe = fs.readlinkSync("/proc/self/exe");
  let bytes = 0;
  for (const range of executableRanges(fs.readFileSync("/proc/self/smaps", "utf8"), exe)) {
    native().madvise(range.start, range.length, "dontneed");
    bytes += range.length;
  }
  native().mallocTrim();
  return bytes;
}

/** Releases the start's memory a second from now (the timer does not keep the init alive). */
export function releaseStartupMemoryLater(log: Logger): void {
  setTimeout(() => {
    try {
      const bytes = releaseStartupMemory();
      log.debug({ bytes }, "start-up pages of the executable released");
    } catch (err) {
      log.debug({ code: (err as NodeJS.ErrnoException).code ?? String(err) }, "releasing start-up memory failed");
    }
  }, RELEASE_AFTER_MS).unref();
}
