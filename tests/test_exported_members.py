"""The public surface is drawn, and a change to it shows up here (as httpx pins its own).

* ``facelens`` and its public subpackages export exactly the names listed below;
* ``FaceLens`` shows its users' verbs and settings, not the search machinery;
* every module declares ``__all__`` with the names other code uses
  (``scripts/exported_names.py`` lists or adds what is missing);
* the typed keyword options stay in step with the functions they feed.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from pathlib import Path
from types import ModuleType

import pytest

import facelens
from facelens.api import FaceLens, LibraryOptions, VideoOptions
from tests.conftest import REPO

SURFACE: dict[str, list[str]] = {
    "facelens": [
        "Box",
        "Candidate",
        "Face",
        "FaceLens",
        "FaceLensError",
        "FacePipeline",
        "LibraryOptions",
        "Match",
        "Person",
        "Quality",
        "Template",
        "Verification",
        "VideoOptions",
        "__version__",
        "load_image",
    ],
    "facelens.api": ["FaceLens", "LibraryOptions", "VideoOptions"],
    "facelens.analysis": ["AnalyzedFace", "AttributeAnalyzer", "FaceAttributes"],
    "facelens.cluster": ["DEFAULT_CLUSTER_FMR", "FaceClusters", "default_index_path"],
    "facelens.gallery": [
        "GALLERY_ENV",
        "GalleryCipher",
        "GalleryStore",
        "NewTemplate",
        "SQLiteGallery",
        "TemplateMatrix",
        "is_postgres_url",
        "open_gallery",
        "resolve_gallery",
        "resolve_gallery_key",
        "resolve_gallery_path",
        "stored_model_id",
    ],
    "facelens.index": [
        "ANN_MIN_TEMPLATES",
        "CANDIDATES",
        "AnnIndex",
        "AnnParameters",
        "CodeIndex",
        "GalleryIndex",
        "TemplateIndex",
        "exact_top_k",
        "index_path_for",
        "top_templates",
    ],
    "facelens.ingest": [
        "Appearance",
        "IngestSummary",
        "ItemResult",
        "LocalExecutor",
        "ProcessOptions",
        "Processor",
        "ScanFaces",
        "ScanIndex",
        "WorkItem",
        "expand_sources",
        "run_ingest",
        "search_appearances",
    ],
    "facelens.io": [
        "DEFAULT_MAX_PIXELS",
        "IMAGE_SUFFIXES",
        "DecodedImage",
        "ImageSource",
        "expand_image_paths",
        "load_image",
        "source_label",
    ],
    "facelens.service": ["ServiceSettings", "create_app"],
    "facelens.video": [
        "DropPolicy",
        "FaceTracker",
        "FrameSampler",
        "Observation",
        "Track",
        "TrackedFace",
        "VideoFrame",
        "VideoInfo",
        "VideoReader",
        "VideoSource",
        "VideoWriter",
        "YuvFrame",
        "iou",
        "open_video",
        "probe_video",
    ],
}

FACE_LENS_MEMBERS = [
    # the users' verbs
    "analyze",
    "clusters",
    "detect",
    "enroll",
    "erase",
    "identify",
    "identify_many",
    "identify_video",
    "library",
    "people",
    "rename",
    "verify",
    # its settings, models and gallery
    "aggregation",
    "calibration",
    "gallery",
    "operating_point",
    "pipeline",
    # how the gallery is searched (the CLI and the service use it)
    "gallery_search",
    # a context manager
    "close",
]


@pytest.mark.parametrize("name", sorted(SURFACE))
def test_exported_names_are_pinned(name: str) -> None:
    module = importlib.import_module(name)
    assert sorted(module.__all__) == sorted(SURFACE[name])
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert missing == []


def test_the_package_exports_every_public_name_it_holds() -> None:
    """As httpx checks: what ``facelens`` holds and does not export is private (or a module)."""
    held = {
        name
        for name, value in vars(facelens).items()
        if not isinstance(value, ModuleType) and (not name.startswith("_") or name == "__version__")
    }
    assert held == set(facelens.__all__)


def test_face_lens_shows_its_users_verbs_not_its_search_machinery(tmp_path: Path) -> None:
    lens = FaceLens(gallery=tmp_path / "g.db")
    members = {n for n in dir(lens) if not n.startswith("_")}
    assert members == set(FACE_LENS_MEMBERS)
    for internal in ("search_index", "sync_index", "prepare_search", "match_faces"):
        assert not hasattr(lens, internal)
    assert not hasattr(lens, "erase_cluster_group") and not hasattr(lens, "screen_faces")


def _exported_names_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "exported_names", REPO / "scripts" / "exported_names.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_module_exports_what_other_code_uses() -> None:
    """Each module of facelens declares ``__all__`` and lists in it every name that other
    modules, tests, benchmarks, scripts, entry points or the docs' examples use; the rest
    is internal to it. ``python scripts/exported_names.py --write`` fixes a failure."""
    assert _exported_names_script().missing_names() == {}


def test_video_options_are_the_keywords_of_identify_video() -> None:
    from facelens.apps.video.identify import identify_video

    keywords = {
        name
        for name, parameter in inspect.signature(identify_video).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    }
    assert set(VideoOptions.__annotations__) == keywords - {"aggregation"}  # the lens's own


def test_library_options_are_the_keywords_of_library() -> None:
    from facelens.ingest.library import Library

    keywords = {
        name
        for name, parameter in inspect.signature(Library).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    }
    assert set(LibraryOptions.__annotations__) == keywords
