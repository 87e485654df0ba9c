#pragma once
/// @file
/// @brief Potentials for the paper's tasks on any LanguageModel (Zhao et al. 2024, Section 6):
/// a classifier target log phi(s) = beta log P(c | s) (sentiment-conditioned generation,
/// Table 3) and a threshold target phi(s) = 1[score(s) >= threshold] (toxicity red-teaming,
/// Table 2), each with the next-token form `log_potential_next` when its classifier or score
/// has one, so that the twisted proposal uses psi_T = phi exactly at the last step. Infilling
/// (Table 4) is tsmc::infilling_potential with tsmc::infilling_joint_sampler
/// (bounds/exact_samplers.hpp), which works on these models unchanged.
///
/// Every potential scores the generated tokens only (the prompt is excluded), like the toy ones.

#include <tsmc/core/concepts.hpp>
#include <tsmc/core/error.hpp>
#include <tsmc/core/log_math.hpp>
#include <tsmc/core/types.hpp>
#include <tsmc/potentials/classifier.hpp>

#include <cmath>
#include <concepts>
#include <cstddef>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <utility>

namespace tsmc {

// ---------------------------------------------------------------------------------------------
// classifier_potential
// ---------------------------------------------------------------------------------------------

/// @brief The classifier target: log phi(s) = beta log P(c | s) (Zhao et al. 2024, Section 6,
/// the sentiment task). With beta = 1, sigma(s) = p0(s | c) and exact samples come from
/// tsmc::class_rejection_sampler; phi <= 1 for every beta >= 0.
///
/// Holds a reference to the classifier (it must outlive the potential).
/// @tparam C a Classifier; with a NextTokenClassifier the potential also has log_potential_next
template <Classifier C>
class classifier_potential {
 public:
  /// @brief The potential of one class.
  /// @param classifier the classifier
  /// @param target_class c, in [0, C)
  /// @param beta the exponent (>= 0 and finite)
  /// @throw tsmc::invalid_argument if the class is out of range or beta is negative or not finite
  classifier_potential(const C& classifier, std::size_t target_class, double beta = 1.0)
      : classifier_(&classifier), class_(target_class), beta_(beta) {
    constexpr const char* function = "classifier_potential::classifier_potential";
    check_argument(target_class < static_cast<std::size_t>(classifier.num_classes()), function, "target_class",
                   "must be < num_classes() " + std::to_string(classifier.num_classes()), target_class);
    check_argument(beta >= 0.0 && std::isfinite(beta), function, "beta", "must be >= 0 and finite", beta);
  }

  /// @brief out[k] = beta log P(c | sequences[k]).
  /// @throw tsmc::invalid_argument if out.size() != sequences.size(); the classifier's exceptions
  void log_potential(std::span<const token_sequence> sequences, std::span<double> out) const {
    check_size("classifier_potential::log_potential", "out.size()", out.size(), "sequences.size()", sequences.size());
    work_.resize(static_cast<Eigen::Index>(sequences.size()), static_cast<Eigen::Index>(classifier_->num_classes()));
    classifier_->log_class_probs(sequences, work_);
    for (std::size_t k = 0; k < sequences.size(); ++k)
      out[k] = scale(work_(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(class_)));
  }

  /// @brief out(k, v) = beta log P(c | prefix_k + v) for every candidate token v.
  /// @throw tsmc::invalid_argument if out.rows() != ctx.prefixes.size(); the classifier's exceptions
  template <class Model>
  void log_potential_next(const step_context<Model>& ctx, log_prob_ref out) const
    requires NextTokenClassifier<C>
  {
    check_size("classifier_potential::log_potential_next", "out.rows()", out.rows(), "the number of prefixes",
               ctx.prefixes.size());
    classifier_->log_class_prob_next(ctx.prefixes, class_, out);
    if (beta_ != 1.0) out = out.unaryExpr([this](double x) { return scale(x); });
  }

  /// @brief c.
  [[nodiscard]] std::size_t target_class() const noexcept { return class_; }
  /// @brief beta.
  [[nodiscard]] double beta() const noexcept { return beta_; }

 private:
  /// beta * x, with 0 * (-inf) = 0 (beta = 0 is phi = 1).
  [[nodiscard]] double scale(double x) const noexcept { return beta_ == 0.0 ? 0.0 : beta_ * x; }

  const C* classifier_;
  std::size_t class_;
  double beta_;
  mutable log_prob_matrix work_;
};

// ---------------------------------------------------------------------------------------------
// scores and the threshold target
// ---------------------------------------------------------------------------------------------

/// @brief A score of a token sequence: `score(sequence)` returns a double (higher = more of the
/// attribute). Optional: `score_next(prefixes, out)` writing out(k, v) = score(prefixes[k] + v).
template <class S>
concept SequenceScore = requires(const S& s, std::span<const token> sequence) {
  { s.score(sequence) } -> std::convertible_to<double>;
};

/// @brief A SequenceScore that also scores every one-token extension at once.
template <class S>
concept NextTokenScore = SequenceScore<S> && requires(const S& s, std::span<const token_sequence> prefixes,
                                                      log_prob_ref out) { s.score_next(prefixes, out); };

/// @brief The score log P(c | s) of a classifier's class (a NextTokenScore when the classifier
/// is a NextTokenClassifier). Holds a reference to the classifier.
/// @tparam C a Classifier
template <Classifier C>
class class_log_prob_score {
 public:
  /// @brief The score of one class.
  /// @param classifier the classifier (must outlive the score)
  /// @param target_class c, in [0, C)
  /// @throw tsmc::invalid_argument if the class is out of range
  class_log_prob_score(const C& classifier, std::size_t target_class) : classifier_(&classifier), class_(target_class) {
    check_argument(target_class < static_cast<std::size_t>(classifier.num_classes()),
                   "class_log_prob_score::class_log_prob_score", "target_class",
                   "must be < num_classes() " + std::to_string(classifier.num_classes()), target_class);
  }

  /// @brief log P(c | sequence).
  [[nodiscard]] double score(std::span<const token> sequence) const {
    const token_sequence one(sequence.begin(), sequence.end());
    log_prob_matrix row(1, static_cast<Eigen::Index>(classifier_->num_classes()));
    classifier_->log_class_probs(std::span<const token_sequence>(&one, 1), row);
    return row(0, static_cast<Eigen::Index>(class_));
  }

  /// @brief out(k, v) = log P(c | prefixes[k] + v).
  void score_next(std::span<const token_sequence> prefixes, log_prob_ref out) const
    requires NextTokenClassifier<C>
  {
    classifier_->log_class_prob_next(prefixes, class_, out);
  }

 private:
  const C* classifier_;
  std::size_t class_;
};

/// @brief A user's score function double(std::span<const token>) as a SequenceScore.
/// @tparam F the callable, stored by value
template <class F>
  requires std::is_invocable_r_v<double, const F&, std::span<const token>>
class function_score {
 public:
  /// @brief Wraps a callable.
  explicit function_score(F function) : function_(std::move(function)) {}
  /// @brief The callable's value.
  [[nodiscard]] double score(std::span<const token> sequence) const { return function_(sequence); }

 private:
  F function_;
};

/// @brief The threshold target: phi(s) = 1 if score(s) >= threshold, else 0 (log phi = 0 or
/// -inf): the red-teaming task (Zhao et al. 2024, Section 6, toxicity threshold), e.g. with
/// class_log_prob_score, "log P(toxic | s) >= log 0.5". Exact samples come from
/// tsmc::indicator_rejection_sampler.
/// @tparam S a SequenceScore, stored by value; with a NextTokenScore the potential also has
/// log_potential_next
template <SequenceScore S>
class threshold_potential {
 public:
  /// @brief The indicator of score >= threshold.
  /// @param score the score
  /// @param threshold the threshold (not NaN)
  /// @throw tsmc::invalid_argument if the threshold is NaN
  threshold_potential(S score, double threshold) : score_(std::move(score)), threshold_(threshold) {
    check_argument(!std::isnan(threshold), "threshold_potential::threshold_potential", "threshold", "must not be NaN",
                   threshold);
  }

  /// @brief Whether a sequence passes.
  /// @throw tsmc::runtime_error if the score is NaN
  [[nodiscard]] bool passes(std::span<const token> sequence) const {
    return passes_value(score_.score(sequence), "threshold_potential::passes");
  }

  /// @brief out[k] = 0 if sequences[k] passes, else -inf.
  /// @throw tsmc::invalid_argument if out.size() != sequences.size(); tsmc::runtime_error on a NaN score
  void log_potential(std::span<const token_sequence> sequences, std::span<double> out) const {
    check_size("threshold_potential::log_potential", "out.size()", out.size(), "sequences.size()", sequences.size());
    for (std::size_t k = 0; k < sequences.size(); ++k)
      out[k] = passes_value(score_.score(sequences[k]), "threshold_potential::log_potential") ? 0.0 : neg_inf;
  }

  /// @brief out(k, v) = 0 if prefix_k + v passes, else -inf.
  /// @throw tsmc::invalid_argument if out.rows() != ctx.prefixes.size(); tsmc::runtime_error on a NaN score
  template <class Model>
  void log_potential_next(const step_context<Model>& ctx, log_prob_ref out) const
    requires NextTokenScore<S>
  {
    check_size("threshold_potential::log_potential_next", "out.rows()", out.rows(), "the number of prefixes",
               ctx.prefixes.size());
    score_.score_next(ctx.prefixes, out);
    for (Eigen::Index k = 0; k < out.rows(); ++k)
      for (Eigen::Index v = 0; v < out.cols(); ++v)
        out(k, v) = passes_value(out(k, v), "threshold_potential::log_potential_next") ? 0.0 : neg_inf;
  }

  /// @brief The threshold.
  [[nodiscard]] double threshold() const noexcept { return threshold_; }
  /// @brief The score.
  [[nodiscard]] const S& score() const noexcept { return score_; }

 private:
  [[nodiscard]] bool passes_value(double s, const char* function) const {
    if (std::isnan(s)) throw_runtime_error(function, "score", "must not be NaN", s);
    return s >= threshold_;
  }

  S score_;
  double threshold_;
};

}  // namespace tsmc
