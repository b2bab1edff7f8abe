// N-API glue for core/augment.h: the views (two, or multi-crop's groups), the functional ops, the evaluation view, and
// the uint8 batch they start from. Tensors and per-sample parameter arrays are read on the JS thread; the ops run on
// the libuv pool and resolve with new Tensors.
#include "bind/args.h"
#include "bind/module.h"
#include "bind/tensor.h"
#include "bind/worker.h"
#include "core/augment.h"
#include "core/image_decode.h"
#include "core/image_resize.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace simclr {

namespace {

Napi::Promise Resolve(Napi::Env env, const char* name, std::function<at::Tensor()> work) {
  return RunAsync<at::Tensor>(env, name, std::move(work),
                              [](Napi::Env env, at::Tensor& result) { return TensorWrap::Wrap(env, result); });
}

int64_t BatchOf(const at::Tensor& images, const char* name) {
  if (images.dim() != 4) ThrowType(std::string("Expected a 4-dimensional batch of images for ") + name);
  return images.size(0);
}

// The per-view parameter arrays of `views` views per image (info[1]) and the options both entry points share.
ViewParams ReadViewParams(const Napi::CallbackInfo& info, int64_t batch, std::vector<ViewGroup> groups) {
  if (!info[1].IsObject()) ThrowType("Expected a parameters object for params but received " + TypeName(info[1]));
  ViewParams p;
  p.groups = std::move(groups);
  const int64_t n = batch * ViewsPerImage(p);
  Napi::Value params = info[1];
  p.boxes = ArgTypedArray(Option(params, "boxes"), "params.boxes", napi_float64_array, at::kDouble, 4 * n).view({n, 4});
  p.flip = ArgTypedArray(Option(params, "flip"), "params.flip", napi_uint8_array, at::kByte, n);
  p.jitter_apply = ArgTypedArray(Option(params, "jitterApply"), "params.jitterApply", napi_uint8_array, at::kByte, n);
  p.jitter_factors = ArgTypedArray(Option(params, "jitterFactors"), "params.jitterFactors", napi_float32_array, at::kFloat, 4 * n).view({n, 4});
  p.jitter_order = ArgTypedArray(Option(params, "jitterOrder"), "params.jitterOrder", napi_uint8_array, at::kByte,
                                4 * n).view({n, 4});
  p.grayscale = ArgTypedArray(Option(params, "grayscale"), "params.grayscale", napi_uint8_array, at::kByte, n);
  p.blur_sigma = ArgTypedArray(Option(params, "blurSigma"), "params.blurSigma", napi_float32_array, at::kFloat, n);
  Napi::Value options = info[2];
  p.mean = ArgTriple(Option(options, "mean"), "options.mean");
  p.stddev = ArgTriple(Option(options, "std"), "options.std");
  const bool generic = BoolOption(options, "generic", false), scalar = BoolOption(options, "scalar", false);
  if (generic && scalar) ThrowRange("Expected at most one of options.generic and options.scalar");
  p.kernels = generic ? AugmentKernels::kGeneric : scalar ? AugmentKernels::kScalar : AugmentKernels::kFast;
  // The views' type; absent: float32, what every precision can take.
  if (!Option(options, "dtype").IsUndefined()) {
    const at::ScalarType types[] = {at::kFloat, at::kBFloat16, at::kHalf};
    p.dtype = types[OneOfOption(options, "dtype", {"float32", "bfloat16", "float16"})];
  }
  return p;  // checked whole by the core (CheckViewParams), once, when the views are made
}

at::Tensor ReadImages(const Napi::CallbackInfo& info) {
  at::Tensor images = TensorWrap::FromJs(info[0], "images");
  if (images.dim() != 4 || images.size(3) != 3 || images.scalar_type() != at::kByte) {
    ThrowType("Expected a uint8 Tensor B x H x W x 3 for images but received " + DtypeName(images.scalar_type()) + " " +
              c10::str(images.sizes()));
  }
  return images;
}

// augmentViews(images: uint8 B x H x W x 3, params, options: { size, blurKernel, mean, std, device?, dtype?, generic?,
// scalar? }) -> Promise<2B x 3 x S x S of dtype (float32 when absent)>: SimCLR's two views of one size.
Napi::Value AugmentViewsJs(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    at::Tensor images = ReadImages(info);
    Napi::Value options = info[2];
    ViewGroup group{2, IntOption(options, "size", 1, 8192), IntOption(options, "blurKernel", 1, 8191)};
    ViewParams p = ReadViewParams(info, images.size(0), {group});
    at::Device device = ArgDevice(Option(options, "device"), "options.device");
    return Resolve(info.Env(), "augmentViews", [images, p, device] { return AugmentViews(images, p, device)[0]; });
  });
}

// augmentViewGroups(images, params, options: { groups: [{ views, size, blurKernel }], mean, std, device?, dtype?,
// generic?, scalar? }) -> Promise<a tensor per group, V_g * B x 3 x S_g x S_g>: multi-crop.
Napi::Value AugmentViewGroupsJs(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    at::Tensor images = ReadImages(info);
    Napi::Value options = info[2];
    Napi::Value list = Option(options, "groups");
    if (!list.IsArray()) ThrowType("Expected an array of { views, size, blurKernel } for options.groups but received " + TypeName(list));
    auto array = list.As<Napi::Array>();
    if (array.Length() < 1 || array.Length() > 16) ThrowRange("Expected 1 to 16 view groups for options.groups but received " + std::to_string(array.Length()));
    std::vector<ViewGroup> groups;
    for (uint32_t i = 0; i < array.Length(); ++i) {
      Napi::Value g = array.Get(i);
      if (!g.IsObject()) ThrowType("Expected { views, size, blurKernel } for options.groups[" + std::to_string(i) + "] but received " + TypeName(g));
      groups.push_back({IntOption(g, "views", 1, 64), IntOption(g, "size", 1, 8192), IntOption(g, "blurKernel", 1, 8191)});
    }
    ViewParams p = ReadViewParams(info, images.size(0), std::move(groups));
    at::Device device = ArgDevice(Option(options, "device"), "options.device");
    return RunAsync<std::vector<at::Tensor>>(
        info.Env(), "augmentViewGroups", [images, p, device] { return AugmentViews(images, p, device); },
        [](Napi::Env env, std::vector<at::Tensor>& views) -> Napi::Value {
          Napi::Array out = Napi::Array::New(env, views.size());
          for (uint32_t i = 0; i < views.size(); ++i) out.Set(i, TensorWrap::Wrap(env, views[i]));
          return out;
        });
  });
}

// stackImages(images: Uint8Array[], height, width) -> uint8 Tensor B x H x W x 3: the decoded RGB images of a batch,
// each copied once, straight into the batch tensor (no batch-sized typed array in between).
Napi::Value StackImagesJs(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    if (!info[0].IsArray()) ThrowType("Expected an array of Uint8Array images for images but received " + TypeName(info[0]));
    auto list = info[0].As<Napi::Array>();
    const int64_t height = ArgInt(info[1], "height", 1, 65536), width = ArgInt(info[2], "width", 1, 65536);
    const int64_t count = list.Length(), bytes = height * width * 3;
    std::vector<Napi::Uint8Array> images;
    images.reserve(count);
    for (int64_t i = 0; i < count; ++i) {
      Napi::Value image = list.Get(static_cast<uint32_t>(i));
      const std::string name = "images[" + std::to_string(i) + "]";
      if (!image.IsTypedArray() || image.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
        ThrowType("Expected a Uint8Array for " + name + " but received " + TypeName(image));
      }
      if (static_cast<int64_t>(image.As<Napi::Uint8Array>().ElementLength()) != bytes) {
        ThrowRange("Expected " + std::to_string(bytes) + " bytes (" + std::to_string(height) + " x " + std::to_string(width) +
                   " RGB) for " + name + " but received " + std::to_string(image.As<Napi::Uint8Array>().ElementLength()));
      }
      images.push_back(image.As<Napi::Uint8Array>());
    }
    at::Tensor batch = at::empty({count, height, width, 3}, at::kByte);
    uint8_t* out = batch.data_ptr<uint8_t>();
    for (int64_t i = 0; i < count; ++i) std::memcpy(out + i * bytes, images[i].Data(), bytes);
    return TensorWrap::Wrap(info.Env(), batch);
  });
}

// A Node Buffer that owns `bytes` (no copy): the vector moves to the heap and is freed by the Buffer's finalizer.
Napi::Value BufferOf(Napi::Env env, std::vector<uint8_t>& bytes) {
  if (bytes.empty()) return Napi::Buffer<uint8_t>::New(env, 0);
  auto* owned = new std::vector<uint8_t>(std::move(bytes));
  return Napi::Buffer<uint8_t>::New(env, owned->data(), owned->size(),
                                    [](Napi::Env, uint8_t*, std::vector<uint8_t>* v) { delete v; }, owned);
}

constexpr int64_t kMaxOutputPixels = int64_t(1) << 28;

// resizeImage(pixels: Uint8Array (height x width x 3), width, height, outWidth, outHeight) -> Promise<Buffer>: the
// image resized as PIL's BILINEAR does (core/image_resize.h), off the JS thread.
Napi::Value ResizeImageJs(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    const int64_t width = ArgInt(info[1], "width", 1, 65536), height = ArgInt(info[2], "height", 1, 65536);
    const int64_t out_width = ArgInt(info[3], "outWidth", 1, 65536), out_height = ArgInt(info[4], "outHeight", 1, 65536);
    std::vector<uint8_t> pixels = ArgBytes(info[0], "pixels");
    if (static_cast<int64_t>(pixels.size()) != width * height * 3) {
      ThrowRange("Expected " + std::to_string(width * height * 3) + " bytes (" + std::to_string(height) + " x " +
                 std::to_string(width) + " RGB) for pixels but received " + std::to_string(pixels.size()));
    }
    if (out_width * out_height > kMaxOutputPixels) ThrowRange("Expected an output of at most 2^28 pixels");
    auto input = std::make_shared<std::vector<uint8_t>>(std::move(pixels));
    return RunAsync<std::vector<uint8_t>>(
        info.Env(), "resizeImage",
        [input, width, height, out_width, out_height] {
          std::vector<uint8_t> out(out_width * out_height * 3);
          ResizeBilinearAntialias(input->data(), height, width, out.data(), out_height, out_width);
          return out;
        },
        BufferOf);
  });
}

struct DecodedJpeg {
  JpegResult result = JpegResult::kUnsupported;
  std::vector<uint8_t> pixels;
  int64_t width = 0, height = 0;
};

constexpr int64_t kMaxFileBytes = int64_t(1) << 30;

// The whole file at `path`, read in the decoding job itself (one pool job per image; fs.promises.readFile takes four:
// open, stat, read, close). A missing file says so in the words the bad-file policy uses.
std::vector<uint8_t> ReadWholeFile(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!file) throw std::runtime_error(errno == ENOENT ? "the file is missing" : std::strerror(errno));
  std::vector<uint8_t> bytes;
  uint8_t chunk[1 << 16];
  size_t got;
  while ((got = std::fread(chunk, 1, sizeof chunk, file.get())) > 0) {
    if (static_cast<int64_t>(bytes.size() + got) > kMaxFileBytes) throw std::runtime_error("the file is larger than 1 GiB");
    bytes.insert(bytes.end(), chunk, chunk + got);
  }
  if (std::ferror(file.get())) throw std::runtime_error(std::strerror(errno));
  return bytes;
}

// decodeJpeg(source: Uint8Array | path string, outWidth, outHeight) -> Promise<{ image: Buffer, width, height } | null>:
// the JPEG (the bytes, or the file read in the same job) decoded to RGB (core/image_decode.h) and, when outWidth x
// outHeight (both > 0) differs from its size, scaled on load as PIL's draft and resized as PIL's BILINEAR, in one job
// off the JS thread. null: not a JPEG (no SOI marker), a colour space this decoder leaves to sharp (CMYK), or an addon
// built without libjpeg. Damaged data and unreadable files reject with the reason.
Napi::Value DecodeJpegJs(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    const int64_t out_width = ArgInt(info[1], "outWidth", 0, 65536), out_height = ArgInt(info[2], "outHeight", 0, 65536);
    if ((out_width == 0) != (out_height == 0)) ThrowRange("Expected outWidth and outHeight both 0 or both positive");
    const bool from_file = info[0].IsString();
    const std::string path = from_file ? ArgString(info[0], "source") : std::string();
    auto bytes = std::make_shared<std::vector<uint8_t>>(from_file ? std::vector<uint8_t>() : ArgBytes(info[0], "source"));
    return RunAsync<DecodedJpeg>(
        info.Env(), "decodeJpeg",
        [bytes, from_file, path, out_width, out_height] {
          if (from_file) *bytes = ReadWholeFile(path);
          DecodedJpeg d;
          if (from_file && (bytes->size() < 3 || (*bytes)[0] != 0xff || (*bytes)[1] != 0xd8 || (*bytes)[2] != 0xff)) {
            return d;  // not a JPEG whatever its name says: the caller decodes it another way
          }
          std::string error;
          d.result = DecodeJpeg(bytes->data(), bytes->size(), out_width, out_height, kMaxOutputPixels, &d.pixels,
                                &d.width, &d.height, &error);
          if (d.result == JpegResult::kFailed) throw std::runtime_error(error);
          if (d.result == JpegResult::kDecoded && out_width > 0 && (d.width != out_width || d.height != out_height)) {
            std::vector<uint8_t> out(out_width * out_height * 3);
            ResizeBilinearAntialias(d.pixels.data(), d.height, d.width, out.data(), out_height, out_width);
            d.pixels = std::move(out);
            d.width = out_width;
            d.height = out_height;
          }
          return d;
        },
        [](Napi::Env env, DecodedJpeg& d) -> Napi::Value {
          if (d.result != JpegResult::kDecoded) return env.Null();
          Napi::Object out = Napi::Object::New(env);
          out.Set("image", BufferOf(env, d.pixels));
          out.Set("width", Napi::Number::New(env, static_cast<double>(d.width)));
          out.Set("height", Napi::Number::New(env, static_cast<double>(d.height)));
          return out;
        });
  });
}

// resizedCrop(images, boxes: Float64Array(4N), size: [h, w], flip?: Uint8Array(N))
Napi::Value ResizedCropJs(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    at::Tensor images = TensorWrap::FromJs(info[0], "images");
    const int64_t n = BatchOf(images, "images");
    at::Tensor boxes = ArgTypedArray(info[1], "boxes", napi_float64_array, at::kDouble, 4 * n).view({n, 4});
    std::vector<int64_t> size = ArgShape(info[2], "size");
    if (size.size() != 2 || size[0] < 1 || size[1] < 1 || size[0] > 8192 || size[1] > 8192) {
      ThrowRange("Expected [height, width] between 1 and 8192 for size");
    }
    at::Tensor flip;
    if (!info[3].IsUndefined()) flip = ArgTypedArray(info[3], "flip", napi_uint8_array, at::kByte, n);
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
    at::Tensor factors = ArgTypedArray(info[1], "factors", napi_float32_array, at::kFloat, n);
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
    at::Tensor sigmas = ArgTypedArray(info[2], "sigmas", napi_float32_array, at::kFloat, n);
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

// evalView(images: uint8 B x H x W x 3, options: { size, mean, std, device }) -> Promise<float32 B x 3 x S x S>
Napi::Value EvalViewJs(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    at::Tensor images = TensorWrap::FromJs(info[0], "images");
    if (images.dim() != 4 || images.size(3) != 3 || images.scalar_type() != at::kByte || images.size(0) == 0) {
      ThrowType("Expected a non-empty uint8 Tensor B x H x W x 3 for images but received " + DtypeName(images.scalar_type()) +
                " " + c10::str(images.sizes()));
    }
    const Napi::Value options = info[1];
    const int64_t size = IntOption(options, "size", 1, 8192);
    const std::array<double, 3> mean = ArgTriple(Option(options, "mean"), "options.mean");
    const std::array<double, 3> stddev = ArgTriple(Option(options, "std"), "options.std");
    for (double s : stddev) {
      if (s == 0) ThrowRange("Expected non-zero values for options.std but received 0");
    }
    at::Device device = ArgDevice(Option(options, "device"), "options.device");
    return Resolve(info.Env(), "simclr.evalView", [=] { return EvalView(images, size, mean, stddev, device); });
  });
}

void InitAugmentModule(Napi::Env env, Napi::Object exports) {
  exports.Set("augmentViews", Napi::Function::New<AugmentViewsJs>(env, "augmentViews"));
  exports.Set("augmentViewGroups", Napi::Function::New<AugmentViewGroupsJs>(env, "augmentViewGroups"));
  exports.Set("stackImages", Napi::Function::New<StackImagesJs>(env, "stackImages"));
  exports.Set("resizeImage", Napi::Function::New<ResizeImageJs>(env, "resizeImage"));
  exports.Set("decodeJpeg", Napi::Function::New<DecodeJpegJs>(env, "decodeJpeg"));
  exports.Set("jpegDecoder", Napi::Boolean::New(env, JpegDecoderAvailable()));
  exports.Set("resizedCrop", Napi::Function::New<ResizedCropJs>(env, "resizedCrop"));
  exports.Set("hflip", Napi::Function::New<HorizontalFlipJs>(env, "hflip"));
  exports.Set("adjustBrightness", Napi::Function::New<PerSampleOpJs<AdjustBrightness>>(env, "adjustBrightness"));
  exports.Set("adjustContrast", Napi::Function::New<PerSampleOpJs<AdjustContrast>>(env, "adjustContrast"));
  exports.Set("adjustSaturation", Napi::Function::New<PerSampleOpJs<AdjustSaturation>>(env, "adjustSaturation"));
  exports.Set("adjustHue", Napi::Function::New<PerSampleOpJs<AdjustHue>>(env, "adjustHue"));
  exports.Set("rgbToGrayscale", Napi::Function::New<RgbToGrayscaleJs>(env, "rgbToGrayscale"));
  exports.Set("gaussianBlur", Napi::Function::New<GaussianBlurJs>(env, "gaussianBlur"));
  exports.Set("normalize", Napi::Function::New<NormalizeJs>(env, "normalize"));
  exports.Set("prepareImages", Napi::Function::New<EvalViewJs>(env, "prepareImages"));
}

}  // namespace

SIMCLR_MODULE(augment, InitAugmentModule);

}  // namespace simclr
