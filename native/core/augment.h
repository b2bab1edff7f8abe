// Batched image augmentation kernels (ATen only, any device). Every op takes a batch `N x 3 x H x W` of floating
// images in [0, 1] and per-sample parameters, and matches the torchvision.transforms.functional op of the same name
// applied image by image (see test/augment.test.ts for the measured tolerances).
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <cstdint>

namespace simclr {

// Crops box n = (top, left, height, width) of image n (pixels, inside the image) and resizes it bilinearly to
// out_h x out_w (align_corners=False, no antialias), mirroring it left-right where flip[n] != 0. One sampling pass:
// torchvision's resized_crop followed by hflip. `boxes`: N x 4 double (CPU); `flip`: N uint8 (CPU) or undefined.
at::Tensor ResizedCrop(const at::Tensor& images, const at::Tensor& boxes, const at::Tensor& flip, int64_t out_h,
                       int64_t out_w);

// Mirrors every image left-right.
at::Tensor HorizontalFlip(const at::Tensor& images);

// Per-sample factors (N floats, CPU or on the images' device), as torchvision's adjust_* with factor[n] for image n.
at::Tensor AdjustBrightness(const at::Tensor& images, const at::Tensor& factors);
at::Tensor AdjustContrast(const at::Tensor& images, const at::Tensor& factors);
at::Tensor AdjustSaturation(const at::Tensor& images, const at::Tensor& factors);
// factors[n] in [-0.5, 0.5]: the hue shift as a fraction of the colour circle.
at::Tensor AdjustHue(const at::Tensor& images, const at::Tensor& factors);

// ITU-R 601-2 luma (0.2989 R + 0.587 G + 0.114 B), with `channels` (1 or 3) output channels.
at::Tensor RgbToGrayscale(const at::Tensor& images, int64_t channels);

// Gaussian blur with an odd `kernel_size` and per-sample sigma (N floats > 0), reflect padding, as torchvision's
// gaussian_blur(img, [k, k], [sigma, sigma]).
at::Tensor GaussianBlur(const at::Tensor& images, int64_t kernel_size, const at::Tensor& sigmas);

// (image - mean[c]) / std[c] per channel.
at::Tensor Normalize(const at::Tensor& images, const std::array<double, 3>& mean, const std::array<double, 3>& stddev);

// The parameters of N = 2B views, all CPU tensors with N rows. View v of image i is row v * B + i.
struct ViewParams {
  at::Tensor boxes;          // N x 4 double: crop top, left, height, width in input pixels
  at::Tensor flip;           // N uint8: 1 = mirror left-right
  at::Tensor jitter_apply;   // N uint8: 1 = apply colour jitter
  at::Tensor jitter_factors; // N x 4 float: brightness, contrast, saturation, hue
  at::Tensor jitter_order;   // N x 4 uint8: a permutation of 0..3 (indices into jitter_factors' columns)
  at::Tensor grayscale;      // N uint8: 1 = convert to grayscale (3 channels)
  at::Tensor blur_sigma;     // N float: > 0 = blur with this sigma, 0 = no blur
  int64_t blur_kernel = 0;   // odd kernel size used for every blurred view
  int64_t out_size = 0;      // views are out_size x out_size
  std::array<double, 3> mean{0, 0, 0};
  std::array<double, 3> stddev{1, 1, 1};
  // false: on the CPU, AugmentViews uses the fused per-view kernels of augment_cpu.cc; true: the ATen ops it uses on
  // other devices (so tests can check that path on a CPU-only machine).
  bool generic_ops = false;
};

// The SimCLR two-view augmentation of a uint8 batch `B x H x W x 3` (RGB, any device): crop + resize + flip, colour
// jitter in per-view order, grayscale, blur, all in [0, 1], then normalisation. Runs on `device`; returns
// `2B x 3 x S x S` float32 where rows i and i + B are the two views of image i.
at::Tensor AugmentViews(const at::Tensor& images, const ViewParams& params, const at::Device& device);

// The CPU path of AugmentViews (params already checked): each view is built whole while in cache, views in parallel.
// Needs whole-pixel boxes.
at::Tensor AugmentViewsCpu(const at::Tensor& images, const ViewParams& params);

// The deterministic view used for evaluation and embedding: each whole image of a uint8 batch `B x H x W x 3` resized
// to size x size and normalised, the same resampling and normalisation as the training views without the random
// parts. Runs on `device`; returns `B x 3 x size x size` float32.
at::Tensor EvalView(const at::Tensor& images, int64_t size, const std::array<double, 3>& mean,
                    const std::array<double, 3>& stddev, const at::Device& device);

// Throws c10::ValueError unless `params` describe the 2B views of a batch of B images.
void CheckViewParams(const ViewParams& params, int64_t batch);

}  // namespace simclr
