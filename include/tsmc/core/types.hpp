#pragma once
/// @file
/// @brief Vocabulary types shared by every layer: tokens, sequences and the K x V matrices.

#include <Eigen/Core>

#include <cstdint>
#include <vector>

namespace tsmc {

/// @brief A token id, an index into the language model's vocabulary.
using token = std::int32_t;

/// @brief A sequence of tokens (a prompt, or the tokens a particle generated).
using token_sequence = std::vector<token>;

/// @brief The index of a particle slot (ancestor indices are stored as these: 32 bits halve
/// the memory traffic of resampling compared with size_t).
using particle_index = std::uint32_t;

/// @brief A K x V matrix of per-particle, per-candidate-token log values (log p0, log psi).
///
/// Row-major so that one particle's row is contiguous. Double precision: the sampler's weights
/// telescope (log psi_{t-1} cancels against the next step's normaliser), and single-precision
/// twists would leave 1e-7 errors per step that no later step removes; models that compute in
/// float convert their rows once when writing them.
using log_prob_matrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// @brief A writable view of a K x V matrix (or of a block of rows of one).
using log_prob_ref = Eigen::Ref<log_prob_matrix>;

/// @brief A read-only view of a K x V matrix.
using const_log_prob_ref = Eigen::Ref<const log_prob_matrix>;

/// @brief A K x d matrix of per-particle features (a model's last hidden state).
using feature_matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

}  // namespace tsmc
