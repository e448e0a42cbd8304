#!/usr/bin/env bash
# PyTorch reads and reproduces what shardgan writes, with the Python given (CMake cache variable
# SHARDGAN_TORCH_PYTHON: Debian's /usr/bin/python3 with torch 1.13, or a venv with a PyTorch wheel):
#  (a) bench/torch_dataset.py's Dataset returns every image and label of a packed folder exactly as h5py reads them
#      (pixels scaled as shardgan-train scales them), and a DataLoader with 2 workers (fork, after the parent opened
#      the shards; and spawn) yields each of them exactly once;
#  (b) shardgan-train trains the seeds' unconditional 32x32x3 DCGAN 2 steps, shardgan-sample writes samples, D's score
#      and the weights, and bench/export_to_peer.py loads the weights into the PyTorch peer
#      (../shared/peers/dcgan_ddp.py), whose generator reproduces the samples (<= 1 grey level) and whose
#      discriminator gives the same score (to the 4 printed decimals).
# Exit 77 (skipped) when the Python lacks torch/h5py/numpy or the shared peer is not there.
#   torch_interop.sh PACK FIXTURES TRAIN SAMPLE PYTHON TESTS_INTEGRATION_DIR
set -euo pipefail
pack=$1 fixtures=$2 train=$3 sample=$4 py=$5 here=$6
root=$(cd "$here/../.." && pwd)
peers=$(cd "$root/.." && pwd)/shared/peers
if ! "$py" -c "import torch, h5py, numpy" 2>/dev/null; then
  echo "skipped: $py cannot import torch, h5py and numpy (set -DSHARDGAN_TORCH_PYTHON=...)"
  exit 77
fi
if [[ ! -f $peers/dcgan_ddp.py ]]; then
  echo "skipped: the PyTorch peer $peers/dcgan_ddp.py is not there"
  exit 77
fi
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in the source tree (bench/)
echo "python: $py, torch $("$py" -c 'import torch; print(torch.__version__)')"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# (a) 40 records per batch file, all 10 classes: 200 images in 6 shards of at most 37 (the last one short).
"$fixtures" cifar10 --out "$tmp/cifar" --records 40 >/dev/null
"$pack" cifar10 --input "$tmp/cifar/cifar-10-batches-bin" --classes 0,1,2,3,4,5,6,7,8,9 --shard-size 37 \
  --out "$tmp/data" >/dev/null
cat >"$tmp/check_dataset.py" <<'PY'
import collections, json, os, sys
sys.path.insert(0, sys.argv[1])
import h5py, numpy as np, torch
from torch.utils.data import DataLoader, get_worker_info
from torch_dataset import ShardDataset


def worker_init(_):  # a forked worker must not use the handles the parent opened
    d = get_worker_info().dataset
    assert d._pid != os.getpid(), "worker inherited handles marked as its own"


def main(folder):
    manifest = json.load(open(os.path.join(folder, "manifest.json")))
    assert len(manifest["shards"]) == 6, manifest["shards"]
    ds = ShardDataset(folder)
    assert len(ds) == manifest["total_count"] == 200, len(ds)
    assert ds.class_names == manifest["class_names"] and ds.image_shape == (32, 32, 3)
    stored = collections.Counter()
    index = 0
    for shard in manifest["shards"]:
        with h5py.File(os.path.join(folder, shard["file"]), "r") as f:
            images, labels = f["images"][:], f["labels"][:]
        for image, label in zip(images, labels):
            x, y = ds[index]
            assert x.dtype == torch.float32 and x.shape == (3, 32, 32), (x.dtype, x.shape)
            assert y.dtype == torch.int64 and y.dim() == 0 and y.item() == label, (index, y, label)
            # shardgan-train's scaling, x * (1/127.5) - 1 in float32: the same bits
            want = torch.from_numpy(image.astype(np.float32) * np.float32(1.0 / 127.5) - np.float32(1.0))
            assert torch.equal(x, want.permute(2, 0, 1)), f"image {index}: values differ"
            back = ((x + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
            assert np.array_equal(back, image), f"image {index}: pixels differ"
            stored[(image.tobytes(), int(label))] += 1
            index += 1
    assert index == len(ds)
    print(f"torch_dataset: {index} images and labels in {len(ds.files)} shards equal h5py's")

    for context in ("fork", "spawn"):
        yielded = collections.Counter()
        loader = DataLoader(ds, batch_size=7, shuffle=True, num_workers=2, multiprocessing_context=context,
                            worker_init_fn=worker_init if context == "fork" else None)
        assert ds._handles, "the parent should hold open handles before the workers start"
        for x, y in loader:
            assert x.dtype == torch.float32 and y.dtype == torch.int64
            pixels = ((x + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
            for image, label in zip(pixels, y.tolist()):
                yielded[(image.tobytes(), label)] += 1
        assert yielded == stored, f"{context}: DataLoader yielded {sum(yielded.values())} images, not each of 200 once"
        assert torch.equal(ds[199][0], ds[199][0])  # the parent's handles still work
        print(f"DataLoader(num_workers=2, {context}): each of the {sum(yielded.values())} images exactly once")
    ds.close()


if __name__ == "__main__":  # spawned workers import this file again
    main(sys.argv[2])
PY
"$py" "$tmp/check_dataset.py" "$root/bench" "$tmp/data"

# (b) the seeds' model (bench/common.sh's seed_toml: unconditional, dropout 0.3) on the same 32x32x3 images; 12 steps
# at a 10x learning rate, so that D's score moves away from 0.5 and its 4 decimals say something.
cat >"$tmp/seed.toml" <<TOML
[data]
path = "$tmp/data"
[model]
conditional = false
dropout = 0.3
[train]
batch_size = 16
epochs = 10
max_steps = 12
log_every = 1
[optim]
lr_d = 2e-3
lr_g = 2e-3
[runtime]
threads = 1
TOML
"$train" --config "$tmp/seed.toml" --run-dir "$tmp/run" >/dev/null 2>"$tmp/train.err" || {
  cat "$tmp/train.err"
  exit 1
}
"$sample" --checkpoint "$tmp/run" --no-ema --n 16 --seed 7 --out-h5 "$tmp/samples.h5" --score \
  --export-weights "$tmp/weights.h5" | tee "$tmp/sample.out"
"$py" "$root/bench/export_to_peer.py" "$peers" "$tmp/weights.h5" "$tmp/samples.h5" 7 | tee "$tmp/peer.out"
ours=$(sed -n 's/^discriminator mean probability on 16 samples: \([0-9.]*\)$/\1/p' "$tmp/sample.out")
peer=$(sed -n 's/.*peer discriminator mean probability \([0-9.]*\)$/\1/p' "$tmp/peer.out")
[[ -n $ours && -n $peer ]] || { echo "could not read both scores"; exit 1; }
if [[ $ours != "$peer" ]]; then
  echo "discriminator score: shardgan-sample $ours, PyTorch peer $peer"
  exit 1
fi
echo "discriminator score $ours from both"
