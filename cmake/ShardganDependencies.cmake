# Every third-party dependency, found once, exposed as an imported target.
find_package(Threads REQUIRED)
if(NOT SHARDGAN_FUZZ)
  find_package(MPI REQUIRED COMPONENTS CXX)
endif()
# HDF5, its C API only (src/data/h5.hpp). SHARDGAN_HDF5_DIR: a prefix holding Debian's libhdf5-dev unpacked
# somewhere else than / (bench/gpu/run.sh), where FindHDF5's h5cc would answer with /usr paths.
set(SHARDGAN_HDF5_DIR "" CACHE PATH "Prefix of an HDF5 installation to use instead of FindHDF5's")
if(SHARDGAN_HDF5_DIR)
  find_path(HDF5_INCLUDE_DIRS hdf5.h PATHS ${SHARDGAN_HDF5_DIR}/include PATH_SUFFIXES hdf5/serial NO_DEFAULT_PATH
    REQUIRED)
  find_library(HDF5_LIBRARIES NAMES hdf5_serial hdf5
    PATHS ${SHARDGAN_HDF5_DIR}/lib ${SHARDGAN_HDF5_DIR}/lib/${CMAKE_LIBRARY_ARCHITECTURE}
    PATH_SUFFIXES hdf5/serial NO_DEFAULT_PATH REQUIRED)
  set(HDF5_DEFINITIONS "")
  message(STATUS "shardgan: HDF5 from ${SHARDGAN_HDF5_DIR}: ${HDF5_LIBRARIES}")
else()
  find_package(HDF5 REQUIRED COMPONENTS C)
endif()
if(NOT SHARDGAN_FUZZ)
  # TensorBoard's event files (src/report/tensorboard.cpp): protobuf for the events, Intel ISA-L for the records'
  # CRC-32C. The system's protobuf (the full library, not the lite one: Debian's LibTorch loads the full one and the
  # two must not meet in one process; the messages are generated for the lite runtime either way), found before
  # LibTorch: a PyTorch wheel carries protoc and protobuf headers of its own (3.13 in torch 2.11) that FindProtobuf
  # would find once <torch> is on the prefix path below, and they must not be mixed with the system's library. Found
  # first, protobuf::libprotobuf is the real library, and LibTorch's CMake files use it instead of a placeholder.
  find_package(Protobuf REQUIRED)
  get_filename_component(_shardgan_protoc "${Protobuf_PROTOC_EXECUTABLE}" REALPATH)
  message(STATUS "shardgan: protobuf ${Protobuf_VERSION}: ${Protobuf_LIBRARY}, ${_shardgan_protoc}")
  pkg_check_modules(ISAL REQUIRED IMPORTED_TARGET libisal)
  # A PyTorch wheel's CMake files (torch.utils.cmake_prefix_path = <torch>/share/cmake) find their libraries with
  # find_library(... PATHS <torch>/lib), which CMake searches after the system's folders: where Debian's libtorch-dev
  # is installed too, the wheel's headers would be linked with Debian's libtorch.so. So <torch> goes first on the
  # prefix path, and the libraries found must lie beside the headers.
  find_file(SHARDGAN_TORCH_CONFIG TorchConfig.cmake PATH_SUFFIXES Torch share/cmake/Torch NO_CACHE)
  if(SHARDGAN_TORCH_CONFIG)
    get_filename_component(_shardgan_torch_root "${SHARDGAN_TORCH_CONFIG}/../../../.." ABSOLUTE)
    if(EXISTS "${_shardgan_torch_root}/lib/libtorch.so")
      list(PREPEND CMAKE_PREFIX_PATH "${_shardgan_torch_root}")
    endif()
  endif()
  find_package(Torch REQUIRED)
  get_filename_component(_shardgan_torch_lib_dir "${TORCH_LIBRARY}" DIRECTORY)
  get_filename_component(_shardgan_torch_lib_dir "${_shardgan_torch_lib_dir}" REALPATH)
  get_filename_component(_shardgan_torch_prefix_lib "${TORCH_INSTALL_PREFIX}/lib" REALPATH)
  if(EXISTS "${_shardgan_torch_prefix_lib}/libtorch.so" AND
     NOT _shardgan_torch_lib_dir STREQUAL _shardgan_torch_prefix_lib)
    message(FATAL_ERROR "LibTorch's headers are from ${TORCH_INSTALL_PREFIX} but libtorch.so was found in "
      "${_shardgan_torch_lib_dir}: put ${TORCH_INSTALL_PREFIX} first on CMAKE_PREFIX_PATH")
  endif()
  message(STATUS "shardgan: LibTorch ${Torch_VERSION} from ${_shardgan_torch_lib_dir}")
  # The torch 2.11 wheel's libtorch.so exports its own, unversioned copy of 83 std::filesystem functions (from the
  # manylinux toolchain's static libstdc++ part). It comes before libstdc++ in an executable's load order, so every
  # call binds to it, and its remove_all(path, error_code&) jumps to a null pointer (found by the bare GPU rehearsal:
  # gpu_test crashed in TempDir's destructor). libstdc++ first in every binary's load order makes the system's
  # definitions win, for our code and LibTorch's alike; harmless with every other LibTorch.
  add_link_options("LINKER:--push-state,--no-as-needed,-lstdc++,--pop-state")
endif()
find_package(CLI11 REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(ZLIB REQUIRED)
find_package(PNG REQUIRED)
find_package(OpenSSL REQUIRED COMPONENTS Crypto)
find_package(PkgConfig REQUIRED)
pkg_check_modules(XXHash REQUIRED IMPORTED_TARGET libxxhash)
# OpenCV's core and imgproc draw losses.png (src/report/plot.cpp): every build with LibTorch needs them, the fuzz build
# does not. Found by header and library rather than find_package(OpenCV): Debian's OpenCVConfig.cmake (libopencv-dev)
# fails unless the libraries of all ~55 of its modules are installed, where these two need only libopencv-core-dev and
# libopencv-imgproc-dev. Kept apart from OpenCV_LIBS, so that the trainer links no codec when the packer is built.
if(NOT SHARDGAN_FUZZ)
  find_path(SHARDGAN_OPENCV_INCLUDE_DIR opencv2/imgproc.hpp PATH_SUFFIXES opencv4 REQUIRED)
  find_library(SHARDGAN_OPENCV_CORE_LIBRARY opencv_core REQUIRED)
  find_library(SHARDGAN_OPENCV_IMGPROC_LIBRARY opencv_imgproc REQUIRED)
  set(SHARDGAN_OPENCV_DRAW_INCLUDE_DIRS ${SHARDGAN_OPENCV_INCLUDE_DIR})
  set(SHARDGAN_OPENCV_DRAW_LIBS ${SHARDGAN_OPENCV_IMGPROC_LIBRARY} ${SHARDGAN_OPENCV_CORE_LIBRARY})
  message(STATUS "shardgan: OpenCV core + imgproc (losses.png): ${SHARDGAN_OPENCV_CORE_LIBRARY}")
endif()
if(SHARDGAN_BUILD_PACKER)  # the packer's codecs
  find_package(OpenCV REQUIRED COMPONENTS core imgproc imgcodecs)
  pkg_check_modules(LibArchive REQUIRED IMPORTED_TARGET libarchive)
  pkg_check_modules(TurboJPEG REQUIRED IMPORTED_TARGET libturbojpeg)
endif()

# HDF5: FindHDF5 gives variables; wrap them in one imported target.
add_library(shardgan_hdf5 INTERFACE)
target_include_directories(shardgan_hdf5 SYSTEM INTERFACE ${HDF5_INCLUDE_DIRS})
target_link_libraries(shardgan_hdf5 INTERFACE ${HDF5_LIBRARIES})
target_compile_definitions(shardgan_hdf5 INTERFACE ${HDF5_DEFINITIONS})

# NCCL + CUDA runtime: optional; when found, src/comm/nccl_communicator.cpp is compiled.
set(SHARDGAN_HAVE_NCCL 0)
if(SHARDGAN_WITH_NCCL)
  if(NOT DEFINED CUDAToolkit_ROOT AND EXISTS /usr/local/cuda)
    set(CUDAToolkit_ROOT /usr/local/cuda)
  endif()
  find_package(CUDAToolkit QUIET)
  # NCCL_ROOT (e.g. the nvidia-nccl wheel's folder, which has lib/libnccl.so.2 but no libnccl.so) is the only place
  # looked at when it is given, so the CUDA toolkit's own NCCL cannot stand in for it.
  if(DEFINED NCCL_ROOT OR DEFINED ENV{NCCL_ROOT})
    set(_shardgan_nccl_where PATHS ${NCCL_ROOT} $ENV{NCCL_ROOT} NO_DEFAULT_PATH)
  else()
    set(_shardgan_nccl_where HINTS ${CUDAToolkit_INCLUDE_DIRS} ${CUDAToolkit_LIBRARY_DIR})
  endif()
  find_path(NCCL_INCLUDE_DIR nccl.h ${_shardgan_nccl_where} PATH_SUFFIXES include)
  find_library(NCCL_LIBRARY NAMES nccl libnccl.so.2 NAMES_PER_DIR ${_shardgan_nccl_where} PATH_SUFFIXES lib lib64)
  if(CUDAToolkit_FOUND AND NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
    add_library(shardgan_nccl UNKNOWN IMPORTED)
    set_target_properties(shardgan_nccl PROPERTIES
      IMPORTED_LOCATION ${NCCL_LIBRARY}
      INTERFACE_INCLUDE_DIRECTORIES ${NCCL_INCLUDE_DIR})
    target_link_libraries(shardgan_nccl INTERFACE CUDA::cudart)
    set(SHARDGAN_HAVE_NCCL 1)
    message(STATUS "shardgan: NCCL communicator ON (${NCCL_LIBRARY}, CUDA ${CUDAToolkit_VERSION})")
  elseif(SHARDGAN_REQUIRE_NCCL)
    message(FATAL_ERROR "shardgan: NCCL communicator OFF (CUDA found: ${CUDAToolkit_FOUND}; nccl.h: "
      "${NCCL_INCLUDE_DIR}; libnccl: ${NCCL_LIBRARY}) but SHARDGAN_REQUIRE_NCCL is ON")
  else()
    message(STATUS "shardgan: NCCL communicator OFF (CUDA or NCCL not found)")
  endif()
endif()
