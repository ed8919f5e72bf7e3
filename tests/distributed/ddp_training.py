"""Run by tests/test_distributed.py under ``mpiexec -n 2``: an MLP trained for a few epochs with
DistributedDataParallel, each rank on its half of every global batch, ends with the parameters
of single-process training on the whole batches (checked on every rank, within 1e-5). Also
checks no_sync accumulation and find_unused_parameters. Prints ``OK <rank>``."""

import numpy as np
import rustgrad as torch
import rustgrad.distributed as dist
from rustgrad import nn
from rustgrad.nn.parallel import DistributedDataParallel as DDP


def make_model(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3))


def batches():
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.standard_normal((96, 6)), dtype=torch.float32)
    y = torch.tensor(rng.integers(0, 3, 96))
    return [(x[i : i + 32], y[i : i + 32]) for i in range(0, 96, 32)]


def train(model, shard, epochs=4):
    opt = torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9)
    for _ in range(epochs):
        for x, y in batches():
            x, y = shard(x), shard(y)
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    return model


dist.init_process_group("gloo")
rank, size = dist.get_rank(), dist.get_world_size()

# every rank starts from a different initialisation: DDP must broadcast rank 0's
ddp = DDP(make_model(seed=rank), bucket_cap_mb=0.001)  # tiny buckets: several all-reduces overlap
assert len(ddp._buckets) > 1
half = lambda t: t[rank * (t.shape[0] // size) : (rank + 1) * (t.shape[0] // size)]
train(ddp, half)
alone = train(make_model(seed=0), lambda t: t)
for (name, p), q in zip(ddp.module.named_parameters(), alone.parameters()):
    np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-5, atol=1e-5, err_msg=name)
assert next(iter(ddp.state_dict())).startswith("module.")

# no_sync: a local backward, then a synced one: each rank's gradient sums its two halves, and the
# average over the ranks is twice the full batch's mean gradient
model = DDP(make_model(seed=1))
x, y = batches()[0]
with model.no_sync():
    nn.functional.cross_entropy(model(half(x)), half(y)).backward()
nn.functional.cross_entropy(model(half(x)), half(y)).backward()
reference = make_model(seed=1)
nn.functional.cross_entropy(reference(x), y).backward()
for p, q in zip(model.parameters(), reference.parameters()):
    np.testing.assert_allclose(p.grad.numpy(), 2 * q.grad.numpy(), rtol=1e-5, atol=1e-6)


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.body, self.used, self.unused = nn.Linear(4, 4), nn.Linear(4, 2), nn.Linear(4, 2)

    def forward(self, x):
        return self.used(self.body(x))


heads = DDP(TwoHeads(), find_unused_parameters=True)
for _ in range(2):
    heads.zero_grad()
    heads(torch.ones(3, 4) * (rank + 1)).sum().backward()
assert heads.module.unused.weight.grad is None
np.testing.assert_allclose(heads.module.used.bias.grad.numpy(), [3.0, 3.0], rtol=1e-6)  # 3 rows of ones

strict = DDP(TwoHeads())
strict(torch.ones(3, 4)).sum().backward()
try:
    strict(torch.ones(3, 4))
    raise AssertionError("a forward after an unfinished reduction must raise")
except RuntimeError as e:
    assert "Expected to have finished reduction in the prior iteration" in str(e)

dist.barrier()
dist.destroy_process_group()
print(f"OK {rank}", flush=True)
