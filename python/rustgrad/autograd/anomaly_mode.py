"""Anomaly detection: ``detect_anomaly`` and ``set_detect_anomaly`` (process-wide, as in PyTorch).

While on, each graph node remembers the traceback of the forward call that created it; an
error in backward is preceded by a warning showing that traceback, and a backward function
returning NaN raises ``RuntimeError: Function 'XBackward0' returned nan values in its 0th output.``
"""

from __future__ import annotations

import warnings

from rustgrad import _rustgrad

__all__ = ["detect_anomaly", "is_anomaly_check_nan_enabled", "is_anomaly_enabled", "set_detect_anomaly"]

is_anomaly_enabled = _rustgrad.is_anomaly_enabled
is_anomaly_check_nan_enabled = _rustgrad.is_anomaly_check_nan_enabled


class detect_anomaly:
    """Context manager (and decorator) turning anomaly detection on."""

    def __init__(self, check_nan: bool = True) -> None:
        self.prev = is_anomaly_enabled()
        self.check_nan = check_nan
        self.prev_check_nan = is_anomaly_check_nan_enabled()
        warnings.warn(
            "Anomaly Detection has been enabled. This mode will increase the runtime and should only be enabled "
            "for debugging.",
            stacklevel=2,
        )

    def __enter__(self) -> None:
        _rustgrad._set_anomaly_enabled(True, self.check_nan)

    def __exit__(self, *args) -> None:
        _rustgrad._set_anomaly_enabled(self.prev, self.prev_check_nan)

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__(self.check_nan):
                return fn(*args, **kwargs)

        return wrapper


class set_detect_anomaly:
    """Turns anomaly detection on or off, now (as a function) or for a block (as a context manager)."""

    def __init__(self, mode: bool, check_nan: bool = True) -> None:
        self.prev = is_anomaly_enabled()
        self.prev_check_nan = is_anomaly_check_nan_enabled()
        _rustgrad._set_anomaly_enabled(bool(mode), check_nan)

    def __enter__(self) -> None:
        pass

    def __exit__(self, *args) -> None:
        _rustgrad._set_anomaly_enabled(self.prev, self.prev_check_nan)
