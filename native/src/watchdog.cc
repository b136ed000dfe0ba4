// A hardware watchdog for a VM's PID 1: the ioctls of /dev/watchdog that Node cannot make (its driver
// is loaded like any module, kmod.cc). Petting is a write of any byte,
// disarming the magic close (write "V", then close): both plain fs calls in JavaScript.
#include <errno.h>
#include <fcntl.h>
#include <linux/watchdog.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <string>

#include "args.h"
#include "errors.h"
#include "modules.h"

namespace starter {

namespace {

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
  exports.Set("watchdogSetTimeout",
              Napi::Function::New(env, WatchdogSetTimeout, "watchdogSetTimeout"));
  exports.Set("watchdogInfo", Napi::Function::New(env, WatchdogInfo, "watchdogInfo"));
}

}  // namespace starter
