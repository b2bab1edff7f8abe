// N-API glue for augment.h: reads tensors and per-sample parameter arrays on the JS thread, runs the op on the libuv
// pool, resolves with a new Tensor.
#include <cstring>

#include "augment.h"
#include "common.h"
#include "tensor.h"

namespace simclr {

namespace {

// Copies a typed array of the given kind and element count into a CPU tensor (the JS memory may move after return).
at::Tensor ArgArray(const Napi::Value& value, const std::string& name, napi_typedarray_type kind, const char* kind_name,
                    at::ScalarType dtype, int64_t length) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != kind) {
    ThrowType("Expected a " + std::string(kind_name) + " for " + name + " but received " + TypeName(value));
  }
  auto array = value.As<Napi::TypedArray>();
  if (static_cast<int64_t>(array.ElementLength()) != length) {
    ThrowRange("Expected " + std::to_string(length) + " values in " + name + " but received " +
               std::to_string(array.ElementLength()));
  }
  at::Tensor out = at::empty({length}, dtype);
  if (length > 0) {
    const auto* data = static_cast<const uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset();
    std::memcpy(out.data_ptr(), data, array.ByteLength());
  }
  return out;
}

std::array<double, 3> ArgTriple(const Napi::Value& value, const std::string& name) {
  if (!value.IsArray() || value.As<Napi::Array>().Length() != 3) {
    ThrowType("Expected an array of 3 numbers for " + name + " but received " + TypeName(value));
  }
  auto array = value.As<Napi::Array>();
  std::array<double, 3> out{};
  for (uint32_t i = 0; i < 3; ++i) out[i] = ArgFiniteNumber(array.Get(i), name + "[" + std::to_string(i) + "]");
  return out;
}

Napi::Promise Resolve(Napi::Env env, const char* name, std::function<at::Tensor()> work) {
  return RunAsync<at::Tensor>(env, name, std::move(work),
                              [](Napi::Env env, at::Tensor& result) { return TensorWrap::Wrap(env, result); });
}

int64_t BatchOf(const at::Tensor& images, const char* name) {
  if (images.dim() != 4) ThrowType(std::string("Expected a 4-dimensional batch of images for ") + name);
  return images.size(0);
}

// augmentViews(images: uint8 B x H x W x 3, params, options: { size, blurKernel, mean, std, device?, generic? })
Napi::Value AugmentViewsJs(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    at::Tensor images = TensorWrap::FromJs(info[0], "images");
    const int64_t batch = BatchOf(images, "images");
    const int64_t n = 2 * batch;
    if (!info[1].IsObject()) ThrowType("Expected a parameters object for params but received " + TypeName(info[1]));
    Napi::Value params = info[1];
    ViewParams p;
    p.boxes = ArgArray(Option(params, "boxes"), "params.boxes", napi_float64_array, "Float64Array", at::kDouble, 4 * n).view({n, 4});
    p.flip = ArgArray(Option(params, "flip"), "params.flip", napi_uint8_array, "Uint8Array", at::kByte, n);
    p.jitter_apply = ArgArray(Option(params, "jitterApply"), "params.jitterApply", napi_uint8_array, "Uint8Array", at::kByte, n);
    p.jitter_factors = ArgArray(Option(params, "jitterFactors"), "params.jitterFactors", napi_float32_array, "Float32Array",
                                at::kFloat, 4 * n).view({n, 4});
    p.jitter_order = ArgArray(Option(params, "jitterOrder"), "params.jitterOrder", napi_uint8_array, "Uint8Array", at::kByte,
                              4 * n).view({n, 4});
    p.grayscale = ArgArray(Option(params, "grayscale"), "params.grayscale", napi_uint8_array, "Uint8Array", at::kByte, n);
    p.blur_sigma = ArgArray(Option(params, "blurSigma"), "params.blurSigma", napi_float32_array, "Float32Array", at::kFloat, n);
    Napi::Value options = info[2];
    p.out_size = ArgInt(Option(options, "size"), "options.size", 1, 8192);
    p.blur_kernel = ArgInt(Option(options, "blurKernel"), "options.blurKernel", 1, 8191);
    p.mean = ArgTriple(Option(options, "mean"), "options.mean");
    p.stddev = ArgTriple(Option(options, "std"), "options.std");
    Napi::Value generic = Option(options, "generic");
    p.generic_ops = !generic.IsUndefined() && ArgBool(generic, "options.generic");
    at::Device device = ArgDevice(Option(options, "device"), "options.device");
    CheckDeviceAvailable(device);
    CheckViewParams(p, batch);
    return Resolve(info.Env(), "augmentViews", [images, p, device] { return AugmentViews(images, p, device); });
  });
}

// resizedCrop(images, boxes: Float64Array(4N), size: [h, w], flip?: Uint8Array(N))
Napi::Value ResizedCropJs(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    at::Tensor images = TensorWrap::FromJs(info[0], "images");
    const int64_t n = BatchOf(images, "images");
    at::Tensor boxes = ArgArray(info[1], "boxes", napi_float64_array, "Float64Array", at::kDouble, 4 * n).view({n, 4});
    std::vector<int64_t> size = ArgShape(info[2], "size");
    if (size.size() != 2 || size[0] < 1 || size[1] < 1 || size[0] > 8192 || size[1] > 8192) {
      ThrowRange("Expected [height, width] between 1 and 8192 for size");
    }
    at::Tensor flip;
    if (!info[3].IsUndefined()) flip = ArgArray(info[3], "flip", napi_uint8_array, "Uint8Array", at::kByte, n);
    return Resolve(info.Env(), "resizedCrop", [=] { return ResizedCrop(images, boxes, flip, size[0], size[1]); });
  });
}

Napi::Value HorizontalFlipJs(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    at::Tensor images = TensorWrap::FromJs(info[0], "images");
    return Resolve(info.Env(), "hflip", [=] { return HorizontalFlip(images); });
  });
}

template <at::Tensor (*Op)(const at::Tensor&, const at::Tensor&)>
Napi::Value PerSampleOpJs(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    at::Tensor images = TensorWrap::FromJs(info[0], "images");
    const int64_t n = BatchOf(images, "images");
    at::Tensor factors = ArgArray(info[1], "factors", napi_float32_array, "Float32Array", at::kFloat, n);
    return Resolve(info.Env(), "adjust", [=] { return Op(images, factors); });
  });
}

Napi::Value RgbToGrayscaleJs(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    at::Tensor images = TensorWrap::FromJs(info[0], "images");
    int64_t channels = ArgInt(info[1], "channels", 1, 3);
    return Resolve(info.Env(), "rgbToGrayscale", [=] { return RgbToGrayscale(images, channels); });
  });
}

Napi::Value GaussianBlurJs(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    at::Tensor images = TensorWrap::FromJs(info[0], "images");
    const int64_t n = BatchOf(images, "images");
    int64_t kernel_size = ArgInt(info[1], "kernelSize", 1, 8191);
    at::Tensor sigmas = ArgArray(info[2], "sigmas", napi_float32_array, "Float32Array", at::kFloat, n);
    return Resolve(info.Env(), "gaussianBlur", [=] { return GaussianBlur(images, kernel_size, sigmas); });
  });
}

Napi::Value NormalizeJs(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    at::Tensor images = TensorWrap::FromJs(info[0], "images");
    std::array<double, 3> mean = ArgTriple(info[1], "mean");
    std::array<double, 3> stddev = ArgTriple(info[2], "std");
    return Resolve(info.Env(), "normalize", [=] { return Normalize(images, mean, stddev); });
  });
}

void InitAugmentModule(Napi::Env env, Napi::Object exports) {
  exports.Set("augmentViews", Napi::Function::New<AugmentViewsJs>(env, "augmentViews"));
  exports.Set("resizedCrop", Napi::Function::New<ResizedCropJs>(env, "resizedCrop"));
  exports.Set("hflip", Napi::Function::New<HorizontalFlipJs>(env, "hflip"));
  exports.Set("adjustBrightness", Napi::Function::New<PerSampleOpJs<AdjustBrightness>>(env, "adjustBrightness"));
  exports.Set("adjustContrast", Napi::Function::New<PerSampleOpJs<AdjustContrast>>(env, "adjustContrast"));
  exports.Set("adjustSaturation", Napi::Function::New<PerSampleOpJs<AdjustSaturation>>(env, "adjustSaturation"));
  exports.Set("adjustHue", Napi::Function::New<PerSampleOpJs<AdjustHue>>(env, "adjustHue"));
  exports.Set("rgbToGrayscale", Napi::Function::New<RgbToGrayscaleJs>(env, "rgbToGrayscale"));
  exports.Set("gaussianBlur", Napi::Function::New<GaussianBlurJs>(env, "gaussianBlur"));
  exports.Set("normalize", Napi::Function::New<NormalizeJs>(env, "normalize"));
}

}  // namespace

SIMCLR_MODULE(augment, InitAugmentModule);

}  // namespace simclr
