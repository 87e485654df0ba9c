#pragma once
/// @file
/// @brief tsmc::detail::tiled_product: a matrix product split into fixed column tiles that OpenMP
/// threads share, with results that do not depend on the number of threads.

#include <Eigen/Core>

#include <algorithm>
#include <cstdint>

namespace tsmc::detail {

/// @brief The width of the column tiles of tiled_product for `cols` output columns: about an
/// eighth of them, a multiple of 16, at least 64. A function of the shape only.
[[nodiscard]] inline Eigen::Index product_tile_width(Eigen::Index cols) noexcept {
  const Eigen::Index eighth = (cols + 7) / 8;
  return std::max<Eigen::Index>(64, (eighth + 15) / 16 * 16);
}

/// @brief dst = lhs * rhs (or dst += lhs * rhs when `accumulate`), computed tile by tile over
/// fixed ranges of dst's columns, the tiles shared by the OpenMP threads (when compiled with
/// OpenMP).
///
/// Why: Eigen's own OpenMP GEMM chooses its depth blocking from the number of threads, so the
/// rounding of a product changes with the thread count. Here every tile is a single-threaded
/// Eigen product (Eigen runs single-threaded inside a parallel region) whose shape depends only
/// on the operands' sizes, so each entry is summed in the same order whatever the thread count.
/// Products under 100000 multiply-adds, which Eigen never parallelises, run directly (a
/// parallel region costs more than they do, and far more on an oversubscribed machine).
/// @param dst rows x cols (a writable Eigen expression: matrix, block or map)
/// @param lhs rows x depth
/// @param rhs depth x cols
/// @param accumulate add to dst instead of overwriting it
template <class Dst, class Lhs, class Rhs>
void tiled_product(Dst&& dst, const Lhs& lhs, const Rhs& rhs, bool accumulate = false) {
  const Eigen::Index cols = dst.cols();
  if (cols == 0 || dst.rows() == 0) return;
  // Below 2 x 50000 multiply-adds Eigen never splits a product among threads (its
  // parallelize_gemm asks for work / 50000 threads): run it directly, without a parallel region.
  if (static_cast<double>(dst.rows()) * static_cast<double>(cols) * static_cast<double>(lhs.cols()) < 100000.0) {
    if (accumulate)
      dst.noalias() += lhs * rhs;
    else
      dst.noalias() = lhs * rhs;
    return;
  }
  const Eigen::Index width = product_tile_width(cols);
  const auto tiles = static_cast<std::int64_t>((cols + width - 1) / width);
  // No `if` clause: even a one-tile product runs inside the region, so that Eigen never
  // parallelises (and reblocks) it by itself.
#ifdef _OPENMP
#pragma omp parallel for schedule(static)
#endif
  for (std::int64_t i = 0; i < tiles; ++i) {
    const Eigen::Index from = static_cast<Eigen::Index>(i) * width;
    const Eigen::Index w = std::min(width, cols - from);
    if (accumulate)
      dst.middleCols(from, w).noalias() += lhs * rhs.middleCols(from, w);
    else
      dst.middleCols(from, w).noalias() = lhs * rhs.middleCols(from, w);
  }
}

}  // namespace tsmc::detail
