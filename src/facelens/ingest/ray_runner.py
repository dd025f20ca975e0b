"""Ingest on Ray: model-holding actors, batches, and a bounded number of batches in flight.

``RayExecutor(options, address, workers)`` connects to a Ray cluster
(``address``: ``"auto"``, ``ray://host:10001`` or ``host:6379``) or, with
``address=None``, starts a local Ray instance of ``workers`` CPUs. It starts
``workers`` actors; each loads the models once (a :class:`Processor`, one
onnxruntime thread) and processes whole batches. The driver keeps at most
``in_flight`` batches per actor submitted (backpressure: pending work stays
in the state file, not in Ray's object store or in memory) and yields each
batch's results as soon as it is done, for the driver to record. Image
bytes travel with the batch, so workers need no shared file system for
images; videos are opened by path (workers must see the same path).

The same code runs on a laptop and a cluster; only ``address`` changes.
Needs the ``ray`` extra (``pip install 'facelens[ray]'``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from facelens.errors import RayUnavailableError
from facelens.ingest.process import ItemResult, ProcessOptions, Processor
from facelens.ingest.sources import WorkItem

__all__ = ["RayExecutor"]


class IngestWorker:
    """The actor body: one :class:`Processor` (models loaded once per actor)."""

    def __init__(self, options: ProcessOptions) -> None:
        self.processor = Processor(options)

    def run(self, batch: list[tuple[WorkItem, bytes | None]]) -> list[ItemResult]:
        return self.processor.run(batch)


class RayExecutor:
    """Processes batches on Ray actors (see the module docstring)."""

    def __init__(
        self,
        options: ProcessOptions,
        address: str | None = None,
        workers: int = 1,
        in_flight: int = 2,
    ) -> None:
        try:
            import ray
        except ImportError as exc:
            raise RayUnavailableError("--ray needs Ray: pip install 'facelens[ray]'") from exc
        self._ray: Any = ray
        self._started_here = not ray.is_initialized()
        try:
            if self._started_here:
                if address:
                    ray.init(address=address, log_to_driver=False)
                else:
                    ray.init(
                        num_cpus=workers,
                        include_dashboard=False,
                        log_to_driver=False,
                        configure_logging=False,
                    )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise RayUnavailableError(f"cannot reach the Ray cluster at {address}: {exc}") from exc
        actor = ray.remote(num_cpus=1)(IngestWorker)
        worker_options = replace(options, threads=1)
        self.actors = [actor.remote(worker_options) for _ in range(workers)]
        self.in_flight = max(1, in_flight) * len(self.actors)

    def map(self, work: Iterator[list[WorkItem]]) -> Iterator[list[ItemResult]]:
        ray = self._ray
        running: list[Any] = []  # object refs of submitted batches
        submitted = 0
        exhausted = False
        while True:
            while not exhausted and len(running) < self.in_flight:
                batch = next(work, None)
                if batch is None:
                    exhausted = True
                    break
                actor = self.actors[submitted % len(self.actors)]  # round robin
                running.append(
                    actor.run.remote(  # type: ignore[attr-defined]
                        [(item, _payload(item)) for item in batch]
                    )
                )
                submitted += 1
            if not running:
                return
            done, running = ray.wait(running, num_returns=1)
            yield ray.get(done[0])

    def close(self) -> None:
        ray = self._ray
        for actor in self.actors:
            ray.kill(actor)
        if self._started_here:
            ray.shutdown()


def _payload(item: WorkItem) -> bytes | None:
    """An image's bytes (read by the driver), or None for a video or an unreadable file
    (the worker then reports the error)."""
    if item.kind != "image":
        return None
    try:
        return Path(item.source).read_bytes()
    except OSError:
        return None
