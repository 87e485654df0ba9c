#include <catch2/catch.hpp>

#include <tsmc/core/concepts.hpp>
#include <tsmc/testing/toy_model.hpp>
#include <tsmc/testing/toy_potentials.hpp>

#include <cmath>
#include <limits>
#include <vector>

using tsmc::token;
using tsmc::token_sequence;
using tsmc::testing::hide_next_token_form;
using tsmc::testing::pattern_indicator;
using tsmc::testing::random_potential;
using tsmc::testing::random_twist;
using tsmc::testing::soft_classifier;
using tsmc::testing::tabular_model;
using context = tsmc::step_context<tabular_model>;

namespace {

// Checks out(k, v) == (float) log phi(prefix_k + v) for a potential's next-token form.
template <class P>
void check_next_form(const P& potential, std::size_t vocab, const std::vector<token_sequence>& prefixes) {
  const tabular_model model(vocab, 3);
  const std::vector<std::uint8_t> active(prefixes.size(), 1);
  const context ctx{.step = 1, .horizon = 8, .prompt = {}, .prefixes = prefixes, .active = active, .model = model};
  tsmc::log_prob_matrix out(static_cast<Eigen::Index>(prefixes.size()), static_cast<Eigen::Index>(vocab));
  potential.log_potential_next(ctx, out);
  for (std::size_t k = 0; k < prefixes.size(); ++k)
    for (std::size_t v = 0; v < vocab; ++v) {
      token_sequence s = prefixes[k];
      s.push_back(static_cast<token>(v));
      CHECK(out(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(v)) == potential.log_value(s));
    }
}

double log_phi(auto&& potential, const token_sequence& s) {
  const std::vector<token_sequence> one{s};
  std::vector<double> out(1);
  potential.log_potential(one, out);
  return out[0];
}

}  // namespace

TEST_CASE("toy potentials model Potential and NextTokenPotential; the wrapper hides the next form", "[core]") {
  STATIC_REQUIRE(tsmc::NextTokenPotential<random_potential, tabular_model>);
  STATIC_REQUIRE(tsmc::NextTokenPotential<pattern_indicator, tabular_model>);
  STATIC_REQUIRE(tsmc::NextTokenPotential<soft_classifier, tabular_model>);
  STATIC_REQUIRE(tsmc::Potential<hide_next_token_form<soft_classifier>>);
  STATIC_REQUIRE_FALSE(tsmc::NextTokenPotential<hide_next_token_form<soft_classifier>, tabular_model>);
  STATIC_REQUIRE(tsmc::TwistFunction<random_twist, tabular_model>);
  STATIC_REQUIRE_FALSE(tsmc::Potential<random_twist>);
}

TEST_CASE("log_potential_next agrees with log_potential of the extended sequence", "[core]") {
  const std::vector<token_sequence> prefixes{{}, {0}, {2, 1}, {1, 2, 0, 1}, {1, 2, 1}};
  check_next_form(random_potential(7, 2.0), 3, prefixes);
  check_next_form(pattern_indicator({1, 2}), 3, prefixes);
  check_next_form(pattern_indicator({2}), 3, prefixes);
  check_next_form(pattern_indicator({0, 1, 2}), 3, prefixes);
  check_next_form(soft_classifier::random(3, 5, 1.0, -0.3, 2.0), 3, prefixes);

  // random_twist: the same contract with log_twist.
  const random_twist twist(11, 0.5);
  const tabular_model model(3, 3);
  const std::vector<std::uint8_t> active(prefixes.size(), 1);
  const context ctx{.step = 1, .horizon = 8, .prompt = {}, .prefixes = prefixes, .active = active, .model = model};
  tsmc::log_prob_matrix out(static_cast<Eigen::Index>(prefixes.size()), 3);
  twist.log_twist(ctx, out);
  for (std::size_t k = 0; k < prefixes.size(); ++k)
    for (token v = 0; v < 3; ++v) {
      token_sequence s = prefixes[k];
      s.push_back(v);
      CHECK(out(static_cast<Eigen::Index>(k), v) == twist.log_value(s));
    }
  tsmc::log_prob_matrix wrong(2, 3);
  CHECK_THROWS_AS(twist.log_twist(ctx, wrong), tsmc::invalid_argument);
  CHECK_THROWS_AS(random_potential(1).log_potential_next(ctx, wrong), tsmc::invalid_argument);
}

TEST_CASE("random_potential is a deterministic, positive function of the sequence", "[core]") {
  random_potential phi(42, 1.0);
  const double a = log_phi(phi, {0, 1});
  CHECK(std::isfinite(a));
  CHECK(a == log_phi(phi, {0, 1}));
  CHECK(a != log_phi(phi, {1, 0}));
  CHECK(a != log_phi(phi, {0, 1, 0}));
  CHECK(a != log_phi(random_potential(43), {0, 1}));
  CHECK(log_phi(random_potential(42, 0.0), {0, 1}) == 0.0);
  CHECK(log_phi(random_potential(42, 3.0), {0, 1}) == Approx(3.0 * a).epsilon(1e-14));
  // Roughly N(0, 1) over many sequences.
  double sum = 0.0, sum_sq = 0.0;
  const int n = 4096;
  for (int i = 0; i < n; ++i) {
    const double x = phi.log_value(token_sequence{i / 64, i % 64});
    sum += x;
    sum_sq += x * x;
  }
  CHECK(std::abs(sum / n) < 6.0 / std::sqrt(n));
  CHECK(std::abs(sum_sq / n - 1.0) < 6.0 * std::sqrt(2.0 / n));
  const std::vector<token_sequence> two{{0}, {1}};
  std::vector<double> one(1);
  CHECK_THROWS_AS(phi.log_potential(two, one), tsmc::invalid_argument);
}

TEST_CASE("pattern_indicator matches contiguous runs", "[core]") {
  pattern_indicator phi({1, 2});
  CHECK(log_phi(phi, {0, 1, 2}) == 0.0);
  CHECK(log_phi(phi, {1, 2}) == 0.0);
  CHECK(log_phi(phi, {1, 2, 0, 0}) == 0.0);
  CHECK(log_phi(phi, {2, 1}) == tsmc::neg_inf);
  CHECK(log_phi(phi, {1, 0, 2}) == tsmc::neg_inf);
  CHECK(log_phi(phi, {1}) == tsmc::neg_inf);
  CHECK(log_phi(phi, {}) == tsmc::neg_inf);
  CHECK(phi.contains(token_sequence{1, 1, 2}));
  CHECK_THROWS_AS(pattern_indicator({}), tsmc::invalid_argument);
  CHECK_THROWS_WITH(pattern_indicator({0, -2}),
                    "tsmc::testing::pattern_indicator::pattern_indicator: pattern[1] must be >= 0, got -2");
}

TEST_CASE("soft_classifier is a tempered logistic class probability", "[core]") {
  soft_classifier phi({0.5, -1.0, 2.0}, 0.1, 2.0);
  // s = (0, 2): logit = 0.1 + 0.5 + 2.0 = 2.6, P(c | s) = 1 / (1 + e^-2.6), phi = P^2.
  const double p = 1.0 / (1.0 + std::exp(-2.6));
  CHECK(phi.logit(token_sequence{0, 2}) == Approx(2.6).epsilon(1e-15));
  CHECK(phi.log_class_probability(token_sequence{0, 2}) == Approx(std::log(p)).epsilon(1e-14));
  CHECK(log_phi(phi, {0, 2}) == Approx(2.0 * std::log(p)).epsilon(1e-14));
  // Empty sequence: sigmoid(bias).
  CHECK(log_phi(phi, {}) == Approx(2.0 * std::log(1.0 / (1.0 + std::exp(-0.1)))).epsilon(1e-14));
  // Stable far in both tails.
  soft_classifier steep({-400.0, 400.0});
  CHECK(steep.log_class_probability(token_sequence{0, 0}) == Approx(-800.0).epsilon(1e-15));
  CHECK(steep.log_class_probability(token_sequence{1, 1}) == Approx(-std::exp(-800.0)).margin(1e-300));
  CHECK(steep.log_class_probability(token_sequence{1, 1}) <= 0.0);

  CHECK(soft_classifier::random(4, 9).vocab_size() == 4);
  CHECK_THROWS_WITH(phi.logit(token_sequence{0, 3}), "tsmc::testing::soft_classifier::logit: sequence[1] must be in [0, 3), got 3");
  CHECK_THROWS_AS(soft_classifier({}), tsmc::invalid_argument);
  CHECK_THROWS_AS(soft_classifier({1.0}, 0.0, 0.0), tsmc::invalid_argument);
  CHECK_THROWS_AS(soft_classifier({std::numeric_limits<double>::quiet_NaN()}), tsmc::invalid_argument);
}

TEST_CASE("hide_next_token_form forwards log_potential", "[core]") {
  hide_next_token_form hidden(soft_classifier({0.5, -1.0}, 0.2));
  CHECK(log_phi(hidden, {0, 1, 1}) == hidden.inner().log_value(token_sequence{0, 1, 1}));
}
