// The calls of an in-place upgrade (`starter-init reexec`): keep a descriptor open across execve,
// and replace the running init with a new binary. Policy (what survives, what the state says, when
// to exec) is in init/runtime/reexec.ts.
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "args.h"
#include "errors.h"
#include "modules.h"

namespace starter {

namespace {

// fdSetCloexec(fd, on): fcntl(F_SETFD) with FD_CLOEXEC set or cleared (other fd flags kept).
void FdSetCloexec(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  bool on;
  if (!ReadFd(env, info[0], "fd", &fd) || !ReadBool(env, info[1], "on", &on)) return;
  int flags = fcntl(fd, F_GETFD);
  if (flags < 0) {
    ThrowErrno(env, errno, "fcntl");
    return;
  }
  int wanted = on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC);
  if (wanted != flags && fcntl(fd, F_SETFD, wanted) != 0) ThrowErrno(env, errno, "fcntl");
}

// execve(file, argv, env): returns only when it failed (then throws).
void Execve(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string file;
  std::vector<std::string> argv;
  std::vector<std::string> envp;
  if (!ReadString(env, info[0], "file", &file) || !ReadStringArray(env, info[1], "argv", &argv) ||
      !ReadStringArray(env, info[2], "env", &envp)) {
    return;
  }
  std::vector<char*> argv_c;
  for (auto& word : argv) argv_c.push_back(word.data());
  argv_c.push_back(nullptr);
  std::vector<char*> envp_c;
  for (auto& entry : envp) envp_c.push_back(entry.data());
  envp_c.push_back(nullptr);
  execve(file.c_str(), argv_c.data(), envp_c.data());
  ThrowErrno(env, errno, "execve");
}

}  // namespace

void InitExec(Napi::Env env, Napi::Object exports) {
  exports.Set("fdSetCloexec", Napi::Function::New(env, FdSetCloexec, "fdSetCloexec"));
  exports.Set("execve", Napi::Function::New(env, Execve, "execve"));
}

}  // namespace starter
