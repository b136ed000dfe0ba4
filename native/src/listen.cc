// Listening sockets the init creates for its servers (socket activation, sd_listen_fds) and the
// calls that look at them. One syscall per call: the order (socket, options, bind, listen) and every
// decision live in TypeScript (runtime/sockets.ts), so a failure names the one syscall that failed.
//
// Addresses cross the boundary as plain objects: {family: "inet" | "inet6", host, port} with the
// host an IP literal (no name lookup here), or {family: "unix", path}.
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <climits>
#include <cstdint>
#include <iterator>
#include <string>

#include "args.h"
#include "errors.h"
#include "modules.h"

namespace starter {

namespace {

constexpr NamedFlag kFamilies[] = {{"inet", AF_INET}, {"inet6", AF_INET6}, {"unix", AF_UNIX}};
constexpr NamedFlag kTypes[] = {{"stream", SOCK_STREAM}, {"dgram", SOCK_DGRAM}};

// {level, name} of the options setSocketOption knows.
struct SocketOption {
  const char* name;
  int level;
  int option;
};
constexpr SocketOption kOptions[] = {
    {"reuseaddr", SOL_SOCKET, SO_REUSEADDR},
    {"reuseport", SOL_SOCKET, SO_REUSEPORT},
    {"ipv6only", IPPROTO_IPV6, IPV6_V6ONLY},
};

bool ReadNamed(Napi::Env env, const Napi::Value& value, const char* what, const NamedFlag* table,
               size_t size, int* out) {
  std::string name;
  if (!ReadString(env, value, what, &name)) return false;
  const NamedFlag* found = FindNamed(table, size, name);
  if (found == nullptr) {
    ThrowTypeError(env, (std::string(what) + ": unknown value \"" + name + "\"").c_str());
    return false;
  }
  *out = static_cast<int>(found->value);
  return true;
}

// A socket address read from {family, host, port} or {family: "unix", path}.
struct Address {
  struct sockaddr_storage storage;
  socklen_t length = 0;
};

bool ReadAddress(Napi::Env env, const Napi::Value& value, Address* out) {
  Napi::Object object;
  Napi::Value field;
  int family = 0;
  if (!ReadObject(env, value, "address", &object)) return false;
  if (!GetProperty(object, "family", &field) ||
      !ReadNamed(env, field, "address.family", kFamilies, std::size(kFamilies), &family)) {
    return false;
  }
  memset(&out->storage, 0, sizeof out->storage);
  if (family == AF_UNIX) {
    std::string path;
    if (!GetProperty(object, "path", &field) || !ReadString(env, field, "address.path", &path)) return false;
    auto* un = reinterpret_cast<struct sockaddr_un*>(&out->storage);
    if (path.empty() || path.size() >= sizeof un->sun_path) {
      ThrowTypeError(env, "address.path must be 1 to 107 bytes long");
      return false;
    }
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, path.data(), path.size());
    out->length = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + path.size() + 1);
    return true;
  }
  std::string host;
  int64_t port = 0;
  if (!GetProperty(object, "host", &field) || !ReadString(env, field, "address.host", &host)) return false;
  if (!GetProperty(object, "port", &field) || !ReadInt(env, field, "address.port", 0, 65535, &port)) {
    return false;
  }
  if (family == AF_INET) {
    auto* in = reinterpret_cast<struct sockaddr_in*>(&out->storage);
    in->sin_family = AF_INET;
    in->sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, host.c_str(), &in->sin_addr) != 1) {
      ThrowTypeError(env, ("address.host: not an IPv4 address: " + host).c_str());
      return false;
    }
    out->length = sizeof *in;
  } else {
    auto* in6 = reinterpret_cast<struct sockaddr_in6*>(&out->storage);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr) != 1) {
      ThrowTypeError(env, ("address.host: not an IPv6 address: " + host).c_str());
      return false;
    }
    out->length = sizeof *in6;
  }
  return true;
}

Napi::Value AddressObject(Napi::Env env, const struct sockaddr_storage& storage, socklen_t length) {
  Napi::Object result = Napi::Object::New(env);
  char text[INET6_ADDRSTRLEN] = "";
  switch (storage.ss_family) {
    case AF_INET: {
      const auto* in = reinterpret_cast<const struct sockaddr_in*>(&storage);
      inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
      result.Set("family", "inet");
      result.Set("host", text);
      result.Set("port", Napi::Number::New(env, ntohs(in->sin_port)));
      break;
    }
    case AF_INET6: {
      const auto* in6 = reinterpret_cast<const struct sockaddr_in6*>(&storage);
      inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
      result.Set("family", "inet6");
      result.Set("host", text);
      result.Set("port", Napi::Number::New(env, ntohs(in6->sin6_port)));
      break;
    }
    case AF_UNIX: {
      const auto* un = reinterpret_cast<const struct sockaddr_un*>(&storage);
      size_t size = length > offsetof(struct sockaddr_un, sun_path)
                        ? length - offsetof(struct sockaddr_un, sun_path)
                        : 0;
      // A path counts its terminating NUL; an unnamed socket has none.
      result.Set("family", "unix");
      result.Set("path", std::string(un->sun_path, strnlen(un->sun_path, size)));
      break;
    }
    default:
      result.Set("family", Napi::Number::New(env, storage.ss_family));
  }
  return result;
}

// socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0). Non-blocking, as systemd passes them: the
// flag belongs to the open file, which the init and every server share.
Napi::Value SocketOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int family = 0, type = 0;
  if (!ReadNamed(env, info[0], "family", kFamilies, std::size(kFamilies), &family) ||
      !ReadNamed(env, info[1], "type", kTypes, std::size(kTypes), &type)) {
    return env.Undefined();
  }
  int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ThrowErrno(env, errno, "socket");
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

void SetSocketOption(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  std::string name;
  bool on = false;
  if (!ReadFd(env, info[0], "fd", &fd) || !ReadString(env, info[1], "option", &name) ||
      !ReadBool(env, info[2], "value", &on)) {
    return;
  }
  for (const SocketOption& option : kOptions) {
    if (name != option.name) continue;
    int value = on ? 1 : 0;
    if (setsockopt(fd, option.level, option.option, &value, sizeof value) != 0) {
      ThrowErrno(env, errno, "setsockopt");
    }
    return;
  }
  ThrowTypeError(env, ("option: unknown value \"" + name + "\"").c_str());
}

void SocketBind(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  Address address;
  if (!ReadFd(env, info[0], "fd", &fd) || !ReadAddress(env, info[1], &address)) return;
  if (bind(fd, reinterpret_cast<struct sockaddr*>(&address.storage), address.length) != 0) {
    ThrowErrno(env, errno, "bind");
  }
}

void SocketListen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  int64_t backlog = 0;
  if (!ReadFd(env, info[0], "fd", &fd) || !ReadInt(env, info[1], "backlog", 0, INT_MAX, &backlog)) return;
  if (listen(fd, static_cast<int>(backlog)) != 0) ThrowErrno(env, errno, "listen");
}

// A blocking, close-on-exec connection (the program it is handed to expects an ordinary socket), or
// null when none waits.
Napi::Value SocketAccept(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!ReadFd(env, info[0], "fd", &fd)) return env.Undefined();
  int connection;
  do {
    connection = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
  } while (connection < 0 && errno == EINTR);
  if (connection < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return env.Null();
    ThrowErrno(env, errno, "accept4");
    return env.Undefined();
  }
  return Napi::Number::New(env, connection);
}

// connect(2); on a non-blocking stream socket EINPROGRESS / EAGAIN are thrown like any errno.
void SocketConnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  Address address;
  if (!ReadFd(env, info[0], "fd", &fd) || !ReadAddress(env, info[1], &address)) return;
  int rc;
  do {
    rc = connect(fd, reinterpret_cast<struct sockaddr*>(&address.storage), address.length);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) ThrowErrno(env, errno, "connect");
}

Napi::Value SocketName(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!ReadFd(env, info[0], "fd", &fd)) return env.Undefined();
  struct sockaddr_storage storage;
  socklen_t length = sizeof storage;
  memset(&storage, 0, sizeof storage);
  if (getsockname(fd, reinterpret_cast<struct sockaddr*>(&storage), &length) != 0) {
    ThrowErrno(env, errno, "getsockname");
    return env.Undefined();
  }
  return AddressObject(env, storage, length);
}

// getsockopt(TCP_INFO) of a listening TCP socket: for one in LISTEN state the kernel reports the
// accept queue's length in tcpi_unacked and its limit (the backlog) in tcpi_sacked, as ss(8) shows.
Napi::Value TcpListenQueue(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!ReadFd(env, info[0], "fd", &fd)) return env.Undefined();
  struct tcp_info tcp;
  socklen_t length = sizeof tcp;
  memset(&tcp, 0, sizeof tcp);
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &tcp, &length) != 0) {
    ThrowErrno(env, errno, "getsockopt");
    return env.Undefined();
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("listening", Napi::Boolean::New(env, tcp.tcpi_state == TCP_LISTEN));
  result.Set("queued", Napi::Number::New(env, tcp.tcpi_unacked));
  result.Set("backlog", Napi::Number::New(env, tcp.tcpi_sacked));
  return result;
}

// getsockopt(SO_MEMINFO): the bytes of kernel memory held by what waits in the receive queue (the
// Recv-Q that ss(8) shows for datagram sockets).
Napi::Value SocketReceiveMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!ReadFd(env, info[0], "fd", &fd)) return env.Undefined();
  uint32_t meminfo[SK_MEMINFO_VARS];
  socklen_t length = sizeof meminfo;
  memset(meminfo, 0, sizeof meminfo);
  if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, meminfo, &length) != 0) {
    ThrowErrno(env, errno, "getsockopt");
    return env.Undefined();
  }
  return Napi::Number::New(env, meminfo[SK_MEMINFO_RMEM_ALLOC]);
}

// ---- the accept queue of a listening Unix socket: a sock_diag request and its answer ----------
// No socket option reports it (SIOCINQ refuses a listening Unix socket): the kernel tells it through
// NETLINK_SOCK_DIAG, asked by the socket's inode. sendto() and recv() are two calls.

Napi::Value SockDiagOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) {
    ThrowErrno(env, errno, "socket");
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

void UnixDiagRequest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  int64_t inode = 0;
  if (!ReadFd(env, info[0], "fd", &fd) || !ReadInt(env, info[1], "inode", 1, UINT32_MAX, &inode)) return;
  struct {
    struct nlmsghdr header;
    struct unix_diag_req request;
  } message;
  memset(&message, 0, sizeof message);
  message.header.nlmsg_len = sizeof message;
  message.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  message.header.nlmsg_flags = NLM_F_REQUEST;
  message.request.sdiag_family = AF_UNIX;
  message.request.udiag_states = ~0U;
  message.request.udiag_ino = static_cast<uint32_t>(inode);
  message.request.udiag_show = UDIAG_SHOW_RQLEN;
  message.request.udiag_cookie[0] = message.request.udiag_cookie[1] = ~0U;  // no cookie to check
  struct sockaddr_nl kernel;
  memset(&kernel, 0, sizeof kernel);
  kernel.nl_family = AF_NETLINK;
  ssize_t sent;
  do {
    sent = sendto(fd, &message, sizeof message, 0, reinterpret_cast<struct sockaddr*>(&kernel), sizeof kernel);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) ThrowErrno(env, errno, "sendto");
}

// The answer to UnixDiagRequest: {queued, backlog} of a listening socket, or null when none waits.
Napi::Value UnixDiagReply(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!ReadFd(env, info[0], "fd", &fd)) return env.Undefined();
  alignas(struct nlmsghdr) char buffer[8192];
  ssize_t got;
  do {
    got = recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
  } while (got < 0 && errno == EINTR);
  if (got < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return env.Null();
    ThrowErrno(env, errno, "recv");
    return env.Undefined();
  }
  int length = static_cast<int>(got);
  for (auto* header = reinterpret_cast<struct nlmsghdr*>(buffer); NLMSG_OK(header, length);
       header = NLMSG_NEXT(header, length)) {
    if (header->nlmsg_type == NLMSG_ERROR) {
      const auto* error = static_cast<const struct nlmsgerr*>(NLMSG_DATA(header));
      ThrowErrno(env, error->error < 0 ? -error->error : EPROTO, "sock_diag");
      return env.Undefined();
    }
    if (header->nlmsg_type != SOCK_DIAG_BY_FAMILY) continue;
    const auto* answer = static_cast<const struct unix_diag_msg*>(NLMSG_DATA(header));
    int attributes = static_cast<int>(header->nlmsg_len - NLMSG_LENGTH(sizeof *answer));
    for (auto* attribute = reinterpret_cast<struct rtattr*>(const_cast<struct unix_diag_msg*>(answer) + 1);
         RTA_OK(attribute, attributes); attribute = RTA_NEXT(attribute, attributes)) {
      if (attribute->rta_type != UNIX_DIAG_RQLEN) continue;
      const auto* queue = static_cast<const struct unix_diag_rqlen*>(RTA_DATA(attribute));
      Napi::Object result = Napi::Object::New(env);
      result.Set("queued", Napi::Number::New(env, queue->udiag_rqueue));
      result.Set("backlog", Napi::Number::New(env, queue->udiag_wqueue));
      return result;
    }
  }
  ThrowErrno(env, EPROTO, "sock_diag");
  return env.Undefined();
}

}  // namespace

void InitListen(Napi::Env env, Napi::Object exports) {
  exports.Set("socketOpen", Napi::Function::New(env, SocketOpen, "socketOpen"));
  exports.Set("setSocketOption", Napi::Function::New(env, SetSocketOption, "setSocketOption"));
  exports.Set("socketBind", Napi::Function::New(env, SocketBind, "socketBind"));
  exports.Set("socketListen", Napi::Function::New(env, SocketListen, "socketListen"));
  exports.Set("socketAccept", Napi::Function::New(env, SocketAccept, "socketAccept"));
  exports.Set("socketConnect", Napi::Function::New(env, SocketConnect, "socketConnect"));
  exports.Set("socketName", Napi::Function::New(env, SocketName, "socketName"));
  exports.Set("tcpListenQueue", Napi::Function::New(env, TcpListenQueue, "tcpListenQueue"));
  exports.Set("socketReceiveMemory", Napi::Function::New(env, SocketReceiveMemory, "socketReceiveMemory"));
  exports.Set("sockDiagOpen", Napi::Function::New(env, SockDiagOpen, "sockDiagOpen"));
  exports.Set("unixDiagRequest", Napi::Function::New(env, UnixDiagRequest, "unixDiagRequest"));
  exports.Set("unixDiagReply", Napi::Function::New(env, UnixDiagReply, "unixDiagReply"));
}

}  // namespace starter
