#pragma once
/// @file
/// @brief A word n-gram language model: interpolated modified Kneser-Ney training (orders 2 to
/// 5), ARPA reading and writing (KenLM / SRILM files), and the batched tsmc::LanguageModel
/// interface over K particles.
///
/// One representation serves trained and loaded models: the backoff form of an ARPA file. Every
/// listed n-gram h w has a probability p(w | h) and every listed context h a backoff weight
/// bow(h); for a history h,
///   p(w | h) = p(h w)                   if h w is listed,
///   p(w | h) = bow(h) p(w | h[2:])      otherwise (bow(h) = 1 when h is not listed),
/// down to the unigrams. An interpolated Kneser-Ney model is exactly of this form with
/// p(h w) its interpolated probability and bow(h) = gamma(h), its interpolation weight (Chen and
/// Goodman 1998, "An empirical study of smoothing techniques for language modeling"), which is
/// how KenLM writes it too.
///
/// Exact normalisation. Each row the model emits is renormalised:
/// log p(w | h) = log p_backoff(w | h) - log sum_v p_backoff(v | h). For a trained model the sum
/// is 1 up to rounding (about 1e-15) and the correction is that small; for a KenLM or SRILM file,
/// whose values are printed to about 6 digits, the rows sum to 1 only to that precision and the
/// renormalisation makes them exact (each row sums to 1 within 1e-12). The log-normaliser is
/// computed once per distinct context (V exponentials) and cached; after that a row costs one
/// pass of additions over V plus the context's listed successors, with no logarithm.
///
/// Vocabulary. Token ids come from tsmc::word_tokenizer: 0 = `<unk>`, 1 = `<s>`, 2 = `</s>`.
/// `</s>` is the end token (probability as trained); `<unk>` has the probability the model gives
/// it (for a trained model, the uniform share of the lowest order, or its count when the corpus
/// had unknown words); `<s>` is in the vocabulary so that ids are shared with the tokenizer, but
/// it is only ever a context: its probability is 0 (log -inf) in every row.
///
/// State. Each particle's context starts as `<s>` followed by the prompt; the model keeps, per
/// slot, the longest suffix of that history that is a listed context of at most N - 1 words (the
/// rest of the history cannot change any probability). Appending `</s>` starts a new sentence
/// (the context becomes `<s>`). reorder copies these context ids (4 bytes a slot).

#include <tsmc/core/error.hpp>
#include <tsmc/core/file_output.hpp>
#include <tsmc/core/log_math.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/core/types.hpp>
#include <tsmc/models/text_io.hpp>
#include <tsmc/models/word_tokenizer.hpp>
#include <tsmc/resampling/ancestors.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <array>
#include <charconv>
#include <cctype>
#include <cmath>
#include <cstddef>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <istream>
#include <limits>
#include <numeric>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tsmc {

/// @brief Options of Kneser-Ney training, used with designated initialisers.
struct kneser_ney_options {
  std::size_t order = 3;  ///< N, the n-gram order, in [2, 5]
};

/// @brief The three modified Kneser-Ney discounts of one order (Chen and Goodman 1998): D1 for
/// n-grams seen once, D2 twice, D3 three times or more.
struct kneser_ney_discounts {
  double d1 = 0.0;  ///< discount of count-1 n-grams
  double d2 = 0.0;  ///< discount of count-2 n-grams
  double d3 = 0.0;  ///< discount of n-grams with count >= 3
  /// @brief Whether the count-of-counts gave valid discounts (else the fallback was used).
  bool from_counts = true;
};

/// @brief Modified Kneser-Ney discounts from the count-of-counts t1..t4 of one order:
/// Y = t1 / (t1 + 2 t2), D1 = 1 - 2 Y t2 / t1, D2 = 2 - 3 Y t3 / t2, D3+ = 3 - 4 Y t4 / t3
/// (Chen and Goodman 1998, Eq. 26).
///
/// Where a count-of-count is 0 or a discount falls outside (0, k] for D_k (tiny corpora), every
/// discount is Y (Ney's absolute discount) when t1, t2 > 0, else 0.5; from_counts is then false.
///
/// Why Y and not fixed values such as 0.5 / 1 / 1.5: Y = t1 / (t1 + 2 t2) is the leave-one-out
/// estimate of a single absolute discount (Ney, Essen and Kneser 1994), the same quantity the
/// modified formula starts from, so it still adapts to the corpus, and it lies in (0, 1): a
/// fixed D2 = 1 or D3 = 1.5 would take all of a count-2 n-gram's own mass (or most of a count-3
/// one's) and hand it to the lower order, which is a large change where counts are small. The
/// fallback fires where the counts cannot support three discounts, typically the unigram order of
/// a small closed vocabulary (the built-in story world): there continuation counts are mostly
/// large, few words have a count of 3 or 4 (t3 or t4 = 0), and with large counts the choice
/// hardly matters (a word with continuation count N gets (N - D) / total, gamma = sum D / total
/// is small). kneser_ney_discounts::from_counts and ngram_model::discounts() report which applied.
/// @param t counts of n-grams whose (adjusted) count is 1, 2, 3 and 4
/// @return the discounts
[[nodiscard]] inline kneser_ney_discounts kneser_ney_discounts_from(const std::array<double, 4>& t) {
  const auto [t1, t2, t3, t4] = t;
  if (t1 > 0 && t2 > 0 && t3 > 0 && t4 > 0) {
    const double y = t1 / (t1 + 2.0 * t2);
    kneser_ney_discounts d{1.0 - 2.0 * y * t2 / t1, 2.0 - 3.0 * y * t3 / t2, 3.0 - 4.0 * y * t4 / t3, true};
    if (d.d1 > 0.0 && d.d1 <= 1.0 && d.d2 > 0.0 && d.d2 <= 2.0 && d.d3 > 0.0 && d.d3 <= 3.0) return d;
  }
  const double y = (t1 > 0 && t2 > 0) ? t1 / (t1 + 2.0 * t2) : 0.5;
  return {y, y, y, false};
}

namespace detail {

/// A growable n-gram trie used while training or reading: node 0 is the empty context; node
/// (w_1..w_n) has parent (w_1..w_{n-1}) and word w_n. Children are found through a hash map.
struct ngram_trie_builder {
  static constexpr std::uint32_t npos = std::numeric_limits<std::uint32_t>::max();

  std::vector<std::uint32_t> parent{0};
  std::vector<token> word{-1};
  std::vector<std::uint8_t> order{0};
  std::vector<double> log10p{0.0};
  std::vector<double> log10bow{0.0};
  std::unordered_map<std::uint64_t, std::uint32_t> index;

  [[nodiscard]] static std::uint64_t key(std::uint32_t p, token w) noexcept {
    return (static_cast<std::uint64_t>(p) << 32) | static_cast<std::uint32_t>(w);
  }
  [[nodiscard]] std::uint32_t find(std::uint32_t p, token w) const {
    const auto it = index.find(key(p, w));
    return it == index.end() ? npos : it->second;
  }
  /// The child (p, w), created (probability 0, bow 1) when missing; `created` says which.
  std::uint32_t add(std::uint32_t p, token w, bool* created = nullptr) {
    const auto [it, inserted] = index.try_emplace(key(p, w), static_cast<std::uint32_t>(parent.size()));
    if (inserted) {
      parent.push_back(p);
      word.push_back(w);
      order.push_back(static_cast<std::uint8_t>(order[p] + 1));
      log10p.push_back(-std::numeric_limits<double>::infinity());
      log10bow.push_back(0.0);
    }
    if (created != nullptr) *created = inserted;
    return it->second;
  }
  /// The node of a word sequence, or npos.
  [[nodiscard]] std::uint32_t find_path(std::span<const token> words) const {
    std::uint32_t n = 0;
    for (const token w : words) {
      n = find(n, w);
      if (n == npos) return npos;
    }
    return n;
  }
  [[nodiscard]] std::size_t size() const noexcept { return parent.size(); }
};

}  // namespace detail

/// @brief A word n-gram model in backoff form, trained by interpolated modified Kneser-Ney or
/// read from an ARPA file, and a batched tsmc::LanguageModel over K particles.
///
/// Models tsmc::LanguageModel and tsmc::ModelWithFeatures; also answers single queries
/// (next_log_probs, as tsmc::infilling_potential needs). The normaliser cache makes the const
/// queries not thread-safe: use one model per thread.
///
/// features(): a K x d matrix (d = feature_dimension(), 16 by default) of hashed embeddings of
/// the slot's context: sum over positions j = 1..N-1 back from the end of the context and words
/// w there of a fixed pseudo-random vector e(j, w) in [-1, 1]^d / sqrt(N - 1), zero for positions
/// the context does not reach. It is a function of exactly what the model conditions on, at a
/// fixed width whatever V is, and distinct contexts get distinct features with high probability,
/// so a twist head reading it can learn context-dependent twists; it costs (N - 1) d hashes per
/// slot per step.
template <class Lazy = void>
class basic_ngram_model {
 public:
  /// @brief The largest order read or trained.
  static constexpr std::size_t max_order = 9;

  /// @brief Trains an interpolated modified Kneser-Ney model (Chen and Goodman 1998, Section 3;
  /// the adjusted counts, discounts and unigram interpolation with the uniform distribution as
  /// KenLM does).
  ///
  /// Each sentence is padded as `<s>` s_1 .. s_L `</s>`. Adjusted counts: a(g) is g's count when
  /// g has order N or begins with `<s>`, else the number of distinct words that precede g (its
  /// continuation count). Per order n, the discounts come from the count-of-counts of a
  /// (kneser_ney_discounts_from). For a context h with successors counted by a:
  ///   p_n(w | h) = max(a(h w) - D(a(h w)), 0) / sum_v a(h v) + gamma(h) p_{n-1}(w | h[2:]),
  ///   gamma(h) = (D1 N1(h) + D2 N2(h) + D3 N3+(h)) / sum_v a(h v),
  /// with N_k(h) the number of successors whose a is k (3 or more for N3+), and at the lowest
  /// order p_0(w) = 1 / (V - 1), uniform over the vocabulary without `<s>`. A context never seen
  /// backs off entirely: p_n(w | h) = p_{n-1}(w | h[2:]).
  /// @param vocabulary the word vocabulary (token ids of the sentences)
  /// @param sentences token ids without `<s>`; a final `</s>` is allowed (and ignored)
  /// @param options the order N in [2, 5]
  /// @return the trained model
  /// @throw tsmc::invalid_argument if the order is outside [2, 5], a token is outside [0, V), a
  /// sentence contains `<s>` or a `</s>` before its end, or there are no sentences
  [[nodiscard]] static basic_ngram_model train_kneser_ney(const word_tokenizer& vocabulary,
                                                    std::span<const token_sequence> sentences,
                                                    kneser_ney_options options = {}) {
    constexpr const char* function = "ngram_model::train_kneser_ney";
    check_argument(options.order >= 2 && options.order <= 5, function, "options.order", "must be in [2, 5]",
                   options.order);
    check_positive(function, "sentences.size()", sentences.size());
    const std::size_t n_max = options.order;
    const std::size_t vocab = vocabulary.vocab_size();
    const token bos = word_tokenizer::start_token;
    const token eos = word_tokenizer::end_token;

    detail::ngram_trie_builder trie;
    std::vector<double> raw{0.0};
    token_sequence padded;
    for (std::size_t i = 0; i < sentences.size(); ++i) {
      const token_sequence& s = sentences[i];
      const std::string name = "sentences[" + std::to_string(i) + "]";
      check_tokens(s, vocab, function, name);
      padded.assign(1, bos);
      for (std::size_t j = 0; j < s.size(); ++j) {
        if (s[j] == bos) throw_invalid_argument(function, name, "must not contain <s> (1)", tokens_text(s));
        if (s[j] == eos && j + 1 != s.size())
          throw_invalid_argument(function, name, "must not contain </s> (2) before its end", tokens_text(s));
        if (s[j] != eos) padded.push_back(s[j]);
      }
      padded.push_back(eos);
      // Every n-gram x_j..x_i with i >= 1 and n <= N is visited once: walk from each start j.
      for (std::size_t j = 0; j < padded.size(); ++j) {
        std::uint32_t node = 0;
        for (std::size_t i = j; i < padded.size() && i < j + n_max; ++i) {
          node = trie.add(node, padded[i]);
          if (node >= raw.size()) raw.resize(node + 1, 0.0);
          if (i >= 1) raw[node] += 1.0;
        }
      }
    }
    // Every word but <s> is a unigram (unseen ones get the uniform share); <s> is a context only.
    for (token w = 0; static_cast<std::size_t>(w) < vocab; ++w) trie.add(0, w);
    const std::size_t nodes = trie.size();
    raw.resize(nodes, 0.0);

    // Suffix links (w_2..w_n) and starts-with-<s>, then adjusted counts.
    std::vector<std::uint32_t> suffix(nodes, 0);
    std::vector<std::uint8_t> starts_bos(nodes, 0);
    {
      token_sequence words;
      for (std::uint32_t v = 1; v < nodes; ++v) {
        words.clear();
        for (std::uint32_t u = v; u != 0; u = trie.parent[u]) words.push_back(trie.word[u]);
        std::reverse(words.begin(), words.end());
        starts_bos[v] = words.front() == bos ? 1 : 0;
        suffix[v] = words.size() == 1 ? 0 : trie.find_path(std::span<const token>(words).subspan(1));
        TSMC_ASSERT(suffix[v] != detail::ngram_trie_builder::npos);
      }
    }
    std::vector<double> adjusted(nodes, 0.0);
    {
      std::vector<double> left(nodes, 0.0);
      for (std::uint32_t v = 1; v < nodes; ++v)
        if (trie.order[v] >= 2 && raw[v] > 0.0) left[suffix[v]] += 1.0;
      for (std::uint32_t v = 1; v < nodes; ++v)
        adjusted[v] = (trie.order[v] == n_max || starts_bos[v]) ? raw[v] : left[v];
    }

    // Discounts per order from the count-of-counts of the adjusted counts.
    std::vector<std::array<double, 4>> count_of_counts(n_max + 1, std::array<double, 4>{});
    for (std::uint32_t v = 1; v < nodes; ++v) {
      const double a = adjusted[v];
      if (a >= 1.0 && a <= 4.0) count_of_counts[trie.order[v]][static_cast<std::size_t>(a) - 1] += 1.0;
    }
    std::vector<kneser_ney_discounts> discounts(n_max);
    for (std::size_t n = 1; n <= n_max; ++n) discounts[n - 1] = kneser_ney_discounts_from(count_of_counts[n]);
    const auto discount = [&](std::size_t n, double a) {
      const kneser_ney_discounts& d = discounts[n - 1];
      return a <= 0.0 ? 0.0 : a < 2.0 ? d.d1 : a < 3.0 ? d.d2 : d.d3;
    };

    // Per context: the total of its successors' adjusted counts and the discounted mass.
    std::vector<double> total(nodes, 0.0), discounted(nodes, 0.0);
    for (std::uint32_t v = 1; v < nodes; ++v) {
      const std::uint32_t h = trie.parent[v];
      total[h] += adjusted[v];
      discounted[h] += discount(trie.order[v], adjusted[v]);
    }
    // Probabilities by increasing order (a node's suffix has a lower order).
    std::vector<std::uint32_t> by_order(nodes);
    std::iota(by_order.begin(), by_order.end(), 0u);
    std::stable_sort(by_order.begin(), by_order.end(),
                     [&](std::uint32_t a, std::uint32_t b) { return trie.order[a] < trie.order[b]; });
    std::vector<double> prob(nodes, 0.0);
    const double uniform = 1.0 / static_cast<double>(vocab - 1);
    for (const std::uint32_t v : by_order) {
      if (v == 0) continue;
      const std::uint32_t h = trie.parent[v];
      const double gamma = discounted[h] / total[h];
      const double alpha = std::max(adjusted[v] - discount(trie.order[v], adjusted[v]), 0.0) / total[h];
      const double lower = trie.order[v] == 1 ? uniform : prob[suffix[v]];
      prob[v] = alpha + gamma * lower;
    }
    for (std::uint32_t v = 1; v < nodes; ++v) {
      const bool is_bos_unigram = trie.order[v] == 1 && trie.word[v] == bos;
      trie.log10p[v] = is_bos_unigram ? -std::numeric_limits<double>::infinity() : std::log10(prob[v]);
      trie.log10bow[v] = total[v] > 0.0 ? std::log10(discounted[v] / total[v]) : 0.0;
    }
    basic_ngram_model model(vocabulary, n_max, std::move(trie));
    model.discounts_ = std::move(discounts);
    return model;
  }

  /// @brief Trains from text sentences, encoded with the vocabulary (unknown words become `<unk>`).
  /// @param vocabulary the word vocabulary
  /// @param sentences one sentence per string
  /// @param options the order N in [2, 5]
  /// @return the trained model
  /// @throw tsmc::invalid_argument as the token overload
  [[nodiscard]] static basic_ngram_model train_kneser_ney(const word_tokenizer& vocabulary,
                                                    std::span<const std::string> sentences,
                                                    kneser_ney_options options = {}) {
    std::vector<token_sequence> encoded;
    encoded.reserve(sentences.size());
    for (const std::string& s : sentences) encoded.push_back(vocabulary.encode(s));
    return train_kneser_ney(vocabulary, std::span<const token_sequence>(encoded), options);
  }

  /// @brief Reads a model from an ARPA file's text (as KenLM, SRILM and IRSTLM write them).
  ///
  /// Lines before `\data\` are ignored, and so is a UTF-8 byte-order mark before it. The header's `ngram n=c` lines give the orders 1..N
  /// (N <= 9) and their counts; each `\n-grams:` section must list exactly c entries
  /// "log10 p  w_1 .. w_n  [log10 bow]" (bow only below the highest order; whitespace of any
  /// kind separates fields), then `\end\`. The vocabulary is the unigrams, in file order after
  /// the special tokens; `<unk>` and `<s>` are added with probability 0 when missing, `<s>`'s own
  /// probability is ignored (it is 0), and `</s>` is required. A listed n-gram whose context is
  /// not listed gets that context added with its backed-off probability and bow 1, which changes
  /// no probability. Probabilities may be -inf (or -99, 10^-99); rows are renormalised (see the
  /// file's documentation). An n-gram with `<s>` after its first word (IRSTLM writes `<s> <s>`
  /// and `<s> <s> w`: it pads histories with `<s>`) is skipped: `<s>` is never predicted and a
  /// history holds it only first, so no query reaches such an n-gram and skipping it changes no
  /// probability. Words keep their case; a vocabulary with cased words makes the model's
  /// tokenizer keep the case of the text it encodes (tsmc::word_case).
  /// @param in the stream
  /// @return the model
  /// @throw tsmc::runtime_error "tsmc::ngram_model::read_arpa: line L: ..." for a malformed file: no
  /// `\data\`, a bad or missing count, a missing or out-of-order section, a wrong number of
  /// fields, a number that does not parse, a NaN or +inf, a log10 probability above 0, a
  /// non-finite bow, a word in a higher order that is not a unigram, a repeated n-gram, no
  /// `</s>`, fewer entries than declared, no `\end\`
  [[nodiscard]] static basic_ngram_model read_arpa(std::istream& in);

  /// @brief Reads an ARPA file (see read_arpa).
  /// @param path the file
  /// @return the model
  /// @throw tsmc::runtime_error if the path is a directory or the file cannot be opened, or as read_arpa
  [[nodiscard]] static basic_ngram_model load_arpa(const std::string& path) {
    std::error_code ignored;
    if (std::filesystem::is_directory(path, ignored))
      throw_runtime_error("ngram_model::load_arpa", "path", "must name an ARPA file, not a directory", path);
    std::ifstream in(path, std::ios::binary);
    if (!in) throw_runtime_error("ngram_model::load_arpa", "path", "must name a readable file", path);
    return read_arpa(in);
  }

  /// @brief Writes the model as an ARPA file: log10 values in the shortest form that reads back
  /// as the same double (so a written-then-read model gives identical probabilities), `<s>` with
  /// probability -99, bows on every n-gram that is a context.
  /// @param out the stream
  /// @throw tsmc::runtime_error if the stream fails
  void write_arpa(std::ostream& out) const {
    out << "\\data\\\n";
    std::vector<std::size_t> counts(order_ + 1, 0);
    for (std::size_t v = 1; v < node_count(); ++v) ++counts[node_order_[v]];
    for (std::size_t n = 1; n <= order_; ++n) out << "ngram " << n << '=' << counts[n] << '\n';
    token_sequence words;
    std::size_t v = 1;
    for (std::size_t n = 1; n <= order_; ++n) {
      out << "\n\\" << n << "-grams:\n";
      for (; v < node_count() && node_order_[v] == n; ++v) {
        const bool is_bos = n == 1 && node_word_[v] == word_tokenizer::start_token;
        out << (is_bos ? std::string("-99") : detail::format_double(node_log10p_[v])) << '\t';
        words.clear();
        for (std::uint32_t u = static_cast<std::uint32_t>(v); u != 0; u = node_parent_[u]) words.push_back(node_word_[u]);
        for (std::size_t i = words.size(); i-- > 0;) {
          out << vocabulary_.words()[static_cast<std::size_t>(words[i])];
          if (i > 0) out << ' ';
        }
        if (n < order_ && child_count_[v] > 0) out << '\t' << detail::format_double(node_log10bow_[v]);
        out << '\n';
      }
    }
    out << "\n\\end\\\n";
    if (!out) throw_runtime_error("ngram_model::write_arpa", "stream", "must accept the output", "a write error");
  }

  /// @brief Writes the model to an ARPA file (see write_arpa), atomically
  /// (tsmc::write_file_atomically: a temporary file next to it, every write and the close
  /// checked, then a rename over `path`): a failed save (a full disk, a missing directory)
  /// leaves the previous file byte-identical and no temporary file.
  /// @param path the file (replaced)
  /// @throw tsmc::runtime_error if the file cannot be written in full
  void save_arpa(const std::string& path) const {
    write_file_atomically(path, [this](std::ostream& out) { write_arpa(out); }, "ngram_model::save_arpa");
  }

  // --- LanguageModel -------------------------------------------------------------------------

  /// @brief V, the vocabulary size (special tokens included).
  [[nodiscard]] std::size_t vocab_size() const noexcept { return vocab_; }

  /// @brief Positions K particles after `<s>` and the prompt (a prompt that starts with `<s>`
  /// is not given a second one).
  /// @param prompt token ids in [0, V)
  /// @param particles K > 0
  /// @throw tsmc::invalid_argument if K is 0 or a prompt token is outside [0, V)
  void start(std::span<const token> prompt, std::size_t particles) {
    constexpr const char* function = "ngram_model::start";
    check_positive(function, "particles", particles);
    check_tokens(prompt, vocab_, function, "prompt");
    state_.assign(particles, context_of(prompt));
    if (feature_dim_ > 0) {
      features_.resize(static_cast<Eigen::Index>(particles), static_cast<Eigen::Index>(feature_dim_));
      for (std::size_t k = 0; k < particles; ++k) write_features(k);
    }
  }

  /// @brief Writes the K x V next-token log-probabilities, each row normalised exactly.
  /// @param out K x V
  /// @throw tsmc::invalid_argument if out's shape is not K x V
  void log_probs(log_prob_ref out) { log_probs(out, std::span<const std::uint8_t>()); }

  /// @brief As log_probs(out), skipping the rows of finished particles (active[k] == 0; their
  /// rows are left as they are). An empty active span means all rows.
  /// @param out K x V
  /// @param active K flags, or empty
  /// @throw tsmc::invalid_argument if out's shape is not K x V or active has another size
  void log_probs(log_prob_ref out, std::span<const std::uint8_t> active) {
    constexpr const char* function = "ngram_model::log_probs";
    check_size(function, "out.rows()", out.rows(), "the number of particles", state_.size());
    check_size(function, "out.cols()", out.cols(), "vocab_size", vocab_);
    if (!active.empty()) check_size(function, "active.size()", active.size(), "the number of particles", state_.size());
    for (std::size_t k = 0; k < state_.size(); ++k) {
      if (!active.empty() && active[k] == 0) continue;
      write_row(state_[k], out.row(static_cast<Eigen::Index>(k)).data());
    }
  }

  /// @brief Extends every particle by one token.
  /// @param tokens K token ids in [0, V)
  /// @throw tsmc::invalid_argument on a size mismatch or a token outside [0, V)
  void append(std::span<const token> tokens) {
    constexpr const char* function = "ngram_model::append";
    check_size(function, "tokens.size()", tokens.size(), "the number of particles", state_.size());
    check_tokens(tokens, vocab_, function, "tokens");
    for (std::size_t k = 0; k < state_.size(); ++k) {
      state_[k] = next_context(state_[k], tokens[k]);
      if (feature_dim_ > 0) write_features(k);
    }
  }

  /// @brief Slot k takes the context of slot ancestors[k] (copies only where ancestors[k] != k;
  /// any ancestor vector works).
  /// @param ancestors K indices in [0, K)
  /// @throw tsmc::invalid_argument on a size mismatch or an ancestor out of range
  void reorder(std::span<const particle_index> ancestors) {
    (void)detail::copy_from_ancestors("ngram_model::reorder", state_, ancestors);
    if (feature_dim_ > 0)
      for (std::size_t k = 0; k < state_.size(); ++k)
        if (ancestors[k] != k) write_features(k);
  }

  /// @brief Appends slot `slot`'s state to `out`: its context id (4 bytes, the host's byte
  /// order). The slot-state hook of tsmc::SlotStateModel (the distributed sampler ships
  /// particles between ranks with it); a copy of this model in another process reads it back.
  /// @throw tsmc::invalid_argument if slot is not a particle of the current run
  void export_slot(std::size_t slot, std::vector<std::byte>& out) const {
    check_argument(slot < state_.size(), "ngram_model::export_slot", "slot",
                   "must be < the number of particles " + std::to_string(state_.size()), slot);
    const auto* p = reinterpret_cast<const std::byte*>(&state_[slot]);
    out.insert(out.end(), p, p + sizeof(std::uint32_t));
  }

  /// @brief Makes slot `slot`'s state the one export_slot wrote (by this model or a copy of it).
  /// @throw tsmc::invalid_argument if slot is not a particle of the current run, bytes is not 4
  /// bytes, or the context id is not one of this model's
  void import_slot(std::size_t slot, std::span<const std::byte> bytes) {
    constexpr const char* function = "ngram_model::import_slot";
    check_argument(slot < state_.size(), function, "slot",
                   "must be < the number of particles " + std::to_string(state_.size()), slot);
    check_argument(bytes.size() == sizeof(std::uint32_t), function, "bytes.size()",
                   "must be 4 (one context id, as export_slot writes)", bytes.size());
    std::uint32_t context = 0;
    std::memcpy(&context, bytes.data(), sizeof context);
    check_argument(context < node_parent_.size(), function, "the context id",
                   "must be one of this model's " + std::to_string(node_parent_.size()) + " contexts", context);
    state_[slot] = context;
    if (feature_dim_ > 0) write_features(slot);
  }

  /// @brief The K x d hashed context embeddings (see the class documentation); 0 columns when
  /// the feature dimension is 0.
  [[nodiscard]] const feature_matrix& features() const noexcept { return features_; }

  /// @brief d, the number of feature columns.
  [[nodiscard]] std::size_t feature_dimension() const noexcept { return feature_dim_; }

  /// @brief Sets the feature dimension and the seed of the embeddings (takes effect at the next
  /// start()).
  /// @param dimension d (0 disables features)
  /// @param seed the embeddings' seed
  void set_features(std::size_t dimension, std::uint64_t seed = 0) {
    feature_dim_ = dimension;
    feature_seed_ = seed;
    features_.resize(0, static_cast<Eigen::Index>(dimension));
    state_.clear();
  }

  // --- queries -------------------------------------------------------------------------------

  /// @brief N, the highest order.
  [[nodiscard]] std::size_t order() const noexcept { return order_; }

  /// @brief The vocabulary (the tokenizer that encodes text for this model).
  [[nodiscard]] const word_tokenizer& vocabulary() const noexcept { return vocabulary_; }

  /// @brief The number of listed n-grams of order n.
  [[nodiscard]] std::size_t ngram_count(std::size_t n) const {
    return static_cast<std::size_t>(std::count(node_order_.begin(), node_order_.end(), static_cast<std::uint8_t>(n)));
  }

  /// @brief The Kneser-Ney discounts of orders 1..N (index n - 1) of a trained model; empty for
  /// a model read from ARPA.
  [[nodiscard]] std::span<const kneser_ney_discounts> discounts() const noexcept { return discounts_; }

  /// @brief The particles' contexts as node ids (for tests and tools).
  [[nodiscard]] std::span<const std::uint32_t> contexts() const noexcept { return state_; }

  /// @brief Writes log p(. | `<s>` prompt prefix) over the vocabulary (the query form
  /// tsmc::infilling_potential uses).
  /// @param prompt token ids
  /// @param prefix token ids after the prompt
  /// @param out V values
  /// @throw tsmc::invalid_argument if out.size() != V or a token is outside [0, V)
  void next_log_probs(std::span<const token> prompt, std::span<const token> prefix, std::span<double> out) const {
    constexpr const char* function = "ngram_model::next_log_probs";
    check_size(function, "out.size()", out.size(), "vocab_size", vocab_);
    check_tokens(prompt, vocab_, function, "prompt");
    check_tokens(prefix, vocab_, function, "prefix");
    std::uint32_t c = context_of(prompt);
    for (const token t : prefix) c = next_context(c, t);
    write_row(c, out.data());
  }

  /// @brief log p(w | `<s>` history), normalised as the rows are.
  /// @param history token ids after `<s>`
  /// @param w the next token
  /// @return the natural log-probability (-inf for `<s>`)
  /// @throw tsmc::invalid_argument if a token is outside [0, V)
  [[nodiscard]] double log_prob(std::span<const token> history, token w) const {
    constexpr const char* function = "ngram_model::log_prob";
    check_tokens(history, vocab_, function, "history");
    check_tokens(std::span<const token>(&w, 1), vocab_, function, "w");
    std::uint32_t c = context_of(std::span<const token>());
    for (const token t : history) c = next_context(c, t);
    return entry(c, w);
  }

  /// @brief log p(s_1 .. s_L `</s>` | `<s>`): a sentence's log-probability including its end.
  /// @param sentence token ids without `<s>` or `</s>`
  /// @return the natural log-probability
  /// @throw tsmc::invalid_argument if a token is outside [0, V)
  [[nodiscard]] double sentence_log_prob(std::span<const token> sentence) const {
    check_tokens(sentence, vocab_, "ngram_model::sentence_log_prob", "sentence");
    std::uint32_t c = context_of(std::span<const token>());
    double total = 0.0;
    for (const token t : sentence) {
      total += entry(c, t);
      c = next_context(c, t);
    }
    return total + entry(c, word_tokenizer::end_token);
  }

  /// @brief Perplexity exp(-sum log p / tokens) over sentences, each with its `</s>` counted.
  /// @param sentences token ids without `<s>` or `</s>`
  /// @return the perplexity (+inf if a token has probability 0)
  /// @throw tsmc::invalid_argument if there are no sentences or a token is outside [0, V)
  [[nodiscard]] double perplexity(std::span<const token_sequence> sentences) const {
    check_positive("ngram_model::perplexity", "sentences.size()", sentences.size());
    double total = 0.0;
    std::size_t count = 0;
    for (const token_sequence& s : sentences) {
      total += sentence_log_prob(s);
      count += s.size() + 1;
    }
    return std::exp(-total / static_cast<double>(count));
  }

  /// @brief Forgets the cached row normalisers (they are recomputed on demand).
  void clear_cache() const { std::fill(log_norm_.begin(), log_norm_.end(), std::numeric_limits<double>::quiet_NaN()); }

  /// @brief The context node after `<s>` and these tokens (the state a slot would have).
  /// @param history token ids in [0, V) (unchecked)
  [[nodiscard]] std::uint32_t context_of(std::span<const token> history) const {
    std::uint32_t c = bos_context_;
    std::size_t i = 0;
    if (!history.empty() && history[0] == word_tokenizer::start_token) i = 1;
    for (; i < history.size(); ++i) c = next_context(c, history[i]);
    return c;
  }

 private:
  basic_ngram_model(word_tokenizer vocabulary, std::size_t order, detail::ngram_trie_builder trie)
      : vocabulary_(std::move(vocabulary)), vocab_(vocabulary_.vocab_size()), order_(order) {
    finish(trie);
  }

  [[nodiscard]] std::size_t node_count() const noexcept { return node_word_.size(); }

  /// Renumbers the trie so that every node's children are consecutive ids sorted by word, in
  /// order of increasing n-gram order; builds suffix links, the unigram table and log values.
  void finish(const detail::ngram_trie_builder& trie) {
    const std::size_t nodes = trie.size();
    std::vector<std::uint32_t> old_of;  // new id -> old id
    old_of.reserve(nodes);
    old_of.push_back(0);
    std::vector<std::uint32_t> new_of(nodes, 0);
    std::vector<std::vector<std::uint32_t>> by_order(order_ + 1);
    for (std::uint32_t v = 1; v < nodes; ++v) by_order[trie.order[v]].push_back(v);
    for (std::size_t n = 1; n <= order_; ++n) {
      auto& level = by_order[n];
      std::sort(level.begin(), level.end(), [&](std::uint32_t a, std::uint32_t b) {
        const std::uint32_t pa = new_of[trie.parent[a]], pb = new_of[trie.parent[b]];
        return pa != pb ? pa < pb : trie.word[a] < trie.word[b];
      });
      for (const std::uint32_t v : level) {
        new_of[v] = static_cast<std::uint32_t>(old_of.size());
        old_of.push_back(v);
      }
    }
    node_word_.resize(nodes);
    node_parent_.resize(nodes);
    node_order_.resize(nodes);
    node_log10p_.resize(nodes);
    node_log10bow_.resize(nodes);
    node_lnp_.resize(nodes);
    node_lnbow_.resize(nodes);
    first_child_.assign(nodes, 0);
    child_count_.assign(nodes, 0);
    constexpr double ln10 = 2.302585092994045684;
    for (std::uint32_t v = 0; v < nodes; ++v) {
      const std::uint32_t o = old_of[v];
      node_word_[v] = trie.word[o];
      node_parent_[v] = new_of[trie.parent[o]];
      node_order_[v] = trie.order[o];
      node_log10p_[v] = trie.log10p[o];
      node_log10bow_[v] = trie.log10bow[o];
      node_lnp_[v] = trie.log10p[o] * ln10;
      node_lnbow_[v] = trie.log10bow[o] * ln10;
      if (v > 0) {
        const std::uint32_t p = node_parent_[v];
        if (child_count_[p] == 0) first_child_[p] = v;
        ++child_count_[p];
      }
    }
    node_parent_[0] = 0;
    unigram_node_.assign(vocab_, npos);
    for (std::uint32_t i = 0; i < child_count_[0]; ++i) {
      const std::uint32_t v = first_child_[0] + i;
      unigram_node_[static_cast<std::size_t>(node_word_[v])] = v;
    }
    unigram_lnp_ = Eigen::ArrayXd::Constant(static_cast<Eigen::Index>(vocab_), neg_inf);
    for (std::size_t w = 0; w < vocab_; ++w)
      if (unigram_node_[w] != npos) unigram_lnp_[static_cast<Eigen::Index>(w)] = node_lnp_[unigram_node_[w]];
    unigram_lnp_[word_tokenizer::start_token] = neg_inf;
    // Suffix links: the longest proper suffix that is a node.
    suffix_.assign(nodes, 0);
    token_sequence words;
    for (std::uint32_t v = 1; v < nodes; ++v) {
      if (node_order_[v] < 2) continue;
      words.clear();
      for (std::uint32_t u = v; u != 0; u = node_parent_[u]) words.push_back(node_word_[u]);
      std::reverse(words.begin(), words.end());
      for (std::size_t drop = 1; drop < words.size(); ++drop) {
        const std::uint32_t s = find_path(std::span<const token>(words).subspan(drop));
        if (s != npos) {
          suffix_[v] = s;
          break;
        }
      }
    }
    log_norm_.assign(nodes, std::numeric_limits<double>::quiet_NaN());
    const std::uint32_t b = unigram_node_[word_tokenizer::start_token];
    bos_context_ = (b != npos && order_ >= 2) ? b : 0;
  }

  static constexpr std::uint32_t npos = std::numeric_limits<std::uint32_t>::max();

  /// The child of node c with word w, or npos.
  [[nodiscard]] std::uint32_t child(std::uint32_t c, token w) const noexcept {
    if (c == 0) return unigram_node_[static_cast<std::size_t>(w)];
    const std::uint32_t first = first_child_[c];
    const std::uint32_t count = child_count_[c];
    if (count == 0) return npos;
    const token* begin = node_word_.data() + first;
    const token* end = begin + count;
    const token* it = std::lower_bound(begin, end, w);
    return (it != end && *it == w) ? first + static_cast<std::uint32_t>(it - begin) : npos;
  }

  [[nodiscard]] std::uint32_t find_path(std::span<const token> words) const noexcept {
    std::uint32_t c = 0;
    for (const token w : words) {
      c = child(c, w);
      if (c == npos) return npos;
    }
    return c;
  }

  /// The context after c and w: the longest suffix of (c, w) that is a node of order <= N - 1.
  [[nodiscard]] std::uint32_t next_context(std::uint32_t c, token w) const noexcept {
    if (w == word_tokenizer::end_token) return bos_context_;
    if (static_cast<std::size_t>(node_order_[c]) + 1 > order_ - 1) {
      if (c == 0) return 0;
      c = suffix_[c];
    }
    for (;;) {
      const std::uint32_t n = child(c, w);
      if (n != npos) return n;
      if (c == 0) return 0;
      c = suffix_[c];
    }
  }

  /// Writes the row of context c (normalised) into out[0..V). The row is always formed as
  /// log p_backoff + (bows - log normaliser), so a context's row is the same bits whether its
  /// normaliser was cached or not (on a context's first visit the row is formed twice).
  void write_row(std::uint32_t c, double* out) const {
    double log_norm = log_norm_[c];
    if (std::isnan(log_norm)) {
      write_unnormalised(c, out, 0.0);
      log_norm = logsumexp(Eigen::Map<const Eigen::VectorXd>(out, static_cast<Eigen::Index>(vocab_)));
      if (!std::isfinite(log_norm))
        throw_runtime_error("ngram_model::log_probs", "the row of context node " + std::to_string(c),
                            "must give some word a positive, finite probability (log normaliser)", log_norm);
      log_norm_[c] = log_norm;
    }
    write_unnormalised(c, out, log_norm);
  }

  /// out[w] = log p_backoff(w | c) - shift for every w.
  void write_unnormalised(std::uint32_t c, double* out, double shift) const {
    std::array<std::uint32_t, max_order + 1> chain{};
    std::array<double, max_order + 1> above{};  // sum of the bows of the longer contexts
    std::size_t m = 0;
    double acc = 0.0;
    for (std::uint32_t u = c; u != 0; u = suffix_[u]) {
      chain[m] = u;
      above[m] = acc;
      acc += node_lnbow_[u];
      ++m;
    }
    Eigen::Map<Eigen::ArrayXd>(out, static_cast<Eigen::Index>(vocab_)) = unigram_lnp_ + (acc - shift);
    for (std::size_t j = m; j-- > 0;) {  // shortest context first, longest last (it wins)
      const std::uint32_t u = chain[j];
      const double offset = above[j] - shift;
      const std::uint32_t first = first_child_[u];
      const std::uint32_t end = first + child_count_[u];
      for (std::uint32_t ch = first; ch < end; ++ch)
        out[static_cast<std::size_t>(node_word_[ch])] = node_lnp_[ch] + offset;
    }
    out[word_tokenizer::start_token] = neg_inf;
  }

  /// log p(w | c), normalised: the same value as write_row's entry w.
  [[nodiscard]] double entry(std::uint32_t c, token w) const {
    if (w == word_tokenizer::start_token) return neg_inf;
    if (std::isnan(log_norm_[c])) {
      std::vector<double> row(vocab_);
      write_row(c, row.data());
      return row[static_cast<std::size_t>(w)];
    }
    double above = 0.0;
    for (std::uint32_t u = c; u != 0; u = suffix_[u]) {
      const std::uint32_t n = child(u, w);
      if (n != npos) return node_lnp_[n] + (above - log_norm_[c]);
      above += node_lnbow_[u];
    }
    return unigram_lnp_[static_cast<Eigen::Index>(w)] + (above - log_norm_[c]);
  }

  void write_features(std::size_t k) {
    const auto row = static_cast<Eigen::Index>(k);
    features_.row(row).setZero();
    const float scale = 1.0f / std::sqrt(static_cast<float>(std::max<std::size_t>(order_ - 1, 1)));
    std::size_t position = 0;
    for (std::uint32_t u = state_[k]; u != 0; u = node_parent_[u], ++position) {
      const std::uint64_t base =
          splitmix64_mix(feature_seed_ ^ splitmix64_mix((static_cast<std::uint64_t>(position) << 32) ^
                                                        static_cast<std::uint32_t>(node_word_[u])));
      for (std::size_t i = 0; i < feature_dim_; ++i) {
        const std::uint64_t bits = splitmix64_mix(base + i);
        const float uniform = static_cast<float>(static_cast<double>(bits >> 11) * 0x1.0p-53) * 2.0f - 1.0f;
        features_(row, static_cast<Eigen::Index>(i)) += scale * uniform;
      }
    }
  }

  word_tokenizer vocabulary_;
  std::size_t vocab_ = 0;
  std::size_t order_ = 0;
  std::vector<kneser_ney_discounts> discounts_;

  // Nodes: 0 is the empty context; children of a node are consecutive ids sorted by word.
  std::vector<token> node_word_;
  std::vector<std::uint32_t> node_parent_;
  std::vector<std::uint8_t> node_order_;
  std::vector<double> node_log10p_, node_log10bow_;  // the values as written to / read from ARPA
  std::vector<double> node_lnp_, node_lnbow_;        // the same in natural logarithms
  std::vector<std::uint32_t> first_child_, child_count_, suffix_;
  std::vector<std::uint32_t> unigram_node_;
  Eigen::ArrayXd unigram_lnp_;
  mutable std::vector<double> log_norm_;  // per context: log sum_v p_backoff(v | c); NaN = not yet
  std::uint32_t bos_context_ = 0;

  // Particles.
  std::vector<std::uint32_t> state_;
  std::size_t feature_dim_ = 16;
  std::uint64_t feature_seed_ = 0;
  feature_matrix features_;
};

/// @brief The library's ngram_model: basic_ngram_model is a template only so that its member
/// functions are compiled in the translation units that use them (docs/architecture.md, "Compile weight").
using ngram_model = basic_ngram_model<>;

namespace detail {

[[noreturn]] inline void arpa_error(std::size_t line, const std::string& problem, std::string_view got) {
  throw_runtime_error("ngram_model::read_arpa", "line " + std::to_string(line) + ":", problem, "'" + std::string(got) + "'");
}

}  // namespace detail

template <class Lazy>
basic_ngram_model<Lazy> basic_ngram_model<Lazy>::read_arpa(std::istream& in) {
  detail::text_lines lines(in);
  std::string_view t;
  const std::string eof = "end of file";
  // Header.
  bool found = false;
  while (lines.next(t)) {
    if (lines.number() == 1 && t.substr(0, 3) == "\xEF\xBB\xBF") t = detail::trim_text(t.substr(3));  // a UTF-8 BOM
    if (t == "\\data\\") {
      found = true;
      break;
    }
  }
  if (!found) detail::arpa_error(lines.number() + 1, "the file must contain a '\\data\\' header", eof);
  std::vector<std::size_t> counts;
  for (;;) {
    if (!lines.next(t)) detail::arpa_error(lines.number() + 1, "truncated: the header must be followed by sections", eof);
    if (t.empty()) {
      if (counts.empty()) continue;
      break;
    }
    if (t.front() == '\\') {
      lines.push_back();
      break;
    }
    std::size_t n = 0, c = 0;
    const std::size_t eq = t.find('=');
    const std::string_view head = eq == std::string_view::npos ? t : detail::trim_text(t.substr(0, eq));
    const bool ok = eq != std::string_view::npos && head.substr(0, 5) == "ngram" && head.size() > 5 &&
                    std::isspace(static_cast<unsigned char>(head[5])) &&
                    detail::parse_count(detail::trim_text(head.substr(5)), n) &&
                    detail::parse_count(detail::trim_text(t.substr(eq + 1)), c);
    if (!ok) detail::arpa_error(lines.number(), "a count line must read 'ngram <order>=<count>' with non-negative integers", t);
    if (n != counts.size() + 1)
      detail::arpa_error(lines.number(), "orders must be declared in sequence 1, 2, ..., expected order " +
                                             std::to_string(counts.size() + 1), t);
    if (n > max_order) detail::arpa_error(lines.number(), "the order must be at most " + std::to_string(max_order), t);
    if (n == 1 && c == 0) detail::arpa_error(lines.number(), "the number of 1-grams must be positive", t);
    counts.push_back(c);
  }
  if (counts.empty()) detail::arpa_error(lines.number(), "the header must declare 'ngram 1=<count>'", t);
  const std::size_t order = counts.size();

  // Sections.
  detail::ngram_trie_builder trie;
  std::unordered_map<std::string, token> ids{{"<unk>", word_tokenizer::unknown_token},
                                            {"<s>", word_tokenizer::start_token},
                                            {"</s>", word_tokenizer::end_token}};
  std::vector<std::string> words;  // non-special words, in file order
  std::vector<std::uint8_t> listed_special(3, 0);
  token_sequence gram;
  // log10 p(w | context) by backoff over what is listed so far.
  const auto backed_off = [&](std::span<const token> context, token w) {
    double acc = 0.0;
    for (std::size_t drop = 0; drop <= context.size(); ++drop) {
      const std::uint32_t c = trie.find_path(context.subspan(drop));
      if (c == detail::ngram_trie_builder::npos) continue;
      const std::uint32_t child = trie.find(c, w);
      if (child != detail::ngram_trie_builder::npos) return acc + trie.log10p[child];
      acc += trie.log10bow[c];
    }
    return -std::numeric_limits<double>::infinity();
  };
  for (std::size_t n = 1; n <= order; ++n) {
    const std::string header = "\\" + std::to_string(n) + "-grams:";
    if (!lines.next_nonblank(t))
      detail::arpa_error(lines.number() + 1, "truncated: expected the section '" + header + "'", eof);
    if (t != header) detail::arpa_error(lines.number(), "expected the section '" + header + "'", t);
    for (std::size_t i = 0; i < counts[n - 1]; ++i) {
      const std::string short_count = "truncated: section '" + header + "' declares " + std::to_string(counts[n - 1]) +
                                      " entries, found " + std::to_string(i);
      if (!lines.next(t)) detail::arpa_error(lines.number() + 1, short_count, eof);
      if (t.empty() || t.front() == '\\') detail::arpa_error(lines.number(), short_count, t);
      const std::vector<std::string_view> fields = detail::split_fields(t);
      if (fields.size() != n + 1 && !(n < order && fields.size() == n + 2))
        detail::arpa_error(lines.number(),
                           "an entry of '" + header + "' must have a log10 probability, " + std::to_string(n) +
                               " words" + (n < order ? " and an optional log10 backoff" : std::string()),
                           t);
      double log10p = 0.0, log10bow = 0.0;
      if (!detail::parse_double(fields[0], log10p))
        detail::arpa_error(lines.number(), "the log10 probability must be a number", fields[0]);
      if (std::isnan(log10p)) detail::arpa_error(lines.number(), "the log10 probability must not be NaN", fields[0]);
      // IRSTLM prints values such as 2.98e-07 for a probability of 1 (its rounding): a log10
      // probability up to 1e-4 above 0 is read as written (rows are renormalised anyway).
      if (log10p > 1e-4)
        detail::arpa_error(lines.number(), "the log10 probability must be <= 0 (up to 1e-4 of rounding)", fields[0]);
      if (fields.size() == n + 2) {
        if (!detail::parse_double(fields[n + 1], log10bow))
          detail::arpa_error(lines.number(), "the log10 backoff must be a number", fields[n + 1]);
        if (!std::isfinite(log10bow))
          detail::arpa_error(lines.number(), "the log10 backoff must be finite", fields[n + 1]);
      }
      gram.clear();
      for (std::size_t j = 1; j <= n; ++j) {
        const std::string w(fields[j]);
        const auto it = ids.find(w);
        if (n == 1) {
          if (it != ids.end()) {
            if (it->second > word_tokenizer::end_token || listed_special[static_cast<std::size_t>(it->second)])
              detail::arpa_error(lines.number(), "a 1-gram must not be repeated", t);
            listed_special[static_cast<std::size_t>(it->second)] = 1;
            gram.push_back(it->second);
          } else {
            const auto id = static_cast<token>(3 + words.size());
            ids.emplace(w, id);
            words.push_back(w);
            gram.push_back(id);
          }
        } else {
          const bool special_unlisted = it != ids.end() && it->second <= word_tokenizer::end_token &&
                                        !listed_special[static_cast<std::size_t>(it->second)];
          if (it == ids.end() || special_unlisted)
            detail::arpa_error(lines.number(), "every word of a " + std::to_string(n) +
                                                   "-gram must be listed in \\1-grams, unknown word '" + w + "' in",
                               t);
          gram.push_back(it->second);
        }
      }
      // <s> is only ever the first word of a history: an n-gram with <s> anywhere else (IRSTLM
      // writes "<s> <s>" and "<s> <s> w") is one no query can reach, and is skipped.
      if (std::find(gram.begin() + 1, gram.end(), word_tokenizer::start_token) != gram.end()) continue;
      // The context, added with its backed-off probability where the file does not list it.
      std::uint32_t parent = 0;
      for (std::size_t j = 0; j + 1 < n; ++j) {
        const std::uint32_t next = trie.find(parent, gram[j]);
        if (next != detail::ngram_trie_builder::npos) {
          parent = next;
          continue;
        }
        const double lp = backed_off(std::span<const token>(gram).first(j), gram[j]);
        parent = trie.add(parent, gram[j]);
        trie.log10p[parent] = lp;
        trie.log10bow[parent] = 0.0;
      }
      bool created = false;
      const std::uint32_t node = trie.add(parent, gram.back(), &created);
      if (!created) detail::arpa_error(lines.number(), "an n-gram must not be repeated", t);
      trie.log10p[node] = (n == 1 && gram[0] == word_tokenizer::start_token) ? -std::numeric_limits<double>::infinity()
                                                                              : log10p;
      trie.log10bow[node] = log10bow;
    }
    if (n == 1) {
      if (!listed_special[word_tokenizer::end_token])
        detail::arpa_error(lines.number(), "the section '\\1-grams:' must list </s> (the end token)", t);
      for (const token special : {word_tokenizer::unknown_token, word_tokenizer::start_token})
        if (!listed_special[static_cast<std::size_t>(special)]) {
          const std::uint32_t node = trie.add(0, special);  // probability 0; still unknown to higher orders
          trie.log10p[node] = -std::numeric_limits<double>::infinity();
        }
    }
  }
  if (!lines.next_nonblank(t))
    detail::arpa_error(lines.number() + 1, "truncated: the file must end with '\\end\\'", eof);
  if (t != "\\end\\") detail::arpa_error(lines.number(), "expected '\\end\\' after the last section", t);
  return basic_ngram_model(word_tokenizer(std::span<const std::string>(words)), order, std::move(trie));
}

}  // namespace tsmc
