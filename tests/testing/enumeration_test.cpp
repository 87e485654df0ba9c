#include <catch2/catch.hpp>

#include <tsmc/core/concepts.hpp>
#include <tsmc/core/log_math.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/testing/enumeration.hpp>
#include <tsmc/testing/toy_model.hpp>
#include <tsmc/testing/toy_potentials.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

using tsmc::neg_inf;
using tsmc::token;
using tsmc::token_sequence;
using tsmc::testing::enumerate;
using tsmc::testing::enumeration_sampler;
using tsmc::testing::exact_solution;
using tsmc::testing::optimal_twist;
using tsmc::testing::table_precision;
using tsmc::testing::tabular_model;
using tsmc::testing::toy_problem;

namespace {

// phi given by an explicit table of values (a missing sequence has phi = 0).
struct table_potential {
  std::map<token_sequence, double> phi;
  void log_potential(std::span<const token_sequence> sequences, std::span<double> out) const {
    for (std::size_t k = 0; k < sequences.size(); ++k) {
      const auto it = phi.find(sequences[k]);
      out[k] = it == phi.end() ? neg_inf : std::log(it->second);
    }
  }
};

// The hand-checked model: V = 2; p(0) = 0.3 at step 1; p(. | 0) = (0.6, 0.4), p(. | 1) = (0.1, 0.9).
tabular_model hand_model(table_precision precision = table_precision::exact) {
  return tabular_model::from_table(2, {{{}, {0.3, 0.7}}, {{0}, {0.6, 0.4}}, {{1}, {0.1, 0.9}}}, precision);
}

// Whether s ends the problem's sequence: the horizon is reached or the end token was drawn.
bool is_finished(const toy_problem& problem, const token_sequence& s) {
  return s.size() == problem.horizon || (problem.end_token && !s.empty() && s.back() == *problem.end_token);
}

// Every prefix of the problem's tree (finished ones included), depth-first.
std::vector<token_sequence> all_prefixes(const toy_problem& problem) {
  std::vector<token_sequence> out;
  std::function<void(token_sequence&)> visit = [&](token_sequence& s) {
    out.push_back(s);
    if (is_finished(problem, s)) return;
    for (token v = 0; v < static_cast<token>(problem.vocab_size); ++v) {
      s.push_back(v);
      visit(s);
      s.pop_back();
    }
  };
  token_sequence s;
  visit(s);
  return out;
}

// Brute force, independent of the tree: every finished sequence (lexicographic), its log p0
// by re-querying the model at every step, and its log phi.
struct brute_force {
  std::vector<token_sequence> sequences;
  std::vector<double> log_p0, log_phi;
  double log_z = neg_inf;
};

template <class Pot>
brute_force brute(const toy_problem& problem, const tabular_model& model, Pot& potential) {
  brute_force b;
  for (auto& s : all_prefixes(problem))  // depth-first: the finished ones come in lexicographic order
    if (is_finished(problem, s)) b.sequences.push_back(std::move(s));
  std::vector<double> row(problem.vocab_size);
  for (const auto& seq : b.sequences) {
    double lp = 0.0;
    for (std::size_t t = 0; t < seq.size(); ++t) {
      model.next_log_probs(problem.prompt, std::span<const token>(seq).first(t), row);
      lp += row[static_cast<std::size_t>(seq[t])];
    }
    b.log_p0.push_back(lp);
  }
  b.log_phi.resize(b.sequences.size());
  potential.log_potential(b.sequences, b.log_phi);
  std::vector<double> terms;
  for (std::size_t i = 0; i < b.sequences.size(); ++i) terms.push_back(b.log_p0[i] + b.log_phi[i]);
  b.log_z = tsmc::logsumexp(std::span<const double>(terms));
  return b;
}

bool starts_with(const token_sequence& s, const token_sequence& prefix) {
  return s.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), s.begin());
}

// The consistency checks of the issue on one problem.
template <class Pot>
void check_consistency(const toy_problem& problem, const tabular_model& model, Pot& potential) {
  const exact_solution sol = enumerate(problem, model, potential);
  const brute_force b = brute(problem, model, potential);

  // Agreement with brute force.
  REQUIRE(sol.sequences().size() == b.sequences.size());
  for (std::size_t i = 0; i < b.sequences.size(); ++i) {
    CHECK(sol.sequences()[i] == b.sequences[i]);
    CHECK(sol.log_phi()[i] == b.log_phi[i]);
    CHECK(sol.log_p0(b.sequences[i]) == Approx(b.log_p0[i]).margin(1e-12));
  }
  CHECK(sol.log_z() == Approx(b.log_z).margin(1e-12));

  // sum sigma = 1; sigma = p0 phi / Z.
  const double total = tsmc::logsumexp(sol.log_sigma());
  CHECK(total == Approx(0.0).margin(1e-13));
  for (std::size_t i = 0; i < b.sequences.size(); ++i) {
    const double expected = b.log_p0[i] + b.log_phi[i] - b.log_z;
    if (expected == neg_inf)
      CHECK(sol.log_sigma()[i] == neg_inf);
    else
      CHECK(sol.log_sigma()[i] == Approx(expected).margin(1e-12));
    CHECK(sol.log_sigma_of(b.sequences[i]) == sol.log_sigma()[i]);
  }

  // psi*_0 = Z; psi* = phi on finished sequences; the backward recursion elsewhere; the prefix
  // marginal is the sum of sigma over the finished sequences extending the prefix.
  CHECK(sol.log_optimal_twist({}) == sol.log_z());
  CHECK(sol.log_prefix_marginal({}) == Approx(0.0).margin(1e-13));
  std::vector<double> row(problem.vocab_size), terms(problem.vocab_size), sigma_next(problem.vocab_size);
  for (const auto& prefix : all_prefixes(problem)) {
    if (is_finished(problem, prefix)) {
      CHECK(sol.log_optimal_twist(prefix) == potential.log_value(prefix));
    } else {
      model.next_log_probs(problem.prompt, prefix, row);
      token_sequence child = prefix;
      child.push_back(0);
      for (std::size_t v = 0; v < problem.vocab_size; ++v) {
        child.back() = static_cast<token>(v);
        terms[v] = row[v] + sol.log_optimal_twist(child);
      }
      const double recursion = tsmc::logsumexp(std::span<const double>(terms));
      if (recursion == neg_inf)
        CHECK(sol.log_optimal_twist(prefix) == neg_inf);
      else
        CHECK(sol.log_optimal_twist(prefix) == Approx(recursion).margin(1e-12));
      // sigma's conditionals are normalised.
      sol.log_sigma_next(prefix, sigma_next);
      CHECK(tsmc::logsumexp(std::span<const double>(sigma_next)) == Approx(0.0).margin(1e-12));
    }
    std::vector<double> extending;
    for (std::size_t i = 0; i < b.sequences.size(); ++i)
      if (starts_with(b.sequences[i], prefix)) extending.push_back(sol.log_sigma()[i]);
    const double marginal = tsmc::logsumexp(std::span<const double>(extending));
    if (marginal == neg_inf)
      CHECK(sol.log_prefix_marginal(prefix) == neg_inf);
    else
      CHECK(sol.log_prefix_marginal(prefix) == Approx(marginal).margin(1e-12));
  }

  // KL(sigma || sigma) = 0 with q = sigma's conditionals; both directions.
  const auto sigma_q = [&sol](std::span<const token>, std::span<const token> prefix, std::span<double> out) {
    sol.log_sigma_next(prefix, out);
  };
  CHECK(sol.kl_sigma_q(sigma_q) == Approx(0.0).margin(1e-12));
  CHECK(sol.kl_q_sigma(sigma_q) == Approx(0.0).margin(1e-12));

  // q = p0 (the model itself): KL(sigma || p0) = E_sigma[log phi] - log Z.
  double e_sigma_log_phi = 0.0;
  for (std::size_t i = 0; i < b.sequences.size(); ++i)
    if (sol.log_sigma()[i] > neg_inf) e_sigma_log_phi += std::exp(sol.log_sigma()[i]) * b.log_phi[i];
  CHECK(sol.kl_sigma_q(model) == Approx(e_sigma_log_phi - sol.log_z()).margin(1e-12));
  // KL(p0 || sigma) = log Z - E_p0[log phi], infinite where phi vanishes on p0's support.
  double e_p0_log_phi = 0.0;
  for (std::size_t i = 0; i < b.sequences.size(); ++i) e_p0_log_phi += std::exp(b.log_p0[i]) * b.log_phi[i];
  if (std::isfinite(e_p0_log_phi))
    CHECK(sol.kl_q_sigma(model) == Approx(sol.log_z() - e_p0_log_phi).margin(1e-12));
  else
    CHECK(sol.kl_q_sigma(model) == std::numeric_limits<double>::infinity());
  CHECK(sol.kl_sigma_q(model) >= 0.0);
}

// Upper (1 - 1e-7) quantile of chi-square(df), Wilson-Hilferty with z = 5.2 (p = 1e-7 < 1e-6).
double chi_square_threshold(double df) {
  const double z = 5.2;
  const double a = 2.0 / (9.0 * df);
  return df * std::pow(1.0 - a + z * std::sqrt(a), 3.0);
}

// Pearson chi-square of sampler frequencies against sigma, pooling cells with expected < 5.
void check_sampler_frequencies(const exact_solution& sol, std::uint64_t seed, std::size_t n) {
  const enumeration_sampler sampler(sol);
  tsmc::default_engine rng(seed);
  std::vector<double> counts(sol.sequences().size(), 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t index = sampler.sample_index(rng);
    REQUIRE(index < counts.size());
    REQUIRE(sol.log_sigma()[index] > neg_inf);  // never a sequence without mass
    counts[index] += 1.0;
  }
  CHECK(sampler.sample(rng).size() <= sol.horizon());
  double chi2 = 0.0, pooled_expected = 0.0, pooled_count = 0.0;
  std::size_t cells = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    const double expected = static_cast<double>(n) * std::exp(sol.log_sigma()[i]);
    if (expected < 5.0) {
      pooled_expected += expected;
      pooled_count += counts[i];
      continue;
    }
    chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
    ++cells;
  }
  if (pooled_expected > 0.0) {
    chi2 += (pooled_count - pooled_expected) * (pooled_count - pooled_expected) / pooled_expected;
    ++cells;
  }
  REQUIRE(cells >= 5);
  const double df = static_cast<double>(cells - 1);
  INFO("chi2 = " << chi2 << ", df = " << df);
  CHECK(chi2 < chi_square_threshold(df));
}

}  // namespace

TEST_CASE("enumerate: hand-checked 2-token, 2-step problem", "[core]") {
  const toy_problem problem{.vocab_size = 2, .horizon = 2};
  const tabular_model model = hand_model();
  table_potential phi{{{{0, 0}, 1.0}, {{0, 1}, 2.0}, {{1, 0}, 0.5}, {{1, 1}, 0.0}}};
  const exact_solution sol = enumerate(problem, model, phi);

  // p0: 00 = .3 * .6, 01 = .3 * .4, 10 = .7 * .1, 11 = .7 * .9
  const double p00 = 0.3 * 0.6, p01 = 0.3 * 0.4, p10 = 0.7 * 0.1, p11 = 0.7 * 0.9;
  const double z = p00 * 1.0 + p01 * 2.0 + p10 * 0.5 + p11 * 0.0;  // 0.455
  CHECK(z == Approx(0.455).epsilon(1e-15));
  CHECK(sol.log_z() == Approx(std::log(z)).margin(1e-12));

  REQUIRE(sol.sequences().size() == 4);
  CHECK(sol.sequences()[0] == token_sequence{0, 0});
  CHECK(sol.sequences()[3] == token_sequence{1, 1});
  CHECK(sol.log_sigma_of(token_sequence{0, 0}) == Approx(std::log(p00 / z)).margin(1e-12));
  CHECK(sol.log_sigma_of(token_sequence{0, 1}) == Approx(std::log(p01 * 2.0 / z)).margin(1e-12));
  CHECK(sol.log_sigma_of(token_sequence{1, 0}) == Approx(std::log(p10 * 0.5 / z)).margin(1e-12));
  CHECK(sol.log_sigma_of(token_sequence{1, 1}) == neg_inf);
  CHECK(sol.log_sigma_of(token_sequence{1}) == neg_inf);  // not a finished sequence
  CHECK(sol.log_sigma_of(token_sequence{0, 0, 1}) == neg_inf);

  // Prefix marginals sigma(s_1).
  CHECK(sol.log_prefix_marginal(token_sequence{0}) == Approx(std::log((p00 + 2.0 * p01) / z)).margin(1e-12));
  CHECK(sol.log_prefix_marginal(token_sequence{1}) == Approx(std::log(0.5 * p10 / z)).margin(1e-12));
  CHECK(sol.log_prefix_marginal({}) == Approx(0.0).margin(1e-12));
  CHECK(sol.log_prefix_marginal(token_sequence{0, 1}) == Approx(std::log(2.0 * p01 / z)).margin(1e-12));

  // Optimal twists: psi*_1(0) = .6 * 1 + .4 * 2 = 1.4, psi*_1(1) = .1 * .5 + .9 * 0 = .05,
  // psi*_0 = .3 * 1.4 + .7 * .05 = .455 = Z, psi*_2 = phi.
  CHECK(sol.log_optimal_twist(token_sequence{0}) == Approx(std::log(1.4)).margin(1e-12));
  CHECK(sol.log_optimal_twist(token_sequence{1}) == Approx(std::log(0.05)).margin(1e-12));
  CHECK(sol.log_optimal_twist({}) == Approx(std::log(0.3 * 1.4 + 0.7 * 0.05)).margin(1e-12));
  CHECK(sol.log_optimal_twist(token_sequence{0, 1}) == Approx(std::log(2.0)).margin(1e-12));
  CHECK(sol.log_optimal_twist(token_sequence{1, 1}) == neg_inf);

  // log p0 of prefixes.
  CHECK(sol.log_p0({}) == 0.0);
  CHECK(sol.log_p0(token_sequence{1}) == Approx(std::log(0.7)).margin(1e-12));
  CHECK(sol.log_p0(token_sequence{1, 0}) == Approx(std::log(p10)).margin(1e-12));
  CHECK(sol.log_p0(token_sequence{1, 0, 0}) == neg_inf);  // beyond the horizon

  // sigma's conditionals: sigma(0 | empty) = .3 * 1.4 / .455, sigma(1 | 0) = .4 * 2 / 1.4.
  std::vector<double> next(2);
  sol.log_sigma_next({}, next);
  CHECK(next[0] == Approx(std::log(0.42 / 0.455)).margin(1e-12));
  sol.log_sigma_next(token_sequence{0}, next);
  CHECK(next[1] == Approx(std::log(0.8 / 1.4)).margin(1e-12));
  sol.log_p0_next(token_sequence{1}, next);
  CHECK(next[1] == Approx(std::log(0.9)).margin(1e-12));
  CHECK_THROWS_AS(sol.log_sigma_next(token_sequence{1, 0}, next), tsmc::invalid_argument);
  CHECK_THROWS_AS(sol.log_optimal_twist(token_sequence{2}), tsmc::invalid_argument);

  // KL against the uniform proposal q(s) = 1/4 (hand sums; sigma(11) = 0 so KL(q || sigma) = inf).
  const auto uniform = [](std::span<const token>, std::span<const token>, std::span<double> out) {
    for (double& x : out) x = std::log(0.5);
  };
  double kl = 0.0;
  for (const double mass : {p00 / z, 2.0 * p01 / z, 0.5 * p10 / z}) kl += mass * std::log(mass / 0.25);
  CHECK(sol.kl_sigma_q(uniform) == Approx(kl).margin(1e-12));
  CHECK(sol.kl_q_sigma(uniform) == std::numeric_limits<double>::infinity());
  CHECK(sol.log_q_of_sequences(uniform)[2] == Approx(std::log(0.25)).margin(1e-15));

  // The default single-precision model gives the same answers up to float rounding.
  const exact_solution rounded = enumerate(problem, hand_model(table_precision::single), phi);
  CHECK(rounded.log_z() == Approx(std::log(z)).margin(1e-6));
  CHECK(rounded.log_optimal_twist(token_sequence{0}) == Approx(std::log(1.4)).margin(1e-6));
}

TEST_CASE("enumerate: hand-checked problem with an end token", "[core]") {
  // Token 1 ends a sequence: the finished sequences are [0, 0], [0, 1] and [1].
  const toy_problem problem{.vocab_size = 2, .horizon = 2, .end_token = 1};
  const tabular_model model = hand_model();
  table_potential phi{{{{0, 0}, 1.0}, {{0, 1}, 2.0}, {{1}, 0.5}}};
  const exact_solution sol = enumerate(problem, model, phi);

  REQUIRE(sol.sequences().size() == 3);
  CHECK(sol.sequences()[0] == token_sequence{0, 0});
  CHECK(sol.sequences()[1] == token_sequence{0, 1});
  CHECK(sol.sequences()[2] == token_sequence{1});
  const double z = 0.3 * 0.6 * 1.0 + 0.3 * 0.4 * 2.0 + 0.7 * 0.5;  // 0.77
  CHECK(sol.log_z() == Approx(std::log(z)).margin(1e-12));
  CHECK(sol.log_sigma_of(token_sequence{1}) == Approx(std::log(0.35 / z)).margin(1e-12));
  CHECK(sol.log_sigma_of(token_sequence{1, 0}) == neg_inf);  // never continues after the end token
  CHECK(sol.log_prefix_marginal(token_sequence{1}) == Approx(std::log(0.35 / z)).margin(1e-12));
  CHECK(sol.log_prefix_marginal(token_sequence{1, 1}) == neg_inf);
  CHECK(sol.log_prefix_marginal(token_sequence{0}) == Approx(std::log(0.42 / z)).margin(1e-12));
  CHECK(sol.log_optimal_twist(token_sequence{1}) == Approx(std::log(0.5)).margin(1e-12));  // finished: phi
  CHECK(sol.log_optimal_twist(token_sequence{0}) == Approx(std::log(1.4)).margin(1e-12));
  CHECK(sol.log_optimal_twist({}) == Approx(std::log(z)).margin(1e-12));
  CHECK(sol.log_optimal_twist(token_sequence{1, 0}) == neg_inf);
  // q = p0: KL(sigma || p0) = E_sigma[log phi] - log Z by hand.
  const double kl = (0.18 / z) * std::log(1.0) + (0.24 / z) * std::log(2.0) + (0.35 / z) * std::log(0.5) - std::log(z);
  CHECK(sol.kl_sigma_q(model) == Approx(kl).margin(1e-12));
}

TEST_CASE("enumerate agrees with brute force and is self-consistent on random problems", "[core]") {
  const tabular_model model(3, 2024, 1.5);
  for (const bool with_end : {false, true}) {
    toy_problem problem{.vocab_size = 3, .horizon = 4, .prompt = {2, 0}};
    if (with_end) problem.end_token = 2;
    SECTION(std::string("random potential") + (with_end ? ", end token" : "")) {
      tsmc::testing::random_potential phi(5, 1.0);
      check_consistency(problem, model, phi);
    }
    SECTION(std::string("soft classifier") + (with_end ? ", end token" : "")) {
      auto phi = tsmc::testing::soft_classifier::random(3, 8, 1.0, -0.5, 2.0);
      check_consistency(problem, model, phi);
    }
    SECTION(std::string("pattern indicator") + (with_end ? ", end token" : "")) {
      tsmc::testing::pattern_indicator phi({1, 0});
      check_consistency(problem, model, phi);
    }
  }
  SECTION("four tokens, three steps, hidden next-token form") {
    const tabular_model four(4, 7);
    tsmc::testing::hide_next_token_form phi(tsmc::testing::random_potential(3, 2.0));
    check_consistency(toy_problem{.vocab_size = 4, .horizon = 3}, four, phi.inner());
    const exact_solution a = enumerate(toy_problem{.vocab_size = 4, .horizon = 3}, four, phi);
    const exact_solution b = enumerate(toy_problem{.vocab_size = 4, .horizon = 3}, four, phi.inner());
    CHECK(a.log_z() == b.log_z());
  }
}

TEST_CASE("optimal_twist is psi* as a TwistFunction; its proposal is sigma's conditionals", "[core]") {
  STATIC_REQUIRE(tsmc::TwistFunction<optimal_twist, tabular_model>);
  const tabular_model model(3, 31);
  const toy_problem problem{.vocab_size = 3, .horizon = 3, .prompt = {1}, .end_token = 0};
  tsmc::testing::soft_classifier phi = tsmc::testing::soft_classifier::random(3, 4);
  const exact_solution sol = enumerate(problem, model, phi);
  const optimal_twist twist(sol);
  CHECK(twist.vocab_size() == 3);

  // Every unfinished prefix, batched as one step context per length.
  for (std::size_t t = 1; t <= problem.horizon; ++t) {
    std::vector<token_sequence> prefixes;
    for (const auto& p : all_prefixes(problem))
      if (p.size() == t - 1 && !is_finished(problem, p)) prefixes.push_back(p);
    prefixes.push_back({0});  // a finished particle (inactive): its row is ignored
    std::vector<std::uint8_t> active(prefixes.size(), 1);
    active.back() = 0;
    const tsmc::step_context<tabular_model> ctx{
        .step = t, .horizon = problem.horizon, .prompt = problem.prompt, .prefixes = prefixes, .active = active, .model = model};
    tsmc::log_prob_matrix out(static_cast<Eigen::Index>(prefixes.size()), 3);
    twist.log_twist(ctx, out);
    std::vector<double> p0(3), sigma_next(3), terms(3);
    for (std::size_t k = 0; k + 1 < prefixes.size(); ++k) {
      model.next_log_probs(problem.prompt, prefixes[k], p0);
      sol.log_sigma_next(prefixes[k], sigma_next);
      for (std::size_t v = 0; v < 3; ++v) {
        token_sequence child = prefixes[k];
        child.push_back(static_cast<token>(v));
        const double expected = sol.log_optimal_twist(child);
        CHECK(out(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(v)) == expected);
        if (t == problem.horizon || v == 0) CHECK(expected == phi.log_value(child));
        terms[v] = p0[v] + sol.log_optimal_twist(child);
      }
      // Z^pi_t / psi*_{t-1} = 1 (Eq. 15 with psi*), and the twisted proposal is sigma's conditional.
      const double lse = tsmc::logsumexp(std::span<const double>(terms));
      CHECK(lse - sol.log_optimal_twist(prefixes[k]) == Approx(0.0).margin(1e-12));
      for (std::size_t v = 0; v < 3; ++v) CHECK(terms[v] - lse == Approx(sigma_next[v]).margin(1e-12));
    }
    CHECK(out.row(out.rows() - 1).isZero());
  }

  // Misuse: a different prompt, a finished active prefix, a wrong shape.
  const std::vector<token_sequence> prefixes{{2}};
  const std::vector<std::uint8_t> active{1};
  tsmc::log_prob_matrix out(1, 3);
  const token_sequence other_prompt{2};
  const tsmc::step_context<tabular_model> wrong_prompt{
      .step = 2, .horizon = 3, .prompt = other_prompt, .prefixes = prefixes, .active = active, .model = model};
  CHECK_THROWS_AS(twist.log_twist(wrong_prompt, out), tsmc::invalid_argument);
  const std::vector<token_sequence> finished{{0}};
  const tsmc::step_context<tabular_model> finished_ctx{
      .step = 2, .horizon = 3, .prompt = problem.prompt, .prefixes = finished, .active = active, .model = model};
  CHECK_THROWS_WITH(twist.log_twist(finished_ctx, out),
                    "tsmc::testing::optimal_twist::log_twist: ctx.prefixes[0] must be an unfinished prefix of the "
                    "problem, got [0]");
  tsmc::log_prob_matrix wrong(1, 2);
  const tsmc::step_context<tabular_model> ok{
      .step = 2, .horizon = 3, .prompt = problem.prompt, .prefixes = prefixes, .active = active, .model = model};
  CHECK_THROWS_AS(twist.log_twist(ok, wrong), tsmc::invalid_argument);
}

TEST_CASE("enumeration_sampler draws from sigma (chi-square, false-alarm rate < 1e-6)", "[core]") {
  STATIC_REQUIRE(tsmc::ExactSampler<enumeration_sampler>);
  STATIC_REQUIRE(tsmc::ExactSampler<enumeration_sampler, std::mt19937_64>);
  const tabular_model model(3, 77, 1.0);
  tsmc::testing::random_potential phi(12, 1.0);
  const exact_solution full = enumerate(toy_problem{.vocab_size = 3, .horizon = 3}, model, phi);
  check_sampler_frequencies(full, 123, 200000);
  const exact_solution ended = enumerate(toy_problem{.vocab_size = 3, .horizon = 4, .end_token = 1}, model, phi);
  check_sampler_frequencies(ended, 456, 200000);
  // A potential with zeros: those sequences are never drawn.
  tsmc::testing::pattern_indicator pattern({2, 2});
  const exact_solution sparse = enumerate(toy_problem{.vocab_size = 3, .horizon = 4}, model, pattern);
  check_sampler_frequencies(sparse, 789, 100000);
}

TEST_CASE("enumerate rejects bad problems; Z = 0 is a degenerate result", "[core]") {
  const tabular_model model(3, 1);
  tsmc::testing::random_potential phi(1);
  CHECK_THROWS_WITH(enumerate(toy_problem{.vocab_size = 3, .horizon = 20}, model, phi),
                    Catch::Contains("tsmc::testing::enumerate: number of finished sequences must be at most 10000000"));
  CHECK_THROWS_AS(enumerate(toy_problem{.vocab_size = 3, .horizon = 0}, model, phi), tsmc::invalid_argument);
  CHECK_THROWS_WITH(enumerate(toy_problem{.vocab_size = 3, .horizon = 2, .end_token = 3}, model, phi),
                    "tsmc::testing::enumerate: problem.end_token must be in [0, 3), got 3");
  CHECK_THROWS_AS(enumerate(toy_problem{.vocab_size = 4, .horizon = 2}, model, phi), tsmc::invalid_argument);
  CHECK_THROWS_AS(enumerate(toy_problem{.vocab_size = 3, .horizon = 2, .prompt = {5}}, model, phi),
                  tsmc::invalid_argument);
  // With an end token, V^T may exceed the limit while the finished sequences do not (V = 2, T = 30).
  CHECK(enumerate(toy_problem{.vocab_size = 2, .horizon = 30, .end_token = 0},
                  tabular_model::from_function(2, [](auto, auto) { return std::vector<double>{0.5, 0.5}; }), phi)
            .sequences()
            .size() == 31);

  // A pattern longer than the horizon: phi = 0 everywhere, log Z = -inf.
  tsmc::testing::pattern_indicator impossible({0, 0, 0});
  const exact_solution sol = enumerate(toy_problem{.vocab_size = 3, .horizon = 2}, model, impossible);
  CHECK(sol.log_z() == neg_inf);
  for (const double x : sol.log_sigma()) CHECK(x == neg_inf);
  CHECK(sol.log_prefix_marginal({}) == neg_inf);
  CHECK_THROWS_AS(enumeration_sampler(sol), tsmc::invalid_argument);
  CHECK_THROWS_AS(sol.kl_sigma_q(model), tsmc::invalid_argument);

  // A proposal that is not normalised is rejected.
  const exact_solution good = enumerate(toy_problem{.vocab_size = 3, .horizon = 2}, model, phi);
  const auto bad_q = [](std::span<const token>, std::span<const token>, std::span<double> out) {
    for (double& x : out) x = 0.0;
  };
  CHECK_THROWS_AS(good.kl_sigma_q(bad_q), tsmc::invalid_argument);
}
