#pragma once
/// @file
/// @brief The model choice of the example programs (flagship, red_team, sentiment, infilling):
/// the built-in n-gram world by default, `--arpa model.arpa` (an n-gram model read from a KenLM
/// or SRILM ARPA file), `--llama2c model.bin --tokenizer tokenizer.bin` (a llama2.c
/// checkpoint such as stories15M.bin, with `--prompt` text), or `--gguf model.gguf` (a
/// Llama-family GGUF file, llama or qwen2, F32 / F16 / BF16 / Q8_0, with the tokenizer in it).
/// Both transformers run as a tsmc::transformer::engine (the engine both loaders derive from),
/// so each program's body is compiled for two model types only. Whatever the model, the programs'
/// classifiers (the harm score of red_team and flagship, the sentiment classes) are bag-of-words
/// classifiers trained on the built-in story grammar's labelled sentences, tokenised with the
/// chosen model's tokenizer (its ARPA vocabulary, or the llama2.c BPE), so that they score the
/// model's own tokens.
///
/// Each program writes its body once as a generic lambda over a tsmc_examples::model_world and
/// runs it through tsmc_examples::with_model, which builds the world the options ask for, checks
/// the options that need the model (the prompt's words, the horizon) and turns a library error (a
/// malformed file, a tokenizer that does not match the checkpoint, an exhausted rejection budget)
/// into a message on stderr and exit status 1 (program_support.hpp). Bad combinations of options
/// (--llama2c without --tokenizer, --tokenizer without --llama2c, --arpa with --llama2c, a file
/// that does not exist) are reported by program::parse: a message and exit status 2 before
/// anything runs.
#include "example_world.hpp"
#include "program_support.hpp"

#include <tsmc/constraints/token_bytes.hpp>
#include <tsmc/models/bpe_tokenizer.hpp>
#include <tsmc/models/gguf_model.hpp>
#include <tsmc/models/llama2c.hpp>
#include <tsmc/models/llama2c_tokenizer.hpp>
#include <tsmc/all.hpp>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace tsmc_examples {

/// @brief The model options of a program (see add_model_options).
struct model_options {
  std::string arpa;       ///< --arpa: an ARPA file (empty: not given)
  std::string llama2c;    ///< --llama2c: a llama2.c checkpoint (empty: not given)
  std::string tokenizer;  ///< --tokenizer: the checkpoint's tokenizer.bin
  std::string gguf;       ///< --gguf: a Llama-family GGUF file (empty: not given)
  std::string prompt;     ///< --prompt: the prompt text (empty: the model's default)
  std::string word_prompt = "the";  ///< a word model's default prompt (the red-team programs: harm_training's "tom")
};

/// @brief Adds --arpa, --llama2c, --tokenizer, --gguf and --prompt to a program's options, with their
/// rules: the files must exist and be files, --llama2c and --tokenizer need each other, --arpa
/// excludes --llama2c, --gguf excludes the other three, the prompt must not be empty (program::parse reports a violation and the
/// program exits with status 2 before anything runs).
/// @param p the program
/// @param m where the values go (m.word_prompt: the default prompt of a word model, named in the help)
inline void add_model_options(program& p, model_options& m) {
  CLI::Option* arpa = p.input("--arpa", m.arpa,
                              "p0 = an n-gram model read from this ARPA file (KenLM, SRILM, IRSTLM) instead of the "
                              "built-in trigram; the classifiers are trained on the built-in corpus in its "
                              "vocabulary");
  CLI::Option* llama = p.input("--llama2c", m.llama2c,
                               "p0 = this llama2.c checkpoint (e.g. stories15M.bin; needs --tokenizer); "
                               "sequences end at BOS (1) as in llama2.c (infilling has no end token)");
  CLI::Option* tokenizer = p.input("--tokenizer", m.tokenizer, "the llama2.c tokenizer of --llama2c (tokenizer.bin)");
  CLI::Option* gguf = p.input("--gguf", m.gguf,
                              "p0 = this GGUF model (llama or qwen2; F32, F16, BF16 or Q8_0; its own \"llama\" or "
                              "\"gpt2\" tokenizer); sequences end at its EOS token (else EOT)");
  p.text("--prompt", m.prompt,
         "the prompt text (default: \"" + m.word_prompt +
             "\"; with --llama2c or --gguf: \"Once upon a time\"); with a word model every word must be in its "
             "vocabulary");
  arpa->excludes(llama);
  gguf->excludes(arpa);
  gguf->excludes(llama);
  gguf->excludes(tokenizer);
  llama->needs(tokenizer);
  tokenizer->needs(llama);
}

/// @brief p0 and what a program needs around it: the prompt, the end token, the text of a
/// sample, and the two classifiers trained on the built-in grammar in the model's tokens.
/// @tparam Model tsmc::ngram_model or tsmc::transformer::engine (--llama2c, --gguf)
template <class Model>
struct model_world {
  Model model;                                ///< p0
  std::string description;                    ///< one line: which model, its size
  bool builtin = false;                       ///< the built-in trigram (no file)
  std::string prompt_text;                    ///< the prompt as text
  tsmc::token_sequence prompt;                ///< the prompt's tokens (what the model starts from)
  std::optional<tsmc::token> end_token;       ///< </s> for the n-gram models (a sentence ends there), BOS (1) for llama2.c, EOS for GGUF
  tsmc::bag_of_words_classifier sentiment;    ///< 3 classes (tsmc::sentiment), in the model's tokens
  tsmc::bag_of_words_classifier harmful;      ///< 2 classes: 1 = the grammar's rare "harmful" attribute
  std::size_t feature_dim = 0;                ///< the width of model.features()
  std::size_t sampler_batch = 512;            ///< p0 draws per batch of the rejection and joint samplers
  std::function<std::string(std::span<const tsmc::token>)> text;  ///< prompt + a sample, as text
  std::function<std::string(std::span<const tsmc::token>)> tokens_text;  ///< tokens alone, as text
  /// The tokenizer's byte strings (tsmc::make_token_byte_table), for the constraints layer.
  std::function<tsmc::token_byte_table()> token_bytes;
  /// Further end tokens (smc_options::end_tokens): a GGUF file's EOT and EOM besides its EOS.
  std::vector<tsmc::token> end_tokens;
};

/// @brief A second model over the same p0, for a potential that queries the model while a
/// sampler drives the first (infilling): a copy of an n-gram model.
inline tsmc::ngram_model query_model(const tsmc::ngram_model& model) { return model; }

/// @brief A second transformer over the same (shared) weights: a copy of the engine (the copy
/// shares the weights; its own cache is reset by the next start).
inline tsmc::transformer::engine query_model(const tsmc::transformer::engine& model) { return model; }

/// @brief The infilling potential phi(s) = p0(o | prompt, s) on an n-gram model: single queries
/// (tsmc::infilling_potential) on a second copy of the model.
inline tsmc::infilling_potential<tsmc::ngram_model> infilling_phi(tsmc::ngram_model& query,
                                                                  std::span<const tsmc::token> prompt,
                                                                  std::span<const tsmc::token> observation) {
  return tsmc::infilling_potential<tsmc::ngram_model>(query, prompt, observation);
}

/// @brief The infilling potential on a transformer: one batched pass of a second model over
/// the same weights per sequence length (tsmc::batched_infilling_potential).
inline tsmc::batched_infilling_potential<tsmc::transformer::engine> infilling_phi(
    tsmc::transformer::engine& query, std::span<const tsmc::token> prompt, std::span<const tsmc::token> observation) {
  return tsmc::batched_infilling_potential<tsmc::transformer::engine>(query, prompt, observation);
}

/// @brief The built-in grammar's corpus: the texts and their labels.
struct labelled_corpus {
  std::vector<std::string> texts;     ///< the sentences
  std::vector<std::size_t> sentiment; ///< tsmc::sentiment as an index
  std::vector<std::size_t> harmful;   ///< 1 for the rare attribute
};

/// @brief `size` sentences of the built-in grammar (the corpus make_world uses, same seed).
inline labelled_corpus grammar_corpus(std::size_t size, std::uint64_t seed = 1) {
  labelled_corpus c;
  for (const tsmc::labelled_sentence& s : tsmc::story_grammar{}.generate(size, seed)) {
    c.texts.push_back(s.text);
    c.sentiment.push_back(static_cast<std::size_t>(s.label));
    c.harmful.push_back(s.rare ? 1 : 0);
  }
  return c;
}

/// @brief The sentiment and harm classifiers trained on the corpus encoded by `encode`.
template <class Encode>
std::pair<tsmc::bag_of_words_classifier, tsmc::bag_of_words_classifier> train_classifiers(
    const labelled_corpus& corpus, Encode encode, std::size_t vocab, std::vector<tsmc::token> ignored) {
  std::vector<tsmc::token_sequence> sentences;
  for (const std::string& t : corpus.texts) sentences.push_back(encode(t));
  const tsmc::bag_of_words_options options{.ignored = ignored};
  // The harm classifier as make_world trains it (the built-in p0's continuations of the red-team
  // prompt, labelled by story_grammar::is_rare), so that --arpa on the built-in model's own ARPA
  // file gives the built-in world's classifier.
  return {tsmc::bag_of_words_classifier::train(sentences, corpus.sentiment, 3, vocab, options),
          train_harm_classifier(draw_harm_examples(builtin_ngram(corpus.texts.size())), encode, vocab,
                                std::move(ignored))};
}

/// @brief The text of a word model's prompt and sample.
inline std::function<std::string(std::span<const tsmc::token>)> word_text(const tsmc::ngram_model& model,
                                                                         const tsmc::token_sequence& prompt) {
  const std::string head = model.vocabulary().decode(prompt);
  return [&model, head](std::span<const tsmc::token> s) { return head + " " + model.vocabulary().decode(s); };
}

/// @brief The built-in world (make_world) as a model_world.
inline std::unique_ptr<model_world<tsmc::ngram_model>> builtin_world(std::size_t corpus, const std::string& prompt) {
  world w = make_world(corpus);
  auto m = std::make_unique<model_world<tsmc::ngram_model>>(model_world<tsmc::ngram_model>{
      std::move(w.model), "", true, prompt, {}, tsmc::word_tokenizer::end_token, std::move(w.sentiment),
      std::move(w.harmful), 0, 512, {}, {}, {}, {}});
  m->description = "built-in world: " + std::to_string(corpus) + " grammar sentences, " +
                   std::to_string(m->model.vocab_size()) + " words, Kneser-Ney trigram";
  return m;
}

/// @brief An ARPA model with classifiers trained on the grammar corpus in its vocabulary.
inline std::unique_ptr<model_world<tsmc::ngram_model>> arpa_world(const std::string& path, std::size_t corpus,
                                                                  const std::string& prompt) {
  tsmc::ngram_model model = tsmc::ngram_model::load_arpa(path);
  const labelled_corpus c = grammar_corpus(corpus);
  auto [sentiment, harmful] = train_classifiers(
      c, [&](const std::string& t) { return model.vocabulary().encode(t); }, model.vocab_size(),
      {tsmc::word_tokenizer::end_token});
  auto m = std::make_unique<model_world<tsmc::ngram_model>>(model_world<tsmc::ngram_model>{
      std::move(model), "", false, prompt, {}, tsmc::word_tokenizer::end_token, std::move(sentiment),
      std::move(harmful), 0, 512, {}, {}, {}, {}});
  m->description = "ARPA model " + path + ": order " + std::to_string(m->model.order()) + ", " +
                   std::to_string(m->model.vocab_size()) + " words; classifiers trained on " + std::to_string(corpus) +
                   " grammar sentences in its vocabulary";
  return m;
}

/// @brief A llama2.c checkpoint with its tokenizer; classifiers trained on the grammar corpus
/// tokenised by it (BOS and EOS ignored), the prompt encoded with BOS first.
inline std::unique_ptr<model_world<tsmc::transformer::engine>> llama2c_world(const model_options& o, std::size_t corpus) {
  tsmc::llama2c::model model{std::filesystem::path(o.llama2c)};
  auto tok = std::make_shared<const tsmc::llama2c::tokenizer>(o.tokenizer, model.vocab_size());
  const labelled_corpus c = grammar_corpus(corpus);
  auto [sentiment, harmful] = train_classifiers(
      c, [&](const std::string& t) { return tok->encode(t, false, false); }, model.vocab_size(),
      {tsmc::llama2c::tokenizer::bos, tsmc::llama2c::tokenizer::eos});
  const std::string prompt_text = o.prompt.empty() ? "Once upon a time" : o.prompt;
  tsmc::token_sequence prompt = tok->encode(prompt_text, /*add_bos=*/true);
  const tsmc::llama2c::config cfg = model.configuration();
  const std::size_t dim = model.feature_dim();
  auto m = std::make_unique<model_world<tsmc::transformer::engine>>(model_world<tsmc::transformer::engine>{
      std::move(model), "", false, prompt_text, prompt, tsmc::llama2c::tokenizer::bos, std::move(sentiment),
      std::move(harmful), dim, 64, {}, {}, {}, {}});
  m->description = "llama2.c model " + o.llama2c + ": dim " + std::to_string(cfg.dim) + ", " +
                   std::to_string(cfg.n_layers) + " layers, " + std::to_string(cfg.n_heads) + " heads, vocab " +
                   std::to_string(cfg.vocab_size) + ", seq_len " + std::to_string(cfg.seq_len) +
                   "; classifiers trained on " + std::to_string(corpus) + " grammar sentences in its tokens";
  m->text = [tok, prompt](std::span<const tsmc::token> s) {
    return tok->decode(std::span<const tsmc::token>(prompt)) + tok->decode(s, prompt.back());
  };
  m->tokens_text = [tok](std::span<const tsmc::token> s) { return tok->decode(s, tsmc::token{0}); };
  m->token_bytes = [tok] { return tsmc::make_token_byte_table(*tok); };
  return m;
}

/// @brief A GGUF model with the tokenizer its metadata names: "llama" (SentencePiece BPE, as
/// llama2.c's) or "gpt2" (byte-level BPE: Llama 3, SmolLM2, Qwen2.5); classifiers trained on the
/// grammar corpus tokenised by it (special tokens ignored), the prompt encoded with BOS first
/// when the vocabulary has one, the file's first end token (EOS, else EOT) as the end token.
inline std::unique_ptr<model_world<tsmc::transformer::engine>> gguf_world(const model_options& o, std::size_t corpus) {
  tsmc::gguf::model model{std::filesystem::path(o.gguf)};
  const std::string kind = model.source()->find("tokenizer.ggml.model") != nullptr
                               ? model.source()->require_string("tokenizer.ggml.model")
                               : std::string();
  // The tokenizer's four uses, whichever it is: encode text (without specials), the prompt, the
  // text of tokens after a previous token, and the byte table of the constraints layer.
  std::function<tsmc::token_sequence(const std::string&)> encode;
  std::function<tsmc::token_sequence(const std::string&)> encode_prompt;
  std::function<std::string(std::span<const tsmc::token>, tsmc::token)> decode_after;
  std::function<tsmc::token_byte_table()> token_bytes;
  std::vector<tsmc::token> ignored;
  if (kind == "gpt2") {
    auto tok = std::make_shared<const tsmc::bpe_tokenizer>(tsmc::gguf::gpt2_tokenizer(*model.source(), model.vocab_size()));
    encode = [tok](const std::string& t) { return tok->encode(t, {.add_bos = false}); };
    encode_prompt = [tok](const std::string& t) { return tok->encode(t, {.add_bos = tok->bos().has_value()}); };
    decode_after = [tok](std::span<const tsmc::token> s, tsmc::token) { return tok->decode(s); };
    token_bytes = [tok] { return tsmc::make_token_byte_table(*tok); };
    for (const auto& t : {tok->bos(), tok->eos(), tok->eot()})
      if (t) ignored.push_back(*t);
  } else {
    // "llama", or no tokenizer section: gguf::llama_tokenizer names the key in its error.
    auto tok = std::make_shared<const tsmc::llama2c::tokenizer>(tsmc::gguf::llama_tokenizer(*model.source(), model.vocab_size()));
    encode = [tok](const std::string& t) { return tok->encode(t, false, false); };
    encode_prompt = [tok](const std::string& t) { return tok->encode(t, /*add_bos=*/true); };
    decode_after = [tok](std::span<const tsmc::token> s, tsmc::token previous) { return tok->decode(s, previous); };
    token_bytes = [tok] { return tsmc::make_token_byte_table(*tok); };
    ignored = {tsmc::llama2c::tokenizer::bos, tsmc::llama2c::tokenizer::eos};
  }
  const labelled_corpus c = grammar_corpus(corpus);
  auto [sentiment, harmful] = train_classifiers(c, encode, model.vocab_size(), ignored);
  const std::string prompt_text = o.prompt.empty() ? "Once upon a time" : o.prompt;
  tsmc::token_sequence prompt = encode_prompt(prompt_text);
  if (prompt.empty()) throw std::runtime_error("the prompt " + quote_value(prompt_text) + " encodes to no token");
  const tsmc::transformer::config cfg = model.transformer_config();
  const std::vector<tsmc::token> ends = model.specials().end_tokens();
  const std::optional<tsmc::token> end = ends.empty() ? std::optional<tsmc::token>() : ends.front();
  const std::vector<tsmc::token> more_ends(ends.size() > 1 ? ends.begin() + 1 : ends.end(), ends.end());
  const std::string architecture = model.architecture();
  const std::size_t dim = model.feature_dim();
  auto m = std::make_unique<model_world<tsmc::transformer::engine>>(model_world<tsmc::transformer::engine>{
      std::move(model), "", false, prompt_text, prompt, end, std::move(sentiment), std::move(harmful), dim, 64, {}, {}, {}, {}});
  m->description = "GGUF model " + o.gguf + ": " + architecture + ", dim " + std::to_string(cfg.dim) + ", " +
                   std::to_string(cfg.n_layers) + " layers, " + std::to_string(cfg.n_heads) + " heads, vocab " +
                   std::to_string(cfg.vocab_size) + ", context " + std::to_string(cfg.seq_len) + ", tokenizer " +
                   (kind.empty() ? std::string("none") : kind) + "; classifiers trained on " + std::to_string(corpus) +
                   " grammar sentences in its tokens";
  m->text = [decode_after, prompt](std::span<const tsmc::token> s) {
    return decode_after(std::span<const tsmc::token>(prompt), tsmc::token{0}) + decode_after(s, prompt.back());
  };
  m->tokens_text = [decode_after](std::span<const tsmc::token> s) { return decode_after(s, tsmc::token{0}); };
  m->token_bytes = token_bytes;
  m->end_tokens = more_ends;  // EOT / EOM: every end token of the file finishes a particle
  return m;
}

/// @brief The words of a word model's prompt that are not in its vocabulary (they would be read
/// as `<unk>`), as "'w1', 'w2'"; empty when there are none.
inline std::string unknown_prompt_words(const tsmc::word_tokenizer& vocabulary, const std::string& prompt) {
  std::string unknown;
  for (const std::string& word : tsmc::split_words(prompt))
    if (!vocabulary.contains(word)) unknown += (unknown.empty() ? "'" : ", '") + word + "'";
  return unknown;
}

/// @brief Builds the world the options ask for, checks the options that need the model (every
/// prompt word in a word model's vocabulary; the prompt and --horizon within a llama2.c model's
/// seq_len) and runs `body(world)` on it (a generic lambda: it is compiled for the n-gram and the
/// transformer world of --llama2c and --gguf), through program::run: an error is reported as "<program>: error: <message>"
/// with a non-zero status.
/// @param p the program
/// @param o the model options
/// @param corpus sentences of the built-in grammar (the built-in model's corpus, and the
/// classifiers' training set for every model)
/// @param horizon the tokens each sequence gets after the prompt (--horizon)
/// @param body int(model_world<M>&), the program
/// @return body's status, or the error's status
template <class Body>
int with_model(program& p, const model_options& o, std::size_t corpus, std::size_t horizon, Body&& body) {
  return p.run([&]() -> int {
    // A file that does not load is reported with the option that named it.
    auto load = [&](auto make) {
      try {
        return make();
      } catch (const std::exception& e) {
        const std::string what = !o.llama2c.empty() ? "--llama2c " + quote_value(o.llama2c) + " with --tokenizer " +
                                                          quote_value(o.tokenizer)
                                 : !o.gguf.empty() ? "--gguf " + quote_value(o.gguf)
                                                   : "--arpa " + quote_value(o.arpa);
        throw std::runtime_error(what + ": " + e.what());
      }
    };
    if (!o.llama2c.empty()) {
      auto w = load([&] { return llama2c_world(o, corpus); });
      if (w->prompt.size() + horizon > w->model.max_length())
        throw option_error("--horizon " + std::to_string(horizon) + " after the prompt's " +
                           std::to_string(w->prompt.size()) + " tokens (BOS included) exceeds the model's seq_len " +
                           std::to_string(w->model.max_length()));
      return body(*w);
    }
    if (!o.gguf.empty()) {
      auto w = load([&] { return gguf_world(o, corpus); });
      if (w->prompt.size() + horizon > w->model.max_length())
        throw option_error("--horizon " + std::to_string(horizon) + " after the prompt's " +
                           std::to_string(w->prompt.size()) + " tokens (BOS included) exceeds the model's context " +
                           std::to_string(w->model.max_length()));
      return body(*w);
    }
    const std::string& prompt = o.prompt.empty() ? o.word_prompt : o.prompt;
    auto w = o.arpa.empty() ? builtin_world(corpus, prompt)
                            : load([&] { return arpa_world(o.arpa, corpus, prompt); });
    const std::string unknown = unknown_prompt_words(w->model.vocabulary(), w->prompt_text);
    if (!unknown.empty())
      throw option_error("--prompt " + quote_value(w->prompt_text) + ": the model's vocabulary has no word " + unknown +
                         " (" + std::to_string(w->model.vocab_size()) + " tokens; it would be read as <unk>)");
    w->prompt = w->model.vocabulary().encode(w->prompt_text);
    w->feature_dim = w->model.feature_dimension();
    w->text = word_text(w->model, w->prompt);
    const tsmc::ngram_model& model = w->model;
    w->tokens_text = [&model](std::span<const tsmc::token> s) { return model.vocabulary().decode(s); };
    w->token_bytes = [&model] { return tsmc::make_token_byte_table(model.vocabulary()); };
    return body(*w);
  });
}

}  // namespace tsmc_examples
