// NativeTrainer: one SimCLR training step as one native call off the JS thread: forward of both views, fused
// NT-Xent, backward, optimiser step. TypeScript decides the learning rate, when to log and when to checkpoint.
#include <torch/torch.h>

#include <atomic>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "model_binding.h"
#include "nt_xent.h"
#include "optimizer.h"
#include "simclr_model.h"
#include "tensor.h"

namespace simclr {

namespace {

OptimizerKind ParseKind(const std::string& name) {
  if (name == "sgd") return OptimizerKind::kSGD;
  if (name == "adamw") return OptimizerKind::kAdamW;
  if (name == "lars") return OptimizerKind::kLARS;
  ThrowRange("Expected one of 'sgd', 'adamw', 'lars' for optimizer but received '" + name + "'");
}

double NumberOption(const Napi::Value& options, const char* key, double fallback) {
  Napi::Value value = Option(options, key);
  return value.IsUndefined() ? fallback : ArgFiniteNumber(value, key);
}

// Clears a flag when a step ends, however it ends.
struct BusyFlag {
  std::shared_ptr<std::atomic<bool>> flag;
  ~BusyFlag() { flag->store(false); }
};

}  // namespace

class TrainerWrap : public Napi::ObjectWrap<TrainerWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function cls = DefineClass(env, "NativeTrainer", {
      InstanceMethod<&TrainerWrap::Step>("step"),
      InstanceMethod<&TrainerWrap::OptimizerState>("optimizerState"),
      InstanceMethod<&TrainerWrap::LoadOptimizerState>("loadOptimizerState"),
    });
    constructor_ = new Napi::FunctionReference(Napi::Persistent(cls));
    exports.Set("createTrainer", Napi::Function::New<CreateTrainer>(env, "createTrainer"));
  }

  // createTrainer(model, options) -> NativeTrainer
  static Napi::Value CreateTrainer(const Napi::CallbackInfo& info) {
    return SIMCLR_GUARD(info, { return constructor_->New({info[0], info[1]}); });
  }

  explicit TrainerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TrainerWrap>(info) {
    Guarded(info.Env(), [&] {
      model_ = ModelFromJs(info[0], "model");
      TORCH_CHECK_VALUE(model_->head, "training needs a model with a projection head (SimCLRModel)");
      const Napi::Value options = info[1];
      OptimizerOptions o;
      Napi::Value kind = Option(options, "optimizer");
      if (!kind.IsUndefined()) o.kind = ParseKind(ArgString(kind, "optimizer"));
      o.momentum = NumberOption(options, "momentum", 0.9);
      Napi::Value nesterov = Option(options, "nesterov");
      if (!nesterov.IsUndefined()) o.nesterov = ArgBool(nesterov, "nesterov");
      o.weight_decay = NumberOption(options, "weightDecay", 0.0);
      o.beta1 = NumberOption(options, "beta1", 0.9);
      o.beta2 = NumberOption(options, "beta2", 0.999);
      o.eps = NumberOption(options, "eps", 1e-8);
      o.trust_coefficient = NumberOption(options, "trustCoefficient", 0.001);
      temperature_ = NumberOption(options, "temperature", 0.5);
      TORCH_CHECK_VALUE(temperature_ > 1e-8, "temperature must be > 1e-8, got ", temperature_);
      Napi::Value views = Option(options, "views");
      views_ = views.IsUndefined() ? 2 : ArgInt(views, "views", 2, 64);

      std::vector<NamedParameter> parameters;
      for (const auto& item : model_->named_parameters(/*recurse=*/true)) {
        if (!item.value().requires_grad()) continue;
        // Biases and BatchNorm weights are the 1-D parameters: SimCLR excludes them from decay and LARS adaptation.
        parameters.push_back({item.key(), item.value(), item.value().dim() <= 1});
      }
      optimizer_ = std::make_shared<Optimizer>(std::move(parameters), o);
      return 0;
    });
  }

 private:
  struct StepResult {
    double loss;
  };

  // step(views: Tensor [V*B x 3 x H x W], lr: number) -> Promise<{ loss }>
  Napi::Value Step(const Napi::CallbackInfo& info) {
    return SIMCLR_GUARD(info, {
      at::Tensor views = TensorWrap::FromJs(info[0], "views");
      const double lr = ArgFiniteNumber(info[1], "lr");
      if (lr < 0) ThrowRange("Expected a learning rate >= 0 for lr");
      TORCH_CHECK_VALUE(views.dim() == 4 && views.size(1) == 3, "views must be a V*B x 3 x H x W tensor, got shape ",
                        views.sizes());
      TORCH_CHECK_VALUE(views.is_floating_point(), "views must be a float tensor, got ", views.scalar_type());
      TORCH_CHECK_VALUE(views.size(0) % views_ == 0 && views.size(0) / views_ >= 2, "views has ", views.size(0),
                        " rows: expected ", views_, " views of at least 2 images");
      if (busy_->exchange(true)) throw JsError(ErrorKind::kError, "a training step is already running on this trainer");
      auto busy = std::make_shared<BusyFlag>(BusyFlag{busy_});
      SimCLRModel model = model_;
      std::shared_ptr<Optimizer> optimizer = optimizer_;
      const double temperature = temperature_;
      const int64_t view_count = views_;
      return RunAsync<StepResult>(info.Env(), "simclr.trainStep",
        [=]() mutable {
          auto keep_busy = busy;  // released when this lambda (and the worker) is done
          model->train();
          optimizer->ZeroGrad();
          at::Tensor input = views.to(model->parameters().front().device(), views.scalar_type() == at::kDouble ? at::kDouble : at::kFloat);
          auto [h, z] = model->forward(input);
          at::Tensor loss = nt_xent_loss(z, temperature, view_count);
          loss.backward();
          optimizer->Step(lr);
          StepResult result{loss.item<double>()};
#ifdef __GLIBC__
          // Each libuv thread's malloc arena otherwise keeps the step's freed activations, and RSS creeps up.
          malloc_trim(0);
#endif
          return result;
        },
        [](Napi::Env env, StepResult& r) -> Napi::Value {
          Napi::Object out = Napi::Object::New(env);
          out.Set("loss", r.loss);
          return out;
        });
    });
  }

  // optimizerState() -> { names: string[], tensors: Tensor[], steps: number }
  Napi::Value OptimizerState(const Napi::CallbackInfo& info) {
    return SIMCLR_GUARD(info, {
      Napi::Env env = info.Env();
      auto state = optimizer_->State();
      Napi::Array names = Napi::Array::New(env, state.size());
      Napi::Array tensors = Napi::Array::New(env, state.size());
      uint32_t i = 0;
      for (const auto& [name, tensor] : state) {
        names.Set(i, name);
        tensors.Set(i, TensorWrap::Wrap(env, tensor.detach().clone()));
        ++i;
      }
      Napi::Object out = Napi::Object::New(env);
      out.Set("names", names);
      out.Set("tensors", tensors);
      out.Set("steps", double(optimizer_->steps()));
      return out;
    });
  }

  // loadOptimizerState(names: string[], tensors: Tensor[], steps: number)
  Napi::Value LoadOptimizerState(const Napi::CallbackInfo& info) {
    return SIMCLR_GUARD(info, {
      if (!info[0].IsArray() || !info[1].IsArray()) ThrowType("Expected arrays of names and tensors");
      auto names = info[0].As<Napi::Array>();
      auto tensors = info[1].As<Napi::Array>();
      if (names.Length() != tensors.Length()) ThrowRange("names and tensors must have the same length");
      std::map<std::string, at::Tensor> state;
      for (uint32_t i = 0; i < names.Length(); ++i) {
        state[ArgString(names.Get(i), "names[" + std::to_string(i) + "]")] =
            TensorWrap::FromJs(tensors.Get(i), "tensors[" + std::to_string(i) + "]");
      }
      optimizer_->LoadState(state, ArgInt(info[2], "steps", 0, int64_t(1) << 50));
      return info.Env().Undefined();
    });
  }

  static Napi::FunctionReference* constructor_;
  SimCLRModel model_{nullptr};
  std::shared_ptr<Optimizer> optimizer_;
  double temperature_ = 0.5;
  int64_t views_ = 2;
  std::shared_ptr<std::atomic<bool>> busy_ = std::make_shared<std::atomic<bool>>(false);
};

Napi::FunctionReference* TrainerWrap::constructor_ = nullptr;

static void InitTrainerModule(Napi::Env env, Napi::Object exports) { TrainerWrap::Init(env, exports); }
SIMCLR_MODULE(trainer, InitTrainerModule);

}  // namespace simclr
