# The Slurm launch path for real (label slurm): tests/cluster/slurm_test.sh starts a one-machine Slurm cluster
# (cluster/local-slurm/up.sh: munged, slurmctld, slurmd under a temp folder) and runs cluster/slurm/pack.sbatch and
# cluster/slurm/train.sbatch on it: 2 ranks through srun --mpi=pmix; SIGUSR1 -> checkpoint -> exit 75 -> requeue ->
# resume; the time-limit warning (--signal=USR1@N). 35-70 s on 2 cores. Reported as skipped (exit 77) where
# the cluster cannot start (e.g. munged refuses to run).
add_test(NAME slurm_launch
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/slurm_test.sh
          $<TARGET_FILE:shardgan-train> $<TARGET_FILE:shardgan-pack> $<TARGET_FILE:shardgan-sample>
          ${CMAKE_CURRENT_LIST_DIR}/../..)
set_tests_properties(slurm_launch PROPERTIES
  LABELS "slurm;integration" TIMEOUT 420 PROCESSORS 2 SKIP_RETURN_CODE 77)

# The cluster helpers act only on what they made (folders ours alone, processes proven theirs) and the local Slurm
# daemons start only where nothing but the loopback is up.
add_test(NAME cluster_helpers COMMAND ${CMAKE_CURRENT_LIST_DIR}/helpers_test.sh ${CMAKE_CURRENT_LIST_DIR}/../..)
set_tests_properties(cluster_helpers PROPERTIES LABELS "slurm;multinode;integration" TIMEOUT 60 SKIP_RETURN_CODE 77)
