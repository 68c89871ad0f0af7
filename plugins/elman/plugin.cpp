#include <parascan/plugin.hpp>

#include "elman.hpp"

PARASCAN_DEFINE_PLUGIN("elman", "0.1.0", parascan::ElmanCell)
