#pragma once
/// @file
/// @brief Resampling schemes: multinomial, stratified, systematic, residual, SSP and killing.
///
/// A scheme turns K normalised weights w_1..w_K into offspring counts N_1..N_K with
/// \f$\sum_i N_i = n\f$ and \f$E[N_i] = n w_i\f$ (every scheme here is unbiased). n may differ
/// from K. Each scheme is a small value type (no virtual functions) with one member template
///
///     template <RandomEngine Engine>
///     void offspring(std::span<const double> weights, std::size_t n,
///                    std::span<particle_index> counts, Engine& rng);
///
/// Every scheme runs in O(n + K) time and, once its reusable workspace has grown to the largest
/// size seen, allocates nothing. The weights need only sum to 1 up to rounding: they are
/// renormalised by their computed total, so an exact normalisation is never assumed.
/// If offspring() throws, `counts` is unspecified (systematic and stratified validate in the same
/// pass that writes the counts, and name a bad weight after it).
///
/// References: Douc, Cappe and Moulines (2005), "Comparison of resampling schemes for particle
/// filtering"; Gerber, Chopin and Whiteley (2019), "Negative association, ordering and convergence
/// of resampling methods", Ann. Statist. 47(4) (SSP, Sec. 3); Chopin and Papaspiliopoulos (2020),
/// "An introduction to sequential Monte Carlo", Ch. 9 (multinomial by sorted uniforms).

#include <tsmc/core/error.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/core/types.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#if defined(__SSE2__) && (defined(__x86_64__) || defined(_M_X64))
#define TSMC_DETAIL_SSE2 1  // x86-64: SSE2 is always there
#include <emmintrin.h>
#else
#define TSMC_DETAIL_SSE2 0
#endif

namespace tsmc {

namespace detail {

/// What the argument check learns about the weights on its single pass.
struct weight_summary {
  double total = 0.0;            ///< sum of the weights (positive and finite)
  std::size_t last_positive = 0; ///< index of the last strictly positive weight
  double largest = 0.0;          ///< the largest weight
};

/// The index of the last weight that is > 0, or 0 if none is (then the weights are invalid,
/// which the caller's checks report).
[[nodiscard]] inline std::size_t last_positive(const double* w, std::size_t k) noexcept {
  std::size_t last = k - 1;
  while (last > 0 && !(w[last] > 0.0)) --last;
  return last;
}

/// Checks the sizes: K >= 1, counts.size() == K, 1 <= n <= 2^32 - 1.
inline void check_offspring_sizes(std::string_view function, std::span<const double> weights, std::size_t n,
                                  std::span<const particle_index> counts) {
  check_positive(function, "weights.size()", weights.size());
  check_size(function, "counts.size()", counts.size(), "weights.size()", weights.size());
  check_positive(function, "n", n);
  check_argument(n <= std::numeric_limits<particle_index>::max(), function, "n",
                 "must fit in tsmc::particle_index (at most 4294967295)", n);
}

/// Validates (weights, n, counts) for `function` ("systematic::offspring") and sums the weights.
/// One branch-free pass with four accumulators; the slow path only runs to name a bad value.
inline weight_summary check_offspring_arguments(std::string_view function, std::span<const double> weights,
                                                std::size_t n, std::span<const particle_index> counts) {
  check_offspring_sizes(function, weights, n, counts);
  const double* w = weights.data();
  const std::size_t k = weights.size();
  constexpr double largest = std::numeric_limits<double>::max();
  double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
  double m0 = 0.0, m1 = 0.0, m2 = 0.0, m3 = 0.0;  // running maxima (of valid weights, which are >= 0)
  int ok = 1;
  std::size_t i = 0;
  const std::size_t k4 = k - k % 4;  // (not i + 4 <= k: g++ -O3 then warns of an overflowing trip count)
  for (; i < k4; i += 4) {
    ok &= static_cast<int>(w[i] >= 0.0) & static_cast<int>(w[i] <= largest);
    ok &= static_cast<int>(w[i + 1] >= 0.0) & static_cast<int>(w[i + 1] <= largest);
    ok &= static_cast<int>(w[i + 2] >= 0.0) & static_cast<int>(w[i + 2] <= largest);
    ok &= static_cast<int>(w[i + 3] >= 0.0) & static_cast<int>(w[i + 3] <= largest);
    s0 += w[i];
    s1 += w[i + 1];
    s2 += w[i + 2];
    s3 += w[i + 3];
    m0 = w[i] > m0 ? w[i] : m0;
    m1 = w[i + 1] > m1 ? w[i + 1] : m1;
    m2 = w[i + 2] > m2 ? w[i + 2] : m2;
    m3 = w[i + 3] > m3 ? w[i + 3] : m3;
  }
  for (; i < k; ++i) {
    ok &= static_cast<int>(w[i] >= 0.0) & static_cast<int>(w[i] <= largest);
    s0 += w[i];
    m0 = w[i] > m0 ? w[i] : m0;
  }
  if (ok == 0) {
    for (const double v : weights) {
      if (std::isnan(v)) throw_invalid_argument(function, "weights", "must not contain NaN", v);
      if (v < 0.0) throw_invalid_argument(function, "weights", "must be >= 0", v);
      if (!std::isfinite(v)) throw_invalid_argument(function, "weights", "must be finite", v);
    }
  }
  const double total = (s0 + s1) + (s2 + s3);
  check_argument(total > 0.0 && total <= largest, function, "sum of weights",
                 "must be positive and finite (all weights zero cannot be resampled)", total);
  return {total, last_positive(w, k), std::max(std::max(m0, m1), std::max(m2, m3))};  // total > 0: one exists
}

/// floor(r) for r >= 0, except that an r within relative `tolerance` below an integer counts as
/// that integer. r = n w_i / total carries the rounding of the computed total (relative error up
/// to about K 2^-53), so an exact integer n w_i (uniform weights: 1) may arrive as
/// 0.99999999999993; with tolerance = (K + 2) 2^-53 it still gives its copy. The bias this
/// introduces is below tolerance * n w_i, far below any Monte Carlo error.
[[nodiscard]] inline std::uint64_t tolerant_floor(double r, double tolerance) noexcept {
  return static_cast<std::uint64_t>(static_cast<std::int64_t>(r + r * tolerance));  // r < 2^32
}

/// The relative rounding tolerance of n w_i / total for K weights: (K + 2) 2^-53.
[[nodiscard]] inline double rounding_tolerance(std::size_t k) noexcept {
  return static_cast<double>(k + 2) * 0x1.0p-53;
}

/// r split into its tolerant floor and the rest, clamped at 0 (the rest is slightly negative when
/// r rounded up to the integer).
struct whole_and_fraction {
  std::uint64_t whole = 0;  ///< tolerant_floor(r, tolerance)
  double fraction = 0.0;    ///< max(r - whole, 0)
};

/// Splits r = scale w_i for residual and SSP.
[[nodiscard]] inline whole_and_fraction split_whole(double r, double tolerance) noexcept {
  const std::uint64_t whole = tolerant_floor(r, tolerance);
  return {whole, std::max(r - static_cast<double>(whole), 0.0)};
}

/// x < y ? a : b without a branch. With SSE2 the mask stays in the floating-point registers
/// (cmpltsd, and, andn, or); bit masks in general registers would add two register-file
/// crossings to a dependency chain through the result (SSP's pending fraction).
[[nodiscard]] inline double select_less(double x, double y, double a, double b) noexcept {
#if TSMC_DETAIL_SSE2
  const __m128d mask = _mm_cmplt_sd(_mm_set_sd(x), _mm_set_sd(y));
  return _mm_cvtsd_f64(_mm_or_pd(_mm_and_pd(mask, _mm_set_sd(a)), _mm_andnot_pd(mask, _mm_set_sd(b))));
#else
  const std::uint64_t mask = std::uint64_t{0} - static_cast<std::uint64_t>(x < y);
  return std::bit_cast<double>((std::bit_cast<std::uint64_t>(a) & mask) | (std::bit_cast<std::uint64_t>(b) & ~mask));
#endif
}

/// Grows a workspace to at least `size` elements; never shrinks, so steady state allocates nothing.
inline double* reserve_workspace(std::vector<double>& workspace, std::size_t size) {
  if (workspace.size() < size) workspace.resize(size);
  return workspace.data();
}

/// A uniform double from the top 53 of 64 random bits, (m + 1/2) 2^-53 rounded: in (0, 1],
/// exactly 1 only for m = 2^53 - 1 (m + 1/2 rounds up to 2^53). For ~bits it gives 1 minus the
/// value for bits, rounded the same way.
[[nodiscard]] inline double open01_from_bits(std::uint64_t bits) noexcept {
  return (static_cast<double>(bits >> 11) + 0.5) * 0x1.0p-53;
}

/// The count of points j + u (j = 0..n-1) below x in [0, n], exactly, with u = 1 - v from the
/// offset's bits: floor(x) + [x - floor(x) >= u]. The subtraction is exact, and u > 0, so x = n
/// gives n.
[[nodiscard]] inline std::uint64_t exact_points_below(double x, std::uint64_t v_bits) noexcept {
  const auto whole = static_cast<std::int64_t>(x);  // x in [0, n]: one cvttsd2si, exact back
  const double u = open01_from_bits(~v_bits);       // 1 - v, rounded as v is
  return static_cast<std::uint64_t>(whole) + static_cast<std::uint64_t>(x - static_cast<double>(whole) >= u);
}

/// The offsets v of a systematic pass over n strata from which x + v may round up to the next
/// integer (v within (n + 1) 2^-51 of 1); below them, x + v for x in [0, n] stays below it.
[[nodiscard]] inline double exact_offset_from(double n) noexcept {
  return 1.0 - (n + 1.0) * 0x1.0p-51;
}

/// What one stratified/systematic pass learns on the way.
struct stratified_pass_result {
  double total = 0.0;         ///< the final cumulative weight (NaN or +inf for bad weights)
  double smallest = 0.0;      ///< the smallest weight (negative for bad weights)
  std::uint64_t below = 0;    ///< points below the last boundary: n, or n - 1 by rounding of the sum
};

/// One pass of systematic (one v for all strata) or stratified (one v per stratum) counts for n
/// points j + u_j (j = 0..n-1) on the cells [x_{i-1}, x_i), x_i = scale C_i, C_i the cumulative
/// weight. With v = 1 - u in (0, 1], the number of points below x is
/// H(x) = floor(x + v_{floor(x)}) with x clamped to [0, n], and N_i = H(x_i) - H(x_{i-1}).
/// In floating point x + v rounds up to the next integer when v is within half an ulp of
/// 1 - frac(x): for boundaries on integers (uniform weights with K a power of two) a particle
/// would get two offspring and another none (for stratified with n = 2^20 about once in 3e4
/// calls), and H(n) could be n + 1. Stratified therefore counts by the exact form
/// (exact_points_below); systematic keeps the faster floor(x + v), exact for its one v unless v
/// is within (n + 1) 2^-51 of 1 (probability about n 2^-51), when Exact takes the exact form.
/// Stratified needs stratum s's uniform only when a boundary falls inside s; a fresh one is taken
/// (branch-free, by masking random bits) whenever the boundary enters a new stratum.
/// The cumulative sum runs in blocks of four, c + w0, c + (w0 + w1), c + (w0 + w1) + w2,
/// c + ((w0 + w1) + (w2 + w3)): monotone within and across blocks, with one carried add per block.
/// Clamping x to [0, n] before any conversion keeps bad input (NaN, negative) free of undefined
/// behaviour; the caller inspects total and smallest afterwards. Counts of the last positive
/// weight still lack n - below, which the caller adds (finish_stratified).
template <bool Stratified, bool Exact, class Engine>
stratified_pass_result stratified_pass_from(std::uint64_t v_bits, const double* w, std::size_t k, std::uint64_t n,
                                            double scale, particle_index* counts, Engine& rng) {
  const double n_real = static_cast<double>(n);
  std::uint64_t previous = 0;
  const double v = open01_from_bits(v_bits);  // systematic's one offset
  std::uint64_t stratum = std::numeric_limits<std::uint64_t>::max();
  // Forced inline: left to the unit's inlining budget, g++ 12 once outlined it, and the
  // pass's state went through memory (stratified 2.5 -> 3.3 ns per particle, measured).
  const auto boundary = [&](double c, std::size_t index) __attribute__((always_inline)) {
    const double x = std::min(n_real, std::max(c * scale, 0.0));  // NaN -> n
    if constexpr (Stratified) {
      const auto whole = static_cast<std::uint64_t>(static_cast<std::int64_t>(x));  // one cvttsd2si
      const std::uint64_t fresh = random_bits64(rng);
      const std::uint64_t mask = std::uint64_t{0} - static_cast<std::uint64_t>(whole != stratum);
      v_bits = (fresh & mask) | (v_bits & ~mask);
      stratum = whole;
    }
    std::uint64_t below = 0;
    if constexpr (Stratified || Exact) {
      below = exact_points_below(x, v_bits);
    } else {
      below = static_cast<std::uint64_t>(static_cast<std::int64_t>(x + v));  // x + v < n + 1: one cvttsd2si
    }
    counts[index] = static_cast<particle_index>(below - previous);
    previous = below;
  };
  double c = 0.0;
  double smallest = std::numeric_limits<double>::infinity();
  std::size_t i = 0;
  const std::size_t k4 = k - k % 4;  // (see check_offspring_arguments)
  for (; i < k4; i += 4) {
    const double w0 = w[i], w1 = w[i + 1], w2 = w[i + 2], w3 = w[i + 3];
    const double a = w0 + w1;
    const double b = w2 + w3;
    smallest = std::min(smallest, std::min(std::min(w0, w1), std::min(w2, w3)));
    boundary(c + w0, i);
    boundary(c + a, i + 1);
    boundary(c + (a + w2), i + 2);
    c += a + b;
    boundary(c, i + 3);
  }
  for (; i < k; ++i) {
    smallest = std::min(smallest, w[i]);
    c += w[i];
    boundary(c, i);
  }
  return {c, smallest, previous};
}

/// The pass, with its first offset drawn here and, for systematic, the form chosen once by it.
template <bool Stratified, class Engine>
stratified_pass_result stratified_pass(const double* w, std::size_t k, std::uint64_t n, double scale,
                                       particle_index* counts, Engine& rng) {
  const std::uint64_t v_bits = random_bits64(rng);
  if (!Stratified && open01_from_bits(v_bits) >= exact_offset_from(static_cast<double>(n))) [[unlikely]]
    return stratified_pass_from<Stratified, true>(v_bits, w, k, n, scale, counts, rng);
  return stratified_pass_from<Stratified, false>(v_bits, w, k, n, scale, counts, rng);
}

/// Gives the points a pass left unassigned (n - below, 0 or 1 from rounding) to the last
/// positive weight, whose cell reaches n in exact arithmetic; zero weights never get offspring.
inline void finish_stratified(const double* w, std::size_t k, std::uint64_t n, const stratified_pass_result& r,
                              particle_index* counts) {
  counts[last_positive(w, k)] += static_cast<particle_index>(n - r.below);
}

/// Systematic or stratified counts for weights known to be valid with a known total.
template <bool Stratified, class Engine>
void stratified_counts(const double* w, double total, std::size_t k, std::size_t n, particle_index* counts,
                       Engine& rng) {
  const auto r = stratified_pass<Stratified>(w, k, n, static_cast<double>(n) / total, counts, rng);
  finish_stratified(w, k, n, r, counts);
}

/// The public systematic / stratified entry: one fused pass that validates, sums and counts,
/// assuming normalised weights (scale n); a second pass with scale n / total only when the
/// weights are not normalised to within the rounding of their sum, (K + 2) 2^-52. Bad weights
/// are named by the full check, after the pass (counts are then unspecified).
template <bool Stratified, class Engine>
void stratified_scheme(std::string_view function, std::span<const double> weights, std::size_t n,
                       std::span<particle_index> counts, Engine& rng) {
  check_offspring_sizes(function, weights, n, counts);
  const std::size_t k = weights.size();
  auto r = stratified_pass<Stratified>(weights.data(), k, n, static_cast<double>(n), counts.data(), rng);
  if (!(r.smallest >= 0.0) || !(r.total > 0.0 && r.total <= std::numeric_limits<double>::max()))
    (void)check_offspring_arguments(function, weights, n, counts);  // throws, naming the value
  if (std::fabs(r.total - 1.0) > 2.0 * rounding_tolerance(k))
    r = stratified_pass<Stratified>(weights.data(), k, n, static_cast<double>(n) / r.total, counts.data(), rng);
  finish_stratified(weights.data(), k, n, r, counts.data());
}

/// Reusable buffers of the multinomial merge: the partial sums of exponentials and their guide.
struct spacings_workspace {
  std::vector<double> points{};       ///< T_1..T_n, then four +inf sentinels
  std::vector<std::uint32_t> guide{};  ///< guide[c] = #{j : T_j < c} for the unit cells c of the T scale
};

/// Grows the buffers for up to n points, with guide room for T_{n+1} ~ Gamma(n + 1) up to
/// n + 10 sqrt(n + 1) + 55 (exceeded with probability below 1e-21 by the Chernoff bound for any
/// n; draw_spacings then grows the guide itself), so that calls with at most n points
/// allocate nothing.
inline void reserve_spacings(spacings_workspace& workspace, std::size_t n) {
  if (workspace.points.size() < n + 4) workspace.points.resize(n + 4);
  const auto spread = static_cast<std::size_t>(10.0 * std::sqrt(static_cast<double>(n) + 1.0)) + 1;
  const std::size_t guide_size = n + spread + 64;
  if (workspace.guide.size() < guide_size) workspace.guide.resize(guide_size);
}

/// Writes the partial sums T_1..T_m of m iid Exp(1) variates to out[0..m-1] and returns T_m.
/// The spacings come from the ziggurat (one 64-bit draw and no logarithm for 97.8% of them).
/// They enter in pairs, T + E_1 and T + (E_1 + E_2), so the running sum takes one dependent
/// addition per two points, and the sums stay nondecreasing in floating point.
template <class Engine>
double exponential_partial_sums(double* out, std::size_t m, Engine& rng) {
  const exponential_ziggurat_tables& z = shared_exponential_ziggurat();
  double t = 0.0;
  std::size_t j = 0;
  for (; j + 2 <= m; j += 2) {
    const double e1 = exponential_ziggurat(z, rng);
    const double e2 = exponential_ziggurat(z, rng);
    out[j] = t + e1;
    t += e1 + e2;
    out[j + 1] = t;
  }
  if (j < m) out[j] = t += exponential_ziggurat(z, rng);
  return t;
}

/// Fills guide[c] = #{j : T_j < c} for c = 0..cells+7 from the n sorted points T (cells > T_n).
/// Point j owns the cells (floor(T_{j-1}), floor(T_j)]: it writes its index to the next eight
/// cells unconditionally (later points overwrite the surplus), so only a gap wider than eight
/// cells, rare for unit-mean spacings, takes the loop. `guide` must hold cells + 8 entries.
/// (Measured against marking each point's cell while drawing and taking a running maximum
/// afterwards: this separate pass is about 5% faster overall.)
inline void fill_guide(const double* points, std::size_t n, std::uint32_t* guide, std::size_t cells) noexcept {
  std::size_t next_cell = 0;  // first cell not yet owned
  for (std::size_t j = 0; j < n; ++j) {
    const auto cell = static_cast<std::size_t>(static_cast<std::int64_t>(points[j]));  // T_j >= 0
    const auto index = static_cast<std::uint32_t>(j);
    std::uint32_t* owned = guide + next_cell;
    for (int q = 0; q < 8; ++q) owned[q] = index;
    for (std::size_t c = next_cell + 8; c <= cell; ++c) guide[c] = index;
    next_cell = std::max(next_cell, cell + 1);
  }
  for (std::size_t c = next_cell; c < cells + 8; ++c) guide[c] = static_cast<std::uint32_t>(n);
}

/// The n sorted points of a multinomial draw, ready to merge: T_1..T_n in the workspace with
/// four +inf sentinels after them, their guide, and the scale they live on.
struct spacings {
  const double* points = nullptr;        ///< T_1..T_n, then +inf sentinels
  const std::uint32_t* guide = nullptr;  ///< guide[c] = #{j : T_j < c} for c <= last_cell + 8
  double total = 0.0;                    ///< T_{n+1}: the points divided by it are sorted uniforms
  double last_cell = 0.0;                ///< the largest cell a boundary is clamped to
};

/// Draws T_1..T_{n+1} into the workspace and builds the guide of T_1..T_n over the unit cells
/// of the T scale. A T_{n+1} beyond the reserved guide (probability below 1e-21) grows it.
template <class Engine>
spacings draw_spacings(spacings_workspace& workspace, std::size_t n, Engine& rng) {
  reserve_spacings(workspace, n);
  double* points = workspace.points.data();
  const double t = exponential_partial_sums(points, n + 1, rng);  // T_1..T_{n+1}; t = T_{n+1}
  for (std::size_t j = n; j < n + 4; ++j) points[j] = std::numeric_limits<double>::infinity();  // sentinels
  const auto cells = static_cast<std::size_t>(t) + 2;  // floor(T_{n+1}) + 2: every x_i, clamped, has a cell
  if (workspace.guide.size() < cells + 8) [[unlikely]] workspace.guide.resize(cells + 8);
  fill_guide(points, n, workspace.guide.data(), cells);
  return {points, workspace.guide.data(), t, static_cast<double>(cells - 1)};
}

/// The factor from cumulative weights to the T scale, x_i = factor C_i: T_{n+1} / total, or
/// T_{n+1} itself when the weights sum to 1 within the rounding of their sum, (K + 2) 2^-52
/// (the stratified schemes' rule), so that normalised weights need no division.
[[nodiscard]] inline double spacings_factor(double t, double total, std::size_t k) noexcept {
  return std::fabs(total - 1.0) > 2.0 * rounding_tolerance(k) ? t / total : t;
}

/// Whether spacings_merge can compare four points at once with SSE2 (every x86-64 processor).
inline constexpr bool sse2_merge_available = TSMC_DETAIL_SSE2 == 1;

/// What spacings_merge learns about the weights w_0..w_{last-1} on its way.
struct merge_summary {
  double sum = 0.0;       ///< their sum (NaN or +inf for bad weights)
  double smallest = 0.0;  ///< their minimum: negative for a negative weight (a NaN shows in sum)
  std::uint64_t below = 0;  ///< r_{last-1}: the points below the last boundary before w_last
};

/// The merge of the cumulative weights with the sorted points: N_i = r_i - r_{i-1} for
/// i < last, with r_i = #{j : T_j < x_i} and x_i = factor (w_0 + ... + w_i). N_last is left to
/// the caller (n - below). A guide over the unit cells of the T scale gives the points below
/// floor(x_i), and four comparisons the few (about Poisson(1)) in the cell below x_i; only a
/// cell with four or more of them below x_i (probability at most P(Poisson(1) >= 4) = 1.9%)
/// continues with a walk. A forward walk instead would exit its loop after a random number of
/// steps for every particle, a branch the processor mispredicts about once per particle.
/// With Vector (and SSE2, see sse2_merge_available) the four comparisons are two SSE2 compares
/// of point pairs; the scalar loop gives the same counts. x_i is clamped to [0, last_cell] (NaN
/// to last_cell), so bad weights cause no undefined behaviour; the summary lets the caller
/// detect them. With Accumulate the counts are added to `counts` instead of overwriting them.
template <bool Accumulate, bool Vector = sse2_merge_available>
merge_summary spacings_merge(const double* w, std::size_t last, double factor, const spacings& s,
                             particle_index* counts) noexcept {
  const double* points = s.points;
  const std::uint32_t* guide = s.guide;
  std::uint64_t below = 0;  // r_{i-1}
  const auto store = [&](std::size_t i, std::uint64_t r) __attribute__((always_inline)) {  // (see stratified_pass_from)
    if constexpr (Accumulate) {
      counts[i] += static_cast<particle_index>(r - below);
    } else {
      counts[i] = static_cast<particle_index>(r - below);
    }
    below = r;
  };
  if constexpr (Vector && sse2_merge_available) {
#if TSMC_DETAIL_SSE2
    // minsd returns its second operand when the first is NaN: NaN -> last_cell, as the scalar loop.
    const __m128d zero = _mm_setzero_pd();
    const __m128d last_cell = _mm_set_sd(s.last_cell);
    const __m128d scale = _mm_set_sd(factor);
    __m128d c = _mm_setzero_pd();
    __m128d smallest = _mm_set_sd(std::numeric_limits<double>::infinity());
    for (std::size_t i = 0; i < last; ++i) {
      const __m128d wi = _mm_load_sd(w + i);
      smallest = _mm_min_sd(smallest, wi);
      c = _mm_add_sd(c, wi);
      const __m128d x = _mm_max_sd(_mm_min_sd(_mm_mul_sd(c, scale), last_cell), zero);
      std::uint64_t r = guide[static_cast<std::size_t>(_mm_cvttsd_si64(x))];
      const double* p = points + r;
      const __m128d xx = _mm_unpacklo_pd(x, x);
      // Each compare gives -1 (all bits set) per point below x_i; the lane sum is -(count).
      const __m128i pair_sums = _mm_add_epi64(_mm_castpd_si128(_mm_cmplt_pd(_mm_loadu_pd(p), xx)),
                                              _mm_castpd_si128(_mm_cmplt_pd(_mm_loadu_pd(p + 2), xx)));
      const std::int64_t minus_count = _mm_cvtsi128_si64(_mm_add_epi64(pair_sums, _mm_unpackhi_epi64(pair_sums, pair_sums)));
      r -= static_cast<std::uint64_t>(minus_count);
      if (minus_count == -4) [[unlikely]] {
        const double xs = _mm_cvtsd_f64(x);
        while (points[r] < xs) ++r;  // four or more points of the cell below x_i: walk on
      }
      store(i, r);
    }
    return {_mm_cvtsd_f64(c), _mm_cvtsd_f64(smallest), below};
#endif
  } else {
    double c = 0.0;
    double smallest = std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < last; ++i) {
      smallest = std::min(smallest, w[i]);
      c += w[i];
      const double x = std::min(s.last_cell, std::max(c * factor, 0.0));  // NaN -> last_cell
      std::uint64_t r = guide[static_cast<std::size_t>(static_cast<std::int64_t>(x))];
      const double* p = points + r;
      r += static_cast<std::uint64_t>(p[0] < x) + static_cast<std::uint64_t>(p[1] < x) +
           static_cast<std::uint64_t>(p[2] < x) + static_cast<std::uint64_t>(p[3] < x);
      if (p[3] < x) [[unlikely]] {
        while (points[r] < x) ++r;  // four or more points of the cell below x_i: walk on
      }
      store(i, r);
    }
    return {c, smallest, below};
  }
}

/// Gives the last positive weight its offspring, n - r_{last-1}, and zeros those after it.
template <bool Accumulate>
void finish_multinomial(std::size_t last, std::size_t k, std::size_t n, std::uint64_t below,
                        particle_index* counts) noexcept {
  if constexpr (Accumulate) {
    counts[last] += static_cast<particle_index>(n - below);
  } else {
    counts[last] = static_cast<particle_index>(n - below);
    for (std::size_t i = last + 1; i < k; ++i) counts[i] = 0;
  }
}

/// Multinomial counts of n draws from valid weights w (sum `total`, last positive weight at
/// `last`), by n sorted uniforms merged with the cumulative weights. The sorted uniforms come
/// in O(n) from exponential spacings: with E_1..E_{n+1} iid Exp(1) and T_j = E_1 + ... + E_j,
/// (T_1, ..., T_n) / T_{n+1} has the law of the order statistics of n uniforms (Devroye 1986,
/// Ch. V.2). No sort, no binary search; the merge compares T_j with x_i = T_{n+1} C_i / total,
/// so no division per point. With Accumulate the counts are added to `counts`.
template <bool Accumulate, class Engine>
void multinomial_counts(const double* w, double total, std::size_t last, std::size_t k, std::size_t n,
                        particle_index* counts, spacings_workspace& workspace, Engine& rng) {
  const spacings s = draw_spacings(workspace, n, rng);
  const merge_summary m = spacings_merge<Accumulate>(w, last, spacings_factor(s.total, total, k), s, counts);
  finish_multinomial<Accumulate>(last, k, n, m.below, counts);
}

}  // namespace detail

/// @brief Multinomial resampling: n independent draws from the categorical law of the weights.
///
/// Implemented by n sorted uniforms from exponential spacings merged with the cumulative weights,
/// O(n + K), no sort and no binary search. The reference scheme: the others have no larger
/// offspring variance (Douc, Cappe and Moulines 2005). Keeps a workspace of n + 4 doubles and
/// about n 32-bit guide entries.
struct multinomial {
  /// @brief Reusable scratch space (the partial sums of exponentials and their guide); not user state.
  detail::spacings_workspace workspace{};

  /// @brief Draws offspring counts.
  /// @tparam Engine a tsmc::RandomEngine
  /// @param weights K >= 1 normalised weights (sum 1 up to rounding), finite and >= 0
  /// @param n the number of offspring, n >= 1 (may differ from K)
  /// @param counts K outputs; on return sum(counts) == n and E[counts[i]] == n w_i
  /// @param rng the random engine
  /// @throw tsmc::invalid_argument "tsmc::multinomial::offspring: ..." for empty, NaN, negative,
  /// infinite or all-zero weights, counts.size() != K, or n == 0
  template <RandomEngine Engine>
  void offspring(std::span<const double> weights, std::size_t n, std::span<particle_index> counts, Engine& rng) {
    // The merge validates and sums the weights on its way (no separate checking pass): the
    // points are drawn first, the merge assumes normalised weights, and only weights that turn
    // out not to be (beyond rounding) are merged again with T_{n+1} / total.
    constexpr std::string_view function = "multinomial::offspring";
    detail::check_offspring_sizes(function, weights, n, counts);
    const double* w = weights.data();
    const std::size_t k = weights.size();
    const std::size_t last = detail::last_positive(w, k);  // zeros (or bad values, caught below) after it
    bool tail_zero = true;
    for (std::size_t i = last + 1; i < k; ++i) tail_zero = tail_zero && w[i] == 0.0;
    const detail::spacings s = detail::draw_spacings(workspace, n, rng);
    detail::merge_summary m = detail::spacings_merge<false>(w, last, s.total, s, counts.data());
    const double total = m.sum + w[last];
    if (!(m.smallest >= 0.0) || !(w[last] >= 0.0) || !(total > 0.0 && total <= std::numeric_limits<double>::max()) ||
        !tail_zero) [[unlikely]] {
      const auto checked = detail::check_offspring_arguments(function, weights, n, counts);  // throws, naming the value
      detail::multinomial_counts<false>(w, checked.total, checked.last_positive, k, n, counts.data(), workspace, rng);
      return;  // (valid after all: a sum that overflows only in this order)
    }
    const double factor = detail::spacings_factor(s.total, total, k);
    if (factor != s.total) m = detail::spacings_merge<false>(w, last, factor, s, counts.data());
    detail::finish_multinomial<false>(last, k, n, m.below, counts.data());
  }
};

/// @brief Stratified resampling: one uniform point in each of the n strata [j, j + 1) of the
/// scaled cumulative weights (Kitagawa 1996).
///
/// Particle i gets between floor(n w_i) - 1 and ceil(n w_i) + 1 offspring. Only the strata that
/// contain a cell boundary affect the counts; their uniforms are taken as the cumulative weights
/// enter them, in one fused pass that also validates and sums the weights. No workspace.
struct stratified {
  /// @brief Draws offspring counts.
  /// @tparam Engine a tsmc::RandomEngine
  /// @param weights K >= 1 normalised weights (sum 1 up to rounding), finite and >= 0
  /// @param n the number of offspring, n >= 1 (may differ from K)
  /// @param counts K outputs; on return sum(counts) == n and E[counts[i]] == n w_i
  /// @param rng the random engine
  /// @throw tsmc::invalid_argument "tsmc::stratified::offspring: ..." as multinomial::offspring
  template <RandomEngine Engine>
  void offspring(std::span<const double> weights, std::size_t n, std::span<particle_index> counts, Engine& rng) {
    detail::stratified_scheme<true>("stratified::offspring", weights, n, counts, rng);
  }
};

/// @brief Systematic resampling: the n points u, u + 1, ..., u + n - 1 on the scaled cumulative
/// weights, with one uniform u (Carpenter, Clifford and Fearnhead 1999).
///
/// Particle i gets floor(n w_i) or ceil(n w_i) offspring; with uniform weights and n == K, exactly
/// one each. The fastest scheme: one fused pass validates, sums and counts (a second pass only
/// for weights not normalised); one uniform per pass. No workspace.
struct systematic {
  /// @brief Draws offspring counts.
  /// @tparam Engine a tsmc::RandomEngine
  /// @param weights K >= 1 normalised weights (sum 1 up to rounding), finite and >= 0
  /// @param n the number of offspring, n >= 1 (may differ from K)
  /// @param counts K outputs; on return sum(counts) == n and E[counts[i]] == n w_i
  /// @param rng the random engine
  /// @throw tsmc::invalid_argument "tsmc::systematic::offspring: ..." as multinomial::offspring
  template <RandomEngine Engine>
  void offspring(std::span<const double> weights, std::size_t n, std::span<particle_index> counts, Engine& rng) {
    detail::stratified_scheme<false>("systematic::offspring", weights, n, counts, rng);
  }
};

namespace detail {

/// The deterministic part of residual resampling, for r_i = scale w_i.
struct residual_split {
  std::uint64_t copies = 0;  ///< sum of the whole parts floor(r_i)
  double fraction_total = 0.0;  ///< sum of the fractional parts r_i - floor(r_i)
};

/// Writes the fractional parts of r_i = scale w_i (tolerant floors, clamped at 0) and sums them
/// and the whole parts. Out of line on purpose: inlined into a caller that makes calls (a
/// benchmark loop), g++ 12 kept the running sum in memory, and the store-to-load round trip on
/// every addition made residual 1.8x slower (measured, 5.7 against 3.1 ns per particle).
[[gnu::noinline]] inline residual_split residual_fractions(const double* w, std::size_t k, double scale, double tolerance,
                                                           double* fraction) noexcept {
  residual_split split;
  for (std::size_t i = 0; i < k; ++i) {
    const auto [whole, rest] = split_whole(scale * w[i], tolerance);
    fraction[i] = rest;
    split.fraction_total += rest;
    split.copies += whole;
  }
  return split;
}

}  // namespace detail

/// @brief How tsmc::residual draws the R = n - sum floor(n w_i) remaining offspring.
enum class residual_remainder {
  systematic,   ///< systematic on the fractional parts: every count is floor(n w_i) or ceil(n w_i)
  multinomial,  ///< multinomial on the fractional parts (the classic residual scheme, Liu and Chen 1998)
};

/// @brief Residual resampling: floor(n w_i) deterministic copies of particle i, then the
/// R = n - sum_i floor(n w_i) remaining offspring drawn on the fractional parts
/// r_i = n w_i - floor(n w_i) (weights r_i / R) by systematic (default) or multinomial.
///
/// Every count is at least floor(n w_i). With the systematic remainder, each particle gets at
/// most one extra copy (its remainder weight R r_i / R = r_i is below 1), so counts are
/// floor(n w_i) or ceil(n w_i) in exact arithmetic; the fractional parts are renormalised by
/// their computed sum, so a remainder within rounding of 1 could in principle give one more
/// copy (never observed with non-degenerate weights). Choose the remainder by designated
/// initialiser: `residual{.remainder = residual_remainder::multinomial}`.
/// Keeps a workspace of K doubles (and the multinomial workspace for min(n, K) points for the
/// multinomial remainder).
struct residual {
  /// @brief The scheme for the remainder (systematic by default).
  residual_remainder remainder = residual_remainder::systematic;
  /// @brief Reusable scratch space (the K fractional parts); not user state.
  std::vector<double> workspace{};
  /// @brief Reusable scratch space for the multinomial remainder; not user state.
  detail::spacings_workspace remainder_workspace{};

  /// @brief Draws offspring counts.
  /// @tparam Engine a tsmc::RandomEngine
  /// @param weights K >= 1 normalised weights (sum 1 up to rounding), finite and >= 0
  /// @param n the number of offspring, n >= 1 (may differ from K)
  /// @param counts K outputs; on return sum(counts) == n, counts[i] >= floor(n w_i) and
  /// E[counts[i]] == n w_i
  /// @param rng the random engine
  /// @throw tsmc::invalid_argument "tsmc::residual::offspring: ..." as multinomial::offspring
  template <RandomEngine Engine>
  void offspring(std::span<const double> weights, std::size_t n, std::span<particle_index> counts, Engine& rng) {
    const auto s = detail::check_offspring_arguments("residual::offspring", weights, n, counts);
    const std::size_t k = weights.size();
    const double* w = weights.data();
    const double scale = static_cast<double>(n) / s.total;
    const double tolerance = detail::rounding_tolerance(k);
    double* fraction = detail::reserve_workspace(workspace, k);
    const auto [copies, fraction_total] = detail::residual_fractions(w, k, scale, tolerance, fraction);
    // sum floor(n w_i) <= n up to a rounding of about n K 2^-52, below 1 for any practical n, K.
    // Should rounding ever break it, fall back to systematic (same floor/ceil structure).
    if (copies > n) {
      detail::stratified_counts<false>(w, s.total, k, n, counts.data(), rng);
      return;
    }
    const std::size_t rest = n - static_cast<std::size_t>(copies);
    if (rest == 0 || !(fraction_total > 0.0)) {
      for (std::size_t i = 0; i < k; ++i) counts[i] = 0;
      if (rest != 0) counts[s.last_positive] = static_cast<particle_index>(rest);  // unreachable in practice
    } else {
      std::size_t last = k - 1;
      while (fraction[last] == 0.0) --last;
      if (remainder == residual_remainder::systematic) {
        detail::stratified_counts<false>(fraction, fraction_total, k, rest, counts.data(), rng);
      } else {
        detail::reserve_spacings(remainder_workspace, std::min(n, k));  // rest <= min(n, K)
        detail::multinomial_counts<false>(fraction, fraction_total, last, k, rest, counts.data(),
                                          remainder_workspace, rng);
      }
    }
    for (std::size_t i = 0; i < k; ++i)
      counts[i] += static_cast<particle_index>(detail::tolerant_floor(scale * w[i], tolerance));
  }
};

namespace detail {

/// What the SSP pass leaves: the offspring assigned so far and the particle still pending.
struct ssp_pass_result {
  std::uint64_t assigned = 0;  ///< sum of the counts written
  std::size_t pending = 0;     ///< the particle whose fraction is still unsettled
};

/// The SSP pass over r_i = scale w_i (see tsmc::ssp). The loop carries the pending fraction,
/// d <- d + f_i, minus 1 when that reaches 1: an addition, a comparison and a blend, all in the
/// floating-point registers (select_less); subtracting the converted comparison instead put an
/// integer-to-double conversion on that chain. Out of line, so that the counters stay in
/// registers (inlined into a caller with calls, g++ 12 kept `assigned` in memory). 8 -> 5.3 ns
/// per particle, measured; the counts are unchanged.
template <class Engine>
[[gnu::noinline]] ssp_pass_result ssp_pass(const double* w, std::size_t k, double scale, double tolerance,
                                           particle_index* out, Engine& rng) {
  const auto first = split_whole(scale * w[0], tolerance);
  out[0] = static_cast<particle_index>(first.whole);
  std::uint64_t assigned = first.whole;
  std::size_t pending = 0;
  double pending_fraction = first.fraction;
  for (std::size_t i = 1; i < k; ++i) {
    const auto [whole, fraction] = split_whole(scale * w[i], tolerance);
    out[i] = static_cast<particle_index>(whole);
    assigned += whole;
    const double sum = pending_fraction + fraction;
    const double u = uniform01(rng);
    // Selections without branches: the outcome is a coin flip, a branch would mispredict half the time.
    const double numerator = select_less(sum, 1.0, fraction, 1.0 - fraction);
    const double denominator = select_less(sum, 1.0, sum, 2.0 - sum);
    const bool settle_pending = u * denominator < numerator;  // also right for 0 fractions
    const std::size_t mask = std::size_t{0} - static_cast<std::size_t>(settle_pending);
    const std::size_t settled = (pending & mask) | (i & ~mask);
    const auto extra = static_cast<std::uint64_t>(!(sum < 1.0));  // settled at 1 (or at 0)
    out[settled] += static_cast<particle_index>(extra);
    assigned += extra;
    pending = (i & mask) | (pending & ~mask);
    pending_fraction = select_less(sum, 1.0, sum, sum - 1.0);  // sum - extra, exactly
  }
  return {assigned, pending};
}

}  // namespace detail

/// @brief The Srinivasan sampling process (SSP) of Gerber, Chopin and Whiteley (2019, Sec. 3):
/// every count is floor(n w_i) or ceil(n w_i), and the counts are negatively associated.
///
/// Starting from the fractional parts d_i of n w_i, particles are paired in index order: the
/// pending fraction d_p meets d_i. If d_p + d_i < 1, one of them takes d_p + d_i and the other 0
/// (i takes it with probability d_i / (d_p + d_i)); otherwise one takes 1 and the other
/// d_p + d_i - 1 (p takes 1 with probability (1 - d_i) / (2 - d_p - d_i)). Each step settles one
/// particle and preserves E[d]. One uniform per particle, branch-free, O(K). No workspace.
struct ssp {
  /// @brief Draws offspring counts.
  /// @tparam Engine a tsmc::RandomEngine
  /// @param weights K >= 1 normalised weights (sum 1 up to rounding), finite and >= 0
  /// @param n the number of offspring, n >= 1 (may differ from K)
  /// @param counts K outputs; on return sum(counts) == n, counts[i] is floor(n w_i) or
  /// ceil(n w_i), and E[counts[i]] == n w_i
  /// @param rng the random engine
  /// @throw tsmc::invalid_argument "tsmc::ssp::offspring: ..." as multinomial::offspring
  template <RandomEngine Engine>
  void offspring(std::span<const double> weights, std::size_t n, std::span<particle_index> counts, Engine& rng) {
    const auto s = detail::check_offspring_arguments("ssp::offspring", weights, n, counts);
    const std::size_t k = weights.size();
    const double* w = weights.data();
    particle_index* out = counts.data();
    const auto [assigned, pending] =
        detail::ssp_pass(w, k, static_cast<double>(n) / s.total, detail::rounding_tolerance(k), out, rng);
    // The last pending fraction is 0 or 1 up to rounding; assigning n - assigned keeps sum == n.
    // Should rounding of n K 2^-52 (below 1 for any practical n, K) ever break that, fall back
    // to systematic, which has the same floor/ceil structure.
    if (assigned > n || n - assigned > 1) {
      detail::stratified_counts<false>(w, s.total, k, n, out, rng);
      return;
    }
    out[pending] += static_cast<particle_index>(static_cast<std::uint64_t>(n) - assigned);
  }
};

/// @brief Killing resampling (Del Moral 2004): particle i survives in its own slot with
/// probability w_i / max_j w_j; each killed slot is refilled by a draw from the weights
/// (multinomial, by sorted uniforms).
///
/// Unbiased: E[N_i] = w_i / w_max + E[#killed] w_i = K w_i. Needs n == K (the survivors keep
/// their slots), so it cannot serve the n = K - 1 draw of conditional SMC.
/// Keeps the multinomial workspace for K points.
struct killing {
  /// @brief Reusable scratch space for the refill draws; not user state.
  detail::spacings_workspace workspace{};

  /// @brief Draws offspring counts.
  /// @tparam Engine a tsmc::RandomEngine
  /// @param weights K >= 1 normalised weights (sum 1 up to rounding), finite and >= 0
  /// @param n the number of offspring; must equal K
  /// @param counts K outputs; on return sum(counts) == K and E[counts[i]] == K w_i
  /// @param rng the random engine
  /// @throw tsmc::invalid_argument "tsmc::killing::offspring: ..." as multinomial::offspring,
  /// and when n != K
  template <RandomEngine Engine>
  void offspring(std::span<const double> weights, std::size_t n, std::span<particle_index> counts, Engine& rng) {
    const auto s = detail::check_offspring_arguments("killing::offspring", weights, n, counts);
    const std::size_t k = weights.size();
    check_size("killing::offspring", "n", n, "weights.size()", k);
    const double* w = weights.data();
    const double largest = s.largest;
    detail::reserve_spacings(workspace, k);  // the most refills: steady state never reallocates
    std::size_t killed = 0;
    for (std::size_t i = 0; i < k; ++i) {
      const bool survives = uniform01(rng) * largest < w[i];  // probability w_i / w_max
      counts[i] = static_cast<particle_index>(survives);
      killed += static_cast<std::size_t>(!survives);
    }
    if (killed > 0)
      detail::multinomial_counts<true>(w, s.total, s.last_positive, k, killed, counts.data(), workspace, rng);
  }
};

/// @brief A resampling scheme: a value type with a non-const member template
/// `offspring(weights, n, counts, rng)` writing K offspring counts that sum to n.
///
/// Checked with tsmc::default_engine. Models: multinomial, stratified, systematic, residual, ssp,
/// killing.
template <class S>
concept ResamplingScheme =
    std::copy_constructible<S> &&
    requires(S& s, std::span<const double> weights, std::size_t n, std::span<particle_index> counts,
             default_engine& rng) { s.offspring(weights, n, counts, rng); };

}  // namespace tsmc
