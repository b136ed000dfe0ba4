// Unix sockets: SO_PEERCRED of a stream connection, datagram sockets (bind over a stale file,
// non-blocking recv, one Buffer per datagram), and sending datagrams to a path or an abstract name.
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { addon, childEnv, decodeStatus, errorOf, report, sleep, startReaper } from "./lib.mjs";

const reaper = startReaper();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "native-socket-"));

// peerCred on the server side of a connection from this very process.
const streamPath = path.join(dir, "control.sock");
const server = net.createServer();
const accepted = new Promise((resolve) => server.on("connection", resolve));
await new Promise((resolve) => server.listen(streamPath, resolve));
const client = net.connect(streamPath);
const connection = await accepted;
const peer = addon.peerCred(connection._handle.fd);
client.destroy();
connection.destroy();
server.close();

// A stale file at the path is replaced; the socket is non-blocking and close-on-exec.
const dgramPath = path.join(dir, "notify.sock");
fs.writeFileSync(dgramPath, "stale");
const fd = addon.unixDgramBind(dgramPath);
const isSocket = fs.statSync(dgramPath).isSocket();
const flags = parseInt(/flags:\s*(\d+)/.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"))[1], 8);
const emptyRecv = addon.recvDgram(fd);

// Two datagrams from another process (util-linux logger writes one datagram per message).
const sender = addon.spawn({
  file: "/bin/sh",
  argv: ["sh", "-c", 'logger -d -u "$1" --socket-errors=on READY=1 && logger -d -u "$1" --socket-errors=on STATUS=up', "sh", dgramPath],
  env: childEnv,
});
const senderCode = decodeStatus(await reaper.waitFor(sender.pid)).code;
const first = addon.recvDgram(fd);
const second = addon.recvDgram(fd);
const third = addon.recvDgram(fd);
addon.close(fd);

// Binding twice on the same path works (the first socket's file is unlinked).
const fd2 = addon.unixDgramBind(dgramPath);
const fd3 = addon.unixDgramBind(dgramPath);
addon.close(fd2);
addon.close(fd3);

// sendDgram: to a bound path, to an abstract name ("@…", received by Python), and its errors.
const sendFd = addon.unixDgramSocket();
const sendFlags = parseInt(/flags:\s*(\d+)/.exec(fs.readFileSync(`/proc/self/fdinfo/${sendFd}`, "utf8"))[1], 8);
const receiver = addon.unixDgramBind(dgramPath);
const sentBytes = addon.sendDgram(sendFd, dgramPath, Buffer.from("READY=1\nSTATUS=two lines"));
const received = addon.recvDgram(receiver)?.toString() ?? null;
addon.close(receiver);
const refused = errorOf(() => addon.sendDgram(sendFd, dgramPath, Buffer.from("x")));
const missing = errorOf(() => addon.sendDgram(sendFd, path.join(dir, "none.sock"), Buffer.from("x")));
const notBuffer = errorOf(() => addon.sendDgram(sendFd, dgramPath, "text"));
const abstractName = `starter-native-test-${process.pid}`;
const abstractOut = path.join(dir, "abstract.out");
const python = addon.spawn({
  file: "/usr/bin/python3",
  argv: [
    "python3",
    "-c",
    "import socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind('\\0'+sys.argv[1])\nopen(sys.argv[2]+'.up','w').close()\nopen(sys.argv[2],'wb').write(s.recv(100))",
    abstractName,
    abstractOut,
  ],
  env: childEnv,
});
for (let i = 0; i < 500 && !fs.existsSync(`${abstractOut}.up`); i++) await sleep(10);
const abstractSent = addon.sendDgram(sendFd, `@${abstractName}`, Buffer.from("WATCHDOG=1"));
const pythonCode = decodeStatus(await reaper.waitFor(python.pid)).code;
const abstractReceived = fs.readFileSync(abstractOut, "utf8");
addon.close(sendFd);

fs.rmSync(dir, { recursive: true, force: true });
report({
  send: {
    nonblock: (sendFlags & 0o4000) !== 0,
    cloexec: (sendFlags & 0o2000000) !== 0,
    sentBytes,
    received,
    refused,
    missing,
    notBuffer: notBuffer?.name ?? null,
    abstractSent,
    pythonCode,
    abstractReceived,
  },
  peer,
  expected: { pid: process.pid, uid: process.getuid(), gid: process.getgid() },
  isSocket,
  nonblock: (flags & 0o4000) !== 0,
  cloexec: (flags & 0o2000000) !== 0,
  emptyRecv,
  senderCode,
  first: first === null ? null : { isBuffer: Buffer.isBuffer(first), text: first.toString() },
  second: second === null ? null : second.toString(),
  third,
});
