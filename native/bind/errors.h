// How native failures become JS errors. Argument problems are TypeError/RangeError, everything else Error; the C++
// backtrace that c10::Error::what() carries never reaches the user.
#pragma once

#include <napi.h>

#include <exception>
#include <stdexcept>
#include <string>

namespace simclr {

// The kind of JS error a failure becomes.
enum class ErrorKind { kError, kTypeError, kRangeError };

// A failure detected in the glue, carrying the JS error class it should become.
struct JsError : std::runtime_error {
  ErrorKind kind;
  JsError(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind(kind) {}
};

[[noreturn]] inline void ThrowType(const std::string& message) { throw JsError(ErrorKind::kTypeError, message); }
[[noreturn]] inline void ThrowRange(const std::string& message) { throw JsError(ErrorKind::kRangeError, message); }
[[noreturn]] inline void ThrowError(const std::string& message) { throw JsError(ErrorKind::kError, message); }

// Maps any exception to (kind, message): c10::TypeError -> TypeError, c10::ValueError/IndexError and bad_alloc ->
// RangeError, the rest -> Error.
void DescribeException(std::exception_ptr error, ErrorKind* kind, std::string* message);

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

// The body of a synchronous entry point `Napi::Value f(const Napi::CallbackInfo&)`, with error translation.
#define SIMCLR_GUARD(info, ...) ::simclr::Guarded((info).Env(), [&]() -> Napi::Value { __VA_ARGS__ })

}  // namespace simclr
