// One check shared by the evaluation kernels: features must be finite numbers (a diverged encoder gives NaN features,
// and a kNN vote or a probe over them would report an accuracy that means nothing).
#pragma once

#include <ATen/ATen.h>

#include <cmath>

namespace simclr {

// Throws c10::ValueError naming `what` and the first row with a NaN or infinite value, unless every value of the
// 2-D `features` is finite.
inline void CheckFiniteRows(const at::Tensor& features, const char* what) {
  if (!at::isFloatingType(features.scalar_type()) || features.numel() == 0) return;
  // One vectorised pass in the common case: a NaN or an infinity makes the sum non-finite (and a sum that overflows
  // only sends the check to the exact path below).
  if (std::isfinite(features.sum().item<double>())) return;
  const at::Tensor bad_rows = features.isfinite().logical_not().reshape({features.size(0), -1}).any(1);
  if (!bad_rows.any().item<bool>()) return;
  const int64_t row = bad_rows.nonzero().select(1, 0)[0].item<int64_t>();
  TORCH_CHECK_VALUE(false, what, " hold NaN or infinite values (first at row ", row,
                    "): the encoder diverged or its input is corrupt");
}

}  // namespace simclr
