// The n-gram model on the built-in world, against a baseline measured in the same run:
//   fill/K                 writing a constant into the K x V matrix (the floor of any log_probs)
//   ngram3_log_probs/K     a trigram model's K x V rows (warm: every context's normaliser cached)
//   ngram5_log_probs/K     the same for a 5-gram model (longer backoff chains)
//   ngram3_log_probs_cold/K  the trigram rows with the normaliser cache cleared before each call
//                          (V exponentials per distinct context on top)
//   ngram3_train/N, ngram5_train/N  interpolated modified Kneser-Ney training on N sentences
// Models are trained on 20000 sentences of the story grammar (V = 263); each of the K slots sits
// at a different point of a held-out sentence. Goal: ngram3_log_probs/256 at most a few times fill/256.
//   ./build/dev/benchmarks/bench_ngram --benchmark_min_time=0.2
#include "ratio_reporter.hpp"

#include <tsmc/corpus/story_grammar.hpp>
#include <tsmc/models/ngram.hpp>
#include <tsmc/models/word_tokenizer.hpp>

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

namespace {

struct corpus {
  tsmc::word_tokenizer vocabulary;
  std::vector<tsmc::token_sequence> train, held_out;
  corpus() {
    const tsmc::story_grammar grammar;
    vocabulary = tsmc::word_tokenizer(std::span<const std::string>(grammar.words()));
    for (const auto& s : grammar.generate(20000, 1)) train.push_back(vocabulary.encode(s.text));
    for (const auto& s : grammar.generate(512, 2)) held_out.push_back(vocabulary.encode(s.text));
  }
};

const corpus& shared_corpus() {
  static const corpus c;
  return c;
}

const tsmc::ngram_model& trained(std::size_t order) {
  static const tsmc::ngram_model order3 =
      tsmc::ngram_model::train_kneser_ney(shared_corpus().vocabulary, shared_corpus().train, {.order = 3});
  static const tsmc::ngram_model order5 =
      tsmc::ngram_model::train_kneser_ney(shared_corpus().vocabulary, shared_corpus().train, {.order = 5});
  return order == 3 ? order3 : order5;
}

/// K slots, each after 12 tokens of its own stream of held-out sentences (joined by </s>),
/// slot k starting k mod 7 tokens into sentence k: K different, realistic contexts.
tsmc::ngram_model positioned(std::size_t order, std::size_t particles) {
  tsmc::ngram_model model = trained(order);
  model.set_features(0);  // time the rows only
  model.start({}, particles);
  const auto& held_out = shared_corpus().held_out;
  std::vector<tsmc::token_sequence> streams(particles);
  for (std::size_t k = 0; k < particles; ++k)
    for (std::size_t j = 0; streams[k].size() < 12 + k % 7; ++j) {
      const tsmc::token_sequence& s = held_out[(k + j) % held_out.size()];
      streams[k].insert(streams[k].end(), s.begin(), s.end());
      streams[k].push_back(tsmc::word_tokenizer::end_token);
    }
  std::vector<tsmc::token> next(particles);
  for (std::size_t t = 0; t < 12; ++t) {
    for (std::size_t k = 0; k < particles; ++k) next[k] = streams[k][k % 7 + t];
    model.append(next);
  }
  return model;
}

void fill(benchmark::State& state) {
  const auto particles = static_cast<std::size_t>(state.range(0));
  tsmc::log_prob_matrix out(particles, trained(3).vocab_size());
  double value = -1.0;
  for (auto _ : state) {
    out.setConstant(value);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
    value -= 1e-9;
  }
}

void log_probs(benchmark::State& state, std::size_t order, bool cold) {
  const auto particles = static_cast<std::size_t>(state.range(0));
  tsmc::ngram_model model = positioned(order, particles);
  tsmc::log_prob_matrix out(particles, model.vocab_size());
  model.log_probs(out);  // warm the cache
  for (auto _ : state) {
    if (cold) model.clear_cache();
    model.log_probs(out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
}

void ngram3_log_probs(benchmark::State& state) { log_probs(state, 3, false); }
void ngram5_log_probs(benchmark::State& state) { log_probs(state, 5, false); }
void ngram3_log_probs_cold(benchmark::State& state) { log_probs(state, 3, true); }

void train(benchmark::State& state, std::size_t order) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto& c = shared_corpus();
  const std::span<const tsmc::token_sequence> sentences(c.train.data(), n);
  for (auto _ : state) {
    tsmc::ngram_model m = tsmc::ngram_model::train_kneser_ney(c.vocabulary, sentences, {.order = order});
    benchmark::DoNotOptimize(m.vocab_size());
  }
}

void ngram3_train(benchmark::State& state) { train(state, 3); }
void ngram5_train(benchmark::State& state) { train(state, 5); }

}  // namespace

BENCHMARK(fill)->Arg(16)->Arg(256)->Unit(benchmark::kMicrosecond);
BENCHMARK(ngram3_log_probs)->Arg(16)->Arg(256)->Unit(benchmark::kMicrosecond);
BENCHMARK(ngram5_log_probs)->Arg(16)->Arg(256)->Unit(benchmark::kMicrosecond);
BENCHMARK(ngram3_log_probs_cold)->Arg(16)->Arg(256)->Unit(benchmark::kMicrosecond);
BENCHMARK(ngram3_train)->Arg(16)->Arg(20000)->Unit(benchmark::kMillisecond);
BENCHMARK(ngram5_train)->Arg(16)->Arg(20000)->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  using baseline = tsmc_bench::ratio_reporter::baseline;
  tsmc_bench::ratio_reporter reporter([](const std::string& name) -> baseline {
    const auto slash = name.find('/');
    const std::string family = name.substr(0, slash), size = name.substr(slash);
    if (family.find("log_probs") != std::string::npos) return {"fill" + size, 1.0};
    return {};
  });
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
}
