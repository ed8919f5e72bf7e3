"""rustgrad.save_safetensors / load_safetensors: safetensors checkpoints, readable by other tools, written
atomically (torch.save / torch.load, PyTorch's zip format, are tested in test_checkpoint_format.py)."""

import os
import subprocess
import sys
import textwrap
import threading
from collections import OrderedDict

import numpy as np
import pytest
import rustgrad as torch
from rustgrad import serialization


def as_plain(obj):
    """``obj`` with tensors replaced by (dtype name, numpy array), for == comparisons."""
    if isinstance(obj, torch.Tensor):
        return ("tensor", str(obj.dtype), obj.detach().numpy().tolist(), tuple(obj.shape))
    if isinstance(obj, dict):
        return type(obj), [(as_plain(k), as_plain(v)) for k, v in obj.items()]
    if isinstance(obj, (list, tuple)):
        return type(obj), [as_plain(v) for v in obj]
    return type(obj), obj


def assert_same_tensor(a, b):
    assert a.dtype == b.dtype
    assert tuple(a.shape) == tuple(b.shape)
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def sample_tensors():
    torch.manual_seed(0)
    base = torch.randn(4, 6)
    return OrderedDict(
        [
            ("fc1.weight", torch.randn(3, 4)),
            ("fc1.bias", torch.randn(3, dtype=torch.float64)),
            ("steps", torch.arange(7) - 3),
            ("mask", torch.tensor([[True, False], [False, True]])),
            ("scalar", torch.tensor(2.5)),
            ("scalar_int", torch.tensor(-4)),
            ("transposed", base.t()),
            ("strided", base[1:, ::2]),
            ("empty", torch.zeros(0, 3)),
        ]
    )


def test_round_trip_dtypes_views_and_0d(tmp_path):
    sd = sample_tensors()
    assert not sd["transposed"].is_contiguous() and not sd["strided"].is_contiguous()
    torch.save_safetensors(sd, tmp_path / "ckpt.pt")
    loaded = torch.load_safetensors(tmp_path / "ckpt.pt")
    assert type(loaded) is OrderedDict
    assert list(loaded) == list(sd)
    for name, t in sd.items():
        assert_same_tensor(loaded[name], t)
    assert loaded["scalar"].dim() == 0 and loaded["scalar"].item() == 2.5


def test_plain_dict_stays_dict_and_str_path(tmp_path):
    sd = {"b": torch.ones(2), "a": torch.zeros(1, dtype=torch.int64)}
    path = str(tmp_path / "plain.safetensors")
    torch.save_safetensors(sd, path)
    loaded = torch.load_safetensors(path, map_location="cpu", weights_only=True)
    assert type(loaded) is dict and list(loaded) == ["b", "a"]
    assert_same_tensor(loaded["a"], sd["a"])


def test_requires_grad_is_kept_graph_is_not(tmp_path):
    w = torch.randn(3, requires_grad=True)
    y = w * 2
    torch.save_safetensors({"w": w, "y": y, "c": torch.ones(2)}, tmp_path / "g.pt")
    loaded = torch.load_safetensors(tmp_path / "g.pt")
    assert loaded["w"].requires_grad and loaded["w"].is_leaf
    assert loaded["y"].requires_grad and loaded["y"].grad_fn is None
    assert not loaded["c"].requires_grad
    np.testing.assert_array_equal(loaded["y"].detach().numpy(), y.detach().numpy())


def test_nested_optimizer_state_round_trip(tmp_path):
    optim_state = {
        "state": {
            0: {"step": torch.tensor(3.0), "exp_avg": torch.randn(2, 3), "exp_avg_sq": torch.rand(2, 3)},
            1: {"step": torch.tensor(3.0), "exp_avg": torch.randn(3), "exp_avg_sq": torch.rand(3)},
        },
        "param_groups": [
            {
                "lr": 0.001,
                "betas": (0.9, 0.999),
                "eps": 1e-08,
                "weight_decay": 0,
                "amsgrad": False,
                "maximize": False,
                "foreach": None,
                "params": [0, 1],
            }
        ],
    }
    ckpt = {
        "model": sample_tensors(),
        "optim": optim_state,
        "epoch": 3,
        "best": float("inf"),
        "name": "mlp",
        "history": [0.5, 0.25],
        "keys": {"0": "str key", 0: "int key", (1, 2): "tuple key"},
        "np_scalar": np.int64(7),
    }
    torch.save_safetensors(ckpt, tmp_path / "full.pt")
    loaded = torch.load_safetensors(tmp_path / "full.pt")
    ckpt["np_scalar"] = 7  # numpy scalars come back as Python scalars
    assert as_plain(loaded) == as_plain(ckpt)
    assert loaded["optim"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert set(loaded["optim"]["state"]) == {0, 1}
    assert loaded["keys"][0] == "int key" and loaded["keys"]["0"] == "str key"


def test_nested_tensor_names_are_paths(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    ckpt = {
        "model": {"fc.weight": torch.ones(2)},
        "optim": {"state": {0: {"exp_avg": torch.zeros(2)}}},
        "a.b": torch.ones(1),
        "a": {"b": torch.zeros(1)},
    }
    torch.save_safetensors(ckpt, tmp_path / "n.safetensors")
    names = set(safetensors_numpy.load_file(tmp_path / "n.safetensors"))
    assert names == {"model.fc.weight", "optim.state.0.exp_avg", "a.b", "a.b#1"}
    assert as_plain(torch.load_safetensors(tmp_path / "n.safetensors")) == as_plain(ckpt)


def test_safetensors_numpy_reads_what_rustgrad_writes(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    sd = sample_tensors()
    torch.save_safetensors(sd, tmp_path / "w.safetensors")
    arrays = safetensors_numpy.load_file(str(tmp_path / "w.safetensors"))
    assert set(arrays) == set(sd)
    for name, t in sd.items():
        assert arrays[name].dtype == t.numpy().dtype
        np.testing.assert_array_equal(arrays[name], t.numpy())


def test_rustgrad_reads_what_safetensors_numpy_writes(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    arrays = {
        "w": np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32),
        "d": np.linspace(0, 1, 4),
        "i": np.arange(6, dtype=np.int64).reshape(2, 3),
        "m": np.array([True, False, True]),
        "s": np.array(1.5, dtype=np.float32),
    }
    safetensors_numpy.save_file(arrays, str(tmp_path / "np.safetensors"), metadata={"note": "from numpy"})
    loaded = torch.load_safetensors(tmp_path / "np.safetensors")
    assert set(loaded) == set(arrays)
    for name, a in arrays.items():
        assert loaded[name].numpy().dtype == a.dtype
        np.testing.assert_array_equal(loaded[name].numpy(), a)


def test_unsupported_dtype_names_file_and_tensor(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    path = tmp_path / "wide.safetensors"
    safetensors_numpy.save_file({"h": np.ones(2, dtype=np.uint16)}, str(path))
    with pytest.raises(RuntimeError, match=r"wide\.safetensors.*'h'.*U16"):
        torch.load_safetensors(path)


@pytest.mark.parametrize("cut", [1, 8, 20, -1, -9])
def test_truncated_file_raises_clear_error(tmp_path, cut):
    path = tmp_path / "t.pt"
    torch.save_safetensors({"model": sample_tensors(), "epoch": 1}, path)
    data = path.read_bytes()
    path.write_bytes(data[:cut])
    with pytest.raises(RuntimeError, match=r"t\.pt"):
        torch.load_safetensors(path)


@pytest.mark.parametrize(
    "content", [b"", b"not a checkpoint at all", b"\xff" * 64, b"PK\x03\x04" + b"\0" * 100]
)
def test_corrupt_file_raises_clear_error(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(RuntimeError, match=r"bad\.pt"):
        torch.load_safetensors(path)


def test_corrupt_structure_metadata_raises(tmp_path):
    path = tmp_path / "s.pt"
    serialization._rustgrad._save_safetensors(
        {"x": torch.ones(1)}, {serialization.STRUCTURE_KEY: "{oops"}, str(path)
    )
    with pytest.raises(RuntimeError, match=r"s\.pt.*rustgrad\.structure"):
        torch.load_safetensors(path)
    structure = '{"version":1,"object":{"tensor":"missing"}}'
    serialization._rustgrad._save_safetensors(
        {"x": torch.ones(1)}, {serialization.STRUCTURE_KEY: structure}, str(path)
    )
    with pytest.raises(RuntimeError, match=r"'missing'"):
        torch.load_safetensors(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        torch.load_safetensors(tmp_path / "nope.pt")


def test_paths_only(tmp_path):
    with open(tmp_path / "f.pt", "wb") as f, pytest.raises(TypeError, match="not a file object"):
        torch.save_safetensors({"x": torch.ones(1)}, f)
    with pytest.raises(TypeError, match="file path"):
        torch.load_safetensors(42)


def test_map_location(tmp_path):
    torch.save_safetensors({"x": torch.ones(2)}, tmp_path / "m.pt")
    for loc in (None, "cpu", torch.device("cpu"), {"cuda:0": "cpu"}, lambda storage, loc: storage):
        assert_same_tensor(torch.load_safetensors(tmp_path / "m.pt", map_location=loc)["x"], torch.ones(2))
    with pytest.raises(RuntimeError):
        torch.load_safetensors(tmp_path / "m.pt", map_location="cuda:0")


def test_unserialisable_value_keeps_previous_checkpoint(tmp_path):
    path = tmp_path / "ckpt.pt"
    torch.save_safetensors({"w": torch.ones(3)}, path)
    before = path.read_bytes()
    with pytest.raises(TypeError, match=r"object at 'extra\.fn'"):
        torch.save_safetensors({"w": torch.zeros(3), "extra": {"fn": object()}}, path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["ckpt.pt"]  # no temporary file left behind
    assert_same_tensor(torch.load_safetensors(path)["w"], torch.ones(3))


def test_failed_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    torch.save_safetensors({"w": torch.ones(3)}, path)
    before = path.read_bytes()
    real = serialization._rustgrad

    class Boom:
        def _save_safetensors(self, tensors, metadata, p):
            # the write itself fails: the directory vanishes under it, a disk fills up...
            real._save_safetensors(tensors, metadata, str(tmp_path / "no such dir" / "x.pt"))

        def __getattr__(self, name):
            return getattr(real, name)

    monkeypatch.setattr(serialization, "_rustgrad", Boom())
    with pytest.raises(RuntimeError, match="no such dir"):
        torch.save_safetensors({"w": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["ckpt.pt"]


def test_write_failing_halfway_keeps_previous_checkpoint(tmp_path):
    """A real failure in the middle of writing the bytes: the file-size limit (RLIMIT_FSIZE) is set
    below the checkpoint's size in a child process, so the write stops with EFBIG after 1 MB. A
    writer that truncated the target first would leave a broken file; the old one must stay."""
    pytest.importorskip("resource")
    path = tmp_path / "big.pt"
    script = textwrap.dedent(
        f"""
        import os, resource, signal
        import rustgrad as torch
        path = {str(path)!r}
        torch.save_safetensors({{"w": torch.full((1_000_000,), 1.0), "v": 1}}, path)  # 4 MB
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        try:
            torch.save_safetensors({{"w": torch.full((1_000_000,), 2.0), "v": 2}}, path)
        except RuntimeError as e:
            print("error:", e)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.startswith("error:") and "big.pt" in out, out
    ckpt = torch.load_safetensors(path)
    assert ckpt["v"] == 1 and (ckpt["w"].numpy() == 1.0).all()
    assert sorted(os.listdir(tmp_path)) == ["big.pt"]


def test_threads_saving_to_one_path(tmp_path):
    """Each save has its own temporary file, so concurrent saves never rename each other's away."""
    path = tmp_path / "shared.pt"
    errors = []

    def writer(value):
        try:
            for _ in range(10):
                torch.save_safetensors({"w": torch.full((200_000,), float(value))}, path)
        except Exception as e:  # noqa: BLE001 (collected and asserted below)
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(v,)) for v in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    w = torch.load_safetensors(path)["w"].numpy()
    assert (w == w[0]).all()


def test_save_load_exported():
    assert torch.save is serialization.save and torch.load is serialization.load
    assert torch.save_safetensors is serialization.save_safetensors
    assert torch.load_safetensors is serialization.load_safetensors
    for name in ("save", "load", "save_safetensors", "load_safetensors"):
        assert name in torch.__all__


def test_load_safetensors_names_the_format_it_found(tmp_path):
    """A PyTorch zip checkpoint given to load_safetensors is named as such (not "corrupt safetensors")."""
    torch.save({"w": torch.ones(2)}, tmp_path / "zip.pt")
    with pytest.raises(RuntimeError, match=r"zip\.pt is a PyTorch checkpoint \(a zip archive.*rustgrad\.load"):
        torch.load_safetensors(tmp_path / "zip.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(RuntimeError, match=r"empty\.pt is empty"):
        torch.load_safetensors(tmp_path / "empty.pt")


def test_torch_load_reads_safetensors_files(tmp_path):
    """torch.load still reads safetensors files (rustgrad's checkpoints before PyTorch's format)."""
    ckpt = {"model": sample_tensors(), "epoch": 3}
    torch.save_safetensors(ckpt, tmp_path / "old.pt")
    assert as_plain(torch.load(tmp_path / "old.pt")) == as_plain(ckpt)
    with open(tmp_path / "old.pt", "rb") as f:
        assert as_plain(torch.load(f)) == as_plain(ckpt)


def test_training_resumes_identically_from_checkpoint(tmp_path):
    """Model + Adam + StepLR saved mid-training and loaded into fresh objects continue exactly alike."""
    nn = pytest.importorskip("rustgrad.nn")
    from rustgrad import optim

    def make():
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
        opt = optim.Adam(model.parameters(), lr=1e-2)
        return model, opt, optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)

    def train_step(model, opt, sched, x, y):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        sched.step()

    torch.manual_seed(0)
    x, y = torch.randn(16, 4), torch.randn(16, 3)
    model, opt, sched = make()
    for _ in range(3):
        train_step(model, opt, sched, x, y)
    ckpt = {"model": model.state_dict(), "optim": opt.state_dict(), "sched": sched.state_dict(), "epoch": 3}
    torch.save_safetensors(ckpt, tmp_path / "resume.pt")

    model2, opt2, sched2 = make()
    loaded = torch.load_safetensors(tmp_path / "resume.pt")
    model2.load_state_dict(loaded["model"])
    opt2.load_state_dict(loaded["optim"])
    sched2.load_state_dict(loaded["sched"])
    assert loaded["epoch"] == 3 and sched2.get_last_lr() == sched.get_last_lr()
    for _ in range(2):
        train_step(model, opt, sched, x, y)
        train_step(model2, opt2, sched2, x, y)
    for (name, a), (_, b) in zip(model.state_dict().items(), model2.state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
