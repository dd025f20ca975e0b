"""The on-disk cache of graphs built from shipped model files (models/graph_cache.py)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from facelens.models import onnx_fold, registry, sface
from facelens.models.graph_cache import cached_graph, cached_graph_and_digest
from facelens.models.spec import verified_model_bytes

SPEC = registry.get_spec(registry.SFACE_EMBEDDER)
BUILDERS = (onnx_fold, sface)


class Builder:
    """Counts its calls; returns ``data``."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.calls = 0

    def __call__(self) -> bytes:
        self.calls += 1
        return self.data


@pytest.fixture
def cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    folder = tmp_path / "graphs"
    monkeypatch.setenv("FACELENS_GRAPH_CACHE", str(folder))
    return folder


def test_a_built_graph_is_kept_and_later_read_not_built(cache: Path) -> None:
    build = Builder(b"graph bytes")
    assert cached_graph(SPEC, BUILDERS, build) == b"graph bytes"
    assert cached_graph(SPEC, BUILDERS, build) == b"graph bytes"
    assert build.calls == 1
    assert len(list(cache.glob("*.onnx"))) == len(list(cache.glob("*.sha256"))) == 1


def test_the_digest_given_is_the_graphs_own_when_built_when_read_and_none_when_off(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = hashlib.sha256(b"graph bytes").hexdigest()
    assert cached_graph_and_digest(SPEC, BUILDERS, Builder(b"graph bytes")) == (
        b"graph bytes",
        expected,
    )
    assert cached_graph_and_digest(SPEC, BUILDERS, Builder(b"unused")) == (b"graph bytes", expected)
    monkeypatch.setenv("FACELENS_GRAPH_CACHE", "off")
    assert cached_graph_and_digest(SPEC, BUILDERS, Builder(b"fresh")) == (b"fresh", None)


def test_a_damaged_graph_is_built_again(cache: Path) -> None:
    build = Builder(b"graph bytes")
    cached_graph(SPEC, BUILDERS, build)
    (stored,) = cache.glob("*.onnx")
    stored.write_bytes(b"graph by")  # cut short, as by a full disk
    assert cached_graph(SPEC, BUILDERS, build) == b"graph bytes"
    assert build.calls == 2
    assert stored.read_bytes() == b"graph bytes"


def test_another_shipped_file_does_not_read_the_old_graph_and_replaces_it(cache: Path) -> None:
    cached_graph(SPEC, BUILDERS, Builder(b"old"))
    other = replace(SPEC, sha256="0" * 64)
    assert cached_graph(other, BUILDERS, Builder(b"new")) == b"new"
    assert len(list(cache.glob("*.onnx"))) == len(list(cache.glob("*.sha256"))) == 1
    assert cached_graph(other, BUILDERS, Builder(b"unused")) == b"new"
    longer_id = replace(SPEC, id=f"{SPEC.id}-native")  # as dlib-resnet-v1 and its -native
    cached_graph(longer_id, BUILDERS, Builder(b"other model"))
    cached_graph(replace(other, sha256="1" * 64), BUILDERS, Builder(b"newer"))
    assert cached_graph(longer_id, BUILDERS, Builder(b"unused")) == b"other model"
    assert len(list(cache.glob("*.onnx"))) == 2  # another model's graph stays


def test_off_builds_every_time_and_writes_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FACELENS_GRAPH_CACHE", "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    build = Builder(b"graph")
    cached_graph(SPEC, BUILDERS, build)
    cached_graph(SPEC, BUILDERS, build)
    assert build.calls == 2
    assert not any(tmp_path.iterdir())


def test_a_cache_that_cannot_be_written_still_gives_the_graph(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    monkeypatch.setenv("FACELENS_GRAPH_CACHE", str(blocker / "graphs"))
    build = Builder(b"graph")
    assert cached_graph(SPEC, BUILDERS, build) == b"graph"
    assert cached_graph(SPEC, BUILDERS, build) == b"graph"
    assert build.calls == 2


def test_sface_from_the_cache_gives_the_templates_of_a_fresh_build(cache: Path) -> None:
    """The real model: built and kept, then read back; same graph, same templates."""
    model_bytes = verified_model_bytes(SPEC)
    built = sface.SFaceEmbedder(SPEC, model_bytes, threads=1)
    (stored,) = cache.glob("*.onnx")
    assert stored.read_bytes() == sface.folded_graph(SPEC, model_bytes)
    read = sface.SFaceEmbedder(SPEC, model_bytes, threads=1)
    crops = np.random.default_rng(15).integers(0, 256, (2, 112, 112, 3), dtype=np.uint8)
    np.testing.assert_array_equal(built.embed(crops), read.embed(crops))
