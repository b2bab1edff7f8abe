// Resizing decoded images to a dataset's base size, as the seed's torchvision Resize on PIL images does.
#pragma once

#include <cstdint>

namespace simclr {

// Resizes a uint8 RGB image (height x width x 3, row-major) to out_height x out_width as PIL's
// Image.resize(size, BILINEAR): a triangle filter widened by the scale factor when shrinking (so it averages every
// input pixel, like an antialiased resize), weights normalised per output pixel and rounded to 22-bit fixed point, a
// horizontal pass over the rows the vertical pass needs, then the vertical pass, each rounded to uint8. Same bytes as
// Pillow. `out` holds out_height * out_width * 3 bytes. Sizes must be in [1, 65536].
void ResizeBilinearAntialias(const uint8_t* in, int64_t height, int64_t width, uint8_t* out, int64_t out_height,
                             int64_t out_width);

}  // namespace simclr
