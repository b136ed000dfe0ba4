// Host name, loopback up, setsid, dup2 / close, sync. Run inside `unshare --uts --net --mount
// --propagation private` so that the host keeps its name and interfaces.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { addon, errorOf, report } from "./lib.mjs";

const uts = fs.readlinkSync("/proc/self/ns/uts");
const netns = fs.readlinkSync("/proc/self/ns/net");
if (!process.env.HOST_UTS_NS || uts === process.env.HOST_UTS_NS || netns === process.env.HOST_NET_NS) {
  report({ refused: "not in private uts and net namespaces" });
}

addon.sethostname("starter-native-test");
const hostname = os.hostname();

// The /sys of the host shows the host's interfaces: a sysfs mounted here shows this namespace's.
const sys = fs.mkdtempSync(path.join(os.tmpdir(), "native-sys-"));
addon.mount({ source: "sysfs", target: sys, type: "sysfs", flags: ["nosuid", "nodev", "noexec"] });
const loFlags = () => parseInt(fs.readFileSync(path.join(sys, "class/net/lo/flags"), "utf8"), 16);
const loUpBefore = (loFlags() & 1) === 1;
addon.linkUp("lo");
const loUpAfter = (loFlags() & 1) === 1;
const linkUpAgain = errorOf(() => addon.linkUp("lo")); // already up: nothing to do

// This script is not a process group leader (the test runner's group), so setsid succeeds once.
const sid = addon.setsid();
const setsidAgain = errorOf(() => addon.setsid());
const notATerminal = errorOf(() => addon.setControllingTerminal(0, false));

const fd = fs.openSync("/proc/self/status", "r");
addon.dup2(fd, 200);
const sameFile = fs.fstatSync(200).ino === fs.fstatSync(fd).ino;
addon.close(200);
const closeAgain = errorOf(() => addon.close(200));
fs.closeSync(fd);

addon.sync();
addon.umount(sys, ["detach"]);
fs.rmdirSync(sys);

report({ hostname, loUpBefore, loUpAfter, linkUpAgain, sid, pid: process.pid, setsidAgain, notATerminal, sameFile, closeAgain });
