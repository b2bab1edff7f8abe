// The SimCLR training step, whole: forward of every view through the encoder and the projection head (under autocast
// when the precision asks for it), the fused NT-Xent loss in float32, backward, and the optimiser update. TypeScript
// decides the learning rate, when to log and when to checkpoint; this decides how fast.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/data_parallel.h"
#include "core/device.h"
#include "core/optimizer.h"
#include "core/precision.h"
#include "core/process_group.h"
#include "core/simclr_model.h"

namespace simclr {

// How a step runs data-parallel over a process group (as PyTorch's DistributedDataParallel, plus SimCLR's global
// negatives and BatchNorm): the model's parameters and buffers are broadcast from rank 0 before the first step; each
// rank's embeddings are all-gathered with gradient and its own rows are scored against every rank's (NT-Xent local
// rows x global columns); gradients are all-reduced as a mean in buckets while backward runs.
struct DataParallelOptions {
  ProcessGroupPtr group;
  // BatchNorm statistics over all ranks (SimCLR's global BN). Off: each rank normalises by its own batch, and buffers
  // (running statistics) are broadcast from rank 0 before every step, as DDP does.
  bool global_batch_norm = true;
  GatherBackward gather_backward = GatherBackward::kSumOverRanks;
  int64_t bucket_bytes = int64_t(25) << 20;  // DDP's default bucket cap
};

// What persists from one step to the next besides the model: the optimiser, the float16 loss scaler, and how many
// micro-batches have gradients waiting (gradient accumulation).
class TrainState {
 public:
  // Optimises every parameter of `model` that requires a gradient. Biases and BatchNorm weights (the 1-D parameters)
  // are excluded from weight decay and LARS adaptation, as SimCLR does.
  // With `data_parallel.group` set, every step is a data-parallel step over that group.
  TrainState(LockedModelPtr model, const OptimizerOptions& options, DataParallelOptions data_parallel = {});
  ~TrainState();

  const LockedModelPtr& model() const { return model_; }
  const ProcessGroupPtr& group() const { return data_parallel_.group; }

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
  DataParallelOptions data_parallel_;
  std::unique_ptr<GradientReducer> reducer_;
  bool broadcast_done_ = false;  // rank 0's parameters and buffers reached every rank
  int64_t calls_ = 0;            // steps run, recorded in the group's store for failure reports
};

// The most calls accumulated into one update: far more than any run needs, so that a mistyped value is an error
// rather than a run that never updates.
constexpr int64_t kMaxAccumulationSteps = int64_t(1) << 20;

struct TrainStepOptions {
  double lr = 0;                // the learning rate of this step's update, >= 0
  double temperature = 0;       // NT-Xent temperature, > kNtXentMinTemperature
  int64_t views = 2;            // views per image over all groups
  Precision precision = Precision::kFloat32;
  MemoryFormat memory_format = MemoryFormat::kContiguous;
  // The update is applied once every `accumulation_steps` calls, on the mean of their gradients (each call's loss is
  // divided by it); the calls in between only accumulate.
  int64_t accumulation_steps = 1;
  // Data-parallel: this rank asks every rank to stop after this step (the answer is TrainStepResult::stop), so that
  // all ranks stop at the same step and none waits in a collective for the others.
  bool stop_requested = false;
};

// What a step reports, without waiting for the device: its scalars are on their way to the host (HostCopy), so a
// caller can queue the next step before it reads them (PyTorch's loss.item() after every step waits for the GPU).
struct TrainStepResult {
  // float64 [loss, local_loss, stop]: this micro-batch's NT-Xent loss (data-parallel: over the global batch, the same
  // on every rank); data-parallel, this rank's anchors only (otherwise = loss); 1 when some rank asked to stop after
  // this step (stop_requested on any rank), else 0.
  HostCopy values;
  int64_t images = 0;    // images in the (global) batch
  bool applied = false;  // whether the optimiser update ran (false while accumulating, or when fp16 found Inf/NaN)
};

// The scalars of a TrainStepResult, once they have reached the host.
struct TrainStepValues {
  double loss = 0;
  double local_loss = 0;
  bool stop = false;
};
TrainStepValues ReadTrainStepValues(const HostCopy& values);

// The step's precondition on its tensors, checked once per step where the step is entered (bind/train_step.cc): throws
// c10::ValueError / c10::TypeError unless `view_groups` are float tensors `V_g*B x 3 x H_g x W_g` on one device, of the
// same B images (B >= 2; data-parallel, B >= 1 on each rank), whose view counts V_g add up to options.views. The
// options' numbers (views in 2..64, lr >= 0, temperature > kNtXentMinTemperature, accumulation_steps >= 1) are the
// caller's: checked once where they were read, not here and not again in TrainStep or in the NT-Xent kernel.
void CheckTrainStep(const std::vector<at::Tensor>& view_groups, const TrainStepOptions& options,
                    bool data_parallel = false);

// One step. `view_groups` holds the views by resolution (one tensor for plain SimCLR, more for multi-crop), view-major
// inside each group; the embeddings are concatenated in group order, so with two groups of 2 and 4 views NT-Xent sees
// 6 views per image and every other view of an image is a positive. Holds the model's lock throughout. Needs
// arguments that passed CheckTrainStep (it does not check them again); a data-parallel step checks the rows gathered
// from the other ranks, which arrive with each step.
TrainStepResult TrainStep(TrainState& state, const std::vector<at::Tensor>& view_groups, const TrainStepOptions& options);

}  // namespace simclr
