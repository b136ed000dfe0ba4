// The one SIGCHLD reaper of the process.
//
// The handler reaps exited children and writes one 8-byte record {int32 pid, int32 raw wait
// status} per child into a non-blocking self-pipe whose read end JavaScript watches. A child is
// reaped only when its record is sure to fit into the pipe: a child whose record could not be
// written would be lost for good, while a zombie left behind is collected by the next
// reaperKick() once JavaScript has drained the pipe.
//
// Handlers can run on several threads at once (any Node thread with SIGCHLD unblocked), and
// reaperKick() runs the same loop from normal context. One reaper at a time holds a try-lock
// around peek / check room / waitpid / write; whoever finds the lock taken leaves a "pending"
// mark instead of waiting, and the holder runs its loop again when it sees the mark after
// unlocking. Nothing ever spins or blocks, so a handler cannot deadlock with the code it
// interrupted.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

#include "errors.h"
#include "modules.h"

namespace starter {

namespace {

struct Record {
  int32_t pid;
  int32_t status;
};
static_assert(sizeof(Record) == 8, "records are 8 bytes");
static_assert(sizeof(Record) <= PIPE_BUF, "a record must be written atomically");
static_assert(std::atomic<bool>::is_always_lock_free, "atomics must be usable in a handler");

constexpr int kWantedPipeSize = 1 << 20;

int g_read_fd = -1;
int g_write_fd = -1;
int g_page_size = 4096;  // sysconf is not async-signal-safe: read once in Start
std::atomic<bool> g_lock{false};
std::atomic<bool> g_pending{false};

// True when one more record is certain to fit into the pipe.
//
// A pipe is a ring of pages and an 8-byte write is appended to the last page; the bytes already
// read from the first page are not reusable until that page is read to its end. So up to one
// page less than the capacity may be usable, and one page is kept in reserve. Only this (locked)
// reaper writes, and the reader only frees space, so the answer cannot go stale. The capacity is
// read each time: whoever holds the pipe can change it with F_SETPIPE_SZ.
bool HasRoom() {
  int unread = 0;
  if (ioctl(g_write_fd, FIONREAD, &unread) != 0) return false;
  // An empty pipe has released all its pages: a record fits even into a one-page pipe.
  if (unread == 0) return true;
  int capacity = fcntl(g_write_fd, F_GETPIPE_SZ);
  return capacity > 0 &&
         static_cast<long>(unread) + g_page_size + static_cast<long>(sizeof(Record)) <= capacity;
}

bool WriteRecord(pid_t pid, int status) {
  Record record = {pid, status};
  ssize_t n;
  do {
    n = write(g_write_fd, &record, sizeof record);
  } while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(sizeof record);
}

// Reaps every exited child whose record fits. Called with g_lock held.
void ReapLocked() {
  for (;;) {
    // Peek without reaping: the child stays a zombie until its record is known to fit.
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
      if (errno == EINTR) continue;
      return;  // ECHILD: no children at all
    }
    if (info.si_pid == 0) return;  // children, but none has exited
    if (!HasRoom()) return;        // pipe full: leave the zombie for reaperKick()

    int status = 0;
    pid_t pid;
    do {
      pid = waitpid(info.si_pid, &status, WNOHANG);
    } while (pid < 0 && errno == EINTR);
    if (pid <= 0) return;  // somebody else reaped it (should not happen: we are the reaper)
    // Cannot fail for lack of room (checked above); a failure here (ENOMEM for a new pipe
    // page) loses this one record, and nothing better can be done inside a handler.
    WriteRecord(pid, status);
  }
}

// Runs ReapLocked under the try-lock; see the comment at the top of the file.
//
// The sequence is Dekker-like and relies on sequentially consistent atomics: a late caller stores
// g_pending then tries the lock; the holder clears the lock then loads g_pending. At least one of
// them sees the other's store, so an exit is never left unreported without a reaper on its way.
void ReapIntoPipe() {
  g_pending.store(true);
  while (g_pending.load()) {
    if (g_lock.exchange(true)) return;  // the holder will see g_pending and loop once more
    g_pending.store(false);
    ReapLocked();
    g_lock.store(false);
  }
}

void OnSigchld(int, siginfo_t*, void*) {
  int saved_errno = errno;
  ReapIntoPipe();
  errno = saved_errno;
}

// The reap loop from normal context, with SIGCHLD blocked in this thread meanwhile so that a handler
// never interrupts the lock holder on its own thread.
void ReapWithSigchldBlocked() {
  sigset_t chld, old;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  pthread_sigmask(SIG_BLOCK, &chld, &old);
  ReapIntoPipe();
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

Napi::Value Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (g_read_fd >= 0) return Napi::Number::New(env, g_read_fd);

  int fds[2];
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
    ThrowErrno(env, errno, "pipe2");
    return env.Undefined();
  }
  // A bigger pipe holds more exits between two drains (131072 records at 1 MiB). Failure (EPERM
  // over /proc/sys/fs/pipe-max-size without CAP_SYS_RESOURCE) leaves the default size.
  fcntl(fds[1], F_SETPIPE_SZ, kWantedPipeSize);
  long page = sysconf(_SC_PAGESIZE);
  if (page > 0) g_page_size = static_cast<int>(page);
  g_read_fd = fds[0];
  g_write_fd = fds[1];

  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_sigaction = OnSigchld;
  action.sa_flags = SA_SIGINFO | SA_RESTART | SA_NOCLDSTOP;
  sigemptyset(&action.sa_mask);
  if (sigaction(SIGCHLD, &action, nullptr) != 0) {
    int err = errno;
    close(fds[0]);
    close(fds[1]);
    g_read_fd = g_write_fd = -1;
    ThrowErrno(env, err, "sigaction");
    return env.Undefined();
  }

  // Children that exited before the handler existed sent their SIGCHLD to nobody.
  ReapWithSigchldBlocked();
  return Napi::Number::New(env, g_read_fd);
}

// reaperKick(): the handler's loop from normal context (see ReapWithSigchldBlocked). With the
// try-lock an interruption would be harmless (the handler would only leave a pending mark), but
// this way each thread reaps strictly in sequence.
void Kick(const Napi::CallbackInfo& info) {
  if (g_read_fd < 0) {
    Napi::Error::New(info.Env(), "reaperKick() called before reaperStart()")
        .ThrowAsJavaScriptException();
    return;
  }
  ReapWithSigchldBlocked();
}

}  // namespace

void InitReaper(Napi::Env env, Napi::Object exports) {
  exports.Set("reaperStart", Napi::Function::New(env, Start, "reaperStart"));
  exports.Set("reaperKick", Napi::Function::New(env, Kick, "reaperKick"));
}

}  // namespace starter
