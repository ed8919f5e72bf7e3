"""Run by tests/test_distributed.py under ``mpiexec -n 2`` with ``TORCH_DISTRIBUTED_DEBUG=DETAIL``:
ranks all-reducing tensors of different shapes both raise PyTorch's mismatch error (no hang).
Prints ``OK <rank>``."""

import rustgrad as torch
import rustgrad.distributed as dist

dist.init_process_group("gloo")
rank = dist.get_rank()
try:
    dist.all_reduce(torch.ones(3 + rank))
    raise AssertionError("mismatched shapes must raise")
except RuntimeError as e:
    assert "Detected mismatch between collectives on ranks. Rank 0 is running collective: " in str(e), e
    assert "all_reduce(shape=[3], dtype=float32), but Rank 1 is running collective: all_reduce(shape=[4]" in str(e), e
same = torch.ones(2)
dist.all_reduce(same)
assert same.tolist() == [2.0, 2.0]
dist.destroy_process_group()
print(f"OK {rank}", flush=True)
