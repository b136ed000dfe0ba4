// The one SIGCHLD reaper of the process.
//
// The handler reaps exited children with waitpid(-1, WNOHANG) and writes one 8-byte record {int32
// pid, int32 raw wait status} per child into a non-blocking self-pipe whose read end JavaScript
// watches. Records are written in batches, one write() per batch of up to 512 (4096 bytes, PIPE_BUF:
// a batch is written whole or not at all), so a storm of exits costs about one syscall per child,
// as in tini. A child is reaped only when its record is sure to fit into the pipe: a child whose
// record could not be written would be lost for good, while a zombie left behind is collected
// later. When the handler stops for lack of room it sets the "deferred" mark, and reaperKick(),
// which JavaScript calls after each drain of the pipe, reaps again only then (no syscall otherwise).
//
// Which thread takes SIGCHLD. The kernel gives a process's signal to its main thread when that thread
// does not block it, even while it sleeps uninterruptibly (a log write the kernel throttles, a page
// fault): the zombies would wait for it. So the thread that starts the reaper blocks SIGCHLD for good
// (threads it makes later inherit that), and a thread of the reaper's own, which does nothing but
// wait with only SIGCHLD unblocked, is always ready to take it. Node's threads made earlier may take
// it too; that is harmless.
//
// Handlers can run on several threads at once (any thread with SIGCHLD unblocked), and
// reaperKick() runs the same loop from normal context. One reaper at a time holds a try-lock
// around check room / waitpid / write; whoever finds the lock taken leaves a "pending" mark
// instead of waiting, and the holder runs its loop again when it sees the mark after unlocking.
// Nothing ever spins or blocks, so a handler cannot deadlock with the code it interrupted.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
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
constexpr size_t kBatchRecords = PIPE_BUF / sizeof(Record);

int g_read_fd = -1;
int g_write_fd = -1;
long g_page_size = 4096;  // sysconf is not async-signal-safe: read once in Start
std::atomic<bool> g_lock{false};
std::atomic<bool> g_pending{false};
std::atomic<bool> g_deferred{false};
Record g_batch[kBatchRecords];  // used under g_lock only

// How many records may be reaped now: they are certain to fit into the pipe as one more batch.
//
// A pipe is a ring of page-sized slots. A write appends to the last slot when it fits there,
// otherwise it takes a new slot; bytes read from the first slot are not reusable until that slot
// is read to its end. So with every write at most a page, two neighbouring slots hold more than a
// page between them, and `unread` bytes occupy at most 2 * unread / page + 2 slots. One more batch
// needs one free slot. Only this (locked) reaper writes, and the reader only frees space, so the
// answer cannot go stale. The capacity is read each time (once per batch): whoever holds the pipe
// can change it with F_SETPIPE_SZ.
size_t RecordsThatFit() {
  int unread = 0;
  if (ioctl(g_write_fd, FIONREAD, &unread) != 0) return 0;
  // An empty pipe has released all its slots: a batch fits even into a one-slot pipe.
  if (unread == 0) return kBatchRecords;
  const long capacity = fcntl(g_write_fd, F_GETPIPE_SZ);
  const long used = 2 * static_cast<long>(unread) / g_page_size + 2;
  return capacity > 0 && used + 1 <= capacity / g_page_size ? kBatchRecords : 0;
}

bool WriteBatch(size_t count) {
  const size_t bytes = count * sizeof(Record);
  ssize_t n;
  do {
    n = write(g_write_fd, g_batch, bytes);
  } while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(bytes);
}

// Reaps every exited child whose record fits, a batch at a time. Called with g_lock held.
void ReapLocked() {
  for (;;) {
    const size_t room = RecordsThatFit();
    if (room == 0) {
      // Pipe full: leave the zombies for reaperKick(), once JavaScript has drained the pipe.
      g_deferred.store(true);
      return;
    }
    size_t count = 0;
    while (count < room) {
      int status = 0;
      pid_t pid = waitpid(-1, &status, WNOHANG);
      if (pid < 0 && errno == EINTR) continue;
      if (pid <= 0) break;  // 0: children, none has exited; ECHILD: no children at all
      g_batch[count++] = {pid, status};
    }
    // Cannot fail for lack of room (checked above); a failure here (ENOMEM for a new pipe page)
    // loses these records, and nothing better can be done inside a handler.
    if (count > 0) WriteBatch(count);
    if (count < room) return;  // nothing more has exited
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

// The reaper's own thread: every signal but SIGCHLD blocked, asleep until a SIGCHLD's handler has run.
void* SigchldThread(void*) {
  sigset_t only_chld;
  sigfillset(&only_chld);
  sigdelset(&only_chld, SIGCHLD);
  pthread_sigmask(SIG_SETMASK, &only_chld, nullptr);
  for (;;) pause();
  return nullptr;
}

// Starts SigchldThread (made with every signal blocked, so that no handler runs on it before it has
// set its mask) and blocks SIGCHLD in the calling thread. Returns an errno value, 0 on success.
int StartSigchldThread() {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, PTHREAD_STACK_MIN > 65536 ? PTHREAD_STACK_MIN : 65536);
  pthread_t thread;
  int err = pthread_create(&thread, &attr, SigchldThread, nullptr);
  pthread_attr_destroy(&attr);
  if (err == 0) pthread_setname_np(thread, "reaper");
  sigaddset(&old, SIGCHLD);
  if (err != 0) sigdelset(&old, SIGCHLD);  // no thread of ours: the main thread must take it
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return err;
}

bool InstallHandler() {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_sigaction = OnSigchld;
  action.sa_flags = SA_SIGINFO | SA_RESTART | SA_NOCLDSTOP;
  sigemptyset(&action.sa_mask);
  return sigaction(SIGCHLD, &action, nullptr) == 0;
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
  if (page > 0) g_page_size = page;
  g_read_fd = fds[0];
  g_write_fd = fds[1];

  if (!InstallHandler()) {
    int err = errno;
    close(fds[0]);
    close(fds[1]);
    g_read_fd = g_write_fd = -1;
    ThrowErrno(env, err, "sigaction");
    return env.Undefined();
  }

  // Without a thread of its own (EAGAIN: out of threads) SIGCHLD is taken as before, by any thread.
  StartSigchldThread();

  // Children that exited before the handler existed sent their SIGCHLD to nobody.
  ReapWithSigchldBlocked();
  return Napi::Number::New(env, g_read_fd);
}

// reaperKick(): when a handler deferred zombies for lack of room, the handler's loop from normal
// context (see ReapWithSigchldBlocked); otherwise nothing, not even a syscall. With the try-lock an
// interruption would be harmless (the handler would only leave a pending mark), but this way each
// thread reaps strictly in sequence. Returns whether it reaped.
Napi::Value Kick(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (g_read_fd < 0) {
    Napi::Error::New(env, "reaperKick() called before reaperStart()").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  // A handler that defers after this exchange found the pipe not empty: the next drain calls again.
  if (!g_deferred.exchange(false)) return Napi::Boolean::New(env, false);
  ReapWithSigchldBlocked();
  return Napi::Boolean::New(env, true);
}

// reaperPause(): SIGCHLD back to its default action (children that exit stay zombies: nothing reaps
// them), then waits for a handler still running on another thread to finish, so that every record
// reaped so far is in the pipe once this returns. Before an execve of the init (reexec): the new
// init's reaperStart() collects the zombies. The reaper's thread stays, asleep.
Napi::Value Pause(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = SIG_DFL;
  sigemptyset(&action.sa_mask);
  if (sigaction(SIGCHLD, &action, nullptr) != 0) {
    ThrowErrno(env, errno, "sigaction");
    return env.Undefined();
  }
  while (g_lock.exchange(true)) sched_yield();
  g_lock.store(false);
  return env.Undefined();
}

// reaperResume(): the handler again after reaperPause() (the execve failed), and the children that
// exited meanwhile reaped into the pipe.
Napi::Value Resume(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (g_read_fd < 0) {
    Napi::Error::New(env, "reaperResume() called before reaperStart()").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!InstallHandler()) {
    ThrowErrno(env, errno, "sigaction");
    return env.Undefined();
  }
  ReapWithSigchldBlocked();
  return env.Undefined();
}

}  // namespace

void InitReaper(Napi::Env env, Napi::Object exports) {
  exports.Set("reaperStart", Napi::Function::New(env, Start, "reaperStart"));
  exports.Set("reaperKick", Napi::Function::New(env, Kick, "reaperKick"));
  exports.Set("reaperPause", Napi::Function::New(env, Pause, "reaperPause"));
  exports.Set("reaperResume", Napi::Function::New(env, Resume, "reaperResume"));
}

}  // namespace starter
