{
  "targets": [
    {
      "target_name": "starter_native",
      "sources": [
        "src/addon.cc",
        "src/args.cc",
        "src/cgroup.cc",
        "src/errors.cc",
        "src/exec.cc",
        "src/fd_watcher.cc",
        "src/kmod.cc",
        "src/listen.cc",
        "src/memory.cc",
        "src/mount.cc",
        "src/pidfd.cc",
        "src/reaper.cc",
        "src/signals.cc",
        "src/socket.cc",
        "src/spawn.cc",
        "src/system.cc",
        "src/watchdog.cc"
      ],
      "dependencies": [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api"
      ],
      "defines": ["NAPI_VERSION=8"],
      "cflags!": ["-fexceptions"],
      "cflags_cc!": ["-fexceptions", "-std=gnu++17"],
      "cflags": ["-Wall", "-Wextra", "-Wformat=2", "-fvisibility=hidden", "-ffunction-sections", "-fdata-sections"],
      "cflags_cc": ["-std=c++17", "-fno-exceptions", "-fvisibility-inlines-hidden"],
      "ldflags": ["-Wl,--gc-sections", "-Wl,--strip-all"],
      "configurations": {"Release": {"cflags!": ["-O3"], "cflags": ["-Os"]}}
    }
  ]
}
