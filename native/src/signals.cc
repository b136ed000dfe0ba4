// Catching signals to forward them, and the few process-wide calls around it.
//
// Node's process.on() knows only the names of os.constants.signals, so the real-time signals
// (SIGRTMIN..SIGRTMAX) cannot be caught from JavaScript at all, and libuv's handler hands
// JavaScript the signal number alone. An init that forwards signals must also tell a signal that
// somebody sent apart from one the kernel raised at the init for its own doing (SIGPIPE or SIGXFSZ
// after one of its writes, SIGHUP and SIGCONT when it gives up its controlling terminal): only
// siginfo says who sent a signal.
//
// signalPipe() creates a non-blocking self-pipe; signalCatch(n) installs, for one signal, a handler
// that writes one 16-byte record {int32 signo, int32 si_code, int32 si_pid, int32 si_uid} per
// delivery into it. JavaScript reads the pipe on the event loop and decides what to do. The handler
// runs on whichever thread the kernel picks and only calls write(2). A record that does not fit
// (the pipe holds 4096 of them) is lost; a standard signal pending twice is one delivery anyway.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdint>

#include "args.h"
#include "errors.h"
#include "modules.h"

namespace starter {

namespace {

struct Record {
  int32_t signo;
  int32_t code;
  int32_t pid;
  int32_t uid;
};
static_assert(sizeof(Record) == 16, "records are 16 bytes");
static_assert(sizeof(Record) <= PIPE_BUF, "a record must be written atomically");

int g_read_fd = -1;
int g_write_fd = -1;

void OnSignal(int signo, siginfo_t* info, void*) {
  int saved_errno = errno;
  Record record = {signo, info->si_code, static_cast<int32_t>(info->si_pid),
                   static_cast<int32_t>(info->si_uid)};
  ssize_t n;
  do {
    n = write(g_write_fd, &record, sizeof record);
  } while (n < 0 && errno == EINTR);
  errno = saved_errno;
}

// signalPipe(): pipe2(O_NONBLOCK | O_CLOEXEC) once; returns the read end (idempotent).
Napi::Value Pipe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (g_read_fd >= 0) return Napi::Number::New(env, g_read_fd);
  int fds[2];
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
    ThrowErrno(env, errno, "pipe2");
    return env.Undefined();
  }
  g_read_fd = fds[0];
  g_write_fd = fds[1];
  return Napi::Number::New(env, g_read_fd);
}

bool ReadSignal(Napi::Env env, const Napi::Value& value, int* out) {
  int64_t signo = 0;
  if (!ReadInt(env, value, "signal", 1, SIGRTMAX, &signo)) return false;
  *out = static_cast<int>(signo);
  return true;
}

// signalCatch(n): sigaction(n) with the reporting handler. Other signals are blocked while it runs.
void Catch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int signo = 0;
  if (!ReadSignal(env, info[0], &signo)) return;
  if (g_write_fd < 0) {
    Napi::Error::New(env, "signalCatch() called before signalPipe()").ThrowAsJavaScriptException();
    return;
  }
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_sigaction = OnSignal;
  action.sa_flags = SA_SIGINFO | SA_RESTART;
  sigfillset(&action.sa_mask);
  // SIGKILL, SIGSTOP and glibc's two internal signals (32, 33) answer EINVAL.
  if (sigaction(signo, &action, nullptr) != 0) ThrowErrno(env, errno, "sigaction");
}

// signalRange(): the real-time signals a program may use, {min: SIGRTMIN, max: SIGRTMAX}. glibc
// keeps the kernel's first two (32, 33) for itself, so these are library values, not constants.
Napi::Value Range(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object range = Napi::Object::New(env);
  range.Set("min", Napi::Number::New(env, SIGRTMIN));
  range.Set("max", Napi::Number::New(env, SIGRTMAX));
  return range;
}

// setParentDeathSignal(n): prctl(PR_SET_PDEATHSIG, n); 0 clears it.
void SetParentDeathSignal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t signo = 0;
  if (!ReadInt(env, info[0], "signal", 0, SIGRTMAX, &signo)) return;
  if (prctl(PR_SET_PDEATHSIG, static_cast<unsigned long>(signo), 0, 0, 0) != 0) {
    ThrowErrno(env, errno, "prctl");
  }
}

// releaseControllingTerminal(fd): ioctl(fd, TIOCNOTTY). A session leader that does this takes the
// terminal from its whole session (the kernel then sends SIGHUP and SIGCONT to the foreground
// group); anyone else only drops it for itself.
void ReleaseControllingTerminal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!ReadFd(env, info[0], "fd", &fd)) return;
  if (ioctl(fd, TIOCNOTTY) != 0) ThrowErrno(env, errno, "ioctl");
}

}  // namespace

void InitSignals(Napi::Env env, Napi::Object exports) {
  exports.Set("signalPipe", Napi::Function::New(env, Pipe, "signalPipe"));
  exports.Set("signalCatch", Napi::Function::New(env, Catch, "signalCatch"));
  exports.Set("signalRange", Napi::Function::New(env, Range, "signalRange"));
  exports.Set("setParentDeathSignal", Napi::Function::New(env, SetParentDeathSignal, "setParentDeathSignal"));
  exports.Set("releaseControllingTerminal",
              Napi::Function::New(env, ReleaseControllingTerminal, "releaseControllingTerminal"));
}

}  // namespace starter
