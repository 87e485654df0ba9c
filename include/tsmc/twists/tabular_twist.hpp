#pragma once
/// @file
/// @brief tabular_twist: one trainable parameter log psi_t(s_{1:t}) per prefix of an enumerable
/// problem, so that learned twists can be compared exactly with the optimal twist psi*.

#include <tsmc/core/concepts.hpp>
#include <tsmc/core/error.hpp>
#include <tsmc/core/types.hpp>
#include <tsmc/twists/trainable.hpp>

#include <Eigen/Core>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

namespace tsmc {

/// @brief A trainable twist with one free parameter per prefix: out(k, v) = theta[s_{1:t-1} v],
/// for every prefix of length 1..T over a vocabulary of V tokens (sum_t V^t parameters, at most
/// 2^24). Initialised to 0 (psi = 1). Models tsmc::TrainableTwist for every model type.
///
/// The parameter of prefix s_{1:t} is at offset(t) + sum_i s_i V^{t-i} with offset(t) = sum_{j<t} V^j
/// (j >= 1): prefixes of one length are contiguous, in lexicographic order.
template <class Lazy = void>
class basic_tabular_twist {
 public:
  /// @brief The largest number of parameters accepted (2^24).
  static constexpr std::size_t max_parameters = std::size_t{1} << 24;

  /// @brief A twist for prefixes of length 1..horizon over vocab_size tokens, psi = 1.
  /// @throw tsmc::invalid_argument if vocab_size or horizon is 0, or sum_t V^t exceeds max_parameters
  basic_tabular_twist(std::size_t vocab_size, std::size_t horizon) : vocab_(vocab_size), horizon_(horizon) {
    constexpr const char* function = "tabular_twist::tabular_twist";
    check_positive(function, "vocab_size", vocab_size);
    check_positive(function, "horizon", horizon);
    offsets_.assign(horizon + 2, 0);
    std::size_t level = 1;
    for (std::size_t t = 1; t <= horizon; ++t) {
      check_argument(level <= max_parameters / vocab_size, function, "horizon",
                     "gives more than 2^24 prefixes for vocab_size " + std::to_string(vocab_size), horizon);
      level *= vocab_size;
      offsets_[t + 1] = offsets_[t] + level;
      check_argument(offsets_[t + 1] <= max_parameters, function, "horizon",
                     "gives more than 2^24 prefixes for vocab_size " + std::to_string(vocab_size), horizon);
    }
    theta_ = Eigen::VectorXd::Zero(static_cast<Eigen::Index>(offsets_[horizon + 1]));
    gradient_ = Eigen::VectorXd::Zero(theta_.size());
  }

  /// @brief V.
  [[nodiscard]] std::size_t vocab_size() const noexcept { return vocab_; }
  /// @brief T, the longest prefix with a parameter.
  [[nodiscard]] std::size_t horizon() const noexcept { return horizon_; }
  /// @brief The number of parameters, sum_{t=1}^T V^t.
  [[nodiscard]] std::size_t size() const noexcept { return static_cast<std::size_t>(theta_.size()); }

  /// @brief The index of the parameter of a prefix s_{1:t}, 1 <= t <= T.
  /// @throw tsmc::invalid_argument for an empty or too long prefix or a token outside [0, V)
  [[nodiscard]] std::size_t index_of(std::span<const token> prefix) const {
    return checked_index(prefix, "tabular_twist::index_of");
  }

  /// @brief log psi_t(prefix) (the prefix's length is t).
  /// @throw tsmc::invalid_argument "tsmc::tabular_twist::log_value: ..." as index_of
  [[nodiscard]] double log_value(std::span<const token> prefix) const {
    return theta_[static_cast<Eigen::Index>(checked_index(prefix, "tabular_twist::log_value"))];
  }

  /// @brief Sets log psi_t(prefix). -inf (psi = 0) is allowed; NaN and +inf are not (the sampler
  /// would stop on them at the first run).
  /// @throw tsmc::invalid_argument "tsmc::tabular_twist::set_log_value: ..." as index_of, or if
  /// value is NaN or +inf
  void set_log_value(std::span<const token> prefix, double value) {
    constexpr const char* function = "tabular_twist::set_log_value";
    const std::size_t index = checked_index(prefix, function);
    check_argument(!std::isnan(value) && value < std::numeric_limits<double>::infinity(), function, "value",
                   "must not be NaN or +inf", value);
    theta_[static_cast<Eigen::Index>(index)] = value;
  }

  /// @brief The parameters (one per prefix, in index_of order).
  [[nodiscard]] Eigen::VectorXd& values() noexcept { return theta_; }
  /// @brief The parameters.
  [[nodiscard]] const Eigen::VectorXd& values() const noexcept { return theta_; }
  /// @brief The accumulated gradient, aligned with values().
  [[nodiscard]] const Eigen::VectorXd& gradient() const noexcept { return gradient_; }

  /// @brief out(k, v) = log psi_t(prefix_k, v) with t = ctx.step; rows of finished particles are 0.
  /// Records each active row's first parameter index when recording.
  /// @throw tsmc::invalid_argument if out is not K x V or t exceeds the twist's horizon
  template <class Model>
  void log_twist(const step_context<Model>& ctx, log_prob_ref out) {
    constexpr const char* function = "tabular_twist::log_twist";
    const std::size_t K = ctx.prefixes.size();
    check_size(function, "out.rows()", out.rows(), "the number of prefixes", K);
    check_size(function, "out.cols()", out.cols(), "vocab_size()", vocab_);
    if (ctx.step < 1 || ctx.step > horizon_)
      throw_invalid_argument(function, "ctx.step", "must be in [1, horizon = " + std::to_string(horizon_) + "]",
                             ctx.step);
    std::vector<std::int64_t>* record = nullptr;
    if (recording_) {
      if (records_.size() < ctx.step) records_.resize(ctx.step);
      record = &records_[ctx.step - 1];
      record->assign(K, -1);
    }
    const auto V = static_cast<Eigen::Index>(vocab_);
    for (std::size_t k = 0; k < K; ++k) {
      const auto row = static_cast<Eigen::Index>(k);
      if (!ctx.active.empty() && ctx.active[k] == 0) {
        out.row(row).setZero();
        continue;
      }
      const auto& prefix = ctx.prefixes[k];
      if (prefix.size() + 1 != ctx.step)
        throw_invalid_argument(function, "ctx.prefixes[" + std::to_string(k) + "].size()",
                               "must be ctx.step - 1 = " + std::to_string(ctx.step - 1), prefix.size());
      const std::size_t first = offsets_[ctx.step] + code_of(prefix) * vocab_;
      out.row(row) = theta_.segment(static_cast<Eigen::Index>(first), V).transpose();
      if (record != nullptr) (*record)[k] = static_cast<std::int64_t>(first);
    }
  }

  /// @brief Starts (true) or stops (false) recording the rows of later log_twist calls.
  void set_recording(bool on) noexcept { recording_ = on; }
  /// @brief Forgets every record.
  void clear_recording() noexcept { records_.clear(); }
  /// @brief Whether step t was recorded.
  [[nodiscard]] bool has_record(std::size_t step) const noexcept {
    return step >= 1 && step <= records_.size() && !records_[step - 1].empty();
  }
  /// @brief Sets the accumulated gradient to 0.
  void zero_gradient() noexcept { gradient_.setZero(); }

  /// @brief gradient += sum_{k,v} C(k, v) d log psi_t(prefix_k, v) / d theta for the rows recorded at step t.
  /// @throw tsmc::invalid_argument if step t was not recorded or C is not K x V
  void accumulate_dense(std::size_t step, const_log_prob_ref coefficients) {
    constexpr const char* function = "tabular_twist::accumulate_dense";
    const auto& record = checked_record(step, function);
    check_size(function, "coefficients.rows()", coefficients.rows(), "the rows recorded at step " + std::to_string(step),
               record.size());
    check_size(function, "coefficients.cols()", coefficients.cols(), "vocab_size()", vocab_);
    const auto V = static_cast<Eigen::Index>(vocab_);
    for (std::size_t k = 0; k < record.size(); ++k)
      if (record[k] >= 0)
        gradient_.segment(static_cast<Eigen::Index>(record[k]), V) +=
            coefficients.row(static_cast<Eigen::Index>(k)).transpose();
  }

  /// @brief gradient += sum over entries of C d log psi_t(prefix_k, v) / d theta at step t;
  /// entries on finished rows contribute nothing (as in accumulate_dense; see TrainableTwist).
  /// @throw tsmc::invalid_argument if step t was not recorded, or an entry names a row outside the
  /// record or a token outside [0, V) (nothing is accumulated then)
  void accumulate_sparse(std::size_t step, std::span<const sparse_coefficient> entries) {
    constexpr const char* function = "tabular_twist::accumulate_sparse";
    const auto& record = checked_record(step, function);
    for (const auto& e : entries) {
      if (!(e.particle < record.size()))
        throw_invalid_argument(function, "entry.particle",
                               "must be a row recorded at step " + std::to_string(step) + " (below " +
                                   std::to_string(record.size()) + ")",
                               e.particle);
      if (!(e.candidate >= 0 && static_cast<std::size_t>(e.candidate) < vocab_))
        throw_invalid_argument(function, "entry.candidate", "must be in [0, " + std::to_string(vocab_) + ")",
                               e.candidate);
    }
    for (const auto& e : entries)
      if (record[e.particle] >= 0) gradient_[static_cast<Eigen::Index>(record[e.particle] + e.candidate)] += e.value;
  }

  /// @brief One block, "log_psi" (size() x 1).
  [[nodiscard]] std::vector<parameter_block> parameters() {
    std::vector<parameter_block> blocks;
    blocks.push_back(parameter_block{"log_psi", theta_.size(), 1,
                                     Eigen::Map<Eigen::VectorXd>(theta_.data(), theta_.size()),
                                     Eigen::Map<Eigen::VectorXd>(gradient_.data(), gradient_.size())});
    return blocks;
  }

 private:
  [[nodiscard]] std::size_t checked_index(std::span<const token> prefix, const char* function) const {
    check_argument(!prefix.empty() && prefix.size() <= horizon_, function, "prefix.size()",
                   "must be in [1, horizon = " + std::to_string(horizon_) + "]", prefix.size());
    check_tokens(prefix, vocab_, function, "prefix");
    return offsets_[prefix.size()] + code_of(prefix);
  }

  [[nodiscard]] std::size_t code_of(std::span<const token> prefix) const noexcept {
    std::size_t code = 0;
    for (token x : prefix) code = code * vocab_ + static_cast<std::size_t>(x);
    return code;
  }

  [[nodiscard]] const std::vector<std::int64_t>& checked_record(std::size_t step, const char* function) const {
    check_argument(has_record(step), function, "step", "was not recorded (call set_recording(true) before the run)",
                   step);
    return records_[step - 1];
  }

  std::size_t vocab_;
  std::size_t horizon_;
  std::vector<std::size_t> offsets_;  // offsets_[t]: index of the first prefix of length t
  Eigen::VectorXd theta_;
  Eigen::VectorXd gradient_;
  bool recording_ = false;
  std::vector<std::vector<std::int64_t>> records_;  // per step: each row's first parameter index, -1 if finished
};

/// @brief The library's tabular_twist: basic_tabular_twist is a template only so that its member
/// functions are compiled in the translation units that use them (docs/architecture.md, "Compile weight").
using tabular_twist = basic_tabular_twist<>;

}  // namespace tsmc
