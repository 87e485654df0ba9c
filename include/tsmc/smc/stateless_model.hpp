#pragma once
/// @file
/// @brief An adapter that turns a stateless next-token function into a LanguageModel.

#include <tsmc/core/concepts.hpp>
#include <tsmc/core/error.hpp>
#include <tsmc/core/types.hpp>
#include <tsmc/resampling/ancestors.hpp>

#include <concepts>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace tsmc {

/// @brief A function `f(prompt, prefix, out)` writing out[v] = log p0(v | prompt, prefix) for
/// every token v (normalised log-probabilities, V doubles).
template <class F>
concept NextTokenFunction =
    std::invocable<F&, std::span<const token>, std::span<const token>, std::span<double>>;

/// @brief Wraps a stateless next-token function as a batched, stateful LanguageModel.
///
/// For users whose model has no cache: the adapter keeps each particle's generated prefix and
/// calls the function once per particle per step. reorder copies only the prefixes of dead
/// particles (slot-stable ancestors make the in-place copy safe).
/// @tparam F a NextTokenFunction
template <NextTokenFunction F>
class stateless_model {
 public:
  /// @brief Wraps f for a vocabulary of vocab_size tokens.
  /// @throw tsmc::invalid_argument if vocab_size == 0
  stateless_model(std::size_t vocab_size, F next_token_log_probs)
      : vocab_size_(vocab_size), function_(std::move(next_token_log_probs)) {
    check_positive("stateless_model", "vocab_size", vocab_size);
  }

  /// @brief The vocabulary size V.
  [[nodiscard]] std::size_t vocab_size() const noexcept { return vocab_size_; }

  /// @brief Positions K particles after the prompt (all prefixes empty).
  /// @throw tsmc::invalid_argument if particles == 0 or a prompt token is outside [0, V)
  void start(std::span<const token> prompt, std::size_t particles) {
    check_positive("stateless_model::start", "particles", particles);
    check_tokens(prompt, vocab_size_, "stateless_model::start", "prompt");
    prompt_.assign(prompt.begin(), prompt.end());
    prefixes_.resize(particles);
    for (auto& p : prefixes_) p.clear();
  }

  /// @brief Row k = f(prompt, prefix_k).
  /// @param out K x V
  /// @throw tsmc::invalid_argument if out is not K x V
  void log_probs(log_prob_ref out) { log_probs(out, std::span<const std::uint8_t>()); }

  /// @brief As log_probs(out), calling f only for the particles still generating (active[k] != 0);
  /// the rows of finished particles are left as they are. The sampler calls this form, so a
  /// finished particle costs no call of f. An empty active span means every row.
  /// @param out K x V
  /// @param active K flags, or empty
  /// @throw tsmc::invalid_argument if out is not K x V or active has neither 0 nor K entries
  void log_probs(log_prob_ref out, std::span<const std::uint8_t> active) {
    check_shape(out);
    if (!active.empty())
      check_size("stateless_model::log_probs", "active.size()", active.size(), "the number of particles",
                 prefixes_.size());
    for (std::size_t k = 0; k < prefixes_.size(); ++k) {
      if (!active.empty() && active[k] == 0) continue;
      function_(std::span<const token>(prompt_), std::span<const token>(prefixes_[k]),
                std::span<double>(out.row(static_cast<Eigen::Index>(k)).data(), vocab_size_));
    }
  }

  /// @brief Extends prefix k by tokens[k].
  /// @throw tsmc::invalid_argument on a size mismatch or a token outside [0, V) (the prefixes are
  /// then unchanged)
  void append(std::span<const token> tokens) {
    check_size("stateless_model::append", "tokens.size()", tokens.size(), "the number of particles", prefixes_.size());
    check_tokens(tokens, vocab_size_, "stateless_model::append", "tokens");
    for (std::size_t k = 0; k < tokens.size(); ++k) prefixes_[k].push_back(tokens[k]);
  }

  /// @brief Slot k takes prefix ancestors[k] (copied only where ancestors[k] != k); any ancestor
  /// vector works, slot-stable or not.
  /// @throw tsmc::invalid_argument on a size mismatch or an ancestor out of range
  void reorder(std::span<const particle_index> ancestors) {
    (void)detail::copy_from_ancestors("stateless_model::reorder", prefixes_, ancestors);
  }

  /// @brief The generated prefixes, one per particle.
  [[nodiscard]] std::span<const token_sequence> prefixes() const noexcept { return prefixes_; }

 private:
  void check_shape(const log_prob_ref& out) const {
    check_size("stateless_model::log_probs", "out.rows()", out.rows(), "the number of particles", prefixes_.size());
    check_size("stateless_model::log_probs", "out.cols()", out.cols(), "vocab_size", vocab_size_);
  }

  std::size_t vocab_size_;
  F function_;
  token_sequence prompt_;
  std::vector<token_sequence> prefixes_;
};

}  // namespace tsmc
