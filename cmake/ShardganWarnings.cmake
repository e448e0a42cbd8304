# Warnings as an INTERFACE target that every shardgan target links privately. Third-party headers come in as
# SYSTEM includes, so SHARDGAN_WERROR turns warnings in our own code into errors (the CUDA LibTorch 2.6 leg sets it).
add_library(shardgan_warnings INTERFACE)
target_compile_options(shardgan_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wno-unused-parameter>
  $<$<CXX_COMPILER_ID:GNU>:-Wshadow=local>)
if(SHARDGAN_WERROR)
  target_compile_options(shardgan_warnings INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-Werror>)
endif()
