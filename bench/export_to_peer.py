"""Loads `shardgan-sample --export-weights` into the PyTorch peer's networks (../shared/peers/dcgan_ddp.py: the
seeds' DCGAN as nn.Sequential) and checks that the peer's generator reproduces `shardgan-sample --out-h5` for the same
seed, and its discriminator the `--score`. Unconditional 32x32x3 models (the peer has no conditioning).
Usage: python3 bench/export_to_peer.py PEER_DIR WEIGHTS.h5 SAMPLES.h5 SEED"""
import sys

import h5py
import numpy as np

sys.path.insert(0, sys.argv[1])
import torch  # noqa: E402
from dcgan_ddp import make_d, make_g  # noqa: E402

# Our module path -> the peer's nn.Sequential index.
G_MAP = {"project": "0", "project_norm": "1", "blocks.0": "4", "blocks.1": "5", "blocks.3": "7", "blocks.4": "8",
         "blocks.6": "10"}
D_MAP = {"blocks.0": "0", "blocks.3": "3", "blocks.6": "6", "head": "9"}


def load(module, group, mapping):
    state = module.state_dict()
    seen = set()
    for name, data in group.items():
        prefix, leaf = name.rsplit(".", 1)
        key = f"{mapping[prefix]}.{leaf}"
        value = torch.from_numpy(np.asarray(data))
        state[key] = value.to(state[key].dtype).reshape(state[key].shape)
        seen.add(key)
    for key in state:  # the bias BatchNorm makes redundant (shardgan drops it): zero
        if key not in seen:
            assert key == "0.bias", f"{key} missing from the export"
            state[key] = torch.zeros_like(state[key])
    module.load_state_dict(state)


weights = h5py.File(sys.argv[2], "r")
samples = h5py.File(sys.argv[3], "r")
seed = int(sys.argv[4])
G, D = make_g(), make_d()
load(G, weights["generator"], G_MAP)
load(D, weights["discriminator"], D_MAP)
G.eval()
D.eval()
n = samples["images"].shape[0]
with torch.no_grad():
    z = torch.randn(n, 100, generator=torch.Generator().manual_seed(seed))
    images = G(z)
    score = torch.sigmoid(D(images)).mean().item()
ours = samples["images"][:].astype(np.int32)
peer = ((images + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy().astype(np.int32)
diff = np.abs(ours - peer).max()
print(f"peer generator vs shardgan-sample: max difference {diff} grey levels over {n} images; "
      f"peer discriminator mean probability {score:.4f}")
sys.exit(0 if diff <= 1 else 1)
