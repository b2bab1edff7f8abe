// The SimCLR training step, whole: forward of every view through the encoder and the projection head, the fused
// NT-Xent loss, backward, and the optimiser update. TypeScript decides the learning rate, when to log and when to
// checkpoint; this decides how fast.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <string>

#include "core/optimizer.h"
#include "core/simclr_model.h"

namespace simclr {

struct TrainStepOptions {
  OptimizerOptions optimizer;
  double temperature = 0;  // NT-Xent temperature, > kNtXentMinTemperature
  int64_t views = 2;       // views per image in each batch (rows are view-major)
};

class TrainStep {
 public:
  // Trains every parameter of `model` that requires a gradient; the model must have a projection head. Biases and
  // BatchNorm weights (the 1-D parameters) are excluded from weight decay and LARS adaptation, as SimCLR does.
  TrainStep(LockedModelPtr model, const TrainStepOptions& options);

  // Throws c10::ValueError / c10::TypeError unless `views` is a float tensor V*B x 3 x H x W of V views of B >= 2 images.
  void CheckViews(const at::Tensor& views) const;

  // One step on `views` with learning rate `lr`; returns the loss. Holds the model's lock throughout.
  double Run(const at::Tensor& views, double lr);

  // The optimiser's state as named tensors (copies) and its step count; LoadOptimizerState restores both. Both hold the
  // model's lock.
  std::map<std::string, at::Tensor> OptimizerState(int64_t* steps) const;
  void LoadOptimizerState(const std::map<std::string, at::Tensor>& state, int64_t steps);

 private:
  LockedModelPtr model_;
  TrainStepOptions options_;
  Optimizer optimizer_;
};

}  // namespace simclr
