"""``torch.utils.checkpoint``: trade compute for memory by recomputing a function's
intermediate values during backward instead of keeping them from the forward.

Two ways, as in PyTorch:

- ``use_reentrant=False``: the forward runs under saved-tensor hooks that keep only a
  position for each tensor an op saves; the first backward formula that needs one reruns the
  function (with the forward's random state) and takes the tensors it saves, in order.
  Works with ``autograd.grad``, double backward, keyword arguments and inputs that need no grad.
- ``use_reentrant=True`` (the default when not given, with PyTorch's warning): a custom
  ``Function`` whose forward runs without grad and whose backward reruns the function with
  grad and backpropagates through it.

https://pytorch.org/docs/stable/checkpoint.html
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterable
from typing import Any

from rustgrad.autograd.function import Function

__all__ = ["CheckpointFunction", "checkpoint", "checkpoint_sequential", "detach_variable", "noop_context_fn"]

_REENTRANT_WARNING = (
    "torch.utils.checkpoint{which}: the use_reentrant parameter should be passed explicitly. {when} "
    "use_reentrant=False is recommended, but if you need to preserve the current default behavior, you can "
    "pass use_reentrant=True. Refer to docs for more details on the differences between the two variants."
)


def noop_context_fn() -> tuple[contextlib.AbstractContextManager, contextlib.AbstractContextManager]:
    """The default ``context_fn``: no context around the forward nor the recomputation."""
    return contextlib.nullcontext(), contextlib.nullcontext()


def detach_variable(inputs: tuple) -> tuple:
    """Each tensor of ``inputs`` detached, keeping its ``requires_grad``; other items as they are."""
    from rustgrad import Tensor

    if not isinstance(inputs, tuple):
        raise RuntimeError(f"Only tuple of tensors is supported. Got Unsupported input type: {type(inputs).__name__}")  # noqa: TRY004 (PyTorch's class)
    out = []
    for item in inputs:
        if not isinstance(item, Tensor):
            out.append(item)
            continue
        detached = item.detach()
        detached.requires_grad = item.requires_grad
        out.append(detached)
    return tuple(out)


def check_backward_validity(inputs: Iterable[Any]) -> None:
    """Warns when no tensor input requires grad (the checkpoint would give no gradients)."""
    from rustgrad import Tensor

    if not any(isinstance(x, Tensor) and x.requires_grad for x in inputs):
        warnings.warn("None of the inputs have requires_grad=True. Gradients will be None", stacklevel=3)


@contextlib.contextmanager
def _random_state(state: Any) -> Any:
    """Runs the block from the random state ``state`` (if not None) and puts the current one back
    afterwards (``random.fork_rng``), so a recomputation draws the forward's numbers and leaves
    the stream as it was."""
    import rustgrad

    with rustgrad.random.fork_rng(enabled=state is not None):
        if state is not None:
            rustgrad.set_rng_state(state)
        yield


class CheckpointFunction(Function):
    """The reentrant checkpoint: forward without grad, backward by recomputing with grad."""

    @staticmethod
    def forward(ctx: Any, run_function: Callable, preserve_rng_state: bool, *args: Any) -> Any:
        """Runs ``run_function`` without grad, keeping its inputs and the random state."""
        import rustgrad

        check_backward_validity(args)
        ctx.run_function = run_function
        ctx.random_state = rustgrad.get_rng_state() if preserve_rng_state else None
        ctx.non_tensor_args = [None if isinstance(a, rustgrad.Tensor) else a for a in args]
        ctx.tensor_positions = [i for i, a in enumerate(args) if isinstance(a, rustgrad.Tensor)]
        ctx.save_for_backward(*(args[i] for i in ctx.tensor_positions))
        with rustgrad.no_grad():
            return run_function(*args)

    @staticmethod
    def backward(ctx: Any, *grad_outputs: Any) -> tuple:
        """Reruns ``run_function`` with grad from the same random state and backpropagates."""
        import rustgrad

        args = list(ctx.non_tensor_args)
        for i, t in zip(ctx.tensor_positions, ctx.saved_tensors):
            args[i] = t
        inputs = detach_variable(tuple(args))
        with _random_state(ctx.random_state), rustgrad.enable_grad():
            outputs = ctx.run_function(*inputs)
        if isinstance(outputs, rustgrad.Tensor):
            outputs = (outputs,)
        pairs = [
            (out, grad)
            for out, grad in zip(outputs, grad_outputs)
            if isinstance(out, rustgrad.Tensor) and out.requires_grad
        ]
        if not pairs:
            raise RuntimeError("none of output has requires_grad=True, this checkpoint() is not necessary")
        rustgrad.autograd.backward([p[0] for p in pairs], [p[1] for p in pairs])
        grads = tuple(x.grad if isinstance(x, rustgrad.Tensor) else None for x in inputs)
        return (None, None, *grads)


class _Recomputation:
    """The state of one non-reentrant checkpoint: what the forward saved is a list of positions;
    the tensors themselves come from rerunning the function when backward first asks."""

    def __init__(self, function: Callable, args: tuple, kwargs: dict, random_state: Any, context: Any) -> None:
        self.function = function
        self.args = args
        self.kwargs = kwargs
        self.random_state = random_state
        self.context = context
        self.count = 0
        self.recomputed: dict[int, Any] = {}

    def pack(self, tensor: Any) -> int:
        position = self.count
        self.count += 1
        return position

    def unpack(self, position: int) -> Any:
        if position not in self.recomputed:
            self.recompute()
        # Handed out once: a second backward (retain_graph) recomputes again.
        return self.recomputed.pop(position)

    def recompute(self) -> None:
        import rustgrad
        from rustgrad.autograd.graph import saved_tensors_hooks

        saved: list[Any] = []

        def keep(tensor: Any) -> None:
            saved.append(tensor.detach())

        def refuse(_: Any) -> Any:
            raise RuntimeError("torch.utils.checkpoint: a recomputed graph cannot be backpropagated through")

        with _random_state(self.random_state), rustgrad.enable_grad(), self.context, saved_tensors_hooks(keep, refuse):
            self.function(*self.args, **self.kwargs)
        if len(saved) < self.count:
            raise RuntimeError(
                "torch.utils.checkpoint: Recomputed values for the following tensors have different metadata than "
                f"during the forward pass: the recomputation saved {len(saved)} tensors, the forward {self.count}. "
                "The checkpointed function must run the same operations when it is called again."
            )
        self.recomputed = dict(enumerate(saved[: self.count]))


def _non_reentrant(function: Callable, preserve_rng_state: bool, context_fn: Callable, args: tuple, kwargs: dict) -> Any:
    import rustgrad
    from rustgrad.autograd.graph import saved_tensors_hooks

    forward_context, recompute_context = context_fn()
    random_state = rustgrad.get_rng_state() if preserve_rng_state else None
    state = _Recomputation(function, args, kwargs, random_state, recompute_context)
    with saved_tensors_hooks(state.pack, state.unpack), forward_context:
        return function(*args, **kwargs)


def checkpoint(
    function: Callable,
    *args: Any,
    use_reentrant: bool | None = None,
    preserve_rng_state: bool = True,
    context_fn: Callable = noop_context_fn,
    determinism_check: str = "default",
    debug: bool = False,
    early_stop: bool = True,
    **kwargs: Any,
) -> Any:
    """``function(*args, **kwargs)`` without keeping its intermediate values for backward: they
    are recomputed when backward needs them. ``preserve_rng_state`` makes the recomputation draw
    the same random numbers (dropout masks) as the forward."""
    if use_reentrant is None:
        warnings.warn(
            _REENTRANT_WARNING.format(
                which="", when="In a future release, calling checkpoint without use_reentrant will raise an exception."
            ),
            stacklevel=2,
        )
        use_reentrant = True
    if use_reentrant:
        if context_fn is not noop_context_fn or debug:
            raise ValueError("Passing `context_fn` or `debug` is only supported when use_reentrant=False.")
        if kwargs:
            raise ValueError("Unexpected keyword arguments: " + ",".join(kwargs))
        return CheckpointFunction.apply(function, preserve_rng_state, *args)
    return _non_reentrant(function, preserve_rng_state, context_fn, args, kwargs)


def checkpoint_sequential(
    functions: Any, segments: int, input: Any, use_reentrant: bool | None = None, **kwargs: Any
) -> Any:
    """Runs the modules (or functions) in ``functions`` one after another on ``input``, split
    into ``segments`` pieces; every piece but the last is checkpointed."""
    if use_reentrant is None:
        warnings.warn(
            _REENTRANT_WARNING.format(
                which=".checkpoint_sequential",
                when="In a future release, we will raise an exception if use_reentrant is not passed.",
            ),
            stacklevel=2,
        )
        use_reentrant = True
    preserve = kwargs.pop("preserve_rng_state", True)
    if kwargs:
        raise ValueError("Unexpected keyword arguments: " + ",".join(kwargs))
    from rustgrad.nn import Sequential

    if isinstance(functions, Sequential):
        functions = list(functions.children())
    functions = list(functions)

    def run_pieces(first: int, last: int) -> Callable:
        def run(x: Any) -> Any:
            for f in functions[first : last + 1]:
                x = f(x)
            return x

        return run

    size = len(functions) // segments
    last = -1
    for first in range(0, size * (segments - 1), size):
        last = first + size - 1
        input = checkpoint(run_pieces(first, last), input, use_reentrant=use_reentrant, preserve_rng_state=preserve)
    return run_pieces(last + 1, len(functions) - 1)(input)
