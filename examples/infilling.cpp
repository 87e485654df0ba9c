// infilling (the shape of Zhao et al. 2024, Table 4): on the built-in world, an observation o is
// the c words that follow T hidden words after "the"; the target is sigma(s | o) proportional to
// p0(s) p0(o | s), the hidden words given what came after them. Observations and one exact
// sample each come from the joint sampler (draw T + c words from p0 and split them). A
// conditional twist (an MLP head on the model's features and learned embeddings of o) is trained
// by each method (CTL, RL, SIXO, FUDGE, DPG), a fresh observation per update; the table gives,
// averaged over held-out observations, KL(q || sigma) and KL(sigma || q) of each twisted proposal
// (log Z(o) from that observation's bounds) and the conditional bounds on log Z.
//
// On another model: --arpa model.arpa, or --llama2c model.bin --tokenizer tokenizer.bin with
// --prompt (examples/example_models.hpp); on a llama2.c model phi = p0(o | s) is computed for
// the whole batch in one pass of a second model over the same weights
// (tsmc::batched_infilling_potential). There is no end token here (on llama2.c either): the
// joint sampler draws T + c tokens whatever they are, so the hidden part always has T tokens.
//
//   ./build/dev/examples/infilling                  # defaults: about a minute on two cores
//   ./build/dev/examples/infilling --llama2c stories15M.bin --tokenizer tokenizer.bin --updates 10 --batch 16
//       --observations 4 --bound-runs 2 --kl-samples 8
//   (one command; small settings for a transformer: README, "Other models", gives the run time)
#include "example_models.hpp"

#include <tsmc/all.hpp>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

namespace {

struct settings {
  std::size_t corpus = 5000;
  std::size_t horizon = 4;        // T hidden words
  std::size_t continuation = 3;   // c observed words
  std::size_t updates = 2000;
  std::size_t batch = 64;
  double learning_rate = 3e-3;
  std::size_t observations = 32;  // held-out observations of the evaluation
  std::size_t bound_particles = 16;
  std::size_t bound_runs = 8;     // per observation
  std::size_t kl_samples = 64;    // q samples per observation (one exact sample each)
  std::uint64_t seed = 11;
  std::string csv, json;
  tsmc_examples::model_options model;
};

struct row {
  std::string method;
  tsmc::bound_estimate kl_q_sigma, kl_sigma_q;
  tsmc::conditional_bounds bounds;
  double seconds = 0.0;
};

/// The conditional featurizer of a twist (the head itself, or FUDGE's sigmoid around it).
template <class Twist>
auto& observation_features(Twist& twist) {
  if constexpr (requires { twist.inner(); })
    return twist.inner().featurizer();
  else
    return twist.featurizer();
}

}  // namespace

template <class World>
int run(const tsmc_examples::program& p, const settings& s, World& w);

int main(int argc, char** argv) {
  settings s;
  tsmc_examples::program p("infilling",
                           "infilling: conditional twists trained by CTL, RL, SIXO, FUDGE, DPG (and no twist) for "
                           "sigma(s | o) ~ p0(s) p0(o | s) on the built-in world: KLs and conditional bounds on log Z");
  using tsmc_examples::limits;
  p.count("--corpus", s.corpus, limits::corpus_min, limits::corpus_max, "sentences of the built-in corpus");
  p.count("--horizon", s.horizon, 1, limits::horizon_max, "T, the hidden tokens after the prompt (--prompt)");
  p.count("--continuation", s.continuation, 1, limits::horizon_max, "c, the observed words after them");
  p.count("--updates", s.updates, 1, limits::updates_max, "updates per method (one fresh observation each)");
  p.count("--batch", s.batch, 1, limits::particles_max, "particles per update");
  p.number("--learning-rate", s.learning_rate, 0.0, true, 1.0, false, "Adam's step size");
  p.count("--observations", s.observations, 1, limits::runs_max, "held-out observations of the evaluation");
  p.count("--bound-particles", s.bound_particles, 1, limits::particles_max, "K of the bounds");
  p.count("--bound-runs", s.bound_runs, 1, limits::runs_max, "runs per bound and observation");
  p.count("--kl-samples", s.kl_samples, 1, limits::samples_max, "q samples per observation for KL(q || sigma)");
  p.seed("--seed", s.seed, "random seed");
  p.output("--csv", s.csv, "write the table as CSV");
  p.output("--json", s.json, "write the table as JSON");
  tsmc_examples::add_model_options(p, s.model);
  if (const auto status = p.parse(argc, argv)) return *status;
  return tsmc_examples::with_model(p, s.model, s.corpus, s.horizon + s.continuation,
                                   [&](auto& w) { return run(p, s, w); });
}

template <class World>
int run(const tsmc_examples::program& p, const settings& s, World& w) {
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  if (!w.builtin) std::printf("%s\n", w.description.c_str());
  // The potential's own model (the sampler's model is mid-run when phi is asked): a copy of an
  // n-gram model, a second llama2.c model over the same weights.
  auto query = tsmc_examples::query_model(w.model);
  const tsmc::token_sequence& prompt = w.prompt;
  const std::size_t V = w.model.vocab_size();
  tsmc::infilling_joint_sampler joint(w.model, prompt,
                                      {.horizon = s.horizon, .continuation = s.continuation,
                                       .batch = std::min<std::size_t>(256, w.sampler_batch)});
  tsmc::default_engine observation_rng(s.seed + 1);
  const std::vector<tsmc::infilling_sample> held_out = joint.draw(s.observations, observation_rng);
  std::printf("infilling: \"%s\" + %zu hidden %s, then %zu observed; %zu held-out observations, e.g. "
              "\"%s [%s]\"\n",
              w.prompt_text.c_str(), s.horizon, w.builtin ? "words" : "tokens", s.continuation, s.observations,
              w.text(held_out[0].prefix).c_str(), w.tokens_text(held_out[0].observation).c_str());

  auto make_head = [&] {
    return tsmc::mlp_twist(
        tsmc::conditional_features(tsmc::model_features(w.feature_dim),
                                   {.vocab_size = V, .observation_length = s.continuation, .embedding_size = 8, .seed = 3}),
        {.vocab_size = V, .max_steps = s.horizon, .hidden_layers = 1, .width = 64, .seed = 2});
  };

  // Measures a conditional twist over the held-out observations.
  auto measure = [&](const char* name, auto& twist, double seconds) {
    tsmc::default_engine rng(s.seed + 2);
    row r;
    r.method = name;
    r.seconds = seconds;
    std::vector<double> kl_q, kl_s;
    auto& features = observation_features(twist);
    r.bounds = tsmc::estimate_conditional_bounds(
        held_out, s.bound_runs, rng, [&](const tsmc::infilling_sample& o, std::size_t runs, tsmc::default_engine& g) {
          features.set_observation(o.observation);
          auto phi = tsmc_examples::infilling_phi(query, prompt, o.observation);
          tsmc::single_sample_sampler exact(o.prefix, prompt, s.horizon);
          tsmc::twisted_smc smc(w.model, twist, phi, {.particles = s.bound_particles, .horizon = s.horizon},
                                tsmc::systematic{}, tsmc::ess_below(0.5));
          const tsmc::log_z_bounds b = tsmc::estimate_bounds(smc, prompt, exact, runs, g);
          const tsmc::kl_estimate kl =
              tsmc::estimate_kl(smc, prompt, exact, tsmc::log_z_reference::from_bounds(b),
                                {.proposal_samples = s.kl_samples, .exact_samples = 1, .batch = s.kl_samples}, g);
          kl_q.push_back(kl.q_sigma.value);
          kl_s.push_back(kl.sigma_q.value);
          return b;
        });
    r.kl_q_sigma = tsmc::summarize_bound(kl_q);
    r.kl_sigma_q = tsmc::summarize_bound(kl_s);
    std::printf("%-8s measured: conditional log Z in [%.3f, %.3f]  (%.1f s so far)\n", name, r.bounds.lower.mean,
                r.bounds.upper.mean, elapsed());
    {
      // What the twist proposes: one twisted SMC run on the first held-out observation (its own
      // engine, so the measurements above do not depend on it).
      const tsmc::infilling_sample& o = held_out[0];
      features.set_observation(o.observation);
      auto phi = tsmc_examples::infilling_phi(query, prompt, o.observation);
      tsmc::twisted_smc smc(w.model, twist, phi, {.particles = s.bound_particles, .horizon = s.horizon},
                            tsmc::systematic{}, tsmc::ess_below(0.5));
      tsmc::default_engine sample_rng(s.seed + 3);
      tsmc_examples::print_samples(std::string(name) + ", one twisted SMC run for [" + w.tokens_text(o.observation) +
                                       "] (weight, text):",
                                   smc.run(prompt, sample_rng), w.text, 3);
    }
    std::fflush(stdout);
    return r;
  };

  // Trains a conditional twist: each update draws a fresh observation from the joint sampler,
  // conditions the twist and the potential on it, and takes one step of the objective.
  auto train = [&](const char* name, auto& twist, auto& objective) {
    tsmc::default_engine rng(s.seed);
    tsmc::adam optimizer({.learning_rate = s.learning_rate});
    const auto t0 = std::chrono::steady_clock::now();
    double loss_sum = 0.0;
    for (std::size_t update = 1; update <= s.updates; ++update) {
      const tsmc::infilling_sample o = joint.draw(rng);
      observation_features(twist).set_observation(o.observation);
      auto phi = tsmc_examples::infilling_phi(query, prompt, o.observation);
      tsmc::learning_problem problem(w.model, twist, phi, prompt, {.batch = s.batch, .horizon = s.horizon});
      twist.zero_gradient();
      auto batch = objective.sample(problem, rng);
      const tsmc::objective_step step = objective.accumulate(problem, batch, rng);
      twist.set_recording(false);
      auto blocks = twist.parameters();
      optimizer.step(blocks);
      loss_sum += step.loss;
      if (update % std::max<std::size_t>(1, s.updates / 4) == 0) {
        std::printf("%s update %5zu  mean loss %10.4f  %6.1f s\n", name, update, loss_sum / static_cast<double>(update),
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        std::fflush(stdout);
      }
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };

  std::vector<row> rows;
  {
    auto twist = make_head();
    rows.push_back(measure("no twist", twist, 0.0));
  }
  {
    auto twist = make_head();
    tsmc::ctl<> objective;
    const double t = train("CTL", twist, objective);
    rows.push_back(measure("CTL", twist, t));
  }
  {
    auto twist = make_head();
    tsmc::rl objective;
    const double t = train("RL", twist, objective);
    rows.push_back(measure("RL", twist, t));
  }
  {
    auto twist = make_head();
    tsmc::sixo<> objective;
    const double t = train("SIXO", twist, objective);
    rows.push_back(measure("SIXO", twist, t));
  }
  {
    tsmc::sigmoid_twist twist(make_head());
    tsmc::fudge objective;
    const double t = train("FUDGE", twist, objective);
    rows.push_back(measure("FUDGE", twist, t));
  }
  {
    auto twist = make_head();
    tsmc::dpg<> objective;
    const double t = train("DPG", twist, objective);
    rows.push_back(measure("DPG", twist, t));
  }

  std::printf("\naveraged over %zu held-out observations (log Z(o) from each observation's bounds; errors across "
              "observations)\n",
              s.observations);
  std::printf("| method   | KL(q||sigma)    | KL(sigma||q)    | LB (K=%zu)         | UB (K=%zu)         | train s |\n",
              s.bound_particles, s.bound_particles);
  std::printf("|----------|-----------------|-----------------|-------------------|-------------------|---------|\n");
  for (const auto& r : rows)
    std::printf("| %-8s | %6.3f +- %5.3f | %6.3f +- %5.3f | %8.3f +- %5.3f | %8.3f +- %5.3f | %7.1f |\n",
                r.method.c_str(), r.kl_q_sigma.mean, r.kl_q_sigma.standard_error, r.kl_sigma_q.mean,
                r.kl_sigma_q.standard_error, r.bounds.lower.mean, r.bounds.lower.standard_error, r.bounds.upper.mean,
                r.bounds.upper.standard_error, r.seconds);
  std::printf("whole run %.1f s\n", elapsed());

  using tsmc_examples::csv_number;
  using tsmc_examples::json_number;
  p.write_output("--csv", s.csv, [&](std::ostream& out) {
    out << "method,kl_q_sigma,kl_q_sigma_se,kl_sigma_q,kl_sigma_q_se,lower,lower_se,upper,upper_se,train_seconds\n";
    for (const auto& r : rows)
      out << r.method << ',' << csv_number(r.kl_q_sigma.mean) << ',' << csv_number(r.kl_q_sigma.standard_error) << ','
          << csv_number(r.kl_sigma_q.mean) << ',' << csv_number(r.kl_sigma_q.standard_error) << ','
          << csv_number(r.bounds.lower.mean) << ',' << csv_number(r.bounds.lower.standard_error) << ','
          << csv_number(r.bounds.upper.mean) << ',' << csv_number(r.bounds.upper.standard_error) << ','
          << csv_number(r.seconds) << '\n';
  });
  p.write_output("--json", s.json, [&](std::ostream& out) {
    out << "{\"methods\": [";
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const auto& r = rows[i];
      out << (i ? ",\n  " : "\n  ") << "{\"method\": \"" << r.method << "\", \"kl_q_sigma\": " << json_number(r.kl_q_sigma.mean)
          << ", \"kl_sigma_q\": " << json_number(r.kl_sigma_q.mean) << ", \"lower\": " << json_number(r.bounds.lower.mean)
          << ", \"upper\": " << json_number(r.bounds.upper.mean) << "}";
    }
    out << "\n]}\n";
  });
  return 0;
}
