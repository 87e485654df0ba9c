#pragma once
// Helpers for the llama2c tests: a temporary directory, small configs, and a straightforward
// from-scratch forward pass (double precision, no cache) that reads the weights from the flat
// array written to the file with its own offsets, computed here from the format's description.

#include <tsmc/models/llama2c.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <random>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

namespace llama2c_test {

/// A fresh directory under the system's temporary directory, removed with its files at scope exit.
class temp_dir {
 public:
  temp_dir() {
    static std::atomic<unsigned> counter{0};
    std::random_device device;
    const auto stamp = static_cast<unsigned long long>(std::chrono::steady_clock::now().time_since_epoch().count());
    std::string name = "tsmc_llama2c_test_" + std::to_string(device()) + "_" + std::to_string(stamp) + "_" +
                       std::to_string(counter++);
#if defined(__unix__) || defined(__APPLE__)
    name += '_';
    name += std::to_string(::getpid());
#endif
    path_ = std::filesystem::temp_directory_path() / name;
    std::filesystem::create_directories(path_);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  [[nodiscard]] std::filesystem::path file(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

/// "'path'", as the library's messages quote a file.
inline std::string quoted(const std::filesystem::path& path) { return tsmc::llama2c::detail::quoted(path); }

/// Multi-head attention, shared classifier.
inline tsmc::llama2c::config tiny_shared() {
  return {.dim = 16, .hidden_dim = 40, .n_layers = 2, .n_heads = 4, .n_kv_heads = 4, .vocab_size = 37,
          .seq_len = 24, .shared_classifier = true};
}

/// Grouped-query attention (3 query heads per kv head), unshared classifier.
inline tsmc::llama2c::config tiny_gqa_unshared() {
  return {.dim = 24, .hidden_dim = 36, .n_layers = 2, .n_heads = 6, .n_kv_heads = 2, .vocab_size = 41,
          .seq_len = 24, .shared_classifier = false};
}

/// The final normalised hidden state and the logits of the last position of a sequence.
struct reference_output {
  std::vector<double> hidden;
  std::vector<double> logits;
};

/// Causal multi-head (grouped-query) attention in double at position t of a reference forward
/// pass: query heads NH, key/value heads NKV, head size HS; q[s], k[s], v[s] the positions'
/// rotated queries, keys and values.
inline std::vector<double> causal_attention(const std::vector<std::vector<double>>& q,
                                            const std::vector<std::vector<double>>& k,
                                            const std::vector<std::vector<double>>& v, std::size_t t, std::size_t NH,
                                            std::size_t NKV, std::size_t HS) {
  std::vector<double> att(NH * HS, 0.0);
  for (std::size_t h = 0; h < NH; ++h) {
    const std::size_t g = h / (NH / NKV);
    std::vector<double> score(t + 1);
    double max = -1e300;
    for (std::size_t s = 0; s <= t; ++s) {
      double dot = 0.0;
      for (std::size_t i = 0; i < HS; ++i) dot += q[t][h * HS + i] * k[s][g * HS + i];
      score[s] = dot / std::sqrt(static_cast<double>(HS));
      max = std::max(max, score[s]);
    }
    double sum = 0.0;
    for (double& sc : score) sum += (sc = std::exp(sc - max));
    for (std::size_t s = 0; s <= t; ++s)
      for (std::size_t i = 0; i < HS; ++i) att[h * HS + i] += score[s] / sum * v[s][g * HS + i];
  }
  return att;
}

/// The whole causal forward pass over `tokens`, recomputed from scratch, in double.
inline reference_output reference_forward(const tsmc::llama2c::config& c, const std::vector<float>& w,
                                          std::span<const tsmc::token> tokens) {
  const std::size_t D = static_cast<std::size_t>(c.dim), H = static_cast<std::size_t>(c.hidden_dim),
                    L = static_cast<std::size_t>(c.n_layers), NH = static_cast<std::size_t>(c.n_heads),
                    NKV = static_cast<std::size_t>(c.n_kv_heads), V = static_cast<std::size_t>(c.vocab_size),
                    S = static_cast<std::size_t>(c.seq_len);
  const std::size_t HS = D / NH, KV = D * NKV / NH, n = tokens.size();
  // Offsets, in the order the format lists the arrays.
  const std::size_t emb = 0, rms_att = emb + V * D, wq = rms_att + L * D, wk = wq + L * D * D, wv = wk + L * KV * D,
                    wo = wv + L * KV * D, rms_ffn = wo + L * D * D, w1 = rms_ffn + L * D, w2 = w1 + L * H * D,
                    w3 = w2 + L * D * H, rms_final = w3 + L * H * D, rope = rms_final + D,
                    wcls = c.shared_classifier ? emb : rope + S * HS;
  auto matvec = [&](std::size_t at, std::size_t out_dim, std::size_t in_dim, const std::vector<double>& x) {
    std::vector<double> y(out_dim, 0.0);
    for (std::size_t i = 0; i < out_dim; ++i)
      for (std::size_t j = 0; j < in_dim; ++j) y[i] += static_cast<double>(w[at + i * in_dim + j]) * x[j];
    return y;
  };
  auto rmsnorm = [&](const std::vector<double>& x, std::size_t at) {
    double ss = 0.0;
    for (double v : x) ss += v * v;
    const double scale = 1.0 / std::sqrt(ss / static_cast<double>(D) + 1e-5);
    std::vector<double> y(D);
    for (std::size_t i = 0; i < D; ++i) y[i] = static_cast<double>(w[at + i]) * x[i] * scale;
    return y;
  };
  auto rotate = [&](std::vector<double>& v, std::size_t width, std::size_t pos) {
    for (std::size_t i = 0; i < width; i += 2) {
      const double head_dim = static_cast<double>(i % HS);
      const double freq = 1.0 / std::pow(10000.0, head_dim / static_cast<double>(HS));
      const double angle = static_cast<double>(pos) * freq;
      const double a = v[i], b = v[i + 1];
      v[i] = a * std::cos(angle) - b * std::sin(angle);
      v[i + 1] = a * std::sin(angle) + b * std::cos(angle);
    }
  };
  std::vector<std::vector<double>> x(n, std::vector<double>(D));
  for (std::size_t t = 0; t < n; ++t)
    for (std::size_t i = 0; i < D; ++i) x[t][i] = w[emb + static_cast<std::size_t>(tokens[t]) * D + i];
  for (std::size_t l = 0; l < L; ++l) {
    std::vector<std::vector<double>> q(n), k(n), v(n);
    for (std::size_t t = 0; t < n; ++t) {
      const std::vector<double> xb = rmsnorm(x[t], rms_att + l * D);
      q[t] = matvec(wq + l * D * D, D, D, xb);
      k[t] = matvec(wk + l * KV * D, KV, D, xb);
      v[t] = matvec(wv + l * KV * D, KV, D, xb);
      rotate(q[t], D, t);
      rotate(k[t], KV, t);
    }
    for (std::size_t t = 0; t < n; ++t) {
      const std::vector<double> att = causal_attention(q, k, v, t, NH, NKV, HS);
      const std::vector<double> o = matvec(wo + l * D * D, D, D, att);
      for (std::size_t i = 0; i < D; ++i) x[t][i] += o[i];
      const std::vector<double> xb = rmsnorm(x[t], rms_ffn + l * D);
      std::vector<double> a = matvec(w1 + l * H * D, H, D, xb);
      const std::vector<double> b = matvec(w3 + l * H * D, H, D, xb);
      for (std::size_t i = 0; i < H; ++i) a[i] = a[i] / (1.0 + std::exp(-a[i])) * b[i];
      const std::vector<double> f = matvec(w2 + l * D * H, D, H, a);
      for (std::size_t i = 0; i < D; ++i) x[t][i] += f[i];
    }
  }
  reference_output out;
  out.hidden = rmsnorm(x[n - 1], rms_final);
  out.logits = matvec(wcls, V, D, out.hidden);
  return out;
}

/// max_i |a_i - b_i| / max(1, max_i |b_i|).
template <class A>
inline double relative_error(const A& a, const std::vector<double>& b) {
  double diff = 0.0, scale = 1.0;
  for (std::size_t i = 0; i < b.size(); ++i) {
    diff = std::max(diff, std::abs(static_cast<double>(a(static_cast<Eigen::Index>(i))) - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  return diff / scale;
}

}  // namespace llama2c_test
