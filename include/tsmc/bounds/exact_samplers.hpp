#pragma once
/// @file
/// @brief Exact samplers from the target sigma (Zhao et al. 2024, Section 5): rejection from p0
/// for indicator and class-probability potentials, the joint "prefix and continuation" sampler
/// for infilling (with its potential phi(s) = p0(o | s)), a single-reference sampler, and a
/// wrapper that declares which prompt and horizon a sampler targets.
///
/// An exact sampler that declares its target (prompt(), horizon(), end_token()) lets the bounds
/// and KL estimators reject a sampler built for a different problem (see TargetedExactSampler).

#include <tsmc/core/concepts.hpp>
#include <tsmc/core/error.hpp>
#include <tsmc/core/log_math.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/core/types.hpp>
#include <tsmc/resampling/schemes.hpp>
#include <tsmc/resampling/triggers.hpp>
#include <tsmc/smc/options.hpp>
#include <tsmc/smc/result.hpp>
#include <tsmc/smc/sampler.hpp>
#include <tsmc/twists/no_twist.hpp>

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <deque>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tsmc {

// ---------------------------------------------------------------------------------------------
// Declared targets
// ---------------------------------------------------------------------------------------------

/// @brief An ExactSampler that also declares the problem it samples for: prompt(), horizon()
/// and end_token(). The estimators check these against their own configuration and throw
/// tsmc::invalid_argument on a mismatch; for a sampler without them only the samples themselves
/// are checked (by twisted_smc::run_conditional).
template <class S, class Engine = default_engine>
concept TargetedExactSampler = ExactSampler<S, Engine> && requires(const S& s) {
  { s.prompt() } -> std::convertible_to<std::span<const token>>;
  { s.horizon() } -> std::convertible_to<std::size_t>;
  { s.end_token() } -> std::convertible_to<std::optional<token>>;
};

namespace detail {

/// "none" or the token, for a message.
inline std::string end_token_text(const std::optional<token>& end) { return end ? std::to_string(*end) : "none"; }

/// The potential phi = 1, for drawing plain p0 samples with the sampler.
struct unit_potential {
  void log_potential(std::span<const token_sequence> /*sequences*/, std::span<double> out) const {
    for (double& v : out) v = 0.0;
  }
};

/// Checks that an exact sampler targets (prompt, horizon, end token), when it says what it targets.
template <class Exact>
void check_exact_target(const Exact& exact, std::span<const token> prompt, std::size_t horizon,
                        const std::optional<token>& end_token, std::string_view function) {
  if constexpr (requires {
                  { exact.prompt() } -> std::convertible_to<std::span<const token>>;
                  { exact.horizon() } -> std::convertible_to<std::size_t>;
                  { exact.end_token() } -> std::convertible_to<std::optional<token>>;
                }) {
    const std::span<const token> target = exact.prompt();
    if (!std::equal(target.begin(), target.end(), prompt.begin(), prompt.end()))
      throw_invalid_argument(function, "exact.prompt()", "must equal the sampler's prompt " + tokens_text(prompt),
                             tokens_text(target));
    check_size(function, "exact.horizon()", exact.horizon(), "the sampler's horizon", horizon);
    const std::optional<token> end = exact.end_token();
    check_argument(end == end_token, function, "exact.end_token()",
                   "must equal the sampler's end token " + end_token_text(end_token), end_token_text(end));
  }
}

/// Also checks the further end tokens (smc_options::end_tokens), when the exact sampler declares them.
template <class Exact>
void check_exact_target(const Exact& exact, std::span<const token> prompt, std::size_t horizon,
                        const std::optional<token>& end_token, std::span<const token> end_tokens,
                        std::string_view function) {
  check_exact_target(exact, prompt, horizon, end_token, function);
  if constexpr (requires { { exact.end_tokens() } -> std::convertible_to<std::span<const token>>; }) {
    const std::span<const token> declared = exact.end_tokens();
    std::vector<token> a(declared.begin(), declared.end()), b(end_tokens.begin(), end_tokens.end());
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    check_argument(a == b, function, "exact.end_tokens()", "must equal the sampler's end tokens " + tokens_text(b),
                   tokens_text(a));
  } else {
    check_argument(end_tokens.empty(), function, "options.end_tokens",
                   "must be empty with an exact sampler that does not declare end_tokens(); its size is",
                   end_tokens.size());
  }
}

}  // namespace detail

/// @brief Wraps an ExactSampler and declares the prompt, horizon and end token it targets, so
/// the estimators can check it (models TargetedExactSampler).
/// @tparam Sampler an ExactSampler, stored by value
template <class Sampler>
class targeted_sampler {
 public:
  /// @brief Wraps a sampler.
  /// @param sampler the exact sampler (copied or moved in)
  /// @param prompt the prompt its samples are conditioned on
  /// @param horizon T, the maximum length of its samples
  /// @param end_token the end token of its sequences, if any
  /// @throw tsmc::invalid_argument if horizon is 0
  targeted_sampler(Sampler sampler, std::span<const token> prompt, std::size_t horizon,
                   std::optional<token> end_token = std::nullopt)
      : sampler_(std::move(sampler)), prompt_(prompt.begin(), prompt.end()), horizon_(horizon), end_token_(end_token) {
    check_positive("targeted_sampler::targeted_sampler", "horizon", horizon);
  }

  /// @brief One exact sample from the wrapped sampler.
  /// @param rng the random engine
  /// @return a sequence of generated tokens
  template <RandomEngine Engine>
  [[nodiscard]] token_sequence sample(Engine& rng) {
    return sampler_.sample(rng);
  }

  /// @brief The prompt the samples are conditioned on.
  [[nodiscard]] std::span<const token> prompt() const noexcept { return prompt_; }
  /// @brief T.
  [[nodiscard]] std::size_t horizon() const noexcept { return horizon_; }
  /// @brief The end token, if any.
  [[nodiscard]] std::optional<token> end_token() const noexcept { return end_token_; }
  /// @brief The wrapped sampler.
  [[nodiscard]] Sampler& inner() noexcept { return sampler_; }

 private:
  Sampler sampler_;
  token_sequence prompt_;
  std::size_t horizon_;
  std::optional<token> end_token_;
};

/// @brief An "exact sampler" that returns one fixed sequence, known to be an exact draw from
/// sigma: for conditional tasks (infilling) there is one exact sample per observation, which
/// seeds every conditional SMC run of that observation (Zhao et al. 2024, Section 5).
///
/// Reusing one draw makes the runs of that observation share it: the average over observations
/// of their upper bounds is an upper bound in expectation, a single observation's is not.
class single_sample_sampler {
 public:
  /// @brief Declares the sample and its target.
  /// @param sample the exact draw (generated tokens)
  /// @param prompt its prompt
  /// @param horizon T
  /// @param end_token the end token, if any
  /// @throw tsmc::invalid_argument if the sample is empty or longer than the horizon
  single_sample_sampler(token_sequence sample, std::span<const token> prompt, std::size_t horizon,
                        std::optional<token> end_token = std::nullopt)
      : sample_(std::move(sample)), prompt_(prompt.begin(), prompt.end()), horizon_(horizon), end_token_(end_token) {
    check_argument(!sample_.empty() && sample_.size() <= horizon_, "single_sample_sampler::single_sample_sampler",
                   "sample.size()", "must be in [1, horizon = " + std::to_string(horizon_) + "]", sample_.size());
  }

  /// @brief The fixed sample (the engine is not used).
  template <RandomEngine Engine>
  [[nodiscard]] token_sequence sample(Engine& /*rng*/) const {
    return sample_;
  }
  /// @brief The prompt.
  [[nodiscard]] std::span<const token> prompt() const noexcept { return prompt_; }
  /// @brief T.
  [[nodiscard]] std::size_t horizon() const noexcept { return horizon_; }
  /// @brief The end token, if any.
  [[nodiscard]] std::optional<token> end_token() const noexcept { return end_token_; }

 private:
  token_sequence sample_;
  token_sequence prompt_;
  std::size_t horizon_;
  std::optional<token> end_token_;
};

// ---------------------------------------------------------------------------------------------
// Rejection sampling from p0
// ---------------------------------------------------------------------------------------------

/// @brief How a rejection sampler accepts a draw s ~ p0 (Zhao et al. 2024, Section 5).
enum class acceptance_rule {
  /// phi is an indicator (log phi is 0 or -inf): keep s when phi(s) = 1. Any other value throws.
  indicator,
  /// phi(s) = P(c | s) <= 1, a class probability: draw c ~ P(. | s) and keep s when c is the
  /// wanted class, i.e. accept when a uniform falls below P(c | s). Then sigma = p0(s | c).
  /// Also exact for phi = P(c | s)^beta (any phi <= 1). log phi > 0 throws.
  class_probability,
  /// phi(s) <= exp(log_bound): accept with probability phi(s) / exp(log_bound). A larger phi
  /// throws (the samples would not be exact).
  bounded,
};

/// @brief Options of a rejection sampler, used with designated initialisers.
struct rejection_options {
  std::size_t horizon = 0;                            ///< T (> 0)
  std::optional<token> end_token = std::nullopt;      ///< a token that finishes a sequence early, if any
  std::vector<token> end_tokens{};                    ///< more finishing tokens (smc_options::end_tokens' meaning)
  acceptance_rule rule = acceptance_rule::class_probability;  ///< how a draw is accepted
  double log_bound = 0.0;                             ///< log M with phi <= M (used by acceptance_rule::bounded)
  std::size_t batch = 256;                            ///< p0 draws per batch (the sampler's K, > 0)
  std::size_t budget = 1'000'000;                     ///< the most p0 draws over the sampler's life (> 0)
};

/// @brief Exact samples from sigma = p0 phi / Z by rejection from p0 (Zhao et al. 2024,
/// Section 5): draw s ~ p0, accept with probability phi(s) / M. Models TargetedExactSampler.
///
/// Draws come in batches from the library's own sampler (twisted_smc with the base proposal, no
/// twist and no resampling: each particle is an exact p0 sample, drawn from the model's rows
/// renormalised); accepted draws wait in a queue that sample() pops. The expected number of
/// draws per sample is M / Z, so a potential that is zero almost everywhere needs a large
/// budget: once the budget is spent with no sample queued, sample() throws tsmc::runtime_error
/// (never a hang).
///
/// The sampler holds references to the model and the potential (they must outlive it) and
/// drives the model, so the model must not be in use by another run while sample() refills.
/// @tparam Model a LanguageModel
/// @tparam Pot a Potential (its log_potential is called once per batch)
template <class Model, class Pot>
class rejection_sampler {
  static_assert(LanguageModel<Model>, "tsmc::rejection_sampler: Model must model tsmc::LanguageModel");
  static_assert(Potential<Pot>, "tsmc::rejection_sampler: Pot must model tsmc::Potential");

 public:
  /// @brief A rejection sampler for one prompt.
  /// @param model the base model p0
  /// @param potential phi
  /// @param prompt s_0 (copied)
  /// @param options horizon, end token, rule, bound, batch size and budget
  /// @throw tsmc::invalid_argument if the horizon, batch or budget is 0, the bound is not finite,
  /// or the end token or a prompt token is outside the model's vocabulary
  rejection_sampler(Model& model, Pot& potential, std::span<const token> prompt, rejection_options options)
      : model_(&model), potential_(&potential), prompt_(prompt.begin(), prompt.end()), options_(options) {
    constexpr const char* function = "rejection_sampler::rejection_sampler";
    check_positive(function, "options.horizon", options_.horizon);
    check_positive(function, "options.batch", options_.batch);
    check_positive(function, "options.budget", options_.budget);
    check_finite(function, "options.log_bound", options_.log_bound);
    check_tokens(prompt, model.vocab_size(), function, "prompt");
    validate(smc_options{.particles = 1, .horizon = options_.horizon, .end_token = options_.end_token,
                         .end_tokens = options_.end_tokens},
             model.vocab_size(), function);
  }

  /// @brief One exact sample from sigma, refilling the queue in batches as needed.
  /// @param rng the random engine (seeds each batch and draws the acceptance uniforms)
  /// @return the generated tokens of an accepted draw
  /// @throw tsmc::runtime_error when the budget is spent with no accepted draw left, or when a
  /// log phi is NaN, +inf, or violates the acceptance rule (phi > M)
  template <RandomEngine Engine>
  [[nodiscard]] token_sequence sample(Engine& rng) {
    while (queue_.empty()) {
      if (draws_ >= options_.budget)
        throw_runtime_error("rejection_sampler::sample", "draws",
                            "exhausted the budget of " + std::to_string(options_.budget) + " draws from p0 with " +
                                std::to_string(accepted_) + " accepted in total and none left (the potential may be "
                                "zero almost everywhere; raise rejection_options::budget)",
                            draws_);
      refill(rng);
    }
    token_sequence out = std::move(queue_.front());
    queue_.pop_front();
    return out;
  }

  /// @brief The fraction of p0 draws accepted so far (an estimate of Z / M); 0 before any draw.
  [[nodiscard]] double acceptance_rate() const noexcept {
    return draws_ == 0 ? 0.0 : static_cast<double>(accepted_) / static_cast<double>(draws_);
  }
  /// @brief The number of p0 draws so far.
  [[nodiscard]] std::size_t draws() const noexcept { return draws_; }
  /// @brief The number of accepted draws so far (returned or queued).
  [[nodiscard]] std::size_t accepted() const noexcept { return accepted_; }
  /// @brief The number of accepted draws waiting in the queue.
  [[nodiscard]] std::size_t queued() const noexcept { return queue_.size(); }
  /// @brief The total draw budget.
  [[nodiscard]] std::size_t budget() const noexcept { return options_.budget; }
  /// @brief The prompt.
  [[nodiscard]] std::span<const token> prompt() const noexcept { return prompt_; }
  /// @brief T.
  [[nodiscard]] std::size_t horizon() const noexcept { return options_.horizon; }
  /// @brief The end token, if any.
  [[nodiscard]] std::optional<token> end_token() const noexcept { return options_.end_token; }
  /// @brief The further end tokens (rejection_options::end_tokens).
  [[nodiscard]] std::span<const token> end_tokens() const noexcept { return options_.end_tokens; }
  /// @brief The options.
  [[nodiscard]] const rejection_options& options() const noexcept { return options_; }

 private:
  template <RandomEngine Engine>
  void refill(Engine& rng) {
    constexpr const char* function = "rejection_sampler::sample";
    const std::size_t batch = std::min(options_.batch, options_.budget - draws_);
    no_twist twist;
    detail::unit_potential unit;
    twisted_smc<Model, no_twist, detail::unit_potential, multinomial, never_trigger> smc(
        *model_, twist, unit,
        smc_options{.particles = batch, .horizon = options_.horizon, .proposal = proposal_type::base,
                    .end_token = options_.end_token, .end_tokens = options_.end_tokens});
    smc_result draws = smc.run(std::span<const token>(prompt_), rng);
    draws_ += batch;
    log_phi_.assign(batch, 0.0);
    potential_->log_potential(std::span<const token_sequence>(draws.sequences), std::span<double>(log_phi_));
    const double log_bound = options_.rule == acceptance_rule::bounded ? options_.log_bound : 0.0;
    constexpr double slack = 1e-12;  // rounding in a classifier's log-probability
    for (std::size_t k = 0; k < batch; ++k) {
      const double log_phi = log_phi_[k];
      if (std::isnan(log_phi) || log_phi == std::numeric_limits<double>::infinity())
        throw_runtime_error(function, "log phi of a draw from p0", "must not be NaN or +inf", log_phi);
      bool accept = false;
      switch (options_.rule) {
        case acceptance_rule::indicator:
          if (log_phi != 0.0 && log_phi != neg_inf)
            throw_runtime_error(function, "log phi of a draw from p0",
                                "must be 0 or -inf for acceptance_rule::indicator", log_phi);
          accept = log_phi == 0.0;
          break;
        case acceptance_rule::class_probability:
        case acceptance_rule::bounded: {
          const double log_ratio = log_phi - log_bound;
          if (log_ratio > slack)
            throw_runtime_error(function, "log phi of a draw from p0",
                                "must not exceed the bound log M = " + detail::to_text(log_bound) +
                                    " (the samples would not be exact)",
                                log_phi);
          accept = log_ratio >= 0.0 || (log_ratio > neg_inf && std::log(uniform_open01(rng)) < log_ratio);
          break;
        }
      }
      if (accept) {
        queue_.push_back(std::move(draws.sequences[k]));
        ++accepted_;
      }
    }
  }

  Model* model_;
  Pot* potential_;
  token_sequence prompt_;
  rejection_options options_;
  std::deque<token_sequence> queue_;
  std::vector<double> log_phi_;
  std::size_t draws_ = 0;
  std::size_t accepted_ = 0;
};

/// @brief A rejection sampler for an indicator potential (accept when phi(s) = 1).
/// @param model the base model p0
/// @param potential an indicator (log phi is 0 or -inf)
/// @param prompt s_0
/// @param options horizon, end token, batch and budget (the rule is set to indicator)
/// @return the sampler
/// @throw tsmc::invalid_argument as rejection_sampler's constructor
template <class Model, class Pot>
[[nodiscard]] rejection_sampler<Model, Pot> indicator_rejection_sampler(Model& model, Pot& potential,
                                                                        std::span<const token> prompt,
                                                                        rejection_options options) {
  options.rule = acceptance_rule::indicator;
  return rejection_sampler<Model, Pot>(model, potential, prompt, options);
}

/// @brief A rejection sampler for a class-probability potential phi(s) = P(c | s): draw s ~ p0,
/// then c ~ P(. | s), keep s when c is the wanted class.
/// @param model the base model p0
/// @param potential log phi = log P(c | s) <= 0
/// @param prompt s_0
/// @param options horizon, end token, batch and budget (the rule is set to class_probability)
/// @return the sampler
/// @throw tsmc::invalid_argument as rejection_sampler's constructor
template <class Model, class Pot>
[[nodiscard]] rejection_sampler<Model, Pot> class_rejection_sampler(Model& model, Pot& potential,
                                                                    std::span<const token> prompt,
                                                                    rejection_options options) {
  options.rule = acceptance_rule::class_probability;
  return rejection_sampler<Model, Pot>(model, potential, prompt, options);
}

// ---------------------------------------------------------------------------------------------
// Infilling: the joint sampler and the likelihood potential
// ---------------------------------------------------------------------------------------------

/// @brief One draw of the joint infilling sampler: an observation o (the continuation) and an
/// exact sample of the prefix from sigma(. | o).
struct infilling_sample {
  token_sequence prefix;       ///< s_{1:T}, an exact draw from sigma(s | o) proportional to p0(s) p0(o | s)
  token_sequence observation;  ///< o = s_{T+1:T+c}, a draw from the marginal p0(o | prompt)
};

/// @brief Options of the joint infilling sampler.
struct infilling_options {
  std::size_t horizon = 0;       ///< T, the length of the prefix to infill (> 0)
  std::size_t continuation = 0;  ///< c, the length of the observed continuation (> 0)
  std::size_t batch = 256;       ///< joint draws per batch (> 0)
};

/// @brief The joint ("BDMC trick") sampler for infilling (Zhao et al. 2024, Section 5): draw
/// s_{1:T+c} ~ p0 jointly and split it; the continuation o = s_{T+1:T+c} is the observation and
/// the prefix s_{1:T} is an exact sample from sigma(. | o) with phi(s) = p0(o | prompt, s). One
/// exact sample per observation.
///
/// Draws come in batches from twisted_smc (base proposal, no twist, no resampling, horizon
/// T + c), so the model must accept prompt + T + c tokens. No end token: every draw has the full
/// length. Holds a reference to the model (it must outlive the sampler).
/// @tparam Model a LanguageModel
template <class Model>
class infilling_joint_sampler {
  static_assert(LanguageModel<Model>, "tsmc::infilling_joint_sampler: Model must model tsmc::LanguageModel");

 public:
  /// @brief A joint sampler for one prompt.
  /// @param model the base model p0
  /// @param prompt s_0 (copied)
  /// @param options T, c and the batch size
  /// @throw tsmc::invalid_argument if T, c or the batch size is 0, or a prompt token is outside [0, V)
  infilling_joint_sampler(Model& model, std::span<const token> prompt, infilling_options options)
      : model_(&model), prompt_(prompt.begin(), prompt.end()), options_(options) {
    constexpr const char* function = "infilling_joint_sampler::infilling_joint_sampler";
    check_positive(function, "options.horizon", options_.horizon);
    check_positive(function, "options.continuation", options_.continuation);
    check_positive(function, "options.batch", options_.batch);
    check_tokens(prompt, model.vocab_size(), function, "prompt");
  }

  /// @brief One joint draw: an observation and an exact prefix for it.
  /// @param rng the random engine
  /// @return the prefix (T tokens) and the observation (c tokens)
  template <RandomEngine Engine>
  [[nodiscard]] infilling_sample draw(Engine& rng) {
    if (queue_.empty()) refill(rng);
    infilling_sample out = std::move(queue_.front());
    queue_.pop_front();
    return out;
  }

  /// @brief n joint draws.
  /// @param n the number of observations
  /// @param rng the random engine
  /// @return n independent draws
  template <RandomEngine Engine>
  [[nodiscard]] std::vector<infilling_sample> draw(std::size_t n, Engine& rng) {
    std::vector<infilling_sample> out;
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) out.push_back(draw(rng));
    return out;
  }

  /// @brief The prompt.
  [[nodiscard]] std::span<const token> prompt() const noexcept { return prompt_; }
  /// @brief T.
  [[nodiscard]] std::size_t horizon() const noexcept { return options_.horizon; }
  /// @brief c.
  [[nodiscard]] std::size_t continuation() const noexcept { return options_.continuation; }
  /// @brief The number of joint draws so far.
  [[nodiscard]] std::size_t draws() const noexcept { return draws_; }

 private:
  template <RandomEngine Engine>
  void refill(Engine& rng) {
    const std::size_t T = options_.horizon;
    no_twist twist;
    detail::unit_potential unit;
    twisted_smc<Model, no_twist, detail::unit_potential, multinomial, never_trigger> smc(
        *model_, twist, unit,
        smc_options{.particles = options_.batch, .horizon = T + options_.continuation, .proposal = proposal_type::base});
    smc_result r = smc.run(std::span<const token>(prompt_), rng);
    draws_ += options_.batch;
    for (auto& s : r.sequences) {
      infilling_sample sample;
      sample.prefix.assign(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(T));
      sample.observation.assign(s.begin() + static_cast<std::ptrdiff_t>(T), s.end());
      queue_.push_back(std::move(sample));
    }
  }

  Model* model_;
  token_sequence prompt_;
  infilling_options options_;
  std::deque<infilling_sample> queue_;
  std::size_t draws_ = 0;
};

/// @brief The infilling potential phi(s_{1:T}) = p0(o | prompt, s_{1:T}) = prod_j p0(o_j |
/// prompt, s, o_{<j}) for a fixed continuation o (Zhao et al. 2024, Section 1). Then
/// Z(o) = p0(o | prompt), the continuation's marginal.
///
/// Evaluated with a model that answers single queries, next_log_probs(prompt, prefix, out)
/// (like testing::tabular_model): the sampler's own model is mid-run when the potential is
/// called, so it cannot be used. c queries per sequence. Holds a reference to the model.
/// @tparam QueryModel a type with vocab_size() and next_log_probs(prompt, prefix, out) writing V
/// normalised log-probabilities
template <class QueryModel>
class infilling_potential {
 public:
  /// @brief The potential of one observation.
  /// @param model the query model (must outlive the potential)
  /// @param prompt s_0 (copied)
  /// @param observation o, the continuation (copied)
  /// @throw tsmc::invalid_argument if the observation is empty or a token of the observation or
  /// the prompt is outside [0, V)
  infilling_potential(const QueryModel& model, std::span<const token> prompt, std::span<const token> observation)
      : model_(&model), prompt_(prompt.begin(), prompt.end()), observation_(observation.begin(), observation.end()) {
    constexpr const char* function = "infilling_potential::infilling_potential";
    check_positive(function, "observation.size()", observation_.size());
    const std::size_t vocab = model.vocab_size();
    check_tokens(observation_, vocab, function, "observation");
    check_tokens(prompt, vocab, function, "prompt");
  }

  /// @brief log phi of one sequence: sum_j log p0(o_j | prompt, s, o_{<j}).
  /// @param sequence the generated tokens s_{1:T}
  /// @return log p0(o | prompt, s)
  [[nodiscard]] double log_value(std::span<const token> sequence) const {
    const std::size_t vocab = model_->vocab_size();
    token_sequence context(sequence.begin(), sequence.end());
    context.reserve(sequence.size() + observation_.size());
    std::vector<double> row(vocab);
    double total = 0.0;
    for (const token o : observation_) {
      model_->next_log_probs(std::span<const token>(prompt_), std::span<const token>(context), std::span<double>(row));
      total += row[static_cast<std::size_t>(o)];
      context.push_back(o);
    }
    return total;
  }

  /// @brief out[k] = log phi(sequences[k]).
  /// @throw tsmc::invalid_argument if out.size() != sequences.size()
  void log_potential(std::span<const token_sequence> sequences, std::span<double> out) const {
    check_size("infilling_potential::log_potential", "out.size()", out.size(), "sequences.size()", sequences.size());
    for (std::size_t k = 0; k < sequences.size(); ++k) out[k] = log_value(sequences[k]);
  }

  /// @brief The observation o.
  [[nodiscard]] std::span<const token> observation() const noexcept { return observation_; }

 private:
  const QueryModel* model_;
  token_sequence prompt_;
  token_sequence observation_;
};

}  // namespace tsmc
