// A model's logit_rows hook (tsmc::EmitsLogitRows): the sampler's run from the model's float
// logits against the same model's log_probs rows. The twisted proposal reads the same L + Psi
// (bit-identical runs); the base proposal draws from one exp pass over the logits instead of
// exp(L) (the same tokens, weights within rounding). Toy float-logit models and the llama2.c
// transformer engine; the fused pass over float logits; diagnostics on the hook's path.
#include "models/llama2c_test_support.hpp"

#include <tsmc/core/log_math.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/models/llama2c.hpp>
#include <tsmc/resampling/schemes.hpp>
#include <tsmc/resampling/triggers.hpp>
#include <tsmc/smc/proposal_step.hpp>
#include <tsmc/smc/sampler.hpp>
#include <tsmc/testing/toy_potentials.hpp>
#include <tsmc/twists/no_twist.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <vector>

namespace {

using namespace tsmc;

constexpr float float_inf = std::numeric_limits<float>::infinity();

/// A stateful toy model whose next-token logits are float hashes of the prefix (scale 3, token 0
/// of every row -inf, so zero-mass tokens occur); log_probs writes l - logit_row_normalizer(l),
/// as the transformer engine does. No logit_rows: the sampler takes its log_probs rows.
class float_logit_model {
 public:
  explicit float_logit_model(std::size_t vocab, std::uint64_t seed) : vocab_(vocab), seed_(seed) {}
  [[nodiscard]] std::size_t vocab_size() const noexcept { return vocab_; }
  void start(std::span<const token> prompt, std::size_t particles) {
    prefixes_.assign(particles, token_sequence(prompt.begin(), prompt.end()));
    logits_.resize(static_cast<Eigen::Index>(particles), static_cast<Eigen::Index>(vocab_));
  }
  void append(std::span<const token> tokens) {
    for (std::size_t k = 0; k < prefixes_.size(); ++k) prefixes_[k].push_back(tokens[k]);
  }
  void reorder(std::span<const particle_index> ancestors) {
    const std::vector<token_sequence> old = prefixes_;
    for (std::size_t k = 0; k < ancestors.size(); ++k) prefixes_[k] = old[ancestors[k]];
  }
  void log_probs(log_prob_ref out) {
    const std::vector<std::uint8_t> all(prefixes_.size(), 1);
    log_probs(out, all);
  }
  void log_probs(log_prob_ref out, std::span<const std::uint8_t> active) {
    fill(active);
    for (std::size_t k = 0; k < prefixes_.size(); ++k) {
      if (!active[k]) continue;
      const float* row = logits_.row(static_cast<Eigen::Index>(k)).data();
      const double lse = logit_row_normalizer(row, vocab_);
      for (std::size_t v = 0; v < vocab_; ++v)
        out(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(v)) = static_cast<double>(row[v]) - lse;
    }
  }
  /// A NaN logit in every row from now on (the diagnostics' test).
  void poison() { poisoned_ = true; }

 protected:
  void fill(std::span<const std::uint8_t> active) {
    for (std::size_t k = 0; k < prefixes_.size(); ++k) {
      if (!active[k]) continue;
      std::uint64_t h = seed_;
      for (const token x : prefixes_[k]) h = mix64(h ^ static_cast<std::uint64_t>(x + 1));
      for (std::size_t v = 0; v < vocab_; ++v) {
        const std::uint64_t bits = mix64(h + v);
        logits_(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(v)) =
            v == 0 ? -float_inf : 3.0f * (static_cast<float>(bits >> 40) / 16777216.0f - 0.5f);
      }
      if (poisoned_) logits_(static_cast<Eigen::Index>(k), 1) = std::numeric_limits<float>::quiet_NaN();
    }
  }
  static std::uint64_t mix64(std::uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  std::size_t vocab_;
  std::uint64_t seed_;
  bool poisoned_ = false;
  std::vector<token_sequence> prefixes_;
  Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> logits_;
  std::vector<const float*> rows_;
};

/// The same model with the hook: the sampler takes its float logits.
class hooked_logit_model : public float_logit_model {
 public:
  using float_logit_model::float_logit_model;
  std::span<const float* const> logit_rows(std::span<const std::uint8_t> active) {
    fill(active);
    rows_.assign(prefixes_.size(), nullptr);
    for (std::size_t k = 0; k < prefixes_.size(); ++k)
      if (active[k]) rows_[k] = logits_.row(static_cast<Eigen::Index>(k)).data();
    return {rows_.data(), rows_.size()};
  }
};

static_assert(!EmitsLogitRows<float_logit_model>);
static_assert(EmitsLogitRows<hooked_logit_model>);
static_assert(EmitsLogitRows<llama2c::model>);

/// A llama2c::model seen only through LanguageModel's members (log_probs, no logit_rows).
class llama_without_hook {
 public:
  explicit llama_without_hook(std::shared_ptr<const llama2c::checkpoint> w) : inner_(std::move(w)) {}
  [[nodiscard]] std::size_t vocab_size() const noexcept { return inner_.vocab_size(); }
  [[nodiscard]] std::size_t max_length() const noexcept { return inner_.max_length(); }
  void start(std::span<const token> prompt, std::size_t particles) { inner_.start(prompt, particles); }
  void log_probs(log_prob_ref out) { inner_.log_probs(out); }
  void log_probs(log_prob_ref out, std::span<const std::uint8_t> active) { inner_.log_probs(out, active); }
  void append(std::span<const token> tokens) { inner_.append(tokens); }
  void reorder(std::span<const particle_index> ancestors) { inner_.reorder(ancestors); }

 private:
  llama2c::model inner_;
};

static_assert(!EmitsLogitRows<llama_without_hook>);

/// Keeps every step's reported log p0 rows of the particles that drew a token.
struct row_recorder {
  std::vector<std::vector<double>> rows;
  void on_weights(const weights_report& r) {
    for (std::size_t k = 0; k < r.proposed.size(); ++k)
      if (r.proposed[k]) {
        const auto row = r.log_p0.row(static_cast<Eigen::Index>(k));
        rows.emplace_back(row.data(), row.data() + row.size());
      }
  }
};

template <class A, class B>
void check_same_particles(const A& a, const B& b, double tolerance) {
  REQUIRE(a.sequences == b.sequences);
  REQUIRE(a.log_weights.size() == b.log_weights.size());
  for (std::size_t k = 0; k < a.log_weights.size(); ++k) {
    CAPTURE(k, a.log_weights[k], b.log_weights[k], a.log_proposal[k], b.log_proposal[k]);
    if (tolerance == 0.0) {
      CHECK(a.log_weights[k] == b.log_weights[k]);
      CHECK(a.log_proposal[k] == b.log_proposal[k]);
    } else {
      CHECK(std::abs(a.log_weights[k] - b.log_weights[k]) <= tolerance);
      CHECK(std::abs(a.log_proposal[k] - b.log_proposal[k]) <= tolerance);
    }
  }
  CAPTURE(a.log_z, b.log_z);
  if (tolerance == 0.0)
    CHECK(a.log_z == b.log_z);
  else
    CHECK(std::abs(a.log_z - b.log_z) <= tolerance);
  CHECK(a.resampled == b.resampled);
}

}  // namespace

TEST_CASE("fused_logit_draw: the normaliser of logit_row_normalizer bit for bit, the inverse-CDF token of exp(L)",
          "[sampler]") {
  const std::vector<float> logits{-float_inf, 0.5f, -1.25f, 2.0f, 0.0f, -float_inf, 1.0f};
  const std::size_t V = logits.size();
  Eigen::ArrayXd scratch(static_cast<Eigen::Index>(V)), scratch2(static_cast<Eigen::Index>(V));
  const double lse = logit_row_normalizer(logits.data(), V);
  std::vector<double> expected_p(V);
  double direct = 0.0;
  for (std::size_t v = 0; v < V; ++v) direct += std::exp(static_cast<double>(logits[v]));
  CHECK(std::abs(lse - std::log(direct)) < 1e-14);
  std::vector<double> l(V);
  for (std::size_t v = 0; v < V; ++v) l[v] = static_cast<double>(logits[v]) - lse;
  for (int i = 0; i < 1000; ++i) {
    const double u = (i + 0.5) / 1000.0;
    const logit_draw d = fused_logit_draw(logits.data(), V, u, scratch);
    CAPTURE(u);
    CHECK(d.log_normalizer == lse);  // bit for bit
    CHECK(d.chosen == fused_proposal_draw(l.data(), nullptr, V, u, scratch2).chosen);
    CHECK(logits[static_cast<std::size_t>(d.chosen)] > -float_inf);
  }
  const std::vector<float> nan{0.0f, std::numeric_limits<float>::quiet_NaN(), 1.0f};
  CHECK(std::isnan(logit_row_normalizer(nan.data(), 3)));
  CHECK(std::isnan(fused_logit_draw(nan.data(), 3, 0.5, scratch).log_normalizer));
  const std::vector<float> none{-float_inf, -float_inf};
  CHECK(std::isnan(logit_row_normalizer(none.data(), 2)));
  CHECK(std::isnan(fused_logit_draw(none.data(), 2, 0.5, scratch).log_normalizer));
  const std::vector<float> plus{0.0f, float_inf};
  CHECK(std::isnan(logit_row_normalizer(plus.data(), 2)));
}

TEST_CASE("logit_rows: a twisted run from a model's logits is its log_probs run, bit for bit", "[sampler]") {
  const std::vector<token> prompt{3};
  const testing::random_twist twist(11, 1.5);
  const testing::random_potential potential(12, 1.0);
  // End token 2 (particles finish early: rows go inactive), ESS resampling, and the potential's
  // next-token form at the last step (psi_T = phi).
  const smc_options options{.particles = 24, .horizon = 7, .end_token = token{2}};
  for (const std::uint64_t seed : {1u, 2u, 3u}) {
    CAPTURE(seed);
    float_logit_model plain(29, seed);
    hooked_logit_model hooked(29, seed);
    twisted_smc a(plain, twist, potential, options, systematic{}, ess_below(0.5));
    twisted_smc b(hooked, twist, potential, options, systematic{}, ess_below(0.5));
    default_engine ra(seed), rb(seed);
    check_same_particles(a.run(prompt, ra), b.run(prompt, rb), 0.0);
    // The potential without its next-token form: psi_T from the twist and the phi / psi_T correction.
    testing::hide_next_token_form hidden(potential);
    twisted_smc c(plain, twist, hidden, options, systematic{}, ess_below(0.5));
    twisted_smc d(hooked, twist, hidden, options, systematic{}, ess_below(0.5));
    check_same_particles(c.run(prompt, ra), d.run(prompt, rb), 0.0);
    // Conditional SMC along a reference drawn by the plain run.
    const token_sequence reference = a.run(prompt, ra).sequences[0];
    default_engine rc(seed + 10), rd(seed + 10);
    check_same_particles(a.run_conditional(prompt, reference, rc), b.run_conditional(prompt, reference, rd), 0.0);
    // What an observer reads: the same log p0 rows.
    row_recorder seen_a, seen_b;
    default_engine re(seed + 20), rf(seed + 20);
    check_same_particles(a.run(prompt, re, seen_a), b.run(prompt, rf, seen_b), 0.0);
    CHECK(seen_a.rows == seen_b.rows);
    CHECK(!seen_b.rows.empty());
  }
}

TEST_CASE("logit_rows: a base-proposal run draws the same tokens with the same weights up to rounding", "[sampler]") {
  const std::vector<token> prompt{3};
  const testing::random_twist twist(21, 1.0);
  const testing::random_potential potential(22, 1.0);
  const smc_options options{.particles = 24, .horizon = 7, .proposal = proposal_type::base, .end_token = token{2}};
  for (const std::uint64_t seed : {4u, 5u, 6u}) {
    CAPTURE(seed);
    float_logit_model plain(31, seed);
    hooked_logit_model hooked(31, seed);
    twisted_smc a(plain, twist, potential, options, systematic{}, ess_below(0.5));
    twisted_smc b(hooked, twist, potential, options, systematic{}, ess_below(0.5));
    default_engine ra(seed), rb(seed);
    check_same_particles(a.run(prompt, ra), b.run(prompt, rb), 1e-12);
    // psi = 1 with the twisted proposal is the base proposal too.
    no_twist none;
    twisted_smc c(plain, none, potential, smc_options{.particles = 24, .horizon = 7, .end_token = token{2}});
    twisted_smc d(hooked, none, potential, smc_options{.particles = 24, .horizon = 7, .end_token = token{2}});
    row_recorder seen_c, seen_d;
    check_same_particles(c.run(prompt, ra, seen_c), d.run(prompt, rb, seen_d), 1e-12);
    // The reported rows are the model's log_probs rows, bit for bit (same normaliser).
    CHECK(seen_c.rows == seen_d.rows);
  }
}

TEST_CASE("logit_rows: the normalisation checks run and a NaN logit is named as the model's", "[sampler]") {
  const std::vector<token> prompt{3};
  const testing::random_twist twist(31, 1.0);
  const testing::random_potential potential(32, 1.0);
  for (const proposal_type proposal : {proposal_type::twisted, proposal_type::base}) {
    hooked_logit_model hooked(17, 9);
    twisted_smc smc(hooked, twist, potential,
                    smc_options{.particles = 8, .horizon = 5, .proposal = proposal, .check_normalization = true});
    default_engine rng(1);
    CHECK(std::isfinite(smc.run(prompt, rng).log_z));
    hooked.poison();
    REQUIRE_THROWS_WITH(smc.run(prompt, rng), Catch::Contains("the model's log p0 at step 1, particle 0") &&
                                                  Catch::Contains("must not be NaN or +inf"));
  }
}

TEST_CASE("logit_rows: the llama2.c model's rows are its log_probs rows; its runs match the run without the hook",
          "[sampler][models]") {
  llama2c_test::temp_dir dir;
  const auto path = dir.file("logit_rows.bin");
  llama2c::make_random_checkpoint(path, llama2c_test::tiny_gqa_unshared(), 5, 2.0);
  const auto weights = std::make_shared<const llama2c::checkpoint>(path);
  const std::vector<token> prompt{1, 5};
  {
    llama2c::model m(weights);
    m.start(prompt, 4);
    m.append(std::vector<token>{3, 7, 3, 9});
    const std::size_t V = m.vocab_size();
    log_prob_matrix expected(4, static_cast<Eigen::Index>(V));
    const std::vector<std::uint8_t> active{1, 0, 1, 1};
    m.log_probs(expected, active);
    const std::span<const float* const> rows = m.logit_rows(active);
    REQUIRE(rows.size() == 4);
    CHECK(rows[1] == nullptr);
    for (std::size_t k : {0u, 2u, 3u}) {
      REQUIRE(rows[k] != nullptr);
      const double lse = logit_row_normalizer(rows[k], V);
      for (std::size_t v = 0; v < V; ++v)
        CHECK(static_cast<double>(rows[k][v]) - lse ==
              expected(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(v)));
    }
    REQUIRE_THROWS_WITH(m.logit_rows(std::vector<std::uint8_t>{1, 1}),
                        Catch::Contains("llama2c::model::logit_rows: active.size() must equal the number of particles 4"));
  }
  const testing::random_twist twist(41, 1.0);
  const testing::random_potential potential(42, 1.0);
  for (const proposal_type proposal : {proposal_type::twisted, proposal_type::base}) {
    CAPTURE(proposal == proposal_type::twisted);
    const smc_options options{.particles = 12, .horizon = 10, .proposal = proposal, .end_token = token{2}};
    llama_without_hook plain(weights);
    llama2c::model hooked(weights);
    twisted_smc a(plain, twist, potential, options, systematic{}, ess_below(0.5));
    twisted_smc b(hooked, twist, potential, options, systematic{}, ess_below(0.5));
    default_engine ra(8), rb(8);
    check_same_particles(a.run(prompt, ra), b.run(prompt, rb), proposal == proposal_type::twisted ? 0.0 : 1e-12);
  }
}
