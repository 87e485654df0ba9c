// Writes the fuzz targets' seed corpus (fuzz/corpus/<name>/): small valid files of every format,
// made by tsmc's own writers, plus a few near misses. Run from the repository root:
//   g++ -std=c++20 -Iinclude -I/usr/include/eigen3 fuzz/make_corpus.cpp -o /tmp/make_corpus && /tmp/make_corpus
#include <tsmc/learning/parameter_io.hpp>
#include <tsmc/models/gguf.hpp>
#include <tsmc/models/gguf_llama2c.hpp>
#include <tsmc/models/llama2c_checkpoint.hpp>
#include <tsmc/models/llama2c_tokenizer.hpp>
#include <tsmc/models/ngram.hpp>
#include <tsmc/models/word_tokenizer.hpp>
#include <tsmc/potentials/classifier.hpp>

#include <Eigen/Dense>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace fs = std::filesystem;

static void truncated_copy(const fs::path& from, const fs::path& to, std::size_t keep) {
  std::ifstream in(from, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  bytes.resize(std::min(keep, bytes.size()));
  std::ofstream(to, std::ios::binary) << bytes;
}

int main() {
  const fs::path root = "fuzz/corpus";
  for (const char* d : {"llama2c_checkpoint", "llama2c_tokenizer", "arpa", "parameters", "classifier", "gguf"})
    fs::create_directories(root / d);

  // llama2.c checkpoints: shared and unshared classifier, grouped-query attention.
  tsmc::llama2c::config c{.dim = 8, .hidden_dim = 12, .n_layers = 1, .n_heads = 2, .n_kv_heads = 1,
                          .vocab_size = 6, .seq_len = 4, .shared_classifier = true};
  tsmc::llama2c::make_random_checkpoint(root / "llama2c_checkpoint/shared.bin", c, 1);
  c.shared_classifier = false;
  c.n_kv_heads = 2;
  tsmc::llama2c::make_random_checkpoint(root / "llama2c_checkpoint/unshared.bin", c, 2);
  truncated_copy(root / "llama2c_checkpoint/unshared.bin", root / "llama2c_checkpoint/truncated.bin", 100);

  // GGUF: tiny llama and qwen2 models (F32, Q8_0, F16, BF16; version 2 and 3), a converted llama2.c
  // checkpoint with its tokenizer, and a truncated file.
  {
    tsmc::llama2c::config g{.dim = 32, .hidden_dim = 32, .n_layers = 1, .n_heads = 2, .n_kv_heads = 1,
                            .vocab_size = 6, .seq_len = 4, .shared_classifier = true};
    tsmc::gguf::write_file(root / "gguf/llama_f32.gguf", tsmc::gguf::random_model(g, 1));
    tsmc::gguf::write_file(root / "gguf/llama_q8_0_v2.gguf", tsmc::gguf::random_model(g, 2, {.type = 8, .version = 2}));
    g.shared_classifier = false;
    tsmc::gguf::write_file(root / "gguf/qwen2_f16.gguf", tsmc::gguf::random_model(g, 3, {.architecture = "qwen2", .type = 1}));
    tsmc::gguf::write_file(root / "gguf/llama_bf16.gguf", tsmc::gguf::random_model(g, 4, {.type = 30}));
    truncated_copy(root / "gguf/llama_f32.gguf", root / "gguf/truncated.gguf", 300);
  }

  // llama2.c tokenizers: bytes, words, merges.
  const std::vector<std::string> pieces{"<unk>", "<s>", "</s>", "<0x41>", " ", "a", "b", "ab", " ab", "hello", " hello"};
  const std::vector<float> scores{0, 0, 0, 0, -1, -2, -2, -1, -0.5f, -3, -0.25f};
  tsmc::llama2c::write_tokenizer(root / "llama2c_tokenizer/small.tok", pieces, scores);
  truncated_copy(root / "llama2c_tokenizer/small.tok", root / "llama2c_tokenizer/truncated.tok", 40);

  // ARPA: a trigram model of a few sentences.
  const std::vector<std::string> sentences{"the cat sat", "the dog sat", "a cat ran", "the cat ran home"};
  const auto vocabulary = tsmc::word_tokenizer::from_corpus(sentences);
  const auto model = tsmc::ngram_model::train_kneser_ney(vocabulary, std::span<const std::string>(sentences),
                                                        tsmc::kneser_ney_options{.order = 3});
  model.save_arpa((root / "arpa/trigram.arpa").string());
  std::ofstream(root / "arpa/minimal.arpa") << "\\data\\\nngram 1=3\n\n\\1-grams:\n-1.0\t<s>\n-0.5\t</s>\n-0.5\tx\n\n\\end\\\n";

  // Parameter files: the shapes fuzz_parameters.cpp expects, and another shape.
  Eigen::VectorXd w = Eigen::VectorXd::LinSpaced(6, -1.0, 1.0), gw = Eigen::VectorXd::Zero(6);
  Eigen::VectorXd b = Eigen::VectorXd::LinSpaced(3, 0.5, 1.5), gb = Eigen::VectorXd::Zero(3);
  std::vector<tsmc::parameter_block> blocks;
  blocks.push_back({"weight", 2, 3, Eigen::Map<Eigen::VectorXd>(w.data(), 6), Eigen::Map<Eigen::VectorXd>(gw.data(), 6)});
  blocks.push_back({"bias", 3, 1, Eigen::Map<Eigen::VectorXd>(b.data(), 3), Eigen::Map<Eigen::VectorXd>(gb.data(), 3)});
  tsmc::save_parameters(root / "parameters/twist.params", blocks);
  blocks.pop_back();
  tsmc::save_parameters(root / "parameters/one_block.params", blocks);

  // Classifiers.
  const std::vector<tsmc::token_sequence> seqs{{1, 2}, {2, 3}, {3, 1}, {1, 1}};
  const std::vector<std::size_t> labels{0, 1, 1, 0};
  tsmc::bag_of_words_classifier::train(seqs, labels, 2, 4).save((root / "classifier/two_classes.txt").string());
  tsmc::bag_of_words_classifier::train(seqs, std::vector<std::size_t>{0, 1, 2, 0}, 3, 4)
      .save((root / "classifier/three_classes.txt").string());
  // Format version 1 (before the checksum line): the same lines with the old header, no checksum.
  std::ifstream two(root / "classifier/two_classes.txt", std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(two)), std::istreambuf_iterator<char>());
  text = "tsmc-bow-classifier 1" + text.substr(text.find('\n'), text.rfind("checksum ") - text.find('\n'));
  std::ofstream(root / "classifier/two_classes_v1.txt", std::ios::binary) << text;
  // A near miss: format 2 with one byte of a weight changed (fails its checksum).
  std::ifstream three(root / "classifier/three_classes.txt", std::ios::binary);
  std::string corrupt((std::istreambuf_iterator<char>(three)), std::istreambuf_iterator<char>());
  corrupt[corrupt.find("bias") + 6] = corrupt[corrupt.find("bias") + 6] == '1' ? '2' : '1';
  std::ofstream(root / "classifier/corrupt_checksum.txt", std::ios::binary) << corrupt;
  return 0;
}
