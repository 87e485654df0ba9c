#pragma once
/// @file
/// @brief What twist learners run on: a model, a trainable twist, a potential and a prompt,
/// with the sampler runs they need (twisted SIS, base SIS, forced evaluation along given
/// sequences) and a recorder that keeps what each step of a run showed.

#include <tsmc/core/concepts.hpp>
#include <tsmc/core/error.hpp>
#include <tsmc/core/log_math.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/core/types.hpp>
#include <tsmc/resampling/triggers.hpp>
#include <tsmc/smc/options.hpp>
#include <tsmc/smc/result.hpp>
#include <tsmc/smc/sampler.hpp>
#include <tsmc/twists/trainable.hpp>

#include <Eigen/Core>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace tsmc {

/// @brief What a learner keeps of one step of a run (see weights_report).
struct recorded_step {
  std::size_t step = 0;                      ///< t
  bool psi_trainable = false;                ///< the twist's log psi_t was evaluated (not the potential's phi)
  std::vector<std::uint8_t> proposed;        ///< 1 where particle k drew a token at this step
  std::vector<token> tokens;                 ///< s_t
  std::vector<double> log_normalizers;       ///< the proposal's log normaliser (log Z^pi_t when twisted)
  std::vector<double> log_target_weights;    ///< log-weights targeting pi_t
  std::vector<double> log_psi_chosen;        ///< log psi_t(s_{1:t}) where proposed and psi_trainable
  std::vector<std::uint8_t> finished;        ///< 1 where particle k finished at this step
  std::vector<double> log_phi;               ///< log phi(s) where finished
  /// @brief K x V proposal probabilities q_t(v | s_{<t}) of the proposed rows (zero rows
  /// elsewhere); empty unless the recorder keeps them.
  log_prob_matrix proposal;
};

namespace detail {

/// Writes row k of the step's proposal probabilities q_t(v | s^k_{<t}) = exp(L + Psi - log Z)
/// (Psi only for a twisted proposal with the twist evaluated) into `row`, a row of a K x V
/// log_prob_matrix. The one expression every learner uses, so that a streamed pass and a recorded
/// one compute the same numbers bit for bit.
template <class Row>
void write_proposal_row(const weights_report& r, std::size_t k, Row&& row) {
  const auto i = static_cast<Eigen::Index>(k);
  const double log_z = r.log_normalizers[k];
  if (r.twisted && r.log_psi != nullptr)
    row = (r.log_p0.row(i) + r.log_psi->row(i)).array() - log_z;
  else
    row = r.log_p0.row(i).array() - log_z;
  row = row.array().exp();
}

}  // namespace detail

/// @brief An observer that records every step of a run (its on_weights hook).
///
/// Keeping the proposal rows costs K x V doubles per step; objectives that take expectations
/// over the next token (CTL's negatives, DPG) need them.
template <class Lazy = void>
class basic_step_recorder {
 public:
  /// @param keep_proposal keep the K x V proposal probabilities of every step
  explicit basic_step_recorder(bool keep_proposal = false) : keep_proposal_(keep_proposal) {}

  /// @brief Records one step.
  void on_weights(const weights_report& r) {
    recorded_step s;
    s.step = r.step;
    s.psi_trainable = r.log_psi != nullptr && !r.psi_is_phi;
    s.proposed.assign(r.proposed.begin(), r.proposed.end());
    s.tokens.assign(r.tokens.begin(), r.tokens.end());
    s.log_normalizers.assign(r.log_normalizers.begin(), r.log_normalizers.end());
    s.log_target_weights.assign(r.log_target_weights.begin(), r.log_target_weights.end());
    s.finished.assign(r.finished.begin(), r.finished.end());
    s.log_phi.assign(r.log_phi.begin(), r.log_phi.end());
    const std::size_t K = s.proposed.size();
    s.log_psi_chosen.assign(K, std::numeric_limits<double>::quiet_NaN());
    if (s.psi_trainable)
      for (std::size_t k = 0; k < K; ++k)
        if (s.proposed[k]) s.log_psi_chosen[k] = (*r.log_psi)(static_cast<Eigen::Index>(k), s.tokens[k]);
    if (keep_proposal_) {
      const auto V = r.log_p0.cols();
      s.proposal = log_prob_matrix::Zero(static_cast<Eigen::Index>(K), V);
      for (std::size_t k = 0; k < K; ++k) {
        if (!s.proposed[k] || !(s.log_normalizers[k] > neg_inf)) continue;
        detail::write_proposal_row(r, k, s.proposal.row(static_cast<Eigen::Index>(k)));
      }
    }
    steps_.push_back(std::move(s));
  }

  /// @brief The steps recorded, in order.
  [[nodiscard]] std::vector<recorded_step>& steps() noexcept { return steps_; }
  /// @brief Forgets the steps.
  void clear() noexcept { steps_.clear(); }

 private:
  bool keep_proposal_;
  std::vector<recorded_step> steps_;
};

/// @brief The library's step_recorder: basic_step_recorder is a template only so that its member
/// functions are compiled in the translation units that use them (docs/architecture.md, "Compile weight").
using step_recorder = basic_step_recorder<>;

/// @brief One run a learner recorded: its result and its steps. The twist's own records (set by
/// set_recording) belong to the last pass run.
struct recorded_pass {
  smc_result result;                  ///< the run's result (sequences, weights, log q)
  std::vector<recorded_step> steps;   ///< every step, in order

  /// @brief The number of steps at which particle k's twist value was evaluated and trainable.
  [[nodiscard]] std::size_t trainable_steps(std::size_t k) const {
    std::size_t n = 0;
    for (const auto& s : steps) n += (s.psi_trainable && s.proposed[k]) ? 1 : 0;
    return n;
  }
};

/// @brief Options of a learning problem.
struct learning_options {
  std::size_t batch = 64;                          ///< K, particles per sampling run (> 0)
  std::size_t horizon = 0;                         ///< T (> 0)
  std::optional<token> end_token = std::nullopt;   ///< the end token, if any
  std::vector<token> end_tokens{};                 ///< more end tokens (smc_options::end_tokens' meaning)
  bool check_normalization = true;                 ///< check the model's rows sum to 1 (see smc_options)
};

/// @brief A model, a trainable twist, a potential and a prompt, with the runs that learners use:
/// SIS with the twist-induced proposal (Eq. 14), SIS with q = p0, and forced evaluation along
/// given sequences (twisted_smc::run_forced), each recorded. Holds references: the model, twist
/// and potential must outlive it.
/// @tparam Model a LanguageModel
/// @tparam Twist a TrainableTwist for Model
/// @tparam Pot a Potential
template <class Model, class Twist, class Pot>
class learning_problem {
  static_assert(TrainableTwist<Twist, Model>,
                "tsmc::learning_problem: Twist must model tsmc::TrainableTwist (twists/trainable.hpp): log_twist, "
                "vocab_size, set_recording, clear_recording, has_record, zero_gradient, accumulate_dense, "
                "accumulate_sparse, parameters");

 public:
  /// @brief The sampler type of the learners' runs: SIS, no resampling.
  using sampler_type = twisted_smc<Model, Twist, Pot, multinomial, never_trigger>;

  /// @brief A problem over references to the user's objects.
  /// @throw tsmc::invalid_argument for a batch or horizon of 0, an end token outside the
  /// vocabulary, a prompt token outside it, or a twist whose vocabulary differs from the model's
  learning_problem(Model& model, Twist& twist, Pot& potential, std::span<const token> prompt,
                   learning_options options)
      : model_(model), twist_(twist), potential_(potential), prompt_(prompt.begin(), prompt.end()),
        options_(checked_options(model, twist, prompt, options)),
        twisted_(model, twist, potential, sampler_options(options, proposal_type::twisted)),
        base_(model, twist, potential, sampler_options(options, proposal_type::base)) {}

  /// @brief The model.
  [[nodiscard]] Model& model() noexcept { return model_; }
  /// @brief The twist being trained.
  [[nodiscard]] Twist& twist() noexcept { return twist_; }
  /// @brief The potential.
  [[nodiscard]] Pot& potential() noexcept { return potential_; }
  /// @brief The prompt s_0.
  [[nodiscard]] std::span<const token> prompt() const noexcept { return prompt_; }
  /// @brief The options.
  [[nodiscard]] const learning_options& options() const noexcept { return options_; }
  /// @brief The SIS sampler with the twist-induced proposal.
  [[nodiscard]] sampler_type& twisted_sampler() noexcept { return twisted_; }
  /// @brief The SIS sampler with q = p0.
  [[nodiscard]] sampler_type& base_sampler() noexcept { return base_; }

  /// @brief One SIS run of `batch` particles with the given proposal, recorded; the twist records
  /// its inputs (its previous records are cleared).
  /// @param observers more observers of the run (e.g. an objective accumulating while it runs),
  ///        called after the recorder at each step; the twist's record of step t exists when
  ///        their on_weights hook sees step t
  template <RandomEngine Engine, class... Observers>
  recorded_pass sample(proposal_type proposal, bool keep_proposal, Engine& rng, Observers&&... observers) {
    step_recorder recorder(keep_proposal);
    twist_.clear_recording();
    twist_.set_recording(true);
    recorded_pass pass;
    pass.result = (proposal == proposal_type::twisted ? twisted_ : base_).run(prompt_, rng, recorder, observers...);
    pass.steps = std::move(recorder.steps());
    return pass;
  }

  /// @brief A forced run of the twist-induced proposal along the given finished sequences,
  /// recorded: the twist's value and the proposal at every step of every sequence, at the
  /// current parameters; the twist records its inputs (its previous records are cleared).
  /// @throw tsmc::invalid_argument "tsmc::learning_problem::evaluate: ..." if sequences is empty
  /// or holds a sequence that is empty, longer than the horizon, unfinished (shorter without the
  /// end token, or with it before its end) or has a token outside [0, V)
  template <RandomEngine Engine>
  recorded_pass evaluate(std::span<const token_sequence> sequences, bool keep_proposal, Engine& rng) {
    check_sequences(sequences, "learning_problem::evaluate");
    step_recorder recorder(keep_proposal);
    twist_.clear_recording();
    twist_.set_recording(true);
    recorded_pass pass;
    pass.result = twisted_.run_forced(prompt_, sequences, rng, recorder);
    pass.steps = std::move(recorder.steps());
    return pass;
  }

 private:
  /// The constructor's checks, run before the samplers are built (whose own checks would name
  /// twisted_smc).
  static const learning_options& checked_options(const Model& model, const Twist& twist, std::span<const token> prompt,
                                                 const learning_options& o) {
    constexpr const char* function = "learning_problem";
    check_positive(function, "options.batch", o.batch);
    const std::size_t vocab = model.vocab_size();
    check_positive(function, "model.vocab_size()", vocab);
    validate(sampler_options(o, proposal_type::twisted), vocab, function);  // horizon and end token, as the samplers check them
    check_size(function, "twist.vocab_size()", twist.vocab_size(), "model.vocab_size()", vocab);
    check_tokens(prompt, vocab, function, "prompt");
    return o;
  }

  /// Checks that every sequence is a finished sequence of the horizon over the vocabulary.
  void check_sequences(std::span<const token_sequence> sequences, const char* function) const {
    check_positive(function, "sequences.size()", sequences.size());
    const std::size_t horizon = options_.horizon;
    const smc_options ends{.end_token = options_.end_token, .end_tokens = options_.end_tokens};
    for (std::size_t i = 0; i < sequences.size(); ++i) {
      const token_sequence& s = sequences[i];
      const std::string name = "sequences[" + std::to_string(i) + "]";
      check_argument(!s.empty() && s.size() <= horizon, function, name + ".size()",
                     "must be in [1, horizon = " + std::to_string(horizon) + "]", s.size());
      check_tokens(s, model_.vocab_size(), function, name);
      for (std::size_t j = 0; j + 1 < s.size(); ++j)
        check_argument(!is_end_token(ends, s[j]), function, name + "[" + std::to_string(j) + "]",
                       "must not be the end token before the sequence's last position", s[j]);
      check_argument(s.size() == horizon || is_end_token(ends, s.back()), function, name,
                     "shorter than the horizon must end with the end token; its length is", s.size());
    }
  }

  static smc_options sampler_options(const learning_options& o, proposal_type proposal) {
    return smc_options{.particles = o.batch,
                       .horizon = o.horizon,
                       .proposal = proposal,
                       .end_token = o.end_token,
                       .end_tokens = o.end_tokens,
                       .check_normalization = o.check_normalization};
  }

  Model& model_;
  Twist& twist_;
  Pot& potential_;
  token_sequence prompt_;
  learning_options options_;
  sampler_type twisted_;
  sampler_type base_;
};

}  // namespace tsmc
