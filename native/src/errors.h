// The one shape of error every call throws (see index.d.ts: NativeError).
#pragma once

#include <napi.h>

namespace starter {

// An Error with `code` (errno name, e.g. "ENOENT"), `syscall` and `errno` (positive), and the
// message "ENOENT: no such file or directory, mount" like Node's own system errors.
Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall);

// Sets ErrnoError(...) as the pending exception. C++ exceptions are disabled in this addon: the
// caller returns right after, and N-API throws it when control goes back to JavaScript.
void ThrowErrno(Napi::Env env, int err, const char* syscall);

// Sets a TypeError as the pending exception (a malformed argument, not a failed syscall).
void ThrowTypeError(Napi::Env env, const char* message);

}  // namespace starter
