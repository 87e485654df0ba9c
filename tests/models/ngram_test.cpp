// The n-gram model: Kneser-Ney discounts and probabilities computed by hand on a tiny corpus,
// rows normalised over the whole vocabulary, ARPA write-then-read identical, held-out perplexity
// against a unigram and an add-one bigram model, batched rows equal single queries, reorder,
// features, a KenLM-style file renormalised, and malformed ARPA files rejected with line numbers.
#include <catch2/catch.hpp>

#include <tsmc/core/concepts.hpp>
#include <tsmc/core/error.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/corpus/story_grammar.hpp>
#include <tsmc/models/ngram.hpp>
#include <tsmc/models/word_tokenizer.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

using namespace tsmc;

namespace {

/// The message of the exception f throws ("" if none).
template <class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

/// The tiny hand corpus: "a b", "a", "b a b" over the words a (id 3) and b (id 4).
struct tiny_corpus {
  word_tokenizer vocabulary{std::vector<std::string>{"a", "b"}};
  std::vector<token_sequence> sentences{{3, 4}, {3}, {4, 3, 4}};
};

constexpr token unk = word_tokenizer::unknown_token, bos = word_tokenizer::start_token,
                eos = word_tokenizer::end_token, a = 3, b = 4;

/// The built-in corpus, tokenised: a training part and a held-out part.
struct story_data {
  word_tokenizer vocabulary;
  std::vector<token_sequence> train, held_out;
  story_data(std::size_t n_train, std::size_t n_held_out) {
    const story_grammar grammar;
    std::vector<std::string> texts;
    for (const labelled_sentence& s : grammar.generate(n_train, 11)) texts.push_back(s.text);
    vocabulary = word_tokenizer(std::span<const std::string>(grammar.words()));
    for (const std::string& t : texts) train.push_back(vocabulary.encode(t));
    for (const labelled_sentence& s : grammar.generate(n_held_out, 12)) held_out.push_back(vocabulary.encode(s.text));
  }
};

/// Drives the model through random continuations and checks every row it emits.
void check_rows_along_runs(ngram_model& model, std::size_t particles, std::size_t steps, std::uint64_t seed) {
  const std::size_t V = model.vocab_size();
  default_engine rng(seed);
  model.start({}, particles);
  log_prob_matrix out(static_cast<Eigen::Index>(particles), static_cast<Eigen::Index>(V));
  std::vector<token> next(particles);
  for (std::size_t t = 0; t < steps; ++t) {
    model.log_probs(out);
    for (std::size_t k = 0; k < particles; ++k) {
      const auto row = out.row(static_cast<Eigen::Index>(k));
      REQUIRE(std::abs(row.array().exp().sum() - 1.0) < 1e-12);
      REQUIRE(row(bos) == neg_inf);
      REQUIRE(row.maxCoeff() <= 0.0);
      // Draw the next token from the row (inversion).
      const double u = uniform01(rng);
      double c = 0.0;
      next[k] = eos;
      for (Eigen::Index v = 0; v < row.size(); ++v) {
        c += std::exp(row(v));
        if (u < c) {
          next[k] = static_cast<token>(v);
          break;
        }
      }
    }
    model.append(next);
  }
}

}  // namespace

TEST_CASE("ngram_model is a LanguageModel with features", "[world]") {
  STATIC_REQUIRE(LanguageModel<ngram_model>);
  STATIC_REQUIRE(ModelWithFeatures<ngram_model>);
}

TEST_CASE("kneser_ney_discounts_from: Chen and Goodman's formula and its fallback", "[world]") {
  // t = (10, 4, 2, 1): Y = 10 / 18; D1 = 1 - 2 Y 4/10 = 5/9; D2 = 2 - 3 Y 2/4 = 7/6; D3 = 3 - 4 Y 1/2 = 17/9.
  const kneser_ney_discounts d = kneser_ney_discounts_from({10, 4, 2, 1});
  REQUIRE(d.from_counts);
  REQUIRE(d.d1 == Approx(5.0 / 9.0).epsilon(1e-14));
  REQUIRE(d.d2 == Approx(7.0 / 6.0).epsilon(1e-14));
  REQUIRE(d.d3 == Approx(17.0 / 9.0).epsilon(1e-14));
  // A zero count-of-count: Y for all three.
  const kneser_ney_discounts f = kneser_ney_discounts_from({3, 3, 0, 0});
  REQUIRE_FALSE(f.from_counts);
  REQUIRE(f.d1 == Approx(1.0 / 3.0).epsilon(1e-14));
  REQUIRE(f.d3 == f.d1);
  REQUIRE(kneser_ney_discounts_from({0, 3, 1, 1}).d2 == 0.5);
}

TEST_CASE("Kneser-Ney on a tiny corpus gives the probabilities computed by hand", "[world]") {
  const tiny_corpus c;
  SECTION("order 2") {
    // Bigram counts: <s> a 2, <s> b 1, a b 2, a </s> 1, b </s> 2, b a 1; t1 = 3, t2 = 3, t3 = 0:
    // D = Y = 3 / 9 = 1/3. Unigram continuation counts a = b = </s> = 2 (t1 = 0: D = 1/2), total
    // 6, gamma = 1.5 / 6 = 1/4, uniform 1/4 over {<unk>, </s>, a, b}: p1(a) = 1.5/6 + 1/16 = 5/16,
    // p1(<unk>) = 1/16. Every bigram context has total 3 and gamma = (2/3) / 3 = 2/9:
    // p(a | <s>) = (5/3)/3 + (2/9)(5/16) = 5/8, p(b | <s>) = (2/3)/3 + 5/72 = 7/24,
    // p(</s> | <s>) = 5/72, p(<unk> | <s>) = 1/72.
    ngram_model m = ngram_model::train_kneser_ney(c.vocabulary, c.sentences, {.order = 2});
    REQUIRE(m.discounts()[0].d1 == 0.5);
    REQUIRE(m.discounts()[1].d1 == Approx(1.0 / 3.0).epsilon(1e-14));
    const token_sequence none;
    REQUIRE(m.log_prob(none, a) == Approx(std::log(5.0 / 8.0)).epsilon(1e-13));
    REQUIRE(m.log_prob(none, b) == Approx(std::log(7.0 / 24.0)).epsilon(1e-13));
    REQUIRE(m.log_prob(none, eos) == Approx(std::log(5.0 / 72.0)).epsilon(1e-13));
    REQUIRE(m.log_prob(none, unk) == Approx(std::log(1.0 / 72.0)).epsilon(1e-13));
    REQUIRE(m.log_prob(none, bos) == neg_inf);
    // After a: p(b | a) = 5/8, p(</s> | a) = 7/24, p(a | a) = 5/72; after b symmetrically.
    REQUIRE(m.log_prob(token_sequence{a}, b) == Approx(std::log(5.0 / 8.0)).epsilon(1e-13));
    REQUIRE(m.log_prob(token_sequence{a}, eos) == Approx(std::log(7.0 / 24.0)).epsilon(1e-13));
    REQUIRE(m.log_prob(token_sequence{a}, a) == Approx(std::log(5.0 / 72.0)).epsilon(1e-13));
    REQUIRE(m.log_prob(token_sequence{b}, eos) == Approx(std::log(5.0 / 8.0)).epsilon(1e-13));
    REQUIRE(m.log_prob(token_sequence{b}, a) == Approx(std::log(7.0 / 24.0)).epsilon(1e-13));
    // The ARPA file lists the interpolated probabilities and bow = gamma.
    std::ostringstream arpa;
    m.write_arpa(arpa);
    const std::string text = arpa.str();
    REQUIRE(text.find("ngram 1=5\nngram 2=6\n") != std::string::npos);
    REQUIRE(text.find("\t<s>\t" + detail::format_double(std::log10(2.0 / 9.0)) + "\n") != std::string::npos);
  }
  SECTION("order 3: adjusted counts in the middle order") {
    // Trigrams: <s> a b 1, a b </s> 2, <s> a </s> 1, <s> b a 1, b a b 1: t1 = 4, t2 = 1, t3 = 0:
    // D3 = Y = 4/6 = 2/3. Bigrams: those starting with <s> keep their counts (<s> a 2, <s> b 1),
    // the others count distinct left words: a b 2 (<s>, b), b </s> 1, a </s> 1, b a 1; t1 = 4,
    // t2 = 2, t3 = 0: D2 = 4/8 = 1/2. Unigrams as for order 2 (D1 = 1/2).
    // Context a: total 3, gamma = 1/3: p2(b | a) = 1.5/3 + (1/3)(5/16) = 29/48,
    // p2(</s> | a) = 0.5/3 + 5/48 = 13/48, p2(a | a) = 5/48.
    // Context <s> a: b 1, </s> 1, total 2, gamma = (4/3)/2 = 2/3:
    // p(b | <s> a) = (1/3)/2 + (2/3)(29/48) = 41/72, p(</s> | <s> a) = 1/6 + (2/3)(13/48) = 25/72,
    // p(a | <s> a) = (2/3)(5/48) = 5/72, p(<unk> | <s> a) = (2/3)(1/3)(1/16) = 1/72.
    ngram_model m = ngram_model::train_kneser_ney(c.vocabulary, c.sentences, {.order = 3});
    REQUIRE(m.discounts()[2].d1 == Approx(2.0 / 3.0).epsilon(1e-14));
    REQUIRE(m.discounts()[1].d1 == Approx(0.5).epsilon(1e-14));
    const token_sequence h{a};
    REQUIRE(m.log_prob(h, b) == Approx(std::log(41.0 / 72.0)).epsilon(1e-13));
    REQUIRE(m.log_prob(h, eos) == Approx(std::log(25.0 / 72.0)).epsilon(1e-13));
    REQUIRE(m.log_prob(h, a) == Approx(std::log(5.0 / 72.0)).epsilon(1e-13));
    REQUIRE(m.log_prob(h, unk) == Approx(std::log(1.0 / 72.0)).epsilon(1e-13));
    // The same through the batched interface.
    m.start(h, 2);
    log_prob_matrix out(2, 5);
    m.log_probs(out);
    REQUIRE(out(1, b) == Approx(std::log(41.0 / 72.0)).epsilon(1e-13));
    REQUIRE(out(0, unk) == Approx(std::log(1.0 / 72.0)).epsilon(1e-13));
  }
}

TEST_CASE("every row sums to 1 over the whole vocabulary, orders 2 to 5", "[world]") {
  const story_data data(1500, 1);
  for (std::size_t order = 2; order <= 5; ++order) {
    ngram_model m = ngram_model::train_kneser_ney(data.vocabulary, data.train, {.order = order});
    check_rows_along_runs(m, 32, 25, 100 + order);
  }
}

TEST_CASE("an ARPA file written then read gives identical probabilities", "[world]") {
  const story_data data(1500, 200);
  for (std::size_t order = 2; order <= 5; ++order) {
    const ngram_model m = ngram_model::train_kneser_ney(data.vocabulary, data.train, {.order = order});
    std::stringstream file;
    m.write_arpa(file);
    const std::string text = file.str();
    const ngram_model r = ngram_model::read_arpa(file);
    REQUIRE(r.order() == order);
    REQUIRE(r.vocabulary() == m.vocabulary());
    for (std::size_t n = 1; n <= order; ++n) REQUIRE(r.ngram_count(n) == m.ngram_count(n));
    std::vector<double> x(m.vocab_size()), y(m.vocab_size());
    for (const token_sequence& s : data.held_out)
      for (std::size_t t = 0; t <= s.size(); ++t) {
        const std::span<const token> prefix(s.data(), t);
        m.next_log_probs({}, prefix, x);
        r.next_log_probs({}, prefix, y);
        REQUIRE(x == y);  // bit for bit
      }
    // Writing the read model gives the same file; so does a round trip through a file on disk.
    std::ostringstream again;
    r.write_arpa(again);
    REQUIRE(again.str() == text);
    if (order == 3) {
      const std::string path = (std::filesystem::temp_directory_path() / "tsmc_ngram_test.arpa").string();
      m.save_arpa(path);
      const ngram_model from_disk = ngram_model::load_arpa(path);
      std::ostringstream third;
      from_disk.write_arpa(third);
      REQUIRE(third.str() == text);
      std::filesystem::remove(path);
    }
  }
}

TEST_CASE("held-out perplexity: Kneser-Ney below a unigram and an add-one bigram model", "[world]") {
  const story_data data(4000, 1000);
  const std::size_t V = data.vocabulary.vocab_size();
  // Unigram (add-one over the V - 1 predictable words) and add-one bigram maximum likelihood.
  std::vector<double> uni(V, 1.0);
  std::vector<std::vector<double>> bi(V, std::vector<double>(V, 1.0));
  for (auto& row : bi) row[bos] = 0.0;
  uni[bos] = 0.0;
  for (const token_sequence& s : data.train) {
    token prev = bos;
    for (std::size_t i = 0; i <= s.size(); ++i) {
      const token w = i < s.size() ? s[i] : eos;
      uni[static_cast<std::size_t>(w)] += 1.0;
      bi[static_cast<std::size_t>(prev)][static_cast<std::size_t>(w)] += 1.0;
      prev = w;
    }
  }
  double uni_total = 0.0;
  for (double x : uni) uni_total += x;
  std::vector<double> bi_total(V, 0.0);
  for (std::size_t h = 0; h < V; ++h)
    for (double x : bi[h]) bi_total[h] += x;
  double log_uni = 0.0, log_bi = 0.0;
  std::size_t tokens = 0;
  for (const token_sequence& s : data.held_out) {
    token prev = bos;
    for (std::size_t i = 0; i <= s.size(); ++i) {
      const token w = i < s.size() ? s[i] : eos;
      log_uni += std::log(uni[static_cast<std::size_t>(w)] / uni_total);
      log_bi += std::log(bi[static_cast<std::size_t>(prev)][static_cast<std::size_t>(w)] / bi_total[static_cast<std::size_t>(prev)]);
      prev = w;
      ++tokens;
    }
  }
  const double ppl_uni = std::exp(-log_uni / static_cast<double>(tokens));
  const double ppl_bi = std::exp(-log_bi / static_cast<double>(tokens));
  std::string report = "held-out perplexity (4000 training, 1000 held-out sentences): unigram " +
                       std::to_string(ppl_uni) + ", add-one bigram " + std::to_string(ppl_bi);
  for (std::size_t order = 2; order <= 5; ++order) {
    const ngram_model m = ngram_model::train_kneser_ney(data.vocabulary, data.train, {.order = order});
    const double ppl = m.perplexity(data.held_out);
    report += ", KN" + std::to_string(order) + " " + std::to_string(ppl);
    REQUIRE(ppl < ppl_uni);
    REQUIRE(ppl < ppl_bi);
  }
  WARN(report);
}

TEST_CASE("batched rows equal single queries through append and reorder", "[world]") {
  const story_data data(800, 40);
  ngram_model m = ngram_model::train_kneser_ney(data.vocabulary, data.train, {.order = 4});
  const std::size_t K = 8, V = m.vocab_size();
  const token_sequence prompt{data.vocabulary.id("the")};
  m.start(prompt, K);
  std::vector<token_sequence> prefixes(K);
  log_prob_matrix out(K, static_cast<Eigen::Index>(V));
  std::vector<double> single(V);
  default_engine rng(5);
  for (std::size_t t = 0; t < 12; ++t) {
    m.log_probs(out);
    for (std::size_t k = 0; k < K; ++k) {
      m.next_log_probs(prompt, prefixes[k], single);
      for (std::size_t v = 0; v < V; ++v) REQUIRE(out(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(v)) == single[v]);
      REQUIRE(m.contexts()[k] == m.context_of([&] {
        token_sequence h = prompt;
        h.insert(h.end(), prefixes[k].begin(), prefixes[k].end());
        return h;
      }()));
    }
    // Tokens from the held-out sentences (so contexts are long and listed), occasionally </s>.
    std::vector<token> next(K);
    for (std::size_t k = 0; k < K; ++k) {
      const token_sequence& s = data.held_out[(k * 7 + t) % data.held_out.size()];
      next[k] = uniform_index(rng, 10) == 0 ? eos : s[t % s.size()];
      prefixes[k].push_back(next[k]);
    }
    m.append(next);
    if (t % 3 == 2) {  // slot-stable ancestors: the odd slots take copies of even ones
      std::vector<particle_index> ancestors(K);
      for (std::size_t k = 0; k < K; ++k) ancestors[k] = static_cast<particle_index>(k % 2 == 0 ? k : k - 1);
      const feature_matrix before = m.features();
      m.reorder(ancestors);
      for (std::size_t k = 0; k < K; ++k) {
        prefixes[k] = prefixes[ancestors[k]];
        REQUIRE(m.features().row(static_cast<Eigen::Index>(k)) == before.row(static_cast<Eigen::Index>(ancestors[k])));
      }
    }
  }
  SECTION("log_probs(out, active) writes only the active rows") {
    log_prob_matrix partial = log_prob_matrix::Constant(K, static_cast<Eigen::Index>(V), 7.0);
    std::vector<std::uint8_t> active(K, 1);
    active[3] = 0;
    m.log_probs(partial, active);
    m.log_probs(out);
    REQUIRE((partial.row(3).array() == 7.0).all());
    REQUIRE(partial.row(2) == out.row(2));
  }
  SECTION("features: K x 16, finite, equal for equal contexts") {
    REQUIRE(m.features().rows() == static_cast<Eigen::Index>(K));
    REQUIRE(m.features().cols() == 16);
    for (std::size_t k = 0; k < K; ++k)
      for (std::size_t j = 0; j < K; ++j)
        if (m.contexts()[k] == m.contexts()[j]) REQUIRE(m.features().row(static_cast<Eigen::Index>(k)) == m.features().row(static_cast<Eigen::Index>(j)));
    REQUIRE(m.features().allFinite());
  }
  SECTION("bad input") {
    REQUIRE(message_of([&] { m.start(token_sequence{static_cast<token>(V)}, 2); }) ==
            "tsmc::ngram_model::start: prompt[0] must be in [0, " + std::to_string(V) + "), got " + std::to_string(V));
    m.start({}, 2);
    log_prob_matrix wrong(3, static_cast<Eigen::Index>(V));
    REQUIRE(message_of([&] { m.log_probs(wrong); }) ==
            "tsmc::ngram_model::log_probs: out.rows() must equal the number of particles 2, got 3");
    REQUIRE_THROWS_AS(m.append(token_sequence{1}), tsmc::invalid_argument);
    REQUIRE_THROWS_AS(m.reorder(std::vector<particle_index>{0, 2}), tsmc::invalid_argument);
    REQUIRE_THROWS_AS(ngram_model::train_kneser_ney(data.vocabulary, data.train, {.order = 6}), tsmc::invalid_argument);
    REQUIRE_THROWS_AS(ngram_model::train_kneser_ney(data.vocabulary, std::vector<token_sequence>{{3, bos}}, {.order = 2}),
                      tsmc::invalid_argument);
  }
}

namespace {

/// A small hand-written ARPA file in KenLM's style (values to a few digits; no <unk>).
const std::string small_arpa =
    "\\data\\\n"         // 1
    "ngram 1=4\n"        // 2
    "ngram 2=2\n"        // 3
    "\n"                 // 4
    "\\1-grams:\n"       // 5
    "-0.5\t</s>\n"       // 6
    "-99\t<s>\t-0.3\n"   // 7
    "-0.6\ta\t-0.2\n"    // 8
    "-0.7\tb\n"          // 9
    "\n"                 // 10
    "\\2-grams:\n"       // 11
    "-0.1\t<s> a\n"      // 12
    "-0.2\ta b\n"        // 13
    "\n"                 // 14
    "\\end\\\n";         // 15

/// small_arpa with line `number` (1-based) replaced by `text` (or removed when text is null).
std::string with_line(std::size_t number, const char* text) {
  std::istringstream in(small_arpa);
  std::string line, out;
  for (std::size_t i = 1; std::getline(in, line); ++i) {
    if (i == number) {
      if (text != nullptr) out += std::string(text) + "\n";
    } else {
      out += line + "\n";
    }
  }
  return out;
}

std::string read_error(const std::string& text) {
  std::istringstream in(text);
  return message_of([&] { (void)ngram_model::read_arpa(in); });
}

}  // namespace

TEST_CASE("a KenLM-style ARPA file: backoff probabilities, rows renormalised", "[world]") {
  std::istringstream in(small_arpa);
  ngram_model m = ngram_model::read_arpa(in);
  REQUIRE(m.order() == 2);
  REQUIRE(m.vocab_size() == 5);  // <unk>, <s>, </s>, a, b
  const token ma = m.vocabulary().id("a"), mb = m.vocabulary().id("b");
  // After a: b listed (10^-0.2); others back off with bow(a) = 10^-0.2: </s> 10^-0.5, a 10^-0.6,
  // <unk> and <s> 0. The row is divided by its sum.
  const double pb = std::pow(10.0, -0.2), bow = std::pow(10.0, -0.2);
  const double z = pb + bow * (std::pow(10.0, -0.5) + std::pow(10.0, -0.6));
  REQUIRE(m.log_prob(token_sequence{ma}, mb) == Approx(std::log(pb / z)).epsilon(1e-13));
  REQUIRE(m.log_prob(token_sequence{ma}, eos) == Approx(std::log(bow * std::pow(10.0, -0.5) / z)).epsilon(1e-13));
  REQUIRE(m.log_prob(token_sequence{ma}, unk) == neg_inf);
  // After b (not a context): the unigrams renormalised.
  const double zu = std::pow(10.0, -0.5) + std::pow(10.0, -0.6) + std::pow(10.0, -0.7);
  REQUIRE(m.log_prob(token_sequence{mb}, mb) == Approx(std::log(std::pow(10.0, -0.7) / zu)).epsilon(1e-13));
  check_rows_along_runs(m, 4, 10, 3);
}

TEST_CASE("malformed ARPA input: a tsmc::runtime_error naming the line", "[world]") {
  REQUIRE(read_error(small_arpa).empty());
  REQUIRE_THROWS_AS([] {
    std::istringstream in(with_line(3, "ngram 2=x"));
    (void)ngram_model::read_arpa(in);
  }(), tsmc::runtime_error);
  const auto starts = [](const std::string& text, const std::string& prefix) {
    INFO(text);
    return text.rfind(prefix, 0) == 0;
  };
  // Bad counts.
  REQUIRE(starts(read_error(with_line(3, "ngram 2=x")), "tsmc::ngram_model::read_arpa: line 3: a count line must read"));
  REQUIRE(starts(read_error(with_line(3, "ngram 2=-4")), "tsmc::ngram_model::read_arpa: line 3: a count line must read"));
  REQUIRE(starts(read_error(with_line(3, "ngram 3=2")), "tsmc::ngram_model::read_arpa: line 3: orders must be declared in sequence"));
  REQUIRE(starts(read_error(with_line(2, "ngram 1=0")), "tsmc::ngram_model::read_arpa: line 2: the number of 1-grams must be positive"));
  REQUIRE(starts(read_error(with_line(2, "ngram 1=5")),
                 "tsmc::ngram_model::read_arpa: line 10: truncated: section '\\1-grams:' declares 5 entries, found 4"));
  // Missing sections.
  REQUIRE(starts(read_error(""), "tsmc::ngram_model::read_arpa: line 1: the file must contain a '\\data\\' header"));
  REQUIRE(starts(read_error(with_line(1, "data")), "tsmc::ngram_model::read_arpa: line 16: the file must contain a '\\data\\' header"));
  REQUIRE(starts(read_error(with_line(11, nullptr)), "tsmc::ngram_model::read_arpa: line 11: expected the section '\\2-grams:'"));
  REQUIRE(starts(read_error(with_line(5, "\\2-grams:")), "tsmc::ngram_model::read_arpa: line 5: expected the section '\\1-grams:'"));
  // NaN, infinities, positive log-probabilities, bad numbers.
  REQUIRE(starts(read_error(with_line(8, "nan\ta\t-0.2")), "tsmc::ngram_model::read_arpa: line 8: the log10 probability must not be NaN"));
  REQUIRE(starts(read_error(with_line(8, "-0.6\ta\tnan")), "tsmc::ngram_model::read_arpa: line 8: the log10 backoff must be finite"));
  REQUIRE(starts(read_error(with_line(8, "inf\ta\t-0.2")), "tsmc::ngram_model::read_arpa: line 8: the log10 probability must be <= 0"));
  REQUIRE(starts(read_error(with_line(13, "0.2\ta b")), "tsmc::ngram_model::read_arpa: line 13: the log10 probability must be <= 0"));
  REQUIRE(starts(read_error(with_line(9, "-0.7x\tb")), "tsmc::ngram_model::read_arpa: line 9: the log10 probability must be a number"));
  // Unknown words in a higher order, <s> predicted, repeats, wrong field counts, no </s>.
  REQUIRE(starts(read_error(with_line(13, "-0.2\ta zzz")),
                 "tsmc::ngram_model::read_arpa: line 13: every word of a 2-gram must be listed in \\1-grams, unknown word 'zzz'"));
  REQUIRE(starts(read_error(with_line(13, "-0.2\ta <unk>")), "tsmc::ngram_model::read_arpa: line 13: every word of a 2-gram"));
  // <s> after the first word (IRSTLM writes "<s> <s>") is skipped, not an error: no query reaches it.
  REQUIRE(read_error(with_line(13, "-0.2\ta <s>")).empty());
  REQUIRE(starts(read_error(with_line(13, "-0.2\t<s> a")), "tsmc::ngram_model::read_arpa: line 13: an n-gram must not be repeated"));
  REQUIRE(starts(read_error(with_line(9, "-0.7\ta")), "tsmc::ngram_model::read_arpa: line 9: a 1-gram must not be repeated"));
  REQUIRE(starts(read_error(with_line(13, "-0.2\ta b -0.1")), "tsmc::ngram_model::read_arpa: line 13: an entry of '\\2-grams:' must have"));
  REQUIRE(starts(read_error(with_line(9, "-0.7")), "tsmc::ngram_model::read_arpa: line 9: an entry of '\\1-grams:' must have"));
  REQUIRE(starts(read_error(with_line(6, "-0.5\tc")), "tsmc::ngram_model::read_arpa: line 9: the section '\\1-grams:' must list </s>"));
  // Truncated files.
  REQUIRE(starts(read_error(with_line(15, nullptr)), "tsmc::ngram_model::read_arpa: line 15: truncated: the file must end with '\\end\\'"));
  REQUIRE(starts(read_error(small_arpa.substr(0, small_arpa.find("-0.2\ta b"))),
                 "tsmc::ngram_model::read_arpa: line 13: truncated: section '\\2-grams:' declares 2 entries, found 1"));
  REQUIRE(starts(read_error(small_arpa.substr(0, small_arpa.find("\\1-grams:"))),
                 "tsmc::ngram_model::read_arpa: line 5: truncated: expected the section '\\1-grams:'"));
  REQUIRE(starts(read_error("\\data\\\n"), "tsmc::ngram_model::read_arpa: line 2: truncated: the header must be followed by sections"));
  REQUIRE(starts(read_error(with_line(15, "\\3-grams:")), "tsmc::ngram_model::read_arpa: line 15: expected '\\end\\' after the last section"));
  // A file that does not exist.
  REQUIRE_THROWS_AS(ngram_model::load_arpa("/nonexistent/tsmc.arpa"), tsmc::runtime_error);
}

TEST_CASE("an ARPA n-gram whose context is not listed: the context is added with its backed-off probability", "[world]") {
  // "a b" listed at order 3 context: the 3-gram "b a b" needs the context "b a", which is absent.
  const std::string text =
      "\\data\\\nngram 1=4\nngram 2=1\nngram 3=1\n\n\\1-grams:\n-0.5\t</s>\n-99\t<s>\n-0.6\ta\t-0.1\n-0.7\tb\t-0.2\n\n"
      "\\2-grams:\n-0.3\ta b\t-0.05\n\n\\3-grams:\n-0.01\tb a b\n\n\\end\\\n";
  std::istringstream in(text);
  ngram_model m = ngram_model::read_arpa(in);
  REQUIRE(m.ngram_count(2) == 2);  // "a b" and the added "b a"
  const token ma = m.vocabulary().id("a"), mb = m.vocabulary().id("b");
  // p(b | b a) is listed: 10^-0.01 / Z; Z = 10^-0.01 + bow(b a) [= 1] * (p(w | a) for w != b).
  const double pab = std::pow(10.0, -0.3), bow_a = std::pow(10.0, -0.1);
  const double rest_after_a = bow_a * (std::pow(10.0, -0.5) + std::pow(10.0, -0.6));  // </s>, a
  const double z = std::pow(10.0, -0.01) + rest_after_a;
  REQUIRE(m.log_prob(token_sequence{mb, ma}, mb) == Approx(std::log(std::pow(10.0, -0.01) / z)).epsilon(1e-13));
  // After "a" alone: b listed at order 2.
  REQUIRE(m.log_prob(token_sequence{ma}, mb) == Approx(std::log(pab / (pab + rest_after_a))).epsilon(1e-13));
  check_rows_along_runs(m, 4, 10, 4);
}
