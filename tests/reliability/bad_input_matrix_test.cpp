// [reliability] The bad-input matrix (issue 19, item 3): every public entry point x the bad
// inputs that apply to it {empty, zero, negative, NaN, +-inf, too large, mismatched sizes, wrong
// or truncated file}, each row with the exception type and the function and argument its message
// must name, or a documented result. This file holds the runner and the rows of the core and
// resampling layers; bad_input_matrix_<area>_test.cpp register the others.
//
//     TSMC_PRINT_MATRIX=1 ./build/dev/tests/tsmc_tests "bad-input matrix"
//
// prints the table as markdown (scripts/update-reliability-matrix.sh puts it into
// docs/reliability.md).

#include "reliability/bad_input_matrix.hpp"

#include <tsmc/core/error.hpp>
#include <tsmc/core/log_math.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/core/statistics.hpp>
#include <tsmc/resampling/ancestors.hpp>
#include <tsmc/resampling/resampler.hpp>
#include <tsmc/resampling/schemes.hpp>
#include <tsmc/resampling/triggers.hpp>

#include <catch2/catch.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

using bad_input::input;
constexpr double nan = std::numeric_limits<double>::quiet_NaN();
constexpr double inf = std::numeric_limits<double>::infinity();

// ---------------------------------------------------------------------------------------------
// core: log maths, statistics, random numbers
// ---------------------------------------------------------------------------------------------

const bad_input::area core_rows("core", [](bad_input::area& a) {
  using V = std::vector<double>;
  a.invalid("log1mexp", input::too_large, "x = 0.5 (> 0)", "log1mexp", "x must be <= 0, got 0.5",
            [] { (void)tsmc::log1mexp(0.5); });
  a.invalid("log1mexp", input::nan, "x = NaN", "log1mexp", "x must be <= 0, got nan", [] { (void)tsmc::log1mexp(nan); });
  a.invalid("log1mexp", input::pos_inf, "x = +inf", "log1mexp", "x must be <= 0, got inf",
            [] { (void)tsmc::log1mexp(inf); });
  a.result("log1mexp", input::neg_inf, "x = -inf", "0 (log 1)", [] { return tsmc::log1mexp(-inf) == 0.0; });
  a.result("log1mexp", input::zero, "x = 0", "-inf (log 0)", [] { return tsmc::log1mexp(0.0) == -inf; });
  a.result("log_add_exp", input::nan, "(NaN, 1)", "NaN (documented; noexcept)",
           [] { return std::isnan(tsmc::log_add_exp(nan, 1.0)); });
  a.result("log_add_exp", input::neg_inf, "(-inf, -inf)", "-inf",
           [] { return tsmc::log_add_exp(-inf, -inf) == -inf; });
  a.invalid("logsumexp(span<const double>)", input::nan, "values = {0, NaN}", "logsumexp", "values must not contain NaN",
            [] {
              const V v{0.0, nan};
              (void)tsmc::logsumexp(std::span<const double>(v));
            });
  a.result("logsumexp(span<const double>)", input::empty, "values = {}", "-inf (an empty sum)",
           [] { return tsmc::logsumexp(std::span<const double>()) == -inf; });
  a.result("logsumexp(span<const double>)", input::neg_inf, "values = {-inf, -inf}", "-inf",
           [] {
             const V v{-inf, -inf};
             return tsmc::logsumexp(std::span<const double>(v)) == -inf;
           });
  a.result("logsumexp(span<const double>)", input::pos_inf, "values = {0, +inf}", "+inf", [] {
    const V v{0.0, inf};
    return tsmc::logsumexp(std::span<const double>(v)) == inf;
  });
  a.result("logsumexp(span<const double>)", input::too_large, "values = {1e308, 1e308}", "1e308 + log 2 (no overflow)",
           [] {
             const V v{1e308, 1e308};
             return tsmc::logsumexp(std::span<const double>(v)) == 1e308 + std::log(2.0);
           });
  a.invalid("logsumexp(span<const float>)", input::nan, "values = {0f, NaN}", "logsumexp", "values must not contain NaN",
            [] {
              const std::vector<float> v{0.0f, std::numeric_limits<float>::quiet_NaN()};
              (void)tsmc::logsumexp(std::span<const float>(v));
            });
  a.invalid("logsumexp(Eigen expression)", input::nan, "2 x 2 matrix with a NaN", "logsumexp",
            "values must not contain NaN", [] {
              Eigen::MatrixXd m = Eigen::MatrixXd::Zero(2, 2);
              m(1, 1) = nan;
              (void)tsmc::logsumexp(m);
            });
  a.result("logsumexp(Eigen expression)", input::empty, "0 x 0 matrix", "-inf",
           [] { return tsmc::logsumexp(Eigen::MatrixXd(0, 0)) == -inf; });
  a.invalid("row_logsumexp", input::mismatched, "3 x 2 matrix, out.size() = 2", "row_logsumexp",
            "out.size() must equal the number of rows 3, got 2", [] {
              V out(2);
              tsmc::row_logsumexp(Eigen::MatrixXd::Zero(3, 2), std::span<double>(out));
            });
  a.invalid("row_logsumexp", input::nan, "a row with NaN", "row_logsumexp", "values must not contain NaN", [] {
    Eigen::MatrixXd m = Eigen::MatrixXd::Zero(2, 2);
    m(0, 1) = nan;
    V out(2);
    tsmc::row_logsumexp(m, std::span<double>(out));
  });
  a.result("row_logsumexp", input::empty, "3 x 0 matrix", "every entry -inf", [] {
    V out(3, 0.0);
    tsmc::row_logsumexp(Eigen::MatrixXd(3, 0), std::span<double>(out));
    return std::all_of(out.begin(), out.end(), [](double x) { return x == -inf; });
  });
  a.invalid("log_mean_exp", input::empty, "values = {}", "log_mean_exp", "values.size() must be positive, got 0",
            [] { (void)tsmc::log_mean_exp(std::span<const double>()); });
  a.invalid("log_mean_exp", input::nan, "values = {NaN}", "log_mean_exp", "values must not contain NaN", [] {
    const V v{nan};
    (void)tsmc::log_mean_exp(v);
  });
  a.result("log_mean_exp", input::neg_inf, "values = {-inf, -inf}", "-inf", [] {
    const V v{-inf, -inf};
    return tsmc::log_mean_exp(v) == -inf;
  });
  a.invalid("log_softmax", input::empty, "values = {}", "log_softmax", "values.size() must be positive, got 0",
            [] { tsmc::log_softmax(std::span<const double>(), std::span<double>()); });
  a.invalid("log_softmax", input::mismatched, "3 values, out.size() = 2", "log_softmax",
            "out.size() must equal values.size() 3, got 2", [] {
              const V v(3, 0.0);
              V out(2);
              tsmc::log_softmax(v, out);
            });
  a.invalid("log_softmax", input::nan, "values = {0, NaN}", "log_softmax", "values must not contain NaN", [] {
    V v{0.0, nan};
    tsmc::log_softmax(v, v);
  });
  a.invalid("log_softmax", input::neg_inf, "values all -inf", "log_softmax", "logsumexp(values) must be finite", [] {
    V v{-inf, -inf};
    tsmc::log_softmax(v, v);
  });
  a.invalid("log_softmax", input::pos_inf, "values = {0, +inf}", "log_softmax", "logsumexp(values) must be finite", [] {
    V v{0.0, inf};
    tsmc::log_softmax(v, v);
  });
  a.invalid("softmax", input::empty, "values = {}", "softmax", "values.size() must be positive, got 0",
            [] { tsmc::softmax(std::span<const double>(), std::span<double>()); });
  a.invalid("softmax", input::mismatched, "3 values, out.size() = 4", "softmax",
            "out.size() must equal values.size() 3, got 4", [] {
              const V v(3, 0.0);
              V out(4);
              tsmc::softmax(v, out);
            });
  a.invalid("softmax", input::nan, "values = {NaN}", "softmax", "values must not contain NaN", [] {
    V v{nan};
    tsmc::softmax(v, v);
  });
  a.invalid("softmax", input::neg_inf, "values all -inf", "softmax", "logsumexp(values) must be finite", [] {
    V v{-inf};
    tsmc::softmax(v, v);
  });
  a.invalid("softmax", input::pos_inf, "values = {+inf, 1}", "softmax", "logsumexp(values) must be finite", [] {
    V v{inf, 1.0};
    tsmc::softmax(v, v);
  });
  a.invalid("effective_sample_size", input::nan, "log_weights = {0, NaN}", "effective_sample_size",
            "log_weights must not contain NaN or +inf, got nan", [] {
              const V v{0.0, nan};
              (void)tsmc::effective_sample_size(v);
            });
  a.invalid("effective_sample_size", input::pos_inf, "log_weights = {+inf, 0}", "effective_sample_size",
            "log_weights must not contain NaN or +inf, got inf", [] {
              const V v{inf, 0.0};
              (void)tsmc::effective_sample_size(v);
            });
  a.result("effective_sample_size", input::neg_inf, "log_weights all -inf", "0 (every weight zero)", [] {
    const V v{-inf, -inf, -inf};
    return tsmc::effective_sample_size(v) == 0.0;
  });
  a.result("effective_sample_size", input::empty, "log_weights = {}", "0", [] {
    return tsmc::effective_sample_size(std::span<const double>()) == 0.0;
  });
  a.result("effective_sample_size", input::too_large, "log_weights = {1e308, -1e308}", "1 (max-shifted)", [] {
    const V v{1e308, -1e308};
    return tsmc::effective_sample_size(v) == 1.0;
  });
  a.invalid("normalized_weights", input::empty, "log_weights = {}", "normalized_weights",
            "log_weights.size() must be positive, got 0",
            [] { tsmc::normalized_weights(std::span<const double>(), std::span<double>()); });
  a.invalid("normalized_weights", input::mismatched, "2 log-weights, out.size() = 3", "normalized_weights",
            "out.size() must equal log_weights.size() 2, got 3", [] {
              const V v(2, 0.0);
              V out(3);
              tsmc::normalized_weights(v, out);
            });
  a.invalid("normalized_weights", input::nan, "log_weights = {NaN, 0}", "normalized_weights",
            "log_weights must not contain NaN", [] {
              V v{nan, 0.0};
              tsmc::normalized_weights(v, v);
            });
  a.invalid("normalized_weights", input::neg_inf, "log_weights all -inf", "normalized_weights",
            "logsumexp(log_weights) must be finite", [] {
              V v{-inf, -inf};
              tsmc::normalized_weights(v, v);
            });
  a.invalid("mean_and_standard_error", input::empty, "values = {}", "mean_and_standard_error",
            "values.size() must be positive, got 0",
            [] { (void)tsmc::mean_and_standard_error(std::span<const double>()); });
  a.result("mean_and_standard_error", input::neg_inf, "values = {-inf, 1}", "mean -inf, standard error +inf", [] {
    const V v{-inf, 1.0};
    const auto e = tsmc::mean_and_standard_error(v);
    return e.mean == -inf && e.standard_error == inf;
  });
  a.result("mean_and_standard_error", input::neg_inf, "values = {-inf, -inf}", "mean -inf, standard error 0", [] {
    const V v{-inf, -inf};
    const auto e = tsmc::mean_and_standard_error(v);
    return e.mean == -inf && e.standard_error == 0.0;
  });
  a.result("mean_and_standard_error", input::nan, "values = {NaN, 1}", "mean NaN, standard error NaN", [] {
    const V v{nan, 1.0};
    const auto e = tsmc::mean_and_standard_error(v);
    return std::isnan(e.mean) && std::isnan(e.standard_error);
  });
  a.result("mean_and_standard_error", input::pos_inf, "values = {+inf, -inf}", "mean NaN, standard error NaN", [] {
    const V v{inf, -inf};
    const auto e = tsmc::mean_and_standard_error(v);
    return std::isnan(e.mean) && std::isnan(e.standard_error);
  });
  for (const char* name : {"weighted_mean", "weighted_variance", "weighted_standard_error"}) {
    const std::string f = name;
    const auto call = [f](const V& values, const V& weights) {
      if (f == "weighted_mean") (void)tsmc::weighted_mean(values, weights);
      if (f == "weighted_variance") (void)tsmc::weighted_variance(values, weights);
      if (f == "weighted_standard_error") (void)tsmc::weighted_standard_error(values, weights);
    };
    a.invalid(f, input::mismatched, "2 values, 3 weights", f, "weights.size() must equal values.size() 2, got 3",
              [call] { call({1.0, 2.0}, {1.0, 1.0, 1.0}); });
    a.invalid(f, input::empty, "no values, no weights", f, "sum of weights must be positive and finite, got 0",
              [call] { call({}, {}); });
    a.invalid(f, input::zero, "weights = {0, 0}", f, "sum of weights must be positive and finite, got 0",
              [call] { call({1.0, 2.0}, {0.0, 0.0}); });
    a.invalid(f, input::negative, "weights = {1, -1}", f, "weights must be finite and >= 0, got -1",
              [call] { call({1.0, 2.0}, {1.0, -1.0}); });
    a.invalid(f, input::nan, "weights = {NaN, 1}", f, "weights must be finite and >= 0, got nan",
              [call] { call({1.0, 2.0}, {nan, 1.0}); });
    a.invalid(f, input::pos_inf, "weights = {+inf, 1}", f, "weights must be finite and >= 0, got inf",
              [call] { call({1.0, 2.0}, {inf, 1.0}); });
    a.invalid(f, input::too_large, "weights = {1.7e308, 1.7e308} (sum overflows)", f,
              "sum of weights must be positive and finite, got inf", [call] { call({1.0, 2.0}, {1.7e308, 1.7e308}); });
  }
  a.invalid("uniform_index", input::zero, "n = 0", "uniform_index", "n must be positive, got 0", [] {
    tsmc::default_engine rng(1);
    (void)tsmc::uniform_index(rng, 0);
  });
  a.invalid("check_tokens", input::negative, "tokens = {0, -1}, V = 3", "f", "tokens[1] must be in [0, 3), got -1",
            [] {
              const tsmc::token_sequence t{0, -1};
              tsmc::check_tokens(t, 3, "f", "tokens");
            });
  a.invalid("check_tokens", input::too_large, "tokens = {3}, V = 3", "f", "tokens[0] must be in [0, 3), got 3", [] {
    const tsmc::token_sequence t{3};
    tsmc::check_tokens(t, 3, "f", "tokens");
  });
});

// ---------------------------------------------------------------------------------------------
// resampling: schemes, the resampler, ancestors, triggers
// ---------------------------------------------------------------------------------------------

template <class Scheme>
void scheme_rows(bad_input::area& a, const std::string& name) {
  using V = std::vector<double>;
  const std::string f = name + "::offspring";
  const auto call = [](V w, std::size_t n, std::size_t counts) {
    Scheme s;
    std::vector<tsmc::particle_index> c(counts);
    tsmc::default_engine rng(1);
    s.offspring(std::span<const double>(w), n, std::span<tsmc::particle_index>(c), rng);
  };
  a.invalid(f, input::empty, "weights = {}", f, "weights.size() must be positive, got 0", [call] { call({}, 1, 0); });
  a.invalid(f, input::zero, "n = 0", f, "n must be positive, got 0", [call] { call({0.5, 0.5}, 0, 2); });
  a.invalid(f, input::mismatched, "2 weights, counts.size() = 3", f, "counts.size() must equal weights.size() 2, got 3",
            [call] { call({0.5, 0.5}, 2, 3); });
  a.invalid(f, input::negative, "weights = {1.5, -0.5}", f, "weights must be >= 0, got -0.5",
            [call] { call({1.5, -0.5}, 2, 2); });
  a.invalid(f, input::nan, "weights = {NaN, 1}", f, "weights must not contain NaN", [call] { call({nan, 1.0}, 2, 2); });
  a.invalid(f, input::pos_inf, "weights = {+inf, 0}", f, "weights must be finite, got inf",
            [call] { call({inf, 0.0}, 2, 2); });
  a.invalid(f, input::zero, "weights = {0, 0}", f, "sum of weights must be positive and finite",
            [call] { call({0.0, 0.0}, 2, 2); });
  a.invalid(f, input::too_large, "n = 2^32 (past a particle index)", f, "n must fit in tsmc::particle_index",
            [call] { call({0.5, 0.5}, std::size_t{1} << 32, 2); });
}

const bad_input::area resampling_rows("resampling", [](bad_input::area& a) {
  using V = std::vector<double>;
  using tsmc::particle_index;
  scheme_rows<tsmc::multinomial>(a, "multinomial");
  scheme_rows<tsmc::stratified>(a, "stratified");
  scheme_rows<tsmc::systematic>(a, "systematic");
  scheme_rows<tsmc::residual>(a, "residual");
  scheme_rows<tsmc::ssp>(a, "ssp");
  scheme_rows<tsmc::killing>(a, "killing");
  a.invalid("killing::offspring", input::mismatched, "2 weights, n = 3", "killing::offspring",
            "n must equal weights.size() 2, got 3", [] {
              tsmc::killing s;
              const V w{0.5, 0.5};
              std::vector<particle_index> c(2);
              tsmc::default_engine rng(1);
              s.offspring(w, 3, c, rng);
            });
  const auto resample = [](V log_w, std::size_t n) {
    tsmc::resampler<tsmc::systematic> r;
    std::vector<particle_index> anc(n);
    tsmc::default_engine rng(1);
    r.resample(log_w, anc, rng);
  };
  a.invalid("resampler::resample", input::empty, "log_weights = {}", "resampler::resample",
            "log_weights.size() must be positive, got 0", [resample] { resample({}, 1); });
  a.invalid("resampler::resample", input::zero, "ancestors.size() = 0", "resampler::resample",
            "ancestors.size() must be positive, got 0", [resample] { resample({0.0, 0.0}, 0); });
  a.invalid("resampler::resample", input::nan, "log_weights = {0, NaN}", "resampler::resample",
            "log_weights must not contain NaN or +inf, got nan", [resample] { resample({0.0, nan}, 2); });
  a.invalid("resampler::resample", input::pos_inf, "log_weights = {+inf, 0}", "resampler::resample",
            "log_weights must not contain NaN or +inf, got inf", [resample] { resample({inf, 0.0}, 2); });
  a.invalid("resampler::resample", input::neg_inf, "log_weights all -inf", "resampler::resample",
            "log_weights must not all be -inf", [resample] { resample({-inf, -inf}, 2); });
  a.result("resampler::resample", input::too_large, "log_weights = {1e308, -1e308}", "every ancestor 0 (max-shifted)",
           [] {
             tsmc::resampler<tsmc::multinomial> r;
             const V w{1e308, -1e308};
             std::vector<particle_index> anc(2);
             tsmc::default_engine rng(1);
             r.resample(w, anc, rng);
             return anc[0] == 0 && anc[1] == 0;
           });
  const auto conditional = [](V log_w, std::size_t n) {
    tsmc::resampler<tsmc::multinomial> r;
    std::vector<particle_index> anc(n);
    tsmc::default_engine rng(1);
    r.resample_conditional(log_w, anc, rng);
  };
  a.invalid("resampler::resample_conditional", input::mismatched, "2 log-weights, 3 ancestors",
            "resampler::resample_conditional", "ancestors.size() must equal log_weights.size() 2, got 3",
            [conditional] { conditional({0.0, 0.0}, 3); });
  a.invalid("resampler::resample_conditional", input::empty, "log_weights = {}", "resampler::resample_conditional",
            "log_weights.size() must be positive, got 0", [conditional] { conditional({}, 0); });
  a.invalid("resampler::resample_conditional", input::nan, "log_weights = {NaN, 0}", "resampler::resample_conditional",
            "log_weights must not contain NaN or +inf", [conditional] { conditional({nan, 0.0}, 2); });
  a.invalid("resampler::resample_conditional", input::neg_inf, "log_weights all -inf",
            "resampler::resample_conditional", "log_weights must not all be -inf",
            [conditional] { conditional({-inf, -inf}, 2); });
  a.invalid("slot_stable_ancestors", input::mismatched, "3 counts, 2 ancestors", "slot_stable_ancestors",
            "ancestors.size() must equal counts.size() 3, got 2", [] {
              const std::vector<particle_index> c{1, 1, 1};
              std::vector<particle_index> anc(2);
              tsmc::slot_stable_ancestors(c, anc);
            });
  a.invalid("slot_stable_ancestors", input::too_large, "counts = {2, 2} (sum 4 != K = 2)", "slot_stable_ancestors",
            "sum(counts) must equal counts.size() 2, got 4", [] {
              const std::vector<particle_index> c{2, 2};
              std::vector<particle_index> anc(2);
              tsmc::slot_stable_ancestors(c, anc);
            });
  a.invalid("slot_stable_ancestors", input::zero, "counts = {0, 0}", "slot_stable_ancestors",
            "sum(counts) must equal counts.size() 2, got 0", [] {
              const std::vector<particle_index> c{0, 0};
              std::vector<particle_index> anc(2);
              tsmc::slot_stable_ancestors(c, anc);
            });
  a.invalid("ancestors_from_counts", input::mismatched, "counts = {1, 2}, 2 ancestors", "ancestors_from_counts",
            "ancestors.size() must equal sum(counts) 3, got 2", [] {
              const std::vector<particle_index> c{1, 2};
              std::vector<particle_index> anc(2);
              tsmc::ancestors_from_counts(c, anc);
            });
  for (const double bad : {0.0, -0.5, nan, 1.5, inf}) {
    const input kind = bad == 0.0 ? input::zero
                       : std::isnan(bad) ? input::nan
                       : bad == inf      ? input::pos_inf
                       : bad < 0.0       ? input::negative
                                         : input::too_large;
    std::ostringstream detail;
    detail << "fraction = " << bad;
    a.invalid("ess_below", kind, detail.str(), "ess_below", "fraction must be in (0, 1]",
              [bad] { (void)tsmc::ess_below(bad); });
  }
});

// ---------------------------------------------------------------------------------------------
// The runner and the markdown table
// ---------------------------------------------------------------------------------------------

const char* outcome_name(bad_input::outcome o) {
  switch (o) {
    case bad_input::outcome::invalid_argument: return "invalid_argument";
    case bad_input::outcome::runtime_error: return "runtime_error";
    case bad_input::outcome::result: return "result";
  }
  return "?";
}

struct verdict {
  bool pass = false;
  std::string observed;  // the exception type and message, or the result's check
};

verdict check_row(const bad_input::row& r) {
  if (r.expected == bad_input::outcome::result) {
    try {
      const bool ok = r.holds();
      return {ok, ok ? r.result : "the documented result does not hold"};
    } catch (const std::exception& e) {
      return {false, std::string("threw: ") + e.what()};
    }
  }
  std::string type, message;
  try {
    r.call();
    return {false, "no exception"};
  } catch (const tsmc::invalid_argument& e) {
    type = "invalid_argument";
    message = e.what();
  } catch (const tsmc::runtime_error& e) {
    type = "runtime_error";
    message = e.what();
  } catch (const std::exception& e) {
    return {false, std::string("a non-tsmc exception: ") + e.what()};
  }
  const std::string prefix = "tsmc::" + r.function + ":";
  const bool ok = type == outcome_name(r.expected) && message.rfind(prefix, 0) == 0 &&
                  message.find(r.argument) != std::string::npos;
  return {ok, type + ": " + message};
}

// Table text: paths under the temporary directory become <tmp> (and the process id and clock
// readings in the names of scratch and temporary files are dropped), '|' is escaped, long
// messages are cut.
std::string cell(std::string text, std::size_t limit = 160) {
  const std::string tmp = std::filesystem::temp_directory_path().string();
  for (std::size_t at = text.find(tmp); at != std::string::npos; at = text.find(tmp, at))
    text.replace(at, tmp.size(), "<tmp>");
  const std::string stamp = "tsmc_matrix_";  // the scratch directory's name ends in the process id
  for (std::size_t at = text.find(stamp); at != std::string::npos; at = text.find(stamp, at + 1)) {
    std::size_t end = at + stamp.size();
    while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end])) != 0) ++end;
    text.replace(at, end - at, "tsmc_matrix");
  }
  const std::string temporary = ".tmp.";  // a temporary file's name ends in a clock reading
  for (std::size_t at = text.find(temporary); at != std::string::npos; at = text.find(temporary, at + 1)) {
    std::size_t end = at + temporary.size();
    while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end])) != 0) ++end;
    text.replace(at, end - at, ".tmp.<n>");
  }
  if (text.size() > limit) text = text.substr(0, limit - 3) + "...";
  std::string out;
  for (const char c : text) {
    if (c == '|') out += "\\|";
    else if (c == '\n') out += ' ';
    else out += c;
  }
  return out;
}

}  // namespace

TEST_CASE("bad-input matrix: every row gives its documented exception or result", "[reliability]") {
  const std::vector<std::string> area_order{"core", "resampling", "sampler", "bounds", "learning",
                                            "models", "potentials", "twists", "testing"};
  std::vector<const bad_input::row*> rows;
  for (const auto& r : bad_input::registry()) rows.push_back(&r);
  const auto rank = [&](const std::string& area) {
    return static_cast<std::size_t>(std::find(area_order.begin(), area_order.end(), area) - area_order.begin());
  };
  std::stable_sort(rows.begin(), rows.end(),
                   [&](const bad_input::row* x, const bad_input::row* y) { return rank(x->area) < rank(y->area); });

  std::set<std::string> entries;
  std::map<std::string, std::size_t> per_input;
  std::ostringstream table;
  table << "| area | entry point | bad input | case | behaviour |\n|---|---|---|---|---|\n";
  std::size_t failures = 0;
  for (const bad_input::row* r : rows) {
    entries.insert(r->entry);
    ++per_input[bad_input::input_name(r->kind)];
    const verdict v = check_row(*r);
    if (!v.pass) {
      ++failures;
      INFO(r->area << " | " << r->entry << " | " << bad_input::input_name(r->kind) << " | " << r->detail);
      INFO("expected " << outcome_name(r->expected) << " tsmc::" << r->function << ": ..." << r->argument << "...");
      INFO("observed " << v.observed);
      CHECK(v.pass);
    }
    const std::string behaviour = r->expected == bad_input::outcome::result ? "result: " + r->result : v.observed;
    table << "| " << r->area << " | `" << cell(r->entry) << "` | " << bad_input::input_name(r->kind) << " | "
          << cell(r->detail) << " | " << cell(behaviour) << " |\n";
  }
  const char* print = std::getenv("TSMC_PRINT_MATRIX");
  if (print != nullptr && std::string(print) == "1") {
    std::cout << "<!-- matrix:begin (generated by scripts/update-reliability-matrix.sh; do not edit) -->\n";
    std::cout << rows.size() << " rows (bad inputs tried) over " << entries.size() << " entry points; by input:";
    bool first = true;
    for (const auto& [name, n] : per_input) {
      std::cout << (first ? " " : ", ") << name << " " << n;
      first = false;
    }
    std::cout << ".\n\n" << table.str() << "<!-- matrix:end -->\n";
  }
  CHECK(failures == 0);
  CHECK(rows.size() >= 300);
  CHECK(entries.size() >= 100);
}
