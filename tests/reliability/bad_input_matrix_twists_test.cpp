// [reliability] Bad-input matrix rows of the potentials, twists and testing layers: the
// bag-of-words classifier and its files, task potentials, tabular / MLP / sigmoid twists and
// their featurizers, and the toy models, potentials and enumeration (see bad_input_matrix.hpp).

#include "reliability/bad_input_matrix.hpp"

#include <tsmc/core/checksum.hpp>
#include <tsmc/potentials/classifier.hpp>
#include <tsmc/potentials/task_potentials.hpp>
#include <tsmc/testing/enumeration.hpp>
#include <tsmc/testing/proposal_kl.hpp>
#include <tsmc/testing/toy_model.hpp>
#include <tsmc/testing/toy_potentials.hpp>
#include <tsmc/twists/features.hpp>
#include <tsmc/twists/mlp_twist.hpp>
#include <tsmc/twists/no_twist.hpp>
#include <tsmc/twists/sigmoid_twist.hpp>
#include <tsmc/twists/tabular_twist.hpp>
#include <tsmc/smc/sampler.hpp>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

namespace {

using bad_input::input;
using namespace tsmc;
using testing::tabular_model;
constexpr double nan = std::numeric_limits<double>::quiet_NaN();
constexpr double inf = std::numeric_limits<double>::infinity();

// A classifier over 2 classes and 4 tokens.
bag_of_words_classifier classifier() {
  bag_of_words_classifier c(2, 4);
  Eigen::MatrixXd w(2, 4);
  w << 0.5, -0.5, 1.0, 0.0, -0.5, 0.5, -1.0, 0.0;
  c.set_parameters(w, Eigen::Vector2d(0.1, -0.1));
  return c;
}

std::string classifier_text() {
  std::ostringstream out;
  classifier().write(out);
  return out.str();
}

// The same classifier in format version 1 (no checksum line).
std::string classifier_text_v1() {
  std::string t = classifier_text();
  t = t.substr(0, t.rfind("checksum "));
  return t.replace(0, std::string("tsmc-bow-classifier 2").size(), "tsmc-bow-classifier 1");
}

// Format version 2 text of a payload, with its checksum.
std::string with_checksum(const std::string& payload) {
  return payload + "checksum " + detail::checksum_hex(detail::fnv1a64(payload)) + "\n";
}

// score(s) = |s|, NaN for the empty sequence.
struct length_score {
  [[nodiscard]] double score(std::span<const token> s) const { return s.empty() ? nan : static_cast<double>(s.size()); }
};

const bad_input::area potentials_rows("potentials", [](bad_input::area& a) {
  const std::string ctor = "bag_of_words_classifier::bag_of_words_classifier";
  a.invalid(ctor, input::too_large, "classes = 1 (< 2)", ctor, "classes must be at least 2, got 1",
            [] { bag_of_words_classifier c(1, 4); });
  a.invalid(ctor, input::zero, "classes = 0", ctor, "classes must be at least 2, got 0", [] { bag_of_words_classifier c(0, 4); });
  a.invalid(ctor, input::zero, "vocab = 0", ctor, "vocab must be positive, got 0", [] { bag_of_words_classifier c(2, 0); });
  const std::string sp = "bag_of_words_classifier::set_parameters";
  a.invalid(sp, input::mismatched, "weights 3 x 4 for 2 classes", sp, "weights.rows() must equal num_classes() 2, got 3", [] {
    classifier().set_parameters(Eigen::MatrixXd::Zero(3, 4), Eigen::VectorXd::Zero(2));
  });
  a.invalid(sp, input::mismatched, "weights 2 x 5 for V = 4", sp, "weights.cols() must equal vocab_size() 4, got 5", [] {
    classifier().set_parameters(Eigen::MatrixXd::Zero(2, 5), Eigen::VectorXd::Zero(2));
  });
  a.invalid(sp, input::mismatched, "bias of 3 for 2 classes", sp, "bias.size() must equal num_classes() 2, got 3", [] {
    classifier().set_parameters(Eigen::MatrixXd::Zero(2, 4), Eigen::VectorXd::Zero(3));
  });
  a.invalid(sp, input::nan, "weights(1, 2) = NaN", sp, "weights(1, 2) must be finite, got nan", [] {
    Eigen::MatrixXd w = Eigen::MatrixXd::Zero(2, 4);
    w(1, 2) = nan;
    classifier().set_parameters(w, Eigen::VectorXd::Zero(2));
  });
  a.invalid(sp, input::pos_inf, "bias[0] = +inf", sp, "bias[0] must be finite, got inf", [] {
    classifier().set_parameters(Eigen::MatrixXd::Zero(2, 4), Eigen::Vector2d(inf, 0.0));
  });
  a.invalid(sp, input::neg_inf, "weights(0, 0) = -inf", sp, "weights(0, 0) must be finite, got -inf", [] {
    Eigen::MatrixXd w = Eigen::MatrixXd::Zero(2, 4);
    w(0, 0) = -inf;
    classifier().set_parameters(w, Eigen::VectorXd::Zero(2));
  });
  a.invalid("bag_of_words_classifier::scores", input::too_large, "sequence = {1, 4}, V = 4",
            "bag_of_words_classifier::scores", "sequence[1] must be in [0, 4), got 4",
            [] { (void)classifier().scores(token_sequence{1, 4}); });
  a.invalid("bag_of_words_classifier::log_class_probs(sequence)", input::negative, "sequence = {-1}",
            "bag_of_words_classifier::log_class_probs", "sequence[0] must be in [0, 4), got -1",
            [] { (void)classifier().log_class_probs(token_sequence{-1}); });
  a.invalid("bag_of_words_classifier::log_class_probs(batch)", input::mismatched, "out 2 x 3 for 2 classes",
            "bag_of_words_classifier::log_class_probs", "out.cols() must equal num_classes() 2, got 3", [] {
              const std::vector<token_sequence> s{{0}, {1}};
              log_prob_matrix out(2, 3);
              classifier().log_class_probs(s, out);
            });
  a.invalid("bag_of_words_classifier::log_class_probs(batch)", input::too_large, "sequences[1] = {0, 9}",
            "bag_of_words_classifier::log_class_probs", "sequences[1][1] must be in [0, 4), got 9", [] {
              const std::vector<token_sequence> s{{0}, {0, 9}};
              log_prob_matrix out(2, 2);
              classifier().log_class_probs(s, out);
            });
  const std::string nx = "bag_of_words_classifier::log_class_prob_next";
  a.invalid(nx, input::too_large, "cls = 2 of 2 classes", nx, "cls must be < num_classes() 2, got 2", [] {
    const std::vector<token_sequence> s{{0}};
    log_prob_matrix out(1, 4);
    classifier().log_class_prob_next(s, 2, out);
  });
  a.invalid(nx, input::mismatched, "out 1 x 3 for V = 4", nx, "out.cols() must equal vocab_size() 4, got 3", [] {
    const std::vector<token_sequence> s{{0}};
    log_prob_matrix out(1, 3);
    classifier().log_class_prob_next(s, 0, out);
  });
  a.invalid(nx, input::too_large, "prefixes[0] = {7}", nx, "prefixes[0][0] must be in [0, 4), got 7", [] {
    const std::vector<token_sequence> s{{7}};
    log_prob_matrix out(1, 4);
    classifier().log_class_prob_next(s, 0, out);
  });
  a.invalid("bag_of_words_classifier::predict", input::too_large, "sequence = {4}", "bag_of_words_classifier::predict",
            "sequence[0] must be in [0, 4), got 4", [] { (void)classifier().predict(token_sequence{4}); });
  const std::string ac = "bag_of_words_classifier::accuracy";
  a.invalid(ac, input::mismatched, "2 sequences, 1 label", ac, "labels.size() must equal sequences.size() 2, got 1", [] {
    const std::vector<token_sequence> s{{0}, {1}};
    const std::vector<std::size_t> y{0};
    (void)classifier().accuracy(s, y);
  });
  a.invalid(ac, input::empty, "no sequences", ac, "sequences.size() must be positive, got 0",
            [] { (void)classifier().accuracy({}, {}); });
  a.invalid(ac, input::too_large, "sequences[0] = {5}", ac, "sequences[0][0] must be in [0, 4), got 5", [] {
    const std::vector<token_sequence> s{{5}};
    const std::vector<std::size_t> y{0};
    (void)classifier().accuracy(s, y);
  });
  const std::string tl = "bag_of_words_classifier::training_loss";
  const auto loss = [](double l2, std::vector<std::size_t> labels = {0, 1}) {
    return [l2, labels] {
      const std::vector<token_sequence> s{{0, 1}, {2}};
      (void)classifier().training_loss(s, labels, l2);
    };
  };
  a.invalid(tl, input::nan, "l2 = NaN", tl, "l2 must be >= 0 and finite, got nan", loss(nan));
  a.invalid(tl, input::negative, "l2 = -1", tl, "l2 must be >= 0 and finite, got -1", loss(-1.0));
  a.invalid(tl, input::pos_inf, "l2 = +inf", tl, "l2 must be >= 0 and finite, got inf", loss(inf));
  a.invalid(tl, input::too_large, "labels[1] = 2 of 2 classes", tl, "labels[1] must be < the number of classes 2, got 2",
            loss(0.0, {0, 2}));
  a.invalid(tl, input::mismatched, "2 sequences, 3 labels", tl, "labels.size() must equal sequences.size() 2, got 3",
            loss(0.0, {0, 1, 1}));
  a.invalid(tl, input::empty, "no sequences", tl, "sequences.size() must be positive, got 0",
            [] { (void)classifier().training_loss({}, {}, 0.0); });
  const std::string tr = "bag_of_words_classifier::train";
  const auto train = [](bag_of_words_options o, std::size_t classes = 2) {
    return [o, classes] {
      const std::vector<token_sequence> s{{0, 1}, {2}};
      const std::vector<std::size_t> y{0, 1};
      (void)bag_of_words_classifier::train(s, y, classes, 4, o);
    };
  };
  a.invalid(tr, input::zero, "options.iterations = 0", tr, "options.iterations must be positive, got 0",
            train(bag_of_words_options{.iterations = 0}));
  a.invalid(tr, input::zero, "options.learning_rate = 0", tr, "options.learning_rate must be positive and finite, got 0",
            train(bag_of_words_options{.learning_rate = 0.0}));
  a.invalid(tr, input::nan, "options.learning_rate = NaN", tr, "options.learning_rate must be positive and finite, got nan",
            train(bag_of_words_options{.learning_rate = nan}));
  a.invalid(tr, input::nan, "options.l2 = NaN", tr, "options.l2 must be >= 0 and finite, got nan",
            train(bag_of_words_options{.l2 = nan}));
  a.invalid(tr, input::negative, "options.l2 = -0.1", tr, "options.l2 must be >= 0 and finite, got -0.1",
            train(bag_of_words_options{.l2 = -0.1}));
  a.invalid(tr, input::too_large, "options.ignored = {4}", tr, "options.ignored[0] must be in [0, 4), got 4",
            train(bag_of_words_options{.ignored = {4}}));
  a.invalid(tr, input::too_large, "classes = 1", tr, "classes must be at least 2, got 1", train({}, 1));

  const std::string rd = "bag_of_words_classifier::read";
  const auto read = [](std::string text) {
    return [text] {
      std::istringstream in(text);
      (void)bag_of_words_classifier::read(in);
    };
  };
  a.runtime(rd, input::empty, "an empty stream", rd, "line 1: truncated: expected the header", read(""));
  a.runtime(rd, input::wrong_file, "an ARPA file", rd, "line 1: the first line must be", read("\\data\\\nngram 1=2\n"));
  a.runtime(rd, input::wrong_file, "format version 3", rd, "line 1", read("tsmc-bow-classifier 3\nclasses 2 vocab 4\n"));
  a.runtime(rd, input::truncated, "format 2 without its last line", rd,
            "line 5: truncated: the last line must be 'checksum <16 hexadecimal digits>'", [] {
              std::string t = classifier_text();
              std::istringstream in(t.substr(0, t.rfind("checksum ")));
              (void)bag_of_words_classifier::read(in);
            });
  a.runtime(rd, input::truncated, "format 1 without its last line", rd, "line 5: truncated: expected a line of weights", [] {
    std::string t = classifier_text_v1();
    t = t.substr(0, t.rfind('\n', t.size() - 2) + 1);
    std::istringstream in(t);
    (void)bag_of_words_classifier::read(in);
  });
  a.runtime(rd, input::truncated, "the first half of the text", rd, "line", [] {
    const std::string t = classifier_text();
    std::istringstream in(t.substr(0, t.size() / 2));
    (void)bag_of_words_classifier::read(in);
  });
  a.runtime(rd, input::wrong_file, "format 2 with one weight's digit changed", rd,
            "line 6: the checksum must match the contents, computed", [] {
              std::string t = classifier_text();
              t[t.find("0.5")] = '1';
              std::istringstream in(t);
              (void)bag_of_words_classifier::read(in);
            });
  a.runtime(rd, input::wrong_file, "format 2 with a 15-digit checksum", rd,
            "line 6: the checksum must be 16 hexadecimal digits", [] {
              std::string t = classifier_text();
              t.erase(t.size() - 2, 1);
              std::istringstream in(t);
              (void)bag_of_words_classifier::read(in);
            });
  a.runtime(rd, input::nan, "a weight 'nan' (format 2, valid checksum)", rd,
            "line 4: every parameter must be a finite number, got 'nan'", [] {
              std::string payload = classifier_text();
              payload = payload.substr(0, payload.rfind("checksum "));
              const auto at = payload.find('\n', payload.find("bias")) + 1;
              payload.replace(at, payload.find(' ', at) - at, "nan");
              std::istringstream in(with_checksum(payload));
              (void)bag_of_words_classifier::read(in);
            });
  a.runtime(rd, input::nan, "a weight 'nan' (format 1)", rd, "every parameter must be a finite number, got 'nan'", [] {
    std::string t = classifier_text_v1();
    const auto at = t.rfind('\n', t.size() - 2) + 1;
    t.replace(at, t.find(' ', at) - at, "nan");
    std::istringstream in(t);
    (void)bag_of_words_classifier::read(in);
  });
  a.runtime(rd, input::pos_inf, "a bias 'inf' (format 1)", rd, "every parameter must be a finite number, got 'inf'", [] {
    std::string t = classifier_text_v1();
    const auto at = t.find("bias ") + 5;
    t.replace(at, t.find(' ', at) - at, "inf");
    std::istringstream in(t);
    (void)bag_of_words_classifier::read(in);
  });
  a.runtime(rd, input::zero, "'classes 2 vocab 0'", rd, "expected 'classes C vocab V' with C >= 2 and V > 0",
            read("tsmc-bow-classifier 1\nclasses 2 vocab 0\n"));
  a.runtime(rd, input::too_large, "'classes 3333333333333 vocab 46' (no allocation)", rd, "expected 3333333333333 numbers",
            read("tsmc-bow-classifier 1\nclasses 3333333333333 vocab 46\nbias 0.5\n"));
  a.runtime(rd, input::mismatched, "a weight line of 3 numbers, V = 4 (format 1)", rd, "expected 4 numbers", [] {
    std::string t = classifier_text_v1();
    const auto at = t.rfind(' ');
    t = t.substr(0, at) + "\n";
    std::istringstream in(t);
    (void)bag_of_words_classifier::read(in);
  });
  a.runtime("bag_of_words_classifier::load", input::wrong_file, "a missing file", "bag_of_words_classifier::load",
            "path must name a readable file",
            [] { (void)bag_of_words_classifier::load(bad_input::scratch("no_such.txt").string()); });
  a.runtime("bag_of_words_classifier::save", input::wrong_file, "a path in a missing directory",
            "bag_of_words_classifier::save", "path must name a file in an existing, writable directory",
            [] { classifier().save((bad_input::scratch("missing_dir") / "c.txt").string()); });

  const std::string cp = "classifier_potential::classifier_potential";
  a.invalid(cp, input::too_large, "target_class = 2 of 2", cp, "target_class must be < num_classes() 2, got 2", [] {
    const auto c = classifier();
    classifier_potential<bag_of_words_classifier> p(c, 2);
  });
  a.invalid(cp, input::negative, "beta = -1", cp, "beta must be >= 0 and finite, got -1", [] {
    const auto c = classifier();
    classifier_potential<bag_of_words_classifier> p(c, 0, -1.0);
  });
  a.invalid(cp, input::nan, "beta = NaN", cp, "beta must be >= 0 and finite, got nan", [] {
    const auto c = classifier();
    classifier_potential<bag_of_words_classifier> p(c, 0, nan);
  });
  a.invalid(cp, input::pos_inf, "beta = +inf", cp, "beta must be >= 0 and finite, got inf", [] {
    const auto c = classifier();
    classifier_potential<bag_of_words_classifier> p(c, 0, inf);
  });
  a.invalid("classifier_potential::log_potential", input::mismatched, "2 sequences, out.size() = 3",
            "classifier_potential::log_potential", "out.size() must equal sequences.size() 2, got 3", [] {
              const auto c = classifier();
              classifier_potential<bag_of_words_classifier> p(c, 0);
              const std::vector<token_sequence> s{{0}, {1}};
              std::vector<double> out(3);
              p.log_potential(s, out);
            });
  a.invalid("class_log_prob_score::class_log_prob_score", input::too_large, "target_class = 5",
            "class_log_prob_score::class_log_prob_score", "target_class must be < num_classes() 2, got 5", [] {
              const auto c = classifier();
              class_log_prob_score<bag_of_words_classifier> s(c, 5);
            });
  using threshold = threshold_potential<length_score>;
  const length_score score;
  a.invalid("threshold_potential::threshold_potential", input::nan, "threshold = NaN",
            "threshold_potential::threshold_potential", "threshold must not be NaN, got nan",
            [score] { threshold p(score, nan); });
  a.invalid("threshold_potential::log_potential", input::mismatched, "1 sequence, out.size() = 2",
            "threshold_potential::log_potential", "out.size() must equal sequences.size() 1, got 2", [score] {
              threshold p(score, 1.0);
              const std::vector<token_sequence> s{{0}};
              std::vector<double> out(2);
              p.log_potential(s, out);
            });
  a.runtime("threshold_potential::passes", input::nan, "a score of NaN", "threshold_potential::passes",
            "score must not be NaN, got nan", [score] {
              threshold p(score, 1.0);
              (void)p.passes(token_sequence{});
            });
  a.runtime("threshold_potential::log_potential", input::nan, "a score of NaN", "threshold_potential::log_potential",
            "score must not be NaN, got nan", [score] {
              threshold p(score, 1.0);
              const std::vector<token_sequence> s{{}};
              std::vector<double> out(1);
              p.log_potential(s, out);
            });
  a.result("threshold_potential::threshold_potential", input::pos_inf, "threshold = +inf",
           "log phi = -inf for every finite score", [score] {
             threshold p(score, inf);
             const std::vector<token_sequence> s{{0, 0}};
             std::vector<double> out(1);
             p.log_potential(s, out);
             return out[0] == -inf;
           });
});

// A step context over a toy model (V = 3) for K prefixes of length t - 1.
struct context_fixture {
  tabular_model model{3, 1};
  token_sequence prompt{0};
  std::vector<token_sequence> prefixes;
  std::vector<std::uint8_t> active;
  step_context<tabular_model> at(std::size_t step, std::size_t k = 2, std::size_t horizon = 3) {
    prefixes.assign(k, token_sequence(step - 1, 1));
    active.assign(k, 1);
    return step_context<tabular_model>{step, horizon, prompt, prefixes, active, model};
  }
};

using head = mlp_twist<prefix_features>;

head make_head(std::size_t max_steps = 3) {
  return head(prefix_features(prefix_features_options{.vocab_size = 3}),
              mlp_twist_options{.vocab_size = 3, .max_steps = max_steps, .hidden_layers = 1, .width = 4});
}

const bad_input::area twist_rows("twists", [](bad_input::area& a) {
  const std::string tt = "tabular_twist::tabular_twist";
  a.invalid(tt, input::zero, "vocab_size = 0", tt, "vocab_size must be positive, got 0", [] { tabular_twist t(0, 3); });
  a.invalid(tt, input::zero, "horizon = 0", tt, "horizon must be positive, got 0", [] { tabular_twist t(3, 0); });
  a.invalid(tt, input::too_large, "V = 1000, T = 3 (10^9 parameters > 2^24)", tt, "horizon", [] { tabular_twist t(1000, 3); });
  const std::string io = "tabular_twist::index_of";
  a.invalid(io, input::empty, "prefix = {}", io, "prefix.size() must be in [1, horizon = 3], got 0",
            [] { (void)tabular_twist(3, 3).index_of(token_sequence{}); });
  a.invalid(io, input::too_large, "a prefix of 4, horizon 3", io, "prefix.size() must be in [1, horizon = 3], got 4",
            [] { (void)tabular_twist(3, 3).index_of(token_sequence{0, 0, 0, 0}); });
  a.invalid(io, input::too_large, "prefix = {0, 3}", io, "prefix[1] must be in [0, 3), got 3",
            [] { (void)tabular_twist(3, 3).index_of(token_sequence{0, 3}); });
  a.invalid("tabular_twist::log_value", input::negative, "prefix = {-1}", "tabular_twist::log_value",
            "prefix[0] must be in [0, 3), got -1", [] { (void)tabular_twist(3, 3).log_value(token_sequence{-1}); });
  const std::string sl = "tabular_twist::set_log_value";
  a.invalid(sl, input::nan, "value = NaN", sl, "value must not be NaN or +inf, got nan",
            [] { tabular_twist(3, 3).set_log_value(token_sequence{0}, nan); });
  a.invalid(sl, input::pos_inf, "value = +inf", sl, "value must not be NaN or +inf, got inf",
            [] { tabular_twist(3, 3).set_log_value(token_sequence{0}, inf); });
  a.invalid(sl, input::empty, "prefix = {}", sl, "prefix.size() must be in [1, horizon = 3], got 0",
            [] { tabular_twist(3, 3).set_log_value(token_sequence{}, 0.0); });
  a.result(sl, input::neg_inf, "value = -inf (psi = 0)", "stored: log_value = -inf", [] {
    tabular_twist t(3, 3);
    t.set_log_value(token_sequence{1}, -inf);
    return t.log_value(token_sequence{1}) == -inf;
  });
  const std::string lt = "tabular_twist::log_twist";
  a.invalid(lt, input::mismatched, "out 2 x 4 for V = 3", lt, "out.cols() must equal vocab_size() 3, got 4", [] {
    context_fixture f;
    tabular_twist t(3, 3);
    log_prob_matrix out(2, 4);
    t.log_twist(f.at(1), out);
  });
  a.invalid(lt, input::too_large, "ctx.step = 4, horizon 3", lt, "ctx.step must be in [1, horizon = 3], got 4", [] {
    context_fixture f;
    tabular_twist t(3, 3);
    log_prob_matrix out(2, 3);
    t.log_twist(f.at(4, 2, 4), out);
  });
  a.invalid("tabular_twist::accumulate_dense", input::misuse, "a step never recorded", "tabular_twist::accumulate_dense",
            "step was not recorded", [] {
              tabular_twist t(3, 3);
              t.accumulate_dense(1, log_prob_matrix::Zero(2, 3));
            });
  a.invalid("tabular_twist::accumulate_sparse", input::misuse, "a step never recorded", "tabular_twist::accumulate_sparse",
            "step was not recorded", [] {
              tabular_twist t(3, 3);
              const std::vector<sparse_coefficient> e{{0, 1, 1.0}};
              t.accumulate_sparse(2, e);
            });
  a.invalid("tabular_twist::accumulate_sparse", input::too_large, "entry.candidate = 3 at a recorded step",
            "tabular_twist::accumulate_sparse", "entry.candidate must be in [0, 3)", [] {
              context_fixture f;
              tabular_twist t(3, 3);
              t.set_recording(true);
              log_prob_matrix out(2, 3);
              t.log_twist(f.at(1), out);
              const std::vector<sparse_coefficient> e{{0, 3, 1.0}};
              t.accumulate_sparse(1, e);
            });
  a.invalid("tabular_twist::accumulate_dense", input::mismatched, "coefficients 3 x 3 for 2 recorded rows",
            "tabular_twist::accumulate_dense", "coefficients.rows() must equal the rows recorded at step 1 2, got 3", [] {
              context_fixture f;
              tabular_twist t(3, 3);
              t.set_recording(true);
              log_prob_matrix out(2, 3);
              t.log_twist(f.at(1), out);
              t.accumulate_dense(1, log_prob_matrix::Zero(3, 3));
            });

  const std::string mt = "mlp_twist::mlp_twist";
  const auto mlp = [](mlp_twist_options o) {
    return [o] { head h(prefix_features(prefix_features_options{.vocab_size = 3}), o); };
  };
  a.invalid(mt, input::zero, "options.vocab_size = 0", mt, "options.vocab_size must be positive, got 0",
            mlp(mlp_twist_options{.vocab_size = 0, .max_steps = 3}));
  a.invalid(mt, input::zero, "options.max_steps = 0", mt, "options.max_steps must be positive, got 0",
            mlp(mlp_twist_options{.vocab_size = 3, .max_steps = 0}));
  a.invalid(mt, input::too_large, "options.hidden_layers = 4", mt, "options.hidden_layers must be 0, 1, 2 or 3, got 4",
            mlp(mlp_twist_options{.vocab_size = 3, .max_steps = 3, .hidden_layers = 4}));
  a.invalid(mt, input::zero, "options.width = 0 with a hidden layer", mt, "options.width must be positive, got 0",
            mlp(mlp_twist_options{.vocab_size = 3, .max_steps = 3, .hidden_layers = 1, .width = 0}));
  const std::string ml = "mlp_twist::log_twist";
  a.invalid(ml, input::too_large, "ctx.step = 4 > max_steps 3", ml, "ctx.step", [] {
    context_fixture f;
    auto h = make_head();
    log_prob_matrix out(2, 3);
    h.log_twist(f.at(4, 2, 4), out);
  });
  a.invalid(ml, input::mismatched, "out 3 x 3 for 2 prefixes", ml, "out.rows() must equal the number of prefixes 2, got 3",
            [] {
              context_fixture f;
              auto h = make_head();
              log_prob_matrix out(3, 3);
              h.log_twist(f.at(1), out);
            });
  a.invalid("mlp_twist::accumulate_dense", input::misuse, "a step never recorded", "mlp_twist::accumulate_dense", "step",
            [] {
              auto h = make_head();
              h.accumulate_dense(1, log_prob_matrix::Zero(2, 3));
            });
  a.invalid("mlp_twist::accumulate_sparse", input::too_large, "entry.particle = 5 of 2 recorded",
            "mlp_twist::accumulate_sparse", "particle", [] {
              context_fixture f;
              auto h = make_head();
              h.set_recording(true);
              log_prob_matrix out(2, 3);
              h.log_twist(f.at(1), out);
              const std::vector<sparse_coefficient> e{{5, 0, 1.0}};
              h.accumulate_sparse(1, e);
            });
  a.invalid("model_features::model_features", input::zero, "feature_size = 0", "model_features::model_features",
            "feature_size must be positive, got 0", [] { model_features m(0); });
  const std::string pf = "prefix_features::prefix_features";
  a.invalid(pf, input::zero, "options.vocab_size = 0", pf, "options.vocab_size must be positive, got 0",
            [] { prefix_features p(prefix_features_options{.vocab_size = 0}); });
  a.invalid(pf, input::zero, "options.embedding_size = 0", pf, "options.embedding_size must be positive, got 0",
            [] { prefix_features p(prefix_features_options{.vocab_size = 3, .embedding_size = 0}); });
  a.invalid(pf, input::nan, "options.init_scale = NaN", pf, "options.init_scale",
            [] { prefix_features p(prefix_features_options{.vocab_size = 3, .init_scale = nan}); });
  a.invalid(pf, input::negative, "options.init_scale = -1", pf, "options.init_scale",
            [] { prefix_features p(prefix_features_options{.vocab_size = 3, .init_scale = -1.0}); });
  a.invalid("prefix_features::features", input::mismatched, "out 2 x 5 for 48 features", "prefix_features::features",
            "out.cols() must equal feature_size()", [] {
              context_fixture f;
              prefix_features p(prefix_features_options{.vocab_size = 3});
              twist_feature_matrix out(2, 5);
              p.features(f.at(1), out);
            });
  const std::string cf = "conditional_features::conditional_features";
  using conditional = conditional_features<prefix_features>;
  const auto inner = [] { return prefix_features(prefix_features_options{.vocab_size = 3}); };
  a.invalid(cf, input::zero, "options.observation_length = 0", cf, "options.observation_length must be positive, got 0",
            [inner] { conditional c(inner(), conditional_features_options{.vocab_size = 3, .observation_length = 0}); });
  a.invalid(cf, input::zero, "options.vocab_size = 0", cf, "options.vocab_size must be positive, got 0",
            [inner] { conditional c(inner(), conditional_features_options{.vocab_size = 0, .observation_length = 2}); });
  a.invalid(cf, input::pos_inf, "options.init_scale = +inf", cf, "options.init_scale", [inner] {
    conditional c(inner(), conditional_features_options{.vocab_size = 3, .observation_length = 2, .init_scale = inf});
  });
  a.invalid("conditional_features::set_observation", input::mismatched, "3 tokens, observation_length 2",
            "conditional_features::set_observation", "observation.size() must equal the observation_length 2, got 3",
            [inner] {
              conditional c(inner(), conditional_features_options{.vocab_size = 3, .observation_length = 2});
              c.set_observation(token_sequence{0, 1, 2});
            });
  a.invalid("conditional_features::set_observation", input::too_large, "observation = {0, 3}",
            "conditional_features::set_observation", "observation[1] must be in [0, 3), got 3", [inner] {
              conditional c(inner(), conditional_features_options{.vocab_size = 3, .observation_length = 2});
              c.set_observation(token_sequence{0, 3});
            });
  a.invalid("conditional_features::features", input::misuse, "no observation set", "conditional_features::features",
            "observation must be set by set_observation before a run", [inner] {
              context_fixture f;
              conditional c(inner(), conditional_features_options{.vocab_size = 3, .observation_length = 2});
              twist_feature_matrix out(2, static_cast<Eigen::Index>(c.feature_size()));
              c.features(f.at(1), out);
            });
  const std::string sg = "sigmoid_twist::recorded_logit";
  a.invalid(sg, input::misuse, "a step never recorded", sg, "step was not recorded",
            [] { (void)sigmoid_twist<tabular_twist>(tabular_twist(3, 3)).recorded_logit(1, 0, 0); });
  a.invalid(sg, input::too_large, "candidate 3 of V = 3", sg, "candidate", [] {
    context_fixture f;
    sigmoid_twist<tabular_twist> s(tabular_twist(3, 3));
    s.set_recording(true);
    log_prob_matrix out(2, 3);
    s.log_twist(f.at(1), out);
    (void)s.recorded_logit(1, 0, 3);
  });
  a.invalid(sg, input::too_large, "particle 2 of 2", sg, "particle", [] {
    context_fixture f;
    sigmoid_twist<tabular_twist> s(tabular_twist(3, 3));
    s.set_recording(true);
    log_prob_matrix out(2, 3);
    s.log_twist(f.at(1), out);
    (void)s.recorded_logit(1, 2, 0);
  });
  a.invalid("sigmoid_twist::accumulate_dense", input::mismatched, "coefficients 2 x 4 for V = 3",
            "sigmoid_twist::accumulate_dense", "coefficients.cols() must equal vocab_size() 3, got 4", [] {
              context_fixture f;
              sigmoid_twist<tabular_twist> s(tabular_twist(3, 3));
              s.set_recording(true);
              log_prob_matrix out(2, 3);
              s.log_twist(f.at(1), out);
              s.accumulate_dense(1, log_prob_matrix::Zero(2, 4));
            });
});

const bad_input::area testing_rows("testing", [](bad_input::area& a) {
  const std::string tm = "testing::tabular_model::tabular_model";
  a.invalid(tm, input::zero, "vocab_size = 0", tm, "vocab_size must be positive, got 0", [] { tabular_model m(0, 1); });
  a.invalid(tm, input::nan, "scale = NaN", tm, "scale must be finite and >= 0, got nan", [] { tabular_model m(3, 1, nan); });
  a.invalid(tm, input::negative, "scale = -1", tm, "scale must be finite and >= 0, got -1", [] { tabular_model m(3, 1, -1.0); });
  a.invalid("testing::tabular_model::from_function", input::empty, "an empty std::function",
            "testing::tabular_model::from_function", "next_probs must be a callable",
            [] { (void)tabular_model::from_function(3, {}); });
  a.invalid("testing::tabular_model::from_function", input::negative, "next_probs returns a -0.5",
            "testing::tabular_model::next_log_probs", "next_probs([])[1]", [] {
              const auto m = tabular_model::from_function(
                  2, [](std::span<const token>, std::span<const token>) { return std::vector<double>{1.5, -0.5}; });
              std::vector<double> out(2);
              m.next_log_probs(token_sequence{}, token_sequence{}, out);
            });
  a.invalid("testing::tabular_model::next_log_probs", input::mismatched, "out.size() = 2 for V = 3",
            "testing::tabular_model::next_log_probs", "out.size() must equal the vocabulary size 3, got 2", [] {
              std::vector<double> out(2);
              tabular_model(3, 1).next_log_probs(token_sequence{}, token_sequence{}, out);
            });
  a.invalid("testing::tabular_model::next_log_probs", input::too_large, "prefix = {3}",
            "testing::tabular_model::next_log_probs", "prefix[0] must be in [0, 3), got 3", [] {
              std::vector<double> out(3);
              tabular_model(3, 1).next_log_probs(token_sequence{}, token_sequence{3}, out);
            });
  a.invalid("testing::tabular_model::start", input::zero, "particles = 0", "testing::tabular_model::start",
            "particles must be positive, got 0", [] { tabular_model(3, 1).start(token_sequence{0}, 0); });
  a.invalid("testing::tabular_model::append", input::too_large, "tokens = {0, 5}", "testing::tabular_model::append",
            "tokens[1] must be in [0, 3), got 5", [] {
              tabular_model m(3, 1);
              m.start(token_sequence{0}, 2);
              m.append(token_sequence{0, 5});
            });
  a.invalid("testing::tabular_model::log_probs", input::mismatched, "out 2 x 2 for V = 3", "testing::tabular_model::log_probs",
            "out.cols() must equal the vocabulary size 3, got 2", [] {
              tabular_model m(3, 1);
              m.start(token_sequence{0}, 2);
              log_prob_matrix out(2, 2);
              m.log_probs(out);
            });
  a.invalid("testing::random_potential::random_potential", input::nan, "scale = NaN",
            "testing::random_potential::random_potential", "scale must be finite and >= 0, got nan",
            [] { testing::random_potential p(1, nan); });
  a.invalid("testing::random_twist::random_twist", input::pos_inf, "scale = +inf", "testing::random_twist::random_twist",
            "scale must be finite and >= 0, got inf", [] { testing::random_twist t(1, inf); });
  a.invalid("testing::pattern_indicator::pattern_indicator", input::empty, "pattern = {}",
            "testing::pattern_indicator::pattern_indicator", "pattern.size() must be positive, got 0",
            [] { testing::pattern_indicator p(token_sequence{}); });
  a.invalid("testing::random_potential::log_potential", input::mismatched, "2 sequences, out.size() = 1",
            "testing::random_potential::log_potential", "out.size() must equal sequences.size() 2, got 1", [] {
              const std::vector<token_sequence> s{{0}, {1}};
              std::vector<double> out(1);
              testing::random_potential(1).log_potential(s, out);
            });
  const std::string en = "testing::enumerate";
  const auto enumerate_with = [](testing::toy_problem p) {
    return [p] {
      tabular_model m(p.vocab_size == 0 ? 1 : p.vocab_size, 1);
      (void)testing::enumerate(p, m, testing::random_potential(2));
    };
  };
  a.invalid(en, input::zero, "problem.vocab_size = 0", en, "problem.vocab_size must be positive, got 0",
            enumerate_with(testing::toy_problem{0, 2, {}, {}}));
  a.invalid(en, input::zero, "problem.horizon = 0", en, "problem.horizon must be positive, got 0",
            enumerate_with(testing::toy_problem{3, 0, {}, {}}));
  a.invalid(en, input::too_large, "problem.end_token = 3, V = 3", en, "problem.end_token",
            enumerate_with(testing::toy_problem{3, 2, {}, token{3}}));
  a.invalid(en, input::too_large, "problem.prompt = {4}", en, "problem.prompt[0] must be in [0, 3), got 4",
            enumerate_with(testing::toy_problem{3, 2, {4}, {}}));
  a.invalid(en, input::too_large, "V = 10, T = 9 (10^9 sequences)", en, "",
            enumerate_with(testing::toy_problem{10, 9, {}, {}}));
  a.invalid(en, input::mismatched, "a model over 4 tokens, problem over 3", en,
            "model.vocab_size() must equal problem.vocab_size 3, got 4", [] {
              tabular_model m(4, 1);
              (void)testing::enumerate(testing::toy_problem{3, 2, {}, {}}, m, testing::random_potential(2));
            });
  a.invalid("testing::enumeration_sampler::enumeration_sampler", input::neg_inf, "log Z = -inf (phi = 0 everywhere)",
            "testing::enumeration_sampler::enumeration_sampler", "log Z", [] {
              tabular_model m(2, 1);
              const auto solution = testing::enumerate(testing::toy_problem{2, 2, {}, {}}, m,
                                                       testing::pattern_indicator(token_sequence{0, 0, 0}));
              testing::enumeration_sampler s(solution);
            });
  a.invalid("testing::optimal_twist::log_twist", input::mismatched, "a context with another prompt",
            "testing::optimal_twist::log_twist", "ctx.prompt must equal the problem's prompt", [] {
              context_fixture f;
              const auto solution = testing::enumerate(testing::toy_problem{3, 3, {1}, {}}, f.model, testing::random_potential(2));
              testing::optimal_twist t(solution);
              log_prob_matrix out(2, 3);
              t.log_twist(f.at(1), out);
            });
  a.invalid("testing::exact_proposal_kls", input::mismatched, "a sampler of horizon 2, problem horizon 3",
            "testing::exact_proposal_kls", "smc.options().horizon must equal the problem's horizon 3, got 2", [] {
              tabular_model m(3, 1);
              const auto solution = testing::enumerate(testing::toy_problem{3, 3, {1}, {}}, m, testing::random_potential(2));
              no_twist none;
              testing::random_potential phi(2);
              twisted_smc<tabular_model, no_twist, testing::random_potential> smc(m, none, phi,
                                                                                 smc_options{.particles = 2, .horizon = 2});
              (void)testing::exact_proposal_kls(solution, smc);
            });
});

}  // namespace
