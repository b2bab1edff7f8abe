// Process groups from LibTorch's own distributed engine, c10d: a TCPStore rendezvous configured as torchrun's
// (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE), a Gloo backend on the CPU and NCCL on CUDA (when this LibTorch was
// built with it), a timeout on every collective, and the few collectives the training step needs, counted in bytes.
// The c10d and Gloo headers stay inside process_group.cc: nothing else needs them to compile.
#pragma once

#include <ATen/ATen.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace simclr {

enum class CommBackend { kGloo, kNccl };

// True when this binary was compiled with c10d's NCCL backend (a CUDA LibTorch and the NCCL and CUDA headers).
bool NcclCompiledIn();

struct ProcessGroupOptions {
  std::string master_addr;  // host of rank 0, which serves the rendezvous store
  int64_t master_port = 0;  // 1..65535
  int64_t rank = 0;         // 0..world_size-1
  int64_t world_size = 1;
  CommBackend backend = CommBackend::kGloo;
  // False when the launcher serves the store at master_addr:master_port (torchrun's agent:
  // TORCHELASTIC_USE_AGENT_STORE=True); then rank 0 connects to it like every other rank.
  bool rank0_serves_store = true;
  // Rendezvous and every collective fail after this long instead of hanging on a dead or stuck peer.
  std::chrono::milliseconds timeout{300000};
};

// What this rank sent into each kind of collective: payload bytes (the size of its input), and how many calls.
// Network traffic differs by algorithm (a ring all-reduce sends 2(W-1)/W of the payload per rank).
struct CommunicationCounters {
  int64_t all_reduce_bytes = 0, all_reduce_calls = 0;
  int64_t all_gather_bytes = 0, all_gather_calls = 0;
  int64_t broadcast_bytes = 0, broadcast_calls = 0;
};

// A collective in flight (see ProcessGroup::StartAllReduceSum).
class PendingCollective {
 public:
  virtual ~PendingCollective() = default;
  // Blocks until the collective is done; throws (naming this rank and the likely cause) when it failed or timed out.
  virtual void Wait() = 0;
};

class ProcessGroup {
 public:
  // Joins the group: rank 0 serves the store at master_addr:master_port, every rank checks that all agree on the world
  // size and that no rank is taken twice, then the backend connects. Throws c10::Error with a message naming the
  // cause: the port in use, the master unreachable, a rank missing or duplicated, world sizes that disagree.
  static std::shared_ptr<ProcessGroup> Create(const ProcessGroupOptions& options);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int64_t rank() const;
  int64_t size() const;
  CommBackend backend() const;
  std::chrono::milliseconds timeout() const;

  // In place: `tensor` (contiguous, same shape and dtype on every rank) becomes the sum over ranks.
  void AllReduceSum(at::Tensor& tensor);
  std::unique_ptr<PendingCollective> StartAllReduceSum(at::Tensor tensor);
  // Every rank's `tensor` (same shape on every rank), stacked in rank order: world x tensor.sizes().
  at::Tensor AllGather(const at::Tensor& tensor);
  // Every rank's rows of `tensor` (rows x ...; the row count may differ between ranks), concatenated in rank order.
  // `counts` receives each rank's row count.
  at::Tensor AllGatherRows(const at::Tensor& tensor, std::vector<int64_t>* counts);
  // In place: `tensor` becomes root's.
  void Broadcast(at::Tensor& tensor, int64_t root);

  // The rendezvous store, for coordination that is not a collective (so it keeps no order with them): rank 0 sets a
  // key, the others wait for it, each with its own timeout.
  void SetKey(const std::string& key, const std::string& value);
  // Waits up to `timeout` for `key`; returns its value. Throws naming the key when it does not appear in time.
  std::string WaitKey(const std::string& key, std::chrono::milliseconds timeout);
  // Records how far this rank got (e.g. its step count); a failed collective reports which ranks are behind.
  void MarkProgress(int64_t progress);

  CommunicationCounters counters() const;

  struct Impl;  // c10d's objects, in process_group.cc only

 private:
  explicit ProcessGroup(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

using ProcessGroupPtr = std::shared_ptr<ProcessGroup>;

}  // namespace simclr
