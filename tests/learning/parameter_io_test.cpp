// Tests of tsmc::save_parameters / tsmc::load_parameters: exact round trips (blocks and a
// twist), and every kind of bad file (wrong shape, name, count, magic, version; truncated at every
// byte; any flipped byte; trailing bytes; missing) throws and leaves the parameters unchanged.
#include <tsmc/core/random.hpp>
#include <tsmc/learning/parameter_io.hpp>
#include <tsmc/twists/features.hpp>
#include <tsmc/twists/mlp_twist.hpp>
#include <tsmc/twists/trainable.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

using namespace tsmc;
namespace fs = std::filesystem;

namespace {

// A fresh directory under the system's temporary directory, removed at the end of the test.
class scratch_directory {
 public:
  scratch_directory() {
    static std::atomic<int> counter{0};
    const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    path_ = fs::temp_directory_path() /
            ("tsmc_parameter_io_test_" + std::to_string(stamp) + "_" + std::to_string(counter++));
    fs::create_directories(path_);
  }
  ~scratch_directory() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  scratch_directory(const scratch_directory&) = delete;
  scratch_directory& operator=(const scratch_directory&) = delete;
  [[nodiscard]] fs::path file(const std::string& name) const { return path_ / name; }
  [[nodiscard]] std::size_t entries() const {
    return static_cast<std::size_t>(std::distance(fs::directory_iterator(path_), fs::directory_iterator{}));
  }

 private:
  fs::path path_;
};

// Storage for a list of named blocks of given shapes.
struct block_store {
  std::vector<std::string> names;
  std::vector<Eigen::MatrixXd> values;
  std::vector<Eigen::MatrixXd> gradients;

  void add(std::string name, Eigen::Index rows, Eigen::Index cols, double start) {
    names.push_back(std::move(name));
    Eigen::MatrixXd m(rows, cols);
    for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = start + 0.1 * static_cast<double>(i) - 1.0 / 3.0;
    values.push_back(m);
    gradients.push_back(Eigen::MatrixXd::Zero(rows, cols));
  }
  std::vector<parameter_block> blocks() {
    std::vector<parameter_block> out;
    for (std::size_t i = 0; i < names.size(); ++i)
      out.push_back(parameter_block{names[i], values[i].rows(), values[i].cols(),
                                    Eigen::Map<Eigen::VectorXd>(values[i].data(), values[i].size()),
                                    Eigen::Map<Eigen::VectorXd>(gradients[i].data(), gradients[i].size())});
    return out;
  }
};

// A small file's blocks: 2 x 3 and 1 x 1.
[[nodiscard]] block_store small_store(double start) {
  block_store s;
  s.add("w", 2, 3, start);
  s.add("bias", 1, 1, start + 10.0);
  return s;
}

[[nodiscard]] std::vector<char> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const fs::path& path, const std::vector<char>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Loading `path` into a fresh small store must throw E and leave the values as they were.
template <class E>
void require_rejected(const fs::path& path, block_store& target) {
  const std::vector<Eigen::MatrixXd> before = target.values;
  auto blocks = target.blocks();
  REQUIRE_THROWS_AS(load_parameters(path, blocks), E);
  for (std::size_t i = 0; i < before.size(); ++i) REQUIRE(target.values[i] == before[i]);
}

std::uint64_t fnv1a(const std::vector<char>& bytes, std::size_t count) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (std::size_t i = 0; i < count; ++i) {
    h ^= static_cast<unsigned char>(bytes[i]);
    h *= 0x100000001b3ULL;
  }
  return h;
}

// Rewrites the trailing checksum so that a deliberately edited file passes it.
void fix_checksum(std::vector<char>& bytes) {
  const std::uint64_t h = fnv1a(bytes, bytes.size() - 8);
  for (int i = 0; i < 8; ++i) bytes[bytes.size() - 8 + static_cast<std::size_t>(i)] = static_cast<char>((h >> (8 * i)) & 0xff);
}

}  // namespace

TEST_CASE("save_parameters then load_parameters restores every value exactly", "[learning]") {
  scratch_directory dir;
  block_store source = small_store(0.5);
  source.values[0](1, 2) = -0.0;
  source.values[0](0, 1) = 1e-310;  // subnormal
  source.values[1](0, 0) = std::nextafter(1.0, 2.0);
  save_parameters(dir.file("p.bin"), source.blocks());
  block_store target = small_store(7.0);
  auto blocks = target.blocks();
  load_parameters(dir.file("p.bin"), blocks);
  for (std::size_t i = 0; i < source.values.size(); ++i)
    for (Eigen::Index j = 0; j < source.values[i].size(); ++j)
      REQUIRE(std::bit_cast<std::uint64_t>(target.values[i].data()[j]) ==
              std::bit_cast<std::uint64_t>(source.values[i].data()[j]));
  REQUIRE(dir.entries() == 1);  // no temporary file left behind
}

TEST_CASE("the parameter file layout is the documented little-endian format", "[learning]") {
  scratch_directory dir;
  block_store s;
  s.add("ab", 1, 1, 0.0);
  s.values[0](0, 0) = 1.0;  // 0x3ff0000000000000
  save_parameters(dir.file("p.bin"), s.blocks());
  const std::vector<char> bytes = read_bytes(dir.file("p.bin"));
  REQUIRE(bytes.size() == 8 + 4 + 8 + (8 + 2 + 8 + 8 + 8) + 8);
  REQUIRE(std::string(bytes.data(), 8) == "TSMCPARM");
  REQUIRE(bytes[8] == 1);   // version, little-endian
  REQUIRE(bytes[12] == 1);  // block count
  REQUIRE(bytes[20] == 2);  // name length
  REQUIRE(std::string(bytes.data() + 28, 2) == "ab");
  REQUIRE(bytes[30] == 1);  // rows
  REQUIRE(bytes[38] == 1);  // cols
  REQUIRE(static_cast<unsigned char>(bytes[53]) == 0x3f);
  REQUIRE(static_cast<unsigned char>(bytes[52]) == 0xf0);
  std::uint64_t stored = 0;
  for (int i = 0; i < 8; ++i)
    stored |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[54 + static_cast<std::size_t>(i)])) << (8 * i);
  REQUIRE(stored == fnv1a(bytes, 54));  // FNV-1a of everything before the checksum
}

TEST_CASE("a twist's parameters round-trip through a file, and a file for another shape is rejected", "[learning]") {
  scratch_directory dir;
  const auto make = [](std::size_t width, std::uint64_t seed) {
    return mlp_twist(prefix_features(prefix_features_options{.vocab_size = 6, .embedding_size = 3, .seed = seed}),
                     mlp_twist_options{.vocab_size = 6, .max_steps = 5, .hidden_layers = 1, .width = width, .seed = seed});
  };
  auto source = make(4, 1);
  default_engine engine(5);
  for (auto& b : source.parameters())
    for (Eigen::Index i = 0; i < b.values.size(); ++i) b.values[i] = standard_normal(engine);
  save_parameters(dir.file("twist.bin"), source);

  auto target = make(4, 2);
  load_parameters(dir.file("twist.bin"), target);
  auto a = source.parameters();
  auto b = target.parameters();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) REQUIRE(a[i].values == b[i].values);

  auto other = make(5, 3);
  std::vector<Eigen::VectorXd> before;
  for (auto& p : other.parameters()) before.push_back(p.values);
  using Catch::Matchers::Contains;
  REQUIRE_THROWS_WITH(load_parameters(dir.file("twist.bin"), other),
                      Contains("twist.bin") && Contains("head.hidden0.weight") && Contains("14 x 4") &&
                          Contains("14 x 5"));
  auto after = other.parameters();
  for (std::size_t i = 0; i < after.size(); ++i) REQUIRE(after[i].values == before[i]);
}

TEST_CASE("a low-rank twist's parameters (with head.output.factor) round-trip, and a full-rank file is rejected", "[learning]") {
  scratch_directory dir;
  const auto make = [](std::size_t rank, std::uint64_t seed) {
    return mlp_twist(prefix_features(prefix_features_options{.vocab_size = 6, .embedding_size = 3, .seed = seed}),
                     mlp_twist_options{.vocab_size = 6, .max_steps = 5, .hidden_layers = 1, .width = 4, .seed = seed,
                                       .output_rank = rank});
  };
  auto source = make(2, 1);
  default_engine engine(6);
  for (auto& b : source.parameters())
    for (Eigen::Index i = 0; i < b.values.size(); ++i) b.values[i] = standard_normal(engine);
  save_parameters(dir.file("low_rank.bin"), source);
  auto target = make(2, 2);
  load_parameters(dir.file("low_rank.bin"), target);
  auto a = source.parameters();
  auto b = target.parameters();
  REQUIRE(a.size() == b.size());
  bool has_factor = false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    REQUIRE(a[i].name == b[i].name);
    REQUIRE(a[i].values == b[i].values);
    has_factor = has_factor || a[i].name == "head.output.factor";
  }
  REQUIRE(has_factor);

  using Catch::Matchers::Contains;
  auto full = make(0, 3);
  save_parameters(dir.file("full.bin"), full);
  auto low = make(2, 4);
  std::vector<Eigen::VectorXd> before;
  for (auto& p : low.parameters()) before.push_back(p.values);
  REQUIRE_THROWS_WITH(load_parameters(dir.file("full.bin"), low), Contains("full.bin"));
  auto after = low.parameters();
  for (std::size_t i = 0; i < after.size(); ++i) REQUIRE(after[i].values == before[i]);
  auto other_rank = make(3, 5);
  REQUIRE_THROWS_WITH(load_parameters(dir.file("low_rank.bin"), other_rank),
                      Contains("low_rank.bin") && Contains("head.output.factor"));
}

TEST_CASE("load_parameters rejects wrong names, counts and shapes, naming the file and the block", "[learning]") {
  using Catch::Matchers::Contains;
  scratch_directory dir;
  const fs::path path = dir.file("small.bin");
  block_store source = small_store(0.5);
  save_parameters(path, source.blocks());

  block_store renamed = small_store(2.0);
  renamed.names[1] = "offset";
  require_rejected<tsmc::invalid_argument>(path, renamed);
  auto rb = renamed.blocks();
  REQUIRE_THROWS_WITH(load_parameters(path, rb), Contains("small.bin") && Contains("'bias'") && Contains("'offset'"));

  block_store reshaped;
  reshaped.add("w", 3, 2, 1.0);  // same size, other shape
  reshaped.add("bias", 1, 1, 1.0);
  require_rejected<tsmc::invalid_argument>(path, reshaped);
  auto sb = reshaped.blocks();
  REQUIRE_THROWS_WITH(load_parameters(path, sb), Contains("'w'") && Contains("2 x 3") && Contains("3 x 2"));

  block_store more = small_store(3.0);
  more.add("extra", 1, 2, 0.0);
  require_rejected<tsmc::invalid_argument>(path, more);
  auto mb = more.blocks();
  REQUIRE_THROWS_WITH(load_parameters(path, mb), Contains("2 blocks") && Contains("3"));

  block_store none;
  require_rejected<tsmc::runtime_error>(dir.file("missing.bin"), none);
  auto nb = none.blocks();
  REQUIRE_THROWS_WITH(load_parameters(dir.file("missing.bin"), nb), Contains("missing.bin"));
}

TEST_CASE("load_parameters rejects a file truncated at any byte and leaves the parameters unchanged", "[learning]") {
  scratch_directory dir;
  const fs::path good = dir.file("good.bin");
  block_store source = small_store(0.5);
  save_parameters(good, source.blocks());
  const std::vector<char> bytes = read_bytes(good);
  REQUIRE(bytes.size() == 8 + 4 + 8 + (8 + 1 + 16 + 48) + (8 + 4 + 16 + 8) + 8);
  const fs::path cut = dir.file("cut.bin");
  for (std::size_t size = 0; size < bytes.size(); ++size) {
    INFO("truncated to " << size << " bytes");
    write_bytes(cut, std::vector<char>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(size)));
    block_store target = small_store(9.0);
    require_rejected<tsmc::runtime_error>(cut, target);
  }
  // One extra byte at the end is rejected too.
  std::vector<char> longer = bytes;
  longer.push_back(0);
  write_bytes(cut, longer);
  block_store target = small_store(9.0);
  require_rejected<tsmc::runtime_error>(cut, target);
  auto tb = target.blocks();
  REQUIRE_THROWS_WITH(load_parameters(cut, tb), Catch::Matchers::Contains("cut.bin"));
}

TEST_CASE("load_parameters rejects any flipped byte (checksum), a wrong magic and a wrong version", "[learning]") {
  using Catch::Matchers::Contains;
  scratch_directory dir;
  const fs::path good = dir.file("good.bin");
  block_store source = small_store(0.5);
  save_parameters(good, source.blocks());
  const std::vector<char> bytes = read_bytes(good);
  const fs::path bad = dir.file("bad.bin");
  for (std::size_t at = 0; at < bytes.size(); ++at) {
    for (const unsigned char mask : {0x01, 0x80}) {
      INFO("byte " << at << " xor " << static_cast<int>(mask));
      std::vector<char> flipped = bytes;
      flipped[at] = static_cast<char>(static_cast<unsigned char>(flipped[at]) ^ mask);
      write_bytes(bad, flipped);
      block_store target = small_store(9.0);
      const std::vector<Eigen::MatrixXd> before = target.values;
      auto blocks = target.blocks();
      // Structural damage may surface as a truncation, a name or shape mismatch: every case throws.
      REQUIRE_THROWS(load_parameters(bad, blocks));
      for (std::size_t i = 0; i < before.size(); ++i) REQUIRE(target.values[i] == before[i]);
    }
  }
  // A flipped value byte is caught by the checksum.
  std::vector<char> value_flip = bytes;
  value_flip[50] = static_cast<char>(value_flip[50] ^ 0x10);
  write_bytes(bad, value_flip);
  block_store target = small_store(9.0);
  auto tb = target.blocks();
  REQUIRE_THROWS_WITH(load_parameters(bad, tb), Contains("bad.bin") && Contains("checksum"));

  // A wrong magic or version is named as such, even with a consistent checksum.
  std::vector<char> magic = bytes;
  magic[0] = 'X';
  fix_checksum(magic);
  write_bytes(bad, magic);
  require_rejected<tsmc::runtime_error>(bad, target);
  REQUIRE_THROWS_WITH(load_parameters(bad, tb), Contains("not a tsmc parameter file"));
  std::vector<char> version = bytes;
  version[8] = 2;
  fix_checksum(version);
  write_bytes(bad, version);
  require_rejected<tsmc::runtime_error>(bad, target);
  REQUIRE_THROWS_WITH(load_parameters(bad, tb), Contains("version 2"));
}

TEST_CASE("save_parameters replaces a file atomically and reports failures", "[learning]") {
  using Catch::Matchers::Contains;
  scratch_directory dir;
  const fs::path path = dir.file("p.bin");
  block_store first = small_store(0.5);
  save_parameters(path, first.blocks());
  block_store second = small_store(4.0);
  save_parameters(path, second.blocks());
  REQUIRE(dir.entries() == 1);
  block_store target = small_store(9.0);
  auto tb = target.blocks();
  load_parameters(path, tb);
  REQUIRE(target.values[0] == second.values[0]);

  // A destination in a missing directory: an error naming the file; nothing is created.
  REQUIRE_THROWS_WITH(save_parameters(dir.file("no_such_dir") / "p.bin", first.blocks()), Contains("p.bin"));
  REQUIRE(dir.entries() == 1);
  // A destination that is a directory: the rename fails, the temporary file is removed.
  fs::create_directory(dir.file("a_directory"));
  REQUIRE_THROWS_AS(save_parameters(dir.file("a_directory"), first.blocks()), tsmc::runtime_error);
  REQUIRE(dir.entries() == 2);

  // Bad blocks.
  block_store duplicate = small_store(1.0);
  duplicate.names[1] = "w";
  REQUIRE_THROWS_WITH(save_parameters(path, duplicate.blocks()), Contains("unique"));
  block_store unnamed = small_store(1.0);
  unnamed.names[0].clear();
  REQUIRE_THROWS_AS(save_parameters(path, unnamed.blocks()), tsmc::invalid_argument);
  load_parameters(path, tb);  // the file is still the second save
  REQUIRE(target.values[0] == second.values[0]);
}
