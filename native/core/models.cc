// ResNet, projection head and SimCLR model (see resnet.h, projection_head.h, simclr_model.h), in one translation unit
// because each one that includes torch::nn costs ~30 s to compile.
#include <algorithm>
#include <map>
#include <sstream>

#include "core/global_batch_norm.h"
#include "core/simclr_model.h"

namespace simclr {

namespace nn = torch::nn;

// Every BatchNorm of the model runs through here: inside a data-parallel training step (a GlobalBatchNormScope on this
// thread) a training-mode layer takes its batch statistics over all ranks; otherwise it is the layer's own forward.
template <typename BatchNorm>
static at::Tensor Norm(BatchNorm& bn, const at::Tensor& x) {
  ProcessGroup* group = GlobalBatchNormGroup();
  if (group == nullptr || !bn.is_training()) return bn.forward(x);
  return GlobalBatchNorm(*group, x, bn.weight, bn.bias, bn.running_mean, bn.running_var, bn.num_batches_tracked,
                         bn.options.momentum(), bn.options.eps());
}

const std::vector<std::string>& BackboneNames() {
  static const std::vector<std::string> names = {"resnet18", "resnet34", "resnet50", "resnet101", "resnet152"};
  return names;
}

const std::vector<std::string>& StemNames() {
  static const std::vector<std::string> names = {"imagenet", "cifar"};
  return names;
}

static nn::Conv2d Conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(false));
}

// torchvision pads every ResNet convolution by kernel / 2 (7 -> 3, 3 -> 1, 1 -> 0).
//
// When a convolution's output is 1x1 (layer4 and its entry on 32 px images with the ImageNet stem: 2x2 and 1x1
// inputs), only the kernel taps that land on the input contribute, and the convolution is one matrix product over
// them. oneDNN instead runs the whole padded 3x3 kernel and its backward is slow there (512 channels, 1x1 input:
// ~12x the forward), so this exact rewrite makes the training step about twice as fast at 32 px. Gradients of the
// unused taps are zero either way.
static at::Tensor Convolve(nn::Conv2dImpl& conv, const at::Tensor& x) {
  const at::Tensor& weight = conv.weight;
  const int64_t kernel = weight.size(2);
  const int64_t stride = (*conv.options.stride())[0];
  const int64_t pad = kernel / 2;
  const int64_t height = x.size(2), width = x.size(3);
  const bool one_by_one = (height + 2 * pad - kernel) / stride == 0 && (width + 2 * pad - kernel) / stride == 0;
  if (!one_by_one) return conv.forward(x);
  // The window of the single output covers input rows and columns [0, kernel - pad); taps start at `pad`.
  const int64_t rows = std::min(height, kernel - pad), cols = std::min(width, kernel - pad);
  at::Tensor used = x.slice(2, 0, rows).slice(3, 0, cols).reshape({x.size(0), -1});
  at::Tensor taps = weight.slice(2, pad, pad + rows).slice(3, pad, pad + cols).reshape({weight.size(0), -1});
  return at::linear(used, taps).view({x.size(0), weight.size(0), 1, 1});
}

// downsample = Sequential(conv 1x1, BatchNorm2d), as torchvision's _make_layer builds it.
static at::Tensor Downsample(const nn::Sequential& downsample, const at::Tensor& x) {
  return Norm(*downsample->ptr(1)->as<nn::BatchNorm2d>(), Convolve(*downsample->ptr(0)->as<nn::Conv2d>(), x));
}

// ReLUs after BatchNorm run in place, as torchvision's ReLU(inplace=True): BatchNorm's backward needs its input, not
// its output, so the activation is overwritten instead of copied (one less pass over memory per layer).
BasicBlockImpl::BasicBlockImpl(int64_t inplanes, int64_t planes, int64_t stride, nn::Sequential downsample_layers) {
  conv1 = register_module("conv1", Conv(inplanes, planes, 3, stride, 1));
  bn1 = register_module("bn1", nn::BatchNorm2d(planes));
  conv2 = register_module("conv2", Conv(planes, planes, 3, 1, 1));
  bn2 = register_module("bn2", nn::BatchNorm2d(planes));
  if (downsample_layers) downsample = register_module("downsample", downsample_layers);
}

at::Tensor BasicBlockImpl::forward(const at::Tensor& x) {
  at::Tensor out = Norm(*bn1, Convolve(*conv1, x)).relu_();
  out = Norm(*bn2, Convolve(*conv2, out));
  out += downsample ? Downsample(downsample, x) : x;
  return at::relu_(out);
}

BottleneckImpl::BottleneckImpl(int64_t inplanes, int64_t planes, int64_t stride, nn::Sequential downsample_layers) {
  conv1 = register_module("conv1", Conv(inplanes, planes, 1, 1, 0));
  bn1 = register_module("bn1", nn::BatchNorm2d(planes));
  conv2 = register_module("conv2", Conv(planes, planes, 3, stride, 1));
  bn2 = register_module("bn2", nn::BatchNorm2d(planes));
  conv3 = register_module("conv3", Conv(planes, planes * kExpansion, 1, 1, 0));
  bn3 = register_module("bn3", nn::BatchNorm2d(planes * kExpansion));
  if (downsample_layers) downsample = register_module("downsample", downsample_layers);
}

at::Tensor BottleneckImpl::forward(const at::Tensor& x) {
  at::Tensor out = Norm(*bn1, Convolve(*conv1, x)).relu_();
  out = Norm(*bn2, Convolve(*conv2, out)).relu_();
  out = Norm(*bn3, Convolve(*conv3, out));
  out += downsample ? Downsample(downsample, x) : x;
  return at::relu_(out);
}

// torchvision's _make_layer: the first block changes stride and width, the others keep them.
template <typename Block>
static nn::Sequential MakeLayer(int64_t* inplanes, int64_t planes, int64_t blocks, int64_t stride) {
  const int64_t expansion = Block::ContainedType::kExpansion;
  nn::Sequential downsample{nullptr};
  if (stride != 1 || *inplanes != planes * expansion) {
    downsample = nn::Sequential(Conv(*inplanes, planes * expansion, 1, stride, 0), nn::BatchNorm2d(planes * expansion));
  }
  nn::Sequential layer;
  layer->push_back(Block(*inplanes, planes, stride, downsample));
  *inplanes = planes * expansion;
  for (int64_t i = 1; i < blocks; ++i) layer->push_back(Block(*inplanes, planes, 1, nn::Sequential{nullptr}));
  return layer;
}

ResNetImpl::ResNetImpl(const ResNetOptions& opts) : options(opts) {
  static const std::map<std::string, std::pair<bool, std::vector<int64_t>>> kLayouts = {
      {"resnet18", {false, {2, 2, 2, 2}}},  {"resnet34", {false, {3, 4, 6, 3}}},  {"resnet50", {true, {3, 4, 6, 3}}},
      {"resnet101", {true, {3, 4, 23, 3}}}, {"resnet152", {true, {3, 8, 36, 3}}},
  };
  auto layout = kLayouts.find(options.backbone);
  if (layout == kLayouts.end()) {
    std::ostringstream names;
    for (const auto& name : BackboneNames()) names << (names.tellp() > 0 ? ", " : "") << name;
    TORCH_CHECK(false, "Expected one of ", names.str(), " for backbone but received '", options.backbone, "'");
  }
  TORCH_CHECK(options.out_dim >= 0, "Expected an integer >= 0 for outDim but received ", options.out_dim);
  const bool bottleneck = layout->second.first;
  const std::vector<int64_t>& blocks = layout->second.second;

  conv1 = register_module("conv1", options.stem == Stem::kCifar ? Conv(3, 64, 3, 1, 1) : Conv(3, 64, 7, 2, 3));
  bn1 = register_module("bn1", nn::BatchNorm2d(64));
  int64_t inplanes = 64;
  auto make = [&](int64_t planes, int64_t count, int64_t stride) {
    return bottleneck ? MakeLayer<Bottleneck>(&inplanes, planes, count, stride)
                      : MakeLayer<BasicBlock>(&inplanes, planes, count, stride);
  };
  layer1 = register_module("layer1", make(64, blocks[0], 1));
  layer2 = register_module("layer2", make(128, blocks[1], 2));
  layer3 = register_module("layer3", make(256, blocks[2], 2));
  layer4 = register_module("layer4", make(512, blocks[3], 2));
  feature_dim = inplanes;
  if (options.out_dim > 0) fc = register_module("fc", nn::Linear(feature_dim, options.out_dim));

  // torchvision's initialisation; Linear keeps its default (the same in LibTorch and PyTorch).
  torch::NoGradGuard no_grad;
  for (const auto& module : modules(/*include_self=*/false)) {
    if (auto* conv = module->as<nn::Conv2d>()) {
      nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
    } else if (auto* bn = module->as<nn::BatchNorm2d>()) {
      bn->weight.fill_(1);
      bn->bias.zero_();
    }
  }
  if (options.zero_init_residual) {
    for (const auto& module : modules(false)) {
      if (auto* block = module->as<Bottleneck>()) block->bn3->weight.zero_();
      if (auto* block = module->as<BasicBlock>()) block->bn2->weight.zero_();
    }
  }
}

at::Tensor ResNetImpl::forward(const at::Tensor& x) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) == 3, "Expected N x 3 x H x W for images but received shape ", x.sizes());
  at::Tensor out = Norm(*bn1, conv1(x)).relu_();
  if (options.stem == Stem::kImageNet) out = at::max_pool2d(out, {3, 3}, {2, 2}, {1, 1});
  out = layer4->forward(layer3->forward(layer2->forward(layer1->forward(out))));
  out = at::adaptive_avg_pool2d(out, {1, 1}).flatten(1);
  return fc ? fc(out) : out;
}

ProjectionHeadImpl::ProjectionHeadImpl(const ProjectionHeadOptions& opts) : options(opts) {
  TORCH_CHECK(options.layers >= 1, "Expected an integer >= 1 for the projection head's layers but received ", options.layers);
  TORCH_CHECK(options.in_dim > 0 && options.hidden_dim > 0 && options.out_dim > 0,
              "Expected positive projection head sizes but received in ", options.in_dim, ", hidden ",
              options.hidden_dim, ", out ", options.out_dim);
  layers = nn::Sequential();
  for (int64_t i = 0; i < options.layers; ++i) {
    const bool last = i == options.layers - 1;
    const int64_t in = i == 0 ? options.in_dim : options.hidden_dim;
    const int64_t out = last ? options.out_dim : options.hidden_dim;
    layers->push_back(nn::Linear(nn::LinearOptions(in, out).bias(last || !options.batch_norm)));
    if (last) break;
    if (options.batch_norm) layers->push_back(nn::BatchNorm1d(out));
    layers->push_back(nn::ReLU());
  }
  for (const auto& child : layers->named_children()) register_module(child.key(), child.value());
}

at::Tensor ProjectionHeadImpl::forward(const at::Tensor& h) {
  at::Tensor out = h;
  for (const auto& layer : layers->children()) {
    if (auto* linear = layer->as<nn::Linear>()) out = linear->forward(out);
    else if (auto* bn = layer->as<nn::BatchNorm1d>()) out = Norm(*bn, out);
    else out = layer->as<nn::ReLU>()->forward(out);
  }
  return out;
}

SimCLRModelImpl::SimCLRModelImpl(const ResNetOptions& encoder_options,
                                 const std::optional<ProjectionHeadOptions>& head_options) {
  encoder = register_module("encoder", ResNet(encoder_options));
  if (head_options) {
    ProjectionHeadOptions options = *head_options;
    if (options.in_dim == 0) options.in_dim = encoder_options.out_dim > 0 ? encoder_options.out_dim : encoder->feature_dim;
    if (options.hidden_dim == 0) options.hidden_dim = options.in_dim;
    head = register_module("head", ProjectionHead(options));
  }
}

std::pair<at::Tensor, at::Tensor> SimCLRModelImpl::forward(const at::Tensor& x) {
  at::Tensor h = encoder(x);
  return {h, head ? head(h) : at::Tensor()};
}

std::pair<at::Tensor, at::Tensor> ForwardWithPrecision(SimCLRModelImpl& model, const at::Tensor& x, Precision precision,
                                                   MemoryFormat format, bool encoder_only) {
  const at::Device device = model.encoder->conv1->weight.device();
  CheckPrecision(precision, device);
  if (format == MemoryFormat::kChannelsLast) ToMemoryFormat(model.parameters(), format);
  at::Tensor input = x.dim() == 4 ? x.contiguous(AtenFormat(format)) : x;
  // A float64 model (cast for checks against exact arithmetic) takes any floating-point input in its own type.
  const at::ScalarType weights = model.encoder->conv1->weight.scalar_type();
  if (weights == at::kDouble && input.is_floating_point()) input = input.to(weights);
  at::Tensor h, z;
  {
    AutocastScope autocast(device, precision);
    if (encoder_only) h = model.encoder->forward(input);
    else std::tie(h, z) = model.forward(input);
  }
  const at::ScalarType out = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  return {h.to(out), z.defined() ? z.to(out) : z};
}

torch::nn::Module& StateModule(SimCLRModelImpl& model) {
  if (model.head) return model;
  return *model.encoder;
}

static void CollectState(const torch::nn::Module& module, const std::string& prefix, NamedTensors* out) {
  for (const auto& p : module.named_parameters(/*recurse=*/false)) out->emplace_back(prefix + p.key(), p.value().detach());
  for (const auto& b : module.named_buffers(/*recurse=*/false)) out->emplace_back(prefix + b.key(), b.value().detach());
  for (const auto& child : module.named_children()) CollectState(*child.value(), prefix + child.key() + ".", out);
}

NamedTensors StateDictOf(const torch::nn::Module& module) {
  NamedTensors out;
  CollectState(module, "", &out);
  return out;
}

static std::string JoinKeys(const std::vector<std::string>& keys) {
  std::string text;
  for (const auto& key : keys) text += (text.empty() ? "" : ", ") + key;
  return text;
}

LoadReport LoadStateDict(torch::nn::Module& module, const NamedTensors& state, bool strict) {
  NamedTensors targets = StateDictOf(module);
  std::map<std::string, at::Tensor> given;
  LoadReport report;
  for (const auto& entry : state) given[entry.first] = entry.second;
  std::map<std::string, bool> known;
  for (const auto& target : targets) {
    known[target.first] = true;
    auto source = given.find(target.first);
    if (source == given.end()) {
      report.missing_keys.push_back(target.first);
    } else {
      TORCH_CHECK(source->second.defined(), "The tensor for ", target.first, " is undefined");
      TORCH_CHECK(source->second.sizes() == target.second.sizes(), "Shape mismatch for ", target.first,
                  ": the model has ", target.second.sizes(), ", the state dict has ", source->second.sizes());
    }
  }
  for (const auto& entry : state) {
    if (!known.count(entry.first)) report.unexpected_keys.push_back(entry.first);
  }
  if (strict && (!report.missing_keys.empty() || !report.unexpected_keys.empty())) {
    TORCH_CHECK(false, "Error loading the state dict (strict):",
                report.missing_keys.empty() ? "" : " missing keys: " + JoinKeys(report.missing_keys) + ".",
                report.unexpected_keys.empty() ? "" : " unexpected keys: " + JoinKeys(report.unexpected_keys) + ".");
  }
  torch::NoGradGuard no_grad;
  for (auto& target : targets) {
    auto source = given.find(target.first);
    if (source != given.end()) target.second.copy_(source->second);
  }
  return report;
}

int64_t ParameterCount(const torch::nn::Module& module) {
  int64_t count = 0;
  for (const auto& p : module.parameters()) count += p.numel();
  return count;
}

}  // namespace simclr
