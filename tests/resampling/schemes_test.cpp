// Tests of the resampling schemes: sums, structure, unbiasedness, variance ordering, the
// multinomial law, bad input. Statistical assertions use fixed seeds and thresholds whose
// false-alarm probability is at most 1e-6 per assertion (documented at each threshold).

#include <catch2/catch.hpp>

#include <tsmc/resampling/schemes.hpp>

#include "resampling/resampling_test_support.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <numeric>
#include <string>
#include <vector>

using tsmc::particle_index;
using tsmc_test::random_weights;
using tsmc_test::residual_multinomial;

namespace {

// |z| limit for a per-particle z-test with Bonferroni over at most 25 particles:
// 25 * P(|Z| > 6) = 25 * 1.97e-9 = 4.9e-8 <= 1e-6, leaving a factor 20 for the normal
// approximation of a mean of >= 20000 bounded counts.
constexpr double z_limit = 6.0;

template <class Scheme>
std::vector<particle_index> draw(Scheme& scheme, const std::vector<double>& w, std::size_t n,
                                 tsmc::default_engine& rng) {
  std::vector<particle_index> counts(w.size());
  scheme.offspring(w, n, counts, rng);
  return counts;
}

std::uint64_t total(const std::vector<particle_index>& counts) {
  return std::accumulate(counts.begin(), counts.end(), std::uint64_t{0});
}

}  // namespace

TEST_CASE("every scheme models ResamplingScheme", "[resampling]") {
  STATIC_REQUIRE(tsmc::ResamplingScheme<tsmc::multinomial>);
  STATIC_REQUIRE(tsmc::ResamplingScheme<tsmc::stratified>);
  STATIC_REQUIRE(tsmc::ResamplingScheme<tsmc::systematic>);
  STATIC_REQUIRE(tsmc::ResamplingScheme<tsmc::residual>);
  STATIC_REQUIRE(tsmc::ResamplingScheme<tsmc::ssp>);
  STATIC_REQUIRE(tsmc::ResamplingScheme<tsmc::killing>);
  STATIC_REQUIRE(tsmc::ResamplingScheme<residual_multinomial>);
  struct const_only {
    void offspring(std::span<double>, std::size_t, std::span<particle_index>, tsmc::default_engine&) {}
  };
  struct no_offspring {};
  STATIC_REQUIRE_FALSE(tsmc::ResamplingScheme<int>);
  STATIC_REQUIRE_FALSE(tsmc::ResamplingScheme<no_offspring>);
  STATIC_REQUIRE_FALSE(tsmc::ResamplingScheme<const_only>);  // takes mutable weights: wrong signature
}

TEMPLATE_TEST_CASE("scheme counts sum to n, a single particle works, zero weights get nothing", "[resampling]",
                   tsmc::multinomial, tsmc::stratified, tsmc::systematic, tsmc::residual, residual_multinomial,
                   tsmc::ssp, tsmc::killing) {
  TestType scheme;
  tsmc::default_engine rng{11};
  SECTION("single particle") {
    std::vector<double> one{1.0};
    CHECK(draw(scheme, one, 1, rng) == std::vector<particle_index>{1});
    if constexpr (tsmc_test::allows_any_n<TestType>) CHECK(draw(scheme, one, 5, rng) == std::vector<particle_index>{5});
  }
  SECTION("sums, with zero weights first, inside and last") {
    for (std::size_t k : {2u, 3u, 5u, 17u, 64u, 1000u}) {
      auto w = random_weights(k, 1.5, 100 + k);
      w.back() = 0.0;
      if (k >= 4) {
        w.front() = 0.0;
        w[k / 2] = 0.0;
      }
      for (std::size_t n : {k, std::size_t{1}, k / 2 + 1, 3 * k + 1}) {
        if (!tsmc_test::allows_any_n<TestType> && n != k) continue;
        for (int rep = 0; rep < 20; ++rep) {
          const auto counts = draw(scheme, w, n, rng);
          REQUIRE(total(counts) == n);
          for (std::size_t i = 0; i < k; ++i)
            if (w[i] == 0.0) REQUIRE(counts[i] == 0);
        }
      }
    }
  }
  SECTION("unnormalised weights are renormalised") {
    const std::vector<double> w{2.0, 0.0, 6.0};  // 0.25, 0, 0.75
    const std::size_t n = tsmc_test::allows_any_n<TestType> ? 4 : 3;
    for (int rep = 0; rep < 50; ++rep) {
      const auto counts = draw(scheme, w, n, rng);
      REQUIRE(total(counts) == n);
      REQUIRE(counts[1] == 0);
    }
  }
}

TEMPLATE_TEST_CASE("scheme rejects bad weights with a message naming function, argument and value", "[resampling]",
                   tsmc::multinomial, tsmc::stratified, tsmc::systematic, tsmc::residual, tsmc::ssp, tsmc::killing) {
  TestType scheme;
  tsmc::default_engine rng{1};
  std::vector<particle_index> counts(3);
  const std::vector<double> empty;
  const std::vector<double> nan{0.5, std::numeric_limits<double>::quiet_NaN(), 0.5};
  const std::vector<double> negative{0.5, -0.25, 0.75};
  const std::vector<double> infinite{0.5, std::numeric_limits<double>::infinity(), 0.5};
  const std::vector<double> zeros{0.0, 0.0, 0.0};
  const std::vector<double> good{0.2, 0.3, 0.5};
  std::vector<particle_index> no_counts;
  using Catch::Matchers::Contains;
  CHECK_THROWS_AS(scheme.offspring(empty, 3, no_counts, rng), tsmc::invalid_argument);
  CHECK_THROWS_WITH(scheme.offspring(empty, 3, no_counts, rng), Contains("::offspring: weights.size()"));
  CHECK_THROWS_WITH(scheme.offspring(nan, 3, counts, rng), Contains("weights must not contain NaN, got nan"));
  CHECK_THROWS_WITH(scheme.offspring(negative, 3, counts, rng), Contains("weights must be >= 0, got -0.25"));
  CHECK_THROWS_WITH(scheme.offspring(infinite, 3, counts, rng), Contains("weights must be finite, got inf"));
  CHECK_THROWS_WITH(scheme.offspring(zeros, 3, counts, rng), Contains("sum of weights must be positive"));
  CHECK_THROWS_WITH(scheme.offspring(good, 0, counts, rng), Contains("n must be positive, got 0"));
  std::vector<particle_index> short_counts(2);
  CHECK_THROWS_WITH(scheme.offspring(good, 3, short_counts, rng), Contains("counts.size() must equal"));
  CHECK_THROWS_AS(scheme.offspring(negative, 3, counts, rng), tsmc::invalid_argument);
}

TEST_CASE("scheme error messages name the scheme", "[resampling]") {
  tsmc::default_engine rng{1};
  std::vector<particle_index> counts(2);
  const std::vector<double> bad{0.5, -1.0};
  CHECK_THROWS_WITH(tsmc::multinomial{}.offspring(bad, 2, counts, rng),
                    "tsmc::multinomial::offspring: weights must be >= 0, got -1");
  CHECK_THROWS_WITH(tsmc::stratified{}.offspring(bad, 2, counts, rng),
                    "tsmc::stratified::offspring: weights must be >= 0, got -1");
  CHECK_THROWS_WITH(tsmc::systematic{}.offspring(bad, 2, counts, rng),
                    "tsmc::systematic::offspring: weights must be >= 0, got -1");
  CHECK_THROWS_WITH(tsmc::residual{}.offspring(bad, 2, counts, rng),
                    "tsmc::residual::offspring: weights must be >= 0, got -1");
  CHECK_THROWS_WITH(tsmc::ssp{}.offspring(bad, 2, counts, rng), "tsmc::ssp::offspring: weights must be >= 0, got -1");
  CHECK_THROWS_WITH(tsmc::killing{}.offspring(bad, 2, counts, rng),
                    "tsmc::killing::offspring: weights must be >= 0, got -1");
  const std::vector<double> good{0.5, 0.5};
  CHECK_THROWS_WITH(tsmc::killing{}.offspring(good, 3, counts, rng),
                    "tsmc::killing::offspring: n must equal weights.size() 2, got 3");
}

namespace {
// The largest per-particle |z| of the mean offspring over 100000 draws of `scheme` on `drawn`
// weights, against the expectation n w_i of the `target` weights.
template <class Scheme>
double offspring_mean_max_z(Scheme& scheme, const std::vector<double>& drawn, const std::vector<double>& target,
                            std::size_t n, std::uint64_t seed) {
  const std::size_t k = drawn.size();
  tsmc::default_engine rng{seed};
  tsmc_test::count_moments moments(k);
  std::vector<particle_index> counts(k);
  for (int r = 0; r < 100000; ++r) {
    scheme.offspring(drawn, n, counts, rng);
    moments.add(counts);
  }
  std::vector<double> expected(k);
  for (std::size_t i = 0; i < k; ++i) expected[i] = static_cast<double>(n) * target[i];
  return moments.max_abs_z(expected);
}
}  // namespace

TEMPLATE_TEST_CASE("scheme is unbiased: mean offspring equals n w_i, for n == K and n != K", "[resampling]",
                   tsmc::multinomial, tsmc::stratified, tsmc::systematic, tsmc::residual, residual_multinomial,
                   tsmc::ssp, tsmc::killing) {
  constexpr std::size_t k = 12;
  const auto w = random_weights(k, 1.0, 2024);
  for (std::size_t n : {k, std::size_t{7}, std::size_t{29}}) {
    if (!tsmc_test::allows_any_n<TestType> && n != k) continue;
    TestType scheme;
    INFO("n = " << n);
    CHECK(offspring_mean_max_z(scheme, w, w, n, 77 + n) < z_limit);
  }
}

TEST_CASE("unbiasedness test has power: a biased scheme is caught", "[resampling]") {
  // Systematic on slightly perturbed weights must fail the same test, so the test is not vacuous.
  constexpr std::size_t k = 12, n = 12;
  auto w = random_weights(k, 1.0, 2024);
  auto perturbed = w;
  perturbed[0] *= 1.05;
  tsmc::systematic scheme;
  CHECK(offspring_mean_max_z(scheme, perturbed, w, n, 5) > z_limit);
}

namespace {
// Checks lo(n w_i) <= counts[i] <= hi(n w_i) for many draws on several weight vectors.
template <class Scheme, class Lower, class Upper>
void check_structure(Lower lower, Upper upper) {
  Scheme scheme;
  tsmc::default_engine rng{31};
  for (std::size_t k : {5u, 50u, 333u}) {
    for (double sigma : {0.3, 1.0, 2.5}) {
      const auto w = random_weights(k, sigma, 1000 * k + static_cast<std::uint64_t>(sigma * 10));
      for (std::size_t n : {k, k / 2 + 1, 2 * k + 3}) {
        std::vector<particle_index> counts(k);
        for (int rep = 0; rep < 300; ++rep) {
          scheme.offspring(w, n, counts, rng);
          for (std::size_t i = 0; i < k; ++i) {
            const double expected = static_cast<double>(n) * w[i];
            const double c = counts[i];
            if (c < lower(expected) || c > upper(expected)) {  // INFO only on failure: it is costly
              INFO("k = " << k << ", n = " << n << ", i = " << i << ", n w_i = " << expected << ", count = " << c);
              REQUIRE(c >= lower(expected));
              REQUIRE(c <= upper(expected));
            }
          }
        }
      }
    }
  }
}
}  // namespace

TEST_CASE("structure: systematic, SSP and residual-systematic give floor or ceil of n w_i", "[resampling]") {
  const auto floor_ = [](double x) { return std::floor(x); };
  const auto ceil_ = [](double x) { return std::ceil(x); };
  check_structure<tsmc::systematic>(floor_, ceil_);
  check_structure<tsmc::ssp>(floor_, ceil_);
  check_structure<tsmc::residual>(floor_, ceil_);
}

TEST_CASE("structure: stratified stays within floor - 1 and ceil + 1; residual at least floor", "[resampling]") {
  check_structure<tsmc::stratified>([](double x) { return std::floor(x) - 1.0; },
                                    [](double x) { return std::ceil(x) + 1.0; });
  const auto floor_ = [](double x) { return std::floor(x); };
  const auto any = [](double) { return std::numeric_limits<double>::infinity(); };
  check_structure<tsmc::residual>(floor_, any);
  check_structure<residual_multinomial>(floor_, any);
}

TEMPLATE_TEST_CASE("structure: uniform weights give exactly one offspring each", "[resampling]", tsmc::stratified,
                   tsmc::systematic, tsmc::ssp, tsmc::residual, residual_multinomial) {
  TestType scheme;
  tsmc::default_engine rng{8};
  for (std::size_t k : {1u, 2u, 7u, 100u, 1000u, 4099u}) {
    const std::vector<double> w(k, 1.0 / static_cast<double>(k));
    std::vector<particle_index> counts(k);
    for (int rep = 0; rep < 20; ++rep) {
      scheme.offspring(w, k, counts, rng);
      REQUIRE(std::all_of(counts.begin(), counts.end(), [](particle_index c) { return c == 1; }));
    }
  }
}

TEST_CASE("structure: killing keeps n == K and keeps the heaviest particle", "[resampling]") {
  tsmc::killing scheme;
  tsmc::default_engine rng{3};
  const auto w = random_weights(40, 1.0, 9);
  const auto heaviest = static_cast<std::size_t>(std::max_element(w.begin(), w.end()) - w.begin());
  std::vector<particle_index> counts(40);
  for (int rep = 0; rep < 1000; ++rep) {
    scheme.offspring(w, 40, counts, rng);
    REQUIRE(total(counts) == 40);
    REQUIRE(counts[heaviest] >= 1);  // survives with probability w_max / w_max = 1
  }
  std::vector<particle_index> wrong(40);
  CHECK_THROWS_AS(scheme.offspring(w, 39, wrong, rng), tsmc::invalid_argument);
}

TEST_CASE("variance ordering: systematic, stratified, residual and SSP do not exceed multinomial", "[resampling]") {
  // Total variance V = E sum_i (N_i - n w_i)^2. Multinomial's is exact: n (1 - sum w_i^2).
  // Each scheme's V is estimated from R draws; the assertion (V_hat - V_mult) / se < 6 has
  // false-alarm probability below 1e-9 (one-sided normal) when V_scheme <= V_mult. The
  // multinomial estimate itself is checked against the exact value (|z| < 6).
  constexpr std::size_t k = 20;
  const auto w = random_weights(k, 1.0, 4242);
  constexpr int draws = 40000;
  for (std::size_t n : {k, std::size_t{15}, std::size_t{33}}) {
    double sum_sq = 0.0;
    for (double v : w) sum_sq += v * v;
    const double v_mult = static_cast<double>(n) * (1.0 - sum_sq);
    const auto estimate = [&](auto scheme, std::uint64_t seed) {
      tsmc::default_engine rng{seed};
      std::vector<particle_index> counts(k);
      double s = 0.0, s2 = 0.0;
      for (int r = 0; r < draws; ++r) {
        scheme.offspring(w, n, counts, rng);
        double d = 0.0;
        for (std::size_t i = 0; i < k; ++i) {
          const double e = counts[i] - static_cast<double>(n) * w[i];
          d += e * e;
        }
        s += d;
        s2 += d * d;
      }
      const double mean = s / draws;
      const double se = std::sqrt(std::max(0.0, (s2 - draws * mean * mean) / (draws - 1.0)) / draws);
      return std::pair{mean, se};
    };
    INFO("n = " << n << ", exact multinomial total variance = " << v_mult);
    const auto [vm, sem] = estimate(tsmc::multinomial{}, 1);
    CHECK(std::fabs(vm - v_mult) / sem < z_limit);
    const auto below = [&](std::pair<double, double> e) { return e.first <= v_mult + z_limit * e.second; };
    const auto sys = estimate(tsmc::systematic{}, 2);
    const auto strat = estimate(tsmc::stratified{}, 3);
    const auto res = estimate(tsmc::residual{}, 4);
    const auto res_m = estimate(residual_multinomial{}, 5);
    const auto ssp = estimate(tsmc::ssp{}, 6);
    INFO("systematic " << sys.first << ", stratified " << strat.first << ", residual " << res.first
                       << ", residual-multinomial " << res_m.first << ", ssp " << ssp.first);
    CHECK(below(sys));
    CHECK(below(strat));
    CHECK(below(res));
    CHECK(below(res_m));
    CHECK(below(ssp));
    // Not part of the theory's guarantee, but a sanity check that these schemes reduce variance
    // substantially on non-degenerate weights.
    CHECK(sys.first < 0.5 * v_mult);
    CHECK(ssp.first < 0.5 * v_mult);
  }
}

TEST_CASE("chi-square tail helper matches closed forms", "[resampling]") {
  // df = 2: P(chi2 > x) = exp(-x / 2); df = 1: erfc(sqrt(x / 2)).
  for (double x : {0.1, 1.0, 5.0, 30.0, 60.0}) {
    CHECK(tsmc_test::chi_square_tail(x, 2) == Approx(std::exp(-x / 2)).epsilon(1e-10));
    CHECK(tsmc_test::chi_square_tail(x, 1) == Approx(std::erfc(std::sqrt(x / 2))).epsilon(1e-8));
  }
}

namespace {
// Chi-square goodness of fit of the multinomial scheme's count vectors against the exact
// Multinomial(n, w) law, i.e. the law of n direct categorical draws. Cells whose expected
// frequency is below 20 are pooled into one. Returns the p-value.
double multinomial_law_p_value(const std::vector<double>& w, std::size_t n, int draws, std::uint64_t seed) {
  const std::size_t k = w.size();
  std::map<std::vector<particle_index>, int> observed;
  tsmc::multinomial scheme;
  tsmc::default_engine rng{seed};
  std::vector<particle_index> counts(k);
  for (int r = 0; r < draws; ++r) {
    scheme.offspring(w, n, counts, rng);
    ++observed[counts];
  }
  // Enumerate every composition of n into k parts with its exact probability.
  double statistic = 0.0, pooled_expected = 0.0, pooled_observed = 0.0;
  std::size_t cells = 0;
  std::vector<particle_index> c(k, 0);
  const auto visit = [&](auto&& self, std::size_t i, std::size_t left) -> void {
    if (i + 1 == k) {
      c[i] = static_cast<particle_index>(left);
      double log_p = std::lgamma(static_cast<double>(n) + 1.0);
      for (std::size_t j = 0; j < k; ++j)
        log_p += c[j] * std::log(w[j]) - std::lgamma(static_cast<double>(c[j]) + 1.0);
      const double expected = draws * std::exp(log_p);
      const auto it = observed.find(c);
      const double obs = it == observed.end() ? 0.0 : it->second;
      if (expected < 20.0) {
        pooled_expected += expected;
        pooled_observed += obs;
      } else {
        statistic += (obs - expected) * (obs - expected) / expected;
        ++cells;
      }
      return;
    }
    for (std::size_t v = 0; v <= left; ++v) {
      c[i] = static_cast<particle_index>(v);
      self(self, i + 1, left - v);
    }
  };
  visit(visit, 0, n);
  if (pooled_expected > 0.0) {
    statistic += (pooled_observed - pooled_expected) * (pooled_observed - pooled_expected) / pooled_expected;
    ++cells;
  }
  return tsmc_test::chi_square_tail(statistic, cells - 1);
}
}  // namespace

TEST_CASE("multinomial by spacings has the law of n direct categorical draws", "[resampling]") {
  // Each assertion: chi-square p-value > 1e-6, a false-alarm probability of 1e-6 (asymptotic
  // chi-square; every cell's expected frequency is at least 20).
  CHECK(multinomial_law_p_value({0.1, 0.2, 0.3, 0.4}, 5, 200000, 1) > 1e-6);     // n > K
  CHECK(multinomial_law_p_value(random_weights(6, 1.0, 3), 6, 200000, 2) > 1e-6);  // n == K
  CHECK(multinomial_law_p_value(random_weights(10, 1.0, 4), 1, 200000, 3) > 1e-6);  // one draw: categorical
  CHECK(multinomial_law_p_value(random_weights(7, 0.5, 5), 3, 200000, 4) > 1e-6);   // n < K
}

namespace {

// Multinomial counts by the plain forward walk over the same spacings: the reference the guided
// merge must reproduce exactly (same engine, same total, same cumulative sums).
std::vector<particle_index> walked_multinomial(const std::vector<double>& w, std::size_t n, std::uint64_t seed) {
  std::vector<particle_index> counts(w.size());
  const auto s = tsmc::detail::check_offspring_arguments("walk", w, n, counts);
  tsmc::default_engine rng{seed};
  tsmc::detail::spacings_workspace workspace;
  const auto spacings = tsmc::detail::draw_spacings(workspace, n, rng);  // the points only
  const double* points = spacings.points;  // with +inf after T_n
  const double t = spacings.total;
  double sum = 0.0;  // summed in order, as the merge does: its factor decides the boundaries
  for (std::size_t i = 0; i < s.last_positive; ++i) sum += w[i];
  const double factor = tsmc::detail::spacings_factor(t, sum + w[s.last_positive], w.size());
  double c = 0.0;
  std::size_t j = 0;
  for (std::size_t i = 0; i < s.last_positive; ++i) {
    c += w[i];
    const std::size_t start = j;
    while (points[j] < c * factor) ++j;
    counts[i] = static_cast<particle_index>(j - start);
  }
  counts[s.last_positive] = static_cast<particle_index>(n - j);
  return counts;
}

}  // namespace

TEST_CASE("exponential partial sums: iid Exp(1) spacings, summed in pairs", "[resampling]") {
  // The spacings E_j = T_j - T_{j-1} must be iid Exp(1): odd and even positions alike (a pair
  // enters the sum as T + E_1 and T + (E_1 + E_2)), and uncorrelated within a pair.
  // Chi-square over 16 equiprobable bins of exp(-E) for each position class; correlation by z-test.
  const std::size_t m = 400001;  // odd: the last spacing comes on its own
  std::vector<double> sums(m);
  tsmc::default_engine rng{2718};
  const double last = tsmc::detail::exponential_partial_sums(sums.data(), m, rng);
  CHECK(last == sums[m - 1]);
  std::vector<double> spacing(m);
  double previous = 0.0;
  for (std::size_t j = 0; j < m; ++j) {
    spacing[j] = sums[j] - previous;
    previous = sums[j];
  }
  CHECK(*std::min_element(spacing.begin(), spacing.end()) >= 0.0);  // nondecreasing sums
  constexpr int bins = 16;
  for (std::size_t parity = 0; parity < 2; ++parity) {
    std::vector<double> observed(bins, 0.0);
    double count = 0.0;
    for (std::size_t j = parity; j + 1 < m; j += 2) {
      const double tail = std::exp(-spacing[j]);  // Uniform(0, 1) when E_j ~ Exp(1)
      observed[std::min(bins - 1, static_cast<int>(tail * bins))] += 1.0;
      count += 1.0;
    }
    double chi2 = 0.0;
    for (const double o : observed) chi2 += (o - count / bins) * (o - count / bins) / (count / bins);
    INFO("parity " << parity << ": chi-square " << chi2);
    CHECK(tsmc_test::chi_square_tail(chi2, bins - 1) > 1e-6);
  }
  // Within-pair correlation of (E_{2i}, E_{2i+1}): 0 for independent spacings, se 1 / sqrt(pairs).
  double sxy = 0.0, pairs = 0.0;
  for (std::size_t j = 0; j + 1 < m - 1; j += 2) {
    sxy += (spacing[j] - 1.0) * (spacing[j + 1] - 1.0);
    pairs += 1.0;
  }
  const double z = sxy / pairs * std::sqrt(pairs);  // Var[(E - 1)(E' - 1)] = 1
  INFO("within-pair correlation z = " << z);
  CHECK(std::fabs(z) < 5.3);  // two-sided 1e-7
}

TEST_CASE("multinomial's guided merge gives exactly the counts of a forward walk", "[resampling]") {
  // Large n exercises the rare paths: cells holding four or more points below a boundary
  // (probability at most 1.9% per cell) and gaps of more than eight empty cells (about 3e-4).
  // Weights scaled by 1000 (and those with zeros put in) are not normalised: the merge then runs
  // again with T_{n+1} / total; normalised ones are merged once with T_{n+1}.
  struct setting {
    std::size_t k, n;
    double sigma, scale;
  };
  const std::vector<setting> settings{{1, 1, 1.0, 1.0},           {1, 50, 1.0, 1000.0},       {2, 1, 1.0, 1.0},
                                      {7, 3, 0.5, 1000.0},        {100, 100, 0.1, 1.0},       {100, 100, 4.0, 1.0},
                                      {3, 20000, 1.0, 1.0},       {20000, 5, 1.0, 1.0},       {100000, 100000, 0.1, 1.0},
                                      {100000, 100000, 2.0, 1.0}, {5000, 200000, 3.0, 1.0}, {300, 300, 1.0, 1000.0}};
  tsmc::multinomial scheme;  // shared: stale workspace contents from earlier calls must not matter
  std::uint64_t seed = 77;
  for (int round = 0; round < 2; ++round) {
    for (const auto& [k, n, sigma, scale] : settings) {
      auto w = random_weights(k, sigma, seed);
      for (double& v : w) v *= scale;
      if (k >= 10 && scale == 1.0) {
        for (std::size_t i = 0; i < k; i += 7) w[i] = 0.0;  // zero weights inside and at the end
        w[k - 1] = 0.0;
        w[k - 2] = 0.0;
      }
      std::vector<particle_index> counts(k);
      tsmc::default_engine rng{seed};
      scheme.offspring(w, n, counts, rng);
      INFO("round " << round << ": k = " << k << ", n = " << n << ", sigma = " << sigma);
      CHECK(counts == walked_multinomial(w, n, seed));
      ++seed;
    }
  }
}

namespace {

// An engine whose every ziggurat draw lands in the tail with u = 2^-53: spacings of
// r + 53 log 2 = 44.4, far wider than a unit cell, so T_{n+1} outgrows any reserved guide.
struct far_tail_engine {
  using result_type = std::uint64_t;
  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return ~result_type{0}; }
  bool layer_draw = true;
  result_type operator()() {
    layer_draw = !layer_draw;
    return layer_draw ? 0 : ~result_type{0} << 8;  // layer 0 at x near x_0, then u = 2^-53
  }
};

// Checks guide[c] == #{j : T_j < c} for every cell the merge may look up, by binary search.
void check_guide(const tsmc::detail::spacings& s, std::size_t n) {
  const auto entries = static_cast<std::size_t>(s.last_cell) + 9;
  std::size_t wrong = 0;
  for (std::size_t c = 0; c < entries; ++c) {
    const auto below = std::lower_bound(s.points, s.points + n, static_cast<double>(c)) - s.points;
    wrong += s.guide[c] != static_cast<std::uint32_t>(below);
  }
  CHECK(wrong == 0);
  CHECK(s.last_cell == std::floor(s.total) + 1);
  CHECK(std::is_sorted(s.points, s.points + n + 4));
  CHECK(s.points[n] == std::numeric_limits<double>::infinity());
}

}  // namespace

namespace {

// An engine that returns the same 64 bits for ever.
struct constant_engine {
  using result_type = std::uint64_t;
  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return ~result_type{0}; }
  result_type bits;
  result_type operator()() const { return bits; }
};

}  // namespace

TEST_CASE("systematic and stratified: offsets next to 1 still count exactly", "[resampling]") {
  // Points j + u with u = 1 - v tiny: x + v would round up to the next integer for boundaries on
  // integers, giving {2, 1, 1} here, and H(n) = n + 1.
  const std::vector<double> w{0.25, 0.25, 0.5};
  std::vector<particle_index> counts(3);
  constant_engine ones{~std::uint64_t{0}};  // v = 1 exactly after rounding
  tsmc::systematic sys;
  sys.offspring(w, 4, counts, ones);
  CHECK(counts == std::vector<particle_index>{1, 1, 2});
  tsmc::stratified strat;
  strat.offspring(w, 4, counts, ones);
  CHECK(counts == std::vector<particle_index>{1, 1, 2});
  // Uniform weights 2^-20 on 2^20 particles put every boundary on an integer; v = 1 - 2^-40 made
  // x + v round up from x = 2^13 on: one particle had two offspring and the last none.
  const std::size_t k = std::size_t{1} << 20;
  const std::vector<double> uniform(k, 0x1.0p-20);
  std::vector<particle_index> many(k);
  constant_engine near_one{((std::uint64_t{1} << 53) - (std::uint64_t{1} << 13)) << 11};
  for (int scheme = 0; scheme < 2; ++scheme) {
    if (scheme == 0) sys.offspring(uniform, k, many, near_one);
    if (scheme == 1) strat.offspring(uniform, k, many, near_one);
    INFO("scheme " << scheme);
    CHECK(std::count(many.begin(), many.end(), particle_index{1}) == static_cast<std::ptrdiff_t>(k));
  }
}

TEST_CASE("multinomial's spacings: the guide counts the points below every cell", "[resampling]") {
  tsmc::detail::spacings_workspace workspace;  // shared: entries of earlier, larger draws must not matter
  std::uint64_t seed = 11;
  for (const std::size_t n : {1, 2, 3, 1000, 100000, 17, 2, 4000}) {
    tsmc::default_engine rng{seed++};
    INFO("n = " << n);
    check_guide(tsmc::detail::draw_spacings(workspace, n, rng), n);
  }
  // T_{n+1} = 44.4 (n + 1) lies beyond the room reserved for n points (n + 10 sqrt(n + 1) + 65
  // cells): the guide grows; every gap is 44 cells wide, past the eight each point writes.
  for (const std::size_t n : {1, 5, 40}) {
    tsmc::detail::spacings_workspace fresh;
    far_tail_engine far;
    const auto s = tsmc::detail::draw_spacings(fresh, n, far);
    INFO("far tail, n = " << n);
    CHECK(s.total == Approx(static_cast<double>(n + 1) * (tsmc::detail::exponential_ziggurat_tables::r +
                                                            53.0 * std::log(2.0))));
    check_guide(s, n);
  }
}

TEST_CASE("multinomial's merge: the SSE2 and the scalar comparisons give the same counts", "[resampling]") {
  // Both merges of one set of spacings, for normalised, unnormalised and zero-laden weights, and
  // with bad weights (NaN, negative, infinite): no undefined behaviour, the same summary.
  tsmc::detail::spacings_workspace workspace;
  std::uint64_t seed = 5;
  for (const std::size_t k : {1, 2, 9, 1000, 50000}) {
    for (const double sigma : {0.1, 3.0}) {
      auto w = random_weights(k, sigma, seed);
      if (k > 2) w[k / 2] = 0.0;
      const std::size_t n = k + 3;
      tsmc::default_engine rng{seed++};
      const auto s = tsmc::detail::draw_spacings(workspace, n, rng);
      for (int variant = 0; variant < 5; ++variant) {
        auto v = w;
        if (variant == 1) v[0] *= 7.0;                                      // not normalised
        if (variant == 2) v[k / 3] = std::numeric_limits<double>::quiet_NaN();
        if (variant == 3) v[k / 3] = -0.5;
        if (variant == 4) v[k / 3] = std::numeric_limits<double>::infinity();
        std::vector<particle_index> scalar(k, 3), vector(k, 3);
        const std::size_t last = k - 1;
        const auto a = tsmc::detail::spacings_merge<false, false>(v.data(), last, s.total, s, scalar.data());
        if constexpr (tsmc::detail::sse2_merge_available) {
          const auto b = tsmc::detail::spacings_merge<false, true>(v.data(), last, s.total, s, vector.data());
          INFO("k = " << k << ", sigma = " << sigma << ", variant " << variant);
          CHECK(scalar == vector);
          CHECK(a.below == b.below);
          CHECK((a.sum == b.sum || (std::isnan(a.sum) && std::isnan(b.sum))));
          CHECK((a.smallest < 0.0) == (b.smallest < 0.0));
        }
        if (variant >= 2 && k / 3 < last) CHECK((!(a.smallest >= 0.0) || !std::isfinite(a.sum)));  // detectable
      }
    }
  }
}

TEST_CASE("the law test has power: systematic is not multinomial", "[resampling]") {
  // Same procedure on systematic counts must reject (their law differs from Multinomial).
  const std::vector<double> w{0.1, 0.2, 0.3, 0.4};
  std::map<std::vector<particle_index>, int> seen;
  tsmc::systematic scheme;
  tsmc::default_engine rng{1};
  std::vector<particle_index> counts(4);
  for (int r = 0; r < 1000; ++r) {
    scheme.offspring(w, 5, counts, rng);
    ++seen[counts];
  }
  CHECK(seen.size() <= 8);  // only floor/ceil vectors: far fewer outcomes than the 56 of a multinomial
}

TEST_CASE("schemes reuse their workspace: no growth in steady state", "[resampling]") {
  tsmc::multinomial m;
  tsmc::residual r{.remainder = tsmc::residual_remainder::multinomial};
  tsmc::killing kill;
  tsmc::default_engine rng{1};
  const auto w = random_weights(256, 1.0, 1);
  std::vector<particle_index> counts(256);
  m.offspring(w, 256, counts, rng);
  r.offspring(w, 256, counts, rng);
  kill.offspring(w, 256, counts, rng);
  const auto* m_points = m.workspace.points.data();
  const auto* m_guide = m.workspace.guide.data();
  const auto* r_data = r.workspace.data();
  const auto* r_points = r.remainder_workspace.points.data();
  const auto* r_guide = r.remainder_workspace.guide.data();
  const auto* k_points = kill.workspace.points.data();
  const auto* k_guide = kill.workspace.guide.data();
  for (int rep = 0; rep < 100; ++rep) {
    m.offspring(w, 256, counts, rng);
    r.offspring(w, 256, counts, rng);
    kill.offspring(w, 256, counts, rng);  // a different number of refills each time
  }
  CHECK(m.workspace.points.data() == m_points);
  CHECK(m.workspace.guide.data() == m_guide);
  CHECK(r.workspace.data() == r_data);
  CHECK(r.remainder_workspace.points.data() == r_points);
  CHECK(r.remainder_workspace.guide.data() == r_guide);
  CHECK(kill.workspace.points.data() == k_points);
  CHECK(kill.workspace.guide.data() == k_guide);
}

TEST_CASE("select_less picks a when x < y and b otherwise, NaN and signed zeros included", "[resampling]") {
  using tsmc::detail::select_less;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  CHECK(select_less(1.0, 2.0, 3.0, 4.0) == 3.0);
  CHECK(select_less(2.0, 1.0, 3.0, 4.0) == 4.0);
  CHECK(select_less(1.0, 1.0, 3.0, 4.0) == 4.0);
  CHECK(select_less(nan, 1.0, 3.0, 4.0) == 4.0);
  CHECK(select_less(1.0, nan, 3.0, 4.0) == 4.0);
  CHECK(select_less(-0.0, 0.0, 3.0, 4.0) == 4.0);
  CHECK(std::signbit(select_less(0.0, 1.0, -0.0, 4.0)));
  CHECK(std::isnan(select_less(0.0, 1.0, nan, 4.0)));
  CHECK(select_less(0.999999999999999, 1.0, 0.25, -0.75) == 0.25);
}
