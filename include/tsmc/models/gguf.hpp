#pragma once
/// @file
/// @brief GGUF files (llama.cpp's model format, versions 2 and 3): a memory-mapped reader that
/// checks every header field, metadata value, tensor record, offset and alignment against the
/// file size before use, and a writer for test files and converted models.
///
/// Layout (little-endian): magic "GGUF"; uint32 version; uint64 tensor count; uint64 metadata
/// count; the metadata (key: uint64 length + bytes; uint32 value type; the value); the tensor
/// records (name; uint32 number of dimensions n <= 4; n uint64 dimensions, the first the
/// innermost; uint32 GGML type; uint64 offset from the start of the data section); padding to
/// the alignment (metadata key general.alignment, default 32); the data section. Values are
/// uint8, int8, uint16, int16, uint32, int32, float32, bool, string, array (uint32 element type,
/// uint64 count, the elements), uint64, int64, float64. Version 1 (32-bit counts) and
/// big-endian files are refused with an error saying so.

#include <tsmc/core/error.hpp>
#include <tsmc/core/file_output.hpp>
#include <tsmc/models/weight_formats.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#define TSMC_GGUF_HAVE_MMAP 1
#else
#define TSMC_GGUF_HAVE_MMAP 0
#endif

namespace tsmc::gguf {

using transformer::bf16_to_float;
using transformer::dequantize_q8_0;
using transformer::float_to_bf16;
using transformer::float_to_half;
using transformer::half_to_float;
using transformer::q8_0_block;
using transformer::q8_0_bytes;
using transformer::quantize_q8_0;

/// @brief The type of a metadata value (GGUF's numbering).
enum class value_type : std::uint32_t {
  uint8 = 0,
  int8 = 1,
  uint16 = 2,
  int16 = 3,
  uint32 = 4,
  int32 = 5,
  float32 = 6,
  boolean = 7,
  string = 8,
  array = 9,
  uint64 = 10,
  int64 = 11,
  float64 = 12,
};

/// @brief The GGML tensor types a GGUF file may name (ids; 4, 5 and 31-33 were removed upstream).
enum class tensor_type : std::uint32_t {
  f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9, q2_k = 10, q3_k = 11,
  q4_k = 12, q5_k = 13, q6_k = 14, q8_k = 15, iq2_xxs = 16, iq2_xs = 17, iq3_xxs = 18, iq1_s = 19,
  iq4_nl = 20, iq3_s = 21, iq2_s = 22, iq4_xs = 23, i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28,
  iq1_m = 29, bf16 = 30, tq1_0 = 34, tq2_0 = 35,
};

/// @brief Elements per block and bytes per block of a tensor type.
struct type_traits {
  const char* name = nullptr;  ///< GGML's name ("F32", "Q8_0", ...); null for an unknown id
  std::uint64_t block = 0;     ///< elements per block
  std::uint64_t bytes = 0;     ///< bytes per block
};

/// @brief The traits of a GGML type id (name null for an id GGUF does not define).
/// @param id the type id as stored in the file
[[nodiscard]] inline type_traits traits_of(std::uint32_t id) noexcept {
  switch (id) {
    case 0: return {"F32", 1, 4};
    case 1: return {"F16", 1, 2};
    case 2: return {"Q4_0", 32, 18};
    case 3: return {"Q4_1", 32, 20};
    case 6: return {"Q5_0", 32, 22};
    case 7: return {"Q5_1", 32, 24};
    case 8: return {"Q8_0", 32, 34};
    case 9: return {"Q8_1", 32, 36};
    case 10: return {"Q2_K", 256, 84};
    case 11: return {"Q3_K", 256, 110};
    case 12: return {"Q4_K", 256, 144};
    case 13: return {"Q5_K", 256, 176};
    case 14: return {"Q6_K", 256, 210};
    case 15: return {"Q8_K", 256, 292};
    case 16: return {"IQ2_XXS", 256, 66};
    case 17: return {"IQ2_XS", 256, 74};
    case 18: return {"IQ3_XXS", 256, 98};
    case 19: return {"IQ1_S", 256, 50};
    case 20: return {"IQ4_NL", 32, 18};
    case 21: return {"IQ3_S", 256, 110};
    case 22: return {"IQ2_S", 256, 82};
    case 23: return {"IQ4_XS", 256, 136};
    case 24: return {"I8", 1, 1};
    case 25: return {"I16", 1, 2};
    case 26: return {"I32", 1, 4};
    case 27: return {"I64", 1, 8};
    case 28: return {"F64", 1, 8};
    case 29: return {"IQ1_M", 256, 56};
    case 30: return {"BF16", 1, 2};
    case 34: return {"TQ1_0", 256, 54};
    case 35: return {"TQ2_0", 256, 66};
    default: return {};
  }
}

/// @brief A type's name for messages: "Q8_0", or "unknown type 99".
[[nodiscard]] inline std::string type_name(std::uint32_t id) {
  const type_traits t = traits_of(id);
  return t.name != nullptr ? std::string(t.name) : "unknown type " + std::to_string(id);
}

/// @brief The name of a metadata value type ("uint32", "array", ...; "type N" if out of range).
[[nodiscard]] inline std::string value_type_name(value_type t) {
  static constexpr const char* names[] = {"uint8", "int8",  "uint16", "int16",  "uint32", "int32",  "float32",
                                          "bool",  "string", "array", "uint64", "int64",  "float64"};
  const auto i = static_cast<std::uint32_t>(t);
  return i < 13 ? std::string(names[i]) : "type " + std::to_string(i);
}

/// @brief The default alignment of the data section and of every tensor's offset.
inline constexpr std::uint64_t default_alignment = 32;

/// @brief One metadata value: a scalar, a string, or an array of any of them (arrays of arrays
/// included). Numbers are kept as stored (integers in `integer` / `unsigned_integer`, floats in
/// `real`); arrays of numbers and bools in `numbers` (each as a double, the exact stored value
/// for every type but 64-bit integers above 2^53, which are also in `integers`).
struct value {
  value_type type = value_type::uint8;          ///< the value's type
  std::uint64_t unsigned_integer = 0;            ///< uint8..uint64 and bool (0 / 1)
  std::int64_t integer = 0;                      ///< int8..int64 (and the unsigned ones when they fit)
  double real = 0.0;                             ///< float32 / float64 (and every number, converted)
  std::string text;                              ///< string
  value_type element_type = value_type::uint8;   ///< arrays: the elements' type
  std::vector<double> numbers;                   ///< arrays of numbers / bools
  std::vector<std::int64_t> integers;            ///< arrays of integers (exact; unsigned beyond int64 wrap)
  std::vector<std::string> strings;              ///< arrays of strings
  std::vector<value> items;                      ///< arrays of arrays
  /// @brief The number of elements of an array (0 for a scalar).
  [[nodiscard]] std::size_t size() const noexcept {
    return element_type == value_type::string  ? strings.size()
           : element_type == value_type::array ? items.size()
                                               : numbers.size();
  }
  /// @brief Whether the value is an integer type (uint8..int64, not bool).
  [[nodiscard]] bool is_integer() const noexcept {
    return type <= value_type::int32 || type == value_type::uint64 || type == value_type::int64;
  }
};

/// @brief One tensor record: its name, dimensions (the first the innermost, as GGML's ne), type
/// and where its bytes are.
struct tensor_info {
  std::string name;                 ///< e.g. "blk.0.attn_q.weight"
  std::vector<std::uint64_t> dims;  ///< ne[0] (contiguous) first
  std::uint32_t type = 0;           ///< GGML type id
  std::uint64_t offset = 0;         ///< from the start of the data section
  std::uint64_t bytes = 0;          ///< the tensor's size in bytes
  /// @brief The number of elements.
  [[nodiscard]] std::uint64_t elements() const noexcept {
    std::uint64_t n = 1;
    for (std::uint64_t d : dims) n *= d;
    return n;
  }
};

namespace detail {

/// "'path'" for messages.
[[nodiscard]] inline std::string quoted(const std::filesystem::path& path) {
  std::string out(1, '\'');
  out += path.string();
  out += '\'';
  return out;
}

/// a * b, or false on overflow.
[[nodiscard]] inline bool checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t& out) noexcept {
  if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a) return false;
  out = a * b;
  return true;
}

/// A file's bytes: a read-only private mapping or a buffer. Move-only.
class file_bytes {
 public:
  file_bytes() = default;
  file_bytes(const file_bytes&) = delete;
  file_bytes& operator=(const file_bytes&) = delete;
  file_bytes(file_bytes&& other) noexcept { *this = std::move(other); }
  file_bytes& operator=(file_bytes&& other) noexcept {
    if (this != &other) {
      release();
      map_ = std::exchange(other.map_, nullptr);
      size_ = std::exchange(other.size_, 0);
      buffer_ = std::move(other.buffer_);
      data_ = std::exchange(other.data_, nullptr);
    }
    return *this;
  }
  ~file_bytes() { release(); }

  /// Maps `bytes` bytes of the file; false where the platform or the call refuses.
  [[nodiscard]] bool try_map(const std::filesystem::path& path, std::uint64_t bytes) {
#if TSMC_GGUF_HAVE_MMAP
    if (bytes == 0) return false;
    const int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) return false;
    void* p = ::mmap(nullptr, static_cast<std::size_t>(bytes), PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) return false;
    map_ = p;
    size_ = static_cast<std::size_t>(bytes);
    data_ = static_cast<const unsigned char*>(p);
    return true;
#else
    (void)path;
    (void)bytes;
    return false;
#endif
  }

  /// Reads `bytes` bytes of the file into a buffer (8-byte aligned).
  void read(const std::filesystem::path& path, std::uint64_t bytes, const char* function) {
    buffer_.assign(static_cast<std::size_t>((bytes + 7) / 8), 0);
    std::ifstream in(path, std::ios::binary);
    in.read(reinterpret_cast<char*>(buffer_.data()), static_cast<std::streamsize>(bytes));
    if (!in) throw_runtime_error(function, quoted(path), "could not be read in full", std::to_string(bytes) + " bytes");
    size_ = static_cast<std::size_t>(bytes);
    data_ = reinterpret_cast<const unsigned char*>(buffer_.data());
  }

  [[nodiscard]] const unsigned char* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool mapped() const noexcept { return map_ != nullptr; }

 private:
  void release() noexcept {
#if TSMC_GGUF_HAVE_MMAP
    if (map_ != nullptr) ::munmap(map_, size_);
#endif
    map_ = nullptr;
    size_ = 0;
    buffer_.clear();
    data_ = nullptr;
  }
  void* map_ = nullptr;
  std::size_t size_ = 0;
  std::vector<std::uint64_t> buffer_;
  const unsigned char* data_ = nullptr;
};

/// A bounds-checked little-endian cursor over the header; every read names what it reads.
class cursor {
 public:
  cursor(const unsigned char* data, std::uint64_t size, std::string file, const char* function)
      : data_(data), size_(size), file_(std::move(file)), function_(function) {}

  [[nodiscard]] std::uint64_t position() const noexcept { return at_; }
  [[nodiscard]] std::uint64_t remaining() const noexcept { return size_ - at_; }

  /// Throws "<file> <what> is truncated: needs N bytes at offset O, the file has S".
  [[noreturn]] void truncated(const std::string& what, std::uint64_t need) const {
    throw_runtime_error(function_, file_ + " " + what,
                        "is truncated: it needs " + std::to_string(need) + " bytes at offset " + std::to_string(at_),
                        "a file of " + std::to_string(size_) + " bytes");
  }
  [[noreturn]] void fail(const std::string& what, const std::string& requirement, const std::string& got) const {
    throw_runtime_error(function_, file_ + " " + what, requirement, got);
  }

  void need(std::uint64_t n, const std::string& what) const {
    if (n > remaining()) truncated(what, n);
  }
  template <class T>
  [[nodiscard]] T read(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + at_, sizeof(T));
    at_ += sizeof(T);
    return v;
  }
  [[nodiscard]] std::string read_string(const std::string& what) {
    const auto n = read<std::uint64_t>(what + " length");
    need(n, what);
    std::string s(reinterpret_cast<const char*>(data_ + at_), static_cast<std::size_t>(n));
    at_ += n;
    return s;
  }

 private:
  const unsigned char* data_;
  std::uint64_t size_;
  std::uint64_t at_ = 0;
  std::string file_;
  const char* function_;
};

/// Bytes of a scalar value type (0 for string and array).
[[nodiscard]] inline std::uint64_t scalar_bytes(value_type t) noexcept {
  switch (t) {
    case value_type::uint8: case value_type::int8: case value_type::boolean: return 1;
    case value_type::uint16: case value_type::int16: return 2;
    case value_type::uint32: case value_type::int32: case value_type::float32: return 4;
    case value_type::uint64: case value_type::int64: case value_type::float64: return 8;
    default: return 0;
  }
}

/// Reads one scalar of type t into v's scalar fields.
inline void read_scalar(cursor& in, value_type t, value& v, const std::string& what) {
  v.type = t;
  switch (t) {
    case value_type::uint8: v.unsigned_integer = in.read<std::uint8_t>(what); break;
    case value_type::uint16: v.unsigned_integer = in.read<std::uint16_t>(what); break;
    case value_type::uint32: v.unsigned_integer = in.read<std::uint32_t>(what); break;
    case value_type::uint64: v.unsigned_integer = in.read<std::uint64_t>(what); break;
    case value_type::int8: v.integer = in.read<std::int8_t>(what); break;
    case value_type::int16: v.integer = in.read<std::int16_t>(what); break;
    case value_type::int32: v.integer = in.read<std::int32_t>(what); break;
    case value_type::int64: v.integer = in.read<std::int64_t>(what); break;
    case value_type::float32: v.real = in.read<float>(what); break;
    case value_type::float64: v.real = in.read<double>(what); break;
    case value_type::boolean: {
      const auto b = in.read<std::uint8_t>(what);
      if (b > 1) in.fail(what, "must be a bool (0 or 1)", std::to_string(b));
      v.unsigned_integer = b;
      break;
    }
    default: break;
  }
  switch (t) {
    case value_type::uint8: case value_type::uint16: case value_type::uint32: case value_type::uint64:
    case value_type::boolean:
      v.integer = static_cast<std::int64_t>(v.unsigned_integer);
      v.real = static_cast<double>(v.unsigned_integer);
      break;
    case value_type::int8: case value_type::int16: case value_type::int32: case value_type::int64:
      v.unsigned_integer = static_cast<std::uint64_t>(v.integer);
      v.real = static_cast<double>(v.integer);
      break;
    default: break;
  }
}

/// Reads a value of type t (arrays recursively, nesting at most `depth` more levels).
inline void read_value(cursor& in, value_type t, value& v, const std::string& what, int depth) {
  const auto id = static_cast<std::uint32_t>(t);
  if (id > 12) in.fail(what + " type", "must be a GGUF value type 0..12", std::to_string(id));
  v.type = t;
  if (t == value_type::string) {
    v.text = in.read_string(what);
    return;
  }
  if (t != value_type::array) {
    read_scalar(in, t, v, what);
    return;
  }
  const auto element = static_cast<value_type>(in.read<std::uint32_t>(what + " element type"));
  if (static_cast<std::uint32_t>(element) > 12)
    in.fail(what + " element type", "must be a GGUF value type 0..12", std::to_string(static_cast<std::uint32_t>(element)));
  v.element_type = element;
  const auto count = in.read<std::uint64_t>(what + " count");
  // Every element takes at least one byte (a string its 8-byte length): check before allocating.
  const std::uint64_t least = element == value_type::string  ? 8
                              : element == value_type::array ? 12
                                                             : scalar_bytes(element);
  if (count > in.remaining() / least) in.truncated(what + " (" + std::to_string(count) + " elements)", count * least);
  if (element == value_type::array) {
    if (depth <= 0) in.fail(what, "must nest arrays at most 8 deep", "deeper nesting");
    v.items.resize(static_cast<std::size_t>(count));
    for (std::uint64_t i = 0; i < count; ++i)
      read_value(in, value_type::array, v.items[static_cast<std::size_t>(i)], what + "[" + std::to_string(i) + "]",
                 depth - 1);
    return;
  }
  if (element == value_type::string) {
    v.strings.resize(static_cast<std::size_t>(count));
    for (std::uint64_t i = 0; i < count; ++i)
      v.strings[static_cast<std::size_t>(i)] = in.read_string(what + "[" + std::to_string(i) + "]");
    return;
  }
  v.numbers.resize(static_cast<std::size_t>(count));
  v.integers.resize(static_cast<std::size_t>(count));
  value scratch;
  for (std::uint64_t i = 0; i < count; ++i) {
    read_scalar(in, element, scratch, what);
    v.numbers[static_cast<std::size_t>(i)] = scratch.real;
    v.integers[static_cast<std::size_t>(i)] = scratch.integer;
  }
}

}  // namespace detail

/// @brief How a file's bytes reach memory.
enum class load_mode {
  automatic,  ///< memory-map where the platform can, else read
  map,        ///< memory-map (read-only, private); throws if mapping fails
  read,       ///< read the file into an owned buffer
};

/// @brief A parsed GGUF file: header, metadata, tensor records, and the tensors' bytes in a
/// read-only mapping of the file (or a buffer). Move-only.
///
/// The constructor checks, in order: the file opens; the magic; the version (2 or 3; 1 and
/// byte-swapped versions are refused by name); the counts against the bytes left; every metadata
/// key (a string, unique) and value (a known type, lengths and counts within the file, bools 0 or
/// 1, arrays nested at most 8 deep); general.alignment (uint32, a power of two); every tensor
/// record (a unique name, 1 to 4 dimensions each positive, an element count and byte size that
/// fit 64 bits, a known type whose block divides the first dimension, an offset that is a
/// multiple of the alignment); the data section's start within the file; every tensor's bytes
/// within the file; no two tensors overlapping. Each failure is a tsmc::runtime_error naming the
/// file, the key or tensor, and the value.
class file {
 public:
  /// @brief Parses a GGUF file.
  /// @param path the .gguf file
  /// @param mode memory-map (default), map only, or read into a buffer
  /// @throw tsmc::runtime_error naming the file and the field on a bad file
  explicit file(const std::filesystem::path& path, load_mode mode = load_mode::automatic) : path_(path) {
    constexpr const char* function = "gguf::file::file";
    if constexpr (std::endian::native != std::endian::little)
      throw_runtime_error(function, "host byte order", "must be little-endian to read GGUF files in place",
                          "big-endian");
    const std::string name = detail::quoted(path);
    std::error_code ec;
    const std::uintmax_t size = std::filesystem::file_size(path, ec);
    if (ec) throw_runtime_error(function, name, "must be a readable regular file", ec.message());
    bool mapped = false;
    if (mode != load_mode::read) mapped = bytes_.try_map(path, size);
    if (!mapped) {
      if (mode == load_mode::map && size > 0)
        throw_runtime_error(function, name, "could not be memory-mapped", "load_mode::map");
      bytes_.read(path, size, function);
    }
    parse(name, function);
  }

  /// @brief The file the bytes came from.
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  /// @brief The format version (2 or 3).
  [[nodiscard]] std::uint32_t version() const noexcept { return version_; }
  /// @brief The file size in bytes.
  [[nodiscard]] std::uint64_t size() const noexcept { return bytes_.size(); }
  /// @brief The alignment of the data section and the tensors' offsets.
  [[nodiscard]] std::uint64_t alignment() const noexcept { return alignment_; }
  /// @brief Where the data section starts (bytes from the start of the file).
  [[nodiscard]] std::uint64_t data_offset() const noexcept { return data_offset_; }
  /// @brief Where the tensor table ends (the padding before the data section starts here).
  [[nodiscard]] std::uint64_t header_end() const noexcept { return header_end_; }
  /// @brief Whether the bytes are a memory mapping of the file.
  [[nodiscard]] bool mapped() const noexcept { return bytes_.mapped(); }
  /// @brief The metadata, in file order.
  [[nodiscard]] const std::vector<std::pair<std::string, value>>& metadata() const noexcept { return metadata_; }
  /// @brief The tensor records, in file order.
  [[nodiscard]] const std::vector<tensor_info>& tensors() const noexcept { return tensors_; }

  /// @brief The value of a key, or null if absent.
  [[nodiscard]] const value* find(std::string_view key) const {
    const auto it = key_index_.find(std::string(key));
    return it == key_index_.end() ? nullptr : &metadata_[it->second].second;
  }
  /// @brief A tensor's record, or null if absent.
  [[nodiscard]] const tensor_info* find_tensor(std::string_view tensor_name) const {
    const auto it = tensor_index_.find(std::string(tensor_name));
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
  }
  /// @brief The first byte of a tensor's data (t must be one of tensors()).
  [[nodiscard]] const unsigned char* data(const tensor_info& t) const noexcept {
    return bytes_.data() + data_offset_ + t.offset;
  }

  /// @brief A required string value.
  /// @throw tsmc::runtime_error naming the file and key if absent or not a string
  [[nodiscard]] const std::string& require_string(std::string_view key) const {
    return require(key, value_type::string, "a string").text;
  }
  /// @brief A required unsigned integer value (any integer type holding a value >= 0).
  /// @throw tsmc::runtime_error naming the file and key if absent, not an integer or negative
  [[nodiscard]] std::uint64_t require_unsigned(std::string_view key) const {
    const value& v = require_any(key);
    if (!v.is_integer() || (v.integer < 0 && v.type != value_type::uint64))
      throw_runtime_error("gguf::file", detail::quoted(path_) + " key " + std::string(key),
                          "must be a non-negative integer", describe(v));
    return v.unsigned_integer;
  }
  /// @brief A required number (integer or float) as a double.
  /// @throw tsmc::runtime_error naming the file and key if absent or not a number
  [[nodiscard]] double require_number(std::string_view key) const {
    const value& v = require_any(key);
    if (!v.is_integer() && v.type != value_type::float32 && v.type != value_type::float64)
      throw_runtime_error("gguf::file", detail::quoted(path_) + " key " + std::string(key), "must be a number",
                          describe(v));
    return v.real;
  }

  /// @brief A short description of a value for messages: "uint32 7", "string 'llama'", "array of 3 float32".
  [[nodiscard]] static std::string describe(const value& v) {
    switch (v.type) {
      case value_type::string: return "string '" + v.text.substr(0, 64) + "'";
      case value_type::array:
        return "array of " + std::to_string(v.size()) + " " + value_type_name(v.element_type);
      case value_type::float32: case value_type::float64: {
        std::string s = std::to_string(v.real);
        return value_type_name(v.type) + " " + s;
      }
      case value_type::boolean: return std::string("bool ") + (v.unsigned_integer ? "true" : "false");
      case value_type::uint64: return "uint64 " + std::to_string(v.unsigned_integer);
      default: return value_type_name(v.type) + " " + std::to_string(v.integer);
    }
  }

 private:
  [[nodiscard]] const value& require_any(std::string_view key) const {
    const value* v = find(key);
    if (v == nullptr)
      throw_runtime_error("gguf::file", detail::quoted(path_) + " key " + std::string(key), "is required", "absent");
    return *v;
  }
  [[nodiscard]] const value& require(std::string_view key, value_type t, const char* what) const {
    const value& v = require_any(key);
    if (v.type != t)
      throw_runtime_error("gguf::file", detail::quoted(path_) + " key " + std::string(key),
                          std::string("must be ") + what, describe(v));
    return v;
  }

  void parse(const std::string& name, const char* function) {
    detail::cursor in(bytes_.data(), bytes_.size(), name, function);
    const auto magic = in.read<std::uint32_t>("header field magic");
    if (magic != 0x46554747u) {  // "GGUF" read as a little-endian uint32
      char text[5] = {};
      std::memcpy(text, &magic, 4);
      std::string shown;
      for (char ch : std::string_view(text, 4)) shown += (ch >= 32 && ch < 127) ? ch : '?';
      in.fail("header field magic", "must be \"GGUF\"", "\"" + shown + "\"");
    }
    version_ = in.read<std::uint32_t>("header field version");
    if (version_ == 1) in.fail("header field version", "must be 2 or 3 (version 1 is not supported)", "1");
    if (version_ != 2 && version_ != 3) {
      const std::string got = std::to_string(version_);
      if (version_ == 0x02000000u || version_ == 0x03000000u)
        in.fail("header field version", "must be 2 or 3 (this is a big-endian GGUF file, not supported)", got);
      in.fail("header field version", "must be 2 or 3", got);
    }
    const auto tensor_count = in.read<std::uint64_t>("header field tensor_count");
    const auto kv_count = in.read<std::uint64_t>("header field metadata_kv_count");
    // A metadata entry takes at least 8 + 4 + 1 bytes, a tensor record at least 8 + 4 + 8 + 4 + 8.
    if (kv_count > in.remaining() / 13)  // each entry takes 13 bytes at least
      in.truncated("metadata (header field metadata_kv_count " + std::to_string(kv_count) + ")", kv_count * 13);
    metadata_.reserve(static_cast<std::size_t>(kv_count));
    for (std::uint64_t i = 0; i < kv_count; ++i) {
      const std::string entry = "metadata entry " + std::to_string(i);
      std::string key = in.read_string(entry + " key");
      const std::string what = "key " + key;
      if (key_index_.count(key) != 0) in.fail(what, "must be unique", "a second entry");
      const auto t = static_cast<value_type>(in.read<std::uint32_t>(what + " type"));
      value v;
      detail::read_value(in, t, v, what + " value", 8);
      key_index_.emplace(key, metadata_.size());
      metadata_.emplace_back(std::move(key), std::move(v));
    }
    if (const value* a = find("general.alignment")) {
      if (a->type != value_type::uint32)
        in.fail("key general.alignment", "must be a uint32", describe(*a));
      if (a->unsigned_integer == 0 || (a->unsigned_integer & (a->unsigned_integer - 1)) != 0)
        in.fail("key general.alignment", "must be a power of two", std::to_string(a->unsigned_integer));
      alignment_ = a->unsigned_integer;
    }
    if (tensor_count > in.remaining() / 32)  // each record takes 32 bytes at least
      in.truncated("tensor table (header field tensor_count " + std::to_string(tensor_count) + ")",
                   tensor_count * 32);
    tensors_.reserve(static_cast<std::size_t>(tensor_count));
    for (std::uint64_t i = 0; i < tensor_count; ++i) {
      tensor_info t;
      t.name = in.read_string("tensor " + std::to_string(i) + " name");
      const std::string what = "tensor " + std::to_string(i) + " '" + t.name + "'";
      if (tensor_index_.count(t.name) != 0) in.fail(what, "must have a unique name", "a second tensor");
      const auto n = in.read<std::uint32_t>(what + " n_dimensions");
      if (n == 0 || n > 4) in.fail(what + " n_dimensions", "must be in 1..4", std::to_string(n));
      std::uint64_t elements = 1;
      for (std::uint32_t d = 0; d < n; ++d) {
        const auto dim = in.read<std::uint64_t>(what + " dimension " + std::to_string(d));
        if (dim == 0 || dim > (std::uint64_t{1} << 62))
          in.fail(what + " dimension " + std::to_string(d), "must be in 1..2^62", std::to_string(dim));
        if (!detail::checked_mul(elements, dim, elements))
          in.fail(what + " dimensions", "must have an element count that fits 64 bits", "an overflowing product");
        t.dims.push_back(dim);
      }
      t.type = in.read<std::uint32_t>(what + " type");
      const type_traits tr = traits_of(t.type);
      if (tr.name == nullptr) in.fail(what + " type", "must be a GGML type id", std::to_string(t.type));
      if (t.dims[0] % tr.block != 0)
        in.fail(what + " dimension 0", "must be a multiple of the " + std::string(tr.name) + " block size " +
                                           std::to_string(tr.block), std::to_string(t.dims[0]));
      if (!detail::checked_mul(elements / tr.block, tr.bytes, t.bytes))
        in.fail(what, "must have a byte size that fits 64 bits", "an overflowing size");
      t.offset = in.read<std::uint64_t>(what + " offset");
      if (t.offset % alignment_ != 0)
        in.fail(what + " offset", "must be a multiple of the alignment " + std::to_string(alignment_),
                std::to_string(t.offset));
      tensor_index_.emplace(t.name, tensors_.size());
      tensors_.push_back(std::move(t));
    }
    // The data section starts at the next multiple of the alignment.
    const std::uint64_t end = in.position();
    header_end_ = end;
    data_offset_ = end + (alignment_ - end % alignment_) % alignment_;
    const std::uint64_t size = bytes_.size();
    if (tensors_.empty()) {
      data_offset_ = std::min(data_offset_, size);  // no data section needed
      return;
    }
    if (data_offset_ > size)
      in.fail("data section", "is truncated: it must start at offset " + std::to_string(data_offset_) + " (aligned to " +
                                  std::to_string(alignment_) + ")",
              "a file of " + std::to_string(size) + " bytes");
    const std::uint64_t data_bytes = size - data_offset_;
    std::vector<std::size_t> order(tensors_.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    for (const tensor_info& t : tensors_)
      if (t.offset > data_bytes || t.bytes > data_bytes - t.offset)
        in.fail("tensor '" + t.name + "' data",
                "must lie within the file: offset " + std::to_string(t.offset) + " + " + std::to_string(t.bytes) +
                    " bytes from the data section at " + std::to_string(data_offset_),
                "a file of " + std::to_string(size) + " bytes");
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return tensors_[a].offset < tensors_[b].offset; });
    for (std::size_t i = 1; i < order.size(); ++i) {
      const tensor_info& a = tensors_[order[i - 1]];
      const tensor_info& b = tensors_[order[i]];
      if (b.offset < a.offset + a.bytes)
        in.fail("tensor '" + b.name + "' offset",
                "must not overlap tensor '" + a.name + "' (offset " + std::to_string(a.offset) + ", " +
                    std::to_string(a.bytes) + " bytes)",
                std::to_string(b.offset));
    }
  }

  std::filesystem::path path_;
  detail::file_bytes bytes_;
  std::uint32_t version_ = 0;
  std::uint64_t alignment_ = default_alignment;
  std::uint64_t data_offset_ = 0;
  std::uint64_t header_end_ = 0;
  std::vector<std::pair<std::string, value>> metadata_;
  std::map<std::string, std::size_t> key_index_;
  std::vector<tensor_info> tensors_;
  std::map<std::string, std::size_t> tensor_index_;
};

// ---------------------------------------------------------------------------------------------
// Writing GGUF files (tests, converted models)
// ---------------------------------------------------------------------------------------------

/// @brief A metadata value for the writer: a scalar of any type, a string, or an array.
///
/// Build one with the helpers below (gguf::u32(7), gguf::f32(1e-5f), gguf::str("llama"),
/// gguf::strings({...}), gguf::f32s({...}), gguf::i32s({...}), ...); `value` itself works too.
using writer_value = value;

/// @brief A uint32 value.
[[nodiscard]] inline value u32(std::uint32_t x) { value v; v.type = value_type::uint32; v.unsigned_integer = x; v.integer = x; v.real = x; return v; }
/// @brief A uint64 value.
[[nodiscard]] inline value u64(std::uint64_t x) { value v; v.type = value_type::uint64; v.unsigned_integer = x; v.integer = static_cast<std::int64_t>(x); v.real = static_cast<double>(x); return v; }
/// @brief An int32 value.
[[nodiscard]] inline value i32(std::int32_t x) { value v; v.type = value_type::int32; v.integer = x; v.unsigned_integer = static_cast<std::uint64_t>(x); v.real = x; return v; }
/// @brief A float32 value.
[[nodiscard]] inline value f32(float x) { value v; v.type = value_type::float32; v.real = x; return v; }
/// @brief A bool value.
[[nodiscard]] inline value boolean(bool x) { value v; v.type = value_type::boolean; v.unsigned_integer = x; v.integer = x; v.real = x; return v; }
/// @brief A string value.
[[nodiscard]] inline value str(std::string x) { value v; v.type = value_type::string; v.text = std::move(x); return v; }
/// @brief An array of strings.
[[nodiscard]] inline value strings(std::vector<std::string> x) {
  value v; v.type = value_type::array; v.element_type = value_type::string; v.strings = std::move(x); return v;
}
/// @brief An array of numbers of a scalar element type (each stored as that type).
[[nodiscard]] inline value numbers(value_type element, std::vector<double> x) {
  value v; v.type = value_type::array; v.element_type = element; v.numbers = std::move(x);
  v.integers.resize(v.numbers.size());
  for (std::size_t i = 0; i < v.numbers.size(); ++i) v.integers[i] = static_cast<std::int64_t>(v.numbers[i]);
  return v;
}
/// @brief An array of float32.
[[nodiscard]] inline value f32s(std::span<const float> x) { return numbers(value_type::float32, std::vector<double>(x.begin(), x.end())); }
/// @brief An array of int32.
[[nodiscard]] inline value i32s(std::span<const std::int32_t> x) { return numbers(value_type::int32, std::vector<double>(x.begin(), x.end())); }

/// @brief A tensor for the writer: name, dimensions (ne[0] first) and its bytes in `type`.
struct writer_tensor {
  std::string name;                  ///< tensor name
  std::vector<std::uint64_t> dims;   ///< ne[0] (contiguous) first
  std::uint32_t type = 0;            ///< GGML type id
  std::vector<unsigned char> bytes;  ///< the data, exactly the size dims and type imply
};

/// @brief Encodes float32 values (row-major, rows of dims[0]) as a tensor of type F32, F16, BF16 or Q8_0.
/// @param name the tensor's name
/// @param dims ne[0] first
/// @param type the GGML type (0 F32, 1 F16, 30 BF16, 8 Q8_0)
/// @param values the product of dims floats
/// @throw tsmc::invalid_argument if the sizes disagree, the type is not one of the four, or
/// Q8_0 is asked for with dims[0] not a multiple of 32
[[nodiscard]] inline writer_tensor encode_tensor(std::string name, std::vector<std::uint64_t> dims, std::uint32_t type,
                                                 std::span<const float> values) {
  constexpr const char* function = "gguf::encode_tensor";
  std::uint64_t n = 1;
  for (std::uint64_t d : dims) n *= d;
  check_size(function, "values.size()", values.size(), "the product of dims", n);
  writer_tensor t{std::move(name), std::move(dims), type, {}};
  switch (static_cast<tensor_type>(type)) {
    case tensor_type::f32:
      t.bytes.resize(values.size_bytes());
      std::memcpy(t.bytes.data(), values.data(), values.size_bytes());
      break;
    case tensor_type::f16:
    case tensor_type::bf16:
      t.bytes.resize(values.size() * 2);
      for (std::size_t i = 0; i < values.size(); ++i) {
        const std::uint16_t h =
            type == static_cast<std::uint32_t>(tensor_type::f16) ? float_to_half(values[i]) : float_to_bf16(values[i]);
        std::memcpy(t.bytes.data() + 2 * i, &h, 2);
      }
      break;
    case tensor_type::q8_0:
      check_argument(!t.dims.empty() && t.dims[0] % q8_0_block == 0, function, "dims[0]",
                     "must be a multiple of 32 for Q8_0", t.dims.empty() ? 0 : t.dims[0]);
      t.bytes.resize(values.size() / q8_0_block * q8_0_bytes);
      quantize_q8_0(values, t.bytes.data());
      break;
    default: throw_invalid_argument(function, "type", "must be F32, F16, BF16 or Q8_0", type_name(type));
  }
  return t;
}

/// @brief Everything a GGUF file holds, for the writer.
struct contents {
  std::vector<std::pair<std::string, value>> metadata;  ///< in file order
  std::vector<writer_tensor> tensors;                   ///< in file order, data laid out in this order
  std::uint32_t version = 3;                            ///< 2 or 3 (the same layout)
  std::uint64_t alignment = default_alignment;          ///< must equal general.alignment when that key is set
};

namespace detail {

inline void put_bytes(std::vector<unsigned char>& out, const void* p, std::size_t n) {
  const auto* b = static_cast<const unsigned char*>(p);
  out.insert(out.end(), b, b + n);
}
template <class T>
void put(std::vector<unsigned char>& out, T v) {
  put_bytes(out, &v, sizeof v);
}
inline void put_string(std::vector<unsigned char>& out, const std::string& s) {
  put<std::uint64_t>(out, s.size());
  put_bytes(out, s.data(), s.size());
}
inline void put_scalar(std::vector<unsigned char>& out, value_type t, double real, std::int64_t integer,
                       std::uint64_t unsigned_integer) {
  switch (t) {
    case value_type::uint8: put<std::uint8_t>(out, static_cast<std::uint8_t>(unsigned_integer)); break;
    case value_type::int8: put<std::int8_t>(out, static_cast<std::int8_t>(integer)); break;
    case value_type::uint16: put<std::uint16_t>(out, static_cast<std::uint16_t>(unsigned_integer)); break;
    case value_type::int16: put<std::int16_t>(out, static_cast<std::int16_t>(integer)); break;
    case value_type::uint32: put<std::uint32_t>(out, static_cast<std::uint32_t>(unsigned_integer)); break;
    case value_type::int32: put<std::int32_t>(out, static_cast<std::int32_t>(integer)); break;
    case value_type::float32: put<float>(out, static_cast<float>(real)); break;
    case value_type::boolean: put<std::uint8_t>(out, unsigned_integer != 0 ? 1 : 0); break;
    case value_type::uint64: put<std::uint64_t>(out, unsigned_integer); break;
    case value_type::int64: put<std::int64_t>(out, integer); break;
    case value_type::float64: put<double>(out, real); break;
    default: break;
  }
}
inline void put_value(std::vector<unsigned char>& out, const value& v) {
  if (v.type == value_type::string) {
    put_string(out, v.text);
    return;
  }
  if (v.type != value_type::array) {
    put_scalar(out, v.type, v.real, v.integer, v.unsigned_integer);
    return;
  }
  put<std::uint32_t>(out, static_cast<std::uint32_t>(v.element_type));
  put<std::uint64_t>(out, v.size());
  if (v.element_type == value_type::string) {
    for (const std::string& s : v.strings) put_string(out, s);
  } else if (v.element_type == value_type::array) {
    for (const value& item : v.items) put_value(out, item);
  } else {
    for (std::size_t i = 0; i < v.numbers.size(); ++i) {
      const std::int64_t integer = i < v.integers.size() ? v.integers[i] : static_cast<std::int64_t>(v.numbers[i]);
      put_scalar(out, v.element_type, v.numbers[i], integer, static_cast<std::uint64_t>(integer));
    }
  }
}

}  // namespace detail

/// @brief The bytes of a GGUF file: header, metadata, tensor records (offsets assigned in order,
/// each aligned), padding, data.
/// @param c the contents
/// @return the file's bytes
/// @throw tsmc::invalid_argument if the version is not 2 or 3, the alignment not a power of two,
/// or a tensor's bytes disagree with its dimensions and type
[[nodiscard]] inline std::vector<unsigned char> serialize(const contents& c) {
  constexpr const char* function = "gguf::serialize";
  check_argument(c.version == 2 || c.version == 3, function, "version", "must be 2 or 3", c.version);
  check_argument(c.alignment != 0 && (c.alignment & (c.alignment - 1)) == 0, function, "alignment",
                 "must be a power of two", c.alignment);
  std::vector<unsigned char> out;
  detail::put<std::uint32_t>(out, 0x46554747u);
  detail::put<std::uint32_t>(out, c.version);
  detail::put<std::uint64_t>(out, c.tensors.size());
  detail::put<std::uint64_t>(out, c.metadata.size());
  for (const auto& [key, v] : c.metadata) {
    detail::put_string(out, key);
    detail::put<std::uint32_t>(out, static_cast<std::uint32_t>(v.type));
    detail::put_value(out, v);
  }
  std::uint64_t offset = 0;
  std::vector<std::uint64_t> offsets;
  for (const writer_tensor& t : c.tensors) {
    const type_traits tr = traits_of(t.type);
    check_argument(tr.name != nullptr, function, "tensor '" + t.name + "' type", "must be a GGML type id", t.type);
    std::uint64_t n = 1;
    for (std::uint64_t d : t.dims) n *= d;
    check_size(function, "tensor '" + t.name + "' bytes", t.bytes.size(), "the size its dims and type imply",
               n / tr.block * tr.bytes);
    detail::put_string(out, t.name);
    detail::put<std::uint32_t>(out, static_cast<std::uint32_t>(t.dims.size()));
    for (std::uint64_t d : t.dims) detail::put<std::uint64_t>(out, d);
    detail::put<std::uint32_t>(out, t.type);
    detail::put<std::uint64_t>(out, offset);
    offsets.push_back(offset);
    offset += t.bytes.size();
    offset += (c.alignment - offset % c.alignment) % c.alignment;
  }
  out.resize(out.size() + (c.alignment - out.size() % c.alignment) % c.alignment, 0);
  const std::size_t data = out.size();
  for (std::size_t i = 0; i < c.tensors.size(); ++i) {
    out.resize(data + offsets[i], 0);
    out.insert(out.end(), c.tensors[i].bytes.begin(), c.tensors[i].bytes.end());
  }
  return out;
}

/// @brief Writes a GGUF file (see serialize), atomically (tsmc::write_file_atomically): a failed
/// write leaves a previous file at `path` byte-identical and no temporary file behind.
/// @param path the file to create or replace
/// @param c the contents
/// @throw as serialize; tsmc::runtime_error if the file cannot be written in full
inline void write_file(const std::filesystem::path& path, const contents& c) {
  const std::vector<unsigned char> bytes = serialize(c);
  write_file_atomically(
      path.string(),
      [&bytes](std::ostream& out) {
        out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
      },
      "gguf::write_file");
}

}  // namespace tsmc::gguf
