# cairn_add_test(NAME name LABEL unit|integration|e2e SOURCES ... [LIBS ...])
#   Builds a GoogleTest binary and registers its tests with CTest under LABEL.
# cairn_add_script_test(NAME name LABEL label COMMAND ...)
#   Registers a script-driven test (integration/e2e shell tests).
include(GoogleTest)

function(cairn_add_test)
  cmake_parse_arguments(T "" "NAME;LABEL" "SOURCES;LIBS" ${ARGN})
  if(NOT T_LABEL MATCHES "^(unit|integration|e2e)$")
    message(FATAL_ERROR "cairn_add_test(${T_NAME}): LABEL must be unit, integration or e2e")
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} GTest::gmock GTest::gtest_main)
  set_target_properties(${T_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  gtest_discover_tests(${T_NAME}
    PROPERTIES LABELS ${T_LABEL}
    DISCOVERY_TIMEOUT 30)
endfunction()

function(cairn_add_script_test)
  cmake_parse_arguments(T "" "NAME;LABEL;TIMEOUT" "COMMAND" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 600)
  endif()
  add_test(NAME ${T_NAME} COMMAND ${T_COMMAND})
  set_tests_properties(${T_NAME} PROPERTIES LABELS ${T_LABEL} TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "CAIRN_BIN_DIR=${CMAKE_BINARY_DIR}/bin;CAIRN_SOURCE_DIR=${CMAKE_SOURCE_DIR};CAIRN_PLUGIN=${CMAKE_BINARY_DIR}/lib/cairn_mosquitto_plugin.so")
endfunction()
