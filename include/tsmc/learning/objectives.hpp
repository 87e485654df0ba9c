#pragma once
/// @file
/// @brief Twist-learning objectives: contrastive twist learning (CTL, Zhao et al. 2024, Section
/// 4.1, Eqs. 21-22) and the paper's baselines (RL / soft Q-learning, SIXO, FUDGE, DPG; Table 1).
///
/// Each objective works in two phases: `sample` draws a batch (sequences and the constants the
/// loss treats as fixed: importance weights, regression targets, labels), and `accumulate`
/// evaluates the loss on that batch at the twist's current parameters and adds the gradient of
/// the loss (to minimise) into the twist, through sum C(k, t, v) grad log psi_t(prefix_k, v).
/// Weights and targets are constants: no gradient flows through them. When the batch was drawn
/// at the current parameters, `accumulate` reuses the sampling run's records instead of
/// evaluating the twist again; a batch evaluated at other parameters (as in a finite-difference
/// check) is evaluated by a forced run along its sequences, so the loss is a deterministic
/// function of the parameters for a fixed batch.

#include <tsmc/core/error.hpp>
#include <tsmc/core/log_math.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/core/statistics.hpp>
#include <tsmc/core/types.hpp>
#include <tsmc/learning/problem.hpp>
#include <tsmc/twists/sigmoid_twist.hpp>
#include <tsmc/twists/trainable.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

namespace tsmc {

/// @brief No exact sampler: positives come from the sampling run's own weights.
struct no_exact_sampler {};

/// @brief What one objective step reports.
struct objective_step {
  double loss = 0.0;  ///< the objective's loss on the batch (its gradient was accumulated)
  double ess = 0.0;   ///< the ESS of the sampling run's final weights
};

namespace detail {

/// Normalised weights from log-weights (all zero if every weight is zero).
inline std::vector<double> normalized(std::span<const double> log_weights) {
  std::vector<double> w(log_weights.size(), 0.0);
  const double lse = logsumexp(log_weights);
  if (!(lse > neg_inf)) return w;
  for (std::size_t k = 0; k < w.size(); ++k) w[k] = std::exp(log_weights[k] - lse);
  return w;
}

/// Draws n exact samples.
template <class Exact, RandomEngine Engine>
std::vector<token_sequence> exact_samples(Exact& exact, std::size_t n, Engine& rng) {
  std::vector<token_sequence> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) out.push_back(exact.sample(rng));
  return out;
}

/// Where the objectives that can learn from exact samples (CTL, SIXO, DPG) take them: `count`
/// samples of an ExactSampler per update, with uniform weights; empty for no_exact_sampler.
template <class Exact>
class exact_positive_source {
 public:
  static constexpr bool enabled = !std::is_same_v<Exact, no_exact_sampler>;
  exact_positive_source() = default;
  exact_positive_source(Exact& exact, std::size_t count, const char* function) : exact_(&exact), count_(count) {
    check_positive(function, "count", count);
  }
  /// Draws `count` exact samples into `sequences`, each with weight 1 / count.
  template <RandomEngine Engine>
  void draw(std::vector<token_sequence>& sequences, std::vector<double>& weights, Engine& rng) const {
    sequences = exact_samples(*exact_, count_, rng);
    weights.assign(count_, 1.0 / static_cast<double>(count_));
  }

 private:
  Exact* exact_ = nullptr;
  std::size_t count_ = 0;
};

/// The positive phase shared by CTL and DPG: adds -sum_t sum_k w_k log psi_t(s^k_{1:t}) over every
/// step t whose psi_t is trainable (a sum over t, no average: CTL's objective sums its per-step KLs,
/// and DPG's is the log-likelihood of the whole sequence), accumulates its gradient
/// -sum_k w_k grad log psi_t(s^k_{1:t}) into the twist and returns the loss term.
template <class Twist>
double accumulate_positive_phase(Twist& twist, const recorded_pass& pass, std::span<const double> weights,
                                 std::vector<sparse_coefficient>& entries) {
  double loss = 0.0;
  for (const auto& s : pass.steps) {
    if (!s.psi_trainable) continue;
    entries.clear();
    for (std::size_t k = 0; k < s.proposed.size(); ++k) {
      if (!s.proposed[k] || weights[k] == 0.0) continue;
      loss -= weights[k] * s.log_psi_chosen[k];
      entries.push_back({k, s.tokens[k], -weights[k]});
    }
    twist.accumulate_sparse(s.step, entries);
  }
  return loss;
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// CTL
// ---------------------------------------------------------------------------------------------

/// @brief Contrastive twist learning (Zhao et al. 2024, Section 4.1, Eqs. 21-22): minimises
/// sum_t KL(sigma(s_{1:t}) || pi_t(s_{1:t})), whose gradient is
/// sum_t E_{pi_t}[grad log psi_t] - E_{sigma}[grad log psi_t].
///
/// Negatives: one SIS run with the twist-induced proposal; at step t each particle's weight
/// targeting pi_t normalises over the batch, and the expectation over the last token s_t is
/// taken exactly over the V candidates: sum_k wbar_k sum_v q_t(v | s^k_{<t}) grad log psi_t(s^k_{<t}, v).
/// Positives: the same run's final (phi-based) weights, with each sequence truncated to t
/// (approximate), or exact samples from an ExactSampler with uniform weights. psi_T is trained
/// too (unless the potential's next-token form replaces it). With end tokens, pi_t holds the
/// particles still generating at t (mass p0 psi_t) and those finished earlier (mass p0 phi).
///
/// The loss reported is sum_t [log Zhat_t - E_pos log psi_t(s_{1:t})] over the trainable steps,
/// Zhat_t = (1/K) sum_k W^k_t the run's estimate of Z_t from the weights targeting pi_t: equal to
/// sum_t KL(sigma_t || pi_t) up to a constant (the sigma_t entropies and log Z) when the expectations
/// are exact; at psi* every Zhat_t is Z and the negative phase is (number of steps) x log Z.
///
/// Streaming: `sample` accumulates the negative phase (its loss and its gradient, into the
/// twist) step by step while the SIS run goes, from each step's weights report and the twist's
/// record of that step, so that no step's K x V proposal rows are kept: its memory does not grow
/// with the horizon. Zero the twist's gradient before `sample` (as train() does), not between
/// `sample` and `accumulate`. A batch that is not fresh (accumulated once already, or evaluated at
/// other parameters) is evaluated again by a forced run that keeps the rows (accumulate_negatives).
/// @tparam Exact no_exact_sampler (approximate positives) or an ExactSampler
template <class Exact = no_exact_sampler>
class ctl {
 public:
  /// @brief The objective's name.
  static constexpr const char* name = "CTL";
  static constexpr bool exact_positives = detail::exact_positive_source<Exact>::enabled;

  /// @brief A batch: negatives with the constants of their weights, positives with weights.
  struct batch {
    recorded_pass negatives;                               ///< the SIS run (proposal rows not kept when streamed)
    std::vector<std::vector<double>> log_constants;        ///< [t-1][k]: log wbar numerator minus the particle's log Z^pi_t where it proposed
    std::vector<token_sequence> positives;                 ///< exact samples (empty: the negatives' own sequences)
    std::vector<double> positive_weights;                  ///< normalised weights of the positives
    bool fresh = false;                                    ///< the negatives' records are the twist's current ones
    /// @brief The negative phase's loss when `sample` already accumulated it (and its gradient)
    /// during the run; empty otherwise (then a fresh batch needs the negatives' proposal rows).
    std::optional<double> streamed_negative_loss;
    double streamed_seconds = 0.0;                         ///< wall time of the streamed negative phase (inside the run's seconds.sampler)
  };

  /// @brief Approximate positives.
  ctl()
    requires(!exact_positives)
  = default;
  /// @brief Exact positives: `count` exact samples per update.
  /// @throw tsmc::invalid_argument if count is 0
  ctl(Exact& exact, std::size_t count)
    requires exact_positives
      : exact_(exact, count, "ctl::ctl") {}

  /// @brief Draws a batch: one recorded twisted SIS run (and exact samples), accumulating the
  /// negative phase's loss and gradient into the twist while the run goes (see the class
  /// documentation: zero the gradient before calling it).
  template <class Problem, RandomEngine Engine>
  batch sample(Problem& problem, Engine& rng) {
    batch b;
    negative_stream<std::remove_cvref_t<decltype(problem.twist())>> stream{this, &problem.twist(), &b.log_constants};
    b.negatives = problem.sample(proposal_type::twisted, false, rng, stream);
    b.streamed_negative_loss = stream.loss;
    b.streamed_seconds = stream.seconds;
    if constexpr (exact_positives) {
      exact_.draw(b.positives, b.positive_weights, rng);
    } else {
      b.positive_weights = detail::normalized(b.negatives.result.log_weights);
    }
    b.fresh = true;
    return b;
  }

  /// @brief Evaluates the loss on the batch and accumulates its gradient into the twist.
  template <class Problem, RandomEngine Engine>
  objective_step accumulate(Problem& problem, batch& b, Engine& rng) {
    auto& twist = problem.twist();
    const recorded_pass evaluated =
        b.fresh ? recorded_pass{} : problem.evaluate(std::span<const token_sequence>(b.negatives.result.sequences), true, rng);
    const recorded_pass& neg = b.fresh ? b.negatives : evaluated;
    const double log_count = std::log(static_cast<double>(b.negatives.result.sequences.size()));
    double loss = b.fresh && b.streamed_negative_loss ? *b.streamed_negative_loss
                                                      : accumulate_negatives(twist, neg, b.log_constants, log_count);
    b.fresh = false;
    b.streamed_negative_loss.reset();
    if constexpr (exact_positives) {
      const recorded_pass pos = problem.evaluate(std::span<const token_sequence>(b.positives), false, rng);
      loss += detail::accumulate_positive_phase(twist, pos, b.positive_weights, entries_);
    } else {
      loss += detail::accumulate_positive_phase(twist, neg, b.positive_weights, entries_);
    }
    return {loss, effective_sample_size(std::span<const double>(b.negatives.result.log_weights))};
  }

  /// @brief The negative phase alone: adds sum_t [log sum_k exp(c_k + [proposed] log Z^pi_t(k)) -
  /// log_count] to the loss (over the steps where some term is positive) and its gradient
  /// sum_k wbar_k q_t(. | k) into the twist, for a recorded pass (proposal rows kept) and constants
  /// log c [t-1][k]. With a batch's constants and log_count = log K each step's term is log Zhat_t
  /// (what accumulate reports). Exposed for exact checks: with c_k = p0(s^k) over every sequence of
  /// an enumerable problem and log_count = 0 it is sum_t log Z_t exactly.
  /// @throw tsmc::invalid_argument if log_constants lacks a row of K values for a trainable step,
  /// or (from the twist) if the pass kept no proposal rows
  template <class Twist>
  double accumulate_negatives(Twist& twist, const recorded_pass& pass,
                              const std::vector<std::vector<double>>& log_constants, double log_count = 0.0) {
    double loss = 0.0;
    for (std::size_t i = 0; i < pass.steps.size(); ++i) {
      const auto& s = pass.steps[i];
      if (!s.psi_trainable) continue;
      const std::size_t K = s.proposed.size();
      check_argument(i < log_constants.size() && log_constants[i].size() == K, "ctl::accumulate_negatives",
                     "log_constants", "must have one row of K values per recorded step", i);
      loss += negative_step(twist, s.step, log_constants[i], std::span<const std::uint8_t>(s.proposed),
                            std::span<const double>(s.log_normalizers), s.proposal.cols(), log_count,
                            [&](std::size_t k, auto&& row) { row = s.proposal.row(static_cast<Eigen::Index>(k)); });
    }
    return loss;
  }

 private:
  /// log c_k of one particle at one step: the log wbar numerator minus its log Z^pi_t where it
  /// proposed (so that c_k + log Z^pi_t is its log-weight targeting pi_t), its final log-weight
  /// where it finished earlier.
  static double log_constant(bool proposed, double log_normalizer, double log_target_weight) noexcept {
    if (!proposed) return log_target_weight;
    return log_normalizer > neg_inf ? log_target_weight - log_normalizer : neg_inf;
  }

  /// One step of the negative phase: log a_k = log c_k + [proposed] log Z^pi_t(k); adds
  /// sum_k (a_k / sum a) q_t(. | k) into the twist at `step` and returns log sum_k a_k - log_count
  /// (0 when every a_k is 0: the step adds nothing). write_row(k, row) writes q_t(. | k) into a row of
  /// the K x V coefficients (both paths write it with the same expression: bit-identical).
  template <class Twist, class WriteRow>
  double negative_step(Twist& twist, std::size_t step, std::span<const double> log_constants,
                       std::span<const std::uint8_t> proposed, std::span<const double> log_normalizers,
                       Eigen::Index vocab, double log_count, WriteRow&& write_row) {
    const std::size_t K = proposed.size();
    log_a_.resize(K);
    for (std::size_t k = 0; k < K; ++k) log_a_[k] = log_constants[k] + (proposed[k] ? log_normalizers[k] : 0.0);
    const double lse = logsumexp(std::span<const double>(log_a_));
    if (!(lse > neg_inf)) return 0.0;
    coefficients_ = log_prob_matrix::Zero(static_cast<Eigen::Index>(K), vocab);
    for (std::size_t k = 0; k < K; ++k)
      if (proposed[k] && log_a_[k] > neg_inf) {
        auto row = coefficients_.row(static_cast<Eigen::Index>(k));
        write_row(k, row);
        row *= std::exp(log_a_[k] - lse);
      }
    twist.accumulate_dense(step, coefficients_);
    return lse - log_count;
  }

  /// The observer of sample()'s run: at each step, the step's constants (kept in the batch) and,
  /// where the twist was evaluated and trainable, the negative phase of that step.
  template <class Twist>
  struct negative_stream {
    ctl* self;
    Twist* twist;
    std::vector<std::vector<double>>* log_constants;
    double loss = 0.0;
    double seconds = 0.0;

    void on_weights(const weights_report& r) {
      const auto start = std::chrono::steady_clock::now();
      const std::size_t K = r.proposed.size();
      std::vector<double>& c = log_constants->emplace_back(K);
      for (std::size_t k = 0; k < K; ++k)
        c[k] = log_constant(r.proposed[k] != 0, r.log_normalizers[k], r.log_target_weights[k]);
      if (r.log_psi != nullptr && !r.psi_is_phi)
        loss += self->negative_step(*twist, r.step, std::span<const double>(c), r.proposed, r.log_normalizers,
                                    r.log_p0.cols(), std::log(static_cast<double>(K)),
                                    [&](std::size_t k, auto&& row) { detail::write_proposal_row(r, k, row); });
      seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
  };

  detail::exact_positive_source<Exact> exact_;
  std::vector<double> log_a_;
  log_prob_matrix coefficients_;
  std::vector<sparse_coefficient> entries_;
};

/// @brief CTL with exact positives from `exact`.
template <class Exact>
ctl(Exact&, std::size_t) -> ctl<Exact>;

// ---------------------------------------------------------------------------------------------
// RL / soft Q-learning
// ---------------------------------------------------------------------------------------------

/// @brief Options of the RL objective.
struct rl_options {
  /// @brief The target that replaces a target of -inf (an indicator potential's log phi = -inf,
  /// or a next-step normaliser over candidates that all have psi = 0), which no squared error can
  /// reach. Only -inf is replaced: every finite target is kept as it is, so that training is
  /// unchanged when phi is multiplied by a constant (the twists shift by its log, the proposal
  /// and the KLs do not change).
  double min_log_target = -30.0;
};

/// @brief Soft Q-learning (Zhao et al. 2024, Table 1, "RL"): regresses log psi_t(s_{1:t}) onto
/// the constant target logsumexp_v[log p0(v | s_{1:t}) + log psi_{t+1}(s_{1:t}, v)] (the next
/// step's twisted normaliser) for t < T, and log phi(s) at the step where s finished (a target
/// of -inf is replaced by rl_options::min_log_target; finite targets are kept); squared error
/// averaged over each sequence's trainable steps (n_k, recorded_pass::trainable_steps) and over
/// the batch, samples from the twisted proposal with uniform weights.
/// Loss = (1/K) sum_k (1/n_k) sum_t (log psi_t - target)^2 / 2.
class rl {
 public:
  /// @brief The objective's name.
  static constexpr const char* name = "RL";

  /// @brief A batch: the sampled sequences and their targets.
  struct batch {
    recorded_pass samples;                         ///< the twisted SIS run
    std::vector<std::vector<double>> targets;      ///< [t-1][k], NaN where no regression
    bool fresh = false;                            ///< the samples' records are the twist's current ones
  };

  /// @brief With default options.
  rl() = default;
  /// @brief With options.
  /// @throw tsmc::invalid_argument if min_log_target is NaN or -inf
  explicit rl(rl_options options) : options_(options) {
    check_argument(std::isfinite(options.min_log_target), "rl::rl", "options.min_log_target", "must be finite",
                   options.min_log_target);
  }

  /// @brief Draws a batch: one recorded twisted SIS run and its targets.
  template <class Problem, RandomEngine Engine>
  batch sample(Problem& problem, Engine& rng) {
    batch b;
    b.samples = problem.sample(proposal_type::twisted, false, rng);
    const auto& steps = b.samples.steps;
    b.targets.assign(steps.size(), {});
    for (std::size_t i = 0; i < steps.size(); ++i) {
      const auto& s = steps[i];
      auto& target = b.targets[i];
      target.assign(s.proposed.size(), std::numeric_limits<double>::quiet_NaN());
      if (!s.psi_trainable) continue;
      for (std::size_t k = 0; k < target.size(); ++k) {
        if (!s.proposed[k]) continue;
        double value;
        if (s.finished[k])
          value = s.log_phi[k];
        else if (i + 1 < steps.size())
          value = steps[i + 1].log_normalizers[k];
        else
          continue;  // an observer stopped the run: no target
        target[k] = value > neg_inf ? value : options_.min_log_target;
      }
    }
    b.fresh = true;
    return b;
  }

  /// @brief Evaluates the loss on the batch and accumulates its gradient into the twist.
  template <class Problem, RandomEngine Engine>
  objective_step accumulate(Problem& problem, batch& b, Engine& rng) {
    auto& twist = problem.twist();
    const recorded_pass evaluated =
        b.fresh ? recorded_pass{} : problem.evaluate(std::span<const token_sequence>(b.samples.result.sequences), false, rng);
    const recorded_pass& pass = b.fresh ? b.samples : evaluated;
    b.fresh = false;
    const std::size_t K = b.samples.result.sequences.size();
    std::vector<double> scale(K, 0.0);
    for (std::size_t k = 0; k < K; ++k) {
      const std::size_t n = pass.trainable_steps(k);
      scale[k] = n == 0 ? 0.0 : 1.0 / (static_cast<double>(K) * static_cast<double>(n));
    }
    double loss = 0.0;
    for (std::size_t i = 0; i < pass.steps.size(); ++i) {
      const auto& s = pass.steps[i];
      if (!s.psi_trainable) continue;
      entries_.clear();
      for (std::size_t k = 0; k < K; ++k) {
        if (!s.proposed[k] || std::isnan(b.targets[i][k])) continue;
        const double residual = s.log_psi_chosen[k] - b.targets[i][k];
        loss += 0.5 * scale[k] * residual * residual;
        entries_.push_back({k, s.tokens[k], scale[k] * residual});
      }
      twist.accumulate_sparse(s.step, entries_);
    }
    return {loss, effective_sample_size(std::span<const double>(b.samples.result.log_weights))};
  }

 private:
  rl_options options_{};
  std::vector<sparse_coefficient> entries_;
};

// ---------------------------------------------------------------------------------------------
// SIXO
// ---------------------------------------------------------------------------------------------

/// @brief Where SIXO's approximate positives come from (without an exact sampler).
enum class sixo_positives {
  /// The twisted proposal's SIS samples with their final (phi-based) self-normalised weights, as
  /// the paper's code draws them (and as CTL and DPG take theirs): the default.
  twisted,
  /// The negatives themselves (samples from p0) weighted by phi: no second run, but no positive at
  /// all when phi is 0 on the whole batch (a rare indicator target).
  base,
};

/// @brief Options of the SIXO objective.
struct sixo_options {
  sixo_positives positives = sixo_positives::twisted;  ///< where approximate positives come from
};

/// @brief SIXO (Lawson et al. 2022; Zhao et al. 2024, Table 1): log psi_t is the log-odds of a
/// classifier of positives against samples from p0, per t:
/// loss = -(1/T) [sum_j w_j sum_t log sigmoid(log psi_t(s^j)) + (1/K) sum_k sum_t log(1 - sigmoid(log psi_t(s'^k)))],
/// the sums over each sequence's trainable steps, T the horizon (the same for every sequence, as in
/// the paper's code: a sequence's own length would weight short sequences up and move the optimum
/// away from psi* when sequences end at an end token).
/// Negatives s' are one SIS run from p0. Positives are, by default, one SIS run of the twisted
/// proposal with its normalised final weights; or (sixo_options) the negatives weighted by phi
/// (no positive term when phi is 0 on the whole batch); or exact samples with uniform weights.
/// @tparam Exact no_exact_sampler or an ExactSampler
template <class Exact = no_exact_sampler>
class sixo {
 public:
  /// @brief The objective's name.
  static constexpr const char* name = "SIXO";
  static constexpr bool exact_positives = detail::exact_positive_source<Exact>::enabled;

  /// @brief A batch: samples from p0 and positives.
  struct batch {
    std::vector<token_sequence> negatives;     ///< samples from p0
    std::vector<token_sequence> positives;     ///< twisted SIS samples, exact samples, or the negatives
    std::vector<double> positive_weights;      ///< normalised
    double ess = 0.0;                          ///< ESS of the positives' weights (K for exact samples)
  };

  /// @brief Approximate positives from the twisted proposal.
  sixo()
    requires(!exact_positives)
  = default;
  /// @brief Approximate positives from the source the options name.
  explicit sixo(sixo_options options)
    requires(!exact_positives)
      : options_(options) {}
  /// @brief Exact positives: `count` per update.
  /// @throw tsmc::invalid_argument if count is 0
  sixo(Exact& exact, std::size_t count)
    requires exact_positives
      : exact_(exact, count, "sixo::sixo") {}

  /// @brief Draws a batch: one SIS run from p0 for the negatives, then the positives (one twisted
  /// SIS run, or exact samples).
  template <class Problem, RandomEngine Engine>
  batch sample(Problem& problem, Engine& rng) {
    batch b;
    recorded_pass p0 = problem.sample(proposal_type::base, false, rng);
    b.negatives = std::move(p0.result.sequences);
    if constexpr (exact_positives) {
      exact_.draw(b.positives, b.positive_weights, rng);
      b.ess = static_cast<double>(b.positives.size());
    } else if (options_.positives == sixo_positives::twisted) {
      recorded_pass twisted = problem.sample(proposal_type::twisted, false, rng);
      b.positives = std::move(twisted.result.sequences);
      b.positive_weights = detail::normalized(twisted.result.log_weights);
      b.ess = effective_sample_size(std::span<const double>(twisted.result.log_weights));
    } else {
      b.positives = b.negatives;
      b.positive_weights = detail::normalized(p0.result.log_weights);
      b.ess = effective_sample_size(std::span<const double>(p0.result.log_weights));
    }
    return b;
  }

  /// @brief Evaluates the loss on the batch and accumulates its gradient into the twist.
  template <class Problem, RandomEngine Engine>
  objective_step accumulate(Problem& problem, batch& b, Engine& rng) {
    auto& twist = problem.twist();
    const std::size_t K = b.negatives.size();
    const auto horizon = static_cast<double>(problem.options().horizon);
    const recorded_pass neg = problem.evaluate(std::span<const token_sequence>(b.negatives), false, rng);
    const std::vector<double> negative_weights(K, 1.0 / static_cast<double>(K));
    double loss = phase(twist, neg, negative_weights, false, horizon);
    if (!exact_positives && options_.positives == sixo_positives::base) {
      loss += phase(twist, neg, b.positive_weights, true, horizon);
    } else {
      const recorded_pass pos = problem.evaluate(std::span<const token_sequence>(b.positives), false, rng);
      loss += phase(twist, pos, b.positive_weights, true, horizon);
    }
    return {loss, b.ess};
  }

 private:
  /// -(1/T) sum_k w_k sum_t log sigmoid(+-log psi) and its gradient.
  template <class Twist>
  double phase(Twist& twist, const recorded_pass& pass, std::span<const double> weights, bool positive,
               double horizon) {
    double loss = 0.0;
    const double sign = positive ? 1.0 : -1.0;
    for (const auto& s : pass.steps) {
      if (!s.psi_trainable) continue;
      entries_.clear();
      for (std::size_t k = 0; k < s.proposed.size(); ++k) {
        if (!s.proposed[k] || weights[k] == 0.0) continue;
        const double w = weights[k] / horizon;
        const double f = s.log_psi_chosen[k];
        loss -= w * log_sigmoid(sign * f);
        // d/df -w log sigmoid(sign f) = -w sign sigmoid(-sign f)
        entries_.push_back({k, s.tokens[k], -w * sign * sigmoid(-sign * f)});
      }
      twist.accumulate_sparse(s.step, entries_);
    }
    return loss;
  }

  sixo_options options_{};
  detail::exact_positive_source<Exact> exact_;
  std::vector<sparse_coefficient> entries_;
};

/// @brief SIXO with exact positives from `exact`.
template <class Exact>
sixo(Exact&, std::size_t) -> sixo<Exact>;

// ---------------------------------------------------------------------------------------------
// FUDGE
// ---------------------------------------------------------------------------------------------

/// @brief FUDGE (Yang and Klein 2021; Zhao et al. 2024, Table 1): psi_t = sigmoid(g_t) is a
/// classifier of the label phi(s) (a probability in [0, 1]) from prefixes of samples s ~ p0:
/// loss = (1/(K T)) sum_k sum_t BCE(sigmoid(g_t(s^k_{1:t})), phi(s^k)), the sum over each
/// sequence's trainable steps and T the horizon (the same for every sequence, as in the paper's
/// code: dividing by a sequence's own length would move the optimum away from psi*_t = E[phi | s_{1:t}]
/// when sequences end at an end token). The twist must be a sigmoid_twist (it trains the logit g).
class fudge {
 public:
  /// @brief The objective's name.
  static constexpr const char* name = "FUDGE";

  /// @brief A batch: samples from p0 and their labels.
  struct batch {
    std::vector<token_sequence> samples;  ///< from p0
    std::vector<double> labels;           ///< phi(s) in [0, 1]
    double ess = 0.0;                     ///< ESS of the phi weights of the samples
  };

  /// @brief Draws a batch: one SIS run from p0, labelled by phi.
  /// @throw tsmc::invalid_argument if phi of a sample exceeds 1
  template <class Problem, RandomEngine Engine>
  batch sample(Problem& problem, Engine& rng) {
    batch b;
    recorded_pass p0 = problem.sample(proposal_type::base, false, rng);
    b.samples = std::move(p0.result.sequences);
    b.ess = effective_sample_size(std::span<const double>(p0.result.log_weights));
    b.labels.assign(b.samples.size(), 0.0);
    for (const auto& s : p0.steps)
      for (std::size_t k = 0; k < s.finished.size(); ++k)
        if (s.finished[k]) {
          const double y = std::exp(s.log_phi[k]);
          if (!(y <= 1.0 + 1e-12))
            throw_invalid_argument("fudge::sample", "phi of sample " + std::to_string(k),
                                   "must be a probability in [0, 1] (FUDGE's label)", y);
          b.labels[k] = std::min(y, 1.0);
        }
    return b;
  }

  /// @brief Evaluates the loss on the batch and accumulates its gradient into the twist.
  template <class Problem, RandomEngine Engine>
  objective_step accumulate(Problem& problem, batch& b, Engine& rng) {
    auto& twist = problem.twist();
    static_assert(requires(std::size_t t, std::span<const sparse_coefficient> e) {
      twist.accumulate_logit_sparse(t, e);
      twist.recorded_logit(t, t, token{0});
    }, "tsmc::fudge: the twist must be a tsmc::sigmoid_twist (FUDGE trains psi = sigmoid(g))");
    const std::size_t K = b.samples.size();
    const auto horizon = static_cast<double>(problem.options().horizon);
    const recorded_pass pass = problem.evaluate(std::span<const token_sequence>(b.samples), false, rng);
    double loss = 0.0;
    for (const auto& s : pass.steps) {
      if (!s.psi_trainable) continue;
      entries_.clear();
      for (std::size_t k = 0; k < K; ++k) {
        if (!s.proposed[k]) continue;
        const double w = 1.0 / (static_cast<double>(K) * horizon);
        const double g = twist.recorded_logit(s.step, k, s.tokens[k]);
        const double y = b.labels[k];
        loss -= w * (y * log_sigmoid(g) + (1.0 - y) * log_sigmoid(-g));
        entries_.push_back({k, s.tokens[k], w * (sigmoid(g) - y)});
      }
      twist.accumulate_logit_sparse(s.step, entries_);
    }
    return {loss, b.ess};
  }

 private:
  std::vector<sparse_coefficient> entries_;
};

// ---------------------------------------------------------------------------------------------
// DPG
// ---------------------------------------------------------------------------------------------

/// @brief Distributional policy gradient (Khalifa et al. 2021; Zhao et al. 2024, Table 1): the
/// head is trained as a proposal q = softmax(log p0 + log psi), minimising KL(sigma || q) with
/// the self-normalised gradient -sum_k W_k sum_t [grad log psi_t(s^k_{1:t}) - sum_v q_t(v | s^k_{<t})
/// grad log psi_t(s^k_{<t}, v)], W the twisted SIS run's final weights (or exact samples with
/// uniform weights). The loss reported is the cross-entropy -sum_k W_k log q(s^k).
/// @tparam Exact no_exact_sampler or an ExactSampler
template <class Exact = no_exact_sampler>
class dpg {
 public:
  /// @brief The objective's name.
  static constexpr const char* name = "DPG";
  static constexpr bool exact_positives = detail::exact_positive_source<Exact>::enabled;

  /// @brief A batch: sequences and their self-normalised weights.
  struct batch {
    recorded_pass samples;               ///< the twisted SIS run (proposal rows kept)
    std::vector<token_sequence> exact;   ///< exact samples (empty: the SIS run's)
    std::vector<double> weights;         ///< normalised
    bool fresh = false;                  ///< the samples' records are the twist's current ones
  };

  /// @brief SNIS weights from a twisted SIS run.
  dpg()
    requires(!exact_positives)
  = default;
  /// @brief Exact samples: `count` per update.
  /// @throw tsmc::invalid_argument if count is 0
  dpg(Exact& exact, std::size_t count)
    requires exact_positives
      : exact_(exact, count, "dpg::dpg") {}

  /// @brief Draws a batch.
  template <class Problem, RandomEngine Engine>
  batch sample(Problem& problem, Engine& rng) {
    batch b;
    if constexpr (exact_positives) {
      exact_.draw(b.exact, b.weights, rng);
    } else {
      b.samples = problem.sample(proposal_type::twisted, true, rng);
      b.weights = detail::normalized(b.samples.result.log_weights);
      b.fresh = true;
    }
    return b;
  }

  /// @brief Evaluates the loss on the batch and accumulates its gradient into the twist.
  template <class Problem, RandomEngine Engine>
  objective_step accumulate(Problem& problem, batch& b, Engine& rng) {
    auto& twist = problem.twist();
    const std::span<const token_sequence> sequences(exact_positives ? b.exact : b.samples.result.sequences);
    const recorded_pass evaluated = b.fresh ? recorded_pass{} : problem.evaluate(sequences, true, rng);
    const recorded_pass& pass = b.fresh ? b.samples : evaluated;
    b.fresh = false;
    double loss = 0.0;
    for (std::size_t k = 0; k < b.weights.size(); ++k)
      if (b.weights[k] > 0.0) loss -= b.weights[k] * pass.result.log_proposal[k];
    detail::accumulate_positive_phase(twist, pass, b.weights, entries_);
    for (const auto& s : pass.steps) {
      if (!s.psi_trainable) continue;
      coefficients_ = log_prob_matrix::Zero(static_cast<Eigen::Index>(s.proposed.size()), s.proposal.cols());
      for (std::size_t k = 0; k < s.proposed.size(); ++k)
        if (s.proposed[k] && b.weights[k] > 0.0)
          coefficients_.row(static_cast<Eigen::Index>(k)) = b.weights[k] * s.proposal.row(static_cast<Eigen::Index>(k));
      twist.accumulate_dense(s.step, coefficients_);
    }
    const double ess = exact_positives ? static_cast<double>(b.weights.size())
                                       : effective_sample_size(std::span<const double>(b.samples.result.log_weights));
    return {loss, ess};
  }

 private:
  detail::exact_positive_source<Exact> exact_;
  log_prob_matrix coefficients_;
  std::vector<sparse_coefficient> entries_;
};

/// @brief DPG with exact samples from `exact`.
template <class Exact>
dpg(Exact&, std::size_t) -> dpg<Exact>;

}  // namespace tsmc
