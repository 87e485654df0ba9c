#pragma once
/// @file
/// @brief Data-parallel twist training over MPI ranks: every rank holds the whole twist, samples
/// its own share of each update's batch from its own stream, accumulates the objective's loss and
/// gradient on it, and the gradients, the loss and the ESS are summed over the ranks with one
/// allreduce and divided by R; then every rank takes the same optimiser step on the same numbers,
/// so the parameters stay bit-identical across ranks after every update.
///
/// What the update equals: the mean of the R ranks' batch gradients. For objectives whose loss is
/// a mean over the batch's particles (RL, SIXO, FUDGE, and CTL / DPG with exact positives for
/// their positive phase) that is the gradient of the loss on the union batch of R K particles,
/// which one process would compute, up to the order of the floating-point sums (one process adds
/// the R K particles' terms in one order; here each rank sums its K and the allreduce adds the R
/// partial sums). For self-normalised objectives (CTL's negatives, DPG with SNIS weights) it is
/// the mean of R self-normalised estimates of K particles each (consistent, but not the estimate
/// from R K particles normalised together).
///
/// History, progress lines and checkpoints come from rank 0 only; evaluations run on rank 0 only
/// (with an engine of their own, so that rank 0's training stream stays that of the other ranks);
/// observers run on rank 0 and their stop decision is broadcast.

#include <tsmc/core/error.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/distributed/communicator.hpp>
#include <tsmc/learning/objectives.hpp>
#include <tsmc/learning/trainer.hpp>

#include <Eigen/Core>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace tsmc::distributed {

/// @brief The stream tags of data-parallel training: rank r samples from
/// default_engine(stream_seed(seed, training_stream, r)); rank 0 evaluates from
/// (seed, training_evaluation_stream, 0).
inline constexpr std::uint64_t training_stream = 0x747261696e000001ULL;
inline constexpr std::uint64_t training_evaluation_stream = 0x6576616c00000001ULL;

/// @brief The engine rank `rank` samples its share of every batch from.
[[nodiscard]] constexpr default_engine training_engine(std::uint64_t seed, std::size_t rank) noexcept {
  return default_engine(stream_seed(seed, training_stream, rank));
}

/// @brief Copies every block's gradient (in block order), then `extra`, into one buffer.
[[nodiscard]] inline std::vector<double> pack_gradients(std::span<const parameter_block> blocks,
                                                        std::span<const double> extra) {
  std::size_t n = extra.size();
  for (const auto& b : blocks) n += static_cast<std::size_t>(b.gradient.size());
  std::vector<double> out;
  out.reserve(n);
  for (const auto& b : blocks) out.insert(out.end(), b.gradient.data(), b.gradient.data() + b.gradient.size());
  out.insert(out.end(), extra.begin(), extra.end());
  return out;
}

/// @brief How data_parallel ships the gradient between ranks.
enum class gradient_transfer {
  /// As doubles: the update equals one process's on the union batch up to the order of sums.
  double_precision,
  /// As floats (half the bytes; the loss and the ESS stay doubles): each rank's gradient is
  /// rounded to float before the sum, so the update differs from the double form by float
  /// rounding (relative 2^-24 per entry and rank); the parameters stay identical on every rank.
  single_precision,
};

/// @brief An objective wrapper that makes any twist-learning objective data-parallel: sample()
/// is the inner objective's (this rank's share of the batch); accumulate() runs the inner
/// accumulate, then sums the twist's gradient, the loss and the ESS over the ranks (one
/// MPI_Allreduce of all of them together) and divides them by R. Use it through
/// distributed::train, which also sets up the ranks' streams and the rank-0-only outputs.
/// @tparam Objective ctl, rl, sixo, fudge, dpg or any type with name, sample and accumulate
template <class Objective>
class data_parallel {
 public:
  /// @brief The inner objective's name.
  static constexpr const char* name = Objective::name;
  /// @brief The inner objective's batch type.
  using batch = typename Objective::batch;

  /// @brief Wraps `objective` (not owned) for the ranks of `comm` (not owned).
  /// @param transfer the gradient's precision on the wire (gradient_transfer)
  data_parallel(communicator& comm, Objective& objective,
                gradient_transfer transfer = gradient_transfer::double_precision)
      : comm_(&comm), objective_(&objective), transfer_(transfer) {}

  /// @brief This rank's share of the batch (the inner objective's sample).
  template <class Problem, RandomEngine Engine>
  batch sample(Problem& problem, Engine& rng) {
    return objective_->sample(problem, rng);
  }

  /// @brief The inner accumulate on this rank's share, then the mean over the ranks of the
  /// gradient, the loss and the ESS (identical on every rank afterwards).
  template <class Problem, RandomEngine Engine>
  objective_step accumulate(Problem& problem, batch& b, Engine& rng) {
    const objective_step local = objective_->accumulate(problem, b, rng);
    auto blocks = problem.twist().parameters();
    const double extra[2] = {local.loss, local.ess};
    buffer_ = pack_gradients(std::span<const parameter_block>(blocks), extra);
    const double scale = 1.0 / static_cast<double>(comm_->size());
    if (transfer_ == gradient_transfer::single_precision) {
      // The gradient as floats, the loss and the ESS as doubles (two collectives).
      const std::size_t n = buffer_.size() - 2;
      float_buffer_.resize(n);
      for (std::size_t i = 0; i < n; ++i) float_buffer_[i] = static_cast<float>(buffer_[i]);
      comm_->allreduce_sum(std::span<float>(float_buffer_));
      comm_->allreduce_sum(std::span<double>(buffer_).subspan(n));
      for (std::size_t i = 0; i < n; ++i) buffer_[i] = static_cast<double>(float_buffer_[i]);
    } else {
      comm_->allreduce_sum(std::span<double>(buffer_));
    }
    std::size_t at = 0;
    for (auto& block : blocks) {
      for (Eigen::Index i = 0; i < block.gradient.size(); ++i) block.gradient[i] = buffer_[at++] * scale;
    }
    return {buffer_[at] * scale, buffer_[at + 1] * scale};
  }

  /// @brief The inner objective.
  [[nodiscard]] Objective& inner() noexcept { return *objective_; }

 private:
  communicator* comm_;
  Objective* objective_;
  gradient_transfer transfer_;
  std::vector<double> buffer_;
  std::vector<float> float_buffer_;
};

/// @brief Sends rank 0's parameter values to every rank (so that training starts from the same
/// point everywhere, whatever each rank initialised).
/// @throw tsmc::invalid_argument if the ranks' parameter counts differ (checked with one
/// collective first, so that no rank waits forever)
template <class Twist>
void broadcast_parameters(communicator& comm, Twist& twist) {
  auto blocks = twist.parameters();
  std::uint64_t n = 0;
  for (const auto& b : blocks) n += static_cast<std::uint64_t>(b.values.size());
  std::uint64_t root_n = n;
  comm.broadcast(root_n);
  const bool same = root_n == n;
  std::uint64_t any_differs = comm.allreduce_max(same ? 0 : 1);
  if (any_differs)
    throw_invalid_argument("distributed::broadcast_parameters", "the twist's parameter count",
                           "must be the same on every rank (rank 0 has " + std::to_string(root_n) + ")", n);
  std::vector<double> values;
  values.reserve(n);
  for (const auto& b : blocks) values.insert(values.end(), b.values.data(), b.values.data() + b.values.size());
  comm.broadcast(std::span<double>(values));
  std::size_t at = 0;
  for (auto& b : blocks)
    for (Eigen::Index i = 0; i < b.values.size(); ++i) b.values[i] = values[at++];
}

namespace detail {

/// Rank 0 calls the user's observers; their stop decision is broadcast (one int per update).
template <class... Observers>
struct root_observers {
  communicator* comm;
  std::tuple<Observers&...> observers;

  bool on_update(const training_record& record) {
    std::uint8_t stop = 0;
    if (comm->is_root())
      stop = std::apply([&](auto&... o) { return (tsmc::detail::notify_update(o, record) || ...); }, observers) ? 1 : 0;
    comm->broadcast(stop);
    return stop != 0;
  }
};

}  // namespace detail

/// @brief Data-parallel train() (learning/trainer.hpp) over the ranks of `comm`: rank 0's
/// parameters are broadcast first, each rank samples its share of every batch from its own
/// stream training_engine(seed, rank), the gradient, loss and ESS are averaged over the ranks
/// (data_parallel), and every rank takes the same optimiser step: the parameters are
/// bit-identical across ranks after every update. Progress lines, checkpoints and evaluations
/// happen on rank 0 only (evaluations from the engine (seed, training_evaluation_stream, 0));
/// observers run on rank 0 and a stop is broadcast. Call it on every rank with the same
/// arguments (each rank its own problem, objective and optimiser over the same model and twist
/// shape). `transfer` chooses the gradient's precision on the wire (single_precision halves the
/// allreduce; gradient_transfer says what it changes).
/// @param comm the ranks
/// @param transfer the gradient's precision on the wire (gradient_transfer)
/// @param problem this rank's learning_problem (its batch is this rank's share K)
/// @param objective the objective
/// @param optimizer the optimiser (the same options on every rank)
/// @param options as train(); progress and checkpoint are used on rank 0 only
/// @param seed the seed of the ranks' streams
/// @param evaluate an evaluator (called on rank 0 only; other ranks' records have empty
///        evaluations), or no_evaluator
/// @param observers on_update hooks (rank 0)
/// @return the history: rank 0's is the history of the run (losses and ESS are the means over
///         the ranks, the same on every rank; evaluations only on rank 0)
/// @throw tsmc::invalid_argument for 0 updates (on every rank, before any communication); any
///        later error (train()'s non-finite averaged loss or gradient, which every rank meets
///        alike, or an exception on one rank alone) aborts the job with the rank's message, so
///        that no rank waits forever in a collective
template <class Problem, class Objective, class Optimizer, class Evaluator = no_evaluator, class... Observers>
training_history train(communicator& comm, gradient_transfer transfer, Problem& problem, Objective& objective,
                       Optimizer& optimizer, training_options options, std::uint64_t seed, Evaluator&& evaluate = {},
                       Observers&&... observers) {
  constexpr const char* function = "distributed::train";
  check_positive(function, "options.updates", options.updates);
  constexpr bool evaluates = !std::is_same_v<std::remove_cvref_t<Evaluator>, no_evaluator>;
  run_or_abort(comm, function, [&] { broadcast_parameters(comm, problem.twist()); });
  if (!comm.is_root()) {
    options.progress = nullptr;
    options.checkpoint.clear();
  }
  default_engine rng = training_engine(seed, comm.rank());
  default_engine evaluation_rng(stream_seed(seed, training_evaluation_stream, 0));
  data_parallel<Objective> parallel(comm, objective, transfer);
  auto run = [&](auto&&... wrapped_observers) {
    if constexpr (evaluates) {
      auto root_evaluator = [&](default_engine&) -> evaluation {
        if (!comm.is_root()) return evaluation{};
        return evaluate(evaluation_rng);
      };
      return tsmc::train(problem, parallel, optimizer, options, rng, root_evaluator, wrapped_observers...);
    } else {
      return tsmc::train(problem, parallel, optimizer, options, rng, no_evaluator{}, wrapped_observers...);
    }
  };
  // Errors that every rank meets alike (a non-finite averaged loss) would throw everywhere; an
  // error on one rank alone would leave the others waiting: abort the job in both cases, with the
  // rank's message.
  return run_or_abort(comm, function, [&] {
    if constexpr (sizeof...(Observers) > 0) {
      return run(detail::root_observers<std::remove_reference_t<Observers>...>{&comm, {observers...}});
    } else {
      return run();
    }
  });
}

/// @brief train() with the gradient shipped as doubles (gradient_transfer::double_precision):
/// see the overload above.
template <class Problem, class Objective, class Optimizer, class Evaluator = no_evaluator, class... Observers>
training_history train(communicator& comm, Problem& problem, Objective& objective, Optimizer& optimizer,
                       training_options options, std::uint64_t seed, Evaluator&& evaluate = {},
                       Observers&&... observers) {
  return train(comm, gradient_transfer::double_precision, problem, objective, optimizer, std::move(options), seed,
               std::forward<Evaluator>(evaluate), std::forward<Observers>(observers)...);
}

}  // namespace tsmc::distributed
