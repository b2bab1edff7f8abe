// Fused NT-Xent (normalised temperature-scaled cross-entropy), the SimCLR loss, as a native op. No napi here.
//
// z holds V views of N images, view-major (V*N x d): rows i and i + N are views of image i. Rows are l2-normalised
// (norms below kNtXentNormEps are clamped to it), s_ik = u_i·u_k / temperature, and the loss is the mean over all V*N
// anchors i of
//     -1/|P(i)| Σ_{p∈P(i)} log( exp(s_ip) / Σ_{k≠i} exp(s_ik) ),    P(i) = the other V-1 views of i's image.
// For V = 2 that is the SimCLR paper's NT-Xent (one positive, 2N-2 negatives); for V > 2 it is SupCon's L_out form
// (the mean of the log-probabilities over the positives).
//
// The V*N x V*N similarity matrix is never materialised: row tiles (~2M entries, at least 256 rows) are computed with
// one GEMM each and reduced to a log-sum-exp per row; the gradient sweep recomputes them (the flash-attention idea).
// When exp(s) cannot overflow (1/τ + log(V*N) < 80 in float32, so τ above ~0.015) the tiles cover only the upper part
// of the symmetric matrix and each pair {i, k} serves both rows, which saves a third of the GEMM work; smaller
// temperatures take whole-row tiles shifted by the row max. Memory is O(V*N·d + tile·V*N). Plain ATen, so CPU and CUDA
// alike. Float32 accumulation (float16/bfloat16 inputs are computed in float32), float64 stays float64.
//
// NaN or ±Inf anywhere in z gives a NaN loss and an all-NaN gradient (a row's similarities reach every row's
// denominator); there is no check, since it would cost an extra pass and, on a GPU, a synchronisation.
#pragma once

#include <ATen/ATen.h>

#include <utility>

namespace simclr {

// Rows whose l2 norm is below this are divided by it instead: a normal float16 number (the smallest is 6.1e-5), so it
// neither underflows nor flushes to zero in half precision the way F.normalize's 1e-12 does.
constexpr double kNtXentNormEps = 1e-4;
// Temperatures at or below this are an error rather than a NaN later (lightly does the same).
constexpr double kNtXentMinTemperature = 1e-8;

// The ntXent op's precondition, checked once where the op is entered (bind/nt_xent.cc): throws c10::TypeError (not
// floating point) or c10::ValueError (shape, views, temperature) naming the problem. The kernels below do not check
// again: their callers are that entry and the training step, whose temperature and views were checked when its options
// were read and whose z has the rows CheckTrainStep checked.
void CheckNtXentArgs(const at::Tensor& z, double temperature, int64_t views);

// Mean NT-Xent loss over all V*N anchors of z (V*N x d, view-major), differentiable w.r.t. z through the hand-written
// backward (a torch::autograd::Function, so loss.backward() inside a training step works). Needs arguments that pass
// CheckNtXentArgs; does not check them.
at::Tensor NtXentLoss(const at::Tensor& z, double temperature, int64_t views);

// Forward value and dLoss/dz without autograd (what the TS ntXent() returns): the same two sweeps as forward plus
// backward of NtXentLoss, with no autograd graph or saved state. Unchecked, as NtXentLoss.
std::pair<at::Tensor, at::Tensor> NtXentForwardBackward(const at::Tensor& z, double temperature, int64_t views);

// --- Local rows x global columns: the data-parallel form.
//
// In a data-parallel step each rank holds the embeddings of its own images, z_local (R x d, view-major over its R/V
// images), and has gathered every rank's, z_all (M x d, in rank order; z_local's rows are z_all[offset, offset + R)).
// The rank's anchors are its own rows; the positives of an anchor are the other views of its image (in z_local); the
// denominator runs over every row of z_all but the anchor itself. The loss is the mean over the R local anchors, so
// the R-weighted mean over ranks of these losses is exactly the NT-Xent of the global batch. No rank forms the R x M
// matrix: the same row tiles (about 2M similarities each) as the full form. Needs R >= V (one image; its negatives
// may all come from other ranks) and M >= 2V.

// The ntXentLocalRows op's precondition, checked once where the op is entered: CheckNtXentLocalRows plus temperature
// and views. Throws c10::TypeError / c10::ValueError naming the problem.
void CheckNtXentLocalRowsArgs(const at::Tensor& z_local, const at::Tensor& z_all, int64_t offset, double temperature,
                              int64_t views);
// The rows alone (dtypes, shapes, devices, offset; views >= 2 is the caller's): what the data-parallel training step
// checks on every step, since z_all arrives from the other ranks with each one.
void CheckNtXentLocalRows(const at::Tensor& z_local, const at::Tensor& z_all, int64_t offset, int64_t views);

// The local loss, differentiable in z_local and in z_all (a torch::autograd::Function; the training step puts the
// all-gather with gradient in front of z_all). Needs arguments that pass CheckNtXentLocalRowsArgs; does not check them.
at::Tensor NtXentLocalRowsLoss(const at::Tensor& z_local, const at::Tensor& z_all, int64_t offset, double temperature,
                               int64_t views);

struct NtXentLocalRowsResult {
  at::Tensor loss;        // scalar
  at::Tensor grad_local;  // dLoss/dz_local through the anchors and positives (R x d)
  at::Tensor grad_all;    // dLoss/dz_all through the denominators (M x d)
};

// Forward value and both gradients without autograd (what the TS ntXentLocalRows() returns). Unchecked, as
// NtXentLocalRowsLoss.
NtXentLocalRowsResult NtXentLocalRowsForwardBackward(const at::Tensor& z_local, const at::Tensor& z_all, int64_t offset,
                                                     double temperature, int64_t views);

// The same loss and gradient the plain, unfused way (normalize, full similarity matrix, log_softmax, ATen autograd):
// the in-process reference the tests compare against. Memory O((V*N)²). Unchecked, as NtXentLoss.
std::pair<at::Tensor, at::Tensor> NtXentReference(const at::Tensor& z, double temperature, int64_t views);

}  // namespace simclr
