#pragma once

namespace shardgan::train {

/// Exit code of a run stopped by SIGUSR1/SIGTERM after writing its checkpoint (EX_TEMPFAIL): batch scripts requeue
/// on it and the next run continues with --resume auto.
inline constexpr int kExitStoppedBySignal = 75;

/// Installs SIGUSR1, SIGTERM and SIGINT handlers. Until enter_training_loop, a signal ends the process at once with
/// exit code 75 (data checks, resume and the start-up collectives have nothing to checkpoint, and may be blocked).
/// In the loop the first signal is only recorded (Slurm's --signal=USR1@T warning, or a scheduler's SIGTERM before the
/// time limit): the trainer polls `stop_requested` once per step, all ranks agree, checkpoint and exit 75. Another
/// signal more than 3 s after the first ends the process at once (repeats within 3 s are the same request delivered
/// twice, as `scancel --full` and a forwarding launcher do). Install it first thing in main, before MPI starts.
void install_stop_handlers();
/// The training loop has started: from now on the first signal asks for a checkpoint.
void enter_training_loop();
/// The recorded signal number, 0 if none.
int stop_requested();

}  // namespace shardgan::train
