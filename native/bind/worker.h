// Native work off the JS thread: every promise-returning entry point runs its compute through RunAsync, the one place
// where a libuv worker thread is prepared for ATen and tidied up afterwards.
#pragma once

#include <napi.h>

#include <functional>
#include <memory>
#include <string>

#include "bind/errors.h"

namespace simclr {

// What a job leaves behind when it is done.
enum class AfterJob {
  kNothing,
  // Return freed heap pages to the system (glibc malloc_trim). Each libuv thread allocates from its own malloc arena,
  // which otherwise keeps the largest working set it ever had: jobs with big transient buffers (a training step's
  // activations, NT-Xent's tiles) opt in.
  kTrimMemory,
};

// Called at the start of every job on its worker thread: OpenMP's thread count is per thread, so a libuv thread starts
// with OpenMP's default instead of the intra-op threads set from JS until it is told. It is told once per thread and
// again after each SetIntraOpThreads: at::init_num_threads() also recreates caffe2's global pthreadpool, whose fresh
// worker thread then spins for milliseconds, so calling it on every job cost up to half a core.
void PrepareWorkerThread();
// at::set_num_threads(threads) for the calling thread, and the count PrepareWorkerThread gives later jobs.
void SetIntraOpThreads(int threads);
void FinishJob(AfterJob after);

// Runs `work` on the libuv pool and resolves a promise with `toJs(result)` on the JS thread (rejects with the right JS
// error when `work` throws). `work` must not touch JS values: it captures tensors by value (at::Tensor is reference
// counted and thread safe to copy).
template <typename Result>
Napi::Promise RunAsync(Napi::Env env, const char* name, std::function<Result()> work,
                       std::function<Napi::Value(Napi::Env, Result&)> toJs, AfterJob after = AfterJob::kNothing) {
  class Worker : public Napi::AsyncWorker {
   public:
    Worker(Napi::Env env, const char* name, std::function<Result()> work, std::function<Napi::Value(Napi::Env, Result&)> toJs,
           AfterJob after)
        : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)),
          toJs_(std::move(toJs)), after_(after) {}
    Napi::Promise Promise() { return deferred_.Promise(); }

   protected:
    void Execute() override {
      try {
        PrepareWorkerThread();
        result_ = std::make_unique<Result>(work_());
      } catch (...) {
        failed_ = true;
        DescribeException(std::current_exception(), &kind_, &message_);
      }
      work_ = nullptr;  // whatever the job captured (inputs, models) is released on this thread, before trimming
      FinishJob(after_);
    }
    void OnOK() override {
      Napi::Env env = Env();
      if (failed_) {
        deferred_.Reject(MakeJsError(env, kind_, message_).Value());
        return;
      }
      try {
        deferred_.Resolve(Guarded(env, [&] { return toJs_(env, *result_); }));
      } catch (const Napi::Error& e) {
        deferred_.Reject(e.Value());
      }
    }

   private:
    Napi::Promise::Deferred deferred_;
    std::function<Result()> work_;
    std::function<Napi::Value(Napi::Env, Result&)> toJs_;
    AfterJob after_;
    std::unique_ptr<Result> result_;
    bool failed_ = false;
    ErrorKind kind_ = ErrorKind::kError;
    std::string message_;
  };
  auto* worker = new Worker(env, name, std::move(work), std::move(toJs), after);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace simclr
