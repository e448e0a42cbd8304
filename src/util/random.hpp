#pragma once
// Seeds and named random streams. Every random draw in shardgan comes from a generator seeded here, so the streams
// cannot collide by accident and runs are reproducible on every platform and standard library.
#include <cstdint>

namespace shardgan::rng {

/// splitmix64's increment: draw j (from 0) of a generator seeded with s is splitmix64_output(s + (j + 1)·this).
inline constexpr uint64_t kSplitmix64Increment = 0x9e3779b97f4a7c15ull;

/// splitmix64's output function: the value drawn when the state has become `z`.
constexpr uint64_t splitmix64_output(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/// splitmix64: a tiny, fully specified PRNG (Steele, Lea, Flood 2014). Advances `state`, returns the next value.
constexpr uint64_t splitmix64(uint64_t& state) {
  return splitmix64_output(state += kSplitmix64Increment);
}

/// A well-mixed 64-bit seed from three values (a seed, an index such as the step, a tag).
constexpr uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c = 0) {
  uint64_t state = a;
  uint64_t h = splitmix64(state);
  state = h ^ b;
  h = splitmix64(state);
  state = h ^ c;
  return splitmix64(state);
}

/// One tag per consumer of random numbers (the ASCII of its name). Tags are above 2^32 or spell a word, so they
/// never equal a rank + 1 (the per-rank stream below).
enum class Stream : uint64_t {
  kEpochPermutation = 0x5a4d504c45ull,  ///< "ZMPLE": the data order of one epoch (DistributedSampler)
  kStepNoise = 0x4e4f495345ull,         ///< "NOISE": z, fake labels and flips of one step's global batch
  kAugment = 0x4155474d454e54ull,       ///< "AUGMENT": DiffAugment's per-sample draws of one step and role
  kSampleGrid = 0x53414d504c45ull,      ///< "SAMPLE": the fixed noise of the sample grids
  kEvaluation = 0x4556414cull,          ///< "EVAL": the real subset and the noise of the metrics
  kEmaBatchNorm = 0x454d41424eull,      ///< "EMABN": batches that re-estimate the EMA generator's statistics
  kHoldout = 0x484f4c444f5554ull,       ///< "HOLDOUT": the classifier's held-out split
  kPowerSgd = 0x504f574552534744ull,    ///< "POWERSGD": PowerSGD's first Q (index: 0 for G's gradients, 1 for D's)
};

/// The seed of stream `s` for run seed `seed` and position `index` (a step, an epoch; 0 for a one-off stream).
constexpr uint64_t stream_seed(uint64_t seed, Stream s, uint64_t index = 0) {
  return mix_seed(seed, index, static_cast<uint64_t>(s));
}

/// The seed of rank `rank`'s own draws at `step` (dropout masks and any other draw of LibTorch's global generator):
/// different on every rank and step, the same on a resume.
constexpr uint64_t rank_step_seed(uint64_t seed, int64_t step, int rank) {
  return mix_seed(seed, static_cast<uint64_t>(step), static_cast<uint64_t>(rank) + 1);
}

}  // namespace shardgan::rng
