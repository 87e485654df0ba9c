#pragma once
/// @file
/// @brief Log-space arithmetic: log-add-exp, log1mexp, logsumexp over vectors and matrix rows,
/// log-softmax and log-mean-exp.
///
/// -inf stands for a zero probability and is handled without NaN (logsumexp of all -inf is
/// -inf). A NaN input is a bug upstream, so the range functions throw on it rather than
/// propagating it silently.

#include <tsmc/core/error.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <limits>
#include <span>
#include <string>
#include <string_view>

namespace tsmc {

/// @brief Negative infinity, the log of zero.
inline constexpr double neg_inf = -std::numeric_limits<double>::infinity();

/// @brief log(exp(a) + exp(b)) without overflow; -inf operands are zeros.
/// @return a NaN if either operand is NaN (whatever the other one is, +inf included)
[[nodiscard]] inline double log_add_exp(double a, double b) noexcept {
  if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<double>::quiet_NaN();
  if (a < b) std::swap(a, b);
  if (b == neg_inf) return a;             // also covers a == b == -inf
  if (a == std::numeric_limits<double>::infinity()) return a;
  return a + std::log1p(std::exp(b - a));
}

/// @brief log(1 - exp(x)) for x <= 0, accurate near 0 and near -inf (Maechler 2012).
/// @param x a log-probability
/// @return log(1 - exp(x)); -inf at x = 0, 0 at x = -inf
/// @throw tsmc::invalid_argument if x > 0 or x is NaN (1 - exp(x) would be negative)
[[nodiscard]] inline double log1mexp(double x) {
  check_argument(x <= 0.0, "log1mexp", "x", "must be <= 0", x);
  if (x > -0.6931471805599453) return std::log(-std::expm1(x));
  return std::log1p(-std::exp(x));
}

/// @brief log sigmoid(x) = -log(1 + exp(-x)), without overflow for either sign.
[[nodiscard]] inline double log_sigmoid(double x) noexcept {
  return x >= 0.0 ? -std::log1p(std::exp(-x)) : x - std::log1p(std::exp(x));
}

/// @brief sigmoid(x) = 1 / (1 + exp(-x)), without overflow for either sign.
[[nodiscard]] inline double sigmoid(double x) noexcept {
  return x >= 0.0 ? 1.0 / (1.0 + std::exp(-x)) : std::exp(x) / (1.0 + std::exp(x));
}

namespace detail {

/// The two parts of logsumexp: max_i x_i and log sum_i exp(x_i - max) (0 when max is +-inf).
struct max_and_log_sum {
  double max;
  double log_sum;
};

template <class Iterator>
max_and_log_sum split_logsumexp(Iterator first, Iterator last, const char* function,
                                std::string_view name = "values") {
  double max = neg_inf;
  for (auto it = first; it != last; ++it) {
    const double v = static_cast<double>(*it);
    if (std::isnan(v)) throw_invalid_argument(function, name, "must not contain NaN", v);
    max = std::max(max, v);
  }
  if (max == neg_inf || max == std::numeric_limits<double>::infinity()) return {max, 0.0};
  double sum = 0.0;
  for (auto it = first; it != last; ++it) sum += std::exp(static_cast<double>(*it) - max);
  return {max, std::log(sum)};
}

template <class Iterator>
double logsumexp_range(Iterator first, Iterator last, const char* function) {
  const auto [max, log_sum] = split_logsumexp(first, last, function);
  return max + log_sum;
}

}  // namespace detail

/// @brief log(sum_i exp(x_i)), stable for any spread (1e300 included).
/// @return -inf for an empty range or all -inf; +inf if any value is +inf
/// @throw tsmc::invalid_argument if any value is NaN
[[nodiscard]] inline double logsumexp(std::span<const double> values) {
  return detail::logsumexp_range(values.begin(), values.end(), "logsumexp");
}

/// @brief logsumexp of single-precision values, accumulated in double.
[[nodiscard]] inline double logsumexp(std::span<const float> values) {
  return detail::logsumexp_range(values.begin(), values.end(), "logsumexp");
}

namespace detail {
/// logsumexp of all coefficients of an Eigen expression; a NaN is reported as `function`'s.
template <class Derived>
[[nodiscard]] double logsumexp_dense(const Eigen::DenseBase<Derived>& values, const char* function) {
  const auto& v = values.derived();
  double max = neg_inf;
  for (Eigen::Index r = 0; r < v.rows(); ++r)
    for (Eigen::Index c = 0; c < v.cols(); ++c) {
      const double x = static_cast<double>(v.coeff(r, c));
      if (std::isnan(x)) throw_invalid_argument(function, "values", "must not contain NaN", x);
      max = std::max(max, x);
    }
  if (max == neg_inf || max == std::numeric_limits<double>::infinity()) return max;
  double sum = 0.0;
  for (Eigen::Index r = 0; r < v.rows(); ++r)
    for (Eigen::Index c = 0; c < v.cols(); ++c) sum += std::exp(static_cast<double>(v.coeff(r, c)) - max);
  return max + std::log(sum);
}
}  // namespace detail

/// @brief logsumexp of any Eigen vector or matrix (all coefficients), accumulated in double.
/// @throw tsmc::invalid_argument "tsmc::logsumexp: values must not contain NaN" on NaN
template <class Derived>
[[nodiscard]] double logsumexp(const Eigen::DenseBase<Derived>& values) {
  return detail::logsumexp_dense(values, "logsumexp");
}

/// @brief Row-wise logsumexp of a matrix: out[r] = logsumexp of row r.
/// @param matrix any Eigen matrix expression
/// @param out one entry per row
/// @throw tsmc::invalid_argument if out's size differs from the row count, or on NaN
template <class Derived>
void row_logsumexp(const Eigen::MatrixBase<Derived>& matrix, std::span<double> out) {
  check_size("row_logsumexp", "out.size()", out.size(), "the number of rows", matrix.rows());
  if (matrix.cols() == 0) {  // every row is empty; a row block of a matrix without data is undefined behaviour
    std::fill(out.begin(), out.end(), -std::numeric_limits<double>::infinity());
    return;
  }
  for (Eigen::Index r = 0; r < matrix.rows(); ++r)
    out[static_cast<std::size_t>(r)] = detail::logsumexp_dense(matrix.row(r), "row_logsumexp");
}

/// @brief log(mean_i exp(x_i)) = logsumexp(x) - log n.
/// @throw tsmc::invalid_argument if values is empty or contains NaN
[[nodiscard]] inline double log_mean_exp(std::span<const double> values) {
  check_positive("log_mean_exp", "values.size()", values.size());
  const double lse = detail::logsumexp_range(values.begin(), values.end(), "log_mean_exp");
  return lse - std::log(static_cast<double>(values.size()));
}

namespace detail {
/// log_softmax with the messages of `function`, whose input is named `name` ("values", "log_weights").
inline void log_softmax_named(std::span<const double> values, std::span<double> out, const char* function,
                              const std::string& name) {
  check_size(function, "out.size()", out.size(), name + ".size()", values.size());
  check_positive(function, name + ".size()", values.size());
  const auto [max, log_sum] = split_logsumexp(values.begin(), values.end(), function, name);
  check_argument(std::isfinite(max), function, "logsumexp(" + name + ")",
                 "must be finite (all -inf or a +inf cannot be normalised)", max + log_sum);
  // (x_i - max) - log_sum, not x_i - logsumexp(x): log_sum is below ulp(max) when |max| is huge
  // (1e17 and beyond), and would be lost, leaving weights that do not sum to 1.
  for (std::size_t i = 0; i < values.size(); ++i) out[i] = (values[i] - max) - log_sum;
}
}  // namespace detail

/// @brief Log-softmax: out_i = x_i - logsumexp(x). May alias (out == values).
///
/// All -inf input has no normalisation; it throws rather than returning NaN.
/// @throw tsmc::invalid_argument "tsmc::log_softmax: ..." on size mismatch, NaN, an empty range,
/// all -inf, or +inf
inline void log_softmax(std::span<const double> values, std::span<double> out) {
  detail::log_softmax_named(values, out, "log_softmax", "values");
}

/// @brief Softmax from log-values: out_i = exp(x_i - logsumexp(x)). May alias.
/// @throw tsmc::invalid_argument "tsmc::softmax: ..." as log_softmax
inline void softmax(std::span<const double> values, std::span<double> out) {
  detail::log_softmax_named(values, out, "softmax", "values");
  for (double& v : out) v = std::exp(v);
}

/// @brief The log normaliser of a row of float logits, in double: m + log sum_v exp(l_v - m),
/// m = max_v l_v, each logit widened to double, the exps (std::exp) summed in index order.
///
/// This defines the distribution of a model that hands the sampler its logits
/// (EmitsLogitRows): log p0(v) = l_v - logit_row_normalizer(l). The transformer engine's
/// log_probs (models/transformer.hpp) writes its rows with this same function, so both paths
/// give the same bits. NaN or +inf in the row, or a row of -inf only, gives NaN.
/// @param logits V float logits
/// @param vocab V
[[nodiscard]] inline double logit_row_normalizer(const float* logits, std::size_t vocab) {
  double max = neg_inf;
  bool nan = false;
  for (std::size_t v = 0; v < vocab; ++v) {
    const double l = logits[v];
    nan = nan || std::isnan(l);
    max = l > max ? l : max;
  }
  if (nan) return std::numeric_limits<double>::quiet_NaN();
  double total = 0.0;
  for (std::size_t v = 0; v < vocab; ++v) total += std::exp(static_cast<double>(logits[v]) - max);
  return max + std::log(total);
}

}  // namespace tsmc
