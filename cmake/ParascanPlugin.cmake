# parascan_add_plugin(NAME SOURCES...)
#
# Builds a cell plugin as a loadable module, lib<NAME>.so, against the shared
# parascan core (and through it the one shared Kokkos). Symbols are hidden
# except the plugin's entry point, so plugins loaded side by side cannot bind
# each other's template instantiations.
#
# In parascan's own build the library lands in PARASCAN_PLUGIN_OUTPUT_DIRECTORY
# (<build>/plugins). In a project that used find_package(parascan) it lands
# in that project's build folder unless the project sets the variable; point
# PARASCAN_PLUGIN_PATH at that folder to load it.
function(parascan_add_plugin name)
  if(NOT ARGN)
    message(FATAL_ERROR "parascan_add_plugin(${name}) needs at least one source file")
  endif()
  add_library(${name} MODULE ${ARGN})
  target_link_libraries(${name} PRIVATE parascan::core)
  target_compile_features(${name} PRIVATE cxx_std_17)
  set_target_properties(${name} PROPERTIES
    PREFIX "lib"
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  # A plugin built without a build type would run unoptimised and skew every
  # timing it takes part in, so such builds get Release flags.
  if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
    message(STATUS "parascan_add_plugin(${name}): no CMAKE_BUILD_TYPE set, compiling with -O3 -DNDEBUG")
    target_compile_options(${name} PRIVATE -O3)
    target_compile_definitions(${name} PRIVATE NDEBUG)
  endif()
  if(DEFINED PARASCAN_PLUGIN_OUTPUT_DIRECTORY)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${PARASCAN_PLUGIN_OUTPUT_DIRECTORY})
  endif()
endfunction()
