// A valid plugin whose first cell is named 'gru', like the cell of the real
// gru plugin, and whose second cell 'gru_copy' is unique. Loaded after the
// real plugin, its 'gru' must be ignored with a warning while 'gru_copy' is
// registered.
#include <parascan/plugin.hpp>

#include "gru/gru.hpp"

namespace parascan {

template <class Scalar, class MemorySpace>
class GruCopyCell : public GruCell<Scalar, MemorySpace> {
 public:
  static constexpr const char* name = "gru_copy";
  using GruCell<Scalar, MemorySpace>::GruCell;
};

}  // namespace parascan

PARASCAN_DEFINE_PLUGIN("duplicate_gru", "0.0.1", parascan::GruCell, parascan::GruCopyCell)
