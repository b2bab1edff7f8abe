// Global BatchNorm (see global_batch_norm.h). With x̂ = (x − μ)·σ⁻¹ over the global batch of n values per channel,
// y = γ·x̂ + β and upstream gradient dy:
//   dγ = Σ_local dy·x̂,  dβ = Σ_local dy     (per-rank parts: the gradient all-reduce sums them like any gradient)
//   dx = γ·σ⁻¹·(dy − Σ_global dy / n − x̂·Σ_global dy·x̂ / n)
// so the backward all-reduces one 2C vector; the forward all-gathers each rank's (mean, centred sum of squares, count).
#include "core/global_batch_norm.h"

#include <c10/core/GradMode.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>
#include <tuple>
#include <vector>

namespace simclr {
namespace {

thread_local ProcessGroup* current_group = nullptr;

std::vector<int64_t> ReduceDims(const at::Tensor& x) {
  std::vector<int64_t> dims = {0};
  for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
  return dims;
}

// A per-channel vector shaped to broadcast against x: 1 x C x 1 x ...
at::Tensor PerChannel(const at::Tensor& v, const at::Tensor& x) {
  std::vector<int64_t> shape(x.dim(), 1);
  shape[1] = x.size(1);
  return v.view(shape);
}

at::ScalarType ComputeType(const at::Tensor& x) { return x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat; }

class GlobalBatchNormFunction : public torch::autograd::Function<GlobalBatchNormFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            const at::Tensor& bias, const at::Tensor& mean, const at::Tensor& invstd, double count,
                            ProcessGroup* group) {
    at::Tensor xhat = (x.to(ComputeType(x)) - PerChannel(mean, x)) * PerChannel(invstd, x);
    at::Tensor y = xhat * PerChannel(weight.to(xhat.scalar_type()), x) + PerChannel(bias.to(xhat.scalar_type()), x);
    ctx->save_for_backward({x, weight, mean, invstd});
    ctx->saved_data["count"] = count;
    ctx->saved_data["group"] = reinterpret_cast<int64_t>(group);
    return y.to(x.scalar_type());
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    torch::autograd::variable_list saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& weight = saved[1];
    const at::Tensor& mean = saved[2];
    const at::Tensor& invstd = saved[3];
    const double count = ctx->saved_data["count"].toDouble();
    auto* group = reinterpret_cast<ProcessGroup*>(ctx->saved_data["group"].toInt());
    const at::ScalarType type = ComputeType(x);
    at::Tensor dy = grad_outputs[0].to(type);
    at::Tensor xs = x.to(type);
    // The two per-channel sums by BatchNorm's own backward kernel, given the global statistics: the same reductions
    // (vectorised, with their rounding) as the one-process step's.
    at::Tensor sum_dy_xhat, sum_dy;
    std::tie(std::ignore, sum_dy_xhat, sum_dy) = at::native_batch_norm_backward(
        dy, xs, weight.to(type), {}, {}, mean, invstd, /*train=*/true, /*eps=*/0.0, {false, true, true});
    at::Tensor xhat = (xs - PerChannel(mean, x)) * PerChannel(invstd, x);
    at::Tensor global = at::cat({sum_dy, sum_dy_xhat}).contiguous();
    group->AllReduceSum(global);
    const int64_t channels = x.size(1);
    at::Tensor mean_dy = global.narrow(0, 0, channels) / count;
    at::Tensor mean_dy_xhat = global.narrow(0, channels, channels) / count;
    at::Tensor scale = invstd * weight.to(type);
    at::Tensor dx = (dy - PerChannel(mean_dy, x) - xhat * PerChannel(mean_dy_xhat, x)) * PerChannel(scale, x);
    return {dx.to(x.scalar_type()), sum_dy_xhat.to(weight.scalar_type()), sum_dy.to(weight.scalar_type()),
            at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

GlobalBatchNormScope::GlobalBatchNormScope(ProcessGroup* group) : previous_(current_group) { current_group = group; }
GlobalBatchNormScope::~GlobalBatchNormScope() { current_group = previous_; }
ProcessGroup* GlobalBatchNormGroup() { return current_group; }

at::Tensor GlobalBatchNorm(ProcessGroup& group, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                           const at::Tensor& running_mean, const at::Tensor& running_var,
                           const at::Tensor& num_batches_tracked, c10::optional<double> momentum, double eps) {
  TORCH_CHECK_VALUE(x.dim() >= 2, "BatchNorm: Expected N x C x ... for the input but received shape ", x.sizes());
  const int64_t channels = x.size(1);
  at::Tensor mean, invstd;
  double count = 0;
  {
    c10::AutoGradMode no_grad(false);
    const std::vector<int64_t> dims = ReduceDims(x);
    at::Tensor xs = x.detach().to(ComputeType(x));
    const int64_t local = channels > 0 ? x.numel() / channels : 0;
    at::Tensor local_mean = local > 0 ? xs.mean(dims) : at::zeros({channels}, xs.options());
    at::Tensor local_m2 = local > 0 ? (xs - PerChannel(local_mean, xs)).square().sum(dims) : at::zeros({channels}, xs.options());
    at::Tensor stats = at::cat({local_mean.to(at::kDouble), local_m2.to(at::kDouble),
                                at::full({1}, double(local), xs.options().dtype(at::kDouble))});
    at::Tensor all = group.AllGather(stats);  // world x (2C + 1)
    at::Tensor counts = all.select(1, 2 * channels).unsqueeze(1);
    count = counts.sum().item<double>();
    TORCH_CHECK_VALUE(count > 1, "BatchNorm: Expected more than 1 value per channel over all ranks when training but "
                      "received ", count);
    at::Tensor means = all.narrow(1, 0, channels);
    at::Tensor global_mean = (means * counts).sum(0) / count;
    at::Tensor m2 = (all.narrow(1, channels, channels) + counts * (means - global_mean).square()).sum(0);
    at::Tensor var = m2 / count;
    mean = global_mean.to(xs.scalar_type());
    invstd = (var + eps).rsqrt().to(xs.scalar_type());
    if (running_mean.defined() && running_var.defined()) {
      double factor = momentum.value_or(0.0);
      if (num_batches_tracked.defined()) {
        const_cast<at::Tensor&>(num_batches_tracked).add_(1);
        if (!momentum) factor = 1.0 / num_batches_tracked.item<double>();
      }
      const_cast<at::Tensor&>(running_mean).mul_(1 - factor).add_(global_mean.to(running_mean.scalar_type()), factor);
      const_cast<at::Tensor&>(running_var).mul_(1 - factor).add_((m2 / (count - 1)).to(running_var.scalar_type()), factor);
    }
  }
  at::Tensor w = weight.defined() ? weight : at::ones({channels}, x.options().dtype(ComputeType(x)));
  at::Tensor b = bias.defined() ? bias : at::zeros({channels}, x.options().dtype(ComputeType(x)));
  return GlobalBatchNormFunction::apply(x, w, b, mean, invstd, count, &group);
}

}  // namespace simclr
