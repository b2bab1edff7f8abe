#include "core/host_memory.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>
#include <torch/version.h>
#include <unistd.h>

#include <cstdlib>  // defines __GLIBC__ on glibc
#include <mutex>
#include <unordered_map>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

// torch 2.3 made Allocator::allocate non-const and copy_data pure virtual.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
#define SIMCLR_ALLOCATOR_API_2_3 1
#endif

namespace simclr {

namespace {

constexpr size_t kLargeBlockBytes = size_t(32) << 20;  // glibc mmaps from here up, whatever mallopt says
constexpr size_t kLargeBlockRounding = size_t(2) << 20;
constexpr size_t kAlignment = 64;  // LibTorch's own CPU alignment (c10::gAlignment on x86-64)

// LibTorch's CPU allocator for tensors of 32 MiB and more, which glibc maps fresh from the kernel on every malloc and
// unmaps on every free: the kernel then zeroes each page of them again at its first touch, every step (about 185 000
// page faults a step for ResNet-18 at 224 px, batch 16, 15 % of the step's CPU time). Freed large blocks are kept in
// free lists by size (rounded up to 2 MiB) and handed out again; a training step asks for the same sizes every time.
// Smaller tensors go to the allocator this one replaced. Blocks are kept up to `idle_limit` bytes, then freed.
class LargeBlockCache final : public c10::Allocator {
 public:
  LargeBlockCache(c10::Allocator* fallback, size_t idle_limit) : fallback_(fallback), idle_limit_(idle_limit) {}

#ifdef SIMCLR_ALLOCATOR_API_2_3
  c10::DataPtr allocate(size_t bytes) override {
#else
  c10::DataPtr allocate(size_t bytes) const override {
#endif
    const c10::Device cpu(c10::DeviceType::CPU);
    if (bytes < kLargeBlockBytes) {
      // raw_deleter() promises one deleter for every block handed out, so the fallback's block is re-wrapped in it.
      c10::DataPtr small = fallback_->allocate(bytes);
      void* data = small.get();
      TORCH_INTERNAL_ASSERT(data == small.get_context(), "the CPU allocator's blocks must be their own context");
      small.release_context();
      return {data, data, &Release, cpu};
    }
    void* data = instance_->Take(bytes);
    return {data, data, &Release, cpu};
  }

  c10::DeleterFnPtr raw_deleter() const override {
    return &Release;
  }

#ifdef SIMCLR_ALLOCATOR_API_2_3
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }
#endif

  static void Install(size_t idle_limit) {
    // Never deleted: tensors may be freed during static destruction at exit.
    instance_ = new LargeBlockCache(c10::GetCPUAllocator(), idle_limit);
    c10::SetCPUAllocator(instance_, /*priority=*/1);
  }

 private:
  void* Take(size_t bytes) {
    const size_t size = (bytes + kLargeBlockRounding - 1) / kLargeBlockRounding * kLargeBlockRounding;
    {
      std::lock_guard<std::mutex> hold(mutex_);
      auto idle = idle_.find(size);
      if (idle != idle_.end() && !idle->second.empty()) {
        void* data = idle->second.back();
        idle->second.pop_back();
        idle_bytes_ -= size;
        live_[data] = size;
        return data;
      }
    }
    void* data = nullptr;
    TORCH_CHECK(posix_memalign(&data, kAlignment, size) == 0 && data != nullptr,
                "out of host memory: could not allocate ", size, " bytes");
    std::lock_guard<std::mutex> hold(mutex_);
    live_[data] = size;
    return data;
  }

  static void Release(void* data) {
    if (data == nullptr) return;
    LargeBlockCache& self = *instance_;
    {
      std::lock_guard<std::mutex> hold(self.mutex_);
      auto live = self.live_.find(data);
      if (live != self.live_.end()) {
        const size_t size = live->second;
        self.live_.erase(live);
        if (self.idle_bytes_ + size <= self.idle_limit_) {
          self.idle_[size].push_back(data);
          self.idle_bytes_ += size;
          return;
        }
      } else {
        self.fallback_->raw_deleter()(data);
        return;
      }
    }
    std::free(data);  // a large block beyond the idle limit
  }

  static LargeBlockCache* instance_;
  c10::Allocator* const fallback_;
  const size_t idle_limit_;
  std::mutex mutex_;
  std::unordered_map<void*, size_t> live_;            // large blocks handed out, by address
  std::unordered_map<size_t, std::vector<void*>> idle_;  // freed large blocks, by rounded size
  size_t idle_bytes_ = 0;
};

LargeBlockCache* LargeBlockCache::instance_ = nullptr;

}  // namespace

bool RetainFreedHostMemory() {
#if defined(__GLIBC__)
  static std::once_flag installed;
  static bool retained = false;
  std::call_once(installed, [] {
    constexpr int kLargestHeapAllocation = 32 << 20;  // DEFAULT_MMAP_THRESHOLD_MAX on 64-bit: mallopt refuses more
    constexpr int kTrimThreshold = 1 << 30;
    // A thread's arena grows in heaps of at most 64 MiB, and frees a heap that falls empty unless the top pad exceeds
    // that size (the training step runs on the compute thread, whose arena this is).
    constexpr int kTopPad = 64 << 20;
    // Setting either threshold turns glibc's adaptive thresholds off, so both are set.
    retained = mallopt(M_MMAP_THRESHOLD, kLargestHeapAllocation) == 1 && mallopt(M_TRIM_THRESHOLD, kTrimThreshold) == 1 &&
               mallopt(M_TOP_PAD, kTopPad) == 1;
    // The fallback must hand out blocks that are their own context (LibTorch's default does) for the re-wrapping.
    if (retained && c10::GetCPUAllocator()->raw_deleter() != nullptr) {
      const size_t physical = size_t(sysconf(_SC_PHYS_PAGES)) * size_t(sysconf(_SC_PAGESIZE));
      LargeBlockCache::Install(physical / 4);
    }
  });
  return retained;
#else
  return false;
#endif
}

}  // namespace simclr
