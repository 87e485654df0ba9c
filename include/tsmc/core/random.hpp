#pragma once
/// @file
/// @brief Random numbers: bit-exact uniforms from any engine, a fast default engine and
/// per-particle streams derived from (seed, step, particle).
///
/// The library never uses std::uniform_real_distribution (its output differs between standard
/// libraries); every uniform is built here from the engine's raw bits, so a seed gives the same
/// run with libstdc++ and libc++.

#include <tsmc/core/error.hpp>

#include <bit>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace tsmc {

namespace detail {
__extension__ typedef unsigned __int128 uint128;  // __extension__: silences -Wpedantic
}  // namespace detail

namespace detail {
/// std::uniform_random_bit_generator ([rand.req.urng]) word for word, so that this header does
/// not include <random> (about a second of every user build's front end, measured with clang
/// -ftime-trace); std::mt19937 and the standard engines model it as they model the standard's.
template <class G>
concept uniform_random_bit_generator =
    std::invocable<G&> && std::unsigned_integral<std::invoke_result_t<G&>> && requires {
      { G::min() } -> std::same_as<std::invoke_result_t<G&>>;
      { G::max() } -> std::same_as<std::invoke_result_t<G&>>;
      requires std::bool_constant<(G::min() < G::max())>::value;
    };
}  // namespace detail

/// @brief An engine the library can draw from: any std::uniform_random_bit_generator.
template <class E>
concept RandomEngine = detail::uniform_random_bit_generator<std::remove_reference_t<E>>;

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

namespace detail {
/// uniform_open01's value from 64 random bits: (n + 1/2) 2^-52 for their top 52 bits n.
[[nodiscard]] constexpr double uniform_open01_from_bits(std::uint64_t bits) noexcept {
  return (static_cast<double>(bits >> 12) + 0.5) * 0x1.0p-52;
}
}  // namespace detail

/// @brief A uniform double in (0, 1): (n + 1/2) 2^-52 for 52 random bits n; never 0 or 1,
/// so its logarithm is always finite. Values lie in [2^-53, 1 - 2^-53].
///
/// 52 bits, not 53: n + 1/2 must be exact in a double, which holds only for n < 2^52 (with 53
/// bits, n = 2^53 - 1 rounds n + 1/2 up to 2^53 and the result to exactly 1).
template <RandomEngine Engine>
[[nodiscard]] double uniform_open01(Engine& engine) {
  return detail::uniform_open01_from_bits(random_bits64(engine));
}

/// @brief A standard exponential variate, -log U with U uniform on (0, 1).
template <RandomEngine Engine>
[[nodiscard]] double exponential(Engine& engine) {
  return -std::log(uniform_open01(engine));
}

namespace detail {

/// The 256-layer ziggurat for Exp(1) (Marsaglia and Tsang 2000, "The ziggurat method for
/// generating random variables", J. Stat. Softw. 5(8)). The region under e^{-x} is covered by
/// 256 layers of equal area v: a base strip [0, x_0) x [0, e^{-r}) whose part beyond x_1 = r
/// stands for the tail, and rectangles [0, x_i) x [e^{-x_i}, e^{-x_{i+1}}) for i = 1..255,
/// with x_{i+1} = -log(e^{-x_i} + v / x_i) and x_256 = 0. A uniform layer i and a uniform
/// x in [0, x_i) give a sample at once when x < x_{i+1} (the strip below the next layer lies
/// under the curve: 97.8% of draws); otherwise the wedge (or the tail) decides.
struct exponential_ziggurat_tables {
  /// Layers, and so the bits of the layer index (the low 8 bits of a draw).
  static constexpr int layers = 256;
  /// x_1, the right edge of the base rectangle, for 256 layers (Marsaglia and Tsang 2000).
  static constexpr double r = 7.69711747013104972;
  double area = 0.0;                ///< v = (r + 1) e^{-r}, the area of every layer
  double edge[layers + 1] = {};     ///< x_0 = v / e^{-r} > x_1 = r > ... > x_256 = 0
  double density[layers + 1] = {};  ///< e^{-x_i}
  double scale[layers] = {};        ///< x_i 2^-53: a 53-bit integer times scale[i] is uniform on [0, x_i)
};

/// Builds the tables from r by the recursion above (once per program, at first use).
[[nodiscard]] inline exponential_ziggurat_tables make_exponential_ziggurat_tables() {
  exponential_ziggurat_tables z;
  constexpr int n = exponential_ziggurat_tables::layers;
  const double r = exponential_ziggurat_tables::r;
  z.area = (r + 1.0) * std::exp(-r);
  z.edge[0] = z.area / std::exp(-r);
  z.edge[1] = r;
  for (int i = 1; i + 1 < n; ++i) z.edge[i + 1] = -std::log(std::exp(-z.edge[i]) + z.area / z.edge[i]);
  z.edge[n] = 0.0;
  for (int i = 0; i <= n; ++i) z.density[i] = std::exp(-z.edge[i]);
  for (int i = 0; i < n; ++i) z.scale[i] = z.edge[i] * 0x1.0p-53;
  return z;
}

/// The program's ziggurat tables (thread-safe initialisation on first use).
[[nodiscard]] inline const exponential_ziggurat_tables& shared_exponential_ziggurat() {
  static const exponential_ziggurat_tables tables = make_exponential_ziggurat_tables();
  return tables;
}

/// The ziggurat's slow path, for x = U x_i that fell outside layer i's inner strip [0, x_{i+1}):
/// in the base layer the tail r + Exp(1) (memorylessness), in the others the wedge test of a
/// uniform height in the layer against e^{-x}. `bits` are fresh random bits. Returns the variate,
/// or -1 when the wedge rejects (the caller draws a new layer). Out of line: it runs for about
/// 2.2% of draws, and keeping it out keeps the fast path small.
[[gnu::noinline]] inline double exponential_ziggurat_edge(const exponential_ziggurat_tables& z, unsigned layer,
                                                          double x, std::uint64_t bits) {
  const double u = uniform_open01_from_bits(bits);
  if (layer == 0) return z.edge[1] - std::log(u);
  const double height = z.density[layer] + u * (z.density[layer + 1] - z.density[layer]);
  return height < std::exp(-x) ? x : -1.0;
}

/// One Exp(1) variate by the ziggurat, from tables the caller holds (so loops look them up once).
/// One 64-bit draw in the common case: the low 8 bits pick the layer, the top 53 the position.
/// Always inlined: called out of line, the engine's state would live in memory, not registers.
template <class Engine>
[[nodiscard, gnu::always_inline]] inline double exponential_ziggurat(const exponential_ziggurat_tables& z, Engine& engine) {
  for (;;) {
    const std::uint64_t bits = random_bits64(engine);
    const auto layer = static_cast<unsigned>(bits & (exponential_ziggurat_tables::layers - 1));
    const double x = static_cast<double>(static_cast<std::int64_t>(bits >> 11)) * z.scale[layer];
    if (x < z.edge[layer + 1]) [[likely]] return x;
    const double accepted = exponential_ziggurat_edge(z, layer, x, random_bits64(engine));
    if (accepted >= 0.0) return accepted;
  }
}

}  // namespace detail

/// @brief A standard exponential variate by the ziggurat method (Marsaglia and Tsang 2000).
///
/// The same law as tsmc::exponential, without a logarithm in 97.8% of draws (those take one
/// 64-bit draw each); a different stream for a given engine state. Multinomial resampling draws
/// its spacings this way.
template <RandomEngine Engine>
[[nodiscard]] double exponential_ziggurat(Engine& engine) {
  return detail::exponential_ziggurat(detail::shared_exponential_ziggurat(), engine);
}

/// @brief A uniform integer in [0, n) by Lemire's nearly-divisionless method (unbiased).
/// @param engine the random engine
/// @param n the range size, n >= 1
/// @return an integer in [0, n)
/// @throw tsmc::invalid_argument "tsmc::uniform_index: n must be positive, got 0" for n == 0
/// (the range is empty; the rejection threshold (2^64 - n) mod n would divide by zero)
template <RandomEngine Engine>
[[nodiscard]] std::uint64_t uniform_index(Engine& engine, std::uint64_t n) {
  if (n == 0) [[unlikely]]
    throw_invalid_argument("uniform_index", "n", "must be positive", n);
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
