// The SimCLR projection head g(h): Linear layers with ReLU (and optionally BatchNorm) between them. Its children are
// named "0", "1", ... exactly as a Python nn.Sequential of the same layers, so state-dict keys match PyTorch's.
#pragma once

#include <torch/torch.h>

namespace simclr {

// out_dim and layers must be set: the defaults are the caller's (TypeScript's, src/models/simclr-model.ts).
struct ProjectionHeadOptions {
  // 0: filled in by SimCLRModel (in_dim = the encoder's output width, hidden_dim = in_dim).
  int64_t in_dim = 0;
  int64_t hidden_dim = 0;
  int64_t out_dim = 0;
  // Number of Linear layers: 2 is SimCLR's Linear(d, d) -> ReLU -> Linear(d, 128), 3 is SimCLRv2's.
  int64_t layers = 0;
  // BatchNorm1d after each hidden Linear (which then has no bias, as in SimCLRv2).
  bool batch_norm = false;
};

struct ProjectionHeadImpl : torch::nn::Module {
  explicit ProjectionHeadImpl(const ProjectionHeadOptions& options);
  at::Tensor forward(const at::Tensor& h);

  ProjectionHeadOptions options;
  torch::nn::Sequential layers{nullptr};  // not registered itself: its children are, under their indices
};
TORCH_MODULE(ProjectionHead);

}  // namespace simclr
