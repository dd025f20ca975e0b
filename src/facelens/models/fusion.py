"""Score-level fusion of several embedders, as one embedder.

A fused template is the concatenation of the parts' unit-norm templates, part
``i`` scaled by ``sqrt(w_i)`` with the weights summing to 1. The cosine of two
fused templates is then ``sum_i w_i * cos_i``: a weighted sum of the parts'
scores. Because each part's calibration maps its cosine linearly to a log
likelihood ratio, weights fitted by logistic regression on the parts'
calibrated scores (``benchmarks/fusion.py``) make this sum the fused evidence,
up to a linear map that the fusion's own calibration file records. Galleries,
scoring and calibration need no special case: a fusion is an embedder with
its own model id.

Each part keeps its own alignment (e.g. SFace's 112x112 ArcFace crop, dlib's
150x150 chip); the pipeline aligns a face once per part. A part may be
*flipped*: its template is then the normalised sum of the templates of the
crop and of its mirror image (test-time augmentation), always, because the
fusion's weights and calibration were measured that way.
"""

from __future__ import annotations

from collections.abc import Sequence

from facelens.models.base import Embedder
from facelens.models.spec import ModelSpec
from facelens.types import FloatArray, ImageArray

__all__ = ["FusionEmbedder", "accurate_fusion_spec", "embedder_parts", "fusion_spec"]


class FusionEmbedder:
    """Several embedders whose weighted, concatenated templates compare by a weighted score sum."""

    def __init__(
        self,
        model_id: str,
        parts: Sequence[Embedder],
        weights: Sequence[float],
        flips: Sequence[bool] | None = None,
    ) -> None:
        if len(parts) != len(weights) or not parts:
            raise ValueError("a fusion needs one weight per part, and at least one part")
        flips = list(flips) if flips is not None else [False] * len(parts)
        if len(flips) != len(parts):
            raise ValueError("a fusion needs one flip flag per part")
        total = float(sum(weights))
        self.model_id = model_id
        self.parts = list(parts)
        self.weights = [w / total for w in weights]
        self.flips = flips
        self.input_size = self.parts[0].input_size
        self.reference_landmarks = self.parts[0].reference_landmarks
        self.dimension = sum(p.dimension for p in self.parts)

    def embed(self, crops: ImageArray) -> FloatArray:
        """Not meaningful for a fusion: each part needs its own alignment.

        :func:`facelens.pipeline.embed.embed_face_crops` embeds a fusion from
        one crop list per part.
        """
        raise TypeError(f"{self.model_id} embeds per part (see embed_face_crops)")


def embedder_parts(embedder: Embedder) -> list[Embedder]:
    """The embedders whose alignments a face needs: the parts of a fusion, else itself."""
    return list(embedder.parts) if isinstance(embedder, FusionEmbedder) else [embedder]


def fusion_spec() -> ModelSpec:
    """The SFace + dlib fusion with weights fitted for calibration (log-loss)."""
    return _sface_dlib_spec(
        "fusion-sface-dlib",
        # Weights fitted by benchmarks/fusion.py on all LFW development people
        # (cross-fitted checks in docs/benchmarks.md).
        parts=(("sface-2021dec-int8bq", 0.364), ("dlib-resnet-v1", 0.636)),
        flipped_parts=(),
    )


def accurate_fusion_spec(int8: bool = False) -> ModelSpec:
    """The SFace + dlib fusion chosen for accuracy: dlib weighted 0.85 and flipped.

    The SFace weight 0.15 (on cosines) and flipping dlib only are what
    ``benchmarks/fusion_accuracy.py`` chose on every LFW fold under nested
    cross-validation (99.63%); flipping dlib costs far less than flipping SFace.
    With ``int8``, dlib's part is its int8 graph (``dlib-resnet-v1-int8``):
    ``fusion-sface-dlib-int8-flip``, faster, with its own calibration and as
    accurate on LFW (99.67%) and ORL; the lead decides whether it becomes the default.
    """
    dlib = "dlib-resnet-v1-int8" if int8 else "dlib-resnet-v1"
    return _sface_dlib_spec(
        "fusion-sface-dlib-int8-flip" if int8 else "fusion-sface-dlib-flip",
        parts=(("sface-2021dec-int8bq", 0.15), (dlib, 0.85)),
        flipped_parts=(dlib,),
    )


def _sface_dlib_spec(
    model_id: str, parts: tuple[tuple[str, float], ...], flipped_parts: tuple[str, ...]
) -> ModelSpec:
    return ModelSpec(
        id=model_id,
        task="embedder",
        family="fusion",
        package="",
        package_version="",
        module="",
        file="",
        sha256="",
        folded_digest="",
        licence="those of its parts (Apache-2.0 and CC0-1.0)",
        upstream="",
        input_spec="each part's own aligned crop (112x112 for SFace, 150x150 for dlib)",
        factory=None,  # the registry loads the parts and combines them
        parts=parts,
        flipped_parts=flipped_parts,
        calibration_file=f"{model_id}.json",
    )
