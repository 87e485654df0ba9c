#pragma once
/// @file
/// @brief The one training loop every twist-learning objective shares: updates, evaluation with
/// the bounds and KL estimators, progress lines, a history (CSV / JSON), checkpoints and
/// observers that can stop training.

#include <tsmc/bounds/estimator.hpp>
#include <tsmc/bounds/kl.hpp>
#include <tsmc/core/error.hpp>
#include <tsmc/core/file_output.hpp>
#include <tsmc/core/log_math.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/learning/objectives.hpp>
#include <tsmc/learning/parameter_io.hpp>
#include <tsmc/learning/problem.hpp>
#include <tsmc/resampling/triggers.hpp>
#include <tsmc/smc/sampler.hpp>
#include <tsmc/twists/trainable.hpp>

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace tsmc {

/// @brief What an evaluation measured (NaN where not measured).
struct evaluation {
  double lower = std::numeric_limits<double>::quiet_NaN();       ///< lower bound on log Z (SMC)
  double upper = std::numeric_limits<double>::quiet_NaN();       ///< upper bound on log Z (conditional SMC)
  double kl_q_sigma = std::numeric_limits<double>::quiet_NaN();  ///< KL(q || sigma) of the twisted proposal
  double kl_sigma_q = std::numeric_limits<double>::quiet_NaN();  ///< KL(sigma || q) of the twisted proposal
  double seconds = 0.0;                                          ///< wall time of the evaluation
};

/// @brief One row of a training history.
struct training_record {
  std::size_t update = 0;                ///< updates done (0: before training)
  double loss = std::numeric_limits<double>::quiet_NaN();  ///< the objective's loss on this update's batch
  double ess = std::numeric_limits<double>::quiet_NaN();   ///< the ESS of this update's sampling run
  double seconds = 0.0;                  ///< wall time since training started
  std::optional<evaluation> evaluated;   ///< the evaluation after this update, if one ran
};

/// @brief A training run's history: one record per update (and one for update 0 when evaluated).
struct training_history {
  std::string objective;                  ///< the objective's name
  std::vector<training_record> records;   ///< in order
  bool stopped_by_observer = false;       ///< an observer stopped training early

  /// @brief Writes CSV: update,loss,ess,seconds,lower,upper,kl_q_sigma,kl_sigma_q (empty cells
  /// where not measured).
  void write_csv(std::ostream& out) const {
    out << "objective,update,loss,ess,seconds,lower,upper,kl_q_sigma,kl_sigma_q\n";
    char buffer[64];
    auto cell = [&](double x) {
      if (std::isnan(x)) return std::string();
      std::snprintf(buffer, sizeof buffer, "%.17g", x);
      return std::string(buffer);
    };
    for (const auto& r : records) {
      out << objective << ',' << r.update << ',' << cell(r.loss) << ',' << cell(r.ess) << ',' << cell(r.seconds);
      if (r.evaluated)
        out << ',' << cell(r.evaluated->lower) << ',' << cell(r.evaluated->upper) << ',' << cell(r.evaluated->kl_q_sigma)
            << ',' << cell(r.evaluated->kl_sigma_q);
      else
        out << ",,,,";
      out << '\n';
    }
  }

  /// @brief Writes JSON: {"objective": ..., "records": [{"update": ..., ...}, ...]} (null where not
  /// measured, or where a value is infinite).
  void write_json(std::ostream& out) const {
    char buffer[64];
    auto number = [&](double x) {
      if (!std::isfinite(x)) return std::string("null");
      std::snprintf(buffer, sizeof buffer, "%.17g", x);
      return std::string(buffer);
    };
    out << "{\"objective\": \"" << objective << "\", \"stopped_by_observer\": " << (stopped_by_observer ? "true" : "false")
        << ", \"records\": [";
    for (std::size_t i = 0; i < records.size(); ++i) {
      const auto& r = records[i];
      out << (i ? ",\n  " : "\n  ") << "{\"update\": " << r.update << ", \"loss\": " << number(r.loss)
          << ", \"ess\": " << number(r.ess) << ", \"seconds\": " << number(r.seconds);
      if (r.evaluated)
        out << ", \"lower\": " << number(r.evaluated->lower) << ", \"upper\": " << number(r.evaluated->upper)
            << ", \"kl_q_sigma\": " << number(r.evaluated->kl_q_sigma)
            << ", \"kl_sigma_q\": " << number(r.evaluated->kl_sigma_q);
      out << "}";
    }
    out << "\n]}\n";
  }
};

/// @brief Options of train().
struct training_options {
  std::size_t updates = 100;              ///< number of updates (> 0)
  std::size_t evaluate_every = 0;         ///< evaluate before training, every n updates and at the end (0: never)
  std::size_t progress_every = 0;         ///< a progress line every n updates (0: none)
  std::ostream* progress = nullptr;       ///< where progress lines go (nullptr: nowhere)
  std::filesystem::path checkpoint{};     ///< parameter file written every checkpoint_every updates and at the end
  std::size_t checkpoint_every = 0;       ///< 0: only at the end (when checkpoint is set)
  /// @brief Polyak-Ruppert averaging: at the end, the parameters become the mean of the iterates
  /// after each of the last n updates (0: off). Stochastic gradients leave the iterates jittering
  /// around the optimum, most for rarely visited prefixes; their mean is far closer. An error or
  /// an observer's stop before the end leaves the last iterate.
  std::size_t average_last = 0;
};

/// @brief No evaluation.
struct no_evaluator {};

/// @brief Evaluates a twist with the bounds (twisted SMC at K particles, conditional SMC seeded
/// with exact samples) and the KL estimators of its twist-induced proposal (Eq. 23), log Z from
/// the bounds' midpoint; when the lower bound is -inf (a run with Zhat = 0) the KLs are left NaN.
/// @tparam Problem a learning_problem
/// @tparam Exact an ExactSampler of the problem's target
template <class Problem, class Exact>
class bounds_evaluator {
 public:
  /// @brief Options: particles and runs of the bounds, samples of the KLs.
  struct options_type {
    std::size_t particles = 64;        ///< K of the bounds' runs
    std::size_t runs = 32;             ///< runs per bound
    std::size_t kl_samples = 512;      ///< samples from q and from sigma for the KLs
  };

  /// @brief An evaluator over the problem's model, twist and potential.
  /// @throw tsmc::invalid_argument "tsmc::bounds_evaluator: ..." if options.particles, runs or
  /// kl_samples is 0
  bounds_evaluator(Problem& problem, Exact& exact, options_type options)
      : problem_(&problem), exact_(&exact), options_(checked(options)),
        smc_(problem.model(), problem.twist(), problem.potential(),
             smc_options{.particles = options.particles,
                         .horizon = problem.options().horizon,
                         .proposal = proposal_type::twisted,
                         .end_token = problem.options().end_token,
                         .end_tokens = problem.options().end_tokens},
             systematic{}, ess_below(0.5)) {}

  /// @brief Evaluates the twist now.
  template <RandomEngine Engine>
  evaluation operator()(Engine& rng) {
    const auto start = std::chrono::steady_clock::now();
    problem_->twist().set_recording(false);
    evaluation e;
    const log_z_bounds b = estimate_bounds(smc_, problem_->prompt(), *exact_, options_.runs, rng);
    e.lower = b.lower.mean;
    e.upper = b.upper.mean;
    if (std::isfinite(e.lower) && std::isfinite(e.upper)) {
      const kl_estimate kl = estimate_kl(problem_->model(), problem_->twist(), problem_->potential(), problem_->prompt(),
                                         *exact_, log_z_reference::from_bounds(b),
                                         kl_options{.horizon = problem_->options().horizon,
                                                    .proposal = proposal_type::twisted,
                                                    .end_token = problem_->options().end_token,
                                                    .end_tokens = problem_->options().end_tokens,
                                                    .proposal_samples = options_.kl_samples,
                                                    .exact_samples = options_.kl_samples,
                                                    .batch = std::min<std::size_t>(options_.kl_samples, 256)},
                                         rng);
      e.kl_q_sigma = kl.q_sigma.value;
      e.kl_sigma_q = kl.sigma_q.value;
    }
    e.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return e;
  }

 private:
  // Runs before the sampler is built, whose own check of particles would name twisted_smc.
  static options_type checked(const options_type& options) {
    check_positive("bounds_evaluator", "options.particles", options.particles);
    check_positive("bounds_evaluator", "options.runs", options.runs);
    check_positive("bounds_evaluator", "options.kl_samples", options.kl_samples);
    return options;
  }

  Problem* problem_;
  Exact* exact_;
  options_type options_;
  twisted_smc<typename std::remove_cvref_t<decltype(std::declval<Problem&>().model())>,
              typename std::remove_cvref_t<decltype(std::declval<Problem&>().twist())>,
              typename std::remove_cvref_t<decltype(std::declval<Problem&>().potential())>, systematic,
              ess_below_trigger>
      smc_;
};

namespace detail {

template <class Observer>
bool notify_update(Observer& observer, const training_record& record) {
  if constexpr (requires { { observer.on_update(record) } -> std::convertible_to<bool>; })
    return static_cast<bool>(observer.on_update(record));
  else if constexpr (requires { observer.on_update(record); })
    observer.on_update(record);
  return false;
}

inline void print_progress(std::ostream& out, const std::string& objective, const training_record& r) {
  char line[256];
  std::snprintf(line, sizeof line, "%s update %6zu  loss %12.6g  ess %8.2f  %8.1f s", objective.c_str(), r.update,
                r.loss, r.ess, r.seconds);
  out << line;
  if (r.evaluated) {
    std::snprintf(line, sizeof line, "  log Z in [%.4f, %.4f]  KL(q||s) %.4f  KL(s||q) %.4f", r.evaluated->lower,
                  r.evaluated->upper, r.evaluated->kl_q_sigma, r.evaluated->kl_sigma_q);
    out << line;
  }
  out << '\n' << std::flush;
}

}  // namespace detail

/// @brief Trains the problem's twist with an objective and an optimiser.
///
/// Each update: zero the gradient, draw a batch, accumulate the loss's gradient, check that the
/// loss and every gradient are finite, then one optimiser step. A non-finite loss or gradient
/// stops training with a tsmc::runtime_error naming the update and the objective; the parameters
/// are those of the last good update. Observers' on_update(const training_record&) may return
/// true to stop.
/// @param problem a learning_problem
/// @param objective ctl, rl, sixo, fudge or dpg (or any type with sample / accumulate)
/// @param optimizer an optimiser with step(parameter blocks), e.g. tsmc::adam
/// @param options updates, evaluation, progress, checkpoints
/// @param rng the random engine
/// @param evaluate a callable evaluation(Engine&) (e.g. bounds_evaluator), or no_evaluator
/// @param observers optional on_update hooks
/// @return the history
/// @throw tsmc::invalid_argument for 0 updates; tsmc::runtime_error as above
template <class Problem, class Objective, class Optimizer, RandomEngine Engine, class Evaluator = no_evaluator,
          class... Observers>
training_history train(Problem& problem, Objective& objective, Optimizer& optimizer, const training_options& options,
                       Engine& rng, Evaluator&& evaluate = {}, Observers&&... observers) {
  constexpr const char* function = "train";
  constexpr bool evaluates = !std::is_same_v<std::remove_cvref_t<Evaluator>, no_evaluator>;
  check_positive(function, "options.updates", options.updates);
  training_history history;
  history.objective = Objective::name;
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  auto& twist = problem.twist();
  check_argument(options.average_last <= options.updates, function, "options.average_last",
                 "must be at most options.updates " + std::to_string(options.updates), options.average_last);
  // A checkpoint that cannot be written is found now, not after the whole training.
  if (!options.checkpoint.empty() && !detail::can_create_file_next_to(options.checkpoint))
    throw_runtime_error(function, "options.checkpoint",
                        "must name a file in an existing, writable directory (checked before the first update)",
                        options.checkpoint.string());
  std::vector<Eigen::VectorXd> average_sums;

  if constexpr (evaluates) {
    if (options.evaluate_every > 0) {
      training_record r;
      r.evaluated = evaluate(rng);
      r.seconds = elapsed();
      history.records.push_back(r);
      if (options.progress) detail::print_progress(*options.progress, history.objective, r);
    }
  }
  for (std::size_t update = 1; update <= options.updates; ++update) {
    twist.zero_gradient();
    auto batch = objective.sample(problem, rng);
    const objective_step step = objective.accumulate(problem, batch, rng);
    twist.set_recording(false);
    if (!std::isfinite(step.loss))
      throw_runtime_error(function, std::string("the ") + Objective::name + " loss at update " + std::to_string(update),
                          "must be finite (the parameters are those of the last good update)", step.loss);
    auto blocks = twist.parameters();
    for (const auto& block : blocks)
      if (!block.gradient.allFinite())
        throw_runtime_error(function, std::string("the ") + Objective::name + " gradient of block '" + block.name +
                                          "' at update " + std::to_string(update),
                            "must be finite (the parameters are those of the last good update)", "NaN or inf");
    optimizer.step(blocks);
    if (options.average_last > 0 && update + options.average_last > options.updates) {
      average_sums.resize(blocks.size());
      for (std::size_t i = 0; i < blocks.size(); ++i) {
        if (average_sums[i].size() == 0) average_sums[i] = Eigen::VectorXd::Zero(blocks[i].values.size());
        average_sums[i] += blocks[i].values;
      }
      if (update == options.updates)
        for (std::size_t i = 0; i < blocks.size(); ++i)
          blocks[i].values = average_sums[i] / static_cast<double>(options.average_last);
    }

    training_record r;
    r.update = update;
    r.loss = step.loss;
    r.ess = step.ess;
    if constexpr (evaluates) {
      if (options.evaluate_every > 0 && (update % options.evaluate_every == 0 || update == options.updates))
        r.evaluated = evaluate(rng);
    }
    r.seconds = elapsed();
    history.records.push_back(r);
    if (options.progress && ((options.progress_every > 0 && update % options.progress_every == 0) || r.evaluated))
      detail::print_progress(*options.progress, history.objective, r);
    if (!options.checkpoint.empty() && options.checkpoint_every > 0 && update % options.checkpoint_every == 0)
      save_parameters(options.checkpoint, twist.parameters());
    if ((detail::notify_update(observers, r) || ...)) {
      history.stopped_by_observer = true;
      break;
    }
  }
  if (!options.checkpoint.empty()) save_parameters(options.checkpoint, twist.parameters());
  return history;
}

}  // namespace tsmc
