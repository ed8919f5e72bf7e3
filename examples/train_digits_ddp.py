"""The main job, data-parallel: the digits MLP of ``train_digits.py`` trained with
``DistributedDataParallel``, each rank on its share of every global batch.

    mpiexec -n 2 python examples/train_digits_ddp.py
    python -m rustgrad.distributed.run --nproc-per-node 2 examples/train_digits_ddp.py
    python examples/train_digits_ddp.py          # one process: the reference run

Every rank draws the same permutation (the same seed), cuts each global batch of ``--batch-size``
into equal consecutive shares, and scales its mean loss by its share of the batch, so that DDP's
average of the ranks' gradients is the gradient of the whole batch's mean loss, as in one process.
Dropout draws its masks per rank, so runs with different process counts agree on the accuracy
within a few images rather than bit for bit (``--dropout 0`` makes them agree to rounding).
Rank 0 prints the test accuracy and the time per epoch.
"""

from __future__ import annotations

import argparse
import time

import rustgrad as torch
import rustgrad.distributed as dist
from rustgrad import nn, optim
from rustgrad.nn.parallel import DistributedDataParallel
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64, help="the global batch, shared by the ranks")
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dropout", type=float, default=0.1)
    return p.parse_args()


class MLP(nn.Module):
    def __init__(self, hidden: int = 128, p_drop: float = 0.1):
        super().__init__()
        self.fc1 = nn.Linear(64, hidden)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(p_drop)
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x):
        return self.fc2(self.dropout(self.relu(self.fc1(x))))


def load_data():
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data, digits.target, test_size=0.25, random_state=0, stratify=digits.target
    )
    to_x = lambda a: torch.tensor(a / 16.0, dtype=torch.float32)
    to_y = lambda a: torch.tensor(a, dtype=torch.int64)
    return to_x(x_train), to_y(y_train), to_x(x_test), to_y(y_test)


def main() -> None:
    args = parse_args()
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(args.seed)
    x_train, y_train, x_test, y_test = load_data()
    model = DistributedDataParallel(MLP(p_drop=args.dropout))
    loss_fn = nn.CrossEntropyLoss()
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.5)
    torch.manual_seed(args.seed + 1 + rank)  # dropout masks differ per rank; the permutation below does not
    order = torch.Generator().manual_seed(args.seed)

    n = x_train.shape[0]
    seconds = []
    for _ in range(args.epochs):
        start = time.perf_counter()
        model.train()
        perm = torch.randperm(n, generator=order)
        for i in range(0, n, args.batch_size):
            batch = perm[i : i + args.batch_size]
            share = -(-len(batch) // world)
            mine = batch[rank * share : (rank + 1) * share]
            optimizer.zero_grad()
            if len(mine) > 0:
                loss = loss_fn(model(x_train[mine]), y_train[mine]) * (len(mine) * world / len(batch))
            else:
                loss = model(x_train[:1]).sum() * 0.0  # no rows this time: still join the all-reduce
            loss.backward()
            optimizer.step()
        scheduler.step()
        seconds.append(time.perf_counter() - start)

    model.eval()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(dim=1) == y_test).float().mean().item()
    if rank == 0:
        per_epoch = sorted(seconds[1:] or seconds)[len(seconds[1:] or seconds) // 2]
        print(f"{world} process{'es' if world > 1 else ''}: test accuracy {100 * accuracy:.2f}% "
              f"({len(y_test)} images), {per_epoch:.4f} s/epoch", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
