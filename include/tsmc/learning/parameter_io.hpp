#pragma once
/// @file
/// @brief Saving and loading a twist's parameter blocks: a versioned little-endian binary file
/// with the blocks' names and shapes and a checksum, written atomically.
///
/// Format (version 1), every integer unsigned little-endian, every value an IEEE 754 binary64
/// in little-endian byte order:
///
///     magic        8 bytes  "TSMCPARM"
///     version      u32      1
///     block count  u64
///     per block:   name length u64, name bytes (no terminator), rows u64, cols u64,
///                  rows * cols values (the block's column-major flattening)
///     checksum     u64      64-bit FNV-1a of every byte before it (magic included)
///
/// Saving writes the whole file to a temporary file in the same directory and then renames it
/// over the destination (std::filesystem::rename, atomic on POSIX file systems), so an
/// interrupted save leaves the previous file intact. (The data are not fsync'ed: durability
/// across a power cut is the file system's.) Loading reads and validates the whole file (magic,
/// version, structure and truncation, checksum, then the block count, names and shapes against
/// the blocks given) before writing anything into the parameters.

#include <tsmc/core/checksum.hpp>
#include <tsmc/core/error.hpp>
#include <tsmc/core/file_output.hpp>
#include <tsmc/twists/trainable.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <bit>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace tsmc {

/// @brief The format version parameter files are written with (and the only one read).
inline constexpr std::uint32_t parameter_file_version = 1;

namespace detail {

/// The 8-byte magic at the start of a parameter file.
inline constexpr std::string_view parameter_file_magic = "TSMCPARM";

/// Appends an unsigned integer of `width` bytes, least significant byte first.
inline void put_le(std::vector<unsigned char>& out, std::uint64_t value, int width) {
  for (int i = 0; i < width; ++i) out.push_back(static_cast<unsigned char>((value >> (8 * i)) & 0xffU));
}

/// Reads little-endian fields from a byte buffer, throwing a runtime_error naming the file and
/// the field when the file ends first.
class le_reader {
 public:
  le_reader(std::span<const unsigned char> bytes, std::string file) : bytes_(bytes), file_(std::move(file)) {}

  [[nodiscard]] std::size_t position() const noexcept { return pos_; }
  [[nodiscard]] std::size_t remaining() const noexcept { return bytes_.size() - pos_; }

  /// Throws unless `count` more bytes are available for `what`.
  void need(std::uint64_t count, const std::string& what) const {
    if (count > remaining())
      throw runtime_error("tsmc::load_parameters: file '" + file_ + "' is truncated: " + what + " needs " +
                          std::to_string(count) + " bytes at offset " + std::to_string(pos_) + ", only " +
                          std::to_string(remaining()) + " left");
  }

  [[nodiscard]] std::uint64_t unsigned_le(int width, const std::string& what) {
    need(static_cast<std::uint64_t>(width), what);
    std::uint64_t value = 0;
    for (int i = 0; i < width; ++i) value |= static_cast<std::uint64_t>(bytes_[pos_ + static_cast<std::size_t>(i)]) << (8 * i);
    pos_ += static_cast<std::size_t>(width);
    return value;
  }

  [[nodiscard]] std::span<const unsigned char> bytes(std::uint64_t count, const std::string& what) {
    need(count, what);
    const auto out = bytes_.subspan(pos_, static_cast<std::size_t>(count));
    pos_ += static_cast<std::size_t>(count);
    return out;
  }

 private:
  std::span<const unsigned char> bytes_;
  std::string file_;
  std::size_t pos_ = 0;
};

/// "rows x cols" for messages.
[[nodiscard]] inline std::string shape_text(std::uint64_t rows, std::uint64_t cols) {
  return std::to_string(rows) + " x " + std::to_string(cols);
}

}  // namespace detail

/// @brief Writes parameter blocks' values to a file (format in the file documentation),
/// atomically: a temporary file in the same directory, then a rename over `path`.
/// @param path the destination (its directory must exist; an existing file is replaced)
/// @param blocks the blocks, e.g. a twist's parameters(); their gradients are not written
/// @throw tsmc::invalid_argument if a block's name is empty or repeated, or its values' size
/// differs from rows x cols
/// @throw tsmc::runtime_error naming the file if it cannot be written or renamed (the previous
/// file, if any, is then unchanged)
inline void save_parameters(const std::filesystem::path& path, std::span<const parameter_block> blocks) {
  constexpr const char* function = "save_parameters";
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    const parameter_block& b = blocks[i];
    check_argument(!b.name.empty(), function, "blocks[" + std::to_string(i) + "].name", "must not be empty", "\"\"");
    check_argument(b.rows >= 0 && b.cols >= 0 && b.values.size() == b.rows * b.cols, function,
                   "block '" + b.name + "' values.size()", "must equal rows x cols = " + detail::shape_text(
                       static_cast<std::uint64_t>(b.rows), static_cast<std::uint64_t>(b.cols)), b.values.size());
    for (std::size_t j = 0; j < i; ++j)
      check_argument(blocks[j].name != b.name, function, "blocks[" + std::to_string(i) + "].name",
                     "must be unique", b.name);
  }
  std::vector<unsigned char> bytes(detail::parameter_file_magic.begin(), detail::parameter_file_magic.end());
  detail::put_le(bytes, parameter_file_version, 4);
  detail::put_le(bytes, blocks.size(), 8);
  for (const parameter_block& b : blocks) {
    detail::put_le(bytes, b.name.size(), 8);
    bytes.insert(bytes.end(), b.name.begin(), b.name.end());
    detail::put_le(bytes, static_cast<std::uint64_t>(b.rows), 8);
    detail::put_le(bytes, static_cast<std::uint64_t>(b.cols), 8);
    for (Eigen::Index i = 0; i < b.values.size(); ++i) detail::put_le(bytes, std::bit_cast<std::uint64_t>(b.values[i]), 8);
  }
  detail::put_le(bytes, detail::fnv1a64(bytes), 8);

  write_file_atomically(
      path,
      [&bytes](std::ostream& out) {
        out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
      },
      function);
}

/// @brief Writes parameter blocks' values to a file (see the span overload).
/// @param path the destination
/// @param blocks the blocks
/// @throw as the span overload
inline void save_parameters(const std::filesystem::path& path, const std::vector<parameter_block>& blocks) {
  save_parameters(path, std::span<const parameter_block>(blocks));
}

/// @brief Writes a twist's parameters (anything with parameters() returning the blocks) to a file.
/// @param path the destination
/// @param twist the twist
/// @throw as the span overload
template <class Twist>
  requires requires(Twist& t) { { t.parameters() } -> std::convertible_to<std::vector<parameter_block>>; }
void save_parameters(const std::filesystem::path& path, Twist& twist) {
  const std::vector<parameter_block> blocks = twist.parameters();
  save_parameters(path, std::span<const parameter_block>(blocks));
}

/// @brief Reads a parameter file into blocks of the same names and shapes, in the same order.
///
/// Nothing is written into the blocks unless the whole file is valid and matches them.
/// @param path the file
/// @param blocks the destination blocks (e.g. a twist's parameters()); their values are overwritten
/// @throw tsmc::runtime_error naming the file if it cannot be read, has the wrong magic or an
/// unknown version, is truncated, has trailing bytes, or fails its checksum
/// @throw tsmc::invalid_argument naming the file if its block count, a block's name or a
/// block's shape differs from the blocks given (the message names the block and both shapes)
inline void load_parameters(const std::filesystem::path& path, std::span<parameter_block> blocks) {
  const std::string file = path.string();
  const std::string where = "tsmc::load_parameters: file '" + file + "'";
  std::vector<unsigned char> bytes;
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw runtime_error(where + " cannot be opened");
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (in.bad()) throw runtime_error(where + " cannot be read");
  }
  detail::le_reader reader(bytes, file);
  const auto magic = reader.bytes(detail::parameter_file_magic.size(), "the magic");
  if (!std::equal(magic.begin(), magic.end(), detail::parameter_file_magic.begin()))
    throw runtime_error(where + " is not a tsmc parameter file (its first bytes are not \"TSMCPARM\")");
  const std::uint64_t version = reader.unsigned_le(4, "the format version");
  if (version != parameter_file_version)
    throw runtime_error(where + " has format version " + std::to_string(version) + ", this library reads version " +
                        std::to_string(parameter_file_version));
  const std::uint64_t count = reader.unsigned_le(8, "the block count");

  struct file_block {
    std::string name;
    std::uint64_t rows = 0;
    std::uint64_t cols = 0;
    std::span<const unsigned char> values;
  };
  std::vector<file_block> found;
  for (std::uint64_t i = 0; i < count; ++i) {
    const std::string which = "block " + std::to_string(i);
    file_block b;
    const std::uint64_t name_length = reader.unsigned_le(8, which + "'s name length");
    const auto name = reader.bytes(name_length, which + "'s name");
    b.name.assign(name.begin(), name.end());
    b.rows = reader.unsigned_le(8, "block '" + b.name + "' rows");
    b.cols = reader.unsigned_le(8, "block '" + b.name + "' cols");
    // Each value takes 8 bytes: reject sizes the rest of the file cannot hold before multiplying.
    const std::uint64_t limit = reader.remaining() / 8;
    if (b.rows != 0 && b.cols > limit / b.rows)
      reader.need(reader.remaining() + 1, "block '" + b.name + "' values (" + detail::shape_text(b.rows, b.cols) + ")");
    b.values = reader.bytes(b.rows * b.cols * 8, "block '" + b.name + "' values");
    found.push_back(std::move(b));
  }
  const std::size_t payload = reader.position();
  const std::uint64_t checksum = reader.unsigned_le(8, "the checksum");
  if (reader.remaining() != 0)
    throw runtime_error(where + " has " + std::to_string(reader.remaining()) + " unexpected bytes after the checksum");
  const std::uint64_t computed = detail::fnv1a64(std::span<const unsigned char>(bytes.data(), payload));
  if (checksum != computed)
    throw runtime_error(where + " fails its checksum (stored " + std::to_string(checksum) + ", computed " +
                        std::to_string(computed) + "): the file is corrupt");

  if (found.size() != blocks.size())
    throw invalid_argument(where + " holds " + std::to_string(found.size()) + " blocks, the parameters have " +
                           std::to_string(blocks.size()));
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    const parameter_block& b = blocks[i];
    if (found[i].name != b.name)
      throw invalid_argument(where + " has block '" + found[i].name + "' at position " + std::to_string(i) +
                             " where the parameters have '" + b.name + "'");
    if (found[i].rows != static_cast<std::uint64_t>(b.rows) || found[i].cols != static_cast<std::uint64_t>(b.cols) ||
        b.values.size() != b.rows * b.cols)
      throw invalid_argument(where + " has block '" + b.name + "' of shape " +
                             detail::shape_text(found[i].rows, found[i].cols) + ", the parameters' is " +
                             detail::shape_text(static_cast<std::uint64_t>(b.rows), static_cast<std::uint64_t>(b.cols)));
  }
  // Everything is valid: copy.
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    const auto& src = found[i].values;
    for (Eigen::Index j = 0; j < blocks[i].values.size(); ++j) {
      std::uint64_t bits = 0;
      for (int byte = 0; byte < 8; ++byte)
        bits |= static_cast<std::uint64_t>(src[static_cast<std::size_t>(j) * 8 + static_cast<std::size_t>(byte)]) << (8 * byte);
      blocks[i].values[j] = std::bit_cast<double>(bits);
    }
  }
}

/// @brief Reads a parameter file into blocks (see the span overload).
/// @param path the file
/// @param blocks the destination blocks
/// @throw as the span overload
inline void load_parameters(const std::filesystem::path& path, std::vector<parameter_block>& blocks) {
  load_parameters(path, std::span<parameter_block>(blocks));
}

/// @brief Reads a parameter file into a twist's parameters (anything with parameters()).
/// @param path the file
/// @param twist the twist; unchanged unless the whole file is valid and matches its blocks
/// @throw as the span overload
template <class Twist>
  requires requires(Twist& t) { { t.parameters() } -> std::convertible_to<std::vector<parameter_block>>; }
void load_parameters(const std::filesystem::path& path, Twist& twist) {
  std::vector<parameter_block> blocks = twist.parameters();
  load_parameters(path, std::span<parameter_block>(blocks));
}

}  // namespace tsmc
