// mount(2) and umount2(2) with their flags given by name.
#include <errno.h>
#include <sys/mount.h>

#include <iterator>
#include <string>

#include "args.h"
#include "errors.h"
#include "modules.h"

namespace starter {

namespace {

constexpr NamedFlag kMountFlags[] = {
    {"rdonly", MS_RDONLY},       {"nosuid", MS_NOSUID},     {"nodev", MS_NODEV},
    {"noexec", MS_NOEXEC},       {"sync", MS_SYNCHRONOUS},  {"remount", MS_REMOUNT},
    {"dirsync", MS_DIRSYNC},     {"noatime", MS_NOATIME},   {"nodiratime", MS_NODIRATIME},
    {"bind", MS_BIND},           {"move", MS_MOVE},         {"rec", MS_REC},
    {"silent", MS_SILENT},       {"unbindable", MS_UNBINDABLE}, {"private", MS_PRIVATE},
    {"slave", MS_SLAVE},         {"shared", MS_SHARED},     {"relatime", MS_RELATIME},
    {"strictatime", MS_STRICTATIME}, {"lazytime", MS_LAZYTIME},
};

constexpr NamedFlag kUmountFlags[] = {
    {"force", MNT_FORCE},
    {"detach", MNT_DETACH},
    {"expire", MNT_EXPIRE},
};

// mount({source, target, type, flags?, data?}).
void Mount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object options;
  if (!ReadObject(env, info[0], "options", &options)) return;

  Napi::Value value;
  std::string source, target, type, data;
  if (!GetProperty(options, "source", &value) || !ReadString(env, value, "source", &source)) return;
  if (!GetProperty(options, "target", &value) || !ReadString(env, value, "target", &target)) return;
  if (!GetProperty(options, "type", &value) || !ReadString(env, value, "type", &type)) return;

  unsigned long flags = 0;
  if (!Optional(options, "flags", [&](const Napi::Value& v) {
        return ReadFlags(env, v, "flags", kMountFlags, std::size(kMountFlags), &flags);
      })) {
    return;
  }

  bool has_data = false;
  if (!Optional(options, "data", [&](const Napi::Value& v) {
        if (!ReadString(env, v, "data", &data)) return false;
        has_data = true;
        return true;
      })) {
    return;
  }

  // An empty type is passed as NULL: remount, bind and propagation changes ignore it, and a
  // new mount with "" would only fail with a confusing ENODEV.
  if (mount(source.c_str(), target.c_str(), type.empty() ? nullptr : type.c_str(), flags,
            has_data ? data.c_str() : nullptr) != 0) {
    ThrowErrno(env, errno, "mount");
  }
}

// umount(target, flags?).
void Umount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string target;
  if (!ReadString(env, info[0], "target", &target)) return;
  unsigned long flags = 0;
  if (!info[1].IsUndefined() &&
      !ReadFlags(env, info[1], "flags", kUmountFlags, std::size(kUmountFlags), &flags)) {
    return;
  }
  if (umount2(target.c_str(), static_cast<int>(flags)) != 0) ThrowErrno(env, errno, "umount2");
}

}  // namespace

void InitMount(Napi::Env env, Napi::Object exports) {
  exports.Set("mount", Napi::Function::New(env, Mount, "mount"));
  exports.Set("umount", Napi::Function::New(env, Umount, "umount"));
}

}  // namespace starter
