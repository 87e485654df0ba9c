#pragma once
/// @file
/// @brief A tabular toy language model over a small vocabulary, whose next-token tables may
/// depend on the whole prompt and prefix, for tests whose every sequence can be enumerated.
///
/// Precision: the model's distribution is next_log_probs, in double, and log_probs writes exactly
/// those values (the library's K x V matrices are double), so a sampler and the enumeration see
/// the same p0. For a prefix, let x_v be the raw double log-probabilities (the log-softmax of
/// random logits, or the logarithm of an explicit table normalised in double). By default
/// (table_precision::single) p0 is f_v - logsumexp_w(f_w) with f_v = (float) x_v: the
/// distribution of a model that computes in float and whose rows are renormalised in double.
/// Explicit tables may be declared exact (table_precision::exact): p0 is then x_v itself, which
/// suits hand-checked tests to 1e-12. next_log_probs_float gives the float row f_v.

#include <tsmc/core/concepts.hpp>
#include <tsmc/core/error.hpp>
#include <tsmc/core/log_math.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/core/types.hpp>
#include <tsmc/resampling/ancestors.hpp>
#include <tsmc/testing/sequence_hash.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace tsmc::testing {

/// @brief Whether a tabular_model's tables are rounded through float (a float model's rows,
/// renormalised in double) or used as given.
enum class table_precision {
  /// p0 is the double-precision softmax of the float-rounded row (the default).
  single,
  /// p0 is the explicit table itself, in double.
  exact,
};

/// @brief A tabular language model for enumerable test problems: next-token tables are a
/// deterministic function of (prompt, generated prefix), so they may depend on the whole prefix
/// and need no storage.
///
/// Two kinds: random tables (logits drawn N(0, scale^2) from an engine seeded by hashing (seed,
/// prompt, prefix), then log-softmax), or explicit tables given by a callable or a map. See the
/// file documentation for the precision contract between next_log_probs (double, the model's
/// definition, written unchanged by log_probs).
///
/// Models tsmc::LanguageModel: start / log_probs / append / reorder keep each particle's
/// generated prefix, and count the slots copied by reorder and the calls to log_probs.
class tabular_model {
 public:
  /// @brief An explicit table: next-token probabilities (V non-negative values, not necessarily
  /// normalised, not all zero) for a prompt and a generated prefix.
  using next_probs_function =
      std::function<std::vector<double>(std::span<const token> prompt, std::span<const token> prefix)>;

  /// @brief A random tabular model.
  /// @param vocab_size V, the number of tokens
  /// @param seed the seed of the tables; equal seeds give equal models
  /// @param scale the standard deviation of the logits (0 gives uniform tables)
  /// @throw tsmc::invalid_argument if vocab_size is 0 or scale is negative or not finite
  tabular_model(std::size_t vocab_size, std::uint64_t seed, double scale = 1.0)
      : vocab_(vocab_size), seed_(seed), scale_(scale) {
    check_positive("testing::tabular_model::tabular_model", "vocab_size", vocab_size);
    check_argument(std::isfinite(scale) && scale >= 0.0, "testing::tabular_model::tabular_model", "scale",
                   "must be finite and >= 0", scale);
  }

  /// @brief A model with explicit tables given by a callable.
  /// @param vocab_size V, the number of tokens
  /// @param next_probs returns the V next-token probabilities for (prompt, prefix); they are
  /// normalised by their sum. Called on every query, so it should be cheap and deterministic.
  /// @param precision whether p0 is the float-rounded table (default) or the table itself
  /// @return the model
  /// @throw tsmc::invalid_argument if vocab_size is 0 or next_probs is empty
  [[nodiscard]] static tabular_model from_function(std::size_t vocab_size, next_probs_function next_probs,
                                                   table_precision precision = table_precision::single) {
    check_positive("testing::tabular_model::from_function", "vocab_size", vocab_size);
    check_argument(static_cast<bool>(next_probs), "testing::tabular_model::from_function", "next_probs",
                   "must be a callable", "an empty std::function");
    tabular_model model(vocab_size, 0, 0.0);
    model.next_probs_ = std::move(next_probs);
    model.precision_ = precision;
    return model;
  }

  /// @brief A model with explicit tables given by a map from the generated prefix (the prompt
  /// is ignored) to the V next-token probabilities.
  ///
  /// Querying a prefix that is not a key throws tsmc::invalid_argument, so a table must list
  /// every prefix the test visits (for an enumeration: every unfinished prefix shorter than T).
  /// @param vocab_size V, the number of tokens
  /// @param table prefix -> V non-negative probabilities (normalised by their sum)
  /// @param precision whether p0 is the float-rounded table (default) or the table itself
  /// @return the model
  /// @throw tsmc::invalid_argument if vocab_size is 0
  [[nodiscard]] static tabular_model from_table(std::size_t vocab_size,
                                                std::map<token_sequence, std::vector<double>> table,
                                                table_precision precision = table_precision::single) {
    auto shared = std::make_shared<const std::map<token_sequence, std::vector<double>>>(std::move(table));
    return from_function(
        vocab_size,
        [shared](std::span<const token>, std::span<const token> prefix) -> std::vector<double> {
          const auto it = shared->find(token_sequence(prefix.begin(), prefix.end()));
          if (it == shared->end())
            throw_invalid_argument("testing::tabular_model::next_log_probs", "prefix", "must be a key of the table",
                                   tokens_text(prefix));
          return it->second;
        },
        precision);
  }

  /// @brief The exact next-token log-probabilities of one prefix, in double (the model's
  /// definition of p0; see the file documentation).
  /// @param prompt the prompt s_0
  /// @param prefix the generated tokens s_{1:t-1}
  /// @param out V entries: out[v] = log p0(v | prompt, prefix)
  /// @throw tsmc::invalid_argument if out.size() != V, a token is outside [0, V), or an explicit
  /// table has the wrong size, a negative or non-finite entry, or sums to zero
  void next_log_probs(std::span<const token> prompt, std::span<const token> prefix, std::span<double> out) const {
    check_query(prompt, prefix, out.size(), "testing::tabular_model::next_log_probs");
    raw_log_probs(prompt, prefix, out);
    if (next_probs_ && precision_ == table_precision::exact) return;
    for (double& x : out) x = static_cast<double>(static_cast<float>(x));
    const double lse = logsumexp(std::span<const double>(out));
    for (double& x : out) x -= lse;
  }

  /// @brief The single-precision row that log_probs writes for one prefix: the raw log-probs
  /// rounded to float (not renormalised in float).
  /// @param prompt the prompt s_0
  /// @param prefix the generated tokens s_{1:t-1}
  /// @param out V entries
  /// @throw tsmc::invalid_argument as next_log_probs
  void next_log_probs_float(std::span<const token> prompt, std::span<const token> prefix,
                            std::span<float> out) const {
    check_query(prompt, prefix, out.size(), "testing::tabular_model::next_log_probs_float");
    std::vector<double> row(vocab_);
    raw_log_probs(prompt, prefix, row);
    for (std::size_t v = 0; v < vocab_; ++v) out[v] = static_cast<float>(row[v]);
  }

  /// @brief The vocabulary size V.
  [[nodiscard]] std::size_t vocab_size() const noexcept { return vocab_; }

  /// @brief Positions K particles after the prompt, with empty generated prefixes, and resets
  /// the counters copies() and log_prob_calls().
  /// @param prompt the prompt s_0 (copied)
  /// @param particles K
  /// @throw tsmc::invalid_argument if particles is 0 or a prompt token is outside [0, V)
  void start(std::span<const token> prompt, std::size_t particles) {
    check_positive("testing::tabular_model::start", "particles", particles);
    check_tokens(prompt, vocab_, "testing::tabular_model::start", "prompt");
    prompt_.assign(prompt.begin(), prompt.end());
    prefixes_.assign(particles, token_sequence{});
    copies_ = 0;
    log_prob_calls_ = 0;
  }

  /// @brief Writes the K x V next-token log-probabilities: row k is next_log_probs of particle
  /// k's prefix, so a sampler (which takes rows as exact) and the enumeration see the same p0.
  /// @param out K x V
  /// @throw tsmc::invalid_argument if out is not K x V
  void log_probs(log_prob_ref out) {
    const std::size_t particles = prefixes_.size();
    check_size("testing::tabular_model::log_probs", "out.rows()", out.rows(), "the number of particles", particles);
    check_size("testing::tabular_model::log_probs", "out.cols()", out.cols(), "the vocabulary size", vocab_);
    ++log_prob_calls_;
    row_.resize(vocab_);
    for (std::size_t k = 0; k < particles; ++k) {
      next_log_probs(prompt_, prefixes_[k], row_);
      for (std::size_t v = 0; v < vocab_; ++v) out(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(v)) = row_[v];
    }
  }

  /// @brief Extends particle k by tokens[k].
  /// @param tokens K tokens
  /// @throw tsmc::invalid_argument if tokens.size() != K or a token is outside [0, V)
  void append(std::span<const token> tokens) {
    check_size("testing::tabular_model::append", "tokens.size()", tokens.size(),
               "the number of particles", prefixes_.size());
    check_tokens(tokens, vocab_, "testing::tabular_model::append", "tokens");
    for (std::size_t k = 0; k < tokens.size(); ++k) prefixes_[k].push_back(tokens[k]);
  }

  /// @brief Slot k takes the state of slot ancestors[k]; only slots with ancestors[k] != k are
  /// copied (each adds one to copies()). Correct for any ancestor vector, slot-stable or not.
  /// @param ancestors K indices in [0, K)
  /// @throw tsmc::invalid_argument if ancestors.size() != K or an index is outside [0, K)
  void reorder(std::span<const particle_index> ancestors) {
    copies_ += detail::copy_from_ancestors("testing::tabular_model::reorder", prefixes_, ancestors);
  }

  /// @brief The number of slots copied by reorder since the last start.
  [[nodiscard]] std::size_t copies() const noexcept { return copies_; }

  /// @brief The number of calls to log_probs since the last start.
  [[nodiscard]] std::size_t log_prob_calls() const noexcept { return log_prob_calls_; }

  /// @brief The number of particles K of the current run (0 before start).
  [[nodiscard]] std::size_t particles() const noexcept { return prefixes_.size(); }

  /// @brief The prompt of the current run.
  [[nodiscard]] std::span<const token> prompt() const noexcept { return prompt_; }

  /// @brief The generated prefix of every particle.
  [[nodiscard]] std::span<const token_sequence> prefixes() const noexcept { return prefixes_; }

 private:
  void check_query(std::span<const token> prompt, std::span<const token> prefix, std::size_t out_size,
                   const char* function) const {
    check_size(function, "out.size()", out_size, "the vocabulary size", vocab_);
    check_tokens(prompt, vocab_, function, "prompt");
    check_tokens(prefix, vocab_, function, "prefix");
  }

  // The raw double-precision log-probabilities x_v (before any rounding); out has V entries.
  void raw_log_probs(std::span<const token> prompt, std::span<const token> prefix, std::span<double> out) const {
    if (!next_probs_) {
      detail::sequence_hasher hasher(seed_, detail::model_hash_tag);
      hasher.absorb_sequence(prompt);
      hasher.absorb_sequence(prefix);
      default_engine engine(hasher.value());
      for (double& x : out) x = scale_ * standard_normal(engine);
      log_softmax(out, out);
      return;
    }
    constexpr const char* function = "testing::tabular_model::next_log_probs";
    const std::vector<double> probs = next_probs_(prompt, prefix);
    check_size(function, "next_probs(prompt, prefix).size()", probs.size(), "the vocabulary size", vocab_);
    double sum = 0.0;
    for (std::size_t v = 0; v < vocab_; ++v) {
      if (!(std::isfinite(probs[v]) && probs[v] >= 0.0))
        throw_invalid_argument(function, "next_probs(" + tokens_text(prefix) + ")[" + std::to_string(v) + "]",
                               "must be finite and >= 0", probs[v]);
      sum += probs[v];
    }
    check_argument(sum > 0.0, function, "sum of next_probs(" + tokens_text(prefix) + ")",
                   "must be positive", sum);
    for (std::size_t v = 0; v < vocab_; ++v) out[v] = std::log(probs[v]) - std::log(sum);
  }

  std::size_t vocab_ = 0;
  std::uint64_t seed_ = 0;
  double scale_ = 1.0;
  next_probs_function next_probs_;
  table_precision precision_ = table_precision::single;

  token_sequence prompt_;
  std::vector<token_sequence> prefixes_;
  std::vector<double> row_;
  std::size_t copies_ = 0;
  std::size_t log_prob_calls_ = 0;
};

static_assert(LanguageModel<tabular_model>, "tsmc::testing::tabular_model must model tsmc::LanguageModel");

}  // namespace tsmc::testing
