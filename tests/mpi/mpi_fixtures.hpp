#pragma once
// Shared fixtures of the MPI tests: an enumerable toy problem (exact log Z), a communicator, and
// bit-level comparisons.

#include <tsmc/core/random.hpp>
#include <tsmc/core/slot_state.hpp>
#include <tsmc/core/types.hpp>
#include <tsmc/distributed/communicator.hpp>
#include <tsmc/smc/stateless_model.hpp>
#include <tsmc/testing/enumeration.hpp>
#include <tsmc/testing/toy_model.hpp>
#include <tsmc/testing/toy_potentials.hpp>

#include <Eigen/Core>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

namespace tsmc_mpi_test {

using namespace tsmc;
using namespace tsmc::testing;

/// The bits of a double (so that tests compare estimates bit for bit, NaN and -inf included).
inline std::uint64_t bits(double x) { return std::bit_cast<std::uint64_t>(x); }

/// Whether two spans of doubles are equal bit for bit.
inline bool same_bits(std::span<const double> a, std::span<const double> b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size_bytes()) == 0);
}

/// A LanguageModel over a tabular_model's rows that keeps each slot's prefix and implements the
/// slot-state hooks (SlotStateModel): the distributed sampler's test model.
class slot_model {
 public:
  explicit slot_model(const tabular_model& table) : table_(&table) {}
  [[nodiscard]] std::size_t vocab_size() const { return table_->vocab_size(); }
  void start(std::span<const token> prompt, std::size_t particles) {
    prompt_.assign(prompt.begin(), prompt.end());
    prefixes_.assign(particles, token_sequence{});
  }
  void log_probs(log_prob_ref out) {
    row_.resize(vocab_size());
    for (std::size_t k = 0; k < prefixes_.size(); ++k) {
      table_->next_log_probs(prompt_, prefixes_[k], row_);
      for (std::size_t v = 0; v < row_.size(); ++v) out(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(v)) = row_[v];
    }
  }
  void append(std::span<const token> tokens) {
    for (std::size_t k = 0; k < tokens.size(); ++k) prefixes_[k].push_back(tokens[k]);
  }
  void reorder(std::span<const particle_index> ancestors) {
    for (std::size_t k = 0; k < ancestors.size(); ++k)
      if (ancestors[k] != k) prefixes_[k] = prefixes_[ancestors[k]];
  }
  void export_slot(std::size_t slot, std::vector<std::byte>& out) const {
    const auto* p = reinterpret_cast<const std::byte*>(prefixes_.at(slot).data());
    out.insert(out.end(), p, p + prefixes_[slot].size() * sizeof(token));
  }
  void import_slot(std::size_t slot, std::span<const std::byte> bytes) {
    check_argument(bytes.size() % sizeof(token) == 0, "slot_model::import_slot", "bytes.size()",
                   "must be a multiple of sizeof(token)", bytes.size());
    prefixes_.at(slot).resize(bytes.size() / sizeof(token));
    if (!bytes.empty()) std::memcpy(prefixes_[slot].data(), bytes.data(), bytes.size());
  }
  [[nodiscard]] std::span<const token_sequence> prefixes() const { return prefixes_; }

 private:
  const tabular_model* table_;
  token_sequence prompt_;
  std::vector<token_sequence> prefixes_;
  std::vector<double> row_;
};

/// V = 4 tokens (3 is the end token), horizon 4, prompt {1, 0}: a random model and a random
/// potential, enumerated exactly.
struct toy {
  toy_problem problem{4, 4, token_sequence{1, 0}, token{3}};
  tabular_model model;
  random_potential potential;
  exact_solution solution;
  enumeration_sampler exact;
  slot_model movable;  ///< the model as a SlotStateModel (for the distributed sampler)

  explicit toy(std::uint64_t seed = 7)
      : model(4, seed, 1.0), potential(seed + 100, 1.0), solution(enumerate(problem, model, potential)),
        exact(solution), movable(model) {}
  toy(const toy&) = delete;
  toy& operator=(const toy&) = delete;
};

}  // namespace tsmc_mpi_test
