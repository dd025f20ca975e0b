"""Facial analysis beyond identity: expression, apparent age and gender, per face and per track.

* :mod:`facelens.analysis.attributes`: :class:`FaceAttributes`, :class:`AnalyzedFace`.
* :mod:`facelens.analysis.crops`: the crop each attribute model expects.
* :mod:`facelens.analysis.analyzer`: :class:`AttributeAnalyzer` (models run per image).
* :mod:`facelens.analysis.smoothing`: expression scores smoothed along a video track.
"""

from facelens.analysis.analyzer import AttributeAnalyzer
from facelens.analysis.attributes import AnalyzedFace, FaceAttributes

__all__ = ["AnalyzedFace", "AttributeAnalyzer", "FaceAttributes"]
