// Process-wide syscalls of stage 1 and stage 3: subreaper, reboot, sync, host name, loopback up,
// and the descriptor / session calls a VM's PID 1 needs for its console.
#include <errno.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <unistd.h>

#include <iterator>
#include <string>

#include "args.h"
#include "errors.h"
#include "modules.h"

namespace starter {

namespace {

void SetChildSubreaper(const Napi::CallbackInfo& info) {
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) ThrowErrno(info.Env(), errno, "prctl");
}

// RB_* values are ints; NamedFlag holds them as unsigned long and they are cast back.
constexpr NamedFlag kRebootCommands[] = {
    {"poweroff", static_cast<unsigned long>(RB_POWER_OFF)},
    {"restart", static_cast<unsigned long>(RB_AUTOBOOT)},
    {"halt", static_cast<unsigned long>(RB_HALT_SYSTEM)},
    {"cad-off", static_cast<unsigned long>(RB_DISABLE_CAD)},  // ctrl-alt-del then sends SIGINT to PID 1
    {"cad-on", static_cast<unsigned long>(RB_ENABLE_CAD)},
};

void Reboot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string command;
  if (!ReadString(env, info[0], "command", &command)) return;

  const NamedFlag* found = FindNamed(kRebootCommands, std::size(kRebootCommands), command);
  if (found == nullptr) {
    ThrowTypeError(env, ("reboot: unknown command \"" + command + "\"").c_str());
    return;
  }
  if (reboot(static_cast<int>(found->value)) != 0) ThrowErrno(env, errno, "reboot");
}

void Sync(const Napi::CallbackInfo&) { sync(); }

void Sethostname(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name;
  if (!ReadString(env, info[0], "name", &name)) return;
  if (sethostname(name.data(), name.size()) != 0) ThrowErrno(env, errno, "sethostname");
}

// Sets IFF_UP on an interface through the classic ioctl pair on any AF_INET socket.
void LinkUp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name;
  if (!ReadString(env, info[0], "ifname", &name)) return;
  if (name.empty() || name.size() >= IFNAMSIZ) {
    ThrowTypeError(env, "ifname must have 1 to 15 characters");
    return;
  }

  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) {
    ThrowErrno(env, errno, "socket");
    return;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name.data(), name.size());

  int err = 0;
  if (ioctl(sock, SIOCGIFFLAGS, &ifr) != 0) {
    err = errno;
  } else if ((ifr.ifr_flags & IFF_UP) == 0) {
    // Only set the flag when it is missing: an interface that is already up needs no
    // CAP_NET_ADMIN (a container's lo usually is).
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    if (ioctl(sock, SIOCSIFFLAGS, &ifr) != 0) err = errno;
  }
  close(sock);
  if (err != 0) ThrowErrno(env, err, "ioctl");
}

void Dup2(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int oldfd = -1, newfd = -1;
  if (!ReadFd(env, info[0], "oldfd", &oldfd) || !ReadFd(env, info[1], "newfd", &newfd)) return;
  int rc;
  do {
    rc = dup2(oldfd, newfd);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) ThrowErrno(env, errno, "dup2");
}

Napi::Value Setsid(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  pid_t sid = setsid();
  if (sid < 0) {
    ThrowErrno(env, errno, "setsid");
    return env.Undefined();
  }
  return Napi::Number::New(env, sid);
}

void SetControllingTerminal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  bool force = false;
  if (!ReadFd(env, info[0], "fd", &fd) || !ReadBool(env, info[1], "force", &force)) return;
  if (ioctl(fd, TIOCSCTTY, force ? 1 : 0) != 0) ThrowErrno(env, errno, "ioctl");
}

void Close(const Napi::CallbackInfo& info) {
  int fd = -1;
  if (!ReadFd(info.Env(), info[0], "fd", &fd)) return;
  // On Linux the descriptor is gone even when close() reports EINTR: retrying could close a
  // descriptor another thread has just opened, so EINTR counts as success.
  if (close(fd) != 0 && errno != EINTR) ThrowErrno(info.Env(), errno, "close");
}

}  // namespace

void InitSystem(Napi::Env env, Napi::Object exports) {
  exports.Set("setChildSubreaper", Napi::Function::New(env, SetChildSubreaper, "setChildSubreaper"));
  exports.Set("reboot", Napi::Function::New(env, Reboot, "reboot"));
  exports.Set("sync", Napi::Function::New(env, Sync, "sync"));
  exports.Set("sethostname", Napi::Function::New(env, Sethostname, "sethostname"));
  exports.Set("linkUp", Napi::Function::New(env, LinkUp, "linkUp"));
  exports.Set("dup2", Napi::Function::New(env, Dup2, "dup2"));
  exports.Set("setsid", Napi::Function::New(env, Setsid, "setsid"));
  exports.Set("setControllingTerminal",
              Napi::Function::New(env, SetControllingTerminal, "setControllingTerminal"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
}

}  // namespace starter
