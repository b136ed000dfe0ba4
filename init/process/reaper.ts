// The one reaper that owns every exit (design §3).
//
// The addon's SIGCHLD handler reaps with waitpid and writes an 8-byte record {int32 pid, int32
// status} per child into a self-pipe, in batches; here the pipe's read end is a net.Socket on the
// event loop, and each read is decoded as a whole through an Int32Array. Children we spawned are
// matched by pid and their waiter is called; everything else is an orphan that has simply been
// reaped and is counted (no object is made for it). Nothing in the init may use Node's
// child-process module: libuv would reap its own children by pid and race this reaper for their
// statuses.

import fs from "node:fs";
import net from "node:net";
import { native } from "../native";
import { decodeStatus, type ExitRecord } from "./exit";

const RECORD_BYTES = 8;
const EMPTY = Buffer.alloc(0);
/** Orphans remembered for claim(): a daemon is claimed within moments of its launcher's exit. */
const RECENT_ORPHANS = 64;

export type ExitListener = (exit: ExitRecord) => void;

export class Reaper {
  private readonly waiters = new Map<number, ExitListener>();
  /** Pids whose exec failed: their exit is expected and carries no news. */
  private readonly discarded = new Set<number>();
  private pending = EMPTY;
  private socket: net.Socket | null = null;
  /** Orphans reaped since start (processes we did not spawn). */
  orphansReaped = 0;
  /** Called with the exit of each orphan reaped, when set (tini -w warns about every one). */
  onOrphan: ExitListener | null = null;
  /**
   * The last orphans reaped, so that a daemon found after it ended (its launcher reparented it to us,
   * it died before anyone claimed it) still has its exit told: see claim().
   */
  /** pid → raw wait status of the last orphans, oldest first (decoded only when claimed). */
  private readonly recentOrphans = new Map<number, number>();

  start(): void {
    if (this.socket) return;
    const fd = native().reaperStart();
    // The socket stays ref'd on purpose: PID 1 lives as long as the reaper does.
    this.socket = new net.Socket({ fd, readable: true, writable: false });
    this.socket.on("data", (chunk: Buffer) => this.onData(chunk));
    this.socket.on("error", () => {
      // A read error on the self-pipe cannot happen short of a bug; drain by hand from now on.
      native().reaperKick();
    });
    // reaperStart() itself collected the children that exited before its handler was installed.
  }

  /**
   * Before an exec of the init (reexec): children that exit from now on stay zombies, for the new
   * init's reaper; what was reaped already is read from the pipe and handed out now.
   */
  pause(): void {
    native().reaperPause();
    this.drainNow();
  }

  /** After pause(), when the exec failed: reaping again, the zombies of meanwhile first. */
  resume(): void {
    native().reaperResume();
    this.drainNow();
  }

  /** Reads the pipe until it is empty, here and now (it is non-blocking), and dispatches the records. */
  private drainNow(): void {
    if (!this.socket) return;
    const fd = native().reaperStart();
    const buffer = Buffer.alloc(64 * 1024);
    for (;;) {
      let bytes: number;
      try {
        bytes = fs.readSync(fd, buffer, 0, buffer.length, null);
      } catch {
        return; // EAGAIN: empty
      }
      if (bytes <= 0) return;
      this.onData(Buffer.from(buffer.subarray(0, bytes)));
    }
  }

  /** Calls listener with the exit of pid (spawned by us). Register right after spawn returns. */
  watch(pid: number, listener: ExitListener): void {
    this.waiters.set(pid, listener);
  }

  /**
   * Calls listener with the exit of pid, a process we did not spawn but that is our child now (a
   * daemon its launcher left to us): at once if it was reaped a moment ago, else when it is.
   * Returns false when it is neither alive nor just reaped (not ours to wait for).
   */
  claim(pid: number, listener: ExitListener): boolean {
    // A zombie reaped a moment ago may still wait in the pipe (a re-executed init's reaper collects
    // the exits of the exec at start): read it first, or the pid would look neither alive nor reaped.
    if (!this.recentOrphans.has(pid) && !this.reading) this.drainNow();
    const status = this.recentOrphans.get(pid);
    if (status !== undefined) {
      this.recentOrphans.delete(pid);
      const exit = decodeStatus(pid, status);
      setImmediate(() => notify(listener, exit));
      return true;
    }
    try {
      process.kill(pid, 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
    }
    this.waiters.set(pid, listener);
    return true;
  }

  /** Forgets a claim or watch (the caller stopped caring). */
  unwatch(pid: number, listener: ExitListener): void {
    if (this.waiters.get(pid) === listener) this.waiters.delete(pid);
  }

  /** The exit of pid carries no news (its exec failed and was reported already). */
  discard(pid: number): void {
    this.discarded.add(pid);
  }

  /** Within onData: a listener that claims must not read the pipe under it. */
  private reading = false;

  private onData(chunk: Buffer): void {
    this.reading = true;
    try {
      this.onRecords(chunk);
    } finally {
      this.reading = false;
    }
  }

  private onRecords(chunk: Buffer): void {
    let data = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const whole = data.length - (data.length % RECORD_BYTES);
    // Records are host-endian int32 pairs: read them through an Int32Array (copied when the
    // chunk is not 4-byte aligned in its ArrayBuffer).
    if (data.byteOffset % 4 !== 0) data = Buffer.from(data);
    const records = new Int32Array(data.buffer, data.byteOffset, whole / 4);
    const { waiters, discarded } = this;
    let orphans = 0;
    for (let i = 0; i < records.length; i += 2) {
      const pid = records[i];
      const status = records[i + 1];
      if ((waiters.size === 0 && discarded.size === 0) || !this.dispatch(pid, status)) {
        orphans++;
        // Remembered for claim(): a daemon's exit may come before its launcher's is handled.
        const recent = this.recentOrphans;
        recent.set(pid, status);
        if (recent.size > RECENT_ORPHANS) recent.delete(recent.keys().next().value!);
        // Only a listener gets an object per orphan.
        if (this.onOrphan) notify(this.onOrphan, decodeStatus(pid, status));
      }
    }
    this.orphansReaped += orphans;
    this.pending = whole === data.length ? EMPTY : Buffer.from(data.subarray(whole));
    // Zombies left behind while the pipe was full are reaped now that it has room again (nothing
    // happens, and no syscall is made, unless the handler deferred some).
    native().reaperKick();
  }

  /** Hands one exit to its waiter (or drops an expected one); false when it is an orphan's. */
  private dispatch(pid: number, status: number): boolean {
    const waiter = this.waiters.get(pid);
    if (waiter) {
      this.waiters.delete(pid);
      notify(waiter, decodeStatus(pid, status));
      return true;
    }
    return this.discarded.delete(pid);
  }
}

/** A listener's exception must not stop the other records of the batch from being dispatched. */
function notify(listener: ExitListener, exit: ExitRecord): void {
  try {
    listener(exit);
  } catch (err) {
    setImmediate(() => {
      throw err;
    });
  }
}

/** The process-wide reaper. */
export const reaper = new Reaper();
