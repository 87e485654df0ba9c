#pragma once
/// @file
/// @brief twisted_smc: the generic (twisted) SMC sampler over a LanguageModel, a TwistFunction
/// and a Potential, with any resampling scheme and trigger; plain and conditional runs.

#include <tsmc/core/concepts.hpp>
#include <tsmc/core/error.hpp>
#include <tsmc/core/log_math.hpp>
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
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

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

}  // namespace detail

/// @brief Twisted Sequential Monte Carlo (Zhao et al. 2024, Sections 3-5) over a batched,
/// stateful language model.
///
/// Each step t = 1..T: the model writes L = log p0(. | prefix) (K x V), the twist writes
/// Psi = log psi_t(prefix, .) (K x V), and one fused pass per particle draws s_t and computes
/// the incremental weight:
/// * twisted proposal (Eq. 14-15): q_t proportional to p0 psi_t, log w_t = logsumexp(L + Psi) -
///   log psi_{t-1}; at the last step psi_T is the potential's next-token form when it has one
///   (then psi_T = phi exactly), otherwise the twist's psi_T with the correction phi / psi_T;
/// * base proposal: q = p0, log w_t = log psi_t - log psi_{t-1}, phi replacing psi at the end;
/// * a user proposal model (run_with_proposal): Eq. 10.
/// A particle that emits the end token is finished: its weight takes phi (with the same
/// corrections) at that moment and is unchanged afterwards, and its rows are skipped.
/// The model's rows are taken as exact: p0(v) = exp(L(k, v)) with no renormalisation, so for a
/// model whose rows sum to 1 only up to rounding, log Zhat estimates Z for exactly those numbers.
///
/// Resampling happens when the trigger fires (never after the last step): log Zhat gains
/// logsumexp(log W) - log K, the scheme draws slot-stable ancestors, the model, the twist and the
/// sampler's own state are reordered, and the log-weights reset to 0. After the last step
/// log Zhat gains logsumexp(log W) - log K of the open epoch (footnote 1), so log Zhat is right
/// under adaptive resampling. E[Zhat] = Z.
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
  static_assert(detail::model_max_length_ok<Model>,
                "tsmc::twisted_smc: the model has a member named max_length that the sampler cannot call; write "
                "std::size_t max_length() const");
  static_assert(ResamplingScheme<Scheme>, "tsmc::twisted_smc: Scheme must model tsmc::ResamplingScheme");
  static_assert(ResamplingTrigger<Trigger>, "tsmc::twisted_smc: Trigger must model tsmc::ResamplingTrigger");

 public:
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
  ///        on_resample(step, ancestors), on_finish(const smc_result&)
  /// @throw tsmc::invalid_argument on bad input; tsmc::runtime_error on NaN/+inf from a model, twist or potential
  template <RandomEngine Engine, class... Observers>
  smc_result run(std::span<const token> prompt, Engine& rng, Observers&&... observers) {
    detail::no_proposal none;
    return run_impl<false>("twisted_smc::run", prompt, {}, none, rng, observers...);
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
    return run_impl<true>("twisted_smc::run_conditional", prompt, reference, none, rng, observers...);
  }

  /// @brief A run with a user proposal model q (Eq. 10): w_t = p0 psi_t / (q psi_{t-1}).
  template <class Proposal, RandomEngine Engine, class... Observers>
    requires ProposalModel<Proposal, Model>
  smc_result run_with_proposal(Proposal& proposal, std::span<const token> prompt, Engine& rng,
                               Observers&&... observers) {
    return run_impl<false>("twisted_smc::run_with_proposal", prompt, {}, proposal, rng, observers...);
  }

  /// @brief Conditional SMC with a user proposal model q.
  template <class Proposal, RandomEngine Engine, class... Observers>
    requires ProposalModel<Proposal, Model>
  smc_result run_conditional_with_proposal(Proposal& proposal, std::span<const token> prompt,
                                           std::span<const token> reference, Engine& rng, Observers&&... observers) {
    return run_impl<true>("twisted_smc::run_conditional_with_proposal", prompt, reference, proposal, rng,
                          observers...);
  }

 private:
  static constexpr bool unit_twist = detail::is_unit_twist<Twist>;
  static constexpr bool potential_scores_next = NextTokenPotential<Pot, Model>;

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

  void check_reference(std::string_view function, std::span<const token> reference) const {
    const std::size_t vocab = model_.vocab_size();
    const std::size_t horizon = options_.horizon;
    check_argument(!reference.empty() && reference.size() <= horizon, function, "reference.size()",
                   "must be in [1, horizon = " + std::to_string(horizon) + "]", reference.size());
    check_tokens(reference, vocab, function, "reference");
    for (std::size_t i = 0; i < reference.size(); ++i) {
      if (options_.end_token && i + 1 < reference.size())
        check_argument(reference[i] != *options_.end_token, function, "reference[" + std::to_string(i) + "]",
                       "must not be the end token before the reference's last position", reference[i]);
    }
    if (reference.size() < horizon) {
      check_argument(options_.end_token.has_value() && reference.back() == *options_.end_token, function,
                     "reference", "shorter than the horizon must end with the end token; its length is",
                     reference.size());
    }
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

  template <bool Conditional, class Proposal, RandomEngine Engine, class... Observers>
  smc_result run_impl(std::string_view function, std::span<const token> prompt, std::span<const token> reference,
                      Proposal& proposal, Engine& rng, Observers&... observers) {
    constexpr bool user_proposal = !std::is_same_v<Proposal, detail::no_proposal>;
    check_prompt(function, prompt);
    if constexpr (Conditional) check_reference(function, reference);

    const std::size_t K = options_.particles;
    const std::size_t T = options_.horizon;
    const std::size_t V = model_.vocab_size();
    const bool twisted = !user_proposal && options_.proposal == proposal_type::twisted;
    const double log_k = std::log(static_cast<double>(K));
    const token pad_token = options_.end_token.value_or(0);

    smc_result result;
    smc_timings& time = result.seconds;
    const auto run_start = std::chrono::steady_clock::now();
    const std::uint64_t run_seed = random_bits64(rng);

    // --- state (reused buffers; nothing below allocates per step except potential batches' first growth)
    ensure_shape(log_p0_, K, V);
    if constexpr (!unit_twist || potential_scores_next) ensure_shape(log_psi_, K, V);
    if constexpr (user_proposal) ensure_shape(log_q_matrix_, K, V);
    prefixes_.resize(K);
    for (auto& p : prefixes_) {
      p.clear();
      p.reserve(T);
    }
    active_.assign(K, 1);
    log_w_.assign(K, 0.0);
    log_psi_prev_.assign(K, 0.0);
    log_q_.assign(K, 0.0);
    tokens_.assign(K, 0);
    step_lse_.assign(K, 0.0);
    finishing_.assign(K, 0);
    ancestors_.assign(K, 0);
#ifdef _OPENMP
    scratch_.resize(static_cast<std::size_t>(omp_get_max_threads()));
#else
    scratch_.resize(1);
#endif
    for (auto& s : scratch_)
      if (static_cast<std::size_t>(s.size()) < V) s.resize(static_cast<Eigen::Index>(V));
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

    double log_z = 0.0;
    std::size_t active_count = K;
    bool stop = false;
    for (std::size_t t = 1; t <= T && !stop; ++t) {
      const bool last = (t == T);
      const step_context<Model> ctx{t, T, prompt, std::span<const token_sequence>(prefixes_),
                                    std::span<const std::uint8_t>(active_), model_};
      // 1. model, twist (or next-token potential), user proposal
      {
        detail::stopwatch sw(time.model);
        if constexpr (requires(Model& m, log_prob_ref o, std::span<const std::uint8_t> a) { m.log_probs(o, a); })
          model_.log_probs(log_p0_, std::span<const std::uint8_t>(active_));
        else
          model_.log_probs(log_p0_);
      }
      // Which log psi_t enters this step: the potential's own next-token scores at the last step
      // of a twisted run (psi_T = phi), else the twist's (skipped entirely for psi = 1, and at the
      // last step of a base/user-proposal run, where phi replaces psi_T).
      bool psi_is_phi = false;
      bool have_psi = false;
      if constexpr (potential_scores_next) {
        if (last && twisted) {
          detail::stopwatch sw(time.potential);
          potential_.log_potential_next(ctx, log_psi_);
          psi_is_phi = true;
          have_psi = true;
        }
      }
      if constexpr (!unit_twist) {
        if (!have_psi && (twisted || !last)) {
          detail::stopwatch sw(time.twist);
          twist_.log_twist(ctx, log_psi_);
          have_psi = true;
        }
      }
      if constexpr (user_proposal) {
        detail::stopwatch sw(time.twist);
        proposal.log_proposal(ctx, log_q_matrix_);
      }

      // 2. the fused per-particle pass (parallel; errors are diagnosed after it)
      {
        detail::stopwatch sw(time.sampler);
        const auto k_count = static_cast<std::int64_t>(K);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (K * V >= 65536)
#endif
        for (std::int64_t ks = 0; ks < k_count; ++ks) {
          const auto k = static_cast<std::size_t>(ks);
          if (!active_[k]) continue;
#ifdef _OPENMP
          Eigen::ArrayXd& scratch = scratch_[static_cast<std::size_t>(omp_get_thread_num())];
#else
          Eigen::ArrayXd& scratch = scratch_[0];
#endif
          auto stream = particle_stream(run_seed, t, k);
          const double u = uniform01(stream);
          const double* l_row = log_p0_.row(static_cast<Eigen::Index>(k)).data();
          const double* psi_row = have_psi ? log_psi_.row(static_cast<Eigen::Index>(k)).data() : nullptr;
          const bool forced_slot = Conditional && k == 0;
          proposal_draw draw;
          if constexpr (user_proposal) {
            draw = fused_proposal_draw(log_q_matrix_.row(static_cast<Eigen::Index>(k)).data(), nullptr, V, u, scratch);
          } else {
            draw = fused_proposal_draw(l_row, twisted ? psi_row : nullptr, V, u, scratch);
            if (draw.log_normalizer == neg_inf && twisted && !forced_slot) {
              // psi = 0 for every candidate: the particle's weight is 0; draw its token from p0.
              draw.chosen = fused_proposal_draw(l_row, nullptr, V, u, scratch).chosen;
              draw.log_normalizer = neg_inf;
            }
          }
          if (forced_slot) draw.chosen = reference[t - 1];
          tokens_[k] = draw.chosen;
          step_lse_[k] = draw.log_normalizer;
        }
      }

      // 3. weights (sequential: cheap, and errors can throw here)
      std::size_t finishing_count = 0;
      {
        detail::stopwatch sw(time.sampler);
        for (std::size_t k = 0; k < K; ++k) {
          finishing_[k] = 0;
          if (!active_[k]) continue;
          const double lse = step_lse_[k];
          const double* l_row = log_p0_.row(static_cast<Eigen::Index>(k)).data();
          const double* psi_row = have_psi ? log_psi_.row(static_cast<Eigen::Index>(k)).data() : nullptr;
          if (std::isnan(lse) || lse == -neg_inf) {
            if constexpr (user_proposal)
              diagnose_row(function, t, k, l_row, log_q_matrix_.row(static_cast<Eigen::Index>(k)).data(),
                           "the proposal's log q");
            else
              diagnose_row(function, t, k, l_row, twisted ? psi_row : nullptr,
                           psi_is_phi ? "the potential's next-token log phi" : "the twist's log psi");
          }
          const token x = tokens_[k];
          const double log_p0_x = static_cast<double>(l_row[x]);
          const double psi_x = psi_row != nullptr ? static_cast<double>(psi_row[x]) : 0.0;
          if (std::isnan(psi_x) || psi_x == -neg_inf)
            diagnose_row(function, t, k, l_row, psi_row, psi_is_phi ? "the potential's next-token log phi" : "the twist's log psi");
          if (std::isnan(log_p0_x) || log_p0_x == -neg_inf) diagnose_row(function, t, k, l_row, nullptr, "");
          if (lse == neg_inf && !(Eigen::Map<const Eigen::ArrayXd>(l_row, static_cast<Eigen::Index>(V)).maxCoeff() > neg_inf))
            throw_runtime_error(function, "the model's log p0 at step " + std::to_string(t) + ", particle " +
                                              std::to_string(k), "must not be -inf for every token", lse);
          if constexpr (user_proposal) {
            if (lse == neg_inf)
              throw_runtime_error(function, "the proposal's log q at step " + std::to_string(t) + ", particle " +
                                                std::to_string(k), "must not be -inf for every token", lse);
          }
          const bool forced = Conditional && k == 0;
          if (forced && twisted && psi_x == neg_inf)
            throw_runtime_error(function, "the twist's log psi of the reference's token " + std::to_string(x) +
                                              " at step " + std::to_string(t),
                                "must be finite (the reference has positive target mass)", psi_x);
          const bool finished = last || (options_.end_token && x == *options_.end_token);
          // log w_t before the potential (Eqs. 10, 15); finishing particles add log phi in step 4.
          double log_w_t;
          double log_q_t;
          if constexpr (user_proposal) {
            log_q_t = static_cast<double>(log_q_matrix_(static_cast<Eigen::Index>(k), x)) - lse;
            log_w_t = log_p0_x - log_q_t - log_psi_prev_[k] + (finished ? 0.0 : psi_x);
          } else if (twisted) {
            // Eq. 15: the weight does not depend on the token, except for the phi / psi_T correction.
            log_q_t = lse == neg_inf ? neg_inf : log_p0_x + psi_x - lse;
            log_w_t = lse - log_psi_prev_[k] - (finished && !psi_is_phi ? psi_x : 0.0);
          } else {
            log_q_t = log_p0_x - lse;
            log_w_t = lse - log_psi_prev_[k] + (finished ? 0.0 : psi_x);
          }
          if (lse == neg_inf || (!finished && psi_x == neg_inf)) {
            log_w_t = neg_inf;  // zero weight; keep psi_{t-1} finite so later steps stay NaN-free
            log_psi_prev_[k] = 0.0;
          } else if (!finished) {
            log_psi_prev_[k] = psi_x;
          }
          log_w_[k] += log_w_t;
          log_q_[k] += log_q_t;
          prefixes_[k].push_back(x);
          if (finished) {
            active_[k] = 0;
            --active_count;
            // phi from the potential's next-token form is psi_T itself: nothing left to add.
            if (!psi_is_phi) {
              finishing_[k] = 1;
              ++finishing_count;
            }
          }
        }
      }

      // 4. the potential for particles that finished this step
      if (finishing_count > 0) {
        detail::stopwatch sw(time.potential);
        potential_batch_.resize(finishing_count);
        potential_index_.resize(finishing_count);
        potential_values_.assign(finishing_count, 0.0);
        std::size_t j = 0;
        for (std::size_t k = 0; k < K; ++k)
          if (finishing_[k]) {
            potential_batch_[j] = prefixes_[k];
            potential_index_[j++] = k;
          }
        potential_.log_potential(std::span<const token_sequence>(potential_batch_), std::span<double>(potential_values_));
        for (std::size_t i = 0; i < finishing_count; ++i) {
          const double log_phi = potential_values_[i];
          if (std::isnan(log_phi) || log_phi == -neg_inf)
            throw_runtime_error(function, "log phi of particle " + std::to_string(potential_index_[i]) +
                                              " at step " + std::to_string(t),
                                "must not be NaN or +inf", log_phi);
          // base / user proposal: phi replaces psi_T; twisted: phi / psi_T corrects the proposal's psi_T.
          log_w_[potential_index_[i]] += log_phi;
        }
      }

      // 5. ESS, log Z, resampling
      const bool final_step = last || active_count == 0;
      double ess;
      double lse_w;
      {
        detail::stopwatch sw(time.sampler);
        lse_w = logsumexp(std::span<const double>(log_w_));
        ess = effective_sample_size(std::span<const double>(log_w_));
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
        const double inc = lse_w - log_k;
        log_z += inc;
        result.log_z_increments.push_back(inc);
      } else if (trigger_(resampling_state{ess, K, t, T})) {
        {
          detail::stopwatch sw(time.sampler);
          const double inc = lse_w - log_k;
          log_z += inc;
          result.log_z_increments.push_back(inc);
          if constexpr (Conditional)
            conditional_resampler_.resample_conditional(std::span<const double>(log_w_),
                                                        std::span<particle_index>(ancestors_), rng);
          else
            resampler_.resample(std::span<const double>(log_w_), std::span<particle_index>(ancestors_), rng);
          const std::span<const particle_index> anc(ancestors_);
          detail::reorder_in_place(prefixes_, anc);
          detail::reorder_in_place(active_, anc);
          detail::reorder_in_place(log_psi_prev_, anc);
          detail::reorder_in_place(log_q_, anc);
          detail::reorder_in_place(tokens_, anc);
          active_count = 0;
          for (auto a : active_) active_count += a;
          log_w_.assign(K, 0.0);
        }
        {
          detail::stopwatch sw(time.model);
          model_.reorder(std::span<const particle_index>(ancestors_));
        }
        if constexpr (requires { twist_.reorder(std::span<const particle_index>(ancestors_)); }) {
          detail::stopwatch sw(time.twist);
          twist_.reorder(std::span<const particle_index>(ancestors_));
        }
        did_resample = true;
        (detail::notify_resample(observers, t, std::span<const particle_index>(ancestors_)), ...);
      } else {
        result.log_z_increments.push_back(0.0);
      }
      result.resampled.push_back(did_resample ? 1 : 0);
      if (options_.record_genealogy) {
        result.genealogy.emplace_back();
        if (did_resample) result.genealogy.back().assign(ancestors_.begin(), ancestors_.end());
      }

      [[maybe_unused]] const step_report report{t, T, ess, did_resample, log_z, active_count};
      const bool stop_requested = (detail::notify_step(observers, report) || ...);
      if (stop_requested && !final_step) {
        result.stopped_by_observer = true;
        stop = true;
        // close the open epoch so that log_z covers the steps taken
        if (!did_resample) {
          const double inc = lse_w - log_k;
          log_z += inc;
          result.log_z_increments.back() += inc;
        }
      }
      if (final_step) break;

      // 6. extend the model (and a stateful twist) by the drawn tokens; finished slots get padding
      if (!stop) {
        for (std::size_t k = 0; k < K; ++k)
          if (!active_[k]) tokens_[k] = pad_token;
        {
          detail::stopwatch sw(time.model);
          model_.append(std::span<const token>(tokens_));
        }
        if constexpr (requires { twist_.append(std::span<const token>(tokens_)); }) {
          detail::stopwatch sw(time.twist);
          twist_.append(std::span<const token>(tokens_));
        }
      }
    }

    result.log_z = log_z;
    result.sequences = prefixes_;
    result.log_weights = log_w_;
    result.log_proposal = log_q_;
    result.normalized_log_weights.resize(K);
    const double lse_final = logsumexp(std::span<const double>(log_w_));
    for (std::size_t k = 0; k < K; ++k)
      result.normalized_log_weights[k] = lse_final == neg_inf ? neg_inf : log_w_[k] - lse_final;
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

  log_prob_matrix log_p0_;
  log_prob_matrix log_psi_;
  log_prob_matrix log_q_matrix_;
  std::vector<token_sequence> prefixes_;
  std::vector<std::uint8_t> active_;
  std::vector<double> log_w_;
  std::vector<double> log_psi_prev_;
  std::vector<double> log_q_;
  std::vector<token> tokens_;
  std::vector<double> step_lse_;
  std::vector<std::uint8_t> finishing_;
  std::vector<particle_index> ancestors_;
  std::vector<Eigen::ArrayXd> scratch_;
  std::vector<token_sequence> potential_batch_;
  std::vector<std::size_t> potential_index_;
  std::vector<double> potential_values_;
};

}  // namespace tsmc
