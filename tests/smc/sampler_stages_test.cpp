// The sampler's stages as learners and users see them: forced runs reproduce a run's weights and
// log q exactly, on_weights reports the weights that target pi_t, the opt-in row-sum check, a
// potential that never writes its output, and a run that resampling leaves with only finished
// particles.
#include "smc/sampler_fixtures.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

using namespace tsmc_test;

namespace {

/// Keeps every step's report fields the tests compare.
struct report_log {
  struct step {
    std::vector<std::uint8_t> proposed;
    std::vector<token> tokens;
    std::vector<double> normalizers, target, weights, psi_chosen;
  };
  std::vector<step> steps;
  void on_weights(const weights_report& r) {
    step s{{r.proposed.begin(), r.proposed.end()}, {r.tokens.begin(), r.tokens.end()},
           {r.log_normalizers.begin(), r.log_normalizers.end()}, {r.log_target_weights.begin(), r.log_target_weights.end()},
           {r.log_weights.begin(), r.log_weights.end()}, std::vector<double>(r.tokens.size(), 0.0)};
    if (r.log_psi != nullptr && !r.psi_is_phi)
      for (std::size_t k = 0; k < s.tokens.size(); ++k) s.psi_chosen[k] = (*r.log_psi)(static_cast<Eigen::Index>(k), s.tokens[k]);
    steps.push_back(std::move(s));
  }
};

/// A model that writes probabilities where log-probabilities are due.
struct probability_model : tabular_model {
  using tabular_model::tabular_model;
  void log_probs(log_prob_ref out) {
    tabular_model::log_probs(out);
    out = out.array().exp().matrix();
  }
};

/// A potential that forgets to write its output.
struct silent_potential {
  void log_potential(std::span<const token_sequence>, std::span<double>) const {}
};

/// psi = 0 for every first token except the end token 2: every particle that does not end at once dies.
struct end_or_die_twist {
  [[nodiscard]] std::size_t vocab_size() const { return 3; }
  template <class M>
  void log_twist(const step_context<M>& ctx, log_prob_ref out) const {
    out.setZero();
    if (ctx.step == 1) out.leftCols(2).setConstant(-std::numeric_limits<double>::infinity());
  }
};

}  // namespace

TEST_CASE("run_forced along a run's own sequences gives its weights and log q exactly", "[sampler]") {
  for (const bool end_token : {false, true}) {
    for (const proposal_type proposal : {proposal_type::twisted, proposal_type::base}) {
      INFO("end token " << end_token << ", proposal " << static_cast<int>(proposal));
      small_problem p(end_token, 19);
      random_twist twist(5, 0.8);
      twisted_smc smc(p.model, twist, p.potential, p.options(32, proposal), multinomial{}, never);
      default_engine rng(8);
      const smc_result run = smc.run(p.problem.prompt, rng);
      const smc_result forced = smc.run_forced(p.problem.prompt, run.sequences, rng);
      CHECK(forced.sequences == run.sequences);
      CHECK(forced.log_weights == run.log_weights);
      CHECK(forced.log_proposal == run.log_proposal);
      CHECK(forced.log_z == Approx(run.log_z).epsilon(1e-14));
      // q(s) of the forced run is the proposal's exact probability of the sequence.
      if (proposal == proposal_type::base)
        for (std::size_t k = 0; k < run.sequences.size(); ++k) {
          std::vector<double> row(3);
          double log_p0 = 0.0;
          for (std::size_t i = 0; i < run.sequences[k].size(); ++i) {
            p.model.next_log_probs(p.problem.prompt, std::span<const token>(run.sequences[k].data(), i), row);
            log_p0 += row[static_cast<std::size_t>(run.sequences[k][i])];
          }
          CHECK(forced.log_proposal[k] == Approx(log_p0).epsilon(1e-12));
        }
    }
  }
  small_problem p(true);
  no_twist none;
  twisted_smc smc(p.model, none, p.potential, p.options(4, proposal_type::base));
  default_engine rng(1);
  CHECK_THROWS_WITH(smc.run_forced(p.problem.prompt, std::vector<token_sequence>{}, rng),
                    Catch::Contains("run_forced") && Catch::Contains("sequences.size()"));
  const std::vector<token_sequence> unfinished{{0, 1, 2}, {0, 1}};
  CHECK_THROWS_WITH(smc.run_forced(p.problem.prompt, unfinished, rng),
                    Catch::Contains("sequences[1]") && Catch::Contains("end token"));
  const std::vector<token_sequence> out_of_range{{0, 7, 2}};
  CHECK_THROWS_WITH(smc.run_forced(p.problem.prompt, out_of_range, rng), Catch::Contains("sequences[0]"));
}

TEST_CASE("on_weights: the weights that target pi_t telescope from the previous step", "[sampler]") {
  small_problem p(true, 21);
  random_twist twist(6, 0.9);
  twisted_smc smc(p.model, twist, p.potential, p.options(64, proposal_type::twisted), multinomial{}, never);
  default_engine rng(3);
  report_log log;
  const smc_result r = smc.run(p.problem.prompt, rng, log);
  REQUIRE(log.steps.size() == r.steps);
  std::size_t checked = 0;
  for (std::size_t i = 0; i < log.steps.size(); ++i) {
    const auto& s = log.steps[i];
    for (std::size_t k = 0; k < 64; ++k) {
      if (!s.proposed[k]) {
        CHECK(s.target[k] == s.weights[k]);  // finished earlier: its target is p0 phi, its weight unchanged
        continue;
      }
      // Eq. 15: log W_{t-1} + log Z^pi_t - log psi_{t-1}(s_{1:t-1})
      const double previous_weight = i == 0 ? 0.0 : log.steps[i - 1].weights[k];
      const double previous_psi = i == 0 ? 0.0 : log.steps[i - 1].psi_chosen[k];
      CHECK(s.target[k] == Approx(previous_weight + s.normalizers[k] - previous_psi).margin(1e-12));
      ++checked;
    }
  }
  CHECK(checked > 100);
}

TEST_CASE("check_normalization names a model that writes probabilities; the first row is checked by default; "
          "opted out, the run goes on",
          "[sampler]") {
  small_problem p(false);
  probability_model model(3, 7, 1.0);
  no_twist none;
  default_engine rng(2);
  smc_options options = p.options(8, proposal_type::base);
  options.check_normalization = true;
  twisted_smc checked(model, none, p.potential, options);
  CHECK_THROWS_WITH(checked.run(p.problem.prompt, rng),
                    Catch::Contains("step 1") && Catch::Contains("particle 0") && Catch::Contains("must be 1") &&
                        Catch::Contains("probabilities instead of log-probabilities"));
  options.check_normalization = false;
  twisted_smc first_row(model, none, p.potential, options);  // the first row is checked by default
  CHECK_THROWS_WITH(first_row.run(p.problem.prompt, rng),
                    Catch::Contains("step 1") && Catch::Contains("particle 0") && Catch::Contains("must be 1"));
  options.check_first_row = false;  // opted out explicitly: the run goes on
  twisted_smc unchecked(model, none, p.potential, options);
  CHECK_NOTHROW(unchecked.run(p.problem.prompt, rng));
  options.check_normalization = true;
  twisted_smc fine(p.model, none, p.potential, options);
  CHECK_NOTHROW(fine.run(p.problem.prompt, rng));
}

TEST_CASE("a potential that never writes its output is named, not read as phi = 1", "[sampler]") {
  small_problem p(false);
  no_twist none;
  silent_potential silent;
  twisted_smc smc(p.model, none, silent, p.options(4, proposal_type::base));
  default_engine rng(2);
  CHECK_THROWS_WITH(smc.run(p.problem.prompt, rng),
                    Catch::Contains("log phi of particle") && Catch::Contains("was `out` written"));
}

TEST_CASE("the model is asked nothing after a resampling that leaves only finished particles", "[sampler]") {
  small_problem p(true, 3, 4);
  end_or_die_twist twist;
  twisted_smc smc(p.model, twist, p.potential, p.options(64, proposal_type::base), multinomial{}, always);
  default_engine rng(5);
  const smc_result r = smc.run(p.problem.prompt, rng);
  // Step 1: some particles end (weight phi), the others have psi_1 = 0; resampling keeps only the
  // finished ones, and the model is asked nothing more.
  CHECK(r.steps == 1);
  CHECK(p.model.log_prob_calls() == 1);
  CHECK(r.resampled.size() == 1);
  CHECK(r.resampled[0] == 1);
  for (const auto& s : r.sequences) CHECK(s == token_sequence{2});
  CHECK(std::isfinite(r.log_z));
}
