#include "bind/module.h"

#include <utility>
#include <vector>

namespace simclr {

static std::vector<std::pair<const char*, ModuleInit>>& Registry() {
  static std::vector<std::pair<const char*, ModuleInit>> modules;
  return modules;
}

ModuleRegistration::ModuleRegistration(const char* name, ModuleInit init) { Registry().emplace_back(name, init); }

void InitRegisteredModules(Napi::Env env, Napi::Object exports) {
  for (auto& [name, init] : Registry()) init(env, exports);
}

}  // namespace simclr

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  simclr::InitRegisteredModules(env, exports);
  return exports;
}

NODE_API_MODULE(simclr, InitAddon)
