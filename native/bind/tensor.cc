#include "bind/tensor.h"

#include <cstring>

#include "bind/module.h"
#include "core/device.h"

namespace simclr {

Napi::FunctionReference* TensorWrap::constructor_ = nullptr;

void TensorWrap::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "NativeTensor", {
    InstanceMethod<&TensorWrap::Shape>("shape"),
    InstanceMethod<&TensorWrap::Dtype>("dtype"),
    InstanceMethod<&TensorWrap::Device>("device"),
    InstanceMethod<&TensorWrap::Disposed>("disposed"),
    InstanceMethod<&TensorWrap::Pinned>("pinned"),
    InstanceMethod<&TensorWrap::ToTypedArray>("toTypedArray"),
    InstanceMethod<&TensorWrap::CopyTo>("copyTo"),
    InstanceMethod<&TensorWrap::To>("to"),
    InstanceMethod<&TensorWrap::Dispose>("dispose"),
  });
  constructor_ = new Napi::FunctionReference(Napi::Persistent(cls));
  exports.Set("NativeTensor", cls);
}

Napi::Object TensorWrap::Wrap(Napi::Env env, at::Tensor tensor) {
  return constructor_->New({Napi::External<at::Tensor>::New(env, &tensor)});
}

bool TensorWrap::IsTensor(const Napi::Value& value) {
  return value.IsObject() && value.As<Napi::Object>().InstanceOf(constructor_->Value());
}

at::Tensor TensorWrap::FromJs(const Napi::Value& value, const std::string& name) {
  if (!IsTensor(value)) ThrowType("Expected a Tensor for " + name + " but received " + TypeName(value));
  TensorWrap* wrap = Napi::ObjectWrap<TensorWrap>::Unwrap(value.As<Napi::Object>());
  if (!wrap->tensor_.defined()) throw JsError(ErrorKind::kError, "The Tensor passed as " + name + " was disposed");
  return wrap->tensor_;
}

TensorWrap::TensorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorWrap>(info), env_(info.Env()) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "Tensors are created with Tensor.fromTypedArray, zeros, ones or randn");
  }
  tensor_ = *info[0].As<Napi::External<at::Tensor>>().Data();
  reported_bytes_ = static_cast<int64_t>(tensor_.numel() * tensor_.element_size());
  Napi::MemoryManagement::AdjustExternalMemory(info.Env(), reported_bytes_);
}

TensorWrap::~TensorWrap() {
  if (reported_bytes_ != 0) Napi::MemoryManagement::AdjustExternalMemory(Napi::Env(env_), -reported_bytes_);
}

void TensorWrap::Release(Napi::Env env) {
  tensor_ = at::Tensor();
  if (reported_bytes_ != 0) Napi::MemoryManagement::AdjustExternalMemory(env, -reported_bytes_);
  reported_bytes_ = 0;
}

const at::Tensor& TensorWrap::Live(const char* method) const {
  if (!tensor_.defined()) throw JsError(ErrorKind::kError, std::string("Cannot call ") + method + "() on a disposed Tensor");
  return tensor_;
}

Napi::Value TensorWrap::Shape(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    const at::Tensor& t = Live("shape");
    Napi::Array shape = Napi::Array::New(info.Env(), t.dim());
    for (int64_t i = 0; i < t.dim(); ++i) shape.Set(uint32_t(i), Napi::Number::New(info.Env(), double(t.size(i))));
    return shape;
  });
}

Napi::Value TensorWrap::Dtype(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, { return Napi::String::New(info.Env(), DtypeName(Live("dtype").scalar_type())); });
}

Napi::Value TensorWrap::Device(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, { return Napi::String::New(info.Env(), DeviceName(Live("device").device())); });
}

Napi::Value TensorWrap::Disposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !tensor_.defined());
}

Napi::Value TensorWrap::Pinned(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, { return Napi::Boolean::New(info.Env(), IsPinned(Live("pinned"))); });
}

// Copies the tensor into a fresh tensor whose memory backs the returned typed array (an external ArrayBuffer that
// owns the copy), which saves the zero-fill and second pass of copying into a V8-allocated buffer.
template <typename ArrayT>
static Napi::Value CopyOut(Napi::Env env, const at::Tensor& tensor, napi_typedarray_type type) {
  if (tensor.numel() == 0) return ArrayT::New(env, 0);
  auto* owner = new at::Tensor(tensor.to(at::kCPU).contiguous().clone());
  const size_t bytes = size_t(owner->numel()) * owner->element_size();
  Napi::MemoryManagement::AdjustExternalMemory(env, int64_t(bytes));
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, owner->data_ptr(), bytes,
    [](Napi::Env env, void*, at::Tensor* held) {
      Napi::MemoryManagement::AdjustExternalMemory(env, -int64_t(held->numel() * held->element_size()));
      delete held;
    }, owner);
  return ArrayT::New(env, size_t(owner->numel()), buffer, 0, type);
}

// copyTo(target: TypedArray): the tensor's bytes (its own dtype, row-major) into memory the caller owns and reuses,
// so that writing a large state (a checkpoint) leaves no copies waiting for garbage collection.
Napi::Value TensorWrap::CopyTo(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    const at::Tensor& t = Live("copyTo");
    if (!info[0].IsTypedArray()) ThrowType("Expected a typed array for target but received " + TypeName(info[0]));
    Napi::TypedArray target = info[0].As<Napi::TypedArray>();
    const size_t bytes = size_t(t.numel()) * t.element_size();
    if (target.ByteLength() != bytes) {
      ThrowRange("Expected a target of " + std::to_string(bytes) + " bytes but received " +
                 std::to_string(target.ByteLength()));
    }
    if (bytes == 0) return info.Env().Undefined();
    at::Tensor source = t.to(at::kCPU).contiguous();
    std::memcpy(static_cast<uint8_t*>(target.ArrayBuffer().Data()) + target.ByteOffset(), source.data_ptr(), bytes);
    return info.Env().Undefined();
  });
}

Napi::Value TensorWrap::ToTypedArray(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    const at::Tensor& t = Live("toTypedArray");
    Napi::Env env = info.Env();
    switch (t.scalar_type()) {
      case at::kFloat: return CopyOut<Napi::Float32Array>(env, t, napi_float32_array);
      case at::kDouble: return CopyOut<Napi::Float64Array>(env, t, napi_float64_array);
      case at::kByte: return CopyOut<Napi::Uint8Array>(env, t, napi_uint8_array);
      case at::kLong: return CopyOut<Napi::BigInt64Array>(env, t, napi_bigint64_array);
      case at::kInt: return CopyOut<Napi::Int32Array>(env, t, napi_int32_array);
      default: return CopyOut<Napi::Float32Array>(env, t.to(at::kFloat), napi_float32_array);
    }
  });
}

Napi::Value TensorWrap::To(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    at::Device device = ArgDevice(info[0], "device");
    return Wrap(info.Env(), Live("to").to(device));
  });
}

Napi::Value TensorWrap::Dispose(const Napi::CallbackInfo& info) {
  Release(info.Env());
  return info.Env().Undefined();
}

// ---- factories ----

static at::ScalarType DtypeOfArray(const Napi::TypedArray& array) {
  switch (array.TypedArrayType()) {
    case napi_float32_array: return at::kFloat;
    case napi_float64_array: return at::kDouble;
    case napi_uint8_array: return at::kByte;
    case napi_bigint64_array: return at::kLong;
    case napi_int32_array: return at::kInt;
    default:
      ThrowType("Expected a Float32Array, Float64Array, Uint8Array, Int32Array or BigInt64Array for data");
  }
}

// fromTypedArray(data, shape, device?, pinMemory?): with pinMemory the CPU copy is page-locked, so that a later upload
// to a GPU runs asynchronously with no second host copy.
static Napi::Value FromTypedArray(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    if (!info[0].IsTypedArray()) {
      ThrowType("Expected a Float32Array, Float64Array, Uint8Array, Int32Array or BigInt64Array for data but received " +
                TypeName(info[0]));
    }
    auto array = info[0].As<Napi::TypedArray>();
    at::ScalarType dtype = DtypeOfArray(array);
    std::vector<int64_t> shape = ArgShape(info[1], "shape");
    at::Device device = ArgDevice(info[2], "device");
    const bool pin = !info[3].IsUndefined() && ArgBool(info[3], "pinMemory");
    if (pin && !device.is_cpu()) ThrowRange("pinMemory applies to CPU tensors (the host side of an upload), not to " + DeviceName(device));
    if (pin && !CudaAvailable()) ThrowRange("pinMemory needs CUDA (page-locked memory belongs to the CUDA driver), and this LibTorch or machine has none");
    int64_t numel = 1;
    for (int64_t d : shape) {
      if (d != 0 && numel > (int64_t(1) << 40) / d) ThrowRange("shape has too many elements");
      numel *= d;
    }
    if (numel != int64_t(array.ElementLength())) {
      ThrowRange("shape " + c10::str(c10::IntArrayRef(shape)) + " needs " + std::to_string(numel) +
                 " elements but data has " + std::to_string(array.ElementLength()));
    }
    at::Tensor cpu = at::empty(shape, at::TensorOptions().dtype(dtype).pinned_memory(pin));
    const uint8_t* src = static_cast<const uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset();
    if (numel > 0) std::memcpy(cpu.data_ptr(), src, size_t(numel) * cpu.element_size());
    return TensorWrap::Wrap(info.Env(), device.is_cpu() ? cpu : UploadToDevice(cpu, device));
  });
}

// zeros/ones/randn(shape, dtype, device)
template <at::Tensor (*Make)(at::IntArrayRef, at::TensorOptions)>
static Napi::Value Factory(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    std::vector<int64_t> shape = ArgShape(info[0], "shape");
    at::ScalarType dtype = info[1].IsUndefined() ? at::kFloat : ArgDtype(info[1], "dtype");
    at::Device device = ArgDevice(info[2], "device");
    int64_t numel = 1;
    for (int64_t d : shape) {
      if (d != 0 && numel > (int64_t(1) << 36) / d) ThrowRange("shape has too many elements");
      numel *= d;
    }
    return TensorWrap::Wrap(info.Env(), Make(shape, at::TensorOptions().dtype(dtype).device(device)));
  });
}

static at::Tensor MakeZeros(at::IntArrayRef shape, at::TensorOptions options) { return at::zeros(shape, options); }
static at::Tensor MakeOnes(at::IntArrayRef shape, at::TensorOptions options) { return at::ones(shape, options); }
static at::Tensor MakeRandn(at::IntArrayRef shape, at::TensorOptions options) {
  if (!at::isFloatingType(options.dtype().toScalarType())) ThrowType("randn needs a floating dtype (float32 or float64)");
  return at::randn(shape, options);
}

static void InitTensorModule(Napi::Env env, Napi::Object exports) {
  TensorWrap::Init(env, exports);
  exports.Set("fromTypedArray", Napi::Function::New<FromTypedArray>(env, "fromTypedArray"));
  exports.Set("zeros", Napi::Function::New<Factory<MakeZeros>>(env, "zeros"));
  exports.Set("ones", Napi::Function::New<Factory<MakeOnes>>(env, "ones"));
  exports.Set("randn", Napi::Function::New<Factory<MakeRandn>>(env, "randn"));
}
SIMCLR_MODULE(tensor, InitTensorModule);

}  // namespace simclr
