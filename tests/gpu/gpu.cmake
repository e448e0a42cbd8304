# The CUDA checks (tests/gpu/gpu_test.cpp, label gpu): models, NCCL collectives, GradSync on CUDA tensors over NCCL
# and over MPI staging, checkpoints between CUDA and CPU, shardgan-train on the GPU against the CPU. Run under mpirun
# with 1 rank (NCCL allows one rank per GPU) and 2 ranks (MPI staging, both ranks on one GPU). Without a GPU every
# test reports itself skipped. Needs only the trainer's libraries (no test fixtures, no packer).
add_executable(gpu_test ${CMAKE_CURRENT_LIST_DIR}/gpu_test.cpp)
target_link_libraries(gpu_test PRIVATE shardgan_train shardgan_test_basics shardgan_mpi_test_main GTest::gtest
  nlohmann_json::nlohmann_json shardgan_warnings)
target_compile_definitions(gpu_test PRIVATE SHARDGAN_TRAIN_BIN="$<TARGET_FILE:shardgan-train>")
add_dependencies(gpu_test shardgan-train)
if(SHARDGAN_USE_PCH)
  target_precompile_headers(gpu_test REUSE_FROM shardgan_parallel)
endif()
foreach(n 1 2)
  add_test(NAME gpu_test.np${n}
    COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${n} ${SHARDGAN_MPIEXEC_FLAGS} $<TARGET_FILE:gpu_test>)
  set_tests_properties(gpu_test.np${n} PROPERTIES LABELS "gpu;mpi" TIMEOUT 300 PROCESSORS ${n})
endforeach()
