"""torch.save / torch.load in PyTorch's own zip-of-pickle checkpoint format.

Without PyTorch: the layout (records, alignment, pickle globals), round trips of every kind of object,
a checkpoint written by PyTorch 2.15 (recorded below) loading with its values, the weights_only
allow-list against payloads that would run a shell command, and clear errors for other formats.
With PyTorch installed (in-process, ``pytest.importorskip``): PyTorch loads rustgrad's checkpoint of a
model plus Adam state and resumes training, and rustgrad loads PyTorch's, both ways with equal values.
"""

import base64
import io
import math
import os
import pickle
import pickletools
import struct
import zipfile
import zlib
from collections import OrderedDict
from fractions import Fraction

import numpy as np
import pytest
import rustgrad as torch
from rustgrad import nn, optim, serialization

# ----- helpers -----


def checkpoint_bytes(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def round_trip(obj, **load_kwargs):
    return torch.load(io.BytesIO(checkpoint_bytes(obj)), **load_kwargs)


def local_headers(data):
    """(name, offset of the entry's data, stored size) for each local file header of a zip."""
    out, off = [], 0
    while data[off : off + 4] == b"PK\x03\x04":
        size, _, n, m = struct.unpack("<IIHH", data[off + 18 : off + 30])
        name = data[off + 30 : off + 30 + n].decode()
        start = off + 30 + n + m
        out.append((name, start, size))
        off = start + size
    return out


def rewrite(data, pkl=None, replace=None, drop=(), add=None):
    """The checkpoint ``data`` with its data.pkl replaced, records replaced/dropped/added."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            rec = name.partition("/")[2]
            if rec in drop:
                continue
            body = src.read(name)
            if rec == "data.pkl" and pkl is not None:
                body = pkl
            if replace and rec in replace:
                body = replace[rec]
            dst.writestr(name, body)
        for rec, body in (add or {}).items():
            dst.writestr(f"archive/{rec}", body)
    return out.getvalue()


def globals_in(pkl):
    return [arg for op, arg, _ in pickletools.genops(pkl) if op.name == "GLOBAL"]


def assert_same(a, b):
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and tuple(a.shape) == tuple(b.shape)
        assert a.requires_grad == b.requires_grad
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    else:
        assert a == b


# ----- the layout -----


def test_layout_records_alignment_and_globals(tmp_path):
    base = torch.arange(12.0).reshape(3, 4)
    path = tmp_path / "my_model.pt"
    torch.save({"w": base, "v": base[1:, ::2], "i": torch.tensor([1, 2])}, path)
    data = path.read_bytes()
    z = zipfile.ZipFile(path)
    names = z.namelist()
    assert names == [
        "my_model/data.pkl",
        "my_model/.format_version",
        "my_model/.storage_alignment",
        "my_model/byteorder",
        "my_model/data/0",
        "my_model/data/1",
        "my_model/version",
        "my_model/.data/serialization_id",
    ]
    assert all(info.compress_type == zipfile.ZIP_STORED for info in z.infolist())
    for name, start, _ in local_headers(data):
        assert start % 64 == 0, name
    assert z.read("my_model/version") == b"3\n"
    assert z.read("my_model/.format_version") == b"1"
    assert z.read("my_model/.storage_alignment") == b"64"
    assert z.read("my_model/byteorder") == b"little"
    sid = z.read("my_model/.data/serialization_id")
    assert len(sid) == 40 and sid.isdigit()
    # the view shares the base's storage record: two storages, not three
    assert z.read("my_model/data/0") == np.arange(12, dtype=np.float32).tobytes()
    assert z.read("my_model/data/1") == np.array([1, 2], dtype=np.int64).tobytes()
    pkl = z.read("my_model/data.pkl")
    assert pkl[:2] == b"\x80\x02"  # pickle protocol 2, as PyTorch
    assert globals_in(pkl) == [
        "torch._utils _rebuild_tensor_v2",
        "torch FloatStorage",
        "collections OrderedDict",
        "torch LongStorage",
    ]
    persistent = [arg for op, arg, _ in pickletools.genops(pkl) if op.name == "BINUNICODE"]
    assert persistent[:4] == ["w", "storage", "0", "cpu"]
    # a file object gets the folder name "archive"
    assert zipfile.ZipFile(io.BytesIO(checkpoint_bytes(base))).namelist()[0] == "archive/data.pkl"


def test_dtype_table_covers_the_ten_dtypes():
    names = [row[0] for row in serialization._DTYPE_ROWS]
    assert names == [
        "bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64",
    ]  # fmt: skip
    storages = {row[0]: row[1] for row in serialization._DTYPE_ROWS}
    assert storages["bfloat16"] == "BFloat16Storage" and storages["int8"] == "CharStorage"
    assert storages["uint8"] == "ByteStorage" and storages["float16"] == "HalfStorage"
    for _, _, np_type, size in serialization._DTYPE_ROWS:
        assert np.dtype(np_type).itemsize == size


@pytest.mark.parametrize("row", serialization._DTYPE_ROWS, ids=lambda r: r[0])
def test_every_dtype_loads_or_says_it_is_missing(row):
    """A storage of each of the ten dtypes: loaded with its values when rustgrad has the dtype, a
    clear error naming it when not (yet)."""
    name, storage, np_type, _ = row
    values = np.array([0, 1, 3, 0, 1, 2], dtype=np.float64)
    raw = values.astype(np.float32).view(np.uint32) >> 16 if name == "bfloat16" else values
    payload = np.asarray(raw).astype(np.dtype(np_type)).tobytes()
    template = checkpoint_bytes(torch.arange(6.0).reshape(2, 3).t())  # a non-contiguous view
    pkl = zipfile.ZipFile(io.BytesIO(template)).read("archive/data.pkl")
    pkl = pkl.replace(b"torch\nFloatStorage\n", f"torch\n{storage}\n".encode())
    data = rewrite(template, pkl=pkl, replace={"data/0": payload})
    if not hasattr(torch, name):
        with pytest.raises(RuntimeError, match=f"dtype torch.{name}, which rustgrad does not implement yet"):
            torch.load(io.BytesIO(data))
        return
    t = torch.load(io.BytesIO(data))
    assert t.dtype == getattr(torch, name) and tuple(t.shape) == (3, 2)
    expected = values.reshape(2, 3).T.astype(bool) if name == "bool" else values.reshape(2, 3).T
    np.testing.assert_array_equal(t.to(torch.float64).numpy(), expected.astype(np.float64))
    again = round_trip(t)
    assert again.dtype == t.dtype
    np.testing.assert_array_equal(again.to(torch.float64).numpy(), expected.astype(np.float64))


# ----- round trips -----


def test_round_trip_plain_values_and_containers():
    obj = {
        "int": 3,
        "big": 2**70,
        "float": 0.1,
        "inf": float("inf"),
        "nan": float("nan"),
        "bool": True,
        "none": None,
        "complex": 1 - 2j,
        "str": "héllo",
        "bytes": b"\x00\xff",
        "bytearray": bytearray(b"ab"),
        "set": {1, 2},
        "list": [1, [2, (3, "4")]],
        "tuple": (1.5,),
        "keys": {0: "int", "0": "str", (1, 2): "tuple"},
        "od": OrderedDict([("b", 1), ("a", 2)]),
        "size": torch.Size([2, 3]),
        "dtypes": [torch.float32, torch.float64, torch.int64, torch.bool],
        "device": torch.device("cpu"),
    }
    loaded = round_trip(obj)
    assert_same(loaded, obj)
    assert type(loaded["size"]) is torch.Size
    assert loaded["dtypes"][0] is torch.float32
    assert type(loaded["od"]) is OrderedDict


def test_round_trip_tensors_views_and_flags():
    torch.manual_seed(0)
    base = torch.randn(4, 6)
    w = torch.randn(3, requires_grad=True)
    obj = {
        "base": base,
        "transposed": base.t(),
        "strided": base[1:, ::2],
        "row": base[2],
        "scalar": torch.tensor(2.5),
        "scalar_int": torch.tensor(-4),
        "empty": torch.zeros(0, 3),
        "empty_int": torch.zeros(2, 0, dtype=torch.int64),
        "mask": torch.tensor([[True, False], [False, True]]),
        "double": torch.randn(2, dtype=torch.float64),
        "leaf": w,
        "nonleaf": w * 2,
    }
    assert not obj["transposed"].is_contiguous() and not obj["strided"].is_contiguous()
    loaded = round_trip(obj)
    assert_same(loaded, obj)
    for name in ("transposed", "strided", "row"):
        assert loaded[name].stride() == obj[name].stride(), name
        assert loaded[name].storage_offset() == obj[name].storage_offset(), name
    assert loaded["leaf"].requires_grad and loaded["leaf"].is_leaf
    assert loaded["nonleaf"].requires_grad and loaded["nonleaf"].grad_fn is None
    assert loaded["scalar"].dim() == 0 and loaded["scalar"].item() == 2.5
    # views load onto one shared memory, as in PyTorch: writing through one shows in the others
    loaded["strided"].mul_(0)
    assert (loaded["base"][1:, ::2] == 0).all() and loaded["base"][0, 0].item() != 0
    assert loaded["transposed"][0, 1].item() == 0


def test_views_at_the_end_of_a_storage_and_saving_again():
    """A view whose rows end before the storage does (base[1:, 2:]) loads with its values and shares
    memory; saving loaded tensors again writes their storage once."""
    base = torch.arange(12.0).reshape(3, 4)
    loaded = round_trip({"corner": base[1:, 2:], "col": base[:, 3], "base": base})
    np.testing.assert_array_equal(loaded["corner"].numpy(), [[6, 7], [10, 11]])
    np.testing.assert_array_equal(loaded["col"].numpy(), [3, 7, 11])
    loaded["corner"].fill_(-1.0)
    assert loaded["base"][2, 3].item() == -1.0 and loaded["col"][2].item() == -1.0
    data = checkpoint_bytes(loaded)
    assert [n for n in zipfile.ZipFile(io.BytesIO(data)).namelist() if "/data/" in n] == ["archive/data/0"]
    again = torch.load(io.BytesIO(data))
    np.testing.assert_array_equal(again["base"].numpy(), loaded["base"].numpy())
    assert again["col"].stride() == (4,) and again["col"].storage_offset() == 3


def test_whole_module_with_weights_only_false():
    """``torch.save(model)`` pickles the module itself: it loads with weights_only=False only."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    data = checkpoint_bytes(model)
    pkl = zipfile.ZipFile(io.BytesIO(data)).read("archive/data.pkl")
    assert "torch.nn.modules.container Sequential" in globals_in(pkl)  # PyTorch's names, mapped back on load
    with pytest.raises(
        pickle.UnpicklingError, match=r"GLOBAL torch\.nn\.modules\.container\.Sequential was not"
    ):
        torch.load(io.BytesIO(data))
    again = torch.load(io.BytesIO(data), weights_only=False)
    x = torch.randn(4, 2)
    np.testing.assert_array_equal(again(x).detach().numpy(), model(x).detach().numpy())
    assert all(type(p) is nn.Parameter and p.requires_grad for p in again.parameters())


def test_same_tensor_twice_is_one_object():
    t = torch.ones(2)
    loaded = round_trip({"a": t, "b": [t]})
    assert loaded["a"] is loaded["b"][0]


def test_storages_are_written_once():
    base = torch.zeros(1000)
    data = checkpoint_bytes([base[i : i + 10] for i in range(0, 1000, 10)])
    records = [n for n in zipfile.ZipFile(io.BytesIO(data)).namelist() if "/data/" in n]
    assert records == ["archive/data/0"]
    assert len(data) < 4000 + 2 * 1000 * 4


def test_parameters_and_module_state_dict():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    frozen = nn.Parameter(torch.ones(2), requires_grad=False)
    obj = {"params": list(model.parameters()), "frozen": frozen, "sd": model.state_dict()}
    loaded = round_trip(obj)
    for p, q in zip(obj["params"], loaded["params"]):
        assert type(q) is nn.Parameter and q.requires_grad and q.is_leaf
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())
    assert type(loaded["frozen"]) is nn.Parameter and not loaded["frozen"].requires_grad
    sd = loaded["sd"]
    assert type(sd) is OrderedDict and list(sd) == list(obj["sd"])
    assert sd._metadata == obj["sd"]._metadata  # kept, as PyTorch keeps it
    fresh = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    fresh.load_state_dict(sd)
    x = torch.randn(5, 3)
    np.testing.assert_array_equal(fresh(x).detach().numpy(), model(x).detach().numpy())


def test_paths_file_objects_and_unseekable_streams(tmp_path):
    obj = {"w": torch.arange(5.0), "n": 1}
    torch.save(obj, str(tmp_path / "a.pt"))
    torch.save(obj, tmp_path / "b.pt")
    with open(tmp_path / "c.pt", "wb") as f:
        torch.save(obj, f)
    for name in ("a.pt", "b.pt", "c.pt"):
        assert_same(torch.load(tmp_path / name), obj)
        assert_same(torch.load(str(tmp_path / name)), obj)
        with open(tmp_path / name, "rb") as f:
            assert_same(torch.load(f), obj)

    class Stream(io.RawIOBase):  # readable, not seekable (a pipe, a socket)
        def __init__(self, data):
            self.src = io.BytesIO(data)

        def readable(self):
            return True

        def readinto(self, b):
            return self.src.readinto(b)

    assert_same(torch.load(Stream((tmp_path / "a.pt").read_bytes())), obj)
    # a checkpoint after other bytes in the same file
    buf = io.BytesIO()
    buf.write(b"header")
    torch.save(obj, buf)
    buf.seek(6)
    assert_same(torch.load(buf), obj)


def test_bad_file_arguments():
    with pytest.raises(AttributeError, match="expected 'f' to be string, path, or a file-like object"):
        torch.save(1, 42)
    with pytest.raises(AttributeError, match="You can only torch.load from a file that is seekable"):
        torch.load(42)
    with pytest.raises(ValueError, match="f must be a file path in order to use the mmap argument"):
        torch.load(io.BytesIO(checkpoint_bytes(1)), mmap=True)
    buf = io.BytesIO()
    torch.save(1, buf, _disable_byteorder_record=True)
    assert "archive/byteorder" not in zipfile.ZipFile(buf).namelist()
    buf.seek(0)
    assert torch.load(buf) == 1


def test_save_keeps_previous_file_when_pickling_fails(tmp_path):
    path = tmp_path / "ckpt.pt"
    torch.save({"w": torch.ones(3)}, path)
    before = path.read_bytes()
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        torch.save({"w": torch.zeros(3), "fn": lambda: 0}, path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["ckpt.pt"]
    with pytest.raises(RuntimeError, match="Parent directory .*nowhere does not exist"):
        torch.save({"w": torch.ones(1)}, tmp_path / "nowhere" / "x.pt")


def test_training_resumes_bit_for_bit(tmp_path):
    """Model + Adam + StepLR saved mid-training and loaded into fresh objects continue exactly alike."""

    def make():
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
        opt = optim.Adam(model.parameters(), lr=1e-2)
        return model, opt, optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)

    def step(model, opt, sched, x, y):
        opt.zero_grad()
        ((model(x) - y) ** 2).mean().backward()
        opt.step()
        sched.step()

    torch.manual_seed(0)
    x, y = torch.randn(16, 4), torch.randn(16, 3)
    model, opt, sched = make()
    for _ in range(3):
        step(model, opt, sched, x, y)
    ckpt = {"model": model.state_dict(), "optim": opt.state_dict(), "sched": sched.state_dict(), "epoch": 3}
    torch.save(ckpt, tmp_path / "resume.pt")
    model2, opt2, sched2 = make()
    loaded = torch.load(tmp_path / "resume.pt")
    model2.load_state_dict(loaded["model"])
    opt2.load_state_dict(loaded["optim"])
    sched2.load_state_dict(loaded["sched"])
    assert loaded["epoch"] == 3 and sched2.get_last_lr() == sched.get_last_lr()
    for _ in range(2):
        step(model, opt, sched, x, y)
        step(model2, opt2, sched2, x, y)
    for (name, a), b in zip(model.state_dict().items(), model2.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)


# ----- a checkpoint written by PyTorch 2.15 -----

# torch.save(obj, buffer) of: base = torch.arange(12.).reshape(3, 4); lin = nn.Linear(2, 2) with weight
# [[1, 2], [3, 4]] and bias [-1, 0.5]; obj = {"base": base, "view": base[1:, ::2], "t": base.t(),
# "sd": lin.state_dict(), "param": nn.Parameter(tensor([0.25, -2.], dtype=float64)),
# "long": tensor([[-3, 7]]), "mask": tensor([True, False, True]), "scalar": tensor(1.5),
# "empty": zeros(0, 2), "grad": ones(2, requires_grad=True), "size": Size([2, 3]), "dtype": float64,
# "nested": [(1, 2.5, "x"), {3: None}]}; zlib-compressed, base64-encoded.
PYTORCH_CHECKPOINT = (
    "eNqlVttvFFUcPnvptl2gFwS5qBUv6Bah7K27W25tRxzEQWgH0BXBZbp7ujsyu9PfzGmhJE2aYAvEF+MfYHzzERMfTHyxf4LESDTx"
    "gcQHgy+++WKMnst2mXPaUmlP9uzszJ7v+32/c/l+M2ZEogh1dKAVrQdtR5ZXrtkz+HDFItbA1DVH17rQJanNh+cAJYqUA01YPoZQ"
    "mbgUNFCaJrbjx0senpi2nUqJ4IbveqWZdBzCiUSxnY736UiriiEiIHHdcS1yXjyMQ7QYomOS0FaM0Gt5ahpixlYC7eMGMiJGdBE6"
    "jKgRWoTOu+Wy6zi4TGy34cfPeRXs4cpJu0ziEO83YQuBrSZs4wpnbHwdumpUQC1Si9baapyye5wyhY3wIvSwH4vQe7fGkNsJPGPC"
    "Dq6DwE4V9ixTEjUii7DLCDFBuwVsD4G9JjxXDLMUK/A8f/hCohij99exXa0R6Fvm4twpeJEyRgnsY4xcyEv0QnN7WTC+QuBVE/aL"
    "SbYtH16T8Gl4neLDBBIcvwD9RmgBDgjsGwQOmnBoeg4Gip10cKmOicWWEw7z/5NFttaQmoM0X5QZ7Pl0IiFjhHzfnyi20WdTlmfV"
    "IbvGyvJ/McFeHAaFruZ6nnSnJxzcWtAcF5uBvBBbaIodYmKPCLFHCRwz4fgdfnPiNgybMMKzdtxGFUYl9jP0UYtb49xZeFNwn2Tc"
    "ITaRb4mJ1AX/KQJvm3CaU9Yt/xq8I1Fqruu0KA1OOQhnKGWEwLt83y3AWSb3nKAbIzBugslX1i9bjuXBeWllcnCBokMELlJ0f79A"
    "vUfgfROKfGZxfYrMwgcSKA+XKIjuuA9ZSMSyuCyyuCIIPiJQMuEqz6LqWRWwJHwBJsQslJszXGGSsZjUSQJVE2oc69s3MdjN3M/T"
    "mzh8TAPRDX1tARwT6lxihcxOYWg0h02yM5rLxsHlWTewT3AFpq4AJIzQqZGosA6u4wZ4t8GfA2JEzvp4emDMaO/o3/+o7wAdxPrY"
    "ms6zC/W2nGdg0vXqFik196WubZMNKMVov/3z11ssJOtr0+5F+ce0TfMpWY5dbdRxg+haRrG2/9VyWSZg+Do8Yuc9/EQBvWi4JWBi"
    "lmCXeZWuHd1I3OXm2IQ4mGlYOP7bHrYmsSdq6EInJFc/nNS1I5sQIFjnh+nXCP3QPk/7l7Qv0f6QdjRKawnt+2hPjjKlN+YmTySZ"
    "ua+jdIesNKVrPWhlfDk247+w46tPe3gFezJ/VuZP61oSPX3+899TsmEW9/RsucQCdawT95gcN6NrBbS5+f9huEm+xHTc69R/2UD+"
    "2Y3k/8+/orU3WVn8nX98/dcG4g9uJH4IhVjIb259cpe9J0TWCTkqh8zp2vHNnD42/0t87d39P19m7hdtCUCrChiRBeR17dimBDzF"
    "+SmsfX7meQ6fjcd+Wn//dqOjLd6WK+c3mkQmziLf/6J6cX3/7EPpxwbOU/KxZ1MHv2mxl7+SXdG1gacUkkwN5fOFXDIzmMnkhtLJ"
    "VDabSQ5l0qnBdCFTyNPboUJ+KJNjKr/7+8HFBNWR4CpDTGxLZ7Cy9axQrr5Hq+hgAdslIW9G0Vq1UCUJFqG9Esn9IMmKyqfyBAtJ"
    "r8RjtqGVBUyFB929S4I/aENK7VGxQeeWsfMxBZtSsUH3lbEPVWxaxQYdU8ayl2LZrVVs0O2UuCo2q2KDtiVjr3Yo2EEVG3QcGfuj"
    "is0tY1f3pGC70Klg82rcoEvI2CUVW1CxwXPeLWF3x5HqKio4ePz6JPDnAfDqxjBmxGIHl20kcihgZvL1XkRcC1uWy1mMV7bfm5mK"
    "N8y2mMB08/Fi7H/t4WXJ"
)


def test_loads_a_checkpoint_written_by_pytorch():
    data = zlib.decompress(base64.b64decode(PYTORCH_CHECKPOINT))
    for weights_only in (True, False):
        obj = torch.load(io.BytesIO(data), weights_only=weights_only)
        base = obj["base"]
        np.testing.assert_array_equal(base.numpy(), np.arange(12.0).reshape(3, 4))
        np.testing.assert_array_equal(obj["view"].numpy(), [[4, 6], [8, 10]])
        assert obj["view"].stride() == (4, 2) and obj["view"].storage_offset() == 4
        assert obj["t"].stride() == (1, 4)
        sd = obj["sd"]
        assert type(sd) is OrderedDict and list(sd) == ["weight", "bias"]
        np.testing.assert_array_equal(sd["weight"].numpy(), [[1, 2], [3, 4]])
        np.testing.assert_array_equal(sd["bias"].numpy(), [-1, 0.5])
        assert not sd["weight"].requires_grad and sd._metadata[""]["version"] == 1
        p = obj["param"]
        assert type(p) is nn.Parameter and p.requires_grad and p.dtype == torch.float64
        np.testing.assert_array_equal(p.detach().numpy(), [0.25, -2.0])
        assert obj["long"].dtype == torch.int64 and obj["long"].tolist() == [[-3, 7]]
        assert obj["mask"].dtype == torch.bool and obj["mask"].tolist() == [True, False, True]
        assert obj["scalar"].dim() == 0 and obj["scalar"].item() == 1.5
        assert tuple(obj["empty"].shape) == (0, 2)
        assert obj["grad"].requires_grad and obj["grad"].is_leaf
        assert type(obj["size"]) is torch.Size and obj["size"] == (2, 3)
        assert obj["dtype"] is torch.float64
        assert obj["nested"] == [(1, 2.5, "x"), {3: None}]
        obj["view"].fill_(-1.0)  # one storage under base, view and t, as in PyTorch
        assert base[1, 2].item() == -1.0 and obj["t"][2, 1].item() == -1.0 and base[1, 1].item() == 5.0


# ----- weights_only: the allow-list -----


class RunsShell:
    """Unpickling this runs a shell command (``os.system``): the classic malicious checkpoint."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


class RunsPopen:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        import subprocess

        return (subprocess.Popen, (["touch", str(self.target)],))


class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    target = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"weights": torch.ones(2), "payload": RunsShell(target)}, path)
    assert "system" in str(globals_in(zipfile.ZipFile(path).read("evil/data.pkl")))
    for load in (lambda: torch.load(path), lambda: torch.load(path, weights_only=True)):
        with pytest.raises(pickle.UnpicklingError) as info:
            load()
        msg = str(info.value)
        assert msg.startswith("Weights only load failed.")
        assert f"Trying to load unsupported GLOBAL {os.system.__module__}.system whose module" in msg
        assert "is blocked" in msg
        assert not target.exists()
    # the same payload in PyTorch's legacy (pre-1.6) layout: header pickles, the object, the storage keys
    head = [0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}]
    legacy = b"".join(pickle.dumps(v, 2) for v in head)
    path.write_bytes(legacy + pickle.dumps(RunsShell(target), 2) + pickle.dumps([], 2))
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        torch.load(path)
    assert not target.exists()
    torch.save([RunsPopen(target)], path)
    with pytest.raises(
        pickle.UnpicklingError, match=r"Unsupported global: GLOBAL (subprocess|commands)\.Popen was not an"
    ):
        torch.load(path)
    assert not target.exists()


@pytest.mark.parametrize(
    "pkl",
    [
        b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00trueq\x00\x85R.",  # GLOBAL + REDUCE
        b"\x80\x02(X\x04\x00\x00\x00trueios\nsystem\n.",  # INST
        b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93X\x04\x00\x00\x001+1\x85R.",  # STACK_GLOBAL
        b"\x80\x02c__builtin__\ngetattr\n.",  # a harmless-looking builtin that is not allowed
        b"\x80\x02ctorch\nSize\n}X\x01\x00\x00\x00xK\x01sb.",  # BUILD setting an attribute of a class
        b"\x80\x02X\x03\x00\x00\x00abcQ.",  # a persistent id that is no storage
        # _rebuild_from_type_v2 (allowed for tensor subclasses) calling something that rebuilds no tensor
        b"\x80\x02ctorch._tensor\n_rebuild_from_type_v2\n(ccollections\nOrderedDict\nctorch\nTensor\n)}tR.",
    ],
)
def test_hand_written_payloads_are_refused(pkl):
    data = rewrite(checkpoint_bytes(torch.ones(1)), pkl=pkl)
    with pytest.raises(
        pickle.UnpicklingError,
        match="Weights only load failed|unknown persistent id 'abc'|not a tensor rebuild",
    ):
        torch.load(io.BytesIO(data))
    assert not hasattr(torch.Size, "x")


def test_safe_globals_allow_listed_classes(tmp_path):
    path = tmp_path / "point.pt"
    torch.save({"p": Point(1, torch.ones(2)), "f": Fraction(1, 3)}, path)
    name = f"{Point.__module__}.Point"
    with pytest.raises(pickle.UnpicklingError, match=f"GLOBAL {name} was not an allowed global"):
        torch.load(path)
    with torch.serialization.safe_globals([Point, Fraction]):
        assert Point in torch.serialization.get_safe_globals()
        loaded = torch.load(path)
    assert type(loaded["p"]) is Point and loaded["p"].x == 1 and loaded["f"] == Fraction(1, 3)
    assert Point not in torch.serialization.get_safe_globals()
    torch.serialization.add_safe_globals([(Point, name), Fraction])  # (object, "module.name") too
    try:
        assert torch.load(path)["p"].y.tolist() == [1.0, 1.0]
    finally:
        torch.serialization.clear_safe_globals()
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)
    full = torch.load(path, weights_only=False)  # the ordinary unpickler: trusted files only
    assert type(full["p"]) is Point and full["f"] == Fraction(1, 3)


def test_weights_only_refuses_numpy_and_an_explicit_pickle_module():
    with pytest.raises(pickle.UnpicklingError, match=r"GLOBAL numpy\.\S+ was not an allowed global"):
        round_trip({"n": np.float64(1.5)})
    assert round_trip({"n": np.float64(1.5)}, weights_only=False)["n"] == 1.5
    with pytest.raises(RuntimeError, match="Can not safely load weights when explicit pickle_module"):
        torch.load(io.BytesIO(checkpoint_bytes(1)), pickle_module=pickle, weights_only=True)
    assert torch.load(io.BytesIO(checkpoint_bytes(1)), pickle_module=pickle) == 1


# ----- other formats and broken files -----

LEGACY_MAGIC = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")


# torch.save(obj, buffer, _use_new_zipfile_serialization=False) by PyTorch 2.15 (the pre-1.6 format) of:
# base = arange(6.).reshape(2, 3); obj = {"a": base, "v": base[1:, 1:], "i": tensor([1, 2]),
# "m": tensor([True, False]), "p": nn.Parameter(ones(1))}; zlib-compressed, base64-encoded.
PYTORCH_LEGACY_CHECKPOINT = (
    "eNp1kktv00AQx/1KAoaW8qY8y9vlEdLEgfhEhVAvWx41F1+QZZxVbeR687c3kUCqlEtDy2fgwJGvxkdA4sDYDi1U6co70oxnf/+Z"
    "2R1rX83k97e1X0sff7xdbI61Vz91sttQLG9BUZRBJqQIReKPeJbHIoVKCd4c/UliKRPu87QfBym0Xc+koPw04H4ef+Y59G0Yllej"
    "YB6JTKLGNE8nL04l6szwjIIh0k00mDEc/tVUKRpADaXIwqjpD2Wc5Kaf8Q/DOOn7kqe5yPxR24RmWV6jgFNmsMmhV0fMtUQE8l0V"
    "NGF485TjdJxeq+usdOxOx7ZRK+sIB0Oqo/5aorHBFKYxfYJjTGfqBMf3Qmo54aGkjnPzTdbnGe+/jENpwlx2cULipIu5stgR5iOq"
    "JdKjmVqnokpjYYMZTGXaBKcrjTN7UYE6K3HOxfkSFeNChZq2sk7T2e/k4mG6023jEtE1oi+WHezgMlN3cKUiX5W45uJ6Sd7Cjf/I"
    "L4RI9slLB2T7me10u71WDzen5FtT8u2CfKci35W45+J+SR7AOuKuBkEWbHHJMxPLR0zIbjlP8YCUVFJ6WCiRyKPCPK6UmhJPXLR2"
    "S2flC9ouOsVTeV88lRlVq7OuQJs1OX1WKQZvakq1VKWu/LvGz8ms0kd7TPv76kFmtQ77xZk/on7TtA=="
)


def test_loads_a_legacy_checkpoint_written_by_pytorch(tmp_path):
    data = zlib.decompress(base64.b64decode(PYTORCH_LEGACY_CHECKPOINT))
    assert data.startswith(LEGACY_MAGIC)
    obj = torch.load(io.BytesIO(data))
    np.testing.assert_array_equal(obj["a"].numpy(), np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(obj["v"].numpy(), [[4, 5]])
    assert obj["v"].storage_offset() == 4 and obj["v"].stride()[1] == 1  # (PyTorch: (3, 1); dim 0 has 1 row)
    assert obj["i"].tolist() == [1, 2] and obj["m"].tolist() == [True, False]
    assert type(obj["p"]) is nn.Parameter and obj["p"].requires_grad
    obj["v"].fill_(-1.0)
    assert obj["a"][1, 1].item() == -1.0  # one storage, as in PyTorch
    with pytest.raises(RuntimeError, match=r"legacy storage list|truncated"):
        torch.load(io.BytesIO(data[:-3]))
    (tmp_path / "legacy.pt").write_bytes(data)
    assert torch.load(tmp_path / "legacy.pt")["i"].tolist() == [1, 2]
    with pytest.raises(
        RuntimeError, match=r"legacy PyTorch checkpoint \(the pre-1\.6 non-zip format.*rustgrad\.load"
    ):
        torch.load_safetensors(tmp_path / "legacy.pt")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"empty \(0 bytes\)"),
        (b"hello world", r"not a PyTorch checkpoint: it starts with bytes b'hello world'"),
        (b"\0" * 257 + b"ustar\0" + b"\0" * 300, r"a tar archive \(PyTorch's format before 0\.4\)"),
    ],
)
def test_other_formats_are_named(tmp_path, content, message):
    path = tmp_path / "other.pt"
    path.write_bytes(content)
    with pytest.raises(RuntimeError, match=f"other\\.pt is .*{message}"):
        torch.load(path)


def test_broken_zip_checkpoints(tmp_path):
    good = checkpoint_bytes({"w": torch.ones(4)})
    path = tmp_path / "cut.pt"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(RuntimeError, match=r"PytorchStreamReader failed reading zip archive.*cut\.pt"):
        torch.load(path)
    with pytest.raises(RuntimeError, match=r"not a PyTorch checkpoint: it has no '<folder>/data\.pkl'"):
        torch.load(io.BytesIO(rewrite(good, drop=("data.pkl",))))
    with pytest.raises(RuntimeError, match=r"has no record 'archive/data/0' for storage 0"):
        torch.load(io.BytesIO(rewrite(good, drop=("data/0",))))
    with pytest.raises(RuntimeError, match=r"holds 8 bytes, but storage 0 \(FloatStorage\) has 4 elements"):
        torch.load(io.BytesIO(rewrite(good, replace={"data/0": b"\0" * 8})))
    with pytest.raises(RuntimeError, match=r"no 'archive/version' record"):
        torch.load(io.BytesIO(rewrite(good, drop=("version",))))
    # a tensor reaching past its storage (a crafted file) is refused, not read out of bounds
    pkl = zipfile.ZipFile(io.BytesIO(good)).read("archive/data.pkl").replace(b"K\x04\x85", b"K\x09\x85")
    with pytest.raises(RuntimeError, match=r"reaches element 8 of a storage of 4 elements"):
        torch.load(io.BytesIO(rewrite(good, pkl=pkl)))


def test_newer_layout_is_named():
    good = checkpoint_bytes({"w": torch.ones(2)})
    assert torch.load(io.BytesIO(rewrite(good, replace={"version": b"10\n"})))["w"].tolist() == [1.0, 1.0]
    pkl = zipfile.ZipFile(io.BytesIO(good)).read("archive/data.pkl").replace(b"storage", b"storeXY")
    data = rewrite(good, pkl=pkl, replace={"version": b"10\n"})
    with pytest.raises(
        RuntimeError, match=r"format version 10, newer than the version 3 this rustgrad reads.*storeXY"
    ):
        torch.load(io.BytesIO(data))


def test_big_endian_checkpoint():
    good = checkpoint_bytes({"f": torch.tensor([1.5, -2.0]), "i": torch.tensor([1, -2])})
    data = rewrite(
        good,
        replace={
            "byteorder": b"big",
            "data/0": np.array([1.5, -2.0], dtype=">f4").tobytes(),
            "data/1": np.array([1, -2], dtype=">i8").tobytes(),
        },
    )
    loaded = torch.load(io.BytesIO(data))
    assert loaded["f"].tolist() == [1.5, -2.0] and loaded["i"].tolist() == [1, -2]


CUDA_MESSAGE = (
    r"Attempting to deserialize object on a CUDA device but torch\.cuda\.is_available\(\) is False\."
)


def test_map_location():
    good = checkpoint_bytes({"w": torch.ones(2)})
    for loc in (None, "cpu", torch.device("cpu"), {"cuda:0": "cpu"}, lambda storage, loc: storage):
        assert torch.load(io.BytesIO(good), map_location=loc)["w"].tolist() == [1.0, 1.0]
    with pytest.raises(RuntimeError, match=CUDA_MESSAGE):
        torch.load(io.BytesIO(good), map_location="cuda:0")
    pkl = zipfile.ZipFile(io.BytesIO(good)).read("archive/data.pkl")
    on_gpu = rewrite(good, pkl=pkl.replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0"))
    with pytest.raises(RuntimeError, match=CUDA_MESSAGE):
        torch.load(io.BytesIO(on_gpu))
    for loc in ("cpu", {"cuda:0": "cpu"}, lambda storage, loc: storage):
        assert torch.load(io.BytesIO(on_gpu), map_location=loc)["w"].tolist() == [1.0, 1.0]


# ----- against real PyTorch (in-process, when it is installed) -----


def plain(obj):
    """``obj`` with tensors of either library replaced by comparable tuples (type, dtype, shape, strides,
    offset, requires_grad, bytes), containers by (type name, items)."""
    if type(obj).__name__ in ("Tensor", "Parameter"):
        data = obj.detach()
        return (
            type(obj).__name__,
            str(obj.dtype),
            tuple(obj.shape),
            tuple(obj.stride()),
            obj.storage_offset(),
            obj.requires_grad,
            data.numpy().tobytes(),
        )
    if isinstance(obj, dict):
        return type(obj).__name__, [(plain(k), plain(v)) for k, v in obj.items()]
    if isinstance(obj, (list, tuple)):
        return type(obj).__name__, [plain(v) for v in obj]
    return type(obj).__name__, repr(obj)


def make(lib):
    model = lib.nn.Sequential(lib.nn.Linear(4, 8), lib.nn.ReLU(), lib.nn.Linear(8, 3))
    return model, lib.optim.Adam(model.parameters(), lr=1e-2)


def train(model, opt, x, y, steps):
    for _ in range(steps):
        opt.zero_grad()
        ((model(x) - y) ** 2).mean().backward()
        opt.step()
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def test_pytorch_loads_rustgrad_checkpoint_and_resumes(tmp_path):
    real = pytest.importorskip("torch")
    torch.manual_seed(0)
    model, opt = make(torch)
    x, y = torch.randn(16, 4), torch.randn(16, 3)
    train(model, opt, x, y, 3)
    base = torch.arange(12.0).reshape(3, 4)
    extra = {"view": base[1:, ::2], "t": base.t(), "size": torch.Size([2, 3]), "dtype": torch.float64}
    ckpt = {"model": model.state_dict(), "optim": opt.state_dict(), "x": x, "y": y, "epoch": 3, **extra}
    torch.save(ckpt, tmp_path / "rustgrad.pt")

    loaded = real.load(tmp_path / "rustgrad.pt")  # weights_only=True: rustgrad's file passes the allow-list
    assert plain(loaded) == plain(ckpt)  # every value bit for bit, same types, strides and offsets
    assert plain(real.load(tmp_path / "rustgrad.pt", mmap=True)) == plain(ckpt)  # needs the 64-byte alignment
    assert loaded["view"].untyped_storage().data_ptr() == loaded["t"].untyped_storage().data_ptr()
    assert loaded["optim"]["state"][0]["step"].item() == 3.0
    buf = io.BytesIO()  # PyTorch writes back what it read: rustgrad reads the same object again
    real.save(loaded, buf)
    assert plain(torch.load(io.BytesIO(buf.getvalue()))) == plain(ckpt)

    tmodel, topt = make(real)
    tmodel.load_state_dict(loaded["model"])
    topt.load_state_dict(loaded["optim"])
    resumed_torch = train(tmodel, topt, loaded["x"], loaded["y"], 2)
    resumed_rustgrad = train(model, opt, x, y, 2)
    assert topt.state_dict()["state"][3]["step"].item() == 5.0
    for name, value in resumed_rustgrad.items():
        # the checkpoint is exact; the two libraries' matmul kernels may round differently in the last bit
        np.testing.assert_allclose(resumed_torch[name], value, rtol=1e-6, atol=1e-7, err_msg=name)


def test_rustgrad_loads_pytorch_checkpoint_and_resumes(tmp_path):
    real = pytest.importorskip("torch")
    real.manual_seed(0)
    model, opt = make(real)
    x, y = real.randn(16, 4), real.randn(16, 3)
    train(model, opt, x, y, 3)
    base = real.arange(12.0).reshape(3, 4)
    extra = {"view": base[1:, ::2], "t": base.t(), "size": real.Size([2, 3]), "dtype": real.float64}
    ckpt = {"model": model.state_dict(), "optim": opt.state_dict(), "x": x, "y": y, "epoch": 3, **extra}
    real.save(ckpt, tmp_path / "pytorch.pt")

    loaded = torch.load(tmp_path / "pytorch.pt")
    assert plain(loaded) == plain(ckpt)
    assert loaded["size"] == (2, 3) and loaded["dtype"] is torch.float64
    loaded["view"].fill_(0.0)  # one shared storage, as in PyTorch
    assert loaded["t"][2, 1].item() == 0.0

    rmodel, ropt = make(torch)
    rmodel.load_state_dict(loaded["model"])
    ropt.load_state_dict(loaded["optim"])
    resumed_rustgrad = train(rmodel, ropt, loaded["x"], loaded["y"], 2)
    resumed_torch = train(model, opt, x, y, 2)
    for name, value in resumed_torch.items():
        np.testing.assert_allclose(resumed_rustgrad[name], value, rtol=1e-6, atol=1e-7, err_msg=name)


def test_rustgrad_loads_a_pytorch_module_with_weights_only_false(tmp_path):
    real = pytest.importorskip("torch")
    real.manual_seed(0)
    model = real.nn.Sequential(real.nn.Linear(2, 3), real.nn.ReLU(), real.nn.Linear(3, 1))
    real.save(model, tmp_path / "module.pt")
    again = torch.load(tmp_path / "module.pt", weights_only=False)  # torch.nn names map to rustgrad.nn
    assert type(again) is nn.Sequential and type(again[0]) is nn.Linear
    x = np.random.default_rng(0).standard_normal((4, 2)).astype(np.float32)
    expected = model(real.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(again(torch.from_numpy(x)).detach().numpy(), expected, rtol=1e-6)


def test_rustgrad_loads_pytorch_legacy_checkpoints(tmp_path):
    real = pytest.importorskip("torch")
    real.manual_seed(0)
    model, opt = make(real)
    train(model, opt, real.randn(8, 4), real.randn(8, 3), 2)
    ckpt = {"model": model.state_dict(), "optim": opt.state_dict(), "mask": real.tensor([True, False])}
    real.save(ckpt, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    assert plain(torch.load(tmp_path / "legacy.pt")) == plain(ckpt)


def test_tensor_attributes_from_pytorch(tmp_path):
    """A tensor saved with a Python attribute (``_rebuild_from_type_v2``) loads; rustgrad tensors hold
    no attributes, so it is dropped with a warning (a Parameter keeps it)."""
    real = pytest.importorskip("torch")
    t = real.ones(3)
    t.tag = 5
    p = real.nn.Parameter(real.zeros(2))
    p.tag = "kept"
    real.save({"t": t, "p": p}, tmp_path / "attrs.pt")
    with pytest.warns(UserWarning, match="the attribute 'tag' saved with a tensor is dropped"):
        loaded = torch.load(tmp_path / "attrs.pt")
    assert loaded["t"].tolist() == [1.0, 1.0, 1.0]
    assert type(loaded["p"]) is nn.Parameter and loaded["p"].tag == "kept"


def test_malicious_checkpoint_messages_match_pytorch(tmp_path):
    real = pytest.importorskip("torch")
    target = tmp_path / "pwned"
    for payload in (RunsShell(target), RunsPopen(target)):
        for saver in (torch.save, real.save):
            buf = io.BytesIO()
            saver({"x": 1, "evil": payload}, buf)
            errors = []
            for loader in (torch.load, real.load):
                with pytest.raises(pickle.UnpicklingError) as info:
                    loader(io.BytesIO(buf.getvalue()))
                errors.append(str(info.value))
            assert errors[0] == errors[1]
    assert not target.exists()


def test_pytorch_dtype_rows_match_pytorch():
    real = pytest.importorskip("torch")
    for name, storage, np_type, size in serialization._DTYPE_ROWS:
        dt = getattr(real, name)
        assert dt.itemsize == size and np.dtype(np_type).itemsize == size, name
        t = real.zeros(2, dtype=dt)
        buf = io.BytesIO()
        real.save(t, buf)
        pkl = zipfile.ZipFile(io.BytesIO(buf.getvalue())).read("archive/data.pkl")
        assert f"torch {storage}" in globals_in(pkl), name
