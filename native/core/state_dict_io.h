// State dicts as bytes: reading the files Python's torch.save(model.state_dict()) writes, and writing bytes that
// Python's torch.load reads. No files here (the TS side reads and writes them) and no code from the file ever runs.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <utility>
#include <vector>

namespace simclr {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// Parses a torch.save file held in memory: the zip format (PyTorch >= 1.6) or the legacy format. Only a (nested)
// dict / OrderedDict of tensors is accepted: the unpickler knows collections.OrderedDict,
// torch._utils._rebuild_tensor_v2, the torch.*Storage types and torch.jit._pickle.restore_type_tag (an identity), and refuses every other global, so loading never
// executes code. Nested dicts become dotted keys. Tensors are CPU, in the file's dtypes. Malformed input is an error.
NamedTensors ReadStateDict(const uint8_t* data, size_t size);

// A torch.save-compatible zip (a dict of CPU tensors) that Python's torch.load reads and nn.Module.load_state_dict
// accepts.
std::vector<char> WriteStateDict(const NamedTensors& state);

}  // namespace simclr
