"""The recurrent layers ``nn.RNN``, ``nn.LSTM``, ``nn.GRU`` and their one-step cells ``nn.RNNCell``,
``nn.LSTMCell``, ``nn.GRUCell``, with PyTorch's parameters, initialisation, checks and results.

The forward passes are written with rustgrad's tensor ops in the order of PyTorch's CPU kernels:
the input-to-hidden products of a whole layer first (one ``linear`` over all time steps), then one
step at a time ``linear(h, w_hh, b_hh) + gates_from_input`` and the cell's nonlinearities, the step
outputs joined with ``stack`` (``cat`` for packed sequences and for the two directions).
https://pytorch.org/docs/stable/nn.html#recurrent-layers
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import rustgrad
from rustgrad import Tensor, _rustgrad
from rustgrad.nn import functional as F
from rustgrad.nn import init
from rustgrad.nn.modules.module import Module
from rustgrad.nn.parameter import Parameter
from rustgrad.nn.utils.rnn import PackedSequence

__all__ = ["GRU", "LSTM", "RNN", "GRUCell", "LSTMCell", "RNNBase", "RNNCell", "RNNCellBase"]

_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}
_FUSED_DTYPES = (rustgrad.float32, rustgrad.float64)


def _any_autocast_enabled() -> bool:
    return bool(rustgrad.is_autocast_enabled("cpu") or rustgrad.is_autocast_enabled())


# ----- one time step of each cell -----


def _step(
    mode: str, gates_in: Tensor, hidden: Any, w_hh: Tensor, b_hh: Tensor | None, w_hr: Tensor | None
) -> Any:
    """One step of the cell ``mode`` from the input's gate pre-activations ``gates_in``
    (``x @ w_ih.T + b_ih``) and the previous hidden state, in PyTorch's CPU order of operations."""
    if mode == "LSTM":
        h, c = hidden
        gates = F.linear(h, w_hh, b_hh) + gates_in
        if gates.dtype in _FUSED_DTYPES and c.dtype == gates.dtype:
            # the nonlinearities and the state update in one op (same values)
            h, c = _rustgrad._lstm_cell(gates, c)
            if w_hr is not None:
                h = h.matmul(w_hr.t())
            return h, c
        ingate, forgetgate, cellgate, outgate = gates.chunk(4, 1)
        ingate = ingate.sigmoid()
        forgetgate = forgetgate.sigmoid()
        cellgate = cellgate.tanh()
        outgate = outgate.sigmoid()
        c = forgetgate * c + ingate * cellgate
        h = outgate * c.tanh()
        if w_hr is not None:
            h = h.matmul(w_hr.t())
        return h, c
    if mode == "GRU":
        h = hidden
        r_in, z_in, n_in = gates_in.chunk(3, 1)
        r_h, z_h, n_h = F.linear(h, w_hh, b_hh).chunk(3, 1)
        resetgate = (r_h + r_in).sigmoid()
        updategate = (z_h + z_in).sigmoid()
        newgate = (n_in + n_h * resetgate).tanh()
        return (h - newgate) * updategate + newgate
    pre = F.linear(hidden, w_hh, b_hh) + gates_in
    return pre.tanh() if mode == "RNN_TANH" else pre.relu()


def _output_of(mode: str, hidden: Any) -> Tensor:
    return hidden[0] if mode == "LSTM" else hidden


def _narrow_hidden(mode: str, hidden: Any, start: int, length: int) -> Any:
    if mode == "LSTM":
        return hidden[0].narrow(0, start, length), hidden[1].narrow(0, start, length)
    return hidden.narrow(0, start, length)


def _cat_hidden(mode: str, parts: list) -> Any:
    if len(parts) == 1:
        return parts[0]
    if mode == "LSTM":
        return rustgrad.cat([p[0] for p in parts], 0), rustgrad.cat([p[1] for p in parts], 0)
    return rustgrad.cat(parts, 0)


# ----- whole layers: padded (T x B x *) and packed -----


def _run_direction(mode: str, x: Tensor, hidden: Any, weights: list, reverse: bool) -> tuple[Tensor, Any]:
    """One direction of one layer over a ``T x B x I`` input: the ``T x B x H`` outputs (stacked)
    and the final hidden state."""
    w_ih, w_hh, b_ih, b_hh, w_hr = weights
    steps = F.linear(x, w_ih, b_ih).unbind(0)
    if not steps:
        raise RuntimeError("Expected sequence length to be larger than 0 in RNN")
    outputs = []
    for gates_in in reversed(steps) if reverse else steps:
        hidden = _step(mode, gates_in, hidden, w_hh, b_hh, w_hr)
        outputs.append(_output_of(mode, hidden))
    if reverse:
        outputs.reverse()
    return rustgrad.stack(outputs, 0), hidden


def _run_packed_direction(
    mode: str, data: Tensor, batch_sizes: list[int], hidden: Any, weights: list, reverse: bool
) -> tuple[Tensor, Any]:
    """One direction of one layer over packed data: the packed outputs and the final hidden state of
    every sequence (sequences that end early keep the state of their last step)."""
    w_ih, w_hh, b_ih, b_hh, w_hr = weights
    gates = F.linear(data, w_ih, b_ih)
    outputs = []
    if not reverse:
        finished = []  # final states as sequences end (the last batch rows first); reversed below
        offset = 0
        last = batch_sizes[0]
        for batch in batch_sizes:
            gates_in = gates.narrow(0, offset, batch)
            offset += batch
            if batch < last:
                finished.append(_narrow_hidden(mode, hidden, batch, last - batch))
                hidden = _narrow_hidden(mode, hidden, 0, batch)
            last = batch
            hidden = _step(mode, gates_in, hidden, w_hh, b_hh, w_hr)
            outputs.append(_output_of(mode, hidden))
        finished.append(hidden)
        finished.reverse()
        return rustgrad.cat(outputs, 0), _cat_hidden(mode, finished)
    # Backwards in time: start with the sequences still running at the last step and bring in the
    # initial states of the others as their last steps come up.
    initial = hidden
    offset = data.size(0)
    last = batch_sizes[-1]
    hidden = _narrow_hidden(mode, initial, 0, last)
    for batch in reversed(batch_sizes):
        if batch > last:
            hidden = _cat_hidden(mode, [hidden, _narrow_hidden(mode, initial, last, batch - last)])
        gates_in = gates.narrow(0, offset - batch, batch)
        offset -= batch
        last = batch
        hidden = _step(mode, gates_in, hidden, w_hh, b_hh, w_hr)
        outputs.append(_output_of(mode, hidden))
    outputs.reverse()
    return rustgrad.cat(outputs, 0), hidden


class RNNBase(Module):
    """The parameters and checks shared by ``RNN``, ``LSTM`` and ``GRU``; ``mode`` is ``'RNN_TANH'``,
    ``'RNN_RELU'``, ``'LSTM'`` or ``'GRU'``. Layer ``k`` (direction suffix ``_reverse``) has
    ``weight_ih_lk``, ``weight_hh_lk``, with ``bias=True`` ``bias_ih_lk`` and ``bias_hh_lk``, and for an
    LSTM with ``proj_size > 0`` ``weight_hr_lk``, all drawn from
    ``U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))``.
    https://pytorch.org/docs/stable/generated/torch.nn.RNNBase.html
    """

    mode: str
    input_size: int
    hidden_size: int
    num_layers: int
    bias: bool
    batch_first: bool
    dropout: float
    bidirectional: bool
    proj_size: int
    _flat_weights: list[Any]

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        factory_kwargs = {"device": device, "dtype": dtype}
        super().__init__()
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        num_directions = 2 if bidirectional else 1
        if not isinstance(dropout, numbers.Number) or isinstance(dropout, bool) or not 0 <= dropout <= 1:
            raise ValueError(
                "dropout should be a number in range [0, 1] representing the probability of an element being zeroed"
            )
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout option adds dropout after all but last recurrent layer, so non-zero dropout expects "
                f"num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}",
                stacklevel=2,
            )
        if not isinstance(bias, bool):
            raise TypeError(f"bias should be of type bool, got: {type(bias).__name__}")
        if not isinstance(batch_first, bool):
            raise TypeError(f"batch_first should be of type bool, got: {type(batch_first).__name__}")
        if not isinstance(input_size, int):
            raise TypeError(f"input_size should be of type int, got: {type(input_size).__name__}")
        if input_size <= 0:
            raise ValueError("input_size must be greater than zero")
        if not isinstance(hidden_size, int):
            raise TypeError(f"hidden_size should be of type int, got: {type(hidden_size).__name__}")
        if hidden_size <= 0:
            raise ValueError("hidden_size must be greater than zero")
        if num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if mode not in _GATES:
            raise ValueError("Unrecognized RNN mode: " + mode)
        gate_size = _GATES[mode] * hidden_size

        self._flat_weights_names: list[str] = []
        self._all_weights: list[list[str]] = []
        real_hidden_size = proj_size if proj_size > 0 else hidden_size
        for layer in range(num_layers):
            for direction in range(num_directions):
                layer_input_size = input_size if layer == 0 else real_hidden_size * num_directions
                suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                params: list[tuple[str, tuple[int, ...]]] = [
                    ("weight_ih" + suffix, (gate_size, layer_input_size)),
                    ("weight_hh" + suffix, (gate_size, real_hidden_size)),
                ]
                if bias:
                    params += [("bias_ih" + suffix, (gate_size,)), ("bias_hh" + suffix, (gate_size,))]
                if proj_size > 0:
                    params.append(("weight_hr" + suffix, (proj_size, hidden_size)))
                for name, shape in params:
                    setattr(self, name, Parameter(rustgrad.empty(shape, **factory_kwargs)))
                names = [name for name, _ in params]
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self._init_flat_weights()
        self.reset_parameters()

    def _init_flat_weights(self) -> None:
        self._flat_weights = [
            getattr(self, n) if hasattr(self, n) else None for n in self._flat_weights_names
        ]
        self.flatten_parameters()

    def __setattr__(self, attr: str, value: Any) -> None:
        names = self.__dict__.get("_flat_weights_names")
        flat = self.__dict__.get("_flat_weights")
        if names is not None and flat is not None and attr in names:
            # keep _flat_weights in step with ``module.weight_ih_l0 = ...``
            flat[names.index(attr)] = value
        super().__setattr__(attr, value)

    def flatten_parameters(self) -> None:
        """A no-op: PyTorch packs the weights into one cuDNN buffer here, and only on a GPU.
        https://pytorch.org/docs/stable/generated/torch.nn.RNNBase.html#torch.nn.RNNBase.flatten_parameters"""

    def _apply(self, fn: Any, recurse: bool = True) -> Module:
        result = super()._apply(fn, recurse)
        self._init_flat_weights()
        return result

    def reset_parameters(self) -> None:
        """Draws every parameter, in registration order, from
        ``U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))``.
        https://pytorch.org/docs/stable/generated/torch.nn.RNNBase.html"""
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def check_input(self, input: Tensor, batch_sizes: Tensor | None) -> None:
        """Raises PyTorch's errors for an input of the wrong dtype, number of dimensions (2 when
        packed, else 3) or feature size.
        https://pytorch.org/docs/stable/generated/torch.nn.RNNBase.html"""
        weight_dtype = self._flat_weights[0].dtype
        if input.dtype != weight_dtype and not _any_autocast_enabled():
            raise ValueError(
                f"RNN input dtype ({input.dtype}) does not match weight dtype ({weight_dtype}). "
                f"Convert input: input.to({weight_dtype}), or convert model: model.to({input.dtype})"
            )
        expected_input_dim = 2 if batch_sizes is not None else 3
        if input.dim() != expected_input_dim:
            raise RuntimeError(f"input must have {expected_input_dim} dimensions, got {input.dim()}")
        if self.input_size != input.size(-1):
            raise RuntimeError(
                f"input.size(-1) must be equal to input_size. Expected {self.input_size}, got {input.size(-1)}"
            )

    def get_expected_hidden_size(self, input: Tensor, batch_sizes: Tensor | None) -> tuple[int, int, int]:
        """``(num_layers * num_directions, batch, proj_size or hidden_size)``, the shape ``h_0`` must have.
        https://pytorch.org/docs/stable/generated/torch.nn.RNNBase.html"""
        if batch_sizes is not None:
            mini_batch = int(batch_sizes[0])
        else:
            mini_batch = input.size(0) if self.batch_first else input.size(1)
        num_directions = 2 if self.bidirectional else 1
        size = self.proj_size if self.proj_size > 0 else self.hidden_size
        return (self.num_layers * num_directions, mini_batch, size)

    def check_hidden_size(
        self,
        hx: Tensor,
        expected_hidden_size: tuple[int, int, int],
        msg: str = "Expected hidden size {}, got {}",
    ) -> None:
        """Raises ``RuntimeError(msg)`` unless ``hx`` has the expected shape.
        https://pytorch.org/docs/stable/generated/torch.nn.RNNBase.html"""
        if hx.size() != expected_hidden_size:
            raise RuntimeError(msg.format(expected_hidden_size, list(hx.size())))

    def check_forward_args(self, input: Tensor, hidden: Any, batch_sizes: Tensor | None) -> None:
        """``check_input`` and then the shape of the initial hidden state.
        https://pytorch.org/docs/stable/generated/torch.nn.RNNBase.html"""
        self.check_input(input, batch_sizes)
        self.check_hidden_size(hidden, self.get_expected_hidden_size(input, batch_sizes))

    def permute_hidden(self, hx: Any, permutation: Tensor | None) -> Any:
        """``hx`` with its batch dimension (1) reordered by ``permutation`` (unchanged for None).
        https://pytorch.org/docs/stable/generated/torch.nn.RNNBase.html"""
        if permutation is None:
            return hx
        return hx.index_select(1, permutation)

    def extra_repr(self) -> str:
        """The constructor arguments shown in the module's repr (those not at their defaults).
        https://pytorch.org/docs/stable/generated/torch.nn.RNNBase.html"""
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        if "proj_size" not in state:
            self.proj_size = 0
        if "_flat_weights_names" in state:
            self._init_flat_weights()

    @property
    def all_weights(self) -> list[list[Parameter]]:
        """The parameters per layer and direction: ``[[weight_ih_l0, weight_hh_l0, ...], ...]``.
        https://pytorch.org/docs/stable/generated/torch.nn.RNNBase.html"""
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    # ----- the shared forward machinery -----

    def _layer_weights(self) -> list[list]:
        """Per layer and direction: ``[w_ih, w_hh, b_ih, b_hh, w_hr]`` (None where absent)."""
        per = len(self._flat_weights_names) // len(self._all_weights)
        flat = [getattr(self, n) if hasattr(self, n) else None for n in self._flat_weights_names]
        self._flat_weights = flat
        out = []
        for k in range(len(self._all_weights)):
            ws = flat[k * per : (k + 1) * per]
            w_ih, w_hh = ws[0], ws[1]
            b_ih, b_hh = (ws[2], ws[3]) if self.bias else (None, None)
            w_hr = ws[-1] if self.proj_size > 0 else None
            out.append([w_ih, w_hh, b_ih, b_hh, w_hr])
        return out

    def _run(self, input: Tensor, hx: Any, batch_sizes: list[int] | None) -> tuple[Tensor, Any]:
        """All layers over a ``T x B x I`` input (already time-major) or packed data: the last
        layer's output and the final states stacked as ``(layers * directions) x B x H``."""
        mode = self.mode
        directions = 2 if self.bidirectional else 1
        weights = self._layer_weights()
        if mode == "LSTM":
            initial = list(zip(hx[0].unbind(0), hx[1].unbind(0)))
        else:
            initial = list(hx.unbind(0))
        finals: list[Any] = []
        layer_input = input
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                k = layer * directions + direction
                if batch_sizes is None and self._runs_as_layer_op(layer_input, initial[k], weights[k]):
                    w_ih, w_hh, b_ih, b_hh, _ = weights[k]
                    h0, c0 = initial[k]
                    out, h, c = _rustgrad._lstm_layer(layer_input, h0, c0, w_ih, w_hh, b_ih, b_hh, direction == 1)
                    final = (h, c)
                elif batch_sizes is None:
                    out, final = _run_direction(mode, layer_input, initial[k], weights[k], direction == 1)
                else:
                    out, final = _run_packed_direction(
                        mode, layer_input, batch_sizes, initial[k], weights[k], direction == 1
                    )
                outputs.append(out)
                finals.append(final)
            layer_input = outputs[0] if directions == 1 else rustgrad.cat(outputs, outputs[0].dim() - 1)
            if self.dropout != 0 and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, True)
        if mode == "LSTM":
            return layer_input, (
                rustgrad.stack([f[0] for f in finals], 0),
                rustgrad.stack([f[1] for f in finals], 0),
            )
        return layer_input, rustgrad.stack(finals, 0)

    def _runs_as_layer_op(self, layer_input: Tensor, initial: Any, weights: list) -> bool:
        """Whether one LSTM layer direction runs as one op: float32 without projections and
        outside autocast, as PyTorch runs its oneDNN layer op (``MkldnnRnnLayerBackward0``); the
        values are the op-by-op loop's either way."""
        if self.mode != "LSTM" or self.proj_size > 0 or _any_autocast_enabled():
            return False
        h0, c0 = initial
        dtypes = {layer_input.dtype, h0.dtype, c0.dtype, *(w.dtype for w in weights if w is not None)}
        return dtypes == {rustgrad.float32}

    def _forward_single_state(self, input: Any, hx: Tensor | None, name: str, tensor_word: str) -> Any:
        """The forward of ``RNN`` and ``GRU`` (one hidden state)."""
        num_directions = 2 if self.bidirectional else 1
        orig_input = input
        is_batched = True
        batch_dim = 0
        if isinstance(orig_input, PackedSequence):
            input, batch_sizes, sorted_indices, unsorted_indices = orig_input
            max_batch_size = int(batch_sizes[0])
            if hx is None:
                hx = rustgrad.zeros(
                    self.num_layers * num_directions, max_batch_size, self.hidden_size,
                    dtype=input.dtype, device=input.device,
                )  # fmt: skip
            else:
                hx = self.permute_hidden(hx, sorted_indices)
        else:
            batch_sizes = None
            if input.dim() not in (2, 3):
                raise ValueError(
                    f"{name}: Expected input to be 2D or 3D, got {input.dim()}D{tensor_word} instead"
                )
            is_batched = input.dim() == 3
            batch_dim = 0 if self.batch_first else 1
            if not is_batched:
                input = input.unsqueeze(batch_dim)
                if hx is not None:
                    if hx.dim() != 2:
                        raise RuntimeError(
                            f"For unbatched 2-D input, hx should also be 2-D but got {hx.dim()}-D tensor"
                        )
                    hx = hx.unsqueeze(1)
            elif hx is not None and hx.dim() != 3:
                raise RuntimeError(
                    f"For batched 3-D input, hx should also be 3-D but got {hx.dim()}-D tensor"
                )
            max_batch_size = input.size(0) if self.batch_first else input.size(1)
            sorted_indices = None
            unsorted_indices = None
            if hx is None:
                hx = rustgrad.zeros(
                    self.num_layers * num_directions, max_batch_size, self.hidden_size,
                    dtype=input.dtype, device=input.device,
                )  # fmt: skip
        self.check_forward_args(input, hx, batch_sizes)
        if batch_sizes is None:
            time_major = input.transpose(0, 1) if self.batch_first else input
            output, hidden = self._run(time_major, hx, None)
            if self.batch_first:
                # in place, as PyTorch's RNN and GRU do (TransposeBackward1)
                output = output.transpose_(0, 1)
        else:
            output, hidden = self._run(input, hx, batch_sizes.tolist())
        if isinstance(orig_input, PackedSequence):
            packed = PackedSequence(output, batch_sizes, sorted_indices, unsorted_indices)
            return packed, self.permute_hidden(hidden, unsorted_indices)
        if not is_batched:
            output = output.squeeze(batch_dim)
            hidden = hidden.squeeze(1)
        return output, self.permute_hidden(hidden, unsorted_indices)


class RNN(RNNBase):
    """Elman RNN: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` (``nonlinearity='relu'``
    for ReLU), over ``num_layers`` stacked layers, optionally bidirectional.

    ``RNN(input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True, batch_first=False,
    dropout=0.0, bidirectional=False, device=None, dtype=None)``; ``forward(input, hx=None)`` returns
    ``(output, h_n)``; ``input`` may be ``T x B x I`` (``B x T x I`` with ``batch_first``), unbatched
    ``T x I``, or a ``PackedSequence``.
    https://pytorch.org/docs/stable/generated/torch.nn.RNN.html
    """

    nonlinearity: str

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if len(args) > 3:
            self.nonlinearity = args[3]
            args = args[:3] + args[4:]
        else:
            self.nonlinearity = kwargs.pop("nonlinearity", "tanh")
        if self.nonlinearity == "tanh":
            mode = "RNN_TANH"
        elif self.nonlinearity == "relu":
            mode = "RNN_RELU"
        else:
            raise ValueError(f"Unknown nonlinearity '{self.nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__(mode, *args, **kwargs)

    def forward(self, input: Any, hx: Tensor | None = None) -> tuple[Any, Tensor]:
        """Runs the layers over ``input`` from ``hx`` (zeros by default): ``(output, h_n)``, with
        ``output`` the last layer's hidden states at every step (a ``PackedSequence`` for packed input)
        and ``h_n`` the final state of every layer and direction.
        https://pytorch.org/docs/stable/generated/torch.nn.RNN.html"""
        return self._forward_single_state(input, hx, "RNN", " tensor")


class LSTM(RNNBase):
    """Long short-term memory: gates ``i, f, g, o`` from ``x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh``,
    ``c_t = f * c_{t-1} + i * g``, ``h_t = o * tanh(c_t)`` (times ``W_hr^T`` when ``proj_size > 0``).

    ``LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, proj_size=0, device=None, dtype=None)``; ``forward(input, (h_0, c_0)=None)``
    returns ``(output, (h_n, c_n))``.
    https://pytorch.org/docs/stable/generated/torch.nn.LSTM.html
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__("LSTM", *args, **kwargs)

    def get_expected_cell_size(self, input: Tensor, batch_sizes: Tensor | None) -> tuple[int, int, int]:
        """``(num_layers * num_directions, batch, hidden_size)``, the shape ``c_0`` must have.
        https://pytorch.org/docs/stable/generated/torch.nn.LSTM.html"""
        if batch_sizes is not None:
            mini_batch = int(batch_sizes[0])
        else:
            mini_batch = input.size(0) if self.batch_first else input.size(1)
        num_directions = 2 if self.bidirectional else 1
        return (self.num_layers * num_directions, mini_batch, self.hidden_size)

    def check_forward_args(self, input: Tensor, hidden: Any, batch_sizes: Tensor | None) -> None:
        """``check_input`` and then the shapes of ``h_0`` and ``c_0``.
        https://pytorch.org/docs/stable/generated/torch.nn.LSTM.html"""
        self.check_input(input, batch_sizes)
        self.check_hidden_size(
            hidden[0], self.get_expected_hidden_size(input, batch_sizes), "Expected hidden[0] size {}, got {}"
        )
        self.check_hidden_size(
            hidden[1], self.get_expected_cell_size(input, batch_sizes), "Expected hidden[1] size {}, got {}"
        )

    def permute_hidden(self, hx: Any, permutation: Tensor | None) -> Any:
        """``(h, c)`` with their batch dimension (1) reordered by ``permutation`` (unchanged for None).
        https://pytorch.org/docs/stable/generated/torch.nn.LSTM.html"""
        if permutation is None:
            return hx
        return hx[0].index_select(1, permutation), hx[1].index_select(1, permutation)

    def forward(self, input: Any, hx: Any = None) -> tuple[Any, tuple[Tensor, Tensor]]:
        """Runs the layers over ``input`` from ``hx = (h_0, c_0)`` (zeros by default):
        ``(output, (h_n, c_n))`` (``output`` a ``PackedSequence`` for packed input).
        https://pytorch.org/docs/stable/generated/torch.nn.LSTM.html"""
        orig_input = input
        batch_sizes = None
        real_hidden_size = self.proj_size if self.proj_size > 0 else self.hidden_size
        is_batched = True
        batch_dim = 0
        if isinstance(orig_input, PackedSequence):
            input, batch_sizes, sorted_indices, unsorted_indices = orig_input
            max_batch_size = int(batch_sizes[0])
            if hx is None:
                hx = self._zero_state(input, max_batch_size, real_hidden_size)
            else:
                # PyTorch checks nothing more here for packed input
                hx = self.permute_hidden(hx, sorted_indices)
        else:
            if input.dim() not in (2, 3):
                raise ValueError(f"LSTM: Expected input to be 2D or 3D, got {input.dim()}D instead")
            is_batched = input.dim() == 3
            batch_dim = 0 if self.batch_first else 1
            if not is_batched:
                input = input.unsqueeze(batch_dim)
            max_batch_size = input.size(0) if self.batch_first else input.size(1)
            sorted_indices = None
            unsorted_indices = None
            if hx is None:
                hx = self._zero_state(input, max_batch_size, real_hidden_size)
                self.check_forward_args(input, hx, batch_sizes)
            else:
                if is_batched:
                    if hx[0].dim() != 3 or hx[1].dim() != 3:
                        raise RuntimeError(
                            "For batched 3-D input, hx and cx should also be 3-D but got "
                            f"({hx[0].dim()}-D, {hx[1].dim()}-D) tensors"
                        )
                else:
                    if hx[0].dim() != 2 or hx[1].dim() != 2:
                        raise RuntimeError(
                            "For unbatched 2-D input, hx and cx should also be 2-D but got "
                            f"({hx[0].dim()}-D, {hx[1].dim()}-D) tensors"
                        )
                    hx = (hx[0].unsqueeze(1), hx[1].unsqueeze(1))
                self.check_forward_args(input, hx, batch_sizes)
                hx = self.permute_hidden(hx, sorted_indices)
        if batch_sizes is None:
            time_major = input.transpose(0, 1) if self.batch_first else input
            output, hidden = self._run(time_major, hx, None)
            if self.batch_first:
                output = output.transpose(0, 1)
        else:
            output, hidden = self._run(input, hx, batch_sizes.tolist())
        if isinstance(orig_input, PackedSequence):
            packed = PackedSequence(output, batch_sizes, sorted_indices, unsorted_indices)
            return packed, self.permute_hidden(hidden, unsorted_indices)
        if not is_batched:
            output = output.squeeze(batch_dim)
            hidden = (hidden[0].squeeze(1), hidden[1].squeeze(1))
        return output, self.permute_hidden(hidden, unsorted_indices)

    def _zero_state(self, input: Tensor, batch: int, real_hidden_size: int) -> tuple[Tensor, Tensor]:
        layers = self.num_layers * (2 if self.bidirectional else 1)
        kw = {"dtype": input.dtype, "device": input.device}
        h = rustgrad.zeros(layers, batch, real_hidden_size, **kw)
        c = rustgrad.zeros(layers, batch, self.hidden_size, **kw)
        return h, c


class GRU(RNNBase):
    """Gated recurrent unit: reset and update gates ``r, z``,
    ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``,
    ``h_t = (1 - z) * n + z * h_{t-1}``.

    ``GRU(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, device=None, dtype=None)``; ``forward(input, hx=None)`` returns ``(output, h_n)``.
    https://pytorch.org/docs/stable/generated/torch.nn.GRU.html
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        super().__init__("GRU", *args, **kwargs)

    def forward(self, input: Any, hx: Tensor | None = None) -> tuple[Any, Tensor]:
        """Runs the layers over ``input`` from ``hx`` (zeros by default): ``(output, h_n)``
        (``output`` a ``PackedSequence`` for packed input).
        https://pytorch.org/docs/stable/generated/torch.nn.GRU.html"""
        return self._forward_single_state(input, hx, "GRU", "")


# ----- cells -----


def _check_cell_input(input: Tensor, input_size: int) -> None:
    if input.size(1) != input_size:
        raise RuntimeError(f"input has inconsistent input_size: got {input.size(1)} expected {input_size}")


def _check_cell_hidden(input: Tensor, hx: Tensor, hidden_size: int, label: int) -> None:
    if hx.dim() != 2:
        raise RuntimeError(f"Expected 2D hidden{label} (batch x hidden_size), but got {hx.dim()}D tensor")
    if input.size(0) != hx.size(0):
        raise RuntimeError(
            f"Input batch size {input.size(0)} doesn't match hidden{label} batch size {hx.size(0)}"
        )
    if hx.size(1) != hidden_size:
        raise RuntimeError(
            f"hidden{label} has inconsistent hidden_size: got {hx.size(1)}, expected {hidden_size}"
        )


class RNNCellBase(Module):
    """The parameters shared by the cells: ``weight_ih`` (``num_chunks * hidden_size x input_size``),
    ``weight_hh`` (``num_chunks * hidden_size x hidden_size``) and, with ``bias``, ``bias_ih`` and
    ``bias_hh``, drawn from ``U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))``.
    https://pytorch.org/docs/stable/generated/torch.nn.RNNCell.html
    """

    input_size: int
    hidden_size: int
    bias: bool
    weight_ih: Tensor
    weight_hh: Tensor

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool,
        num_chunks: int,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        factory_kwargs = {"device": device, "dtype": dtype}
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.weight_ih = Parameter(rustgrad.empty((num_chunks * hidden_size, input_size), **factory_kwargs))
        self.weight_hh = Parameter(rustgrad.empty((num_chunks * hidden_size, hidden_size), **factory_kwargs))
        if bias:
            self.bias_ih = Parameter(rustgrad.empty(num_chunks * hidden_size, **factory_kwargs))
            self.bias_hh = Parameter(rustgrad.empty(num_chunks * hidden_size, **factory_kwargs))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def extra_repr(self) -> str:
        """The constructor arguments shown in the module's repr (those not at their defaults).
        https://pytorch.org/docs/stable/generated/torch.nn.RNNCell.html"""
        s = f"{self.input_size}, {self.hidden_size}"
        if "bias" in self.__dict__ and self.bias is not True:
            s += f", bias={self.bias}"
        if "nonlinearity" in self.__dict__ and self.__dict__["nonlinearity"] != "tanh":
            s += f", nonlinearity={self.__dict__['nonlinearity']}"
        return s

    def reset_parameters(self) -> None:
        """Draws every parameter, in registration order, from
        ``U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))``.
        https://pytorch.org/docs/stable/generated/torch.nn.RNNCell.html"""
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)


class RNNCell(RNNCellBase):
    """One step of an Elman RNN: ``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (or ReLU).
    ``forward(input, hx=None)`` takes ``B x input_size`` (or unbatched ``input_size``) input.
    https://pytorch.org/docs/stable/generated/torch.nn.RNNCell.html
    """

    nonlinearity: str

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=1, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        """The next hidden state from ``input`` and ``hx`` (zeros by default).
        https://pytorch.org/docs/stable/generated/torch.nn.RNNCell.html"""
        if input.dim() not in (1, 2):
            raise ValueError(f"RNNCell: Expected input to be 1D or 2D, got {input.dim()}D instead")
        if hx is not None and hx.dim() not in (1, 2):
            raise ValueError(f"RNNCell: Expected hidden to be 1D or 2D, got {hx.dim()}D instead")
        is_batched = input.dim() == 2
        if not is_batched:
            input = input.unsqueeze(0)
        if hx is None:
            hx = rustgrad.zeros(input.size(0), self.hidden_size, dtype=input.dtype, device=input.device)
        elif not is_batched:
            hx = hx.unsqueeze(0)
        if self.nonlinearity == "tanh":
            mode = "RNN_TANH"
        elif self.nonlinearity == "relu":
            mode = "RNN_RELU"
        else:
            raise RuntimeError(f"Unknown nonlinearity: {self.nonlinearity}")
        _check_cell_input(input, self.weight_ih.size(1))
        _check_cell_hidden(input, hx, self.weight_hh.size(1), 0)
        hidden_part = F.linear(hx, self.weight_hh, self.bias_hh)
        pre = hidden_part + F.linear(input, self.weight_ih, self.bias_ih)
        ret = pre.tanh() if mode == "RNN_TANH" else pre.relu()
        if not is_batched:
            ret = ret.squeeze(0)
        return ret


class LSTMCell(RNNCellBase):
    """One LSTM step: gates ``i, f, g, o`` from ``x W_ih^T + b_ih + h W_hh^T + b_hh``,
    ``c' = f * c + i * g``, ``h' = o * tanh(c')``. ``forward(input, (h, c)=None)`` returns ``(h', c')``.
    https://pytorch.org/docs/stable/generated/torch.nn.LSTMCell.html
    """

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device: Any = None, dtype: Any = None
    ) -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=4, device=device, dtype=dtype)

    def forward(self, input: Tensor, hx: Any = None) -> tuple[Tensor, Tensor]:
        """The next ``(h, c)`` from ``input`` and ``hx = (h, c)`` (zeros by default).
        https://pytorch.org/docs/stable/generated/torch.nn.LSTMCell.html"""
        if input.dim() not in (1, 2):
            raise ValueError(f"LSTMCell: Expected input to be 1D or 2D, got {input.dim()}D instead")
        if hx is not None:
            for idx, value in enumerate(hx):
                if value.dim() not in (1, 2):
                    raise ValueError(
                        f"LSTMCell: Expected hx[{idx}] to be 1D or 2D, got {value.dim()}D instead"
                    )
        is_batched = input.dim() == 2
        if not is_batched:
            input = input.unsqueeze(0)
        if hx is None:
            zeros = rustgrad.zeros(input.size(0), self.hidden_size, dtype=input.dtype, device=input.device)
            hx = (zeros, zeros)
        elif not is_batched:
            hx = (hx[0].unsqueeze(0), hx[1].unsqueeze(0))
        if not isinstance(hx, (tuple, list)):
            raise TypeError(
                f"lstm_cell(): argument 'hx' (position 2) must be tuple of Tensors, not {type(hx).__name__}"
            )
        if len(hx) != 2:
            raise RuntimeError("lstm_cell expects two hidden states")
        _check_cell_input(input, self.weight_ih.size(1))
        _check_cell_hidden(input, hx[0], self.weight_hh.size(1), 0)
        _check_cell_hidden(input, hx[1], self.weight_hh.size(1), 1)
        h, c = hx
        gates = F.linear(h, self.weight_hh, self.bias_hh) + F.linear(input, self.weight_ih, self.bias_ih)
        ingate, forgetgate, cellgate, outgate = gates.chunk(4, 1)
        ingate = ingate.sigmoid()
        forgetgate = forgetgate.sigmoid()
        cellgate = cellgate.tanh()
        outgate = outgate.sigmoid()
        c = forgetgate * c + ingate * cellgate
        h = outgate * c.tanh()
        if not is_batched:
            return h.squeeze(0), c.squeeze(0)
        return h, c


class GRUCell(RNNCellBase):
    """One GRU step: ``r, z`` gates, ``n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))``,
    ``h' = (1 - z) * n + z * h``. ``forward(input, hx=None)`` returns ``h'``.
    https://pytorch.org/docs/stable/generated/torch.nn.GRUCell.html
    """

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device: Any = None, dtype: Any = None
    ) -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=3, device=device, dtype=dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        """The next hidden state from ``input`` and ``hx`` (zeros by default).
        https://pytorch.org/docs/stable/generated/torch.nn.GRUCell.html"""
        if input.dim() not in (1, 2):
            raise ValueError(f"GRUCell: Expected input to be 1D or 2D, got {input.dim()}D instead")
        if hx is not None and hx.dim() not in (1, 2):
            raise ValueError(f"GRUCell: Expected hidden to be 1D or 2D, got {hx.dim()}D instead")
        is_batched = input.dim() == 2
        if not is_batched:
            input = input.unsqueeze(0)
        if hx is None:
            hx = rustgrad.zeros(input.size(0), self.hidden_size, dtype=input.dtype, device=input.device)
        elif not is_batched:
            hx = hx.unsqueeze(0)
        _check_cell_input(input, self.weight_ih.size(1))
        _check_cell_hidden(input, hx, self.weight_hh.size(1), 0)
        gates_in = F.linear(input, self.weight_ih, self.bias_ih)
        ret = _step("GRU", gates_in, hx, self.weight_hh, self.bias_hh, None)
        if not is_batched:
            ret = ret.squeeze(0)
        return ret
