// Tests for <tsmc/core/random.hpp>: the xoshiro256** engine (golden values against an
// independent reference implementation), random_bits64 over engines of every range shape, the
// uniform / exponential / normal / index variates, and the per-particle streams.
//
// Statistical assertions use fixed seeds and thresholds with a false-alarm probability of at
// most 1e-6 each, so they fail only when something is wrong:
//   * a z-score bound |z| < 5.0 has two-sided false-alarm probability erfc(5/sqrt 2) = 5.7e-7;
//   * a loop over the 64 bit positions uses |z| < 5.8 per bit: 64 * erfc(5.8/sqrt 2) = 4.2e-7
//     for the whole loop (Bonferroni);
//   * a chi-square statistic is compared with its upper 1e-6 quantile for its degrees of
//     freedom (computed from the regularised incomplete gamma function):
//       df 2: 27.63, df 6: 38.26, df 7: 40.52, df 9: 44.81, df 15: 56.49, df 1023: 1252.58.
#include <tsmc/core/random.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <unordered_set>
#include <vector>

namespace {

// ---------------------------------------------------------------------------------------------
// An independent, straightforward reference: Vigna's splitmix64.c and xoshiro256starstar.c.
// ---------------------------------------------------------------------------------------------

struct reference_splitmix64 {
  std::uint64_t x;
  std::uint64_t next() {
    std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
};

struct reference_xoshiro256ss {
  std::uint64_t s[4];
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t next() {
    const std::uint64_t result = rotl(s[1] * 5, 7) * 9;
    const std::uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
  }
  static reference_xoshiro256ss seeded(std::uint64_t seed) {
    reference_splitmix64 sm{seed};
    reference_xoshiro256ss r{};
    for (auto& w : r.s) w = sm.next();
    return r;
  }
};

/// An engine that replays a script of raw outputs; `at` throws if asked for more than scripted,
/// so a test also pins down how many outputs a function consumes.
template <class UInt, UInt Min, UInt Max>
struct scripted_engine {
  using result_type = UInt;
  static constexpr result_type min() { return Min; }
  static constexpr result_type max() { return Max; }
  std::vector<result_type> script;
  std::size_t used = 0;
  result_type operator()() { return script.at(used++); }
};

using scripted64 = scripted_engine<std::uint64_t, 0, ~std::uint64_t{0}>;

/// Two-sided z-scores of the frequency of ones at each of the 64 bit positions.
template <class Draw>
std::array<double, 64> bit_z_scores(std::size_t draws, Draw&& draw) {
  std::array<std::size_t, 64> ones{};
  for (std::size_t i = 0; i < draws; ++i) {
    const std::uint64_t x = draw();
    for (int b = 0; b < 64; ++b) ones[static_cast<std::size_t>(b)] += (x >> b) & 1U;
  }
  std::array<double, 64> z{};
  const double n = static_cast<double>(draws);
  for (std::size_t b = 0; b < 64; ++b) z[b] = (static_cast<double>(ones[b]) - n / 2) / std::sqrt(n / 4);
  return z;
}

constexpr double z_bound = 5.0;       // two-sided false alarm 5.7e-7 per assertion
constexpr double bit_z_bound = 5.8;   // 64 bits: 64 * 6.6e-9 = 4.2e-7 per loop

void check_bits_unbiased(const std::array<double, 64>& z) {
  for (std::size_t b = 0; b < 64; ++b) {
    INFO("bit " << b << ", z = " << z[b]);
    CHECK(std::abs(z[b]) < bit_z_bound);
  }
}

/// Pearson's chi-square statistic of observed counts against expected probabilities.
double chi_square(const std::vector<std::size_t>& counts, const std::vector<double>& probabilities) {
  double n = 0;
  for (auto c : counts) n += static_cast<double>(c);
  double x2 = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    const double e = n * probabilities[i];
    const double d = static_cast<double>(counts[i]) - e;
    x2 += d * d / e;
  }
  return x2;
}

/// Sample mean and (population) variance.
template <class Draw>
std::pair<double, double> mean_variance(std::size_t n, Draw&& draw) {
  std::vector<double> x(n);
  for (auto& v : x) v = draw();
  double m = 0;
  for (double v : x) m += v;
  m /= static_cast<double>(n);
  double s = 0;
  for (double v : x) s += (v - m) * (v - m);
  return {m, s / static_cast<double>(n)};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// xoshiro256**
// ---------------------------------------------------------------------------------------------

TEST_CASE("xoshiro256ss models std::uniform_random_bit_generator", "[core]") {
  STATIC_REQUIRE(std::uniform_random_bit_generator<tsmc::xoshiro256ss>);
  STATIC_REQUIRE(std::is_same_v<tsmc::xoshiro256ss::result_type, std::uint64_t>);
  STATIC_REQUIRE(tsmc::xoshiro256ss::min() == 0);
  STATIC_REQUIRE(tsmc::xoshiro256ss::max() == std::numeric_limits<std::uint64_t>::max());
  STATIC_REQUIRE(std::is_same_v<tsmc::default_engine, tsmc::xoshiro256ss>);
  STATIC_REQUIRE(std::is_nothrow_invocable_v<tsmc::xoshiro256ss&>);
  // Usable with the standard distributions and algorithms.
  tsmc::xoshiro256ss engine(1);
  std::uniform_int_distribution<int> d(1, 6);
  const int roll = d(engine);
  CHECK((roll >= 1 && roll <= 6));
}

TEST_CASE("the reference implementations reproduce the published test vectors", "[core]") {
  // splitmix64 seeded with 1234567 (splitmix64.c reference output).
  reference_splitmix64 sm{1234567};
  const std::uint64_t sm_expected[] = {6457827717110365317ULL, 3203168211198807973ULL, 9817491932198370423ULL,
                                       4593380528125082431ULL, 16408922859458223821ULL};
  for (std::uint64_t e : sm_expected) CHECK(sm.next() == e);
  // xoshiro256** from the state {1, 2, 3, 4} (the vector used by rand_xoshiro and others).
  reference_xoshiro256ss x{{1, 2, 3, 4}};
  const std::uint64_t x_expected[] = {11520ULL,
                                      0ULL,
                                      1509978240ULL,
                                      1215971899390074240ULL,
                                      1216172134540287360ULL,
                                      607988272756665600ULL,
                                      16172922978634559625ULL,
                                      8476171486693032832ULL,
                                      10595114339597558777ULL,
                                      2904607092377533576ULL};
  for (std::uint64_t e : x_expected) CHECK(x.next() == e);
}

TEST_CASE("splitmix64_mix is one step of splitmix64", "[core]") {
  for (std::uint64_t seed : {0ULL, 1ULL, 42ULL, 1234567ULL, 0xffffffffffffffffULL}) {
    reference_splitmix64 sm{seed};
    CHECK(tsmc::splitmix64_mix(seed) == sm.next());
  }
  STATIC_REQUIRE(tsmc::splitmix64_mix(0) == 0xe220a8397b1dcdafULL);
}

TEST_CASE("xoshiro256ss golden values: equal to the reference and to recorded literals", "[core]") {
  SECTION("against the reference implementation, several seeds, 1000 outputs") {
    for (std::uint64_t seed : {0ULL, 1ULL, 42ULL, 0x853c49e6748fea9bULL, 0xffffffffffffffffULL}) {
      tsmc::xoshiro256ss engine(seed);
      auto reference = reference_xoshiro256ss::seeded(seed);
      for (int i = 0; i < 1000; ++i) {
        INFO("seed " << seed << ", output " << i);
        REQUIRE(engine() == reference.next());
      }
    }
  }
  SECTION("recorded literals, seed 0") {
    tsmc::xoshiro256ss engine(0);
    const std::uint64_t expected[] = {0x99ec5f36cb75f2b4ULL, 0xbf6e1f784956452aULL, 0x1a5f849d4933e6e0ULL,
                                      0x6aa594f1262d2d2cULL, 0xbba5ad4a1f842e59ULL, 0xffef8375d9ebcacaULL,
                                      0x6c160deed2f54c98ULL, 0x8920ad648fc30a3fULL};
    for (std::uint64_t e : expected) CHECK(engine() == e);
  }
  SECTION("recorded literals, seed 42") {
    tsmc::xoshiro256ss engine(42);
    const std::uint64_t expected[] = {0x15780b2e0c2ec716ULL, 0x6104d9866d113a7eULL, 0xae17533239e499a1ULL,
                                      0xecb8ad4703b360a1ULL, 0xfde6dc7fe2ec5e64ULL, 0xc50da53101795238ULL,
                                      0xb82154855a65ddb2ULL, 0xd99a2743ebe60087ULL};
    for (std::uint64_t e : expected) CHECK(engine() == e);
  }
  SECTION("default seed") {
    tsmc::xoshiro256ss engine;
    const std::uint64_t expected[] = {0x7d392394307d1852ULL, 0xd36a63a899a184a5ULL, 0x6d8cab58145b27a9ULL,
                                      0x4bac88382f65c6dcULL};
    for (std::uint64_t e : expected) CHECK(engine() == e);
  }
  SECTION("usable in constant expressions") {
    constexpr std::uint64_t first = [] {
      tsmc::xoshiro256ss e(0);
      return e();
    }();
    STATIC_REQUIRE(first == 0x99ec5f36cb75f2b4ULL);
  }
}

TEST_CASE("xoshiro256ss reseed and equality", "[core]") {
  tsmc::xoshiro256ss a(7), b(7), c(8);
  CHECK(a == b);
  CHECK_FALSE(a == c);
  (void)a();
  CHECK_FALSE(a == b);
  (void)b();
  CHECK(a == b);
  c.reseed(7);
  CHECK(c == tsmc::xoshiro256ss(7));
  a.reseed(7);
  CHECK(a == c);
  // Copies continue the same stream independently.
  tsmc::xoshiro256ss d = a;
  for (int i = 0; i < 10; ++i) CHECK(d() == a());
}

// ---------------------------------------------------------------------------------------------
// random_bits64
// ---------------------------------------------------------------------------------------------

TEST_CASE("random_bits64 from a 64-bit engine is the engine's output", "[core]") {
  tsmc::xoshiro256ss a(3), b(3);
  for (int i = 0; i < 100; ++i) CHECK(tsmc::random_bits64(a) == b());
  scripted64 s{{0, ~std::uint64_t{0}, 0x0123456789abcdefULL}};
  CHECK(tsmc::random_bits64(s) == 0);
  CHECK(tsmc::random_bits64(s) == ~std::uint64_t{0});
  CHECK(tsmc::random_bits64(s) == 0x0123456789abcdefULL);
  CHECK(s.used == 3);
}

TEST_CASE("random_bits64 concatenates two outputs of a 32-bit engine (std::mt19937)", "[core]") {
  std::mt19937 a(5489u), b(5489u);
  for (int i = 0; i < 100; ++i) {
    const std::uint64_t hi = b();
    const std::uint64_t lo = b();
    CHECK(tsmc::random_bits64(a) == ((hi << 32) | lo));
  }
  CHECK(a == b);  // exactly two calls per draw
}

TEST_CASE("random_bits64 subtracts min() and concatenates power-of-two ranges", "[core]") {
  // Range [1, 256]: 2^8 values, 8 bits per call, no rejection.
  using engine = scripted_engine<std::uint16_t, 1, 256>;
  engine e{{1, 2, 3, 4, 5, 6, 7, 8, 256, 256, 256, 256, 256, 256, 256, 256}};
  CHECK(tsmc::random_bits64(e) == 0x0001020304050607ULL);
  CHECK(e.used == 8);
  CHECK(tsmc::random_bits64(e) == ~std::uint64_t{0});
  CHECK(e.used == 16);
}

TEST_CASE("random_bits64 rejects the excess of a non-power-of-two range", "[core]") {
  SECTION("a scripted range [0, 5]: 2 usable bits per call, 4 and 5 rejected") {
    using engine = scripted_engine<std::uint32_t, 0, 5>;
    std::vector<std::uint32_t> script;
    for (int i = 0; i < 32; ++i) {
      script.push_back(5);  // rejected
      script.push_back(4);  // rejected
      script.push_back(static_cast<std::uint32_t>(i % 4));
    }
    engine e{script};
    std::uint64_t expected = 0;
    for (int i = 0; i < 32; ++i) expected = (expected << 2) | static_cast<std::uint64_t>(i % 4);
    CHECK(tsmc::random_bits64(e) == expected);
    CHECK(e.used == 96);
  }
  SECTION("std::minstd_rand, range [1, 2^31 - 2]: 30 usable bits per call") {
    std::minstd_rand a(11), b(11);
    for (int i = 0; i < 100; ++i) {
      std::uint64_t expected = 0;
      for (int k = 0; k < 3; ++k) {  // 3 x 30 bits >= 64; the oldest bits shift out
        std::uint64_t v = b() - 1;
        while (v >= (std::uint64_t{1} << 30)) v = b() - 1;
        expected = (expected << 30) | v;
      }
      CHECK(tsmc::random_bits64(a) == expected);
    }
    CHECK(a == b);
  }
}

TEST_CASE("random_bits64 bits are unbiased for 64-bit, 32-bit and non-power-of-two engines", "[core]") {
  // 2^16 draws per engine; each bit's count of ones is Binomial(2^16, 1/2) if unbiased.
  constexpr std::size_t draws = std::size_t{1} << 16;
  SECTION("xoshiro256ss") {
    tsmc::xoshiro256ss e(2024);
    check_bits_unbiased(bit_z_scores(draws, [&] { return tsmc::random_bits64(e); }));
  }
  SECTION("std::mt19937") {
    std::mt19937 e(2024u);
    check_bits_unbiased(bit_z_scores(draws, [&] { return tsmc::random_bits64(e); }));
  }
  SECTION("std::minstd_rand") {
    std::minstd_rand e(2024u);
    check_bits_unbiased(bit_z_scores(draws, [&] { return tsmc::random_bits64(e); }));
  }
  SECTION("std::ranlux24 (24-bit range)") {
    std::ranlux24 e(2024u);
    check_bits_unbiased(bit_z_scores(draws, [&] { return tsmc::random_bits64(e); }));
  }
}

// ---------------------------------------------------------------------------------------------
// uniform01, uniform_open01
// ---------------------------------------------------------------------------------------------

TEST_CASE("uniform01 lies in [0, 1) on the grid of multiples of 2^-53", "[core]") {
  SECTION("extremes from scripted bits") {
    scripted64 e{{0, ~std::uint64_t{0}, std::uint64_t{1} << 63, (std::uint64_t{1} << 11) - 1}};
    CHECK(tsmc::uniform01(e) == 0.0);
    CHECK(tsmc::uniform01(e) == 1.0 - 0x1.0p-53);  // the largest value, below 1
    CHECK(tsmc::uniform01(e) == 0.5);
    CHECK(tsmc::uniform01(e) == 0.0);  // the low 11 bits are dropped
  }
  SECTION("equals (bits >> 11) 2^-53 of the engine's output") {
    tsmc::xoshiro256ss a(9);
    auto ref = reference_xoshiro256ss::seeded(9);
    for (int i = 0; i < 1000; ++i) CHECK(tsmc::uniform01(a) == static_cast<double>(ref.next() >> 11) * 0x1.0p-53);
  }
  SECTION("many draws") {
    tsmc::xoshiro256ss e(10);
    for (int i = 0; i < 100000; ++i) {
      const double u = tsmc::uniform01(e);
      REQUIRE(u >= 0.0);
      REQUIRE(u < 1.0);
      const double scaled = u * 0x1.0p53;  // exact: a power-of-two scaling
      REQUIRE(scaled == std::floor(scaled));
    }
  }
  SECTION("recorded literals, seed 42") {
    tsmc::xoshiro256ss e(42);
    CHECK(tsmc::uniform01(e) == 0x1.5780b2e0c2ec0p-4);
    CHECK(tsmc::uniform01(e) == 0x1.84136619b444ep-2);
    CHECK(tsmc::uniform01(e) == 0x1.5c2ea66473c93p-1);
  }
}

TEST_CASE("uniform_open01 is never 0 or 1", "[core]") {
  SECTION("extremes from scripted bits") {
    scripted64 e{{0, ~std::uint64_t{0}}};
    const double lo = tsmc::uniform_open01(e);
    const double hi = tsmc::uniform_open01(e);
    CHECK(lo > 0.0);
    CHECK(hi < 1.0);
    CHECK(lo == 0x1.0p-53);
    CHECK(hi == 1.0 - 0x1.0p-53);
    CHECK(std::isfinite(std::log(lo)));
    CHECK(std::log(hi) < 0.0);
    CHECK(lo == 1.0 - hi);  // symmetric grid
  }
  SECTION("many draws") {
    tsmc::xoshiro256ss e(12);
    for (int i = 0; i < 100000; ++i) {
      const double u = tsmc::uniform_open01(e);
      REQUIRE(u > 0.0);
      REQUIRE(u < 1.0);
    }
  }
  SECTION("recorded literals, seed 42") {
    tsmc::xoshiro256ss e(42);
    CHECK(tsmc::uniform_open01(e) == 0x1.5780b2e0c2ec8p-4);
    CHECK(tsmc::uniform_open01(e) == 0x1.84136619b444ep-2);
    CHECK(tsmc::uniform_open01(e) == 0x1.5c2ea66473c93p-1);
  }
}

TEST_CASE("variates are bit-exactly reproducible for a seed", "[core]") {
  auto draw_all = [](std::uint64_t seed) {
    tsmc::xoshiro256ss e(seed);
    std::vector<std::uint64_t> bits;
    for (int i = 0; i < 200; ++i) {
      bits.push_back(std::bit_cast<std::uint64_t>(tsmc::uniform01(e)));
      bits.push_back(std::bit_cast<std::uint64_t>(tsmc::uniform_open01(e)));
      bits.push_back(std::bit_cast<std::uint64_t>(tsmc::exponential(e)));
      bits.push_back(std::bit_cast<std::uint64_t>(tsmc::standard_normal(e)));
      bits.push_back(tsmc::uniform_index(e, 1000));
    }
    return bits;
  };
  CHECK(draw_all(77) == draw_all(77));
  CHECK(draw_all(77) != draw_all(78));
  // Works through other engines too, bit-exact across runs.
  std::mt19937 a(1u), b(1u);
  for (int i = 0; i < 100; ++i) CHECK(std::bit_cast<std::uint64_t>(tsmc::uniform01(a)) ==
                                      std::bit_cast<std::uint64_t>(tsmc::uniform01(b)));
}

// ---------------------------------------------------------------------------------------------
// Distributions: moments and chi-square goodness of fit
// ---------------------------------------------------------------------------------------------

TEST_CASE("uniform01 and uniform_open01: mean 1/2, variance 1/12, uniform over 16 bins", "[core]") {
  constexpr std::size_t n = 200000;
  // Var(U) = 1/12; Var((U - 1/2)^2) = 1/80 - 1/144 = 1/180.
  tsmc::xoshiro256ss e(100);
  for (int open = 0; open < 2; ++open) {
    const auto [m, v] = mean_variance(n, [&] { return open ? tsmc::uniform_open01(e) : tsmc::uniform01(e); });
    const double z_mean = (m - 0.5) / std::sqrt(1.0 / 12.0 / n);
    const double z_var = (v - 1.0 / 12.0) / std::sqrt(1.0 / 180.0 / n);
    INFO("open " << open << ": mean " << m << " (z " << z_mean << "), variance " << v << " (z " << z_var << ")");
    CHECK(std::abs(z_mean) < z_bound);
    CHECK(std::abs(z_var) < z_bound);
  }
  std::vector<std::size_t> counts(16);
  for (std::size_t i = 0; i < 160000; ++i) ++counts[static_cast<std::size_t>(tsmc::uniform01(e) * 16)];
  const double x2 = chi_square(counts, std::vector<double>(16, 1.0 / 16));
  INFO("chi-square " << x2);
  CHECK(x2 < 56.49);  // df 15, upper 1e-6 quantile
}

TEST_CASE("exponential: positive, mean 1, variance 1, exponential over 8 equiprobable bins", "[core]") {
  constexpr std::size_t n = 200000;
  tsmc::xoshiro256ss e(101);
  const auto [m, v] = mean_variance(n, [&] { return tsmc::exponential(e); });
  // Var(X) = 1; Var((X - 1)^2) = mu4 - sigma^4 = 9 - 1 = 8.
  const double z_mean = (m - 1.0) / std::sqrt(1.0 / n);
  const double z_var = (v - 1.0) / std::sqrt(8.0 / n);
  INFO("mean " << m << " (z " << z_mean << "), variance " << v << " (z " << z_var << ")");
  CHECK(std::abs(z_mean) < z_bound);
  CHECK(std::abs(z_var) < z_bound);

  std::vector<std::size_t> counts(8);
  for (std::size_t i = 0; i < 80000; ++i) {
    const double x = tsmc::exponential(e);
    REQUIRE(x > 0.0);
    REQUIRE(std::isfinite(x));
    // P(X <= q_k) = k/8 at q_k = -log(1 - k/8): the bin is floor(8 (1 - exp(-x))).
    ++counts[std::min<std::size_t>(7, static_cast<std::size_t>(8 * -std::expm1(-x)))];
  }
  const double x2 = chi_square(counts, std::vector<double>(8, 1.0 / 8));
  INFO("chi-square " << x2);
  CHECK(x2 < 40.52);  // df 7, upper 1e-6 quantile
  // The extremes: bits 0 and all ones give the largest and smallest values, both finite.
  scripted64 s{{0, ~std::uint64_t{0}}};
  CHECK(tsmc::exponential(s) == Approx(53 * std::log(2.0)));
  CHECK(tsmc::exponential(s) > 0.0);
}

TEST_CASE("exponential_ziggurat tables: 256 layers of equal area under e^-x", "[core]") {
  const auto& z = tsmc::detail::shared_exponential_ziggurat();
  constexpr int n = tsmc::detail::exponential_ziggurat_tables::layers;
  CHECK(z.edge[1] == tsmc::detail::exponential_ziggurat_tables::r);
  CHECK(z.edge[n] == 0.0);
  CHECK(z.density[n] == 1.0);
  for (int i = 0; i < n; ++i) {
    INFO("layer " << i);
    REQUIRE(z.edge[i] > z.edge[i + 1]);
    CHECK(z.scale[i] == z.edge[i] * 0x1.0p-53);
  }
  // Base strip (width x_0, height e^{-r}) and every rectangle have area v; the recursion fixes
  // all but the top layer, whose area checks r itself (to about 1e-13 for the published r).
  CHECK(std::fabs(z.edge[0] * z.density[1] - z.area) < 1e-15 * z.area);
  CHECK(std::fabs(z.area - (z.edge[1] + 1.0) * z.density[1]) < 1e-15 * z.area);  // v = r e^{-r} + tail e^{-r}
  for (int i = 1; i < n; ++i) {
    INFO("layer " << i);
    CHECK(std::fabs(z.edge[i] * (z.density[i + 1] - z.density[i]) - z.area) < 1e-12 * z.area);
  }
}

TEST_CASE("exponential_ziggurat: Exp(1) over 1024 equiprobable bins, the tail and the moments", "[core]") {
  // 2^24 draws: 16384 per bin of u = exp(-x), so a bin off by 4% (a wrong wedge or layer) gives
  // a chi-square far above the 1e-6 quantile. The tail beyond r = 7.697 (probability e^{-r}, about
  // 7600 draws) must be r + Exp(1): its count and its mean excess by z-tests.
  constexpr std::size_t n = std::size_t{1} << 24;
  constexpr std::size_t bins = 1024;
  const double r = tsmc::detail::exponential_ziggurat_tables::r;
  tsmc::xoshiro256ss e(2024);
  std::vector<std::size_t> counts(bins);
  double sum = 0.0, sum_sq = 0.0, tail = 0.0, tail_excess = 0.0;
  double smallest = 0.0, largest = 0.0;
  for (std::size_t k = 0; k < n; ++k) {
    const double x = tsmc::exponential_ziggurat(e);
    smallest = std::min(smallest, x);
    largest = std::max(largest, x);
    ++counts[std::min(bins - 1, static_cast<std::size_t>(static_cast<double>(bins) * -std::expm1(-x)))];
    sum += x;
    sum_sq += x * x;
    if (x > r) {
      tail += 1.0;
      tail_excess += x - r;
    }
  }
  CHECK(smallest == 0.0);  // never negative
  CHECK(largest < 50.0);   // finite (P(X > 50) = 2e-22 per draw)
  const double x2 = chi_square(counts, std::vector<double>(bins, 1.0 / bins));
  INFO("chi-square " << x2);
  CHECK(x2 < 1252.58);  // df 1023, upper 1e-6 quantile
  const double m = sum / n;
  const double v = sum_sq / n - m * m;
  const double p_tail = std::exp(-r);
  const double z_mean = (m - 1.0) / std::sqrt(1.0 / n);
  const double z_var = (v - 1.0) / std::sqrt(8.0 / n);
  const double z_tail = (tail - n * p_tail) / std::sqrt(n * p_tail * (1.0 - p_tail));
  const double z_excess = (tail_excess / tail - 1.0) * std::sqrt(tail);  // Exp(1) excess: sd 1
  INFO("mean z " << z_mean << ", variance z " << z_var << ", tail count z " << z_tail << ", tail excess z "
                 << z_excess);
  CHECK(std::abs(z_mean) < z_bound);
  CHECK(std::abs(z_var) < z_bound);
  CHECK(std::abs(z_tail) < z_bound);
  CHECK(std::abs(z_excess) < z_bound);
}

TEST_CASE("exponential_ziggurat: any engine; the slow paths as scripted", "[core]") {
  const auto& z = tsmc::detail::shared_exponential_ziggurat();
  // Layer 5, top 53 bits zero: x = 0 lies in the inner strip, returned at once.
  scripted64 inner{{5}};
  CHECK(tsmc::exponential_ziggurat(inner) == 0.0);
  // Layer 0, x = (2^53 - 1) 2^-53 x_0 beyond r: the tail r - log(u), u from the next draw.
  scripted64 tail{{~std::uint64_t{0} << 8, std::uint64_t{1} << 63}};  // u = (2^51 + 1/2) 2^-52 = 1/2 + 2^-53
  CHECK(tsmc::exponential_ziggurat(tail) == Approx(z.edge[1] + std::log(2.0)).epsilon(1e-15));
  // Layer 255 (the top): no inner strip, the wedge decides. At x = x_255 / 2 the curve is at
  // 0.9686, the layer spans [0.9382, 1]: height u = 1/4 + 2^-53 (0.9536) is under the curve.
  const std::uint64_t half = (std::uint64_t{1} << 63) | 255u;  // top bits 2^52: x = x_255 / 2
  scripted64 wedge{{half, std::uint64_t{1} << 62}};
  CHECK(tsmc::exponential_ziggurat(wedge) == z.edge[255] / 2);
  // Rejected in the wedge (x = 0.999 x_255, height near the top of the layer), then layer 7 at 0.
  const std::uint64_t near_edge = (static_cast<std::uint64_t>(0.999 * 0x1.0p53) << 11) | 255u;
  scripted64 rejected{{near_edge, ~std::uint64_t{0}, 7}};
  CHECK(tsmc::exponential_ziggurat(rejected) == 0.0);
  // An engine of another range works through random_bits64.
  std::minstd_rand small(3);
  double total = 0.0;
  for (int k = 0; k < 1000; ++k) total += tsmc::exponential_ziggurat(small);
  CHECK(total / 1000 == Approx(1.0).margin(5.0 * std::sqrt(1.0 / 1000)));  // |z| < 5
}

TEST_CASE("standard_normal: mean 0, variance 1, normal over 8 bins", "[core]") {
  constexpr std::size_t n = 200000;
  tsmc::xoshiro256ss e(102);
  const auto [m, v] = mean_variance(n, [&] { return tsmc::standard_normal(e); });
  // Var(X) = 1; Var(X^2) = 3 - 1 = 2.
  const double z_mean = m / std::sqrt(1.0 / n);
  const double z_var = (v - 1.0) / std::sqrt(2.0 / n);
  INFO("mean " << m << " (z " << z_mean << "), variance " << v << " (z " << z_var << ")");
  CHECK(std::abs(z_mean) < z_bound);
  CHECK(std::abs(z_var) < z_bound);

  const double edges[] = {-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0};
  auto cdf = [](double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); };
  std::vector<double> p(8);
  double previous = 0.0;
  for (std::size_t k = 0; k < 8; ++k) {
    const double c = k < 7 ? cdf(edges[k]) : 1.0;
    p[k] = c - previous;
    previous = c;
  }
  std::vector<std::size_t> counts(8);
  for (std::size_t i = 0; i < 100000; ++i) {
    const double x = tsmc::standard_normal(e);
    REQUIRE(std::isfinite(x));
    std::size_t k = 0;
    while (k < 7 && x >= edges[k]) ++k;
    ++counts[k];
  }
  const double x2 = chi_square(counts, p);
  INFO("chi-square " << x2);
  CHECK(x2 < 40.52);  // df 7, upper 1e-6 quantile
}

TEST_CASE("uniform_index: in range and uniform (chi-square)", "[core]") {
  SECTION("n = 1 always gives 0") {
    tsmc::xoshiro256ss e(1);
    for (int i = 0; i < 100; ++i) CHECK(tsmc::uniform_index(e, 1) == 0);
  }
  SECTION("n = 10 from xoshiro256ss") {
    tsmc::xoshiro256ss e(103);
    std::vector<std::size_t> counts(10);
    for (int i = 0; i < 100000; ++i) {
      const auto k = tsmc::uniform_index(e, 10);
      REQUIRE(k < 10);
      ++counts[k];
    }
    const double x2 = chi_square(counts, std::vector<double>(10, 0.1));
    INFO("chi-square " << x2);
    CHECK(x2 < 44.81);  // df 9, upper 1e-6 quantile
  }
  SECTION("n = 7 from std::mt19937 and std::minstd_rand") {
    std::mt19937 a(104u);
    std::minstd_rand b(104u);
    std::vector<std::size_t> ca(7), cb(7);
    for (int i = 0; i < 70000; ++i) {
      const auto x = tsmc::uniform_index(a, 7);
      const auto y = tsmc::uniform_index(b, 7);
      REQUIRE(x < 7);
      REQUIRE(y < 7);
      ++ca[x];
      ++cb[y];
    }
    const double xa = chi_square(ca, std::vector<double>(7, 1.0 / 7));
    const double xb = chi_square(cb, std::vector<double>(7, 1.0 / 7));
    INFO("chi-square mt19937 " << xa << ", minstd_rand " << xb);
    CHECK(xa < 38.26);  // df 6, upper 1e-6 quantile
    CHECK(xb < 38.26);
  }
  SECTION("a huge n, 3 * 2^62, where rejection matters") {
    // Bin by which third of [0, n) the index falls in: each has probability 1/3.
    constexpr std::uint64_t n = 3 * (std::uint64_t{1} << 62);
    tsmc::xoshiro256ss e(105);
    std::vector<std::size_t> counts(3);
    for (int i = 0; i < 30000; ++i) {
      const auto k = tsmc::uniform_index(e, n);
      REQUIRE(k < n);
      ++counts[k >> 62];
    }
    const double x2 = chi_square(counts, std::vector<double>(3, 1.0 / 3));
    INFO("chi-square " << x2);
    CHECK(x2 < 27.63);  // df 2, upper 1e-6 quantile
  }
  SECTION("Lemire's rejection: the biased low words are redrawn") {
    // n = 3 * 2^62: 2^64 mod n = 2^62, so a draw x is rejected iff (x n mod 2^64) < 2^62.
    constexpr std::uint64_t n = 3 * (std::uint64_t{1} << 62);
    scripted64 e{{0, 1}};  // x = 0: low word 0 < 2^62, rejected; x = 1: low word 3 * 2^62, kept
    CHECK(tsmc::uniform_index(e, n) == 0);
    CHECK(e.used == 2);
    scripted64 f{{~std::uint64_t{0}}};  // the largest draw maps to the largest index
    CHECK(tsmc::uniform_index(f, n) == n - 1);
    CHECK(f.used == 1);
    scripted64 g{{std::uint64_t{1} << 63, 0x5555555555555556ULL}};
    // x = 2^63: x n = 3 * 2^125, low word 0: rejected. x = ceil(2^64/3): index 2^62.
    CHECK(tsmc::uniform_index(g, n) == (std::uint64_t{1} << 62));
    CHECK(g.used == 2);
  }
}

// ---------------------------------------------------------------------------------------------
// Per-particle streams
// ---------------------------------------------------------------------------------------------

TEST_CASE("stream_seed and particle_stream are deterministic", "[core]") {
  STATIC_REQUIRE(tsmc::stream_seed(1, 2, 3) == tsmc::stream_seed(1, 2, 3));
  CHECK(tsmc::stream_seed(1, 2, 3) == tsmc::stream_seed(1, 2, 3));
  CHECK(tsmc::particle_stream(1, 2, 3) == tsmc::xoshiro256ss(tsmc::stream_seed(1, 2, 3)));
  auto a = tsmc::particle_stream(9, 4, 17);
  auto b = tsmc::particle_stream(9, 4, 17);
  for (int i = 0; i < 100; ++i) CHECK(a() == b());
  // Recorded: a change in the derivation cannot pass silently.
  constexpr std::uint64_t recorded = [] {
    std::uint64_t h = tsmc::splitmix64_mix(0);
    h = tsmc::splitmix64_mix(h ^ (0 * 0xd1b54a32d192ed03ULL));
    return tsmc::splitmix64_mix(h ^ (0 * 0xabc98388fb8fac03ULL));
  }();
  STATIC_REQUIRE(tsmc::stream_seed(0, 0, 0) == recorded);
}

TEST_CASE("stream_seed differs across seed, step and particle", "[core]") {
  std::unordered_set<std::uint64_t> seeds;
  std::unordered_set<std::uint64_t> first_outputs;
  std::size_t total = 0;
  for (std::uint64_t seed : {0ULL, 1ULL, 2ULL, 0xffffffffffffffffULL})
    for (std::uint64_t step = 0; step < 32; ++step)
      for (std::uint64_t particle = 0; particle < 256; ++particle) {
        seeds.insert(tsmc::stream_seed(seed, step, particle));
        auto engine = tsmc::particle_stream(seed, step, particle);
        first_outputs.insert(engine());
        ++total;
      }
  CHECK(seeds.size() == total);
  CHECK(first_outputs.size() == total);
  // The roles of the arguments are not interchangeable.
  CHECK(tsmc::stream_seed(5, 1, 2) != tsmc::stream_seed(5, 2, 1));
  CHECK(tsmc::stream_seed(1, 5, 2) != tsmc::stream_seed(5, 1, 2));
  CHECK(tsmc::stream_seed(2, 1, 5) != tsmc::stream_seed(5, 1, 2));
}

TEST_CASE("streams of neighbouring particles look independent", "[core]") {
  // The first output of particle k, and its XOR with particle k + 1's: every bit unbiased.
  constexpr std::uint64_t particles = std::uint64_t{1} << 16;
  std::uint64_t k = 0;
  check_bits_unbiased(bit_z_scores(particles, [&] {
    auto e = tsmc::particle_stream(31, 7, k++);
    return e();
  }));
  k = 0;
  check_bits_unbiased(bit_z_scores(particles, [&] {
    auto e0 = tsmc::particle_stream(31, 7, k);
    auto e1 = tsmc::particle_stream(31, 7, k + 1);
    ++k;
    return e0() ^ e1();
  }));
  // Neighbouring steps for one particle likewise.
  std::uint64_t t = 0;
  check_bits_unbiased(bit_z_scores(particles, [&] {
    auto e0 = tsmc::particle_stream(31, t, 3);
    auto e1 = tsmc::particle_stream(31, t + 1, 3);
    ++t;
    return e0() ^ e1();
  }));
}
