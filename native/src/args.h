// Readers for the options objects and arguments handed in from JavaScript.
//
// Each returns false with an exception pending (a TypeError for a malformed value, or whatever a
// getter threw) and true with *out filled in otherwise. `what` names the value in the message.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace starter {

// A lower-case flag name and its value, e.g. {"nosuid", MS_NOSUID}.
struct NamedFlag {
  const char* name;
  unsigned long value;
};

// obj[key]; an absent key reads as undefined.
bool GetProperty(const Napi::Object& obj, const char* key, Napi::Value* out);

bool ReadObject(Napi::Env env, const Napi::Value& value, const std::string& what, Napi::Object* out);
bool ReadBool(Napi::Env env, const Napi::Value& value, const std::string& what, bool* out);
// A string without NUL characters: C sees it whole, never cut short at an embedded NUL.
bool ReadString(Napi::Env env, const Napi::Value& value, const std::string& what, std::string* out);
// An integral number in [min, max].
bool ReadInt(Napi::Env env, const Napi::Value& value, const std::string& what, int64_t min,
             int64_t max, int64_t* out);
// A descriptor number (0 to INT_MAX).
bool ReadFd(Napi::Env env, const Napi::Value& value, const std::string& what, int* out);
bool ReadStringArray(Napi::Env env, const Napi::Value& value, const std::string& what,
                     std::vector<std::string>* out);
// The entry of `table` called `name`, or nullptr.
const NamedFlag* FindNamed(const NamedFlag* table, size_t table_size, const std::string& name);

// Reads options[key] when present; `read` is called with the value only if it is not undefined.
template <typename Read>
bool Optional(const Napi::Object& options, const char* key, Read read) {
  Napi::Value value;
  if (!GetProperty(options, key, &value)) return false;
  return value.IsUndefined() || read(value);
}

// An array of names from `table`, OR-ed together; an unknown name is a TypeError.
bool ReadFlags(Napi::Env env, const Napi::Value& value, const std::string& what,
               const NamedFlag* table, size_t table_size, unsigned long* out);

}  // namespace starter
