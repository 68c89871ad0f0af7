#include <parascan/plugin.hpp>

#include "ttt.hpp"

PARASCAN_DEFINE_PLUGIN("ttt", "0.1.0", parascan::TttCell)
