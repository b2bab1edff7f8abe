// N-API glue for models and state-dict bytes: createModel, readStateDict, writeStateDict and the NativeModel class.
// Heavy work (construction, forward, state copies, (de)serialisation) runs on the libuv pool; every use of a model
// holds its lock (core/simclr_model.h: LockedModel).
#include "bind/models.h"

#include <algorithm>
#include <mutex>

#include "bind/args.h"
#include "bind/module.h"
#include "bind/tensor.h"
#include "bind/worker.h"
#include "core/state_dict_io.h"

namespace simclr {
namespace {

constexpr int64_t kMaxWidth = int64_t(1) << 20;

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::FunctionReference* constructor;

  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function cls = DefineClass(env, "NativeModel", {
      InstanceMethod<&ModelWrap::Forward>("forward"),
      InstanceMethod<&ModelWrap::Embed>("embed"),
      InstanceMethod<&ModelWrap::ForwardBackward>("forwardBackward"),
      InstanceMethod<&ModelWrap::Gradients>("gradients"),
      InstanceMethod<&ModelWrap::ZeroGrad>("zeroGrad"),
      InstanceMethod<&ModelWrap::Train>("train"),
      InstanceMethod<&ModelWrap::IsTraining>("isTraining"),
      InstanceMethod<&ModelWrap::To>("to"),
      InstanceMethod<&ModelWrap::Device>("device"),
      InstanceMethod<&ModelWrap::Dtype>("dtype"),
      InstanceMethod<&ModelWrap::ParameterCount>("parameterCount"),
      InstanceMethod<&ModelWrap::Describe>("describe"),
      InstanceMethod<&ModelWrap::StateDict>("stateDict"),
      InstanceMethod<&ModelWrap::LoadState>("loadStateDict"),
      InstanceMethod<&ModelWrap::StateDictBytes>("stateDictBytes"),
      InstanceMethod<&ModelWrap::LoadStateDictBytes>("loadStateDictBytes"),
    });
    constructor = new Napi::FunctionReference(Napi::Persistent(cls));
    exports.Set("NativeModel", cls);
  }

  static Napi::Object Wrap(Napi::Env env, SimCLRModel model) {
    return constructor->New({Napi::External<SimCLRModel>::New(env, &model)});
  }

  explicit ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {
    if (info.Length() != 1 || !info[0].IsExternal()) {
      throw Napi::TypeError::New(info.Env(), "Models are created with Encoder.create or SimCLRModel.create");
    }
    locked_ = std::make_shared<LockedModel>(*info[0].As<Napi::External<SimCLRModel>>().Data());
  }

  LockedModelPtr locked_;

 private:
  SimCLRModelImpl& model() const { return *locked_->model; }

  // forward(x, { precision, memoryFormat }) -> Promise<{ h, z? }> (float32 whatever the precision)
  Napi::Value Forward(const Napi::CallbackInfo& info) {
    return SIMCLR_GUARD(info, {
      at::Tensor x = TensorWrap::FromJs(info[0], "x");
      const Precision precision = PrecisionOption(info[1]);
      const MemoryFormat format = MemoryFormatOption(info[1]);
      LockedModelPtr j = locked_;
      return RunAsync<std::pair<at::Tensor, at::Tensor>>(info.Env(), "simclr.forward", [j, x, precision, format] {
        std::lock_guard<std::mutex> hold(j->mutex);
        // JS has no autograd: a forward from JS keeps no graph (BatchNorm still updates in train mode).
        at::NoGradGuard no_grad;
        auto [h, z] = ForwardWithPrecision(*j->model, x, precision, format, /*encoder_only=*/false);
        return std::make_pair(h, z);
      }, [](Napi::Env env, std::pair<at::Tensor, at::Tensor>& out) -> Napi::Value {
        Napi::Object result = Napi::Object::New(env);
        result.Set("h", TensorWrap::Wrap(env, out.first));
        if (out.second.defined()) result.Set("z", TensorWrap::Wrap(env, out.second));
        return result;
      }, RunsOn::kComputeThread);
    });
  }

  // embed(x, { precision, memoryFormat }) -> Promise<h>: the encoder's features in eval mode, float32
  Napi::Value Embed(const Napi::CallbackInfo& info) {
    return SIMCLR_GUARD(info, {
      at::Tensor x = TensorWrap::FromJs(info[0], "x");
      const Precision precision = PrecisionOption(info[1]);
      const MemoryFormat format = MemoryFormatOption(info[1]);
      LockedModelPtr j = locked_;
      return RunAsync<at::Tensor>(info.Env(), "simclr.embed", [j, x, precision, format] {
        std::lock_guard<std::mutex> hold(j->mutex);
        at::NoGradGuard no_grad;
        const bool was_training = j->model->is_training();
        j->model->eval();
        try {
          at::Tensor h = ForwardWithPrecision(*j->model, x, precision, format, /*encoder_only=*/true).first;
          j->model->train(was_training);
          return h;
        } catch (...) {
          j->model->train(was_training);
          throw;
        }
      }, [](Napi::Env env, at::Tensor& h) -> Napi::Value { return TensorWrap::Wrap(env, h); }, RunsOn::kComputeThread);
    });
  }

  // Runs forward with autograd, back-propagates `gradOutput` from the output (z with a head, else h) into the
  // parameters' .grad (accumulating, as PyTorch does), and returns the output.
  Napi::Value ForwardBackward(const Napi::CallbackInfo& info) {
    return SIMCLR_GUARD(info, {
      at::Tensor x = TensorWrap::FromJs(info[0], "x");
      at::Tensor grad_output = TensorWrap::FromJs(info[1], "gradOutput");
      LockedModelPtr j = locked_;
      return RunAsync<at::Tensor>(info.Env(), "simclr.forwardBackward", [j, x, grad_output] {
        std::lock_guard<std::mutex> hold(j->mutex);
        auto hz = j->model->forward(x);
        at::Tensor out = hz.second.defined() ? hz.second : hz.first;
        if (!grad_output.sizes().equals(out.sizes())) {
          ThrowRange("gradOutput has shape " + c10::str(grad_output.sizes()) + " but the output has shape " +
                     c10::str(out.sizes()));
        }
        out.backward(grad_output.to(out.options()));
        return out.detach();
      }, [](Napi::Env env, at::Tensor& out) -> Napi::Value { return TensorWrap::Wrap(env, out); }, RunsOn::kComputeThread);
    });
  }

  Napi::Value Gradients(const Napi::CallbackInfo& info) {
    return SIMCLR_GUARD(info, {
      std::lock_guard<std::mutex> hold(locked_->mutex);
      Napi::Object out = Napi::Object::New(info.Env());
      for (const auto& p : StateModule(model()).named_parameters()) {
        if (p.value().grad().defined()) out.Set(p.key(), TensorWrap::Wrap(info.Env(), p.value().grad().clone()));
      }
      return out;
    });
  }

  Napi::Value ZeroGrad(const Napi::CallbackInfo& info) {
    return SIMCLR_GUARD(info, {
      std::lock_guard<std::mutex> hold(locked_->mutex);
      for (auto& p : model().parameters()) p.mutable_grad() = at::Tensor();
      return info.Env().Undefined();
    });
  }

  Napi::Value Train(const Napi::CallbackInfo& info) {
    return SIMCLR_GUARD(info, {
      const bool on = info[0].IsUndefined() ? true : ArgBool(info[0], "mode");
      std::lock_guard<std::mutex> hold(locked_->mutex);
      model().train(on);
      return info.Env().Undefined();
    });
  }

  Napi::Value IsTraining(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), model().is_training());
  }

  // to(device, dtype): parameters and buffers moved and cast; float64 is for checks against exact arithmetic.
  Napi::Value To(const Napi::CallbackInfo& info) {
    return SIMCLR_GUARD(info, {
      at::Device device = ArgDevice(info[0], "device");
      const at::ScalarType dtype = ArgDtype(info[1], "dtype");
      if (dtype != at::kFloat && dtype != at::kDouble) {
        ThrowRange("Expected 'float32' or 'float64' for dtype but received '" + DtypeName(dtype) + "'");
      }
      std::lock_guard<std::mutex> hold(locked_->mutex);
      model().to(device, dtype);
      return info.Env().Undefined();
    });
  }

  Napi::Value Dtype(const Napi::CallbackInfo& info) {
    return SIMCLR_GUARD(info, { return Napi::String::New(info.Env(), DtypeName(model().encoder->conv1->weight.scalar_type())); });
  }

  Napi::Value Device(const Napi::CallbackInfo& info) {
    return SIMCLR_GUARD(info, {
      return Napi::String::New(info.Env(), DeviceName(model().encoder->conv1->weight.device()));
    });
  }

  Napi::Value ParameterCount(const Napi::CallbackInfo& info) {
    return SIMCLR_GUARD(info, { return Napi::Number::New(info.Env(), double(simclr::ParameterCount(model()))); });
  }

  Napi::Value Describe(const Napi::CallbackInfo& info) {
    return SIMCLR_GUARD(info, {
      Napi::Env env = info.Env();
      const ResNetOptions& enc = model().encoder->options;
      Napi::Object out = Napi::Object::New(env);
      out.Set("backbone", enc.backbone);
      out.Set("featureDim", double(model().encoder->feature_dim));
      out.Set("outDim", double(enc.out_dim));
      out.Set("stem", StemNames()[static_cast<size_t>(enc.stem)]);
      if (model().head) {
        const ProjectionHeadOptions& head = model().head->options;
        Napi::Object h = Napi::Object::New(env);
        h.Set("inDim", double(head.in_dim));
        h.Set("hiddenDim", double(head.hidden_dim));
        h.Set("outDim", double(head.out_dim));
        h.Set("layers", double(head.layers));
        h.Set("batchNorm", head.batch_norm);
        out.Set("head", h);
      } else {
        out.Set("head", env.Null());
      }
      return out;
    });
  }

  Napi::Value StateDict(const Napi::CallbackInfo& info) {
    return SIMCLR_GUARD(info, {
      LockedModelPtr j = locked_;
      return RunAsync<NamedTensors>(info.Env(), "simclr.stateDict", [j] {
        std::lock_guard<std::mutex> hold(j->mutex);
        NamedTensors state = StateDictOf(StateModule(*j->model));
        for (auto& entry : state) entry.second = entry.second.clone();  // a snapshot: training changes the live ones
        return state;
      }, NamedTensorsToJs);
    });
  }

  Napi::Value LoadState(const Napi::CallbackInfo& info) {
    return SIMCLR_GUARD(info, {
      NamedTensors state = NamedTensorsFromJs(info[0], "state");
      const bool strict = info[1].IsUndefined() ? true : ArgBool(info[1], "strict");
      LockedModelPtr j = locked_;
      return RunAsync<LoadReport>(info.Env(), "simclr.loadStateDict", [j, state, strict] {
        std::lock_guard<std::mutex> hold(j->mutex);
        return LoadStateDict(StateModule(*j->model), state, strict);
      }, LoadReportToJs);
    });
  }

  Napi::Value StateDictBytes(const Napi::CallbackInfo& info) {
    return SIMCLR_GUARD(info, {
      LockedModelPtr j = locked_;
      return RunAsync<std::vector<char>>(info.Env(), "simclr.stateDictBytes", [j] {
        std::lock_guard<std::mutex> hold(j->mutex);
        return WriteStateDict(StateDictOf(StateModule(*j->model)));
      }, BytesToJs);
    });
  }

  Napi::Value LoadStateDictBytes(const Napi::CallbackInfo& info) {
    return SIMCLR_GUARD(info, {
      std::vector<uint8_t> bytes = ArgBytes(info[0], "bytes");
      const bool strict = info[1].IsUndefined() ? true : ArgBool(info[1], "strict");
      LockedModelPtr j = locked_;
      return RunAsync<LoadReport>(info.Env(), "simclr.loadStateDictBytes", [j, bytes, strict] {
        NamedTensors state = ReadStateDict(bytes.data(), bytes.size());
        std::lock_guard<std::mutex> hold(j->mutex);
        return LoadStateDict(StateModule(*j->model), state, strict);
      }, LoadReportToJs);
    });
  }

 public:
  static Napi::Value NamedTensorsToJs(Napi::Env env, NamedTensors& state) {
    Napi::Object out = Napi::Object::New(env);
    for (const auto& entry : state) out.Set(entry.first, TensorWrap::Wrap(env, entry.second));
    return out;
  }

  static NamedTensors NamedTensorsFromJs(const Napi::Value& value, const std::string& name) {
    if (!value.IsObject() || value.IsArray() || TensorWrap::IsTensor(value)) {
      ThrowType("Expected an object of Tensors for " + name + " but received " + TypeName(value));
    }
    Napi::Object object = value.As<Napi::Object>();
    Napi::Array keys = object.GetPropertyNames();
    NamedTensors state;
    for (uint32_t i = 0; i < keys.Length(); ++i) {
      std::string key = keys.Get(i).ToString().Utf8Value();
      state.emplace_back(key, TensorWrap::FromJs(object.Get(key), name + "['" + key + "']"));
    }
    return state;
  }

  static Napi::Value BytesToJs(Napi::Env env, std::vector<char>& bytes) {
    return Napi::Buffer<char>::Copy(env, bytes.data(), bytes.size());
  }

  static Napi::Value LoadReportToJs(Napi::Env env, LoadReport& report) {
    Napi::Object out = Napi::Object::New(env);
    out.Set("missingKeys", StringArray(env, report.missing_keys));
    out.Set("unexpectedKeys", StringArray(env, report.unexpected_keys));
    return out;
  }
};

Napi::FunctionReference* ModelWrap::constructor = nullptr;

// createModel({ backbone, outDim, stem, zeroInitResidual, device?, head?: { layers, hiddenDim?, outDim, batchNorm } }),
// complete from TypeScript (src/models/), which owns the defaults.
Napi::Value CreateModel(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    const Napi::Value options = info[0];
    if (!options.IsObject() || options.IsArray()) ThrowType("Expected an options object for options but received " + TypeName(options));
    ResNetOptions encoder;
    encoder.backbone = StringOption(options, "backbone");
    const auto& names = BackboneNames();
    if (std::find(names.begin(), names.end(), encoder.backbone) == names.end()) {
      std::string list;
      for (const auto& name : names) list += (list.empty() ? "" : ", ") + name;
      ThrowRange("Expected one of " + list + " for options.backbone but received '" + encoder.backbone + "'");
    }
    encoder.out_dim = IntOption(options, "outDim", 0, kMaxWidth);
    encoder.stem = static_cast<Stem>(OneOfOption(options, "stem", StemNames()));
    encoder.zero_init_residual = BoolOption(options, "zeroInitResidual");
    at::Device device = ArgDevice(Option(options, "device"), "device");
    std::optional<ProjectionHeadOptions> head;
    Napi::Value head_value = Option(options, "head");
    if (!head_value.IsUndefined() && !head_value.IsNull()) {
      if (!head_value.IsObject() || head_value.IsArray()) ThrowType("Expected an options object for head but received " + TypeName(head_value));
      ProjectionHeadOptions h;
      h.layers = IntOption(head_value, "layers", 1, 16);
      // Absent: as wide as the encoder's output, which only the model knows once built (SimCLRModel fills it in).
      h.hidden_dim = IntOption(head_value, "hiddenDim", 1, kMaxWidth, 0);
      h.out_dim = IntOption(head_value, "outDim", 1, kMaxWidth);
      h.batch_norm = BoolOption(head_value, "batchNorm");
      head = h;
    }
    return RunAsync<SimCLRModel>(info.Env(), "simclr.createModel", [encoder, head, device] {
      SimCLRModel model(encoder, head);
      if (!device.is_cpu()) model->to(device);
      return model;
    }, [](Napi::Env env, SimCLRModel& model) -> Napi::Value { return ModelWrap::Wrap(env, model); }, RunsOn::kComputeThread);
  });
}

Napi::Value ReadStateDictJs(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    std::vector<uint8_t> bytes = ArgBytes(info[0], "bytes");
    return RunAsync<NamedTensors>(info.Env(), "simclr.readStateDict",
                                  [bytes] { return ReadStateDict(bytes.data(), bytes.size()); }, ModelWrap::NamedTensorsToJs);
  });
}

Napi::Value WriteStateDictJs(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    NamedTensors state = ModelWrap::NamedTensorsFromJs(info[0], "state");
    return RunAsync<std::vector<char>>(info.Env(), "simclr.writeStateDict", [state] { return WriteStateDict(state); },
                                       ModelWrap::BytesToJs);
  });
}

void InitModelModule(Napi::Env env, Napi::Object exports) {
  ModelWrap::Init(env, exports);
  exports.Set("createModel", Napi::Function::New<CreateModel>(env, "createModel"));
  exports.Set("backboneNames", StringArray(env, BackboneNames()));
  exports.Set("stemNames", StringArray(env, StemNames()));
  exports.Set("readStateDict", Napi::Function::New<ReadStateDictJs>(env, "readStateDict"));
  exports.Set("writeStateDict", Napi::Function::New<WriteStateDictJs>(env, "writeStateDict"));
}

}  // namespace

SIMCLR_MODULE(models, InitModelModule);

LockedModelPtr ModelFromJs(const Napi::Value& value, const std::string& name) {
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(ModelWrap::constructor->Value())) {
    ThrowType("Expected a model (Encoder or SimCLRModel) for " + name + " but received " + TypeName(value));
  }
  return Napi::ObjectWrap<ModelWrap>::Unwrap(value.As<Napi::Object>())->locked_;
}

}  // namespace simclr
