# Warnings as an INTERFACE target that every shardgan target links privately.
add_library(shardgan_warnings INTERFACE)
target_compile_options(shardgan_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow=local -Wno-unused-parameter>)
