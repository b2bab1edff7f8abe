// Shared N-API glue: error translation, argument readers, promise-returning workers, module registration.
// Compute files never include this; only the binding files (*_binding.cc, tensor.cc) do.
#pragma once

#include <napi.h>

#include <ATen/ATen.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace simclr {

// The kind of JS error a failure becomes. Argument problems are TypeError/RangeError, everything else Error.
enum class ErrorKind { kError, kTypeError, kRangeError };

// A failure detected in native code, carrying the JS error class it should become.
struct JsError : std::runtime_error {
  ErrorKind kind;
  JsError(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind(kind) {}
};

[[noreturn]] inline void ThrowType(const std::string& message) { throw JsError(ErrorKind::kTypeError, message); }
[[noreturn]] inline void ThrowRange(const std::string& message) { throw JsError(ErrorKind::kRangeError, message); }

// Maps any exception to (kind, message) without the C++ backtrace that c10::Error::what() carries.
void DescribeException(std::exception_ptr error, ErrorKind* kind, std::string* message);

// Converts a (kind, message) pair to a JS error object.
Napi::Error MakeJsError(Napi::Env env, ErrorKind kind, const std::string& message);

// Runs `body` and rethrows whatever it throws as the right JS error. Every synchronous entry point goes through this.
template <typename F>
auto Guarded(Napi::Env env, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    ErrorKind kind;
    std::string message;
    DescribeException(std::current_exception(), &kind, &message);
    throw MakeJsError(env, kind, message);
  }
}

// Wraps a synchronous native method: `Napi::Value f(const Napi::CallbackInfo&)` with error translation.
#define SIMCLR_GUARD(info, ...) ::simclr::Guarded((info).Env(), [&]() -> Napi::Value { __VA_ARGS__ })

// Runs `work` on the libuv pool and resolves a promise with `toJs(result)` on the JS thread. `work` must not touch JS
// values; it captures tensors by value (at::Tensor is reference counted and thread safe to copy).
template <typename Result>
Napi::Promise RunAsync(Napi::Env env, const char* name, std::function<Result()> work,
                       std::function<Napi::Value(Napi::Env, Result&)> toJs) {
  class Worker : public Napi::AsyncWorker {
   public:
    Worker(Napi::Env env, const char* name, std::function<Result()> work, std::function<Napi::Value(Napi::Env, Result&)> toJs)
        : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)),
          toJs_(std::move(toJs)) {}
    Napi::Promise Promise() { return deferred_.Promise(); }

   protected:
    void Execute() override {
      try {
        result_ = std::make_unique<Result>(work_());
      } catch (...) {
        failed_ = true;
        DescribeException(std::current_exception(), &kind_, &message_);
      }
    }
    void OnOK() override {
      Napi::Env env = Env();
      if (failed_) {
        deferred_.Reject(MakeJsError(env, kind_, message_).Value());
        return;
      }
      try {
        deferred_.Resolve(Guarded(env, [&] { return toJs_(env, *result_); }));
      } catch (const Napi::Error& e) {
        deferred_.Reject(e.Value());
      }
    }

   private:
    Napi::Promise::Deferred deferred_;
    std::function<Result()> work_;
    std::function<Napi::Value(Napi::Env, Result&)> toJs_;
    std::unique_ptr<Result> result_;
    bool failed_ = false;
    ErrorKind kind_ = ErrorKind::kError;
    std::string message_;
  };
  auto* worker = new Worker(env, name, std::move(work), std::move(toJs));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// ---- argument readers: each throws TypeError/RangeError naming the argument ----
std::string TypeName(const Napi::Value& value);
double ArgNumber(const Napi::CallbackInfo& info, size_t index, const char* name);
double ArgFiniteNumber(const Napi::Value& value, const std::string& name);
int64_t ArgInt(const Napi::Value& value, const std::string& name, int64_t min, int64_t max);
bool ArgBool(const Napi::Value& value, const std::string& name);
std::string ArgString(const Napi::Value& value, const std::string& name);
std::vector<int64_t> ArgShape(const Napi::Value& value, const std::string& name);
at::Device ArgDevice(const Napi::Value& value, const std::string& name);
at::ScalarType ArgDtype(const Napi::Value& value, const std::string& name);
// Reads a property of an options object, or returns undefined when `options` is undefined.
Napi::Value Option(const Napi::Value& options, const char* key);

std::string DtypeName(at::ScalarType type);
std::string DeviceName(const at::Device& device);
// Throws a clear error when `device` is CUDA and this LibTorch or machine has none.
void CheckDeviceAvailable(const at::Device& device);

// ---- module registration: each binding file adds its exports from a static initializer ----
using ModuleInit = void (*)(Napi::Env env, Napi::Object exports);
struct ModuleRegistration {
  ModuleRegistration(const char* name, ModuleInit init);
};
#define SIMCLR_MODULE(name, init) static ::simclr::ModuleRegistration simclr_module_##name(#name, init)

}  // namespace simclr
