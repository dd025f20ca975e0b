"""Search over many templates: exact below a measured size, an ANN index above it."""

from facelens.index.ann import AnnIndex, AnnParameters
from facelens.index.gallery_index import GalleryIndex, index_path_for
from facelens.index.search import ANN_MIN_TEMPLATES, CANDIDATES, exact_top_k, top_templates

__all__ = [
    "ANN_MIN_TEMPLATES",
    "CANDIDATES",
    "AnnIndex",
    "AnnParameters",
    "GalleryIndex",
    "exact_top_k",
    "index_path_for",
    "top_templates",
]
