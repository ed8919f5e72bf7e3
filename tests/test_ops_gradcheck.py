"""Every differentiable op: forward value against numpy, first and second derivatives against
central differences (tests/gradcheck.py), all in float64.

Each case names the op, a rustgrad function, the numpy function computing the same value, and
how to draw its inputs. Inputs stay away from the points where an op is not differentiable (zero
for abs/relu/norm p=1, ties for max/min, non-positive bases for fractional powers and log).
"""

from collections.abc import Sequence
from typing import Callable, NamedTuple

import numpy as np
import pytest
import rustgrad as torch
from gradcheck import gradcheck, gradgradcheck, numerical_jacobian, values_of


class Case(NamedTuple):
    id: str
    fn: Callable  # rustgrad tensors -> tensor
    ref: Callable  # numpy arrays -> array
    inputs: Sequence[Callable]  # each: rng -> float64 array
    # piecewise-linear ops: second derivative is zero wherever it exists
    piecewise_linear: bool = False


def normal(*shape):
    return lambda rng: rng.standard_normal(shape)


def positive(*shape, low=0.5, high=2.0):
    return lambda rng: rng.uniform(low, high, size=shape)


def away_from_zero(*shape):
    """Values in [-2, -0.3] U [0.3, 2]."""
    return lambda rng: rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.3, 2.0, size=shape)


def distinct(*shape):
    """A random permutation of well-separated values (no ties within 0.1): safe for max/min."""

    def draw(rng):
        n = int(np.prod(shape, dtype=np.int64))
        values = (np.arange(n) - n / 2.0) * 0.37 + rng.uniform(-0.1, 0.1, size=n)
        return rng.permutation(values).reshape(shape)

    return draw


def _norm_ref(p, axis=None, keepdims=False):
    def ref(a):
        return np.sum(np.abs(a) ** p, axis=axis, keepdims=keepdims) ** (1.0 / p)

    return ref


CASES = [
    # ----- add / sub / rsub -----
    Case("add", lambda a, b: a + b, lambda a, b: a + b, [normal(3, 4), normal(3, 4)]),
    Case("add_bcast_3x1_4", lambda a, b: a + b, lambda a, b: a + b, [normal(3, 1), normal(4)]),
    Case("add_0d_tensor", lambda a, b: a + b, lambda a, b: a + b, [normal(2, 3), normal()]),
    Case("add_0d_0d", lambda a, b: a + b, lambda a, b: a + b, [normal(), normal()]),
    Case("add_scalar", lambda a: a + 2.5, lambda a: a + 2.5, [normal(3)]),
    Case("radd_scalar", lambda a: 2.5 + a, lambda a: 2.5 + a, [normal(3)]),
    Case("add_alpha", lambda a, b: torch.add(a, b, alpha=3), lambda a, b: a + 3 * b,
         [normal(2, 3), normal(3)]),
    Case("add_method_alpha", lambda a, b: a.add(b, alpha=-0.5), lambda a, b: a - 0.5 * b,
         [normal(4, 1), normal(1, 2)]),
    Case("sub", lambda a, b: a - b, lambda a, b: a - b, [normal(3, 4), normal(3, 4)]),
    Case("sub_bcast_3x1_4", lambda a, b: a - b, lambda a, b: a - b, [normal(3, 1), normal(4)]),
    Case("sub_alpha", lambda a, b: torch.sub(a, b, alpha=2), lambda a, b: a - 2 * b,
         [normal(2, 3), normal(2, 3)]),
    Case("sub_method_alpha_bcast", lambda a, b: a.sub(b, alpha=0.5), lambda a, b: a - 0.5 * b,
         [normal(3), normal(2, 1)]),
    Case("sub_scalar", lambda a: a - 1.5, lambda a: a - 1.5, [normal(3)]),
    Case("rsub_int", lambda a: 2 - a, lambda a: 2 - a, [normal(3, 2)]),
    Case("rsub_float_0d", lambda a: 2.5 - a, lambda a: 2.5 - a, [normal()]),
    # ----- mul / div / neg -----
    Case("mul", lambda a, b: a * b, lambda a, b: a * b, [normal(3, 4), normal(3, 4)]),
    Case("mul_bcast_3x1_4", lambda a, b: a * b, lambda a, b: a * b, [normal(3, 1), normal(4)]),
    Case("mul_0d_tensor", lambda a, b: a * b, lambda a, b: a * b, [normal(), normal(2, 3)]),
    Case("mul_scalar", lambda a: a * 3.0, lambda a: a * 3.0, [normal(4)]),
    Case("rmul_scalar", lambda a: 3 * a, lambda a: 3 * a, [normal(4)]),
    Case("mul_self", lambda a: a * a, lambda a: a * a, [normal(2, 3)]),
    Case("torch_mul", lambda a, b: torch.mul(a, b), lambda a, b: a * b, [normal(2, 1, 3), normal(4, 1)]),
    Case("div", lambda a, b: a / b, lambda a, b: a / b, [normal(3, 4), away_from_zero(3, 4)]),
    Case("div_bcast_3x1_4", lambda a, b: a / b, lambda a, b: a / b, [normal(3, 1), away_from_zero(4)]),
    Case("div_scalar", lambda a: a / 2.0, lambda a: a / 2.0, [normal(3)]),
    Case("rdiv_scalar", lambda a: 2 / a, lambda a: 2 / a, [away_from_zero(3, 2)]),
    Case("torch_div_0d", lambda a, b: torch.div(a, b), lambda a, b: a / b, [normal(3), away_from_zero()]),
    Case("neg", lambda a: -a, lambda a: -a, [normal(3, 2)]),
    Case("torch_neg", lambda a: torch.neg(a), lambda a: -a, [normal(4)]),
    Case("neg_method_0d", lambda a: a.neg(), lambda a: -a, [normal()]),
    # ----- pow -----
    Case("pow_0.5", lambda a: a ** 0.5, lambda a: a ** 0.5, [positive(3, 2)]),
    Case("pow_2", lambda a: a ** 2, lambda a: a ** 2, [normal(3, 2)]),
    Case("pow_3", lambda a: a ** 3, lambda a: a ** 3, [normal(3, 2)]),
    Case("pow_-1", lambda a: a ** -1, lambda a: a ** -1.0, [away_from_zero(3, 2)]),
    Case("pow_0", lambda a: a ** 0, lambda a: a ** 0, [normal(3, 2)]),
    Case("pow_1.5", lambda a: a ** 1.5, lambda a: a ** 1.5, [positive(4)]),
    Case("pow_-2.5", lambda a: a ** -2.5, lambda a: a ** -2.5, [positive(4)]),
    Case("torch_pow_scalar", lambda a: torch.pow(a, 2), lambda a: a ** 2, [normal(4)]),
    Case("pow_method_3", lambda a: a.pow(3), lambda a: a ** 3, [normal()]),
    Case("pow_tensor_tensor", lambda a, b: a ** b, lambda a, b: a ** b, [positive(3, 4), normal(3, 4)]),
    Case("pow_tensor_tensor_bcast", lambda a, b: a.pow(b), lambda a, b: a ** b,
         [positive(3, 1), normal(4)]),
    Case("torch_pow_tensor_tensor_0d", lambda a, b: torch.pow(a, b), lambda a, b: a ** b,
         [positive(2, 3), normal()]),
    Case("rpow_scalar", lambda a: 2.0 ** a, lambda a: 2.0 ** a, [normal(3, 2)]),
    Case("rpow_int", lambda a: 3 ** a, lambda a: 3.0 ** a, [normal(4)]),
    Case("torch_pow_scalar_base", lambda a: torch.pow(1.5, a), lambda a: 1.5 ** a, [normal(4)]),
    # ----- pointwise -----
    Case("exp", lambda a: a.exp(), np.exp, [normal(3, 4)]),
    Case("torch_exp_0d", lambda a: torch.exp(a), np.exp, [normal()]),
    Case("log", lambda a: a.log(), np.log, [positive(3, 4)]),
    Case("torch_log", lambda a: torch.log(a), np.log, [positive(5)]),
    Case("sqrt", lambda a: a.sqrt(), np.sqrt, [positive(3, 4)]),
    Case("torch_sqrt", lambda a: torch.sqrt(a), np.sqrt, [positive(5)]),
    Case("abs", lambda a: a.abs(), np.abs, [away_from_zero(3, 4)], True),
    Case("torch_abs", lambda a: torch.abs(a), np.abs, [away_from_zero(5)], True),
    Case("sin", lambda a: a.sin(), np.sin, [normal(3, 4)]),
    Case("torch_sin", lambda a: torch.sin(a), np.sin, [normal()]),
    Case("cos", lambda a: a.cos(), np.cos, [normal(3, 4)]),
    Case("torch_cos", lambda a: torch.cos(a), np.cos, [normal(5)]),
    Case("tanh", lambda a: a.tanh(), np.tanh, [normal(3, 4)]),
    Case("torch_tanh", lambda a: torch.tanh(a), np.tanh, [normal(5)]),
    Case("sigmoid", lambda a: a.sigmoid(), lambda a: 1.0 / (1.0 + np.exp(-a)), [normal(3, 4)]),
    Case("torch_sigmoid", lambda a: torch.sigmoid(a), lambda a: 1.0 / (1.0 + np.exp(-a)), [normal(5)]),
    Case("relu", lambda a: a.relu(), lambda a: np.maximum(a, 0.0), [away_from_zero(3, 4)], True),
    Case("torch_relu", lambda a: torch.relu(a), lambda a: np.maximum(a, 0.0), [away_from_zero(5)], True),
    # ----- sum / mean -----
    Case("sum_all", lambda a: a.sum(), np.sum, [normal(3, 4)]),
    Case("torch_sum_all", lambda a: torch.sum(a), np.sum, [normal(2, 3, 2)]),
    Case("sum_0d", lambda a: a.sum(), np.sum, [normal()]),
    Case("sum_dim0", lambda a: a.sum(0), lambda a: a.sum(axis=0), [normal(3, 4)]),
    Case("sum_dim-1", lambda a: a.sum(dim=-1), lambda a: a.sum(axis=-1), [normal(2, 3, 4)]),
    Case("sum_dims_0_2", lambda a: a.sum(dim=(0, 2)), lambda a: a.sum(axis=(0, 2)), [normal(2, 3, 4)]),
    Case("sum_dim1_keepdim", lambda a: a.sum(1, keepdim=True), lambda a: a.sum(axis=1, keepdims=True),
         [normal(2, 3, 4)]),
    Case("sum_dims_keepdim", lambda a: a.sum((0, 1), keepdim=True),
         lambda a: a.sum(axis=(0, 1), keepdims=True), [normal(2, 3, 4)]),
    Case("mean_all", lambda a: a.mean(), np.mean, [normal(3, 4)]),
    Case("torch_mean_all", lambda a: torch.mean(a), np.mean, [normal(5)]),
    Case("mean_dim1", lambda a: a.mean(1), lambda a: a.mean(axis=1), [normal(3, 4)]),
    Case("mean_dims_0_2", lambda a: a.mean(dim=(0, 2)), lambda a: a.mean(axis=(0, 2)), [normal(2, 3, 4)]),
    Case("mean_dim0_keepdim", lambda a: a.mean(dim=0, keepdim=True),
         lambda a: a.mean(axis=0, keepdims=True), [normal(3, 4)]),
    Case("mean_dims_keepdim", lambda a: a.mean((-1, -2), keepdim=True),
         lambda a: a.mean(axis=(-1, -2), keepdims=True), [normal(2, 3, 4)]),
    # ----- max / min -----
    Case("max_all", lambda a: a.max(), np.max, [distinct(3, 4)], True),
    Case("torch_max_all", lambda a: torch.max(a), np.max, [distinct(5)], True),
    Case("max_dim1_values", lambda a: a.max(dim=1).values, lambda a: a.max(axis=1), [distinct(3, 4)], True),
    Case("max_dim0_index0", lambda a: a.max(0)[0], lambda a: a.max(axis=0), [distinct(3, 4)], True),
    Case("max_dim_keepdim", lambda a: a.max(dim=-1, keepdim=True).values,
         lambda a: a.max(axis=-1, keepdims=True), [distinct(2, 3, 4)], True),
    Case("torch_max_dim", lambda a: torch.max(a, 1).values, lambda a: a.max(axis=1), [distinct(2, 3, 4)], True),
    Case("min_all", lambda a: a.min(), np.min, [distinct(3, 4)], True),
    Case("torch_min_all", lambda a: torch.min(a), np.min, [distinct(5)], True),
    Case("min_dim1_values", lambda a: a.min(dim=1).values, lambda a: a.min(axis=1), [distinct(3, 4)], True),
    Case("min_dim0_index0", lambda a: a.min(0)[0], lambda a: a.min(axis=0), [distinct(3, 4)], True),
    Case("min_dim_keepdim", lambda a: a.min(dim=0, keepdim=True).values,
         lambda a: a.min(axis=0, keepdims=True), [distinct(2, 3, 4)], True),
    # ----- norm -----
    Case("norm_default", lambda a: a.norm(), _norm_ref(2), [normal(3, 4)]),
    Case("torch_norm", lambda a: torch.norm(a), _norm_ref(2), [normal(5)]),
    Case("norm_p2", lambda a: a.norm(p=2), _norm_ref(2), [normal(2, 3, 2)]),
    Case("norm_p1", lambda a: a.norm(p=1), _norm_ref(1), [away_from_zero(3, 4)]),
    Case("norm_p3", lambda a: a.norm(p=3), _norm_ref(3), [away_from_zero(3, 4)]),
    Case("norm_dim1", lambda a: a.norm(dim=1), _norm_ref(2, axis=1), [normal(3, 4)]),
    Case("norm_dim0_keepdim", lambda a: a.norm(dim=0, keepdim=True), _norm_ref(2, axis=0, keepdims=True),
         [normal(3, 4)]),
    Case("norm_p1_dim1", lambda a: a.norm(p=1, dim=1), _norm_ref(1, axis=1), [away_from_zero(3, 4)]),
    Case("norm_p3_dim-1_keepdim", lambda a: a.norm(p=3, dim=-1, keepdim=True),
         _norm_ref(3, axis=-1, keepdims=True), [away_from_zero(2, 3, 4)]),
    # ----- dot / matmul / mm / mv / bmm -----
    Case("dot", lambda a, b: a.dot(b), np.dot, [normal(5), normal(5)]),
    Case("torch_dot", lambda a, b: torch.dot(a, b), np.dot, [normal(3), normal(3)]),
    Case("matmul_1d_1d", lambda a, b: a @ b, np.matmul, [normal(4), normal(4)]),
    Case("matmul_2d_1d", lambda a, b: a @ b, np.matmul, [normal(3, 4), normal(4)]),
    Case("matmul_1d_2d", lambda a, b: a @ b, np.matmul, [normal(3), normal(3, 4)]),
    Case("matmul_2d_2d", lambda a, b: a @ b, np.matmul, [normal(3, 4), normal(4, 2)]),
    Case("matmul_3d_2d", lambda a, b: a.matmul(b), np.matmul, [normal(2, 3, 4), normal(4, 2)]),
    Case("matmul_2d_3d", lambda a, b: torch.matmul(a, b), np.matmul, [normal(3, 4), normal(2, 4, 2)]),
    Case("matmul_3d_3d", lambda a, b: a @ b, np.matmul, [normal(2, 3, 4), normal(2, 4, 2)]),
    Case("matmul_bcast_batch_1x3d", lambda a, b: a @ b, np.matmul, [normal(1, 3, 4), normal(2, 4, 2)]),
    Case("matmul_1d_3d", lambda a, b: a @ b, np.matmul, [normal(3), normal(2, 3, 4)]),
    Case("matmul_3d_1d", lambda a, b: a @ b, np.matmul, [normal(2, 3, 4), normal(4)]),
    Case("mm", lambda a, b: a.mm(b), np.matmul, [normal(3, 4), normal(4, 2)]),
    Case("torch_mm", lambda a, b: torch.mm(a, b), np.matmul, [normal(2, 2), normal(2, 3)]),
    Case("mm_transposed_arg", lambda a, b: a.t().mm(b), lambda a, b: a.T @ b, [normal(4, 3), normal(4, 2)]),
    Case("mv", lambda a, b: a.mv(b), np.matmul, [normal(3, 4), normal(4)]),
    Case("torch_mv", lambda a, b: torch.mv(a, b), np.matmul, [normal(2, 3), normal(3)]),
    Case("bmm", lambda a, b: a.bmm(b), np.matmul, [normal(2, 3, 4), normal(2, 4, 2)]),
    Case("torch_bmm", lambda a, b: torch.bmm(a, b), np.matmul, [normal(3, 2, 2), normal(3, 2, 3)]),
    # ----- shape ops -----
    Case("view", lambda a: a.view(6, 2), lambda a: a.reshape(6, 2), [normal(3, 4)]),
    Case("view_-1", lambda a: a.view(-1), lambda a: a.reshape(-1), [normal(2, 3, 2)]),
    Case("view_tuple", lambda a: a.view((2, 2, 3)), lambda a: a.reshape(2, 2, 3), [normal(3, 4)]),
    Case("reshape", lambda a: a.reshape(2, -1), lambda a: a.reshape(2, -1), [normal(3, 4)]),
    Case("torch_reshape", lambda a: torch.reshape(a, (4, 3)), lambda a: a.reshape(4, 3), [normal(3, 4)]),
    Case("reshape_noncontiguous", lambda a: a.t().reshape(-1), lambda a: a.T.reshape(-1), [normal(3, 4)]),
    Case("reshape_0d_to_1", lambda a: a.reshape(1, 1), lambda a: a.reshape(1, 1), [normal()]),
    Case("transpose", lambda a: a.transpose(0, 1), lambda a: a.swapaxes(0, 1), [normal(3, 4)]),
    Case("transpose_3d", lambda a: a.transpose(0, 2), lambda a: a.swapaxes(0, 2), [normal(2, 3, 4)]),
    Case("torch_transpose_neg", lambda a: torch.transpose(a, -1, -2), lambda a: a.swapaxes(-1, -2),
         [normal(2, 3, 4)]),
    Case("permute", lambda a: a.permute(2, 0, 1), lambda a: a.transpose(2, 0, 1), [normal(2, 3, 4)]),
    Case("permute_tuple", lambda a: a.permute((1, 2, 0)), lambda a: a.transpose(1, 2, 0), [normal(2, 3, 4)]),
    Case("t", lambda a: a.t(), lambda a: a.T, [normal(3, 4)]),
    Case("t_1d", lambda a: a.t(), lambda a: a, [normal(4)]),
    Case("torch_t", lambda a: torch.t(a), lambda a: a.T, [normal(2, 5)]),
    Case("T", lambda a: a.T, lambda a: a.T, [normal(3, 4)]),
    Case("transpose_then_mul", lambda a, b: a.t() * b, lambda a, b: a.T * b, [normal(3, 4), normal(4, 3)]),
    Case("squeeze", lambda a: a.squeeze(), lambda a: a.squeeze(), [normal(3, 1, 4, 1)]),
    Case("squeeze_dim", lambda a: a.squeeze(1), lambda a: a.squeeze(1), [normal(3, 1, 4)]),
    Case("torch_squeeze", lambda a: torch.squeeze(a, -1), lambda a: a.squeeze(-1), [normal(3, 1)]),
    Case("unsqueeze0", lambda a: a.unsqueeze(0), lambda a: a[None], [normal(3, 4)]),
    Case("unsqueeze-1", lambda a: a.unsqueeze(-1), lambda a: a[..., None], [normal(3, 4)]),
    Case("torch_unsqueeze_0d", lambda a: torch.unsqueeze(a, 0), lambda a: a.reshape(1), [normal()]),
    Case("expand", lambda a: a.expand(3, 4), lambda a: np.broadcast_to(a, (3, 4)), [normal(3, 1)]),
    Case("expand_new_dims", lambda a: a.expand(2, 3, 4), lambda a: np.broadcast_to(a, (2, 3, 4)),
         [normal(4)]),
    Case("expand_-1", lambda a: a.expand(-1, 5), lambda a: np.broadcast_to(a, (2, 5)), [normal(2, 1)]),
    Case("expand_0d", lambda a: a.expand(3), lambda a: np.broadcast_to(a, (3,)), [normal()]),
    Case("expand_as", lambda a, b: a.expand_as(b) * b, lambda a, b: a * b, [normal(1, 4), normal(3, 4)]),
    Case("clone", lambda a: a.clone(), lambda a: a.copy(), [normal(3, 4)]),
    Case("torch_clone", lambda a: torch.clone(a) * a, lambda a: a * a, [normal(3)]),
    Case("double", lambda a: a.double(), lambda a: a, [normal(3, 4)]),
    Case("to_float64", lambda a: a.to(torch.float64), lambda a: a, [normal(3, 4)]),
    Case("to_dtype_kw", lambda a: a.to(dtype=torch.float64) * 2, lambda a: a * 2, [normal(3)]),
    # ----- ops with their own node (their grad_fn names: tests/test_grad_fn_names.py) -----
    Case("leaky_relu", lambda a: torch.nn.functional.leaky_relu(a, 0.1),
         lambda a: np.where(a > 0, a, 0.1 * a), [away_from_zero(3, 4)], piecewise_linear=True),
    Case("softplus", lambda a: torch.nn.functional.softplus(a), lambda a: np.log1p(np.exp(a)), [normal(3, 4)]),
    Case("softplus_beta", lambda a: torch.nn.functional.softplus(a, beta=2.0, threshold=3.0),
         lambda a: np.log1p(np.exp(2 * a)) / 2, [positive(3, 4, low=-1.2, high=1.2)]),
    Case("softplus_linear_part", lambda a: torch.nn.functional.softplus(a, beta=2.0, threshold=3.0) * a,
         lambda a: a * a, [positive(3, 4, low=2.0, high=3.0)]),
    Case("silu", lambda a: torch.nn.functional.silu(a), lambda a: a / (1 + np.exp(-a)), [normal(3, 4)]),
    Case("logsigmoid", lambda a: torch.nn.functional.logsigmoid(a), lambda a: -np.log1p(np.exp(-a)),
         [normal(3, 4)]),
    Case("lerp_number", lambda a, b: a.lerp(b, 0.3), lambda a, b: a + 0.3 * (b - a), [normal(3, 4), normal(4)]),
    Case("lerp_number_high", lambda a, b: a.lerp(b, 0.75), lambda a, b: b - (b - a) * 0.25,
         [normal(3, 4), normal(3, 4)]),
    Case("lerp_tensor", lambda a, b, w: a.lerp(b, w), lambda a, b, w: a + w * (b - a),
         [normal(3, 4), normal(3, 4), normal(4)]),
    Case("addcmul", lambda a, b, c: a.addcmul(b, c, value=0.5), lambda a, b, c: a + 0.5 * b * c,
         [normal(3, 4), normal(4), normal(3, 1)]),
    Case("addcdiv", lambda a, b, c: a.addcdiv(b, c, value=-2.0), lambda a, b, c: a - 2.0 * b / c,
         [normal(3, 4), normal(3, 4), positive(4)]),
    Case("clamp_tensor_bounds", lambda a, lo, hi: a.clamp(lo, hi), lambda a, lo, hi: np.minimum(np.maximum(a, lo), hi),
         [distinct(3, 4), positive(4, low=-1.0, high=-0.05), positive(3, 1, low=0.05, high=1.0)]),
    Case("clamp_tensor_max", lambda a, hi: torch.clip(a, max=hi), lambda a, hi: np.minimum(a, hi),
         [distinct(3, 4), positive(4, low=0.05, high=1.0)]),
    Case("masked_fill_tensor_value", lambda a, v: a.masked_fill(torch.tensor([True, False, True, False]), v) * a,
         lambda a, v: np.where([True, False, True, False], v, a) * a, [normal(3, 4), normal()]),
    Case("index_select", lambda a: a.index_select(1, torch.tensor([2, 0, 2])) ** 2,
         lambda a: a[:, [2, 0, 2]] ** 2, [normal(3, 4)]),
    Case("matmul_2d_3d_folded", lambda a, b: a @ b, lambda a, b: a @ b, [normal(2, 4), normal(3, 4, 5)]),
    Case("tanh_gradgrad", lambda a: a.tanh() * a, lambda a: np.tanh(a) * a, [normal(3, 4)]),
    Case("sigmoid_gradgrad", lambda a: a.sigmoid() * a, lambda a: a / (1 + np.exp(-a)), [normal(3, 4)]),
    Case("relu_gradgrad", lambda a: a.relu() * a, lambda a: np.maximum(a, 0) * a, [away_from_zero(3, 4)]),
    Case("softmax_gradgrad", lambda a: a.softmax(1) * a, lambda a: np.exp(a) / np.exp(a).sum(1, keepdims=True) * a,
         [normal(3, 4)]),
    Case("log_softmax_gradgrad", lambda a: a.log_softmax(0) * a,
         lambda a: (a - np.log(np.exp(a).sum(0, keepdims=True))) * a, [normal(3, 4)]),
    Case("leaky_relu_gradgrad", lambda a: torch.nn.functional.leaky_relu(a, 0.2) * a,
         lambda a: np.where(a > 0, a, 0.2 * a) * a, [away_from_zero(3, 4)]),
    Case("logsigmoid_gradgrad", lambda a: torch.nn.functional.logsigmoid(a) * a,
         lambda a: -np.log1p(np.exp(-a)) * a, [normal(3, 4)]),
    Case("gelu", lambda a: torch.nn.functional.gelu(a),
         lambda a: a * 0.5 * (1 + np.vectorize(__import__("math").erf)(a / np.sqrt(2))), [normal(3, 4)]),
    Case("gelu_tanh", lambda a: torch.nn.functional.gelu(a, approximate="tanh"),
         lambda a: 0.5 * a * (1 + np.tanh(np.sqrt(2 / np.pi) * (a + 0.044715 * a ** 3))), [normal(3, 4)]),
    Case("mse_loss_mean", lambda a, b: torch.nn.functional.mse_loss(a, b), lambda a, b: ((a - b) ** 2).mean(),
         [normal(3, 4), normal(3, 4)]),
    Case("mse_loss_sum", lambda a, b: torch.nn.functional.mse_loss(a, b, reduction="sum"),
         lambda a, b: ((a - b) ** 2).sum(), [normal(3, 4), normal(3, 4)]),
    Case("mse_loss_none", lambda a, b: torch.nn.functional.mse_loss(a, b, reduction="none"),
         lambda a, b: (a - b) ** 2, [normal(3, 4), normal(3, 4)]),
    Case("broadcast_sum_to", lambda a, b: (a * b) ** 2, lambda a, b: (a * b) ** 2, [normal(3, 4), normal(4)]),
    Case("soft_cross_entropy", lambda a, t: torch.nn.functional.cross_entropy(a, t.softmax(1)),
         lambda a, t: -(np.exp(t) / np.exp(t).sum(1, keepdims=True)
                        * (a - np.log(np.exp(a).sum(1, keepdims=True)))).sum(1).mean(),
         [normal(3, 4), normal(3, 4)]),
    # ----- compositions -----
    Case("mlp_layer", lambda x, w, b: (x @ w + b).tanh().sum(1),
         lambda x, w, b: np.tanh(x @ w + b).sum(1), [normal(4, 3), normal(3, 2), normal(2)]),
    Case("softplus_like", lambda a: (a.exp() + 1).log(), lambda a: np.log1p(np.exp(a)), [normal(3, 2)]),
    Case("normalize", lambda a: a / a.norm(dim=1, keepdim=True),
         lambda a: a / np.linalg.norm(a, axis=1, keepdims=True), [normal(3, 4)]),
    Case("mse", lambda a, b: ((a - b) ** 2).mean(), lambda a, b: ((a - b) ** 2).mean(),
         [normal(5, 1), normal(5, 1)]),
]

IDS = [c.id for c in CASES]
assert len(set(IDS)) == len(IDS), "case ids must be unique"


def _draw(case, seed=0):
    rng = np.random.default_rng(seed)
    return [np.asarray(gen(rng), dtype=np.float64) for gen in case.inputs]


def _leaves(arrays):
    return [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_matches_numpy(case):
    arrays = _draw(case)
    out = case.fn(*_leaves(arrays))
    expected = np.asarray(case.ref(*[a.copy() for a in arrays]), dtype=np.float64)
    assert isinstance(out, torch.Tensor)
    assert out.dtype == torch.float64
    assert tuple(out.shape) == expected.shape
    assert out.requires_grad
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradcheck(case):
    assert gradcheck(case.fn, _draw(case, seed=1))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradgradcheck(case):
    arrays = _draw(case, seed=2)
    if case.piecewise_linear:
        # The second derivative with respect to the inputs is zero wherever it exists, so the
        # finite-difference check below only exercises the first derivative's linearity in the
        # incoming gradient v. Assert the structure directly as well: d(sum g)/dx == 0 and
        # d(sum g)/dv == J @ 1 (J from central differences), where g = v^T J.
        (x,) = _leaves(arrays)
        out = case.fn(x)
        v = torch.tensor(np.random.default_rng(3).standard_normal(tuple(out.shape)), dtype=torch.float64,
                         requires_grad=True)
        (g,) = torch.autograd.grad(out, x, v, create_graph=True)
        assert g.requires_grad
        gx, gv = torch.autograd.grad(g.sum(), [x, v], allow_unused=True)
        assert gx is None or np.all(values_of(gx) == 0.0)
        (jac,) = numerical_jacobian(case.fn, arrays)
        assert gv is not None
        np.testing.assert_allclose(values_of(gv).reshape(-1), jac.sum(axis=1), rtol=1e-6, atol=1e-8)
    assert gradgradcheck(case.fn, arrays)


# ----- the checker itself must be able to fail -----


def test_gradcheck_rejects_wrong_first_derivative():
    # a * a.detach() has value a**2 but analytic gradient a (not 2a).
    with pytest.raises(AssertionError):
        gradcheck(lambda a: a * a.detach(), [np.array([0.5, -1.0, 2.0])])


def test_gradgradcheck_rejects_wrong_second_derivative():
    # The hook detaches the incoming gradient: first derivatives are right, but the gradient no
    # longer depends on v under create_graph=True, which gradgradcheck must notice.
    def f(a):
        out = a ** 3
        out.register_hook(lambda g: g.detach())
        return out

    x = [np.array([0.5, -1.0, 2.0])]
    assert gradcheck(f, x)
    with pytest.raises(AssertionError):
        gradgradcheck(f, x)


def test_numerical_jacobian_closed_form():
    a = np.array([[1.0, 2.0], [3.0, -1.0]])
    b = np.array([0.5, -2.0])
    ja, jb = numerical_jacobian(lambda x, y: (x * y).sum(0), [a, b])
    # out[j] = sum_i a[i, j] * b[j]
    np.testing.assert_allclose(ja, [[0.5, 0, 0.5, 0], [0, -2.0, 0, -2.0]], atol=1e-8)
    np.testing.assert_allclose(jb, [[4.0, 0], [0, 1.0]], atol=1e-8)


@pytest.mark.parametrize(
    "src, cast, dst",
    [
        ("float32", lambda t: t.double(), "float64"),
        ("float32", lambda t: t.to(torch.float64), "float64"),
        ("float64", lambda t: t.float(), "float32"),
        ("float64", lambda t: t.to(dtype=torch.float32), "float32"),
    ],
    ids=["f32.double", "f32.to_f64", "f64.float", "f64.to_dtype_f32"],
)
def test_cast_forward_and_gradient_dtypes(src, cast, dst):
    values = np.array([0.25, -1.5, 3.0])
    x = torch.tensor(values, dtype=getattr(torch, src), requires_grad=True)
    y = cast(x)
    assert y.dtype == getattr(torch, dst)
    assert y.grad_fn is not None and y.grad_fn.name() == "ToCopyBackward0"
    np.testing.assert_allclose(y.detach().numpy(), values)
    (y * torch.tensor([1.0, 2.0, 3.0], dtype=getattr(torch, dst))).sum().backward()
    assert x.grad.dtype == getattr(torch, src)
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 2.0, 3.0])
