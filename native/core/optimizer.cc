#include "core/optimizer.h"

#include <c10/core/GradMode.h>
#include <c10/util/Exception.h>

#include <ATen/Functions.h>

#include <cmath>

namespace simclr {

const std::vector<std::string>& OptimizerNames() {
  static const std::vector<std::string> names = {"sgd", "adamw", "lars"};
  return names;
}

Optimizer::Optimizer(std::vector<NamedParameter> parameters, OptimizerOptions options)
    : parameters_(std::move(parameters)), options_(options), buffers_(parameters_.size()) {
  // The ranges of the numbers were checked where they were read (bind/train_step.cc); this pair is checked only here.
  TORCH_CHECK_VALUE(!options_.nesterov || options_.momentum > 0,
                    "Expected a number > 0 (nesterov is on) for options.momentum but received ", options_.momentum);
}

at::Tensor& Optimizer::Buffer(size_t index, const char* kind) {
  auto& slot = buffers_[index][kind];
  if (!slot.defined()) slot = at::zeros_like(parameters_[index].tensor);
  return slot;
}

void Optimizer::ZeroGrad() {
  for (auto& p : parameters_) {
    if (p.tensor.grad().defined()) p.tensor.mutable_grad() = at::Tensor();
  }
}

void Optimizer::Step(double lr) {
  c10::AutoGradMode no_grad(false);
  ++steps_;
  const auto& o = options_;
  if (o.kind == OptimizerKind::kSGD) return SgdStep(lr);
  for (size_t i = 0; i < parameters_.size(); ++i) {
    at::Tensor param = parameters_[i].tensor;
    at::Tensor grad = param.grad();
    if (!grad.defined()) continue;
    const bool exclude = parameters_[i].exclude_from_decay;
    switch (o.kind) {
      case OptimizerKind::kSGD:
        break;  // SgdStep, above
      case OptimizerKind::kAdamW: {
        // torch.optim.AdamW: decoupled decay p *= 1 - lr * wd, then the bias-corrected Adam step.
        if (o.weight_decay > 0 && !exclude) param.mul_(1 - lr * o.weight_decay);
        at::Tensor& m = Buffer(i, "exp_avg");
        at::Tensor& v = Buffer(i, "exp_avg_sq");
        m.mul_(o.beta1).add_(grad, 1 - o.beta1);
        v.mul_(o.beta2).addcmul_(grad, grad, 1 - o.beta2);
        const double bias1 = 1 - std::pow(o.beta1, double(steps_));
        const double bias2 = 1 - std::pow(o.beta2, double(steps_));
        at::Tensor denom = (v.sqrt() / std::sqrt(bias2)).add_(o.eps);
        param.addcdiv_(m, denom, -lr / bias1);
        break;
      }
      case OptimizerKind::kLARS: {
        // SimCLR's LARS (google-research/simclr lars_optimizer.py): decay, then a layer-wise trust ratio
        // eta * ||p|| / ||g||; biases and BatchNorm parameters get neither.
        at::Tensor d = grad;
        at::Tensor& buf = Buffer(i, "momentum");
        buf.mul_(o.momentum);
        if (exclude) {
          buf.add_(d, lr);
        } else {
          if (o.weight_decay > 0) d = d.add(param, o.weight_decay);
          // Kept on the device (no .item()), so a CUDA step does not synchronise once per parameter.
          at::Tensor param_norm = param.norm();
          at::Tensor grad_norm = d.norm();
          at::Tensor trust = at::where(param_norm.gt(0).logical_and(grad_norm.gt(0)),
                                       param_norm.div(grad_norm).mul_(o.trust_coefficient), at::ones_like(param_norm));
          buf.add_(d.mul(trust.mul_(lr)));
        }
        param.sub_(buf);
        break;
      }
    }
  }
}

// torch.optim.SGD in its foreach form: d = g + wd * p; buf = m * buf + d; step = nesterov ? d + m * buf : buf; each
// formula over all parameters in one _foreach op, so that a GPU step launches a few kernels per formula instead of a
// few per parameter (ResNet-50 has 161). On a CPU the ops run tensor by tensor, as the per-parameter loop did.
void Optimizer::SgdStep(double lr) {
  const auto& o = options_;
  std::vector<size_t> index;         // parameters with a gradient
  std::vector<at::Tensor> params, steps;
  std::vector<size_t> decayed;       // positions in `steps` whose parameter is decayed
  std::vector<at::Tensor> decayed_grads, decayed_params;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const at::Tensor& param = parameters_[i].tensor;
    const at::Tensor& grad = param.grad();
    if (!grad.defined()) continue;
    index.push_back(i);
    params.push_back(param);
    steps.push_back(grad);
    if (o.weight_decay > 0 && !parameters_[i].exclude_from_decay) {
      decayed.push_back(steps.size() - 1);
      decayed_grads.push_back(grad);
      decayed_params.push_back(param);
    }
  }
  if (params.empty()) return;
  if (!decayed.empty()) {
    std::vector<at::Tensor> d = at::_foreach_add(decayed_grads, decayed_params, o.weight_decay);
    for (size_t k = 0; k < decayed.size(); ++k) steps[decayed[k]] = std::move(d[k]);
  }
  if (o.momentum > 0) {
    std::vector<at::Tensor> running, their_steps, buffers;
    for (size_t k = 0; k < params.size(); ++k) {
      at::Tensor& buf = buffers_[index[k]]["momentum"];
      if (!buf.defined()) {
        buf = steps[k].clone();  // torch: the first step initialises the buffer with d
      } else {
        running.push_back(buf);
        their_steps.push_back(steps[k]);
      }
      buffers.push_back(buf);
    }
    if (!running.empty()) {
      at::_foreach_mul_(running, o.momentum);
      at::_foreach_add_(running, their_steps);
    }
    steps = o.nesterov ? at::_foreach_add(steps, buffers, o.momentum) : std::move(buffers);
  }
  at::_foreach_add_(params, steps, -lr);
}

std::map<std::string, at::Tensor> Optimizer::State() const {
  std::map<std::string, at::Tensor> state;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    for (const auto& [kind, tensor] : buffers_[i]) state[parameters_[i].name + "/" + kind] = tensor;
  }
  return state;
}

void Optimizer::LoadState(const std::map<std::string, at::Tensor>& state, int64_t steps) {
  std::vector<std::map<std::string, at::Tensor>> restored(parameters_.size());
  size_t used = 0;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    for (const char* kind : {"momentum", "exp_avg", "exp_avg_sq"}) {
      auto it = state.find(parameters_[i].name + "/" + kind);
      if (it == state.end()) continue;
      const at::Tensor& p = parameters_[i].tensor;
      TORCH_CHECK_VALUE(it->second.sizes() == p.sizes(), "optimizer state ", it->first, " has shape ", it->second.sizes(),
                        " but the parameter has ", p.sizes());
      restored[i][kind] = it->second.to(p.options()).clone();
      ++used;
    }
  }
  TORCH_CHECK_VALUE(used == state.size(), "optimizer state has ", state.size() - used,
                    " entries that match no parameter of this model");
  buffers_ = std::move(restored);
  steps_ = steps;
}

}  // namespace simclr
