#pragma once
/// @file
/// @brief Classifiers of token sequences: the `Classifier` concept (log P(c | s) for a batch of
/// sequences), its next-token refinement, and a bag-of-words multinomial logistic regression
/// with training, evaluation, saving and loading.

#include <tsmc/core/checksum.hpp>
#include <tsmc/core/error.hpp>
#include <tsmc/core/file_output.hpp>
#include <tsmc/core/log_math.hpp>
#include <tsmc/core/types.hpp>
#include <tsmc/models/text_io.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <istream>
#include <iterator>
#include <optional>
#include <ostream>
#include <span>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

namespace tsmc {

/// @brief A classifier of token sequences: `num_classes()` and `log_class_probs(sequences, out)`
/// writing out(k, c) = log P(c | sequences[k]), each row normalised over the classes.
template <class C>
concept Classifier = requires(const C& c, std::span<const token_sequence> sequences, log_prob_ref out) {
  { c.num_classes() } -> std::convertible_to<std::size_t>;
  c.log_class_probs(sequences, out);
};

/// @brief A Classifier that scores every one-token extension at once:
/// `log_class_prob_next(prefixes, cls, out)` writes out(k, v) = log P(cls | prefixes[k] + v)
/// for every token v (K x V). Task potentials use it for their next-token form.
template <class C>
concept NextTokenClassifier =
    Classifier<C> && requires(const C& c, std::span<const token_sequence> prefixes, std::size_t cls, log_prob_ref out) {
      c.log_class_prob_next(prefixes, cls, out);
    };

/// @brief Options of bag-of-words training, used with designated initialisers.
struct bag_of_words_options {
  std::size_t iterations = 150;  ///< full-batch Adam steps (> 0)
  double learning_rate = 0.2;    ///< Adam's step size (> 0)
  double l2 = 1e-4;              ///< weight of (1/2) ||W||^2 in the loss (>= 0; the biases are not penalised)
  std::vector<token> ignored{};  ///< tokens whose weights stay 0 (e.g. `</s>`, so that a sequence's end does not count)
};

/// @brief A bag-of-words multinomial logistic regression over token counts:
/// z_c(s) = b_c + sum_t W(c, s_t), P(c | s) = exp(z_c) / sum_c' exp(z_c').
///
/// Models tsmc::NextTokenClassifier: one extension s + v adds the column W(., v) to z(s), so
/// the K x V next-token table costs C additions and one C-term logsumexp per entry. The scores
/// of s + v are accumulated in the same order as those of the sequence itself, so the two forms
/// agree exactly (bit for bit).
template <class Lazy = void>
class basic_bag_of_words_classifier {
 public:
  /// @brief A classifier with all weights and biases 0 (uniform over classes).
  /// @param classes C >= 2
  /// @param vocab V > 0
  /// @throw tsmc::invalid_argument if C < 2 or V == 0
  basic_bag_of_words_classifier(std::size_t classes, std::size_t vocab) {
    constexpr const char* function = "bag_of_words_classifier::bag_of_words_classifier";
    check_argument(classes >= 2, function, "classes", "must be at least 2", classes);
    check_positive(function, "vocab", vocab);
    weights_ = Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(classes), static_cast<Eigen::Index>(vocab));
    bias_ = Eigen::VectorXd::Zero(static_cast<Eigen::Index>(classes));
  }

  /// @brief C, the number of classes.
  [[nodiscard]] std::size_t num_classes() const noexcept { return static_cast<std::size_t>(weights_.rows()); }
  /// @brief V, the vocabulary size.
  [[nodiscard]] std::size_t vocab_size() const noexcept { return static_cast<std::size_t>(weights_.cols()); }
  /// @brief W, C x V.
  [[nodiscard]] const Eigen::MatrixXd& weights() const noexcept { return weights_; }
  /// @brief b, C.
  [[nodiscard]] const Eigen::VectorXd& bias() const noexcept { return bias_; }

  /// @brief Replaces the parameters.
  /// @param weights C x V
  /// @param bias C
  /// @throw tsmc::invalid_argument on a shape mismatch, or naming the first entry that is NaN or
  /// infinite ("weights(c, v) must be finite, got nan")
  void set_parameters(const Eigen::MatrixXd& weights, const Eigen::VectorXd& bias) {
    constexpr const char* function = "bag_of_words_classifier::set_parameters";
    check_size(function, "weights.rows()", weights.rows(), "num_classes()", num_classes());
    check_size(function, "weights.cols()", weights.cols(), "vocab_size()", vocab_size());
    check_size(function, "bias.size()", bias.size(), "num_classes()", num_classes());
    for (Eigen::Index c = 0; c < weights.rows(); ++c)
      for (Eigen::Index v = 0; v < weights.cols(); ++v)
        check_finite(function, "weights(" + std::to_string(c) + ", " + std::to_string(v) + ")", weights(c, v));
    for (Eigen::Index c = 0; c < bias.size(); ++c) check_finite(function, "bias[" + std::to_string(c) + "]", bias[c]);
    weights_ = weights;
    bias_ = bias;
  }

  /// @brief z(s) = b + sum_t W(., s_t) (the scores, in the order the next-token form uses).
  /// @param sequence tokens in [0, V)
  /// @return C scores
  /// @throw tsmc::invalid_argument if a token is outside [0, V)
  [[nodiscard]] Eigen::VectorXd scores(std::span<const token> sequence) const {
    check_tokens(sequence, vocab_size(), "bag_of_words_classifier::scores", "sequence");
    return scores_unchecked(sequence);
  }

  /// @brief log P(c | s) for one sequence and every class.
  /// @param sequence tokens in [0, V)
  /// @return C log-probabilities (they logsumexp to 0)
  /// @throw tsmc::invalid_argument if a token is outside [0, V)
  [[nodiscard]] Eigen::VectorXd log_class_probs(std::span<const token> sequence) const {
    check_tokens(sequence, vocab_size(), "bag_of_words_classifier::log_class_probs", "sequence");
    const Eigen::VectorXd z = scores_unchecked(sequence);
    return z.array() - logsumexp(z);
  }

  /// @brief out(k, c) = log P(c | sequences[k]).
  /// @param sequences K sequences of tokens in [0, V)
  /// @param out K x C
  /// @throw tsmc::invalid_argument on a shape mismatch or a token outside [0, V)
  void log_class_probs(std::span<const token_sequence> sequences, log_prob_ref out) const {
    constexpr const char* function = "bag_of_words_classifier::log_class_probs";
    check_size(function, "out.rows()", out.rows(), "sequences.size()", sequences.size());
    check_size(function, "out.cols()", out.cols(), "num_classes()", num_classes());
    for (std::size_t k = 0; k < sequences.size(); ++k)
      check_tokens(sequences[k], vocab_size(), function, "sequences[" + std::to_string(k) + "]");
    for (std::size_t k = 0; k < sequences.size(); ++k) {
      const Eigen::VectorXd z = scores_unchecked(sequences[k]);
      out.row(static_cast<Eigen::Index>(k)) = (z.array() - logsumexp(z)).transpose();
    }
  }

  /// @brief out(k, v) = log P(cls | prefixes[k] + v) for every token v.
  /// @param prefixes K sequences of tokens in [0, V)
  /// @param cls the class, in [0, C)
  /// @param out K x V
  /// @throw tsmc::invalid_argument on a shape mismatch, a class or a token out of range
  void log_class_prob_next(std::span<const token_sequence> prefixes, std::size_t cls, log_prob_ref out) const {
    constexpr const char* function = "bag_of_words_classifier::log_class_prob_next";
    check_size(function, "out.rows()", out.rows(), "prefixes.size()", prefixes.size());
    check_size(function, "out.cols()", out.cols(), "vocab_size()", vocab_size());
    check_argument(cls < num_classes(), function, "cls", "must be < num_classes() " + std::to_string(num_classes()), cls);
    const auto classes = weights_.rows();
    Eigen::VectorXd z(classes);
    for (std::size_t k = 0; k < prefixes.size(); ++k) {
      check_tokens(prefixes[k], vocab_size(), function, "prefixes[" + std::to_string(k) + "]");
      const Eigen::VectorXd base = scores_unchecked(prefixes[k]);
      double* row = out.row(static_cast<Eigen::Index>(k)).data();
      for (Eigen::Index v = 0; v < weights_.cols(); ++v) {
        z = base + weights_.col(v);
        row[v] = z[static_cast<Eigen::Index>(cls)] - logsumexp(z);
      }
    }
  }

  /// @brief The most probable class (the lowest index among ties).
  /// @param sequence tokens in [0, V)
  /// @return the class
  /// @throw tsmc::invalid_argument if a token is outside [0, V)
  [[nodiscard]] std::size_t predict(std::span<const token> sequence) const {
    return predict_for(sequence, "bag_of_words_classifier::predict");
  }

  /// @brief The fraction of sequences whose predicted class is their label.
  /// @param sequences the sequences
  /// @param labels one class per sequence
  /// @return the accuracy in [0, 1]
  /// @throw tsmc::invalid_argument on a size mismatch, an empty set or a bad token
  [[nodiscard]] double accuracy(std::span<const token_sequence> sequences, std::span<const std::size_t> labels) const {
    check_size("bag_of_words_classifier::accuracy", "labels.size()", labels.size(), "sequences.size()", sequences.size());
    check_positive("bag_of_words_classifier::accuracy", "sequences.size()", sequences.size());
    std::size_t right = 0;
    for (std::size_t i = 0; i < sequences.size(); ++i)
      right += predict_for(sequences[i], "bag_of_words_classifier::accuracy", i) == labels[i] ? 1 : 0;
    return static_cast<double>(right) / static_cast<double>(sequences.size());
  }

  /// @brief The training loss and its gradient at (W, b):
  /// L = -(1/N) sum_i log P(y_i | s_i) + (l2 / 2) ||W||^2, and
  /// dL/dW(c, t) = (1/N) sum_i (P(c | s_i) - [c = y_i]) n_t(s_i) + l2 W(c, t),
  /// dL/db_c = (1/N) sum_i (P(c | s_i) - [c = y_i]), with n_t(s) the count of t in s.
  /// @param sequences N sequences of tokens in [0, V)
  /// @param labels N classes in [0, C)
  /// @param l2 the penalty weight
  /// @param grad_weights if not null, receives dL/dW (C x V)
  /// @param grad_bias if not null, receives dL/db (C)
  /// @return L
  /// @throw tsmc::invalid_argument on a size mismatch, an empty set, a bad label or token, or an
  /// l2 that is negative, NaN or infinite
  [[nodiscard]] double training_loss(std::span<const token_sequence> sequences, std::span<const std::size_t> labels,
                                     double l2, Eigen::MatrixXd* grad_weights = nullptr,
                                     Eigen::VectorXd* grad_bias = nullptr) const {
    constexpr const char* function = "bag_of_words_classifier::training_loss";
    check_data(sequences, labels, function);
    check_argument(l2 >= 0.0 && std::isfinite(l2), function, "l2", "must be >= 0 and finite", l2);
    const auto n = static_cast<double>(sequences.size());
    if (grad_weights != nullptr) grad_weights->setZero(weights_.rows(), weights_.cols());
    if (grad_bias != nullptr) grad_bias->setZero(bias_.size());
    double loss = 0.0;
    Eigen::VectorXd p;
    for (std::size_t i = 0; i < sequences.size(); ++i) {
      const Eigen::VectorXd z = scores_unchecked(sequences[i]);
      const double lse = logsumexp(z);
      const auto y = static_cast<Eigen::Index>(labels[i]);
      loss -= (z[y] - lse) / n;
      if (grad_weights == nullptr && grad_bias == nullptr) continue;
      p = (z.array() - lse).exp();
      p[y] -= 1.0;
      p /= n;
      if (grad_bias != nullptr) *grad_bias += p;
      if (grad_weights != nullptr)
        for (const token t : sequences[i]) grad_weights->col(t) += p;
    }
    loss += 0.5 * l2 * weights_.squaredNorm();
    if (grad_weights != nullptr) *grad_weights += l2 * weights_;
    return loss;
  }

  /// @brief Trains a classifier by full-batch Adam on the training loss (training_loss).
  /// @param sequences N labelled sequences of tokens in [0, V)
  /// @param labels N classes in [0, classes)
  /// @param classes C >= 2
  /// @param vocab V
  /// @param options iterations, step size, L2 weight and ignored tokens
  /// @return the trained classifier
  /// @throw tsmc::invalid_argument on bad data or options
  [[nodiscard]] static basic_bag_of_words_classifier train(std::span<const token_sequence> sequences,
                                                     std::span<const std::size_t> labels, std::size_t classes,
                                                     std::size_t vocab, const bag_of_words_options& options = {}) {
    constexpr const char* function = "bag_of_words_classifier::train";
    check_argument(classes >= 2, function, "classes", "must be at least 2", classes);
    check_positive(function, "vocab", vocab);
    basic_bag_of_words_classifier model(classes, vocab);
    model.check_data(sequences, labels, function);
    check_positive(function, "options.iterations", options.iterations);
    check_argument(options.learning_rate > 0.0 && std::isfinite(options.learning_rate), function,
                   "options.learning_rate", "must be positive and finite", options.learning_rate);
    check_argument(options.l2 >= 0.0 && std::isfinite(options.l2), function, "options.l2", "must be >= 0 and finite",
                   options.l2);
    check_tokens(options.ignored, vocab, function, "options.ignored");
    Eigen::ArrayXXd mask = Eigen::ArrayXXd::Ones(model.weights_.rows(), model.weights_.cols());
    for (const token t : options.ignored) mask.col(t).setZero();
    // Adam (Kingma and Ba 2015) with the usual moment rates.
    constexpr double beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8;
    Eigen::MatrixXd gw, mw = Eigen::MatrixXd::Zero(model.weights_.rows(), model.weights_.cols()), vw = mw;
    Eigen::VectorXd gb, mb = Eigen::VectorXd::Zero(model.bias_.size()), vb = mb;
    double b1 = 1.0, b2 = 1.0;
    for (std::size_t it = 0; it < options.iterations; ++it) {
      (void)model.training_loss(sequences, labels, options.l2, &gw, &gb);
      gw = (gw.array() * mask).matrix();
      b1 *= beta1;
      b2 *= beta2;
      mw = beta1 * mw + (1.0 - beta1) * gw;
      vw = beta2 * vw + (1.0 - beta2) * gw.cwiseProduct(gw);
      mb = beta1 * mb + (1.0 - beta1) * gb;
      vb = beta2 * vb + (1.0 - beta2) * gb.cwiseProduct(gb);
      const double step = options.learning_rate * std::sqrt(1.0 - b2) / (1.0 - b1);
      model.weights_.array() -= step * mw.array() / (vw.array().sqrt() + epsilon);
      model.bias_.array() -= step * mb.array() / (vb.array().sqrt() + epsilon);
    }
    return model;
  }

  /// @brief Writes the classifier as text, format version 2: "tsmc-bow-classifier 2",
  /// "classes C vocab V", a "bias" line, C lines of V weights (numbers in the shortest form that
  /// reads back exactly), then "checksum <h>" with h the 64-bit FNV-1a of every byte before that
  /// line, as 16 lowercase hexadecimal digits.
  /// @param out the stream
  /// @throw tsmc::runtime_error if the stream fails
  void write(std::ostream& out) const {
    const std::string payload = payload_text();
    out << payload << "checksum " << detail::checksum_hex(detail::fnv1a64(payload)) << '\n';
    if (!out) throw_runtime_error("bag_of_words_classifier::write", "stream", "must accept the output", "a write error");
  }

  /// @brief Reads a classifier written by write(): format version 2 (checksummed), or version 1
  /// (the same lines without the checksum line, as written before version 2).
  ///
  /// A version 2 file's checksum is verified before its numbers are parsed, so a corrupted file
  /// is reported as such, and a file cut short lacks its checksum line.
  /// @param in the stream
  /// @return the classifier
  /// @throw tsmc::runtime_error "tsmc::bag_of_words_classifier::read: line L: ..." for another
  /// version, a missing or malformed checksum line, a checksum that does not match the contents
  /// (a corrupted file), or a malformed or truncated file
  [[nodiscard]] static basic_bag_of_words_classifier read(std::istream& in) {
    constexpr const char* function = "bag_of_words_classifier::read";
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) throw_runtime_error(function, "stream", "must be readable", "a read error");
    if (text.empty()) read_error(1, "truncated: expected the header 'tsmc-bow-classifier 2'", "end of file");
    const std::string_view first = detail::trim_text(std::string_view(text).substr(0, text.find('\n')));
    if (first == "tsmc-bow-classifier 1") {
      std::istringstream body(text);
      return parse_lines(body);
    }
    if (first != "tsmc-bow-classifier 2")
      read_error(1, "the first line must be 'tsmc-bow-classifier 2' (or the older 'tsmc-bow-classifier 1')", first);
    // The checksum line is the last line; the payload is every byte before it.
    std::size_t end = text.size();
    if (text[end - 1] == '\n') --end;
    const std::size_t previous = end == 0 ? std::string::npos : text.rfind('\n', end - 1);
    const std::size_t line_start = previous == std::string::npos ? 0 : previous + 1;
    const std::string_view payload = std::string_view(text).substr(0, line_start);
    const auto line = static_cast<std::size_t>(std::count(payload.begin(), payload.end(), '\n')) + 1;
    const std::string_view last = detail::trim_text(std::string_view(text).substr(line_start, end - line_start));
    if (last.substr(0, 9) != "checksum ")
      read_error(line, "truncated: the last line must be 'checksum <16 hexadecimal digits>'", last);
    const auto stored = detail::parse_checksum_hex(detail::trim_text(last.substr(9)));
    if (!stored) read_error(line, "the checksum must be 16 hexadecimal digits (the line is cut or corrupted)", last);
    const std::uint64_t computed = detail::fnv1a64(payload);
    if (*stored != computed)
      read_error(line,
           "the checksum must match the contents, computed " + detail::checksum_hex(computed) +
               " (the file is corrupt)",
           last);
    std::istringstream body{std::string(payload)};
    return parse_lines(body);
  }

  /// @brief Writes the classifier to a file (see write), atomically: the text goes to a
  /// temporary file next to it, which is then renamed over `path`, so an interrupted or failed
  /// save leaves any previous file intact (and no partial one).
  /// @param path the destination
  /// @throw tsmc::runtime_error if the temporary file cannot be created or written in full, or the
  /// rename fails (the temporary file is removed in every case; tsmc::write_file_atomically)
  void save(const std::string& path) const {
    write_file_atomically(path, [this](std::ostream& out) { write(out); }, "bag_of_words_classifier::save");
  }

  /// @brief Reads a classifier from a file (see read).
  /// @throw tsmc::runtime_error if the file cannot be opened, or as read
  [[nodiscard]] static basic_bag_of_words_classifier load(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw_runtime_error("bag_of_words_classifier::load", "path", "must name a readable file", path);
    return read(in);
  }

 private:
  // read()'s error for a line of the file: "tsmc::bag_of_words_classifier::read: line L: problem, got 'text'".
  [[noreturn]] static void read_error(std::size_t line, const std::string& problem, std::string_view got) {
    throw_runtime_error("bag_of_words_classifier::read", "line " + std::to_string(line) + ":", problem,
                        "'" + std::string(got) + "'");
  }

  // The lines of a version 1 file, or of a version 2 file's payload (read() has checked the header).
  [[nodiscard]] static basic_bag_of_words_classifier parse_lines(std::istream& in) {
    detail::text_lines lines(in);
    std::string_view t;
    const auto need = [&](const char* what) {
      if (!lines.next(t)) read_error(lines.number() + 1, std::string("truncated: expected ") + what, "end of file");
    };
    need("the header");  // checked by read()
    need("'classes C vocab V'");
    std::vector<std::string_view> f = detail::split_fields(t);
    std::size_t classes = 0, vocab = 0;
    if (f.size() != 4 || f[0] != "classes" || f[2] != "vocab" || !detail::parse_count(f[1], classes) ||
        !detail::parse_count(f[3], vocab) || classes < 2 || vocab == 0)
      read_error(lines.number(), "expected 'classes C vocab V' with C >= 2 and V > 0", t);
    // Nothing is sized by the header before the file shows that many numbers: each line's count
    // is checked against C or V first, and the model is built once every line has been read.
    const auto numbers = [&](std::size_t skip, std::size_t count, std::vector<double>& out) {
      f = detail::split_fields(t);
      if (f.size() != skip + count)
        read_error(lines.number(), "expected " + std::to_string(count) + " numbers", t);
      for (std::size_t i = 0; i < count; ++i) {
        double x = 0.0;
        if (!detail::parse_double(f[skip + i], x) || !std::isfinite(x))
          read_error(lines.number(), "every parameter must be a finite number", f[skip + i]);
        out.push_back(x);
      }
    };
    need("the 'bias' line");
    if (t.substr(0, 4) != "bias") read_error(lines.number(), "expected the 'bias' line", t);
    std::vector<double> bias;
    numbers(1, classes, bias);
    std::vector<double> weights;  // row-major C x V, grown line by line
    for (std::size_t c = 0; c < classes; ++c) {
      need("a line of weights");
      numbers(0, vocab, weights);
    }
    basic_bag_of_words_classifier model(classes, vocab);
    for (std::size_t c = 0; c < classes; ++c) {
      model.bias_[static_cast<Eigen::Index>(c)] = bias[c];
      for (std::size_t v = 0; v < vocab; ++v)
        model.weights_(static_cast<Eigen::Index>(c), static_cast<Eigen::Index>(v)) = weights[c * vocab + v];
    }
    return model;
  }

  // The lines of write()'s output before the checksum line.
  [[nodiscard]] std::string payload_text() const {
    std::ostringstream out;
    out << "tsmc-bow-classifier 2\nclasses " << num_classes() << " vocab " << vocab_size() << "\nbias";
    for (Eigen::Index c = 0; c < bias_.size(); ++c) out << ' ' << detail::format_double(bias_[c]);
    out << '\n';
    for (Eigen::Index c = 0; c < weights_.rows(); ++c) {
      for (Eigen::Index v = 0; v < weights_.cols(); ++v)
        out << (v == 0 ? "" : " ") << detail::format_double(weights_(c, v));
      out << '\n';
    }
    return out.str();
  }

  // predict, its token check named as `function`'s (and as sequences[index] when given).
  [[nodiscard]] std::size_t predict_for(std::span<const token> sequence, const char* function,
                                        std::optional<std::size_t> index = std::nullopt) const {
    check_tokens(sequence, vocab_size(), function, index ? "sequences[" + std::to_string(*index) + "]" : "sequence");
    Eigen::Index best = 0;
    scores_unchecked(sequence).maxCoeff(&best);
    return static_cast<std::size_t>(best);
  }

  [[nodiscard]] Eigen::VectorXd scores_unchecked(std::span<const token> sequence) const {
    Eigen::VectorXd z = bias_;
    for (const token t : sequence) z += weights_.col(t);
    return z;
  }

  void check_data(std::span<const token_sequence> sequences, std::span<const std::size_t> labels,
                  const char* function) const {
    check_positive(function, "sequences.size()", sequences.size());
    check_size(function, "labels.size()", labels.size(), "sequences.size()", sequences.size());
    for (std::size_t i = 0; i < sequences.size(); ++i) {
      check_argument(labels[i] < num_classes(), function, "labels[" + std::to_string(i) + "]",
                     "must be < the number of classes " + std::to_string(num_classes()), labels[i]);
      check_tokens(sequences[i], vocab_size(), function, "sequences[" + std::to_string(i) + "]");
    }
  }

  Eigen::MatrixXd weights_;
  Eigen::VectorXd bias_;
};

/// @brief The library's bag_of_words_classifier: basic_bag_of_words_classifier is a template only so that its member
/// functions are compiled in the translation units that use them (docs/architecture.md, "Compile weight").
using bag_of_words_classifier = basic_bag_of_words_classifier<>;

}  // namespace tsmc
