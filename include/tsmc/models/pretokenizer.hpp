#pragma once
/// @file
/// @brief The pre-tokenizers of byte-level BPE vocabularies (GGUF's tokenizer.ggml.pre): the
/// GPT-2, Llama 3 and Qwen2 splitting regexes, written as scanners over code points.
///
/// Each scanner takes, at every position, the first alternative of its regex that matches there,
/// with the regex's greedy quantifiers and backtracking, and is checked against the regexes as
/// real tokenizers run them (tests/peers/bpe_peers.mjs). \\p{L}, \\p{N} and \\s are
/// is_unicode_letter, is_unicode_number and is_unicode_white_space (models/unicode.hpp); "other"
/// below is a code point that is none of the three.

#include <tsmc/core/error.hpp>
#include <tsmc/models/unicode.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tsmc {

/// @brief A pre-tokenizer: the regex that cuts text into the words BPE then merges within.
enum class pretokenizer {
  /// GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+
  gpt2,
  /// Llama 3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}|
  /// ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+ (the (?i) on ASCII letters)
  llama3,
  /// Qwen2: Llama 3's regex with \\p{N} (one digit per word) instead of \\p{N}{1,3}
  qwen2,
};

/// @brief The names pretokenizer_from_name knows.
inline constexpr std::string_view pretokenizer_names =
    "gpt2, gpt-2, llama-bpe, llama3, llama-v3, qwen2, deepseek-r1-qwen";

/// @brief The pre-tokenizer that tokenizer.ggml.pre names, if known.
///
/// "gpt2", "gpt-2" -> gpt2; "llama-bpe", "llama3", "llama-v3" -> llama3; "qwen2",
/// "deepseek-r1-qwen" -> qwen2 (the names llama.cpp's converter writes for these regexes).
[[nodiscard]] inline std::optional<pretokenizer> find_pretokenizer(std::string_view name) noexcept {
  if (name == "gpt2" || name == "gpt-2") return pretokenizer::gpt2;
  if (name == "llama-bpe" || name == "llama3" || name == "llama-v3") return pretokenizer::llama3;
  if (name == "qwen2" || name == "deepseek-r1-qwen") return pretokenizer::qwen2;
  return std::nullopt;
}

/// @brief The pre-tokenizer that tokenizer.ggml.pre names (see find_pretokenizer).
/// @throw tsmc::invalid_argument naming the value and the names known
[[nodiscard]] inline pretokenizer pretokenizer_from_name(std::string_view name) {
  if (const std::optional<pretokenizer> kind = find_pretokenizer(name)) return *kind;
  throw_invalid_argument("pretokenizer_from_name", "name", "must be one of " + std::string(pretokenizer_names),
                         "\"" + std::string(name) + "\"");
}

/// @brief The canonical name of a pre-tokenizer ("gpt2", "llama-bpe", "qwen2").
[[nodiscard]] inline std::string_view pretokenizer_name(pretokenizer kind) noexcept {
  switch (kind) {
    case pretokenizer::gpt2: return "gpt2";
    case pretokenizer::llama3: return "llama-bpe";
    case pretokenizer::qwen2: return "qwen2";
  }
  return "unknown";
}

namespace detail {

/// The length in code points of the regex match at cps[i] (i < cps.size()).
[[nodiscard]] inline std::size_t pretokenizer_match(pretokenizer kind, const std::u32string& cps, std::size_t i) {
  const std::size_t n = cps.size();
  const auto letter = [&](std::size_t j) { return j < n && is_unicode_letter(cps[j]); };
  const auto number = [&](std::size_t j) { return j < n && is_unicode_number(cps[j]); };
  const auto space = [&](std::size_t j) { return j < n && is_unicode_white_space(cps[j]); };
  const auto other = [&](std::size_t j) { return j < n && !letter(j) && !number(j) && !space(j); };
  const auto newline = [&](std::size_t j) { return j < n && (cps[j] == U'\r' || cps[j] == U'\n'); };
  const auto run = [&](std::size_t j, const auto& in_class) {
    while (in_class(j)) ++j;
    return j;
  };
  const bool gpt2 = kind == pretokenizer::gpt2;
  // Contractions: 's 't 're 've 'm 'll 'd (any ASCII case but in GPT-2's).
  if (cps[i] == U'\'' && i + 1 < n) {
    const auto is = [&](std::size_t j, char32_t lower) {
      return j < n && (cps[j] == lower || (!gpt2 && cps[j] == lower - (U'a' - U'A')));
    };
    if (is(i + 1, U's') || is(i + 1, U't') || is(i + 1, U'm') || is(i + 1, U'd')) return 2;
    if ((is(i + 1, U'r') && is(i + 2, U'e')) || (is(i + 1, U'v') && is(i + 2, U'e')) ||
        (is(i + 1, U'l') && is(i + 2, U'l')))
      return 3;
  }
  if (gpt2) {
    // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": an optional space, then a run of one class.
    const std::size_t j = cps[i] == U' ' ? i + 1 : i;
    if (letter(j)) return run(j, letter) - i;
    if (number(j)) return run(j, number) - i;
    if (other(j)) return run(j, other) - i;
  } else {
    // "[^\r\n\p{L}\p{N}]?\p{L}+": one optional code point that is no newline, letter or number.
    if (!newline(i) && !letter(i) && !number(i) && letter(i + 1)) return run(i + 1, letter) - i;
    if (letter(i)) return run(i, letter) - i;
    // "\p{N}{1,3}" (Llama 3) or "\p{N}" (Qwen2).
    if (number(i)) {
      const std::size_t most = kind == pretokenizer::llama3 ? 3 : 1;
      std::size_t j = i;
      while (j - i < most && number(j)) ++j;
      return j - i;
    }
    // " ?[^\s\p{L}\p{N}]+[\r\n]*".
    const std::size_t j = cps[i] == U' ' ? i + 1 : i;
    if (other(j)) return run(run(j, other), newline) - i;
    // "\s*[\r\n]+": the white space up to and including its last newline.
    const std::size_t end = run(i, space);
    for (std::size_t p = end; p > i; --p)
      if (newline(p - 1)) return p - i;
  }
  // "\s+(?!\S)" then "\s+": a run of white space, less its last code point when a non-space follows
  // (that one starts the next word), unless the run is that one code point.
  const std::size_t end = run(i, space);
  if (end == n || end - i == 1) return end - i;
  return end - i - 1;
}

}  // namespace detail

/// @brief Splits text into pre-tokenizer words.
///
/// Ill-formed UTF-8 is read as decode_utf8 reads it (each maximal ill-formed subpart one U+FFFD,
/// an "other" code point); the words are views of the input's bytes and cover it exactly, in order.
/// @param kind the regex
/// @param text the text (any bytes)
/// @return the words, none empty
[[nodiscard]] inline std::vector<std::string_view> pretokenize(pretokenizer kind, std::string_view text) {
  std::u32string cps;
  std::vector<std::size_t> offsets;  // the byte offset of each code point, then text.size()
  cps.reserve(text.size());
  offsets.reserve(text.size() + 1);
  for (std::size_t at = 0, length = 0; at < text.size(); at += length) {
    offsets.push_back(at);
    cps.push_back(decode_utf8(text, at, length));
  }
  offsets.push_back(text.size());
  std::vector<std::string_view> words;
  for (std::size_t i = 0; i < cps.size();) {
    const std::size_t length = detail::pretokenizer_match(kind, cps, i);
    words.push_back(text.substr(offsets[i], offsets[i + length] - offsets[i]));
    i += length;
  }
  return words;
}

}  // namespace tsmc
