#include "core/host_memory.h"

#include <cstdlib>  // defines __GLIBC__ on glibc

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace simclr {

bool RetainFreedHostMemory() {
#if defined(__GLIBC__)
  constexpr int kLargestHeapAllocation = 32 << 20;  // DEFAULT_MMAP_THRESHOLD_MAX on 64-bit: mallopt refuses more
  constexpr int kTrimThreshold = 1 << 30;
  // A thread's arena grows in heaps of at most 64 MiB, and frees a heap that falls empty unless the top pad exceeds
  // that size (the training step runs on the compute thread, whose arena this is).
  constexpr int kTopPad = 64 << 20;
  // Setting either threshold turns glibc's adaptive thresholds off, so both are set.
  return mallopt(M_MMAP_THRESHOLD, kLargestHeapAllocation) == 1 && mallopt(M_TRIM_THRESHOLD, kTrimThreshold) == 1 &&
         mallopt(M_TOP_PAD, kTopPad) == 1;
#else
  return false;
#endif
}

}  // namespace simclr
