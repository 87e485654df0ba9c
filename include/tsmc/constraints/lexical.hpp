#pragma once
/// @file
/// @brief Lexical constraints as byte DFAs (lift them with token_dfa): contains a word or phrase
/// of a set, excludes them, length bounds in characters and words, stop strings; and a length
/// bound in tokens as a potential with its next-token form.
///
/// Words and phrases match whole: the characters around a match are not ASCII word characters
/// [A-Za-z0-9_] (or the text's ends), as Python's `\b` under re.ASCII for phrases that start and
/// end with word characters. Characters are UTF-8 code points; words are maximal runs of
/// non-space characters (space = [ \t\n\r\f\v]).

#include <tsmc/constraints/regex.hpp>
#include <tsmc/core/concepts.hpp>
#include <tsmc/core/error.hpp>
#include <tsmc/core/types.hpp>

#include <algorithm>
#include <cstddef>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tsmc {

namespace detail {

inline std::string alternatives(std::span<const std::string> phrases, std::string_view function) {
  check_positive(function, "phrases.size()", phrases.size());
  std::string out = "(?:";
  for (std::size_t i = 0; i < phrases.size(); ++i) {
    check_argument(!phrases[i].empty(), function, "phrases[" + std::to_string(i) + "]", "must not be empty", "\"\"");
    if (i > 0) out += "|";
    out += regex_escape(phrases[i]);
  }
  return out + ")";
}

}  // namespace detail

/// @brief The text contains one of the phrases as a whole word or phrase.
/// @throw tsmc::invalid_argument if phrases is empty or has an empty phrase
[[nodiscard]] inline byte_dfa contains_any(std::span<const std::string> phrases) {
  const std::string p = detail::alternatives(phrases, "contains_any");
  return compile_regex("(?:[\\s\\S]*\\W)?" + p + "(?:\\W[\\s\\S]*)?");
}

/// @brief The text contains none of the phrases (as whole words or phrases): the complement of
/// contains_any.
/// @throw tsmc::invalid_argument if phrases is empty or has an empty phrase
[[nodiscard]] inline byte_dfa excludes_all(std::span<const std::string> phrases) {
  return complement(contains_any(phrases));
}

/// @brief The text has between min and max characters (UTF-8 code points).
/// @throw tsmc::invalid_argument unless min <= max <= max_regex_repeat
[[nodiscard]] inline byte_dfa length_in_characters(std::size_t min, std::size_t max) {
  check_argument(min <= max && max <= max_regex_repeat, "length_in_characters", "[min, max]",
                 "must have min <= max <= " + std::to_string(max_regex_repeat),
                 std::to_string(min) + ", " + std::to_string(max));
  return compile_regex("[\\s\\S]{" + std::to_string(min) + "," + std::to_string(max) + "}");
}

/// @brief The text has between min and max words (maximal runs of non-space characters).
/// @throw tsmc::invalid_argument unless min <= max <= max_regex_repeat
[[nodiscard]] inline byte_dfa length_in_words(std::size_t min, std::size_t max) {
  check_argument(min <= max && max <= max_regex_repeat, "length_in_words", "[min, max]",
                 "must have min <= max <= " + std::to_string(max_regex_repeat),
                 std::to_string(min) + ", " + std::to_string(max));
  const std::string some = "\\s*\\S+(?:\\s+\\S+){" + std::to_string(min == 0 ? 0 : min - 1) + "," +
                           std::to_string(max == 0 ? 0 : max - 1) + "}\\s*";
  if (max == 0) return compile_regex("\\s*");
  return compile_regex(min == 0 ? "\\s*|" + some : some);
}

/// @brief The text ends with its first occurrence of a stop string: it contains one of the stop
/// strings, and no proper prefix of it does (then the sequence must finish: under feasibility
/// only an end token is left).
/// @throw tsmc::invalid_argument if stops is empty or has an empty string
[[nodiscard]] inline byte_dfa ends_at_stop(std::span<const std::string> stops) {
  byte_dfa d = compile_regex("[\\s\\S]*" + detail::alternatives(stops, "ends_at_stop"));
  // Cut every transition out of an accepting state: an accepted text cannot be continued.
  for (std::size_t q = 0; q < d.state_count(); ++q)
    if (d.accepting[q])
      for (std::size_t b = 0; b < 256; ++b) d.next[q * 256 + b] = byte_dfa::dead;
  // Minimise again (the cut may merge states).
  std::size_t states = 0;
  const std::vector<std::int32_t> t = detail::regex::complete_table(d, states);
  std::vector<std::uint8_t> accepting(states, 0);
  for (std::size_t q = 0; q + 1 < states; ++q) accepting[q] = d.accepting[q];
  return detail::regex::minimize_complete(t, accepting);
}

/// @brief phi = 1 iff the number of generated tokens, end tokens not counted, lies in
/// [min, max]; with its exact next-token form.
class token_length_potential {
 public:
  /// @brief A length bound.
  /// @param min the fewest tokens
  /// @param max the most tokens
  /// @param end_tokens tokens not counted (the sampler's end tokens)
  /// @throw tsmc::invalid_argument unless min <= max
  token_length_potential(std::size_t min, std::size_t max, std::vector<token> end_tokens = {})
      : min_(min), max_(max), end_(std::move(end_tokens)) {
    check_argument(min <= max, "token_length_potential::token_length_potential", "[min, max]", "must have min <= max",
                   std::to_string(min) + ", " + std::to_string(max));
  }

  /// @brief log phi of finished sequences: 0 inside the bounds, -inf outside.
  void log_potential(std::span<const token_sequence> sequences, std::span<double> out) const {
    for (std::size_t i = 0; i < sequences.size(); ++i) out[i] = log_phi(count(sequences[i]));
  }

  /// @brief log phi(prefix_k + v) for every candidate v.
  template <class Model>
  void log_potential_next(const step_context<Model>& ctx, log_prob_ref out) const {
    for (std::size_t k = 0; k < ctx.prefixes.size(); ++k) {
      if (!ctx.active.empty() && !ctx.active[k]) continue;
      const std::size_t n = count(ctx.prefixes[k]);
      const auto row = static_cast<Eigen::Index>(k);
      out.row(row).setConstant(log_phi(n + 1));
      for (const token e : end_)
        if (e >= 0 && e < out.cols()) out(row, e) = log_phi(n);
    }
  }

 private:
  [[nodiscard]] std::size_t count(std::span<const token> s) const {
    std::size_t n = 0;
    for (const token t : s) n += std::find(end_.begin(), end_.end(), t) == end_.end();
    return n;
  }
  [[nodiscard]] double log_phi(std::size_t n) const noexcept {
    return n >= min_ && n <= max_ ? 0.0 : -std::numeric_limits<double>::infinity();
  }

  std::size_t min_, max_;
  std::vector<token> end_;
};

}  // namespace tsmc
