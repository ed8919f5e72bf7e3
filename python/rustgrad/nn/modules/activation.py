"""Activation layers: ``ReLU``, ``GELU``, ``Tanh``, ``Sigmoid``, ``Softmax``, ``LogSoftmax``, ``Softmin``,
``Softsign``, ``Tanhshrink``, and the elementwise ones with scalar parameters (``Hardtanh``, ``ELU``,
``LeakyReLU``, ``Softplus``...), and ``MultiheadAttention``, which PyTorch keeps here too."""

from __future__ import annotations

from typing import Any

import rustgrad
from rustgrad import Tensor
from rustgrad.nn import functional as F
from rustgrad.nn import init
from rustgrad.nn._attention import _canonical_mask, _none_or_dtype
from rustgrad.nn.modules.linear import NonDynamicallyQuantizableLinear
from rustgrad.nn.modules.module import Module
from rustgrad.nn.parameter import Parameter

__all__ = [
    "CELU",
    "ELU",
    "GELU",
    "GLU",
    "SELU",
    "Hardshrink",
    "Hardsigmoid",
    "Hardswish",
    "Hardtanh",
    "LeakyReLU",
    "LogSigmoid",
    "LogSoftmax",
    "Mish",
    "MultiheadAttention",
    "PReLU",
    "RReLU",
    "ReLU",
    "ReLU6",
    "SiLU",
    "Sigmoid",
    "Softmax",
    "Softmax2d",
    "Softmin",
    "Softplus",
    "Softshrink",
    "Softsign",
    "Tanh",
    "Tanhshrink",
    "Threshold",
]


class ReLU(Module):
    """``max(0, x)`` elementwise."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        """``relu(input)`` (in place if the module was built with ``inplace=True``)."""
        return F.relu(input, inplace=self.inplace)

    def extra_repr(self) -> str:
        """The constructor arguments shown in the module's repr."""
        return "inplace=True" if self.inplace else ""


class GELU(Module):
    """``x * Phi(x)``; ``approximate='tanh'`` uses the tanh approximation."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = approximate

    def forward(self, input: Tensor) -> Tensor:
        """``gelu(input)`` with this module's ``approximate`` setting."""
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self) -> str:
        """The constructor arguments shown in the module's repr."""
        return f"approximate={self.approximate!r}"


class Tanh(Module):
    """Applies the hyperbolic tangent element-wise.
    https://pytorch.org/docs/stable/generated/torch.nn.Tanh.html"""
    def forward(self, input: Tensor) -> Tensor:
        """``tanh(input)``."""
        return rustgrad.tanh(input)


class Sigmoid(Module):
    """Applies the logistic sigmoid element-wise.
    https://pytorch.org/docs/stable/generated/torch.nn.Sigmoid.html"""
    def forward(self, input: Tensor) -> Tensor:
        """``sigmoid(input)``."""
        return rustgrad.sigmoid(input)


def _check_dim(dim: int | None) -> None:
    if dim is not None and (not isinstance(dim, int) or isinstance(dim, bool)):
        raise TypeError(f"dim must be an int or None, got {type(dim)}")


class Softmax(Module):
    """``exp(x) / exp(x).sum(dim)`` along ``dim``."""

    def __init__(self, dim: int | None = None) -> None:
        _check_dim(dim)
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        """``softmax(input, dim)``."""
        return F.softmax(input, self.dim, _stacklevel=5)

    def extra_repr(self) -> str:
        """The constructor arguments shown in the module's repr."""
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """``log(softmax(x))`` along ``dim``, computed stably."""

    def __init__(self, dim: int | None = None) -> None:
        _check_dim(dim)
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        """``log_softmax(input, dim)``."""
        return F.log_softmax(input, self.dim, _stacklevel=5)

    def extra_repr(self) -> str:
        """The constructor arguments shown in the module's repr."""
        return f"dim={self.dim}"


def _inplace_suffix(inplace: bool) -> str:
    return ", inplace=True" if inplace else ""


class Hardtanh(Module):
    """``x`` clamped to ``[min_val, max_val]``.
    https://pytorch.org/docs/stable/generated/torch.nn.Hardtanh.html"""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.min_val = min_val
        self.max_val = max_val
        self.inplace = inplace
        assert self.max_val > self.min_val

    def forward(self, input: Tensor) -> Tensor:
        """``hardtanh(input)``."""
        return F.hardtanh(input, self.min_val, self.max_val, self.inplace)

    def extra_repr(self) -> str:
        """The constructor arguments shown in the module's repr."""
        return f"min_val={self.min_val}, max_val={self.max_val}{_inplace_suffix(self.inplace)}"


class ReLU6(Hardtanh):
    """``min(max(0, x), 6)``.
    https://pytorch.org/docs/stable/generated/torch.nn.ReLU6.html"""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self) -> str:
        """The constructor arguments shown in the module's repr."""
        return "inplace=True" if self.inplace else ""


class _Simple(Module):
    """An activation with only an ``inplace`` flag."""

    _name = ""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        """The activation applied to ``input``."""
        return getattr(F, self._name)(input, inplace=self.inplace)

    def extra_repr(self) -> str:
        """The constructor arguments shown in the module's repr."""
        return "inplace=True" if self.inplace else ""


class SiLU(_Simple):
    """``x * sigmoid(x)``.
    https://pytorch.org/docs/stable/generated/torch.nn.SiLU.html"""

    _name = "silu"


class SELU(_Simple):
    """Scaled ELU with the self-normalizing constants.
    https://pytorch.org/docs/stable/generated/torch.nn.SELU.html"""

    _name = "selu"


class Hardswish(_Simple):
    """``x * relu6(x + 3) / 6``.
    https://pytorch.org/docs/stable/generated/torch.nn.Hardswish.html"""

    _name = "hardswish"

    def extra_repr(self) -> str:
        """The constructor arguments shown in the module's repr."""
        return ""


class Hardsigmoid(Hardswish):
    """``relu6(x + 3) / 6``.
    https://pytorch.org/docs/stable/generated/torch.nn.Hardsigmoid.html"""

    _name = "hardsigmoid"


class Mish(Hardswish):
    """``x * tanh(softplus(x))``.
    https://pytorch.org/docs/stable/generated/torch.nn.Mish.html"""

    _name = "mish"


class ELU(Module):
    """``x`` above zero, ``alpha * (exp(x) - 1)`` below.
    https://pytorch.org/docs/stable/generated/torch.nn.ELU.html"""

    _name = "elu"

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        """The activation applied to ``input``."""
        return getattr(F, self._name)(input, self.alpha, self.inplace)

    def extra_repr(self) -> str:
        """The constructor arguments shown in the module's repr."""
        return f"alpha={self.alpha}{_inplace_suffix(self.inplace)}"


class CELU(ELU):
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``.
    https://pytorch.org/docs/stable/generated/torch.nn.CELU.html"""

    _name = "celu"


class LeakyReLU(Module):
    """``x`` where positive, else ``negative_slope * x``.
    https://pytorch.org/docs/stable/generated/torch.nn.LeakyReLU.html"""

    def __init__(self, negative_slope: float = 1e-2, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        """``leaky_relu(input)``."""
        return F.leaky_relu(input, self.negative_slope, self.inplace)

    def extra_repr(self) -> str:
        """The constructor arguments shown in the module's repr."""
        return f"negative_slope={self.negative_slope}{_inplace_suffix(self.inplace)}"


class Softplus(Module):
    """``log(1 + exp(beta * x)) / beta``, linear above ``threshold``.
    https://pytorch.org/docs/stable/generated/torch.nn.Softplus.html"""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def forward(self, input: Tensor) -> Tensor:
        """``softplus(input)``."""
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        """The constructor arguments shown in the module's repr."""
        return f"beta={self.beta}, threshold={self.threshold}"


class LogSigmoid(Module):
    """``log(sigmoid(x))``.
    https://pytorch.org/docs/stable/generated/torch.nn.LogSigmoid.html"""

    def forward(self, input: Tensor) -> Tensor:
        """``logsigmoid(input)``."""
        return F.logsigmoid(input)


class Threshold(Module):
    """``x`` where ``x > threshold``, else ``value``.
    https://pytorch.org/docs/stable/generated/torch.nn.Threshold.html"""

    def __init__(self, threshold: float, value: float, inplace: bool = False) -> None:
        super().__init__()
        self.threshold = threshold
        self.value = value
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        """``threshold(input)``."""
        return F.threshold(input, self.threshold, self.value, self.inplace)

    def extra_repr(self) -> str:
        """The constructor arguments shown in the module's repr."""
        return f"threshold={self.threshold}, value={self.value}{_inplace_suffix(self.inplace)}"


class Softshrink(Module):
    """``x - lambd`` above ``lambd``, ``x + lambd`` below ``-lambd``, else 0.
    https://pytorch.org/docs/stable/generated/torch.nn.Softshrink.html"""

    _name = "softshrink"

    def __init__(self, lambd: float = 0.5) -> None:
        super().__init__()
        self.lambd = lambd

    def forward(self, input: Tensor) -> Tensor:
        """The shrinkage applied to ``input``."""
        return getattr(F, self._name)(input, self.lambd)

    def extra_repr(self) -> str:
        """The constructor arguments shown in the module's repr."""
        return str(self.lambd)


class Hardshrink(Softshrink):
    """``x`` where ``|x| > lambd``, else 0.
    https://pytorch.org/docs/stable/generated/torch.nn.Hardshrink.html"""

    _name = "hardshrink"
class Softmin(Module):
    """``softmax(-x)`` along ``dim`` (see ``functional.softmin``).
    https://pytorch.org/docs/stable/generated/torch.nn.Softmin.html"""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        """``softmin(input, dim)``.
        https://pytorch.org/docs/stable/generated/torch.nn.Softmin.html#torch.nn.Softmin.forward"""
        return F.softmin(input, self.dim, _stacklevel=5)

    def extra_repr(self) -> str:
        """The constructor arguments shown in the module's repr.
        https://pytorch.org/docs/stable/generated/torch.nn.Softmin.html#torch.nn.Softmin.extra_repr"""
        return f"dim={self.dim}"


class Softsign(Module):
    """``x / (1 + |x|)`` element-wise (see ``functional.softsign``).
    https://pytorch.org/docs/stable/generated/torch.nn.Softsign.html"""

    def forward(self, input: Tensor) -> Tensor:
        """``softsign(input)``.
        https://pytorch.org/docs/stable/generated/torch.nn.Softsign.html#torch.nn.Softsign.forward"""
        return F.softsign(input)


class Tanhshrink(Module):
    """``x - tanh(x)`` element-wise (see ``functional.tanhshrink``).
    https://pytorch.org/docs/stable/generated/torch.nn.Tanhshrink.html"""

    def forward(self, input: Tensor) -> Tensor:
        """``tanhshrink(input)``.
        https://pytorch.org/docs/stable/generated/torch.nn.Tanhshrink.html#torch.nn.Tanhshrink.forward"""
        return F.tanhshrink(input)


class MultiheadAttention(Module):
    """Attention from ``num_heads`` parallel heads over projected queries, keys and values, joined by
    an output projection (``out_proj``); ``batch_first`` takes ``(N, L, E)`` input.
    https://pytorch.org/docs/stable/generated/torch.nn.MultiheadAttention.html"""

    bias_k: Parameter | None
    bias_v: Parameter | None

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(
                f"embed_dim and num_heads must be greater than 0, got embed_dim={embed_dim} and "
                f"num_heads={num_heads} instead"
            )
        kw = {"device": device, "dtype": dtype}
        super().__init__()
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        if self.head_dim * num_heads != self.embed_dim:
            raise AssertionError("embed_dim must be divisible by num_heads")
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(rustgrad.empty((3 * embed_dim, embed_dim), **kw))
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.q_proj_weight = Parameter(rustgrad.empty((embed_dim, embed_dim), **kw))
            self.k_proj_weight = Parameter(rustgrad.empty((embed_dim, self.kdim), **kw))
            self.v_proj_weight = Parameter(rustgrad.empty((embed_dim, self.vdim), **kw))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(rustgrad.empty(3 * embed_dim, **kw))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias, **kw)
        if add_bias_kv:
            self.bias_k = Parameter(rustgrad.empty((1, 1, embed_dim), **kw))
            self.bias_v = Parameter(rustgrad.empty((1, 1, embed_dim), **kw))
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        # out_proj drew its weights as a Linear when it was built; then, in PyTorch's order:
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
        if self.bias_v is not None:
            init.xavier_normal_(self.bias_v)

    def __setstate__(self, state: dict) -> None:
        state.setdefault("_qkv_same_embed_dim", True)
        super().__setstate__(state)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = True,
        attn_mask: Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """``(output, weights)``: the attention of ``query`` over ``key``/``value``; the weights
        (averaged over heads unless ``average_attn_weights=False``) only when ``need_weights``.
        https://pytorch.org/docs/stable/generated/torch.nn.MultiheadAttention.html#torch.nn.MultiheadAttention.forward"""
        batched = query.dim() == 3
        key_padding_mask = _canonical_mask(
            key_padding_mask, "key_padding_mask", _none_or_dtype(attn_mask), "attn_mask", query.dtype
        )
        attn_mask = _canonical_mask(attn_mask, "attn_mask", None, "", query.dtype, check_other=False)
        # PyTorch's fused inference kernel (eval, no grad) gives the same values as this route.
        if self.batch_first and batched:
            # to sequence-first, keeping the identities that select the fused projections
            if key is value:
                if query is key:
                    query = key = value = query.transpose(1, 0)
                else:
                    query, key = (x.transpose(1, 0) for x in (query, key))
                    value = key
            else:
                query, key, value = (x.transpose(1, 0) for x in (query, key, value))
        out, weights = F.multi_head_attention_forward(
            query,
            key,
            value,
            self.embed_dim,
            self.num_heads,
            self.in_proj_weight,
            self.in_proj_bias,
            self.bias_k,
            self.bias_v,
            self.add_zero_attn,
            self.dropout,
            self.out_proj.weight,
            self.out_proj.bias,
            training=self.training,
            key_padding_mask=key_padding_mask,
            need_weights=need_weights,
            attn_mask=attn_mask,
            average_attn_weights=average_attn_weights,
            is_causal=is_causal,
            use_separate_proj_weight=not self._qkv_same_embed_dim,
            q_proj_weight=self.q_proj_weight,
            k_proj_weight=self.k_proj_weight,
            v_proj_weight=self.v_proj_weight,
        )
        if self.batch_first and batched:
            return out.transpose(1, 0), weights
        return out, weights

    def merge_masks(
        self, attn_mask: Tensor | None, key_padding_mask: Tensor | None, query: Tensor
    ) -> tuple[Tensor | None, int | None]:
        """Joins a self-attention ``attn_mask`` and ``key_padding_mask`` of batch-first ``query`` into one
        ``(N, num_heads, L, L)`` mask; returns it with its type (1: padding only, 2: attention mask).
        https://pytorch.org/docs/stable/generated/torch.nn.MultiheadAttention.html#torch.nn.MultiheadAttention.merge_masks"""
        mask_type = None
        merged = None
        if key_padding_mask is not None:
            mask_type = 1
            merged = key_padding_mask
        if attn_mask is not None:
            batch_size, seq_len, _ = query.shape
            mask_type = 2
            if attn_mask.dim() == 3:
                expanded = attn_mask.view(batch_size, -1, seq_len, seq_len)
            else:
                expanded = attn_mask.view(1, 1, seq_len, seq_len).expand(batch_size, self.num_heads, -1, -1)
            merged = expanded
            if key_padding_mask is not None:
                padding = key_padding_mask.view(batch_size, 1, 1, seq_len).expand(-1, self.num_heads, -1, -1)
                merged = expanded + padding
        return merged, mask_type
class GLU(Module):
    """Gated linear unit: ``a * sigmoid(b)`` for the halves ``a, b`` of the input along ``dim``.
    https://pytorch.org/docs/stable/generated/torch.nn.GLU.html"""

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        """``glu(input, dim)``.
        https://pytorch.org/docs/stable/generated/torch.nn.GLU.html"""
        return F.glu(input, self.dim)

    def extra_repr(self) -> str:
        """The halved dimension, shown in the module's repr."""
        return f"dim={self.dim}"


class PReLU(Module):
    """Leaky ReLU with a learned negative slope (one, or one per channel), initialised to ``init``.
    https://pytorch.org/docs/stable/generated/torch.nn.PReLU.html"""

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device=None, dtype=None) -> None:
        self.num_parameters = num_parameters
        super().__init__()
        self.init = init
        self.weight = Parameter(rustgrad.empty(num_parameters, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Fills the slopes with ``init``.
        https://pytorch.org/docs/stable/generated/torch.nn.PReLU.html"""
        init.constant_(self.weight, self.init)

    def forward(self, input: Tensor) -> Tensor:
        """``prelu(input, weight)``.
        https://pytorch.org/docs/stable/generated/torch.nn.PReLU.html"""
        return F.prelu(input, self.weight)

    def extra_repr(self) -> str:
        """The number of slopes, shown in the module's repr."""
        return f"num_parameters={self.num_parameters}"


class RReLU(Module):
    """Randomized leaky ReLU: random slopes in ``[lower, upper]`` in training, their mean in eval.
    https://pytorch.org/docs/stable/generated/torch.nn.RReLU.html"""

    def __init__(self, lower: float = 1.0 / 8, upper: float = 1.0 / 3, inplace: bool = False) -> None:
        super().__init__()
        self.lower = lower
        self.upper = upper
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        """``rrelu(input)``, drawing slopes when the module is training.
        https://pytorch.org/docs/stable/generated/torch.nn.RReLU.html"""
        return F.rrelu(input, self.lower, self.upper, self.training, self.inplace)

    def extra_repr(self) -> str:
        """The bounds (and ``inplace``), shown in the module's repr."""
        return f"lower={self.lower}, upper={self.upper}{_inplace_suffix(self.inplace)}"


class Softmax2d(Module):
    """Softmax over the channels (dim -3) of ``[N, C, H, W]`` or ``[C, H, W]`` input.
    https://pytorch.org/docs/stable/generated/torch.nn.Softmax2d.html"""

    def forward(self, input: Tensor) -> Tensor:
        """``softmax(input, -3)``.
        https://pytorch.org/docs/stable/generated/torch.nn.Softmax2d.html"""
        if input.dim() not in (3, 4):
            raise ValueError(f"Softmax2d: expected input to be 3D or 4D, got {input.dim()}D instead")
        return F.softmax(input, -3, _stacklevel=5)
