// libFuzzer target: the bag-of-words classifier reader; a loaded classifier scores a sequence.
#include "fuzz_support.hpp"

#include <tsmc/potentials/classifier.hpp>

#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tsmc_fuzz::expect_load_or_tsmc_error([&] {
    std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
    const tsmc::bag_of_words_classifier c = tsmc::bag_of_words_classifier::read(in);
    const std::vector<tsmc::token_sequence> one{tsmc::token_sequence{0}};
    tsmc::log_prob_matrix out(1, static_cast<Eigen::Index>(c.num_classes()));
    c.log_class_probs(one, out);
  });
  return 0;
}
