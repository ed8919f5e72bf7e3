"""``rustgrad.save`` / ``rustgrad.load``: checkpoints as safetensors files.

The file is a plain safetensors file, so ``safetensors.numpy.load_file`` and
``safetensors.torch.load_file`` read it, and a file they wrote loads here.

- A flat dict of tensors (``model.state_dict()``) is stored as it is: the tensor names are the keys.
- Anything else built of dicts, lists, tuples, tensors and plain scalars (an optimizer's
  ``state_dict()``, ``{'model': ..., 'optim': ..., 'epoch': 3}``) is stored as its tensors, under
  path-like names (``optim.state.0.exp_avg``), plus the rest of the structure as JSON in the file's
  metadata (key ``rustgrad.structure``), which keeps tuples apart from lists, int keys apart from
  str keys and ``OrderedDict`` apart from ``dict``: ``load`` returns an equal object.

Writes are atomic (a temporary file in the same directory, flushed, then renamed over the target):
an error or a crash during ``save`` leaves the previous file as it was. There is no pickle, so a
checkpoint cannot run code when loaded: ``load`` is always ``weights_only``.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from typing import Any

import numpy as np

from rustgrad import _rustgrad
from rustgrad._glue import _check_device, device
from rustgrad._rustgrad import Tensor

__all__ = ["load", "save"]

STRUCTURE_KEY = "rustgrad.structure"
FORMAT_VERSION = 1


def _check_path(f: Any, fn: str) -> str:
    if isinstance(f, (str, os.PathLike)):
        return os.fspath(f)
    if hasattr(f, "read") or hasattr(f, "write"):
        raise TypeError(
            f"rustgrad.{fn} takes a file path (str or os.PathLike), not a file object "
            f"({type(f).__name__}): checkpoints are safetensors files written atomically by path"
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
                        f"rustgrad.save: cannot store a dict key of type {type(k).__name__} "
                        f"at '{self._where(path)}'"
                    )
                items.append([self.encode(k, (*path, "<key>")), self.encode(v, (*path, k))])
            return {tag: items}
        raise TypeError(
            f"rustgrad.save: cannot store a value of type {type(obj).__name__} at '{self._where(path)}': "
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
            raise RuntimeError(f"rustgrad.load: checkpoint {file} names a tensor '{name}' it does not hold")
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
        f"rustgrad.load: checkpoint {file} has an unreadable '{STRUCTURE_KEY}' entry: {node!r:.80}"
    )


# ----- public API -----


def save(obj: Any, f: Any, pickle_module: Any = None, pickle_protocol: Any = None, **kwargs: Any) -> None:
    """Writes ``obj`` (a state dict, or dicts/lists/tuples of tensors and scalars) to the path ``f``.

    ``pickle_module``, ``pickle_protocol`` and ``_use_new_zipfile_serialization`` are accepted for
    ``torch.save`` compatibility and ignored: the file is always safetensors.
    """
    kwargs.pop("_use_new_zipfile_serialization", None)
    kwargs.pop("_disable_byteorder_record", None)
    if kwargs:
        raise TypeError(f"save() got an unexpected keyword argument '{next(iter(kwargs))}'")
    path = _check_path(f, "save")
    enc = _Encoder()
    structure = enc.encode(obj, ())
    metadata = {
        "format": "pt",  # what safetensors.torch writes; some tools look for it
        STRUCTURE_KEY: json.dumps({"version": FORMAT_VERSION, "object": structure}, separators=(",", ":")),
    }
    _rustgrad._save_safetensors(enc.tensors, metadata, path)


def load(
    f: Any,
    map_location: Any = None,
    pickle_module: Any = None,
    *,
    weights_only: Any = True,
    mmap: Any = None,
    **pickle_load_args: Any,
) -> Any:
    """Reads a checkpoint written by ``save`` (or any safetensors file) from the path ``f``.

    Returns the saved object; a safetensors file written by another tool gives an ``OrderedDict``
    of its tensors in file order. ``map_location`` may be None, ``"cpu"``, a CPU ``device``, a dict
    of device names or a callable ``(tensor, location)`` (applied to each tensor with ``"cpu"``).
    ``weights_only``, ``mmap`` and ``pickle_load_args`` are accepted for ``torch.load`` compatibility:
    a checkpoint never holds anything but weights and plain data.
    """
    path = _check_path(f, "load")
    if not os.path.exists(path):
        raise FileNotFoundError(2, "No such file or directory", path)
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
            f"rustgrad.load: checkpoint {path} has a corrupt '{STRUCTURE_KEY}' entry ({e})"
        ) from None
    if version > FORMAT_VERSION:
        raise RuntimeError(
            f"rustgrad.load: checkpoint {path} has format version {version}; "
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
