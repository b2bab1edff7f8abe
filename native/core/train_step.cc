#include "core/train_step.h"

#include <cmath>
#include <utility>

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

TrainState::TrainState(LockedModelPtr model, const OptimizerOptions& options)
    : model_(std::move(model)), optimizer_(MakeOptimizer(model_, options)) {}

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

void CheckTrainStep(const std::vector<at::Tensor>& view_groups, const TrainStepOptions& options) {
  TORCH_CHECK_VALUE(!view_groups.empty(), "a training step needs at least one tensor of views");
  TORCH_CHECK_VALUE(options.views >= 2, "views must be >= 2, got ", options.views);
  TORCH_CHECK_VALUE(std::isfinite(options.lr) && options.lr >= 0, "Expected a learning rate >= 0, got ", options.lr);
  TORCH_CHECK_VALUE(std::isfinite(options.temperature) && options.temperature > kNtXentMinTemperature,
                    "temperature must be a finite number > ", kNtXentMinTemperature, ", got ", options.temperature);
  TORCH_CHECK_VALUE(options.accumulation_steps >= 1, "accumulationSteps must be >= 1, got ", options.accumulation_steps);
  int64_t rows = 0;
  for (const at::Tensor& views : view_groups) {
    TORCH_CHECK_VALUE(views.defined() && views.dim() == 4 && views.size(1) == 3,
                      "views must be V*B x 3 x H x W tensors, got shape ", views.sizes());
    TORCH_CHECK_TYPE(views.is_floating_point(), "views must be float tensors, got ", views.scalar_type());
    TORCH_CHECK_VALUE(views.device() == view_groups.front().device(), "all view tensors must be on one device");
    rows += views.size(0);
  }
  TORCH_CHECK_VALUE(rows % options.views == 0 && rows / options.views >= 2, "the views hold ", rows, " rows: expected ",
                    options.views, " views of at least 2 images");
  const int64_t images = rows / options.views;
  for (const at::Tensor& views : view_groups) {
    TORCH_CHECK_VALUE(views.size(0) % images == 0, "a group of views has ", views.size(0), " rows, not a multiple of ",
                      images, " images");
  }
}

// Runs under the model's lock: the step reads and writes the model and the state's optimiser.
struct TrainStepRunner {
  static TrainStepResult Run(TrainState& state, const std::vector<at::Tensor>& view_groups, const TrainStepOptions& o) {
    CheckTrainStep(view_groups, o);
    std::lock_guard<std::mutex> hold(state.model_->mutex);
    SimCLRModelImpl& model = *state.model_->model;
    const at::Device device = model.encoder->conv1->weight.device();
    CheckPrecision(o.precision, device);
    const at::ScalarType input_type = view_groups.front().scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
    model.train();
    if (o.memory_format == MemoryFormat::kChannelsLast) ToMemoryFormat(model.parameters(), o.memory_format);
    if (state.pending_micro_batches_ == 0) state.optimizer_.ZeroGrad();

    std::vector<at::Tensor> embeddings;
    {
      AutocastScope autocast(device, o.precision);
      for (const at::Tensor& views : view_groups) {
        at::Tensor input = views.to(device, input_type).contiguous(AtenFormat(o.memory_format));
        embeddings.push_back(model.forward(input).second);
      }
    }
    // NT-Xent in float32 (or float64 for float64 views), outside the autocast region.
    at::Tensor z = embeddings.size() == 1 ? embeddings.front() : at::cat(embeddings, 0);
    at::Tensor loss = NtXentLoss(z.to(input_type), o.temperature, o.views);
    at::Tensor objective = o.accumulation_steps > 1 ? loss / double(o.accumulation_steps) : loss;
    const bool scaled = o.precision == Precision::kFloat16;
    (scaled ? objective * state.scaler_.scale() : objective).backward();

    TrainStepResult result;
    result.loss = loss.item<double>();
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
};

TrainStepResult TrainStep(TrainState& state, const std::vector<at::Tensor>& view_groups, const TrainStepOptions& options) {
  return TrainStepRunner::Run(state, view_groups, options);
}

}  // namespace simclr
