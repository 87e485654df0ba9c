// twist_contract: a twist that uses every part of the contract (README, "Writing a twist"). The
// quickstart's bigram model and "mentions a dog" indicator, with a hand-written twist that keeps
// per-particle state through the optional hooks and is exact (psi = phi) wherever a sequence
// finishes. Twisted SMC with it against bootstrap SMC (no twist), both against the exact log Z.
#include <tsmc/tsmc.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <vector>

constexpr double neg_inf = -std::numeric_limits<double>::infinity();
constexpr tsmc::token end = 0, dog = 3;  // vocabulary: . the cat dog sat ran

struct bigram_model {  // as in examples/quickstart.cpp
  static constexpr std::size_t vocab = 6;
  std::array<std::array<double, vocab>, vocab> next{{{0.00, 0.90, 0.02, 0.02, 0.03, 0.03},
                                                     {0.05, 0.00, 0.60, 0.25, 0.05, 0.05},
                                                     {0.20, 0.05, 0.00, 0.05, 0.40, 0.30},
                                                     {0.20, 0.05, 0.05, 0.00, 0.30, 0.40},
                                                     {0.60, 0.30, 0.04, 0.03, 0.00, 0.03},
                                                     {0.60, 0.30, 0.04, 0.03, 0.03, 0.00}}};
  std::vector<tsmc::token> last;
  [[nodiscard]] std::size_t vocab_size() const { return vocab; }
  void start(std::span<const tsmc::token> prompt, std::size_t particles) { last.assign(particles, prompt.back()); }
  void log_probs(tsmc::log_prob_ref out) {
    for (std::size_t k = 0; k < last.size(); ++k)
      for (std::size_t v = 0; v < vocab; ++v)
        out(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(v)) = std::log(next[last[k]][v]);
  }
  void append(std::span<const tsmc::token> tokens) { std::copy(tokens.begin(), tokens.end(), last.begin()); }
  void reorder(std::span<const tsmc::particle_index> ancestors) {
    for (std::size_t k = 0; k < ancestors.size(); ++k) last[k] = last[ancestors[k]];
  }
};

struct mentions_dog {  // phi(s) = 1 if s contains "dog", else 0; s excludes the prompt
  void log_potential(std::span<const tsmc::token_sequence> sequences, std::span<double> out) const {
    for (std::size_t k = 0; k < sequences.size(); ++k)
      out[k] = std::find(sequences[k].begin(), sequences[k].end(), dog) != sequences[k].end() ? 0.0 : neg_inf;
  }
};

// The twist. Required: log_twist(ctx, out). Optional, all three or none: start, append, reorder.
struct dog_twist {
  std::vector<std::uint8_t> seen;  // per particle slot: has its prefix mentioned "dog"?

  // Called once per run, after model.start: K particle slots, all with the empty prefix.
  void start(std::span<const tsmc::token> /*prompt*/, std::size_t particles) { seen.assign(particles, 0); }
  // Called after every step but the last: tokens[k] extends slot k (the end token as padding
  // for finished slots).
  void append(std::span<const tsmc::token> tokens) {
    for (std::size_t k = 0; k < tokens.size(); ++k) seen[k] = seen[k] || tokens[k] == dog;
  }
  // Called after each resampling: slot k takes the state of slot ancestors[k] (ancestors[k] == k
  // for survivors, so copying in place is safe).
  void reorder(std::span<const tsmc::particle_index> ancestors) {
    for (std::size_t k = 0; k < ancestors.size(); ++k) seen[k] = seen[ancestors[k]];
  }

  // out(k, v) = log psi_t(prefix_k + v) for every particle k and candidate token v: K x V,
  // row-major doubles. ctx.prefixes[k] holds the t - 1 tokens generated so far (not the prompt).
  template <class Model>
  void log_twist(const tsmc::step_context<Model>& ctx, tsmc::log_prob_ref out) {
    const bool last_step = ctx.step == ctx.horizon;
    for (std::size_t k = 0; k < ctx.prefixes.size(); ++k) {
      if (!ctx.active[k]) continue;  // finished particle: its row is ignored
      for (tsmc::token v = 0; v < static_cast<tsmc::token>(out.cols()); ++v) {
        const bool hit = seen[k] || v == dog;
        const bool finishes = v == end || last_step;
        // Where the sequence finishes, psi = phi (the optimal twist there). Elsewhere a guess at
        // the chance of a dog in the ctx.horizon - ctx.step tokens left: it only has to be
        // positive wherever the target is; the closer to psi*, the smaller the variance.
        const double left = static_cast<double>(ctx.horizon - ctx.step);
        out(static_cast<Eigen::Index>(k), v) = hit ? 0.0 : (finishes ? neg_inf : std::log(1.0 - std::pow(0.8, left)));
      }
    }
  }
};

// Exact log Z by enumeration, and mean +- standard error of log Zhat over 50 runs.
double exact_log_z(const bigram_model& m, std::size_t horizon) {
  double z = 0.0;
  auto walk = [&](auto&& self, tsmc::token prev, double p, std::size_t length, bool hit) -> void {
    for (tsmc::token v = 0; v < static_cast<tsmc::token>(bigram_model::vocab); ++v) {
      const double q = p * m.next[prev][v];
      if (q == 0.0) continue;
      if (v == end || length + 1 == horizon)
        z += hit || v == dog ? q : 0.0;
      else
        self(self, v, q, length + 1, hit || v == dog);
    }
  };
  walk(walk, end, 1.0, 0, false);
  return std::log(z);
}

template <class Twist>
tsmc::mean_estimate log_z_hat(bigram_model& model, Twist& twist, tsmc::proposal_type proposal, std::size_t horizon) {
  mentions_dog phi;
  const tsmc::smc_options options{.particles = 64, .horizon = horizon, .proposal = proposal, .end_token = end,
                                  .check_normalization = true};
  tsmc::twisted_smc smc(model, twist, phi, options, tsmc::systematic{}, tsmc::ess_below(0.5));
  tsmc::default_engine rng(7);
  std::vector<double> estimates;
  for (int run = 0; run < 50; ++run) estimates.push_back(smc.run(std::vector<tsmc::token>{end}, rng).log_z);
  return tsmc::mean_and_standard_error(estimates);
}

int main(int argc, char** argv) {
  if (argc > 1) {  // no options: --help says so, anything else is an error
    if (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
      std::printf("usage: twist_contract\n  a stateful twist through every hook of the twist contract; "
                  "compares log Zhat with the exact log Z\n");
      return 0;
    }
    std::fprintf(stderr, "twist_contract: error: unexpected argument '%s': it takes no options (--help)\n", argv[1]);
    return 2;
  }
  bigram_model model;
  const std::size_t horizon = 5;
  tsmc::no_twist none;
  dog_twist twist;
  const double log_z = exact_log_z(model, horizon);
  const tsmc::mean_estimate bootstrap = log_z_hat(model, none, tsmc::proposal_type::base, horizon);
  const tsmc::mean_estimate twisted = log_z_hat(model, twist, tsmc::proposal_type::twisted, horizon);
  std::printf("exact log Z = %.4f\nbootstrap SMC (no twist), K = 64: log Zhat = %.4f +- %.4f\n"
              "twisted SMC (dog_twist),    K = 64: log Zhat = %.4f +- %.4f\n",
              log_z, bootstrap.mean, bootstrap.standard_error, twisted.mean, twisted.standard_error);
  // E[log Zhat] <= log Z; with this twist the estimate should be close, with a smaller error.
  const bool ok = std::abs(twisted.mean - log_z) < 0.1 && std::abs(bootstrap.mean - log_z) < 0.2;
  return ok ? 0 : 1;
}
