#include "models/llama2c_test_support.hpp"

#include <tsmc/models/llama2c.hpp>
#include <tsmc/models/llama2c_tokenizer.hpp>

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

namespace {

using tsmc::token;
using tsmc::token_sequence;
using tsmc::llama2c::tokenizer;
using Catch::Contains;

/// The llama2.c layout: 0 <unk>, 1 BOS, 2 EOS, 3..258 the byte tokens <0x00>..<0xFF>, then `extra`.
struct vocabulary {
  std::vector<std::string> pieces{"<unk>", "\n<s>\n", "\n</s>\n"};
  std::vector<float> scores{0.0f, 0.0f, 0.0f};
  vocabulary() {
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      add(name, 0.0f);
    }
  }
  token add(const std::string& piece, float score) {
    pieces.push_back(piece);
    scores.push_back(score);
    return static_cast<token>(pieces.size() - 1);
  }
  tokenizer write(const llama2c_test::temp_dir& dir) const {
    tsmc::llama2c::write_tokenizer(dir.file("tok.bin"), pieces, scores);
    return tokenizer(dir.file("tok.bin"));
  }
};

/// A vocabulary with single characters and some merges, for round trips.
vocabulary text_vocabulary() {
  vocabulary v;
  v.add(" ", -1.0f);
  for (char c = 'a'; c <= 'z'; ++c) v.add(std::string(1, c), -2.0f);
  v.add("é", -2.0f);
  v.add("th", 1.0f);
  v.add("the", 2.0f);
  v.add(" the", 3.0f);
  v.add("in", 1.5f);
  v.add("ing", 2.5f);
  v.add("ön", 0.5f);
  return v;
}

std::string load_error(const std::filesystem::path& path, std::optional<std::size_t> vocab = std::nullopt) {
  try {
    tokenizer t(path, vocab);
  } catch (const tsmc::runtime_error& e) {
    return e.what();
  }
  FAIL("no tsmc::runtime_error for " << path);
  return {};
}

void write_bytes(const std::filesystem::path& path, const std::vector<std::int32_t>& words, const std::string& tail = "") {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(words.data()), static_cast<std::streamsize>(words.size() * 4));
  out.write(tail.data(), static_cast<std::streamsize>(tail.size()));
}

std::int32_t bits_of(float f) {
  std::int32_t i = 0;
  std::memcpy(&i, &f, 4);
  return i;
}

}  // namespace

TEST_CASE("llama2c tokenizer: merges by score on a hand-made vocabulary give the expected ids", "[models]") {
  llama2c_test::temp_dir dir;
  vocabulary v;
  const token space = v.add(" ", -1.0f), h = v.add("h", -1.0f), e = v.add("e", -1.0f), l = v.add("l", -1.0f),
              o = v.add("o", -1.0f), w = v.add("w", -1.0f), r = v.add("r", -1.0f), d = v.add("d", -1.0f);
  const token ll = v.add("ll", 5.0f), he = v.add("he", 4.0f), hell = v.add("hell", 3.0f), hello = v.add("hello", 2.0f),
              space_hello = v.add(" hello", 1.0f), space_w = v.add(" w", 0.5f), orr = v.add("or", 7.0f),
              ld = v.add("ld", 7.0f);
  const tokenizer t = v.write(dir);
  CHECK(t.vocab_size() == v.pieces.size());
  CHECK(t.max_token_length() == 6);
  // " hello world": ll, he, hell, hello, " hello" in score order; or and ld (7) first; " w" last.
  CHECK(t.encode("hello world", true, true) == token_sequence{1, space_hello, space_w, orr, ld, 2});
  CHECK(t.encode("hello world", false, false) == token_sequence{space_hello, space_w, orr, ld});
  CHECK(t.encode("", true, false) == token_sequence{1});
  CHECK(t.encode("", false, true) == token_sequence{2});
  CHECK(t.encode("dew") == token_sequence{1, space, d, e, w});

  // A higher-scoring "lo" captures the l before "ll" can form: h e l l o -> he l lo.
  const token lo = v.add("lo", 6.0f);
  const tokenizer t2 = v.write(dir);
  CHECK(t2.encode("hello", false) == token_sequence{space, he, l, lo});
  // The intermediate merges of "hello" (ll, he, hell, hello) on their own.
  CHECK(t.encode("hell", false) == token_sequence{space, hell});
  CHECK(t.encode("ell", false) == token_sequence{space, e, ll});
  CHECK(t.encode("helloo", false) == token_sequence{space_hello, o});
  CHECK(t.encode("hero", false) == token_sequence{space, he, r, o});
  CHECK(t.piece(hello) == "hello");
  CHECK(t.piece(h) == "h");
}

TEST_CASE("llama2c tokenizer: byte fallback for characters absent from the vocabulary", "[models]") {
  llama2c_test::temp_dir dir;
  const tokenizer t = text_vocabulary().write(dir);
  const token space = *t.find(" "), h = *t.find("h");
  // "ü" (C3 BC) is absent: two byte tokens, byte + 3; "é" is present: one token.
  CHECK(t.encode("hü", false) == token_sequence{space, h, 0xC3 + 3, 0xBC + 3});
  CHECK(t.encode("hé", false) == token_sequence{space, h, *t.find("é")});
  // A 4-byte code point (U+1F642) falls back to its four bytes.
  CHECK(t.encode("\xF0\x9F\x99\x82", false) == token_sequence{space, 0xF0 + 3, 0x9F + 3, 0x99 + 3, 0x82 + 3});
  CHECK(t.decode(0, 0x41 + 3) == "A");
  CHECK(t.decode(0, 0xC3 + 3) == "\xC3");
}

TEST_CASE("llama2c tokenizer: encode then decode is the identity on ASCII and multi-byte UTF-8", "[models]") {
  llama2c_test::temp_dir dir;
  const tokenizer t = text_vocabulary().write(dir);
  for (const std::string text : {"the thing in the string", "Hello, World! 123\n\ttabs", " leading space",
                                 "trailing space ", "x", "héllo wörld, ünïcödé: ✓ 🙂 日本語", "the önly thing"}) {
    INFO(text);
    const token_sequence ids = t.encode(text, true, true);
    CHECK(t.decode(ids) == text);
    // Without BOS the dummy prefix space stays.
    CHECK(t.decode(t.encode(text, false), 0) == std::string(" ").append(text));
  }
  // Merges happened: " the" is one token.
  CHECK(t.encode("the thing", false)[0] == *t.find(" the"));
  CHECK(t.decode(tokenizer::bos, *t.find(" the")) == "the");
  CHECK(t.decode(*t.find("a"), *t.find(" the")) == " the");
  CHECK(t.decode(tokenizer::bos, tokenizer::eos).empty());
  CHECK_THROWS_AS(t.decode(0, static_cast<token>(t.vocab_size())), tsmc::invalid_argument);
}

TEST_CASE("llama2c tokenizer: bad files and a vocabulary that differs from the model's", "[models]") {
  llama2c_test::temp_dir dir;
  const auto path = dir.file("bad.bin");
  const std::string file = llama2c_test::quoted(path);
  SECTION("a missing file") { CHECK_THAT(load_error(dir.file("absent.bin")), Contains("absent.bin")); }
  SECTION("a truncated max_token_length") {
    std::ofstream(path, std::ios::binary).write("\x04\x00", 2);
    CHECK_THAT(load_error(path), Contains(file + " max_token_length") && Contains("truncated"));
  }
  SECTION("a non-positive max_token_length") {
    write_bytes(path, {0, bits_of(1.0f), 1}, "a");
    CHECK_THAT(load_error(path), Contains(file + " max_token_length"));
  }
  SECTION("a length beyond max_token_length") {
    write_bytes(path, {2, bits_of(1.0f), 3}, "abc");
    CHECK_THAT(load_error(path), Contains(file + " token 0 len"));
  }
  SECTION("a negative length") {
    write_bytes(path, {2, bits_of(1.0f), 1}, std::string("a\x00\x00\x00\x00\xff\xff\xff\xff", 9));
    CHECK_THAT(load_error(path), Contains(file + " token 1 len"));
  }
  SECTION("a truncated entry") {
    write_bytes(path, {4, bits_of(1.0f), 4}, "ab");
    CHECK_THAT(load_error(path), Contains(file + " token 0 bytes") && Contains("truncated"));
    write_bytes(path, {4, bits_of(1.0f), 1}, "a\x01\x02");
    CHECK_THAT(load_error(path), Contains(file + " token 1 score") && Contains("truncated"));
  }
  SECTION("a non-finite score") {
    write_bytes(path, {4, bits_of(std::numeric_limits<float>::quiet_NaN()), 1}, "a");
    CHECK_THAT(load_error(path), Contains(file + " token 0 score"));
  }
  SECTION("an empty vocabulary") {
    write_bytes(path, {4});
    CHECK_THAT(load_error(path), Contains(file + " vocabulary size"));
  }
  SECTION("an entry count that differs from the model's vocabulary") {
    const vocabulary v = text_vocabulary();
    tsmc::llama2c::write_tokenizer(path, v.pieces, v.scores);
    CHECK(tokenizer(path, v.pieces.size()).vocab_size() == v.pieces.size());
    CHECK_THAT(load_error(path, v.pieces.size() - 1),
               Contains(file + " vocabulary size") &&
                   Contains("the file has " + std::to_string(v.pieces.size()) + " tokens or more, the model needs " +
                            std::to_string(v.pieces.size() - 1)));
    CHECK_THAT(load_error(path, v.pieces.size() + 1),
               Contains(file + " vocabulary size") &&
                   Contains("the file has " + std::to_string(v.pieces.size()) + " tokens, the model needs " +
                            std::to_string(v.pieces.size() + 1)));
    // Where a model meets the tokenizer.
    tsmc::llama2c::config c = llama2c_test::tiny_shared();
    tsmc::llama2c::make_random_checkpoint(dir.file("m.bin"), c, 1);
    const tsmc::llama2c::model m(dir.file("m.bin"));
    const tokenizer t(path);
    CHECK_THROWS_WITH(t.check_vocabulary(m.vocab_size()), Contains("vocab_size()") && Contains("37"));
  }
  SECTION("byte fallback beyond a small vocabulary") {
    tsmc::llama2c::write_tokenizer(path, std::vector<std::string>{"<unk>", "<s>", "</s>", " "},
                                   std::vector<float>{0, 0, 0, 0});
    const tokenizer t(path);
    CHECK_THROWS_AS(t.encode("a"), tsmc::invalid_argument);
  }
}
