#pragma once
/// @file
/// @brief The sampler's options aggregate and its validation.

#include <tsmc/core/error.hpp>
#include <tsmc/core/types.hpp>

#include <cmath>
#include <cstddef>
#include <optional>

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
  bool record_genealogy = false;             ///< keep the ancestors of every resampling step
  /// Check that every row the model writes sums to 1 (exp of the log-probabilities), within
  /// normalization_tolerance, and throw naming the step, the particle and the sum otherwise:
  /// catches a model that writes probabilities instead of log-probabilities. Off by default (one
  /// extra pass over K x V per step); on in the library's own examples.
  bool check_normalization = false;
  double normalization_tolerance = 1e-6;     ///< |sum - 1| allowed by check_normalization (> 0, finite)
};

/// @brief Checks options against a vocabulary of size V.
/// @throw tsmc::invalid_argument naming the function, the field and its value
inline void validate(const smc_options& options, std::size_t vocab_size, std::string_view function) {
  check_positive(function, "options.particles", options.particles);
  check_positive(function, "options.horizon", options.horizon);
  check_argument(options.particles <= std::size_t{0xffffffffu}, function, "options.particles",
                 "must fit a 32-bit particle index", options.particles);
  check_argument(std::isfinite(options.normalization_tolerance) && options.normalization_tolerance > 0.0, function,
                 "options.normalization_tolerance", "must be positive and finite", options.normalization_tolerance);
  if (options.end_token) {
    const token e = *options.end_token;
    check_argument(e >= 0 && static_cast<std::size_t>(e) < vocab_size, function, "options.end_token",
                   "must be in [0, " + std::to_string(vocab_size) + ")", e);
  }
}

}  // namespace tsmc
