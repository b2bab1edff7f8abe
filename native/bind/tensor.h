// The JS Tensor: a Napi::ObjectWrap owning one at::Tensor. JS sees shape, dtype and device; data moves only through
// fromTypedArray/toTypedArray. Native memory is reported to V8 so garbage collection keeps pace with LibTorch.
#pragma once

#include "bind/args.h"

namespace simclr {

class TensorWrap : public Napi::ObjectWrap<TensorWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  static Napi::Object Wrap(Napi::Env env, at::Tensor tensor);
  // The tensor held by a JS Tensor argument; TypeError when it is not one, Error when it was disposed.
  static at::Tensor FromJs(const Napi::Value& value, const std::string& name);
  static bool IsTensor(const Napi::Value& value);

  explicit TensorWrap(const Napi::CallbackInfo& info);
  ~TensorWrap() override;

 private:
  static Napi::FunctionReference* constructor_;

  const at::Tensor& Live(const char* method) const;
  void Release(Napi::Env env);

  Napi::Value Shape(const Napi::CallbackInfo& info);
  Napi::Value Dtype(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);
  Napi::Value Disposed(const Napi::CallbackInfo& info);
  Napi::Value Pinned(const Napi::CallbackInfo& info);
  Napi::Value ToTypedArray(const Napi::CallbackInfo& info);
  Napi::Value CopyTo(const Napi::CallbackInfo& info);
  Napi::Value To(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);

  at::Tensor tensor_;
  int64_t reported_bytes_ = 0;
  napi_env env_ = nullptr;
};

}  // namespace simclr
