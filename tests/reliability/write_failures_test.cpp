// Saves to a full file system: every file writer of the library (ARPA, classifier, parameters,
// CSV, and tsmc::write_file_atomically, through which the example programs write their CSV and
// JSON outputs) reports an error and leaves the previous file byte-identical, with no temporary
// file left behind; train() refuses a checkpoint it could not write before its first update.
//
// The full file system: as root (where mount(2) is allowed) a 64 KiB tmpfs is mounted on a
// scratch directory and filled; elsewhere the process's file-size limit (RLIMIT_FSIZE) is lowered
// so that a write past a few bytes fails (EFBIG; SIGXFSZ ignored), which is the same error path.
#include <tsmc/all.hpp>

#include "learning/learning_fixtures.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <sys/mount.h>
#include <sys/resource.h>
#include <unistd.h>

namespace {

namespace fs = std::filesystem;

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::set<std::string> listing(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

/// A scratch directory that can be made full (see the file's description).
class full_directory {
 public:
  full_directory() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            ("tsmc_full_fs." + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1)));
    fs::create_directories(path_);
    // TSMC_TEST_NO_MOUNT=1 takes the file-size-limit path even as root (to test that path too).
    mounted_ = ::geteuid() == 0 && std::getenv("TSMC_TEST_NO_MOUNT") == nullptr &&
               ::mount("tmpfs", path_.c_str(), "tmpfs", 0, "size=64k") == 0;
  }
  full_directory(const full_directory&) = delete;
  full_directory& operator=(const full_directory&) = delete;
  ~full_directory() {
    release();
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  [[nodiscard]] const fs::path& path() const { return path_; }
  [[nodiscard]] bool mounted() const { return mounted_; }

  /// From now on writes fail: the tmpfs is filled, or the file-size limit lowered to 8 bytes.
  void fill() {
    if (mounted_) {
      std::ofstream filler(path_ / "filler", std::ios::binary);
      const std::string block(4096, 'x');
      while (filler.write(block.data(), static_cast<std::streamsize>(block.size())) && filler.flush()) {
      }
      return;
    }
    ::getrlimit(RLIMIT_FSIZE, &saved_);
    previous_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    rlimit low = saved_;
    low.rlim_cur = 8;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &low) == 0);
    limited_ = true;
  }
  /// Writes succeed again.
  void release() {
    if (!limited_) return;
    ::setrlimit(RLIMIT_FSIZE, &saved_);
    std::signal(SIGXFSZ, previous_handler_);
    limited_ = false;
  }

 private:
  fs::path path_;
  bool mounted_ = false;
  bool limited_ = false;
  rlimit saved_{};
  void (*previous_handler_)(int) = SIG_DFL;
};

/// Writes `previous` with `save`, makes the file system full, saves `next` over it with `save`
/// and checks: an exception naming `function`, the file byte-identical, no file added.
template <class Save>
void check_full_disk(const std::string& name, const std::string& function, Save save) {
  full_directory dir;
  const fs::path file = dir.path() / name;
  save(file, 0);
  const std::string before = read_bytes(file);
  REQUIRE_FALSE(before.empty());
  dir.fill();
  const std::set<std::string> names = listing(dir.path());
  INFO("tmpfs mounted: " << dir.mounted());
  try {
    save(file, 1);
    dir.release();
    FAIL("the save to a full file system reported success");
  } catch (const tsmc::runtime_error& e) {
    dir.release();
    CHECK_THAT(e.what(), Catch::Contains("tsmc::" + function));
  }
  CHECK(read_bytes(file) == before);
  CHECK(listing(dir.path()) == names);
}

tsmc::ngram_model small_model(int variant) {
  const std::vector<std::string> corpus = variant == 0
                                              ? std::vector<std::string>{"the cat sat", "the dog ran", "a cat ran"}
                                              : std::vector<std::string>{"a bird sang", "the bird sat", "a dog sang"};
  const auto vocabulary = tsmc::word_tokenizer::from_corpus(corpus);
  return tsmc::ngram_model::train_kneser_ney(vocabulary, std::span<const std::string>(corpus), {.order = 3});
}

}  // namespace

TEST_CASE("write failures: save_arpa on a full file system throws and keeps the previous file", "[reliability]") {
  check_full_disk("model.arpa", "ngram_model::save_arpa",
                  [](const fs::path& p, int variant) { small_model(variant).save_arpa(p.string()); });
}

TEST_CASE("write failures: a classifier save on a full file system throws, keeps the file, leaves no temporary",
          "[reliability]") {
  check_full_disk("classifier.txt", "bag_of_words_classifier::save", [](const fs::path& p, int variant) {
    const std::vector<tsmc::token_sequence> sentences{{3, 4}, {4, 5}, {5, 3}, {3, 3}};
    const std::vector<std::size_t> labels{0, 1, static_cast<std::size_t>(variant), 1};
    tsmc::bag_of_words_classifier::train(sentences, labels, 2, 6).save(p.string());
  });
}

TEST_CASE("write failures: a classifier larger than the stream's buffer: the error during write() leaves no temporary",
          "[reliability]") {
  // The classifier above fits the stream's buffer, so its write error shows only at the close. A
  // classifier of a few tens of kilobytes fails inside bag_of_words_classifier::write (which
  // throws): the save must still remove its temporary file (a save that wrote the temporary file
  // itself and threw from write() left it behind) and keep the previous file.
  auto save = [](const fs::path& p, int variant) {
    constexpr Eigen::Index vocabulary = 1024;
    Eigen::MatrixXd weights(2, vocabulary);
    for (Eigen::Index i = 0; i < 2; ++i)
      for (Eigen::Index j = 0; j < vocabulary; ++j)
        weights(i, j) = std::sqrt(2.0 + static_cast<double>(i * vocabulary + j + variant));  // ~17 digits each
    tsmc::bag_of_words_classifier c(2, static_cast<std::size_t>(vocabulary));
    c.set_parameters(weights, Eigen::Vector2d(0.5, -0.5));
    c.save(p.string());
  };
  full_directory dir;
  const fs::path file = dir.path() / "classifier.txt";
  save(file, 0);
  const std::string before = read_bytes(file);
  REQUIRE(before.size() > 32 * 1024);  // larger than any stream buffer: the write fails inside write()
  dir.fill();
  const std::set<std::string> names = listing(dir.path());
  INFO("tmpfs mounted: " << dir.mounted());
  bool threw = false;
  try {
    save(file, 1);
  } catch (const tsmc::runtime_error& e) {
    threw = true;
    CHECK_THAT(e.what(), Catch::Contains("tsmc::bag_of_words_classifier::"));
  }
  dir.release();
  CHECK(threw);
  CHECK(read_bytes(file) == before);
  CHECK(listing(dir.path()) == names);
}

TEST_CASE("write failures: save_parameters on a full file system throws and keeps the previous file",
          "[reliability]") {
  check_full_disk("twist.params", "save_parameters", [](const fs::path& p, int variant) {
    Eigen::VectorXd values = Eigen::VectorXd::Constant(64, 0.5 + variant), gradient = Eigen::VectorXd::Zero(64);
    tsmc::parameter_block block{"w", 8, 8, Eigen::Map<Eigen::VectorXd>(values.data(), 64),
                                Eigen::Map<Eigen::VectorXd>(gradient.data(), 64)};
    tsmc::save_parameters(p, std::vector<tsmc::parameter_block>{block});
  });
}

TEST_CASE("write failures: write_csv_file on a full file system throws and keeps the previous file", "[reliability]") {
  check_full_disk("bounds.csv", "write_csv_file", [](const fs::path& p, int variant) {
    std::vector<tsmc::bounds_report> reports(static_cast<std::size_t>(3 + variant));
    for (std::size_t i = 0; i < reports.size(); ++i) reports[i].method = "method " + std::to_string(i);
    tsmc::write_csv_file(p.string(), reports);
  });
}

TEST_CASE("write failures: write_file_atomically (the programs' CSV and JSON) on a full file system",
          "[reliability]") {
  check_full_disk("summary.json", "flagship --json", [](const fs::path& p, int variant) {
    tsmc::write_file_atomically(
        p, [variant](std::ostream& out) { out << "{\"log_z\": " << (variant == 0 ? "-3.5" : "-2.25") << "}\n"; },
        "flagship --json");
  });
}

TEST_CASE("write failures: a writer that throws midway leaves the previous file and no temporary", "[reliability]") {
  full_directory dir;
  const fs::path file = dir.path() / "out.csv";
  tsmc::write_file_atomically(file, [](std::ostream& out) { out << "a,b\n1,2\n"; });
  const auto names = listing(dir.path());
  CHECK_THROWS_WITH(tsmc::write_file_atomically(file,
                                                [](std::ostream& out) {
                                                  out << "a,b\n";
                                                  throw std::runtime_error("the writer's own failure");
                                                }),
                    "the writer's own failure");
  CHECK(read_bytes(file) == "a,b\n1,2\n");
  CHECK(listing(dir.path()) == names);
}

TEST_CASE("write failures: write_file_atomically refuses to replace a device or a directory", "[reliability]") {
  CHECK_THROWS_WITH(tsmc::write_file_atomically("/dev/null", [](std::ostream& out) { out << "x"; }),
                    Catch::Contains("tsmc::write_file_atomically: path must name a regular file"));
  CHECK(fs::is_character_file("/dev/null"));
  full_directory dir;
  fs::create_directories(dir.path() / "sub");
  CHECK_THROWS_WITH(tsmc::write_file_atomically(dir.path() / "sub", [](std::ostream& out) { out << "x"; }),
                    Catch::Contains("path must name a regular file"));
  CHECK(fs::is_directory(dir.path() / "sub"));
}

TEST_CASE("write failures: train() with a checkpoint in a missing directory fails before the first update",
          "[reliability]") {
  tsmc_test::learning_toy toy{true, 11};
  tsmc::tabular_twist twist{3, 3};
  auto problem = toy.learning(twist, 4);
  tsmc::ctl<> objective;
  tsmc::adam optimizer;
  tsmc::default_engine rng(4);
  struct counter {
    std::size_t* updates;
    void on_update(const tsmc::training_record&) { ++*updates; }
  };
  std::size_t updates = 0;
  tsmc::training_options options{.updates = 5};
  options.checkpoint = fs::temp_directory_path() / "tsmc_no_such_directory_for_checkpoints" / "twist.params";
  CHECK_THROWS_WITH(tsmc::train(problem, objective, optimizer, options, rng, tsmc::no_evaluator{}, counter{&updates}),
                    Catch::Contains("tsmc::train: options.checkpoint must name a file in an existing, writable "
                                    "directory (checked before the first update)"));
  CHECK(updates == 0);
}
