#pragma once
/// @file
/// @brief sigmoid_twist: a trainable twist whose psi is a probability, psi = sigmoid(g) with g
/// the output of another trainable twist (FUDGE's parametrisation, Yang and Klein 2021; Zhao et
/// al. 2024, Table 1).

#include <tsmc/core/concepts.hpp>
#include <tsmc/core/error.hpp>
#include <tsmc/core/log_math.hpp>
#include <tsmc/core/types.hpp>
#include <tsmc/twists/trainable.hpp>

#include <Eigen/Core>

#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace tsmc {

namespace detail {

/// A stateful inner twist's start / append / reorder, forwarded by an adapter (Derived has
/// inner()); nothing for a stateless one, so the adapter declares no hook it cannot serve.
template <class Derived, class Inner,
          bool Stateful = requires(Inner& w, std::span<const token> t, std::span<const particle_index> a) {
            w.append(t);
            w.reorder(a);
          }>
struct forwarded_twist_state {};

template <class Derived, class Inner>
struct forwarded_twist_state<Derived, Inner, true> {
  /// @brief Forwarded to the inner twist.
  void start(std::span<const token> prompt, std::size_t particles) {
    static_cast<Derived&>(*this).inner().start(prompt, particles);
  }
  /// @brief Forwarded to the inner twist.
  void append(std::span<const token> tokens) { static_cast<Derived&>(*this).inner().append(tokens); }
  /// @brief Forwarded to the inner twist.
  void reorder(std::span<const particle_index> ancestors) { static_cast<Derived&>(*this).inner().reorder(ancestors); }
};

}  // namespace detail

/// @brief log psi_t(prefix, v) = log sigmoid(g_t(prefix, v)), where g is the output ("logit")
/// of the inner trainable twist: psi is in (0, 1), read as P(the potential holds | prefix, v).
///
/// Models tsmc::TrainableTwist: gradients with respect to log psi are chained through
/// d log sigmoid(g) / dg = sigmoid(-g) into the inner twist; accumulate_logit_sparse takes
/// coefficients with respect to g directly (binary cross-entropy losses). While recording, it
/// keeps each step's K x V logits. A stateful inner twist's start / append / reorder are forwarded.
/// @tparam Inner a trainable twist (for every model type the adapter is used with)
template <class Inner>
class sigmoid_twist : public detail::forwarded_twist_state<sigmoid_twist<Inner>, Inner> {
 public:
  /// @brief Wraps (and owns) the inner twist.
  explicit sigmoid_twist(Inner inner) : inner_(std::move(inner)) {}

  /// @brief The inner twist (its output is g).
  [[nodiscard]] Inner& inner() noexcept { return inner_; }
  /// @brief The inner twist.
  [[nodiscard]] const Inner& inner() const noexcept { return inner_; }
  /// @brief V.
  [[nodiscard]] std::size_t vocab_size() const { return inner_.vocab_size(); }

  /// @brief out(k, v) = log sigmoid(g(k, v)).
  template <class Model>
  void log_twist(const step_context<Model>& ctx, log_prob_ref out) {
    inner_.log_twist(ctx, out);
    if (recording_) {
      if (logits_.size() < ctx.step) logits_.resize(ctx.step);
      logits_[ctx.step - 1] = out;
    }
    out = out.unaryExpr([](double g) { return log_sigmoid(g); });
  }

  /// @brief Starts or stops recording (here and in the inner twist).
  void set_recording(bool on) {
    recording_ = on;
    inner_.set_recording(on);
  }
  /// @brief Forgets every record.
  void clear_recording() {
    logits_.clear();
    inner_.clear_recording();
  }
  /// @brief Whether step t was recorded.
  [[nodiscard]] bool has_record(std::size_t step) const {
    return step >= 1 && step <= logits_.size() && logits_[step - 1].size() > 0 && inner_.has_record(step);
  }
  /// @brief The recorded logit g_t(prefix_k, v).
  /// @throw tsmc::invalid_argument if step t was not recorded or (k, v) is outside its rows
  [[nodiscard]] double recorded_logit(std::size_t step, std::size_t particle, token candidate) const {
    const auto& g = checked(step, "sigmoid_twist::recorded_logit");
    if (particle >= static_cast<std::size_t>(g.rows()))
      throw_invalid_argument("sigmoid_twist::recorded_logit", "particle",
                             "must be < the rows recorded at step " + std::to_string(step), particle);
    check_argument(candidate >= 0 && candidate < g.cols(), "sigmoid_twist::recorded_logit", "candidate",
                   "must be in [0, V)", candidate);
    return g(static_cast<Eigen::Index>(particle), candidate);
  }
  /// @brief Sets the inner twist's gradient to 0.
  void zero_gradient() { inner_.zero_gradient(); }

  /// @brief Accumulates sum C(k, v) d log psi / d theta: C * sigmoid(-g) into the inner twist.
  void accumulate_dense(std::size_t step, const_log_prob_ref coefficients) {
    const auto& g = checked(step, "sigmoid_twist::accumulate_dense");
    check_size("sigmoid_twist::accumulate_dense", "coefficients.rows()", coefficients.rows(),
               "the rows recorded at this step", g.rows());
    check_size("sigmoid_twist::accumulate_dense", "coefficients.cols()", coefficients.cols(), "vocab_size()", g.cols());
    chained_ = coefficients.cwiseProduct(g.unaryExpr([](double x) { return sigmoid(-x); }));
    inner_.accumulate_dense(step, chained_);
  }
  /// @brief Accumulates sum C d log psi / d theta over the entries (chained through sigmoid(-g)).
  void accumulate_sparse(std::size_t step, std::span<const sparse_coefficient> entries) {
    chained_entries_.assign(entries.begin(), entries.end());
    for (auto& e : chained_entries_) e.value *= sigmoid(-recorded_logit(step, e.particle, e.candidate));
    inner_.accumulate_sparse(step, chained_entries_);
  }
  /// @brief Accumulates sum C d g / d theta: coefficients with respect to the logit itself.
  void accumulate_logit_sparse(std::size_t step, std::span<const sparse_coefficient> entries) {
    (void)checked(step, "sigmoid_twist::accumulate_logit_sparse");
    inner_.accumulate_sparse(step, entries);
  }
  /// @brief The inner twist's parameters.
  [[nodiscard]] std::vector<parameter_block> parameters() { return inner_.parameters(); }

 private:
  const log_prob_matrix& checked(std::size_t step, const char* function) const {
    check_argument(has_record(step), function, "step", "was not recorded (call set_recording(true) before the run)",
                   step);
    return logits_[step - 1];
  }

  Inner inner_;
  bool recording_ = false;
  std::vector<log_prob_matrix> logits_;  // per step, the inner twist's K x V output g
  log_prob_matrix chained_;
  std::vector<sparse_coefficient> chained_entries_;
};

}  // namespace tsmc
