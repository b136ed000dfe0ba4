// Shared helpers of the native addon test scripts. Each script runs in its own node process
// (the reaper calls waitpid(-1) and owns SIGCHLD, which must not happen inside a vitest worker)
// and prints one JSON line last for native.test.ts to check.
import { createRequire } from "node:module";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";

export const addon = createRequire(import.meta.url)("../../../native/build/Release/starter_native.node");

const littleEndian = os.endianness() === "LE";

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Prints the result line and exits (writes to a pipe are synchronous on Linux). */
export function report(result) {
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

/** Runs fn and returns the error's {name, code, syscall, errno, pid, message}, or null if it did not throw. */
export function errorOf(fn) {
  try {
    fn();
    return null;
  } catch (e) {
    return { name: e.name, code: e.code, syscall: e.syscall, errno: e.errno, pid: e.pid, message: e.message };
  }
}

/** Decodes a raw wait status. */
export function decodeStatus(status) {
  const signal = status & 0x7f;
  return signal === 0 ? { code: (status >> 8) & 0xff, signal: 0 } : { code: null, signal };
}

/**
 * Starts the reaper and drains its pipe through an FdWatcher: records land in `exits`
 * (pid -> raw status, in arrival order) and resolve waitFor() promises. After each drain
 * reaperKick() collects zombies the handler had to leave when the pipe was full.
 */
export function startReaper() {
  const fd = addon.reaperStart();
  const exits = new Map();
  const waiters = new Map();
  let records = 0;
  let duplicates = 0;
  let pending = Buffer.alloc(0);
  const chunk = Buffer.alloc(64 * 1024);

  const drain = () => {
    for (;;) {
      let n;
      try {
        n = fs.readSync(fd, chunk, 0, chunk.length, null);
      } catch (e) {
        if (e.code === "EAGAIN") break;
        throw e;
      }
      if (n === 0) break;
      pending = Buffer.concat([pending, chunk.subarray(0, n)]);
      const whole = pending.length - (pending.length % 8);
      for (let off = 0; off < whole; off += 8) {
        // Records are {int32 pid, int32 raw status} in host byte order.
        const pid = littleEndian ? pending.readInt32LE(off) : pending.readInt32BE(off);
        const status = littleEndian ? pending.readInt32LE(off + 4) : pending.readInt32BE(off + 4);
        records++;
        if (exits.has(pid)) duplicates++;
        exits.set(pid, status);
        const waiter = waiters.get(pid);
        if (waiter) {
          waiters.delete(pid);
          waiter(status);
        }
      }
      pending = pending.subarray(whole);
    }
    addon.reaperKick();
  };
  const watcher = new addon.FdWatcher(fd, drain);

  return {
    fd,
    exits,
    watcher,
    stats: () => ({ records, duplicates, leftoverBytes: pending.length }),
    /** Statuses of `pids` in order; null for those not reported within `ms`. */
    async waitAll(pids, ms = 20000) {
      const timeout = sleep(ms).then(() => null);
      return Promise.all(pids.map((pid) => Promise.race([this.waitFor(pid), timeout])));
    },
    waitFor(pid) {
      if (exits.has(pid)) return Promise.resolve(exits.get(pid));
      return new Promise((resolve) => waiters.set(pid, resolve));
    },
    stop() {
      watcher.close();
    },
  };
}

/** Reads a non-blocking pipe end to EOF through net.Socket (which closes it). */
export function readAll(fd) {
  return new Promise((resolve, reject) => {
    const socket = new net.Socket({ fd, readable: true, writable: false });
    const parts = [];
    socket.on("data", (d) => parts.push(d));
    socket.on("error", reject);
    socket.on("close", () => resolve(Buffer.concat(parts).toString()));
  });
}

/** The open fds of this process, as numbers. */
export function openFds() {
  return fs
    .readdirSync("/proc/self/fd")
    .map(Number)
    .sort((a, b) => a - b);
}

/** Fields of /proc/<pid>/stat after the command name: state, ppid, pgrp, session, ... */
export function procStat(pid) {
  const text = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { state: rest[0], ppid: Number(rest[1]), pgrp: Number(rest[2]), session: Number(rest[3]) };
}

/** "Key:\tvalue" lines of /proc/<pid>/status as an object. */
export function procStatus(pid) {
  const result = {};
  for (const line of fs.readFileSync(`/proc/${pid}/status`, "utf8").split("\n")) {
    const i = line.indexOf(":");
    if (i > 0) result[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return result;
}

/** Children of `ppid` (from a /proc scan) as {pid, state}. */
export function childrenOf(ppid) {
  const children = [];
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = procStat(name);
      if (stat.ppid === ppid) children.push({ pid: Number(name), state: stat.state });
    } catch {
      // gone meanwhile
    }
  }
  return children;
}

/** Children of `ppid` in state Z. */
export function zombiesOf(ppid) {
  return childrenOf(ppid)
    .filter((child) => child.state === "Z")
    .map((child) => child.pid);
}

/** A minimal environment for children. */
export const childEnv = ["PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C"];
