"""Seed 004: "TORCH01-07:Torch导数与自动求导" (backward, plots, hooks, higher
order derivatives, autograd.grad, set_grad_enabled / enable_grad / no_grad).

Reading ``.grad`` of a non-leaf tensor prints None and, in PyTorch 2.x, warns
(UserWarning, every time); the tests that do so assert that warning too.
The text after the last code example is page residue and has no tests.
"""

import re
import warnings

import numpy as np
import pytest
from seed_helpers import NON_LEAF_GRAD_WARNING, assert_grad_fn, assert_printed


def test_004_derivative(capsys):
    import rustgrad as torch


    # x自变量
    x = torch.Tensor([5])
    x.requires_grad=True

    # y因变量
    y = x ** 2

    # 求导
    y.backward()

    # 导数的结果
    print(x.grad)

    assert_printed(capsys, "tensor([10.])\n")
    assert x.dtype == torch.float32
    assert x.is_leaf is True
    assert_grad_fn(y, "PowBackward0")


def test_004_plot_derivative(capsys, tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import rustgrad as torch


    # x自变量
    x = torch.linspace(0, 10, 100)
    x.requires_grad=True

    # y因变量
    y = (x - 5) ** 2 + 3
    z = y.sum()
    # 求导
    z.backward()

    print()
    # 可视化
    plt.plot(x.detach(), y.detach(), color=(1, 0, 0, 1), label='$y=(x-5)^2 + 3$')
    plt.plot(x.detach(), x.grad.detach(), color=(1, 0, 1, 1), label='$y=2(x-5)$')
    plt.legend()
    # plt.show() -> saved instead (Agg backend)
    out_file = tmp_path / "seed004_parabola.png"
    plt.savefig(out_file)

    # print(x.grad)
    # print(x)

    try:
        assert_printed(capsys, "\n")
        assert out_file.exists()
        assert out_file.stat().st_size > 0
        lines = plt.gca().get_lines()
        assert len(lines) == 2
        xs = np.linspace(0, 10, 100, dtype=np.float32)
        np.testing.assert_allclose(np.asarray(lines[0].get_xdata(orig=False)), xs,
                                   rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(np.asarray(lines[0].get_ydata(orig=False)),
                                   (xs - 5) ** 2 + 3, rtol=1e-5, atol=1e-5)
        # the derivative of sum((x - 5)**2 + 3) is 2 (x - 5)
        np.testing.assert_allclose(np.asarray(lines[1].get_ydata(orig=False)),
                                   2 * (xs - 5), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(x.grad.numpy(), 2 * (xs - 5), rtol=1e-5, atol=1e-5)
        assert [t.get_text() for t in plt.gca().get_legend().get_texts()] == [
            '$y=(x-5)^2 + 3$', '$y=2(x-5)$']
        assert tuple(x.shape) == (100,)
    finally:
        plt.close("all")


def test_004_attributes_before_after_backward(capsys):
    import rustgrad as torch


    # x自变量
    x = torch.Tensor([5])
    x.requires_grad=True

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # 求导前的属性
        print("-------------求导前x")
        print("leaf:", x.is_leaf)
        print("grad_fn:", x.grad_fn)
        print("grad:", x.grad)
        # y因变量
        y = x ** 2
        print("-------------求导前y")
        print("requires_grad:", y.requires_grad)
        print("leaf:", y.is_leaf)
        print("grad_fn:", y.grad_fn)
        print("grad:", y.grad)
        # 求导
        y.backward()    # 只对标量运算

        print("-------------求导后x")
        # 求导后的属性
        print("leaf:", x.is_leaf)
        print("grad_fn:", x.grad_fn)
        print("grad:", x.grad)
        print("-------------求导后y")
        print("requires_grad:", y.requires_grad)
        print("leaf:", y.is_leaf)
        print("grad_fn:", y.grad_fn)
        print("grad:", y.grad)

    assert_printed(capsys, """\
-------------求导前x
leaf: True
grad_fn: None
grad: None
-------------求导前y
requires_grad: True
leaf: False
grad_fn: <PowBackward0 object at 0x11ee90cf8>
grad: None
-------------求导后x
leaf: True
grad_fn: None
grad: tensor([10.])
-------------求导后y
requires_grad: True
leaf: False
grad_fn: <PowBackward0 object at 0x11ee90828>
grad: None
""")
    assert_grad_fn(y, "PowBackward0")
    # each of the two reads of the non-leaf y.grad warns
    non_leaf = [w for w in caught if issubclass(w.category, UserWarning)
                and re.search(NON_LEAF_GRAD_WARNING, str(w.message))]
    assert len(non_leaf) == 2


def test_004_backward_with_gradient_x(capsys):
    import rustgrad as torch

    x = torch.Tensor([1, 2, 3])
    x.requires_grad=True         # 这个属性必须在 z = 2*x + 3*y 表达式构建图的时候设置

    y = torch.Tensor([4, 5, 6])

    z = 2*x + 3*y

    z.backward(x)     # 对x求导,得到的结果,自然是 2,但是x的grad是 2 * x

    with pytest.warns(UserWarning, match=NON_LEAF_GRAD_WARNING):
        print(x.grad, y.grad, z.grad)    # 没有对y求导,所以对y没有要求

    assert_printed(capsys, "tensor([2., 4., 6.]) None None\n")
    assert y.requires_grad is False
    assert y.is_leaf is True
    assert_grad_fn(z, "AddBackward0")


def test_004_scalar_output(capsys):
    import rustgrad as torch

    x = torch.Tensor([2])
    x.requires_grad=True
    z = x**2                # 求导函数
    z.backward()     # 对x求导,2 * x    ,导数为2x=4
    with pytest.warns(UserWarning, match=NON_LEAF_GRAD_WARNING):
        print(x.grad, z.grad)

    assert_printed(capsys, "tensor([4.]) None\n")


def test_004_vector_output_weighted(capsys):
    import rustgrad as torch

    x = torch.Tensor([2])
    x.requires_grad=True
    y = x**2               # 求导函数

    y.backward(x)     # 2 x x = 8

    with pytest.warns(UserWarning, match=NON_LEAF_GRAD_WARNING):
        print(x.grad, y.grad)
    print(x.grad/x)    # 正宗结果

    assert_printed(capsys, """\
tensor([8.]) None
tensor([4.], grad_fn=<DivBackward0>)
""")
    assert_grad_fn(x.grad / x, "DivBackward0")


def test_004_backward_all_leaves_without_grad_raises():
    import rustgrad as torch

    # Prose: when every leaf has requires_grad=False, backward raises.
    x = torch.Tensor([1, 2, 3])
    z = x**2
    with pytest.raises(RuntimeError,
                       match="element 0 of tensors does not require grad "
                             "and does not have a grad_fn"):
        z.backward(torch.ones_like(x))


def test_004_several_leaves(capsys):
    import rustgrad as torch

    x = torch.Tensor([1, 2, 3])
    y = torch.Tensor([4, 5, 6])

    x.requires_grad=True
    y.requires_grad=True

    z = 3*x + 2*y                # 求导函数

    z.backward(x)      # 对x求导

    print(x.grad,  y.grad)  # [3., 6., 9.] :导数是3  与 [2., 4., 6.]:导数是2

    print(x.grad/x,  y.grad/x)  # [3., 6., 9.] :导数是3  与 [2., 4., 6.]:导数是2

    assert_printed(capsys, """\
tensor([3., 6., 9.]) tensor([2., 4., 6.])
tensor([3., 3., 3.], grad_fn=<DivBackward0>) tensor([2., 2., 2.], grad_fn=<DivBackward0>)
""")


def test_004_ones_like_gradient(capsys):
    import rustgrad as torch

    x = torch.Tensor([1, 2, 3])
    x.requires_grad=True
    z = x**2                # 求导函数
    z.backward(torch.ones_like(x))
    with pytest.warns(UserWarning, match=NON_LEAF_GRAD_WARNING):
        print(x.grad, z.grad)

    assert_printed(capsys, "tensor([2., 4., 6.]) None\n")
    assert repr(torch.ones_like(x)) == "tensor([1., 1., 1.])"


def test_004_sum_then_backward(capsys):
    import rustgrad as torch

    x = torch.Tensor([1, 2, 3])
    x.requires_grad=True
    z = (x**2).sum()                # 直接求和

    z.backward()
    with pytest.warns(UserWarning, match=NON_LEAF_GRAD_WARNING):
        print(x.grad, z.grad)

    assert_printed(capsys, "tensor([2., 4., 6.]) None\n")
    assert_grad_fn(z, "SumBackward0")


def test_004_complex_graph(capsys):
    import rustgrad as torch

    #  叶子节点

    x = torch.Tensor([1, 2, 3])
    y = torch.Tensor([3, 4, 5])
    z = torch.Tensor([1, 2, 3])

    x.requires_grad=True
    y.requires_grad=True
    z.requires_grad=True

    # 中间节点
    xy = x + y
    xy2 = xy ** 2
    z3 = z ** 3
    xy2z3=xy2 * z3

    # 求导数
    xy2z3.backward(torch.Tensor([1.0, 1.0, 1.0]))
    print(x.grad, y.grad, z.grad)
    with pytest.warns(UserWarning, match=NON_LEAF_GRAD_WARNING):
        print(xy.grad, xy2.grad, z3.grad, xy2z3.grad)      # 没有梯度,因为不是叶子节点
    print(xy.grad_fn, xy2.grad_fn, z3.grad_fn, xy2z3.grad_fn)
    print(xy.requires_grad, xy2.requires_grad, z3.requires_grad, xy2z3.requires_grad)

    assert_printed(capsys, """\
tensor([  8.,  96., 432.]) tensor([  8.,  96., 432.]) tensor([  48.,  432., 1728.])
None None None None
<AddBackward0 object at 0x11efe69e8> <PowBackward0 object at 0x11efe6940> <PowBackward0 object at 0x11efe6a90> <MulBackward0 object at 0x11efe6ac8>
True True True True
""")
    # closed forms: d/dx = d/dy = 2 (x + y) z^3, d/dz = 3 (x + y)^2 z^2
    xv = np.array([1., 2., 3.], np.float32)
    yv = np.array([3., 4., 5.], np.float32)
    zv = np.array([1., 2., 3.], np.float32)
    np.testing.assert_allclose(x.grad.numpy(), 2 * (xv + yv) * zv ** 3)
    np.testing.assert_allclose(y.grad.numpy(), 2 * (xv + yv) * zv ** 3)
    np.testing.assert_allclose(z.grad.numpy(), 3 * (xv + yv) ** 2 * zv ** 2)
    assert_grad_fn(xy, "AddBackward0")
    assert_grad_fn(xy2, "PowBackward0")
    assert_grad_fn(z3, "PowBackward0")
    assert_grad_fn(xy2z3, "MulBackward0")


def test_004_hook_intermediate_grad(capsys):
    import rustgrad as torch

    #  叶子节点
    x = torch.Tensor([1, 2, 3])
    y = torch.Tensor([3, 4, 5])
    z = torch.Tensor([1, 2, 3])

    x.requires_grad=True
    y.requires_grad=True
    z.requires_grad=True

    # 中间节点
    xy = x + y
    # xyz = xy * z
    # xyz.backward(torch.Tensor([1, 1, 1]))

    xyz = torch.dot(xy, z)
    # ====================
    def get_xy_grad(grad):
        print(F"xy的导数:{ grad }")   # 可以保存到全局变量使用。

    xy.register_hook(get_xy_grad)

    # ====================

    xyz.backward()
    print(x.grad, y.grad, z.grad)
    with pytest.warns(UserWarning, match=NON_LEAF_GRAD_WARNING):
        print(xy.grad, y.grad, z.grad)

    assert_printed(capsys, """\
xy的导数:tensor([1., 2., 3.])
tensor([1., 2., 3.]) tensor([1., 2., 3.]) tensor([4., 6., 8.])
None tensor([1., 2., 3.]) tensor([4., 6., 8.])
""")
    assert_grad_fn(xyz, "DotBackward0")
    assert tuple(xyz.shape) == ()


# PyTorch warns (once per process) that backward(create_graph=True) makes a
# reference cycle; whether it is shown depends on test order, so ignore it.
@pytest.mark.filterwarnings(
    r"ignore:Using backward\(\) with create_graph=True:UserWarning")
def test_004_higher_order_backward(capsys):
    import rustgrad as torch

    x = torch.Tensor([1])
    x.requires_grad=True
    z = x**6               # 求导函数
    z.backward(create_graph=True)     # retain_graph保留的是本身的运算图,create_graph是保留微分图
    print(x.grad)    # 导数3
    # ====================
    def get_xy_grad(grad):
        print(F"x.grad的高阶导数:{ grad }")   # 可以保存到全局变量使用。

    x.register_hook(get_xy_grad)
    # ====================
    x.grad.backward(create_graph=True)

    # The tutorial (old PyTorch) prints grad_fn=<CloneBackward>. PyTorch 2.x
    # prints <CopyBackwards> (checked on PyTorch 2.15.0): with
    # create_graph=True the engine runs AccumulateGrad with grad mode on, the
    # incoming 6 * x**5 has a grad_fn, and AccumulateGrad stores
    # utils::clone_obey_contract(new_grad, x) =
    # new_grad.new_empty_strided(...).copy_(new_grad) -> CopyBackwards
    # (torch/csrc/autograd/functions/accumulate_grad.h,
    # torch/csrc/autograd/utils/grad_layout_contract.h).
    assert_printed(capsys, """\
tensor([6.], grad_fn=<CopyBackwards>)
x.grad的高阶导数:tensor([30.], grad_fn=<MulBackward0>)
""")
    # With grad mode on, the second accumulation is out of place
    # (variable_grad + new_grad): 6 + 30.
    assert repr(x.grad) == "tensor([36.], grad_fn=<AddBackward0>)"
    assert_grad_fn(x.grad, "AddBackward0")


def test_004_autograd_backward_function(capsys):
    import rustgrad as torch

    #  叶子节点
    x = torch.Tensor([1, 2, 3])
    y = torch.Tensor([3, 4, 5])
    z = torch.Tensor([1, 2, 3])

    x.requires_grad=True
    y.requires_grad=True
    z.requires_grad=True

    # 中间节点
    xy = x + y
    # xyz = xy * z
    # xyz.backward(torch.Tensor([1, 1, 1]))

    xyz = torch.dot(xy, z)
    # ====================
    def get_xy_grad(grad):
        print(F"xy的导数:{ grad }")   # 可以保存到全局变量使用。

    xy.register_hook(get_xy_grad)

    # ====================

    torch.autograd.backward(xyz)
    print(x.grad, y.grad, z.grad)
    with pytest.warns(UserWarning, match=NON_LEAF_GRAD_WARNING):
        print(xy.grad, y.grad, z.grad)

    assert_printed(capsys, """\
xy的导数:tensor([1., 2., 3.])
tensor([1., 2., 3.]) tensor([1., 2., 3.]) tensor([4., 6., 8.])
None tensor([1., 2., 3.]) tensor([4., 6., 8.])
""")


def test_004_signatures_keywords():
    import rustgrad as torch

    # The tutorial lists these signatures; every keyword it names is
    # accepted (grad_variables and only_inputs are kept for compatibility).
    x = torch.Tensor([1, 2, 3])
    x.requires_grad = True

    z = (x ** 2).sum()
    z.backward(gradient=None, retain_graph=None, create_graph=False)
    assert repr(x.grad) == "tensor([2., 4., 6.])"

    z = (x ** 2).sum()
    torch.autograd.backward(
        tensors=z,
        grad_tensors=None,
        retain_graph=None,
        create_graph=False,
        grad_variables=None)
    assert repr(x.grad) == "tensor([ 4.,  8., 12.])"

    z = x ** 2
    gd = torch.autograd.grad(
        outputs=z,
        inputs=x,
        grad_outputs=torch.Tensor([1, 1, 1]),
        retain_graph=None,
        create_graph=False,
        only_inputs=True,
        allow_unused=False)
    assert repr(gd) == "(tensor([2., 4., 6.]),)"

    with torch.autograd.set_grad_enabled(mode=False):
        assert torch.is_grad_enabled() is False
    assert torch.is_grad_enabled() is True
    with torch.autograd.enable_grad():
        assert torch.is_grad_enabled() is True


def test_004_autograd_grad(capsys):
    import rustgrad as torch

    #  叶子节点
    x = torch.Tensor([1, 2, 3])
    y = torch.Tensor([3, 4, 5])
    z = torch.Tensor([1, 2, 3])

    x.requires_grad=True
    y.requires_grad=True
    z.requires_grad=True

    # 中间节点
    xy = x + y
    xyz = torch.dot(xy, z)

    # ====================
    gd = torch.autograd.grad(xyz, x, retain_graph=True)

    print(x.grad, y.grad, z.grad)
    with pytest.warns(UserWarning, match=NON_LEAF_GRAD_WARNING):
        print(xy.grad, y.grad, z.grad)
    print(gd)
    print(torch.autograd.grad(xyz, xy,retain_graph=True))
    print(torch.autograd.grad(xyz, y,retain_graph=True))
    print(torch.autograd.grad(xyz, z,retain_graph=True, allow_unused=True))
    # ====================

    assert_printed(capsys, """\
None None None
None None None
(tensor([1., 2., 3.]),)
(tensor([1., 2., 3.]),)
(tensor([1., 2., 3.]),)
(tensor([4., 6., 8.]),)
""")
    assert isinstance(gd, tuple)
    # grad() does not touch .grad
    assert x.grad is None and y.grad is None and z.grad is None


def test_004_allow_unused():
    import rustgrad as torch

    # Prose on allow_unused: an input that the output does not depend on
    # is an error unless allow_unused=True, which then returns None for it.
    x = torch.Tensor([1, 2, 3])
    w = torch.Tensor([7, 8, 9])
    x.requires_grad = True
    w.requires_grad = True
    out = (x * 2).sum()
    with pytest.raises(RuntimeError,
                       match="appears to not have been used in the graph. "
                             "Set allow_unused=True if this is the desired behavior"):
        torch.autograd.grad(out, w, retain_graph=True)
    assert torch.autograd.grad(out, w, retain_graph=True, allow_unused=True) == (None,)
    gx, gw = torch.autograd.grad(out, [x, w], allow_unused=True)
    assert repr(gx) == "tensor([2., 2., 2.])"
    assert gw is None


def test_004_grad_higher_order(capsys):
    import rustgrad as torch

    x = torch.Tensor([1])
    x.requires_grad=True
    z = x**6               # 求导函数

    gd_1 = torch.autograd.grad(z, x, create_graph=True)

    gd_2 = torch.autograd.grad(gd_1, x)
    print(F"一阶导数:{gd_1},\n二阶导数: {gd_2}")

    assert_printed(capsys, """\
一阶导数:(tensor([6.], grad_fn=<MulBackward0>),),
二阶导数: (tensor([30.]),)
""")
    assert_grad_fn(gd_1[0], "MulBackward0")
    assert gd_2[0].requires_grad is False
    assert x.grad is None


def test_004_set_grad_enabled_function(capsys):
    import rustgrad as torch


    x = torch.Tensor([1, 2, 3])
    y = torch.Tensor([3, 4, 5])
    z = torch.Tensor([1, 2, 3])
    x.requires_grad=True
    y.requires_grad=True
    z.requires_grad=True

    try:
        torch.autograd.set_grad_enabled(False)   # 全局上下文
        assert torch.is_grad_enabled() is False
        xy = x + y
        xyz = torch.dot(xy, z)
        torch.autograd.set_grad_enabled(True)
    finally:
        torch.set_grad_enabled(True)  # never leak grad mode into other tests


    print(xy.requires_grad, xyz.requires_grad, z.requires_grad)

    assert_printed(capsys, "False False True\n")
    assert xy.grad_fn is None and xyz.grad_fn is None
    assert torch.is_grad_enabled() is True


def test_004_set_grad_enabled_context(capsys):
    import rustgrad as torch


    x = torch.Tensor([1, 2, 3])
    y = torch.Tensor([3, 4, 5])
    z = torch.Tensor([1, 2, 3])
    x.requires_grad=True
    y.requires_grad=True
    z.requires_grad=True

    with torch.autograd.set_grad_enabled(False)  as grad_ctx:   # 局部上下文
        xy = x + y    # 块结束,作用范围自动结束

    xyz = torch.dot(xy, z)
    print(xy.requires_grad, xyz.requires_grad, z.requires_grad)

    assert_printed(capsys, "False True True\n")
    # set_grad_enabled.__enter__ returns None in PyTorch
    assert grad_ctx is None
    assert torch.is_grad_enabled() is True
    assert_grad_fn(xyz, "DotBackward0")


def test_004_enable_grad_decorator(capsys):
    import rustgrad as torch


    x = torch.Tensor([1, 2, 3])
    y = torch.Tensor([3, 4, 5])
    z = torch.Tensor([1, 2, 3])
    x.requires_grad=True
    y.requires_grad=True
    z.requires_grad=True

    @ torch.autograd.enable_grad()
    def func_xy(x, y):
        return x + y    # 块结束,作用范围自动结束

    xy = func_xy(x, y)

    xyz = torch.dot(xy, z)
    print(xy.requires_grad, xyz.requires_grad, z.requires_grad)

    assert_printed(capsys, "True True True\n")
    # the decorator enables grad even when called under no_grad
    with torch.no_grad():
        xy_in_no_grad = func_xy(x, y)
        assert torch.is_grad_enabled() is False
    assert xy_in_no_grad.requires_grad is True
    assert func_xy.__name__ == "func_xy"


def test_004_enable_grad_context(capsys):
    import rustgrad as torch


    x = torch.Tensor([1, 2, 3])
    y = torch.Tensor([3, 4, 5])
    z = torch.Tensor([1, 2, 3])
    x.requires_grad=True
    y.requires_grad=True
    z.requires_grad=True

    with torch.autograd.enable_grad():
        xy = x + y

    xyz = torch.dot(xy, z)
    print(xy.requires_grad, xyz.requires_grad, z.requires_grad)

    assert_printed(capsys, "True True True\n")


def test_004_no_grad_decorator(capsys):
    import rustgrad as torch


    x = torch.Tensor([1, 2, 3])
    y = torch.Tensor([3, 4, 5])
    z = torch.Tensor([1, 2, 3])
    x.requires_grad=True
    y.requires_grad=True
    z.requires_grad=True

    @ torch.autograd.no_grad()
    def func_xy(x, y):
        return x + y    # 块结束,作用范围自动结束

    xy = func_xy(x, y)

    xyz = torch.dot(xy, z)
    print(xy.requires_grad, xyz.requires_grad, z.requires_grad)

    assert_printed(capsys, "False True True\n")
    assert torch.is_grad_enabled() is True
    assert func_xy.__name__ == "func_xy"


def test_004_no_grad_context(capsys):
    import rustgrad as torch


    x = torch.Tensor([1, 2, 3])
    y = torch.Tensor([3, 4, 5])
    z = torch.Tensor([1, 2, 3])
    x.requires_grad=True
    y.requires_grad=True
    z.requires_grad=True

    with torch.autograd.no_grad():
        xy = x + y

    xyz = torch.dot(xy, z)
    print(xy.requires_grad, xyz.requires_grad, z.requires_grad)

    assert_printed(capsys, "False True True\n")
    assert torch.is_grad_enabled() is True


def test_004_no_grad_enable_grad_nested(capsys):
    import rustgrad as torch


    x = torch.Tensor([1, 2, 3])
    y = torch.Tensor([3, 4, 5])
    z = torch.Tensor([1, 2, 3])
    x.requires_grad=True
    y.requires_grad=True
    z.requires_grad=True

    with torch.autograd.no_grad():
        xy = x + y
        with torch.autograd.enable_grad():
            z3 = z **3
            xy2 = xy ** 2    # 因为xy的requires_grad=False,整个运算也是False

    print(xy.requires_grad, z3.requires_grad, xy2.requires_grad)

    assert_printed(capsys, "False True False\n")
    assert_grad_fn(z3, "PowBackward0")
    assert xy2.grad_fn is None
    assert torch.is_grad_enabled() is True
