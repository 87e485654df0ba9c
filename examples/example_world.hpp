#pragma once
/// @file
/// @brief Shared by the example programs (flagship, red_team, sentiment, infilling): the built-in
/// world (a story-grammar corpus, its word tokenizer, a Kneser-Ney trigram model and two
/// bag-of-words classifiers), and small helpers for the programs' tables and outputs.
#include "example_report.hpp"

#include <tsmc/all.hpp>

#include <chrono>
#include <cmath>
#include <iostream>
#include <optional>
#include <set>
#include <cstdio>
#include <string>
#include <vector>

namespace tsmc_examples {

/// @brief The built-in world: corpus, vocabulary, p0 and the classifiers trained on the corpus.
struct world {
  tsmc::word_tokenizer vocabulary;                  ///< words of the corpus
  std::vector<tsmc::token_sequence> sentences;      ///< the encoded corpus
  tsmc::ngram_model model;                          ///< p0: Kneser-Ney trigram model
  tsmc::bag_of_words_classifier sentiment;          ///< 3 classes (tsmc::sentiment)
  tsmc::bag_of_words_classifier harmful;            ///< 2 classes: 1 = the rare "harmful" attribute
};

/// @brief How the harm classifier is trained (issue 27, item 7): on p0's own continuations of the
/// red-team prompt, each labelled by the grammar's labeller (tsmc::story_grammar::is_rare).
///
/// A bag of words cannot see word order, so what it learns depends on what it is shown. Trained
/// on whole corpus sentences labelled rare, it learnt that "called" alone means harm (every such
/// sentence has an insult after it): only 15.8% of its target's exact samples were harmful by the
/// grammar's labels. Trained on windows of sentences it became precise but flagged almost
/// nothing p0 writes (acceptance 1.1e-4). After "the", p0's five words are often a jumble ("the
/// squirrel dog kicked tom" has no character before "kicked" in the grammar's sense), and no
/// bag of words reaches 90% there (measured: 85-90% at best). After a name ("tom"), the next word
/// is the verb, and a bag of words trained on what p0 writes there, labelled by the grammar, is
/// what a reader calls harm: 92.8% of the flagged continuations are harmful at a flag rate of
/// 0.91% (measured over 100,000 fresh p0 draws; tests/corpus/harm_fidelity_test.cpp checks it). The red-team programs therefore use the
/// prompt "tom" on word models by default.
struct harm_training {
  std::string prompt = "tom";     ///< the prompt whose continuations are drawn (the red-team programs' default)
  std::size_t samples = 10000;    ///< continuations drawn from p0 (50,000 gave the same flag rate and precision within 0.3%)
  std::size_t horizon = 5;        ///< words per continuation (the programs' T), ending early at </s>
  std::size_t iterations = 150;   ///< Adam steps (the library's default)
  std::uint64_t seed = 27;        ///< the draws' random engine
};

/// @brief Continuations of the harm prompt drawn from p0 and their labels.
struct harm_examples {
  std::vector<std::string> continuations;  ///< each continuation's words (</s> dropped), without the prompt
  std::vector<std::size_t> labels;         ///< 1 when prompt + continuation is harmful by story_grammar::is_rare
};

/// @brief Draws h.samples continuations of h.prompt from a word model by ancestral sampling and
/// labels each with the grammar's labeller on the prompt and the continuation together.
/// @param model p0 (the built-in world's n-gram model; copied: its decoding state is not touched)
/// @param h the recipe
inline harm_examples draw_harm_examples(tsmc::ngram_model model, const harm_training& h = {}) {
  const tsmc::story_grammar grammar;
  const tsmc::word_tokenizer& vocabulary = model.vocabulary();
  const tsmc::token_sequence prompt = vocabulary.encode(h.prompt, false);
  constexpr std::size_t batch = 4096;
  const std::size_t V = model.vocab_size();
  Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> log_p(batch, V);
  tsmc::default_engine rng(h.seed);
  harm_examples out;
  while (out.continuations.size() < h.samples) {
    model.start(prompt, batch);
    std::vector<tsmc::token_sequence> drawn(batch);
    std::vector<std::uint8_t> active(batch, 1);
    std::vector<tsmc::token> next(batch, 0);
    for (std::size_t t = 0; t < h.horizon; ++t) {
      model.log_probs(log_p, active);
      for (std::size_t k = 0; k < batch; ++k) {
        if (!active[k]) continue;
        // Inverse CDF over the row; the last token takes what rounding leaves.
        const double u = tsmc::uniform01(rng);
        double cumulative = 0.0;
        tsmc::token x = static_cast<tsmc::token>(V - 1);
        for (std::size_t v = 0; v < V; ++v) {
          cumulative += std::exp(log_p(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(v)));
          if (u < cumulative) {
            x = static_cast<tsmc::token>(v);
            break;
          }
        }
        next[k] = x;
        if (x == tsmc::word_tokenizer::end_token) active[k] = 0;
        else drawn[k].push_back(x);
      }
      model.append(next);
    }
    for (std::size_t k = 0; k < batch && out.continuations.size() < h.samples; ++k) {
      std::string text = vocabulary.decode(drawn[k]);
      out.labels.push_back(grammar.is_rare(h.prompt + " " + text) ? 1 : 0);
      out.continuations.push_back(std::move(text));
    }
  }
  return out;
}

/// @brief The harm classifier: a bag of words over the continuations of `examples` encoded by
/// `encode` (the world's tokenizer), classes 0 (not harmful) and 1 (harmful).
/// @param examples the labelled continuations (draw_harm_examples)
/// @param encode the world's tokenizer: token_sequence(const std::string&)
/// @param vocab V
/// @param ignored tokens whose weights stay 0
/// @param iterations Adam steps
template <class Encode>
tsmc::bag_of_words_classifier train_harm_classifier(const harm_examples& examples, Encode encode, std::size_t vocab,
                                                    std::vector<tsmc::token> ignored, std::size_t iterations = 150) {
  std::vector<tsmc::token_sequence> sequences;
  sequences.reserve(examples.continuations.size());
  for (const std::string& text : examples.continuations) sequences.push_back(encode(text));
  return tsmc::bag_of_words_classifier::train(sequences, examples.labels, 2, vocab,
                                              {.iterations = iterations, .ignored = std::move(ignored)});
}

/// @brief The built-in world's p0: a Kneser-Ney trigram on `corpus_size` grammar sentences
/// (seeded, deterministic), over the corpus's words.
inline tsmc::ngram_model builtin_ngram(std::size_t corpus_size, std::uint64_t seed = 1) {
  std::vector<std::string> texts;
  for (const tsmc::labelled_sentence& s : tsmc::story_grammar().generate(corpus_size, seed)) texts.push_back(s.text);
  tsmc::word_tokenizer vocabulary = tsmc::word_tokenizer::from_corpus(texts);
  std::vector<tsmc::token_sequence> sentences;
  for (const std::string& t : texts) sentences.push_back(vocabulary.encode(t));
  return tsmc::ngram_model::train_kneser_ney(vocabulary, sentences, {.order = 3});
}

/// @brief Builds the world from `corpus_size` grammar sentences (seeded, deterministic).
inline world make_world(std::size_t corpus_size, std::uint64_t seed = 1, const harm_training& harm = {}) {
  const std::vector<tsmc::labelled_sentence> corpus = tsmc::story_grammar().generate(corpus_size, seed);
  tsmc::ngram_model model = builtin_ngram(corpus_size, seed);
  tsmc::word_tokenizer vocabulary = model.vocabulary();
  std::vector<tsmc::token_sequence> sentences;
  std::vector<std::size_t> sentiment;
  for (const tsmc::labelled_sentence& s : corpus) {
    sentences.push_back(vocabulary.encode(s.text));
    sentiment.push_back(static_cast<std::size_t>(s.label));
  }
  const std::size_t V = vocabulary.vocab_size();
  const tsmc::bag_of_words_options options{.ignored = {tsmc::word_tokenizer::end_token}};
  auto sentiment_classifier = tsmc::bag_of_words_classifier::train(sentences, sentiment, 3, V, options);
  auto harm_classifier =
      train_harm_classifier(draw_harm_examples(model, harm), [&](const std::string& t) { return vocabulary.encode(t); },
                            V, {tsmc::word_tokenizer::end_token}, harm.iterations);
  return world{std::move(vocabulary), std::move(sentences), std::move(model), std::move(sentiment_classifier),
               std::move(harm_classifier)};
}

/// @brief A number for JSON: null when not finite.
inline std::string json_number(double x) {
  if (!std::isfinite(x)) return "null";
  char b[64];
  std::snprintf(b, sizeof b, "%.10g", x);
  return b;
}

/// @brief A number for CSV: inf / -inf / nan spelled out.
inline std::string csv_number(double x) {
  char b[64];
  std::snprintf(b, sizeof b, "%.10g", x);
  return b;
}

/// @brief Escapes a string for JSON.
inline std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}


/// @brief The settings of a method comparison (every method: the same head, budget and seed).
struct comparison_settings {
  std::size_t horizon = 5;            ///< T
  std::size_t updates = 600;          ///< updates per method
  std::size_t batch = 64;             ///< particles per update
  double learning_rate = 3e-3;        ///< Adam
  std::size_t bound_particles = 16;   ///< K of the bounds
  std::size_t bound_runs = 64;        ///< runs per bound
  std::size_t kl_samples = 512;       ///< samples per KL
  std::size_t evaluate_every = 100;   ///< evaluations in the history (0: never)
  std::size_t draws = 256;            ///< particles of the final twisted SMC run
  std::uint64_t seed = 7;             ///< every method's seed
  std::size_t feature_dim = 0;        ///< the width of the model's features() (0: model.feature_dimension())
  std::optional<tsmc::token> end_token = std::nullopt;  ///< the model's end token, if any
  std::vector<tsmc::token> end_tokens{};                ///< its further end tokens (GGUF: EOT, EOM)
};

/// @brief One method's measurements.
struct method_row {
  std::string method;
  tsmc::log_z_bounds bounds;
  tsmc::kl_estimate kl;  // F_q, G_q; combined with the common log Z at the end
  std::size_t hits = 0, distinct = 0;
  double ess = 0.0;  // ESS of the final weights of the run that found the hits
  double seconds = 0.0;
  tsmc::smc_result found;  // the final twisted SMC run (its samples and weights are printed)
};


/// @brief Trains the same MLP head (on model_and_prefix_features: the model's features and a
/// learned summary of the whole prefix) with no twist, CTL, RL, SIXO, FUDGE and DPG, and measures
/// each: bounds on log Z at K, F_q and G_q of the twisted proposal, the final run's hits; then
/// every KL against the most precise log Z: the rejection sampler's acceptance rate when the exact
/// sampler is one (over all its draws, made for every method's KLs and bounds), else the tightest
/// finite bounds of all methods.
template <class Model, class Pot, class Exact>
std::vector<method_row> compare_methods(Model& model, Pot& target, Exact& exact, const tsmc::token_sequence& prompt,
                                        const comparison_settings& s, std::vector<tsmc::training_history>& histories,
                                        precise_log_z& log_z) {
  const auto start = std::chrono::steady_clock::now();
  std::vector<method_row> rows;
  const std::size_t V = model.vocab_size();
  auto make_head = [&] {
    std::size_t d = s.feature_dim;
    if constexpr (requires { model.feature_dimension(); })
      if (d == 0) d = model.feature_dimension();
    return tsmc::mlp_twist(
        tsmc::make_model_and_prefix_features(d, {.vocab_size = V, .embedding_size = 8, .window = 0, .seed = 3}),
        {.vocab_size = V, .max_steps = s.horizon, .hidden_layers = 1, .width = 64, .seed = 2});
  };
  const tsmc::kl_samples kl_sizes{.proposal_samples = s.kl_samples, .exact_samples = s.kl_samples,
                                  .batch = std::min<std::size_t>(s.kl_samples, 256)};

  // Trains (objective != nullptr) and measures one method.
  auto run = [&](const char* name, auto& twist, auto* objective) {
    tsmc::default_engine rng(s.seed);
    method_row r{name, {}, {}, 0, 0, 0.0, 0.0, {}};
    if (objective != nullptr) {
      tsmc::learning_problem problem(model, twist, target, prompt,
                                     {.batch = s.batch, .horizon = s.horizon, .end_token = s.end_token,
                                      .end_tokens = s.end_tokens});
      tsmc::adam optimizer({.learning_rate = s.learning_rate});
      tsmc::bounds_evaluator evaluate(problem, exact, {.particles = s.bound_particles, .runs = 16, .kl_samples = 128});
      auto history = tsmc::train(problem, *objective, optimizer,
                                 {.updates = s.updates, .evaluate_every = s.evaluate_every,
                                  .progress_every = std::max<std::size_t>(1, s.updates / 4), .progress = &std::cout},
                                 rng, evaluate);
      r.seconds = history.records.back().seconds;
      histories.push_back(std::move(history));
    }
    tsmc::twisted_smc smc(model, twist, target,
                          {.particles = s.bound_particles, .horizon = s.horizon, .end_token = s.end_token,
                           .end_tokens = s.end_tokens},
                          tsmc::systematic{}, tsmc::ess_below(0.5));
    r.bounds = tsmc::estimate_bounds(smc, prompt, exact, s.bound_runs, rng);
    r.kl = tsmc::estimate_kl(smc, prompt, exact, tsmc::log_z_reference::from_upper_bound(r.bounds), kl_sizes, rng);
    tsmc::twisted_smc search(model, twist, target,
                             {.particles = s.draws, .horizon = s.horizon, .end_token = s.end_token,
                              .end_tokens = s.end_tokens},
                             tsmc::systematic{}, tsmc::ess_below(0.5));
    const tsmc::smc_result found = search.run(prompt, rng);
    std::set<tsmc::token_sequence> seen;
    for (std::size_t k = 0; k < found.sequences.size(); ++k)
      if (found.log_weights[k] > tsmc::neg_inf) {
        ++r.hits;
        seen.insert(found.sequences[k]);
      }
    r.distinct = seen.size();
    r.ess = found.ess.empty() ? 0.0 : found.ess.back();
    r.found = found;
    std::printf("%-8s measured: log Z in [%.3f, %.3f]  (%.1f s so far)\n", name, r.bounds.lower.mean,
                r.bounds.upper.mean, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    std::fflush(stdout);
    rows.push_back(std::move(r));
  };
  {
    auto twist = make_head();
    run("no twist", twist, static_cast<tsmc::ctl<>*>(nullptr));
  }
  {
    auto twist = make_head();
    tsmc::ctl<> objective;
    run("CTL", twist, &objective);
  }
  {
    auto twist = make_head();
    tsmc::rl objective;
    run("RL", twist, &objective);
  }
  {
    auto twist = make_head();
    tsmc::sixo<> objective;
    run("SIXO", twist, &objective);
  }
  {
    tsmc::sigmoid_twist twist(make_head());
    tsmc::fudge objective;
    run("FUDGE", twist, &objective);
  }
  {
    auto twist = make_head();
    tsmc::dpg<> objective;
    run("DPG", twist, &objective);
  }

  // The most precise log Z (the acceptance rate, else the tightest bounds of all methods); every KL uses it.
  if (const auto accepted = acceptance_log_z(exact)) {
    log_z = *accepted;
  } else {
    std::vector<tsmc::log_z_bounds> all;
    for (const auto& r : rows) all.push_back(r.bounds);
    log_z = log_z_from_bounds(std::span<const tsmc::log_z_bounds>(all));
  }
  for (auto& r : rows) r.kl = tsmc::combine_kl(r.kl.f_q, r.kl.g_q, log_z.ref);

  return rows;
}

}  // namespace tsmc_examples
