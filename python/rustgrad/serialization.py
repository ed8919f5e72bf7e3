"""Checkpoints: ``torch.save`` / ``torch.load`` in PyTorch's own format, plus safetensors files.

``save(obj, f)`` writes PyTorch's zip-of-pickle layout, so real PyTorch loads rustgrad's files and
rustgrad loads PyTorch's:

- a zip archive (entries stored, not compressed) whose entries sit under one top folder (the file's
  base name, or ``archive`` for a file object): ``data.pkl`` (the object, pickled with protocol 2),
  ``data/<key>`` (the raw bytes of each storage, each entry aligned to 64 bytes), ``version``,
  ``byteorder``, ``.format_version``, ``.storage_alignment`` and ``.data/serialization_id``;
- in the pickle a tensor is ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
  requires_grad, hooks)`` with the storage as a persistent id ``('storage', torch.<X>Storage, key,
  'cpu', numel)``; tensors that share memory (views) share one storage record, as in PyTorch;
  ``nn.Parameter`` is ``torch._utils._rebuild_parameter``; ``Size``, ``device`` and dtypes are the
  ``torch`` globals of the same names.

``load(f)`` reads that layout. With ``weights_only=True`` (the default, as in PyTorch 2.6+) the pickle
goes through an allow-list unpickler: only tensors, storages, ``Size``/``device``/dtypes, containers,
numbers, strings, and the globals registered with ``add_safe_globals`` can be built, so a checkpoint
cannot run code; anything else raises ``pickle.UnpicklingError`` ("Weights only load failed ...").
``load`` also reads PyTorch's legacy (pre-1.6, non-zip) format and safetensors files (rustgrad's
checkpoints before this format), and names the format it found when a file is something else.

``save_safetensors`` / ``load_safetensors`` keep the safetensors format under their own names.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import io
import json
import math
import os
import pickle
import secrets
import struct
import sys
import tempfile
import warnings
import zipfile
from collections import Counter, OrderedDict
from collections.abc import Iterator
from typing import Any, Callable, ClassVar

import numpy as np

import rustgrad
from rustgrad import _rustgrad
from rustgrad._glue import Size, _check_device, device
from rustgrad._rustgrad import Tensor

__all__ = [
    "DEFAULT_PROTOCOL",
    "add_safe_globals",
    "clear_safe_globals",
    "get_safe_globals",
    "load",
    "load_safetensors",
    "safe_globals",
    "save",
    "save_safetensors",
]

DEFAULT_PROTOCOL = 2  # the pickle protocol torch.save uses
_STORAGE_ALIGNMENT = 64
_ZIP_VERSION = 3  # the newest ``version`` record this module knows (what PyTorch 2.x writes)
_FORMAT_VERSION = 1  # the ``.format_version`` record

# ----- the dtype table: one row per dtype -----
#
# (dtype name, PyTorch's legacy typed-storage class, numpy type of the raw elements (little-endian),
#  element size).  bfloat16 has no numpy type: its raw elements are read as uint16 and reinterpreted.
# A row whose dtype rustgrad does not have yet (``hasattr(rustgrad, name)`` is False) raises a clear
# error when a checkpoint holds it.
_DTYPE_ROWS = (
    ("bool", "BoolStorage", "|b1", 1),
    ("uint8", "ByteStorage", "|u1", 1),
    ("int8", "CharStorage", "|i1", 1),
    ("int16", "ShortStorage", "<i2", 2),
    ("int32", "IntStorage", "<i4", 4),
    ("int64", "LongStorage", "<i8", 8),
    ("float16", "HalfStorage", "<f2", 2),
    ("bfloat16", "BFloat16Storage", "<u2", 2),
    ("float32", "FloatStorage", "<f4", 4),
    ("float64", "DoubleStorage", "<f8", 8),
)
_BY_DTYPE = {row[0]: row for row in _DTYPE_ROWS}
_BY_STORAGE = {row[1]: row for row in _DTYPE_ROWS}
# Typed storages of PyTorch dtypes rustgrad does not implement (named in the error).
_OTHER_STORAGES = {
    "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128",
    "ComplexHalfStorage": "complex32",
    "QInt8Storage": "qint8",
    "QUInt8Storage": "quint8",
    "QInt32Storage": "qint32",
    "QUInt4x2Storage": "quint4x2",
    "QUInt2x4Storage": "quint2x4",
}


def _dtype_name(dtype: Any) -> str:
    return str(dtype).rpartition(".")[2]


def _rustgrad_dtype(name: str) -> Any:
    """rustgrad's dtype called ``name``, or a RuntimeError saying the dtype is not implemented yet."""
    dt = getattr(rustgrad, name, None)
    if isinstance(dt, rustgrad.dtype):
        return dt
    raise RuntimeError(
        f"rustgrad.load: the checkpoint uses dtype torch.{name}, which rustgrad does not implement yet"
    )


# ----- globals written into / read from the pickle -----


class _Global:
    """A name ``module.name`` pickled as a GLOBAL opcode (PyTorch's functions and classes, which
    need not be importable here)."""

    __slots__ = ("module", "name")

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def __call__(self, *args: Any) -> Any:  # pickle requires reduce functions to be callable
        raise TypeError(f"{self.module}.{self.name} is only a name for pickling")

    def __repr__(self) -> str:
        return f"{self.module}.{self.name}"


_G_REBUILD_TENSOR = _Global("torch._utils", "_rebuild_tensor_v2")
_G_REBUILD_PARAMETER = _Global("torch._utils", "_rebuild_parameter")
_G_SIZE = _Global("torch", "Size")
_G_DEVICE = _Global("torch", "device")
_G_STORAGE = {row[1]: _Global("torch", row[1]) for row in _DTYPE_ROWS}


class _StorageType:
    """What a ``torch.<X>Storage`` global (or ``torch.storage.UntypedStorage``) unpickles to."""

    __slots__ = ("dtype_name", "name")

    def __init__(self, name: str, dtype_name: str | None) -> None:
        self.name, self.dtype_name = name, dtype_name

    def __call__(self, *args: Any) -> Any:
        raise pickle.UnpicklingError(f"torch.{self.name} cannot be called while loading a checkpoint")


class _Storage:
    """A loaded storage record: a flat writable numpy array of its elements (raw bytes for an untyped
    storage), shared by the tensors on it."""

    __slots__ = ("array", "big_endian", "copied", "dtype_name", "roots")

    def __init__(self, array: np.ndarray, dtype_name: str | None, big_endian: bool) -> None:
        self.array, self.dtype_name, self.big_endian = array, dtype_name, big_endian
        self.roots: dict[str, Tensor] = {}  # dtype name -> the whole storage as a 1-D tensor
        self.copied = False  # some tensor holds a converted copy of the elements, not the memory


# ----- saving -----


class _StorageRecord:
    """One storage to write: a span of memory (start address, bytes) holding elements of one dtype."""

    __slots__ = ("dtype_name", "key", "nbytes", "start")

    def __init__(self, start: int, nbytes: int, dtype_name: str) -> None:
        self.start, self.nbytes, self.dtype_name = start, nbytes, dtype_name
        self.key = ""  # given when the pickle first refers to it

    def payload(self) -> memoryview:
        """The span's bytes, read in place: it lies inside the memory of tensors the pickler keeps alive."""
        if not self.nbytes:
            return memoryview(b"")
        return memoryview((ctypes.c_ubyte * self.nbytes).from_address(self.start)).cast("B")


def _span(t: Tensor) -> tuple[str, int, int]:
    """(dtype name, start address of ``t``'s storage, bytes from there to one past ``t``'s last element)."""
    name = _dtype_name(t.dtype)
    if name not in _BY_DTYPE:
        raise RuntimeError(f"rustgrad.save: cannot save a tensor of dtype {t.dtype}")
    size = t.element_size()
    start = t.data_ptr() - t.storage_offset() * size
    if t.numel() == 0:
        return name, start, 0
    last = t.storage_offset() + sum((n - 1) * s for n, s in zip(t.shape, t.stride()))
    return name, start, (last + 1) * size


def _group_storages(tensors: list) -> dict:
    """Maps each tensor's (dtype, storage start) to the _StorageRecord it is written in.

    Tensors whose memory spans overlap (views of one storage, including tensors that share a numpy
    buffer) share one record covering the union of their spans, as PyTorch writes one storage per
    memory block; a view's ``_base`` widens the record to the whole allocation when it is known.
    """
    spans: dict[tuple[str, int], int] = {}
    for t in tensors:
        for u in (t, t._base):
            if u is not None:
                name, start, nbytes = _span(u)
                spans[(name, start)] = max(spans.get((name, start), 0), nbytes)
    out: dict = {}
    current = None
    for (name, start), nbytes in sorted(spans.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        if current is not None and current.dtype_name == name and start < current.start + current.nbytes:
            current.nbytes = max(current.nbytes, start + nbytes - current.start)
        else:
            current = _StorageRecord(start, nbytes, name)
        out[(name, start)] = current
    return out


class _Pickler(pickle._Pickler):  # the Python pickler: its save_global can write names of absent modules
    """Pickles ``obj`` as PyTorch does: tensors as ``_rebuild_tensor_v2`` calls on shared storage records.

    With ``groups=None`` it only collects the tensors (``self.tensors``) for ``_group_storages``.
    """

    def __init__(self, file: Any, protocol: int, groups: dict | None) -> None:
        super().__init__(file, protocol)
        self.groups = groups
        self.tensors: list[Tensor] = []
        self.records: list[_StorageRecord] = []  # in key order

    def tensor_args(self, t: Tensor) -> tuple:
        self.tensors.append(t)  # alive (its memory unmoved) until the storages are written
        if self.groups is None:
            return (None, 0)
        name, start, nbytes = _span(t)
        rec = self.groups.get((name, start))
        if rec is None or start + nbytes > rec.start + rec.nbytes or (start - rec.start) % t.element_size():
            raise RuntimeError("rustgrad.save: a tensor changed while the object was being pickled")
        if not rec.key:
            rec.key = str(len(self.records))
            self.records.append(rec)
        return (rec, t.storage_offset() + (start - rec.start) // t.element_size())

    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, _StorageRecord):
            itemsize = _BY_DTYPE[obj.dtype_name][3]
            return (
                "storage",
                _G_STORAGE[_BY_DTYPE[obj.dtype_name][1]],
                obj.key,
                "cpu",
                obj.nbytes // itemsize,
            )
        return None

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, (_Global, rustgrad.dtype)):
            return "global"  # save_global below writes the name
        if isinstance(obj, Tensor):
            if isinstance(obj, _parameter_class()):
                return (_G_REBUILD_PARAMETER, (obj.data, obj.requires_grad, OrderedDict()))
            rec, offset = self.tensor_args(obj)
            args: tuple = (
                rec,
                offset,
                tuple(obj.shape),
                tuple(obj.stride()),
                obj.requires_grad,
                OrderedDict(),
            )
            return (_G_REBUILD_TENSOR, args)
        if isinstance(obj, Size):
            return (_G_SIZE, (tuple(obj),))
        if isinstance(obj, device):
            return (_G_DEVICE, (str(obj),))
        return NotImplemented

    def save_global(self, obj: Any, name: Any = None) -> None:
        if isinstance(obj, _Global):
            module, name = obj.module, obj.name
        elif isinstance(obj, rustgrad.dtype):
            module, name = "torch", _dtype_name(obj)
        elif (mapped := _torch_name(obj)) is not None:
            module, name = mapped
        else:
            super().save_global(obj, name)  # type: ignore[misc]  # (typeshed omits it)
            return
        self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode())  # type: ignore[attr-defined]
        self.memoize(obj)  # type: ignore[attr-defined]


def _torch_name(obj: Any) -> tuple[str, str] | None:
    """PyTorch's (module, name) for a public rustgrad class or function (``rustgrad.nn.modules.linear.
    Linear`` is ``torch.nn.modules.linear.Linear``), so that a pickled module names PyTorch's classes;
    ``load`` maps them back. None for anything else (private modules keep their own names)."""
    module, name = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(name, str) or "." in name or name.startswith("_"):
        return None
    parts = module.split(".")
    if parts[0] != "rustgrad" or any(p.startswith("_") for p in parts):
        return None
    return ".".join(["torch", *parts[1:]]), name


def _parameter_class() -> type:
    from rustgrad.nn.parameter import Parameter  # nn imports this module's package: import late

    return Parameter


class _AlignedZipWriter:
    """Writes stored (uncompressed) zip entries whose data starts at a multiple of 64 bytes, the
    padding being an extra field in the local header as PyTorch's writer does."""

    def __init__(self, fileobj: Any) -> None:
        self.zf = zipfile.ZipFile(fileobj, "w", compression=zipfile.ZIP_STORED, allowZip64=True)

    def write(self, name: str, data: Any) -> None:
        size = memoryview(data).nbytes
        info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_STORED
        info.file_size = size
        zip64 = size >= 1 << 30  # decided here, so the header length (and the padding) is known
        header = 30 + len(name.encode()) + 4 + (20 if zip64 else 0)
        pad = -(self.zf.start_dir + header) % _STORAGE_ALIGNMENT
        info.extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad
        with self.zf.open(info, "w", force_zip64=zip64) as out:
            out.write(data)

    def close(self) -> None:
        self.zf.close()


def _write_checkpoint(obj: Any, fileobj: Any, folder: str, protocol: int, disable_byteorder: bool) -> None:
    collector = _Pickler(io.BytesIO(), protocol, None)  # first pass: which tensors, on which memory
    collector.dump(obj)
    buf = io.BytesIO()
    pickler = _Pickler(buf, protocol, _group_storages(collector.tensors))
    pickler.dump(obj)
    records = pickler.records
    z = _AlignedZipWriter(fileobj)
    z.write(f"{folder}/data.pkl", buf.getbuffer())
    z.write(f"{folder}/.format_version", str(_FORMAT_VERSION).encode())
    z.write(f"{folder}/.storage_alignment", str(_STORAGE_ALIGNMENT).encode())
    if not disable_byteorder:
        z.write(f"{folder}/byteorder", sys.byteorder.encode())
    for rec in records:
        z.write(f"{folder}/data/{rec.key}", rec.payload())
    z.write(f"{folder}/version", f"{_ZIP_VERSION}\n".encode())
    z.write(f"{folder}/.data/serialization_id", f"{secrets.randbits(128):040d}".encode())
    z.close()
    del collector, pickler  # they kept every pickled tensor alive until its bytes were copied


def save(
    obj: Any,
    f: Any,
    pickle_module: Any = pickle,
    pickle_protocol: int = DEFAULT_PROTOCOL,
    _use_new_zipfile_serialization: bool = True,
    _disable_byteorder_record: bool = False,
) -> None:
    """Saves ``obj`` to ``f`` (a path or a binary file object) in PyTorch's zip checkpoint format.

    ``obj`` is anything picklable holding tensors: a ``state_dict``, an optimizer's ``state_dict``,
    nested dicts/lists/tuples, numbers, strings, ``Size``, dtypes, ``nn.Parameter``. Tensors that share
    memory are written once, with their offsets and strides. A path is written atomically (a temporary
    file renamed over it). See https://pytorch.org/docs/stable/generated/torch.save.html
    """
    if pickle_module is not None and pickle_module is not pickle:
        raise ValueError("rustgrad.save: only the standard pickle module is supported")
    if not _use_new_zipfile_serialization:
        raise ValueError(
            "rustgrad.save writes only the zip checkpoint format (_use_new_zipfile_serialization=True)"
        )
    if isinstance(f, (str, os.PathLike)):
        path = os.fspath(f)
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise RuntimeError(f"Parent directory {os.path.dirname(path) or parent} does not exist.")
        folder = os.path.splitext(os.path.basename(path))[0] or "archive"
        with _atomic_writer(path) as out:
            _write_checkpoint(obj, out, folder, pickle_protocol, _disable_byteorder_record)
        return
    if not hasattr(f, "write"):
        raise AttributeError(
            "expected 'f' to be string, path, or a file-like object with a 'write' attribute"
        )
    _write_checkpoint(obj, f, "archive", pickle_protocol, _disable_byteorder_record)


@contextlib.contextmanager
def _atomic_writer(path: str) -> Iterator[Any]:
    """A file in ``path``'s directory, renamed over ``path`` when the block succeeds (removed if not)."""
    fd, tmp = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=os.path.dirname(path) or "."
    )
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# ----- loading: the allow-list -----

_safe_globals: dict[str, Any] = {}  # "module.name" -> object, registered with add_safe_globals
_BLOCKED_MODULES = ("sys", "os", "posix", "nt")


def _full_name(obj: Any) -> str:
    if isinstance(obj, tuple):  # (object, "module.name") as in PyTorch
        return obj[1]
    return f"{obj.__module__}.{obj.__qualname__}"


def add_safe_globals(safe_globals: list) -> None:
    """Allows ``load(weights_only=True)`` to build these classes/functions (trust them first).

    Each item is an object, or ``(object, "module.name")`` for an object pickled under another name.
    See https://pytorch.org/docs/stable/notes/serialization.html#torch.serialization.add_safe_globals
    """
    for g in safe_globals:
        obj, name = (g[0] if isinstance(g, tuple) else g), _full_name(g)
        _safe_globals[name] = obj
        if name.startswith("rustgrad."):  # rustgrad's classes are pickled under PyTorch's names
            _safe_globals["torch." + name[len("rustgrad.") :]] = obj


def get_safe_globals() -> list:
    """The objects registered with ``add_safe_globals``."""
    seen: dict[int, Any] = {}
    for obj in _safe_globals.values():
        seen.setdefault(id(obj), obj)
    return list(seen.values())


def clear_safe_globals() -> None:
    """Forgets every object registered with ``add_safe_globals``."""
    _safe_globals.clear()


class safe_globals:  # PyTorch's (lower-case) name
    """Context manager: ``add_safe_globals(globals)`` inside the block only."""

    def __init__(self, safe_globals: list) -> None:
        self.globals = safe_globals

    def __enter__(self) -> None:
        self.saved = dict(_safe_globals)
        add_safe_globals(self.globals)

    def __exit__(self, *exc: object) -> None:
        _safe_globals.clear()
        _safe_globals.update(self.saved)


_UNSAFE_ADVICE = (
    "In PyTorch 2.6, we changed the default value of the `weights_only` argument in `torch.load` from "
    "`False` to `True`. Re-running `torch.load` with `weights_only` set to `False` will likely succeed, "
    "but it can result in arbitrary code execution. Do it only if you got the file from a trusted source."
)
_DOCS = (
    "\n\nCheck the documentation of torch.load to learn more about types accepted by default with "
    "weights_only https://pytorch.org/docs/stable/generated/torch.load.html."
)


def _weights_only_error(module: str, name: str) -> pickle.UnpicklingError:
    """PyTorch's message for a global the allow-list refuses (the module blocked, or not allowed)."""
    full = name if module == "builtins" else f"{module}.{name}"
    if module in _BLOCKED_MODULES:
        msg = (
            f"Weights only load failed. {_UNSAFE_ADVICE}\n\n\n"
            f"Trying to load unsupported GLOBAL {full} whose module {module} is blocked."
        )
    else:
        msg = (
            "Weights only load failed. This file can still be loaded, to do so you have two options, "
            "\033[1mdo those steps only if you trust the source of the checkpoint\033[0m. "
            f"\n\t(1) {_UNSAFE_ADVICE}\n\t(2) Alternatively, to load with `weights_only=True` please check "
            "the recommended steps in the following error message.\n\tWeightsUnpickler error: "
            f"Unsupported global: GLOBAL {full} was not an allowed global by default. Please use "
            f"`torch.serialization.add_safe_globals([{full}])` or the "
            f"`torch.serialization.safe_globals([{full}])` context manager to allowlist this global "
            "if you trust this class/function."
        )
    return pickle.UnpicklingError(msg + _DOCS)


# ----- loading: rebuilding tensors -----

_CUDA_ERROR = (
    "Attempting to deserialize object on a CUDA device but torch.cuda.is_available() is False. If you are "
    "running on a CPU-only machine, please use torch.load with map_location=torch.device('cpu') to map "
    "your storages to the CPU."
)


def _check_location(location: str) -> None:
    """Raises PyTorch's error for a storage that would land anywhere but on the CPU."""
    kind = str(location).partition(":")[0]
    if kind == "cuda":
        raise RuntimeError(_CUDA_ERROR)
    if kind != "cpu":
        device(location)  # raises rustgrad's error naming the device


def _widened(arr: np.ndarray, name: str) -> np.ndarray:
    """``arr`` as a type ``from_numpy`` takes (float64, int64 or bool), for a cast to dtype ``name``."""
    if name == "bool":
        return arr.astype(np.bool_)
    if name == "bfloat16":  # the upper half of a float32: exact
        return (arr.astype(np.uint32) << 16).view(np.float32)
    return arr.astype(np.float64 if name.startswith(("float", "bfloat")) else np.int64)


def _tensor_from_array(arr: np.ndarray, name: str) -> Tensor:
    """A rustgrad tensor of dtype ``name`` over ``arr`` (sharing its memory when ``from_numpy`` takes
    that numpy type; otherwise a converted copy)."""
    dt = _rustgrad_dtype(name)
    if name != "bfloat16":
        try:
            t = rustgrad.from_numpy(arr)
        except TypeError:
            pass  # numpy interop of this dtype is not there yet: convert below
        else:
            return t if t.dtype == dt else t.to(dt)
    try:
        return rustgrad.from_numpy(np.ascontiguousarray(_widened(arr, name))).to(dt)
    except (TypeError, RuntimeError) as e:
        raise RuntimeError(f"rustgrad.load: cannot build a tensor of dtype torch.{name}: {e}") from e


def _ints(value: Any, what: str) -> tuple:
    if not isinstance(value, (tuple, list)) or not all(type(v) is int and v >= 0 for v in value):
        raise pickle.UnpicklingError(
            f"rustgrad.load: a tensor's {what} is not a tuple of ints >= 0: {value!r:.80}"
        )
    return tuple(value)


def _rebuild(
    storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any, dtype_name: str | None
) -> Tensor:
    if not isinstance(storage, _Storage) or not isinstance(storage.array, np.ndarray):
        raise pickle.UnpicklingError(f"rustgrad.load: a tensor's storage is a {type(storage).__name__}")
    size, stride = _ints(size, "size"), _ints(stride, "stride")
    if type(offset) is not int or offset < 0 or len(size) != len(stride):
        raise pickle.UnpicklingError(
            f"rustgrad.load: bad tensor geometry (offset {offset!r:.20}, size {size}, stride {stride})"
        )
    name = dtype_name or storage.dtype_name
    if name is None:
        raise pickle.UnpicklingError("rustgrad.load: a tensor on an untyped storage has no dtype")
    arr = storage.array
    if storage.dtype_name is None:  # an untyped storage (bytes): the tensor's dtype says how to read it
        row = _BY_DTYPE.get(name)
        if row is None:
            _rustgrad_dtype(name)  # raises: not a dtype rustgrad has
            raise RuntimeError(f"rustgrad.load: cannot load a tensor of dtype torch.{name}")
        if arr.nbytes % row[3]:
            raise RuntimeError(
                f"rustgrad.load: an untyped storage of {arr.nbytes} bytes does not hold torch.{name}"
            )
        arr = _untyped_view(storage, row)
    if math.prod(size) == 0:
        t = _tensor_from_array(np.empty(size, dtype=arr.dtype), name)
    else:
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= arr.size:
            raise RuntimeError(
                f"rustgrad.load: a tensor of size {list(size)}, stride {list(stride)} and offset {offset} "
                f"reaches element {last} of a storage of {arr.size} elements"
            )
        root = storage.roots.get(name)
        if root is None:  # the whole storage as one tensor: the tensors on it are views of it
            root = storage.roots[name] = _tensor_from_array(arr, name)
            address = arr.__array_interface__["data"][0]
            storage.copied = not address <= root.data_ptr() < address + max(arr.nbytes, 1)
        view = _strided_view(root, offset, size, stride)
        if view is not None:
            t = view
        else:  # a layout slicing cannot make: the same memory, its storage starting at the tensor
            strides = tuple(s * arr.itemsize for s in stride)
            t = _tensor_from_array(np.lib.stride_tricks.as_strided(arr[offset:], size, strides), name)
    if requires_grad is True:
        t.requires_grad_(True)
    return t


def _strided_view(root: Tensor, offset: int, size: tuple, stride: tuple) -> Tensor | None:
    """The 1-D ``root`` seen with ``size``/``stride`` from element ``offset`` (a non-view tensor sharing
    its storage), made by slicing and splitting dimensions; None when the layout cannot be made so
    (overlapping dimensions, or rows that do not fit whole in the storage). Dimensions of size 1 get
    the stride ``unsqueeze`` gives them (PyTorch's may differ there; it never matters for indexing)."""
    kept = sorted((d for d in range(len(size)) if size[d] > 1 and stride[d] > 0), key=lambda d: -stride[d])
    if not kept:
        x = root[offset]
    elif len(kept) == 1:
        n, s = size[kept[0]], stride[kept[0]]
        x = root[offset : offset + (n - 1) * s + 1 : s]
    else:
        # Rows of the largest stride, cut from the storage at a start q <= offset chosen so that every
        # row fits (the last one included): the tensor's rows then start `offset - q` into each.
        n1, s1 = size[kept[0]], stride[kept[0]]
        reach = 1 + sum((size[d] - 1) * stride[d] for d in kept[1:])
        q = min(offset, root.shape[0] - n1 * s1)
        if q < max(0, offset + reach - s1):
            return None
        x = root[q : q + n1 * s1].view(n1, s1)[:, offset - q :]
        # Split each row into blocks of the next stride; the last split keeps each block's first element.
        for d in kept[1:]:
            if size[d] * stride[d] > x.shape[-1]:
                return None
            x = x[..., : size[d] * stride[d]]
            x = x.view(*x.shape[:-1], size[d], stride[d])
        x = x[..., 0]
    if len(kept) > 1:
        x = x.permute(*sorted(range(len(kept)), key=lambda i: kept[i]))  # back to the saved order
    for d in range(len(size)):
        if d not in kept:
            x = x.unsqueeze(d)
    if any(n > 1 and s == 0 for n, s in zip(size, stride)):
        x = x.expand(*size)
    return x.detach()


def _untyped_view(storage: _Storage, row: tuple) -> np.ndarray:
    raw = storage.array
    if storage.big_endian:  # a big-endian file: elements converted, not shared
        return raw.view(np.dtype(row[2]).newbyteorder(">")).astype(np.dtype(row[2]))
    return raw.view(np.dtype(row[2]))


def _rebuild_tensor_v2(
    storage: Any,
    storage_offset: Any,
    size: Any,
    stride: Any,
    requires_grad: Any = False,
    backward_hooks: Any = None,
    metadata: Any = None,
) -> Tensor:
    """PyTorch's ``torch._utils._rebuild_tensor_v2``: a tensor over a loaded storage."""
    return _rebuild(storage, storage_offset, size, stride, requires_grad, None)


def _rebuild_tensor_v3(
    storage: Any,
    storage_offset: Any,
    size: Any,
    stride: Any,
    requires_grad: Any,
    backward_hooks: Any,
    dtype: Any,
    metadata: Any = None,
) -> Tensor:
    """PyTorch's ``torch._utils._rebuild_tensor_v3``: a tensor of ``dtype`` over an untyped storage."""
    return _rebuild(storage, storage_offset, size, stride, requires_grad, _dtype_name(dtype))


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any) -> Tensor:
    """PyTorch's ``torch._utils._rebuild_tensor`` (no requires_grad)."""
    return _rebuild(storage, storage_offset, size, stride, False, None)


def _rebuild_parameter(data: Any, requires_grad: Any, backward_hooks: Any = None) -> Any:
    """PyTorch's ``torch._utils._rebuild_parameter``: an ``nn.Parameter`` over ``data``."""
    if not isinstance(data, Tensor):
        raise pickle.UnpicklingError(f"rustgrad.load: a Parameter's data is a {type(data).__name__}")
    return _parameter_class()(data, bool(requires_grad))


def _rebuild_parameter_with_state(data: Any, requires_grad: Any, backward_hooks: Any, state: Any) -> Any:
    """PyTorch's ``torch._utils._rebuild_parameter_with_state``: a Parameter plus its attributes."""
    param = _rebuild_parameter(data, requires_grad)
    _set_state(param, state)
    return param


def _set_state(obj: Any, state: Any) -> None:
    """Sets a rebuilt tensor's saved attributes (plain names only: never ``__class__`` and the like)."""
    if isinstance(state, tuple) and len(state) == 2:  # (dict state, slots state)
        state = {**(state[0] or {}), **(state[1] or {})}
    if isinstance(state, dict):
        for k, v in state.items():
            if not isinstance(k, str) or k.startswith("__"):
                raise pickle.UnpicklingError(f"rustgrad.load: a tensor attribute named {k!r:.40}")
            try:
                setattr(obj, k, v)
            except AttributeError:  # a plain rustgrad Tensor has no __dict__
                warnings.warn(
                    f"rustgrad.load: the attribute '{k}' saved with a tensor is dropped: rustgrad tensors "
                    "hold no custom attributes",
                    stacklevel=2,
                )


def _rebuild_from_type_v2(func: Any, new_type: Any, args: Any, state: Any) -> Any:
    """PyTorch's ``torch._tensor._rebuild_from_type_v2``: a tensor of a subclass, plus its attributes."""
    if func not in _TENSOR_REBUILDERS or not (isinstance(new_type, type) and issubclass(new_type, Tensor)):
        raise pickle.UnpicklingError(
            f"rustgrad.load: _rebuild_from_type_v2 of {func!r:.60} into {new_type!r:.60}: not a tensor rebuild"
        )
    ret = func(*args)
    if type(ret) is not new_type:
        ret = Tensor.__new__(new_type, ret)
    _set_state(ret, state)
    return ret


_TENSOR_REBUILDERS = (
    _rebuild_tensor_v2,
    _rebuild_tensor_v3,
    _rebuild_tensor,
    _rebuild_parameter,
    _rebuild_parameter_with_state,
)


def _unsupported_rebuild(name: str) -> Callable:
    def rebuild(*args: Any) -> Any:
        raise RuntimeError(
            f"rustgrad.load: the checkpoint holds a tensor that torch._utils.{name} rebuilds (sparse, "
            "quantized, nested, meta or device tensors), which rustgrad does not support"
        )

    return rebuild


# Every PyTorch dtype name, for naming the ones rustgrad lacks.
_TORCH_DTYPE_NAMES = {row[0] for row in _DTYPE_ROWS} | {
    "uint16",
    "uint32",
    "uint64",
    "complex32",
    "complex64",
    "complex128",
    "float8_e4m3fn",
    "float8_e5m2",
    "float8_e4m3fnuz",
    "float8_e5m2fnuz",
    "float8_e8m0fnu",
    "qint8",
    "quint8",
    "qint32",
    "quint4x2",
    "quint2x4",
    "bits8",
    "bits16",
    "bits1x8",
    "bits2x4",
    "bits4x2",
}


def _torch_global(module: str, name: str) -> Any:
    """What PyTorch's global ``module.name`` stands for here, or None if it is not one of the names a
    checkpoint of tensors uses."""
    if module == "torch._utils":
        table = {
            "_rebuild_tensor_v2": _rebuild_tensor_v2,
            "_rebuild_tensor_v3": _rebuild_tensor_v3,
            "_rebuild_tensor": _rebuild_tensor,
            "_rebuild_parameter": _rebuild_parameter,
            "_rebuild_parameter_with_state": _rebuild_parameter_with_state,
        }
        if name in table:
            return table[name]
        if name.startswith("_rebuild_"):
            return _unsupported_rebuild(name)
        return None
    if module == "torch._tensor" and name in ("_rebuild_from_type_v2", "_rebuild_from_type"):
        return _rebuild_from_type_v2  # the same arguments in both
    if module in ("torch", "torch.storage", "torch.cuda") and name.endswith("Storage"):
        if name in _BY_STORAGE:
            return _StorageType(name, _BY_STORAGE[name][0])
        if name == "UntypedStorage":
            return _StorageType(name, None)
        if name in _OTHER_STORAGES:
            _rustgrad_dtype(_OTHER_STORAGES[name])  # raises, naming the dtype
        return None
    if module == "torch":
        if name in _TORCH_DTYPE_NAMES:
            return _rustgrad_dtype(name)
        return {"Size": Size, "device": device, "Tensor": Tensor}.get(name)
    if (module, name) in (("torch.nn.parameter", "Parameter"), ("torch.nn", "Parameter")):
        return _parameter_class()
    return None


# Other globals ``weights_only=True`` allows, as PyTorch does by default.
_SAFE_PLAIN = {
    ("collections", "OrderedDict"): OrderedDict,
    ("collections", "Counter"): Counter,
    ("builtins", "set"): set,
    ("builtins", "bytearray"): bytearray,
    ("builtins", "complex"): complex,
    ("_codecs", "encode"): __import__("_codecs").encode,  # how protocol 2 pickles bytes
}


def _rustgrad_equivalent(module: str, name: str) -> Any:
    """For ``weights_only=False``: ``torch.a.b.Name`` looked up as ``rustgrad.a.b.Name`` (or in a
    parent package of it)."""
    parts = ["rustgrad", *module.split(".")[1:]]
    while parts:
        with contextlib.suppress(ImportError):
            mod = importlib.import_module(".".join(parts))
            if hasattr(mod, name):
                return getattr(mod, name)
        parts.pop()
    raise AttributeError(
        f"rustgrad.load: the checkpoint refers to {module}.{name}, which rustgrad does not provide"
    )


class _Unpickler(pickle._Unpickler):  # the Python unpickler: its opcodes can be restricted one by one
    """Unpickles ``data.pkl``: storages come from the zip records; with ``weights_only`` only allowed
    globals are built and BUILD (setting attributes) only applies to tensors and allowed classes.

    ``legacy``: the pre-1.6 format, whose storage references carry a sixth item (a storage view).
    """

    def __init__(
        self,
        file: Any,
        load_storage: Callable | None,
        weights_only: bool,
        encoding: str,
        storages: dict | None = None,
        legacy: bool = False,
    ) -> None:
        super().__init__(file, encoding=encoding)
        self.load_storage = load_storage
        self.weights_only = weights_only
        self.storages: dict[str, _Storage] = {} if storages is None else storages
        self.legacy = legacy

    def find_class(self, module: str, name: str) -> Any:
        if module == "__builtin__":  # protocol 2 names Python 3's builtins so
            module = "builtins"
        obj = _torch_global(module, name)
        if obj is not None:
            return obj
        if self.weights_only:
            if (module, name) in _SAFE_PLAIN:
                return _SAFE_PLAIN[(module, name)]
            full = f"{module}.{name}"
            if full in _safe_globals:
                return _safe_globals[full]
            raise _weights_only_error(module, name)
        if module == "torch" or module.startswith("torch."):
            return _rustgrad_equivalent(module, name)
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 5 + self.legacy and pid[0] == "storage"):
            raise pickle.UnpicklingError(
                f"rustgrad.load: unknown persistent id {pid!r:.100} (a newer or foreign checkpoint layout)"
            )
        _, stype, key, location, numel = pid[:5]
        if self.load_storage is None:
            raise pickle.UnpicklingError("rustgrad.load: a storage where the file holds none")
        if not (
            isinstance(stype, _StorageType)
            and isinstance(key, str)
            and isinstance(location, str)
            and type(numel) is int
            and numel >= 0
        ):
            raise pickle.UnpicklingError(f"rustgrad.load: malformed storage reference {pid!r:.100}")
        if key not in self.storages:
            self.storages[key] = self.load_storage(stype, key, location, numel)
        if self.legacy and pid[5] is not None:  # (view key, offset, size): a slice of the storage
            view = pid[5]
            if not (
                isinstance(view, tuple)
                and len(view) == 3
                and isinstance(view[0], str)
                and all(type(v) is int and v >= 0 for v in view[1:])
                and view[1] + view[2] <= self.storages[key].array.size
            ):
                raise pickle.UnpicklingError(f"rustgrad.load: malformed storage view {view!r:.100}")
            if view[0] not in self.storages:
                root = self.storages[key]
                part = root.array[view[1] : view[1] + view[2]]
                self.storages[view[0]] = _Storage(part, root.dtype_name, root.big_endian)
            return self.storages[view[0]]
        return self.storages[key]

    dispatch: ClassVar[dict] = dict(pickle._Unpickler.dispatch)

    def load_build(self) -> None:
        if self.weights_only:
            inst = self.stack[-2]  # type: ignore[attr-defined]  # the stack ends with (object, state)
            allowed = isinstance(inst, (Tensor, OrderedDict)) or type(inst) in _safe_globals.values()
            if not allowed:
                raise pickle.UnpicklingError(
                    f"Weights only load failed. {_UNSAFE_ADVICE}\n\n\nTried to set the state of an object "
                    f"of type {type(inst).__module__}.{type(inst).__qualname__}, which is not allowed."
                    + _DOCS
                )
        super().load_build()  # type: ignore[misc]

    dispatch[pickle.BUILD[0]] = load_build


# ----- loading: files -----

_LEGACY_MAGIC = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")


def _sniff(head: bytes, size: int | None) -> str:
    """The format of a file starting with ``head``: zip, safetensors, legacy, tar, empty or unknown."""
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head.startswith(_LEGACY_MAGIC):
        return "legacy"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    if len(head) >= 9 and head[8:9] == b"{":
        n = int.from_bytes(head[:8], "little")
        if size is None or 8 + n <= size:
            return "safetensors"
    return "empty" if not head else "unknown"


def _map_storage_location(map_location: Any, location: str, storage: _Storage) -> None:
    """Applies ``map_location`` to a storage saved at ``location``: only the CPU is a valid target."""
    if map_location is None:
        _check_location(location)
    elif isinstance(map_location, dict):
        _check_location(map_location.get(location, location))
    elif callable(map_location):
        if map_location(storage, location) is None:  # PyTorch then restores to the saved location
            _check_location(location)
    else:
        target = str(map_location) if isinstance(map_location, (str, device)) else map_location
        _check_location(str(device(target)) if not isinstance(target, str) else target)


def _read_zip_checkpoint(
    fileobj: Any, name: str, map_location: Any, weights_only: bool, encoding: str
) -> Any:
    try:
        zf = zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise RuntimeError(
            f"PytorchStreamReader failed reading zip archive: {e}. {name} is not a complete zip archive: "
            "the checkpoint file is truncated or corrupted."
        ) from None
    names = zf.namelist()
    folder = names[0].partition("/")[0] if names else ""
    if f"{folder}/data.pkl" not in names:
        found = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if not found:
            raise RuntimeError(
                f"rustgrad.load: {name} is a zip archive but not a PyTorch checkpoint: it has no "
                f"'<folder>/data.pkl' record (it holds {', '.join(names[:5]) or 'nothing'}"
                f"{', ...' if len(names) > 5 else ''})"
            )
        folder = found[0].partition("/")[0]

    def record(rec: str) -> bytes | None:
        try:
            return zf.read(f"{folder}/{rec}")
        except KeyError:
            return None

    version = record("version")
    if version is None:
        raise RuntimeError(f"rustgrad.load: {name} is a zip archive with no '{folder}/version' record")
    try:
        version_n = int(version.strip())
    except ValueError:
        raise RuntimeError(
            f"rustgrad.load: {name} has an unreadable version record {version[:20]!r}"
        ) from None
    byteorder = (record("byteorder") or b"little").decode(errors="replace")
    if byteorder not in ("little", "big"):
        raise RuntimeError(f"rustgrad.load: {name} has an unknown byteorder record '{byteorder:.20}'")
    big_endian = byteorder == "big"

    def load_storage(stype: _StorageType, key: str, location: str, numel: int) -> _Storage:
        rec = f"{folder}/data/{key}"
        try:
            info = zf.getinfo(rec)
        except KeyError:
            raise RuntimeError(f"rustgrad.load: {name} has no record '{rec}' for storage {key}") from None
        row = _BY_STORAGE.get(stype.name)
        np_type = np.dtype(row[2] if row is not None else "|u1")
        if row is not None and row[0] == "bool":
            np_type = np.dtype("|u1")  # read as bytes, then any nonzero byte is True
        if info.file_size != numel * np_type.itemsize:
            raise RuntimeError(
                f"rustgrad.load: {name}: record '{rec}' holds {info.file_size} bytes, but storage {key} "
                f"({stype.name}) has {numel} elements ({numel * np_type.itemsize} bytes)"
            )
        array = np.empty(numel, dtype=np_type.newbyteorder(">") if big_endian else np_type)
        view = array.data.cast("B") if numel else memoryview(b"")
        with zf.open(info) as src:
            got = 0
            while got < len(view):
                n = src.readinto(view[got:])  # type: ignore[attr-defined]
                if not n:
                    raise RuntimeError(f"rustgrad.load: {name}: record '{rec}' ends early")
                got += n
        if big_endian and row is not None:
            array = array.astype(np_type)
        if row is not None and row[0] == "bool":
            array = array != 0
        storage = _Storage(array, row[0] if row is not None else None, big_endian and row is None)
        _map_storage_location(map_location, location, storage)
        return storage

    pkl = record("data.pkl")
    unpickler = _Unpickler(io.BytesIO(pkl or b""), load_storage, weights_only, encoding)
    try:
        return unpickler.load()
    except zipfile.BadZipFile as e:
        raise RuntimeError(f"rustgrad.load: {name} is corrupted: {e}") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, AttributeError, TypeError) as e:
        if version_n > _ZIP_VERSION:  # name what was found: a layout newer than this reader
            raise RuntimeError(
                f"rustgrad.load: {name} has checkpoint format version {version_n}, newer than the "
                f"version {_ZIP_VERSION} this rustgrad reads, and loading it failed: {e}"
            ) from e
        if type(e) is EOFError:
            raise RuntimeError(f"rustgrad.load: {name}: its data.pkl record is truncated") from None
        raise


_LEGACY_PROTOCOL = 1001


def _read_legacy_checkpoint(
    fileobj: Any, name: str, map_location: Any, weights_only: bool, encoding: str
) -> Any:
    """Reads the pre-1.6 format: pickles of the magic number, the protocol version and the system
    info, the object (storages as 6-item persistent ids), the list of storage keys, then each storage's
    element count (8 bytes) and raw elements."""

    def header() -> Any:  # ints and a dict of ints: nothing is allowed to be built
        return _Unpickler(fileobj, None, True, encoding).load()

    try:
        header()  # the magic number (checked by _sniff)
        protocol = header()
        info = header()
    except (pickle.UnpicklingError, EOFError, ValueError) as e:
        raise RuntimeError(
            f"rustgrad.load: {name} is a legacy PyTorch checkpoint with a broken header ({e})"
        ) from None
    if protocol != _LEGACY_PROTOCOL:
        raise RuntimeError(
            f"rustgrad.load: {name} is a legacy PyTorch checkpoint of protocol version {protocol!r:.20}; "
            f"rustgrad reads version {_LEGACY_PROTOCOL}"
        )
    big_endian = isinstance(info, dict) and info.get("little_endian") is False
    storages: dict[str, _Storage] = {}

    def load_storage(stype: _StorageType, key: str, location: str, numel: int) -> _Storage:
        row = _BY_STORAGE.get(stype.name)
        if row is None:
            raise RuntimeError(f"rustgrad.load: {name}: a legacy checkpoint with a torch.{stype.name}")
        if numel * row[3] > file_size:  # before allocating: the data must be in the file
            raise RuntimeError(
                f"rustgrad.load: {name}: storage {key} of {numel} elements is larger than the file"
            )
        storage = _Storage(np.zeros(numel, dtype=np.dtype(row[2]).newbyteorder("=")), row[0], False)
        _map_storage_location(map_location, location, storage)
        return storage

    def unpickle() -> Any:
        fileobj.seek(start)
        u = _Unpickler(fileobj, load_storage, weights_only, encoding, storages=storages, legacy=True)
        return u.load()

    start = fileobj.tell()
    file_size = fileobj.seek(0, io.SEEK_END)
    result = unpickle()
    keys = header()
    if not isinstance(keys, list) or not all(k in storages for k in keys):
        raise RuntimeError(
            f"rustgrad.load: {name}: the legacy checkpoint's storage list does not match its object"
        )
    for key in keys:
        array = storages[key].array
        count = int.from_bytes(fileobj.read(8), "big" if big_endian else "little")
        if count != array.size:
            raise RuntimeError(
                f"rustgrad.load: {name}: legacy storage {key} holds {count} elements, its reference {array.size}"
            )
        raw = fileobj.read(array.nbytes)
        if len(raw) != array.nbytes:
            raise RuntimeError(f"rustgrad.load: {name} is truncated (in the data of storage {key})")
        file_type = array.dtype.newbyteorder(">" if big_endian else "<")
        array[...] = (
            np.frombuffer(raw, dtype=file_type) if array.dtype != np.bool_ else np.frombuffer(raw, np.uint8)
        )
    if any(st.copied for st in storages.values()):
        result = unpickle()  # tensors built as converted copies before their data was read: build again
    return result


def _open_for_reading(f: Any) -> tuple[Any, str, bool]:
    """(a seekable binary file, its name for messages, whether we opened it)."""
    if isinstance(f, (str, os.PathLike)):
        path = os.fspath(f)
        return open(path, "rb"), path, True  # FileNotFoundError as in PyTorch
    if not hasattr(f, "read"):
        raise AttributeError(
            f"'{type(f).__name__}' object has no attribute 'seek'. You can only torch.load from a file that is "
            "seekable. Please pre-load the data into a buffer like io.BytesIO and try to load from it instead."
        )
    name = str(getattr(f, "name", "the file object"))
    if not (hasattr(f, "seek") and getattr(f, "seekable", lambda: True)()):
        return io.BytesIO(f.read()), name, False
    return f, name, False


def load(
    f: Any,
    map_location: Any = None,
    pickle_module: Any = None,
    *,
    weights_only: bool | None = None,
    mmap: bool | None = None,
    **pickle_load_args: Any,
) -> Any:
    """Loads an object saved with ``torch.save`` (by PyTorch or rustgrad) from a path or binary file.

    ``weights_only=True`` (the default) builds only tensors, containers, numbers, strings and the
    globals registered with ``add_safe_globals``: anything else raises ``pickle.UnpicklingError``
    without running it. ``weights_only=False`` unpickles anything (only for trusted files).
    ``map_location`` may be None, ``"cpu"``, a CPU ``device``, a dict of location names or a callable
    ``(storage, location)``; storages saved on a GPU need one that maps them to the CPU. A safetensors
    file is read too. See https://pytorch.org/docs/stable/generated/torch.load.html
    """
    if weights_only is None:
        weights_only = pickle_module is None
    if weights_only and pickle_module is not None:
        raise RuntimeError("Can not safely load weights when explicit pickle_module is specified")
    encoding = pickle_load_args.pop("encoding", "utf-8")
    if pickle_load_args:
        raise TypeError(f"load() got an unexpected keyword argument '{next(iter(pickle_load_args))}'")
    if mmap and not isinstance(f, (str, os.PathLike)):
        raise ValueError("f must be a file path in order to use the mmap argument")
    fileobj, name, opened = _open_for_reading(f)
    try:
        start = fileobj.tell()
        head = fileobj.read(512)
        fileobj.seek(start)
        size = os.fstat(fileobj.fileno()).st_size - start if opened else None
        kind = _sniff(head, size)
        if kind == "zip":
            return _read_zip_checkpoint(fileobj, name, map_location, weights_only, encoding)
        if kind == "legacy":
            return _read_legacy_checkpoint(fileobj, name, map_location, weights_only, encoding)
        if kind == "safetensors":
            if opened:
                return load_safetensors(name, map_location=map_location)
            with tempfile.TemporaryDirectory() as tmp:
                copy = os.path.join(tmp, "checkpoint.safetensors")
                with open(copy, "wb") as out:
                    out.write(fileobj.read())
                return load_safetensors(copy, map_location=map_location)
        raise RuntimeError(_format_error("rustgrad.load", name, kind, head, "a PyTorch checkpoint"))
    finally:
        if opened:
            fileobj.close()


def _format_error(fn: str, name: str, kind: str, head: bytes, expected: str) -> str:
    """The message for a file that is not what ``fn`` reads: names the format actually found."""
    found = {
        "zip": "a PyTorch checkpoint (a zip archive, torch.save's format): load it with rustgrad.load",
        "safetensors": "a safetensors file: load it with rustgrad.load_safetensors (or rustgrad.load)",
        "legacy": "a legacy PyTorch checkpoint (the pre-1.6 non-zip format, written with "
        "_use_new_zipfile_serialization=False): load it with rustgrad.load",
        "tar": "a tar archive (PyTorch's format before 0.4), which rustgrad does not read: load it with "
        "PyTorch and save it again",
        "empty": "empty (0 bytes)",
        "unknown": f"not {expected}: it starts with bytes {head[:16]!r}",
    }[kind]
    return f"{fn}: {name} is {found}"


# ----- safetensors files -----

STRUCTURE_KEY = "rustgrad.structure"
FORMAT_VERSION = 1


def _check_path(f: Any, fn: str) -> str:
    if isinstance(f, (str, os.PathLike)):
        return os.fspath(f)
    if hasattr(f, "read") or hasattr(f, "write"):
        raise TypeError(
            f"rustgrad.{fn} takes a file path (str or os.PathLike), not a file object "
            f"({type(f).__name__}): safetensors files are written atomically by path"
        )
    raise TypeError(f"rustgrad.{fn}: expected a file path (str or os.PathLike), got {type(f).__name__}")


# ----- the structure around the tensors, as JSON -----
#
# None, bool, int, float and str are JSON scalars; a list is a JSON array; everything else is an
# object: {"tensor": name} (with "requires_grad": true if the tensor required grad), or one of the
# one-key {"tuple": [...]}, {"dict": [[key, value], ...]}, {"OrderedDict": [[key, value], ...]}
# (keys are encoded like values, so 0 and "0" stay apart).


class _Encoder:
    """Walks ``obj``: collects its tensors under path-like names and returns the JSON skeleton.

    A flat ``{name: tensor}`` dict gets its own keys as names, so other tools see the plain names.
    """

    def __init__(self) -> None:
        self.tensors: dict[str, Tensor] = {}

    def name_for(self, path: tuple) -> str:
        name = ".".join(str(p) for p in path) or "tensor"
        if name in self.tensors:  # e.g. {"a.b": t, "a": {"b": u}}: both would be "a.b"
            i = 1
            while f"{name}#{i}" in self.tensors:
                i += 1
            name = f"{name}#{i}"
        return name

    def encode(self, obj: Any, path: tuple) -> Any:
        if isinstance(obj, Tensor):
            name = self.name_for(path)
            self.tensors[name] = obj.detach()  # stored by value, without its graph
            return {"tensor": name, "requires_grad": True} if obj.requires_grad else {"tensor": name}
        if obj is None or isinstance(obj, (bool, int, float, str)):
            return obj
        if isinstance(obj, np.generic) and isinstance(obj.item(), (bool, int, float)):
            return obj.item()
        if isinstance(obj, list):
            return [self.encode(v, (*path, i)) for i, v in enumerate(obj)]
        if isinstance(obj, tuple):
            return {"tuple": [self.encode(v, (*path, i)) for i, v in enumerate(obj)]}
        if isinstance(obj, dict):
            tag = "OrderedDict" if isinstance(obj, OrderedDict) else "dict"
            items = []
            for k, v in obj.items():
                if not (k is None or isinstance(k, (bool, int, float, str, tuple))):
                    raise TypeError(
                        f"rustgrad.save_safetensors: cannot store a dict key of type {type(k).__name__} "
                        f"at '{self._where(path)}'"
                    )
                items.append([self.encode(k, (*path, "<key>")), self.encode(v, (*path, k))])
            return {tag: items}
        raise TypeError(
            f"rustgrad.save_safetensors: cannot store a value of type {type(obj).__name__} at '{self._where(path)}': "
            "checkpoints hold tensors, None, bool, int, float, str, and lists, tuples and dicts of them"
        )

    @staticmethod
    def _where(path: tuple) -> str:
        return ".".join(str(p) for p in path) or "<root>"


def _decode(node: Any, tensors: dict, file: str) -> Any:
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, list):
        return [_decode(v, tensors, file) for v in node]
    if isinstance(node, dict) and "tensor" in node:
        name = node["tensor"]
        if name not in tensors:
            raise RuntimeError(
                f"rustgrad.load_safetensors: checkpoint {file} names a tensor '{name}' it does not hold"
            )
        t = tensors[name]
        return t.requires_grad_(True) if node.get("requires_grad") else t
    if isinstance(node, dict) and len(node) == 1:
        ((tag, body),) = node.items()
        if tag == "tuple":
            return tuple(_decode(v, tensors, file) for v in body)
        if tag in ("dict", "OrderedDict"):
            out = OrderedDict() if tag == "OrderedDict" else {}
            for k, v in body:
                out[_decode(k, tensors, file)] = _decode(v, tensors, file)
            return out
    raise RuntimeError(
        f"rustgrad.load_safetensors: checkpoint {file} has an unreadable '{STRUCTURE_KEY}' entry: {node!r:.80}"
    )


# ----- public API -----


def save_safetensors(obj: Any, f: Any, **kwargs: Any) -> None:
    """Writes ``obj`` (a state dict, or dicts/lists/tuples of tensors and scalars) to the path ``f`` as a
    safetensors file (readable by ``safetensors.numpy.load_file``), atomically.

    A flat dict of tensors keeps its names; any other structure is stored in the file's metadata.
    """
    if kwargs:
        raise TypeError(f"save_safetensors() got an unexpected keyword argument '{next(iter(kwargs))}'")
    path = _check_path(f, "save_safetensors")
    enc = _Encoder()
    structure = enc.encode(obj, ())
    metadata = {
        "format": "pt",  # what safetensors.torch writes; some tools look for it
        STRUCTURE_KEY: json.dumps({"version": FORMAT_VERSION, "object": structure}, separators=(",", ":")),
    }
    _rustgrad._save_safetensors(enc.tensors, metadata, path)


def load_safetensors(f: Any, map_location: Any = None, **kwargs: Any) -> Any:
    """Reads a safetensors file (written by ``save_safetensors`` or any other tool) from the path ``f``.

    Returns the saved object; a safetensors file written by another tool gives an ``OrderedDict``
    of its tensors in file order. ``map_location`` may be None, ``"cpu"``, a CPU ``device``, a dict
    of device names or a callable ``(tensor, location)`` (applied to each tensor with ``"cpu"``).
    ``weights_only`` and ``mmap`` are accepted for ``torch.load`` compatibility: a safetensors file
    never holds anything but weights and plain data. A file in another format (a PyTorch zip
    checkpoint, ...) raises a RuntimeError naming the format found.
    """
    kwargs.pop("weights_only", None)
    kwargs.pop("mmap", None)
    if kwargs:
        raise TypeError(f"load_safetensors() got an unexpected keyword argument '{next(iter(kwargs))}'")
    path = _check_path(f, "load_safetensors")
    if not os.path.exists(path):
        raise FileNotFoundError(2, "No such file or directory", path)
    with open(path, "rb") as fh:
        head = fh.read(512)
    kind = _sniff(head, os.path.getsize(path))
    if kind not in ("safetensors", "unknown"):  # unknown: safetensors' own reader says what is wrong
        raise RuntimeError(_format_error("rustgrad.load_safetensors", path, kind, head, "a safetensors file"))
    tensors, metadata = _rustgrad._load_safetensors(path)
    tensors = _map_location(tensors, map_location)
    raw = metadata.get(STRUCTURE_KEY)
    if raw is None:
        return OrderedDict(tensors)
    try:
        header = json.loads(raw)
        version, structure = header["version"], header["object"]
    except (ValueError, KeyError, TypeError) as e:
        raise RuntimeError(
            f"rustgrad.load_safetensors: checkpoint {path} has a corrupt '{STRUCTURE_KEY}' entry ({e})"
        ) from None
    if version > FORMAT_VERSION:
        raise RuntimeError(
            f"rustgrad.load_safetensors: checkpoint {path} has format version {version}; "
            f"this rustgrad reads up to {FORMAT_VERSION}: upgrade rustgrad"
        )
    return _decode(structure, tensors, path)


def _map_location(tensors: dict, map_location: Any) -> dict:
    if map_location is None or isinstance(map_location, dict):
        targets = list(map_location.values()) if isinstance(map_location, dict) else []
    elif callable(map_location):
        out = {}
        for name, t in tensors.items():
            mapped = map_location(t, "cpu")
            out[name] = t if mapped is None else mapped
        return out
    else:
        targets = [map_location]
    for target in targets:
        d = device(target)
        if d.type == "cuda":
            raise RuntimeError(
                "Attempting to deserialize object on a CUDA device but torch.cuda.is_available() is False. "
                "If you are running on a CPU-only machine, please use torch.load with "
                "map_location=torch.device('cpu') to map your storages to the CPU."
            )
        _check_device(d)  # raises for anything but the CPU
    return tensors
