// The text `parascan plugins --describe CELL` prints for one cell.
#pragma once

#include <cstdio>
#include <string>

#include "parascan/problem.hpp"
#include "parascan/types.hpp"

namespace parascan {

/// Formats a cell's name, description, Jacobian structure, parameters with
/// defaults and meanings, and its notes on sizes and initialisation.
inline std::string describe_cell(const CellFactory& cell) {
  std::string text = cell.name() + ": " + cell.description() + "\n";
  text += "jacobian structure: " + std::string(to_string(cell.structure()));
  if (cell.structure() == JacobianStructure::block_diagonal)
    text += " (blocks of " + std::to_string(cell.block_size()) + "; state_dim must be a multiple of it)";
  text += "\n";

  const auto parameters = cell.parameter_info();
  text += "cell_params:";
  text += parameters.empty() ? " none\n" : "\n";
  for (const ParameterInfo& p : parameters) {
    if (!p.documented) {
      text += "  " + p.name + " (undocumented)\n";
      continue;
    }
    char default_text[64];
    std::snprintf(default_text, sizeof default_text, "%g", p.default_value);
    text += "  " + p.name + " (default " + default_text + "): " + p.meaning + "\n";
  }

  const std::string notes = cell.documentation();
  if (!notes.empty()) {
    text += "sizes and initialisation:\n";
    std::size_t begin = 0;
    while (begin < notes.size()) {
      std::size_t end = notes.find('\n', begin);
      if (end == std::string::npos) end = notes.size();
      text += "  " + notes.substr(begin, end - begin) + "\n";
      begin = end + 1;
    }
  }
  return text;
}

}  // namespace parascan
