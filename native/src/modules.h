// Each source file exports its own functions onto the module object; addon.cc calls them all.
#pragma once

#include <napi.h>

namespace starter {

void InitSpawn(Napi::Env env, Napi::Object exports);
void InitReaper(Napi::Env env, Napi::Object exports);
void InitMount(Napi::Env env, Napi::Object exports);
void InitSystem(Napi::Env env, Napi::Object exports);
void InitSocket(Napi::Env env, Napi::Object exports);
void InitPidfd(Napi::Env env, Napi::Object exports);
void InitFdWatcher(Napi::Env env, Napi::Object exports);
void InitMemory(Napi::Env env, Napi::Object exports);
void InitKmod(Napi::Env env, Napi::Object exports);
void InitSignals(Napi::Env env, Napi::Object exports);
void InitListen(Napi::Env env, Napi::Object exports);
void InitCgroup(Napi::Env env, Napi::Object exports);
void InitWatchdog(Napi::Env env, Napi::Object exports);
void InitExec(Napi::Env env, Napi::Object exports);

}  // namespace starter
