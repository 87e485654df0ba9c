// [reliability] Bad files for the loaders (issue 19, items 3 and 6): wrong, truncated and
// corrupted parameter and classifier files give a tsmc exception naming the problem, and saves
// leave no temporary file behind.

#include <tsmc/core/checksum.hpp>
#include <tsmc/core/error.hpp>
#include <tsmc/learning/parameter_io.hpp>
#include <tsmc/potentials/classifier.hpp>
#include <tsmc/twists/trainable.hpp>

#include <catch2/catch.hpp>

#include <Eigen/Dense>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

namespace fs = std::filesystem;

struct scratch_dir {
  fs::path path;
  explicit scratch_dir(const std::string& name)
      : path(fs::temp_directory_path() / ("tsmc_reliability_" + name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~scratch_dir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
  [[nodiscard]] std::size_t entries() const {
    return static_cast<std::size_t>(std::distance(fs::directory_iterator(path), fs::directory_iterator()));
  }
};

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_all(const fs::path& p, const std::string& bytes) { std::ofstream(p, std::ios::binary) << bytes; }

std::string message_of(const auto& f) {
  try {
    f();
  } catch (const tsmc::invalid_argument& e) {
    return std::string("invalid_argument: ") + e.what();
  } catch (const tsmc::runtime_error& e) {
    return std::string("runtime_error: ") + e.what();
  }
  return "no exception";
}

struct two_blocks {
  Eigen::VectorXd w = Eigen::VectorXd::LinSpaced(6, -1.0, 1.0), gw = Eigen::VectorXd::Zero(6);
  Eigen::VectorXd b = Eigen::VectorXd::LinSpaced(3, 0.5, 1.5), gb = Eigen::VectorXd::Zero(3);
  std::vector<tsmc::parameter_block> blocks() {
    return {{"weight", 2, 3, Eigen::Map<Eigen::VectorXd>(w.data(), 6), Eigen::Map<Eigen::VectorXd>(gw.data(), 6)},
            {"bias", 3, 1, Eigen::Map<Eigen::VectorXd>(b.data(), 3), Eigen::Map<Eigen::VectorXd>(gb.data(), 3)}};
  }
};

}  // namespace

TEST_CASE("parameter files: another shape, truncated, corrupted, empty, missing", "[reliability]") {
  scratch_dir dir("params");
  const fs::path file = dir.path / "twist.params";
  two_blocks source;
  auto blocks = source.blocks();
  tsmc::save_parameters(file, blocks);
  CHECK(dir.entries() == 1);  // no temporary file left
  const std::string good = read_all(file);

  two_blocks target;
  target.w.setZero();
  auto into = target.blocks();
  tsmc::load_parameters(file, into);
  CHECK(target.w == source.w);

  // Another shape: bias 1 x 3.
  auto other = target.blocks();
  other[1].rows = 1;
  other[1].cols = 3;
  const std::string shape = message_of([&] { tsmc::load_parameters(file, other); });
  CHECK(shape.find("invalid_argument: tsmc::load_parameters") == 0);
  CHECK(shape.find("bias") != std::string::npos);

  const auto refused = [&](const std::string& bytes, const std::string& expected) {
    write_all(file, bytes);
    target.w.setConstant(7.0);
    const std::string m = message_of([&] { tsmc::load_parameters(file, into); });
    INFO(m);
    CHECK(m.find("runtime_error: tsmc::load_parameters") == 0);
    CHECK(m.find(expected) != std::string::npos);
    CHECK((target.w.array() == 7.0).all());  // nothing written into the blocks
  };
  refused(good.substr(0, good.size() / 2), "twist.params");
  refused(good.substr(0, good.size() - 1), "twist.params");
  std::string flipped = good;
  flipped[good.size() / 2] = static_cast<char>(flipped[good.size() / 2] ^ 0x10);
  refused(flipped, "twist.params");
  refused("", "twist.params");
  refused(good + "x", "twist.params");
  refused("TSMCPARX" + good.substr(8), "not a tsmc parameter file");
  fs::remove(file);
  CHECK(message_of([&] { tsmc::load_parameters(file, into); }).find("cannot be opened") != std::string::npos);
}

TEST_CASE("classifier files: atomic save, truncated and corrupted files", "[reliability]") {
  scratch_dir dir("classifier");
  const std::vector<tsmc::token_sequence> seqs{{1, 2}, {2, 3}, {3, 1}, {1, 1}};
  const std::vector<std::size_t> labels{0, 1, 1, 0};
  const auto c = tsmc::bag_of_words_classifier::train(seqs, labels, 2, 4);
  const std::string file = (dir.path / "c.txt").string();
  c.save(file);
  c.save(file);  // over an existing file
  CHECK(dir.entries() == 1);  // the temporary file was renamed, not left
  const std::string good = read_all(file);
  const auto back = tsmc::bag_of_words_classifier::load(file);
  CHECK(back.num_classes() == 2);
  CHECK(back.vocab_size() == 4);

  // A save that cannot complete (the destination is a directory) throws and leaves no temporary.
  const fs::path blocked = dir.path / "blocked";
  fs::create_directory(blocked);
  CHECK(message_of([&] { c.save(blocked.string()); }).find("runtime_error: tsmc::bag_of_words_classifier::save") == 0);
  CHECK(dir.entries() == 2);
  CHECK(fs::is_directory(blocked));
  // ...and one into a missing directory, too.
  CHECK(message_of([&] { c.save((dir.path / "missing" / "c.txt").string()); }).find("runtime_error") == 0);

  // A header claiming 3e12 classes (found by fuzz_classifier): refused from the data, before
  // anything of that size is allocated.
  write_all(file, "tsmc-bow-classifier 1\nclasses 3333333333333 vocab 46\nbias 0.5\n");
  CHECK(message_of([&] { (void)tsmc::bag_of_words_classifier::load(file); })
            .find("runtime_error: tsmc::bag_of_words_classifier::read: line 3: expected 3333333333333 numbers") == 0);
  for (const std::string& bad : {good.substr(0, good.size() / 2), std::string(), std::string("tsmc-bow-classifier 2\n"),
                                 good.substr(0, good.find("bias")) + "bias nan nan\n"}) {
    write_all(file, bad);
    const std::string m = message_of([&] { (void)tsmc::bag_of_words_classifier::load(file); });
    INFO(m);
    CHECK(m.find("tsmc::") != std::string::npos);
    CHECK(m.find("no exception") == std::string::npos);
  }
}

TEST_CASE("classifier files, format 2: a checksum line; a flipped byte, a cut file and another version are named",
          "[reliability]") {
  Eigen::MatrixXd w(2, 3);
  w << 0.25, -1.5, 3.0, 1e-300, -0.0, 7.125;
  tsmc::bag_of_words_classifier c(2, 3);
  // A dynamic bias (not Vector2d): g++ 12 -march=native warns -Warray-bounds on Eigen's dead
  // 8-double packet path of a fixed 2-vector's conversion.
  Eigen::VectorXd bias(2);
  bias << 0.5, -0.5;
  c.set_parameters(w, bias);
  std::ostringstream out;
  c.write(out);
  const std::string good = out.str();
  // The exact text: version line, shape, bias, weights, then the FNV-1a 64 of every byte before
  // the checksum line.
  const std::string payload = "tsmc-bow-classifier 2\nclasses 2 vocab 3\nbias 0.5 -0.5\n0.25 -1.5 3\n1e-300 -0 7.125\n";
  REQUIRE(good == payload + "checksum " + tsmc::detail::checksum_hex(tsmc::detail::fnv1a64(payload)) + "\n");
  CHECK(tsmc::detail::checksum_hex(tsmc::detail::fnv1a64(std::string_view(""))) == "cbf29ce484222325");  // FNV-1a's basis
  CHECK(tsmc::detail::checksum_hex(tsmc::detail::fnv1a64(std::string_view("a"))) == "af63dc4c8601ec8c");  // published vector

  const auto read = [](const std::string& text) {
    std::istringstream in(text);
    return tsmc::bag_of_words_classifier::read(in);
  };
  const auto error = [&](const std::string& text) { return message_of([&] { (void)read(text); }); };
  const auto back = read(good);
  CHECK(back.weights() == c.weights());
  CHECK(back.bias() == c.bias());

  // Every single flipped bit of the payload is caught and named: by the checksum, except in the
  // version line (the header check) and in the newline before the checksum line (which then
  // no longer is the last line).
  std::size_t by_checksum = 0;
  for (std::size_t i = 0; i < payload.size(); ++i)
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      const std::string m = error(bad);
      INFO("byte " << i << " bit " << bit << ": " << m);
      REQUIRE(m.rfind("runtime_error: tsmc::bag_of_words_classifier::read: line ", 0) == 0);
      by_checksum += m.find("(the file is corrupt)") != std::string::npos ? 1 : 0;
    }
  CHECK(by_checksum >= 8 * (payload.size() - std::string("tsmc-bow-classifier 2\n").size() - 1));
  CHECK(error(good.substr(0, 40) + "x" + good.substr(41)).find("line 6: the checksum must match the contents, computed") !=
        std::string::npos);
  // A corrupted checksum line.
  std::string bad_sum = good;
  bad_sum[good.size() - 2] = 'g';
  CHECK(error(bad_sum).find("line 6: the checksum must be 16 hexadecimal digits") != std::string::npos);
  // Cut anywhere: never loads.
  for (std::size_t keep = 0; keep + 1 < good.size(); ++keep) {
    const std::string m = error(good.substr(0, keep));
    INFO("kept " << keep << " bytes: " << m);
    REQUIRE(m.rfind("runtime_error: tsmc::bag_of_words_classifier::read: line ", 0) == 0);
  }
  CHECK(error(good.substr(0, good.find("checksum"))).find("line 5: truncated: the last line must be 'checksum") !=
        std::string::npos);
  // Another version.
  CHECK(error("tsmc-bow-classifier 3" + good.substr(good.find('\n'))) ==
        "runtime_error: tsmc::bag_of_words_classifier::read: line 1: the first line must be 'tsmc-bow-classifier 2' "
        "(or the older 'tsmc-bow-classifier 1'), got 'tsmc-bow-classifier 3'");
  // Version 1, as written before the checksum: still read.
  const auto v1 = read("tsmc-bow-classifier 1\nclasses 2 vocab 3\nbias 0.5 -0.5\n0.25 -1.5 3\n1e-300 -0 7.125\n");
  CHECK(v1.weights() == c.weights());
  CHECK(v1.bias() == c.bias());
}
