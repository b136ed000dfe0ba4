// Memory advice: madvise(2) on a range of the process, and malloc_trim(3). JavaScript decides
// what to give back (init/runtime/memory.ts); these calls only do it.
#include <errno.h>
#include <malloc.h>
#include <sys/mman.h>

#include <cstdint>
#include <iterator>
#include <string>

#include "args.h"
#include "errors.h"
#include "modules.h"

namespace starter {

namespace {

constexpr NamedFlag kAdvice[] = {
    {"dontneed", MADV_DONTNEED},
    {"cold", MADV_COLD},
    {"pageout", MADV_PAGEOUT},
};

// madvise(address, length, advice): address and length are numbers (addresses of x86-64 user space
// stay below 2^47, exact as doubles).
void Madvise(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  constexpr int64_t kMax = int64_t{1} << 53;
  int64_t address = 0, length = 0;
  std::string name;
  if (!ReadInt(env, info[0], "address", 0, kMax, &address) ||
      !ReadInt(env, info[1], "length", 0, kMax, &length) ||
      !ReadString(env, info[2], "advice", &name)) {
    return;
  }
  const NamedFlag* advice = FindNamed(kAdvice, std::size(kAdvice), name);
  if (advice == nullptr) {
    ThrowTypeError(env, ("madvise: unknown advice \"" + name + "\"").c_str());
    return;
  }
  void* start = reinterpret_cast<void*>(static_cast<uintptr_t>(address));
  if (madvise(start, static_cast<size_t>(length), static_cast<int>(advice->value)) != 0) {
    ThrowErrno(env, errno, "madvise");
  }
}

// mallocTrim(): malloc_trim(0), which returns the free memory of every malloc arena to the
// system; true when some was returned.
Napi::Value MallocTrim(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), malloc_trim(0) != 0);
}

}  // namespace

void InitMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("madvise", Napi::Function::New(env, Madvise, "madvise"));
  exports.Set("mallocTrim", Napi::Function::New(env, MallocTrim, "mallocTrim"));
}

}  // namespace starter
