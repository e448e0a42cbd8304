# shellcheck shell=bash
# Sourced by the shell tests: the tiny class-conditional DCGAN they all train (16x16 data, a few thousand
# parameters, milliseconds a step).
# tiny_model_toml DATA_DIR prints the [data] and [model] sections; each test appends its own [train], [output] ...
tiny_model_toml() {
  cat <<TOML
[data]
path = "$1"
[model]
z_dim = 16
g_width = 4
d_width = 8
conditional = true
TOML
}
