"""Fusion plumbing: a fused template's cosine is the weighted sum of its parts' cosines."""

from __future__ import annotations

import numpy as np
import pytest

from facelens.models import registry
from facelens.models.fusion import FusionEmbedder
from facelens.pipeline.analyzer import FaceAnalyzer


def test_fused_cosine_is_the_weighted_sum_of_part_cosines(astronaut: np.ndarray) -> None:
    opencv = registry.load_embedder(runtime="opencv")
    onnx = registry.load_embedder(runtime="onnxruntime")
    fusion = FusionEmbedder("test-fusion", [opencv, onnx], [3.0, 1.0])
    assert fusion.weights == [0.75, 0.25] and fusion.dimension == 256
    fused = FaceAnalyzer(embedder=fusion)
    single = FaceAnalyzer(embedder=opencv)
    mirrored = np.ascontiguousarray(astronaut[:, ::-1])
    a, b = (fused.analyze(image)[0] for image in (astronaut, mirrored))
    c, d = (single.analyze(image)[0] for image in (astronaut, mirrored))
    assert a.template is not None and b.template is not None
    assert a.template.model_id == "test-fusion" and a.template.vector.shape == (256,)
    assert np.linalg.norm(a.template.vector) == pytest.approx(1.0, abs=1e-5)
    assert c.template is not None and d.template is not None
    single_score = float(c.template.vector @ d.template.vector)
    assert float(a.template.vector @ b.template.vector) == pytest.approx(single_score, abs=1e-4)
    assert a.part_crops == ()  # dropped once the template exists
    with pytest.raises(TypeError):
        fusion.embed(np.zeros((1, 112, 112, 3), np.uint8))
