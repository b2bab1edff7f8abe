#include "core/linear_probe.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>

#include "core/finite.h"

namespace simclr {

namespace {

// Adam's moment estimates for one parameter.
struct AdamState {
  at::Tensor first;
  at::Tensor second;
  explicit AdamState(const at::Tensor& like) : first(at::zeros_like(like)), second(at::zeros_like(like)) {}

  void Step(at::Tensor& parameter, const at::Tensor& gradient, double learning_rate, int64_t step) {
    constexpr double kBeta1 = 0.9, kBeta2 = 0.999, kEps = 1e-8;
    first.mul_(kBeta1).add_(gradient, 1 - kBeta1);
    second.mul_(kBeta2).addcmul_(gradient, gradient, 1 - kBeta2);
    const double correction1 = 1 - std::pow(kBeta1, double(step));
    const double correction2 = 1 - std::pow(kBeta2, double(step));
    at::Tensor denominator = (second / correction2).sqrt_().add_(kEps);
    parameter.addcdiv_(first, denominator, -learning_rate / correction1);
  }
};

double Accuracy(const at::Tensor& predictions, const at::Tensor& labels) {
  if (labels.numel() == 0) return 0.0;
  return predictions.eq(labels).to(at::kDouble).mean().item<double>();
}

// Fitted probes, one per weight decay, with the standardisation folded in so that they apply to raw features:
// logits of probe k = x weight[k]^T + bias[k].
struct FittedProbes {
  at::Tensor weight;  // decays x classes x D
  at::Tensor bias;    // decays x classes
};

// Fits one probe per weight decay in a single pass: the probes share the shuffle (the same seed) and the batches, and
// their trajectories are independent, so stacking their classes turns each step's small products into one larger one
// (and one Adam update) instead of one per decay. The candidate search costs about two fits instead of eight.
FittedProbes FitProbes(const at::Tensor& train_x, const at::Tensor& train_y, const LinearProbeOptions& options,
                       const std::vector<double>& weight_decays) {
  const int64_t rows = train_x.size(0);
  const int64_t dims = train_x.size(1);
  const int64_t classes = options.num_classes;
  const int64_t probes = int64_t(weight_decays.size());
  // Standardising makes one learning rate suit pixels and embeddings alike. A constant feature (a blank border pixel)
  // keeps scale 1 rather than being divided by zero, as sklearn's StandardScaler does.
  const at::Tensor mean = train_x.mean(0);
  at::Tensor scale = train_x.std(0, /*unbiased=*/false);
  scale = at::where(scale > 1e-8, scale, at::ones_like(scale));
  const at::Tensor standard_x = (train_x - mean) / scale;

  // Row p * classes + c of the stacked weight is class c of probe p.
  at::Tensor weight = at::zeros({probes * classes, dims}, train_x.options());
  at::Tensor bias = at::zeros({probes * classes}, train_x.options());
  const bool any_decay = std::any_of(weight_decays.begin(), weight_decays.end(), [](double d) { return d > 0; });
  const at::Tensor row_decay = at::tensor(weight_decays, at::TensorOptions().dtype(at::kDouble))
                                   .to(train_x.scalar_type())
                                   .repeat_interleave(classes)
                                   .unsqueeze(1);
  AdamState weight_state(weight), bias_state(bias);

  at::Generator generator = at::detail::createCPUGenerator(options.seed);
  const int64_t steps_per_epoch = (rows + options.batch_size - 1) / options.batch_size;
  const int64_t total_steps = std::max<int64_t>(1, options.epochs * steps_per_epoch);
  int64_t step = 0;
  for (int64_t epoch = 0; epoch < options.epochs; ++epoch) {
    const at::Tensor order = at::randperm(rows, generator, at::TensorOptions().dtype(at::kLong)).to(train_x.device());
    for (int64_t start = 0; start < rows; start += options.batch_size) {
      const int64_t count = std::min(options.batch_size, rows - start);
      const at::Tensor index = order.narrow(0, start, count);
      const at::Tensor x = standard_x.index_select(0, index);
      const at::Tensor y = train_y.index_select(0, index);
      // Gradient of each probe's mean cross-entropy with respect to its logits: softmax minus one-hot, over the batch
      // size.
      at::Tensor logits_grad = at::softmax(at::addmm(bias, x, weight.t()).view({count, probes, classes}), 2)
                                   .sub_(at::one_hot(y, classes).to(train_x.scalar_type()).unsqueeze(1))
                                   .div_(double(count))
                                   .view({count, probes * classes});
      at::Tensor weight_grad = logits_grad.t().mm(x);
      if (any_decay) weight_grad.addcmul_(weight, row_decay);
      const at::Tensor bias_grad = logits_grad.sum(0);
      ++step;
      const double learning_rate = options.learning_rate * 0.5 * (1 + std::cos(M_PI * double(step - 1) / double(total_steps)));
      weight_state.Step(weight, weight_grad, learning_rate, step);
      bias_state.Step(bias, bias_grad, learning_rate, step);
    }
  }
  const at::Tensor raw_weight = weight / scale;
  const at::Tensor raw_bias = bias - (weight * (mean / scale)).sum(1);
  return {raw_weight.view({probes, classes, dims}), raw_bias.view({probes, classes})};
}

at::Tensor Logits(const at::Tensor& weight, const at::Tensor& bias, const at::Tensor& x) {
  return at::addmm(bias, x, weight.t());
}

}  // namespace

LinearProbeResult TrainLinearProbe(const at::Tensor& train_features, const at::Tensor& train_labels,
                                   const at::Tensor& test_features, const at::Tensor& test_labels,
                                   const LinearProbeOptions& options) {
  TORCH_CHECK(train_features.dim() == 2 && test_features.dim() == 2, "Expected 2-D (rows x dims) probe features but received ", train_features.dim(),
              "-D train and ", test_features.dim(), "-D test features");
  TORCH_CHECK(train_features.size(1) == test_features.size(1), "probe train features have ", train_features.size(1),
              " dims but test features have ", test_features.size(1));
  TORCH_CHECK(train_features.size(0) > 0, "the probe needs at least one training row");
  TORCH_CHECK(train_labels.numel() == train_features.size(0) && test_labels.numel() == test_features.size(0),
              "the probe needs one label per feature row");
  TORCH_CHECK(options.num_classes >= 1 && options.epochs >= 0 && options.batch_size >= 1 && options.learning_rate >= 0 &&
                  !options.weight_decays.empty() &&
                  std::all_of(options.weight_decays.begin(), options.weight_decays.end(), [](double d) { return d >= 0; }),
              "probe options out of range");
  CheckFiniteRows(train_features, "probe train features");
  CheckFiniteRows(test_features, "probe test features");

  const at::ScalarType dtype = train_features.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const at::Tensor train_x = train_features.to(dtype);
  const at::Tensor test_x = test_features.to(dtype);
  const at::Tensor train_y = train_labels.to(at::kLong).reshape({-1});
  const at::Tensor test_y = test_labels.to(at::kLong).reshape({-1});
  const int64_t rows = train_x.size(0);

  LinearProbeResult result;
  result.weight_decay = options.weight_decays.front();
  if (options.weight_decays.size() > 1) {
    const int64_t held_out = std::llround(double(rows) * options.validation_fraction);
    TORCH_CHECK_VALUE(options.validation_fraction > 0 && options.validation_fraction < 1 && held_out >= 1 && held_out < rows,
                "choosing the probe's weight decay holds out ", options.validation_fraction, " of the ", rows,
                " training rows, which leaves no rows to fit or none to validate on: pass more rows, another "
                "validationFraction, or a single weightDecay");
    // The held-out rows come from their own stream, so the fits' shuffles stay those of the seed.
    at::Generator split_generator = at::detail::createCPUGenerator(options.seed ^ 0x9E3779B97F4A7C15ULL);
    const at::Tensor order = at::randperm(rows, split_generator, at::TensorOptions().dtype(at::kLong)).to(train_x.device());
    const at::Tensor validation_rows = order.narrow(0, 0, held_out);
    const at::Tensor fit_rows = order.narrow(0, held_out, rows - held_out);
    const at::Tensor fit_x = train_x.index_select(0, fit_rows);
    const at::Tensor fit_y = train_y.index_select(0, fit_rows);
    const at::Tensor validation_x = train_x.index_select(0, validation_rows);
    const at::Tensor validation_y = train_y.index_select(0, validation_rows);
    const FittedProbes candidates = FitProbes(fit_x, fit_y, options, options.weight_decays);
    const int64_t classes = options.num_classes;
    // Held-out predictions of every candidate at once: validation rows x candidates.
    const at::Tensor predictions =
        Logits(candidates.weight.view({-1, train_x.size(1)}), candidates.bias.view({-1}), validation_x)
            .view({held_out, -1, classes})
            .argmax(2);
    double best = -1;
    for (size_t candidate = 0; candidate < options.weight_decays.size(); ++candidate) {
      const double weight_decay = options.weight_decays[candidate];
      const double accuracy = Accuracy(predictions.select(1, int64_t(candidate)), validation_y);
      result.validation_accuracies.push_back(accuracy);
      // Of equally accurate penalties, the larger: the simpler probe.
      if (accuracy > best || (accuracy == best && weight_decay > result.weight_decay)) {
        best = accuracy;
        result.weight_decay = weight_decay;
      }
    }
  }

  const FittedProbes final_fit = FitProbes(train_x, train_y, options, {result.weight_decay});
  result.weight = final_fit.weight.select(0, 0);
  result.bias = final_fit.bias.select(0, 0);
  const at::Tensor train_logits = Logits(result.weight, result.bias, train_x);
  result.train_loss = at::nll_loss(at::log_softmax(train_logits, 1), train_y).item<double>();
  result.train_accuracy = Accuracy(train_logits.argmax(1), train_y);
  result.test_predictions = Logits(result.weight, result.bias, test_x).argmax(1);
  result.test_accuracy = Accuracy(result.test_predictions, test_y);
  return result;
}

}  // namespace simclr
