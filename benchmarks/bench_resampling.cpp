// Resampling benchmarks: every scheme's offspring() for N = 2^6 ... 2^20 particles (K = N) at two
// weight dispersions, log-weights N(0, 0.1^2) ("sd0.1") and N(0, 2^2) ("sd2"), against the
// baselines a user would otherwise write in the same binary:
//   std_discrete   std::discrete_distribution built from the weights and drawn N times
//   binary_search  cumulative weights + N uniforms, each located by std::upper_bound
//   copy           the floor: one pass reading N doubles and writing N 32-bit indices
// and two components on their own:
//   slot_stable_ancestors  counts to ancestors, as resampler does after the scheme (counts
//                  from one systematic draw)
//   spacings       the N + 1 partial sums of Exp(1) variates (detail::exponential_partial_sums, by
//                  the ziggurat) that multinomial merges with the cumulative weights: its cost
//                  before the merge
// Names are <benchmark>/<dispersion>/<N>. After the usual console output, the binary prints a
// table of ns per particle (CPU time), the ratio to the copy floor, the speed-up over
// std::discrete_distribution and the flatness ratio ns(2^20) / ns(2^10):
//   ./build/dev/benchmarks/bench_resampling --benchmark_min_time=0.05
// The smoke test runs only N = 64: --benchmark_min_time=0 --benchmark_filter='/64/|/64$|/16/|/16$'.

#include "ratio_reporter.hpp"

#include <benchmark/benchmark.h>

#include <tsmc/core/random.hpp>
#include <tsmc/core/types.hpp>
#include <tsmc/resampling/ancestors.hpp>
#include <tsmc/resampling/resampler.hpp>
#include <tsmc/resampling/schemes.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace {

using tsmc::particle_index;

struct weight_set {
  std::vector<double> log_weights;
  std::vector<double> weights;  // normalised
};

// Cached fixtures: log-weights sigma * Z, normalised weights.
const weight_set& fixture(std::size_t n, double sigma) {
  static std::map<std::pair<std::size_t, double>, weight_set> cache;
  auto [it, inserted] = cache.try_emplace({n, sigma});
  if (inserted) {
    tsmc::default_engine rng{0x5eed + n};
    auto& f = it->second;
    f.log_weights.resize(n);
    f.weights.resize(n);
    double max = -1e300;
    for (double& v : f.log_weights) {
      v = sigma * tsmc::standard_normal(rng);
      max = std::max(max, v);
    }
    double total = 0.0;
    for (std::size_t i = 0; i < n; ++i) total += f.weights[i] = std::exp(f.log_weights[i] - max);
    for (double& w : f.weights) w /= total;
  }
  return it->second;
}

void finish(benchmark::State& state, std::size_t n) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(n));
  state.counters["ns_per_particle"] = benchmark::Counter(static_cast<double>(n) * 1e-9,
                                                         benchmark::Counter::kIsIterationInvariantRate |
                                                             benchmark::Counter::kInvert);
}

template <class Scheme>
void bm_scheme(benchmark::State& state, double sigma) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto& w = fixture(n, sigma).weights;
  std::vector<particle_index> counts(n);
  Scheme scheme;
  tsmc::default_engine rng{42};
  scheme.offspring(w, n, counts, rng);  // grow the workspace once
  for (auto _ : state) {
    scheme.offspring(w, n, counts, rng);
    benchmark::DoNotOptimize(counts.data());
    benchmark::ClobberMemory();
  }
  finish(state, n);
}

struct residual_multinomial : tsmc::residual {
  residual_multinomial() : tsmc::residual{.remainder = tsmc::residual_remainder::multinomial} {}
};

// Slot-stable ancestors from one systematic draw's counts (the step after every scheme).
void bm_slot_stable_ancestors(benchmark::State& state, double sigma) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<particle_index> counts(n), ancestors(n), workspace;
  tsmc::default_engine rng{42};
  tsmc::systematic{}.offspring(fixture(n, sigma).weights, n, counts, rng);
  tsmc::slot_stable_ancestors(counts, ancestors, workspace);  // grow the workspace once
  for (auto _ : state) {
    tsmc::slot_stable_ancestors(counts, ancestors, workspace);
    benchmark::DoNotOptimize(ancestors.data());
    benchmark::ClobberMemory();
  }
  finish(state, n);
}

// Full resampler call: log-weights -> normalised weights -> counts -> slot-stable ancestors.
void bm_resampler_systematic(benchmark::State& state, double sigma) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto& lw = fixture(n, sigma).log_weights;
  std::vector<particle_index> ancestors(n);
  tsmc::resampler<tsmc::systematic> r;
  tsmc::default_engine rng{42};
  r.resample(lw, ancestors, rng);
  for (auto _ : state) {
    r.resample(lw, ancestors, rng);
    benchmark::DoNotOptimize(ancestors.data());
    benchmark::ClobberMemory();
  }
  finish(state, n);
}

void bm_std_discrete(benchmark::State& state, double sigma) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto& w = fixture(n, sigma).weights;
  std::vector<particle_index> counts(n);
  tsmc::default_engine rng{42};
  for (auto _ : state) {
    std::discrete_distribution<particle_index> draw(w.begin(), w.end());
    std::fill(counts.begin(), counts.end(), 0);
    for (std::size_t j = 0; j < n; ++j) ++counts[draw(rng)];
    benchmark::DoNotOptimize(counts.data());
    benchmark::ClobberMemory();
  }
  finish(state, n);
}

void bm_binary_search(benchmark::State& state, double sigma) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto& w = fixture(n, sigma).weights;
  std::vector<particle_index> counts(n);
  std::vector<double> cumulative(n);
  tsmc::default_engine rng{42};
  for (auto _ : state) {
    double c = 0.0;
    for (std::size_t i = 0; i < n; ++i) cumulative[i] = c += w[i];
    std::fill(counts.begin(), counts.end(), 0);
    for (std::size_t j = 0; j < n; ++j) {
      const double u = tsmc::uniform01(rng) * c;
      const auto it = std::upper_bound(cumulative.begin(), cumulative.end() - 1, u);
      ++counts[static_cast<std::size_t>(it - cumulative.begin())];
    }
    benchmark::DoNotOptimize(counts.data());
    benchmark::ClobberMemory();
  }
  finish(state, n);
}

void bm_copy(benchmark::State& state, double sigma) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto& w = fixture(n, sigma).weights;
  std::vector<particle_index> out(n);
  const double scale = static_cast<double>(n);
  for (auto _ : state) {
    const double* in = w.data();
    particle_index* o = out.data();
    for (std::size_t i = 0; i < n; ++i) o[i] = static_cast<particle_index>(in[i] * scale);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  finish(state, n);
}

// The spacings generation inside multinomial, without the merge.
void bm_spacings(benchmark::State& state, double) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<double> points(n + 1);
  tsmc::default_engine rng{42};
  for (auto _ : state) {
    benchmark::DoNotOptimize(tsmc::detail::exponential_partial_sums(points.data(), n + 1, rng));
    benchmark::DoNotOptimize(points.data());
    benchmark::ClobberMemory();
  }
  finish(state, n);
}

// Console output as usual (tsmc_bench::console_reporter: colours only on a terminal, the
// ns_per_particle counter as a number), then the ratio table.
class ratio_reporter : public tsmc_bench::console_reporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& run : runs) {
      if (run.error_occurred || run.run_type != Run::RT_Iteration || run.iterations == 0) continue;
      const std::string name = run.benchmark_name();
      const auto slash2 = name.rfind('/');
      const auto slash1 = name.rfind('/', slash2 - 1);
      if (slash1 == std::string::npos || slash2 == std::string::npos) continue;
      const std::string bench = name.substr(0, slash1);
      const std::string dispersion = name.substr(slash1 + 1, slash2 - slash1 - 1);
      const auto n = std::stoull(name.substr(slash2 + 1));
      const double ns = run.cpu_accumulated_time / static_cast<double>(run.iterations) / static_cast<double>(n) * 1e9;
      results_[dispersion][bench][n] = ns;
      if (std::find(order_.begin(), order_.end(), bench) == order_.end()) order_.push_back(bench);
    }
    console_reporter::ReportRuns(runs);
  }

  void Finalize() override {
    ConsoleReporter::Finalize();
    for (const auto& [dispersion, table] : results_) {
      std::printf("\n== %s: ns per particle (CPU) | ratio to copy floor | speed-up over std::discrete_distribution ==\n",
                  dispersion.c_str());
      std::vector<unsigned long long> sizes;
      for (const auto& [bench, row] : table)
        for (const auto& [n, ns] : row)
          if (std::find(sizes.begin(), sizes.end(), n) == sizes.end()) sizes.push_back(n);
      std::sort(sizes.begin(), sizes.end());
      std::printf("%-22s", "benchmark");
      for (const auto n : sizes) std::printf(" | %-24s", ("N=2^" + std::to_string(std::bit_width(n) - 1)).c_str());
      std::printf(" | 2^20/2^10\n");
      const auto* copy = table.count("copy") ? &table.at("copy") : nullptr;
      const auto* discrete = table.count("std_discrete") ? &table.at("std_discrete") : nullptr;
      for (const auto& bench : order_) {
        if (!table.count(bench)) continue;
        const auto& row = table.at(bench);
        std::printf("%-22s", bench.c_str());
        for (const auto n : sizes) {
          char cell[64] = "-";
          if (row.count(n)) {
            // a baseline filtered out of this run shows as "-", not as a ratio of 0
            const double ns = row.at(n);
            char to_copy[16] = "      -", speedup[16] = "      -";
            if (copy && copy->count(n)) std::snprintf(to_copy, sizeof to_copy, "%6.1fx", ns / copy->at(n));
            if (discrete && discrete->count(n)) std::snprintf(speedup, sizeof speedup, "%6.1fx", discrete->at(n) / ns);
            std::snprintf(cell, sizeof cell, "%7.3f %s %s", ns, to_copy, speedup);
          }
          std::printf(" | %-24s", cell);
        }
        if (row.count(1024) && row.count(1u << 20)) {
          std::printf(" | %5.2f", row.at(1u << 20) / row.at(1024));
        } else {
          std::printf(" | -");
        }
        std::printf("\n");
      }
    }
    std::fflush(stdout);
  }

 private:
  std::map<std::string, std::map<std::string, std::map<unsigned long long, double>>> results_;
  std::vector<std::string> order_;
};

}  // namespace

int main(int argc, char** argv) {
  tsmc_bench::initialize(
      &argc, argv,
      "bench_resampling: offspring() of every resampling scheme for N = 2^6 ... 2^20 particles (K = N), at\n"
      "log-weight dispersions N(0, 0.1^2) (sd0.1) and N(0, 2^2) (sd2); names <benchmark>/<dispersion>/<N>.\n"
      "  copy                   the floor: read N doubles, write N 32-bit indices\n"
      "  std_discrete           std::discrete_distribution built and drawn N times (what a user would write)\n"
      "  binary_search          cumulative weights + N uniforms located by std::upper_bound\n"
      "  systematic, stratified, ssp, residual_*, multinomial, killing   the library's schemes\n"
      "  slot_stable_ancestors, spacings, resampler_systematic          components and the whole resampler\n"
      "After the console table: ns per particle (CPU), the ratio to the copy floor, the speed-up over\n"
      "std::discrete_distribution, and the flatness ns(2^20) / ns(2^10); '-' where a baseline was filtered out.\n"
      "Reading it (no fixed target): the lower the ratio to the copy floor the better; a speed-up above 1 is\n"
      "faster than std::discrete_distribution; flatness near 1 means a cost per particle independent of N.\n"
      "docs/architecture.md records the measured figures of the designs tried.\n"
      "Typical: bench_resampling --benchmark_min_time=0.05");
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  using function = void (*)(benchmark::State&, double);
  const std::vector<std::pair<std::string, function>> benches{
      {"copy", bm_copy},
      {"systematic", bm_scheme<tsmc::systematic>},
      {"stratified", bm_scheme<tsmc::stratified>},
      {"ssp", bm_scheme<tsmc::ssp>},
      {"residual_systematic", bm_scheme<tsmc::residual>},
      {"residual_multinomial", bm_scheme<residual_multinomial>},
      {"multinomial", bm_scheme<tsmc::multinomial>},
      {"spacings", bm_spacings},
      {"killing", bm_scheme<tsmc::killing>},
      {"slot_stable_ancestors", bm_slot_stable_ancestors},
      {"resampler_systematic", bm_resampler_systematic},
      {"binary_search", bm_binary_search},
      {"std_discrete", bm_std_discrete},
  };
  for (const auto& [dispersion, sigma] : {std::pair{"sd0.1", 0.1}, std::pair{"sd2", 2.0}})
    for (const auto& [name, fn] : benches)
      benchmark::RegisterBenchmark((name + "/" + dispersion).c_str(), fn, sigma)
          ->RangeMultiplier(4)
          ->Range(64, 1 << 20)
          ->Unit(benchmark::kMicrosecond);
  ratio_reporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
