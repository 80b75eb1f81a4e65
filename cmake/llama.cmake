# llama.cmake - find llama.cpp: the pinned prebuilt in deps/llama, else a system install.
#
# Defines the imported targets pc::llama (llama + ggml), pc::ggml (ggml alone, for mkmodel) and
# pc::llama_common (the common library: chat templates, tool calls, schema grammars; C++, for
# src/engine's shim alone),
# and PC_LLAMA_VERSION, PC_LLAMA_BACKEND_DIR (where ggml's per-CPU backends live; "" lets ggml
# search its default places) and PC_LLAMA_VOCAB_DIR (tokenizer files for mkmodel).

if(EXISTS "${PC_LLAMA_DIR}/include/llama.h" AND EXISTS "${PC_LLAMA_DIR}/lib/libllama.so")
  set(_lib "${PC_LLAMA_DIR}/lib")
  add_library(pc::ggml INTERFACE IMPORTED)
  target_include_directories(pc::ggml INTERFACE "${PC_LLAMA_DIR}/include")
  target_link_libraries(pc::ggml INTERFACE "${_lib}/libggml-base.so" "${_lib}/libggml.so")
  add_library(pc::llama INTERFACE IMPORTED)
  target_link_libraries(pc::llama INTERFACE pc::ggml "${_lib}/libllama.so")
  # SYSTEM: the common headers are llama.cpp's, not ours to hold to -Werror.
  add_library(pc::llama_common INTERFACE IMPORTED)
  target_include_directories(pc::llama_common SYSTEM INTERFACE "${PC_LLAMA_DIR}/include/common")
  target_link_libraries(pc::llama_common INTERFACE pc::llama "${_lib}/libllama-common.so")
  set(PC_LLAMA_TEMPLATE_DIR "${PC_LLAMA_DIR}/templates")
  # The binaries find the pinned libraries where they are, without LD_LIBRARY_PATH.
  set(CMAKE_BUILD_RPATH "${_lib}")
  file(READ "${PC_LLAMA_DIR}/llama.cpp.info.json" _info)
  string(REGEX MATCH "\"tag\": *\"([^\"]+)\"" _m "${_info}")
  set(PC_LLAMA_VERSION "${CMAKE_MATCH_1}")
  set(PC_LLAMA_BACKEND_DIR "${_lib}")
  set(PC_LLAMA_VOCAB_DIR "${PC_LLAMA_DIR}/vocab")
  message(STATUS "llama.cpp: pinned ${PC_LLAMA_VERSION} from ${PC_LLAMA_DIR}")
else()
  find_package(llama CONFIG QUIET)
  if(llama_FOUND)
    add_library(pc::llama INTERFACE IMPORTED)
    target_link_libraries(pc::llama INTERFACE llama)
    add_library(pc::ggml INTERFACE IMPORTED)
    target_link_libraries(pc::ggml INTERFACE ggml::ggml ggml::ggml-base)
    set(PC_LLAMA_VERSION "${llama_VERSION}")
  else()
    find_package(PkgConfig REQUIRED)
    pkg_check_modules(LLAMA IMPORTED_TARGET llama)
    if(NOT LLAMA_FOUND)
      message(FATAL_ERROR "llama.cpp not found: run scripts/setup.sh (or `make deps`) to unpack "
                          "the pinned release into deps/llama, or install llama.cpp system-wide")
    endif()
    add_library(pc::llama INTERFACE IMPORTED)
    target_link_libraries(pc::llama INTERFACE PkgConfig::LLAMA ggml ggml-base)
    add_library(pc::ggml INTERFACE IMPORTED)
    target_link_libraries(pc::ggml INTERFACE PkgConfig::LLAMA ggml ggml-base)
    set(PC_LLAMA_VERSION "${LLAMA_VERSION}")
  endif()
  # The common library of a system install: libllama-common (or libcommon) and its headers.
  find_library(PC_LLAMA_COMMON_LIB NAMES llama-common common REQUIRED)
  find_path(PC_LLAMA_COMMON_INC chat.h PATH_SUFFIXES llama/common llama.cpp/common common REQUIRED)
  add_library(pc::llama_common INTERFACE IMPORTED)
  target_include_directories(pc::llama_common SYSTEM INTERFACE "${PC_LLAMA_COMMON_INC}")
  target_link_libraries(pc::llama_common INTERFACE pc::llama "${PC_LLAMA_COMMON_LIB}")
  set(PC_LLAMA_BACKEND_DIR "")
  set(PC_LLAMA_VOCAB_DIR "/usr/share/llama.cpp/vocab")
  set(PC_LLAMA_TEMPLATE_DIR "/usr/share/llama.cpp/templates")
  message(STATUS "llama.cpp: system ${PC_LLAMA_VERSION}")
endif()
