// [reliability] Bad-input matrix rows of the bounds layer: the estimators, log Z references, the
// sweep and its CSV file, and the exact samplers (see bad_input_matrix.hpp).

#include "reliability/bad_input_matrix.hpp"
#include "smc/sampler_fixtures.hpp"

#include <tsmc/bounds/estimator.hpp>
#include <tsmc/bounds/exact_samplers.hpp>
#include <tsmc/bounds/kl.hpp>
#include <tsmc/bounds/sweep.hpp>

#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

namespace {

using bad_input::input;
using namespace tsmc_test;
constexpr double nan = std::numeric_limits<double>::quiet_NaN();
constexpr double inf = std::numeric_limits<double>::infinity();

// log phi = value for every sequence.
struct constant_potential {
  double value = 0.0;
  explicit constant_potential(double v) : value(v) {}
  void log_potential(std::span<const token_sequence> s, std::span<double> out) const {
    for (std::size_t k = 0; k < s.size(); ++k) out[k] = value;
  }
};

using smc_type = twisted_smc<tabular_model, no_twist, random_potential>;

// A problem (V = 3, T = 3, end token 2), its sampler at K = 8 and its exact sampler.
struct bounds_fixture {
  small_problem p{true, 7, 3};
  no_twist none;
  smc_type smc{p.model, none, p.potential, p.options(8, proposal_type::twisted)};
  enumeration_sampler exact{p.solution};
  default_engine rng{3};
};

log_z_bounds bounds_with(double lower, double upper) {
  log_z_bounds b;
  b.lower.mean = lower;
  b.upper.mean = upper;
  return b;
}

const bad_input::area bounds_rows("bounds", [](bad_input::area& a) {
  using V = std::vector<double>;
  a.invalid("summarize_bound", input::empty, "values = {}", "summarize_bound", "values.size() must be positive, got 0",
            [] { (void)summarize_bound(std::span<const double>()); });
  a.invalid("summarize_bound", input::nan, "values = {1, NaN}", "summarize_bound", "values must not contain NaN", [] {
    const V v{1.0, nan};
    (void)summarize_bound(v);
  });
  a.result("summarize_bound", input::neg_inf, "values = {-inf, 1}", "mean -inf, zero_fraction 0.5 (NaN standard error)",
           [] {
             const V v{-inf, 1.0};
             const bound_estimate b = summarize_bound(v);
             return b.mean == -inf && b.zero_fraction == 0.5;
           });

  a.invalid("estimate_bounds", input::zero, "runs = 0", "estimate_bounds", "runs must be positive, got 0", [] {
    bounds_fixture f;
    (void)estimate_bounds(f.smc, f.p.problem.prompt, f.exact, 0, f.rng);
  });
  a.invalid("estimate_bounds", input::mismatched, "an exact sampler of another prompt", "estimate_bounds",
            "exact.prompt() must equal the sampler's prompt", [] {
              bounds_fixture f;
              const token_sequence other{0, 0};
              (void)estimate_bounds(f.smc, other, f.exact, 2, f.rng);
            });
  a.invalid("estimate_bounds", input::mismatched, "an exact sampler of horizon 3, sampler horizon 2", "estimate_bounds",
            "exact.horizon() must equal the sampler's horizon 2, got 3", [] {
              bounds_fixture f;
              smc_type short_smc(f.p.model, f.none, f.p.potential, smc_options{.particles = 4, .horizon = 2, .end_token = 2});
              (void)estimate_bounds(short_smc, f.p.problem.prompt, f.exact, 2, f.rng);
            });
  a.invalid("estimate_bounds", input::mismatched, "an exact sampler with end token 2, sampler without",
            "estimate_bounds", "exact.end_token() must equal", [] {
              bounds_fixture f;
              smc_type open_smc(f.p.model, f.none, f.p.potential, smc_options{.particles = 4, .horizon = 3});
              (void)estimate_bounds(open_smc, f.p.problem.prompt, f.exact, 2, f.rng);
            });
  const auto per_observation = [](const int&, std::size_t, default_engine&) { return bounds_with(-1.0, -0.5); };
  a.invalid("estimate_conditional_bounds", input::empty, "observations = {}", "estimate_conditional_bounds",
            "observations.size() must be positive, got 0", [per_observation] {
              default_engine rng(1);
              (void)estimate_conditional_bounds(std::vector<int>{}, 4, rng, per_observation);
            });
  a.invalid("estimate_conditional_bounds", input::zero, "runs = 0", "estimate_conditional_bounds",
            "runs must be positive, got 0", [per_observation] {
              default_engine rng(1);
              (void)estimate_conditional_bounds(std::vector<int>{1, 2}, 0, rng, per_observation);
            });

  a.invalid("log_z_reference::from_upper_bound", input::nan, "upper mean NaN", "log_z_reference::from_upper_bound",
            "bounds.upper.mean must be finite, got nan",
            [] { (void)log_z_reference::from_upper_bound(bounds_with(-1.0, nan)); });
  a.invalid("log_z_reference::from_upper_bound", input::pos_inf, "upper mean +inf", "log_z_reference::from_upper_bound",
            "bounds.upper.mean must be finite, got inf",
            [] { (void)log_z_reference::from_upper_bound(bounds_with(-1.0, inf)); });
  a.invalid("log_z_reference::from_upper_bound", input::neg_inf, "upper mean -inf", "log_z_reference::from_upper_bound",
            "bounds.upper.mean must be finite, got -inf",
            [] { (void)log_z_reference::from_upper_bound(bounds_with(-inf, -inf)); });
  a.invalid("log_z_reference::from_bounds(log_z_bounds)", input::nan, "lower mean NaN", "log_z_reference::from_bounds",
            "bounds.lower.mean must not be NaN, got nan",
            [] { (void)log_z_reference::from_bounds(bounds_with(nan, -1.0)); });
  a.invalid("log_z_reference::from_bounds(log_z_bounds)", input::nan, "upper mean NaN", "log_z_reference::from_bounds",
            "bounds.upper.mean must not be NaN, got nan",
            [] { (void)log_z_reference::from_bounds(bounds_with(-1.0, nan)); });
  a.result("log_z_reference::from_bounds(log_z_bounds)", input::neg_inf, "lower mean -inf",
           "value -inf (estimate_kl then refuses it, naming from_upper_bound)",
           [] { return log_z_reference::from_bounds(bounds_with(-inf, -1.0)).value == -inf; });
  a.invalid("log_z_reference::from_bounds(span)", input::empty, "bounds = {}", "log_z_reference::from_bounds",
            "bounds.size() must be positive, got 0",
            [] { (void)log_z_reference::from_bounds(std::span<const log_z_bounds>()); });
  a.invalid("log_z_reference::from_bounds(span)", input::nan, "bounds[1].upper.mean NaN", "log_z_reference::from_bounds",
            "bounds[1].upper.mean must not be NaN, got nan", [] {
              const std::vector<log_z_bounds> b{bounds_with(-2.0, -1.0), bounds_with(-2.0, nan)};
              (void)log_z_reference::from_bounds(std::span<const log_z_bounds>(b));
            });

  // estimate_kl
  const auto kl = [](kl_options o, log_z_reference z, bool other_prompt = false) {
    return [o, z, other_prompt] {
      bounds_fixture f;
      const token_sequence other{0, 0};
      (void)estimate_kl(f.p.model, f.none, f.p.potential,
                        other_prompt ? std::span<const token>(other) : std::span<const token>(f.p.problem.prompt),
                        f.exact, z, o, f.rng);
    };
  };
  const kl_options good{.horizon = 3, .end_token = 2, .proposal_samples = 8, .exact_samples = 8, .batch = 4};
  const log_z_reference z = log_z_reference::known(-1.0);
  {
    auto o = good;
    o.horizon = 0;
    a.invalid("estimate_kl", input::zero, "options.horizon = 0", "estimate_kl", "options.horizon must be positive, got 0",
              kl(o, z));
    o = good;
    o.proposal_samples = 0;
    a.invalid("estimate_kl", input::zero, "options.proposal_samples = 0", "estimate_kl",
              "options.proposal_samples must be positive, got 0", kl(o, z));
    o = good;
    o.exact_samples = 0;
    a.invalid("estimate_kl", input::zero, "options.exact_samples = 0", "estimate_kl",
              "options.exact_samples must be positive, got 0", kl(o, z));
    o = good;
    o.batch = 0;
    a.invalid("estimate_kl", input::zero, "options.batch = 0", "estimate_kl", "options.batch must be positive, got 0",
              kl(o, z));
    o = good;
    o.horizon = 2;
    a.invalid("estimate_kl", input::mismatched, "options.horizon 2, exact sampler's 3", "estimate_kl",
              "exact.horizon() must equal the sampler's horizon 2, got 3", kl(o, z));
    o = good;
    o.end_token = 5;
    a.invalid("estimate_kl", input::too_large, "options.end_token = 5, V = 3", "estimate_kl", "end_token", kl(o, z));
  }
  a.invalid("estimate_kl", input::mismatched, "a prompt the exact sampler does not target", "estimate_kl",
            "exact.prompt() must equal the sampler's prompt", kl(good, z, true));
  a.invalid("estimate_kl", input::nan, "log_z.value = NaN", "estimate_kl", "log_z.value must be finite, got nan",
            kl(good, log_z_reference::known(nan)));
  a.invalid("estimate_kl", input::pos_inf, "log_z.value = +inf", "estimate_kl", "log_z.value must be finite, got inf",
            kl(good, log_z_reference::known(inf)));
  a.invalid("estimate_kl", input::neg_inf, "log_z from bounds with lower -inf", "estimate_kl",
            "take log_z_reference::from_upper_bound(bounds) instead", kl(good, log_z_reference::from_bounds(bounds_with(-inf, -1.0))));
  a.invalid("estimate_kl(twisted_smc)", input::zero, "kl_samples.batch = 0", "estimate_kl", "options.batch must be positive, got 0",
            [] {
              bounds_fixture f;
              (void)estimate_kl(f.smc, f.p.problem.prompt, f.exact, log_z_reference::known(-1.0),
                                kl_samples{.proposal_samples = 4, .exact_samples = 4, .batch = 0}, f.rng);
            });
  a.result("combine_kl", input::neg_inf, "F_q = -inf", "KL(q || sigma) = +inf", [] {
    bound_estimate f_q, g_q;
    f_q.mean = -inf;
    g_q.mean = -1.0;
    return combine_kl(f_q, g_q, log_z_reference::known(-1.0)).q_sigma.value == inf;
  });

  // the sweep and its outputs
  a.invalid("particle_counts", input::zero, "max = 0", "particle_counts", "max must be positive, got 0",
            [] { (void)particle_counts(0); });
  a.invalid("particle_counts", input::zero, "factor = 0", "particle_counts", "factor must be >= 2, got 0",
            [] { (void)particle_counts(16, 0); });
  a.invalid("particle_counts", input::too_large, "factor = 1 (never grows)", "particle_counts", "factor must be >= 2, got 1",
            [] { (void)particle_counts(16, 1); });
  const auto sweep = [](sweep_options o) {
    return [o] {
      bounds_fixture f;
      (void)sweep_particles(f.p.model, f.none, f.p.potential, f.p.options(4, proposal_type::twisted), multinomial{},
                            always, f.p.problem.prompt, f.exact, o, f.rng);
    };
  };
  a.invalid("sweep_particles", input::empty, "options.particles = {}", "sweep_particles",
            "options.particles.size() must be positive, got 0", sweep(sweep_options{.particles = {}, .runs = 2}));
  a.invalid("sweep_particles", input::zero, "options.particles = {4, 0}", "sweep_particles",
            "options.particles[1] must be positive, got 0", sweep(sweep_options{.particles = {4, 0}, .runs = 2}));
  a.invalid("sweep_particles", input::zero, "options.runs = 0", "sweep_particles", "options.runs must be positive, got 0",
            sweep(sweep_options{.particles = {4}, .runs = 0}));
  a.runtime("write_csv_file", input::wrong_file, "a path in a missing directory", "write_csv_file",
            "path must name a file in an existing, writable directory", [] {
              const auto path = std::filesystem::temp_directory_path() / "tsmc_no_such_dir_matrix" / "x.csv";
              write_csv_file(path.string(), std::span<const bounds_report>());
            });

  // exact samplers
  a.invalid("targeted_sampler::targeted_sampler", input::zero, "horizon = 0", "targeted_sampler::targeted_sampler",
            "horizon must be positive, got 0", [] {
              bounds_fixture f;
              targeted_sampler<enumeration_sampler> t(f.exact, f.p.problem.prompt, 0);
            });
  a.invalid("single_sample_sampler::single_sample_sampler", input::empty, "sample = {}",
            "single_sample_sampler::single_sample_sampler", "sample.size() must be in [1, horizon = 3], got 0",
            [] { single_sample_sampler s(token_sequence{}, token_sequence{1}, 3); });
  a.invalid("single_sample_sampler::single_sample_sampler", input::too_large, "sample of 4 tokens, horizon 3",
            "single_sample_sampler::single_sample_sampler", "sample.size() must be in [1, horizon = 3], got 4",
            [] { single_sample_sampler s(token_sequence{0, 0, 0, 0}, token_sequence{1}, 3); });

  const std::string rs = "rejection_sampler::rejection_sampler";
  const auto rejection = [](rejection_options o, token_sequence prompt = {1, 0}) {
    return [o, prompt] {
      bounds_fixture f;
      rejection_sampler<tabular_model, random_potential> s(f.p.model, f.p.potential, prompt, o);
    };
  };
  a.invalid(rs, input::zero, "options.horizon = 0", rs, "options.horizon must be positive, got 0",
            rejection(rejection_options{.horizon = 0}));
  a.invalid(rs, input::zero, "options.batch = 0", rs, "options.batch must be positive, got 0",
            rejection(rejection_options{.horizon = 3, .batch = 0}));
  a.invalid(rs, input::zero, "options.budget = 0", rs, "options.budget must be positive, got 0",
            rejection(rejection_options{.horizon = 3, .budget = 0}));
  a.invalid(rs, input::nan, "options.log_bound = NaN", rs, "options.log_bound must be finite, got nan",
            rejection(rejection_options{.horizon = 3, .log_bound = nan}));
  a.invalid(rs, input::pos_inf, "options.log_bound = +inf", rs, "options.log_bound must be finite, got inf",
            rejection(rejection_options{.horizon = 3, .log_bound = inf}));
  a.invalid(rs, input::too_large, "options.end_token = 3, V = 3", rs, "options.end_token must be in [0, 3), got 3",
            rejection(rejection_options{.horizon = 3, .end_token = 3}));
  a.invalid(rs, input::too_large, "prompt = {1, 9}", rs, "prompt[1] must be in [0, 3), got 9",
            rejection(rejection_options{.horizon = 3}, {1, 9}));
  a.invalid(rs, input::negative, "prompt = {-1}", rs, "prompt[0] must be in [0, 3), got -1",
            rejection(rejection_options{.horizon = 3}, {-1}));
  a.invalid("class_rejection_sampler", input::zero, "options.horizon = 0", rs, "options.horizon must be positive, got 0", [] {
    bounds_fixture f;
    (void)class_rejection_sampler(f.p.model, f.p.potential, f.p.problem.prompt, rejection_options{});
  });
  a.invalid("indicator_rejection_sampler", input::zero, "options.batch = 0", rs, "options.batch must be positive, got 0", [] {
    bounds_fixture f;
    (void)indicator_rejection_sampler(f.p.model, f.p.potential, f.p.problem.prompt,
                                      rejection_options{.horizon = 3, .batch = 0});
  });
  a.runtime("rejection_sampler::sample", input::pos_inf, "log phi = +inf", "rejection_sampler::sample",
            "log phi of a draw from p0 must not be NaN or +inf, got inf", [] {
              bounds_fixture f;
              constant_potential phi(inf);
              rejection_sampler<tabular_model, constant_potential> s(f.p.model, phi, f.p.problem.prompt,
                                                                     rejection_options{.horizon = 3, .batch = 4});
              (void)s.sample(f.rng);
            });
  a.runtime("rejection_sampler::sample", input::too_large, "log phi = 1 > log M = 0 (class probability)",
            "rejection_sampler::sample", "must not exceed the bound log M = 0", [] {
              bounds_fixture f;
              constant_potential phi(1.0);
              auto s = class_rejection_sampler(f.p.model, phi, f.p.problem.prompt,
                                               rejection_options{.horizon = 3, .batch = 4});
              (void)s.sample(f.rng);
            });
  a.runtime("rejection_sampler::sample", input::too_large, "log phi = -0.5 with the indicator rule",
            "rejection_sampler::sample", "must be 0 or -inf for acceptance_rule::indicator", [] {
              bounds_fixture f;
              constant_potential phi(-0.5);
              auto s = indicator_rejection_sampler(f.p.model, phi, f.p.problem.prompt,
                                                   rejection_options{.horizon = 3, .batch = 4});
              (void)s.sample(f.rng);
            });
  a.runtime("rejection_sampler::sample", input::neg_inf, "log phi = -inf everywhere, budget 16",
            "rejection_sampler::sample", "draws exhausted the budget of 16 draws", [] {
              bounds_fixture f;
              constant_potential phi(-inf);
              auto s = indicator_rejection_sampler(f.p.model, phi, f.p.problem.prompt,
                                                   rejection_options{.horizon = 3, .batch = 4, .budget = 16});
              (void)s.sample(f.rng);
            });

  const std::string ij = "infilling_joint_sampler::infilling_joint_sampler";
  const auto joint = [](infilling_options o, token_sequence prompt = {1}) {
    return [o, prompt] {
      bounds_fixture f;
      infilling_joint_sampler<tabular_model> s(f.p.model, prompt, o);
    };
  };
  a.invalid(ij, input::zero, "options.horizon = 0", ij, "options.horizon must be positive, got 0",
            joint(infilling_options{.horizon = 0, .continuation = 2}));
  a.invalid(ij, input::zero, "options.continuation = 0", ij, "options.continuation must be positive, got 0",
            joint(infilling_options{.horizon = 2, .continuation = 0}));
  a.invalid(ij, input::zero, "options.batch = 0", ij, "options.batch must be positive, got 0",
            joint(infilling_options{.horizon = 2, .continuation = 2, .batch = 0}));
  a.invalid(ij, input::too_large, "prompt = {4}, V = 3", ij, "prompt[0] must be in [0, 3), got 4",
            joint(infilling_options{.horizon = 2, .continuation = 2}, {4}));
  const std::string ip = "infilling_potential::infilling_potential";
  a.invalid(ip, input::empty, "observation = {}", ip, "observation.size() must be positive, got 0", [] {
    bounds_fixture f;
    infilling_potential<tabular_model> phi(f.p.model, token_sequence{1}, token_sequence{});
  });
  a.invalid(ip, input::too_large, "observation = {0, 3}", ip, "observation[1] must be in [0, 3), got 3", [] {
    bounds_fixture f;
    infilling_potential<tabular_model> phi(f.p.model, token_sequence{1}, token_sequence{0, 3});
  });
  a.invalid(ip, input::negative, "prompt = {-4}", ip, "prompt[0] must be in [0, 3), got -4", [] {
    bounds_fixture f;
    infilling_potential<tabular_model> phi(f.p.model, token_sequence{-4}, token_sequence{0});
  });
  a.invalid("infilling_potential::log_potential", input::mismatched, "2 sequences, out.size() = 1",
            "infilling_potential::log_potential", "out.size() must equal sequences.size() 2, got 1", [] {
              bounds_fixture f;
              infilling_potential<tabular_model> phi(f.p.model, token_sequence{1}, token_sequence{0});
              const std::vector<token_sequence> s{{0}, {1}};
              std::vector<double> out(1);
              phi.log_potential(s, out);
            });
});

}  // namespace
