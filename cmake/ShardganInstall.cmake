# `cmake --install BUILD --prefix PREFIX`: a relocatable, module-ready prefix (docs/cluster.md, "Installing for
# users"; tests/integration/install_test.sh checks it, moved to another path):
#   PREFIX/bin/                            shardgan-pack, shardgan-train, shardgan-sample, shardgan-eval
#   PREFIX/share/shardgan/                 configs/, launch/, cluster/ (as in the repository); launch/installed.sh tells
#                                          the scripts (launch/lib.sh, find_tool) where the tools are: ../../bin
#   PREFIX/share/modulefiles/shardgan/     VERSION.lua, the Lmod module (cluster/modules/shardgan.lua)
#   PREFIX/share/doc/shardgan/             README.md and docs/
# The tools link shardgan's own libraries statically, so nothing else of ours is needed at run time. Their RUNPATH is
# $ORIGIN/../lib (where a shared library of ours would go) plus every directory outside the system's and outside
# this project that they link a library from (a PyTorch wheel's torch/lib and nvidia/nccl/lib, /usr/local/cuda/lib,
# Debian's openmpi/lib ...: CMake's INSTALL_RPATH_USE_LINK_PATH): a wheel's LibTorch is found without
# LD_LIBRARY_PATH, and no installed file names the build or the source tree. Test programs are not installed.
# Included from the top-level CMakeLists.txt after the targets exist.
include(GNUInstallDirs)

set(_shardgan_tools shardgan-train shardgan-sample shardgan-eval)
if(TARGET shardgan-pack)
  list(APPEND _shardgan_tools shardgan-pack)
endif()
set(_shardgan_share ${CMAKE_INSTALL_DATADIR}/shardgan)

# $ORIGIN-relative paths, from the configured layout (relative GNUInstallDirs folders: the same under any --prefix).
file(RELATIVE_PATH _shardgan_bin_to_lib ${CMAKE_INSTALL_FULL_BINDIR} ${CMAKE_INSTALL_FULL_LIBDIR})
file(RELATIVE_PATH _shardgan_share_to_bin ${CMAKE_INSTALL_FULL_DATADIR}/shardgan ${CMAKE_INSTALL_FULL_BINDIR})
foreach(_dir BINDIR LIBDIR DATADIR DOCDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${_dir}}")
    message(WARNING "CMAKE_INSTALL_${_dir} is absolute (${CMAKE_INSTALL_${_dir}}): the installed shardgan cannot be "
                    "moved to another prefix")
  endif()
endforeach()

set_target_properties(${_shardgan_tools} PROPERTIES
  INSTALL_RPATH "\$ORIGIN/${_shardgan_bin_to_lib}"
  INSTALL_RPATH_USE_LINK_PATH TRUE)
install(TARGETS ${_shardgan_tools} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The launch and Slurm scripts and the ready configs, in the repository's layout (launch/lib.sh finds mpi-flags.sh,
# train.sbatch finds launch/lib.sh, relative to themselves), with their permissions.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/configs/ DESTINATION ${_shardgan_share}/configs)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/launch/ DESTINATION ${_shardgan_share}/launch USE_SOURCE_PERMISSIONS)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/cluster/ DESTINATION ${_shardgan_share}/cluster USE_SOURCE_PERMISSIONS
  PATTERN modules EXCLUDE)
# Only in an installed copy: where its tools are, relative to PREFIX/share/shardgan (launch/lib.sh sources it).
file(CONFIGURE OUTPUT ${PROJECT_BINARY_DIR}/generated/installed.sh CONTENT
"# shellcheck shell=bash disable=SC2034
# Written by cmake --install (cmake/ShardganInstall.cmake): the scripts beside it belong to an installed shardgan.
# Sourced by launch/lib.sh: the tools' folder, relative to PREFIX/share/shardgan.
shardgan_installed_bindir=@_shardgan_share_to_bin@
" @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/generated/installed.sh DESTINATION ${_shardgan_share}/launch)

# The Lmod module: PREFIX/share/modulefiles/shardgan/VERSION.lua (`module use PREFIX/share/modulefiles`).
install(FILES ${PROJECT_SOURCE_DIR}/cluster/modules/shardgan.lua
  DESTINATION ${CMAKE_INSTALL_DATADIR}/modulefiles/shardgan RENAME ${PROJECT_VERSION}.lua)

install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs)
