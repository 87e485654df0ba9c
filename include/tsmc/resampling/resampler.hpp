#pragma once
/// @file
/// @brief tsmc::resampler: log-weights in, ancestors out, with reusable buffers. The one call a
/// sampler makes per resampling step.

#include <tsmc/core/error.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/core/statistics.hpp>
#include <tsmc/core/types.hpp>
#include <tsmc/resampling/ancestors.hpp>
#include <tsmc/resampling/schemes.hpp>

#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace tsmc {

/// @brief Resamples from log-weights with a scheme, owning the normalised-weight, count and
/// ancestor-workspace buffers so that repeated calls with the same K allocate nothing.
///
///     tsmc::resampler<tsmc::systematic> r;
///     r.resample(log_weights, ancestors, rng);   // ancestors.size() == K: slot-stable
///
/// @tparam Scheme a tsmc::ResamplingScheme (systematic, stratified, ssp, residual, multinomial,
/// killing)
template <ResamplingScheme Scheme>
class resampler {
 public:
  /// @brief Wraps a scheme (default-constructed unless given, e.g.
  /// `resampler<residual>{residual{.remainder = residual_remainder::multinomial}}`).
  /// @param scheme the scheme, moved in
  explicit resampler(Scheme scheme = {}) : scheme_(std::move(scheme)) {}

  /// @brief Draws ancestors from unnormalised log-weights.
  ///
  /// Normalises the weights (max-shifted, so any finite spread works; -inf is a zero weight),
  /// draws counts for n = ancestors.size() offspring, and writes the ancestors: slot-stable
  /// (tsmc::slot_stable_ancestors) when n == K, in index order (tsmc::ancestors_from_counts)
  /// otherwise.
  /// @tparam E a tsmc::RandomEngine
  /// @param log_weights K >= 1 log-weights, none NaN or +inf, not all -inf
  /// @param ancestors n >= 1 outputs
  /// @param rng the random engine
  /// @throw tsmc::invalid_argument "tsmc::resampler::resample: ..." naming the bad argument and
  /// value (empty input, NaN or +inf, all -inf, empty ancestors), or the scheme's own exception
  /// (killing with n != K)
  template <RandomEngine E>
  void resample(std::span<const double> log_weights, std::span<particle_index> ancestors, E& rng) {
    check_positive("resampler::resample", "ancestors.size()", ancestors.size());
    normalise(log_weights, "resampler::resample");
    const std::size_t k = log_weights.size();
    counts_.resize(k);
    scheme_.offspring(std::span<const double>(weights_), ancestors.size(), std::span<particle_index>(counts_), rng);
    if (ancestors.size() == k) {
      slot_stable_ancestors(counts_, ancestors, ancestor_workspace_);
    } else {
      ancestors_from_counts(counts_, ancestors);
    }
  }

  /// @brief Conditional-SMC resampling: slot 0 holds the reference particle and keeps itself;
  /// the other K - 1 slots draw their ancestors from all K weights.
  ///
  /// Counts for n = K - 1 come from the scheme, then counts[0] += 1, then slot-stable ancestors,
  /// so ancestors[0] == 0. With K == 1, ancestors[0] = 0 and nothing is drawn. Only with
  /// multinomial is this the exact conditional of unconditional resampling (Andrieu, Doucet and
  /// Holenstein 2010), which the upper bound of conditional SMC relies on: K - 1 systematic,
  /// stratified, residual or SSP draws plus the reference are not the conditional law of those
  /// schemes (on toy problems E[Z / Zhat] came out near 0.92 instead of P(Zhat > 0)), and killing
  /// needs n == K. It is therefore available for resampler<multinomial> only (a static_assert
  /// names the scheme otherwise); twisted_smc::run_conditional always uses resampler<multinomial>
  /// here, whatever its own scheme.
  /// @tparam E a tsmc::RandomEngine
  /// @param log_weights K >= 1 log-weights, as for resample
  /// @param ancestors K outputs
  /// @param rng the random engine
  /// @throw tsmc::invalid_argument "tsmc::resampler::resample_conditional: ..." for bad
  /// log-weights or ancestors.size() != K
  template <RandomEngine E>
  void resample_conditional(std::span<const double> log_weights, std::span<particle_index> ancestors, E& rng) {
    static_assert(std::is_same_v<Scheme, multinomial>,
                  "tsmc::resampler::resample_conditional: only resampler<tsmc::multinomial> gives the exact "
                  "conditional kernel of conditional SMC; other schemes would bias its upper bound");
    const std::size_t k = log_weights.size();
    check_size("resampler::resample_conditional", "ancestors.size()", ancestors.size(), "log_weights.size()", k);
    normalise(log_weights, "resampler::resample_conditional");
    counts_.resize(k);
    if (k == 1) {
      counts_[0] = 1;
      ancestors[0] = 0;
      return;
    }
    scheme_.offspring(std::span<const double>(weights_), k - 1, std::span<particle_index>(counts_), rng);
    counts_[0] += 1;
    slot_stable_ancestors(counts_, ancestors, ancestor_workspace_);
  }

  /// @brief The offspring counts of the last call (K values).
  /// @return a view valid until the next call
  [[nodiscard]] std::span<const particle_index> counts() const noexcept { return counts_; }

  /// @brief The normalised weights of the last call (K values, summing to 1 up to rounding).
  /// @return a view valid until the next call
  [[nodiscard]] std::span<const double> weights() const noexcept { return weights_; }

  /// @brief The scheme, e.g. to change a residual's remainder between calls.
  /// @return a reference to the owned scheme
  [[nodiscard]] Scheme& scheme() noexcept { return scheme_; }

  /// @brief The scheme (read-only).
  /// @return a const reference to the owned scheme
  [[nodiscard]] const Scheme& scheme() const noexcept { return scheme_; }

 private:
  // log-weights -> weights_ = exp(l - max) / sum, validated for `function`.
  void normalise(std::span<const double> log_weights, const char* function) {
    check_positive(function, "log_weights.size()", log_weights.size());
    const double max = detail::max_log_weight(log_weights, function);
    check_argument(max > -std::numeric_limits<double>::infinity(), function, "log_weights",
                   "must not all be -inf (every weight zero cannot be resampled)", max);
    const std::size_t k = log_weights.size();
    weights_.resize(k);
    // Separate loops: the sum, carried through each call of exp, would go through memory.
    for (std::size_t i = 0; i < k; ++i) weights_[i] = std::exp(log_weights[i] - max);
    double total = 0.0;
    for (const double w : weights_) total += w;
    const double inverse = 1.0 / total;  // total >= 1: the maximum contributes exp(0)
    for (double& w : weights_) w *= inverse;
  }

  Scheme scheme_;
  std::vector<double> weights_;
  std::vector<particle_index> counts_;
  std::vector<particle_index> ancestor_workspace_;  // slot_stable_ancestors' scratch
};

}  // namespace tsmc
