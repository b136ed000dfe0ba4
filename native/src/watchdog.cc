// A hardware watchdog for a VM's PID 1: loading its driver (finit_module, from a file of the
// initramfs) and the ioctls of /dev/watchdog that Node cannot make. Petting is a write of any byte,
// disarming the magic close (write "V", then close): both plain fs calls in JavaScript.
#include <errno.h>
#include <fcntl.h>
#include <linux/watchdog.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include "args.h"
#include "errors.h"
#include "modules.h"

namespace starter {

namespace {

// finit_module(open(path), params, 0): loads a kernel module from a file.
void LoadModule(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path, params;
  if (!ReadString(env, info[0], "path", &path)) return;
  if (!info[1].IsUndefined() && !ReadString(env, info[1], "params", &params)) return;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    ThrowErrno(env, errno, "open");
    return;
  }
  int rc = static_cast<int>(syscall(SYS_finit_module, fd, params.c_str(), 0));
  int err = errno;
  close(fd);
  if (rc != 0) ThrowErrno(env, err, "finit_module");
}

// ioctl(fd, WDIOC_SETTIMEOUT, seconds): returns the timeout the device took (it may round).
Napi::Value WatchdogSetTimeout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  int64_t seconds = 0;
  if (!ReadFd(env, info[0], "fd", &fd) || !ReadInt(env, info[1], "seconds", 1, 65535, &seconds)) {
    return env.Undefined();
  }
  int timeout = static_cast<int>(seconds);
  if (ioctl(fd, WDIOC_SETTIMEOUT, &timeout) != 0) {
    ThrowErrno(env, errno, "ioctl");
    return env.Undefined();
  }
  return Napi::Number::New(env, timeout);
}

// ioctl(fd, WDIOC_GETSUPPORT): the driver's name and whether it honours the magic close.
Napi::Value WatchdogInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!ReadFd(env, info[0], "fd", &fd)) return env.Undefined();
  struct watchdog_info support;
  memset(&support, 0, sizeof support);
  if (ioctl(fd, WDIOC_GETSUPPORT, &support) != 0) {
    ThrowErrno(env, errno, "ioctl");
    return env.Undefined();
  }
  Napi::Object result = Napi::Object::New(env);
  const char* identity = reinterpret_cast<const char*>(support.identity);
  result.Set("identity", Napi::String::New(env, identity, strnlen(identity, sizeof support.identity)));
  result.Set("magicClose", Napi::Boolean::New(env, (support.options & WDIOF_MAGICCLOSE) != 0));
  result.Set("settableTimeout", Napi::Boolean::New(env, (support.options & WDIOF_SETTIMEOUT) != 0));
  return result;
}

}  // namespace

void InitWatchdog(Napi::Env env, Napi::Object exports) {
  exports.Set("loadModule", Napi::Function::New(env, LoadModule, "loadModule"));
  exports.Set("watchdogSetTimeout",
              Napi::Function::New(env, WatchdogSetTimeout, "watchdogSetTimeout"));
  exports.Set("watchdogInfo", Napi::Function::New(env, WatchdogInfo, "watchdogInfo"));
}

}  // namespace starter
