"""Attention and the transformer layers: ``F.multi_head_attention_forward``, ``nn.MultiheadAttention``,
``nn.TransformerEncoderLayer``/``DecoderLayer``, ``nn.TransformerEncoder``/``Decoder`` and
``nn.Transformer``.

First without PyTorch: a numpy oracle of multi-head attention built from the module's own weights
(masks, padding, ``bias_k``/``bias_v``, zero attention, separate key/value sizes, unbatched and
batch-first input), ``gradcheck``/``gradgradcheck`` in float64, the ``grad_fn`` names, reprs,
``state_dict`` keys and error messages. Then, when PyTorch is importable, the same calls under both:
seeded construction gives PyTorch's exact parameters, outputs, weights and gradients agree (with
training-mode dropout drawn from the same random stream), errors and warnings read the same, and a
seeded ``TransformerEncoder`` trains with PyTorch's losses.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import rustgrad
from gradcheck import gradcheck, gradgradcheck
from op_rows import grad_fn_name

nn = rustgrad.nn
F = rustgrad.nn.functional

# ----------------------------------------------------------------------------- numpy oracle


def np_softmax(s):
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def additive(mask):
    """A bool mask (True: masked out) or a float mask as numbers added to the scores."""
    if mask is None:
        return 0.0
    mask = np.asarray(mask)
    if mask.dtype == bool:
        return np.where(mask, -np.inf, 0.0)
    return mask.astype(np.float64)


def np_mha(m, query, key, value, key_padding_mask=None, attn_mask=None, average=True):
    """Multi-head attention from ``m``'s parameters, head by head: returns (output, weights)."""
    p = {k: v.detach().numpy().astype(np.float64) for k, v in m.named_parameters()}
    E, h = m.embed_dim, m.num_heads
    hd = E // h
    unbatched = query.ndim == 2
    if unbatched:
        query, key, value = query[:, None], key[:, None], value[:, None]
        if key_padding_mask is not None:
            key_padding_mask = np.asarray(key_padding_mask)[None]
    elif m.batch_first:
        query, key, value = (x.transpose(1, 0, 2) for x in (query, key, value))
    if "in_proj_weight" in p:
        wq, wk, wv = np.split(p["in_proj_weight"], 3)
    else:
        wq, wk, wv = p["q_proj_weight"], p["k_proj_weight"], p["v_proj_weight"]
    bq, bk, bv = np.split(p["in_proj_bias"], 3) if "in_proj_bias" in p else (0.0, 0.0, 0.0)
    Q, K, V = query @ wq.T + bq, key @ wk.T + bk, value @ wv.T + bv
    L, N, _ = Q.shape
    mask = np.zeros((N * h, L, K.shape[0]))
    mask = mask + (additive(attn_mask) if attn_mask is not None else 0.0)
    pad = additive(key_padding_mask) if key_padding_mask is not None else np.zeros((N, K.shape[0]))
    pad = np.repeat(pad, h, axis=0)[:, None, :]
    mask = mask + pad
    if "bias_k" in p:
        K = np.concatenate([K, np.tile(p["bias_k"], (1, N, 1))])
        V = np.concatenate([V, np.tile(p["bias_v"], (1, N, 1))])
        mask = np.concatenate([mask, np.zeros((N * h, L, 1))], -1)
    if m.add_zero_attn:
        K = np.concatenate([K, np.zeros((1, N, E))])
        V = np.concatenate([V, np.zeros((1, N, E))])
        mask = np.concatenate([mask, np.zeros((N * h, L, 1))], -1)
    S = K.shape[0]
    out = np.zeros((L, N, E))
    weights = np.zeros((N, h, L, S))
    for n in range(N):
        for j in range(h):
            cols = slice(j * hd, (j + 1) * hd)
            scores = Q[:, n, cols] @ K[:, n, cols].T / math.sqrt(hd) + mask[n * h + j]
            w = np_softmax(scores)
            weights[n, j] = w
            out[:, n, cols] = w @ V[:, n, cols]
    out = out @ p["out_proj.weight"].T + p.get("out_proj.bias", 0.0)
    if average:
        weights = weights.mean(1)
    if unbatched:
        return out[:, 0], weights[0]
    if m.batch_first:
        out = out.transpose(1, 0, 2)
    return out, weights


def t64(a, requires_grad=False):
    return rustgrad.tensor(np.asarray(a), dtype=rustgrad.float64, requires_grad=requires_grad)


# (id, module kwargs, input options: padding mask "kpm" and attn_mask "am" kinds, unbatched)
ORACLE_CASES = [
    ("plain", {}, {}),
    ("batch_first", {"batch_first": True}, {}),
    ("bool_padding", {}, {"kpm": "bool"}),
    ("float_padding", {}, {"kpm": "float"}),
    ("bool_attn_mask", {}, {"am": "bool"}),
    ("float_attn_mask_3d", {}, {"am": "float3"}),
    ("both_masks", {"batch_first": True}, {"kpm": "float", "am": "float"}),
    ("bias_kv", {"add_bias_kv": True}, {"kpm": "bool", "am": "bool"}),
    ("zero_attn", {"add_zero_attn": True}, {"kpm": "bool"}),
    ("bias_kv_zero_attn", {"add_bias_kv": True, "add_zero_attn": True}, {"am": "float"}),
    ("kdim_vdim", {"kdim": 3, "vdim": 5}, {"kpm": "bool"}),
    ("no_bias", {"bias": False}, {}),
    ("unbatched", {}, {"unbatched": True, "kpm": "bool", "am": "bool"}),
    ("unbatched_3d_mask", {"kdim": 3, "vdim": 5}, {"unbatched": True, "am": "float3"}),
]


def oracle_inputs(kw, opts, seed=0):
    rng = np.random.default_rng(seed)
    L, S, N, E, h = 3, opts.get("S", 4), 2, 6, 2
    kdim, vdim = kw.get("kdim", E), kw.get("vdim", E)
    if opts.get("unbatched"):
        N = 1
        shape = lambda T, D: (T, D)
    elif kw.get("batch_first"):
        shape = lambda T, D: (N, T, D)
    else:
        shape = lambda T, D: (T, N, D)
    q = rng.standard_normal(shape(L, E))
    k = rng.standard_normal(shape(S, kdim))
    v = rng.standard_normal(shape(S, vdim))
    kpm = am = None
    pad = rng.random((N, S)) < 0.4
    pad[:, 0] = False
    if opts.get("kpm") == "bool":
        kpm = pad
    elif opts.get("kpm") == "float":
        kpm = np.where(pad, -3.0, 0.5) + rng.standard_normal((N, S)) * 0.1
    if opts.get("kpm") is not None and opts.get("unbatched"):
        kpm = kpm[0]
    if opts.get("am") == "bool":
        am = rng.random((L, S)) < 0.4
        am[:, 0] = False
    elif opts.get("am") == "float":
        am = rng.standard_normal((L, S))
    elif opts.get("am") == "float3":
        am = rng.standard_normal((N * h, L, S))
    return q, k, v, kpm, am


def as_mask(a):
    if a is None:
        return None
    a = np.asarray(a)
    return rustgrad.tensor(a) if a.dtype == bool else t64(a)


@pytest.mark.parametrize("name,kw,opts", ORACLE_CASES, ids=[c[0] for c in ORACLE_CASES])
@pytest.mark.parametrize("average", [True, False])
def test_multihead_attention_matches_the_numpy_oracle(name, kw, opts, average):
    rustgrad.manual_seed(0)
    m = nn.MultiheadAttention(6, 2, **kw).double()
    q, k, v, kpm, am = oracle_inputs(kw, opts)
    want_out, want_w = np_mha(m, q, k, v, kpm, am, average)
    for need_weights in (True, False):
        out, w = m(
            t64(q),
            t64(k),
            t64(v),
            key_padding_mask=as_mask(kpm),
            attn_mask=as_mask(am),
            need_weights=need_weights,
            average_attn_weights=average,
        )
        np.testing.assert_allclose(out.detach().numpy(), want_out, rtol=1e-10, atol=1e-12)
        if need_weights:
            np.testing.assert_allclose(w.detach().numpy(), want_w, rtol=1e-10, atol=1e-12)
        else:
            assert w is None


def test_functional_forward_with_static_keys_and_values():
    rng = np.random.default_rng(3)
    L, S, N, E, h = 3, 4, 2, 4, 2
    hd = E // h
    q = rng.standard_normal((L, N, E))
    w_in, b_in = rng.standard_normal((3 * E, E)), rng.standard_normal(3 * E)
    w_out, b_out = rng.standard_normal((E, E)), rng.standard_normal(E)
    sk, sv = rng.standard_normal((N * h, S, hd)), rng.standard_normal((N * h, S, hd))
    out, w = F.multi_head_attention_forward(
        t64(q),
        t64(q),
        t64(q),
        E,
        h,
        t64(w_in),
        t64(b_in),
        None,
        None,
        False,
        0.0,
        t64(w_out),
        t64(b_out),
        static_k=t64(sk),
        static_v=t64(sv),
        average_attn_weights=False,
    )
    Q = (q @ w_in[:E].T + b_in[:E]).reshape(L, N * h, hd).transpose(1, 0, 2)
    want_w = np_softmax(Q @ sk.transpose(0, 2, 1) / math.sqrt(hd))
    o = (want_w @ sv).transpose(1, 0, 2).reshape(L, N, E)
    np.testing.assert_allclose(w.numpy(), want_w.reshape(N, h, L, S), rtol=1e-10)
    np.testing.assert_allclose(out.detach().numpy(), o @ w_out.T + b_out, rtol=1e-10)


def test_causal_hint_gives_the_masked_values():
    rustgrad.manual_seed(1)
    m = nn.MultiheadAttention(4, 2).double()
    x = t64(np.random.default_rng(2).standard_normal((5, 2, 4)))
    causal = nn.Transformer.generate_square_subsequent_mask(5, dtype=rustgrad.float64)
    want, _ = np_mha(m, x.numpy(), x.numpy(), x.numpy(), attn_mask=causal.numpy())
    for need_weights in (True, False):
        out, _ = m(x, x, x, attn_mask=causal, is_causal=True, need_weights=need_weights)
        np.testing.assert_allclose(out.detach().numpy(), want, rtol=1e-10)


def test_square_subsequent_mask():
    mask = nn.Transformer.generate_square_subsequent_mask(3)
    assert mask.dtype == rustgrad.float32
    expected = np.array([[0, -np.inf, -np.inf], [0, 0, -np.inf], [0, 0, 0]], dtype=np.float32)
    np.testing.assert_array_equal(mask.numpy(), expected)
    assert nn.Transformer.generate_square_subsequent_mask(2, dtype=rustgrad.float64).dtype == rustgrad.float64


def test_fully_masked_query_attends_to_nothing_without_weights():
    rustgrad.manual_seed(0)
    m = nn.MultiheadAttention(4, 2).double()
    x = t64(np.random.default_rng(0).standard_normal((3, 2, 4)), requires_grad=True)
    pad = rustgrad.tensor([[True, True, True], [False, True, False]])
    out, _ = m(x, x, x, key_padding_mask=pad, need_weights=False)
    # PyTorch's scaled_dot_product_attention gives zeros (then the out-projection's bias), not NaN
    np.testing.assert_allclose(out[:, 0].detach().numpy(), np.zeros((3, 4)), atol=0)
    out.sum().backward()
    assert np.isfinite(x.grad.numpy()).all()


# ----------------------------------------------------------------------------- gradients


def _mha_fn(need_weights, average=True, **kwargs):
    E, h = 4, 2

    def f(q, k, v, w_in, b_in, w_out, b_out, mask):
        out, w = F.multi_head_attention_forward(
            q,
            k,
            v,
            E,
            h,
            w_in,
            b_in,
            None,
            None,
            False,
            0.0,
            w_out,
            b_out,
            attn_mask=mask,
            need_weights=need_weights,
            average_attn_weights=average,
            **kwargs,
        )
        return (out, w) if need_weights else out

    return f


def _mha_inputs(seed=0):
    rng = np.random.default_rng(seed)
    L, S, N, E = 2, 3, 2, 4
    return [
        rng.standard_normal((L, N, E)),
        rng.standard_normal((S, N, E)),
        rng.standard_normal((S, N, E)),
        rng.standard_normal((3 * E, E)) * 0.5,
        rng.standard_normal(3 * E) * 0.1,
        rng.standard_normal((E, E)) * 0.5,
        rng.standard_normal(E) * 0.1,
        rng.standard_normal((L, S)),
    ]


@pytest.mark.parametrize("need_weights,average", [(True, True), (True, False), (False, True)])
def test_multi_head_attention_forward_gradcheck(need_weights, average):
    f = _mha_fn(need_weights, average)
    assert gradcheck(f, _mha_inputs())
    assert gradgradcheck(f, _mha_inputs(1))


def test_self_attention_with_bias_kv_and_zero_attn_gradcheck():
    rustgrad.manual_seed(0)
    m = nn.MultiheadAttention(4, 2, add_bias_kv=True, add_zero_attn=True).double()
    x = np.random.default_rng(4).standard_normal((3, 2, 4))
    assert gradcheck(lambda x: m(x, x, x)[0], [x])
    assert gradgradcheck(lambda x: m(x, x, x, need_weights=False)[0], [x])


def test_transformer_layers_gradcheck():
    rustgrad.manual_seed(0)
    enc = nn.TransformerEncoderLayer(4, 2, 6, dropout=0.0, activation="gelu").double()
    dec = nn.TransformerDecoderLayer(4, 2, 6, dropout=0.0, norm_first=True).double()
    rng = np.random.default_rng(5)
    src, tgt = rng.standard_normal((3, 2, 4)), rng.standard_normal((2, 2, 4))
    causal = nn.Transformer.generate_square_subsequent_mask(2, dtype=rustgrad.float64)
    assert gradcheck(lambda s: enc(s), [src])
    assert gradgradcheck(lambda s: enc(s), [src])
    assert gradcheck(lambda t, s: dec(t, s, tgt_mask=causal), [tgt, src])
    assert gradgradcheck(lambda t, s: dec(t, s, tgt_mask=causal), [tgt, src])


def test_grad_fn_names():
    x = rustgrad.randn(3, 2, 4, requires_grad=True)
    m = nn.MultiheadAttention(4, 2)
    out, w = m(x, x, x)
    assert (grad_fn_name(out), grad_fn_name(w)) == ("ViewBackward0", "MeanBackward1")
    out, w = m(x, x, x, average_attn_weights=False)
    assert grad_fn_name(w) == "ViewBackward0"
    out, w = m(x, x, x, need_weights=False)
    assert (grad_fn_name(out), w) == ("ViewBackward0", None)
    out, w = m(x[:, 0], x[:, 0], x[:, 0])
    assert (grad_fn_name(out), grad_fn_name(w)) == ("SqueezeBackward1", "SqueezeBackward1")
    m = nn.MultiheadAttention(4, 2, batch_first=True)
    assert grad_fn_name(m(x, x, x)[0]) == "TransposeBackward0"
    layer = nn.TransformerEncoderLayer(4, 2, 8)
    assert grad_fn_name(layer(x)) == "NativeLayerNormBackward0"


# ----------------------------------------------------------------------------- modules


def test_reprs_and_state_dict_keys():
    m = nn.MultiheadAttention(4, 2, add_bias_kv=True, kdim=3)
    assert repr(m) == (
        "MultiheadAttention(\n"
        "  (out_proj): NonDynamicallyQuantizableLinear(in_features=4, out_features=4, bias=True)\n"
        ")"
    )
    assert isinstance(m.out_proj, nn.Linear)
    assert list(m.state_dict()) == [
        "q_proj_weight",
        "k_proj_weight",
        "v_proj_weight",
        "in_proj_bias",
        "bias_k",
        "bias_v",
        "out_proj.weight",
        "out_proj.bias",
    ]
    assert m.in_proj_weight is None and m.head_dim == 2 and not m._qkv_same_embed_dim
    assert list(nn.MultiheadAttention(4, 2, bias=False).state_dict()) == ["in_proj_weight", "out_proj.weight"]
    with pytest.warns(UserWarning, match="enable_nested_tensor is True"):
        enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(4, 2, 8), 2)
    assert repr(enc) == (
        "TransformerEncoder(\n"
        "  (layers): ModuleList(\n"
        "    (0-1): 2 x TransformerEncoderLayer(\n"
        "      (self_attn): MultiheadAttention(\n"
        "        (out_proj): NonDynamicallyQuantizableLinear(in_features=4, out_features=4, bias=True)\n"
        "      )\n"
        "      (linear1): Linear(in_features=4, out_features=8, bias=True)\n"
        "      (dropout): Dropout(p=0.1, inplace=False)\n"
        "      (linear2): Linear(in_features=8, out_features=4, bias=True)\n"
        "      (norm1): LayerNorm((4,), eps=1e-05, elementwise_affine=True, bias=True)\n"
        "      (norm2): LayerNorm((4,), eps=1e-05, elementwise_affine=True, bias=True)\n"
        "      (dropout1): Dropout(p=0.1, inplace=False)\n"
        "      (dropout2): Dropout(p=0.1, inplace=False)\n"
        "    )\n"
        "  )\n"
        ")"
    )
    dec = nn.TransformerDecoderLayer(4, 2, 8)
    assert [name for name, _ in dec.named_children()] == [
        "self_attn",
        "multihead_attn",
        "linear1",
        "dropout",
        "linear2",
        "norm1",
        "norm2",
        "norm3",
        "dropout1",
        "dropout2",
        "dropout3",
    ]
    with pytest.warns(UserWarning, match="enable_nested_tensor"):
        t = nn.Transformer(4, 2, 1, 1, 8)
    assert list(t.state_dict())[:3] == [
        "encoder.layers.0.self_attn.in_proj_weight",
        "encoder.layers.0.self_attn.in_proj_bias",
        "encoder.layers.0.self_attn.out_proj.weight",
    ]
    assert "decoder.norm.bias" in t.state_dict() and "encoder.norm.weight" in t.state_dict()


def test_encoder_layers_are_independent_copies():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(4, 2, 8, batch_first=True), 3)
    params = [layer.linear1.weight for layer in enc.layers]
    assert len({id(p) for p in params}) == 3
    np.testing.assert_array_equal(params[0].detach().numpy(), params[2].detach().numpy())


def test_activation_choice():
    assert nn.TransformerEncoderLayer(4, 2, activation="gelu").activation is F.gelu
    assert nn.TransformerEncoderLayer(4, 2).activation_relu_or_gelu == 1
    assert nn.TransformerEncoderLayer(4, 2, activation=nn.GELU()).activation_relu_or_gelu == 2
    assert nn.TransformerEncoderLayer(4, 2, activation=rustgrad.tanh).activation_relu_or_gelu == 0
    with pytest.raises(RuntimeError, match="activation should be relu/gelu, not tanh"):
        nn.TransformerDecoderLayer(4, 2, activation="tanh")


def test_eval_padding_is_zeroed_as_pytorchs_nested_tensors_do():
    rustgrad.manual_seed(0)
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(4, 2, 8, batch_first=True), 1).eval()
    x = rustgrad.randn(2, 3, 4)
    pad = rustgrad.tensor([[False, False, True], [False, False, False]])
    with rustgrad.no_grad():
        out = enc(x, src_key_padding_mask=pad)
        assert out[0, 2].abs().sum().item() == 0
        rustgrad.backends.mha.set_fastpath_enabled(False)
        try:
            assert (
                out[0, 2].abs().sum().item() == 0 and enc(x, src_key_padding_mask=pad)[0, 2].abs().sum() > 0
            )
        finally:
            rustgrad.backends.mha.set_fastpath_enabled(True)
    with_grad = enc(x, src_key_padding_mask=pad)
    np.testing.assert_allclose(with_grad[:, :2].detach().numpy()[0], out[0, :2].numpy(), rtol=1e-6)
    assert with_grad[0, 2].abs().sum().item() > 0


def _raises(fn, exc, message):
    with pytest.raises(exc) as info:
        fn()
    assert str(info.value) == message


# (name, call(lib), exception, PyTorch's message)
ERRORS = [
    (
        "heads_not_dividing",
        lambda lib: lib.nn.MultiheadAttention(5, 2),
        AssertionError,
        "embed_dim must be divisible by num_heads",
    ),
    (
        "zero_heads",
        lambda lib: lib.nn.MultiheadAttention(4, 0),
        ValueError,
        "embed_dim and num_heads must be greater than 0, got embed_dim=4 and num_heads=0 instead",
    ),
    (
        "query_4d",
        lambda lib: lib.nn.MultiheadAttention(4, 2)(*[lib.zeros(1, 2, 3, 4)] * 3),
        AssertionError,
        "query should be unbatched 2D or batched 3D tensor but received 4-D query tensor",
    ),
    (
        "key_2d",
        lambda lib: lib.nn.MultiheadAttention(4, 2)(lib.zeros(2, 3, 4), lib.zeros(3, 4), lib.zeros(3, 4)),
        AssertionError,
        (
            "For batched (3-D) `query`, expected `key` and `value` to be 3-D but found 2-D and 2-D "
            "tensors respectively"
        ),
    ),
    (
        "padding_3d",
        lambda lib: lib.nn.MultiheadAttention(4, 2)(
            *[lib.zeros(2, 3, 4)] * 3, key_padding_mask=lib.zeros(1, 3, 2, dtype=lib.bool)
        ),
        AssertionError,
        "For batched (3-D) `query`, expected `key_padding_mask` to be `None` or 2-D but found 3-D tensor instead",
    ),
    (
        "unbatched_mask_shape",
        lambda lib: lib.nn.MultiheadAttention(4, 2)(*[lib.zeros(3, 4)] * 3, attn_mask=lib.zeros(1, 3, 3)),
        AssertionError,
        "Expected `attn_mask` shape to be (2, 3, 3) but got torch.Size([1, 3, 3])",
    ),
    (
        "int_mask",
        lambda lib: lib.nn.MultiheadAttention(4, 2)(
            *[lib.zeros(2, 3, 4)] * 3, attn_mask=lib.zeros(2, 2, dtype=lib.int64)
        ),
        AssertionError,
        "only bool and floating types of attn_mask are supported",
    ),
    (
        "mask_2d_shape",
        lambda lib: lib.nn.MultiheadAttention(4, 2)(*[lib.zeros(2, 3, 4)] * 3, attn_mask=lib.zeros(2, 3)),
        RuntimeError,
        "The shape of the 2D attn_mask is torch.Size([2, 3]), but should be (2, 2).",
    ),
    (
        "mask_3d_shape",
        lambda lib: lib.nn.MultiheadAttention(4, 2)(*[lib.zeros(2, 3, 4)] * 3, attn_mask=lib.zeros(3, 2, 2)),
        RuntimeError,
        "The shape of the 3D attn_mask is torch.Size([3, 2, 2]), but should be (6, 2, 2).",
    ),
    (
        "padding_shape",
        lambda lib: lib.nn.MultiheadAttention(4, 2)(
            *[lib.zeros(2, 3, 4)] * 3, key_padding_mask=lib.zeros(3, 3, dtype=lib.bool)
        ),
        AssertionError,
        "Expected key_padded_mask.shape[1] to be 2, but got 3",
    ),
    (
        "padding_batch",
        lambda lib: lib.nn.MultiheadAttention(4, 2)(
            *[lib.zeros(2, 3, 4)] * 3, key_padding_mask=lib.zeros(2, 2, dtype=lib.bool)
        ),
        AssertionError,
        "Expected key_padded_mask.shape[0] to be 3, but got 2",
    ),
    (
        "embed_dim",
        lambda lib: lib.nn.MultiheadAttention(4, 2)(*[lib.zeros(2, 3, 6)] * 3),
        AssertionError,
        "was expecting embedding dimension of 4, but got 6",
    ),
    (
        "key_value_shapes",
        lambda lib: lib.nn.MultiheadAttention(4, 2)(
            lib.zeros(2, 3, 4), lib.zeros(5, 3, 4), lib.zeros(4, 3, 4)
        ),
        AssertionError,
        "key shape torch.Size([5, 3, 4]) does not match value shape torch.Size([4, 3, 4])",
    ),
    (
        "separate_key_value_shapes",
        lambda lib: lib.nn.MultiheadAttention(4, 2, kdim=3)(
            lib.zeros(2, 3, 4), lib.zeros(5, 3, 3), lib.zeros(4, 3, 4)
        ),
        AssertionError,
        "key's sequence and batch dims torch.Size([5, 3]) do not match value's torch.Size([4, 3])",
    ),
    (
        "kdim",
        lambda lib: lib.nn.MultiheadAttention(4, 2, kdim=3)(
            lib.zeros(2, 3, 4), lib.zeros(5, 3, 2), lib.zeros(5, 3, 4)
        ),
        AssertionError,
        "expecting key weights shape of (4, 2), but got torch.Size([4, 3])",
    ),
    (
        "causal_without_mask",
        lambda lib: lib.nn.MultiheadAttention(4, 2)(*[lib.zeros(2, 3, 4)] * 3, is_causal=True),
        RuntimeError,
        (
            "Need attn_mask if specifying the is_causal hint. You may use the Transformer module method "
            "`generate_square_subsequent_mask` to create this mask."
        ),
    ),
    (
        "bias_k_only",
        lambda lib: lib.nn.functional.multi_head_attention_forward(
            *[lib.zeros(2, 3, 4)] * 3,
            4,
            2,
            lib.zeros(12, 4),
            None,
            lib.zeros(1, 1, 4),
            None,
            False,
            0.0,
            lib.zeros(4, 4),
            None,
        ),
        AssertionError,
        "bias_k is set but bias_v is None",
    ),
    (
        "activation",
        lambda lib: lib.nn.TransformerEncoderLayer(4, 2, activation="silu"),
        RuntimeError,
        "activation should be relu/gelu, not silu",
    ),
    (
        "transformer_batch",
        lambda lib: lib.nn.Transformer(4, 2, 1, 1, 8)(lib.zeros(3, 2, 4), lib.zeros(3, 1, 4)),
        RuntimeError,
        "the batch number of src and tgt must be equal",
    ),
    (
        "transformer_features",
        lambda lib: lib.nn.Transformer(4, 2, 1, 1, 8)(lib.zeros(3, 2, 4), lib.zeros(3, 2, 5)),
        RuntimeError,
        "the feature number of src and tgt must be equal to d_model",
    ),
]


@pytest.mark.parametrize("name,call,exc,message", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_read_as_pytorchs(name, call, exc, message):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _raises(lambda: call(rustgrad), exc, message)


def test_mismatched_mask_types_warn():
    m = nn.MultiheadAttention(4, 2)
    x = rustgrad.zeros(2, 3, 4)
    with pytest.warns(
        UserWarning,
        match=r"^Support for mismatched key_padding_mask and attn_mask is deprecated\. "
        r"Use same type for both instead\.$",
    ):
        m(x, x, x, key_padding_mask=rustgrad.zeros(3, 2, dtype=rustgrad.bool), attn_mask=rustgrad.zeros(2, 2))


# ----------------------------------------------------------------------------- against PyTorch


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


MODULE_CASES = [
    ("mha", lambda lib: lib.nn.MultiheadAttention(6, 2)),
    ("mha_kv", lambda lib: lib.nn.MultiheadAttention(6, 3, add_bias_kv=True, kdim=4, vdim=5, bias=False)),
    (
        "mha_zero",
        lambda lib: lib.nn.MultiheadAttention(
            6, 2, add_zero_attn=True, add_bias_kv=True, batch_first=True, dtype=lib.float64
        ),
    ),
    ("encoder_layer", lambda lib: lib.nn.TransformerEncoderLayer(6, 2, 10, norm_first=True, bias=False)),
    (
        "decoder_layer",
        lambda lib: lib.nn.TransformerDecoderLayer(6, 3, 10, activation="gelu", batch_first=True),
    ),
    (
        "encoder",
        lambda lib: lib.nn.TransformerEncoder(
            lib.nn.TransformerEncoderLayer(6, 2, 10, batch_first=True), 2, lib.nn.LayerNorm(6)
        ),
    ),
    (
        "encoder_odd_heads",
        lambda lib: lib.nn.TransformerEncoder(
            lib.nn.TransformerEncoderLayer(6, 3, 10, batch_first=True), 1, enable_nested_tensor=True
        ),
    ),
    ("decoder", lambda lib: lib.nn.TransformerDecoder(lib.nn.TransformerDecoderLayer(6, 2, 10), 2)),
    ("transformer", lambda lib: lib.nn.Transformer(6, 2, 2, 1, 10, layer_norm_eps=1e-6)),
    (
        "transformer_gelu",
        lambda lib: lib.nn.Transformer(
            6, 2, 1, 2, 10, activation=lib.nn.GELU(), norm_first=True, batch_first=True, bias=False
        ),
    ),
]


def _build(lib, make):
    lib.manual_seed(7)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = make(lib)
    return module, [(w.category, str(w.message)) for w in caught]


@pytest.mark.parametrize("name,make", MODULE_CASES, ids=[c[0] for c in MODULE_CASES])
def test_seeded_construction_matches_pytorch(torch, name, make):
    theirs, their_warnings = _build(torch, make)
    ours, our_warnings = _build(rustgrad, make)
    assert repr(ours) == repr(theirs)
    assert our_warnings == their_warnings
    a, b = ours.state_dict(), theirs.state_dict()
    assert list(a) == list(b)
    for key in a:
        assert a[key].dtype == getattr(rustgrad, str(b[key].dtype).split(".")[1])
        np.testing.assert_array_equal(a[key].numpy(), b[key].numpy(), err_msg=key)


def _mask(lib, a):
    if a is None:
        return None
    a = np.asarray(a)
    return lib.tensor(a)


def _run_mha(lib, module_kw, call_kw, masks, dtype, training):
    lib.manual_seed(7)
    m = lib.nn.MultiheadAttention(
        6, 2, dropout=0.3 if training else 0.0, dtype=getattr(lib, dtype), **module_kw
    )
    m.train(training)
    q, k, v, kpm, am = oracle_inputs(module_kw, masks, seed=4)
    self_attention = call_kw.pop("self", False)
    tq = lib.tensor(q.astype(dtype), requires_grad=True)
    tk = tq if self_attention else lib.tensor(k.astype(dtype), requires_grad=True)
    tv = tq if self_attention else lib.tensor(v.astype(dtype), requires_grad=True)
    if kpm is not None and np.asarray(kpm).dtype != bool:
        kpm = np.asarray(kpm).astype(dtype)
    if am is not None and np.asarray(am).dtype != bool:
        am = np.asarray(am).astype(dtype)
    lib.manual_seed(11)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out, w = m(tq, tk, tv, key_padding_mask=_mask(lib, kpm), attn_mask=_mask(lib, am), **call_kw)
    loss = (out * out).sum() + (w.sum() * 3 if w is not None else 0)
    loss.backward()
    grads = {n: p.grad.numpy() for n, p in m.named_parameters()}
    grads["query"] = tq.grad.numpy()
    if not self_attention:
        grads["key"], grads["value"] = tk.grad.numpy(), tv.grad.numpy()
    names = (type(out.grad_fn).__name__, None if w is None else type(w.grad_fn).__name__)
    names += tuple(str(c.message) for c in caught)
    return out.detach().numpy(), None if w is None else w.detach().numpy(), grads, names


MHA_CALLS = [
    ("weights", {}, {}, {}),
    ("no_weights", {}, {"need_weights": False}, {}),
    ("per_head", {"batch_first": True}, {"average_attn_weights": False}, {"kpm": "bool"}),
    (
        "self_batch_first",
        {"batch_first": True},
        {"self": True, "need_weights": False},
        {"kpm": "bool", "am": "bool", "S": 3},
    ),
    ("self_float_masks", {}, {"self": True}, {"kpm": "float", "am": "float3", "S": 3}),
    ("bias_kv", {"add_bias_kv": True}, {"need_weights": False}, {"am": "float", "kpm": "float"}),
    ("zero_attn", {"add_zero_attn": True, "bias": False}, {}, {"kpm": "bool"}),
    ("kdim_vdim", {"kdim": 3, "vdim": 5}, {"need_weights": False}, {"am": "bool"}),
    ("unbatched", {}, {}, {"unbatched": True, "kpm": "bool", "am": "float"}),
    ("unbatched_no_weights", {"kdim": 3}, {"need_weights": False}, {"unbatched": True, "am": "float3"}),
]


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train_dropout"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,module_kw,call_kw,masks", MHA_CALLS, ids=[c[0] for c in MHA_CALLS])
def test_multihead_attention_matches_pytorch(torch, name, module_kw, call_kw, masks, dtype, training):
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == "float32" else {"rtol": 1e-10, "atol": 1e-10}
    theirs = _run_mha(torch, module_kw, dict(call_kw), masks, dtype, training)
    ours = _run_mha(rustgrad, module_kw, dict(call_kw), masks, dtype, training)
    np.testing.assert_allclose(ours[0], theirs[0], **tol)
    if theirs[1] is None:
        assert ours[1] is None
    else:
        np.testing.assert_allclose(ours[1], theirs[1], **tol)
    assert list(ours[2]) == list(theirs[2])
    for key in theirs[2]:
        np.testing.assert_allclose(ours[2][key], theirs[2][key], err_msg=key, **tol)
    assert ours[3] == theirs[3]  # grad_fn names and warnings


def test_causal_detection_matches_pytorch(torch):
    results = []
    for lib in (torch, rustgrad):
        lib.manual_seed(3)
        dec = lib.nn.TransformerDecoder(lib.nn.TransformerDecoderLayer(6, 2, 8, dropout=0.2), 2)
        x = lib.tensor(
            np.random.default_rng(0).standard_normal((5, 2, 6)).astype(np.float32), requires_grad=True
        )
        mem = lib.tensor(np.random.default_rng(1).standard_normal((4, 2, 6)).astype(np.float32))
        causal = lib.nn.Transformer.generate_square_subsequent_mask(5)
        lib.manual_seed(9)
        out = dec(x, mem, tgt_mask=causal)
        out.sum().backward()
        results.append((out.detach().numpy(), x.grad.numpy()))
    for ours, theirs in zip(results[1], results[0]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def _transformer_outputs(lib, make, mode, bf):
    module, _ = _build(lib, make)
    module.train(mode == "train")
    rng = np.random.default_rng(2)
    N, S, T = 3, 5, 4
    src = rng.standard_normal((N, S, 6) if bf else (S, N, 6)).astype(np.float32)
    tgt = rng.standard_normal((N, T, 6) if bf else (T, N, 6)).astype(np.float32)
    pad = np.zeros((N, S), bool)
    pad[0, 3:] = True
    pad[2, 4] = True
    s = lib.tensor(src, requires_grad=mode != "no_grad")
    t = lib.tensor(tgt, requires_grad=mode != "no_grad")
    kpm = lib.tensor(pad)
    causal = lib.nn.Transformer.generate_square_subsequent_mask(T)
    lib.manual_seed(5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with lib.no_grad() if mode == "no_grad" else lib.enable_grad():
            if isinstance(module, (lib.nn.TransformerEncoder, lib.nn.TransformerEncoderLayer)):
                out = module(s, src_key_padding_mask=kpm)
            elif isinstance(module, (lib.nn.TransformerDecoder, lib.nn.TransformerDecoderLayer)):
                out = module(t, s, tgt_mask=causal, memory_key_padding_mask=kpm)
            else:
                out = module(s, t, tgt_mask=causal, src_key_padding_mask=kpm, memory_key_padding_mask=kpm)
    if mode == "no_grad":
        return [out.numpy()]
    (out * out).sum().backward()
    return [out.detach().numpy(), s.grad.numpy()] + [p.grad.numpy() for p in module.parameters()]


@pytest.mark.parametrize("mode", ["train", "eval", "no_grad"])
@pytest.mark.parametrize("name,make", MODULE_CASES[3:], ids=[c[0] for c in MODULE_CASES[3:]])
def test_transformer_modules_match_pytorch(torch, name, make, mode):
    module, _ = _build(rustgrad, make)
    bf = any(getattr(m, "batch_first", False) for m in module.modules())
    theirs = _transformer_outputs(torch, make, mode, bf)
    ours = _transformer_outputs(rustgrad, make, mode, bf)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5)


def test_nested_tensor_path_without_mask_check_matches_pytorch(torch):
    outs = []
    for lib in (torch, rustgrad):
        lib.manual_seed(0)
        enc = lib.nn.TransformerEncoder(
            lib.nn.TransformerEncoderLayer(4, 2, 8, batch_first=True), 1, mask_check=False
        ).eval()
        x = lib.tensor(np.random.default_rng(0).standard_normal((2, 4, 4)).astype(np.float32))
        pad = lib.tensor(np.array([[False, True, False, True], [False, False, False, False]]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with lib.no_grad():
                outs.append(enc(x, src_key_padding_mask=pad).numpy())
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name,call,exc,message", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_match_pytorch(torch, name, call, exc, message):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _raises(lambda: call(torch), exc, message)


def test_mask_warnings_match_pytorch(torch):
    caught = []
    for lib in (torch, rustgrad):
        lib.manual_seed(0)
        x = lib.zeros(3, 2, 4)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            enc = lib.nn.TransformerEncoder(
                lib.nn.TransformerEncoderLayer(4, 2, 8), 1, enable_nested_tensor=False
            )
            enc(x, mask=lib.zeros(3, 3), src_key_padding_mask=lib.zeros(2, 3, dtype=lib.bool))
            lib.nn.MultiheadAttention(4, 2)(
                x, x, x, key_padding_mask=lib.zeros(2, 3), attn_mask=lib.zeros(3, 3, dtype=lib.bool)
            )
        caught.append([(c.category, str(c.message)) for c in w])
    assert caught[1] == caught[0]


def test_seeded_encoder_training_gives_pytorchs_losses(torch):
    losses = []
    for lib in (torch, rustgrad):
        lib.manual_seed(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            encoder = lib.nn.TransformerEncoder(
                lib.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.1, batch_first=True),
                2,
                lib.nn.LayerNorm(8),
            )
        head = lib.nn.Linear(8, 3)
        params = list(encoder.parameters()) + list(head.parameters())
        opt = lib.optim.Adam(params, lr=1e-2)
        x = lib.randn(4, 5, 8)
        target = lib.randint(0, 3, (4,))
        pad = lib.tensor(np.array([[False] * 5, [False] * 4 + [True], [False] * 3 + [True] * 2, [False] * 5]))
        run = []
        for _ in range(3):
            opt.zero_grad()
            out = encoder(x, src_key_padding_mask=pad)
            loss = lib.nn.functional.cross_entropy(head(out.mean(1)), target)
            loss.backward()
            opt.step()
            run.append(loss.item())
        encoder.eval()
        with lib.no_grad():
            run.append(encoder(x, src_key_padding_mask=pad).sum().item())
        losses.append(run)
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5, atol=1e-5)


def test_inference_fast_paths_give_pytorchs_values(torch):
    """Eval mode without grad: PyTorch's fused MultiheadAttention and encoder-layer kernels."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 5, 6)).astype(np.float32)
    pad = rng.random((3, 5)) < 0.3
    pad[:, 0] = False
    mask = rng.random((5, 5)) < 0.3
    np.fill_diagonal(mask, False)
    results = []
    for lib in (torch, rustgrad):
        lib.manual_seed(1)
        mha = lib.nn.MultiheadAttention(6, 2, batch_first=True).eval()
        layer = lib.nn.TransformerEncoderLayer(6, 2, 8, batch_first=True, activation="gelu").eval()
        t = lib.tensor(x)
        with lib.no_grad():
            out, w = mha(t, t, t, key_padding_mask=lib.tensor(pad))
            out2, w2 = mha(t, t, t, attn_mask=lib.tensor(mask), average_attn_weights=False)
            enc = layer(t, src_mask=lib.tensor(mask), src_key_padding_mask=lib.tensor(pad))
        results.append([a.numpy() for a in (out, w, out2, w2, enc)])
    for ours, theirs in zip(results[1], results[0]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
