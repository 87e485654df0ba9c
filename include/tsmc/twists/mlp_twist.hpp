#pragma once
/// @file
/// @brief tsmc::mlp_twist: the paper's twist head, features -> (linear, or ReLU layers) -> V
/// outputs = log psi_t(prefix, v) for every candidate v at once; a tsmc::TrainableTwist.

#include <tsmc/core/concepts.hpp>
#include <tsmc/core/error.hpp>
#include <tsmc/core/parallel.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/core/types.hpp>
#include <tsmc/twists/features.hpp>
#include <tsmc/twists/trainable.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace tsmc {

/// @brief Options of tsmc::mlp_twist (validated by its constructor).
struct mlp_twist_options {
  std::size_t vocab_size = 0;     ///< V, the number of outputs (the model's vocabulary)
  std::size_t max_steps = 0;      ///< the largest step t the twist accepts (size of the step's one-hot)
  std::size_t hidden_layers = 0;  ///< 0 (a linear head) to 3 ReLU hidden layers
  std::size_t width = 64;         ///< the width of every hidden layer (unused when hidden_layers == 0)
  std::uint64_t seed = 0;         ///< the seed of the hidden layers' initial weights
  /// @brief Compute the output layer's forward product (K x fan_in times fan_in x V) in float
  /// from a float copy of W_L, about twice as fast as double for large V; the parameters, the
  /// gradients and everything else stay double. The copy is refreshed by the first log_twist
  /// after each parameters() call (write parameters through blocks obtained after the last
  /// log_twist, as train() and load_parameters do).
  bool float_output = false;
  /// @brief The rank r of the output layer: 0 (the default) for a full fan_in x V layer; r > 0 for
  /// a low-rank layer W_L = A B, A fan_in x r ("head.output.factor") and B r x V
  /// ("head.output.weight"), which costs (fan_in + V) r multiply-adds a particle instead of
  /// fan_in V (r at most min(fan_in, V)). float_output then applies to the r x V product.
  std::size_t output_rank = 0;
};

/// @brief A twist head: log psi_t(s_{1:t-1}, v) = y_v(x) for every candidate v at once
/// (Zhao et al. 2024, Section 4; the twist enters the proposal through Eq. 14).
///
/// The input of particle k at step t is x = [f_k, onehot(t)]: the featurizer's d features of its
/// prefix, then the one-hot of the step (size max_steps), so one set of parameters serves every
/// t (the paper's parameter sharing across steps). Then either
/// - hidden_layers == 0: y = W_0^T x + b_0 (a linear head), or
/// - L = hidden_layers ReLU layers h_l = max(0, W_l^T h_{l-1} + b_l) of width `width`, then
///   y = W_L^T h_{L-1} + b_L.
///
/// With mlp_twist_options::output_rank = r > 0 the output layer is low-rank: y = B^T (A^T x) + b_L,
/// z = A^T x of size r (Zhao et al. 2024 use a full layer; the factorisation is this library's
/// option for large vocabularies, where the full layer costs as much as the model's classifier).
///
/// Blocks (parameters(), column-major): "head.hidden<l>.weight" (fan_in x width) and
/// "head.hidden<l>.bias" (width x 1) for l < L; with a low-rank output "head.output.factor"
/// (fan_in x r, A); "head.output.weight" (fan_in x V, or r x V: B, when low-rank) and
/// "head.output.bias" (V x 1); then the featurizer's blocks if it is trainable. The first
/// layer's fan_in is d + max_steps; its rows d .. d + max_steps - 1 are the step's weights
/// (of A when the head is linear and low-rank).
///
/// Initialisation: the output layer's weight (B when low-rank) and bias are zero, so psi = 1
/// exactly at first (the twisted proposal starts as the base model). Hidden weights are
/// He-normal, N(0, 2 / fan_in), drawn from xoshiro256ss(seed) with tsmc::standard_normal layer
/// by layer in column-major order; hidden biases are zero; a low-rank factor A is N(0, 1 / fan_in),
/// drawn after the hidden layers (so that B gets a gradient from the first update).
///
/// Precision: parameters, features and activations are double, so that the backward pass can be
/// checked against finite differences to 1e-6 and the sampler's weights telescope exactly. With
/// mlp_twist_options::float_output the output layer's forward product runs in float (its result
/// still written to the double K x V matrix; the sampler's weights use those values and stay exact).
///
/// Finished particles (ctx.active[k] == 0; an empty ctx.active means all active) get rows of 0
/// and contribute nothing to any gradient.
///
/// Recording: after set_recording(true), each log_twist call stores, keyed by ctx.step, the
/// step's input features (inactive rows zeroed), the hidden activations, the active flags and
/// the featurizer's record: K x (d + L * width + r) doubles, never a K x V matrix. accumulate_dense /
/// accumulate_sparse back-propagate through the head (and into a trainable featurizer) from that
/// record, never calling the model. They use the recorded activations and the current weights:
/// accumulate before updating the parameters, and record a fresh run after each update.
///
/// The featurizers shipped keep no per-particle state, so the twist has no start / append /
/// reorder hooks. Parameter blocks are views of this object's storage: call parameters() again
/// after moving or copying the twist.
/// @tparam Featurizer a featurizer (tsmc::model_features, tsmc::prefix_features,
/// tsmc::conditional_features, or one modelling tsmc::TwistFeaturizer)
template <class Featurizer>
class mlp_twist {
 public:
  /// @brief The featurizer type.
  using featurizer_type = Featurizer;

  /// @brief A head over a featurizer, initialised as in the class documentation.
  /// @param featurizer the featurizer (moved in); its feature_size() is d
  /// @param options vocab_size > 0, max_steps > 0, hidden_layers in 0..3, width > 0 when
  /// hidden_layers > 0, output_rank at most min(fan_in of the output layer, vocab_size)
  /// @throw tsmc::invalid_argument naming the bad option, or if the featurizer's d is 0
  mlp_twist(Featurizer featurizer, const mlp_twist_options& options)
      : featurizer_(std::move(featurizer)), options_(options) {
    constexpr const char* function = "mlp_twist::mlp_twist";
    check_positive(function, "options.vocab_size", options.vocab_size);
    check_positive(function, "options.max_steps", options.max_steps);
    check_argument(options.hidden_layers <= 3, function, "options.hidden_layers", "must be 0, 1, 2 or 3",
                   options.hidden_layers);
    if (options.hidden_layers > 0) check_positive(function, "options.width", options.width);
    feature_size_ = static_cast<std::size_t>(featurizer_.feature_size());
    check_positive(function, "featurizer.feature_size()", feature_size_);

    const std::size_t output_fan_in = options.hidden_layers > 0 ? options.width : feature_size_ + options.max_steps;
    check_argument(options.output_rank <= std::min(output_fan_in, options.vocab_size), function, "options.output_rank",
                   "must be 0 (a full output layer) or at most min(fan_in of the output layer " +
                       std::to_string(output_fan_in) + ", vocab_size " + std::to_string(options.vocab_size) + ")",
                   options.output_rank);
    const std::size_t layers = options.hidden_layers + 1;
    weights_.resize(layers);
    biases_.resize(layers);
    weight_gradients_.resize(layers);
    bias_gradients_.resize(layers);
    default_engine engine(options.seed);
    Eigen::Index fan_in = static_cast<Eigen::Index>(feature_size_ + options.max_steps);
    const auto rank = static_cast<Eigen::Index>(options.output_rank);
    for (std::size_t l = 0; l < layers; ++l) {
      const bool output = l + 1 == layers;
      const auto fan_out = static_cast<Eigen::Index>(output ? options.vocab_size : options.width);
      if (output && rank > 0) {  // W_L = A B: A here, B (rank x V) below
        factor_.resize(fan_in, rank);
        detail::fill_normal(factor_, std::sqrt(1.0 / static_cast<double>(fan_in)), engine);
        factor_gradient_.setZero(fan_in, rank);
        fan_in = rank;
      }
      weights_[l].resize(fan_in, fan_out);
      if (output)
        weights_[l].setZero();
      else
        detail::fill_normal(weights_[l], std::sqrt(2.0 / static_cast<double>(fan_in)), engine);
      biases_[l].setZero(fan_out);
      weight_gradients_[l].setZero(fan_in, fan_out);
      bias_gradients_[l].setZero(fan_out);
      fan_in = fan_out;
    }
    records_.resize(options.max_steps + 1);
    scratch_.hidden.resize(options.hidden_layers);
  }

  /// @brief V, the number of candidates scored (checked by the sampler against the model).
  [[nodiscard]] std::size_t vocab_size() const noexcept { return options_.vocab_size; }
  /// @brief d, the featurizer's output size.
  [[nodiscard]] std::size_t feature_size() const noexcept { return feature_size_; }
  /// @brief The options it was built with.
  [[nodiscard]] const mlp_twist_options& options() const noexcept { return options_; }
  /// @brief The featurizer.
  [[nodiscard]] const Featurizer& featurizer() const noexcept { return featurizer_; }
  /// @brief The featurizer, mutable (e.g. to set a conditional featurizer's observation).
  [[nodiscard]] Featurizer& featurizer() noexcept { return featurizer_; }

  /// @brief Writes out(k, v) = log psi_t(prefix_k, v) for every particle and candidate (Zhao et
  /// al. 2024, Eq. 14's psi_t), 0 in the rows of finished particles; records the step when
  /// recording is on.
  /// @param ctx the step context (ctx.step in [1, max_steps])
  /// @param out K x V
  /// @throw tsmc::invalid_argument if ctx.step is outside [1, max_steps], out is not K x V, the
  /// model's vocabulary differs from V, ctx.active is neither empty nor of size K, or the
  /// featurizer rejects the context (e.g. a feature size that differs from the model's)
  template <class Model>
    requires TwistFeaturizer<Featurizer, Model>
  void log_twist(const step_context<Model>& ctx, log_prob_ref out) {
    constexpr const char* function = "mlp_twist::log_twist";
    const std::size_t K = ctx.prefixes.size();
    check_argument(ctx.step >= 1 && ctx.step <= options_.max_steps, function, "ctx.step",
                   "must be in [1, max_steps = " + std::to_string(options_.max_steps) + "]", ctx.step);
    check_size(function, "out.rows()", out.rows(), "the number of prefixes", K);
    check_size(function, "out.cols()", out.cols(), "the vocabulary size", options_.vocab_size);
    if (!ctx.active.empty()) check_size(function, "ctx.active.size()", ctx.active.size(), "the number of prefixes", K);
    if constexpr (requires { { ctx.model.vocab_size() } -> std::convertible_to<std::size_t>; })
      check_size(function, "ctx.model.vocab_size()", ctx.model.vocab_size(), "the twist's vocab_size", options_.vocab_size);

    step_record& rec = recording_ ? records_[ctx.step] : scratch_;
    rec.valid = false;
    rec.step = ctx.step;
    rec.active.assign(K, 1);
    if (!ctx.active.empty()) rec.active.assign(ctx.active.begin(), ctx.active.end());
    rec.input.resize(static_cast<Eigen::Index>(K), static_cast<Eigen::Index>(feature_size_));
    featurizer_.features(ctx, rec.input);
    if constexpr (TrainableFeaturizer<Featurizer>) {
      if (recording_) featurizer_.record(ctx, rec.features);
    }
    zero_inactive_rows(rec.input, rec.active);
    forward(rec, out);
    zero_inactive_rows(out, rec.active);
    rec.valid = recording_;
  }

  /// @brief Turns recording on or off (see the class documentation). Existing records are kept.
  /// @param on whether later log_twist calls record their step
  void set_recording(bool on) noexcept { recording_ = on; }

  /// @brief Whether log_twist records.
  [[nodiscard]] bool recording() const noexcept { return recording_; }

  /// @brief Forgets every record (their memory is kept for reuse).
  void clear_recording() noexcept {
    for (step_record& r : records_) r.valid = false;
  }

  /// @brief Whether step t has a record.
  /// @param step t
  /// @return true if a log_twist call recorded step t since the last clear_recording
  [[nodiscard]] bool has_record(std::size_t step) const noexcept {
    return step < records_.size() && records_[step].valid;
  }

  /// @brief The number of particles K recorded at step t (0 when step t has no record).
  /// @param step t
  /// @return K
  [[nodiscard]] std::size_t recorded_rows(std::size_t step) const noexcept {
    return has_record(step) ? records_[step].active.size() : 0;
  }

  /// @brief Sets every gradient (the featurizer's too) to zero.
  void zero_gradient() {
    for (auto& g : weight_gradients_) g.setZero();
    for (auto& g : bias_gradients_) g.setZero();
    factor_gradient_.setZero();
    if constexpr (TrainableFeaturizer<Featurizer>) featurizer_.zero_gradient();
  }

  /// @brief Adds sum_{k,v} C(k, v) d log psi_t(prefix_k, v) / d theta to the gradients, for the
  /// particles recorded at step t (rows of finished particles contribute nothing).
  /// @param step t, a recorded step
  /// @param coefficients C, K x V (K as recorded at step t)
  /// @throw tsmc::invalid_argument naming the function and the step if step t has no record, or
  /// if C is not K x V
  void accumulate_dense(std::size_t step, const_log_prob_ref coefficients) {
    constexpr const char* function = "mlp_twist::accumulate_dense";
    const step_record& rec = recorded(step, function);
    const auto K = static_cast<Eigen::Index>(rec.active.size());
    check_size(function, "coefficients.rows() at step " + std::to_string(step), coefficients.rows(),
               "the recorded number of particles", K);
    check_size(function, "coefficients.cols() at step " + std::to_string(step), coefficients.cols(),
               "the vocabulary size", options_.vocab_size);

    // Rows of finished particles are zeroed in a copy (only when there are some), so that even
    // non-finite coefficients there contribute nothing.
    bool all_active = true;
    for (const std::uint8_t a : rec.active) all_active = all_active && a != 0;
    const double* data = coefficients.data();
    if (!all_active) {
      masked_ = coefficients;
      zero_inactive_rows(masked_, rec.active);
      data = masked_.data();
    }
    const Eigen::Map<const log_prob_matrix, 0, Eigen::OuterStride<>> c(
        data, K, coefficients.cols(), Eigen::OuterStride<>(all_active ? coefficients.outerStride() : coefficients.cols()));

    const std::size_t L = options_.hidden_layers;
    const twist_feature_matrix& input = L == 0 ? rec.input : rec.hidden[L - 1];
    mask_.resize(K);
    for (Eigen::Index k = 0; k < K; ++k) mask_(k) = rec.active[static_cast<std::size_t>(k)] ? 1.0 : 0.0;
    if (low_rank()) {
      // y = z B + b_L: dB += z^T C, db += column sums of C, dz = C B^T, then A and below.
      detail::tiled_product(weight_gradients_[L], rec.low.transpose(), c, true);
      bias_gradients_[L] += (mask_.transpose() * c).transpose();
      grad_low_.resize(K, rec.low.cols());
      detail::tiled_product(grad_low_, c, weights_[L].transpose());
      zero_inactive_rows(grad_low_, rec.active);
      backward_factor(rec, step);
      return;
    }
    // Output layer: y = W_L^T h + b_L (h = [f, onehot(t)] when L == 0).
    Eigen::MatrixXd& W = weights_[L];
    Eigen::MatrixXd& gW = weight_gradients_[L];
    const auto n_in = input.cols();
    detail::tiled_product(gW.topRows(n_in), input.transpose(), c, true);
    const Eigen::RowVectorXd column_sums = mask_.transpose() * c;
    bias_gradients_[L] += column_sums.transpose();
    if (L == 0) gW.row(n_in + static_cast<Eigen::Index>(step) - 1) += column_sums;
    if (L == 0 && !TrainableFeaturizer<Featurizer>) return;
    grad_hidden_.resize(K, n_in);
    detail::tiled_product(grad_hidden_, c, W.topRows(n_in).transpose());
    zero_inactive_rows(grad_hidden_, rec.active);
    backward_hidden(rec, step);
  }

  /// @brief Adds sum_i value_i d log psi_t(prefix_{particle_i}, candidate_i) / d theta to the
  /// gradients (entries on finished particles contribute nothing; repeated entries add up).
  /// @param step t, a recorded step
  /// @param entries coefficients (particle < K recorded at step t, candidate in [0, V))
  /// @throw tsmc::invalid_argument naming the function and the step if step t has no record, or
  /// an entry's particle or candidate is out of range (nothing is accumulated then)
  void accumulate_sparse(std::size_t step, std::span<const sparse_coefficient> entries) {
    constexpr const char* function = "mlp_twist::accumulate_sparse";
    const step_record& rec = recorded(step, function);
    const std::size_t K = rec.active.size();
    for (std::size_t i = 0; i < entries.size(); ++i) {
      const std::string at = "entries[" + std::to_string(i) + "]";
      check_argument(entries[i].particle < K, function, at + ".particle at step " + std::to_string(step),
                     "must be below the recorded number of particles " + std::to_string(K), entries[i].particle);
      check_argument(entries[i].candidate >= 0 && static_cast<std::size_t>(entries[i].candidate) < options_.vocab_size,
                     function, at + ".candidate", "must be in [0, " + std::to_string(options_.vocab_size) + ")",
                     entries[i].candidate);
    }
    const std::size_t L = options_.hidden_layers;
    if (low_rank()) {
      // y_v = z . B(:, v) + b_v: dB(:, v) += C z^T, db_v += C, dz += C B(:, v)^T, then A and below.
      Eigen::MatrixXd& B = weights_[L];
      Eigen::MatrixXd& gB = weight_gradients_[L];
      grad_low_.setZero(static_cast<Eigen::Index>(K), rec.low.cols());
      for (const sparse_coefficient& e : entries) {
        if (!rec.active[e.particle]) continue;
        const auto k = static_cast<Eigen::Index>(e.particle);
        const auto v = static_cast<Eigen::Index>(e.candidate);
        gB.col(v) += e.value * rec.low.row(k).transpose();
        bias_gradients_[L](v) += e.value;
        grad_low_.row(k) += e.value * B.col(v).transpose();
      }
      backward_factor(rec, step);
      return;
    }
    const twist_feature_matrix& input = L == 0 ? rec.input : rec.hidden[L - 1];
    const auto n_in = input.cols();
    Eigen::MatrixXd& W = weights_[L];
    Eigen::MatrixXd& gW = weight_gradients_[L];
    const bool propagate = L > 0 || TrainableFeaturizer<Featurizer>;
    if (propagate) grad_hidden_.setZero(static_cast<Eigen::Index>(K), n_in);
    for (const sparse_coefficient& e : entries) {
      if (!rec.active[e.particle]) continue;
      const auto k = static_cast<Eigen::Index>(e.particle);
      const auto v = static_cast<Eigen::Index>(e.candidate);
      gW.col(v).head(n_in) += e.value * input.row(k).transpose();
      if (L == 0) gW(n_in + static_cast<Eigen::Index>(step) - 1, v) += e.value;
      bias_gradients_[L](v) += e.value;
      if (propagate) grad_hidden_.row(k) += e.value * W.col(v).head(n_in).transpose();
    }
    if (propagate) backward_hidden(rec, step);
  }

  /// @brief The parameter blocks (see the class documentation for names and shapes), viewing this
  /// object's storage: valid until the twist is moved, copied over or destroyed.
  /// @return the head's blocks, then the featurizer's
  [[nodiscard]] std::vector<parameter_block> parameters() {
    float_stale_ = true;  // the caller may write through the blocks
    std::vector<parameter_block> blocks;
    const std::size_t L = options_.hidden_layers;
    for (std::size_t l = 0; l <= L; ++l) {
      const std::string prefix = l == L ? std::string("head.output") : "head.hidden" + std::to_string(l);
      if (l == L && low_rank()) blocks.push_back(detail::matrix_block(prefix + ".factor", factor_, factor_gradient_));
      blocks.push_back(detail::matrix_block(prefix + ".weight", weights_[l], weight_gradients_[l]));
      blocks.push_back(parameter_block{prefix + ".bias", biases_[l].size(), 1,
                                       Eigen::Map<Eigen::VectorXd>(biases_[l].data(), biases_[l].size()),
                                       Eigen::Map<Eigen::VectorXd>(bias_gradients_[l].data(), bias_gradients_[l].size())});
    }
    if constexpr (TrainableFeaturizer<Featurizer>) {
      std::vector<parameter_block> more = featurizer_.parameters();
      for (auto& b : more) blocks.push_back(std::move(b));
    }
    return blocks;
  }

 private:
  using row_matrix = twist_feature_matrix;

  struct step_record {
    bool valid = false;
    std::size_t step = 0;
    std::vector<std::uint8_t> active;  // K flags
    row_matrix input;                  // K x d, inactive rows zero
    std::vector<row_matrix> hidden;    // L matrices K x width, post-ReLU, inactive rows zero
    row_matrix low;                    // K x r: z = A^T x of a low-rank output layer, inactive rows zero
    typename detail::featurizer_record<Featurizer>::type features{};
  };

  template <class Matrix>
  static void zero_inactive_rows(Matrix&& m, const std::vector<std::uint8_t>& active) {
    for (std::size_t k = 0; k < active.size(); ++k)
      if (!active[k]) m.row(static_cast<Eigen::Index>(k)).setZero();
  }

  // The forward pass from rec.input, writing rec.hidden and out.
  void forward(step_record& rec, log_prob_ref out) {
    const std::size_t L = options_.hidden_layers;
    const auto d = static_cast<Eigen::Index>(feature_size_);
    const auto t = static_cast<Eigen::Index>(rec.step);
    rec.hidden.resize(L);
    forward_hidden(rec);
    if (low_rank()) {
      forward_low_rank(rec, out);
      return;
    }
    if (L == 0) {
      // The output layer's input is [f, onehot(t)]: the one-hot adds row d + t - 1 of W_0 to the bias.
      step_bias_ = biases_[0].transpose() + weights_[0].row(d + t - 1);
      if (options_.float_output) {
        output_in_float(rec.input, d, out);
        out.rowwise() += step_bias_;
        return;
      }
      detail::tiled_product(out, rec.input, weights_[0].topRows(d));
      out.rowwise() += step_bias_;
      return;
    }
    if (options_.float_output)
      output_in_float(rec.hidden[L - 1], rec.hidden[L - 1].cols(), out);
    else
      detail::tiled_product(out, rec.hidden[L - 1], weights_[L]);
    out.rowwise() += biases_[L].transpose();
  }

  [[nodiscard]] bool low_rank() const noexcept { return options_.output_rank > 0; }

  // The hidden layers' forward pass from rec.input into rec.hidden (nothing when the head is
  // linear). Layer 0's input is [f, onehot(t)]: the one-hot adds row d + t - 1 of W_0 to the bias.
  void forward_hidden(step_record& rec) {
    const std::size_t L = options_.hidden_layers;
    if (L == 0) return;
    const auto d = static_cast<Eigen::Index>(feature_size_);
    const auto t = static_cast<Eigen::Index>(rec.step);
    step_bias_ = biases_[0].transpose() + weights_[0].row(d + t - 1);
    for (std::size_t l = 0; l < L; ++l) {
      row_matrix& h = rec.hidden[l];
      if (l == 0) {
        h.resize(rec.input.rows(), weights_[0].cols());
        detail::tiled_product(h, rec.input, weights_[0].topRows(d));
        h.rowwise() += step_bias_;
      } else {
        h.resize(rec.hidden[l - 1].rows(), weights_[l].cols());
        detail::tiled_product(h, rec.hidden[l - 1], weights_[l]);
        h.rowwise() += biases_[l].transpose();
      }
      h = h.cwiseMax(0.0);
      zero_inactive_rows(h, rec.active);
    }
  }

  // The output of a head with a low-rank output layer, after forward_hidden: z = x A (plus A's
  // step row when the head is linear), then out = z B + b_L.
  void forward_low_rank(step_record& rec, log_prob_ref out) {
    const std::size_t L = options_.hidden_layers;
    const auto d = static_cast<Eigen::Index>(feature_size_);
    const auto t = static_cast<Eigen::Index>(rec.step);
    const row_matrix& input = L == 0 ? rec.input : rec.hidden[L - 1];
    const auto n_in = input.cols();
    rec.low.resize(input.rows(), factor_.cols());
    detail::tiled_product(rec.low, input, factor_.topRows(n_in));
    if (L == 0) rec.low.rowwise() += factor_.row(d + t - 1);
    zero_inactive_rows(rec.low, rec.active);
    if (options_.float_output)
      output_in_float(rec.low, rec.low.cols(), out);
    else
      detail::tiled_product(out, rec.low, weights_[L]);
    out.rowwise() += biases_[L].transpose();
  }

  // Back-propagates grad_low_ (d(loss)/dz, rows of finished particles zero) into the factor A and
  // on through the hidden layers and the featurizer.
  void backward_factor(const step_record& rec, std::size_t step) {
    const std::size_t L = options_.hidden_layers;
    const twist_feature_matrix& input = L == 0 ? rec.input : rec.hidden[L - 1];
    const auto n_in = input.cols();
    detail::tiled_product(factor_gradient_.topRows(n_in), input.transpose(), grad_low_, true);
    if (L == 0) factor_gradient_.row(n_in + static_cast<Eigen::Index>(step) - 1) += grad_low_.colwise().sum();
    if (L == 0 && !TrainableFeaturizer<Featurizer>) return;
    grad_hidden_.resize(grad_low_.rows(), n_in);
    detail::tiled_product(grad_hidden_, grad_low_, factor_.topRows(n_in).transpose());
    zero_inactive_rows(grad_hidden_, rec.active);
    backward_hidden(rec, step);
  }

  // out = input * W_L.topRows(n_in), the product in float (the float copy refreshed if stale).
  void output_in_float(const row_matrix& input, Eigen::Index n_in, log_prob_ref out) {
    const std::size_t L = options_.hidden_layers;
    if (float_stale_ || float_weight_.cols() != weights_[L].cols()) {
      float_weight_ = weights_[L].topRows(n_in).template cast<float>();
      float_stale_ = false;
    }
    float_input_ = input.template cast<float>();
    float_out_.resize(float_input_.rows(), float_weight_.cols());
    detail::tiled_product(float_out_, float_input_, float_weight_);
    out = float_out_.template cast<double>();
  }

  // Back-propagates grad_hidden_ (the gradient with respect to the output layer's input, rows of
  // finished particles zero) through the hidden layers and into the featurizer.
  void backward_hidden(const step_record& rec, std::size_t step) {
    const std::size_t L = options_.hidden_layers;
    const auto d = static_cast<Eigen::Index>(feature_size_);
    for (std::size_t l = L; l-- > 0;) {
      // grad_hidden_ is d(loss)/d h_l; the ReLU passes it where h_l > 0.
      grad_pre_ = grad_hidden_.cwiseProduct((rec.hidden[l].array() > 0.0).template cast<double>().matrix());
      const row_matrix& input = l == 0 ? rec.input : rec.hidden[l - 1];
      const auto n_in = input.cols();
      detail::tiled_product(weight_gradients_[l].topRows(n_in), input.transpose(), grad_pre_, true);
      const Eigen::RowVectorXd sums = grad_pre_.colwise().sum();
      bias_gradients_[l] += sums.transpose();
      if (l == 0) weight_gradients_[0].row(d + static_cast<Eigen::Index>(step) - 1) += sums;
      if (l > 0 || TrainableFeaturizer<Featurizer>) {
        grad_hidden_.resize(grad_pre_.rows(), n_in);
        detail::tiled_product(grad_hidden_, grad_pre_, weights_[l].topRows(n_in).transpose());
      }
    }
    if constexpr (TrainableFeaturizer<Featurizer>) featurizer_.backward(rec.features, grad_hidden_);
  }

  const step_record& recorded(std::size_t step, const char* function) const {
    if (!has_record(step))
      throw_invalid_argument(function, "step", "must have been recorded (set_recording(true), then a run)", step);
    return records_[step];
  }

  Featurizer featurizer_;
  mlp_twist_options options_;
  std::size_t feature_size_ = 0;
  std::vector<Eigen::MatrixXd> weights_;           // l: fan_in x fan_out
  std::vector<Eigen::VectorXd> biases_;            // l: fan_out
  std::vector<Eigen::MatrixXd> weight_gradients_;  // same shapes
  std::vector<Eigen::VectorXd> bias_gradients_;
  Eigen::MatrixXd factor_;                         // A of a low-rank output layer: fan_in x r (empty when full)
  Eigen::MatrixXd factor_gradient_;
  bool recording_ = false;
  std::vector<step_record> records_;  // indexed by step, 0 unused
  step_record scratch_;               // the buffers of calls that do not record
  Eigen::RowVectorXd step_bias_;
  Eigen::VectorXd mask_;
  log_prob_matrix masked_;
  row_matrix grad_hidden_;
  row_matrix grad_pre_;
  row_matrix grad_low_;
  bool float_stale_ = true;                 // float_weight_ must be refreshed (float_output)
  Eigen::MatrixXf float_weight_;            // W_L's first fan_in rows in float
  Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> float_input_, float_out_;
};

}  // namespace tsmc
