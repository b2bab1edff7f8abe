// The data-parallel pieces of the training step, on a c10d process group: the embeddings' all-gather with gradient,
// the bucketed gradient all-reduce that overlaps backward, and the broadcast of a model's state from rank 0.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "core/process_group.h"

namespace simclr {

// What the all-gather's backward does with the gradient of the gathered rows. kSumOverRanks is right: every rank's
// loss depends on every rank's rows, so a rank's rows get the sum over ranks of their gradients (lightly #1528 / PR
// #1531). kOwnRankOnly keeps only this rank's own gradient, the historic bug; it exists so a test can show the
// difference.
enum class GatherBackward { kSumOverRanks, kOwnRankOnly };

struct GatheredRows {
  at::Tensor rows;     // every rank's rows, in rank order (M x ...)
  int64_t offset = 0;  // where this rank's rows start in `rows`
};

// Every rank's `z` (R_r x d; R_r may differ between ranks) concatenated in rank order, differentiable: the backward
// all-reduces the gradient of the gathered rows (kSumOverRanks) and returns this rank's slice.
GatheredRows AllGatherWithGradient(ProcessGroup& group, const at::Tensor& z, GatherBackward backward);

// Copies rank 0's values into `tensors` on every rank (one broadcast per dtype and device, flattened).
void BroadcastFromRank0(ProcessGroup& group, const std::vector<at::Tensor>& tensors);

// Gradient all-reduce as DistributedDataParallel does it: parameters are grouped into buckets of about `bucket_bytes`
// in reverse order (the order backward produces their gradients); a hook on each parameter copies its gradient into its
// bucket, and a bucket's all-reduce starts as soon as the bucket is complete and the buckets before it have started
// (the same order on every rank), while backward goes on. Finish() then writes the mean over ranks into .grad.
class GradientReducer {
 public:
  GradientReducer(ProcessGroupPtr group, std::vector<at::Tensor> parameters, int64_t bucket_bytes);
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // Arms the hooks for the next backward. A parameter's bucket slot receives its new gradient plus whatever .grad
  // already holds (micro-batches accumulated without synchronising).
  void Prepare();
  // After backward: all-reduces the buckets not yet started (zeros for parameters without a gradient), waits for every
  // bucket, and sets each parameter's .grad to the mean over ranks. Disarms the hooks.
  void Finish();
  // Disarms the hooks without synchronising (a failed step).
  void Cancel();

  int64_t buckets() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace simclr
