# Cross build for 64-bit ARM Linux (aarch64) with Debian's cross compiler:
#   apt-get install g++-aarch64-linux-gnu qemu-user; dpkg --add-architecture arm64; apt-get update;
#   apt-get install zlib1g-dev:arm64        (scripts/install-deps.sh does all this)
#   KD_NATIVE=OFF bash scripts/build.sh build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
# The binaries are static by default (-DKD_STATIC=OFF for dynamic ones): build-aarch64/kd runs on
# any aarch64 Linux whatever its glibc, and here under `qemu-aarch64 -cpu max` with no sysroot.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

# Target libraries: first the cross toolchain's own root (/usr/aarch64-linux-gnu: libc, libstdc++;
# libgomp lies beside the compiler), then the host's prefixes, for Debian multiarch packages of the
# target architecture such as zlib1g-dev:arm64 (/usr/lib/aarch64-linux-gnu/libz.a).
# CMAKE_LIBRARY_ARCHITECTURE makes find_library look in lib/aarch64-linux-gnu, never in the host's
# lib/x86_64-linux-gnu.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)  # build tools run on the host
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
# Headers and CMake packages: the header-only dependencies (Eigen, xsimd, doctest, nlohmann-json)
# and zlib.h are architecture-independent files in the host's /usr/include and /usr/share, which
# Debian's cross compiler also searches (after its own headers).
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

set(KD_STATIC ON CACHE BOOL "Link the kd program statically (one file to copy to another machine)")
if(KD_STATIC)
  # Every executable, kd_tests too, so that the test suite runs under qemu-aarch64 as it is.
  set(CMAKE_EXE_LINKER_FLAGS_INIT -static)
endif()
