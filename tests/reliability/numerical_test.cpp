// [reliability] Numerical robustness (issue 19, item 4): extreme potentials and twists,
// degenerate sizes, long horizons, a dominant particle and a million particles; no NaN, no
// overflow, and the estimates still right on toy problems.

#include "smc/sampler_fixtures.hpp"

#include <tsmc/core/error.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/core/statistics.hpp>
#include <tsmc/resampling/resampler.hpp>
#include <tsmc/resampling/schemes.hpp>
#include <tsmc/smc/stateless_model.hpp>
#include <tsmc/testing/enumeration.hpp>
#include <tsmc/testing/toy_potentials.hpp>
#include <tsmc/twists/no_twist.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace {

using namespace tsmc_test;
constexpr double inf = std::numeric_limits<double>::infinity();

// log phi = `value` for every sequence.
struct constant_potential {
  double value = 0.0;
  void log_potential(std::span<const token_sequence> s, std::span<double> out) const {
    for (std::size_t k = 0; k < s.size(); ++k) out[k] = value;
  }
};

// log phi = `low` if the sequence holds token 0, else `high`.
struct two_level_potential {
  double low = 0.0, high = 0.0;
  [[nodiscard]] double log_value(std::span<const token> s) const {
    for (const token t : s)
      if (t == 0) return low;
    return high;
  }
  void log_potential(std::span<const token_sequence> s, std::span<double> out) const {
    for (std::size_t k = 0; k < s.size(); ++k) out[k] = log_value(s[k]);
  }
};

// log psi(prefix + v) = +80 or -80, by a hash of the candidate prefix.
struct pm80_twist {
  template <class M>
  void log_twist(const step_context<M>& ctx, log_prob_ref out) const {
    for (std::size_t k = 0; k < ctx.prefixes.size(); ++k) {
      std::uint64_t h = 1469598103934665603ULL;
      for (const token t : ctx.prefixes[k]) h = (h ^ static_cast<std::uint64_t>(t)) * 1099511628211ULL;
      for (Eigen::Index v = 0; v < out.cols(); ++v) {
        const std::uint64_t g = tsmc::splitmix64_mix(h ^ static_cast<std::uint64_t>(v));
        out(static_cast<Eigen::Index>(k), v) = (g & 1) ? 80.0 : -80.0;
      }
    }
  }
};

bool no_nan(const smc_result& r) {
  if (std::isnan(r.log_z)) return false;
  for (const double w : r.log_weights)
    if (std::isnan(w) || w == inf) return false;
  for (const double e : r.ess)
    if (std::isnan(e)) return false;
  return true;
}

}  // namespace

TEST_CASE("potentials of 1e-300 and log phi = -1e30", "[reliability]") {
  small_problem p(false, 31, 3);  // no end token: every particle finishes at T, with weight phi
  no_twist none;
  for (const double c : {std::log(1e-300), -1e30, -1e300}) {
    constant_potential phi{c};
    twisted_smc smc(p.model, none, phi, p.options(8, proposal_type::base), systematic{}, ess_below(0.5));
    default_engine rng(1);
    const smc_result r = smc.run(p.problem.prompt, rng);
    INFO("log phi " << c << ": log Zhat " << r.log_z);
    CHECK(no_nan(r));
    CHECK(r.log_z == Approx(c).epsilon(1e-12));  // every weight is phi: log Zhat = log Z = c
  }
  // Mixed: phi = 1e-300 without token 0, exp(-1e30) with it. log Z = log P(no 0) + log 1e-300.
  two_level_potential phi{-1e30, std::log(1e-300)};
  const exact_solution solution = enumerate(p.problem, p.model, phi);
  CHECK(std::isfinite(solution.log_z()));
  twisted_smc smc(p.model, none, phi, p.options(8192, proposal_type::base), systematic{}, ess_below(0.5));
  default_engine rng(2);
  const smc_result r = smc.run(p.problem.prompt, rng);
  CHECK(no_nan(r));
  INFO("log Zhat " << r.log_z << ", log Z " << solution.log_z());
  CHECK(std::abs(r.log_z - solution.log_z()) < 0.15);  // relative sd of Zhat below 0.02 at K = 8192
}

TEST_CASE("twists of +-80 in log space telescope exactly", "[reliability]") {
  small_problem p(true, 33, 4);
  pm80_twist twist;
  hide_next_token_form<random_potential> potential(p.potential);
  twisted_smc smc(p.model, twist, potential, p.options(1, proposal_type::twisted));
  const auto sequences = p.solution.sequences();
  const std::vector<token_sequence> all(sequences.begin(), sequences.end());
  default_engine rng(3);
  const smc_result r = smc.run_forced(p.problem.prompt, all, rng);
  REQUIRE(r.log_weights.size() == all.size());
  double worst = 0.0;
  for (std::size_t i = 0; i < all.size(); ++i) {
    // w(s) q(s) = p0(s) phi(s): the +-80 twists cancel.
    const double lhs = r.log_weights[i] + r.log_proposal[i];
    const double rhs = p.solution.log_p0(all[i]) + p.potential.log_value(all[i]);
    worst = std::max(worst, std::abs(lhs - rhs));
  }
  CHECK(worst < 1e-9);
  // And SMC runs with these twists: no NaN, log Zhat finite.
  twisted_smc run(p.model, twist, potential, p.options(64, proposal_type::twisted), multinomial{}, ess_below(0.5));
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    default_engine e(seed);
    const smc_result x = run.run(p.problem.prompt, e);
    CHECK(no_nan(x));
    CHECK(std::isfinite(x.log_z));
  }
}

TEST_CASE("V = 1, K = 1 and horizon 1", "[reliability]") {
  no_twist none;
  random_potential potential(4, 1.0);
  {
    tabular_model one(1, 5, 1.0);  // V = 1: the only sequence is 0 0 0
    twisted_smc smc(one, none, potential, smc_options{.particles = 5, .horizon = 3});
    default_engine rng(1);
    const smc_result r = smc.run(token_sequence{0}, rng);
    CHECK(no_nan(r));
    CHECK(r.log_z == Approx(potential.log_value(token_sequence{0, 0, 0})).epsilon(1e-12));
    CHECK(r.ess.back() == Approx(5.0));
  }
  {
    small_problem p(true, 35, 3);
    twisted_smc smc(p.model, none, p.potential, p.options(1, proposal_type::base));
    default_engine rng(2);
    const smc_result r = smc.run(p.problem.prompt, rng);
    CHECK(no_nan(r));
    REQUIRE(r.sequences.size() == 1);
    CHECK(r.log_z == Approx(p.potential.log_value(r.sequences[0])).epsilon(1e-12));  // base, K = 1: Zhat = phi
    CHECK(r.draw_index(rng) == 0);
  }
  {
    small_problem p(true, 37, 1);  // horizon 1: sigma is p0(v) phi(v) / Z over three sequences
    random_twist twist(8, 1.0);
    twisted_smc smc(p.model, twist, p.potential, p.options(3, proposal_type::twisted));
    default_engine rng(3);
    const smc_result r = smc.run(p.problem.prompt, rng);
    CHECK(no_nan(r));
    // With the potential's next-token form, the twisted proposal at T = 1 is sigma: exact.
    CHECK(r.log_z == Approx(p.solution.log_z()).epsilon(1e-12));
  }
}

TEST_CASE("a horizon of 1000", "[reliability]") {
  tabular_model model(2, 9, 0.5);
  constant_potential phi{0.0};
  random_twist twist(10, 1.0);
  twisted_smc smc(model, twist, phi, smc_options{.particles = 4, .horizon = 1000}, systematic{}, ess_below(0.5));
  default_engine rng(4);
  const smc_result r = smc.run(token_sequence{0}, rng);
  CHECK(no_nan(r));
  CHECK(r.steps == 1000);
  CHECK(std::isfinite(r.log_z));
  for (const auto& s : r.sequences) CHECK(s.size() == 1000);
  // The base proposal with phi = 1: every weight is 1 whatever the length, log Zhat = 0.
  no_twist none;
  twisted_smc base(model, none, phi, smc_options{.particles = 4, .horizon = 1000, .proposal = proposal_type::base});
  const smc_result b = base.run(token_sequence{0}, rng);
  CHECK(std::abs(b.log_z) < 1e-12);
}

TEST_CASE("one particle with 1 - 1e-15 of the weight", "[reliability]") {
  constexpr std::size_t k = 64;
  std::vector<double> log_w(k, std::log(1e-15 / static_cast<double>(k - 1)));
  log_w[17] = std::log1p(-1e-15);
  CHECK(tsmc::effective_sample_size(log_w) == Approx(1.0).epsilon(1e-12));
  std::vector<particle_index> anc(k);
  default_engine rng(5);
  const auto check = [&](auto&& r) {
    for (int rep = 0; rep < 20; ++rep) {
      r.resample(log_w, anc, rng);
      std::size_t heavy = 0;
      for (const particle_index a : anc) heavy += a == 17;
      CHECK(heavy >= k - 1);  // (P(any other) about 64e-15 per call)
    }
  };
  check(tsmc::resampler<systematic>{});
  check(tsmc::resampler<stratified>{});
  check(tsmc::resampler<multinomial>{});
  check(tsmc::resampler<residual>{});
  check(tsmc::resampler<ssp>{});
  check(tsmc::resampler<killing>{});
}

TEST_CASE("K = 2^20 particles on a tiny model", "[reliability]") {
  small_problem p(false, 39, 2);
  no_twist none;
  constexpr std::size_t k = std::size_t{1} << 20;
  twisted_smc smc(p.model, none, p.potential, p.options(k, proposal_type::base), systematic{});
  default_engine rng(6);
  const smc_result r = smc.run(p.problem.prompt, rng);
  CHECK(no_nan(r));
  INFO("log Zhat " << r.log_z << ", log Z " << p.solution.log_z());
  CHECK(std::abs(r.log_z - p.solution.log_z()) < 0.01);  // sd about 1e-3
}

TEST_CASE("mean_and_standard_error with -inf values (a legal log Zhat) gives no NaN", "[reliability]") {
  const std::vector<double> mixed{-1.0, -inf, -2.0};
  const auto m = tsmc::mean_and_standard_error(mixed);
  CHECK(m.mean == -inf);
  CHECK(m.standard_error == inf);
  const std::vector<double> all{-inf, -inf};
  const auto a = tsmc::mean_and_standard_error(all);
  CHECK(a.mean == -inf);
  CHECK(a.standard_error == 0.0);
  const std::vector<double> one{-inf};
  CHECK(tsmc::mean_and_standard_error(one).standard_error == 0.0);
  const std::vector<double> with_nan{0.0, std::nan("")};
  CHECK(std::isnan(tsmc::mean_and_standard_error(with_nan).mean));
}

TEST_CASE("uniform_index(engine, 0) is refused", "[reliability]") {
  default_engine rng(7);
  CHECK_THROWS_WITH(tsmc::uniform_index(rng, 0), "tsmc::uniform_index: n must be positive, got 0");
  CHECK(tsmc::uniform_index(rng, 1) == 0);
}
