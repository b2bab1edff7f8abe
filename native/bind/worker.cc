#include "bind/worker.h"

#include <ATen/Parallel.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace simclr {
namespace {

std::atomic<int> threads_generation{1};  // bumped by SetIntraOpThreads
// Jobs submitted whose work has not finished yet (queued or running on either thread).
std::atomic<int64_t> jobs_in_flight{0};

// Counts a job's work as done when it leaves scope, however Run() ends.
struct JobDone {
  ~JobDone() { --jobs_in_flight; }
};

// A job on libuv's pool.
class PoolWorker : public Napi::AsyncWorker {
 public:
  PoolWorker(Napi::Env env, const char* name, std::unique_ptr<Job> job) : Napi::AsyncWorker(env, name), job_(std::move(job)) {}
  void Execute() override {
    JobDone done;
    job_->Run();
  }
  void OnOK() override { job_->Settle(Env()); }

 private:
  std::unique_ptr<Job> job_;
};

// Settles a compute-thread job on the JS thread (env is null when the environment is being torn down).
void SettleOnJsThread(Napi::Env env, Napi::Function, std::nullptr_t*, Job* job) {
  std::unique_ptr<Job> owned(job);
  if (env != nullptr) owned->Settle(env);
}
using Settler = Napi::TypedThreadSafeFunction<std::nullptr_t, Job, SettleOnJsThread>;

// The compute thread: one thread, one queue, jobs in submission order. Created at the first job and never destroyed
// (it waits on its queue; the process may exit at any time).
class ComputeThread {
 public:
  static ComputeThread& Instance() {
    static ComputeThread* instance = new ComputeThread();
    return *instance;
  }

  void Push(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> hold(mutex_);
      queue_.push_back(std::move(task));
    }
    ready_.notify_one();
  }

 private:
  ComputeThread() { std::thread([this] { Loop(); }).detach(); }

  void Loop() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> hold(mutex_);
        ready_.wait(hold, [this] { return !queue_.empty(); });
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      task();
    }
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> queue_;
};

}  // namespace

void PrepareThreadForAten() {
  thread_local int applied = 0;
  const int generation = threads_generation.load();
  if (applied == generation) return;
  at::init_num_threads();
  applied = generation;
}

void SetIntraOpThreads(int threads) {
  at::set_num_threads(threads);
  ++threads_generation;
}

int64_t JobsInFlight() { return jobs_in_flight.load(); }

void Submit(Napi::Env env, const char* name, std::unique_ptr<Job> job, RunsOn runs_on) {
  ++jobs_in_flight;
  if (runs_on == RunsOn::kWorkerPool) {
    (new PoolWorker(env, name, std::move(job)))->Queue();
    return;
  }
  // The thread-safe function keeps the event loop alive until the job has settled.
  Settler settler = Settler::New(env, name, 0, 1);
  Job* raw = job.release();
  ComputeThread::Instance().Push([settler, raw]() mutable {
    {
      JobDone done;
      raw->Run();
    }
    if (settler.BlockingCall(raw) != napi_ok) delete raw;  // the environment is gone: nobody to settle with
    settler.Release();
  });
}

}  // namespace simclr
