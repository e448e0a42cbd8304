# Test helpers. GoogleTest from Debian's libgtest-dev.
find_package(GTest REQUIRED)
include(GoogleTest)

# shardgan_add_test(NAME SOURCES... [LIBS ...] [LABEL label])
#   one gtest binary, its tests discovered into CTest with the label (default "unit").
function(shardgan_add_test name)
  cmake_parse_arguments(arg "" "LABEL" "SOURCES;LIBS" ${ARGN})
  if(NOT arg_LABEL)
    set(arg_LABEL unit)
  endif()
  add_executable(${name} ${arg_SOURCES})
  target_link_libraries(${name} PRIVATE ${arg_LIBS} shardgan_test_support GTest::gtest GTest::gtest_main shardgan_warnings)
  gtest_discover_tests(${name}
    PROPERTIES LABELS ${arg_LABEL}
    DISCOVERY_TIMEOUT 60)
endfunction()

# The mpirun flags of the MPI tests: the one mpirun policy (launch/mpi-flags.sh, also used by the launchers and the
# benchmarks), with --oversubscribe (the 3-rank tests share 2 cores): --bind-to none, --oversubscribe, and
# --allow-run-as-root when configured as root (Open MPI refuses root otherwise). Read here at configure time, one
# flag a line; editing the script re-runs the configuration.
set(_shardgan_mpi_flags_sh ${CMAKE_CURRENT_LIST_DIR}/../launch/mpi-flags.sh)
execute_process(COMMAND bash ${_shardgan_mpi_flags_sh} --oversubscribe
  OUTPUT_VARIABLE _shardgan_mpi_flags ERROR_VARIABLE _shardgan_mpi_flags_err RESULT_VARIABLE _shardgan_mpi_flags_rc
  OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT _shardgan_mpi_flags_rc EQUAL 0 OR _shardgan_mpi_flags STREQUAL "")
  message(FATAL_ERROR
    "launch/mpi-flags.sh --oversubscribe failed (${_shardgan_mpi_flags_rc}): ${_shardgan_mpi_flags_err}")
endif()
string(REPLACE "\n" ";" SHARDGAN_MPIEXEC_FLAGS "${_shardgan_mpi_flags}")
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_shardgan_mpi_flags_sh})

# shardgan_add_mpi_test(NAME SOURCES... [LIBS ...] [RANKS n...] [TIMEOUT s])
#   one gtest binary (shared MPI main: tests/support/mpi_main.cpp) run by CTest once per world size under
#   ${MPIEXEC_EXECUTABLE} -np N; labelled "mpi".
function(shardgan_add_mpi_test name)
  cmake_parse_arguments(arg "" "TIMEOUT" "SOURCES;LIBS;RANKS" ${ARGN})
  if(NOT arg_RANKS)
    set(arg_RANKS ${SHARDGAN_MPI_TEST_RANKS})
  endif()
  if(NOT arg_TIMEOUT)
    set(arg_TIMEOUT 120)
  endif()
  add_executable(${name} ${arg_SOURCES})
  target_link_libraries(${name} PRIVATE ${arg_LIBS} shardgan_mpi_test_main shardgan_test_support GTest::gtest shardgan_warnings)
  foreach(n IN LISTS arg_RANKS)
    add_test(NAME ${name}.np${n}
      COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${n} ${SHARDGAN_MPIEXEC_FLAGS} ${MPIEXEC_PREFLAGS}
              $<TARGET_FILE:${name}> ${MPIEXEC_POSTFLAGS})
    set_tests_properties(${name}.np${n} PROPERTIES LABELS "mpi" TIMEOUT ${arg_TIMEOUT} PROCESSORS ${n})
  endforeach()
endfunction()
