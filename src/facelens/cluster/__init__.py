"""Grouping unknown faces into people: ``facelens cluster``.

* ``linkage.py``: constrained average-linkage clustering of templates.
* ``store.py``: the cluster index (SQLite): photos, faces, groups, corrections.
* ``ingest.py``: photos into the index (every usable face, its template and crop).
* ``engine.py``: one run (incremental, or a rebuild that keeps every correction).
* ``corrections.py``: merge, split, move, reject ("not this person"), name.
* ``clusterer.py``: :class:`FaceClusters`, the application that ties them together.
* ``sheet.py``: HTML contact sheets; ``metrics.py``: pairwise and BCubed scores.
"""

from facelens.cluster.clusterer import DEFAULT_CLUSTER_FMR, FaceClusters, default_index_path

__all__ = ["DEFAULT_CLUSTER_FMR", "FaceClusters", "default_index_path"]
