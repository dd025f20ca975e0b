"""The calibration data reader the int8 scripts hand to onnxruntime's ``quantize_static``."""

from __future__ import annotations

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

__all__ = ["CalibrationBatches"]


class CalibrationBatches(CalibrationDataReader):  # type: ignore[misc]
    """``data`` fed to the graph input ``name`` in batches of ``size`` along its first axis."""

    def __init__(self, name: str, data: np.ndarray, size: int) -> None:
        self._feeds = iter([{name: data[i : i + size]} for i in range(0, len(data), size)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        """The next batch's feed, None when every batch was given."""
        return next(self._feeds, None)
