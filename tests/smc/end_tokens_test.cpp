// smc_options::end_tokens: a set of end tokens (llama2.c models end with BOS or EOS, chat models
// with several). Exact answers from enumeration with two end tokens; validation messages.
#include "smc/sampler_fixtures.hpp"

#include <tsmc/bounds/estimator.hpp>
#include <tsmc/bounds/exact_samplers.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <set>

using namespace tsmc_test;
using Catch::Matchers::Contains;

namespace {

/// V = 4, horizon 3, end tokens {1 (end_token), 3 (end_tokens)}.
struct two_end_problem {
  toy_problem problem{4, 3, token_sequence{0}, token{1}, {3}};
  tabular_model model{4, 17, 1.0};
  random_potential potential{23, 1.0};
  exact_solution solution{enumerate(problem, model, potential)};

  [[nodiscard]] smc_options options(std::size_t particles, proposal_type proposal) const {
    return smc_options{.particles = particles, .horizon = 3, .proposal = proposal, .end_token = 1, .end_tokens = {3}};
  }
};

}  // namespace

TEST_CASE("end_tokens: enumeration finishes a sequence at either end token", "[sampler]") {
  two_end_problem p;
  // Finished sequences: 2 of length 1, 2*2 of length 2, 2*2*4 of length 3.
  REQUIRE(p.solution.sequences().size() == 2u + 4u + 16u);
  for (const token_sequence& s : p.solution.sequences()) {
    for (std::size_t i = 0; i + 1 < s.size(); ++i) REQUIRE((s[i] == 0 || s[i] == 2));
    if (s.size() < 3) REQUIRE((s.back() == 1 || s.back() == 3));
  }
  REQUIRE(p.problem.is_end(1));
  REQUIRE(p.problem.is_end(3));
  REQUIRE_FALSE(p.problem.is_end(2));
}

TEST_CASE("end_tokens: the optimal twist gives log Zhat = log Z in every run; sequences end at either token",
          "[sampler]") {
  two_end_problem p;
  optimal_twist psi_star(p.solution);
  twisted_smc smc(p.model, psi_star, p.potential, p.options(8, proposal_type::twisted), systematic{}, always);
  default_engine rng(3);
  std::set<token> last_tokens;
  for (int run = 0; run < 40; ++run) {
    const smc_result r = smc.run(p.problem.prompt, rng);
    REQUIRE(std::abs(r.log_z - p.solution.log_z()) < 1e-9);
    for (const token_sequence& s : r.sequences) {
      REQUIRE_NOTHROW(p.solution.log_sigma_of(s));  // throws unless s is a finished sequence
      if (s.size() < 3) last_tokens.insert(s.back());
    }
  }
  REQUIRE(last_tokens == std::set<token>{1, 3});
}

TEST_CASE("end_tokens: E[Zhat] = Z and the bounds bracket log Z, base and twisted proposals", "[sampler]") {
  two_end_problem p;
  random_twist twist(41, 1.0);
  std::uint64_t seed = 90;
  for (proposal_type proposal : {proposal_type::base, proposal_type::twisted}) {
    CAPTURE(proposal == proposal_type::twisted);
    twisted_smc smc(p.model, twist, p.potential, p.options(4, proposal), multinomial{}, ess_below(0.6));
    default_engine rng(seed++);
    constexpr int runs = 3000;
    std::vector<double> ratio(runs);
    for (int m = 0; m < runs; ++m) ratio[m] = std::exp(smc.run(p.problem.prompt, rng).log_z - p.solution.log_z());
    const mean_estimate est = mean_and_standard_error(ratio);
    INFO("mean Zhat / Z = " << est.mean << " +- " << est.standard_error);
    REQUIRE(est.standard_error > 0.0);
    REQUIRE(std::abs(est.mean - 1.0) < z_limit * est.standard_error);
    // Conditional runs take references ending at either end token (the exact sampler declares both).
    enumeration_sampler exact(p.solution);
    const log_z_bounds b = estimate_bounds(smc, p.problem.prompt, exact, 400, rng);
    REQUIRE(b.lower.mean - z_limit * b.lower.standard_error < p.solution.log_z());
    REQUIRE(b.upper.mean + z_limit * b.upper.standard_error > p.solution.log_z());
  }
}

TEST_CASE("end_tokens: validation names the entry, and estimators check the exact sampler's set", "[sampler]") {
  two_end_problem p;
  no_twist none;
  const auto make = [&](smc_options o) { twisted_smc smc(p.model, none, p.potential, o); };
  REQUIRE_THROWS_WITH(make(smc_options{.particles = 2, .horizon = 2, .end_tokens = {0, 4}}),
                      Contains("options.end_tokens[1] must be in [0, 4), got 4"));
  REQUIRE_THROWS_WITH(make(smc_options{.particles = 2, .horizon = 2, .end_token = 3, .end_tokens = {3}}),
                      Contains("options.end_tokens[0] must not repeat end_token or an earlier end token, got 3"));
  REQUIRE_THROWS_WITH(make(smc_options{.particles = 2, .horizon = 2, .end_tokens = {2, -1}}),
                      Contains("options.end_tokens[1] must be in [0, 4), got -1"));
  REQUIRE_THROWS_WITH(make(smc_options{.particles = 2, .horizon = 2, .end_tokens = {2, 2}}),
                      Contains("options.end_tokens[1] must not repeat"));
  REQUIRE_THROWS_WITH(enumerate(toy_problem{4, 2, {}, token{1}, {1}}, p.model, p.potential),
                      Contains("problem.end_tokens[0] must not repeat"));
  // A conditional run's reference shorter than the horizon must end with one of the end tokens.
  twisted_smc smc(p.model, none, p.potential, p.options(4, proposal_type::base));
  default_engine rng(1);
  REQUIRE_NOTHROW(smc.run_conditional(p.problem.prompt, token_sequence{2, 3}, rng));
  REQUIRE_THROWS_WITH(smc.run_conditional(p.problem.prompt, token_sequence{3, 1}, rng),
                      Contains("must not be the end token before the reference's last position"));
  REQUIRE_THROWS_WITH(smc.run_conditional(p.problem.prompt, token_sequence{2, 2}, rng),
                      Contains("shorter than the horizon must end with the end token"));
  // The estimator compares the sampler's end tokens with those the exact sampler declares.
  two_end_problem other;
  other.problem.end_tokens = {2};
  other.solution = enumerate(other.problem, other.model, other.potential);
  enumeration_sampler wrong(other.solution);
  REQUIRE_THROWS_WITH(estimate_bounds(smc, p.problem.prompt, wrong, 1, rng),
                      Contains("exact.end_tokens() must equal the sampler's end tokens"));
}

TEST_CASE("end_tokens: the rejection sampler finishes at either end token and draws sigma exactly", "[sampler]") {
  two_end_problem p;
  std::vector<double> log_phi(p.solution.sequences().size());
  p.potential.log_potential(p.solution.sequences(), log_phi);
  const double log_bound = *std::max_element(log_phi.begin(), log_phi.end());
  rejection_sampler exact(p.model, p.potential, p.problem.prompt,
                          {.horizon = 3, .end_token = 1, .end_tokens = {3}, .rule = acceptance_rule::bounded,
                           .log_bound = log_bound, .batch = 64, .budget = 10'000'000});
  REQUIRE(exact.end_tokens().size() == 1);
  // The frequency of each length against sigma's: 3 binomial proportions, each within z_limit sd.
  std::array<double, 4> sigma_length{};
  for (const token_sequence& s : p.solution.sequences()) sigma_length[s.size()] += std::exp(p.solution.log_sigma_of(s));
  default_engine rng(11);
  constexpr int draws = 4000;
  std::array<int, 4> count{};
  std::set<token> last_tokens;
  for (int i = 0; i < draws; ++i) {
    const token_sequence s = exact.sample(rng);
    REQUIRE_NOTHROW(p.solution.log_sigma_of(s));  // a finished sequence of the problem
    ++count[s.size()];
    if (s.size() < 3) last_tokens.insert(s.back());
  }
  REQUIRE(last_tokens == std::set<token>{1, 3});
  for (std::size_t n = 1; n <= 3; ++n) {
    const double q = sigma_length[n], sd = std::sqrt(q * (1.0 - q) / draws);
    INFO("length " << n << ": " << count[n] << " of " << draws << ", sigma " << q);
    REQUIRE(std::abs(count[n] / static_cast<double>(draws) - q) < z_limit * sd);
  }
  // The estimators accept it (it declares the same set) and refuse it against a one-end sampler.
  no_twist none;
  twisted_smc both(p.model, none, p.potential, p.options(4, proposal_type::base));
  REQUIRE_NOTHROW(estimate_bounds(both, p.problem.prompt, exact, 2, rng));
  smc_options one = p.options(4, proposal_type::base);
  one.end_tokens.clear();
  twisted_smc single(p.model, none, p.potential, one);
  REQUIRE_THROWS_WITH(estimate_bounds(single, p.problem.prompt, exact, 1, rng),
                      Contains("exact.end_tokens() must equal the sampler's end tokens"));
}
