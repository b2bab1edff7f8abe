// N-API glue for core/train_step.h: createTrainer(model, options) -> NativeTrainer, whose step() runs one whole SimCLR
// step off the JS thread. The options arrive complete and validated from TypeScript (src/ops/train-step.ts); they are
// checked again here only so that bad input is an error, never a crash.
#include <atomic>
#include <memory>

#include "bind/args.h"
#include "bind/models.h"
#include "bind/module.h"
#include "bind/tensor.h"
#include "bind/worker.h"
#include "core/nt_xent.h"
#include "core/train_step.h"

namespace simclr {
namespace {

OptimizerKind OptimizerKindOption(const Napi::Value& options) {
  const std::string name = StringOption(options, "optimizer");
  if (name == "sgd") return OptimizerKind::kSGD;
  if (name == "adamw") return OptimizerKind::kAdamW;
  if (name == "lars") return OptimizerKind::kLARS;
  ThrowRange("Expected one of 'sgd', 'adamw', 'lars' for options.optimizer but received '" + name + "'");
}

TrainStepOptions TrainStepOptionsFromJs(const Napi::Value& options) {
  if (!options.IsObject() || options.IsArray()) ThrowType("Expected an options object for options but received " + TypeName(options));
  TrainStepOptions o;
  o.optimizer.kind = OptimizerKindOption(options);
  o.optimizer.momentum = NumberOption(options, "momentum", {0, 0.999999});
  o.optimizer.nesterov = BoolOption(options, "nesterov");
  o.optimizer.weight_decay = NumberOption(options, "weightDecay", {0});
  o.optimizer.beta1 = NumberOption(options, "beta1", {0, 0.999999});
  o.optimizer.beta2 = NumberOption(options, "beta2", {0, 0.999999});
  o.optimizer.eps = NumberOption(options, "eps", Above(0));
  o.optimizer.trust_coefficient = NumberOption(options, "trustCoefficient", Above(0));
  o.temperature = NumberOption(options, "temperature", Above(kNtXentMinTemperature));
  o.views = IntOption(options, "views", 2, 64);
  return o;
}

// Clears a flag when a step ends, however it ends.
struct BusyFlag {
  std::shared_ptr<std::atomic<bool>> flag;
  ~BusyFlag() { flag->store(false); }
};

class TrainerWrap : public Napi::ObjectWrap<TrainerWrap> {
 public:
  static Napi::FunctionReference* constructor;

  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function cls = DefineClass(env, "NativeTrainer", {
      InstanceMethod<&TrainerWrap::Step>("step"),
      InstanceMethod<&TrainerWrap::OptimizerState>("optimizerState"),
      InstanceMethod<&TrainerWrap::LoadOptimizerState>("loadOptimizerState"),
    });
    constructor = new Napi::FunctionReference(Napi::Persistent(cls));
  }

  explicit TrainerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TrainerWrap>(info) {
    Guarded(info.Env(), [&] {
      step_ = std::make_shared<TrainStep>(ModelFromJs(info[0], "model"), TrainStepOptionsFromJs(info[1]));
      return 0;
    });
  }

 private:
  // step(views: Tensor [V*B x 3 x H x W], lr: number) -> Promise<{ loss }>
  Napi::Value Step(const Napi::CallbackInfo& info) {
    return SIMCLR_GUARD(info, {
      at::Tensor views = TensorWrap::FromJs(info[0], "views");
      const double lr = ArgFiniteNumber(info[1], "lr");
      if (lr < 0) ThrowRange("Expected a learning rate >= 0 for lr");
      step_->CheckViews(views);
      if (busy_->exchange(true)) ThrowError("a training step is already running on this trainer");
      auto busy = std::make_shared<BusyFlag>(BusyFlag{busy_});
      std::shared_ptr<TrainStep> step = step_;
      return RunAsync<double>(
          info.Env(), "simclr.trainStep",
          [step, views, lr, busy] { return step->Run(views, lr); },
          [](Napi::Env env, double& loss) -> Napi::Value {
            Napi::Object out = Napi::Object::New(env);
            out.Set("loss", loss);
            return out;
          },
          AfterJob::kTrimMemory);
    });
  }

  // optimizerState() -> { names: string[], tensors: Tensor[], steps: number }
  Napi::Value OptimizerState(const Napi::CallbackInfo& info) {
    return SIMCLR_GUARD(info, {
      Napi::Env env = info.Env();
      int64_t steps = 0;
      auto state = step_->OptimizerState(&steps);
      Napi::Array names = Napi::Array::New(env, state.size());
      Napi::Array tensors = Napi::Array::New(env, state.size());
      uint32_t i = 0;
      for (const auto& [name, tensor] : state) {
        names.Set(i, name);
        tensors.Set(i, TensorWrap::Wrap(env, tensor));
        ++i;
      }
      Napi::Object out = Napi::Object::New(env);
      out.Set("names", names);
      out.Set("tensors", tensors);
      out.Set("steps", double(steps));
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
      step_->LoadOptimizerState(state, ArgInt(info[2], "steps", 0, int64_t(1) << 50));
      return info.Env().Undefined();
    });
  }

  std::shared_ptr<TrainStep> step_;
  std::shared_ptr<std::atomic<bool>> busy_ = std::make_shared<std::atomic<bool>>(false);
};

Napi::FunctionReference* TrainerWrap::constructor = nullptr;

// createTrainer(model, options) -> NativeTrainer
Napi::Value CreateTrainer(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, { return TrainerWrap::constructor->New({info[0], info[1]}); });
}

void InitTrainStepModule(Napi::Env env, Napi::Object exports) {
  TrainerWrap::Init(env, exports);
  exports.Set("createTrainer", Napi::Function::New<CreateTrainer>(env, "createTrainer"));
}

}  // namespace

SIMCLR_MODULE(train_step, InitTrainStepModule);

}  // namespace simclr
