#pragma once
/// @file
/// @brief The optional slot-state hooks of a LanguageModel: export_slot / import_slot, one
/// particle's state as bytes. The distributed sampler (tsmc/distributed/smc.hpp) ships particles
/// between MPI ranks with them at resampling; nothing else calls them, and a model without them
/// runs everywhere else unchanged. (They belong with the optional hooks listed in
/// core/concepts.hpp; they live in their own header so that adding them did not touch a header
/// every translation unit includes.)

#include <tsmc/core/concepts.hpp>

#include <cstddef>
#include <span>
#include <vector>

namespace tsmc {

/// @brief Optional hooks: `export_slot(slot, out)` appends the state of one slot (one particle:
/// an n-gram model's context, a transformer's KV cache rows and position) to a byte buffer, and
/// `import_slot(slot, bytes)` makes a slot's state exactly the one exported, by this model or by a
/// copy of it in another process (same type, same weights). import_slot may throw
/// tsmc::invalid_argument on bytes it cannot have written (a wrong size).
template <class M>
concept ExportsSlotState = requires(const M& m, M& w, std::size_t slot, std::vector<std::byte>& out,
                                    std::span<const std::byte> bytes) {
  m.export_slot(slot, out);
  w.import_slot(slot, bytes);
};

/// @brief A LanguageModel whose slots can be exported and imported (ExportsSlotState): what the
/// distributed sampler needs.
template <class M>
concept SlotStateModel = LanguageModel<M> && ExportsSlotState<M>;

}  // namespace tsmc
