// Exact target samplers: rejection from p0 (indicator, class probability, bounded ratio) and the
// joint infilling sampler produce sigma in distribution (chi-square against enumeration); the
// infilling potential's Z(o) is the continuation's marginal; budgets and bad input are clear errors.
#include <catch2/catch.hpp>

#include <tsmc/bounds/exact_samplers.hpp>
#include <tsmc/core/log_math.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/testing/enumeration.hpp>
#include <tsmc/testing/toy_model.hpp>
#include <tsmc/testing/toy_potentials.hpp>

#include <cmath>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

using namespace tsmc;
using namespace tsmc::testing;

namespace {

/// Upper tail P(X > x) of a chi-square variable with df degrees of freedom, by the closed forms
/// for integer df: even df, e^{-y} sum_{i < df/2} y^i / i!; odd df, erfc(sqrt y) + e^{-y} sum_{i=1}^{(df-1)/2}
/// y^{i-1/2} / Gamma(i + 1/2), with y = x / 2 (Abramowitz and Stegun 26.4.4-5).
double chi_square_survival(double x, std::size_t df) {
  const double y = x / 2.0;
  if (df % 2 == 0) {
    double term = std::exp(-y), sum = term;
    for (std::size_t i = 1; i < df / 2; ++i) {
      term *= y / static_cast<double>(i);
      sum += term;
    }
    return sum;
  }
  double sum = std::erfc(std::sqrt(y));
  double term = std::exp(-y) * std::sqrt(y) / std::tgamma(1.5);  // i = 1: y^{1/2} / Gamma(3/2)
  for (std::size_t i = 1; i <= (df - 1) / 2; ++i) {
    sum += term;
    term *= y / (static_cast<double>(i) + 0.5);
  }
  return sum;
}

/// Pearson's chi-square p-value of observed counts against probabilities; cells with expected
/// count below 5 are pooled into one cell (dropped if the pool still expects less than 5, which
/// then must have no observations beyond a handful: it is kept in the total instead).
double chi_square_p_value(const std::vector<double>& probabilities, const std::vector<std::size_t>& counts) {
  double n = 0.0;
  for (auto c : counts) n += static_cast<double>(c);
  double stat = 0.0, pool_expected = 0.0, pool_observed = 0.0;
  std::size_t cells = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    const double e = n * probabilities[i];
    if (e < 5.0) {
      pool_expected += e;
      pool_observed += static_cast<double>(counts[i]);
      continue;
    }
    stat += (static_cast<double>(counts[i]) - e) * (static_cast<double>(counts[i]) - e) / e;
    ++cells;
  }
  if (pool_expected >= 5.0) {
    stat += (pool_observed - pool_expected) * (pool_observed - pool_expected) / pool_expected;
    ++cells;
  } else if (pool_expected > 0.0 || pool_observed > 0.0) {
    // Too little mass to test on its own: add it to the statistic only through a bound on the
    // count (an observed count far above its expectation still fails).
    REQUIRE(pool_observed <= pool_expected + 10.0 * std::sqrt(pool_expected) + 10.0);
  }
  REQUIRE(cells >= 2);
  INFO("chi-square " << stat << " on " << cells - 1 << " degrees of freedom");
  return chi_square_survival(stat, cells - 1);
}

/// Draws n samples and tests them against sigma (p-value > 1e-6: the false-alarm rate of the
/// assertion).
template <class Sampler>
void check_samples_follow_sigma(Sampler& sampler, const exact_solution& solution, std::size_t n, std::uint64_t seed) {
  std::map<token_sequence, std::size_t> index;
  const auto sequences = solution.sequences();
  for (std::size_t i = 0; i < sequences.size(); ++i) index[sequences[i]] = i;
  std::vector<std::size_t> counts(sequences.size(), 0);
  default_engine rng(seed);
  for (std::size_t i = 0; i < n; ++i) {
    const token_sequence s = sampler.sample(rng);
    const auto it = index.find(s);
    REQUIRE(it != index.end());
    ++counts[it->second];
  }
  std::vector<double> probabilities(sequences.size());
  for (std::size_t i = 0; i < sequences.size(); ++i) {
    probabilities[i] = std::exp(solution.log_sigma()[i]);
    if (probabilities[i] == 0.0) REQUIRE(counts[i] == 0);  // never a sequence outside sigma's support
  }
  REQUIRE(chi_square_p_value(probabilities, counts) > 1e-6);
}

/// A potential that returns log phi = value for every sequence.
struct constant_potential {
  double value;
  void log_potential(std::span<const token_sequence> sequences, std::span<double> out) const {
    for (std::size_t k = 0; k < sequences.size(); ++k) out[k] = value;
  }
};

const token_sequence prompt{1, 0};

}  // namespace

static_assert(ExactSampler<rejection_sampler<tabular_model, pattern_indicator>>);
static_assert(TargetedExactSampler<rejection_sampler<tabular_model, pattern_indicator>>);
static_assert(TargetedExactSampler<single_sample_sampler>);
static_assert(TargetedExactSampler<targeted_sampler<enumeration_sampler>>);
static_assert(TargetedExactSampler<enumeration_sampler>);  // it declares its problem itself
static_assert(!ExactSampler<infilling_joint_sampler<tabular_model>>);  // draw() returns a pair of sequences

TEST_CASE("chi_square_survival matches known quantiles", "[bounds]") {
  // Table values: upper quantiles of chi-square (df 1 at 1e-6: 23.928; df 2 at 1e-6: 27.631;
  // df 10 at 0.05: 18.307; df 5 at 0.01: 15.086; df 1 at 0.05: 3.841).
  REQUIRE(chi_square_survival(23.928, 1) == Approx(1e-6).epsilon(1e-3));
  REQUIRE(chi_square_survival(27.631, 2) == Approx(1e-6).epsilon(1e-3));
  REQUIRE(chi_square_survival(18.307, 10) == Approx(0.05).epsilon(1e-3));
  REQUIRE(chi_square_survival(15.086, 5) == Approx(0.01).epsilon(1e-3));
  REQUIRE(chi_square_survival(3.841, 1) == Approx(0.05).epsilon(1e-3));
  REQUIRE(chi_square_survival(0.0, 7) == Approx(1.0));
}

TEST_CASE("rejection from p0 with an indicator potential samples sigma", "[bounds]") {
  for (bool with_end : {false, true}) {
    CAPTURE(with_end);
    const std::optional<token> end = with_end ? std::optional<token>(2) : std::nullopt;
    const toy_problem problem{3, 4, prompt, end};
    tabular_model model(3, 11, 1.0);
    pattern_indicator potential({0, 1});
    const exact_solution solution = enumerate(problem, model, potential);
    auto sampler = indicator_rejection_sampler(model, potential, prompt,
                                               {.horizon = 4, .end_token = end, .batch = 100, .budget = 10'000'000});
    check_samples_follow_sigma(sampler, solution, 20000, 5 + with_end);
    // The acceptance rate estimates Z (M = 1): within 5 binomial standard errors.
    const double z = std::exp(solution.log_z());
    const double se = std::sqrt(z * (1.0 - z) / static_cast<double>(sampler.draws()));
    INFO("acceptance " << sampler.acceptance_rate() << ", Z " << z << ", draws " << sampler.draws());
    REQUIRE(std::abs(sampler.acceptance_rate() - z) < 5.0 * se);
    REQUIRE(sampler.accepted() == 20000 + sampler.queued());
    REQUIRE(sampler.horizon() == 4);
    REQUIRE(sampler.end_token() == end);
  }
}

TEST_CASE("rejection from p0 with a class probability samples p0(s | c)", "[bounds]") {
  const toy_problem problem{3, 4, prompt, std::nullopt};
  tabular_model model(3, 23, 1.0);
  soft_classifier classifier = soft_classifier::random(3, 4, 1.5, -1.0, 1.0);
  const exact_solution solution = enumerate(problem, model, classifier);
  auto sampler = class_rejection_sampler(model, classifier, prompt, {.horizon = 4, .batch = 64});
  check_samples_follow_sigma(sampler, solution, 20000, 17);
  const double z = std::exp(solution.log_z());
  REQUIRE(std::abs(sampler.acceptance_rate() - z) <
          5.0 * std::sqrt(z * (1.0 - z) / static_cast<double>(sampler.draws())));
}

TEST_CASE("rejection with a bound M samples sigma for a potential that exceeds 1", "[bounds]") {
  const toy_problem problem{3, 3, prompt, std::optional<token>(1)};
  tabular_model model(3, 31, 1.0);
  random_potential potential(8, 1.0);
  const exact_solution solution = enumerate(problem, model, potential);
  double max_log_phi = neg_inf;
  for (double v : solution.log_phi()) max_log_phi = std::max(max_log_phi, v);
  REQUIRE(max_log_phi > 0.0);
  rejection_sampler sampler(model, potential, prompt,
                            {.horizon = 3, .end_token = 1, .rule = acceptance_rule::bounded, .log_bound = max_log_phi});
  check_samples_follow_sigma(sampler, solution, 20000, 19);
  // E[acceptance] = Z / M.
  const double rate = std::exp(solution.log_z() - max_log_phi);
  REQUIRE(std::abs(sampler.acceptance_rate() - rate) <
          5.0 * std::sqrt(rate * (1.0 - rate) / static_cast<double>(sampler.draws())));
}

TEST_CASE("the infilling potential's Z(o) is the continuation's marginal p0(o | prompt)", "[bounds]") {
  tabular_model model(3, 41, 1.0);
  const token_sequence short_prompt{2};
  constexpr std::size_t T = 2, c = 2;
  // The marginal of the last c tokens of p0 over T + c tokens, by enumeration with phi = 1.
  const exact_solution joint = enumerate(toy_problem{3, T + c, short_prompt, std::nullopt}, model, constant_potential{0.0});
  std::map<token_sequence, double> marginal;
  const auto log_p0 = joint.log_p0_of_sequences();
  for (std::size_t i = 0; i < joint.sequences().size(); ++i) {
    const token_sequence& s = joint.sequences()[i];
    marginal[token_sequence(s.begin() + T, s.end())] += std::exp(log_p0[i]);
  }
  REQUIRE(marginal.size() == 9);
  for (const auto& [o, p] : marginal) {
    infilling_potential<tabular_model> potential(model, short_prompt, o);
    const exact_solution solution = enumerate(toy_problem{3, T, short_prompt, std::nullopt}, model, potential);
    REQUIRE(std::exp(solution.log_z()) == Approx(p).epsilon(1e-12).margin(1e-15));
  }
}

TEST_CASE("the joint infilling sampler draws (prefix, o) from p0 and the prefix from sigma(. | o)", "[bounds]") {
  tabular_model model(3, 43, 1.0);
  const token_sequence short_prompt{2};
  constexpr std::size_t T = 2, c = 2;
  infilling_joint_sampler joint(model, short_prompt, {.horizon = T, .continuation = c, .batch = 128});
  REQUIRE(joint.horizon() == T);
  REQUIRE(joint.continuation() == c);
  default_engine rng(3);
  const std::vector<infilling_sample> draws = joint.draw(30000, rng);

  // 1. Joint: the concatenation follows p0 over T + c tokens (81 cells).
  const exact_solution full = enumerate(toy_problem{3, T + c, short_prompt, std::nullopt}, model, constant_potential{0.0});
  std::map<token_sequence, std::size_t> index;
  for (std::size_t i = 0; i < full.sequences().size(); ++i) index[full.sequences()[i]] = i;
  std::vector<std::size_t> counts(full.sequences().size(), 0);
  std::map<token_sequence, std::vector<token_sequence>> by_observation;
  for (const auto& d : draws) {
    REQUIRE(d.prefix.size() == T);
    REQUIRE(d.observation.size() == c);
    token_sequence s = d.prefix;
    s.insert(s.end(), d.observation.begin(), d.observation.end());
    ++counts[index.at(s)];
    by_observation[d.observation].push_back(d.prefix);
  }
  std::vector<double> p(full.sequences().size());
  for (std::size_t i = 0; i < p.size(); ++i) p[i] = std::exp(full.log_sigma()[i]);
  REQUIRE(chi_square_p_value(p, counts) > 1e-6);

  // 2. Conditional: for the most frequent observation, the prefixes follow sigma(. | o) with the
  // infilling potential (enumerated independently).
  const auto most = std::max_element(by_observation.begin(), by_observation.end(),
                                     [](const auto& a, const auto& b) { return a.second.size() < b.second.size(); });
  infilling_potential<tabular_model> potential(model, short_prompt, most->first);
  const exact_solution conditional = enumerate(toy_problem{3, T, short_prompt, std::nullopt}, model, potential);
  std::map<token_sequence, std::size_t> cindex;
  for (std::size_t i = 0; i < conditional.sequences().size(); ++i) cindex[conditional.sequences()[i]] = i;
  std::vector<std::size_t> ccounts(conditional.sequences().size(), 0);
  for (const auto& prefix : most->second) ++ccounts[cindex.at(prefix)];
  std::vector<double> cp(ccounts.size());
  for (std::size_t i = 0; i < cp.size(); ++i) cp[i] = std::exp(conditional.log_sigma()[i]);
  REQUIRE(chi_square_p_value(cp, ccounts) > 1e-6);
}

TEST_CASE("rejection samplers: an exhausted budget is a clear error, never a hang", "[bounds]") {
  tabular_model model(3, 11, 1.0);
  SECTION("a potential that is zero everywhere") {
    pattern_indicator impossible({0, 0, 0, 0, 0});  // longer than the horizon
    auto sampler = indicator_rejection_sampler(model, impossible, prompt, {.horizon = 3, .batch = 64, .budget = 1000});
    default_engine rng(1);
    try {
      (void)sampler.sample(rng);
      FAIL("no exception");
    } catch (const tsmc::runtime_error& e) {
      const std::string what = e.what();
      INFO(what);
      REQUIRE(what.find("tsmc::rejection_sampler::sample") != std::string::npos);
      REQUIRE(what.find("budget of 1000") != std::string::npos);
      REQUIRE(what.find("got 1000") != std::string::npos);
    }
    REQUIRE(sampler.draws() == 1000);
    REQUIRE(sampler.acceptance_rate() == 0.0);
  }
  SECTION("a rare event with a tiny budget") {
    pattern_indicator rare({2, 2, 2});
    auto sampler = indicator_rejection_sampler(model, rare, prompt, {.horizon = 3, .batch = 4, .budget = 6});
    default_engine rng(2);
    REQUIRE_THROWS_AS([&] {
      for (int i = 0; i < 100; ++i) (void)sampler.sample(rng);
    }(), tsmc::runtime_error);
    REQUIRE(sampler.draws() == 6);  // the last batch is cut to the budget
  }
}

TEST_CASE("rejection samplers reject potentials that break their rule, and bad options", "[bounds]") {
  tabular_model model(3, 11, 1.0);
  default_engine rng(4);
  constant_potential half{std::log(0.5)};
  auto indicator = indicator_rejection_sampler(model, half, prompt, {.horizon = 2});
  REQUIRE_THROWS_AS(indicator.sample(rng), tsmc::runtime_error);
  constant_potential above_one{0.5};
  auto classes = class_rejection_sampler(model, above_one, prompt, {.horizon = 2});
  REQUIRE_THROWS_AS(classes.sample(rng), tsmc::runtime_error);
  rejection_sampler bounded(model, above_one, prompt, {.horizon = 2, .rule = acceptance_rule::bounded, .log_bound = 0.25});
  REQUIRE_THROWS_AS(bounded.sample(rng), tsmc::runtime_error);
  constant_potential nan{std::numeric_limits<double>::quiet_NaN()};
  auto nan_sampler = class_rejection_sampler(model, nan, prompt, {.horizon = 2});
  REQUIRE_THROWS_AS(nan_sampler.sample(rng), tsmc::runtime_error);

  using R = rejection_sampler<tabular_model, constant_potential>;
  REQUIRE_THROWS_AS(R(model, half, prompt, {.horizon = 0}), tsmc::invalid_argument);
  REQUIRE_THROWS_AS(R(model, half, prompt, {.horizon = 2, .batch = 0}), tsmc::invalid_argument);
  REQUIRE_THROWS_AS(R(model, half, prompt, {.horizon = 2, .budget = 0}), tsmc::invalid_argument);
  REQUIRE_THROWS_AS(R(model, half, prompt, {.horizon = 2, .end_token = 7}), tsmc::invalid_argument);
  REQUIRE_THROWS_AS(R(model, half, prompt, {.horizon = 2, .rule = acceptance_rule::bounded, .log_bound = INFINITY}),
                    tsmc::invalid_argument);
  REQUIRE_THROWS_AS(infilling_joint_sampler(model, prompt, {.horizon = 2, .continuation = 0}), tsmc::invalid_argument);
  REQUIRE_THROWS_AS(infilling_potential<tabular_model>(model, prompt, token_sequence{}), tsmc::invalid_argument);
  REQUIRE_THROWS_AS(infilling_potential<tabular_model>(model, prompt, token_sequence{5}), tsmc::invalid_argument);
  REQUIRE_THROWS_AS(single_sample_sampler(token_sequence{0, 1, 2}, prompt, 2), tsmc::invalid_argument);
  REQUIRE_THROWS_AS(single_sample_sampler(token_sequence{}, prompt, 2), tsmc::invalid_argument);
}
