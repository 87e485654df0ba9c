#pragma once
/// @file
/// @brief The fused per-particle proposal pass: logits = log p0 + log psi, their logsumexp and
/// one inverse-CDF draw, over one row of V candidates.

#include <tsmc/core/log_math.hpp>
#include <tsmc/core/types.hpp>

#include <Eigen/Core>

#include <cmath>
#include <cstddef>
#include <limits>

namespace tsmc {

/// @brief What one fused proposal pass returns for one particle.
struct proposal_draw {
  double log_normalizer = 0.0;  ///< log sum_v exp(a_v + b_v); -inf if every candidate has zero mass
  token chosen = 0;             ///< the sampled token
};

/// @brief Samples one token from softmax(a + b) and returns log sum_v exp(a_v + b_v).
///
/// The row is shifted by its maximum, exponentiated (vectorised by Eigen) into `scratch`, summed, and the token is found by a cumulative scan against u times the sum:
/// one uniform per draw, so per-particle streams make results independent of threading.
/// NaN or +inf anywhere makes log_normalizer NaN or +inf (the caller diagnoses); all -inf gives
/// -inf and chosen = 0.
/// @param a V log-values (log p0)
/// @param b V log-values (log psi), or nullptr for zeros
/// @param vocab V
/// @param u a uniform in [0, 1)
/// @param scratch a buffer of at least V doubles, overwritten
/// @tparam Real the type of a's entries (double); a template so that the pass is compiled only
/// in the translation units that sample
template <class Real>
[[nodiscard]] proposal_draw fused_proposal_draw(const Real* a, const double* b, std::size_t vocab, double u,
                                                Eigen::ArrayXd& scratch) {
  using row = Eigen::Array<Real, Eigen::Dynamic, 1>;
  const auto n = static_cast<Eigen::Index>(vocab);
  const Eigen::Map<const row> la(a, n);
  auto e = scratch.head(n);
  double max;
  if (b != nullptr) {
    const Eigen::Map<const Eigen::ArrayXd> lb(b, n);
    max = (la + lb).maxCoeff();
    if (!std::isfinite(max)) return {max == neg_inf ? neg_inf : max + (la + lb).sum(), 0};
    e = ((la + lb) - max).exp();
  } else {
    max = la.maxCoeff();
    if (!std::isfinite(max)) return {max == neg_inf ? neg_inf : max + la.sum(), 0};
    e = (la - max).exp();
  }
  const double total = e.sum();
  if (!std::isfinite(total)) return {total, 0};  // a NaN slipped past maxCoeff
  // Eigen's vectorised exp clamps very negative arguments, -inf included, to a tiny positive
  // value instead of 0. The sum (at least 1, from the maximum) cannot see it, but the scan must
  // never return a token whose logit is -inf: such a candidate is skipped.
  const auto logit = [a, b](Eigen::Index v) { return b != nullptr ? a[v] + b[v] : a[v]; };
  const double log_normalizer = max + std::log(total);
  const double target = u * total;
  double cumulative = 0.0;
  for (Eigen::Index v = 0; v < n; ++v) {
    cumulative += e[v];
    if (target < cumulative && logit(v) > neg_inf) return {log_normalizer, static_cast<token>(v)};
  }
  // Rounding left the cumulative sum a hair below the target: the last token with mass.
  Eigen::Index last = n - 1;
  while (last > 0 && !(logit(last) > neg_inf)) --last;
  return {log_normalizer, static_cast<token>(last)};
}

/// @brief What the fused pass over a row of float logits returns for one particle.
struct logit_draw {
  double log_normalizer = 0.0;  ///< logit_row_normalizer of the row (NaN: see there; also for a row of -inf only)
  token chosen = 0;             ///< the sampled token
};

/// @brief Samples one token from softmax(l) of a row of float logits and returns the row's log
/// normaliser, in one exp pass: the base proposal q = p0 of a model that hands over its logits.
///
/// The exps exp(l_v - m) are the ones logit_row_normalizer sums (same order, same std::exp), so
/// log_normalizer equals it bit for bit; the draw scans them against u times their sum, as
/// fused_proposal_draw does (one uniform per draw). -inf logits are never chosen.
/// @param logits V float logits
/// @param vocab V
/// @param u a uniform in [0, 1)
/// @param scratch a buffer of at least V doubles, overwritten
[[nodiscard]] inline logit_draw fused_logit_draw(const float* logits, std::size_t vocab, double u,
                                                 Eigen::ArrayXd& scratch) {
  double max = neg_inf;
  bool nan = false;
  for (std::size_t v = 0; v < vocab; ++v) {
    const double l = logits[v];
    nan = nan || std::isnan(l);
    max = l > max ? l : max;
  }
  if (nan || !std::isfinite(max)) return {std::numeric_limits<double>::quiet_NaN(), 0};
  double* e = scratch.data();
  double total = 0.0;
  for (std::size_t v = 0; v < vocab; ++v) {
    e[v] = std::exp(static_cast<double>(logits[v]) - max);
    total += e[v];
  }
  const double log_normalizer = max + std::log(total);
  const double target = u * total;
  double cumulative = 0.0;
  for (std::size_t v = 0; v < vocab; ++v) {
    cumulative += e[v];
    if (target < cumulative && logits[v] > -std::numeric_limits<float>::infinity())
      return {log_normalizer, static_cast<token>(v)};
  }
  // Rounding left the cumulative sum a hair below the target: the last token with mass.
  std::size_t last = vocab - 1;
  while (last > 0 && !(logits[last] > -std::numeric_limits<float>::infinity())) --last;
  return {log_normalizer, static_cast<token>(last)};
}

}  // namespace tsmc
