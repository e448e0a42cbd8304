# The one mpirun policy (launch/mpi-flags.sh) and the one signal forwarding (launch/lib.sh, run_forwarding_signals),
# and that every launch path uses them (tests/cluster/launch_test.sh): the MPI tests' flags configured here
# (SHARDGAN_MPIEXEC_FLAGS, passed as arguments), bench/common.sh, launch/lib.sh, launch/train-local.sh under a real
# mpirun with a fake trainer (exit codes, SIGTERM/SIGUSR2 -> SIGUSR1 -> 75, SIGINT aborts, the dry run), and
# cluster/slurm/train.sbatch with fake srun/scontrol (the repository found from a spooled copy, SIGTERM -> SIGUSR1 ->
# 75 -> requeue). No binary of ours and no Slurm daemon is needed. ~10 s. Included from tests/CMakeLists.txt.
add_test(NAME launch_policy
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/launch_test.sh ${CMAKE_CURRENT_LIST_DIR}/../.. ${SHARDGAN_MPIEXEC_FLAGS})
set_tests_properties(launch_policy PROPERTIES LABELS "mpi;integration" TIMEOUT 180 PROCESSORS 2)
if(MPIEXEC_EXECUTABLE)
  set_property(TEST launch_policy PROPERTY ENVIRONMENT "SHARDGAN_MPIRUN=${MPIEXEC_EXECUTABLE}")
endif()

# TensorBoard's default port (6006 = X display :6 to hwloc's GL component) does not hang mpirun or MPI_Init
# (tests/cluster/tensorboard_port_test.sh, in a network namespace of its own). Included from tests/CMakeLists.txt.
add_test(NAME tensorboard_port
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/tensorboard_port_test.sh ${CMAKE_CURRENT_LIST_DIR}/../..
          $<TARGET_FILE:shardgan-pack> $<TARGET_FILE:shardgan-train>)
set_tests_properties(tensorboard_port PROPERTIES LABELS "mpi;integration" TIMEOUT 300 PROCESSORS 2 SKIP_RETURN_CODE 77)
