// The JS process group object (NativeProcessGroup): an ObjectWrap around a core ProcessGroup.
#pragma once

#include <napi.h>

#include <string>

#include "core/process_group.h"

namespace simclr {

// The group behind a JS process group object; TypeError when `value` is not one.
ProcessGroupPtr ProcessGroupFromJs(const Napi::Value& value, const std::string& name);

}  // namespace simclr
