// N-API glue for core/process_group.h:
//   createProcessGroup({ masterAddr, masterPort, rank, worldSize, backend, timeoutMs, agentStore }) -> Promise<NativeProcessGroup>
//   NativeProcessGroup: rank(), size(), backend(), timeoutMs(), counters(),
//     allReduceSum(tensor), allGather(tensor), allGatherRows(tensor), broadcast(tensor, root) -> Promise<Tensor>,
//     setKey(key, value) -> Promise<void>, waitKey(key, timeoutMs) -> Promise<string>
//   distributedBackends() -> the backends compiled in
// Collectives run on the compute thread, in the order they were asked for, like the training steps' own: every rank
// must issue a group's collectives in the same order. Store keys are not collectives and use libuv's pool.
#include <memory>
#include <vector>

#include "bind/args.h"
#include "bind/distributed.h"
#include "bind/module.h"
#include "bind/tensor.h"
#include "bind/worker.h"

namespace simclr {
namespace {

ProcessGroupOptions ProcessGroupOptionsFromJs(const Napi::Value& options) {
  if (!options.IsObject() || options.IsArray()) ThrowType("Expected an options object for options but received " + TypeName(options));
  ProcessGroupOptions o;
  o.master_addr = StringOption(options, "masterAddr");
  if (o.master_addr.empty()) ThrowRange("Expected a host name or address for options.masterAddr but received ''");
  o.master_port = IntOption(options, "masterPort", 1, 65535);
  o.world_size = IntOption(options, "worldSize", 1, 1 << 20);
  o.rank = IntOption(options, "rank", 0, o.world_size - 1);
  const std::string backend = StringOption(options, "backend");
  if (backend == "gloo") o.backend = CommBackend::kGloo;
  else if (backend == "nccl") o.backend = CommBackend::kNccl;
  else ThrowRange("Expected 'gloo' or 'nccl' for options.backend but received '" + backend + "'");
  o.timeout = std::chrono::milliseconds(IntOption(options, "timeoutMs", 1, int64_t(1) << 40));
  o.rank0_serves_store = !BoolOption(options, "agentStore");
  return o;
}

class ProcessGroupWrap : public Napi::ObjectWrap<ProcessGroupWrap> {
 public:
  static Napi::FunctionReference* constructor;

  static void Init(Napi::Env env) {
    Napi::Function cls = DefineClass(env, "NativeProcessGroup", {
      InstanceMethod<&ProcessGroupWrap::Rank>("rank"),
      InstanceMethod<&ProcessGroupWrap::Size>("size"),
      InstanceMethod<&ProcessGroupWrap::Backend>("backend"),
      InstanceMethod<&ProcessGroupWrap::TimeoutMs>("timeoutMs"),
      InstanceMethod<&ProcessGroupWrap::Counters>("counters"),
      InstanceMethod<&ProcessGroupWrap::AllReduceSum>("allReduceSum"),
      InstanceMethod<&ProcessGroupWrap::AllGather>("allGather"),
      InstanceMethod<&ProcessGroupWrap::AllGatherRows>("allGatherRows"),
      InstanceMethod<&ProcessGroupWrap::Broadcast>("broadcast"),
      InstanceMethod<&ProcessGroupWrap::SetKey>("setKey"),
      InstanceMethod<&ProcessGroupWrap::WaitKey>("waitKey"),
    });
    constructor = new Napi::FunctionReference(Napi::Persistent(cls));
  }

  static Napi::Object Wrap(Napi::Env env, ProcessGroupPtr group) {
    Napi::Object object = constructor->New({});
    Unwrap(object)->group_ = std::move(group);
    return object;
  }

  static ProcessGroupPtr FromJs(const Napi::Value& value, const std::string& name) {
    if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(constructor->Value())) {
      ThrowType("Expected a process group (createProcessGroup) for " + name + " but received " + TypeName(value));
    }
    ProcessGroupPtr group = Unwrap(value.As<Napi::Object>())->group_;
    if (!group) ThrowType("Expected a process group (createProcessGroup) for " + name + " but received an empty one");
    return group;
  }

  explicit ProcessGroupWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ProcessGroupWrap>(info) {}

  // A group is never destroyed: ~ProcessGroupGloo joins its threads and waits for any collective in flight, which
  // with a dead peer takes the whole timeout, and rank 0's store must outlive the other ranks' last use of it. The
  // few groups a process makes live until it exits.
  ~ProcessGroupWrap() override {
    static auto* kept = new std::vector<ProcessGroupPtr>();
    if (group_) kept->push_back(std::move(group_));
  }

 private:
  Napi::Value Rank(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(Group()->rank())); }
  Napi::Value Size(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(Group()->size())); }
  Napi::Value Backend(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), Group()->backend() == CommBackend::kNccl ? "nccl" : "gloo");
  }
  Napi::Value TimeoutMs(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), double(Group()->timeout().count()));
  }

  Napi::Value Counters(const Napi::CallbackInfo& info) {
    const CommunicationCounters c = Group()->counters();
    Napi::Object out = Napi::Object::New(info.Env());
    out.Set("allReduceBytes", double(c.all_reduce_bytes));
    out.Set("allReduceCalls", double(c.all_reduce_calls));
    out.Set("allGatherBytes", double(c.all_gather_bytes));
    out.Set("allGatherCalls", double(c.all_gather_calls));
    out.Set("broadcastBytes", double(c.broadcast_bytes));
    out.Set("broadcastCalls", double(c.broadcast_calls));
    return out;
  }

  // A collective on the compute thread that returns a tensor.
  Napi::Value Collective(Napi::Env env, const char* name, std::function<at::Tensor()> work) {
    return RunAsync<at::Tensor>(
        env, name, std::move(work), [](Napi::Env env, at::Tensor& out) -> Napi::Value { return TensorWrap::Wrap(env, out); },
        RunsOn::kComputeThread);
  }

  // allReduceSum(tensor): a new tensor, the sum over ranks.
  Napi::Value AllReduceSum(const Napi::CallbackInfo& info) {
    return SIMCLR_GUARD(info, {
      ProcessGroupPtr group = Group();
      at::Tensor tensor = TensorWrap::FromJs(info[0], "tensor");
      return Collective(info.Env(), "simclr.allReduceSum", [group, tensor] {
        at::Tensor out = tensor.contiguous().clone();
        group->AllReduceSum(out);
        return out;
      });
    });
  }

  // allGather(tensor): world x tensor.shape.
  Napi::Value AllGather(const Napi::CallbackInfo& info) {
    return SIMCLR_GUARD(info, {
      ProcessGroupPtr group = Group();
      at::Tensor tensor = TensorWrap::FromJs(info[0], "tensor");
      return Collective(info.Env(), "simclr.allGather", [group, tensor] { return group->AllGather(tensor); });
    });
  }

  // allGatherRows(tensor): every rank's rows concatenated (row counts may differ).
  Napi::Value AllGatherRows(const Napi::CallbackInfo& info) {
    return SIMCLR_GUARD(info, {
      ProcessGroupPtr group = Group();
      at::Tensor tensor = TensorWrap::FromJs(info[0], "tensor");
      if (tensor.dim() < 1) ThrowRange("Expected a tensor with at least one dimension for tensor but received shape []");
      return Collective(info.Env(), "simclr.allGatherRows", [group, tensor] {
        std::vector<int64_t> counts;
        return group->AllGatherRows(tensor, &counts);
      });
    });
  }

  // broadcast(tensor, root): a new tensor holding root's values (same shape and dtype on every rank).
  Napi::Value Broadcast(const Napi::CallbackInfo& info) {
    return SIMCLR_GUARD(info, {
      ProcessGroupPtr group = Group();
      at::Tensor tensor = TensorWrap::FromJs(info[0], "tensor");
      const int64_t root = ArgInt(info[1], "root", 0, group->size() - 1);
      return Collective(info.Env(), "simclr.broadcast", [group, tensor, root] {
        at::Tensor out = tensor.contiguous().clone();
        group->Broadcast(out, root);
        return out;
      });
    });
  }

  Napi::Value SetKey(const Napi::CallbackInfo& info) {
    return SIMCLR_GUARD(info, {
      ProcessGroupPtr group = Group();
      const std::string key = ArgString(info[0], "key");
      const std::string value = ArgString(info[1], "value");
      return RunAsync<bool>(
          info.Env(), "simclr.setKey", [group, key, value] { group->SetKey(key, value); return true; },
          [](Napi::Env env, bool&) -> Napi::Value { return env.Undefined(); });
    });
  }

  Napi::Value WaitKey(const Napi::CallbackInfo& info) {
    return SIMCLR_GUARD(info, {
      ProcessGroupPtr group = Group();
      const std::string key = ArgString(info[0], "key");
      const auto timeout = std::chrono::milliseconds(ArgInt(info[1], "timeoutMs", 1, int64_t(1) << 40));
      return RunAsync<std::string>(
          info.Env(), "simclr.waitKey", [group, key, timeout] { return group->WaitKey(key, timeout); },
          [](Napi::Env env, std::string& value) -> Napi::Value { return Napi::String::New(env, value); });
    });
  }

  const ProcessGroupPtr& Group() const {
    if (!group_) ThrowError("this process group object holds no group (create one with createProcessGroup)");
    return group_;
  }

  ProcessGroupPtr group_;
};

Napi::FunctionReference* ProcessGroupWrap::constructor = nullptr;

// createProcessGroup(options): the rendezvous blocks up to the timeout, on libuv's pool.
Napi::Value CreateProcessGroup(const Napi::CallbackInfo& info) {
  return SIMCLR_GUARD(info, {
    ProcessGroupOptions options = ProcessGroupOptionsFromJs(info[0]);
    return RunAsync<ProcessGroupPtr>(
        info.Env(), "simclr.createProcessGroup", [options] { return ProcessGroup::Create(options); },
        [](Napi::Env env, ProcessGroupPtr& group) -> Napi::Value { return ProcessGroupWrap::Wrap(env, group); });
  });
}

Napi::Value DistributedBackends(const Napi::CallbackInfo& info) {
  Napi::Array out = Napi::Array::New(info.Env());
  out.Set(uint32_t(0), "gloo");
  if (NcclCompiledIn()) out.Set(uint32_t(1), "nccl");
  return out;
}

void InitDistributedModule(Napi::Env env, Napi::Object exports) {
  ProcessGroupWrap::Init(env);
  exports.Set("createProcessGroup", Napi::Function::New<CreateProcessGroup>(env, "createProcessGroup"));
  exports.Set("distributedBackends", Napi::Function::New<DistributedBackends>(env, "distributedBackends"));
}

}  // namespace

ProcessGroupPtr ProcessGroupFromJs(const Napi::Value& value, const std::string& name) {
  return ProcessGroupWrap::FromJs(value, name);
}

SIMCLR_MODULE(distributed, InitDistributedModule);

}  // namespace simclr
