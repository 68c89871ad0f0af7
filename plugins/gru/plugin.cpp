#include <parascan/plugin.hpp>

#include "gru.hpp"

PARASCAN_DEFINE_PLUGIN("gru", "0.1.0", parascan::GruCell)
