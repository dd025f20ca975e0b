"""How well a clustering matches true identities: pairwise and BCubed precision and recall.

Both take one predicted cluster label and one true label per item (any
hashable ints). Every item counts, including the ones a method leaves
unclustered: give each of those its own label (a singleton cluster), which
is what a photo library shows (a face in no group).

* Pairwise: over all pairs of items in the same predicted cluster, the
  fraction that are the same person (precision); over all pairs of the same
  person, the fraction put in the same cluster (recall). Singletons make no
  pairs, so they do not count either way, and big clusters weigh
  quadratically.
* BCubed: per item, the fraction of its cluster that is its person
  (precision) and the fraction of its person that is in its cluster
  (recall), averaged over items. A person with one photo left alone scores
  1 and 1.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["ClusterScores", "score_clustering"]


@dataclass(frozen=True)
class ClusterScores:
    """Precision, recall and F1 (harmonic mean), pairwise and BCubed, in [0, 1]."""

    pairwise_precision: float
    pairwise_recall: float
    pairwise_f: float
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f: float
    items: int
    clusters: int  # predicted clusters, singletons included
    singletons: int  # predicted clusters of one item

    def to_dict(self) -> dict[str, float | int]:
        return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def score_clustering(
    predicted: npt.ArrayLike, truth: npt.ArrayLike, subset: npt.ArrayLike | None = None
) -> ClusterScores:
    """Scores of ``predicted`` against ``truth`` (one label per item).

    ``subset`` (boolean mask) restricts the items that are scored, while
    their clusters still hold every item: e.g. score only the people with
    two or more photos after clustering everyone.
    """
    pred = np.asarray(predicted)
    true = np.asarray(truth)
    keep = np.ones(len(pred), dtype=bool) if subset is None else np.asarray(subset, dtype=bool)
    joint = Counter(zip(pred.tolist(), true.tolist(), strict=True))
    pred_size = Counter(pred.tolist())
    true_size = Counter(true.tolist())
    # Pairwise counts over the scored items only.
    sub_joint = Counter(zip(pred[keep].tolist(), true[keep].tolist(), strict=True))
    sub_pred = Counter(pred[keep].tolist())
    sub_true = Counter(true[keep].tolist())
    together_same = sum(n * (n - 1) / 2 for n in sub_joint.values())
    together = sum(n * (n - 1) / 2 for n in sub_pred.values())
    same = sum(n * (n - 1) / 2 for n in sub_true.values())
    pairwise_precision = together_same / together if together else 1.0
    pairwise_recall = together_same / same if same else 1.0
    # BCubed per scored item, with clusters and people as wholes.
    items = list(zip(pred[keep].tolist(), true[keep].tolist(), strict=True))
    precision = np.array([joint[(p, t)] / pred_size[p] for p, t in items])
    recall = np.array([joint[(p, t)] / true_size[t] for p, t in items])
    bp = float(precision.mean()) if len(items) else 1.0
    br = float(recall.mean()) if len(items) else 1.0
    return ClusterScores(
        pairwise_precision=float(pairwise_precision),
        pairwise_recall=float(pairwise_recall),
        pairwise_f=_f1(float(pairwise_precision), float(pairwise_recall)),
        bcubed_precision=bp,
        bcubed_recall=br,
        bcubed_f=_f1(bp, br),
        items=int(keep.sum()),
        clusters=len(sub_pred),
        singletons=sum(1 for n in pred_size.values() if n == 1),
    )


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0
