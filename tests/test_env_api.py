"""The device and environment API on a CPU-only package: ``torch.cuda``, ``torch.backends``,
``torch.accelerator``, ``torch.mps``, ``torch.amp``, ``torch.compile``/``jit``/``onnx``, the default
device, thread counts, ``torch.device`` and the legacy tensor types.

The expected answers are those of PyTorch 2.15 built without CUDA (recorded here as constants). The
PyTorch installed next to the tests may be a CUDA build running without a GPU, which answers a few
questions differently (``version.cuda``, ``current_accelerator()``, the error raised by
``current_device()``), so the live comparisons at the end cover only the build-independent answers.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import rustgrad as torch

NOT_COMPILED = "Torch not compiled with CUDA enabled"


# ----- torch.cuda -----


def test_cuda_questions_answer_as_a_cpu_build():
    assert torch.cuda.is_available() is False
    assert torch.cuda.device_count() == 0
    assert torch.cuda.is_initialized() is False
    assert torch.cuda.is_bf16_supported() is False
    assert torch.cuda.get_rng_state_all() == []
    assert torch.cuda.set_rng_state_all([]) is None
    for fn in (torch.cuda.memory_allocated, torch.cuda.max_memory_allocated, torch.cuda.memory_reserved,
               torch.cuda.max_memory_reserved):
        assert fn() == 0
    assert dict(torch.cuda.memory_stats()) == {}
    assert torch.cuda.empty_cache() is None


def test_cuda_seeding_is_accepted_and_ignored():
    state = torch.get_rng_state()
    assert torch.cuda.manual_seed(1) is None
    assert torch.cuda.manual_seed_all(1) is None
    assert torch.cuda.seed() is None
    assert torch.cuda.seed_all() is None
    assert torch.equal(torch.get_rng_state(), state)  # the CPU generator is untouched
    with pytest.raises(ValueError):
        torch.cuda.manual_seed("a")


@pytest.mark.parametrize(
    "call",
    [
        lambda: torch.cuda.current_device(),
        lambda: torch.cuda.synchronize(),
        lambda: torch.cuda.initial_seed(),
        lambda: torch.cuda.get_device_name(),
        lambda: torch.cuda.get_device_name(0),
        lambda: torch.cuda.get_device_properties(0),
        lambda: torch.cuda.get_device_capability(),
        lambda: torch.cuda.get_rng_state(),
        lambda: torch.cuda.init(),
        lambda: torch.cuda.set_device(0),
        lambda: torch.cuda.device(0).__enter__(),
    ],
)
def test_cuda_calls_needing_a_gpu_raise_not_compiled(call):
    with pytest.raises(AssertionError, match=f"^{NOT_COMPILED}$"):
        call()


def test_cuda_set_device_rejects_a_cpu_device():
    with pytest.raises(ValueError, match="^Expected a cuda device, but got: cpu$"):
        torch.cuda.set_device("cpu")


# ----- torch.device and tensors off the CPU -----


@pytest.mark.parametrize(
    ("arg", "type_", "index", "text"),
    [
        (("cuda",), "cuda", None, "cuda"),
        (("cuda:0",), "cuda", 0, "cuda:0"),
        (("cuda", 1), "cuda", 1, "cuda:1"),
        (("mps",), "mps", None, "mps"),
        (("meta",), "meta", None, "meta"),
        (("xpu",), "xpu", None, "xpu"),
        (("cpu:0",), "cpu", 0, "cpu:0"),
        ((0,), "cuda", 0, "cuda:0"),
    ],
)
def test_device_construction_works_for_every_device_type(arg, type_, index, text):
    d = torch.device(*arg)
    assert (d.type, d.index, str(d)) == (type_, index, text)


@pytest.mark.parametrize(
    ("args", "exc", "message"),
    [
        (("foo",), RuntimeError, ("Expected one of cpu, cuda, ipu, xpu, mkldnn, opengl, opencl, ideep, hip, ve, fpga, "
         "maia, xla, lazy, vulkan, mps, meta, hpu, mtia, privateuseone device type at start of device string: foo")),
        (("cuda:x",), RuntimeError, "Invalid device string: 'cuda:x'"),
        (("cuda:01",), RuntimeError, "Invalid device string: 'cuda:01'"),
        (("cuda:-1",), RuntimeError, "Invalid device string: 'cuda:-1'"),
        (("cuda", -1), RuntimeError, "Device index must not be negative"),
        ((-1,), RuntimeError, "Device index must not be negative"),
        (("cuda:0", 1), RuntimeError, "type (string) must not include an index because index was passed explicitly: cuda:0"),
    ],
)
def test_device_construction_errors(args, exc, message):
    with pytest.raises(exc) as info:
        torch.device(*args)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "make",
    [
        lambda: torch.zeros(2, device="cuda"),
        lambda: torch.zeros(2, device="cuda:1"),
        lambda: torch.zeros(2, device=0),
        lambda: torch.tensor([1.0], device="cuda"),
        lambda: torch.ones_like(torch.zeros(2), device="cuda"),
        lambda: torch.zeros(2).to("cuda"),
        lambda: torch.zeros(2).to(torch.device("cuda")),
        lambda: torch.zeros(2).cuda(),
        lambda: torch.zeros(2).type("torch.cuda.FloatTensor"),
        lambda: torch.cuda.FloatTensor([1]),
        lambda: torch.nn.Linear(2, 2).to("cuda"),
        lambda: torch.nn.Linear(2, 2).cuda(),
    ],
)
def test_tensors_on_cuda_raise_not_compiled(make):
    with pytest.raises(AssertionError, match=f"^{NOT_COMPILED}$"):
        make()


def test_other_devices_raise_their_errors():
    with pytest.raises(RuntimeError, match="^PyTorch is not linked with support for mps devices$"):
        torch.zeros(2).to("mps")
    with pytest.raises(NotImplementedError, match="^Could not run 'aten::empty.memory_format' with arguments from the 'MPS'"):
        torch.zeros(2, device="mps")
    with pytest.raises(AssertionError, match="^Torch not compiled with XPU enabled$"):
        torch.zeros(2).to("xpu")
    with pytest.raises(NotImplementedError, match="meta"):
        torch.zeros(2, device="meta")


def test_a_module_without_tensors_moves_anywhere():
    m = torch.nn.Module()
    assert m.to("cuda") is m and m.cuda() is m
    with pytest.raises(RuntimeError, match="Invalid device string"):
        m.to("cuda:x")


# ----- default device -----


def test_default_device_cpu_and_unavailable_devices():
    assert torch.get_default_device() == torch.device("cpu")
    try:
        torch.set_default_device("cpu")
        assert torch.zeros(2).device.type == "cpu"
        torch.set_default_device("cuda")  # accepted, as in PyTorch; creating a tensor fails
        with pytest.raises(AssertionError, match=f"^{NOT_COMPILED}$"):
            torch.zeros(2)
        with pytest.raises(AssertionError, match=f"^{NOT_COMPILED}$"):
            torch.get_default_device()
        with pytest.raises(AssertionError, match=f"^{NOT_COMPILED}$"):
            torch.nn.Linear(2, 2)
        assert torch.zeros(2, device="cpu").shape == (2,)  # an explicit device wins
        torch.set_default_device("cuda:1")
        assert torch.get_default_device() == torch.device("cuda", 1)
        with pytest.raises(RuntimeError, match="device type at start of device string: foo"):
            torch.set_default_device("foo")
    finally:
        torch.set_default_device(None)
    assert torch.get_default_device() == torch.device("cpu")
    assert torch.zeros(2).shape == (2,)


# ----- torch.backends, accelerator, mps, cpu, version -----


def test_backends_answers_and_settable_flags():
    from rustgrad.backends import cudnn

    assert torch.backends.mps.is_available() is False
    assert torch.backends.mps.is_built() is False
    assert torch.backends.cuda.is_built() is False
    assert (cudnn.enabled, cudnn.benchmark, cudnn.deterministic, cudnn.allow_tf32) == (True, False, False, True)
    assert cudnn.is_available() is False and cudnn.version() is None
    assert torch.backends.cuda.matmul.allow_tf32 is False
    assert torch.backends.mkldnn.enabled is True
    assert torch.backends.opt_einsum.is_available() is False
    assert torch.backends.opt_einsum.strategy is None
    assert torch.backends.cpu.get_cpu_capability() in ("DEFAULT", "AVX2")
    try:
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.deterministic = True
        torch.backends.cuda.matmul.allow_tf32 = True
        assert cudnn.benchmark and cudnn.deterministic and torch.backends.cuda.matmul.allow_tf32
        with cudnn.flags(enabled=False, benchmark=False):
            assert cudnn.enabled is False and cudnn.benchmark is False
        assert cudnn.enabled is True and cudnn.benchmark is True
    finally:
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = False
        torch.backends.cuda.matmul.allow_tf32 = False


def test_accelerator_mps_cpu_version():
    assert torch.accelerator.is_available() is False
    assert torch.accelerator.current_accelerator() is None
    assert torch.accelerator.current_accelerator(check_available=True) is None
    assert torch.accelerator.device_count() == 0
    assert torch.mps.is_available() is False and torch.mps.device_count() == 0
    assert torch.mps.manual_seed(1) is None
    with pytest.raises(RuntimeError, match=r"^Cannot execute deviceSynchronize\(\) without MPS backend.$"):
        torch.mps.synchronize()
    with pytest.raises(RuntimeError, match=r"^Cannot execute emptyCache\(\) without MPS backend.$"):
        torch.mps.empty_cache()
    assert (torch.cpu.is_available(), torch.cpu.device_count(), torch.cpu.current_device()) == (True, 1, "cpu")
    assert torch.cpu.synchronize() is None
    assert torch.version.cuda is None and torch.version.hip is None
    assert isinstance(torch.__version__, str) and torch.version.__version__ == torch.__version__


def test_the_corpus_device_idiom():
    # pytorch/examples and the tutorials pick their device this way.
    acc = torch.accelerator.current_accelerator().type if torch.accelerator.is_available() else "cpu"
    dev = torch.device("cuda" if torch.cuda.is_available() else acc)
    assert str(dev) == "cpu"
    assert not (torch.cuda.is_available() & (torch.device("cuda").index is not None))


# ----- threads and predicates -----


def _os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads through /proc")
def test_set_num_threads_sizes_the_kernel_pool():
    n = torch.get_num_threads()
    x = torch.linspace(-1, 1, 1 << 20)
    expected = np.exp(x.numpy())
    try:
        torch.set_num_threads(n + 3)
        before = _os_threads()
        np.testing.assert_allclose(x.exp().numpy(), expected, rtol=1e-6)
        # the parallel kernel ran on a pool of the new size (its threads now exist)
        assert _os_threads() >= before + 3 or before >= n + 3
        torch.set_num_threads(1)
        np.testing.assert_allclose((x * 2).numpy(), 2 * x.numpy())
    finally:
        torch.set_num_threads(n)


def test_thread_counts():
    n = torch.get_num_threads()
    assert isinstance(n, int) and n >= 1
    assert torch.get_num_interop_threads() >= 1
    try:
        torch.set_num_threads(3)
        assert torch.get_num_threads() == 3
        torch.set_num_interop_threads(2)
        assert torch.get_num_interop_threads() == 2
    finally:
        torch.set_num_threads(n)
    cases = [
        (0, RuntimeError, "set_num_threads expects a positive integer"),
        (-1, RuntimeError, "set_num_threads expects a positive integer"),
        (1.5, RuntimeError, "set_num_threads expects an int, but got float"),
        (True, RuntimeError, "set_num_threads expects an int, but got bool"),
        (2**70, ValueError, "Overflow when unpacking long"),
    ]
    for value, exc, message in cases:
        with pytest.raises(exc) as info:
            torch.set_num_threads(value)
        assert str(info.value) == message
    with pytest.raises(RuntimeError, match="^set_num_interop_threads expects an int, but got float$"):
        torch.set_num_interop_threads(1.5)


def test_predicates():
    x = torch.zeros(2, 3)
    assert torch.is_tensor(x) and not torch.is_tensor([1])
    assert torch.is_tensor(torch.nn.Parameter(x))
    assert torch.numel(x) == 6
    assert torch.is_floating_point(x) and not torch.is_floating_point(x.long())
    assert torch.is_storage(x) is False and torch.is_storage(1) is False
    assert torch.is_complex(x) is False
    assert torch.is_nonzero(torch.tensor([1])) is True
    assert torch.is_nonzero(torch.tensor([0.0])) is False
    with pytest.raises(RuntimeError, match="^Boolean value of Tensor with more than one value is ambiguous$"):
        torch.is_nonzero(torch.tensor([1, 2]))
    with pytest.raises(RuntimeError, match="^Boolean value of Tensor with no values is ambiguous$"):
        torch.is_nonzero(torch.tensor([]))
    for fn in (torch.numel, torch.is_floating_point, torch.is_complex):
        with pytest.raises(TypeError, match=r"argument 'input' \(position 1\) must be Tensor, not int"):
            fn(3)


# ----- compile, jit, onnx -----


def test_compile_returns_the_function_unchanged():
    def f(a):
        return a + 1

    m = torch.nn.Linear(2, 2)
    assert torch.compile(f) is f
    assert torch.compile(m) is m
    assert torch.compile(mode="max-autotune")(f) is f

    @torch.compile
    def g(a):
        return a * 2

    @torch.compile(fullgraph=True)
    def h(a):
        return a * 3

    assert g(torch.ones(1)).item() == 2.0 and h(torch.ones(1)).item() == 3.0
    with pytest.raises(RuntimeError, match="^Either mode or options can be specified"):
        torch.compile(f, mode="default", options={})
    with pytest.raises(AssertionError, match="^A callable function is expected, but <class 'int'> is provided.$"):
        torch.compile(3)


def test_jit_and_onnx():
    m = torch.nn.Linear(2, 2)
    assert torch.jit.script(m) is m
    assert torch.jit.trace(m, torch.zeros(1, 2)) is m
    assert torch.jit.is_scripting() is False and torch.jit.is_tracing() is False
    assert torch.jit.ignore(len) is len
    with pytest.raises(NotImplementedError, match="torch.jit.save"):
        torch.jit.save(m, "x.pt")
    assert torch.onnx.is_in_onnx_export() is False
    with pytest.raises(NotImplementedError, match="^torch.onnx.export is not supported by rustgrad"):
        torch.onnx.export(m, (torch.zeros(1, 2),), "m.onnx")


# ----- torch.amp -----


def test_autocast_regions():
    assert torch.autocast is torch.amp.autocast
    assert torch.is_autocast_enabled("cpu") is False
    with torch.autocast("cpu"):
        assert torch.is_autocast_enabled("cpu") is True
        with torch.autocast("cpu", enabled=False):
            assert torch.is_autocast_enabled("cpu") is False
        assert torch.is_autocast_enabled("cpu") is True
        y = torch.ones(2, 2) @ torch.ones(2, 2)  # on CPU autocast's lower-precision list
        assert y.dtype is torch.bfloat16
    assert torch.is_autocast_enabled("cpu") is False
    assert torch.is_autocast_enabled() is False  # 'cuda' by default

    @torch.autocast("cpu")
    def f():
        return torch.is_autocast_enabled("cpu")

    assert f() is True and torch.is_autocast_enabled("cpu") is False
    with pytest.raises(ValueError, match="^Expected `device_type` of type `str`, got: `<class 'int'>`$"):
        torch.autocast(3)
    with pytest.raises(RuntimeError, match="device type at start of device string: foo"):
        torch.autocast("foo")


def test_autocast_warnings_disable_the_region():
    with pytest.warns(UserWarning, match="^CUDA is not available or torch_xla is imported. Disabling autocast.$"):
        ac = torch.autocast("cuda")
    with ac:
        assert torch.is_autocast_enabled("cuda") is False
    with pytest.warns(UserWarning, match="^In CPU autocast, but the target dtype is not supported. Disabling autocast."):
        ac = torch.autocast("cpu", dtype=torch.float64)
    with ac:
        assert torch.is_autocast_enabled("cpu") is False
    with pytest.warns(FutureWarning, match=r"torch.cpu.amp.autocast\(args...\)` is deprecated"):
        ac = torch.cpu.amp.autocast()
    with ac:
        assert torch.is_autocast_enabled("cpu") is True
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.amp.autocast()
    assert [w.category for w in caught] == [FutureWarning, UserWarning]


def test_grad_scaler_disabled_for_cuda_passes_through():
    with pytest.warns(UserWarning, match=r"^torch.cuda.amp.GradScaler is enabled, but CUDA is not available.  Disabling.$"):
        scaler = torch.amp.GradScaler()
    loss = torch.tensor(2.0, requires_grad=True)
    assert scaler.scale(loss) is loss
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=1.0)
    p.grad = torch.ones(1)
    assert scaler.step(opt) is None
    assert p.tolist() == [-1.0]
    assert scaler.update() is None
    assert scaler.unscale_(opt) is None
    assert (scaler.is_enabled(), scaler.get_scale(), scaler.state_dict()) == (False, 1.0, {})
    scaler.load_state_dict({})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = torch.cuda.amp.GradScaler()
    assert [w.category for w in caught] == [FutureWarning, UserWarning]
    assert old.is_enabled() is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.amp.GradScaler("cuda", enabled=False).is_enabled() is False


def test_grad_scaler_on_the_cpu_scales_skips_and_adapts():
    scaler = torch.amp.GradScaler("cpu", init_scale=4.0, growth_interval=2)
    assert scaler.is_enabled() and scaler.get_scale() == 4.0
    w = torch.tensor([1.0, -2.0], requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.25)
    expected_w = np.array([1.0, -2.0], dtype=np.float32)
    scales = []
    for i in range(5):
        opt.zero_grad()
        loss = (w * w).sum()  # grad = 2 w
        scaled = scaler.scale(loss)
        assert scaled.item() == loss.item() * scaler.get_scale()
        assert type(scaled.grad_fn).__name__ == "MulBackward0"
        scaled.backward()
        grad = 2 * expected_w
        if i == 1:
            w.grad[0] = float("inf")  # this step is skipped and the scale backs off
        else:
            expected_w = expected_w - np.float32(0.25) * grad
        scaler.step(opt)
        scaler.update()
        np.testing.assert_array_equal(w.detach().numpy(), expected_w)
        scales.append(scaler.get_scale())
    assert scales == [4.0, 2.0, 2.0, 4.0, 4.0]
    assert scaler.state_dict() == {
        "scale": 4.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2, "_growth_tracker": 1,
    }
    other = torch.amp.GradScaler("cpu")
    other.load_state_dict(scaler.state_dict())
    assert other.state_dict() == scaler.state_dict()
    opt.zero_grad()
    scaler.scale((w * w).sum()).backward()
    scaler.unscale_(opt)
    np.testing.assert_array_equal(w.grad.numpy(), 2 * expected_w)
    with pytest.raises(RuntimeError, match=r"^unscale_\(\) has already been called on this optimizer since the last update\(\).$"):
        scaler.unscale_(opt)
    scaler.step(opt)
    with pytest.raises(RuntimeError, match=r"^step\(\) has already been called since the last update\(\).$"):
        scaler.step(opt)
    with pytest.raises(RuntimeError, match="^The source state dict is empty"):
        other.load_state_dict({})
    with pytest.raises(AssertionError, match="^Attempted step but _scale is None."):
        torch.amp.GradScaler("cpu").step(opt)
    with pytest.raises(AssertionError, match=r"^The growth factor must be > 1.0.$"):
        torch.amp.GradScaler("cpu", growth_factor=1.0)


# ----- legacy tensor types -----


def test_legacy_constructors():
    x = torch.FloatTensor([[1, 2], [3, 4.5]])
    assert type(x) is torch.Tensor and x.dtype is torch.float32 and x.tolist() == [[1.0, 2.0], [3.0, 4.5]]
    assert torch.FloatTensor(2, 3).shape == (2, 3)
    assert torch.FloatTensor(torch.Size([2, 3])).shape == (2, 3)
    assert torch.FloatTensor((2, 3)).tolist() == [2.0, 3.0]  # a tuple is data, a Size is a shape
    assert torch.FloatTensor().shape == (0,)
    assert torch.FloatTensor(size=(2,)).shape == (2,)
    assert torch.FloatTensor(np.array([1.0, 2.0])).tolist() == [1.0, 2.0]
    assert torch.LongTensor([1.7, -2.5]).tolist() == [1, -2]
    assert torch.LongTensor(3).dtype is torch.int64
    assert torch.DoubleTensor([1]).dtype is torch.float64
    assert torch.BoolTensor([0, 2]).tolist() == [False, True]
    t = torch.tensor([1.0, 2.0])
    alias = torch.FloatTensor(t)
    alias[0] = 5.0
    assert t[0].item() == 5.0  # shares memory


def test_legacy_constructor_errors():
    cases = [
        (lambda: torch.FloatTensor(2.5), TypeError, "new(): data must be a sequence (got float)"),
        (lambda: torch.FloatTensor("a"), TypeError, "new(): invalid data type 'str'"),
        (lambda: torch.FloatTensor(-1), RuntimeError, "Trying to create tensor with negative dimension -1: [-1]"),
        (lambda: torch.FloatTensor([1], device="cuda"), RuntimeError,
         "legacy constructor expects device type: cpu but device type: cuda was passed"),
        (lambda: torch.FloatTensor(torch.tensor([1, 2])), TypeError,
         ("expected TensorOptions(dtype=float, device=cpu, layout=Strided, requires_grad=false (default), "
         "pinned_memory=false (default), memory_format=(nullopt)) (got TensorOptions(dtype=long int, device=cpu, "
         "layout=Strided, requires_grad=false (default), pinned_memory=false (default), memory_format=(nullopt)))")),
    ]
    for make, exc, message in cases:
        with pytest.raises(exc) as info:
            make()
        assert str(info.value) == message
    with pytest.raises(TypeError, match="didn't match because some of the keywords were incorrect: requires_grad"):
        torch.FloatTensor([1, 2], requires_grad=True)


def test_legacy_isinstance():
    assert isinstance(torch.zeros(2), torch.FloatTensor)
    assert not isinstance(torch.zeros(2, dtype=torch.float64), torch.FloatTensor)
    assert isinstance(torch.zeros(2, dtype=torch.int64), torch.LongTensor)
    assert isinstance(torch.nn.Parameter(torch.zeros(2)), torch.FloatTensor)
    assert not isinstance(torch.zeros(2), torch.cuda.FloatTensor)
    assert not isinstance(1, torch.FloatTensor)
    assert not issubclass(torch.FloatTensor, torch.Tensor)
    assert torch.FloatTensor.dtype is torch.float32 and torch.LongTensor.dtype is torch.int64
    assert torch.FloatTensor.__name__ == "FloatTensor" and torch.FloatTensor.__module__ == "torch"
    assert torch.FloatTensor.is_cuda is False and torch.cuda.FloatTensor.is_cuda is True


@pytest.mark.parametrize(
    "name", ["IntTensor", "ShortTensor", "CharTensor", "ByteTensor", "HalfTensor", "BFloat16Tensor"]
)
def test_legacy_types_light_up_with_their_dtype(name):
    dtype_name = {"IntTensor": "int32", "ShortTensor": "int16", "CharTensor": "int8", "ByteTensor": "uint8",
                  "HalfTensor": "float16", "BFloat16Tensor": "bfloat16"}[name]
    cls = getattr(torch, name)
    if hasattr(torch, dtype_name):
        x = cls([1, 2])
        assert x.dtype is getattr(torch, dtype_name) and isinstance(x, cls)
        assert x.type() == f"torch.{name}"
    else:
        with pytest.raises(NotImplementedError, match=f"torch.{name} needs the dtype torch.{dtype_name}"):
            cls([1])


def test_tensor_type():
    x = torch.zeros(2, requires_grad=True)
    assert x.type() == "torch.FloatTensor"
    assert x.long().type() == "torch.LongTensor" and (x > 0).type() == "torch.BoolTensor"
    assert x.type(torch.float32) is x and x.type(torch.FloatTensor) is x and x.type(torch.Tensor) is x
    for target in (torch.DoubleTensor, "torch.DoubleTensor", torch.float64):
        y = x.type(target)
        assert y.dtype is torch.float64 and type(y.grad_fn).__name__ == "ToCopyBackward0"
    assert x.type("torch.LongTensor").dtype is torch.int64
    assert x.type(dtype=torch.float64, non_blocking=True).dtype is torch.float64
    for bad, message in (("float", "invalid type: 'float'"), ("torch.float64", "invalid type: 'torch.float64'"),
                         ("LongTensor", "invalid type: 'LongTensor'"), (int, "invalid type: 'int'")):
        with pytest.raises(ValueError) as info:
            x.type(bad)
        assert str(info.value) == message
    with pytest.raises(TypeError, match="^dtype must be a type, str, or dtype object$"):
        x.type(3)
    assert torch.typename(x) == "torch.FloatTensor"


# ----- live comparison with PyTorch (build-independent answers only) -----


def test_live_against_torch():
    real = pytest.importorskip("torch")
    assert torch.cuda.is_available() == real.cuda.is_available() is False
    assert torch.cuda.device_count() == real.cuda.device_count()
    assert torch.accelerator.is_available() == real.accelerator.is_available()
    assert torch.accelerator.device_count() == real.accelerator.device_count()
    assert torch.backends.mps.is_available() == real.backends.mps.is_available()
    assert torch.backends.mps.is_built() == real.backends.mps.is_built()
    for flag in ("enabled", "benchmark", "deterministic", "allow_tf32"):
        assert getattr(torch.backends.cudnn, flag) == getattr(real.backends.cudnn, flag)
    assert torch.backends.cuda.matmul.allow_tf32 == real.backends.cuda.matmul.allow_tf32
    assert torch.backends.opt_einsum.enabled == real.backends.opt_einsum.enabled
    assert str(torch.get_default_device()) == str(real.get_default_device())
    for spec in ("cuda", "cuda:0", "mps", "meta", "cpu:0", "xpu"):
        assert repr(torch.device(spec)) == repr(real.device(spec))
    assert repr(torch.device("cuda", 1)) == repr(real.device("cuda", 1))
    for bad in ("foo", "cuda:x", "cuda:01"):
        with pytest.raises(RuntimeError) as ours:
            torch.device(bad)
        with pytest.raises(RuntimeError) as theirs:
            real.device(bad)
        assert str(ours.value) == str(theirs.value)
    for name in ("FloatTensor", "DoubleTensor", "LongTensor", "BoolTensor"):
        ours_t = getattr(torch, name)([1, 0, 2])
        theirs_t = getattr(real, name)([1, 0, 2])
        assert ours_t.tolist() == theirs_t.tolist() and str(ours_t.dtype) == str(theirs_t.dtype)
        assert ours_t.type() == theirs_t.type()
    for scaler_args in ((), ("cuda",)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert torch.amp.GradScaler(*scaler_args).state_dict() == real.amp.GradScaler(*scaler_args).state_dict()
    assert torch.amp.GradScaler("cpu").state_dict() == real.amp.GradScaler("cpu").state_dict()
    assert torch.amp.GradScaler("cpu").scale(torch.tensor(2.0)).item() == real.amp.GradScaler("cpu").scale(
        real.tensor(2.0)
    ).item()


def test_load_onto_cuda_raises_pytorchs_message(tmp_path):
    torch.save({"x": torch.ones(2)}, tmp_path / "m.pt")
    for loc in ("cuda", "cuda:0", torch.device("cuda", 0)):
        with pytest.raises(RuntimeError, match=r"^Attempting to deserialize object on a CUDA device but "
                           r"torch.cuda.is_available\(\) is False. If you are running on a CPU-only machine"):
            torch.load(tmp_path / "m.pt", map_location=loc)


def test_tensor_device_attributes_and_device_modules():
    x = torch.zeros(2)
    assert (x.get_device(), x.is_cpu, x.is_cuda, x.is_meta, x.is_mps, x.is_xpu, x.is_pinned()) == (
        -1, True, False, False, False, False, False,
    )
    assert torch.get_device_module() is torch.cpu
    assert torch.get_device_module("cuda:0") is torch.cuda
    assert torch.get_device_module(torch.device("mps")) is torch.mps
    assert torch.xpu.is_available() is False and torch.xpu.device_count() == 0
    with pytest.raises(AssertionError, match="^Torch not compiled with XPU enabled$"):
        torch.xpu.synchronize()


def test_set_default_tensor_type():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.set_default_tensor_type(torch.FloatTensor)
        torch.set_default_tensor_type("torch.FloatTensor")
        assert torch.get_default_dtype() is torch.float32
        cases = [
            (torch.LongTensor, TypeError, "only floating-point types are supported as the default type"),
            (torch.float64, TypeError, "invalid type object: only floating-point types are supported as the default type"),
            (torch.cuda.FloatTensor, TypeError,
             "type torch.cuda.FloatTensor not available. Torch not compiled with CUDA enabled."),
            ("foo", ModuleNotFoundError, "No module named 'foo'"),
        ]
        for arg, exc, message in cases:
            with pytest.raises(exc) as info:
                torch.set_default_tensor_type(arg)
            assert str(info.value) == message
        if hasattr(torch, "set_default_dtype"):
            try:
                torch.set_default_tensor_type(torch.DoubleTensor)
                assert torch.get_default_dtype() is torch.float64
            finally:
                torch.set_default_dtype(torch.float32)


def test_version_compares_as_a_version():
    v = torch.__version__
    assert isinstance(v, str) and v == torch.version.__version__
    assert v >= (0, 1) and v >= "0.1" and v < "0.10" and v == (0, 1, 0) and v < (2, 0)
    assert torch.version.TorchVersion("2.15.0+cpu") > (2, 15, 0) and torch.version.TorchVersion("1.10") > "1.9"
    with pytest.raises(TypeError):
        v >= 3.5  # noqa: B015


def test_device_as_a_context_manager():
    with torch.device("cpu") as d:
        assert d == torch.device("cpu") and torch.zeros(1).device.type == "cpu"
    with torch.device("cuda:1"):
        assert torch.get_default_device() == torch.device("cuda", 1)
        with pytest.raises(AssertionError, match=f"^{NOT_COMPILED}$"):
            torch.ones(2)
        with torch.device("cpu"):
            assert torch.ones(2).shape == (2,)
    assert torch.get_default_device() == torch.device("cpu") and torch.ones(2).shape == (2,)
