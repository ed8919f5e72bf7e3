"""``DistributedDataParallel``: one model replica per rank, gradients averaged over the ranks
during backward, in buckets whose all-reduce starts as soon as their last gradient is ready."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

import rustgrad as _torch
from rustgrad import distributed as _dist

from ..modules.module import Module


class _Bucket:
    """Parameters whose gradients are all-reduced together, through one flat buffer."""

    def __init__(self, params: list[Any]) -> None:
        self.params = params
        sizes = [p.numel() for p in params]
        self.offsets = np.cumsum([0, *sizes]).tolist()
        dtype = _torch.zeros(0, dtype=params[0].dtype).numpy().dtype
        self.buffer = np.zeros(sum(sizes), dtype=dtype)
        self.ready: set[int] = set()
        self.work: Any = None

    def reset(self) -> None:
        self.ready.clear()
        self.work = None


class DistributedDataParallel(Module):
    """Wraps ``module`` for data-parallel training (``torch.nn.parallel.DistributedDataParallel``).

    At construction rank 0's parameters and buffers are broadcast to every rank. During backward,
    each parameter's gradient is copied into its bucket (about ``bucket_cap_mb`` MB, parameters in
    reverse registration order) once accumulated; a full bucket starts its all-reduce at once,
    while backward goes on, and when the last bucket has started every gradient is replaced by
    the average over the ranks. ``no_sync()`` skips this, so that gradients accumulate locally."""

    def __init__(
        self,
        module: Module,
        device_ids: Any = None,
        output_device: Any = None,
        dim: int = 0,
        broadcast_buffers: bool = True,
        process_group: Any = None,
        bucket_cap_mb: float | None = None,
        find_unused_parameters: bool = False,
        check_reduction: bool = False,
        gradient_as_bucket_view: bool = False,
        static_graph: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        dist = _dist
        self.module = module
        self.process_group = process_group
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.bucket_bytes_cap = int((25 if bucket_cap_mb is None else bucket_cap_mb) * 1024 * 1024)
        self.require_backward_grad_sync = True
        self._world = dist.get_world_size(process_group)
        self._params = [p for p in module.parameters() if p.requires_grad]
        with _torch.no_grad():
            for t in [*module.parameters(), *module.buffers()]:
                dist.broadcast(t, src=0, group=process_group)
        self._buckets = self._make_buckets()
        self._where = {id(p): (b, i) for b in self._buckets for i, p in enumerate(b.params)}
        self._pending = False
        self._hooks = [p.register_post_accumulate_grad_hook(self._hook_for(p)) for p in self._params]

    def _hook_for(self, param: Any) -> Any:
        return lambda _: self._grad_ready(param)

    def _make_buckets(self) -> list[_Bucket]:
        buckets: list[_Bucket] = []
        current: list[Any] = []
        size = 0
        for p in reversed(self._params):
            nbytes = p.numel() * p.element_size()
            if current and (size + nbytes > self.bucket_bytes_cap or p.dtype != current[0].dtype):
                buckets.append(_Bucket(current))
                current, size = [], 0
            current.append(p)
            size += nbytes
        if current:
            buckets.append(_Bucket(current))
        return buckets

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        """Runs the wrapped module (after broadcasting rank 0's buffers)."""
        if self._pending:
            raise RuntimeError(
                "Expected to have finished reduction in the prior iteration before starting a new one. "
                "This error indicates that your module has parameters that were not used in producing loss. "
                "You can enable unused parameter detection by passing the keyword argument "
                "`find_unused_parameters=True` to `torch.nn.parallel.DistributedDataParallel`."
            )
        if self.broadcast_buffers and self._world > 1:
            with _torch.no_grad():
                for buffer in self.module.buffers():
                    _dist.broadcast(buffer, src=0, group=self.process_group)
        output = self.module(*inputs, **kwargs)
        if self.require_backward_grad_sync and _torch.is_grad_enabled():
            for bucket in self._buckets:
                bucket.reset()
            if self.find_unused_parameters:
                self._mark_unused(output)
        return output

    def _mark_unused(self, output: Any) -> None:
        """Marks the parameters the output's graph does not reach as ready (their slots stay zero)."""
        reached: set[tuple[int, tuple[int, ...]]] = set()
        stack = [t.grad_fn for t in _tensors_in(output) if t.grad_fn is not None]
        seen: set[Any] = set()  # the nodes themselves: a freed node's id could be reused
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            variable = getattr(node, "variable", None)
            if variable is not None:
                reached.add((variable.data_ptr(), tuple(variable.shape)))
            stack.extend(n for n, _ in node.next_functions if n is not None)
        for p in self._params:
            if (p.data_ptr(), tuple(p.shape)) not in reached:
                bucket, i = self._where[id(p)]
                bucket.buffer[bucket.offsets[i] : bucket.offsets[i + 1]] = 0
                self._mark_ready(bucket, i)

    def _grad_ready(self, param: Any) -> None:
        if not self.require_backward_grad_sync:
            return
        bucket, i = self._where[id(param)]
        grad = param.grad.detach().reshape(-1).numpy()
        bucket.buffer[bucket.offsets[i] : bucket.offsets[i + 1]] = grad
        self._mark_ready(bucket, i)

    def _mark_ready(self, bucket: _Bucket, i: int) -> None:
        self._pending = True
        bucket.ready.add(i)
        if len(bucket.ready) == len(bucket.params) and bucket.work is None:
            flat = _torch.from_numpy(bucket.buffer)
            bucket.work = _dist.all_reduce(flat, group=self.process_group, async_op=True)
        # Let MPI progress the buckets already started while backward goes on.
        for b in self._buckets:
            if b.work is not None:
                b.work.is_completed()
        if all(b.work is not None for b in self._buckets):
            self._finish()

    def _finish(self) -> None:
        with _torch.no_grad():
            for b in self._buckets:
                b.work.wait()
                b.buffer /= self._world
                for i, p in enumerate(b.params):
                    if p.grad is None:
                        continue
                    piece = b.buffer[b.offsets[i] : b.offsets[i + 1]].reshape(tuple(p.shape))
                    p.grad.copy_(_torch.from_numpy(piece))
                b.reset()
        self._pending = False

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Within it, backward leaves gradients local (they accumulate until a synced backward)."""
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous


def _tensors_in(output: Any) -> list[Any]:
    """The tensors of a module's output (a tensor, or nested lists, tuples and dicts of them)."""
    if isinstance(output, _torch.Tensor):
        return [output]
    if isinstance(output, (list, tuple)):
        return [t for item in output for t in _tensors_in(item)]
    if isinstance(output, dict):
        return [t for item in output.values() for t in _tensors_in(item)]
    return []
