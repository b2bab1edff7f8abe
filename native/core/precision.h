// Mixed precision and memory format: the choices a training step or a forward pass runs with, the autocast region
// (ATen's own, as `with torch.autocast(device, dtype)`), and the dynamic loss scaler that float16 needs.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <string>
#include <vector>

namespace simclr {

// fp32: everything in float32. bf16 / fp16: the encoder and head run under autocast to bfloat16 / float16 (convolutions
// and matrix products in the low precision, reductions and BatchNorm statistics as autocast decides), with float32
// master weights and optimiser state; NT-Xent is always computed in float32.
enum class Precision { kFloat32, kBFloat16, kFloat16 };

// kChannelsLast stores activations and 4-D weights NHWC, which oneDNN and cuDNN run faster on some hardware; results
// are the same as kContiguous up to float rounding.
enum class MemoryFormat { kContiguous, kChannelsLast };

// The type autocast computes in for a low precision (kBFloat16 or kFloat16).
at::ScalarType LowPrecisionType(Precision precision);

// Throws c10::ValueError when `precision` cannot run on `device` (float16 needs CUDA: CPU kernels for it are slow or
// missing and there is no loss-scaling support there).
void CheckPrecision(Precision precision, const at::Device& device);

// Autocast to `precision` on `device` for the lifetime of the object (nothing for fp32). Restores the previous state
// and clears autocast's cast cache when the outermost region ends, as torch.autocast does. Thread-local, like
// autocast itself: create it on the thread that runs the forward. Precondition: CheckPrecision(precision, device)
// passed (the step and the forward pass check once, before their autocast regions).
class AutocastScope {
 public:
  AutocastScope(const at::Device& device, Precision precision);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  at::DeviceType device_type_ = at::kCPU;
  bool was_enabled_ = false;
  at::ScalarType previous_dtype_ = at::kFloat;
};

// Puts every 4-D tensor of `tensors` (a model's parameters) in `format` in place, keeping each tensor's identity so
// that optimiser references stay valid; a no-op for those already in it.
void ToMemoryFormat(const std::vector<at::Tensor>& tensors, MemoryFormat format);
at::MemoryFormat AtenFormat(MemoryFormat format);

// Dynamic loss scaling for float16 (torch.cuda.amp.GradScaler's algorithm and defaults): the loss is multiplied by
// `scale` before backward; gradients are unscaled before the update; a step whose gradients hold Inf/NaN is skipped and
// the scale halved; after 2000 good steps in a row the scale doubles.
class LossScaler {
 public:
  double scale() const { return scale_; }
  // Unscales `grads` in place; returns false (skip the update) when any is not finite, and updates the scale.
  bool UnscaleAndUpdate(const std::vector<at::Tensor>& grads);

  std::map<std::string, at::Tensor> State() const;
  void LoadState(const std::map<std::string, at::Tensor>& state);

 private:
  double scale_ = 65536.0;
  int64_t good_steps_ = 0;
};

}  // namespace simclr
