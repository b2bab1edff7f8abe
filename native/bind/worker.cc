#include "bind/worker.h"

#include <ATen/Parallel.h>

#include <atomic>

#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace simclr {

namespace {
std::atomic<int> threads_generation{1};  // bumped by SetIntraOpThreads
}  // namespace

void PrepareWorkerThread() {
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

void FinishJob(AfterJob after) {
#ifdef __GLIBC__
  if (after == AfterJob::kTrimMemory) malloc_trim(0);
#endif
}

}  // namespace simclr
