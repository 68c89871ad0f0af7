#include <parascan/plugin.hpp>

#include "para_lstm.hpp"

PARASCAN_DEFINE_PLUGIN("para_lstm", "0.1.0", parascan::ParaLstmCell)
