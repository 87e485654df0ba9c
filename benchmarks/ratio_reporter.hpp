#pragma once
// A Google Benchmark reporter that prints the usual console table and then, for every benchmark,
// its time as a ratio to a baseline measured in the same run. Ratios are what these benchmarks
// claim: absolute times drift on shared machines, ratios measured side by side much less.
//
// Also the console conventions every bench_*.cpp shares (through tsmc_bench::initialize and
// tsmc_bench::console_reporter):
// * --help prints what the binary measures and its target ratios, then Google Benchmark's flags;
// * colours only on a terminal, and never with --benchmark_color=false (Google Benchmark applies
//   that flag only to its own default reporter, not to one passed in);
// * time-per-item counters (kIsRate | kInvert, such as ns_per_particle) are printed as plain
//   numbers after the row ("ns_per_particle=0.941"), not with the "s" suffix Google Benchmark
//   gives inverted rates.

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <unistd.h>

namespace tsmc_bench {

namespace detail {

/// -1: --benchmark_color=auto (or not given); 0: off; 1: on.
inline int& color_flag() {
  static int flag = -1;
  return flag;
}

}  // namespace detail

/// Whether the console output should be coloured: --benchmark_color if given, else only when
/// stdout is a terminal whose TERM is not "dumb".
[[nodiscard]] inline bool use_color() {
  if (detail::color_flag() >= 0) return detail::color_flag() == 1;
  const char* term = std::getenv("TERM");
  return isatty(fileno(stdout)) != 0 && term != nullptr && std::string_view(term) != "dumb";
}

/// benchmark::Initialize with the conventions above: `about` (what is measured, the goals) is
/// printed by --help / -h before Google Benchmark's own flags; --benchmark_color is remembered.
inline void initialize(int* argc, char** argv, const char* about) {
  for (int i = 1; i < *argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::printf("%s\n", about);
      std::printf("Google Benchmark flags (all binaries):\n");
      benchmark::PrintDefaultHelp();
      std::exit(0);
    }
    constexpr std::string_view color = "--benchmark_color=";
    if (arg.substr(0, color.size()) == color) {
      const std::string_view value = arg.substr(color.size());
      if (value == "false" || value == "no" || value == "0" || value == "off")
        detail::color_flag() = 0;
      else if (value == "true" || value == "yes" || value == "1" || value == "on")
        detail::color_flag() = 1;
      else
        detail::color_flag() = -1;
    }
  }
  benchmark::Initialize(argc, argv);
}

/// The console reporter of every tsmc benchmark: colour as use_color() says, tabular counters,
/// time-per-item counters printed as numbers after the row.
class console_reporter : public benchmark::ConsoleReporter {
 public:
  console_reporter()
      : ConsoleReporter(use_color() ? OO_ColorTabular : OO_Tabular) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    std::vector<Run> shown = runs;
    for (Run& run : shown) {
      for (auto it = run.counters.begin(); it != run.counters.end();) {
        const auto flags = it->second.flags;
        if ((flags & benchmark::Counter::kIsRate) && (flags & benchmark::Counter::kInvert)) {
          char text[96];
          std::snprintf(text, sizeof text, "%s%s=%.4g", run.report_label.empty() ? "" : " ", it->first.c_str(),
                        it->second.value);
          run.report_label += text;
          it = run.counters.erase(it);
        } else {
          ++it;
        }
      }
    }
    ConsoleReporter::ReportRuns(shown);
  }
};

/// Records the CPU time per iteration (single-threaded benchmarks; less disturbed by other load than wall time) of every run and prints ratio rows at the end.
class ratio_reporter : public console_reporter {
 public:
  /// What a benchmark is compared with: ratio = time / (multiple * baseline time).
  struct baseline {
    std::string name;       ///< the baseline's benchmark name ("" for none)
    double multiple = 1.0;  ///< how many baseline units one iteration does (e.g. steps per run)
  };

  /// baseline_of maps a benchmark's name (e.g. "fused_step/256") to its baseline.
  explicit ratio_reporter(std::function<baseline(const std::string&)> baseline_of)
      : baselines_of_([of = std::move(baseline_of)](const std::string& name) {
          return std::vector<baseline>{of(name)};
        }) {}

  /// baselines_of maps a benchmark's name to several baselines: one ratio row for each.
  explicit ratio_reporter(std::function<std::vector<baseline>(const std::string&)> baselines_of)
      : baselines_of_(std::move(baselines_of)) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    console_reporter::ReportRuns(runs);
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
      for (const baseline& base : baselines_of_(name)) {
        if (base.name.empty()) continue;
        char multiple[32];
        std::snprintf(multiple, sizeof multiple, " x %g", base.multiple);
        const std::string label = base.multiple == 1.0 ? base.name : base.name + multiple;
        if (!times_.count(base.name)) {  // filtered out of this run: no ratio rather than a wrong one
          std::printf("%-52s %-40s %10s\n", name.c_str(), (label + " (not run)").c_str(), "-");
          continue;
        }
        std::printf("%-52s %-40s %10.3f\n", name.c_str(), label.c_str(),
                    times_[name] / (base.multiple * times_[base.name]));
      }
    }
    std::fflush(stdout);
  }

 private:
  std::function<std::vector<baseline>(const std::string&)> baselines_of_;
  std::vector<std::string> order_;
  std::map<std::string, double> times_;
};

}  // namespace tsmc_bench
