"""A torch.utils.data.Dataset over a folder packed by shardgan-pack (docs/data-format.md), read with h5py.

    from torch_dataset import ShardDataset
    ds = ShardDataset("data/catdog")               # manifest.json + shard-*.h5
    image, label = ds[0]                           # float32 [C, H, W] in [-1, 1], int64 scalar tensor
    loader = torch.utils.data.DataLoader(ds, batch_size=64, shuffle=True, num_workers=2)

Pixels are /images (uint8 [N, H, W, C], RGB or grayscale) scaled as shardgan-train scales them (x * (1/127.5) - 1
in float32: the same values, bit for bit); labels are /labels (int64, index into ds.class_names).

It checks the manifest's format and version, the shard counts and each shard's /images dtype and shape, but not the
XXH3 checksums: run `shardgan-pack verify DATA_DIR` on data from a shared folder first.

h5py file handles must not cross a fork: every process (the main one and each DataLoader worker) opens the shards
it reads itself, on first use. The dataset remembers the process id that opened its handles and, in a new process,
drops the inherited ones unused and reopens; pickling (the "spawn"/"forkserver" start methods) carries no handles.

As a script: reads a packed folder through a DataLoader (num_workers=2 by default) and either trains the seeds'
DCGAN on it for --steps steps (../shared/peers/dcgan_ddp.py's make_g/make_d; for 1-channel data the first layer of
D and the last of G take/make 1 channel; 32x32 images only) or, with --iterate-only (or any other image size), just
reads --steps batches. Prints what it read.
Usage: python bench/torch_dataset.py DATA_DIR [--peer-dir DIR] [--steps 20] [--batch 64] [--workers 2]
                                              [--iterate-only]
"""
import argparse
import bisect
import json
import os
import sys
import time

import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

FORMAT = "shardgan-shards"
FORMAT_VERSIONS = (1,)  # the versions this reader knows (docs/data-format.md: refuse others)


class ShardDataset(Dataset):
    """Every image of a shardgan-pack folder, in shard order: index i is row i - start(s) of shard s."""

    def __init__(self, folder):
        self.folder = os.fspath(folder)
        with open(os.path.join(self.folder, "manifest.json")) as f:
            manifest = json.load(f)
        if manifest.get("format") != FORMAT:
            raise ValueError(f"{self.folder}: not a shardgan-pack folder (format {manifest.get('format')!r})")
        if manifest.get("format_version") not in FORMAT_VERSIONS:
            raise ValueError(f"{self.folder}: format_version {manifest.get('format_version')} is not supported "
                             f"(this reader knows {FORMAT_VERSIONS})")
        self.manifest = manifest
        self.image_shape = tuple(manifest["image_shape"])  # (H, W, C)
        self.class_names = list(manifest["class_names"])
        self.files = [os.path.join(self.folder, s["file"]) for s in manifest["shards"]]
        self.starts = [0]  # first global index of each shard, then the total
        for s in manifest["shards"]:
            self.starts.append(self.starts[-1] + int(s["count"]))
        if self.starts[-1] != manifest["total_count"]:
            raise ValueError(f"{self.folder}: shard counts add up to {self.starts[-1]}, "
                             f"not total_count {manifest['total_count']}")
        self._handles = {}  # shard index -> open h5py.File, in process self._pid
        self._pid = None

    def __len__(self):
        return self.starts[-1]

    def _shard(self, s):
        if self._pid != os.getpid():  # new process (a forked worker): never touch the parent's handles
            self._handles, self._pid = {}, os.getpid()
        f = self._handles.get(s)
        if f is None:
            f = self._handles[s] = h5py.File(self.files[s], "r")
            shape = f["images"].shape
            if f["images"].dtype != np.uint8 or tuple(shape[1:]) != self.image_shape \
                    or shape[0] != self.starts[s + 1] - self.starts[s]:
                raise ValueError(f"{self.files[s]}: /images is {f['images'].dtype} {shape}, the manifest says uint8 "
                                 f"[{self.starts[s + 1] - self.starts[s]}, {', '.join(map(str, self.image_shape))}]")
        return f

    def raw(self, index):
        """(uint8 [H, W, C] array, int label) of image `index` as stored."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        s = bisect.bisect_right(self.starts, index) - 1
        f = self._shard(s)
        row = index - self.starts[s]
        return f["images"][row], int(f["labels"][row])

    def __getitem__(self, index):
        image, label = self.raw(int(index))
        x = torch.from_numpy(image).permute(2, 0, 1).to(torch.float32).mul_(1.0 / 127.5).sub_(1.0)
        return x, torch.tensor(label, dtype=torch.int64)

    def close(self):
        if self._pid == os.getpid():
            for f in self._handles.values():
                f.close()
        self._handles = {}

    def __getstate__(self):  # pickled into spawned workers: without handles
        state = dict(self.__dict__)
        state["_handles"], state["_pid"] = {}, None
        return state


def seed_models(peer_dir, channels):
    """The seeds' G and D from the shared peer, with `channels` image channels."""
    sys.path.insert(0, peer_dir)
    from dcgan_ddp import make_d, make_g
    G, D = make_g(), make_d()
    if channels != 3:
        G[10] = torch.nn.ConvTranspose2d(64, channels, 4, 2, 1)
        D[0] = torch.nn.Conv2d(channels, 64, 4, 2, 1)
    return G, D


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description="Reads (and trains on) a shardgan-pack folder through a DataLoader.")
    ap.add_argument("data")
    ap.add_argument("--peer-dir", default=os.path.join(here, "..", "..", "shared", "peers"))
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--iterate-only", action="store_true")
    a = ap.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    ds = ShardDataset(a.data)
    if len(ds) == 0:
        ap.error(f"{a.data}: no images")
    h, w, c = ds.image_shape
    print(f"{a.data}: {len(ds)} images {h}x{w}x{c} in {len(ds.files)} shard(s), classes {ds.class_names}")
    train = not a.iterate_only and (h, w) == (32, 32)
    if not a.iterate_only and not train:
        print(f"the seeds' model is 32x32: {h}x{w} data is only iterated")
    loader = DataLoader(ds, batch_size=min(a.batch, len(ds)), shuffle=True, num_workers=a.workers, drop_last=True,
                        persistent_workers=a.workers > 0)
    if train:
        G, D = seed_models(a.peer_dir, c)
        og = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
        od = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
        bce = torch.nn.BCEWithLogitsLoss()
    seen, counts, lo, hi = 0, np.zeros(len(ds.class_names), np.int64), 1.0, -1.0
    t0 = time.perf_counter()
    step = 0
    while step < a.steps:
        for x, y in loader:
            seen += x.shape[0]
            counts += np.bincount(y.numpy(), minlength=len(counts))
            lo, hi = min(lo, x.min().item()), max(hi, x.max().item())
            if train:
                n = x.shape[0]
                ones, zeros = torch.ones(n, 1), torch.zeros(n, 1)
                fake = G(torch.randn(n, 100))
                od.zero_grad()
                loss_d = bce(D(x), ones) + bce(D(fake.detach()), zeros)
                loss_d.backward()
                od.step()
                og.zero_grad()
                loss_g = bce(D(fake), ones)
                loss_g.backward()
                og.step()
                if step % 10 == 0 or step == a.steps - 1:
                    print(f"step {step}: batch {tuple(x.shape)} {x.dtype}, labels {tuple(y.shape)} {y.dtype}, "
                          f"loss D {loss_d.item():.4f} G {loss_g.item():.4f}")
            step += 1
            if step == a.steps:
                break
    dt = time.perf_counter() - t0
    print(f"read {seen} images in {step} batches ({seen / dt:.1f} img/s{' training' if train else ''}, "
          f"{a.workers} workers); pixel range [{lo:.4f}, {hi:.4f}]; per class "
          + ", ".join(f"{n}={k}" for n, k in zip(ds.class_names, counts.tolist())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
