#include "models/llama2c_test_support.hpp"

#include <tsmc/bounds/estimator.hpp>
#include <tsmc/bounds/exact_samplers.hpp>
#include <tsmc/core/concepts.hpp>
#include <tsmc/models/llama2c.hpp>
#include <tsmc/smc/sampler.hpp>
#include <tsmc/testing/toy_potentials.hpp>
#include <tsmc/twists/no_twist.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <memory>
#include <vector>

namespace {

using tsmc::token;
using tsmc::token_sequence;
using tsmc::llama2c::config;
using tsmc::llama2c::model;
using llama2c_test::reference_forward;
using llama2c_test::relative_error;

/// A checkpoint with random weights in a temporary directory, and its float payload.
struct fixture {
  llama2c_test::temp_dir dir;
  config cfg;
  std::vector<float> weights;
  std::shared_ptr<const tsmc::llama2c::checkpoint> ckpt;
  explicit fixture(const config& c, std::uint64_t seed = 7, double scale = 2.0,
                   tsmc::llama2c::load_mode mode = tsmc::llama2c::load_mode::automatic)
      : cfg(c), weights(tsmc::llama2c::random_weights(c, seed, scale)) {
    tsmc::llama2c::write_checkpoint(dir.file("model.bin"), c, weights);
    ckpt = std::make_shared<const tsmc::llama2c::checkpoint>(dir.file("model.bin"), mode);
  }
};

token_sequence random_tokens(std::size_t n, std::size_t vocab, std::uint64_t seed) {
  tsmc::default_engine rng(seed);
  token_sequence out(n);
  for (auto& t : out) t = static_cast<token>(tsmc::uniform_index(rng, vocab));
  return out;
}

/// Logits of a single-particle run over `tokens` (prompt = the first `prompt` tokens).
tsmc::llama2c::logit_matrix single_run_logits(const std::shared_ptr<const tsmc::llama2c::checkpoint>& ckpt,
                                              const token_sequence& tokens, std::size_t prompt) {
  model m(ckpt);
  m.start(std::span<const token>(tokens).first(prompt), 1);
  for (std::size_t i = prompt; i < tokens.size(); ++i) m.append(std::span<const token>(&tokens[i], 1));
  tsmc::llama2c::logit_matrix out(1, static_cast<Eigen::Index>(m.vocab_size()));
  m.logits(out);
  return out;
}

/// phi(s) = 1 when the last generated token is `target`, with its next-token form (psi_T = phi).
struct last_token_indicator {
  token target;
  void log_potential(std::span<const token_sequence> sequences, std::span<double> out) const {
    for (std::size_t k = 0; k < sequences.size(); ++k)
      out[k] = !sequences[k].empty() && sequences[k].back() == target ? 0.0 : tsmc::neg_inf;
  }
  template <class Model>
  void log_potential_next(const tsmc::step_context<Model>&, tsmc::log_prob_ref out) const {
    out.setConstant(tsmc::neg_inf);
    out.col(target).setZero();
  }
};

/// phi = 1.
struct unit_potential {
  void log_potential(std::span<const token_sequence>, std::span<double> out) const {
    for (double& v : out) v = 0.0;
  }
};

}  // namespace

TEST_CASE("llama2c::model models ModelWithFeatures", "[models]") {
  STATIC_REQUIRE(tsmc::LanguageModel<model>);
  STATIC_REQUIRE(tsmc::ModelWithFeatures<model>);
}

TEST_CASE("llama2c::model: cached incremental decoding equals a from-scratch forward pass at every position",
          "[models]") {
  for (const config& c : {llama2c_test::tiny_shared(), llama2c_test::tiny_gqa_unshared()}) {
    for (const auto mode : {tsmc::llama2c::load_mode::automatic, tsmc::llama2c::load_mode::read}) {
      fixture f(c, 11, 2.0, mode);
      CHECK(f.ckpt->mapped() == (mode == tsmc::llama2c::load_mode::automatic));
      const token_sequence tokens = random_tokens(static_cast<std::size_t>(c.seq_len), static_cast<std::size_t>(c.vocab_size), 3);
      model m(f.ckpt);
      CHECK(m.max_length() == static_cast<std::size_t>(c.seq_len));
      const std::size_t prompt = 3;
      m.start(std::span<const token>(tokens).first(prompt), 1);
      tsmc::llama2c::logit_matrix logits(1, c.vocab_size);
      for (std::size_t len = prompt; len <= tokens.size(); ++len) {
        if (len > prompt) m.append(std::span<const token>(&tokens[len - 1], 1));
        REQUIRE(m.length() == len);
        const auto ref = reference_forward(c, f.weights, std::span<const token>(tokens).first(len));
        m.logits(logits);
        INFO("shared " << c.shared_classifier << ", kv heads " << c.n_kv_heads << ", length " << len);
        CHECK(relative_error(logits.row(0), ref.logits) < 1e-4);
        CHECK(relative_error(m.features().row(0), ref.hidden) < 1e-4);
      }
      CHECK_THROWS_AS(m.append(std::span<const token>(&tokens[0], 1)), tsmc::invalid_argument);  // seq_len reached
    }
  }
}

TEST_CASE("llama2c::model: K batched particles equal K single-particle runs", "[models]") {
  const config c = llama2c_test::tiny_gqa_unshared();
  fixture f(c);
  const std::size_t K = 5, prompt = 2, steps = 8, V = static_cast<std::size_t>(c.vocab_size);
  const token_sequence p = random_tokens(prompt, V, 1);
  std::vector<token_sequence> seqs(K, p);
  for (std::size_t k = 0; k < K; ++k) {
    const token_sequence extra = random_tokens(steps, V, 100 + k);
    seqs[k].insert(seqs[k].end(), extra.begin(), extra.end());
  }
  model m(f.ckpt);
  m.start(p, K);
  tsmc::llama2c::logit_matrix logits(K, c.vocab_size);
  for (std::size_t step = 0; step <= steps; ++step) {
    if (step > 0) {
      token_sequence next(K);
      for (std::size_t k = 0; k < K; ++k) next[k] = seqs[k][prompt + step - 1];
      m.append(next);
    }
    m.logits(logits);
    for (std::size_t k = 0; k < K; ++k) {
      const token_sequence prefix(seqs[k].begin(), seqs[k].begin() + static_cast<std::ptrdiff_t>(prompt + step));
      const auto single = single_run_logits(f.ckpt, prefix, prompt);
      const double scale = std::max(1.0, static_cast<double>(single.cwiseAbs().maxCoeff()));
      INFO("step " << step << ", particle " << k);
      CHECK((logits.row(static_cast<Eigen::Index>(k)) - single.row(0)).cwiseAbs().maxCoeff() / scale < 1e-5);
    }
  }
}

TEST_CASE("llama2c::model: reorder then decode equals decoding the copied prefixes", "[models]") {
  const config c = llama2c_test::tiny_shared();
  fixture f(c);
  const std::size_t K = 4, V = static_cast<std::size_t>(c.vocab_size);
  const token_sequence p{1, 5};
  std::vector<token_sequence> seqs(K, p);
  model m(f.ckpt);
  m.start(p, K);
  auto step = [&](std::uint64_t seed) {
    const token_sequence next = random_tokens(K, V, seed);
    m.append(next);
    for (std::size_t k = 0; k < K; ++k) seqs[k].push_back(next[k]);
  };
  auto check_all = [&] {
    tsmc::llama2c::logit_matrix logits(K, c.vocab_size);
    m.logits(logits);
    for (std::size_t k = 0; k < K; ++k) {
      const auto single = single_run_logits(f.ckpt, seqs[k], p.size());
      INFO("particle " << k << ", length " << seqs[k].size());
      CHECK((logits.row(static_cast<Eigen::Index>(k)) - single.row(0)).cwiseAbs().maxCoeff() < 1e-5);
      const token_sequence copy = seqs[k];
      const auto ref = reference_forward(c, f.weights, copy);
      CHECK(relative_error(m.features().row(static_cast<Eigen::Index>(k)), ref.hidden) < 1e-4);
    }
  };
  for (std::uint64_t s = 0; s < 3; ++s) step(10 + s);
  SECTION("slot-stable ancestors copy the dead slots only") {
    const std::vector<tsmc::particle_index> ancestors{0, 0, 2, 2};
    m.reorder(ancestors);
    CHECK(m.copied_slots() == 2);
    CHECK(m.copied_rows() == 2 * static_cast<std::size_t>(c.n_layers) * m.length());
    seqs = {seqs[0], seqs[0], seqs[2], seqs[2]};
    m.reorder(std::vector<tsmc::particle_index>{0, 1, 2, 3});
    CHECK(m.copied_slots() == 2);
  }
  SECTION("a permutation (sources overwritten) is handled through a snapshot") {
    m.reorder(std::vector<tsmc::particle_index>{1, 0, 3, 3});
    CHECK(m.copied_slots() == 3);
    seqs = {seqs[1], seqs[0], seqs[3], seqs[3]};
  }
  check_all();  // the hidden state was copied too
  for (std::uint64_t s = 0; s < 3; ++s) step(20 + s);
  check_all();
  CHECK_THROWS_AS(m.reorder(std::vector<tsmc::particle_index>{0, 1, 2}), tsmc::invalid_argument);
  CHECK_THROWS_AS(m.reorder(std::vector<tsmc::particle_index>{0, 1, 2, 4}), tsmc::invalid_argument);
}

TEST_CASE("llama2c::model: log_probs rows are normalised in double; active rows only", "[models]") {
  const config c = llama2c_test::tiny_gqa_unshared();
  fixture f(c, 5, 4.0);
  const std::size_t K = 3;
  model m(f.ckpt);
  m.start(token_sequence{1, 2, 3}, K);
  m.append(token_sequence{4, 9, 17});
  tsmc::log_prob_matrix full(K, c.vocab_size);
  m.log_probs(full);
  tsmc::llama2c::logit_matrix logits(K, c.vocab_size);
  m.logits(logits);
  for (Eigen::Index k = 0; k < static_cast<Eigen::Index>(K); ++k) {
    CHECK(std::abs(full.row(k).array().exp().sum() - 1.0) < 1e-9);
    // log p = logit - logsumexp(logits) in double: differences of log-probs are differences of logits.
    CHECK(std::abs((full(k, 3) - full(k, 0)) - (static_cast<double>(logits(k, 3)) - static_cast<double>(logits(k, 0)))) <
          1e-12);
  }
  // A new step, the active rows first (nothing of this step computed before them).
  m.append(token_sequence{5, 6, 7});
  tsmc::log_prob_matrix partial = tsmc::log_prob_matrix::Constant(K, c.vocab_size, 7.0);
  const std::vector<std::uint8_t> active{1, 0, 1};
  m.log_probs(partial, active);
  CHECK((partial.row(1).array() == 7.0).all());
  m.log_probs(full);
  CHECK((partial.row(0) - full.row(0)).cwiseAbs().maxCoeff() < 1e-6);
  CHECK((partial.row(2) - full.row(2)).cwiseAbs().maxCoeff() < 1e-6);
  tsmc::log_prob_matrix wrong(K + 1, c.vocab_size);
  CHECK_THROWS_AS(m.log_probs(wrong), tsmc::invalid_argument);
  CHECK_THROWS_AS(m.log_probs(full, std::vector<std::uint8_t>{1, 1}), tsmc::invalid_argument);
  CHECK(m.features().rows() == static_cast<Eigen::Index>(K));
  CHECK(m.features().cols() == c.dim);
}

TEST_CASE("llama2c::model: bad calls throw with the argument named", "[models]") {
  fixture f(llama2c_test::tiny_shared());
  model m(f.ckpt);
  tsmc::log_prob_matrix out(1, f.cfg.vocab_size);
  CHECK_THROWS_AS(m.log_probs(out), tsmc::invalid_argument);                   // before start
  CHECK_THROWS_AS(m.append(token_sequence{1}), tsmc::invalid_argument);        // before start
  CHECK_THROWS_WITH(m.start(token_sequence{}, 2), Catch::Contains("BOS"));     // empty prompt
  CHECK_THROWS_AS(m.start(token_sequence{1}, 0), tsmc::invalid_argument);
  CHECK_THROWS_AS(m.start(token_sequence{1, 37}, 2), tsmc::invalid_argument);  // token outside [0, V)
  CHECK_THROWS_AS(m.start(token_sequence(25, 1), 2), tsmc::invalid_argument);  // longer than seq_len
  m.start(token_sequence{1}, 2);
  CHECK_THROWS_AS(m.append(token_sequence{1}), tsmc::invalid_argument);
  CHECK_THROWS_AS(m.append(token_sequence{1, -1}), tsmc::invalid_argument);
  CHECK_THROWS_AS(model(std::shared_ptr<const tsmc::llama2c::checkpoint>{}), tsmc::invalid_argument);
}

TEST_CASE("llama2c::model: a cache that grows gives the same numbers as one reserved up front", "[models]") {
  config c = llama2c_test::tiny_shared();
  c.seq_len = 200;
  fixture f(c);
  const token_sequence tokens = random_tokens(150, static_cast<std::size_t>(c.vocab_size), 9);
  model grown(f.ckpt), reserved(f.ckpt);
  reserved.reserve(200);
  grown.start(std::span<const token>(tokens).first(1), 2);
  reserved.start(std::span<const token>(tokens).first(1), 2);
  CHECK(grown.capacity() < 150);
  CHECK(reserved.capacity() == 200);
  for (std::size_t i = 1; i < tokens.size(); ++i) {
    const token_sequence next{tokens[i], tokens[tokens.size() - i]};
    grown.append(next);
    reserved.append(next);
  }
  CHECK(grown.capacity() >= 150);
  tsmc::llama2c::logit_matrix a(2, c.vocab_size), b(2, c.vocab_size);
  grown.logits(a);
  reserved.logits(b);
  CHECK(a == b);
  // The whole sequence as one prompt (three prefill chunks of up to 64 positions) agrees with
  // decoding it token by token and with the from-scratch pass.
  model prefilled(f.ckpt);
  prefilled.start(tokens, 3);
  tsmc::llama2c::logit_matrix p(3, c.vocab_size);
  prefilled.logits(p);
  const auto ref = reference_forward(c, f.weights, tokens);
  for (Eigen::Index k = 0; k < 3; ++k) {
    CHECK(relative_error(p.row(k), ref.logits) < 1e-4);
    CHECK(relative_error(prefilled.features().row(k), ref.hidden) < 1e-4);
  }
  CHECK((p.row(0) - a.row(0)).cwiseAbs().maxCoeff() < 1e-4 * std::max(1.0f, a.row(0).cwiseAbs().maxCoeff()));
}

TEST_CASE("llama2c::model: the sampler runs on it; bounds at K = 1 and 16 bracket log Z", "[models]") {
  // V = 6 and T = 3: log Z = log P(s_3 = target) is computed exactly from the model's own rows.
  config c = llama2c_test::tiny_gqa_unshared();
  c.vocab_size = 6;
  fixture f(c, 13, 1.0);
  const std::size_t V = 6, T = 3;
  const token target = 4;
  const token_sequence prompt{1, 3};
  model m(f.ckpt), exact_model(f.ckpt);

  // Exact Z by enumeration of (s_1, s_2).
  tsmc::log_prob_matrix l1(1, V), l2(V, V), l3(V * V, V);
  m.start(prompt, 1);
  m.log_probs(l1);
  m.start(prompt, V);
  token_sequence first(V);
  for (std::size_t v = 0; v < V; ++v) first[v] = static_cast<token>(v);
  m.append(first);
  m.log_probs(l2);
  m.start(prompt, V * V);
  token_sequence a(V * V), b(V * V);
  for (std::size_t k = 0; k < V * V; ++k) {
    a[k] = static_cast<token>(k / V);
    b[k] = static_cast<token>(k % V);
  }
  m.append(a);
  m.append(b);
  m.log_probs(l3);
  double z = 0.0;
  for (std::size_t k = 0; k < V * V; ++k)
    z += std::exp(l1(0, a[k]) + l2(a[k], b[k]) + l3(static_cast<Eigen::Index>(k), target));
  const double log_z = std::log(z);

  last_token_indicator phi{target};
  tsmc::testing::random_twist twist(21, 0.5);
  tsmc::default_engine rng(99);

  SECTION("a short twisted SMC run") {
    tsmc::twisted_smc smc(m, twist, phi, tsmc::smc_options{.particles = 8, .horizon = T});
    const tsmc::smc_result r = smc.run(prompt, rng);
    CHECK(std::isfinite(r.log_z));
    for (const auto& s : r.sequences) {
      CHECK(s.size() == T);
      CHECK(s.back() == target);
    }
    CHECK(m.copied_slots() > 0);
  }
  SECTION("bounds") {
    auto exact = tsmc::indicator_rejection_sampler(exact_model, phi, prompt,
                                                   tsmc::rejection_options{.horizon = T, .batch = 64});
    for (const std::size_t K : {std::size_t{1}, std::size_t{16}}) {
      tsmc::twisted_smc smc(m, twist, phi, tsmc::smc_options{.particles = K, .horizon = T});
      const tsmc::log_z_bounds bounds = tsmc::estimate_bounds(smc, prompt, exact, 40, rng);
      INFO("K " << K << ": lower " << bounds.lower.mean << " +- " << bounds.lower.standard_error << ", upper "
                << bounds.upper.mean << " +- " << bounds.upper.standard_error << ", log Z " << log_z);
      // E[lower] <= log Z <= E[upper]; 5.3 standard errors: a one-sided normal tail of 6e-8.
      const double z_score = 5.3;
      CHECK(bounds.lower.mean <= log_z + z_score * bounds.lower.standard_error + 1e-12);
      CHECK(bounds.upper.mean >= log_z - z_score * bounds.upper.standard_error - 1e-12);
      CHECK(bounds.lower.mean <=
            bounds.upper.mean + z_score * std::hypot(bounds.lower.standard_error, bounds.upper.standard_error) + 1e-12);
    }
  }
  SECTION("SIS with the base proposal and phi = 1 gives log Zhat = 0 (to the rows' rounding)") {
    // Each weight is exp(logsumexp(row)) = sum_v p0(v), which is 1 only up to the double rounding
    // of the row's normalisation (~1e-16 per step): log Zhat is 0 to that rounding, not bit-exactly.
    tsmc::no_twist none;
    unit_potential unit;
    tsmc::twisted_smc<model, tsmc::no_twist, unit_potential, tsmc::multinomial, tsmc::never_trigger> sis(
        m, none, unit, tsmc::smc_options{.particles = 16, .horizon = 8, .proposal = tsmc::proposal_type::base});
    const tsmc::smc_result r = sis.run(prompt, rng);
    INFO("log Zhat = " << r.log_z);
    CHECK(std::abs(r.log_z) < 1e-13);
    CHECK(m.copied_slots() == 0);
  }
}
