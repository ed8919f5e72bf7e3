"""Tests for ``rustgrad._tensor_str``: tensor reprs must match PyTorch's byte for byte.

Every expected string in ``CASES`` is what PyTorch 2.x printed (``repr`` of a
CPU tensor holding the same values, under the same print options and default
dtype).  Many come from PyTorch's own ``test_print`` in test/test_torch.py,
the ``torch.set_printoptions`` docstring and the autograd tutorials; the rest
were produced by PyTorch for the edge cases named in their ids.

The module under test does not need the compiled rustgrad core, so it is
imported as ``rustgrad._tensor_str`` when the package is importable and
straight from its file otherwise.
"""

import importlib
import importlib.util
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from numpy import inf, nan

_MODULE_PATH = (
    Path(__file__).resolve().parents[1] / "python" / "rustgrad" / "_tensor_str.py"
)


def _load_module():
    try:
        return importlib.import_module("rustgrad._tensor_str")
    except Exception:  # noqa: BLE001 - package not built or not importable yet
        name = "_rustgrad_tensor_str_standalone"
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.spec_from_file_location(name, _MODULE_PATH)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module


ts = _load_module()


@pytest.fixture(autouse=True)
def _default_print_options():
    ts.set_printoptions(profile="default")
    yield
    ts.set_printoptions(profile="default")


def _case(
    case_id,
    values,
    dtype,
    expected,
    *,
    suffixes=(),
    default_dtype="float32",
    opts=None,
):
    return pytest.param(
        values, dtype, list(suffixes), default_dtype, opts or {}, expected, id=case_id
    )


CASES = [
    _case(
        "ones_2x2",
        np.ones((2, 2)),
        "float32",
        ("tensor([[1., 1.],\n        [1., 1.]])"),
    ),
    _case(
        "precision4_decades",
        [2.0, 0.2, 0.02, 0.002],
        "float32",
        "tensor([2.0000, 0.2000, 0.0200, 0.0020])",
    ),
    _case(
        "width_align_small",
        [8.0, 96.0, 432.0],
        "float32",
        "tensor([  8.,  96., 432.])",
    ),
    _case(
        "width_align_large",
        [48.0, 432.0, 1728.0],
        "float32",
        "tensor([  48.,  432., 1728.])",
    ),
    _case(
        "arange_step4",
        np.arange(0, 16, 4),
        "float32",
        "tensor([ 0.,  4.,  8., 12.])",
    ),
    _case(
        "bool_row",
        [True, True, True, True],
        "bool",
        "tensor([True, True, True, True])",
    ),
    _case(
        "bool_scalar",
        True,
        "bool",
        "tensor(True)",
    ),
    _case(
        "bool_mixed",
        [True, False],
        "bool",
        "tensor([ True, False])",
    ),
    _case(
        "bool_false_scalar",
        False,
        "bool",
        "tensor(False)",
    ),
    _case(
        "int_row",
        [1, 2, 3],
        "int64",
        "tensor([1, 2, 3])",
    ),
    _case(
        "float64_row",
        [1.0, 2.0],
        "float64",
        "tensor([1., 2.], dtype=torch.float64)",
    ),
    _case(
        "float64_is_default",
        [1.0, 2.0],
        "float64",
        "tensor([1., 2.])",
        default_dtype="float64",
    ),
    _case(
        "float32_not_default",
        [1.0, 2.0],
        "float32",
        "tensor([1., 2.], dtype=torch.float32)",
        default_dtype="float64",
    ),
    _case(
        "empty_0x3",
        np.zeros((0, 3)),
        "float32",
        "tensor([], size=(0, 3))",
    ),
    _case(
        "empty_1d",
        np.zeros(0),
        "float32",
        "tensor([])",
    ),
    _case(
        "empty_int64",
        np.zeros(0),
        "int64",
        "tensor([], dtype=torch.int64)",
    ),
    _case(
        "empty_bool",
        np.zeros(0),
        "bool",
        "tensor([], dtype=torch.bool)",
    ),
    _case(
        "empty_float64",
        np.zeros((2, 0, 3)),
        "float64",
        "tensor([], size=(2, 0, 3), dtype=torch.float64)",
    ),
    _case(
        "empty_float32_default64",
        np.zeros(0),
        "float32",
        "tensor([], dtype=torch.float32)",
        default_dtype="float64",
    ),
    _case(
        "scalar_tiny",
        1e-10,
        "float32",
        "tensor(1.0000e-10)",
    ),
    _case(
        "scalar_int_float",
        27.0,
        "float32",
        "tensor(27.)",
    ),
    _case(
        "scalar_frac",
        2.5,
        "float32",
        "tensor(2.5000)",
    ),
    _case(
        "scalar_int",
        3,
        "int64",
        "tensor(3)",
    ),
    _case(
        "scalar_neg_zero",
        -0.0,
        "float32",
        "tensor(-0.)",
    ),
    _case(
        "scalar_nan",
        nan,
        "float32",
        "tensor(nan)",
    ),
    _case(
        "scalar_neg_inf",
        -inf,
        "float32",
        "tensor(-inf)",
    ),
    _case(
        "scalar_float64",
        0.1,
        "float64",
        "tensor(0.1000, dtype=torch.float64)",
    ),
    _case(
        "sci_ratio",
        [1.0, 1e10],
        "float32",
        "tensor([1.0000e+00, 1.0000e+10])",
    ),
    _case(
        "nan_inf_int_mode",
        [nan, inf, 1.0],
        "float32",
        "tensor([nan, inf, 1.])",
    ),
    _case(
        "nan_fixed_mode",
        [nan, 1.5],
        "float32",
        "tensor([   nan, 1.5000])",
    ),
    _case(
        "all_nonfinite",
        [nan, inf, -inf],
        "float32",
        "tensor([nan, inf, -inf])",
    ),
    _case(
        "neg_zero_row",
        [0.0, -0.0],
        "float32",
        "tensor([0., -0.])",
    ),
    _case(
        "neg_zero_fixed",
        [-0.0, 1.5],
        "float32",
        "tensor([-0.0000, 1.5000])",
    ),
    _case(
        "neg_zero_sci",
        [-0.0, 1e-5],
        "float32",
        "tensor([-0.0000e+00, 1.0000e-05])",
    ),
    _case(
        "zeros_row",
        np.zeros(4),
        "float32",
        "tensor([0., 0., 0., 0.])",
    ),
    _case(
        "negative_ints",
        [1, -2],
        "int64",
        "tensor([ 1, -2])",
    ),
    _case(
        "arange_2000_float",
        np.arange(2000),
        "float32",
        (
            "tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 1.9970e+03, 1.9980e+03,\n"
            "        1.9990e+03])"
        ),
    ),
    _case(
        "arange_2000_int",
        np.arange(2000),
        "int64",
        "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])",
    ),
    _case(
        "arange_2000_float_nosci",
        np.arange(2000),
        "float32",
        "tensor([   0.,    1.,    2.,  ..., 1997., 1998., 1999.])",
        opts={"sci_mode": False},
    ),
    _case(
        "arange_10000_float",
        np.arange(10000),
        "float32",
        (
            "tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 9.9970e+03, 9.9980e+03,\n"
            "        9.9990e+03])"
        ),
    ),
    _case(
        "zeros_10000",
        np.zeros(10000),
        "float32",
        "tensor([0., 0., 0.,  ..., 0., 0., 0.])",
    ),
    _case(
        "randn_4x4",
        [
            [-1.4801, -1.0631, 0.3630, 0.3995],
            [0.1457, -0.7345, -0.9873, 1.8512],
            [-1.3437, 0.8535, 0.8811, -0.6522],
            [0.5810, 0.3561, 0.0160, 0.4019],
        ],
        "float32",
        (
            "tensor([[-1.4801, -1.0631,  0.3630,  0.3995],\n"
            "        [ 0.1457, -0.7345, -0.9873,  1.8512],\n"
            "        [-1.3437,  0.8535,  0.8811, -0.6522],\n"
            "        [ 0.5810,  0.3561,  0.0160,  0.4019]])"
        ),
    ),
    _case(
        "big_int_scalar",
        2341234123412341,
        "int64",
        "tensor(2341234123412341)",
    ),
    _case(
        "sci_extremes",
        [1e28, 1e-28],
        "float32",
        "tensor([1.0000e+28, 1.0000e-28])",
    ),
    _case(
        "sci_forced_on",
        [1e2, 1e-2],
        "float32",
        "tensor([1.0000e+02, 1.0000e-02])",
        opts={"sci_mode": True},
    ),
    _case(
        "sci_forced_off",
        [1e2, 1e-2],
        "float32",
        "tensor([100.0000,   0.0100])",
        opts={"sci_mode": False},
    ),
    _case(
        "sci_forced_on_ints",
        [1.0, 2.0],
        "float32",
        "tensor([1.0000e+00, 2.0000e+00])",
        opts={"sci_mode": True},
    ),
    _case(
        "sci_forced_on_zeros",
        [0.0, 0.0],
        "float32",
        "tensor([0., 0.])",
        opts={"sci_mode": True},
    ),
    _case(
        "sci_forced_off_ints",
        [1.0, 1e10],
        "float32",
        "tensor([          1., 10000000000.])",
        opts={"sci_mode": False},
    ),
    _case(
        "inf_nan_fixed",
        [4, inf, 1.5, -inf, 0, nan, 1],
        "float32",
        "tensor([4.0000,    inf, 1.5000,   -inf, 0.0000,    nan, 1.0000])",
    ),
    _case(
        "float64_denormals",
        [1e-324, 1e-323, 1e-322, 1e307, 1e308, 1e309],
        "float64",
        (
            "tensor([ 0.0000e+00, 9.8813e-324, 9.8813e-323, 1.0000e+307, 1.0000e+308,\n"
            "                inf], dtype=torch.float64)"
        ),
    ),
    _case(
        "float64_denormals_default64",
        [1e-324, 1e-323, 1e-322, 1e307, 1e308, 1e309],
        "float64",
        (
            "tensor([ 0.0000e+00, 9.8813e-324, 9.8813e-323, 1.0000e+307, 1.0000e+308,\n"
            "                inf])"
        ),
        default_dtype="float64",
    ),
    _case(
        "sci_min_below_1e-4",
        [0.00002],
        "float32",
        "tensor([2.0000e-05])",
    ),
    _case(
        "scalar_sci_small",
        0.00002,
        "float32",
        "tensor(2.0000e-05)",
    ),
    _case(
        "float32_1e-4_is_sci",
        [0.0001],
        "float32",
        "tensor([1.0000e-04])",
    ),
    _case(
        "sci_max_above_1e8",
        [123456789.0],
        "float32",
        "tensor([1.2346e+08])",
    ),
    _case(
        "sci_ratio_fixed",
        [0.01, 11],
        "float32",
        "tensor([1.0000e-02, 1.1000e+01])",
    ),
    _case(
        "int_ratio_no_sci",
        [1, 1010],
        "int64",
        "tensor([   1, 1010])",
    ),
    _case(
        "int_huge_no_sci",
        [1000000000],
        "int64",
        "tensor([1000000000])",
    ),
    _case(
        "float_int_mode_wide",
        [1.0, 1000.0],
        "float32",
        "tensor([   1., 1000.])",
    ),
    _case(
        "float_int_mode_sci",
        [1.0, 1010.0],
        "float32",
        "tensor([1.0000e+00, 1.0100e+03])",
    ),
    _case(
        "ones_100x2x10_summary",
        np.ones((100, 2, 10)),
        "float32",
        (
            "tensor([[[1., 1., 1.,  ..., 1., 1., 1.],\n"
            "         [1., 1., 1.,  ..., 1., 1., 1.]],\n"
            "\n"
            "        [[1., 1., 1.,  ..., 1., 1., 1.],\n"
            "         [1., 1., 1.,  ..., 1., 1., 1.]],\n"
            "\n"
            "        [[1., 1., 1.,  ..., 1., 1., 1.],\n"
            "         [1., 1., 1.,  ..., 1., 1., 1.]],\n"
            "\n"
            "        ...,\n"
            "\n"
            "        [[1., 1., 1.,  ..., 1., 1., 1.],\n"
            "         [1., 1., 1.,  ..., 1., 1., 1.]],\n"
            "\n"
            "        [[1., 1., 1.,  ..., 1., 1., 1.],\n"
            "         [1., 1., 1.,  ..., 1., 1., 1.]],\n"
            "\n"
            "        [[1., 1., 1.,  ..., 1., 1., 1.],\n"
            "         [1., 1., 1.,  ..., 1., 1., 1.]]])"
        ),
    ),
    _case(
        "arange_3d",
        np.arange(24).reshape(2, 3, 4),
        "float32",
        (
            "tensor([[[ 0.,  1.,  2.,  3.],\n"
            "         [ 4.,  5.,  6.,  7.],\n"
            "         [ 8.,  9., 10., 11.]],\n"
            "\n"
            "        [[12., 13., 14., 15.],\n"
            "         [16., 17., 18., 19.],\n"
            "         [20., 21., 22., 23.]]])"
        ),
    ),
    _case(
        "arange_4d",
        np.arange(16).reshape(2, 2, 2, 2),
        "int64",
        (
            "tensor([[[[ 0,  1],\n"
            "          [ 2,  3]],\n"
            "\n"
            "         [[ 4,  5],\n"
            "          [ 6,  7]]],\n"
            "\n"
            "\n"
            "        [[[ 8,  9],\n"
            "          [10, 11]],\n"
            "\n"
            "         [[12, 13],\n"
            "          [14, 15]]]])"
        ),
    ),
    _case(
        "wrap_1d",
        np.arange(30) / 7,
        "float32",
        (
            "tensor([0.0000, 0.1429, 0.2857, 0.4286, 0.5714, 0.7143, 0.8571, 1.0000, 1.1429,\n"
            "        1.2857, 1.4286, 1.5714, 1.7143, 1.8571, 2.0000, 2.1429, 2.2857, 2.4286,\n"
            "        2.5714, 2.7143, 2.8571, 3.0000, 3.1429, 3.2857, 3.4286, 3.5714, 3.7143,\n"
            "        3.8571, 4.0000, 4.1429])"
        ),
    ),
    _case(
        "wrap_1d_int",
        np.arange(40) * 1000,
        "int64",
        (
            "tensor([    0,  1000,  2000,  3000,  4000,  5000,  6000,  7000,  8000,  9000,\n"
            "        10000, 11000, 12000, 13000, 14000, 15000, 16000, 17000, 18000, 19000,\n"
            "        20000, 21000, 22000, 23000, 24000, 25000, 26000, 27000, 28000, 29000,\n"
            "        30000, 31000, 32000, 33000, 34000, 35000, 36000, 37000, 38000, 39000])"
        ),
    ),
    _case(
        "wrap_2d_rows",
        np.arange(40).reshape(2, 20) / 3,
        "float32",
        (
            "tensor([[ 0.0000,  0.3333,  0.6667,  1.0000,  1.3333,  1.6667,  2.0000,  2.3333,\n"
            "          2.6667,  3.0000,  3.3333,  3.6667,  4.0000,  4.3333,  4.6667,  5.0000,\n"
            "          5.3333,  5.6667,  6.0000,  6.3333],\n"
            "        [ 6.6667,  7.0000,  7.3333,  7.6667,  8.0000,  8.3333,  8.6667,  9.0000,\n"
            "          9.3333,  9.6667, 10.0000, 10.3333, 10.6667, 11.0000, 11.3333, 11.6667,\n"
            "         12.0000, 12.3333, 12.6667, 13.0000]])"
        ),
    ),
    _case(
        "summary_2d",
        np.arange(2000).reshape(40, 50) % 7,
        "float32",
        (
            "tensor([[0., 1., 2.,  ..., 5., 6., 0.],\n"
            "        [1., 2., 3.,  ..., 6., 0., 1.],\n"
            "        [2., 3., 4.,  ..., 0., 1., 2.],\n"
            "        ...,\n"
            "        [2., 3., 4.,  ..., 0., 1., 2.],\n"
            "        [3., 4., 5.,  ..., 1., 2., 3.],\n"
            "        [4., 5., 6.,  ..., 2., 3., 4.]])"
        ),
    ),
    _case(
        "summary_2d_big",
        np.arange(100000).reshape(1000, 100) / 10,
        "float32",
        (
            "tensor([[0.0000e+00, 1.0000e-01, 2.0000e-01,  ..., 9.7000e+00, 9.8000e+00,\n"
            "         9.9000e+00],\n"
            "        [1.0000e+01, 1.0100e+01, 1.0200e+01,  ..., 1.9700e+01, 1.9800e+01,\n"
            "         1.9900e+01],\n"
            "        [2.0000e+01, 2.0100e+01, 2.0200e+01,  ..., 2.9700e+01, 2.9800e+01,\n"
            "         2.9900e+01],\n"
            "        ...,\n"
            "        [9.9700e+03, 9.9701e+03, 9.9702e+03,  ..., 9.9797e+03, 9.9798e+03,\n"
            "         9.9799e+03],\n"
            "        [9.9800e+03, 9.9801e+03, 9.9802e+03,  ..., 9.9897e+03, 9.9898e+03,\n"
            "         9.9899e+03],\n"
            "        [9.9900e+03, 9.9901e+03, 9.9902e+03,  ..., 9.9997e+03, 9.9998e+03,\n"
            "         9.9999e+03]])"
        ),
    ),
    _case(
        "summary_3d_int",
        np.arange(2 * 30 * 30).reshape(2, 30, 30),
        "int64",
        (
            "tensor([[[   0,    1,    2,  ...,   27,   28,   29],\n"
            "         [  30,   31,   32,  ...,   57,   58,   59],\n"
            "         [  60,   61,   62,  ...,   87,   88,   89],\n"
            "         ...,\n"
            "         [ 810,  811,  812,  ...,  837,  838,  839],\n"
            "         [ 840,  841,  842,  ...,  867,  868,  869],\n"
            "         [ 870,  871,  872,  ...,  897,  898,  899]],\n"
            "\n"
            "        [[ 900,  901,  902,  ...,  927,  928,  929],\n"
            "         [ 930,  931,  932,  ...,  957,  958,  959],\n"
            "         [ 960,  961,  962,  ...,  987,  988,  989],\n"
            "         ...,\n"
            "         [1710, 1711, 1712,  ..., 1737, 1738, 1739],\n"
            "         [1740, 1741, 1742,  ..., 1767, 1768, 1769],\n"
            "         [1770, 1771, 1772,  ..., 1797, 1798, 1799]]])"
        ),
    ),
    _case(
        "doc_precision2",
        [1.12345],
        "float32",
        "tensor([1.12])",
        opts={"precision": 2},
    ),
    _case(
        "doc_threshold5",
        np.arange(10),
        "int64",
        "tensor([0, 1, 2,  ..., 7, 8, 9])",
        opts={"threshold": 5},
    ),
    _case(
        "doc_default",
        [1.12345],
        "float32",
        "tensor([1.1235])",
        opts={"profile": "default"},
    ),
    _case(
        "doc_arange10",
        np.arange(10),
        "int64",
        "tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])",
    ),
    _case(
        "profile_short",
        np.arange(2000) / 3,
        "float32",
        "tensor([0.00e+00, 3.33e-01,  ..., 6.66e+02, 6.66e+02])",
        opts={"profile": "short"},
    ),
    _case(
        "edgeitems_1",
        np.arange(2000).reshape(20, 100),
        "int64",
        ("tensor([[   0,  ...,   99],\n        ...,\n        [1900,  ..., 1999]])"),
        opts={"edgeitems": 1},
    ),
    _case(
        "edgeitems_0_1d",
        np.arange(2000),
        "int64",
        "tensor([...], size=(2000,))",
        opts={"edgeitems": 0},
    ),
    _case(
        "edgeitems_0_2d",
        np.arange(2000).reshape(20, 100),
        "float32",
        "tensor([...], size=(20, 100))",
        opts={"edgeitems": 0},
    ),
    _case(
        "edgeitems_0_small",
        [1.0, 2.0],
        "float32",
        "tensor([1., 2.], size=(2,))",
        opts={"edgeitems": 0},
    ),
    _case(
        "linewidth_20",
        np.arange(12) * 1.5,
        "float32",
        (
            "tensor([ 0.0000,\n"
            "         1.5000,\n"
            "         3.0000,\n"
            "         4.5000,\n"
            "         6.0000,\n"
            "         7.5000,\n"
            "         9.0000,\n"
            "        10.5000,\n"
            "        12.0000,\n"
            "        13.5000,\n"
            "        15.0000,\n"
            "        16.5000])"
        ),
        opts={"linewidth": 20},
    ),
    _case(
        "linewidth_1",
        [1, 2, 3],
        "int64",
        ("tensor([1,\n        2,\n        3])"),
        opts={"linewidth": 1},
    ),
    _case(
        "threshold_0_scalar",
        5.0,
        "float32",
        "tensor(5.)",
        opts={"threshold": 0},
    ),
    _case(
        "int32_dtype",
        [1, 2, 3],
        "int32",
        "tensor([1, 2, 3], dtype=torch.int32)",
    ),
    _case(
        "uint8_dtype",
        [0, 255],
        "uint8",
        "tensor([  0, 255], dtype=torch.uint8)",
    ),
    _case(
        "float16_dtype",
        [0.1, 2.0],
        "float16",
        "tensor([0.1000, 2.0000], dtype=torch.float16)",
    ),
    _case(
        "precision_6",
        [3.14159265, 2.71828182],
        "float64",
        "tensor([3.141593, 2.718282])",
        default_dtype="float64",
        opts={"precision": 6},
    ),
    _case(
        "precision_0",
        [1.5, 2.25],
        "float32",
        "tensor([2, 2])",
        opts={"precision": 0},
    ),
    _case(
        "float32_rounding",
        [0.1, 0.2, 0.3],
        "float32",
        "tensor([0.1000, 0.2000, 0.3000])",
    ),
    _case(
        "large_negative_sci",
        [-1e9, 5.0],
        "float32",
        "tensor([-1.0000e+09,  5.0000e+00])",
    ),
    _case(
        "sci_3digit_exponent",
        [1e200, 1.0],
        "float64",
        "tensor([1.0000e+200,  1.0000e+00])",
        default_dtype="float64",
    ),
    _case(
        "column_vector",
        np.arange(3).reshape(3, 1) - 1,
        "float32",
        ("tensor([[-1.],\n        [ 0.],\n        [ 1.]])"),
    ),
    _case(
        "empty_rows_3d",
        np.zeros((3, 0, 2)),
        "int64",
        "tensor([], size=(3, 0, 2), dtype=torch.int64)",
    ),
    _case(
        "requires_grad_2x2",
        np.ones((2, 2)),
        "float32",
        ("tensor([[1., 1.],\n        [1., 1.]], requires_grad=True)"),
        suffixes=["requires_grad=True"],
    ),
    _case(
        "add_backward",
        np.full((2, 2), 3.0),
        "float32",
        ("tensor([[3., 3.],\n        [3., 3.]], grad_fn=<AddBackward0>)"),
        suffixes=["grad_fn=<AddBackward0>"],
    ),
    _case(
        "mean_backward",
        27.0,
        "float32",
        "tensor(27., grad_fn=<MeanBackward0>)",
        suffixes=["grad_fn=<MeanBackward0>"],
    ),
    _case(
        "requires_grad_100",
        [100.0],
        "float32",
        "tensor([100.], requires_grad=True)",
        suffixes=["requires_grad=True"],
    ),
    _case(
        "clone_backward",
        [6.0],
        "float32",
        "tensor([6.], grad_fn=<CloneBackward0>)",
        suffixes=["grad_fn=<CloneBackward0>"],
    ),
    _case(
        "div_backward",
        [3.0, 3.0, 3.0],
        "float32",
        "tensor([3., 3., 3.], grad_fn=<DivBackward0>)",
        suffixes=["grad_fn=<DivBackward0>"],
    ),
    _case(
        "requires_grad_123",
        [123.0],
        "float32",
        "tensor([123.], requires_grad=True)",
        suffixes=["requires_grad=True"],
    ),
    _case(
        "float64_requires_grad",
        [1.0, 2.0],
        "float64",
        "tensor([1., 2.], dtype=torch.float64, requires_grad=True)",
        suffixes=["requires_grad=True"],
    ),
    _case(
        "empty_requires_grad",
        np.zeros((0, 3)),
        "float32",
        "tensor([], size=(0, 3), requires_grad=True)",
        suffixes=["requires_grad=True"],
    ),
    _case(
        "suffix_wraps_long_line",
        np.arange(8) / 3,
        "float32",
        (
            "tensor([0.0000, 0.3333, 0.6667, 1.0000, 1.3333, 1.6667, 2.0000, 2.3333],\n"
            "       grad_fn=<MulBackward0>)"
        ),
        suffixes=["grad_fn=<MulBackward0>"],
    ),
    _case(
        "suffix_wraps_after_rows",
        np.arange(14).reshape(2, 7) / 3,
        "float32",
        (
            "tensor([[0.0000, 0.3333, 0.6667, 1.0000, 1.3333, 1.6667, 2.0000],\n"
            "        [2.3333, 2.6667, 3.0000, 3.3333, 3.6667, 4.0000, 4.3333]],\n"
            "       grad_fn=<MulBackward0>)"
        ),
        suffixes=["grad_fn=<MulBackward0>"],
    ),
    _case(
        "suffix_wraps_after_short_rows",
        np.arange(12).reshape(2, 6) / 3,
        "float32",
        (
            "tensor([[0.0000, 0.3333, 0.6667, 1.0000, 1.3333, 1.6667],\n"
            "        [2.0000, 2.3333, 2.6667, 3.0000, 3.3333, 3.6667]],\n"
            "       grad_fn=<MulBackward0>)"
        ),
        suffixes=["grad_fn=<MulBackward0>"],
    ),
    _case(
        "suffix_dtype_and_grad_wrap",
        np.arange(8) / 3,
        "float64",
        (
            "tensor([0.0000, 0.3333, 0.6667, 1.0000, 1.3333, 1.6667, 2.0000, 2.3333],\n"
            "       dtype=torch.float64, requires_grad=True)"
        ),
        suffixes=["requires_grad=True"],
    ),
    _case(
        "suffix_two_fields",
        np.arange(10) / 3,
        "float64",
        (
            "tensor([0.0000, 0.3333, 0.6667, 1.0000, 1.3333, 1.6667, 2.0000, 2.3333, 2.6667,\n"
            "        3.0000], dtype=torch.float64, grad_fn=<MulBackward0>)"
        ),
        suffixes=["grad_fn=<MulBackward0>"],
    ),
    _case(
        "suffix_narrow_line",
        [1.0, 2.0],
        "float32",
        ("tensor([1., 2.],\n       requires_grad=True)"),
        suffixes=["requires_grad=True"],
        opts={"linewidth": 20},
    ),
]


@pytest.mark.parametrize(
    ("values", "dtype", "suffixes", "default_dtype", "opts", "expected"), CASES
)
def test_matches_pytorch(values, dtype, suffixes, default_dtype, opts, expected):
    ts.set_printoptions(**opts)
    got = ts.format_tensor(
        np.asarray(values), dtype=dtype, suffixes=suffixes, default_dtype=default_dtype
    )
    assert got == expected


# ---------------------------------------------------------------------------
# print options
# ---------------------------------------------------------------------------


def test_default_options():
    assert ts.get_printoptions() == {
        "precision": 4,
        "threshold": 1000,
        "edgeitems": 3,
        "linewidth": 80,
        "sci_mode": None,
    }
    assert isinstance(ts.PRINT_OPTS, ts.PrintOptions)


def test_profiles():
    ts.set_printoptions(profile="short")
    assert ts.get_printoptions() == {
        "precision": 2,
        "threshold": 1000,
        "edgeitems": 2,
        "linewidth": 80,
        "sci_mode": None,
    }
    ts.set_printoptions(profile="full")
    assert ts.PRINT_OPTS.threshold == math.inf
    assert (ts.PRINT_OPTS.precision, ts.PRINT_OPTS.edgeitems) == (4, 3)
    ts.set_printoptions(profile="default")
    assert ts.PRINT_OPTS.threshold == 1000


def test_explicit_option_overrides_profile():
    ts.set_printoptions(profile="short", precision=6, linewidth=100)
    assert ts.PRINT_OPTS.precision == 6
    assert ts.PRINT_OPTS.linewidth == 100
    assert ts.PRINT_OPTS.edgeitems == 2


def test_unknown_profile_is_ignored():
    ts.set_printoptions(precision=7)
    ts.set_printoptions(profile="no-such-profile")
    assert ts.PRINT_OPTS.precision == 7


def test_other_options_are_kept_but_sci_mode_is_reset():
    # Like PyTorch, every call assigns sci_mode, so omitting it means "auto".
    ts.set_printoptions(sci_mode=True, precision=2)
    ts.set_printoptions(linewidth=120)
    assert ts.PRINT_OPTS.precision == 2
    assert ts.PRINT_OPTS.linewidth == 120
    assert ts.PRINT_OPTS.sci_mode is None


def test_printoptions_context_manager_restores():
    ts.set_printoptions(precision=3)
    with ts.printoptions(precision=1, sci_mode=False):
        assert ts.PRINT_OPTS.precision == 1
        assert ts.PRINT_OPTS.sci_mode is False
    assert ts.PRINT_OPTS.precision == 3
    assert ts.PRINT_OPTS.sci_mode is None


def test_full_profile_never_summarises():
    values = np.arange(1001)
    assert "..." in ts.format_tensor(values, dtype="int64", suffixes=[])
    ts.set_printoptions(profile="full")
    full = ts.format_tensor(values, dtype="int64", suffixes=[])
    assert "..." not in full
    ts.set_printoptions(profile="default", threshold=5000)
    assert full == ts.format_tensor(values, dtype="int64", suffixes=[])


# ---------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------


def test_float32_dtype_rounds_float64_input():
    # The values are rounded to the requested dtype before formatting:
    # 1.00000001 becomes exactly 1.0 in float32 (integer style) ...
    x = np.array([1.00000001, 2.0])
    assert ts.format_tensor(x, dtype="float32", suffixes=[]) == "tensor([1., 2.])"
    assert (
        ts.format_tensor(x, dtype="float64", suffixes=[], default_dtype="float64")
        == "tensor([1.0000, 2.0000])"
    )
    # ... and 1e-4 drops just below 1e-4 in float32 (scientific style).
    y = np.array([1e-4])
    assert ts.format_tensor(y, dtype="float32", suffixes=[]) == "tensor([1.0000e-04])"
    assert (
        ts.format_tensor(y, dtype="float64", suffixes=[])
        == "tensor([0.0001], dtype=torch.float64)"
    )


def test_torch_prefixed_and_alias_dtype_names():
    x = np.array([1.0, 2.0])
    expected = "tensor([1., 2.], dtype=torch.float64)"
    assert ts.format_tensor(x, dtype="torch.float64", suffixes=[]) == expected
    assert ts.format_tensor(x, dtype="double", suffixes=[]) == expected
    assert (
        ts.format_tensor(x, dtype="float", suffixes=[], default_dtype="torch.float32")
        == "tensor([1., 2.])"
    )
    assert (
        ts.format_tensor(np.array([1, 2]), dtype="long", suffixes=[])
        == "tensor([1, 2])"
    )


def test_non_contiguous_and_list_input():
    base = np.arange(12, dtype=np.float32).reshape(3, 4)
    expected = "tensor([[0., 4., 8.],\n        [1., 5., 9.]])"
    assert ts.format_tensor(base.T[:2], dtype="float32", suffixes=[]) == expected
    assert (
        ts.format_tensor([[0, 4, 8], [1, 5, 9]], dtype="float32", suffixes=[])
        == expected
    )


def test_suffixes_default_and_tuple():
    x = np.array([1, 2, 3])
    assert ts.format_tensor(x, dtype="int64") == "tensor([1, 2, 3])"
    assert (
        ts.format_tensor(x, dtype="int32", suffixes=("requires_grad=True",))
        == "tensor([1, 2, 3], dtype=torch.int32, requires_grad=True)"
    )


def test_input_array_is_not_modified():
    x = np.array([[1.5, -2.0], [3.0, 4.0]])
    before = x.copy()
    ts.format_tensor(x, dtype="float32", suffixes=[])
    assert np.array_equal(x, before)
    assert x.dtype == np.float64


def test_complex_is_rejected():
    with pytest.raises(NotImplementedError):
        ts.format_tensor(np.array([1 + 2j]), dtype="complex64", suffixes=[])


def test_module_does_not_import_rustgrad():
    source = _MODULE_PATH.read_text()
    assert not re.search(r"^\s*(import|from)\s+rustgrad\b", source, re.MULTILINE)
