"""The PyTorch peer's DCGAN step (../shared/peers/dcgan_ddp.py: same networks, optimiser and step) under CPU bf16
autocast, 1 process, 1 intra-op thread: what a PyTorch user gets with torch.autocast("cpu", torch.bfloat16).
Usage: python3 bench/peer_bf16.py PEER_DIR [iters] [batch]"""
import sys
import time

sys.path.insert(0, sys.argv[1])
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from dcgan_ddp import make_d, make_g  # noqa: E402

torch.set_num_threads(1)
torch.manual_seed(0)
iters = int(sys.argv[2]) if len(sys.argv) > 2 else 20
batch = int(sys.argv[3]) if len(sys.argv) > 3 else 64
G, D = make_g(), make_d()
og = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
od = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
bce = nn.BCEWithLogitsLoss()
real = torch.rand(batch, 3, 32, 32) * 2 - 1
ones, zeros = torch.ones(batch, 1), torch.zeros(batch, 1)


def step():
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fake = G(torch.randn(batch, 100))
        od.zero_grad()
        loss_d = bce(D(real).float(), ones) + bce(D(fake.detach()).float(), zeros)
    loss_d.backward()
    od.step()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        og.zero_grad()
        loss_g = bce(D(fake).float(), ones)
    loss_g.backward()
    og.step()


for _ in range(3):
    step()
t0 = time.perf_counter()
for _ in range(iters):
    step()
dt = time.perf_counter() - t0
print(f"peer-bf16 world=1 batch={batch} img/s total={iters * batch / dt:.1f}")
