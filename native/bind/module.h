// Module registration: each bind/*.cc file adds its exports from a static initializer, and the addon's init calls
// them all, so adding a native module touches no central list.
#pragma once

#include <napi.h>

namespace simclr {

using ModuleInit = void (*)(Napi::Env env, Napi::Object exports);

struct ModuleRegistration {
  ModuleRegistration(const char* name, ModuleInit init);
};

#define SIMCLR_MODULE(name, init) static ::simclr::ModuleRegistration simclr_module_##name(#name, init)

}  // namespace simclr
