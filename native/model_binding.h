// The JS model object (NativeModel): an ObjectWrap owning a SimCLRModel. TS's Encoder and SimCLRModel wrap it.
#pragma once

#include <string>

#include "common.h"
#include "simclr_model.h"

namespace simclr {

// The C++ model behind a JS model object; TypeError when `value` is not one. The model's own async methods hold a
// per-model lock while they run; code that runs the model from another native call must not overlap with them.
SimCLRModel ModelFromJs(const Napi::Value& value, const std::string& name);

}  // namespace simclr
