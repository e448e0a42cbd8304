"""The PyTorch peer on a current PyTorch, CPU: the seeds' DCGAN trained the way a PyTorch user would today, timed in
several modes. 1 intra-op thread per process, batch 64 (per rank), img/s of steady-state steps only.

Usage: python bench/peers/dcgan_modern.py PEER_DIR [--modes M1,M2,...] [--iters 40] [--warmup 5] [--batch 64]
                                          [--bf16-compile-mode default|max-autotune-no-cudagraphs]
                                          [--dynamic auto|false]
PEER_DIR holds the shared peer (../shared/peers/dcgan_ddp.py); its make_g/make_d are imported, not copied.
Prints one line per mode:  peer mode=<m> torch=<version> img/s=<x>   (stdout; warm-up times go to stderr).

Modes (default: all, each in a fresh process so that no compiled code or cache state leaks between them):
  eager                                fp32, plain modules
  compile-default                      torch.compile(G), torch.compile(D), mode=None (inductor's default)
  compile-max-autotune-no-cudagraphs   the same with mode="max-autotune-no-cudagraphs" (autotuned GEMM/conv choices,
                                       the CPU's C++ GEMM template among them)
  bf16-eager                           the step under torch.autocast("cpu", torch.bfloat16), as bench/peer_bf16.py
  bf16-compile                         autocast bf16 + compiled modules in the compile mode chosen by
                                       --bf16-compile-mode; default "default": on the development machine (2-core
                                       AMD EPYC, torch 2.15, 12 steps, machine loaded) it was the faster compile mode
                                       in fp32 (102 vs 96 img/s) and tied in bf16 (144 vs 144), and max-autotune
                                       compiles longer
  ddp2                                 2 ranks (processes), gloo, DistributedDataParallel, fp32 eager: dcgan_ddp.py 2;
                                       img/s is the total over both ranks

What is compiled: the G and D modules (torch.compile(module, mode=..., backend="inductor")), as a PyTorch user
would; the losses, the backward passes (through AOTAutograd's compiled backward graphs) and Adam (torch.optim.Adam,
its default foreach implementation) run as usual around them. Warm-up steps run before the clock starts and include
compilation (the first step compiles G, D for its real/detached inputs and D again for the graph-connected
`fake`: the input's requires_grad is guarded); a recompilation during the timed steps is reported on stderr.
dynamic= is PyTorch's default (None) unless --dynamic false. Note: G and D are both nn.Sequential, so dynamo sees
one code object (nn.Sequential.forward) called with [64, 100] and [64, 3, 32, 32] inputs and, by its automatic
dynamic shapes, compiles D's kernels for symbolic sizes; --dynamic false keeps them static (TORCH_LOGS=recompiles
shows it).

Differences from the shared peer (../shared/peers/dcgan_ddp.py), all deliberate:
  - single-process modes use the plain nn.Sequential modules without DDP (dcgan_ddp.py 1 wraps them in a world-1
    DDP); ddp2 uses DDP exactly as dcgan_ddp.py does (gloo, seed 0 on every rank, barriers around the timed loop);
  - ddp2 picks a free TCP port instead of the fixed 29511 (MASTER_ADDR/MASTER_PORT from the environment still win);
  - warm-up is --warmup steps (default 5) instead of 3, so that compilation and any recompilation stay out of the
    timed steps; the same count is used for every mode;
  - the bf16 modes compute the losses on D's output cast to float32 (as bench/peer_bf16.py); in fp32 that cast is a
    no-op and the step is the shared peer's, op for op;
  - the output line's format (one per mode, with the torch version).
Everything else is the shared peer's: the networks, Adam(2e-4, betas=(0.5, 0.999)), BCEWithLogitsLoss, one fixed
"real" batch (torch.rand * 2 - 1, seed 0), fresh noise each step, D's update then G's, D's gradients not frozen in
the G step, zero_grad() with PyTorch's default.
"""
import argparse
import contextlib
import os
import socket
import subprocess
import sys
import time

MODES = ("eager", "compile-default", "compile-max-autotune-no-cudagraphs", "bf16-eager", "bf16-compile", "ddp2")
COMPILE_MODES = {"default": None, "max-autotune-no-cudagraphs": "max-autotune-no-cudagraphs"}


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("peer_dir", help="folder holding the shared peer dcgan_ddp.py")
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated, from: " + ", ".join(MODES))
    ap.add_argument("--iters", type=int, default=40, help="timed steps per mode")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first (compilation included)")
    ap.add_argument("--batch", type=int, default=64, help="batch per process")
    ap.add_argument("--bf16-compile-mode", default="default", choices=sorted(COMPILE_MODES))
    ap.add_argument("--dynamic", default="auto", choices=("auto", "false"),
                    help="torch.compile's dynamic= (auto: PyTorch's default, None; false: static shapes only)")
    a = ap.parse_args(argv)
    a.modes = [m for m in a.modes.split(",") if m]
    for m in a.modes:
        if m not in MODES:
            ap.error(f"unknown mode '{m}' (known: {', '.join(MODES)})")
    if a.iters < 1 or a.warmup < 1 or a.batch < 1:
        ap.error("--iters, --warmup and --batch must be positive")
    return a


def peer_models(peer_dir):
    """make_g, make_d of the shared peer (imported from PEER_DIR/dcgan_ddp.py)."""
    if peer_dir not in sys.path:
        sys.path.insert(0, peer_dir)
    from dcgan_ddp import make_d, make_g
    return make_g, make_d


def recompiles():
    """Frames dynamo has been asked to compile so far (cache misses; None where this torch has no such counter)."""
    try:
        from torch._dynamo.utils import counters
        return counters["frames"]["total"]
    except Exception:  # noqa: BLE001 - a private counter: only a diagnostic
        return None


def trainer(args, compile_mode=None, bf16=False, ddp=False):
    """The shared peer's training step on fresh models; returns step()."""
    import torch
    import torch.nn as nn

    make_g, make_d = peer_models(args.peer_dir)
    torch.manual_seed(0)
    G, D = make_g(), make_d()
    if ddp:
        G, D = nn.parallel.DistributedDataParallel(G), nn.parallel.DistributedDataParallel(D)
    og = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
    od = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
    if compile_mode is not False:
        dynamic = None if args.dynamic == "auto" else False
        G = torch.compile(G, mode=compile_mode, backend="inductor", dynamic=dynamic)
        D = torch.compile(D, mode=compile_mode, backend="inductor", dynamic=dynamic)
    bce = nn.BCEWithLogitsLoss()
    batch = args.batch
    real = torch.rand(batch, 3, 32, 32) * 2 - 1
    ones, zeros = torch.ones(batch, 1), torch.zeros(batch, 1)

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    def step():
        with autocast():
            fake = G(torch.randn(batch, 100))
            od.zero_grad()
            loss_d = bce(D(real).float(), ones) + bce(D(fake.detach()).float(), zeros)
        loss_d.backward()
        od.step()
        with autocast():
            og.zero_grad()
            loss_g = bce(D(fake).float(), ones)
        loss_g.backward()
        og.step()

    return step


def timed(step, args, barrier=None):
    """(warm-up seconds, img/s of this process over the timed steps)."""
    t0 = time.perf_counter()
    for _ in range(args.warmup):
        step()
    if barrier:
        barrier()
    t1 = time.perf_counter()
    for _ in range(args.iters):
        step()
    if barrier:
        barrier()
    t2 = time.perf_counter()
    return t1 - t0, args.iters * args.batch / (t2 - t1)


def report(mode, img_s, warmup_s, compiled_before=None, compiled_after=None):
    import torch
    print(f"peer mode={mode} torch={torch.__version__} img/s={img_s:.1f}", flush=True)
    note = ""
    if compiled_before is not None and compiled_after is not None and compiled_after != compiled_before:
        note = f"; RECOMPILED during the timed steps ({compiled_after - compiled_before} more frames)"
    print(f"peer mode={mode}: warm-up {warmup_s:.1f} s{note}", file=sys.stderr, flush=True)


def ddp_worker(rank, world, args, port):
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    step = trainer(args, compile_mode=False, ddp=True)
    warmup_s, img_s = timed(step, args, barrier=dist.barrier)
    if rank == 0:
        report("ddp2", world * img_s, warmup_s)
    dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_mode(mode, args):
    import torch

    torch.set_num_threads(1)
    if mode == "ddp2":
        import torch.multiprocessing as mp
        mp.spawn(ddp_worker, args=(2, args, free_port()), nprocs=2)
        return
    compile_mode = False
    if mode.startswith("compile-"):
        compile_mode = COMPILE_MODES[mode[len("compile-"):]]
    elif mode == "bf16-compile":
        compile_mode = COMPILE_MODES[args.bf16_compile_mode]
    step = trainer(args, compile_mode=compile_mode, bf16=mode.startswith("bf16-"))
    t0 = time.perf_counter()
    for _ in range(args.warmup):
        step()
    before = recompiles()
    t1 = time.perf_counter()
    for _ in range(args.iters):
        step()
    t2 = time.perf_counter()
    after = recompiles()
    report(mode, args.iters * args.batch / (t2 - t1), t1 - t0, before, after)


def main(argv):
    args = parse_args(argv)
    if len(args.modes) == 1:
        run_mode(args.modes[0], args)
        return 0
    failed = []
    for mode in args.modes:  # one fresh process per mode
        cmd = [sys.executable, os.path.abspath(__file__), args.peer_dir, "--modes", mode, "--iters", str(args.iters),
               "--warmup", str(args.warmup), "--batch", str(args.batch),
               "--bf16-compile-mode", args.bf16_compile_mode, "--dynamic", args.dynamic]
        if subprocess.call(cmd) != 0:
            failed.append(mode)
    if failed:
        print(f"dcgan_modern: failed modes: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
