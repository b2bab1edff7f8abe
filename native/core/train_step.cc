#include "core/train_step.h"

#include <cmath>

#include <utility>
#include <vector>

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

static Optimizer MakeOptimizer(const LockedModelPtr& model, const TrainStepOptions& options) {
  TORCH_CHECK_VALUE(model && model->model->head, "training needs a model with a projection head (SimCLRModel)");
  TORCH_CHECK_VALUE(std::isfinite(options.temperature) && options.temperature > kNtXentMinTemperature,
                    "temperature must be a finite number > ", kNtXentMinTemperature, ", got ", options.temperature);
  TORCH_CHECK_VALUE(options.views >= 2, "views must be >= 2, got ", options.views);
  std::lock_guard<std::mutex> hold(model->mutex);
  return Optimizer(TrainableParameters(*model->model), options.optimizer);
}

TrainStep::TrainStep(LockedModelPtr model, const TrainStepOptions& options)
    : model_(std::move(model)), options_(options), optimizer_(MakeOptimizer(model_, options)) {}

void TrainStep::CheckViews(const at::Tensor& views) const {
  TORCH_CHECK_VALUE(views.dim() == 4 && views.size(1) == 3, "views must be a V*B x 3 x H x W tensor, got shape ",
                    views.sizes());
  TORCH_CHECK_TYPE(views.is_floating_point(), "views must be a float tensor, got ", views.scalar_type());
  TORCH_CHECK_VALUE(views.size(0) % options_.views == 0 && views.size(0) / options_.views >= 2, "views has ",
                    views.size(0), " rows: expected ", options_.views, " views of at least 2 images");
}

double TrainStep::Run(const at::Tensor& views, double lr) {
  CheckViews(views);
  TORCH_CHECK_VALUE(std::isfinite(lr) && lr >= 0, "Expected a learning rate >= 0, got ", lr);
  std::lock_guard<std::mutex> hold(model_->mutex);
  SimCLRModelImpl& model = *model_->model;
  model.train();
  optimizer_.ZeroGrad();
  const at::Device device = model.encoder->conv1->weight.device();
  at::Tensor input = views.to(device, views.scalar_type() == at::kDouble ? at::kDouble : at::kFloat);
  at::Tensor z = model.forward(input).second;
  at::Tensor loss = NtXentLoss(z, options_.temperature, options_.views);
  loss.backward();
  optimizer_.Step(lr);
  return loss.item<double>();
}

std::map<std::string, at::Tensor> TrainStep::OptimizerState(int64_t* steps) const {
  std::lock_guard<std::mutex> hold(model_->mutex);
  std::map<std::string, at::Tensor> state = optimizer_.State();
  for (auto& entry : state) entry.second = entry.second.detach().clone();
  *steps = optimizer_.steps();
  return state;
}

void TrainStep::LoadOptimizerState(const std::map<std::string, at::Tensor>& state, int64_t steps) {
  std::lock_guard<std::mutex> hold(model_->mutex);
  optimizer_.LoadState(state, steps);
}

}  // namespace simclr
