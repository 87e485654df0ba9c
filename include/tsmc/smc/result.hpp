#pragma once
/// @file
/// @brief What a run of the sampler returns.

#include <tsmc/core/error.hpp>
#include <tsmc/core/log_math.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/core/types.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

namespace tsmc {

/// @brief Wall time of a run, split by who spent it (seconds).
struct smc_timings {
  double model = 0.0;      ///< language model: log_probs, append, reorder
  double twist = 0.0;      ///< twist evaluations and hooks
  double potential = 0.0;  ///< potential evaluations
  double sampler = 0.0;    ///< everything else: the fused proposal pass, weights, ESS, resampling
  /// @brief The total.
  [[nodiscard]] double total() const noexcept { return model + twist + potential + sampler; }
};

/// @brief The result of one SMC (or conditional SMC) run.
///
/// Degenerate runs are results, not errors: if every particle's weight becomes zero, log_z is
/// -inf, the ESS of that step is 0 and the run stops there (normalized_log_weights are then all
/// -inf and draw() throws).
struct smc_result {
  std::vector<token_sequence> sequences;      ///< K generated sequences (prompt excluded)
  std::vector<double> log_weights;            ///< unnormalised final log-weights (since the last resampling)
  std::vector<double> normalized_log_weights; ///< log of the normalised final weights
  std::vector<double> log_proposal;           ///< log q(s_{1:t}) of each final sequence: the sum of its log q_t
  double log_z = 0.0;                         ///< log Zhat (Zhao et al. 2024, Eq. 8 and footnote 1)
  std::vector<double> ess;                    ///< effective sample size after each step's reweighting
  std::vector<std::uint8_t> resampled;        ///< 1 where the step resampled
  std::vector<double> log_z_increments;       ///< what each step added to log Zhat (0 where nothing)
  std::vector<std::vector<particle_index>> genealogy;  ///< ancestors per step (empty rows where no resampling), if recorded
  std::size_t steps = 0;                      ///< steps taken (< horizon if every particle finished early)
  bool stopped_by_observer = false;           ///< an observer asked to stop; log_z then covers the steps taken
  smc_timings seconds;                        ///< wall time split

  /// @brief Draws the index of one particle with probability proportional to its final weight.
  /// @throw tsmc::runtime_error if every weight is zero; tsmc::invalid_argument if a final
  /// log-weight is NaN
  template <RandomEngine Engine>
  [[nodiscard]] std::size_t draw_index(Engine& rng) const {
    return draw_index_for("smc_result::draw_index", rng);
  }

  /// @brief Draws one sequence with probability proportional to its final weight.
  /// @throw tsmc::runtime_error if every weight is zero; tsmc::invalid_argument if a final
  /// log-weight is NaN
  template <RandomEngine Engine>
  [[nodiscard]] const token_sequence& draw(Engine& rng) const {
    return sequences[draw_index_for("smc_result::draw", rng)];
  }

 private:
  /// draw_index, its errors reported as `function`'s.
  template <RandomEngine Engine>
  [[nodiscard]] std::size_t draw_index_for(const char* function, Engine& rng) const {
    for (const double v : log_weights)
      if (std::isnan(v)) throw_invalid_argument(function, "log_weights", "must not contain NaN", v);
    const double lse = logsumexp(std::span<const double>(log_weights));
    if (!(lse > neg_inf)) throw_runtime_error(function, "the final weights", "must not all be zero", lse);
    const double target = uniform01(rng);
    double cumulative = 0.0;
    std::size_t last_positive = 0;
    for (std::size_t k = 0; k < log_weights.size(); ++k) {
      const double p = std::exp(log_weights[k] - lse);
      if (p > 0.0) last_positive = k;
      cumulative += p;
      if (target < cumulative) return k;
    }
    return last_positive;  // rounding left the cumulative sum a hair below 1
  }
};

}  // namespace tsmc
