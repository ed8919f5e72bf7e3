"""rustgrad.distributed: collectives under ``mpiexec -n 2`` (skipped without mpi4py and an MPI
launcher), failing ranks, and ``DistributedSampler`` (no MPI needed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest
import rustgrad
from rustgrad.utils.data import DistributedSampler

HERE = os.path.dirname(os.path.abspath(__file__))


def _mpiexec() -> str:
    pytest.importorskip("mpi4py")
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    found = beside if os.path.exists(beside) else shutil.which("mpiexec")
    if found is None:
        pytest.skip("no mpiexec (pip install \"rustgrad[distributed]\")")
    return found


def _launch(script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    command = [_mpiexec(), "-n", "2", sys.executable, os.path.join(HERE, "distributed", script), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def test_collectives_on_two_ranks():
    """Every collective and point-to-point call, checked on both ranks against closed forms."""
    run = _launch("collectives.py")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "OK 0" in run.stdout and "OK 1" in run.stdout, run.stdout + run.stderr  # lines may interleave


def test_ddp_training_matches_one_process():
    """DistributedDataParallel on two ranks, each on half of every batch, ends an MLP's training
    with the parameters of one process on the whole batches (1e-5); no_sync and
    find_unused_parameters too."""
    run = _launch("ddp_training.py")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "OK 0" in run.stdout and "OK 1" in run.stdout, run.stdout + run.stderr  # lines may interleave


def test_mismatched_shapes_raise_with_debug_detail(monkeypatch):
    """With TORCH_DISTRIBUTED_DEBUG=DETAIL, ranks running an all_reduce of different shapes all
    raise PyTorch's "Detected mismatch between collectives" RuntimeError, naming both."""
    monkeypatch.setenv("TORCH_DISTRIBUTED_DEBUG", "DETAIL")
    run = _launch("mismatch.py", timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "OK 0" in run.stdout and "OK 1" in run.stdout, run.stdout + run.stderr


@pytest.mark.parametrize("failure", ["raise", "skip"])
def test_a_failing_rank_ends_the_job(failure):
    """A rank that raises, or never joins a collective, ends every rank (3 s timeout), with a
    message naming it; nothing hangs."""
    start = time.monotonic()
    run = _launch("failing_rank.py", failure, timeout=60)
    took = time.monotonic() - start
    assert run.returncode != 0
    assert "finished" not in run.stdout
    if failure == "raise":
        assert "rank 1 failed with an uncaught exception" in run.stderr
        assert "rank 1 fails on purpose" in run.stderr
    else:
        assert "rank 0: all_reduce did not complete within the timeout of 0:00:03" in run.stderr
    assert took < 30


def test_not_initialized_errors():
    """Without init_process_group: PyTorch's ValueError."""
    dist = rustgrad.distributed
    assert not dist.is_initialized()
    with pytest.raises(ValueError, match="Default process group has not been initialized"):
        dist.get_rank()
    with pytest.raises(ValueError, match="Default process group has not been initialized"):
        dist.all_reduce(rustgrad.ones(2))
    assert repr(dist.ReduceOp.SUM) == "<RedOpType.SUM: 0>"


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("size", [7, 10])
def test_distributed_sampler_partitions_the_dataset(size, drop_last):
    """Ranks get equally many indices, disjoint up to the padding, covering the dataset (all of it
    without drop_last); the order depends on seed + epoch and is the same on every rank."""
    reps = 3
    parts = []
    for rank in range(reps):
        sampler = DistributedSampler(list(range(size)), num_replicas=reps, rank=rank, seed=4)
        sampler.set_epoch(1)
        parts.append(list(sampler))
    lengths = {len(p) for p in parts}
    assert len(lengths) == 1
    every = [i for p in parts for i in p]
    if drop_last:
        parts = [list(DistributedSampler(list(range(size)), reps, r, seed=4, drop_last=True)) for r in range(reps)]
        assert len({len(p) for p in parts}) == 1 and len(parts[0]) == size // reps
        flat = [i for p in parts for i in p]
        assert len(set(flat)) == len(flat)
    else:
        assert set(every) == set(range(size)) and len(every) == reps * -(-size // reps)
    again = DistributedSampler(list(range(size)), num_replicas=reps, rank=0, seed=4)
    assert list(again) != parts[0] or size < 3  # epoch 0 draws another permutation
    with pytest.raises(ValueError, match=r"Invalid rank 3, rank should be in the interval \[0, 2\]"):
        DistributedSampler(list(range(size)), num_replicas=3, rank=3)


def test_distributed_sampler_against_pytorch():
    """The same indices as PyTorch's DistributedSampler, for every combination tried."""
    torch = pytest.importorskip("torch")
    from itertools import product

    from torch.utils.data.distributed import DistributedSampler as TorchSampler

    for size, reps, shuffle, drop, seed, epoch in product([7, 10, 3], [2, 3, 4], [True, False], [False, True],
                                                         [0, 5], [0, 2]):
        for rank in range(reps):
            ours = DistributedSampler(list(range(size)), reps, rank, shuffle, seed, drop)
            theirs = TorchSampler(list(range(size)), reps, rank, shuffle, seed, drop)
            ours.set_epoch(epoch)
            theirs.set_epoch(epoch)
            assert (len(ours), list(ours)) == (len(theirs), list(theirs))
    del torch


def test_launcher_runs_a_job_and_builds_mpiexec_commands():
    """``python -m rustgrad.distributed.run --nproc-per-node 2 script`` runs the script on 2 ranks;
    with a hostfile it asks mpiexec for nproc-per-node processes on each of nnodes machines."""
    _mpiexec()
    from rustgrad.distributed.run import command

    script = os.path.join(HERE, "distributed", "collectives.py")
    run = subprocess.run([sys.executable, "-m", "rustgrad.distributed.run", "--nproc-per-node", "2", script],
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0 and "OK 0" in run.stdout and "OK 1" in run.stdout, run.stdout + run.stderr
    built = command(["--nproc-per-node", "4", "--nnodes", "2", "--hostfile", "hosts.txt", "train.py", "--lr", "0.1"])
    assert built[1:] == ["-n", "8", "-f", "hosts.txt", "-ppn", "4", sys.executable, "train.py", "--lr", "0.1"]
    assert command(["-m", "pkg.train"])[-3:] == [sys.executable, "-m", "pkg.train"]


def test_data_parallel_main_job_matches_one_process():
    """examples/train_digits_ddp.py on 2 ranks reaches the test accuracy of 1 process given the
    same global batches (without dropout, whose masks are drawn per rank)."""
    pytest.importorskip("sklearn")
    script = os.path.join(os.path.dirname(HERE), "examples", "train_digits_ddp.py")
    accuracies = []
    for n in ("1", "2"):
        run = subprocess.run([_mpiexec(), "-n", n, sys.executable, script, "--epochs", "6", "--dropout", "0"],
                             capture_output=True, text=True, timeout=300, check=False)
        assert run.returncode == 0, run.stdout + run.stderr
        accuracies.append(run.stdout.split("test accuracy ")[1].split("%")[0])
    assert accuracies[0] == accuracies[1] and float(accuracies[0]) > 90
