// Distributed SMC: with the engine in the same state, R ranks holding K / R particles each give
// the particles, weights, ESS and log Zhat of one process's twisted_smc with K particles, bit for
// bit (schemes and triggers that move particles between ranks); E[Zhat] = Z on an enumerable toy;
// the bytes shipped per resampling are reported and match the particles moved.
#include <catch2/catch.hpp>

#include "mpi/mpi_fixtures.hpp"

#include <tsmc/corpus/story_grammar.hpp>
#include <tsmc/distributed/smc.hpp>
#include <tsmc/models/llama2c.hpp>
#include <tsmc/models/ngram.hpp>
#include <tsmc/resampling/schemes.hpp>
#include <tsmc/resampling/triggers.hpp>
#include <tsmc/smc/sampler.hpp>
#include <tsmc/twists/no_twist.hpp>
#include <tsmc/twists/tabular_twist.hpp>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

using namespace tsmc_mpi_test;

namespace {

/// A random tabular twist (so that the twisted proposal differs from p0).
tabular_twist noisy_twist(std::size_t vocab, std::size_t horizon, std::uint64_t seed) {
  tabular_twist twist(vocab, horizon);
  default_engine engine(seed);
  for (Eigen::Index i = 0; i < twist.values().size(); ++i) twist.values()[i] = 0.5 * standard_normal(engine);
  return twist;
}

/// Runs one process's sampler and the distributed one from the same engine state and compares
/// this rank's slots bit for bit; returns the distributed result.
template <class Twist, class Scheme, class Trigger>
distributed::distributed_smc_result compare_with_one_process(distributed::communicator& comm, toy& t, Twist& twist,
                                                             const smc_options& options, Scheme scheme, Trigger trigger,
                                                             std::uint64_t seed) {
  slot_model single(t.model);  // one process's model: all K slots
  twisted_smc one(single, twist, t.potential, options, scheme, trigger);
  default_engine a(seed);
  const smc_result r1 = one.run(t.problem.prompt, a);
  distributed::twisted_smc many(comm, t.movable, twist, t.potential, options, scheme, trigger);
  default_engine b(seed);
  const distributed::distributed_smc_result rd = many.run(t.problem.prompt, b);
  const smc_result& r = rd.local;
  CHECK(bits(r.log_z) == bits(r1.log_z));
  CHECK(same_bits(r.ess, r1.ess));
  CHECK(same_bits(r.log_z_increments, r1.log_z_increments));
  CHECK(r.resampled == r1.resampled);
  CHECK(r.steps == r1.steps);
  CHECK(rd.particles == options.particles);
  REQUIRE(rd.first + r.sequences.size() <= r1.sequences.size());
  for (std::size_t k = 0; k < r.sequences.size(); ++k) {
    const std::size_t g = rd.first + k;
    CHECK(r.sequences[k] == r1.sequences[g]);
    CHECK(bits(r.log_weights[k]) == bits(r1.log_weights[g]));
    CHECK(bits(r.log_proposal[k]) == bits(r1.log_proposal[g]));
    CHECK(bits(r.normalized_log_weights[k]) == bits(r1.normalized_log_weights[g]));
  }
  CHECK(b() == a());  // both consumed the engine alike
  return rd;
}

}  // namespace

TEST_CASE("distributed SMC gives one process's particles and log Zhat for the same seed", "[mpi]") {
  distributed::communicator comm;
  toy t;
  no_twist none;
  tabular_twist twist = noisy_twist(4, 4, 31);
  std::size_t resamplings = 0, moved = 0;
  for (std::uint64_t seed = 1; seed <= 6; ++seed) {
    const smc_options base{.particles = 12, .horizon = t.problem.horizon, .proposal = proposal_type::base,
                           .end_token = t.problem.end_token};
    smc_options twisted = base;
    twisted.proposal = proposal_type::twisted;
    twisted.particles = 13;  // not a multiple of the ranks
    for (const auto& rd : {compare_with_one_process(comm, t, none, base, multinomial{}, always_trigger{}, seed),
                           compare_with_one_process(comm, t, twist, twisted, systematic{}, always_trigger{}, seed),
                           compare_with_one_process(comm, t, twist, twisted, stratified{}, ess_below(0.7), seed)}) {
      resamplings += rd.moved_particles.size();
      for (std::size_t i = 0; i < rd.moved_particles.size(); ++i) {
        moved += rd.moved_particles[i];
        // each moved particle ships its prefix twice (the sampler's copy and the model's slot
        // state) and fixed fields: no particle moved, no bytes
        CHECK((rd.moved_particles[i] == 0) == (rd.moved_bytes[i] == 0));
      }
    }
  }
  CHECK(resamplings > 20);
  CHECK(moved > 20);  // particles did cross ranks
}

TEST_CASE("distributed SMC is unbiased: E[Zhat] = Z on an enumerable toy", "[mpi]") {
  distributed::communicator comm;
  toy t;
  tabular_twist twist = noisy_twist(4, 4, 5);
  const double z = std::exp(t.solution.log_z());
  distributed::twisted_smc smc(comm, t.movable, twist, t.potential,
                               smc_options{.particles = 32, .horizon = t.problem.horizon, .end_token = t.problem.end_token},
                               multinomial{}, always_trigger{});
  default_engine rng(2026);
  // 400 runs: each costs ~20 collectives, milliseconds apiece with 4 ranks on 2 cores
  constexpr std::size_t runs = 400;
  std::vector<double> ratio(runs);
  for (auto& x : ratio) x = std::exp(smc.run(t.problem.prompt, rng).local.log_z) / z;
  double mean = 0.0;
  for (double x : ratio) mean += x;
  mean /= runs;
  double var = 0.0;
  for (double x : ratio) var += (x - mean) * (x - mean);
  const double se = std::sqrt(var / (runs - 1) / runs);
  INFO("ranks " << comm.size() << ": mean Zhat / Z = " << mean << " +- " << se);
  // five standard errors: two-sided false-alarm rate 5.7e-7 under the central limit theorem
  CHECK(std::abs(mean - 1.0) <= 5.0 * se);
  CHECK(se < 0.05);  // the test has power: a bias of 25% is caught
}

TEST_CASE("distributed SMC checks its options on every rank", "[mpi]") {
  distributed::communicator comm;
  toy t;
  no_twist none;
  const smc_options too_few{.particles = comm.size() - 1, .horizon = 4, .end_token = t.problem.end_token};
  if (comm.size() > 1)
    CHECK_THROWS_WITH(distributed::twisted_smc(comm, t.movable, none, t.potential, too_few),
                      Catch::Contains("options.particles must be at least the number of ranks"));
}

namespace {

/// One process's sampler and the distributed one over the same model type, from the same engine
/// state: this rank's slots, and the weights and log Zhat bit for bit (`exact`) or within
/// `tolerance` relative (a transformer's rows depend on the batch's shape through the GEMM's
/// blocking: K / R rows per rank are not the K rows of one process, bit for bit).
template <class Model, class Pot>
std::size_t compare_model(distributed::communicator& comm, Model& single, Model& local, Pot& potential,
                          const token_sequence& prompt, const smc_options& options, std::uint64_t seed, bool exact) {
  const auto same = [exact](double a, double b) {
    return exact ? bits(a) == bits(b) : std::abs(a - b) <= 1e-5 * std::max(1.0, std::abs(b));
  };
  random_twist twist(29, 1.0);  // stateless; uneven weights at every step, so particles move
  twisted_smc one(single, twist, potential, options, systematic{}, always_trigger{});
  default_engine a(seed);
  const smc_result r1 = one.run(prompt, a);
  distributed::twisted_smc many(comm, local, twist, potential, options, systematic{}, always_trigger{});
  default_engine b(seed);
  const distributed::distributed_smc_result rd = many.run(prompt, b);
  CHECK(same(rd.local.log_z, r1.log_z));
  std::size_t moved = 0;
  for (const std::size_t m : rd.moved_particles) moved += m;
  INFO("particles moved between ranks: " << moved);
  for (std::size_t k = 0; k < rd.local.sequences.size(); ++k) {
    CHECK(rd.local.sequences[k] == r1.sequences[rd.first + k]);
    CHECK(same(rd.local.log_weights[k], r1.log_weights[rd.first + k]));
  }
  return moved;
}

}  // namespace

TEST_CASE("distributed SMC over the library's n-gram and llama2.c models equals one process", "[mpi]") {
  // The n-gram's rows do not depend on the number of slots: bit for bit. The llama2.c model's
  // do, in the last bits (GEMM blocking): the same particles, weights to 1e-5.
  distributed::communicator comm;
  random_potential potential(17, 1.0);
  {
    std::vector<std::string> texts;
    for (const labelled_sentence& s : story_grammar{}.generate(300, 3)) texts.push_back(s.text);
    const word_tokenizer vocabulary = word_tokenizer::from_corpus(texts);
    ngram_model single = ngram_model::train_kneser_ney(vocabulary, texts, {.order = 3});
    ngram_model local = single;
    std::size_t moved = 0;
    for (std::uint64_t seed = 1; seed <= 3; ++seed)
      moved += compare_model(comm, single, local, potential, vocabulary.encode("the"),
                    smc_options{.particles = 10, .horizon = 6, .proposal = proposal_type::base,
                                .end_token = word_tokenizer::end_token},
                    seed, /*exact=*/true);
    CHECK((comm.size() == 1 || moved > 0));  // the slot hooks were exercised
  }
  {
    const llama2c::config c{.dim = 16, .hidden_dim = 40, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                            .vocab_size = 37, .seq_len = 24, .shared_classifier = true};
    const std::filesystem::path path = std::filesystem::temp_directory_path() /
                                       ("tsmc_mpi_slots." + std::to_string(::getpid()) + ".bin");
    llama2c::write_checkpoint(path, c, llama2c::random_weights(c, 11, 2.0));
    const auto ckpt = std::make_shared<const llama2c::checkpoint>(path);
    std::filesystem::remove(path);
    llama2c::model single(ckpt), local(ckpt);
    std::size_t moved = 0;
    for (std::uint64_t seed = 1; seed <= 3; ++seed)
      moved += compare_model(comm, single, local, potential, token_sequence{1, 5},
                    smc_options{.particles = 9, .horizon = 6, .proposal = proposal_type::base, .end_token = 2}, seed,
                    /*exact=*/false);
    CHECK((comm.size() == 1 || moved > 0));
  }
}
