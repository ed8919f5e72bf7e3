"""Anomaly mode: detect_anomaly, set_detect_anomaly, NaN checks and forward tracebacks.

Scenarios follow PyTorch's own test_autograd.py (anomaly section); messages and warnings are those
of PyTorch 2.x (validated by running this file against torch).
"""

import math
import re
import warnings

import numpy as np
import pytest
import rustgrad as torch

ENABLED_WARNING = (
    "Anomaly Detection has been enabled. This mode will increase the runtime and should only be "
    "enabled for debugging."
)
TRACEBACK_HEADER = "Traceback of forward call that caused the error:"
NO_FORWARD_INFO = (
    "No forward pass information available. Enable detect anomaly during forward pass for more "
    "information."
)


def np_of(t):
    return t.detach().numpy()


def messages(caught):
    return [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def error_warnings(caught):
    return [m for m in messages(caught) if m.startswith("Error detected in ")]


@pytest.fixture(autouse=True)
def anomaly_off_after_test():
    yield
    torch.autograd.set_detect_anomaly(False)


def sqrt_times_zero(x):
    # sqrt'(0) = inf and inf * 0 = nan in the backward pass
    return x.sqrt() * 0


def exp_then_modify(x):
    y = x.exp()
    y.add_(1)
    return y


class NaNBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        return g * float("nan")


class NaNSecond(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b):
        return a * b

    @staticmethod
    def backward(ctx, g):
        return g, g * float("nan")


class Failing(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, g):
        raise ValueError("custom backward failed")


def build_failing(x):
    return Failing.apply(x)


# ----- switching the mode -----


def test_detect_anomaly_context_sets_and_restores_flags():
    assert not torch.is_anomaly_enabled()
    assert torch.is_anomaly_check_nan_enabled()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.autograd.detect_anomaly():
            assert torch.is_anomaly_enabled()
            assert torch.is_anomaly_check_nan_enabled()
        with torch.autograd.detect_anomaly(check_nan=False):
            assert torch.is_anomaly_enabled()
            assert not torch.is_anomaly_check_nan_enabled()
    assert not torch.is_anomaly_enabled()
    assert torch.is_anomaly_check_nan_enabled()
    # entering detect_anomaly warns about the cost, once per entry
    assert messages(caught) == [ENABLED_WARNING, ENABLED_WARNING]


def test_set_detect_anomaly_as_function():
    torch.autograd.set_detect_anomaly(True)
    assert torch.is_anomaly_enabled()
    torch.autograd.set_detect_anomaly(False)
    assert not torch.is_anomaly_enabled()


def test_set_detect_anomaly_as_context_manager():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.autograd.set_detect_anomaly(True):
            assert torch.is_anomaly_enabled()
            with torch.autograd.set_detect_anomaly(False):
                assert not torch.is_anomaly_enabled()
            assert torch.is_anomaly_enabled()
            with torch.autograd.set_detect_anomaly(True, check_nan=False):
                assert not torch.is_anomaly_check_nan_enabled()
            assert torch.is_anomaly_check_nan_enabled()
        assert not torch.is_anomaly_enabled()
    assert messages(caught) == []  # only detect_anomaly warns


def test_detect_anomaly_restores_after_exception():
    with pytest.raises(KeyError), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.autograd.detect_anomaly():
            raise KeyError("inside")
    assert not torch.is_anomaly_enabled()


def test_normal_backward_unaffected_by_anomaly_mode():
    x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.autograd.detect_anomaly():
            (x * x * 3).sum().backward()
    np.testing.assert_allclose(np_of(x.grad), [6.0, 12.0])
    assert error_warnings(caught) == []


# ----- NaN detection -----


def test_nan_in_backward_raises_with_traceback_warning():
    x = torch.tensor([0.0, 1.0], requires_grad=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.autograd.detect_anomaly():
            y = sqrt_times_zero(x)
            with pytest.raises(RuntimeError, match=re.escape(
                    "Function 'SqrtBackward0' returned nan values in its 0th output.")):
                y.sum().backward()
    (text,) = error_warnings(caught)
    assert text.startswith("Error detected in SqrtBackward0. " + TRACEBACK_HEADER)
    # the traceback points at the forward line that created the node
    assert "test_anomaly.py" in text
    assert "in sqrt_times_zero" in text
    assert "return x.sqrt() * 0" in text


def test_nan_without_anomaly_mode_is_silent():
    x = torch.tensor([0.0, 1.0], requires_grad=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sqrt_times_zero(x).sum().backward()
    assert math.isnan(x.grad[0].item()) and x.grad[1].item() == 0.0
    assert messages(caught) == []


def test_check_nan_false_lets_nan_through():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.autograd.detect_anomaly(check_nan=False):
            NaNBackward.apply(x).sum().backward()
    assert np.isnan(np_of(x.grad)).all()


def test_nan_from_custom_function():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.autograd.detect_anomaly(), pytest.raises(RuntimeError, match=re.escape(
                "Function 'NaNBackwardBackward' returned nan values in its 0th output.")):
            NaNBackward.apply(x).sum().backward()
    (text,) = error_warnings(caught)
    assert text.startswith("Error detected in NaNBackwardBackward. " + TRACEBACK_HEADER)


def test_nan_in_second_gradient_names_its_index():
    a = torch.ones(2, requires_grad=True)
    b = torch.ones(2, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.autograd.detect_anomaly(), pytest.raises(RuntimeError, match=re.escape(
                "Function 'NaNSecondBackward' returned nan values in its 1th output.")):
            NaNSecond.apply(a, b).sum().backward()


def test_nan_from_multiplication_by_nan():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.autograd.detect_anomaly():
            y = x * 2
            with pytest.raises(RuntimeError, match=re.escape(
                    "Function 'MulBackward0' returned nan values in its 0th output.")):
                (y * float("nan")).sum().backward()


def test_inf_is_not_reported():
    x = torch.tensor([0.0, 4.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.autograd.detect_anomaly():
            x.sqrt().sum().backward()
    assert math.isinf(x.grad[0].item())
    assert x.grad[1].item() == pytest.approx(0.25)


def test_nan_in_forward_is_not_checked():
    x = torch.tensor([-1.0, 2.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.autograd.detect_anomaly():
            y = x.log()  # nan at -1, but log's backward 1/x is finite
            y.sum().backward()
    assert math.isnan(y[0].item())
    np.testing.assert_allclose(np_of(x.grad), [-1.0, 0.5])


def test_nan_check_with_autograd_grad():
    x = torch.tensor([0.0, 1.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.autograd.detect_anomaly():
            y = sqrt_times_zero(x)
            with pytest.raises(RuntimeError, match=re.escape(
                    "Function 'SqrtBackward0' returned nan values in its 0th output.")):
                torch.autograd.grad(y.sum(), x)


def test_set_detect_anomaly_also_checks_nan():
    x = torch.tensor([0.0, 1.0], requires_grad=True)
    torch.autograd.set_detect_anomaly(True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(RuntimeError, match=re.escape(
                "Function 'SqrtBackward0' returned nan values in its 0th output.")):
            sqrt_times_zero(x).sum().backward()
    torch.autograd.set_detect_anomaly(False)
    assert len(error_warnings(caught)) == 1


def test_forward_outside_anomaly_mode_has_no_traceback():
    x = torch.tensor([0.0, 1.0], requires_grad=True)
    y = sqrt_times_zero(x)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.autograd.detect_anomaly(), pytest.raises(RuntimeError, match=re.escape(
                "Function 'SqrtBackward0' returned nan values in its 0th output.")):
            y.sum().backward()
    (text,) = error_warnings(caught)
    assert text.startswith("Error detected in SqrtBackward0. " + NO_FORWARD_INFO)


def test_forward_in_anomaly_mode_backward_outside():
    x = torch.tensor([0.0, 1.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.autograd.detect_anomaly():
            y = sqrt_times_zero(x)
    y.sum().backward()  # not checked: the mode is off during backward
    assert math.isnan(x.grad[0].item())


# ----- other errors in backward -----


def test_error_in_custom_backward_warns_with_forward_traceback():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.autograd.detect_anomaly():
            y = build_failing(x)
            with pytest.raises(ValueError, match="^custom backward failed$"):
                y.sum().backward()
    (text,) = error_warnings(caught)
    assert text.startswith("Error detected in FailingBackward. " + TRACEBACK_HEADER)
    assert "in build_failing" in text and "return Failing.apply(x)" in text


def test_error_in_backward_without_anomaly_mode_does_not_warn():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="^custom backward failed$"):
            build_failing(x).sum().backward()
    assert error_warnings(caught) == []


def test_in_place_error_under_anomaly_mode():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    msg = (
        "one of the variables needed for gradient computation has been modified by an inplace "
        "operation: [torch.FloatTensor [2]], which is output 0 of Exp, is at version 1; expected "
        "version 0 instead. Hint: the backtrace further above shows the operation that failed to "
        "compute its gradient. The variable in question was changed in there or anywhere later. "
        "Good luck!"
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.autograd.detect_anomaly():
            y = exp_then_modify(x)
            with pytest.raises(RuntimeError, match=re.escape(msg)):
                y.sum().backward()
    (text,) = error_warnings(caught)
    assert text.startswith("Error detected in ExpBackward0. " + TRACEBACK_HEADER)
    assert "in exp_then_modify" in text and "y = x.exp()" in text


def test_in_place_error_without_anomaly_mode_has_default_hint():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = exp_then_modify(x)
    with pytest.raises(RuntimeError) as info:
        y.sum().backward()
    assert str(info.value).endswith(
        "Hint: enable anomaly detection to find the operation that failed to compute its gradient, "
        "with torch.autograd.set_detect_anomaly(True, check_nan=False)."
    )
