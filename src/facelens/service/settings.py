"""Everything a running service is configured with, and where its own state lives.

The service keeps its state (API keys, audit log, background jobs and their
files) in a folder beside the gallery: ``<gallery file>.service/`` (or
``$FACELENS_SERVICE_DIR``). ``facelens keys`` and ``facelens audit`` find the
same folder from the same ``--gallery``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from facelens import settings
from facelens.gallery import resolve_gallery_path

__all__ = [
    "BODY_RATE_GRACE",
    "SETTINGS_ENV",
    "ServiceSettings",
    "resolve_service_dir",
    "worker_threads",
]

SERVICE_DIR_ENV = settings.SERVICE_DIR.name
SETTINGS_ENV = settings.SERVICE_SETTINGS.name
"""uvicorn worker processes receive the settings as JSON in this variable."""

WEB_DIR = Path(__file__).resolve().parent / "web"
"""The web page's static files (owned by the web page), served under ``/web/``."""

BODY_RATE_GRACE = 5.0
"""Seconds a request body may take before its average rate must reach ``min_body_rate``."""


def resolve_service_dir(gallery: str | Path | None, service_dir: str | Path | None = None) -> Path:
    """The state folder: ``service_dir``, else ``$FACELENS_SERVICE_DIR``, else beside the gallery."""
    if service_dir:
        return Path(service_dir).expanduser()
    configured = settings.service_dir()
    if configured:
        return configured
    gallery_path = resolve_gallery_path(gallery)
    return gallery_path.with_name(gallery_path.name + ".service")


def worker_threads(workers: int, analysis_slots: int = 2, cores: int | None = None) -> int:
    """Inference threads per model in each of ``workers`` processes when none are asked for:
    ``$FACELENS_THREADS``, else the cores shared out among all the analyses that can run
    at once (``workers`` x ``analysis_slots``), at least 1.

    Under load every analysis slot is busy, so threads beyond an analysis' share of the
    cores only add hand-offs: on 2 cores, 1 thread per model spent 7-12% less CPU per
    identified photo than 2 (docs/benchmarks.md, "Service under load").
    """
    configured = settings.threads()
    if configured:
        return configured
    return max(1, (cores or os.cpu_count() or 1) // max(1, workers * analysis_slots))


@dataclass(frozen=True)
class ServiceSettings:
    """How one service runs. Sizes in bytes, times in seconds, pixels as width x height.

    Attributes:
        gallery: gallery file (None: ``$FACELENS_GALLERY`` or the user data folder).
        service_dir: state folder (None: see :func:`resolve_service_dir`).
        embedder: embedder id (None: the gallery's own, else the default).
        max_request_bytes: largest request body of the image endpoints.
        max_upload_bytes: largest request body of a job upload (videos).
        max_pixels: largest image accepted (width x height), checked before decoding.
        max_images_per_request: most photos in one enrollment.
        max_video_seconds: longest video a job accepts.
        body_timeout: longest wait for the next chunk of a request body.
        header_timeout: longest time a connection may take to send a complete request
            line and headers, from its opening or from the previous response (408).
        min_body_rate: slowest average rate of a request body, in bytes per second,
            after a grace of :data:`BODY_RATE_GRACE` seconds (408); 0: no minimum.
        max_connections_per_client: most open connections from one client address
            in one worker process; requests on any more are answered 429.
        max_requests_in_progress: most requests being handled at once in one worker
            process; any more are answered 503.
        analysis_slots: images analysed at once in one worker process.
        queue_timeout: longest wait for a free analysis slot before 503.
        job_stale_after: a running job whose heartbeat is older than this is
            taken to be orphaned (its process died) and queued again.
        job_max_attempts: a job that was orphaned this many times is failed.
        web_dir: the web page's folder, served at ``/web/`` when it exists.
        threads: inference threads per model (None: every core; ``facelens serve``
            passes :func:`worker_threads` of its workers and analysis slots).
        max_side: the longest side, in pixels, of the copy of a photo the detector
            searches (None: the pipeline's default; ``facelens --max-side N serve``).
        key_file: the gallery's template key file (None: the environment's, if any).
        library: a library file (None: the gallery's library, see
            :func:`facelens.cluster.library_store.library_location`).
        library_roots: the only server folders a library scan may read.
    """

    gallery: str | None = None
    service_dir: str | None = None
    embedder: str | None = None
    max_request_bytes: int = 32 * 1024 * 1024
    max_upload_bytes: int = 512 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_images_per_request: int = 32
    max_video_seconds: float = 600.0
    body_timeout: float = 30.0
    header_timeout: float = 10.0
    min_body_rate: float = 1024.0
    max_connections_per_client: int = 64
    max_requests_in_progress: int = 256
    analysis_slots: int = 2
    queue_timeout: float = 120.0
    job_stale_after: float = 30.0
    job_max_attempts: int = 3
    web_dir: str = field(default=str(WEB_DIR))
    threads: int | None = None
    max_side: int | None = None
    key_file: str | None = None
    library: str | None = None
    library_roots: list[str] = field(default_factory=list)

    @property
    def state_dir(self) -> Path:
        return resolve_service_dir(self.gallery, self.service_dir)

    @property
    def state_db(self) -> Path:
        return self.state_dir / "service.db"

    @property
    def jobs_dir(self) -> Path:
        return self.state_dir / "jobs"

    def server_paths(self) -> list[Path]:
        """The server's own files and folders, never named to a client: the state folder,
        the gallery, the key file and the library."""
        from facelens.cluster.clusterer import default_library_path

        paths = [self.state_dir]
        paths += [Path(p).expanduser() for p in (self.gallery, self.key_file, self.library) if p]
        if self.library is None:
            paths.append(default_library_path(self.gallery))
        return paths

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServiceSettings:
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_env(cls) -> ServiceSettings:
        text = settings.service_settings()
        return cls.from_json(text) if text else cls()
