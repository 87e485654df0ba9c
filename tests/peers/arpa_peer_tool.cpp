// arpa_peer_tool: the tsmc side of the peer-interoperability test with IRSTLM
// (tests/peers/irstlm_interop.sh).
//
//   arpa_peer_tool corpus TRAIN HELDOUT N_TRAIN N_HELDOUT [--cased]
//       writes N_TRAIN sentences of the built-in story grammar (seed 1) and N_HELDOUT others
//       (seed 2) and three with words outside the grammar, one a line; --cased capitalises each sentence's first word and the grammar's
//       names, so that a model trained on it has cased words ("The", "the")
//   arpa_peer_tool perplexity MODEL.arpa TEXT [--lower]
//       loads the ARPA file with tsmc::ngram_model::load_arpa and prints, for TEXT's lines (each
//       a sentence, scored with its </s>), "tokens <n> log10prob <sum> perplexity <pp> unknown <u>
//       keeps_case <0|1>" with 12 significant digits; --lower lower-cases the text first (what
//       the tokenizer did before it kept case)
#include <tsmc/corpus/story_grammar.hpp>
#include <tsmc/models/ngram.hpp>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <exception>
#include <fstream>
#include <string>
#include <vector>

namespace {

std::string capitalised(std::string word) {
  if (!word.empty() && word[0] >= 'a' && word[0] <= 'z') word[0] = static_cast<char>(word[0] - 'a' + 'A');
  return word;
}

/// The sentence with its first word capitalised, and every later occurrence of a word in `names`.
std::string cased(const std::string& sentence) {
  static const std::vector<std::string> names = {"tom",  "lily", "max",    "mia",  "ben",  "sara", "sam",
                                                 "anna", "leo",  "zoe",    "jack", "emma", "oliver", "ruby",
                                                 "noah", "ella", "finn", "grace", "jake", "nora"};
  std::string out;
  std::size_t start = 0;
  bool first = true;
  while (start <= sentence.size()) {
    const std::size_t end = std::min(sentence.find(' ', start), sentence.size());
    std::string word = sentence.substr(start, end - start);
    bool name = false;
    for (const std::string& n : names) name = name || n == word;
    if (first || name) word = capitalised(word);
    out += (first ? "" : " ") + word;
    first = false;
    start = end + 1;
  }
  return out;
}

int corpus(const std::string& train, const std::string& heldout, std::size_t n_train, std::size_t n_heldout,
           bool with_case) {
  const tsmc::story_grammar grammar;
  const auto write = [&](const std::string& path, std::size_t n, std::uint64_t seed) {
    std::ofstream out(path);
    for (const tsmc::labelled_sentence& s : grammar.generate(n, seed)) out << (with_case ? cased(s.text) : s.text) << '\n';
    out.close();
    if (!out) throw std::runtime_error("cannot write " + path);
  };
  write(train, n_train, 1);
  write(heldout, n_heldout, 2);
  // Words no model of the grammar has: the held-out text's unknown words (<unk> in both tools).
  std::ofstream more(heldout, std::ios::app);
  for (const char* s : {"the zebra was happy .", "tom saw a quokka by the river .", "the wombat and the yak ran ."})
    more << (with_case ? cased(s) : std::string(s)) << '\n';
  more.close();
  if (!more) throw std::runtime_error("cannot write " + heldout);
  return 0;
}

int perplexity(const std::string& model_path, const std::string& text_path, bool lower) {
  const tsmc::ngram_model model = tsmc::ngram_model::load_arpa(model_path);
  std::ifstream in(text_path);
  if (!in) throw std::runtime_error("cannot read " + text_path);
  std::string line;
  double log_prob = 0.0;
  std::size_t tokens = 0, unknown = 0;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (lower)
      for (char& c : line) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const tsmc::token_sequence s = model.vocabulary().encode(line);
    for (const tsmc::token t : s) unknown += t == tsmc::word_tokenizer::unknown_token ? 1 : 0;
    log_prob += model.sentence_log_prob(s);
    tokens += s.size() + 1;
  }
  const double log10_prob = log_prob / std::log(10.0);
  std::printf("tokens %zu log10prob %.12g perplexity %.12g unknown %zu keeps_case %d\n", tokens, log10_prob,
              std::exp(-log_prob / static_cast<double>(tokens)), unknown, model.vocabulary().keeps_case() ? 1 : 0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) try {
  const std::vector<std::string> a(argv + 1, argv + argc);
  if (a.size() >= 5 && a[0] == "corpus")
    return corpus(a[1], a[2], std::stoul(a[3]), std::stoul(a[4]), a.size() > 5 && a[5] == "--cased");
  if (a.size() >= 3 && a[0] == "perplexity") return perplexity(a[1], a[2], a.size() > 3 && a[3] == "--lower");
  std::fprintf(stderr,
               "usage: arpa_peer_tool corpus TRAIN HELDOUT N_TRAIN N_HELDOUT [--cased]\n"
               "       arpa_peer_tool perplexity MODEL.arpa TEXT [--lower]\n");
  return 2;
} catch (const std::exception& e) {
  std::fprintf(stderr, "arpa_peer_tool: error: %s\n", e.what());
  return 1;
}
