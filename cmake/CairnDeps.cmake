# CairnDeps.cmake: the third-party libraries, each behind one cairn_dep_*
# target that every CMakeLists links instead of the package's own target.
#
# A target with the property CAIRN_STATIC_DEPS set to ON (cairn-edge with
# -DCAIRN_EDGE_STATIC=ON, the default) links the static archives Debian ships
# (libprotobuf.a, libyaml-cpp.a, libpaho-mqtt3as.a, libssl.a, libcrypto.a,
# libz.a, libre2.a) instead of the shared libraries; every other target (services,
# tests) links the shared ones. The choice is made at link time from the
# executable's property ($<TARGET_PROPERTY:CAIRN_STATIC_DEPS> is evaluated
# for the target being linked), so the same static libraries of ours serve
# both. Why: docs/design/edge-footprint.md.
#
# spdlog and fmt are header-only everywhere (Debian ships no static
# libspdlog/libfmt, and a shared one would bring libstdc++.so back).

# The static archive NAME (e.g. libprotobuf.a) into VAR; fails when
# CAIRN_EDGE_STATIC is on and it is missing.
function(cairn_find_static var name package)
  find_library(${var} NAMES ${name} NO_CACHE)
  if(NOT ${var} AND CAIRN_EDGE_STATIC)
    message(FATAL_ERROR "CAIRN_EDGE_STATIC needs ${name} (Debian package ${package}); "
      "install it or configure with -DCAIRN_EDGE_STATIC=OFF")
  endif()
  set(${var} ${${var}} PARENT_SCOPE)
endfunction()

set(_static "$<BOOL:$<TARGET_PROPERTY:CAIRN_STATIC_DEPS>>")

# cairn_dep(NAME SHARED_TARGET STATIC_ITEMS...): INTERFACE target cairn_dep_NAME.
function(cairn_dep name shared)
  add_library(cairn_dep_${name} INTERFACE)
  if(CAIRN_EDGE_STATIC)
    list(JOIN ARGN "$<SEMICOLON>" items)
    target_link_libraries(cairn_dep_${name} INTERFACE "$<IF:${_static},${items},${shared}>")
  else()
    target_link_libraries(cairn_dep_${name} INTERFACE ${shared})
  endif()
endfunction()

if(CAIRN_EDGE_STATIC)
  cairn_find_static(CAIRN_LIBZ_A libz.a zlib1g-dev)
  cairn_find_static(CAIRN_LIBCRYPTO_A libcrypto.a libssl-dev)
  cairn_find_static(CAIRN_LIBSSL_A libssl.a libssl-dev)
  cairn_find_static(CAIRN_LIBPROTOBUF_A libprotobuf.a libprotobuf-dev)
  cairn_find_static(CAIRN_LIBYAMLCPP_A libyaml-cpp.a libyaml-cpp-dev)
  cairn_find_static(CAIRN_LIBPAHO_A libpaho-mqtt3as.a libpaho-mqtt-dev)
  cairn_find_static(CAIRN_LIBRE2_A libre2.a libre2-dev)
endif()

# Usage requirements (include dirs, definitions) come from the packages'
# targets in both cases; only what is linked changes.
cairn_dep(crypto OpenSSL::Crypto ${CAIRN_LIBCRYPTO_A} ${CAIRN_LIBZ_A} ${CMAKE_DL_LIBS} Threads::Threads)
cairn_dep(ssl OpenSSL::SSL ${CAIRN_LIBSSL_A})
target_link_libraries(cairn_dep_ssl INTERFACE cairn_dep_crypto)
cairn_dep(protobuf protobuf::libprotobuf ${CAIRN_LIBPROTOBUF_A} ${CAIRN_LIBZ_A} Threads::Threads)
cairn_dep(yaml_cpp yaml-cpp ${CAIRN_LIBYAMLCPP_A})
cairn_dep(re2 PkgConfig::RE2 ${CAIRN_LIBRE2_A} Threads::Threads)
cairn_dep(paho eclipse-paho-mqtt-c::paho-mqtt3as ${CAIRN_LIBPAHO_A} anl)
target_link_libraries(cairn_dep_paho INTERFACE cairn_dep_ssl)
foreach(t crypto ssl protobuf yaml_cpp paho re2)
  add_library(cairn::dep_${t} ALIAS cairn_dep_${t})
endforeach()
# Headers of the shared targets without linking them.
target_include_directories(cairn_dep_protobuf INTERFACE ${Protobuf_INCLUDE_DIRS})
target_include_directories(cairn_dep_crypto INTERFACE ${OPENSSL_INCLUDE_DIR})
get_target_property(_yaml_inc yaml-cpp INTERFACE_INCLUDE_DIRECTORIES)
if(_yaml_inc)
  target_include_directories(cairn_dep_yaml_cpp INTERFACE ${_yaml_inc})
endif()
target_include_directories(cairn_dep_re2 INTERFACE ${RE2_INCLUDE_DIRS})

add_library(cairn_dep_spdlog INTERFACE)
target_compile_definitions(cairn_dep_spdlog INTERFACE SPDLOG_FMT_EXTERNAL)
target_link_libraries(cairn_dep_spdlog INTERFACE fmt::fmt-header-only Threads::Threads)
add_library(cairn::dep_spdlog ALIAS cairn_dep_spdlog)
