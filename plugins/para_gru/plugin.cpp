#include <parascan/plugin.hpp>

#include "para_gru.hpp"

PARASCAN_DEFINE_PLUGIN("para_gru", "0.1.0", parascan::ParaGruCell)
