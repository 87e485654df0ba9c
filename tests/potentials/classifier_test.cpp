// The bag-of-words classifier: held-out accuracy on the story corpus's labels, a finite-difference
// check of the training loss's gradient, rows normalised over classes, the next-token form equal
// to the sequence form, saving and loading exactly, malformed files rejected with line numbers.
#include <catch2/catch.hpp>

#include <tsmc/core/error.hpp>
#include <tsmc/core/log_math.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/corpus/story_grammar.hpp>
#include <tsmc/models/word_tokenizer.hpp>
#include <tsmc/potentials/classifier.hpp>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

using namespace tsmc;

namespace {

template <class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

/// Labelled story sentences, tokenised with the grammar's vocabulary.
struct labelled_data {
  word_tokenizer vocabulary;
  std::vector<token_sequence> sequences;
  std::vector<std::size_t> sentiment, rare;
  labelled_data(std::size_t n, std::uint64_t seed) {
    const story_grammar grammar;
    vocabulary = word_tokenizer(std::span<const std::string>(grammar.words()));
    for (const labelled_sentence& s : grammar.generate(n, seed)) {
      sequences.push_back(vocabulary.encode(s.text));
      sentiment.push_back(static_cast<std::size_t>(s.label));
      rare.push_back(s.rare ? 1 : 0);
    }
  }
};

}  // namespace

TEST_CASE("bag_of_words_classifier models NextTokenClassifier", "[world]") {
  STATIC_REQUIRE(Classifier<bag_of_words_classifier>);
  STATIC_REQUIRE(NextTokenClassifier<bag_of_words_classifier>);
  STATIC_REQUIRE_FALSE(Classifier<int>);
}

TEST_CASE("bag_of_words_classifier: held-out accuracy well above chance", "[world]") {
  const labelled_data train(3000, 31), test(1000, 32);
  const std::size_t V = train.vocabulary.vocab_size();
  const bag_of_words_options options{.ignored = {word_tokenizer::end_token}};
  const bag_of_words_classifier sentiment = bag_of_words_classifier::train(train.sequences, train.sentiment, 3, V, options);
  const double accuracy = sentiment.accuracy(test.sequences, test.sentiment);
  // Chance (the most frequent class) is below 0.4.
  REQUIRE(accuracy > 0.85);
  const bag_of_words_classifier rare = bag_of_words_classifier::train(train.sequences, train.rare, 2, V, options);
  const double rare_accuracy = rare.accuracy(test.sequences, test.rare);
  std::size_t rare_count = 0, rare_found = 0;
  for (std::size_t i = 0; i < test.sequences.size(); ++i)
    if (test.rare[i] == 1) {
      ++rare_count;
      rare_found += rare.predict(test.sequences[i]) == 1 ? 1 : 0;
    }
  REQUIRE(rare_accuracy > 0.98);
  REQUIRE(rare_count > 0);
  REQUIRE(rare_found * 2 >= rare_count);  // harmful words never seen in training cannot be recognised
  REQUIRE(sentiment.weights().col(word_tokenizer::end_token).isZero());
  WARN("held-out accuracy (3000 training, 1000 held-out sentences): sentiment " << accuracy << ", rare attribute "
                                                                               << rare_accuracy << " (recall "
                                                                               << rare_found << "/" << rare_count
                                                                               << ")");
}

TEST_CASE("bag_of_words_classifier: the training loss's gradient matches finite differences", "[world]") {
  const labelled_data data(40, 33);
  const std::size_t V = data.vocabulary.vocab_size();
  bag_of_words_classifier model(3, V);
  default_engine rng(9);
  Eigen::MatrixXd w(3, static_cast<Eigen::Index>(V));
  for (Eigen::Index i = 0; i < w.size(); ++i) w.data()[i] = 0.5 * standard_normal(rng);
  Eigen::VectorXd b(3);
  for (Eigen::Index i = 0; i < 3; ++i) b[i] = standard_normal(rng);
  model.set_parameters(w, b);
  const double l2 = 0.3;
  Eigen::MatrixXd gw;
  Eigen::VectorXd gb;
  (void)model.training_loss(data.sequences, data.sentiment, l2, &gw, &gb);
  const double h = 1e-5;
  const auto loss_at = [&](const Eigen::MatrixXd& ww, const Eigen::VectorXd& bb) {
    bag_of_words_classifier m(3, V);
    m.set_parameters(ww, bb);
    return m.training_loss(data.sequences, data.sentiment, l2);
  };
  // Every bias and the weights of every token that occurs (and a few that do not: l2 only).
  for (Eigen::Index c = 0; c < 3; ++c) {
    Eigen::VectorXd plus = b, minus = b;
    plus[c] += h;
    minus[c] -= h;
    const double numeric = (loss_at(w, plus) - loss_at(w, minus)) / (2 * h);
    REQUIRE(gb[c] == Approx(numeric).margin(1e-8));
  }
  for (Eigen::Index c = 0; c < 3; ++c)
    for (Eigen::Index v = 0; v < static_cast<Eigen::Index>(V); v += 7) {
      Eigen::MatrixXd plus = w, minus = w;
      plus(c, v) += h;
      minus(c, v) -= h;
      const double numeric = (loss_at(plus, b) - loss_at(minus, b)) / (2 * h);
      REQUIRE(gw(c, v) == Approx(numeric).margin(1e-8));
    }
}

TEST_CASE("bag_of_words_classifier: normalised over classes, next-token form equals the sequence form", "[world]") {
  const labelled_data data(400, 34);
  const std::size_t V = data.vocabulary.vocab_size();
  const bag_of_words_classifier model =
      bag_of_words_classifier::train(data.sequences, data.sentiment, 3, V, {.iterations = 40});
  const std::vector<token_sequence> prefixes{{}, data.sequences[0], token_sequence(data.sequences[1].begin(), data.sequences[1].begin() + 3)};
  log_prob_matrix rows(static_cast<Eigen::Index>(prefixes.size()), 3);
  model.log_class_probs(prefixes, rows);
  for (Eigen::Index k = 0; k < rows.rows(); ++k) REQUIRE(std::abs(logsumexp(rows.row(k))) < 1e-12);
  for (std::size_t cls = 0; cls < 3; ++cls) {
    log_prob_matrix next(static_cast<Eigen::Index>(prefixes.size()), static_cast<Eigen::Index>(V));
    model.log_class_prob_next(prefixes, cls, next);
    for (std::size_t k = 0; k < prefixes.size(); ++k)
      for (std::size_t v = 0; v < V; ++v) {
        token_sequence extended = prefixes[k];
        extended.push_back(static_cast<token>(v));
        REQUIRE(next(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(v)) ==
                model.log_class_probs(extended)[static_cast<Eigen::Index>(cls)]);
      }
  }
  REQUIRE_THROWS_AS(model.log_class_prob_next(prefixes, 3, rows), tsmc::invalid_argument);
  REQUIRE_THROWS_AS(model.scores(token_sequence{static_cast<token>(V)}), tsmc::invalid_argument);
}

TEST_CASE("bag_of_words_classifier: saved and loaded exactly; malformed files name the line", "[world]") {
  const labelled_data data(200, 35);
  const std::size_t V = data.vocabulary.vocab_size();
  const bag_of_words_classifier model =
      bag_of_words_classifier::train(data.sequences, data.rare, 2, V, {.iterations = 20});
  std::stringstream file;
  model.write(file);
  const std::string text = file.str();
  const bag_of_words_classifier loaded = bag_of_words_classifier::read(file);
  REQUIRE(loaded.weights() == model.weights());
  REQUIRE(loaded.bias() == model.bias());
  const auto read_error = [](const std::string& t) {
    std::istringstream in(t);
    return message_of([&] { (void)bag_of_words_classifier::read(in); });
  };
  REQUIRE(read_error("tsmc-bow-classifier 3\n").rfind("tsmc::bag_of_words_classifier::read: line 1: the first line", 0) == 0);
  REQUIRE(read_error("tsmc-bow-classifier 1\nclasses 1 vocab 3\n").rfind("tsmc::bag_of_words_classifier::read: line 2:", 0) == 0);
  REQUIRE(read_error("tsmc-bow-classifier 1\nclasses 2 vocab 2\nbias 0 nan\n")
              .rfind("tsmc::bag_of_words_classifier::read: line 3: every parameter must be a finite number", 0) == 0);
  REQUIRE(read_error("tsmc-bow-classifier 1\nclasses 2 vocab 2\nbias 0 1\n1 2\n")
              .rfind("tsmc::bag_of_words_classifier::read: line 5: truncated", 0) == 0);
  // The same lines as format version 1 (no checksum line) still load, and a cut line is named.
  std::string v1 = text.substr(0, text.rfind("checksum "));
  v1.replace(0, std::string("tsmc-bow-classifier 2").size(), "tsmc-bow-classifier 1");
  std::istringstream v1_in(v1);
  REQUIRE(bag_of_words_classifier::read(v1_in).weights() == model.weights());
  REQUIRE(read_error(v1.substr(0, v1.rfind(' '))).rfind(
              "tsmc::bag_of_words_classifier::read: line 5: expected " + std::to_string(V) + " numbers", 0) == 0);
  REQUIRE_THROWS_AS(bag_of_words_classifier::load("/nonexistent/tsmc.bow"), tsmc::runtime_error);
  REQUIRE_THROWS_AS(bag_of_words_classifier::train(data.sequences, data.rare, 2, V, {.iterations = 0}), tsmc::invalid_argument);
  std::vector<std::size_t> bad = data.rare;
  bad[3] = 2;
  REQUIRE_THROWS_AS(bag_of_words_classifier::train(data.sequences, bad, 2, V), tsmc::invalid_argument);
}
