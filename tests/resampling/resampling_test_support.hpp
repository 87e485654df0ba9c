#pragma once
// Shared fixtures for the [resampling] tests: random non-degenerate weights, the scheme list,
// and the chi-square tail probability used by the distribution tests.

#include <tsmc/core/random.hpp>
#include <tsmc/core/types.hpp>
#include <tsmc/resampling/schemes.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace tsmc_test {

/// Normalised log-normal weights w_i ~ exp(sigma Z_i): non-degenerate for sigma ~ 1, no weight
/// dominating and none exactly integer when scaled by n.
inline std::vector<double> random_weights(std::size_t k, double sigma, std::uint64_t seed) {
  tsmc::default_engine rng{seed};
  std::vector<double> w(k);
  double total = 0.0;
  for (double& v : w) {
    v = std::exp(sigma * tsmc::standard_normal(rng));
    total += v;
  }
  for (double& v : w) v /= total;
  return w;
}

/// The classic residual scheme (multinomial remainder) as its own type, for TEMPLATE_TEST_CASE.
struct residual_multinomial : tsmc::residual {
  residual_multinomial() : tsmc::residual{.remainder = tsmc::residual_remainder::multinomial} {}
};

/// Whether a scheme accepts n != K (killing does not).
template <class Scheme>
inline constexpr bool allows_any_n = true;
template <>
inline constexpr bool allows_any_n<tsmc::killing> = false;

/// Regularised upper incomplete gamma Q(a, x) = Gamma(a, x) / Gamma(a): the series for
/// P = 1 - Q below x = a + 1, Legendre's continued fraction (modified Lentz) above.
inline double upper_incomplete_gamma(double a, double x) {
  if (x <= 0.0) return 1.0;
  const double log_prefactor = -x + a * std::log(x) - std::lgamma(a);
  if (x < a + 1.0) {
    double term = 1.0 / a, sum = term;
    for (int n = 1; n < 100000; ++n) {
      term *= x / (a + n);
      sum += term;
      if (term < sum * 1e-17) break;
    }
    return 1.0 - std::exp(log_prefactor) * sum;
  }
  constexpr double tiny = 1e-300;
  double b = x + 1.0 - a, c = 1.0 / tiny, d = 1.0 / b, h = d;
  for (int i = 1; i < 100000; ++i) {
    const double an = -i * (i - a);
    b += 2.0;
    d = an * d + b;
    if (std::fabs(d) < tiny) d = tiny;
    c = b + an / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1.0 / d;
    const double delta = d * c;
    h *= delta;
    if (std::fabs(delta - 1.0) < 1e-16) break;
  }
  return std::exp(log_prefactor) * h;
}

/// P(chi2_df > statistic).
inline double chi_square_tail(double statistic, std::size_t df) {
  return upper_incomplete_gamma(0.5 * static_cast<double>(df), 0.5 * statistic);
}

/// Per-particle accumulators of counts over many draws.
struct count_moments {
  std::vector<double> sum, sum_sq;
  std::size_t draws = 0;
  explicit count_moments(std::size_t k) : sum(k, 0.0), sum_sq(k, 0.0) {}
  void add(const std::vector<tsmc::particle_index>& counts) {
    for (std::size_t i = 0; i < counts.size(); ++i) {
      const double c = counts[i];
      sum[i] += c;
      sum_sq[i] += c * c;
    }
    ++draws;
  }
  /// Largest |z| of the mean count against expected[i], with the sample standard deviation;
  /// a particle with zero sample variance must match exactly (else +inf).
  [[nodiscard]] double max_abs_z(const std::vector<double>& expected) const {
    const double r = static_cast<double>(draws);
    double worst = 0.0;
    for (std::size_t i = 0; i < sum.size(); ++i) {
      const double mean = sum[i] / r;
      const double var = (sum_sq[i] - r * mean * mean) / (r - 1.0);
      const double se = std::sqrt(std::max(var, 0.0) / r);
      const double diff = std::fabs(mean - expected[i]);
      const double z = se > 0.0 ? diff / se : (diff < 1e-9 ? 0.0 : std::numeric_limits<double>::infinity());
      worst = std::max(worst, z);
    }
    return worst;
  }
};

}  // namespace tsmc_test
