#pragma once
/// @file
/// @brief The checksum of the library's file formats: 64-bit FNV-1a (Fowler, Noll, Vo) over the
/// payload's bytes, and its text form (16 lowercase hexadecimal digits).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace tsmc::detail {

/// 64-bit FNV-1a of a byte range.
[[nodiscard]] inline std::uint64_t fnv1a64(std::span<const unsigned char> bytes) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const unsigned char b : bytes) {
    h ^= b;
    h *= 0x100000001b3ULL;
  }
  return h;
}

/// 64-bit FNV-1a of a string's bytes.
[[nodiscard]] inline std::uint64_t fnv1a64(std::string_view text) noexcept {
  return fnv1a64(std::span<const unsigned char>(reinterpret_cast<const unsigned char*>(text.data()), text.size()));
}

/// A checksum as 16 lowercase hexadecimal digits.
[[nodiscard]] inline std::string checksum_hex(std::uint64_t value) {
  constexpr char digits[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = digits[value & 0xfU];
    value >>= 4;
  }
  return out;
}

/// The value of exactly 16 hexadecimal digits (either case); nullopt for anything else.
[[nodiscard]] inline std::optional<std::uint64_t> parse_checksum_hex(std::string_view text) noexcept {
  if (text.size() != 16) return std::nullopt;
  std::uint64_t value = 0;
  for (const char c : text) {
    unsigned digit = 0;
    if (c >= '0' && c <= '9') digit = static_cast<unsigned>(c - '0');
    else if (c >= 'a' && c <= 'f') digit = static_cast<unsigned>(c - 'a') + 10U;
    else if (c >= 'A' && c <= 'F') digit = static_cast<unsigned>(c - 'A') + 10U;
    else return std::nullopt;
    value = (value << 4) | digit;
  }
  return value;
}

}  // namespace tsmc::detail
