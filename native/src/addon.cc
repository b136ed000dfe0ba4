// Module entry point: registers the functions of every source file (see index.d.ts).
#include <napi.h>

#include "modules.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  starter::InitSpawn(env, exports);
  starter::InitReaper(env, exports);
  starter::InitMount(env, exports);
  starter::InitSystem(env, exports);
  starter::InitSocket(env, exports);
  starter::InitPidfd(env, exports);
  starter::InitFdWatcher(env, exports);
  starter::InitMemory(env, exports);
  starter::InitKmod(env, exports);
  starter::InitSignals(env, exports);
  starter::InitListen(env, exports);
  starter::InitCgroup(env, exports);
  starter::InitWatchdog(env, exports);
  starter::InitExec(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(starter_native, Init)
