// [reliability] Findings of a review of the sampler and the estimators (issue 19, item 5): each
// test failed before its fix.

#include "smc/sampler_fixtures.hpp"

#include <tsmc/bounds/estimator.hpp>
#include <tsmc/bounds/kl.hpp>
#include <tsmc/core/error.hpp>
#include <tsmc/smc/stateless_model.hpp>
#include <tsmc/testing/enumeration.hpp>
#include <tsmc/testing/toy_potentials.hpp>
#include <tsmc/twists/no_twist.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace {

using namespace tsmc_test;
constexpr double inf = std::numeric_limits<double>::infinity();

// log psi = -inf for candidate `zero` (at every step, or only at `only_step` if non-zero), 0 otherwise.
struct zero_at_token {
  token zero = 0;
  std::size_t only_step = 0;
  template <class M>
  void log_twist(const step_context<M>& ctx, log_prob_ref out) const {
    out.setZero();
    if (only_step == 0 || ctx.step == only_step) out.col(static_cast<Eigen::Index>(zero)).setConstant(-inf);
  }
};

// log psi = -inf for every candidate but `keep`.
struct only_token {
  token keep = 2;
  template <class M>
  void log_twist(const step_context<M>& ctx, log_prob_ref out) const {
    (void)ctx;
    out.setConstant(-inf);
    out.col(static_cast<Eigen::Index>(keep)).setZero();
  }
};

// A user proposal: uniform, except q = 0 for token `zero` at step `at`.
struct proposal_without_token {
  token zero = 0;
  std::size_t at = 1;
  template <class M>
  void log_proposal(const step_context<M>& ctx, log_prob_ref out) const {
    out.setZero();
    if (ctx.step == at) out.col(static_cast<Eigen::Index>(zero)).setConstant(-inf);
  }
};

std::string message_of(const auto& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "no exception";
}

}  // namespace

TEST_CASE("estimate_kl with the base proposal ignores a twist that is 0 where sigma has mass", "[reliability]") {
  small_problem p(true, 7, 3);
  auto exact = enumeration_exact_sampler(p.solution);
  const kl_options options{.horizon = 3, .proposal = proposal_type::base, .end_token = 2,
                           .proposal_samples = 2000, .exact_samples = 1000, .batch = 250};
  const log_z_reference log_z = log_z_reference::known(p.solution.log_z());
  zero_at_token twist{0};  // psi = 0 after any token 0: sigma has mass there (phi > 0 everywhere)
  no_twist none;
  default_engine a(3), b(3);
  const kl_estimate with_twist = estimate_kl(p.model, twist, p.potential, p.problem.prompt, exact, log_z, options, a);
  const kl_estimate without = estimate_kl(p.model, none, p.potential, p.problem.prompt, exact, log_z, options, b);
  INFO("KL(q || sigma) " << with_twist.q_sigma.value << ", KL(sigma || q) " << with_twist.sigma_q.value);
  CHECK(std::isfinite(with_twist.q_sigma.value));
  CHECK(std::isfinite(with_twist.sigma_q.value));
  CHECK(with_twist.q_sigma.value == without.q_sigma.value);
  CHECK(with_twist.sigma_q.value == without.sigma_q.value);
  // And they estimate the exact KLs of q = p0.
  const double exact_q_sigma = p.solution.kl_q_sigma(p.model), exact_sigma_q = p.solution.kl_sigma_q(p.model);
  CHECK(std::abs(with_twist.q_sigma.value - exact_q_sigma) < z_limit * with_twist.q_sigma.standard_error);
  CHECK(std::abs(with_twist.sigma_q.value - exact_sigma_q) < z_limit * with_twist.sigma_q.standard_error);
}

TEST_CASE("a conditional run whose user proposal cannot produce the reference names the proposal", "[reliability]") {
  small_problem p(true, 7, 3);
  const token_sequence reference{0, 1, 2};
  proposal_without_token q{1, 2};  // q(1) = 0 at step 2, the reference's second token
  no_twist none;
  twisted_smc smc(p.model, none, p.potential, p.options(4, proposal_type::base));
  default_engine rng(1);
  const std::string message =
      message_of([&] { (void)smc.run_conditional_with_proposal(q, p.problem.prompt, reference, rng); });
  INFO(message);
  CHECK(message.find("tsmc::twisted_smc::run_conditional_with_proposal") == 0);
  CHECK(message.find("the proposal's log q of the reference's token 1 at step 2") != std::string::npos);
  // A free particle with q = 0 for a token simply never draws it: no error.
  proposal_without_token harmless{1, 2};
  CHECK_NOTHROW(smc.run_with_proposal(harmless, p.problem.prompt, rng));
}

TEST_CASE("a reference with p0 = 0 is refused in every mode", "[reliability]") {
  // p0(1 | empty prefix) = 0: the reference {1, 0, 2} has p0 = 0, so sigma = 0 there.
  auto model = tabular_model::from_function(3, [](std::span<const token>, std::span<const token> prefix) {
    return prefix.empty() ? std::vector<double>{0.5, 0.0, 0.5} : std::vector<double>{0.3, 0.3, 0.4};
  });
  random_potential potential(5, 1.0);
  random_twist twist(6, 1.0);
  const token_sequence prompt{1};
  const token_sequence reference{1, 0, 2};
  const smc_options twisted_options{.particles = 4, .horizon = 3, .end_token = 2};
  const smc_options base_options{.particles = 4, .horizon = 3, .proposal = proposal_type::base, .end_token = 2};
  default_engine rng(2);
  const std::string expected = "the model's log p0 of the reference's token 1 at step 1";
  twisted_smc twisted(model, twist, potential, twisted_options);
  twisted_smc base(model, twist, potential, base_options);
  proposal_without_token uniform{0, 99};
  const std::string m1 = message_of([&] { (void)twisted.run_conditional(prompt, reference, rng); });
  const std::string m2 = message_of([&] { (void)base.run_conditional(prompt, reference, rng); });
  const std::string m3 = message_of([&] { (void)base.run_conditional_with_proposal(uniform, prompt, reference, rng); });
  INFO(m1 << "\n" << m2 << "\n" << m3);
  CHECK(m1.find(expected) != std::string::npos);
  CHECK(m2.find(expected) != std::string::npos);
  CHECK(m3.find(expected) != std::string::npos);
}

TEST_CASE("psi = 0 on the reference's prefix: the base proposal throws as the twisted one does", "[reliability]") {
  small_problem p(true, 7, 3);
  const token_sequence reference{0, 1, 2};
  zero_at_token twist{0, 1};  // psi(s_1 = 0) = 0: the reference's first token
  default_engine rng(4);
  const std::string expected = "the twist's log psi of the reference's token 0 at step 1";
  for (const proposal_type proposal : {proposal_type::twisted, proposal_type::base}) {
    twisted_smc smc(p.model, twist, p.potential, p.options(4, proposal));
    const std::string message = message_of([&] { (void)smc.run_conditional(p.problem.prompt, reference, rng); });
    INFO(message);
    CHECK(message.find(expected) != std::string::npos);
  }
}

TEST_CASE("a run ends when resampling leaves only finished particles", "[reliability]") {
  // Base proposal; psi = 0 for every token but the end token 2: after step 1 only the particles
  // that drew 2 have weight, and resampling copies them into every slot.
  small_problem p(true, 7, 4);
  only_token twist{2};
  twisted_smc smc(p.model, twist, p.potential, p.options(64, proposal_type::base));
  default_engine rng(5);
  const smc_result r = smc.run(p.problem.prompt, rng);
  REQUIRE(r.log_z > -inf);
  CHECK(r.steps == 1);
  CHECK(p.model.log_prob_calls() == 1);
  for (const auto& s : r.sequences) CHECK(s == token_sequence{2});
}

TEST_CASE("stateless_model scores only the active particles", "[reliability]") {
  std::size_t calls = 0;
  stateless_model model(3, [&calls](std::span<const token>, std::span<const token>, std::span<double> out) {
    ++calls;
    out[0] = std::log(0.2);
    out[1] = std::log(0.5);
    out[2] = std::log(0.3);
  });
  model.start(token_sequence{0}, 3);
  log_prob_matrix out = log_prob_matrix::Constant(3, 3, 7.0);
  const std::vector<std::uint8_t> active{1, 0, 1};
  model.log_probs(out, active);
  CHECK(calls == 2);
  CHECK(out(1, 0) == 7.0);  // a finished row is left alone
  CHECK(out(0, 1) == std::log(0.5));
  model.log_probs(out);
  CHECK(calls == 5);
  const std::vector<std::uint8_t> wrong{1, 0};
  CHECK_THROWS_AS(model.log_probs(out, wrong), tsmc::invalid_argument);
  // In a run without resampling, each particle costs one call per token it drew.
  random_potential potential(1, 1.0);
  no_twist none;
  twisted_smc smc(model, none, potential,
                  smc_options{.particles = 16, .horizon = 6, .proposal = proposal_type::base, .end_token = 2},
                  multinomial{}, never);
  default_engine rng(6);
  calls = 0;
  const smc_result r = smc.run(token_sequence{0}, rng);
  std::size_t tokens = 0;
  for (const auto& s : r.sequences) tokens += s.size();
  CHECK(tokens < 16 * 6);  // some finished early
  CHECK(calls == tokens);
}
