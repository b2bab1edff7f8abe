// Fused NT-Xent: row tiles of the similarity matrix, a log-sum-exp per row, the gradient accumulated tile by tile.
// See nt_xent.h for the definition. The algebra, with u the normalised rows, M = V*N rows, P the row softmax over
// k ≠ i and Y_ip = 1/(V-1) on the positives:
//   loss  = 1/M · ( Σ_i lse_i − Σ_i Σ_p u_i·u_p / ((V-1)τ) )
//   dL/du = 1/(Mτ) · ( (P + Pᵀ)·U − 2·Y·U )          (s_ik depends on both u_i and u_k)
// and Y·U needs no tile: row i of it is (Σ_v u_{v,image(i)} − u_i) / (V-1), the other views of its image.
#include "core/nt_xent.h"

#include <c10/core/GradMode.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace simclr {
namespace {

// A row tile holds about this many similarities, and at least kMinTileRows rows. On a CPU, 8 MiB in float32: on these
// machines a 128-row GEMM against all 8192 rows ran at ~33 GFLOPS, a 256-row one at ~42 and a 512-row one at ~55, but
// the 512-row tile's 16 MiB put the op's peak memory over a quarter of PyTorch's at N = 4096. On a GPU each op on a
// tile is one kernel launch, and at 8 MiB the launches bound the op (an H200 at N = 16384: 0.56x PyTorch's lean form,
// with 0.007 of its memory), so a tile there holds 128 MiB, still a small share of the lean form's whole matrix.
constexpr int64_t kCpuTileElements = int64_t(1) << 21;
constexpr int64_t kGpuTileElements = int64_t(1) << 25;
constexpr int64_t kMinTileRows = 256;

int64_t TileRows(const at::Tensor& u) {
  const int64_t rows = u.size(0);
  const int64_t elements = u.is_cpu() ? kCpuTileElements : kGpuTileElements;
  return std::min(rows, std::max(kMinTileRows, elements / rows));
}

// exp(s) needs no per-row shift when it can neither overflow nor underflow: |s| <= 1/τ for unit rows, so every term
// lies in [exp(−1/τ), exp(1/τ)] and a row sum below rows·exp(1/τ); the limits keep both well inside float32 (e^±87)
// and float64 (e^±708). Without a per-row shift the symmetric matrix can be swept once per pair {i, k}, which saves a
// third of the GEMM work; tiny temperatures (τ below ~1/70 in float32) take the shifted path.
bool ExpFitsWithoutShift(const at::Tensor& u, double temperature) {
  const double limit = u.scalar_type() == at::kDouble ? 700.0 : 80.0;
  return 1.0 / temperature + std::log(double(u.size(0))) < limit;
}

// float16/bfloat16 are computed in float32 (the accumulation precision); float32 and float64 as they are.
at::Tensor InComputeType(const at::Tensor& z) {
  return z.to(z.scalar_type() == at::kDouble ? at::kDouble : at::kFloat).contiguous();
}

struct Normalized {
  at::Tensor u;        // z / norm
  at::Tensor norm;     // rows x 1, max(|z_i|, eps)
  at::Tensor clamped;  // rows x 1, true where |z_i| < eps (the norm is then a constant)
};

Normalized Normalize(const at::Tensor& z) {
  at::Tensor raw = z.norm(2, {1}, /*keepdim=*/true);
  at::Tensor norm = raw.clamp_min(kNtXentNormEps);
  return {z / norm, norm, raw < kNtXentNormEps};
}

// Backward of u = z / max(|z|, eps): (du − u (u·du)) / |z| where the norm is not clamped, du / eps where it is.
at::Tensor NormalizeBackward(const Normalized& n, const at::Tensor& grad_u) {
  at::Tensor radial = (n.u * grad_u).sum(1, /*keepdim=*/true).masked_fill_(n.clamped, 0);
  return (grad_u - n.u * radial) / n.norm;
}

// Row i: the sum of the other views of its image, Σ_v u_{v,image(i)} − u_i.
at::Tensor PositiveSums(const at::Tensor& u, int64_t views) {
  at::Tensor per_view = u.view({views, u.size(0) / views, u.size(1)});
  return (per_view.sum(0, /*keepdim=*/true) - per_view).reshape(u.sizes());
}

at::Tensor MeanLoss(const at::Tensor& lse, const at::Tensor& u, const at::Tensor& positive_sums, double temperature,
                    int64_t views) {
  at::Tensor positive_logits = (u * positive_sums).sum() / (double(views - 1) * temperature);
  return (lse.sum() - positive_logits) / double(u.size(0));
}

// --- Moderate temperatures: exp(s) without a shift, each pair {i, k} of the symmetric matrix computed once per sweep.

// exp(s) of rows [begin, begin + count) against columns [begin, rows), self-similarities zeroed, written into `buffer`:
// the upper part of the matrix.
at::Tensor UpperExpTile(const at::Tensor& u, const at::Tensor& u_over_t, int64_t begin, int64_t count,
                        const at::Tensor& buffer) {
  const int64_t width = u.size(0) - begin;
  at::Tensor tile = buffer.narrow(0, 0, count * width).view({count, width});
  at::mm_out(tile, u_over_t.narrow(0, begin, count), u.narrow(0, begin, width).t());
  tile.diagonal().fill_(-std::numeric_limits<double>::infinity());
  return tile.exp_();
}

// Each tile's row sums go to its rows, and the column sums of its part right of the diagonal block to those columns'
// rows (s is symmetric).
at::Tensor SymmetricLogSumExp(const at::Tensor& u, double temperature) {
  const int64_t rows = u.size(0);
  const int64_t tile_rows = TileRows(u);
  at::Tensor u_over_t = u / temperature;
  at::Tensor buffer = at::empty({tile_rows * rows}, u.options());
  at::Tensor sums = at::zeros({rows}, u.options());
  for (int64_t begin = 0; begin < rows; begin += tile_rows) {
    const int64_t count = std::min(tile_rows, rows - begin);
    const int64_t right = rows - begin - count;
    at::Tensor tile = UpperExpTile(u, u_over_t, begin, count, buffer);
    sums.narrow(0, begin, count).add_(tile.sum(1));
    if (right > 0) sums.narrow(0, begin + count, right).add_(tile.narrow(1, count, right).sum(0));
  }
  return sums.log_();
}

// (P + Pᵀ)_ik = exp(s_ik)·(f_i + f_k) with f = exp(−lse): one GEMM for the tile's rows, one for its columns right of
// the diagonal block (the diagonal block is symmetric and already complete from the rows' side).
void SymmetricSoftmaxTerm(const at::Tensor& u, double temperature, const at::Tensor& lse, at::Tensor& term) {
  const int64_t rows = u.size(0);
  const int64_t tile_rows = TileRows(u);
  at::Tensor u_over_t = u / temperature;
  at::Tensor buffer = at::empty({tile_rows * rows}, u.options());
  // The broadcast sum f_i + f_k is formed a few rows at a time on a CPU, so it needs a buffer of 16 rows, not a tile
  // (and stays in cache); on a GPU a whole tile at once, one launch instead of one per 16 rows.
  const int64_t pair_factor_rows = u.is_cpu() ? 16 : tile_rows;
  at::Tensor pair_factor_buffer = at::empty({pair_factor_rows * rows}, u.options());
  at::Tensor f = lse.neg().exp_();
  for (int64_t begin = 0; begin < rows; begin += tile_rows) {
    const int64_t count = std::min(tile_rows, rows - begin);
    const int64_t right = rows - begin - count;
    at::Tensor tile = UpperExpTile(u, u_over_t, begin, count, buffer);
    at::Tensor f_columns = f.narrow(0, begin, rows - begin).unsqueeze(0);
    for (int64_t row = 0; row < count; row += pair_factor_rows) {
      const int64_t n = std::min(pair_factor_rows, count - row);
      at::Tensor pair_factor = pair_factor_buffer.narrow(0, 0, n * f_columns.size(1)).view({n, f_columns.size(1)});
      tile.narrow(0, row, n).mul_(at::add_out(pair_factor, f.narrow(0, begin + row, n).unsqueeze(1), f_columns));
    }
    term.narrow(0, begin, count).addmm_(tile, u.narrow(0, begin, rows - begin));
    if (right > 0) term.narrow(0, begin + count, right).addmm_(tile.narrow(1, count, right).t(), u.narrow(0, begin, count));
  }
}

// --- Tiny temperatures: exp(s) could overflow, so each row is shifted by its max (or its known log-sum-exp), which
// needs whole rows: one-sided tiles, every similarity computed from its row's side.

// Rows [begin, begin + count) of s = (u/τ)·uᵀ with the self-similarities set to −inf, written into `buffer`.
at::Tensor SimilarityTile(const at::Tensor& u, const at::Tensor& u_over_t, int64_t begin, int64_t count,
                          const at::Tensor& buffer) {
  at::Tensor tile = buffer.narrow(0, 0, count * u.size(0)).view({count, u.size(0)});
  at::mm_out(tile, u_over_t.narrow(0, begin, count), u.t());
  tile.diagonal(begin).fill_(-std::numeric_limits<double>::infinity());
  return tile;
}

at::Tensor ShiftedLogSumExp(const at::Tensor& u, double temperature) {
  const int64_t rows = u.size(0);
  const int64_t tile_rows = TileRows(u);
  at::Tensor u_over_t = u / temperature;
  at::Tensor buffer = at::empty({tile_rows * rows}, u.options());
  at::Tensor lse = at::empty({rows}, u.options());
  for (int64_t begin = 0; begin < rows; begin += tile_rows) {
    const int64_t count = std::min(tile_rows, rows - begin);
    at::Tensor tile = SimilarityTile(u, u_over_t, begin, count, buffer);
    at::Tensor row_max = std::get<0>(tile.max(1, /*keepdim=*/true));
    at::Tensor row_sum = tile.sub_(row_max).exp_().sum(1, /*keepdim=*/true);
    lse.narrow(0, begin, count).copy_(row_sum.log_().add_(row_max).squeeze(1));
  }
  return lse;
}

void ShiftedSoftmaxTerm(const at::Tensor& u, double temperature, const at::Tensor& lse, at::Tensor& term) {
  const int64_t rows = u.size(0);
  const int64_t tile_rows = TileRows(u);
  at::Tensor u_over_t = u / temperature;
  at::Tensor buffer = at::empty({tile_rows * rows}, u.options());
  for (int64_t begin = 0; begin < rows; begin += tile_rows) {
    const int64_t count = std::min(tile_rows, rows - begin);
    at::Tensor p = SimilarityTile(u, u_over_t, begin, count, buffer).sub_(lse.narrow(0, begin, count).unsqueeze(1)).exp_();
    term.narrow(0, begin, count).addmm_(p, u);      // P·U, this tile's rows
    term.addmm_(p.t(), u.narrow(0, begin, count));  // Pᵀ·U, this tile's columns of Pᵀ
  }
}

// The per-row log Σ_{k≠i} exp(s_ik).
at::Tensor RowLogSumExp(const at::Tensor& u, double temperature) {
  return ExpFitsWithoutShift(u, temperature) ? SymmetricLogSumExp(u, temperature) : ShiftedLogSumExp(u, temperature);
}

// (P + Pᵀ)·U, P the row softmax over k ≠ i, recomputed tile by tile from the per-row log-sum-exp.
at::Tensor SoftmaxTerm(const at::Tensor& u, double temperature, const at::Tensor& lse) {
  at::Tensor term = at::zeros_like(u);
  if (ExpFitsWithoutShift(u, temperature)) {
    SymmetricSoftmaxTerm(u, temperature, lse, term);
  } else {
    ShiftedSoftmaxTerm(u, temperature, lse, term);
  }
  return term;
}

// dL/dz from the (P + Pᵀ)·U term, scaled by `grad_scale` (the upstream gradient; undefined means 1).
at::Tensor GradientFromSoftmaxTerm(const Normalized& n, at::Tensor softmax_term, const at::Tensor& positive_sums,
                                   double temperature, int64_t views, const at::Tensor& grad_scale) {
  at::Tensor grad_u = softmax_term.sub_(positive_sums, 2.0 / double(views - 1))
                          .mul_(1.0 / (double(n.u.size(0)) * temperature));
  if (grad_scale.defined()) grad_u.mul_(grad_scale);
  return NormalizeBackward(n, grad_u);
}

class NtXentFunction : public torch::autograd::Function<NtXentFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& z, double temperature,
                            int64_t views) {
    Normalized n = Normalize(InComputeType(z));
    at::Tensor lse = RowLogSumExp(n.u, temperature);
    // Only z and one number per row are kept; the tiles are recomputed in backward.
    ctx->save_for_backward({z, lse});
    ctx->saved_data["temperature"] = temperature;
    ctx->saved_data["views"] = views;
    return MeanLoss(lse, n.u, PositiveSums(n.u, views), temperature, views);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const double temperature = ctx->saved_data["temperature"].toDouble();
    const int64_t views = ctx->saved_data["views"].toInt();
    torch::autograd::variable_list saved = ctx->get_saved_variables();
    const at::Tensor& z = saved[0];
    Normalized n = Normalize(InComputeType(z));
    at::Tensor grad_z = GradientFromSoftmaxTerm(n, SoftmaxTerm(n.u, temperature, saved[1]), PositiveSums(n.u, views),
                                                temperature, views, grad_outputs[0].to(n.u.scalar_type()));
    return {grad_z.to(z.scalar_type()), at::Tensor(), at::Tensor()};
  }
};

// --- Local rows x global columns (the data-parallel form): row tiles of this rank's anchors against every column.

int64_t LocalTileRows(const at::Tensor& u_local, int64_t columns) {
  const int64_t rows = u_local.size(0);
  const int64_t elements = u_local.is_cpu() ? kCpuTileElements : kGpuTileElements;
  return std::min(rows, std::max(kMinTileRows, elements / columns));
}

// Rows [begin, begin + count) of s = (u_local/τ)·u_allᵀ with each anchor's own column (offset + its row) set to −inf,
// written into `buffer`.
at::Tensor LocalSimilarityTile(const at::Tensor& u_local_over_t, const at::Tensor& u_all, int64_t offset, int64_t begin,
                               int64_t count, const at::Tensor& buffer) {
  const int64_t columns = u_all.size(0);
  at::Tensor tile = buffer.narrow(0, 0, count * columns).view({count, columns});
  at::mm_out(tile, u_local_over_t.narrow(0, begin, count), u_all.t());
  tile.narrow(1, offset + begin, count).diagonal().fill_(-std::numeric_limits<double>::infinity());
  return tile;
}

// log Σ_{k≠self} exp(s_ik) for each local anchor, unshifted when exp cannot overflow (see ExpFitsWithoutShift).
at::Tensor LocalRowLogSumExp(const at::Tensor& u_local, const at::Tensor& u_all, int64_t offset, double temperature) {
  const int64_t rows = u_local.size(0);
  const int64_t tile_rows = LocalTileRows(u_local, u_all.size(0));
  const bool unshifted = ExpFitsWithoutShift(u_all, temperature);
  at::Tensor u_over_t = u_local / temperature;
  at::Tensor buffer = at::empty({tile_rows * u_all.size(0)}, u_local.options());
  at::Tensor lse = at::empty({rows}, u_local.options());
  for (int64_t begin = 0; begin < rows; begin += tile_rows) {
    const int64_t count = std::min(tile_rows, rows - begin);
    at::Tensor tile = LocalSimilarityTile(u_over_t, u_all, offset, begin, count, buffer);
    if (unshifted) {
      lse.narrow(0, begin, count).copy_(tile.exp_().sum(1).log_());
    } else {
      at::Tensor row_max = std::get<0>(tile.max(1, /*keepdim=*/true));
      at::Tensor row_sum = tile.sub_(row_max).exp_().sum(1, /*keepdim=*/true);
      lse.narrow(0, begin, count).copy_(row_sum.log_().add_(row_max).squeeze(1));
    }
  }
  return lse;
}

// P·U_all for the local rows (term_local) and Pᵀ·U_local for every column (term_all), P the row softmax over k ≠ self.
void LocalSoftmaxTerms(const at::Tensor& u_local, const at::Tensor& u_all, int64_t offset, double temperature,
                       const at::Tensor& lse, at::Tensor& term_local, at::Tensor& term_all) {
  const int64_t rows = u_local.size(0);
  const int64_t tile_rows = LocalTileRows(u_local, u_all.size(0));
  at::Tensor u_over_t = u_local / temperature;
  at::Tensor buffer = at::empty({tile_rows * u_all.size(0)}, u_local.options());
  for (int64_t begin = 0; begin < rows; begin += tile_rows) {
    const int64_t count = std::min(tile_rows, rows - begin);
    at::Tensor p = LocalSimilarityTile(u_over_t, u_all, offset, begin, count, buffer)
                       .sub_(lse.narrow(0, begin, count).unsqueeze(1))
                       .exp_();
    term_local.narrow(0, begin, count).addmm_(p, u_all);
    term_all.addmm_(p.t(), u_local.narrow(0, begin, count));
  }
}

// Both gradients from the local forward's saved pieces, scaled by `grad_scale` (undefined means 1).
std::pair<at::Tensor, at::Tensor> LocalRowsGradients(const Normalized& local, const Normalized& all, int64_t offset,
                                                     double temperature, int64_t views, const at::Tensor& lse,
                                                     const at::Tensor& positive_sums, const at::Tensor& grad_scale) {
  at::Tensor term_local = at::zeros_like(local.u);
  at::Tensor term_all = at::zeros_like(all.u);
  LocalSoftmaxTerms(local.u, all.u, offset, temperature, lse, term_local, term_all);
  at::Tensor grad_local = GradientFromSoftmaxTerm(local, term_local, positive_sums, temperature, views, grad_scale);
  at::Tensor grad_u_all = term_all.mul_(1.0 / (double(local.u.size(0)) * temperature));
  if (grad_scale.defined()) grad_u_all.mul_(grad_scale);
  return {grad_local, NormalizeBackward(all, grad_u_all)};
}

class NtXentLocalRowsFunction : public torch::autograd::Function<NtXentLocalRowsFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& z_local, const at::Tensor& z_all,
                            int64_t offset, double temperature, int64_t views) {
    Normalized local = Normalize(InComputeType(z_local));
    Normalized all = Normalize(InComputeType(z_all));
    at::Tensor lse = LocalRowLogSumExp(local.u, all.u, offset, temperature);
    ctx->save_for_backward({z_local, z_all, lse});
    ctx->saved_data["offset"] = offset;
    ctx->saved_data["temperature"] = temperature;
    ctx->saved_data["views"] = views;
    return MeanLoss(lse, local.u, PositiveSums(local.u, views), temperature, views);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    torch::autograd::variable_list saved = ctx->get_saved_variables();
    const int64_t views = ctx->saved_data["views"].toInt();
    Normalized local = Normalize(InComputeType(saved[0]));
    Normalized all = Normalize(InComputeType(saved[1]));
    auto grads = LocalRowsGradients(local, all, ctx->saved_data["offset"].toInt(),
                                    ctx->saved_data["temperature"].toDouble(), views, saved[2],
                                    PositiveSums(local.u, views), grad_outputs[0].to(local.u.scalar_type()));
    return {grads.first.to(saved[0].scalar_type()), grads.second.to(saved[1].scalar_type()), at::Tensor(), at::Tensor(),
            at::Tensor()};
  }
};

}  // namespace

// "1e-8" as JavaScript (and the TS edge's message) writes kNtXentMinTemperature, not C++'s "1e-08".
static void CheckNtXentTemperature(double temperature) {
  TORCH_CHECK_VALUE(std::isfinite(temperature) && temperature > kNtXentMinTemperature,
                    "Expected a finite number > 1e-8 for temperature but received ", temperature);
}
static_assert(kNtXentMinTemperature == 1e-8, "CheckNtXentTemperature's message names the bound");

void CheckNtXentArgs(const at::Tensor& z, double temperature, int64_t views) {
  TORCH_CHECK_TYPE(z.defined(), "Expected a tensor for z but received an undefined tensor");
  TORCH_CHECK_TYPE(at::isFloatingType(z.scalar_type()),
                   "Expected a floating-point tensor (float32, float64, float16 or bfloat16) for z but received dtype ",
                   z.scalar_type());
  TORCH_CHECK_VALUE(z.dim() == 2, "Expected a 2-D tensor [views * N, d] for z but received shape ", z.sizes());
  CheckNtXentTemperature(temperature);
  TORCH_CHECK_VALUE(views >= 2, "Expected an integer >= 2 for views but received ", views);
  TORCH_CHECK_VALUE(z.size(0) % views == 0, "z has ", z.size(0), " rows, which is not a multiple of views = ", views,
                    " (z holds views * N rows, view-major)");
  TORCH_CHECK_VALUE(z.size(0) / views >= 2, "NT-Xent needs at least 2 images for a negative, but z has ",
                    z.size(0) / views, " image(s) of ", views, " views");
  TORCH_CHECK_VALUE(z.size(1) >= 1, "Expected at least one feature column in z but received shape ", z.sizes());
}

at::Tensor NtXentLoss(const at::Tensor& z, double temperature, int64_t views) {
  return NtXentFunction::apply(z, temperature, views);
}

std::pair<at::Tensor, at::Tensor> NtXentForwardBackward(const at::Tensor& z, double temperature, int64_t views) {
  c10::AutoGradMode no_autograd(false);
  Normalized n = Normalize(InComputeType(z));
  at::Tensor lse = RowLogSumExp(n.u, temperature);
  at::Tensor positive_sums = PositiveSums(n.u, views);
  at::Tensor loss = MeanLoss(lse, n.u, positive_sums, temperature, views);
  at::Tensor grad_z =
      GradientFromSoftmaxTerm(n, SoftmaxTerm(n.u, temperature, lse), positive_sums, temperature, views, at::Tensor());
  return {loss, grad_z.to(z.scalar_type())};
}

void CheckNtXentLocalRows(const at::Tensor& z_local, const at::Tensor& z_all, int64_t offset, int64_t views) {
  for (const auto& [z, name] : {std::pair<const at::Tensor&, const char*>{z_local, "zLocal"}, {z_all, "zAll"}}) {
    TORCH_CHECK_TYPE(z.defined(), "Expected a tensor for ", name, " but received an undefined tensor");
    TORCH_CHECK_TYPE(at::isFloatingType(z.scalar_type()), "Expected a floating-point tensor for ", name,
                     " but received dtype ", z.scalar_type());
    TORCH_CHECK_VALUE(z.dim() == 2 && z.size(1) >= 1, "Expected a 2-D tensor [rows, d] for ", name,
                      " but received shape ", z.sizes());
  }
  TORCH_CHECK_VALUE(z_local.size(1) == z_all.size(1), "Expected the same width as zLocal (", z_local.size(1),
                    ") for zAll but received ", z_all.size(1));
  TORCH_CHECK_VALUE(z_local.device() == z_all.device(), "Expected zLocal's device (", z_local.device(),
                    ") for zAll but received ", z_all.device());
  TORCH_CHECK_VALUE(z_local.size(0) % views == 0 && z_local.size(0) >= views, "Expected views = ", views,
                    " views of at least one image (view-major) in zLocal but received ", z_local.size(0), " rows");
  TORCH_CHECK_VALUE(z_all.size(0) >= 2 * views, "NT-Xent needs at least 2 images over all ranks, but zAll has ",
                    z_all.size(0), " rows of ", views, " views");
  TORCH_CHECK_VALUE(offset >= 0 && offset + z_local.size(0) <= z_all.size(0), "offset ", offset, " does not place the ",
                    z_local.size(0), " local rows inside the ", z_all.size(0), " rows of zAll");
}

void CheckNtXentLocalRowsArgs(const at::Tensor& z_local, const at::Tensor& z_all, int64_t offset, double temperature,
                              int64_t views) {
  CheckNtXentTemperature(temperature);
  TORCH_CHECK_VALUE(views >= 2, "Expected an integer >= 2 for views but received ", views);
  CheckNtXentLocalRows(z_local, z_all, offset, views);
}

at::Tensor NtXentLocalRowsLoss(const at::Tensor& z_local, const at::Tensor& z_all, int64_t offset, double temperature,
                               int64_t views) {
  return NtXentLocalRowsFunction::apply(z_local, z_all, offset, temperature, views);
}

NtXentLocalRowsResult NtXentLocalRowsForwardBackward(const at::Tensor& z_local, const at::Tensor& z_all, int64_t offset,
                                                     double temperature, int64_t views) {
  c10::AutoGradMode no_autograd(false);
  Normalized local = Normalize(InComputeType(z_local));
  Normalized all = Normalize(InComputeType(z_all));
  at::Tensor lse = LocalRowLogSumExp(local.u, all.u, offset, temperature);
  at::Tensor positive_sums = PositiveSums(local.u, views);
  at::Tensor loss = MeanLoss(lse, local.u, positive_sums, temperature, views);
  auto grads = LocalRowsGradients(local, all, offset, temperature, views, lse, positive_sums, at::Tensor());
  return {loss, grads.first.to(z_local.scalar_type()), grads.second.to(z_all.scalar_type())};
}

std::pair<at::Tensor, at::Tensor> NtXentReference(const at::Tensor& z, double temperature, int64_t views) {
  c10::AutoGradMode with_autograd(true);
  at::Tensor leaf = InComputeType(z).detach().requires_grad_(true);
  const int64_t rows = leaf.size(0);
  at::Tensor u = leaf / leaf.norm(2, {1}, /*keepdim=*/true).clamp_min(kNtXentNormEps);
  at::Tensor index = at::arange(rows, leaf.options().dtype(at::kLong).requires_grad(false));
  at::Tensor self = index.unsqueeze(1).eq(index.unsqueeze(0));
  at::Tensor image = index.remainder(rows / views);
  at::Tensor positive = image.unsqueeze(1).eq(image.unsqueeze(0)).logical_and(self.logical_not());
  at::Tensor logits = u.mm(u.t()).div(temperature).masked_fill(self, -std::numeric_limits<double>::infinity());
  at::Tensor positive_log_prob = logits.log_softmax(1).masked_fill(positive.logical_not(), 0);
  at::Tensor loss = positive_log_prob.sum(1).div(-double(views - 1)).mean();
  loss.backward();
  return {loss.detach(), leaf.grad().to(z.scalar_type())};
}

}  // namespace simclr
