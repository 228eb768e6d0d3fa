"""The calibration's error: a request or a calibration file it cannot use."""

from __future__ import annotations

__all__ = [
    "CalibrationError",
]


class CalibrationError(ValueError):
    """A calibration request or calibration file is invalid (one line, names the cause)."""
