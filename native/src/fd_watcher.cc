// FdWatcher: calls a JavaScript function each time an fd is readable, through a uv_poll_t on the
// environment's libuv loop (for fds net.Socket cannot wrap: pidfds, datagram sockets).
//
// Lifetimes. The uv_poll_t lives in a Poll of its own, freed only in the close callback: libuv
// owns the handle until then, possibly after the JavaScript object is gone. Each Poll also holds
// an async cleanup hook, so that an environment being torn down (a worker ending, or Node's exit
// path) closes it and waits for the close callback before the addon can be unloaded: a close
// callback pointing into an unloaded addon would crash the process.
// While watching, the JavaScript object holds a strong reference to itself so that a watcher
// nobody stores keeps working; close() drops it, and drops the callback too (a callback that
// closes over its own watcher would otherwise keep both alive forever).
#include <uv.h>

#include <memory>

#include "args.h"
#include "errors.h"
#include "modules.h"

namespace starter {

namespace {

class FdWatcher;

struct Poll {
  uv_poll_t handle;
  napi_async_cleanup_hook_handle cleanup_hook = nullptr;
  FdWatcher* owner = nullptr;  // null once closing: nothing to call any more
};

class FdWatcher : public Napi::ObjectWrap<FdWatcher> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "FdWatcher",
                       {
                           InstanceMethod<&FdWatcher::JsClose>("close"),
                           InstanceMethod<&FdWatcher::JsRef>("ref"),
                           InstanceMethod<&FdWatcher::JsUnref>("unref"),
                       });
  }

  explicit FdWatcher(const Napi::CallbackInfo& info);
  ~FdWatcher() override;

 private:
  void JsClose(const Napi::CallbackInfo&) { Stop(); }
  void JsRef(const Napi::CallbackInfo&) {
    if (poll_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(&poll_->handle));
  }
  void JsUnref(const Napi::CallbackInfo&) {
    if (poll_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(&poll_->handle));
  }

  void Stop();
  static void ClosePoll(Poll* poll);
  static void OnEnvCleanup(napi_async_cleanup_hook_handle hook, void* arg);
  static void OnPoll(uv_poll_t* handle, int status, int events);
  static void ReportException(napi_env env);

  Poll* poll_ = nullptr;  // null once closed (or never started)
  bool holds_self_ = false;
  Napi::FunctionReference callback_;
  std::unique_ptr<Napi::AsyncContext> async_context_;
};

FdWatcher::FdWatcher(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FdWatcher>(info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!ReadFd(env, info[0], "fd", &fd)) return;
  if (!info[1].IsFunction()) {
    ThrowTypeError(env, "onReadable must be a function");
    return;
  }

  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    Napi::Error::New(env, "FdWatcher: no libuv loop").ThrowAsJavaScriptException();
    return;
  }
  auto* poll = new Poll;
  // libuv errors are negated errno values on Unix.
  int rc = uv_poll_init(loop, &poll->handle, fd);
  if (rc != 0) {
    delete poll;  // not initialised: libuv does not know it
    ThrowErrno(env, -rc, "uv_poll_init");
    return;
  }
  poll->handle.data = poll;
  poll->owner = this;
  if (napi_add_async_cleanup_hook(env, OnEnvCleanup, poll, &poll->cleanup_hook) != napi_ok) {
    poll->cleanup_hook = nullptr;
    ClosePoll(poll);
    Napi::Error::New(env, "FdWatcher: napi_add_async_cleanup_hook failed").ThrowAsJavaScriptException();
    return;
  }
  rc = uv_poll_start(&poll->handle, UV_READABLE, OnPoll);
  if (rc != 0) {
    ClosePoll(poll);
    ThrowErrno(env, -rc, "uv_poll_start");
    return;
  }

  poll_ = poll;
  callback_ = Napi::Persistent(info[1].As<Napi::Function>());
  // The object is the async resource, so async_hooks see callbacks as coming from the watcher;
  // N-API holds a resource given this way weakly.
  async_context_ = std::make_unique<Napi::AsyncContext>(env, "FdWatcher", info.This().As<Napi::Object>());
  Ref();
  holds_self_ = true;
}

FdWatcher::~FdWatcher() {
  // Only reached with an open poll while the environment is torn down (an open watcher holds
  // itself alive), if the cleanup hook has not closed it yet.
  if (poll_ != nullptr) ClosePoll(poll_);
}

// Starts closing; the close callback frees the Poll and lets the environment's teardown go on.
void FdWatcher::ClosePoll(Poll* poll) {
  if (poll->owner != nullptr) {
    poll->owner->poll_ = nullptr;
    poll->owner = nullptr;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&poll->handle), [](uv_handle_t* handle) {
    auto* closed = static_cast<Poll*>(handle->data);
    if (closed->cleanup_hook != nullptr) napi_remove_async_cleanup_hook(closed->cleanup_hook);
    delete closed;
  });
}

// The environment is going away with this poll still open.
void FdWatcher::OnEnvCleanup(napi_async_cleanup_hook_handle, void* arg) {
  auto* poll = static_cast<Poll*>(arg);
  // A poll already closing removes the hook from its close callback.
  if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&poll->handle))) ClosePoll(poll);
}

// Safe to call twice and from inside the callback: the second call finds poll_ null, and
// uv_close stops the poll, so no further OnPoll reaches this object.
void FdWatcher::Stop() {
  if (poll_ == nullptr) return;
  ClosePoll(poll_);
  callback_.Reset();
  if (holds_self_) {
    holds_self_ = false;
    Unref();
  }
}

void FdWatcher::OnPoll(uv_poll_t* handle, int status, int events) {
  FdWatcher* self = static_cast<Poll*>(handle->data)->owner;
  if (self == nullptr || self->callback_.IsEmpty()) return;
  // On error (status < 0) libuv has stopped the poll already; the callback still runs so that
  // JavaScript reads the fd, sees the error and closes the watcher.
  if (status == 0 && (events & UV_READABLE) == 0) return;

  // Raw N-API calls with their status checked: node-addon-api turns a failed call into a fatal
  // error when C++ exceptions are off, and napi_make_callback does fail, with no exception, when
  // Node runs the loop once more while the environment shuts down and JavaScript cannot run.
  napi_env env = self->Env();
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  // A local handle to the object keeps it alive for the whole call, even if the callback closes
  // it and drops the last reference.
  napi_value receiver = nullptr;
  napi_value callback = nullptr;
  napi_value result = nullptr;
  if (napi_get_reference_value(env, static_cast<napi_ref>(*self), &receiver) == napi_ok &&
      napi_get_reference_value(env, static_cast<napi_ref>(self->callback_), &callback) == napi_ok &&
      receiver != nullptr && callback != nullptr) {
    // MakeCallback (not a plain call): runs process.nextTick callbacks and microtasks afterwards,
    // like any other libuv-driven callback in Node.
    napi_make_callback(env, *self->async_context_, receiver, callback, 0, nullptr, &result);
    ReportException(env);
  }
  napi_close_handle_scope(env, scope);
}

// An exception thrown by the callback has nothing JavaScript below it on the stack: hand it to
// process 'uncaughtException', like Node does for its own callbacks.
void FdWatcher::ReportException(napi_env env) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) != napi_ok || !pending) return;
  napi_value exception;
  if (napi_get_and_clear_last_exception(env, &exception) == napi_ok) napi_fatal_exception(env, exception);
}

}  // namespace

void InitFdWatcher(Napi::Env env, Napi::Object exports) {
  exports.Set("FdWatcher", FdWatcher::Define(env));
}

}  // namespace starter
