"""Run by tests/test_distributed.py under ``mpiexec -n 2``: rank 1 raises (``raise``) or never
joins the collective (``skip``); the job must end, with a message naming the rank."""

import datetime
import sys
import time

import rustgrad as torch
import rustgrad.distributed as dist

dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=3))
if dist.get_rank() == 1:
    if sys.argv[1] == "raise":
        raise RuntimeError("rank 1 fails on purpose")
    time.sleep(120)
dist.all_reduce(torch.ones(3))
print("finished", dist.get_rank(), flush=True)
