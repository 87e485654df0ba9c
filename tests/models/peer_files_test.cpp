// Files other tools write (issue 28): ARPA files with IRSTLM's, SRILM's and KenLM's quirks, a
// UTF-8 byte-order mark, a directory given as a file; cased vocabularies; the llama2.c loaders'
// messages for a file of the wrong kind or a tokenizer of another model.
#include <tsmc/models/llama2c_checkpoint.hpp>
#include <tsmc/models/llama2c_tokenizer.hpp>
#include <tsmc/models/ngram.hpp>
#include <tsmc/models/word_tokenizer.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace {

namespace fs = std::filesystem;
using Catch::Contains;

tsmc::ngram_model read(const std::string& text) {
  std::istringstream in(text);
  return tsmc::ngram_model::read_arpa(in);
}

std::string read_error(const std::string& text) {
  try {
    (void)read(text);
  } catch (const tsmc::runtime_error& e) {
    return e.what();
  }
  return "no error";
}

/// A bigram/trigram model as SRILM writes it (<s> at -99 with a bow).
const std::string srilm = R"(\data\
ngram 1=5
ngram 2=5
ngram 3=2

\1-grams:
-1.0	<unk>
-99	<s>	-0.30103
-0.60206	</s>
-0.69897	a	-0.2
-0.52288	b	-0.1

\2-grams:
-0.30103	<s> a	-0.05
-0.39794	<s> b
-0.22185	a b	-0.1
-0.47712	a </s>
-0.30103	b </s>

\3-grams:
-0.1	<s> a b
-0.2	a b </s>

\end\
)";

/// The same model with IRSTLM's additions: <s> with a probability of its own, "<s> <s>" n-grams.
std::string irstlm_flavour() {
  std::string t = srilm;
  t.replace(t.find("ngram 2=5"), 9, "ngram 2=6");
  t.replace(t.find("ngram 3=2"), 9, "ngram 3=4");
  t.replace(t.find("-99\t<s>"), 7, "-3.83\t<s>");
  t.replace(t.find("-0.30103\tb </s>"), 15, "-0.30103\tb </s>\n-2.8\t<s> <s>\t-0.87");
  t.replace(t.find("-0.2\ta b </s>"), 13, "-0.2\ta b </s>\n-0.22\t<s> <s> a\n-0.5\t<s> <s> b");
  return t;
}

std::vector<double> sentence_scores(const tsmc::ngram_model& m) {
  std::vector<double> out;
  for (const char* s : {"a b", "b a", "a", "b b a", "a b a b"}) out.push_back(m.sentence_log_prob(m.vocabulary().encode(s)));
  return out;
}

fs::path scratch(const std::string& name) {
  static std::atomic<int> counter{0};
  const fs::path dir = fs::temp_directory_path() /
                       ("tsmc_peer_files." + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1)));
  fs::create_directories(dir);
  return dir / name;
}

}  // namespace

TEST_CASE("peer files: an IRSTLM ARPA file loads; its <s> <s> n-grams are skipped and change nothing", "[models]") {
  const std::string irst = irstlm_flavour();
  REQUIRE(irst.find("<s> <s> a") != std::string::npos);
  const tsmc::ngram_model a = read(srilm);
  const tsmc::ngram_model b = read(irst);
  CHECK(a.vocabulary() == b.vocabulary());
  const auto sa = sentence_scores(a), sb = sentence_scores(b);
  for (std::size_t i = 0; i < sa.size(); ++i) CHECK(sb[i] == Approx(sa[i]).epsilon(1e-6));
  // IRSTLM's rounding of a probability of 1 (log10 2.98e-07) reads; a value well above 0 is
  // still an error.
  std::string rounded = srilm;
  rounded.replace(rounded.find("-0.2\ta b </s>"), 13, "2.98e-07\ta b </s>");
  CHECK_NOTHROW(read(rounded));
  std::string above = srilm;
  above.replace(above.find("-0.2\ta b </s>"), 13, "0.01\ta b </s>");
  CHECK_THAT(read_error(above), Contains("the log10 probability must be <= 0"));
}

TEST_CASE("peer files: a KenLM ARPA file (<s> at probability 0, <unk> first, bows of 0) loads", "[models]") {
  std::string kenlm = srilm;
  kenlm.replace(kenlm.find("-1.0\t<unk>"), 10, "-1.0\t<unk>\t0");
  kenlm.replace(kenlm.find("-99\t<s>"), 7, "0\t<s>");
  const auto sa = sentence_scores(read(srilm)), sk = sentence_scores(read(kenlm));
  for (std::size_t i = 0; i < sa.size(); ++i) CHECK(sk[i] == Approx(sa[i]).epsilon(1e-12));
}

TEST_CASE("peer files: a UTF-8 byte-order mark and CRLF line ends are read", "[models]") {
  std::string crlf;
  for (const char c : srilm) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  const auto plain = sentence_scores(read(srilm));
  CHECK(sentence_scores(read("\xEF\xBB\xBF" + srilm)) == plain);
  CHECK(sentence_scores(read("\xEF\xBB\xBF" + crlf)) == plain);
}

TEST_CASE("peer files: a directory given as an ARPA file has a message of its own", "[models]") {
  const fs::path dir = scratch("a_directory.arpa");
  fs::create_directories(dir);
  CHECK_THROWS_WITH(tsmc::ngram_model::load_arpa(dir.string()),
                    Contains("tsmc::ngram_model::load_arpa: path must name an ARPA file, not a directory"));
  fs::remove_all(dir.parent_path());
}

TEST_CASE("peer files: a cased vocabulary keeps the text's case; a lower-case one lower-cases", "[models]") {
  const std::vector<std::string> cased{"The", "the", "Tom", "cat", "."};
  const tsmc::word_tokenizer keep(cased);
  CHECK(keep.keeps_case());
  CHECK(keep.encode("The cat") == tsmc::token_sequence{*keep.find("The"), *keep.find("cat")});
  CHECK(keep.encode("the Tom .") == tsmc::token_sequence{*keep.find("the"), *keep.find("Tom"), *keep.find(".")});
  CHECK(keep.encode("THE")[0] == tsmc::word_tokenizer::unknown_token);
  const tsmc::word_tokenizer lower(std::vector<std::string>{"the", "cat"});
  CHECK_FALSE(lower.keeps_case());
  CHECK(lower.encode("The CAT") == tsmc::token_sequence{*lower.find("the"), *lower.find("cat")});
  const tsmc::word_tokenizer forced(cased, tsmc::word_case::lower);
  CHECK_FALSE(forced.keeps_case());
  CHECK(forced.encode("The")[0] == *forced.find("the"));
  const tsmc::word_tokenizer kept(std::vector<std::string>{"the"}, tsmc::word_case::keep);
  CHECK(kept.encode("The")[0] == tsmc::word_tokenizer::unknown_token);
}

TEST_CASE("peer files: find() says a word is unknown where id() gives <unk>; unknown_words lists them", "[models]") {
  const tsmc::word_tokenizer v(std::vector<std::string>{"the", "cat"});
  CHECK(v.find("cat") == std::optional<tsmc::token>(v.id("cat")));
  CHECK_FALSE(v.find("zebra").has_value());
  CHECK(v.id("zebra") == tsmc::word_tokenizer::unknown_token);
  CHECK(v.find("<unk>") == std::optional<tsmc::token>(tsmc::word_tokenizer::unknown_token));
  CHECK(v.unknown_words("The zebra and the yak, the zebra") ==
        std::vector<std::string>{"zebra", "and", "yak", ","});
}

TEST_CASE("peer files: a model of cased text keeps its case through save_arpa and load_arpa", "[models]") {
  const std::vector<std::string> corpus{"The cat sat .", "the cat ran .", "Tom saw the cat ."};
  const tsmc::word_tokenizer vocabulary(std::vector<std::string>{"The", "the", "cat", "sat", "ran", "Tom", "saw", "."});
  std::vector<tsmc::token_sequence> sentences;
  for (const std::string& s : corpus) sentences.push_back(vocabulary.encode(s));
  const auto model = tsmc::ngram_model::train_kneser_ney(vocabulary, std::span<const tsmc::token_sequence>(sentences),
                                                          {.order = 3});
  const fs::path file = scratch("cased.arpa");
  model.save_arpa(file.string());
  const auto loaded = tsmc::ngram_model::load_arpa(file.string());
  CHECK(loaded.vocabulary().keeps_case());
  const auto s = loaded.vocabulary().encode("The cat sat .");
  CHECK(std::count(s.begin(), s.end(), tsmc::word_tokenizer::unknown_token) == 0);
  CHECK(loaded.sentence_log_prob(s) == Approx(model.sentence_log_prob(vocabulary.encode("The cat sat ."))));
  fs::remove_all(file.parent_path());
}

TEST_CASE("peer files: a tokenizer or a text file given as a llama2.c checkpoint is named as such", "[models]") {
  const fs::path tok = scratch("tokenizer.bin");
  std::vector<std::string> pieces{"<unk>", "\n<s>\n", "\n</s>\n"};
  for (char c = 'a'; c <= 'z'; ++c) pieces.emplace_back(1, c);
  tsmc::llama2c::write_tokenizer(tok, pieces, std::vector<float>(pieces.size(), 0.0f));
  CHECK_THROWS_WITH(tsmc::llama2c::read_config(tok), Contains("does not look like a llama2.c checkpoint"));
  const fs::path text = tok.parent_path() / "story.txt";
  std::ofstream(text) << "Once upon a time there was a little model that read the wrong file.\n";
  CHECK_THROWS_WITH(tsmc::llama2c::read_config(text), Contains("does not look like a llama2.c checkpoint"));
  fs::remove_all(tok.parent_path());
}

TEST_CASE("peer files: a tokenizer of another size says how many tokens the file has and the model needs",
          "[models]") {
  const fs::path tok = scratch("tokenizer40.bin");
  std::vector<std::string> pieces{"<unk>", "\n<s>\n", "\n</s>\n"};
  for (int i = 3; i < 40; ++i) {
    std::string piece(1, 'p');  // appended, not "p" + string: GCC 12 warns (-Wrestrict) on that form
    piece += std::to_string(i);
    pieces.push_back(piece);
  }
  tsmc::llama2c::write_tokenizer(tok, pieces, std::vector<float>(pieces.size(), 0.0f));
  CHECK_THROWS_WITH(tsmc::llama2c::tokenizer(tok, 32000), Contains("the file has 40 tokens, the model needs 32000"));
  CHECK_THROWS_WITH(tsmc::llama2c::tokenizer(tok, 30), Contains("the file has 40 tokens or more, the model needs 30"));
  CHECK(tsmc::llama2c::tokenizer(tok, 40).vocab_size() == 40);
  fs::remove_all(tok.parent_path());
}
