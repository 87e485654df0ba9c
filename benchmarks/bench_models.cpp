// The llama2.c model at the stories15M shape (dim 288, 6 layers, 6 heads, 6 kv heads, hidden 768,
// vocab 32000, seq_len 256; random weights written once to a temporary file), against baselines
// measured in the same run. One decoding step of K particles = log_probs (K x V, normalised in
// double) + append (one token per particle); every figure is per generated token.
//   batched/64/P            K = 64 particles decoded together, 4 steps from a prompt of P tokens
//                           (positions P..P+3; P = 10, 100, 200)
//   one_at_a_time/64/10     the same 64 x 4 tokens, the same code, one particle (K = 1) at a time
//   single_particle/16      K = 1, 16 steps from a 10-token prompt
//   matvec_reference/16/10  the same 16 steps by a straightforward single-sequence forward pass
//                           written here (matrix-vector loops, as the format's reference program;
//                           the same log-softmax in double at the end)
//   reorder/64/100          reorder after resampling at length 100 with 32 of 64 slots dead
//                           (slot-stable ancestors: 32 slots x 6 layers x 100 positions copied)
//   gemm_floor/64           the GEMM floor of one step at K = 64: the same matrix products of the
//                           same shapes as a decoding step (per layer q, k, v, o, w1, w3, w2; then
//                           the classifier), each one Eigen float product with the checkpoint's
//                           weights, back to back, nothing else (no attention, norms, RoPE, SwiGLU
//                           or log-softmax)
//   matvec_reference/4/10   the single-sequence decoder over the positions of batched/64/10
// Goals: batched/64/10 >= 5x the tokens/s of one_at_a_time/64/10 (ratio <= 0.2);
// single_particle/16 <= 1 x matvec_reference/16/10; batched/64/200 <= 1.5 x batched/64/10;
// batched/64/10 <= 1.3 x gemm_floor/64 (time per step: the ratio line "batched/64/10 vs floor");
// batched/64/10 per token <= 1/8 of matvec_reference/4/10 per token (K = 64's aggregate tokens/s
// >= 8x the single-sequence decoder's: the ratio line "batched/64/10 vs matvec", goal <= 0.125);
// reorder/64/100: time per copied cache row (counter time_per_row) and its share of one step of
// batched/64/100 (ratio). Eigen's GEMM is single-threaded here (this binary does not use OpenMP).
//   ./build/dev/benchmarks/bench_models --benchmark_min_time=0.5
#include "ratio_reporter.hpp"

#include <tsmc/models/llama2c.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

namespace {

constexpr std::size_t steps_per_iteration = 4;  // decoding steps per iteration of the batched cases

const tsmc::llama2c::config stories15m{.dim = 288, .hidden_dim = 768, .n_layers = 6, .n_heads = 6, .n_kv_heads = 6,
                                       .vocab_size = 32000, .seq_len = 256, .shared_classifier = true};

/// The random checkpoint, written once per process to the temporary directory and removed at exit.
class shared_checkpoint {
 public:
  shared_checkpoint() {
    path_ = std::filesystem::temp_directory_path() /
            ("tsmc_bench_models_" + std::to_string(static_cast<unsigned long long>(
                                         std::chrono::steady_clock::now().time_since_epoch().count())) +
             ".bin");
    tsmc::llama2c::make_random_checkpoint(path_, stories15m, 2024);
    weights_ = std::make_shared<const tsmc::llama2c::checkpoint>(path_);
  }
  shared_checkpoint(const shared_checkpoint&) = delete;
  shared_checkpoint& operator=(const shared_checkpoint&) = delete;
  ~shared_checkpoint() {
    weights_.reset();
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
  [[nodiscard]] const std::shared_ptr<const tsmc::llama2c::checkpoint>& weights() const { return weights_; }

 private:
  std::filesystem::path path_;
  std::shared_ptr<const tsmc::llama2c::checkpoint> weights_;
};

const std::shared_ptr<const tsmc::llama2c::checkpoint>& weights() {
  static const shared_checkpoint instance;
  return instance.weights();
}

std::vector<tsmc::token> tokens(std::size_t n, std::uint64_t seed) {
  tsmc::default_engine rng(seed);
  std::vector<tsmc::token> out(n);
  for (auto& t : out) t = static_cast<tsmc::token>(3 + tsmc::uniform_index(rng, 31997));
  return out;
}

/// `steps` decoding steps of the model's K particles with fixed tokens.
void decode(tsmc::llama2c::model& m, tsmc::log_prob_matrix& out, std::size_t steps, std::uint64_t seed) {
  for (std::size_t s = 0; s < steps; ++s) {
    m.log_probs(out);
    benchmark::DoNotOptimize(out.data());
    m.append(tokens(m.particles(), seed + s));
  }
}

void batched(benchmark::State& state) {
  const auto K = static_cast<std::size_t>(state.range(0));
  const auto prompt_length = static_cast<std::size_t>(state.range(1));
  tsmc::llama2c::model m(weights());
  tsmc::log_prob_matrix out(K, stories15m.vocab_size);
  const std::vector<tsmc::token> prompt = tokens(prompt_length, 1);
  for (auto _ : state) {
    state.PauseTiming();
    m.start(prompt, K);
    state.ResumeTiming();
    decode(m, out, steps_per_iteration, 7);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(K * steps_per_iteration));
}

void one_at_a_time(benchmark::State& state) {
  const auto K = static_cast<std::size_t>(state.range(0));
  const auto prompt_length = static_cast<std::size_t>(state.range(1));
  tsmc::llama2c::model m(weights());
  tsmc::log_prob_matrix out(1, stories15m.vocab_size);
  const std::vector<tsmc::token> prompt = tokens(prompt_length, 1);
  for (auto _ : state) {
    for (std::size_t k = 0; k < K; ++k) {
      state.PauseTiming();
      m.start(prompt, 1);
      state.ResumeTiming();
      decode(m, out, steps_per_iteration, 7 + 100 * k);
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(K * steps_per_iteration));
}

void single_particle(benchmark::State& state) {
  const auto steps = static_cast<std::size_t>(state.range(0));
  tsmc::llama2c::model m(weights());
  tsmc::log_prob_matrix out(1, stories15m.vocab_size);
  const std::vector<tsmc::token> prompt = tokens(10, 1);
  for (auto _ : state) {
    state.PauseTiming();
    m.start(prompt, 1);
    state.ResumeTiming();
    decode(m, out, steps, 7);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(steps));
}

/// A straightforward single-sequence forward pass with a KV cache: matrix-vector loops over the
/// checkpoint's [out][in] arrays, as the format's reference program does, in float; the same
/// log-softmax in double at the end as the model's log_probs.
class matvec_model {
 public:
  explicit matvec_model(const tsmc::llama2c::checkpoint& w)
      : w_(w), c_(w.configuration()), d_(static_cast<std::size_t>(c_.dim)), h_(static_cast<std::size_t>(c_.hidden_dim)),
        kv_(c_.kv_dim()), hs_(c_.head_size()), x_(d_), xb_(d_), xb2_(d_), q_(d_), hb_(h_), hb2_(h_),
        att_(static_cast<std::size_t>(c_.seq_len)), logits_(static_cast<std::size_t>(c_.vocab_size)),
        key_cache_(static_cast<std::size_t>(c_.n_layers * c_.seq_len) * kv_),
        value_cache_(static_cast<std::size_t>(c_.n_layers * c_.seq_len) * kv_) {}

  /// Runs `token` at position pos; writes the normalised log-probabilities of the next token.
  void forward(tsmc::token token, std::size_t pos, std::vector<double>& log_probs) {
    const std::size_t L = static_cast<std::size_t>(c_.n_layers), S = static_cast<std::size_t>(c_.seq_len),
                      NH = static_cast<std::size_t>(c_.n_heads), rep = NH / static_cast<std::size_t>(c_.n_kv_heads);
    const float* emb = w_.token_embedding().data() + static_cast<std::size_t>(token) * d_;
    for (std::size_t i = 0; i < d_; ++i) x_[i] = emb[i];
    for (std::size_t l = 0; l < L; ++l) {
      rmsnorm(xb_.data(), x_.data(), w_.rms_att(l).data());
      float* k = key_cache_.data() + (l * S + pos) * kv_;
      float* v = value_cache_.data() + (l * S + pos) * kv_;
      matmul(q_.data(), xb_.data(), w_.wq(l).data(), d_, d_);
      matmul(k, xb_.data(), w_.wk(l).data(), d_, kv_);
      matmul(v, xb_.data(), w_.wv(l).data(), d_, kv_);
      for (std::size_t i = 0; i < d_; i += 2) {
        const float freq = 1.0f / std::pow(10000.0f, static_cast<float>(i % hs_) / static_cast<float>(hs_));
        const float angle = static_cast<float>(pos) * freq, fc = std::cos(angle), fs = std::sin(angle);
        for (int which = 0; which < (i < kv_ ? 2 : 1); ++which) {
          float* vec = which == 0 ? q_.data() : k;
          const float a = vec[i], b = vec[i + 1];
          vec[i] = a * fc - b * fs;
          vec[i + 1] = a * fs + b * fc;
        }
      }
      for (std::size_t head = 0; head < NH; ++head) {
        const float* qh = q_.data() + head * hs_;
        const std::size_t off = (head / rep) * hs_;
        float max = -1e30f;
        for (std::size_t t = 0; t <= pos; ++t) {
          const float* kt = key_cache_.data() + (l * S + t) * kv_ + off;
          float score = 0.0f;
          for (std::size_t i = 0; i < hs_; ++i) score += qh[i] * kt[i];
          att_[t] = score / std::sqrt(static_cast<float>(hs_));
          max = std::max(max, att_[t]);
        }
        float sum = 0.0f;
        for (std::size_t t = 0; t <= pos; ++t) sum += (att_[t] = std::exp(att_[t] - max));
        float* out = xb_.data() + head * hs_;
        for (std::size_t i = 0; i < hs_; ++i) out[i] = 0.0f;
        for (std::size_t t = 0; t <= pos; ++t) {
          const float* vt = value_cache_.data() + (l * S + t) * kv_ + off;
          const float a = att_[t] / sum;
          for (std::size_t i = 0; i < hs_; ++i) out[i] += a * vt[i];
        }
      }
      matmul(xb2_.data(), xb_.data(), w_.wo(l).data(), d_, d_);
      for (std::size_t i = 0; i < d_; ++i) x_[i] += xb2_[i];
      rmsnorm(xb_.data(), x_.data(), w_.rms_ffn(l).data());
      matmul(hb_.data(), xb_.data(), w_.w1(l).data(), d_, h_);
      matmul(hb2_.data(), xb_.data(), w_.w3(l).data(), d_, h_);
      for (std::size_t i = 0; i < h_; ++i) hb_[i] = hb_[i] / (1.0f + std::exp(-hb_[i])) * hb2_[i];
      matmul(xb_.data(), hb_.data(), w_.w2(l).data(), h_, d_);
      for (std::size_t i = 0; i < d_; ++i) x_[i] += xb_[i];
    }
    rmsnorm(x_.data(), x_.data(), w_.rms_final().data());
    const std::size_t V = logits_.size();
    matmul(logits_.data(), x_.data(), w_.wcls().data(), d_, V);
    float max = logits_[0];
    for (std::size_t i = 1; i < V; ++i) max = std::max(max, logits_[i]);
    double sum = 0.0;
    for (std::size_t i = 0; i < V; ++i) sum += std::exp(static_cast<double>(logits_[i]) - max);
    const double lse = max + std::log(sum);
    for (std::size_t i = 0; i < V; ++i) log_probs[i] = static_cast<double>(logits_[i]) - lse;
  }

 private:
  // xout (d) = W (d x n) x (n)
  static void matmul(float* xout, const float* x, const float* w, std::size_t n, std::size_t d) {
    for (std::size_t i = 0; i < d; ++i) {
      float val = 0.0f;
      for (std::size_t j = 0; j < n; ++j) val += w[i * n + j] * x[j];
      xout[i] = val;
    }
  }
  void rmsnorm(float* out, const float* x, const float* weight) const {
    float ss = 0.0f;
    for (std::size_t j = 0; j < d_; ++j) ss += x[j] * x[j];
    ss = 1.0f / std::sqrt(ss / static_cast<float>(d_) + 1e-5f);
    for (std::size_t j = 0; j < d_; ++j) out[j] = weight[j] * (ss * x[j]);
  }

  const tsmc::llama2c::checkpoint& w_;
  tsmc::llama2c::config c_;
  std::size_t d_, h_, kv_, hs_;
  std::vector<float> x_, xb_, xb2_, q_, hb_, hb2_, att_, logits_, key_cache_, value_cache_;
};

void matvec_reference(benchmark::State& state) {
  const auto steps = static_cast<std::size_t>(state.range(0));
  const auto prompt_length = static_cast<std::size_t>(state.range(1));
  matvec_model m(*weights());
  std::vector<double> log_probs(static_cast<std::size_t>(stories15m.vocab_size));
  const std::vector<tsmc::token> prompt = tokens(prompt_length, 1);
  for (auto _ : state) {
    state.PauseTiming();
    for (std::size_t p = 0; p + 1 < prompt.size(); ++p) m.forward(prompt[p], p, log_probs);
    state.ResumeTiming();
    // The same tokens as single_particle: the prompt's last token, then the decoded ones.
    tsmc::token next = prompt.back();
    for (std::size_t s = 0; s < steps; ++s) {
      m.forward(next, prompt.size() - 1 + s, log_probs);
      benchmark::DoNotOptimize(log_probs.data());
      next = tokens(1, 7 + s)[0];
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(steps));
}

/// The matrix products of `steps` decoding steps at K rows, back to back (see gemm_floor above).
class gemm_floor_products {
 public:
  gemm_floor_products(const tsmc::llama2c::checkpoint& w, std::size_t K) : w_(w) {
    const tsmc::llama2c::config& c = w.configuration();
    const auto rows = static_cast<Eigen::Index>(K);
    x_ = matrix::Random(rows, c.dim);
    kv_ = matrix::Random(rows, static_cast<Eigen::Index>(c.kv_dim()));
    h_ = matrix::Random(rows, c.hidden_dim);
    h3_ = matrix::Random(rows, c.hidden_dim);
    out_ = matrix::Zero(rows, c.dim);
    logits_ = matrix::Zero(rows, c.vocab_size);
    x_ *= 0.1f;
    h_ *= 0.1f;
  }
  void step() {
    const auto layers = static_cast<std::size_t>(w_.configuration().n_layers);
    for (std::size_t l = 0; l < layers; ++l) {
      out_.noalias() = x_ * w_.wq(l).transpose();
      kv_.noalias() = x_ * w_.wk(l).transpose();
      kv_.noalias() = x_ * w_.wv(l).transpose();
      out_.noalias() += x_ * w_.wo(l).transpose();
      h_.noalias() = x_ * w_.w1(l).transpose();
      h3_.noalias() = x_ * w_.w3(l).transpose();
      out_.noalias() += h_ * w_.w2(l).transpose();
    }
    logits_.noalias() = x_ * w_.wcls().transpose();
    benchmark::DoNotOptimize(logits_.data());
    benchmark::DoNotOptimize(out_.data());
    benchmark::DoNotOptimize(kv_.data());
    benchmark::DoNotOptimize(h3_.data());
  }

 private:
  using matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const tsmc::llama2c::checkpoint& w_;
  matrix x_, kv_, h_, h3_, out_, logits_;
};

void gemm_floor(benchmark::State& state) {
  const auto K = static_cast<std::size_t>(state.range(0));
  gemm_floor_products products(*weights(), K);
  for (auto _ : state)
    for (std::size_t s = 0; s < steps_per_iteration; ++s) products.step();
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(K * steps_per_iteration));
}

void reorder(benchmark::State& state) {
  const auto K = static_cast<std::size_t>(state.range(0));
  const auto length = static_cast<std::size_t>(state.range(1));
  tsmc::llama2c::model m(weights());
  m.start(tokens(length, 1), K);
  std::vector<tsmc::particle_index> ancestors(K);
  for (std::size_t k = 0; k < K; ++k) ancestors[k] = static_cast<tsmc::particle_index>(k - k % 2);  // odd slots dead
  std::size_t rows = 0;
  for (auto _ : state) {
    const std::size_t before = m.copied_rows();
    m.reorder(ancestors);
    rows = m.copied_rows() - before;
  }
  state.counters["rows"] = static_cast<double>(rows);
  // Seconds per copied row (printed with an SI prefix: 1.5n is 1.5 ns).
  state.counters["time_per_row"] = benchmark::Counter(
      static_cast<double>(rows), benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

}  // namespace

BENCHMARK(batched)->Args({64, 10})->Args({64, 100})->Args({64, 200})->Unit(benchmark::kMillisecond);
BENCHMARK(one_at_a_time)->Args({64, 10})->Unit(benchmark::kMillisecond);
BENCHMARK(single_particle)->Arg(16)->Unit(benchmark::kMillisecond);
BENCHMARK(matvec_reference)->Args({16, 10})->Args({4, 10})->Unit(benchmark::kMillisecond);
BENCHMARK(reorder)->Args({64, 100})->Unit(benchmark::kMillisecond);
BENCHMARK(gemm_floor)->Arg(64)->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  using baseline = tsmc_bench::ratio_reporter::baseline;
  tsmc_bench::ratio_reporter reporter([](const std::string& name) -> std::vector<baseline> {
    if (name == "batched/64/10")
      return {{"one_at_a_time/64/10", 1.0},     // goal <= 0.2
              {"gemm_floor/64", 1.0},            // goal <= 1.3
              {"matvec_reference/4/10", 64.0}};  // per token (64 x 4 against 4 tokens): goal <= 1/8
    if (name == "batched/64/200") return {{"batched/64/10", 1.0}};                        // goal <= 1.5
    if (name == "single_particle/16") return {{"matvec_reference/16/10", 1.0}};           // goal <= 1
    if (name == "reorder/64/100") return {{"batched/64/100", 1.0 / steps_per_iteration}};  // share of one step
    return {};
  });
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
}
