#pragma once
/// @file
/// @brief The storage types of the transformer engine's weight matrices (float32, IEEE half,
/// bfloat16, Q8_0), their conversions both ways, and dequantising rows of a matrix_view into
/// floats (what the engine does, tile by tile, before each float GEMM for the 16-bit and
/// quantised types).

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace tsmc::transformer {

/// @brief How a weight matrix is stored (the numbers are GGML's type ids).
enum class weight_type : std::uint32_t {
  f32 = 0,    ///< float32
  f16 = 1,    ///< IEEE half
  q8_0 = 8,   ///< blocks of 32: one half scale d and 32 int8 q, value d * q
  bf16 = 30,  ///< bfloat16 (the top 16 bits of a float32)
};

/// @brief A weight matrix in a loader's storage: rows x cols, row-major ([out][in]), of `type`
/// (Q8_0: cols a multiple of 32, each row cols / 32 blocks of 34 bytes).
struct matrix_view {
  weight_type type = weight_type::f32;  ///< storage type
  const void* data = nullptr;            ///< the first row
  std::size_t rows = 0;                  ///< output width
  std::size_t cols = 0;                  ///< input width
};


/// @brief IEEE half bits to float (exact: every half is a float).
[[nodiscard]] inline float half_to_float(std::uint16_t h) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1fu;
  std::uint32_t mantissa = h & 0x3ffu;
  std::uint32_t bits = 0;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);  // inf / nan
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;  // +-0
  } else {
    // Subnormal: normalise.
    std::uint32_t e = 113;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --e;
    }
    bits = sign | (e << 23) | ((mantissa & 0x3ffu) << 13);
  }
  return std::bit_cast<float>(bits);
}

/// @brief Float to IEEE half bits, rounding to nearest even (overflow to inf, nan kept a nan).
[[nodiscard]] inline std::uint16_t float_to_half(float f) noexcept {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  const std::uint32_t sign = (x >> 16) & 0x8000u;
  const std::uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) return static_cast<std::uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));
  if (abs >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // rounds past 65504: inf
  if (abs < 0x38800000u) {
    // Subnormal half (or zero): value = m * 2^-24, m rounded to nearest even.
    if (abs < 0x33000000u) return static_cast<std::uint16_t>(sign);  // below half the smallest subnormal
    const std::uint32_t e = abs >> 23;
    const std::uint32_t m = (abs & 0x7fffffu) | 0x800000u;
    const std::uint32_t shift = 126 - e;  // 14 + (113 - e) - 1 ... bits to drop: m * 2^(e-150) / 2^-24
    const std::uint32_t drop = shift;
    std::uint32_t q = m >> drop;
    const std::uint32_t rest = m & ((1u << drop) - 1u);
    const std::uint32_t halfway = 1u << (drop - 1);
    if (rest > halfway || (rest == halfway && (q & 1u))) ++q;
    return static_cast<std::uint16_t>(sign | q);
  }
  // Normal: rebias the exponent, round the mantissa's low 13 bits to nearest even.
  std::uint32_t h = ((abs >> 13) - (112u << 10));
  const std::uint32_t rest = abs & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
  return static_cast<std::uint16_t>(sign | h);
}

/// @brief bfloat16 bits to float (exact).
[[nodiscard]] inline float bf16_to_float(std::uint16_t b) noexcept {
  return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16);
}

/// @brief Float to bfloat16 bits, rounding to nearest even (nan kept a quiet nan).
[[nodiscard]] inline std::uint16_t float_to_bf16(float f) noexcept {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((x >> 16) | 0x40u);
  return static_cast<std::uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

/// @brief Elements per Q8_0 block.
inline constexpr std::size_t q8_0_block = 32;
/// @brief Bytes per Q8_0 block: a half scale d and 32 int8 q (value d * q).
inline constexpr std::size_t q8_0_bytes = 34;

/// @brief Quantises n floats (n a multiple of 32) to Q8_0 blocks, as llama.cpp's reference
/// quantiser: per block d = max|x| / 127, q = round(x / d) (0 for an all-zero block), d stored
/// as a half.
/// @param in n floats
/// @param out n / 32 * 34 bytes
inline void quantize_q8_0(std::span<const float> in, unsigned char* out) noexcept {
  for (std::size_t b = 0; b < in.size() / q8_0_block; ++b) {
    const float* x = in.data() + b * q8_0_block;
    float amax = 0.0f;
    for (std::size_t i = 0; i < q8_0_block; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const std::uint16_t dh = float_to_half(d);
    unsigned char* block = out + b * q8_0_bytes;
    std::memcpy(block, &dh, 2);
    for (std::size_t i = 0; i < q8_0_block; ++i) {
      const auto q = static_cast<std::int8_t>(std::lround(x[i] * id));
      std::memcpy(block + 2 + i, &q, 1);
    }
  }
}

/// @brief Dequantises n values of Q8_0 blocks (n a multiple of 32) into floats: d * q.
/// @param in n / 32 blocks
/// @param out n floats
inline void dequantize_q8_0(const unsigned char* in, std::span<float> out) noexcept {
  for (std::size_t b = 0; b < out.size() / q8_0_block; ++b) {
    const unsigned char* block = in + b * q8_0_bytes;
    std::uint16_t dh;
    std::memcpy(&dh, block, 2);
    const float d = half_to_float(dh);
    float* y = out.data() + b * q8_0_block;
    for (std::size_t i = 0; i < q8_0_block; ++i) y[i] = d * static_cast<float>(static_cast<std::int8_t>(block[2 + i]));
  }
}

/// @brief Bytes of one row of `cols` entries of a type.
[[nodiscard]] inline std::size_t row_bytes(weight_type type, std::size_t cols) noexcept {
  switch (type) {
    case weight_type::f32: return cols * 4;
    case weight_type::f16: case weight_type::bf16: return cols * 2;
    case weight_type::q8_0: return cols / q8_0_block * q8_0_bytes;
  }
  return 0;
}

/// @brief Rows [first, first + count) of a matrix as floats, written count x cols row-major
/// into out (exact for f32, f16 and bf16; d * q for Q8_0).
/// @param m the matrix
/// @param first the first row
/// @param count the number of rows
/// @param out count * m.cols floats
inline void dequantize_rows(const matrix_view& m, std::size_t first, std::size_t count, float* out) noexcept {
  const auto* base = static_cast<const unsigned char*>(m.data) + first * row_bytes(m.type, m.cols);
  const std::size_t n = count * m.cols;
  switch (m.type) {
    case weight_type::f32: std::memcpy(out, base, n * sizeof(float)); return;
    case weight_type::f16:
      for (std::size_t i = 0; i < n; ++i) {
        std::uint16_t h;
        std::memcpy(&h, base + 2 * i, 2);
        out[i] = half_to_float(h);
      }
      return;
    case weight_type::bf16:
      for (std::size_t i = 0; i < n; ++i) {
        std::uint16_t h;
        std::memcpy(&h, base + 2 * i, 2);
        out[i] = bf16_to_float(h);
      }
      return;
    case weight_type::q8_0: dequantize_q8_0(base, std::span<float>(out, n)); return;
  }
}

}  // namespace tsmc::transformer
