// sentiment (the shape of Zhao et al. 2024, Table 3): on the built-in world, the target is
// sigma(s) proportional to p0(s) P(c | s) for each sentiment class c (negative, neutral,
// positive) of the bag-of-words classifier trained on the corpus, s = "the" + T words. Every
// learning method (CTL, RL, SIXO, FUDGE, DPG) trains the same MLP head on the model's features
// with the same budget; the table gives KL(q || sigma) and KL(sigma || q) of each learned twisted
// proposal (Eq. 23, exact samples by rejection from p0: accept s with probability P(c | s); log Z
// from the tightest bounds) with standard errors, per class, and the bounds on log Z. One class
// (positive) by default; --class all runs the three.
//
// On another model (--arpa, or --llama2c with --tokenizer and --prompt) the sentiment classifier
// is trained on the built-in grammar's sentences in that model's tokens (examples/example_models.hpp).
//
//   ./build/dev/examples/sentiment                # defaults: the positive class, about 30 s of CPU
//   ./build/dev/examples/sentiment --class all    # the three classes, about 1.5 minutes of CPU
//   ./build/dev/examples/sentiment --llama2c stories15M.bin --tokenizer tokenizer.bin --updates 10 --batch 16
//       --draws 16 --bound-runs 2 --kl-samples 8 --evaluate-every 0
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
#include <vector>

namespace {

struct settings {
  std::size_t corpus = 5000;
  std::size_t horizon = 8;
  std::string target_class = "positive";
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
  tsmc_examples::program p("sentiment",
                           "sentiment: CTL, RL, SIXO, FUDGE, DPG and no twist on the built-in world with phi = "
                           "P(class | s) of the sentiment classifier: KLs and bounds on log Z per class");
  using tsmc_examples::limits;
  p.count("--corpus", s.corpus, limits::corpus_min, limits::corpus_max, "sentences of the built-in corpus");
  p.count("--horizon", s.horizon, 1, limits::horizon_max, "T, tokens after the prompt (--prompt)");
  p.text("--class", s.target_class, "negative, neutral, positive or all", {"negative", "neutral", "positive", "all"});
  p.count("--updates", s.updates, 1, limits::updates_max, "updates per method");
  p.count("--batch", s.batch, 1, limits::particles_max, "particles per update");
  p.number("--learning-rate", s.learning_rate, 0.0, true, 1.0, false, "Adam's step size");
  p.count("--bound-particles", s.bound_particles, 1, limits::particles_max, "K of the bounds' SMC runs");
  p.count("--bound-runs", s.bound_runs, 1, limits::runs_max, "runs per bound");
  p.count("--kl-samples", s.kl_samples, 1, limits::samples_max, "samples of q and of sigma per KL");
  const CLI::Option* evaluate_every = p.count("--evaluate-every", s.evaluate_every, 0, limits::updates_max,
          "evaluation every n updates in the history (0: never; at most --updates)");
  p.count("--draws", s.draws, 1, limits::particles_max, "particles of the final twisted SMC run");
  p.seed("--seed", s.seed, "random seed");
  p.output("--csv", s.csv, "write the table as CSV");
  p.output("--json", s.json, "write the table as JSON");
  p.output("--history-csv", s.history_csv, "write every method's training history as CSV");
  p.count("--rejection-budget", s.rejection_budget, 1, limits::rejection_budget_max,
          "the most p0 draws rejection sampling (the exact samples of sigma) may use per class; the run "
          "stops with an error when they are spent");
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
  const tsmc_examples::comparison_settings cs{.horizon = s.horizon, .updates = s.updates, .batch = s.batch,
                                              .learning_rate = s.learning_rate, .bound_particles = s.bound_particles,
                                              .bound_runs = s.bound_runs, .kl_samples = s.kl_samples,
                                              .evaluate_every = s.evaluate_every, .draws = s.draws, .seed = s.seed,
                                              .feature_dim = w.feature_dim, .end_token = w.end_token,
                                              .end_tokens = w.end_tokens};
  const char* names[] = {"negative", "neutral", "positive"};
  // The outputs are gathered in memory and written (atomically) once every class has run.
  std::ostringstream csv, history_out;
  csv << "class,method,kl_q_sigma,kl_q_sigma_se,kl_sigma_q,kl_sigma_q_se,lower,lower_se,upper,upper_se,"
         "train_seconds,log_z\n";
  std::string json = "{\"classes\": [";
  bool first_history = true;
  using tsmc_examples::csv_number;
  using tsmc_examples::json_number;
  for (std::size_t c = 0; c < 3; ++c) {
    if (s.target_class != "all" && s.target_class != names[c]) continue;
    tsmc::classifier_potential target(w.sentiment, c);
    auto exact = tsmc::class_rejection_sampler(
        w.model, target, prompt,
        {.horizon = s.horizon, .end_token = w.end_token, .end_tokens = w.end_tokens, .batch = w.sampler_batch,
         .budget = s.rejection_budget});
    std::printf("== class %s ==\n", names[c]);
    std::vector<tsmc::training_history> histories;
    tsmc_examples::precise_log_z log_z;
    const std::vector<tsmc_examples::method_row> rows =
        tsmc_examples::compare_methods(w.model, target, exact, prompt, cs, histories, log_z);
    std::printf("\nclass %s: phi = P(%s | \"%s\" + %zu %s); rejection accepted %.4f of %zu p0 draws; log Z = %.4f "
                "+- %.4f from %s (the KLs' +- include its error)\n",
                names[c], names[c], w.prompt_text.c_str(), s.horizon, w.builtin ? "words" : "tokens",
                exact.acceptance_rate(), exact.draws(), log_z.ref.value, log_z.standard_error, log_z.source.c_str());
    std::printf("| method   | KL(q||sigma)    | KL(sigma||q)    | LB (K=%zu)         | UB (K=%zu)         | train s |\n",
                s.bound_particles, s.bound_particles);
    std::printf("|----------|-----------------|-----------------|-------------------|-------------------|---------|\n");
    for (const auto& r : rows)
      std::printf("| %-8s | %6.3f +- %5.3f | %6.3f +- %5.3f | %8.3f +- %5.3f | %8.3f +- %5.3f | %7.1f |\n",
                  r.method.c_str(), r.kl.q_sigma.value, tsmc_examples::total_error(r.kl.q_sigma, log_z),
                  r.kl.sigma_q.value, tsmc_examples::total_error(r.kl.sigma_q, log_z), r.bounds.lower.mean,
                  r.bounds.lower.standard_error, r.bounds.upper.mean, r.bounds.upper.standard_error, r.seconds);
    for (const auto& r : rows) {
      const std::string notes = tsmc_examples::kl_notes(r.kl, r.bounds, log_z);
      if (!notes.empty()) std::printf("%s:\n%s", r.method.c_str(), notes.c_str());
    }
    for (const auto& r : rows)
      if (r.method == "no twist" || r.method == "CTL")
        tsmc_examples::print_samples(r.method + ", the heaviest samples of its final twisted SMC run (weight, text):",
                                     r.found, w.text, 3);
    std::printf("\n");
    for (const auto& r : rows) {
      csv << names[c] << ',' << r.method << ',' << csv_number(r.kl.q_sigma.value) << ','
            << csv_number(r.kl.q_sigma.standard_error) << ',' << csv_number(r.kl.sigma_q.value) << ','
            << csv_number(r.kl.sigma_q.standard_error) << ',' << csv_number(r.bounds.lower.mean) << ','
            << csv_number(r.bounds.lower.standard_error) << ',' << csv_number(r.bounds.upper.mean) << ','
            << csv_number(r.bounds.upper.standard_error) << ',' << csv_number(r.seconds) << ','
            << csv_number(log_z.ref.value) << '\n';
      json += std::string(json.back() == '[' ? "\n  " : ",\n  ") + "{\"class\": \"" + names[c] + "\", \"method\": \"" +
              r.method + "\", \"kl_q_sigma\": " + json_number(r.kl.q_sigma.value) +
              ", \"kl_q_sigma_se\": " + json_number(r.kl.q_sigma.standard_error) +
              ", \"kl_sigma_q\": " + json_number(r.kl.sigma_q.value) +
              ", \"kl_sigma_q_se\": " + json_number(r.kl.sigma_q.standard_error) +
              ", \"lower\": " + json_number(r.bounds.lower.mean) + ", \"upper\": " + json_number(r.bounds.upper.mean) +
              ", \"log_z\": " + json_number(log_z.ref.value) + "}";
    }
    for (const auto& h : histories) {
        std::ostringstream one;
        h.write_csv(one);
        std::string text = one.str();
        if (!first_history) text = text.substr(text.find('\n') + 1);
        first_history = false;
        history_out << text;
      }
  }
  p.write_output("--csv", s.csv, [&](std::ostream& out) { out << csv.str(); });
  p.write_output("--json", s.json, [&](std::ostream& out) { out << json << "\n]}\n"; });
  p.write_output("--history-csv", s.history_csv, [&](std::ostream& out) { out << history_out.str(); });
  std::printf("whole run %.1f s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return 0;
}
