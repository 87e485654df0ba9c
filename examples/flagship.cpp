// flagship: the point of twisted SMC in one run. On the built-in world (a story-grammar corpus, a
// Kneser-Ney trigram model p0 trained on it, and a bag-of-words classifier of the corpus's rare
// "harmful" attribute), the target is sigma(s) proportional to p0(s) 1[P(harmful | s) >= 1/2]:
// continuations of "tom" that the classifier flags, rare under p0 (the classifier is trained on
// p0's continuations of "tom" labelled by the grammar: examples/example_world.hpp, harm_training).
// A twist (an MLP head on the model's features) is trained by contrastive twist learning (CTL); then plain sampling, SMC with
// no twist and twisted SMC with the learned twist each draw N sequences, and the program prints
// how many hit the target, some of them, and the bounds on log Z and the KLs of the twisted
// proposal before and after training (exact samples of sigma by rejection from p0).
//
// --arpa or --llama2c runs the same on another model (the harm classifier is then trained on the
// same labelled continuations in that model's tokens; see examples/example_models.hpp).
//
//   ./build/dev/examples/flagship              # defaults: about 16 s on two cores
//   ./build/dev/examples/flagship --help
//   ./build/dev/examples/flagship --arpa model.arpa          # an n-gram model from KenLM / SRILM
//   ./build/dev/examples/flagship --llama2c stories15M.bin --tokenizer tokenizer.bin --prompt "Once upon a time"
//       --updates 20 --batch 16 --draws 16 --bound-runs 2 --kl-samples 8 --evaluate-every 0 --rejection-budget 200000
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
#include <string>
#include <type_traits>
#include <vector>

namespace {

struct settings {
  std::size_t corpus = 5000;      // sentences of the built-in corpus
  std::size_t horizon = 5;        // T, tokens after the prompt
  std::size_t updates = 1000;     // CTL updates
  std::size_t batch = 64;         // particles per update
  double learning_rate = 3e-3;    // Adam
  std::size_t draws = 64;         // N, sequences drawn by each sampler in the comparison
  std::size_t bound_particles = 16;
  std::size_t bound_runs = 64;
  std::size_t kl_samples = 512;
  std::size_t evaluate_every = 250;
  std::uint64_t seed = 2024;
  std::size_t sweep_max = 256;   // largest K of --sweep-csv
  std::size_t sweep_runs = 32;   // runs per K of --sweep-csv
  std::size_t rejection_budget = 50'000'000;  // p0 draws the exact sampler may use
  std::string csv, json, history_csv, sweep_csv;
  tsmc_examples::model_options model;
};

struct sampler_row {
  std::string name;
  std::size_t hits = 0, total = 0, distinct = 0;
  double ess = 0.0;
  std::vector<std::string> examples;
};

struct measurement {
  tsmc::log_z_bounds bounds;
  tsmc::kl_estimate kl;
};

}  // namespace

template <class World>
int run(const tsmc_examples::program& p, const settings& s, World& w);

int main(int argc, char** argv) {
  settings s;
  tsmc_examples::program p("flagship",
                           "flagship: learn a twist by CTL for a rare target on the built-in world, then compare plain "
                           "sampling, SMC with no twist and twisted SMC (hits, bounds on log Z, KLs before and after)");
  using tsmc_examples::limits;
  p.count("--corpus", s.corpus, limits::corpus_min, limits::corpus_max, "sentences of the built-in corpus");
  p.count("--horizon", s.horizon, 1, limits::horizon_max, "T, tokens generated after the prompt (--prompt)");
  p.count("--updates", s.updates, 1, limits::updates_max, "CTL updates");
  p.count("--batch", s.batch, 1, limits::particles_max, "particles per update");
  p.number("--learning-rate", s.learning_rate, 0.0, true, 1.0, false, "Adam's step size");
  p.count("--draws", s.draws, 1, limits::particles_max, "N, sequences drawn by each sampler in the comparison");
  p.count("--bound-particles", s.bound_particles, 1, limits::particles_max, "K of the bounds' SMC runs");
  p.count("--bound-runs", s.bound_runs, 1, limits::runs_max, "runs per bound");
  p.count("--kl-samples", s.kl_samples, 1, limits::samples_max, "samples of q and of sigma per KL estimate");
  const CLI::Option* evaluate_every = p.count("--evaluate-every", s.evaluate_every, 0, limits::updates_max,
          "bounds and KLs every n updates during training (0: never; at most --updates)");
  p.seed("--seed", s.seed, "random seed");
  p.output("--csv", s.csv, "write the summary table as CSV");
  p.output("--json", s.json, "write the summary as JSON");
  p.output("--history-csv", s.history_csv, "write the training history as CSV");
  CLI::Option* sweep_csv = p.output("--sweep-csv", s.sweep_csv,
                                    "after training, write the bounds on log Z versus K (1, 4, 16, ... up to "
                                    "--sweep-max) for SMC with no twist and with the learned twist as CSV (the data "
                                    "of docs/bounds_vs_k.png)");
  p.count("--sweep-max", s.sweep_max, 1, limits::particles_max, "the largest K of the sweep (needs --sweep-csv)")
      ->needs(sweep_csv);
  p.count("--sweep-runs", s.sweep_runs, 1, limits::runs_max, "runs per K of the sweep (needs --sweep-csv)")
      ->needs(sweep_csv);
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
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };

  // ---- 1. The world and the target ------------------------------------------------------------
  const tsmc::token_sequence& prompt = w.prompt;
  const std::optional<tsmc::token> end = w.end_token;  // </s> for the n-gram models, BOS for llama2.c
  const std::vector<tsmc::token>& ends = w.end_tokens;  // a GGUF file's EOT / EOM
  tsmc::threshold_potential flagged(tsmc::class_log_prob_score(w.harmful, 1), std::log(0.5));
  auto exact = tsmc::indicator_rejection_sampler(
      w.model, flagged, prompt,
      {.horizon = s.horizon, .end_token = end, .end_tokens = ends, .batch = w.sampler_batch, .budget = s.rejection_budget});
  if (w.builtin)
    std::printf("built-in world: %zu sentences, %zu words, trigram model; target: \"%s\" + %zu words that the "
                "harm classifier flags (%.1f s)\n",
                s.corpus, w.model.vocab_size(), w.prompt_text.c_str(), s.horizon, elapsed());
  else
    std::printf("%s\ntarget: \"%s\" + %zu tokens that the harm classifier flags (%.1f s)\n", w.description.c_str(),
                w.prompt_text.c_str(), s.horizon, elapsed());

  // ---- 2. The twist: an MLP head on the model's features and a summary of the whole prefix ----
  // (model_and_prefix_features, the documented default; psi = 1 at first)
  const std::size_t V = w.model.vocab_size();
  tsmc::mlp_twist twist(
      tsmc::make_model_and_prefix_features(w.feature_dim, {.vocab_size = V, .embedding_size = 8, .window = 0, .seed = 3}),
      {.vocab_size = V, .max_steps = s.horizon, .hidden_layers = 1, .width = 64, .seed = 2});
  tsmc::default_engine rng(s.seed);
  tsmc::twisted_smc smc(w.model, twist, flagged,
                        {.particles = s.bound_particles, .horizon = s.horizon, .end_token = end, .end_tokens = ends},
                        tsmc::systematic{}, tsmc::ess_below(0.5));
  const tsmc::kl_samples kl_sizes{.proposal_samples = s.kl_samples, .exact_samples = s.kl_samples,
                                  .batch = std::min<std::size_t>(s.kl_samples, 256)};
  auto measure_bounds = [&] { return tsmc::estimate_bounds(smc, prompt, exact, s.bound_runs, rng); };
  const tsmc::log_z_bounds before_bounds = measure_bounds();
  // F_q and G_q of the untrained twisted proposal (psi = 1: p0, with phi's next-token form at the
  // last step); combined with log Z once the trained sampler's tighter bounds are known.
  const tsmc::kl_estimate before_raw =
      tsmc::estimate_kl(smc, prompt, exact, tsmc::log_z_reference::from_upper_bound(before_bounds), kl_sizes, rng);

  // ---- 3. CTL ----------------------------------------------------------------------------------
  tsmc::learning_problem problem(w.model, twist, flagged, prompt,
                                 {.batch = s.batch, .horizon = s.horizon, .end_token = end, .end_tokens = ends});
  tsmc::ctl objective;
  tsmc::adam optimizer({.learning_rate = s.learning_rate});
  tsmc::bounds_evaluator evaluate(problem, exact,
                                  {.particles = s.bound_particles, .runs = s.bound_runs, .kl_samples = s.kl_samples});
  std::printf("training the twist by CTL: %zu updates of %zu particles\n", s.updates, s.batch);
  const tsmc::training_history history =
      tsmc::train(problem, objective, optimizer,
                  {.updates = s.updates, .evaluate_every = s.evaluate_every,
                   .progress_every = std::max<std::size_t>(1, s.updates / 10), .progress = &std::cout},
                  rng, evaluate);
  const double train_seconds = history.records.back().seconds;
  const tsmc::log_z_bounds after_bounds = measure_bounds();

  // The KLs of the twisted proposal before (psi = 1: q = p0) and after, against the most precise
  // log Z: the rejection sampler's acceptance rate over all its draws (unbiased, with its standard
  // error), taken after the KLs' exact samples are drawn.
  const tsmc::kl_estimate after_raw =
      tsmc::estimate_kl(smc, prompt, exact, tsmc::log_z_reference::from_upper_bound(after_bounds), kl_sizes, rng);
  const tsmc_examples::precise_log_z precise = tsmc_examples::log_z_from_acceptance(exact.accepted(), exact.draws());
  const tsmc::log_z_reference& log_z = precise.ref;
  const tsmc::kl_estimate after_kl = tsmc::combine_kl(after_raw.f_q, after_raw.g_q, log_z);
  const tsmc::kl_estimate before_kl = tsmc::combine_kl(before_raw.f_q, before_raw.g_q, log_z);
  tsmc::no_twist flat;

  // ---- 4. N draws from each sampler -----------------------------------------------------------
  auto describe = [&](const std::string& name, const tsmc::smc_result& r) {
    sampler_row row{name, 0, r.sequences.size(), 0, r.ess.empty() ? 0.0 : r.ess.back(), {}};
    std::set<tsmc::token_sequence> seen;
    for (std::size_t k = 0; k < r.sequences.size(); ++k) {
      if (!(r.log_weights[k] > tsmc::neg_inf)) continue;
      ++row.hits;
      seen.insert(r.sequences[k]);
      if (row.examples.size() < 3) row.examples.push_back(w.text(r.sequences[k]));
    }
    row.distinct = seen.size();
    return row;
  };
  std::vector<sampler_row> rows;
  std::vector<tsmc::smc_result> runs;
  {
    tsmc::twisted_smc plain(w.model, flat, flagged,
                            {.particles = s.draws, .horizon = s.horizon, .proposal = tsmc::proposal_type::base,
                             .end_token = end, .end_tokens = ends},
                            tsmc::multinomial{}, tsmc::never);
    runs.push_back(plain.run(prompt, rng));
    rows.push_back(describe("plain sampling (p0)", runs.back()));
  }
  {
    tsmc::twisted_smc untwisted(w.model, flat, flagged, {.particles = s.draws, .horizon = s.horizon, .end_token = end, .end_tokens = ends},
                                tsmc::systematic{}, tsmc::ess_below(0.5));
    runs.push_back(untwisted.run(prompt, rng));
    rows.push_back(describe("SMC, no twist", runs.back()));
  }
  {
    tsmc::twisted_smc twisted(w.model, twist, flagged, {.particles = s.draws, .horizon = s.horizon, .end_token = end, .end_tokens = ends},
                              tsmc::systematic{}, tsmc::ess_below(0.5));
    runs.push_back(twisted.run(prompt, rng));
    rows.push_back(describe("twisted SMC, CTL twist", runs.back()));
  }

  // ---- 5. The summary --------------------------------------------------------------------------
  const double acceptance = exact.acceptance_rate();  // before the extra exact samples below
  std::printf("\nrejection sampling from p0 accepted %.5f of %zu draws (Z = P(flagged) ~ %.5f)\n", acceptance,
              exact.draws(), acceptance);
  {
    // Does the classifier's target hold what a reader calls harm? Fresh exact samples (their own
    // engine: nothing above or below changes), checked by the grammar's labeller.
    tsmc::default_engine check(s.seed + 1);
    constexpr bool word_model = std::is_same_v<std::remove_cvref_t<decltype(w.model)>, tsmc::ngram_model>;
    tsmc_examples::print_harmful_fraction(exact, w.text, word_model ? 200 : 16, check);
  }
  std::printf("\n%zu sequences from each sampler (a hit: the classifier flags it; ESS of the final weights)\n",
              s.draws);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    std::printf("  %-24s %4zu / %zu hit, %3zu distinct, ESS %6.1f\n", r.name.c_str(), r.hits, r.total, r.distinct,
                r.ess);
    tsmc_examples::print_samples("    the heaviest samples (normalised weight, text):", runs[i], w.text, 3);
  }
  std::printf("\n| proposal          | LB (K=%zu)         | UB (K=%zu)         | Zhat=0 | KL(q||sigma)    | KL(sigma||q)    |\n",
              s.bound_particles, s.bound_particles);
  std::printf("|-------------------|-------------------|-------------------|--------|-----------------|-----------------|\n");
  auto table_row = [&](const char* name, const tsmc::log_z_bounds& b, const tsmc::kl_estimate& kl) {
    std::printf("| %-17s | %8.3f +- %5.3f | %8.3f +- %5.3f | %5.1f%% | %7.3f +- %5.3f | %7.3f +- %5.3f |\n", name,
                b.lower.mean, b.lower.standard_error, b.upper.mean, b.upper.standard_error,
                100 * b.lower.zero_fraction, kl.q_sigma.value, tsmc_examples::total_error(kl.q_sigma, precise),
                kl.sigma_q.value, tsmc_examples::total_error(kl.sigma_q, precise));
  };
  table_row("before (psi = 1)", before_bounds, before_kl);
  table_row("after CTL", after_bounds, after_kl);
  std::printf("%s%s", tsmc_examples::kl_notes(before_kl, before_bounds, precise).c_str(),
              tsmc_examples::kl_notes(after_kl, after_bounds, precise).c_str());
  std::printf("log Z = %.4f +- %.4f from %s (the KLs' +- include its error); CTL took %.1f s, the whole run %.1f s\n",
              log_z.value, precise.standard_error, precise.source.c_str(), train_seconds, elapsed());
  std::printf("(before: psi = 1, so q is p0 with phi's next-token form at the last step; LB is -inf when some run "
              "had Zhat = 0, the Zhat=0 column)\n");

  p.write_output("--csv", s.csv, [&](std::ostream& out) {
    using tsmc_examples::csv_number;
    out << "row,lower,lower_se,upper,upper_se,zero_fraction,kl_q_sigma,kl_q_sigma_se,kl_sigma_q,kl_sigma_q_se,hits,distinct,ess,draws\n";
    auto line = [&](const char* name, const tsmc::log_z_bounds& b, const tsmc::kl_estimate& kl, const sampler_row& r) {
      out << name << ',' << csv_number(b.lower.mean) << ',' << csv_number(b.lower.standard_error) << ','
          << csv_number(b.upper.mean) << ',' << csv_number(b.upper.standard_error) << ','
          << csv_number(b.lower.zero_fraction) << ',' << csv_number(kl.q_sigma.value) << ','
          << csv_number(kl.q_sigma.standard_error) << ',' << csv_number(kl.sigma_q.value) << ','
          << csv_number(kl.sigma_q.standard_error) << ',' << r.hits << ',' << r.distinct << ','
          << csv_number(r.ess) << ',' << r.total << '\n';
    };
    line("before", before_bounds, before_kl, rows[1]);
    line("after", after_bounds, after_kl, rows[2]);
  });
  p.write_output("--json", s.json, [&](std::ostream& out) {
    using tsmc_examples::json_number;
    using tsmc_examples::json_string;
    out << "{\"log_z\": " << json_number(log_z.value) << ", \"acceptance_rate\": " << json_number(acceptance)
        << ", \"train_seconds\": " << json_number(train_seconds) << ",\n \"samplers\": [";
    for (std::size_t i = 0; i < rows.size(); ++i) {
      out << (i ? ", " : "") << "{\"name\": " << json_string(rows[i].name) << ", \"hits\": " << rows[i].hits
          << ", \"distinct\": " << rows[i].distinct
          << ", \"ess\": " << json_number(rows[i].ess) << ", \"draws\": " << rows[i].total << ", \"examples\": [";
      for (std::size_t j = 0; j < rows[i].examples.size(); ++j) out << (j ? ", " : "") << json_string(rows[i].examples[j]);
      out << "]}";
    }
    out << "],\n \"proposals\": [";
    auto entry = [&](const char* name, const tsmc::log_z_bounds& b, const tsmc::kl_estimate& kl) {
      out << "{\"name\": \"" << name << "\", \"lower\": " << json_number(b.lower.mean)
          << ", \"upper\": " << json_number(b.upper.mean) << ", \"zero_fraction\": " << json_number(b.lower.zero_fraction)
          << ", \"kl_q_sigma\": " << json_number(kl.q_sigma.value) << ", \"kl_sigma_q\": " << json_number(kl.sigma_q.value)
          << "}";
    };
    entry("before", before_bounds, before_kl);
    out << ", ";
    entry("after", after_bounds, after_kl);
    out << "]}\n";
  });
  if (!s.sweep_csv.empty()) {
    const tsmc::sweep_options base_sweep{.particles = tsmc::particle_counts(s.sweep_max), .runs = s.sweep_runs,
                                         .method = "no twist"};
    tsmc::sweep_options twisted_sweep = base_sweep;
    twisted_sweep.method = "CTL twist";
    const tsmc::smc_options o{.particles = 1, .horizon = s.horizon, .end_token = end, .end_tokens = ends};
    std::printf("sweeping K = 1 .. %zu, %zu runs per K and bound\n", s.sweep_max, s.sweep_runs);
    std::vector<tsmc::bounds_report> reports = tsmc::sweep_particles(
        w.model, flat, flagged, o, tsmc::systematic{}, tsmc::ess_below(0.5), prompt, exact, base_sweep, rng);
    const auto twisted = tsmc::sweep_particles(w.model, twist, flagged, o, tsmc::systematic{}, tsmc::ess_below(0.5),
                                               prompt, exact, twisted_sweep, rng);
    reports.insert(reports.end(), twisted.begin(), twisted.end());
    p.write_output("--sweep-csv", s.sweep_csv, [&](std::ostream& out) { tsmc::write_csv(out, reports); });
    std::printf("%s", tsmc::markdown_table(reports).c_str());
  }
  p.write_output("--history-csv", s.history_csv, [&](std::ostream& out) { history.write_csv(out); });
  return 0;
}
