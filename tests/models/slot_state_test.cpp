// The slot-state hooks (tsmc::SlotStateModel) of the library's models: a slot exported from one
// model and imported into another slot of a second model over the same weights continues exactly
// as the original (the same log-probs and features, bit for bit); bad bytes are errors.
#include "models/llama2c_test_support.hpp"

#include <tsmc/core/random.hpp>
#include <tsmc/core/slot_state.hpp>
#include <tsmc/corpus/story_grammar.hpp>
#include <tsmc/models/llama2c.hpp>
#include <tsmc/models/ngram.hpp>

#include <catch2/catch.hpp>

#include <cstddef>
#include <string>
#include <vector>

using tsmc::token;
using tsmc::token_sequence;

namespace {

static_assert(tsmc::SlotStateModel<tsmc::ngram_model>);
static_assert(tsmc::SlotStateModel<tsmc::llama2c::model>);
static_assert(tsmc::SlotStateModel<tsmc::transformer::engine>);

/// Runs `a` and `b` from the same prompt with K slots and different random tokens for `steps`
/// steps, then moves slot `from` of a into slot `to` of b and checks b's row `to` (log-probs and
/// features) equals a's row `from` bit for bit, before and after one more common token.
template <class Model>
void check_move(Model& a, Model& b, const token_sequence& prompt, std::size_t K, std::size_t steps, std::size_t from,
                std::size_t to) {
  const std::size_t V = a.vocab_size();
  tsmc::default_engine rng(5);
  a.start(prompt, K);
  b.start(prompt, K);
  token_sequence x(K), y(K);
  for (std::size_t t = 0; t < steps; ++t) {
    for (std::size_t k = 0; k < K; ++k) {
      x[k] = static_cast<token>(3 + tsmc::uniform_index(rng, V - 3));
      y[k] = static_cast<token>(3 + tsmc::uniform_index(rng, V - 3));
    }
    a.append(x);
    b.append(y);
  }
  std::vector<std::byte> bytes;
  a.export_slot(from, bytes);
  REQUIRE_FALSE(bytes.empty());
  b.import_slot(to, bytes);
  tsmc::log_prob_matrix la(K, V), lb(K, V);
  for (int round = 0; round < 2; ++round) {
    a.log_probs(la);
    b.log_probs(lb);
    for (std::size_t v = 0; v < V; ++v)
      REQUIRE(la(static_cast<Eigen::Index>(from), static_cast<Eigen::Index>(v)) ==
              lb(static_cast<Eigen::Index>(to), static_cast<Eigen::Index>(v)));
    REQUIRE(a.features().row(static_cast<Eigen::Index>(from)) == b.features().row(static_cast<Eigen::Index>(to)));
    // One more token, the same in both moved slots.
    x[from] = static_cast<token>(V - 1);
    y[to] = static_cast<token>(V - 1);
    a.append(x);
    b.append(y);
  }
}

}  // namespace

TEST_CASE("slot state: an n-gram slot moved to another model continues exactly", "[models]") {
  std::vector<std::string> texts;
  for (const tsmc::labelled_sentence& s : tsmc::story_grammar{}.generate(300, 3)) texts.push_back(s.text);
  const tsmc::word_tokenizer vocabulary = tsmc::word_tokenizer::from_corpus(texts);
  tsmc::ngram_model a = tsmc::ngram_model::train_kneser_ney(vocabulary, texts, {.order = 3});
  tsmc::ngram_model b = a;
  check_move(a, b, vocabulary.encode("the"), 5, 3, 4, 1);
  std::vector<std::byte> bytes;
  a.export_slot(2, bytes);
  CHECK(bytes.size() == 4);
  CHECK_THROWS_WITH(b.import_slot(5, bytes), Catch::Contains("ngram_model::import_slot: slot must be < the number of particles 5"));
  CHECK_THROWS_WITH(b.import_slot(0, std::span<const std::byte>(bytes).first(3)),
                    Catch::Contains("bytes.size() must be 4"));
  bytes.assign(4, std::byte{0xff});
  CHECK_THROWS_WITH(b.import_slot(0, bytes), Catch::Contains("the context id must be one of this model's"));
  CHECK_THROWS_WITH(a.export_slot(7, bytes), Catch::Contains("ngram_model::export_slot: slot must be <"));
}

TEST_CASE("slot state: a llama2.c slot (KV cache rows and hidden state) moved to another model continues exactly",
          "[models]") {
  for (const tsmc::llama2c::config& c : {llama2c_test::tiny_shared(), llama2c_test::tiny_gqa_unshared()}) {
    llama2c_test::temp_dir dir;
    tsmc::llama2c::write_checkpoint(dir.file("model.bin"), c, tsmc::llama2c::random_weights(c, 11, 2.0));
    const auto ckpt = std::make_shared<const tsmc::llama2c::checkpoint>(dir.file("model.bin"));
    tsmc::llama2c::model a(ckpt), b(ckpt);
    check_move(a, b, token_sequence{1, 5, 9}, 4, 4, 3, 0);
    std::vector<std::byte> bytes;
    a.export_slot(1, bytes);
    const std::size_t kv_dim = static_cast<std::size_t>(c.dim / c.n_heads * c.n_kv_heads);
    CHECK(bytes.size() == 8 + static_cast<std::size_t>(c.n_layers) * 2 * kv_dim * a.length() * 4 +
                              static_cast<std::size_t>(c.dim) * 4);
    CHECK_THROWS_WITH(b.import_slot(4, bytes), Catch::Contains("llama2c::model::import_slot: slot must be <"));
    CHECK_THROWS_WITH(b.import_slot(0, std::span<const std::byte>(bytes).first(bytes.size() - 1)),
                      Catch::Contains("bytes.size() must be"));
    b.append(token_sequence(4, 7));  // one position longer: the bytes no longer fit
    CHECK_THROWS_WITH(b.import_slot(0, bytes), Catch::Contains("bytes.size() must be"));
    tsmc::llama2c::model fresh(ckpt);
    CHECK_THROWS_WITH(fresh.export_slot(0, bytes), Catch::Contains("must be started before export_slot"));
  }
}
