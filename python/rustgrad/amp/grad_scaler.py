"""``torch.amp.GradScaler``: loss scaling for mixed-precision training, with PyTorch's CPU behaviour.

On the CPU (``GradScaler('cpu')``) it really scales, as PyTorch does: ``scale(loss)`` multiplies by
the scale (65536 at first), ``unscale_``/``step`` divide the gradients back and skip the step when one
is inf or NaN, ``update`` grows or backs off the scale. For ``'cuda'`` (PyTorch's default) on this
CPU-only package it warns and disables itself as PyTorch does without CUDA: ``scale`` returns its
argument, ``step`` calls ``optimizer.step()``, ``update`` does nothing, ``state_dict()`` is ``{}``.
https://pytorch.org/docs/stable/amp.html#gradient-scaling
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from enum import Enum
from typing import Any

__all__ = ["GradScaler", "OptState"]


class OptState(Enum):
    """Where an optimizer is in the current iteration: nothing done, gradients unscaled, stepped."""

    READY = 0
    UNSCALED = 1
    STEPPED = 2


def _refresh_state() -> dict:
    return {"stage": OptState.READY, "found_inf_per_device": {}}


class GradScaler:
    """``torch.amp.GradScaler(device='cuda', init_scale=2.0**16, growth_factor=2.0, backoff_factor=0.5,
    growth_interval=2000, enabled=True)``.

    Args:
        device: ``'cpu'`` scales for real; ``'cuda'`` disables itself here (no CUDA) with PyTorch's warning.
        init_scale: the first scale factor.
        growth_factor: factor applied after ``growth_interval`` steps without inf/NaN gradients.
        backoff_factor: factor applied after a step with inf/NaN gradients (that step is skipped).
        growth_interval: number of clean steps between growths.
        enabled: False makes every method a pass-through.

    https://pytorch.org/docs/stable/amp.html#torch.amp.GradScaler
    """

    def __init__(
        self,
        device: str = "cuda",
        init_scale: float = 2.0**16,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
        enabled: bool = True,
    ) -> None:
        self._device = device
        self._enabled = enabled
        if self._device == "cuda" and enabled:
            warnings.warn("torch.cuda.amp.GradScaler is enabled, but CUDA is not available.  Disabling.", stacklevel=2)
            self._enabled = False
        if self._enabled:
            assert growth_factor > 1.0, "The growth factor must be > 1.0."
            assert backoff_factor < 1.0, "The backoff factor must be < 1.0."
            self._init_scale = init_scale
            self._scale: Any = None
            self._growth_factor = growth_factor
            self._backoff_factor = backoff_factor
            self._growth_interval = growth_interval
            self._init_growth_tracker = 0
            self._growth_tracker: Any = None
            self._per_optimizer_states: defaultdict = defaultdict(_refresh_state)

    def _check_scale_growth_tracker(self, funcname: str) -> None:
        fix = "This may indicate your script did not use scaler.scale(loss or outputs) earlier in the iteration."
        assert self._scale is not None, f"Attempted {funcname} but _scale is None.  " + fix
        assert self._growth_tracker is not None, f"Attempted {funcname} but _growth_tracker is None.  " + fix

    def _lazy_init_scale_growth_tracker(self) -> None:
        import rustgrad

        self._scale = rustgrad.full((), self._init_scale, dtype=rustgrad.float32)
        self._growth_tracker = rustgrad.full((), self._init_growth_tracker, dtype=getattr(rustgrad, "int32", rustgrad.int64))

    def scale(self, outputs: Any) -> Any:
        """Multiplies ``outputs`` (a tensor or nested tuples/lists of tensors) by the scale factor;
        returns them unchanged when disabled."""
        import rustgrad

        if not self._enabled:
            return outputs
        if isinstance(outputs, rustgrad.Tensor):
            if self._scale is None:
                self._lazy_init_scale_growth_tracker()
            return outputs * self._scale

        def apply_scale(val: Any) -> Any:
            if isinstance(val, rustgrad.Tensor):
                if self._scale is None:
                    self._lazy_init_scale_growth_tracker()
                return val * self._scale
            if isinstance(val, (list, tuple)):
                out = [apply_scale(v) for v in val]
                return type(val)(out)  # type: ignore[call-arg]
            raise ValueError("outputs must be a Tensor or an iterable of Tensors")

        return apply_scale(outputs)

    def _unscale_grads_(self, optimizer: Any, inv_scale: Any, found_inf: Any) -> None:
        import rustgrad

        with rustgrad.no_grad():
            for group in optimizer.param_groups:
                for param in group["params"]:
                    if param.grad is None:
                        continue
                    grad = param.grad
                    if not bool(grad.isfinite().all()):
                        found_inf.fill_(1.0)
                    grad.mul_(inv_scale)

    def unscale_(self, optimizer: Any) -> None:
        """Divides ``optimizer``'s gradients by the scale in place and records whether one is inf/NaN."""
        import rustgrad

        if not self._enabled:
            return
        self._check_scale_growth_tracker("unscale_")
        state = self._per_optimizer_states[id(optimizer)]
        if state["stage"] is OptState.UNSCALED:
            raise RuntimeError("unscale_() has already been called on this optimizer since the last update().")
        if state["stage"] is OptState.STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        inv_scale = self._scale.double().reciprocal().float()
        found_inf = rustgrad.full((), 0.0, dtype=rustgrad.float32)
        self._unscale_grads_(optimizer, inv_scale, found_inf)
        state["found_inf_per_device"]["cpu"] = found_inf
        state["stage"] = OptState.UNSCALED

    def step(self, optimizer: Any, *args: Any, **kwargs: Any) -> Any:
        """Unscales the gradients (unless done) and calls ``optimizer.step()`` unless one is inf/NaN;
        when disabled, just ``optimizer.step(*args, **kwargs)``."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is enabled.")
        self._check_scale_growth_tracker("step")
        state = self._per_optimizer_states[id(optimizer)]
        if state["stage"] is OptState.STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if state["stage"] is OptState.READY:
            self.unscale_(optimizer)
        assert len(state["found_inf_per_device"]) > 0, "No inf checks were recorded for this optimizer."
        retval = None
        if not sum(v.item() for v in state["found_inf_per_device"].values()):
            retval = optimizer.step(*args, **kwargs)
        state["stage"] = OptState.STEPPED
        return retval

    def update(self, new_scale: Any = None) -> None:
        """Backs the scale off after an inf/NaN step, grows it after ``growth_interval`` clean steps
        (or sets it to ``new_scale``); a no-op when disabled."""
        import rustgrad

        if not self._enabled:
            return
        self._check_scale_growth_tracker("update")
        if new_scale is not None:
            if isinstance(new_scale, float):
                self._scale.fill_(new_scale)
            else:
                reason = (
                    "new_scale should be a float or a 1-element torch.cuda.FloatTensor or "
                    "torch.FloatTensor with requires_grad=False."
                )
                assert isinstance(new_scale, rustgrad.Tensor), reason
                assert new_scale.numel() == 1, reason
                assert new_scale.requires_grad is False, reason
                self._scale.copy_(new_scale.reshape(()))
        else:
            found_infs = [
                found_inf
                for state in self._per_optimizer_states.values()
                for found_inf in state["found_inf_per_device"].values()
            ]
            assert len(found_infs) > 0, "No inf checks were recorded prior to update."
            found_inf_combined = sum(f.item() for f in found_infs)
            tracker = int(self._growth_tracker.item())
            if found_inf_combined:
                # float32 arithmetic, as PyTorch's update kernel.
                self._scale.mul_(self._backoff_factor)
                tracker = 0
            else:
                tracker += 1
                if tracker == self._growth_interval:
                    grown = self._scale * self._growth_factor
                    if bool(grown.isfinite()):
                        self._scale.copy_(grown)
                    tracker = 0
            self._growth_tracker.fill_(tracker)
        self._per_optimizer_states = defaultdict(_refresh_state)

    def get_scale(self) -> float:
        """The current scale factor (1.0 when disabled)."""
        if not self._enabled:
            return 1.0
        return self._init_scale if self._scale is None else float(self._scale.item())

    def get_growth_factor(self) -> float:
        """The growth factor."""
        return self._growth_factor

    def set_growth_factor(self, new_factor: float) -> None:
        """Sets the growth factor."""
        self._growth_factor = new_factor

    def get_backoff_factor(self) -> float:
        """The backoff factor."""
        return self._backoff_factor

    def set_backoff_factor(self, new_factor: float) -> None:
        """Sets the backoff factor."""
        self._backoff_factor = new_factor

    def get_growth_interval(self) -> int:
        """The growth interval."""
        return self._growth_interval

    def set_growth_interval(self, new_interval: int) -> None:
        """Sets the growth interval."""
        self._growth_interval = new_interval

    def _get_growth_tracker(self) -> int:
        if not self._enabled:
            return 0
        return self._init_growth_tracker if self._growth_tracker is None else int(self._growth_tracker.item())

    def is_enabled(self) -> bool:
        """Whether the scaler is active."""
        return self._enabled

    def state_dict(self) -> dict:
        """``scale``, ``growth_factor``, ``backoff_factor``, ``growth_interval``, ``_growth_tracker``;
        ``{}`` when disabled."""
        if not self._enabled:
            return {}
        return {
            "scale": self.get_scale(),
            "growth_factor": self._growth_factor,
            "backoff_factor": self._backoff_factor,
            "growth_interval": self._growth_interval,
            "_growth_tracker": self._get_growth_tracker(),
        }

    def load_state_dict(self, state_dict: dict) -> None:
        """Restores a :meth:`state_dict`; a no-op when disabled."""
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError(
                "The source state dict is empty, possibly because it was saved from a disabled instance of GradScaler."
            )
        self._init_scale = state_dict["scale"]
        if self._scale is not None:
            self._scale.fill_(state_dict["scale"])
        self._growth_factor = state_dict["growth_factor"]
        self._backoff_factor = state_dict["backoff_factor"]
        self._growth_interval = state_dict["growth_interval"]
        self._init_growth_tracker = state_dict["_growth_tracker"]
        if self._growth_tracker is not None:
            self._growth_tracker.fill_(state_dict["_growth_tracker"])
