#include <parascan/plugin.hpp>

#include "diag_ssm.hpp"

PARASCAN_DEFINE_PLUGIN("diag_ssm", "0.1.0", parascan::DiagSsmCell)
