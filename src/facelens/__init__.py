"""facelens: find faces, turn them into templates, and recognise known people.

Quick use::

    from facelens import FaceLens
    lens = FaceLens(gallery="people.db")
    lens.enroll("Ada", ["ada1.jpg", "ada2.jpg"])
    for match in lens.identify("party.jpg"):
        print(match.identity or "unknown", match.score, match.fmr)
"""

from facelens.api import FaceLens, LibraryOptions, VideoOptions
from facelens.errors import FaceLensError
from facelens.io.image import load_image
from facelens.pipeline.faces import FacePipeline
from facelens.types import Box, Candidate, Face, Match, Person, Quality, Template, Verification
from facelens.version import __version__

__all__ = [
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
]
