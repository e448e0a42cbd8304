#include "train/cadence.hpp"

namespace shardgan::train {

Cadence::Cadence(const config::Config& cfg, int64_t steps_per_epoch, int64_t total_steps, bool evaluates)
    : steps_per_epoch_(steps_per_epoch),
      total_steps_(total_steps),
      log_every_(cfg.train.log_every),
      sample_every_epochs_(cfg.output.sample_every_epochs),
      sample_every_steps_(cfg.output.sample_every_steps),
      checkpoint_every_(cfg.output.checkpoint_every_steps),
      check_every_(cfg.comm.check_every),
      eval_every_epochs_(cfg.eval.every_epochs),
      evaluates_(evaluates) {}

Due Cadence::after(int64_t done, bool stop) const {
  const int64_t epoch = epoch_of(done);
  const bool last = done == total_steps_;
  Due d;
  d.epoch_end = done % steps_per_epoch_ == 0;
  d.log = done % log_every_ == 0 || last;
  d.sample = (d.epoch_end && (epoch + 1) % sample_every_epochs_ == 0) ||
             (sample_every_steps_ > 0 && done % sample_every_steps_ == 0) || last;
  d.checkpoint = done % checkpoint_every_ == 0 || last || stop;
  d.check = d.checkpoint || done % check_every_ == 0;
  d.eval = evaluates_ && ((d.epoch_end && (epoch + 1) % eval_every_epochs_ == 0) || last);
  return d;
}

}  // namespace shardgan::train
