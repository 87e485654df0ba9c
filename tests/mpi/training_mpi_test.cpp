// Data-parallel twist training: parameters bit-identical across ranks after every update (Adam);
// R ranks of K particles equal one process's update on the same R K particles up to the order of
// the floating-point sums (plain gradient steps, tolerance derived below); outputs from rank 0
// only; an observer's stop on rank 0 stops every rank.
#include <catch2/catch.hpp>

#include "learning/learning_fixtures.hpp"
#include "mpi/mpi_fixtures.hpp"

#include <tsmc/distributed/training.hpp>
#include <tsmc/learning/adam.hpp>
#include <tsmc/learning/objectives.hpp>
#include <tsmc/learning/trainer.hpp>

#include <cmath>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

using tsmc_mpi_test::bits;
using tsmc_mpi_test::same_bits;
using namespace tsmc;
using tsmc_test::learning_toy;
using tsmc_test::randomize;

namespace {

/// Plain gradient descent: values -= rate * gradient (the test of the update's value: no Adam
/// normalisation to amplify rounding).
struct gradient_step {
  double rate = 0.5;
  void step(std::span<parameter_block> blocks) {
    for (auto& b : blocks) b.values -= rate * b.gradient;
  }
  void step(std::vector<parameter_block>& blocks) { step(std::span<parameter_block>(blocks)); }
};

std::vector<double> flat(tabular_twist& twist) {
  const auto& v = twist.values();
  return {v.data(), v.data() + v.size()};
}

/// Every rank's copy of the parameters equals rank 0's, bit for bit.
bool same_on_every_rank(distributed::communicator& comm, tabular_twist& twist) {
  const std::vector<double> mine = flat(twist);
  const std::vector<double> all = comm.allgather(mine);
  for (std::size_t r = 0; r < comm.size(); ++r)
    if (!same_bits(std::span<const double>(all).subspan(r * mine.size(), mine.size()), mine)) return false;
  return true;
}

}  // namespace

TEST_CASE("data-parallel training keeps the parameters bit-identical on every rank after every update", "[mpi]") {
  distributed::communicator comm;
  learning_toy toy(true, 3);
  tabular_twist twist(toy.problem.vocab_size, toy.problem.horizon);
  randomize(twist, 100 + comm.rank(), 0.3);  // different on every rank: rank 0's is broadcast
  auto problem = toy.learning(twist, 8);
  rl objective;
  adam optimizer(adam_options{.learning_rate = 0.05});
  for (std::size_t update = 1; update <= 4; ++update) {
    const training_history h =
        distributed::train(comm, problem, objective, optimizer, training_options{.updates = 1}, 17 + update);
    REQUIRE(h.records.size() == 1);
    CHECK(same_on_every_rank(comm, twist));
  }
  CHECK(optimizer.steps() == 4);
  // ... and CTL (self-normalised: the mean of the ranks' estimates), the same.
  ctl contrastive;
  const training_history h =
      distributed::train(comm, problem, contrastive, optimizer, training_options{.updates = 3}, 5);
  CHECK(h.records.size() == 3);
  CHECK(same_on_every_rank(comm, twist));
}

TEST_CASE("R ranks of K particles update as one process on the same R K particles, up to the order of sums",
          "[mpi]") {
  distributed::communicator comm;
  const std::size_t ranks = comm.size();
  constexpr std::size_t K = 8;
  constexpr std::size_t updates = 4;
  constexpr std::uint64_t seed = 42;
  learning_toy toy(true, 3);

  // Distributed: rank r samples K particles per update from training_engine(seed, r).
  tabular_twist twist(toy.problem.vocab_size, toy.problem.horizon);
  randomize(twist, 7, 0.3);
  auto problem = toy.learning(twist, K);
  rl objective;
  gradient_step sgd;
  const training_history h =
      distributed::train(comm, problem, objective, sgd, training_options{.updates = updates}, seed);

  // One process: the same R batches of K (the R ranks' streams, in turn), their gradients added
  // into the twist, divided by R, one step; the loss the mean of the R batch losses.
  tabular_twist single(toy.problem.vocab_size, toy.problem.horizon);
  randomize(single, 7, 0.3);
  auto one = toy.learning(single, K);
  rl reference;
  std::vector<default_engine> engines;
  for (std::size_t r = 0; r < ranks; ++r) engines.push_back(distributed::training_engine(seed, r));
  std::vector<double> losses;
  for (std::size_t u = 0; u < updates; ++u) {
    single.zero_gradient();
    double loss = 0.0;
    for (std::size_t r = 0; r < ranks; ++r) {
      auto batch = reference.sample(one, engines[r]);
      loss += reference.accumulate(one, batch, engines[r]).loss;
    }
    auto blocks = single.parameters();
    for (auto& b : blocks) b.gradient /= static_cast<double>(ranks);
    sgd.step(blocks);
    losses.push_back(loss / static_cast<double>(ranks));
  }

  // Tolerance: each gradient entry sums n <= R K T = 4 x 8 x 3 terms (scale / K) x residual with
  // |residual| <= 35 (log psi and the targets lie in [-30, 5] here), so sum |terms| <= 35 R; two
  // summation orders differ by at most 2 n u sum |terms| < 2 x 96 x 1.1e-16 x 140 = 3e-12 per
  // entry, times the rate 0.5 per update, over 4 updates: < 1e-11. A dropped rank's batch or a
  // missing 1/R moves entries by O(0.01 - 1).
  const std::vector<double> a = flat(twist), b = flat(single);
  REQUIRE(a.size() == b.size());
  double worst = 0.0, moved = 0.0;
  tabular_twist start(toy.problem.vocab_size, toy.problem.horizon);
  randomize(start, 7, 0.3);
  for (std::size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, std::abs(a[i] - b[i]));
    moved = std::max(moved, std::abs(a[i] - start.values()[static_cast<Eigen::Index>(i)]));
  }
  INFO("ranks " << ranks << ": largest parameter difference " << worst << ", largest move " << moved);
  CHECK(worst <= 1e-11);
  CHECK(moved > 1e-2);  // training did move the parameters
  REQUIRE(h.records.size() == updates);
  for (std::size_t u = 0; u < updates; ++u) CHECK(std::abs(h.records[u].loss - losses[u]) <= 1e-11 * (1 + std::abs(losses[u])));
}

TEST_CASE("single-precision gradient transfer: half the bytes, the same parameters on every rank, the double "
          "update to float rounding", "[mpi]") {
  distributed::communicator comm;
  learning_toy toy(true, 3);
  rl objective;
  std::vector<std::vector<double>> gradients;
  std::vector<std::uint64_t> bytes;
  // The same update from the same state and streams, once per precision on the wire.
  for (const auto transfer : {distributed::gradient_transfer::double_precision,
                              distributed::gradient_transfer::single_precision}) {
    tabular_twist twist(toy.problem.vocab_size, toy.problem.horizon);
    randomize(twist, 7, 0.3);
    auto problem = toy.learning(twist, 8);
    distributed::data_parallel<rl> parallel(comm, objective, transfer);
    default_engine rng = distributed::training_engine(42, comm.rank());
    twist.zero_gradient();
    auto batch = parallel.sample(problem, rng);
    comm.reset_stats();
    (void)parallel.accumulate(problem, batch, rng);
    bytes.push_back(comm.stats().bytes_sent);
    std::vector<double> g;
    for (const auto& block : twist.parameters()) g.insert(g.end(), block.gradient.data(), block.gradient.data() + block.gradient.size());
    gradients.push_back(g);
    gradient_step sgd;
    auto blocks = twist.parameters();
    sgd.step(blocks);
    CHECK(same_on_every_rank(comm, twist));
  }
  // The gradient's bytes halve (the loss and the ESS stay two doubles).
  const std::uint64_t n = gradients[0].size();
  CHECK(bytes[0] == (n + 2) * sizeof(double));
  CHECK(bytes[1] == n * sizeof(float) + 2 * sizeof(double));
  // Each rank's partial sum is rounded to float (2^-24 relative) and the float sum of R of them
  // rounds R - 1 more times: |g_float - g_double| <= 2 R 2^-24 max|partial| <= 2 R^2 2^-24 max|g|
  // (a partial is at most R times the mean); a dropped rank or a missing 1/R moves entries by O(1).
  double largest = 0.0, worst = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    largest = std::max(largest, std::abs(gradients[0][i]));
    worst = std::max(worst, std::abs(gradients[1][i] - gradients[0][i]));
  }
  const double R = static_cast<double>(comm.size());
  INFO("ranks " << comm.size() << ": largest gradient entry " << largest << ", largest float-double difference " << worst);
  CHECK(largest > 0.0);
  CHECK(worst <= 2.0 * R * R * std::ldexp(1.0, -24) * largest);
  CHECK(worst > 0.0);  // the float path did round
  // distributed::train with single-precision transfer keeps every rank's parameters identical.
  tabular_twist twist(toy.problem.vocab_size, toy.problem.horizon);
  randomize(twist, 100 + comm.rank(), 0.3);
  auto problem = toy.learning(twist, 8);
  adam optimizer(adam_options{.learning_rate = 0.05});
  const training_history h = distributed::train(comm, distributed::gradient_transfer::single_precision, problem,
                                                objective, optimizer, training_options{.updates = 3}, 9);
  CHECK(h.records.size() == 3);
  CHECK(same_on_every_rank(comm, twist));
}

TEST_CASE("data-parallel training writes progress and checkpoints and evaluates on rank 0 only", "[mpi]") {
  distributed::communicator comm;
  learning_toy toy(true, 3);
  tabular_twist twist(toy.problem.vocab_size, toy.problem.horizon);
  auto problem = toy.learning(twist, 4);
  rl objective;
  adam optimizer(adam_options{.learning_rate = 0.05});
  std::ostringstream progress;
  const auto dir = std::filesystem::temp_directory_path() / "tsmc_mpi_training";
  std::filesystem::create_directories(dir);
  const auto checkpoint = dir / ("rank" + std::to_string(comm.rank()) + "_of_" + std::to_string(comm.size()) + ".txt");
  std::filesystem::remove(checkpoint);
  std::size_t evaluations = 0;
  auto evaluator = [&](default_engine&) {
    ++evaluations;
    return evaluation{};
  };
  struct stop_at_three {
    bool on_update(const training_record& r) const { return r.update == 3; }
  } stop;
  const training_history h = distributed::train(
      comm, problem, objective, optimizer,
      training_options{.updates = 10, .evaluate_every = 2, .progress_every = 1, .progress = &progress,
                       .checkpoint = checkpoint},
      9, evaluator, stop);
  CHECK(h.stopped_by_observer);  // rank 0's observer stopped every rank
  CHECK(h.records.size() == 4);  // update 0 (evaluation) and updates 1-3
  CHECK(optimizer.steps() == 3);
  if (comm.is_root()) {
    CHECK(!progress.str().empty());
    CHECK(std::filesystem::exists(checkpoint));
    CHECK(evaluations == 2);  // before training and after update 2
  } else {
    CHECK(progress.str().empty());
    CHECK(!std::filesystem::exists(checkpoint));
    CHECK(evaluations == 0);
  }
  CHECK(same_on_every_rank(comm, twist));
}
