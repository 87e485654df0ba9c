// Twist-learning objectives against exact answers: the CTL update with exact expectations equals
// minus the gradient of sum_t KL(sigma_t || pi_t) (finite differences of the enumerated KLs);
// every objective's update is the gradient of its own loss on a fixed batch; reusing the sampling
// run's records gives the same update as evaluating the batch again; the tabular twist.
#include "learning/learning_fixtures.hpp"

#include <tsmc/testing/proposal_kl.hpp>
#include <tsmc/twists/features.hpp>
#include <tsmc/twists/mlp_twist.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <string>
#include <vector>

using namespace tsmc_test;

namespace {

/// sum_t KL(sigma_t || pi_t) by enumeration, for the twist's current parameters (Section 4.1).
/// States at step t: the prefix s_{1:t} of a sequence at least t long (pi mass p0 psi_t), or a
/// sequence that finished before t (pi mass p0 phi).
template <class LogPsi>
double exact_ctl_objective(const learning_toy& toy, LogPsi&& log_psi) {
  const auto& sol = toy.solution;
  const auto sequences = sol.sequences();
  const auto log_sigma = sol.log_sigma();
  const auto log_phi = sol.log_phi();
  const auto log_p0 = sol.log_p0_of_sequences();
  double total = 0.0;
  for (std::size_t t = 1; t <= sol.horizon(); ++t) {
    std::map<token_sequence, std::pair<double, double>> states;  // state -> (pi~ mass, sigma mass)
    for (std::size_t i = 0; i < sequences.size(); ++i) {
      const auto& s = sequences[i];
      if (s.size() >= t) {
        const token_sequence prefix(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(t));
        auto& st = states[prefix];
        st.first += std::exp(log_p0[i]);  // summed over completions: p0(prefix)
        st.second += std::exp(log_sigma[i]);
      } else {
        auto& st = states[s];
        st.first += std::exp(log_p0[i] + log_phi[i]);
        st.second += std::exp(log_sigma[i]);
      }
    }
    double z = 0.0;
    std::map<token_sequence, double> pi_mass;
    for (auto& [state, masses] : states) {
      const bool generating = state.size() == t && !(state.size() < t);
      const bool finished_before = state.size() < t;
      double mass = masses.first;
      if (generating && !finished_before) mass *= std::exp(log_psi(state));
      pi_mass[state] = mass;
      z += mass;
    }
    for (auto& [state, masses] : states)
      if (masses.second > 0.0) total += masses.second * (std::log(masses.second) - std::log(pi_mass[state] / z));
  }
  return total;
}

}  // namespace

TEST_CASE("tabular_twist: one parameter per prefix, recorded rows, dense and sparse accumulation", "[learning]") {
  tabular_twist twist(3, 2);
  CHECK(twist.size() == 3 + 9);
  CHECK(twist.index_of(token_sequence{2}) == 2);
  CHECK(twist.index_of(token_sequence{1, 2}) == 3 + 5);
  twist.set_log_value(token_sequence{1, 2}, 0.5);
  CHECK(twist.log_value(token_sequence{1, 2}) == 0.5);

  tabular_model model(3, 1);
  const std::vector<token_sequence> prefixes{{1}, {0}};
  const std::vector<std::uint8_t> active{1, 0};
  const token_sequence prompt{0};
  const step_context<tabular_model> ctx{2, 2, prompt, prefixes, active, model};
  log_prob_matrix out(2, 3);
  twist.set_recording(true);
  twist.log_twist(ctx, out);
  CHECK(out(0, 2) == 0.5);
  CHECK(out.row(1).isZero());
  CHECK(twist.has_record(2));
  CHECK_FALSE(twist.has_record(1));

  log_prob_matrix c = log_prob_matrix::Constant(2, 3, 1.0);
  twist.zero_gradient();
  twist.accumulate_dense(2, c);
  const std::vector<sparse_coefficient> e{{0, 2, 0.25}};
  twist.accumulate_sparse(2, e);
  CHECK(twist.gradient()[3 + 3] == 1.0);
  CHECK(twist.gradient()[3 + 5] == 1.25);
  CHECK(twist.gradient().sum() == 3.25);  // the finished row contributes nothing

  CHECK_THROWS_WITH(twist.accumulate_dense(1, c), Catch::Contains("step") && Catch::Contains("was not recorded"));
  // An entry on a finished row contributes nothing, as in accumulate_dense (trainable.hpp); a row
  // outside the record is an error.
  const std::vector<sparse_coefficient> finished_row{{1, 0, 1.0}};
  twist.accumulate_sparse(2, finished_row);
  CHECK(twist.gradient().sum() == 3.25);
  const std::vector<sparse_coefficient> outside{{2, 0, 1.0}};
  CHECK_THROWS_WITH(twist.accumulate_sparse(2, outside), Catch::Contains("entry.particle"));
  CHECK_THROWS_WITH(twist.accumulate_dense(2, log_prob_matrix::Zero(3, 3)), Catch::Contains("coefficients.rows()"));
  CHECK_THROWS_WITH(tabular_twist(0, 2), Catch::Contains("vocab_size"));
  CHECK_THROWS_WITH(tabular_twist(1000, 4), Catch::Contains("2^24"));
  const step_context<tabular_model> late{3, 3, prompt, prefixes, active, model};
  CHECK_THROWS_WITH(twist.log_twist(late, out), Catch::Contains("ctx.step"));
}

TEST_CASE("CTL with exact expectations is minus the gradient of sum_t KL(sigma_t || pi_t)", "[learning]") {
  for (const bool end_token : {false, true}) {
    INFO("end token " << end_token);
    learning_toy toy(end_token, 11);
    tabular_twist twist(toy.problem.vocab_size, toy.problem.horizon);
    randomize(twist, 5, 0.7);
    auto lp = toy.learning(twist, toy.solution.sequences().size());
    default_engine rng(1);

    // Every sequence once; negatives weighted by p0(s) (so each prefix carries its p0 mass), positives by sigma(s).
    const std::vector<token_sequence> all(toy.solution.sequences().begin(), toy.solution.sequences().end());
    const auto log_p0 = toy.solution.log_p0_of_sequences();
    const auto log_phi = toy.solution.log_phi();
    const auto log_sigma = toy.solution.log_sigma();
    tsmc::ctl<> objective;
    twist.zero_gradient();
    const recorded_pass pass = lp.evaluate(std::span<const token_sequence>(all), true, rng);
    std::vector<std::vector<double>> constants(pass.steps.size());
    for (std::size_t i = 0; i < pass.steps.size(); ++i)
      for (std::size_t k = 0; k < all.size(); ++k)
        constants[i].push_back(all[k].size() > i ? log_p0[k] : log_p0[k] + log_phi[k]);
    std::vector<double> sigma(all.size());
    for (std::size_t k = 0; k < all.size(); ++k) sigma[k] = std::exp(log_sigma[k]);
    std::vector<sparse_coefficient> scratch;
    const double surrogate = objective.accumulate_negatives(twist, pass, constants) +
                             tsmc::detail::accumulate_positive_phase(twist, pass, sigma, scratch);
    const Eigen::VectorXd gradient = twist.gradient();

    const double h = 1e-5;
    double worst = 0.0;
    for (Eigen::Index i = 0; i < twist.values().size(); ++i) {
      const double saved = twist.values()[i];
      twist.values()[i] = saved + h;
      const double up = exact_ctl_objective(toy, [&](const token_sequence& s) { return twist.log_value(s); });
      twist.values()[i] = saved - h;
      const double down = exact_ctl_objective(toy, [&](const token_sequence& s) { return twist.log_value(s); });
      twist.values()[i] = saved;
      worst = std::max(worst, std::abs((up - down) / (2 * h) - gradient[i]));
    }
    INFO("surrogate " << surrogate << ", exact " << exact_ctl_objective(toy, [&](const token_sequence& s) { return twist.log_value(s); }));
    CHECK(worst < 1e-6);
    CHECK(gradient.norm() > 1e-2);  // the check is not vacuous
  }
}

TEST_CASE("CTL with exact expectations on an MLP head is minus the gradient of sum_t KL(sigma_t || pi_t)", "[learning]") {
  learning_toy toy(true, 13);
  mlp_twist twist(prefix_features({.vocab_size = 3, .embedding_size = 4, .window = 1, .init_scale = 0.5, .seed = 3}),
                  {.vocab_size = 3, .max_steps = 3, .hidden_layers = 1, .width = 5, .seed = 4});
  {  // a non-zero output layer, so that every block has a gradient
    default_engine engine(17);
    for (auto& block : twist.parameters())
      for (Eigen::Index i = 0; i < block.values.size(); ++i) block.values[i] = 0.4 * standard_normal(engine);
  }
  const std::vector<token_sequence> all(toy.solution.sequences().begin(), toy.solution.sequences().end());
  auto lp = toy.learning(twist, all.size());
  default_engine rng(1);
  const auto log_p0 = toy.solution.log_p0_of_sequences();
  const auto log_phi = toy.solution.log_phi();
  const auto log_sigma = toy.solution.log_sigma();
  tsmc::ctl<> objective;
  twist.zero_gradient();
  const recorded_pass pass = lp.evaluate(std::span<const token_sequence>(all), true, rng);
  std::vector<std::vector<double>> constants(pass.steps.size());
  for (std::size_t i = 0; i < pass.steps.size(); ++i)
    for (std::size_t k = 0; k < all.size(); ++k)
      constants[i].push_back(all[k].size() > i ? log_p0[k] : log_p0[k] + log_phi[k]);
  std::vector<double> sigma(all.size());
  for (std::size_t k = 0; k < all.size(); ++k) sigma[k] = std::exp(log_sigma[k]);
  std::vector<sparse_coefficient> scratch;
  (void)objective.accumulate_negatives(twist, pass, constants);
  (void)tsmc::detail::accumulate_positive_phase(twist, pass, sigma, scratch);
  twist.set_recording(false);

  // log psi_t(s_{1:t}) of one prefix, through the head itself (prefix_features reads only the prefixes).
  const std::vector<std::uint8_t> one_active{1};
  auto log_psi = [&](const token_sequence& prefix) {
    const std::vector<token_sequence> parent{token_sequence(prefix.begin(), prefix.end() - 1)};
    const step_context<tabular_model> ctx{prefix.size(), 3, toy.problem.prompt, parent, one_active, toy.model};
    log_prob_matrix out(1, 3);
    twist.log_twist(ctx, out);
    return out(0, prefix.back());
  };
  const double h = 1e-6;
  double worst = 0.0, norm = 0.0;
  std::size_t checked = 0;
  for (auto& block : twist.parameters()) {
    for (Eigen::Index i = 0; i < block.values.size(); ++i) {
      const double saved = block.values[i];
      block.values[i] = saved + h;
      const double up = exact_ctl_objective(toy, log_psi);
      block.values[i] = saved - h;
      const double down = exact_ctl_objective(toy, log_psi);
      block.values[i] = saved;
      worst = std::max(worst, std::abs((up - down) / (2 * h) - block.gradient[i]));
      norm += block.gradient[i] * block.gradient[i];
      ++checked;
    }
  }
  CHECK(worst < 1e-6);
  CHECK(std::sqrt(norm) > 1e-2);
  CHECK(checked > 80);
}

TEST_CASE("each objective's update is the gradient of its own loss on a fixed batch", "[learning]") {
  learning_toy toy(true, 23);
  default_engine rng(3);

  auto check = [&](auto& twist, auto& objective, auto& lp, const char* name) {
    INFO(name);
    twist.zero_gradient();  // before sample: CTL's sample accumulates its negative phase while it runs
    auto batch = objective.sample(lp, rng);
    const double loss = objective.accumulate(lp, batch, rng).loss;  // fresh: reuses the sampling run
    auto blocks = twist.parameters();
    const Eigen::VectorXd fresh_gradient = blocks[0].gradient;
    twist.zero_gradient();
    const double again = objective.accumulate(lp, batch, rng).loss;  // evaluated again along the batch
    const Eigen::VectorXd gradient = blocks[0].gradient;
    CHECK(again == Approx(loss).epsilon(1e-12));
    CHECK((gradient - fresh_gradient).cwiseAbs().maxCoeff() < 1e-12);
    const double h = 1e-5;
    double worst = 0.0;
    for (Eigen::Index i = 0; i < blocks[0].values.size(); ++i) {
      const double saved = blocks[0].values[i];
      blocks[0].values[i] = saved + h;
      const double up = objective.accumulate(lp, batch, rng).loss;
      blocks[0].values[i] = saved - h;
      const double down = objective.accumulate(lp, batch, rng).loss;
      blocks[0].values[i] = saved;
      worst = std::max(worst, std::abs((up - down) / (2 * h) - gradient[i]));
    }
    CHECK(worst < 1e-6);
    CHECK(gradient.norm() > 1e-3);
  };

  {
    tabular_twist twist(toy.problem.vocab_size, toy.problem.horizon);
    randomize(twist, 8, 0.5);
    auto lp = toy.learning(twist, 16);
    tsmc::ctl<> approximate;
    check(twist, approximate, lp, "CTL, approximate positives");
    auto exact = enumeration_sampler(toy.solution);
    tsmc::ctl exact_ctl(exact, 8);
    check(twist, exact_ctl, lp, "CTL, exact positives");
    tsmc::rl rl_objective;
    check(twist, rl_objective, lp, "RL");
    tsmc::sixo<> sixo_objective;
    check(twist, sixo_objective, lp, "SIXO");
    tsmc::sixo exact_sixo(exact, 8);
    check(twist, exact_sixo, lp, "SIXO, exact positives");
    tsmc::dpg<> dpg_objective;
    check(twist, dpg_objective, lp, "DPG");
    tsmc::dpg exact_dpg(exact, 8);
    check(twist, exact_dpg, lp, "DPG, exact samples");
  }
  {
    // FUDGE needs phi in [0, 1]: a class probability.
    learning_toy_t<soft_classifier> classifier_toy(true, 29, soft_classifier::random(3, 4, 1.5));
    sigmoid_twist<tabular_twist> twist(tabular_twist(3, classifier_toy.problem.horizon));
    randomize(twist.inner(), 9, 0.5);
    auto lp = classifier_toy.learning(twist, 16);
    tsmc::fudge objective;
    check(twist, objective, lp, "FUDGE");
  }
}

TEST_CASE("CTL's streamed negative phase equals the recorded pass's, bit for bit", "[learning]") {
  // sample() accumulates the negatives during the run (no K x V rows kept); the recorded path keeps
  // the rows of the same run (same seed) and accumulates afterwards (accumulate_negatives).
  auto compare = [](auto& twist, auto& objective, auto& lp, const char* name) {
    INFO(name);
    auto gradient_of = [&] {
      Eigen::VectorXd g(0);
      for (auto& block : twist.parameters()) {
        g.conservativeResize(g.size() + block.gradient.size());
        g.tail(block.gradient.size()) = block.gradient;
      }
      return g;
    };
    twist.zero_gradient();
    default_engine rng_streamed(41);
    auto streamed = objective.sample(lp, rng_streamed);
    REQUIRE(streamed.streamed_negative_loss.has_value());
    for (const auto& s : streamed.negatives.steps) CHECK(s.proposal.size() == 0);  // no rows kept
    const double streamed_negatives = *streamed.streamed_negative_loss;
    const Eigen::VectorXd streamed_negative_gradient = gradient_of();
    const double streamed_loss = objective.accumulate(lp, streamed, rng_streamed).loss;
    const Eigen::VectorXd streamed_gradient = gradient_of();

    twist.zero_gradient();
    default_engine rng_recorded(41);
    std::remove_cvref_t<decltype(streamed)> recorded;
    recorded.negatives = lp.sample(proposal_type::twisted, true, rng_recorded);
    for (const auto& s : recorded.negatives.steps) {
      auto& c = recorded.log_constants.emplace_back();
      for (std::size_t k = 0; k < s.proposed.size(); ++k)
        c.push_back(s.proposed[k] ? (s.log_normalizers[k] > neg_inf ? s.log_target_weights[k] - s.log_normalizers[k]
                                                                     : neg_inf)
                                  : s.log_target_weights[k]);
    }
    REQUIRE(recorded.negatives.result.sequences == streamed.negatives.result.sequences);
    CHECK(recorded.log_constants == streamed.log_constants);
    const double log_k = std::log(static_cast<double>(recorded.negatives.result.sequences.size()));
    const double recorded_negatives =
        objective.accumulate_negatives(twist, recorded.negatives, recorded.log_constants, log_k);
    const Eigen::VectorXd recorded_negative_gradient = gradient_of();
    CHECK(recorded_negatives == streamed_negatives);
    CHECK(recorded_negative_gradient == streamed_negative_gradient);
    CHECK(recorded_negative_gradient.norm() > 1e-3);  // not vacuous

    // The whole update: the recorded batch through accumulate (fresh, rows kept, nothing streamed).
    twist.zero_gradient();
    default_engine rng_whole(41);
    recorded.negatives = lp.sample(proposal_type::twisted, true, rng_whole);
    recorded.positives = streamed.positives;
    recorded.positive_weights = streamed.positive_weights;
    recorded.fresh = true;
    const double recorded_loss = objective.accumulate(lp, recorded, rng_whole).loss;
    CHECK(recorded_loss == streamed_loss);
    CHECK(gradient_of() == streamed_gradient);
  };
  for (const bool end_token : {false, true}) {
    INFO("end token " << end_token);
    learning_toy toy(end_token, 43);
    {
      tabular_twist twist(toy.problem.vocab_size, toy.problem.horizon);
      randomize(twist, 12, 0.6);
      auto lp = toy.learning(twist, 32);
      tsmc::ctl<> approximate;
      compare(twist, approximate, lp, "tabular, approximate positives");
      auto exact = enumeration_sampler(toy.solution);
      tsmc::ctl exact_ctl(exact, 8);
      compare(twist, exact_ctl, lp, "tabular, exact positives");
    }
    {
      mlp_twist twist(prefix_features({.vocab_size = 3, .embedding_size = 4, .window = 1, .init_scale = 0.5, .seed = 3}),
                      {.vocab_size = 3, .max_steps = 3, .hidden_layers = 1, .width = 5, .seed = 4});
      default_engine engine(19);
      for (auto& block : twist.parameters())
        for (Eigen::Index i = 0; i < block.values.size(); ++i) block.values[i] = 0.4 * standard_normal(engine);
      auto lp = toy.learning(twist, 32);
      tsmc::ctl<> approximate;
      compare(twist, approximate, lp, "MLP head, approximate positives");
    }
    {
      // A potential with its next-token form: at t = T the sampler uses phi for psi_T, and that
      // step is not trained (psi_is_phi).
      tabular_twist twist(toy.problem.vocab_size, toy.problem.horizon);
      randomize(twist, 13, 0.6);
      random_potential potential(143, 1.0);
      learning_problem lp(toy.model, twist, potential, std::span<const token>(toy.problem.prompt),
                          learning_options{.batch = 32, .horizon = toy.problem.horizon, .end_token = toy.problem.end_token});
      tsmc::ctl<> approximate;
      compare(twist, approximate, lp, "tabular, next-token potential");
    }
  }
}

namespace {

/// A tabular twist holding log psi*: log sigma(s_{1:t}) + log Z - log p0(s_{1:t}) on every prefix of the tree.
tabular_twist optimal_tabular_twist(const learning_toy& toy) {
  const auto& sol = toy.solution;
  tabular_twist twist(sol.vocab_size(), sol.horizon());
  token_sequence prefix;
  auto visit = [&](auto&& self, double log_p0) -> void {
    std::vector<double> row(sol.vocab_size());  // one per level: the recursion below reuses none
    toy.model.next_log_probs(toy.problem.prompt, prefix, row);
    for (token v = 0; v < static_cast<token>(row.size()); ++v) {
      prefix.push_back(v);
      const double lp = log_p0 + row[static_cast<std::size_t>(v)];
      twist.set_log_value(prefix, sol.log_prefix_marginal(prefix) + sol.log_z() - lp);
      const bool finished = prefix.size() == sol.horizon() || (toy.problem.end_token && v == *toy.problem.end_token);
      if (!finished) self(self, lp);
      prefix.pop_back();
    }
  };
  visit(visit, 0.0);
  return twist;
}

}  // namespace

TEST_CASE("RL's targets are the soft Bellman recursion: psi* has zero loss and zero gradient", "[learning]") {
  for (const bool end_token : {false, true}) {
    INFO("end token " << end_token);
    learning_toy toy(end_token, 31);
    tabular_twist twist = optimal_tabular_twist(toy);
    auto lp = toy.learning(twist, 64);
    default_engine rng(4);
    tsmc::rl objective;
    auto batch = objective.sample(lp, rng);
    twist.zero_gradient();
    const double loss = objective.accumulate(lp, batch, rng).loss;
    CHECK(loss < 1e-20);
    CHECK(twist.gradient().cwiseAbs().maxCoeff() < 1e-10);
    // A twist off psi* at one prefix of length 2 has a positive loss there.
    twist.set_log_value(batch.samples.result.sequences[0], 0.0);
    const token_sequence& s0 = batch.samples.result.sequences[0];
    twist.set_log_value(token_sequence(s0.begin(), s0.begin() + 1), twist.log_value(token_sequence(s0.begin(), s0.begin() + 1)) + 0.5);
    CHECK(objective.accumulate(lp, batch, rng).loss > 1e-3);
  }
}

TEST_CASE("exact_proposal_kls: 0 for the optimal twist, the enumerated KLs of p0 for the base proposal", "[learning]") {
  learning_toy toy(true, 37);
  tabular_twist optimal = optimal_tabular_twist(toy);
  twisted_smc twisted(toy.model, optimal, toy.potential,
                      smc_options{.particles = 1, .horizon = 3, .proposal = proposal_type::twisted, .end_token = 2});
  const exact_kls at_optimum = exact_proposal_kls(toy.solution, twisted);
  CHECK(std::abs(at_optimum.q_sigma) < 1e-12);
  CHECK(std::abs(at_optimum.sigma_q) < 1e-12);
  CHECK(at_optimum.q_mass == Approx(1.0).epsilon(1e-12));
  twisted_smc base(toy.model, optimal, toy.potential,
                   smc_options{.particles = 1, .horizon = 3, .proposal = proposal_type::base, .end_token = 2});
  const exact_kls of_p0 = exact_proposal_kls(toy.solution, base);
  CHECK(of_p0.sigma_q == Approx(toy.solution.kl_sigma_q(toy.model)).epsilon(1e-12));
  CHECK(of_p0.q_sigma == Approx(toy.solution.kl_q_sigma(toy.model)).epsilon(1e-12));
  CHECK(of_p0.sigma_q > 0.05);
  CHECK(of_p0.q_sigma > 0.05);
  CHECK(of_p0.sigma_q != Approx(of_p0.q_sigma).epsilon(1e-3));
  twisted_smc other_horizon(toy.model, optimal, toy.potential, smc_options{.particles = 1, .horizon = 2, .end_token = 2});
  CHECK_THROWS_WITH(exact_proposal_kls(toy.solution, other_horizon), Catch::Contains("horizon"));
}

TEST_CASE("sigmoid_twist: log psi = log sigmoid(g), gradients chained through sigmoid(-g)", "[learning]") {
  sigmoid_twist<tabular_twist> twist(tabular_twist(3, 2));
  randomize(twist.inner(), 12, 1.5);
  tabular_model model(3, 1);
  const std::vector<token_sequence> prefixes{{1}, {2}, {0}};
  const std::vector<std::uint8_t> active{1, 1, 0};
  const token_sequence prompt{0};
  const step_context<tabular_model> ctx{2, 2, prompt, prefixes, active, model};
  log_prob_matrix out(3, 3);
  twist.set_recording(true);
  twist.log_twist(ctx, out);
  CHECK(out(0, 1) == Approx(std::log(sigmoid(twist.inner().log_value(token_sequence{1, 1})))).epsilon(1e-14));
  CHECK(twist.recorded_logit(2, 1, 2) == twist.inner().log_value(token_sequence{2, 2}));

  log_prob_matrix c(3, 3);
  c << 0.3, -1.2, 0.7, 2.0, 0.1, -0.4, 9.0, 9.0, 9.0;  // the finished row's coefficients count for nothing
  const std::vector<sparse_coefficient> entries{{0, 2, 0.8}, {1, 0, -1.1}};
  twist.zero_gradient();
  twist.accumulate_dense(2, c);
  twist.accumulate_sparse(2, entries);
  const Eigen::VectorXd gradient = twist.inner().gradient();
  auto objective = [&] {  // sum C log psi over the active rows, plus the sparse entries
    log_prob_matrix o(3, 3);
    twist.set_recording(false);
    twist.log_twist(ctx, o);
    double total = 0.0;
    for (Eigen::Index k = 0; k < 2; ++k) total += (c.row(k).array() * o.row(k).array()).sum();
    for (const auto& e : entries) total += e.value * o(static_cast<Eigen::Index>(e.particle), e.candidate);
    return total;
  };
  const double h = 1e-6;
  for (Eigen::Index i = 0; i < gradient.size(); ++i) {
    const double saved = twist.inner().values()[i];
    twist.inner().values()[i] = saved + h;
    const double up = objective();
    twist.inner().values()[i] = saved - h;
    const double down = objective();
    twist.inner().values()[i] = saved;
    CHECK(gradient[i] == Approx((up - down) / (2 * h)).margin(1e-7));
  }
  CHECK(gradient.norm() > 0.1);
  CHECK_THROWS_WITH(twist.recorded_logit(1, 0, 0), Catch::Contains("was not recorded"));
}

TEST_CASE("objective losses equal their formulas on a batch (RL, SIXO, FUDGE) and CTL's constants", "[learning]") {
  learning_toy toy(true, 47);
  default_engine rng(6);
  // The potential has no next-token form: every step of a sequence is trained (n_k = its length).
  auto mean_over_steps = [&](const tabular_twist& w, const token_sequence& s, auto&& term) {
    double total = 0.0;
    for (std::size_t t = 1; t <= s.size(); ++t) total += term(w.log_value(token_sequence(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(t))), t);
    return total / static_cast<double>(s.size());
  };
  {
    tabular_twist twist(3, 3);
    randomize(twist, 2, 0.5);
    auto lp = toy.learning(twist, 16);
    tsmc::rl objective;
    auto b = objective.sample(lp, rng);
    const double loss = objective.accumulate(lp, b, rng).loss;
    double expected = 0.0;
    const auto& seqs = b.samples.result.sequences;
    for (std::size_t k = 0; k < seqs.size(); ++k)
      expected += mean_over_steps(twist, seqs[k], [&](double f, std::size_t t) {
        const double r = f - b.targets[t - 1][k];
        return 0.5 * r * r;
      });
    CHECK(loss == Approx(expected / static_cast<double>(seqs.size())).epsilon(1e-12));
  }
  {
    tabular_twist twist(3, 3);
    randomize(twist, 3, 0.5);
    auto lp = toy.learning(twist, 16);
    auto exact = enumeration_sampler(toy.solution);
    tsmc::sixo objective(exact, 8);
    auto b = objective.sample(lp, rng);
    const double loss = objective.accumulate(lp, b, rng).loss;
    double expected = 0.0;
    // SIXO and FUDGE divide by the horizon T = 3 (not by each sequence's own length).
    auto sum_over_steps = [&](const token_sequence& s, auto&& term) {
      return mean_over_steps(twist, s, term) * static_cast<double>(s.size()) / 3.0;
    };
    for (const auto& s : b.negatives)
      expected -= sum_over_steps(s, [](double f, std::size_t) { return log_sigmoid(-f); }) / 16.0;
    for (const auto& s : b.positives)
      expected -= sum_over_steps(s, [](double f, std::size_t) { return log_sigmoid(f); }) / 8.0;
    CHECK(loss == Approx(expected).epsilon(1e-12));
  }
  {
    learning_toy_t<soft_classifier> classifier_toy(true, 29, soft_classifier::random(3, 4, 1.5));
    sigmoid_twist<tabular_twist> twist(tabular_twist(3, 3));
    randomize(twist.inner(), 4, 0.5);
    auto lp = classifier_toy.learning(twist, 16);
    tsmc::fudge objective;
    auto b = objective.sample(lp, rng);
    const double loss = objective.accumulate(lp, b, rng).loss;
    double expected = 0.0;
    for (std::size_t k = 0; k < b.samples.size(); ++k) {
      const double y = b.labels[k];
      CHECK(y == Approx(std::exp(classifier_toy.potential.inner().log_class_probability(b.samples[k]))).epsilon(1e-12));
      expected += mean_over_steps(twist.inner(), b.samples[k], [y](double g, std::size_t) {
        return -(y * log_sigmoid(g) + (1 - y) * log_sigmoid(-g));
      }) * static_cast<double>(b.samples[k].size()) / 3.0;
    }
    CHECK(loss == Approx(expected / 16.0).epsilon(1e-12));
  }
  {
    // CTL's negatives at step t: a particle finished before t keeps its final weight (its pi_t mass is p0 phi / q).
    tabular_twist twist(3, 3);
    randomize(twist, 5, 0.5);
    auto lp = toy.learning(twist, 64);
    tsmc::ctl<> objective;
    auto b = objective.sample(lp, rng);
    std::size_t finished_earlier = 0;
    for (std::size_t i = 0; i < b.negatives.steps.size(); ++i)
      for (std::size_t k = 0; k < 64; ++k)
        if (!b.negatives.steps[i].proposed[k]) {
          CHECK(b.log_constants[i][k] == b.negatives.result.log_weights[k]);
          ++finished_earlier;
        }
    CHECK(finished_earlier > 10);
  }
}

TEST_CASE("exact_proposal_kls counts all of q's mass when psi_T = phi is zero for every candidate", "[learning]") {
  // phi = 1{contains 0 0}, with its next-token form: a prefix that cannot finish the pattern has
  // psi_T = 0 for every last token, and the sampler draws that token from p0.
  toy_problem problem{3, 3, token_sequence{1}, std::nullopt};
  tabular_model model(3, 9);
  pattern_indicator target(token_sequence{0, 0});
  const auto solution = enumerate(problem, model, target);
  tabular_twist flat(3, 3);
  twisted_smc smc(model, flat, target, smc_options{.particles = 1, .horizon = 3});
  const exact_kls kls = exact_proposal_kls(solution, smc);
  CHECK(kls.q_mass == Approx(1.0).epsilon(1e-12));
  CHECK(kls.q_sigma == std::numeric_limits<double>::infinity());
  CHECK(std::isfinite(kls.sigma_q));
}
