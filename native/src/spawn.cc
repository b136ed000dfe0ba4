// spawn(): fork + exec with everything between them done here.
//
// The child is made the way posix_spawn makes it: clone(CLONE_VM | CLONE_VFORK) on a stack of its
// own. It shares the parent's memory until it execs, so nothing is copied (a fork of the init
// copies the page tables of a ~60 MiB process: about a millisecond, for every server), and the
// parent's thread sleeps meanwhile. What that asks of the child:
//  - only async-signal-safe calls on data prepared before the clone (ChildPlan): no allocation, no
//    lock, nothing that writes memory the parent owns (errno is the parent thread's; the parent
//    reads it only after its own failed calls);
//  - every signal blocked across the clone, and the child's dispositions reset to default before
//    it unblocks them: a handler of Node's or of the reaper must never run in the child;
//  - raw syscalls for the credentials (glibc's setuid would signal the parent's other threads).
//
// A close-on-exec "exec-stage" pipe tells the parent how the child fared: the child writes
// {stage, errno} and exits 127 when a step fails; end-of-file means execve succeeded. When clone
// returns the child has already exec'd or exited, so reading the pipe never blocks. The parent
// never waits for the child: the reaper owns every exit, including that of a failed child.
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <optional>
#include <iterator>
#include <string>
#include <vector>

#include "args.h"
#include "errors.h"
#include "modules.h"

namespace starter {

namespace {

// ---- what the child reports -----------------------------------------------------------------

enum Stage : int32_t {
  kStageFcntl = 1,
  kStageDup2,
  kStageSetsid,
  kStageSetpgid,
  kStageTcsetpgrp,
  kStageSetrlimit,
  kStageSetgroups,
  kStageSetgid,
  kStageSetuid,
  kStageChdir,
  kStageSigprocmask,
  kStageExecve,
  kStageCgroup,
};

const char* StageName(int32_t stage) {
  switch (stage) {
    case kStageFcntl: return "fcntl";
    case kStageDup2: return "dup2";
    case kStageSetsid: return "setsid";
    case kStageSetpgid: return "setpgid";
    case kStageTcsetpgrp: return "tcsetpgrp";
    case kStageSetrlimit: return "setrlimit";
    case kStageSetgroups: return "setgroups";
    case kStageSetgid: return "setgid";
    case kStageSetuid: return "setuid";
    case kStageChdir: return "chdir";
    case kStageSigprocmask: return "sigprocmask";
    case kStageExecve: return "execve";
    case kStageCgroup: return "cgroup";
    default: return "spawn";
  }
}

struct ExecFailure {
  int32_t stage;
  int32_t err;
};

// ---- options --------------------------------------------------------------------------------

struct StdioSpec {
  enum Kind { kInherit, kNull, kPipe, kFd, kStdout } kind = kInherit;
  int fd = -1;  // kFd only
};

struct RlimitSetting {
  int resource;
  struct rlimit limit;
};

constexpr NamedFlag kRlimitNames[] = {
    {"as", RLIMIT_AS},
    {"core", RLIMIT_CORE},
    {"cpu", RLIMIT_CPU},
    {"data", RLIMIT_DATA},
    {"fsize", RLIMIT_FSIZE},
    {"locks", RLIMIT_LOCKS},
    {"memlock", RLIMIT_MEMLOCK},
    {"msgqueue", RLIMIT_MSGQUEUE},
    {"nice", RLIMIT_NICE},
    {"nofile", RLIMIT_NOFILE},
    {"nproc", RLIMIT_NPROC},
    {"rss", RLIMIT_RSS},
    {"rtprio", RLIMIT_RTPRIO},
    {"rttime", RLIMIT_RTTIME},
    {"sigpending", RLIMIT_SIGPENDING},
    {"stack", RLIMIT_STACK},
};

// The options, read and checked; owns every string the child will see.
struct SpawnRequest {
  std::string file;
  std::vector<std::string> argv;
  std::vector<std::string> env;
  std::optional<std::string> cwd;
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  std::optional<std::vector<gid_t>> groups;
  std::optional<mode_t> umask;
  std::vector<RlimitSetting> rlimits;
  bool setsid = false;
  bool setpgid = false;
  bool foreground = false;
  bool controlling_terminal = false;
  StdioSpec stdio[3];
  int notify_fd = -1;
  // Socket activation (sd_listen_fds): fds of the parent placed at 3, 4, … in the child.
  std::vector<int> listen_fds;
  int cgroup_fd = -1;                  // cgroup.procs of the cgroup to join, or -1
  std::vector<std::string> pid_env;    // variables set to the child's own pid
  std::optional<std::string> oom_score_adj;  // written to /proc/self/oom_score_adj, best effort
};

// sd_listen_fds has no limit of its own; this one keeps the child's copy of them on its stack.
constexpr size_t kMaxListenFds = 256;

// stdin may not be "pipe" (SpawnResult has no stdin end); only stderr may be "stdout".
bool ReadStdio(Napi::Env env, const Napi::Value& value, const char* what, bool allow_pipe,
               bool allow_stdout, StdioSpec* out) {
  if (value.IsUndefined()) return true;  // default: inherit
  if (value.IsNumber()) {
    int fd = -1;
    if (!ReadFd(env, value, what, &fd)) return false;
    out->kind = StdioSpec::kFd;
    out->fd = fd;
    return true;
  }
  std::string name;
  if (!value.IsString() || !ReadString(env, value, what, &name)) {
    if (!env.IsExceptionPending()) {
      ThrowTypeError(env, (std::string(what) + " must be a string or an fd number").c_str());
    }
    return false;
  }
  if (name == "inherit") {
    out->kind = StdioSpec::kInherit;
  } else if (name == "null") {
    out->kind = StdioSpec::kNull;
  } else if (name == "pipe" && allow_pipe) {
    out->kind = StdioSpec::kPipe;
  } else if (name == "stdout" && allow_stdout) {
    out->kind = StdioSpec::kStdout;
  } else {
    ThrowTypeError(env, (std::string(what) + ": unsupported value \"" + name + "\"").c_str());
    return false;
  }
  return true;
}

bool ReadRlimits(Napi::Env env, const Napi::Value& value, std::vector<RlimitSetting>* out) {
  if (!value.IsArray()) {
    ThrowTypeError(env, "rlimits must be an array");
    return false;
  }
  Napi::Array array = value.As<Napi::Array>();
  for (uint32_t i = 0; i < array.Length(); i++) {
    std::string what = "rlimits[" + std::to_string(i) + "]";
    Napi::Value item = array.Get(i);
    Napi::Object spec;
    Napi::Value field;
    std::string name;
    int64_t soft = 0, hard = 0;
    if (item.IsEmpty() || !ReadObject(env, item, what, &spec)) return false;
    if (!GetProperty(spec, "resource", &field) || !ReadString(env, field, what + ".resource", &name)) {
      return false;
    }
    // -1 stands for RLIM_INFINITY; 2^53 is as far as a JavaScript number counts exactly.
    constexpr int64_t kMax = int64_t{1} << 53;
    if (!GetProperty(spec, "soft", &field) || !ReadInt(env, field, what + ".soft", -1, kMax, &soft)) {
      return false;
    }
    if (!GetProperty(spec, "hard", &field) || !ReadInt(env, field, what + ".hard", -1, kMax, &hard)) {
      return false;
    }

    const NamedFlag* found = FindNamed(kRlimitNames, std::size(kRlimitNames), name);
    if (found == nullptr) {
      ThrowTypeError(env, (what + ": unknown resource \"" + name + "\"").c_str());
      return false;
    }
    RlimitSetting setting;
    setting.resource = static_cast<int>(found->value);
    setting.limit.rlim_cur = soft < 0 ? RLIM_INFINITY : static_cast<rlim_t>(soft);
    setting.limit.rlim_max = hard < 0 ? RLIM_INFINITY : static_cast<rlim_t>(hard);
    out->push_back(setting);
  }
  return true;
}

bool ReadSpawnRequest(Napi::Env env, const Napi::Value& arg, SpawnRequest* req) {
  constexpr int64_t kMaxId = 0xfffffffe;  // (uid_t)-1 means "no change" to the kernel
  Napi::Object options;
  Napi::Value value;
  if (!ReadObject(env, arg, "options", &options)) return false;
  if (!GetProperty(options, "file", &value) || !ReadString(env, value, "file", &req->file)) return false;
  if (!GetProperty(options, "argv", &value) || !ReadStringArray(env, value, "argv", &req->argv)) {
    return false;
  }
  if (!GetProperty(options, "env", &value) || !ReadStringArray(env, value, "env", &req->env)) return false;

  auto read_cwd = [&](const Napi::Value& v) {
    std::string cwd;
    if (!ReadString(env, v, "cwd", &cwd)) return false;
    req->cwd = cwd;
    return true;
  };
  auto read_uid = [&](const Napi::Value& v) {
    int64_t id = 0;
    if (!ReadInt(env, v, "uid", 0, kMaxId, &id)) return false;
    req->uid = static_cast<uid_t>(id);
    return true;
  };
  auto read_gid = [&](const Napi::Value& v) {
    int64_t id = 0;
    if (!ReadInt(env, v, "gid", 0, kMaxId, &id)) return false;
    req->gid = static_cast<gid_t>(id);
    return true;
  };
  auto read_groups = [&](const Napi::Value& v) {
    if (!v.IsArray()) {
      ThrowTypeError(env, "groups must be an array of numbers");
      return false;
    }
    Napi::Array array = v.As<Napi::Array>();
    std::vector<gid_t> groups;
    for (uint32_t i = 0; i < array.Length(); i++) {
      int64_t id = 0;
      Napi::Value item = array.Get(i);
      if (item.IsEmpty() || !ReadInt(env, item, "groups[" + std::to_string(i) + "]", 0, kMaxId, &id)) {
        return false;
      }
      groups.push_back(static_cast<gid_t>(id));
    }
    req->groups = std::move(groups);
    return true;
  };
  auto read_umask = [&](const Napi::Value& v) {
    int64_t mask = 0;
    if (!ReadInt(env, v, "umask", 0, 0777, &mask)) return false;
    req->umask = static_cast<mode_t>(mask);
    return true;
  };
  auto read_rlimits = [&](const Napi::Value& v) { return ReadRlimits(env, v, &req->rlimits); };
  auto read_flag = [&](const char* key, bool* out) {
    return Optional(options, key, [&](const Napi::Value& v) { return ReadBool(env, v, key, out); });
  };
  // ---- socket activation ----
  auto read_listen_fds = [&](const Napi::Value& v) {
    if (!v.IsArray()) {
      ThrowTypeError(env, "listenFds must be an array of fds");
      return false;
    }
    Napi::Array array = v.As<Napi::Array>();
    if (array.Length() > kMaxListenFds) {
      ThrowTypeError(env, "listenFds: at most 256 fds");
      return false;
    }
    for (uint32_t i = 0; i < array.Length(); i++) {
      int fd = -1;
      Napi::Value item = array.Get(i);
      if (item.IsEmpty() || !ReadFd(env, item, "listenFds[" + std::to_string(i) + "]", &fd)) return false;
      req->listen_fds.push_back(fd);
    }
    return true;
  };
  auto read_cgroup = [&](const Napi::Value& v) {
    return ReadFd(env, v, "cgroupFd", &req->cgroup_fd);
  };
  auto read_pid_env = [&](const Napi::Value& v) {
    if (!ReadStringArray(env, v, "pidEnv", &req->pid_env)) return false;
    std::sort(req->pid_env.begin(), req->pid_env.end());
    req->pid_env.erase(std::unique(req->pid_env.begin(), req->pid_env.end()), req->pid_env.end());
    return true;
  };
  auto read_oom = [&](const Napi::Value& v) {
    int64_t score = 0;
    if (!ReadInt(env, v, "oomScoreAdj", -1000, 1000, &score)) return false;
    req->oom_score_adj = std::to_string(score);
    return true;
  };
  auto read_notify = [&](const Napi::Value& v) {
    int64_t fd = 0;
    // 0-2 belong to stdio; INT_MAX - 1 leaves room for "one above it".
    if (!ReadInt(env, v, "notifyFd", 3, INT_MAX - 1, &fd)) return false;
    req->notify_fd = static_cast<int>(fd);
    return true;
  };

  return Optional(options, "cwd", read_cwd) && Optional(options, "uid", read_uid) &&
         Optional(options, "gid", read_gid) && Optional(options, "groups", read_groups) &&
         Optional(options, "umask", read_umask) && Optional(options, "rlimits", read_rlimits) &&
         read_flag("setsid", &req->setsid) && read_flag("setpgid", &req->setpgid) &&
         read_flag("foreground", &req->foreground) &&
         read_flag("controllingTerminal", &req->controlling_terminal) &&
         Optional(options, "notifyFd", read_notify) && Optional(options, "listenFds", read_listen_fds) &&
         Optional(options, "cgroupFd", read_cgroup) && Optional(options, "pidEnv", read_pid_env) &&
         Optional(options, "oomScoreAdj", read_oom) &&
         GetProperty(options, "stdin", &value) &&
         ReadStdio(env, value, "stdin", false, false, &req->stdio[0]) &&
         GetProperty(options, "stdout", &value) &&
         ReadStdio(env, value, "stdout", true, false, &req->stdio[1]) &&
         GetProperty(options, "stderr", &value) &&
         ReadStdio(env, value, "stderr", true, true, &req->stdio[2]);
}

// ---- descriptors ----------------------------------------------------------------------------

// Owns one descriptor of the parent; closes it unless released.
class Fd {
 public:
  Fd() = default;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Reset(); }

  int get() const { return fd_; }
  void Reset(int fd = -1) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }
  int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_ = -1;
};

// A pipe with both ends close-on-exec.
bool OpenPipe(Napi::Env env, Fd* read_end, Fd* write_end) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    ThrowErrno(env, errno, "pipe2");
    return false;
  }
  read_end->Reset(fds[0]);
  write_end->Reset(fds[1]);
  return true;
}

// The parent's end of an output pipe is non-blocking, for the event loop.
// (Called on fresh pipe ends only, whose one status flag is their access mode: no F_GETFL needed.)
bool SetNonBlocking(Napi::Env env, int fd) {
  if (fcntl(fd, F_SETFL, O_NONBLOCK) != 0) {
    ThrowErrno(env, errno, "fcntl");
    return false;
  }
  return true;
}

// How the child fills one of its fds 0-2.
struct ChildStdio {
  enum Kind { kKeep, kClose, kDup, kSameAsStdout } kind = kKeep;
  int source = -1;  // kDup only
};

// Every descriptor spawn() opens. Destroying it closes whatever was not handed to JavaScript.
struct SpawnFds {
  Fd dev_null;
  Fd out_read, out_write;
  Fd err_read, err_write;
  Fd notify_read, notify_write;
  Fd stage_read, stage_write;

  // The ends the child uses; closed in the parent right after fork.
  void CloseChildEnds() {
    dev_null.Reset();
    out_write.Reset();
    err_write.Reset();
    notify_write.Reset();
    stage_write.Reset();
  }
};

// Turns a StdioSpec other than "inherit" into what the child does with fd `target`, opening what
// it needs.
bool OpenStdio(Napi::Env env, int target, const StdioSpec& spec, SpawnFds* fds, ChildStdio* out) {
  switch (spec.kind) {
    case StdioSpec::kInherit:  // decided by Spawn before any descriptor is opened
      return true;
    case StdioSpec::kNull:
      if (fds->dev_null.get() < 0) {
        fds->dev_null.Reset(open("/dev/null", O_RDWR | O_CLOEXEC));
        if (fds->dev_null.get() < 0) {
          ThrowErrno(env, errno, "open");
          return false;
        }
      }
      out->kind = ChildStdio::kDup;
      out->source = fds->dev_null.get();
      return true;
    case StdioSpec::kPipe: {
      Fd* read_end = target == 1 ? &fds->out_read : &fds->err_read;
      Fd* write_end = target == 1 ? &fds->out_write : &fds->err_write;
      if (!OpenPipe(env, read_end, write_end) || !SetNonBlocking(env, read_end->get())) return false;
      out->kind = ChildStdio::kDup;
      out->source = write_end->get();
      return true;
    }
    case StdioSpec::kFd:
      out->kind = ChildStdio::kDup;
      out->source = spec.fd;
      return true;
    case StdioSpec::kStdout:
      out->kind = ChildStdio::kSameAsStdout;
      return true;
  }
  return true;
}

// ---- the child ------------------------------------------------------------------------------

// Everything the child reads: plain data and pointers into SpawnRequest, nothing to allocate.
struct ChildPlan {
  const char* file;
  char* const* argv;
  char* const* envp;
  const char* cwd;  // may be null
  const uid_t* uid;
  const gid_t* gid;
  const gid_t* groups;
  size_t group_count;
  bool set_groups;
  const mode_t* umask;
  const RlimitSetting* rlimits;
  size_t rlimit_count;
  bool setsid;
  bool setpgid;
  bool foreground;
  bool controlling_terminal;
  ChildStdio stdio[3];
  int notify_source;  // write end of the notify pipe, or -1
  int notify_target;
  const int* listen_fds;  // placed at 3, 4, … (socket activation)
  size_t listen_count;
  int stage_fd;       // write end of the exec-stage pipe, numbered >= first_free
  int first_free;     // lowest fd number that is no target: max(3 + listen_count, notify_target + 1)
  int cgroup_fd;      // cgroup.procs to write "0" to, or -1
  const char* oom_score_adj;  // the value for /proc/self/oom_score_adj, or null
  char* const* pid_slots;  // where the child writes its pid: the value of each pidEnv variable
  size_t pid_slot_count;
};

[[noreturn]] void Fail(const ChildPlan& plan, Stage stage) {
  ExecFailure failure = {stage, errno};
  ssize_t n;
  do {
    n = write(plan.stage_fd, &failure, sizeof failure);
  } while (n < 0 && errno == EINTR);
  _exit(127);
}

// Node ignores SIGPIPE and installs handlers; a program must start with default dispositions.
// sigaction fails (EINVAL) for SIGKILL, SIGSTOP and glibc's two internal signals: nothing to do.
void ResetSignalDispositions() {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = SIG_DFL;
  sigemptyset(&action.sa_mask);
  for (int sig = 1; sig < NSIG; sig++) sigaction(sig, &action, nullptr);
}

// Marks [first, last] close-on-exec; fds still needed before exec (the exec-stage pipe) stay
// usable until then.
void CloexecRange(unsigned first, unsigned last) {
  if (first > last) return;
  if (close_range(first, last, CLOSE_RANGE_CLOEXEC) == 0) return;
  // Kernels before 5.11 lack CLOSE_RANGE_CLOEXEC: mark each fd below the limit.
  struct rlimit nofile;
  unsigned limit = getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < INT_MAX
                       ? static_cast<unsigned>(nofile.rlim_cur)
                       : 65536;
  for (unsigned fd = first; fd <= last && fd < limit; fd++) {
    fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
  }
}

// Puts stdio and the notify pipe in place and marks every other fd close-on-exec.
void PlaceFds(const ChildPlan& plan) {
  // First lift each source out of the target range: with stdout: 2 and stderr: 1, dup2(2, 1)
  // would overwrite the fd 1 that stderr is about to be copied from. Copies above every target
  // cannot be overwritten; they are close-on-exec and vanish at exec.
  int sources[3];
  for (int i = 0; i < 3; i++) {
    sources[i] = plan.stdio[i].source;
    if (plan.stdio[i].kind == ChildStdio::kDup && sources[i] < plan.first_free) {
      sources[i] = fcntl(sources[i], F_DUPFD_CLOEXEC, plan.first_free);
      if (sources[i] < 0) Fail(plan, kStageFcntl);
    }
  }
  int notify_source = plan.notify_source;
  if (notify_source >= 0 && notify_source < plan.first_free) {
    notify_source = fcntl(notify_source, F_DUPFD_CLOEXEC, plan.first_free);
    if (notify_source < 0) Fail(plan, kStageFcntl);
  }

  // dup2 clears close-on-exec on the new fd. Order 0, 1, 2 lets stderr copy the finished fd 1.
  for (int i = 0; i < 3; i++) {
    switch (plan.stdio[i].kind) {
      case ChildStdio::kKeep:
        if (fcntl(i, F_SETFD, 0) != 0) Fail(plan, kStageFcntl);
        break;
      case ChildStdio::kClose:
        close(i);
        break;
      case ChildStdio::kDup:
        if (dup2(sources[i], i) < 0) Fail(plan, kStageDup2);
        break;
      case ChildStdio::kSameAsStdout:
        if (dup2(1, i) < 0) Fail(plan, kStageDup2);
        break;
    }
  }
  if (notify_source >= 0 && dup2(notify_source, plan.notify_target) < 0) Fail(plan, kStageDup2);

  if (plan.notify_target >= 0) {
    CloexecRange(3, static_cast<unsigned>(plan.notify_target) - 1);
    CloexecRange(static_cast<unsigned>(plan.notify_target) + 1, ~0U);
  } else {
    CloexecRange(3, ~0U);
  }
}

// ---- socket activation (sd_listen_fds) -------------------------------------------------------
// The listening sockets go to fds 3, 4, … (LISTEN_PID is one of the pidEnv variables). A source fd below first_free could be overwritten by another target
// (stdio, notify, another socket): it is copied above every target first, before any dup2.

void LiftListenFds(const ChildPlan& plan, int* sources) {
  for (size_t i = 0; i < plan.listen_count; i++) {
    sources[i] = plan.listen_fds[i];
    if (sources[i] < plan.first_free) {
      sources[i] = fcntl(sources[i], F_DUPFD_CLOEXEC, plan.first_free);
      if (sources[i] < 0) Fail(plan, kStageFcntl);
    }
  }
}

// After PlaceFds: dup2 clears close-on-exec on each target (a source is never its own target).
void PlaceListenFds(const ChildPlan& plan, const int* sources) {
  for (size_t i = 0; i < plan.listen_count; i++) {
    if (dup2(sources[i], 3 + static_cast<int>(i)) < 0) Fail(plan, kStageDup2);
  }
}

// Makes the child's process group the foreground group of the terminal on its stdin. Like tini,
// "no terminal" (ENOTTY, ENXIO) is not an error.
void TakeTerminal(const ChildPlan& plan) {
  struct termios attributes;
  if (tcgetattr(0, &attributes) != 0) return;  // stdin is not a terminal

  // A background group writing to the terminal's settings gets SIGTTOU: ignore it meanwhile.
  struct sigaction action;
  memset(&action, 0, sizeof action);
  sigemptyset(&action.sa_mask);
  action.sa_handler = SIG_IGN;
  sigaction(SIGTTOU, &action, nullptr);
  int rc = tcsetpgrp(0, getpid());
  int err = errno;
  action.sa_handler = SIG_DFL;
  sigaction(SIGTTOU, &action, nullptr);
  if (rc != 0 && err != ENOTTY && err != ENXIO) {
    errno = err;
    Fail(plan, kStageTcsetpgrp);
  }
}

// ---- the child's cgroup, own pid and OOM score -------------------------------------------------
// Joining the cgroup comes first, before any fd is moved (its fd may be a target number) and before
// the program runs, so that everything it ever forks is in the cgroup too. Writing "0" to
// cgroup.procs moves the writer. The pid variables (WATCHDOG_PID) can only be filled in here: the
// parent reserved room for their digits. The OOM score undoes what the init set for itself (-1000,
// never to be picked): a server keeps the score the init was started with, so the OOM killer of its
// cgroup can end it (a process at -1000 is never a victim: its allocation would wait forever).
void ResetOomScore(const ChildPlan& plan) {
  if (plan.oom_score_adj == nullptr) return;
  int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;  // no /proc: the score stays inherited
  ssize_t n;
  do {
    n = write(fd, plan.oom_score_adj, strlen(plan.oom_score_adj));
  } while (n < 0 && errno == EINTR);
  close(fd);
}

void JoinCgroup(const ChildPlan& plan) {
  if (plan.cgroup_fd < 0) return;
  ssize_t n;
  do {
    n = write(plan.cgroup_fd, "0", 1);
  } while (n < 0 && errno == EINTR);
  if (n != 1) Fail(plan, kStageCgroup);
}

void WriteOwnPid(const ChildPlan& plan) {
  if (plan.pid_slot_count == 0) return;
  char digits[16];
  int count = 0;
  for (long pid = static_cast<long>(getpid()); count == 0 || pid > 0; pid /= 10) {
    digits[count++] = static_cast<char>('0' + pid % 10);
  }
  for (size_t slot = 0; slot < plan.pid_slot_count; slot++) {
    char* out = plan.pid_slots[slot];
    for (int i = 0; i < count; i++) out[i] = digits[count - 1 - i];
    out[count] = '\0';
  }
}
// --------------------------------------------------------------------------------------------------

// Runs in the child, on its own stack in the parent's memory, with every signal blocked. Never
// returns.
[[noreturn]] void RunChild(const ChildPlan& plan) {
  JoinCgroup(plan);
  WriteOwnPid(plan);
  ResetOomScore(plan);
  ResetSignalDispositions();
  int listen_sources[kMaxListenFds];
  LiftListenFds(plan, listen_sources);
  PlaceFds(plan);
  PlaceListenFds(plan, listen_sources);

  if (plan.setsid) {
    if (setsid() < 0) Fail(plan, kStageSetsid);
    // dumb-init's rule: take the terminal on stdin when no other session holds it. Failing (not a
    // terminal, or still another session's) leaves the program without one, which is no error.
    if (plan.controlling_terminal) ioctl(0, TIOCSCTTY, 0);
  } else if (plan.setpgid) {
    if (setpgid(0, 0) != 0) Fail(plan, kStageSetpgid);
    if (plan.foreground) TakeTerminal(plan);
  }

  // Limits come before the uid change: raising a hard limit needs the privileges the init has.
  for (size_t i = 0; i < plan.rlimit_count; i++) {
    if (setrlimit(plan.rlimits[i].resource, &plan.rlimits[i].limit) != 0) Fail(plan, kStageSetrlimit);
  }
  if (plan.umask != nullptr) umask(*plan.umask);

  // Raw syscalls: glibc's wrappers would signal every other thread of the process to change
  // their credentials too (the child has only this thread, but the bookkeeping is the parent's,
  // and with CLONE_VM so is the memory it lives in).
  if (plan.set_groups && syscall(SYS_setgroups, plan.group_count, plan.groups) != 0) {
    Fail(plan, kStageSetgroups);
  }
  if (plan.gid != nullptr && syscall(SYS_setgid, *plan.gid) != 0) Fail(plan, kStageSetgid);
  if (plan.uid != nullptr && syscall(SYS_setuid, *plan.uid) != 0) Fail(plan, kStageSetuid);

  // After setuid, so that the directory is checked with the program's own permissions.
  if (plan.cwd != nullptr && chdir(plan.cwd) != 0) Fail(plan, kStageChdir);

  sigset_t none;
  sigemptyset(&none);
  if (sigprocmask(SIG_SETMASK, &none, nullptr) != 0) Fail(plan, kStageSigprocmask);
  execve(plan.file, plan.argv, plan.envp);
  Fail(plan, kStageExecve);
}

int ChildMain(void* plan) { RunChild(*static_cast<const ChildPlan*>(plan)); }

// ---- the parent -----------------------------------------------------------------------------

// The child's stack, one per thread that spawns (a worker thread may load the addon too): the
// thread sleeps until its child has exec'd or exited, so one stack serves all of its children. Its
// lowest page is a guard.
constexpr size_t kChildStackBytes = 64 * 1024;

class ChildStack {
 public:
  ~ChildStack() {
    if (base_ != nullptr) munmap(base_, bytes_);
  }
  // The top of the stack (it grows down), mapped on first use; nullptr with errno set on failure.
  char* Top() {
    if (base_ == nullptr) {
      const size_t guard = static_cast<size_t>(sysconf(_SC_PAGESIZE));
      void* base = mmap(nullptr, kChildStackBytes + guard, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
      if (base == MAP_FAILED) return nullptr;
      mprotect(base, guard, PROT_NONE);
      base_ = base;
      bytes_ = kChildStackBytes + guard;
    }
    return static_cast<char*>(base_) + bytes_;
  }

 private:
  void* base_ = nullptr;
  size_t bytes_ = 0;
};
thread_local ChildStack g_child_stack;

// NULL-terminated array of pointers into `strings` (which must outlive it).
std::vector<char*> CStringArray(std::vector<std::string>& strings) {
  std::vector<char*> array;
  array.reserve(strings.size() + 1);
  for (std::string& s : strings) array.push_back(s.data());
  array.push_back(nullptr);
  return array;
}

// Reads the exec-stage pipe until end-of-file. Returns 1 with *failure filled in when the child
// reported one, 0 when execve succeeded, -1 (errno set) when reading failed.
int ReadExecFailure(int fd, ExecFailure* failure) {
  char* buffer = reinterpret_cast<char*>(failure);
  size_t got = 0;
  while (got < sizeof *failure) {
    ssize_t n = read(fd, buffer + got, sizeof *failure - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  // A write of 8 bytes into a pipe is atomic: a partial record cannot happen.
  return got == sizeof *failure ? 1 : 0;
}

Napi::Value Spawn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SpawnRequest req;
  if (!ReadSpawnRequest(env, info[0], &req)) return env.Undefined();

  // Inherited fds are checked before any pipe exists, so a pipe that happens to get number 0-2
  // is not mistaken for an inherited stream.
  ChildStdio stdio[3];
  for (int i = 0; i < 3; i++) {
    if (req.stdio[i].kind == StdioSpec::kInherit) {
      // fds 0-2 are close-on-exec in Node: the child clears the flag. A closed one stays closed.
      stdio[i].kind = fcntl(i, F_GETFD) >= 0 ? ChildStdio::kKeep : ChildStdio::kClose;
    }
  }
  SpawnFds fds;
  for (int i = 0; i < 3; i++) {
    if (req.stdio[i].kind != StdioSpec::kInherit && !OpenStdio(env, i, req.stdio[i], &fds, &stdio[i])) {
      return env.Undefined();
    }
  }
  if (stdio[2].kind == ChildStdio::kSameAsStdout && stdio[1].kind == ChildStdio::kClose) {
    stdio[2].kind = ChildStdio::kClose;
  }
  if (req.notify_fd >= 0 && !OpenPipe(env, &fds.notify_read, &fds.notify_write)) return env.Undefined();
  if (fds.notify_read.get() >= 0 && !SetNonBlocking(env, fds.notify_read.get())) return env.Undefined();

  // ---- socket activation: the sockets take fds 3, 4, …; the notify fd must lie above them ----
  const int listen_end = 3 + static_cast<int>(req.listen_fds.size());
  if (req.notify_fd >= 0 && req.notify_fd < listen_end) {
    ThrowTypeError(env, "notifyFd must be above the listenFds (3 + their count)");
    return env.Undefined();
  }

  const int first_free = req.notify_fd >= 0 ? req.notify_fd + 1 : listen_end;
  if (!OpenPipe(env, &fds.stage_read, &fds.stage_write)) return env.Undefined();
  // The child reports failures through this fd until exec: keep it above every target fd.
  if (fds.stage_write.get() < first_free) {
    int lifted = fcntl(fds.stage_write.get(), F_DUPFD_CLOEXEC, first_free);
    if (lifted < 0) {
      ThrowErrno(env, errno, "fcntl");
      return env.Undefined();
    }
    fds.stage_write.Reset(lifted);
  }

  char* stack_top = g_child_stack.Top();
  if (stack_top == nullptr) {
    ThrowErrno(env, errno, "mmap");
    return env.Undefined();
  }

  // Each pidEnv variable (LISTEN_PID, WATCHDOG_PID) replaces any value given in env, with room for
  // any pid's digits, which the child writes over (WriteOwnPid).
  for (const std::string& name : req.pid_env) {
    const std::string prefix = name + "=";
    req.env.erase(std::remove_if(req.env.begin(), req.env.end(),
                                 [&](const std::string& entry) { return entry.compare(0, prefix.size(), prefix) == 0; }),
                  req.env.end());
    req.env.push_back(prefix + std::string(20, '0'));
  }
  std::vector<char*> pid_slots;
  for (size_t i = 0; i < req.pid_env.size(); i++) {
    std::string& entry = req.env[req.env.size() - req.pid_env.size() + i];
    pid_slots.push_back(entry.data() + req.pid_env[i].size() + 1);
  }

  std::vector<char*> argv = CStringArray(req.argv);
  std::vector<char*> envp = CStringArray(req.env);
  ChildPlan plan = {};
  plan.file = req.file.c_str();
  plan.argv = argv.data();
  plan.envp = envp.data();
  plan.cwd = req.cwd ? req.cwd->c_str() : nullptr;
  plan.uid = req.uid ? &*req.uid : nullptr;
  plan.gid = req.gid ? &*req.gid : nullptr;
  plan.set_groups = req.groups.has_value();
  plan.groups = req.groups ? req.groups->data() : nullptr;
  plan.group_count = req.groups ? req.groups->size() : 0;
  plan.umask = req.umask ? &*req.umask : nullptr;
  plan.rlimits = req.rlimits.data();
  plan.rlimit_count = req.rlimits.size();
  plan.setsid = req.setsid;
  plan.setpgid = req.setpgid;
  plan.foreground = req.foreground;
  plan.controlling_terminal = req.controlling_terminal;
  for (int i = 0; i < 3; i++) plan.stdio[i] = stdio[i];
  plan.notify_source = fds.notify_write.get();
  plan.notify_target = req.notify_fd;
  plan.listen_fds = req.listen_fds.data();
  plan.listen_count = req.listen_fds.size();
  plan.stage_fd = fds.stage_write.get();
  plan.first_free = first_free;
  plan.cgroup_fd = req.cgroup_fd;
  plan.oom_score_adj = req.oom_score_adj ? req.oom_score_adj->c_str() : nullptr;
  plan.pid_slots = pid_slots.data();
  plan.pid_slot_count = pid_slots.size();

  // With every signal blocked no handler runs in the child before its dispositions are reset
  // (a Node or reaper handler there would act on the parent's behalf).
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = clone(ChildMain, stack_top, CLONE_VM | CLONE_VFORK | SIGCHLD, &plan);
  int fork_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);

  fds.CloseChildEnds();
  if (pid < 0) {
    ThrowErrno(env, fork_errno, "clone");
    return env.Undefined();
  }

  ExecFailure failure = {0, 0};
  int outcome = ReadExecFailure(fds.stage_read.get(), &failure);
  if (outcome != 0) {
    // The parent ends close with `fds`. The child's exit still arrives through the reaper.
    Napi::Error error = outcome > 0 ? ErrnoError(env, failure.err, StageName(failure.stage))
                                    : ErrnoError(env, errno, "read");
    error.Set("pid", Napi::Number::New(env, pid));
    error.ThrowAsJavaScriptException();
    return env.Undefined();
  }

  Napi::Object result = Napi::Object::New(env);
  result.Set("pid", Napi::Number::New(env, pid));
  result.Set("stdoutFd", Napi::Number::New(env, fds.out_read.Release()));
  result.Set("stderrFd", Napi::Number::New(env, fds.err_read.Release()));
  result.Set("notifyFd", Napi::Number::New(env, fds.notify_read.Release()));
  return result;
}

}  // namespace

void InitSpawn(Napi::Env env, Napi::Object exports) {
  exports.Set("spawn", Napi::Function::New(env, Spawn, "spawn"));
}

}  // namespace starter
