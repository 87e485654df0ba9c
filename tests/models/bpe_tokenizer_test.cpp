// Byte-level BPE, its pre-tokenizers and Unicode tables, and the llama2.c tokenizer built from
// vectors (the two tokenizer types a GGUF file names). The peers (gpt-3-encoder, Hugging Face
// tokenizers) run in tests/peers/bpe_peers.mjs (ctest peer.bpe).
#include <tsmc/constraints/token_bytes.hpp>
#include <tsmc/models/bpe_tokenizer.hpp>
#include <tsmc/models/llama2c_tokenizer.hpp>
#include <tsmc/models/pretokenizer.hpp>
#include <tsmc/models/unicode.hpp>

#include <catch2/catch.hpp>

#include <cstdio>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace {

using tsmc::bpe_tokenizer;
using tsmc::pretokenizer;
using tsmc::token;
using tsmc::token_sequence;
using tsmc::token_type;
using Catch::Contains;

std::string u8(char32_t cp) {
  std::string s;
  tsmc::append_utf8(s, cp);
  return s;
}

std::vector<std::string> split(pretokenizer kind, std::string_view text) {
  std::vector<std::string> out;
  for (const std::string_view w : tsmc::pretokenize(kind, text)) out.emplace_back(w);
  return out;
}

/// A byte-level vocabulary: the 256 byte symbols (ids 0..255 in byte order), then `add`ed tokens.
struct vocabulary {
  std::vector<std::string> tokens;
  std::vector<token_type> types;
  std::vector<std::string> merges;
  vocabulary() {
    for (unsigned b = 0; b < 256; ++b) add(std::string(1, static_cast<char>(b)));
  }
  /// Adds a normal token given by its bytes; returns its id.
  token add(const std::string& bytes, token_type type = token_type::normal) {
    tokens.push_back(type == token_type::normal ? tsmc::gpt2_bytes_to_unicode_text(bytes) : bytes);
    types.push_back(type);
    return static_cast<token>(tokens.size() - 1);
  }
  /// Adds the merge of two byte strings (and the merged token); returns the merged token's id.
  token merge(const std::string& a, const std::string& b) {
    merges.push_back(tsmc::gpt2_bytes_to_unicode_text(a) + " " + tsmc::gpt2_bytes_to_unicode_text(b));
    return add(a + b);
  }
  [[nodiscard]] bpe_tokenizer build(tsmc::bpe_options options = {}) const {
    return bpe_tokenizer(tokens, types, merges, std::move(options));
  }
};

token byte_id(char c) { return static_cast<token>(static_cast<unsigned char>(c)); }

std::string construct_error(const vocabulary& v, tsmc::bpe_options options = {}) {
  try {
    (void)v.build(std::move(options));
  } catch (const tsmc::invalid_argument& e) {
    return e.what();
  }
  return "no exception";
}

}  // namespace

TEST_CASE("bpe: GPT-2's byte-to-unicode map and its inverse", "[gguf]") {
  CHECK(tsmc::gpt2_byte_to_unicode(' ') == U'\u0120');   // Ġ
  CHECK(tsmc::gpt2_byte_to_unicode('\n') == U'\u010A');  // Ċ
  CHECK(tsmc::gpt2_byte_to_unicode('\t') == U'\u0109');
  CHECK(tsmc::gpt2_byte_to_unicode(0) == U'\u0100');
  CHECK(tsmc::gpt2_byte_to_unicode(0x7F) == U'\u0121');
  CHECK(tsmc::gpt2_byte_to_unicode(0xA0) == U'\u0142');
  CHECK(tsmc::gpt2_byte_to_unicode(0xAD) == U'\u0143');
  CHECK(tsmc::gpt2_byte_to_unicode('A') == U'A');
  CHECK(tsmc::gpt2_byte_to_unicode('!') == U'!');
  CHECK(tsmc::gpt2_byte_to_unicode(0xA1) == U'\u00A1');
  CHECK(tsmc::gpt2_byte_to_unicode(0xFF) == U'\u00FF');
  std::set<char32_t> seen;
  for (unsigned b = 0; b < 256; ++b) {
    const char32_t cp = tsmc::gpt2_byte_to_unicode(static_cast<unsigned char>(b));
    seen.insert(cp);
    REQUIRE(tsmc::gpt2_unicode_to_byte(cp) == std::optional<unsigned char>(static_cast<unsigned char>(b)));
  }
  CHECK(seen.size() == 256);
  CHECK_FALSE(tsmc::gpt2_unicode_to_byte(U' ').has_value());
  CHECK_FALSE(tsmc::gpt2_unicode_to_byte(U'\u0144').has_value());
  CHECK(tsmc::gpt2_bytes_to_unicode_text(" the\n") == "\xC4\xA0the\xC4\x8A");  // "Ġthe" + "Ċ"
  CHECK(tsmc::gpt2_unicode_text_to_bytes("\xC4\xA0the\xC4\x8A") == std::optional<std::string>(" the\n"));
  CHECK_FALSE(tsmc::gpt2_unicode_text_to_bytes("a b").has_value());
}

TEST_CASE("bpe: UTF-8 decoding replaces each maximal ill-formed subpart by one U+FFFD", "[gguf]") {
  const std::string r = "\xEF\xBF\xBD";
  // Unicode 14, section 3.9, Table 3-8 (and the WHATWG decoder): one U+FFFD per maximal subpart.
  CHECK(tsmc::to_valid_utf8("a\x80z") == "a" + r + "z");
  CHECK(tsmc::to_valid_utf8("\xC0\xAF") == r + r);                           // overlong: C0 never starts
  CHECK(tsmc::to_valid_utf8("\xE2\x82") == r);                               // truncated at the end
  CHECK(tsmc::to_valid_utf8("\xE2\x82z") == r + "z");                        // truncated before 'z'
  CHECK(tsmc::to_valid_utf8("\xED\xA0\x80") == r + r + r);                   // a surrogate
  CHECK(tsmc::to_valid_utf8("\xE0\x80\xAF") == r + r + r);                   // overlong 3-byte
  CHECK(tsmc::to_valid_utf8("\xF0\x80\x80\x80") == r + r + r + r);           // overlong 4-byte
  CHECK(tsmc::to_valid_utf8("\xF4\x90\x80\x80") == r + r + r + r);           // past U+10FFFF
  CHECK(tsmc::to_valid_utf8("\xF0\x9F\x98") == r);                           // truncated emoji
  CHECK(tsmc::to_valid_utf8("\xF5\xFF\xFE") == r + r + r);
  CHECK(tsmc::to_valid_utf8("\xE2\x28\xA1") == r + "(" + r);
  const std::string good = "caf\xC3\xA9 \xE4\xB8\xAD \xF0\x9F\x98\x80 " + r;
  CHECK(tsmc::to_valid_utf8(good) == good);
  CHECK(tsmc::decode_utf8(good) == U"caf\u00E9 \u4E2D \U0001F600 \uFFFD");
  std::string all;
  for (char32_t cp : {U'\u007F', U'\u0080', U'\u07FF', U'\u0800', U'\uFFFF', U'\U00010000', U'\U0010FFFF'})
    all += u8(cp);
  CHECK(tsmc::decode_utf8(all) == U"\u007F\u0080\u07FF\u0800\uFFFF\U00010000\U0010FFFF");
}

TEST_CASE("bpe: Unicode classes from the generated tables", "[gguf]") {
  CHECK(std::string(tsmc::detail::unicode_tables_version) == "14.0.0");
  for (char32_t cp : {U'A', U'z', U'\u00E9', U'\u01C5', U'\u02B0', U'\u4E2D', U'\u3042', U'\uAC00', U'\u05D0', U'\U00020000'})
    CHECK(tsmc::is_unicode_letter(cp));  // Lu, Ll, Lt, Lm, Lo (CJK, kana, Hangul, Hebrew, Ext. B)
  for (char32_t cp : {U'0', U'9', U'\u0663', U'\uFF11', U'\u00BD', U'\u00B2', U'\u216B', U'\u09E9'})
    CHECK(tsmc::is_unicode_number(cp));  // Nd, No, Nl
  for (char32_t cp : {U' ', U'!', U'\u0301', U'\u2603', U'\U0001F600', U'\uFEFF', U'\uFFFD', U'\U000E0001', U'\U0010FFFF'}) {
    CHECK_FALSE(tsmc::is_unicode_letter(cp));
    CHECK_FALSE(tsmc::is_unicode_number(cp));
  }
  CHECK(tsmc::unicode_class_of(U'\u0301') == tsmc::unicode_class::mark);
  CHECK(tsmc::unicode_class_of(U'!') == tsmc::unicode_class::punctuation);
  CHECK(tsmc::unicode_class_of(U'\u20AC') == tsmc::unicode_class::symbol);
  CHECK(tsmc::unicode_class_of(U'\u00A0') == tsmc::unicode_class::separator);
  CHECK(tsmc::unicode_class_of(0x110000) == tsmc::unicode_class::other);
  std::vector<char32_t> white;
  for (char32_t cp = 0; cp < 0x110000; ++cp)
    if (tsmc::is_unicode_white_space(cp)) white.push_back(cp);
  CHECK(white == std::vector<char32_t>{0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000, 0x2001, 0x2002,
                                       0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200A, 0x2028, 0x2029,
                                       0x202F, 0x205F, 0x3000});
}

TEST_CASE("bpe: the pre-tokenizers cut text as their regexes do", "[gguf]") {
  const std::string text = "Hello world's  test\n\n  x 12345";
  CHECK(split(pretokenizer::gpt2, text) ==
        std::vector<std::string>{"Hello", " world", "'s", " ", " test", "\n\n ", " x", " 12345"});
  CHECK(split(pretokenizer::llama3, text) ==
        std::vector<std::string>{"Hello", " world", "'s", " ", " test", "\n\n", " ", " x", " ", "123", "45"});
  CHECK(split(pretokenizer::qwen2, text) ==
        std::vector<std::string>{"Hello", " world", "'s", " ", " test", "\n\n", " ", " x", " ", "1", "2", "3", "4", "5"});
  // Contractions: GPT-2's are lower case only.
  CHECK(split(pretokenizer::gpt2, "I'LL we'll") == std::vector<std::string>{"I", "'", "LL", " we", "'ll"});
  CHECK(split(pretokenizer::llama3, "I'LL we'll") == std::vector<std::string>{"I", "'LL", " we", "'ll"});
  CHECK(split(pretokenizer::gpt2, "''s 'x") == std::vector<std::string>{"''", "s", " '", "x"});
  CHECK(split(pretokenizer::llama3, "''s 'x") == std::vector<std::string>{"''", "s", " '", "x"});
  CHECK(split(pretokenizer::llama3, "'sup 'x") == std::vector<std::string>{"'s", "up", " '", "x"});
  // Llama 3: one leading non-letter, non-digit, non-newline joins the letters; punctuation takes newlines.
  CHECK(split(pretokenizer::llama3, "(word\tx") == std::vector<std::string>{"(word", "\tx"});
  CHECK(split(pretokenizer::gpt2, "(word\tx") == std::vector<std::string>{"(", "word", "\t", "x"});
  CHECK(split(pretokenizer::llama3, "!!\n\nx") == std::vector<std::string>{"!!\n\n", "x"});
  CHECK(split(pretokenizer::gpt2, "!!\n\nx") == std::vector<std::string>{"!!", "\n", "\n", "x"});
  CHECK(split(pretokenizer::llama3, " \n y") == std::vector<std::string>{" \n", " y"});
  CHECK(split(pretokenizer::llama3, "a\nb\r\nc") == std::vector<std::string>{"a", "\n", "b", "\r\n", "c"});
  CHECK(split(pretokenizer::llama3, "a  \t") == std::vector<std::string>{"a", "  \t"});
  // U+0085 is white space, U+FEFF is not (Unicode's White_Space, not JavaScript's \s).
  CHECK(split(pretokenizer::gpt2, "!\xC2\x85") == std::vector<std::string>{"!", "\xC2\x85"});
  CHECK(split(pretokenizer::gpt2, "!\xEF\xBB\xBF") == std::vector<std::string>{"!\xEF\xBB\xBF"});
  // Ill-formed bytes read as U+FFFD (an "other" code point) and stay in the words as they were.
  CHECK(split(pretokenizer::gpt2, "a\xFF" "b") == std::vector<std::string>{"a", "\xFF", "b"});
  CHECK(split(pretokenizer::llama3, "a\xFF" "b") == std::vector<std::string>{"a", "\xFF" "b"});
  CHECK(split(pretokenizer::gpt2, "").empty());
}

TEST_CASE("bpe: the words of every pre-tokenizer cover random text exactly", "[gguf]") {
  const std::vector<std::string> pieces{"a", "Z", "\xC3\xA9", "\xE4\xB8\xAD", "7", "\xD9\xA3", " ", "  ", "\t", "\n",
                                        "\r", "'", "'s", "!", ".", "\xF0\x9F\x98\x80", "\xC2\x85", "\xFF", "\xE2\x82"};
  std::mt19937 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    std::string text;
    const int n = static_cast<int>(rng() % 20);
    for (int k = 0; k < n; ++k) text += pieces[rng() % pieces.size()];
    for (const pretokenizer kind : {pretokenizer::gpt2, pretokenizer::llama3, pretokenizer::qwen2}) {
      std::string joined;
      for (const std::string& w : split(kind, text)) {
        REQUIRE_FALSE(w.empty());
        joined += w;
      }
      REQUIRE(joined == text);
    }
  }
}

TEST_CASE("bpe: pre-tokenizer names from tokenizer.ggml.pre", "[gguf]") {
  CHECK(tsmc::pretokenizer_from_name("gpt2") == pretokenizer::gpt2);
  CHECK(tsmc::pretokenizer_from_name("gpt-2") == pretokenizer::gpt2);
  CHECK(tsmc::pretokenizer_from_name("llama-bpe") == pretokenizer::llama3);
  CHECK(tsmc::pretokenizer_from_name("qwen2") == pretokenizer::qwen2);
  CHECK(tsmc::pretokenizer_name(pretokenizer::llama3) == "llama-bpe");
  CHECK_THROWS_WITH(tsmc::pretokenizer_from_name("falcon"),
                    Contains("tsmc::pretokenizer_from_name: name must be one of") && Contains("got \"falcon\""));
}

TEST_CASE("bpe: merges apply by rank, leftmost first, within words", "[gguf]") {
  vocabulary v;
  const token ab = v.merge("a", "b");
  const token bc = v.merge("b", "c");
  const token aa = v.merge("a", "a");
  const token space_a = v.merge(" ", "a");
  const bpe_tokenizer tok = v.build();
  CHECK(tok.encode("abc") == token_sequence{ab, byte_id('c')});         // rank 0 (a b) before rank 1 (b c)
  CHECK(tok.encode("bc") == token_sequence{bc});
  CHECK(tok.encode("aaa") == token_sequence{aa, byte_id('a')});         // leftmost on ties
  CHECK(tok.encode("aaaa") == token_sequence{aa, aa});
  CHECK(tok.encode("x a") == token_sequence{byte_id('x'), space_a});    // " a" is one word
  CHECK(tok.encode("a!b") == token_sequence{byte_id('a'), byte_id('!'), byte_id('b')});  // no merge across words
  CHECK(tok.encode("") == token_sequence{});
  CHECK(tok.merge_count() == 4);

  vocabulary swapped;  // the same merges with a and b's rank after b and c's
  const token bc2 = swapped.merge("b", "c");
  swapped.merge("a", "b");
  CHECK(swapped.build().encode("abc") == token_sequence{byte_id('a'), bc2});

  vocabulary duplicated;  // "a b" at ranks 0 and 2: the first counts (llama.cpp's rule)
  const token ab3 = duplicated.merge("a", "b");
  duplicated.merge("b", "c");
  duplicated.merges.push_back("a b");
  CHECK(duplicated.build().encode("abc") == token_sequence{ab3, byte_id('c')});
  CHECK(duplicated.build().merge_count() == 2);
}

TEST_CASE("bpe: merges chain into longer tokens and decode back", "[gguf]") {
  vocabulary v;
  v.merge("h", "e");
  v.merge("l", "l");
  const token hell = v.merge("he", "ll");
  const token hello = v.merge("hell", "o");
  const token space_w = v.merge(" ", "w");
  v.merge("o", "r");
  const token space_wor = v.merge(" w", "or");
  const bpe_tokenizer tok = v.build();
  CHECK(tok.encode("hello world") == token_sequence{hello, space_wor, byte_id('l'), byte_id('d')});
  CHECK(tok.encode("hell") == token_sequence{hell});
  CHECK(tok.encode(" w") == token_sequence{space_w});
  CHECK(tok.token_bytes(hello) == "hello");
  CHECK(tok.token_bytes(space_w) == " w");
  CHECK(tok.token_text(space_w) == "\xC4\xA0w");
  CHECK(tok.find("\xC4\xA0w") == std::optional<token>(space_w));
  for (const std::string text : {"hello world", "  hello\n\nworld  ", "caf\xC3\xA9 \xE4\xB8\xAD\xF0\x9F\x98\x80", "tab\tx"})
    CHECK(tok.decode(tok.encode(text)) == text);
  // Ill-formed bytes come back as U+FFFD (what the text meant to a peer), not as themselves.
  CHECK(tok.decode(tok.encode("a\xFF" "b\xE2\x82")) == "a\xEF\xBF\xBD" "b\xEF\xBF\xBD");
  CHECK(tok.encode("\xFF") == token_sequence{byte_id('\xEF'), byte_id('\xBF'), byte_id('\xBD')});
}

TEST_CASE("bpe: the tokenizer lifts constraints through token_bytes (TokenizerWithBytes)", "[gguf]") {
  STATIC_REQUIRE(tsmc::TokenizerWithBytes<bpe_tokenizer>);
  vocabulary v;
  const token space_w = v.merge(" ", "w");
  const token eos = v.add("<|endoftext|>", token_type::control);
  const bpe_tokenizer tok = v.build({.eos = eos});
  const tsmc::token_byte_table table = tsmc::make_token_byte_table(tok);
  CHECK(table.bytes[static_cast<std::size_t>(space_w)] == " w");
  CHECK(table.bytes[static_cast<std::size_t>(eos)].empty());
}

TEST_CASE("bpe: Llama 3 vocabularies take a word that is a token whole (ignore_merges)", "[gguf]") {
  vocabulary v;
  const token xy = v.merge("x", "y");
  const token xyz = v.add("xyz");  // no merge reaches it
  CHECK(v.build({.pre = "gpt2"}).encode("xyz") == token_sequence{xy, byte_id('z')});
  CHECK(v.build({.pre = "qwen2"}).encode("xyz") == token_sequence{xy, byte_id('z')});
  CHECK(v.build({.pre = "llama-bpe"}).encode("xyz") == token_sequence{xyz});
  CHECK(v.build({.pre = "llama-bpe"}).ignore_merges());
  CHECK_FALSE(v.build({.pre = "gpt2"}).ignore_merges());
}

TEST_CASE("bpe: control and user-defined tokens, BOS, EOS, EOT", "[gguf]") {
  vocabulary v;
  const token bos = v.add("<|begin_of_text|>", token_type::control);
  const token eos = v.add("<|endoftext|>", token_type::control);
  const token eot = v.add("<|eot_id|>", token_type::control);
  const token eot_long = v.add("<|eot_id|>x", token_type::control);
  const token user = v.add("<tool>", token_type::user_defined);
  const token byte_a = v.add("<0x41>", token_type::byte);
  const bpe_tokenizer tok = v.build({.pre = "llama-bpe", .bos = bos, .eos = eos, .eot = eot, .add_bos = true});
  CHECK(tok.bos() == std::optional<token>(bos));
  CHECK(tok.end_tokens() == token_sequence{eos, eot});
  CHECK(tok.token_bytes(eos).empty());
  CHECK(tok.token_text(eos) == "<|endoftext|>");
  CHECK(tok.token_bytes(user) == "<tool>");
  CHECK(tok.token_bytes(byte_a) == "A");
  CHECK(tok.type(eot) == token_type::control);

  // As text by default (then decode gives it back); cut out with parse_special, longest first.
  const token_sequence plain = tok.encode("a<|endoftext|>");
  CHECK(plain.front() == bos);
  CHECK(plain.size() > 3);
  CHECK(tok.decode(plain) == "a<|endoftext|>");
  CHECK(tok.encode("a<|endoftext|>b", {.add_bos = false, .parse_special = true}) ==
        token_sequence{byte_id('a'), eos, byte_id('b')});
  CHECK(tok.encode("<|eot_id|>x<|eot_id|>", {.add_bos = false, .parse_special = true}) == token_sequence{eot_long, eot});
  // User-defined tokens are cut out always.
  CHECK(tok.encode("a<tool>b", {.add_bos = false}) == token_sequence{byte_id('a'), user, byte_id('b')});
  CHECK(tok.decode(tok.encode("a<tool>b", {.add_bos = false})) == "a<tool>b");

  vocabulary same;
  const token only = same.add("<|endoftext|>", token_type::control);
  const bpe_tokenizer gpt2 = same.build({.eos = only, .eot = only});
  CHECK(gpt2.end_tokens() == token_sequence{only});
  CHECK_FALSE(gpt2.add_bos());
  CHECK_THROWS_WITH(gpt2.encode("x", {.add_bos = true}),
                    Contains("tsmc::bpe_tokenizer::encode: options.add_bos needs a BOS token"));
}

TEST_CASE("bpe: bad vocabularies, merges and ids name the argument and the value", "[gguf]") {
  vocabulary v;
  v.merge("a", "b");
  vocabulary no_space = v;
  no_space.merges.push_back("ab");
  CHECK_THAT(construct_error(no_space), Contains("tsmc::bpe_tokenizer::bpe_tokenizer: merges[1] must be two tokens") &&
                                            Contains("got \"ab\""));
  vocabulary unknown = v;
  unknown.merges.push_back("a q\xC4\xA0");
  CHECK_THAT(construct_error(unknown), Contains("merges[1]") && Contains("(\"q\xC4\xA0\" is not a token)"));
  vocabulary unmerged = v;
  unmerged.merges.push_back("b c");
  CHECK_THAT(construct_error(unmerged), Contains("merges[1]") && Contains("(\"bc\" is not a token)"));
  CHECK_THAT(construct_error(v, {.pre = "falcon"}),
             Contains("tsmc::bpe_tokenizer::bpe_tokenizer: options.pre must be one of") && Contains("got \"falcon\""));
  CHECK_THAT(construct_error(v, {.eos = 257}), Contains("options.eos must be in [0, 257), got 257"));
  CHECK_THAT(construct_error(v, {.bos = -1}), Contains("options.bos must be in [0, 257), got -1"));
  vocabulary short_types = v;
  short_types.types.pop_back();
  CHECK_THAT(construct_error(short_types), Contains("types.size() must equal tokens.size() 257, got 256"));
  vocabulary bad_type = v;
  bad_type.types[3] = static_cast<token_type>(9);
  CHECK_THAT(construct_error(bad_type), Contains("types[3] must be a token_type (0 to 6), got 9"));
  CHECK_THROWS_WITH(bpe_tokenizer({}, {}, {}), Contains("tokens.size() must be positive, got 0"));
  const bpe_tokenizer tok = v.build();
  CHECK_THROWS_WITH(tok.token_bytes(257), Contains("tsmc::bpe_tokenizer::token_bytes: token must be in [0, 257), got 257"));
  CHECK_THROWS_WITH(tok.check_vocabulary(300, "gguf::model"), Contains("tsmc::gguf::model: tokenizer vocab_size() must equal"));
  // A vocabulary without a byte's symbol cannot encode that byte.
  const bpe_tokenizer tiny({"a", "b"}, {}, {});
  CHECK(tiny.encode("ab") == token_sequence{0, 1});
  CHECK_THROWS_WITH(tiny.encode("ac"), Contains("tsmc::bpe_tokenizer::encode: text needs the token of each byte") &&
                                           Contains("got 99"));
}

TEST_CASE("llama2c tokenizer from vectors: the same tokenizer as from its file", "[gguf]") {
  std::vector<std::string> pieces{"<unk>", "<s>", "</s>"};
  std::vector<float> scores{0.0f, 0.0f, 0.0f};
  std::vector<token_type> types{token_type::unknown, token_type::control, token_type::control};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    pieces.emplace_back(name);
    scores.push_back(0.0f);
    types.push_back(token_type::byte);
  }
  const auto add = [&](const std::string& p, float s) {
    pieces.push_back(p);
    scores.push_back(s);
    types.push_back(token_type::normal);
  };
  add("\xE2\x96\x81", -1.0f);  // "▁": SentencePiece's space
  for (char c = 'a'; c <= 'z'; ++c) add(std::string(1, c), -2.0f);
  add("th", 1.0f);
  add("the", 2.0f);
  add("\xE2\x96\x81the", 3.0f);
  const auto tok = tsmc::llama2c::tokenizer::from_sentencepiece(pieces, scores, types);
  CHECK(tok.vocab_size() == pieces.size());
  CHECK(tok.piece(259) == " ");
  const token the = static_cast<token>(pieces.size() - 1);
  CHECK(tok.piece(the) == " the");
  CHECK(tok.encode("the cat", true, true) ==
        token_sequence{1, the, 259, *tok.find("c"), *tok.find("a"), *tok.find("t"), 2});
  CHECK(tok.encode("\xC3\xA9") == token_sequence{1, 259, 0xC3 + 3, 0xA9 + 3});  // byte fallback
  CHECK(tok.decode(tok.encode("the cat")) == "the cat");
  CHECK(tok.max_token_length() == 6);

  std::vector<std::string> plain = pieces;
  for (std::string& p : plain)
    if (p.rfind("\xE2\x96\x81", 0) == 0) p = " " + p.substr(3);
  const tsmc::llama2c::tokenizer direct(plain, scores);
  CHECK(direct.encode("the cat the") == tok.encode("the cat the"));

  CHECK_THROWS_WITH(tsmc::llama2c::tokenizer::from_sentencepiece(pieces, scores, types, 128000),
                    Contains("tsmc::llama2c::tokenizer::from_sentencepiece: bos_id must be 1"));
  std::vector<token_type> moved = types;
  std::swap(moved[3], moved[260]);
  CHECK_THROWS_WITH(tsmc::llama2c::tokenizer::from_sentencepiece(pieces, scores, moved),
                    Contains("tokens[260] must be \"<0xHH>\" at id HH + 3"));
  scores[5] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH(tsmc::llama2c::tokenizer(plain, scores), Contains("tsmc::llama2c::tokenizer::tokenizer: scores[5] must be finite"));
  CHECK_THROWS_WITH(tsmc::llama2c::tokenizer(std::vector<std::string>{}, std::vector<float>{}), Contains("pieces.size() must be positive"));
}
