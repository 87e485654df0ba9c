// Tests for <tsmc/core/types.hpp>: the vocabulary types and the K x V matrix views.
#include <tsmc/core/types.hpp>

#include <catch2/catch.hpp>

#include <Eigen/Core>

#include <cstdint>
#include <type_traits>
#include <vector>

TEST_CASE("token, token_sequence and particle_index", "[core]") {
  STATIC_REQUIRE(std::is_same_v<tsmc::token, std::int32_t>);
  STATIC_REQUIRE(std::is_same_v<tsmc::token_sequence, std::vector<tsmc::token>>);
  STATIC_REQUIRE(std::is_same_v<tsmc::particle_index, std::uint32_t>);
}

TEST_CASE("log_prob_matrix is row-major and its views bind blocks of rows", "[core]") {
  STATIC_REQUIRE(tsmc::log_prob_matrix::IsRowMajor);
  STATIC_REQUIRE(tsmc::feature_matrix::IsRowMajor);
  STATIC_REQUIRE(std::is_floating_point_v<tsmc::log_prob_matrix::Scalar>);
  STATIC_REQUIRE(tsmc::log_prob_matrix::RowsAtCompileTime == Eigen::Dynamic);
  STATIC_REQUIRE(tsmc::log_prob_matrix::ColsAtCompileTime == Eigen::Dynamic);

  tsmc::log_prob_matrix m = tsmc::log_prob_matrix::Zero(4, 3);
  // One particle's row is contiguous.
  CHECK(&m(1, 1) == &m(1, 0) + 1);
  // A writable view of a block of rows writes through, without a copy.
  tsmc::log_prob_ref rows = m.middleRows(1, 2);
  CHECK(rows.rows() == 2);
  CHECK(rows.cols() == 3);
  CHECK(rows.data() == m.data() + 3);
  rows(0, 2) = -1.5;
  rows.row(1).setConstant(2.0);
  CHECK(m(1, 2) == -1.5);
  CHECK(m(2, 0) == 2.0);
  CHECK(m(3, 0) == 0.0);
  const tsmc::const_log_prob_ref view(m);
  CHECK(view.data() == m.data());
  CHECK(view(1, 2) == -1.5);
}
