// quickstart: the smallest complete tsmc program. A user-written language model (a bigram table
// over six words), a potential (the indicator "the sentence mentions a dog"), no twist; SMC
// estimates Z = P(a sentence mentions a dog) and draws sentences from p0 conditioned on it.
// The README's "Plugging in your model" section is this file.
#include <tsmc/tsmc.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

// ---- 1. A language model: batched over K particles, driven in lock-step ------------------------
// Required: vocab_size(), start(prompt, K), log_probs(out K x V), append(tokens), reorder(ancestors).
struct bigram_model {
  static constexpr std::size_t vocab = 6;  // . the cat dog sat ran
  std::array<std::array<double, vocab>, vocab> next{{
      {0.00, 0.90, 0.02, 0.02, 0.03, 0.03},  // after "."
      {0.05, 0.00, 0.60, 0.25, 0.05, 0.05},  // after "the"
      {0.20, 0.05, 0.00, 0.05, 0.40, 0.30},  // after "cat"
      {0.20, 0.05, 0.05, 0.00, 0.30, 0.40},  // after "dog"
      {0.60, 0.30, 0.04, 0.03, 0.00, 0.03},  // after "sat"
      {0.60, 0.30, 0.04, 0.03, 0.03, 0.00},  // after "ran"
  }};
  std::vector<tsmc::token> last;  // the model's whole state per particle: its last token

  [[nodiscard]] std::size_t vocab_size() const { return vocab; }
  void start(std::span<const tsmc::token> prompt, std::size_t particles) {
    last.assign(particles, prompt.empty() ? 0 : prompt.back());
  }
  void log_probs(tsmc::log_prob_ref out) {
    for (std::size_t k = 0; k < last.size(); ++k)
      for (std::size_t v = 0; v < vocab; ++v)
        out(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(v)) = std::log(next[last[k]][v]);
  }
  void append(std::span<const tsmc::token> tokens) { std::copy(tokens.begin(), tokens.end(), last.begin()); }
  void reorder(std::span<const tsmc::particle_index> ancestors) {
    for (std::size_t k = 0; k < ancestors.size(); ++k) last[k] = last[ancestors[k]];  // slot-stable: safe in place
  }
};

// ---- 2. A potential: log phi of finished sequences (-inf = impossible) -------------------------
struct mentions_dog {
  static constexpr tsmc::token dog = 3;
  void log_potential(std::span<const tsmc::token_sequence> sequences, std::span<double> out) const {
    for (std::size_t k = 0; k < sequences.size(); ++k) {
      const bool hit = std::find(sequences[k].begin(), sequences[k].end(), dog) != sequences[k].end();
      out[k] = hit ? 0.0 : -std::numeric_limits<double>::infinity();
    }
  }
};

// Exact Z by enumerating every sentence (6^5 of them), to show the estimate is right.
double exact_log_z(const bigram_model& m, std::size_t horizon, tsmc::token end) {
  double z = 0.0;
  std::vector<tsmc::token> s;
  auto walk = [&](auto&& self, tsmc::token prev, double p) -> void {
    for (tsmc::token v = 0; v < static_cast<tsmc::token>(bigram_model::vocab); ++v) {
      const double q = p * m.next[prev][v];
      if (q == 0.0) continue;
      s.push_back(v);
      if (v == end || s.size() == horizon) {
        if (std::find(s.begin(), s.end(), mentions_dog::dog) != s.end()) z += q;
      } else {
        self(self, v, q);
      }
      s.pop_back();
    }
  };
  walk(walk, end, 1.0);
  return std::log(z);
}

int main(int argc, char** argv) {
  if (argc > 1) {  // no options: --help says so, anything else is an error
    if (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
      std::printf("usage: quickstart\n  the smallest complete tsmc program (README, 'Plugging in your model'); "
                  "it takes no options\n");
      return 0;
    }
    std::fprintf(stderr, "quickstart: error: unexpected argument '%s': it takes no options (--help)\n", argv[1]);
    return 2;
  }
  const char* words[] = {".", "the", "cat", "dog", "sat", "ran"};
  bigram_model model;
  mentions_dog potential;
  tsmc::no_twist twist;  // psi = 1: bootstrap SMC; learned twists plug in here
  const std::size_t horizon = 5;
  const tsmc::token end = 0;  // "." ends a sentence
  const std::vector<tsmc::token> prompt{0};

  // ---- 3. The sampler: K particles, systematic resampling when the ESS drops below K/2 -------
  tsmc::twisted_smc smc(model, twist, potential,
                        tsmc::smc_options{.particles = 512, .horizon = horizon, .end_token = end,
                                          .check_normalization = true},  // rows must sum to 1
                        tsmc::systematic{}, tsmc::ess_below(0.5));
  tsmc::default_engine rng(2024);

  std::printf("tsmc %s quickstart: p0 = a bigram model, phi = 1{the sentence mentions \"dog\"}\n\n",
              tsmc::version_string);
  std::printf("exact log Z (enumeration of all sentences): %.4f  (Z = %.4f)\n", exact_log_z(model, horizon, end),
              std::exp(exact_log_z(model, horizon, end)));
  std::vector<double> estimates;
  for (int run = 0; run < 20; ++run) estimates.push_back(smc.run(prompt, rng).log_z);
  const tsmc::mean_estimate mean = tsmc::mean_and_standard_error(estimates);
  std::printf("SMC log Zhat, K = 512, 20 runs: %.4f +- %.4f (E[log Zhat] <= log Z)\n\n", mean.mean,
              mean.standard_error);

  const tsmc::smc_result result = smc.run(prompt, rng);
  std::printf("one run: %zu steps, resampled at steps:", result.steps);
  for (std::size_t t = 0; t < result.steps; ++t)
    if (result.resampled[t]) std::printf(" %zu", t + 1);
  std::printf("; final ESS %.1f\n", result.ess.back());
  std::printf("sentences drawn from p0(s | mentions a dog):\n");
  for (int i = 0; i < 5; ++i) {
    std::printf(" ");
    for (tsmc::token t : result.draw(rng)) std::printf(" %s", words[t]);
    std::printf("\n");
  }
  return 0;
}
