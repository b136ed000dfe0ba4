// reboot(2) inside a PID namespace, where it only ends the namespace: its init (this script)
// dies "by" SIGINT for poweroff/halt and SIGHUP for restart, and the CAD commands are refused
// with EINVAL. Run as `unshare --pid --fork node reboot.mjs <command>`.
//
// Triple guard: never call reboot unless this process is PID 1 of a PID namespace that is neither
// the initial one nor the test runner's.
import fs from "node:fs";
import { addon, errorOf } from "./lib.mjs";

const INITIAL_PID_NS = "pid:[4026531836]";
const ns = fs.readlinkSync("/proc/self/ns/pid");
const safe = process.pid === 1 && ns !== INITIAL_PID_NS && !!process.env.HOST_PID_NS && ns !== process.env.HOST_PID_NS;
if (!safe) {
  process.stdout.write(`${JSON.stringify({ refused: true, pid: process.pid, ns })}\n`);
  process.exit(3);
}

const command = process.argv[2];
const cadOff = errorOf(() => addon.reboot("cad-off"));
const cadOn = errorOf(() => addon.reboot("cad-on"));
process.stdout.write(`${JSON.stringify({ cadOff, cadOn, command })}\n`);
addon.reboot(command);
// Not reached when reboot worked.
process.stdout.write(`${JSON.stringify({ returned: true })}\n`);
process.exit(4);
