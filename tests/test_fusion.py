"""Fusion plumbing: a fused template's cosine is the weighted sum of its parts' cosines."""

from __future__ import annotations

import numpy as np
import pytest

from facelens.models import registry
from facelens.models.fusion import FusionEmbedder
from facelens.pipeline.faces import FacePipeline

pytestmark = pytest.mark.usefixtures("float32_onnxruntime")  # exact checks of our graphs


def test_fused_cosine_is_the_weighted_sum_of_part_cosines(astronaut: np.ndarray) -> None:
    opencv = registry.load_embedder(registry.SFACE_EMBEDDER, runtime="opencv")
    onnx = registry.load_embedder(registry.SFACE_EMBEDDER, runtime="onnxruntime")
    fusion = FusionEmbedder("test-fusion", [opencv, onnx], [3.0, 1.0])
    assert fusion.weights == [0.75, 0.25] and fusion.dimension == 256
    fused = FacePipeline(embedder=fusion)
    single = FacePipeline(embedder=opencv)
    mirrored = np.ascontiguousarray(astronaut[:, ::-1])
    a, b = (fused.detect(image)[0] for image in (astronaut, mirrored))
    c, d = (single.detect(image)[0] for image in (astronaut, mirrored))
    assert a.template is not None and b.template is not None
    assert a.template.model_id == "test-fusion" and a.template.vector.shape == (256,)
    assert np.linalg.norm(a.template.vector) == pytest.approx(1.0, abs=1e-5)
    assert c.template is not None and d.template is not None
    single_score = float(c.template.vector @ d.template.vector)
    assert float(a.template.vector @ b.template.vector) == pytest.approx(single_score, abs=1e-4)
    assert a.part_crops == ()  # dropped once the template exists
    with pytest.raises(TypeError):
        fusion.embed(np.zeros((1, 112, 112, 3), np.uint8))


def test_a_flipped_part_sees_an_image_and_its_mirror_alike(astronaut: np.ndarray) -> None:
    sface = registry.load_embedder(registry.SFACE_EMBEDDER)
    flipped = FacePipeline(embedder=FusionEmbedder("test-flipped", [sface], [1.0], [True]))
    plain = FacePipeline(embedder=sface)
    mirrored = np.ascontiguousarray(astronaut[:, ::-1])
    templates = []
    for pipeline in (flipped, plain):
        a, b = (pipeline.detect(image)[0].template for image in (astronaut, mirrored))
        assert a is not None and b is not None
        templates.append(float(a.vector @ b.vector))
    flipped_score, plain_score = templates
    assert flipped_score > plain_score, (flipped_score, plain_score)
    assert 1 - flipped_score < 0.75 * (1 - plain_score)  # measured: about half


def test_the_default_embedder_is_the_accurate_fusion_with_int8_dlib() -> None:
    """The float32 fusion stays registered (and selectable) beside the int8 default."""
    spec = registry.get_spec(registry.DEFAULT_EMBEDDER)
    assert spec.parts == (("sface-2021dec-int8bq", 0.15), ("dlib-resnet-v1-int8", 0.85))
    assert spec.flipped_parts == ("dlib-resnet-v1-int8",)
    assert spec.calibration_file and "mirror" in spec.source
    float32 = registry.get_spec("fusion-sface-dlib-flip")
    assert float32.parts == (("sface-2021dec-int8bq", 0.15), ("dlib-resnet-v1", 0.85))


def test_the_int8_fusion_has_the_float_fusions_weights_and_its_own_calibration() -> None:
    from facelens.match.calibration import calibration_for

    spec = registry.get_spec("fusion-sface-dlib-int8-flip")
    assert spec.parts == (("sface-2021dec-int8bq", 0.15), ("dlib-resnet-v1-int8", 0.85))
    assert spec.flipped_parts == ("dlib-resnet-v1-int8",)
    assert calibration_for(spec.id).model_id == spec.id
    assert calibration_for(spec.id).model_id != "fusion-sface-dlib-flip"
