#pragma once
/// @file
/// @brief tsmc::adam: the Adam optimiser (Kingma and Ba 2015) over a twist's parameter blocks,
/// with optional global gradient-norm clipping.

#include <tsmc/core/error.hpp>
#include <tsmc/twists/trainable.hpp>

#include <Eigen/Core>

#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace tsmc {

/// @brief Options of tsmc::adam (validated by its constructor).
struct adam_options {
  double learning_rate = 1e-3;     ///< alpha, the step size: > 0 and finite
  double beta1 = 0.9;              ///< the first moment's decay, in [0, 1)
  double beta2 = 0.999;            ///< the second moment's decay, in [0, 1)
  double epsilon = 1e-8;           ///< added to sqrt(v hat) in the denominator: > 0 and finite
  double max_gradient_norm = 0.0;  ///< clip the global gradient norm to this; 0 turns clipping off
};

/// @brief The Adam optimiser: a DESCENT step on the loss whose gradient the blocks hold.
///
/// The blocks' `gradient` is the gradient of a loss to MINIMISE; step() moves the values against
/// it. (A learner that accumulates the gradient of an objective to maximise, such as CTL's
/// ascent direction, negates it first.) With g the gradient of step n (n = 1, 2, ...), after
/// optional clipping g <- g * min(1, max_gradient_norm / ||g||) with ||g|| the Euclidean norm
/// over all blocks together:
///   m <- beta1 m + (1 - beta1) g,   v <- beta2 v + (1 - beta2) g^2,
///   theta <- theta - learning_rate * (m / (1 - beta1^n)) / (sqrt(v / (1 - beta2^n)) + epsilon),
/// elementwise, with the bias corrections 1 - beta^n.
///
/// The moment buffers are sized at the first step; later steps must pass blocks with the same
/// names and sizes in the same order (reset() forgets the buffers and the step count).
template <class Lazy = void>
class basic_adam {
 public:
  /// @brief An optimiser with the given options.
  /// @param options see adam_options
  /// @throw tsmc::invalid_argument if the learning rate is not positive and finite, a beta is
  /// outside [0, 1), epsilon is not positive and finite, or max_gradient_norm is negative or not
  /// finite
  explicit basic_adam(const adam_options& options = {}) : options_(options) {
    constexpr const char* function = "adam::adam";
    check_argument(options.learning_rate > 0.0 && std::isfinite(options.learning_rate), function,
                   "options.learning_rate", "must be positive and finite", options.learning_rate);
    check_argument(options.beta1 >= 0.0 && options.beta1 < 1.0, function, "options.beta1", "must be in [0, 1)",
                   options.beta1);
    check_argument(options.beta2 >= 0.0 && options.beta2 < 1.0, function, "options.beta2", "must be in [0, 1)",
                   options.beta2);
    check_argument(options.epsilon > 0.0 && std::isfinite(options.epsilon), function, "options.epsilon",
                   "must be positive and finite", options.epsilon);
    check_argument(options.max_gradient_norm >= 0.0 && std::isfinite(options.max_gradient_norm), function,
                   "options.max_gradient_norm", "must be >= 0 and finite (0 turns clipping off)",
                   options.max_gradient_norm);
  }

  /// @brief The options.
  [[nodiscard]] const adam_options& options() const noexcept { return options_; }

  /// @brief The number of steps taken since construction or the last reset().
  [[nodiscard]] std::size_t steps() const noexcept { return steps_; }

  /// @brief The global gradient norm seen by the last step, before clipping (0 before any step).
  [[nodiscard]] double last_gradient_norm() const noexcept { return last_norm_; }

  /// @brief Forgets the moments and the step count (the next step sizes the buffers afresh).
  void reset() noexcept {
    first_.clear();
    second_.clear();
    names_.clear();
    steps_ = 0;
    last_norm_ = 0.0;
  }

  /// @brief One descent step on every block's values from its gradient (see the class
  /// documentation). The gradients are read, not changed.
  /// @param blocks the parameter blocks (as a twist's parameters() returns them)
  /// @throw tsmc::invalid_argument if a block's values and gradient sizes differ or differ from
  /// rows x cols, or the block count, a name or a size differs from the first step's
  /// @throw tsmc::runtime_error naming the block and the index if a gradient entry is NaN or
  /// infinite; nothing (values, moments, step count) is changed then
  void step(std::span<parameter_block> blocks) {
    constexpr const char* function = "adam::step";
    for (const parameter_block& b : blocks) {
      check_size(function, "block '" + b.name + "' gradient.size()", b.gradient.size(), "its values.size()",
                 b.values.size());
      check_size(function, "block '" + b.name + "' values.size()", b.values.size(), "its rows x cols",
                 b.rows * b.cols);
    }
    if (steps_ > 0) {
      check_size(function, "the number of blocks", blocks.size(), "the first step's", names_.size());
      for (std::size_t i = 0; i < blocks.size(); ++i) {
        check_argument(blocks[i].name == names_[i], function, "blocks[" + std::to_string(i) + "].name",
                       "must equal the first step's '" + names_[i] + "'", blocks[i].name);
        check_size(function, "block '" + blocks[i].name + "' size", blocks[i].values.size(), "the first step's",
                   first_[i].size());
      }
    }
    // Every gradient is checked before anything is updated.
    double norm = 0.0;
    for (const parameter_block& b : blocks) {
      for (Eigen::Index i = 0; i < b.gradient.size(); ++i)
        if (!std::isfinite(b.gradient[i]))
          throw_runtime_error(function, "gradient of block '" + b.name + "' at index " + std::to_string(i),
                              "must be finite", b.gradient[i]);
      norm = std::hypot(norm, b.gradient.stableNorm());
    }
    if (steps_ == 0) {
      first_.clear();
      second_.clear();
      names_.clear();
      for (const parameter_block& b : blocks) {
        first_.push_back(Eigen::VectorXd::Zero(b.values.size()));
        second_.push_back(Eigen::VectorXd::Zero(b.values.size()));
        names_.push_back(b.name);
      }
    }
    last_norm_ = norm;
    const double scale =
        options_.max_gradient_norm > 0.0 && norm > options_.max_gradient_norm ? options_.max_gradient_norm / norm : 1.0;
    ++steps_;
    const double n = static_cast<double>(steps_);
    const double correction1 = 1.0 - std::pow(options_.beta1, n);
    const double correction2 = 1.0 - std::pow(options_.beta2, n);
    const double b1 = options_.beta1;
    const double b2 = options_.beta2;
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      Eigen::VectorXd& m = first_[i];
      Eigen::VectorXd& v = second_[i];
      const auto& g = blocks[i].gradient;
      m = b1 * m + ((1.0 - b1) * scale) * g;
      v = b2 * v + ((1.0 - b2) * scale * scale) * g.cwiseAbs2();
      blocks[i].values.array() -= options_.learning_rate * (m.array() / correction1) /
                                  ((v.array() / correction2).sqrt() + options_.epsilon);
    }
  }

  /// @brief One descent step (see the span overload).
  /// @param blocks the parameter blocks
  /// @throw as the span overload
  void step(std::vector<parameter_block>& blocks) { step(std::span<parameter_block>(blocks)); }

 private:
  adam_options options_;
  std::vector<Eigen::VectorXd> first_;
  std::vector<Eigen::VectorXd> second_;
  std::vector<std::string> names_;
  std::size_t steps_ = 0;
  double last_norm_ = 0.0;
};

/// @brief The library's adam: basic_adam is a template only so that its member
/// functions are compiled in the translation units that use them (docs/architecture.md, "Compile weight").
using adam = basic_adam<>;

}  // namespace tsmc
