"""Arguments typed as PyTorch's argument parser types them (int, Number, bool), the order in which
``backward``/``grad`` check their arguments, and the target checks of ``nll_loss``/``cross_entropy``.
Each expectation was taken from PyTorch 2.15; the values are checked against closed forms."""

import contextlib
import math
import re

import numpy as np
import pytest
import rustgrad as torch
import rustgrad.nn.functional as F


@contextlib.contextmanager
def raises(exc, pattern):
    """``pytest.raises`` matching the message alone: PyO3 adds a note ("while processing 'dim'")
    to the errors of argument extraction, which ``match=`` would also see."""
    with pytest.raises(exc) as info:
        yield
    assert re.search(pattern, str(info.value)), str(info.value)


# ----------------------------------------------------------------------------- int, Number, bool


def test_int_argument_takes_a_0d_integer_tensor_and_numpy_ints():
    x = torch.randn(2, 3)
    assert x.unsqueeze(torch.tensor(0)).shape == (1, 2, 3)
    assert x.unsqueeze(np.int64(1)).shape == (2, 1, 3)
    assert x.softmax(torch.tensor(1)).shape == (2, 3)


@pytest.mark.parametrize(
    "bad, kind",
    [
        (torch.tensor([0]), "Tensor"),
        (torch.tensor(True), "Tensor"),
        (torch.tensor(0.0), "Tensor"),
        (0.0, "float"),
        (None, "NoneType"),
        (torch.float32, "torch.dtype"),
        ("a", "str"),
    ],
)
def test_int_argument_refuses_anything_else(bad, kind):
    x = torch.randn(2, 3)
    with raises(TypeError, rf"^unsqueeze\(\): argument 'dim' \(position 1\) must be int, not {kind}$"):
        x.unsqueeze(bad)
    with raises(TypeError, rf"^transpose\(\): argument 'dim0' \(position 1\) must be int, not {kind}$"):
        x.transpose(bad, 1)


def test_int_argument_outside_int64_is_a_value_error():
    with raises(ValueError, "^Overflow when unpacking long long$"):
        torch.randn(2).unsqueeze(2**63)


def test_number_argument_takes_0d_tensors_only():
    x = torch.ones(2, 3)
    out = x.addcdiv(x, x, value=torch.tensor(2.0))
    assert np.allclose(out.numpy(), 3.0)
    out = x.add(x, alpha=np.float32(0.5))
    assert np.allclose(out.numpy(), 1.5)
    with raises(TypeError, r"^addcdiv\(\): argument 'value' must be Number, not Tensor$"):
        x.addcdiv(x, x, value=torch.tensor([1.0]))
    with raises(TypeError, r"must be Number, not str$"):
        x.add(x, alpha="a")


def test_bool_argument_is_only_a_bool():
    x = torch.randn(2, 3)
    assert x.sum(0, keepdim=np.bool_(True)).shape == (1, 3)
    with raises(TypeError, r"^sum\(\): argument 'keepdim' .*must be bool, not int$"):
        x.sum(0, keepdim=1)


def test_functional_scalar_and_flag_arguments():
    x = torch.tensor([-2.0, 3.0])
    out = F.leaky_relu(x, torch.tensor(0.5))
    assert out.tolist() == [-1.0, 3.0]
    with raises(TypeError, r"^leaky_relu\(\): argument 'negative_slope' \(position 2\) must be Number"):
        F.leaky_relu(x.bool(), negative_slope=torch.ones(3))
    with raises(TypeError, r"^dropout\(\): argument 'train' \(position 3\) must be bool, not Tensor$"):
        F.dropout(x, training=torch.tensor(True))
    with raises(TypeError, r"^dropout\(\): argument 'train' \(position 3\) must be bool, not list$"):
        F.dropout(x, training=[1])


# ----------------------------------------------------------------------------- allclose


def test_allclose_rules():
    a = torch.zeros(2)
    with raises(RuntimeError, "^Bool did not match Float$"):
        torch.allclose(torch.tensor([[[False, False, True]]]), a)
    with raises(RuntimeError, "^Float did not match Long$"):
        torch.allclose(a, torch.tensor([0, 0]))
    with raises(RuntimeError, r"size of tensor a \(2\) must match the size of tensor b \(3\)"):
        torch.allclose(a, torch.zeros(3))
    assert torch.allclose(a, torch.zeros(3, 1))  # broadcasts
    with raises(RuntimeError, "^rtol must be greater than or equal to zero, but got -1$"):
        torch.allclose(a, a, rtol=-1)
    with raises(TypeError, r"argument 'equal_nan' must be bool, not int"):
        torch.allclose(a, a, equal_nan=1)
    nan = torch.tensor([float("nan")])
    assert torch.allclose(nan, nan, equal_nan=True) and not torch.allclose(nan, nan)
    assert torch.allclose(torch.tensor([1.0]), torch.tensor([1.5]), rtol=torch.tensor(0.5))


# ----------------------------------------------------------------------------- backward / grad


def test_backward_checks_the_implicit_gradient_before_its_flags():
    x = torch.ones(2, requires_grad=True)
    with raises(RuntimeError, "^grad can be implicitly created only for scalar outputs$"):
        x.mul(2).backward(retain_graph=torch.bool)
    with raises(RuntimeError, "^grad can be implicitly created only for scalar outputs$"):
        torch.autograd.grad(x.mul(2), [x], create_graph=2.5)


@pytest.mark.parametrize("flag", [torch.bool, 2.5, "a", [1]])
def test_backward_flags_are_read_as_integers(flag):
    x = torch.ones(2, requires_grad=True)
    with raises(TypeError, "cannot be interpreted as an integer"):
        x.sum().backward(retain_graph=flag)
    with raises(TypeError, "cannot be interpreted as an integer"):
        torch.autograd.grad(x.sum(), [x], retain_graph=flag)


def test_backward_flags_accept_ints_and_0d_tensors():
    x = torch.ones(2, requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=1)
    y.backward(retain_graph=torch.tensor(True))  # the graph was kept
    assert x.grad.tolist() == [4.0, 4.0]  # d(x.x)/dx = 2x, twice


def test_backward_gradient_count():
    x = torch.ones(2, requires_grad=True)
    with raises(RuntimeError, "^got 1 tensors and 0 gradients$"):
        x.sum().backward(gradient=())
    with raises(TypeError, "not iterable"):
        x.sum().backward(gradient=2.0)
    # Extra gradients are ignored, as PyTorch pairs outputs and gradients with zip.
    torch.autograd.backward([x.sum()], grad_tensors=[torch.tensor(3.0), torch.tensor(5.0)])
    assert x.grad.tolist() == [3.0, 3.0]
    torch.autograd.backward((), grad_tensors=torch.tensor(1.0))  # nothing to do


# ----------------------------------------------------------------------------- nll_loss / cross_entropy


def _log_softmax(rows):
    rows = np.asarray(rows, dtype=np.float64)
    return rows - np.log(np.exp(rows).sum(-1, keepdims=True))


@pytest.mark.parametrize(
    "ishape, tshape, exc, msg",
    [
        ((4, 3), (), ValueError, r"^Expected input batch_size \(4\) to match target batch_size \(0\)\.$"),
        ((1, 3), (4, 2), ValueError, r"^Expected input batch_size \(1\) to match target batch_size \(4\)\.$"),
        ((4, 3), (4, 2), RuntimeError, "^0D or 1D target tensor expected, multi-target not supported$"),
        ((3,), (4, 2), RuntimeError, "^0D or 1D target tensor expected, multi-target not supported$"),
        ((3,), (4,), ValueError, "^For 1D input, 1D target must have size 1, but got target size: 4$"),
        ((4, 3, 2), (4,), RuntimeError, r"^Expected target size \[4, 2\], got \[4\]$"),
        (
            (4, 3, 2),
            (3,),
            ValueError,
            r"^Expected input batch_size \(4\) to match target batch_size \(3\)\.$",
        ),
        ((), (), ValueError, r"^Expected 1 or more dimensions \(got 0\)$"),
    ],
)
def test_nll_loss_target_checks(ishape, tshape, exc, msg):
    inp = torch.randn(ishape)
    with raises(exc, msg):
        F.nll_loss(inp, torch.zeros(tshape, dtype=torch.int64))


def test_nll_loss_target_dtype_is_checked_after_its_shape():
    with raises(RuntimeError, "^expected target dtype to be Long or Byte, but got Float$"):
        F.nll_loss(torch.randn(4, 3), torch.zeros(4))
    with raises(ValueError, "batch_size"):
        F.nll_loss(torch.randn(4, 3), torch.zeros(5))


def test_nll_loss_of_a_1d_input_takes_a_one_element_target():
    logp = torch.tensor([-1.0, -2.0, -3.0])
    out = F.nll_loss(logp, torch.tensor([2]), reduction="none")
    assert out.shape == () and out.item() == 3.0


def test_cross_entropy_class_probabilities_need_a_float_target():
    with raises(RuntimeError, "^Expected floating point type for target with class probabilities, got Long$"):
        F.cross_entropy(torch.randn(3), torch.zeros(3, dtype=torch.int64))
    with raises(IndexError, "^Dimension specified as 1 but tensor has no dimensions$"):
        F.cross_entropy(torch.randn(()), torch.zeros(()))


@pytest.mark.parametrize("smoothing", [float("nan"), -0.1, -5.0])
def test_cross_entropy_ignores_a_negative_or_nan_label_smoothing(smoothing):
    logits = [[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]]
    target = [2, 0]
    out = F.cross_entropy(
        torch.tensor(logits, dtype=torch.float64), torch.tensor(target), label_smoothing=smoothing
    )
    expected = -np.mean([_log_softmax(logits)[i, t] for i, t in enumerate(target)])
    assert math.isclose(out.item(), expected, rel_tol=1e-12)
    with raises(RuntimeError, r"^label_smoothing must be between 0\.0 and 1\.0\. Got: 1\.5$"):
        F.cross_entropy(torch.randn(2, 3), torch.tensor(target), label_smoothing=1.5)


# ----------------------------------------------------------------------------- norm, addmm, linear, BCE


def test_inf_norm_of_an_empty_reduction_has_no_value():
    e = torch.zeros(3, 0)
    with raises(RuntimeError, "^linalg.vector_norm cannot compute the inf norm on the dimension -1because"):
        e.norm(float("inf"), -1)
    with raises(RuntimeError, "^linalg.vector_norm cannot compute the -inf norm on an empty tensor because"):
        e.norm(float("-inf"))
    assert e.norm(float("inf"), 0).shape == (0,)
    assert e.norm(2, -1).tolist() == [0.0, 0.0, 0.0]


def test_addmm_and_linear_argument_rules():
    with raises(TypeError, r"^addmm\(\): argument 'input' \(position 1\) must be Tensor, not float$"):
        torch.addmm(1.0, torch.ones(2, 2), torch.ones(2, 2))
    with raises(RuntimeError, "^self and mat2 must have the same dtype, but got Double and Float$"):
        F.linear(torch.ones(2, 2), torch.ones(2, 2), torch.ones(2, dtype=torch.float64))
    out = F.linear(torch.ones(1, 2), torch.full((3, 2), 2.0), torch.ones(3))
    assert out.tolist() == [[5.0, 5.0, 5.0]]


def test_binary_cross_entropy_argument_rules():
    p, y = torch.tensor([0.25, 0.5]), torch.tensor([1.0, 0.0])
    with raises(RuntimeError, "^Found dtype Double but expected Float$"):
        F.binary_cross_entropy(p, y.double())
    with raises(AttributeError, "^'float' object has no attribute 'size'$"):
        F.binary_cross_entropy(p, y, weight=1e300)
    w = torch.ones(2, requires_grad=True)
    with raises(
        RuntimeError,
        "^The function 'binary_cross_entropy' is not differentiable with respect to argument 'weight'",
    ):
        F.binary_cross_entropy(p, y, weight=w)
    with raises(RuntimeError, "not differentiable with respect to argument 'pos_weight'"):
        F.binary_cross_entropy_with_logits(p, y, pos_weight=w)
    with torch.no_grad():
        out = F.binary_cross_entropy(p, y, weight=w)
    assert math.isclose(out.item(), (-math.log(0.25) - math.log(0.5)) / 2, rel_tol=1e-6)


def test_more_argument_errors():
    x = torch.ones(2, requires_grad=True)
    y = x * 2
    with raises(RuntimeError, "^you can only change requires_grad flags of leaf variables.$"):
        y.requires_grad = True
    with raises(RuntimeError, "^you can only change requires_grad flags of leaf variables. If you want"):
        y.requires_grad = False
    assert y.requires_grad_(True) is y  # the method allows it
    with raises(RuntimeError, "^all inputs have to be Tensors or GradientEdges, but got int$"):
        torch.autograd.grad(y.sum(), [1, "a"])
    with raises(RuntimeError, "^step must be finite but got inf$"):
        torch.arange(0.5, 0.5, float("inf"))
    with raises(ValueError, "^Overflow when unpacking long long$"):
        torch.ones(2).split(2**63, -1)
    with raises(ValueError, "^Overflow when unpacking long long$"):
        torch.ones(2).to(2**63)
    assert [t.tolist() for t in torch.arange(5.0).split(2)] == [[0.0, 1.0], [2.0, 3.0], [4.0]]


def test_where_with_an_int_beyond_int64():
    c = torch.tensor([True, False])
    with raises(RuntimeError, "^value cannot be converted to type int64_t without overflow$"):
        torch.where(c, 2**63, torch.tensor([1, 2]))
    with raises(RuntimeError, "attempted to promote Bool and UInt64$"):
        torch.where(c, 2**63, torch.tensor([True, False]))
    with raises(RuntimeError, "attempted to promote UInt64 and Long$"):
        torch.where(c, 2**63, 3)
    out = torch.where(c, 2**63, torch.tensor([1.0, 2.0]))  # a float result holds it
    assert out.dtype == torch.float32 and out.tolist() == [float(2**63), 2.0]


@pytest.mark.parametrize(
    "exponent, shown, detail",
    [("a", "str", "str"), ([], "list", "list of []"), ([1, "a"], "list", "list of [int, str]"), ((1, 2.5), "tuple", "tuple of (int, float)"), (None, "NoneType", "NoneType")],
)
def test_pow_of_neither_tensor_nor_number(exponent, shown, detail):
    for name in ("pow", "pow_"):
        x = torch.tensor([1.0, 2.0], requires_grad=True)  # the type error comes before the leaf check
        expected = (
            f"{name}() received an invalid combination of arguments - got ({shown}), but expected one of:\n"
            f" * (Tensor exponent)\n      didn't match because some of the arguments have invalid types: (!{detail}!)\n"
            f" * (Number exponent)\n      didn't match because some of the arguments have invalid types: (!{detail}!)\n"
        )
        with pytest.raises(TypeError) as info:
            getattr(x, name)(exponent)
        assert str(info.value) == expected


def test_autograd_outputs_that_are_not_tensors_fail_pytorchs_assertion():
    x = torch.ones(2, requires_grad=True)
    for call in (lambda: torch.autograd.backward([1, "a"]), lambda: torch.autograd.grad("abc", [x])):
        with pytest.raises(AssertionError, match="^Expected output to be a torch.Tensor$"):
            call()
    with pytest.raises(TypeError, match="'int' object is not iterable"):
        torch.autograd.backward(5)
    with pytest.raises(RuntimeError, match="^got 2 tensors and 1 gradients$"):
        torch.autograd.grad([x.sum(), "a"], [x], grad_outputs=[torch.tensor(1.0)])
