// The bounds-then-KL chain on problems where some runs have Zhat = 0 (an indicator potential at
// small K): the bounds say how often, the markdown / JSON reports show it, estimate_kl names the
// way out, log_z_reference::from_upper_bound takes it; and estimate_kl with the problem taken
// from a sampler.
#include <catch2/catch.hpp>

#include <tsmc/bounds/estimator.hpp>
#include <tsmc/bounds/kl.hpp>
#include <tsmc/bounds/report.hpp>
#include <tsmc/core/log_math.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/resampling/schemes.hpp>
#include <tsmc/resampling/triggers.hpp>
#include <tsmc/smc/sampler.hpp>
#include <tsmc/testing/enumeration.hpp>
#include <tsmc/testing/toy_model.hpp>
#include <tsmc/testing/toy_potentials.hpp>
#include <tsmc/twists/no_twist.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

using namespace tsmc;
using namespace tsmc::testing;

namespace {

const token_sequence prompt{1, 0};

std::string invalid_argument_message(auto&& f) {
  try {
    f();
  } catch (const tsmc::invalid_argument& e) {
    return e.what();
  }
  return "no tsmc::invalid_argument";
}

}  // namespace

TEST_CASE("zero runs: summarize_bound counts the runs with Zhat = 0", "[usability]") {
  REQUIRE(summarize_bound(std::vector<double>{-1.0, neg_inf, 0.5, neg_inf}).zero_fraction == 0.5);
  REQUIRE(summarize_bound(std::vector<double>{-1.0, -2.0, 0.5}).zero_fraction == 0.0);
  REQUIRE(summarize_bound(std::vector<double>{neg_inf}).zero_fraction == 1.0);
}

TEST_CASE("zero runs: an indicator at K = 1, from the bounds to the KLs", "[usability]") {
  tabular_model model(3, 11, 1.0);
  pattern_indicator rare({1, 1});
  const exact_solution solution = enumerate(toy_problem{3, 3, prompt, token(2)}, model, rare);
  const double z = std::exp(solution.log_z());
  REQUIRE(z > 0.05);
  REQUIRE(z < 0.95);
  auto exact = enumeration_exact_sampler(solution);
  no_twist none;
  twisted_smc sis(model, none, rare,
                  smc_options{.particles = 1, .horizon = 3, .proposal = proposal_type::base, .end_token = 2},
                  multinomial{}, never);
  default_engine rng(77);
  constexpr std::size_t runs = 400;
  const log_z_bounds b = estimate_bounds(sis, prompt, exact, runs, rng);

  // SIS with K = 1 and q = p0: Zhat = phi(s), s ~ p0, so P(Zhat = 0) = 1 - Z. Five binomial
  // standard errors (false alarm < 1e-6).
  const double p = 1.0 - z;
  INFO("zero fraction " << b.lower.zero_fraction << ", expected " << p);
  REQUIRE(std::abs(b.lower.zero_fraction - p) < 5.0 * std::sqrt(p * (1.0 - p) / runs));
  REQUIRE(b.lower.mean == neg_inf);
  REQUIRE(b.upper.zero_fraction == 0.0);  // conditional runs keep the exact sample's weight
  REQUIRE(std::isfinite(b.upper.mean));

  // The midpoint is -inf: estimate_kl says which reference to take instead.
  const kl_options options{.horizon = 3, .proposal = proposal_type::base, .end_token = 2, .proposal_samples = 64,
                           .exact_samples = 64, .batch = 32};
  const std::string what = invalid_argument_message([&] {
    (void)estimate_kl(model, none, rare, prompt, exact, log_z_reference::from_bounds(b), options, rng);
  });
  INFO(what);
  REQUIRE(what.find("tsmc::estimate_kl: log_z.value must be finite; the lower bound is -inf") == 0);
  REQUIRE(what.find("log_z_reference::from_upper_bound(bounds)") != std::string::npos);

  // The upper bound alone: value = upper, interval [-inf, upper].
  const log_z_reference upper = log_z_reference::from_upper_bound(b);
  REQUIRE(upper.value == b.upper.mean);
  REQUIRE(upper.high == b.upper.mean);
  REQUIRE(upper.low == neg_inf);
  const kl_estimate kl = estimate_kl(model, none, rare, prompt, exact, upper, options, rng);
  // q = p0 puts mass where phi = 0: KL(q || sigma) = +inf; KL(sigma || q) = G_q - log Z is finite
  // and its interval is one-sided.
  REQUIRE(kl.q_sigma.value == std::numeric_limits<double>::infinity());
  REQUIRE(std::isfinite(kl.sigma_q.value));
  REQUIRE(kl.sigma_q.value == kl.g_q.mean - b.upper.mean);
  REQUIRE(kl.sigma_q.high == std::numeric_limits<double>::infinity());

  // The report says how often the lower bound's runs had Zhat = 0.
  const bounds_report report = make_report("SIS", 1, multinomial{}, never, b);
  const std::string row = report.markdown_row();
  INFO(row);
  REQUIRE(row.find("-inf +- nan (Zhat = 0 in " + detail::format_number(100.0 * b.lower.zero_fraction, 1) +
                   "% of runs)") != std::string::npos);
  REQUIRE(report.to_json().find("\"zero_fraction\": " + detail::exact_number(b.lower.zero_fraction, true)) !=
          std::string::npos);
}

TEST_CASE("zero runs: from_upper_bound checks the upper bound, keeps a finite lower one", "[usability]") {
  log_z_bounds b;
  b.lower.mean = -2.0;
  b.upper.mean = -1.5;
  const log_z_reference r = log_z_reference::from_upper_bound(b);
  REQUIRE(r.value == -1.5);
  REQUIRE(r.low == -2.0);
  REQUIRE(r.high == -1.5);
  b.upper.mean = std::numeric_limits<double>::infinity();
  REQUIRE(invalid_argument_message([&] { (void)log_z_reference::from_upper_bound(b); }) ==
          "tsmc::log_z_reference::from_upper_bound: bounds.upper.mean must be finite, got inf");
}

TEST_CASE("zero runs: conditional bounds average the fraction over all runs", "[usability]") {
  const std::vector<int> observations{0, 1};
  default_engine rng(1);
  const conditional_bounds c =
      estimate_conditional_bounds(observations, 4, rng, [](const int& o, std::size_t, default_engine&) {
        log_z_bounds b;
        b.lower = summarize_bound(o == 0 ? std::vector<double>{neg_inf, -1.0, -1.0, -1.0}
                                         : std::vector<double>{-1.0, -1.0, -1.0, -1.0});
        b.upper = summarize_bound(std::vector<double>{-0.5, -0.5, -0.5, -0.5});
        return b;
      });
  REQUIRE(c.lower.zero_fraction == 0.125);  // 1 of 8 runs, not 1 of 2 observations
  REQUIRE(c.upper.zero_fraction == 0.0);
}

TEST_CASE("estimate_kl from a sampler: horizon, end token and proposal come from its options", "[usability]") {
  tabular_model model(3, 5, 1.0);
  random_potential potential(105, 1.0);
  random_twist twist(3, 1.0);
  const exact_solution solution = enumerate(toy_problem{3, 3, prompt, token(2)}, model, potential);
  auto exact = enumeration_exact_sampler(solution);
  const auto reference = log_z_reference::known(solution.log_z());
  const kl_samples samples{.proposal_samples = 100, .exact_samples = 50, .batch = 32};
  for (const proposal_type proposal : {proposal_type::base, proposal_type::twisted}) {
    twisted_smc smc(model, twist, potential,
                    smc_options{.particles = 8, .horizon = 3, .proposal = proposal, .end_token = 2}, systematic{},
                    ess_below(0.5));
    default_engine a(9), c(9);
    const kl_estimate from_sampler = estimate_kl(smc, prompt, exact, reference, samples, a);
    const kl_estimate spelled_out =
        estimate_kl(model, twist, potential, prompt, exact, reference,
                    kl_options{.horizon = 3, .proposal = proposal, .end_token = 2, .proposal_samples = 100,
                               .exact_samples = 50, .batch = 32},
                    c);
    REQUIRE(from_sampler.f_q.mean == spelled_out.f_q.mean);
    REQUIRE(from_sampler.g_q.mean == spelled_out.g_q.mean);
    REQUIRE(from_sampler.f_q.runs == 100);
    REQUIRE(from_sampler.g_q.runs == 50);
    // and the other proposal gives other numbers (the proposal is really taken from the sampler)
    default_engine d(9);
    const proposal_type other = proposal == proposal_type::base ? proposal_type::twisted : proposal_type::base;
    const kl_estimate other_estimate =
        estimate_kl(model, twist, potential, prompt, exact, reference,
                    kl_options{.horizon = 3, .proposal = other, .end_token = 2, .proposal_samples = 100,
                               .exact_samples = 50, .batch = 32},
                    d);
    REQUIRE(other_estimate.f_q.mean != from_sampler.f_q.mean);
  }
  // The sampler's problem is checked against a targeted exact sampler as before.
  twisted_smc longer(model, twist, potential, smc_options{.particles = 8, .horizon = 4, .end_token = 2});
  default_engine rng(3);
  REQUIRE(invalid_argument_message([&] { (void)estimate_kl(longer, prompt, exact, reference, samples, rng); }) ==
          "tsmc::estimate_kl: exact.horizon() must equal the sampler's horizon 4, got 3");
}
