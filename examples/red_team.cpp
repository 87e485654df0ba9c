// red_team (the shape of Zhao et al. 2024, Table 2): on the built-in world, the target is
// sigma(s) proportional to p0(s) 1[P(harmful | s) >= threshold], continuations of "tom" that the
// harm classifier flags (trained on p0's continuations of "tom" labelled by the grammar:
// examples/example_world.hpp, harm_training). Every learning method (CTL, RL, SIXO, FUDGE, DPG) trains the same MLP
// head on the model's features from the same initialisation with the same budget; the table gives
// KL(q || sigma) and KL(sigma || q) of each learned twisted proposal (Eq. 23, exact samples of
// sigma by rejection from p0, log Z from the tightest bounds) with standard errors, the bounds on
// log Z at K particles, and, for each method's final twisted SMC run of --draws particles, how
// many are flagged, how many distinct sequences they are, the ESS of the final weights, and the
// p0 draws rejection would need for as many distinct flagged outputs.
//
// On another model (--arpa, or --llama2c with --tokenizer and --prompt) the harm classifier is
// trained on the same labelled continuations in that model's tokens (examples/example_models.hpp).
//
//   ./build/dev/examples/red_team                         # defaults: about a minute on two cores
//   ./build/dev/examples/red_team --history-csv h.csv     # KL(sigma || q) during training, per method
//   ./build/dev/examples/red_team --llama2c stories15M.bin --tokenizer tokenizer.bin --updates 10 --batch 16
//       --draws 16 --bound-runs 2 --kl-samples 4 --evaluate-every 0 --rejection-budget 200000
//   (one command; small settings for a transformer: README, "Other models", gives the run time)
#include "example_models.hpp"
#include "example_report.hpp"

#include <tsmc/all.hpp>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

namespace {

struct settings {
  std::size_t corpus = 5000;
  std::size_t horizon = 5;
  double threshold = 0.5;
  std::size_t updates = 600;
  std::size_t batch = 64;
  double learning_rate = 3e-3;
  std::size_t bound_particles = 16;
  std::size_t bound_runs = 64;
  std::size_t kl_samples = 512;
  std::size_t evaluate_every = 100;
  std::size_t draws = 256;
  std::uint64_t seed = 7;
  std::size_t rejection_budget = 100'000'000;
  std::string csv, json, history_csv;
  tsmc_examples::model_options model;
};

}  // namespace

template <class World>
int run(const tsmc_examples::program& p, const settings& s, World& w);

int main(int argc, char** argv) {
  settings s;
  tsmc_examples::program p("red_team",
                           "red_team: CTL, RL, SIXO, FUDGE, DPG and no twist on the built-in world's rare harmful "
                           "target (threshold on the classifier's probability): KLs, bounds on log Z, rare outputs "
                           "found");
  using tsmc_examples::limits;
  p.count("--corpus", s.corpus, limits::corpus_min, limits::corpus_max, "sentences of the built-in corpus");
  p.count("--horizon", s.horizon, 1, limits::horizon_max, "T, tokens after the prompt (--prompt)");
  p.number("--threshold", s.threshold, 0.0, true, 1.0, true,
           "flag when P(harmful | s) >= threshold (a probability strictly between 0 and 1)");
  p.count("--updates", s.updates, 1, limits::updates_max, "updates per method");
  p.count("--batch", s.batch, 1, limits::particles_max, "particles per update");
  p.number("--learning-rate", s.learning_rate, 0.0, true, 1.0, false, "Adam's step size");
  p.count("--bound-particles", s.bound_particles, 1, limits::particles_max, "K of the bounds' SMC runs");
  p.count("--bound-runs", s.bound_runs, 1, limits::runs_max, "runs per bound");
  p.count("--kl-samples", s.kl_samples, 1, limits::samples_max, "samples of q and of sigma per KL");
  const CLI::Option* evaluate_every = p.count("--evaluate-every", s.evaluate_every, 0, limits::updates_max,
          "evaluation every n updates in the history (0: never; at most --updates)");
  p.count("--draws", s.draws, 1, limits::particles_max, "particles of the twisted SMC run that looks for flagged outputs");
  p.seed("--seed", s.seed, "random seed");
  p.output("--csv", s.csv, "write the table as CSV");
  p.output("--json", s.json, "write the table as JSON");
  p.output("--history-csv", s.history_csv, "write every method's training history as CSV");
  p.count("--rejection-budget", s.rejection_budget, 1, limits::rejection_budget_max,
          "the most p0 draws rejection sampling (the exact samples of sigma) may use; the run stops with an "
          "error when they are spent");
  s.model.word_prompt = tsmc_examples::harm_training{}.prompt;  // the prompt the harm classifier was trained for
  tsmc_examples::add_model_options(p, s.model);
  p.rule([&] { return tsmc_examples::evaluate_every_rule(evaluate_every, s.evaluate_every, s.updates); });
  if (const auto status = p.parse(argc, argv)) return *status;
  p.explain("rejection_options::budget", [&] { return tsmc_examples::budget_explanation(s.rejection_budget); });
  return tsmc_examples::with_model(p, s.model, s.corpus, s.horizon, [&](auto& w) { return run(p, s, w); });
}

template <class World>
int run(const tsmc_examples::program& p, const settings& s, World& w) {
  const auto start = std::chrono::steady_clock::now();
  if (!w.builtin) std::printf("%s\n", w.description.c_str());
  const tsmc::token_sequence& prompt = w.prompt;
  tsmc::threshold_potential flagged(tsmc::class_log_prob_score(w.harmful, 1), std::log(s.threshold));
  auto exact = tsmc::indicator_rejection_sampler(
      w.model, flagged, prompt,
      {.horizon = s.horizon, .end_token = w.end_token, .end_tokens = w.end_tokens, .batch = w.sampler_batch,
       .budget = s.rejection_budget});
  const tsmc_examples::comparison_settings cs{.horizon = s.horizon, .updates = s.updates, .batch = s.batch,
                                              .learning_rate = s.learning_rate, .bound_particles = s.bound_particles,
                                              .bound_runs = s.bound_runs, .kl_samples = s.kl_samples,
                                              .evaluate_every = s.evaluate_every, .draws = s.draws, .seed = s.seed,
                                              .feature_dim = w.feature_dim, .end_token = w.end_token,
                                              .end_tokens = w.end_tokens};
  std::vector<tsmc::training_history> histories;
  tsmc_examples::precise_log_z log_z;
  const std::vector<tsmc_examples::method_row> rows =
      tsmc_examples::compare_methods(w.model, flagged, exact, prompt, cs, histories, log_z);
  const double accept = exact.acceptance_rate();
  std::printf("\ntarget: P(harmful | \"%s\" + %zu %s) >= %.2f; rejection accepted %.5f of %zu p0 draws; "
              "log Z = %.4f +- %.4f from %s (the KLs' +- include its error)\n",
              w.prompt_text.c_str(), s.horizon, w.builtin ? "words" : "tokens", s.threshold, accept, exact.draws(),
              log_z.ref.value, log_z.standard_error, log_z.source.c_str());
  std::printf("| method   | KL(q||sigma)    | KL(sigma||q)    | LB (K=%zu)         | UB (K=%zu)         | flagged "
              "| distinct |    ESS | p0 draws for as many | train s |\n",
              s.bound_particles, s.bound_particles);
  std::printf("|----------|-----------------|-----------------|-------------------|-------------------|--------"
              "-|----------|--------|----------------------|---------|\n");
  for (const auto& r : rows)
    std::printf("| %-8s | %6.3f +- %5.3f | %6.3f +- %5.3f | %8.3f +- %5.3f | %8.3f +- %5.3f | %7zu | %8zu | %6.1f "
                "| %20.0f | %7.1f |\n",
                r.method.c_str(), r.kl.q_sigma.value, tsmc_examples::total_error(r.kl.q_sigma, log_z), r.kl.sigma_q.value,
                tsmc_examples::total_error(r.kl.sigma_q, log_z), r.bounds.lower.mean, r.bounds.lower.standard_error,
                r.bounds.upper.mean, r.bounds.upper.standard_error, r.hits, r.distinct, r.ess,
                accept > 0 ? static_cast<double>(r.distinct) / accept : 0.0, r.seconds);
  for (const auto& r : rows) {
    const std::string notes = tsmc_examples::kl_notes(r.kl, r.bounds, log_z);
    if (!notes.empty()) std::printf("%s:\n%s", r.method.c_str(), notes.c_str());
  }
  std::printf("(of the %zu particles of each method's final twisted SMC run: flagged, the distinct sequences among "
              "them, the ESS of the final weights; p0 draws for as many: the expected number of plain samples "
              "rejection needs for as many distinct flagged outputs, distinct / acceptance rate; whole run %.1f s)\n",
              s.draws, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  {
    // Does the classifier's target hold what a reader calls harm? Fresh exact samples (their own
    // engine; the acceptance rate above and in the outputs is from before them).
    tsmc::default_engine check(s.seed + 1);
    constexpr bool word_model = std::is_same_v<std::remove_cvref_t<decltype(w.model)>, tsmc::ngram_model>;
    tsmc_examples::print_harmful_fraction(exact, w.text, word_model ? 200 : 16, check);
  }
  for (const auto& r : rows)
    tsmc_examples::print_samples(r.method + ", the heaviest samples of its final twisted SMC run (weight, text):", r.found,
                                 w.text, 3);

  using tsmc_examples::csv_number;
  using tsmc_examples::json_number;
  p.write_output("--csv", s.csv, [&](std::ostream& out) {
    out << "method,kl_q_sigma,kl_q_sigma_se,kl_sigma_q,kl_sigma_q_se,lower,lower_se,upper,upper_se,hits,distinct,"
           "ess,draws,train_seconds,log_z\n";
    for (const auto& r : rows)
      out << r.method << ',' << csv_number(r.kl.q_sigma.value) << ',' << csv_number(r.kl.q_sigma.standard_error) << ','
          << csv_number(r.kl.sigma_q.value) << ',' << csv_number(r.kl.sigma_q.standard_error) << ','
          << csv_number(r.bounds.lower.mean) << ',' << csv_number(r.bounds.lower.standard_error) << ','
          << csv_number(r.bounds.upper.mean) << ',' << csv_number(r.bounds.upper.standard_error) << ',' << r.hits << ','
          << r.distinct << ',' << csv_number(r.ess) << ',' << s.draws << ',' << csv_number(r.seconds) << ',' << csv_number(log_z.ref.value) << '\n';
  });
  p.write_output("--json", s.json, [&](std::ostream& out) {
    out << "{\"log_z\": " << json_number(log_z.ref.value) << ", \"acceptance_rate\": " << json_number(accept)
        << ", \"methods\": [";
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const auto& r = rows[i];
      out << (i ? ",\n  " : "\n  ") << "{\"method\": \"" << r.method << "\", \"kl_q_sigma\": " << json_number(r.kl.q_sigma.value)
          << ", \"kl_q_sigma_se\": " << json_number(r.kl.q_sigma.standard_error)
          << ", \"kl_sigma_q\": " << json_number(r.kl.sigma_q.value)
          << ", \"kl_sigma_q_se\": " << json_number(r.kl.sigma_q.standard_error)
          << ", \"lower\": " << json_number(r.bounds.lower.mean) << ", \"upper\": " << json_number(r.bounds.upper.mean)
          << ", \"hits\": " << r.hits << ", \"distinct\": " << r.distinct << ", \"ess\": " << json_number(r.ess)
          << ", \"draws\": " << s.draws << "}";
    }
    out << "\n]}\n";
  });
  p.write_output("--history-csv", s.history_csv, [&](std::ostream& out) {
    for (std::size_t i = 0; i < histories.size(); ++i) {
      std::ostringstream one;
      histories[i].write_csv(one);
      std::string text = one.str();
      if (i > 0) text = text.substr(text.find('\n') + 1);  // one header
      out << text;
    }
  });
  return 0;
}
