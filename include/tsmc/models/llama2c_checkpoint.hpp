#pragma once
/// @file
/// @brief llama2.c checkpoints (the "legacy" version-0 export of the llama2.c project): the
/// header, its validation against the file size, read-only memory-mapped loading with a plain
/// read as the fallback, and a writer (with random weights) for tests and benchmarks.
///
/// File layout (little-endian): seven int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
/// vocab_size, seq_len; a negative vocab_size means an unshared classifier), then float32 arrays
/// token_embedding (V x dim), rms_att (L x dim), wq (L x dim x dim), wk, wv (L x kv_dim x dim),
/// wo (L x dim x dim), rms_ffn (L x dim), w1 (L x hidden x dim), w2 (L x dim x hidden),
/// w3 (L x hidden x dim), rms_final (dim), two skipped RoPE tables (seq_len x head_size / 2 each),
/// and wcls (V x dim) only when unshared. Each matrix is stored [out][in] (row-major).

#include <tsmc/core/error.hpp>
#include <tsmc/core/random.hpp>

#include <Eigen/Core>

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define TSMC_LLAMA2C_HAVE_MMAP 1
#else
#define TSMC_LLAMA2C_HAVE_MMAP 0
#endif

namespace tsmc::llama2c {

/// @brief The hyperparameters in a checkpoint's header.
///
/// vocab_size is positive here; whether the classifier is shared with the token embedding is
/// the separate flag (the file encodes an unshared classifier as a negative vocab_size).
struct config {
  std::int32_t dim = 0;                ///< model width d
  std::int32_t hidden_dim = 0;         ///< feed-forward width
  std::int32_t n_layers = 0;           ///< number of transformer blocks
  std::int32_t n_heads = 0;            ///< query heads (divides dim)
  std::int32_t n_kv_heads = 0;         ///< key/value heads (divides n_heads; fewer: grouped-query attention)
  std::int32_t vocab_size = 0;         ///< V (> 0)
  std::int32_t seq_len = 0;            ///< the longest sequence the model accepts
  bool shared_classifier = true;       ///< wcls is the token embedding (no wcls array in the file)

  /// @brief dim / n_heads.
  [[nodiscard]] std::size_t head_size() const noexcept {
    return static_cast<std::size_t>(dim) / static_cast<std::size_t>(n_heads);
  }
  /// @brief dim * n_kv_heads / n_heads, the width of the keys and values.
  [[nodiscard]] std::size_t kv_dim() const noexcept {
    return static_cast<std::size_t>(n_kv_heads) * head_size();
  }
};

/// @brief How a checkpoint's weights reach memory.
enum class load_mode {
  automatic,  ///< memory-map where the platform can, else read
  map,        ///< memory-map (read-only, private); throws if mapping fails
  read,       ///< read the file into an owned buffer
};

/// @brief Size of the header in bytes (seven int32).
inline constexpr std::size_t header_bytes = 7 * sizeof(std::int32_t);

namespace detail {

/// a * b + c in 64 bits, or false on overflow.
[[nodiscard]] inline bool checked_mul_add(std::uint64_t a, std::uint64_t b, std::uint64_t c, std::uint64_t& out) {
  constexpr std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
  if (a != 0 && b > max / a) return false;
  const std::uint64_t product = a * b;
  if (product > max - c) return false;
  out = product + c;
  return true;
}

/// Offsets (in floats, from the first float after the header) of every array of a checkpoint.
struct layout {
  std::uint64_t token_embedding = 0, rms_att = 0, wq = 0, wk = 0, wv = 0, wo = 0, rms_ffn = 0, w1 = 0, w2 = 0,
                w3 = 0, rms_final = 0, rope = 0, wcls = 0;
  std::uint64_t total = 0;  ///< floats after the header
  bool ok = true;           ///< false when a size overflows 64 bits
};

/// The layout of a validated config (fields positive, n_heads | dim, n_kv_heads | n_heads).
[[nodiscard]] inline layout make_layout(const config& c) {
  layout out;
  const auto d = static_cast<std::uint64_t>(c.dim), h = static_cast<std::uint64_t>(c.hidden_dim),
             l = static_cast<std::uint64_t>(c.n_layers), v = static_cast<std::uint64_t>(c.vocab_size),
             s = static_cast<std::uint64_t>(c.seq_len), kv = static_cast<std::uint64_t>(c.kv_dim()),
             hs = static_cast<std::uint64_t>(c.head_size());
  std::uint64_t at = 0;
  // Appends an array of count = a * b * cc floats at the current offset.
  auto add = [&](std::uint64_t& field, std::uint64_t a, std::uint64_t b, std::uint64_t cc) {
    field = at;
    std::uint64_t ab = 0, n = 0;
    if (!out.ok || !checked_mul_add(a, b, 0, ab) || !checked_mul_add(ab, cc, at, n)) {
      out.ok = false;
      return;
    }
    at = n;
  };
  add(out.token_embedding, v, d, 1);
  add(out.rms_att, l, d, 1);
  add(out.wq, l, d, d);
  add(out.wk, l, kv, d);
  add(out.wv, l, kv, d);
  add(out.wo, l, d, d);
  add(out.rms_ffn, l, d, 1);
  add(out.w1, l, h, d);
  add(out.w2, l, d, h);
  add(out.w3, l, h, d);
  add(out.rms_final, d, 1, 1);
  add(out.rope, s, hs, 1);  // two tables of seq_len * head_size / 2 floats: seq_len * head_size in all
  if (c.shared_classifier) {
    out.wcls = out.token_embedding;
  } else {
    add(out.wcls, v, d, 1);
  }
  out.total = at;
  return out;
}

/// "'path'" for messages.
[[nodiscard]] inline std::string quoted(const std::filesystem::path& path) {
  std::string out(1, '\'');  // appended, not "'" + string: GCC 12 warns (-Wrestrict) on that form
  out += path.string();
  out += '\'';
  return out;
}

/// Little-endian int32 from 4 bytes.
[[nodiscard]] inline std::int32_t read_le_int32(const unsigned char* p) noexcept {
  const std::uint32_t u = static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
                          (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
  return static_cast<std::int32_t>(u);
}

/// Throws unless the host is little-endian (the format's byte order, read in place).
inline void require_little_endian(const char* function) {
  if constexpr (std::endian::native != std::endian::little)
    throw_runtime_error(function, "host byte order", "must be little-endian to read llama2.c files in place",
                        "big-endian");
}

/// Owns a checkpoint's bytes: a read-only mapping or a buffer. Move-only.
class file_storage {
 public:
  file_storage() = default;
  file_storage(const file_storage&) = delete;
  file_storage& operator=(const file_storage&) = delete;
  file_storage(file_storage&& other) noexcept { *this = std::move(other); }
  file_storage& operator=(file_storage&& other) noexcept {
    if (this != &other) {
      release();
      map_ = std::exchange(other.map_, nullptr);
      map_bytes_ = std::exchange(other.map_bytes_, 0);
      buffer_ = std::move(other.buffer_);
      floats_ = std::exchange(other.floats_, nullptr);
    }
    return *this;
  }
  ~file_storage() { release(); }

  /// Maps the whole file read-only; false if the platform or the call refuses.
  [[nodiscard]] bool try_map(const std::filesystem::path& path, std::uint64_t bytes) {
#if TSMC_LLAMA2C_HAVE_MMAP
    const int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) return false;
    void* p = ::mmap(nullptr, static_cast<std::size_t>(bytes), PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);  // the mapping keeps the file alive
    if (p == MAP_FAILED) return false;
    map_ = p;
    map_bytes_ = static_cast<std::size_t>(bytes);
    floats_ = reinterpret_cast<const float*>(static_cast<const unsigned char*>(p) + header_bytes);
    return true;
#else
    (void)path;
    (void)bytes;
    return false;
#endif
  }

  /// Reads the floats after the header into an owned buffer.
  void read(const std::filesystem::path& path, std::uint64_t floats, const char* function) {
    buffer_.resize(static_cast<std::size_t>(floats));
    std::ifstream in(path, std::ios::binary);
    in.seekg(static_cast<std::streamoff>(header_bytes));
    in.read(reinterpret_cast<char*>(buffer_.data()), static_cast<std::streamsize>(floats * sizeof(float)));
    if (!in)
      throw_runtime_error(function, quoted(path), "could not be read in full", std::to_string(floats) + " floats");
    floats_ = buffer_.data();
  }

  /// The first float after the header.
  [[nodiscard]] const float* floats() const noexcept { return floats_; }
  /// Whether the weights are a memory mapping of the file.
  [[nodiscard]] bool mapped() const noexcept { return map_ != nullptr; }

 private:
  void release() noexcept {
#if TSMC_LLAMA2C_HAVE_MMAP
    if (map_ != nullptr) ::munmap(map_, map_bytes_);
#endif
    map_ = nullptr;
    map_bytes_ = 0;
    buffer_.clear();
    floats_ = nullptr;
  }

  void* map_ = nullptr;
  std::size_t map_bytes_ = 0;
  std::vector<float> buffer_;
  const float* floats_ = nullptr;
};

}  // namespace detail

/// @brief Reads and validates a checkpoint's header without touching the weights.
///
/// Checks, in order: the file opens; it holds the 28-byte header; dim, hidden_dim, n_layers,
/// n_heads, n_kv_heads and seq_len are positive and vocab_size is non-zero; n_heads divides dim;
/// n_kv_heads divides n_heads; head_size = dim / n_heads is even (RoPE rotates pairs); the file
/// size equals the header's 28 bytes plus 4 bytes per float of the layout the header implies. A
/// header with two or more fields of implausible size (a tokenizer, a text or an ARPA file given
/// as a checkpoint) is reported as "does not look like a llama2.c checkpoint".
/// @param path the checkpoint file
/// @return the header as a config
/// @throw tsmc::runtime_error naming the file and the field that fails
[[nodiscard]] inline config read_config(const std::filesystem::path& path) {
  constexpr const char* function = "llama2c::read_config";
  detail::require_little_endian(function);
  const std::string file = detail::quoted(path);
  std::error_code ec;
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) throw_runtime_error(function, file, "must be a readable regular file", ec.message());
  if (size < header_bytes)
    throw_runtime_error(function, file + " header",
                        "is truncated: the header needs " + std::to_string(header_bytes) + " bytes",
                        std::to_string(size) + " bytes");
  unsigned char raw[header_bytes];
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(raw), static_cast<std::streamsize>(header_bytes));
  if (!in) throw_runtime_error(function, file + " header", "could not be read", "a read error");
  std::int32_t field[7];
  for (std::size_t i = 0; i < 7; ++i) field[i] = detail::read_le_int32(raw + 4 * i);

  static constexpr const char* names[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size",
                                           "seq_len"};
  // A file that is not a checkpoint at all (a tokenizer, a text file, an ARPA file) fails here
  // with a message that says so, before any field's own rule: the seven header int32s of a real
  // checkpoint are positive (vocab_size may be negative) and far below these bounds; two or more
  // fields outside them are not one corrupt field but another kind of file.
  static constexpr std::int64_t plausible[7] = {1 << 16, 1 << 18, 1 << 10, 1 << 10, 1 << 10, 1 << 24, 1 << 22};
  std::size_t implausible = 0;
  for (std::size_t i = 0; i < 7; ++i) {
    const std::int64_t v = i == 5 ? std::abs(static_cast<std::int64_t>(field[i])) : field[i];
    implausible += (v <= 0 || v > plausible[i]) ? 1 : 0;
  }
  if (implausible >= 2) {
    std::string header;
    for (std::size_t j = 0; j < 7; ++j) header += (j ? ", " : "") + std::string(names[j]) + " " + std::to_string(field[j]);
    throw_runtime_error(function, file,
                        "does not look like a llama2.c checkpoint (a tokenizer, a text or an ARPA file?): its first 28 "
                        "bytes must be 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len) "
                        "of plausible size, and " + std::to_string(implausible) + " of them are not",
                        header);
  }
  for (std::size_t i = 0; i < 7; ++i) {
    if (i == 5) {
      if (field[i] == 0 || field[i] == std::numeric_limits<std::int32_t>::min())
        throw_runtime_error(function, file + " header field vocab_size",
                            "must be non-zero (negative: unshared classifier)", field[i]);
    } else if (field[i] <= 0) {
      throw_runtime_error(function, file + " header field " + names[i], "must be positive", field[i]);
    }
  }
  config c{.dim = field[0], .hidden_dim = field[1], .n_layers = field[2], .n_heads = field[3],
           .n_kv_heads = field[4], .vocab_size = field[5] < 0 ? -field[5] : field[5], .seq_len = field[6],
           .shared_classifier = field[5] > 0};
  if (c.dim % c.n_heads != 0)
    throw_runtime_error(function, file + " header field n_heads",
                        "must divide dim = " + std::to_string(c.dim), c.n_heads);
  if (c.n_heads % c.n_kv_heads != 0)
    throw_runtime_error(function, file + " header field n_kv_heads",
                        "must divide n_heads = " + std::to_string(c.n_heads), c.n_kv_heads);
  if (c.head_size() % 2 != 0)
    throw_runtime_error(function, file + " header field n_heads",
                        "must leave an even head_size = dim / n_heads (RoPE rotates pairs), dim = " +
                            std::to_string(c.dim) + " gives head_size " + std::to_string(c.head_size()),
                        c.n_heads);
  const detail::layout lay = detail::make_layout(c);
  std::uint64_t expected = 0;
  if (!lay.ok || !detail::checked_mul_add(lay.total, sizeof(float), header_bytes, expected))
    throw_runtime_error(function, file + " header", "must describe a model whose size fits 64 bits",
                        "an overflowing size");
  if (size != expected)
    throw_runtime_error(function, file + " file size",
                        std::string(size < expected ? "is truncated: it " : "") + "must equal " +
                            std::to_string(expected) + " bytes, the size the header implies (" +
                            (c.shared_classifier ? "shared" : "unshared") + " classifier)",
                        std::to_string(size) + " bytes");
  return c;
}

/// @brief A loaded llama2.c checkpoint: its config and read-only views of its weights.
///
/// The weights live in a read-only memory mapping of the file (the file is their storage; pages
/// load on first use) or, as the fallback, in a buffer read from the file. Move-only; share one
/// between models with std::shared_ptr (tsmc::llama2c::model does).
class checkpoint {
 public:
  /// @brief A row-major float matrix view of a weight array ([out][in]).
  using matrix_view = Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;
  /// @brief A float vector view of a weight array.
  using vector_view = Eigen::Map<const Eigen::VectorXf>;

  /// @brief Loads a checkpoint after validating its header against the file size (read_config):
  /// nothing is allocated or mapped before every check passes.
  /// @param path the .bin file
  /// @param mode memory-map (default where available, reading if mapping fails), map only, or read
  /// @throw tsmc::runtime_error naming the file and the field on a bad file (see read_config), or
  /// if mode is load_mode::map and the file cannot be mapped
  explicit checkpoint(const std::filesystem::path& path, load_mode mode = load_mode::automatic)
      : config_(read_config(path)), layout_(detail::make_layout(config_)), path_(path) {
    constexpr const char* function = "llama2c::checkpoint::checkpoint";
    const std::uint64_t bytes = header_bytes + layout_.total * sizeof(float);
    bool mapped = false;
    if (mode != load_mode::read) mapped = storage_.try_map(path, bytes);
    if (!mapped) {
      if (mode == load_mode::map)
        throw_runtime_error(function, detail::quoted(path), "could not be memory-mapped", "load_mode::map");
      storage_.read(path, layout_.total, function);
    }
  }

  /// @brief The header.
  [[nodiscard]] const config& configuration() const noexcept { return config_; }
  /// @brief The file the weights came from.
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  /// @brief Whether the weights are a memory mapping of the file (false: read into a buffer).
  [[nodiscard]] bool mapped() const noexcept { return storage_.mapped(); }

  /// @brief token_embedding_table, V x dim.
  [[nodiscard]] matrix_view token_embedding() const noexcept { return matrix(layout_.token_embedding, vocab(), dim()); }
  /// @brief rms_att_weight of layer l (dim).
  [[nodiscard]] vector_view rms_att(std::size_t l) const noexcept { return vec(layout_.rms_att + l * dim(), dim()); }
  /// @brief wq of layer l, dim x dim ([out][in]).
  [[nodiscard]] matrix_view wq(std::size_t l) const noexcept { return matrix(layout_.wq + l * dim() * dim(), dim(), dim()); }
  /// @brief wk of layer l, kv_dim x dim.
  [[nodiscard]] matrix_view wk(std::size_t l) const noexcept { return matrix(layout_.wk + l * kv() * dim(), kv(), dim()); }
  /// @brief wv of layer l, kv_dim x dim.
  [[nodiscard]] matrix_view wv(std::size_t l) const noexcept { return matrix(layout_.wv + l * kv() * dim(), kv(), dim()); }
  /// @brief wo of layer l, dim x dim.
  [[nodiscard]] matrix_view wo(std::size_t l) const noexcept { return matrix(layout_.wo + l * dim() * dim(), dim(), dim()); }
  /// @brief rms_ffn_weight of layer l (dim).
  [[nodiscard]] vector_view rms_ffn(std::size_t l) const noexcept { return vec(layout_.rms_ffn + l * dim(), dim()); }
  /// @brief w1 of layer l, hidden_dim x dim.
  [[nodiscard]] matrix_view w1(std::size_t l) const noexcept { return matrix(layout_.w1 + l * hid() * dim(), hid(), dim()); }
  /// @brief w2 of layer l, dim x hidden_dim.
  [[nodiscard]] matrix_view w2(std::size_t l) const noexcept { return matrix(layout_.w2 + l * dim() * hid(), dim(), hid()); }
  /// @brief w3 of layer l, hidden_dim x dim.
  [[nodiscard]] matrix_view w3(std::size_t l) const noexcept { return matrix(layout_.w3 + l * hid() * dim(), hid(), dim()); }
  /// @brief rms_final_weight (dim).
  [[nodiscard]] vector_view rms_final() const noexcept { return vec(layout_.rms_final, dim()); }
  /// @brief The classifier wcls, V x dim (the token embedding when shared).
  [[nodiscard]] matrix_view wcls() const noexcept { return matrix(layout_.wcls, vocab(), dim()); }

 private:
  [[nodiscard]] std::size_t dim() const noexcept { return static_cast<std::size_t>(config_.dim); }
  [[nodiscard]] std::size_t hid() const noexcept { return static_cast<std::size_t>(config_.hidden_dim); }
  [[nodiscard]] std::size_t kv() const noexcept { return config_.kv_dim(); }
  [[nodiscard]] std::size_t vocab() const noexcept { return static_cast<std::size_t>(config_.vocab_size); }
  [[nodiscard]] matrix_view matrix(std::uint64_t offset, std::size_t rows, std::size_t cols) const noexcept {
    return matrix_view(storage_.floats() + offset, static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(cols));
  }
  [[nodiscard]] vector_view vec(std::uint64_t offset, std::size_t n) const noexcept {
    return vector_view(storage_.floats() + offset, static_cast<Eigen::Index>(n));
  }

  config config_;
  detail::layout layout_;
  std::filesystem::path path_;
  detail::file_storage storage_;
};

// ---------------------------------------------------------------------------------------------
// Writing checkpoints (tests, benchmarks, converted models)
// ---------------------------------------------------------------------------------------------

namespace detail {
/// checkpoint_floats for `function`: checks every field of c by name, then the layout's size.
[[nodiscard]] inline std::size_t checked_float_count(const config& c, const char* function) {
  const std::pair<const char*, std::int32_t> fields[] = {
      {"config.dim", c.dim},         {"config.hidden_dim", c.hidden_dim}, {"config.n_layers", c.n_layers},
      {"config.n_heads", c.n_heads}, {"config.n_kv_heads", c.n_kv_heads}, {"config.vocab_size", c.vocab_size},
      {"config.seq_len", c.seq_len}};
  for (const auto& [name, value] : fields) check_argument(value > 0, function, name, "must be positive", value);
  check_argument(c.dim % c.n_heads == 0, function, "config.n_heads", "must divide config.dim = " + std::to_string(c.dim),
                 c.n_heads);
  check_argument(c.n_heads % c.n_kv_heads == 0, function, "config.n_kv_heads",
                 "must divide config.n_heads = " + std::to_string(c.n_heads), c.n_kv_heads);
  check_argument(c.head_size() % 2 == 0, function, "config.n_heads",
                 "must leave an even head_size = dim / n_heads (RoPE rotates pairs), dim = " + std::to_string(c.dim) +
                     " gives head_size " + std::to_string(c.head_size()),
                 c.n_heads);
  const detail::layout lay = detail::make_layout(c);
  check_argument(lay.ok && lay.total <= std::numeric_limits<std::size_t>::max() / sizeof(float), function, "config",
                 "must describe a model that fits in memory", "an overflowing size");
  return static_cast<std::size_t>(lay.total);
}
}  // namespace detail

/// @brief The number of floats after the header for a config (the skipped RoPE tables included,
/// wcls included when unshared).
/// @param c the config
/// @return the float count
/// @throw tsmc::invalid_argument "tsmc::llama2c::checkpoint_floats: config.<field> ..." naming the
/// field and its value if a field is out of range (as read_config checks), or if the size overflows
[[nodiscard]] inline std::size_t checkpoint_floats(const config& c) {
  return detail::checked_float_count(c, "llama2c::checkpoint_floats");
}

/// @brief Writes a checkpoint: the header (vocab_size negated for an unshared classifier) and
/// the floats in file order.
/// @param path the file to create or overwrite
/// @param c the config
/// @param floats checkpoint_floats(c) values in the file's order (see the file documentation)
/// @throw tsmc::invalid_argument if floats has the wrong size or c is invalid;
/// tsmc::runtime_error if the file cannot be written
inline void write_checkpoint(const std::filesystem::path& path, const config& c, std::span<const float> floats) {
  constexpr const char* function = "llama2c::write_checkpoint";
  detail::require_little_endian(function);
  check_size(function, "floats.size()", floats.size(), "checkpoint_floats(config)",
             detail::checked_float_count(c, function));
  const std::int32_t header[7] = {c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads,
                                  c.shared_classifier ? c.vocab_size : -c.vocab_size, c.seq_len};
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(header), sizeof header);
  out.write(reinterpret_cast<const char*>(floats.data()), static_cast<std::streamsize>(floats.size_bytes()));
  out.close();
  if (!out) throw_runtime_error(function, detail::quoted(path), "could not be written", "a write error");
}

/// @brief Random weights in file order for a config, reproducible from a seed.
///
/// Each matrix entry is uniform on (-a, a) with a = scale * sqrt(3 / in) (variance scale^2 / in,
/// so a product with a unit-RMS input has entries of standard deviation about scale); the token
/// embedding (the classifier when shared) uses in = dim; the RMS-norm weights are 1 + U(-0.1, 0.1);
/// the skipped RoPE tables are 0.
/// @param c the config
/// @param seed the seed
/// @param scale the weights' scale (> 0); logits have a standard deviation of about scale
/// @return checkpoint_floats(c) floats
/// @throw tsmc::invalid_argument if c is invalid or scale is not positive and finite
[[nodiscard]] inline std::vector<float> random_weights(const config& c, std::uint64_t seed, double scale = 1.0) {
  constexpr const char* function = "llama2c::random_weights";
  check_argument(std::isfinite(scale) && scale > 0.0, function, "scale", "must be positive and finite", scale);
  std::vector<float> w(detail::checked_float_count(c, function));
  const detail::layout lay = detail::make_layout(c);
  default_engine rng(seed);
  auto fill = [&](std::uint64_t from, std::uint64_t count, double in) {
    const double a = scale * std::sqrt(3.0 / in);
    for (std::uint64_t i = from; i < from + count; ++i) w[i] = static_cast<float>(a * (2.0 * uniform01(rng) - 1.0));
  };
  auto fill_norm = [&](std::uint64_t from, std::uint64_t count) {
    for (std::uint64_t i = from; i < from + count; ++i) w[i] = static_cast<float>(1.0 + 0.2 * (uniform01(rng) - 0.5));
  };
  const auto d = static_cast<double>(c.dim), h = static_cast<double>(c.hidden_dim);
  const std::uint64_t D = static_cast<std::uint64_t>(c.dim), H = static_cast<std::uint64_t>(c.hidden_dim),
                      L = static_cast<std::uint64_t>(c.n_layers), V = static_cast<std::uint64_t>(c.vocab_size),
                      KV = c.kv_dim();
  fill(lay.token_embedding, V * D, d);
  fill_norm(lay.rms_att, L * D);
  fill(lay.wq, L * D * D, d);
  fill(lay.wk, L * KV * D, d);
  fill(lay.wv, L * KV * D, d);
  fill(lay.wo, L * D * D, d);
  fill_norm(lay.rms_ffn, L * D);
  fill(lay.w1, L * H * D, d);
  fill(lay.w2, L * D * H, h);
  fill(lay.w3, L * H * D, d);
  fill_norm(lay.rms_final, D);
  if (!c.shared_classifier) fill(lay.wcls, V * D, d);
  return w;
}

/// @brief Writes a checkpoint with random_weights(c, seed, scale).
/// @param path the file to create or overwrite
/// @param c the config (shared_classifier selects the layout)
/// @param seed the seed
/// @param scale the weights' scale (see random_weights)
/// @throw as random_weights and write_checkpoint
inline void make_random_checkpoint(const std::filesystem::path& path, const config& c, std::uint64_t seed,
                                   double scale = 1.0) {
  const std::vector<float> w = random_weights(c, seed, scale);
  write_checkpoint(path, c, w);
}

}  // namespace tsmc::llama2c
