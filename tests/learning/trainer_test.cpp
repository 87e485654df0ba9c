// The training loop: CTL drives a tabular twist to the optimal twist psi* (up to a constant per
// t), the exact KL(sigma || q) of the learned twisted proposal drops at least 10x, and the loop's
// history, observers, checkpoints, evaluation and errors.
#include "learning/learning_fixtures.hpp"

#include <tsmc/learning/adam.hpp>
#include <tsmc/learning/parameter_io.hpp>
#include <tsmc/learning/trainer.hpp>
#include <tsmc/testing/proposal_kl.hpp>

#include <catch2/catch.hpp>

#include <filesystem>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

using namespace tsmc_test;

namespace {

/// V = 4, T = 4, no end token: 340 prefixes.
learning_toy four_by_four(std::uint64_t seed) {
  return learning_toy_t<>(false, seed, random_potential(seed + 100, 1.0), 4, 4, /*tabulate=*/true);
}

/// Exact KLs of the twisted proposal of a twist on a toy.
template <class Toy, class Twist>
exact_kls twisted_kls(Toy& toy, Twist& twist) {
  twisted_smc smc(toy.model, twist, toy.potential,
                  smc_options{.particles = 1, .horizon = toy.problem.horizon, .end_token = toy.problem.end_token});
  return exact_proposal_kls(toy.solution, smc);
}

/// Trains in three phases of decreasing learning rate (the last one small, so that the
/// parameters settle instead of jittering around the optimum).
template <class Problem, class Objective>
void train_in_phases(Problem& lp, Objective& objective, std::size_t updates_per_phase, double first_rate,
                     default_engine& rng) {
  for (double rate : {first_rate, first_rate / 5, first_rate / 25}) {
    adam optimizer(adam_options{.learning_rate = rate});
    (void)train(lp, objective, optimizer, training_options{.updates = updates_per_phase}, rng);
  }
}

/// log p0(prefix | prompt) of the toy's model.
double log_p0_of(const tabular_model& model, std::span<const token> prompt, const token_sequence& prefix) {
  std::vector<double> row(model.vocab_size());
  double total = 0.0;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    model.next_log_probs(prompt, std::span<const token>(prefix.data(), i), row);
    total += row[static_cast<std::size_t>(prefix[i])];
  }
  return total;
}

}  // namespace

TEST_CASE("CTL with exact positives drives a tabular twist to psi* up to a constant per t", "[learning]") {
  learning_toy toy = four_by_four(41);
  tabular_twist twist(4, 4);
  auto lp = toy.learning(twist, 256);
  auto exact = enumeration_sampler(toy.solution);
  tsmc::ctl objective(exact, 256);
  default_engine rng(2024);
  adam fast(adam_options{.learning_rate = 0.1});
  (void)train(lp, objective, fast, training_options{.updates = 400}, rng);
  // The iterates then jitter around psi*, by about 1 / sqrt(K sigma(s_{1:t})) per update for a
  // prefix s_{1:t}; their mean over the last 2400 updates is what is checked.
  adam slow(adam_options{.learning_rate = 0.04});
  (void)train(lp, objective, slow, training_options{.updates = 2400, .average_last = 2400}, rng);

  // log psi_t - log psi*_t must be one constant c_t +- tolerance on every prefix with sigma(s_{1:t}) >= floor:
  // 0.05 from sigma 1e-2 on, 0.125 from 1e-3 on (rarer prefixes get fewer samples; see the note in
  // docs/architecture.md, "Learning").
  const auto& sol = toy.solution;
  const double log_z = sol.log_z();
  for (const auto& [floor, tolerance] : {std::pair{1e-2, 0.05}, std::pair{1e-3, 0.125}}) {
    std::size_t checked = 0;
    for (std::size_t t = 1; t <= 4; ++t) {
      double low = std::numeric_limits<double>::infinity(), high = -low;
      token_sequence prefix(t, 0);
      for (std::size_t code = 0; code < (std::size_t{1} << (2 * t)); ++code) {
        for (std::size_t i = 0; i < t; ++i) prefix[i] = static_cast<token>((code >> (2 * (t - 1 - i))) & 3u);
        const double log_marginal = sol.log_prefix_marginal(prefix);
        if (log_marginal < std::log(floor)) continue;
        const double log_optimal = log_marginal + log_z - log_p0_of(toy.model, toy.problem.prompt, prefix);
        const double difference = twist.log_value(prefix) - log_optimal;
        low = std::min(low, difference);
        high = std::max(high, difference);
        ++checked;
      }
      INFO("sigma >= " << floor << ", t = " << t << ": log psi - log psi* in [" << low << ", " << high << "]");
      CHECK(high - low < 2 * tolerance);
    }
    CHECK(checked > (floor < 5e-3 ? 100u : 20u));
  }
}

TEST_CASE("CTL cuts the exact KL(sigma || q) of the twisted proposal at least 10x", "[learning]") {
  learning_toy toy = four_by_four(43);
  auto exact = enumeration_sampler(toy.solution);
  const exact_kls untrained = [&] {
    tabular_twist flat(4, 4);
    return twisted_kls(toy, flat);
  }();
  INFO("untrained KL(sigma || q) " << untrained.sigma_q << ", KL(q || sigma) " << untrained.q_sigma);
  REQUIRE(untrained.sigma_q > 0.2);
  default_engine rng(7);
  {
    tabular_twist twist(4, 4);
    auto lp = toy.learning(twist, 256);
    tsmc::ctl<> objective;
    train_in_phases(lp, objective, 300, 0.05, rng);
    const exact_kls learned = twisted_kls(toy, twist);
    INFO("approximate positives: KL(sigma || q) " << learned.sigma_q << ", KL(q || sigma) " << learned.q_sigma);
    CHECK(learned.sigma_q < untrained.sigma_q / 10);
  }
  {
    tabular_twist twist(4, 4);
    auto lp = toy.learning(twist, 256);
    tsmc::ctl objective(exact, 256);
    train_in_phases(lp, objective, 300, 0.05, rng);
    const exact_kls learned = twisted_kls(toy, twist);
    INFO("exact positives: KL(sigma || q) " << learned.sigma_q << ", KL(q || sigma) " << learned.q_sigma);
    CHECK(learned.sigma_q < untrained.sigma_q / 10);
  }
}

TEST_CASE("train: history, progress, observers, checkpoints and evaluation", "[learning]") {
  learning_toy toy(true, 5);
  tabular_twist twist(3, 3);
  auto lp = toy.learning(twist, 32);
  auto exact = enumeration_sampler(toy.solution);
  tsmc::ctl<> objective;
  adam optimizer(adam_options{.learning_rate = 0.05});
  default_engine rng(9);
  std::ostringstream progress;
  const auto path = std::filesystem::temp_directory_path() / "tsmc_trainer_test_checkpoint.bin";
  std::filesystem::remove(path);
  bounds_evaluator evaluator(lp, exact, {.particles = 16, .runs = 8, .kl_samples = 64});
  struct stop_at {
    std::size_t update;
    bool on_update(const training_record& r) const { return r.update == update; }
  } stop{7};
  const training_history history =
      train(lp, objective, optimizer,
            training_options{.updates = 10, .evaluate_every = 3, .progress_every = 2, .progress = &progress,
                             .checkpoint = path, .checkpoint_every = 5},
            rng, evaluator, stop);
  CHECK(history.objective == "CTL");
  CHECK(history.stopped_by_observer);
  REQUIRE(history.records.size() == 8);  // update 0 (evaluation) and updates 1..7
  CHECK(history.records[0].update == 0);
  REQUIRE(history.records[0].evaluated);
  CHECK(history.records[3].evaluated);
  CHECK(history.records[6].evaluated);
  CHECK_FALSE(history.records[2].evaluated);
  for (std::size_t i = 1; i < history.records.size(); ++i) {
    CHECK(std::isfinite(history.records[i].loss));
    CHECK(history.records[i].ess > 0.0);
  }
  for (const auto& r : history.records)
    if (r.evaluated) {
      CHECK(std::isfinite(r.evaluated->lower));
      CHECK(std::isfinite(r.evaluated->upper));
      CHECK(std::isfinite(r.evaluated->kl_sigma_q));
    }
  CHECK(progress.str().find("CTL update      2") != std::string::npos);
  CHECK(progress.str().find("log Z in [") != std::string::npos);

  std::ostringstream csv, json;
  history.write_csv(csv);
  history.write_json(json);
  CHECK(csv.str().rfind("objective,update,loss,ess,seconds,lower,upper,kl_q_sigma,kl_sigma_q\n", 0) == 0);
  const std::string csv_text = csv.str();
  CHECK(std::count(csv_text.begin(), csv_text.end(), '\n') == 9);
  CHECK(json.str().find("\"objective\": \"CTL\"") != std::string::npos);
  CHECK(json.str().find("\"kl_sigma_q\": ") != std::string::npos);
  CHECK(json.str().find("\"stopped_by_observer\": true") != std::string::npos);

  // The end-of-training checkpoint holds the final parameters.
  tabular_twist restored(3, 3);
  load_parameters(path, restored);
  CHECK(restored.values() == twist.values());
  std::filesystem::remove(path);
}

TEST_CASE("train: bad input and a non-finite loss stop with clear errors and keep the last good parameters",
          "[learning]") {
  learning_toy toy(false, 5);
  tabular_twist twist(3, 3);
  auto lp = toy.learning(twist, 16);
  auto exact = enumeration_sampler(toy.solution);
  tsmc::ctl objective(exact, 16);
  adam optimizer(adam_options{.learning_rate = 0.05});
  default_engine rng(3);
  CHECK_THROWS_WITH(train(lp, objective, optimizer, training_options{.updates = 0}, rng),
                    Catch::Contains("train") && Catch::Contains("options.updates"));
  CHECK_THROWS_WITH(adam(adam_options{.learning_rate = -1.0}), Catch::Contains("learning_rate"));
  CHECK_THROWS_WITH(adam(adam_options{.learning_rate = std::nan("")}), Catch::Contains("learning_rate"));
  CHECK_THROWS_WITH(toy.learning(twist, 0), Catch::Contains("options.batch"));
  tabular_twist wrong_vocabulary(4, 3);
  CHECK_THROWS_WITH(toy.learning(wrong_vocabulary, 4), Catch::Contains("twist.vocab_size()"));

  // psi = 0 for every first token: exact positives have log psi_1 = -inf, the CTL loss is +inf.
  (void)train(lp, objective, optimizer, training_options{.updates = 2}, rng);
  for (token v = 0; v < 3; ++v) twist.set_log_value(token_sequence{v}, -std::numeric_limits<double>::infinity());
  const Eigen::VectorXd before = twist.values();
  CHECK_THROWS_WITH(train(lp, objective, optimizer, training_options{.updates = 3}, rng),
                    Catch::Contains("CTL loss at update 1") && Catch::Contains("last good update"));
  CHECK(twist.values() == before);

  // An update with nothing recorded: accumulating a step the twist never saw.
  tabular_twist fresh(3, 3);
  log_prob_matrix c = log_prob_matrix::Zero(1, 3);
  CHECK_THROWS_WITH(fresh.accumulate_dense(1, c), Catch::Contains("was not recorded"));
}

TEST_CASE("train: average_last replaces the parameters by the mean of the last iterates", "[learning]") {
  learning_toy toy(false, 5);
  tabular_twist twist(3, 3);
  auto lp = toy.learning(twist, 8);
  tsmc::ctl<> objective;
  struct counting_optimizer {  // iterate n sets every parameter to n
    double n = 0;
    void step(std::vector<parameter_block>& blocks) {
      n += 1;
      for (auto& b : blocks) b.values.setConstant(n);
    }
  } counter;
  default_engine rng(1);
  (void)train(lp, objective, counter, training_options{.updates = 5, .average_last = 3}, rng);
  CHECK((twist.values().array() == 4.0).all());  // (3 + 4 + 5) / 3
  (void)train(lp, objective, counter, training_options{.updates = 2}, rng);
  CHECK((twist.values().array() == 7.0).all());
  CHECK_THROWS_WITH(train(lp, objective, counter, training_options{.updates = 2, .average_last = 3}, rng),
                    Catch::Contains("options.average_last"));
}
