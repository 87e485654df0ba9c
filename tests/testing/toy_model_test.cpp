#include <catch2/catch.hpp>

#include <tsmc/core/concepts.hpp>
#include <tsmc/core/log_math.hpp>
#include <tsmc/testing/toy_model.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <span>
#include <vector>

using tsmc::token;
using tsmc::token_sequence;
using tsmc::testing::table_precision;
using tsmc::testing::tabular_model;

namespace {

std::vector<double> row_of(const tabular_model& m, const token_sequence& prompt, const token_sequence& prefix) {
  std::vector<double> out(m.vocab_size());
  m.next_log_probs(prompt, prefix, out);
  return out;
}

std::vector<float> float_row_of(const tabular_model& m, const token_sequence& prompt, const token_sequence& prefix) {
  std::vector<float> out(m.vocab_size());
  m.next_log_probs_float(prompt, prefix, out);
  return out;
}

struct no_reorder_model {
  [[nodiscard]] std::size_t vocab_size() const { return 2; }
  void start(std::span<const token>, std::size_t) {}
  void log_probs(tsmc::log_prob_ref) {}
  void append(std::span<const token>) {}
};

}  // namespace

TEST_CASE("tabular_model models LanguageModel", "[core]") {
  STATIC_REQUIRE(tsmc::LanguageModel<tabular_model>);
  STATIC_REQUIRE_FALSE(tsmc::LanguageModel<no_reorder_model>);
}

TEST_CASE("tabular_model random tables are deterministic, normalised and depend on the whole prefix", "[core]") {
  const tabular_model m(4, 17, 1.5);
  const token_sequence prompt{2, 3};
  const auto a = row_of(m, prompt, {0, 1});
  CHECK(a == row_of(m, prompt, {0, 1}));                       // deterministic
  CHECK(a == row_of(tabular_model(4, 17, 1.5), prompt, {0, 1}));  // a function of the seed
  CHECK(a != row_of(m, prompt, {1, 1}));                       // not Markov: the first token matters
  CHECK(a != row_of(m, {2}, {0, 1}));                          // depends on the prompt
  CHECK(a != row_of(tabular_model(4, 18, 1.5), prompt, {0, 1}));
  CHECK(row_of(m, {}, {}) != row_of(m, {}, {0}));

  for (const token_sequence& prefix : {token_sequence{}, token_sequence{3}, token_sequence{0, 1, 2, 3, 0}}) {
    const auto row = row_of(m, prompt, prefix);
    CHECK(std::abs(tsmc::logsumexp(std::span<const double>(row))) < 1e-15);
    // The double row is the exact renormalisation of the float row: a constant shift.
    const auto f = float_row_of(m, prompt, prefix);
    const double shift = static_cast<double>(f[0]) - row[0];
    CHECK(std::abs(shift) < 1e-6);
    for (std::size_t v = 0; v < 4; ++v) CHECK(static_cast<double>(f[v]) - row[v] == Approx(shift).margin(1e-15));
    CHECK(shift == Approx(tsmc::logsumexp(std::span<const float>(f))).margin(1e-15));
  }

  // scale 0: uniform tables.
  const auto uniform = row_of(tabular_model(4, 5, 0.0), {}, {1});
  for (double x : uniform) CHECK(x == Approx(-std::log(4.0)).margin(1e-15));
  // A larger scale spreads the logits.
  const auto peaked = row_of(tabular_model(4, 5, 10.0), {}, {1});
  CHECK(*std::max_element(peaked.begin(), peaked.end()) - *std::min_element(peaked.begin(), peaked.end()) > 1.0);
}

TEST_CASE("tabular_model batched interface follows each particle's prefix", "[core]") {
  tabular_model m(3, 99);
  const token_sequence prompt{1};
  m.start(prompt, 4);
  CHECK(m.particles() == 4);
  tsmc::log_prob_matrix out(4, 3);
  m.log_probs(out);
  for (Eigen::Index k = 0; k < 4; ++k)
    for (Eigen::Index v = 0; v < 3; ++v) CHECK(out(k, v) == row_of(m, prompt, {})[static_cast<std::size_t>(v)]);

  const std::vector<token> first{0, 1, 2, 0};
  m.append(first);
  const std::vector<token> second{1, 1, 0, 2};
  m.append(second);
  m.log_probs(out);
  CHECK(m.log_prob_calls() == 2);
  for (std::size_t k = 0; k < 4; ++k) {
    const token_sequence prefix{first[k], second[k]};
    CHECK(m.prefixes()[k] == prefix);
    const auto row = row_of(m, prompt, prefix);  // log_probs writes next_log_probs exactly
    for (std::size_t v = 0; v < 3; ++v) CHECK(out(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(v)) == row[v]);
  }

  // Slot-stable ancestors: slots 1 and 3 died and take 0 and 2's state; one copy per dead particle.
  const std::vector<tsmc::particle_index> ancestors{0, 0, 2, 2};
  m.reorder(ancestors);
  CHECK(m.copies() == 2);
  CHECK(m.prefixes()[1] == token_sequence{0, 1});
  CHECK(m.prefixes()[3] == token_sequence{2, 0});
  CHECK(m.prefixes()[0] == token_sequence{0, 1});
  CHECK(m.prefixes()[2] == token_sequence{2, 0});

  // Any ancestor vector works, including a permutation (sources overwritten).
  const std::vector<tsmc::particle_index> swap{2, 3, 0, 0};
  m.reorder(swap);
  CHECK(m.copies() == 2 + 4);
  CHECK(m.prefixes()[0] == token_sequence{2, 0});
  CHECK(m.prefixes()[1] == token_sequence{2, 0});
  CHECK(m.prefixes()[2] == token_sequence{0, 1});
  CHECK(m.prefixes()[3] == token_sequence{0, 1});

  // start resets the state and the counters.
  m.start(prompt, 2);
  CHECK(m.copies() == 0);
  CHECK(m.log_prob_calls() == 0);
  CHECK(m.prefixes()[1].empty());
}

TEST_CASE("tabular_model explicit tables: exact and single precision", "[core]") {
  const std::map<token_sequence, std::vector<double>> table{
      {{}, {0.3, 0.7}}, {{0}, {0.6, 0.4}}, {{1}, {0.1, 0.9}}};
  const auto exact = tabular_model::from_table(2, table, table_precision::exact);
  const auto single = tabular_model::from_table(2, table);
  for (const auto& [prefix, probs] : table) {
    const auto e = row_of(exact, {}, prefix);
    const auto s = row_of(single, {}, prefix);
    const auto f = float_row_of(exact, {}, prefix);
    for (std::size_t v = 0; v < 2; ++v) {
      CHECK(e[v] == Approx(std::log(probs[v])).margin(1e-15));
      CHECK(s[v] == Approx(std::log(probs[v])).margin(1e-7));
      CHECK(f[v] == static_cast<float>(std::log(probs[v])));
    }
    CHECK(std::abs(tsmc::logsumexp(std::span<const double>(s))) < 1e-15);
  }
  // Unnormalised tables are normalised, zeros are -inf.
  const auto zeros = tabular_model::from_function(
      3, [](std::span<const token>, std::span<const token>) { return std::vector<double>{2.0, 0.0, 6.0}; },
      table_precision::exact);
  const auto z = row_of(zeros, {}, {});
  CHECK(z[0] == Approx(std::log(0.25)).margin(1e-15));
  CHECK(z[1] == tsmc::neg_inf);
  CHECK(z[2] == Approx(std::log(0.75)).margin(1e-15));
  // The prompt reaches the function.
  const auto by_prompt = tabular_model::from_function(2, [](std::span<const token> prompt, std::span<const token>) {
    return prompt.empty() ? std::vector<double>{1.0, 1.0} : std::vector<double>{1.0, 3.0};
  });
  CHECK(row_of(by_prompt, {1}, {})[1] == Approx(std::log(0.75)).margin(1e-7));
}

TEST_CASE("tabular_model rejects bad input with clear messages", "[core]") {
  tabular_model m(4, 1);
  CHECK_THROWS_AS(tabular_model(0, 1), tsmc::invalid_argument);
  CHECK_THROWS_AS(tabular_model(4, 1, -1.0), tsmc::invalid_argument);
  CHECK_THROWS_WITH(m.start({}, 0), "tsmc::testing::tabular_model::start: particles must be positive, got 0");
  const token_sequence bad_prompt{1, 4};
  CHECK_THROWS_WITH(m.start(bad_prompt, 2),
                    "tsmc::testing::tabular_model::start: prompt[1] must be in [0, 4), got 4");
  m.start({}, 4);
  const std::vector<token> bad{0, 1, 2, 7};
  CHECK_THROWS_WITH(m.append(bad), "tsmc::testing::tabular_model::append: tokens[3] must be in [0, 4), got 7");
  const std::vector<token> negative{0, -1, 2, 3};
  CHECK_THROWS_AS(m.append(negative), tsmc::invalid_argument);
  const std::vector<token> short_tokens{0, 1};
  CHECK_THROWS_WITH(m.append(short_tokens),
                    "tsmc::testing::tabular_model::append: tokens.size() must equal the number of particles 4, got 2");
  tsmc::log_prob_matrix wrong_rows(3, 4), wrong_cols(4, 3);
  CHECK_THROWS_AS(m.log_probs(wrong_rows), tsmc::invalid_argument);
  CHECK_THROWS_AS(m.log_probs(wrong_cols), tsmc::invalid_argument);
  const std::vector<tsmc::particle_index> out_of_range{0, 1, 4, 3};
  CHECK_THROWS_WITH(m.reorder(out_of_range),
                    "tsmc::testing::tabular_model::reorder: ancestors[2] must be < 4, got 4");
  const std::vector<tsmc::particle_index> short_ancestors{0};
  CHECK_THROWS_AS(m.reorder(short_ancestors), tsmc::invalid_argument);
  std::vector<double> row(3);
  CHECK_THROWS_AS(m.next_log_probs({}, {}, row), tsmc::invalid_argument);

  const auto table = tabular_model::from_table(2, {{{}, {0.5, 0.5}}});
  std::vector<double> two(2);
  const token_sequence missing{1};
  CHECK_THROWS_WITH(table.next_log_probs({}, missing, two),
                    "tsmc::testing::tabular_model::next_log_probs: prefix must be a key of the table, got [1]");
  const auto negative_table = tabular_model::from_table(2, {{{}, {-0.5, 1.0}}});
  CHECK_THROWS_AS(negative_table.next_log_probs({}, {}, two), tsmc::invalid_argument);
  const auto zero_table = tabular_model::from_table(2, {{{}, {0.0, 0.0}}});
  CHECK_THROWS_AS(zero_table.next_log_probs({}, {}, two), tsmc::invalid_argument);
  const auto wrong_size = tabular_model::from_table(2, {{{}, {1.0}}});
  CHECK_THROWS_AS(wrong_size.next_log_probs({}, {}, two), tsmc::invalid_argument);
  CHECK_THROWS_AS(tabular_model::from_function(2, nullptr), tsmc::invalid_argument);
}
