// GradSync against a raw MPI_Allreduce of the same bytes, and the time a training step waits on communication with
// and without overlap. Run under mpirun (bench/scaling_bench.sh runs it).
//   grad_sync_bench [iterations]
#include <mpi.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "comm/communicator.hpp"
#include "comm/mpi_session.hpp"
#include "model/discriminator.hpp"
#include "model/generator.hpp"
#include "parallel/grad_sync.hpp"

using namespace shardgan;
using Clock = std::chrono::steady_clock;

static double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

int main(int argc, char** argv) {
  comm::MpiSession session(&argc, &argv);
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 20;
  torch::set_num_threads(1);
  auto comm = comm::make_mpi_communicator(MPI_COMM_WORLD);
  const bool root = session.rank() == 0;

  // 1. The model's size: the seeds' G + D parameters (1.74 M floats), gradients from a trivial backward (no compute).
  model::Generator g(model::GeneratorOptions(32, 3));
  model::Discriminator d(model::DiscriminatorOptions(32, 3));
  std::vector<torch::Tensor> params = g->parameters();
  for (auto& p : d->parameters()) params.push_back(p);
  int64_t elements = 0;
  for (auto& p : params) elements += p.numel();
  std::vector<float> raw(static_cast<std::size_t>(elements), 1.0f);
  auto time_raw = [&] {
    MPI_Barrier(MPI_COMM_WORLD);
    const auto t = Clock::now();
    for (int i = 0; i < iterations; ++i)
      MPI_Allreduce(MPI_IN_PLACE, raw.data(), static_cast<int>(elements), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    return seconds_since(t) / iterations;
  };
  for (double bucket_mb : {25.0, 1.0}) {
    parallel::GradSync sync(*comm, params, bucket_mb, true);
    const torch::Tensor scale = torch::ones({});
    auto time_sync = [&] {
      MPI_Barrier(MPI_COMM_WORLD);
      double t_comm = 0;
      for (int i = 0; i < iterations; ++i) {
        torch::Tensor loss = torch::zeros({});
        for (auto& p : params) loss = loss + p.sum();
        sync.prepare();
        loss.backward();  // gradients of ones: the only work is copying into buckets + all-reduce
        const auto t = Clock::now();
        sync.finish();
        t_comm += seconds_since(t);
      }
      return t_comm / iterations;
    };
    time_sync();  // warm up
    time_raw();
    double raw_s = 0, sync_s = 0;
    for (int round = 0; round < 3; ++round) {
      raw_s += time_raw();
      MPI_Barrier(MPI_COMM_WORLD);
      const auto t = Clock::now();
      for (int i = 0; i < iterations; ++i) {
        torch::Tensor loss = torch::zeros({});
        for (auto& p : params) loss = loss + p.sum();
        sync.prepare();
        loss.backward();
        sync.finish();
      }
      sync_s += seconds_since(t) / iterations;
    }
    // The trivial backward itself (no sync) is timed on its own and subtracted.
    double backward_s = 0;
    {
      const auto t = Clock::now();
      for (int i = 0; i < iterations; ++i) {
        for (auto& p : params) p.mutable_grad() = torch::Tensor();
        torch::Tensor loss = torch::zeros({});
        for (auto& p : params) loss = loss + p.sum();
        loss.backward();
      }
      backward_s = seconds_since(t) / iterations;
    }
    raw_s /= 3;
    sync_s = sync_s / 3 - backward_s;
    const double bytes = 4.0 * static_cast<double>(elements);
    if (root)
      std::printf(
          "ranks %d, %lld floats (%.1f MiB), bucket %.0f MiB (%zu buckets): raw MPI_Allreduce %.3f ms "
          "(%.2f GB/s algorithm bandwidth), GradSync %.3f ms (%.2f GB/s), ratio %.2f\n",
          comm->size(), static_cast<long long>(elements), bytes / (1 << 20), bucket_mb, sync.num_buckets(), raw_s * 1e3,
          bytes / raw_s / 1e9, sync_s * 1e3, bytes / sync_s / 1e9, raw_s / sync_s);
  }

  // 2. Bus bandwidth over sizes, as nccl-tests reports it: algBw = bytes / time, busBw = algBw · 2(n−1)/n (the bytes a
  // ring all-reduce moves over each link, comparable across world sizes). One parameter of each size, its gradient
  // (r + 1 on rank r) through GradSync; the reduced values are checked against (n + 1) / 2.
  if (root)
    std::printf("%10s %12s %12s %12s %12s %8s\n", "bytes", "raw ms", "raw busBw", "GradSync ms", "GS busBw", "GS/raw");
  for (int64_t bytes = 4096; bytes <= (int64_t{64} << 20); bytes *= 4) {
    const int64_t n = bytes / 4;
    const int reps = std::max(9, static_cast<int>(std::min<int64_t>(201, (int64_t{256} << 20) / bytes)));
    std::vector<float> buffer(static_cast<std::size_t>(n), 1.0f);
    torch::Tensor w = torch::zeros({n}, torch::requires_grad());
    parallel::GradSync sync(*comm, {w}, 25.0, true);
    const float mine = static_cast<float>(session.rank() + 1);
    // Medians of interleaved repetitions: the 2-core machine is noisy at this scale.
    const auto median_of = [&](const auto& body) {
      std::vector<double> t;
      for (int i = 0; i < reps; ++i) {
        MPI_Barrier(MPI_COMM_WORLD);
        const auto start = Clock::now();
        body();
        t.push_back(seconds_since(start));
      }
      std::nth_element(t.begin(), t.begin() + reps / 2, t.end());
      return t[static_cast<std::size_t>(reps / 2)];
    };
    const auto raw_body = [&] {
      MPI_Allreduce(MPI_IN_PLACE, buffer.data(), static_cast<int>(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    };
    const auto backward_body = [&] {
      w.mutable_grad() = torch::Tensor();
      (w.sum() * mine).backward();
    };
    const auto sync_body = [&] {
      sync.prepare();
      (w.sum() * mine).backward();
      sync.finish();
    };
    raw_body(), backward_body(), sync_body();  // warm up
    const double raw_time = median_of(raw_body);
    // GradSync's cost: a synchronised backward minus a plain one (which lets autograd keep its own gradient).
    const double backward = median_of(backward_body);
    const double with_sync = median_of(sync_body);
    const double gs = std::max(1e-9, with_sync - backward);
    const float expected = (static_cast<float>(comm->size()) + 1) / 2;
    if (!torch::allclose(w.grad(), torch::full_like(w, expected)) || sync.copies() != 0) {
      std::fprintf(stderr, "grad_sync_bench: wrong average or a copy at %lld bytes\n", static_cast<long long>(bytes));
      return 1;
    }
    const double factor = 2.0 * (comm->size() - 1) / comm->size();
    if (root)
      std::printf("%10lld %12.3f %9.2f GB/s %12.3f %9.2f GB/s %8.2f\n", static_cast<long long>(bytes), raw_time * 1e3,
                  bytes / raw_time / 1e9 * factor, gs * 1e3, bytes / gs / 1e9 * factor, raw_time / gs);
  }

  // 3. A real training-like backward (the seeds' D on a batch of 64, then G): time blocked in finish().
  for (bool overlap : {false, true}) {
    parallel::GradSync sync_d(*comm, d->parameters(), 1.0, overlap);
    parallel::GradSync sync_g(*comm, g->parameters(), 1.0, overlap);
    const torch::Tensor z = torch::randn({64, 100});
    double step_s = 0;
    for (int i = 0; i < iterations + 2; ++i) {
      if (i == 2) {
        MPI_Barrier(MPI_COMM_WORLD);
        step_s = 0;
      }
      const auto t = Clock::now();
      const torch::Tensor fake = g->forward(z);
      sync_g.prepare();
      sync_d.prepare();
      d->forward(fake).mean().backward();
      sync_d.finish();
      sync_g.finish();
      step_s += seconds_since(t);
    }
    if (root)
      std::printf(
          "ranks %d, G+D forward/backward batch 64, 1 MiB buckets, overlap %s: %.1f ms per step, %.2f ms "
          "waiting for communication, %lld gradient copies\n",
          comm->size(), overlap ? "on " : "off", step_s / iterations * 1e3,
          (sync_d.wait_seconds() + sync_g.wait_seconds()) / (iterations + 2) * 1e3,
          static_cast<long long>(sync_d.copies() + sync_g.copies()));
  }
  return 0;
}
