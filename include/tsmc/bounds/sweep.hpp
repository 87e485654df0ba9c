#pragma once
/// @file
/// @brief Bounds versus the number of particles (Zhao et al. 2024, Figure 3): a sweep over K,
/// one bounds_report per K, written as CSV or as a markdown table.

#include <tsmc/bounds/estimator.hpp>
#include <tsmc/bounds/exact_samplers.hpp>
#include <tsmc/bounds/kl.hpp>
#include <tsmc/bounds/report.hpp>
#include <tsmc/core/error.hpp>
#include <tsmc/core/file_output.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/smc/options.hpp>
#include <tsmc/smc/sampler.hpp>

#include <cstddef>
#include <fstream>
#include <optional>
#include <ostream>
#include <span>
#include <sstream>
#include <string>
#include <vector>

namespace tsmc {

/// @brief The particle counts 1, f, f^2, ... up to max (1, 4, 16, 64, 256, ... for f = 4).
/// @param max the largest count allowed (>= 1)
/// @param factor the ratio between counts (>= 2)
/// @return the counts, increasing, all <= max
/// @throw tsmc::invalid_argument if max is 0 or factor < 2
[[nodiscard]] inline std::vector<std::size_t> particle_counts(std::size_t max, std::size_t factor = 4) {
  check_positive("particle_counts", "max", max);
  check_argument(factor >= 2, "particle_counts", "factor", "must be >= 2", factor);
  std::vector<std::size_t> out;
  for (std::size_t k = 1; k <= max; k *= factor) {
    out.push_back(k);
    if (k > max / factor) break;  // the next count would exceed max (or overflow)
  }
  return out;
}

/// @brief Options of a sweep over K.
struct sweep_options {
  std::vector<std::size_t> particles = particle_counts(256);  ///< the K values (each > 0)
  std::size_t runs = 100;                                      ///< M runs per K (> 0)
  std::string method = "SMC";                                  ///< the label of every row
};

/// @brief Bounds on log Z for each K (the data of Zhao et al. 2024, Figure 3): for every K in
/// options.particles, a twisted_smc with options base (particles = K), scheme and trigger, and
/// estimate_bounds with options.runs runs.
/// @param model p0
/// @param twist the twist
/// @param potential phi
/// @param base the sampler options (particles is replaced by each K)
/// @param scheme the resampling scheme
/// @param trigger the resampling trigger
/// @param prompt s_0
/// @param exact exact samples from sigma (checked against base when it declares its target)
/// @param options the K values, runs and label
/// @param rng the random engine
/// @param kl KL estimates of the proposal (independent of K), attached to every row if given
/// @return one report per K, in order
/// @throw tsmc::invalid_argument if options.particles is empty or holds a 0, options.runs is 0,
/// or as estimate_bounds
template <class Model, class Twist, class Pot, class Scheme, class Trigger, class Exact, RandomEngine Engine>
[[nodiscard]] std::vector<bounds_report> sweep_particles(Model& model, Twist& twist, Pot& potential, smc_options base,
                                                         const Scheme& scheme, const Trigger& trigger,
                                                         std::span<const token> prompt, Exact& exact,
                                                         const sweep_options& options, Engine& rng,
                                                         const std::optional<kl_estimate>& kl = std::nullopt) {
  constexpr const char* function = "sweep_particles";
  check_positive(function, "options.particles.size()", options.particles.size());
  check_positive(function, "options.runs", options.runs);
  for (std::size_t i = 0; i < options.particles.size(); ++i)
    check_positive(function, "options.particles[" + std::to_string(i) + "]", options.particles[i]);
  std::vector<bounds_report> out;
  out.reserve(options.particles.size());
  for (const std::size_t k : options.particles) {
    base.particles = k;
    twisted_smc<Model, Twist, Pot, Scheme, Trigger> smc(model, twist, potential, base, scheme, trigger);
    const log_z_bounds b = estimate_bounds(smc, prompt, exact, options.runs, rng);
    out.push_back(make_report(options.method, k, scheme, trigger, b, kl));
  }
  return out;
}

/// @brief Writes reports as CSV: bounds_report::csv_header() then one csv_row() per report,
/// each line ending in '\n'.
/// @param out the stream
/// @param reports the rows
inline void write_csv(std::ostream& out, std::span<const bounds_report> reports) {
  out << bounds_report::csv_header() << '\n';
  for (const auto& r : reports) out << r.csv_row() << '\n';
}

/// @brief The CSV text of reports (as write_csv).
[[nodiscard]] inline std::string to_csv(std::span<const bounds_report> reports) {
  std::ostringstream out;
  write_csv(out, reports);
  return out.str();
}

/// @brief Writes reports as CSV to a file, atomically (tsmc::write_file_atomically: a failed
/// write leaves the previous file byte-identical).
/// @param path the file (replaced)
/// @param reports the rows
/// @throw tsmc::runtime_error if the file cannot be written in full
inline void write_csv_file(const std::string& path, std::span<const bounds_report> reports) {
  write_file_atomically(path, [reports](std::ostream& out) { write_csv(out, reports); }, "write_csv_file");
}

/// @brief A markdown table: bounds_report::markdown_header() then one row per report, each line
/// ending in '\n'.
[[nodiscard]] inline std::string markdown_table(std::span<const bounds_report> reports) {
  std::string out = bounds_report::markdown_header() + "\n";
  for (const auto& r : reports) out += r.markdown_row() + "\n";
  return out;
}

}  // namespace tsmc
