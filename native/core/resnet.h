// ResNet identical to torchvision's models/resnet.py: the same blocks, the same attribute names (which are the
// state-dict keys: conv1, bn1, layer1..4, fc, downsample.0/1), the same initialisation. A torchvision checkpoint loads
// with no mapping table and a saved one loads into torchvision.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

namespace simclr {

// The first layers: torchvision's 7x7 stride-2 convolution and max-pool, or the 3x3 stride-1 convolution and no
// max-pool that 32 px images need (conv1 keeps its name either way).
enum class Stem { kImageNet, kCifar };

// "imagenet", "cifar": the stems by the names JS uses, indexed by Stem.
const std::vector<std::string>& StemNames();

struct ResNetOptions {
  std::string backbone = "resnet18";  // one of BackboneNames()
  // Size of the final Linear `fc`; 0 leaves `fc` out, so the output is the pooled features.
  int64_t out_dim = 1000;
  Stem stem = Stem::kImageNet;
  // Zero-initialises the last BatchNorm weight of each residual branch, as torchvision's zero_init_residual.
  bool zero_init_residual = false;
};

// "resnet18", "resnet34", "resnet50", "resnet101", "resnet152".
const std::vector<std::string>& BackboneNames();

struct BasicBlockImpl : torch::nn::Module {
  static constexpr int64_t kExpansion = 1;
  BasicBlockImpl(int64_t inplanes, int64_t planes, int64_t stride, torch::nn::Sequential downsample);
  at::Tensor forward(const at::Tensor& x);

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  torch::nn::Sequential downsample{nullptr};  // registered only when the shape changes
};
TORCH_MODULE(BasicBlock);

// torchvision's "ResNet v1.5" bottleneck: the stride sits on the 3x3 convolution.
struct BottleneckImpl : torch::nn::Module {
  static constexpr int64_t kExpansion = 4;
  BottleneckImpl(int64_t inplanes, int64_t planes, int64_t stride, torch::nn::Sequential downsample);
  at::Tensor forward(const at::Tensor& x);

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Sequential downsample{nullptr};
};
TORCH_MODULE(Bottleneck);

struct ResNetImpl : torch::nn::Module {
  explicit ResNetImpl(const ResNetOptions& options);
  // N x 3 x H x W images -> N x out_dim (or N x feature_dim when out_dim is 0).
  at::Tensor forward(const at::Tensor& x);

  ResNetOptions options;
  int64_t feature_dim = 0;  // 512 * expansion: the width of the pooled features (fc's in_features)
  torch::nn::Conv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  torch::nn::Sequential layer1{nullptr}, layer2{nullptr}, layer3{nullptr}, layer4{nullptr};
  torch::nn::Linear fc{nullptr};  // null when out_dim is 0
};
TORCH_MODULE(ResNet);

}  // namespace simclr
