// The CPU path of AugmentViews: each view is built start to finish while it sits in cache (crop from the uint8 input,
// colour jitter, grayscale, blur, normalisation), views in parallel. The arithmetic follows torchvision's float32
// formulas step by step, so it agrees with the ATen path (and torchvision) to float rounding.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/augment.h"

namespace simclr {

namespace {

constexpr float kLumaR = 0.2989f, kLumaG = 0.587f, kLumaB = 0.114f;

struct View {
  float* r;
  float* g;
  float* b;
  int64_t pixels;
};

inline float Clamp01(float v) { return std::min(std::max(v, 0.0f), 1.0f); }
inline float Luma(float r, float g, float b) { return kLumaR * r + kLumaG * g + kLumaB * b; }

// Bilinear source taps along one axis, as ATen's upsample_bilinear2d (align_corners=False) on the crop.
struct Taps {
  std::vector<int64_t> low, high;
  std::vector<float> low_weight, high_weight;
};

Taps AxisTaps(int64_t out_len, double start, double length, bool reverse) {
  Taps taps;
  taps.low.resize(out_len);
  taps.high.resize(out_len);
  taps.low_weight.resize(out_len);
  taps.high_weight.resize(out_len);
  const int64_t in_len = static_cast<int64_t>(length);
  const float scale = static_cast<float>(length / static_cast<double>(out_len));
  for (int64_t i = 0; i < out_len; ++i) {
    float source = std::max(scale * (static_cast<float>(i) + 0.5f) - 0.5f, 0.0f);
    int64_t index = std::min(static_cast<int64_t>(source), in_len - 1);
    int64_t next = index < in_len - 1 ? 1 : 0;
    float lambda = std::min(source - static_cast<float>(index), 1.0f);
    const int64_t o = reverse ? out_len - 1 - i : i;
    taps.low[o] = static_cast<int64_t>(start) + index;
    taps.high[o] = static_cast<int64_t>(start) + index + next;
    taps.high_weight[o] = lambda;
    taps.low_weight[o] = 1.0f - lambda;
  }
  return taps;
}

// uint8 -> [0, 1] exactly as ToTensor's division by 255.
struct UnitTable {
  float value[256];
  UnitTable() {
    for (int i = 0; i < 256; ++i) value[i] = static_cast<float>(i) / 255.0f;
  }
};

// Crop box (integer pixels) of a uint8 HWC image resized to size x size, into planar [0, 1] floats.
void CropResize(const uint8_t* image, int64_t width, const double* box, bool flip, int64_t size, View v) {
  static const UnitTable unit;
  const float* u = unit.value;
  Taps ys = AxisTaps(size, box[0], box[2], false);
  Taps xs = AxisTaps(size, box[1], box[3], flip);
  for (int64_t y = 0; y < size; ++y) {
    const uint8_t* row0 = image + ys.low[y] * width * 3;
    const uint8_t* row1 = image + ys.high[y] * width * 3;
    const float wy0 = ys.low_weight[y], wy1 = ys.high_weight[y];
    for (int64_t x = 0; x < size; ++x) {
      const int64_t x0 = xs.low[x] * 3, x1 = xs.high[x] * 3;
      const float wx0 = xs.low_weight[x], wx1 = xs.high_weight[x];
      float* out[3] = {v.r, v.g, v.b};
      for (int c = 0; c < 3; ++c) {
        float top = wx0 * u[row0[x0 + c]] + wx1 * u[row0[x1 + c]];
        float bottom = wx0 * u[row1[x0 + c]] + wx1 * u[row1[x1 + c]];
        out[c][y * size + x] = wy0 * top + wy1 * bottom;
      }
    }
  }
}

void Brightness(View v, float f) {
  for (float* plane : {v.r, v.g, v.b}) {
    for (int64_t i = 0; i < v.pixels; ++i) plane[i] = Clamp01(f * plane[i]);
  }
}

void Contrast(View v, float f) {
  double sum = 0;
  for (int64_t i = 0; i < v.pixels; ++i) sum += Luma(v.r[i], v.g[i], v.b[i]);
  const float keep = 1.0f - f, mean = static_cast<float>(sum / static_cast<double>(v.pixels));
  for (float* plane : {v.r, v.g, v.b}) {
    for (int64_t i = 0; i < v.pixels; ++i) plane[i] = Clamp01(f * plane[i] + keep * mean);
  }
}

void Saturation(View v, float f) {
  const float keep = 1.0f - f;
  for (int64_t i = 0; i < v.pixels; ++i) {
    const float gray = keep * Luma(v.r[i], v.g[i], v.b[i]);
    v.r[i] = Clamp01(f * v.r[i] + gray);
    v.g[i] = Clamp01(f * v.g[i] + gray);
    v.b[i] = Clamp01(f * v.b[i] + gray);
  }
}

// torchvision's _rgb2hsv, hue shift (Python %), _hsv2rgb, one pixel at a time.
void Hue(View v, float shift) {
  for (int64_t i = 0; i < v.pixels; ++i) {
    const float r = v.r[i], g = v.g[i], b = v.b[i];
    const float maxc = std::max(std::max(r, g), b), minc = std::min(std::min(r, g), b);
    const bool equal = maxc == minc;
    const float chroma = maxc - minc;
    const float s = chroma / (equal ? 1.0f : maxc);
    const float divisor = equal ? 1.0f : chroma;
    const float rc = (maxc - r) / divisor, gc = (maxc - g) / divisor, bc = (maxc - b) / divisor;
    float h;
    if (maxc == r) h = bc - gc;
    else if (maxc == g) h = 2.0f + rc - bc;
    else h = 4.0f + gc - rc;
    h = h / 6.0f + 1.0f;
    h = h - std::floor(h);  // fmod(h, 1) for h in [1/3, 2): exact either way
    h = h + shift;
    h = h - std::floor(h);
    const float sector = std::floor(h * 6.0f);
    const float f = h * 6.0f - sector;
    const int k = ((static_cast<int>(sector) % 6) + 6) % 6;
    const float p = Clamp01(maxc * (1.0f - s)), q = Clamp01(maxc * (1.0f - s * f)), t = Clamp01(maxc * (1.0f - s * (1.0f - f)));
    const float table[6][3] = {{maxc, t, p}, {q, maxc, p}, {p, maxc, t}, {p, q, maxc}, {t, p, maxc}, {maxc, p, q}};
    v.r[i] = table[k][0];
    v.g[i] = table[k][1];
    v.b[i] = table[k][2];
  }
}

void Grayscale(View v) {
  for (int64_t i = 0; i < v.pixels; ++i) v.r[i] = v.g[i] = v.b[i] = Luma(v.r[i], v.g[i], v.b[i]);
}

// dst[x] += w * src[x] for x < n, in fixed blocks of 8 that the compiler vectorises at -O2.
inline void AddScaled(float* __restrict dst, const float* __restrict src, float w, int64_t n) {
  int64_t x = 0;
  for (; x + 8 <= n; x += 8) {
    for (int lane = 0; lane < 8; ++lane) dst[x + lane] += w * src[x + lane];
  }
  for (; x < n; ++x) dst[x] += w * src[x];
}

inline int64_t Reflect(int64_t i, int64_t n) { return i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i; }

// Separable blur of one size x size plane with reflect padding; `scratch` holds size * (size + 2 pad) floats.
void BlurPlane(float* plane, int64_t size, const std::vector<float>& kernel, std::vector<float>& scratch) {
  const int64_t k = static_cast<int64_t>(kernel.size()), pad = k / 2, padded = size + 2 * pad;
  // Rows: each row padded, then the kernel's taps added as shifted whole rows.
  std::vector<float> row(padded);
  for (int64_t y = 0; y < size; ++y) {
    float* line = plane + y * size;
    for (int64_t x = 0; x < padded; ++x) row[x] = line[Reflect(x - pad, size)];
    std::fill(line, line + size, 0.0f);
    for (int64_t j = 0; j < k; ++j) AddScaled(line, row.data() + j, kernel[j], size);
  }
  // Columns: the plane copied with reflected rows above and below, then whole rows combined.
  for (int64_t y = 0; y < padded; ++y) std::copy_n(plane + Reflect(y - pad, size) * size, size, scratch.data() + y * size);
  for (int64_t y = 0; y < size; ++y) {
    float* line = plane + y * size;
    std::fill(line, line + size, 0.0f);
    for (int64_t j = 0; j < k; ++j) AddScaled(line, scratch.data() + (y + j) * size, kernel[j], size);
  }
}

// torchvision's _get_gaussian_kernel1d in float32.
std::vector<float> GaussianKernel(int64_t size, float sigma) {
  std::vector<float> kernel(size);
  const float half = static_cast<float>(size - 1) * 0.5f;
  float sum = 0;
  for (int64_t i = 0; i < size; ++i) {
    const float x = (static_cast<float>(i) - half) / sigma;
    kernel[i] = std::exp(-0.5f * (x * x));
    sum += kernel[i];
  }
  for (float& w : kernel) w /= sum;
  return kernel;
}

}  // namespace

at::Tensor AugmentViewsCpu(const at::Tensor& images, const ViewParams& p) {
  const int64_t batch = images.size(0), height = images.size(1), width = images.size(2), size = p.out_size;
  at::Tensor input = images.contiguous();
  at::Tensor views = at::empty({2 * batch, 3, size, size}, at::kFloat);
  const uint8_t* pixels = input.data_ptr<uint8_t>();
  float* out = views.data_ptr<float>();
  const int64_t plane = size * size;
  auto boxes = p.boxes.accessor<double, 2>();
  for (int64_t k = 0; k < 2 * batch; ++k) {
    TORCH_CHECK_VALUE(boxes[k][0] >= 0 && boxes[k][1] >= 0 && boxes[k][2] >= 1 && boxes[k][3] >= 1 &&
                          boxes[k][0] + boxes[k][2] <= height && boxes[k][1] + boxes[k][3] <= width &&
                          std::floor(boxes[k][0]) == boxes[k][0] && std::floor(boxes[k][1]) == boxes[k][1] &&
                          std::floor(boxes[k][2]) == boxes[k][2] && std::floor(boxes[k][3]) == boxes[k][3],
                      "augmentViews: box ", k, " is not a whole-pixel box inside the ", height, " x ", width, " image");
  }
  const double* box = p.boxes.data_ptr<double>();
  const uint8_t* flip = p.flip.data_ptr<uint8_t>();
  const uint8_t* jitter = p.jitter_apply.data_ptr<uint8_t>();
  const float* factors = p.jitter_factors.data_ptr<float>();
  const uint8_t* order = p.jitter_order.data_ptr<uint8_t>();
  const uint8_t* gray = p.grayscale.data_ptr<uint8_t>();
  const float* sigma = p.blur_sigma.data_ptr<float>();
  at::parallel_for(0, 2 * batch, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scratch(size * (size + 2 * (p.blur_kernel / 2)));
    for (int64_t k = begin; k < end; ++k) {
      float* base = out + k * 3 * plane;
      View v{base, base + plane, base + 2 * plane, plane};
      CropResize(pixels + (k % batch) * height * width * 3, width, box + 4 * k, flip[k] != 0, size, v);
      if (jitter[k]) {
        for (int step = 0; step < 4; ++step) {
          const int op = order[4 * k + step];
          const float f = factors[4 * k + op];
          if (op == 0) Brightness(v, f);
          else if (op == 1) Contrast(v, f);
          else if (op == 2) Saturation(v, f);
          else Hue(v, f);
        }
      }
      if (gray[k]) Grayscale(v);
      if (sigma[k] > 0) {
        std::vector<float> kernel = GaussianKernel(p.blur_kernel, sigma[k]);
        for (float* channel : {v.r, v.g, v.b}) BlurPlane(channel, size, kernel, scratch);
      }
      for (int c = 0; c < 3; ++c) {
        const float mean = static_cast<float>(p.mean[c]), stddev = static_cast<float>(p.stddev[c]);
        float* channel = base + c * plane;
        for (int64_t i = 0; i < plane; ++i) channel[i] = (channel[i] - mean) / stddev;
      }
    }
  });
  return views;
}

}  // namespace simclr
