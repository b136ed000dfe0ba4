// Unix sockets the supervisor needs beyond net: peer credentials of a control connection and
// datagram sockets for sd_notify-style readiness.
#include <errno.h>
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

}  // namespace

void InitSocket(Napi::Env env, Napi::Object exports) {
  exports.Set("peerCred", Napi::Function::New(env, PeerCred, "peerCred"));
  exports.Set("unixDgramBind", Napi::Function::New(env, UnixDgramBind, "unixDgramBind"));
  exports.Set("recvDgram", Napi::Function::New(env, RecvDgram, "recvDgram"));
}

}  // namespace starter
