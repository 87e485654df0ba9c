#pragma once
/// @file
/// @brief The bytes each token adds to a decoded text: the bridge from a tokenizer to byte-level
/// constraints (regular expressions, grammars, lexical constraints).
///
/// A token_byte_table reproduces a tokenizer's decode exactly, including its context rules:
/// - llama2.c's tokenizer: a byte-fallback token "<0xHH>" adds its byte; a piece following BOS
///   loses its leading space (the dummy prefix), so BOS *restarts* the text; BOS and EOS add nothing;
/// - the word tokenizer: words joined by single spaces (the first word of a text has none), and
///   `</s>` *stops* the text (decode ignores what follows).
/// Other tokenizers take part by exposing `token_bytes(t)` (context-free bytes), or by a
/// specialisation of tsmc::token_bytes_traits. A tokenizer without byte strings is a compile-time
/// error at make_token_byte_table (concept TokenizerWithBytes).

#include <tsmc/core/error.hpp>
#include <tsmc/core/types.hpp>
#include <tsmc/models/llama2c_tokenizer.hpp>
#include <tsmc/models/word_tokenizer.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tsmc {

/// @brief Where a text stands for decoding the next token.
enum class text_mode : std::uint8_t {
  start = 0,    ///< at the start of the text (or after a restarting token): initial bytes apply
  middle = 1,   ///< inside the text: ordinary bytes apply
  stopped = 2,  ///< after a stopping token: later tokens add nothing
};

/// @brief The bytes every token adds to a decoded text, with the tokenizer's context rules.
struct token_byte_table {
  std::vector<std::string> bytes;          ///< bytes of token t inside a text
  std::vector<std::string> initial_bytes;  ///< bytes of token t at the start of a text
  std::vector<std::uint8_t> restarts;      ///< 1: the token after t decodes as at a text's start
  std::vector<std::uint8_t> stops;         ///< 1: nothing after t is part of the text

  /// @brief V, the number of tokens.
  [[nodiscard]] std::size_t vocab_size() const noexcept { return bytes.size(); }

  /// @brief The bytes token t adds in the given mode (empty when stopped).
  [[nodiscard]] std::string_view bytes_of(token t, text_mode mode) const noexcept {
    const auto i = static_cast<std::size_t>(t);
    if (mode == text_mode::stopped) return {};
    return mode == text_mode::start ? std::string_view(initial_bytes[i]) : std::string_view(bytes[i]);
  }

  /// @brief The mode after token t from the given mode.
  [[nodiscard]] text_mode mode_after(token t, text_mode mode) const noexcept {
    const auto i = static_cast<std::size_t>(t);
    if (mode == text_mode::stopped || stops[i]) return text_mode::stopped;
    return restarts[i] ? text_mode::start : text_mode::middle;
  }

  /// @brief The text of a token sequence, decoded from the given mode.
  /// @throw tsmc::invalid_argument if a token is outside [0, V)
  [[nodiscard]] std::string decode(std::span<const token> tokens, text_mode mode = text_mode::start) const {
    check_tokens(tokens, vocab_size(), "token_byte_table::decode", "tokens");
    std::string out;
    for (const token t : tokens) {
      out += bytes_of(t, mode);
      mode = mode_after(t, mode);
    }
    return out;
  }

  /// @brief Checks the table's shape (equal sizes).
  /// @throw tsmc::invalid_argument naming the field whose size differs
  void validate(std::string_view function) const {
    check_positive(function, "table.bytes.size()", bytes.size());
    check_size(function, "table.initial_bytes.size()", initial_bytes.size(), "table.bytes.size()", bytes.size());
    check_size(function, "table.restarts.size()", restarts.size(), "table.bytes.size()", bytes.size());
    check_size(function, "table.stops.size()", stops.size(), "table.bytes.size()", bytes.size());
  }
};

/// @brief Customisation point: specialise with `static token_byte_table table(const Tokenizer&)`
/// to lift constraints to a tokenizer that has no `token_bytes(t)` member.
template <class Tokenizer>
struct token_bytes_traits;

/// @brief The llama2.c tokenizer: byte fallback, the dummy-prefix space after BOS, BOS/EOS empty.
template <>
struct token_bytes_traits<llama2c::tokenizer> {
  /// @brief The table of a llama2.c tokenizer.
  [[nodiscard]] static token_byte_table table(const llama2c::tokenizer& tok) {
    const std::size_t V = tok.vocab_size();
    token_byte_table t;
    t.bytes.resize(V);
    t.initial_bytes.resize(V);
    t.restarts.assign(V, 0);
    t.stops.assign(V, 0);
    // decode(prev, x) depends on prev only through prev == BOS; EOS is a neutral predecessor.
    const token neutral = V > static_cast<std::size_t>(llama2c::tokenizer::eos) ? llama2c::tokenizer::eos : 0;
    for (std::size_t i = 0; i < V; ++i) {
      const auto x = static_cast<token>(i);
      t.bytes[i] = tok.decode(neutral, x);
      t.initial_bytes[i] = tok.decode(llama2c::tokenizer::bos, x);
    }
    if (V > static_cast<std::size_t>(llama2c::tokenizer::bos)) t.restarts[static_cast<std::size_t>(llama2c::tokenizer::bos)] = 1;
    return t;
  }
};

/// @brief The word tokenizer: words joined by single spaces; `</s>` ends the text.
template <>
struct token_bytes_traits<word_tokenizer> {
  /// @brief The table of a word tokenizer (decode with stop_at_end = true).
  [[nodiscard]] static token_byte_table table(const word_tokenizer& tok) {
    const std::size_t V = tok.vocab_size();
    token_byte_table t;
    t.bytes.resize(V);
    t.initial_bytes.resize(V);
    t.restarts.assign(V, 0);
    t.stops.assign(V, 0);
    for (std::size_t i = 0; i < V; ++i) {
      const std::string& w = tok.words()[i];
      t.initial_bytes[i] = w;
      t.bytes[i] = " " + w;
    }
    const auto end = static_cast<std::size_t>(word_tokenizer::end_token);
    t.initial_bytes[end].clear();
    t.bytes[end].clear();
    t.stops[end] = 1;
    return t;
  }
};

/// @brief A tokenizer whose tokens' bytes are known: a specialisation of token_bytes_traits, or
/// members `vocab_size()` and `token_bytes(t)` (bytes independent of context).
template <class T>
concept TokenizerWithBytes =
    requires(const T& tok) {
      { token_bytes_traits<T>::table(tok) } -> std::convertible_to<token_byte_table>;
    } || requires(const T& tok, token t) {
      { tok.vocab_size() } -> std::convertible_to<std::size_t>;
      { tok.token_bytes(t) } -> std::convertible_to<std::string_view>;
    };

/// @brief The byte table of a tokenizer.
/// @tparam Tokenizer llama2c::tokenizer, word_tokenizer, or any type with vocab_size() and
/// token_bytes(t), or a specialisation of token_bytes_traits
/// @param tok the tokenizer
/// @return the table (a copy: the tokenizer need not outlive it)
template <class Tokenizer>
[[nodiscard]] token_byte_table make_token_byte_table(const Tokenizer& tok) {
  static_assert(TokenizerWithBytes<Tokenizer>,
                "tsmc::make_token_byte_table: the tokenizer must expose its tokens' bytes: write "
                "std::string_view token_bytes(tsmc::token t) const and std::size_t vocab_size() const, or "
                "specialise tsmc::token_bytes_traits<Tokenizer> with static token_byte_table table(const Tokenizer&)");
  if constexpr (requires { token_bytes_traits<Tokenizer>::table(tok); }) {
    return token_bytes_traits<Tokenizer>::table(tok);
  } else {
    const std::size_t V = tok.vocab_size();
    token_byte_table t;
    t.bytes.resize(V);
    for (std::size_t i = 0; i < V; ++i) t.bytes[i] = std::string(std::string_view(tok.token_bytes(static_cast<token>(i))));
    t.initial_bytes = t.bytes;
    t.restarts.assign(V, 0);
    t.stops.assign(V, 0);
    return t;
  }
}

}  // namespace tsmc
