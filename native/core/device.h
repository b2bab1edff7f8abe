// What CUDA needs beyond device-agnostic ATen, and the CPU ignores: host batches uploaded through page-locked (pinned)
// memory without blocking the host, a device-wide wait (for timing), the caching allocator's memory statistics, and
// cuDNN's benchmark mode. Everything here is ATen/c10 only: it compiles against any LibTorch, CUDA or not.
#pragma once

#include <ATen/ATen.h>
#include <c10/core/Event.h>

#include <cstdint>
#include <memory>

namespace simclr {

// True when this LibTorch has CUDA and a GPU is visible (page-locked memory and CUDA devices need one).
bool CudaAvailable();

// A copy of the CPU tensor `cpu` in page-locked host memory (the source of asynchronous uploads). Throws
// c10::ValueError without CUDA: pinned memory belongs to the CUDA driver.
at::Tensor PinMemory(const at::Tensor& cpu);

// True when `tensor` lives in page-locked host memory (false on machines without CUDA).
bool IsPinned(const at::Tensor& tensor);

// `tensor` on `device`, itself when it is already there. A CPU tensor bound for a CUDA device is uploaded
// asynchronously from page-locked memory: a pinned tensor as it is, a pageable one after one host copy into pinned
// memory (the copy the driver would otherwise make, synchronously, in pieces). The upload is ordered on the device's
// current stream before any work queued after it, so the host never waits for it.
at::Tensor UploadToDevice(const at::Tensor& tensor, const at::Device& device);

// A small tensor on its way to the host without the host waiting for the device: on CUDA it is copied into page-locked
// memory on the device's current stream and an event is recorded after the copy, so Wait() blocks until that copy is
// done, not until the work queued behind it (the next training step) is. On the CPU it is the tensor itself.
class HostCopy {
 public:
  HostCopy() = default;
  explicit HostCopy(const at::Tensor& tensor);
  // The tensor on the host, once the copy has run.
  const at::Tensor& Wait() const;

 private:
  at::Tensor host_;
  std::shared_ptr<c10::Event> copied_;
};

// Waits until the work queued on `device` so far has finished (nothing on the CPU, where ops are synchronous).
void SynchronizeDevice(const at::Device& device);

// The CUDA caching allocator's counters for one device, in bytes: tensors now and at peak (since the last reset), and
// what the allocator holds from the driver now and at peak.
struct DeviceMemoryStats {
  int64_t allocated = 0;
  int64_t peak_allocated = 0;
  int64_t reserved = 0;
  int64_t peak_reserved = 0;
};

// Throws c10::ValueError for a CPU device, and on a LibTorch older than 2.9 (no device-agnostic allocator statistics).
DeviceMemoryStats MemoryStats(const at::Device& device);
void ResetPeakMemoryStats(const at::Device& device);

// cuDNN's benchmark mode (torch.backends.cudnn.benchmark): each new convolution shape times the candidate algorithms
// once and keeps the fastest. Process-wide; harmless without CUDA.
bool CudnnBenchmark();
void SetCudnnBenchmark(bool enabled);

}  // namespace simclr
