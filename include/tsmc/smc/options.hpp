#pragma once
/// @file
/// @brief The sampler's options aggregate and its validation.

#include <tsmc/core/error.hpp>
#include <tsmc/core/types.hpp>

#include <cmath>
#include <cstddef>
#include <algorithm>
#include <optional>
#include <string>
#include <vector>

namespace tsmc {

/// @brief Which proposal draws each next token.
enum class proposal_type {
  base,     ///< q = p0; incremental weight psi_t / psi_{t-1} (phi / psi_{T-1} at the end)
  twisted,  ///< q proportional to p0 psi_t (Zhao et al. 2024, Eq. 14); weight Eq. 15
};

/// @brief Options of twisted_smc, used with designated initialisers:
/// `smc_options{.particles = 256, .horizon = 20}`.
struct smc_options {
  std::size_t particles = 0;                 ///< K, the number of particles (> 0)
  std::size_t horizon = 0;                   ///< T, the maximum number of generated tokens (> 0)
  proposal_type proposal = proposal_type::twisted;  ///< base or twist-induced proposal
  std::optional<token> end_token = std::nullopt;///< a token that finishes a particle early, if any
  /// @brief More tokens that finish a particle early (llama2.c models end with BOS or EOS, chat
  /// models with several): a particle finishes when it emits end_token or any of these. Each must
  /// be in [0, V) and appear once (end_token included).
  std::vector<token> end_tokens{};
  bool record_genealogy = false;             ///< keep the ancestors of every resampling step
  /// @brief Check that EVERY row the model writes sums to 1 (p0 = exp(row)) within
  /// normalization_tolerance, and throw naming the step, the particle and the sum otherwise: catches
  /// a model that writes probabilities or unnormalised logits wherever it does. Off by default (it
  /// costs one exp per candidate); on in the library's own tests and examples. The first row of
  /// every run is checked anyway unless check_first_row is false.
  bool check_normalization = false;
  double normalization_tolerance = 1e-6;     ///< the tolerance of both checks (> 0)
  /// @brief Check the first row the model writes in each run (step 1, the first particle that
  /// draws) as check_normalization checks every row: V exponentials per run, too few to show
  /// beside the run's K x V x T work, and enough to name a model that writes probabilities or
  /// logits instead of log-probabilities on its first run (without it such a model gives a
  /// log Zhat above 0 for an indicator potential, silently). On by default; false opts out (for a
  /// model whose rows are deliberately not normalised).
  bool check_first_row = true;
};

/// @brief Whether token x finishes a particle under these options (end_token or one of end_tokens).
[[nodiscard]] inline bool is_end_token(const smc_options& options, token x) noexcept {
  if (options.end_token && x == *options.end_token) return true;
  return std::find(options.end_tokens.begin(), options.end_tokens.end(), x) != options.end_tokens.end();
}

/// @brief Whether these options have any end token.
[[nodiscard]] inline bool has_end_token(const smc_options& options) noexcept {
  return options.end_token.has_value() || !options.end_tokens.empty();
}

/// @brief The first end token (end_token, else end_tokens[0]), if any: finished particles are
/// padded with it.
[[nodiscard]] inline std::optional<token> first_end_token(const smc_options& options) noexcept {
  if (options.end_token) return options.end_token;
  if (!options.end_tokens.empty()) return options.end_tokens.front();
  return std::nullopt;
}

/// @brief Checks options against a vocabulary of size V.
/// @throw tsmc::invalid_argument naming the function, the field and its value
inline void validate(const smc_options& options, std::size_t vocab_size, std::string_view function) {
  check_positive(function, "options.particles", options.particles);
  check_positive(function, "options.horizon", options.horizon);
  check_argument(options.particles <= std::size_t{0xffffffffu}, function, "options.particles",
                 "must fit a 32-bit particle index", options.particles);
  check_argument(options.normalization_tolerance > 0.0 && std::isfinite(options.normalization_tolerance), function,
                 "options.normalization_tolerance", "must be positive and finite", options.normalization_tolerance);
  if (options.end_token) {
    const token e = *options.end_token;
    check_argument(e >= 0 && static_cast<std::size_t>(e) < vocab_size, function, "options.end_token",
                   "must be in [0, " + std::to_string(vocab_size) + ")", e);
  }
  for (std::size_t i = 0; i < options.end_tokens.size(); ++i) {
    const token e = options.end_tokens[i];
    const std::string field = "options.end_tokens[" + std::to_string(i) + "]";
    check_argument(e >= 0 && static_cast<std::size_t>(e) < vocab_size, function, field,
                   "must be in [0, " + std::to_string(vocab_size) + ")", e);
    const auto earlier = options.end_tokens.begin() + static_cast<std::ptrdiff_t>(i);
    const bool repeated =
        (options.end_token && *options.end_token == e) || std::find(options.end_tokens.begin(), earlier, e) != earlier;
    check_argument(!repeated, function, field, "must not repeat end_token or an earlier end token", e);
  }
}

}  // namespace tsmc
