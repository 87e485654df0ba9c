#pragma once
/// @file
/// @brief Internals of the testing layer: hashing token sequences into 64-bit seeds (token
/// checks and formatting live in core/error.hpp).
///
/// The random toy model, the random potential and the random twist are deterministic functions
/// of (seed, tokens): they hash the tokens into the seed of a fresh engine, so they need no
/// storage and any prefix can be queried in any order.

#include <tsmc/core/error.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/core/types.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace tsmc::detail {

/// Domain tags: the same user seed gives unrelated streams in the model, potential and twist.
inline constexpr std::uint64_t model_hash_tag = 0x6d6f64656c5f7030ULL;      // "model_p0"
inline constexpr std::uint64_t potential_hash_tag = 0x706f74656e746c31ULL;  // "potentl1"
inline constexpr std::uint64_t twist_hash_tag = 0x7477697374706869ULL;      // "twistphi"

/// A sponge-like 64-bit hash: every absorbed word goes through the SplitMix64 mixer.
/// Copyable, so a common prefix can be hashed once and extended by each candidate token.
class sequence_hasher {
 public:
  /// Starts from a seed and a domain tag.
  constexpr sequence_hasher(std::uint64_t seed, std::uint64_t tag) noexcept
      : state_(splitmix64_mix(splitmix64_mix(seed) ^ tag)) {}

  /// Absorbs one 64-bit word.
  constexpr void absorb(std::uint64_t word) noexcept {
    state_ = splitmix64_mix(state_ ^ (word * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL));
  }

  /// Absorbs one token.
  constexpr void absorb_token(token t) noexcept {
    absorb(static_cast<std::uint64_t>(static_cast<std::uint32_t>(t)));
  }

  /// Absorbs a length followed by the tokens (the length separates consecutive sequences).
  constexpr void absorb_sequence(std::span<const token> tokens) noexcept {
    absorb(static_cast<std::uint64_t>(tokens.size()));
    for (const token t : tokens) absorb_token(t);
  }

  /// The current hash value.
  [[nodiscard]] constexpr std::uint64_t value() const noexcept { return splitmix64_mix(state_); }

 private:
  std::uint64_t state_;
};

}  // namespace tsmc::detail
