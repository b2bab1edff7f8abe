#include "common.h"

#include <c10/util/Exception.h>

#include <cmath>
#include <utility>

namespace simclr {

void DescribeException(std::exception_ptr error, ErrorKind* kind, std::string* message) {
  try {
    std::rethrow_exception(error);
  } catch (const JsError& e) {
    *kind = e.kind;
    *message = e.what();
  } catch (const c10::TypeError& e) {
    *kind = ErrorKind::kTypeError;
    *message = e.what_without_backtrace();
  } catch (const c10::IndexError& e) {
    *kind = ErrorKind::kRangeError;
    *message = e.what_without_backtrace();
  } catch (const c10::ValueError& e) {
    *kind = ErrorKind::kRangeError;
    *message = e.what_without_backtrace();
  } catch (const c10::Error& e) {
    *kind = ErrorKind::kError;
    *message = e.what_without_backtrace();
  } catch (const std::bad_alloc&) {
    *kind = ErrorKind::kRangeError;
    *message = "out of memory: the requested tensor does not fit";
  } catch (const std::exception& e) {
    *kind = ErrorKind::kError;
    *message = e.what();
  } catch (...) {
    *kind = ErrorKind::kError;
    *message = "unknown native error";
  }
}

Napi::Error MakeJsError(Napi::Env env, ErrorKind kind, const std::string& message) {
  switch (kind) {
    case ErrorKind::kTypeError:
      return Napi::TypeError::New(env, message);
    case ErrorKind::kRangeError:
      return Napi::RangeError::New(env, message);
    default:
      return Napi::Error::New(env, message);
  }
}

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

static std::string Received(const Napi::Value& value) {
  std::string text;
  if (value.IsNumber()) text = std::to_string(value.As<Napi::Number>().DoubleValue()) + " of type ";
  else if (value.IsString()) text = "'" + value.As<Napi::String>().Utf8Value().substr(0, 40) + "' of type ";
  return " but received " + text + TypeName(value);
}

double ArgFiniteNumber(const Napi::Value& value, const std::string& name) {
  if (!value.IsNumber()) ThrowType("Expected a finite number for " + name + Received(value));
  double v = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(v)) ThrowRange("Expected a finite number for " + name + Received(value));
  return v;
}

double ArgNumber(const Napi::CallbackInfo& info, size_t index, const char* name) {
  return ArgFiniteNumber(info[index], name);
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
  if (array.Length() > 16) ThrowRange("Expected at most 16 dimensions for " + name);
  std::vector<int64_t> shape;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    shape.push_back(ArgInt(array.Get(i), name + "[" + std::to_string(i) + "]", 0, int64_t(1) << 40));
  }
  return shape;
}

at::Device ArgDevice(const Napi::Value& value, const std::string& name) {
  if (value.IsUndefined()) return at::Device(at::kCPU);
  std::string text = ArgString(value, name);
  if (text == "cpu") return at::Device(at::kCPU);
  if (text == "cuda") return at::Device(at::kCUDA, 0);
  if (text.rfind("cuda:", 0) == 0 && text.size() > 5 && text.size() < 9 &&
      text.find_first_not_of("0123456789", 5) == std::string::npos) {
    return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(std::stoi(text.substr(5))));
  }
  ThrowRange("Expected 'cpu', 'cuda' or 'cuda:<index>' for " + name + Received(value));
}

at::ScalarType ArgDtype(const Napi::Value& value, const std::string& name) {
  std::string text = ArgString(value, name);
  if (text == "float32") return at::kFloat;
  if (text == "float64") return at::kDouble;
  if (text == "uint8") return at::kByte;
  if (text == "int64") return at::kLong;
  ThrowRange("Expected one of 'float32', 'float64', 'uint8', 'int64' for " + name + Received(value));
}

Napi::Value Option(const Napi::Value& options, const char* key) {
  if (options.IsUndefined() || options.IsNull()) return options.Env().Undefined();
  if (!options.IsObject() || options.IsArray()) ThrowType(std::string("Expected an options object") + Received(options));
  return options.As<Napi::Object>().Get(key);
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

void CheckDeviceAvailable(const at::Device& device) {
  if (device.is_cpu()) return;
  if (device.is_cuda()) {
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
    return;
  }
  ThrowRange("Unsupported device '" + DeviceName(device) + "'");
}

static std::vector<std::pair<const char*, ModuleInit>>& Registry() {
  static std::vector<std::pair<const char*, ModuleInit>> modules;
  return modules;
}

ModuleRegistration::ModuleRegistration(const char* name, ModuleInit init) { Registry().emplace_back(name, init); }

void InitRegisteredModules(Napi::Env env, Napi::Object exports) {
  for (auto& [name, init] : Registry()) init(env, exports);
}

}  // namespace simclr

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  simclr::InitRegisteredModules(env, exports);
  return exports;
}

NODE_API_MODULE(simclr, InitAddon)
