// N-API glue for the fused NT-Xent op: ntXent(z, temperature, views, method) → Promise<{ loss, grad }>.
#include <ATen/Parallel.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "common.h"
#include "nt_xent.h"
#include "tensor.h"

namespace simclr {

struct NtXentResult {
  double loss;
  at::Tensor grad;
};

// method: 'fused' (nt_xent_forward_backward, what ntXent() uses), 'autograd' (nt_xent_loss + backward(), the path a
// training step takes) or 'reference' (the unfused ATen version). The last two exist so tests can compare all three.
static Napi::Value NtXent(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    at::Tensor z = TensorWrap::FromJs(info[0], "z");
    const double temperature = ArgFiniteNumber(info[1], "temperature");
    const int64_t views = ArgInt(info[2], "views", 2, int64_t(1) << 31);
    const std::string method = info[3].IsUndefined() ? "fused" : ArgString(info[3], "method");
    if (method != "fused" && method != "autograd" && method != "reference") {
      ThrowRange("Expected 'fused', 'autograd' or 'reference' for method but received '" + method + "'");
    }
    check_nt_xent_args(z, temperature, views);
    return RunAsync<NtXentResult>(
        info.Env(), "ntXent",
        [z, temperature, views, method]() {
          at::init_num_threads();  // a libuv thread starts with OpenMP's default, not the threads set from JS
          std::pair<at::Tensor, at::Tensor> out;
          if (method == "fused") {
            out = nt_xent_forward_backward(z, temperature, views);
          } else if (method == "reference") {
            out = nt_xent_reference(z, temperature, views);
          } else {
            at::Tensor leaf = z.detach().requires_grad_(true);
            at::Tensor loss = nt_xent_loss(leaf, temperature, views);
            loss.backward();
            out = {loss.detach(), leaf.grad()};
          }
          NtXentResult result{out.first.item<double>(), out.second};
#ifdef __GLIBC__
          // Each libuv thread allocates from its own malloc arena, which keeps the freed tile buffers: with the pool's
          // 4 threads a process held ~4 calls' working sets (bench, N = 4096: +213 MB instead of +93 MB). Hand them back.
          malloc_trim(0);
#endif
          return result;
        },
        [](Napi::Env env, NtXentResult& result) -> Napi::Value {
          Napi::Object out = Napi::Object::New(env);
          out.Set("loss", Napi::Number::New(env, result.loss));
          out.Set("grad", TensorWrap::Wrap(env, result.grad));
          return out;
        });
  });
}

static void InitNtXentModule(Napi::Env env, Napi::Object exports) {
  exports.Set("ntXent", Napi::Function::New<NtXent>(env, "ntXent"));
}
SIMCLR_MODULE(nt_xent, InitNtXentModule);

}  // namespace simclr
