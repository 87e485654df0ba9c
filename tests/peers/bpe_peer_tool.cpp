// The C++ side of tests/peers/bpe_peers.mjs: encodes or pre-tokenizes texts with tsmc's byte-level
// BPE, for the script to compare with the npm peers. Files are lines of hex-encoded bytes.
//   bpe_peer_tool encode <vocabulary> <texts> <out>: the vocabulary file is
//     "pre <name>", "parse_special <0|1>", "tokens <N>", N lines "<hex> <type>",
//     "merges <M>", M lines "<hex>"; out gets one line of token ids per text. The tool also checks
//     that decode(encode(text)) is the text (made well-formed UTF-8) and fails if not.
//   bpe_peer_tool split <pre> <texts> <out>: out gets, per text, its words as hex, space-separated.
#include <tsmc/models/bpe_tokenizer.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::string from_hex(const std::string& hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

std::string to_hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (const char c : bytes) {
    out += digits[static_cast<unsigned char>(c) >> 4];
    out += digits[static_cast<unsigned char>(c) & 15];
  }
  return out;
}

std::vector<std::string> read_texts(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> texts;
  for (std::string line; std::getline(in, line);) texts.push_back(from_hex(line));
  return texts;
}

// Reads "<word> <count>" and checks the word.
std::size_t read_count(std::istream& in, const std::string& word) {
  std::string w;
  std::size_t n = 0;
  if (!(in >> w >> n) || w != word) throw std::runtime_error("vocabulary file: expected '" + word + " <count>'");
  return n;
}

int encode(const std::string& vocabulary, const std::string& texts_path, const std::string& out_path) {
  std::ifstream in(vocabulary);
  std::string word, pre;
  int parse_special = 0;
  if (!(in >> word >> pre) || word != "pre") throw std::runtime_error("vocabulary file: expected 'pre <name>'");
  if (!(in >> word >> parse_special) || word != "parse_special")
    throw std::runtime_error("vocabulary file: expected 'parse_special <0|1>'");
  std::vector<std::string> tokens(read_count(in, "tokens"));
  std::vector<tsmc::token_type> types(tokens.size());
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    std::string hex;
    int type = 0;
    in >> hex >> type;
    tokens[i] = from_hex(hex == "-" ? "" : hex);
    types[i] = static_cast<tsmc::token_type>(type);
  }
  std::vector<std::string> merges(read_count(in, "merges"));
  for (std::string& m : merges) {
    std::string hex;
    in >> hex;
    m = from_hex(hex);
  }
  if (!in) throw std::runtime_error("vocabulary file: truncated");
  const tsmc::bpe_tokenizer tokenizer(std::move(tokens), std::move(types), merges, {.pre = pre});
  std::ofstream out(out_path);
  int round_trip_failures = 0;
  for (const std::string& text : read_texts(texts_path)) {
    const tsmc::token_sequence ids = tokenizer.encode(text, {.add_bos = false, .parse_special = parse_special != 0});
    for (std::size_t i = 0; i < ids.size(); ++i) out << (i ? " " : "") << ids[i];
    out << '\n';
    bool has_control = false;
    for (const tsmc::token t : ids) has_control = has_control || tokenizer.type(t) == tsmc::token_type::control;
    if (!has_control && tokenizer.decode(ids) != tsmc::to_valid_utf8(text)) {
      if (round_trip_failures++ < 5) std::cerr << "decode(encode(text)) != text for text " << to_hex(text) << '\n';
    }
  }
  std::cerr << "bpe_peer_tool: " << pre << ": round-trip failures " << round_trip_failures << '\n';
  return round_trip_failures == 0 ? 0 : 1;
}

int split(const std::string& pre, const std::string& texts_path, const std::string& out_path) {
  const tsmc::pretokenizer kind = tsmc::pretokenizer_from_name(pre);
  std::ofstream out(out_path);
  for (const std::string& text : read_texts(texts_path)) {
    const std::string valid = tsmc::to_valid_utf8(text);
    const std::vector<std::string_view> words = tsmc::pretokenize(kind, valid);
    for (std::size_t i = 0; i < words.size(); ++i) out << (i ? " " : "") << to_hex(words[i]);
    out << '\n';
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc == 5 && std::string(argv[1]) == "encode") return encode(argv[2], argv[3], argv[4]);
    if (argc == 5 && std::string(argv[1]) == "split") return split(argv[2], argv[3], argv[4]);
    std::cerr << "usage: bpe_peer_tool encode <vocabulary> <texts> <out> | split <pre> <texts> <out>\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "bpe_peer_tool: " << e.what() << '\n';
    return 1;
  }
}
