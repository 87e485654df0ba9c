#pragma once
/// @file
/// @brief From offspring counts to ancestor indices: slot-stable (n == K) or in index order.
///
/// Slot-stable ancestors let a stateful model (a KV cache) copy state only where a particle died:
/// ancestors[i] == i for every particle with at least one offspring, and the extra copies of the
/// particles with several offspring fill the slots of the particles with none. The number of
/// slots with ancestors[i] != i is then exactly the number of dead particles, the least possible.

#include <tsmc/core/error.hpp>
#include <tsmc/core/types.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tsmc {

/// @brief Turns K offspring counts summing to K into slot-stable ancestors.
///
/// ancestors[i] == i whenever counts[i] >= 1; particle j with counts[j] = c > 1 also fills c - 1
/// slots of particles with counts == 0, in increasing slot order. Hence the multiset of ancestors
/// holds j exactly counts[j] times, and #{i : ancestors[i] != i} == #{i : counts[i] == 0}.
/// O(K), no allocation.
/// @param counts K offspring counts with sum(counts) == K
/// @param ancestors K outputs (must not alias counts)
/// @throw tsmc::invalid_argument "tsmc::slot_stable_ancestors: ..." if ancestors.size() != K or
/// sum(counts) != K
inline void slot_stable_ancestors(std::span<const particle_index> counts, std::span<particle_index> ancestors) {
  const std::size_t k = counts.size();
  check_size("slot_stable_ancestors", "ancestors.size()", ancestors.size(), "counts.size()", k);
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < k; ++i) {
    total += counts[i];
    ancestors[i] = static_cast<particle_index>(i);  // survivors keep their slot; dead slots are overwritten below
  }
  check_size("slot_stable_ancestors", "sum(counts)", total, "counts.size()", k);
  std::size_t dead = 0;  // next candidate dead slot; the sum check guarantees one exists per extra copy
  for (std::size_t i = 0; i < k; ++i) {
    for (particle_index extra = 1; extra < counts[i]; ++extra) {
      while (counts[dead] != 0) ++dead;
      ancestors[dead++] = static_cast<particle_index>(i);
    }
  }
}

/// @brief Turns K offspring counts into ancestors in index order: particle j repeated counts[j]
/// times (0, 0, 2, 3, 3, ...). For n != K, where slots cannot be stable. O(n + K), no allocation.
/// @param counts K offspring counts
/// @param ancestors sum(counts) outputs
/// @throw tsmc::invalid_argument "tsmc::ancestors_from_counts: ..." if ancestors.size() != sum(counts)
inline void ancestors_from_counts(std::span<const particle_index> counts, std::span<particle_index> ancestors) {
  std::uint64_t total = 0;
  for (const particle_index c : counts) total += c;
  check_size("ancestors_from_counts", "ancestors.size()", ancestors.size(), "sum(counts)", total);
  std::size_t slot = 0;
  for (std::size_t i = 0; i < counts.size(); ++i)
    for (particle_index c = 0; c < counts[i]; ++c) ancestors[slot++] = static_cast<particle_index>(i);
}

namespace detail {

/// Applies ancestors to per-particle states for `function` (a model's reorder): values[k]
/// becomes the old values[ancestors[k]]. Only slots with ancestors[k] != k are copied, in place
/// when no source is itself overwritten (ancestors[ancestors[k]] == ancestors[k]: slot-stable
/// ancestors, what the sampler passes), otherwise from a snapshot, so any ancestor vector works.
/// Returns the number of slots copied.
/// @throw tsmc::invalid_argument "tsmc::<function>: ..." if ancestors.size() != values.size() or
/// an ancestor is >= values.size() (values are then unchanged)
template <class T>
std::size_t copy_from_ancestors(std::string_view function, std::vector<T>& values,
                                std::span<const particle_index> ancestors) {
  const std::size_t k = values.size();
  check_size(function, "ancestors.size()", ancestors.size(), "the number of particles", k);
  bool in_place = true;
  std::size_t copies = 0;
  for (std::size_t i = 0; i < k; ++i) {
    const particle_index a = ancestors[i];
    if (a >= k)  // the message is built only on failure: this runs per particle
      throw_invalid_argument(function, "ancestors[" + std::to_string(i) + "]", "must be < " + std::to_string(k), a);
    if (a != i) {
      ++copies;
      in_place = in_place && ancestors[a] == a;  // a < k: checked just above
    }
  }
  std::vector<T> snapshot;
  if (!in_place) snapshot = values;
  const std::vector<T>& source = in_place ? values : snapshot;
  for (std::size_t i = 0; i < k; ++i)
    if (ancestors[i] != i) values[i] = source[ancestors[i]];
  return copies;
}

}  // namespace detail

}  // namespace tsmc
