"""Run by tests/test_distributed.py under ``mpiexec -n 2``: every collective checked against its
closed form on each rank; prints ``OK <rank>`` at the end."""

import threading
import time

import numpy as np
import rustgrad as torch
import rustgrad.distributed as dist

dist.init_process_group("gloo")
rank, size = dist.get_rank(), dist.get_world_size()
assert dist.is_initialized() and size == 2 and dist.get_backend() == "gloo"

# all_reduce of 1e6 float32 values: exact (integers, so the sum has no rounding)
values = torch.arange(1_000_000, dtype=torch.float32) * (rank + 1)
version = values._version
dist.all_reduce(values)
np.testing.assert_array_equal(values.numpy(), np.arange(1_000_000, dtype=np.float32) * 3)
assert values._version == version + 1

for op, want in [(dist.ReduceOp.SUM, 3.0), (dist.ReduceOp.AVG, 1.5), (dist.ReduceOp.PRODUCT, 2.0),
                 (dist.ReduceOp.MIN, 1.0), (dist.ReduceOp.MAX, 2.0)]:
    x = torch.full((4,), float(rank + 1), dtype=torch.float64)
    dist.all_reduce(x, op=op)
    assert x.tolist() == [want] * 4, (op, x.tolist())
ints = torch.tensor([rank + 1, 10])
dist.all_reduce(ints)
assert ints.tolist() == [3, 20] and ints.dtype == torch.int64

# in place on a leaf that requires grad (PyTorch allows it), the tensor keeps its flags
leaf = torch.ones(3, requires_grad=True)
dist.all_reduce(leaf)
assert leaf.requires_grad and leaf.is_leaf and leaf.tolist() == [2.0, 2.0, 2.0]

b = torch.arange(5.0) * (rank + 1)
dist.broadcast(b, src=1)
assert b.tolist() == [0.0, 2.0, 4.0, 6.0, 8.0]

outs = [torch.zeros(2, 3) for _ in range(size)]
dist.all_gather(outs, torch.full((2, 3), float(rank)))
assert [o.tolist() for o in outs] == [[[0.0] * 3] * 2, [[1.0] * 3] * 2]

big = torch.zeros(size * 2)
dist.all_gather_into_tensor(big, torch.full((2,), float(rank + 1)))
assert big.tolist() == [1.0, 1.0, 2.0, 2.0]

part = torch.zeros(2)
dist.reduce_scatter_tensor(part, torch.arange(4.0))
assert part.tolist() == ([0.0, 2.0] if rank == 0 else [4.0, 6.0])

red = torch.full((2,), float(rank + 1))
dist.reduce(red, dst=0)
assert red.tolist() == ([3.0, 3.0] if rank == 0 else [2.0, 2.0])

got = [torch.zeros(1) for _ in range(size)] if rank == 0 else None
dist.gather(torch.tensor([float(rank + 5)]), got, dst=0)
assert rank != 0 or [g.item() for g in got] == [5.0, 6.0]

mine = torch.zeros(2)
dist.scatter(mine, [torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])] if rank == 0 else None, src=0)
assert mine.tolist() == ([1.0, 2.0] if rank == 0 else [3.0, 4.0])

if rank == 0:
    dist.send(torch.tensor([7.0, 8.0]), dst=1)
    work = dist.irecv(back := torch.zeros(1), src=1)
    work.wait()
    assert back.item() == 9.0
else:
    t = torch.zeros(2)
    assert dist.recv(t) == 0 and t.tolist() == [7.0, 8.0]
    dist.isend(torch.tensor([9.0]), dst=0).wait()

work = dist.all_reduce(async_x := torch.ones(3), async_op=True)
assert work.wait() and work.is_completed() and async_x.tolist() == [2.0] * 3

# the nonblocking forms of the others
pending = [
    (dist.broadcast(ab := torch.full((2,), float(rank)), src=1, async_op=True), lambda: ab.tolist() == [1.0, 1.0]),
    (dist.reduce(ar := torch.ones(2), dst=1, async_op=True), lambda: ar.tolist() == ([1.0, 1.0] if rank == 0 else [2.0, 2.0])),
    (dist.all_gather_into_tensor(ag := torch.zeros(2), torch.tensor([float(rank)]), async_op=True),
     lambda: ag.tolist() == [0.0, 1.0]),
    (dist.reduce_scatter_tensor(rs := torch.zeros(1), torch.tensor([1.0, 2.0]), op=dist.ReduceOp.AVG, async_op=True),
     lambda: rs.tolist() == [1.0 + rank]),
    (dist.barrier(async_op=True), lambda: True),
]
for work, check in pending:
    work.wait()
    assert check()

objects = [{"rank": rank}]
dist.broadcast_object_list(objects, src=1)
assert objects == [{"rank": 1}]
gathered = [None, None]
dist.all_gather_object(gathered, rank * 10)
assert gathered == [0, 10]

only_one = dist.new_group([1])
if rank == 1:
    assert dist.get_rank(only_one) == 0 and dist.get_world_size(only_one) == 1
    one = torch.ones(2)
    dist.all_reduce(one, group=only_one)
    assert one.tolist() == [1.0, 1.0]
else:
    assert dist.get_rank(only_one) == -1 and dist.all_reduce(torch.ones(1), group=only_one) is None

# the GIL is released while a collective waits: rank 0 blocks in all_reduce until rank 1 joins,
# 0.3 s later, and meanwhile another thread of rank 0 keeps running Python
counted = [0, False]


def count():
    while not counted[1]:
        counted[0] += 1


counter = threading.Thread(target=count)
counter.start()
if rank == 1:
    time.sleep(0.3)
before = counted[0]
dist.all_reduce(torch.ones(2))
during = counted[0] - before
counted[1] = True
counter.join()
assert rank == 1 or during > 10_000, f"the other thread ran only {during} steps during the wait"

dist.barrier()
dist.destroy_process_group()
assert not dist.is_initialized()
print(f"OK {rank}", flush=True)
