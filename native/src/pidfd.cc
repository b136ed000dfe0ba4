// pidfd_open(2) and pidfd_send_signal(2): signals that cannot hit a recycled pid. glibc 2.36
// has no wrappers for them, hence syscall(2).
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>

#include "args.h"
#include "errors.h"
#include "modules.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

namespace starter {

namespace {

// The returned descriptor is always close-on-exec (pidfd_open sets O_CLOEXEC itself).
Napi::Value PidfdOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t pid = 0;
  if (!ReadInt(env, info[0], "pid", 1, INT_MAX, &pid)) return env.Undefined();
  long fd = syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0U);
  if (fd < 0) {
    ThrowErrno(env, errno, "pidfd_open");
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(fd));
}

void PidfdSendSignal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  int64_t signal = 0;
  if (!ReadFd(env, info[0], "pidfd", &fd) || !ReadInt(env, info[1], "signal", 0, 64, &signal)) {
    return;
  }
  if (syscall(SYS_pidfd_send_signal, fd, static_cast<int>(signal), nullptr, 0U) != 0) {
    ThrowErrno(env, errno, "pidfd_send_signal");
  }
}

}  // namespace

void InitPidfd(Napi::Env env, Napi::Object exports) {
  exports.Set("pidfdOpen", Napi::Function::New(env, PidfdOpen, "pidfdOpen"));
  exports.Set("pidfdSendSignal", Napi::Function::New(env, PidfdSendSignal, "pidfdSendSignal"));
}

}  // namespace starter
