#pragma once
/// @file
/// @brief Random numbers: bit-exact uniforms from any engine, a fast default engine and
/// per-particle streams derived from (seed, step, particle).
///
/// The library never uses std::uniform_real_distribution (its output differs between standard
/// libraries); every uniform is built here from the engine's raw bits, so a seed gives the same
/// run with libstdc++ and libc++.

#include <bit>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <limits>
#include <random>
#include <type_traits>

namespace tsmc {

namespace detail {
__extension__ typedef unsigned __int128 uint128;  // __extension__: silences -Wpedantic
}  // namespace detail

/// @brief An engine the library can draw from: any std::uniform_random_bit_generator.
template <class E>
concept RandomEngine = std::uniform_random_bit_generator<std::remove_reference_t<E>>;

/// @brief SplitMix64 finaliser: a bijective 64-bit mixer (Steele, Lea and Flood 2014).
/// @param x any 64-bit value
/// @return the mixed value
[[nodiscard]] constexpr std::uint64_t splitmix64_mix(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/// @brief xoshiro256** (Blackman and Vigna 2018): a small, fast 64-bit engine with 2^256 - 1
/// period. The library's default engine; models std::uniform_random_bit_generator.
class xoshiro256ss {
 public:
  /// @brief The engine's output type.
  using result_type = std::uint64_t;

  /// @brief Seeds the 256-bit state from one 64-bit seed through SplitMix64.
  /// @param seed any value; equal seeds give equal streams
  constexpr explicit xoshiro256ss(std::uint64_t seed = 0x853c49e6748fea9bULL) noexcept { reseed(seed); }

  /// @brief Re-seeds as the constructor does.
  constexpr void reseed(std::uint64_t seed) noexcept {
    std::uint64_t x = seed;
    for (auto& word : state_) {
      word = splitmix64_mix(x);
      x += 0x9e3779b97f4a7c15ULL;
    }
  }

  /// @brief Smallest value returned.
  [[nodiscard]] static constexpr result_type min() noexcept { return 0; }
  /// @brief Largest value returned.
  [[nodiscard]] static constexpr result_type max() noexcept { return ~result_type{0}; }

  /// @brief Next 64 random bits.
  constexpr result_type operator()() noexcept {
    const std::uint64_t result = std::rotl(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = std::rotl(state_[3], 45);
    return result;
  }

  /// @brief Engines compare equal when their states are equal.
  [[nodiscard]] friend constexpr bool operator==(const xoshiro256ss&, const xoshiro256ss&) = default;

 private:
  std::uint64_t state_[4]{};
};

/// @brief The engine the library's examples and defaults use.
using default_engine = xoshiro256ss;

/// @brief The seed of a per-particle stream: a hash of (seed, step, particle).
///
/// Streams for different (step, particle) pairs are statistically independent for practical
/// purposes, and a particle's randomness does not depend on how particles are split over threads.
[[nodiscard]] constexpr std::uint64_t stream_seed(std::uint64_t seed, std::uint64_t step,
                                                  std::uint64_t particle) noexcept {
  std::uint64_t h = splitmix64_mix(seed);
  h = splitmix64_mix(h ^ (step * 0xd1b54a32d192ed03ULL));
  h = splitmix64_mix(h ^ (particle * 0xabc98388fb8fac03ULL));
  return h;
}

/// @brief A per-particle engine for one step: the stream (seed, step, particle).
[[nodiscard]] constexpr default_engine particle_stream(std::uint64_t seed, std::uint64_t step,
                                                       std::uint64_t particle) noexcept {
  return default_engine(stream_seed(seed, step, particle));
}

/// @brief 64 uniformly random bits from any engine, whatever its range.
///
/// Engines with a 2^b-wide range are concatenated; other ranges (std::minstd_rand) are reduced
/// to their largest power-of-two subrange by rejection, so every bit is unbiased.
template <RandomEngine Engine>
[[nodiscard]] std::uint64_t random_bits64(Engine& engine) {
  using result = typename std::remove_reference_t<Engine>::result_type;
  constexpr std::uint64_t lo = static_cast<std::uint64_t>(std::remove_reference_t<Engine>::min());
  constexpr std::uint64_t hi = static_cast<std::uint64_t>(std::remove_reference_t<Engine>::max());
  constexpr std::uint64_t span = hi - lo;  // range size minus one
  if constexpr (span == ~std::uint64_t{0}) {
    return static_cast<std::uint64_t>(engine()) - lo;
  } else {
    // Usable bits per call: the largest b with 2^b <= span + 1.
    constexpr int bits = std::bit_width(span + 1) - 1;
    constexpr std::uint64_t mask = (std::uint64_t{1} << bits) - 1;
    std::uint64_t out = 0;
    int have = 0;
    while (have < 64) {
      std::uint64_t v = static_cast<std::uint64_t>(static_cast<result>(engine())) - lo;
      if constexpr (((span + 1) & span) != 0) {  // not a power of two: reject the top part
        while (v > mask) v = static_cast<std::uint64_t>(static_cast<result>(engine())) - lo;
      }
      out = (have == 0) ? v : (out << bits) | v;
      have += bits;
    }
    return out;
  }
}

/// @brief A uniform double in [0, 1) with 53 random bits (every value a multiple of 2^-53).
template <RandomEngine Engine>
[[nodiscard]] double uniform01(Engine& engine) {
  return static_cast<double>(random_bits64(engine) >> 11) * 0x1.0p-53;
}

/// @brief A uniform double in (0, 1): (n + 1/2) 2^-52 for 52 random bits n; never 0 or 1,
/// so its logarithm is always finite. Values lie in [2^-53, 1 - 2^-53].
///
/// 52 bits, not 53: n + 1/2 must be exact in a double, which holds only for n < 2^52 (with 53
/// bits, n = 2^53 - 1 rounds n + 1/2 up to 2^53 and the result to exactly 1).
template <RandomEngine Engine>
[[nodiscard]] double uniform_open01(Engine& engine) {
  return (static_cast<double>(random_bits64(engine) >> 12) + 0.5) * 0x1.0p-52;
}

/// @brief A standard exponential variate, -log U with U uniform on (0, 1).
template <RandomEngine Engine>
[[nodiscard]] double exponential(Engine& engine) {
  return -std::log(uniform_open01(engine));
}

/// @brief A uniform integer in [0, n) by Lemire's nearly-divisionless method (unbiased).
/// @pre n > 0
template <RandomEngine Engine>
[[nodiscard]] std::uint64_t uniform_index(Engine& engine, std::uint64_t n) {
  // 128-bit multiply: the high word is uniform on [0, n) after rejecting the low word's bias.
  detail::uint128 m = static_cast<detail::uint128>(random_bits64(engine)) * n;
  auto low = static_cast<std::uint64_t>(m);
  if (low < n) {
    const std::uint64_t threshold = (0 - n) % n;
    while (low < threshold) {
      m = static_cast<detail::uint128>(random_bits64(engine)) * n;
      low = static_cast<std::uint64_t>(m);
    }
  }
  return static_cast<std::uint64_t>(m >> 64);
}

/// @brief A standard normal variate by the Box-Muller transform (uses two uniforms).
template <RandomEngine Engine>
[[nodiscard]] double standard_normal(Engine& engine) {
  const double u1 = uniform_open01(engine);
  const double u2 = uniform01(engine);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * 3.14159265358979323846 * u2);
}

}  // namespace tsmc
