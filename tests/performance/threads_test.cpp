// Results do not depend on the number of threads: a twisted SMC run with resampling and a CTL
// update on a small random llama2.c model, bit for bit, with 1, 2 and 3 threads (the model's
// tiled GEMMs, its attention and log-softmax rows, the sampler's particle loop, all shared by
// detail::parallel_for, whose threads claim iterations in whatever order they are scheduled);
// parallel_for itself (every iteration once, slots apart); and the MLP head's float output path
// (mlp_twist_options::float_output).
#include "models/llama2c_test_support.hpp"

#include <tsmc/core/parallel.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/learning/adam.hpp>
#include <tsmc/learning/objectives.hpp>
#include <tsmc/learning/problem.hpp>
#include <tsmc/models/llama2c.hpp>
#include <tsmc/resampling/schemes.hpp>
#include <tsmc/resampling/triggers.hpp>
#include <tsmc/smc/sampler.hpp>
#include <tsmc/twists/features.hpp>
#include <tsmc/twists/mlp_twist.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

using head = tsmc::mlp_twist<tsmc::model_features>;

// Big enough that every parallel path runs: K x V = 65536 (log-softmax rows, the sampler's
// proposal pass), attention from length 16 on; hidden 384 and V = 1024 are depths past Eigen's
// multi-threaded depth blocking (320), where its own OpenMP GEMM would round differently.
const tsmc::llama2c::config shape{.dim = 64, .hidden_dim = 384, .n_layers = 2, .n_heads = 4, .n_kv_heads = 4,
                                  .vocab_size = 1024, .seq_len = 48, .shared_classifier = true};
constexpr std::size_t particles = 64;
constexpr std::size_t horizon = 24;
const std::vector<tsmc::token> prompt{1, 7, 9};

struct cheap_potential {
  void log_potential(std::span<const tsmc::token_sequence> s, std::span<double> out) const {
    for (std::size_t k = 0; k < s.size(); ++k) out[k] = -0.1 * static_cast<double>(s[k].back() % 7);
  }
};

head make_head(bool float_output) {
  head h(tsmc::model_features(64), tsmc::mlp_twist_options{.vocab_size = 1024,
                                                           .max_steps = horizon,
                                                           .hidden_layers = 1,
                                                           .width = 64,
                                                           .seed = 3,
                                                           .float_output = float_output});
  tsmc::default_engine rng(5);
  for (auto& b : h.parameters())
    if (b.name == "head.output.weight")
      for (Eigen::Index i = 0; i < b.values.size(); ++i) b.values(i) = 0.3 * tsmc::standard_normal(rng);
  return h;
}

void set_threads(int n) {
#ifdef _OPENMP
  omp_set_num_threads(n);
#else
  (void)n;
#endif
}

struct outcome {
  std::vector<tsmc::token_sequence> sequences;
  std::vector<double> log_weights;
  double log_z = 0.0;
  std::size_t resamplings = 0;
  std::vector<Eigen::VectorXd> parameters;  // after one CTL update
  double loss = 0.0;
};

outcome run_with(int threads, const std::shared_ptr<const tsmc::llama2c::checkpoint>& weights) {
  set_threads(threads);
  outcome o;
  {
    tsmc::llama2c::model m(weights);
    head twist = make_head(false);
    cheap_potential potential;
    tsmc::twisted_smc smc(m, twist, potential, tsmc::smc_options{.particles = particles, .horizon = horizon},
                          tsmc::systematic{}, tsmc::ess_below(0.5));
    tsmc::default_engine rng(17);
    const tsmc::smc_result r = smc.run(prompt, rng);
    o.sequences = r.sequences;
    o.log_weights = r.log_weights;
    o.log_z = r.log_z;
    for (auto x : r.resampled) o.resamplings += x;
  }
  {
    tsmc::llama2c::model m(weights);
    head twist = make_head(false);
    cheap_potential potential;
    tsmc::learning_problem problem(m, twist, potential, prompt,
                                   tsmc::learning_options{.batch = particles, .horizon = horizon,
                                                          .check_normalization = false});
    tsmc::ctl<> objective;
    tsmc::adam optimizer(tsmc::adam_options{.learning_rate = 1e-2});
    tsmc::default_engine rng(19);
    twist.zero_gradient();
    auto batch = objective.sample(problem, rng);
    o.loss = objective.accumulate(problem, batch, rng).loss;
    auto blocks = twist.parameters();
    optimizer.step(blocks);
    for (const auto& b : twist.parameters()) o.parameters.emplace_back(b.values);
  }
  set_threads(1);
  return o;
}

}  // namespace

TEST_CASE("a twisted SMC run with resampling and a CTL update are bit-identical with 1, 2 and 3 threads",
          "[performance]") {
#ifdef _OPENMP
  const int saved = omp_get_max_threads();
#endif
  llama2c_test::temp_dir dir;
  const auto path = dir.file("threads.bin");
  tsmc::llama2c::make_random_checkpoint(path, shape, 99);
  const auto weights = std::make_shared<const tsmc::llama2c::checkpoint>(path);
  const outcome one = run_with(1, weights);
  REQUIRE(one.resamplings > 0);  // the run resampled (and reordered the model's cache)
  for (const int threads : {2, 3}) {  // 3 on 2 cores: a thread is often descheduled mid-loop
    const outcome other = run_with(threads, weights);
    INFO("threads = " << threads);
    CHECK(one.sequences == other.sequences);
    CHECK(one.log_weights == other.log_weights);  // exact, not approximate
    CHECK(one.log_z == other.log_z);
    CHECK(one.loss == other.loss);
    REQUIRE(one.parameters.size() == other.parameters.size());
    for (std::size_t i = 0; i < one.parameters.size(); ++i) CHECK(one.parameters[i] == other.parameters[i]);
  }
#ifdef _OPENMP
  omp_set_num_threads(saved);
#endif
}

TEST_CASE("parallel_for runs every iteration once, each thread with its own slot", "[performance]") {
#ifdef _OPENMP
  const int saved = omp_get_max_threads();
#endif
  for (const int threads : {1, 2, 3}) {
    set_threads(threads);
    INFO("threads = " << threads);
    constexpr std::int64_t count = 2000;
    std::vector<std::atomic<int>> calls(count);
    std::vector<std::atomic<int>> in_use(3);  // threads running with each slot right now
    std::atomic<int> bad_slot{0}, shared_slot{0};
    for (int repeat = 0; repeat < 20; ++repeat)
      tsmc::detail::parallel_for(count, threads, [&](std::int64_t i, int slot) {
        if (slot < 0 || slot >= threads) {
          ++bad_slot;
          return;
        }
        if (in_use[static_cast<std::size_t>(slot)].fetch_add(1) != 0) ++shared_slot;
        calls[static_cast<std::size_t>(i)].fetch_add(1);
        volatile double x = 0.0;  // a little work, so that the threads overlap
        for (int w = 0; w < 200; ++w) x = x + static_cast<double>(w);
        in_use[static_cast<std::size_t>(slot)].fetch_sub(1);
      });
    CHECK(bad_slot.load() == 0);
    CHECK(shared_slot.load() == 0);
    int wrong = 0;
    for (const auto& c : calls) wrong += c.load() != 20;
    CHECK(wrong == 0);
    // A loop inside a loop's task runs on that task's thread, in full.
    std::vector<std::atomic<int>> inner(64);
    tsmc::detail::parallel_for(8, threads, [&](std::int64_t i, int) {
      tsmc::detail::parallel_for(8, threads, [&](std::int64_t j, int slot) {
        if (slot == 0) inner[static_cast<std::size_t>(i * 8 + j)].fetch_add(1);
      });
    });
    int missed = 0;
    for (const auto& c : inner) missed += c.load() != 1;
    CHECK(missed == 0);
  }
  set_threads(1);
#ifdef _OPENMP
  omp_set_num_threads(saved);
#endif
}

TEST_CASE("mlp_twist float_output: the output product in float, refreshed after parameters()", "[performance]") {
  llama2c_test::temp_dir dir;
  const auto path = dir.file("float.bin");
  tsmc::llama2c::make_random_checkpoint(path, shape, 98);
  const auto weights = std::make_shared<const tsmc::llama2c::checkpoint>(path);
  tsmc::llama2c::model m(weights);
  m.start(prompt, 4);
  head exact = make_head(false);
  head fast = make_head(true);
  const std::vector<tsmc::token_sequence> prefixes(4);
  const std::vector<std::uint8_t> active{1, 1, 0, 1};
  const tsmc::step_context<tsmc::llama2c::model> ctx{3, horizon, prompt, prefixes, active, m};
  tsmc::log_prob_matrix a(4, 1024), b(4, 1024);
  exact.log_twist(ctx, a);
  fast.log_twist(ctx, b);
  CHECK(a.cwiseAbs().maxCoeff() > 0.1);                // not trivially zero
  CHECK((a - b).cwiseAbs().maxCoeff() < 1e-4);         // float rounding only
  CHECK(b.row(2).cwiseAbs().maxCoeff() == 0.0);        // finished rows stay 0
  // A write through parameters() reaches the float copy at the next call.
  for (head* h : {&exact, &fast})
    for (auto& blk : h->parameters())
      if (blk.name == "head.output.weight") blk.values *= 2.0;
  exact.log_twist(ctx, a);
  fast.log_twist(ctx, b);
  CHECK((a - b).cwiseAbs().maxCoeff() < 2e-4);
  // The gradient is the double path's, whatever the forward precision.
  exact.set_recording(true);
  fast.set_recording(true);
  exact.log_twist(ctx, a);
  fast.log_twist(ctx, b);
  exact.zero_gradient();
  fast.zero_gradient();
  const tsmc::log_prob_matrix c = tsmc::log_prob_matrix::Constant(4, 1024, 0.01);
  exact.accumulate_dense(3, c);
  fast.accumulate_dense(3, c);
  const auto ga = exact.parameters(), gb = fast.parameters();
  for (std::size_t i = 0; i < ga.size(); ++i) CHECK(ga[i].gradient == gb[i].gradient);
}
