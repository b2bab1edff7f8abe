// A prebuilt binary links LibTorch by soname only (libtorch_cpu.so, libc10.so, ...) and carries no RUNPATH, since the
// LibTorch it matches may live anywhere (a venv's site-packages/torch/lib, a libtorch folder). Loading those libraries
// by full path first makes the dynamic loader resolve the addon's sonames to them: it reuses a loaded object whose
// soname matches. This module does only that; it links nothing of LibTorch, so it loads everywhere.
#include <dlfcn.h>
#include <node_api.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(env, call)                                                      \
  do {                                                                        \
    if ((call) != napi_ok) {                                                  \
      napi_throw_error((env), NULL, "simclr preload: bad arguments");         \
      return NULL;                                                            \
    }                                                                         \
  } while (0)

// preload(paths: string[]): loads each library (RTLD_NOW, so a missing dependency is an error here and not a crash
// later); throws an Error with dlerror()'s message for the first that fails. The handles are kept for the process.
static napi_value Preload(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  bool is_array = false;
  if (argc < 1 || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array) {
    napi_throw_type_error(env, NULL, "Expected an array of library paths for paths");
    return NULL;
  }
  uint32_t length = 0;
  CHECK(env, napi_get_array_length(env, argv[0], &length));
  for (uint32_t i = 0; i < length; i++) {
    napi_value element;
    CHECK(env, napi_get_element(env, argv[0], i, &element));
    size_t size = 0;
    if (napi_get_value_string_utf8(env, element, NULL, 0, &size) != napi_ok) {
      napi_throw_type_error(env, NULL, "Expected an array of library paths for paths");
      return NULL;
    }
    char* file = malloc(size + 1);
    if (file == NULL) {
      napi_throw_error(env, NULL, "simclr preload: out of memory");
      return NULL;
    }
    CHECK(env, napi_get_value_string_utf8(env, element, file, size + 1, &size));
    void* handle = dlopen(file, RTLD_NOW | RTLD_LOCAL);
    free(file);
    if (handle == NULL) {
      const char* why = dlerror();
      napi_throw_error(env, NULL, why != NULL ? why : "dlopen failed");
      return NULL;
    }
  }
  return NULL;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_value fn;
  CHECK(env, napi_create_function(env, "preload", NAPI_AUTO_LENGTH, Preload, NULL, &fn));
  CHECK(env, napi_set_named_property(env, exports, "preload", fn));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
