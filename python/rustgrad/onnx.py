"""``torch.onnx``: present so that programs importing it load; exporting needs PyTorch's tracer and
ONNX tooling, which rustgrad does not have, so :func:`export` raises.
https://pytorch.org/docs/stable/onnx.html"""

from __future__ import annotations

from typing import Any

__all__ = ["export", "is_in_onnx_export"]


def export(model: Any, args: Any = (), f: Any = None, *rest: Any, **kwargs: Any) -> Any:
    """Would export ``model`` to ONNX: raises ``NotImplementedError`` (no ONNX exporter in rustgrad).
    https://pytorch.org/docs/stable/onnx.html#torch.onnx.export"""
    raise NotImplementedError(
        "torch.onnx.export is not supported by rustgrad: it has no graph tracer or ONNX exporter. "
        "Export the model with PyTorch (load rustgrad's checkpoint there) instead."
    )


def is_in_onnx_export() -> bool:
    """Whether an ONNX export is running: never. https://pytorch.org/docs/stable/onnx.html"""
    return False
