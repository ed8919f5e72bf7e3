"""rustgrad.nn: Module bookkeeping, layers, losses, init and state dicts, checked against closed forms.

Every expectation here also holds for PyTorch 2.15: running this file with ``sys.modules['rustgrad'] = torch``
passes. (For that reason the tests reach submodules as attributes, ``nn.init``, never by
``import rustgrad.nn``.)
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pytest
import rustgrad as torch
from rustgrad import nn, optim


def values(t) -> np.ndarray:
    return np.asarray(t.detach().tolist(), dtype=np.float64)


class TwoLayer(nn.Module):
    """A model with a submodule chain, a direct parameter and two buffers (one not persistent)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.1))
        self.head = nn.Linear(8, 3, bias=False)
        self.act = nn.GELU()
        self.scale = nn.Parameter(torch.ones(3))
        self.register_buffer("running", torch.zeros(3))
        self.register_buffer("scratch", torch.zeros(2), persistent=False)

    def forward(self, x):
        return self.head(self.body(x)) * self.scale


# ----- Parameter -----


def test_parameter_is_a_leaf_tensor_sharing_storage_with_its_data():
    data = torch.tensor([1.0, 2.0])
    p = nn.Parameter(data)
    assert isinstance(p, torch.Tensor) and isinstance(p, nn.Parameter)
    assert p.requires_grad and p.is_leaf and p.grad_fn is None
    with torch.no_grad():
        p.add_(1.0)
    assert data.tolist() == [2.0, 3.0]
    assert not nn.Parameter(torch.ones(1), requires_grad=False).requires_grad
    assert tuple(nn.Parameter().shape) == (0,)


def test_parameter_from_non_leaf_is_a_fresh_leaf():
    x = torch.ones(2, requires_grad=True)
    p = nn.Parameter(x * 3)
    assert p.is_leaf and p.requires_grad and p.grad_fn is None
    (p * p).sum().backward()
    assert p.grad.tolist() == [6.0, 6.0] and x.grad is None


def test_parameter_repr():
    assert repr(nn.Parameter(torch.tensor([1.0, 2.0]))) == (
        "Parameter containing:\ntensor([1., 2.], requires_grad=True)"
    )
    assert (
        repr(nn.Parameter(torch.tensor([1.5]), requires_grad=False))
        == "Parameter containing:\ntensor([1.5000])"
    )


# ----- registration and iteration -----


def test_named_parameters_buffers_and_modules_follow_registration_order():
    model = TwoLayer()
    assert [n for n, _ in model.named_parameters()] == [
        "scale",
        "body.0.weight",
        "body.0.bias",
        "head.weight",
    ]
    assert [n for n, _ in model.named_parameters(prefix="m", recurse=False)] == ["m.scale"]
    assert [tuple(p.shape) for p in model.parameters()] == [(3,), (8, 4), (8,), (3, 8)]
    assert [n for n, _ in model.named_buffers()] == ["running", "scratch"]
    assert len(list(model.buffers())) == 2
    assert [n for n, _ in model.named_children()] == ["body", "head", "act"]
    assert [n for n, _ in model.named_modules()] == ["", "body", "body.0", "body.1", "body.2", "head", "act"]
    assert [type(m).__name__ for m in model.children()] == ["Sequential", "Linear", "GELU"]
    assert len(list(model.modules())) == 7


def test_shared_modules_and_parameters_are_listed_once():
    shared = nn.Linear(2, 2)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias"]
    assert [n for n, _ in model.named_parameters(remove_duplicate=False)] == [
        "0.weight",
        "0.bias",
        "2.weight",
        "2.bias",
    ]
    assert [n for n, _ in model.named_modules()] == ["", "0", "1"]
    assert list(model.state_dict().keys()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_setattr_registers_and_reassigning_moves_between_kinds():
    m = nn.Module()
    m.w = nn.Parameter(torch.zeros(2))
    m.sub = nn.Linear(1, 1)
    m.plain = torch.zeros(1)
    assert "w" in m._parameters and "sub" in m._modules and "plain" not in m._buffers
    assert "w" not in m.__dict__ and "sub" not in m.__dict__
    m.sub = nn.Parameter(torch.ones(1))
    assert "sub" in m._parameters and "sub" not in m._modules
    del m.sub
    assert "sub" not in m._parameters
    with pytest.raises(AttributeError, match="'Module' object has no attribute 'sub'"):
        _ = m.sub
    d = dir(nn.Linear(1, 1))
    assert "weight" in d and "bias" in d and "forward" in d


def test_registration_errors_carry_pytorch_messages():
    lin = nn.Linear(2, 2)
    with pytest.raises(TypeError) as info:
        lin.weight = torch.zeros(2, 2)
    assert (
        str(info.value)
        == "cannot assign 'torch.FloatTensor' as parameter 'weight' (torch.nn.Parameter or None expected)"
    )
    with pytest.raises(TypeError) as info:
        lin.register_parameter("w2", torch.zeros(1))
    assert str(info.value) == (
        "cannot assign 'torch.FloatTensor' object to parameter 'w2' (torch.nn.Parameter or None required)"
    )
    with pytest.raises(KeyError, match="attribute 'forward' already exists"):
        lin.register_buffer("forward", torch.zeros(1))
    with pytest.raises(KeyError) as key_info:
        lin.register_buffer("a.b", torch.zeros(1))
    assert key_info.value.args[0] == 'buffer name can\'t contain "."'
    with pytest.raises(TypeError, match="int is not a Module subclass"):
        lin.add_module("x", 3)
    with pytest.raises(TypeError, match="cannot assign 'int' as child module 'x'"):
        m = nn.Sequential(nn.ReLU())
        m.add_module("x", nn.ReLU())
        m.x = 3

    class Early(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(torch.zeros(1))

    with pytest.raises(AttributeError, match=r"cannot assign parameters before Module.__init__\(\) call"):
        Early()
    with pytest.raises(AttributeError, match="'Linear' object has no attribute 'nope'"):
        _ = lin.nope


def test_bias_false_registers_none_and_skips_it():
    lin = nn.Linear(3, 2, bias=False)
    assert lin.bias is None
    assert list(lin.state_dict().keys()) == ["weight"]
    assert [n for n, _ in lin.named_parameters()] == ["weight"]


# ----- modes, gradients, apply -----


def test_train_eval_propagate_to_children():
    model = TwoLayer()
    assert model.training and model.body[2].training
    assert model.eval() is model
    assert not model.training and not model.body[2].training and not model.head.training
    model.train()
    assert all(m.training for m in model.modules())
    with pytest.raises(ValueError, match="training mode is expected to be boolean"):
        model.train("yes")


def test_zero_grad_and_requires_grad_():
    lin = nn.Linear(2, 1)
    lin(torch.ones(3, 2)).sum().backward()
    assert lin.weight.grad.tolist() == [[3.0, 3.0]] and lin.bias.grad.tolist() == [3.0]
    lin.zero_grad(set_to_none=False)
    assert lin.weight.grad.tolist() == [[0.0, 0.0]]
    lin.zero_grad()
    assert lin.weight.grad is None and lin.bias.grad is None
    assert lin.requires_grad_(False) is lin
    assert not any(p.requires_grad for p in lin.parameters())


def test_apply_visits_children_before_parent():
    seen = []
    model = nn.Sequential(nn.Linear(1, 1), nn.Sequential(nn.ReLU()))
    assert model.apply(lambda m: seen.append(type(m).__name__)) is model
    assert seen == ["Linear", "ReLU", "Sequential", "Sequential"]


def test_forward_hooks_change_inputs_and_outputs_and_can_be_removed():
    lin = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        lin.weight.fill_(2.0)
    calls = []
    pre = lin.register_forward_pre_hook(lambda mod, args: (args[0] + 1,))
    post = lin.register_forward_hook(lambda mod, args, out: calls.append(args[0].item()) or out * 10)
    assert lin(torch.tensor([[1.0]])).item() == 40.0  # (1 + 1) * 2 * 10
    assert calls == [2.0]
    pre.remove()
    assert lin(torch.tensor([[1.0]])).item() == 20.0
    post.remove()
    assert lin(torch.tensor([[1.0]])).item() == 2.0
    kw = lin.register_forward_pre_hook(lambda mod, args, kwargs: ((args[0] * 3,), kwargs), with_kwargs=True)
    assert lin(torch.tensor([[1.0]])).item() == 6.0
    kw.remove()


def test_module_without_forward_raises():
    with pytest.raises(
        NotImplementedError, match='Module \\[Module\\] is missing the required "forward" function'
    ):
        nn.Module()(torch.ones(1))


# ----- state dict -----


def test_state_dict_keys_values_and_detachment():
    model = TwoLayer()
    sd = model.state_dict()
    assert isinstance(sd, OrderedDict)
    assert list(sd.keys()) == ["scale", "running", "body.0.weight", "body.0.bias", "head.weight"]
    assert not any(t.requires_grad for t in sd.values())
    with torch.no_grad():
        model.scale.mul_(5.0)
    assert sd["scale"].tolist() == [5.0, 5.0, 5.0]  # detached views share the parameter's storage
    kept = model.state_dict(keep_vars=True)
    assert kept["scale"] is model.scale
    assert next(iter(model.state_dict(prefix="net."))) == "net.scale"


def test_load_state_dict_round_trip():
    torch.manual_seed(0)
    src, dst = TwoLayer(), TwoLayer()
    assert not np.array_equal(values(src.head.weight), values(dst.head.weight))
    result = dst.load_state_dict(src.state_dict())
    assert repr(result) == "<All keys matched successfully>"
    assert result.missing_keys == [] and result.unexpected_keys == []
    for (name, a), (_, b) in zip(src.state_dict().items(), dst.state_dict().items()):
        assert np.array_equal(values(a), values(b)), name
    weight = dst.head.weight
    dst.load_state_dict(src.state_dict())
    assert dst.head.weight is weight  # copied in place, the Parameter object stays


def test_load_state_dict_reports_missing_and_unexpected_keys():
    lin = nn.Linear(2, 2)
    sd = lin.state_dict()
    del sd["bias"]
    sd["extra"] = torch.zeros(1)
    with pytest.raises(RuntimeError) as info:
        lin.load_state_dict(sd)
    assert str(info.value) == (
        "Error(s) in loading state_dict for Linear:\n"
        '\tMissing key(s) in state_dict: "bias". \n'
        '\tUnexpected key(s) in state_dict: "extra". '
    )
    result = lin.load_state_dict(sd, strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == ["extra"]
    assert repr(result) == "_IncompatibleKeys(missing_keys=['bias'], unexpected_keys=['extra'])"


def test_load_state_dict_size_mismatch_message():
    model = nn.Sequential(nn.Linear(2, 3))
    with pytest.raises(RuntimeError) as info:
        model.load_state_dict({"0.weight": torch.zeros(3, 4), "0.bias": torch.zeros(3)})
    assert str(info.value) == (
        "Error(s) in loading state_dict for Sequential:\n"
        "\tsize mismatch for 0.weight: copying a param with shape torch.Size([3, 4]) from checkpoint, "
        "the shape in current model is torch.Size([3, 2])."
    )
    with pytest.raises(TypeError, match="Expected state_dict to be dict-like, got <class 'list'>."):
        model.load_state_dict([])


# ----- repr -----


def test_nested_repr_matches_pytorch():
    assert repr(TwoLayer()) == (
        "TwoLayer(\n"
        "  (body): Sequential(\n"
        "    (0): Linear(in_features=4, out_features=8, bias=True)\n"
        "    (1): ReLU()\n"
        "    (2): Dropout(p=0.1, inplace=False)\n"
        "  )\n"
        "  (head): Linear(in_features=8, out_features=3, bias=False)\n"
        "  (act): GELU(approximate='none')\n"
        ")"
    )


@pytest.mark.parametrize(
    "make, text",
    [
        (lambda: nn.Linear(2, 3), "Linear(in_features=2, out_features=3, bias=True)"),
        (lambda: nn.ReLU(), "ReLU()"),
        (lambda: nn.ReLU(inplace=True), "ReLU(inplace=True)"),
        (lambda: nn.GELU(approximate="tanh"), "GELU(approximate='tanh')"),
        (lambda: nn.Tanh(), "Tanh()"),
        (lambda: nn.Sigmoid(), "Sigmoid()"),
        (lambda: nn.Softmax(dim=1), "Softmax(dim=1)"),
        (lambda: nn.LogSoftmax(-1), "LogSoftmax(dim=-1)"),
        (lambda: nn.Identity(3, k=4), "Identity()"),
        (lambda: nn.Flatten(), "Flatten(start_dim=1, end_dim=-1)"),
        (lambda: nn.Dropout(), "Dropout(p=0.5, inplace=False)"),
        (lambda: nn.MSELoss(), "MSELoss()"),
        (lambda: nn.CrossEntropyLoss(label_smoothing=0.1), "CrossEntropyLoss()"),
        (lambda: nn.Sequential(), "Sequential()"),
        (lambda: nn.ModuleDict({"a": nn.ReLU()}), "ModuleDict(\n  (a): ReLU()\n)"),
    ],
)
def test_layer_reprs(make, text):
    assert repr(make()) == text


def test_module_list_repr_folds_repeated_entries():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)] + [nn.ReLU()])
    assert repr(layers) == (
        "ModuleList(\n  (0-2): 3 x Linear(in_features=2, out_features=2, bias=True)\n  (3): ReLU()\n)"
    )
    assert repr(nn.ModuleList()) == "ModuleList()"


# ----- containers -----


def test_sequential_indexing_slicing_and_mutation():
    a, b, c = nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1)
    seq = nn.Sequential(a, b)
    assert len(seq) == 2 and seq[0] is a and seq[-1] is b and list(seq) == [a, b]
    assert seq.append(c) is seq and seq[2] is c
    sub = seq[1:]
    assert isinstance(sub, nn.Sequential) and list(sub) == [b, c]
    assert list(sub._modules.keys()) == ["1", "2"]  # slicing keeps the original names
    with pytest.raises(IndexError, match="index 3 is out of range"):
        seq[3]
    del seq[0]
    assert list(seq._modules.keys()) == ["0", "1"] and seq[0] is b
    named = nn.Sequential(OrderedDict([("first", a), ("act", b)]))
    assert named.first is a and [n for n, _ in named.named_children()] == ["first", "act"]


def test_sequential_forward_chains_modules():
    seq = nn.Sequential(nn.Flatten(), nn.Identity())
    x = torch.arange(12.0).reshape(2, 3, 2)
    assert tuple(seq(x).shape) == (2, 6)
    assert seq(x).tolist() == x.reshape(2, 6).tolist()


def test_module_list_and_dict_register_their_modules():
    layers = nn.ModuleList([nn.Linear(1, 1), nn.Linear(1, 1)])
    layers.append(nn.Linear(1, 2))
    layers += [nn.ReLU()]
    assert len(layers) == 4 and isinstance(layers[-1], nn.ReLU)
    assert [n for n, _ in layers.named_parameters()][-1] == "2.bias"
    assert len(list(layers.parameters())) == 6
    heads = nn.ModuleDict({"cls": nn.Linear(2, 3)})
    heads["reg"] = nn.Linear(2, 1)
    assert list(heads.keys()) == ["cls", "reg"] and "reg" in heads and len(heads) == 2
    assert [n for n, _ in heads.named_parameters()] == ["cls.weight", "cls.bias", "reg.weight", "reg.bias"]


# ----- init -----


def test_linear_matches_pytorch_seeded_initialisation():
    torch.manual_seed(0)
    lin = nn.Linear(3, 2)
    expected_weight = [
        [-0.004322517663240433, 0.3097158372402191, -0.4751853346824646],
        [-0.4248946011066437, -0.2223689705133438, 0.15482072532176971],
    ]
    np.testing.assert_allclose(values(lin.weight), expected_weight, rtol=0, atol=1e-7)
    np.testing.assert_allclose(
        values(lin.bias), [-0.011439144611358643, 0.45777493715286255], rtol=0, atol=1e-7
    )
    assert isinstance(lin.weight, nn.Parameter) and lin.weight.dtype == torch.float32


def test_linear_init_is_reproducible_and_bounded():
    torch.manual_seed(3)
    a = nn.Linear(50, 40)
    torch.manual_seed(3)
    b = nn.Linear(50, 40)
    assert np.array_equal(values(a.weight), values(b.weight))
    bound = 1 / math.sqrt(50)  # kaiming_uniform_(a=sqrt(5)) gives gain*sqrt(3/fan_in) = 1/sqrt(fan_in)
    w = values(a.weight)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert abs(w.mean()) < 0.01 and abs(w.std() - bound / math.sqrt(3)) < 0.01
    assert np.abs(values(a.bias)).max() <= bound
    assert nn.Linear(2, 2, dtype=torch.float64).weight.dtype == torch.float64


def test_calculate_gain_and_fans():
    assert nn.init.calculate_gain("linear") == 1 and nn.init.calculate_gain("sigmoid") == 1
    assert nn.init.calculate_gain("tanh") == 5.0 / 3
    assert nn.init.calculate_gain("relu") == math.sqrt(2.0)
    assert nn.init.calculate_gain("leaky_relu") == math.sqrt(2.0 / (1 + 0.01**2))
    assert nn.init.calculate_gain("leaky_relu", math.sqrt(5)) == math.sqrt(1 / 3)
    assert nn.init.calculate_gain("selu") == 0.75
    with pytest.raises(ValueError, match="Unsupported nonlinearity foo"):
        nn.init.calculate_gain("foo")
    assert nn.init._calculate_fan_in_and_fan_out(torch.empty(5, 3)) == (3, 5)
    assert nn.init._calculate_fan_in_and_fan_out(torch.empty(6, 4, 3, 2)) == (24, 36)
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        nn.init._calculate_fan_in_and_fan_out(torch.empty(5))


def test_init_functions_bounds_and_statistics():
    torch.manual_seed(1)
    w = torch.empty(200, 300)
    assert nn.init.xavier_uniform_(w) is w
    bound = math.sqrt(6.0 / 500)
    assert np.abs(values(w)).max() <= bound and np.abs(values(w)).max() > 0.99 * bound
    nn.init.xavier_normal_(w, gain=2.0)
    assert abs(values(w).std() - 2.0 * math.sqrt(2.0 / 500)) < 0.002
    nn.init.kaiming_uniform_(w, nonlinearity="relu")
    bound = math.sqrt(2.0) * math.sqrt(3.0 / 300)
    assert np.abs(values(w)).max() <= bound and np.abs(values(w)).max() > 0.99 * bound
    nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    assert abs(values(w).std() - math.sqrt(2.0 / 200)) < 0.002
    nn.init.normal_(w, mean=3.0, std=0.5)
    assert abs(values(w).mean() - 3.0) < 0.01 and abs(values(w).std() - 0.5) < 0.01
    nn.init.uniform_(w, -2.0, -1.0)
    assert values(w).min() >= -2.0 and values(w).max() < -1.0
    assert values(nn.init.constant_(w, 0.25)).tolist()[0][:2] == [0.25, 0.25]
    assert values(nn.init.ones_(w)).sum() == 60000 and values(nn.init.zeros_(w)).sum() == 0
    with pytest.raises(
        ValueError, match="Mode fan_up not supported, please use one of \\['fan_in', 'fan_out'\\]"
    ):
        nn.init.kaiming_uniform_(w, mode="fan_up")


def test_init_on_parameter_does_not_record_a_graph():
    p = nn.Parameter(torch.empty(3, 3))
    nn.init.kaiming_uniform_(p)
    assert p.is_leaf and p.grad_fn is None and p.requires_grad


# ----- layers and losses (forward values against closed forms) -----


def test_linear_forward_is_affine():
    lin = nn.Linear(3, 2)
    x = torch.tensor([[1.0, -2.0, 0.5], [0.0, 1.0, 3.0]])
    expected = values(x) @ values(lin.weight).T + values(lin.bias)
    np.testing.assert_allclose(values(lin(x)), expected, rtol=1e-6, atol=1e-6)
    lin(x).sum().backward()
    np.testing.assert_allclose(values(lin.weight.grad), np.ones((2, 1)) * values(x).sum(0), rtol=1e-6)


def test_activations():
    x = torch.tensor([[-1.0, 0.0, 2.0], [0.5, -3.0, 1.0]])
    xn = values(x)
    assert values(nn.ReLU()(x)).tolist() == np.maximum(xn, 0).tolist()
    np.testing.assert_allclose(values(nn.Tanh()(x)), np.tanh(xn), rtol=1e-6)
    np.testing.assert_allclose(values(nn.Sigmoid()(x)), 1 / (1 + np.exp(-xn)), rtol=1e-6)
    softmax = np.exp(xn) / np.exp(xn).sum(1, keepdims=True)
    np.testing.assert_allclose(values(nn.Softmax(dim=1)(x)), softmax, rtol=1e-6)
    np.testing.assert_allclose(values(nn.LogSoftmax(dim=1)(x)), np.log(softmax), rtol=1e-6, atol=1e-6)
    phi = 0.5 * (1 + np.vectorize(math.erf)(xn / math.sqrt(2)))
    np.testing.assert_allclose(values(nn.GELU()(x)), xn * phi, rtol=1e-5, atol=1e-6)
    assert nn.Identity()(x) is x


def test_dropout_scales_survivors_and_is_identity_in_eval():
    torch.manual_seed(0)
    drop = nn.Dropout(p=0.25)
    x = torch.ones(100, 100)
    out = values(drop(x))
    kept = out != 0
    assert abs(kept.mean() - 0.75) < 0.02
    np.testing.assert_allclose(out[kept], 1 / 0.75, rtol=1e-6)
    drop.eval()
    assert values(drop(x)).tolist() == values(x).tolist()
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got 1.5"):
        nn.Dropout(1.5)


def test_regression_losses():
    pred = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    target = torch.tensor([[0.0, 2.5], [1.0, 1.0]])
    diff = values(pred) - values(target)
    assert math.isclose(nn.MSELoss()(pred, target).item(), (diff**2).mean(), rel_tol=1e-6)
    assert math.isclose(nn.MSELoss(reduction="sum")(pred, target).item(), (diff**2).sum(), rel_tol=1e-6)
    assert values(nn.MSELoss(reduction="none")(pred, target)).tolist() == (diff**2).tolist()
    assert math.isclose(nn.L1Loss()(pred, target).item(), np.abs(diff).mean(), rel_tol=1e-6)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    return z - np.log(np.exp(z).sum(1, keepdims=True))


def test_cross_entropy_and_nll_losses():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [-1.0, 3.0, 0.0]], requires_grad=True)
    target = torch.tensor([0, 2, 1])
    logp = _log_softmax(values(logits))
    picked = -logp[[0, 1, 2], [0, 2, 1]]
    loss = nn.CrossEntropyLoss()(logits, target)
    assert math.isclose(loss.item(), picked.mean(), rel_tol=1e-6)
    loss.backward()
    grad = np.exp(logp)
    grad[[0, 1, 2], [0, 2, 1]] -= 1
    np.testing.assert_allclose(values(logits.grad), grad / 3, rtol=1e-5, atol=1e-7)

    weight = torch.tensor([1.0, 2.0, 0.5])
    w = np.array([1.0, 2.0, 0.5])[[0, 2, 1]]
    assert math.isclose(
        nn.CrossEntropyLoss(weight=weight)(logits, target).item(), (w * picked).sum() / w.sum(), rel_tol=1e-6
    )
    ignored = torch.tensor([0, -100, 1])
    assert math.isclose(
        nn.CrossEntropyLoss()(logits, ignored).item(), (picked[0] + picked[2]) / 2, rel_tol=1e-6
    )
    eps = 0.1
    smooth = (1 - eps) * picked + eps * (-logp).mean(1)
    assert math.isclose(
        nn.CrossEntropyLoss(label_smoothing=eps)(logits, target).item(), smooth.mean(), rel_tol=1e-6
    )
    log_probs = nn.LogSoftmax(dim=1)(logits)
    assert math.isclose(nn.NLLLoss()(log_probs, target).item(), picked.mean(), rel_tol=1e-6)
    assert math.isclose(nn.NLLLoss(reduction="sum")(log_probs, target).item(), picked.sum(), rel_tol=1e-6)


def test_binary_cross_entropy_losses():
    z = np.array([0.3, -1.2, 2.0, 0.0])
    y = np.array([1.0, 0.0, 1.0, 0.0])
    p = 1 / (1 + np.exp(-z))
    bce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    probs = torch.tensor(p.tolist())
    assert math.isclose(nn.BCELoss()(probs, torch.tensor(y.tolist())).item(), bce.mean(), rel_tol=1e-5)
    logits = torch.tensor(z.tolist())
    assert math.isclose(
        nn.BCEWithLogitsLoss()(logits, torch.tensor(y.tolist())).item(), bce.mean(), rel_tol=1e-5
    )
    pos_weight = 3.0
    weighted = -(pos_weight * y * np.log(p) + (1 - y) * np.log(1 - p))
    loss = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([pos_weight]))(logits, torch.tensor(y.tolist()))
    assert math.isclose(loss.item(), weighted.mean(), rel_tol=1e-5)


def test_loss_weight_is_a_buffer():
    loss = nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0]))
    assert [n for n, _ in loss.named_buffers()] == ["weight"]
    assert list(loss.state_dict().keys()) == ["weight"]
    assert nn.MSELoss().reduction == "mean" and nn.CrossEntropyLoss().ignore_index == -100


# ----- nn.utils -----


def test_clip_grad_norm_scales_all_gradients_together():
    a = torch.tensor([3.0], requires_grad=True)
    b = torch.tensor([4.0, 0.0], requires_grad=True)
    (a * a / 2).sum().backward()  # grad 3
    (b * b / 2).sum().backward()  # grad [4, 0]
    total = nn.utils.clip_grad_norm_([a, b], max_norm=1.0)
    assert math.isclose(total.item(), 5.0, rel_tol=1e-6)
    scale = 1.0 / (5.0 + 1e-6)
    np.testing.assert_allclose(values(a.grad), [3 * scale], rtol=1e-6)
    np.testing.assert_allclose(values(b.grad), [4 * scale, 0.0], rtol=1e-6)
    assert math.isclose(nn.utils.clip_grad_norm_([a, b], max_norm=10.0).item(), 1.0, rel_tol=1e-5)
    np.testing.assert_allclose(values(a.grad), [3 * scale], rtol=1e-6)  # below the limit: unchanged


def test_clip_grad_value_clamps_elementwise():
    p = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    (p * torch.tensor([0.5, -4.0, 2.0])).sum().backward()
    nn.utils.clip_grad_value_([p], 1.0)
    assert p.grad.tolist() == [0.5, -1.0, 1.0]


# ----- acceptance: an unchanged PyTorch training script -----


def test_pytorch_training_script_runs_unchanged_and_loss_goes_down():
    # Everything below is plain PyTorch code; only the import at the top of this file says rustgrad.
    torch.manual_seed(0)
    n_samples, batch_size = 256, 32
    X = torch.randn(n_samples, 4)
    y = (X[:, 0] > 0).long() + (X[:, 1] > 0.5).long()

    class Classifier(nn.Module):
        def __init__(self, n_in, n_hidden, n_out):
            super().__init__()
            self.fc1 = nn.Linear(n_in, n_hidden)
            self.fc2 = nn.Linear(n_hidden, n_out)

        def forward(self, x):
            return self.fc2(torch.relu(self.fc1(x)))

    model = Classifier(4, 32, 3)
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.Adam(model.parameters(), lr=1e-2)
    epoch_losses = []
    for epoch in range(15):
        perm = torch.randperm(n_samples)
        total = 0.0
        for i in range(0, n_samples, batch_size):
            idx = perm[i : i + batch_size]
            xb, yb = X[idx], y[idx]
            optimizer.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.step()
            total += loss.item() * xb.shape[0]
        epoch_losses.append(total / n_samples)
    assert epoch_losses[-1] < 0.5 * epoch_losses[0]
    assert epoch_losses[-1] < 0.3
    model.eval()
    with torch.no_grad():
        accuracy = (model(X).argmax(dim=1) == y).float().mean().item()
    assert accuracy > 0.9


# ----- against PyTorch itself, where it is installed -----


def test_same_values_as_pytorch():
    real_torch = pytest.importorskip("torch")
    if real_torch is torch:
        pytest.skip("running with rustgrad replaced by torch")
    torch.manual_seed(7)
    ours = nn.Sequential(nn.Linear(5, 4), nn.GELU(), nn.Linear(4, 3))
    real_torch.manual_seed(7)
    theirs = real_torch.nn.Sequential(
        real_torch.nn.Linear(5, 4), real_torch.nn.GELU(), real_torch.nn.Linear(4, 3)
    )
    for (name, a), (_, b) in zip(ours.state_dict().items(), theirs.state_dict().items()):
        np.testing.assert_allclose(values(a), b.numpy(), rtol=0, atol=1e-7, err_msg=name)
    x = np.random.default_rng(0).standard_normal((6, 5)).astype(np.float32)
    target = [0, 1, 2, 0, 1, 2]
    loss_ours = nn.CrossEntropyLoss()(ours(torch.tensor(x)), torch.tensor(target))
    loss_theirs = real_torch.nn.CrossEntropyLoss()(theirs(real_torch.tensor(x)), real_torch.tensor(target))
    loss_ours.backward()
    loss_theirs.backward()
    assert math.isclose(loss_ours.item(), loss_theirs.item(), rel_tol=1e-6)
    for a, b in zip(ours.parameters(), theirs.parameters()):
        np.testing.assert_allclose(values(a.grad), b.grad.numpy(), rtol=1e-5, atol=1e-7)
    assert repr(ours) == repr(theirs)
