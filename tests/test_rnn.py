"""The recurrent layers (``nn.RNN``, ``nn.LSTM``, ``nn.GRU``, the cells) and ``nn.utils.rnn``.

Independent oracles first: a numpy re-implementation of every cell step and of whole multi-layer,
bidirectional, projected runs from the module's parameters; closed forms (zero weights); the
per-sequence runs a packed batch must reproduce; finite-difference gradients and second derivatives
in float64 (``tests/gradcheck.py``, and the public ``autograd.gradcheck``). Then, where PyTorch is
installed, the same things against it: seeded parameters, values and gradients, grad_fn names,
state_dict keys, reprs, the error table, and packed sequences.
"""

from __future__ import annotations

import copy
import math
import pickle
import warnings

import numpy as np
import pytest
import rustgrad
from gradcheck import gradcheck, gradgradcheck
from rustgrad import nn
from rustgrad.nn.utils import rnn as rnn_utils

F64 = rustgrad.float64


def values(t) -> np.ndarray:
    return np.array(t.detach().numpy(), dtype=np.float64, copy=True)


def grad_fn_name(t) -> str | None:
    return None if t.grad_fn is None else type(t.grad_fn).__name__


def real_torch():
    """PyTorch itself, or a skip where it is not installed."""
    torch = pytest.importorskip("torch")
    if torch is rustgrad:
        pytest.skip("running with rustgrad in place of torch")
    return torch


# ----- the numpy oracle -----


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def np_step(mode: str, x, h, c, w_ih, w_hh, b_ih=None, b_hh=None, w_hr=None):
    """One step of the cell from its definition; returns (h', c') (c' is None but for the LSTM)."""
    gi = x @ w_ih.T + (0.0 if b_ih is None else b_ih)
    gh = h @ w_hh.T + (0.0 if b_hh is None else b_hh)
    if mode == "RNN_TANH":
        return np.tanh(gi + gh), None
    if mode == "RNN_RELU":
        return np.maximum(gi + gh, 0.0), None
    if mode == "GRU":
        n_h = h.shape[1]
        r = _sigmoid(gi[:, :n_h] + gh[:, :n_h])
        z = _sigmoid(gi[:, n_h : 2 * n_h] + gh[:, n_h : 2 * n_h])
        n = np.tanh(gi[:, 2 * n_h :] + r * gh[:, 2 * n_h :])
        return (1.0 - z) * n + z * h, None
    i, f, g, o = np.split(gi + gh, 4, axis=1)
    c_new = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    h_new = _sigmoid(o) * np.tanh(c_new)
    if w_hr is not None:
        h_new = h_new @ w_hr.T
    return h_new, c_new


def np_run(module, x: np.ndarray, h0: np.ndarray, c0: np.ndarray | None = None):
    """A whole ``T x B x I`` run of ``module`` (RNN, GRU or LSTM) computed from its parameters with
    ``np_step``: returns (output, h_n, c_n)."""
    p = {name: values(t) for name, t in module.named_parameters()}
    directions = 2 if module.bidirectional else 1
    layer_input = x
    h_n, c_n = [], []
    for layer in range(module.num_layers):
        outs = []
        for d in range(directions):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            k = layer * directions + d
            h = h0[k]
            c = None if c0 is None else c0[k]
            steps = range(x.shape[0] - 1, -1, -1) if d else range(x.shape[0])
            out = [None] * x.shape[0]
            for t in steps:
                h, c = np_step(
                    module.mode,
                    layer_input[t],
                    h,
                    c,
                    p["weight_ih" + sfx],
                    p["weight_hh" + sfx],
                    p.get("bias_ih" + sfx),
                    p.get("bias_hh" + sfx),
                    p.get("weight_hr" + sfx),
                )
                out[t] = h
            outs.append(np.stack(out))
            h_n.append(h)
            c_n.append(c)
        layer_input = np.concatenate(outs, axis=-1)
    return layer_input, np.stack(h_n), (np.stack(c_n) if c0 is not None else None)


def make(cls_name: str, *args, **kwargs):
    rustgrad.manual_seed(0)
    return getattr(nn, cls_name)(*args, **kwargs)


CONFIGS = [
    ("RNN", {}),
    ("RNN", {"nonlinearity": "relu", "num_layers": 2}),
    ("RNN", {"bidirectional": True, "bias": False}),
    ("GRU", {}),
    ("GRU", {"num_layers": 2, "bidirectional": True}),
    ("LSTM", {}),
    ("LSTM", {"num_layers": 2, "bidirectional": True}),
    ("LSTM", {"proj_size": 2}),
    ("LSTM", {"proj_size": 2, "num_layers": 2, "bidirectional": True, "bias": False}),
]


def _state_shapes(m, batch: int) -> tuple[tuple, tuple]:
    layers = m.num_layers * (2 if m.bidirectional else 1)
    out = m.proj_size if getattr(m, "proj_size", 0) else m.hidden_size
    return (layers, batch, out), (layers, batch, m.hidden_size)


def _initial_state(m, batch: int, rng):
    h_shape, c_shape = _state_shapes(m, batch)
    h0 = rng.standard_normal(h_shape)
    c0 = rng.standard_normal(c_shape) if m.mode == "LSTM" else None
    return h0, c0


def _as_hx(m, h0, c0):
    if m.mode == "LSTM":
        return (rustgrad.tensor(h0), rustgrad.tensor(c0))
    return rustgrad.tensor(h0)


@pytest.mark.parametrize(("cls", "kwargs"), CONFIGS)
def test_layers_match_the_numpy_oracle_in_float64(cls, kwargs):
    m = make(cls, 3, 4, dtype=F64, **kwargs)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 2, 3))
    h0, c0 = _initial_state(m, 2, rng)
    out, hidden = m(rustgrad.tensor(x), _as_hx(m, h0, c0))
    ref_out, ref_h, ref_c = np_run(m, x, h0, c0)
    np.testing.assert_allclose(values(out), ref_out, rtol=0, atol=1e-12)
    if cls == "LSTM":
        np.testing.assert_allclose(values(hidden[0]), ref_h, rtol=0, atol=1e-12)
        np.testing.assert_allclose(values(hidden[1]), ref_c, rtol=0, atol=1e-12)
    else:
        np.testing.assert_allclose(values(hidden), ref_h, rtol=0, atol=1e-12)
    # no initial state means zeros
    out0, _ = m(rustgrad.tensor(x))
    ref0, _, _ = np_run(m, x, np.zeros_like(h0), None if c0 is None else np.zeros_like(c0))
    np.testing.assert_allclose(values(out0), ref0, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("cls", "kwargs"), CONFIGS)
def test_batch_first_and_unbatched_inputs_are_the_same_computation(cls, kwargs):
    m = make(cls, 3, 4, dtype=F64, **kwargs)
    mb = make(cls, 3, 4, dtype=F64, batch_first=True, **kwargs)
    x = rustgrad.tensor(np.random.default_rng(2).standard_normal((5, 2, 3)))
    out, h = m(x)
    out_b, h_b = mb(x.transpose(0, 1))
    np.testing.assert_array_equal(values(out_b.transpose(0, 1)), values(out))
    for a, b in zip(h if cls == "LSTM" else (h,), h_b if cls == "LSTM" else (h_b,)):
        np.testing.assert_array_equal(values(a), values(b))
    # one unbatched sequence is batch 1 without the batch dimension
    out1, h1 = m(x[:, 0])
    ref1, href = m(x[:, :1])
    assert tuple(out1.shape) == (5, out.shape[-1])
    np.testing.assert_allclose(values(out1), values(ref1)[:, 0], rtol=0, atol=1e-15)
    for a, b in zip(h1 if cls == "LSTM" else (h1,), href if cls == "LSTM" else (href,)):
        assert a.dim() == 2
        np.testing.assert_allclose(values(a), values(b)[:, 0], rtol=0, atol=1e-15)


def test_zero_weights_give_the_closed_forms():
    h0 = np.array([[[0.5, -1.0], [2.0, 0.25]]])
    x = rustgrad.ones(4, 2, 3, dtype=F64)
    for cls in ("RNN", "GRU", "LSTM"):
        m = make(cls, 3, 2, dtype=F64)
        with rustgrad.no_grad():
            for p in m.parameters():
                p.zero_()
        if cls == "RNN":
            m.bias_ih_l0.data.fill_(0.25)
            m.bias_hh_l0.data.fill_(0.5)
            out, h = m(x, rustgrad.tensor(h0))
            np.testing.assert_allclose(values(out), np.full((4, 2, 2), math.tanh(0.75)), rtol=0, atol=1e-15)
            np.testing.assert_allclose(values(h), np.full((1, 2, 2), math.tanh(0.75)), rtol=0, atol=1e-15)
        elif cls == "GRU":
            # r = z = 1/2 and n = 0: every step halves the state
            out, h = m(x, rustgrad.tensor(h0))
            expected = np.stack([h0[0] * 0.5 ** (t + 1) for t in range(4)])
            np.testing.assert_allclose(values(out), expected, rtol=0, atol=1e-15)
            np.testing.assert_allclose(values(h)[0], expected[-1], rtol=0, atol=1e-15)
        else:
            # i = f = o = 1/2 and g = 0: c_t = c_0 / 2^t and h_t = tanh(c_t) / 2
            c0 = np.array([[[1.0, -2.0], [0.5, 3.0]]])
            out, (_, c) = m(x, (rustgrad.tensor(h0), rustgrad.tensor(c0)))
            cs = np.stack([c0[0] * 0.5 ** (t + 1) for t in range(4)])
            np.testing.assert_allclose(values(out), 0.5 * np.tanh(cs), rtol=0, atol=1e-15)
            np.testing.assert_allclose(values(c)[0], cs[-1], rtol=0, atol=1e-15)


@pytest.mark.parametrize("cls", ["RNNCell", "GRUCell", "LSTMCell"])
@pytest.mark.parametrize("bias", [True, False])
def test_cells_match_the_numpy_oracle(cls, bias):
    rustgrad.manual_seed(0)
    cell = getattr(nn, cls)(3, 4, bias=bias, dtype=F64)
    mode = {"RNNCell": "RNN_TANH", "GRUCell": "GRU", "LSTMCell": "LSTM"}[cls]
    rng = np.random.default_rng(3)
    x, h, c = rng.standard_normal((2, 3)), rng.standard_normal((2, 4)), rng.standard_normal((2, 4))
    p = [
        values(w) if w is not None else None
        for w in (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    ]
    ref_h, ref_c = np_step(mode, x, h, c, *p)
    if cls == "LSTMCell":
        got_h, got_c = cell(rustgrad.tensor(x), (rustgrad.tensor(h), rustgrad.tensor(c)))
        np.testing.assert_allclose(values(got_c), ref_c, rtol=0, atol=1e-12)
        zero_h, zero_c = np_step(mode, x, 0 * h, 0 * c, *p)
        np.testing.assert_allclose(values(cell(rustgrad.tensor(x))[1]), zero_c, rtol=0, atol=1e-12)
        unbatched = cell(rustgrad.tensor(x[0]), (rustgrad.tensor(h[0]), rustgrad.tensor(c[0])))
        np.testing.assert_allclose(values(unbatched[0]), ref_h[0], rtol=0, atol=1e-12)
    else:
        got_h = cell(rustgrad.tensor(x), rustgrad.tensor(h))
        zero_h, _ = np_step(mode, x, 0 * h, None, *p)
        np.testing.assert_allclose(
            values(cell(rustgrad.tensor(x[1]), rustgrad.tensor(h[1]))), ref_h[1], atol=1e-12
        )
    np.testing.assert_allclose(values(got_h), ref_h, rtol=0, atol=1e-12)
    no_state = cell(rustgrad.tensor(x))
    np.testing.assert_allclose(
        values(no_state[0] if cls == "LSTMCell" else no_state), zero_h, rtol=0, atol=1e-12
    )


def test_relu_cell_and_layer():
    rustgrad.manual_seed(0)
    cell = nn.RNNCell(3, 4, nonlinearity="relu", dtype=F64)
    x, h = np.random.default_rng(4).standard_normal((2, 2, 3))[0], np.zeros((2, 4))
    p = [values(w) for w in (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)]
    np.testing.assert_allclose(
        values(cell(rustgrad.tensor(x))), np_step("RNN_RELU", x, h, None, *p)[0], atol=1e-12
    )
    assert grad_fn_name(cell(rustgrad.tensor(x))) == "ReluBackward0"
    cell.nonlinearity = "sigmoid"
    with pytest.raises(RuntimeError, match="^Unknown nonlinearity: sigmoid$"):
        cell(rustgrad.tensor(x))


# ----- packed sequences through the layers -----


@pytest.mark.parametrize(("cls", "kwargs"), CONFIGS)
def test_a_packed_batch_runs_each_sequence_on_its_own(cls, kwargs):
    m = make(cls, 3, 4, dtype=F64, **kwargs)
    rng = np.random.default_rng(5)
    lengths = [3, 5, 1, 4]
    seqs = [rng.standard_normal((n, 3)) for n in lengths]
    h0, c0 = _initial_state(m, len(seqs), rng)
    packed = rnn_utils.pack_sequence([rustgrad.tensor(s) for s in seqs], enforce_sorted=False)
    out, hidden = m(packed, _as_hx(m, h0, c0))
    assert isinstance(out, rnn_utils.PackedSequence)
    assert out.batch_sizes.tolist() == packed.batch_sizes.tolist()
    padded, out_lengths = rnn_utils.pad_packed_sequence(out, batch_first=True)
    assert out_lengths.tolist() == lengths
    h_n = hidden[0] if cls == "LSTM" else hidden
    for b, s in enumerate(seqs):
        ref_out, ref_h, ref_c = np_run(
            m, s[:, None], h0[:, b : b + 1], None if c0 is None else c0[:, b : b + 1]
        )
        np.testing.assert_allclose(values(padded[b, : len(s)]), ref_out[:, 0], rtol=0, atol=1e-12)
        assert not values(padded[b, len(s) :]).any()
        np.testing.assert_allclose(values(h_n[:, b]), ref_h[:, 0], rtol=0, atol=1e-12)
        if cls == "LSTM":
            np.testing.assert_allclose(values(hidden[1][:, b]), ref_c[:, 0], rtol=0, atol=1e-12)


def test_packed_input_checks_the_hidden_state_against_the_longest_sequence():
    m = make("GRU", 3, 4)
    packed = rnn_utils.pack_sequence([rustgrad.ones(3, 3), rustgrad.ones(2, 3)])
    with pytest.raises(RuntimeError, match=r"^Expected hidden size \(1, 2, 4\), got \[1, 3, 4\]$"):
        m(packed, rustgrad.zeros(1, 3, 4))
    with pytest.raises(RuntimeError, match="^input must have 2 dimensions, got 3$"):
        m(rnn_utils.PackedSequence(rustgrad.ones(5, 1, 3), packed.batch_sizes))


# ----- dropout between layers -----


def test_dropout_applies_between_layers_in_training_mode_only():
    rustgrad.manual_seed(0)
    m = nn.LSTM(3, 4, num_layers=2, dropout=1.0, dtype=F64)
    x = rustgrad.tensor(np.random.default_rng(6).standard_normal((4, 2, 3)))
    out_train, _ = m(x)
    # dropout=1 zeroes the first layer's output: the second layer sees only zeros
    ref, _, _ = np_run(_second_layer_of(m), np.zeros((4, 2, 4)), np.zeros((1, 2, 4)), np.zeros((1, 2, 4)))
    np.testing.assert_allclose(values(out_train), ref, rtol=0, atol=1e-12)
    m.eval()
    ref_eval, _, _ = np_run(m, values(x), np.zeros((2, 2, 4)), np.zeros((2, 2, 4)))
    np.testing.assert_allclose(values(m(x)[0]), ref_eval, rtol=0, atol=1e-12)
    # 0 < p < 1: random in training mode, reproducible from the seed
    m2 = make("GRU", 3, 4, num_layers=3, dropout=0.5, dtype=F64)
    rustgrad.manual_seed(11)
    a = values(m2(x)[0])
    rustgrad.manual_seed(11)
    b = values(m2(x)[0])
    np.testing.assert_array_equal(a, b)
    m2.eval()
    assert not np.allclose(a, values(m2(x)[0]))


def _second_layer_of(m):
    one = nn.LSTM(4, 4, dtype=F64)
    with rustgrad.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(one, name + "_l0").copy_(getattr(m, name + "_l1"))
    return one


def test_dropout_on_a_single_layer_warns():
    with pytest.warns(UserWarning, match="num_layers greater than 1, but got dropout=0.5 and num_layers=1"):
        nn.RNN(3, 4, dropout=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nn.RNN(3, 4, num_layers=2, dropout=0.5)


# ----- parameters, state dicts, reprs -----


def test_parameter_names_shapes_and_order():
    m = nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2)
    names = [n for n, _ in m.named_parameters()]
    per_dir = ["weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr"]
    expected = [f"{w}_l{layer}{sfx}" for layer in range(2) for sfx in ("", "_reverse") for w in per_dir]
    assert names == expected == list(m.state_dict()) == m._flat_weights_names
    shapes = {n: tuple(p.shape) for n, p in m.named_parameters()}
    assert shapes["weight_ih_l0"] == (20, 3) and shapes["weight_hh_l0"] == (20, 2)
    assert shapes["weight_ih_l1_reverse"] == (20, 4) and shapes["weight_hr_l1"] == (2, 5)
    assert shapes["bias_ih_l0"] == (20,)
    assert [[tuple(p.shape) for p in ws] for ws in m.all_weights][1] == [
        (20, 3),
        (20, 2),
        (20,),
        (20,),
        (2, 5),
    ]
    assert all(a is b for a, b in zip(m._flat_weights, m.parameters()))
    assert nn.GRU(3, 4, bias=False)._flat_weights_names == ["weight_ih_l0", "weight_hh_l0"]
    assert [tuple(p.shape) for p in nn.GRU(3, 4).parameters()] == [(12, 3), (12, 4), (12,), (12,)]
    cell = nn.LSTMCell(3, 4, bias=False)
    assert list(cell.state_dict()) == ["weight_ih", "weight_hh"] and cell.bias_ih is None
    assert [tuple(p.shape) for p in nn.GRUCell(3, 4).parameters()] == [(12, 3), (12, 4), (12,), (12,)]


def test_initialisation_is_uniform_within_one_over_sqrt_hidden():
    rustgrad.manual_seed(0)
    m = nn.GRU(6, 16, num_layers=2)
    bound = 1 / math.sqrt(16)
    everything = np.concatenate([values(p).ravel() for p in m.parameters()])
    assert everything.min() >= -bound and everything.max() <= bound
    assert everything.min() < -0.9 * bound and everything.max() > 0.9 * bound
    assert abs(everything.mean()) < 0.01
    rustgrad.manual_seed(0)
    again = nn.GRU(6, 16, num_layers=2)
    assert all(np.array_equal(values(a), values(b)) for a, b in zip(m.parameters(), again.parameters()))
    assert (values(nn.RNNCell(3, 0).weight_ih) == 0).all()  # hidden_size 0: an empty cell


def test_flat_weights_follow_assignment_and_dtype_changes():
    m = nn.RNN(3, 4)
    assert m.flatten_parameters() is None
    new = nn.Parameter(rustgrad.zeros(4, 3))
    m.weight_ih_l0 = new
    assert m._flat_weights[0] is new
    m.double()
    assert all(w.dtype == F64 for w in m._flat_weights)
    out, _ = m(rustgrad.ones(2, 1, 3, dtype=F64))
    assert out.dtype == F64
    # deepcopy and pickling keep a working module with its own parameters
    for clone in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        assert clone._flat_weights[1] is clone.weight_hh_l0
        assert clone._flat_weights[1] is not m.weight_hh_l0
        np.testing.assert_array_equal(values(clone(rustgrad.ones(2, 1, 3, dtype=F64))[0]), values(out))


def test_state_dict_round_trip():
    src = make("LSTM", 3, 4, num_layers=2, proj_size=3)
    dst = nn.LSTM(3, 4, num_layers=2, proj_size=3)
    assert str(dst.load_state_dict(src.state_dict())) == "<All keys matched successfully>"
    x = rustgrad.randn(5, 2, 3)
    np.testing.assert_array_equal(values(src(x)[0]), values(dst(x)[0]))


def test_reprs():
    assert repr(nn.RNN(3, 4)) == "RNN(3, 4)"
    assert (
        repr(nn.RNN(3, 4, 2, "relu", False, True, 0.5, True))
        == "RNN(3, 4, num_layers=2, bias=False, batch_first=True, dropout=0.5, bidirectional=True)"
    )
    assert repr(nn.LSTM(3, 4, proj_size=2)) == "LSTM(3, 4, proj_size=2)"
    assert repr(nn.GRU(3, 4, num_layers=2, dropout=1)) == "GRU(3, 4, num_layers=2, dropout=1.0)"
    assert (
        repr(nn.RNNCell(3, 4, bias=False, nonlinearity="relu"))
        == "RNNCell(3, 4, bias=False, nonlinearity=relu)"
    )
    assert (
        repr(nn.LSTMCell(3, 4)) == "LSTMCell(3, 4)"
        and repr(nn.GRUCell(3, 4, bias=False)) == "GRUCell(3, 4, bias=False)"
    )
    assert nn.RNN(3, 4, 1, "relu").mode == "RNN_RELU" and nn.RNN(3, 4).nonlinearity == "tanh"
    assert (nn.LSTM(3, 4).mode, nn.GRU(3, 4).mode) == ("LSTM", "GRU")


def test_grad_fn_names():
    x = rustgrad.randn(4, 2, 3, requires_grad=True)
    for cls in ("RNN", "GRU", "LSTM"):
        out, h = getattr(nn, cls)(3, 4)(x)
        hs = h if cls == "LSTM" else (h,)
        # PyTorch runs a float32 LSTM layer as one oneDNN op on CPU; float64 step by step
        first = "MkldnnRnnLayerBackward0" if cls == "LSTM" else "StackBackward0"
        assert [grad_fn_name(t) for t in (out, *hs)] == [first] + ["StackBackward0"] * len(hs)
        out, h = getattr(nn, cls)(3, 4).double()(x.double())
        assert grad_fn_name(out) == "StackBackward0"
        # batch_first: RNN and GRU transpose their output in place, LSTM does not
        out, _ = getattr(nn, cls)(3, 4, batch_first=True)(x)
        assert grad_fn_name(out) == ("TransposeBackward0" if cls == "LSTM" else "TransposeBackward1")
        out, _ = getattr(nn, cls)(3, 4, bidirectional=True)(x)
        assert grad_fn_name(out) == "CatBackward0"
        out, h = getattr(nn, cls)(3, 4)(x[:, 0])
        assert grad_fn_name(out) == "SqueezeBackward1"
        packed = rnn_utils.pack_sequence([x[:, 0], x[:3, 1]])
        assert grad_fn_name(packed.data) == "PackPaddedSequenceBackward0"
        assert packed.data.grad_fn.next_functions[0][0] is x.grad_fn or x.grad_fn is None
        out, h = getattr(nn, cls)(3, 4)(packed)
        assert grad_fn_name(out.data) == "CatBackward0"
    assert grad_fn_name(nn.RNNCell(3, 4)(x[0])) == "TanhBackward0"
    assert grad_fn_name(nn.GRUCell(3, 4)(x[0])) == "AddBackward0"
    h, c = nn.LSTMCell(3, 4)(x[0])
    assert (grad_fn_name(h), grad_fn_name(c)) == ("MulBackward0", "AddBackward0")


# ----- finite-difference gradients -----


def _functional(module, names):
    """``f(*inputs, *params)``: ``module`` run with the given tensors in place of its parameters."""
    for name in names:
        module._parameters.pop(name)

    def bind(params):
        for name, p in zip(names, params):
            setattr(module, name, p)

    return bind


GRAD_CONFIGS = [
    ("RNN", {"bidirectional": True}),
    ("GRU", {"num_layers": 2}),
    ("LSTM", {"proj_size": 1, "bidirectional": True}),
]


@pytest.mark.parametrize(("cls", "kwargs"), GRAD_CONFIGS)
def test_layer_gradients_against_finite_differences(cls, kwargs):
    m = make(cls, 2, 2, dtype=F64, **kwargs)
    names = [n for n, _ in m.named_parameters()]
    params = [values(p) for p in m.parameters()]
    bind = _functional(m, names)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 2, 2))
    h0, c0 = _initial_state(m, 2, rng)

    if cls == "LSTM":

        def f(x, h0, c0, *ps):
            bind(ps)
            out, (h, c) = m(x, (h0, c0))
            return out, h, c

        inputs = [x, h0, c0, *params]
    else:

        def f(x, h0, *ps):
            bind(ps)
            out, h = m(x, h0)
            return out, h

        inputs = [x, h0, *params]
    assert gradcheck(f, inputs, n_vectors=1)
    assert gradgradcheck(f, inputs, n_vectors=1)


def test_packed_layer_gradients_against_finite_differences():
    m = make("GRU", 2, 2, dtype=F64, bidirectional=True)
    names = [n for n, _ in m.named_parameters()]
    params = [values(p) for p in m.parameters()]
    bind = _functional(m, names)
    rng = np.random.default_rng(8)
    padded = rng.standard_normal((3, 3, 2))

    def f(x, h0, *ps):
        bind(ps)
        packed = rnn_utils.pack_padded_sequence(x, [2, 3, 1], enforce_sorted=False)
        out, h = m(packed, h0)
        return rnn_utils.pad_packed_sequence(out)[0], h

    assert gradcheck(f, [padded, rng.standard_normal((2, 3, 2)), *params], n_vectors=1)


@pytest.mark.parametrize("cls", ["RNNCell", "GRUCell", "LSTMCell"])
def test_cell_gradients_and_second_derivatives(cls):
    rustgrad.manual_seed(0)
    cell = getattr(nn, cls)(2, 3, dtype=F64)
    names = [n for n, _ in cell.named_parameters()]
    params = [values(p) for p in cell.parameters()]
    bind = _functional(cell, names)
    rng = np.random.default_rng(9)
    x, h, c = rng.standard_normal((2, 2)), rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    if cls == "LSTMCell":

        def f(x, h, c, *ps):
            bind(ps)
            return cell(x, (h, c))

        inputs = [x, h, c, *params]
    else:

        def f(x, h, *ps):
            bind(ps)
            return cell(x, h)

        inputs = [x, h, *params]
    assert gradcheck(f, inputs, n_vectors=1)
    assert gradgradcheck(f, inputs, n_vectors=1)
    leaves = tuple(rustgrad.tensor(a, requires_grad=True) for a in inputs)
    assert rustgrad.autograd.gradcheck(f, leaves)
    assert rustgrad.autograd.gradgradcheck(f, leaves)


# ----- nn.utils.rnn -----


def test_pad_sequence_layouts_and_padding():
    a, b, c = rustgrad.tensor([1.0, 2, 3]), rustgrad.tensor([4.0, 5]), rustgrad.tensor([6.0])
    assert rnn_utils.pad_sequence([a, b, c]).tolist() == [[1, 4, 6], [2, 5, 0], [3, 0, 0]]
    assert rnn_utils.pad_sequence([a, b, c], batch_first=True, padding_value=-1).tolist() == [
        [1, 2, 3],
        [4, 5, -1],
        [6, -1, -1],
    ]
    left = rnn_utils.pad_sequence([a, b, c], batch_first=True, padding_side="left")
    assert left.tolist() == [[1, 2, 3], [0, 4, 5], [0, 0, 6]]
    assert tuple(rnn_utils.pad_sequence([rustgrad.ones(2, 3, 2), rustgrad.ones(1, 3, 2)]).shape) == (
        2,
        2,
        3,
        2,
    )
    ints = rnn_utils.pad_sequence([rustgrad.tensor([1, 2]), rustgrad.tensor([3])], padding_value=2.5)
    assert ints.dtype == rustgrad.int64 and ints.tolist() == [[1, 3], [2, 2]]  # the value truncated
    x = rustgrad.tensor([1.0, 2], requires_grad=True)
    padded = rnn_utils.pad_sequence([x, c])
    assert grad_fn_name(padded) == "CopySlices"
    padded.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]


def test_pack_and_pad_round_trip():
    rng = np.random.default_rng(10)
    lengths = [2, 5, 1, 3]
    seqs = [rustgrad.tensor(rng.standard_normal((n, 2))) for n in lengths]
    padded = rnn_utils.pad_sequence(seqs)
    packed = rnn_utils.pack_padded_sequence(padded, rustgrad.tensor(lengths), enforce_sorted=False)
    assert packed.batch_sizes.tolist() == [4, 3, 2, 1, 1]
    assert packed.batch_sizes.dtype == rustgrad.int64
    assert packed.sorted_indices.tolist() == [1, 3, 0, 2] and packed.unsorted_indices.tolist() == [2, 0, 3, 1]
    # the data is time step by time step, longest sequence first
    expected = [seqs[b][t] for t in range(5) for b in (1, 3, 0, 2) if t < lengths[b]]
    np.testing.assert_array_equal(values(packed.data), np.stack([values(e) for e in expected]))
    back, back_lengths = rnn_utils.pad_packed_sequence(packed)
    np.testing.assert_array_equal(values(back), values(padded))
    assert back_lengths.tolist() == lengths and back_lengths.dtype == rustgrad.int64
    longer, _ = rnn_utils.pad_packed_sequence(packed, batch_first=True, padding_value=9.0, total_length=7)
    assert tuple(longer.shape) == (4, 7, 2) and (values(longer)[2, 1:] == 9).all()
    for got, want in zip(
        rnn_utils.unpack_sequence(rnn_utils.pack_sequence(seqs, enforce_sorted=False)), seqs
    ):
        np.testing.assert_array_equal(values(got), values(want))
    for got, want in zip(rnn_utils.unpad_sequence(padded, rustgrad.tensor(lengths)), seqs):
        np.testing.assert_array_equal(values(got), values(want))
    bf = rnn_utils.pack_padded_sequence(
        padded.transpose(0, 1), [5, 3, 2, 1][::1], batch_first=True, enforce_sorted=False
    )
    assert bf.batch_sizes.tolist() == [4, 3, 2, 1, 1]
    sorted_packed = rnn_utils.pack_sequence([seqs[1], seqs[3], seqs[0], seqs[2]])
    assert sorted_packed.sorted_indices is None and sorted_packed.unsorted_indices is None
    np.testing.assert_array_equal(values(sorted_packed.data), values(packed.data))


def test_pack_and_pad_gradients():
    rng = np.random.default_rng(12)
    padded = rng.standard_normal((4, 3, 2))

    def f(x):
        packed = rnn_utils.pack_padded_sequence(x, [3, 4, 1], enforce_sorted=False)
        return packed.data, rnn_utils.pad_packed_sequence(packed, batch_first=True)[0]

    assert gradcheck(f, [padded])
    assert gradgradcheck(f, [padded])


def test_packed_sequence_is_a_named_tuple():
    ps = rnn_utils.pack_sequence([rustgrad.tensor([1.0, 2.0]), rustgrad.tensor([3.0])])
    data, batch_sizes, _, _ = ps
    assert data is ps.data and ps._fields == ("data", "batch_sizes", "sorted_indices", "unsorted_indices")
    assert repr(ps) == (
        "PackedSequence(data=tensor([1., 3., 2.]), batch_sizes=tensor([2, 1]), sorted_indices=None, "
        "unsorted_indices=None)"
    )
    assert rnn_utils.PackedSequence((data, batch_sizes)).batch_sizes is batch_sizes
    with_perm = rnn_utils.PackedSequence(data, batch_sizes, rustgrad.tensor([1, 0]))
    assert with_perm.unsorted_indices.tolist() == [1, 0]
    with pytest.raises(AssertionError, match="^Expected data to be a list or tuple of length 2$"):
        rnn_utils.PackedSequence(data)
    as_double = ps.double()
    assert as_double.data.dtype == F64 and as_double.batch_sizes is batch_sizes
    assert ps.to(rustgrad.float32) is ps and ps.cpu() is ps and ps.float() is ps
    assert ps.long().data.dtype == rustgrad.int64 and ps.int().data.dtype == rustgrad.int32
    assert not ps.is_cuda and not ps.is_pinned()
    assert rnn_utils.invert_permutation(rustgrad.tensor([2, 0, 1])).tolist() == [1, 2, 0]
    assert rnn_utils.invert_permutation(None) is None


# ----- the error table (recorded from PyTorch 2.15; checked against it below when installed) -----


def _ones(t, *shape, **kw):
    return t.ones(*shape, **kw)


UNSORTED = (
    "`lengths` array must be sorted in decreasing order when `enforce_sorted` is True. You can pass "
    "`enforce_sorted=False` to pack_padded_sequence and/or pack_sequence to sidestep this requirement if you do "
    "not need ONNX exportability."
)


ERRORS = [
    ("rnn input size", lambda t: t.nn.RNN(3, 4)(_ones(t, 5, 2, 4)), RuntimeError,
     "input.size(-1) must be equal to input_size. Expected 3, got 4"),
    ("lstm input size", lambda t: t.nn.LSTM(3, 4)(_ones(t, 5, 2, 4)), RuntimeError,
     "input.size(-1) must be equal to input_size. Expected 3, got 4"),
    ("rnn 4-D input", lambda t: t.nn.RNN(3, 4)(_ones(t, 5, 2, 4, 3)), ValueError,
     "RNN: Expected input to be 2D or 3D, got 4D tensor instead"),
    ("gru 1-D input", lambda t: t.nn.GRU(3, 4)(_ones(t, 3)), ValueError,
     "GRU: Expected input to be 2D or 3D, got 1D instead"),
    ("lstm 4-D input", lambda t: t.nn.LSTM(3, 4)(_ones(t, 5, 2, 4, 3)), ValueError,
     "LSTM: Expected input to be 2D or 3D, got 4D instead"),
    ("rnn hidden size", lambda t: t.nn.RNN(3, 4)(_ones(t, 5, 2, 3), _ones(t, 1, 3, 4)), RuntimeError,
     "Expected hidden size (1, 2, 4), got [1, 3, 4]"),
    ("gru hidden size, batch_first", lambda t: t.nn.GRU(3, 4, 2, batch_first=True, bidirectional=True)(
        _ones(t, 5, 2, 3), _ones(t, 1, 3, 4)), RuntimeError, "Expected hidden size (4, 5, 4), got [1, 3, 4]"),
    ("rnn unbatched hidden size", lambda t: t.nn.RNN(3, 4)(_ones(t, 5, 3), _ones(t, 2, 4)), RuntimeError,
     "Expected hidden size (1, 1, 4), got [2, 1, 4]"),
    ("rnn 2-D hx", lambda t: t.nn.RNN(3, 4)(_ones(t, 5, 2, 3), _ones(t, 2, 4)), RuntimeError,
     "For batched 3-D input, hx should also be 3-D but got 2-D tensor"),
    ("gru 3-D hx unbatched", lambda t: t.nn.GRU(3, 4)(_ones(t, 5, 3), _ones(t, 1, 2, 4)), RuntimeError,
     "For unbatched 2-D input, hx should also be 2-D but got 3-D tensor"),
    ("lstm 2-D hx", lambda t: t.nn.LSTM(3, 4)(_ones(t, 5, 2, 3), (_ones(t, 2, 4), _ones(t, 1, 2, 4))),
     RuntimeError, "For batched 3-D input, hx and cx should also be 3-D but got (2-D, 3-D) tensors"),
    ("lstm 3-D hx unbatched", lambda t: t.nn.LSTM(3, 4)(_ones(t, 5, 3), (_ones(t, 1, 2, 4), _ones(t, 1, 4))),
     RuntimeError, "For unbatched 2-D input, hx and cx should also be 2-D but got (3-D, 2-D) tensors"),
    ("lstm h size", lambda t: t.nn.LSTM(3, 4)(_ones(t, 5, 2, 3), (_ones(t, 1, 3, 4), _ones(t, 1, 2, 4))),
     RuntimeError, "Expected hidden[0] size (1, 2, 4), got [1, 3, 4]"),
    ("lstm c size", lambda t: t.nn.LSTM(3, 4)(_ones(t, 5, 2, 3), (_ones(t, 1, 2, 4), _ones(t, 1, 2, 5))),
     RuntimeError, "Expected hidden[1] size (1, 2, 4), got [1, 2, 5]"),
    ("lstm projected h size", lambda t: t.nn.LSTM(3, 4, proj_size=2)(
        _ones(t, 5, 2, 3), (_ones(t, 1, 2, 4), _ones(t, 1, 2, 4))), RuntimeError,
     "Expected hidden[0] size (1, 2, 2), got [1, 2, 4]"),
    ("rnn input dtype", lambda t: t.nn.RNN(3, 4)(_ones(t, 5, 2, 3, dtype=t.float64)), ValueError,
     ("RNN input dtype (torch.float64) does not match weight dtype (torch.float32). Convert input: "
      "input.to(torch.float32), or convert model: model.to(torch.float64)")),
    ("rnn hx dtype", lambda t: t.nn.RNN(3, 4)(_ones(t, 5, 2, 3), _ones(t, 1, 2, 4, dtype=t.float64)),
     RuntimeError, "mat1 and mat2 must have the same dtype, but got Double and Float"),
    ("empty sequence", lambda t: t.nn.GRU(3, 4)(_ones(t, 0, 2, 3)), RuntimeError,
     "Expected sequence length to be larger than 0 in RNN"),
    ("lstm empty sequence", lambda t: t.nn.LSTM(3, 4)(_ones(t, 0, 2, 3)), RuntimeError,
     "Expected sequence length to be larger than 0 in RNN"),
    ("packed input size", lambda t: t.nn.RNN(3, 4)(t.nn.utils.rnn.pack_sequence([_ones(t, 2, 4)])), RuntimeError,
     "input.size(-1) must be equal to input_size. Expected 3, got 4"),
    ("dropout range", lambda t: t.nn.RNN(3, 4, dropout=1.5), ValueError,
     "dropout should be a number in range [0, 1] representing the probability of an element being zeroed"),
    ("dropout bool", lambda t: t.nn.LSTM(3, 4, dropout=True), ValueError,
     "dropout should be a number in range [0, 1] representing the probability of an element being zeroed"),
    ("bias type", lambda t: t.nn.RNN(3, 4, bias=1), TypeError, "bias should be of type bool, got: int"),
    ("batch_first type", lambda t: t.nn.GRU(3, 4, batch_first=1), TypeError,
     "batch_first should be of type bool, got: int"),
    ("input_size type", lambda t: t.nn.RNN(3.0, 4), TypeError, "input_size should be of type int, got: float"),
    ("input_size 0", lambda t: t.nn.RNN(0, 4), ValueError, "input_size must be greater than zero"),
    ("hidden_size type", lambda t: t.nn.LSTM(3, 4.0), TypeError, "hidden_size should be of type int, got: float"),
    ("hidden_size 0", lambda t: t.nn.GRU(3, 0), ValueError, "hidden_size must be greater than zero"),
    ("num_layers 0", lambda t: t.nn.RNN(3, 4, num_layers=0), ValueError, "num_layers must be greater than zero"),
    ("proj_size negative", lambda t: t.nn.LSTM(3, 4, proj_size=-1), ValueError,
     "proj_size should be a positive integer or zero to disable projections"),
    ("proj_size too big", lambda t: t.nn.LSTM(3, 4, proj_size=4), ValueError,
     "proj_size has to be smaller than hidden_size"),
    ("proj_size on RNN", lambda t: t.nn.RNN(3, 4, proj_size=2), ValueError,
     "proj_size argument is only supported for LSTM, not RNN or GRU"),
    ("proj_size on GRU", lambda t: t.nn.GRU(3, 4, proj_size=2), ValueError,
     "proj_size argument is only supported for LSTM, not RNN or GRU"),
    ("nonlinearity", lambda t: t.nn.RNN(3, 4, nonlinearity="sigmoid"), ValueError,
     "Unknown nonlinearity 'sigmoid'. Select from 'tanh' or 'relu'."),
    ("unknown keyword", lambda t: t.nn.LSTM(3, 4, foo=1), TypeError,
     "RNNBase.__init__() got an unexpected keyword argument 'foo'"),
    ("missing sizes", lambda t: t.nn.GRU(), TypeError,
     "RNNBase.__init__() missing 2 required positional arguments: 'input_size' and 'hidden_size'"),
    ("mode", lambda t: t.nn.RNNBase("FOO", 3, 4), ValueError, "Unrecognized RNN mode: FOO"),
    ("RNNBase forward", lambda t: t.nn.RNNBase("LSTM", 3, 4)(_ones(t, 2, 1, 3)), NotImplementedError,
     'Module [RNNBase] is missing the required "forward" function'),
    ("cell nonlinearity", lambda t: t.nn.RNNCell(3, 4, nonlinearity="foo")(_ones(t, 2, 3)), RuntimeError,
     "Unknown nonlinearity: foo"),
    ("cell 3-D input", lambda t: t.nn.RNNCell(3, 4)(_ones(t, 2, 2, 3)), ValueError,
     "RNNCell: Expected input to be 1D or 2D, got 3D instead"),
    ("cell 0-D input", lambda t: t.nn.RNNCell(3, 4)(t.tensor(1.0)), ValueError,
     "RNNCell: Expected input to be 1D or 2D, got 0D instead"),
    ("cell 3-D hx", lambda t: t.nn.RNNCell(3, 4)(_ones(t, 2, 3), _ones(t, 1, 2, 4)), ValueError,
     "RNNCell: Expected hidden to be 1D or 2D, got 3D instead"),
    ("gru cell 3-D input", lambda t: t.nn.GRUCell(3, 4)(_ones(t, 2, 2, 3)), ValueError,
     "GRUCell: Expected input to be 1D or 2D, got 3D instead"),
    ("gru cell 3-D hx", lambda t: t.nn.GRUCell(3, 4)(_ones(t, 2, 3), _ones(t, 1, 2, 4)), ValueError,
     "GRUCell: Expected hidden to be 1D or 2D, got 3D instead"),
    ("lstm cell 3-D input", lambda t: t.nn.LSTMCell(3, 4)(_ones(t, 2, 2, 3)), ValueError,
     "LSTMCell: Expected input to be 1D or 2D, got 3D instead"),
    ("lstm cell 3-D c", lambda t: t.nn.LSTMCell(3, 4)(_ones(t, 2, 3), (_ones(t, 2, 4), _ones(t, 1, 2, 4))),
     ValueError, "LSTMCell: Expected hx[1] to be 1D or 2D, got 3D instead"),
    ("cell input size", lambda t: t.nn.RNNCell(3, 4)(_ones(t, 2, 5), _ones(t, 3, 5)), RuntimeError,
     "input has inconsistent input_size: got 5 expected 3"),
    ("cell batch", lambda t: t.nn.RNNCell(3, 4)(_ones(t, 2, 3), _ones(t, 3, 5)), RuntimeError,
     "Input batch size 2 doesn't match hidden0 batch size 3"),
    ("cell hidden size", lambda t: t.nn.RNNCell(3, 4)(_ones(t, 2, 3), _ones(t, 2, 5)), RuntimeError,
     "hidden0 has inconsistent hidden_size: got 5, expected 4"),
    ("gru cell input size", lambda t: t.nn.GRUCell(3, 4)(_ones(t, 5)), RuntimeError,
     "input has inconsistent input_size: got 5 expected 3"),
    ("gru cell hidden size", lambda t: t.nn.GRUCell(3, 4)(_ones(t, 2, 3), _ones(t, 2, 5)), RuntimeError,
     "hidden0 has inconsistent hidden_size: got 5, expected 4"),
    ("cell unbatched 2-D hx", lambda t: t.nn.RNNCell(3, 4)(_ones(t, 3), _ones(t, 1, 4)), RuntimeError,
     "Expected 2D hidden0 (batch x hidden_size), but got 3D tensor"),
    ("cell batched 1-D hx", lambda t: t.nn.GRUCell(3, 4)(_ones(t, 2, 3), _ones(t, 4)), RuntimeError,
     "Expected 2D hidden0 (batch x hidden_size), but got 1D tensor"),
    ("lstm cell input size", lambda t: t.nn.LSTMCell(3, 4)(_ones(t, 2, 5)), RuntimeError,
     "input has inconsistent input_size: got 5 expected 3"),
    ("lstm cell c batch", lambda t: t.nn.LSTMCell(3, 4)(_ones(t, 2, 3), (_ones(t, 2, 4), _ones(t, 3, 4))),
     RuntimeError, "Input batch size 2 doesn't match hidden1 batch size 3"),
    ("lstm cell h before c", lambda t: t.nn.LSTMCell(3, 4)(_ones(t, 2, 3), (_ones(t, 2, 5), _ones(t, 3, 4))),
     RuntimeError, "hidden0 has inconsistent hidden_size: got 5, expected 4"),
    ("lstm cell c size", lambda t: t.nn.LSTMCell(3, 4)(_ones(t, 2, 3), (_ones(t, 2, 4), _ones(t, 2, 5))),
     RuntimeError, "hidden1 has inconsistent hidden_size: got 5, expected 4"),
    ("lstm cell one state", lambda t: t.nn.LSTMCell(3, 4)(_ones(t, 2, 3), (_ones(t, 2, 4),)), RuntimeError,
     "lstm_cell expects two hidden states"),
    ("lstm cell tensor state", lambda t: t.nn.LSTMCell(3, 4)(_ones(t, 2, 3), _ones(t, 2, 4)), TypeError,
     "lstm_cell(): argument 'hx' (position 2) must be tuple of Tensors, not Tensor"),
    ("cell dtype", lambda t: t.nn.LSTMCell(3, 4)(_ones(t, 2, 3, dtype=t.float64)), RuntimeError,
     "mat1 and mat2 must have the same dtype, but got Double and Float"),
    ("pad side", lambda t: t.nn.utils.rnn.pad_sequence([_ones(t, 2)], padding_side="up"), RuntimeError,
     "Expected padding_side to be one of left or right, but got up."),
    ("pad nothing", lambda t: t.nn.utils.rnn.pad_sequence([]), RuntimeError, "received an empty list of sequences"),
    ("pad not iterable", lambda t: t.nn.utils.rnn.pad_sequence(3), RuntimeError,
     "pad_sequence: Expected iterable for input sequences, but got arg of type: <class 'int'>"),
    ("pad trailing sizes", lambda t: t.nn.utils.rnn.pad_sequence([_ones(t, 2, 3), _ones(t, 2, 4)]), RuntimeError,
     "The size of tensor a (3) must match the size of tensor b (4) at non-singleton dimension 1"),
    ("pad lists", lambda t: t.nn.utils.rnn.pad_sequence([[1, 2], [3]]), TypeError,
     "expected Tensor as element 0 in argument 0, but got list"),
    ("pack unsorted", lambda t: t.nn.utils.rnn.pack_padded_sequence(_ones(t, 4, 3), [2, 4, 1]), RuntimeError,
     UNSORTED),
    ("pack zero length", lambda t: t.nn.utils.rnn.pack_padded_sequence(_ones(t, 4, 3), [0, 2, 4],
                                                                        enforce_sorted=False), RuntimeError,
     "Length of all samples has to be greater than 0, but found an element in 'lengths' that is <= 0"),
    ("pack lengths count", lambda t: t.nn.utils.rnn.pack_padded_sequence(_ones(t, 4, 3), [4, 2]), RuntimeError,
     "Expected `len(lengths)` to be equal to batch_size, but got 2 (batch_size=3)"),
    ("pack 2-D lengths", lambda t: t.nn.utils.rnn.pack_padded_sequence(_ones(t, 4, 3), t.tensor([[4, 2, 1]])),
     RuntimeError, "'lengths' argument should be a 1D CPU int64 tensor, but got 2D cpu Long tensor"),
    ("pack empty", lambda t: t.nn.utils.rnn.pack_padded_sequence(_ones(t, 3, 0), []), RuntimeError,
     "Cannot pack empty tensors."),
    ("pack_sequence unsorted", lambda t: t.nn.utils.rnn.pack_sequence([_ones(t, 1), _ones(t, 2)]), RuntimeError,
     UNSORTED),
    ("total_length", lambda t: t.nn.utils.rnn.pad_packed_sequence(
        t.nn.utils.rnn.pack_sequence([_ones(t, 4), _ones(t, 2)]), total_length=3), ValueError,
     ("Expected total_length to be at least the length of the longest sequence in input, but got "
      "total_length=3 and max sequence length being 4")),
    ("unpad lengths", lambda t: t.nn.utils.rnn.unpad_sequence(_ones(t, 3, 3), t.tensor([3, 2])), ValueError,
     "zip() argument 2 is shorter than argument 1"),
]  # fmt: skip


@pytest.mark.parametrize(("label", "call", "cls", "message"), ERRORS, ids=[e[0] for e in ERRORS])
def test_errors(label, call, cls, message):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(cls) as info:
            call(rustgrad)
    assert str(info.value) == message


@pytest.mark.parametrize(("label", "call", "cls", "message"), ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_are_pytorchs(label, call, cls, message):
    torch = real_torch()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(cls) as info:
            call(torch)
    assert str(info.value) == message


# ----- against PyTorch itself, where it is installed -----

TORCH_CONFIGS = [
    *CONFIGS,
    ("RNN", {"batch_first": True, "num_layers": 2}),
    ("GRU", {"batch_first": True, "bias": False}),
    ("LSTM", {"batch_first": True, "num_layers": 3, "bidirectional": True}),
]


def _flat_outputs(result) -> list:
    out, hidden = result
    data = out.data if isinstance(out, tuple) else out
    return [data, *(hidden if isinstance(hidden, tuple) else (hidden,))]


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("cls", "kwargs"), TORCH_CONFIGS)
def test_layers_match_pytorch(cls, kwargs, dtype):
    torch = real_torch()
    rustgrad.manual_seed(5)
    ours = getattr(nn, cls)(3, 4, dtype=getattr(rustgrad, dtype), **kwargs)
    torch.manual_seed(5)
    theirs = getattr(torch.nn, cls)(3, 4, dtype=getattr(torch, dtype), **kwargs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for (name, a), b in zip(ours.named_parameters(), theirs.parameters()):
        np.testing.assert_array_equal(values(a), b.detach().numpy(), err_msg=name)
    assert repr(ours) == repr(theirs)
    x = np.random.default_rng(0).standard_normal((5, 2, 3)).astype(dtype)
    h0, c0 = _initial_state(ours, 5 if kwargs.get("batch_first") else 2, np.random.default_rng(1))
    for with_state in (False, True):
        xa = rustgrad.tensor(x, requires_grad=True)
        xb = torch.tensor(x, requires_grad=True)
        if with_state:
            hx_a = _as_hx(ours, h0.astype(dtype), None if c0 is None else c0.astype(dtype))
            hx_b = tuple(torch.tensor(v.astype(dtype)) for v in (h0, c0) if v is not None)
            res_a, res_b = ours(xa, hx_a), theirs(xb, hx_b if cls == "LSTM" else hx_b[0])
        else:
            res_a, res_b = ours(xa), theirs(xb)
        outs_a, outs_b = _flat_outputs(res_a), _flat_outputs(res_b)
        tol = 1e-6 if dtype == "float32" else 1e-13
        for a, b in zip(outs_a, outs_b):
            np.testing.assert_allclose(values(a), b.detach().numpy(), rtol=0, atol=tol)
        names_a = [grad_fn_name(t) for t in outs_a]
        names_b = [grad_fn_name(t) for t in outs_b]
        if names_a != names_b:
            # Known: PyTorch's RNN/GRU transpose their output in place (TransposeBackward1; rustgrad has no
            # Tensor.transpose_), and its float32 LSTM runs in one oneDNN node (MkldnnRnnLayerBackward0).
            assert (names_a[0], names_b[0]) in {
                ("TransposeBackward0", "TransposeBackward1"),
                ("StackBackward0", "MkldnnRnnLayerBackward0"),
            }
            assert names_a[1:] == names_b[1:]
        weights = np.random.default_rng(2).standard_normal(len(outs_a))
        sum(float(w) * (o * o).sum() for w, o in zip(weights, outs_a)).backward()
        sum(float(w) * (o * o).sum() for w, o in zip(weights, outs_b)).backward()
        gtol = 1e-5 if dtype == "float32" else 1e-12
        for (name, a), b in zip(ours.named_parameters(), theirs.parameters()):
            np.testing.assert_allclose(values(a.grad), b.grad.numpy(), rtol=gtol, atol=gtol, err_msg=name)
        np.testing.assert_allclose(values(xa.grad), xb.grad.numpy(), rtol=gtol, atol=gtol)
        ours.zero_grad()
        theirs.zero_grad()


@pytest.mark.parametrize("cls", ["RNN", "GRU", "LSTM"])
def test_packed_and_unbatched_layers_match_pytorch(cls):
    torch = real_torch()
    rustgrad.manual_seed(6)
    ours = getattr(nn, cls)(3, 4, num_layers=2, bidirectional=True, dtype=F64)
    torch.manual_seed(6)
    theirs = getattr(torch.nn, cls)(3, 4, num_layers=2, bidirectional=True, dtype=torch.float64)
    rng = np.random.default_rng(3)
    seqs = [rng.standard_normal((n, 3)) for n in (2, 5, 1, 4)]
    for enforce_sorted in (False, True):
        use = sorted(seqs, key=len, reverse=True) if enforce_sorted else seqs
        pa = rnn_utils.pack_sequence([rustgrad.tensor(s) for s in use], enforce_sorted=enforce_sorted)
        pb = torch.nn.utils.rnn.pack_sequence([torch.tensor(s) for s in use], enforce_sorted=enforce_sorted)
        h0, c0 = _initial_state(ours, 4, rng)
        hx_a = _as_hx(ours, h0, c0)
        hx_b = (torch.tensor(h0), torch.tensor(c0)) if cls == "LSTM" else torch.tensor(h0)
        for args_a, args_b in (((pa,), (pb,)), ((pa, hx_a), (pb, hx_b))):
            out_a, out_b = _flat_outputs(ours(*args_a)), _flat_outputs(theirs(*args_b))
            for a, b in zip(out_a, out_b):
                np.testing.assert_allclose(values(a), b.detach().numpy(), rtol=0, atol=1e-13)
            assert [grad_fn_name(t) for t in out_a] == [grad_fn_name(t) for t in out_b]
    x = rng.standard_normal((4, 3))
    for a, b in zip(_flat_outputs(ours(rustgrad.tensor(x))), _flat_outputs(theirs(torch.tensor(x)))):
        np.testing.assert_allclose(values(a), b.detach().numpy(), rtol=0, atol=1e-13)
        assert grad_fn_name(a) == grad_fn_name(b) == "SqueezeBackward1"


@pytest.mark.parametrize("cls", ["RNN", "GRU", "LSTM"])
def test_dropout_draws_pytorchs_masks(cls):
    torch = real_torch()
    rustgrad.manual_seed(1)
    ours = getattr(nn, cls)(3, 4, num_layers=3, dropout=0.4, bidirectional=True)
    torch.manual_seed(1)
    theirs = getattr(torch.nn, cls)(3, 4, num_layers=3, dropout=0.4, bidirectional=True)
    x = np.random.default_rng(4).standard_normal((6, 2, 3)).astype(np.float32)
    rustgrad.manual_seed(5)
    torch.manual_seed(5)
    for a, b in zip(_flat_outputs(ours(rustgrad.tensor(x))), _flat_outputs(theirs(torch.tensor(x)))):
        np.testing.assert_allclose(values(a), b.detach().numpy(), rtol=0, atol=1e-6)
    assert rustgrad.rand(1).item() == torch.rand(1).item()  # the generators moved on alike


@pytest.mark.parametrize("cls", ["RNNCell", "GRUCell", "LSTMCell"])
@pytest.mark.parametrize("kwargs", [{}, {"bias": False}])
def test_cells_match_pytorch(cls, kwargs):
    torch = real_torch()
    rustgrad.manual_seed(2)
    ours = getattr(nn, cls)(3, 4, **kwargs)
    torch.manual_seed(2)
    theirs = getattr(torch.nn, cls)(3, 4, **kwargs)
    assert list(ours.state_dict()) == list(theirs.state_dict()) and repr(ours) == repr(theirs)
    for a, b in zip(ours.parameters(), theirs.parameters()):
        np.testing.assert_array_equal(values(a), b.detach().numpy())
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3)).astype(np.float32)
    h = rng.standard_normal((2, 4)).astype(np.float32)
    xa, xb = rustgrad.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    if cls == "LSTMCell":
        res_a = ours(xa, (rustgrad.tensor(h), rustgrad.tensor(-h)))
        res_b = theirs(xb, (torch.tensor(h), torch.tensor(-h)))
    else:
        res_a, res_b = (ours(xa, rustgrad.tensor(h)),), (theirs(xb, torch.tensor(h)),)
    for a, b in zip(res_a, res_b):
        np.testing.assert_allclose(values(a), b.detach().numpy(), rtol=0, atol=1e-6)
        assert grad_fn_name(a) == grad_fn_name(b)
    sum((o * o).sum() for o in res_a).backward()
    sum((o * o).sum() for o in res_b).backward()
    for a, b in zip([*ours.parameters(), xa], [*theirs.parameters(), xb]):
        np.testing.assert_allclose(values(a.grad), b.grad.numpy(), rtol=1e-5, atol=1e-6)
    unbatched_a, unbatched_b = ours(rustgrad.tensor(x[0])), theirs(torch.tensor(x[0]))
    if cls != "LSTMCell":
        unbatched_a, unbatched_b = (unbatched_a,), (unbatched_b,)
    for a, b in zip(unbatched_a, unbatched_b):
        np.testing.assert_allclose(values(a), b.detach().numpy(), rtol=0, atol=1e-6)


def test_sequence_utilities_match_pytorch():
    torch = real_torch()
    tu = torch.nn.utils.rnn
    rng = np.random.default_rng(6)
    seqs = [rng.standard_normal((n, 2)).astype(np.float32) for n in (2, 5, 1, 5, 3)]
    ours = [rustgrad.tensor(s) for s in seqs]
    theirs = [torch.tensor(s) for s in seqs]

    def same(a, b):
        if b is None:
            assert a is None
            return
        assert tuple(a.shape) == tuple(b.shape) and str(a.dtype) == str(b.dtype)
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())

    for kw in (
        {},
        {"batch_first": True, "padding_value": -2.0},
        {"batch_first": True, "padding_side": "left"},
    ):
        same(rnn_utils.pad_sequence(ours, **kw), tu.pad_sequence(theirs, **kw))
    for enforce_sorted in (False, True):
        order = sorted(range(5), key=lambda i: -len(seqs[i])) if enforce_sorted else range(5)
        pa = rnn_utils.pack_sequence([ours[i] for i in order], enforce_sorted=enforce_sorted)
        pb = tu.pack_sequence([theirs[i] for i in order], enforce_sorted=enforce_sorted)
        for a, b in zip(pa, pb):
            same(a, b)
        assert repr(pa) == repr(pb)
        for kw in ({}, {"batch_first": True, "padding_value": 3.0, "total_length": 7}):
            for a, b in zip(rnn_utils.pad_packed_sequence(pa, **kw), tu.pad_packed_sequence(pb, **kw)):
                same(a, b)
        for a, b in zip(rnn_utils.unpack_sequence(pa), tu.unpack_sequence(pb)):
            same(a, b)
    padded_a, padded_b = rnn_utils.pad_sequence(ours), tu.pad_sequence(theirs)
    lengths = [2, 5, 1, 5, 3]
    for lens_a, lens_b in ((lengths, lengths), (rustgrad.tensor(lengths), torch.tensor(lengths))):
        pa = rnn_utils.pack_padded_sequence(padded_a, lens_a, enforce_sorted=False)
        pb = tu.pack_padded_sequence(padded_b, lens_b, enforce_sorted=False)
        for a, b in zip(pa, pb):
            same(a, b)
    for a, b in zip(
        rnn_utils.unpad_sequence(padded_a, rustgrad.tensor(lengths)),
        tu.unpad_sequence(padded_b, torch.tensor(lengths)),
    ):
        same(a, b)
    # the grad_fn names where both build the result from the same ops
    xa = rustgrad.tensor(np.ones((3, 2), np.float32), requires_grad=True)
    xb = torch.tensor(np.ones((3, 2), np.float32), requires_grad=True)
    assert grad_fn_name(rnn_utils.pad_sequence([xa, xa[:1]])) == grad_fn_name(tu.pad_sequence([xb, xb[:1]]))
    pa, pb = rnn_utils.pack_sequence([xa, xa[:1]]), tu.pack_sequence([xb, xb[:1]])
    for kw in ({}, {"batch_first": True}):
        assert grad_fn_name(rnn_utils.pad_packed_sequence(pa, **kw)[0]) == grad_fn_name(
            tu.pad_packed_sequence(pb, **kw)[0]
        )
    assert [grad_fn_name(t) for t in rnn_utils.unpack_sequence(pa)] == ["IndexBackward0"] * 2


def _cell_by_ops(gates, c):
    """One LSTM step's element-wise part written op by op (the definition the fused op follows)."""
    i, f, g, o = gates.chunk(4, 1)
    c_next = f.sigmoid() * c + i.sigmoid() * g.tanh()
    return o.sigmoid() * c_next.tanh(), c_next


@pytest.mark.parametrize("dtype", [rustgrad.float32, rustgrad.float64])
def test_fused_lstm_cell_gives_the_bits_of_the_op_by_op_step(dtype):
    rng = np.random.default_rng(5)
    gates = rustgrad.tensor(rng.standard_normal((7, 4 * 33)) * 3, dtype=dtype)
    c = rustgrad.tensor(rng.standard_normal((7, 33)), dtype=dtype)
    h, c_next = rustgrad._rustgrad._lstm_cell(gates, c)
    want_h, want_c = _cell_by_ops(gates, c)
    assert h.dtype == dtype and h.shape == (7, 33) and c_next.shape == (7, 33)
    assert h.tolist() == want_h.tolist()
    assert c_next.tolist() == want_c.tolist()


def test_fused_lstm_cell_gradients_match_the_op_by_op_step_and_finite_differences():
    rng = np.random.default_rng(6)
    gates = rustgrad.tensor(rng.standard_normal((3, 4 * 5)), dtype=rustgrad.float64, requires_grad=True)
    c = rustgrad.tensor(rng.standard_normal((3, 5)), dtype=rustgrad.float64, requires_grad=True)
    dh = rustgrad.tensor(rng.standard_normal((3, 5)), dtype=rustgrad.float64)
    dc = rustgrad.tensor(rng.standard_normal((3, 5)), dtype=rustgrad.float64)
    h, c_next = rustgrad._rustgrad._lstm_cell(gates, c)
    assert h.grad_fn.name() == "LstmCellBackward0" and c_next.grad_fn is h.grad_fn
    got = rustgrad.autograd.grad([h, c_next], [gates, c], [dh, dc], retain_graph=True)
    want = rustgrad.autograd.grad(list(_cell_by_ops(gates, c)), [gates, c], [dh, dc])
    for a, b in zip(got, want):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-14)
    # only one output used: the other's gradient counts as zero
    (only_c,) = rustgrad.autograd.grad(c_next.sum(), [gates])
    (want_c,) = rustgrad.autograd.grad(_cell_by_ops(gates, c)[1].sum(), [gates])
    np.testing.assert_allclose(only_c.numpy(), want_c.numpy(), rtol=1e-12, atol=1e-14)
    cell = rustgrad._rustgrad._lstm_cell
    assert gradcheck(lambda g, s: cell(g, s), [gates, c])
    assert gradgradcheck(lambda g, s: cell(g, s), [gates, c])


def test_fused_lstm_cell_rejects_mismatched_shapes():
    with pytest.raises(RuntimeError, match="lstm_cell: gates of shape"):
        rustgrad._rustgrad._lstm_cell(rustgrad.zeros(2, 8), rustgrad.zeros(2, 3))


# ----- an LSTM layer direction as one op (MkldnnRnnLayerBackward0) -----


def _lstm_by_steps(lstm):
    """``lstm`` run with every layer direction op by op (the definition the layer op follows)."""
    lstm._runs_as_layer_op = lambda *args: False
    return lstm


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"num_layers": 2}, {"bidirectional": True}, {"batch_first": True, "bias": False}],
)
def test_lstm_layer_op_gives_the_bits_of_the_op_by_op_loop_and_close_gradients(kwargs):
    rustgrad.manual_seed(3)
    fused = nn.LSTM(5, 7, **kwargs)
    by_steps = _lstm_by_steps(copy.deepcopy(fused))
    x = rustgrad.randn(6, 3, 5, requires_grad=True)
    h0 = rustgrad.randn(fused.num_layers * (2 if fused.bidirectional else 1), 3 if not fused.batch_first else 6, 7)
    h0 = h0.requires_grad_()
    c0 = rustgrad.randn(*h0.shape).requires_grad_()
    got = fused(x, (h0, c0))
    want = by_steps(x, (h0, c0))
    flat = lambda r: [r[0], *r[1]]
    for a, b in zip(flat(got), flat(want)):
        assert a.tolist() == b.tolist()
    probes = [rustgrad.randn(*t.shape) for t in flat(got)]
    inputs_a = [x, h0, c0, *fused.parameters()]
    inputs_b = [x, h0, c0, *by_steps.parameters()]
    ga = rustgrad.autograd.grad(flat(got), inputs_a, probes)
    gb = rustgrad.autograd.grad(flat(want), inputs_b, probes)
    for a, b in zip(ga, gb):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_lstm_layer_op_gradients_and_second_derivatives(reverse, bias):
    rng = np.random.default_rng(8)

    def t(*shape):
        return rustgrad.tensor(rng.standard_normal(shape) * 0.7, dtype=F64, requires_grad=True)

    x, h0, c0 = t(3, 2, 2), t(2, 3), t(2, 3)
    w_ih, w_hh = t(12, 2), t(12, 3)
    biases = [t(12), t(12)] if bias else []

    def layer(x, h0, c0, w_ih, w_hh, *b):
        b_ih, b_hh = b if b else (None, None)
        return rustgrad._rustgrad._lstm_layer(x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse)

    out, h, c = layer(x, h0, c0, w_ih, w_hh, *biases)
    assert out.grad_fn.name() == "MkldnnRnnLayerBackward0" and h.grad_fn is out.grad_fn is c.grad_fn
    assert len(out.grad_fn.next_functions) == 5 + len(biases)
    # the last step's state is the output at the step run last
    np.testing.assert_array_equal(h.detach().numpy(), out[0 if reverse else -1].detach().numpy())
    assert gradcheck(layer, [x, h0, c0, w_ih, w_hh, *biases])
    assert gradgradcheck(layer, [x, h0, c0, w_ih, w_hh, *biases])


def test_lstm_layer_op_checks_shapes_and_frees_its_graph():
    layer = rustgrad._rustgrad._lstm_layer
    z = rustgrad.zeros
    with pytest.raises(RuntimeError, match="lstm_layer: input \\[3, 2, 4\\], states \\[2, 5\\]"):
        layer(z(3, 2, 4), z(2, 5), z(2, 5), z(20, 3), z(20, 5), None, None, False)
    with pytest.raises(RuntimeError, match="Expected sequence length to be larger than 0 in RNN"):
        layer(z(0, 2, 4), z(2, 5), z(2, 5), z(20, 4), z(20, 5), None, None, False)
    w = rustgrad.zeros(20, 4, requires_grad=True)
    before = rustgrad._rustgrad._live_nodes()
    out, h, c = layer(z(3, 2, 4), z(2, 5), z(2, 5), w, z(20, 5), None, None, False)
    (out.sum() + c.sum()).backward()
    assert w.grad.shape == (20, 4)
    del out, h, c
    assert rustgrad._rustgrad._live_nodes() == before


def test_lstm_layer_op_refuses_an_inference_tensor_it_would_save():
    lstm = nn.LSTM(3, 4)
    with rustgrad.inference_mode():
        x = rustgrad.randn(2, 1, 3)
    with pytest.raises(RuntimeError, match="Inference tensors cannot be saved for backward"):
        lstm(x)
