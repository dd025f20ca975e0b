"""Search over many templates: exact below a measured size, an index above it."""

from facelens.index.ann import AnnIndex, AnnParameters
from facelens.index.base import TemplateIndex
from facelens.index.codes import CodeIndex
from facelens.index.gallery_index import GalleryIndex, index_path_for
from facelens.index.search import ANN_MIN_TEMPLATES, CANDIDATES, exact_top_k, top_templates

__all__ = [
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
]
