#include "core/precision.h"

#include <ATen/autocast_mode.h>
#include <c10/core/GradMode.h>
#include <torch/version.h>

#include <cmath>

// torch 2.4 replaced the per-device autocast functions (set_cpu_enabled, set_autocast_cpu_dtype, ...) by ones that take
// the device type.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define SIMCLR_AUTOCAST_BY_DEVICE_TYPE 1
#endif

namespace simclr {

at::ScalarType LowPrecisionType(Precision precision) {
  return precision == Precision::kFloat16 ? at::kHalf : at::kBFloat16;
}

namespace {

bool AutocastEnabled(at::DeviceType device) {
#ifdef SIMCLR_AUTOCAST_BY_DEVICE_TYPE
  return at::autocast::is_autocast_enabled(device);
#else
  return device == at::kCUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

void SetAutocastEnabled(at::DeviceType device, bool enabled) {
#ifdef SIMCLR_AUTOCAST_BY_DEVICE_TYPE
  at::autocast::set_autocast_enabled(device, enabled);
#else
  if (device == at::kCUDA) at::autocast::set_enabled(enabled);
  else at::autocast::set_cpu_enabled(enabled);
#endif
}

at::ScalarType AutocastDtype(at::DeviceType device) {
#ifdef SIMCLR_AUTOCAST_BY_DEVICE_TYPE
  return at::autocast::get_autocast_dtype(device);
#else
  return device == at::kCUDA ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
#endif
}

void SetAutocastDtype(at::DeviceType device, at::ScalarType dtype) {
#ifdef SIMCLR_AUTOCAST_BY_DEVICE_TYPE
  at::autocast::set_autocast_dtype(device, dtype);
#else
  if (device == at::kCUDA) at::autocast::set_autocast_gpu_dtype(dtype);
  else at::autocast::set_autocast_cpu_dtype(dtype);
#endif
}

}  // namespace

void CheckPrecision(Precision precision, const at::Device& device) {
  TORCH_CHECK_VALUE(precision != Precision::kFloat16 || device.is_cuda(),
                    "precision 'fp16' needs a CUDA device (it trains with a dynamic loss scaler there); on the CPU use "
                    "'bf16' or 'fp32'");
  TORCH_CHECK_VALUE(device.is_cpu() || device.is_cuda(), "mixed precision is supported on CPU and CUDA devices, not ",
                    device.str());
}

AutocastScope::AutocastScope(const at::Device& device, Precision precision) {
  if (precision == Precision::kFloat32) return;
  active_ = true;
  device_type_ = device.type();
  was_enabled_ = AutocastEnabled(device_type_);
  previous_dtype_ = AutocastDtype(device_type_);
  SetAutocastEnabled(device_type_, true);
  SetAutocastDtype(device_type_, LowPrecisionType(precision));
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  SetAutocastEnabled(device_type_, was_enabled_);
  SetAutocastDtype(device_type_, previous_dtype_);
}

at::MemoryFormat AtenFormat(MemoryFormat format) {
  return format == MemoryFormat::kChannelsLast ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
}

void ToMemoryFormat(const std::vector<at::Tensor>& tensors, MemoryFormat format) {
  const at::MemoryFormat target = AtenFormat(format);
  c10::AutoGradMode no_grad(false);
  for (const at::Tensor& t : tensors) {
    if (t.dim() != 4 || t.is_contiguous(target)) continue;
    // set_data swaps the storage under the same tensor object, as nn.Module.to(memory_format=...) does.
    const_cast<at::Tensor&>(t).set_data(t.contiguous(target));
  }
}

bool LossScaler::UnscaleAndUpdate(const std::vector<at::Tensor>& grads) {
  c10::AutoGradMode no_grad(false);
  if (grads.empty()) return true;
  const double inverse = 1.0 / scale_;
  // Non-finite counts stay on the device; the one host read below is the step's only synchronisation for it.
  at::Tensor non_finite = at::zeros({}, grads.front().options().dtype(at::kFloat));
  for (const at::Tensor& g : grads) {
    g.mul_(inverse);
    non_finite.add_(g.isfinite().logical_not().any().to(at::kFloat));
  }
  if (non_finite.item<float>() > 0) {
    scale_ = std::max(scale_ * 0.5, 1.0);
    good_steps_ = 0;
    return false;
  }
  if (++good_steps_ >= 2000) {
    scale_ *= 2.0;
    good_steps_ = 0;
  }
  return true;
}

std::map<std::string, at::Tensor> LossScaler::State() const {
  return {{"amp/scale", at::tensor({scale_}, at::kDouble)},
          {"amp/good_steps", at::tensor({double(good_steps_)}, at::kDouble)}};
}

void LossScaler::LoadState(const std::map<std::string, at::Tensor>& state) {
  auto scale = state.find("amp/scale");
  auto good = state.find("amp/good_steps");
  TORCH_CHECK_VALUE(scale != state.end() && good != state.end(), "loss scaler state needs amp/scale and amp/good_steps");
  TORCH_CHECK_VALUE(scale->second.numel() == 1 && good->second.numel() == 1, "Expected one value each for amp/scale and amp/good_steps but received ", scale->second.numel(), " and ",
                    good->second.numel());
  const double s = scale->second.item<double>();
  TORCH_CHECK_VALUE(std::isfinite(s) && s >= 1, "Expected a finite number >= 1 for amp/scale but received ", s);
  scale_ = s;
  good_steps_ = static_cast<int64_t>(good->second.item<double>());
}

}  // namespace simclr
