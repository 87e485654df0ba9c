#pragma once
/// @file
/// @brief Potentials and a twist for toy problems: a random positive potential, an indicator
/// of a token pattern, a soft "classifier", a wrapper that hides the next-token form, and a
/// random twist.
///
/// Every potential scores the GENERATED tokens only (the prompt is excluded), models
/// tsmc::Potential, and (except hide_next_token_form) also tsmc::NextTokenPotential for every
/// model type: log_potential_next(ctx, out) writes out(k, v) = log phi(prefix_k + v), equal to
/// log_potential of the extended sequence.

#include <tsmc/core/concepts.hpp>
#include <tsmc/core/error.hpp>
#include <tsmc/core/log_math.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/core/types.hpp>
#include <tsmc/testing/sequence_hash.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace tsmc::detail {

/// Checks the shape of a next-token output against a step context.
template <class Model>
void check_next_shape(const step_context<Model>& ctx, const log_prob_ref& out, const char* function) {
  check_size(function, "out.rows()", out.rows(), "the number of prefixes", ctx.prefixes.size());
}

/// A deterministic Gaussian value for every token sequence: scale * N(0, 1) drawn from an
/// engine seeded by hashing (seed, tag, sequence). The random potential and the random twist
/// are this field under different tags.
class hashed_gaussian_field {
 public:
  hashed_gaussian_field(std::uint64_t seed, double scale, std::uint64_t tag, const char* constructor)
      : seed_(seed), scale_(scale), tag_(tag) {
    check_argument(std::isfinite(scale) && scale >= 0.0, constructor, "scale", "must be finite and >= 0", scale);
  }

  /// The value of one sequence.
  [[nodiscard]] double value(std::span<const token> sequence) const noexcept {
    sequence_hasher hasher(seed_, tag_);
    hasher.absorb_sequence(sequence);
    return draw(hasher);
  }

  /// out(k, v) = value(prefix_k + v) for every candidate v, hashing each prefix once.
  template <class Model>
  void fill_next(const step_context<Model>& ctx, log_prob_ref out, const char* function) const {
    check_next_shape(ctx, out, function);
    for (std::size_t k = 0; k < ctx.prefixes.size(); ++k) {
      const token_sequence& prefix = ctx.prefixes[k];
      sequence_hasher hasher(seed_, tag_);
      hasher.absorb(static_cast<std::uint64_t>(prefix.size() + 1));  // as absorb_sequence of prefix + v
      for (const token t : prefix) hasher.absorb_token(t);
      for (Eigen::Index v = 0; v < out.cols(); ++v) {
        sequence_hasher candidate = hasher;
        candidate.absorb_token(static_cast<token>(v));
        out(static_cast<Eigen::Index>(k), v) = draw(candidate);
      }
    }
  }

 private:
  [[nodiscard]] double draw(const sequence_hasher& hasher) const noexcept {
    default_engine engine(hasher.value());
    return scale_ * standard_normal(engine);
  }

  std::uint64_t seed_;
  double scale_;
  std::uint64_t tag_;
};

}  // namespace tsmc::detail

namespace tsmc::testing {

// ---------------------------------------------------------------------------------------------
// random_potential
// ---------------------------------------------------------------------------------------------

/// @brief A random, strictly positive potential: log phi(s) = scale * N(0, 1), the normal drawn
/// from an engine seeded by hashing (seed, s). Deterministic, defined for every sequence
/// (sequences of different lengths get unrelated values).
class random_potential {
 public:
  /// @brief Constructs the potential.
  /// @param seed the seed; equal seeds give equal potentials
  /// @param scale the standard deviation of log phi
  /// @throw tsmc::invalid_argument if scale is negative or not finite
  explicit random_potential(std::uint64_t seed, double scale = 1.0)
      : field_(seed, scale, detail::potential_hash_tag, "testing::random_potential::random_potential") {}

  /// @brief log phi of one sequence of generated tokens.
  [[nodiscard]] double log_value(std::span<const token> sequence) const noexcept { return field_.value(sequence); }

  /// @brief out[k] = log phi(sequences[k]).
  /// @throw tsmc::invalid_argument if out.size() != sequences.size()
  void log_potential(std::span<const token_sequence> sequences, std::span<double> out) const {
    check_size("testing::random_potential::log_potential", "out.size()", out.size(),
               "sequences.size()", sequences.size());
    for (std::size_t k = 0; k < sequences.size(); ++k) out[k] = log_value(sequences[k]);
  }

  /// @brief out(k, v) = log phi(prefix_k + v) for every candidate token v.
  /// @throw tsmc::invalid_argument if out.rows() != ctx.prefixes.size()
  template <class Model>
  void log_potential_next(const step_context<Model>& ctx, log_prob_ref out) const {
    field_.fill_next(ctx, out, "testing::random_potential::log_potential_next");
  }

 private:
  detail::hashed_gaussian_field field_;
};

// ---------------------------------------------------------------------------------------------
// pattern_indicator
// ---------------------------------------------------------------------------------------------

/// @brief The indicator that a sequence contains a token pattern as a contiguous run:
/// phi(s) = 1 (log phi = 0) if it does, else 0 (log phi = -inf).
class pattern_indicator {
 public:
  /// @brief Constructs the indicator.
  /// @param pattern a non-empty run of tokens (each >= 0)
  /// @throw tsmc::invalid_argument if pattern is empty or has a negative token
  explicit pattern_indicator(token_sequence pattern) : pattern_(std::move(pattern)) {
    check_positive("testing::pattern_indicator::pattern_indicator", "pattern.size()", pattern_.size());
    for (std::size_t i = 0; i < pattern_.size(); ++i)
      if (pattern_[i] < 0)
        throw_invalid_argument("testing::pattern_indicator::pattern_indicator",
                               "pattern[" + std::to_string(i) + "]", "must be >= 0", pattern_[i]);
  }

  /// @brief The pattern.
  [[nodiscard]] std::span<const token> pattern() const noexcept { return pattern_; }

  /// @brief Whether the sequence contains the pattern.
  [[nodiscard]] bool contains(std::span<const token> sequence) const noexcept {
    return std::search(sequence.begin(), sequence.end(), pattern_.begin(), pattern_.end()) != sequence.end();
  }

  /// @brief log phi: 0 if the sequence contains the pattern, else -inf.
  [[nodiscard]] double log_value(std::span<const token> sequence) const noexcept {
    return contains(sequence) ? 0.0 : neg_inf;
  }

  /// @brief out[k] = log phi(sequences[k]).
  /// @throw tsmc::invalid_argument if out.size() != sequences.size()
  void log_potential(std::span<const token_sequence> sequences, std::span<double> out) const {
    check_size("testing::pattern_indicator::log_potential", "out.size()", out.size(),
               "sequences.size()", sequences.size());
    for (std::size_t k = 0; k < sequences.size(); ++k) out[k] = log_value(sequences[k]);
  }

  /// @brief out(k, v) = log phi(prefix_k + v): 0 where the extended prefix contains the
  /// pattern, -inf elsewhere.
  /// @throw tsmc::invalid_argument if out.rows() != ctx.prefixes.size()
  template <class Model>
  void log_potential_next(const step_context<Model>& ctx, log_prob_ref out) const {
    detail::check_next_shape(ctx, out, "testing::pattern_indicator::log_potential_next");
    const std::size_t m = pattern_.size();
    const auto head = std::span<const token>(pattern_).first(m - 1);
    for (std::size_t k = 0; k < ctx.prefixes.size(); ++k) {
      const token_sequence& prefix = ctx.prefixes[k];
      const auto row = static_cast<Eigen::Index>(k);
      if (contains(prefix)) {
        out.row(row).setZero();
        continue;
      }
      // Without an occurrence in the prefix, prefix + v contains the pattern only as its suffix.
      out.row(row).setConstant(-std::numeric_limits<double>::infinity());
      const bool head_matches =
          prefix.size() >= m - 1 && std::equal(head.begin(), head.end(), prefix.end() - static_cast<std::ptrdiff_t>(m - 1));
      if (head_matches && static_cast<Eigen::Index>(pattern_.back()) < out.cols())
        out(row, static_cast<Eigen::Index>(pattern_.back())) = 0.0f;
    }
  }

 private:
  token_sequence pattern_;
};

// ---------------------------------------------------------------------------------------------
// soft_classifier
// ---------------------------------------------------------------------------------------------

/// @brief A soft "classifier": a logistic model of a class c given the sequence,
/// P(c | s) = sigmoid(bias + sum_t weight[s_t]), and the potential phi(s) = P(c | s)^beta.
///
/// With beta = 1, sigma is the posterior p0(s | c); exact samples come from rejection: draw
/// s ~ p0, accept with probability exp(log_class_probability(s)) (Zhao et al. 2024, Section 5).
class soft_classifier {
 public:
  /// @brief Constructs the classifier.
  /// @param weights one weight per vocabulary token (V entries, finite)
  /// @param bias the logit offset (finite)
  /// @param beta the exponent of the class probability (finite, > 0)
  /// @throw tsmc::invalid_argument if weights is empty or a value is out of range
  explicit soft_classifier(std::vector<double> weights, double bias = 0.0, double beta = 1.0)
      : weights_(std::move(weights)), bias_(bias), beta_(beta) {
    constexpr const char* function = "testing::soft_classifier::soft_classifier";
    check_positive(function, "weights.size()", weights_.size());
    for (std::size_t v = 0; v < weights_.size(); ++v)
      if (!std::isfinite(weights_[v]))
        throw_invalid_argument(function, "weights[" + std::to_string(v) + "]", "must be finite", weights_[v]);
    check_finite(function, "bias", bias_);
    check_argument(std::isfinite(beta_) && beta_ > 0.0, function, "beta", "must be finite and > 0", beta_);
  }

  /// @brief A classifier with weights drawn N(0, scale^2) from the seed.
  /// @param vocab_size V
  /// @param seed the seed of the weights
  /// @param scale the standard deviation of the weights
  /// @param bias the logit offset
  /// @param beta the exponent
  /// @return the classifier
  /// @throw tsmc::invalid_argument if vocab_size is 0 or a value is out of range
  [[nodiscard]] static soft_classifier random(std::size_t vocab_size, std::uint64_t seed, double scale = 1.0,
                                              double bias = 0.0, double beta = 1.0) {
    check_positive("testing::soft_classifier::random", "vocab_size", vocab_size);
    check_argument(std::isfinite(scale) && scale >= 0.0, "testing::soft_classifier::random", "scale",
                   "must be finite and >= 0", scale);
    default_engine engine(stream_seed(seed, detail::potential_hash_tag, vocab_size));
    std::vector<double> weights(vocab_size);
    for (double& w : weights) w = scale * standard_normal(engine);
    return soft_classifier(std::move(weights), bias, beta);
  }

  /// @brief The number of tokens the classifier has weights for.
  [[nodiscard]] std::size_t vocab_size() const noexcept { return weights_.size(); }
  /// @brief The weights, one per token.
  [[nodiscard]] std::span<const double> weights() const noexcept { return weights_; }
  /// @brief The logit offset.
  [[nodiscard]] double bias() const noexcept { return bias_; }
  /// @brief The exponent beta.
  [[nodiscard]] double beta() const noexcept { return beta_; }

  /// @brief The logit bias + sum_t weight[s_t].
  /// @throw tsmc::invalid_argument if a token is outside [0, V)
  [[nodiscard]] double logit(std::span<const token> sequence) const {
    check_tokens(sequence, weights_.size(), "testing::soft_classifier::logit", "sequence");
    double x = bias_;
    for (const token t : sequence) x += weights_[static_cast<std::size_t>(t)];
    return x;
  }

  /// @brief log P(c | s) = log sigmoid(logit(s)), independent of beta.
  /// @throw tsmc::invalid_argument if a token is outside [0, V)
  [[nodiscard]] double log_class_probability(std::span<const token> sequence) const {
    return log_sigmoid(logit(sequence));
  }

  /// @brief log phi(s) = beta * log P(c | s).
  /// @throw tsmc::invalid_argument if a token is outside [0, V)
  [[nodiscard]] double log_value(std::span<const token> sequence) const {
    return beta_ * log_class_probability(sequence);
  }

  /// @brief out[k] = log phi(sequences[k]).
  /// @throw tsmc::invalid_argument if out.size() != sequences.size() or a token is outside [0, V)
  void log_potential(std::span<const token_sequence> sequences, std::span<double> out) const {
    check_size("testing::soft_classifier::log_potential", "out.size()", out.size(),
               "sequences.size()", sequences.size());
    for (std::size_t k = 0; k < sequences.size(); ++k) out[k] = log_value(sequences[k]);
  }

  /// @brief out(k, v) = log phi(prefix_k + v).
  /// @throw tsmc::invalid_argument if out is not K x V or a token is outside [0, V)
  template <class Model>
  void log_potential_next(const step_context<Model>& ctx, log_prob_ref out) const {
    detail::check_next_shape(ctx, out, "testing::soft_classifier::log_potential_next");
    check_size("testing::soft_classifier::log_potential_next", "out.cols()", out.cols(),
               "the vocabulary size", weights_.size());
    for (std::size_t k = 0; k < ctx.prefixes.size(); ++k) {
      const double base = logit(ctx.prefixes[k]);
      for (std::size_t v = 0; v < weights_.size(); ++v)
        out(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(v)) =
            beta_ * log_sigmoid(base + weights_[v]);
    }
  }

 private:
  std::vector<double> weights_;
  double bias_;
  double beta_;
};

// ---------------------------------------------------------------------------------------------
// hide_next_token_form
// ---------------------------------------------------------------------------------------------

/// @brief Wraps a potential and exposes only log_potential, so a sampler cannot use
/// log_potential_next and must take its learned-psi_T path with the weight correction
/// phi / psi_T (Zhao et al. 2024, Section 3).
/// @tparam P the wrapped potential type (a tsmc::Potential)
template <class P>
  requires Potential<P>
class hide_next_token_form {
 public:
  /// @brief Wraps a potential (stored by value).
  explicit hide_next_token_form(P potential) : potential_(std::move(potential)) {}

  /// @brief out[k] = log phi(sequences[k]), forwarded to the wrapped potential.
  void log_potential(std::span<const token_sequence> sequences, std::span<double> out) {
    potential_.log_potential(sequences, out);
  }

  /// @brief The wrapped potential.
  [[nodiscard]] P& inner() noexcept { return potential_; }
  /// @brief The wrapped potential.
  [[nodiscard]] const P& inner() const noexcept { return potential_; }

 private:
  P potential_;
};

// ---------------------------------------------------------------------------------------------
// random_twist
// ---------------------------------------------------------------------------------------------

/// @brief A random (suboptimal) twist for tests: log psi_t(s_{1:t}) = scale * N(0, 1) drawn
/// from an engine seeded by hashing (seed, s_{1:t}); out(k, v) = log psi(prefix_k + v).
/// Models tsmc::TwistFunction for every model type. Independent of the prompt and the step
/// (other than through the prefix length).
class random_twist {
 public:
  /// @brief Constructs the twist.
  /// @param seed the seed; equal seeds give equal twists
  /// @param scale the standard deviation of log psi
  /// @throw tsmc::invalid_argument if scale is negative or not finite
  explicit random_twist(std::uint64_t seed, double scale = 1.0)
      : field_(seed, scale, detail::twist_hash_tag, "testing::random_twist::random_twist") {}

  /// @brief log psi of one prefix s_{1:t}.
  [[nodiscard]] double log_value(std::span<const token> prefix) const noexcept { return field_.value(prefix); }

  /// @brief out(k, v) = log psi(prefix_k + v) for every candidate token v.
  /// @throw tsmc::invalid_argument if out.rows() != ctx.prefixes.size()
  template <class Model>
  void log_twist(const step_context<Model>& ctx, log_prob_ref out) const {
    field_.fill_next(ctx, out, "testing::random_twist::log_twist");
  }

 private:
  detail::hashed_gaussian_field field_;
};

}  // namespace tsmc::testing
