// PIL's BILINEAR resampling of uint8 RGB images (see image_resize.h): integer arithmetic throughout, so the AVX2
// vertical pass and the scalar one give the same bytes.
#include "core/image_resize.h"

#include <algorithm>
#include <cmath>
#include <vector>

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define SIMCLR_RESIZE_AVX2 1
#include <immintrin.h>
#else
#define SIMCLR_RESIZE_AVX2 0
#endif

namespace simclr {

namespace {

constexpr int kBits = 22;  // fixed-point weights: 8 bits of pixel and 2 of headroom in an int32
constexpr int32_t kHalf = 1 << (kBits - 1);

inline uint8_t Round8(int32_t sum) { return static_cast<uint8_t>(std::min(std::max(sum >> kBits, 0), 255)); }

// For each output position: the first input position, how many follow, and their weights (`taps` per position).
struct Weights {
  int taps = 0;
  std::vector<int32_t> first, count, weight;
};

Weights Triangle(int64_t in_size, int64_t out_size) {
  const double scale = static_cast<double>(in_size) / static_cast<double>(out_size);
  const double widen = std::max(scale, 1.0);  // the filter covers `widen` input pixels per output pixel
  const double support = widen;
  Weights w;
  w.taps = static_cast<int>(std::ceil(support)) * 2 + 1;
  w.first.resize(out_size);
  w.count.resize(out_size);
  w.weight.assign(out_size * w.taps, 0);
  std::vector<double> real(w.taps);
  const double inverse = 1.0 / widen;  // PIL multiplies by this (dividing would round differently)
  for (int64_t o = 0; o < out_size; ++o) {
    const double center = (static_cast<double>(o) + 0.5) * scale;
    const int64_t lo = std::max<int64_t>(0, static_cast<int64_t>(center - support + 0.5));
    const int64_t hi = std::min<int64_t>(in_size, static_cast<int64_t>(center + support + 0.5));
    const int64_t n = hi - lo;
    double total = 0;
    for (int64_t j = 0; j < n; ++j) {
      const double x = std::abs((static_cast<double>(j + lo) - center + 0.5) * inverse);
      real[j] = x < 1.0 ? 1.0 - x : 0.0;
      total += real[j];
    }
    for (int64_t j = 0; j < n; ++j) {
      const double r = total != 0.0 ? real[j] / total : real[j];
      w.weight[o * w.taps + j] = static_cast<int32_t>(r < 0 ? -0.5 + r * (1 << kBits) : 0.5 + r * (1 << kBits));
    }
    w.first[o] = static_cast<int32_t>(lo);
    w.count[o] = static_cast<int32_t>(n);
  }
  return w;
}

// out row = sum over the taps of weight x input row, for rows of `n` bytes.
void CombineRowsScalar(const uint8_t* const* rows, const int32_t* weight, int count, uint8_t* out, int64_t n) {
  for (int64_t x = 0; x < n; ++x) {
    int32_t sum = kHalf;
    for (int j = 0; j < count; ++j) sum += rows[j][x] * weight[j];
    out[x] = Round8(sum);
  }
}

#if SIMCLR_RESIZE_AVX2
__attribute__((target("avx2"))) void CombineRowsAvx2(const uint8_t* const* rows, const int32_t* weight, int count,
                                                     uint8_t* out, int64_t n) {
  const __m256i half = _mm256_set1_epi32(kHalf), zero = _mm256_setzero_si256(), top = _mm256_set1_epi32(255);
  // Byte 0 of each 32-bit lane to the first 4 bytes of each 128-bit half.
  const __m256i low_bytes = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                             0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  int64_t x = 0;
  for (; x + 8 <= n; x += 8) {
    __m256i sum = half;
    for (int j = 0; j < count; ++j) {
      const __m256i pixels = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(rows[j] + x)));
      sum = _mm256_add_epi32(sum, _mm256_mullo_epi32(pixels, _mm256_set1_epi32(weight[j])));
    }
    const __m256i clamped = _mm256_min_epi32(_mm256_max_epi32(_mm256_srai_epi32(sum, kBits), zero), top);
    const __m256i packed = _mm256_shuffle_epi8(clamped, low_bytes);
    const int32_t a = _mm_cvtsi128_si32(_mm256_castsi256_si128(packed));
    const int32_t b = _mm_cvtsi128_si32(_mm256_extracti128_si256(packed, 1));
    std::copy_n(reinterpret_cast<const uint8_t*>(&a), 4, out + x);
    std::copy_n(reinterpret_cast<const uint8_t*>(&b), 4, out + x + 4);
  }
  // The last bytes of the row, with the same integer arithmetic.
  std::vector<const uint8_t*> rest(rows, rows + count);
  for (const uint8_t*& row : rest) row += x;
  CombineRowsScalar(rest.data(), weight, count, out + x, n - x);
}
#endif

void CombineRows(const uint8_t* const* rows, const int32_t* weight, int count, uint8_t* out, int64_t n) {
#if SIMCLR_RESIZE_AVX2
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx2) {
    CombineRowsAvx2(rows, weight, count, out, n);
    return;
  }
#endif
  CombineRowsScalar(rows, weight, count, out, n);
}

// Rows [row_first, row_last) of `in` (`width` pixels each) resampled horizontally to `out_width` pixels, into `out`.
void HorizontalPass(const uint8_t* in, int64_t width, int64_t row_first, int64_t row_last, const Weights& xs,
                    int64_t out_width, uint8_t* out) {
  for (int64_t y = row_first; y < row_last; ++y) {
    const uint8_t* line = in + y * width * 3;
    uint8_t* o = out + (y - row_first) * out_width * 3;
    for (int64_t x = 0; x < out_width; ++x) {
      const int32_t* k = xs.weight.data() + x * xs.taps;
      const uint8_t* p = line + xs.first[x] * 3;
      int32_t r = kHalf, g = kHalf, b = kHalf;
      for (int32_t j = 0; j < xs.count[x]; ++j, p += 3) {
        r += p[0] * k[j];
        g += p[1] * k[j];
        b += p[2] * k[j];
      }
      o[3 * x] = Round8(r);
      o[3 * x + 1] = Round8(g);
      o[3 * x + 2] = Round8(b);
    }
  }
}

// `rows` holds input rows row_first, row_first + 1, ... of `row_bytes` bytes; out gets ys's output rows.
void VerticalPass(const uint8_t* rows, int64_t row_first, int64_t row_bytes, const Weights& ys, int64_t out_height,
                  uint8_t* out) {
  std::vector<const uint8_t*> taps(ys.taps);
  for (int64_t y = 0; y < out_height; ++y) {
    for (int32_t j = 0; j < ys.count[y]; ++j) taps[j] = rows + (ys.first[y] - row_first + j) * row_bytes;
    CombineRows(taps.data(), ys.weight.data() + y * ys.taps, ys.count[y], out + y * row_bytes, row_bytes);
  }
}

}  // namespace

void ResizeBilinearAntialias(const uint8_t* in, int64_t height, int64_t width, uint8_t* out, int64_t out_height,
                             int64_t out_width) {
  const Weights ys = Triangle(height, out_height);
  const int64_t row_bytes = width * 3, out_row_bytes = out_width * 3;
  if (out_width == width) {
    VerticalPass(in, 0, row_bytes, ys, out_height, out);
    return;
  }
  const Weights xs = Triangle(width, out_width);
  if (out_height == height) {
    HorizontalPass(in, width, 0, height, xs, out_width, out);
    return;
  }
  // Both passes round to uint8 in between, so their order shows in the bytes (by 1 in about a tenth of them). Current
  // Pillow (13, what pip's torchvision installs) runs the vertical pass first when the width grows and the height
  // shrinks, else the horizontal pass first; Pillow 9.4 (Debian bookworm's) always ran the horizontal one first. We
  // follow current Pillow.
  if (out_width > width && out_height < height) {
    std::vector<uint8_t> shortened(out_height * row_bytes);
    VerticalPass(in, 0, row_bytes, ys, out_height, shortened.data());
    HorizontalPass(shortened.data(), width, 0, out_height, xs, out_width, out);
    return;
  }
  // The horizontal pass covers only the input rows the vertical pass reads.
  const int64_t row_first = ys.first[0], row_last = ys.first[out_height - 1] + ys.count[out_height - 1];
  std::vector<uint8_t> narrowed((row_last - row_first) * out_row_bytes);
  HorizontalPass(in, width, row_first, row_last, xs, out_width, narrowed.data());
  VerticalPass(narrowed.data(), row_first, out_row_bytes, ys, out_height, out);
}

}  // namespace simclr
