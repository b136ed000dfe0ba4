// Output of a supervised server: its stdout/stderr pipes are always drained (a server must never block
// on a full pipe because the init is busy or a disk is full), split into whole lines, written to a
// per-server log file rotated by size, and mirrored to the console with a "Server/instance" prefix.
//
// Lines are only ever written whole, each batch with one write(2), from the single JS thread: output
// of different servers never interleaves mid-line. A line longer than maxLineBytes is cut with a marker.

import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import type { LogSettings } from "../core/types";
import { writeAll } from "./logger";

/** Server lines mirrored to the console go to the init's stdout. */
const CONSOLE_FD = 1;

export const CUT_MARKER = " …[line cut]";

export type OutputStream = "stdout" | "stderr";
/** A line as the server wrote it, and when it arrived (ISO 8601: the stamp of its log file line). */
export type LineListener = (line: string, stream: OutputStream, at: string) => void;

/** The read end of a pipe as a stream (net.Socket in the init; a fake in the engine's tests). Destroying it closes the fd. */
export interface PipeReader {
  on(event: "data", listener: (chunk: Buffer) => void): unknown;
  on(event: "error", listener: (err: Error) => void): unknown;
  once(event: "close", listener: () => void): unknown;
  destroy(): void;
  /** Stops reading, and gives what was read meanwhile but not delivered yet (net.Socket's pause and read). */
  pause?(): unknown;
  resume?(): unknown;
  read?(): Buffer | null;
}
export type PipeOpener = (fd: number) => PipeReader;

/** A non-blocking pipe fd drained on the event loop. */
export const openPipe: PipeOpener = (fd) => new net.Socket({ fd, readable: true, writable: false });

/** Splits a byte stream into lines; overlong lines are cut and the rest up to the newline dropped. */
export class LineSplitter {
  private partial: Buffer[] = [];
  private partialBytes = 0;
  private discarding = false;

  constructor(private readonly maxLineBytes: number) {}

  /** Feeds a chunk; returns the complete lines it finished (without newlines). */
  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let start = 0;
    while (start < chunk.length) {
      const newline = chunk.indexOf(10, start);
      const end = newline === -1 ? chunk.length : newline;
      this.append(chunk.subarray(start, end), lines);
      if (newline === -1) break;
      if (!this.discarding) lines.push(this.take());
      this.discarding = false;
      start = newline + 1;
    }
    return lines;
  }

  /** The bytes of a line begun and not ended yet (and whether they are the dropped rest of a cut line): a re-executed init goes on from there. */
  get pending(): { partial: Buffer; discarding: boolean } {
    return { partial: Buffer.concat(this.partial, this.partialBytes), discarding: this.discarding };
  }

  /** Goes on from pending (of another splitter, in the init before a reexec). */
  restore(pending: { partial: Buffer; discarding: boolean }): void {
    this.partial = pending.partial.length > 0 ? [Buffer.from(pending.partial)] : [];
    this.partialBytes = pending.partial.length;
    this.discarding = pending.discarding;
  }

  /** What is left at end of stream, as a last line (or null). */
  end(): string | null {
    if (this.discarding || this.partialBytes === 0) {
      this.discarding = false;
      this.partial = [];
      this.partialBytes = 0;
      return null;
    }
    return this.take();
  }

  private append(piece: Buffer, lines: string[]): void {
    if (this.discarding || piece.length === 0) return;
    const room = this.maxLineBytes - this.partialBytes;
    if (piece.length <= room) {
      this.partial.push(Buffer.from(piece));
      this.partialBytes += piece.length;
      return;
    }
    this.partial.push(Buffer.from(piece.subarray(0, room)));
    this.partialBytes += room;
    lines.push(this.take() + CUT_MARKER);
    this.discarding = true;
  }

  private take(): string {
    const text = Buffer.concat(this.partial, this.partialBytes).toString("utf8");
    this.partial = [];
    this.partialBytes = 0;
    return text.endsWith("\r") ? text.slice(0, -1) : text;
  }
}

/** A log file that rotates by size: file → file.1 → … → file.<keep>; writes never throw. */
export class RotatingFile {
  private fd: number | null = null;
  private size = 0;
  /** Bytes dropped because the file could not be written (disk full, read-only, …). */
  dropped = 0;
  lastError: string | null = null;

  constructor(
    readonly file: string,
    private readonly maxBytes: number,
    private readonly keep: number,
  ) {}

  write(text: string): void {
    // Encoded once: its length decides rotation and the same bytes are written.
    const buffer = Buffer.from(text);
    const bytes = buffer.length;
    if (this.fd !== null && this.maxBytes > 0 && this.size + bytes > this.maxBytes && this.size > 0) this.rotate();
    if (this.fd === null && !this.open()) {
      this.dropped += bytes;
      return;
    }
    if (writeAll(this.fd!, buffer)) {
      this.size += bytes;
    } else {
      this.dropped += bytes;
      this.lastError = "write failed";
    }
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }

  private open(): boolean {
    try {
      fs.mkdirSync(path.dirname(this.file), { recursive: true });
      this.fd = fs.openSync(this.file, "a", 0o644);
      this.size = fs.fstatSync(this.fd).size;
      return true;
    } catch (err) {
      this.lastError = (err as NodeJS.ErrnoException).code ?? String(err);
      return false;
    }
  }

  private rotate(): void {
    this.close();
    try {
      if (this.keep <= 0) {
        fs.rmSync(this.file, { force: true });
        return;
      }
      fs.rmSync(`${this.file}.${this.keep}`, { force: true });
      for (let index = this.keep - 1; index >= 1; index--) {
        if (fs.existsSync(`${this.file}.${index}`)) fs.renameSync(`${this.file}.${index}`, `${this.file}.${index + 1}`);
      }
      fs.renameSync(this.file, `${this.file}.1`);
    } catch (err) {
      this.lastError = (err as NodeJS.ErrnoException).code ?? String(err);
    }
  }
}

/** A pipe being drained, as a re-executed init takes it over: its fd, and the line begun on it. */
export interface CapturedPipe {
  fd: number;
  stream: OutputStream;
  /** Base64 of the bytes of the unfinished line. */
  partial: string;
  discarding: boolean;
}

interface DrainedPipe {
  fd: number;
  stream: OutputStream;
  splitter: LineSplitter;
}

/** Drains a server's output pipes; see the file comment. */
export class ServerOutput {
  /** The pipes being drained: of the current process, and of earlier ones until their last writer is gone. */
  private readonly sockets = new Map<PipeReader, DrainedPipe>();
  private readonly listeners = new Set<LineListener>();
  private readonly file: RotatingFile | null;
  private closed = false;

  constructor(
    readonly name: string,
    readonly settings: LogSettings,
    private readonly open: PipeOpener = openPipe,
  ) {
    this.file = settings.file ? new RotatingFile(settings.file, settings.maxBytes, settings.keep) : null;
  }

  /** Starts draining a pipe fd (non-blocking) of the given stream. */
  attach(fd: number, stream: OutputStream, pending?: { partial: Buffer; discarding: boolean }): void {
    if (fd < 0) return;
    const splitter = new LineSplitter(this.settings.maxLineBytes);
    if (pending) splitter.restore(pending);
    const socket = this.open(fd);
    socket.on("data", (chunk: Buffer) => this.emit(splitter.push(chunk), stream));
    const finish = () => {
      this.sockets.delete(socket);
      const last = splitter.end();
      if (last !== null) this.emit([last], stream);
    };
    socket.once("close", finish);
    socket.on("error", () => socket.destroy());
    this.sockets.set(socket, { fd, stream, splitter });
  }

  /**
   * Before a reexec: stops reading every pipe, writes out the whole lines read so far, and returns
   * each pipe with the line begun on it. The pipes stay open (resume() reads on, if the exec fails).
   */
  capture(): CapturedPipe[] {
    const captured: CapturedPipe[] = [];
    for (const [socket, pipe] of this.sockets) {
      socket.pause?.();
      for (let chunk = socket.read?.() ?? null; chunk !== null; chunk = socket.read?.() ?? null) this.emit(pipe.splitter.push(chunk), pipe.stream);
      const { partial, discarding } = pipe.splitter.pending;
      captured.push({ fd: pipe.fd, stream: pipe.stream, partial: partial.toString("base64"), discarding });
    }
    return captured;
  }

  /** Reads on after capture() (the exec failed). */
  resume(): void {
    for (const socket of this.sockets.keys()) socket.resume?.();
  }

  /** The pipes of the init before a reexec, drained on from where it stopped. */
  adopt(pipes: readonly CapturedPipe[]): void {
    for (const pipe of pipes) this.attach(pipe.fd, pipe.stream, { partial: Buffer.from(pipe.partial, "base64"), discarding: pipe.discarding });
  }

  get openPipes(): number {
    return this.sockets.size;
  }

  get lineListeners(): number {
    return this.listeners.size;
  }

  onLine(listener: LineListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** A line the supervisor writes into the server's own log (e.g. "started pid 12"). */
  note(text: string): void {
    if (!this.closed) this.file?.write(`${timestamp()} [starter-init] ${text}\n`);
  }

  /** Closes the pipes and the log file for good (a replaced or removed server's output). */
  close(): void {
    this.closed = true;
    for (const socket of this.sockets.keys()) socket.destroy();
    this.sockets.clear();
    this.listeners.clear();
    this.file?.close();
  }

  private emit(lines: string[], stream: OutputStream): void {
    if (lines.length === 0 || this.closed) return;
    // The lines of one read arrived together: one time stamp for them all.
    const at = timestamp();
    if (this.file) this.file.write(lines.map((line) => `${at} ${line}\n`).join(""));
    if (this.settings.console) writeAll(CONSOLE_FD, lines.map((line) => `${this.name} | ${line}\n`).join(""));
    for (const listener of this.listeners) {
      for (const line of lines) listener(line, stream, at);
    }
  }
}

function timestamp(): string {
  return new Date().toISOString();
}
