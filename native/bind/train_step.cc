// N-API glue for core/train_step.h:
//   createOptimizer(model, options, dataParallel?) -> NativeOptimizer { state(), loadState(names, tensors, steps) }
//     dataParallel: { group, globalBatchNorm, gatherBackward: 'sum' | 'own', bucketBytes }
//   trainStep(model, optimizer, views: Tensor | Tensor[], options)
//     -> Promise<{ values, images, applied }>, off the JS thread; it settles once the step is queued on its device (on
//     the CPU, once it ran), before its loss is known there.
//   readTrainStepValues(values) -> Promise<{ loss, localLoss, stop }>: waits (on libuv's pool, beside the next step)
//     for the step's scalars to reach the host.
//   optimizerNames, maxMomentum, maxAccumulationSteps: what TypeScript validates against (defined in core/).
// The options arrive complete and validated from TypeScript (src/ops/train-step.ts); they are checked again here only
// so that bad input is an error, never a crash: each option once, by the readers below (the one native check of the
// temperature's bound on a step's path), and the views by CheckTrainStep, before the step is queued. Nothing in
// core/train_step.cc or the NT-Xent kernel checks them again.
#include <atomic>
#include <memory>

#include "bind/args.h"
#include "bind/distributed.h"
#include "bind/models.h"
#include "bind/module.h"
#include "bind/tensor.h"
#include "bind/worker.h"
#include "core/nt_xent.h"
#include "core/train_step.h"

namespace simclr {
namespace {

OptimizerOptions OptimizerOptionsFromJs(const Napi::Value& options) {
  if (!options.IsObject() || options.IsArray()) ThrowType("Expected an options object for options but received " + TypeName(options));
  OptimizerOptions o;
  o.kind = static_cast<OptimizerKind>(OneOfOption(options, "optimizer", OptimizerNames()));
  o.momentum = NumberOption(options, "momentum", {0, kMaxMomentum});
  o.nesterov = BoolOption(options, "nesterov");
  o.weight_decay = NumberOption(options, "weightDecay", {0});
  o.beta1 = NumberOption(options, "beta1", {0, kMaxMomentum});
  o.beta2 = NumberOption(options, "beta2", {0, kMaxMomentum});
  o.eps = NumberOption(options, "eps", Above(0));
  o.trust_coefficient = NumberOption(options, "trustCoefficient", Above(0));
  return o;
}

TrainStepOptions TrainStepOptionsFromJs(const Napi::Value& options) {
  if (!options.IsObject() || options.IsArray()) ThrowType("Expected an options object for options but received " + TypeName(options));
  TrainStepOptions o;
  o.lr = NumberOption(options, "lr", {0});
  o.temperature = NumberOption(options, "temperature", Above(kNtXentMinTemperature));
  o.views = IntOption(options, "views", 2, 64);
  o.precision = PrecisionOption(options);
  o.memory_format = MemoryFormatOption(options);
  o.accumulation_steps = IntOption(options, "accumulationSteps", 1, kMaxAccumulationSteps);
  o.stop_requested = BoolOption(options, "stopRequested");
  return o;
}

DataParallelOptions DataParallelOptionsFromJs(const Napi::Value& options) {
  DataParallelOptions o;
  if (options.IsUndefined() || options.IsNull()) return o;
  if (!options.IsObject() || options.IsArray()) ThrowType("Expected an options object for dataParallel but received " + TypeName(options));
  o.group = ProcessGroupFromJs(Option(options, "group"), "dataParallel.group");
  o.global_batch_norm = BoolOption(options, "globalBatchNorm");
  const std::string gather = StringOption(options, "gatherBackward");
  if (gather == "sum") o.gather_backward = GatherBackward::kSumOverRanks;
  else if (gather == "own") o.gather_backward = GatherBackward::kOwnRankOnly;
  else ThrowRange("Expected 'sum' or 'own' for dataParallel.gatherBackward but received '" + gather + "'");
  o.bucket_bytes = IntOption(options, "bucketBytes", 1, int64_t(1) << 40);
  return o;
}

std::vector<at::Tensor> ViewGroupsFromJs(const Napi::Value& value) {
  if (!value.IsArray()) return {TensorWrap::FromJs(value, "views")};
  auto array = value.As<Napi::Array>();
  if (array.Length() == 0 || array.Length() > 16) ThrowRange("Expected 1 to 16 tensors for views but received " + std::to_string(array.Length()));
  std::vector<at::Tensor> groups;
  for (uint32_t i = 0; i < array.Length(); ++i) groups.push_back(TensorWrap::FromJs(array.Get(i), "views[" + std::to_string(i) + "]"));
  return groups;
}

// Marks the externals that carry a step's values, so that no other external passes for one.
constexpr napi_type_tag kTrainStepValuesTag = {0x73696d636c725456, 0x616c7565733a7631};

// Clears a flag when a step ends, however it ends.
struct BusyFlag {
  std::shared_ptr<std::atomic<bool>> flag;
  ~BusyFlag() { flag->store(false); }
};

class OptimizerWrap : public Napi::ObjectWrap<OptimizerWrap> {
 public:
  static Napi::FunctionReference* constructor;

  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function cls = DefineClass(env, "NativeOptimizer", {
      InstanceMethod<&OptimizerWrap::State>("state"),
      InstanceMethod<&OptimizerWrap::LoadState>("loadState"),
    });
    constructor = new Napi::FunctionReference(Napi::Persistent(cls));
  }

  static OptimizerWrap* FromJs(const Napi::Value& value) {
    if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(constructor->Value())) {
      ThrowType("Expected an optimizer (createOptimizer) for optimizer but received " + TypeName(value));
    }
    return Unwrap(value.As<Napi::Object>());
  }

  explicit OptimizerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<OptimizerWrap>(info) {
    Guarded(info.Env(), [&] {
      state_ = std::make_shared<TrainState>(ModelFromJs(info[0], "model"), OptimizerOptionsFromJs(info[1]),
                                            DataParallelOptionsFromJs(info[2]));
      return 0;
    });
  }

  std::shared_ptr<TrainState> state_;
  std::shared_ptr<std::atomic<bool>> busy_ = std::make_shared<std::atomic<bool>>(false);

 private:
  // state() -> { names: string[], tensors: Tensor[], steps: number }
  Napi::Value State(const Napi::CallbackInfo& info) {
    return SIMCLR_GUARD(info, {
      Napi::Env env = info.Env();
      int64_t steps = 0;
      auto state = state_->State(&steps);
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

  // loadState(names: string[], tensors: Tensor[], steps: number)
  Napi::Value LoadState(const Napi::CallbackInfo& info) {
    return SIMCLR_GUARD(info, {
      if (!info[0].IsArray() || !info[1].IsArray()) ThrowType("Expected arrays for names and tensors but received " + TypeName(info[0]) + " and " + TypeName(info[1]));
      auto names = info[0].As<Napi::Array>();
      auto tensors = info[1].As<Napi::Array>();
      if (names.Length() != tensors.Length()) {
        ThrowRange("Expected as many tensors as names (" + std::to_string(names.Length()) + ") for tensors but received " +
                   std::to_string(tensors.Length()));
      }
      std::map<std::string, at::Tensor> state;
      for (uint32_t i = 0; i < names.Length(); ++i) {
        state[ArgString(names.Get(i), "names[" + std::to_string(i) + "]")] =
            TensorWrap::FromJs(tensors.Get(i), "tensors[" + std::to_string(i) + "]");
      }
      if (busy_->load()) ThrowError("cannot load optimizer state while a training step runs with this optimizer");
      state_->LoadState(state, ArgInt(info[2], "steps", 0, int64_t(1) << 50));
      return info.Env().Undefined();
    });
  }
};

Napi::FunctionReference* OptimizerWrap::constructor = nullptr;

// createOptimizer(model, { optimizer, momentum, nesterov, weightDecay, beta1, beta2, eps, trustCoefficient }, dataParallel?)
Napi::Value CreateOptimizer(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, { return OptimizerWrap::constructor->New({info[0], info[1], info[2]}); });
}

// trainStep(model, optimizer, views, { lr, temperature, views, precision, memoryFormat, accumulationSteps, stopRequested })
Napi::Value TrainStepJs(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    LockedModelPtr model = ModelFromJs(info[0], "model");
    OptimizerWrap* optimizer = OptimizerWrap::FromJs(info[1]);
    if (optimizer->state_->model() != model) ThrowRange("this optimizer was created for another model");
    std::vector<at::Tensor> groups = ViewGroupsFromJs(info[2]);
    TrainStepOptions options = TrainStepOptionsFromJs(info[3]);
    CheckTrainStep(groups, options, optimizer->state_->group() != nullptr);
    if (optimizer->busy_->exchange(true)) ThrowError("a training step is already running with this optimizer");
    auto busy = std::make_shared<BusyFlag>(BusyFlag{optimizer->busy_});
    std::shared_ptr<TrainState> state = optimizer->state_;
    return RunAsync<TrainStepResult>(
        info.Env(), "simclr.trainStep",
        [state, groups, options, busy] { return TrainStep(*state, groups, options); },
        [](Napi::Env env, TrainStepResult& result) -> Napi::Value {
          Napi::Object out = Napi::Object::New(env);
          auto values = Napi::External<HostCopy>::New(env, new HostCopy(std::move(result.values)),
                                                      [](Napi::Env, HostCopy* copy) { delete copy; });
          values.TypeTag(&kTrainStepValuesTag);
          out.Set("values", values);
          out.Set("images", double(result.images));
          out.Set("applied", result.applied);
          return out;
        },
        RunsOn::kComputeThread);
  });
}

// readTrainStepValues(values: the `values` of a trainStep result) -> Promise<{ loss, localLoss, stop }>
Napi::Value ReadTrainStepValuesJs(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    if (!info[0].IsExternal() || !info[0].As<Napi::External<HostCopy>>().CheckTypeTag(&kTrainStepValuesTag)) {
      ThrowType("Expected the values of a training step for values but received " + TypeName(info[0]));
    }
    const HostCopy values = *info[0].As<Napi::External<HostCopy>>().Data();
    return RunAsync<TrainStepValues>(
        info.Env(), "simclr.readTrainStepValues", [values] { return ReadTrainStepValues(values); },
        [](Napi::Env env, TrainStepValues& read) -> Napi::Value {
          Napi::Object out = Napi::Object::New(env);
          out.Set("loss", read.loss);
          out.Set("localLoss", read.local_loss);
          out.Set("stop", read.stop);
          return out;
        });
  });
}

void InitTrainStepModule(Napi::Env env, Napi::Object exports) {
  OptimizerWrap::Init(env, exports);
  exports.Set("createOptimizer", Napi::Function::New<CreateOptimizer>(env, "createOptimizer"));
  exports.Set("trainStep", Napi::Function::New<TrainStepJs>(env, "trainStep"));
  exports.Set("readTrainStepValues", Napi::Function::New<ReadTrainStepValuesJs>(env, "readTrainStepValues"));
  exports.Set("optimizerNames", StringArray(env, OptimizerNames()));
  exports.Set("maxMomentum", Napi::Number::New(env, kMaxMomentum));
  exports.Set("maxAccumulationSteps", Napi::Number::New(env, double(kMaxAccumulationSteps)));
}

}  // namespace

SIMCLR_MODULE(train_step, InitTrainStepModule);

}  // namespace simclr
