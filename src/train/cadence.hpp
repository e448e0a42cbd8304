#pragma once
// What is due after a training step: a pure function of the step count and the run's cadences (train.log_every,
// output.*, eval.*, comm.check_every), so that it is tested without running anything.
#include <cstdint>

#include "config/config.hpp"

namespace shardgan::train {

/// What is due after step `done` (1-based: the number of steps done).
struct Due {
  bool epoch_end = false;   ///< the step ended an epoch
  bool log = false;         ///< a metrics.jsonl row and a progress line
  bool sample = false;      ///< a sample grid (with the loss plot and the report)
  bool check = false;       ///< the cross-rank parameter check
  bool eval = false;        ///< an evaluation (eval.classifier set)
  bool checkpoint = false;  ///< a checkpoint
  bool any() const { return log || sample || check || eval || checkpoint; }
  /// Whether the ranks' local BatchNorm statistics must be averaged first (they are read).
  bool reads_buffers() const { return sample || check || eval; }
};

class Cadence {
 public:
  /// `evaluates`: eval.classifier is set.
  Cadence(const config::Config& cfg, int64_t steps_per_epoch, int64_t total_steps, bool evaluates);
  /// After step `done`; `stop`: the ranks agreed to stop after it (a signal), which forces a checkpoint.
  Due after(int64_t done, bool stop) const;
  /// The 0-based epoch step `done` belonged to.
  int64_t epoch_of(int64_t done) const { return (done - 1) / steps_per_epoch_; }

 private:
  int64_t steps_per_epoch_, total_steps_;
  int64_t log_every_, sample_every_epochs_, sample_every_steps_, checkpoint_every_, check_every_, eval_every_epochs_;
  bool evaluates_;
};

}  // namespace shardgan::train
