// [reliability] Bad-input matrix rows of the models layer: llama2.c checkpoints, the llama2.c
// model and tokenizer, the n-gram model and its ARPA files, the word tokenizer and text corpora
// (see bad_input_matrix.hpp).

#include "reliability/bad_input_matrix.hpp"

#include <tsmc/corpus/story_grammar.hpp>
#include <tsmc/models/llama2c.hpp>
#include <tsmc/models/llama2c_checkpoint.hpp>
#include <tsmc/models/llama2c_tokenizer.hpp>
#include <tsmc/models/ngram.hpp>
#include <tsmc/models/word_tokenizer.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace {

using bad_input::input;
using tsmc::token;
using tsmc::token_sequence;
namespace l2 = tsmc::llama2c;
constexpr double nan = std::numeric_limits<double>::quiet_NaN();
constexpr double inf = std::numeric_limits<double>::infinity();

// V = 11, seq_len 8: a model small enough to build per row.
l2::config tiny() {
  return {.dim = 8, .hidden_dim = 16, .n_layers = 1, .n_heads = 2, .n_kv_heads = 2, .vocab_size = 11, .seq_len = 8,
          .shared_classifier = true};
}

// A checkpoint file of tiny(), written once.
const std::filesystem::path& tiny_file() {
  static const std::filesystem::path path = [] {
    auto p = bad_input::scratch("tiny.bin");
    l2::make_random_checkpoint(p, tiny(), 5);
    return p;
  }();
  return path;
}

l2::model started(std::size_t particles = 2) {
  l2::model m(tiny_file());
  const token_sequence prompt{1};
  m.start(prompt, particles);
  return m;
}

// The header of tiny() with field i replaced by value, and the body of tiny().
std::string with_field(std::size_t i, std::int32_t value) {
  std::string bytes = bad_input::read_bytes(tiny_file());
  std::memcpy(bytes.data() + 4 * i, &value, 4);
  return bytes;
}

// A tokenizer file of 11 pieces.
std::string tokenizer_bytes() {
  std::vector<std::string> pieces{"<unk>", "<s>", "</s>", " ", "a", "b", "c", "ab", " a", "bc", "abc"};
  std::vector<float> scores(pieces.size(), 0.0f);
  for (std::size_t i = 0; i < scores.size(); ++i) scores[i] = static_cast<float>(i);
  const auto path = bad_input::scratch("good.tok");
  l2::write_tokenizer(path, pieces, scores);
  return bad_input::read_bytes(path);
}

const std::string arpa_text =
    "\\data\\\nngram 1=4\nngram 2=1\n\n\\1-grams:\n-1.0\t<unk>\n-99\t<s>\t-0.3\n-0.5\t</s>\n-0.4\ta\t-0.2\n\n"
    "\\2-grams:\n-0.1\t<s> a\n\n\\end\\\n";

tsmc::ngram_model arpa_model() {
  std::istringstream in(arpa_text);
  return tsmc::ngram_model::read_arpa(in);
}

const bad_input::area llama2c_rows("models", [](bad_input::area& a) {
  const std::string rc = "llama2c::read_config";
  const auto read_config_of = [](std::string bytes) {
    return [bytes] {
      const auto path = bad_input::scratch("config.bin");
      bad_input::write_bytes(path, bytes);
      (void)l2::read_config(path);
    };
  };
  a.runtime(rc, input::wrong_file, "a missing file", rc, "must be a readable regular file",
            [] { (void)l2::read_config(bad_input::scratch("no_such.bin")); });
  a.runtime(rc, input::empty, "an empty file", rc, "header is truncated: the header needs 28 bytes, got 0 bytes",
            read_config_of(""));
  a.runtime(rc, input::truncated, "a 20-byte header", rc, "header is truncated: the header needs 28 bytes, got 20 bytes",
            read_config_of(std::string(20, '\1')));
  const char* names[] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
  for (std::size_t i = 0; i < 7; ++i) {
    const std::string field = names[i];
    if (i == 5) {
      a.runtime(rc, input::zero, "header field vocab_size = 0", rc,
                "header field vocab_size must be non-zero (negative: unshared classifier), got 0",
                read_config_of(with_field(i, 0)));
      a.runtime(rc, input::negative, "header field vocab_size = INT32_MIN", rc,
                "header field vocab_size must be non-zero", read_config_of(with_field(i, std::numeric_limits<std::int32_t>::min())));
      continue;
    }
    a.runtime(rc, input::zero, "header field " + field + " = 0", rc, "header field " + field + " must be positive, got 0",
              read_config_of(with_field(i, 0)));
    a.runtime(rc, input::negative, "header field " + field + " = -3", rc,
              "header field " + field + " must be positive, got -3", read_config_of(with_field(i, -3)));
  }
  a.runtime(rc, input::mismatched, "n_heads = 3 does not divide dim = 8", rc, "header field n_heads must divide dim = 8, got 3",
            read_config_of(with_field(3, 3)));
  a.runtime(rc, input::mismatched, "n_kv_heads = 3 does not divide n_heads = 2", rc,
            "header field n_kv_heads must divide n_heads = 2, got 3", read_config_of(with_field(4, 3)));
  a.runtime(rc, input::mismatched, "n_heads = 8: head_size 1 is odd", rc, "must leave an even head_size",
            read_config_of(with_field(3, 8)));
  a.runtime(rc, input::too_large, "dim = 2^30 (a model of 2^66 bytes)", rc, "header must describe a model whose size fits 64 bits", read_config_of(with_field(0, 1 << 30)));
  a.runtime(rc, input::truncated, "a checkpoint without its last float", rc, "file size is truncated", [] {
    std::string bytes = bad_input::read_bytes(tiny_file());
    bytes.resize(bytes.size() - 4);
    const auto path = bad_input::scratch("config.bin");
    bad_input::write_bytes(path, bytes);
    (void)l2::read_config(path);
  });
  a.runtime(rc, input::wrong_file, "a checkpoint with 4 extra bytes", rc, "file size must equal", [] {
    const auto path = bad_input::scratch("config.bin");
    bad_input::write_bytes(path, bad_input::read_bytes(tiny_file()) + "xxxx");
    (void)l2::read_config(path);
  });
  a.runtime("llama2c::checkpoint::checkpoint", input::truncated, "a checkpoint cut in half", rc, "file size is truncated",
            [] {
              std::string bytes = bad_input::read_bytes(tiny_file());
              bytes.resize(bytes.size() / 2);
              const auto path = bad_input::scratch("half.bin");
              bad_input::write_bytes(path, bytes);
              l2::checkpoint c(path);
            });
  a.runtime("llama2c::model::model(path)", input::wrong_file, "a tokenizer file as a checkpoint", rc, "does not look like a llama2.c checkpoint", [] {
    const auto path = bad_input::scratch("tok_as_model.bin");
    bad_input::write_bytes(path, tokenizer_bytes());
    l2::model m(path);
  });
  a.invalid("llama2c::model::model(weights)", input::empty, "weights = nullptr", "llama2c::model::model",
            "weights must not be null", [] { l2::model m(std::shared_ptr<const l2::checkpoint>{}); });

  const std::string cf = "llama2c::checkpoint_floats";
  const auto floats_of = [](l2::config c) { return [c] { (void)l2::checkpoint_floats(c); }; };
  {
    auto c = tiny();
    c.dim = 0;
    a.invalid(cf, input::zero, "config.dim = 0", cf, "config.dim must be positive, got 0", floats_of(c));
    c = tiny();
    c.hidden_dim = -5;
    a.invalid(cf, input::negative, "config.hidden_dim = -5", cf, "config.hidden_dim must be positive, got -5", floats_of(c));
    c = tiny();
    c.seq_len = 0;
    a.invalid(cf, input::zero, "config.seq_len = 0", cf, "config.seq_len must be positive, got 0", floats_of(c));
    c = tiny();
    c.vocab_size = -11;
    a.invalid(cf, input::negative, "config.vocab_size = -11", cf, "config.vocab_size must be positive, got -11",
              floats_of(c));
    c = tiny();
    c.n_heads = 3;
    a.invalid(cf, input::mismatched, "config.n_heads = 3, dim = 8", cf, "config.n_heads must divide config.dim = 8, got 3",
              floats_of(c));
    c = tiny();
    c.n_kv_heads = 4;
    a.invalid(cf, input::mismatched, "config.n_kv_heads = 4, n_heads = 2", cf,
              "config.n_kv_heads must divide config.n_heads = 2, got 4", floats_of(c));
    c = tiny();
    c.dim = std::numeric_limits<std::int32_t>::max() - 1;
    c.n_heads = 1;
    c.n_kv_heads = 1;
    c.hidden_dim = std::numeric_limits<std::int32_t>::max();
    c.n_layers = std::numeric_limits<std::int32_t>::max();
    a.invalid(cf, input::too_large, "every field near INT32_MAX", cf, "config must describe a model that fits in memory",
              floats_of(c));
  }
  a.invalid("llama2c::write_checkpoint", input::mismatched, "3 floats for tiny()", "llama2c::write_checkpoint",
            "floats.size() must equal checkpoint_floats(config)", [] {
              const std::vector<float> w(3);
              l2::write_checkpoint(bad_input::scratch("w.bin"), tiny(), w);
            });
  a.invalid("llama2c::write_checkpoint", input::zero, "config.n_layers = 0", "llama2c::write_checkpoint",
            "config.n_layers must be positive, got 0", [] {
              auto c = tiny();
              c.n_layers = 0;
              const std::vector<float> w(3);
              l2::write_checkpoint(bad_input::scratch("w.bin"), c, w);
            });
  a.runtime("llama2c::write_checkpoint", input::wrong_file, "a path in a missing directory", "llama2c::write_checkpoint",
            "could not be written", [] {
              const std::vector<float> w(l2::checkpoint_floats(tiny()));
              l2::write_checkpoint(bad_input::scratch("missing_dir") / "w.bin", tiny(), w);
            });
  for (const double scale : {0.0, -1.0, nan, inf}) {
    const input kind = scale == 0.0 ? input::zero : std::isnan(scale) ? input::nan : scale == inf ? input::pos_inf : input::negative;
    a.invalid("llama2c::random_weights", kind, "scale = " + tsmc::detail::to_text(scale), "llama2c::random_weights",
              "scale must be positive and finite", [scale] { (void)l2::random_weights(tiny(), 1, scale); });
  }
  a.invalid("llama2c::random_weights", input::zero, "config.n_kv_heads = 0", "llama2c::random_weights",
            "config.n_kv_heads must be positive, got 0", [] {
              auto c = tiny();
              c.n_kv_heads = 0;
              (void)l2::random_weights(c, 1);
            });
  a.invalid("llama2c::make_random_checkpoint", input::zero, "scale = 0", "llama2c::random_weights",
            "scale must be positive and finite, got 0",
            [] { l2::make_random_checkpoint(bad_input::scratch("r.bin"), tiny(), 1, 0.0); });

  // the model
  a.invalid("llama2c::model::reserve", input::too_large, "positions = 9 > max_length() 8", "llama2c::model::reserve",
            "positions must be <= max_length() 8, got 9", [] {
              l2::model m(tiny_file());
              m.reserve(9);
            });
  const std::string st = "llama2c::model::start";
  a.invalid(st, input::zero, "particles = 0", st, "particles must be positive, got 0", [] { (void)started(0); });
  a.invalid(st, input::empty, "prompt = {}", st, "prompt.size() must be positive", [] {
    l2::model m(tiny_file());
    m.start(token_sequence{}, 2);
  });
  a.invalid(st, input::too_large, "a prompt of 9 tokens, max_length() 8", st, "prompt.size() must be <= max_length() 8, got 9",
            [] {
              l2::model m(tiny_file());
              m.start(token_sequence(9, 1), 2);
            });
  a.invalid(st, input::too_large, "prompt = {1, 11}, V = 11", st, "prompt[1] must be in [0, 11), got 11", [] {
    l2::model m(tiny_file());
    m.start(token_sequence{1, 11}, 2);
  });
  a.invalid(st, input::negative, "prompt = {-1}", st, "prompt[0] must be in [0, 11), got -1", [] {
    l2::model m(tiny_file());
    m.start(token_sequence{-1}, 2);
  });
  a.invalid("llama2c::model::log_probs", input::misuse, "before start", "llama2c::model::log_probs",
            "start must be called first", [] {
              l2::model m(tiny_file());
              tsmc::log_prob_matrix out(2, 11);
              m.log_probs(out);
            });
  a.invalid("llama2c::model::log_probs", input::mismatched, "out 2 x 10 for V = 11", "llama2c::model::log_probs",
            "out.cols() must equal the vocabulary size 11, got 10", [] {
              auto m = started();
              tsmc::log_prob_matrix out(2, 10);
              m.log_probs(out);
            });
  a.invalid("llama2c::model::log_probs", input::mismatched, "out 3 x 11 for K = 2", "llama2c::model::log_probs",
            "out.rows() must equal the number of particles 2, got 3", [] {
              auto m = started();
              tsmc::log_prob_matrix out(3, 11);
              m.log_probs(out);
            });
  a.invalid("llama2c::model::log_probs(active)", input::mismatched, "1 active flag for K = 2",
            "llama2c::model::log_probs", "active.size() must equal the number of particles 2, got 1", [] {
              auto m = started();
              tsmc::log_prob_matrix out(2, 11);
              const std::vector<std::uint8_t> active{1};
              m.log_probs(out, active);
            });
  a.invalid("llama2c::model::logits", input::misuse, "before start", "llama2c::model::logits", "start must be called first",
            [] {
              l2::model m(tiny_file());
              l2::logit_matrix out(2, 11);
              m.logits(out);
            });
  a.invalid("llama2c::model::logits", input::mismatched, "out 2 x 12", "llama2c::model::logits",
            "out.cols() must equal the vocabulary size 11, got 12", [] {
              auto m = started();
              l2::logit_matrix out(2, 12);
              m.logits(out);
            });
  const std::string ap = "llama2c::model::append";
  a.invalid(ap, input::misuse, "before start", ap, "start must be called first", [] {
    l2::model m(tiny_file());
    m.append(token_sequence{1, 1});
  });
  a.invalid(ap, input::mismatched, "3 tokens for K = 2", ap, "tokens.size() must equal the number of particles 2, got 3",
            [] {
              auto m = started();
              m.append(token_sequence{1, 1, 1});
            });
  a.invalid(ap, input::too_large, "tokens = {1, 11}", ap, "tokens[1] must be in [0, 11), got 11", [] {
    auto m = started();
    m.append(token_sequence{1, 11});
  });
  a.invalid(ap, input::negative, "tokens = {-2, 1}", ap, "tokens[0] must be in [0, 11), got -2", [] {
    auto m = started();
    m.append(token_sequence{-2, 1});
  });
  a.invalid(ap, input::too_large, "an append past max_length() 8", ap, "length() must be < max_length() 8 to append, got 8",
            [] {
              auto m = started();
              for (int i = 0; i < 8; ++i) m.append(token_sequence{1, 1});
            });
  const std::string ro = "llama2c::model::reorder";
  a.invalid(ro, input::misuse, "before start", ro, "start must be called first", [] {
    l2::model m(tiny_file());
    const std::vector<tsmc::particle_index> anc{0, 0};
    m.reorder(anc);
  });
  a.invalid(ro, input::mismatched, "1 ancestor for K = 2", ro, "ancestors.size() must equal the number of particles 2, got 1",
            [] {
              auto m = started();
              const std::vector<tsmc::particle_index> anc{0};
              m.reorder(anc);
            });
  a.invalid(ro, input::too_large, "ancestors = {0, 5} for K = 2", ro, "ancestors[1] must be < 2, got 5", [] {
    auto m = started();
    const std::vector<tsmc::particle_index> anc{0, 5};
    m.reorder(anc);
  });

  // the tokenizer
  const std::string tk = "llama2c::tokenizer::tokenizer";
  const auto tokenizer_of = [](std::string bytes, std::optional<std::size_t> vocab = std::nullopt) {
    return [bytes, vocab] {
      const auto path = bad_input::scratch("t.tok");
      bad_input::write_bytes(path, bytes);
      l2::tokenizer t(path, vocab);
    };
  };
  a.runtime(tk, input::wrong_file, "a missing file", tk, "must be a readable file",
            [] { l2::tokenizer t(bad_input::scratch("no_such.tok")); });
  a.runtime(tk, input::empty, "an empty file", tk, "max_token_length is truncated: 4 bytes needed", tokenizer_of(""));
  a.runtime(tk, input::zero, "max_token_length = 0", tk, "max_token_length must be positive, got 0", [] {
    std::string bytes = tokenizer_bytes();
    std::memset(bytes.data(), 0, 4);
    const auto path = bad_input::scratch("t.tok");
    bad_input::write_bytes(path, bytes);
    l2::tokenizer t(path);
  });
  a.runtime(tk, input::truncated, "a file cut after 10 bytes", tk, "is truncated", tokenizer_of(tokenizer_bytes().substr(0, 10)));
  a.runtime(tk, input::nan, "token 0's score NaN", tk, "token 0 score must be finite, got nan", [] {
    std::string bytes = tokenizer_bytes();
    const float bad = std::numeric_limits<float>::quiet_NaN();
    std::memcpy(bytes.data() + 4, &bad, 4);
    const auto path = bad_input::scratch("t.tok");
    bad_input::write_bytes(path, bytes);
    l2::tokenizer t(path);
  });
  a.runtime(tk, input::negative, "token 0's len -1", tk, "token 0 len must be in [0, max_token_length = 5], got -1", [] {
    std::string bytes = tokenizer_bytes();
    const std::int32_t bad = -1;
    std::memcpy(bytes.data() + 8, &bad, 4);
    const auto path = bad_input::scratch("t.tok");
    bad_input::write_bytes(path, bytes);
    l2::tokenizer t(path);
  });
  a.runtime(tk, input::mismatched, "11 entries, vocab_size = 12 expected", tk, "the file has 11 tokens, the model needs 12",
            tokenizer_of(tokenizer_bytes(), 12));
  a.runtime(tk, input::mismatched, "11 entries, vocab_size = 5 expected", tk, "the file has 11 tokens or more, the model needs 5",
            tokenizer_of(tokenizer_bytes(), 5));
  a.runtime(tk, input::wrong_file, "a checkpoint file as a tokenizer", tk, "", tokenizer_of(bad_input::read_bytes(tiny_file())));
  const auto tok = [] {
    const auto path = bad_input::scratch("t2.tok");
    bad_input::write_bytes(path, tokenizer_bytes());
    return l2::tokenizer(path);
  };
  a.invalid("llama2c::tokenizer::piece", input::too_large, "token 11, V = 11", "llama2c::tokenizer::piece",
            "token must be in [0, 11), got 11", [tok] { (void)tok().piece(11); });
  a.invalid("llama2c::tokenizer::score", input::negative, "token -1", "llama2c::tokenizer::score",
            "token must be in [0, 11), got -1", [tok] { (void)tok().score(-1); });
  a.invalid("llama2c::tokenizer::decode", input::too_large, "t = 40", "llama2c::tokenizer::decode",
            "token must be in [0, 11), got 40", [tok] { (void)tok().decode(1, 40); });
  a.invalid("llama2c::tokenizer::decode(span)", input::negative, "tokens = {4, -3}", "llama2c::tokenizer::decode",
            "token must be in [0, 11), got -3", [tok] { (void)tok().decode(token_sequence{4, -3}); });
  a.invalid("llama2c::tokenizer::encode", input::too_large, "text \"z\" needs byte token 125 of 11", "llama2c::tokenizer::encode",
            "text needs byte token", [tok] { (void)tok().encode("z"); });
  a.invalid("llama2c::tokenizer::check_vocabulary", input::mismatched, "model V = 12, tokenizer 11", "llama2c::tokenizer",
            "tokenizer vocab_size() must equal the model's vocab_size() 12, got 11", [tok] { tok().check_vocabulary(12); });
  a.invalid("llama2c::write_tokenizer", input::mismatched, "2 pieces, 1 score", "llama2c::write_tokenizer",
            "scores.size() must equal pieces.size() 2, got 1", [] {
              const std::vector<std::string> pieces{"a", "b"};
              const std::vector<float> scores{0.0f};
              l2::write_tokenizer(bad_input::scratch("w.tok"), pieces, scores);
            });
});

const bad_input::area ngram_rows("models", [](bad_input::area& a) {
  const std::string wt = "word_tokenizer::word_tokenizer";
  const auto words = [](std::vector<std::string> w) { return [w] { tsmc::word_tokenizer t(w); }; };
  a.invalid(wt, input::empty, "words = {\"a\", \"\"}", wt, "words must not contain an empty word", words({"a", ""}));
  a.invalid(wt, input::mismatched, "words = {\"a b\"}", wt, "words", words({"a b"}));
  a.invalid(wt, input::mismatched, "words = {\"a\", \"a\"}", wt, "words must be distinct", words({"a", "a"}));
  a.invalid("word_tokenizer::from_corpus", input::zero, "min_count = 0", "word_tokenizer::from_corpus",
            "min_count must be positive, got 0", [] { (void)tsmc::word_tokenizer::from_corpus({}, 0); });
  const auto vocabulary = [] {
    const std::vector<std::string> w{"a", "b"};
    return tsmc::word_tokenizer(w);
  };
  a.invalid("word_tokenizer::word", input::too_large, "id 5, V = 5", "word_tokenizer::word", "id must be in [0, 5), got 5",
            [vocabulary] { (void)vocabulary().word(5); });
  a.invalid("word_tokenizer::word", input::negative, "id -1", "word_tokenizer::word", "id must be in [0, 5), got -1",
            [vocabulary] { (void)vocabulary().word(-1); });
  a.invalid("word_tokenizer::decode", input::too_large, "tokens = {3, 9}", "word_tokenizer::decode",
            "tokens[1] must be in [0, 5), got 9", [vocabulary] { (void)vocabulary().decode(token_sequence{3, 9}); });
  a.result("word_tokenizer::encode", input::empty, "text \"\"", "no tokens", [vocabulary] {
    return vocabulary().encode("").empty();
  });
  a.result("word_tokenizer::encode", input::too_large, "an unknown word", "<unk> (0)", [vocabulary] {
    return vocabulary().encode("zzz") == token_sequence{0};
  });

  const std::string kn = "ngram_model::train_kneser_ney";
  const auto train = [vocabulary](std::vector<token_sequence> sentences, std::size_t order = 3) {
    return [vocabulary, sentences, order] {
      (void)tsmc::ngram_model::train_kneser_ney(vocabulary(), std::span<const token_sequence>(sentences),
                                                tsmc::kneser_ney_options{.order = order});
    };
  };
  a.invalid(kn, input::too_large, "options.order = 6", kn, "options.order must be in [2, 5], got 6", train({{3}}, 6));
  a.invalid(kn, input::zero, "options.order = 0", kn, "options.order must be in [2, 5], got 0", train({{3}}, 0));
  a.invalid(kn, input::empty, "sentences = {}", kn, "sentences.size() must be positive, got 0", train({}));
  a.invalid(kn, input::too_large, "sentences[0] = {3, 7}, V = 5", kn, "sentences[0][1] must be in [0, 5), got 7",
            train({{3, 7}}));
  a.invalid(kn, input::negative, "sentences[1] = {-1}", kn, "sentences[1][0] must be in [0, 5), got -1", train({{3}, {-1}}));
  a.invalid(kn, input::mismatched, "sentences[0] = {3, 1} (contains <s>)", kn, "sentences[0] must not contain <s> (1)",
            train({{3, 1}}));
  a.invalid(kn, input::mismatched, "sentences[0] = {2, 3} (</s> first)", kn,
            "sentences[0] must not contain </s> (2) before its end", train({{2, 3}}));

  const std::string ra = "ngram_model::read_arpa";
  const auto read = [](std::string text) {
    return [text] {
      std::istringstream in(text);
      (void)tsmc::ngram_model::read_arpa(in);
    };
  };
  a.runtime(ra, input::empty, "an empty stream", ra, "line 1: the file must contain a '\\data\\' header", read(""));
  a.runtime(ra, input::truncated, "the text without its last 20 bytes", ra, "line",
            read(arpa_text.substr(0, arpa_text.size() - 20)));
  a.runtime(ra, input::truncated, "the header alone", ra, "truncated", read("\\data\\\nngram 1=4\n"));
  a.runtime(ra, input::nan, "a probability 'nan'", ra, "must not be NaN", [] {
    std::string t = arpa_text;
    t.replace(t.find("-0.4\ta"), 4, "nan");
    std::istringstream in(t);
    (void)tsmc::ngram_model::read_arpa(in);
  });
  a.runtime(ra, input::pos_inf, "a probability 'inf'", ra, "line", [] {
    std::string t = arpa_text;
    t.replace(t.find("-0.4\ta"), 4, "inf");
    std::istringstream in(t);
    (void)tsmc::ngram_model::read_arpa(in);
  });
  a.runtime(ra, input::too_large, "a log10 probability 0.5 > 0", ra, "line", [] {
    std::string t = arpa_text;
    t.replace(t.find("-0.4\ta"), 4, "0.5");
    std::istringstream in(t);
    (void)tsmc::ngram_model::read_arpa(in);
  });
  a.runtime(ra, input::zero, "'ngram 1=0'", ra, "the number of 1-grams must be positive", read("\\data\\\nngram 1=0\n"));
  a.runtime(ra, input::negative, "'ngram 1=-4'", ra, "a count line must read", read("\\data\\\nngram 1=-4\n"));
  a.runtime(ra, input::wrong_file, "a classifier file as ARPA", ra, "'\\data\\' header",
            read("tsmc-bow-classifier 2\nclasses 2 vocab 2\n"));
  a.runtime("ngram_model::load_arpa", input::wrong_file, "a missing file", "ngram_model::load_arpa",
            "path must name a readable file", [] { (void)tsmc::ngram_model::load_arpa(bad_input::scratch("no.arpa").string()); });
  a.runtime("ngram_model::save_arpa", input::wrong_file, "a path in a missing directory", "ngram_model::save_arpa",
            "path must name a file in an existing, writable directory",
            [] { arpa_model().save_arpa((bad_input::scratch("missing_dir") / "m.arpa").string()); });
  const auto ngram = [] {
    auto m = arpa_model();
    m.start(token_sequence{1}, 2);
    return m;
  };
  a.invalid("ngram_model::start", input::zero, "particles = 0", "ngram_model::start", "particles must be positive, got 0",
            [] { arpa_model().start(token_sequence{1}, 0); });
  a.invalid("ngram_model::start", input::too_large, "prompt = {4}, V = 4", "ngram_model::start",
            "prompt[0] must be in [0, 4), got 4", [] { arpa_model().start(token_sequence{4}, 2); });
  a.invalid("ngram_model::log_probs", input::mismatched, "out 2 x 5 for V = 4", "ngram_model::log_probs",
            "out.cols() must equal vocab_size 4, got 5", [ngram] {
              auto m = ngram();
              tsmc::log_prob_matrix out(2, 5);
              m.log_probs(out);
            });
  a.invalid("ngram_model::log_probs", input::mismatched, "3 active flags for K = 2", "ngram_model::log_probs",
            "active.size() must equal the number of particles 2, got 3", [ngram] {
              auto m = ngram();
              tsmc::log_prob_matrix out(2, 4);
              const std::vector<std::uint8_t> active{1, 1, 1};
              m.log_probs(out, active);
            });
  a.invalid("ngram_model::append", input::mismatched, "1 token for K = 2", "ngram_model::append",
            "tokens.size() must equal the number of particles 2, got 1", [ngram] {
              auto m = ngram();
              m.append(token_sequence{3});
            });
  a.invalid("ngram_model::append", input::negative, "tokens = {3, -1}", "ngram_model::append",
            "tokens[1] must be in [0, 4), got -1", [ngram] {
              auto m = ngram();
              m.append(token_sequence{3, -1});
            });
  a.invalid("ngram_model::reorder", input::too_large, "ancestors = {0, 2} for K = 2", "ngram_model::reorder",
            "ancestors[1] must be < 2, got 2", [ngram] {
              auto m = ngram();
              const std::vector<tsmc::particle_index> anc{0, 2};
              m.reorder(anc);
            });
  a.invalid("ngram_model::next_log_probs", input::mismatched, "out.size() = 3 for V = 4", "ngram_model::next_log_probs",
            "out.size() must equal vocab_size 4, got 3", [] {
              std::vector<double> out(3);
              arpa_model().next_log_probs(token_sequence{1}, token_sequence{}, out);
            });
  a.invalid("ngram_model::next_log_probs", input::too_large, "prefix = {9}", "ngram_model::next_log_probs",
            "prefix[0] must be in [0, 4), got 9", [] {
              std::vector<double> out(4);
              arpa_model().next_log_probs(token_sequence{1}, token_sequence{9}, out);
            });
  a.invalid("ngram_model::log_prob", input::too_large, "w = 4, V = 4", "ngram_model::log_prob", "w[0] must be in [0, 4), got 4",
            [] { (void)arpa_model().log_prob(token_sequence{1}, 4); });
  a.invalid("ngram_model::log_prob", input::negative, "history = {-1}", "ngram_model::log_prob",
            "history[0] must be in [0, 4), got -1", [] { (void)arpa_model().log_prob(token_sequence{-1}, 3); });
  a.invalid("ngram_model::sentence_log_prob", input::too_large, "sentence = {3, 8}", "ngram_model::sentence_log_prob",
            "sentence[1] must be in [0, 4), got 8", [] { (void)arpa_model().sentence_log_prob(token_sequence{3, 8}); });
  a.invalid("ngram_model::perplexity", input::empty, "sentences = {}", "ngram_model::perplexity",
            "sentences.size() must be positive, got 0",
            [] { (void)arpa_model().perplexity(std::span<const token_sequence>()); });
  a.runtime("load_text_corpus", input::wrong_file, "a missing file", "load_text_corpus", "path must name a readable file",
            [] { (void)tsmc::load_text_corpus(bad_input::scratch("no_corpus.txt").string()); });
  a.result("read_text_corpus", input::empty, "an empty stream", "no sentences", [] {
    std::istringstream in("");
    return tsmc::read_text_corpus(in).empty();
  });
});

}  // namespace
