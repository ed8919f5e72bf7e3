"""Python ints in [2**63, 2**64) as operands: PyTorch 2.15 reads them as uint64 scalars, which
wrap to int64 beside an integer tensor, stay floats beside a float tensor or in a true division,
and do not promote with a bool tensor. Expected values are the closed forms of that rule."""

import pytest
import rustgrad as torch

B = 2**63
WRAPPED = -(2**63)  # B read as an int64
PROMOTE_BOOL = (
    "^Promotion for uint16, uint32, uint64 types is not supported, attempted to promote Bool and UInt64$"
)
PROMOTE_LONG = (
    "^Promotion for uint16, uint32, uint64 types is not supported, attempted to promote Long and UInt64$"
)
NO_INT64 = "^value cannot be converted to type int64_t without overflow$"


def ints():
    return torch.tensor([1, 2])


@pytest.mark.parametrize(
    "compute, dtype, values",
    [
        (lambda: ints() + B, torch.int64, [WRAPPED + 1, WRAPPED + 2]),
        (lambda: B - ints(), torch.int64, [2**63 - 1, 2**63 - 2]),
        (lambda: ints().sub(B), torch.int64, [WRAPPED + 1, WRAPPED + 2]),
        (lambda: ints().sub(B, alpha=2), torch.int64, [1, 2]),  # 2 * -2**63 wraps to 0
        (lambda: ints() * B, torch.int64, [WRAPPED, 0]),
        (lambda: ints() + (2**64 - 1), torch.int64, [0, 1]),  # 2**64 - 1 reads as -1
        (lambda: ints() <= B, torch.bool, [False, False]),
        (lambda: torch.tensor([WRAPPED]) == B, torch.bool, [True]),
        (lambda: B >= ints(), torch.bool, [False, False]),
        (lambda: ints() / B, torch.float32, [1 / 2**63, 2 / 2**63]),  # true division reads a float
        (lambda: torch.tensor([1.0, 2.0]) + B, torch.float32, [2.0**63, 2.0**63]),
        (lambda: torch.tensor([1.0], dtype=torch.float64) * (2**64 - 2), torch.float64, [2.0**64]),
        (lambda: torch.tensor([1.0]) < B, torch.bool, [True]),
        (lambda: torch.tensor([2.0]) ** B, torch.float32, [float("inf")]),
        (lambda: B ** torch.tensor([1.0]), torch.float32, [2.0**63]),
        (lambda: B ** torch.tensor([3]), torch.int64, [0]),  # (-2**63) ** 3 wraps to 0
        (lambda: torch.tensor([3]).clamp(max=B), torch.int64, [3]),
        (lambda: torch.tensor([3.0]).clamp(min=B), torch.float32, [2.0**63]),
        (lambda: torch.tensor([3.0]).clamp(-1, B), torch.float32, [3.0]),
    ],
)
def test_uint64_operand_values(compute, dtype, values):
    out = compute()
    assert out.dtype == dtype
    assert out.tolist() == values


def test_in_place_ops_write_the_wrapped_value():
    t = torch.tensor([3])
    t.mul_(B)
    assert t.tolist() == [WRAPPED]
    t = torch.tensor([1.0])
    t -= B
    assert t.tolist() == [-(2.0**63)]
    with pytest.raises(
        RuntimeError, match="^result type Float can't be cast to the desired output type Long$"
    ):
        torch.tensor([1]).div_(B)


@pytest.mark.parametrize(
    "compute, message",
    [
        (lambda: torch.tensor([True]) + B, PROMOTE_BOOL),
        (lambda: B + torch.tensor([True]), PROMOTE_BOOL),
        (lambda: torch.tensor([True]) == B, PROMOTE_BOOL),
        (lambda: torch.tensor([True]) / B, PROMOTE_BOOL),
        (lambda: B ** torch.tensor([True]), PROMOTE_BOOL),
        (lambda: torch.tensor([True]).clamp(max=B), PROMOTE_BOOL),
        (lambda: torch.tensor([2]) ** B, NO_INT64),
        (lambda: torch.tensor([True]).pow(B), NO_INT64),
        (lambda: torch.tensor([2]).pow_(B), NO_INT64),
        (lambda: torch.tensor([3]).clamp(-B, B), PROMOTE_LONG),
        (
            lambda: torch.tensor([3]).clamp(min=B),
            "^Clamp min value 9.22337e\\+18 is outside the representable range of Long$",
        ),
        (
            lambda: torch.tensor([3]).clamp_min(B + 2**62),
            "^Clamp min value 1.38351e\\+19 is outside the representable range of Long$",
        ),
    ],
)
def test_uint64_operand_errors(compute, message):
    with pytest.raises(RuntimeError, match=message):
        compute()


def test_the_target_of_a_refused_in_place_op_is_unchanged():
    t = torch.tensor([2, 3])
    with pytest.raises(RuntimeError, match=NO_INT64):
        t.pow_(B)
    assert t.tolist() == [2, 3]


@pytest.mark.parametrize(
    "compute, dtype, values",
    [
        (lambda: torch.true_divide(B, 1.0), torch.float32, 2.0**63),
        (lambda: torch.add(B, 1.0), torch.float32, 2.0**63),
        (lambda: torch.sub(B, torch.tensor([1])), torch.int64, [2**63 - 1]),
        (lambda: torch.div(B, torch.tensor([2.0])), torch.float32, [2.0**62]),
        (lambda: torch.true_divide(B, torch.tensor([2])), torch.float32, [2.0**62]),  # a float division
    ],
)
def test_uint64_number_as_the_input_of_a_function(compute, dtype, values):
    out = compute()
    assert out.dtype == dtype and out.tolist() == values


def test_uint64_number_beside_a_number_or_bool_does_not_promote():
    with pytest.raises(RuntimeError, match="attempted to promote UInt64 and Long$"):
        torch.mul(B, 2)
    with pytest.raises(RuntimeError, match="attempted to promote Bool and UInt64$"):
        torch.add(B, torch.tensor([True]))


def test_uint64_scatter_value_must_fit_an_integer_target():
    index = torch.tensor([0])
    with pytest.raises(RuntimeError, match=NO_INT64):
        torch.tensor([1]).scatter(0, index, B)
    with pytest.raises(RuntimeError, match=NO_INT64):
        torch.tensor([1]).scatter(0, index, value=B)
    assert torch.tensor([1.0]).scatter(0, index, B).tolist() == [2.0**63]
