"""``rustgrad.nn.functional``: PyTorch's ``torch.nn.functional`` for the covered layers and losses.

The fused ones (``linear``, ``gelu``, ``mse_loss``, ``nll_loss``, the binary cross entropies)
record PyTorch's single backward node from the Rust core; the others are compositions of tensor
ops, as they are in PyTorch.
"""

from __future__ import annotations

import warnings

from rustgrad import _rustgrad
from rustgrad._args import (
    check_attribute,
    check_optional_tensor,
    check_tensor,
    number_arg,
    scalar_type_name,
    strict_bool_arg,
)
from rustgrad._rustgrad import Tensor
from rustgrad.nn import _layer_functional
from rustgrad.nn._layer_functional import *

__all__ = _layer_functional.__all__ + [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "dropout",
    "gelu",
    "huber_loss",
    "l1_loss",
    "leaky_relu",
    "linear",
    "log_softmax",
    "logsigmoid",
    "mse_loss",
    "nll_loss",
    "one_hot",
    "relu",
    "sigmoid",
    "silu",
    "softmax",
    "smooth_l1_loss",
    "softplus",
    "tanh",
]


def _reduction(size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    """PyTorch's legacy ``size_average``/``reduce`` arguments, folded into ``reduction``."""
    if size_average is None and reduce is None:
        if reduction not in ("none", "mean", "sum") if isinstance(reduction, str) else True:
            raise ValueError(f"{reduction} is not a valid value for reduction")
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    warnings.warn(
        "size_average and reduce args will be deprecated, please use reduction='"
        + ("none" if not reduce else "mean" if size_average else "sum")
        + "' instead.",
        stacklevel=3,
    )
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``input @ weight.T + bias`` (``AddmmBackward0`` on 2-D input)."""
    check_tensor("linear", input)
    check_tensor("linear", weight, "weight", 2)
    check_optional_tensor("linear", bias, "bias", 3)
    if bias is not None and input.dim() == 2 and input.dtype == weight.dtype and bias.dtype != weight.dtype:
        # 2-D input is PyTorch's addmm(bias, input, weight.T), which checks the bias against the weight.
        raise RuntimeError(
            f"self and mat2 must have the same dtype, but got {scalar_type_name(bias.dtype)} and "
            f"{scalar_type_name(weight.dtype)}"
        )
    return _rustgrad._linear(input, weight, bias)


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """Element-wise ``max(x, 0)``; ``inplace=True`` overwrites ``input``.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.relu.html"""
    check_tensor("relu", input)
    return input.relu_() if inplace else input.relu()


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit; ``approximate='tanh'`` uses the tanh approximation.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.gelu.html"""
    check_tensor("gelu", input)
    return _rustgrad._gelu(input, approximate)


def tanh(input: Tensor) -> Tensor:
    """Element-wise hyperbolic tangent.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.tanh.html"""
    check_attribute(input, "tanh")
    return input.tanh()


def sigmoid(input: Tensor) -> Tensor:
    """Element-wise logistic sigmoid ``1 / (1 + exp(-x))``.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.sigmoid.html"""
    check_attribute(input, "sigmoid")
    return input.sigmoid()


def _require_float(input: Tensor, kernel: str) -> None:
    """Raises PyTorch's ``NotImplementedError`` for a kernel that has no integer/bool version."""
    if isinstance(input, Tensor) and not input.is_floating_point():
        raise NotImplementedError(f"\"{kernel}\" not implemented for '{scalar_type_name(input.dtype)}'")


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * sigmoid(x)`` (``SiluBackward0``)."""
    check_tensor("silu", input)
    _require_float(input, "silu_cpu")
    out = _rustgrad._silu(input)
    return input.copy_(out) if inplace else out


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """``x`` where positive, else ``negative_slope * x`` (``LeakyReluBackward0``)."""
    check_tensor("leaky_relu", input)
    negative_slope = number_arg("leaky_relu", negative_slope, "negative_slope", 2)
    _require_float(input, "leaky_relu_cpu")
    out = _rustgrad._leaky_relu(input, float(negative_slope))
    return input.copy_(out) if inplace else out


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """``log(1 + exp(beta * x)) / beta``, and ``x`` above ``threshold`` (``SoftplusBackward0``)."""
    check_tensor("softplus", input)
    if isinstance(beta, Tensor):
        raise TypeError("softplus(): argument 'beta' must be Number, not Tensor")
    if isinstance(threshold, Tensor):
        raise TypeError("softplus(): argument 'threshold' must be Number, not Tensor")
    _require_float(input, "softplus_cpu")
    return _rustgrad._softplus(input, float(beta), float(threshold))


def logsigmoid(input: Tensor) -> Tensor:
    """``log(sigmoid(x))``, computed stably (``LogSigmoidBackward0``)."""
    check_tensor("log_sigmoid", input)
    _require_float(input, "log_sigmoid_cpu")
    return _rustgrad._logsigmoid(input)


def _softmax_dim(name: str, ndim: int, stacklevel: int) -> int:
    warnings.warn(
        f"Implicit dimension choice for {name} has been deprecated. "
        "Change the call to include dim=X as an argument.",
        stacklevel=stacklevel,
    )
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """Softmax along ``dim`` (values in (0, 1) summing to one); ``dtype`` casts the input first.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.softmax.html"""
    check_attribute(input, "softmax" if dim is not None else "dim")
    if dim is None:
        dim = _softmax_dim("softmax", input.dim(), _stacklevel)
    return input.softmax(dim, dtype=dtype)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """Logarithm of the softmax along ``dim``, computed stably; ``dtype`` casts the input first.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.log_softmax.html"""
    check_attribute(input, "log_softmax" if dim is not None else "dim")
    if dim is None:
        dim = _softmax_dim("log_softmax", input.dim(), _stacklevel)
    return input.log_softmax(dim, dtype=dtype)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zeroes each element with probability ``p`` and scales the rest by ``1/(1-p)``."""
    check_tensor("dropout", input)
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    p = number_arg("dropout", p, "p", 2)
    training = strict_bool_arg("dropout", training, "train", 3)
    if not training or p == 0.0 or input.numel() == 0:
        return input
    zero = _rustgrad._full([], 0, input.dtype)
    if p == 1.0:
        return input.mul_(zero) if inplace else input * zero
    if not input.is_floating_point():
        # PyTorch draws the mask before the scaling fails: the generator moves on all the same.
        _rustgrad._full(list(input.shape), 0.0, _rustgrad.float32).bernoulli_(1 - p)
        raise RuntimeError(
            f"result type Float can't be cast to the desired output type {scalar_type_name(input.dtype)}"
        )
    noise = _bernoulli_like_layout(input, 1 - p)
    noise.div_(1 - p)
    return input.mul_(noise) if inplace else input * noise


def _bernoulli_like_layout(input: Tensor, p: float) -> Tensor:
    """Bernoulli(``p``) draws of ``input``'s shape, drawn in ``input``'s memory order as PyTorch
    draws them into its ``empty_like(input)`` (a transposed input gets a transposed mask)."""
    strides = input.stride()
    expanded = any(s == 0 and n > 1 for s, n in zip(strides, input.shape))
    if input.is_contiguous() or expanded:
        return _rustgrad._full(list(input.shape), 0.0, input.dtype).bernoulli_(p)
    order = sorted(range(input.dim()), key=lambda d: -strides[d])
    laid = _rustgrad._full([input.shape[d] for d in order], 0.0, input.dtype).bernoulli_(p)
    return laid.permute(*[order.index(d) for d in range(input.dim())])


def mse_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """Mean squared error between ``input`` and ``target``; ``reduction`` is 'mean', 'sum' or 'none'.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.mse_loss.html"""
    check_attribute(target, "size")
    check_attribute(input, "size")
    check_tensor("mse_loss", input)
    check_tensor("mse_loss", target, "target", 2)
    if target.shape != input.shape:
        warnings.warn(
            f"Using a target size ({target.shape}) that is different to the input size ({input.shape}). "
            "This will likely lead to incorrect results due to broadcasting. "
            "Please ensure they have the same size.",
            stacklevel=2,
        )
    reduction = _reduction(size_average, reduce, reduction)
    if target.shape != input.shape:
        # Broadcast first, as PyTorch does (a 0-d float64 operand then promotes the loss).
        input, target = _broadcast_pair(input, target)
    if weight is not None:
        per = (input - target) ** 2 * weight
        return per if reduction == "none" else per.sum() if reduction == "sum" else per.mean()
    input, target = _rustgrad._autocast_fp32(input, target)  # on CPU autocast's float32 list
    return _rustgrad._mse_loss(input, target, reduction)


def _broadcast_pair(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """``a`` and ``b`` expanded to their common shape (PyTorch's ``broadcast_tensors``)."""
    sa, sb = list(a.shape), list(b.shape)
    n = max(len(sa), len(sb))
    sa, sb = [1] * (n - len(sa)) + sa, [1] * (n - len(sb)) + sb
    shape = []
    for i, (x, y) in enumerate(zip(sa, sb)):
        if x != y and x != 1 and y != 1:
            raise RuntimeError(
                f"The size of tensor a ({x}) must match the size of tensor b ({y}) at non-singleton dimension {i}"
            )
        shape.append(y if x == 1 else x)
    # An operand already of the common shape is passed as is (no ExpandBackward0), as PyTorch does.
    return (a if list(a.shape) == shape else a.expand(*shape)), (b if list(b.shape) == shape else b.expand(*shape))


def l1_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Mean absolute error between ``input`` and ``target``; ``reduction`` is 'mean', 'sum' or 'none'.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.l1_loss.html"""
    check_attribute(target, "size")
    check_attribute(input, "size")
    check_tensor("l1_loss", input)
    check_tensor("l1_loss", target, "target", 2)
    if target.shape != input.shape:
        warnings.warn(
            f"Using a target size ({target.shape}) that is different to the input size ({input.shape}). "
            "This will likely lead to incorrect results due to broadcasting. "
            "Please ensure they have the same size.",
            stacklevel=2,
        )
    reduction = _reduction(size_average, reduce, reduction)
    if target.shape != input.shape:
        # Broadcast first, as PyTorch does: a 0-d target then counts as a full operand in type
        # promotion (float32 input, float64 0-d target: a float64 loss).
        input, target = _broadcast_pair(input, target)
    input, target = _rustgrad._autocast_fp32(input, target)  # on CPU autocast's float32 list
    per = (input - target).abs()
    if reduction == "none":
        return per
    if reduction == "sum":
        return per.sum()
    if reduction == "mean":
        return per.mean()
    raise ValueError(f"{reduction} is not a valid value for reduction")


def _move_classes_last(input: Tensor, target: Tensor):
    """``[N, C, d1, ...]`` input and ``[N, d1, ...]`` target as ``[M, C]`` and ``[M]``."""
    nd = input.dim()
    order = [0, *range(2, nd), 1]
    return input.permute(*order).reshape(-1, input.shape[1]), target.reshape(-1)


def _check_nll_target(input: Tensor, target: Tensor) -> Tensor:
    """PyTorch's checks of a class-index target, in its order; returns the target a 1-D input's
    one-element target is read as (0-d)."""
    nd = input.dim()
    if nd < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {nd})")
    batch = target.shape[0] if target.dim() > 0 else 0
    if nd > 1 and batch != input.shape[0]:
        raise ValueError(
            f"Expected input batch_size ({input.shape[0]}) to match target batch_size ({batch})."
        )
    if nd <= 2:
        if target.dim() > 1:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
    elif list(target.shape) != [input.shape[0], *input.shape[2:]]:
        expected = [input.shape[0], *input.shape[2:]]
        raise RuntimeError(f"Expected target size {expected}, got {list(target.shape)}")
    if target.dtype != _rustgrad.int64:
        raise RuntimeError(f"expected target dtype to be Long or Byte, but got {scalar_type_name(target.dtype)}")
    if nd == 1 and target.dim() == 1:
        if target.shape[0] != 1:
            raise ValueError(
                f"For 1D input, 1D target must have size 1, but got target size: {target.shape[0]}"
            )
        target = target.reshape(())
    return target


def nll_loss(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """The negative log-likelihood of the class indices ``target`` under log-probabilities ``input``."""
    check_tensor("nll_loss_nd", input)
    check_tensor("nll_loss_nd", target, "target", 2)
    check_optional_tensor("nll_loss", weight, "weight", 3)
    input, target, weight = _rustgrad._autocast_fp32(input, target, weight)  # CPU autocast's float32 list
    reduction = _reduction(size_average, reduce, reduction)
    target = _check_nll_target(input, target)
    if input.dim() > 2:
        flat_input, flat_target = _move_classes_last(input, target)
        out = _rustgrad._nll_loss(flat_input, flat_target, weight, reduction, ignore_index, True)
        return out.reshape(target.shape) if reduction == "none" else out
    return _rustgrad._nll_loss(input, target, weight, reduction, ignore_index)


def cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """``nll_loss(log_softmax(input, 1), target)`` for class indices; soft targets (probabilities
    of the same shape as ``input``) are also accepted."""
    check_tensor("cross_entropy_loss", input)
    check_tensor("cross_entropy_loss", target, "target", 2)
    check_optional_tensor("cross_entropy_loss", weight, "weight", 3)
    input, target, weight = _rustgrad._autocast_fp32(input, target, weight)  # CPU autocast's float32 list
    reduction = _reduction(size_average, reduce, reduction)
    if label_smoothing > 1.0:  # as PyTorch, only the upper bound is checked (NaN passes)
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing:g}")
    class_dim = 0 if input.dim() == 1 else 1
    if target.shape == input.shape:  # class probabilities
        if not target.is_floating_point():
            raise RuntimeError(
                "Expected floating point type for target with class probabilities, got "
                + scalar_type_name(target.dtype)
            )
        if input.dim() == 0:
            raise IndexError("Dimension specified as 1 but tensor has no dimensions")
        logp = input.log_softmax(class_dim)
        n_classes = input.shape[class_dim]
        return _soft_target_cross_entropy(
            logp, target, weight, reduction, label_smoothing, class_dim, n_classes
        )
    logp = input.log_softmax(class_dim)
    n_classes = input.shape[class_dim]
    target = _check_nll_target(logp, target)
    loss = nll_loss(logp, target, weight, ignore_index=ignore_index, reduction=reduction)
    if not label_smoothing > 0.0:  # as PyTorch: a negative or NaN smoothing is no smoothing
        return loss
    if weight is not None:
        shape = [1] * logp.dim()
        shape[class_dim] = n_classes
        smooth = -(logp * weight.reshape(shape)).sum(class_dim)
    else:
        smooth = -logp.sum(class_dim)
    ignored = target == ignore_index
    smooth = smooth.masked_fill(ignored, 0.0)
    if reduction == "mean":
        kept = target != ignore_index
        if weight is not None:
            smooth = smooth.sum() / weight[target[kept]].sum()
        else:
            smooth = smooth.sum() / kept.sum()
    elif reduction == "sum":
        smooth = smooth.sum()
    return (1 - label_smoothing) * loss + smooth * (label_smoothing / n_classes)


def _soft_target_cross_entropy(logp, target, weight, reduction, label_smoothing, class_dim, n_classes):
    if target.shape != logp.shape:
        raise RuntimeError(f"Expected target size {tuple(logp.shape)}, got {tuple(target.shape)}")
    if label_smoothing > 0:
        target = target * (1 - label_smoothing) + label_smoothing / n_classes
    per = logp * target
    if weight is not None:
        shape = [1] * logp.dim()
        shape[class_dim] = n_classes
        per = per * weight.reshape(shape)
    # PyTorch's order of operations (and so its nodes): the sum, then the negation
    # (NegBackward0), then the division by the element count for the mean (DivBackward1).
    if reduction == "none":
        return -per.sum(class_dim)
    loss = -per.sum()
    if reduction == "sum":
        return loss
    n = logp.numel() // n_classes if logp.dim() > 1 else 1
    return _rustgrad._div_number(loss, float(n))


def _check_not_differentiable(fn: str, **args: Tensor | None) -> None:
    """PyTorch's refusal of a gradient it has no formula for (the weights of the BCE losses)."""
    from rustgrad import is_grad_enabled

    for name, t in args.items():
        if t is not None and t.requires_grad and is_grad_enabled():
            raise RuntimeError(
                f"The function '{fn}' is not differentiable with respect to argument '{name}'. "
                "This input cannot have requires_grad True."
            )


def binary_cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Binary cross entropy between probabilities ``input`` and ``target`` (same shape), optionally
    weighted per element; ``reduction`` is 'mean', 'sum' or 'none'.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.binary_cross_entropy.html"""
    check_attribute(target, "size")
    check_attribute(input, "size")
    check_tensor("binary_cross_entropy", input)
    check_tensor("binary_cross_entropy", target, "target", 2)
    reduction = _reduction(size_average, reduce, reduction)
    if target.shape != input.shape:
        raise ValueError(
            f"Using a target size ({target.shape}) that is different to the input size ({input.shape}) "
            "is deprecated. Please ensure they have the same size."
        )
    if weight is not None:
        check_attribute(weight, "size")
        check_optional_tensor("binary_cross_entropy", weight, "weight", 3)
    _check_not_differentiable("binary_cross_entropy", weight=weight)
    input, target, weight = _rustgrad._autocast_fp32(input, target, weight)  # CPU autocast's float32 list
    if target.dtype != input.dtype:
        raise RuntimeError(
            f"Found dtype {scalar_type_name(target.dtype)} but expected {scalar_type_name(input.dtype)}"
        )
    if weight is not None and weight.shape != input.shape:
        weight = weight.expand(*input.shape)
    return _rustgrad._binary_cross_entropy(input, target, weight, reduction)


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    pos_weight: Tensor | None = None,
) -> Tensor:
    """Binary cross entropy on logits (a sigmoid fused in, numerically stable); ``weight``
    scales each element and ``pos_weight`` the positive term.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.binary_cross_entropy_with_logits.html"""
    check_attribute(target, "size")
    check_attribute(input, "size")
    check_tensor("binary_cross_entropy_with_logits", input)
    check_tensor("binary_cross_entropy_with_logits", target, "target", 2)
    check_optional_tensor("binary_cross_entropy_with_logits", weight, "weight", 3)
    check_optional_tensor("binary_cross_entropy_with_logits", pos_weight, "pos_weight", 4)
    reduction = _reduction(size_average, reduce, reduction)
    if target.shape != input.shape:
        raise ValueError(f"Target size ({target.shape}) must be the same as input size ({input.shape})")
    _check_not_differentiable("binary_cross_entropy_with_logits", weight=weight, pos_weight=pos_weight)
    input, target, weight, pos_weight = _rustgrad._autocast_fp32(input, target, weight, pos_weight)
    return _rustgrad._binary_cross_entropy_with_logits(input, target, weight, pos_weight, reduction)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """Class indices as one-hot int64 vectors along a new last dim."""
    check_tensor("one_hot", tensor)
    if tensor.dtype != _rustgrad.int64:
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    if isinstance(num_classes, (bool, Tensor)) or not hasattr(type(num_classes), "__index__"):
        raise TypeError(
            f"one_hot(): argument 'num_classes' (position 2) must be int, not {type(num_classes).__name__}"
        )
    num_classes = num_classes.__index__()
    if tensor.numel():
        if int(tensor.min()) < 0:
            raise RuntimeError("Class values must be non-negative.")
        largest = int(tensor.max())
        if num_classes == -1:
            num_classes = largest + 1
        elif largest >= num_classes:
            raise RuntimeError("Class values must be smaller than num_classes.")
    elif num_classes == -1:
        raise RuntimeError("Can not infer total number of classes from empty tensor.")
    elif num_classes < 0:
        raise RuntimeError("Class values must be smaller than num_classes.")
    zeros = _rustgrad._full([*tensor.shape, num_classes], 0, _rustgrad.int64)
    return zeros.scatter(-1, tensor.unsqueeze(-1), 1)


def _robust_loss(fn: str, kind: str, input, target, param: float, size_average, reduce, reduction, weight=None):
    check_tensor(fn, input)
    check_tensor(fn, target, "target", 2)
    if target.shape != input.shape:
        warnings.warn(
            f"Using a target size ({target.shape}) that is different to the input size ({input.shape}). "
            "This will likely lead to incorrect results due to broadcasting. "
            "Please ensure they have the same size.",
            stacklevel=3,
        )
    reduction = _reduction(size_average, reduce, reduction)
    if target.shape != input.shape:
        input, target = _broadcast_pair(input, target)
    if weight is not None:
        per = _rustgrad._robust_loss(input, target, kind, float(param), "none") * weight
        return per if reduction == "none" else per.sum() if reduction == "sum" else per.mean()
    return _rustgrad._robust_loss(input, target, kind, float(param), reduction)


def smooth_l1_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    beta: float = 1.0,
) -> Tensor:
    """Quadratic below ``beta``, linear above it (``SmoothL1LossBackward0``).
    https://pytorch.org/docs/stable/generated/torch.nn.functional.smooth_l1_loss.html"""
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    if beta == 0.0:
        return l1_loss(input, target, size_average, reduce, reduction)
    return _robust_loss("smooth_l1_loss", "smooth_l1", input, target, beta, size_average, reduce, reduction)


def huber_loss(
    input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0, weight: Tensor | None = None
) -> Tensor:
    """Quadratic below ``delta``, ``delta``-scaled linear above it (``HuberLossBackward0``).
    https://pytorch.org/docs/stable/generated/torch.nn.functional.huber_loss.html"""
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    return _robust_loss("huber_loss", "huber", input, target, delta, None, None, reduction, weight)
