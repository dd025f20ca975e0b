"""What one worker process of the service holds: settings, state, the recogniser, limits."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from facelens.api import FaceLens
from facelens.ingest.library import Library
from facelens.service.audit import AuditLog
from facelens.service.errors import ServiceBusyError
from facelens.service.jobs import JobStore
from facelens.service.keys import KeyStore
from facelens.service.settings import ServiceSettings
from facelens.service.state import StateDB

__all__ = ["ServiceContext"]

T = TypeVar("T")


class ServiceContext:
    """Shared by every request of one process (thread-safe).

    The models load lazily, on the first request that needs them (or on
    :meth:`warm_up`); analyses run at most ``settings.analysis_slots`` at once
    so a burst of large uploads cannot exhaust memory.
    """

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.state = StateDB(settings.state_db)
        self.keys = KeyStore(self.state)
        self.audit = AuditLog(self.state)
        self.jobs = JobStore(self.state, settings.jobs_dir)
        self._lens: FaceLens | None = None
        self._lens_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max(1, settings.analysis_slots))
        self._library: Library | None = None

    @property
    def lens(self) -> FaceLens:
        with self._lens_lock:
            if self._lens is None:
                extra: dict[str, Any] = {}
                if self.settings.key_file:
                    extra["key_file"] = self.settings.key_file
                self._lens = FaceLens(
                    gallery=self.settings.gallery,
                    embedder=self.settings.embedder,
                    threads=self.settings.threads,
                    max_side=self.settings.max_side,
                    **extra,
                )
                self._lens.pipeline.max_pixels = self.settings.max_pixels
            return self._lens

    @property
    def library(self) -> Library:
        """The library beside the gallery (or ``settings.library``), opened on first use."""
        lens = self.lens
        with self._lens_lock:
            if self._library is None:
                self._library = lens.library(self.settings.library)
            return self._library

    def warm_up(self) -> None:
        """Load the models, open the gallery and build its search index now rather than on
        the first request."""
        lens = self.lens
        _ = lens.pipeline.detector, lens.pipeline.embedder, lens.gallery
        lens.gallery_search.prepare()

    def analysing(self, work: Callable[[], T]) -> T:
        """Run ``work`` in an analysis slot; :class:`ServiceBusyError` if none frees in time."""
        if not self._slots.acquire(timeout=self.settings.queue_timeout):
            raise ServiceBusyError(
                f"the server stayed busy for {self.settings.queue_timeout:.0f} s; retry later"
            )
        try:
            return work()
        finally:
            self._slots.release()

    def close(self) -> None:
        with self._lens_lock:
            if self._library is not None:
                self._library.close()
                self._library = None
            if self._lens is not None:
                self._lens.close()
                self._lens = None
        self.state.close()
