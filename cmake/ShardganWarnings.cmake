# Warnings as an INTERFACE target that every shardgan target links privately. Third-party headers come in as
# SYSTEM includes, so SHARDGAN_WERROR turns warnings in our own code into errors (the wheel legs set it).
add_library(shardgan_warnings INTERFACE)
target_compile_options(shardgan_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wno-unused-parameter>
  $<$<CXX_COMPILER_ID:GNU>:-Wshadow=local>
  # GCC 12 in C++20 mode (constexpr std::string) reports a false -Wrestrict inside libstdc++ wherever
  # operator+(const char*, std::string&&) is inlined at -O3 (GCC bug 105329, fixed in GCC 13): not our code's.
  $<$<AND:$<CXX_COMPILER_ID:GNU>,$<VERSION_LESS:$<CXX_COMPILER_VERSION>,13>>:-Wno-restrict>)
if(SHARDGAN_WERROR)
  target_compile_options(shardgan_warnings INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-Werror>)
endif()
