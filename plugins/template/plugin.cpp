// The plugin's one entry point: lists the cells this library provides.
#include <parascan/plugin.hpp>

#include "leaky.hpp"

PARASCAN_DEFINE_PLUGIN("leaky", "1.0.0", my_cells::LeakyCell)
