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

# Root may run Open MPI only when told so; more ranks than cores need --oversubscribe.
set(SHARDGAN_MPIEXEC_FLAGS --oversubscribe --bind-to none)
execute_process(COMMAND id -u OUTPUT_VARIABLE _shardgan_uid OUTPUT_STRIP_TRAILING_WHITESPACE)
if(_shardgan_uid STREQUAL "0")
  list(APPEND SHARDGAN_MPIEXEC_FLAGS --allow-run-as-root)
endif()

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
