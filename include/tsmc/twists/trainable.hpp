#pragma once
/// @file
/// @brief The TrainableTwist concept: a twist that records its inputs while a sampler runs and
/// later accumulates sum_{k,v} C(k, t, v) grad log psi_t(prefix_k, v) for coefficients C an
/// objective supplies, without calling the language model again; its parameters as flat blocks.

#include <tsmc/core/concepts.hpp>
#include <tsmc/core/types.hpp>

#include <Eigen/Core>

#include <concepts>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace tsmc {

/// @brief One block of trainable parameters as flat views of the twist's own storage: the
/// values an optimiser updates and the gradient accumulated for them (same size), with the
/// block's name and shape (written to parameter files and checked when reading them).
///
/// The views are Eigen::Map: copying a block makes another view of the same storage, but
/// assigning one block to another (`a = b`) copies b's numbers into a's storage. A block is valid
/// while its twist is not moved or resized: call parameters() again after moving a twist.
struct parameter_block {
  std::string name;                        ///< unique within the twist, e.g. "layer0.weight"
  Eigen::Index rows = 0;                   ///< shape, rows x cols == values.size()
  Eigen::Index cols = 0;                   ///< shape
  Eigen::Map<Eigen::VectorXd> values;      ///< the parameters (column-major flattening of rows x cols)
  Eigen::Map<Eigen::VectorXd> gradient;    ///< the accumulated gradient, same layout
};

/// @brief One coefficient of a sparse update: C(particle, candidate) at a recorded step.
struct sparse_coefficient {
  std::size_t particle = 0;  ///< the row (slot) recorded at that step
  token candidate = 0;       ///< the candidate token v (the column of log psi_t)
  double value = 0.0;        ///< C
};

/// @brief A TwistFunction that can be trained (Zhao et al. 2024, Section 4).
///
/// Protocol, for a learner:
/// 1. `set_recording(true)`; every later `log_twist(ctx, out)` call stores what the twist needs
///    to differentiate out(k, v) = log psi_t(prefix_k, v) later (its inputs: the model's features
///    it read, the prefixes' embeddings...), keyed by ctx.step; `clear_recording()` forgets them.
///    A second call for the same step replaces that step's record.
/// 2. `zero_gradient()`, then any number of `accumulate_dense(t, C)` (C is rows x V, one row per
///    particle recorded at step t) and `accumulate_sparse(t, entries)`, each adding
///    sum C(k, v) * d log psi_t(prefix_k, v) / d theta to the blocks' gradients. Rows of particles
///    that had finished at step t (ctx.active[k] == 0; their log psi rows are 0 and depend on no
///    parameter) contribute nothing: their dense coefficients (even NaN) and sparse entries are
///    ignored, not errors. A row or candidate outside the record is an error (nothing accumulated).
/// 3. An optimiser updates `parameters()`' values from their gradients.
/// Records are per slot as the sampler saw them: a learner that resamples must trace genealogies
/// itself (the library's learners use runs without resampling).
template <class W, class Model>
concept TrainableTwist =
    TwistFunction<W, Model> &&
    requires(W& w, const W& cw, bool on, std::size_t step, const_log_prob_ref dense,
             std::span<const sparse_coefficient> sparse) {
      { cw.vocab_size() } -> std::convertible_to<std::size_t>;
      w.set_recording(on);
      w.clear_recording();
      { cw.has_record(step) } -> std::convertible_to<bool>;
      w.zero_gradient();
      w.accumulate_dense(step, dense);
      w.accumulate_sparse(step, sparse);
      { w.parameters() } -> std::convertible_to<std::vector<parameter_block>>;
    };

}  // namespace tsmc
