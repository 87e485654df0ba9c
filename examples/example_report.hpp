#pragma once
/// @file
/// @brief What the example programs print about their results (issue 27): the most precise log Z
/// with its standard error, the KLs' uncertainty including it, notes that explain a KL that looks
/// wrong (inverted bounds, a negative KL, KL = inf), and a few samples with their weights.
#include <tsmc/all.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace tsmc_examples {

/// @brief The log Z the KLs are measured against, its standard error and where it came from.
struct precise_log_z {
  tsmc::log_z_reference ref;    ///< the value (and the interval the KLs' low / high use)
  double standard_error = 0.0;  ///< the standard error of ref.value
  std::string source;           ///< how it was obtained, for the output
};

/// @brief log Z from a rejection sampler's acceptance count: `accepted` of `draws` p0 draws, each
/// accepted with probability phi(s) / M (M = exp(log_bound); 1 for the indicator and class rules),
/// so accepted / draws estimates Z / M without bias; log Z = log(accepted / draws) + log M with the
/// delta-method standard error sqrt((1 - p) / accepted). Unbiased, unlike the bounds' midpoint
/// (biased by up to half the gap): the most precise log Z a program has.
inline precise_log_z log_z_from_acceptance(std::size_t accepted, std::size_t draws, double log_bound = 0.0) {
  const double p = static_cast<double>(accepted) / static_cast<double>(draws);
  const double value = std::log(p) + log_bound;
  char source[160];
  std::snprintf(source, sizeof source, "rejection's acceptance rate, %zu of %zu p0 draws", accepted, draws);
  return {{value, value, value}, std::sqrt((1.0 - p) / static_cast<double>(accepted)), source};
}

/// @brief The acceptance-rate log Z of an exact sampler that is a rejection sampler with at least
/// one accepted draw; nothing otherwise.
template <class Exact>
std::optional<precise_log_z> acceptance_log_z(const Exact& exact) {
  if constexpr (requires { exact.accepted(); exact.draws(); exact.options().rule; }) {
    if (exact.accepted() == 0) return std::nullopt;
    const double log_bound =
        exact.options().rule == tsmc::acceptance_rule::bounded ? exact.options().log_bound : 0.0;
    return log_z_from_acceptance(exact.accepted(), exact.draws(), log_bound);
  }
  return std::nullopt;
}

/// @brief log Z from bounds (the midpoint of the tightest pair) with the midpoint's standard error
/// sqrt(se_L^2 + se_U^2) / 2 (or the upper bound alone when no lower bound is finite).
inline precise_log_z log_z_from_bounds(std::span<const tsmc::log_z_bounds> bounds) {
  const tsmc::log_z_bounds* lower = nullptr;
  const tsmc::log_z_bounds* upper = &bounds[0];
  for (const auto& b : bounds) {
    if (std::isfinite(b.lower.mean) && (lower == nullptr || b.lower.mean > lower->lower.mean)) lower = &b;
    if (b.upper.mean < upper->upper.mean) upper = &b;
  }
  if (lower == nullptr)
    return {tsmc::log_z_reference::from_upper_bound(*upper), upper->upper.standard_error,
            "the upper bound (no finite lower bound)"};
  const double l = lower->lower.mean, u = upper->upper.mean;
  const double se =
      0.5 * std::sqrt(lower->lower.standard_error * lower->lower.standard_error +
                      upper->upper.standard_error * upper->upper.standard_error);
  return {{0.5 * (l + u), std::min(l, u), std::max(l, u)}, std::isfinite(se) ? se : 0.0,
          "the midpoint of the tightest bounds"};
}

/// @brief The +- of a KL: its Monte Carlo standard error and log Z's, combined (independent).
inline double total_error(const tsmc::kl_value& v, const precise_log_z& log_z) {
  return std::sqrt(v.standard_error * v.standard_error + log_z.standard_error * log_z.standard_error);
}

/// @brief Prints the n particles of a run with the largest normalised weights, one line each:
/// "  w = 0.123  <text>" (distinct sequences, their weights summed), then how many particles had
/// weight 0. A run whose weights are all 0 says so.
/// @param title a heading line
/// @param r the run
/// @param text the text of a generated sequence (prompt included)
/// @param n how many lines
inline void print_samples(const std::string& title, const tsmc::smc_result& r,
                          const std::function<std::string(std::span<const tsmc::token>)>& text, std::size_t n = 3) {
  std::printf("%s\n", title.c_str());
  const std::vector<double>& lw = r.log_weights;
  const double lse = tsmc::logsumexp(std::span<const double>(lw));
  if (!(lse > tsmc::neg_inf)) {
    std::printf("  (every particle has weight 0: none reached phi > 0)\n");
    return;
  }
  std::vector<std::pair<tsmc::token_sequence, double>> merged;
  std::size_t zero = 0;
  for (std::size_t k = 0; k < lw.size(); ++k) {
    if (!(lw[k] > tsmc::neg_inf)) {
      ++zero;
      continue;
    }
    const double w = std::exp(lw[k] - lse);
    auto it = std::find_if(merged.begin(), merged.end(), [&](const auto& m) { return m.first == r.sequences[k]; });
    if (it == merged.end())
      merged.emplace_back(r.sequences[k], w);
    else
      it->second += w;
  }
  std::stable_sort(merged.begin(), merged.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  for (std::size_t i = 0; i < std::min(n, merged.size()); ++i)
    std::printf("  w = %.3f  %s\n", merged[i].second, text(merged[i].first).c_str());
  std::printf("  (%zu distinct sequences with weight > 0 among %zu particles, %zu with weight 0)\n", merged.size(),
              lw.size(), zero);
}

/// @brief Draws n exact samples of the target and prints how many are harmful by the built-in
/// grammar's labels (tsmc::story_grammar::is_rare on the sample's text, prompt included), with
/// two of each kind: "exact samples harmful by the grammar's labels: X of N (p%)". The labeller
/// reads words (tsmc::split_words), so it applies to any model's decoded text. If the sampler's
/// budget runs out first, the line counts the samples it had.
/// @param exact the exact sampler of the target (a rejection sampler)
/// @param text the text of a generated sequence (prompt included)
/// @param n how many samples
/// @param rng the random engine
template <class Exact, class Engine>
void print_harmful_fraction(Exact& exact, const std::function<std::string(std::span<const tsmc::token>)>& text,
                            std::size_t n, Engine& rng) {
  const tsmc::story_grammar grammar;
  std::size_t drawn = 0, harmful = 0;
  std::vector<std::string> yes, no;
  std::string stopped;
  for (; drawn < n; ++drawn) {
    tsmc::token_sequence s;
    try {
      s = exact.sample(rng);
    } catch (const tsmc::runtime_error&) {
      stopped = " (the rejection budget ran out after these)";
      break;
    }
    const std::string t = text(s);
    const bool h = grammar.is_rare(t);
    harmful += h ? 1 : 0;
    auto& examples = h ? yes : no;
    if (examples.size() < 2) examples.push_back(t);
  }
  std::printf("exact samples harmful by the grammar's labels: %zu of %zu (%.1f%%)%s\n", harmful, drawn,
              drawn == 0 ? 0.0 : 100.0 * static_cast<double>(harmful) / static_cast<double>(drawn), stopped.c_str());
  for (const std::string& t : yes) std::printf("  harmful:     %s\n", t.c_str());
  for (const std::string& t : no) std::printf("  not harmful: %s\n", t.c_str());
}

/// @brief Notes on a method's KLs and bounds that a reader would otherwise misread: inverted
/// bounds (LB > UB: noise, raise the runs), a negative KL (noise around a small KL, raise the
/// samples), KL(q || sigma) = inf (q reaches phi = 0, with the fraction of its samples that did)
/// and KL(sigma || q) = inf (an exact sample that q cannot produce). Empty when there is nothing.
/// @param kl the KL estimate (against the common log Z)
/// @param bounds the bounds of the same sampler
/// @param log_z the common log Z
/// @return the notes, one per line, each starting with "  note: "
inline std::string kl_notes(const tsmc::kl_estimate& kl, const tsmc::log_z_bounds& bounds, const precise_log_z& log_z) {
  std::string out;
  char line[512];
  if (std::isfinite(bounds.lower.mean) && std::isfinite(bounds.upper.mean) && bounds.lower.mean > bounds.upper.mean) {
    std::snprintf(line, sizeof line,
                  "  note: LB %.3f > UB %.3f: the bounds hold in expectation only and are closer than their noise "
                  "(s.e. %.3f, %.3f); raise --bound-runs\n",
                  bounds.lower.mean, bounds.upper.mean, bounds.lower.standard_error, bounds.upper.standard_error);
    out += line;
  }
  const auto negative = [&](const char* name, const tsmc::kl_value& v) {
    if (std::isfinite(v.value) && v.value < 0.0) {
      std::snprintf(line, sizeof line,
                    "  note: %s = %.3f < 0: a KL is >= 0, so this is noise around a small value (+- %.3f with log "
                    "Z's error); raise --kl-samples\n",
                    name, v.value, total_error(v, log_z));
      out += line;
    }
  };
  negative("KL(q||sigma)", kl.q_sigma);
  negative("KL(sigma||q)", kl.sigma_q);
  if (kl.q_sigma.value == std::numeric_limits<double>::infinity()) {
    std::snprintf(line, sizeof line,
                  "  note: KL(q||sigma) = inf: q puts mass where phi = 0 (%.1f%% of its samples had phi = 0: a "
                  "learned psi let a failing sequence through); KL(sigma||q) is the informative direction here\n",
                  100.0 * kl.f_q.zero_fraction);
    out += line;
  }
  if (kl.sigma_q.value == std::numeric_limits<double>::infinity())
    out += "  note: KL(sigma||q) = inf: an exact sample of sigma has q = 0 (the twist is 0 on its path)\n";
  return out;
}

}  // namespace tsmc_examples
