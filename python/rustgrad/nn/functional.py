"""``rustgrad.nn.functional``: PyTorch's ``torch.nn.functional`` for the covered layers and losses.

The fused ones (``linear``, ``gelu``, ``mse_loss``, ``nll_loss``, the binary cross entropies)
record PyTorch's single backward node from the Rust core; the others are compositions of tensor
ops, as they are in PyTorch.
"""

from __future__ import annotations

import math
import warnings

import rustgrad
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
from rustgrad.func._batched import BatchedTensor as _Batched
from rustgrad.func._batched import call as _vmap_call
from rustgrad.nn import _attention
from rustgrad.nn._attention import multi_head_attention_forward
from rustgrad.nn._layer_functional import (
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_avg_pool3d,
    adaptive_max_pool1d,
    adaptive_max_pool2d,
    adaptive_max_pool3d,
    avg_pool1d,
    avg_pool2d,
    avg_pool3d,
    batch_norm,
    celu,
    conv1d,
    conv2d,
    conv3d,
    conv_transpose1d,
    conv_transpose2d,
    conv_transpose3d,
    elu,
    embedding,
    fold,
    group_norm,
    hardshrink,
    hardsigmoid,
    hardswish,
    hardtanh,
    instance_norm,
    layer_norm,
    local_response_norm,
    max_pool1d,
    max_pool2d,
    max_pool3d,
    max_unpool1d,
    max_unpool2d,
    max_unpool3d,
    mish,
    pad,
    relu6,
    rms_norm,
    scaled_dot_product_attention,
    selu,
    softshrink,
    threshold,
    unfold,
)
from rustgrad.nn._named_functional import (
    channel_shuffle,
    embedding_bag,
    glu,
    interpolate,
    multi_margin_loss,
    multilabel_margin_loss,
    pixel_shuffle,
    pixel_unshuffle,
    prelu,
    rrelu,
    rrelu_,
    soft_margin_loss,
    upsample,
    upsample_bilinear,
    upsample_nearest,
)

__all__ = [
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "adaptive_max_pool3d",
    "alpha_dropout",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "batch_norm",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "celu",
    "channel_shuffle",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "cosine_embedding_loss",
    "cosine_similarity",
    "cross_entropy",
    "dropout",
    "dropout1d",
    "dropout2d",
    "dropout3d",
    "elu",
    "embedding",
    "embedding_bag",
    "feature_alpha_dropout",
    "fold",
    "gaussian_nll_loss",
    "gelu",
    "glu",
    "group_norm",
    "gumbel_softmax",
    "hardshrink",
    "hardsigmoid",
    "hardswish",
    "hardtanh",
    "hinge_embedding_loss",
    "huber_loss",
    "instance_norm",
    "interpolate",
    "kl_div",
    "l1_loss",
    "layer_norm",
    "leaky_relu",
    "linear",
    "local_response_norm",
    "log_softmax",
    "logsigmoid",
    "margin_ranking_loss",
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "max_unpool1d",
    "max_unpool2d",
    "max_unpool3d",
    "mish",
    "mse_loss",
    "multi_head_attention_forward",
    "multi_margin_loss",
    "multilabel_margin_loss",
    "multilabel_soft_margin_loss",
    "nll_loss",
    "normalize",
    "one_hot",
    "pad",
    "pairwise_distance",
    "pixel_shuffle",
    "pixel_unshuffle",
    "poisson_nll_loss",
    "prelu",
    "relu",
    "relu6",
    "rms_norm",
    "rrelu",
    "rrelu_",
    "scaled_dot_product_attention",
    "selu",
    "sigmoid",
    "silu",
    "smooth_l1_loss",
    "soft_margin_loss",
    "softmax",
    "softmin",
    "softplus",
    "softshrink",
    "softsign",
    "tanh",
    "tanhshrink",
    "threshold",
    "triplet_margin_loss",
    "triplet_margin_with_distance_loss",
    "unfold",
    "upsample",
    "upsample_bilinear",
    "upsample_nearest",
]

# the mask helpers the attention modules call as F._canonical_mask / F._none_or_dtype, as in PyTorch
_canonical_mask = _attention._canonical_mask
_none_or_dtype = _attention._none_or_dtype


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
    if type(input) is _Batched or type(weight) is _Batched:
        return _vmap_call("linear", linear, input, weight, bias)
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
    if type(input) is _Batched:
        return _vmap_call("gelu", gelu, input, approximate)
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
    if type(input) is _Batched:
        return _vmap_call("silu", silu, input, inplace)
    check_tensor("silu", input)
    _require_float(input, "silu_cpu")
    out = _rustgrad._silu(input)
    return input.copy_(out) if inplace else out


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """``x`` where positive, else ``negative_slope * x`` (``LeakyReluBackward0``)."""
    if type(input) is _Batched:
        return _vmap_call("leaky_relu", leaky_relu, input, negative_slope, inplace)
    check_tensor("leaky_relu", input)
    negative_slope = number_arg("leaky_relu", negative_slope, "negative_slope", 2)
    _require_float(input, "leaky_relu_cpu")
    out = _rustgrad._leaky_relu(input, float(negative_slope))
    return input.copy_(out) if inplace else out


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """``log(1 + exp(beta * x)) / beta``, and ``x`` above ``threshold`` (``SoftplusBackward0``)."""
    if type(input) is _Batched:
        return _vmap_call("softplus", softplus, input, beta, threshold)
    check_tensor("softplus", input)
    if isinstance(beta, Tensor):
        raise TypeError("softplus(): argument 'beta' must be Number, not Tensor")
    if isinstance(threshold, Tensor):
        raise TypeError("softplus(): argument 'threshold' must be Number, not Tensor")
    _require_float(input, "softplus_cpu")
    return _rustgrad._softplus(input, float(beta), float(threshold))


def logsigmoid(input: Tensor) -> Tensor:
    """``log(sigmoid(x))``, computed stably (``LogSigmoidBackward0``)."""
    if type(input) is _Batched:
        return _vmap_call("logsigmoid", logsigmoid, input)
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
    if type(input) is _Batched:
        return _vmap_call("dropout", dropout, input, p, training, inplace)
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
    if type(input) is _Batched or type(weight) is _Batched or type(target) is _Batched:
        return _vmap_call("mse_loss", mse_loss, input, target, size_average, reduce, reduction, weight)
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
    if type(input) is _Batched or type(target) is _Batched:
        return _vmap_call("l1_loss", l1_loss, input, target, size_average, reduce, reduction)
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
    if type(input) is _Batched or type(weight) is _Batched or type(target) is _Batched:
        return _vmap_call("nll_loss", nll_loss, input, target, weight, size_average, ignore_index, reduce, reduction)
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
    if type(input) is _Batched or type(weight) is _Batched or type(target) is _Batched:
        return _vmap_call("cross_entropy", cross_entropy, input, target, weight, size_average, ignore_index, reduce, reduction, label_smoothing)
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
    if type(input) is _Batched or type(weight) is _Batched or type(target) is _Batched:
        return _vmap_call("binary_cross_entropy", binary_cross_entropy, input, target, weight, size_average, reduce, reduction)
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
    if type(input) is _Batched or type(weight) is _Batched or type(target) is _Batched:
        return _vmap_call("binary_cross_entropy_with_logits", binary_cross_entropy_with_logits, input, target, weight, size_average, reduce, reduction, pos_weight)
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


# ----- composite functions: PyTorch builds these from other ops, and so does rustgrad -----


def _legacy_reduction(size_average: bool | None, reduce: bool | None, stacklevel: int = 4) -> str:
    """PyTorch's ``_Reduction.legacy_get_string``: the reduction the deprecated flags mean, with its
    warning."""
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    reduction = "mean" if size_average and reduce else "sum" if reduce else "none"
    warnings.warn(
        f"size_average and reduce args will be deprecated, please use reduction='{reduction}' instead.",
        stacklevel=stacklevel,
    )
    return reduction


def _reduction_enum(size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    """PyTorch's ``_Reduction.get_enum``/``legacy_get_enum``, as the reduction's name: the legacy flags
    win, ``'elementwise_mean'`` is a deprecated ``'mean'``, anything else unknown is a ValueError."""
    if size_average is not None or reduce is not None:
        return _legacy_reduction(size_average, reduce, stacklevel=4)
    if reduction == "elementwise_mean":
        warnings.warn(
            "reduction='elementwise_mean' is deprecated. Please use reduction='mean' instead.", stacklevel=4
        )
        return "mean"
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


def _apply_reduction(loss: Tensor, reduction: str) -> Tensor:
    """``loss.mean()``, ``loss.sum()`` or ``loss`` itself (ATen's ``apply_loss_reduction``)."""
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _scalar_minus(value: float, t: Tensor) -> Tensor:
    """``value - t`` as ATen's C++ ``Scalar - Tensor`` computes it: a tensor filled with ``value`` in
    ``t``'s dtype, minus ``t`` (``SubBackward0``, where Python's ``value - t`` records ``RsubBackward1``)."""
    return _rustgrad._full(list(t.shape), value, t.dtype) - t


def _is_integral(t: Tensor) -> bool:
    return not t.is_floating_point()  # (rustgrad has no complex dtypes)


def softsign(input: Tensor) -> Tensor:
    """Element-wise ``x / (1 + |x|)``.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.softsign.html"""
    check_attribute(input, "abs")
    return input / (input.abs() + 1)


def tanhshrink(input: Tensor) -> Tensor:
    """Element-wise ``x - tanh(x)``.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.tanhshrink.html"""
    check_attribute(input, "tanh")
    return input - input.tanh()


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """``softmax(-input)`` along ``dim``; ``dtype`` casts the input first.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.softmin.html"""
    if dim is None:
        check_attribute(input, "dim")
        dim = _softmax_dim("softmin", input.dim(), _stacklevel)
    if dtype is None:
        return (-input).softmax(dim)
    return (-input).softmax(dim, dtype=dtype)


def normalize(input: Tensor, p: float = 2.0, dim=1, eps: float = 1e-12, out: Tensor | None = None) -> Tensor:
    """Divides ``input`` by its ``p``-norm along ``dim`` (at least ``eps``): ``v / max(||v||_p, eps)``.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.normalize.html"""
    check_attribute(input, "norm")
    if out is None:
        denom = input.norm(p, dim, keepdim=True).clamp_min(eps).expand_as(input)
        return input / denom
    check_optional_tensor("div", out, "out", 3)
    if rustgrad.is_grad_enabled() and input.requires_grad:
        raise RuntimeError(
            "div(): functions with out=... arguments don't support automatic differentiation, "
            "but one of the arguments requires grad."
        )
    denom = input.norm(p, dim, keepdim=True).clamp_min(eps).expand_as(input)
    result = input / denom
    if list(out.shape) != list(result.shape):
        out.data = _rustgrad._full(list(result.shape), 0, out.dtype)
    return out.copy_(result)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """Cosine of the angle between ``x1`` and ``x2`` along ``dim`` (broadcast together); each norm is
    clamped to at least ``eps``.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.cosine_similarity.html"""
    check_tensor("cosine_similarity", x1, "x1", 1)
    check_tensor("cosine_similarity", x2, "x2", 2)
    common = _rustgrad._result_type(x1, x2)
    if not common.is_floating_point:
        raise RuntimeError(
            f"expected common dtype to be floating point, yet common dtype is {scalar_type_name(common)}"
        )
    # Integer (and bool) operands are converted; floating ones keep their dtype (the norms are
    # taken in it, the products promote).
    x1 = x1.to(common) if _is_integral(x1) else x1
    x2 = x2.to(common) if _is_integral(x2) else x2
    if x1.shape != x2.shape:
        # ATen's expand_outplace: both operands are expanded (an ExpandBackward0 each), even the
        # one that already has the common shape.
        a, b = _broadcast_pair(x1, x2)
        x1, x2 = x1.expand(*a.shape), x2.expand(*b.shape)
    # The norms are clamped in place without recording it, as PyTorch does: the gradient flows as
    # if they were not clamped (the clones keep the norms' own saved results intact).
    n1 = rustgrad.linalg.vector_norm(x1, 2, dim, True).clone()
    n2 = rustgrad.linalg.vector_norm(x2, 2, dim, True).clone()
    with rustgrad.no_grad():
        n1.clamp_(min=eps)
        n2.clamp_(min=eps)
    return ((x1 / n1) * (x2 / n2)).sum(dim)


def pairwise_distance(
    x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False
) -> Tensor:
    """The ``p``-norm of ``x1 - x2 + eps`` along the last dimension.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.pairwise_distance.html"""
    check_tensor("pairwise_distance", x1, "x1", 1)
    check_tensor("pairwise_distance", x2, "x2", 2)
    return _rustgrad._pairwise_distance(x1, x2, float(p), float(eps), bool(keepdim))


def kl_div(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    log_target: bool = False,
) -> Tensor:
    """Kullback-Leibler divergence of ``target`` from ``input`` (log-probabilities): pointwise
    ``target * (log(target) - input)``; ``log_target=True`` takes ``target`` as log-probabilities too.
    ``reduction='batchmean'`` divides the sum by the batch size (the true KL divergence).
    https://pytorch.org/docs/stable/generated/torch.nn.functional.kl_div.html"""
    if size_average is not None or reduce is not None:
        enum = _legacy_reduction(size_average, reduce, stacklevel=3)
    else:
        if reduction == "mean":
            warnings.warn(
                "reduction: 'mean' divides the total loss by both the batch size and the support size."
                "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
                "'mean' will be changed to behave the same as 'batchmean' in the next major release.",
                stacklevel=2,
            )
        enum = "sum" if reduction == "batchmean" else _reduction_enum(None, None, reduction)
    check_tensor("kl_div", input)
    check_tensor("kl_div", target, "target", 2)
    if _is_integral(input) or _is_integral(target):
        raise RuntimeError("kl_div: Integral inputs not supported.")
    if log_target:
        per = target.exp() * (target - input)
    else:
        cross = target * input
        # xlogy(target, target): 0 where the target is 0.
        zero = _rustgrad._full([], 0, target.dtype)
        entropy = _rustgrad.where(target == 0, zero, target * target.log())
        per = entropy - cross
    out = _apply_reduction(per, enum)
    if reduction == "batchmean" and input.dim() != 0:
        out = out / input.shape[0]
    return out


def poisson_nll_loss(
    input: Tensor,
    target: Tensor,
    log_input: bool = True,
    full: bool = False,
    size_average: bool | None = None,
    eps: float = 1e-8,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Negative log likelihood of ``target`` under a Poisson distribution of mean ``exp(input)``
    (``log_input=True``) or ``input``; ``full`` adds Stirling's term.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.poisson_nll_loss.html"""
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce, stacklevel=3)
    if reduction != "none" and reduction != "mean" and reduction != "sum":
        raise ValueError(reduction + " is not a valid value for reduction")
    check_tensor("poisson_nll_loss", input)
    check_tensor("poisson_nll_loss", target, "target", 2)
    if log_input:
        loss = input.exp() - target * input
    else:
        loss = input - target * _rustgrad._scalar_op(input, eps, "add").log()
    if full:
        log_term = _rustgrad._scalar_op(_rustgrad._scalar_op(target, 2 * math.pi, "mul").log(), 0.5, "mul")
        stirling = target * target.log() - target + log_term
        loss = loss + stirling.masked_fill(target <= 1, 0)
    return _apply_reduction(loss, reduction)


def gaussian_nll_loss(
    input: Tensor,
    target: Tensor,
    var,
    full: bool = False,
    eps: float = 1e-6,
    reduction: str = "mean",
) -> Tensor:
    """Negative log likelihood of ``target`` under Gaussians of mean ``input`` and variance ``var``
    (per element, one per row with the last dimension dropped or of size 1, or a float);
    ``var`` is clamped to at least ``eps`` without affecting its gradient.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.gaussian_nll_loss.html"""
    if isinstance(var, float):
        if var < 0:
            raise ValueError("var has negative entry/entries")
        var = var * _rustgrad._full(list(input.shape), 1, input.dtype)
    elif rustgrad.any(var < 0):
        raise ValueError("var has negative entry/entries")
    if var.size() != input.size():
        if input.size()[:-1] == var.size():
            var = var.unsqueeze(-1)
        elif input.dim() == var.dim() and sum(y for x, y in zip(input.size(), var.size()) if x != y) == 1:
            pass  # a size-1 dimension broadcast against the input's
        else:
            raise ValueError("var is of incorrect size")
    if reduction != "none" and reduction != "mean" and reduction != "sum":
        raise ValueError(reduction + " is not valid")
    var = var.clone()
    with rustgrad.no_grad():
        var.clamp_(min=eps)
    loss = 0.5 * (var.log() + (input - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _apply_reduction(loss, reduction)


def margin_ranking_loss(
    input1: Tensor,
    input2: Tensor,
    target: Tensor,
    margin: float = 0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``max(0, -target * (input1 - input2) + margin)``: ``target`` (1 or -1) says which input should rank
    higher.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.margin_ranking_loss.html"""
    reduction = _reduction_enum(size_average, reduce, reduction)
    for t in (input1, input2, target):
        check_attribute(t, "dim")
    if input1.dim() != input2.dim() or input1.dim() != target.dim():
        raise RuntimeError(
            f"margin_ranking_loss : All input tensors should have same dimension but got sizes: "
            f"input1: {input1.size()}, input2: {input2.size()}, target: {target.size()} "
        )
    check_tensor("margin_ranking_loss", input1, "input1", 1)
    check_tensor("margin_ranking_loss", input2, "input2", 2)
    check_tensor("margin_ranking_loss", target, "target", 3)
    margin = float(number_arg("margin_ranking_loss", margin, "margin", 4))
    per = _rustgrad._scalar_op(-target * (input1 - input2), margin, "add").clamp_min(0)
    return _apply_reduction(per, reduction)


def hinge_embedding_loss(
    input: Tensor,
    target: Tensor,
    margin: float = 1.0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``input`` where ``target`` is 1 and ``max(0, margin - input)`` where it is -1.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.hinge_embedding_loss.html"""
    reduction = _reduction_enum(size_average, reduce, reduction)
    check_tensor("hinge_embedding_loss", input, "input", 1)
    check_tensor("hinge_embedding_loss", target, "target", 2)
    margin = float(number_arg("hinge_embedding_loss", margin, "margin", 3))
    zeros = _rustgrad._full(list(input.shape), 0, input.dtype)
    margin_clamp = _scalar_minus(margin, input).clamp_min(0)
    output_margin = _rustgrad.where(target != 1, margin_clamp, zeros)
    output_self = _rustgrad.where(target != -1, input, zeros)
    return _apply_reduction(output_margin + output_self, reduction)


def cosine_embedding_loss(
    input1: Tensor,
    input2: Tensor,
    target: Tensor,
    margin: float = 0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``1 - cos(input1, input2)`` where ``target`` is 1 and ``max(0, cos - margin)`` where it is -1
    (rows of 2-D inputs, or two vectors and a 0-d target).
    https://pytorch.org/docs/stable/generated/torch.nn.functional.cosine_embedding_loss.html"""
    reduction = _reduction_enum(size_average, reduce, reduction)
    check_tensor("cosine_embedding_loss", input1, "input1", 1)
    check_tensor("cosine_embedding_loss", input2, "input2", 2)
    check_tensor("cosine_embedding_loss", target, "target", 3)
    margin = float(number_arg("cosine_embedding_loss", margin, "margin", 4))
    targ_dim = target.dim()
    if targ_dim not in (0, 1):
        raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
    if targ_dim == 1 and not (input1.dim() == 2 and input2.dim() == 2):
        raise RuntimeError(
            "1D target tensor expects 2D input tensors, but found inputs with sizes "
            f"{list(input1.shape)} and {list(input2.shape)}."
        )
    if targ_dim == 0 and not (input1.dim() == 1 and input2.dim() == 1):
        raise RuntimeError(
            "0D target tensor expects 1D input tensors, but found inputs with sizes "
            f"{list(input1.shape)} and {list(input2.shape)}."
        )
    prod_sum = (input1 * input2).sum(targ_dim)
    mag_square1 = _rustgrad._scalar_op((input1 * input1).sum(targ_dim), 1e-12, "add")
    mag_square2 = _rustgrad._scalar_op((input2 * input2).sum(targ_dim), 1e-12, "add")
    cos = prod_sum / (mag_square1 * mag_square2).sqrt()
    zeros = _rustgrad._full(list(cos.shape), 0, cos.dtype)
    pos = _scalar_minus(1.0, cos)
    neg = _rustgrad._scalar_op(cos, margin, "sub").clamp_min(0)
    output_pos = _rustgrad.where(target == 1, pos, zeros)
    output_neg = _rustgrad.where(target == -1, neg, zeros)
    return _apply_reduction(output_pos + output_neg, reduction)


def _check_triplet_dims(anchor: Tensor, positive: Tensor, negative: Tensor) -> None:
    a_dim, p_dim, n_dim = anchor.ndim, positive.ndim, negative.ndim
    if not (a_dim == p_dim and p_dim == n_dim):
        raise RuntimeError(
            f"The anchor, positive, and negative tensors are expected to have "
            f"the same number of dimensions, but got: anchor {a_dim}D, "
            f"positive {p_dim}D, and negative {n_dim}D inputs"
        )


def triplet_margin_loss(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    margin: float = 1.0,
    p: float = 2,
    eps: float = 1e-6,
    swap: bool = False,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``max(0, margin + d(anchor, positive) - d(anchor, negative))`` with the pairwise ``p``-norm
    distance; ``swap`` uses ``d(positive, negative)`` when it is smaller.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.triplet_margin_loss.html"""
    reduction = _reduction_enum(size_average, reduce, reduction)
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    check_tensor("triplet_margin_loss", anchor, "anchor", 1)
    check_tensor("triplet_margin_loss", positive, "positive", 2)
    check_tensor("triplet_margin_loss", negative, "negative", 3)
    _check_triplet_dims(anchor, positive, negative)
    dist_pos = pairwise_distance(anchor, positive, p, eps)
    dist_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        dist_neg = rustgrad.minimum(dist_neg, pairwise_distance(positive, negative, p, eps))
    loss = (_rustgrad._scalar_op(dist_pos, float(margin), "add") - dist_neg).clamp_min(0)
    return _apply_reduction(loss, reduction)


def triplet_margin_with_distance_loss(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    distance_function=None,
    margin: float = 1.0,
    swap: bool = False,
    reduction: str = "mean",
) -> Tensor:
    """``triplet_margin_loss`` with any ``distance_function(a, b)`` (``pairwise_distance`` by default).
    https://pytorch.org/docs/stable/generated/torch.nn.functional.triplet_margin_with_distance_loss.html"""
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    for t in (anchor, positive, negative):
        check_attribute(t, "ndim")
    _check_triplet_dims(anchor, positive, negative)
    if distance_function is None:
        distance_function = pairwise_distance
    dist_pos = distance_function(anchor, positive)
    dist_neg = distance_function(anchor, negative)
    if swap:
        dist_neg = rustgrad.minimum(dist_neg, distance_function(positive, negative))
    loss = rustgrad.clamp_min(margin + dist_pos - dist_neg, 0)
    return _apply_reduction(loss, reduction)


def multilabel_soft_margin_loss(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Per-class logistic loss ``-(y log sigmoid(x) + (1 - y) log sigmoid(-x))``, optionally weighted,
    averaged over the classes (the last dimension).
    https://pytorch.org/docs/stable/generated/torch.nn.functional.multilabel_soft_margin_loss.html"""
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce, stacklevel=3)
    loss = -(target * logsigmoid(input) + (1 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    class_dim = input.dim() - 1
    loss = loss.sum(dim=class_dim) / input.size(class_dim)
    if reduction == "none":
        return loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    raise ValueError(reduction + " is not valid")


def gumbel_softmax(
    logits: Tensor, tau: float = 1, hard: bool = False, eps: float = 1e-10, dim: int = -1
) -> Tensor:
    """A sample of the Gumbel-softmax distribution of ``logits`` at temperature ``tau``; ``hard=True``
    returns one-hot samples that differentiate as the soft ones.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.gumbel_softmax.html"""
    if eps != 1e-10:
        warnings.warn("`eps` parameter is deprecated and has no effect.", stacklevel=2)
    check_attribute(logits, "softmax")
    gumbels = -_rustgrad._full(list(logits.shape), 0.0, logits.dtype).exponential_().log()
    y_soft = ((logits + gumbels) / tau).softmax(dim)
    if not hard:
        return y_soft
    index = y_soft.max(dim, keepdim=True)[1]
    y_hard = _rustgrad._full(list(logits.shape), 0.0, logits.dtype).scatter_(dim, index, 1.0)
    return y_hard - y_soft.detach() + y_soft


# ----- dropout variants: the noise is drawn exactly as PyTorch draws it -----

_SELU_ALPHA = 1.7580993408473766  # -SELU's negative saturation value (scale * alpha)


def _check_dropout_p(p: float) -> None:
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _dropout_impl(
    name: str, input: Tensor, p: float, training: bool, inplace: bool, feature: bool, alpha: bool
) -> Tensor:
    """ATen's ``_dropout_impl``: plain noise of ``input``'s shape, or one draw per channel
    (``feature``); scaled to keep the mean (or, for ``alpha``, SELU's mean and variance)."""
    check_tensor(name, input)
    p = number_arg(name, p, "p", 2)
    training = strict_bool_arg(name, training, "train", 3)
    if p == 0 or not training or input.numel() == 0:
        return input
    if p == 1:
        zero = _rustgrad._full([], 0, input.dtype)
        return input.mul_(zero) if inplace else input * zero
    if feature:
        if input.dim() < 2:
            raise RuntimeError("Feature dropout requires at least 2 dimensions in the input")
        shape = [input.shape[0], input.shape[1]] + [1] * (input.dim() - 2)
    else:
        shape = list(input.shape)
    if not input.is_floating_point():
        # The mask is drawn before its scaling fails: the generator moves on all the same.
        _rustgrad._full(shape, 0.0, _rustgrad.float32).bernoulli_(1 - p)
        raise RuntimeError(
            f"result type Float can't be cast to the desired output type {scalar_type_name(input.dtype)}"
        )
    if feature:
        noise = _rustgrad._full(shape, 0.0, input.dtype).bernoulli_(1 - p)
    else:
        noise = _bernoulli_like_layout(input, 1 - p)
    if not alpha:
        noise.div_(1 - p)
        return input.mul_(noise) if inplace else input * noise
    a = 1.0 / math.sqrt((_SELU_ALPHA * _SELU_ALPHA * p + 1) * (1 - p))
    b = noise.add(-1).mul_(_SELU_ALPHA * a).add_(_SELU_ALPHA * a * p)
    noise.mul_(a)
    if inplace:
        return input.mul_(noise).add_(b)
    return input * noise + b


def alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False) -> Tensor:
    """Dropout for SELU networks: dropped elements are set to SELU's negative saturation value and the
    result is scaled and shifted to keep zero mean and unit variance.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.alpha_dropout.html"""
    if type(input) is _Batched:
        return _vmap_call("alpha_dropout", alpha_dropout, input, p, training, inplace)
    _check_dropout_p(p)
    return _dropout_impl("alpha_dropout", input, p, training, inplace, feature=False, alpha=True)


def feature_alpha_dropout(
    input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False
) -> Tensor:
    """``alpha_dropout`` of whole channels (``input[i, j]``).
    https://pytorch.org/docs/stable/generated/torch.nn.functional.feature_alpha_dropout.html"""
    if type(input) is _Batched:
        return _vmap_call("feature_alpha_dropout", feature_alpha_dropout, input, p, training, inplace)
    _check_dropout_p(p)
    return _dropout_impl("feature_alpha_dropout", input, p, training, inplace, feature=True, alpha=True)


def _feature_dropout(input: Tensor, p: float, training: bool, inplace: bool, unbatched: bool) -> Tensor:
    if not unbatched:
        return _dropout_impl("feature_dropout", input, p, training, inplace, feature=True, alpha=False)
    # An unbatched input is a batch of one; in place, the view writes into the input.
    view = input.unsqueeze(0)
    out = _dropout_impl("feature_dropout", view, p, training, inplace, feature=True, alpha=False)
    return input if inplace else out.squeeze(0)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zeroes whole channels (``input[i, j]``, 1-D feature maps) with probability ``p`` and scales the
    rest by ``1/(1-p)``; input ``(N, C, L)`` or ``(C, L)``.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.dropout1d.html"""
    if type(input) is _Batched:
        return _vmap_call("dropout1d", dropout1d, input, p, training, inplace)
    _check_dropout_p(p)
    check_attribute(input, "dim")
    inp_dim = input.dim()
    if inp_dim not in (2, 3):
        raise RuntimeError(
            f"dropout1d: Expected 2D or 3D input, but received a {inp_dim}D input. "
            "Note that dropout1d exists to provide channel-wise dropout on inputs with 1 "
            "spatial dimension, a channel dimension, and an optional batch dimension "
            "(i.e. 2D or 3D inputs)."
        )
    return _feature_dropout(input, p, training, inplace, unbatched=inp_dim == 2)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zeroes whole channels (``input[i, j]``, 2-D feature maps) with probability ``p`` and scales the
    rest by ``1/(1-p)``; input ``(N, C, H, W)`` (a 3-D input is read as ``(N, C, L)``, as PyTorch does).
    https://pytorch.org/docs/stable/generated/torch.nn.functional.dropout2d.html"""
    if type(input) is _Batched:
        return _vmap_call("dropout2d", dropout2d, input, p, training, inplace)
    _check_dropout_p(p)
    check_attribute(input, "dim")
    inp_dim = input.dim()
    if inp_dim not in (3, 4):
        warnings.warn(
            f"dropout2d: Received a {inp_dim}-D input to dropout2d, which is deprecated "
            "and will result in an error in a future release. To retain the behavior "
            "and silence this warning, please use dropout instead. Note that dropout2d "
            "exists to provide channel-wise dropout on inputs with 2 spatial dimensions, "
            "a channel dimension, and an optional batch dimension (i.e. 3D or 4D inputs).",
            stacklevel=2,
        )
    if inp_dim == 3:
        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise "
            "1D dropout behavior is desired - input is interpreted as shape (N, C, L), where C "
            "is the channel dim. This behavior will change in a future release to interpret the "
            "input as one without a batch dimension, i.e. shape (C, H, W). To maintain the 1D "
            "channel-wise dropout behavior, please switch to using dropout1d instead.",
            stacklevel=2,
        )
    return _feature_dropout(input, p, training, inplace, unbatched=False)


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zeroes whole channels (``input[i, j]``, 3-D feature maps) with probability ``p`` and scales the
    rest by ``1/(1-p)``; input ``(N, C, D, H, W)`` or ``(C, D, H, W)``.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.dropout3d.html"""
    if type(input) is _Batched:
        return _vmap_call("dropout3d", dropout3d, input, p, training, inplace)
    _check_dropout_p(p)
    check_attribute(input, "dim")
    inp_dim = input.dim()
    if inp_dim not in (4, 5):
        warnings.warn(
            f"dropout3d: Received a {inp_dim}-D input to dropout3d, which is deprecated "
            "and will result in an error in a future release. To retain the behavior "
            "and silence this warning, please use dropout instead. Note that dropout3d "
            "exists to provide channel-wise dropout on inputs with 3 spatial dimensions, "
            "a channel dimension, and an optional batch dimension (i.e. 4D or 5D inputs).",
            stacklevel=2,
        )
    return _feature_dropout(input, p, training, inplace, unbatched=inp_dim != 5)


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
    if type(input) is _Batched or type(target) is _Batched:
        return _vmap_call("smooth_l1_loss", smooth_l1_loss, input, target, size_average, reduce, reduction, beta)
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
    if type(input) is _Batched or type(weight) is _Batched or type(target) is _Batched:
        return _vmap_call("huber_loss", huber_loss, input, target, reduction, delta, weight)
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    return _robust_loss("huber_loss", "huber", input, target, delta, None, None, reduction, weight)
