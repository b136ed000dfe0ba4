// Unix sockets the supervisor needs beyond net: peer credentials of a control connection,
// datagram sockets for sd_notify-style readiness, and datagrams to a service manager's
// NOTIFY_SOCKET (the init itself under systemd).
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>

#include "args.h"
#include "errors.h"
#include "modules.h"

namespace starter {

namespace {

Napi::Value PeerCred(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!ReadFd(env, info[0], "fd", &fd)) return env.Undefined();

  struct ucred cred;
  socklen_t length = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0) {
    ThrowErrno(env, errno, "getsockopt");
    return env.Undefined();
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("pid", Napi::Number::New(env, cred.pid));
  result.Set("uid", Napi::Number::New(env, cred.uid));
  result.Set("gid", Napi::Number::New(env, cred.gid));
  return result;
}

Napi::Value UnixDgramBind(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!ReadString(env, info[0], "path", &path)) return env.Undefined();

  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    ThrowErrno(env, path.empty() ? ENOENT : ENAMETOOLONG, "bind");
    return env.Undefined();
  }
  memcpy(addr.sun_path, path.data(), path.size());

  // A socket file left by an earlier run would make bind fail with EADDRINUSE.
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    ThrowErrno(env, errno, "unlink");
    return env.Undefined();
  }
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ThrowErrno(env, errno, "socket");
    return env.Undefined();
  }
  if (bind(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    close(fd);
    ThrowErrno(env, err, "bind");
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

// One datagram as a Buffer, or null when none is waiting.
Napi::Value RecvDgram(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!ReadFd(env, info[0], "fd", &fd)) return env.Undefined();

  // MSG_TRUNC with a zero-length peek returns the real size of the next datagram (unix
  // datagram sockets, Linux >= 3.4), so the Buffer fits it exactly and nothing is cut off.
  ssize_t size;
  do {
    size = recv(fd, nullptr, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
  } while (size < 0 && errno == EINTR);
  if (size < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return env.Null();
    ThrowErrno(env, errno, "recv");
    return env.Undefined();
  }

  Napi::Buffer<char> buffer = Napi::Buffer<char>::New(env, static_cast<size_t>(size));
  ssize_t got;
  do {
    got = recv(fd, buffer.Data(), static_cast<size_t>(size), MSG_DONTWAIT);
  } while (got < 0 && errno == EINTR);
  if (got < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return env.Null();
    ThrowErrno(env, errno, "recv");
    return env.Undefined();
  }
  // Another reader could have taken the peeked datagram; a smaller one then fills part of it.
  if (got < size) return Napi::Buffer<char>::Copy(env, buffer.Data(), static_cast<size_t>(got));
  return buffer;
}

// An unbound datagram socket to send from (sendDgram).
Napi::Value UnixDgramSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ThrowErrno(env, errno, "socket");
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

// sendto(2) of one datagram to a Unix socket address: a path, or "@name" for the abstract
// namespace (the notation of systemd's NOTIFY_SOCKET).
Napi::Value SendDgram(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  std::string path;
  if (!ReadFd(env, info[0], "fd", &fd)) return env.Undefined();
  if (!ReadString(env, info[1], "path", &path)) return env.Undefined();
  if (!info[2].IsBuffer()) {
    ThrowTypeError(env, "data must be a Buffer");
    return env.Undefined();
  }
  Napi::Buffer<char> data = info[2].As<Napi::Buffer<char>>();

  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    ThrowErrno(env, path.empty() ? ENOENT : ENAMETOOLONG, "sendto");
    return env.Undefined();
  }
  memcpy(addr.sun_path, path.data(), path.size());
  socklen_t length = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + path.size());
  // An abstract address is the name after a NUL byte, its length exactly the name's; a path
  // counts its terminating NUL.
  if (path[0] == '@') addr.sun_path[0] = '\0';
  else length += 1;

  ssize_t sent;
  do {
    sent = sendto(fd, data.Data(), data.Length(), MSG_NOSIGNAL, reinterpret_cast<struct sockaddr*>(&addr), length);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) {
    ThrowErrno(env, errno, "sendto");
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(sent));
}

}  // namespace

void InitSocket(Napi::Env env, Napi::Object exports) {
  exports.Set("peerCred", Napi::Function::New(env, PeerCred, "peerCred"));
  exports.Set("unixDgramBind", Napi::Function::New(env, UnixDgramBind, "unixDgramBind"));
  exports.Set("recvDgram", Napi::Function::New(env, RecvDgram, "recvDgram"));
  exports.Set("unixDgramSocket", Napi::Function::New(env, UnixDgramSocket, "unixDgramSocket"));
  exports.Set("sendDgram", Napi::Function::New(env, SendDgram, "sendDgram"));
}

}  // namespace starter
