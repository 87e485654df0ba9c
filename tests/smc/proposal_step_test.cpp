// The fused proposal pass, exactly: its normaliser and its inverse-CDF draw for given uniforms.
#include <tsmc/smc/proposal_step.hpp>
#include <tsmc/smc/result.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

namespace {
constexpr double inf = std::numeric_limits<double>::infinity();
}

TEST_CASE("fused_proposal_draw returns log sum exp(a + b) and the inverse-CDF token", "[sampler]") {
  // p = softmax(a + b) = (0.1, 0.2, 0.3, 0.4) up to a common factor 5.
  const std::vector<double> a{std::log(0.1), std::log(0.2), std::log(0.6), std::log(0.8)};
  const std::vector<double> b{std::log(5.0), std::log(5.0), std::log(2.5), std::log(2.5)};
  Eigen::ArrayXd scratch(4);
  const double expected = std::log(0.5 + 1.0 + 1.5 + 2.0);
  struct case_t {
    double u;
    tsmc::token token;
  };
  for (const case_t c : {case_t{0.0, 0}, case_t{0.0999, 0}, case_t{0.1001, 1}, case_t{0.2999, 1}, case_t{0.3001, 2},
                         case_t{0.5999, 2}, case_t{0.6001, 3}, case_t{0.999999, 3}}) {
    const tsmc::proposal_draw d = tsmc::fused_proposal_draw(a.data(), b.data(), 4, c.u, scratch);
    CAPTURE(c.u);
    CHECK(std::abs(d.log_normalizer - expected) < 1e-14);
    CHECK(d.chosen == c.token);
  }
  // Without a twist the row alone is used.
  const tsmc::proposal_draw base = tsmc::fused_proposal_draw(a.data(), nullptr, 4, 0.99, scratch);
  CHECK(std::abs(base.log_normalizer - std::log(1.7)) < 1e-14);
  CHECK(base.chosen == 3);
}

TEST_CASE("fused_proposal_draw: zero-mass tokens are never drawn, extremes give -inf / NaN / +inf", "[sampler]") {
  Eigen::ArrayXd scratch(3);
  const std::vector<double> a{-inf, 0.0, -inf};
  for (double u : {0.0, 0.5, 0.999999}) CHECK(tsmc::fused_proposal_draw(a.data(), nullptr, 3, u, scratch).chosen == 1);
  // Huge values are shifted by the maximum: no overflow.
  const std::vector<double> big{1000.0, 1000.0, -inf};
  CHECK(std::abs(tsmc::fused_proposal_draw(big.data(), nullptr, 3, 0.7, scratch).log_normalizer - (1000.0 + std::log(2.0))) < 1e-12);
  const std::vector<double> none{-inf, -inf, -inf};
  CHECK(tsmc::fused_proposal_draw(none.data(), nullptr, 3, 0.5, scratch).log_normalizer == -inf);
  const std::vector<double> nan{0.0, std::nan(""), 0.0};
  CHECK(std::isnan(tsmc::fused_proposal_draw(nan.data(), nullptr, 3, 0.5, scratch).log_normalizer));
  const std::vector<double> plus{0.0, inf, 0.0};
  const double lse = tsmc::fused_proposal_draw(plus.data(), nullptr, 3, 0.5, scratch).log_normalizer;
  CHECK(!(std::isfinite(lse) || lse == -inf));  // NaN or +inf: the sampler diagnoses it
}

TEST_CASE("smc_result::draw_index draws by the final weights and refuses all-zero weights", "[sampler]") {
  tsmc::smc_result r;
  r.log_weights = {-inf, std::log(0.25), std::log(0.75)};
  r.sequences = {{0}, {1}, {2}};
  tsmc::default_engine rng(3);
  std::vector<int> counts(3, 0);
  constexpr int draws = 40000;
  for (int i = 0; i < draws; ++i) ++counts[r.draw_index(rng)];
  CHECK(counts[0] == 0);
  // Binomial(40000, 0.25): sd 86.6; |z| < 5 (false alarm 5.7e-7).
  CHECK(std::abs(counts[1] - 10000) < 5 * 86.6);
  CHECK(r.draw(rng).size() == 1);
  r.log_weights = {-inf, -inf, -inf};
  CHECK_THROWS_WITH(r.draw_index(rng), Catch::Contains("tsmc::smc_result::draw_index: the final weights must not all be zero"));
}
