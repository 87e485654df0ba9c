// The distributed layer's communication overhead on the llama2.c model at the stories15M shape
// (dim 288, 6 layers, 6 heads, hidden 768, V = 32000; random weights), with the MLP twist head
// (one ReLU layer of width 288 on the model's features, V outputs). A real cluster is out of
// reach, so this measures the overhead, not the speed-up: the share of each rank's wall time spent
// inside MPI collectives (waiting for the other rank included), in one run:
//
//   training   a data-parallel CTL update (distributed::data_parallel): each rank samples its
//              K / R particles and accumulates the loss; one MPI_Allreduce of the whole gradient
//              (9.3 M doubles, 74 MB; with --float-gradients 9.3 M floats, 37 MB, and the loss and
//              the ESS in a second, 2-double allreduce), the loss and the ESS; an Adam step;
//   smc        a distributed twisted SMC run of K particles over the ranks, resampling at every
//              step (the most communication): per step one allgather of the K log-weights, per
//              resampling the particles that change rank with their KV cache rows.
//
//   OMP_NUM_THREADS=1 mpirun -np 2 distributed_overhead [--particles 64] [--horizon 16] [--updates 2]
//       [--float-gradients]
//
// The moved particles ship their real state through llama2c::model's slot hooks (the engine's
// export_slot / import_slot: the KV cache rows of every layer and position, and the hidden state).
#include <tsmc/core/random.hpp>
#include <tsmc/distributed/communicator.hpp>
#include <tsmc/distributed/smc.hpp>
#include <tsmc/distributed/training.hpp>
#include <tsmc/learning/adam.hpp>
#include <tsmc/learning/objectives.hpp>
#include <tsmc/learning/problem.hpp>
#include <tsmc/models/llama2c.hpp>
#include <tsmc/models/llama2c_checkpoint.hpp>
#include <tsmc/resampling/schemes.hpp>
#include <tsmc/resampling/triggers.hpp>
#include <tsmc/twists/features.hpp>
#include <tsmc/twists/mlp_twist.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

namespace {

const tsmc::llama2c::config stories15m{.dim = 288, .hidden_dim = 768, .n_layers = 6, .n_heads = 6, .n_kv_heads = 6,
                                       .vocab_size = 32000, .seq_len = 256, .shared_classifier = true};
const tsmc::llama2c::config tiny{.dim = 16, .hidden_dim = 32, .n_layers = 1, .n_heads = 2, .n_kv_heads = 2,
                                 .vocab_size = 64, .seq_len = 64, .shared_classifier = true};

/// A cheap potential (as bench_end_to_end's): log phi = -0.1 (last token mod 7).
struct cheap_potential {
  void log_potential(std::span<const tsmc::token_sequence> s, std::span<double> out) const {
    for (std::size_t k = 0; k < s.size(); ++k)
      out[k] = s[k].empty() ? 0.0 : -0.1 * static_cast<double>(s[k].back() % 7);
  }
};

using head = tsmc::mlp_twist<tsmc::model_features>;

head make_head(const tsmc::llama2c::config& c, std::size_t horizon) {
  const auto dim = static_cast<std::size_t>(c.dim);
  head h(tsmc::model_features(dim), tsmc::mlp_twist_options{.vocab_size = static_cast<std::size_t>(c.vocab_size),
                                                             .max_steps = horizon,
                                                             .hidden_layers = 1,
                                                             .width = dim,
                                                             .seed = 7,
                                                             .float_output = true});
  tsmc::default_engine rng(11);
  for (auto& b : h.parameters())
    if (b.name == "head.output.weight")
      for (Eigen::Index i = 0; i < b.values.size(); ++i) b.values(i) = 0.02 * tsmc::standard_normal(rng);
  return h;
}

struct settings {
  std::size_t particles = 64;
  std::size_t horizon = 16;
  std::size_t updates = 2;
  bool small = false;
  bool float_gradients = false;  // --float-gradients: gradient_transfer::single_precision
};

settings parse(int argc, char** argv, bool root) {
  settings s;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    const auto value = [&] {
      if (i + 1 >= argc) {
        if (root) std::fprintf(stderr, "distributed_overhead: error: %s needs a value\n", argv[i]);
        std::exit(2);
      }
      return std::strtoull(argv[++i], nullptr, 10);
    };
    if (a == "--particles") s.particles = value();
    else if (a == "--horizon") s.horizon = value();
    else if (a == "--updates") s.updates = value();
    else if (a == "--small") s.small = true;
    else if (a == "--float-gradients") s.float_gradients = true;
    else {
      if (root)
        std::printf("usage: mpirun -np R distributed_overhead [--particles K] [--horizon T] [--updates N] [--small] [--float-gradients]\n"
                    "  the share of wall time inside MPI collectives in a data-parallel CTL update and in a\n"
                    "  distributed SMC run (resampling every step) at the stories15M shape (--small: a tiny model)\n");
      std::exit(a == "--help" || a == "-h" ? 0 : 2);
    }
  }
  return s;
}

/// max over ranks of a double
double max_over_ranks(tsmc::distributed::communicator& comm, double x) {
  const std::vector<double> all = comm.allgather(std::span<const double>(&x, 1));
  return *std::max_element(all.begin(), all.end());
}

}  // namespace

int main(int argc, char** argv) {
  tsmc::distributed::mpi_environment environment(argc, argv);
  tsmc::distributed::communicator comm;
  const settings s = parse(argc, argv, comm.is_root());
  return tsmc::distributed::run_or_abort(comm, "distributed_overhead", [&] {
    const tsmc::llama2c::config& c = s.small ? tiny : stories15m;
    // Every rank writes the same random checkpoint to its own file (no shared file system assumed).
    const auto path = std::filesystem::temp_directory_path() /
                      ("tsmc_distributed_overhead_" + std::to_string(c.dim) + "_rank" + std::to_string(comm.rank()) +
                       "_" + std::to_string(::getpid()) + ".bin");
    tsmc::llama2c::make_random_checkpoint(path, c, 2024);
    auto weights = std::make_shared<const tsmc::llama2c::checkpoint>(path);
    const std::vector<tsmc::token> prompt{1};
    const std::size_t local = tsmc::distributed::block_range::of(s.particles, comm.rank(), comm.size()).size();
    cheap_potential potential;

    // --- training: data-parallel CTL updates, K / R particles per rank ---
    tsmc::llama2c::model model(weights);
    head twist = make_head(c, s.horizon);
    tsmc::learning_problem problem(model, twist, potential, prompt,
                                   tsmc::learning_options{.batch = local, .horizon = s.horizon,
                                                          .check_normalization = false});
    tsmc::ctl<> objective;
    tsmc::distributed::data_parallel<tsmc::ctl<>> parallel(
        comm, objective,
        s.float_gradients ? tsmc::distributed::gradient_transfer::single_precision
                          : tsmc::distributed::gradient_transfer::double_precision);
    tsmc::adam optimizer(tsmc::adam_options{.learning_rate = 1e-3});
    tsmc::default_engine rng = tsmc::distributed::training_engine(5, comm.rank());
    std::size_t gradient_size = 0;
    for (const auto& b : twist.parameters()) gradient_size += static_cast<std::size_t>(b.values.size());
    comm.barrier();
    comm.reset_stats();
    const auto train_start = std::chrono::steady_clock::now();
    for (std::size_t u = 0; u < s.updates; ++u) {
      twist.zero_gradient();
      auto batch = parallel.sample(problem, rng);
      (void)parallel.accumulate(problem, batch, rng);
      twist.set_recording(false);
      auto blocks = twist.parameters();
      optimizer.step(blocks);
    }
    const double train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - train_start).count();
    const double train_comm = comm.stats().seconds;
    const double train_share_max = max_over_ranks(comm, train_comm / train_seconds);

    // --- SMC: K particles over the ranks, resampling at every step ---
    tsmc::distributed::twisted_smc smc(comm, model, twist, potential,
                                       tsmc::smc_options{.particles = s.particles, .horizon = s.horizon},
                                       tsmc::systematic{}, tsmc::always);
    tsmc::default_engine smc_rng(9);
    comm.barrier();
    const tsmc::distributed::distributed_smc_result run = smc.run(prompt, smc_rng);
    const double smc_share_max = max_over_ranks(comm, run.communication_seconds / run.seconds);
    std::filesystem::remove(path);

    // The same collectives again, each after a barrier: the transfer alone, without the wait for
    // a slower rank that the shares above include (on a loaded machine that wait dominates).
    const auto timed = [&](auto&& collective) {
      double best = 1e300;
      for (int i = 0; i < 3; ++i) {
        comm.barrier();
        const auto t0 = std::chrono::steady_clock::now();
        collective();
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      return max_over_ranks(comm, best);
    };
    std::vector<double> gradient(gradient_size + 2, 1.0);
    std::vector<float> float_gradient(gradient_size, 1.0f);
    const double allreduce_alone =
        s.float_gradients ? timed([&] {
          comm.allreduce_sum(std::span<float>(float_gradient));
          comm.allreduce_sum(std::span<double>(gradient).first(2));
        })
                          : timed([&] { comm.allreduce_sum(std::span<double>(gradient)); });
    std::vector<double> weights_flags(2 * local, 0.0);
    const double allgather_alone = timed([&] { (void)comm.allgather(weights_flags); });
    const std::size_t resamplings_done = run.moved_bytes.size();
    const double bytes_per = resamplings_done == 0 ? 0.0
        : std::accumulate(run.moved_bytes.begin(), run.moved_bytes.end(), 0.0) / static_cast<double>(resamplings_done);
    std::vector<std::vector<std::byte>> send(comm.size());
    send[(comm.rank() + 1) % comm.size()].resize(static_cast<std::size_t>(bytes_per / static_cast<double>(comm.size())));
    const double exchange_alone = timed([&] { (void)comm.exchange(send); });
    const double smc_alone = static_cast<double>(run.local.steps) * allgather_alone +
                             static_cast<double>(resamplings_done) * exchange_alone;

    if (comm.is_root()) {
      std::printf("transfer alone (after a barrier, slowest rank): gradient allreduce %.4f s = %.2f%% of an update; "
                  "per SMC run %zu allgathers of %zu doubles (%.2e s each) and %zu exchanges of %.0f bytes (%.2e s "
                  "each) = %.4f s = %.2f%% of the run\n",
                  allreduce_alone, 100.0 * allreduce_alone / (train_seconds / static_cast<double>(s.updates)),
                  run.local.steps, 2 * s.particles, allgather_alone, resamplings_done, bytes_per, exchange_alone,
                  smc_alone, 100.0 * smc_alone / run.seconds);
    }
    if (comm.is_root()) {
      const std::size_t resamplings = run.moved_bytes.size();
      const double bytes = std::accumulate(run.moved_bytes.begin(), run.moved_bytes.end(), 0.0);
      const double moved = std::accumulate(run.moved_particles.begin(), run.moved_particles.end(), 0.0);
      std::printf("distributed_overhead: %s shape (dim %d, %d layers, V = %d), %zu ranks, K = %zu (%zu per rank), "
                  "T = %zu\n",
                  s.small ? "tiny" : "stories15M", c.dim, c.n_layers, c.vocab_size, comm.size(), s.particles, local,
                  s.horizon);
      std::printf("training: %zu CTL update(s) in %.3f s on rank 0, %.4f s in collectives: communication share %.2f%% "
                  "(max over ranks %.2f%%); gradient %zu %s allreduced per update\n",
                  s.updates, train_seconds, train_comm, 100.0 * train_comm / train_seconds, 100.0 * train_share_max,
                  gradient_size, s.float_gradients ? "floats" : "doubles");
      std::printf("smc: %zu steps in %.3f s on rank 0, %.4f s in collectives: communication share %.2f%% (max over "
                  "ranks %.2f%%); %zu resamplings, %.1f particles and %.0f bytes moved between ranks per resampling "
                  "(%.0f bytes in all)\n",
                  run.local.steps, run.seconds, run.communication_seconds,
                  100.0 * run.communication_seconds / run.seconds, 100.0 * smc_share_max, resamplings,
                  resamplings ? moved / static_cast<double>(resamplings) : 0.0,
                  resamplings ? bytes / static_cast<double>(resamplings) : 0.0, bytes);
    }
    return 0;
  });
}
