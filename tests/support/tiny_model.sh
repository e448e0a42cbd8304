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

# tiny_signal_test_toml DATA_DIR TIMEOUT_S: the whole configuration of the signal/fault tests: endless epochs,
# a checkpoint every 20 steps, no sample grids, 1 thread, the watchdog at TIMEOUT_S.
tiny_signal_test_toml() {
  tiny_model_toml "$1"
  cat <<TOML
[train]
batch_size = 16
epochs = 1000
log_every = 5
[output]
checkpoint_every_steps = 20
sample_every_epochs = 1000
[runtime]
threads = 1
[comm]
timeout_s = $2
TOML
}
