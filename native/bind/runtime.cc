// Process-wide LibTorch settings and facts: seeds, threads, version, CUDA, build identity.
#include <ATen/Parallel.h>
#include <torch/version.h>

#include <thread>

#include "bind/args.h"
#include "bind/module.h"
#include "bind/worker.h"

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
  return Napi::Boolean::New(info.Env(), at::hasCUDA() && at::detail::getCUDAHooks().getNumGPUs() > 0);
}

static Napi::Value CudaDeviceCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::hasCUDA() ? at::detail::getCUDAHooks().getNumGPUs() : 0);
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
  exports.Set("buildInfo", Napi::Function::New<BuildInfo>(env, "buildInfo"));
}
SIMCLR_MODULE(runtime, InitRuntimeModule);

}  // namespace simclr
