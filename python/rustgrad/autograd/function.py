"""Custom differentiable functions: ``rustgrad.autograd.Function``, as PyTorch defines it.

A subclass gives a static ``forward`` and ``backward``; ``apply`` runs the forward with grad
mode off and records one graph node whose backward calls the subclass's ``backward``. The
node's Python object *is* the ``ctx`` (an instance of ``<Name>Backward``), so
``y.grad_fn.saved_tensors`` and friends work as in PyTorch.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from rustgrad import _rustgrad
from rustgrad.grad_mode import no_grad

Tensor = _rustgrad.Tensor

__all__ = ["Function", "FunctionCtx", "InplaceFunction", "NestedIOFunction", "once_differentiable"]


class FunctionCtx:
    """What ``forward`` can tell ``backward``: saved tensors and marks on outputs."""

    # Class-level defaults: instances only get attributes when the user sets them.
    to_save: tuple | None = None
    dirty_tensors: tuple | None = None
    non_differentiable: tuple | None = None
    materialize_grads: bool = True

    def save_for_backward(self, *tensors: Tensor | None) -> None:
        """Saves tensors (or ``None``) for ``backward``; read them back with ``saved_tensors``."""
        for i, t in enumerate(tensors):
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(
                    f"save_for_backward can only save variables, but argument {i} is of type {type(t).__name__}"
                )
        self.to_save = tensors

    def save_for_forward(self, *tensors: Tensor | None) -> None:
        """Saves tensors for ``jvp``, which reads them back with ``saved_tensors``.
        https://pytorch.org/docs/stable/generated/torch.autograd.function.FunctionCtx.save_for_forward.html"""
        for i, t in enumerate(tensors):
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(
                    f"save_for_forward expects all arguments to be tensors; but got an argument of type {type(t).__name__}"
                )
        self.saved_for_forward = tensors

    def mark_dirty(self, *args: Tensor) -> None:
        """Marks inputs that ``forward`` modified in place (they must also be returned)."""
        self.dirty_tensors = args

    def mark_shared_storage(self, *pairs) -> None:
        """Deprecated no-op kept for old custom Functions (a no-op in PyTorch too)."""

    def mark_non_differentiable(self, *args: Tensor) -> None:
        """Marks outputs that have no gradient (``requires_grad`` stays False)."""
        self.non_differentiable = args

    def set_materialize_grads(self, value: bool) -> None:
        """With ``False``, ``backward`` gets ``None`` (not zeros) for outputs with no gradient."""
        self.materialize_grads = bool(value)


class BackwardCFunction(_rustgrad.Node, FunctionCtx):
    """Base class of the ``ctx``/node objects of custom Functions."""

    _forward_cls: type[Function]
    # Set by `Function.apply` on each ctx.
    _is_tensor: tuple[bool, ...]
    _output_is_tensor: tuple[bool, ...]
    needs_input_grad: tuple[bool, ...]

    def __repr__(self) -> str:
        if getattr(self._forward_cls, "_node_name", None):
            # rustgrad's own composite ops stand for PyTorch's built-in nodes, which print bare
            return f"<{type(self).__name__} object at {id(self):#x}>"
        # PyTorch defines these node classes in torch.autograd.function, and says so.
        return f"<torch.autograd.function.{type(self).__name__} object at {id(self):#x}>"

    def apply(self, *args):
        """Runs the user's ``backward`` (PyTorch's ``grad_fn.apply``)."""
        backward_fn = self._forward_cls.backward
        vjp_fn = self._forward_cls.vjp
        if backward_fn is not Function.backward and vjp_fn is not Function.vjp:
            raise RuntimeError(
                "Implementing both 'backward' and 'vjp' for a custom Function is not allowed. "
                "You should only implement one of them."
            )
        user_fn = vjp_fn if vjp_fn is not Function.vjp else backward_fn
        return user_fn(self, *args)

    @property
    def saved_tensors(self) -> tuple:
        if getattr(self, "_in_jvp", False):
            return tuple(getattr(self, "saved_for_forward", None) or ())
        saved = _rustgrad._saved_tensors(self)
        if saved is None:
            return tuple(self.to_save or ())
        return saved

    @property
    def saved_variables(self) -> tuple:
        return self.saved_tensors


class FunctionMeta(type):
    """Gives each Function subclass its node class, named ``<Name>Backward``.

    rustgrad's own composite ops written as a Function set ``_node_name`` to the name of PyTorch's
    node for that op (``UpsampleNearest2DBackward0``), so that their ``grad_fn`` reads the same."""

    def __init__(cls, name, bases, attrs):
        node_name = attrs.get("_node_name") or name + "Backward"
        backward_cls = type(node_name, (BackwardCFunction,), {"_forward_cls": cls})
        backward_cls.__module__ = "torch.autograd.function"  # where PyTorch's node classes live
        cls._backward_cls = backward_cls
        super().__init__(name, bases, attrs)


class Function(metaclass=FunctionMeta):
    """Base class of custom differentiable operations; call them with ``apply``."""

    generate_vmap_rule = False

    def __init__(self, *args, **kwargs):
        # PyTorch warns that instantiating is deprecated; the class is used through apply.
        pass

    def __call__(self, *args, **kwargs):
        raise RuntimeError(
            "Legacy autograd function with non-static forward method is deprecated. "
            "Please use new-style autograd function with static forward method. "
            "(Example: https://pytorch.org/docs/stable/autograd.html#torch.autograd.Function)"
        )

    @staticmethod
    def forward(*args: Any, **kwargs: Any) -> Any:
        """Override: computes the outputs from the inputs (with ``ctx`` first unless ``setup_context``
        is defined).
        https://pytorch.org/docs/stable/autograd.html#torch.autograd.Function.forward"""
        raise NotImplementedError(
            "You must implement the forward function for custom autograd.Function."
        )

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: Any) -> Any:
        """Override (optional): stores what ``backward`` needs on ``ctx`` from ``inputs`` and ``output``.
        https://pytorch.org/docs/stable/autograd.html#torch.autograd.Function.setup_context"""
        raise NotImplementedError("setup_context is not implemented.")

    @staticmethod
    def backward(ctx: Any, *grad_outputs: Any) -> Any:
        """Override: returns the gradient of each input from the gradients of the outputs (``vjp``
        is the same method).
        https://pytorch.org/docs/stable/autograd.html#torch.autograd.Function.backward"""
        raise NotImplementedError(
            "You must implement either the backward or vjp method for your custom autograd.Function "
            "to use it with backward mode AD."
        )

    vjp = backward

    @staticmethod
    def jvp(ctx: Any, *grad_inputs: Any) -> Any:
        """Forward-mode derivative: the tangents of the outputs given those of the inputs; to be
        defined by subclasses used under ``forward_ad``.
        https://pytorch.org/docs/stable/autograd.html#torch.autograd.Function.jvp"""
        raise NotImplementedError(
            "You must implement the jvp function for custom autograd.Function to use it with forward mode AD."
        )

    @staticmethod
    def vmap(info, in_dims, *args):
        """Batching rule for ``vmap``: not supported by rustgrad (raises NotImplementedError).
        https://pytorch.org/docs/stable/autograd.html#torch.autograd.Function.vmap"""
        raise NotImplementedError("vmap is not supported by rustgrad")

    @classmethod
    def apply(cls, *args, **kwargs):
        """Runs the function on ``args``, recording one backward node for its outputs.
        https://pytorch.org/docs/stable/autograd.html#torch.autograd.Function.apply"""
        uses_setup_context = cls.setup_context is not Function.setup_context
        if kwargs:
            if not uses_setup_context:
                raise RuntimeError(
                    "In order to use an autograd.Function with functorch transforms (vmap, grad, jvp, "
                    "jacrev, ...), it must override the setup_context staticmethod."
                )
            args = _bind_args(cls.forward, args, kwargs)
        ctx = cls._backward_cls()
        ctx._is_tensor = tuple(isinstance(a, Tensor) for a in args)
        ctx.needs_input_grad = tuple(t and a.requires_grad for t, a in zip(ctx._is_tensor, args))
        with no_grad():
            if uses_setup_context:
                outputs = cls.forward(*args)
                cls.setup_context(ctx, args, outputs)
            else:
                outputs = cls.forward(ctx, *args)
        outs = outputs if isinstance(outputs, tuple) else (outputs,)
        ctx._output_is_tensor = tuple(isinstance(o, Tensor) for o in outs)
        result = _rustgrad._function_apply(ctx, args, outputs)
        if _rustgrad._dual_level_open():
            _forward_tangents(cls, ctx, args, result)
        return result

    @staticmethod
    def _compiled_autograd_key(ctx):
        return (ctx._autograd_function_id,)


def _forward_tangents(cls: Any, ctx: Any, args: tuple, result: Any) -> None:
    """Under forward AD: gives the outputs the tangents ``cls.jvp`` computes from the inputs'
    (zeros for a tensor input without one, None for other arguments)."""
    from rustgrad import zeros_like

    tangents = [_rustgrad._unpack_dual(a)[1] if isinstance(a, Tensor) else None for a in args]
    if all(t is None for t in tangents):
        return
    tangents = [zeros_like(a) if isinstance(a, Tensor) and t is None else t for a, t in zip(args, tangents)]
    ctx._in_jvp = True
    try:
        produced = cls.jvp(ctx, *tangents)
    finally:
        ctx._in_jvp = False
    outs = result if isinstance(result, tuple) else (result,)
    produced = produced if isinstance(produced, tuple) else (produced,)
    if len(produced) != len(outs):
        raise RuntimeError(
            f"Function {cls.__name__}.jvp returned an incorrect number of forward gradients (expected {len(outs)}, "
            f"got {len(produced)})"
        )
    for out, tangent in zip(outs, produced):
        if isinstance(out, Tensor) and tangent is not None:
            _rustgrad._set_tangent(out, tangent)


def _bind_args(fn: Callable, args: tuple, kwargs: dict) -> tuple:
    import inspect

    bound = inspect.signature(fn).bind(*args, **kwargs)
    bound.apply_defaults()
    return tuple(bound.arguments.values())


class InplaceFunction(Function):
    """A Function with an ``inplace`` flag (kept for PyTorch compatibility)."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace


class NestedIOFunction(Function):
    """Legacy PyTorch class; not supported."""

    def __init__(self, *args, **kwargs):
        raise RuntimeError("NestedIOFunction is not supported by rustgrad")


def _function_backward(ctx: BackwardCFunction, grads: tuple) -> tuple:
    """Called by the engine with one gradient per tensor output: runs the user's backward
    (one gradient per output, ``None`` for non-tensors) and returns one per tensor input."""
    given = iter(grads)
    grads = tuple(next(given) if is_tensor else None for is_tensor in ctx._output_is_tensor)
    result = ctx.apply(*grads)
    if not isinstance(result, tuple):
        result = (result,)
    expected = len(ctx.needs_input_grad)
    name = type(ctx).__name__
    if len(result) > expected and all(g is None for g in result[expected:]):
        result = result[:expected]
    if len(result) != expected:
        raise RuntimeError(
            f"function {name} returned an incorrect number of gradients (expected {expected}, got {len(result)})"
        )
    for i, g in enumerate(result):
        if g is None:
            continue
        if not isinstance(g, Tensor):
            raise RuntimeError(f"expected Variable or None (got {type(g).__name__})")  # noqa: TRY004 - PyTorch raises RuntimeError
        if not ctx._is_tensor[i]:
            raise RuntimeError(
                f"function {name} returned a gradient different than None at position {i + 1}, "
                "but the corresponding forward input was not a Variable"
            )
    return tuple(g for g, is_tensor in zip(result, ctx._is_tensor) if is_tensor)


def once_differentiable(fn: Callable) -> Callable:
    """Decorates a ``backward`` that is not itself differentiable: it runs with grad mode off, and
    differentiating its result (``create_graph=True``) raises an error instead of being wrong."""

    @functools.wraps(fn)
    def wrapper(ctx, *args):
        with no_grad():
            outputs = fn(ctx, *args)
        if not _rustgrad.is_grad_enabled():
            return outputs
        requires_grad = any(isinstance(a, Tensor) and a.requires_grad for a in args)
        if not requires_grad:
            return outputs
        single = not isinstance(outputs, tuple)
        outs = (outputs,) if single else outputs
        positions = [i for i, o in enumerate(outs) if isinstance(o, Tensor)]
        if not positions:
            return outputs
        tracked_inputs = [a for a in args if isinstance(a, Tensor) and a.requires_grad]
        wrapped = _DelayedError.apply(len(positions), *[outs[i] for i in positions], *tracked_inputs)
        if not isinstance(wrapped, tuple):
            wrapped = (wrapped,)
        result = list(outs)
        for i, w in zip(positions, wrapped):
            result[i] = w
        return result[0] if single else tuple(result)

    return wrapper


class _DelayedError(Function):
    """Passes gradients through; its own backward raises (PyTorch's DelayedError node)."""

    @staticmethod
    def forward(ctx, n, *tensors):
        outs = tuple(t.clone() for t in tensors[:n])
        return outs[0] if n == 1 else outs

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError("trying to differentiate twice a function that was marked with @once_differentiable")
