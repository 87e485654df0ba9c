#pragma once
/// @file
/// @brief twisted_smc: the generic (twisted) SMC sampler over a LanguageModel, a TwistFunction
/// and a Potential, with any resampling scheme and trigger; plain and conditional runs.

#include <tsmc/core/concepts.hpp>
#include <tsmc/core/error.hpp>
#include <tsmc/core/log_math.hpp>
#include <tsmc/core/parallel.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/core/statistics.hpp>
#include <tsmc/core/types.hpp>
#include <tsmc/resampling/resampler.hpp>
#include <tsmc/resampling/schemes.hpp>
#include <tsmc/resampling/triggers.hpp>
#include <tsmc/smc/options.hpp>
#include <tsmc/smc/proposal_step.hpp>
#include <tsmc/smc/result.hpp>

#include <Eigen/Core>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

namespace tsmc {

/// @brief What observers' on_step hook receives after each step (reweighting and resampling done).
struct step_report {
  std::size_t step = 0;         ///< t, 1-based
  std::size_t horizon = 0;      ///< T
  double ess = 0.0;             ///< ESS after reweighting, before resampling
  bool resampled = false;       ///< whether this step resampled
  double log_z = 0.0;           ///< log Zhat accumulated so far (resampling epochs closed so far)
  std::size_t active = 0;       ///< particles still generating after this step
};

/// @brief What observers' on_weights hook receives at each step, after the weights and the
/// potential, before resampling: the whole step, read by twist learners (spans and matrices are
/// views of the sampler's buffers, valid during the call).
///
/// Rows and entries of particles with proposed[k] == 0 (finished at an earlier step) are stale.
struct weights_report {
  std::size_t step = 0;                             ///< t, 1-based
  std::size_t horizon = 0;                          ///< T
  bool twisted = false;                             ///< the proposal was q_t proportional to p0 psi_t (Eq. 14)
  const log_prob_matrix& log_p0;                    ///< K x V log p0(. | s_{1:t-1})
  const log_prob_matrix* log_psi = nullptr;         ///< K x V log psi_t(s_{1:t-1}, .), or nullptr if not evaluated
  bool psi_is_phi = false;                          ///< log_psi holds the potential's next-token log phi (t = T)
  std::span<const std::uint8_t> proposed;           ///< 1 where particle k drew a token at this step
  std::span<const token> tokens;                    ///< s_t of each particle
  std::span<const double> log_normalizers;          ///< log sum_v of the proposal's unnormalised row (log Z^pi_t when twisted)
  /// @brief Log-weights targeting pi_t (Section 2): log W_{t-1} + the incremental weight as if no
  /// particle finished now (Z^pi_t / psi_{t-1} when twisted, no phi / psi_T correction); for
  /// particles finished earlier, their final log-weight (their target is p0 phi).
  std::span<const double> log_target_weights;
  std::span<const double> log_weights;              ///< log W after this step's weights and potential
  std::span<const std::uint8_t> finished;           ///< 1 where particle k finished at this step
  std::span<const double> log_phi;                  ///< log phi(s_{1:t}) where finished[k] == 1
  std::span<const token_sequence> prefixes;         ///< s_{1:t} (s_{1:t_end} for finished particles)
};

namespace detail {

/// Seconds since `start`, added to `bucket`.
class stopwatch {
 public:
  explicit stopwatch(double& bucket) : bucket_(bucket), start_(std::chrono::steady_clock::now()) {}
  stopwatch(const stopwatch&) = delete;
  stopwatch& operator=(const stopwatch&) = delete;
  ~stopwatch() {
    bucket_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  double& bucket_;
  std::chrono::steady_clock::time_point start_;
};

/// Placeholder for "no user proposal".
struct no_proposal {};

template <class W>
inline constexpr bool is_unit_twist = requires { requires W::is_unit_twist; };

/// Calls observer.on_step(report) if it exists; true means "stop".
template <class Observer>
bool notify_step(Observer& observer, const step_report& report) {
  if constexpr (requires { { observer.on_step(report) } -> std::convertible_to<bool>; }) {
    return static_cast<bool>(observer.on_step(report));
  } else if constexpr (requires { observer.on_step(report); }) {
    observer.on_step(report);
  }
  return false;
}

template <class Observer>
void notify_resample(Observer& observer, std::size_t step, std::span<const particle_index> ancestors) {
  if constexpr (requires { observer.on_resample(step, ancestors); }) observer.on_resample(step, ancestors);
}

template <class Observer>
void notify_finish(Observer& observer, const smc_result& result) {
  if constexpr (requires { observer.on_finish(result); }) observer.on_finish(result);
}

/// Copies slot ancestors[k] into slot k where they differ (safe in place: slot-stable ancestors
/// never copy from a slot that is itself overwritten).
template <class Vector>
void reorder_in_place(Vector& values, std::span<const particle_index> ancestors) {
  for (std::size_t k = 0; k < ancestors.size(); ++k)
    if (ancestors[k] != k) values[k] = values[ancestors[k]];
}

/// How a run treats its slots: all free, slot 0 forced along a reference (conditional SMC), or
/// every slot forced along given sequences (no resampling).
enum class run_mode { plain, conditional, forced };

/// The particles' state during a run: what the five stages of a step read and write.
struct particle_state {
  std::vector<token_sequence> prefixes;   // s_{1:t} of each particle (prompt excluded)
  std::vector<std::uint8_t> active;       // still generating
  std::vector<std::uint8_t> proposed;     // drew a token at the current step
  std::vector<std::uint8_t> finishing;    // finished at the current step, log phi still to add
  std::vector<std::uint8_t> finished_now; // finished at the current step
  std::vector<double> log_phi;            // log phi of particles that finished at the current step
  std::vector<double> log_w;              // log W since the last resampling
  std::vector<double> log_w_target;       // log W targeting pi_t (see weights_report)
  std::vector<double> log_psi_prev;       // log psi_{t-1} of the particle's prefix
  std::vector<double> log_q;              // log q(s_{1:t})
  std::vector<token> tokens;              // s_t
  std::vector<double> step_lse;           // the proposal's log normaliser at step t
  std::vector<particle_index> ancestors;  // the last resampling's ancestors
  std::size_t active_count = 0;

  /// K particles at the prompt, with room for T tokens each (reuses the buffers).
  void reset(std::size_t particles, std::size_t horizon) {
    prefixes.resize(particles);
    for (auto& p : prefixes) {
      p.clear();
      p.reserve(horizon);
    }
    active.assign(particles, 1);
    proposed.assign(particles, 0);
    finishing.assign(particles, 0);
    finished_now.assign(particles, 0);
    log_phi.assign(particles, 0.0);
    log_w.assign(particles, 0.0);
    log_w_target.assign(particles, 0.0);
    log_psi_prev.assign(particles, 0.0);
    log_q.assign(particles, 0.0);
    tokens.assign(particles, 0);
    step_lse.assign(particles, 0.0);
    ancestors.assign(particles, 0);
    active_count = particles;
  }

  /// Slot k takes the state of slot ancestors[k] (slot-stable: in place).
  void reorder(std::span<const particle_index> anc) {
    reorder_in_place(prefixes, anc);
    reorder_in_place(active, anc);
    reorder_in_place(log_psi_prev, anc);
    reorder_in_place(log_q, anc);
    reorder_in_place(tokens, anc);
    active_count = 0;
    for (auto a : active) active_count += a;
  }
};

/// Whether an observer has an on_weights(const weights_report&) hook.
template <class Observer>
inline constexpr bool observes_weights =
    requires(std::remove_cvref_t<Observer>& o, const weights_report& r) { o.on_weights(r); };

template <class Observer>
void notify_weights(Observer& observer, const weights_report& report) {
  if constexpr (observes_weights<Observer>) observer.on_weights(report);
}

}  // namespace detail

/// @brief Twisted Sequential Monte Carlo (Zhao et al. 2024, Sections 3-5) over a batched,
/// stateful language model.
///
/// Each step t = 1..T runs five named stages over the particles' state (detail::particle_state):
/// 1. propose: the model writes L = log p0(. | prefix) (K x V), the twist writes
///    Psi = log psi_t(prefix, .) (K x V), and one fused pass per particle draws s_t and its
///    proposal normaliser (forced slots take their given token). A model with the optional
///    logit_rows hook (EmitsLogitRows) hands over its float logits l instead, L = l - its log
///    normaliser: the base proposal then normalises and draws in one exp pass, the twisted one
///    reads the same L + Psi without a K x V double matrix (runs with a user proposal keep
///    log_probs);
/// 2. weigh: the incremental weight of every particle that drew a token:
///    * twisted proposal (Eq. 14-15): q_t proportional to p0 psi_t, log w_t = logsumexp(L + Psi) -
///      log psi_{t-1}; at the last step psi_T is the potential's next-token form when it has one
///      (then psi_T = phi exactly), otherwise the twist's psi_T with the correction phi / psi_T;
///    * base proposal: q = p0, log w_t = log psi_t - log psi_{t-1}, phi replacing psi at the end;
///    * a user proposal model (run_with_proposal): Eq. 10;
/// 3. score the finished: particles that emitted the end token or reached T take log phi (with
///    the corrections above) and keep their weight unchanged afterwards; their rows are skipped;
/// 4. resample: when the trigger fires (never after the last step), log Zhat gains
///    logsumexp(log W) - log K, the scheme draws slot-stable ancestors, the model, the twist and
///    the particles' state are reordered, and the log-weights reset to 0;
/// 5. extend: the model (and a stateful twist) append the drawn tokens.
/// After the last step log Zhat gains logsumexp(log W) - log K of the open epoch (footnote 1), so
/// log Zhat is right under adaptive resampling. E[Zhat] = Z. A run ends early when no particle is
/// still generating.
/// The model's rows are taken as exact: p0(v) = exp(L(k, v)) with no renormalisation, so for a
/// model whose rows sum to 1 only up to rounding, log Zhat estimates Z for exactly those numbers
/// (smc_options::check_normalization turns on a check of each row's sum; the first row of every
/// run is checked unless smc_options::check_first_row is false).
///
/// The plain run, the conditional run (slot 0 forced along a reference) and the forced run
/// (every slot forced along given sequences: the twist and the weights along sequences that a
/// learner chose) share these stages. Observers see each step through on_step (the summary),
/// on_weights (the whole step: L, Psi, the tokens, the weights; what twist learners read),
/// on_resample and on_finish.
///
/// Randomness: the token of particle k at step t is drawn with one uniform from the stream
/// (seed, t, k), the seed drawn once from the caller's engine; resampling draws from the caller's
/// engine. Results do not depend on the number of OpenMP threads.
///
/// @tparam Model a LanguageModel
/// @tparam Twist a TwistFunction<Twist, Model> (no_twist for psi = 1)
/// @tparam Pot a Potential
/// @tparam Scheme a ResamplingScheme
/// @tparam Trigger a ResamplingTrigger
template <class Model, class Twist, class Pot, class Scheme = multinomial, class Trigger = always_trigger>
class twisted_smc {
  static_assert(LanguageModel<Model>,
                "tsmc::twisted_smc: Model must model tsmc::LanguageModel: vocab_size(), start(prompt, K), "
                "log_probs(out), append(tokens), reorder(ancestors); see README, 'Plugging in your model'");
  static_assert(TwistFunction<Twist, Model>,
                "tsmc::twisted_smc: Twist must model tsmc::TwistFunction: log_twist(const step_context<Model>&, "
                "log_prob_ref out) writing K x V log psi; use tsmc::no_twist for psi = 1");
  static_assert(Potential<Pot>,
                "tsmc::twisted_smc: Pot must model tsmc::Potential: log_potential(span<const token_sequence>, "
                "span<double> out) writing log phi of finished sequences");
  // Optional hooks that are declared but not callable as the sampler calls them (core/concepts.hpp).
  static_assert(detail::twist_start_ok<Twist>,
                "tsmc::twisted_smc: the twist has a member named start that the sampler cannot call; write "
                "void start(std::span<const tsmc::token> prompt, std::size_t particles)");
  static_assert(detail::twist_append_ok<Twist>,
                "tsmc::twisted_smc: the twist has a member named append that the sampler cannot call; write "
                "void append(std::span<const tsmc::token> tokens)");
  static_assert(detail::twist_reorder_ok<Twist>,
                "tsmc::twisted_smc: the twist has a member named reorder that the sampler cannot call; write "
                "void reorder(std::span<const tsmc::particle_index> ancestors)");
  static_assert(detail::twist_state_complete<Twist>,
                "tsmc::twisted_smc: a twist with per-particle state must have all three of start(prompt, "
                "particles), append(tokens) and reorder(ancestors) (start alone, to reset per-run state, is fine)");
  static_assert(detail::twist_vocab_size_ok<Twist>,
                "tsmc::twisted_smc: the twist has a member named vocab_size that the sampler cannot call; write "
                "std::size_t vocab_size() const");
  static_assert(detail::potential_next_ok<Pot, Model>,
                "tsmc::twisted_smc: the potential has a member named log_potential_next that the sampler cannot "
                "call; write void log_potential_next(const tsmc::step_context<Model>& ctx, tsmc::log_prob_ref out) "
                "(out is a K x V tsmc::log_prob_ref, not a log_prob_matrix&), or a template over the Model");
  static_assert(detail::model_logit_rows_ok<Model>,
                "tsmc::twisted_smc: the model has a member named logit_rows that the sampler cannot call; write "
                "std::span<const float* const> logit_rows(std::span<const std::uint8_t> active) (see "
                "tsmc::EmitsLogitRows)");
  static_assert(detail::model_max_length_ok<Model>,
                "tsmc::twisted_smc: the model has a member named max_length that the sampler cannot call; write "
                "std::size_t max_length() const");
  static_assert(ResamplingScheme<Scheme>, "tsmc::twisted_smc: Scheme must model tsmc::ResamplingScheme");
  static_assert(ResamplingTrigger<Trigger>, "tsmc::twisted_smc: Trigger must model tsmc::ResamplingTrigger");

 public:
  /// @brief The model type.
  using model_type = Model;
  /// @brief The twist type.
  using twist_type = Twist;
  /// @brief The potential type.
  using potential_type = Pot;

  /// @brief A sampler over references to the user's model, twist and potential (not owned: the
  /// model is stateful and usually large; they must outlive the sampler).
  /// @throw tsmc::invalid_argument on invalid options or a twist whose vocabulary differs
  twisted_smc(Model& model, Twist& twist, Pot& potential, smc_options options, Scheme scheme = {},
              Trigger trigger = {})
      : model_(model), twist_(twist), potential_(potential), options_(options), resampler_(std::move(scheme)),
        trigger_(trigger) {
    check_configuration("twisted_smc");
  }

  /// @brief The options.
  [[nodiscard]] const smc_options& options() const noexcept { return options_; }
  /// @brief The model the sampler runs (not owned).
  [[nodiscard]] Model& model() const noexcept { return model_; }
  /// @brief The twist the sampler runs with (not owned).
  [[nodiscard]] Twist& twist() const noexcept { return twist_; }
  /// @brief The potential the sampler runs with (not owned).
  [[nodiscard]] Pot& potential() const noexcept { return potential_; }

  /// @brief One SMC run from the prompt (SIS when the trigger never fires).
  /// @param prompt s_0
  /// @param rng the caller's engine (one seed for the proposal streams, then resampling draws)
  /// @param observers optional hooks: on_step(const step_report&) (return true to stop),
  ///        on_weights(const weights_report&), on_resample(step, ancestors),
  ///        on_finish(const smc_result&)
  /// @throw tsmc::invalid_argument on bad input; tsmc::runtime_error on NaN/+inf from a model, twist or potential
  template <RandomEngine Engine, class... Observers>
  smc_result run(std::span<const token> prompt, Engine& rng, Observers&&... observers) {
    detail::no_proposal none;
    return run_impl<detail::run_mode::plain>("twisted_smc::run", prompt, {}, none, rng, observers...);
  }

  /// @brief Conditional SMC: the reference (a finished sequence, ideally an exact sample from
  /// sigma) is kept in slot 0; its tokens are forced, its proposal probability still counted, its
  /// ancestor is always itself, and the other K - 1 slots draw ancestors from all K weights,
  /// multinomially whatever the scheme (the conditional SMC of Andrieu, Doucet and Holenstein
  /// 2010; the trigger still decides when). E[log Zhat] of this run is an upper bound on log Z
  /// (Section 5, Prop. 5.1); with the trigger `never` it is the IWAE upper bound.
  /// @throw tsmc::invalid_argument for a reference longer than the horizon, shorter without ending
  ///        in the end token, containing the end token before its end, or with tokens outside [0, V)
  template <RandomEngine Engine, class... Observers>
  smc_result run_conditional(std::span<const token> prompt, std::span<const token> reference, Engine& rng,
                             Observers&&... observers) {
    detail::no_proposal none;
    forced_.assign(1, reference);
    return run_impl<detail::run_mode::conditional>("twisted_smc::run_conditional", prompt, forced_, none, rng,
                                                   observers...);
  }

  /// @brief A forced run: one particle per given sequence, each slot taking its sequence's tokens
  /// (teacher forcing), with no resampling. The model, the twist and the potential are evaluated
  /// exactly as in a run of the configured proposal, so the result holds each sequence's proposal
  /// log-density log q(s) (log_proposal), its final log-weight log p0(s) phi(s) / q(s)
  /// (log_weights) and log Zhat = log mean of those weights; observers see every step. Twist
  /// learners use it to evaluate a twist along exact samples or samples from p0. The options'
  /// particle count is ignored (K = sequences.size()); the trigger is not consulted.
  /// @param prompt s_0
  /// @param sequences K finished sequences (each as a reference of run_conditional)
  /// @param rng the caller's engine (one seed is drawn, for the unused proposal streams)
  /// @throw tsmc::invalid_argument for no sequences or a sequence that is not a finished sequence
  template <RandomEngine Engine, class... Observers>
  smc_result run_forced(std::span<const token> prompt, std::span<const token_sequence> sequences, Engine& rng,
                        Observers&&... observers) {
    detail::no_proposal none;
    check_positive("twisted_smc::run_forced", "sequences.size()", sequences.size());
    forced_.assign(sequences.begin(), sequences.end());
    return run_impl<detail::run_mode::forced>("twisted_smc::run_forced", prompt, forced_, none, rng, observers...);
  }

  /// @brief A run with a user proposal model q (Eq. 10): w_t = p0 psi_t / (q psi_{t-1}).
  template <class Proposal, RandomEngine Engine, class... Observers>
    requires ProposalModel<Proposal, Model>
  smc_result run_with_proposal(Proposal& proposal, std::span<const token> prompt, Engine& rng,
                               Observers&&... observers) {
    return run_impl<detail::run_mode::plain>("twisted_smc::run_with_proposal", prompt, {}, proposal, rng,
                                             observers...);
  }

  /// @brief Conditional SMC with a user proposal model q.
  template <class Proposal, RandomEngine Engine, class... Observers>
    requires ProposalModel<Proposal, Model>
  smc_result run_conditional_with_proposal(Proposal& proposal, std::span<const token> prompt,
                                           std::span<const token> reference, Engine& rng, Observers&&... observers) {
    forced_.assign(1, reference);
    return run_impl<detail::run_mode::conditional>("twisted_smc::run_conditional_with_proposal", prompt, forced_,
                                                   proposal, rng, observers...);
  }

 private:
  static constexpr bool unit_twist = detail::is_unit_twist<Twist>;
  static constexpr bool potential_scores_next = NextTokenPotential<Pot, Model>;

  /// What stays fixed during one run.
  struct run_frame {
    std::string_view function;
    std::span<const token> prompt;
    std::size_t particles = 0;  // K
    std::size_t horizon = 0;    // T
    std::size_t vocab = 0;      // V
    bool twisted = false;       // q proportional to p0 psi_t
    double log_k = 0.0;
    token pad_token = 0;
    std::uint64_t seed = 0;
    std::span<const std::span<const token>> forced;  // slot k < forced.size() takes forced[k]
    bool report_rows = false;   // an observer reads log p0 (on_weights): write it even from logits
  };

  /// What one step's propose stage decided about the twist's matrix.
  struct step_psi {
    bool have = false;    // log_psi_ holds this step's log psi_t (or log phi)
    bool is_phi = false;  // it is the potential's next-token log phi (psi_T = phi)
  };

  void check_configuration(std::string_view function) const {
    const std::size_t vocab = model_.vocab_size();
    check_positive(function, "model.vocab_size()", vocab);
    validate(options_, vocab, function);
    if constexpr (requires { { twist_.vocab_size() } -> std::convertible_to<std::size_t>; }) {
      check_size(function, "twist.vocab_size()", twist_.vocab_size(), "model.vocab_size()", vocab);
    }
  }

  void check_prompt(std::string_view function, std::span<const token> prompt) const {
    const std::size_t vocab = model_.vocab_size();
    check_tokens(prompt, vocab, function, "prompt");
    if constexpr (requires { { model_.max_length() } -> std::convertible_to<std::size_t>; }) {
      const std::size_t need = prompt.size() + options_.horizon;
      check_argument(need <= static_cast<std::size_t>(model_.max_length()), function, "prompt.size() + horizon",
                     "must not exceed model.max_length() " + std::to_string(model_.max_length()), need);
    }
  }

  /// Checks that a forced sequence is a finished sequence of the horizon. `index` names
  /// sequences[index] of a forced run (nullopt: the conditional run's reference); messages are
  /// built only on failure.
  void check_reference(std::string_view function, std::span<const token> reference,
                       std::optional<std::size_t> index) const {
    const std::size_t vocab = model_.vocab_size();
    const std::size_t horizon = options_.horizon;
    const auto label = [&index] {
      return index ? "sequences[" + std::to_string(*index) + "]" : std::string("reference");
    };
    if (reference.empty() || reference.size() > horizon)
      throw_invalid_argument(function, label() + ".size()", "must be in [1, horizon = " + std::to_string(horizon) + "]",
                             reference.size());
    for (const token x : reference)
      if (x < 0 || static_cast<std::size_t>(x) >= vocab) check_tokens(reference, vocab, function, label());
    if (has_end_token(options_)) {
      for (std::size_t i = 0; i + 1 < reference.size(); ++i)
        if (is_end_token(options_, reference[i]))
          throw_invalid_argument(function, label() + "[" + std::to_string(i) + "]",
                                 "must not be the end token before the reference's last position", reference[i]);
    }
    if (reference.size() < horizon && !is_end_token(options_, reference.back()))
      throw_invalid_argument(function, label(), "shorter than the horizon must end with the end token; its length is",
                             reference.size());
  }

  template <class Matrix>
  static void ensure_shape(Matrix& m, std::size_t rows, std::size_t cols) {
    if (static_cast<std::size_t>(m.rows()) != rows || static_cast<std::size_t>(m.cols()) != cols)
      m.resize(static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(cols));
  }

  [[noreturn]] void diagnose_row(std::string_view function, std::size_t step, std::size_t k, const double* model_row,
                                 const double* second_row, std::string_view second_name) const {
    const std::size_t vocab = model_.vocab_size();
    for (std::size_t v = 0; v < vocab; ++v) {
      if (std::isnan(model_row[v]) || model_row[v] == std::numeric_limits<double>::infinity())
        throw_runtime_error(function, "the model's log p0 at step " + std::to_string(step) + ", particle " +
                                          std::to_string(k) + ", token " + std::to_string(v),
                            "must not be NaN or +inf", model_row[v]);
    }
    if (second_row != nullptr) {
      for (std::size_t v = 0; v < vocab; ++v) {
        if (std::isnan(second_row[v]) || second_row[v] == std::numeric_limits<double>::infinity())
          throw_runtime_error(function, std::string(second_name) + " at step " + std::to_string(step) +
                                            ", particle " + std::to_string(k) + ", token " + std::to_string(v),
                              "must not be NaN or +inf", second_row[v]);
      }
    }
    throw_runtime_error(function, "the proposal's normaliser at step " + std::to_string(step) + ", particle " +
                                      std::to_string(k),
                        "must be finite", "overflow");
  }

  /// Whether this run takes the model's float logits (EmitsLogitRows) instead of its log_probs
  /// rows: when the model has the hook and no user proposal needs log p0 as a matrix.
  template <class Proposal>
  static constexpr bool from_logits = EmitsLogitRows<Model> && std::is_same_v<Proposal, detail::no_proposal>;

  /// Writes row k of log_p0_ from the model's logits: l - log normaliser, as the model's
  /// log_probs writes it (bit for bit).
  void write_model_row(std::size_t k, std::size_t vocab) {
    const Eigen::Map<const Eigen::ArrayXf> logits(logit_rows_[k], static_cast<Eigen::Index>(vocab));
    log_p0_.row(static_cast<Eigen::Index>(k)).array() = logits.transpose().cast<double>() - logit_lse_[k];
  }

  /// Sizes every buffer for K particles and a horizon T and resets the particles to the prompt.
  void reset_state(const run_frame& f) {
    const std::size_t K = f.particles;
    ensure_shape(log_p0_, K, f.vocab);
    if constexpr (EmitsLogitRows<Model>) logit_lse_.assign(K, 0.0);
    if constexpr (!unit_twist || potential_scores_next) ensure_shape(log_psi_, K, f.vocab);
    state_.reset(K, f.horizon);
    scratch_.resize(static_cast<std::size_t>(detail::parallel_threads()));
    for (auto& s : scratch_)
      if (static_cast<std::size_t>(s.size()) < f.vocab) s.resize(static_cast<Eigen::Index>(f.vocab));
    if constexpr (EmitsLogitRows<Model>) {
      row_scratch_.resize(scratch_.size());
      for (auto& s : row_scratch_)
        if (static_cast<std::size_t>(s.size()) < f.vocab) s.resize(static_cast<Eigen::Index>(f.vocab));
    }
  }

  /// Stage 1: the model's rows, the twist's (or the next-token potential's) rows, the user
  /// proposal's rows, and the fused per-particle draw (parallel; errors are diagnosed in weigh).
  template <detail::run_mode Mode, class Proposal>
  step_psi propose(const run_frame& f, std::size_t t, Proposal& proposal, smc_timings& time) {
    constexpr bool user_proposal = !std::is_same_v<Proposal, detail::no_proposal>;
    auto& s = state_;
    const bool last = (t == f.horizon);
    const step_context<Model> ctx{t, f.horizon, f.prompt, std::span<const token_sequence>(s.prefixes),
                                  std::span<const std::uint8_t>(s.active), model_};
    {
      detail::stopwatch sw(time.model);
      if constexpr (from_logits<Proposal>)
        logit_rows_ = model_.logit_rows(std::span<const std::uint8_t>(s.active));
      else if constexpr (requires(Model& m, log_prob_ref o, std::span<const std::uint8_t> a) { m.log_probs(o, a); })
        model_.log_probs(log_p0_, std::span<const std::uint8_t>(s.active));
      else
        model_.log_probs(log_p0_);
    }
    // Which log psi_t enters this step: the potential's own next-token scores at the last step
    // of a twisted run (psi_T = phi), else the twist's (skipped entirely for psi = 1, and at the
    // last step of a base/user-proposal run, where phi replaces psi_T).
    step_psi psi;
    if constexpr (potential_scores_next) {
      if (last && f.twisted) {
        detail::stopwatch sw(time.potential);
        potential_.log_potential_next(ctx, log_psi_);
        psi = {true, true};
      }
    }
    if constexpr (!unit_twist) {
      if (!psi.have && (f.twisted || !last)) {
        detail::stopwatch sw(time.twist);
        twist_.log_twist(ctx, log_psi_);
        psi.have = true;
      }
    }
    if constexpr (user_proposal) {
      ensure_shape(log_q_matrix_, f.particles, f.vocab);
      detail::stopwatch sw(time.twist);
      proposal.log_proposal(ctx, log_q_matrix_);
    }

    const std::size_t V = f.vocab;
    const auto k_count = static_cast<std::int64_t>(f.particles);
    // Particles are independent (each its own stream and row): any thread may draw any of them.
    const int threads = f.particles * V >= 65536 ? static_cast<int>(scratch_.size()) : 1;
    // From logits, a twisted draw needs the model's normaliser first (log p0 = l - normaliser
    // enters L + Psi): the exp pass the model's log_probs would make, counted as the model's.
    // Every other draw (q = p0) takes the normaliser from its own single exp pass below.
    [[maybe_unused]] const bool logits_with_psi = f.twisted && psi.have;
    if constexpr (from_logits<Proposal>) {
      if (logits_with_psi) {
        detail::stopwatch sw(time.model);
        detail::parallel_for(k_count, threads, [&](std::int64_t ks, int) {
          const auto k = static_cast<std::size_t>(ks);
          if (s.active[k]) logit_lse_[k] = logit_row_normalizer(logit_rows_[k], V);
        });
      }
    }

    detail::stopwatch sw(time.sampler);
    detail::parallel_for(k_count, threads, [&](std::int64_t ks, int slot) {
      const auto k = static_cast<std::size_t>(ks);
      s.proposed[k] = s.active[k];
      if (!s.active[k]) return;
      Eigen::ArrayXd& scratch = scratch_[static_cast<std::size_t>(slot)];
      auto stream = particle_stream(f.seed, t, k);
      const double u = uniform01(stream);
      const double* l_row = log_p0_.row(static_cast<Eigen::Index>(k)).data();
      const double* psi_row = psi.have ? log_psi_.row(static_cast<Eigen::Index>(k)).data() : nullptr;
      const bool forced_slot = k < f.forced.size();
      proposal_draw draw;
      if constexpr (from_logits<Proposal>) {
        const float* logits = logit_rows_[k];
        if (logits_with_psi) {
          // L = l - normaliser, written where the fused pass reads it (log_p0_ when an observer
          // reads it, else a row buffer): the same numbers and the same pass as from log_probs.
          Eigen::ArrayXd& row_buffer = row_scratch_[static_cast<std::size_t>(slot)];
          double* l = f.report_rows ? log_p0_.row(static_cast<Eigen::Index>(k)).data() : row_buffer.data();
          Eigen::Map<Eigen::ArrayXd>(l, static_cast<Eigen::Index>(V)) =
              Eigen::Map<const Eigen::ArrayXf>(logits, static_cast<Eigen::Index>(V)).cast<double>() - logit_lse_[k];
          draw = fused_proposal_draw(l, psi_row, V, u, scratch);
          if (draw.log_normalizer == neg_inf && !forced_slot) {
            draw.chosen = fused_proposal_draw(l, nullptr, V, u, scratch).chosen;
            draw.log_normalizer = neg_inf;
          }
        } else {
          // q = p0: one exp pass gives the model's normaliser and the draw. The L row sums to 1
          // by definition (its normaliser is the row's own): log sum exp(L) = 0, NaN if broken.
          const logit_draw d = fused_logit_draw(logits, V, u, scratch);
          logit_lse_[k] = d.log_normalizer;
          draw = {std::isnan(d.log_normalizer) ? d.log_normalizer : 0.0, d.chosen};
          if (f.report_rows) write_model_row(k, V);
        }
      } else if constexpr (user_proposal) {
        draw = fused_proposal_draw(log_q_matrix_.row(static_cast<Eigen::Index>(k)).data(), nullptr, V, u, scratch);
      } else {
        draw = fused_proposal_draw(l_row, f.twisted ? psi_row : nullptr, V, u, scratch);
        if (draw.log_normalizer == neg_inf && f.twisted && !forced_slot) {
          // psi = 0 for every candidate: the particle's weight is 0; draw its token from p0.
          draw.chosen = fused_proposal_draw(l_row, nullptr, V, u, scratch).chosen;
          draw.log_normalizer = neg_inf;
        }
      }
      if (forced_slot) draw.chosen = f.forced[k][t - 1];
      s.tokens[k] = draw.chosen;
      s.step_lse[k] = draw.log_normalizer;
    });
    return psi;
  }

  /// Checks that a row of the model's log-probabilities sums to 1 (smc_options::check_normalization).
  void check_row_sum(const run_frame& f, std::size_t t, std::size_t k, const double* l_row) const {
    const double sum =
        Eigen::Map<const Eigen::ArrayXd>(l_row, static_cast<Eigen::Index>(f.vocab)).exp().sum();
    if (!(std::abs(sum - 1.0) <= options_.normalization_tolerance))
      throw_runtime_error(f.function, "the sum of the model's p0 = exp(log_probs) at step " + std::to_string(t) +
                                          ", particle " + std::to_string(k),
                          "must be 1 within options.normalization_tolerance " +
                              std::to_string(options_.normalization_tolerance) +
                              " (does the model write probabilities instead of log-probabilities?)",
                          sum);
  }

  /// Stage 2: the incremental weights (Eqs. 10, 15) of the particles that drew a token, their
  /// proposal log-densities, and which of them finish now. Sequential: cheap, and errors throw.
  /// Returns the number of finishing particles whose weight still needs log phi.
  template <detail::run_mode Mode, class Proposal>
  std::size_t weigh(const run_frame& f, std::size_t t, step_psi psi, smc_timings& time) {
    constexpr bool user_proposal = !std::is_same_v<Proposal, detail::no_proposal>;
    detail::stopwatch sw(time.sampler);
    auto& s = state_;
    const bool last = (t == f.horizon);
    const std::string_view psi_name = psi.is_phi ? "the potential's next-token log phi" : "the twist's log psi";
    std::size_t finishing_count = 0;
    bool first_row_unchecked = t == 1 && options_.check_first_row;  // smc_options::check_first_row
    for (std::size_t k = 0; k < f.particles; ++k) {
      s.finishing[k] = 0;
      s.finished_now[k] = 0;
      if (!s.proposed[k]) {
        s.log_w_target[k] = s.log_w[k];
        continue;
      }
      const double lse = s.step_lse[k];
      const double* l_row = log_p0_.row(static_cast<Eigen::Index>(k)).data();
      const double* psi_row = psi.have ? log_psi_.row(static_cast<Eigen::Index>(k)).data() : nullptr;
      const token x = s.tokens[k];
      double log_p0_x;
      if constexpr (from_logits<Proposal>)
        log_p0_x = static_cast<double>(logit_rows_[k][x]) - logit_lse_[k];
      else
        log_p0_x = l_row[x];
      const double psi_x = psi_row != nullptr ? psi_row[x] : 0.0;
      const bool check_sum = options_.check_normalization || first_row_unchecked;
      if constexpr (from_logits<Proposal>) {
        // The model handed over logits: row k of log p0 is written only when a check or a
        // diagnosis below reads it (or already, for an observer).
        const auto bad = [](double value) { return std::isnan(value) || value == -neg_inf; };
        if (!f.report_rows && (check_sum || bad(lse) || lse == neg_inf || bad(psi_x) || bad(log_p0_x)))
          write_model_row(k, f.vocab);
      }
      if (std::isnan(lse) || lse == -neg_inf) {
        if constexpr (user_proposal)
          diagnose_row(f.function, t, k, l_row, log_q_matrix_.row(static_cast<Eigen::Index>(k)).data(),
                       "the proposal's log q");
        else
          diagnose_row(f.function, t, k, l_row, f.twisted ? psi_row : nullptr, psi_name);
      }
      if (std::isnan(psi_x) || psi_x == -neg_inf) diagnose_row(f.function, t, k, l_row, psi_row, psi_name);
      if (std::isnan(log_p0_x) || log_p0_x == -neg_inf) diagnose_row(f.function, t, k, l_row, nullptr, "");
      if (lse == neg_inf &&
          !(Eigen::Map<const Eigen::ArrayXd>(l_row, static_cast<Eigen::Index>(f.vocab)).maxCoeff() > neg_inf))
        throw_runtime_error(f.function, "the model's log p0 at step " + std::to_string(t) + ", particle " +
                                            std::to_string(k), "must not be -inf for every token", lse);
      if (check_sum) {
        check_row_sum(f, t, k, l_row);
        first_row_unchecked = false;
      }
      if constexpr (user_proposal) {
        if (lse == neg_inf)
          throw_runtime_error(f.function, "the proposal's log q at step " + std::to_string(t) + ", particle " +
                                              std::to_string(k), "must not be -inf for every token", lse);
      }
      const bool forced = k < f.forced.size();
      const bool finished = last || is_end_token(options_, x);
      if constexpr (Mode == detail::run_mode::conditional) {
        // The reference must have positive target mass and be a draw the proposal can make: the
        // same checks whatever the proposal (base, twisted or the user's).
        if (forced) check_reference_token(f, t, x, log_p0_x, psi_x, finished, [&] {
          if constexpr (user_proposal) return log_q_matrix_(static_cast<Eigen::Index>(k), x);
          else return 0.0;
        }());
      }
      // log w_t before the potential (Eqs. 10, 15); finishing particles add log phi in score_finished.
      // `unfinished` is log w_t as if the particle went on: the weight that targets pi_t.
      double log_w_t;
      double unfinished;
      double log_q_t;
      if constexpr (user_proposal) {
        log_q_t = log_q_matrix_(static_cast<Eigen::Index>(k), x) - lse;
        unfinished = log_p0_x - log_q_t - s.log_psi_prev[k] + psi_x;
        log_w_t = log_p0_x - log_q_t - s.log_psi_prev[k] + (finished ? 0.0 : psi_x);
      } else if (f.twisted) {
        // Eq. 15: the weight does not depend on the token, except for the phi / psi_T correction.
        // psi_t = 0 for every candidate: the token came from p0 (see propose), so that is its q.
        log_q_t = lse == neg_inf
                      ? log_p0_x - logsumexp(std::span<const double>(l_row, f.vocab))
                      : log_p0_x + psi_x - lse;
        unfinished = lse - s.log_psi_prev[k];
        log_w_t = unfinished - (finished && !psi.is_phi ? psi_x : 0.0);
      } else {
        log_q_t = log_p0_x - lse;
        unfinished = lse - s.log_psi_prev[k] + psi_x;
        log_w_t = lse - s.log_psi_prev[k] + (finished ? 0.0 : psi_x);
      }
      if (lse == neg_inf || (!finished && psi_x == neg_inf)) {
        log_w_t = neg_inf;  // zero weight; keep psi_{t-1} finite so later steps stay NaN-free
        s.log_psi_prev[k] = 0.0;
      } else if (!finished) {
        s.log_psi_prev[k] = psi_x;
      }
      if (lse == neg_inf || psi_x == neg_inf) unfinished = neg_inf;
      s.log_w_target[k] = s.log_w[k] + unfinished;
      s.log_w[k] += log_w_t;
      s.log_q[k] += log_q_t;
      s.prefixes[k].push_back(x);
      if (finished) {
        s.active[k] = 0;
        s.finished_now[k] = 1;
        --s.active_count;
        // phi from the potential's next-token form is psi_T itself: nothing left to add.
        if (psi.is_phi) s.log_phi[k] = psi_x;
        if (!psi.is_phi) {
          s.finishing[k] = 1;
          ++finishing_count;
        }
      }
    }
    return finishing_count;
  }

  /// Conditional runs: the reference's token x at step t must have p0 > 0, psi > 0 where psi
  /// enters its weight (every step of a twisted run; unfinished steps otherwise) and, for a user
  /// proposal, q > 0 (log_q_x; 0 for the built-in proposals).
  void check_reference_token(const run_frame& f, std::size_t t, token x, double log_p0_x, double psi_x, bool finished,
                             double log_q_x) const {
    const auto where = [&] { return " of the reference's token " + std::to_string(x) + " at step " + std::to_string(t); };
    if (log_p0_x == neg_inf)
      throw_runtime_error(f.function, "the model's log p0" + where(),
                          "must be finite (a reference with p0 = 0 has no target mass)", log_p0_x);
    if (psi_x == neg_inf && (f.twisted || !finished))
      throw_runtime_error(f.function, "the twist's log psi" + where(),
                          "must be finite (the reference has positive target mass)", psi_x);
    if (log_q_x == neg_inf)
      throw_runtime_error(f.function, "the proposal's log q" + where(),
                          "must be finite (the proposal must be able to draw the reference)", log_q_x);
  }

  /// Stage 3: log phi of the particles that finished at this step (base / user proposal: phi
  /// replaces psi_T; twisted: phi / psi_T corrects the proposal's psi_T).
  void score_finished(const run_frame& f, std::size_t t, std::size_t finishing_count, smc_timings& time) {
    if (finishing_count == 0) return;
    detail::stopwatch sw(time.potential);
    auto& s = state_;
    potential_batch_.resize(finishing_count);
    potential_index_.resize(finishing_count);
    // NaN until written: a potential that never writes `out` is named by the check below.
    potential_values_.assign(finishing_count, std::numeric_limits<double>::quiet_NaN());
    std::size_t j = 0;
    for (std::size_t k = 0; k < f.particles; ++k)
      if (s.finishing[k]) {
        potential_batch_[j] = s.prefixes[k];
        potential_index_[j++] = k;
      }
    potential_.log_potential(std::span<const token_sequence>(potential_batch_), std::span<double>(potential_values_));
    for (std::size_t i = 0; i < finishing_count; ++i) {
      const double log_phi = potential_values_[i];
      if (std::isnan(log_phi) || log_phi == -neg_inf)
        throw_runtime_error(f.function, "log phi of particle " + std::to_string(potential_index_[i]) + " at step " +
                                            std::to_string(t),
                            "must not be NaN or +inf (was `out` written for every sequence?)", log_phi);
      s.log_w[potential_index_[i]] += log_phi;
      s.log_phi[potential_index_[i]] = log_phi;
    }
  }

  /// Stage 4: draws slot-stable ancestors and reorders the particles, the model and the twist.
  template <detail::run_mode Mode, RandomEngine Engine>
  void resample(const run_frame& f, Engine& rng, smc_timings& time) {
    auto& s = state_;
    {
      detail::stopwatch sw(time.sampler);
      if constexpr (Mode == detail::run_mode::conditional)
        conditional_resampler_.resample_conditional(std::span<const double>(s.log_w),
                                                    std::span<particle_index>(s.ancestors), rng);
      else
        resampler_.resample(std::span<const double>(s.log_w), std::span<particle_index>(s.ancestors), rng);
      s.reorder(std::span<const particle_index>(s.ancestors));
      s.log_w.assign(f.particles, 0.0);
    }
    {
      detail::stopwatch sw(time.model);
      model_.reorder(std::span<const particle_index>(s.ancestors));
    }
    if constexpr (requires { twist_.reorder(std::span<const particle_index>(s.ancestors)); }) {
      detail::stopwatch sw(time.twist);
      twist_.reorder(std::span<const particle_index>(s.ancestors));
    }
  }

  /// Stage 5: extends the model (and a stateful twist) by the drawn tokens; finished slots get padding.
  void extend(const run_frame& f, smc_timings& time) {
    auto& s = state_;
    for (std::size_t k = 0; k < f.particles; ++k)
      if (!s.active[k]) s.tokens[k] = f.pad_token;
    {
      detail::stopwatch sw(time.model);
      model_.append(std::span<const token>(s.tokens));
    }
    if constexpr (requires { twist_.append(std::span<const token>(s.tokens)); }) {
      detail::stopwatch sw(time.twist);
      twist_.append(std::span<const token>(s.tokens));
    }
  }

  template <detail::run_mode Mode, class Proposal, RandomEngine Engine, class... Observers>
  smc_result run_impl(std::string_view function, std::span<const token> prompt,
                      std::span<const std::span<const token>> forced, Proposal& proposal, Engine& rng,
                      Observers&... observers) {
    static_assert((detail::observer_hooks_ok<std::remove_cvref_t<Observers>, step_report, smc_result> && ...),
                  "tsmc::twisted_smc::run: an observer has a member named on_step, on_resample or on_finish that the "
                  "sampler cannot call; write bool on_step(const tsmc::step_report&), void on_resample(std::size_t "
                  "step, std::span<const tsmc::particle_index> ancestors) or void on_finish(const tsmc::smc_result&)");
    check_prompt(function, prompt);
    for (std::size_t i = 0; i < forced.size(); ++i)
      check_reference(function, forced[i],
                      Mode == detail::run_mode::forced ? std::optional<std::size_t>(i) : std::nullopt);

    run_frame f;
    f.function = function;
    f.prompt = prompt;
    f.particles = Mode == detail::run_mode::forced ? forced.size() : options_.particles;
    f.horizon = options_.horizon;
    f.vocab = model_.vocab_size();
    f.twisted = std::is_same_v<Proposal, detail::no_proposal> && options_.proposal == proposal_type::twisted;
    f.log_k = std::log(static_cast<double>(f.particles));
    f.pad_token = first_end_token(options_).value_or(0);
    f.forced = forced;
    f.report_rows = (detail::observes_weights<Observers> || ...);
    const std::size_t K = f.particles;
    const std::size_t T = f.horizon;

    smc_result result;
    smc_timings& time = result.seconds;
    const auto run_start = std::chrono::steady_clock::now();
    f.seed = random_bits64(rng);

    reset_state(f);
    result.ess.reserve(T);
    result.resampled.reserve(T);
    result.log_z_increments.reserve(T);
    {
      detail::stopwatch sw(time.model);
      model_.start(prompt, K);
    }
    if constexpr (requires { twist_.start(prompt, K); }) {
      detail::stopwatch sw(time.twist);
      twist_.start(prompt, K);
    }

    auto& s = state_;
    double log_z = 0.0;
    for (std::size_t t = 1; t <= T; ++t) {
      const step_psi psi = propose<Mode>(f, t, proposal, time);
      const std::size_t finishing_count = weigh<Mode, Proposal>(f, t, psi, time);
      score_finished(f, t, finishing_count, time);
      if constexpr ((detail::observes_weights<Observers> || ...)) {
        const weights_report report{t,
                                    T,
                                    f.twisted,
                                    log_p0_,
                                    psi.have ? &log_psi_ : nullptr,
                                    psi.is_phi,
                                    std::span<const std::uint8_t>(s.proposed),
                                    std::span<const token>(s.tokens),
                                    std::span<const double>(s.step_lse),
                                    std::span<const double>(s.log_w_target),
                                    std::span<const double>(s.log_w),
                                    std::span<const std::uint8_t>(s.finished_now),
                                    std::span<const double>(s.log_phi),
                                    std::span<const token_sequence>(s.prefixes)};
        (detail::notify_weights(observers, report), ...);
      }

      // ESS, log Z, resampling
      bool final_step = (t == T) || s.active_count == 0;
      double ess;
      double lse_w;
      {
        detail::stopwatch sw(time.sampler);
        lse_w = logsumexp(std::span<const double>(s.log_w));
        ess = effective_sample_size(std::span<const double>(s.log_w));
      }
      result.ess.push_back(ess);
      result.steps = t;
      if (lse_w == neg_inf) {  // every weight is zero: a legal, degenerate outcome
        log_z = neg_inf;
        result.resampled.push_back(0);
        result.log_z_increments.push_back(neg_inf);
        break;
      }
      bool did_resample = false;
      if (final_step) {
        const double inc = lse_w - f.log_k;
        log_z += inc;
        result.log_z_increments.push_back(inc);
      } else if (Mode != detail::run_mode::forced && trigger_(resampling_state{ess, K, t, T})) {
        const double inc = lse_w - f.log_k;
        log_z += inc;
        result.log_z_increments.push_back(inc);
        resample<Mode>(f, rng, time);
        did_resample = true;
        (detail::notify_resample(observers, t, std::span<const particle_index>(s.ancestors)), ...);
        // Resampling can leave only finished particles: the run is over (their weights are all 1).
        if (s.active_count == 0) final_step = true;
      } else {
        result.log_z_increments.push_back(0.0);
      }
      result.resampled.push_back(did_resample ? 1 : 0);
      if (options_.record_genealogy) {
        result.genealogy.emplace_back();
        if (did_resample) result.genealogy.back().assign(s.ancestors.begin(), s.ancestors.end());
      }

      [[maybe_unused]] const step_report report{t, T, ess, did_resample, log_z, s.active_count};
      const bool stop_requested = (detail::notify_step(observers, report) || ...);
      if (final_step) break;
      if (stop_requested) {
        result.stopped_by_observer = true;
        // close the open epoch so that log_z covers the steps taken
        if (!did_resample) {
          const double inc = lse_w - f.log_k;
          log_z += inc;
          result.log_z_increments.back() += inc;
        }
        break;
      }
      extend(f, time);
    }

    result.log_z = log_z;
    result.sequences = s.prefixes;
    result.log_weights = s.log_w;
    result.log_proposal = s.log_q;
    result.normalized_log_weights.resize(K);
    const double lse_final = logsumexp(std::span<const double>(s.log_w));
    for (std::size_t k = 0; k < K; ++k)
      result.normalized_log_weights[k] = lse_final == neg_inf ? neg_inf : s.log_w[k] - lse_final;
    const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
    time.sampler += std::max(0.0, total - time.total());  // bookkeeping outside the timed blocks
    (detail::notify_finish(observers, result), ...);
    return result;
  }

  Model& model_;
  Twist& twist_;
  Pot& potential_;
  smc_options options_;
  resampler<Scheme> resampler_;
  // Conditional SMC draws the K - 1 free ancestors multinomially whatever the scheme: that is the
  // conditional SMC of Andrieu, Doucet and Holenstein (2010), whose log Zhat is an upper bound in
  // expectation; conditional forms of the low-variance schemes need more than K - 1 free draws.
  resampler<multinomial> conditional_resampler_;
  Trigger trigger_;

  detail::particle_state state_;
  std::vector<std::span<const token>> forced_;
  log_prob_matrix log_p0_;
  log_prob_matrix log_psi_;
  log_prob_matrix log_q_matrix_;
  std::vector<Eigen::ArrayXd> scratch_;
  // From a model's logits (EmitsLogitRows): this step's rows, each row's log normaliser, and a
  // row buffer per thread for the twisted pass's L.
  std::span<const float* const> logit_rows_;
  std::vector<double> logit_lse_;
  std::vector<Eigen::ArrayXd> row_scratch_;
  std::vector<token_sequence> potential_batch_;
  std::vector<std::size_t> potential_index_;
  std::vector<double> potential_values_;
};

}  // namespace tsmc
