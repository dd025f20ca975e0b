"""The two protocols every model family implements.

Callers depend on these, never on a concrete model, so a second detector or
embedder is added by registering it in :mod:`facelens.models.registry`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from facelens.types import Detection, FloatArray, ImageArray

__all__ = ["BatchedEmbedder", "Detector", "Embedder", "OwnAlignment"]


class Detector(Protocol):
    """Finds faces and their 5 landmarks."""

    model_id: str

    def detect(self, image: ImageArray) -> list[Detection]:
        """Faces in an RGB uint8 ``(H, W, 3)`` image, coordinates in its pixels."""
        ...


class Embedder(Protocol):
    """Turns aligned face crops into L2-normalised templates."""

    model_id: str
    input_size: tuple[int, int]  # (width, height) of the aligned crop in pixels
    reference_landmarks: FloatArray  # (5, 2) x, y where the 5 landmarks go in the crop
    dimension: int

    def embed(self, crops: ImageArray) -> FloatArray:
        """``(N, H, W, 3)`` RGB uint8 crops -> ``(N, dimension)`` float32, unit L2 norm."""
        ...


@runtime_checkable
class BatchedEmbedder(Protocol):
    """An embedder that states how many faces a call it runs best at (callers may send
    more; fewer wastes time)."""

    faces_per_call: int


@runtime_checkable
class OwnAlignment(Protocol):
    """An embedder that cuts its own crops (e.g. dlib's shape-predictor chips)
    instead of the similarity alignment of the detector's 5 landmarks."""

    own_alignment: bool

    def align(self, image: ImageArray, detection: Detection) -> ImageArray:
        """The crop for one detected face of an RGB uint8 image, in its pixels."""
        ...
