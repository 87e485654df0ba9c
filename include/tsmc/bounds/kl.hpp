#pragma once
/// @file
/// @brief KL divergences between a proposal q and the target sigma over full sequences
/// (Zhao et al. 2024, Section 5, Eq. 23):
///   F_q = E_q[log sigma~(s) / q(s)],  G_q = E_sigma[log sigma~(s) / q(s)],  sigma~ = p0 phi,
///   KL(q || sigma) = log Z - F_q,      KL(sigma || q) = G_q - log Z,
/// with log Z known, or bracketed by bounds [LB, UB]: KL(q || sigma) in [LB - F_q, UB - F_q] and
/// KL(sigma || q) in [G_q - UB, G_q - LB].

#include <tsmc/bounds/estimator.hpp>
#include <tsmc/bounds/exact_samplers.hpp>
#include <tsmc/core/concepts.hpp>
#include <tsmc/core/error.hpp>
#include <tsmc/core/log_math.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/core/types.hpp>
#include <tsmc/resampling/schemes.hpp>
#include <tsmc/resampling/triggers.hpp>
#include <tsmc/smc/options.hpp>
#include <tsmc/smc/result.hpp>
#include <tsmc/smc/sampler.hpp>
#include <tsmc/twists/no_twist.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace tsmc {

/// @brief The value of log Z used by the KL estimates, with the interval it is known to lie in.
struct log_z_reference {
  double value = 0.0;  ///< the value used for the point estimates
  double low = 0.0;    ///< a lower bound on log Z (= value when log Z is known)
  double high = 0.0;   ///< an upper bound on log Z (= value when log Z is known)

  /// @brief A known log Z (from enumeration, or given by the user).
  /// @param log_z the value
  /// @return {log_z, log_z, log_z}
  [[nodiscard]] static log_z_reference known(double log_z) noexcept { return {log_z, log_z, log_z}; }

  /// @brief log Z from bounds: the midpoint of the lower and upper estimates, as in the paper's
  /// tables, and the interval between them (ordered, should noise invert them when they are tight).
  /// A lower bound of -inf (runs with Zhat = 0, see bound_estimate::zero_fraction) makes the
  /// midpoint -inf, which estimate_kl rejects: use from_upper_bound then.
  /// @param bounds estimated bounds
  /// @return {midpoint, min(lower, upper), max(lower, upper)}
  /// @throw tsmc::invalid_argument if either mean is NaN (a NaN would otherwise pass through
  /// std::min and std::max as a bound)
  [[nodiscard]] static log_z_reference from_bounds(const log_z_bounds& bounds) {
    check_not_nan("log_z_reference::from_bounds", "bounds", bounds);
    const double a = bounds.lower.mean, b = bounds.upper.mean;
    return {0.5 * (a + b), std::min(a, b), std::max(a, b)};
  }

  /// @brief log Z from the upper bound alone, for when the lower bound is -inf (some runs had
  /// Zhat = 0, as an indicator potential at small K often gives) or otherwise uninformative.
  ///
  /// The value is the upper estimate, so KL(q || sigma) = log Z - F_q is overestimated and
  /// KL(sigma || q) = G_q - log Z underestimated by at most the gap; the interval of log Z is
  /// [-inf, upper] (or [lower, upper] when the lower estimate is finite), so the KL intervals are
  /// one-sided where the lower bound is -inf.
  /// @param bounds estimated bounds whose upper estimate is finite
  /// @return {upper, min(lower, upper), upper}
  /// @throw tsmc::invalid_argument if the upper estimate is not finite
  [[nodiscard]] static log_z_reference from_upper_bound(const log_z_bounds& bounds) {
    const double upper = bounds.upper.mean;
    check_finite("log_z_reference::from_upper_bound", "bounds.upper.mean", upper);
    return {upper, std::min(bounds.lower.mean, upper), upper};
  }

  /// @brief log Z from the tightest of several bounds (for instance a sweep over K): the
  /// largest lower and the smallest upper estimate, and their midpoint. The maximum (minimum)
  /// of several noisy estimates is biased up (down) by their noise, so prefer one precise pair
  /// (the best sampler at the largest K) when the estimates' errors are not small.
  /// @param bounds one or more estimated bounds
  /// @return {midpoint, min(best lower, best upper), max(best lower, best upper)}
  /// @throw tsmc::invalid_argument if bounds is empty
  [[nodiscard]] static log_z_reference from_bounds(std::span<const log_z_bounds> bounds) {
    check_positive("log_z_reference::from_bounds", "bounds.size()", bounds.size());
    for (std::size_t i = 0; i < bounds.size(); ++i)
      check_not_nan("log_z_reference::from_bounds", "bounds[" + std::to_string(i) + "]", bounds[i]);
    double lower = -std::numeric_limits<double>::infinity();
    double upper = std::numeric_limits<double>::infinity();
    for (const auto& b : bounds) {
      lower = std::max(lower, b.lower.mean);
      upper = std::min(upper, b.upper.mean);
    }
    return {0.5 * (lower + upper), std::min(lower, upper), std::max(lower, upper)};
  }

 private:
  static void check_not_nan(const char* function, const std::string& name, const log_z_bounds& bounds) {
    check_argument(!std::isnan(bounds.lower.mean), function, name + ".lower.mean", "must not be NaN", bounds.lower.mean);
    check_argument(!std::isnan(bounds.upper.mean), function, name + ".upper.mean", "must not be NaN", bounds.upper.mean);
  }
};

/// @brief One KL estimate: a point value, its Monte Carlo standard error (from F_q or G_q only;
/// log Z is taken as given) and the interval implied by the interval of log Z.
struct kl_value {
  double value = 0.0;           ///< the point estimate (using log_z_reference::value)
  double standard_error = 0.0;  ///< the standard error of F_q (or G_q); NaN if undefined
  double low = 0.0;             ///< the lower end implied by log Z's interval
  double high = 0.0;            ///< the upper end implied by log Z's interval
};

/// @brief KL estimates of a proposal (Eq. 23).
struct kl_estimate {
  bound_estimate f_q;        ///< F_q = E_q[log sigma~ / q] from proposal samples (SIS weights)
  bound_estimate g_q;        ///< G_q = E_sigma[log sigma~ / q] from exact samples
  log_z_reference log_z;     ///< the log Z used
  kl_value q_sigma;          ///< KL(q || sigma) = log Z - F_q, in [low - F_q, high - F_q]
  kl_value sigma_q;          ///< KL(sigma || q) = G_q - log Z, in [G_q - high, G_q - low]
  double seconds = 0.0;      ///< wall time
};

/// @brief Options of estimate_kl: which proposal, the problem's horizon and end token, and the
/// sample sizes. These repeat a sampler's options: the overload estimate_kl(smc, prompt, exact,
/// log_z, kl_samples, rng) takes them from the sampler instead. Here the horizon and end token are
/// checked against a TargetedExactSampler (and the end token against the vocabulary).
struct kl_options {
  std::size_t horizon = 0;                           ///< T (> 0)
  proposal_type proposal = proposal_type::twisted;   ///< base (q = p0) or twist-induced (Eq. 14)
  std::optional<token> end_token = std::nullopt;     ///< the end token, if any
  std::vector<token> end_tokens{};                   ///< more end tokens (smc_options::end_tokens' meaning)
  std::size_t proposal_samples = 1024;               ///< samples from q for F_q (> 0)
  std::size_t exact_samples = 1024;                  ///< samples from sigma for G_q (> 0)
  std::size_t batch = 256;                           ///< q samples per SIS run (> 0)
};

/// @brief The sample sizes of estimate_kl when the problem (horizon, end token, proposal) comes
/// from a sampler.
struct kl_samples {
  std::size_t proposal_samples = 1024;  ///< samples from q for F_q (> 0)
  std::size_t exact_samples = 1024;     ///< samples from sigma for G_q (> 0)
  std::size_t batch = 256;              ///< q samples per SIS run (> 0)
};

/// @brief Combines F_q, G_q and log Z into the two KL estimates (Eq. 23).
/// @param f_q F_q's estimate
/// @param g_q G_q's estimate
/// @param log_z the log Z to use
/// @return the estimates; F_q = -inf (q puts mass where sigma has none) gives KL(q || sigma) = +inf
[[nodiscard]] inline kl_estimate combine_kl(const bound_estimate& f_q, const bound_estimate& g_q,
                                            const log_z_reference& log_z) noexcept {
  kl_estimate out;
  out.f_q = f_q;
  out.g_q = g_q;
  out.log_z = log_z;
  out.q_sigma = {log_z.value - f_q.mean, f_q.standard_error, log_z.low - f_q.mean, log_z.high - f_q.mean};
  out.sigma_q = {g_q.mean - log_z.value, g_q.standard_error, g_q.mean - log_z.high, g_q.mean - log_z.low};
  return out;
}

namespace detail {
template <class Model, class Twist, class Pot, class Exact, RandomEngine Engine>
[[nodiscard]] kl_estimate estimate_kl_runs(Model& model, Twist& twist, Pot& potential, std::span<const token> prompt,
                                           Exact& exact, const log_z_reference& log_z, const kl_options& options,
                                           Engine& rng);
}  // namespace detail

/// @brief Estimates KL(q || sigma) and KL(sigma || q) for the base or the twist-induced
/// proposal over full sequences (Zhao et al. 2024, Eq. 23).
///
/// F_q: SIS runs (no resampling) with the proposal: each particle is an independent draw
/// s ~ q and its final log-weight is log sigma~(s) / q(s) (the twists telescope); q(s) is the
/// product of the per-step proposal probabilities of the sampler's fused step. G_q: for each
/// exact sample, a conditional run with K = 1 and no resampling, whose log-weight is the same
/// quantity at s ~ sigma.
/// @tparam Model a LanguageModel
/// @tparam Twist a TwistFunction (no_twist for q = p0 with proposal_type::base)
/// @tparam Pot a Potential
/// @tparam Exact an ExactSampler; a TargetedExactSampler is checked against options and prompt
/// @param model p0
/// @param twist the twist defining the twist-induced proposal (not used by the base proposal, whose
/// SIS weights p0 phi / q must not depend on it)
/// @param potential phi
/// @param prompt s_0
/// @param exact exact samples from sigma
/// @param log_z the log Z to use: log_z_reference::known(value) or ::from_bounds(bounds)
/// @param options the proposal, horizon, end token and sample sizes
/// @param rng the random engine
/// @return F_q, G_q and the two KLs
/// @throw tsmc::invalid_argument on a zero size or horizon, a log Z whose value is not finite,
/// or an exact sampler for another problem; the sampler's exceptions pass through (an exact
/// sample that the twisted proposal cannot produce, psi = 0 on its path, throws
/// tsmc::runtime_error: KL(sigma || q) is then +inf)
template <class Model, class Twist, class Pot, class Exact, RandomEngine Engine>
  requires ExactSampler<Exact, Engine>
[[nodiscard]] kl_estimate estimate_kl(Model& model, Twist& twist, Pot& potential, std::span<const token> prompt,
                                      Exact& exact, const log_z_reference& log_z, const kl_options& options,
                                      Engine& rng) {
  constexpr const char* function = "estimate_kl";
  check_positive(function, "options.horizon", options.horizon);
  check_positive(function, "options.proposal_samples", options.proposal_samples);
  check_positive(function, "options.exact_samples", options.exact_samples);
  check_positive(function, "options.batch", options.batch);
  if (!std::isfinite(log_z.value) && log_z.low == neg_inf && std::isfinite(log_z.high))
    throw_invalid_argument(function, "log_z.value",
                           "must be finite; the lower bound is -inf (runs with Zhat = 0): take "
                           "log_z_reference::from_upper_bound(bounds) instead of from_bounds",
                           log_z.value);
  check_finite(function, "log_z.value", log_z.value);
  detail::check_exact_target(exact, prompt, options.horizon, options.end_token, options.end_tokens, function);
  // q = p0 does not depend on the twist, and its weight p0 phi / q must not either: a twist that
  // is 0 somewhere sigma has mass would zero the SIS weights through the intermediate targets
  // (F_q = G_q = -inf, KL(sigma || q) = -inf). The base proposal therefore runs without it.
  if (options.proposal == proposal_type::base) {
    no_twist none;
    return detail::estimate_kl_runs(model, none, potential, prompt, exact, log_z, options, rng);
  }
  return detail::estimate_kl_runs(model, twist, potential, prompt, exact, log_z, options, rng);
}

namespace detail {

/// estimate_kl's SIS and conditional runs, after its argument checks.
template <class Model, class Twist, class Pot, class Exact, RandomEngine Engine>
[[nodiscard]] kl_estimate estimate_kl_runs(Model& model, Twist& twist, Pot& potential, std::span<const token> prompt,
                                           Exact& exact, const log_z_reference& log_z, const kl_options& options,
                                           Engine& rng) {
  const auto start = std::chrono::steady_clock::now();
  using sis = twisted_smc<Model, Twist, Pot, multinomial, never_trigger>;
  const auto sis_options = [&](std::size_t particles) {
    return smc_options{.particles = particles, .horizon = options.horizon, .proposal = options.proposal,
                       .end_token = options.end_token, .end_tokens = options.end_tokens};
  };

  std::vector<double> f_values;
  f_values.reserve(options.proposal_samples);
  while (f_values.size() < options.proposal_samples) {
    const std::size_t k = std::min(options.batch, options.proposal_samples - f_values.size());
    sis smc(model, twist, potential, sis_options(k));
    const smc_result r = smc.run(prompt, rng);
    f_values.insert(f_values.end(), r.log_weights.begin(), r.log_weights.end());
  }

  std::vector<double> g_values(options.exact_samples);
  sis single(model, twist, potential, sis_options(1));
  for (double& g : g_values) {
    const token_sequence reference = exact.sample(rng);
    g = single.run_conditional(prompt, std::span<const token>(reference), rng).log_weights[0];
  }

  kl_estimate out = combine_kl(summarize_bound(f_values), summarize_bound(g_values), log_z);
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

}  // namespace detail

/// @brief estimate_kl with the problem taken from a sampler: its model, twist, potential, and
/// the horizon, end token and proposal of its options(); only the sample sizes are given. The
/// sampler's own K, scheme and trigger are not used (F_q and G_q come from SIS runs).
/// @param smc the sampler whose proposal is measured
/// @param prompt s_0
/// @param exact exact samples from sigma (a TargetedExactSampler is checked against smc)
/// @param log_z the log Z to use: log_z_reference::known, ::from_bounds or ::from_upper_bound
/// @param samples the sample sizes
/// @param rng the random engine
/// @return F_q, G_q and the two KLs
/// @throw as the other overload (its messages name options.horizon etc. after the sampler's)
template <class Model, class Twist, class Pot, class Scheme, class Trigger, class Exact, RandomEngine Engine>
  requires ExactSampler<Exact, Engine>
[[nodiscard]] kl_estimate estimate_kl(twisted_smc<Model, Twist, Pot, Scheme, Trigger>& smc,
                                      std::span<const token> prompt, Exact& exact, const log_z_reference& log_z,
                                      const kl_samples& samples, Engine& rng) {
  const smc_options& o = smc.options();
  const kl_options options{.horizon = o.horizon, .proposal = o.proposal, .end_token = o.end_token,
                           .end_tokens = o.end_tokens, .proposal_samples = samples.proposal_samples, .exact_samples = samples.exact_samples,
                           .batch = samples.batch};
  return estimate_kl(smc.model(), smc.twist(), smc.potential(), prompt, exact, log_z, options, rng);
}

}  // namespace tsmc
