#include "plugin_loader.hpp"

#include <dlfcn.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <sstream>

namespace parascan::detail {
namespace fs = std::filesystem;

std::string format_kokkos_version(int version) {
  std::ostringstream text;
  text << version / 10000 << '.' << (version / 100) % 100 << '.' << version % 100;
  return text.str();
}

namespace {

/// Backend lists are stored as "serial,openmp," for cheap concatenation.
std::string without_trailing_comma(std::string list) {
  while (!list.empty() && list.back() == ',') list.pop_back();
  return list;
}

}  // namespace

PluginRegistry::~PluginRegistry() {
  cells_.clear();
  for (auto it = handles_.rbegin(); it != handles_.rend(); ++it) dlclose(*it);
}

void PluginRegistry::warn(const std::string& message) {
  warnings_.push_back(message);
  spdlog::warn("{}", message);
}

void PluginRegistry::load_folders(const std::vector<std::string>& folders) {
  for (const auto& folder : folders) {
    std::error_code error;
    if (!fs::is_directory(folder, error)) continue;
    std::vector<std::string> files;
    for (const auto& entry : fs::directory_iterator(folder, error))
      if (entry.path().extension() == ".so") files.push_back(entry.path().string());
    std::sort(files.begin(), files.end());
    for (const auto& file : files) load_file(file);
  }
}

void PluginRegistry::load_file(const std::string& path) {
  // RTLD_LOCAL keeps plugins' symbols apart; RTLD_DEEPBIND is never used
  // because it would let a plugin bind its own copy of Kokkos' globals.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    warn("skipping plugin '" + path + "': cannot be loaded: " + dlerror());
    return;
  }
  auto entry = reinterpret_cast<parascan_plugin_entry_function>(dlsym(handle, PARASCAN_PLUGIN_ENTRY_NAME));
  if (entry == nullptr) {
    warn("skipping plugin '" + path + "': not a parascan plugin (no " PARASCAN_PLUGIN_ENTRY_NAME " symbol)");
    dlclose(handle);
    return;
  }

  const parascan_plugin_descriptor* descriptor = entry();
  std::string problem;
  if (descriptor == nullptr) {
    problem = "its entry point returned no descriptor";
  } else if (descriptor->abi_version != PARASCAN_PLUGIN_ABI_VERSION) {
    problem = "built for plugin ABI " + std::to_string(descriptor->abi_version) + ", this parascan uses ABI " +
              std::to_string(PARASCAN_PLUGIN_ABI_VERSION) + "; rebuild the plugin against this parascan";
  } else if (descriptor->descriptor_size != sizeof(parascan_plugin_descriptor)) {
    problem = "its descriptor has " + std::to_string(descriptor->descriptor_size) + " bytes, expected " +
              std::to_string(sizeof(parascan_plugin_descriptor)) + "; rebuild the plugin against this parascan";
  } else if (descriptor->kokkos_version != KOKKOS_VERSION) {
    problem = "built for Kokkos " + format_kokkos_version(descriptor->kokkos_version) + ", this parascan uses " +
              format_kokkos_version(KOKKOS_VERSION) + "; rebuild the plugin";
  } else if (std::string(descriptor->backends) != compiled_backends()) {
    problem = "built for Kokkos backends '" + without_trailing_comma(descriptor->backends) + "', this parascan has '" +
              without_trailing_comma(compiled_backends()) + "'; rebuild the plugin";
  }
  if (!problem.empty()) {
    warn("skipping plugin '" + path + "': " + problem);
    dlclose(handle);
    return;
  }

  handles_.push_back(handle);
  for (int i = 0; i < descriptor->cell_count; ++i) {
    const CellFactory* factory = descriptor->cells[i];
    const std::string name = factory->name();
    if (const PluginCell* existing = find(name)) {
      warn("cell '" + name + "' of plugin '" + path + "' is ignored: '" + existing->path +
           "' provides it earlier in the plugin path");
      continue;
    }
    cells_.push_back({factory, descriptor->plugin_name, descriptor->plugin_version, path});
  }
}

const PluginCell* PluginRegistry::find(const std::string& cell) const {
  for (const auto& entry : cells_)
    if (entry.factory->name() == cell) return &entry;
  return nullptr;
}

std::vector<std::string> PluginRegistry::cell_names() const {
  std::vector<std::string> names;
  for (const auto& entry : cells_) names.push_back(entry.factory->name());
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> plugin_folders() {
  std::vector<std::string> folders;
  if (const char* path = std::getenv("PARASCAN_PLUGIN_PATH")) {
    std::stringstream list(path);
    std::string folder;
    while (std::getline(list, folder, ':'))
      if (!folder.empty()) folders.push_back(folder);
  }
  // The build tree puts plugins in <build>/plugins beside <build>/bin; an
  // install puts them in <prefix>/lib/parascan/plugins beside <prefix>/bin.
  std::error_code error;
  const fs::path executable = fs::read_symlink("/proc/self/exe", error);
  if (!error) {
    const fs::path prefix = executable.parent_path().parent_path();
    folders.push_back((prefix / "plugins").string());
    folders.push_back((prefix / "lib" / "parascan" / "plugins").string());
  }
  return folders;
}

}  // namespace parascan::detail
