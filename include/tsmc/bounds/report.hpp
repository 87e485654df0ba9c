#pragma once
/// @file
/// @brief A report of one bounds experiment (method, K, scheme, bounds, KLs, ESS, runs, time):
/// a markdown table row, JSON and CSV, written by hand (no dependency).

#include <tsmc/bounds/estimator.hpp>
#include <tsmc/bounds/kl.hpp>
#include <tsmc/resampling/schemes.hpp>
#include <tsmc/resampling/triggers.hpp>
#include <tsmc/smc/sampler.hpp>

#include <cmath>
#include <cstddef>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace tsmc {

namespace detail {

/// A number for a table: fixed with `digits` decimals; "inf", "-inf", "nan" when not finite.
inline std::string format_number(double value, int digits = 4) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", digits, value);
  return buffer;
}

/// A number for JSON / CSV: shortest round-trip form (%.17g); JSON has no infinities or NaN, so
/// those become the strings "inf", "-inf", "nan" (quoted when quote_non_finite).
inline std::string exact_number(double value, bool quote_non_finite) {
  if (!std::isfinite(value)) {
    const std::string word = std::isnan(value) ? "nan" : (value > 0 ? "inf" : "-inf");
    return quote_non_finite ? "\"" + word + "\"" : word;
  }
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.17g", value);
  return buffer;
}

/// A markdown table cell: '|' escaped, line breaks replaced by spaces.
inline std::string markdown_cell(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c == '|')
      out += "\\|";
    else if (c == '\n' || c == '\r')
      out += ' ';
    else
      out += c;
  }
  return out;
}

/// A CSV field (RFC 4180): quoted, with quotes doubled, when it holds a comma, quote or line break.
inline std::string csv_field(std::string_view text) {
  if (text.find_first_of(",\"\n\r") == std::string_view::npos) return std::string(text);
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace detail

/// @brief Escapes a string for a JSON string literal (RFC 8259): quotes, backslashes and control
/// characters; the result does not include the surrounding quotes. UTF-8 passes through.
/// @param text any bytes
/// @return the escaped text
[[nodiscard]] inline std::string json_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buffer[8];
          std::snprintf(buffer, sizeof buffer, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buffer;
        } else {
          out += c;
        }
    }
  }
  return out;
}

/// @brief The name of a resampling scheme ("multinomial", "systematic", ...; "custom" otherwise).
template <class Scheme>
[[nodiscard]] std::string scheme_name(const Scheme& /*scheme*/) {
  if constexpr (std::is_same_v<Scheme, multinomial>) return "multinomial";
  else if constexpr (std::is_same_v<Scheme, stratified>) return "stratified";
  else if constexpr (std::is_same_v<Scheme, systematic>) return "systematic";
  else if constexpr (std::is_same_v<Scheme, residual>) return "residual";
  else if constexpr (std::is_same_v<Scheme, ssp>) return "ssp";
  else if constexpr (std::is_same_v<Scheme, killing>) return "killing";
  else return "custom";
}

/// @brief The name of a resampling trigger ("always", "never", "ess<0.5"; "custom" otherwise).
template <class Trigger>
[[nodiscard]] std::string trigger_name(const Trigger& trigger) {
  if constexpr (std::is_same_v<Trigger, always_trigger>) return "always";
  else if constexpr (std::is_same_v<Trigger, never_trigger>) return "never";
  else if constexpr (std::is_same_v<Trigger, ess_below_trigger>) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "ess<%g", trigger.fraction);
    return buffer;
  } else return "custom";
}

/// @brief One row of a bounds table (Zhao et al. 2024, Section 5 and Figure 3): the method, K,
/// the resampling scheme, the bounds on log Z with their standard errors, the gap, optional KL
/// estimates, the ESS, the number of runs and the wall time.
struct bounds_report {
  std::string method;                ///< a free label ("SIS, base proposal", "twisted SMC, CTL twist")
  std::size_t particles = 0;         ///< K
  std::string scheme;                ///< the resampling scheme and trigger ("multinomial/always")
  log_z_bounds bounds;               ///< the bounds
  std::optional<kl_estimate> kl;     ///< KL estimates of the method's proposal, if computed
  double ess = 0.0;                  ///< the mean final ESS of the lower-bound runs
  std::size_t runs = 0;              ///< M
  double seconds = 0.0;              ///< wall time (bounds, plus KLs if computed)

  /// @brief The markdown table header matching markdown_row (two lines: names and rule).
  [[nodiscard]] static std::string markdown_header() {
    return "| method | K | scheme | lower +- se | upper +- se | gap | KL(q\\|\\|sigma) | KL(sigma\\|\\|q) | ESS | runs | "
           "seconds |\n|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|";
  }

  /// @brief One markdown table row (no trailing newline); KL cells are "-" when not computed; a
  /// bound with runs of Zhat = 0 says in how many percent of its runs.
  [[nodiscard]] std::string markdown_row() const {
    using detail::format_number;
    const auto pm = [](const bound_estimate& b) {
      std::string cell = format_number(b.mean) + " +- " + format_number(b.standard_error);
      if (b.zero_fraction > 0.0) cell += " (Zhat = 0 in " + format_number(100.0 * b.zero_fraction, 1) + "% of runs)";
      return cell;
    };
    std::string row = "| " + detail::markdown_cell(method) + " | " + std::to_string(particles) + " | " +
                      detail::markdown_cell(scheme) + " | " + pm(bounds.lower) + " | " + pm(bounds.upper) + " | " +
                      format_number(bounds.gap()) + " | ";
    row += kl ? format_number(kl->q_sigma.value) + " | " + format_number(kl->sigma_q.value) : std::string("- | -");
    row += " | " + format_number(ess, 1) + " | " + std::to_string(runs) + " | " + format_number(seconds, 3) + " |";
    return row;
  }

  /// @brief The report as one JSON object (no whitespace but single spaces). Non-finite numbers
  /// are the strings "inf", "-inf", "nan" (JSON has no such numbers); kl is null when absent.
  [[nodiscard]] std::string to_json() const {
    using detail::exact_number;
    const auto number = [](double v) { return exact_number(v, true); };
    const auto bound = [&](const bound_estimate& b) {
      return "{\"mean\": " + number(b.mean) + ", \"standard_error\": " + number(b.standard_error) +
             ", \"ci95\": [" + number(b.low) + ", " + number(b.high) + "], \"runs\": " + std::to_string(b.runs) +
             ", \"zero_fraction\": " + number(b.zero_fraction) + "}";
    };
    const auto kl_json = [&](const kl_value& k) {
      return "{\"value\": " + number(k.value) + ", \"standard_error\": " + number(k.standard_error) +
             ", \"interval\": [" + number(k.low) + ", " + number(k.high) + "]}";
    };
    std::string out = "{\"method\": \"" + json_escape(method) + "\", \"particles\": " + std::to_string(particles) +
                      ", \"scheme\": \"" + json_escape(scheme) + "\", \"lower\": " + bound(bounds.lower) +
                      ", \"upper\": " + bound(bounds.upper) + ", \"gap\": " + number(bounds.gap());
    if (kl) {
      out += ", \"kl_q_sigma\": " + kl_json(kl->q_sigma) + ", \"kl_sigma_q\": " + kl_json(kl->sigma_q) +
             ", \"log_z\": " + number(kl->log_z.value);
    } else {
      out += ", \"kl_q_sigma\": null, \"kl_sigma_q\": null, \"log_z\": null";
    }
    out += ", \"ess\": " + number(ess) + ", \"runs\": " + std::to_string(runs) + ", \"seconds\": " + number(seconds) + "}";
    return out;
  }

  /// @brief The CSV header matching csv_row (no trailing newline).
  [[nodiscard]] static std::string csv_header() {
    return "method,particles,scheme,lower,lower_se,lower_ci_low,lower_ci_high,upper,upper_se,upper_ci_low,"
           "upper_ci_high,gap,kl_q_sigma,kl_q_sigma_se,kl_sigma_q,kl_sigma_q_se,ess,runs,seconds";
  }

  /// @brief One CSV row (no trailing newline); KL fields are empty when not computed, non-finite
  /// numbers are inf, -inf, nan.
  [[nodiscard]] std::string csv_row() const {
    const auto number = [](double v) { return detail::exact_number(v, false); };
    std::string row = detail::csv_field(method) + "," + std::to_string(particles) + "," + detail::csv_field(scheme);
    for (const bound_estimate* b : {&bounds.lower, &bounds.upper})
      row += "," + number(b->mean) + "," + number(b->standard_error) + "," + number(b->low) + "," + number(b->high);
    row += "," + number(bounds.gap());
    if (kl)
      row += "," + number(kl->q_sigma.value) + "," + number(kl->q_sigma.standard_error) + "," +
             number(kl->sigma_q.value) + "," + number(kl->sigma_q.standard_error);
    else
      row += ",,,,";
    row += "," + number(ess) + "," + std::to_string(runs) + "," + number(seconds);
    return row;
  }
};

/// @brief "scheme/trigger", e.g. "systematic/ess<0.5", for a report's scheme column.
template <class Scheme, class Trigger>
[[nodiscard]] std::string resampling_name(const Scheme& scheme, const Trigger& trigger) {
  return scheme_name(scheme) + "/" + trigger_name(trigger);
}

/// @brief A report of estimated bounds, with optional KL estimates.
/// @param method the label
/// @param particles K
/// @param scheme the resampling scheme the bounds were estimated with
/// @param trigger the resampling trigger
/// @param bounds the bounds
/// @param kl KL estimates of the method's proposal, if computed
/// @return the report: ess = bounds.lower_ess, runs = bounds.lower.runs, seconds = bounds.seconds
/// (+ kl->seconds)
template <class Scheme, class Trigger>
[[nodiscard]] bounds_report make_report(std::string method, std::size_t particles, const Scheme& scheme,
                                        const Trigger& trigger, const log_z_bounds& bounds,
                                        std::optional<kl_estimate> kl = std::nullopt) {
  bounds_report r;
  r.method = std::move(method);
  r.particles = particles;
  r.scheme = resampling_name(scheme, trigger);
  r.bounds = bounds;
  r.ess = bounds.lower_ess;
  r.runs = bounds.lower.runs;
  r.seconds = bounds.seconds + (kl ? kl->seconds : 0.0);
  r.kl = std::move(kl);
  return r;
}

}  // namespace tsmc
