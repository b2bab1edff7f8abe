// SimCLR's global BatchNorm: in a data-parallel step, BatchNorm's batch statistics are taken over the images of every
// rank (SimCLR: "we aggregate BN mean and variance over all devices"), so that a rank cannot learn to tell its own
// positives by their local statistics, and N workers with batch B compute what one worker with batch N*B would. The
// backward all-reduces the two per-channel sums it needs, as PyTorch's SyncBatchNorm.
#pragma once

#include <ATen/ATen.h>
#include <c10/util/Optional.h>

#include "core/process_group.h"

namespace simclr {

// While an instance lives, training-mode BatchNorm layers run on this thread (see models.cc) use global statistics
// over `group`. Scopes nest; a null group turns it off.
class GlobalBatchNormScope {
 public:
  explicit GlobalBatchNormScope(ProcessGroup* group);
  ~GlobalBatchNormScope();
  GlobalBatchNormScope(const GlobalBatchNormScope&) = delete;
  GlobalBatchNormScope& operator=(const GlobalBatchNormScope&) = delete;

 private:
  ProcessGroup* previous_;
};

// The group of the innermost scope on this thread, or null.
ProcessGroup* GlobalBatchNormGroup();

// Training-mode batch norm of x (N x C x ...) with statistics over every rank's x: the output, differentiable in x,
// weight and bias, and the running statistics updated in place as torch.nn.BatchNorm does (momentum, or a cumulative
// average when momentum is unset; the running variance unbiased over the global count). Statistics are combined from
// each rank's mean and centred sum of squares (Chan et al.), in float64. weight/bias may be undefined (affine=False);
// the running tensors may be undefined (track_running_stats=False).
at::Tensor GlobalBatchNorm(ProcessGroup& group, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                           const at::Tensor& running_mean, const at::Tensor& running_var,
                           const at::Tensor& num_batches_tracked, c10::optional<double> momentum, double eps);

}  // namespace simclr
