# Locate ROOT for rooml.
#
# Order of preference:
#   1. ROOT_DIR / CMAKE_PREFIX_PATH given by the user, or a ROOT that the
#      Python interpreter imports and whose CMake config is sane (LCG view,
#      conda, a source build): plain find_package(ROOT).
#   2. The `root` pip wheel.  Its CMake files point at a non-existent
#      `<prefix>/mock_site_packages/ROOT/...`; we write a repaired copy of them
#      into a shim folder of the build tree (links include/lib/bin/etc to the
#      wheel) and point ROOT_DIR at it.  Nothing outside the build tree is touched.
#
# Defines ROOML_ROOT_LIBDIR (directory holding ROOT's libraries).

function(_rooml_wheel_root_dir out)
  execute_process(
    COMMAND "${Python_EXECUTABLE}" -c
      "import importlib.util as u, os; s = u.find_spec('ROOT'); print(os.path.realpath(list(s.submodule_search_locations)[0]) if s else '')"
    OUTPUT_VARIABLE _dir OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  set(${out} "${_dir}" PARENT_SCOPE)
endfunction()

function(_rooml_make_wheel_shim wheel_dir out_cmake_dir)
  get_filename_component(_site "${wheel_dir}" DIRECTORY)
  set(_shim "${CMAKE_BINARY_DIR}/root-wheel-shim")
  file(MAKE_DIRECTORY "${_shim}/cmake")
  foreach(_sub include lib bin etc)
    if(NOT EXISTS "${_shim}/${_sub}")
      file(CREATE_LINK "${wheel_dir}/${_sub}" "${_shim}/${_sub}" SYMBOLIC)
    endif()
  endforeach()
  file(GLOB_RECURSE _cfgs RELATIVE "${wheel_dir}/cmake" "${wheel_dir}/cmake/*")
  foreach(_f IN LISTS _cfgs)
    file(READ "${wheel_dir}/cmake/${_f}" _text)
    string(REPLACE "\${_IMPORT_PREFIX}/mock_site_packages/" "${_site}/" _text "${_text}")
    get_filename_component(_d "${_shim}/cmake/${_f}" DIRECTORY)
    file(MAKE_DIRECTORY "${_d}")
    file(WRITE "${_shim}/cmake/${_f}" "${_text}")
  endforeach()
  set(${out_cmake_dir} "${_shim}/cmake" PARENT_SCOPE)
endfunction()

if(NOT ROOT_DIR AND NOT DEFINED ENV{ROOTSYS})
  _rooml_wheel_root_dir(_wheel)
  if(_wheel AND EXISTS "${_wheel}/cmake/ROOTConfig-targets.cmake")
    file(STRINGS "${_wheel}/cmake/ROOTConfig-targets.cmake" _mock LIMIT_COUNT 1 REGEX "mock_site_packages")
    if(_mock)
      message(STATUS "rooml: ROOT pip wheel at ${_wheel}; using a repaired CMake config in the build tree")
      _rooml_make_wheel_shim("${_wheel}" _shim_cmake)
      set(ROOT_DIR "${_shim_cmake}" CACHE PATH "ROOT CMake config directory" FORCE)
    else()
      set(ROOT_DIR "${_wheel}/cmake" CACHE PATH "ROOT CMake config directory")
    endif()
  endif()
endif()

find_package(ROOT 6.30 CONFIG REQUIRED COMPONENTS RooFitCore RooFit)
get_target_property(_core_loc ROOT::Core LOCATION)
get_filename_component(ROOML_ROOT_LIBDIR "${_core_loc}" DIRECTORY)
message(STATUS "rooml: ROOT ${ROOT_VERSION}, libraries in ${ROOML_ROOT_LIBDIR}")
