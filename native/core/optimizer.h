// Optimisers for the training step: SGD (momentum, Nesterov), AdamW and LARS, written with ATen so that their state
// is a flat list of named tensors (checkpoints save and restore it exactly) and the learning rate comes from the
// schedule in TypeScript at every step.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <string>
#include <vector>

namespace simclr {

enum class OptimizerKind { kSGD, kAdamW, kLARS };

// "sgd", "adamw", "lars": the optimisers by the names JS uses, indexed by OptimizerKind.
const std::vector<std::string>& OptimizerNames();

// The largest momentum, and AdamW beta, accepted: each is the decay rate of a moving average, which at 1 would never
// move again (and AdamW's bias correction 1 - beta^t would divide by zero).
constexpr double kMaxMomentum = 0.999999;

// Every field must be set: the defaults are the caller's (TypeScript's OPTIMIZER_DEFAULTS, src/ops/train-step.ts).
// The ranges (momentum and betas in [0, kMaxMomentum], weight_decay >= 0, eps and trust_coefficient > 0) are the
// caller's too, checked once where the options are read (bind/train_step.cc); the Optimizer checks only that nesterov
// has a momentum.
struct OptimizerOptions {
  OptimizerKind kind = OptimizerKind::kSGD;
  double momentum = 0;          // SGD, LARS
  bool nesterov = false;        // SGD
  double weight_decay = 0;      // SGD: L2 added to the gradient; AdamW: decoupled; LARS: added before adaptation
  double beta1 = 0, beta2 = 0, eps = 0;  // AdamW
  double trust_coefficient = 0;          // LARS (eta in the paper)
};

// One trainable tensor. `exclude_from_decay` marks biases and BatchNorm parameters: SimCLR's LARS neither adapts
// their learning rate nor decays them (the other optimisers still decay them unless excluded too).
struct NamedParameter {
  std::string name;
  at::Tensor tensor;
  bool exclude_from_decay = false;
};

class Optimizer {
 public:
  Optimizer(std::vector<NamedParameter> parameters, OptimizerOptions options);

  // Applies one update with learning rate `lr` (finite and >= 0: checked with the step's options, not here) from the
  // parameters' current .grad(). Parameters without a gradient are skipped.
  void Step(double lr);
  void ZeroGrad();

  // State as named tensors (e.g. "layer1.0.conv1.weight/momentum") plus the step count (>= 0, the caller's check);
  // Load restores it and checks that names and shapes match.
  std::map<std::string, at::Tensor> State() const;
  int64_t steps() const { return steps_; }
  void LoadState(const std::map<std::string, at::Tensor>& state, int64_t steps);

  const OptimizerOptions& options() const { return options_; }

 private:
  at::Tensor& Buffer(size_t index, const char* kind);
  void SgdStep(double lr);

  std::vector<NamedParameter> parameters_;
  OptimizerOptions options_;
  // Per parameter: kind ("momentum", "exp_avg", "exp_avg_sq") -> tensor, created lazily at the first step.
  std::vector<std::map<std::string, at::Tensor>> buffers_;
  int64_t steps_ = 0;
};

}  // namespace simclr
