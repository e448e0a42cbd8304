#pragma once

namespace shardgan::train {

/// Exit code of a run stopped by SIGUSR1/SIGTERM after writing its checkpoint (EX_TEMPFAIL): batch scripts requeue
/// on it and the next run continues with --resume auto.
inline constexpr int kExitStoppedBySignal = 75;

/// Installs SIGUSR1 and SIGTERM handlers that only record the signal (Slurm's --signal=USR1@T warning, or a
/// scheduler's SIGTERM before the time limit). The trainer polls `stop_requested` once per step and all ranks agree.
void install_stop_handlers();
/// The recorded signal number, 0 if none.
int stop_requested();

}  // namespace shardgan::train
