// The CPU paths of AugmentViews: each view is built start to finish while it sits in cache (crop from the uint8 input,
// colour jitter, grayscale, blur, normalisation), views in parallel. The arithmetic follows torchvision's float32
// formulas step by step, so it agrees with the ATen path (and torchvision) to float rounding.
//
// Two implementations of the same per-view arithmetic:
// - scalar: plain C++, one pixel at a time: the reference, and what runs on CPUs without AVX2.
// - avx2: 8 pixels per instruction (AVX2 intrinsics in functions compiled for AVX2 with a target attribute, so the
//   addon itself is still built for any x86-64 and picks this path at run time when the CPU has AVX2). Every pixel
//   goes through the same float operations in the same order as in the scalar path (multiply and add kept apart, no
//   FMA; sums in the same order), so the two are bit-identical: test/augment-fast.test.ts checks it.
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "core/augment.h"

#ifdef __linux__
#include <sys/mman.h>
#endif

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define SIMCLR_AVX2_KERNELS 1
#include <immintrin.h>
#define SIMCLR_AVX2 __attribute__((target("avx2")))
#else
#define SIMCLR_AVX2_KERNELS 0
#endif

namespace simclr {

namespace {

constexpr float kLumaR = 0.2989f, kLumaG = 0.587f, kLumaB = 0.114f;

inline float Clamp01(float v) { return std::min(std::max(v, 0.0f), 1.0f); }
inline float Luma(float r, float g, float b) { return kLumaR * r + kLumaG * g + kLumaB * b; }
inline int64_t Reflect(int64_t i, int64_t n) { return i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i; }

// ---- Per-pixel formulas, shared by the scalar kernels and the tails of the vectorised ones ----

inline void ContrastPixel(float& r, float& g, float& b, float f, float offset) {
  r = Clamp01(f * r + offset);
  g = Clamp01(f * g + offset);
  b = Clamp01(f * b + offset);
}

inline void SaturationPixel(float& r, float& g, float& b, float f, float keep) {
  const float gray = keep * Luma(r, g, b);
  r = Clamp01(f * r + gray);
  g = Clamp01(f * g + gray);
  b = Clamp01(f * b + gray);
}

// torchvision's _rgb2hsv, hue shift (Python %), _hsv2rgb.
inline void HuePixel(float& r_, float& g_, float& b_, float shift) {
  const float r = r_, g = g_, b = b_;
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
  r_ = table[k][0];
  g_ = table[k][1];
  b_ = table[k][2];
}

// ---- What one view needs ----

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

// uint8 -> [0, 1] exactly as ToTensor's division by 255.
struct UnitTable {
  float value[256];
  UnitTable() {
    for (int i = 0; i < 256; ++i) value[i] = static_cast<float>(i) / 255.0f;
  }
};

// float -> bfloat16 bits rounded to nearest even, as c10::BFloat16 (and so ATen's .to(kBFloat16)) rounds.
inline uint16_t BFloat16Bits(float value) {
  if (std::isnan(value)) return 0x7FC0;
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  return static_cast<uint16_t>((bits + (((bits >> 16) & 1) + 0x7FFF)) >> 16);
}

struct ViewJob {
  const uint8_t* image;  // H x W x 3
  int64_t width;
  const double* box;  // top, left, height, width: whole pixels inside the image
  bool flip;
  bool jitter;
  const float* factors;  // brightness, contrast, saturation, hue
  const uint8_t* order;  // jitter order: indices into factors
  bool gray;
  float sigma;  // 0: no blur
  int64_t blur_kernel;
  int64_t size;
  float* out;  // 3 x size x size, normalised: the view itself, or where it is built before rounding to bf16_out
  uint16_t* bf16_out;  // nullptr, or the view as bfloat16 bits
  const float* mean;
  const float* stddev;
};

// ---- scalar kernels: the reference ----
namespace scalar {

struct View {
  float* r;
  float* g;
  float* b;
  int64_t pixels;
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
  const float offset = keep * mean;
  for (int64_t i = 0; i < v.pixels; ++i) ContrastPixel(v.r[i], v.g[i], v.b[i], f, offset);
}

void Saturation(View v, float f) {
  for (int64_t i = 0; i < v.pixels; ++i) SaturationPixel(v.r[i], v.g[i], v.b[i], f, 1.0f - f);
}

void Hue(View v, float shift) {
  for (int64_t i = 0; i < v.pixels; ++i) HuePixel(v.r[i], v.g[i], v.b[i], shift);
}

void Grayscale(View v) {
  for (int64_t i = 0; i < v.pixels; ++i) v.r[i] = v.g[i] = v.b[i] = Luma(v.r[i], v.g[i], v.b[i]);
}

// dst[x] += w * src[x] for x < n.
inline void AddScaled(float* __restrict dst, const float* __restrict src, float w, int64_t n) {
  for (int64_t x = 0; x < n; ++x) dst[x] += w * src[x];
}

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

void BuildView(const ViewJob& job, std::vector<float>& scratch) {
  const int64_t size = job.size, plane = size * size;
  View v{job.out, job.out + plane, job.out + 2 * plane, plane};
  CropResize(job.image, job.width, job.box, job.flip, size, v);
  if (job.jitter) {
    for (int step = 0; step < 4; ++step) {
      const int op = job.order[step];
      const float f = job.factors[op];
      if (op == 0) Brightness(v, f);
      else if (op == 1) Contrast(v, f);
      else if (op == 2) Saturation(v, f);
      else Hue(v, f);
    }
  }
  if (job.gray) Grayscale(v);
  if (job.sigma > 0) {
    scratch.resize(size * (size + 2 * (job.blur_kernel / 2)));
    std::vector<float> kernel = GaussianKernel(job.blur_kernel, job.sigma);
    for (float* channel : {v.r, v.g, v.b}) BlurPlane(channel, size, kernel, scratch);
  }
  for (int c = 0; c < 3; ++c) {
    float* channel = job.out + c * plane;
    for (int64_t i = 0; i < plane; ++i) channel[i] = (channel[i] - job.mean[c]) / job.stddev[c];
  }
}

}  // namespace scalar

#if SIMCLR_AVX2_KERNELS
// ---- AVX2 kernels: the scalar arithmetic, 8 pixels at a time ----
namespace avx2 {

// std::max(v, lo) and std::min(v, hi) exactly (operand order matters for equal values and NaN).
SIMCLR_AVX2 inline __m256 Max(__m256 v, __m256 lo) { return _mm256_max_ps(lo, v); }
SIMCLR_AVX2 inline __m256 Min(__m256 v, __m256 hi) { return _mm256_min_ps(hi, v); }
SIMCLR_AVX2 inline __m256 Clamp01(__m256 v) { return Min(Max(v, _mm256_setzero_ps()), _mm256_set1_ps(1.0f)); }
SIMCLR_AVX2 inline __m256 Luma(__m256 r, __m256 g, __m256 b) {
  return _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(kLumaR), r), _mm256_mul_ps(_mm256_set1_ps(kLumaG), g)),
                       _mm256_mul_ps(_mm256_set1_ps(kLumaB), b));
}
// cond ? a : b per lane.
SIMCLR_AVX2 inline __m256 Select(__m256 cond, __m256 a, __m256 b) { return _mm256_blendv_ps(b, a, cond); }

// Three planes of a view; pixel ranges [begin, end) index all three.
struct Planes {
  float* c[3];
};

SIMCLR_AVX2 void Brightness(Planes v, int64_t begin, int64_t end, float f) {
  const __m256 vf = _mm256_set1_ps(f);
  for (float* plane : v.c) {
    int64_t i = begin;
    for (; i + 8 <= end; i += 8) _mm256_storeu_ps(plane + i, Clamp01(_mm256_mul_ps(vf, _mm256_loadu_ps(plane + i))));
    for (; i < end; ++i) plane[i] = simclr::Clamp01(f * plane[i]);
  }
}

// Adds the luma of pixels [begin, end) to `sum` one pixel at a time, in pixel order (as the scalar kernel does).
SIMCLR_AVX2 void AddLuma(Planes v, int64_t begin, int64_t end, double& sum) {
  alignas(32) float luma[8];
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    _mm256_store_ps(luma, Luma(_mm256_loadu_ps(v.c[0] + i), _mm256_loadu_ps(v.c[1] + i), _mm256_loadu_ps(v.c[2] + i)));
    for (float l : luma) sum += l;
  }
  for (; i < end; ++i) sum += simclr::Luma(v.c[0][i], v.c[1][i], v.c[2][i]);
}

SIMCLR_AVX2 void Contrast(Planes v, int64_t begin, int64_t end, float f, float offset) {
  const __m256 vf = _mm256_set1_ps(f), voffset = _mm256_set1_ps(offset);
  for (float* plane : v.c) {
    int64_t i = begin;
    for (; i + 8 <= end; i += 8) {
      _mm256_storeu_ps(plane + i, Clamp01(_mm256_add_ps(_mm256_mul_ps(vf, _mm256_loadu_ps(plane + i)), voffset)));
    }
    for (; i < end; ++i) plane[i] = simclr::Clamp01(f * plane[i] + offset);
  }
}

SIMCLR_AVX2 void Saturation(Planes v, int64_t begin, int64_t end, float f) {
  const float keep = 1.0f - f;
  const __m256 vf = _mm256_set1_ps(f), vkeep = _mm256_set1_ps(keep);
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    const __m256 r = _mm256_loadu_ps(v.c[0] + i), g = _mm256_loadu_ps(v.c[1] + i), b = _mm256_loadu_ps(v.c[2] + i);
    const __m256 gray = _mm256_mul_ps(vkeep, Luma(r, g, b));
    _mm256_storeu_ps(v.c[0] + i, Clamp01(_mm256_add_ps(_mm256_mul_ps(vf, r), gray)));
    _mm256_storeu_ps(v.c[1] + i, Clamp01(_mm256_add_ps(_mm256_mul_ps(vf, g), gray)));
    _mm256_storeu_ps(v.c[2] + i, Clamp01(_mm256_add_ps(_mm256_mul_ps(vf, b), gray)));
  }
  for (; i < end; ++i) SaturationPixel(v.c[0][i], v.c[1][i], v.c[2][i], f, keep);
}

SIMCLR_AVX2 void Hue(Planes v, int64_t begin, int64_t end, float shift) {
  const __m256 one = _mm256_set1_ps(1.0f), two = _mm256_set1_ps(2.0f), four = _mm256_set1_ps(4.0f),
               six = _mm256_set1_ps(6.0f), vshift = _mm256_set1_ps(shift);
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    const __m256 r = _mm256_loadu_ps(v.c[0] + i), g = _mm256_loadu_ps(v.c[1] + i), b = _mm256_loadu_ps(v.c[2] + i);
    const __m256 maxc = Max(Max(r, g), b), minc = Min(Min(r, g), b);
    const __m256 equal = _mm256_cmp_ps(maxc, minc, _CMP_EQ_OQ);
    const __m256 chroma = _mm256_sub_ps(maxc, minc);
    const __m256 s = _mm256_div_ps(chroma, Select(equal, one, maxc));
    const __m256 divisor = Select(equal, one, chroma);
    const __m256 rc = _mm256_div_ps(_mm256_sub_ps(maxc, r), divisor);
    const __m256 gc = _mm256_div_ps(_mm256_sub_ps(maxc, g), divisor);
    const __m256 bc = _mm256_div_ps(_mm256_sub_ps(maxc, b), divisor);
    const __m256 hr = _mm256_sub_ps(bc, gc);
    const __m256 hg = _mm256_sub_ps(_mm256_add_ps(two, rc), bc);
    const __m256 hb = _mm256_sub_ps(_mm256_add_ps(four, gc), rc);
    __m256 h = Select(_mm256_cmp_ps(maxc, r, _CMP_EQ_OQ), hr, Select(_mm256_cmp_ps(maxc, g, _CMP_EQ_OQ), hg, hb));
    h = _mm256_add_ps(_mm256_div_ps(h, six), one);
    h = _mm256_sub_ps(h, _mm256_floor_ps(h));
    h = _mm256_add_ps(h, vshift);
    h = _mm256_sub_ps(h, _mm256_floor_ps(h));
    const __m256 sector = _mm256_floor_ps(_mm256_mul_ps(h, six));
    const __m256 f = _mm256_sub_ps(_mm256_mul_ps(h, six), sector);
    const __m256 p = Clamp01(_mm256_mul_ps(maxc, _mm256_sub_ps(one, s)));
    const __m256 q = Clamp01(_mm256_mul_ps(maxc, _mm256_sub_ps(one, _mm256_mul_ps(s, f))));
    const __m256 t = Clamp01(_mm256_mul_ps(maxc, _mm256_sub_ps(one, _mm256_mul_ps(s, _mm256_sub_ps(one, f)))));
    // Sector k in 0..6 (6 only when h rounds up to 1, which is sector 0 again): table rows of HuePixel.
    __m256 out_r = maxc, out_g = t, out_b = p;
    const __m256 is1 = _mm256_cmp_ps(sector, one, _CMP_EQ_OQ), is2 = _mm256_cmp_ps(sector, two, _CMP_EQ_OQ),
                 is3 = _mm256_cmp_ps(sector, _mm256_set1_ps(3.0f), _CMP_EQ_OQ),
                 is4 = _mm256_cmp_ps(sector, four, _CMP_EQ_OQ), is5 = _mm256_cmp_ps(sector, _mm256_set1_ps(5.0f), _CMP_EQ_OQ);
    out_r = Select(is1, q, out_r), out_g = Select(is1, maxc, out_g), out_b = Select(is1, p, out_b);
    out_r = Select(is2, p, out_r), out_g = Select(is2, maxc, out_g), out_b = Select(is2, t, out_b);
    out_r = Select(is3, p, out_r), out_g = Select(is3, q, out_g), out_b = Select(is3, maxc, out_b);
    out_r = Select(is4, t, out_r), out_g = Select(is4, p, out_g), out_b = Select(is4, maxc, out_b);
    out_r = Select(is5, maxc, out_r), out_g = Select(is5, p, out_g), out_b = Select(is5, q, out_b);
    _mm256_storeu_ps(v.c[0] + i, out_r);
    _mm256_storeu_ps(v.c[1] + i, out_g);
    _mm256_storeu_ps(v.c[2] + i, out_b);
  }
  for (; i < end; ++i) HuePixel(v.c[0][i], v.c[1][i], v.c[2][i], shift);
}

SIMCLR_AVX2 void Grayscale(Planes v, int64_t begin, int64_t end) {
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    const __m256 l = Luma(_mm256_loadu_ps(v.c[0] + i), _mm256_loadu_ps(v.c[1] + i), _mm256_loadu_ps(v.c[2] + i));
    _mm256_storeu_ps(v.c[0] + i, l);
    _mm256_storeu_ps(v.c[1] + i, l);
    _mm256_storeu_ps(v.c[2] + i, l);
  }
  for (; i < end; ++i) v.c[0][i] = v.c[1][i] = v.c[2][i] = simclr::Luma(v.c[0][i], v.c[1][i], v.c[2][i]);
}

// 8 floats to bfloat16 bits, rounded to nearest even exactly as BFloat16Bits.
SIMCLR_AVX2 inline __m128i BFloat16Bits8(__m256 v) {
  const __m256i bits = _mm256_castps_si256(v);
  const __m256i bias = _mm256_add_epi32(_mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1)),
                                        _mm256_set1_epi32(0x7FFF));
  __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(bits, bias), 16);
  rounded = _mm256_blendv_epi8(rounded, _mm256_set1_epi32(0x7FC0), _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
  // The 16-bit halves of the 8 lanes: packus works per 128-bit lane, so take quadwords 0 and 2.
  return _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packus_epi32(rounded, rounded), 0x08));
}

// The last pass of a view stores either float32 or bfloat16 (the view's dtype).
SIMCLR_AVX2 inline void Put(float* out, __m256 v) { _mm256_storeu_ps(out, v); }
SIMCLR_AVX2 inline void Put(uint16_t* out, __m256 v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(out), BFloat16Bits8(v)); }
inline void PutOne(float* out, float v) { *out = v; }
inline void PutOne(uint16_t* out, float v) { *out = BFloat16Bits(v); }

// (x - mean) / std from `in` to `out` (which may be the same when both are float), one plane's range.
template <typename Out>
SIMCLR_AVX2 void Normalize(const float* in, Out* out, int64_t n, float mean, float stddev) {
  const __m256 vmean = _mm256_set1_ps(mean), vstd = _mm256_set1_ps(stddev);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) Put(out + i, _mm256_div_ps(_mm256_sub_ps(_mm256_loadu_ps(in + i), vmean), vstd));
  for (; i < n; ++i) PutOne(out + i, (in[i] - mean) / stddev);
}

// Per-thread buffers, grown to the largest view and image seen.
struct Scratch {
  std::vector<float> rows;     // 2 cached input rows, each 3 planes of `size` horizontally resampled values
  std::vector<float> span;     // one input row's crop span as 3 planes of [0, 1] floats
  std::vector<float> blurred;  // 3 planes of size x size: rows blurred, columns not yet
  std::vector<float> padded;   // one reflect-padded row
  std::vector<int32_t> x_low, x_high;
  std::vector<float> wx_low, wx_high;
};

// Pixels x of one input row, [left, left + count), to planar [0, 1] floats (exactly UnitTable's values).
SIMCLR_AVX2 void RowToUnit(const uint8_t* row, int64_t left, int64_t count, float* r, float* g, float* b) {
  static const UnitTable unit;
  const uint8_t* p = row + 3 * left;
  const __m128i take_r0 = _mm_setr_epi8(0, 3, 6, 9, 12, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m128i take_r1 = _mm_setr_epi8(-1, -1, -1, -1, -1, -1, 2, 5, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m128i take_g0 = _mm_setr_epi8(1, 4, 7, 10, 13, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m128i take_g1 = _mm_setr_epi8(-1, -1, -1, -1, -1, 0, 3, 6, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m128i take_b0 = _mm_setr_epi8(2, 5, 8, 11, 14, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m128i take_b1 = _mm_setr_epi8(-1, -1, -1, -1, -1, 1, 4, 7, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m256 v255 = _mm256_set1_ps(255.0f);
  auto to_unit = [&](__m128i bytes) SIMCLR_AVX2 {
    return _mm256_div_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes)), v255);
  };
  int64_t x = 0;
  for (; x + 8 <= count; x += 8, p += 24) {  // 8 pixels = 24 bytes, read as 16 + 8: nothing past the 8th pixel
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i c = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 16));
    _mm256_storeu_ps(r + x, to_unit(_mm_or_si128(_mm_shuffle_epi8(a, take_r0), _mm_shuffle_epi8(c, take_r1))));
    _mm256_storeu_ps(g + x, to_unit(_mm_or_si128(_mm_shuffle_epi8(a, take_g0), _mm_shuffle_epi8(c, take_g1))));
    _mm256_storeu_ps(b + x, to_unit(_mm_or_si128(_mm_shuffle_epi8(a, take_b0), _mm_shuffle_epi8(c, take_b1))));
  }
  for (; x < count; ++x, p += 3) {
    r[x] = unit.value[p[0]];
    g[x] = unit.value[p[1]];
    b[x] = unit.value[p[2]];
  }
}

// The crop's horizontal resampling of input row `y` into 3 planes of `size` values: wx0 * left tap + wx1 * right tap,
// as the scalar CropResize computes `top` and `bottom`.
SIMCLR_AVX2 void ResampleRow(const ViewJob& job, int64_t y, Scratch& s, float* out) {
  const int64_t size = job.size, left = static_cast<int64_t>(job.box[1]), count = static_cast<int64_t>(job.box[3]);
  float* span[3] = {s.span.data(), s.span.data() + count, s.span.data() + 2 * count};
  RowToUnit(job.image + y * job.width * 3, left, count, span[0], span[1], span[2]);
  for (int c = 0; c < 3; ++c) {
    const float* in = span[c];
    float* o = out + c * size;
    int64_t x = 0;
    for (; x + 8 <= size; x += 8) {
      const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s.x_low.data() + x));
      const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s.x_high.data() + x));
      const __m256 a = _mm256_mul_ps(_mm256_loadu_ps(s.wx_low.data() + x), _mm256_i32gather_ps(in, lo, 4));
      const __m256 b = _mm256_mul_ps(_mm256_loadu_ps(s.wx_high.data() + x), _mm256_i32gather_ps(in, hi, 4));
      _mm256_storeu_ps(o + x, _mm256_add_ps(a, b));
    }
    for (; x < size; ++x) o[x] = s.wx_low[x] * in[s.x_low[x]] + s.wx_high[x] * in[s.x_high[x]];
  }
}

// Rows [y0, y1) of the crop-resize into the view's planes. `cached` holds the input rows whose resampled values are
// in the two slots of s.rows (-1: none), carried from one call to the next.
SIMCLR_AVX2 void CropRows(const ViewJob& job, const Taps& ys, int64_t y0, int64_t y1, Scratch& s, int64_t cached[2], Planes v) {
  const int64_t size = job.size;
  auto slot = [&](int64_t row, int64_t keep) SIMCLR_AVX2 {
    for (int i = 0; i < 2; ++i) {
      if (cached[i] == row) return s.rows.data() + i * 3 * size;
    }
    const int i = cached[0] == keep ? 1 : 0;  // never evict the other row this output row needs
    cached[i] = row;
    float* out = s.rows.data() + i * 3 * size;
    ResampleRow(job, row, s, out);
    return out;
  };
  for (int64_t y = y0; y < y1; ++y) {
    const float* top = slot(ys.low[y], ys.high[y]);
    const float* bottom = slot(ys.high[y], ys.low[y]);
    const float wy0 = ys.low_weight[y], wy1 = ys.high_weight[y];
    const __m256 w0 = _mm256_set1_ps(wy0), w1 = _mm256_set1_ps(wy1);
    for (int c = 0; c < 3; ++c) {
      const float* t = top + c * size;
      const float* b = bottom + c * size;
      float* o = v.c[c] + y * size;
      int64_t x = 0;
      for (; x + 8 <= size; x += 8) {
        _mm256_storeu_ps(o + x, _mm256_add_ps(_mm256_mul_ps(w0, _mm256_loadu_ps(t + x)), _mm256_mul_ps(w1, _mm256_loadu_ps(b + x))));
      }
      for (; x < size; ++x) o[x] = wy0 * t[x] + wy1 * b[x];
    }
  }
}

// out[x] = sum over taps j in [j0, j1) of w[j] * rows[j][x] for x < n, summed from 0 in tap order (as the scalar
// BlurPlane's AddScaled passes do), then normalised when `normalize`. Four vectors of x at a time, so that four
// independent sums hide the latency of each addition.
template <bool normalize, typename Out>
SIMCLR_AVX2 inline void TapSums(const float* const* rows, const float* w, int64_t j0, int64_t j1, Out* out, int64_t n,
                                float mean, float stddev) {
  const __m256 vmean = _mm256_set1_ps(mean), vstd = _mm256_set1_ps(stddev);
  auto finish = [&](__m256 acc) SIMCLR_AVX2 { return normalize ? _mm256_div_ps(_mm256_sub_ps(acc, vmean), vstd) : acc; };
  int64_t x = 0;
  for (; x + 32 <= n; x += 32) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t j = j0; j < j1; ++j) {
      const __m256 wj = _mm256_set1_ps(w[j]);
      const float* r = rows[j] + x;
      a0 = _mm256_add_ps(a0, _mm256_mul_ps(wj, _mm256_loadu_ps(r)));
      a1 = _mm256_add_ps(a1, _mm256_mul_ps(wj, _mm256_loadu_ps(r + 8)));
      a2 = _mm256_add_ps(a2, _mm256_mul_ps(wj, _mm256_loadu_ps(r + 16)));
      a3 = _mm256_add_ps(a3, _mm256_mul_ps(wj, _mm256_loadu_ps(r + 24)));
    }
    Put(out + x, finish(a0));
    Put(out + x + 8, finish(a1));
    Put(out + x + 16, finish(a2));
    Put(out + x + 24, finish(a3));
  }
  for (; x + 8 <= n; x += 8) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t j = j0; j < j1; ++j) acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_set1_ps(w[j]), _mm256_loadu_ps(rows[j] + x)));
    Put(out + x, finish(acc));
  }
  for (; x < n; ++x) {
    float acc = 0.0f;
    for (int64_t j = j0; j < j1; ++j) acc += w[j] * rows[j][x];
    PutOne(out + x, normalize ? (acc - mean) / stddev : acc);
  }
}

// Blurs rows [y0, y1) of one plane along x into `out` (reflect padding): tap j of output x reads row[x + j - pad].
// Taps [j0, j1) are the kernel's non-zero ones: a zero tap adds +0 to a sum of non-negative terms, which changes
// nothing.
SIMCLR_AVX2 void BlurRowsX(const float* plane, float* out, int64_t size, int64_t y0, int64_t y1, const std::vector<float>& w,
                           int64_t j0, int64_t j1, std::vector<float>& padded) {
  const int64_t pad = static_cast<int64_t>(w.size()) / 2;
  float* row = padded.data();
  std::vector<const float*> shifted(w.size());
  for (size_t j = 0; j < w.size(); ++j) shifted[j] = row + j;
  for (int64_t y = y0; y < y1; ++y) {
    const float* line = plane + y * size;
    for (int64_t x = 0; x < pad; ++x) row[x] = line[Reflect(x - pad, size)];
    std::copy_n(line, size, row + pad);
    for (int64_t x = size + pad; x < size + 2 * pad; ++x) row[x] = line[Reflect(x - pad, size)];
    TapSums<false>(shifted.data(), w.data(), j0, j1, out + y * size, size, 0.0f, 1.0f);
  }
}

// Blurs a row-blurred plane along y (reflect padding) and normalises it into `out`.
template <typename Out>
SIMCLR_AVX2 void BlurColumnsNormalize(const float* in, Out* out, int64_t size, const std::vector<float>& w, int64_t j0,
                                      int64_t j1, float mean, float stddev) {
  const int64_t pad = static_cast<int64_t>(w.size()) / 2;
  std::vector<const float*> rows(w.size());
  for (int64_t y = 0; y < size; ++y) {
    for (int64_t j = j0; j < j1; ++j) rows[j] = in + Reflect(y + j - pad, size) * size;
    TapSums<true>(rows.data(), w.data(), j0, j1, out + y * size, size, mean, stddev);
  }
}

// The colour ops of a view in order: jitter (in the view's order), then grayscale.
struct ColourOp {
  int op;  // 0 brightness, 1 contrast, 2 saturation, 3 hue, 4 grayscale
  float factor;
};

SIMCLR_AVX2 void ApplyOps(Planes v, int64_t begin, int64_t end, const ColourOp* ops, int count, float contrast_offset) {
  for (int i = 0; i < count; ++i) {
    const ColourOp& o = ops[i];
    if (o.op == 0) Brightness(v, begin, end, o.factor);
    else if (o.op == 1) Contrast(v, begin, end, o.factor, contrast_offset);
    else if (o.op == 2) Saturation(v, begin, end, o.factor);
    else if (o.op == 3) Hue(v, begin, end, o.factor);
    else Grayscale(v, begin, end);
  }
}

// One view: row tiles that stay in L1 go through crop-resize and the colour ops in one pass; contrast, which needs the
// mean luma of the whole view as the ops before it left it, splits that pass in two. Then the blur along x (tile by
// tile), and along y with the normalisation into the output.
SIMCLR_AVX2 void BuildView(const ViewJob& job, Scratch& s) {
  const int64_t size = job.size, plane = size * size, count = static_cast<int64_t>(job.box[3]);
  Planes v{{job.out, job.out + plane, job.out + 2 * plane}};
  Taps ys = AxisTaps(size, job.box[0], job.box[2], false);
  Taps xs = AxisTaps(size, job.box[1], job.box[3], job.flip);
  const int64_t left = static_cast<int64_t>(job.box[1]);
  s.x_low.resize(size);
  s.x_high.resize(size);
  s.wx_low.assign(xs.low_weight.begin(), xs.low_weight.end());
  s.wx_high.assign(xs.high_weight.begin(), xs.high_weight.end());
  for (int64_t x = 0; x < size; ++x) {
    s.x_low[x] = static_cast<int32_t>(xs.low[x] - left);
    s.x_high[x] = static_cast<int32_t>(xs.high[x] - left);
  }
  s.rows.resize(2 * 3 * size);
  s.span.resize(3 * count);
  ColourOp ops[5];
  int n_ops = 0, contrast_at = -1;
  if (job.jitter) {
    for (int step = 0; step < 4; ++step) {
      if (job.order[step] == 1) contrast_at = n_ops;
      ops[n_ops++] = {job.order[step], job.factors[job.order[step]]};
    }
  }
  if (job.gray) ops[n_ops++] = {4, 0.0f};
  const bool blur = job.sigma > 0;
  std::vector<float> kernel;
  int64_t j0 = 0, j1 = 0;
  if (blur) {
    kernel = GaussianKernel(job.blur_kernel, job.sigma);
    j0 = 0, j1 = static_cast<int64_t>(kernel.size());
    while (j0 < j1 && kernel[j0] == 0.0f) ++j0;
    while (j1 > j0 && kernel[j1 - 1] == 0.0f) --j1;
    s.blurred.resize(3 * plane);
    s.padded.resize(size + 2 * (job.blur_kernel / 2));
  }
  // The last pass over the tiles also blurs them along x, or normalises them when there is no blur.
  auto finish_tile = [&](int64_t y0, int64_t y1) SIMCLR_AVX2 {
    for (int c = 0; c < 3; ++c) {
      if (blur) BlurRowsX(v.c[c], s.blurred.data() + c * plane, size, y0, y1, kernel, j0, j1, s.padded);
      else if (job.bf16_out) Normalize(v.c[c] + y0 * size, job.bf16_out + c * plane + y0 * size, (y1 - y0) * size, job.mean[c], job.stddev[c]);
      else Normalize(v.c[c] + y0 * size, v.c[c] + y0 * size, (y1 - y0) * size, job.mean[c], job.stddev[c]);
    }
  };
  const int64_t tile = std::max<int64_t>(1, 2048 / size);
  int64_t cached[2] = {-1, -1};
  const int first_ops = contrast_at >= 0 ? contrast_at : n_ops;
  double luma_sum = 0;
  for (int64_t y0 = 0; y0 < size; y0 += tile) {
    const int64_t y1 = std::min(size, y0 + tile);
    CropRows(job, ys, y0, y1, s, cached, v);
    ApplyOps(v, y0 * size, y1 * size, ops, first_ops, 0.0f);
    if (contrast_at >= 0) AddLuma(v, y0 * size, y1 * size, luma_sum);
    else finish_tile(y0, y1);
  }
  if (contrast_at >= 0) {
    const float f = ops[contrast_at].factor;
    const float mean = static_cast<float>(luma_sum / static_cast<double>(plane));
    const float offset = (1.0f - f) * mean;
    for (int64_t y0 = 0; y0 < size; y0 += tile) {
      const int64_t y1 = std::min(size, y0 + tile);
      ApplyOps(v, y0 * size, y1 * size, ops + contrast_at, n_ops - contrast_at, offset);
      finish_tile(y0, y1);
    }
  }
  if (blur) {
    for (int c = 0; c < 3; ++c) {
      if (job.bf16_out) BlurColumnsNormalize(s.blurred.data() + c * plane, job.bf16_out + c * plane, size, kernel, j0, j1, job.mean[c], job.stddev[c]);
      else BlurColumnsNormalize(s.blurred.data() + c * plane, v.c[c], size, kernel, j0, j1, job.mean[c], job.stddev[c]);
    }
  }
}

}  // namespace avx2
#endif  // SIMCLR_AVX2_KERNELS

// Memory for batches of views. A fresh 50 MB output costs ~12k page faults in 4 kB pages (on this project's 2-core VM,
// 48 ms against 2.4 ms to write it when mapped: more than the kernels); transparent huge pages cut that to ~11 ms, and
// reusing the region of a disposed batch to nothing. A training loop asks for the same sizes every step, so the regions
// of released batches are kept for the next ones: at most kIdleRegions of them (a prefetched batch of multi-crop's two
// groups needs 4) and kIdleBytes in all, the oldest unmapped first.
#ifdef __linux__
class ViewRegions {
 public:
  static constexpr size_t kHuge = size_t{2} << 20;
  static constexpr size_t kIdleRegions = 4;
  static constexpr size_t kIdleBytes = size_t{1} << 30;

  // A region of at least `bytes` starting on a huge-page boundary, or nullptr when the mapping fails.
  void* Acquire(size_t bytes, size_t& mapped, void*& start) {
    mapped = bytes + kHuge;  // room to start on a huge-page boundary
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto it = idle_.begin(); it != idle_.end(); ++it) {
        if (it->mapped == mapped) {
          void* region = it->region;
          idle_bytes_ -= mapped;
          idle_.erase(it);
          start = Aligned(region);
          return region;
        }
      }
    }
    void* region = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED) return nullptr;
    start = Aligned(region);
    madvise(start, bytes, MADV_HUGEPAGE);  // advice only: fine if it is not taken
    return region;
  }

  void Release(void* region, size_t mapped) {
    std::vector<Idle> evicted;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      idle_.push_back({region, mapped});
      idle_bytes_ += mapped;
      while (idle_.size() > kIdleRegions || (idle_.size() > 1 && idle_bytes_ > kIdleBytes)) {
        evicted.push_back(idle_.front());
        idle_bytes_ -= idle_.front().mapped;
        idle_.erase(idle_.begin());
      }
    }
    for (const Idle& idle : evicted) munmap(idle.region, idle.mapped);
  }

 private:
  struct Idle {
    void* region;
    size_t mapped;
  };
  static void* Aligned(void* region) {
    return reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(region) + kHuge - 1) & ~(kHuge - 1));
  }
  std::mutex mutex_;
  std::vector<Idle> idle_;  // oldest first
  size_t idle_bytes_ = 0;
};

ViewRegions& Regions() {
  static auto* regions = new ViewRegions();  // never destroyed: tensors may be released during process exit
  return *regions;
}
#endif

// An uninitialised tensor for a batch of views: big ones in a reused, huge-page aligned region.
at::Tensor EmptyViews(at::IntArrayRef shape, at::ScalarType dtype) {
#ifdef __linux__
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;
  const size_t bytes = static_cast<size_t>(numel) * c10::elementSize(dtype);
  if (bytes >= 2 * ViewRegions::kHuge) {
    size_t mapped = 0;
    void* start = nullptr;
    void* region = Regions().Acquire(bytes, mapped, start);
    if (region != nullptr) {
      return at::from_blob(start, shape, [region, mapped](void*) { Regions().Release(region, mapped); }, dtype);
    }
  }
#endif
  return at::empty(shape, dtype);
}

// Runs fn(worker, item) for item in [0, count) on `threads` threads (this one is worker 0), handing out items one at a
// time so that views of unequal cost balance. (The addon is not built with OpenMP, so at::parallel_for would run
// serially here.)
template <typename Fn>
void ParallelItems(int64_t count, int threads, Fn fn) {
  threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, count)));
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  auto work = [&](int worker) {
    try {
      for (int64_t item = next++; item < count && !failed; item = next++) fn(worker, item);
    } catch (...) {
      if (!failed.exchange(true)) error = std::current_exception();
    }
  };
  std::vector<std::thread> helpers;
  helpers.reserve(threads - 1);
  for (int t = 1; t < threads; ++t) helpers.emplace_back(work, t);
  work(0);
  for (std::thread& helper : helpers) helper.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace

bool AugmentCpuHasAvx2() {
#if SIMCLR_AVX2_KERNELS
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
#else
  return false;
#endif
}

std::vector<at::Tensor> AugmentViewsCpu(const at::Tensor& images, const ViewParams& p, bool vectorized) {
  TORCH_CHECK(!vectorized || AugmentCpuHasAvx2(), "augmentViews: the vectorised kernels need a CPU with AVX2");
  const int64_t batch = images.size(0), height = images.size(1), width = images.size(2);
  at::Tensor input = images.contiguous();
  const int64_t total = ViewsPerImage(p) * batch;
  auto boxes = p.boxes.accessor<double, 2>();
  for (int64_t k = 0; k < total; ++k) {
    TORCH_CHECK_VALUE(boxes[k][0] >= 0 && boxes[k][1] >= 0 && boxes[k][2] >= 1 && boxes[k][3] >= 1 &&
                          boxes[k][0] + boxes[k][2] <= height && boxes[k][1] + boxes[k][3] <= width &&
                          std::floor(boxes[k][0]) == boxes[k][0] && std::floor(boxes[k][1]) == boxes[k][1] &&
                          std::floor(boxes[k][2]) == boxes[k][2] && std::floor(boxes[k][3]) == boxes[k][3],
                      "augmentViews: box ", k, " is not a whole-pixel box inside the ", height, " x ", width, " image");
  }
  // Row k of the parameters: its group, and its output rows.
  std::vector<at::Tensor> outputs;
  std::vector<int64_t> group_of(total), first_row;
  for (size_t g = 0, row = 0; g < p.groups.size(); ++g) {
    const ViewGroup& group = p.groups[g];
    outputs.push_back(EmptyViews({group.views * batch, 3, group.size, group.size}, p.dtype));
    first_row.push_back(static_cast<int64_t>(row));
    for (int64_t k = 0; k < group.views * batch; ++k) group_of[row++] = static_cast<int64_t>(g);
  }
  const uint8_t* pixels = input.data_ptr<uint8_t>();
  const double* box = p.boxes.data_ptr<double>();
  const uint8_t* flip = p.flip.data_ptr<uint8_t>();
  const uint8_t* jitter = p.jitter_apply.data_ptr<uint8_t>();
  const float* factors = p.jitter_factors.data_ptr<float>();
  const uint8_t* order = p.jitter_order.data_ptr<uint8_t>();
  const uint8_t* gray = p.grayscale.data_ptr<uint8_t>();
  const float* sigma = p.blur_sigma.data_ptr<float>();
  const float mean[3] = {static_cast<float>(p.mean[0]), static_cast<float>(p.mean[1]), static_cast<float>(p.mean[2])};
  const float stddev[3] = {static_cast<float>(p.stddev[0]), static_cast<float>(p.stddev[1]), static_cast<float>(p.stddev[2])};
  const bool bf16 = p.dtype == at::kBFloat16;
  TORCH_CHECK(bf16 || p.dtype == at::kFloat, "augmentViews: the CPU kernels write float32 or bfloat16 views");
  auto job_for = [&](int64_t k) {
    const int64_t g = group_of[k], local = k - first_row[g];
    const ViewGroup& group = p.groups[g];
    ViewJob job;
    job.image = pixels + (local % batch) * height * width * 3;
    job.width = width;
    job.box = box + 4 * k;
    job.flip = flip[k] != 0;
    job.jitter = jitter[k] != 0;
    job.factors = factors + 4 * k;
    job.order = order + 4 * k;
    job.gray = gray[k] != 0;
    job.sigma = sigma[k];
    job.blur_kernel = group.blur_kernel;
    job.size = group.size;
    const int64_t offset = local * 3 * group.size * group.size;
    job.out = bf16 ? nullptr : outputs[g].data_ptr<float>() + offset;  // bf16: the worker's buffer, set by job_of_worker
    job.bf16_out = bf16 ? reinterpret_cast<uint16_t*>(outputs[g].data_ptr<at::BFloat16>()) + offset : nullptr;
    job.mean = mean;
    job.stddev = stddev;
    return job;
  };
  const int threads = at::get_num_threads();
  // bfloat16 views are built in float32 in a buffer of the worker's (in cache), then rounded into the output.
  std::vector<std::vector<float>> built(bf16 ? threads : 0);
  auto job_of_worker = [&](int worker, int64_t k) {
    ViewJob job = job_for(k);
    if (bf16) {
      built[worker].resize(3 * job.size * job.size);
      job.out = built[worker].data();
    }
    return job;
  };
  if (vectorized) {
#if SIMCLR_AVX2_KERNELS
    std::vector<avx2::Scratch> scratch(threads);
    ParallelItems(total, threads, [&](int worker, int64_t k) {
      const ViewJob job = job_of_worker(worker, k);
      avx2::BuildView(job, scratch[worker]);  // writes bf16_out itself in its last pass
    });
#endif
  } else {
    std::vector<std::vector<float>> scratch(threads);
    ParallelItems(total, threads, [&](int worker, int64_t k) {
      const ViewJob job = job_of_worker(worker, k);
      scalar::BuildView(job, scratch[worker]);
      if (job.bf16_out) {
        for (int64_t i = 0; i < 3 * job.size * job.size; ++i) job.bf16_out[i] = BFloat16Bits(job.out[i]);
      }
    });
  }
  return outputs;
}

}  // namespace simclr
