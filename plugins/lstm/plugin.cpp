#include <parascan/plugin.hpp>

#include "lstm.hpp"

PARASCAN_DEFINE_PLUGIN("lstm", "0.1.0", parascan::LstmCell)
