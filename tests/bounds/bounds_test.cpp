// Bidirectional bounds and KL estimates against exact toy problems: the bounds sandwich log Z
// and close as K grows; with the optimal twist both bounds are log Z and both KLs 0; the KL
// estimates match the exact KLs; infilling bounds per observation and on average; bad input.
#include <catch2/catch.hpp>

#include <tsmc/bounds/estimator.hpp>
#include <tsmc/bounds/exact_samplers.hpp>
#include <tsmc/bounds/kl.hpp>
#include <tsmc/core/log_math.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/resampling/schemes.hpp>
#include <tsmc/resampling/triggers.hpp>
#include <tsmc/smc/sampler.hpp>
#include <tsmc/smc/stateless_model.hpp>
#include <tsmc/testing/enumeration.hpp>
#include <tsmc/testing/toy_model.hpp>
#include <tsmc/testing/toy_potentials.hpp>
#include <tsmc/twists/no_twist.hpp>

#include <cmath>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <vector>

using namespace tsmc;
using namespace tsmc::testing;

namespace {

/// Five standard errors: two-sided tail 5.7e-7 (one-sided 2.9e-7), the false-alarm budget of
/// one assertion.
constexpr double z_limit = 5.0;

/// The tabular model's exact double-precision rows as a LanguageModel (the sampler then sees
/// exactly the enumerated p0; tabular_model itself emits float rows, good to ~1e-7).
auto exact_rows(const tabular_model& model) {
  return stateless_model(model.vocab_size(),
                         [&model](std::span<const token> prompt, std::span<const token> prefix, std::span<double> out) {
                           model.next_log_probs(prompt, prefix, out);
                         });
}

/// The optimal twist psi* in double precision (testing::optimal_twist rounds to float).
struct exact_optimal_twist {
  const exact_solution* solution;
  template <class Model>
  void log_twist(const step_context<Model>& ctx, log_prob_ref out) const {
    token_sequence x;
    for (std::size_t k = 0; k < ctx.prefixes.size(); ++k) {
      const auto row = static_cast<Eigen::Index>(k);
      if (!ctx.active.empty() && ctx.active[k] == 0) {
        out.row(row).setZero();
        continue;
      }
      x = ctx.prefixes[k];
      x.push_back(0);
      for (Eigen::Index v = 0; v < out.cols(); ++v) {
        x.back() = static_cast<token>(v);
        out(row, v) = solution->log_optimal_twist(x);
      }
    }
  }
};

const token_sequence prompt{1, 0};

struct problem {
  toy_problem spec;
  tabular_model model;
  random_potential potential;
  exact_solution solution;
  problem(std::uint64_t seed, std::optional<token> end, std::size_t horizon = 3)
      : spec{3, horizon, prompt, end}, model(3, seed, 1.0), potential(seed + 100, 1.0),
        solution(enumerate(spec, model, potential)) {}
  [[nodiscard]] smc_options options(std::size_t particles, proposal_type proposal) const {
    return {.particles = particles, .horizon = spec.horizon, .proposal = proposal, .end_token = spec.end_token};
  }
};

/// Checks lower <= log Z <= upper beyond z_limit standard errors; returns the bounds.
template <class Sampler, class Exact>
log_z_bounds checked_bounds(Sampler& smc, Exact& exact, double log_z, std::size_t runs, std::uint64_t seed) {
  default_engine rng(seed);
  const log_z_bounds b = estimate_bounds(smc, prompt, exact, runs, rng);
  INFO("K " << smc.options().particles << ": lower " << b.lower.mean << " +- " << b.lower.standard_error << ", log Z "
            << log_z << ", upper " << b.upper.mean << " +- " << b.upper.standard_error);
  REQUIRE(b.lower.runs == runs);
  REQUIRE(b.lower.mean < log_z + z_limit * b.lower.standard_error);
  REQUIRE(b.upper.mean > log_z - z_limit * b.upper.standard_error);
  REQUIRE(b.lower.low < b.lower.mean);
  REQUIRE(b.lower.high - b.lower.mean == Approx(normal_quantile_95 * b.lower.standard_error));
  return b;
}

template <class Scheme, class Trigger, class Twist>
void check_convergence(problem& p, Twist& twist, proposal_type proposal, Scheme scheme, Trigger trigger,
                       std::uint64_t seed) {
  auto exact = enumeration_exact_sampler(p.solution);
  const double log_z = p.solution.log_z();
  std::vector<log_z_bounds> bounds;
  for (std::size_t particles : {1u, 4u, 16u, 64u}) {
    twisted_smc smc(p.model, twist, p.potential, p.options(particles, proposal), scheme, trigger);
    bounds.push_back(checked_bounds(smc, exact, log_z, particles >= 64 ? 400 : 1000, seed + particles));
  }
  const log_z_bounds& first = bounds.front();
  const log_z_bounds& last = bounds.back();
  INFO("K = 1: [" << first.lower.mean << ", " << first.upper.mean << "], K = 64: [" << last.lower.mean << ", "
                  << last.upper.mean << "], log Z " << log_z);
  // K = 1 resolves the gap strictly on both sides.
  REQUIRE(first.lower.mean + z_limit * first.lower.standard_error < log_z);
  REQUIRE(first.upper.mean - z_limit * first.upper.standard_error > log_z);
  // The lower bound rises and the upper bound falls from K = 1 to K = 64, beyond their errors.
  REQUIRE(last.lower.mean - first.lower.mean >
          z_limit * std::hypot(first.lower.standard_error, last.lower.standard_error));
  REQUIRE(first.upper.mean - last.upper.mean >
          z_limit * std::hypot(first.upper.standard_error, last.upper.standard_error));
  // And at K = 64 both are close to log Z.
  REQUIRE(last.gap() < 0.25 * first.gap());
}

}  // namespace

TEST_CASE("bounds: lower rises to log Z and upper falls to it as K grows (twisted SMC, random twist)", "[bounds]") {
  problem p(21, token(2));
  random_twist twist(5, 1.5);
  check_convergence(p, twist, proposal_type::twisted, multinomial{}, always, 100);
}

TEST_CASE("bounds: lower rises to log Z and upper falls to it as K grows (SIS, base proposal)", "[bounds]") {
  problem p(22, std::nullopt);
  no_twist none;
  check_convergence(p, none, proposal_type::base, multinomial{}, never, 200);
}

TEST_CASE("bounds: adaptive systematic resampling with the base proposal and a random twist", "[bounds]") {
  problem p(23, token(2));
  random_twist twist(9, 1.0);
  check_convergence(p, twist, proposal_type::base, systematic{}, ess_below(0.5), 300);
}

TEST_CASE("bounds and KLs are exact with the optimal twist, for any K, scheme and trigger", "[bounds]") {
  for (std::optional<token> end : {std::optional<token>{}, std::optional<token>(2)}) {
    CAPTURE(end.has_value());
    problem p(31, end);
    auto model = exact_rows(p.model);
    exact_optimal_twist twist{&p.solution};
    hide_next_token_form<random_potential> potential(p.potential);  // phi exactly, in double
    auto exact = enumeration_exact_sampler(p.solution);
    const double log_z = p.solution.log_z();
    const auto check = [&](auto scheme, auto trigger, std::size_t particles) {
      twisted_smc smc(model, twist, potential, p.options(particles, proposal_type::twisted), scheme, trigger);
      default_engine rng(particles);
      const log_z_bounds b = estimate_bounds(smc, prompt, exact, 20, rng);
      REQUIRE(std::abs(b.lower.mean - log_z) < 1e-9);
      REQUIRE(std::abs(b.upper.mean - log_z) < 1e-9);
      REQUIRE(b.lower.standard_error < 1e-9);
      REQUIRE(b.upper.standard_error < 1e-9);
      REQUIRE(std::abs(b.gap()) < 1e-9);
      REQUIRE(b.lower_ess == Approx(static_cast<double>(particles)).epsilon(1e-9));
      return b;
    };
    const log_z_bounds b = check(multinomial{}, always, 1);
    (void)check(systematic{}, ess_below(0.5), 8);
    (void)check(residual{}, always, 8);
    (void)check(multinomial{}, never, 16);

    const kl_options options{.horizon = 3, .proposal = proposal_type::twisted, .end_token = end,
                             .proposal_samples = 300, .exact_samples = 100, .batch = 64};
    for (const log_z_reference& reference : {log_z_reference::from_bounds(b), log_z_reference::known(log_z)}) {
      default_engine rng(9);
      const kl_estimate kl = estimate_kl(model, twist, potential, prompt, exact, reference, options, rng);
      REQUIRE(std::abs(kl.q_sigma.value) < 1e-9);
      REQUIRE(std::abs(kl.sigma_q.value) < 1e-9);
      REQUIRE(std::abs(kl.f_q.mean - log_z) < 1e-9);
      REQUIRE(std::abs(kl.g_q.mean - log_z) < 1e-9);
      REQUIRE(kl.f_q.runs == 300);
      REQUIRE(kl.g_q.runs == 100);
    }
  }
}

namespace {

/// The twist-induced proposal's next-token table for a twist with log_value(prefix): q(v | prefix)
/// proportional to p0(v | prefix) psi(prefix + v), psi rounded to float as the twist writes it.
struct twisted_table {
  const tabular_model* model;
  const random_twist* twist;
  void operator()(std::span<const token> prompt_, std::span<const token> prefix, std::span<double> out) const {
    model->next_log_probs(prompt_, prefix, out);
    token_sequence x(prefix.begin(), prefix.end());
    x.push_back(0);
    for (std::size_t v = 0; v < out.size(); ++v) {
      x.back() = static_cast<token>(v);
      out[v] += static_cast<double>(static_cast<float>(twist->log_value(x)));
    }
    log_softmax(out, out);
  }
};

template <class Twist>
void check_kl_against_exact(problem& p, Twist& twist, proposal_type proposal, double exact_q_sigma,
                            double exact_sigma_q, std::uint64_t seed) {
  auto model = exact_rows(p.model);
  hide_next_token_form<random_potential> potential(p.potential);
  auto exact = enumeration_exact_sampler(p.solution);
  const kl_options options{.horizon = p.spec.horizon, .proposal = proposal, .end_token = p.spec.end_token,
                           .proposal_samples = 4000, .exact_samples = 3000, .batch = 500};
  default_engine rng(seed);
  const kl_estimate kl =
      estimate_kl(model, twist, potential, prompt, exact, log_z_reference::known(p.solution.log_z()), options, rng);
  INFO("KL(q||sigma) " << kl.q_sigma.value << " +- " << kl.q_sigma.standard_error << " vs " << exact_q_sigma
                       << "; KL(sigma||q) " << kl.sigma_q.value << " +- " << kl.sigma_q.standard_error << " vs "
                       << exact_sigma_q);
  REQUIRE(exact_q_sigma > 0.01);  // a proposal visibly different from sigma
  REQUIRE(kl.q_sigma.standard_error > 0.0);
  REQUIRE(kl.sigma_q.standard_error > 0.0);
  REQUIRE(std::abs(kl.q_sigma.value - exact_q_sigma) < z_limit * kl.q_sigma.standard_error);
  REQUIRE(std::abs(kl.sigma_q.value - exact_sigma_q) < z_limit * kl.sigma_q.standard_error);
  // log Z known: the implied intervals are points.
  REQUIRE(kl.q_sigma.low == kl.q_sigma.value);
  REQUIRE(kl.sigma_q.high == kl.sigma_q.value);
}

}  // namespace

TEST_CASE("KL estimates match the exact KLs: base proposal", "[bounds]") {
  for (std::optional<token> end : {std::optional<token>{}, std::optional<token>(2)}) {
    CAPTURE(end.has_value());
    problem p(41, end);
    no_twist none;
    check_kl_against_exact(p, none, proposal_type::base, p.solution.kl_q_sigma(p.model),
                           p.solution.kl_sigma_q(p.model), 400);
  }
}

TEST_CASE("KL estimates match the exact KLs: twisted proposal with a random twist", "[bounds]") {
  for (std::optional<token> end : {std::optional<token>{}, std::optional<token>(2)}) {
    CAPTURE(end.has_value());
    problem p(42, end);
    random_twist twist(13, 1.0);
    const twisted_table q{&p.model, &twist};
    check_kl_against_exact(p, twist, proposal_type::twisted, p.solution.kl_q_sigma(q), p.solution.kl_sigma_q(q), 500);
  }
}

TEST_CASE("KL intervals implied by estimated bounds contain the exact KLs", "[bounds]") {
  problem p(43, std::nullopt);
  random_twist twist(17, 1.0);
  const twisted_table q{&p.model, &twist};
  auto model = exact_rows(p.model);
  hide_next_token_form<random_potential> potential(p.potential);
  auto exact = enumeration_exact_sampler(p.solution);
  twisted_smc smc(model, twist, potential, p.options(16, proposal_type::twisted), multinomial{}, always);
  default_engine rng(600);
  const log_z_bounds b = estimate_bounds(smc, prompt, exact, 400, rng);
  const log_z_reference reference = log_z_reference::from_bounds(b);
  REQUIRE(reference.value == Approx(b.midpoint()));
  const kl_estimate kl = estimate_kl(model, twist, potential, prompt, exact, reference,
                                     {.horizon = 3, .proposal_samples = 4000, .exact_samples = 3000}, rng);
  const double exact_q_sigma = p.solution.kl_q_sigma(q), exact_sigma_q = p.solution.kl_sigma_q(q);
  INFO("KL(q||sigma) in [" << kl.q_sigma.low << ", " << kl.q_sigma.high << "], exact " << exact_q_sigma
                           << "; KL(sigma||q) in [" << kl.sigma_q.low << ", " << kl.sigma_q.high << "], exact "
                           << exact_sigma_q);
  // Errors: F_q / G_q and the bound on the relevant side (log Z's interval is [lower, upper]).
  REQUIRE(kl.q_sigma.low - z_limit * std::hypot(kl.f_q.standard_error, b.lower.standard_error) < exact_q_sigma);
  REQUIRE(kl.q_sigma.high + z_limit * std::hypot(kl.f_q.standard_error, b.upper.standard_error) > exact_q_sigma);
  REQUIRE(kl.sigma_q.low - z_limit * std::hypot(kl.g_q.standard_error, b.upper.standard_error) < exact_sigma_q);
  REQUIRE(kl.sigma_q.high + z_limit * std::hypot(kl.g_q.standard_error, b.lower.standard_error) > exact_sigma_q);
  // The midpoint estimate and the tightest of several bounds.
  const std::vector<log_z_bounds> several{b, b};
  const log_z_reference tightest = log_z_reference::from_bounds(std::span<const log_z_bounds>(several));
  REQUIRE(tightest.value == Approx(reference.value));
}

TEST_CASE("bounds with rejection samplers as the exact samplers", "[bounds]") {
  SECTION("class probability") {
    const toy_problem spec{3, 3, prompt, std::nullopt};
    tabular_model model(3, 51, 1.0);
    soft_classifier classifier = soft_classifier::random(3, 6, 1.5, -0.5, 1.0);
    const exact_solution solution = enumerate(spec, model, classifier);
    auto exact = class_rejection_sampler(model, classifier, prompt, {.horizon = 3, .batch = 64});
    no_twist none;
    twisted_smc smc(model, none, classifier, smc_options{.particles = 2, .horizon = 3, .proposal = proposal_type::base},
                    multinomial{}, always);
    const log_z_bounds b = checked_bounds(smc, exact, solution.log_z(), 2000, 700);
    REQUIRE(b.lower.mean + z_limit * b.lower.standard_error < solution.log_z());
    REQUIRE(exact.accepted() >= 2000);
  }
  SECTION("indicator") {
    const toy_problem spec{3, 4, prompt, token(2)};
    tabular_model model(3, 52, 1.0);
    pattern_indicator potential({0, 1});
    const exact_solution solution = enumerate(spec, model, potential);
    auto exact = indicator_rejection_sampler(model, potential, prompt, {.horizon = 4, .end_token = 2});
    no_twist none;
    // K = 64 so that no run loses every particle (log Zhat would be -inf).
    twisted_smc smc(model, none, potential,
                    smc_options{.particles = 64, .horizon = 4, .proposal = proposal_type::base, .end_token = 2},
                    systematic{}, ess_below(0.5));
    const log_z_bounds b = checked_bounds(smc, exact, solution.log_z(), 300, 701);
    REQUIRE(std::isfinite(b.lower.mean));
  }
}

TEST_CASE("infilling: bounds per observation and on average bracket log p0(o | prompt)", "[bounds]") {
  tabular_model model(3, 61, 1.0);
  const token_sequence short_prompt{2};
  constexpr std::size_t T = 2, c = 2, observations = 200, runs = 10;
  infilling_joint_sampler joint(model, short_prompt, {.horizon = T, .continuation = c});
  default_engine rng(800);
  const std::vector<infilling_sample> samples = joint.draw(observations, rng);
  no_twist none;
  const auto bounds_for = [&](const infilling_sample& o, std::size_t m, default_engine& engine) {
    infilling_potential<tabular_model> potential(model, short_prompt, o.observation);
    twisted_smc smc(model, none, potential, smc_options{.particles = 2, .horizon = T, .proposal = proposal_type::base},
                    multinomial{}, always);
    single_sample_sampler exact(o.prefix, short_prompt, T);
    return estimate_bounds(smc, short_prompt, exact, m, engine);
  };
  const conditional_bounds result = estimate_conditional_bounds(samples, runs, rng, bounds_for);
  REQUIRE(result.per_observation.size() == observations);
  // The exact log Z(o) = log p0(o | prompt) by enumeration, per observation.
  std::vector<double> log_z(observations), lower_diff(observations), upper_diff(observations);
  double mean_log_z = 0.0;
  for (std::size_t i = 0; i < observations; ++i) {
    infilling_potential<tabular_model> potential(model, short_prompt, samples[i].observation);
    log_z[i] = enumerate(toy_problem{3, T, short_prompt, std::nullopt}, model, potential).log_z();
    mean_log_z += log_z[i] / static_cast<double>(observations);
    lower_diff[i] = result.per_observation[i].lower.mean - log_z[i];
    upper_diff[i] = result.per_observation[i].upper.mean - log_z[i];
  }
  INFO("average: lower " << result.lower.mean << " +- " << result.lower.standard_error << ", log Z " << mean_log_z
                         << ", upper " << result.upper.mean << " +- " << result.upper.standard_error);
  REQUIRE(result.lower.mean < mean_log_z + z_limit * result.lower.standard_error);
  REQUIRE(result.upper.mean > mean_log_z - z_limit * result.upper.standard_error);
  // Paired (sharper): per-observation differences to the exact log Z(o), averaged over 200
  // observations (the CLT over observations; each observation's upper bound uses its one exact sample).
  const mean_estimate lower_gap = mean_and_standard_error(lower_diff);
  const mean_estimate upper_gap = mean_and_standard_error(upper_diff);
  INFO("paired: lower - log Z " << lower_gap.mean << " +- " << lower_gap.standard_error << ", upper - log Z "
                                << upper_gap.mean << " +- " << upper_gap.standard_error);
  REQUIRE(lower_gap.mean < z_limit * lower_gap.standard_error);
  REQUIRE(upper_gap.mean > -z_limit * upper_gap.standard_error);
  REQUIRE(lower_gap.mean + z_limit * lower_gap.standard_error < 0.0);  // K = 2 leaves a resolvable gap
  REQUIRE(result.gap() > 0.0);
}

TEST_CASE("bounds: bad input is a clear error; vanishing weights give a documented -inf", "[bounds]") {
  problem p(71, token(2));
  random_twist twist(3, 1.0);
  twisted_smc smc(p.model, twist, p.potential, p.options(4, proposal_type::twisted), multinomial{}, always);
  auto exact = enumeration_exact_sampler(p.solution);
  default_engine rng(900);
  const auto message_of = [](auto&& f) -> std::string {
    try {
      f();
    } catch (const tsmc::invalid_argument& e) {
      return e.what();
    }
    return "no tsmc::invalid_argument";
  };

  SECTION("M = 0") {
    const std::string what = message_of([&] { (void)estimate_bounds(smc, prompt, exact, 0, rng); });
    REQUIRE(what == "tsmc::estimate_bounds: runs must be positive, got 0");
  }
  SECTION("an exact sampler for another prompt") {
    const exact_solution other = enumerate(toy_problem{3, 3, token_sequence{0}, token(2)}, p.model, p.potential);
    auto wrong = enumeration_exact_sampler(other);
    const std::string what = message_of([&] { (void)estimate_bounds(smc, prompt, wrong, 10, rng); });
    INFO(what);
    REQUIRE(what.find("tsmc::estimate_bounds: exact.prompt() must equal the sampler's prompt [1, 0]") == 0);
    REQUIRE(what.find("got [0]") != std::string::npos);
  }
  SECTION("an exact sampler for another horizon or end token") {
    const exact_solution shorter = enumerate(toy_problem{3, 2, prompt, token(2)}, p.model, p.potential);
    auto wrong = enumeration_exact_sampler(shorter);
    REQUIRE(message_of([&] { (void)estimate_bounds(smc, prompt, wrong, 10, rng); }) ==
            "tsmc::estimate_bounds: exact.horizon() must equal the sampler's horizon 3, got 2");
    const exact_solution no_end = enumerate(toy_problem{3, 3, prompt, std::nullopt}, p.model, p.potential);
    auto wrong_end = enumeration_exact_sampler(no_end);
    REQUIRE(message_of([&] { (void)estimate_bounds(smc, prompt, wrong_end, 10, rng); }) ==
            "tsmc::estimate_bounds: exact.end_token() must equal the sampler's end token 2, got none");
    const kl_options options{.horizon = 3, .end_token = 2};
    REQUIRE(message_of([&] {
              (void)estimate_kl(p.model, twist, p.potential, prompt, wrong, log_z_reference::known(0.0), options, rng);
            }).find("exact.horizon()") != std::string::npos);
  }
  SECTION("an undeclared exact sampler whose samples do not fit is caught by the conditional run") {
    const exact_solution longer = enumerate(toy_problem{3, 4, prompt, std::nullopt}, p.model, p.potential);
    enumeration_sampler undeclared(longer);
    REQUIRE_THROWS_AS(estimate_bounds(smc, prompt, undeclared, 10, rng), tsmc::invalid_argument);
  }
  SECTION("a potential that is zero almost everywhere: the rejection budget runs out") {
    pattern_indicator rare({0, 0, 0, 0});  // needs four tokens: impossible with T = 3
    auto rejection = indicator_rejection_sampler(p.model, rare, prompt, {.horizon = 3, .end_token = 2, .budget = 500});
    no_twist none;
    twisted_smc bootstrap(p.model, none, rare, p.options(4, proposal_type::base), multinomial{}, always);
    REQUIRE_THROWS_AS(estimate_bounds(bootstrap, prompt, rejection, 10, rng), tsmc::runtime_error);
  }
  SECTION("runs whose weights all vanish give lower = -inf (documented), not an error") {
    pattern_indicator rare({1, 1});
    const exact_solution solution = enumerate(p.spec, p.model, rare);
    REQUIRE(std::isfinite(solution.log_z()));
    auto rare_exact = enumeration_exact_sampler(solution);
    no_twist none;
    twisted_smc sis(p.model, none, rare, p.options(1, proposal_type::base), multinomial{}, never);
    const log_z_bounds b = estimate_bounds(sis, prompt, rare_exact, 200, rng);
    REQUIRE(b.lower.mean == neg_inf);
    REQUIRE(std::isnan(b.lower.standard_error));
    REQUIRE(b.lower.low == neg_inf);
    REQUIRE(std::isfinite(b.upper.mean));
    REQUIRE(b.gap() == std::numeric_limits<double>::infinity());
  }
  SECTION("KL and summary input checks") {
    const kl_options options{.horizon = 3, .end_token = 2};
    auto bad = options;
    bad.proposal_samples = 0;
    REQUIRE(message_of([&] {
              (void)estimate_kl(p.model, twist, p.potential, prompt, exact, log_z_reference::known(0.0), bad, rng);
            }) == "tsmc::estimate_kl: options.proposal_samples must be positive, got 0");
    REQUIRE(message_of([&] {
              (void)estimate_kl(p.model, twist, p.potential, prompt, exact, log_z_reference::known(neg_inf), options,
                                rng);
            }) == "tsmc::estimate_kl: log_z.value must be finite, got -inf");
    REQUIRE_THROWS_AS(summarize_bound(std::vector<double>{}), tsmc::invalid_argument);
    REQUIRE_THROWS_AS(summarize_bound(std::vector<double>{1.0, std::nan("")}), tsmc::invalid_argument);
    REQUIRE(std::isnan(summarize_bound(std::vector<double>{1.0}).standard_error));
    const std::vector<infilling_sample> none_observed;
    REQUIRE_THROWS_AS(estimate_conditional_bounds(none_observed, 10, rng,
                                                  [](const infilling_sample&, std::size_t, default_engine&) {
                                                    return log_z_bounds{};
                                                  }),
                      tsmc::invalid_argument);
    REQUIRE_THROWS_AS(log_z_reference::from_bounds(std::span<const log_z_bounds>()), tsmc::invalid_argument);
  }
}
