// What cgroup v2 needs that Node lacks: inotify, to hear a cgroup's cgroup.events change (the
// kernel signals "populated 0" there as a file modification), and getxattr, to read the delegation
// mark a service manager puts on a cgroup it hands over (systemd's Delegate=yes).
#include <errno.h>
#include <sys/inotify.h>
#include <sys/xattr.h>

#include <string>
#include <vector>

#include "args.h"
#include "errors.h"
#include "modules.h"

namespace starter {

namespace {

// inotify_init1(IN_NONBLOCK | IN_CLOEXEC): an fd that is readable when a watched file changes.
Napi::Value InotifyInit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    ThrowErrno(env, errno, "inotify_init1");
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

// inotify_add_watch(fd, path, IN_MODIFY): returns the watch descriptor.
Napi::Value InotifyAddWatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  std::string path;
  if (!ReadFd(env, info[0], "fd", &fd) || !ReadString(env, info[1], "path", &path)) {
    return env.Undefined();
  }
  int wd = inotify_add_watch(fd, path.c_str(), IN_MODIFY);
  if (wd < 0) {
    ThrowErrno(env, errno, "inotify_add_watch");
    return env.Undefined();
  }
  return Napi::Number::New(env, wd);
}

// getxattr(path, name) as a string; null when the file has no such attribute (ENODATA).
Napi::Value Getxattr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path, name;
  if (!ReadString(env, info[0], "path", &path) || !ReadString(env, info[1], "name", &name)) {
    return env.Undefined();
  }
  std::vector<char> value(256);
  ssize_t n = getxattr(path.c_str(), name.c_str(), value.data(), value.size());
  if (n < 0) {
    if (errno == ENODATA) return env.Null();
    ThrowErrno(env, errno, "getxattr");
    return env.Undefined();
  }
  return Napi::String::New(env, value.data(), static_cast<size_t>(n));
}

}  // namespace

void InitCgroup(Napi::Env env, Napi::Object exports) {
  exports.Set("inotifyInit", Napi::Function::New(env, InotifyInit, "inotifyInit"));
  exports.Set("inotifyAddWatch", Napi::Function::New(env, InotifyAddWatch, "inotifyAddWatch"));
  exports.Set("getxattr", Napi::Function::New(env, Getxattr, "getxattr"));
}

}  // namespace starter
