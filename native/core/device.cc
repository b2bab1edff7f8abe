#include "core/device.h"

#include <ATen/Context.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/version.h>

// The device-agnostic allocator interface (c10::DeviceAllocator, what torch.accelerator.memory_stats reads) arrived in
// LibTorch 2.9; older ones expose the CUDA allocator's statistics only through CUDA headers, which a build against a
// CPU LibTorch does not have.
#if (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 9)) && \
    __has_include(<c10/core/CachingDeviceAllocator.h>)
#include <c10/core/CachingDeviceAllocator.h>
#define SIMCLR_DEVICE_ALLOCATOR_STATS 1
#endif

namespace simclr {

bool CudaAvailable() { return at::hasCUDA() && at::detail::getCUDAHooks().getNumGPUs() > 0; }

at::Tensor PinMemory(const at::Tensor& cpu) {
  TORCH_CHECK_VALUE(cpu.device().is_cpu(), "only CPU tensors can be pinned, this one is on ", cpu.device().str());
  TORCH_CHECK_VALUE(CudaAvailable(), "pinned (page-locked) host memory needs CUDA, and this LibTorch or machine has none");
  return cpu.is_pinned() ? cpu : cpu.pin_memory();
}

bool IsPinned(const at::Tensor& tensor) { return tensor.device().is_cpu() && CudaAvailable() && tensor.is_pinned(); }

at::Tensor UploadToDevice(const at::Tensor& tensor, const at::Device& device) {
  if (tensor.device() == device) return tensor;
  if (!device.is_cuda() || !tensor.device().is_cpu()) return tensor.to(device);
  // The host copy behind a non-blocking upload is kept alive by LibTorch's pinned allocator until the copy has run.
  const at::Tensor pinned = tensor.is_pinned() ? tensor : tensor.contiguous().pin_memory();
  return pinned.to(device, /*non_blocking=*/true);
}

HostCopy::HostCopy(const at::Tensor& tensor) {
#ifdef SIMCLR_WITH_CUDA
  if (tensor.device().is_cuda()) {
    host_ = at::empty(tensor.sizes(), tensor.options().device(at::kCPU).pinned_memory(true));
    host_.copy_(tensor, /*non_blocking=*/true);
    copied_ = std::make_shared<c10::Event>(c10::DeviceType::CUDA);
    copied_->record(c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)->getStream(tensor.device()));
    return;
  }
#endif
  TORCH_CHECK_VALUE(tensor.device().is_cpu(), "a host copy of a ", tensor.device().str(), " tensor needs a CUDA build");
  host_ = tensor;
}

const at::Tensor& HostCopy::Wait() const {
#ifdef SIMCLR_WITH_CUDA
  if (copied_) copied_->synchronize();  // CUDA builds are LibTorch 2.x, whose events can be waited for
#endif
  return host_;
}

void SynchronizeDevice(const at::Device& device) {
  if (!device.is_cuda()) return;
  // Every simclr thread queues its work on the device's default stream, which a blocking copy back to the host waits
  // for. (A device-wide synchronize exists only in newer LibTorch hooks; this works with every version.)
  (void)at::empty({1}, at::TensorOptions().device(device)).to(at::kCPU);
}

#ifdef SIMCLR_DEVICE_ALLOCATOR_STATS
static c10::DeviceAllocator* CudaAllocator(const at::Device& device) {
  TORCH_CHECK_VALUE(device.is_cuda(), "memory statistics are kept for CUDA devices, not ", device.str());
  TORCH_CHECK_VALUE(CudaAvailable(), "memory statistics need CUDA, and this LibTorch or machine has none");
  return c10::getDeviceAllocator(at::kCUDA);
}
#endif

DeviceMemoryStats MemoryStats(const at::Device& device) {
#ifdef SIMCLR_DEVICE_ALLOCATOR_STATS
  c10::DeviceAllocator* allocator = CudaAllocator(device);
  DeviceMemoryStats out;
  if (!allocator->initialized()) return out;  // nothing was allocated on any CUDA device yet
  const auto stats = allocator->getDeviceStats(device.index());
  const size_t all = 0;  // StatType::AGGREGATE: the small and large pools together
  out.allocated = stats.allocated_bytes[all].current;
  out.peak_allocated = stats.allocated_bytes[all].peak;
  out.reserved = stats.reserved_bytes[all].current;
  out.peak_reserved = stats.reserved_bytes[all].peak;
  return out;
#else
  TORCH_CHECK_VALUE(false, "device memory statistics need LibTorch 2.9 or later (this is ", TORCH_VERSION, ")");
#endif
}

void ResetPeakMemoryStats(const at::Device& device) {
#ifdef SIMCLR_DEVICE_ALLOCATOR_STATS
  c10::DeviceAllocator* allocator = CudaAllocator(device);
  if (allocator->initialized()) allocator->resetPeakStats(device.index());
#else
  TORCH_CHECK_VALUE(false, "device memory statistics need LibTorch 2.9 or later (this is ", TORCH_VERSION, ")");
#endif
}

bool CudnnBenchmark() { return at::globalContext().benchmarkCuDNN(); }

void SetCudnnBenchmark(bool enabled) { at::globalContext().setBenchmarkCuDNN(enabled); }

}  // namespace simclr
