// c10d process groups (see process_group.h). LibTorch 1.13's Gloo/NCCL process groups derive from c10d::ProcessGroup,
// 2.x's from c10d::Backend; their collectives have the same signatures, so only the base type differs.
#include "core/process_group.h"

#include <c10/util/Exception.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/version.h>
#ifdef SIMCLR_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <future>
#include <mutex>
#include <sstream>
#include <thread>

namespace simclr {

#if TORCH_VERSION_MAJOR >= 2
using BackendBase = c10d::Backend;
#else
using BackendBase = c10d::ProcessGroup;
#endif

bool NcclCompiledIn() {
#ifdef SIMCLR_WITH_NCCL
  return true;
#else
  return false;
#endif
}

namespace {

std::string MessageOf(const std::exception& e) {
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) return c10->what_without_backtrace();
  return e.what();
}

bool Contains(const std::string& text, std::initializer_list<const char*> needles) {
  return std::any_of(needles.begin(), needles.end(), [&](const char* n) { return text.find(n) != std::string::npos; });
}

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

std::string Seconds(std::chrono::milliseconds ms) {
  std::ostringstream text;
  text << double(ms.count()) / 1000.0 << " s";
  return text.str();
}

std::vector<uint8_t> Bytes(const std::string& text) { return std::vector<uint8_t>(text.begin(), text.end()); }
std::string Text(const std::vector<uint8_t>& bytes) { return std::string(bytes.begin(), bytes.end()); }

std::string HostName() {
  char name[256] = {0};
  if (gethostname(name, sizeof(name) - 1) != 0) return "unknown";
  return name;
}

// "<host> <pid>": how a rank is found again when a collective fails.
std::string Identity() { return HostName() + " " + std::to_string(getpid()); }

// The state letter of /proc/<pid>/stat ('R', 'S', 'T' stopped, 'Z' zombie, ...) of the process `identity` names, 'X'
// when it is gone, or '?' when it runs on another machine (where only its own messages can tell).
char StateOnThisMachine(const std::string& identity) {
  const auto space = identity.rfind(' ');
  if (space == std::string::npos || identity.substr(0, space) != HostName()) return '?';
  const pid_t pid = static_cast<pid_t>(std::stoll(identity.substr(space + 1)));
  if (kill(pid, 0) != 0) return errno == ESRCH ? 'X' : '?';
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const auto state = line.rfind(')');  // "pid (comm) S ...": the state follows the command name
  return state != std::string::npos && state + 2 < line.size() ? line[state + 2] : '?';
}

bool Exited(char state) { return state == 'X' || state == 'Z'; }
bool Stopped(char state) { return state == 'T' || state == 't'; }

}  // namespace

struct ProcessGroup::Impl {
  ProcessGroupOptions options;
  c10::intrusive_ptr<c10d::TCPStore> store;
  c10::intrusive_ptr<c10d::Store> keys;  // our own keys, apart from the backend's
  c10::intrusive_ptr<BackendBase> backend;
  std::atomic<int64_t> all_reduce_bytes{0}, all_reduce_calls{0};
  std::atomic<int64_t> all_gather_bytes{0}, all_gather_calls{0};
  std::atomic<int64_t> broadcast_bytes{0}, broadcast_calls{0};

  // How many collectives this rank has started. A thread publishes the count to the store (on change, at most every
  // 100 ms, over its own connection: never on the step's path), so that a rank whose collective times out can name
  // the rank that never started it, even when both are in the same step.
  std::atomic<int64_t> collectives_started{0};
  c10::intrusive_ptr<c10d::Store> publisher_keys;
  std::mutex publisher_mutex;
  std::condition_variable publisher_wake;
  bool publisher_stop = false;
  std::thread publisher;

  ~Impl() {
    {
      std::lock_guard<std::mutex> lock(publisher_mutex);
      publisher_stop = true;
    }
    publisher_wake.notify_all();
    if (publisher.joinable()) publisher.join();
  }

  void PublishCollectivesStarted() {
    const std::string key = "started/" + std::to_string(options.rank);
    int64_t published = -1;
    std::unique_lock<std::mutex> lock(publisher_mutex);
    while (!publisher_stop) {
      const int64_t started = collectives_started.load();
      if (started != published) {
        lock.unlock();
        try {
          publisher_keys->set(key, Bytes(std::to_string(started)));
        } catch (const std::exception&) {
          return;  // the store is gone with rank 0: the collectives' own errors say so
        }
        published = started;
        lock.lock();
      }
      publisher_wake.wait_for(lock, std::chrono::milliseconds(100), [this] { return publisher_stop; });
    }
  }

  std::string Where() const {
    return "rank " + std::to_string(options.rank) + " of " + std::to_string(options.world_size);
  }

  // Which ranks died, stopped or fell behind: a failed collective usually means one of them died or hangs. Each rank
  // recorded its host and pid at the rendezvous (a dead or stopped process on this machine is certain), and publishes
  // how far it got: its step count and the collectives it started. The store lives in rank 0's process, so when it
  // cannot be reached rank 0 is the one gone. It works on copies (the store's handles, the options, the count), as it
  // may outlive the group: see Diagnose.
  static std::string DiagnoseFrom(const ProcessGroupOptions& options, const c10::intrusive_ptr<c10d::TCPStore>& store,
                                  const c10::intrusive_ptr<c10d::Store>& keys, int64_t own_collectives_started) {
    try {
      store->setTimeout(std::chrono::milliseconds(3000));
      // The peers' last counts reach the store within 100 ms.
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
      std::vector<std::string> identities(options.world_size);
      std::vector<int64_t> steps(options.world_size, -1), started(options.world_size, -1);
      for (int64_t q = 0; q < options.world_size; ++q) {
        const std::string who = "who/" + std::to_string(q);
        const std::string step = "progress/" + std::to_string(q);
        const std::string collectives = "started/" + std::to_string(q);
        if (q != options.rank && keys->check({who})) identities[q] = Text(keys->get(who));
        if (keys->check({step})) steps[q] = std::stoll(Text(keys->get(step)));
        if (keys->check({collectives})) started[q] = std::stoll(Text(keys->get(collectives)));
      }
      started[options.rank] = own_collectives_started;
      const auto pid_of = [&](int64_t q) { return identities[q].substr(identities[q].rfind(' ') + 1); };
      // A peer's connection closes while it exits: give it a moment to be gone.
      for (int attempt = 0; attempt < 10; ++attempt) {
        std::ostringstream dead, stopped;
        for (int64_t q = 0; q < options.world_size; ++q) {
          if (identities[q].empty()) continue;
          const char state = StateOnThisMachine(identities[q]);
          std::ostringstream& list = Exited(state) ? dead : stopped;
          if (Exited(state) || Stopped(state)) list << (list.tellp() > 0 ? ", " : "") << "rank " << q << " (pid " << pid_of(q) << ")";
        }
        if (dead.tellp() > 0) return dead.str() + " exited";
        if (stopped.tellp() > 0) return stopped.str() + " is stopped (SIGSTOP, Ctrl-Z or a debugger)";
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      const auto at = [&](int64_t q) {
        return "at step " + (steps[q] < 0 ? std::string("none") : std::to_string(steps[q])) + ", collective " +
               std::to_string(std::max<int64_t>(started[q], 0));
      };
      const int64_t ahead = *std::max_element(started.begin(), started.end());
      std::ostringstream behind;
      int64_t leader = options.rank;
      for (int64_t q = 0; q < options.world_size; ++q) {
        if (started[q] == ahead) leader = q;
        if (started[q] < ahead) behind << (behind.tellp() > 0 ? ", " : "") << "rank " << q << " (" << at(q) << ")";
      }
      if (behind.tellp() > 0) {
        return "behind the others (" + at(leader) + "): " + behind.str() + ", which died, hangs or cannot be reached (the network between the machines)";
      }
      return "another rank died or hangs (see the other ranks' errors)";
    } catch (const std::exception&) {
      return StoreUnreachable(options);
    }
  }

  static std::string StoreUnreachable(const ProcessGroupOptions& options) {
    return "the rendezvous store on rank 0 (" + options.master_addr + ":" + std::to_string(options.master_port) +
           ") cannot be reached: rank 0 died or hangs, or the network to its machine is down";
  }

  // DiagnoseFrom on a thread of its own, waited for at most a few seconds: LibTorch 2.x's store client reads some
  // replies (check) with no timeout, and when the link to rank 0's machine is down no reset ever comes, so the
  // diagnosis would hang the failing rank forever. A diagnosis past the deadline is left blocked on its socket, holding
  // only its own copies, and the store is reported unreachable.
  std::string Diagnose() const {
    auto diagnosis = std::make_shared<std::promise<std::string>>();
    std::future<std::string> result = diagnosis->get_future();
    std::thread([options = options, store = store, keys = keys, started = collectives_started.load(), diagnosis] {
      diagnosis->set_value(DiagnoseFrom(options, store, keys, started));
    }).detach();
    // Its store waits are 3 s, its pause 0.25 s and its look for exited peers 1 s at most.
    if (result.wait_for(std::chrono::milliseconds(6000)) == std::future_status::ready) return result.get();
    return StoreUnreachable(options);
  }

  [[noreturn]] void Fail(const char* what, const std::exception& e) const {
    const std::string message = MessageOf(e);
    const bool timed_out = Contains(message, {"imed out", "imeout"});
    TORCH_CHECK(false, "distributed ", what, " failed on ", Where(),
                timed_out ? " after the collective timeout (" + Seconds(options.timeout) + ")" : std::string(), ": ",
                Diagnose(), ". (c10d: ", message.substr(0, 300), ")");
  }

  template <typename Start>
  void Run(const char* what, Start start) {
    try {
      start()->wait();
    } catch (const std::exception& e) {
      Fail(what, e);
    }
  }
};

namespace {

class PendingWork : public PendingCollective {
 public:
  PendingWork(const ProcessGroup::Impl* group, c10::intrusive_ptr<c10d::Work> work) : group_(group), work_(std::move(work)) {}
  void Wait() override {
    try {
      work_->wait();
    } catch (const std::exception& e) {
      group_->Fail("all-reduce", e);
    }
  }

 private:
  const ProcessGroup::Impl* group_;
  c10::intrusive_ptr<c10d::Work> work_;
};

void CheckOptions(const ProcessGroupOptions& o) {
  TORCH_CHECK_VALUE(!o.master_addr.empty(), "Expected the host of rank 0 for MASTER_ADDR (masterAddr) but received ''");
  TORCH_CHECK_VALUE(o.master_port >= 1 && o.master_port <= 65535, "Expected an integer between 1 and 65535 for MASTER_PORT "
                    "(masterPort) but received ", o.master_port);
  TORCH_CHECK_VALUE(o.world_size >= 1, "Expected an integer >= 1 for WORLD_SIZE (worldSize) but received ", o.world_size);
  TORCH_CHECK_VALUE(o.rank >= 0 && o.rank < o.world_size, "Expected an integer between 0 and WORLD_SIZE-1 = ",
                    o.world_size - 1, " for RANK (rank) but received ", o.rank);
  TORCH_CHECK_VALUE(o.timeout.count() >= 1, "Expected at least 1 ms for the timeout but received ", o.timeout.count(), " ms");
}

// The error of a rank that found nobody at MASTER_ADDR:MASTER_PORT within the timeout; `reason`: the last failure.
[[noreturn]] void ThrowUnreachableMaster(const ProcessGroupOptions& o, const std::string& reason) {
  TORCH_CHECK(false, "rank ", o.rank, " could not reach the master at ", o.master_addr, ":", o.master_port, " within ",
              Seconds(o.timeout), ": is rank 0 running, and are MASTER_ADDR and MASTER_PORT right? (", reason, ")");
  std::abort();  // not reached: TORCH_CHECK(false, ...) throws
}

// The error of a rank that found something other than a store at MASTER_ADDR:MASTER_PORT; `failure`: what c10d said.
[[noreturn]] void ThrowNotAStore(const ProcessGroupOptions& o, const std::string& failure) {
  TORCH_CHECK(false, "rank ", o.rank, ": what answers at ", o.master_addr, ":", o.master_port,
              " is not a rendezvous store (c10d's TCPStore): another program listens on MASTER_PORT, or rank 0 exited as "
              "this worker joined (see its error)", failure.empty() ? std::string() : " (" + failure.substr(0, 200) + ")");
  std::abort();  // not reached: TORCH_CHECK(false, ...) throws
}

c10::intrusive_ptr<c10d::TCPStore> ConnectStore(const ProcessGroupOptions& o) {
  c10d::TCPStoreOptions store_options;
  store_options.port = static_cast<uint16_t>(o.master_port);
  store_options.isServer = o.rank == 0 && o.rank0_serves_store;
  store_options.numWorkers = static_cast<size_t>(o.world_size);
  store_options.waitWorkers = false;  // joining is checked below, with messages that name the missing ranks
  store_options.timeout = o.timeout;
  const std::string where = o.master_addr + ":" + std::to_string(o.master_port);
  try {
    return c10::make_intrusive<c10d::TCPStore>(o.master_addr, store_options);
  } catch (const std::exception& e) {
    const std::string message = MessageOf(e);
    TORCH_CHECK(!(store_options.isServer && Contains(message, {"already in use", "EADDRINUSE", "errno: 98"})), "MASTER_PORT ",
                o.master_port, " is in use on this machine: rank 0 cannot serve the rendezvous there. Pick a free port "
                "(--master-port, MASTER_PORT) or stop the process that holds it");
    TORCH_CHECK(!store_options.isServer, "rank 0 could not serve the rendezvous store at ", where, ": ", message.substr(0, 300));
    // LibTorch 2.x's client pings the server as it connects, and gives up at its timeout if the answers are wrong.
    if (Contains(message, {"Ping failed", "invalid value returned from server"})) ThrowNotAStore(o, message);
    ThrowUnreachableMaster(o, message.substr(0, 300));
  }
}

// Waits until something at master_addr:master_port accepts a TCP connection, or the timeout passes; the error names the
// last reason (refused, unreachable, ...). Done with our own socket, before LibTorch's client, because that client
// formats every failed attempt with a reverse DNS lookup of the address: where DNS is slow, one refused attempt can
// outlast the whole timeout, and the rank would wrongly be told that the store took the connection and went silent.
// A connection to itself (the kernel picked MASTER_PORT as the ephemeral port) counts as refused.
void WaitUntilMasterAccepts(const ProcessGroupOptions& o) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const int resolved = getaddrinfo(o.master_addr.c_str(), std::to_string(o.master_port).c_str(), &hints, &found);
  TORCH_CHECK_VALUE(resolved == 0, "rank ", o.rank, " could not resolve MASTER_ADDR '", o.master_addr, "': ",
                    gai_strerror(resolved));
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> addresses(found, &freeaddrinfo);
  const auto deadline = std::chrono::steady_clock::now() + o.timeout;
  std::string reason = "no attempt finished";
  while (true) {
    for (const addrinfo* a = addresses.get(); a != nullptr; a = a->ai_next) {
      const int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) {
        reason = std::strerror(errno);
        continue;
      }
      int error = connect(fd, a->ai_addr, a->ai_addrlen) == 0 ? 0 : errno;
      if (error == EINPROGRESS) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        pollfd waiting{fd, POLLOUT, 0};
        const int ready = poll(&waiting, 1, static_cast<int>(std::clamp<int64_t>(left.count(), 1, 1000)));
        socklen_t size = sizeof(error);
        if (ready <= 0) error = ETIMEDOUT;
        else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0) error = errno;
      }
      if (error == 0) {
        sockaddr_storage mine{}, theirs{};
        socklen_t mine_size = sizeof(mine), theirs_size = sizeof(theirs);
        const bool to_itself = getsockname(fd, reinterpret_cast<sockaddr*>(&mine), &mine_size) == 0 &&
                               getpeername(fd, reinterpret_cast<sockaddr*>(&theirs), &theirs_size) == 0 &&
                               mine_size == theirs_size && std::memcmp(&mine, &theirs, mine_size) == 0;
        close(fd);
        if (!to_itself) return;
        error = ECONNREFUSED;
      } else {
        close(fd);
      }
      reason = std::strerror(error);
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ThrowUnreachableMaster(o, reason);
}

// Another client connection to the store: a TCPStore connection is not shared between threads. Its operations give
// up after at most 10 s, so that a thread using it never outlives its group by long.
c10::intrusive_ptr<c10d::Store> ConnectAnotherClient(const ProcessGroupOptions& o) {
  c10d::TCPStoreOptions store_options;
  store_options.port = static_cast<uint16_t>(o.master_port);
  store_options.isServer = false;
  store_options.waitWorkers = false;
  store_options.timeout = std::min(o.timeout, std::chrono::milliseconds(10000));
  try {
    return c10::make_intrusive<c10d::PrefixStore>("simclr", c10::make_intrusive<c10d::TCPStore>(o.master_addr, store_options));
  } catch (const std::exception& e) {
    TORCH_CHECK(false, "rank ", o.rank, " joined the group but could not open a second connection to the store at ",
                o.master_addr, ":", o.master_port, ": ", MessageOf(e).substr(0, 300));
  }
}

// What may be at MASTER_PORT when the store there takes connections but does not answer.
std::string SilentStoreHint(const ProcessGroupOptions& o) {
  if (o.rank0_serves_store) return " Is another program listening on MASTER_PORT?";
  return " It is the launcher's store (TORCHELASTIC_USE_AGENT_STORE=True): a torchrun from torch >= 2 serves a store that "
         "a LibTorch 1.x client cannot talk to (this build's is " TORCH_VERSION "). Run simclr on the torch of the launcher "
         "(activate its venv, or set PYTHON to its python: the prebuild for it loads) or start the workers with simclr "
         "train --nproc-per-node.";
}

// A store operation during the rendezvous; a broken connection means rank 0, which serves the store, is gone.
template <typename Operation>
auto WithStore(const ProcessGroupOptions& o, Operation operation) -> decltype(operation()) {
  try {
    return operation();
  } catch (const std::exception& e) {
    const std::string message = MessageOf(e);
    TORCH_CHECK(!Contains(message, {"imed out", "imeout"}), "rank ", o.rank, ": the rendezvous store at ", o.master_addr,
                ":", o.master_port, " did not answer within ", Seconds(o.timeout), ".", SilentStoreHint(o), " (",
                message.substr(0, 200), ")");
    TORCH_CHECK(false, "rank ", o.rank, " lost the rendezvous store at ", o.master_addr, ":", o.master_port,
                " while joining: rank 0 exited (see its error). (", message.substr(0, 200), ")");
  }
}

// A program that is no store (a web server on MASTER_PORT) answers the first request with bytes that read as some
// count, which the claim of a RANK would take for another worker's: an add to this worker's own new key must return
// what was added before any answer is believed.
void CheckIsStore(const ProcessGroupOptions& o, c10d::Store& keys) {
  constexpr int64_t kProbe = 7919;
  const std::string key = "hello/" + std::to_string(o.rank) + "/" + Identity();
  int64_t answer = -1;
  std::string failure;
  try {
    answer = keys.add(key, kProbe);
  } catch (const std::exception& e) {
    failure = MessageOf(e);
    // A store that takes the connection and stays silent: the rendezvous deadline's message says so.
    if (Contains(failure, {"imed out", "imeout"})) throw;
  }
  if (answer != kProbe) ThrowNotAStore(o, failure);
}

// Every rank records its rank, host, pid and world size; each then waits for ranks 0..W-1 and checks that they agree.
void Join(const ProcessGroupOptions& o, c10d::Store& keys) {
  const std::string rank = std::to_string(o.rank);
  CheckIsStore(o, keys);
  const int64_t claims = WithStore(o, [&] { return keys.add("claims/" + rank, 1); });
  TORCH_CHECK_VALUE(claims == 1, "RANK ", o.rank, " is taken by another worker of this group: each worker needs its own RANK");
  WithStore(o, [&] {
    keys.set("who/" + rank, Bytes(Identity()));
    keys.set("world/" + rank, Bytes(std::to_string(o.world_size)));
    return 0;
  });
  std::vector<std::string> all;
  for (int64_t q = 0; q < o.world_size; ++q) all.push_back("world/" + std::to_string(q));
  bool joined = true;
  try {
    keys.wait(all, o.timeout);
  } catch (const std::exception& e) {
    joined = false;
  }
  if (!joined) {
    std::ostringstream missing;
    WithStore(o, [&] {
      for (int64_t q = 0; q < o.world_size; ++q) {
        if (!keys.check({all[q]})) missing << (missing.tellp() > 0 ? ", " : "") << q;
      }
      return 0;
    });
    TORCH_CHECK(false, "rendezvous at ", o.master_addr, ":", o.master_port, " timed out after ", Seconds(o.timeout),
                ": rank(s) ", missing.str(), " of WORLD_SIZE=", o.world_size, " never joined");
  }
  for (int64_t q = 0; q < o.world_size; ++q) {
    const std::string theirs = WithStore(o, [&] { return Text(keys.get(all[q])); });
    TORCH_CHECK_VALUE(theirs == std::to_string(o.world_size), "rank ", q, " was started with WORLD_SIZE=", theirs,
                      " but rank ", o.rank, " with WORLD_SIZE=", o.world_size, ": every worker needs the same world size");
  }
}

using Rendezvous = std::pair<c10::intrusive_ptr<c10d::TCPStore>, c10::intrusive_ptr<c10d::Store>>;

// Connects to the store and joins, within the timeout and a margin. Every wait of the rendezvous has the timeout, but a
// store that takes the connection and never answers would hold a LibTorch 1.x client forever (its receives have no
// timeout): torchrun's agent store from torch >= 2 does exactly that. So the rendezvous runs on a thread of its own,
// which is left behind (blocked on its socket) if it misses the deadline.
Rendezvous RendezvousWithDeadline(const ProcessGroupOptions& o) {
  const bool serves_store = o.rank == 0 && o.rank0_serves_store;
  if (!serves_store) WaitUntilMasterAccepts(o);
  auto joined = std::make_shared<std::promise<Rendezvous>>();
  std::future<Rendezvous> result = joined->get_future();
  std::thread([o, joined] {
    try {
      c10::intrusive_ptr<c10d::TCPStore> store = ConnectStore(o);
      c10::intrusive_ptr<c10d::Store> keys = c10::make_intrusive<c10d::PrefixStore>("simclr", store);
      Join(o, *keys);
      joined->set_value({store, keys});
    } catch (...) {
      joined->set_exception(std::current_exception());
    }
  }).detach();
  // A little past the timeout, so that the rendezvous's own waits (ranks that never join) fail first, with their
  // messages; --dist-timeout 20 ends a silent store's wait in 22 s, not 30 as with a margin of the timeout itself.
  const auto deadline = o.timeout + std::min(o.timeout / 10, std::chrono::milliseconds(2000));
  if (result.wait_for(deadline) == std::future_status::ready) return result.get();
  TORCH_CHECK(false, "rank ", o.rank, ": the rendezvous store at ", o.master_addr, ":", o.master_port,
              " took the connection but did not answer within ", Seconds(o.timeout), ".", SilentStoreHint(o));
}

c10::intrusive_ptr<BackendBase> CreateBackend(const ProcessGroupOptions& o, const c10::intrusive_ptr<c10d::Store>& store) {
  if (o.backend == CommBackend::kNccl) {
#ifdef SIMCLR_WITH_NCCL
    auto options = c10d::ProcessGroupNCCL::Options::create();
    options->timeout = o.timeout;
    return c10::make_intrusive<c10d::ProcessGroupNCCL>(c10::make_intrusive<c10d::PrefixStore>("nccl", store), o.rank,
                                                       o.world_size, options);
#else
    TORCH_CHECK_VALUE(false, "backend 'nccl' is not compiled into this binary: it needs a CUDA LibTorch and the CUDA and "
                      "NCCL headers at build time (see `simclr doctor`); use backend 'gloo' or rebuild");
#endif
  }
  auto options = c10d::ProcessGroupGloo::Options::create(o.timeout);
  // As PyTorch: GLOO_SOCKET_IFNAME picks the interface; a loopback master means a single machine, so stay on loopback;
  // otherwise the interface this host's name resolves to.
  const char* interface = std::getenv("GLOO_SOCKET_IFNAME");
  if (interface != nullptr && *interface != '\0') {
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(interface));
  } else if (IsLoopback(o.master_addr)) {
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  } else {
    options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  }
  return c10::make_intrusive<c10d::ProcessGroupGloo>(c10::make_intrusive<c10d::PrefixStore>("gloo", store), o.rank,
                                                     o.world_size, options);
}

}  // namespace

std::shared_ptr<ProcessGroup> ProcessGroup::Create(const ProcessGroupOptions& options) {
  CheckOptions(options);
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  std::tie(impl->store, impl->keys) = RendezvousWithDeadline(options);
  try {
    impl->backend = CreateBackend(options, impl->store);
  } catch (const c10::ValueError&) {
    throw;
  } catch (const std::exception& e) {
    TORCH_CHECK(false, "the ", options.backend == CommBackend::kNccl ? "NCCL" : "Gloo", " backend could not connect ",
                impl->Where(), " within ", Seconds(options.timeout), ": ", MessageOf(e).substr(0, 300));
  }
  impl->publisher_keys = ConnectAnotherClient(options);
  impl->publisher = std::thread([group = impl.get()] { group->PublishCollectivesStarted(); });
  return std::shared_ptr<ProcessGroup>(new ProcessGroup(std::move(impl)));
}

ProcessGroup::ProcessGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ProcessGroup::~ProcessGroup() = default;

int64_t ProcessGroup::rank() const { return impl_->options.rank; }
int64_t ProcessGroup::size() const { return impl_->options.world_size; }
CommBackend ProcessGroup::backend() const { return impl_->options.backend; }
std::chrono::milliseconds ProcessGroup::timeout() const { return impl_->options.timeout; }

static int64_t ByteSize(const at::Tensor& t) { return t.numel() * int64_t(t.element_size()); }

void ProcessGroup::AllReduceSum(at::Tensor& tensor) {
  TORCH_CHECK(tensor.is_contiguous(), "all-reduce needs a contiguous tensor");
  impl_->all_reduce_bytes += ByteSize(tensor);
  ++impl_->all_reduce_calls;
  ++impl_->collectives_started;
  std::vector<at::Tensor> tensors = {tensor};
  impl_->Run("all-reduce", [&] { return impl_->backend->allreduce(tensors, c10d::AllreduceOptions()); });
}

std::unique_ptr<PendingCollective> ProcessGroup::StartAllReduceSum(at::Tensor tensor) {
  TORCH_CHECK(tensor.is_contiguous(), "all-reduce needs a contiguous tensor");
  impl_->all_reduce_bytes += ByteSize(tensor);
  ++impl_->all_reduce_calls;
  ++impl_->collectives_started;
  std::vector<at::Tensor> tensors = {tensor};
  try {
    return std::make_unique<PendingWork>(impl_.get(), impl_->backend->allreduce(tensors, c10d::AllreduceOptions()));
  } catch (const std::exception& e) {
    impl_->Fail("all-reduce", e);
  }
}

at::Tensor ProcessGroup::AllGather(const at::Tensor& tensor) {
  std::vector<at::Tensor> input = {tensor.contiguous()};
  std::vector<std::vector<at::Tensor>> output(1);
  for (int64_t q = 0; q < size(); ++q) output[0].push_back(at::empty_like(input[0]));
  impl_->all_gather_bytes += ByteSize(tensor);
  ++impl_->all_gather_calls;
  ++impl_->collectives_started;
  impl_->Run("all-gather", [&] { return impl_->backend->allgather(output, input, c10d::AllgatherOptions()); });
  return at::stack(output[0]);
}

at::Tensor ProcessGroup::AllGatherRows(const at::Tensor& tensor, std::vector<int64_t>* counts) {
  TORCH_CHECK(tensor.dim() >= 1, "all-gather of rows needs a tensor with at least one dimension");
  at::Tensor gathered_counts = AllGather(at::full({1}, tensor.size(0), tensor.options().dtype(at::kLong))).cpu();
  counts->assign(gathered_counts.data_ptr<int64_t>(), gathered_counts.data_ptr<int64_t>() + size());
  const int64_t rows = *std::max_element(counts->begin(), counts->end());
  at::Tensor padded = tensor;
  if (tensor.size(0) < rows) {
    std::vector<int64_t> shape = tensor.sizes().vec();
    shape[0] = rows - tensor.size(0);
    padded = at::cat({tensor, at::zeros(shape, tensor.options())}, 0);
  }
  at::Tensor stacked = AllGather(padded);
  std::vector<at::Tensor> parts;
  for (int64_t q = 0; q < size(); ++q) parts.push_back(stacked[q].narrow(0, 0, (*counts)[q]));
  return at::cat(parts, 0);
}

void ProcessGroup::Broadcast(at::Tensor& tensor, int64_t root) {
  TORCH_CHECK(tensor.is_contiguous(), "broadcast needs a contiguous tensor");
  TORCH_CHECK_VALUE(root >= 0 && root < size(), "Expected a rank between 0 and ", size() - 1, " for the broadcast root but received ", root);
  impl_->broadcast_bytes += ByteSize(tensor);
  ++impl_->broadcast_calls;
  ++impl_->collectives_started;
  std::vector<at::Tensor> tensors = {tensor};
  c10d::BroadcastOptions options;
  options.rootRank = root;
  impl_->Run("broadcast", [&] { return impl_->backend->broadcast(tensors, options); });
}

void ProcessGroup::SetKey(const std::string& key, const std::string& value) {
  try {
    impl_->keys->set("user/" + key, Bytes(value));
  } catch (const std::exception& e) {
    impl_->Fail("store write", e);
  }
}

std::string ProcessGroup::WaitKey(const std::string& key, std::chrono::milliseconds timeout) {
  try {
    impl_->keys->wait({"user/" + key}, timeout);
    return Text(impl_->keys->get("user/" + key));
  } catch (const std::exception& e) {
    const std::string message = MessageOf(e);
    TORCH_CHECK(!Contains(message, {"imed out", "imeout"}), impl_->Where(), " waited ", Seconds(timeout),
                " for rank 0 to signal '", key, "': ", impl_->Diagnose());
    impl_->Fail("store wait", e);
  }
}

void ProcessGroup::MarkProgress(int64_t progress) {
  try {
    impl_->keys->set("progress/" + std::to_string(rank()), Bytes(std::to_string(progress)));
  } catch (const std::exception& e) {
    impl_->Fail("progress update", e);
  }
}

CommunicationCounters ProcessGroup::counters() const {
  CommunicationCounters c;
  c.all_reduce_bytes = impl_->all_reduce_bytes;
  c.all_reduce_calls = impl_->all_reduce_calls;
  c.all_gather_bytes = impl_->all_gather_bytes;
  c.all_gather_calls = impl_->all_gather_calls;
  c.broadcast_bytes = impl_->broadcast_bytes;
  c.broadcast_calls = impl_->broadcast_calls;
  return c;
}

}  // namespace simclr
