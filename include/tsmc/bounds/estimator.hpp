#pragma once
/// @file
/// @brief Bidirectional bounds on log Z (Zhao et al. 2024, Section 5, Prop. 5.1):
///   E_{q_SMC}[log Zhat] <= log Z <= E_{sigma_SMC}[log Zhat],
/// the lower bound from ordinary SMC (or SIS) runs, the upper bound from conditional SMC runs
/// seeded with exact samples from sigma; each with its standard error and a 95% interval. For
/// conditional tasks (infilling), bounds per observation and their average over observations.

#include <tsmc/bounds/exact_samplers.hpp>
#include <tsmc/core/error.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/core/statistics.hpp>
#include <tsmc/core/types.hpp>
#include <tsmc/smc/options.hpp>
#include <tsmc/smc/result.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <limits>
#include <span>
#include <utility>
#include <vector>

namespace tsmc {

/// @brief The normal quantile of a two-sided 95% interval, 1.959963984540054.
inline constexpr double normal_quantile_95 = 1.959963984540054;

/// @brief A Monte Carlo estimate of one bound: the mean of M values, its standard error and a
/// 95% normal interval mean +- 1.96 se.
///
/// Degenerate inputs are results: if a value is -inf (a run whose weights all vanished: log Zhat
/// = -inf, a valid but vacuous lower bound), mean = low = high = -inf and the standard error is
/// NaN; with M = 1 the standard error is NaN (undefined) and the interval is [mean, mean].
/// zero_fraction says how many runs had Zhat = 0: with an indicator potential at small K this is
/// common, and one such run makes the lower bound -inf (mathematically right: E[log Zhat] = -inf).
/// Raise K, use a twist, or take log Z from the upper bound (log_z_reference::from_upper_bound).
struct bound_estimate {
  double mean = 0.0;            ///< the mean of the values (the bound's estimate)
  double standard_error = 0.0;  ///< sample standard deviation / sqrt(M)
  double low = 0.0;             ///< mean - 1.96 se
  double high = 0.0;            ///< mean + 1.96 se
  std::size_t runs = 0;         ///< M, the number of values
  double zero_fraction = 0.0;   ///< the fraction of values that are -inf (runs with Zhat = 0)
};

/// @brief Summarises M values as a bound_estimate.
/// @param values M >= 1 values (log Zhat of independent runs)
/// @return mean, standard error, the 95% interval and the fraction of -inf values
/// @throw tsmc::invalid_argument if values is empty or contains NaN
[[nodiscard]] inline bound_estimate summarize_bound(std::span<const double> values) {
  check_positive("summarize_bound", "values.size()", values.size());
  for (double v : values)
    if (std::isnan(v)) throw_invalid_argument("summarize_bound", "values", "must not contain NaN", v);
  const mean_estimate est = mean_and_standard_error(values);
  bound_estimate out;
  out.mean = est.mean;
  out.runs = values.size();
  const auto zeros = std::count(values.begin(), values.end(), -std::numeric_limits<double>::infinity());
  out.zero_fraction = static_cast<double>(zeros) / static_cast<double>(values.size());
  if (!std::isfinite(est.mean) || values.size() < 2) {
    out.standard_error = std::numeric_limits<double>::quiet_NaN();
    out.low = out.high = est.mean;
    return out;
  }
  out.standard_error = est.standard_error;
  out.low = est.mean - normal_quantile_95 * est.standard_error;
  out.high = est.mean + normal_quantile_95 * est.standard_error;
  return out;
}

/// @brief Lower and upper bounds on log Z from M independent pairs of runs (Prop. 5.1).
struct log_z_bounds {
  bound_estimate lower;     ///< E[log Zhat] of SMC (or SIS): <= log Z in expectation
  bound_estimate upper;     ///< E[log Zhat] of conditional SMC seeded with exact samples: >= log Z
  double lower_ess = 0.0;   ///< mean ESS after the last step of the lower-bound runs
  double upper_ess = 0.0;   ///< mean ESS after the last step of the upper-bound runs
  double seconds = 0.0;     ///< wall time of the estimate (runs and exact samples)

  /// @brief upper - lower. When both bounds come from one sampler, that is the sum of the two KLs
  /// between its q_SMC and sigma_SMC (Section 5). The upper bound always comes from conditional
  /// SMC with multinomial resampling of the free slots (twisted_smc::run_conditional), so for a
  /// sampler with another scheme (systematic, stratified, residual, SSP, killing) the lower
  /// bound is that scheme's and the upper bound multinomial's: the gap is then
  /// KL(q_S || sigma_S) + KL(sigma_M || q_M) of two samplers S and M, not one sampler's two KLs.
  /// @return upper.mean - lower.mean
  [[nodiscard]] double gap() const noexcept { return upper.mean - lower.mean; }
  /// @brief (lower + upper) / 2, the paper's estimate of log Z from the bounds.
  [[nodiscard]] double midpoint() const noexcept { return 0.5 * (lower.mean + upper.mean); }
};

/// @brief What estimate_bounds needs from a sampler: options(), run(prompt, rng) and
/// run_conditional(prompt, reference, rng) returning smc_result (any twisted_smc).
template <class S, class Engine = default_engine>
concept BoundsSampler = requires(S& s, std::span<const token> tokens, Engine& rng) {
  { s.options() } -> std::convertible_to<smc_options>;
  { s.run(tokens, rng) } -> std::convertible_to<smc_result>;
  { s.run_conditional(tokens, tokens, rng) } -> std::convertible_to<smc_result>;
};

/// @brief Estimates the bidirectional bounds on log Z with M independent runs of each kind
/// (Zhao et al. 2024, Section 5, Prop. 5.1), for any sampler configuration (proposal, K,
/// scheme, trigger).
///
/// Run m: an ordinary run gives lower_m = log Zhat; an exact sample s ~ sigma seeds a
/// conditional run (s in slot 0) that gives upper_m. The lower bound is the mean of lower_m, the
/// upper bound the mean of upper_m. With the trigger `never` these are the IWAE bounds.
/// Degenerate runs are results: a run whose weights all vanish gives log Zhat = -inf, so the
/// lower bound is -inf (vacuous, see bound_estimate); lower.zero_fraction says how often.
/// @tparam Sampler a BoundsSampler (a twisted_smc)
/// @tparam Exact an ExactSampler; a TargetedExactSampler is checked against the sampler
/// @param smc the sampler
/// @param prompt s_0
/// @param exact the exact sampler from sigma for this prompt
/// @param runs M > 0
/// @param rng the random engine (runs, then exact samples, in turn)
/// @return the two bounds
/// @throw tsmc::invalid_argument if runs is 0, or the exact sampler declares another prompt,
/// horizon or end token; the sampler's and the exact sampler's exceptions (a reference that is
/// not a finished sequence of the horizon, an exhausted rejection budget) pass through
template <class Sampler, class Exact, RandomEngine Engine>
  requires BoundsSampler<Sampler, Engine> && ExactSampler<Exact, Engine>
[[nodiscard]] log_z_bounds estimate_bounds(Sampler& smc, std::span<const token> prompt, Exact& exact,
                                           std::size_t runs, Engine& rng) {
  constexpr const char* function = "estimate_bounds";
  check_positive(function, "runs", runs);
  const smc_options& options = smc.options();
  detail::check_exact_target(exact, prompt, options.horizon, options.end_token, options.end_tokens, function);
  const auto start = std::chrono::steady_clock::now();
  std::vector<double> lower(runs), upper(runs);
  double lower_ess = 0.0, upper_ess = 0.0;
  for (std::size_t m = 0; m < runs; ++m) {
    const smc_result plain = smc.run(prompt, rng);
    lower[m] = plain.log_z;
    lower_ess += plain.ess.empty() ? 0.0 : plain.ess.back();
    const token_sequence reference = exact.sample(rng);
    const smc_result conditional = smc.run_conditional(prompt, std::span<const token>(reference), rng);
    upper[m] = conditional.log_z;
    upper_ess += conditional.ess.empty() ? 0.0 : conditional.ess.back();
  }
  log_z_bounds out;
  out.lower = summarize_bound(lower);
  out.upper = summarize_bound(upper);
  out.lower_ess = lower_ess / static_cast<double>(runs);
  out.upper_ess = upper_ess / static_cast<double>(runs);
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

/// @brief Bounds for a conditional task: per observation, and averaged over observations.
///
/// The average's bounds are the means of the per-observation bounds; their standard errors are
/// the standard errors of those means across observations (the spread of the per-observation
/// estimates / sqrt(N)). That is the right error for E_o[log Z(o)] with o drawn from its
/// marginal, and a conservative one for the average over the fixed observations; it also covers
/// the variability of the single exact sample each observation has, which a per-observation
/// standard error cannot see. With one observation the per-observation errors are used.
struct conditional_bounds {
  std::vector<log_z_bounds> per_observation;  ///< bounds for each observation, in order
  bound_estimate lower;                       ///< the average lower bound over observations
  bound_estimate upper;                       ///< the average upper bound over observations
  double lower_ess = 0.0;                     ///< the average of the per-observation lower_ess
  double upper_ess = 0.0;                     ///< the average of the per-observation upper_ess
  double seconds = 0.0;                       ///< wall time of the whole estimate

  /// @brief upper - lower of the averages.
  [[nodiscard]] double gap() const noexcept { return upper.mean - lower.mean; }
  /// @brief (lower + upper) / 2 of the averages.
  [[nodiscard]] double midpoint() const noexcept { return 0.5 * (lower.mean + upper.mean); }
  /// @brief The averages as a log_z_bounds (for a report).
  [[nodiscard]] log_z_bounds average() const noexcept {
    return log_z_bounds{lower, upper, lower_ess, upper_ess, seconds};
  }
};

/// @brief Bounds for a conditional task such as infilling (Zhao et al. 2024, Section 5): one
/// log_z_bounds per observation, from a callable that builds that observation's sampler, and
/// their average over observations (as the paper reports them).
///
/// Typical bounds_for: build infilling_potential(query_model, prompt, o.observation), the twist
/// for o, a twisted_smc over them, and a single_sample_sampler(o.prefix, ...), then return
/// estimate_bounds(smc, prompt, exact, runs, rng).
/// @tparam Observation the observation type (infilling_sample for infilling)
/// @param observations N > 0 observations, each with its exact sample
/// @param runs M > 0 runs per observation (passed on to bounds_for)
/// @param rng the random engine (passed on to bounds_for)
/// @param bounds_for a callable (const Observation&, std::size_t runs, Engine&) -> log_z_bounds
/// @return per-observation bounds and their averages
/// @throw tsmc::invalid_argument if there are no observations or runs is 0; bounds_for's
/// exceptions pass through
template <class Observation, RandomEngine Engine, class BoundsFor>
  requires std::invocable<BoundsFor&, const Observation&, std::size_t, Engine&>
[[nodiscard]] conditional_bounds estimate_conditional_bounds(std::span<const Observation> observations,
                                                             std::size_t runs, Engine& rng, BoundsFor&& bounds_for) {
  constexpr const char* function = "estimate_conditional_bounds";
  check_positive(function, "observations.size()", observations.size());
  check_positive(function, "runs", runs);
  const auto start = std::chrono::steady_clock::now();
  conditional_bounds out;
  out.per_observation.reserve(observations.size());
  std::vector<double> lower, upper;
  for (const Observation& o : observations) {
    log_z_bounds b = bounds_for(o, runs, rng);
    lower.push_back(b.lower.mean);
    upper.push_back(b.upper.mean);
    out.lower_ess += b.lower_ess;
    out.upper_ess += b.upper_ess;
    out.per_observation.push_back(b);
  }
  const double n = static_cast<double>(observations.size());
  out.lower_ess /= n;
  out.upper_ess /= n;
  if (observations.size() == 1) {
    out.lower = out.per_observation[0].lower;
    out.upper = out.per_observation[0].upper;
  } else {
    out.lower = summarize_bound(lower);
    out.upper = summarize_bound(upper);
    out.lower.runs = out.upper.runs = observations.size() * runs;
    // the fraction of all runs (not of observations) with Zhat = 0: every observation has M runs
    out.lower.zero_fraction = out.upper.zero_fraction = 0.0;
    for (const log_z_bounds& b : out.per_observation) {
      out.lower.zero_fraction += b.lower.zero_fraction / n;
      out.upper.zero_fraction += b.upper.zero_fraction / n;
    }
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

/// @brief estimate_conditional_bounds over a vector of observations (deduces Observation).
template <class Observation, RandomEngine Engine, class BoundsFor>
  requires std::invocable<BoundsFor&, const Observation&, std::size_t, Engine&>
[[nodiscard]] conditional_bounds estimate_conditional_bounds(const std::vector<Observation>& observations,
                                                             std::size_t runs, Engine& rng, BoundsFor&& bounds_for) {
  return estimate_conditional_bounds(std::span<const Observation>(observations), runs, rng,
                                     std::forward<BoundsFor>(bounds_for));
}

}  // namespace tsmc
