#include "core/data_parallel.h"

#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/custom_function.h>

#include <map>
#include <mutex>
#include <numeric>
#include <tuple>

namespace simclr {
namespace {

// The gather as an autograd function. The group travels as an address in saved_data (the training step holds the
// group for longer than the graph lives); the backward may run on another thread (CUDA's autograd device threads).
class GatherRowsFunction : public torch::autograd::Function<GatherRowsFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& z, ProcessGroup* group,
                            GatherBackward backward, int64_t* offset_out) {
    std::vector<int64_t> counts;
    at::Tensor rows = group->AllGatherRows(z.detach().contiguous(), &counts);
    const int64_t offset = std::accumulate(counts.begin(), counts.begin() + group->rank(), int64_t(0));
    *offset_out = offset;
    ctx->saved_data["group"] = reinterpret_cast<int64_t>(group);
    ctx->saved_data["sum"] = backward == GatherBackward::kSumOverRanks;
    ctx->saved_data["offset"] = offset;
    ctx->saved_data["rows"] = z.size(0);
    return rows;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    auto* group = reinterpret_cast<ProcessGroup*>(ctx->saved_data["group"].toInt());
    at::Tensor grad = grad_outputs[0].contiguous().clone();
    if (ctx->saved_data["sum"].toBool()) group->AllReduceSum(grad);
    return {grad.narrow(0, ctx->saved_data["offset"].toInt(), ctx->saved_data["rows"].toInt()), at::Tensor(),
            at::Tensor(), at::Tensor()};
  }
};

}  // namespace

GatheredRows AllGatherWithGradient(ProcessGroup& group, const at::Tensor& z, GatherBackward backward) {
  GatheredRows out;
  out.rows = GatherRowsFunction::apply(z, &group, backward, &out.offset);
  return out;
}

void BroadcastFromRank0(ProcessGroup& group, const std::vector<at::Tensor>& tensors) {
  c10::AutoGradMode no_grad(false);
  // Flattened into one buffer per (dtype, device), so a model is a few broadcasts rather than hundreds.
  std::map<std::pair<at::ScalarType, std::string>, std::vector<at::Tensor>> groups;
  for (const at::Tensor& t : tensors) groups[{t.scalar_type(), t.device().str()}].push_back(t);
  for (auto& entry : groups) {
    std::vector<at::Tensor> flat;
    for (const at::Tensor& t : entry.second) flat.push_back(t.reshape({-1}));
    at::Tensor buffer = at::cat(flat);
    group.Broadcast(buffer, 0);
    int64_t offset = 0;
    for (const at::Tensor& t : entry.second) {
      const_cast<at::Tensor&>(t).copy_(buffer.narrow(0, offset, t.numel()).view(t.sizes()));
      offset += t.numel();
    }
  }
}

struct GradientReducer::State {
  struct Bucket {
    at::Tensor buffer;
    std::vector<size_t> parameters;  // indices into `parameters`
    size_t arrived = 0;
    std::unique_ptr<PendingCollective> pending;
  };
  ProcessGroupPtr group;
  std::vector<at::Tensor> parameters;
  std::vector<size_t> bucket_of, offset_of;
  std::vector<bool> arrived;
  std::vector<Bucket> buckets;
  std::vector<unsigned> hooks;
  size_t next_to_start = 0;
  bool armed = false;
  std::mutex mutex;

  at::Tensor Slot(size_t i) {
    return buckets[bucket_of[i]].buffer.narrow(0, int64_t(offset_of[i]), parameters[i].numel()).view(parameters[i].sizes());
  }

  // Starts, in order, every bucket whose gradients are all in.
  void StartReady() {
    while (next_to_start < buckets.size() && buckets[next_to_start].arrived == buckets[next_to_start].parameters.size()) {
      Bucket& bucket = buckets[next_to_start++];
      bucket.pending = group->StartAllReduceSum(bucket.buffer);
    }
  }

  void OnGradient(size_t i, const at::Tensor& grad) {
    std::lock_guard<std::mutex> hold(mutex);
    if (!armed) return;
    TORCH_CHECK(!arrived[i], "the gradient of parameter ", i, " arrived twice in one backward");
    c10::AutoGradMode no_grad(false);
    at::Tensor slot = Slot(i);
    slot.copy_(grad);
    const at::Tensor& accumulated = parameters[i].grad();
    if (accumulated.defined()) slot.add_(accumulated);
    arrived[i] = true;
    ++buckets[bucket_of[i]].arrived;
    StartReady();
  }
};

GradientReducer::GradientReducer(ProcessGroupPtr group, std::vector<at::Tensor> parameters, int64_t bucket_bytes)
    : state_(std::make_shared<State>()) {
  State& s = *state_;
  s.group = std::move(group);
  s.parameters = std::move(parameters);
  const size_t n = s.parameters.size();
  s.bucket_of.assign(n, 0);
  s.offset_of.assign(n, 0);
  s.arrived.assign(n, false);
  // Reverse order: the last layers' gradients come first in backward.
  std::vector<std::vector<size_t>> members;
  int64_t bytes = 0;
  for (size_t k = n; k-- > 0;) {
    const at::Tensor& p = s.parameters[k];
    const bool fits = !members.empty() && bytes + p.numel() * int64_t(p.element_size()) <= bucket_bytes &&
                      s.parameters[members.back().front()].scalar_type() == p.scalar_type() &&
                      s.parameters[members.back().front()].device() == p.device();
    if (!fits) {
      members.emplace_back();
      bytes = 0;
    }
    members.back().push_back(k);
    bytes += p.numel() * int64_t(p.element_size());
  }
  for (size_t b = 0; b < members.size(); ++b) {
    State::Bucket bucket;
    int64_t elements = 0;
    for (size_t k : members[b]) {
      s.bucket_of[k] = b;
      s.offset_of[k] = size_t(elements);
      elements += s.parameters[k].numel();
    }
    const at::Tensor& first = s.parameters[members[b].front()];
    bucket.buffer = at::zeros({elements}, first.options().requires_grad(false));
    bucket.parameters = members[b];
    s.buckets.push_back(std::move(bucket));
  }
  std::weak_ptr<State> weak = state_;
  for (size_t k = 0; k < n; ++k) {
    s.hooks.push_back(s.parameters[k].register_hook([weak, k](const at::Tensor& grad) {
      if (auto state = weak.lock()) state->OnGradient(k, grad);
    }));
  }
}

GradientReducer::~GradientReducer() {
  for (size_t k = 0; k < state_->parameters.size(); ++k) state_->parameters[k].remove_hook(state_->hooks[k]);
}

int64_t GradientReducer::buckets() const { return int64_t(state_->buckets.size()); }

void GradientReducer::Prepare() {
  std::lock_guard<std::mutex> hold(state_->mutex);
  State& s = *state_;
  for (auto& bucket : s.buckets) {
    bucket.arrived = 0;
    bucket.pending.reset();
  }
  std::fill(s.arrived.begin(), s.arrived.end(), false);
  s.next_to_start = 0;
  s.armed = true;
}

void GradientReducer::Cancel() {
  std::lock_guard<std::mutex> hold(state_->mutex);
  state_->armed = false;
}

void GradientReducer::Finish() {
  State& s = *state_;
  std::lock_guard<std::mutex> hold(s.mutex);
  s.armed = false;
  c10::AutoGradMode no_grad(false);
  for (size_t b = s.next_to_start; b < s.buckets.size(); ++b) {
    for (size_t k : s.buckets[b].parameters) {
      if (!s.arrived[k]) s.Slot(k).zero_();
    }
    s.buckets[b].arrived = s.buckets[b].parameters.size();
  }
  s.StartReady();
  const double world = double(s.group->size());
  for (auto& bucket : s.buckets) {
    bucket.pending->Wait();
    bucket.pending.reset();
    bucket.buffer.div_(world);
  }
  for (size_t k = 0; k < s.parameters.size(); ++k) {
    if (!s.arrived[k]) continue;
    at::Tensor& grad = s.parameters[k].mutable_grad();
    if (grad.defined()) grad.copy_(s.Slot(k));
    else grad = s.Slot(k).clone();
  }
}

}  // namespace simclr
