#include "bind/worker.h"

#include <ATen/Parallel.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace simclr {

void PrepareWorkerThread() { at::init_num_threads(); }

void FinishJob(AfterJob after) {
#ifdef __GLIBC__
  if (after == AfterJob::kTrimMemory) malloc_trim(0);
#endif
}

}  // namespace simclr
