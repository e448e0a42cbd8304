# Every third-party dependency, found once, exposed as an imported target.
find_package(Threads REQUIRED)
find_package(MPI REQUIRED COMPONENTS CXX)
find_package(HDF5 REQUIRED COMPONENTS C CXX)
find_package(Torch REQUIRED)
find_package(OpenCV REQUIRED COMPONENTS core imgproc imgcodecs)
find_package(CLI11 REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(ZLIB REQUIRED)
find_package(PNG REQUIRED)
find_package(OpenSSL REQUIRED COMPONENTS Crypto)
find_package(PkgConfig REQUIRED)
pkg_check_modules(LibArchive REQUIRED IMPORTED_TARGET libarchive)
pkg_check_modules(XXHash REQUIRED IMPORTED_TARGET libxxhash)
pkg_check_modules(TurboJPEG REQUIRED IMPORTED_TARGET libturbojpeg)

# HDF5: FindHDF5 gives variables; wrap them in one imported target.
add_library(shardgan_hdf5 INTERFACE)
target_include_directories(shardgan_hdf5 SYSTEM INTERFACE ${HDF5_INCLUDE_DIRS})
target_link_libraries(shardgan_hdf5 INTERFACE ${HDF5_CXX_LIBRARIES} ${HDF5_LIBRARIES})
target_compile_definitions(shardgan_hdf5 INTERFACE ${HDF5_DEFINITIONS})

# NCCL + CUDA runtime: optional; when found, src/comm/nccl_communicator.cpp is compiled.
set(SHARDGAN_HAVE_NCCL 0)
if(SHARDGAN_WITH_NCCL)
  if(NOT DEFINED CUDAToolkit_ROOT AND EXISTS /usr/local/cuda)
    set(CUDAToolkit_ROOT /usr/local/cuda)
  endif()
  find_package(CUDAToolkit QUIET)
  find_path(NCCL_INCLUDE_DIR nccl.h
    HINTS ${NCCL_ROOT} ENV NCCL_ROOT ${CUDAToolkit_INCLUDE_DIRS} PATH_SUFFIXES include)
  find_library(NCCL_LIBRARY NAMES nccl libnccl.so.2
    HINTS ${NCCL_ROOT} ENV NCCL_ROOT ${CUDAToolkit_LIBRARY_DIR} PATH_SUFFIXES lib lib64)
  if(CUDAToolkit_FOUND AND NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
    add_library(shardgan_nccl UNKNOWN IMPORTED)
    set_target_properties(shardgan_nccl PROPERTIES
      IMPORTED_LOCATION ${NCCL_LIBRARY}
      INTERFACE_INCLUDE_DIRECTORIES ${NCCL_INCLUDE_DIR})
    target_link_libraries(shardgan_nccl INTERFACE CUDA::cudart)
    set(SHARDGAN_HAVE_NCCL 1)
    message(STATUS "shardgan: NCCL communicator ON (${NCCL_LIBRARY}, CUDA ${CUDAToolkit_VERSION})")
  else()
    message(STATUS "shardgan: NCCL communicator OFF (CUDA or NCCL not found)")
  endif()
endif()
