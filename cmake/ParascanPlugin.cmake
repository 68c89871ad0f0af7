# parascan_add_plugin(NAME SOURCES...)
#
# Builds a cell plugin as a loadable module, lib<NAME>.so in the plugin
# folder, against the shared parascan core (and through it the one shared
# Kokkos). Symbols are hidden except the plugin's entry point, so plugins
# loaded side by side cannot bind each other's template instantiations.
function(parascan_add_plugin name)
  add_library(${name} MODULE ${ARGN})
  target_link_libraries(${name} PRIVATE parascan::core)
  target_include_directories(${name} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/plugins)
  set_target_properties(${name} PROPERTIES
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    LIBRARY_OUTPUT_DIRECTORY ${PARASCAN_PLUGIN_OUTPUT_DIRECTORY})
endfunction()
