"""Graphs built from shipped model files, kept on disk so that later processes only read them.

SFace's onnxruntime graph is folded from its block-quantized file and
rewritten (:mod:`facelens.models.sface`); dlib's ResNet is built from its
``.dat`` file (:mod:`facelens.models.dlib_resnet`). Building holds the
weights several times over for a moment: loading the default models peaked
about 25 MB higher than reading the built graphs (docs/benchmarks.md,
"Session 7"). The first process builds a graph as before (checked against
the registry's folded digest) and writes it here; later ones read it.

A cached graph's name carries the model id, the shipped file's sha256 and a
digest of the code that builds it (so a new build rule or onnx version never
reads an old graph); a ``.sha256`` file beside it holds the graph's own
digest, checked at every read: a damaged or partly written graph is built
again. Writing a model's graph removes that model's older ones. The folder is ``$FACELENS_GRAPH_CACHE`` (``off``: no cache), else
``$XDG_CACHE_HOME/facelens/graphs``, else ``~/.cache/facelens/graphs``; when
it cannot be written, graphs are built every time, as without the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import onnx

from facelens import settings
from facelens.models.runtime import Session, create_session
from facelens.models.spec import ModelSpec

__all__ = ["cached_graph", "cached_graph_and_digest", "cached_session"]

_KEY = re.compile(r"[0-9a-f]{16}")
"""A cache key (:func:`_key`): what follows ``<model id>-`` in a graph's file name."""


def cached_graph(
    spec: ModelSpec, builders: tuple[ModuleType, ...], build: Callable[[], bytes]
) -> bytes:
    """The serialized graph of ``spec``: read from the cache, else ``build()`` and kept.

    ``builders`` are the modules whose code decides the graph's bytes; their
    source is part of the cache key.
    """
    return cached_graph_and_digest(spec, builders, build)[0]


def cached_graph_and_digest(
    spec: ModelSpec, builders: tuple[ModuleType, ...], build: Callable[[], bytes]
) -> tuple[bytes, str | None]:
    """As :func:`cached_graph`, with the graph's sha256 (hex) as checked or written here,
    so that a caller keying more work on the graph need not hash it again (None when
    the cache is off)."""
    folder = settings.graph_cache()
    if folder is None:
        return build(), None
    path = folder / f"{spec.id}-{_key(spec, builders)}.onnx"
    stamp = path.with_suffix(".sha256")
    with contextlib.suppress(OSError):
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest == stamp.read_text(encoding="ascii").strip():
            return data, digest
        del data
    graph = build()
    digest = hashlib.sha256(graph).hexdigest()
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob(f"{spec.id}-*"):  # graphs of older files or code: never read again
            key = old.stem[len(spec.id) + 1 :]
            if old.suffix in (".onnx", ".sha256") and _KEY.fullmatch(key) and old.stem != path.stem:
                old.unlink(missing_ok=True)
        _write(path, graph)
        _write(stamp, digest.encode("ascii"))
    return graph, digest


def cached_session(
    spec: ModelSpec,
    builders: tuple[ModuleType, ...],
    build: Callable[[], bytes],
    threads: int | None,
    openvino_precision: str | None = None,
) -> Session:
    """A session (:func:`facelens.models.runtime.create_session`) for the cached graph of
    ``spec``, keyed for OpenVINO's compiled-model cache by the digest checked here."""
    graph, digest = cached_graph_and_digest(spec, builders, build)
    return create_session(
        graph, threads, openvino_precision=openvino_precision, model_sha256=digest
    )


def _key(spec: ModelSpec, builders: tuple[ModuleType, ...]) -> str:
    """16 hex digits over the shipped file's sha256, the builders' source and onnx's version."""
    hasher = hashlib.sha256(f"{spec.sha256}\0{onnx.__version__}".encode())
    for module in builders:
        hasher.update(Path(str(module.__file__)).read_bytes())
    return hasher.hexdigest()[:16]


def _write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all (a temporary file renamed over it)."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
