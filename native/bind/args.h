// Reading JS arguments into C++ values. Every reader throws a TypeError (wrong type) or RangeError (wrong value) that
// names the argument and says what it received, in one wording: "Expected an integer between 1 and 8192 for
// options.size but received -3 of type number" (numbers written as JavaScript writes them, as src/errors.ts does).
#pragma once

#include <napi.h>

#include <ATen/ATen.h>

#include <array>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "bind/errors.h"
#include "core/precision.h"

namespace simclr {

std::string TypeName(const Napi::Value& value);

// ---- positional arguments ----
double ArgFiniteNumber(const Napi::Value& value, const std::string& name);
int64_t ArgInt(const Napi::Value& value, const std::string& name, int64_t min, int64_t max);
bool ArgBool(const Napi::Value& value, const std::string& name);
std::string ArgString(const Napi::Value& value, const std::string& name);
std::vector<int64_t> ArgShape(const Napi::Value& value, const std::string& name);
// 'cpu' (or undefined), 'cuda', 'cuda:<index>'. A RangeError naming the fix when this LibTorch or machine has no such
// CUDA device.
at::Device ArgDevice(const Napi::Value& value, const std::string& name);
at::ScalarType ArgDtype(const Napi::Value& value, const std::string& name);
std::array<double, 3> ArgTriple(const Napi::Value& value, const std::string& name);
// A typed array of `kind` with exactly `length` elements, copied into a new CPU tensor of `dtype` (JS memory may move
// once the call returns, so work off the JS thread never reads it).
at::Tensor ArgTypedArray(const Napi::Value& value, const std::string& name, napi_typedarray_type kind, at::ScalarType dtype,
                         int64_t length);
// A Buffer or Uint8Array, copied.
std::vector<uint8_t> ArgBytes(const Napi::Value& value, const std::string& name);

// ---- options objects ----
// The value of options[key]; undefined when `options` itself is undefined or null. TypeError when `options` is not an
// object.
Napi::Value Option(const Napi::Value& options, const char* key);

struct NumberRange {
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool exclusive_min = false;
};
inline NumberRange Above(double min) { return {min, std::numeric_limits<double>::infinity(), true}; }

// options[key] checked like the positional readers and named "options.<key>". An absent key is a TypeError: TypeScript
// owns the defaults and sends complete options. The only fallbacks are for what has no default to own: a test-only
// switch (an absent one is off) or a value the native side derives (0 for "as wide as its input").
double NumberOption(const Napi::Value& options, const char* key, NumberRange range = {});
int64_t IntOption(const Napi::Value& options, const char* key, int64_t min, int64_t max,
                  std::optional<int64_t> fallback = std::nullopt);
bool BoolOption(const Napi::Value& options, const char* key, std::optional<bool> fallback = std::nullopt);
std::string StringOption(const Napi::Value& options, const char* key);
// options[key], a string that must be one of `names`; its index in `names`. Required.
size_t OneOfOption(const Napi::Value& options, const char* key, const std::vector<std::string>& names);
// options.precision: 'fp32' | 'bf16' | 'fp16'; options.memoryFormat: 'contiguous' | 'channelsLast'. Required.
Precision PrecisionOption(const Napi::Value& options);
MemoryFormat MemoryFormatOption(const Napi::Value& options);

// ---- values for JS ----
Napi::Array StringArray(Napi::Env env, const std::vector<std::string>& strings);

// ---- names of ATen things as JS sees them ----
std::string DtypeName(at::ScalarType type);
std::string DeviceName(const at::Device& device);

}  // namespace simclr
