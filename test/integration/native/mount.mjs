// mount / remount / umount with named flags. Run inside `unshare --mount --propagation private`:
// the mounts stay in that namespace.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { addon, errorOf, report } from "./lib.mjs";

const ownNs = fs.readlinkSync("/proc/self/ns/mnt");
if (ownNs === process.env.HOST_MNT_NS || !process.env.HOST_MNT_NS) {
  report({ refused: "not in a private mount namespace" });
}

// mountinfo fields: ... mount point (5th), per-mount options (6th), ..., "-", type, source, super options.
const mountInfo = (target) => {
  for (const line of fs.readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const fields = line.split(" ");
    if (fields[4] !== target) continue;
    const dash = fields.indexOf("-");
    return { options: fields[5].split(","), type: fields[dash + 1], superOptions: fields[dash + 3].split(",") };
  }
  return null;
};

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "native-mount-"));
const target = path.join(dir, "mnt");
fs.mkdirSync(target);

addon.mount({ source: "starter-test", target, type: "tmpfs", flags: ["nosuid", "nodev", "noexec"], data: "mode=0700,size=1m" });
const mounted = mountInfo(target);
fs.writeFileSync(path.join(target, "file"), "x");

addon.mount({ source: "", target, type: "", flags: ["remount", "bind", "rdonly"] });
const remounted = mountInfo(target);
const writeAfterRemount = errorOf(() => fs.writeFileSync(path.join(target, "file2"), "x"))?.code ?? null;

addon.mount({ source: "none", target, type: "", flags: ["private"] });
addon.umount(target, ["detach"]);
const afterUmount = mountInfo(target);
const umountAgain = errorOf(() => addon.umount(target));

fs.rmSync(dir, { recursive: true, force: true });
report({ mounted, remounted, writeAfterRemount, afterUmount, umountAgain });
