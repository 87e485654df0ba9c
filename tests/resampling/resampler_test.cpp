// Tests of tsmc::resampler: log-weights in, ancestors out; conditional resampling; bad input.

#include <catch2/catch.hpp>

#include <tsmc/resampling/resampler.hpp>

#include "resampling/resampling_test_support.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <type_traits>
#include <vector>

using tsmc::particle_index;

TEMPLATE_TEST_CASE("resampler: slot-stable ancestors for n == K, index order otherwise", "[resampling]",
                   tsmc::multinomial, tsmc::stratified, tsmc::systematic, tsmc::residual, tsmc::ssp,
                   tsmc::killing) {
  tsmc::resampler<TestType> r;
  tsmc::default_engine rng{4};
  std::vector<double> log_w(50);
  for (std::size_t i = 0; i < log_w.size(); ++i) log_w[i] = 2.0 * tsmc::standard_normal(rng) - 1000.0;
  log_w[3] = -std::numeric_limits<double>::infinity();  // a zero weight
  std::vector<particle_index> ancestors(50);
  for (int rep = 0; rep < 20; ++rep) {
    r.resample(log_w, ancestors, rng);
    const auto counts = r.counts();
    REQUIRE(counts.size() == 50);
    REQUIRE(counts[3] == 0);
    for (std::size_t i = 0; i < 50; ++i) {
      if (counts[i] >= 1) REQUIRE(ancestors[i] == i);
      REQUIRE(ancestors[i] != 3);
    }
  }
  const double total = std::accumulate(r.weights().begin(), r.weights().end(), 0.0);
  CHECK(total == Approx(1.0).epsilon(1e-12));
  if constexpr (tsmc_test::allows_any_n<TestType>) {
    std::vector<particle_index> more(77);
    r.resample(log_w, more, rng);
    CHECK(std::is_sorted(more.begin(), more.end()));
    CHECK(std::accumulate(r.counts().begin(), r.counts().end(), 0u) == 77u);
  }
}

TEMPLATE_TEST_CASE("resampler: one particle, and conditional resampling keeps the reference in slot 0",
                   "[resampling]", tsmc::multinomial, tsmc::stratified, tsmc::systematic, tsmc::residual,
                   tsmc::ssp) {
  tsmc::resampler<TestType> r;
  tsmc::default_engine rng{5};
  const std::vector<double> one{-3.0};
  std::vector<particle_index> a1(1, 9);
  r.resample(one, a1, rng);
  CHECK(a1[0] == 0);
  if constexpr (!std::is_same_v<TestType, tsmc::multinomial>) return;  // conditional: multinomial only
  else {
  a1[0] = 9;
  r.resample_conditional(one, a1, rng);
  CHECK(a1[0] == 0);
  std::vector<double> log_w(30);
  for (double& v : log_w) v = tsmc::standard_normal(rng);
  log_w[0] = -50.0;  // the reference survives even with a negligible weight
  std::vector<particle_index> ancestors(30);
  for (int rep = 0; rep < 50; ++rep) {
    r.resample_conditional(log_w, ancestors, rng);
    REQUIRE(ancestors[0] == 0);
    REQUIRE(r.counts()[0] >= 1);
    REQUIRE(std::accumulate(r.counts().begin(), r.counts().end(), 0u) == 30u);
  }
  }
}

TEST_CASE("resampler: conditional counts are unbiased for (K - 1) w_i + [i == 0]", "[resampling]") {
  constexpr std::size_t k = 8;
  const auto w = tsmc_test::random_weights(k, 1.0, 17);
  std::vector<double> log_w(k);
  for (std::size_t i = 0; i < k; ++i) log_w[i] = std::log(w[i]);
  tsmc::resampler<tsmc::multinomial> r;
  tsmc::default_engine rng{6};
  std::vector<particle_index> ancestors(k);
  tsmc_test::count_moments moments(k);
  std::vector<particle_index> counts(k);
  for (int rep = 0; rep < 50000; ++rep) {
    r.resample_conditional(log_w, ancestors, rng);
    std::copy(r.counts().begin(), r.counts().end(), counts.begin());
    moments.add(counts);
  }
  std::vector<double> expected(k);
  for (std::size_t i = 0; i < k; ++i) expected[i] = (k - 1) * w[i] + (i == 0 ? 1.0 : 0.0);
  CHECK(moments.max_abs_z(expected) < 6.0);  // Bonferroni over 8 particles: < 2e-8 false alarms
}

// (Killing and the other schemes cannot serve conditional resampling at all: a static_assert,
// tests/compile_fail/resample_conditional_systematic.cpp.)

TEST_CASE("resampler: bad log-weights get a clear exception", "[resampling]") {
  tsmc::resampler<tsmc::systematic> r;
  tsmc::default_engine rng{1};
  constexpr double inf = std::numeric_limits<double>::infinity();
  std::vector<particle_index> ancestors(3);
  const std::vector<double> empty;
  std::vector<particle_index> none;
  CHECK_THROWS_WITH(r.resample(empty, ancestors, rng),
                    "tsmc::resampler::resample: log_weights.size() must be positive, got 0");
  CHECK_THROWS_WITH(r.resample(std::vector<double>{0.0, std::nan(""), 0.0}, ancestors, rng),
                    "tsmc::resampler::resample: log_weights must not contain NaN or +inf, got nan");
  CHECK_THROWS_WITH(r.resample(std::vector<double>{0.0, inf, 0.0}, ancestors, rng),
                    "tsmc::resampler::resample: log_weights must not contain NaN or +inf, got inf");
  CHECK_THROWS_WITH(r.resample(std::vector<double>{-inf, -inf, -inf}, ancestors, rng),
                    "tsmc::resampler::resample: log_weights must not all be -inf (every weight zero cannot be "
                    "resampled), got -inf");
  CHECK_THROWS_WITH(r.resample(std::vector<double>{0.0}, none, rng),
                    "tsmc::resampler::resample: ancestors.size() must be positive, got 0");
  tsmc::resampler<tsmc::multinomial> m;
  CHECK_THROWS_WITH(m.resample_conditional(std::vector<double>{0.0, 0.0}, ancestors, rng),
                    "tsmc::resampler::resample_conditional: ancestors.size() must equal log_weights.size() 2, got 3");
  CHECK_THROWS_WITH(m.resample_conditional(std::vector<double>{-inf, -inf, -inf}, ancestors, rng),
                    Catch::Matchers::StartsWith("tsmc::resampler::resample_conditional: log_weights must not all"));
}

TEST_CASE("resampler: extreme log-weight spreads and a residual remainder choice", "[resampling]") {
  tsmc::resampler<tsmc::residual> r{tsmc::residual{.remainder = tsmc::residual_remainder::multinomial}};
  CHECK(r.scheme().remainder == tsmc::residual_remainder::multinomial);
  tsmc::default_engine rng{2};
  const std::vector<double> log_w{-1e300, 0.0, -1e300, 1e-300};
  std::vector<particle_index> ancestors(4);
  r.resample(log_w, ancestors, rng);
  CHECK(r.counts()[0] == 0);
  CHECK(r.counts()[2] == 0);
  CHECK(r.counts()[1] + r.counts()[3] == 4);
  const auto* buffer = r.counts().data();
  for (int rep = 0; rep < 5; ++rep) r.resample(log_w, ancestors, rng);
  CHECK(r.counts().data() == buffer);  // buffers are reused
}

TEST_CASE("resampler: weights are exp(l - max) / their sum, summed in index order", "[resampling]") {
  const auto w = tsmc_test::random_weights(1001, 3.0, 77);
  std::vector<double> log_w(w.size());
  for (std::size_t i = 0; i < w.size(); ++i) log_w[i] = std::log(w[i]) + 40.0;
  log_w[17] = -std::numeric_limits<double>::infinity();
  const double max = *std::max_element(log_w.begin(), log_w.end());
  std::vector<double> expected(log_w.size());
  double total = 0.0;
  for (std::size_t i = 0; i < log_w.size(); ++i) total += expected[i] = std::exp(log_w[i] - max);
  for (double& e : expected) e *= 1.0 / total;
  tsmc::resampler<tsmc::systematic> r;
  tsmc::default_engine rng{3};
  std::vector<particle_index> ancestors(log_w.size());
  r.resample(log_w, ancestors, rng);
  CHECK(std::equal(expected.begin(), expected.end(), r.weights().begin(), r.weights().end()));
  CHECK(r.weights()[17] == 0.0);
}
