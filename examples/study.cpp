// study (issue 27, item 8): does CTL beat DPG, SIXO and FUDGE once horizons are longer? On the
// built-in world (Kneser-Ney trigram, sentences ending at </s>: at T = 10 and 15 words most
// samples are whole one- or two-clause sentences), the target is the sentiment task of Zhao et al.
// 2024, Table 3: sigma(s) proportional to p0(s) P(negative | s). For one horizon and one seed, each
// method trains the same head (mlp_twist on model_and_prefix_features, one hidden layer of 64,
// FUDGE: sigmoid_twist around it) from the same initialisation with the same budget (updates x
// batch, Adam at the same step size); then, per method, KL(q || sigma) and KL(sigma || q) of its
// twisted proposal (Eq. 23) against log Z from the rejection sampler's acceptance rate (unbiased,
// with its standard error), and the bounds on log Z (SMC / conditional SMC, systematic resampling
// at ESS < K/2) at every K asked for. One CSV row per (method, K). scripts/study.sh runs the grid
// (seeds x horizons) and summarises it.
//
//   ./build/dev/examples/study --horizon 5 --seed 1 --csv study_T5_s1.csv
#include "example_report.hpp"
#include "example_world.hpp"
#include "program_support.hpp"

#include <tsmc/all.hpp>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct settings {
  std::size_t corpus = 5000;
  std::size_t horizon = 5;
  std::uint64_t seed = 1;
  std::size_t updates = 400;
  std::size_t batch = 64;
  double learning_rate = 3e-3;
  std::vector<std::size_t> particles{16, 64};
  std::size_t bound_runs = 32;
  std::size_t kl_samples = 512;
  std::size_t log_z_draws = 200'000;
  std::string methods = "CTL,DPG,SIXO,FUDGE";
  std::string csv;
};

std::string fmt(double x) { return tsmc_examples::csv_number(x); }

}  // namespace

int main(int argc, char** argv) {
  settings s;
  tsmc_examples::program p("study",
                           "study: CTL, DPG, SIXO and FUDGE at one horizon and seed on the built-in world's "
                           "negative-sentiment target: KLs against log Z from rejection, bounds on log Z at each K");
  using tsmc_examples::limits;
  p.count("--corpus", s.corpus, limits::corpus_min, limits::corpus_max, "sentences of the built-in corpus");
  p.count("--horizon", s.horizon, 1, 64, "T, words after the prompt \"the\" (sentences end at </s>)");
  p.seed("--seed", s.seed, "the seed of training and measurement (the head's initialisation is fixed)");
  p.count("--updates", s.updates, 1, limits::updates_max, "updates per method");
  p.count("--batch", s.batch, 1, limits::particles_max, "particles per update");
  p.number("--learning-rate", s.learning_rate, 0.0, true, 1.0, false, "Adam's step size, in (0, 1]");
  p.app()
      .add_option("--particles", s.particles, "K of the bounds' SMC runs (several allowed)")
      ->check(CLI::Range(std::size_t{1}, limits::particles_max))
      ->capture_default_str();
  p.count("--bound-runs", s.bound_runs, 1, limits::runs_max, "runs per bound");
  p.count("--kl-samples", s.kl_samples, 1, limits::samples_max, "samples of q and of sigma per KL");
  p.count("--log-z-draws", s.log_z_draws, 1, limits::rejection_budget_max,
          "p0 draws of the rejection sampler that estimates log Z");
  p.text("--methods", s.methods, "comma-separated subset of CTL,DPG,SIXO,FUDGE");
  p.output("--csv", s.csv, "append the rows to this CSV file (header written when it is new; the file is "
                           "replaced atomically with its old rows and the new ones)");
  p.rule([&] {
    // Every comma-separated item (empty ones included: "CTL," is a slip) must be a method.
    for (std::size_t from = 0;;) {
      const std::size_t comma = s.methods.find(',', from);
      const std::string m = s.methods.substr(from, comma == std::string::npos ? std::string::npos : comma - from);
      if (m != "CTL" && m != "DPG" && m != "SIXO" && m != "FUDGE")
        return "--methods must list some of CTL, DPG, SIXO, FUDGE separated by commas, got " +
               tsmc_examples::quote_value(s.methods);
      if (comma == std::string::npos) return std::string();
      from = comma + 1;
    }
  });
  if (const auto status = p.parse(argc, argv)) return *status;
  return p.run([&] {
    const auto start = std::chrono::steady_clock::now();
    tsmc_examples::world w = tsmc_examples::make_world(s.corpus);
    const tsmc::token_sequence prompt = w.vocabulary.encode("the");
    const std::optional<tsmc::token> end = tsmc::word_tokenizer::end_token;
    const std::size_t V = w.model.vocab_size(), T = s.horizon;
    tsmc::classifier_potential target(w.sentiment, static_cast<std::size_t>(tsmc::sentiment::negative));
    // log Z from a long rejection run (its acceptance rate estimates Z without bias).
    auto counter = tsmc::class_rejection_sampler(w.model, target, prompt,
                                                 {.horizon = T, .end_token = end, .batch = 512, .budget = s.log_z_draws});
    tsmc::default_engine z_rng(1000 + T);
    while (counter.draws() < s.log_z_draws) (void)counter.sample(z_rng);
    const tsmc_examples::precise_log_z log_z = tsmc_examples::log_z_from_acceptance(counter.accepted(), counter.draws());
    std::printf("T = %zu, seed %llu: log Z = %.4f +- %.4f (%zu of %zu p0 draws accepted)\n", T,
                static_cast<unsigned long long>(s.seed), log_z.ref.value, log_z.standard_error, counter.accepted(),
                counter.draws());
    auto exact = tsmc::class_rejection_sampler(w.model, target, prompt,
                                               {.horizon = T, .end_token = end, .batch = 512, .budget = 100'000'000});
    auto make_head = [&] {
      return tsmc::mlp_twist(
          tsmc::make_model_and_prefix_features(w.model.feature_dimension(),
                                               {.vocab_size = V, .embedding_size = 8, .window = 0, .seed = 3}),
          {.vocab_size = V, .max_steps = T, .hidden_layers = 1, .width = 64, .seed = 2});
    };
    std::ostringstream rows;
    auto measure = [&](const char* name, auto& twist, auto& objective) {
      tsmc::default_engine rng(s.seed);
      tsmc::learning_problem problem(w.model, twist, target, std::span<const tsmc::token>(prompt),
                                     {.batch = s.batch, .horizon = T, .end_token = end});
      tsmc::adam optimizer({.learning_rate = s.learning_rate});
      const auto t0 = std::chrono::steady_clock::now();
      (void)tsmc::train(problem, objective, optimizer, {.updates = s.updates}, rng);
      const double train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      twist.set_recording(false);
      tsmc::twisted_smc one(w.model, twist, target, {.particles = 1, .horizon = T, .end_token = end});
      const tsmc::kl_estimate kl = tsmc::estimate_kl(
          one, std::span<const tsmc::token>(prompt), exact, log_z.ref,
          tsmc::kl_samples{.proposal_samples = s.kl_samples, .exact_samples = s.kl_samples, .batch = 256}, rng);
      for (const std::size_t K : s.particles) {
        tsmc::twisted_smc smc(w.model, twist, target, {.particles = K, .horizon = T, .end_token = end},
                              tsmc::systematic{}, tsmc::ess_below(0.5));
        const tsmc::log_z_bounds b = tsmc::estimate_bounds(smc, std::span<const tsmc::token>(prompt), exact,
                                                            s.bound_runs, rng);
        rows << T << ',' << name << ',' << s.seed << ',' << K << ',' << fmt(kl.q_sigma.value) << ','
             << fmt(tsmc_examples::total_error(kl.q_sigma, log_z)) << ',' << fmt(kl.sigma_q.value) << ',' << fmt(tsmc_examples::total_error(kl.sigma_q, log_z)) << ','
             << fmt(b.lower.mean) << ',' << fmt(b.lower.standard_error) << ',' << fmt(b.upper.mean) << ','
             << fmt(b.upper.standard_error) << ',' << fmt(b.upper.mean - b.lower.mean) << ',' << fmt(log_z.ref.value) << ','
             << fmt(log_z.standard_error) << ',' << fmt(train_seconds) << '\n';
        std::printf("%-6s K = %3zu  KL(q||s) %.3f +- %.3f  KL(s||q) %.3f +- %.3f  LB %.3f  UB %.3f  gap %.3f  (train %.1f s)\n",
                    name, K, kl.q_sigma.value, tsmc_examples::total_error(kl.q_sigma, log_z), kl.sigma_q.value, tsmc_examples::total_error(kl.sigma_q, log_z),
                    b.lower.mean, b.upper.mean, b.upper.mean - b.lower.mean, train_seconds);
        std::fflush(stdout);
      }
    };
    const auto wanted = [&](const char* m) { return ("," + s.methods + ",").find(std::string(",") + m + ",") != std::string::npos; };
    if (wanted("CTL")) {
      auto twist = make_head();
      tsmc::ctl<> objective;
      measure("CTL", twist, objective);
    }
    if (wanted("DPG")) {
      auto twist = make_head();
      tsmc::dpg<> objective;
      measure("DPG", twist, objective);
    }
    if (wanted("SIXO")) {
      auto twist = make_head();
      tsmc::sixo<> objective;
      measure("SIXO", twist, objective);
    }
    if (wanted("FUDGE")) {
      tsmc::sigmoid_twist twist(make_head());
      tsmc::fudge objective;
      measure("FUDGE", twist, objective);
    }
    if (!s.csv.empty()) {
      // Append: the old rows (if any) and the new ones, written atomically (a failed write leaves
      // the old file as it was).
      std::ostringstream old;
      if (std::ifstream in(s.csv, std::ios::binary); in) old << in.rdbuf();
      const std::string before = old.str();
      p.write_output("--csv", s.csv, [&](std::ostream& out) {
        if (before.empty())
          out << "horizon,method,seed,particles,kl_q_sigma,kl_q_sigma_err,kl_sigma_q,kl_sigma_q_err,lower,lower_se,"
                 "upper,upper_se,gap,log_z,log_z_se,train_seconds\n";
        out << before << rows.str();
      });
    }
    std::printf("whole run %.1f s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    return 0;
  });
}
