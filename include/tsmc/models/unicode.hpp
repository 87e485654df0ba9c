#pragma once
/// @file
/// @brief Unicode for tokenizers: UTF-8 decoding with U+FFFD for ill-formed bytes, and the
/// code-point predicates of tokenizer regexes (\\p{L}, \\p{N}, \\s) over generated tables.
///
/// The tables (models/unicode_tables.hpp) come from scripts/generate_unicode_tables.py, i.e.
/// python3's unicodedata: Unicode 14.0.0 as committed (detail::unicode_tables_version). A code
/// point assigned after that version reads as "other" (unassigned).

#include <tsmc/models/unicode_tables.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tsmc {

/// @brief The first letter of a code point's general category.
enum class unicode_class : std::uint8_t {
  other = 0,        ///< C*: control, format, surrogate, private use, unassigned
  letter = 1,       ///< L*: \\p{L}
  mark = 2,         ///< M*
  number = 3,       ///< N*: \\p{N}
  punctuation = 4,  ///< P*
  symbol = 5,       ///< S*
  separator = 6,    ///< Z*
};

/// @brief The general-category class of code point cp (other for cp > U+10FFFF).
[[nodiscard]] inline unicode_class unicode_class_of(char32_t cp) noexcept {
  if (cp > 0x10FFFF) return unicode_class::other;
  const auto& starts = detail::unicode_run_starts;
  const auto it = std::upper_bound(starts.begin(), starts.end(), static_cast<std::uint32_t>(cp));
  return static_cast<unicode_class>(detail::unicode_run_classes[static_cast<std::size_t>(it - starts.begin()) - 1]);
}

/// @brief \\p{L}: cp's general category is Lu, Ll, Lt, Lm or Lo.
[[nodiscard]] inline bool is_unicode_letter(char32_t cp) noexcept {
  return unicode_class_of(cp) == unicode_class::letter;
}

/// @brief \\p{N}: cp's general category is Nd, Nl or No.
[[nodiscard]] inline bool is_unicode_number(char32_t cp) noexcept {
  return unicode_class_of(cp) == unicode_class::number;
}

/// @brief \\s: cp has Unicode's White_Space property (U+0009..U+000D, U+0020, U+0085, U+00A0,
/// U+1680, U+2000..U+200A, U+2028, U+2029, U+202F, U+205F, U+3000), as in the regex engines of
/// Hugging Face tokenizers and llama.cpp. (JavaScript's \\s differs: it adds U+FEFF and lacks U+0085.)
[[nodiscard]] inline bool is_unicode_white_space(char32_t cp) noexcept {
  if (cp < 0x80) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
  const auto& ws = detail::unicode_white_space;
  return std::binary_search(ws.begin(), ws.end(), static_cast<std::uint32_t>(cp));
}

/// @brief The code point U+FFFD that stands for ill-formed UTF-8.
inline constexpr char32_t replacement_character = 0xFFFD;

/// @brief Decodes one code point of UTF-8 at text[at].
///
/// Ill-formed input gives U+FFFD for each maximal subpart (Unicode 14, section 3.9, "U+FFFD
/// substitution of maximal subparts"; the WHATWG Encoding Standard's decoder, JavaScript's
/// TextDecoder and Python's errors="replace" do the same): a byte that cannot start a sequence
/// is one U+FFFD; a valid start followed by fewer valid continuation bytes than it needs is one
/// U+FFFD covering the start and those bytes.
/// @param text the bytes
/// @param at the position, at < text.size()
/// @param length set to the bytes consumed (1 to 4)
/// @return the code point, or U+FFFD
[[nodiscard]] inline char32_t decode_utf8(std::string_view text, std::size_t at, std::size_t& length) noexcept {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(at);
  length = 1;
  if (lead < 0x80) return lead;
  std::size_t need = 0;
  char32_t cp = 0;
  unsigned char low = 0x80, high = 0xBF;  // the range of the first continuation byte (Table 3-7)
  if (lead >= 0xC2 && lead <= 0xDF) {
    need = 1;
    cp = lead & 0x1Fu;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    need = 2;
    cp = lead & 0x0Fu;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    need = 3;
    cp = lead & 0x07u;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return replacement_character;  // 0x80..0xC1, 0xF5..0xFF never start a sequence
  }
  for (std::size_t k = 1; k <= need; ++k) {
    if (at + k >= text.size()) return replacement_character;
    const unsigned char c = byte(at + k);
    if (c < low || c > high) return replacement_character;
    low = 0x80;
    high = 0xBF;
    cp = (cp << 6) | (c & 0x3Fu);
    length = k + 1;
  }
  return cp;
}

/// @brief Appends the UTF-8 encoding of cp (cp <= U+10FFFF, not a surrogate) to out.
inline void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

/// @brief The text as well-formed UTF-8: each maximal ill-formed subpart replaced by U+FFFD
/// (EF BF BD), as decode_utf8 reads it; well-formed text comes back unchanged.
[[nodiscard]] inline std::string to_valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t at = 0, n = 0; at < text.size(); at += n) {
    const char32_t cp = decode_utf8(text, at, n);
    if (cp == replacement_character && !(n == 3 && text.substr(at, 3) == "\xEF\xBF\xBD"))
      append_utf8(out, replacement_character);
    else
      out.append(text.substr(at, n));
  }
  return out;
}

/// @brief The code points of well-formed or ill-formed UTF-8 (ill-formed subparts as U+FFFD).
[[nodiscard]] inline std::u32string decode_utf8(std::string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (std::size_t at = 0, n = 0; at < text.size(); at += n) out.push_back(decode_utf8(text, at, n));
  return out;
}

}  // namespace tsmc
