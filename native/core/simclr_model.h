// The model the training step runs: encoder f (a ResNet) and, for SimCLR, projection head g. A plain Encoder is the
// same class with no head. Also the module-level state-dict operations (named tensors in, named tensors out).
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/precision.h"
#include "core/projection_head.h"
#include "core/resnet.h"
#include "core/state_dict_io.h"

namespace simclr {

struct SimCLRModelImpl : torch::nn::Module {
  SimCLRModelImpl(const ResNetOptions& encoder_options, const std::optional<ProjectionHeadOptions>& head_options);
  // h = encoder(x); z = head(h) (an undefined tensor when there is no head).
  std::pair<at::Tensor, at::Tensor> forward(const at::Tensor& x);

  ResNet encoder{nullptr};       // registered as "encoder"
  ProjectionHead head{nullptr};  // registered as "head"; null for a plain Encoder
};
TORCH_MODULE(SimCLRModel);

// A model as every native entry point shares it: the module and the one lock that each of them holds while it uses or
// changes the model, so that a training step, a forward, a state-dict copy and a switch of mode never interleave.
struct LockedModel {
  explicit LockedModel(SimCLRModel model) : model(std::move(model)) {}
  SimCLRModel model;
  std::mutex mutex;
};
using LockedModelPtr = std::shared_ptr<LockedModel>;

// h (and z, unless `encoder_only`) of images x in `precision` and `format`, without touching autograd or the mode (the
// caller sets train/eval and no_grad). Returned as float32 (float64 input stays float64) whatever the precision.
std::pair<at::Tensor, at::Tensor> ForwardWithPrecision(SimCLRModelImpl& model, const at::Tensor& x, Precision precision,
                                                   MemoryFormat format, bool encoder_only);

// The module whose state is the model's public state dict: the whole model ("encoder.*", "head.*") when it has a
// head, else the bare ResNet (torchvision's keys), which is what torchvision's resnetXX(num_classes=outDim) loads.
torch::nn::Module& StateModule(SimCLRModelImpl& model);

// Parameters and buffers in PyTorch's state_dict order (each module's own parameters, then its buffers, depth first).
// The tensors are the live ones (not copies), detached from autograd.
NamedTensors StateDictOf(const torch::nn::Module& module);

struct LoadReport {
  std::vector<std::string> missing_keys;     // in the module, not in the input
  std::vector<std::string> unexpected_keys;  // in the input, not in the module
};

// Copies `state` into the module's parameters and buffers (converting dtype and device). A shape mismatch is an error
// naming the key and both shapes; with `strict`, missing or unexpected keys are an error listing them, and nothing is
// copied in either case.
LoadReport LoadStateDict(torch::nn::Module& module, const NamedTensors& state, bool strict);

int64_t ParameterCount(const torch::nn::Module& module);

}  // namespace simclr
