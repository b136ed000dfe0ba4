// finit_module(2): loads a kernel module from its file. A VM's init needs it when the kernel has the
// drivers of its disk as modules (Debian's: virtio_mmio, virtio_blk, erofs); which modules, and in
// which order, is decided in JavaScript (init/pid1/kmod.ts).
#include <errno.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include "args.h"
#include "errors.h"
#include "modules.h"

namespace starter {

namespace {

// finitModule(path, params = ""): open + finit_module + close. A module that is loaded already
// fails with EEXIST, as the kernel says.
void FinitModule(const Napi::CallbackInfo& info) {
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

}  // namespace

void InitKmod(Napi::Env env, Napi::Object exports) {
  exports.Set("finitModule", Napi::Function::New(env, FinitModule, "finitModule"));
}

}  // namespace starter
