#pragma once
/// @file
/// @brief Featurizers for trainable twist heads: the per-particle input features of a twist head
/// at one step (tsmc::mlp_twist).
///
/// Featurizers:
/// - tsmc::model_features reads the model's last hidden state (`features()`, a model that
///   models tsmc::ModelWithFeatures); frozen: no gradient flows into the model.
/// - tsmc::prefix_features, for models without features: learned token embeddings pooled over the
///   whole generated prefix, concatenated with the embeddings of the last few tokens; trainable.
/// - tsmc::concat_features: two featurizers side by side; tsmc::model_and_prefix_features (the
///   model's features next to a learned summary of the whole prefix) is the recommended default
///   for a model with features (see "Choosing a featurizer" below).
/// - tsmc::conditional_features, for infilling: an inner featurizer's output concatenated with
///   learned embeddings of an observation sequence; trainable.
///
/// Choosing a featurizer: a twist head can only learn what its features let it tell apart, and
/// the optimal twist psi*_t(s_{1:t}) = E[phi | s_{1:t}] (Eq. 11) depends on whatever part of the
/// prefix the target depends on. model_features sees what the model conditions on: for a
/// transformer its last hidden state (in principle the whole prefix, in practice what the model
/// found useful for the next token), for the n-gram only the last N - 1 words. A target that looks
/// at the whole sequence ("contains the word X", a classifier of the whole story) then needs
/// features of the whole prefix: with the n-gram's model_features a head cannot know that X was
/// generated three words ago, and CTL can end worse than no twist. prefix_features sees the whole
/// generated prefix (a mean of learned embeddings: which words occurred, and the last few words
/// exactly) but nothing of the prompt or of what the model knows. model_and_prefix_features gives
/// the head both, at the cost of e (1 + window) more inputs and one trainable e x V table; use it
/// unless the target is known to depend only on what the model's features carry. For infilling,
/// wrap the choice in conditional_features so that the head also sees the observation.
///
/// A featurizer F for a model type Model (concept tsmc::TwistFeaturizer) has `feature_size()`
/// (d) and `features(ctx, out)` writing the K x d double matrix of the step's features. A
/// trainable featurizer (concept tsmc::TrainableFeaturizer) also has a `record_type`,
/// `record(ctx, rec)` storing what its gradient needs, `backward(rec, grad)` adding
/// sum_{k,j} grad(k, j) d out(k, j) / d theta to its gradients, `zero_gradient()` and
/// `parameters()`. None of these featurizers keeps per-particle state: each recomputes its
/// output from the step context, so they need no start / append / reorder hooks.

#include <tsmc/core/concepts.hpp>
#include <tsmc/core/error.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/core/types.hpp>
#include <tsmc/twists/trainable.hpp>

#include <Eigen/Core>

#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace tsmc {

/// @brief A K x d matrix of twist-head input features in double precision, row-major (one
/// particle's features contiguous). Double, not float: the heads' gradients are checked against
/// finite differences, which single precision would swamp.
using twist_feature_matrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// @brief A featurizer usable with model type Model: `feature_size()` and
/// `features(ctx, out)` writing the K x d features of the step's prefixes into out.
template <class F, class Model>
concept TwistFeaturizer =
    requires(F& f, const F& cf, const step_context<Model>& ctx, Eigen::Ref<twist_feature_matrix> out) {
      { cf.feature_size() } -> std::convertible_to<std::size_t>;
      f.features(ctx, out);
    };

/// @brief A featurizer with trainable parameters: it records what its gradient needs at a step
/// (`record(ctx, rec)` into a `record_type`), back-propagates a K x d gradient of its output
/// (`backward(rec, grad)`, adding to its parameters' gradients), and exposes
/// `zero_gradient()` and `parameters()` like a tsmc::TrainableTwist.
template <class F>
concept TrainableFeaturizer =
    requires(F& f, const typename F::record_type& rec, Eigen::Ref<const twist_feature_matrix> grad) {
      typename F::record_type;
      f.backward(rec, grad);
      f.zero_gradient();
      { f.parameters() } -> std::convertible_to<std::vector<parameter_block>>;
    };

namespace detail {

/// A parameter block viewing a column-major matrix and its gradient (same shape).
[[nodiscard]] inline parameter_block matrix_block(std::string name, Eigen::MatrixXd& values, Eigen::MatrixXd& gradient) {
  return parameter_block{std::move(name), values.rows(), values.cols(),
                         Eigen::Map<Eigen::VectorXd>(values.data(), values.size()),
                         Eigen::Map<Eigen::VectorXd>(gradient.data(), gradient.size())};
}

/// Fills a matrix with independent N(0, scale^2) values drawn from `engine` in column-major
/// order (tsmc's own Box-Muller normal, so the values are the same with every standard library).
inline void fill_normal(Eigen::MatrixXd& m, double scale, default_engine& engine) {
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = scale * standard_normal(engine);
}

/// Checks the output shape of a featurizer call.
template <class Model>
void check_feature_output(const step_context<Model>& ctx, Eigen::Index rows, Eigen::Index cols, std::size_t d,
                          const char* function) {
  check_size(function, "out.rows()", rows, "the number of prefixes", ctx.prefixes.size());
  check_size(function, "out.cols()", cols, "feature_size()", d);
}

/// The record type of a featurizer: its record_type when it is trainable, else an empty struct.
struct no_feature_record {};
template <class F>
struct featurizer_record {
  using type = no_feature_record;
};
template <TrainableFeaturizer F>
struct featurizer_record<F> {
  using type = typename F::record_type;
};

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// model_features
// ---------------------------------------------------------------------------------------------

/// @brief The model's own features (its last hidden state, `ctx.model.features()`, K x d float),
/// converted to double. Frozen: no gradient flows into the model, and it has no parameters.
///
/// Works with any model that models tsmc::ModelWithFeatures. The size d is given at
/// construction and checked against the model's matrix at every call.
template <class Lazy = void>
class basic_model_features {
 public:
  /// @brief A featurizer of `feature_size` model features.
  /// @param feature_size d, the number of columns of the model's features()
  /// @throw tsmc::invalid_argument if feature_size is 0
  explicit basic_model_features(std::size_t feature_size) : size_(feature_size) {
    check_positive("model_features::model_features", "feature_size", feature_size);
  }

  /// @brief The feature size d.
  [[nodiscard]] std::size_t feature_size() const noexcept { return size_; }

  /// @brief Writes out = ctx.model.features() (K x d) converted to double.
  /// @param ctx the step context; its model must model tsmc::ModelWithFeatures
  /// @param out K x d
  /// @throw tsmc::invalid_argument if out is not K x d, or the model's features are not K x d
  /// (the message names the model's column count and the d given at construction)
  template <class Model>
    requires ModelWithFeatures<Model>
  void features(const step_context<Model>& ctx, Eigen::Ref<twist_feature_matrix> out) const {
    constexpr const char* function = "model_features::features";
    detail::check_feature_output(ctx, out.rows(), out.cols(), size_, function);
    const Eigen::Ref<const feature_matrix> f = ctx.model.features();
    check_size(function, "model.features().cols()", f.cols(), "the feature_size given at construction", size_);
    check_size(function, "model.features().rows()", f.rows(), "the number of prefixes", ctx.prefixes.size());
    out = f.template cast<double>();
  }

 private:
  std::size_t size_;
};

/// @brief The library's model_features: basic_model_features is a template only so that its member
/// functions are compiled in the translation units that use them (docs/architecture.md, "Compile weight").
using model_features = basic_model_features<>;

// ---------------------------------------------------------------------------------------------
// prefix_features
// ---------------------------------------------------------------------------------------------

/// @brief Options of tsmc::prefix_features.
struct prefix_features_options {
  std::size_t vocab_size = 0;      ///< V, the number of tokens embedded
  std::size_t embedding_size = 16; ///< e, the size of one token's embedding
  std::size_t window = 2;          ///< n, the number of last tokens embedded individually
  double init_scale = 0.1;         ///< the standard deviation of the embeddings' initial values
  std::uint64_t seed = 0;          ///< the seed of the initial embeddings
};

/// @brief Learned features of the whole generated prefix, for models without features().
///
/// With a learned embedding E (e x V, one column per token), particle k with generated prefix
/// s_{1:m} (m = t - 1 at step t; the prompt is not included) gets the e * (1 + n) features
///   [ (1/m) sum_{i=1..m} E[s_i],  E[s_m],  E[s_{m-1}],  ...,  E[s_{m-n+1}] ]
/// : the mean embedding over the whole prefix (zeros when m = 0), then the last n tokens' own
/// embeddings, most recent first, zeros where the prefix is shorter than n. Trainable: E is
/// one parameter block, "prefix.embedding" (e x V). Initialised N(0, init_scale^2) from
/// xoshiro256ss(seed) through tsmc::standard_normal, in column-major order.
template <class Lazy = void>
class basic_prefix_features {
 public:
  /// @brief What the gradient needs from one step: every particle's generated prefix.
  struct record_type {
    std::vector<token> tokens;         ///< all prefixes, concatenated
    std::vector<std::size_t> offsets;  ///< K + 1 offsets into tokens
  };

  /// @brief Embeddings initialised from the options.
  /// @param options vocab_size > 0, embedding_size > 0, init_scale finite and >= 0 (window may be 0)
  /// @throw tsmc::invalid_argument for a zero vocab_size or embedding_size, or a bad init_scale
  explicit basic_prefix_features(const prefix_features_options& options)
      : options_(options), embedding_(), gradient_() {
    constexpr const char* function = "prefix_features::prefix_features";
    check_positive(function, "options.vocab_size", options.vocab_size);
    check_positive(function, "options.embedding_size", options.embedding_size);
    check_argument(std::isfinite(options.init_scale) && options.init_scale >= 0.0, function, "options.init_scale",
                   "must be finite and >= 0", options.init_scale);
    embedding_.resize(static_cast<Eigen::Index>(options.embedding_size), static_cast<Eigen::Index>(options.vocab_size));
    default_engine engine(options.seed);
    detail::fill_normal(embedding_, options.init_scale, engine);
    gradient_.setZero(embedding_.rows(), embedding_.cols());
  }

  /// @brief The feature size d = embedding_size * (1 + window).
  [[nodiscard]] std::size_t feature_size() const noexcept {
    return options_.embedding_size * (1 + options_.window);
  }

  /// @brief The vocabulary size V.
  [[nodiscard]] std::size_t vocab_size() const noexcept { return options_.vocab_size; }

  /// @brief The options it was built with.
  [[nodiscard]] const prefix_features_options& options() const noexcept { return options_; }

  /// @brief Writes the features of every prefix of the step (see the class documentation).
  /// @param ctx the step context (ctx.prefixes is read; the model is not)
  /// @param out K x d
  /// @throw tsmc::invalid_argument if out is not K x d or a prefix token is outside [0, V)
  template <class Model>
  void features(const step_context<Model>& ctx, Eigen::Ref<twist_feature_matrix> out) const {
    constexpr const char* function = "prefix_features::features";
    detail::check_feature_output(ctx, out.rows(), out.cols(), feature_size(), function);
    const auto e = static_cast<Eigen::Index>(options_.embedding_size);
    for (std::size_t k = 0; k < ctx.prefixes.size(); ++k) {
      const token_sequence& prefix = ctx.prefixes[k];
      check_tokens(prefix, options_.vocab_size, function, "ctx.prefixes[" + std::to_string(k) + "]");
      auto row = out.row(static_cast<Eigen::Index>(k));
      auto pooled = row.segment(0, e);
      pooled.setZero();
      for (const token s : prefix) pooled += embedding_.col(s).transpose();
      if (!prefix.empty()) pooled /= static_cast<double>(prefix.size());
      for (std::size_t j = 0; j < options_.window; ++j) {
        auto slot = row.segment(e * static_cast<Eigen::Index>(1 + j), e);
        if (j < prefix.size())
          slot = embedding_.col(prefix[prefix.size() - 1 - j]).transpose();
        else
          slot.setZero();
      }
    }
  }

  /// @brief Stores every particle's prefix for backward.
  /// @param ctx the step context
  /// @param rec the record to overwrite
  template <class Model>
  void record(const step_context<Model>& ctx, record_type& rec) const {
    rec.tokens.clear();
    rec.offsets.assign(1, 0);
    for (const token_sequence& prefix : ctx.prefixes) {
      rec.tokens.insert(rec.tokens.end(), prefix.begin(), prefix.end());
      rec.offsets.push_back(rec.tokens.size());
    }
  }

  /// @brief Adds sum_{k,j} grad(k, j) d features(k, j) / d E to the embedding's gradient.
  /// @param rec the step's record
  /// @param grad K x d, the gradient of a scalar with respect to the step's features
  /// @throw tsmc::invalid_argument if grad is not K x d for the record's K
  void backward(const record_type& rec, Eigen::Ref<const twist_feature_matrix> grad) {
    constexpr const char* function = "prefix_features::backward";
    const std::size_t rows = rec.offsets.empty() ? 0 : rec.offsets.size() - 1;
    check_size(function, "grad.rows()", grad.rows(), "the recorded number of prefixes", rows);
    check_size(function, "grad.cols()", grad.cols(), "feature_size()", feature_size());
    const auto e = static_cast<Eigen::Index>(options_.embedding_size);
    for (std::size_t k = 0; k < rows; ++k) {
      const std::span<const token> prefix(rec.tokens.data() + rec.offsets[k], rec.offsets[k + 1] - rec.offsets[k]);
      const auto row = grad.row(static_cast<Eigen::Index>(k));
      if (!prefix.empty()) {
        const double inv = 1.0 / static_cast<double>(prefix.size());
        for (const token s : prefix) gradient_.col(s) += inv * row.segment(0, e).transpose();
      }
      for (std::size_t j = 0; j < options_.window && j < prefix.size(); ++j)
        gradient_.col(prefix[prefix.size() - 1 - j]) += row.segment(e * static_cast<Eigen::Index>(1 + j), e).transpose();
    }
  }

  /// @brief Sets the embedding's gradient to zero.
  void zero_gradient() { gradient_.setZero(); }

  /// @brief One block, "prefix.embedding" (e x V, column v the embedding of token v), viewing
  /// this object's storage (valid until it is moved, copied over or destroyed).
  /// @return the blocks
  [[nodiscard]] std::vector<parameter_block> parameters() {
    std::vector<parameter_block> blocks;
    blocks.push_back(detail::matrix_block("prefix.embedding", embedding_, gradient_));
    return blocks;
  }

 private:
  prefix_features_options options_;
  Eigen::MatrixXd embedding_;  // e x V
  Eigen::MatrixXd gradient_;   // e x V
};

/// @brief The library's prefix_features: basic_prefix_features is a template only so that its member
/// functions are compiled in the translation units that use them (docs/architecture.md, "Compile weight").
using prefix_features = basic_prefix_features<>;

// ---------------------------------------------------------------------------------------------
// concat_features
// ---------------------------------------------------------------------------------------------

/// @brief Two featurizers side by side: particle k's features are [first's d1 features, second's
/// d2 features] (d = d1 + d2). Trainable when either part is: the parameters are first's blocks,
/// then second's, and backward splits the gradient's columns between them. Neither part may keep
/// per-particle state (no featurizer here does).
/// @tparam First the left featurizer (e.g. tsmc::model_features)
/// @tparam Second the right featurizer (e.g. tsmc::prefix_features)
template <class First, class Second>
class concat_features {
 public:
  /// @brief The record: K and each trainable part's record (empty structs for frozen parts).
  struct record_type {
    std::size_t rows = 0;                                         ///< K at the recorded step
    typename detail::featurizer_record<First>::type first{};      ///< the first part's record
    typename detail::featurizer_record<Second>::type second{};    ///< the second part's record
  };

  /// @brief The two parts (moved in).
  concat_features(First first, Second second) : first_(std::move(first)), second_(std::move(second)) {}

  /// @brief d = d1 + d2.
  [[nodiscard]] std::size_t feature_size() const noexcept {
    return static_cast<std::size_t>(first_.feature_size()) + static_cast<std::size_t>(second_.feature_size());
  }
  /// @brief The first part.
  [[nodiscard]] const First& first() const noexcept { return first_; }
  /// @brief The second part.
  [[nodiscard]] const Second& second() const noexcept { return second_; }

  /// @brief Writes [first's features, second's features] for every particle.
  /// @throw tsmc::invalid_argument if out is not K x d, or as either part throws
  template <class Model>
    requires TwistFeaturizer<First, Model> && TwistFeaturizer<Second, Model>
  void features(const step_context<Model>& ctx, Eigen::Ref<twist_feature_matrix> out) const {
    detail::check_feature_output(ctx, out.rows(), out.cols(), feature_size(), "concat_features::features");
    const auto d1 = static_cast<Eigen::Index>(first_.feature_size());
    first_.features(ctx, out.leftCols(d1));
    second_.features(ctx, out.rightCols(out.cols() - d1));
  }

  /// @brief Stores K and each trainable part's record.
  template <class Model>
  void record(const step_context<Model>& ctx, record_type& rec) const {
    rec.rows = ctx.prefixes.size();
    if constexpr (TrainableFeaturizer<First>) first_.record(ctx, rec.first);
    if constexpr (TrainableFeaturizer<Second>) second_.record(ctx, rec.second);
  }

  /// @brief Adds the gradient's left d1 columns to the first part's parameters and the rest to
  /// the second's (frozen parts take nothing).
  /// @throw tsmc::invalid_argument if grad is not K x d for the record's K
  void backward(const record_type& rec, Eigen::Ref<const twist_feature_matrix> grad) {
    constexpr const char* function = "concat_features::backward";
    check_size(function, "grad.rows()", grad.rows(), "the recorded number of prefixes", rec.rows);
    check_size(function, "grad.cols()", grad.cols(), "feature_size()", feature_size());
    const auto d1 = static_cast<Eigen::Index>(first_.feature_size());
    if constexpr (TrainableFeaturizer<First>) first_.backward(rec.first, grad.leftCols(d1));
    if constexpr (TrainableFeaturizer<Second>) second_.backward(rec.second, grad.rightCols(grad.cols() - d1));
  }

  /// @brief Sets both parts' gradients to zero.
  void zero_gradient() {
    if constexpr (TrainableFeaturizer<First>) first_.zero_gradient();
    if constexpr (TrainableFeaturizer<Second>) second_.zero_gradient();
  }

  /// @brief The first part's blocks, then the second's (views of this object's storage).
  [[nodiscard]] std::vector<parameter_block> parameters() {
    std::vector<parameter_block> blocks;
    if constexpr (TrainableFeaturizer<First>) blocks = first_.parameters();
    if constexpr (TrainableFeaturizer<Second>) {
      std::vector<parameter_block> more = second_.parameters();
      for (auto& b : more) blocks.push_back(std::move(b));
    }
    return blocks;
  }

 private:
  mutable First first_;    // mutable: a part's features() need not be const
  mutable Second second_;
};

/// @brief The recommended featurizer for a model with features (see "Choosing a featurizer" in
/// this file's documentation): the model's own features next to prefix_features' learned summary
/// of the whole generated prefix (mean embedding and the last `window` tokens' embeddings).
using model_and_prefix_features = concat_features<model_features, prefix_features>;

/// @brief model_and_prefix_features from the model's feature size and prefix_features' options.
/// @param model_feature_size the model's features() width
/// @param prefix the options of the prefix summary (vocab_size is the model's V)
/// @throw tsmc::invalid_argument as model_features and prefix_features do
[[nodiscard]] inline model_and_prefix_features make_model_and_prefix_features(std::size_t model_feature_size,
                                                                              const prefix_features_options& prefix) {
  return model_and_prefix_features(model_features(model_feature_size), prefix_features(prefix));
}

// ---------------------------------------------------------------------------------------------
// conditional_features
// ---------------------------------------------------------------------------------------------

/// @brief Options of tsmc::conditional_features (the observation part).
struct conditional_features_options {
  std::size_t vocab_size = 0;          ///< V, the observation's vocabulary
  std::size_t observation_length = 0;  ///< c, the fixed length of every observation
  std::size_t embedding_size = 8;      ///< e, the size of one observation token's embedding
  double init_scale = 0.1;             ///< the standard deviation of the embeddings' initial values
  std::uint64_t seed = 0;              ///< the seed of the initial embeddings
};

/// @brief Features for infilling: an inner featurizer's output concatenated with learned
/// features of an observation sequence o_{1:c} (the continuation the twist conditions on).
///
/// Every particle gets [inner features, E_obs[o_1], ..., E_obs[o_c]]: one learned embedding
/// table E_obs (e x V, block "observation.embedding"), its columns for the observation's tokens
/// concatenated in position order (the position is carried by the slot), so
/// d = inner d + c * e. Trainable: E_obs, plus the inner featurizer's parameters if it has any
/// (listed first).
///
/// The observation: `set_observation(o)` sets it (copied; c tokens) before a run; to condition
/// on another observation, call set_observation again between runs (never during one). Each
/// step's record keeps the observation it was computed with, so a learner may change the
/// observation after a run and still back-propagate that run's records correctly.
/// @tparam Inner the featurizer of the prefix (tsmc::model_features, tsmc::prefix_features, ...)
template <class Inner>
class conditional_features {
 public:
  /// @brief The record: the observation used, K, and the inner featurizer's record (an empty
  /// struct when the inner featurizer has no parameters).
  struct record_type {
    std::vector<token> observation;                              ///< o_{1:c} at the recorded step
    std::size_t rows = 0;                                        ///< K at the recorded step
    typename detail::featurizer_record<Inner>::type inner{};     ///< the inner featurizer's record
  };

  /// @brief Wraps an inner featurizer and initialises the observation embeddings.
  /// @param inner the featurizer of the prefix (moved in)
  /// @param options vocab_size > 0, observation_length > 0, embedding_size > 0, init_scale finite
  /// and >= 0
  /// @throw tsmc::invalid_argument for a zero size or a bad init_scale
  conditional_features(Inner inner, const conditional_features_options& options)
      : inner_(std::move(inner)), options_(options) {
    constexpr const char* function = "conditional_features::conditional_features";
    check_positive(function, "options.vocab_size", options.vocab_size);
    check_positive(function, "options.observation_length", options.observation_length);
    check_positive(function, "options.embedding_size", options.embedding_size);
    check_argument(std::isfinite(options.init_scale) && options.init_scale >= 0.0, function, "options.init_scale",
                   "must be finite and >= 0", options.init_scale);
    embedding_.resize(static_cast<Eigen::Index>(options.embedding_size), static_cast<Eigen::Index>(options.vocab_size));
    default_engine engine(options.seed);
    detail::fill_normal(embedding_, options.init_scale, engine);
    gradient_.setZero(embedding_.rows(), embedding_.cols());
  }

  /// @brief Sets the observation o_{1:c} the features condition on (copied). Call it before a run
  /// and between runs, never during one.
  /// @param observation c tokens in [0, V)
  /// @throw tsmc::invalid_argument if observation.size() != c or a token is outside [0, V)
  void set_observation(std::span<const token> observation) {
    constexpr const char* function = "conditional_features::set_observation";
    check_size(function, "observation.size()", observation.size(), "the observation_length", options_.observation_length);
    check_tokens(observation, options_.vocab_size, function, "observation");
    observation_.assign(observation.begin(), observation.end());
  }

  /// @brief The current observation (empty before set_observation).
  [[nodiscard]] std::span<const token> observation() const noexcept { return observation_; }

  /// @brief The feature size d = inner d + c * e.
  [[nodiscard]] std::size_t feature_size() const noexcept {
    return static_cast<std::size_t>(inner_.feature_size()) + options_.observation_length * options_.embedding_size;
  }

  /// @brief The inner featurizer.
  [[nodiscard]] const Inner& inner() const noexcept { return inner_; }

  /// @brief Writes [inner features, E_obs[o_1], ..., E_obs[o_c]] for every particle.
  /// @param ctx the step context
  /// @param out K x d
  /// @throw tsmc::invalid_argument if out is not K x d, no observation was set, or the inner
  /// featurizer throws
  template <class Model>
    requires TwistFeaturizer<Inner, Model>
  void features(const step_context<Model>& ctx, Eigen::Ref<twist_feature_matrix> out) const {
    constexpr const char* function = "conditional_features::features";
    detail::check_feature_output(ctx, out.rows(), out.cols(), feature_size(), function);
    check_argument(!observation_.empty(), function, "observation", "must be set by set_observation before a run",
                   "none");
    const auto inner_d = static_cast<Eigen::Index>(inner_.feature_size());
    const auto e = static_cast<Eigen::Index>(options_.embedding_size);
    inner_.features(ctx, out.leftCols(inner_d));
    for (std::size_t j = 0; j < observation_.size(); ++j)
      out.middleCols(inner_d + e * static_cast<Eigen::Index>(j), e).rowwise() =
          embedding_.col(observation_[j]).transpose();
  }

  /// @brief Stores the observation, K and the inner featurizer's record.
  /// @param ctx the step context
  /// @param rec the record to overwrite
  template <class Model>
  void record(const step_context<Model>& ctx, record_type& rec) const {
    rec.observation = observation_;
    rec.rows = ctx.prefixes.size();
    if constexpr (TrainableFeaturizer<Inner>) inner_.record(ctx, rec.inner);
  }

  /// @brief Adds sum_{k,j} grad(k, j) d features(k, j) / d theta to the gradients of E_obs and,
  /// if it is trainable, the inner featurizer.
  /// @param rec the step's record
  /// @param grad K x d
  /// @throw tsmc::invalid_argument if grad is not K x d for the record's K
  void backward(const record_type& rec, Eigen::Ref<const twist_feature_matrix> grad) {
    constexpr const char* function = "conditional_features::backward";
    check_size(function, "grad.rows()", grad.rows(), "the recorded number of prefixes", rec.rows);
    check_size(function, "grad.cols()", grad.cols(), "feature_size()", feature_size());
    const auto inner_d = static_cast<Eigen::Index>(inner_.feature_size());
    const auto e = static_cast<Eigen::Index>(options_.embedding_size);
    if constexpr (TrainableFeaturizer<Inner>) inner_.backward(rec.inner, grad.leftCols(inner_d));
    for (std::size_t j = 0; j < rec.observation.size(); ++j)
      gradient_.col(rec.observation[j]) +=
          grad.middleCols(inner_d + e * static_cast<Eigen::Index>(j), e).colwise().sum().transpose();
  }

  /// @brief Sets every gradient (the inner featurizer's too) to zero.
  void zero_gradient() {
    gradient_.setZero();
    if constexpr (TrainableFeaturizer<Inner>) inner_.zero_gradient();
  }

  /// @brief The inner featurizer's blocks (if any), then "observation.embedding" (e x V).
  /// Views of this object's storage (valid until it is moved, copied over or destroyed).
  /// @return the blocks
  [[nodiscard]] std::vector<parameter_block> parameters() {
    std::vector<parameter_block> blocks;
    if constexpr (TrainableFeaturizer<Inner>) blocks = inner_.parameters();
    blocks.push_back(detail::matrix_block("observation.embedding", embedding_, gradient_));
    return blocks;
  }

 private:
  mutable Inner inner_;  // mutable: an inner featurizer's features() need not be const
  conditional_features_options options_;
  std::vector<token> observation_;
  Eigen::MatrixXd embedding_;  // e x V
  Eigen::MatrixXd gradient_;   // e x V
};

}  // namespace tsmc
