#include "bind/args.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

namespace simclr {

std::string TypeName(const Napi::Value& value) {
  switch (value.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return "boolean";
    case napi_number: return "number";
    case napi_string: return "string";
    case napi_symbol: return "symbol";
    case napi_function: return "function";
    case napi_bigint: return "bigint";
    default: return value.IsArray() ? "array" : value.IsTypedArray() ? "typed array" : "object";
  }
}

// A number as JavaScript writes it ("-3", "1e-8", "NaN"), as the TS edge's messages do.
static std::string JsNumber(Napi::Env env, double number) {
  return Napi::Number::New(env, number).ToString().Utf8Value();
}

static std::string Received(const Napi::Value& value) {
  std::string text;
  if (value.IsNumber()) text = JsNumber(value.Env(), value.As<Napi::Number>().DoubleValue()) + " of type ";
  else if (value.IsString()) text = "'" + value.As<Napi::String>().Utf8Value().substr(0, 40) + "' of type ";
  return " but received " + text + TypeName(value);
}

double ArgFiniteNumber(const Napi::Value& value, const std::string& name) {
  if (!value.IsNumber()) ThrowType("Expected a finite number for " + name + Received(value));
  double v = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(v)) ThrowRange("Expected a finite number for " + name + Received(value));
  return v;
}

int64_t ArgInt(const Napi::Value& value, const std::string& name, int64_t min, int64_t max) {
  if (!value.IsNumber()) ThrowType("Expected an integer for " + name + Received(value));
  double v = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(v) || std::floor(v) != v) ThrowRange("Expected an integer for " + name + Received(value));
  if (v < static_cast<double>(min) || v > static_cast<double>(max)) {
    ThrowRange("Expected an integer between " + std::to_string(min) + " and " + std::to_string(max) + " for " + name +
               Received(value));
  }
  return static_cast<int64_t>(v);
}

bool ArgBool(const Napi::Value& value, const std::string& name) {
  if (!value.IsBoolean()) ThrowType("Expected a boolean for " + name + Received(value));
  return value.As<Napi::Boolean>().Value();
}

std::string ArgString(const Napi::Value& value, const std::string& name) {
  if (!value.IsString()) ThrowType("Expected a string for " + name + Received(value));
  return value.As<Napi::String>().Utf8Value();
}

std::vector<int64_t> ArgShape(const Napi::Value& value, const std::string& name) {
  if (!value.IsArray()) ThrowType("Expected an array of non-negative integers for " + name + Received(value));
  auto array = value.As<Napi::Array>();
  if (array.Length() > 16) {
    ThrowRange("Expected at most 16 dimensions for " + name + " but received " + std::to_string(array.Length()));
  }
  std::vector<int64_t> shape;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    shape.push_back(ArgInt(array.Get(i), name + "[" + std::to_string(i) + "]", 0, int64_t(1) << 40));
  }
  return shape;
}

static void CheckDeviceAvailable(const at::Device& device) {
  if (device.is_cpu()) return;
  if (!at::hasCUDA()) {
    ThrowRange("Device '" + DeviceName(device) +
               "' was requested but CUDA is not available: this LibTorch has no CUDA support or this machine has no "
               "NVIDIA driver/GPU. Use 'cpu', or install a CUDA-enabled LibTorch (see README: CUDA).");
  }
  int64_t count = at::detail::getCUDAHooks().getNumGPUs();
  if (device.index() >= count) {
    ThrowRange("Device '" + DeviceName(device) + "' was requested but only " + std::to_string(count) +
               " CUDA device(s) exist");
  }
}

at::Device ArgDevice(const Napi::Value& value, const std::string& name) {
  if (value.IsUndefined()) return at::Device(at::kCPU);
  std::string text = ArgString(value, name);
  std::optional<at::Device> device;
  if (text == "cpu") device = at::Device(at::kCPU);
  else if (text == "cuda") device = at::Device(at::kCUDA, 0);
  else if (text.rfind("cuda:", 0) == 0 && text.size() > 5 && text.size() < 9 &&
           text.find_first_not_of("0123456789", 5) == std::string::npos) {
    device = at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(std::stoi(text.substr(5))));
  }
  if (!device) ThrowRange("Expected 'cpu', 'cuda' or 'cuda:<index>' for " + name + Received(value));
  CheckDeviceAvailable(*device);
  return *device;
}

at::ScalarType ArgDtype(const Napi::Value& value, const std::string& name) {
  std::string text = ArgString(value, name);
  if (text == "float32") return at::kFloat;
  if (text == "float64") return at::kDouble;
  if (text == "uint8") return at::kByte;
  if (text == "int64") return at::kLong;
  if (text == "int32") return at::kInt;
  ThrowRange("Expected one of 'float32', 'float64', 'uint8', 'int32', 'int64' for " + name + Received(value));
}

std::array<double, 3> ArgTriple(const Napi::Value& value, const std::string& name) {
  if (!value.IsArray() || value.As<Napi::Array>().Length() != 3) {
    ThrowType("Expected an array of 3 numbers for " + name + Received(value));
  }
  auto array = value.As<Napi::Array>();
  std::array<double, 3> out{};
  for (uint32_t i = 0; i < 3; ++i) out[i] = ArgFiniteNumber(array.Get(i), name + "[" + std::to_string(i) + "]");
  return out;
}

static const char* TypedArrayName(napi_typedarray_type kind) {
  switch (kind) {
    case napi_uint8_array: return "Uint8Array";
    case napi_int32_array: return "Int32Array";
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_bigint64_array: return "BigInt64Array";
    default: return "typed array";
  }
}

at::Tensor ArgTypedArray(const Napi::Value& value, const std::string& name, napi_typedarray_type kind, at::ScalarType dtype,
                         int64_t length) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != kind) {
    ThrowType("Expected a " + std::string(TypedArrayName(kind)) + " for " + name + Received(value));
  }
  auto array = value.As<Napi::TypedArray>();
  if (static_cast<int64_t>(array.ElementLength()) != length) {
    ThrowRange("Expected " + std::to_string(length) + " values in " + name + " but received " +
               std::to_string(array.ElementLength()));
  }
  at::Tensor out = at::empty({length}, dtype);
  TORCH_INTERNAL_ASSERT(size_t(out.nbytes()) == array.ByteLength(), "typed array and tensor element sizes differ");
  if (length > 0) {
    const auto* data = static_cast<const uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset();
    std::memcpy(out.data_ptr(), data, array.ByteLength());
  }
  return out;
}

std::vector<uint8_t> ArgBytes(const Napi::Value& value, const std::string& name) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowType("Expected a Buffer or Uint8Array for " + name + Received(value));
  }
  auto array = value.As<Napi::Uint8Array>();
  return std::vector<uint8_t>(array.Data(), array.Data() + array.ElementLength());
}

Napi::Value Option(const Napi::Value& options, const char* key) {
  if (options.IsUndefined() || options.IsNull()) return options.Env().Undefined();
  if (!options.IsObject() || options.IsArray()) ThrowType("Expected an options object" + Received(options));
  return options.As<Napi::Object>().Get(key);
}

// options[key]; absent is a TypeError.
static Napi::Value Required(const Napi::Value& options, const char* key, const char* expected) {
  Napi::Value value = Option(options, key);
  if (value.IsUndefined()) ThrowType(std::string("Expected ") + expected + " for options." + key + " but received undefined");
  return value;
}

double NumberOption(const Napi::Value& options, const char* key, NumberRange range) {
  const Napi::Value value = Required(options, key, "a finite number");
  const std::string name = std::string("options.") + key;
  const double number = ArgFiniteNumber(value, name);
  if (number < range.min || (range.exclusive_min && number == range.min) || number > range.max) {
    std::string bounds;
    if (std::isfinite(range.min)) bounds += (range.exclusive_min ? " > " : " >= ") + JsNumber(value.Env(), range.min);
    if (std::isfinite(range.max)) bounds += (std::isfinite(range.min) ? " and <= " : " <= ") + JsNumber(value.Env(), range.max);
    ThrowRange("Expected a finite number" + bounds + " for " + name + Received(value));
  }
  return number;
}

int64_t IntOption(const Napi::Value& options, const char* key, int64_t min, int64_t max, std::optional<int64_t> fallback) {
  if (fallback && Option(options, key).IsUndefined()) return *fallback;
  return ArgInt(Required(options, key, "an integer"), std::string("options.") + key, min, max);
}

bool BoolOption(const Napi::Value& options, const char* key, std::optional<bool> fallback) {
  if (fallback && Option(options, key).IsUndefined()) return *fallback;
  return ArgBool(Required(options, key, "a boolean"), std::string("options.") + key);
}

std::string StringOption(const Napi::Value& options, const char* key) {
  return ArgString(Required(options, key, "a string"), std::string("options.") + key);
}

size_t OneOfOption(const Napi::Value& options, const char* key, const std::vector<std::string>& names) {
  const std::string value = StringOption(options, key);
  const auto found = std::find(names.begin(), names.end(), value);
  if (found != names.end()) return size_t(found - names.begin());
  std::string list;
  for (const auto& name : names) list += (list.empty() ? "'" : ", '") + name + "'";
  ThrowRange("Expected one of " + list + " for options." + key + " but received '" + value + "'");
}

Precision PrecisionOption(const Napi::Value& options) {
  const std::string name = StringOption(options, "precision");
  if (name == "fp32") return Precision::kFloat32;
  if (name == "bf16") return Precision::kBFloat16;
  if (name == "fp16") return Precision::kFloat16;
  ThrowRange("Expected one of 'fp32', 'bf16', 'fp16' for options.precision but received '" + name + "'");
}

MemoryFormat MemoryFormatOption(const Napi::Value& options) {
  const std::string name = StringOption(options, "memoryFormat");
  if (name == "contiguous") return MemoryFormat::kContiguous;
  if (name == "channelsLast") return MemoryFormat::kChannelsLast;
  ThrowRange("Expected 'contiguous' or 'channelsLast' for options.memoryFormat but received '" + name + "'");
}

Napi::Array StringArray(Napi::Env env, const std::vector<std::string>& strings) {
  Napi::Array array = Napi::Array::New(env, strings.size());
  for (uint32_t i = 0; i < strings.size(); ++i) array.Set(i, strings[i]);
  return array;
}

std::string DtypeName(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    case at::kByte: return "uint8";
    case at::kLong: return "int64";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    case at::kBool: return "bool";
    case at::kInt: return "int32";
    default: return c10::toString(type);
  }
}

std::string DeviceName(const at::Device& device) {
  if (device.is_cpu()) return "cpu";
  return device.str();
}

}  // namespace simclr
