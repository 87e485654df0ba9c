#include "models/llama2c_test_support.hpp"

#include <tsmc/models/llama2c_checkpoint.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace {

using tsmc::llama2c::config;
using Catch::Contains;

/// Writes a header and `floats` zero floats (a file built to fail one check).
void write_raw(const std::filesystem::path& path, const std::array<std::int32_t, 7>& header, std::size_t floats) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(header.data()), sizeof(std::int32_t) * 7);
  const std::vector<float> zeros(floats, 0.0f);
  out.write(reinterpret_cast<const char*>(zeros.data()), static_cast<std::streamsize>(zeros.size() * sizeof(float)));
}

std::array<std::int32_t, 7> header_of(const config& c) {
  return {c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.shared_classifier ? c.vocab_size : -c.vocab_size,
          c.seq_len};
}

/// The message of the runtime_error thrown when loading `path` (fails the test if none is).
std::string load_error(const std::filesystem::path& path) {
  try {
    tsmc::llama2c::checkpoint ckpt(path);
  } catch (const tsmc::runtime_error& e) {
    return e.what();
  }
  FAIL("no tsmc::runtime_error for " << path);
  return {};
}

}  // namespace

TEST_CASE("llama2c checkpoint: shared and unshared files load with the weights where the format puts them",
          "[models]") {
  llama2c_test::temp_dir dir;
  for (const config& c : {llama2c_test::tiny_shared(), llama2c_test::tiny_gqa_unshared()}) {
    const std::vector<float> w = tsmc::llama2c::random_weights(c, 3);
    const auto path = dir.file("m.bin");
    tsmc::llama2c::write_checkpoint(path, c, w);
    const config read = tsmc::llama2c::read_config(path);
    CHECK(read.dim == c.dim);
    CHECK(read.hidden_dim == c.hidden_dim);
    CHECK(read.n_layers == c.n_layers);
    CHECK(read.n_heads == c.n_heads);
    CHECK(read.n_kv_heads == c.n_kv_heads);
    CHECK(read.vocab_size == c.vocab_size);
    CHECK(read.seq_len == c.seq_len);
    CHECK(read.shared_classifier == c.shared_classifier);
    for (const auto mode : {tsmc::llama2c::load_mode::map, tsmc::llama2c::load_mode::read}) {
      const tsmc::llama2c::checkpoint ckpt(path, mode);
      CHECK(ckpt.mapped() == (mode == tsmc::llama2c::load_mode::map));
      const std::size_t D = static_cast<std::size_t>(c.dim), V = static_cast<std::size_t>(c.vocab_size),
                        L = 2, H = static_cast<std::size_t>(c.hidden_dim), KV = c.kv_dim();
      // Offsets from the format's list of arrays.
      const std::size_t wq = V * D + L * D, wk = wq + L * D * D, wv = wk + L * KV * D, wo = wv + L * KV * D,
                        rms_ffn = wo + L * D * D, w1 = rms_ffn + L * D, w2 = w1 + L * H * D, w3 = w2 + L * D * H,
                        rms_final = w3 + L * H * D, wcls = c.shared_classifier ? 0 : rms_final + D + 24 * (D / static_cast<std::size_t>(c.n_heads));
      CHECK(ckpt.token_embedding()(5, 3) == w[5 * D + 3]);
      CHECK(ckpt.rms_att(1)(2) == w[V * D + D + 2]);
      CHECK(ckpt.wq(1)(4, 7) == w[wq + D * D + 4 * D + 7]);
      CHECK(ckpt.wk(1)(KV - 1, 2) == w[wk + KV * D + (KV - 1) * D + 2]);
      CHECK(ckpt.wv(0)(3, D - 1) == w[wv + 3 * D + D - 1]);
      CHECK(ckpt.wo(1)(D - 1, 0) == w[wo + D * D + (D - 1) * D]);
      CHECK(ckpt.rms_ffn(1)(0) == w[rms_ffn + D]);
      CHECK(ckpt.w1(1)(H - 1, 1) == w[w1 + H * D + (H - 1) * D + 1]);
      CHECK(ckpt.w2(0)(1, H - 1) == w[w2 + H + H - 1]);
      CHECK(ckpt.w3(1)(2, 3) == w[w3 + H * D + 2 * D + 3]);
      CHECK(ckpt.rms_final()(D - 1) == w[rms_final + D - 1]);
      CHECK(ckpt.wcls()(V - 1, D - 1) == w[wcls + (V - 1) * D + D - 1]);
    }
  }
}

TEST_CASE("llama2c checkpoint: each header check has a file built to fail it", "[models]") {
  llama2c_test::temp_dir dir;
  const auto path = dir.file("bad.bin");
  const std::string file = llama2c_test::quoted(path);
  const config good = llama2c_test::tiny_gqa_unshared();
  const std::size_t floats = tsmc::llama2c::checkpoint_floats(good);

  SECTION("a missing file") {
    CHECK_THAT(load_error(dir.file("absent.bin")), Contains("absent.bin") && Contains("readable"));
  }
  SECTION("a truncated header") {
    std::ofstream(path, std::ios::binary).write("\x10\x00\x00\x00\x20\x00", 6);
    CHECK_THAT(load_error(path), Contains(file + " header") && Contains("truncated"));
  }
  SECTION("zero or negative dimensions") {
    const char* names[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
    for (std::size_t i = 0; i < 7; ++i) {
      for (const std::int32_t value : {0, -3}) {
        if (i == 5 && value < 0) continue;  // a negative vocab_size is an unshared classifier
        auto h = header_of(good);
        h[i] = value;
        write_raw(path, h, floats);
        INFO("field " << names[i] << " = " << value);
        CHECK_THAT(load_error(path), Contains(file + " header field " + names[i]));
      }
    }
  }
  SECTION("n_heads not dividing dim") {
    auto h = header_of(good);
    h[3] = 5;  // 24 % 5 != 0
    h[4] = 5;
    write_raw(path, h, floats);
    CHECK_THAT(load_error(path), Contains(file + " header field n_heads") && Contains("must divide dim = 24"));
  }
  SECTION("n_kv_heads not dividing n_heads") {
    auto h = header_of(good);
    h[4] = 4;  // 6 % 4 != 0
    write_raw(path, h, floats);
    CHECK_THAT(load_error(path), Contains(file + " header field n_kv_heads") && Contains("must divide n_heads = 6"));
    h[4] = 12;  // more kv heads than heads
    write_raw(path, h, floats);
    CHECK_THAT(load_error(path), Contains(file + " header field n_kv_heads"));
  }
  SECTION("an odd head size") {
    auto h = header_of(good);
    h[3] = 8;  // head_size 3
    h[4] = 8;
    write_raw(path, h, floats);
    CHECK_THAT(load_error(path), Contains(file + " header field n_heads") && Contains("even head_size"));
  }
  SECTION("weights shorter than the header implies") {
    write_raw(path, header_of(good), floats - 1);
    CHECK_THAT(load_error(path), Contains(file + " file size") && Contains("truncated"));
  }
  SECTION("a file longer than the header implies") {
    write_raw(path, header_of(good), floats + 1);
    CHECK_THAT(load_error(path), Contains(file + " file size") && Contains(std::to_string(28 + 4 * floats)));
  }
  SECTION("a shared classifier read as unshared (the sign of vocab_size) does not match the size") {
    auto h = header_of(good);
    h[5] = -h[5];  // claims shared: the file is one wcls too long
    write_raw(path, h, floats);
    CHECK_THAT(load_error(path), Contains(file + " file size") && Contains("shared classifier"));
  }
  SECTION("a header describing a huge model is rejected before anything is allocated") {
    write_raw(path, {1 << 30, 1 << 30, 1 << 30, 2, 2, 1 << 30, 1 << 30}, 4);
    const std::string message = load_error(path);
    CHECK_THAT(message, Contains(file + " "));
  }
  SECTION("write_checkpoint refuses a payload of the wrong size") {
    const std::vector<float> w(floats - 1);
    CHECK_THROWS_AS(tsmc::llama2c::write_checkpoint(path, good, w), tsmc::invalid_argument);
  }
}
