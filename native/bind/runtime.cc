// Process-wide LibTorch settings and facts: seeds, threads, version, CUDA (devices, cuDNN benchmark mode, a device-wide
// wait, allocator statistics), build identity.
#include <ATen/Parallel.h>
#include <torch/version.h>

#include <thread>

#include "bind/args.h"
#include "bind/module.h"
#include "bind/worker.h"
#include "core/device.h"
#include "core/host_memory.h"

#ifndef SIMCLR_SOURCE_HASH
#define SIMCLR_SOURCE_HASH "unknown"
#endif

namespace simclr {

// Kept whole in the binary (`used`) so a test can read the hash from a .node file without loading it.
__attribute__((used)) static const char kSourceHashMarker[] = "simclr-source-hash:" SIMCLR_SOURCE_HASH;

static Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    int64_t seed = ArgInt(info[0], "seed", 0, (int64_t(1) << 53) - 1);
    at::manual_seed(static_cast<uint64_t>(seed));
    return info.Env().Undefined();
  });
}

static Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    SetIntraOpThreads(static_cast<int>(ArgInt(info[0], "threads", 1, 1024)));
    return info.Env().Undefined();
  });
}

static Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::get_num_threads());
}

static Napi::Value LibTorchVersion(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), TORCH_VERSION);
}

static Napi::Value CudaIsAvailable(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), CudaAvailable());
}

static Napi::Value CudaDeviceCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::hasCUDA() ? at::detail::getCUDAHooks().getNumGPUs() : 0);
}

static Napi::Value CudnnBenchmarkJs(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), CudnnBenchmark());
}

static Napi::Value SetCudnnBenchmarkJs(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    SetCudnnBenchmark(ArgBool(info[0], "enabled"));
    return info.Env().Undefined();
  });
}

// cudaSynchronize(device): blocks the calling (JS) thread until the device's queued work is done; for timing.
static Napi::Value CudaSynchronize(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    SynchronizeDevice(ArgDevice(info[0], "device"));
    return info.Env().Undefined();
  });
}

// cudaMemoryStats(device) -> { allocated, peakAllocated, reserved, peakReserved } in bytes
static Napi::Value CudaMemoryStats(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    const DeviceMemoryStats stats = MemoryStats(ArgDevice(info[0], "device"));
    Napi::Object out = Napi::Object::New(info.Env());
    out.Set("allocated", double(stats.allocated));
    out.Set("peakAllocated", double(stats.peak_allocated));
    out.Set("reserved", double(stats.reserved));
    out.Set("peakReserved", double(stats.peak_reserved));
    return out;
  });
}

static Napi::Value CudaResetPeakMemoryStats(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    ResetPeakMemoryStats(ArgDevice(info[0], "device"));
    return info.Env().Undefined();
  });
}

// retainFreedHostMemory() -> whether the C library's heap now keeps freed memory (false: not glibc, nothing changed).
static Napi::Value RetainFreedHostMemoryJs(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), RetainFreedHostMemory());
}

static Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("sourceHash", std::string(kSourceHashMarker).substr(sizeof("simclr-source-hash:") - 1));
  out.Set("libtorchVersion", TORCH_VERSION);
#ifdef SIMCLR_WITH_CUDA
  out.Set("compiledWithCuda", true);
#else
  out.Set("compiledWithCuda", false);
#endif
#ifdef SIMCLR_WITH_NCCL
  out.Set("compiledWithNccl", true);
#else
  out.Set("compiledWithNccl", false);
#endif
  out.Set("config", at::show_config());
  out.Set("parallel", at::get_parallel_info());
  return out;
}

static void InitRuntimeModule(Napi::Env env, Napi::Object exports) {
  exports.Set("manualSeed", Napi::Function::New<ManualSeed>(env, "manualSeed"));
  exports.Set("setNumThreads", Napi::Function::New<SetNumThreads>(env, "setNumThreads"));
  exports.Set("getNumThreads", Napi::Function::New<GetNumThreads>(env, "getNumThreads"));
  exports.Set("libtorchVersion", Napi::Function::New<LibTorchVersion>(env, "libtorchVersion"));
  exports.Set("cudaIsAvailable", Napi::Function::New<CudaIsAvailable>(env, "cudaIsAvailable"));
  exports.Set("cudaDeviceCount", Napi::Function::New<CudaDeviceCount>(env, "cudaDeviceCount"));
  exports.Set("cudnnBenchmark", Napi::Function::New<CudnnBenchmarkJs>(env, "cudnnBenchmark"));
  exports.Set("setCudnnBenchmark", Napi::Function::New<SetCudnnBenchmarkJs>(env, "setCudnnBenchmark"));
  exports.Set("cudaSynchronize", Napi::Function::New<CudaSynchronize>(env, "cudaSynchronize"));
  exports.Set("cudaMemoryStats", Napi::Function::New<CudaMemoryStats>(env, "cudaMemoryStats"));
  exports.Set("cudaResetPeakMemoryStats", Napi::Function::New<CudaResetPeakMemoryStats>(env, "cudaResetPeakMemoryStats"));
  exports.Set("retainFreedHostMemory", Napi::Function::New<RetainFreedHostMemoryJs>(env, "retainFreedHostMemory"));
  exports.Set("buildInfo", Napi::Function::New<BuildInfo>(env, "buildInfo"));
  exports.Set("jobsInFlight", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    return Napi::Number::New(info.Env(), double(JobsInFlight()));
  }, "jobsInFlight"));
}
SIMCLR_MODULE(runtime, InitRuntimeModule);

}  // namespace simclr
