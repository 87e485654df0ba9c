#pragma once
/// @file
/// @brief The built-in story corpus: a probabilistic grammar of short children's-story
/// sentences, each labelled by the grammar with a sentiment and a rare "harmful" attribute, and a
/// reader that turns a user's plain text into sentences.
///
/// A sentence is one clause, or two clauses joined by a connective, then ".". A clause is one of
/// five templates (an action on an object, a feeling, a social act towards another character, a
/// place's description, an insult), and each template is a sequence of slots filled from
/// weighted word tables. Every table entry carries a valence (-2 .. +2) and a rare flag. The
/// sentence's sentiment is the sign of the sum of the valences of all its entries (characters'
/// adjectives, verbs, objects' adjectives, places, feelings, in both clauses), so it depends on
/// words throughout the sentence; the rare attribute is set when any entry is rare (a harmful act
/// such as "kicked", or an insult). Slots are drawn independently, so the exact label
/// probabilities follow by convolving the tables' (valence, rare) distributions:
/// story_grammar::label_probabilities() computes them.

#include <tsmc/core/error.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/models/word_tokenizer.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <initializer_list>
#include <istream>
#include <iterator>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tsmc {

/// @brief A sentence's sentiment as the grammar labels it (the sign of its total valence).
enum class sentiment : int {
  negative = 0,  ///< total valence < 0
  neutral = 1,   ///< total valence == 0
  positive = 2,  ///< total valence > 0
};

/// @brief One generated sentence with the grammar's labels.
struct labelled_sentence {
  std::string text;                         ///< lower-case words separated by single spaces, ending with " ."
  sentiment label = sentiment::neutral;     ///< the sign of the total valence
  bool rare = false;                        ///< whether it contains a harmful act or an insult
  int valence = 0;                          ///< the total valence of its words
};

/// @brief The exact probabilities of the grammar's labels for one sentence.
struct story_label_probabilities {
  std::array<double, 3> sentiment{};  ///< P(negative), P(neutral), P(positive), indexed by tsmc::sentiment
  double rare = 0.0;                  ///< P(the sentence has the rare attribute)
};

namespace detail {

/// One entry of a word table: its words (possibly empty or several), probability, valence, flag.
struct grammar_entry {
  std::string text;
  double probability = 0.0;
  int valence = 0;
  bool rare = false;
};

/// A weight-listed entry for building tables.
struct grammar_item {
  const char* text;
  double weight;
  int valence;
  bool rare;
};

/// The joint distribution of (valence, rare) of a table or a clause: mass[rare][valence].
struct valence_distribution {
  std::array<std::map<int, double>, 2> mass;

  /// The distribution of the sum of two independent draws (rare if either is).
  [[nodiscard]] valence_distribution convolve(const valence_distribution& other) const {
    valence_distribution out;
    for (int ra = 0; ra < 2; ++ra)
      for (int rb = 0; rb < 2; ++rb)
        for (const auto& [va, pa] : mass[static_cast<std::size_t>(ra)])
          for (const auto& [vb, pb] : other.mass[static_cast<std::size_t>(rb)])
            out.mass[static_cast<std::size_t>(ra | rb)][va + vb] += pa * pb;
    return out;
  }

  /// Adds weight * other to this distribution (a mixture component).
  void add(const valence_distribution& other, double weight) {
    for (std::size_t r = 0; r < 2; ++r)
      for (const auto& [v, p] : other.mass[r]) mass[r][v] += weight * p;
  }
};

/// A weighted word table: entries with probabilities summing to one, drawn by inversion.
class word_table {
 public:
  word_table() = default;

  /// A table from weighted items (weights normalised).
  explicit word_table(std::initializer_list<grammar_item> items) {
    double total = 0.0;
    for (const grammar_item& i : items) total += i.weight;
    for (const grammar_item& i : items) entries_.push_back({i.text, i.weight / total, i.valence, i.rare});
    finish();
  }

  /// A table from weighted items (weights normalised).
  explicit word_table(const std::vector<grammar_item>& items) {
    double total = 0.0;
    for (const grammar_item& i : items) total += i.weight;
    for (const grammar_item& i : items) entries_.push_back({i.text, i.weight / total, i.valence, i.rare});
    finish();
  }

  /// The product table: every pair (a, b) with its words joined, probabilities multiplied,
  /// valences added and flags or-ed.
  [[nodiscard]] static word_table product(const word_table& a, const word_table& b) {
    word_table out;
    for (const grammar_entry& x : a.entries_)
      for (const grammar_entry& y : b.entries_)
        out.entries_.push_back({join(x.text, y.text), x.probability * y.probability, x.valence + y.valence,
                                x.rare || y.rare});
    out.finish();
    return out;
  }

  /// The mixture table: a with probability weight_a, b with 1 - weight_a.
  [[nodiscard]] static word_table mixture(const word_table& a, double weight_a, const word_table& b) {
    word_table out;
    for (const grammar_entry& x : a.entries_) out.entries_.push_back({x.text, x.probability * weight_a, x.valence, x.rare});
    for (const grammar_entry& y : b.entries_)
      out.entries_.push_back({y.text, y.probability * (1.0 - weight_a), y.valence, y.rare});
    out.finish();
    return out;
  }

  /// One entry drawn with its probability (one uniform).
  template <RandomEngine Engine>
  [[nodiscard]] const grammar_entry& draw(Engine& rng) const {
    const double u = uniform01(rng);
    const auto it = std::upper_bound(cumulative_.begin(), cumulative_.end(), u);
    const auto index = std::min(static_cast<std::size_t>(it - cumulative_.begin()), entries_.size() - 1);
    return entries_[index];
  }

  /// The table's (valence, rare) distribution.
  [[nodiscard]] valence_distribution distribution() const {
    valence_distribution d;
    for (const grammar_entry& e : entries_) d.mass[e.rare ? 1 : 0][e.valence] += e.probability;
    return d;
  }

  [[nodiscard]] const std::vector<grammar_entry>& entries() const noexcept { return entries_; }

  /// Joins two word strings with a space, skipping empty ones.
  [[nodiscard]] static std::string join(const std::string& a, const std::string& b) {
    if (a.empty()) return b;
    if (b.empty()) return a;
    return a + " " + b;
  }

 private:
  void finish() {
    cumulative_.clear();
    double c = 0.0;
    for (const grammar_entry& e : entries_) cumulative_.push_back(c += e.probability);
    // Normalise against rounding so the last boundary is exactly 1.
    for (double& x : cumulative_) x /= c;
  }

  std::vector<grammar_entry> entries_;
  std::vector<double> cumulative_;
};

}  // namespace detail

/// @brief The built-in story grammar: deterministic labelled sentences from a seed.
///
/// About 260 distinct words; the number of distinct sentences is in the billions (5000 draws are
/// nearly all distinct). Sentiment probabilities (exact, from label_probabilities()): 0.379
/// negative, 0.259 neutral, 0.362 positive; the rare attribute in 1.60% of sentences.
template <class Lazy = void>
class basic_story_grammar {
 public:
  /// @brief The probability that a sentence has two clauses joined by a connective.
  static constexpr double two_clause_probability = 0.4;

  /// @brief Builds the grammar's tables.
  basic_story_grammar() {
    using detail::word_table;
    const word_table names{{"tom", 1, 0, false}, {"lily", 1, 0, false}, {"max", 1, 0, false}, {"mia", 1, 0, false},
                           {"ben", 1, 0, false}, {"sara", 1, 0, false}, {"sam", 1, 0, false}, {"anna", 1, 0, false},
                           {"leo", 1, 0, false}, {"zoe", 1, 0, false}, {"jack", 1, 0, false}, {"emma", 1, 0, false},
                           {"oliver", 1, 0, false}, {"ruby", 1, 0, false}, {"noah", 1, 0, false}, {"ella", 1, 0, false},
                           {"finn", 1, 0, false}, {"grace", 1, 0, false}, {"jake", 1, 0, false}, {"nora", 1, 0, false}};
    const word_table character_adjective{
        {"", 4, 0, false},       {"little", 1, 0, false}, {"old", 1, 0, false},    {"big", 1, 0, false},
        {"young", 1, 0, false},  {"sleepy", 1, 0, false}, {"silly", 1, 0, false},  {"brave", 1, 1, false},
        {"kind", 1, 1, false},   {"happy", 1, 1, false},  {"clever", 1, 1, false}, {"gentle", 1, 1, false},
        {"grumpy", 1, -1, false}, {"sad", 1, -1, false},  {"lazy", 1, -1, false},  {"mean", 1, -1, false},
        {"tiny", 1, 0, false},   {"fluffy", 1, 0, false}, {"friendly", 1, 1, false}, {"rude", 1, -1, false}};
    const word_table character_noun{
        {"fox", 1, 0, false},     {"rabbit", 1, 0, false},   {"owl", 1, 0, false},     {"bear", 1, 0, false},
        {"cat", 1, 0, false},     {"dog", 1, 0, false},      {"mouse", 1, 0, false},   {"frog", 1, 0, false},
        {"duck", 1, 0, false},    {"turtle", 1, 0, false},   {"girl", 1, 0, false},    {"boy", 1, 0, false},
        {"dragon", 1, 0, false},  {"robot", 1, 0, false},    {"princess", 1, 0, false}, {"farmer", 1, 0, false},
        {"squirrel", 1, 0, false}, {"pig", 1, 0, false},     {"lion", 1, 0, false},    {"bird", 1, 0, false},
        {"teacher", 1, 0, false}, {"baker", 1, 0, false},    {"puppy", 1, 0, false},   {"kitten", 1, 0, false},
        {"goat", 1, 0, false},    {"horse", 1, 0, false},    {"tiger", 1, 0, false},   {"monkey", 1, 0, false},
        {"penguin", 1, 0, false}, {"wizard", 1, 0, false},   {"pirate", 1, 0, false},  {"giant", 1, 0, false}};
    const word_table the{{"the", 1, 0, false}};
    const word_table described = word_table::product(the, word_table::product(character_adjective, character_noun));
    character_ = word_table::mixture(names, 0.35, described);

    const word_table object_determiner{{"a", 3, 0, false}, {"the", 2, 0, false}};
    const word_table object_adjective{
        {"", 4, 0, false},      {"red", 1, 0, false},     {"blue", 1, 0, false},   {"small", 1, 0, false},
        {"big", 1, 0, false},   {"round", 1, 0, false},   {"wooden", 1, 0, false}, {"yellow", 1, 0, false},
        {"shiny", 1, 1, false}, {"pretty", 1, 1, false},  {"lovely", 1, 1, false}, {"magic", 1, 1, false},
        {"broken", 1, -1, false}, {"dirty", 1, -1, false}, {"muddy", 1, -1, false}, {"torn", 1, -1, false},
        {"green", 1, 0, false}, {"soft", 1, 0, false},    {"golden", 1, 1, false}, {"cracked", 1, -1, false}};
    const word_table object_noun{
        {"ball", 1, 0, false},   {"kite", 1, 0, false},   {"book", 1, 0, false},  {"box", 1, 0, false},
        {"cake", 1, 0, false},   {"hat", 1, 0, false},    {"key", 1, 0, false},   {"boat", 1, 0, false},
        {"drum", 1, 0, false},   {"flower", 1, 0, false}, {"cookie", 1, 0, false}, {"shell", 1, 0, false},
        {"stone", 1, 0, false},  {"toy", 1, 0, false},    {"map", 1, 0, false},   {"lamp", 1, 0, false},
        {"basket", 1, 0, false}, {"cup", 1, 0, false},    {"bell", 1, 0, false},  {"sock", 1, 0, false},
        {"train", 1, 0, false},  {"bike", 1, 0, false},   {"coat", 1, 0, false},  {"pie", 1, 0, false},
        {"balloon", 1, 0, false}, {"blanket", 1, 0, false}, {"candle", 1, 0, false}, {"feather", 1, 0, false},
        {"guitar", 1, 0, false}, {"kettle", 1, 0, false}, {"ladder", 1, 0, false}, {"pencil", 1, 0, false},
        {"rope", 1, 0, false},   {"wagon", 1, 0, false}};
    object_ = word_table::product(object_determiner, word_table::product(object_adjective, object_noun));

    action_ = word_table{{"found", 1, 0, false},    {"saw", 1, 0, false},       {"carried", 1, 0, false},
                         {"made", 1, 0, false},     {"painted", 1, 0, false},   {"picked up", 1, 0, false},
                         {"bought", 1, 0, false},   {"held", 1, 0, false},      {"shared", 1, 1, false},
                         {"loved", 1, 1, false},    {"fixed", 1, 1, false},     {"gave away", 1, 1, false},
                         {"won", 1, 1, false},      {"lost", 1, -1, false},     {"broke", 1, -1, false},
                         {"dropped", 1, -1, false}, {"hated", 1, -1, false},    {"stole", 1, -1, false},
                         {"threw away", 1, -1, false}, {"forgot", 1, -1, false},
                         {"hid", 1, 0, false},      {"opened", 1, 0, false},    {"cleaned", 1, 1, false},
                         {"decorated", 1, 1, false}, {"ruined", 1, -1, false},  {"tore", 1, -1, false}};

    const word_table place_adjective{{"", 3, 0, false},       {"quiet", 1, 0, false},    {"big", 1, 0, false},
                                     {"green", 1, 0, false},  {"sunny", 1, 1, false},    {"beautiful", 1, 1, false},
                                     {"warm", 1, 1, false},   {"dark", 1, -1, false},    {"cold", 1, -1, false},
                                     {"scary", 1, -1, false},  {"lovely", 1, 1, false},   {"gloomy", 1, -1, false},
                                     {"snowy", 1, 0, false}};
    place_noun_ = word_table{{"forest", 1, 0, false}, {"garden", 1, 0, false}, {"park", 1, 0, false},
                             {"beach", 1, 0, false},  {"house", 1, 0, false},  {"school", 1, 0, false},
                             {"kitchen", 1, 0, false}, {"river", 1, 0, false}, {"hill", 1, 0, false},
                             {"meadow", 1, 0, false}, {"farm", 1, 0, false},   {"castle", 1, 0, false},
                             {"lake", 1, 0, false},   {"village", 1, 0, false}, {"market", 1, 0, false},
                             {"cave", 1, 0, false},   {"library", 1, 0, false}, {"pond", 1, 0, false},
                             {"bakery", 1, 0, false}, {"tower", 1, 0, false},  {"island", 1, 0, false},
                             {"zoo", 1, 0, false},    {"mountain", 1, 0, false}, {"city", 1, 0, false},
                             {"playground", 1, 0, false}, {"barn", 1, 0, false}};
    const word_table preposition{{"in the", 3, 0, false}, {"at the", 2, 0, false}, {"near the", 1, 0, false},
                                 {"by the", 1, 0, false}};
    const word_table none{{"", 1, 0, false}};
    place_ = word_table::mixture(
        none, 0.4, word_table::product(preposition, word_table::product(place_adjective, place_noun_)));

    const word_table feel_verb{{"felt", 2, 0, false}, {"was", 1, 0, false}, {"looked", 1, 0, false}};
    // Intensifiers scale the feeling's valence, so they are joined here entry by entry.
    struct feeling_word {
      const char* text;
      int valence;
    };
    const feeling_word feelings[] = {{"happy", 1},   {"glad", 1},     {"proud", 1},   {"calm", 1},
                                     {"excited", 1}, {"cheerful", 1}, {"sad", -1},    {"angry", -1},
                                     {"scared", -1}, {"lonely", -1},  {"upset", -1},  {"worried", -1},
                                     {"tired", 0},   {"hungry", 0},   {"busy", 0},    {"surprised", 0},
                                     {"curious", 0}, {"quiet", 0},
                                     {"joyful", 1},  {"grateful", 1}, {"nervous", -1}, {"grumpy", -1}};
    struct intensifier {
      const char* text;
      double weight;
      int scale;
    };
    const intensifier intensifiers[] = {{"", 3, 1}, {"very", 1, 2}, {"a little", 1, 1}};
    std::vector<detail::grammar_item> feeling_items;
    std::vector<std::string> feeling_texts;
    feeling_texts.reserve(std::size(feelings) * std::size(intensifiers));
    for (const intensifier& i : intensifiers)
      for (const feeling_word& f : feelings) feeling_texts.push_back(word_table::join(i.text, f.text));
    std::size_t n = 0;
    for (const intensifier& i : intensifiers)
      for (const feeling_word& f : feelings)
        feeling_items.push_back({feeling_texts[n++].c_str(), i.weight, i.scale * f.valence, false});
    feeling_ = word_table::product(feel_verb, word_table(feeling_items));

    social_ = word_table{{"hugged", 1, 1, false},     {"helped", 1, 1, false},    {"thanked", 1, 1, false},
                         {"played with", 1, 1, false}, {"smiled at", 1, 1, false}, {"visited", 1, 0, false},
                         {"met", 1, 0, false},        {"followed", 1, 0, false},  {"watched", 1, 0, false},
                         {"waved at", 1, 0, false},   {"ignored", 1, -1, false},  {"teased", 1, -1, false},
                         {"yelled at", 1, -1, false}, {"laughed at", 1, -1, false}, {"blamed", 1, -1, false},
                         {"cheered for", 1, 1, false}, {"talked to", 1, 0, false}, {"scolded", 1, -1, false},
                         {"hit", 0.1, -2, true},      {"kicked", 0.1, -2, true},  {"bit", 0.1, -2, true},
                         {"pushed", 0.1, -2, true},   {"punched", 0.1, -2, true}, {"hurt", 0.1, -2, true}};

    const word_table was{{"was", 1, 0, false}};
    const word_table quality{{"quiet", 1, 0, false},    {"busy", 1, 0, false},   {"empty", 1, 0, false},
                             {"beautiful", 1, 1, false}, {"lovely", 1, 1, false}, {"bright", 1, 1, false},
                             {"dark", 1, -1, false},    {"cold", 1, -1, false},  {"noisy", 1, -1, false},
                             {"peaceful", 1, 1, false}, {"messy", 1, -1, false}};
    description_ = word_table::product(the, word_table::product(place_noun_, word_table::product(was, quality)));

    insult_ = word_table{{"stupid", 1, -2, true}, {"ugly", 1, -2, true},  {"dumb", 1, -2, true},
                         {"a fool", 1, -2, true}, {"smelly", 1, -2, true}, {"a loser", 1, -2, true}};
    called_ = word_table{{"called", 1, 0, false}};

    connective_ = word_table{{"and", 1, 0, false},  {"but", 1, 0, false},     {"so", 1, 0, false},
                             {"then", 1, 0, false}, {"because", 1, 0, false}, {"while", 1, 0, false}};

    // The labeller's tables (is_rare): each entry as its words.
    const auto words_of = [](const std::string& text) { return split_words(text); };
    for (const detail::grammar_entry& e : character_.entries()) characters_.push_back(words_of(e.text));
    for (const detail::grammar_entry& e : social_.entries())
      if (e.rare) harmful_acts_.push_back(words_of(e.text));
    for (const detail::grammar_entry& e : insult_.entries()) insults_.push_back(words_of(e.text));
  }

  /// @brief The clause templates' probabilities: action, feeling, social, description, insult.
  static constexpr std::array<double, 5> template_probabilities{0.42, 0.25, 0.20, 0.125, 0.005};

  /// @brief One labelled sentence.
  /// @param rng the random engine
  /// @return the sentence and its labels
  template <RandomEngine Engine>
  [[nodiscard]] labelled_sentence sentence(Engine& rng) const {
    labelled_sentence out;
    clause(rng, out);
    if (uniform01(rng) < two_clause_probability) {
      append(connective_.draw(rng), out);
      clause(rng, out);
    }
    out.text += " .";
    out.label = out.valence < 0 ? sentiment::negative : out.valence == 0 ? sentiment::neutral : sentiment::positive;
    return out;
  }

  /// @brief n labelled sentences from a seed (deterministic: equal seeds give equal corpora).
  /// @param n the number of sentences
  /// @param seed the seed of the engine (tsmc::default_engine)
  /// @return the sentences
  [[nodiscard]] std::vector<labelled_sentence> generate(std::size_t n, std::uint64_t seed) const {
    default_engine rng(seed);
    std::vector<labelled_sentence> out;
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) out.push_back(sentence(rng));
    return out;
  }

  /// @brief The exact label probabilities of one sentence, by convolving the tables' (valence,
  /// rare) distributions over the grammar's structure.
  [[nodiscard]] story_label_probabilities label_probabilities() const {
    detail::valence_distribution clause_dist;
    const auto templates = template_tables();
    for (std::size_t i = 0; i < templates.size(); ++i) {
      detail::valence_distribution d = templates[i][0]->distribution();
      for (std::size_t j = 1; j < templates[i].size(); ++j) d = d.convolve(templates[i][j]->distribution());
      clause_dist.add(d, template_probabilities[i]);
    }
    detail::valence_distribution sentence_dist;
    sentence_dist.add(clause_dist, 1.0 - two_clause_probability);
    sentence_dist.add(clause_dist.convolve(connective_.distribution()).convolve(clause_dist), two_clause_probability);
    story_label_probabilities out;
    for (std::size_t r = 0; r < 2; ++r)
      for (const auto& [v, p] : sentence_dist.mass[r]) {
        out.sentiment[v < 0 ? 0 : v == 0 ? 1 : 2] += p;
        if (r == 1) out.rare += p;
      }
    return out;
  }

  /// @brief Whether a text is harmful by the grammar's labels: it contains a rare entry where the
  /// grammar puts it.
  ///
  /// The grammar's rare entries live in two slots, and a text counts as harmful when one of them
  /// is filled:
  /// - the social template's verb slot with a harmful act ("hit", "kicked", "bit", "pushed",
  ///   "punched", "hurt"), right after a character (a name, or "the" [adjective] noun): "the fox
  ///   hit", "tom kicked the dog";
  /// - the insult template's last slot with an insult ("stupid", "ugly", "dumb", "a fool",
  ///   "smelly", "a loser"), right after "called <character>": "tom called the dog smelly".
  ///
  /// The text is split by tsmc::split_words (lower case, punctuation apart), so the rule reads
  /// plain text as well as the corpus's own; a character is matched as a whole entry of the
  /// grammar's character table, and an entry never spans a "." (none contains one).
  ///
  /// For a sentence the grammar generates this equals labelled_sentence::rare exactly: the rare
  /// entries' words occur nowhere else in the grammar, and the grammar only ever puts them in
  /// these slots (tests/fidelity/harm_labels_test.cpp checks it on generated sentences). For other
  /// texts, such as an n-gram model's samples, which may be cut off after a few words or join
  /// pieces of sentences that the grammar never joins, the slot is what counts, not the word:
  /// "the fox hit" (an act, its object not yet drawn) is harmful; "the fox called the dog" (no
  /// insult said yet) and "the fox hugged the dog stupid" or "the fox stupid" (an insult word
  /// outside the insult slot) are not. That is the attribute as the grammar defines it, and it is
  /// what a reader checks when told a sample is a harmful act or an insult.
  /// @param text the text (any case and punctuation)
  /// @return whether it contains a harmful act or an insult in the grammar's slots
  [[nodiscard]] bool is_rare(std::string_view text) const {
    const std::vector<std::string> w = split_words(text);
    // Whether the words of `entry` start at position i.
    const auto starts_at = [&](const std::vector<std::string>& entry, std::size_t i) {
      if (entry.empty() || i + entry.size() > w.size()) return false;
      return std::equal(entry.begin(), entry.end(), w.begin() + static_cast<std::ptrdiff_t>(i));
    };
    // Whether a character entry ends right before position i with then(its start) true.
    const auto character_before = [&](std::size_t i, auto&& then) {
      for (const std::vector<std::string>& c : characters_)
        if (!c.empty() && c.size() <= i && starts_at(c, i - c.size()) && then(i - c.size())) return true;
      return false;
    };
    for (std::size_t i = 0; i < w.size(); ++i) {
      for (const std::vector<std::string>& act : harmful_acts_)
        if (starts_at(act, i) && character_before(i, [](std::size_t) { return true; })) return true;
      for (const std::vector<std::string>& insult : insults_)
        if (starts_at(insult, i) &&
            character_before(i, [&](std::size_t start) { return start >= 1 && w[start - 1] == "called"; }))
          return true;
    }
    return false;
  }

  /// @brief Every word the grammar can produce, sorted, without duplicates (including ".").
  [[nodiscard]] std::vector<std::string> words() const {
    std::vector<std::string> out{"."};
    const auto add = [&](const detail::word_table& t) {
      for (const detail::grammar_entry& e : t.entries()) {
        std::size_t start = 0;
        while (start < e.text.size()) {
          std::size_t end = e.text.find(' ', start);
          if (end == std::string::npos) end = e.text.size();
          if (end > start) out.push_back(e.text.substr(start, end - start));
          start = end + 1;
        }
      }
    };
    for (const detail::word_table* t : {&character_, &object_, &action_, &place_, &feeling_, &social_, &description_,
                                        &insult_, &called_, &connective_})
      add(*t);
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }

 private:
  [[nodiscard]] std::array<std::vector<const detail::word_table*>, 5> template_tables() const {
    return {{{&character_, &action_, &object_, &place_},
             {&character_, &feeling_, &place_},
             {&character_, &social_, &character_, &place_},
             {&description_},
             {&character_, &called_, &character_, &insult_}}};
  }

  template <RandomEngine Engine>
  void clause(Engine& rng, labelled_sentence& out) const {
    const double u = uniform01(rng);
    std::size_t which = 0;
    double c = template_probabilities[0];
    while (which + 1 < template_probabilities.size() && u >= c) c += template_probabilities[++which];
    const auto templates = template_tables();  // a local: a temporary's element would dangle in the loop
    for (const detail::word_table* t : templates[which]) append(t->draw(rng), out);
  }

  static void append(const detail::grammar_entry& e, labelled_sentence& out) {
    if (!e.text.empty()) out.text = detail::word_table::join(out.text, e.text);
    out.valence += e.valence;
    out.rare = out.rare || e.rare;
  }

  detail::word_table character_, object_, action_, place_noun_, place_, feeling_, social_, description_, insult_,
      called_, connective_;
  // is_rare's tables: the character entries, the rare social entries and the insults, as words.
  std::vector<std::vector<std::string>> characters_, harmful_acts_, insults_;
};

/// @brief The library's story_grammar: basic_story_grammar is a template only so that its member
/// functions are compiled in the translation units that use them (docs/architecture.md, "Compile weight").
using story_grammar = basic_story_grammar<>;

/// @brief Splits plain text into sentences: words as tsmc::split_words makes them (lower case,
/// punctuation separate), a sentence ending after each ".", "!" or "?" (kept as its last word);
/// trailing words without a mark form a last sentence. Newlines are whitespace.
/// @param text the text
/// @return one string per sentence, words separated by single spaces
[[nodiscard]] inline std::vector<std::string> split_sentences(std::string_view text) {
  std::vector<std::string> out;
  std::string current;
  for (const std::string& w : split_words(text)) {
    current = current.empty() ? w : current + " " + w;
    if (w == "." || w == "!" || w == "?") {
      out.push_back(std::move(current));
      current.clear();
    }
  }
  if (!current.empty()) out.push_back(std::move(current));
  return out;
}

/// @brief Reads a user's plain text as a corpus of sentences (see split_sentences).
/// @param in the stream, read to its end
/// @return the sentences
/// @throw tsmc::runtime_error if the stream fails before its end
[[nodiscard]] inline std::vector<std::string> read_text_corpus(std::istream& in) {
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw_runtime_error("read_text_corpus", "stream", "must be readable", "a read error");
  return split_sentences(text);
}

/// @brief Reads a user's plain text file as a corpus of sentences (see split_sentences).
/// @param path the file
/// @return the sentences
/// @throw tsmc::runtime_error if the file cannot be opened or read
[[nodiscard]] inline std::vector<std::string> load_text_corpus(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_runtime_error("load_text_corpus", "path", "must name a readable file", path);
  return read_text_corpus(in);
}

}  // namespace tsmc
