// Several Kafka v2 record batches of one partition, as adgate's decode workers write them
// (kafka/protocol/record-batch.ts: LZ4 frames of independent 64 KiB blocks), merged into one batch
// on the libuv threadpool, so the decompression, delta rewriting and recompression stay off the
// event loop. kafka/protocol/batch-merge.ts is the reference (and does the same in JS when this
// addon is not built): it says why a merge rewrites each record's offset and timestamp deltas.
// The LZ4 is the `lz4` package's own sources, so a batch compresses to the same bytes either way.

#include <napi.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "lz4.h"
#if defined(__SSE4_2__)
#include <nmmintrin.h>
#endif

Napi::Value MergeRecordBatches(const Napi::CallbackInfo& info);

namespace {

constexpr size_t kHeaderBytes = 61;
constexpr size_t kBlockBytes = 64 * 1024;
constexpr uint32_t kStored = 0x80000000u;
// Magic, FLG 0x60 (version 1, independent blocks, no checksums), BD 0x40 (64 KiB blocks), HC.
constexpr uint8_t kFrameHeader[7] = {0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82};
// Timestamp deltas are written as 32-bit varints: batches further apart are not merged.
constexpr int64_t kMaxSpread = 0x3fffffff;

uint32_t Be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
int64_t Be64(const uint8_t* p) { return static_cast<int64_t>((uint64_t{Be32(p)} << 32) | Be32(p + 4)); }
void PutBe16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void PutBe32(uint8_t* p, uint32_t v) {
  PutBe16(p, static_cast<uint16_t>(v >> 16));
  PutBe16(p + 2, static_cast<uint16_t>(v));
}
void PutBe64(uint8_t* p, uint64_t v) {
  PutBe32(p, static_cast<uint32_t>(v >> 32));
  PutBe32(p + 4, static_cast<uint32_t>(v));
}
void PutLe32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t Le32(const uint8_t* p) {
  return p[0] | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}

// Growable bytes, written before they are read: not zero-filled as std::vector's resize would
// (that was ~200 KB of memset per merge: 64 KiB per decoded block, the compress bound, the scratch).
struct Bytes {
  uint8_t* data = nullptr;
  size_t size = 0;
  size_t capacity = 0;

  Bytes() = default;
  Bytes(const Bytes&) = delete;
  Bytes& operator=(const Bytes&) = delete;
  ~Bytes() { std::free(data); }

  // Room for `n` more bytes; where they go.
  uint8_t* Room(size_t n) {
    if (size + n > capacity) {
      capacity = std::max(size + n, capacity * 2);
      data = static_cast<uint8_t*>(std::realloc(data, capacity));
      if (data == nullptr) std::abort();
    }
    return data + size;
  }
  void Append(const uint8_t* from, size_t n) {
    std::memcpy(Room(n), from, n);
    size += n;
  }
  // The bytes, trimmed to their size, now the caller's (std::free).
  uint8_t* Release() {
    uint8_t* out = static_cast<uint8_t*>(std::realloc(data, std::max<size_t>(size, 1)));
    data = nullptr;
    size = capacity = 0;
    return out;
  }
};

// A zig-zag varint of at most 32 bits (record-batch.ts readVarint); false when truncated.
bool ReadVarint(const uint8_t*& p, const uint8_t* end, int32_t& out) {
  uint32_t z = 0;
  for (int shift = 0; shift < 35; shift += 7) {
    if (p >= end) return false;
    const uint8_t b = *p++;
    z |= uint32_t{b & 0x7fu} << shift;
    if ((b & 0x80) == 0) {
      out = static_cast<int32_t>((z >> 1) ^ (0u - (z & 1)));
      return true;
    }
  }
  return false;
}

// Writes at `p` (room for 5 bytes); returns the end.
uint8_t* WriteVarint(uint8_t* p, int32_t v) {
  uint32_t z = (static_cast<uint32_t>(v) << 1) ^ static_cast<uint32_t>(v >> 31);
  while (z >= 0x80) {
    *p++ = static_cast<uint8_t>(z | 0x80);
    z >>= 7;
  }
  *p++ = static_cast<uint8_t>(z);
  return p;
}

size_t VarintSize(int32_t v) {
  uint32_t z = (static_cast<uint32_t>(v) << 1) ^ static_cast<uint32_t>(v >> 31);
  size_t n = 1;
  while (z >= 0x80) {
    z >>= 7;
    n++;
  }
  return n;
}

uint32_t Crc32c(const uint8_t* p, size_t n) {
  uint32_t crc = 0xffffffffu;
#if defined(__SSE4_2__)
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    crc = static_cast<uint32_t>(_mm_crc32_u64(crc, word));
  }
  for (; n > 0; p++, n--) crc = _mm_crc32_u8(crc, *p);
#else
  static const auto table = [] {
    std::vector<uint32_t> t(256);
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  for (; n > 0; p++, n--) crc = table[(crc ^ *p) & 0xff] ^ (crc >> 8);
#endif
  return ~crc;
}

// Appends the records of one frame as encodeLz4Frame writes them; false for any other frame.
bool DecodeOwnFrame(const uint8_t* src, size_t length, Bytes& out) {
  if (length < sizeof kFrameHeader || std::memcmp(src, kFrameHeader, 6) != 0) return false;
  size_t ip = sizeof kFrameHeader;
  for (;;) {
    if (ip + 4 > length) return false;
    const uint32_t word = Le32(src + ip);
    ip += 4;
    if (word == 0) return ip == length;
    const size_t size = word & ~kStored;
    if (ip + size > length || size > kBlockBytes) return false;
    if (word & kStored) {
      out.Append(src + ip, size);
    } else {
      const int n = LZ4_decompress_safe(reinterpret_cast<const char*>(src + ip), reinterpret_cast<char*>(out.Room(kBlockBytes)),
                                        static_cast<int>(size), static_cast<int>(kBlockBytes));
      if (n < 0) return false;
      out.size += static_cast<size_t>(n);
    }
    ip += size;
  }
}

// Appends one LZ4 frame of `records` to `out` (encodeLz4Frame's layout, block by block).
void EncodeFrame(const Bytes& records, Bytes& out) {
  out.Append(kFrameHeader, sizeof kFrameHeader);
  for (size_t at = 0; at < records.size; at += kBlockBytes) {
    const size_t block = std::min(kBlockBytes, records.size - at);
    const int bound = LZ4_compressBound(static_cast<int>(block));
    uint8_t* to = out.Room(4 + static_cast<size_t>(bound));
    const int n = LZ4_compress_default(reinterpret_cast<const char*>(records.data + at), reinterpret_cast<char*>(to + 4),
                                       static_cast<int>(block), bound);
    if (n > 0 && static_cast<size_t>(n) < block) {
      PutLe32(to, static_cast<uint32_t>(n));
      out.size += 4 + static_cast<size_t>(n);
    } else {
      // Incompressible: stored (the high bit of the size says so).
      PutLe32(to, static_cast<uint32_t>(block) | kStored);
      std::memcpy(to + 4, records.data + at, block);
      out.size += 4 + block;
    }
  }
  PutLe32(out.Room(4), 0);  // end mark
  out.size += 4;
}

struct Part {
  const uint8_t* data;
  size_t length;
};

// One merged batch of `parts` into `out`; false when a part is not one of ours (JS: null).
bool Merge(const std::vector<Part>& parts, Bytes& raw, Bytes& records, Bytes& out) {
  const int64_t base = Be64(parts[0].data + 27);
  int64_t maxTimestamp = base;
  int32_t count = 0;
  records.size = 0;
  for (const Part& part : parts) {
    const uint8_t* b = part.data;
    if (part.length < kHeaderBytes || b[16] != 2 || (((b[21] << 8) | b[22]) & 7) != 3) return false;
    const int64_t spread = Be64(b + 27) - base;
    if (spread > kMaxSpread || spread < -kMaxSpread) return false;
    maxTimestamp = std::max(maxTimestamp, Be64(b + 35));
    const int32_t n = static_cast<int32_t>(Be32(b + 57));
    raw.size = 0;
    if (!DecodeOwnFrame(b + kHeaderBytes, part.length - kHeaderBytes, raw)) return false;
    const uint8_t* r = raw.data;
    const uint8_t* end = r + raw.size;
    for (int32_t i = 0; i < n; i++) {
      // length varint | attributes int8 | timestampDelta varlong | offsetDelta varint | key, value, headers
      int32_t length;
      int32_t tsDelta;
      int32_t offsetDelta;
      if (!ReadVarint(r, end, length) || length < 1 || length > end - r) return false;
      const uint8_t* recordEnd = r + length;
      const uint8_t attributes = *r++;
      if (!ReadVarint(r, recordEnd, tsDelta) || !ReadVarint(r, recordEnd, offsetDelta)) return false;
      const int64_t newTs = int64_t{tsDelta} + spread;
      if (newTs > INT32_MAX || newTs < INT32_MIN) return false;
      const int32_t ts = static_cast<int32_t>(newTs);
      const size_t rest = static_cast<size_t>(recordEnd - r);
      uint8_t* w = records.Room(16 + rest);
      w = WriteVarint(w, static_cast<int32_t>(1 + VarintSize(ts) + VarintSize(count) + rest));
      *w++ = attributes;
      w = WriteVarint(w, ts);
      w = WriteVarint(w, count);
      std::memcpy(w, r, rest);
      records.size = static_cast<size_t>(w + rest - records.data);
      r = recordEnd;
      count++;
    }
  }
  out.size = 0;
  out.Room(kHeaderBytes + 64 + records.size / 2);  // typically enough for the compressed records
  out.size = kHeaderBytes;
  EncodeFrame(records, out);
  uint8_t* h = out.data;
  PutBe64(h, 0);                                            // baseOffset
  PutBe32(h + 8, static_cast<uint32_t>(out.size - 12));   // batchLength
  PutBe32(h + 12, 0xffffffffu);                             // partitionLeaderEpoch: set by the broker
  h[16] = 2;                                                // magic
  PutBe16(h + 21, 3);                                       // attributes: LZ4
  PutBe32(h + 23, static_cast<uint32_t>(count - 1));        // lastOffsetDelta
  PutBe64(h + 27, static_cast<uint64_t>(base));             // firstTimestamp
  PutBe64(h + 35, static_cast<uint64_t>(maxTimestamp));     // maxTimestamp
  PutBe64(h + 43, ~uint64_t{0});                            // producerId: stamped when sent
  PutBe16(h + 51, 0xffff);                                  // producerEpoch
  PutBe32(h + 53, 0xffffffffu);                             // baseSequence
  PutBe32(h + 57, static_cast<uint32_t>(count));            // recordCount
  PutBe32(h + 17, Crc32c(h + 21, out.size - 21));
  return true;
}

// mergeRecordBatches(groups: Buffer[][], done: (merged: (Buffer | null)[]) => void): each group
// merged on the threadpool; `done` gets them in order (null: not ours, sent as they are). The
// groups array is held until then, so the batches' memory stays alive while the threads read it.
class MergeWorker : public Napi::AsyncWorker {
 public:
  ~MergeWorker() override {
    for (Output& out : outputs_) std::free(out.data);  // results never handed over (the env went away)
  }

  MergeWorker(const Napi::Array& groups, const Napi::Function& done)
      : Napi::AsyncWorker(done, "adgate:mergeRecordBatches"), groups_(Napi::Persistent(groups)) {
    for (uint32_t g = 0; g < groups.Length(); g++) {
      const Napi::Array group = groups.Get(g).As<Napi::Array>();
      std::vector<Part> parts;
      for (uint32_t i = 0; i < group.Length(); i++) {
        const auto buffer = group.Get(i).As<Napi::Buffer<uint8_t>>();
        parts.push_back({buffer.Data(), buffer.Length()});
      }
      inputs_.push_back(std::move(parts));
    }
  }

 protected:
  void Execute() override {
    // Kept by each threadpool thread, so a merge allocates only its output.
    thread_local Bytes raw;
    thread_local Bytes records;
    for (const auto& parts : inputs_) {
      Bytes out;
      const bool merged = !parts.empty() && Merge(parts, raw, records, out);
      const size_t size = out.size;
      outputs_.push_back({merged ? out.Release() : nullptr, size});
    }
  }

  void OnOK() override {
    const Napi::Env env = Env();
    Napi::Array result = Napi::Array::New(env, outputs_.size());
    for (uint32_t g = 0; g < outputs_.size(); g++) {
      Output& out = outputs_[g];
      if (out.data == nullptr) {
        result.Set(g, env.Null());
        continue;
      }
      // Handed to V8 without a copy (up to a MiB); freed with the Buffer.
      result.Set(g, Napi::Buffer<uint8_t>::New(env, out.data, out.size, [](Napi::Env, uint8_t* data) { std::free(data); }));
      out.data = nullptr;
    }
    Callback().Call({result});
  }

 private:
  Napi::Reference<Napi::Array> groups_;
  struct Output {
    uint8_t* data;
    size_t size;
  };
  std::vector<std::vector<Part>> inputs_;
  std::vector<Output> outputs_;
};

}  // namespace

Napi::Value MergeRecordBatches(const Napi::CallbackInfo& info) {
  (new MergeWorker(info[0].As<Napi::Array>(), info[1].As<Napi::Function>()))->Queue();
  return info.Env().Undefined();
}
