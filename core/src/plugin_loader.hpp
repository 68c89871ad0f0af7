// Finds, loads and checks cell plugins; owns their library handles.
#pragma once

#include <string>
#include <vector>

#include "parascan/plugin.hpp"

namespace parascan::detail {

struct PluginCell {
  const CellFactory* factory = nullptr;
  std::string plugin_name;
  std::string plugin_version;
  std::string path;
};

class PluginRegistry {
 public:
  PluginRegistry() = default;
  PluginRegistry(const PluginRegistry&) = delete;
  PluginRegistry& operator=(const PluginRegistry&) = delete;

  /// Unloads every library. Kokkos must be finalised and every Problem
  /// destroyed before this runs, because their code lives in the libraries.
  ~PluginRegistry();

  /// Loads every `*.so` in the folders, in order; the first plugin that
  /// provides a cell name wins. Files that are not usable plugins are skipped
  /// with a warning naming the file and the reason.
  void load_folders(const std::vector<std::string>& folders);

  const PluginCell* find(const std::string& cell) const;
  const std::vector<PluginCell>& cells() const { return cells_; }
  const std::vector<std::string>& warnings() const { return warnings_; }
  std::vector<std::string> cell_names() const;

 private:
  void load_file(const std::string& path);
  void warn(const std::string& message);

  std::vector<void*> handles_;
  std::vector<PluginCell> cells_;
  std::vector<std::string> warnings_;
};

/// The plugin folders: those in PARASCAN_PLUGIN_PATH (colon-separated), then
/// the build's or install's own plugin folder next to the executable.
std::vector<std::string> plugin_folders();

/// "3.4.1" for KOKKOS_VERSION 30401.
std::string format_kokkos_version(int version);

}  // namespace parascan::detail
