// Tests for <tsmc/core/statistics.hpp>: effective sample size and normalised weights from
// log-weights (at the extremes: all -inf, one dominant weight, shifts of 1e300), the mean with
// its standard error, and the weighted mean / variance / standard error (hand-computed values).
#include <tsmc/core/statistics.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <span>
#include <vector>

using Catch::Matchers::WithinRel;

namespace {

constexpr double pinf = std::numeric_limits<double>::infinity();
constexpr double ninf = -pinf;
constexpr double qnan = std::numeric_limits<double>::quiet_NaN();

double ess(std::vector<double> v) { return tsmc::effective_sample_size(v); }

std::vector<double> shifted(std::vector<double> v, double c) {
  for (double& x : v) x += c;
  return v;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// effective_sample_size
// ---------------------------------------------------------------------------------------------

TEST_CASE("effective_sample_size: uniform weights give n, one dominant weight gives 1", "[core]") {
  CHECK(ess({0.0, 0.0, 0.0, 0.0}) == 4.0);
  CHECK(ess(std::vector<double>(1000, -3.5)) == Approx(1000.0).epsilon(1e-12));
  CHECK(ess({-1e300, -1e300, -1e300}) == 3.0);
  CHECK(ess({1e300, 1e300}) == 2.0);
  CHECK(ess({7.0}) == 1.0);
  CHECK(ess({0.0, ninf, ninf, ninf}) == 1.0);
  CHECK(ess({ninf, ninf, 1e300}) == 1.0);
  CHECK(ess({0.0, -1e300, -1e300}) == 1.0);
  CHECK(ess({0.0, -800.0, -900.0}) == 1.0);  // exp(-800) underflows relative to 1
}

TEST_CASE("effective_sample_size: hand values", "[core]") {
  // Weights 1, 2, 3, 4: (sum w)^2 / sum w^2 = 100 / 30.
  CHECK_THAT(ess({0.0, std::log(2.0), std::log(3.0), std::log(4.0)}), WithinRel(10.0 / 3.0, 1e-14));
  // Weights 1, 1, 0: 2; weights 1, 1/2: 2.25 / 1.25 = 1.8.
  CHECK(ess({0.0, 0.0, ninf}) == 2.0);
  CHECK_THAT(ess({0.0, std::log(0.5)}), WithinRel(1.8, 1e-15));
}

TEST_CASE("effective_sample_size: all weights zero is a result, ESS 0", "[core]") {
  CHECK(ess({ninf, ninf, ninf}) == 0.0);
  CHECK(ess({ninf}) == 0.0);
  CHECK(tsmc::effective_sample_size(std::span<const double>{}) == 0.0);
}

TEST_CASE("effective_sample_size: invariant to a constant shift, 1e300 included", "[core]") {
  // Dyadic values, so every shift below is exact.
  const std::vector<double> base{0.0, -0.5, -1.25, -3.0, ninf};
  const double reference = ess(base);
  CHECK(reference > 1.0);
  CHECK(reference < 4.0);
  for (double c : {1.0, -1.0, 700.0, -745.0, 1e5, -1e5, 1e15, -1e15}) {
    INFO("shift " << c);
    CHECK_THAT(ess(shifted(base, c)), WithinRel(reference, 1e-14));
  }
  // At 1e300 only differences of order 1e300 survive: weights {1, 1, 0, 0} shifted both ways.
  const std::vector<double> wide{0.0, 0.0, -1e300, ninf};
  CHECK(ess(wide) == 2.0);
  CHECK(ess(shifted(wide, 1e300)) == 2.0);
  CHECK(ess(shifted(wide, -1e300)) == 2.0);
  CHECK(ess({1e300, -1e300}) == 1.0);
}

TEST_CASE("effective_sample_size: lies in [1, n] for non-degenerate weights", "[core]") {
  std::vector<double> lw;
  for (int i = 0; i < 50; ++i) lw.push_back(std::sin(i * 1.7) * 20.0);
  const double e = ess(lw);
  CHECK(e >= 1.0);
  CHECK(e <= 50.0);
}

TEST_CASE("effective_sample_size: NaN and +inf throw", "[core]") {
  CHECK_THROWS_WITH(ess({0.0, qnan}), "tsmc::effective_sample_size: log_weights must not contain NaN or +inf, got nan");
  CHECK_THROWS_WITH(ess({pinf, 0.0}), "tsmc::effective_sample_size: log_weights must not contain NaN or +inf, got inf");
  CHECK_THROWS_AS(ess({ninf, qnan}), tsmc::invalid_argument);
  CHECK_THROWS_AS(ess({ninf, pinf}), std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------
// normalized_weights
// ---------------------------------------------------------------------------------------------

TEST_CASE("normalized_weights: hand values, shift invariance, aliasing", "[core]") {
  const std::vector<double> lw{0.0, std::log(2.0), std::log(3.0), std::log(4.0)};
  std::vector<double> w(4);
  tsmc::normalized_weights(lw, w);
  double total = 0.0;
  for (std::size_t i = 0; i < 4; ++i) {
    CHECK_THAT(w[i], WithinRel(static_cast<double>(i + 1) / 10.0, 1e-14));
    total += w[i];
  }
  CHECK_THAT(total, WithinRel(1.0, 1e-15));
  // The same weights after any shift, 1e300 included (where log 2 is below ulp(1e300)).
  const std::vector<double> dyadic{0.0, -0.5, -1.25, -3.0, ninf};
  std::vector<double> reference(5), out(5);
  tsmc::normalized_weights(dyadic, reference);
  CHECK(reference[4] == 0.0);
  for (double c : {-745.0, 1e5, 1e15, -1e15}) {
    INFO("shift " << c);
    tsmc::normalized_weights(shifted(dyadic, c), out);
    for (std::size_t i = 0; i < 5; ++i) CHECK_THAT(out[i], WithinRel(reference[i], 1e-14));
  }
  for (double c : {1e300, -1e300}) {
    INFO("shift " << c);
    std::vector<double> two{c, c, ninf}, two_out(3);
    tsmc::normalized_weights(two, two_out);
    CHECK(two_out == std::vector<double>{0.5, 0.5, 0.0});
  }
  // In place.
  std::vector<double> inplace = lw;
  tsmc::normalized_weights(inplace, inplace);
  CHECK(inplace == w);
}

TEST_CASE("normalized_weights: one dominant weight and the errors", "[core]") {
  std::vector<double> one{ninf, 2.0, -1e300}, out(3);
  tsmc::normalized_weights(one, out);
  CHECK(out == std::vector<double>{0.0, 1.0, 0.0});
  std::vector<double> all_zero(3, ninf);
  CHECK_THROWS_AS(tsmc::normalized_weights(all_zero, out), tsmc::invalid_argument);
  std::vector<double> with_nan{0.0, qnan, 1.0};
  CHECK_THROWS_WITH(tsmc::normalized_weights(with_nan, out), Catch::Contains("NaN"));
  std::vector<double> with_inf{0.0, pinf, 1.0};
  CHECK_THROWS_AS(tsmc::normalized_weights(with_inf, out), tsmc::invalid_argument);
  std::vector<double> short_out(2);
  CHECK_THROWS_AS(tsmc::normalized_weights(one, short_out), tsmc::invalid_argument);
  CHECK_THROWS_AS(tsmc::normalized_weights(std::span<const double>{}, std::span<double>{}), tsmc::invalid_argument);
}

// ---------------------------------------------------------------------------------------------
// mean_and_standard_error
// ---------------------------------------------------------------------------------------------

TEST_CASE("mean_and_standard_error: hand values", "[core]") {
  // 1, 2, 3, 4: mean 5/2, sample variance 5/3, standard error sqrt(5/3 / 4) = sqrt(5/12).
  const std::vector<double> v{1.0, 2.0, 3.0, 4.0};
  const tsmc::mean_estimate e = tsmc::mean_and_standard_error(v);
  CHECK(e.mean == 2.5);
  CHECK_THAT(e.standard_error, WithinRel(std::sqrt(5.0 / 12.0), 1e-15));
  CHECK(e.count == 4);
  // Two values: mean 3, sample variance 8, standard error 2.
  const std::vector<double> two{1.0, 5.0};
  const auto t = tsmc::mean_and_standard_error(two);
  CHECK(t.mean == 3.0);
  CHECK(t.standard_error == 2.0);
  CHECK(t.count == 2);
  // One value: standard error 0.
  const std::vector<double> one{-7.5};
  const auto o = tsmc::mean_and_standard_error(one);
  CHECK(o.mean == -7.5);
  CHECK(o.standard_error == 0.0);
  CHECK(o.count == 1);
  // Constant values: standard error 0.
  const std::vector<double> constant(5, 3.25);
  CHECK(tsmc::mean_and_standard_error(constant).standard_error == 0.0);
  // Two-pass: a large common offset does not destroy the spread.
  const std::vector<double> offset{1e9 + 1.0, 1e9 + 2.0, 1e9 + 3.0, 1e9 + 4.0};
  const auto f = tsmc::mean_and_standard_error(offset);
  CHECK(f.mean == 1e9 + 2.5);
  CHECK_THAT(f.standard_error, WithinRel(std::sqrt(5.0 / 12.0), 1e-12));
  // The default-constructed estimate.
  const tsmc::mean_estimate empty{};
  CHECK(empty.mean == 0.0);
  CHECK(empty.standard_error == 0.0);
  CHECK(empty.count == 0);
}

TEST_CASE("mean_and_standard_error: no values throws", "[core]") {
  CHECK_THROWS_WITH(tsmc::mean_and_standard_error(std::span<const double>{}),
                    "tsmc::mean_and_standard_error: values.size() must be positive, got 0");
}

// ---------------------------------------------------------------------------------------------
// weighted_mean, weighted_variance, weighted_standard_error
// ---------------------------------------------------------------------------------------------

TEST_CASE("weighted mean, variance and standard error: hand values", "[core]") {
  // x = 1, 2, 3 with w = 1, 1, 2: m = 9/4;
  // variance (1 (5/4)^2 + 1 (1/4)^2 + 2 (3/4)^2) / 4 = (25 + 1 + 18) / 64 = 11/16;
  // standard error sqrt(1 (5/4)^2 + 1 (1/4)^2 + 4 (3/4)^2) / 4 = sqrt(62/16) / 4.
  const std::vector<double> x{1.0, 2.0, 3.0};
  const std::vector<double> w{1.0, 1.0, 2.0};
  CHECK(tsmc::weighted_mean(x, w) == 2.25);
  CHECK_THAT(tsmc::weighted_variance(x, w), WithinRel(11.0 / 16.0, 1e-15));
  CHECK_THAT(tsmc::weighted_standard_error(x, w), WithinRel(std::sqrt(62.0 / 16.0) / 4.0, 1e-15));
  // Unnormalised weights: scaling them changes nothing.
  for (double scale : {1e-300, 1e-3, 1e3, 1e300}) {
    INFO("scale " << scale);
    const std::vector<double> ws{scale, scale, 2 * scale};
    CHECK_THAT(tsmc::weighted_mean(x, ws), WithinRel(2.25, 1e-15));
    CHECK_THAT(tsmc::weighted_variance(x, ws), WithinRel(11.0 / 16.0, 1e-14));
    CHECK_THAT(tsmc::weighted_standard_error(x, ws), WithinRel(std::sqrt(62.0 / 16.0) / 4.0, 1e-14));
  }
  // Equal weights: the plain mean, the population variance, and population sd / sqrt(n).
  const std::vector<double> y{1.0, 2.0, 3.0, 4.0};
  const std::vector<double> equal(4, 0.25);
  CHECK(tsmc::weighted_mean(y, equal) == 2.5);
  CHECK(tsmc::weighted_variance(y, equal) == 1.25);
  CHECK_THAT(tsmc::weighted_standard_error(y, equal), WithinRel(std::sqrt(1.25 / 4.0), 1e-15));
  // Zero weights drop their values; a single positive weight leaves no spread.
  const std::vector<double> only_last{0.0, 0.0, 5.0};
  CHECK(tsmc::weighted_mean(x, only_last) == 3.0);
  CHECK(tsmc::weighted_variance(x, only_last) == 0.0);
  CHECK(tsmc::weighted_standard_error(x, only_last) == 0.0);
}

TEST_CASE("weighted mean, variance and standard error: bad weights throw", "[core]") {
  const std::vector<double> x{1.0, 2.0, 3.0};
  const std::vector<double> short_w{1.0, 1.0};
  const std::vector<double> negative{1.0, -1.0, 1.0};
  const std::vector<double> with_nan{1.0, qnan, 1.0};
  const std::vector<double> with_inf{1.0, pinf, 1.0};
  const std::vector<double> zeros(3, 0.0);
  const double big = std::numeric_limits<double>::max();
  const std::vector<double> overflowing{big, big, big};  // each finite, the total +inf

  CHECK_THROWS_WITH(tsmc::weighted_mean(x, short_w), "tsmc::weighted_mean: weights.size() must equal values.size() 3, got 2");
  CHECK_THROWS_WITH(tsmc::weighted_mean(x, negative), "tsmc::weighted_mean: weights must be finite and >= 0, got -1");
  CHECK_THROWS_WITH(tsmc::weighted_mean(x, with_nan), "tsmc::weighted_mean: weights must be finite and >= 0, got nan");
  CHECK_THROWS_WITH(tsmc::weighted_mean(x, with_inf), "tsmc::weighted_mean: weights must be finite and >= 0, got inf");
  CHECK_THROWS_WITH(tsmc::weighted_mean(x, zeros), "tsmc::weighted_mean: sum of weights must be positive and finite, got 0");
  CHECK_THROWS_WITH(tsmc::weighted_mean(x, overflowing),
                    "tsmc::weighted_mean: sum of weights must be positive and finite, got inf");
  CHECK_THROWS_WITH(tsmc::weighted_mean(std::span<const double>{}, std::span<const double>{}),
                    "tsmc::weighted_mean: sum of weights must be positive and finite, got 0");

  CHECK_THROWS_WITH(tsmc::weighted_variance(x, short_w), Catch::StartsWith("tsmc::weighted_variance: weights.size()"));
  CHECK_THROWS_WITH(tsmc::weighted_variance(x, negative), "tsmc::weighted_variance: weights must be finite and >= 0, got -1");
  CHECK_THROWS_AS(tsmc::weighted_variance(x, with_nan), tsmc::invalid_argument);
  CHECK_THROWS_AS(tsmc::weighted_variance(x, with_inf), tsmc::invalid_argument);
  CHECK_THROWS_WITH(tsmc::weighted_variance(x, zeros), Catch::StartsWith("tsmc::weighted_variance: sum of weights"));
  CHECK_THROWS_AS(tsmc::weighted_variance(x, overflowing), tsmc::invalid_argument);

  CHECK_THROWS_WITH(tsmc::weighted_standard_error(x, short_w),
                    Catch::StartsWith("tsmc::weighted_standard_error: weights.size()"));
  CHECK_THROWS_WITH(tsmc::weighted_standard_error(x, negative),
                    "tsmc::weighted_standard_error: weights must be finite and >= 0, got -1");
  CHECK_THROWS_AS(tsmc::weighted_standard_error(x, with_nan), tsmc::invalid_argument);
  CHECK_THROWS_AS(tsmc::weighted_standard_error(x, with_inf), tsmc::invalid_argument);
  CHECK_THROWS_WITH(tsmc::weighted_standard_error(x, zeros), Catch::StartsWith("tsmc::weighted_standard_error: sum of weights"));
  CHECK_THROWS_AS(tsmc::weighted_standard_error(x, overflowing), std::invalid_argument);
}

TEST_CASE("checked_max finds the maximum in every lane and flags NaN and +inf", "[core]") {
  constexpr double inf = std::numeric_limits<double>::infinity();
  for (std::size_t k = 1; k <= 11; ++k) {  // the four-wide body and the tail
    for (std::size_t at = 0; at < k; ++at) {
      std::vector<double> v(k, -3.0);
      v[(at + 1) % k] = -inf;
      v[at] = 2.5;
      CHECK(tsmc::detail::checked_max(v.data(), k) == 2.5);
      v[at] = std::nan("");
      CHECK(std::isnan(tsmc::detail::checked_max(v.data(), k)));
      v[at] = inf;
      CHECK(std::isnan(tsmc::detail::checked_max(v.data(), k)));
    }
    const std::vector<double> all_minus_inf(k, -inf);
    CHECK(tsmc::detail::checked_max(all_minus_inf.data(), k) == -inf);
  }
  CHECK(tsmc::detail::checked_max(nullptr, 0) == -std::numeric_limits<double>::infinity());
}
