// JPEG decoding with libjpeg (see image_decode.h). libjpeg reports errors by calling error_exit, which must not
// return: it longjmps back to DecodeJpeg, whose frame holds nothing that needs destroying between the two.
#include "core/image_decode.h"

#include <algorithm>

#if SIMCLR_WITH_LIBJPEG
#include <csetjmp>
#include <cstdio>  // jpeglib.h needs FILE

#include <jpeglib.h>
#endif

namespace simclr {

#if SIMCLR_WITH_LIBJPEG

namespace {

struct ErrorManager {
  jpeg_error_mgr base;  // first, so libjpeg's j_common_ptr->err is also an ErrorManager*
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void OnError(j_common_ptr info) {
  auto* manager = reinterpret_cast<ErrorManager*>(info->err);
  manager->base.format_message(info, manager->message);
  longjmp(manager->jump, 1);
}

// Level -1 is a warning (corrupt or truncated data that libjpeg would patch over): an error here, as sharp's
// failOn: 'warning' made it. Other levels are trace messages.
void OnMessage(j_common_ptr info, int level) {
  if (level == -1) OnError(info);
}

}  // namespace

bool JpegDecoderAvailable() { return true; }

JpegResult DecodeJpeg(const uint8_t* data, size_t size, int64_t draft_width, int64_t draft_height, int64_t max_pixels,
                      std::vector<uint8_t>* pixels, int64_t* width, int64_t* height, std::string* error) {
  jpeg_decompress_struct info;
  ErrorManager manager;
  info.err = jpeg_std_error(&manager.base);
  manager.base.error_exit = OnError;
  manager.base.emit_message = OnMessage;
  if (setjmp(manager.jump)) {
    jpeg_destroy_decompress(&info);
    *error = manager.message;
    return JpegResult::kFailed;
  }
  jpeg_create_decompress(&info);
  jpeg_mem_src(&info, data, static_cast<unsigned long>(size));
  jpeg_read_header(&info, TRUE);
  if (info.jpeg_color_space == JCS_CMYK || info.jpeg_color_space == JCS_YCCK) {
    jpeg_destroy_decompress(&info);
    return JpegResult::kUnsupported;
  }
  if (static_cast<int64_t>(info.image_width) * info.image_height > max_pixels) {
    jpeg_destroy_decompress(&info);
    *error = "the image has more than " + std::to_string(max_pixels) + " pixels";
    return JpegResult::kFailed;
  }
  info.out_color_space = JCS_RGB;
  if (draft_width > 0 && draft_height > 0) {
    const int64_t fits = std::min<int64_t>(info.image_width / draft_width, info.image_height / draft_height);
    unsigned denom = 1;
    for (unsigned s : {8u, 4u, 2u}) {
      if (fits >= s) {
        denom = s;
        break;
      }
    }
    info.scale_num = 1;
    info.scale_denom = denom;
  }
  jpeg_start_decompress(&info);
  *width = info.output_width;
  *height = info.output_height;
  const size_t stride = static_cast<size_t>(info.output_width) * 3;
  pixels->resize(stride * info.output_height);
  while (info.output_scanline < info.output_height) {
    JSAMPROW row = pixels->data() + stride * info.output_scanline;
    jpeg_read_scanlines(&info, &row, 1);
  }
  jpeg_finish_decompress(&info);
  jpeg_destroy_decompress(&info);
  return JpegResult::kDecoded;
}

#else

bool JpegDecoderAvailable() { return false; }

JpegResult DecodeJpeg(const uint8_t*, size_t, int64_t, int64_t, int64_t, std::vector<uint8_t>*, int64_t*, int64_t*,
                      std::string*) {
  return JpegResult::kUnsupported;
}

#endif

}  // namespace simclr
