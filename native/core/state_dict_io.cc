// A restricted reader of torch.save files and a writer of torch.save's zip layout. torch::pickle_load cannot read
// torchvision's checkpoints (an OrderedDict with a _metadata attribute trips an internal assert in LibTorch 1.13), and
// Python's pickle would run any code a file names; this small unpickler implements only the opcodes that pickle
// protocol 2 uses for plain data and resolves only the globals a state dict needs.
#include "core/state_dict_io.h"

#include <caffe2/serialize/inline_container.h>
#include <caffe2/serialize/in_memory_adapter.h>
#include <torch/csrc/jit/serialization/pickler.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <set>

namespace simclr {
namespace {

struct Value;
using ValuePtr = std::shared_ptr<Value>;

// The data a state-dict pickle can hold. Globals are kept as names; only allowed names are ever resolved.
struct Value {
  enum Kind { kNone, kBool, kInt, kBigInt, kFloat, kString, kTuple, kList, kDict, kGlobal, kStorage, kTensor, kMark } kind = kNone;
  int64_t integer = 0;
  double real = 0;
  std::string text;  // string value, "module.name" of a global, or a big integer's little-endian bytes
  std::vector<ValuePtr> items;                             // tuple, list
  std::vector<std::pair<ValuePtr, ValuePtr>> entries;      // dict / OrderedDict
  at::Tensor tensor;  // storage (1-D, its dtype) or tensor
  // Nesting depth, and whether this value is inside a container. A container cannot change once it is inside another,
  // so values form no cycles and their depth is bounded: a hostile file cannot recurse the reader to a crash.
  int depth = 0;
  bool nested = false;
};

// A value's kind as Python names it, for messages.
const char* KindName(Value::Kind kind) {
  switch (kind) {
    case Value::kNone: return "None";
    case Value::kBool: return "bool";
    case Value::kInt: case Value::kBigInt: return "int";
    case Value::kFloat: return "float";
    case Value::kString: return "str";
    case Value::kTuple: return "tuple";
    case Value::kList: return "list";
    case Value::kDict: return "dict";
    case Value::kGlobal: return "global";
    case Value::kStorage: return "storage";
    case Value::kTensor: return "tensor";
    case Value::kMark: return "MARK";
  }
  return "value";
}

constexpr int kMaxDepth = 64;

// Puts `child` inside `container`.
void Nest(Value& container, const ValuePtr& child) {
  child->nested = true;
  TORCH_CHECK(!container.nested, "state dict file: a container is changed after it was used (not a plain state dict)");
  TORCH_CHECK(child->depth < kMaxDepth, "state dict file: values nested too deeply");
  container.depth = std::max(container.depth, child->depth + 1);
}

ValuePtr Make(Value::Kind kind) {
  auto v = std::make_shared<Value>();
  v->kind = kind;
  return v;
}

const std::map<std::string, at::ScalarType>& StorageTypes() {
  static const std::map<std::string, at::ScalarType> types = {
      {"torch.FloatStorage", at::kFloat},   {"torch.DoubleStorage", at::kDouble}, {"torch.HalfStorage", at::kHalf},
      {"torch.BFloat16Storage", at::kBFloat16}, {"torch.LongStorage", at::kLong}, {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort},   {"torch.CharStorage", at::kChar},     {"torch.ByteStorage", at::kByte},
      {"torch.BoolStorage", at::kBool},
  };
  return types;
}

// Given (storage dtype, key, element count), returns the 1-D storage tensor for a persistent id.
// What torch::pickle_save wraps a typed Dict in; torch.load calls it, and so do we.
constexpr const char* kRestoreTypeTag = "torch.jit._pickle.restore_type_tag";

using StorageLoader = std::function<at::Tensor(at::ScalarType, const std::string&, int64_t)>;

class RestrictedUnpickler {
 public:
  RestrictedUnpickler(const uint8_t* data, size_t size, StorageLoader load_storage)
      : data_(data), size_(size), load_storage_(std::move(load_storage)) {}

  ValuePtr Run() {
    while (true) {
      const uint8_t op = Byte();
      switch (op) {
        case 0x80: Byte(); break;                      // PROTO
        case 0x95: Bytes(8); break;                    // FRAME (protocol 4)
        case '.': TORCH_CHECK(stack_.size() == 1, "state dict file: malformed pickle"); return stack_.back();  // STOP
        case 'N': Push(Make(Value::kNone)); break;
        case 0x88: case 0x89: { auto v = Make(Value::kBool); v->integer = op == 0x88; Push(v); break; }
        case 'J': PushInt(static_cast<int32_t>(Little(4))); break;   // BININT
        case 'K': PushInt(static_cast<int64_t>(Little(1))); break;   // BININT1
        case 'M': PushInt(static_cast<int64_t>(Little(2))); break;   // BININT2
        case 0x8a: PushLong(Byte()); break;                          // LONG1
        case 0x8b: PushLong(Little(4)); break;                       // LONG4
        case 'G': {                                                  // BINFLOAT (big-endian)
          const uint8_t* p = Bytes(8);
          uint64_t bits = 0;
          for (int i = 0; i < 8; ++i) bits = (bits << 8) | p[i];
          auto v = Make(Value::kFloat);
          std::memcpy(&v->real, &bits, 8);
          Push(v);
          break;
        }
        case 'X': PushString(Little(4)); break;    // BINUNICODE
        case 0x8c: PushString(Byte()); break;      // SHORT_BINUNICODE
        case 0x8d: PushString(Little(8)); break;   // BINUNICODE8
        case 'T': PushString(Little(4)); break;    // BINSTRING
        case 'U': PushString(Byte()); break;       // SHORT_BINSTRING
        case 'B': PushString(Little(4)); break;    // BINBYTES
        case 'C': PushString(Byte()); break;       // SHORT_BINBYTES
        case '}': Push(Make(Value::kDict)); break;
        case ']': Push(Make(Value::kList)); break;
        case ')': Push(Make(Value::kTuple)); break;
        case '(': Push(Make(Value::kMark)); break;
        case 't': case 'l': case 'd': {            // TUPLE, LIST, DICT from the items after the mark
          std::vector<ValuePtr> items = PopToMark();
          if (op == 'd') {
            TORCH_CHECK(items.size() % 2 == 0, "state dict file: malformed pickle (odd DICT)");
            auto dict = Make(Value::kDict);
            for (size_t i = 0; i < items.size(); i += 2) AddEntry(dict, items[i], items[i + 1]);
            Push(dict);
          } else {
            auto seq = Make(op == 't' ? Value::kTuple : Value::kList);
            for (const auto& item : items) AddItem(seq, item);
            Push(seq);
          }
          break;
        }
        case 0x85: case 0x86: case 0x87: {         // TUPLE1..3
          const size_t n = op - 0x84;
          TORCH_CHECK(stack_.size() >= n, "state dict file: malformed pickle (stack underflow)");
          auto tuple = Make(Value::kTuple);
          std::vector<ValuePtr> items(stack_.end() - n, stack_.end());
          stack_.resize(stack_.size() - n);
          for (const auto& item : items) {
            CheckNotMark(item);
            AddItem(tuple, item);
          }
          Push(tuple);
          break;
        }
        case 'a': { ValuePtr item = Pop(); AddItem(Sequence(Top(), Value::kList), item); break; }  // APPEND
        case 'e': { std::vector<ValuePtr> items = PopToMark(); auto list = Sequence(Top(), Value::kList);   // APPENDS
          for (const auto& item : items) AddItem(list, item);
          break; }
        case 's': { ValuePtr v = Pop(); ValuePtr k = Pop(); AddEntry(Sequence(Top(), Value::kDict), k, v); break; }
        case 'u': {                                // SETITEMS
          std::vector<ValuePtr> items = PopToMark();
          TORCH_CHECK(items.size() % 2 == 0, "state dict file: malformed pickle (odd SETITEMS)");
          auto dict = Sequence(Top(), Value::kDict);
          for (size_t i = 0; i < items.size(); i += 2) AddEntry(dict, items[i], items[i + 1]);
          break;
        }
        case 'q': Memo(Little(1)) = Top(); break;  // BINPUT
        case 'r': Memo(Little(4)) = Top(); break;  // LONG_BINPUT
        case 0x94: Memo(memo_.size()) = Top(); break;  // MEMOIZE
        case 'h': Push(Fetch(Little(1))); break;   // BINGET
        case 'j': Push(Fetch(Little(4))); break;   // LONG_BINGET
        case '0': Pop(); break;                    // POP
        case '1': PopToMark(); break;              // POP_MARK
        case '2': Push(Top()); break;              // DUP
        case 'c': {                                // GLOBAL "module\nname\n"
          std::string module = Line();
          PushGlobal(module + "." + Line());
          break;
        }
        case 0x93: {                               // STACK_GLOBAL
          ValuePtr name = Pop(), module = Pop();
          TORCH_CHECK(name->kind == Value::kString && module->kind == Value::kString, "state dict file: malformed STACK_GLOBAL");
          PushGlobal(module->text + "." + name->text);
          break;
        }
        case 'Q': Push(PersistentLoad(Pop())); break;  // BINPERSID
        case 'R': { ValuePtr args = Pop(); ValuePtr callable = Pop(); Push(Reduce(callable, args)); break; }
        case 'b': {                                // BUILD: an OrderedDict's state is its _metadata; nothing to keep
          ValuePtr state = Pop();
          TORCH_CHECK(Top()->kind == Value::kDict || Top()->kind == Value::kTensor,
                      "state dict file: BUILD on an object that is not an OrderedDict or tensor");
          break;
        }
        default:
          TORCH_CHECK(false, "state dict file: unsupported pickle opcode ", int(op), " at byte ", pos_ - 1,
                      " (only plain data and tensors are read)");
      }
    }
  }

  size_t position() const { return pos_; }

 private:
  uint8_t Byte() { return *Bytes(1); }
  const uint8_t* Bytes(uint64_t n) {
    TORCH_CHECK(n <= size_ - pos_, "state dict file: truncated pickle");
    const uint8_t* p = data_ + pos_;
    pos_ += n;
    return p;
  }
  uint64_t Little(int n) {
    const uint8_t* p = Bytes(n);
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
    return v;
  }
  std::string Line() {
    std::string line;
    for (uint8_t c = Byte(); c != '\n'; c = Byte()) {
      line.push_back(char(c));
      TORCH_CHECK(line.size() < 256, "state dict file: malformed GLOBAL");
    }
    return line;
  }
  void Push(ValuePtr v) {
    TORCH_CHECK(stack_.size() < (1u << 20), "state dict file: pickle stack too deep");
    stack_.push_back(std::move(v));
  }
  ValuePtr Pop() {
    TORCH_CHECK(!stack_.empty(), "state dict file: malformed pickle (stack underflow)");
    ValuePtr v = stack_.back();
    stack_.pop_back();
    CheckNotMark(v);
    return v;
  }
  ValuePtr& Top() {
    TORCH_CHECK(!stack_.empty() && stack_.back()->kind != Value::kMark, "state dict file: malformed pickle (stack underflow)");
    return stack_.back();
  }
  static void CheckNotMark(const ValuePtr& v) {
    TORCH_CHECK(v->kind != Value::kMark, "state dict file: malformed pickle (unexpected MARK)");
  }
  static void AddItem(const ValuePtr& container, const ValuePtr& item) {
    Nest(*container, item);
    container->items.push_back(item);
  }
  static void AddEntry(const ValuePtr& dict, const ValuePtr& key, const ValuePtr& value) {
    Nest(*dict, key);
    Nest(*dict, value);
    dict->entries.emplace_back(key, value);
  }
  static ValuePtr Sequence(const ValuePtr& v, Value::Kind kind) {
    TORCH_CHECK(v->kind == kind, "state dict file: malformed pickle (wrong container)");
    return v;
  }
  std::vector<ValuePtr> PopToMark() {
    size_t mark = stack_.size();
    while (mark > 0 && stack_[mark - 1]->kind != Value::kMark) --mark;
    TORCH_CHECK(mark > 0, "state dict file: malformed pickle (no MARK)");
    std::vector<ValuePtr> items(stack_.begin() + mark, stack_.end());
    stack_.resize(mark - 1);
    return items;
  }
  ValuePtr& Memo(uint64_t index) {
    TORCH_CHECK(index < (1u << 24), "state dict file: memo index too large");
    return memo_[index];
  }
  ValuePtr Fetch(uint64_t index) {
    auto found = memo_.find(index);
    TORCH_CHECK(found != memo_.end() && found->second, "state dict file: malformed pickle (memo ", index, ")");
    return found->second;
  }
  void PushInt(int64_t value) {
    auto v = Make(Value::kInt);
    v->integer = value;
    Push(v);
  }
  void PushLong(uint64_t n) {
    const uint8_t* p = Bytes(n);
    if (n > 8) {  // only the legacy format's magic number is this big; it is compared as bytes
      auto v = Make(Value::kBigInt);
      v->text.assign(reinterpret_cast<const char*>(p), n);
      Push(v);
      return;
    }
    uint64_t bits = 0;
    for (int i = int(n) - 1; i >= 0; --i) bits = (bits << 8) | p[i];
    if (n > 0 && n < 8 && (p[n - 1] & 0x80)) bits |= ~uint64_t(0) << (8 * n);  // sign-extend
    PushInt(static_cast<int64_t>(bits));
  }
  void PushString(uint64_t n) {
    const uint8_t* p = Bytes(n);
    auto v = Make(Value::kString);
    v->text.assign(reinterpret_cast<const char*>(p), n);
    Push(v);
  }
  void PushGlobal(const std::string& name) {
    const bool allowed = name == "collections.OrderedDict" || name == "torch._utils._rebuild_tensor_v2" ||
                         name == kRestoreTypeTag || StorageTypes().count(name) > 0;
    TORCH_CHECK(allowed, "state dict file: refusing to load the global '", name,
                "': only tensors in (Ordered)dicts are read, never code");
    auto v = Make(Value::kGlobal);
    v->text = name;
    Push(v);
  }
  static int64_t Int(const ValuePtr& v, const char* what) {
    TORCH_CHECK(v->kind == Value::kInt, "state dict file: Expected an integer for ", what, " but received a ",
                KindName(v->kind));
    return v->integer;
  }
  static std::vector<int64_t> Ints(const ValuePtr& v, const char* what) {
    TORCH_CHECK(v->kind == Value::kTuple || v->kind == Value::kList, "state dict file: Expected a tuple for ", what,
                " but received a ", KindName(v->kind));
    std::vector<int64_t> out;
    for (const auto& item : v->items) out.push_back(Int(item, what));
    return out;
  }
  // ('storage', torch.XStorage, key, location, numel[, view_metadata]) -> the storage as a 1-D tensor.
  ValuePtr PersistentLoad(const ValuePtr& pid) {
    TORCH_CHECK(pid->kind == Value::kTuple && pid->items.size() >= 5 && pid->items[0]->kind == Value::kString &&
                    pid->items[0]->text == "storage" && pid->items[1]->kind == Value::kGlobal &&
                    pid->items[2]->kind == Value::kString,
                "state dict file: unsupported persistent id");
    TORCH_CHECK(pid->items.size() == 5 || pid->items[5]->kind == Value::kNone,
                "state dict file: storage views (legacy format) are not supported");
    auto type = StorageTypes().find(pid->items[1]->text);
    TORCH_CHECK(type != StorageTypes().end(), "state dict file: '", pid->items[1]->text, "' is not a storage type");
    const int64_t numel = Int(pid->items[4], "storage size");
    TORCH_CHECK(numel >= 0 && numel < (int64_t(1) << 40), "state dict file: bad storage size ", numel);
    auto v = Make(Value::kStorage);
    v->tensor = load_storage_(type->second, pid->items[2]->text, numel);
    return v;
  }
  ValuePtr Reduce(const ValuePtr& callable, const ValuePtr& args) {
    TORCH_CHECK(callable->kind == Value::kGlobal && args->kind == Value::kTuple, "state dict file: malformed REDUCE");
    if (callable->text == "collections.OrderedDict") {
      TORCH_CHECK(args->items.empty(), "state dict file: OrderedDict with constructor arguments is not supported");
      return Make(Value::kDict);
    }
    if (callable->text == kRestoreTypeTag) {
      // restore_type_tag(value, type_name) returns value (it only annotates its TorchScript type).
      TORCH_CHECK(args->items.size() == 2, "state dict file: malformed restore_type_tag arguments");
      return args->items[0];
    }
    TORCH_CHECK(callable->text == "torch._utils._rebuild_tensor_v2", "state dict file: cannot call '", callable->text, "'");
    // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    TORCH_CHECK(args->items.size() >= 6 && args->items[0]->kind == Value::kStorage,
                "state dict file: malformed _rebuild_tensor_v2 arguments");
    const at::Tensor& storage = args->items[0]->tensor;
    const int64_t offset = Int(args->items[1], "storage offset");
    std::vector<int64_t> sizes = Ints(args->items[2], "size");
    std::vector<int64_t> strides = Ints(args->items[3], "stride");
    TORCH_CHECK(sizes.size() == strides.size() && sizes.size() <= 16, "state dict file: size and stride disagree");
    // Every element the view can reach must lie inside the storage (a hostile file must not read out of bounds), and
    // the tensor may not hold more elements than its storage (overlapping strides would turn a small storage into a
    // huge tensor when it is copied). The arithmetic is checked: sizes times strides could overflow int64.
    TORCH_CHECK(offset >= 0 && offset <= storage.numel(), "state dict file: storage offset ", offset,
                " lies outside its storage of ", storage.numel(), " elements");
    bool empty = false;
    for (size_t i = 0; i < sizes.size(); ++i) {
      TORCH_CHECK(sizes[i] >= 0 && sizes[i] < (int64_t(1) << 40) && strides[i] >= 0 && strides[i] < (int64_t(1) << 40),
                  "state dict file: bad size or stride");
      if (sizes[i] == 0) empty = true;
    }
    if (!empty) {
      int64_t last = offset;
      int64_t numel = 1;
      for (size_t i = 0; i < sizes.size(); ++i) {
        int64_t reach = 0;
        TORCH_CHECK(!__builtin_mul_overflow(sizes[i] - 1, strides[i], &reach) && !__builtin_add_overflow(last, reach, &last) &&
                        !__builtin_mul_overflow(numel, sizes[i], &numel),
                    "state dict file: a tensor reaches past the end of its storage");
      }
      TORCH_CHECK(last < storage.numel(), "state dict file: a tensor reaches past the end of its storage");
      TORCH_CHECK(numel <= storage.numel(), "state dict file: a tensor of ", numel, " elements over a storage of ",
                  storage.numel(), " (overlapping strides) is not a state dict's tensor");
    }
    auto v = Make(Value::kTensor);
    v->tensor = empty ? at::empty(sizes, storage.options()) : storage.as_strided(sizes, strides, offset);
    return v;
  }

  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  StorageLoader load_storage_;
  std::vector<ValuePtr> stack_;
  std::map<uint64_t, ValuePtr> memo_;
};

// Flattens nested dicts into dotted keys (a checkpoint like {"model": {...}} keeps its structure in the names).
void Flatten(const ValuePtr& value, const std::string& prefix, NamedTensors* out) {
  if (value->kind == Value::kTensor) {
    TORCH_CHECK(!prefix.empty(), "state dict file: holds a single tensor, not a state dict");
    out->emplace_back(prefix, value->tensor);
    return;
  }
  TORCH_CHECK(value->kind == Value::kDict, "state dict file: Expected a dict of tensors",
              prefix.empty() ? std::string() : " at '" + prefix + "'", " but received a ", KindName(value->kind));
  for (const auto& entry : value->entries) {
    TORCH_CHECK(entry.first->kind == Value::kString, "state dict file: Expected strings for the dict keys but received a ",
                KindName(entry.first->kind));
    const std::string key = prefix.empty() ? entry.first->text : prefix + "." + entry.first->text;
    const Value::Kind kind = entry.second->kind;
    if (kind == Value::kTensor || kind == Value::kDict) Flatten(entry.second, key, out);
    // Other values (epoch numbers, strings) are not tensors and have no place in a module's state: skipped.
  }
}

at::Tensor StorageFromBytes(at::ScalarType dtype, const void* bytes, size_t nbytes) {
  const size_t element = c10::elementSize(dtype);
  TORCH_CHECK(nbytes % element == 0, "state dict file: storage size is not a multiple of its element size");
  at::Tensor storage = at::empty({int64_t(nbytes / element)}, at::TensorOptions().dtype(dtype));
  if (nbytes > 0) std::memcpy(storage.data_ptr(), bytes, nbytes);
  return storage;
}

// How one zip entry is stored, from the central directory: read before anything is decompressed, so that a small
// file cannot declare (or deflate to) gigabytes.
struct ZipEntry {
  uint16_t method = 0;  // 0 stored, 8 deflated
  uint64_t compressed = 0;
  uint64_t uncompressed = 0;
};

// The records of a torch.save zip by name (without the archive's folder prefix, as PyTorchStreamReader names them).
// Every offset is checked against the buffer.
std::map<std::string, ZipEntry> ZipDirectory(const uint8_t* data, size_t size) {
  auto u16 = [&](uint64_t at) -> uint64_t {
    TORCH_CHECK(at <= size && size - at >= 2, "state dict file: malformed zip (truncated directory)");
    return uint64_t(data[at]) | uint64_t(data[at + 1]) << 8;
  };
  auto u32 = [&](uint64_t at) -> uint64_t { return u16(at) | u16(at + 2) << 16; };
  auto u64 = [&](uint64_t at) -> uint64_t { return u32(at) | u32(at + 4) << 32; };
  TORCH_CHECK(size >= 22, "state dict file: truncated zip");
  // The end-of-central-directory record is the last 22 bytes, before a comment of at most 64 KiB.
  uint64_t eocd = size - 22;
  while (u32(eocd) != 0x06054b50) {
    TORCH_CHECK(eocd > 0 && size - eocd < 22 + 65536, "state dict file: malformed zip (no end of central directory)");
    --eocd;
  }
  uint64_t count = u16(eocd + 10);
  uint64_t offset = u32(eocd + 16);
  if (eocd >= 20 && u32(eocd - 20) == 0x07064b50) {  // zip64: the real count and offset are in the zip64 record
    const uint64_t zip64 = u64(eocd - 20 + 8);
    TORCH_CHECK(u32(zip64) == 0x06064b50, "state dict file: malformed zip64 directory");
    count = u64(zip64 + 32);
    offset = u64(zip64 + 48);
  }
  TORCH_CHECK(offset <= size && count <= (size - offset) / 46, "state dict file: malformed zip (directory out of range)");
  std::map<std::string, ZipEntry> entries;
  std::set<std::string> seen;
  std::string prefix;
  for (uint64_t i = 0; i < count; ++i) {
    TORCH_CHECK(u32(offset) == 0x02014b50, "state dict file: malformed zip central directory");
    ZipEntry entry;
    entry.method = uint16_t(u16(offset + 10));
    entry.compressed = u32(offset + 20);
    entry.uncompressed = u32(offset + 24);
    const uint64_t name_bytes = u16(offset + 28), extra_bytes = u16(offset + 30), comment_bytes = u16(offset + 32);
    const uint64_t name_at = offset + 46, extra_at = name_at + name_bytes, next = extra_at + extra_bytes + comment_bytes;
    TORCH_CHECK(next <= size, "state dict file: malformed zip central directory");
    std::string name(reinterpret_cast<const char*>(data + name_at), name_bytes);
    // The zip64 extra field holds the 64-bit values of the sizes set to 0xFFFFFFFF, uncompressed first.
    for (uint64_t at = extra_at; at + 4 <= extra_at + extra_bytes;) {
      const uint64_t id = u16(at), bytes = u16(at + 2);
      TORCH_CHECK(at + 4 + bytes <= extra_at + extra_bytes, "state dict file: malformed zip extra field");
      if (id == 1) {
        uint64_t field = at + 4;
        for (uint64_t* value : {&entry.uncompressed, &entry.compressed}) {
          if (*value != 0xFFFFFFFFu) continue;
          TORCH_CHECK(field + 8 <= at + 4 + bytes, "state dict file: malformed zip64 extra field");
          *value = u64(field);
          field += 8;
        }
      }
      at += 4 + bytes;
    }
    // As PyTorchStreamReader: the first entry's folder is the archive's name, and records live under it.
    if (i == 0) prefix = name.substr(0, name.find('/') + 1);
    // miniz looks names up ignoring case: two names that differ only in case could make it read another record than
    // the one checked here.
    std::string folded = name;
    std::transform(folded.begin(), folded.end(), folded.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    TORCH_CHECK(seen.insert(folded).second, "state dict file: the zip holds two records named ", name);
    if (name.compare(0, prefix.size(), prefix) == 0) entries[name.substr(prefix.size())] = entry;
    offset = next;
  }
  return entries;
}

// A pickle of a state dict takes kilobytes per thousand tensors; anything near this limit is not a state dict.
constexpr uint64_t kMaxPickleBytes = uint64_t(64) << 20;

// Records besides data.pkl and the storages (version, byteorder, ...) hold a few bytes; PyTorchStreamReader reads some
// of them whole when it opens the zip, so they are bounded before it does.
constexpr uint64_t kMaxSmallRecordBytes = uint64_t(1) << 20;
// The most a deflated record may expand (uncompressed / compressed bytes), past its first MiB.
constexpr uint64_t kMaxDeflateRatio = 64;

NamedTensors ReadZip(const uint8_t* data, size_t size) {
  const std::map<std::string, ZipEntry> entries = ZipDirectory(data, size);
  for (const auto& entry : entries) {
    const bool storage = entry.first.compare(0, 5, "data/") == 0, pickle = entry.first == "data.pkl";
    TORCH_CHECK(storage || entry.second.uncompressed <= (pickle ? kMaxPickleBytes : kMaxSmallRecordBytes),
                "state dict file: record ", entry.first, " holds ", entry.second.uncompressed,
                " bytes, more than a state dict's ", pickle ? "pickle" : "small records", " ever need");
  }
  caffe2::serialize::PyTorchStreamReader reader(
      std::make_shared<caffe2::serialize::MemoryReadAdapter>(data, static_cast<off_t>(size)));
  // A record's bytes, decompressed only once its size is known to be `expected` (at most `expected` when exact is
  // false): memory is bounded by what the file declares, never by what a deflate stream expands to. A stored record
  // (torch.save writes only those) is copied straight from the file.
  auto read_record = [&](const std::string& name, uint64_t expected, bool exact, const std::function<void(const void*, size_t)>& use) {
    auto found = entries.find(name);
    TORCH_CHECK(found != entries.end() && reader.hasRecord(name), "state dict file: missing record ", name);
    const ZipEntry& entry = found->second;
    TORCH_CHECK(exact ? entry.uncompressed == expected : entry.uncompressed <= expected, "state dict file: record ", name,
                " holds ", entry.uncompressed, " bytes but ", exact ? "its tensors declare " : "the limit is ", expected);
    if (entry.method == 0) {
      TORCH_CHECK(entry.compressed == entry.uncompressed, "state dict file: malformed zip entry ", name);
      const size_t at = reader.getRecordOffset(name);
      TORCH_CHECK(at <= size && entry.uncompressed <= size - at, "state dict file: record ", name, " is truncated");
      use(data + at, size_t(entry.uncompressed));
      return;
    }
    TORCH_CHECK(entry.method == 8, "state dict file: record ", name, " uses zip compression method ", entry.method,
                " (only stored and deflated records are read)");
    // A deflated record may declare (and its tensors agree on) gigabytes that a few MB expand to. torch.save stores
    // records uncompressed; real tensor data deflates a few-fold at most, so more than kMaxDeflateRatio is refused
    // before anything is expanded: memory stays bounded by the file's real size.
    TORCH_CHECK(entry.uncompressed <= kMaxDeflateRatio * entry.compressed + kMaxSmallRecordBytes, "state dict file: record ", name,
                " would expand from ", entry.compressed, " to ", entry.uncompressed, " bytes, more than ", kMaxDeflateRatio,
                "x: refused (torch.save stores records uncompressed)");
    auto record = reader.getRecord(name);
    TORCH_CHECK(std::get<1>(record) == entry.uncompressed, "state dict file: record ", name, " is truncated");
    use(std::get<0>(record).get(), std::get<1>(record));
  };
  if (entries.count("byteorder")) {
    read_record("byteorder", 16, false, [](const void* bytes, size_t n) {
      TORCH_CHECK(std::string(static_cast<const char*>(bytes), n) == "little", "state dict file: big-endian files are not supported");
    });
  }
  TORCH_CHECK(entries.count("data.pkl"), "state dict file: the zip has no data.pkl (not a torch.save file)");
  std::vector<uint8_t> pickle;
  read_record("data.pkl", kMaxPickleBytes, false, [&](const void* bytes, size_t n) {
    pickle.assign(static_cast<const uint8_t*>(bytes), static_cast<const uint8_t*>(bytes) + n);
  });
  std::map<std::string, at::Tensor> storages;
  RestrictedUnpickler unpickler(pickle.data(), pickle.size(), [&](at::ScalarType dtype, const std::string& key, int64_t numel) {
    auto cached = storages.find(key);
    if (cached != storages.end()) {
      TORCH_CHECK(cached->second.scalar_type() == dtype && cached->second.numel() == numel,
                  "state dict file: storage ", key, " is declared twice with different types or sizes");
      return cached->second;
    }
    at::Tensor storage;
    read_record("data/" + key, uint64_t(numel) * c10::elementSize(dtype), true, [&](const void* bytes, size_t n) {
      storage = StorageFromBytes(dtype, bytes, n);
    });
    storages[key] = storage;
    return storage;
  });
  NamedTensors out;
  Flatten(unpickler.Run(), "", &out);
  return out;
}

// The legacy (pre-1.6) format: pickles of magic number, protocol, system info, the object (storages as persistent
// ids) and the list of storage keys, then each storage as an int64 element count and its raw bytes.
NamedTensors ReadLegacy(const uint8_t* data, size_t size) {
  size_t pos = 0;
  auto skip_pickle = [&]() {
    RestrictedUnpickler header(data + pos, size - pos, [](at::ScalarType, const std::string&, int64_t) -> at::Tensor {
      TORCH_CHECK(false, "state dict file: storage in a header");
    });
    ValuePtr value = header.Run();
    pos += header.position();
    return value;
  };
  ValuePtr magic = skip_pickle();
  // torch.serialization's MAGIC_NUMBER 0x1950a86a20f9469cfc6c, little-endian.
  static const std::string kMagic("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10);
  TORCH_CHECK(magic->kind == Value::kBigInt && magic->text == kMagic, "state dict file: not a torch.save file");
  skip_pickle();  // protocol version
  skip_pickle();  // sys_info
  std::map<std::string, at::Tensor> storages;
  RestrictedUnpickler body(data + pos, size - pos, [&](at::ScalarType dtype, const std::string& key, int64_t numel) {
    auto cached = storages.find(key);
    if (cached != storages.end()) {
      TORCH_CHECK(cached->second.scalar_type() == dtype && cached->second.numel() == numel,
                  "state dict file: storage ", key, " is declared twice with different types or sizes");
      return cached->second;
    }
    // The bytes come after this pickle; allocate now, fill below (the tensors are views of it). They must fit in the
    // file, so a declared size cannot allocate more than the file holds.
    TORCH_CHECK(uint64_t(numel) * c10::elementSize(dtype) <= size, "state dict file: storage ", key, " declares ", numel,
                " elements, more than the file holds");
    at::Tensor storage = at::empty({numel}, at::TensorOptions().dtype(dtype));
    storages[key] = storage;
    return storage;
  });
  ValuePtr root = body.Run();
  pos += body.position();
  ValuePtr keys = skip_pickle();
  TORCH_CHECK(keys->kind == Value::kList, "state dict file: malformed legacy storage list");
  for (const auto& key : keys->items) {
    TORCH_CHECK(key->kind == Value::kString && storages.count(key->text), "state dict file: unknown storage key");
    at::Tensor storage = storages[key->text];
    TORCH_CHECK(size - pos >= 8, "state dict file: truncated");
    int64_t numel = 0;
    std::memcpy(&numel, data + pos, 8);
    pos += 8;
    const size_t nbytes = size_t(storage.numel()) * storage.element_size();
    TORCH_CHECK(numel == storage.numel() && nbytes <= size - pos, "state dict file: storage ", key->text, " is truncated");
    if (nbytes > 0) std::memcpy(storage.data_ptr(), data + pos, nbytes);
    pos += nbytes;
  }
  NamedTensors out;
  Flatten(root, "", &out);
  return out;
}

}  // namespace

NamedTensors ReadStateDict(const uint8_t* data, size_t size) {
  TORCH_CHECK(size >= 4, "state dict file: too short to be a torch.save file");
  if (data[0] == 'P' && data[1] == 'K') return ReadZip(data, size);
  TORCH_CHECK(data[0] == 0x80, "state dict file: neither a zip nor a pickle (not a torch.save file)");
  return ReadLegacy(data, size);
}

std::vector<char> WriteStateDict(const NamedTensors& state) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& entry : state) {
    TORCH_CHECK(entry.second.defined(), "The tensor for ", entry.first, " is undefined");
    dict.insert(entry.first, entry.second.detach().to(at::kCPU).contiguous());
  }
  // What torch::jit::pickle_save does, minus the type tags (tag_aggregates = false): pickle_save wraps the dict in
  // torch.jit._pickle.restore_type_tag, a global that torch.load(weights_only=True), the default since PyTorch 2.6,
  // refuses. Tensors are written as torch.save does: persistent ids in data.pkl, bytes in data/<index>.
  std::vector<char> pickle;
  torch::jit::Pickler pickler([&](const char* bytes, size_t n) { pickle.insert(pickle.end(), bytes, bytes + n); },
                              /*tensor_table=*/nullptr, /*type_renamer=*/nullptr, /*memoized_class_types=*/nullptr,
                              /*get_tensor_id=*/nullptr, /*tag_aggregates=*/false);
  pickler.protocol();
  pickler.pushIValue(dict);
  pickler.stop();
  std::vector<char> zip;
  caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t n) {
    const char* bytes = static_cast<const char*>(data);
    zip.insert(zip.end(), bytes, bytes + n);
    return n;
  });
  writer.writeRecord("data.pkl", pickle.data(), pickle.size());
  const std::vector<at::Tensor>& tensors = pickler.tensorData();
  for (size_t i = 0; i < tensors.size(); ++i) {
    torch::jit::WriteableTensorData data = torch::jit::getWriteableTensorData(tensors[i]);
    writer.writeRecord("data/" + std::to_string(i), data.data(), data.sizeInBytes());
  }
  writer.writeEndOfFile();
  return zip;
}

}  // namespace simclr
