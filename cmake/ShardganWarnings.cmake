# Warnings as an INTERFACE target that every shardgan target links privately. Third-party headers come in as
# SYSTEM includes, so SHARDGAN_WERROR turns warnings in our own code into errors (the wheel legs set it).
add_library(shardgan_warnings INTERFACE)
target_compile_options(shardgan_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wno-unused-parameter>
  $<$<CXX_COMPILER_ID:GNU>:-Wshadow=local>
  # GCC 12 in C++20 mode (constexpr std::string and std::vector) reports false -Wrestrict, -Wstringop-overflow and
  # -Warray-bounds inside libstdc++ wherever string concatenation or vector growth is inlined at -O3 (GCC bugs
  # 105329, 105651, 107852; quiet in GCC 13+): seen in 5 places of ours, none a real overflow. Off for GCC 12 only;
  # GCC 14 (the Debian 13 leg) still reports them.
  "$<$<AND:$<CXX_COMPILER_ID:GNU>,$<VERSION_LESS:$<CXX_COMPILER_VERSION>,13>>:-Wno-restrict;-Wno-stringop-overflow;-Wno-array-bounds>")
if(SHARDGAN_WERROR)
  target_compile_options(shardgan_warnings INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-Werror>)
endif()
