// GGUF models at the stories15M shape (dim 288, 6 layers, 6 heads, hidden 768, vocab 32000,
// seq_len 256; random weights): a llama2.c checkpoint written once, converted to GGUF in F32,
// F16, BF16 and Q8_0 (tsmc::gguf::convert_llama2c), each file memory-mapped. One decoding step of
// K = 64 particles = log_probs (K x V, normalised in double) + append; 4 steps per iteration from
// a 10-token prompt; every figure is per generated token.
//   llama2c/64          tsmc::llama2c::model on the checkpoint (the baseline)
//   gguf/<type>/64      tsmc::gguf::model on the converted file (the same engine: F32 weights used
//                       in place; F16, BF16, Q8_0 dequantised 64 rows at a time into a float
//                       buffer before each float GEMM)
// Counters: weight_MB, the bytes of the weight tensors the model reads (the file's tensors;
// llama2c: the checkpoint's floats); resident_MB, the growth of the process's resident memory
// from before the model is built to after its first 4 steps (the weights it touched, mapped
// from the file, plus the KV cache and work buffers), measured once per case.
// Goals (issue 26): gguf/f32/64 <= 1.05 x llama2c/64; gguf/q8_0/64 <= 1.3 x gguf/f32/64 with
// weight_MB <= 0.3 x F32's. Eigen's GEMM is single-threaded here (no OpenMP in this binary).
//   ./build/dev/benchmarks/bench_gguf --benchmark_min_time=1
#include "ratio_reporter.hpp"

#include <tsmc/models/gguf_llama2c.hpp>
#include <tsmc/models/gguf_model.hpp>
#include <tsmc/models/llama2c.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

namespace {

constexpr std::size_t steps_per_iteration = 4;

const tsmc::llama2c::config stories15m{.dim = 288, .hidden_dim = 768, .n_layers = 6, .n_heads = 6, .n_kv_heads = 6,
                                       .vocab_size = 32000, .seq_len = 256, .shared_classifier = true};

/// The checkpoint and its conversions, written once per process to the temporary directory
/// (each GGUF type on first use) and removed at exit.
class files {
 public:
  files() {
    dir_ = std::filesystem::temp_directory_path() /
           ("tsmc_bench_gguf_" + std::to_string(static_cast<unsigned long long>(
                                      std::chrono::steady_clock::now().time_since_epoch().count())));
    std::filesystem::create_directories(dir_);
    tsmc::llama2c::make_random_checkpoint(checkpoint(), stories15m, 2024);
  }
  files(const files&) = delete;
  files& operator=(const files&) = delete;
  ~files() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  [[nodiscard]] std::filesystem::path checkpoint() const { return dir_ / "stories15M_shape.bin"; }
  [[nodiscard]] std::filesystem::path gguf(std::uint32_t type) {
    const auto path = dir_ / ("stories15M_shape_" + std::to_string(type) + ".gguf");
    if (!std::filesystem::exists(path)) tsmc::gguf::convert_llama2c(checkpoint(), "", path, type);
    return path;
  }

 private:
  std::filesystem::path dir_;
};

files& shared_files() {
  static files instance;
  return instance;
}

std::vector<tsmc::token> tokens(std::size_t n, std::uint64_t seed) {
  tsmc::default_engine rng(seed);
  std::vector<tsmc::token> out(n);
  for (auto& t : out) t = static_cast<tsmc::token>(3 + tsmc::uniform_index(rng, 31997));
  return out;
}

/// The process's resident memory in bytes (VmRSS), 0 where /proc is absent.
double resident_bytes() {
  std::ifstream in("/proc/self/status");
  std::string key;
  while (in >> key) {
    if (key == "VmRSS:") {
      double kb = 0;
      in >> kb;
      return kb * 1024.0;
    }
    std::getline(in, key);
  }
  return 0.0;
}

template <class Model>
void decode(Model& m, tsmc::log_prob_matrix& out, std::size_t steps, std::uint64_t seed) {
  for (std::size_t s = 0; s < steps; ++s) {
    m.log_probs(out);
    benchmark::DoNotOptimize(out.data());
    m.append(tokens(m.particles(), seed + s));
  }
}

/// The timed loop of a model built by `make` (resident memory measured around its construction
/// and first steps).
template <class Make>
void run(benchmark::State& state, Make make, double weight_bytes_of_llama2c) {
  const auto K = static_cast<std::size_t>(state.range(0));
  const std::vector<tsmc::token> prompt = tokens(10, 1);
  tsmc::log_prob_matrix out(K, stories15m.vocab_size);
  const double before = resident_bytes();
  auto m = make();
  m->start(prompt, K);
  decode(*m, out, steps_per_iteration, 7);
  state.counters["resident_MB"] = (resident_bytes() - before) / 1e6;
  double weight_bytes = weight_bytes_of_llama2c;
  if constexpr (requires { m->weight_bytes(); }) weight_bytes = static_cast<double>(m->weight_bytes());
  state.counters["weight_MB"] = weight_bytes / 1e6;
  for (auto _ : state) {
    state.PauseTiming();
    m->start(prompt, K);
    state.ResumeTiming();
    decode(*m, out, steps_per_iteration, 7);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(K * steps_per_iteration));
}

void llama2c(benchmark::State& state) {
  const auto path = shared_files().checkpoint();
  const double floats = static_cast<double>(tsmc::llama2c::checkpoint_floats(stories15m));
  run(state, [&] { return std::make_unique<tsmc::llama2c::model>(path, tsmc::llama2c::load_mode::map); },
      floats * 4.0);
}

void gguf(benchmark::State& state, std::uint32_t type) {
  const auto path = shared_files().gguf(type);
  run(state, [&] { return std::make_unique<tsmc::gguf::model>(path, tsmc::gguf::model_options{}, tsmc::gguf::load_mode::map); },
      0.0);
}

}  // namespace

BENCHMARK(llama2c)->Arg(64)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(gguf, f32, 0u)->Arg(64)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(gguf, f16, 1u)->Arg(64)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(gguf, bf16, 30u)->Arg(64)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(gguf, q8_0, 8u)->Arg(64)->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  using baseline = tsmc_bench::ratio_reporter::baseline;
  tsmc_bench::ratio_reporter reporter([](const std::string& name) -> baseline {
    if (name == "gguf/f32/64") return {"llama2c/64", 1.0};  // goal <= 1.05
    if (name == "gguf/f16/64" || name == "gguf/bf16/64" || name == "gguf/q8_0/64")
      return {"gguf/f32/64", 1.0};  // q8_0: goal <= 1.3
    return {};
  });
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
}
