#pragma once
/// @file
/// @brief Shared by the example programs (flagship, red_team, sentiment, infilling): the built-in
/// world (a story-grammar corpus, its word tokenizer, a Kneser-Ney trigram model and two
/// bag-of-words classifiers), and small helpers for the programs' tables and outputs.
#include "example_report.hpp"

#include <tsmc/tsmc.hpp>

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

/// @brief How the harm classifier is trained (issue 27, item 7): on windows of the corpus's
/// sentences, labelled by the grammar's labeller (tsmc::story_grammar::is_rare).
struct harm_training {
  std::size_t window = 5;        ///< windows of 1 .. window consecutive words (the programs' T = 5; 0: whole sentences, labelled rare, as before)
  std::size_t iterations = 150;  ///< Adam steps
  double l2 = 1e-4;              ///< L2 weight
  bool prefixes = false;         ///< windows that start a sentence only (its prefixes), not every window
};

/// @brief The harm classifier, trained on the texts encoded by `encode`.
///
/// The programs apply it to a few words drawn by p0 (T = 5 after the prompt), often a piece of a
/// sentence, not to whole sentences. Trained on whole sentences labelled rare, a bag of words
/// learns that "called" alone means harm (every sentence with "called" has an insult after it),
/// so a sample cut off after "called the dog" is flagged: only 15.8% of the exact samples of
/// the programs' target were harmful by the grammar's labels. Trained on every window of up to
/// `window` consecutive words of each sentence, each labelled by is_rare (harmful when a harmful
/// act or an insult sits in its slot inside the window), it learns that "called" or "smelly"
/// alone is not harm and an act or an insult in its place is. Windows of up to T = 5 words, the
/// programs' default horizon (what the classifier sees), gave 93.8% of exact samples harmful (375 of
/// 400; 6 words: 89.6% of 1000, 8 words: 63%, prefixes only: 58.5%); the target is rarer
/// (acceptance 1.1e-4 instead of 0.025), because most of what the old classifier flagged was not
/// harm. tests/fidelity/harm_labels_test.cpp holds it to at least 345 of 400.
/// @param texts the corpus's sentences (words separated by single spaces)
/// @param encode the world's tokenizer: token_sequence(const std::string&)
/// @param vocab V
/// @param ignored tokens whose weights stay 0
/// @param h the recipe
template <class Encode>
tsmc::bag_of_words_classifier train_harm_classifier(const std::vector<std::string>& texts, Encode encode,
                                                    std::size_t vocab, std::vector<tsmc::token> ignored,
                                                    const harm_training& h = {}) {
  const tsmc::story_grammar grammar;
  std::vector<tsmc::token_sequence> sequences;
  std::vector<std::size_t> labels;
  for (const std::string& text : texts) {
    if (h.window == 0) {
      sequences.push_back(encode(text));
      labels.push_back(grammar.is_rare(text) ? 1 : 0);
      continue;
    }
    const std::vector<std::string> words = tsmc::split_words(text);
    for (std::size_t start = 0; start < (h.prefixes ? std::size_t{1} : words.size()); ++start) {
      std::string piece;
      for (std::size_t end = start; end < words.size() && end < start + h.window; ++end) {
        piece += (end == start ? "" : " ") + words[end];
        sequences.push_back(encode(piece));
        labels.push_back(grammar.is_rare(piece) ? 1 : 0);
      }
    }
  }
  return tsmc::bag_of_words_classifier::train(
      sequences, labels, 2, vocab, {.iterations = h.iterations, .l2 = h.l2, .ignored = std::move(ignored)});
}

/// @brief Builds the world from `corpus_size` grammar sentences (seeded, deterministic).
inline world make_world(std::size_t corpus_size, std::uint64_t seed = 1, const harm_training& harm = {}) {
  const tsmc::story_grammar grammar;
  const std::vector<tsmc::labelled_sentence> corpus = grammar.generate(corpus_size, seed);
  std::vector<std::string> texts;
  for (const tsmc::labelled_sentence& s : corpus) texts.push_back(s.text);
  tsmc::word_tokenizer vocabulary = tsmc::word_tokenizer::from_corpus(texts);
  std::vector<tsmc::token_sequence> sentences;
  std::vector<std::size_t> sentiment;
  for (const tsmc::labelled_sentence& s : corpus) {
    sentences.push_back(vocabulary.encode(s.text));
    sentiment.push_back(static_cast<std::size_t>(s.label));
  }
  tsmc::ngram_model model = tsmc::ngram_model::train_kneser_ney(vocabulary, sentences, {.order = 3});
  const std::size_t V = vocabulary.vocab_size();
  const tsmc::bag_of_words_options options{.ignored = {tsmc::word_tokenizer::end_token}};
  auto sentiment_classifier = tsmc::bag_of_words_classifier::train(sentences, sentiment, 3, V, options);
  auto harm_classifier = train_harm_classifier(
      texts, [&](const std::string& t) { return vocabulary.encode(t); }, V, {tsmc::word_tokenizer::end_token}, harm);
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
