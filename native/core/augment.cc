// Batched augmentation kernels: torchvision's functional ops with one parameter per sample, written with ATen ops so
// the same code runs on CPU and CUDA.
#include "core/augment.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/device.h"

namespace simclr {

namespace {

// A small host tensor (parameters, indices, grids) in `like`'s dtype on `like`'s device. The upload to a GPU is
// asynchronous (core/device.h), so building a batch queues its kernels without waiting for the device.
at::Tensor LikeImages(const at::Tensor& host, const at::Tensor& like) {
  return UploadToDevice(host.to(like.scalar_type()), like.device());
}

void CheckImages(const at::Tensor& images, const char* op, bool rgb) {
  TORCH_CHECK_TYPE(images.defined() && images.dim() == 4, op, ": Expected a batch N x C x H x W for images but received shape ",
                   images.defined() ? images.sizes() : at::IntArrayRef{});
  TORCH_CHECK_TYPE(at::isFloatingType(images.scalar_type()), op, ": Expected floating point values in [0, 1] for images but received dtype ",
                   images.scalar_type());
  TORCH_CHECK_VALUE(!rgb || images.size(1) == 3, op, ": Expected 3 (RGB) channels for images but received ", images.size(1));
}

// Per-sample factors as an N x 1 x 1 x 1 tensor of the images' dtype on their device.
at::Tensor PerSample(const at::Tensor& images, const at::Tensor& values, const char* op) {
  TORCH_CHECK_VALUE(values.dim() == 1 && values.size(0) == images.size(0), op, ": Expected one value per image (",
                    images.size(0), ") but received shape ", values.sizes());
  return LikeImages(values, images).view({-1, 1, 1, 1});
}

at::Tensor Luma(const at::Tensor& images) {
  return (0.2989 * images.select(1, 0) + 0.587 * images.select(1, 1) + 0.114 * images.select(1, 2)).unsqueeze(1);
}

// ratio * a + (1 - ratio) * b, clamped to [0, 1]: torchvision's _blend for float images.
at::Tensor Blend(const at::Tensor& a, const at::Tensor& b, const at::Tensor& ratio) {
  return (ratio * a + (1.0 - ratio) * b).clamp_(0.0, 1.0);
}

// Source coordinates of bilinear resizing with align_corners=False (ATen's area_pixel_compute_source_index), clamped
// to the crop as torchvision's crop-then-resize does, normalised to [-1, 1] for grid_sampler with align_corners=True.
void FillAxis(float* out, int64_t out_len, double start, double length, int64_t image_len, bool reverse) {
  const double scale = length / static_cast<double>(out_len);
  for (int64_t i = 0; i < out_len; ++i) {
    double source = std::max((static_cast<double>(i) + 0.5) * scale - 0.5, 0.0);
    double pixel = std::min(start + source, start + length - 1.0);
    double normalised = image_len > 1 ? 2.0 * pixel / static_cast<double>(image_len - 1) - 1.0 : 0.0;
    out[reverse ? out_len - 1 - i : i] = static_cast<float>(normalised);
  }
}

at::Tensor RgbToHsv(const at::Tensor& images) {
  at::Tensor r = images.select(1, 0), g = images.select(1, 1), b = images.select(1, 2);
  at::Tensor maxc = std::get<0>(images.max(1));
  at::Tensor minc = std::get<0>(images.min(1));
  at::Tensor equal = maxc == minc;
  at::Tensor chroma = maxc - minc;
  at::Tensor ones = at::ones_like(maxc);
  at::Tensor saturation = chroma / at::where(equal, ones, maxc);
  at::Tensor divisor = at::where(equal, ones, chroma);
  at::Tensor rc = (maxc - r) / divisor, gc = (maxc - g) / divisor, bc = (maxc - b) / divisor;
  at::Tensor is_r = maxc == r, is_g = (maxc == g) & ~is_r, is_b = ~(maxc == g) & ~is_r;
  at::Tensor hue = is_r * (bc - gc) + is_g * (2.0 + rc - bc) + is_b * (4.0 + gc - rc);
  hue = at::fmod(hue / 6.0 + 1.0, 1.0);
  return at::stack({hue, saturation, maxc}, 1);
}

at::Tensor HsvToRgb(const at::Tensor& hsv) {
  at::Tensor h = hsv.select(1, 0), s = hsv.select(1, 1), v = hsv.select(1, 2);
  at::Tensor sector = at::floor(h * 6.0);
  at::Tensor f = h * 6.0 - sector;
  at::Tensor i = at::remainder(sector.to(at::kInt), 6);
  at::Tensor p = (v * (1.0 - s)).clamp_(0.0, 1.0);
  at::Tensor q = (v * (1.0 - s * f)).clamp_(0.0, 1.0);
  at::Tensor t = (v * (1.0 - s * (1.0 - f))).clamp_(0.0, 1.0);
  // Channel c of sector k is candidates[c][k], as in torchvision's _hsv2rgb.
  auto pick = [&](const std::array<at::Tensor, 6>& by_sector) {
    at::Tensor out = by_sector[5];
    for (int k = 4; k >= 0; --k) out = at::where(i == k, by_sector[k], out);
    return out;
  };
  return at::stack({pick({v, q, p, p, t, v}), pick({t, v, v, q, p, p}), pick({p, p, t, v, v, q})}, 1);
}

// Rows of `images` selected by the CPU index list, processed by `op`, written back in place.
template <typename Op>
void ApplyToRows(at::Tensor& images, const std::vector<int64_t>& rows, Op op) {
  if (rows.empty()) return;
  at::Tensor index_cpu = at::tensor(rows, at::kLong);
  at::Tensor index = UploadToDevice(index_cpu, images.device());
  images.index_copy_(0, index, op(images.index_select(0, index), index_cpu));
}

}  // namespace

at::Tensor ResizedCrop(const at::Tensor& images, const at::Tensor& boxes, const at::Tensor& flip, int64_t out_h,
                       int64_t out_w) {
  CheckImages(images, "resizedCrop", false);
  const int64_t n = images.size(0), height = images.size(2), width = images.size(3);
  TORCH_CHECK_VALUE(out_h >= 1 && out_w >= 1, "resizedCrop: Expected a positive output size but received ", out_h, " x ", out_w);
  TORCH_CHECK_VALUE(boxes.dim() == 2 && boxes.size(0) == n && boxes.size(1) == 4,
                    "resizedCrop: Expected one box (top, left, height, width) per image for boxes but received shape ",
                    boxes.sizes());
  TORCH_CHECK_VALUE(!flip.defined() || (flip.dim() == 1 && flip.size(0) == n),
                    "resizedCrop: Expected one flag per image for flip but received shape ", flip.sizes());
  at::Tensor box = boxes.to(at::kCPU, at::kDouble).contiguous();
  at::Tensor mirror = flip.defined() ? flip.to(at::kCPU, at::kByte).contiguous() : at::zeros({n}, at::kByte);
  auto b = box.accessor<double, 2>();
  auto m = mirror.accessor<uint8_t, 1>();
  at::Tensor xs = at::empty({n, out_w}, at::kFloat), ys = at::empty({n, out_h}, at::kFloat);
  for (int64_t k = 0; k < n; ++k) {
    const double top = b[k][0], left = b[k][1], box_h = b[k][2], box_w = b[k][3];
    TORCH_CHECK_VALUE(std::isfinite(top) && std::isfinite(left) && box_h > 0 && box_w > 0 && top >= 0 && left >= 0 &&
                          top + box_h <= height && left + box_w <= width,
                      "resizedCrop: box ", k, " (top ", top, ", left ", left, ", height ", box_h, ", width ", box_w,
                      ") is not inside the ", height, " x ", width, " image");
    FillAxis(xs.data_ptr<float>() + k * out_w, out_w, left, box_w, width, m[k] != 0);
    FillAxis(ys.data_ptr<float>() + k * out_h, out_h, top, box_h, height, false);
  }
  at::Tensor grid_x = LikeImages(xs, images).view({n, 1, out_w, 1}).expand({n, out_h, out_w, 1});
  at::Tensor grid_y = LikeImages(ys, images).view({n, out_h, 1, 1}).expand({n, out_h, out_w, 1});
  at::Tensor grid = at::cat({grid_x, grid_y}, 3);
  // mode 0 = bilinear, padding 1 = border (coordinates are inside the crop already), align_corners = true.
  return at::grid_sampler(images.contiguous(), grid, 0, 1, true);
}

at::Tensor HorizontalFlip(const at::Tensor& images) {
  CheckImages(images, "hflip", false);
  return images.flip({3});
}

at::Tensor AdjustBrightness(const at::Tensor& images, const at::Tensor& factors) {
  CheckImages(images, "adjustBrightness", false);
  return (images * PerSample(images, factors, "adjustBrightness")).clamp_(0.0, 1.0);
}

at::Tensor AdjustContrast(const at::Tensor& images, const at::Tensor& factors) {
  CheckImages(images, "adjustContrast", true);
  at::Tensor mean = Luma(images).mean({1, 2, 3}, true);
  return Blend(images, mean, PerSample(images, factors, "adjustContrast"));
}

at::Tensor AdjustSaturation(const at::Tensor& images, const at::Tensor& factors) {
  CheckImages(images, "adjustSaturation", true);
  return Blend(images, Luma(images), PerSample(images, factors, "adjustSaturation"));
}

at::Tensor AdjustHue(const at::Tensor& images, const at::Tensor& factors) {
  CheckImages(images, "adjustHue", true);
  at::Tensor shift = PerSample(images, factors, "adjustHue").view({-1, 1, 1});
  at::Tensor hsv = RgbToHsv(images);
  at::Tensor hue = at::remainder(hsv.select(1, 0) + shift, 1.0);
  return HsvToRgb(at::stack({hue, hsv.select(1, 1), hsv.select(1, 2)}, 1));
}

at::Tensor RgbToGrayscale(const at::Tensor& images, int64_t channels) {
  CheckImages(images, "rgbToGrayscale", true);
  TORCH_CHECK_VALUE(channels == 1 || channels == 3, "rgbToGrayscale: Expected 1 or 3 for channels but received ", channels);
  at::Tensor luma = Luma(images);
  return channels == 1 ? luma : luma.expand_as(images).contiguous();
}

at::Tensor GaussianBlur(const at::Tensor& images, int64_t kernel_size, const at::Tensor& sigmas) {
  CheckImages(images, "gaussianBlur", false);
  const int64_t n = images.size(0), c = images.size(1), height = images.size(2), width = images.size(3);
  TORCH_CHECK_VALUE(kernel_size >= 1 && kernel_size % 2 == 1, "gaussianBlur: Expected a positive odd integer for the kernel "
                    "size but received ", kernel_size);
  const int64_t pad = kernel_size / 2;
  TORCH_CHECK_VALUE(pad < height && pad < width, "gaussianBlur: Expected images larger than ", pad,
                    " pixels on each side (kernel size ", kernel_size, ") but received ", height, " x ", width);
  TORCH_CHECK_VALUE(sigmas.dim() == 1 && sigmas.size(0) == n, "gaussianBlur: Expected one sigma per image (", n, ") but received shape ",
                    sigmas.sizes());
  at::Tensor sigma = sigmas.to(at::kCPU, at::kFloat).contiguous();
  const auto values = sigma.accessor<float, 1>();
  for (int64_t i = 0; i < n; ++i) {
    TORCH_CHECK_VALUE(std::isfinite(values[i]) && values[i] > 0, "gaussianBlur: Expected a finite number > 0 for sigmas[",
                      i, "] but received ", values[i]);
  }
  if (n == 0) return images.clone();
  // torchvision's _get_gaussian_kernel1d, in float32 like it, one row per image.
  const float half = static_cast<float>(kernel_size - 1) * 0.5f;
  at::Tensor x = at::linspace(-half, half, kernel_size, at::kFloat).view({1, kernel_size});
  at::Tensor pdf = at::exp(-0.5 * (x / sigma.view({n, 1})).pow(2));
  at::Tensor kernels = LikeImages(pdf / pdf.sum(1, true), images).repeat_interleave(c, 0);
  // The 2D kernel is an outer product, so blurring rows then columns with it is the same convolution.
  at::Tensor padded = at::reflection_pad2d(images, {pad, pad, pad, pad}).reshape({1, n * c, height + 2 * pad, width + 2 * pad});
  const std::vector<int64_t> unit{1, 1}, no_padding{0, 0};
  at::Tensor vertical = at::conv2d(padded, kernels.view({n * c, 1, kernel_size, 1}), at::Tensor(), unit, no_padding, unit, n * c);
  at::Tensor both = at::conv2d(vertical, kernels.view({n * c, 1, 1, kernel_size}), at::Tensor(), unit, no_padding, unit, n * c);
  return both.view({n, c, height, width});
}

at::Tensor Normalize(const at::Tensor& images, const std::array<double, 3>& mean, const std::array<double, 3>& stddev) {
  CheckImages(images, "normalize", true);
  for (double s : stddev) TORCH_CHECK_VALUE(s != 0 && std::isfinite(s), "normalize: Expected finite non-zero numbers for std but received ", s);
  at::Tensor m = LikeImages(at::tensor(std::vector<double>(mean.begin(), mean.end())), images).view({1, 3, 1, 1});
  at::Tensor s = LikeImages(at::tensor(std::vector<double>(stddev.begin(), stddev.end())), images).view({1, 3, 1, 1});
  return (images - m) / s;
}

int64_t ViewsPerImage(const ViewParams& p) {
  int64_t views = 0;
  for (const ViewGroup& group : p.groups) views += group.views;
  return views;
}

void CheckViewParams(const ViewParams& p, int64_t batch) {
  TORCH_CHECK_VALUE(!p.groups.empty() && p.groups.size() <= 16, "augmentViews: Expected 1 to 16 view groups for groups but "
                    "received ", p.groups.size());
  for (const ViewGroup& g : p.groups) {
    TORCH_CHECK_VALUE(g.views >= 1 && g.views <= 64, "augmentViews: Expected 1 to 64 views for a group but received ", g.views);
    TORCH_CHECK_VALUE(g.size >= 1 && g.size <= 8192, "augmentViews: Expected an integer between 1 and 8192 for size but received ", g.size);
    TORCH_CHECK_VALUE(g.blur_kernel >= 1 && g.blur_kernel % 2 == 1 && g.blur_kernel / 2 < g.size,
                      "augmentViews: Expected an odd number smaller than twice the size (", g.size,
                      ") for blurKernel but received ", g.blur_kernel);
  }
  TORCH_CHECK_TYPE(p.dtype == at::kFloat || p.dtype == at::kBFloat16 || p.dtype == at::kHalf,
                   "augmentViews: views are float32, bfloat16 or float16, not ", p.dtype);
  const int64_t views = ViewsPerImage(p), n = views * batch;
  auto rows = [&](const at::Tensor& t, int64_t cols, at::ScalarType type, const char* name) {
    TORCH_CHECK_VALUE(t.defined() && t.device().is_cpu() && t.scalar_type() == type &&
                          (cols == 0 ? t.dim() == 1 : t.dim() == 2 && t.size(1) == cols) && t.size(0) == n,
                      "augmentViews: Expected ", n, cols ? " rows" : " values", " (", batch, " images of ", views,
                      " views) for params.", name, " but received ", t.defined() ? t.sizes() : at::IntArrayRef{});
  };
  rows(p.boxes, 4, at::kDouble, "boxes");
  rows(p.flip, 0, at::kByte, "flip");
  rows(p.jitter_apply, 0, at::kByte, "jitterApply");
  rows(p.jitter_factors, 4, at::kFloat, "jitterFactors");
  rows(p.jitter_order, 4, at::kByte, "jitterOrder");
  rows(p.grayscale, 0, at::kByte, "grayscale");
  rows(p.blur_sigma, 0, at::kFloat, "blurSigma");
  for (int c = 0; c < 3; ++c) {
    TORCH_CHECK_VALUE(std::isfinite(p.mean[c]) && std::isfinite(p.stddev[c]) && p.stddev[c] != 0,
                      "augmentViews: Expected finite numbers for mean and finite non-zero ones for std but received ",
                      p.mean[c], " and ", p.stddev[c]);
  }
  auto order = p.jitter_order.accessor<uint8_t, 2>();
  auto factors = p.jitter_factors.accessor<float, 2>();
  auto sigma = p.blur_sigma.accessor<float, 1>();
  for (int64_t k = 0; k < n; ++k) {
    int seen = 0;
    for (int j = 0; j < 4; ++j) seen |= order[k][j] < 4 ? 1 << order[k][j] : 16;
    TORCH_CHECK_VALUE(seen == 15, "augmentViews: jitterOrder row ", k, " is not a permutation of 0, 1, 2, 3");
    for (int j = 0; j < 3; ++j) {
      TORCH_CHECK_VALUE(std::isfinite(factors[k][j]) && factors[k][j] >= 0,
                        "augmentViews: Expected finite numbers >= 0 for the brightness, contrast and saturation "
                        "factors but received ", factors[k][j]);
    }
    TORCH_CHECK_VALUE(factors[k][3] >= -0.5f && factors[k][3] <= 0.5f, "augmentViews: Expected numbers in [-0.5, 0.5] for the hue factors but received ", factors[k][3]);
    TORCH_CHECK_VALUE(std::isfinite(sigma[k]) && sigma[k] >= 0, "augmentViews: Expected finite numbers >= 0 for blurSigma but received ", sigma[k]);
  }
}

namespace {

// One group of views with batched ATen ops on the device of `source` (the uint8 batch, uploaded once for all groups):
// rows [first, first + views * batch) of the parameters.
at::Tensor AugmentGroupGeneric(const at::Tensor& source, const ViewParams& all, const ViewGroup& group, int64_t first) {
  const at::Tensor& images = source;
  const at::Device device = source.device();
  const int64_t batch = images.size(0), size = group.size, n = group.views * batch;
  auto rows = [&](const at::Tensor& t) { return t.slice(0, first, first + n); };
  const at::Tensor boxes = rows(all.boxes), flip = rows(all.flip), jitter_apply = rows(all.jitter_apply);
  const at::Tensor jitter_factors = rows(all.jitter_factors), jitter_order = rows(all.jitter_order);
  const at::Tensor grayscale = rows(all.grayscale), blur_sigma = rows(all.blur_sigma);
  at::Tensor views = at::empty({n, 3, size, size}, at::TensorOptions().dtype(at::kFloat).device(device));
  // Converting a few images at a time keeps the float copy of the input small and in cache.
  const int64_t chunk = 32;
  for (int64_t start = 0; start < batch; start += chunk) {
    const int64_t end = std::min(batch, start + chunk);
    at::Tensor floats = source.slice(0, start, end).permute({0, 3, 1, 2}).to(at::kFloat).contiguous().div_(255.0);
    for (int64_t view = 0; view < group.views; ++view) {
      const int64_t from = view * batch + start, to = view * batch + end;
      views.slice(0, from, to).copy_(ResizedCrop(floats, boxes.slice(0, from, to), flip.slice(0, from, to), size, size));
    }
  }
  auto apply = jitter_apply.accessor<uint8_t, 1>();
  auto order = jitter_order.accessor<uint8_t, 2>();
  // Colour jitter in each view's own order: at step s, every view whose s-th op is `op` gets it, so each op runs
  // once per step on just the views that need it.
  for (int step = 0; step < 4; ++step) {
    for (int op = 0; op < 4; ++op) {
      std::vector<int64_t> selected;
      for (int64_t k = 0; k < n; ++k) {
        if (apply[k] && order[k][step] == op) selected.push_back(k);
      }
      ApplyToRows(views, selected, [&](const at::Tensor& sub, const at::Tensor& index) {
        at::Tensor factor = jitter_factors.index_select(0, index).select(1, op);
        switch (op) {
          case 0: return AdjustBrightness(sub, factor);
          case 1: return AdjustContrast(sub, factor);
          case 2: return AdjustSaturation(sub, factor);
          default: return AdjustHue(sub, factor);
        }
      });
    }
  }
  auto gray = grayscale.accessor<uint8_t, 1>();
  auto sigma = blur_sigma.accessor<float, 1>();
  std::vector<int64_t> gray_rows, blur_rows;
  for (int64_t k = 0; k < n; ++k) {
    if (gray[k]) gray_rows.push_back(k);
    if (sigma[k] > 0) blur_rows.push_back(k);
  }
  ApplyToRows(views, gray_rows, [](const at::Tensor& sub, const at::Tensor&) { return RgbToGrayscale(sub, 3); });
  ApplyToRows(views, blur_rows, [&](const at::Tensor& sub, const at::Tensor& index) {
    return GaussianBlur(sub, group.blur_kernel, blur_sigma.index_select(0, index));
  });
  // In place: the views are the biggest tensor here.
  at::Tensor mean = LikeImages(at::tensor(std::vector<double>(all.mean.begin(), all.mean.end())), views).view({1, 3, 1, 1});
  at::Tensor stddev = LikeImages(at::tensor(std::vector<double>(all.stddev.begin(), all.stddev.end())), views).view({1, 3, 1, 1});
  views.sub_(mean).div_(stddev);
  return all.dtype == at::kFloat ? views : views.to(all.dtype);
}

}  // namespace

std::vector<at::Tensor> AugmentViews(const at::Tensor& images, const ViewParams& p, const at::Device& device) {
  TORCH_CHECK_TYPE(images.dim() == 4 && images.size(3) == 3 && images.scalar_type() == at::kByte,
                   "augmentViews: Expected a uint8 Tensor B x H x W x 3 (RGB) for images but received ",
                   images.scalar_type(), " ", images.sizes());
  const int64_t batch = images.size(0);
  CheckViewParams(p, batch);  // box bounds are checked by ResizedCrop and AugmentViewsCpu
  if (device.is_cpu() && p.kernels != AugmentKernels::kGeneric) {
    if (p.dtype == at::kHalf) {  // float16 is a CUDA precision: the CPU kernels write float32 or bfloat16 only
      ViewParams as_float = p;
      as_float.dtype = at::kFloat;
      std::vector<at::Tensor> views = AugmentViewsCpu(images.to(at::kCPU), as_float, p.kernels == AugmentKernels::kFast && AugmentCpuHasAvx2());
      for (at::Tensor& v : views) v = v.to(at::kHalf);
      return views;
    }
    return AugmentViewsCpu(images.to(at::kCPU), p, p.kernels == AugmentKernels::kFast && AugmentCpuHasAvx2());
  }
  std::vector<at::Tensor> out;
  int64_t first = 0;
  // The uint8 batch crosses to the device once (asynchronously, from pinned memory, on a GPU).
  const at::Tensor source = UploadToDevice(images, device);
  for (const ViewGroup& group : p.groups) {
    out.push_back(AugmentGroupGeneric(source, p, group, first));
    first += group.views * batch;
  }
  return out;
}

at::Tensor EvalView(const at::Tensor& images, int64_t size, const std::array<double, 3>& mean,
                    const std::array<double, 3>& stddev, const at::Device& device) {
  TORCH_CHECK_TYPE(images.dim() == 4 && images.size(3) == 3 && images.scalar_type() == at::kByte && images.size(0) > 0,
                   "Expected a non-empty uint8 Tensor B x H x W x 3 for images but received ", images.scalar_type(), " ",
                   images.sizes());
  TORCH_CHECK_VALUE(size >= 1 && size <= 8192, "Expected an integer between 1 and 8192 for size but received ", size);
  at::Tensor x = UploadToDevice(images, device).permute({0, 3, 1, 2}).to(at::kFloat).div_(255);
  if (x.size(2) != size || x.size(3) != size) {
    at::Tensor boxes = at::tensor({0.0, 0.0, double(x.size(2)), double(x.size(3))}, at::kDouble).repeat({x.size(0), 1});
    x = ResizedCrop(x, boxes, at::Tensor(), size, size);
  }
  return Normalize(x, mean, stddev);
}

}  // namespace simclr
