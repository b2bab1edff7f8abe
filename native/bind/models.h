// The JS model object (NativeModel): an ObjectWrap around a LockedModel. TS's Encoder and SimCLRModel wrap it.
#pragma once

#include <napi.h>

#include <string>

#include "core/simclr_model.h"

namespace simclr {

// The model behind a JS model object (shared, with its lock); TypeError when `value` is not one. Every native entry
// point that uses the model holds its lock while it does.
LockedModelPtr ModelFromJs(const Napi::Value& value, const std::string& name);

}  // namespace simclr
