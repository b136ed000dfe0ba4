// Socket activation in the configuration: `sockets:` (each kind, its options, its defaults),
// `activation:`, `idleStop:`, `maxInstances:`, `readiness: socket`, and every bad input reported at
// its file:line (the address checks that need a bind are in the runtime: test/unit/runtime/sockets.test.ts).

import { describe, expect, it } from "vitest";
import { ConfigError, parseConfig, parseConfigWithSources } from "../../../init/config/loader";
import { isValidFdName, parseListen } from "../../../init/config/sockets";
import { fakeSystem } from "./fake-system";

const file = "etc/starter.yaml";

function load(lines: string[]) {
  return parseConfig(lines.join("\n"), file, fakeSystem({ executableStatus: () => "executable" }));
}

function reported(lines: string[]): string[] {
  try {
    load(lines);
  } catch (error) {
    if (error instanceof ConfigError) return error.message.split("\n");
    throw error;
  }
  throw new Error("expected a ConfigError, but the configuration loaded");
}

describe("socket addresses", () => {
  it.each([
    ["tcp:8080", { kind: "tcp", host: "0.0.0.0", port: 8080, path: null }],
    ["tcp:127.0.0.1:8080", { kind: "tcp", host: "127.0.0.1", port: 8080, path: null }],
    ["tcp:[::1]:8080", { kind: "tcp", host: "::1", port: 8080, path: null }],
    ["tcp6:8080", { kind: "tcp6", host: "::", port: 8080, path: null }],
    ["tcp6:[::1]:8080", { kind: "tcp6", host: "::1", port: 8080, path: null }],
    ["udp:5353", { kind: "udp", host: "0.0.0.0", port: 5353, path: null }],
    ["unix:/run/app.sock", { kind: "unix", host: null, port: null, path: "/run/app.sock" }],
    ["unix-dgram:/run/log.sock", { kind: "unix-dgram", host: null, port: null, path: "/run/log.sock" }],
  ])("%s", (text, address) => {
    expect(parseListen(text)).toEqual({ ok: true, value: address });
  });

  it.each(["8080", "tcp:", "tcp:0", "tcp:70000", "tcp:localhost:80", "tcp6:127.0.0.1:80", "sctp:80", "unix:run/x.sock", `unix:/${"x".repeat(107)}`])(
    "%s is refused",
    (text) => {
      expect(parseListen(text).ok).toBe(false);
    },
  );

  it("fd names follow sd_listen_fds_with_names: printable ASCII without ':', 1 to 255 characters", () => {
    expect(["web", "TangoTest/t1", "a b", "x".repeat(255)].every(isValidFdName)).toBe(true);
    expect(["", "a:b", "tab\there", "é", "x".repeat(256)].some(isValidFdName)).toBe(false);
  });
});

describe("sockets, activation and readiness: socket in the config", () => {
  it("resolves each socket with its defaults; a server with sockets is ready for its dependents once they exist", () => {
    const config = load([
      "servers:",
      "  - name: web",
      "    binary: /usr/bin/gunicorn",
      "    sockets:",
      "      - tcp:8080",
      "      - listen: unix:/run/web.sock",
      "        name: admin",
      "        backlog: 16",
      "        mode: '0660'",
      "        owner: tango",
      "        group: dialout",
      "      - listen: udp:[::1]:5353",
      "        reusePort: true",
    ]);
    const [web] = config.servers;
    expect(web.sockets).toEqual([
      {
        listen: "tcp:8080",
        kind: "tcp",
        host: "0.0.0.0",
        port: 8080,
        path: null,
        name: "web",
        backlog: 4096,
        mode: null,
        uid: null,
        gid: null,
        reusePort: false,
      },
      {
        listen: "unix:/run/web.sock",
        kind: "unix",
        host: null,
        port: null,
        path: "/run/web.sock",
        name: "admin",
        backlog: 16,
        mode: 0o660,
        uid: 1000,
        gid: 20,
        reusePort: false,
      },
      {
        listen: "udp:[::1]:5353",
        kind: "udp",
        host: "::1",
        port: 5353,
        path: null,
        name: "web",
        backlog: 4096,
        mode: null,
        uid: null,
        gid: null,
        reusePort: true,
      },
    ]);
    expect([web.activation, web.readyOnSockets, web.readiness]).toEqual(["eager", true, { kind: "none" }]);
  });

  it("a server without sockets has none of the activation fields (its spec is as before)", () => {
    const [plain] = load(["servers:", "  - name: plain", "    binary: /bin/true"]).servers;
    expect(Object.keys(plain).filter((key) => ["sockets", "activation", "idleStopMs", "maxInstances", "readyOnSockets"].includes(key))).toEqual([]);
  });

  it("lazy with idleStop, accept with maxInstances (and its default), readiness: socket and a probe that keeps socket: false", () => {
    const config = load([
      "servers:",
      "  - name: lazy",
      "    binary: /bin/lazy",
      "    sockets: [tcp:9000]",
      "    activation: lazy",
      "    idleStop: 30s",
      "  - name: echo",
      "    binary: /bin/echo-server",
      "    sockets: [tcp:9001]",
      "    activation: accept",
      "    maxInstances: 5",
      "  - name: inetd",
      "    binary: /bin/echo-server",
      "    sockets: ['unix:/run/inetd.sock']",
      "    activation: accept",
      "  - name: TangoTest/t1",
      "    sockets: [tcp:9002]",
      "    readiness: socket",
      "  - name: probed",
      "    binary: /bin/probed",
      "    sockets: [tcp:9003]",
      "    readiness: {tcp: 9003, socket: false}",
    ]);
    const byName = new Map(config.servers.map((spec) => [spec.name, spec]));
    expect(byName.get("lazy")).toMatchObject({ activation: "lazy", idleStopMs: 30_000, readyOnSockets: true });
    expect(byName.get("echo")).toMatchObject({ activation: "accept", maxInstances: 5, readiness: { kind: "none" } });
    expect(byName.get("inetd")).toMatchObject({ activation: "accept", maxInstances: 64 });
    expect(byName.get("TangoTest/t1")).toMatchObject({ readiness: { kind: "none" }, readyOnSockets: true });
    expect(byName.get("probed")).toMatchObject({ readiness: { kind: "tcp", host: "127.0.0.1", port: 9003 }, readyOnSockets: false });
    expect(byName.get("probed")!.readiness).not.toHaveProperty("socket");
  });

  it("places a socket problem found at bind time at the socket's entry in the file", () => {
    const { placeSocket } = parseConfigWithSources(
      ["servers:", "  - name: a", "    binary: /bin/a", "  - name: web", "    binary: /bin/web", "    sockets:", "      - tcp:80", "      - tcp:81"].join("\n"),
      file,
      fakeSystem({ executableStatus: () => "executable" }),
    );
    expect(placeSocket!("web", 1, "address in use")).toEqual({ file, line: 8, column: 9, path: "servers[1].sockets[1]", message: "address in use" });
  });

  it("reports every bad input at its file:line", () => {
    expect(
      reported([
        "servers:",
        "  - name: a",
        "    binary: /bin/a",
        "    sockets:",
        "      - tcp:localhost:80",
        "      - listen: unix:/run/a.sock",
        "        name: 'bad:name'",
        "      - listen: tcp:81",
        "        mode: '0600'",
        "      - listen: udp:82",
        "        backlog: 5",
        "      - tcp:81",
        "  - name: b",
        "    binary: /bin/b",
        "    sockets: [tcp:0.0.0.0:81]",
        "    activation: lazy",
        "    maxInstances: 3",
        "  - name: c",
        "    binary: /bin/c",
        "    activation: accept",
        "    idleStop: 1s",
        "    preStart: /bin/true",
        "  - name: d",
        "    binary: /bin/d",
        "    sockets: [udp:83, tcp:84]",
        "    activation: accept",
        "    readiness: notify:4",
        "  - name: e",
        "    binary: /bin/e",
        "    readiness: socket",
        "  - name: f",
        "    binary: /bin/f",
        "    sockets: [tcp:85]",
        "    activation: sometimes",
      ]),
    ).toEqual([
      `${file}:5:9: servers[0].sockets[0]: expected tcp: "[host:]port" with an IP address as host and a port between 1 and 65535, got "tcp:localhost:80"`,
      `${file}:7:9: servers[0].sockets[1].name: expected ${'a name for LISTEN_FDNAMES: 1 to 255 printable ASCII characters, without ":"'}, got "bad:name"`,
      `${file}:9:9: servers[0].sockets[2].mode: mode applies to unix and unix-dgram sockets (a file), not to tcp`,
      `${file}:11:9: servers[0].sockets[3].backlog: backlog applies to stream sockets (tcp, tcp6, unix), not to udp`,
      `${file}:12:9: servers[0].sockets[4]: tcp:81: sockets[2] of this server has that address already`,
      `${file}:15:15: servers[1].sockets[0]: tcp:0.0.0.0:81: servers[0].sockets[2] listens there already`,
      `${file}:17:5: servers[1].maxInstances: maxInstances applies to activation: accept`,
      `${file}:20:5: servers[2].activation: activation: accept needs sockets: to listen on`,
      `${file}:21:5: servers[2].idleStop: idleStop applies to activation: lazy`,
      `${file}:22:5: servers[2].preStart: preStart does not apply to activation: accept (one short-lived instance per connection)`,
      `${file}:25:15: servers[3].sockets[0]: activation: accept takes connections: udp is not a stream socket (tcp, tcp6, unix)`,
      `${file}:27:5: servers[3].readiness: readiness does not apply to activation: accept: it serves once its sockets exist`,
      `${file}:27:5: servers[3].readiness: notify fd 4 is one of the sockets' fds (3 to 4): use 5 or above`,
      `${file}:30:5: servers[4].readiness: readiness: socket needs sockets: (the server is ready for its dependents once they exist)`,
      `${file}:34:5: servers[5].activation: expected one of "eager", "lazy", "accept", got "sometimes"`,
    ]);
  });

  it("a default name that is no valid fd name is reported at the server's name", () => {
    expect(reported(["servers:", "  - name: 'web:8080'", "    binary: /bin/web", "    sockets: [tcp:8080]"])).toEqual([
      `${file}:2:5: servers[0].name: expected a name for LISTEN_FDNAMES: 1 to 255 printable ASCII characters, without ":", got "web:8080"`,
    ]);
  });
});
