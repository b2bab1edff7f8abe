// The SimCLR training step, whole: forward of every view through the encoder and the projection head (under autocast
// when the precision asks for it), the fused NT-Xent loss in float32, backward, and the optimiser update. TypeScript
// decides the learning rate, when to log and when to checkpoint; this decides how fast.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/optimizer.h"
#include "core/precision.h"
#include "core/simclr_model.h"

namespace simclr {

// What persists from one step to the next besides the model: the optimiser, the float16 loss scaler, and how many
// micro-batches have gradients waiting (gradient accumulation).
class TrainState {
 public:
  // Optimises every parameter of `model` that requires a gradient. Biases and BatchNorm weights (the 1-D parameters)
  // are excluded from weight decay and LARS adaptation, as SimCLR does.
  TrainState(LockedModelPtr model, const OptimizerOptions& options);

  const LockedModelPtr& model() const { return model_; }

  // The optimiser's and the loss scaler's state as named tensors (copies) and the optimiser's step count; Load restores
  // both. Both hold the model's lock. Waiting micro-batch gradients are not part of the state.
  std::map<std::string, at::Tensor> State(int64_t* steps) const;
  void LoadState(const std::map<std::string, at::Tensor>& state, int64_t steps);

 private:
  friend struct TrainStepRunner;
  LockedModelPtr model_;
  Optimizer optimizer_;
  LossScaler scaler_;
  int64_t pending_micro_batches_ = 0;
};

struct TrainStepOptions {
  double lr = 0;                // the learning rate of this step's update, >= 0
  double temperature = 0;       // NT-Xent temperature, > kNtXentMinTemperature
  int64_t views = 2;            // views per image over all groups
  Precision precision = Precision::kFloat32;
  MemoryFormat memory_format = MemoryFormat::kContiguous;
  // The update is applied once every `accumulation_steps` calls, on the mean of their gradients (each call's loss is
  // divided by it); the calls in between only accumulate.
  int64_t accumulation_steps = 1;
};

struct TrainStepResult {
  double loss = 0;       // this micro-batch's NT-Xent loss
  bool applied = false;  // whether the optimiser update ran (false while accumulating, or when fp16 found Inf/NaN)
};

// Throws c10::ValueError / c10::TypeError unless `view_groups` are float tensors `V_g*B x 3 x H_g x W_g` of the same B
// >= 2 images whose view counts V_g add up to options.views, and the options are in range.
void CheckTrainStep(const std::vector<at::Tensor>& view_groups, const TrainStepOptions& options);

// One step. `view_groups` holds the views by resolution (one tensor for plain SimCLR, more for multi-crop), view-major
// inside each group; the embeddings are concatenated in group order, so with two groups of 2 and 4 views NT-Xent sees
// 6 views per image and every other view of an image is a positive. Holds the model's lock throughout.
TrainStepResult TrainStep(TrainState& state, const std::vector<at::Tensor>& view_groups, const TrainStepOptions& options);

}  // namespace simclr
