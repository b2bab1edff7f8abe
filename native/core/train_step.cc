#include "core/train_step.h"

#include <cmath>
#include <utility>

#include "core/global_batch_norm.h"
#include "core/nt_xent.h"

namespace simclr {

static std::vector<NamedParameter> TrainableParameters(SimCLRModelImpl& model) {
  std::vector<NamedParameter> parameters;
  for (const auto& item : model.named_parameters(/*recurse=*/true)) {
    if (!item.value().requires_grad()) continue;
    parameters.push_back({item.key(), item.value(), item.value().dim() <= 1});
  }
  return parameters;
}

static Optimizer MakeOptimizer(const LockedModelPtr& model, const OptimizerOptions& options) {
  TORCH_CHECK_VALUE(model && model->model->head, "training needs a model with a projection head (SimCLRModel)");
  std::lock_guard<std::mutex> hold(model->mutex);
  return Optimizer(TrainableParameters(*model->model), options);
}

static std::vector<at::Tensor> Tensors(const std::vector<NamedParameter>& parameters) {
  std::vector<at::Tensor> tensors;
  for (const auto& p : parameters) tensors.push_back(p.tensor);
  return tensors;
}

TrainState::TrainState(LockedModelPtr model, const OptimizerOptions& options, DataParallelOptions data_parallel)
    : model_(std::move(model)), optimizer_(MakeOptimizer(model_, options)), data_parallel_(std::move(data_parallel)) {
  if (!data_parallel_.group) return;
  TORCH_CHECK_VALUE(data_parallel_.bucket_bytes >= 1, "Expected an integer >= 1 for dataParallel.bucketBytes but received ",
                    data_parallel_.bucket_bytes);
  std::lock_guard<std::mutex> hold(model_->mutex);
  reducer_ = std::make_unique<GradientReducer>(data_parallel_.group, Tensors(TrainableParameters(*model_->model)),
                                               data_parallel_.bucket_bytes);
}

TrainState::~TrainState() {
  if (!reducer_) return;
  std::lock_guard<std::mutex> hold(model_->mutex);  // the hooks come off the parameters while nothing runs the model
  reducer_.reset();
}

std::map<std::string, at::Tensor> TrainState::State(int64_t* steps) const {
  std::lock_guard<std::mutex> hold(model_->mutex);
  std::map<std::string, at::Tensor> state = optimizer_.State();
  for (auto& entry : state) entry.second = entry.second.detach().clone();
  for (auto& entry : scaler_.State()) state.insert(entry);
  *steps = optimizer_.steps();
  return state;
}

void TrainState::LoadState(const std::map<std::string, at::Tensor>& state, int64_t steps) {
  std::map<std::string, at::Tensor> optimizer_state;
  std::map<std::string, at::Tensor> scaler_state;
  for (const auto& entry : state) (entry.first.rfind("amp/", 0) == 0 ? scaler_state : optimizer_state).insert(entry);
  std::lock_guard<std::mutex> hold(model_->mutex);
  optimizer_.LoadState(optimizer_state, steps);
  if (!scaler_state.empty()) scaler_.LoadState(scaler_state);
  pending_micro_batches_ = 0;
}

void CheckTrainStep(const std::vector<at::Tensor>& view_groups, const TrainStepOptions& options, bool data_parallel) {
  TORCH_CHECK_VALUE(!view_groups.empty(), "a training step needs at least one tensor of views");
  int64_t rows = 0;
  for (const at::Tensor& views : view_groups) {
    TORCH_CHECK_VALUE(views.defined() && views.dim() == 4 && views.size(1) == 3,
                      "Expected V*B x 3 x H x W tensors for views but received shape ", views.sizes());
    TORCH_CHECK_TYPE(views.is_floating_point(), "Expected float tensors for views but received dtype ",
                     views.scalar_type());
    TORCH_CHECK_VALUE(views.device() == view_groups.front().device(), "Expected every tensor of views on ",
                      view_groups.front().device(), " but received one on ", views.device());
    rows += views.size(0);
  }
  const int64_t min_images = data_parallel ? 1 : 2;
  TORCH_CHECK_VALUE(rows % options.views == 0 && rows / options.views >= min_images, "Expected ", options.views,
                    " views of at least ", data_parallel ? "1 image on each rank" : "2 images", " but received ", rows,
                    " rows of views");
  const int64_t images = rows / options.views;
  for (const at::Tensor& views : view_groups) {
    TORCH_CHECK_VALUE(views.size(0) % images == 0, "a group of views has ", views.size(0), " rows, not a multiple of ",
                      images, " images");
  }
}

// Runs under the model's lock: the step reads and writes the model and the state's optimiser.
struct TrainStepRunner {
  static TrainStepResult Run(TrainState& state, const std::vector<at::Tensor>& view_groups, const TrainStepOptions& o) {
    ProcessGroup* group = state.data_parallel_.group.get();
    std::lock_guard<std::mutex> hold(state.model_->mutex);
    SimCLRModelImpl& model = *state.model_->model;
    const at::Device device = model.encoder->conv1->weight.device();
    CheckPrecision(o.precision, device);
    // The step computes in the parameters' type: float32, or float64 (a model cast for checks against exact arithmetic).
    const at::ScalarType input_type = model.encoder->conv1->weight.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
    model.train();
    if (o.memory_format == MemoryFormat::kChannelsLast) ToMemoryFormat(model.parameters(), o.memory_format);
    if (group) PrepareDataParallel(state, model);
    if (state.pending_micro_batches_ == 0) state.optimizer_.ZeroGrad();

    std::vector<at::Tensor> embeddings;
    {
      GlobalBatchNormScope batch_norm(group && state.data_parallel_.global_batch_norm ? group : nullptr);
      AutocastScope autocast(device, o.precision);
      for (const at::Tensor& views : view_groups) {
        // Views already in the autocast type (bf16/fp16 from the augmenter) stay in it: autocast's first op wants it.
        const bool low = o.precision != Precision::kFloat32 && views.scalar_type() == LowPrecisionType(o.precision);
        const at::ScalarType type = low ? views.scalar_type() : input_type;
        at::Tensor input = views.to(device, type).contiguous(AtenFormat(o.memory_format));
        embeddings.push_back(model.forward(input).second);
      }
    }
    // NT-Xent in float32 (float64 for a float64 model), outside the autocast region.
    at::Tensor z = (embeddings.size() == 1 ? embeddings.front() : at::cat(embeddings, 0)).to(input_type);
    TrainStepResult result;
    at::Tensor loss;
    double weight = 1;  // data-parallel: R_r·W/M, so that the mean over ranks of the gradients is the global loss's
    if (group) {
      GatheredRows all = AllGatherWithGradient(*group, z, state.data_parallel_.gather_backward);
      CheckNtXentLocalRows(z, all.rows, all.offset, o.views);  // the other ranks' rows arrive with every step
      loss = NtXentLocalRowsLoss(z, all.rows, all.offset, o.temperature, o.views);
      weight = double(z.size(0)) * double(group->size()) / double(all.rows.size(0));
      result.images = all.rows.size(0) / o.views;
    } else {
      loss = NtXentLoss(z, o.temperature, o.views);
      result.images = z.size(0) / o.views;
    }
    const double divisor = double(o.accumulation_steps) / weight;
    at::Tensor objective = divisor != 1 ? loss / divisor : loss;
    const bool scaled = o.precision == Precision::kFloat16;
    const bool applying = state.pending_micro_batches_ + 1 >= o.accumulation_steps;
    if (group && applying) state.reducer_->Prepare();
    try {
      (scaled ? objective * state.scaler_.scale() : objective).backward();
      if (group && applying) state.reducer_->Finish();
    } catch (...) {
      if (group) state.reducer_->Cancel();
      throw;
    }

    // The step's scalars stay on the device (a host read here would wait for the whole step on a GPU): float64
    // [loss, local loss, stop], the same arithmetic a host read of the float32 loss followed by double maths gave.
    const at::Tensor local_loss = loss.detach().to(at::kDouble);
    const at::TensorOptions doubles = local_loss.options();
    if (group) {
      // The global loss (the R-weighted mean of the ranks' losses) and whether any rank asked to stop, in one call.
      at::Tensor summary = at::stack({local_loss * double(z.size(0)), at::full({}, o.stop_requested ? 1.0 : 0.0, doubles)});
      group->AllReduceSum(summary);
      result.values = HostCopy(at::stack({summary[0] / double(result.images * o.views), local_loss, summary[1]}));
    } else {
      result.values = HostCopy(at::stack({local_loss, local_loss, at::full({}, o.stop_requested ? 1.0 : 0.0, doubles)}));
    }
    if (++state.pending_micro_batches_ < o.accumulation_steps) return result;
    state.pending_micro_batches_ = 0;
    bool finite = true;
    if (scaled) {
      std::vector<at::Tensor> grads;
      for (const at::Tensor& p : model.parameters()) {
        if (p.grad().defined()) grads.push_back(p.grad());
      }
      finite = state.scaler_.UnscaleAndUpdate(grads);
    }
    if (finite) state.optimizer_.Step(o.lr);
    result.applied = finite;
    return result;
  }

  // Before a data-parallel step: rank 0's parameters and buffers reach every rank once (and its buffers before every
  // step without global BatchNorm, whose running statistics would otherwise drift apart); the store learns how far
  // this rank got, for failure reports.
  static void PrepareDataParallel(TrainState& state, SimCLRModelImpl& model) {
    ProcessGroup& group = *state.data_parallel_.group;
    group.MarkProgress(state.calls_++);
    std::vector<at::Tensor> buffers = model.buffers();
    if (!state.broadcast_done_) {
      std::vector<at::Tensor> everything = model.parameters();
      everything.insert(everything.end(), buffers.begin(), buffers.end());
      BroadcastFromRank0(group, everything);
      state.broadcast_done_ = true;
    } else if (!state.data_parallel_.global_batch_norm && !buffers.empty()) {
      BroadcastFromRank0(group, buffers);
    }
  }
};

TrainStepResult TrainStep(TrainState& state, const std::vector<at::Tensor>& view_groups, const TrainStepOptions& options) {
  return TrainStepRunner::Run(state, view_groups, options);
}

TrainStepValues ReadTrainStepValues(const HostCopy& values) {
  const at::Tensor& host = values.Wait();
  TORCH_CHECK(host.defined() && host.numel() == 3 && host.scalar_type() == at::kDouble, "a training step's values are 3 doubles");
  const double* v = host.data_ptr<double>();
  return {v[0], v[1], v[2] > 0};
}

}  // namespace simclr
