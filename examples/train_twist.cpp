// train_twist: learn a twist by contrastive twist learning (CTL) and watch the twisted proposal
// approach the target. A random tabular language model over 6 tokens, the rare target "the
// sequence contains 4 5 4", an MLP twist head on learned prefix embeddings; every sequence can be
// enumerated, so the exact KLs and log Z are printed next to the estimates.
// The README's "Training a twist" section is this file; program_support.hpp checks the options
// (a count that is not a whole number, a directory that cannot take the parameter file) before
// any work and turns an error into "train_twist: error: <message>" with a non-zero status.
#include "program_support.hpp"

#include <tsmc/learning/adam.hpp>
#include <tsmc/learning/objectives.hpp>
#include <tsmc/learning/parameter_io.hpp>
#include <tsmc/learning/trainer.hpp>
#include <tsmc/tsmc.hpp>
#include <tsmc/twists/features.hpp>
#include <tsmc/twists/mlp_twist.hpp>
#include <tsmc/testing/enumeration.hpp>
#include <tsmc/testing/proposal_kl.hpp>
#include <tsmc/testing/toy_model.hpp>
#include <tsmc/testing/toy_potentials.hpp>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <string>

/// The program's work: train, compare the exact KLs, save the twist, sample with it.
int train_and_sample(std::size_t updates, const std::string& params) {
  // ---- 1. The problem: p0 (a random 6-token model), phi = 1{contains 4 5 4}, 6 tokens -------
  const tsmc::token_sequence prompt{0};
  const std::size_t horizon = 6, vocab = 6;
  tsmc::testing::tabular_model model(vocab, /*seed=*/3);
  tsmc::testing::pattern_indicator target(tsmc::token_sequence{4, 5, 4});
  const auto solution = tsmc::testing::enumerate({vocab, horizon, prompt, {}}, model, target);
  auto exact = tsmc::testing::enumeration_exact_sampler(solution);  // exact samples from sigma

  // ---- 2. The twist: an MLP head (one ReLU layer) on learned embeddings of the prefix ----------
  tsmc::mlp_twist twist(tsmc::prefix_features({.vocab_size = vocab, .embedding_size = 16, .seed = 1}),
                        {.vocab_size = vocab, .max_steps = horizon, .hidden_layers = 1, .width = 64, .seed = 2});

  // ---- 3. CTL: 128 particles per update, Adam, an evaluation with the bounds every 100 updates -
  tsmc::learning_problem problem(model, twist, target, prompt, {.batch = 128, .horizon = horizon});
  tsmc::ctl objective;  // positives from the same SIS run's weights; tsmc::ctl(exact, n) uses exact samples
  tsmc::adam optimizer({.learning_rate = 3e-3});
  tsmc::bounds_evaluator evaluate(problem, exact, {.particles = 16, .runs = 32, .kl_samples = 256});
  tsmc::default_engine rng(2024);

  tsmc::twisted_smc smc(model, twist, target, {.particles = 16, .horizon = horizon});
  const auto before = tsmc::testing::exact_proposal_kls(solution, smc);
  std::printf("exact log Z = %.4f (Z = %.4f); twisted proposal before training: KL(q||sigma) %.3f, KL(sigma||q) %.3f\n",
              solution.log_z(), std::exp(solution.log_z()), before.q_sigma, before.sigma_q);
  const tsmc::training_history history =
      tsmc::train(problem, objective, optimizer,
                  {.updates = updates, .evaluate_every = 100, .progress = &std::cout}, rng, evaluate);
  const auto after = tsmc::testing::exact_proposal_kls(solution, smc);
  std::printf("after %zu updates: KL(q||sigma) %.3f, KL(sigma||q) %.3f\n", updates, after.q_sigma, after.sigma_q);

  // ---- 4. Keep the twist, and sample with it ---------------------------------------------------
  tsmc::save_parameters(params, twist);
  const tsmc::smc_result r = smc.run(prompt, rng);
  std::printf("one twisted SMC run, K = 16: log Zhat = %.4f; a draw:", r.log_z);
  for (tsmc::token t : r.draw(rng)) std::printf(" %d", t);
  std::printf("\n(history: %zu records; twist saved to %s)\n", history.records.size(), params.c_str());
  return 0;
}

int main(int argc, char** argv) {
  std::size_t updates = 300;
  std::string params = "train_twist.params";
  tsmc_examples::program p("train_twist", "train_twist: trains an MLP twist by CTL on a toy problem and prints "
                                          "exact KLs before and after");
  p.count("--updates", updates, 1, tsmc_examples::limits::updates_max, "CTL updates");
  p.output("--params", params, "where the trained twist's parameters are saved");
  if (const auto status = p.parse(argc, argv)) return *status;
  return p.run([&] { return train_and_sample(updates, params); });
}
