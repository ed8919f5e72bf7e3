"""Distributed benchmarks (issue 16): all-reduce through ``rustgrad.distributed`` against raw
``mpi4py`` on the same buffers, and the step time of DistributedDataParallel with 1 and 2
processes, with the overlap of communication and backward measured.

    python benchmarks/distributed.py            # launches itself under mpiexec -n 1 and -n 2

Each rank runs the same workloads; rank 0 prints the medians. Not a test: nothing here runs in CI.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

import numpy as np


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def allreduce_rows(dist, torch, comm) -> list[tuple[str, float, float, float]]:
    """(size, rustgrad ms, mpi4py ms on the same buffer, mpi4py ms on a numpy-allocated buffer)
    for 4 MB and 64 MB of float32, runs interleaved."""
    from mpi4py import MPI

    rows = []
    for megabytes, repeats in ((4, 40), (64, 10)):
        n = megabytes * 1024 * 1024 // 4
        tensor = torch.ones(n)
        same = tensor.numpy()  # the tensor's own memory
        other = np.ones(n, dtype=np.float32)
        ours, raw, raw_numpy = [], [], []
        for _ in range(3):  # alternate, so that machine noise hits all alike
            comm.Barrier()
            ours.append(_median_ms(lambda t=tensor: dist.all_reduce(t), repeats))
            comm.Barrier()
            raw.append(_median_ms(lambda a=same: comm.Allreduce(MPI.IN_PLACE, a, MPI.SUM), repeats))
            comm.Barrier()
            raw_numpy.append(_median_ms(lambda a=other: comm.Allreduce(MPI.IN_PLACE, a, MPI.SUM), repeats))
        rows.append((f"{megabytes} MB", min(ours), min(raw), min(raw_numpy)))
    return rows


def ddp_rows(dist, torch, world: int) -> dict[str, float]:
    """Milliseconds per training step of an MLP (global batch 256) and its parts."""
    from rustgrad import nn
    from rustgrad.nn.parallel import DistributedDataParallel

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(512, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))
    x = torch.randn(256 // world, 512)
    y = torch.randint(0, 10, (256 // world,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def plain_backward():
        model.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()

    ddp = DistributedDataParallel(model, bucket_cap_mb=4)

    def ddp_backward():
        ddp.zero_grad()
        nn.functional.cross_entropy(ddp(x), y).backward()

    def ddp_step():
        ddp_backward()
        opt.step()

    grads = torch.zeros(sum(p.numel() for p in model.parameters()))
    out = {
        "backward without communication": _median_ms(plain_backward, 20),
        "all-reduce of all gradients": _median_ms(lambda: dist.all_reduce(grads), 20),
        "backward with DDP": _median_ms(ddp_backward, 20),
        "training step with DDP": _median_ms(ddp_step, 20),
        "parameters (millions)": sum(p.numel() for p in model.parameters()) / 1e6,
    }
    return out


def main_job_rows(dist, torch, world: int) -> dict[str, float]:
    """The main job's step (the digits MLP, 64-128-10, global batch 64) and the all-reduce of its
    gradients (9,610 float32 values) alone: the figures README's plan for many machines uses."""
    from rustgrad import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.1), nn.Linear(128, 10))
    x, y = torch.rand(64 // world, 64), torch.randint(0, 10, (64 // world,))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)

    def step():
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    grads = torch.zeros(sum(p.numel() for p in model.parameters()))
    return {
        "main job: step without communication": _median_ms(step, 200),
        "main job: all-reduce of its gradients": _median_ms(lambda: dist.all_reduce(grads), 200),
    }


def worker() -> None:
    import rustgrad as torch
    import rustgrad.distributed as dist

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    comm = dist.GroupMember.WORLD._comm
    rows = allreduce_rows(dist, torch, comm) if world > 1 else []
    ddp = ddp_rows(dist, torch, world)
    ddp.update(main_job_rows(dist, torch, world))
    if rank == 0:
        print(f"== {world} process{'es' if world > 1 else ''}")
        for size, ours, raw, raw_numpy in rows:
            print(f"all_reduce {size:>6}: rustgrad {ours:8.3f} ms  mpi4py (same buffer) {raw:8.3f} ms  "
                  f"ratio {ours / raw:5.2f}x  (mpi4py on a numpy-allocated buffer {raw_numpy:8.3f} ms)")
        for name, value in ddp.items():
            print(f"{name:32s} {value:8.3f}")
        if world > 1:
            hidden = ddp["backward without communication"] + ddp["all-reduce of all gradients"] - ddp["backward with DDP"]
            share = hidden / ddp["all-reduce of all gradients"]
            print(f"{'communication hidden by backward':32s} {hidden:8.3f} ms ({100 * share:.0f}% of the all-reduce)")
        sys.stdout.flush()
    dist.destroy_process_group()


def main() -> None:
    if os.environ.get("PMI_RANK") is not None or os.environ.get("OMPI_COMM_WORLD_RANK") is not None:
        worker()
        return
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    mpiexec = beside if os.path.exists(beside) else "mpiexec"
    for n in (1, 2):
        subprocess.run([mpiexec, "-n", str(n), sys.executable, os.path.abspath(__file__)], check=True)


if __name__ == "__main__":
    main()
