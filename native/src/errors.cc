#include "errors.h"

#include <string.h>

#include <string>

namespace starter {

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall) {
  // strerrorname_np / strerrordesc_np (glibc 2.32) are locale-independent and thread-safe,
  // unlike strerror.
  const char* name = strerrorname_np(err);
  const char* desc = strerrordesc_np(err);
  std::string code = name != nullptr ? name : "EUNKNOWN";
  std::string text = desc != nullptr ? desc : "unknown error";
  // Lower case like Node's own messages ("ENOENT: no such file or directory, open").
  if (!text.empty() && text[0] >= 'A' && text[0] <= 'Z') text[0] = static_cast<char>(text[0] - 'A' + 'a');
  std::string message = code + ": " + text + ", " + syscall;

  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  error.Set("syscall", Napi::String::New(env, syscall));
  error.Set("errno", Napi::Number::New(env, err));
  return error;
}

void ThrowErrno(Napi::Env env, int err, const char* syscall) {
  ErrnoError(env, err, syscall).ThrowAsJavaScriptException();
}

void ThrowTypeError(Napi::Env env, const char* message) {
  Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
}

}  // namespace starter
