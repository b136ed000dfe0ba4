// Listening sockets of socket activation: socket / setsockopt / bind / listen / accept4 / connect /
// getsockname one call each, the accept queues (TCP_INFO, sock_diag, SO_MEMINFO), and spawn placing
// listenFds at 3, 4, … (sources that are themselves targets included) with LISTEN_PID = the child's pid.
import fs from "node:fs";
import dgram from "node:dgram";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { addon, childEnv, decodeStatus, errorOf, readAll, report, sleep, startReaper } from "./lib.mjs";

const reaper = startReaper();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "native-listen-"));
const flagsOf = (fd) => parseInt(/flags:\s*(\d+)/.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"))[1], 8);
const inodeOf = (fd) => fs.fstatSync(fd).ino;

// A TCP socket on a port the kernel picks.
const tcp = addon.socketOpen("inet", "stream");
addon.setSocketOption(tcp, "reuseaddr", true);
addon.socketBind(tcp, { family: "inet", host: "127.0.0.1", port: 0 });
addon.socketListen(tcp, 7);
const tcpName = addon.socketName(tcp);
const emptyQueue = addon.tcpListenQueue(tcp);
const nothingToAccept = addon.socketAccept(tcp);
const clients = [net.connect(tcpName.port, "127.0.0.1"), net.connect(tcpName.port, "127.0.0.1")];
await Promise.all(clients.map((c) => new Promise((resolve) => c.on("connect", resolve))));
await sleep(50);
const twoQueued = addon.tcpListenQueue(tcp);
const accepted = addon.socketAccept(tcp);
const acceptedFlags = flagsOf(accepted);
const afterAccept = addon.tcpListenQueue(tcp);
addon.close(accepted);

// IPv6 only, next to it.
const tcp6 = addon.socketOpen("inet6", "stream");
addon.setSocketOption(tcp6, "ipv6only", true);
addon.socketBind(tcp6, { family: "inet6", host: "::1", port: tcpName.port });
addon.socketListen(tcp6, 4);
const tcp6Name = addon.socketName(tcp6);

// A unix stream socket: its accept queue through sock_diag; a second bind of its address is EADDRINUSE.
const unixPath = path.join(dir, "web.sock");
const unix = addon.socketOpen("unix", "stream");
addon.socketBind(unix, { family: "unix", path: unixPath });
addon.socketListen(unix, 5);
const diag = addon.sockDiagOpen();
addon.unixDiagRequest(diag, inodeOf(unix));
const unixEmpty = addon.unixDiagReply(diag);
const unixClient = net.connect(unixPath);
await new Promise((resolve) => unixClient.on("connect", resolve));
await sleep(20);
addon.unixDiagRequest(diag, inodeOf(unix));
const unixQueued = addon.unixDiagReply(diag);
const noAnswer = addon.unixDiagReply(diag);
const probe = addon.socketOpen("unix", "stream");
const connectLive = errorOf(() => addon.socketConnect(probe, { family: "unix", path: unixPath }));
addon.close(probe);

// UDP: bytes waiting.
const udp = addon.socketOpen("inet", "dgram");
addon.socketBind(udp, { family: "inet", host: "127.0.0.1", port: 0 });
const udpName = addon.socketName(udp);
const udpEmpty = addon.socketReceiveMemory(udp);
await new Promise((resolve) => {
  const sender = dgram.createSocket("udp4");
  sender.send("ping", udpName.port, "127.0.0.1", () => {
    sender.close();
    resolve();
  });
});
await sleep(20);
const udpWaiting = addon.socketReceiveMemory(udp);

const errors = {
  inUse: errorOf(() => {
    const again = addon.socketOpen("inet", "stream");
    try {
      addon.socketBind(again, { family: "inet", host: "127.0.0.1", port: tcpName.port });
    } finally {
      addon.close(again);
    }
  }),
  missingDirectory: errorOf(() => {
    const orphan = addon.socketOpen("unix", "stream");
    try {
      addon.socketBind(orphan, { family: "unix", path: path.join(dir, "missing", "x.sock") });
    } finally {
      addon.close(orphan);
    }
  }),
  refused: errorOf(() => {
    const refused = addon.socketOpen("unix", "stream");
    try {
      addon.socketConnect(refused, { family: "unix", path: path.join(dir, "nobody.sock") });
    } finally {
      addon.close(refused);
    }
  }),
  badHost: errorOf(() => addon.socketBind(tcp, { family: "inet", host: "localhost", port: 1 })),
  badFamily: errorOf(() => addon.socketOpen("ipx", "stream")),
  badOption: errorOf(() => addon.setSocketOption(tcp, "nodelay", true)),
};

// spawn: 25 fds at 3..27. Three distinct sockets are placed at 20, 21 and 22 (inside the target
// range, so the child must lift them before any dup2), passed in reverse, then the rest repeat one.
for (const [fd, at] of [
  [tcp, 20],
  [unix, 21],
  [udp, 22],
]) {
  addon.dup2(fd, at);
}
const listenFds = [22, 21, 20, ...Array(22).fill(tcp6)];
const out = addon.spawn({
  file: "/bin/sh",
  argv: [
    "sh",
    "-c",
    'echo "$$ $LISTEN_PID $LISTEN_FDS"; for fd in 3 4 5 6 27 28 29; do readlink /proc/$$/fd/$fd || echo none; done; ls /proc/$$/fd | sort -n | tr "\\n" " "',
  ],
  env: [...childEnv, "LISTEN_FDS=25", "LISTEN_PID=1"],
  stdout: "pipe",
  listenFds,
  pidEnv: ["LISTEN_PID"],
  notifyFd: 28,
});
const output = readAll(out.stdoutFd);
const spawnCode = decodeStatus(await reaper.waitFor(out.pid)).code;
const lines = (await output).trim().split("\n");
const [pidLine, ...rest] = lines;
const [shellPid, listenPid, listenCount] = pidLine.split(" ").map(Number);
const links = rest.slice(0, 7);
const fdList = rest[7].trim().split(" ").map(Number);
const notifyBelow = errorOf(() => addon.spawn({ file: "/bin/true", argv: ["true"], env: childEnv, listenFds: [tcp, tcp], notifyFd: 4 }));

report({
  tcpName,
  tcpFlags: flagsOf(tcp),
  emptyQueue,
  nothingToAccept,
  twoQueued,
  acceptedFlags,
  afterAccept,
  tcp6Name,
  unixEmpty,
  unixQueued,
  noAnswer,
  connectLive,
  udpName,
  udpEmpty,
  udpWaiting,
  errors,
  spawn: {
    pid: out.pid,
    code: spawnCode,
    shellPid,
    listenPid,
    listenCount,
    links,
    fdList,
    expected: {
      3: `socket:[${inodeOf(udp)}]`,
      4: `socket:[${inodeOf(unix)}]`,
      5: `socket:[${inodeOf(tcp)}]`,
      6: `socket:[${inodeOf(tcp6)}]`,
    },
  },
  notifyBelow,
});
