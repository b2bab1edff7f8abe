// N-API glue for evaluation: the kNN monitor and the linear probe. Arguments are checked here, on the JS thread, so the
// compute code (knn.cc, linear_probe.cc) runs on the libuv pool with inputs it can trust.
#include "bind/args.h"
#include "bind/module.h"
#include "bind/tensor.h"
#include "bind/worker.h"
#include "core/knn.h"
#include "core/linear_probe.h"

namespace simclr {

namespace {

constexpr int64_t kMaxClasses = int64_t(1) << 20;

at::Tensor FeaturesArg(const Napi::Value& value, const std::string& name) {
  at::Tensor features = TensorWrap::FromJs(value, name);
  if (!at::isFloatingType(features.scalar_type())) {
    ThrowType("Expected a floating point Tensor for " + name + " but received dtype " + DtypeName(features.scalar_type()));
  }
  if (features.dim() != 2) ThrowRange("Expected a 2-D Tensor (rows x dims) for " + name + " but received " +
                                      std::to_string(features.dim()) + " dimensions");
  return features;
}

at::Tensor LabelsArg(const Napi::Value& value, const std::string& name, const at::Tensor& features) {
  at::Tensor labels = TensorWrap::FromJs(value, name);
  if (!at::isIntegralType(labels.scalar_type(), /*includeBool=*/false)) {
    ThrowType("Expected an integer Tensor for " + name + " but received dtype " + DtypeName(labels.scalar_type()));
  }
  if (labels.dim() != 1 || labels.size(0) != features.size(0)) {
    ThrowRange("Expected a 1-D Tensor with one label per feature row (" + std::to_string(features.size(0)) + ") for " +
               name + " but received shape " + c10::str(labels.sizes()));
  }
  if (labels.device() != features.device()) ThrowRange(name + " is on " + DeviceName(labels.device()) +
                                                        " but its features are on " + DeviceName(features.device()));
  return labels.to(at::kLong);
}

void SameDevice(const at::Tensor& a, const std::string& a_name, const at::Tensor& b, const std::string& b_name) {
  if (a.device() != b.device()) {
    ThrowRange(a_name + " is on " + DeviceName(a.device()) + " but " + b_name + " is on " + DeviceName(b.device()));
  }
}

void SameDims(const at::Tensor& a, const std::string& a_name, const at::Tensor& b, const std::string& b_name) {
  if (a.size(1) != b.size(1)) {
    ThrowRange(a_name + " has " + std::to_string(a.size(1)) + " dims but " + b_name + " has " + std::to_string(b.size(1)));
  }
}

// numClasses from the options, or one more than the largest label; every label must lie in [0, numClasses).
int64_t NumClassesArg(const Napi::Value& options, std::initializer_list<std::pair<const at::Tensor*, const char*>> labels) {
  Napi::Value given = Option(options, "numClasses");  // absent: one more than the largest label
  int64_t largest = -1;
  for (const auto& [tensor, name] : labels) {
    if (tensor->numel() == 0) continue;
    if (tensor->min().item<int64_t>() < 0) ThrowRange(std::string("Expected labels >= 0 in ") + name);
    largest = std::max(largest, tensor->max().item<int64_t>());
  }
  if (given.IsUndefined()) {
    if (largest + 1 > kMaxClasses) ThrowRange("Expected labels below " + std::to_string(kMaxClasses));
    return std::max<int64_t>(largest + 1, 1);
  }
  int64_t classes = ArgInt(given, "options.numClasses", 1, kMaxClasses);
  if (largest >= classes) {
    ThrowRange("Expected labels below numClasses (" + std::to_string(classes) + ") but received " + std::to_string(largest));
  }
  return classes;
}

// knnPredict(bankFeatures, bankLabels, queryFeatures, {k, temperature, chunkSize, numClasses?}) -> Promise<Tensor>
Napi::Value KnnPredictJs(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    at::Tensor bank = FeaturesArg(info[0], "bankFeatures");
    at::Tensor bank_labels = LabelsArg(info[1], "bankLabels", bank);
    at::Tensor query = FeaturesArg(info[2], "queryFeatures");
    SameDevice(bank, "bankFeatures", query, "queryFeatures");
    SameDims(bank, "bankFeatures", query, "queryFeatures");
    if (bank.size(0) == 0) ThrowRange("Expected at least one row for bankFeatures but received 0");
    KnnOptions options;
    options.k = IntOption(info[3], "k", 1, int64_t(1) << 31);
    options.temperature = NumberOption(info[3], "temperature", Above(0));
    options.chunk_size = IntOption(info[3], "chunkSize", 1, int64_t(1) << 24);
    options.num_classes = NumClassesArg(info[3], {{&bank_labels, "bankLabels"}});
    return RunAsync<at::Tensor>(
        info.Env(), "simclr.knnPredict", [=] { return KnnPredict(bank, bank_labels, query, options); },
        [](Napi::Env env, at::Tensor& predictions) -> Napi::Value { return TensorWrap::Wrap(env, predictions); },
        RunsOn::kComputeThread);
  });
}

// options.weightDecays: a non-empty array of finite penalties >= 0.
std::vector<double> WeightDecaysOption(const Napi::Value& options) {
  const Napi::Value value = Option(options, "weightDecays");
  if (!value.IsArray() || value.As<Napi::Array>().Length() == 0) {
    ThrowType("Expected a non-empty array of numbers for options.weightDecays but received " + TypeName(value));
  }
  const auto array = value.As<Napi::Array>();
  std::vector<double> decays;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    const std::string name = "options.weightDecays[" + std::to_string(i) + "]";
    const double decay = ArgFiniteNumber(array.Get(i), name);
    if (decay < 0) ThrowRange("Expected a finite number >= 0 for " + name + " but received " + std::to_string(decay));
    decays.push_back(decay);
  }
  return decays;
}

// trainLinearProbe(trainFeatures, trainLabels, testFeatures, testLabels,
//                  {epochs, batchSize, learningRate, weightDecays, validationFraction, seed, numClasses?})
//   -> Promise<{weight, bias, testPredictions, trainLoss, trainAccuracy, testAccuracy, weightDecay, validationAccuracies}>
Napi::Value TrainLinearProbeJs(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    at::Tensor train_x = FeaturesArg(info[0], "trainFeatures");
    at::Tensor train_y = LabelsArg(info[1], "trainLabels", train_x);
    at::Tensor test_x = FeaturesArg(info[2], "testFeatures");
    at::Tensor test_y = LabelsArg(info[3], "testLabels", test_x);
    SameDevice(train_x, "trainFeatures", test_x, "testFeatures");
    SameDims(train_x, "trainFeatures", test_x, "testFeatures");
    if (train_x.size(0) == 0) ThrowRange("Expected at least one row for trainFeatures but received 0");
    const Napi::Value& raw = info[4];
    LinearProbeOptions options;
    options.epochs = IntOption(raw, "epochs", 0, 1000000);
    options.batch_size = IntOption(raw, "batchSize", 1, int64_t(1) << 24);
    options.learning_rate = NumberOption(raw, "learningRate", Above(0));
    options.weight_decays = WeightDecaysOption(raw);
    options.validation_fraction = NumberOption(raw, "validationFraction", {0, 1, true});
    options.seed = uint64_t(IntOption(raw, "seed", 0, (int64_t(1) << 53) - 1));
    options.num_classes = NumClassesArg(raw, {{&train_y, "trainLabels"}, {&test_y, "testLabels"}});
    return RunAsync<LinearProbeResult>(
        info.Env(), "simclr.trainLinearProbe", [=] { return TrainLinearProbe(train_x, train_y, test_x, test_y, options); },
        [](Napi::Env env, LinearProbeResult& result) -> Napi::Value {
          Napi::Object out = Napi::Object::New(env);
          out.Set("weight", TensorWrap::Wrap(env, result.weight));
          out.Set("bias", TensorWrap::Wrap(env, result.bias));
          out.Set("testPredictions", TensorWrap::Wrap(env, result.test_predictions));
          out.Set("trainLoss", result.train_loss);
          out.Set("trainAccuracy", result.train_accuracy);
          out.Set("testAccuracy", result.test_accuracy);
          out.Set("weightDecay", result.weight_decay);
          Napi::Array validation = Napi::Array::New(env, result.validation_accuracies.size());
          for (size_t i = 0; i < result.validation_accuracies.size(); ++i) validation.Set(uint32_t(i), result.validation_accuracies[i]);
          out.Set("validationAccuracies", validation);
          return out;
        },
        RunsOn::kComputeThread);
  });
}

void InitEvalModule(Napi::Env env, Napi::Object exports) {
  exports.Set("knnPredict", Napi::Function::New<KnnPredictJs>(env, "knnPredict"));
  exports.Set("trainLinearProbe", Napi::Function::New<TrainLinearProbeJs>(env, "trainLinearProbe"));
}

}  // namespace

SIMCLR_MODULE(eval, InitEvalModule);

}  // namespace simclr
