// The deterministic view used for evaluation and embedding: the whole image resized to size x size and normalised,
// the same resampling and normalisation as the training views without the random parts.
#include "augment.h"
#include "common.h"
#include "tensor.h"

namespace simclr {
namespace {

std::array<double, 3> ArgTriple(const Napi::Value& value, const std::string& name) {
  if (!value.IsArray() || value.As<Napi::Array>().Length() != 3) ThrowType("Expected an array of 3 numbers for " + name);
  auto array = value.As<Napi::Array>();
  std::array<double, 3> out{};
  for (uint32_t i = 0; i < 3; ++i) out[i] = ArgFiniteNumber(array.Get(i), name + "[" + std::to_string(i) + "]");
  return out;
}

// prepareImages(images: uint8 B x H x W x 3, options: { size, mean, std, device }) -> Promise<float32 B x 3 x S x S>
Napi::Value PrepareImagesJs(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    at::Tensor images = TensorWrap::FromJs(info[0], "images");
    if (images.dim() != 4 || images.size(3) != 3 || images.scalar_type() != at::kByte || images.size(0) == 0) {
      ThrowType("Expected a non-empty uint8 Tensor B x H x W x 3 for images");
    }
    const Napi::Value options = info[1];
    const int64_t size = ArgInt(Option(options, "size"), "options.size", 1, 8192);
    const std::array<double, 3> mean = ArgTriple(Option(options, "mean"), "options.mean");
    const std::array<double, 3> stddev = ArgTriple(Option(options, "std"), "options.std");
    for (double s : stddev) {
      if (s == 0) ThrowRange("Expected non-zero values for options.std");
    }
    at::Device device = ArgDevice(Option(options, "device"), "options.device");
    CheckDeviceAvailable(device);
    return RunAsync<at::Tensor>(info.Env(), "simclr.prepareImages",
      [=]() {
        at::Tensor x = images.to(device).permute({0, 3, 1, 2}).to(at::kFloat).div_(255);
        const int64_t n = x.size(0);
        at::Tensor boxes = at::tensor({0.0, 0.0, double(x.size(2)), double(x.size(3))}, at::kDouble).repeat({n, 1});
        bool same_size = x.size(2) == size && x.size(3) == size;
        at::Tensor resized = same_size ? x : ResizedCrop(x, boxes, at::Tensor(), size, size);
        return Normalize(resized, mean, stddev);
      },
      [](Napi::Env env, at::Tensor& out) -> Napi::Value { return TensorWrap::Wrap(env, out); });
  });
}

void InitPreprocessModule(Napi::Env env, Napi::Object exports) {
  exports.Set("prepareImages", Napi::Function::New<PrepareImagesJs>(env, "prepareImages"));
}

}  // namespace
SIMCLR_MODULE(preprocess, InitPreprocessModule);
}  // namespace simclr
