"""Render tensors exactly the way PyTorch's ``repr(tensor)`` / ``str(tensor)`` does.

This module is deliberately independent of the rest of rustgrad: it works on a
plain :class:`numpy.ndarray` holding the tensor's data plus the rustgrad dtype
name, so it can be imported and tested on its own (``import rustgrad`` is never
needed here).

The layout rules follow ``torch/_tensor_str.py`` (PyTorch 2.x) closely:

* One formatter is built per tensor from all of its (possibly summarised)
  values and decides, for floating tensors, between three styles:

  - *integer style* when every finite value is integral: ``1.``, ``27.``,
    ``-0.``;
  - *fixed style* with ``precision`` decimals: ``0.2000``;
  - *scientific style* (``1.0000e+10``) when the ratio between the largest and
    the smallest non-zero finite magnitude exceeds 1000, when the largest
    exceeds 1e8, or when the smallest is below 1e-4 (``sci_mode`` in the print
    options forces the choice either way).

  Every element is then right-aligned to the widest rendering, which is why
  ``tensor([  8.,  96., 432.])`` carries leading blanks.  ``nan``/``inf`` never
  take part in choosing the style or the width.
* Tensors with more than ``threshold`` elements are summarised: along every
  dimension longer than ``2 * edgeitems`` only the first and last ``edgeitems``
  entries are shown, with ``...`` in between.
* 1-D rows are wrapped so that each line holds as many elements as fit in
  ``linewidth``; nested rows are indented under the opening bracket of
  ``tensor(`` and consecutive blocks of an N-D tensor are separated by N-2
  blank lines.
* Extra fields (``size=``, ``dtype=``, ``requires_grad=True``,
  ``grad_fn=<...>``) follow the data, separated by ``", "``; a field that would
  push the last line past ``linewidth`` starts a new, indented line instead.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

__all__ = [
    "PRINT_OPTS",
    "PrintOptions",
    "format_tensor",
    "get_printoptions",
    "printoptions",
    "set_printoptions",
]


class PrintOptions:
    """Global print settings, mirroring ``torch._tensor_str.PRINT_OPTS``."""

    _FIELDS = ("precision", "threshold", "edgeitems", "linewidth", "sci_mode")

    def __init__(
        self,
        precision: int = 4,
        threshold: float = 1000,
        edgeitems: int = 3,
        linewidth: int = 80,
        sci_mode: bool | None = None,
    ) -> None:
        self.precision = precision
        self.threshold = threshold
        self.edgeitems = edgeitems
        self.linewidth = linewidth
        self.sci_mode = sci_mode

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._FIELDS}

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.as_dict().items())
        return f"PrintOptions({fields})"


PRINT_OPTS = PrintOptions()

# Presets selected through ``set_printoptions(profile=...)``:
# (precision, threshold, edgeitems, linewidth).
_PROFILES: dict[str, tuple[int, float, int, int]] = {
    "default": (4, 1000, 3, 80),
    "short": (2, 1000, 2, 80),
    "full": (4, math.inf, 3, 80),
}


def set_printoptions(
    precision: int | None = None,
    threshold: float | None = None,
    edgeitems: int | None = None,
    linewidth: int | None = None,
    profile: str | None = None,
    sci_mode: bool | None = None,
) -> None:
    """Change the global print options, with the semantics of ``torch.set_printoptions``.

    ``profile`` ("default", "short" or "full") first resets precision,
    threshold, edgeitems and linewidth to a preset; any explicitly given option
    then overrides the preset.  An unknown profile name is ignored, as in
    PyTorch.  ``sci_mode`` is always assigned, so omitting it restores the
    automatic choice.
    """
    if profile is not None and profile in _PROFILES:
        (
            PRINT_OPTS.precision,
            PRINT_OPTS.threshold,
            PRINT_OPTS.edgeitems,
            PRINT_OPTS.linewidth,
        ) = _PROFILES[profile]
    if precision is not None:
        PRINT_OPTS.precision = precision
    if threshold is not None:
        PRINT_OPTS.threshold = threshold
    if edgeitems is not None:
        PRINT_OPTS.edgeitems = edgeitems
    if linewidth is not None:
        PRINT_OPTS.linewidth = linewidth
    PRINT_OPTS.sci_mode = sci_mode


def get_printoptions() -> dict[str, Any]:
    """Return the current options as keyword arguments for :func:`set_printoptions`."""
    return PRINT_OPTS.as_dict()


@contextlib.contextmanager
def printoptions(**kwargs: Any) -> Iterator[None]:
    """Temporarily change the print options (like ``torch.printoptions``)."""
    saved = get_printoptions()
    set_printoptions(**kwargs)
    try:
        yield
    finally:
        set_printoptions(**saved)


# --------------------------------------------------------------------------
# dtype bookkeeping
# --------------------------------------------------------------------------

# Alternative spellings accepted for dtype names (PyTorch's aliases).
_DTYPE_ALIASES = {
    "float": "float32",
    "double": "float64",
    "half": "float16",
    "long": "int64",
    "int": "int32",
    "short": "int16",
    "cfloat": "complex64",
    "cdouble": "complex128",
}

_FLOATING_DTYPES = frozenset({"float16", "bfloat16", "float32", "float64"})


def _canonical_dtype(name: object) -> str:
    text = str(name).removeprefix("torch.")
    return _DTYPE_ALIASES.get(text, text)


def _coerce_values(values: Any, dtype: str) -> np.ndarray:
    """Return ``values`` as an array whose element type matches ``dtype``.

    Half precision data is widened to float32 afterwards, which is what
    PyTorch does before formatting it.  (numpy has no bfloat16; such data is
    expected to arrive already widened to float32.)
    """
    arr = np.asarray(values)
    if dtype.startswith("complex"):
        raise NotImplementedError(f"printing {dtype} tensors is not supported")
    if dtype == "float64":
        return arr.astype(np.float64, copy=False)
    if dtype == "float16":
        return arr.astype(np.float16, copy=False).astype(np.float32)
    if dtype in _FLOATING_DTYPES:
        return arr.astype(np.float32, copy=False)
    if dtype == "bool":
        return arr.astype(np.bool_, copy=False)
    if arr.dtype.kind not in "iub":
        return arr.astype(np.int64)
    return arr


# --------------------------------------------------------------------------
# element formatting
# --------------------------------------------------------------------------


class _Formatter:
    """Chooses one rendering style and one column width for a whole tensor."""

    def __init__(self, sample: np.ndarray, floating: bool) -> None:
        self.floating = floating
        self.int_mode = True
        self.sci_mode = False
        self.max_width = 1

        flat = sample.reshape(-1)
        if not floating:
            # Integers and booleans: simply the widest ``str`` of any value.
            for value in flat.tolist():
                self.max_width = max(self.max_width, len(f"{value}"))
            return

        # Zeros and non-finite values play no part in picking the style.
        interesting = flat[np.isfinite(flat) & (flat != 0)]
        if interesting.size == 0:
            # Nothing to measure: stay in integer style, width 1, and do not
            # even look at PRINT_OPTS.sci_mode (PyTorch returns early here).
            return

        magnitudes = np.abs(interesting)
        # Compare in double precision with Python floats; comparing a numpy
        # float32 scalar with a Python float would happen in float32.
        smallest = float(magnitudes.min())
        largest = float(magnitudes.max())

        self.int_mode = bool(np.all(interesting == np.ceil(interesting)))

        if PRINT_OPTS.sci_mode is None:
            self.sci_mode = (
                largest / smallest > 1000.0 or largest > 1.0e8 or smallest < 1.0e-4
            )
        else:
            self.sci_mode = bool(PRINT_OPTS.sci_mode)

        precision = PRINT_OPTS.precision
        numbers = interesting.tolist()
        if self.sci_mode:
            widest = max(len(f"{v:.{precision}e}") for v in numbers)
        elif self.int_mode:
            # The trailing "." that marks a float adds one character.
            widest = max(len(f"{v:.0f}") for v in numbers) + 1
        else:
            widest = max(len(f"{v:.{precision}f}") for v in numbers)
        self.max_width = max(self.max_width, widest)

    def format(self, value: Any) -> str:
        """Render one Python scalar, right-aligned to the common width."""
        if self.floating:
            precision = PRINT_OPTS.precision
            if self.sci_mode:
                text = f"{value:{self.max_width}.{precision}e}"
            elif self.int_mode:
                text = f"{value:.0f}"
                if not (math.isinf(value) or math.isnan(value)):
                    text += "."
            else:
                text = f"{value:.{precision}f}"
        else:
            text = f"{value}"
        return text.rjust(self.max_width)


# --------------------------------------------------------------------------
# layout
# --------------------------------------------------------------------------


def _summary_sample(arr: np.ndarray) -> np.ndarray:
    """The values that remain visible once a large tensor is summarised."""
    edge = PRINT_OPTS.edgeitems
    if arr.ndim == 0:
        return arr
    if not edge:
        # PyTorch quirk: with edgeitems=0 a 1-D tensor keeps all its values
        # for measuring, while higher-dimensional tensors keep none.
        if arr.ndim == 1:
            return arr
        return arr[(slice(0, 0),) * arr.ndim]
    picks = []
    for length in arr.shape:
        if length > 2 * edge:
            picks.append(np.r_[0:edge, length - edge : length])
        else:
            picks.append(np.arange(length))
    return arr[np.ix_(*picks)]


def _render_row(arr: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    """Render a 1-D array, wrapping it to fit the line width."""
    slot = fmt.max_width + 2  # an element plus its ", " separator
    per_line = max(1, math.floor((PRINT_OPTS.linewidth - indent) / slot))
    edge = PRINT_OPTS.edgeitems

    if summarize and not edge:
        cells = ["..."]
    elif summarize and arr.shape[0] > 2 * edge:
        head = [fmt.format(v) for v in arr[:edge].tolist()]
        tail = [fmt.format(v) for v in arr[-edge:].tolist()]
        # The ellipsis counts as one cell when wrapping.
        cells = head + [" ..."] + tail
    else:
        cells = [fmt.format(v) for v in arr.tolist()]

    lines = [
        ", ".join(cells[start : start + per_line])
        for start in range(0, len(cells), per_line)
    ]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _render(arr: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    """Recursively render ``arr``; ``indent`` is the column of its ``[``."""
    if arr.ndim == 0:
        return fmt.format(arr.item())
    if arr.ndim == 1:
        return _render_row(arr, indent, summarize, fmt)

    count = arr.shape[0]
    edge = PRINT_OPTS.edgeitems
    if summarize and count > 2 * edge:
        blocks = [_render(arr[i], indent + 1, summarize, fmt) for i in range(edge)]
        blocks.append("...")
        blocks.extend(
            _render(arr[i], indent + 1, summarize, fmt)
            for i in range(count - edge, count)
        )
    else:
        blocks = [_render(arr[i], indent + 1, summarize, fmt) for i in range(count)]

    # Sub-blocks of an N-D tensor are separated by N-2 empty lines.
    separator = "," + "\n" * (arr.ndim - 1) + " " * (indent + 1)
    return "[" + separator.join(blocks) + "]"


def _render_data(arr: np.ndarray, indent: int, floating: bool) -> str:
    """The bracketed data part of the repr of a non-empty tensor."""
    summarize = arr.size > PRINT_OPTS.threshold
    sample = _summary_sample(arr) if summarize else arr
    fmt = _Formatter(sample, floating)
    return _render(arr, indent, summarize, fmt)


def _append_suffixes(text: str, suffixes: Sequence[str], indent: int) -> str:
    """Close the repr, placing each extra field after the data.

    A field goes on the current line unless that would exceed the line width,
    in which case it starts a new line indented to line up with the data.
    (The length estimate for the current line deliberately matches PyTorch's,
    which over-counts a single-line repr by two characters.)
    """
    pieces = [text]
    current = len(text) - text.rfind("\n") + 1
    for suffix in suffixes:
        if current + len(suffix) + 2 > PRINT_OPTS.linewidth:
            pieces.append(",\n" + " " * indent + suffix)
            current = indent + len(suffix)
        else:
            pieces.append(", " + suffix)
            current += len(suffix) + 2
    pieces.append(")")
    return "".join(pieces)


def _shape_text(shape: Sequence[int]) -> str:
    return str(tuple(int(n) for n in shape))


def format_tensor(
    values: np.ndarray,
    *,
    dtype: str,
    suffixes: Sequence[str] = (),
    default_dtype: str = "float32",
) -> str:
    """Return what PyTorch prints for a CPU tensor holding ``values``.

    ``values`` holds the data (any shape, 0-d included), ``dtype`` is the
    rustgrad dtype name (``"float32"``, ``"float64"``, ``"int64"``, ``"bool"``,
    ...; a ``"torch."`` prefix is tolerated) and ``suffixes`` are already
    formatted fields such as ``"requires_grad=True"`` or
    ``"grad_fn=<AddBackward0>"``.  The ``size=`` and ``dtype=`` fields that
    PyTorch adds are computed here and placed before ``suffixes``.
    ``default_dtype`` is the current default floating dtype.
    """
    dtype = _canonical_dtype(dtype)
    default_dtype = _canonical_dtype(default_dtype)
    arr = _coerce_values(values, dtype)

    prefix = "tensor("
    indent = len(prefix)
    fields: list[str] = []
    dtype_field = f"dtype=torch.{dtype}"

    if arr.size == 0:
        # Like NumPy, the shape is spelled out unless the tensor is 1-D.
        if arr.ndim != 1:
            fields.append("size=" + _shape_text(arr.shape))
        # No element can hint at the dtype, so anything but the default
        # floating dtype is named (int64 and bool included).
        if dtype != default_dtype:
            fields.append(dtype_field)
        data = "[]"
    else:
        if not PRINT_OPTS.edgeitems:
            fields.append("size=" + _shape_text(arr.shape))
        default_complex = "complex128" if default_dtype == "float64" else "complex64"
        if dtype not in (default_dtype, default_complex, "int64", "bool"):
            fields.append(dtype_field)
        data = _render_data(arr, indent, dtype in _FLOATING_DTYPES)

    fields.extend(suffixes)
    return _append_suffixes(prefix + data, fields, indent)
