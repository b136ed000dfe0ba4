// `logs`: the last lines of a server's output, and following it.
//
// A server with a log file is read from the file (and its rotated copy `.1` when the file alone is
// too short): the file also holds the init's notes ("started pid 12", "exited with code 1"). A server
// without a file is answered from the lines the init keeps in memory (the last MEMORY_LINES).
// Following streams each new line as it arrives from the server's pipes.

import fs from "node:fs/promises";
import type { Engine } from "../runtime/engine";
import type { LogLineEvent } from "./protocol";

const MEMORY_LINES = 1000;
const MEMORY_BYTES = 512 * 1024;
/** A tail never reads more than this much of a file. */
const MAX_TAIL_BYTES = 8 * 1024 * 1024;
const CHUNK = 64 * 1024;

type Follower = (event: LogLineEvent) => void;

class Ring {
  private readonly lines: string[] = [];
  private bytes = 0;

  push(line: string): void {
    this.lines.push(line);
    this.bytes += line.length;
    while (this.lines.length > MEMORY_LINES || (this.bytes > MEMORY_BYTES && this.lines.length > 1)) {
      this.bytes -= this.lines.shift()!.length;
    }
  }

  last(n: number): string[] {
    return n === 0 ? [] : this.lines.slice(-n);
  }
}

export class LogTaps {
  private readonly rings = new Map<string, Ring>();
  private readonly followers = new Map<string, Set<Follower>>();

  constructor(engine: Engine) {
    engine.onOutput((name, line, stream, at) => this.push(name, `${at} ${line}`, stream));
    // The lines of servers a reload removed go with them (at the next reload: a removed server stays
    // until it has stopped), so that servers coming and going do not pile up memory.
    engine.onEvent((event) => {
      if (event.type !== "config-reloaded") return;
      for (const name of this.rings.keys()) if (!engine.sup.servers.has(name)) this.rings.delete(name);
    });
  }

  /** A line with its time stamp, as the server's log file has it. */
  private push(name: string, line: string, stream: LogLineEvent["stream"]): void {
    let ring = this.rings.get(name);
    if (!ring) this.rings.set(name, (ring = new Ring()));
    ring.push(line);
    for (const follower of this.followers.get(name) ?? []) {
      try {
        follower({ line, stream });
      } catch {
        // A follower's connection trouble is its own; the output goes on.
      }
    }
  }

  follow(name: string, follower: Follower): () => void {
    let set = this.followers.get(name);
    if (!set) this.followers.set(name, (set = new Set()));
    set.add(follower);
    return () => set.delete(follower);
  }

  memory(name: string, n: number): string[] {
    return this.rings.get(name)?.last(n) ?? [];
  }
}

/** The last n lines of a file and, when it holds fewer, of its rotated copy before it. */
export async function tailFile(file: string, n: number): Promise<string[]> {
  if (n === 0) return [];
  const lines = await tailOne(file, n);
  if (lines.length >= n) return lines;
  const older = await tailOne(`${file}.1`, n - lines.length).catch(() => []);
  return [...older, ...lines];
}

async function tailOne(file: string, n: number): Promise<string[]> {
  const handle = await fs.open(file, "r");
  try {
    const { size } = await handle.stat();
    const chunks: Buffer[] = [];
    let position = size;
    let newlines = 0;
    let read = 0;
    // Read backwards until n+1 newlines are seen (the file ends with one), the start, or the cap.
    while (position > 0 && newlines <= n && read < MAX_TAIL_BYTES) {
      const length = Math.min(CHUNK, position);
      position -= length;
      const buffer = Buffer.alloc(length);
      await handle.read(buffer, 0, length, position);
      chunks.unshift(buffer);
      read += length;
      for (const byte of buffer) if (byte === 10) newlines++;
    }
    const lines = Buffer.concat(chunks).toString("utf8").split("\n");
    if (lines.at(-1) === "") lines.pop();
    // The first piece may be the end of a longer line cut by the read: drop it unless at the start.
    if (position > 0) lines.shift();
    return lines.slice(-n);
  } finally {
    await handle.close();
  }
}
