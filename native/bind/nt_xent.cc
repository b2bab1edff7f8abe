// N-API glue for the fused NT-Xent op: ntXent(z, temperature, views, method) -> Promise<{ loss, grad }>, and its
// data-parallel form ntXentLocalRows(zLocal, zAll, offset, temperature, views) -> Promise<{ loss, gradLocal, gradAll }>.
#include "bind/args.h"
#include "bind/module.h"
#include "bind/tensor.h"
#include "bind/worker.h"
#include "core/nt_xent.h"

namespace simclr {
namespace {

struct NtXentResult {
  double loss;
  at::Tensor grad;
};

// method: 'fused' (NtXentForwardBackward, what ntXent() uses), 'autograd' (NtXentLoss + backward(), the path a
// training step takes) or 'reference' (the unfused ATen version). The last two exist so tests can compare all three.
Napi::Value NtXent(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    at::Tensor z = TensorWrap::FromJs(info[0], "z");
    const double temperature = ArgFiniteNumber(info[1], "temperature");
    const int64_t views = ArgInt(info[2], "views", 2, int64_t(1) << 31);
    const std::string method = info[3].IsUndefined() ? "fused" : ArgString(info[3], "method");
    if (method != "fused" && method != "autograd" && method != "reference") {
      ThrowRange("Expected 'fused', 'autograd' or 'reference' for method but received '" + method + "'");
    }
    CheckNtXentArgs(z, temperature, views);  // the op's one check: the kernels below do not repeat it
    return RunAsync<NtXentResult>(
        info.Env(), "simclr.ntXent",
        [z, temperature, views, method]() {
          std::pair<at::Tensor, at::Tensor> out;
          if (method == "fused") {
            out = NtXentForwardBackward(z, temperature, views);
          } else if (method == "reference") {
            out = NtXentReference(z, temperature, views);
          } else {
            at::Tensor leaf = z.detach().requires_grad_(true);
            at::Tensor loss = NtXentLoss(leaf, temperature, views);
            loss.backward();
            out = {loss.detach(), leaf.grad()};
          }
          return NtXentResult{out.first.item<double>(), out.second};
        },
        [](Napi::Env env, NtXentResult& result) -> Napi::Value {
          Napi::Object out = Napi::Object::New(env);
          out.Set("loss", Napi::Number::New(env, result.loss));
          out.Set("grad", TensorWrap::Wrap(env, result.grad));
          return out;
        },
        // Model-sized work: on the compute thread, whose one malloc arena reuses the large tile buffers from call to
        // call (spread over libuv's 4 threads a process held ~4 calls' working sets: N = 4096, +213 MB instead of +93).
        RunsOn::kComputeThread);
  });
}

Napi::Value NtXentLocalRows(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    at::Tensor z_local = TensorWrap::FromJs(info[0], "zLocal");
    at::Tensor z_all = TensorWrap::FromJs(info[1], "zAll");
    const int64_t offset = ArgInt(info[2], "offset", 0, int64_t(1) << 40);
    const double temperature = ArgFiniteNumber(info[3], "temperature");
    const int64_t views = ArgInt(info[4], "views", 2, int64_t(1) << 31);
    CheckNtXentLocalRowsArgs(z_local, z_all, offset, temperature, views);
    return RunAsync<NtXentLocalRowsResult>(
        info.Env(), "simclr.ntXentLocalRows",
        [z_local, z_all, offset, temperature, views] {
          return NtXentLocalRowsForwardBackward(z_local, z_all, offset, temperature, views);
        },
        [](Napi::Env env, NtXentLocalRowsResult& result) -> Napi::Value {
          Napi::Object out = Napi::Object::New(env);
          out.Set("loss", Napi::Number::New(env, result.loss.item<double>()));
          out.Set("gradLocal", TensorWrap::Wrap(env, result.grad_local));
          out.Set("gradAll", TensorWrap::Wrap(env, result.grad_all));
          return out;
        },
        RunsOn::kComputeThread);
  });
}

void InitNtXentModule(Napi::Env env, Napi::Object exports) {
  exports.Set("ntXent", Napi::Function::New<NtXent>(env, "ntXent"));
  exports.Set("ntXentLocalRows", Napi::Function::New<NtXentLocalRows>(env, "ntXentLocalRows"));
  exports.Set("ntXentMinTemperature", Napi::Number::New(env, kNtXentMinTemperature));
}

}  // namespace

SIMCLR_MODULE(nt_xent, InitNtXentModule);

}  // namespace simclr
