#include "core/knn.h"

#include <algorithm>

#include "core/finite.h"

namespace simclr {

static at::Tensor UnitRows(const at::Tensor& features, at::ScalarType dtype) {
  at::Tensor x = features.to(dtype);
  // The same eps as torch.nn.functional.normalize, so an all-zero row stays zero instead of becoming NaN.
  return x / x.norm(2, {1}, /*keepdim=*/true).clamp_min(1e-12);
}

at::Tensor KnnPredict(const at::Tensor& bank, const at::Tensor& bank_labels, const at::Tensor& query,
                      const KnnOptions& options) {
  TORCH_CHECK(bank.dim() == 2 && query.dim() == 2, "Expected 2-D (rows x dims) kNN features but received ", bank.dim(), "-D bank and ",
              query.dim(), "-D query features");
  TORCH_CHECK(bank.size(1) == query.size(1), "kNN bank features have ", bank.size(1), " dims but query features have ",
              query.size(1));
  TORCH_CHECK(bank.size(0) > 0, "kNN needs at least one bank row");
  TORCH_CHECK(bank_labels.dim() == 1 && bank_labels.size(0) == bank.size(0), "kNN needs one label per bank row");
  TORCH_CHECK(options.k >= 1 && options.temperature > 0 && options.num_classes >= 1 && options.chunk_size >= 1,
              "kNN options out of range");
  TORCH_CHECK(bank.device() == query.device() && bank.device() == bank_labels.device(),
              "Expected the kNN bank, labels and query on one device but received ", bank.device(), ", ",
              bank_labels.device(), " and ", query.device());
  at::ScalarType dtype = at::promote_types(bank.scalar_type(), query.scalar_type());
  TORCH_CHECK(at::isFloatingType(dtype), "Expected floating point kNN features but received ", bank.scalar_type(), " and ",
              query.scalar_type());
  CheckFiniteRows(bank, "kNN bank features");
  CheckFiniteRows(query, "kNN query features");

  const at::Tensor bank_t = UnitRows(bank, dtype).t().contiguous();  // D x N, as lightly's feature bank
  const at::Tensor labels = bank_labels.to(at::kLong);
  const at::Tensor unit_query = UnitRows(query, dtype);
  const int64_t k = std::min(options.k, bank.size(0));
  const int64_t rows = query.size(0);
  at::Tensor predictions = at::empty({rows}, labels.options());
  for (int64_t start = 0; start < rows; start += options.chunk_size) {
    const int64_t count = std::min(options.chunk_size, rows - start);
    at::Tensor similarity = unit_query.narrow(0, start, count).mm(bank_t);  // count x N
    auto top = similarity.topk(k, /*dim=*/1);
    at::Tensor neighbour_labels = labels.index_select(0, std::get<1>(top).reshape({-1})).view({count, k});
    at::Tensor weights = (std::get<0>(top) / options.temperature).exp();
    // Summing one-hot labels times weights, as lightly does, is a scatter-add of the weights into class bins.
    at::Tensor scores = at::zeros({count, options.num_classes}, weights.options()).scatter_add_(1, neighbour_labels, weights);
    predictions.narrow(0, start, count).copy_(scores.argmax(1));
  }
  return predictions;
}

}  // namespace simclr
