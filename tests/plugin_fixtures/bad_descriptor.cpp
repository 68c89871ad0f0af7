// A plugin entry point whose descriptor is valid except for the one field
// that the PARASCAN_FIXTURE_CASE_* definition selects. The descriptor lists
// no cells, so a loader that accepted it would register nothing.
#include <parascan/plugin.hpp>

#include <string>

namespace {

// Backends that differ from this build's, whatever the build has.
const char* other_backends() {
  static const std::string backends = std::string(parascan::compiled_backends()) == "serial," ? "openmp," : "serial,";
  return backends.c_str();
}

}  // namespace

extern "C" PARASCAN_EXPORT const parascan_plugin_descriptor* parascan_plugin_entry() {
#ifdef PARASCAN_FIXTURE_CASE_NULL_DESCRIPTOR
  return nullptr;
#else
  static parascan_plugin_descriptor descriptor = {PARASCAN_PLUGIN_ABI_VERSION,
                                                  sizeof(parascan_plugin_descriptor),
                                                  "bad_descriptor",
                                                  "0.0.1",
                                                  KOKKOS_VERSION,
                                                  parascan::compiled_backends(),
                                                  PARASCAN_COMPILER,
                                                  0,
                                                  nullptr};
#if defined(PARASCAN_FIXTURE_CASE_WRONG_ABI)
  descriptor.abi_version = PARASCAN_PLUGIN_ABI_VERSION + 1;
#elif defined(PARASCAN_FIXTURE_CASE_WRONG_SIZE)
  descriptor.descriptor_size = sizeof(parascan_plugin_descriptor) + 8;
#elif defined(PARASCAN_FIXTURE_CASE_WRONG_KOKKOS)
  descriptor.kokkos_version = KOKKOS_VERSION + 100;  // the next minor version
#elif defined(PARASCAN_FIXTURE_CASE_WRONG_BACKENDS)
  descriptor.backends = other_backends();
#else
#error "define one PARASCAN_FIXTURE_CASE_* macro"
#endif
  return &descriptor;
#endif
}
