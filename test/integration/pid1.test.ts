// Stage 1 in a fresh mount namespace on a minimal root, and a start with a read-only binary
// directory and /tmp.

import { beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { ROOT, runAsPid1, tempDir } from "./helpers";

/** Mount points and types from a mountinfo text. */
function mountTypes(mountinfo: string): Map<string, string> {
  const types = new Map<string, string>();
  for (const line of mountinfo.trim().split("\n")) {
    const fields = line.split(" ");
    const separator = fields.indexOf("-");
    types.set(fields[4], fields[separator + 1]);
  }
  return types;
}

describe("stage 1", () => {
  let root: string;
  beforeAll(() => {
    root = path.join(tempDir("root"), "root");
    execFileSync("bash", [path.join(ROOT, "rootfs", "assemble.sh"), "--out", root, "--with", "busybox"], { stdio: "pipe" });
  });

  it("mounts what is missing on an empty root, each with its type", async () => {
    // A private mount namespace whose root is the assembled directory: nothing is mounted in it.
    const result = await runAsPid1(["--log-level", "debug", "--log-format", "json", "--", "/bin/cat", "/proc/self/mountinfo"], {
      unshareArgs: ["--mount", "--propagation", "private", `--root=${root}`],
      binary: "/sbin/starter-init",
      cwd: "/",
    });
    expect(result.code, result.stderr).toBe(0);
    const types = mountTypes(result.stdout);
    expect(types.get("/proc")).toBe("proc");
    expect(types.get("/sys")).toBe("sysfs");
    expect(types.get("/dev")).toBe("devtmpfs");
    expect(types.get("/dev/pts")).toBe("devpts");
    expect(types.get("/dev/shm")).toBe("tmpfs");
    expect(types.get("/run")).toBe("tmpfs");
    expect(types.get("/tmp")).toBe("tmpfs");
    expect(result.stdout).toMatch(/ \/dev\/pts .* devpts devpts rw,.*mode=620,ptmxmode=666/);
  });

  it("leaves what is mounted alone and skips a non-empty /tmp", async () => {
    fs.writeFileSync(path.join(root, "tmp", "keep-me"), "x");
    try {
      const result = await runAsPid1(["--log-level", "debug", "--log-format", "json", "--", "/bin/sh", "-c", "cat /proc/self/mountinfo; ls /tmp"], {
        unshareArgs: ["--mount", "--propagation", "private", `--root=${root}`],
        binary: "/sbin/starter-init",
        cwd: "/",
      });
      expect(result.code, result.stderr).toBe(0);
      const types = mountTypes(result.stdout);
      expect(types.has("/tmp")).toBe(false);
      expect(result.stdout).toContain("keep-me");
      expect(types.get("/run")).toBe("tmpfs");
    } finally {
      fs.rmSync(path.join(root, "tmp", "keep-me"));
    }
  });

  it("skips the mounts with --no-mount", async () => {
    // unshare --mount-proc mounts /proc itself; everything else is left for the init, which must not.
    const result = await runAsPid1(["--no-mount", "--", "/bin/cat", "/proc/self/mountinfo"], {
      unshareArgs: ["--mount", "--propagation", "private", `--root=${root}`],
      binary: "/sbin/starter-init",
      cwd: "/",
    });
    expect(result.code, result.stderr).toBe(0);
    expect([...mountTypes(result.stdout).keys()].sort()).toEqual(["/proc"]);
  });
});

describe("read-only places", () => {
  it("starts when its own directory and /tmp are read-only", async () => {
    const dir = tempDir("ro");
    fs.copyFileSync(path.join(ROOT, "dist", "starter-init"), path.join(dir, "starter-init"));
    fs.chmodSync(path.join(dir, "starter-init"), 0o755);
    // In a private mount namespace: the binary's directory, /tmp and /run are made read-only, so the
    // addon has to find another exec-allowed tmpfs (the design's /dev fallback).
    const script = [
      `mount --bind ${dir} ${dir} && mount -o remount,bind,ro ${dir}`,
      "mount --bind /tmp /tmp && mount -o remount,bind,ro /tmp",
      "mount -t tmpfs -o ro tmpfs /run",
      "mount --bind /dev/shm /dev/shm && mount -o remount,bind,ro /dev/shm",
      `touch ${dir}/probe 2>/dev/null && echo dir-writable`,
      "touch /tmp/probe-ro 2>/dev/null && echo tmp-writable",
      `exec unshare --pid --fork --mount-proc ${dir}/starter-init -- sh -c 'echo started-$$'`,
    ].join("\n");
    const output = execFileSync("unshare", ["--mount", "--propagation", "private", "sh", "-c", script], { encoding: "utf8" });
    expect(output.trim()).toMatch(/^started-\d+$/);
  });
});
