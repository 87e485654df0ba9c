#pragma once
// A Google Benchmark reporter that prints the usual console table and then, for every benchmark,
// its time as a ratio to a baseline measured in the same run. Ratios are what these benchmarks
// claim: absolute times drift on shared machines, ratios measured side by side much less.

#include <benchmark/benchmark.h>

#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace tsmc_bench {

/// Records the CPU time per iteration (single-threaded benchmarks; less disturbed by other load than wall time) of every run and prints ratio rows at the end.
class ratio_reporter : public benchmark::ConsoleReporter {
 public:
  /// What a benchmark is compared with: ratio = time / (multiple * baseline time).
  struct baseline {
    std::string name;       ///< the baseline's benchmark name ("" for none)
    double multiple = 1.0;  ///< how many baseline units one iteration does (e.g. steps per run)
  };

  /// baseline_of maps a benchmark's name (e.g. "fused_step/256") to its baseline.
  explicit ratio_reporter(std::function<baseline(const std::string&)> baseline_of)
      : baseline_of_(std::move(baseline_of)) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.run_type != Run::RT_Iteration || run.error_occurred) continue;
      const std::string name = run.benchmark_name();
      order_.push_back(name);
      times_[name] = run.GetAdjustedCPUTime();
    }
  }

  void Finalize() override {
    ConsoleReporter::Finalize();
    std::printf("\n%-52s %-40s %10s\n", "benchmark", "baseline (same run)", "ratio");
    for (const std::string& name : order_) {
      const baseline base = baseline_of_(name);
      if (base.name.empty() || !times_.count(base.name)) continue;
      char multiple[32];
      std::snprintf(multiple, sizeof multiple, " x %g", base.multiple);
      const std::string label = base.multiple == 1.0 ? base.name : base.name + multiple;
      std::printf("%-52s %-40s %10.3f\n", name.c_str(), label.c_str(), times_[name] / (base.multiple * times_[base.name]));
    }
    std::fflush(stdout);
  }

 private:
  std::function<baseline(const std::string&)> baseline_of_;
  std::vector<std::string> order_;
  std::map<std::string, double> times_;
};

}  // namespace tsmc_bench
