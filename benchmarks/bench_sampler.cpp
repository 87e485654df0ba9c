// The sampler's own cost per step, against baselines measured in the same run:
//   eigen_pass/K      one Eigen pass computing (L + Psi).exp().sum() over the K x V matrix
//   fused_step/K      the fused proposal pass (logits, logsumexp, one inverse-CDF draw per particle)
//   sampler_step/K    a whole twisted_smc step with a zero-cost model and twist: proposal,
//                     weights, ESS, resampling every step, reorder calls (per step of a T = 32 run)
// V = 32000 (a Llama-2 vocabulary). Goals: fused_step <= 1.5 x eigen_pass; sampler_step <= 2 x fused_step.
//   ./build/dev/benchmarks/bench_sampler --benchmark_min_time=0.2
#include "ratio_reporter.hpp"

#include <tsmc/all.hpp>

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

namespace {

constexpr std::size_t vocab = 32000;
constexpr std::size_t horizon = 32;

/// Random normalised log-probabilities (K x V) and a random twist (K x V).
struct matrices {
  tsmc::log_prob_matrix log_p0;
  tsmc::log_prob_matrix log_psi;
  explicit matrices(std::size_t particles) : log_p0(particles, vocab), log_psi(particles, vocab) {
    tsmc::default_engine rng(42);
    for (Eigen::Index k = 0; k < log_p0.rows(); ++k) {
      for (Eigen::Index v = 0; v < log_p0.cols(); ++v) {
        log_p0(k, v) = 2.0 * tsmc::standard_normal(rng);
        log_psi(k, v) = 0.5 * tsmc::standard_normal(rng);
      }
      const double lse = tsmc::logsumexp(log_p0.row(k));
      log_p0.row(k).array() -= lse;
    }
  }
};

/// A model whose rows are precomputed: log_probs copies them once per run (amortised over the
/// run's steps) and every other call is free.
struct zero_cost_model {
  const tsmc::log_prob_matrix* rows;
  bool filled = false;
  [[nodiscard]] std::size_t vocab_size() const { return vocab; }
  void start(std::span<const tsmc::token>, std::size_t) { filled = false; }
  void log_probs(tsmc::log_prob_ref out) {
    if (!filled) out = *rows;
    filled = true;
  }
  void append(std::span<const tsmc::token>) {}
  void reorder(std::span<const tsmc::particle_index>) {}
};

/// A twist whose rows are precomputed, copied once per run like the model's.
struct zero_cost_twist {
  const tsmc::log_prob_matrix* rows;
  mutable bool filled = false;
  void start(std::span<const tsmc::token>, std::size_t) { filled = false; }
  template <class M>
  void log_twist(const tsmc::step_context<M>&, tsmc::log_prob_ref out) const {
    if (!filled) out = *rows;
    filled = true;
  }
};

struct constant_potential {
  void log_potential(std::span<const tsmc::token_sequence> s, std::span<double> out) const {
    for (std::size_t k = 0; k < s.size(); ++k) out[k] = 0.0;
  }
};

void eigen_pass(benchmark::State& state) {
  const matrices m(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    double total = (m.log_p0 + m.log_psi).array().exp().sum();
    benchmark::DoNotOptimize(total);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0) * static_cast<std::int64_t>(vocab));
}

void fused_step(benchmark::State& state) {
  const auto particles = static_cast<std::size_t>(state.range(0));
  const matrices m(particles);
  Eigen::ArrayXd scratch(static_cast<Eigen::Index>(vocab));
  tsmc::default_engine rng(1);
  for (auto _ : state) {
    double total = 0.0;
    for (std::size_t k = 0; k < particles; ++k) {
      const auto row = static_cast<Eigen::Index>(k);
      const tsmc::proposal_draw d =
          tsmc::fused_proposal_draw(m.log_p0.row(row).data(), m.log_psi.row(row).data(), vocab, tsmc::uniform01(rng), scratch);
      total += d.log_normalizer + d.chosen;
    }
    benchmark::DoNotOptimize(total);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0) * static_cast<std::int64_t>(vocab));
}

/// CheckFirstRow: smc_options::check_first_row (on by default; the case without it is the
/// baseline that shows what the default check of the first row costs).
template <bool CheckFirstRow>
void sampler_step(benchmark::State& state) {
  const auto particles = static_cast<std::size_t>(state.range(0));
  const matrices m(particles);
  zero_cost_model model{&m.log_p0};
  zero_cost_twist twist{&m.log_psi};
  constant_potential potential;
  tsmc::twisted_smc smc(model, twist, potential,
                        tsmc::smc_options{.particles = particles, .horizon = horizon, .check_first_row = CheckFirstRow},
                        tsmc::systematic{}, tsmc::always);
  tsmc::default_engine rng(2);
  const std::vector<tsmc::token> prompt{1};
  for (auto _ : state) {
    tsmc::smc_result r = smc.run(prompt, rng);
    benchmark::DoNotOptimize(r.log_z);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(horizon) * state.range(0) *
                          static_cast<std::int64_t>(vocab));
}

}  // namespace

BENCHMARK(eigen_pass)->RangeMultiplier(4)->Range(16, 256)->Unit(benchmark::kMicrosecond);
BENCHMARK(fused_step)->RangeMultiplier(4)->Range(16, 256)->Unit(benchmark::kMicrosecond);
BENCHMARK(sampler_step<true>)->Name("sampler_step")->RangeMultiplier(4)->Range(16, 256)->Unit(benchmark::kMicrosecond);
BENCHMARK(sampler_step<false>)->Name("sampler_step_unchecked")->RangeMultiplier(4)->Range(16, 256)->Unit(benchmark::kMicrosecond);

int main(int argc, char** argv) {
  tsmc_bench::initialize(&argc, argv,
                         "bench_sampler: the sampler's own cost per step, V = 32000, K = 16, 64, 256 particles.\n"
                         "  eigen_pass/K    baseline: one Eigen pass (L + Psi).exp().sum() over the K x V matrix\n"
                         "  fused_step/K    the fused proposal pass: logits, logsumexp, one inverse-CDF draw per particle\n"
                         "  sampler_step/K  a whole twisted_smc step (zero-cost model and twist; resampling every\n"
                         "                  step), timed over a T = 32 run and compared per step\n"
                         "  sampler_step_unchecked/K  the same run with smc_options::check_first_row = false: the\n"
                         "                  default check of the first row costs sampler_step / this - 1\n"
                         "After the table: CPU-time ratios to the baseline measured in the same run.\n"
                         "Goals: fused_step <= 1.5 x eigen_pass; sampler_step <= 2 x fused_step.\n"
                         "Typical: bench_sampler --benchmark_min_time=0.2");
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  // sampler_step times a whole run of `horizon` steps: it is compared per step.
  using baseline = tsmc_bench::ratio_reporter::baseline;
  tsmc_bench::ratio_reporter reporter([](const std::string& name) -> baseline {
    const auto slash = name.find('/');
    const std::string family = name.substr(0, slash), size = name.substr(slash);
    if (family == "fused_step") return {"eigen_pass" + size, 1.0};
    if (family == "sampler_step") return {"fused_step" + size, static_cast<double>(horizon)};
    if (family == "sampler_step_unchecked") return {"sampler_step" + size, 1.0};
    return {};
  });
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
}
