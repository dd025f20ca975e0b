"""Ingest large collections (photos, videos) into a scan index or the gallery, resumably,
locally or on Ray; and search a scan index for every appearance of a person."""

from facelens.ingest.process import ItemResult, ProcessOptions, Processor
from facelens.ingest.run import IngestSummary, LocalExecutor, run_ingest
from facelens.ingest.scan_index import ScanFaces, ScanIndex
from facelens.ingest.search import Appearance, search_appearances
from facelens.ingest.sources import WorkItem, expand_sources

__all__ = [
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
]
