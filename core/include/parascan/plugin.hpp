// The plugin ABI: one `extern "C"` entry point per shared library returns a
// versioned descriptor listing the cells the library provides.
//
// A plugin file defines its cell templates and ends with
//
//     PARASCAN_DEFINE_PLUGIN("my_plugin", "1.0.0", MyCell, MyOtherCell)
//
// which instantiates the solver family for every cell on every backend and
// scalar type of the Kokkos the plugin is compiled against.
#pragma once

#include <Kokkos_Core.hpp>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "parascan/autodiff.hpp"
#include "parascan/cell_parameters.hpp"
#include "parascan/problem.hpp"
#include "parascan/solver.hpp"

/// Raised whenever the descriptor layout or the Problem/CellFactory
/// interfaces change; the loader rejects plugins built for another value.
#define PARASCAN_PLUGIN_ABI_VERSION 5

/// The name of the entry point every plugin exports.
#define PARASCAN_PLUGIN_ENTRY_NAME "parascan_plugin_entry"

extern "C" {

/// Returned by a plugin's entry point. The first two fields never move, so a
/// loader can read the ABI version of any plugin before trusting the rest.
struct parascan_plugin_descriptor {
  std::uint32_t abi_version;
  std::uint32_t descriptor_size;
  const char* plugin_name;
  const char* plugin_version;
  int kokkos_version;     // KOKKOS_VERSION the plugin was compiled against
  const char* backends;   // comma-separated Kokkos backends compiled in
  const char* compiler;   // compiler id and version
  int cell_count;
  const parascan::CellFactory* const* cells;
};

typedef const parascan_plugin_descriptor* (*parascan_plugin_entry_function)();
}

namespace parascan {

/// Returns the backends of the Kokkos that the including translation unit is compiled against.
inline const char* compiled_backends() {
  return ""
#ifdef KOKKOS_ENABLE_SERIAL
         "serial,"
#endif
#ifdef KOKKOS_ENABLE_OPENMP
         "openmp,"
#endif
#ifdef KOKKOS_ENABLE_THREADS
         "threads,"
#endif
#ifdef KOKKOS_ENABLE_CUDA
         "cuda,"
#endif
      ;
}

#define PARASCAN_STRINGIFY_DETAIL(x) #x
#define PARASCAN_STRINGIFY(x) PARASCAN_STRINGIFY_DETAIL(x)

#if defined(__clang__)
#define PARASCAN_COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define PARASCAN_COMPILER "gcc " __VERSION__
#else
#define PARASCAN_COMPILER "unknown"
#endif

namespace detail {

template <template <class, class> class CellTemplate, class Space>
std::unique_ptr<Problem> create_problem_on(const ProblemConfig& config) {
  if (config.dtype == "float32") return std::make_unique<CellProblem<CellTemplate, float, Space>>(config);
  if (config.dtype == "float64") return std::make_unique<CellProblem<CellTemplate, double, Space>>(config);
  throw std::invalid_argument("invalid dtype '" + config.dtype + "'; allowed: float32, float64");
}

/// Detects the optional members of a cell: `parameter_docs` (a ParameterDoc
/// table), `documentation` (text) and `static void validate(const CellConfig&)`.
template <class Cell, class = void>
struct HasParameterDocs : std::false_type {};
template <class Cell>
struct HasParameterDocs<Cell, std::void_t<decltype(Cell::parameter_docs[0].name)>> : std::true_type {};

template <class Cell, class = void>
struct HasDocumentation : std::false_type {};
template <class Cell>
struct HasDocumentation<Cell, std::void_t<decltype(std::string(Cell::documentation))>> : std::true_type {};

template <class Cell, class = void>
struct HasValidate : std::false_type {};
template <class Cell>
struct HasValidate<Cell, std::void_t<decltype(Cell::validate(std::declval<const CellConfig&>()))>> : std::true_type {};

/// Splits a comma-separated list of names.
inline std::vector<std::string> split_names(const char* list) {
  std::vector<std::string> names;
  std::string current;
  for (const char* c = list; *c != '\0'; ++c) {
    if (*c == ',') {
      names.push_back(current);
      current.clear();
    } else {
      current += *c;
    }
  }
  if (!current.empty()) names.push_back(current);
  return names;
}

/// The factory a plugin exports for each of its cell templates.
template <template <class, class> class CellTemplate>
class CellFactoryFor final : public CellFactory {
  using HostCell = CellTemplate<double, Kokkos::HostSpace>;

 public:
  std::string name() const override { return HostCell::name; }
  std::string description() const override { return HostCell::description; }
  JacobianStructure structure() const override { return HostCell::structure; }

  std::vector<std::string> parameter_names() const override {
    std::vector<std::string> names;
    for (const ParameterInfo& info : parameter_info()) names.push_back(info.name);
    return names;
  }

  std::vector<ParameterInfo> parameter_info() const override {
    std::vector<ParameterInfo> infos;
    if constexpr (HasParameterDocs<HostCell>::value) {
      for (const ParameterDoc& doc : HostCell::parameter_docs)
        infos.push_back({doc.name, true, doc.default_value, doc.meaning});
    } else {
      for (const std::string& name : split_names(HostCell::parameter_names)) infos.push_back({name, false, 0, ""});
    }
    return infos;
  }

  int block_size() const override { return CellBlockSize<HostCell>::value; }

  bool has_vjp() const override { return HasVjp<HostCell, double>::value; }

  std::string documentation() const override {
    if constexpr (HasDocumentation<HostCell>::value) return HostCell::documentation;
    return "";
  }

  void validate(const CellConfig& config) const override {
    if constexpr (HasValidate<HostCell>::value) HostCell::validate(config);
    check_autodiff_state<HostCell, double>(config.state_dim);
  }

  std::unique_ptr<Problem> create(const ProblemConfig& config) const override {
    validate(config.cell);
#ifdef KOKKOS_ENABLE_SERIAL
    if (config.backend == "serial") return create_problem_on<CellTemplate, Kokkos::Serial>(config);
#endif
#ifdef KOKKOS_ENABLE_OPENMP
    if (config.backend == "openmp") return create_problem_on<CellTemplate, Kokkos::OpenMP>(config);
#endif
#ifdef KOKKOS_ENABLE_CUDA
    if (config.backend == "cuda") return create_problem_on<CellTemplate, Kokkos::Cuda>(config);
#endif
    throw std::invalid_argument("backend '" + config.backend + "' is not built into plugin cell '" + name() +
                                "'; built: " + compiled_backends());
  }
};

}  // namespace detail
}  // namespace parascan

#if defined(_WIN32)
#define PARASCAN_EXPORT __declspec(dllexport)
#else
#define PARASCAN_EXPORT __attribute__((visibility("default")))
#endif

/// Defines the entry point of a plugin that provides the given cell templates.
#define PARASCAN_DEFINE_PLUGIN(PLUGIN_NAME, PLUGIN_VERSION, ...)                                              \
  extern "C" PARASCAN_EXPORT const parascan_plugin_descriptor* parascan_plugin_entry() {                       \
    static const parascan::detail::PluginCells<__VA_ARGS__> cells;                                             \
    static const parascan_plugin_descriptor descriptor = {                                                     \
        PARASCAN_PLUGIN_ABI_VERSION, sizeof(parascan_plugin_descriptor), PLUGIN_NAME, PLUGIN_VERSION,          \
        KOKKOS_VERSION, parascan::compiled_backends(), PARASCAN_COMPILER, cells.count, cells.pointers};       \
    return &descriptor;                                                                                        \
  }

namespace parascan {
namespace detail {

/// Owns one factory per cell template, for the lifetime of the loaded library.
template <template <class, class> class... CellTemplates>
struct PluginCells {
  static constexpr int count = sizeof...(CellTemplates);
  std::unique_ptr<CellFactory> owners[count] = {std::make_unique<CellFactoryFor<CellTemplates>>()...};
  const CellFactory* pointers[count] = {};

  PluginCells() {
    for (int i = 0; i < count; ++i) pointers[i] = owners[i].get();
  }
};

}  // namespace detail
}  // namespace parascan
