// Decoding JPEGs to RGB with libjpeg(-turbo), as Pillow does, optionally scaled on load (DCT scaling) as PIL's draft.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace simclr {

// Whether the addon was built with libjpeg (the build finds jpeglib.h and libjpeg; without them JPEGs go to sharp).
bool JpegDecoderAvailable();

enum class JpegResult {
  kDecoded,
  kUnsupported,  // a colour space with no RGB conversion here (CMYK, YCCK) or no libjpeg: decode it another way
  kFailed,       // damaged or truncated data (libjpeg's warnings count as errors too); `error` says what
};

// Decodes the JPEG in `data` to RGB (`pixels`: height x width x 3, row-major; grayscale replicated) with libjpeg's
// defaults (islow IDCT, fancy upsampling): Pillow's `Image.open(f).convert('RGB')`, byte for byte with the same
// libjpeg. With draft_width and draft_height > 0 the image is scaled on load as PIL's `Image.draft('RGB', size)`: by
// the largest of 1/2, 1/4, 1/8 that min(width / draft_width, height / draft_height) (integer quotients) allows, so it
// stays at least that size. Images over max_pixels (before scaling) fail.
JpegResult DecodeJpeg(const uint8_t* data, size_t size, int64_t draft_width, int64_t draft_height, int64_t max_pixels,
                      std::vector<uint8_t>* pixels, int64_t* width, int64_t* height, std::string* error);

}  // namespace simclr
