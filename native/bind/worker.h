// Native work off the JS thread. Every promise-returning entry point runs its work through RunAsync, the one place
// that decides which thread runs it and prepares that thread for ATen.
//
// Model work (training steps, forward passes, NT-Xent, kNN, the linear probe) runs on ONE compute thread, in the order
// it was asked for. Measured on 2 cores (ResNet-18, 96 px, batch 32, training step): spreading it over libuv's pool
// cost 1.6x, because every pool thread that calls into ATen gets its own OpenMP team (whose idle threads spin on the
// cores the working team needs) and its own malloc arena (which kept each step's activations: RSS 1.5 GB instead of
// 0.66 GB, or page faults on every step when trimmed). Light or I/O-bound work (tensor copies, state-dict bytes,
// augmentation of the next batch while a step runs) stays on libuv's pool.
#pragma once

#include <napi.h>

#include <functional>
#include <memory>
#include <string>

#include "bind/errors.h"

namespace simclr {

enum class RunsOn {
  kWorkerPool,     // libuv's thread pool: runs alongside everything else
  kComputeThread,  // the one compute thread: model work, one job at a time
};

// A job's work and how its result reaches JS. Run() executes off the JS thread; Settle() on the JS thread.
class Job {
 public:
  virtual ~Job() = default;
  virtual void Run() = 0;
  virtual void Settle(Napi::Env env) = 0;
};

// Jobs submitted whose work has not finished (queued or running). Exiting the process while one runs would destroy
// LibTorch's globals under a running kernel: JS waits for 0 before it exits on a second signal.
int64_t JobsInFlight();

// Queues `job` (which settles its own promise) on `runs_on`; takes ownership.
void Submit(Napi::Env env, const char* name, std::unique_ptr<Job> job, RunsOn runs_on);

// Called at the start of every job on its thread: OpenMP's thread count is per thread, so a thread starts with
// OpenMP's default instead of the intra-op threads set from JS until it is told. It is told once per thread and again
// after each SetIntraOpThreads: at::init_num_threads() also recreates caffe2's global pthreadpool, whose fresh worker
// thread then spins for milliseconds, so calling it on every job cost up to half a core (augmentation on 2 threads:
// 2139 -> 3969 img/s once it was called once per change).
void PrepareThreadForAten();
// at::set_num_threads(threads) for the calling thread, and the count PrepareThreadForAten gives later jobs.
void SetIntraOpThreads(int threads);

// Runs `work` off the JS thread and resolves a promise with `toJs(result)` on the JS thread (rejects with the right JS
// error when `work` throws). `work` must not touch JS values: it captures tensors by value (at::Tensor is reference
// counted and thread safe to copy).
template <typename Result>
Napi::Promise RunAsync(Napi::Env env, const char* name, std::function<Result()> work,
                       std::function<Napi::Value(Napi::Env, Result&)> toJs, RunsOn runs_on = RunsOn::kWorkerPool) {
  class TypedJob : public Job {
   public:
    TypedJob(Napi::Env env, std::function<Result()> work, std::function<Napi::Value(Napi::Env, Result&)> toJs)
        : deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)), toJs_(std::move(toJs)) {}
    Napi::Promise Promise() { return deferred_.Promise(); }

    void Run() override {
      try {
        PrepareThreadForAten();
        result_ = std::make_unique<Result>(work_());
      } catch (...) {
        DescribeException(std::current_exception(), &kind_, &message_);
      }
      work_ = nullptr;  // whatever the job captured (inputs, models) is released on this thread
    }

    void Settle(Napi::Env env) override {
      Napi::HandleScope scope(env);
      if (!result_) {
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
    std::unique_ptr<Result> result_;
    ErrorKind kind_ = ErrorKind::kError;
    std::string message_;
  };
  auto job = std::make_unique<TypedJob>(env, std::move(work), std::move(toJs));
  Napi::Promise promise = job->Promise();
  Submit(env, name, std::move(job), runs_on);
  return promise;
}

}  // namespace simclr
