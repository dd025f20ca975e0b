"""The pipeline on real faces: every input form and format, EXIF, large photos, bad items in a batch."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from facelens.errors import ImageDecodeError, ImageTooLargeError
from facelens.models import registry
from facelens.pipeline.align import similarity_transform
from facelens.pipeline.detect import LARGE_FACE, detect_faces
from facelens.pipeline.faces import FacePipeline, ImageFaces
from facelens.pipeline.quality import assess_quality
from facelens.types import Detection, Face, ImageArray


def _only_face(faces: list[Face]) -> Face:
    assert len(faces) == 1, [f.box.as_list() for f in faces]
    return faces[0]


def _similarity(a: Face, b: Face) -> float:
    assert a.template is not None and b.template is not None
    return float(a.template.vector @ b.template.vector)


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def test_face_record_is_complete(pipeline: FacePipeline, obama_photo: Path) -> None:
    face = _only_face(pipeline.detect(obama_photo))
    record = face.to_dict()
    assert set(record) == {"box", "landmarks", "score", "quality"}
    assert len(record["box"]) == 4 and len(record["landmarks"]) == 5
    assert set(record["quality"]) >= {"value", "reasons", "face_size", "sharpness", "yaw", "score"}
    assert face.template is not None
    assert face.template.vector.shape == (pipeline.embedder.dimension,)
    assert abs(float(np.linalg.norm(face.template.vector)) - 1) < 1e-5
    left_eye, right_eye = face.landmarks[0], face.landmarks[1]
    assert left_eye[0] < right_eye[0]  # image-left eye first
    x, y, w, h = face.box.as_list()
    assert all(x <= px <= x + w and y <= py <= y + h for px, py in face.landmarks)


@pytest.mark.parametrize(
    ("mode", "fmt", "min_similarity"),
    [
        ("L", "PNG", 0.8),
        ("RGBA", "PNG", 0.97),
        ("P", "GIF", 0.9),
        ("CMYK", "JPEG", 0.97),
        ("RGB", "WEBP", 0.97),
        ("I;16", "PNG", 0.8),
    ],
)
def test_every_format_finds_the_same_person(
    pipeline: FacePipeline, obama_photo: Path, mode: str, fmt: str, min_similarity: float
) -> None:
    reference = _only_face(pipeline.detect(obama_photo))
    original = Image.open(obama_photo).convert("RGB")
    if mode == "I;16":
        converted = Image.fromarray(np.asarray(original.convert("L")).astype(np.uint16) * 257)
    else:
        converted = original.convert(mode)
    face = _only_face(pipeline.detect(_encode(converted, fmt)))
    assert _similarity(reference, face) > min_similarity


def test_sources_path_bytes_array_pil_agree(pipeline: FacePipeline, obama_photo: Path) -> None:
    rgb = np.asarray(Image.open(obama_photo).convert("RGB"))
    results = [
        pipeline.detect(obama_photo),
        pipeline.detect(obama_photo.read_bytes()),
        pipeline.detect(rgb),
        pipeline.detect(np.ascontiguousarray(rgb[:, :, ::-1]), channel_order="BGR"),
        pipeline.detect(Image.open(obama_photo)),
    ]
    reference = _only_face(results[0])
    for faces in results[1:]:
        assert _similarity(reference, _only_face(faces)) > 0.9999


def test_exif_rotated_photo_is_upright(pipeline: FacePipeline, obama_photo: Path) -> None:
    reference = _only_face(pipeline.detect(obama_photo))
    original = Image.open(obama_photo).convert("RGB")
    stored_sideways = original.transpose(Image.Transpose.ROTATE_90)  # pixels lie on their side
    exif = stored_sideways.getexif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display": undoes the rotation above
    face = _only_face(
        pipeline.detect(_encode(stored_sideways, "JPEG", exif=exif.tobytes(), quality=95))
    )
    assert abs(face.box.x - reference.box.x) < 5 and abs(face.box.y - reference.box.y) < 5
    assert _similarity(reference, face) > 0.97


def test_large_photo_is_searched_small_but_aligned_from_full_resolution(
    pipeline: FacePipeline, obama_photo: Path
) -> None:
    original = np.asarray(Image.open(obama_photo).convert("RGB"))
    reference = _only_face(pipeline.detect(original))
    factor = 5000 / max(original.shape[:2])
    large = cv2.resize(original, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
    face = _only_face(pipeline.detect(large))
    assert face.box.x == pytest.approx(reference.box.x * factor, rel=0.05)
    # YuNet's eye distance moves a little with the scale searched: the reference is found at
    # 1137 px, the large copy at half of 1280 (107, 115 px at the photo's scale; 111 at 1280)
    assert face.quality.face_size == pytest.approx(reference.quality.face_size * factor, rel=0.1)
    assert _similarity(reference, face) > 0.97
    with pytest.raises(ImageTooLargeError):
        FacePipeline(max_pixels=large.shape[0] * large.shape[1] - 1).detect(large)


class _CountingDetector:
    """The real detector, counting its searches and the sizes searched."""

    def __init__(self) -> None:
        self.inner = registry.load_detector()
        self.searched: list[tuple[int, int]] = []

    def detect(self, image: ImageArray) -> list[Detection]:
        self.searched.append(image.shape[:2])
        return self.inner.detect(image)


def test_a_photo_of_large_faces_is_not_searched_enlarged(astronaut: ImageArray) -> None:
    counting = _CountingDetector()
    large = detect_faces(counting, astronaut)  # 512 px, a face of about 100 px
    assert counting.searched == [(512, 512)]
    assert large and min(large[0].box.width, large[0].box.height) >= LARGE_FACE

    counting.searched.clear()
    small = np.ascontiguousarray(cv2.resize(astronaut, (160, 160), interpolation=cv2.INTER_AREA))
    found = detect_faces(counting, small)  # its face is about 30 px: searched again at 2x
    assert counting.searched == [(160, 160), (320, 320)]
    assert found and found[0].box.width < LARGE_FACE

    counting.searched.clear()
    detect_faces(counting, astronaut, large_face=None)  # always enlarged, as before
    assert counting.searched == [(1024, 1024)]


def _iou(a: Detection, b: Detection) -> float:
    ax, ay, aw, ah = a.box.as_list()
    bx, by, bw, bh = b.box.as_list()
    overlap_x = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    overlap_y = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    overlap = overlap_x * overlap_y
    return overlap / (aw * ah + bw * bh - overlap)


def test_a_large_photo_of_large_faces_is_searched_at_half_scale(astronaut: ImageArray) -> None:
    counting = _CountingDetector()
    large = np.ascontiguousarray(cv2.resize(astronaut, (2560, 2560), interpolation=cv2.INTER_CUBIC))
    coarse = detect_faces(counting, large, coarse_first=True)  # its face: ~125 px at 640
    assert counting.searched == [(640, 640)]

    counting.searched.clear()
    full = detect_faces(counting, large)  # without coarse_first: the 1280 px copy, as before
    assert counting.searched == [(1280, 1280)]
    assert len(coarse) == len(full) == 1
    assert _iou(coarse[0], full[0]) > 0.85
    spread = np.abs(coarse[0].landmarks - full[0].landmarks).max() / full[0].box.width
    assert spread < 0.05  # landmarks in the photo's pixels, within 5% of the face's width

    counting.searched.clear()
    detect_faces(counting, large, coarse_first=True, large_face=None)  # never: the full search
    assert counting.searched == [(1280, 1280)]


def test_a_small_face_at_half_scale_brings_the_full_search(astronaut: ImageArray) -> None:
    """A face under LARGE_FACE pixels at half scale is searched again at the full scale."""
    counting = _CountingDetector()
    canvas = np.full((2560, 2560, 3), 128, dtype=np.uint8)
    canvas[1000:1512, 1000:1512] = astronaut  # its face: ~90 px, ~23 px at 640
    found = detect_faces(counting, canvas, coarse_first=True)
    assert counting.searched == [(640, 640), (1280, 1280)]
    assert len(found) == 1 and 1000 < found[0].box.x < 1512 and 1000 < found[0].box.y < 1512
    assert min(found[0].box.width, found[0].box.height) < 4 * LARGE_FACE  # under 80 px at 640


def test_the_pipeline_searches_large_photos_coarse_first(astronaut: ImageArray) -> None:
    counting = _CountingDetector()
    large = np.ascontiguousarray(cv2.resize(astronaut, (2560, 2560), interpolation=cv2.INTER_CUBIC))
    FacePipeline(counting, embedder="dlib-resnet-v1").detect(large, embed=False)
    assert counting.searched == [(640, 640)]
    counting.searched.clear()
    FacePipeline(counting, embedder="dlib-resnet-v1", large_face=None).detect(large, embed=False)
    assert counting.searched == [(1280, 1280)]


def test_quality_names_what_is_wrong(pipeline: FacePipeline, obama_photo: Path) -> None:
    face = _only_face(pipeline.detect(obama_photo))
    assert face.quality.value == 1.0 and face.quality.reasons == ()
    assert face.aligned is not None
    blurred = cv2.GaussianBlur(face.aligned, (0, 0), 4)
    blurry = assess_quality(face.landmarks, blurred, face.score)
    assert blurry.value < 0.5 and any("blurred" in r for r in blurry.reasons)
    tiny = assess_quality(face.landmarks * 0.1, face.aligned, face.score)
    assert tiny.value < 0.5 and any("small face" in r for r in tiny.reasons)
    turned = face.landmarks.copy()
    turned[2, 0] = turned[1, 0]  # nose tip under the right eye: a strongly turned head
    assert any("head turned" in r for r in assess_quality(turned, face.aligned, face.score).reasons)


def test_similarity_transform_recovers_a_known_transform() -> None:
    rng = np.random.default_rng(3)
    points = rng.uniform(0, 100, (5, 2)).astype(np.float32)
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -4.0])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = (points @ rotation.T + shift).astype(np.float32)
    matrix = similarity_transform(points, moved)
    assert np.allclose(matrix[:, :2], rotation, atol=1e-4)
    assert np.allclose(matrix[:, 2], shift, atol=1e-3)


def test_one_bad_item_never_sinks_the_batch(
    pipeline: FacePipeline, obama_photo: Path, tmp_path: Path
) -> None:
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(obama_photo.read_bytes()[:5000])
    upload = tmp_path / "upload.jpg"
    upload.write_bytes(b"%PDF-1.4 this is not an image")
    huge = tmp_path / "huge.png"
    Image.new("L", (9000, 8000)).save(huge)
    no_face = np.full((240, 320, 3), 200, np.uint8)
    sources = [obama_photo, truncated, upload, tmp_path / "missing.jpg", huge, no_face, obama_photo]
    results = list(pipeline.detect_many(sources))
    assert [r.source for r in results[:3]] == [str(obama_photo), str(truncated), str(upload)]
    assert len(results[0].faces) == 1 and len(results[-1].faces) == 1
    assert isinstance(results[1].error, ImageDecodeError)
    assert isinstance(results[2].error, ImageDecodeError)
    assert results[3].error is not None and "no such file" in str(results[3].error)
    assert isinstance(results[4].error, ImageTooLargeError)
    assert results[5].error is None and results[5].faces == []


class _RecordingEmbedder:
    """The real SFace embedder, recording how many crops each call gets."""

    def __init__(self) -> None:
        from facelens.models import registry

        self.inner = registry.load_embedder(registry.SFACE_EMBEDDER)
        self.model_id = self.inner.model_id
        self.input_size = self.inner.input_size
        self.reference_landmarks = self.inner.reference_landmarks
        self.dimension = self.inner.dimension
        self.calls: list[int] = []

    def embed(self, crops: np.ndarray) -> np.ndarray:
        self.calls.append(len(crops))
        return self.inner.embed(crops)


def test_faces_are_embedded_a_few_crops_a_call(astronaut: np.ndarray) -> None:
    """A chunk of 8 images is embedded in calls of EMBED_BATCH_SIZE crops (activations stay
    small), with the same templates as one image at a time."""
    from facelens.pipeline.embed import EMBED_BATCH_SIZE

    recorder = _RecordingEmbedder()
    pipeline = FacePipeline(embedder=recorder, batch_size=8)  # type: ignore[arg-type]
    results = list(pipeline.detect_many([astronaut] * 8, workers=1))
    assert sum(len(r.faces) for r in results) == 8
    assert max(recorder.calls) <= EMBED_BATCH_SIZE < 8
    alone = pipeline.detect(astronaut)[0].template
    assert alone is not None and results[7].faces[0].template is not None
    assert float(alone.vector @ results[7].faces[0].template.vector) > 0.99999


def test_select_embeds_only_the_chosen_faces(astronaut: np.ndarray) -> None:
    """With ``select`` (LFW's central face), the other faces of a photo are not embedded."""
    from facelens.evaluation.lfw import central_face

    two = np.ascontiguousarray(np.concatenate([astronaut, astronaut], axis=1))
    recorder = _RecordingEmbedder()
    pipeline = FacePipeline(embedder=recorder)  # type: ignore[arg-type]
    everything = next(iter(pipeline.detect_many([two], workers=1)))
    assert len(everything.faces) == 2 and sum(recorder.calls) == 2
    recorder.calls.clear()

    def pick(result: ImageFaces) -> list[Face]:
        return [central_face(result.faces, result.width, result.height)]

    chosen = next(iter(pipeline.detect_many([two], workers=1, select=pick)))
    assert len(chosen.faces) == 1 and sum(recorder.calls) == 1
    assert chosen.faces[0].template is not None
