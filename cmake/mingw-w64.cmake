# CMake toolchain file: cross-compile for 64-bit Windows with Debian's
# mingw-w64 (apt-get install gcc-mingw-w64-x86-64), e.g.
#
#   cmake -S . -B build-win/darner -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64.cmake \
#         -DCMAKE_PREFIX_PATH=$PWD/build-win/prefix
#
# scripts/windows/build-deps uses it for the dependencies (libuv, jansson)
# it cross-builds into build-win/prefix. Programs run under Wine (wine64).
#
#   MINGW_TRIPLET  default x86_64-w64-mingw32 (the compilers' prefix)
#   MINGW_THREADS  win32 (default) or posix: which of Debian's two gcc
#                  variants (gcc-mingw-w64-x86-64-win32 / -posix); posix
#                  links winpthreads (its DLL, unless linked statically)

set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_VERSION 10.0)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

if(NOT MINGW_TRIPLET)
  set(MINGW_TRIPLET x86_64-w64-mingw32)
endif()
if(NOT MINGW_THREADS)
  set(MINGW_THREADS win32)
endif()
# try_compile projects see the same choices
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES MINGW_TRIPLET MINGW_THREADS)

find_program(CMAKE_C_COMPILER NAMES ${MINGW_TRIPLET}-gcc-${MINGW_THREADS} ${MINGW_TRIPLET}-gcc REQUIRED)
find_program(CMAKE_CXX_COMPILER NAMES ${MINGW_TRIPLET}-g++-${MINGW_THREADS} ${MINGW_TRIPLET}-g++)
find_program(CMAKE_RC_COMPILER NAMES ${MINGW_TRIPLET}-windres)
find_program(CMAKE_AR NAMES ${MINGW_TRIPLET}-ar REQUIRED)
find_program(CMAKE_RANLIB NAMES ${MINGW_TRIPLET}-ranlib REQUIRED)
find_program(CMAKE_STRIP NAMES ${MINGW_TRIPLET}-strip)
find_program(CMAKE_OBJDUMP NAMES ${MINGW_TRIPLET}-objdump)

# Libraries and headers from the target's sysroot and the prefixes given in
# CMAKE_PREFIX_PATH / CMAKE_FIND_ROOT_PATH only; programs from the build host.
set(CMAKE_FIND_ROOT_PATH /usr/${MINGW_TRIPLET})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# CMAKE_PREFIX_PATH entries are absolute host paths: let find_* look there
# (BOTH would also search the host's /usr/include, which must never happen)
foreach(_p IN LISTS CMAKE_PREFIX_PATH)
  list(APPEND CMAKE_FIND_ROOT_PATH ${_p})
endforeach()

# pkg-config: the target's .pc files only (build-deps writes them into
# PREFIX/lib/pkgconfig), never the host's /usr/lib/x86_64-linux-gnu/pkgconfig.
set(_darner_pc_dirs "")
foreach(_p IN LISTS CMAKE_PREFIX_PATH)
  list(APPEND _darner_pc_dirs ${_p}/lib/pkgconfig ${_p}/share/pkgconfig)
endforeach()
if(_darner_pc_dirs)
  string(REPLACE ";" ":" _darner_pc_dirs "${_darner_pc_dirs}")
  set(ENV{PKG_CONFIG_LIBDIR} "${_darner_pc_dirs}")
elseif(NOT DEFINED ENV{PKG_CONFIG_LIBDIR})
  # no prefix given (or a try_compile, which sees none): an empty search
  # path rather than the host's
  set(ENV{PKG_CONFIG_LIBDIR} /nonexistent)
endif()
set(ENV{PKG_CONFIG_PATH} "")

# Programs built here run under Wine: ctest, try_run and
# add_custom_command(COMMAND <target>) go through it.
find_program(_darner_wine NAMES wine64 wine PATHS /usr/lib/wine)
if(_darner_wine)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${_darner_wine})
endif()

# Static libgcc so programs need no libgcc_s_seh-1.dll beside them.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static-libgcc")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-static-libgcc")
