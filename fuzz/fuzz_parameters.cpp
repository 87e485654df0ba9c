// libFuzzer target: the twist-parameter loader, into two blocks of fixed names and shapes
// (those of the seed corpus).
#include "fuzz_support.hpp"

#include <tsmc/learning/parameter_io.hpp>
#include <tsmc/twists/trainable.hpp>

#include <Eigen/Dense>

#include <cstddef>
#include <cstdint>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = tsmc_fuzz::write_input(data, size, ".params");
  Eigen::VectorXd w = Eigen::VectorXd::Zero(6), gw = Eigen::VectorXd::Zero(6);
  Eigen::VectorXd b = Eigen::VectorXd::Zero(3), gb = Eigen::VectorXd::Zero(3);
  std::vector<tsmc::parameter_block> blocks;
  blocks.push_back({"weight", 2, 3, Eigen::Map<Eigen::VectorXd>(w.data(), 6), Eigen::Map<Eigen::VectorXd>(gw.data(), 6)});
  blocks.push_back({"bias", 3, 1, Eigen::Map<Eigen::VectorXd>(b.data(), 3), Eigen::Map<Eigen::VectorXd>(gb.data(), 3)});
  tsmc_fuzz::expect_load_or_tsmc_error([&] { tsmc::load_parameters(path, blocks); });
  return 0;
}
