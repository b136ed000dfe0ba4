#include "args.h"

#include <cmath>

#include "errors.h"

namespace starter {

namespace {

bool Fail(Napi::Env env, const std::string& message) {
  ThrowTypeError(env, message.c_str());
  return false;
}

}  // namespace

bool GetProperty(const Napi::Object& obj, const char* key, Napi::Value* out) {
  *out = obj.Get(key);
  // An empty handle means a getter threw; its exception is pending.
  return !out->IsEmpty();
}

bool ReadObject(Napi::Env env, const Napi::Value& value, const std::string& what, Napi::Object* out) {
  if (!value.IsObject()) return Fail(env, what + " must be an object");
  *out = value.As<Napi::Object>();
  return true;
}

bool ReadBool(Napi::Env env, const Napi::Value& value, const std::string& what, bool* out) {
  if (!value.IsBoolean()) return Fail(env, what + " must be a boolean");
  *out = value.As<Napi::Boolean>().Value();
  return true;
}

bool ReadString(Napi::Env env, const Napi::Value& value, const std::string& what, std::string* out) {
  if (!value.IsString()) return Fail(env, what + " must be a string");
  *out = value.As<Napi::String>().Utf8Value();
  if (out->find('\0') != std::string::npos) return Fail(env, what + " must not contain NUL characters");
  return true;
}

bool ReadInt(Napi::Env env, const Napi::Value& value, const std::string& what, int64_t min,
             int64_t max, int64_t* out) {
  if (!value.IsNumber()) return Fail(env, what + " must be a number");
  double d = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::trunc(d) != d || d < static_cast<double>(min) ||
      d > static_cast<double>(max)) {
    return Fail(env, what + " must be an integer from " + std::to_string(min) + " to " +
                         std::to_string(max));
  }
  *out = static_cast<int64_t>(d);
  return true;
}

bool ReadFd(Napi::Env env, const Napi::Value& value, const std::string& what, int* out) {
  int64_t fd = 0;
  if (!ReadInt(env, value, what, 0, INT32_MAX, &fd)) return false;
  *out = static_cast<int>(fd);
  return true;
}

bool ReadStringArray(Napi::Env env, const Napi::Value& value, const std::string& what,
                     std::vector<std::string>* out) {
  if (!value.IsArray()) return Fail(env, what + " must be an array of strings");
  Napi::Array array = value.As<Napi::Array>();
  uint32_t length = array.Length();
  out->clear();
  out->reserve(length);
  for (uint32_t i = 0; i < length; i++) {
    Napi::Value item = array.Get(i);
    if (item.IsEmpty()) return false;
    std::string s;
    if (!ReadString(env, item, what + "[" + std::to_string(i) + "]", &s)) return false;
    out->push_back(std::move(s));
  }
  return true;
}

const NamedFlag* FindNamed(const NamedFlag* table, size_t table_size, const std::string& name) {
  for (size_t i = 0; i < table_size; i++) {
    if (name == table[i].name) return &table[i];
  }
  return nullptr;
}

bool ReadFlags(Napi::Env env, const Napi::Value& value, const std::string& what,
               const NamedFlag* table, size_t table_size, unsigned long* out) {
  std::vector<std::string> names;
  if (!ReadStringArray(env, value, what, &names)) return false;
  unsigned long flags = 0;
  for (const std::string& name : names) {
    const NamedFlag* found = FindNamed(table, table_size, name);
    if (found == nullptr) return Fail(env, what + ": unknown flag \"" + name + "\"");
    flags |= found->value;
  }
  *out = flags;
  return true;
}

}  // namespace starter
