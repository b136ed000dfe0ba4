// A fake system for the configuration tests: which files are executable, /etc/passwd, /etc/group and
// the init's environment, so that no test depends on the machine it runs on.

import type { ConfigDeps } from "../../../init/config/loader";

export const executables = new Set([
  "/usr/lib/tango/TangoTest",
  "/opt/tango/bin/PowerSupply.py",
  "/opt/tango/bin/PowerSupply",
  "/usr/local/bin/web-ui",
  "/usr/bin/python3",
  "/bin/mkdir",
  "/usr/bin/curl",
]);

/** Files that exist but lack the execute permission. */
export const plainFiles = new Set(["/usr/lib/tango/Broken", "/opt/tango/bin/notes.txt"]);

export const passwdText = ["root:x:0:0:root:/root:/bin/sh", "tango:x:1000:1001:Tango:/home/tango:/bin/sh", ""].join("\n");
export const groupText = ["root:x:0:", "tango:x:1001:", "dialout:x:20:tango", ""].join("\n");

export function fakeSystem(overrides: Partial<ConfigDeps> = {}): ConfigDeps {
  return {
    readFile: (path) => {
      throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: "ENOENT" });
    },
    executableStatus: (path) => (executables.has(path) ? "executable" : plainFiles.has(path) ? "not-executable" : "missing"),
    readPasswd: () => passwdText,
    readGroup: () => groupText,
    env: { PATH: "/usr/bin:/bin", HOME: "/", NODE_OPTIONS: "--inspect" },
    ...overrides,
  };
}
