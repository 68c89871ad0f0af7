# `cmake --install` layout, used by plugins built out of tree:
#
#   <prefix>/bin/parascan
#   <prefix>/include/parascan/...            public headers
#   <prefix>/lib/libparascan_core.so
#   <prefix>/lib/parascan/plugins/lib*.so    built-in plugins (searched by parascan)
#   <prefix>/lib/cmake/parascan/             parascanConfig.cmake, targets, ParascanPlugin.cmake
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(PARASCAN_PLUGIN_INSTALL_DIR lib/parascan/plugins)
set(PARASCAN_CMAKE_INSTALL_DIR lib/cmake/parascan)

# Installed binaries find libparascan_core relative to themselves, and
# Kokkos (installed elsewhere) through the path they were linked with.
set_target_properties(parascan_core PROPERTIES EXPORT_NAME core INSTALL_RPATH "$ORIGIN"
                      INSTALL_RPATH_USE_LINK_PATH ON)
target_compile_features(parascan_core PUBLIC cxx_std_17)
set_target_properties(parascan PROPERTIES INSTALL_RPATH "$ORIGIN/../lib" INSTALL_RPATH_USE_LINK_PATH ON)
set_target_properties(${PARASCAN_BUILTIN_PLUGINS} PROPERTIES INSTALL_RPATH "$ORIGIN/../.."
                      INSTALL_RPATH_USE_LINK_PATH ON)

install(TARGETS parascan_core EXPORT parascanTargets
        LIBRARY DESTINATION lib
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY core/include/parascan DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS parascan RUNTIME DESTINATION bin)
install(TARGETS ${PARASCAN_BUILTIN_PLUGINS} LIBRARY DESTINATION ${PARASCAN_PLUGIN_INSTALL_DIR})

install(EXPORT parascanTargets NAMESPACE parascan:: DESTINATION ${PARASCAN_CMAKE_INSTALL_DIR})
configure_package_config_file(cmake/parascanConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/parascanConfig.cmake
                              INSTALL_DESTINATION ${PARASCAN_CMAKE_INSTALL_DIR}
                              PATH_VARS CMAKE_INSTALL_INCLUDEDIR PARASCAN_PLUGIN_INSTALL_DIR)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/parascanConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/parascanConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/parascanConfigVersion.cmake
              cmake/ParascanPlugin.cmake
        DESTINATION ${PARASCAN_CMAKE_INSTALL_DIR})
