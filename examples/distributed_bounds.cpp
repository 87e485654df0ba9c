// Bounds on log Z over MPI ranks (the distributed layer, <tsmc/distributed/...>, target tsmc::mpi):
// the sweep over K of bounds_sweep's toy problem with every K's runs split over the ranks, the KL
// estimates of the two proposals likewise, and one distributed SMC run whose particles live on
// all the ranks. Run it with
//
//   mpirun -np 4 distributed_bounds [--particles-max N] [--runs M] [--kl-samples S]
//                                   [--smc-particles K] [--seed S] [--csv PATH]
//
// Seeds: run m of an estimate draws from its own stream (seed, m) wherever it runs, so the table
// is the same with any number of ranks (bit for bit, `mpirun -np 1` included). Rank 0 prints and
// writes the CSV; an error on any rank ends the job with that rank's message.
#include "noisy_twist.hpp"

#include <tsmc/bounds/exact_samplers.hpp>
#include <tsmc/bounds/kl.hpp>
#include <tsmc/bounds/report.hpp>
#include <tsmc/bounds/sweep.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/distributed/bounds.hpp>
#include <tsmc/distributed/communicator.hpp>
#include <tsmc/distributed/smc.hpp>
#include <tsmc/resampling/schemes.hpp>
#include <tsmc/resampling/triggers.hpp>
#include <tsmc/testing/enumeration.hpp>
#include <tsmc/testing/toy_model.hpp>
#include <tsmc/testing/toy_potentials.hpp>
#include <tsmc/twists/no_twist.hpp>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <numeric>
#include <span>
#include <string>
#include <vector>

namespace {

using tsmc_examples::noisy_twist;

/// The toy model as a SlotStateModel (core/slot_state.hpp): a slot's state is its generated
/// prefix, which export_slot writes as bytes and import_slot reads back. This is all a model needs
/// for its particles to move between ranks in distributed::twisted_smc.
class movable_model {
 public:
  explicit movable_model(const tsmc::testing::tabular_model& table) : table_(&table) {}
  [[nodiscard]] std::size_t vocab_size() const { return table_->vocab_size(); }
  void start(std::span<const tsmc::token> prompt, std::size_t particles) {
    prompt_.assign(prompt.begin(), prompt.end());
    prefixes_.assign(particles, {});
  }
  void log_probs(tsmc::log_prob_ref out) {
    row_.resize(vocab_size());
    for (std::size_t k = 0; k < prefixes_.size(); ++k) {
      table_->next_log_probs(prompt_, prefixes_[k], row_);
      for (std::size_t v = 0; v < row_.size(); ++v)
        out(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(v)) = row_[v];
    }
  }
  void append(std::span<const tsmc::token> tokens) {
    for (std::size_t k = 0; k < tokens.size(); ++k) prefixes_[k].push_back(tokens[k]);
  }
  void reorder(std::span<const tsmc::particle_index> ancestors) {
    for (std::size_t k = 0; k < ancestors.size(); ++k)
      if (ancestors[k] != k) prefixes_[k] = prefixes_[ancestors[k]];
  }
  void export_slot(std::size_t slot, std::vector<std::byte>& out) const {
    const auto* bytes = reinterpret_cast<const std::byte*>(prefixes_[slot].data());
    out.insert(out.end(), bytes, bytes + prefixes_[slot].size() * sizeof(tsmc::token));
  }
  void import_slot(std::size_t slot, std::span<const std::byte> bytes) {
    prefixes_[slot].resize(bytes.size() / sizeof(tsmc::token));
    if (!bytes.empty()) std::memcpy(prefixes_[slot].data(), bytes.data(), bytes.size());
  }

 private:
  const tsmc::testing::tabular_model* table_;
  tsmc::token_sequence prompt_;
  std::vector<tsmc::token_sequence> prefixes_;
  std::vector<double> row_;
};

struct settings {
  std::size_t particles_max = 64;
  std::size_t runs = 64;
  std::size_t kl_samples = 512;
  std::size_t smc_particles = 64;
  std::uint64_t seed = 1;
  std::string csv;
};

}  // namespace

int main(int argc, char** argv) {
  tsmc::distributed::mpi_environment environment(argc, argv);
  tsmc::distributed::communicator comm;
  settings s;
  CLI::App app{"distributed_bounds: bounds on log Z, KL estimates and one SMC run over MPI ranks "
               "(run with mpirun -np N); the numbers do not depend on N"};
  app.add_option("--particles-max", s.particles_max, "largest K of the sweep 1, 4, 16, ...")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--runs", s.runs, "runs per bound and K, split over the ranks")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--kl-samples", s.kl_samples, "samples from q and from sigma per KL estimate")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--smc-particles", s.smc_particles, "K of the distributed SMC run (at least the number of ranks)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--seed", s.seed, "seed of every stream")->capture_default_str();
  app.add_option("--csv", s.csv, "write the table as CSV (rank 0)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // every rank parses the same arguments; rank 0 prints the help or the error
    return comm.is_root() ? app.exit(e) : (e.get_exit_code());
  }
  if (s.smc_particles < comm.size()) {
    if (comm.is_root())
      std::cerr << "distributed_bounds: error: --smc-particles " << s.smc_particles << " must be at least the number "
                << "of ranks " << comm.size() << "\n";
    return 2;
  }
  if (comm.is_root() && !s.csv.empty() && !std::ofstream(s.csv, std::ios::app)) {
    std::cerr << "distributed_bounds: error: --csv " << s.csv << ": cannot be opened for writing\n";
    comm.abort("--csv is not writable", 2);
  }

  return tsmc::distributed::run_or_abort(comm, "distributed_bounds", [&] {
    // bounds_sweep's problem: V = 4, T = 6, phi(s) = P(c | s) of a logistic classifier.
    const tsmc::token_sequence prompt{1, 2};
    constexpr std::size_t horizon = 6;
    tsmc::testing::tabular_model model(4, 2024, 1.5);
    auto classifier = tsmc::testing::soft_classifier::random(4, 7, 1.5, -4.0, 1.0);
    const tsmc::testing::exact_solution solution =
        tsmc::testing::enumerate(tsmc::testing::toy_problem{4, horizon, prompt, std::nullopt}, model, classifier);
    auto exact = tsmc::class_rejection_sampler(model, classifier, prompt, {.horizon = horizon, .batch = 32});
    tsmc::no_twist none;
    noisy_twist twist{tsmc::testing::optimal_twist(solution), tsmc::testing::random_twist(s.seed + 17, 0.3)};
    const std::vector<std::size_t> particles = tsmc::particle_counts(s.particles_max);
    const tsmc::smc_options base{.horizon = horizon, .proposal = tsmc::proposal_type::base};
    tsmc::smc_options twisted = base;
    twisted.proposal = tsmc::proposal_type::twisted;

    // 1. The sweep over K: each K's runs split over the ranks (run m from stream (seed', m)).
    comm.reset_stats();
    const auto start = std::chrono::steady_clock::now();
    std::vector<tsmc::bounds_report> reports;
    const auto add = [&](const std::vector<tsmc::bounds_report>& rows) {
      reports.insert(reports.end(), rows.begin(), rows.end());
    };
    add(tsmc::distributed::sweep_particles(comm, model, none, classifier, base, tsmc::multinomial{}, tsmc::always,
                                           prompt, exact,
                                           {.particles = particles, .runs = s.runs, .method = "SMC, base proposal"},
                                           s.seed));
    add(tsmc::distributed::sweep_particles(comm, model, twist, classifier, twisted, tsmc::multinomial{}, tsmc::always,
                                           prompt, exact,
                                           {.particles = particles, .runs = s.runs, .method = "twisted SMC, noisy psi*"},
                                           s.seed + 1));
    // 2. The KLs of the two proposals (Eq. 23), samples split over the ranks.
    const auto log_z = tsmc::log_z_reference::from_bounds(reports.back().bounds);
    const tsmc::kl_options kl{.horizon = horizon, .proposal = tsmc::proposal_type::base,
                              .proposal_samples = s.kl_samples, .exact_samples = s.kl_samples};
    tsmc::kl_options kl_twisted = kl;
    kl_twisted.proposal = tsmc::proposal_type::twisted;
    const auto kl_base = tsmc::distributed::estimate_kl(comm, model, none, classifier, prompt, exact, log_z, kl, s.seed + 2);
    const auto kl_twist =
        tsmc::distributed::estimate_kl(comm, model, twist, classifier, prompt, exact, log_z, kl_twisted, s.seed + 3);
    for (auto& r : reports) r.kl = r.method.rfind("twisted", 0) == 0 ? kl_twist : kl_base;
    const double estimate_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const tsmc::distributed::communication_stats estimate_comm = comm.stats();

    // 3. One SMC run whose K particles are spread over the ranks (global resampling).
    movable_model movable(model);
    tsmc::distributed::twisted_smc smc(comm, movable, twist, classifier,
                                       tsmc::smc_options{.particles = s.smc_particles, .horizon = horizon},
                                       tsmc::systematic{}, tsmc::always);
    tsmc::default_engine rng(s.seed + 4);  // the same state on every rank
    const tsmc::distributed::distributed_smc_result run = smc.run(prompt, rng);

    if (comm.is_root()) {
      const auto moved = std::accumulate(run.moved_particles.begin(), run.moved_particles.end(), std::size_t{0});
      const auto bytes = std::accumulate(run.moved_bytes.begin(), run.moved_bytes.end(), std::uint64_t{0});
      const std::size_t resamplings = run.moved_bytes.size();
      std::cout << "# Bounds on log Z over " << comm.size() << " MPI rank(s)\n\n"
                << "Toy problem: V = 4, T = 6, phi = P(c | s); exact log Z = " << solution.log_z()
                << " (enumeration). Every estimate below is the same with any number of ranks.\n\n"
                << tsmc::markdown_table(reports) << "\nEstimates: " << estimate_seconds << " s on rank 0, of which "
                << estimate_comm.seconds << " s in collectives (" << estimate_comm.calls << " calls, "
                << estimate_comm.bytes_sent + estimate_comm.bytes_received << " bytes sent and received by rank 0).\n\n"
                << "Distributed twisted SMC, K = " << run.particles << " over " << comm.size()
                << " rank(s): log Zhat = " << run.local.log_z << ", " << resamplings << " resampling(s), "
                << moved << " particle(s) moved between ranks, " << bytes << " bytes moved ("
                << (resamplings ? static_cast<double>(bytes) / static_cast<double>(resamplings) : 0.0)
                << " per resampling); " << run.communication_seconds << " of " << run.seconds
                << " s in collectives on rank 0.\n";
      if (!s.csv.empty()) {
        tsmc::write_csv_file(s.csv, reports);
        std::cout << "\nwrote " << s.csv << "\n";
      }
    }
    return 0;
  });
}
