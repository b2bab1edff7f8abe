// Batched image augmentation kernels (ATen only, any device). Every op takes a batch `N x 3 x H x W` of floating
// images in [0, 1] and per-sample parameters, and matches the torchvision.transforms.functional op of the same name
// applied image by image (see test/augment.test.ts for the measured tolerances).
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <cstdint>
#include <vector>

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

// One resolution group of views: `views` views of each image, `size` x `size` pixels, blurred with an odd kernel of
// `blur_kernel` taps. SimCLR has one group of 2 views; multi-crop (SwAV) adds a group of K small views.
struct ViewGroup {
  int64_t views = 2;
  int64_t size = 0;
  int64_t blur_kernel = 1;
};

// Which implementation builds the views on the CPU (other devices always run kGeneric).
enum class AugmentKernels {
  kFast,     // the fused per-view kernels of augment_cpu.cc, AVX2 where the CPU has it (else kScalar)
  kScalar,   // the same fused kernels in plain scalar C++: the reference kFast is bit-identical to
  kGeneric,  // the batched ATen ops the other devices use (so tests can check that path on a CPU-only machine)
};

// The parameters of N = B x (views of all groups) views, all CPU tensors with N rows. Rows are ordered group by group;
// inside group g (starting at row B x the views of the groups before it), view v of image i is row v * B + i.
struct ViewParams {
  at::Tensor boxes;          // N x 4 double: crop top, left, height, width in input pixels
  at::Tensor flip;           // N uint8: 1 = mirror left-right
  at::Tensor jitter_apply;   // N uint8: 1 = apply colour jitter
  at::Tensor jitter_factors; // N x 4 float: brightness, contrast, saturation, hue
  at::Tensor jitter_order;   // N x 4 uint8: a permutation of 0..3 (indices into jitter_factors' columns)
  at::Tensor grayscale;      // N uint8: 1 = convert to grayscale (3 channels)
  at::Tensor blur_sigma;     // N float: > 0 = blur with this sigma, 0 = no blur
  std::vector<ViewGroup> groups{ViewGroup{}};
  std::array<double, 3> mean{0, 0, 0};
  std::array<double, 3> stddev{1, 1, 1};
  AugmentKernels kernels = AugmentKernels::kFast;
  // The views' type: float32, or bfloat16 / float16 for a step that runs at that precision (half the bytes to write
  // and to move). Computed in float32 either way and rounded to nearest even at the end, as ATen's .to() rounds.
  at::ScalarType dtype = at::kFloat;
};

// Views per image over all groups.
int64_t ViewsPerImage(const ViewParams& params);

// The SimCLR augmentation of a uint8 batch `B x H x W x 3` (RGB, any device): for every view, crop + resize + flip,
// colour jitter in per-view order, grayscale, blur, all in [0, 1], then normalisation. Runs on `device`; returns one
// tensor of params.dtype per group, `V_g * B x 3 x S_g x S_g`, view-major (rows i, i + B, ... are the views of image i).
std::vector<at::Tensor> AugmentViews(const at::Tensor& images, const ViewParams& params, const at::Device& device);

// The CPU paths of AugmentViews (params already checked): each view is built whole while in cache, views in parallel
// over at::get_num_threads() threads. Needs whole-pixel boxes. `vectorized` false runs the scalar reference kernels.
std::vector<at::Tensor> AugmentViewsCpu(const at::Tensor& images, const ViewParams& params, bool vectorized);

// Whether this CPU runs the AVX2 kernels (kFast falls back to the scalar ones otherwise).
bool AugmentCpuHasAvx2();

// The deterministic view used for evaluation and embedding: each whole image of a uint8 batch `B x H x W x 3` resized
// to size x size and normalised, the same resampling and normalisation as the training views without the random
// parts. Runs on `device`; returns `B x 3 x size x size` float32.
at::Tensor EvalView(const at::Tensor& images, int64_t size, const std::array<double, 3>& mean,
                    const std::array<double, 3>& stddev, const at::Device& device);

// Throws c10::ValueError unless `params` describe the views of a batch of B images.
void CheckViewParams(const ViewParams& params, int64_t batch);

}  // namespace simclr
