// [reliability] Tests that close the gaps a mutation run of the resampling schemes, the sampler's
// bookkeeping and the random helpers found (issue 19, item 7): each test here fails for a slip
// that the rest of the suite let through.

#include "smc/sampler_fixtures.hpp"

#include <tsmc/core/random.hpp>
#include <tsmc/resampling/resampler.hpp>
#include <tsmc/resampling/schemes.hpp>
#include <tsmc/smc/result.hpp>
#include <tsmc/smc/sampler.hpp>
#include <tsmc/smc/stateless_model.hpp>
#include <tsmc/testing/toy_potentials.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <stdexcept>
#include <vector>

namespace {

using tsmc::particle_index;
constexpr double inf = std::numeric_limits<double>::infinity();

// An engine that returns a scripted sequence of 64-bit words, then repeats the last (a thousand
// times at most, then throws: a slip that loops on rejection fails instead of hanging); counts use.
struct scripted_engine {
  using result_type = std::uint64_t;
  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return ~result_type{0}; }
  std::vector<result_type> words;
  std::size_t used = 0;
  result_type operator()() {
    if (used >= words.size() + 1000) throw std::runtime_error("scripted_engine: script exhausted");
    const result_type w = words[std::min(used, words.size() - 1)];
    ++used;
    return w;
  }
};

}  // namespace

TEST_CASE("stratified and systematic differ on w = (1/4, 1/2, 1/4), n = 2", "[reliability]") {
  // Cells [0, 1/2), [1/2, 3/2), [3/2, 2). Systematic's points u, u + 1 always put exactly one in
  // the middle cell; stratified's independent u_1, 1 + u_2 give it 0, 1 or 2 with probabilities
  // 1/4, 1/2, 1/4. A stratified pass with one offset for all strata is systematic.
  const std::vector<double> w{0.25, 0.5, 0.25};
  std::vector<particle_index> counts(3);
  tsmc::default_engine rng(19);
  tsmc::systematic sys;
  tsmc::stratified strat;
  constexpr int draws = 400;
  int sys_other = 0, strat_other = 0;
  for (int i = 0; i < draws; ++i) {
    sys.offspring(w, 2, counts, rng);
    sys_other += counts[1] != 1;
    strat.offspring(w, 2, counts, rng);
    strat_other += counts[1] != 1;
  }
  CHECK(sys_other == 0);
  // Binomial(400, 1/2): mean 200, sd 10; [140, 260] misses with probability below 1e-8.
  CHECK(strat_other >= 140);
  CHECK(strat_other <= 260);
}

TEMPLATE_TEST_CASE("conditional SMC draws its free slots multinomially whatever the scheme", "[reliability]",
                   tsmc::systematic, tsmc::stratified, tsmc::ssp, tsmc::residual) {
  // The conditional run of a sampler with scheme S must be the conditional run of a sampler with
  // multinomial, draw for draw: only multinomial gives the exact conditional kernel.
  using namespace tsmc_test;
  small_problem p(true, 11, 4);
  random_twist twist(3, 1.0);
  const smc_options options{.particles = 8, .horizon = 4, .end_token = 2};
  // A reference with positive target mass.
  const auto sequences = p.solution.sequences();
  const auto log_sigma = p.solution.log_sigma();
  const auto best = static_cast<std::size_t>(std::max_element(log_sigma.begin(), log_sigma.end()) - log_sigma.begin());
  const token_sequence reference = sequences[best];
  twisted_smc<tabular_model, random_twist, random_potential, TestType> with_scheme(p.model, twist, p.potential,
                                                                                   options, TestType{});
  twisted_smc<tabular_model, random_twist, random_potential, multinomial> with_multinomial(p.model, twist, p.potential,
                                                                                           options, multinomial{});
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    default_engine a(seed), b(seed);
    const smc_result x = with_scheme.run_conditional(p.problem.prompt, reference, a);
    const smc_result y = with_multinomial.run_conditional(p.problem.prompt, reference, b);
    INFO("seed " << seed);
    CHECK(x.log_z == y.log_z);
    CHECK(x.sequences == y.sequences);
    CHECK(x.log_weights == y.log_weights);
  }
  // ...while the plain runs of the two samplers differ (the scheme is in use there).
  int differ = 0;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    default_engine a(seed), b(seed);
    differ += with_scheme.run(p.problem.prompt, a).sequences != with_multinomial.run(p.problem.prompt, b).sequences;
  }
  CHECK(differ > 0);
}

TEST_CASE("a point left over by rounding goes to the last positive weight, never to a zero one", "[reliability]") {
  // w_0 = 1 - 2^-52 sums to 1 within rounding, so the pass uses scale n = 1 and the last boundary
  // is x = 1 - 2^-52; an offset v = 2^-54 (every bit 0) puts the point above it. The point is
  // owed to w_0; w_1 = 0 must not get it.
  const std::vector<double> w{1.0 - 0x1.0p-52, 0.0};
  std::vector<particle_index> counts(2);
  scripted_engine zeros{{0}};
  tsmc::systematic sys;
  sys.offspring(w, 1, counts, zeros);
  CHECK(counts == std::vector<particle_index>{1, 0});
  tsmc::stratified strat;
  scripted_engine zeros2{{0}};
  strat.offspring(w, 1, counts, zeros2);
  CHECK(counts == std::vector<particle_index>{1, 0});
  // The same with zeros inside and several trailing zeros, n = 3.
  const std::vector<double> w5{0.5, 0.0, 0.5 - 0x1.0p-52, 0.0, 0.0};
  std::vector<particle_index> c5(5);
  scripted_engine zeros3{{0}};
  sys.offspring(w5, 3, c5, zeros3);
  CHECK(c5[1] == 0);
  CHECK(c5[3] == 0);
  CHECK(c5[4] == 0);
  CHECK(c5[0] + c5[2] == 3);
  // And through a whole resampler, for every scheme, over many random weights with zeros.
  tsmc::default_engine rng(5);
  tsmc::resampler<tsmc::systematic> r_sys;
  tsmc::resampler<tsmc::stratified> r_strat;
  tsmc::resampler<tsmc::multinomial> r_multi;
  tsmc::resampler<tsmc::ssp> r_ssp;
  tsmc::resampler<tsmc::residual> r_res;
  std::vector<double> log_w(7);
  std::vector<particle_index> anc(7);
  int zero_picked = 0;
  for (int i = 0; i < 2000; ++i) {
    for (double& l : log_w) l = 3.0 * tsmc::standard_normal(rng);
    log_w[6] = -inf;
    log_w[i % 6] = -inf;
    const auto check = [&](auto& r) {
      r.resample(log_w, anc, rng);
      for (const particle_index a : anc) zero_picked += a == 6 || a == static_cast<particle_index>(i % 6);
    };
    check(r_sys);
    check(r_strat);
    check(r_multi);
    check(r_ssp);
    check(r_res);
  }
  CHECK(zero_picked == 0);
}

TEST_CASE("multinomial merge: a point exactly on a boundary belongs to the next cell", "[reliability]") {
  // Points T = 1, 2, 3 (T_4 = 4) and weights 1/4 each: boundaries x_i = 4 C_i = 1, 2, 3 fall on
  // the points. A uniform equal to C_i lies in cell i + 1 ([C_i, C_{i+1})), so r_i counts the
  // points strictly below x_i: r = 0, 1, 2 and counts (0, 1, 1, 1). With <= they would be
  // (1, 1, 1, 0).
  std::vector<double> points{1.0, 2.0, 3.0, inf, inf, inf, inf};
  constexpr std::size_t n = 3;
  const double t = 4.0;
  const auto cells = static_cast<std::size_t>(t) + 2;
  std::vector<std::uint32_t> guide(cells + 8);
  tsmc::detail::fill_guide(points.data(), n, guide.data(), cells);
  const tsmc::detail::spacings s{points.data(), guide.data(), t, static_cast<double>(cells - 1)};
  const std::vector<double> w{0.25, 0.25, 0.25, 0.25};
  const std::vector<particle_index> expected{0, 1, 1, 1};
  {
    std::vector<particle_index> counts(4, 9);
    const auto m = tsmc::detail::spacings_merge<false, false>(w.data(), 3, t, s, counts.data());
    tsmc::detail::finish_multinomial<false>(3, 4, n, m.below, counts.data());
    CHECK(counts == expected);
  }
  if constexpr (tsmc::detail::sse2_merge_available) {
    std::vector<particle_index> counts(4, 9);
    const auto m = tsmc::detail::spacings_merge<false, true>(w.data(), 3, t, s, counts.data());
    tsmc::detail::finish_multinomial<false>(3, 4, n, m.below, counts.data());
    CHECK(counts == expected);
  }
  // Four points on one boundary (the walk past the four compared ones): T = 1, 1, 1, 1, 1, 2.
  std::vector<double> crowd{1.0, 1.0, 1.0, 1.0, 1.0, 2.0, inf, inf, inf, inf};
  constexpr std::size_t n6 = 6;
  const double t6 = 3.0;
  const auto cells6 = static_cast<std::size_t>(t6) + 2;
  std::vector<std::uint32_t> guide6(cells6 + 8);
  tsmc::detail::fill_guide(crowd.data(), n6, guide6.data(), cells6);
  const tsmc::detail::spacings s6{crowd.data(), guide6.data(), t6, static_cast<double>(cells6 - 1)};
  const std::vector<double> w3{1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0};  // x = 1, 2 (up to rounding of 3 * 1/3)
  for (const bool vector : {false, true}) {
    std::vector<particle_index> counts(3, 9);
    // Scale chosen so that x_0 = 1 exactly: factor 3 on C_0 = 1/3 rounds to 1.
    REQUIRE(w3[0] * t6 == 1.0);
    const auto m = vector && tsmc::detail::sse2_merge_available
                       ? tsmc::detail::spacings_merge<false, true>(w3.data(), 2, t6, s6, counts.data())
                       : tsmc::detail::spacings_merge<false, false>(w3.data(), 2, t6, s6, counts.data());
    tsmc::detail::finish_multinomial<false>(2, 3, n6, m.below, counts.data());
    INFO("vector " << vector);
    CHECK(counts[0] == 0);
    CHECK(counts[0] + counts[1] + counts[2] == n6);
  }
}

TEST_CASE("draw_index: boundaries, zero weights and the rounding fallback", "[reliability]") {
  tsmc::smc_result r;
  r.log_weights = {std::log(0.5), std::log(0.5)};
  // uniform01 = (bits >> 11) 2^-53: bits 2^63 give exactly 1/2, which lies in [1/2, 1): index 1.
  scripted_engine half{{std::uint64_t{1} << 63}};
  CHECK(r.draw_index(half) == 1);
  scripted_engine zero{{0}};
  CHECK(r.draw_index(zero) == 0);
  // A zero weight first: target 0 lies in [0, 0)? no; it lies in particle 1's [0, 1).
  r.log_weights = {-inf, 0.0};
  scripted_engine zero2{{0}};
  CHECK(r.draw_index(zero2) == 1);
  // Unnormalised weights (e, e, 2e): cumulative 1/4, 1/2, 1.
  r.log_weights = {1.0, 1.0, 1.0 + std::log(2.0)};
  const std::vector<std::pair<std::uint64_t, std::size_t>> cases{
      {0, 0}, {std::uint64_t{1} << 62, 1}, {(std::uint64_t{1} << 62) - 2048, 0}, {std::uint64_t{1} << 63, 2}, {~std::uint64_t{0}, 2}};
  for (const auto& [bits, index] : cases) {
    scripted_engine e{{bits}};
    INFO("bits " << bits);
    CHECK(r.draw_index(e) == index);
  }
  // The rounding fallback: normalised weights whose cumulative sum stays below the largest
  // target 1 - 2^-53, followed by zero weights, must give the last positive one.
  tsmc::default_engine rng(8);
  int fallbacks = 0, wrong = 0;
  for (int i = 0; i < 20000 && fallbacks < 20; ++i) {
    std::vector<double> lw(6);
    for (double& l : lw) l = tsmc::standard_normal(rng);
    lw[4] = -inf;
    lw[5] = -inf;
    const double lse = tsmc::logsumexp(std::span<const double>(lw));
    double c = 0.0;
    for (const double l : lw) c += std::exp(l - lse);
    if (!(c <= 1.0 - 0x1.0p-53)) continue;
    ++fallbacks;
    r.log_weights = lw;
    scripted_engine top{{~std::uint64_t{0}}};
    wrong += r.draw_index(top) != 3;
  }
  REQUIRE(fallbacks > 0);
  CHECK(wrong == 0);
}

TEST_CASE("uniform_index: the rejection threshold is exactly 2^64 mod n", "[reliability]") {
  // n = 3: 2^64 mod 3 = 1, so only a low word of 0 is rejected. x = (2^64 + 2) / 3 gives
  // x * 3 = 2^64 + 2: high word 1, low word 2 (kept); x = 0xAAAAAAAAAAAAAAAB gives low word 1
  // (= the threshold: kept); x = 0 gives low word 0 (rejected).
  scripted_engine a{{0xAAAAAAAAAAAAAAABULL, 0}};
  CHECK(tsmc::uniform_index(a, 3) == 2);
  CHECK(a.used == 1);
  scripted_engine b{{0, 0x5555555555555556ULL}};
  CHECK(tsmc::uniform_index(b, 3) == 1);
  CHECK(b.used == 2);
  // n = 2^63 + 1: threshold 2^63 - 1. x = 1: low word n > threshold, kept (index 0).
  constexpr std::uint64_t big = (std::uint64_t{1} << 63) + 1;
  scripted_engine c{{1}};
  CHECK(tsmc::uniform_index(c, big) == 0);
  CHECK(c.used == 1);
  // x = 2: low word 2n mod 2^64 = 2 < threshold, rejected; then x = 1 is kept.
  scripted_engine d{{2, 1}};
  CHECK(tsmc::uniform_index(d, big) == 0);
  CHECK(d.used == 2);
  // Powers of two never reject: threshold 0.
  scripted_engine e{{0, 7}};
  CHECK(tsmc::uniform_index(e, 8) == 0);
  CHECK(e.used == 1);
}

namespace {

// log q(s) of every enumerated sequence for next-token rows given by `row(prefix, out)`.
template <class Row>
std::map<tsmc::token_sequence, double> log_q_table(const tsmc::testing::exact_solution& solution, Row row) {
  const auto q = [&](std::span<const tsmc::token> prompt, std::span<const tsmc::token> prefix, std::span<double> out) {
    (void)prompt;
    row(prefix, out);
  };
  const std::vector<double> values = solution.log_q_of_sequences(q);
  std::map<tsmc::token_sequence, double> table;
  for (std::size_t i = 0; i < values.size(); ++i) table[solution.sequences()[i]] = values[i];
  return table;
}

}  // namespace

TEST_CASE("log_proposal is log q(s) for the base, twisted and user proposals, through resampling", "[reliability]") {
  using namespace tsmc_test;
  small_problem p(true, 21, 4);
  const std::size_t V = 3;
  random_twist twist(4, 1.5);
  hide_next_token_form<random_potential> hidden(p.potential);
  std::vector<double> l(V);
  const auto lse_of = [](std::span<const double> v) { return tsmc::logsumexp(v); };
  // Base: q = p0.
  const auto base = log_q_table(p.solution, [&](std::span<const token> prefix, std::span<double> out) {
    p.solution.log_p0_next(prefix, out);
  });
  // Twisted, twist everywhere (potential hidden): q_t(v) = p0(v) psi(prefix, v) / normaliser.
  const auto twisted = log_q_table(p.solution, [&](std::span<const token> prefix, std::span<double> out) {
    p.solution.log_p0_next(prefix, out);
    token_sequence next(prefix.begin(), prefix.end());
    next.push_back(0);
    for (std::size_t v = 0; v < V; ++v) {
      next.back() = static_cast<token>(v);
      out[v] += twist.log_value(next);
    }
    const double z = lse_of(out);
    for (double& x : out) x -= z;
  });
  // Twisted with the potential's next-token form at the last step: psi_T = phi.
  const auto twisted_phi = log_q_table(p.solution, [&](std::span<const token> prefix, std::span<double> out) {
    p.solution.log_p0_next(prefix, out);
    token_sequence next(prefix.begin(), prefix.end());
    next.push_back(0);
    const bool last = prefix.size() + 1 == p.problem.horizon;
    for (std::size_t v = 0; v < V; ++v) {
      next.back() = static_cast<token>(v);
      out[v] += last ? p.potential.log_value(next) : twist.log_value(next);
    }
    const double z = lse_of(out);
    for (double& x : out) x -= z;
  });
  for (const bool resample : {false, true}) {
    const smc_options options{.particles = 32, .horizon = 4, .end_token = 2};
    const smc_options base_options{.particles = 32, .horizon = 4, .proposal = proposal_type::base, .end_token = 2};
    default_engine rng(resample ? 2 : 3);
    const auto check_all = [&](const smc_result& r, const std::map<token_sequence, double>& expected) {
      REQUIRE(r.log_proposal.size() == r.sequences.size());
      double worst = 0.0;
      for (std::size_t k = 0; k < r.sequences.size(); ++k)
        worst = std::max(worst, std::abs(r.log_proposal[k] - expected.at(r.sequences[k])));
      CHECK(worst < 1e-9);
    };
    INFO("resample " << resample);
    if (resample) {
      twisted_smc b(p.model, twist, p.potential, base_options, multinomial{});
      check_all(b.run(p.problem.prompt, rng), base);
      twisted_smc tw(p.model, twist, hidden, options, multinomial{});
      check_all(tw.run(p.problem.prompt, rng), twisted);
      twisted_smc tp(p.model, twist, p.potential, options, multinomial{});
      check_all(tp.run(p.problem.prompt, rng), twisted_phi);
    } else {
      twisted_smc b(p.model, twist, p.potential, base_options, multinomial{}, never);
      check_all(b.run(p.problem.prompt, rng), base);
      twisted_smc tw(p.model, twist, hidden, options, multinomial{}, never);
      check_all(tw.run(p.problem.prompt, rng), twisted);
      twisted_smc tp(p.model, twist, p.potential, options, multinomial{}, never);
      check_all(tp.run(p.problem.prompt, rng), twisted_phi);
    }
  }
}

TEST_CASE("log_proposal of a user proposal is normalised by the sampler", "[reliability]") {
  // The proposal writes unnormalised rows (log q + 0.7 + the step): log_proposal must still be
  // the log-density of the normalised q, and the weights p0 phi / q.
  using namespace tsmc_test;
  small_problem p(true, 23, 4);
  tabular_model tables(3, 99, 1.0);
  struct shifted_proposal {
    tabular_model* tables;
    std::vector<double> row = std::vector<double>(3);
    void log_proposal(const step_context<tabular_model>& ctx, log_prob_ref out) {
      for (std::size_t k = 0; k < ctx.prefixes.size(); ++k) {
        tables->next_log_probs(ctx.prompt, ctx.prefixes[k], row);
        for (std::size_t v = 0; v < 3; ++v)
          out(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(v)) = row[v] + 0.7 + static_cast<double>(ctx.step);
      }
    }
  } proposal{&tables};
  const auto expected = log_q_table(p.solution, [&](std::span<const token> prefix, std::span<double> out) {
    tables.next_log_probs(p.problem.prompt, prefix, out);
  });
  no_twist none;
  twisted_smc smc(p.model, none, p.potential, smc_options{.particles = 32, .horizon = 4, .end_token = 2},
                  multinomial{}, never);
  default_engine rng(6);
  const smc_result r = smc.run_with_proposal(proposal, p.problem.prompt, rng);
  double worst_q = 0.0, worst_w = 0.0;
  for (std::size_t k = 0; k < r.sequences.size(); ++k) {
    const double log_q = expected.at(r.sequences[k]);
    worst_q = std::max(worst_q, std::abs(r.log_proposal[k] - log_q));
    const double log_w = p.solution.log_p0(r.sequences[k]) + p.potential.log_value(r.sequences[k]) - log_q;
    worst_w = std::max(worst_w, std::abs(r.log_weights[k] - log_w));
  }
  CHECK(worst_q < 1e-9);
  CHECK(worst_w < 1e-9);
}

TEST_CASE("log_proposal of the base proposal normalises a model's rows", "[reliability]") {
  // A model whose rows are log p + 0.3 (not normalised; the sampler draws from p, their
  // normalisation): log q(s) must be sum_t log p(s_t), not sum_t (log p(s_t) + 0.3).
  using namespace tsmc_test;
  const std::vector<double> p{0.2, 0.5, 0.3};
  stateless_model model(3, [&p](std::span<const token>, std::span<const token>, std::span<double> out) {
    for (std::size_t v = 0; v < 3; ++v) out[v] = std::log(p[v]) + 0.3;
  });
  random_potential potential(2, 1.0);
  no_twist none;
  twisted_smc smc(model, none, potential,
                  smc_options{.particles = 16, .horizon = 4, .proposal = proposal_type::base, .end_token = 2,
                              .check_first_row = false},  // deliberately unnormalised rows
                  multinomial{}, never);
  default_engine rng(9);
  const smc_result r = smc.run(token_sequence{0}, rng);
  double worst = 0.0;
  for (std::size_t k = 0; k < r.sequences.size(); ++k) {
    double log_q = 0.0;
    for (const token t : r.sequences[k]) log_q += std::log(p[static_cast<std::size_t>(t)]);
    worst = std::max(worst, std::abs(r.log_proposal[k] - log_q));
  }
  CHECK(worst < 1e-12);
}

namespace {
// log psi = -inf for every candidate at step 2 after a first token 0, 0 otherwise.
struct dead_end_twist {
  template <class M>
  void log_twist(const tsmc::step_context<M>& ctx, tsmc::log_prob_ref out) const {
    out.setZero();
    if (ctx.step != 2) return;
    for (std::size_t k = 0; k < ctx.prefixes.size(); ++k)
      if (!ctx.prefixes[k].empty() && ctx.prefixes[k][0] == 0) out.row(static_cast<Eigen::Index>(k)).setConstant(-inf);
  }
};
struct unit_potential_only {
  void log_potential(std::span<const tsmc::token_sequence> s, std::span<double> out) const {
    for (std::size_t k = 0; k < s.size(); ++k) out[k] = 0.0;
  }
};
}  // namespace

TEST_CASE("log_proposal where psi = 0 for every candidate is log p0 of the token", "[reliability]") {
  // The twisted proposal is undefined where psi_t = 0 for every candidate; the token then comes
  // from p0 (normalised: the rows here are log p + 0.3), and so does its log q.
  using namespace tsmc_test;
  const std::vector<double> p{0.2, 0.5, 0.3};
  stateless_model model(3, [&p](std::span<const token>, std::span<const token>, std::span<double> out) {
    for (std::size_t v = 0; v < 3; ++v) out[v] = std::log(p[v]) + 0.3;
  });
  unit_potential_only potential;
  dead_end_twist twist;
  twisted_smc smc(model, twist, potential, smc_options{.particles = 32, .horizon = 3, .check_first_row = false},
                  multinomial{}, never);  // deliberately unnormalised rows
  default_engine rng(10);
  const smc_result r = smc.run(token_sequence{0}, rng);
  double worst = 0.0;
  int dead = 0;
  for (std::size_t k = 0; k < r.sequences.size(); ++k) {
    double log_q = 0.0;
    for (const token t : r.sequences[k]) log_q += std::log(p[static_cast<std::size_t>(t)]);
    worst = std::max(worst, std::abs(r.log_proposal[k] - log_q));
    dead += r.sequences[k][0] == 0;
  }
  REQUIRE(dead > 0);
  CHECK(worst < 1e-12);
}
