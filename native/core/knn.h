// kNN classification of feature vectors, as lightly's `knn_predict` (the SimCLR/MoCo kNN monitor): cosine similarity
// to every bank row, the k most similar rows vote for their class with weight exp(similarity / temperature).
#pragma once

#include <ATen/ATen.h>

namespace simclr {

// Every field must be set: the defaults are the caller's (TypeScript's, src/eval/knn.ts); zero is rejected.
struct KnnOptions {
  int64_t k = 0;               // neighbours that vote; clamped to the bank size
  double temperature = 0;      // vote weight exp(sim / temperature)
  int64_t num_classes = 0;     // labels lie in [0, num_classes)
  int64_t chunk_size = 0;      // query rows per similarity block: memory is chunk_size x bank rows
};

// Predicted class (int64, one per query row) for `query` (Q x D) given the labelled `bank` (N x D, labels N, int64).
// Rows are L2-normalised here, so raw features may be passed. Ties between equal scores go to the lower class index.
at::Tensor KnnPredict(const at::Tensor& bank, const at::Tensor& bank_labels, const at::Tensor& query,
                      const KnnOptions& options);

}  // namespace simclr
