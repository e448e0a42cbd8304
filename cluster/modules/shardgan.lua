-- shardgan: data-parallel GAN training (LibTorch; MPI all-reduce on CPUs, NCCL on GPUs). An Lmod module file.
--
-- `cmake --install BUILD --prefix PREFIX` installs it as PREFIX/share/modulefiles/shardgan/VERSION.lua (the
-- project's version); users then run
--   module use PREFIX/share/modulefiles
--   module load shardgan
-- It finds PREFIX from its own location, so nothing needs editing and the prefix may be moved. Elsewhere (copied
-- into a site's module tree), set `prefix` below. docs/cluster.md, "Installing for users".
--
-- It sets:
--   PATH            PREFIX/bin first: shardgan-pack, shardgan-train, shardgan-sample, shardgan-eval
--   SHARDGAN_ROOT   PREFIX (cluster/slurm/train.sbatch finds launch/lib.sh through it, in PREFIX/share/shardgan)
--   SHARDGAN_SHARE  PREFIX/share/shardgan: configs/, launch/ (train-local.sh, train-hosts.sh, quickstart.sh) and
--                   cluster/slurm/ (train.sbatch, pack.sbatch); the scripts there use PREFIX/bin's tools

------------------------------------------------------------------------------------------------------------------
-- ADMIN: the install prefix, when this file is not at PREFIX/share/modulefiles/shardgan/VERSION.lua, e.g.
--   local prefix = "/opt/shardgan/0.1.0"
local prefix = nil
------------------------------------------------------------------------------------------------------------------

-- ADMIN: the modules shardgan was built against, named as this site names them. The tools need at run time the
-- same libraries as at build time:
--   openmpi  the MPI shardgan-train links (for Slurm: built with PMIx, `srun --mpi=list` lists pmix)
--   hdf5     HDF5's C library (serial)
--   cuda     GPU builds: the CUDA runtime, and NCCL when it is not a wheel's (cuda/nccl modules)
-- Leave a line commented where the library comes from the operating system (Debian's openmpi-bin, libhdf5-103-1,
-- libtorch2.x: CPU-only builds).
-- LibTorch from a PyTorch wheel (GPU builds): the tools' RUNPATH names the wheel's torch/lib and nvidia/nccl/lib
-- folders as they were at build time, so keep that virtual environment where it is (or name its module here, or
-- prepend those folders to LD_LIBRARY_PATH below).
local dependencies = {
  -- "openmpi",
  -- "hdf5",
  -- "cuda",
  -- "nccl",
}
for _, name in ipairs(dependencies) do
  depends_on(name)
end
-- prepend_path("LD_LIBRARY_PATH", "/path/to/venv/lib/python3.11/site-packages/torch/lib")

local version = myModuleVersion()
if prefix == nil then
  prefix = myFileName():match("^(.*)/share/modulefiles/[^/]+/[^/]+$")
end
if mode() == "load" and (prefix == nil or not isFile(pathJoin(prefix, "bin", "shardgan-train"))) then
  LmodError("shardgan: no bin/shardgan-train in the install prefix ", tostring(prefix), " found from this module ",
            "file's path ", myFileName(), ": set `local prefix` in it (the line marked ADMIN)")
end
prefix = prefix or "/nonexistent"
local share = pathJoin(prefix, "share", "shardgan")

whatis("Name: shardgan")
whatis("Version: " .. version)
whatis("Description: data-parallel GAN training (LibTorch, MPI, NCCL): shardgan-pack, -train, -sample, -eval")
help([[
shardgan ]] .. version .. [[ (]] .. prefix .. [[)

  shardgan-pack fashion-mnist --out data/fashion-mnist     pack a data set into checksummed HDF5 shards
  $SHARDGAN_SHARE/launch/train-local.sh 2 $SHARDGAN_SHARE/configs/fashion_mnist.toml --run-dir runs/fm
                                 train on this node (2 CPU ranks; `auto`: a rank per GPU)
  sbatch $SHARDGAN_SHARE/cluster/slurm/train.sbatch $SHARDGAN_SHARE/configs/fashion_mnist.toml
                                 train under Slurm (checkpoint + requeue at the time limit)
  shardgan-sample --checkpoint runs/fm --n 64 --out fm.png --score

Configs: $SHARDGAN_SHARE/configs. Documentation: ]] .. pathJoin(prefix, "share", "doc", "shardgan") .. [[
]])

prepend_path("PATH", pathJoin(prefix, "bin"))
setenv("SHARDGAN_ROOT", prefix)
setenv("SHARDGAN_SHARE", share)
