// adgate's native JSON → Avro transcoder.
//
// One Transcoder per (schema, projection), built from a compact schema description compiled on
// the JS side (decoders/native-schema.ts): this file knows no event schema. transcode() reads a
// JSON document (one object or an array of objects) or NDJSON from a Buffer with simdjson's
// On-Demand API and writes each event it can prove valid straight as Avro binary in the
// Confluent wire format (magic 0, big-endian schema id, then the record) into one output buffer.
//
// The JS decoder (decoders/json.ts + normalize.ts) is the reference. This side never words a
// rejection: an event it cannot prove valid exactly as the JS normalizer would accept it
// (invalid, a duplicate key, a number written as 1.0 or 1e3, an ISO time, a JSON-text field, …)
// is handed back as "deferred" with its byte range, and the JS side decides it and words the
// reason, so messages are the JS decoder's by construction (those from V8's JSON.parse included).
// A body the parser cannot read as a whole (malformed, not an object/array, empty, over the event
// limit) returns undefined: the JS decoder then handles the whole body and produces the error.
//
// Thread safety: everything mutable lives in the Transcoder instance (parser, buffers); the
// module keeps its constructor per environment (Napi::Addon instance data), so every piscina
// worker thread loads it independently.
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "simdjson.h"

// native/src/batch-merge.cc
Napi::Value MergeRecordBatches(const Napi::CallbackInfo& info);

namespace {

using simdjson::ondemand::json_type;

enum Kind : int32_t {
  K_NULL = 0,
  K_BOOLEAN = 1,
  K_INT = 2,
  K_LONG = 3,
  K_FLOAT = 4,
  K_DOUBLE = 5,
  K_STRING = 6,
  K_ENUM = 7,
  K_ARRAY = 8,
  K_RECORD = 9,
  K_OPTIONAL = 10,  // ["null", T]
  K_DEFER = 11,     // anything the JS side must decide (maps, bytes)
  K_JSON_TEXT = 12,  // adgate.json (OpenRTB ext): an object or array kept as JSON text
};

enum Stamp : int32_t { STAMP_NONE = 0, STAMP_INGEST_TIME = 1, STAMP_SOURCE = 2 };

constexpr size_t MAX_RECORD_FIELDS = 64;
constexpr size_t MAX_DEPTH = 64;

struct Field {
  std::string name;
  int32_t node = 0;
  bool hasDefault = false;
  std::string defaultBytes;  // Avro encoding of the default, computed by avsc on the JS side
  int32_t stamp = STAMP_NONE;
  bool rest = false;  // adgate.rest: filled from the keys no field models; never read from input
  int32_t microsOf = -1;  // adgate.micros: computed from this earlier (decimal) field; never read from input
};

struct Node {
  int32_t kind = K_DEFER;
  bool hasMin = false, hasMax = false;
  double min = 0, max = 0;
  double minLength = 0, maxLength = 1e300;  // strings, in UTF-16 code units as JS counts them
  double minItems = 0, maxItems = 1e300;
  double maxDepth = 0;  // K_JSON_TEXT: deepest nesting kept (the top value is at depth 0)
  int32_t inner = -1;  // array items, optional branch
  std::vector<std::string> symbols;
  std::vector<Field> fields;
  // A record with a rest field keeps unknown keys and explicit nulls (as JSON text): the JS
  // normalizer builds that text, so such events are deferred to it.
  bool closed = false;
  bool hasMicros = false;
  bool deferNull = false;  // an optional field of such a record: a null is the JS side's to keep
};

enum Status { OK = 0, DEFER = 1 };

struct Slot {
  size_t start = 0, len = 0;
  bool set = false;
};

inline void putVarint(std::vector<uint8_t>& out, uint64_t z) {
  while (z >= 0x80) {
    out.push_back(static_cast<uint8_t>(z | 0x80));
    z >>= 7;
  }
  out.push_back(static_cast<uint8_t>(z));
}

inline void putLong(std::vector<uint8_t>& out, int64_t n) {
  putVarint(out, (static_cast<uint64_t>(n) << 1) ^ static_cast<uint64_t>(n >> 63));
}

inline void putString(std::vector<uint8_t>& out, std::string_view s) {
  putLong(out, static_cast<int64_t>(s.size()));
  out.insert(out.end(), s.begin(), s.end());
}

// Length as JS sees it (UTF-16 code units) of valid UTF-8: one per sequence, two for 4-byte ones.
inline double utf16Length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += ((c & 0xC0) != 0x80) + (c >= 0xF0);
  return static_cast<double>(n);
}

// As decoders/normalize.ts MAX_LONG: avsc encodes longs exactly only within ±(2^53 − 2).
// simdjson unescapes a lone \\ud800–\\udfff into its 3-byte form (ED A0–BF xx), which is not UTF-8:
// such strings go to the JS side, whose normalizer refuses them (decoders/normalize.ts).
inline bool hasSurrogate(std::string_view s) {
  const char* p = s.data();
  const char* end = p + s.size();
  while ((p = static_cast<const char*>(std::memchr(p, 0xED, end - p))) != nullptr) {
    if (p + 1 < end && static_cast<unsigned char>(p[1]) >= 0xA0) return true;
    p++;
  }
  return false;
}

constexpr int64_t MAX_LONG = 9007199254740990LL;

// Reads a schema description (decoders/native-schema.ts) with the C API, checking every call: once
// its thread is being terminated, a call that may run JavaScript (a property read) fails, and the
// C++ wrappers would make that a fatal error of the process. A failed call makes ok() false and
// every later read answer empty; absent properties and values of another type are not failures.
class Description {
 public:
  explicit Description(napi_env env) : env_(env) {}

  bool ok() const { return ok_; }

  napi_value Get(napi_value obj, const char* key) {
    napi_value v = nullptr;
    if (ok_ && napi_get_named_property(env_, obj, key, &v) != napi_ok) Fail();
    return ok_ ? v : nullptr;
  }

  napi_value At(napi_value array, uint32_t i) {
    napi_value v = nullptr;
    if (ok_ && napi_get_element(env_, array, i, &v) != napi_ok) Fail();
    return ok_ ? v : nullptr;
  }

  // An array's length; 0 for anything else.
  uint32_t Length(napi_value v) {
    bool array = false;
    uint32_t n = 0;
    if (!ok_ || v == nullptr || napi_is_array(env_, v, &array) != napi_ok || !array) return 0;
    if (napi_get_array_length(env_, v, &n) != napi_ok) Fail();
    return ok_ ? n : 0;
  }

  // Whether v is a number, then its value in target.
  bool Number(napi_value v, double& target) {
    if (!Is(v, napi_number)) return false;
    double d = 0;
    if (napi_get_value_double(env_, v, &d) != napi_ok) return Fail();
    target = d;
    return true;
  }

  int32_t Int(napi_value v) {
    double d = 0;
    return Number(v, d) ? static_cast<int32_t>(d) : 0;
  }

  bool True(napi_value v) {
    bool b = false;
    return Is(v, napi_boolean) && napi_get_value_bool(env_, v, &b) == napi_ok && b;
  }

  std::string Utf8(napi_value v) {
    size_t n = 0;
    if (!Is(v, napi_string) || napi_get_value_string_utf8(env_, v, nullptr, 0, &n) != napi_ok) return std::string();
    std::string out(n, '\0');
    if (napi_get_value_string_utf8(env_, v, out.data(), n + 1, &n) != napi_ok) Fail();
    return out;
  }

  // Whether v is a Buffer, then its bytes in target.
  bool Bytes(napi_value v, std::string& target) {
    bool buffer = false;
    void* data = nullptr;
    size_t n = 0;
    if (!ok_ || v == nullptr || napi_is_buffer(env_, v, &buffer) != napi_ok || !buffer) return false;
    if (napi_get_buffer_info(env_, v, &data, &n) != napi_ok) return Fail();
    target.assign(static_cast<const char*>(data), n);
    return true;
  }

 private:
  bool Is(napi_value v, napi_valuetype type) {
    napi_valuetype t;
    return ok_ && v != nullptr && napi_typeof(env_, v, &t) == napi_ok && t == type;
  }

  bool Fail() {
    ok_ = false;
    return false;
  }

  napi_env env_;
  bool ok_ = true;
};

// Every entry point (construction, transcode()) is written against the C API, checking each call:
// the pool terminates a worker thread whose task is over its deadline, and from then on every
// N-API call that may run JavaScript fails (reading a property, wrapping or unwrapping this object,
// allocating the result); node-addon-api's wrappers turn such a failure into a fatal error of the
// whole process (Error::New), a gateway killed by one slow body. Here a failed call answers
// undefined or builds nothing: the thread is going away and nobody reads the answer.
// A JSON-text field (adgate.json) keeps JSON.stringify of the value JSON.parse gives. Text already
// in that form is its own stringification, so its bytes are written as they are: no blanks; in
// strings no escapes but the ones JSON.stringify writes itself (\" \\ \b \f \n \r \t; a \u goes
// to the JS side); numbers as JS prints them (at most 15 significant digits, so the decimal is the
// shortest that reads back, no exponent, no trailing fraction zero, no -0, not below 1e-6); in
// objects no repeated key (JSON.parse keeps the last, in the first one's place) and no key of
// digits only (V8 puts integer keys first); nested at most maxDepth. Anything else: the JS side.
class CanonicalJson {
 public:
  bool Check(std::string_view text, size_t maxDepth) {
    p_ = text.data();
    end_ = p_ + text.size();
    maxDepth_ = maxDepth;
    keys_.clear();
    return Value(0) && p_ == end_;
  }

 private:
  static constexpr size_t MAX_KEYS = 64;  // per object: repeated keys are found by comparing each pair
  const char* p_ = nullptr;
  const char* end_ = nullptr;
  size_t maxDepth_ = 0;
  std::vector<std::string_view> keys_;  // keys of the objects being read, innermost last

  bool Value(size_t depth) {
    if (depth > maxDepth_ || p_ == end_) return false;
    switch (*p_) {
      case '{':
        return Object(depth);
      case '[':
        return Array(depth);
      case '"': {
        std::string_view s;
        return String(s);
      }
      case 't':
        return Literal("true");
      case 'f':
        return Literal("false");
      case 'n':
        return Literal("null");
      default:
        return Number();
    }
  }

  bool Object(size_t depth) {
    p_++;
    if (p_ < end_ && *p_ == '}') {
      p_++;
      return true;
    }
    const size_t base = keys_.size();
    for (;;) {
      std::string_view key;
      if (p_ == end_ || *p_ != '"' || !String(key) || DigitsOnly(key)) return false;
      if (keys_.size() - base >= MAX_KEYS) return false;
      for (size_t i = base; i < keys_.size(); i++)
        if (keys_[i] == key) return false;
      keys_.push_back(key);
      if (p_ == end_ || *p_ != ':') return false;
      p_++;
      if (!Value(depth + 1) || p_ == end_) return false;
      if (*p_ == '}') {
        p_++;
        keys_.resize(base);
        return true;
      }
      if (*p_++ != ',') return false;
    }
  }

  bool Array(size_t depth) {
    p_++;
    if (p_ < end_ && *p_ == ']') {
      p_++;
      return true;
    }
    for (;;) {
      if (!Value(depth + 1) || p_ == end_) return false;
      if (*p_ == ']') {
        p_++;
        return true;
      }
      if (*p_++ != ',') return false;
    }
  }

  // The text between the quotes, as it is (escapes not undone: equal texts are equal strings).
  bool String(std::string_view& out) {
    const char* start = ++p_;
    while (p_ < end_) {
      const unsigned char c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        out = std::string_view(start, p_ - start);
        p_++;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        if (++p_ == end_) return false;
        switch (*p_) {
          case '"':
          case '\\':
          case 'b':
          case 'f':
          case 'n':
          case 'r':
          case 't':
            break;
          default:
            return false;
        }
      }
      p_++;
    }
    return false;
  }

  static bool DigitsOnly(std::string_view key) {
    if (key.empty()) return false;
    for (char c : key)
      if (c < '0' || c > '9') return false;
    return true;
  }

  bool Literal(std::string_view word) {
    if (static_cast<size_t>(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word) return false;
    p_ += word.size();
    return true;
  }

  static bool IsDigit(char c) { return c >= '0' && c <= '9'; }

  bool Number() {
    const bool negative = *p_ == '-';
    if (negative) p_++;
    if (p_ == end_) return false;
    size_t significant = 0;
    const bool zero = *p_ == '0';
    if (zero) {
      p_++;
    } else if (*p_ >= '1' && *p_ <= '9') {
      while (p_ < end_ && IsDigit(*p_)) p_++, significant++;
    } else {
      return false;
    }
    if (p_ < end_ && *p_ == '.') {
      const char* fraction = ++p_;
      while (p_ < end_ && IsDigit(*p_)) p_++;
      if (p_ == fraction || p_[-1] == '0') return false;
      const char* first = fraction;
      if (zero) {
        while (*first == '0') first++;
        if (first - fraction > 5) return false;  // below 1e-6: JS prints an exponent
      }
      significant += static_cast<size_t>(p_ - first);
    } else if (zero && negative) {
      return false;  // -0 prints as 0
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) return false;
    return significant <= 15;
  }
};

class Transcoder {
 public:
  static napi_value Define(napi_env env) {
    napi_property_descriptor transcode = {"transcode", nullptr, TranscodeCallback, nullptr,
                                          nullptr,     nullptr, napi_default,      nullptr};
    napi_value ctor = nullptr;
    napi_define_class(env, "Transcoder", NAPI_AUTO_LENGTH, New, nullptr, 1, &transcode, &ctor);
    return ctor;
  }

 private:
  // new Transcoder(description): built on a thread's first body of a type, and again after the
  // data-quality rules changed their projection.
  static napi_value New(napi_env env, napi_callback_info info) {
    size_t argc = 1;
    napi_value arg = nullptr;
    napi_value self = nullptr;
    napi_valuetype type = napi_undefined;
    if (napi_get_cb_info(env, info, &argc, &arg, &self, nullptr) != napi_ok) return nullptr;
    if (argc < 1 || napi_typeof(env, arg, &type) != napi_ok || type != napi_object) {
      napi_throw_type_error(env, nullptr, "Transcoder(description)");
      return nullptr;
    }
    auto* t = new Transcoder(env, arg);
    if (!t->ready_ || napi_wrap(env, self, t, Finalize, nullptr, nullptr) != napi_ok) {
      delete t;
      return nullptr;
    }
    return self;
  }

  static void Finalize(napi_env, void* data, void*) { delete static_cast<Transcoder*>(data); }

  static napi_value TranscodeCallback(napi_env env, napi_callback_info info) {
    size_t argc = 6;
    napi_value argv[6] = {};
    napi_value self = nullptr;
    void* t = nullptr;
    if (napi_get_cb_info(env, info, &argc, argv, &self, nullptr) != napi_ok || napi_unwrap(env, self, &t) != napi_ok)
      return nullptr;
    return static_cast<Transcoder*>(t)->Transcode(env, argc, argv);
  }

  // Reads the description (decoders/native-schema.ts); ready_ is set only when it was read whole
  // and is consistent (an inconsistent one throws).
  Transcoder(napi_env env, napi_value d) {
    Description in(env);
    schemaId_ = in.Int(in.Get(d, "schemaId"));
    root_ = in.Int(in.Get(d, "root"));
    keyField_ = in.Int(in.Get(d, "keyField"));
    napi_value keyPath = in.Get(d, "keyPath");
    for (uint32_t i = 0, n = in.Length(keyPath); i < n; i++) keyPath_.push_back(in.Int(in.At(keyPath, i)));
    if (keyPath_.empty()) keyPath_.push_back(keyField_);
    napi_value nodes = in.Get(d, "nodes");
    for (uint32_t i = 0, count = in.Length(nodes); i < count && in.ok(); i++) {
      napi_value n = in.At(nodes, i);
      Node node;
      node.kind = in.Int(in.Get(n, "kind"));
      node.hasMin = in.Number(in.Get(n, "min"), node.min);
      node.hasMax = in.Number(in.Get(n, "max"), node.max);
      in.Number(in.Get(n, "minLength"), node.minLength);
      in.Number(in.Get(n, "maxLength"), node.maxLength);
      in.Number(in.Get(n, "minItems"), node.minItems);
      in.Number(in.Get(n, "maxItems"), node.maxItems);
      in.Number(in.Get(n, "maxDepth"), node.maxDepth);
      double inner = -1;
      if (in.Number(in.Get(n, "inner"), inner)) node.inner = static_cast<int32_t>(inner);
      node.deferNull = in.True(in.Get(n, "deferNull"));
      napi_value symbols = in.Get(n, "symbols");
      for (uint32_t j = 0, ns = in.Length(symbols); j < ns; j++) node.symbols.push_back(in.Utf8(in.At(symbols, j)));
      napi_value fields = in.Get(n, "fields");
      const uint32_t nf = in.Length(fields);
      if (nf > MAX_RECORD_FIELDS) node.kind = K_DEFER;
      for (uint32_t j = 0; j < nf && in.ok(); j++) {
        napi_value f = in.At(fields, j);
        Field field;
        field.name = in.Utf8(in.Get(f, "name"));
        field.node = in.Int(in.Get(f, "node"));
        field.hasDefault = in.Bytes(in.Get(f, "default"), field.defaultBytes);
        double stamp = STAMP_NONE;
        if (in.Number(in.Get(f, "stamp"), stamp)) field.stamp = static_cast<int32_t>(stamp);
        field.rest = in.True(in.Get(f, "rest"));
        double micros = -1;
        if (in.Number(in.Get(f, "microsOf"), micros)) {
          field.microsOf = static_cast<int32_t>(micros);
          node.hasMicros = true;
        }
        if (field.rest) node.closed = true;
        node.fields.push_back(std::move(field));
      }
      nodes_.push_back(std::move(node));
    }
    napi_value proj = in.Get(d, "projection");
    for (uint32_t i = 0, n = in.Length(proj); i < n; i++) projection_.push_back(in.Int(in.At(proj, i)));
    if (!in.ok()) return;  // N-API failed: the thread is being terminated; ready_ stays false
    // Check the description once, so transcode() can index without bounds checks.
    bool okDesc = root_ >= 0 && static_cast<size_t>(root_) < nodes_.size() && nodes_[root_].kind == K_RECORD;
    for (const Node& n : nodes_) {
      if ((n.kind == K_ARRAY || n.kind == K_OPTIONAL) && (n.inner < 0 || static_cast<size_t>(n.inner) >= nodes_.size()))
        okDesc = false;
      for (const Field& f : n.fields)
        if (f.node < 0 || static_cast<size_t>(f.node) >= nodes_.size()) okDesc = false;
    }
    if (okDesc) {
      const Node& r = nodes_[root_];
      // The key path runs through required records to a required string.
      int32_t at = root_;
      for (int32_t k : keyPath_) {
        const Node& rec = nodes_[at];
        if (rec.kind != K_RECORD || k < 0 || static_cast<size_t>(k) >= rec.fields.size()) {
          okDesc = false;
          break;
        }
        at = rec.fields[k].node;
      }
      if (keyPath_[0] != keyField_ || nodes_[at].kind != K_STRING) okDesc = false;
      for (const Node& n : nodes_)
        for (size_t j = 0; j < n.fields.size(); j++)
          if (n.fields[j].microsOf >= static_cast<int32_t>(j)) okDesc = false;
      for (int32_t p : projection_)
        if (p < 0 || static_cast<size_t>(p) >= r.fields.size()) okDesc = false;
    }
    if (!okDesc) {
      napi_throw_error(env, nullptr, "Transcoder: inconsistent schema description");
      return;
    }
    tmp_.resize(MAX_DEPTH + 1);
    ready_ = true;
  }

 private:
  bool ready_ = false;  // the description was read whole and is consistent
  int32_t schemaId_ = 0;
  int32_t root_ = 0;
  int32_t keyField_ = 0;
  std::vector<int32_t> keyPath_;  // keyField_, then the field index at each nested level
  std::vector<Node> nodes_;
  std::vector<int32_t> projection_;

  simdjson::ondemand::parser parser_;
  std::vector<uint8_t> input_;  // the body, copied with simdjson's padding after it
  std::vector<uint8_t> out_;    // wire-format values back to back
  std::vector<uint8_t> arena_;  // field values of records being assembled
  std::vector<std::vector<uint8_t>> tmp_;  // per nesting depth, to reorder fields
  std::vector<uint32_t> meta_;
  std::vector<uint32_t> deferred_;
  std::vector<uint32_t> starts_;  // array bodies: where each element's first token is
  std::vector<uint32_t> projMeta_;  // per accepted event and projected field: offset of the value in out_
  std::vector<uint8_t> stampIngest_;
  std::vector<uint8_t> stampSource_;
  CanonicalJson canonical_;

  // Per event of the top-level record.
  uint32_t keyStart_ = 0, keyEnd_ = 0;

  // Every value of an accepted event is read through a checking getter: On-Demand skips what is
  // not read without fully validating it, and the JS side must be able to trust accepted events.
  Status Walk(simdjson::ondemand::value v, size_t depth) {
    if (depth > MAX_DEPTH) return DEFER;
    json_type t;
    if (v.type().get(t)) return DEFER;
    switch (t) {
      case json_type::object: {
        simdjson::ondemand::object o;
        if (v.get_object().get(o)) return DEFER;
        for (auto field : o) {
          simdjson::ondemand::field f;
          if (std::move(field).get(f)) return DEFER;
          std::string_view key;
          if (f.unescaped_key(false).get(key)) return DEFER;
          if (Walk(f.value(), depth + 1) != OK) return DEFER;
        }
        return OK;
      }
      case json_type::array: {
        simdjson::ondemand::array a;
        if (v.get_array().get(a)) return DEFER;
        for (auto item : a) {
          simdjson::ondemand::value x;
          if (std::move(item).get(x)) return DEFER;
          if (Walk(x, depth + 1) != OK) return DEFER;
        }
        return OK;
      }
      case json_type::string: {
        std::string_view s;
        return v.get_string().get(s) ? DEFER : OK;
      }
      case json_type::number: {
        double d;
        return v.get_double().get(d) ? DEFER : OK;
      }
      case json_type::boolean: {
        bool b;
        return v.get_bool().get(b) ? DEFER : OK;
      }
      case json_type::null: {
        bool isNull = false;
        return v.is_null().get(isNull) || !isNull ? DEFER : OK;
      }
      default:
        return DEFER;
    }
  }

  // Encode one value under node `n` onto the end of `dst`.
  Status Encode(simdjson::ondemand::value v, int32_t n, std::vector<uint8_t>& dst, size_t depth) {
    const Node& node = nodes_[n];
    if (depth > MAX_DEPTH) return DEFER;
    json_type t;
    if (v.type().get(t)) return DEFER;
    switch (node.kind) {
      case K_OPTIONAL: {
        if (t == json_type::null) {
          if (node.deferNull) return DEFER;
          bool isNull = false;
          if (v.is_null().get(isNull) || !isNull) return DEFER;
          dst.push_back(0);
          return OK;
        }
        dst.push_back(2);
        return Encode(v, node.inner, dst, depth);
      }
      case K_NULL: {
        bool isNull = false;
        if (t != json_type::null || v.is_null().get(isNull) || !isNull) return DEFER;
        return OK;
      }
      case K_BOOLEAN: {
        bool b;
        if (t != json_type::boolean || v.get_bool().get(b)) return DEFER;
        dst.push_back(b ? 1 : 0);
        return OK;
      }
      case K_INT:
      case K_LONG: {
        // Only plain integer tokens: 1.0, 1e3 or out-of-range values go to the JS side.
        int64_t i;
        if (t != json_type::number || v.get_int64().get(i)) return DEFER;
        if (node.kind == K_INT ? (i < INT32_MIN || i > INT32_MAX) : (i < -MAX_LONG || i > MAX_LONG)) return DEFER;
        double d = static_cast<double>(i);
        if ((node.hasMin && d < node.min) || (node.hasMax && d > node.max)) return DEFER;
        putLong(dst, i);
        return OK;
      }
      case K_FLOAT:
      case K_DOUBLE: {
        double d;
        if (t != json_type::number || v.get_double().get(d)) return DEFER;
        if (!(d - d == 0)) return DEFER;  // not finite
        if ((node.hasMin && d < node.min) || (node.hasMax && d > node.max)) return DEFER;
        if (node.kind == K_FLOAT) {
          float f = static_cast<float>(d);
          uint8_t b[4];
          std::memcpy(b, &f, 4);
          dst.insert(dst.end(), b, b + 4);
        } else {
          uint8_t b[8];
          std::memcpy(b, &d, 8);
          dst.insert(dst.end(), b, b + 8);
        }
        return OK;
      }
      case K_STRING: {
        std::string_view s;
        if (t != json_type::string || v.get_string().get(s) || hasSurrogate(s)) return DEFER;
        // A UTF-16 length lies between bytes/3 and bytes: count only when the bounds are that close.
        const double bytes = static_cast<double>(s.size());
        if (bytes > node.maxLength || bytes < 3 * node.minLength) {
          double len = utf16Length(s);
          if (len < node.minLength || len > node.maxLength) return DEFER;
        }
        putString(dst, s);
        return OK;
      }
      case K_ENUM: {
        std::string_view s;
        if (t != json_type::string || v.get_string().get(s)) return DEFER;
        for (size_t i = 0; i < node.symbols.size(); i++) {
          if (node.symbols[i] == s) {
            putLong(dst, static_cast<int64_t>(i));
            return OK;
          }
        }
        return DEFER;
      }
      case K_ARRAY: {
        simdjson::ondemand::array a;
        if (t != json_type::array || v.get_array().get(a)) return DEFER;
        // Items are encoded after a placeholder-free count: count first into tmp, then copy.
        std::vector<uint8_t>& items = tmp_[depth];
        size_t base = items.size();
        int64_t count = 0;
        for (auto item : a) {
          simdjson::ondemand::value x;
          if (std::move(item).get(x)) return DEFER;
          if (Encode(x, node.inner, items, depth + 1) != OK) {
            items.resize(base);
            return DEFER;
          }
          count++;
        }
        if (static_cast<double>(count) < node.minItems || static_cast<double>(count) > node.maxItems) {
          items.resize(base);
          return DEFER;
        }
        if (count > 0) {
          putLong(dst, count);
          dst.insert(dst.end(), items.begin() + base, items.end());
        }
        items.resize(base);
        dst.push_back(0);
        return OK;
      }
      case K_RECORD: {
        simdjson::ondemand::object o;
        if (t != json_type::object || v.get_object().get(o)) return DEFER;
        return EncodeRecord(o, n, dst, depth, false);
      }
      case K_JSON_TEXT: {
        // An object or array (JSON text in a string is the JS side's to check), written as it is
        // when it is already what JSON.stringify makes of it (CanonicalJson).
        std::string_view text;
        if ((t != json_type::object && t != json_type::array) || v.raw_json().get(text)) return DEFER;
        while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\n' || text.back() == '\r'))
          text.remove_suffix(1);  // raw_json() runs to the next token
        // Bytes are at least the UTF-16 length: within the bound in bytes is within it.
        if (static_cast<double>(text.size()) > node.maxLength) return DEFER;
        if (!canonical_.Check(text, static_cast<size_t>(node.maxDepth))) return DEFER;
        putString(dst, text);
        return OK;
      }
      default:
        return DEFER;
    }
  }

  // Write field i's gateway stamp, remembering where the key and projected fields land.
  void Note(size_t i, const std::vector<uint8_t>& dst, bool top) {
    if (!top) return;
    for (size_t p = 0; p < projection_.size(); p++)
      if (projection_[p] == static_cast<int32_t>(i))
        projMeta_[projMeta_.size() - projection_.size() + p] = static_cast<uint32_t>(dst.size());
  }

  void NoteKey(size_t i, const std::vector<uint8_t>& dst, size_t at, bool top) {
    if (!top || keyPath_.size() != 1 || static_cast<int32_t>(i) != keyField_) return;
    // A required string: its bytes follow the length varint.
    size_t skip = 0;
    while (dst[at + skip] & 0x80) skip++;
    keyStart_ = static_cast<uint32_t>(at + skip + 1);
    keyEnd_ = static_cast<uint32_t>(dst.size());
  }

  // A field the input did not give: its default (or, at the top level, the gateway's stamp).
  bool Absent(size_t i, const Field& field, std::vector<uint8_t>& dst, bool top) {
    if (top && field.stamp == STAMP_INGEST_TIME) {
      Note(i, dst, top);
      dst.insert(dst.end(), stampIngest_.begin(), stampIngest_.end());
      return true;
    }
    if (top && field.stamp == STAMP_SOURCE) {
      Note(i, dst, top);
      dst.insert(dst.end(), stampSource_.begin(), stampSource_.end());
      return true;
    }
    if (!field.hasDefault) return false;
    Note(i, dst, top);
    dst.insert(dst.end(), field.defaultBytes.begin(), field.defaultBytes.end());
    return true;
  }

  // A field the input gave: checked and encoded onto dst (stamped fields are checked, then
  // replaced by the stamp, as decoders/result.ts `stamp` overwrites them after normalizing).
  Status Present(size_t i, const Field& field, simdjson::ondemand::value v, std::vector<uint8_t>& dst,
                 size_t depth, bool top) {
    if (top && field.stamp != STAMP_NONE) {
      std::vector<uint8_t>& scratch = tmp_[depth];
      size_t sbase = scratch.size();
      Status s = Encode(v, field.node, scratch, depth + 1);
      scratch.resize(sbase);
      if (s != OK) return DEFER;
      Absent(i, field, dst, top);
      return OK;
    }
    Note(i, dst, top);
    size_t at = dst.size();
    if (Encode(v, field.node, dst, depth + 1) != OK) return DEFER;
    NoteKey(i, dst, at, top);
    return OK;
  }

  enum Order { IN_ORDER_OK, IN_ORDER_DEFER, OUT_OF_ORDER };

  // The common case: fields in schema order, some left out. Each is encoded straight onto dst;
  // a left-out field gets its default as soon as a later one arrives. A field arriving after its
  // default was written means another order: the caller starts again in slot mode.
  Order EncodeInOrder(simdjson::ondemand::object& o, const Node& node, std::vector<uint8_t>& dst, size_t depth,
                      bool top) {
    const size_t nf = node.fields.size();
    uint64_t seen = 0;
    size_t next = 0;
    size_t fieldAt[MAX_RECORD_FIELDS];  // where each field's value starts in dst (micros read their decimal)
    for (auto field : o) {
      simdjson::ondemand::field f;
      if (std::move(field).get(f)) return IN_ORDER_DEFER;
      std::string_view key;
      if (f.unescaped_key(false).get(key)) return IN_ORDER_DEFER;
      size_t i = next;
      if (i >= nf || node.fields[i].name != key) {
        i = 0;
        while (i < nf && node.fields[i].name != key) i++;
      }
      if (i == nf || node.fields[i].rest || node.fields[i].microsOf >= 0) {
        if (node.closed || Walk(f.value(), depth + 1) != OK) return IN_ORDER_DEFER;
        continue;
      }
      // JSON.parse keeps the last of duplicate keys; leave such events to the JS side.
      if (seen & (1ull << i)) return IN_ORDER_DEFER;
      if (i < next) return OUT_OF_ORDER;
      for (; next < i; next++) {
        fieldAt[next] = dst.size();
        if (node.fields[next].microsOf >= 0) {
          if (!Micros(node, next, fieldAt, dst)) return IN_ORDER_DEFER;
        } else if (!Absent(next, node.fields[next], dst, top)) {
          return OUT_OF_ORDER;  // may come later
        }
      }
      seen |= 1ull << i;
      fieldAt[i] = dst.size();
      if (Present(i, node.fields[i], f.value(), dst, depth, top) != OK) return IN_ORDER_DEFER;
      next = i + 1;
    }
    for (; next < nf; next++) {
      fieldAt[next] = dst.size();
      if (node.fields[next].microsOf >= 0) {
        if (!Micros(node, next, fieldAt, dst)) return IN_ORDER_DEFER;
      } else if (!Absent(next, node.fields[next], dst, top)) {
        return IN_ORDER_DEFER;  // required, missing
      }
    }
    return IN_ORDER_OK;
  }

  // A micros field (adgate.micros): Math.round(decimal × 10^6) of the decimal field encoded before
  // it in dst, as decoders/normalize.ts computes it, or null beside a null decimal. false: the JS
  // side decides (a value beyond what avsc encodes, or a shape this does not know).
  bool Micros(const Node& node, size_t i, const size_t* fieldAt, std::vector<uint8_t>& dst) {
    const Field& field = node.fields[i];
    const Node& decimal = nodes_[node.fields[field.microsOf].node];
    const Node& micros = nodes_[field.node];
    const bool optionalIn = decimal.kind == K_OPTIONAL;
    const bool optionalOut = micros.kind == K_OPTIONAL;
    if ((optionalIn ? nodes_[decimal.inner].kind : decimal.kind) != K_DOUBLE) return false;
    const Node& out = optionalOut ? nodes_[micros.inner] : micros;
    if (out.kind != K_LONG) return false;
    const size_t at = fieldAt[field.microsOf];
    if (optionalIn && dst[at] == 0) {
      if (!optionalOut) return false;
      dst.push_back(0);
      return true;
    }
    double d;
    std::memcpy(&d, dst.data() + at + (optionalIn ? 1 : 0), 8);
    // Math.round: the nearest integer, halves towards +∞ (v − floor(v) is exact for doubles).
    const double v = d * 1e6;
    double r = std::floor(v);
    if (v - r >= 0.5) r += 1;
    if (!(r >= -static_cast<double>(MAX_LONG) && r <= static_cast<double>(MAX_LONG))) return false;
    if ((out.hasMin && r < out.min) || (out.hasMax && r > out.max)) return false;
    if (optionalOut) dst.push_back(2);
    putLong(dst, static_cast<int64_t>(r));
    return true;
  }

  Status EncodeRecord(simdjson::ondemand::object o, int32_t n, std::vector<uint8_t>& dst, size_t depth, bool top) {
    const Node& node = nodes_[n];
    const size_t start = dst.size();
    Order order = EncodeInOrder(o, node, dst, depth, top);
    if (order == IN_ORDER_OK) return OK;
    dst.resize(start);
    if (order == IN_ORDER_DEFER) return DEFER;
    bool rewound = false;
    if (o.reset().get(rewound)) return DEFER;
    return EncodeAnyOrder(o, node, dst, depth, top);
  }

  // Fields in any order: each field's bytes go to the arena, then the record is assembled in
  // schema order (defaults for absent fields, stamps at the top level).
  Status EncodeAnyOrder(simdjson::ondemand::object& o, const Node& node, std::vector<uint8_t>& dst, size_t depth,
                        bool top) {
    const size_t nf = node.fields.size();
    if (node.hasMicros) return DEFER;  // micros are computed in order only
    Slot slots[MAX_RECORD_FIELDS];
    const size_t base = arena_.size();
    Status status = OK;
    for (auto field : o) {
      simdjson::ondemand::field f;
      if (std::move(field).get(f)) {
        status = DEFER;
        break;
      }
      std::string_view key;
      if (f.unescaped_key(false).get(key)) {
        status = DEFER;
        break;
      }
      size_t i = 0;
      while (i < nf && node.fields[i].name != key) i++;
      if (i == nf || node.fields[i].rest) {
        if (node.closed || Walk(f.value(), depth + 1) != OK) {
          status = DEFER;
          break;
        }
        continue;
      }
      if (slots[i].set) {
        status = DEFER;
        break;
      }
      // Encode into a scratch of this depth, then append to the arena (Encode of nested records
      // uses the arena too, so it cannot be the direct target).
      std::vector<uint8_t>& scratch = tmp_[depth];
      size_t sbase = scratch.size();
      if (Encode(f.value(), node.fields[i].node, scratch, depth + 1) != OK) {
        scratch.resize(sbase);
        status = DEFER;
        break;
      }
      slots[i].start = arena_.size();
      slots[i].len = scratch.size() - sbase;
      slots[i].set = true;
      arena_.insert(arena_.end(), scratch.begin() + sbase, scratch.end());
      scratch.resize(sbase);
    }
    if (status == OK) {
      for (size_t i = 0; i < nf; i++) {
        const Field& field = node.fields[i];
        if (!slots[i].set || (top && field.stamp != STAMP_NONE)) {
          if (!Absent(i, field, dst, top)) {
            status = DEFER;  // required field missing
            break;
          }
          continue;
        }
        Note(i, dst, top);
        size_t at = dst.size();
        dst.insert(dst.end(), arena_.begin() + slots[i].start, arena_.begin() + slots[i].start + slots[i].len);
        NoteKey(i, dst, at, top);
      }
    }
    arena_.resize(base);
    return status;
  }

  // One top-level event: on success its wire-format value is appended to out_.
  Status EncodeEvent(simdjson::ondemand::value v) {
    json_type t;
    if (v.type().get(t) || t != json_type::object) return DEFER;
    simdjson::ondemand::object o;
    if (v.get_object().get(o)) return DEFER;
    const size_t start = out_.size();
    const size_t projBase = projMeta_.size();
    projMeta_.resize(projBase + projection_.size(), 0);
    out_.push_back(0);
    out_.push_back(static_cast<uint8_t>(schemaId_ >> 24));
    out_.push_back(static_cast<uint8_t>(schemaId_ >> 16));
    out_.push_back(static_cast<uint8_t>(schemaId_ >> 8));
    out_.push_back(static_cast<uint8_t>(schemaId_));
    if (EncodeRecord(o, root_, out_, 0, true) != OK || !LocateKey(start + 5)) {
      out_.resize(start);
      projMeta_.resize(projBase);
      return DEFER;
    }
    return OK;
  }

  // A key inside a nested record (keyPath_ longer than one): found in the encoded event at `pos`
  // (its record's first byte) by skipping the fields before it, level by level.
  bool LocateKey(size_t pos) {
    if (keyPath_.size() == 1) return true;
    int32_t at = root_;
    for (int32_t k : keyPath_) {
      const Node& record = nodes_[at];
      for (int32_t j = 0; j < k; j++)
        if (!Skip(record.fields[j].node, pos)) return false;
      at = record.fields[k].node;
    }
    int64_t len = 0;
    if (!ReadLong(pos, len) || len < 0 || pos + static_cast<size_t>(len) > out_.size()) return false;
    keyStart_ = static_cast<uint32_t>(pos);
    keyEnd_ = static_cast<uint32_t>(pos + static_cast<size_t>(len));
    return true;
  }

  bool ReadLong(size_t& pos, int64_t& value) {
    uint64_t z = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos >= out_.size()) return false;
      const uint8_t b = out_[pos++];
      z |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (b < 0x80) {
        value = static_cast<int64_t>(z >> 1) ^ -static_cast<int64_t>(z & 1);
        return true;
      }
    }
    return false;
  }

  // Skips one Avro value of node n in out_ (written by this transcoder, so well-formed).
  bool Skip(int32_t n, size_t& pos) {
    const Node& node = nodes_[n];
    int64_t v = 0;
    switch (node.kind) {
      case K_NULL:
        return true;
      case K_BOOLEAN:
        pos += 1;
        return pos <= out_.size();
      case K_INT:
      case K_LONG:
      case K_ENUM:
        return ReadLong(pos, v);
      case K_FLOAT:
        pos += 4;
        return pos <= out_.size();
      case K_DOUBLE:
        pos += 8;
        return pos <= out_.size();
      case K_STRING:
        if (!ReadLong(pos, v) || v < 0) return false;
        pos += static_cast<size_t>(v);
        return pos <= out_.size();
      case K_OPTIONAL:
        if (!ReadLong(pos, v)) return false;
        return v == 0 || (v == 1 && Skip(node.inner, pos));
      case K_ARRAY:
        for (;;) {
          if (!ReadLong(pos, v) || v < 0) return false;
          if (v == 0) return true;
          for (int64_t i = 0; i < v; i++)
            if (!Skip(node.inner, pos)) return false;
        }
      case K_RECORD:
        for (const Field& f : node.fields)
          if (!Skip(f.node, pos)) return false;
        return true;
      default:
        return false;  // not written by this transcoder: the event goes to the JS side
    }
  }

  void Accepted(uint32_t index, size_t start) {
    meta_.insert(meta_.end(), {index, static_cast<uint32_t>(start), static_cast<uint32_t>(out_.size()), keyStart_, keyEnd_});
  }

  void Deferred(uint32_t index, size_t start, size_t end) {
    deferred_.insert(deferred_.end(), {index, static_cast<uint32_t>(start), static_cast<uint32_t>(end)});
  }

  static bool HasBom(const uint8_t* p, size_t len) {
    return len >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF;
  }

  // false: the JS decoder must take the whole body.
  bool Document(size_t len, uint32_t maxEvents) {
    // simdjson skips a UTF-8 byte-order mark; JSON.parse refuses it.
    if (HasBom(input_.data(), len)) return false;
    simdjson::ondemand::document doc;
    if (parser_.iterate(input_.data(), len, input_.size()).get(doc)) return false;
    json_type t;
    if (doc.type().get(t)) return false;
    if (t == json_type::object) {
      simdjson::ondemand::object o;
      if (doc.get_object().get(o)) return false;
      const size_t start = out_.size();
      const size_t projBase = projMeta_.size();
      projMeta_.resize(projBase + projection_.size(), 0);
      out_.insert(out_.end(), {0, static_cast<uint8_t>(schemaId_ >> 24), static_cast<uint8_t>(schemaId_ >> 16),
                               static_cast<uint8_t>(schemaId_ >> 8), static_cast<uint8_t>(schemaId_)});
      if (EncodeRecord(o, root_, out_, 0, true) != OK || !LocateKey(start + 5)) {
        // Whatever made it invalid, the JS decoder words it; one event, so take the whole body.
        return false;
      }
      if (!doc.is_alive() || !doc.at_end()) return false;
      Accepted(0, start);
      return true;
    }
    if (t != json_type::array) return false;
    simdjson::ondemand::array a;
    if (doc.get_array().get(a)) return false;
    uint32_t index = 0;
    starts_.clear();
    for (auto item : a) {
      simdjson::ondemand::value v;
      if (std::move(item).get(v)) return false;
      if (index == maxEvents) return false;
      const char* at = nullptr;
      if (v.current_location().get(at)) return false;
      starts_.push_back(static_cast<uint32_t>(reinterpret_cast<const uint8_t*>(at) - input_.data()));
      const size_t start = out_.size();
      if (EncodeEvent(v) == OK)
        Accepted(index, start);
      else
        Deferred(index, starts_.back(), 0);  // its end is known once the next element starts
      // A syntax error abandons the iterator (simdjson then must not be asked anything more).
      if (!doc.is_alive()) return false;
      index++;
    }
    if (index == 0 || !doc.is_alive() || !doc.at_end()) return false;
    // A deferred element's bytes run from its first token to the comma before the next element
    // (or the closing bracket), blanks trimmed: the JS side parses only those elements.
    size_t close = len;
    while (close > 0 && IsBlank(input_[close - 1])) close--;
    if (close == 0 || input_[close - 1] != ']') return false;
    close--;
    for (size_t d = 0; d < deferred_.size(); d += 3) {
      const uint32_t i = deferred_[d];
      const size_t start = deferred_[d + 1];
      const bool last = i + 1 == starts_.size();
      size_t end = last ? close : starts_[i + 1];
      while (end > start && IsBlank(input_[end - 1])) end--;
      if (!last) {
        if (end == start || input_[end - 1] != ',') return false;
        end--;
        while (end > start && IsBlank(input_[end - 1])) end--;
      }
      if (end == start) return false;
      deferred_[d + 2] = static_cast<uint32_t>(end);
    }
    return true;
  }

  // JSON's whitespace (RFC 8259 §2).
  static bool IsBlank(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

  // NDJSON: each non-blank line one event, split as the JS decoder splits (on \n; blank = only
  // spaces, tabs and \r).
  bool Lines(size_t len, uint32_t maxEvents) {
    const uint8_t* data = input_.data();
    uint32_t index = 0;
    size_t pos = 0;
    while (pos < len) {
      const void* nl = std::memchr(data + pos, '\n', len - pos);
      size_t end = nl ? static_cast<size_t>(static_cast<const uint8_t*>(nl) - data) : len;
      size_t lineStart = pos;
      pos = end + 1;
      bool blank = true;
      for (size_t i = lineStart; i < end; i++) {
        uint8_t c = data[i];
        if (c != ' ' && c != '\t' && c != '\r') {
          blank = false;
          break;
        }
      }
      if (blank) continue;
      if (index == maxEvents) return false;
      const size_t start = out_.size();
      Status s = DEFER;
      simdjson::ondemand::document doc;
      if (!HasBom(data + lineStart, end - lineStart) &&
          !parser_.iterate(data + lineStart, end - lineStart, input_.size() - lineStart).get(doc)) {
        simdjson::ondemand::value v;
        if (!doc.get_value().get(v)) {
          s = EncodeEvent(v);
          if (s == OK && (!doc.is_alive() || !doc.at_end())) {
            out_.resize(start);
            projMeta_.resize(projMeta_.size() - projection_.size());
            s = DEFER;
          }
        }
      }
      if (s == OK)
        Accepted(index, start);
      else
        Deferred(index, lineStart, end);
      index++;
    }
    return index > 0;
  }

  // transcode(body: Buffer, ndjson: boolean, maxEvents: number, ingestTime: number, source: string,
  //           into?: Buffer)
  //   → undefined (the JS decoder takes the whole body)
  //   | { out: Buffer, meta: Uint32Array, deferred: Uint32Array, projected?: Uint32Array }
  //   | { outLength: number, meta, deferred, projected? }: with `into` and the output within its
  //     length, the output is written there (bytes 0..outLength) rather than into a new Buffer.
  // meta: 5 numbers per accepted event, in body order: its index, its value's start and end in
  // out, its key's start and end in out. deferred: 3 per deferred event: its index, then
  // its bytes' start and end in the body (the NDJSON line, the array element). projected: per accepted event and projected
  // field, the offset of the field's Avro value in out.
  napi_value Transcode(napi_env env, size_t argc, napi_value* argv) {
    bool isBuffer = false;
    void* data = nullptr;
    size_t len = 0;
    bool ndjson = false;
    double maxEventsD = 0;
    int64_t ingestTime = 0;
    size_t sourceLen = 0;
    if (argc < 5 || napi_is_buffer(env, argv[0], &isBuffer) != napi_ok || !isBuffer ||
        napi_get_value_bool(env, argv[1], &ndjson) != napi_ok ||
        napi_get_value_double(env, argv[2], &maxEventsD) != napi_ok ||
        napi_get_value_int64(env, argv[3], &ingestTime) != napi_ok ||
        napi_get_value_string_utf8(env, argv[4], nullptr, 0, &sourceLen) != napi_ok) {
      napi_throw_type_error(env, nullptr, "transcode(body, ndjson, maxEvents, ingestTime, source)");
      return nullptr;
    }
    std::string source(sourceLen, '\0');
    if (napi_get_buffer_info(env, argv[0], &data, &len) != napi_ok ||
        napi_get_value_string_utf8(env, argv[4], source.data(), sourceLen + 1, &sourceLen) != napi_ok)
      return nullptr;
    const uint32_t maxEvents = maxEventsD >= 4294967295.0 ? 4294967295u : maxEventsD <= 0 ? 0u : static_cast<uint32_t>(maxEventsD);
    // Offsets are 32-bit; such bodies are far over any configured limit anyway.
    if (len >= 0xFFFFFFF0u) return nullptr;

    stampIngest_.clear();
    putLong(stampIngest_, ingestTime);
    stampSource_.clear();
    putString(stampSource_, source);

    input_.resize(len + simdjson::SIMDJSON_PADDING);
    if (len > 0) std::memcpy(input_.data(), data, len);
    std::memset(input_.data() + len, 0, simdjson::SIMDJSON_PADDING);
    out_.clear();
    meta_.clear();
    deferred_.clear();
    projMeta_.clear();
    arena_.clear();
    for (auto& t : tmp_) t.clear();

    const bool handled = ndjson ? Lines(len, maxEvents) : Document(len, maxEvents);
    if (!handled || out_.size() >= 0xFFFFFFF0u) return nullptr;

    void* into = nullptr;
    size_t intoLen = 0;
    bool intoIsBuffer = false;
    if (argc >= 6 && napi_is_buffer(env, argv[5], &intoIsBuffer) == napi_ok && intoIsBuffer &&
        napi_get_buffer_info(env, argv[5], &into, &intoLen) != napi_ok)
      return nullptr;
    napi_value result = Result(env, intoIsBuffer && out_.size() <= intoLen ? into : nullptr);
    // Keep the buffers from growing without bound after one huge body.
    if (input_.capacity() > (64u << 20)) std::vector<uint8_t>().swap(input_);
    if (out_.capacity() > (64u << 20)) std::vector<uint8_t>().swap(out_);
    return result;
  }

  // { out | outLength, meta, deferred, projected? }, copied out of this transcoder's buffers (the
  // output into `into` when given: it fits); nullptr when N-API failed (the thread is being terminated).
  napi_value Result(napi_env env, void* into) {
    napi_value result;
    napi_value out;
    void* outData = nullptr;
    if (napi_create_object(env, &result) != napi_ok) return nullptr;
    if (into != nullptr) {
      if (!out_.empty()) std::memcpy(into, out_.data(), out_.size());
      if (napi_create_uint32(env, static_cast<uint32_t>(out_.size()), &out) != napi_ok ||
          napi_set_named_property(env, result, "outLength", out) != napi_ok)
        return nullptr;
    } else if (napi_create_buffer_copy(env, out_.size(), out_.data(), &outData, &out) != napi_ok ||
               napi_set_named_property(env, result, "out", out) != napi_ok) {
      return nullptr;
    }
    if (!SetUint32s(env, result, "meta", meta_) ||
        !SetUint32s(env, result, "deferred", deferred_) ||
        (!projection_.empty() && !SetUint32s(env, result, "projected", projMeta_)))
      return nullptr;
    return result;
  }

  // obj[name] = a Uint32Array copy of v; false when N-API failed (the thread is being terminated).
  static bool SetUint32s(napi_env env, napi_value obj, const char* name, const std::vector<uint32_t>& v) {
    void* data = nullptr;
    napi_value buffer;
    napi_value array;
    if (napi_create_arraybuffer(env, v.size() * sizeof(uint32_t), &data, &buffer) != napi_ok) return false;
    if (!v.empty()) std::memcpy(data, v.data(), v.size() * sizeof(uint32_t));
    return napi_create_typedarray(env, napi_uint32_array, v.size(), buffer, 0, &array) == napi_ok &&
           napi_set_named_property(env, obj, name, array) == napi_ok;
  }
};

// The calling thread's CPU time in ms. The per-request CPU budget reads it: wall time also counts
// the time a thread waited for a core, so on a loaded machine valid bodies ran over their budget.
Napi::Value ThreadCpuMs(const Napi::CallbackInfo& info) {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return Napi::Number::New(info.Env(), static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6);
}

class Addon : public Napi::Addon<Addon> {
 public:
  Addon(Napi::Env env, Napi::Object exports) {
    DefineAddon(exports, {InstanceValue("Transcoder", Napi::Value(env, Transcoder::Define(env)), napi_enumerable),
                          InstanceValue("threadCpuMs", Napi::Function::New(env, ThreadCpuMs), napi_enumerable),
                          InstanceValue("mergeRecordBatches", Napi::Function::New(env, MergeRecordBatches),
                                        napi_enumerable)});
  }
};

}  // namespace

NODE_API_ADDON(Addon)
