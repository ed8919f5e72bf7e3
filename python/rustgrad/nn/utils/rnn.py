"""``nn.utils.rnn``: variable-length sequences for the recurrent layers: ``PackedSequence`` and the
functions that pad, pack and unpack batches of sequences, with PyTorch's layouts and errors.
https://pytorch.org/docs/stable/nn.html#utilities"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

import rustgrad
from rustgrad import Tensor, _rustgrad

if TYPE_CHECKING:
    from typing_extensions import Self, disjoint_base
else:

    def disjoint_base(cls: type) -> type:
        # Typing only (PEP 800): instances carry a __dict__ on top of the tuple, as PyTorch's do.
        return cls


__all__ = [
    "PackedSequence",
    "invert_permutation",
    "pack_padded_sequence",
    "pack_sequence",
    "pad_packed_sequence",
    "pad_sequence",
    "unpack_sequence",
    "unpad_sequence",
]


class PackedSequence_(NamedTuple):
    """The fields of a ``PackedSequence`` (the named tuple it extends)."""

    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None
    unsorted_indices: Tensor | None


def _map_optional(value: Tensor | None, fn: Callable[[Tensor], Tensor]) -> Tensor | None:
    return None if value is None else fn(value)


@disjoint_base
class PackedSequence(PackedSequence_):
    """A batch of variable-length sequences packed time step by time step: ``data`` holds the
    elements of step 0 of every sequence, then of step 1 of the sequences still running, ...;
    ``batch_sizes[t]`` is the number of sequences at step ``t``; ``sorted_indices`` (or None) is the
    permutation that sorted the batch by decreasing length and ``unsorted_indices`` its inverse.
    Made by ``pack_padded_sequence``/``pack_sequence``, accepted by ``RNN``, ``LSTM`` and ``GRU``.
    https://pytorch.org/docs/stable/generated/torch.nn.utils.rnn.PackedSequence.html
    """

    def __new__(
        cls,
        data: Any,
        batch_sizes: Tensor | None = None,
        sorted_indices: Tensor | None = None,
        unsorted_indices: Tensor | None = None,
    ) -> Self:
        return super().__new__(
            cls, *_packed_sequence_init_args(data, batch_sizes, sorted_indices, unsorted_indices)
        )

    def pin_memory(self) -> Self:
        """A copy with ``data`` and the indices in pinned memory (``batch_sizes`` stays as it is).
        https://pytorch.org/docs/stable/generated/torch.nn.utils.rnn.PackedSequence.html"""
        return type(self)(
            self.data.pin_memory(),  # type: ignore[attr-defined]
            self.batch_sizes,
            _map_optional(self.sorted_indices, lambda t: t.pin_memory()),  # type: ignore[attr-defined]
            _map_optional(self.unsorted_indices, lambda t: t.pin_memory()),  # type: ignore[attr-defined]
        )

    def to(self, *args: Any, **kwargs: Any) -> Self:
        """``data.to(*args, **kwargs)``, with the indices moved to ``data``'s device; ``self`` when
        ``data`` is unchanged. ``batch_sizes`` is never converted.
        https://pytorch.org/docs/stable/generated/torch.nn.utils.rnn.PackedSequence.html"""
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self

        def move(t: Tensor) -> Tensor:
            return t.to(data.device)

        return type(self)(
            data,
            self.batch_sizes,
            _map_optional(self.sorted_indices, move),
            _map_optional(self.unsorted_indices, move),
        )

    def cuda(self, *args: Any, **kwargs: Any) -> Self:
        """``to`` a CUDA device (rustgrad's tensors live on the CPU: this raises PyTorch's error for a
        build without CUDA).
        https://pytorch.org/docs/stable/generated/torch.nn.utils.rnn.PackedSequence.html"""
        probe = rustgrad.tensor((), dtype=self.data.dtype, device=self.data.device).to(*args, **kwargs)
        if probe.is_cuda:
            return self.to(*args, **kwargs)
        kwargs["device"] = "cuda"
        return self.to(*args, **kwargs)

    def cpu(self, *args: Any, **kwargs: Any) -> Self:
        """``to`` the CPU (``self`` when nothing changes).
        https://pytorch.org/docs/stable/generated/torch.nn.utils.rnn.PackedSequence.html"""
        probe = rustgrad.tensor((), dtype=self.data.dtype, device=self.data.device).to(*args, **kwargs)
        if probe.device.type == "cpu":
            return self.to(*args, **kwargs)
        kwargs["device"] = "cpu"
        return self.to(*args, **kwargs)

    def double(self) -> Self:
        """``data`` cast to float64.
        https://pytorch.org/docs/stable/generated/torch.nn.utils.rnn.PackedSequence.html"""
        return self.to(dtype=rustgrad.double)

    def float(self) -> Self:
        """``data`` cast to float32.
        https://pytorch.org/docs/stable/generated/torch.nn.utils.rnn.PackedSequence.html"""
        return self.to(dtype=rustgrad.float)

    def half(self) -> Self:
        """``data`` cast to float16.
        https://pytorch.org/docs/stable/generated/torch.nn.utils.rnn.PackedSequence.html"""
        return self.to(dtype=rustgrad.half)

    def long(self) -> Self:
        """``data`` cast to int64.
        https://pytorch.org/docs/stable/generated/torch.nn.utils.rnn.PackedSequence.html"""
        return self.to(dtype=rustgrad.long)

    def int(self) -> Self:
        """``data`` cast to int32.
        https://pytorch.org/docs/stable/generated/torch.nn.utils.rnn.PackedSequence.html"""
        return self.to(dtype=rustgrad.int)

    def short(self) -> Self:
        """``data`` cast to int16.
        https://pytorch.org/docs/stable/generated/torch.nn.utils.rnn.PackedSequence.html"""
        return self.to(dtype=rustgrad.short)

    def char(self) -> Self:
        """``data`` cast to int8.
        https://pytorch.org/docs/stable/generated/torch.nn.utils.rnn.PackedSequence.html"""
        return self.to(dtype=rustgrad.int8)

    def byte(self) -> Self:
        """``data`` cast to uint8.
        https://pytorch.org/docs/stable/generated/torch.nn.utils.rnn.PackedSequence.html"""
        return self.to(dtype=rustgrad.uint8)

    @property
    def is_cuda(self) -> bool:
        """Whether ``data`` is on a CUDA device (always False in rustgrad).
        https://pytorch.org/docs/stable/generated/torch.nn.utils.rnn.PackedSequence.html"""
        return self.data.is_cuda

    def is_pinned(self) -> bool:
        """Whether ``data`` is in pinned memory.
        https://pytorch.org/docs/stable/generated/torch.nn.utils.rnn.PackedSequence.html"""
        return self.data.is_pinned()


def _packed_sequence_init_args(
    data: Any,
    batch_sizes: Tensor | None = None,
    sorted_indices: Tensor | None = None,
    unsorted_indices: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    # unsorted_indices, when given, is trusted to be the inverse of sorted_indices (as PyTorch does).
    if unsorted_indices is None:
        unsorted_indices = invert_permutation(sorted_indices)
    if batch_sizes is not None:
        if batch_sizes.device.type != "cpu":
            raise ValueError(
                "batch_sizes should always be on CPU. "
                "Instances of PackedSequence should never be created manually. "
                "They should be instantiated by functions like pack_sequence "
                "and pack_padded_sequences in nn.utils.rnn. "
                "https://pytorch.org/docs/stable/nn.html#torch.nn.utils.rnn.pack_sequence"
            )
        return data, batch_sizes, sorted_indices, unsorted_indices
    # PackedSequence((data, batch_sizes), ...)
    if not (isinstance(data, (list, tuple)) and len(data) == 2):
        raise AssertionError("Expected data to be a list or tuple of length 2")
    return data[0], data[1], sorted_indices, unsorted_indices


def invert_permutation(permutation: Tensor | None) -> Tensor | None:
    """The inverse of a permutation of ``0..n-1`` (``out[permutation[i]] = i``); None for None.
    https://pytorch.org/docs/stable/nn.html#utilities"""
    if permutation is None:
        return None
    output = rustgrad.empty_like(permutation)
    output.scatter_(0, permutation, rustgrad.arange(0, permutation.numel(), device=permutation.device))
    return output


def _check_copy_shape(dst: Sequence[int], src: Sequence[int]) -> None:
    """PyTorch's broadcasting error for ``dst_view.copy_(src)`` when ``src`` cannot fill ``dst``."""
    for k in range(1, min(len(dst), len(src)) + 1):
        a, b = dst[-k], src[-k]
        if a != b and b != 1:
            dim = max(len(dst), len(src)) - k
            raise RuntimeError(
                f"The size of tensor a ({a}) must match the size of tensor b ({b}) at non-singleton dimension {dim}"
            )


def pad_sequence(
    sequences: Tensor | Iterable[Tensor],
    batch_first: bool = False,
    padding_value: float = 0.0,
    padding_side: str = "right",
) -> Tensor:
    """Stacks variable-length tensors (``L_i x *``) into one padded tensor, ``T x B x *`` (or
    ``B x T x *`` with ``batch_first=True``), ``T`` the longest length, filling the gaps with
    ``padding_value`` after each sequence (``padding_side='right'``) or before it (``'left'``).
    https://pytorch.org/docs/stable/generated/torch.nn.utils.rnn.pad_sequence.html"""
    if not isinstance(sequences, Iterable):
        raise RuntimeError(  # noqa: TRY004 (PyTorch's type)
            f"pad_sequence: Expected iterable for input sequences, but got arg of type: {type(sequences)}"
        )
    seqs = tuple(sequences)
    for i, s in enumerate(seqs):
        if not isinstance(s, Tensor):
            raise TypeError(f"expected Tensor as element {i} in argument 0, but got {type(s).__name__}")
    if not seqs:
        raise RuntimeError("received an empty list of sequences")
    if padding_side not in ("left", "right"):
        raise RuntimeError(f"Expected padding_side to be one of left or right, but got {padding_side}.")
    first = seqs[0]
    if first.dim() == 0:
        raise RuntimeError("ArrayRef: invalid slice, N = 1; size = 0")
    trailing = tuple(first.shape[1:])
    max_len = max(s.size(0) for s in seqs)
    lead = (len(seqs), max_len) if batch_first else (max_len, len(seqs))
    out = rustgrad.full(lead + trailing, padding_value, dtype=first.dtype, device=first.device)
    for i, seq in enumerate(seqs):
        length = seq.size(0)
        start = max_len - length if padding_side == "left" else 0
        _check_copy_shape((length, *trailing), tuple(seq.shape))
        if batch_first:
            out[i, start : start + length] = seq
        else:
            out[start : start + length, i] = seq
    return out


def _pack_padded(input: Tensor, lengths: Tensor, batch_first: bool) -> tuple[Tensor, Tensor]:
    """Packs a ``T x B x *`` (or ``B x T x *``) batch already sorted by decreasing length."""
    original = input
    if batch_first:
        input = input.transpose(0, 1)
    if lengths.dim() != 1:
        raise RuntimeError(
            f"'lengths' argument should be a 1D CPU int64 tensor, but got {lengths.dim()}D "
            f"{lengths.device.type} Long tensor"
        )
    batch_size = input.size(1)
    lens = lengths.tolist()
    if input.numel() == 0:
        raise RuntimeError("Cannot pack empty tensors.")
    if len(lens) != batch_size:
        raise RuntimeError(
            f"Expected `len(lengths)` to be equal to batch_size, but got {len(lens)} (batch_size={batch_size})"
        )
    if lens[-1] <= 0:
        raise RuntimeError(
            "Length of all samples has to be greater than 0, but found an element in 'lengths' that is <= 0"
        )
    for i in range(batch_size - 1):
        if lens[i + 1] > lens[i]:
            raise RuntimeError(
                "`lengths` array must be sorted in decreasing order when `enforce_sorted` is True. You can "
                "pass `enforce_sorted=False` to pack_padded_sequence and/or pack_sequence to sidestep this "
                "requirement if you do not need ONNX exportability."
            )
    # batch_sizes[t]: how many sequences are longer than t
    batch_sizes = [sum(1 for length in lens if length > t) for t in range(lens[0])]
    data = _rustgrad._pack_padded(original, lens, batch_first)
    return data, rustgrad.tensor(batch_sizes, dtype=rustgrad.int64)


def pack_padded_sequence(
    input: Tensor,
    lengths: Tensor | list[int],
    batch_first: bool = False,
    enforce_sorted: bool = True,
) -> PackedSequence:
    """Packs a padded batch (``T x B x *``, or ``B x T x *`` with ``batch_first=True``) of sequences
    of the given ``lengths`` (a list or a 1-D CPU tensor) into a ``PackedSequence``. With
    ``enforce_sorted=True`` the lengths must be decreasing; otherwise the batch is sorted first and
    the permutation kept in ``sorted_indices``.
    https://pytorch.org/docs/stable/generated/torch.nn.utils.rnn.pack_padded_sequence.html"""
    if not isinstance(lengths, Tensor):
        lengths_t = rustgrad.as_tensor(lengths, dtype=rustgrad.int64, device="cpu")
    else:
        lengths_t = lengths.to(dtype=rustgrad.int64)
    sorted_indices: Tensor | None
    if enforce_sorted:
        sorted_indices = None
    else:
        lengths_t, sorted_indices = rustgrad.sort(lengths_t, descending=True)
        sorted_indices = sorted_indices.to(input.device)
        input = input.index_select(0 if batch_first else 1, sorted_indices)
    data, batch_sizes = _pack_padded(input, lengths_t, batch_first)
    return PackedSequence(data, batch_sizes, sorted_indices, None)


def _pad_packed(
    data: Tensor, batch_sizes: Tensor, batch_first: bool, padding_value: float, total_length: int
) -> tuple[Tensor, Tensor]:
    sizes = batch_sizes.tolist()
    max_batch = sizes[0]
    steps = len(sizes)
    trailing = tuple(data.shape[1:])
    output = rustgrad.full(
        (total_length, max_batch, *trailing), padding_value, dtype=data.dtype, device=data.device
    )
    lengths = [0] * max_batch
    offset = 0
    prev_batch = max_batch
    prev_i = 0
    for i in range(steps + 1):
        batch = sizes[i] if i != steps else 0
        if batch != prev_batch:
            # Steps prev_i..i all have prev_batch sequences: one rectangular block of the output.
            n = prev_batch * (i - prev_i)
            block = data[offset : offset + n].reshape(i - prev_i, prev_batch, *trailing)
            output[prev_i:i, :prev_batch] = block
            offset += n
            prev_i = i
        for j in range(prev_batch - batch):
            lengths[prev_batch - 1 - j] = i
        prev_batch = batch
    if batch_first:
        output = output.transpose(0, 1)
    return output, rustgrad.tensor(lengths, dtype=rustgrad.int64)


def pad_packed_sequence(
    sequence: PackedSequence,
    batch_first: bool = False,
    padding_value: float = 0.0,
    total_length: int | None = None,
) -> tuple[Tensor, Tensor]:
    """The inverse of ``pack_padded_sequence``: the padded batch (``T x B x *``, or ``B x T x *``
    with ``batch_first=True``, in the original batch order) and the lengths (int64). ``total_length``
    pads to that many steps instead of the longest length.
    https://pytorch.org/docs/stable/generated/torch.nn.utils.rnn.pad_packed_sequence.html"""
    max_seq_length = sequence.batch_sizes.size(0)
    if total_length is not None:
        if total_length < max_seq_length:
            raise ValueError(
                "Expected total_length to be at least the length of the longest sequence in input, but got "
                f"total_length={total_length} and max sequence length being {max_seq_length}"
            )
        max_seq_length = total_length
    padded, lengths = _pad_packed(
        sequence.data, sequence.batch_sizes, batch_first, padding_value, max_seq_length
    )
    unsorted_indices = sequence.unsorted_indices
    if unsorted_indices is not None:
        return padded.index_select(0 if batch_first else 1, unsorted_indices), lengths[unsorted_indices.cpu()]
    return padded, lengths


def unpad_sequence(padded_sequences: Tensor, lengths: Tensor, batch_first: bool = False) -> list[Tensor]:
    """Splits a padded batch (``T x B x *``, or ``B x T x *`` with ``batch_first=True``) back into a
    list of the ``B`` sequences, each cut to its length in ``lengths`` (a tensor).
    https://pytorch.org/docs/stable/generated/torch.nn.utils.rnn.unpad_sequence.html"""
    # PyTorch transposes the caller's tensor in place here (transpose_); rustgrad leaves it alone.
    if not batch_first:
        padded_sequences = padded_sequences.transpose(0, 1)
    max_length = padded_sequences.shape[1]
    idx = rustgrad.arange(max_length, device=lengths.device)
    n_seqs, n_lengths = padded_sequences.shape[0], len(lengths)
    if n_seqs != n_lengths:  # zip(..., strict=True)'s error
        relation = "shorter" if n_lengths < n_seqs else "longer"
        raise ValueError(f"zip() argument 2 is {relation} than argument 1")
    return [seq[idx < length] for seq, length in zip(padded_sequences, lengths)]


def pack_sequence(sequences: list[Tensor], enforce_sorted: bool = True) -> PackedSequence:
    """Packs a list of variable-length tensors (``L_i x *``) into a ``PackedSequence``; with
    ``enforce_sorted=True`` they must come in decreasing length.
    https://pytorch.org/docs/stable/generated/torch.nn.utils.rnn.pack_sequence.html"""
    lengths = rustgrad.as_tensor([v.size(0) for v in sequences])
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences: PackedSequence) -> list[Tensor]:
    """The inverse of ``pack_sequence``: the list of the packed tensors, in their original order.
    https://pytorch.org/docs/stable/generated/torch.nn.utils.rnn.unpack_sequence.html"""
    padded_sequences, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded_sequences, lengths, batch_first=True)
