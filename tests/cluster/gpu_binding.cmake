# GPU binding of the launch paths with fake GPUs (tests/cluster/gpu_binding_test.sh): no GPU and no binary is needed;
# a probe script stands in for shardgan-train and records, per rank, the rank and local rank, CUDA_VISIBLE_DEVICES,
# its arguments and NCCL_*/SHARDGAN_*; the test works out which GPU shardgan-train would drive there (local rank mod
# visible GPUs) and checks that every rank gets its own.
#   gpu_binding_local  launch/train-local.sh under mpirun with a fake `nvidia-smi -L` (2 and 4 GPUs): auto = one rank
#                      per GPU, NPROC > GPUs refused, CUDA_VISIBLE_DEVICES ("1,3", UUIDs, "-1", ""), SHARDGAN_GPUS,
#                      runtime.device = cpu. ~10 s.
#   gpu_binding_slurm  cluster/slurm/train.sbatch on a one-machine Slurm cluster with 2 fake GPUs as GRES
#                      (cluster/local-slurm/up.sh, LOCAL_SLURM_GPUS=2), so Slurm sets CUDA_VISIBLE_DEVICES per task:
#                      --gpus-per-node=2 and --gpus-per-task=1 with 2 tasks. ~10 s; skipped (77, reason printed)
#                      where the cluster cannot start.
# Included from tests/CMakeLists.txt.
add_test(NAME gpu_binding_local
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/gpu_binding_test.sh ${CMAKE_CURRENT_LIST_DIR}/../.. local)
set_tests_properties(gpu_binding_local PROPERTIES LABELS "integration" TIMEOUT 180 PROCESSORS 2)
if(MPIEXEC_EXECUTABLE)
  set_property(TEST gpu_binding_local PROPERTY ENVIRONMENT "SHARDGAN_MPIRUN=${MPIEXEC_EXECUTABLE}")
endif()
add_test(NAME gpu_binding_slurm
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/gpu_binding_test.sh ${CMAKE_CURRENT_LIST_DIR}/../.. slurm)
set_tests_properties(gpu_binding_slurm PROPERTIES
  LABELS "slurm;integration" TIMEOUT 180 PROCESSORS 2 SKIP_RETURN_CODE 77)
