// The sampler's interface: results, observers, end tokens, user proposals, the stateless adapter,
// thread-count independence, a golden digest, and errors for bad input.
#include "smc/sampler_fixtures.hpp"

#include <tsmc/smc/stateless_model.hpp>

#include <catch2/catch.hpp>

#include <cstdio>
#include <limits>
#include <string>

#ifdef _OPENMP
#include <omp.h>
#endif

using namespace tsmc_test;

namespace {

// Recorded from a run of this test (see "golden digest" below); a change in the arithmetic or the
// random streams changes them.
constexpr std::uint64_t GOLDEN_DIGEST = 482264283018338557ULL;
constexpr const char* GOLDEN_LOG_Z = "0.513736425621";

/// Wraps a model and injects a bad value into its rows at a given step.
struct poisoned_model {
  tabular_model inner;
  std::size_t poison_step;
  double poison;
  std::size_t step = 0;
  [[nodiscard]] std::size_t vocab_size() const { return inner.vocab_size(); }
  void start(std::span<const token> prompt, std::size_t k) { inner.start(prompt, k), step = 0; }
  void log_probs(log_prob_ref out) {
    inner.log_probs(out);
    if (++step == poison_step) out(0, 1) = poison;
  }
  void append(std::span<const token> t) { inner.append(t); }
  void reorder(std::span<const particle_index> a) { inner.reorder(a); }
};

/// Wraps a model and gives particle 0 no possible next token at a given step.
struct dead_end_model {
  tabular_model inner;
  std::size_t dead_step;
  std::size_t step = 0;
  [[nodiscard]] std::size_t vocab_size() const { return inner.vocab_size(); }
  void start(std::span<const token> prompt, std::size_t k) { inner.start(prompt, k), step = 0; }
  void log_probs(log_prob_ref out) {
    inner.log_probs(out);
    if (++step == dead_step) out.row(0).setConstant(-std::numeric_limits<double>::infinity());
  }
  void append(std::span<const token> t) { inner.append(t); }
  void reorder(std::span<const particle_index> a) { inner.reorder(a); }
};

/// A proposal that gives particle 0 no possible token.
struct dead_end_proposal {
  template <class M>
  void log_proposal(const step_context<M>&, log_prob_ref out) const {
    out.setZero();
    out.row(0).setConstant(-std::numeric_limits<double>::infinity());
  }
};

/// A twist that returns a bad value at a given step.
struct poisoned_twist {
  std::size_t poison_step;
  double poison;
  std::size_t vocab = 3;
  [[nodiscard]] std::size_t vocab_size() const { return vocab; }
  template <class M>
  void log_twist(const step_context<M>& ctx, log_prob_ref out) const {
    out.setZero();
    if (ctx.step == poison_step) out(0, 0) = poison;
  }
};

/// A model with a length limit.
struct limited_model : tabular_model {
  using tabular_model::tabular_model;
  [[nodiscard]] std::size_t max_length() const { return 4; }
};

/// A model that records which rows the sampler asks for, through the optional active-mask hook.
struct masked_model : tabular_model {
  using tabular_model::tabular_model;
  using tabular_model::log_probs;
  std::size_t rows_requested = 0;
  void log_probs(log_prob_ref out, std::span<const std::uint8_t> active) {
    tabular_model::log_probs(out);
    for (auto a : active) rows_requested += a;
  }
};

struct zero_potential {
  void log_potential(std::span<const token_sequence> s, std::span<double> out) const {
    for (std::size_t k = 0; k < s.size(); ++k) out[k] = -std::numeric_limits<double>::infinity();
  }
};

/// A user proposal: the next-token tables of another random tabular model.
struct table_proposal {
  tabular_model tables;
  std::vector<double> row = std::vector<double>(tables.vocab_size());
  template <class M>
  void log_proposal(const step_context<M>& ctx, log_prob_ref out) {
    for (std::size_t k = 0; k < ctx.prefixes.size(); ++k) {
      tables.next_log_probs(ctx.prompt, ctx.prefixes[k], row);
      for (std::size_t v = 0; v < row.size(); ++v) out(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(v)) = row[v];
    }
  }
};

std::uint64_t digest(const smc_result& r) {
  std::uint64_t h = 1469598103934665603ULL;
  auto mix = [&h](std::uint64_t x) { h = (h ^ x) * 1099511628211ULL; };
  for (const auto& s : r.sequences) {
    mix(s.size());
    for (token t : s) mix(static_cast<std::uint64_t>(t));
  }
  return h;
}

}  // namespace

TEST_CASE("a result holds K sequences, weights, per-step ESS, flags and increments that add up to log Zhat", "[sampler]") {
  small_problem p(true, 9, 4);
  random_twist twist(1, 1.0);
  twisted_smc smc(p.model, twist, p.potential,
                  smc_options{.particles = 16, .horizon = 4, .end_token = 2, .record_genealogy = true}, stratified{},
                  ess_below(0.6));
  default_engine rng(4);
  const smc_result r = smc.run(p.problem.prompt, rng);
  REQUIRE(r.sequences.size() == 16);
  REQUIRE(r.log_weights.size() == 16);
  REQUIRE(r.log_proposal.size() == 16);
  REQUIRE(r.steps >= 1);
  REQUIRE(r.ess.size() == r.steps);
  REQUIRE(r.resampled.size() == r.steps);
  REQUIRE(r.log_z_increments.size() == r.steps);
  REQUIRE(r.genealogy.size() == r.steps);
  double sum = 0.0;
  for (double inc : r.log_z_increments) sum += inc;
  REQUIRE(std::abs(sum - r.log_z) < 1e-12);
  double total = 0.0;
  for (double lw : r.normalized_log_weights) total += std::exp(lw);
  REQUIRE(total == Approx(1.0).epsilon(1e-12));
  for (std::size_t t = 0; t < r.steps; ++t) REQUIRE(r.genealogy[t].size() == (r.resampled[t] ? 16u : 0u));
  for (const auto& s : r.sequences) {
    REQUIRE(!s.empty());
    REQUIRE(s.size() <= 4);
    for (std::size_t i = 0; i + 1 < s.size(); ++i) REQUIRE(s[i] != 2);  // nothing after the end token
    if (s.size() < 4) REQUIRE(s.back() == 2);
  }
  REQUIRE(r.seconds.total() > 0.0);
  const token_sequence& drawn = r.draw(rng);
  REQUIRE(!drawn.empty());
}

TEST_CASE("finished particles cost the model nothing through the active-mask hook", "[sampler]") {
  masked_model model(3, 12, 1.0);
  random_potential potential(3);
  no_twist none;
  twisted_smc smc(model, none, potential, smc_options{.particles = 64, .horizon = 6, .end_token = 2}, multinomial{}, never);
  default_engine rng(2);
  const smc_result r = smc.run(std::vector<token>{0}, rng);
  std::size_t generated = 0;
  for (const auto& s : r.sequences) generated += s.size();
  // One row per generated token: finished particles are never asked about again.
  REQUIRE(model.rows_requested == generated);
  REQUIRE(generated < 64 * 6);
}

TEST_CASE("observers see every step and can stop a run", "[sampler]") {
  small_problem p(false, 2, 4);
  random_twist twist(2, 1.0);
  twisted_smc smc(p.model, twist, p.potential, p.options(8, proposal_type::twisted), systematic{}, always);
  struct recorder {
    std::vector<std::size_t> steps;
    std::size_t resamples = 0;
    bool finished = false;
    void on_step(const step_report& r) { steps.push_back(r.step); }
    void on_resample(std::size_t, std::span<const particle_index> a) { resamples += a.size() == 8 ? 1 : 0; }
    void on_finish(const smc_result&) { finished = true; }
  } rec;
  struct stopper {
    bool on_step(const step_report& r) const { return r.step == 2; }
  } stop;
  default_engine rng(3);
  const smc_result full = smc.run(p.problem.prompt, rng, rec);
  REQUIRE(rec.steps == std::vector<std::size_t>{1, 2, 3, 4});
  REQUIRE(rec.resamples == 3);  // never after the last step
  REQUIRE(rec.finished);
  REQUIRE(!full.stopped_by_observer);
  const smc_result stopped = smc.run(p.problem.prompt, rng, stop);
  REQUIRE(stopped.stopped_by_observer);
  REQUIRE(stopped.steps == 2);
  REQUIRE(stopped.sequences[0].size() == 2);
}

TEST_CASE("a user proposal model gives E[Zhat] = Z (Eq. 10)", "[sampler]") {
  small_problem p(true, 13);
  random_twist twist(4, 1.0);
  table_proposal q{tabular_model(3, 555, 1.5)};
  twisted_smc smc(p.model, twist, p.potential, p.options(4, proposal_type::twisted), residual{}, ess_below(0.5));
  default_engine rng(9);
  std::vector<double> ratio(3000);
  for (auto& x : ratio) x = std::exp(smc.run_with_proposal(q, p.problem.prompt, rng).log_z - p.solution.log_z());
  const mean_estimate est = mean_and_standard_error(ratio);
  REQUIRE(std::abs(est.mean - 1.0) < z_limit * est.standard_error);
  // Conditional runs with a user proposal keep the reference in slot 0.
  enumeration_sampler exact(p.solution);
  const token_sequence reference = exact.sample(rng);
  const smc_result c = smc.run_conditional_with_proposal(q, p.problem.prompt, reference, rng);
  REQUIRE(c.sequences[0] == reference);
}

TEST_CASE("conditional SMC keeps the reference in slot 0 whatever the weights", "[sampler]") {
  small_problem p(true, 15, 4);
  random_twist twist(8, 3.0);
  twisted_smc smc(p.model, twist, p.potential, p.options(16, proposal_type::twisted), killing{}, always);
  enumeration_sampler exact(p.solution);
  default_engine rng(10);
  for (int run = 0; run < 50; ++run) {
    const token_sequence reference = exact.sample(rng);
    REQUIRE(smc.run_conditional(p.problem.prompt, reference, rng).sequences[0] == reference);
  }
}

TEST_CASE("the stateless adapter runs exactly as the stateful model it wraps", "[sampler]") {
  small_problem p(true, 19);
  const tabular_model& tables = p.model;
  auto next = [&tables](std::span<const token> prompt, std::span<const token> prefix, std::span<double> out) {
    tables.next_log_probs(prompt, prefix, out);
  };
  stateless_model adapter(3, next);
  STATIC_REQUIRE(LanguageModel<stateless_model<decltype(next)>>);
  random_twist twist(6, 1.0);
  twisted_smc a(p.model, twist, p.potential, p.options(8, proposal_type::twisted), systematic{}, always);
  twisted_smc b(adapter, twist, p.potential, p.options(8, proposal_type::twisted), systematic{}, always);
  default_engine rng_a(12), rng_b(12);
  for (int run = 0; run < 5; ++run) {
    const smc_result ra = a.run(p.problem.prompt, rng_a);
    const smc_result rb = b.run(p.problem.prompt, rng_b);
    REQUIRE(ra.sequences == rb.sequences);
    REQUIRE(ra.log_z == rb.log_z);
  }
  REQUIRE_THROWS_WITH(adapter.append(std::vector<token>{1}),
                      Catch::Contains("tsmc::stateless_model::append: tokens.size() must equal the number of particles 8, got 1"));
  REQUIRE_THROWS_WITH(adapter.reorder(std::vector<particle_index>{0, 1}),
                      Catch::Contains("tsmc::stateless_model::reorder: ancestors.size() must equal the number of particles 8, got 2"));
  REQUIRE_THROWS_WITH(adapter.reorder(std::vector<particle_index>{0, 1, 2, 3, 4, 5, 6, 8}),
                      Catch::Contains("tsmc::stateless_model::reorder: ancestors[7] must be < 8, got 8"));
  // Any ancestor vector, not only slot-stable ones: a rotation of eight distinct prefixes
  // overwrites every source (copied in place, slot 7 would get slot 0's new prefix).
  adapter.start(p.problem.prompt, 8);
  adapter.append(std::vector<token>{0, 1, 2, 0, 1, 2, 0, 1});
  adapter.append(std::vector<token>{0, 0, 0, 1, 1, 1, 2, 2});
  const std::vector<token_sequence> before(adapter.prefixes().begin(), adapter.prefixes().end());
  adapter.reorder(std::vector<particle_index>{1, 2, 3, 4, 5, 6, 7, 0});
  for (std::size_t k = 0; k < 8; ++k) CHECK(adapter.prefixes()[k] == before[(k + 1) % 8]);
  tsmc::log_prob_matrix wrong(8, 2);
  REQUIRE_THROWS_WITH(adapter.log_probs(wrong),
                      Catch::Contains("tsmc::stateless_model::log_probs: out.cols() must equal vocab_size 3, got 2"));
}

TEST_CASE("results do not depend on the number of threads", "[sampler]") {
  // V * K large enough for the parallel particle loop.
  constexpr std::size_t vocab = 4096;
  auto next = [](std::span<const token> /*prompt*/, std::span<const token> prefix, std::span<double> out) {
    std::uint64_t h = 0x1234;
    for (token t : prefix) h = splitmix64_mix(h ^ static_cast<std::uint64_t>(t));
    default_engine e(h);
    for (double& x : out) x = standard_normal(e);
    const double lse = logsumexp(std::span<const double>(out.data(), out.size()));
    for (double& x : out) x -= lse;
  };
  stateless_model model(vocab, next);
  no_twist none;
  random_potential potential(1);
  twisted_smc smc(model, none, potential, smc_options{.particles = 32, .horizon = 3}, systematic{}, always);
  default_engine rng1(5), rng2(5);
#ifdef _OPENMP
  omp_set_num_threads(1);
#endif
  const smc_result one = smc.run(std::vector<token>{}, rng1);
#ifdef _OPENMP
  omp_set_num_threads(2);
#endif
  const smc_result two = smc.run(std::vector<token>{}, rng2);
  REQUIRE(one.sequences == two.sequences);
  REQUIRE(one.log_z == two.log_z);
}

TEST_CASE("golden digest: a fixed seed on a fixed problem gives recorded sequences and log Zhat", "[sampler]") {
  small_problem p(true, 23, 4);
  random_twist twist(7, 1.0);
  twisted_smc smc(p.model, twist, p.potential, p.options(12, proposal_type::twisted), systematic{}, ess_below(0.5));
  default_engine rng(2024);
  const smc_result r = smc.run(p.problem.prompt, rng);
  char text[64];
  std::snprintf(text, sizeof text, "%.12f", r.log_z);
  INFO("digest " << digest(r) << ", log Zhat " << text);
  CHECK(digest(r) == GOLDEN_DIGEST);
  CHECK(std::string(text) == GOLDEN_LOG_Z);
}

TEST_CASE("a potential that is zero everywhere gives log Zhat = -inf without NaN or exception", "[sampler]") {
  small_problem p(false);
  zero_potential zero;
  no_twist none;
  twisted_smc smc(p.model, none, zero, p.options(8, proposal_type::base), multinomial{}, always);
  default_engine rng(1);
  const smc_result r = smc.run(p.problem.prompt, rng);
  REQUIRE(r.log_z == -std::numeric_limits<double>::infinity());
  REQUIRE(r.ess.back() == 0.0);
  REQUIRE_THROWS_AS(r.draw(rng), tsmc::runtime_error);
}

TEST_CASE("bad input gets a clear tsmc exception", "[sampler]") {
  small_problem p(true);
  no_twist none;
  default_engine rng(1);
  using Catch::Contains;
  REQUIRE_THROWS_WITH(twisted_smc(p.model, none, p.potential, smc_options{.particles = 0, .horizon = 3}),
                      Contains("tsmc::twisted_smc: options.particles must be positive, got 0"));
  REQUIRE_THROWS_WITH(twisted_smc(p.model, none, p.potential, smc_options{.particles = 2, .horizon = 0}),
                      Contains("tsmc::twisted_smc: options.horizon must be positive, got 0"));
  REQUIRE_THROWS_WITH(twisted_smc(p.model, none, p.potential, smc_options{.particles = 2, .horizon = 2, .end_token = 3}),
                      Contains("options.end_token must be in [0, 3), got 3"));
  poisoned_twist wrong_vocab{0, 0.0, 5};
  REQUIRE_THROWS_WITH(twisted_smc(p.model, wrong_vocab, p.potential, smc_options{.particles = 2, .horizon = 2}),
                      Contains("twist.vocab_size() must equal model.vocab_size() 3, got 5"));

  SECTION("a prompt longer than the model accepts") {
    limited_model model(3, 1, 1.0);
    twisted_smc smc(model, none, p.potential, smc_options{.particles = 2, .horizon = 3});
    REQUIRE_THROWS_WITH(smc.run(std::vector<token>{0, 1}, rng),
                        Contains("tsmc::twisted_smc::run: prompt.size() + horizon must not exceed model.max_length() 4, got 5"));
    REQUIRE_NOTHROW(smc.run(std::vector<token>{0}, rng));
  }
  SECTION("a prompt token outside the vocabulary") {
    twisted_smc smc(p.model, none, p.potential, smc_options{.particles = 2, .horizon = 3});
    REQUIRE_THROWS_WITH(smc.run(std::vector<token>{0, 9}, rng), Contains("prompt[1] must be in [0, 3), got 9"));
  }
  SECTION("NaN or +inf from the model") {
    for (double poison : {std::nan(""), std::numeric_limits<double>::infinity()}) {
      poisoned_model model{tabular_model(3, 1, 1.0), 2, poison};
      twisted_smc smc(model, none, p.potential, smc_options{.particles = 4, .horizon = 3});
      REQUIRE_THROWS_WITH(smc.run(std::vector<token>{0}, rng),
                          Contains("tsmc::twisted_smc::run: the model's log p0 at step 2, particle 0, token 1 must not be NaN or +inf"));
    }
  }
  SECTION("a model row with no possible token, for both proposals, and a proposal row with none") {
    for (proposal_type proposal : {proposal_type::base, proposal_type::twisted}) {
      dead_end_model model{tabular_model(3, 1, 1.0), 2};
      twisted_smc smc(model, none, p.potential, smc_options{.particles = 4, .horizon = 3, .proposal = proposal});
      REQUIRE_THROWS_WITH(smc.run(std::vector<token>{0}, rng),
                          Contains("tsmc::twisted_smc::run: the model's log p0 at step 2, particle 0 must not be -inf for every token"));
    }
    twisted_smc smc(p.model, none, p.potential, smc_options{.particles = 4, .horizon = 3});
    dead_end_proposal q;
    REQUIRE_THROWS_WITH(smc.run_with_proposal(q, std::vector<token>{0}, rng),
                        Contains("the proposal's log q at step 1, particle 0 must not be -inf for every token"));
  }
  SECTION("NaN or +inf from the twist (twisted proposal: the whole row enters the normaliser)") {
    for (double poison : {std::nan(""), std::numeric_limits<double>::infinity()}) {
      poisoned_twist twist{2, poison};
      twisted_smc smc(p.model, twist, p.potential, smc_options{.particles = 4, .horizon = 3});
      REQUIRE_THROWS_WITH(smc.run(std::vector<token>{0}, rng),
                          Contains("the twist's log psi at step 2, particle 0, token 0 must not be NaN or +inf"));
    }
  }
  SECTION("a bad reference for conditional SMC") {
    twisted_smc smc(p.model, none, p.potential, p.options(4, proposal_type::twisted));
    REQUIRE_THROWS_WITH(smc.run_conditional(p.problem.prompt, std::vector<token>{0, 1, 0, 1}, rng),
                        Contains("tsmc::twisted_smc::run_conditional: reference.size() must be in [1, horizon = 3], got 4"));
    REQUIRE_THROWS_WITH(smc.run_conditional(p.problem.prompt, std::vector<token>{0, 7, 1}, rng),
                        Contains("reference[1] must be in [0, 3), got 7"));
    REQUIRE_THROWS_WITH(smc.run_conditional(p.problem.prompt, std::vector<token>{0, 1}, rng),
                        Contains("reference shorter than the horizon must end with the end token"));
    REQUIRE_THROWS_WITH(smc.run_conditional(p.problem.prompt, std::vector<token>{2, 1, 0}, rng),
                        Contains("reference[0] must not be the end token before the reference's last position, got 2"));
    REQUIRE_NOTHROW(smc.run_conditional(p.problem.prompt, std::vector<token>{0, 2}, rng));
  }
}
